//! The brows as pixels: a vertical luminance profile above each eye. The landmark network's brow
//! points move with the mouth (in most talking clips their frame-to-frame changes follow the
//! mouth's opening), and a clear brow raise moves them little more than a word does. The
//! profile (lid, skin, brow, forehead, wrinkles) moves up and down with the brow itself; the
//! timeline measures how far against the person's own rest ([`crate::timeline::brows`]).

use crate::frames::RgbImage;

/// Samples per profile, from the eye's centre upwards.
pub const PROFILE_LEN: usize = 49;
/// Between samples, in inter-ocular units: the profile reaches 0.96 above the eye's centre.
pub const PROFILE_STEP: f64 = 0.02;
/// Each sample averages columns across the brow, this far (inter-ocular units) either side of
/// the eye's centre.
const HALF_WIDTH: f64 = 0.3;
const COLUMNS: usize = 13;
/// Under this many pixels between the eyes a brow raise is a pixel or less: nothing to measure.
const MIN_EYE_DISTANCE: f64 = 16.0;

/// Luminance at a sub-pixel position (bilinear; clamped to the image).
pub(super) fn luma(image: &RgbImage, x: f64, y: f64) -> f64 {
    let (w, h) = (image.width, image.height);
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |x: usize, y: usize| {
        let p = &image.data[3 * (y * w + x)..3 * (y * w + x) + 3];
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    at(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + at(x1, y0) * fx * (1.0 - fy)
        + at(x0, y1) * (1.0 - fx) * fy
        + at(x1, y1) * fx * fy
}

/// The luminance profiles above the person's right eye, then their left ([`PROFILE_LEN`] each),
/// in the face's own upright frame (eye line horizontal, distances in inter-ocular units).
/// `None` for landmarks that are not 68 finite points, or eyes too close to measure.
pub fn brow_profiles(image: &RgbImage, landmarks: &[[f64; 2]]) -> Option<Vec<f32>> {
    if landmarks.len() != 68 || image.width == 0 || image.height == 0 {
        return None;
    }
    // Eye centres from the corners, which expressions barely move.
    let mid = |a: usize, b: usize| {
        [
            (landmarks[a][0] + landmarks[b][0]) / 2.0,
            (landmarks[a][1] + landmarks[b][1]) / 2.0,
        ]
    };
    let (right, left) = (mid(36, 39), mid(42, 45));
    let axis = [left[0] - right[0], left[1] - right[1]];
    let iod = (axis[0] * axis[0] + axis[1] * axis[1]).sqrt();
    if !iod.is_finite() || iod < MIN_EYE_DISTANCE {
        return None;
    }
    let across = [axis[0] / iod, axis[1] / iod];
    // Image y grows downwards: "up" is the eye line turned a quarter.
    let up = [across[1], -across[0]];
    let mut out = Vec::with_capacity(2 * PROFILE_LEN);
    for eye in [right, left] {
        for k in 0..PROFILE_LEN {
            let v = k as f64 * PROFILE_STEP;
            let sum: f64 = (0..COLUMNS)
                .map(|j| {
                    let u = HALF_WIDTH * (2.0 * j as f64 / (COLUMNS - 1) as f64 - 1.0);
                    let x = eye[0] + (u * across[0] + v * up[0]) * iod;
                    let y = eye[1] + (u * across[1] + v * up[1]) * iod;
                    luma(image, x, y)
                })
                .sum();
            out.push((sum / COLUMNS as f64) as f32);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_too_small_or_malformed_has_no_profile() {
        let image = RgbImage::new(8, 8, vec![0; 8 * 8 * 3]).unwrap();
        let mut points = vec![[4.0, 4.0]; 68];
        assert!(brow_profiles(&image, &points[..67]).is_none());
        points[42] = [5.0, 4.0];
        assert!(
            brow_profiles(&image, &points).is_none(),
            "eyes a pixel apart"
        );
        points[42] = [f64::NAN, 4.0];
        assert!(brow_profiles(&image, &points).is_none());
    }
}
