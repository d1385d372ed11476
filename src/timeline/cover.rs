//! A mouth covered by a hand (or a cup, a microphone): the frames where the lip contours the
//! landmarks place show a fraction of the person's own lip edge ([`crate::face::contour_contrast`])
//! while the eyes keep theirs. There the landmark network guesses a mouth on the back of the
//! hand, the classifier reads a face it cannot see, and every channel jumps: the spotter treats
//! such frames as frames without a face, and the summaries say the mouth was covered.

use crate::face::ContourContrast;

use super::rest_or_all;
use super::stats::median;

/// A frame is covered where its lip contrast is under this share of the person's rest...
const COVERED: f64 = 0.3;
/// ...and its lip-to-eye ratio under this share of theirs (a darker room dims the eyes too).
const COVERED_AGAINST_EYES: f64 = 0.4;
/// Around such frames, the hand coming and going: frames whose lip contrast is under this share
/// of the rest join the covered stretch.
const PARTLY_COVERED: f64 = 0.6;

/// Per frame, whether the mouth is covered. `contrasts` are the main face's per frame (`None`
/// where it is not visible or too small); `neutral` marks the frames the classifier reads
/// neutral, the person's rest where there are enough of them.
pub fn mouth_covered(contrasts: &[Option<ContourContrast>], neutral: &[bool]) -> Vec<bool> {
    let n = contrasts.len();
    let rest = rest_or_all(
        contrasts
            .iter()
            .zip(neutral)
            .filter_map(|(c, &at_rest)| c.map(|c| (at_rest, c))),
    );
    let lips = median(&mut rest.iter().map(|c| c.lips as f64).collect::<Vec<_>>());
    let eyes = median(&mut rest.iter().map(|c| c.eyes as f64).collect::<Vec<_>>());
    // No rest to compare with (no face, or none measurable), or no edge in it.
    if !(lips > 0.0 && eyes > 0.0) {
        return vec![false; n];
    }
    let lip_share = |c: &ContourContrast| c.lips as f64 / lips;
    let core: Vec<bool> = contrasts
        .iter()
        .map(|c| {
            c.is_some_and(|c| {
                lip_share(&c) < COVERED
                    && (c.lips as f64 / c.eyes.max(1e-6) as f64) / (lips / eyes)
                        < COVERED_AGAINST_EYES
            })
        })
        .collect();
    let partly: Vec<bool> = contrasts
        .iter()
        .map(|c| c.is_some_and(|c| lip_share(&c) < PARTLY_COVERED))
        .collect();
    // Grow each covered frame over its partly covered neighbours.
    let mut covered = core.clone();
    for i in (0..n).filter(|&i| core[i]) {
        for j in (0..i).rev().take_while(|&j| partly[j] && !core[j]) {
            covered[j] = true;
        }
        for j in (i + 1..n).take_while(|&j| partly[j] && !core[j]) {
            covered[j] = true;
        }
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lips: f32, eyes: f32) -> Option<ContourContrast> {
        Some(ContourContrast { lips, eyes })
    }

    #[test]
    fn a_hand_over_the_mouth_covers_it_from_when_it_comes_to_when_it_goes() {
        // Rest 20/40; the hand comes (11.5), covers (2, 3), goes (11).
        let mut contrasts = vec![c(20.0, 40.0); 10];
        contrasts.extend([
            c(25.0, 40.0),
            c(11.5, 40.0),
            c(2.0, 40.0),
            c(3.0, 41.0),
            c(11.0, 39.0),
        ]);
        contrasts.extend(vec![c(19.0, 40.0); 5]);
        let neutral = vec![true; contrasts.len()];
        let covered = mouth_covered(&contrasts, &neutral);
        let at: Vec<usize> = (0..covered.len()).filter(|&i| covered[i]).collect();
        assert_eq!(at, vec![11, 12, 13, 14]);
    }

    #[test]
    fn a_darker_room_or_a_wide_open_mouth_is_no_cover() {
        let mut contrasts = vec![c(20.0, 40.0); 10];
        // The light drops to a fifth: lips and eyes alike.
        contrasts.extend(vec![c(4.0, 8.0); 5]);
        // A jaw drop and a smile keep half the lip edge.
        contrasts.extend([c(9.0, 40.0), c(11.0, 40.0)]);
        // No face, then one too small to measure.
        contrasts.extend([None, None]);
        let neutral = vec![true; contrasts.len()];
        assert!(mouth_covered(&contrasts, &neutral).iter().all(|&v| !v));
        assert!(
            mouth_covered(&[None, None], &[true, true])
                .iter()
                .all(|&v| !v)
        );
    }
}
