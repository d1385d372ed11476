//! Unit tests of the spotter in speech: what talking moves, and the expressions that still
//! stand out of it.
use super::*;

#[test]
fn in_speech_the_classifier_alone_is_not_an_event_but_a_held_smile_is() {
    let (t, idx, mut f) = still(300);
    // Talking from frame 60 to 240: the mouth opens and closes every 8 frames.
    for k in 0..22 {
        let start = 60 + k * 8;
        add(&mut f, MOUTH_OPEN, start..start + 4, 0.12);
    }
    // The classifier reads happy for 20 frames of speech (teeth), nothing else moves.
    let exprs = classes(
        300,
        |i| (100..120).contains(&i),
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert!(!s.talking.is_empty());
    // A smile held while talking: both lip corners pulled for 0.8 s.
    smile(&mut f, 170..194, 0.15);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(
        (s.events[0].onset_frame as i64 - 170).abs() <= 4,
        "{:?}",
        s.events[0]
    );
}

/// Talking from frame 60 to 240: the mouth opens and closes every 8 frames. In a clip with
/// speech a unit of the lip corners and the lips' rounding is 0.02, not the jitter floor's 0.01
/// (words move them that much).
fn talking(f: &mut [Option<[f64; NUM_FEATURES]>]) {
    for k in 0..22 {
        let start = 60 + k * 8;
        add(f, MOUTH_OPEN, start..start + 4, 0.12);
    }
}

#[test]
fn a_micro_smile_while_talking_is_an_event() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // Both lip corners pulled for 7 frames (0.23 s) in the middle of speech.
    smile(&mut f, 150..157, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(!s.talking.is_empty());
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    let e = &s.events[0];
    assert_eq!(e.kind, EventKind::Micro);
    assert!((e.onset_frame as i64 - 150).abs() <= 2, "{e:?}");
    assert!(e.moves.iter().any(|m| m.name == "lip_corner_pull_right"));
}

#[test]
fn in_speech_a_smile_no_longer_than_a_syllable_is_no_event() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // Both lip corners pulled for 4 frames (0.13 s) at 100, and for 6 (0.2 s) at 180.
    smile(&mut f, 100..104, 0.15);
    smile(&mut f, 180..186, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(
        (s.events[0].onset_frame as i64 - 180).abs() <= 2,
        "{:?}",
        s.events
    );
    // Without the rule the word-long pull is an event too.
    let options = SpotOptions {
        min_duration_in_speech_s: 0.0,
        ..SpotOptions::default()
    };
    let s = spot_series(&t, &idx, &f, &no_expr(300), None, FPS, &options);
    assert_eq!(s.events.len(), 2, "{:?}", s.events);
}

#[test]
fn the_classifier_alone_starts_no_event_just_after_speech_but_does_far_from_it() {
    let (t, idx, mut f) = still(400);
    talking(&mut f);
    // Happy for 8 frames 0.2 s after the last syllable (the mouth closing on a smile-like
    // vowel), and again, the same, 4 s later with no speech around; both times the lip corners
    // pull slightly (3 units of jitter, under `high`).
    let exprs = classes(
        400,
        |i| (245..253).contains(&i) || (360..368).contains(&i),
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    smile(&mut f, 245..253, 0.06);
    smile(&mut f, 360..368, 0.06);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(s.events[0].onset_frame >= 355, "{:?}", s.events[0]);
}

#[test]
fn a_smile_while_talking_does_not_absorb_the_lip_wobble_of_the_words_around_it() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The words move the right lip corner a little (2.5 units) for 0.33 s, then a micro smile.
    add(&mut f, 6, 140..150, 0.025);
    smile(&mut f, 150..157, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(
        (s.events[0].onset_frame as i64 - 150).abs() <= 2,
        "{:?}",
        s.events[0]
    );
}

#[test]
fn a_micro_smile_in_speech_ends_where_it_does_though_the_words_pull_a_corner_on_around_it() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The words pull the right lip corner 7 units (past the floor in speech) for 0.27 s on
    // either side of a 0.3-s smile: the corner's hysteresis alone carried the event over
    // 143-165, macro.
    add(&mut f, 6, 142..150, 0.07);
    smile(&mut f, 150..159, 0.15);
    add(&mut f, 6, 159..167, 0.07);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    let e = &s.events[0];
    assert_eq!(e.kind, EventKind::Micro, "{e:?}");
    assert!((e.onset_frame as i64 - 150).abs() <= 2, "{e:?}");
    assert!((e.offset_frame as i64 - 158).abs() <= 2, "{e:?}");
}

/// The classifier reads `class` (at `p`, the rest neutral) over `range`, neutral (0.95)
/// elsewhere.
fn read_over(
    n: usize,
    range: std::ops::Range<usize>,
    class: usize,
    p: f64,
) -> Vec<Option<[f64; 7]>> {
    let mut during = [0.0; 7];
    during[0] = 1.0 - p;
    during[class] = p;
    let mut otherwise = [0.0; 7];
    otherwise[0] = 0.95;
    otherwise[class] = 0.05;
    classes(n, |i| range.contains(&i), during, otherwise)
}

/// The classifier reads sad (0.7) over `range`, neutral elsewhere.
fn sad_over(n: usize, range: std::ops::Range<usize>) -> Vec<Option<[f64; 7]>> {
    read_over(n, range, 2, 0.7)
}

#[test]
fn in_speech_a_frown_the_classifier_confirms_is_an_event_but_a_brow_beat_is_not() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The brows drop 5 units with a word (0.3 s) at 90, and again for 0.8 s at 150 while the
    // classifier reads sad there.
    add(&mut f, 2, 90..99, 0.06);
    add(&mut f, 2, 150..174, 0.06);
    let exprs = sad_over(300, 150..174);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 150, "brow_lower");
    assert_one_event_at(&s, 150, "expression:sad");
}

#[test]
fn in_speech_a_gasp_is_an_event_but_an_open_vowel_read_surprised_is_not() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // An open vowel at 100: the classifier reads surprised for 5 frames with the syllable. A gasp
    // at 150: the jaw drops and the mouth opens wide for 0.6 s, read surprised throughout.
    add(&mut f, MOUTH_OPEN, 150..168, 0.3);
    add(&mut f, JAW_DROP, 150..168, 0.15);
    let exprs = classes(
        300,
        |i| (100..105).contains(&i) || (150..168).contains(&i),
        [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9],
        [0.95, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 150, "jaw_drop");
    assert_one_event_at(&s, 150, "expression:surprised");
}

#[test]
fn in_speech_a_brief_wide_opening_the_classifier_reads_is_an_event_but_a_word_said_wide_is_not() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // Two openings of 0.2 s, four times as wide as the syllables: at 100 the classifier reads
    // it surprised (a gasp), at 180 it reads nothing new (a word shouted).
    add(&mut f, MOUTH_OPEN, 100..106, 0.4);
    add(&mut f, MOUTH_OPEN, 180..186, 0.4);
    let exprs = read_over(300, 100..106, 6, 0.8);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 100, "mouth_open");
    let e = &s.events[0];
    assert!(
        e.offset_frame <= 107,
        "the syllables after it stay out: {e:?}"
    );
    // The same face with the wide-opening rule off: the gasp is talking, like the shout.
    let options = SpotOptions {
        wide_open_in_speech: f64::INFINITY,
        ..SpotOptions::default()
    };
    let s = spot_series(&t, &idx, &f, &exprs, None, FPS, &options);
    assert!(s.events.is_empty(), "{:?}", s.events);
}

#[test]
fn in_speech_an_oh_the_classifier_reads_surprised_is_an_event_that_names_the_rounded_lips() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The lips round for 0.27 s at 150 (corners drawn in 5 units, under the bar for one
    // channel alone in speech), read surprised: an "oh", not a syllable.
    add(&mut f, LIP_PUCKER, 150..158, 0.1);
    let exprs = read_over(300, 150..158, 6, 0.9);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_one_event_at(&s, 150, "lip_pucker");
    // Read as nothing, the same rounding is one of the words.
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(s.events.is_empty(), "{:?}", s.events);
}

#[test]
fn an_expressive_talker_must_smile_past_the_range_their_words_pull_the_lip_corners() {
    for expressive in [false, true] {
        let (t, idx, mut f) = still(300);
        talking(&mut f);
        if expressive {
            // The words pull both lip corners 6 units in every syllable, as the mouth closes.
            for k in 0..22 {
                let start = 60 + k * 8 + 3;
                smile(&mut f, start..start + 4, 0.12);
            }
        }
        // A smile of 7 units for 0.3 s at 120 (past `high_in_speech`), one of 25 at 180.
        smile(&mut f, 120..129, 0.14);
        smile(&mut f, 180..189, 0.5);
        let s = spot_default(&t, &idx, &f, &no_expr(300));
        let onsets: Vec<usize> = s.events.iter().map(|e| e.onset_frame).collect();
        let near = |frame: usize| onsets.iter().any(|&o| o.abs_diff(frame) <= 3);
        assert_eq!(
            near(120),
            !expressive,
            "expressive {expressive}: {onsets:?}"
        );
        assert!(near(180), "expressive {expressive}: {onsets:?}");
        assert_eq!(onsets.len(), if expressive { 1 } else { 2 }, "{onsets:?}");
    }
}

#[test]
fn a_smile_in_speech_ends_where_the_lip_corners_fall_back_into_the_talkers_own_range() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The words pull both lip corners up to 11 units in every syllable, away from the smile.
    for start in (0..22)
        .map(|k| 60 + k * 8 + 3)
        .filter(|s| !(140..175).contains(s))
    {
        smile(&mut f, start..start + 3, 0.12);
    }
    // A 0.23 s smile the classifier reads happy (16 units), then the corners stay up 5 units for
    // 0.4 s: more than a quarter of the smile's peak, less than this person's words pull them.
    smile(&mut f, 150..157, 0.2);
    smile(&mut f, 157..169, 0.09);
    let s = spot_default(&t, &idx, &f, &read_over(300, 150..157, 1, 0.9));
    assert_one_event_at(&s, 150, "lip_corner_pull_right");
    // Without the talker's range it ran on to frame 167 and read as a macro-expression.
    assert!(s.events[0].offset_frame <= 159, "{:?}", s.events[0]);
    assert_eq!(s.events[0].kind, EventKind::Micro);
}

#[test]
fn in_speech_a_brief_frown_the_classifier_reads_firmly_is_an_event_on_its_own_channel() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The brows drop 4.5 units for 0.23 s at 150, read sad; and the same at 90, read as nothing.
    add(&mut f, BROW_LOWER, 90..97, 0.054);
    add(&mut f, BROW_LOWER, 150..157, 0.054);
    let exprs = read_over(300, 150..157, 2, 0.9);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_one_event_at(&s, 150, "brow_lower");
}

#[test]
fn the_classifier_reading_on_after_a_frown_does_not_stretch_it_in_speech_or_out() {
    for speaking in [true, false] {
        let (t, idx, mut f) = still(300);
        if speaking {
            talking(&mut f);
        }
        // A 0.3-s frown at 150; the classifier reads sad there and for 0.5 s after (it lags the
        // face, and in speech reads this face sad now and then).
        add(&mut f, 2, 150..159, 0.08);
        let exprs = sad_over(300, 150..174);
        let s = spot_default(&t, &idx, &f, &exprs);
        assert_one_event_at(&s, 150, "expression:sad");
        assert!(
            (s.events[0].offset_frame as i64 - 158).abs() <= 2,
            "speaking {speaking}: {:?}",
            s.events[0]
        );
    }
}

#[test]
fn in_speech_a_smile_the_classifier_confirms_is_an_event_but_teeth_or_a_corner_alone_are_not() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The corners rise 5 units (under the 6 speech asks of a corner alone) for 0.4 s at 90 with
    // no change of class, and for 0.5 s at 150 while the classifier reads happy; at 200 the
    // classifier reads happy for 0.5 s (teeth) with the corners still.
    smile(&mut f, 90..102, 0.1);
    smile(&mut f, 150..165, 0.1);
    let happy = |i: usize| (150..165).contains(&i) || (200..215).contains(&i);
    let exprs = classes(
        300,
        happy,
        [0.2, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 150, "expression:happy");
}

#[test]
fn in_speech_a_micro_smile_the_classifier_confirms_is_an_event_but_a_flicker_confirms_nothing() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The corners rise 5 units (under the 6 speech asks of a corner alone) for 0.23 s at 90
    // while the classifier flickers happy for one frame, and the same at 150 while it reads
    // happy for the whole 0.23 s (shorter than the hold that keeps it from starting episodes
    // alone).
    smile(&mut f, 90..97, 0.1);
    smile(&mut f, 150..157, 0.1);
    let exprs = classes(
        300,
        |i| i == 93 || (150..157).contains(&i),
        [0.2, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 150, "lip_corner_pull_left");
    assert_eq!(s.events[0].kind, EventKind::Micro);
}

#[test]
fn in_speech_one_lip_corner_alone_must_move_more_than_words_pull_it() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // The right corner alone: 5 units for 0.5 s at 90 (past `high`, as words pull a corner now
    // and then), 9 units at 180 (a one-sided smile).
    add(&mut f, 6, 90..105, 0.10);
    add(&mut f, 6, 180..195, 0.18);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 180, "lip_corner_pull_right");
}

#[test]
fn in_speech_a_word_said_wide_joins_a_smile_but_does_not_stretch_it() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // A word said wide holds the mouth open from 130 to 170; a micro smile at 150.
    add(&mut f, MOUTH_OPEN, 130..170, 0.5);
    smile(&mut f, 150..157, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(!s.talking.is_empty());
    assert_one_event_at(&s, 150, "mouth_open");
    let e = &s.events[0];
    assert!(e.offset_frame <= 158 && e.kind == EventKind::Micro, "{e:?}");
}

/// Talking: the mouth opens and closes at syllable rate and drags the lip corners with it.
fn talking_dragging_corners(f: &mut [Option<[f64; NUM_FEATURES]>], range: std::ops::Range<usize>) {
    for i in range {
        if let Some(f) = f[i].as_mut() {
            let open = 0.12 * (0.5 + 0.5 * (i as f64 * 2.0 * std::f64::consts::PI / 7.0).sin());
            f[MOUTH_OPEN] += open;
            f[5] -= 0.6 * open;
            f[6] -= 0.6 * open;
        }
    }
}

#[test]
fn lip_corners_dragged_by_the_mouth_in_speech_are_not_events_but_a_smile_in_speech_is() {
    let (t, idx, mut f) = still(300);
    talking_dragging_corners(&mut f, 0..300);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert!(!s.talking.is_empty());
    // A 0.4 s smile while talking: both corners pulled.
    smile(&mut f, 150..162, 0.12);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!((s.events[0].onset_frame as i64 - 150).abs() <= 2);
    // Without taking the mouth's part out, the syllables hide it (the corners' spread is the
    // mouth's) or read as events.
    let raw = SpotOptions {
        decouple_speech: false,
        ..SpotOptions::default()
    };
    let s = spot_series(&t, &idx, &f, &no_expr(300), None, FPS, &raw);
    assert!(
        s.events.len() != 1 || (s.events[0].onset_frame as i64 - 150).abs() > 2,
        "{:?}",
        s.events
    );
}

#[test]
fn in_speech_a_brow_raise_the_landmarks_and_the_pixels_both_see_is_an_event() {
    // Brows up by 5 units for 0.4 s in the middle of speech: under `high_in_speech`.
    let raise = |channels: &[usize]| {
        let (t, idx, mut f) = still(300);
        talking(&mut f);
        for &c in channels {
            add(&mut f, c, 150..162, 0.06);
        }
        spot_default(&t, &idx, &f, &no_expr(300))
    };
    // Either measure alone is what words do to it.
    assert!(raise(&[INNER_BROW_RAISE]).events.is_empty());
    assert!(raise(&[BROW_LIFT]).events.is_empty());
    let both = raise(&[INNER_BROW_RAISE, BROW_LIFT]);
    assert_one_event_at(&both, 150, "brow_lift");
    assert!(
        both.events[0]
            .moves
            .iter()
            .any(|m| m.name == "inner_brow_raise")
    );
}

#[test]
fn in_speech_the_lip_corners_are_measured_against_at_least_what_words_move_them() {
    use crate::timeline::activation::activations;
    use crate::timeline::spotting::mouth_opening;
    let (t, _, mut f) = still(300);
    // A slight smile on a face whose lip corners barely jitter: 0.06 inter-ocular units.
    smile(&mut f, 150..160, 0.06);
    let pull = |f: &[Option<[f64; NUM_FEATURES]>]| {
        let a = activations(
            &t,
            f,
            &mouth_opening(f),
            None,
            &no_expr(300),
            FPS,
            &SpotOptions::default(),
        );
        peak(&a.activation[LIP_CORNER_PULL_LEFT][140..170])
    };
    // Silent, against the landmarks' jitter floor (0.01): 6 units.
    let silent = pull(&f);
    assert!((5.5..=6.5).contains(&silent), "{silent}");
    // Talking, against the words' floor (0.02): half as strong.
    talking(&mut f);
    let spoken = pull(&f);
    assert!((2.5..=3.3).contains(&spoken), "{spoken}");
}

#[test]
fn in_speech_the_words_moving_a_lip_corner_after_a_brief_smile_do_not_make_it_macro() {
    let (t, idx, mut f) = still(300);
    talking(&mut f);
    // A smile of 14 frames (0.47 s) in speech, then the next word keeps the right lip corner
    // 2.5 units up for 4 frames: as much as words move it, no part of the smile.
    smile(&mut f, 150..164, 0.3);
    add(&mut f, LIP_CORNER_PULL_RIGHT, 164..168, 0.05);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    let e = &s.events[0];
    assert_eq!(e.kind, EventKind::Micro, "{e:?}");
    assert!((e.offset_frame as i64 - 163).abs() <= 1, "{e:?}");
}
