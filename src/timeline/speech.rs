//! Speech: the mouth opening and closing again and again. Talking moves the lips, the lip
//! corners, the upper lip under the nose, and the expression classifier (teeth read as happy,
//! an open mouth as surprised), so in speech frames the classifier and the mouth's opening
//! channels count only where they hold (a smile while talking) rather than where they follow the
//! syllables, and the lip corners need a higher activation to start an episode.

use super::stats::{peak, smooth};

/// Swing of the mouth opening (inter-ocular units) that counts as one opening or closing.
const SWING: f64 = 0.05;
/// Swings this close (seconds) belong to one stretch of speech; a stretch needs MIN_SWINGS. A
/// breath between phrases (up to about a second) does not end the speech: a first or last
/// phrase too short to form a chain of its own stays speech.
const MAX_GAP_S: f64 = 1.0;
const MIN_SWINGS: usize = 3;
/// A chain within MAX_GAP_S of the clip's first or last frame needs only this many: a
/// recording started (or stopped) mid-sentence sees the last (or first) syllables of a phrase
/// whose other swings fall outside it. Of the dev controls' cuts made to start every 0.2 s
/// whose first second the whole clip reads as speech, the cut itself read speech there in 549
/// of 603 with three swings, 565 with two (dev, seeds 13-20: spliced F1 0.883 -> 0.884, micro
/// 0.844 -> 0.843; false events on the controls and in late starts unchanged).
const MIN_SWINGS_AT_EDGE: usize = 2;
/// A chain is speech only if two of its swings come this close (seconds): a syllable opens and
/// closes the mouth within it. A pout, a held opening and a second one a second later swing as
/// often but slowly.
const SYLLABLE_S: f64 = 0.4;
/// Speech frames extend this far (seconds) beyond the first and last swing.
const MARGIN_S: f64 = 0.2;
/// In speech, the classifier and the mouth's opening count where they hold this long (seconds
/// each side).
pub const HOLD_S: f64 = 0.15;

/// Frames where the person talks, from the mouth-opening series (NaN where no face).
pub fn speech_frames(mouth_open: &[f64], fps: f64) -> Vec<bool> {
    let n = mouth_open.len();
    let m = smooth(mouth_open, 1);
    // Turning points of a zigzag with hysteresis SWING: each is one opening or closing. A face
    // lost for a few frames (the detector misses a face that fills the frame) keeps the zigzag
    // going; one lost longer than a pause between phrases starts it afresh.
    let mut swings: Vec<usize> = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut rising: Option<bool> = None;
    let max_gap = (MAX_GAP_S * fps).round() as usize;
    let mut faceless = 0;
    for (i, &v) in m.iter().enumerate() {
        if v.is_nan() {
            faceless += 1;
            if faceless > max_gap {
                (lo, hi, rising) = (f64::INFINITY, f64::NEG_INFINITY, None);
            }
            continue;
        }
        faceless = 0;
        if v < lo {
            lo = v;
        }
        if v > hi {
            hi = v;
        }
        if rising != Some(true) && v - lo >= SWING {
            swings.push(i);
            rising = Some(true);
            hi = v;
        } else if rising != Some(false) && hi - v >= SWING {
            swings.push(i);
            rising = Some(false);
            lo = v;
        }
    }
    // Speech: a chain of swings each close after the last (syllables), not two swings of one
    // smile or a mouth opening again seconds later.
    let margin = (MARGIN_S * fps).round() as usize;
    let syllable = (SYLLABLE_S * fps).round() as usize;
    let mut out = vec![false; n];
    let mut k = 0;
    while k < swings.len() {
        let mut j = k;
        while j + 1 < swings.len() && swings[j + 1] - swings[j] <= max_gap {
            j += 1;
        }
        let syllable = swings[k..=j].windows(2).any(|w| w[1] - w[0] <= syllable);
        // A chain this close to the clip's start or end runs on past it.
        let from_start = swings[k] <= max_gap;
        let to_end = n - 1 - swings[j] <= max_gap;
        let fewest = if from_start || to_end {
            MIN_SWINGS_AT_EDGE
        } else {
            MIN_SWINGS
        };
        if j + 1 - k >= fewest && syllable {
            // Speech that runs into the clip's start or end (a live recording stopped
            // mid-sentence) goes on past it: the mouth opening at the edge is a syllable whose
            // swing is not seen whole.
            let a = if from_start {
                0
            } else {
                swings[k].saturating_sub(margin)
            };
            let b = if to_end {
                n - 1
            } else {
                (swings[j] + margin).min(n - 1)
            };
            out[a..=b].iter_mut().for_each(|f| *f = true);
        }
        k = j + 1;
    }
    for (i, f) in out.iter_mut().enumerate() {
        *f &= !mouth_open[i].is_nan();
    }
    out
}

/// Morphological opening of `a` (minimum, then maximum, over `radius` frames each side) where
/// `mask` holds; elsewhere `a` unchanged. Keeps a plateau at its full extent, drops a flicker
/// shorter than the window.
pub fn hold_in(a: &[f64], mask: &[bool], radius: usize) -> Vec<f64> {
    let window = |v: &[f64], i: usize, f: fn(f64, f64) -> f64, init: f64| {
        let lo = i.saturating_sub(radius);
        let hi = (i + radius + 1).min(v.len());
        v[lo..hi].iter().copied().fold(init, f)
    };
    let eroded: Vec<f64> = (0..a.len())
        .map(|i| {
            if mask[i] {
                window(a, i, f64::min, f64::INFINITY)
            } else {
                a[i]
            }
        })
        .collect();
    (0..a.len())
        .map(|i| {
            if mask[i] {
                window(&eroded, i, f64::max, f64::NEG_INFINITY)
            } else {
                a[i]
            }
        })
        .collect()
}

/// A wide opening in speech extends down to this share of its peak.
const WIDE_SHARE: f64 = 0.5;

/// Stretches in speech where a mouth-opening activation passes `wide`, far past the range the
/// syllables reach: a gasp, an "oh!", a laugh. Each extends down to half its peak for as long as
/// it keeps falling away from it, so the syllables either side stay out.
pub fn wide_openings(open: &[f64], speech: &[bool], wide: f64) -> Vec<(usize, usize)> {
    let n = open.len();
    let above: Vec<bool> = (0..n).map(|i| speech[i] && open[i] >= wide).collect();
    runs(&above)
        .into_iter()
        .map(|(start, end)| {
            let floor = WIDE_SHARE * peak(&open[start..=end]);
            let falls =
                |from: usize, to: usize| speech[to] && open[to] >= floor && open[to] <= open[from];
            let (mut s, mut e) = (start, end);
            while s > 0 && falls(s, s - 1) {
                s -= 1;
            }
            while e + 1 < n && falls(e, e + 1) {
                e += 1;
            }
            (s, e)
        })
        .collect()
}

/// The `share` quantile of `a` over the speech frames: how far the person's own words move a
/// channel. `None` with fewer than `min_frames` frames of speech.
pub fn speech_range(a: &[f64], speech: &[bool], share: f64, min_frames: usize) -> Option<f64> {
    let mut v: Vec<f64> = (0..a.len()).filter(|&i| speech[i]).map(|i| a[i]).collect();
    if v.len() < min_frames.max(1) {
        return None;
    }
    let k = ((v.len() - 1) as f64 * share.clamp(0.0, 1.0)) as usize;
    let (_, q, _) = v.select_nth_unstable_by(k, |x, y| x.total_cmp(y));
    Some(*q)
}

/// Runs of true frames as inclusive (start, end) pairs.
pub fn runs(mask: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < mask.len() {
        if mask[i] {
            let s = i;
            while i < mask.len() && mask[i] {
                i += 1;
            }
            out.push((s, i - 1));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllables_are_speech_and_a_held_open_mouth_is_not() {
        let fps = 30.0;
        // Opens and closes every 6 frames from frame 60 to 120; opens once and holds at 200.
        let m: Vec<f64> = (0..300)
            .map(|i| {
                if (60..120).contains(&i) && (i / 6) % 2 == 0 {
                    0.15
                } else if i >= 200 {
                    0.2
                } else {
                    0.02
                }
            })
            .collect();
        let s = speech_frames(&m, fps);
        assert!(s[70] && s[110], "speech missed");
        assert!(!s[20] && !s[180] && !s[250], "no speech there");
    }

    #[test]
    fn a_wide_opening_keeps_the_frames_falling_from_its_peak_and_not_the_syllables_around() {
        // Syllables at 4 units; a gasp rising 9, 12, 16, 12, 9 out of one (half its peak is 8); a
        // lone 11 outside speech.
        let open = [4.0, 0.0, 4.0, 9.0, 12.0, 16.0, 12.0, 9.0, 4.0, 0.0, 11.0];
        let mut speech = [true; 11];
        speech[10] = false;
        assert_eq!(wide_openings(&open, &speech, 10.0), vec![(3, 7)]);
    }

    #[test]
    fn the_speech_range_is_a_quantile_over_speech_frames_only() {
        let a: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let speech: Vec<bool> = (0..100).map(|i| i < 50).collect();
        assert_eq!(speech_range(&a, &speech, 0.9, 30), Some(44.0));
        assert_eq!(speech_range(&a, &speech, 0.9, 60), None);
    }

    #[test]
    fn a_face_lost_for_a_frame_now_and_then_does_not_hide_the_talking() {
        let fps = 30.0;
        // Syllables every 6 frames from 60 to 180, the detector missing the face at every
        // change of the mouth (a face that fills the frame): each gap is one frame.
        let m: Vec<f64> = (0..240)
            .map(|i| match i {
                60..180 if i % 6 == 0 => f64::NAN,
                60..180 if (i / 6) % 2 == 0 => 0.15,
                _ => 0.02,
            })
            .collect();
        let s = speech_frames(&m, fps);
        assert!(s[70] && s[130] && s[170], "{:?}", runs(&s));
        assert!(!s[66], "a faceless frame is not speech");
    }

    #[test]
    fn a_pause_between_phrases_stays_speech_but_a_long_silence_does_not() {
        let fps = 30.0;
        // Two one-syllable words 0.85 s apart (each too short to be a chain of its own), then
        // one more 5 s later.
        let m: Vec<f64> = (0..300)
            .map(|i| {
                if (60..64).contains(&i) || (90..94).contains(&i) || (250..254).contains(&i) {
                    0.15
                } else {
                    0.02
                }
            })
            .collect();
        let s = speech_frames(&m, fps);
        assert!(s[62] && s[76] && s[92], "the pause split the speech");
        assert!(
            !s[180] && !s[252],
            "a lone word after a long silence is not speech"
        );
    }

    #[test]
    fn speech_running_into_the_clip_edges_is_speech_up_to_them() {
        let fps = 30.0;
        // Syllables every 6 frames from frame 9 to 290 of 300: the clip cuts the talk at both
        // ends, so its first and last frames are speech too.
        let m: Vec<f64> = (0..300)
            .map(|i| {
                if (9..290).contains(&i) && (i / 6) % 2 == 1 {
                    0.15
                } else {
                    0.02
                }
            })
            .collect();
        let s = speech_frames(&m, fps);
        assert!(s[0] && s[150] && s[299], "{:?}", runs(&s));
    }

    #[test]
    fn a_slow_open_close_open_is_not_speech() {
        let fps = 30.0;
        // A pout parts the lips for a second, they close, then the mouth opens wide and stays:
        // three swings, each within a second of the last, none at a syllable's pace.
        let m: Vec<f64> = (0..150)
            .map(|i| match i {
                15..45 => 0.08,
                63.. => 0.4,
                _ => 0.0,
            })
            .collect();
        assert!(speech_frames(&m, fps).iter().all(|&s| !s));
    }

    #[test]
    fn holding_keeps_a_plateau_and_drops_a_flicker() {
        let mut a = vec![0.0; 40];
        a[5] = 9.0; // one-frame flicker
        for v in &mut a[20..35] {
            *v = 9.0; // held
        }
        let h = hold_in(&a, &[true; 40], 4);
        assert_eq!(h[5], 0.0);
        assert_eq!(&h[20..35], &[9.0; 15]);
        assert_eq!(h[19], 0.0);
    }
}
