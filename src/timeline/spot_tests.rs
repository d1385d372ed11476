//! Unit tests of the spotter on synthetic series.
use super::*;
use crate::timeline::features::{EYE_OPEN_LEFT, EYE_OPEN_RIGHT};

const FPS: f64 = 30.0;

/// A still neutral face with a little deterministic jitter.
fn still(n: usize) -> (Vec<f64>, Vec<usize>, Vec<Option<[f64; NUM_FEATURES]>>) {
    let times = (0..n).map(|i| i as f64 / FPS).collect();
    let idx = (0..n).collect();
    let feats = (0..n)
        .map(|i| {
            let mut f = [0.5; NUM_FEATURES];
            for (k, v) in f.iter_mut().enumerate() {
                *v += 0.003 * (((i * 7 + k * 13) % 11) as f64 / 10.0 - 0.5);
            }
            Some(f)
        })
        .collect();
    (times, idx, feats)
}

/// The spotter with its default options and no head pose.
fn spot_default(
    times: &[f64],
    idx: &[usize],
    features: &[Option<[f64; NUM_FEATURES]>],
    expressions: &[Option<[f64; 7]>],
) -> Spotting {
    spot_series(
        times,
        idx,
        features,
        expressions,
        None,
        FPS,
        &SpotOptions::default(),
    )
}

fn no_expr(n: usize) -> Vec<Option<[f64; 7]>> {
    vec![None; n]
}

/// Expression probabilities per frame: `during` where `at(i)`, else `otherwise`.
fn classes(
    n: usize,
    at: impl Fn(usize) -> bool,
    during: [f64; 7],
    otherwise: [f64; 7],
) -> Vec<Option<[f64; 7]>> {
    (0..n)
        .map(|i| Some(if at(i) { during } else { otherwise }))
        .collect()
}

/// Exactly one event, starting within two frames of `onset`, with `channel` among its moves.
fn assert_one_event_at(s: &Spotting, onset: usize, channel: &str) {
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    let e = &s.events[0];
    assert!((e.onset_frame as i64 - onset as i64).abs() <= 2, "{e:?}");
    assert!(e.moves.iter().any(|m| m.name == channel), "{e:?}");
}

fn add(feats: &mut [Option<[f64; NUM_FEATURES]>], c: usize, range: std::ops::Range<usize>, v: f64) {
    for f in feats[range].iter_mut().flatten() {
        f[c] += v;
    }
}

/// Both lip corners pulled by `v` over `range`.
fn smile(feats: &mut [Option<[f64; NUM_FEATURES]>], range: std::ops::Range<usize>, v: f64) {
    add(feats, LIP_CORNER_PULL_LEFT, range.clone(), v);
    add(feats, LIP_CORNER_PULL_RIGHT, range, v);
}

#[test]
fn a_brief_movement_is_micro_and_a_long_one_macro() {
    let (t, idx, mut f) = still(300);
    add(&mut f, 5, 60..69, 0.15); // 9 frames = 0.3 s lip-corner pull
    add(&mut f, 2, 150..180, 0.15); // 30 frames = 1 s brow lower
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 2, "{:?}", s.events);
    let (micro, mac) = (&s.events[0], &s.events[1]);
    assert_eq!(micro.kind, EventKind::Micro);
    assert_eq!(micro.moves[0].name, "lip_corner_pull_left");
    assert!((micro.onset_frame as i64 - 60).abs() <= 1);
    assert!((micro.offset_frame as i64 - 68).abs() <= 1);
    assert_eq!(mac.kind, EventKind::Macro);
    assert_eq!(mac.moves[0].name, "brow_lower");
    assert!((mac.duration - 1.0).abs() < 0.1);
}

#[test]
fn a_strong_movement_ends_where_it_falls_back_not_where_a_slight_offset_stays() {
    let (t, idx, mut f) = still(300);
    smile(&mut f, 60..72, 0.15);
    // The left corner stays 2.5 units off for 1.3 s after (light, the baseline catching up).
    add(&mut f, LIP_CORNER_PULL_LEFT, 72..110, 0.025);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_one_event_at(&s, 60, "lip_corner_pull_right");
    assert!(
        (s.events[0].offset_frame as i64 - 71).abs() <= 2,
        "{:?}",
        s.events[0]
    );
}

#[test]
fn blinks_are_not_events_but_long_eye_closures_are() {
    let (t, idx, mut f) = still(300);
    // Blinks: both eyes shut for 4 frames (0.13 s).
    for start in [30, 120, 200] {
        add(&mut f, EYE_OPEN_LEFT, start..start + 4, -0.25);
        add(&mut f, EYE_OPEN_RIGHT, start..start + 4, -0.25);
    }
    // Eyes shut for 0.8 s: not a blink.
    add(&mut f, EYE_OPEN_LEFT, 240..264, -0.25);
    add(&mut f, EYE_OPEN_RIGHT, 240..264, -0.25);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.blinks.len(), 3, "{:?}", s.blinks);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(s.events[0].onset_frame >= 238);
}

#[test]
fn talking_is_not_an_expression() {
    let (t, idx, mut f) = still(300);
    // The mouth opens and closes five times over 1.5 s.
    for k in 0..5 {
        let start = 100 + k * 9;
        add(&mut f, MOUTH_OPEN, start..start + 5, 0.12);
    }
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(s.talking.len(), 1);
}

#[test]
fn faceless_frames_split_and_never_hold_events() {
    let (t, idx, mut f) = still(200);
    add(&mut f, 5, 50..100, 0.15);
    for v in &mut f[70..80] {
        *v = None;
    }
    let s = spot_default(&t, &idx, &f, &no_expr(200));
    assert_eq!(s.events.len(), 2);
    assert!(s.events[0].cut_off);
    for e in &s.events {
        assert!(!(70..80).contains(&e.onset_frame) && !(70..80).contains(&e.offset_frame));
    }
}

#[test]
fn a_rise_of_an_expression_class_is_an_event_where_a_channel_of_its_class_moves_slightly() {
    let (t, idx, mut f) = still(200);
    let exprs = classes(
        200,
        |i| (100..130).contains(&i),
        [0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8],
        [0.95, 0.01, 0.01, 0.01, 0.01, 0.0, 0.01],
    );
    // The classifier alone, on a face that does not move: no event.
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(s.events.is_empty(), "{:?}", s.events);
    // The inner brows rise by 3 units of jitter (under `high`), and the mouth opens as much
    // (which surprise does not name): the event names the classifier and the brows.
    add(&mut f, INNER_BROW_RAISE, 105..125, 0.036);
    add(&mut f, MOUTH_OPEN, 105..125, 0.03);
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_eq!(s.events.len(), 1);
    let e = &s.events[0];
    assert_eq!(e.moves[0].name, "expression:surprised");
    let names: Vec<&str> = e.moves.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["expression:surprised", "inner_brow_raise"]);
    assert_eq!(
        e.expression_sequence,
        vec!["neutral", "surprised", "neutral"]
    );
    assert_eq!(e.apex_expression.as_ref().unwrap().0, "surprised");
}

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

/// Talking from frame 60 to 240: the mouth opens and closes every 8 frames.
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
    smile(&mut f, 245..253, 0.03);
    smile(&mut f, 360..368, 0.03);
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
    add(&mut f, LIP_PUCKER, 150..158, 0.05);
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
                smile(&mut f, start..start + 4, 0.06);
            }
        }
        // A smile of 7 units for 0.3 s at 120 (past `high_in_speech`), one of 25 at 180.
        smile(&mut f, 120..129, 0.07);
        smile(&mut f, 180..189, 0.25);
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
    smile(&mut f, 90..102, 0.05);
    smile(&mut f, 150..165, 0.05);
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
    smile(&mut f, 90..97, 0.05);
    smile(&mut f, 150..157, 0.05);
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
    // The right corner alone: 6.5 units for 0.5 s at 90 (words pull a corner that far now and
    // then), 9 units at 180 (a one-sided smile).
    add(&mut f, 6, 90..105, 0.065);
    add(&mut f, 6, 180..195, 0.09);
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
fn a_held_change_such_as_a_lean_or_a_turned_head_is_absorbed_by_the_running_baseline() {
    let (t, idx, mut f) = still(600);
    // From 13.3 s on the brows sit higher for good (the head tilted back, say).
    add(&mut f, 0, 400..600, 0.1);
    add(&mut f, 1, 400..600, 0.1);
    let s = spot_default(&t, &idx, &f, &no_expr(600));
    assert!(s.events.is_empty(), "{:?}", s.events);
    // With one baseline for the clip it is a 6.7-s "event".
    let whole = SpotOptions {
        baseline_window_s: 0.0,
        ..SpotOptions::default()
    };
    let s = spot_series(&t, &idx, &f, &no_expr(600), None, FPS, &whole);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    // A 2-s raise within it is still found.
    add(&mut f, 0, 480..540, 0.15);
    add(&mut f, 1, 480..540, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(600));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert!(
        (s.events[0].duration - 2.0).abs() < 0.3,
        "{:?}",
        s.events[0]
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
fn an_expressive_face_is_measured_against_its_half_second_that_reads_neutral() {
    // 10 s; the classifier reads neutral only in the first 0.67 s (under a tenth of the clip).
    // Elsewhere the lip corners wander by ±0.04 (the face's own expressions), then a smile of
    // 0.12 at 6 s that the classifier does not see.
    let n = 300;
    let (t, idx, mut f) = still(n);
    for (i, frame) in f.iter_mut().enumerate().skip(20) {
        let wander = 0.04 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
        let frame = frame.as_mut().unwrap();
        frame[LIP_CORNER_PULL_LEFT] += wander;
        frame[LIP_CORNER_PULL_RIGHT] += wander;
    }
    smile(&mut f, 180..195, 0.12);
    let exprs = classes(
        n,
        |i| i < 20,
        [0.9, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0],
        [0.3, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert!(s.baseline_neutral);
    assert_eq!(s.baseline_frames, 20);
    assert!(
        s.events
            .iter()
            .any(|e| (e.onset_frame as i64 - 180).abs() <= 3
                && e.moves.iter().any(|m| m.name == "lip_corner_pull_left")),
        "{:?}",
        s.events
    );
}

#[test]
fn where_the_mouth_is_covered_the_guessed_movement_is_no_event() {
    // A hand over the mouth for a second: the landmark network puts the lips somewhere else.
    let (_, _, mut f) = still(300);
    add(&mut f, BROW_LOWER, 120..150, 0.15);
    add(&mut f, LIP_CORNER_PULL_LEFT, 120..150, 0.15);
    let neutral = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let records: Vec<_> = f
        .iter()
        .enumerate()
        .map(|(i, f)| crate::timeline::FrameRecord::visible(i, None, neutral, f.unwrap()))
        .collect();
    let mut timeline = crate::timeline::Timeline::of_records(records);
    assert_eq!(spot(&timeline, &SpotOptions::default()).events.len(), 1);
    for r in &mut timeline.records[118..152] {
        r.mouth_covered = true;
    }
    let s = spot(&timeline, &SpotOptions::default());
    assert!(s.events.is_empty(), "{:?}", s.events);
}

#[test]
fn a_movement_still_rising_when_the_face_is_lost_is_dropped_but_one_past_its_peak_is_kept() {
    // A hand reaching the chin bends the lip corner for 0.2 s, rising, then covers the face.
    let (t, idx, mut f) = still(300);
    for (k, i) in (60..66).enumerate() {
        add(
            &mut f,
            LIP_CORNER_PULL_LEFT,
            i..i + 1,
            0.04 * (k + 1) as f64,
        );
    }
    for v in &mut f[66..90] {
        *v = None;
    }
    // A smile at its peak for 0.3 s, easing off when the face turns away.
    smile(&mut f, 150..160, 0.2);
    smile(&mut f, 160..166, 0.1);
    for v in &mut f[166..190] {
        *v = None;
    }
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_one_event_at(&s, 150, "lip_corner_pull_left");
    assert!(s.events[0].cut_off, "{:?}", s.events);
}

#[test]
fn a_head_turn_moves_no_lip_corner_but_a_smile_during_one_still_counts() {
    // The head turns by 0.2 (yaw proxy) over 0.3 s, holds for 1 s and turns back: one lip
    // corner seems pulled and the other let go by as much as real turns measure.
    let (t, idx, mut f) = still(300);
    let yaw: Vec<f64> = (0..300)
        .map(|i| match i {
            0..100 => 0.0,
            100..109 => 0.2 * (i - 100) as f64 / 9.0,
            109..139 => 0.2,
            139..148 => 0.2 * (148 - i) as f64 / 9.0,
            _ => 0.0,
        })
        .collect();
    for (frame, y) in f.iter_mut().zip(&yaw) {
        let f = frame.as_mut().unwrap();
        f[LIP_CORNER_PULL_LEFT] -= 0.49 * y;
        f[LIP_CORNER_PULL_RIGHT] += 0.49 * y;
        f[LIP_CORNER_DEPRESS_LEFT] += 0.13 * y;
        f[LIP_CORNER_DEPRESS_RIGHT] -= 0.13 * y;
    }
    let options = SpotOptions::default();
    let blind = spot_series(&t, &idx, &f, &no_expr(300), None, FPS, &options);
    assert!(
        !blind.events.is_empty(),
        "without the yaw the turn reads as a movement"
    );
    let s = spot_series(&t, &idx, &f, &no_expr(300), Some(&yaw), FPS, &options);
    assert!(s.events.is_empty(), "{:?}", s.events);
    // A smile while the head is turned is still a smile.
    smile(&mut f, 115..130, 0.15);
    let s = spot_series(&t, &idx, &f, &no_expr(300), Some(&yaw), FPS, &options);
    assert_one_event_at(&s, 115, "lip_corner_pull_left");
}
