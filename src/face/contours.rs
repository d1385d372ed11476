//! How clearly the image shows the lips and the eyes where the landmarks put them: the mean
//! luminance step across the lip contours and across the eye contours. A hand over the mouth
//! leaves the landmark network guessing a mouth on the back of the hand, and its guesses move
//! every channel; the lip contour then runs over smooth skin and its step falls to a fraction of
//! the person's own (speech, smiles and a dropped jaw keep a lip edge there). The timeline
//! compares both against the person's rest ([`crate::timeline::cover`]); the eyes tell a hand
//! from a darker room, which dims every edge alike.

use serde::{Deserialize, Serialize};

use crate::frames::RgbImage;

use super::brows::luma;

/// The step is taken this far (inter-ocular units) either side of the contour: about a pixel on
/// a small face, a lip's thin border on a large one.
const ACROSS: f64 = 0.04;
/// As in [`super::brow_profiles`]: under this many pixels between the eyes there is nothing to
/// measure.
const MIN_EYE_DISTANCE: f64 = 16.0;

/// The outer lip line (48–59), the inner one (60–67), and each eye (36–41, 42–47), as closed
/// contours of the 68 iBUG points.
const LIPS: [std::ops::Range<usize>; 2] = [48..60, 60..68];
const EYES: [std::ops::Range<usize>; 2] = [36..42, 42..48];

/// Lip and eye contour contrast of one face: mean absolute luminance step (0–255 levels) across
/// the lip contours and across the eye contours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContourContrast {
    pub lips: f32,
    pub eyes: f32,
}

/// Mean absolute step across the closed contours `rings`, sampled about once a pixel.
fn contour_step(
    image: &RgbImage,
    points: &[[f64; 2]],
    rings: &[std::ops::Range<usize>],
    d: f64,
) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for ring in rings {
        for k in ring.clone() {
            let a = points[k];
            let b = points[if k + 1 == ring.end { ring.start } else { k + 1 }];
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len = (dx * dx + dy * dy).sqrt();
            if len < 1e-6 {
                continue;
            }
            // The unit normal, `d` pixels long.
            let (nx, ny) = (-dy / len * d, dx / len * d);
            let steps = (len.ceil() as usize).max(2);
            for s in 0..steps {
                let t = (s as f64 + 0.5) / steps as f64;
                let (x, y) = (a[0] + t * dx, a[1] + t * dy);
                sum += (luma(image, x + nx, y + ny) - luma(image, x - nx, y - ny)).abs();
                count += 1;
            }
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// The face's [`ContourContrast`]; `None` for landmarks that are not 68 finite points, eyes too
/// close to measure, or lips or eyes at or past the frame's edge.
pub fn contour_contrast(image: &RgbImage, landmarks: &[[f64; 2]]) -> Option<ContourContrast> {
    if landmarks.len() != 68
        || image.width == 0
        || image.height == 0
        || landmarks.iter().flatten().any(|v| !v.is_finite())
    {
        return None;
    }
    let centre = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        r.fold([0.0, 0.0], |c, k| {
            [c[0] + landmarks[k][0] / n, c[1] + landmarks[k][1] / n]
        })
    };
    let (right, left) = (centre(36..42), centre(42..48));
    let iod = ((left[0] - right[0]).powi(2) + (left[1] - right[1]).powi(2)).sqrt();
    if iod < MIN_EYE_DISTANCE {
        return None;
    }
    let d = ACROSS * iod;
    // A mouth or an eye past the frame's edge is not hidden, just not in the picture: the edge's
    // clamped pixels would read as smooth skin.
    let inside = |k: usize| {
        let [x, y] = landmarks[k];
        x >= d && y >= d && x + d <= (image.width - 1) as f64 && y + d <= (image.height - 1) as f64
    };
    if !(36..68).all(inside) {
        return None;
    }
    Some(ContourContrast {
        lips: contour_step(image, landmarks, &LIPS, d) as f32,
        eyes: contour_step(image, landmarks, &EYES, d) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 96-px grey face: eyes at (30, 40) and (66, 40), lips an ellipse at (48, 70), the iBUG
    /// points on their outlines; `lips_level` is the lips' grey (the skin's is 150).
    fn face_image(lips_level: u8) -> (RgbImage, Vec<[f64; 2]>) {
        let (w, h) = (96usize, 96usize);
        let mut points = vec![[48.0, 50.0]; 68];
        let ring = |points: &mut Vec<[f64; 2]>,
                    r: std::ops::Range<usize>,
                    c: [f64; 2],
                    rx: f64,
                    ry: f64| {
            let n = r.len() as f64;
            for (j, k) in r.enumerate() {
                let a = std::f64::consts::TAU * j as f64 / n;
                points[k] = [c[0] - rx * a.cos(), c[1] - ry * a.sin()];
            }
        };
        ring(&mut points, 36..42, [30.0, 40.0], 7.0, 3.0);
        ring(&mut points, 42..48, [66.0, 40.0], 7.0, 3.0);
        ring(&mut points, 48..60, [48.0, 70.0], 14.0, 6.0);
        ring(&mut points, 60..68, [48.0, 70.0], 10.0, 1.5);
        let inside = |x: f64, y: f64, c: [f64; 2], rx: f64, ry: f64| {
            ((x - c[0]) / rx).powi(2) + ((y - c[1]) / ry).powi(2) < 1.0
        };
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let (x, y) = (x as f64 + 0.5, y as f64 + 0.5);
                let v = if inside(x, y, [30.0, 40.0], 7.0, 3.0)
                    || inside(x, y, [66.0, 40.0], 7.0, 3.0)
                {
                    40
                } else if inside(x, y, [48.0, 70.0], 10.0, 1.5) {
                    30
                } else if inside(x, y, [48.0, 70.0], 14.0, 6.0) {
                    lips_level
                } else {
                    150
                };
                data.extend([v, v, v]);
            }
        }
        (RgbImage::new(w, h, data).unwrap(), points)
    }

    #[test]
    fn lips_drawn_where_the_points_are_have_an_edge_and_skin_has_none() {
        let (image, points) = face_image(95);
        let seen = contour_contrast(&image, &points).unwrap();
        assert!(seen.lips > 20.0 && seen.eyes > 40.0, "{seen:?}");
        // The same points over a hand: skin all round the mouth.
        let (mut covered, _) = face_image(150);
        for y in 58..84 {
            for x in 28..70 {
                covered.data[3 * (y * 96 + x)..3 * (y * 96 + x) + 3].fill(150);
            }
        }
        let hidden = contour_contrast(&covered, &points).unwrap();
        assert!(hidden.lips < 0.05 * seen.lips, "{hidden:?}");
        assert_eq!(hidden.eyes, seen.eyes);
    }

    #[test]
    fn a_face_too_small_or_malformed_has_no_contrast() {
        let (image, mut points) = face_image(95);
        assert!(contour_contrast(&image, &points[..67]).is_none());
        points[40] = [f64::NAN, 40.0];
        assert!(contour_contrast(&image, &points).is_none());
        // The mouth below the frame's bottom edge.
        let (_, points) = face_image(95);
        let low: Vec<[f64; 2]> = points.iter().map(|p| [p[0], p[1] + 20.0]).collect();
        assert!(contour_contrast(&image, &low).is_none());
        let tiny: Vec<[f64; 2]> = face_image(95)
            .1
            .iter()
            .map(|p| [p[0] / 8.0, p[1] / 8.0])
            .collect();
        assert!(contour_contrast(&image, &tiny).is_none());
    }
}
