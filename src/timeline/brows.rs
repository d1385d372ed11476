//! How far the brows moved up, read from the pixel profiles above the eyes
//! ([`crate::face::brow_profiles`]) against the person's own rest: the shift that best lines a
//! frame's profile up with the rest profile (normalised cross-correlation, so exposure and
//! contrast changes do not count). The whole band moves (lid crease, brow, forehead), so no
//! single edge has to be found, and glasses' rims or a fringe only add a still pattern.

use super::stats::median;
use crate::face::{PROFILE_LEN, PROFILE_STEP};

/// The largest shift looked for, in profile steps (0.12 inter-ocular units: a brow raised high).
const MAX_SHIFT: usize = 6;
/// Samples compared start this far up (0.16 inter-ocular units): below it the lids open and
/// close with blinks and widened eyes.
const CORE_FROM: usize = 8;

/// Per-sample median of the given frames' profiles: the person's rest.
pub fn reference_profile<'a>(profiles: impl Iterator<Item = &'a [f32]>) -> Option<Vec<f64>> {
    let mut columns = vec![Vec::new(); 2 * PROFILE_LEN];
    for p in profiles.filter(|p| p.len() == 2 * PROFILE_LEN) {
        for (column, &v) in columns.iter_mut().zip(p) {
            column.push(v as f64);
        }
    }
    if columns[0].is_empty() {
        return None;
    }
    Some(columns.iter_mut().map(|c| median(c)).collect())
}

/// Normalised cross-correlation of two equally long series (`None` where one is flat).
fn correlation(
    a: impl Iterator<Item = f64> + Clone,
    b: impl Iterator<Item = f64> + Clone,
) -> Option<f64> {
    let n = a.clone().count() as f64;
    let (ma, mb) = (a.clone().sum::<f64>() / n, b.clone().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    let norm = (aa * bb).sqrt();
    (norm > 1e-6).then(|| ab / norm)
}

/// Upward shift of one side's profile against its rest, inter-ocular units.
fn side_shift(profile: &[f32], rest: &[f64]) -> Option<f64> {
    let core = CORE_FROM.max(MAX_SHIFT)..PROFILE_LEN - MAX_SHIFT;
    // A brow `s` steps up shows at sample k what rest showed at k - s.
    let scores: Vec<f64> = (0..=2 * MAX_SHIFT)
        .map(|j| {
            let s = j as isize - MAX_SHIFT as isize;
            let a = core.clone().map(|k| profile[k] as f64);
            let b = core.clone().map(|k| rest[(k as isize - s) as usize]);
            correlation(a, b)
        })
        .collect::<Option<_>>()?;
    let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]))?;
    // Between steps: the vertex of the parabola through the best score and its neighbours.
    let offset = if best > 0 && best + 1 < scores.len() {
        let (a, b, c) = (scores[best - 1], scores[best], scores[best + 1]);
        let curvature = a - 2.0 * b + c;
        if curvature < 0.0 {
            (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    } else {
        0.0
    };
    Some((best as f64 - MAX_SHIFT as f64 + offset) * PROFILE_STEP)
}

/// How far the brows moved up against rest (both sides' mean, inter-ocular units; negative:
/// down). `None` where neither side can be lined up (a flat, featureless profile).
pub fn brow_shift(profiles: &[f32], reference: &[f64]) -> Option<f64> {
    if profiles.len() != 2 * PROFILE_LEN || reference.len() != 2 * PROFILE_LEN {
        return None;
    }
    let sides: Vec<f64> = (0..2)
        .filter_map(|s| {
            let range = s * PROFILE_LEN..(s + 1) * PROFILE_LEN;
            side_shift(&profiles[range.clone()], &reference[range])
        })
        .collect();
    (!sides.is_empty()).then(|| sides.iter().sum::<f64>() / sides.len() as f64)
}

/// Each frame's brow shift against the rest profile of the neutral-reading frames (of all
/// frames, where too few read neutral: [`super::rest_or_all`]).
pub fn brow_shifts(profiles: &[Option<&[f32]>], neutral: &[bool]) -> Vec<Option<f64>> {
    let rest = super::rest_or_all(
        profiles
            .iter()
            .zip(neutral)
            .filter_map(|(p, &n)| p.map(|p| (n, p))),
    );
    let Some(reference) = reference_profile(rest.into_iter()) else {
        return vec![None; profiles.len()];
    };
    profiles
        .iter()
        .map(|p| p.and_then(|p| brow_shift(p, &reference)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skin, a dark brow at `brow` (inter-ocular units above the eye), a wrinkle above it.
    fn profile(brow: f64) -> Vec<f32> {
        let side = (0..PROFILE_LEN).map(|k| {
            let v = k as f64 * PROFILE_STEP;
            let dip = |at: f64, depth: f64, width: f64| depth * (-((v - at) / width).powi(2)).exp();
            (180.0 - dip(brow, 90.0, 0.05) - dip(brow + 0.3, 20.0, 0.02)) as f32
        });
        side.clone().chain(side).collect()
    }

    #[test]
    fn a_raised_brow_shifts_its_profile_up_by_as_much() {
        let rest =
            reference_profile([profile(0.35), profile(0.35)].iter().map(|p| p.as_slice())).unwrap();
        for raise in [0.0, 0.03, 0.05, 0.08, -0.04] {
            let shift = brow_shift(&profile(0.35 + raise), &rest).unwrap();
            assert!(
                (shift - raise).abs() < 0.006,
                "raised {raise}, measured {shift}"
            );
        }
    }

    #[test]
    fn brighter_light_is_no_shift() {
        let rest = reference_profile(std::iter::once(profile(0.35).as_slice())).unwrap();
        let brighter: Vec<f32> = profile(0.35).iter().map(|v| 1.3 * v + 20.0).collect();
        assert!(brow_shift(&brighter, &rest).unwrap().abs() < 1e-9);
    }

    /// A grey face whose brows are dark bands `brow` pixels above the eyes' centre line.
    fn face_image(brow: usize) -> (crate::frames::RgbImage, Vec<[f64; 2]>) {
        let (w, h) = (160, 160);
        let mut data = vec![170u8; w * h * 3];
        for y in (100 - brow - 3)..(100 - brow + 3) {
            for x in 30..130 {
                data[3 * (y * w + x)..3 * (y * w + x) + 3].fill(60);
            }
        }
        let mut landmarks = vec![[80.0, 120.0]; 68];
        // Eye corners: the right eye 36–39 around x = 55, the left 42–45 around x = 105.
        for (i, x) in [(36, 45.0), (39, 65.0), (42, 95.0), (45, 115.0)] {
            landmarks[i] = [x, 100.0];
        }
        (crate::frames::RgbImage::new(w, h, data).unwrap(), landmarks)
    }

    #[test]
    fn brows_drawn_higher_in_an_image_measure_as_much_higher() {
        let (rest_image, landmarks) = face_image(20);
        let rest_profile = crate::face::brow_profiles(&rest_image, &landmarks).unwrap();
        let rest = reference_profile(std::iter::once(rest_profile.as_slice())).unwrap();
        for (brow, expected) in [(20, 0.0), (22, 0.04), (24, 0.08), (18, -0.04)] {
            let (image, landmarks) = face_image(brow);
            let profile = crate::face::brow_profiles(&image, &landmarks).unwrap();
            let shift = brow_shift(&profile, &rest).unwrap();
            // 50 pixels between the eyes: a pixel is 0.02 inter-ocular units.
            assert!((shift - expected).abs() < 0.01, "{brow} px: {shift}");
        }
    }

    #[test]
    fn a_flat_profile_has_no_shift() {
        let rest = reference_profile(std::iter::once(profile(0.35).as_slice())).unwrap();
        assert_eq!(brow_shift(&vec![100.0; 2 * PROFILE_LEN], &rest), None);
        assert_eq!(brow_shift(&profile(0.35)[..10], &rest), None);
    }
}
