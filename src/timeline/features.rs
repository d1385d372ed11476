//! Action features: facial muscle movements measured from the 68 landmarks once head position,
//! in-plane rotation and scale are removed.
//!
//! Each frame's landmarks are mapped by a least-squares similarity transform (Procrustes) of
//! points that facial expressions barely move (eye corners, nose bridge) onto a reference shape,
//! in units of the inter-ocular distance. Features are then distances in that canonical frame,
//! signed so that a larger value means more of the action. Only changes against the person's
//! own baseline are meaningful; the absolute values depend on the face.
//!
//! One feature is not a landmark distance: the brow lift, read from the pixels above the eyes
//! ([`super::brows`]), since the landmark brows follow the mouth when the person talks.

use serde::{Deserialize, Serialize};

/// Feature names, in [`ActionFeatures`] order. "left"/"right" are the person's own sides.
pub const FEATURE_NAMES: [&str; NUM_FEATURES] = [
    "inner_brow_raise",
    "outer_brow_raise",
    "brow_lower",
    "eye_open_left",
    "eye_open_right",
    "lip_corner_pull_left",
    "lip_corner_pull_right",
    "lip_corner_depress_left",
    "lip_corner_depress_right",
    "lip_press",
    "mouth_open",
    "jaw_drop",
    "nose_wrinkle",
    "brow_lift",
    "lip_pucker",
];
pub const NUM_FEATURES: usize = 15;

/// Plain-words phrases for summaries, in [`FEATURE_NAMES`] order.
pub const FEATURE_PHRASES: [&str; NUM_FEATURES] = [
    "inner brow raise",
    "outer brow raise",
    "brow lower",
    "left eye opening change",
    "right eye opening change",
    "left lip-corner pull",
    "right lip-corner pull",
    "left lip-corner depress",
    "right lip-corner depress",
    "lip press",
    "mouth open",
    "jaw drop",
    "nose wrinkle",
    "brow lift",
    "lip pucker",
];

pub const INNER_BROW_RAISE: usize = 0;
pub const OUTER_BROW_RAISE: usize = 1;
pub const BROW_LOWER: usize = 2;
pub const EYE_OPEN_LEFT: usize = 3;
pub const EYE_OPEN_RIGHT: usize = 4;
pub const LIP_CORNER_PULL_LEFT: usize = 5;
pub const LIP_CORNER_PULL_RIGHT: usize = 6;
pub const LIP_CORNER_DEPRESS_LEFT: usize = 7;
pub const LIP_CORNER_DEPRESS_RIGHT: usize = 8;
pub const MOUTH_OPEN: usize = 10;
pub const JAW_DROP: usize = 11;
pub const LIP_PRESS: usize = 9;
pub const NOSE_WRINKLE: usize = 12;
pub const BROW_LIFT: usize = 13;
pub const LIP_PUCKER: usize = 14;

/// Whether a feature acts in both directions: eyes both close (blink, squint) and widen.
pub fn is_bidirectional(feature: usize) -> bool {
    feature == EYE_OPEN_LEFT || feature == EYE_OPEN_RIGHT
}

/// Features that move when the person talks.
pub fn is_mouth_feature(feature: usize) -> bool {
    matches!(feature, LIP_PRESS | MOUTH_OPEN | JAW_DROP)
}

/// Features that talking moves: the lips, the lip corners, the jaw, the upper lip under the nose,
/// the lips rounding.
pub fn is_speech_channel(feature: usize) -> bool {
    (5..=12).contains(&feature) || feature == LIP_PUCKER
}

pub fn is_eye_feature(feature: usize) -> bool {
    feature == EYE_OPEN_LEFT || feature == EYE_OPEN_RIGHT
}

/// The feature values of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionFeatures(pub [f64; NUM_FEATURES]);

/// Landmarks used for alignment: eye corners and the nose bridge (iBUG 68 indices).
const STABLE: [usize; 8] = [36, 39, 42, 45, 27, 28, 29, 30];

/// Landmarks in the canonical frame: origin between the eyes, x from the person's right eye to
/// their left, y down, inter-ocular distance 1.
fn eye_frame(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let centre = |range: std::ops::Range<usize>| {
        let n = range.len() as f64;
        range.fold([0.0, 0.0], |acc, i| {
            [acc[0] + points[i][0] / n, acc[1] + points[i][1] / n]
        })
    };
    let right = centre(36..42);
    let left = centre(42..48);
    let origin = [(right[0] + left[0]) / 2.0, (right[1] + left[1]) / 2.0];
    let axis = [left[0] - right[0], left[1] - right[1]];
    let iod = (axis[0] * axis[0] + axis[1] * axis[1]).sqrt().max(1e-9);
    let (c, s) = (axis[0] / iod, axis[1] / iod);
    points
        .iter()
        .map(|p| {
            let (dx, dy) = (p[0] - origin[0], p[1] - origin[1]);
            [(c * dx + s * dy) / iod, (-s * dx + c * dy) / iod]
        })
        .collect()
}

/// Least-squares similarity transform taking `from` onto `to` (both over [`STABLE`]), applied to
/// every point of `points`.
fn procrustes(points: &[[f64; 2]], to: &[[f64; 2]; STABLE.len()]) -> Vec<[f64; 2]> {
    let n = STABLE.len() as f64;
    let from: Vec<[f64; 2]> = STABLE.iter().map(|&i| points[i]).collect();
    let mean = |v: &[[f64; 2]]| {
        v.iter()
            .fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n])
    };
    let (mf, mt) = (mean(&from), mean(to));
    // Complex-number form: to ≈ z · from + t, z = a + ib minimising the squared error.
    let (mut a, mut b, mut norm) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f[0] - mf[0], f[1] - mf[1]);
        let (tx, ty) = (t[0] - mt[0], t[1] - mt[1]);
        a += fx * tx + fy * ty;
        b += fx * ty - fy * tx;
        norm += fx * fx + fy * fy;
    }
    let (a, b) = (a / norm.max(1e-12), b / norm.max(1e-12));
    points
        .iter()
        .map(|p| {
            let (x, y) = (p[0] - mf[0], p[1] - mf[1]);
            [a * x - b * y + mt[0], b * x + a * y + mt[1]]
        })
        .collect()
}

/// The reference shape of the stable points for one face: their per-coordinate median over the
/// given frames, each in the eye frame. A person-specific template makes the alignment exact for
/// their own geometry.
pub fn reference_shape<'a>(
    frames: impl Iterator<Item = &'a [[f64; 2]]>,
) -> Option<[[f64; 2]; STABLE.len()]> {
    let mut columns = vec![Vec::new(); STABLE.len() * 2];
    for points in frames.filter(|p| p.len() == 68) {
        let canon = eye_frame(points);
        for (k, &i) in STABLE.iter().enumerate() {
            columns[2 * k].push(canon[i][0]);
            columns[2 * k + 1].push(canon[i][1]);
        }
    }
    if columns[0].is_empty() {
        return None;
    }
    let mut out = [[0.0; 2]; STABLE.len()];
    for (k, point) in out.iter_mut().enumerate() {
        point[0] = super::stats::median(&mut columns[2 * k]);
        point[1] = super::stats::median(&mut columns[2 * k + 1]);
    }
    Some(out)
}

/// Features of one face's 68 landmarks; `reference` from [`reference_shape`] (or `None` to align
/// by eye centres alone). `None` for a landmark set that is not 68 points.
pub fn action_features(
    landmarks: &[[f64; 2]],
    reference: Option<&[[f64; 2]; STABLE.len()]>,
) -> Option<ActionFeatures> {
    if landmarks.len() != 68
        || landmarks
            .iter()
            .any(|p| !p[0].is_finite() || !p[1].is_finite())
    {
        return None;
    }
    let canon = eye_frame(landmarks);
    let p = match reference {
        Some(r) => procrustes(&canon, r),
        None => canon,
    };
    let x = |i: usize| p[i][0];
    let y = |i: usize| p[i][1];
    let dist = |i: usize, j: usize| ((x(i) - x(j)).powi(2) + (y(i) - y(j)).powi(2)).sqrt();
    let mean_y = |idx: &[usize]| idx.iter().map(|&i| y(i)).sum::<f64>() / idx.len() as f64;

    // Eye-centre heights (right eye 36–41, left eye 42–47).
    let eye_r = mean_y(&[36, 37, 38, 39, 40, 41]);
    let eye_l = mean_y(&[42, 43, 44, 45, 46, 47]);
    // Brow height above the eye: larger = raised (y grows downward).
    let inner = ((eye_r - mean_y(&[20, 21])) + (eye_l - mean_y(&[22, 23]))) / 2.0;
    let outer = ((eye_r - mean_y(&[17, 18])) + (eye_l - mean_y(&[25, 26]))) / 2.0;
    let brows =
        ((eye_r - mean_y(&[17, 18, 19, 20, 21])) + (eye_l - mean_y(&[22, 23, 24, 25, 26]))) / 2.0;
    // Brow lowerer (AU4) pulls the brows down and together.
    let brow_lower = -(brows + dist(21, 22)) / 2.0;
    // Eye opening: lid gap over eye width (an aspect ratio, so independent of the face's size).
    let open = |a: usize, b: usize, c: usize, d: usize, l: usize, r: usize| {
        (dist(a, b) + dist(c, d)) / (2.0 * dist(l, r).max(1e-9))
    };
    let open_r = open(37, 41, 38, 40, 36, 39);
    let open_l = open(43, 47, 44, 46, 42, 45);
    // Lip corners: 48 is the right corner (image left, negative x), 54 the left.
    // Pull (AU12) moves a corner up and out: out from the lips' own midline, not the eyes' (the
    // mouth sits nearer the camera, so a turned head shifts it sideways against the eyes).
    let mid_x = (x(51) + x(57) + x(62) + x(66)) / 4.0;
    let pull_r = (mid_x - x(48)) - y(48);
    let pull_l = (x(54) - mid_x) - y(54);
    // Depress (AU15) moves a corner down relative to the lips' centre line.
    let lip_mid = (y(51) + y(57) + y(62) + y(66)) / 4.0;
    let depress_r = y(48) - lip_mid;
    let depress_l = y(54) - lip_mid;
    // Lip press (AU24): the red of the lips thins.
    let lip_press = -((y(57) - y(51)) - (y(66) - y(62)).max(0.0));
    let mouth_open = (y(66) - y(62)).max(0.0);
    let jaw_drop = y(8);
    // Nose wrinkle (AU9) lifts the nostrils and upper lip towards the eyes.
    let nose_wrinkle = -(y(31) + y(35) + y(50) + y(52)) / 4.0;
    // Lip pucker (AU18, AU22): the corners drawn in towards each other, the mouth narrowing (an
    // "oh", a pout). The pulls count only outward, so without it a rounded mouth moved nothing.
    let lip_pucker = -(x(54) - x(48));

    Some(ActionFeatures([
        inner,
        outer,
        brow_lower,
        open_l,
        open_r,
        pull_l,
        pull_r,
        depress_l,
        depress_r,
        lip_press,
        mouth_open,
        jaw_drop,
        nose_wrinkle,
        // From pixels, not landmarks: set by the timeline.
        0.0,
        lip_pucker,
    ]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plausible frontal 68-point face (unit-ish coordinates).
    pub(crate) fn synthetic_face() -> Vec<[f64; 2]> {
        let mut p = vec![[0.0; 2]; 68];
        for (i, q) in p.iter_mut().enumerate().take(17) {
            let a = std::f64::consts::PI * (i as f64 / 16.0);
            *q = [-a.cos(), 0.2 + a.sin()];
        }
        for i in 0..5 {
            p[17 + i] = [-0.8 + 0.15 * i as f64, -0.5];
            p[22 + i] = [0.2 + 0.15 * i as f64, -0.5];
        }
        for i in 0..4 {
            p[27 + i] = [0.0, -0.3 + 0.15 * i as f64];
        }
        for i in 0..5 {
            p[31 + i] = [-0.2 + 0.1 * i as f64, 0.35];
        }
        let eye = |cx: f64| {
            [
                [cx - 0.2, 0.0],
                [cx - 0.07, -0.06],
                [cx + 0.07, -0.06],
                [cx + 0.2, 0.0],
                [cx + 0.07, 0.06],
                [cx - 0.07, 0.06],
            ]
        };
        p[36..42].copy_from_slice(&eye(-0.5));
        p[42..48].copy_from_slice(&eye(0.5));
        for i in 0..12 {
            let a = std::f64::consts::TAU * i as f64 / 12.0;
            p[48 + i] = [-0.4 * a.cos(), 0.65 - 0.12 * a.sin()];
        }
        for i in 0..8 {
            let a = std::f64::consts::TAU * i as f64 / 8.0;
            p[60 + i] = [-0.3 * a.cos(), 0.65 - 0.03 * a.sin()];
        }
        p
    }

    #[test]
    fn features_ignore_position_rotation_and_scale() {
        let face = synthetic_face();
        let reference = reference_shape(std::iter::once(face.as_slice())).unwrap();
        let base = action_features(&face, Some(&reference)).unwrap();
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        let moved: Vec<[f64; 2]> = face
            .iter()
            .map(|p| {
                [
                    120.0 + 80.0 * (c * p[0] - s * p[1]),
                    40.0 + 80.0 * (s * p[0] + c * p[1]),
                ]
            })
            .collect();
        let after = action_features(&moved, Some(&reference)).unwrap();
        for (k, name) in FEATURE_NAMES.iter().enumerate() {
            assert!((base.0[k] - after.0[k]).abs() < 1e-9, "{name}");
        }
    }

    #[test]
    fn a_mouth_shifted_sideways_pulls_neither_corner() {
        // A turned head moves the mouth sideways against the eyes; the corners keep their
        // distance from the lips' midline.
        let face = synthetic_face();
        let mut turned = face.clone();
        turned[48..68].iter_mut().for_each(|p| p[0] += 0.05);
        let (a, b) = (
            action_features(&face, None).unwrap().0,
            action_features(&turned, None).unwrap().0,
        );
        for c in [LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT] {
            assert!((b[c] - a[c]).abs() < 1e-9, "{}", FEATURE_NAMES[c]);
        }
    }

    #[test]
    fn raising_the_lip_corners_is_a_pull() {
        let face = synthetic_face();
        let reference = reference_shape(std::iter::once(face.as_slice())).unwrap();
        let base = action_features(&face, Some(&reference)).unwrap();
        let mut smile = face.clone();
        smile[48] = [smile[48][0] - 0.05, smile[48][1] - 0.08];
        smile[54] = [smile[54][0] + 0.05, smile[54][1] - 0.08];
        let after = action_features(&smile, Some(&reference)).unwrap();
        assert!(after.0[5] > base.0[5] + 0.05);
        assert!(after.0[6] > base.0[6] + 0.05);
        assert!(after.0[7] < base.0[7]);
    }

    #[test]
    fn drawing_the_lip_corners_in_is_a_pucker_and_no_pull() {
        // An "oh": both corners 0.06 nearer the middle; a smile widens the mouth instead.
        let face = synthetic_face();
        let base = action_features(&face, None).unwrap().0;
        let mut oh = face.clone();
        oh[48][0] += 0.06;
        oh[54][0] -= 0.06;
        let oh = action_features(&oh, None).unwrap().0;
        assert!((oh[LIP_PUCKER] - base[LIP_PUCKER] - 0.12).abs() < 1e-9);
        assert!(oh[LIP_CORNER_PULL_LEFT] < base[LIP_CORNER_PULL_LEFT]);
        assert!(oh[LIP_CORNER_PULL_RIGHT] < base[LIP_CORNER_PULL_RIGHT]);
        let mut smile = face.clone();
        smile[48][0] -= 0.05;
        smile[54][0] += 0.05;
        let smile = action_features(&smile, None).unwrap().0;
        assert!(smile[LIP_PUCKER] < base[LIP_PUCKER]);
    }
}
