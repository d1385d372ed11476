//! Unit tests of the spotter on synthetic series.
use super::*;
use crate::timeline::features::{
    BROW_LIFT, BROW_LOWER, EYE_OPEN_LEFT, EYE_OPEN_RIGHT, INNER_BROW_RAISE, JAW_DROP,
    LIP_CORNER_DEPRESS_LEFT, LIP_CORNER_DEPRESS_RIGHT, LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT,
    LIP_PUCKER, MOUTH_OPEN,
};

#[path = "spot_speech_tests.rs"]
mod speech;

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
fn a_brief_smile_and_a_frown_a_sixth_of_a_second_later_are_two_events_but_a_wobble_is_not() {
    let (t, idx, mut f) = still(300);
    smile(&mut f, 60..69, 0.15);
    // Back at rest for 5 frames, within the merge gap (0.2 s), then a 1-s frown.
    add(&mut f, BROW_LOWER, 74..104, 0.15);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_eq!(s.events.len(), 2, "{:?}", s.events);
    let (smiled, frowned) = (&s.events[0], &s.events[1]);
    assert_eq!(smiled.kind, EventKind::Micro, "{smiled:?}");
    assert!(
        smiled.moves.iter().all(|m| m.name != "brow_lower"),
        "{smiled:?}"
    );
    assert_eq!(frowned.kind, EventKind::Macro, "{frowned:?}");
    assert_eq!(frowned.moves[0].name, "brow_lower");
    assert!((frowned.onset_frame as i64 - 74).abs() <= 1, "{frowned:?}");

    // A smile that eases to 60 % of its peak for a few frames and comes back is one smile.
    let (t, idx, mut f) = still(300);
    smile(&mut f, 60..100, 0.15);
    smile(&mut f, 75..80, -0.06);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_one_event_at(&s, 60, "lip_corner_pull_left");
    assert!(
        (s.events[0].offset_frame as i64 - 99).abs() <= 1,
        "{:?}",
        s.events[0]
    );
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
fn a_brief_burst_ends_where_it_falls_back_not_where_a_weaker_movement_carries_on() {
    let (t, idx, mut f) = still(300);
    // A 0.3-s smile of 15 units, and the brows lowered by 4.5 from its last frames on for half
    // a second more (a head's sway, the host's own slow offset): one episode, no valley.
    smile(&mut f, 60..69, 0.15);
    add(&mut f, BROW_LOWER, 67..84, 0.054);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_one_event_at(&s, 60, "lip_corner_pull_left");
    let e = &s.events[0];
    assert!(e.moves.iter().any(|m| m.name == "brow_lower"), "{e:?}");
    assert!((e.offset_frame as i64 - 68).abs() <= 1, "{e:?}");
    assert_eq!(e.kind, EventKind::Micro, "{e:?}");
    // A movement as strong as the burst carries it on: one longer event.
    add(&mut f, BROW_LOWER, 67..84, 0.1);
    let s = spot_default(&t, &idx, &f, &no_expr(300));
    assert_one_event_at(&s, 60, "brow_lower");
    assert_eq!(s.events[0].kind, EventKind::Macro, "{:?}", s.events[0]);
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

#[test]
fn the_mouth_alone_at_the_clips_first_or_last_face_is_no_event_but_is_one_in_between() {
    let opening = |at: std::ops::Range<usize>| {
        let (t, idx, mut f) = still(150);
        add(&mut f, MOUTH_OPEN, at.clone(), 0.12);
        add(&mut f, JAW_DROP, at, 0.06);
        spot_default(&t, &idx, &f, &no_expr(150))
    };
    // Mid-clip, one opening with nothing else: an event.
    assert_one_event_at(&opening(60..72), 60, "mouth_open");
    // The same opening as the clip starts or ends: a sentence's edge, its other words unseen.
    for at in [0..12, 138..150] {
        let s = opening(at.clone());
        assert!(s.events.is_empty(), "{at:?}: {:?}", s.events);
    }
}

#[test]
fn the_classifier_reading_on_after_a_brief_smile_does_not_make_it_macro() {
    let (t, idx, mut f) = still(300);
    // Both lip corners pulled for 14 frames (0.47 s); the classifier reads happy from the
    // smile's onset until 6 frames after it ended (it lags the face). The smoothed lip corners
    // reach a frame past the smile, where the classifier still reads happy: the landmarks say
    // the smile has ended.
    smile(&mut f, 150..164, 0.15);
    let exprs = classes(
        300,
        |i| (150..170).contains(&i),
        [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let s = spot_default(&t, &idx, &f, &exprs);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    let e = &s.events[0];
    assert_eq!(e.kind, EventKind::Micro, "{e:?}");
    assert_eq!((e.onset_frame, e.offset_frame), (150, 163), "{e:?}");
    assert!(
        e.moves.iter().any(|m| m.name == "expression:happy"),
        "{e:?}"
    );
}

#[test]
fn a_slight_movement_under_way_where_the_face_is_first_seen_is_no_event_but_a_clear_one_is() {
    let smiling = |at: std::ops::Range<usize>, by: f64| {
        let (t, idx, mut f) = still(300);
        for v in &mut f[100..130] {
            *v = None;
        }
        smile(&mut f, at, by);
        spot_default(&t, &idx, &f, &no_expr(300))
    };
    // A slight smile (5 units each corner) rising and falling mid-clip: an event.
    assert_one_event_at(&smiling(200..212, 0.05), 200, "lip_corner_pull_left");
    // The same already there as the clip starts, or as the face comes back after a loss: no
    // onset was seen, and the face may simply rest so then.
    for at in [0..12, 130..142] {
        let s = smiling(at.clone(), 0.05);
        assert!(s.events.is_empty(), "{at:?}: {:?}", s.events);
    }
    // A clear smile (10 units) there is one.
    for at in [0..12, 130..142] {
        assert_one_event_at(&smiling(at.clone(), 0.1), at.start, "lip_corner_pull_left");
    }
}
