//! Head pose from the 68 landmarks, coarse but cheap: how far the nose tip sits from the middle
//! of the face sideways (yaw) and between the eye and mouth lines (pitch). Used to say "head
//! turned" in summaries where that is what happened.

use super::Timeline;
use super::spot::Span;
use super::stats::median;

/// (yaw, pitch) proxies: yaw is the nose tip's offset from the jaw's midpoint over the jaw's
/// width (positive: nose towards the image's right, the person's left); pitch is the nose
/// tip's height between the eye line (0) and the mouth corners (1).
pub fn pose_proxies(p: &[[f64; 2]]) -> Option<(f64, f64)> {
    if p.len() != 68 {
        return None;
    }
    let width = ((p[16][0] - p[0][0]).powi(2) + (p[16][1] - p[0][1]).powi(2)).sqrt();
    let yaw = (p[30][0] - (p[0][0] + p[16][0]) / 2.0) / width.max(1e-9);
    let eyes = (p[36][1] + p[45][1]) / 2.0;
    let mouth = (p[48][1] + p[54][1]) / 2.0;
    let pitch = (p[30][1] - eyes) / (mouth - eyes).abs().max(1e-9);
    (yaw.is_finite() && pitch.is_finite()).then_some((yaw, pitch))
}

/// Yaw change (from the clip's median) that reads as a turned head; pitch change as a nod.
const YAW_TURN: f64 = 0.08;
const PITCH_NOD: f64 = 0.12;
/// Shortest pose change reported, seconds.
const MIN_S: f64 = 0.3;
/// Same-direction spans this close (seconds) are one.
const MERGE_S: f64 = 0.2;

/// Stretches where the head is turned or tilted away from its usual pose, with a phrase.
pub fn head_moves(timeline: &Timeline) -> Vec<(Span, &'static str)> {
    let poses: Vec<Option<(f64, f64)>> = timeline
        .records
        .iter()
        .map(|r| r.landmarks.as_deref().and_then(pose_proxies))
        .collect();
    let mut yaws: Vec<f64> = poses.iter().flatten().map(|p| p.0).collect();
    let mut pitches: Vec<f64> = poses.iter().flatten().map(|p| p.1).collect();
    if yaws.is_empty() {
        return Vec::new();
    }
    let (y0, p0) = (median(&mut yaws), median(&mut pitches));
    let label = |p: &Option<(f64, f64)>| -> Option<&'static str> {
        let (y, q) = (*p)?;
        if y - y0 > YAW_TURN {
            Some("head turned to the person's left")
        } else if y0 - y > YAW_TURN {
            Some("head turned to the person's right")
        } else if q - p0 > PITCH_NOD {
            Some("head tilted down")
        } else if p0 - q > PITCH_NOD {
            Some("head tilted up")
        } else {
            None
        }
    };
    let frame_s = 1.0 / timeline.fps.max(1e-9);
    let mut out: Vec<(Span, &'static str)> = Vec::new();
    let mut i = 0;
    while i < poses.len() {
        let Some(l) = label(&poses[i]) else {
            i += 1;
            continue;
        };
        let s = i;
        while i < poses.len() && label(&poses[i]) == Some(l) {
            i += 1;
        }
        let (a, b) = (&timeline.records[s], &timeline.records[i - 1]);
        // A pose held with a brief wobble across the threshold is one span.
        if let Some((last, phrase)) = out.last_mut()
            && *phrase == l
            && a.time - last.end_time <= MERGE_S
        {
            last.end_time = b.time + frame_s;
            last.end_frame = b.index;
            continue;
        }
        if b.time - a.time + frame_s >= MIN_S {
            out.push((
                Span {
                    start_time: a.time,
                    end_time: b.time + frame_s,
                    start_frame: a.index,
                    end_frame: b.index,
                },
                l,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::features::tests::synthetic_face;

    #[test]
    fn a_frontal_face_has_a_centred_nose_and_a_turned_one_does_not() {
        let face = synthetic_face();
        let (yaw, _) = pose_proxies(&face).unwrap();
        assert!(yaw.abs() < 0.02);
        let mut turned = face.clone();
        // Turning to the person's left moves the nose (near the camera) towards image right
        // more than the jaw's ends.
        for (k, q) in turned.iter_mut().enumerate() {
            q[0] += if (27..36).contains(&k) { 0.25 } else { 0.05 };
        }
        assert!(pose_proxies(&turned).unwrap().0 > YAW_TURN);
    }
}
