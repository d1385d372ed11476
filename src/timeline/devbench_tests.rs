//! Unit tests of the dev-set scoring on synthetic clips.
use super::*;
use crate::timeline::FrameRecord;
use crate::timeline::NUM_FEATURES;
use crate::timeline::devbench_misses::Outcome;
use crate::timeline::devbench_splice::{BurstSource, Spliced};
use crate::timeline::features::INNER_BROW_RAISE;

/// A still neutral face for 4 s at 30 fps whose brows rise 2.0–2.4 s.
fn brow_raise() -> Timeline {
    let records = (0..120)
        .map(|i| {
            let mut features = [0.0; NUM_FEATURES];
            // Jitter, so the baseline's spread is the floor, not zero.
            features[INNER_BROW_RAISE] = if i % 2 == 0 { 0.002 } else { -0.002 };
            if (60..72).contains(&i) {
                features[INNER_BROW_RAISE] += 0.15;
            }
            FrameRecord::visible(i, None, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], features)
        })
        .collect();
    Timeline::of_records(records)
}

fn control(movements: Vec<Episode>) -> DevClip {
    DevClip {
        file: "control.mp4".into(),
        split: "dev".into(),
        kind: "talking".into(),
        person: None,
        episodes: Vec::new(),
        movements,
    }
}

fn talking_score(clip: DevClip) -> ControlScore {
    let s = evaluate_split(
        "dev",
        &[(clip, brow_raise())],
        &SpotOptions::default(),
        &DevBenchOptions::default(),
    );
    s.controls["talking"].clone()
}

#[test]
fn an_event_on_a_marked_movement_of_a_control_is_not_false() {
    let moved = |onset: f64, offset: f64| Episode {
        onset,
        offset,
        moved: "brows raised".into(),
    };
    let unmarked = talking_score(control(Vec::new()));
    assert_eq!((unmarked.events, unmarked.on_marked), (1, 0));
    assert_eq!((unmarked.marked, unmarked.marked_found), (0, 0));
    assert!(
        (unmarked.false_per_minute - 15.0).abs() < 1e-9,
        "{unmarked:?}"
    );
    let marked = talking_score(control(vec![moved(1.95, 2.45)]));
    assert_eq!((marked.events, marked.on_marked), (1, 1));
    assert_eq!(marked.false_per_minute, 0.0);
    assert_eq!((marked.marked, marked.marked_found), (1, 1));
    // A movement marked elsewhere excuses nothing, and is one the spotter missed.
    let elsewhere = talking_score(control(vec![moved(3.0, 3.5)]));
    assert_eq!((elsewhere.events, elsewhere.on_marked), (1, 0));
    assert_eq!((elsewhere.marked, elsewhere.marked_found), (1, 0));
}

#[test]
fn in_a_spliced_clip_only_a_host_event_on_a_marked_movement_that_is_no_burst_is_dropped() {
    let spliced = Spliced {
        timeline: brow_raise(),
        truth: vec![(40, 49)],
        origins: vec!["smile.mp4 #1".into()],
        marked: (0..120)
            .map(|i| (38..52).contains(&i) || (80..90).contains(&i))
            .collect(),
    };
    let events = vec![(10, 15), (41, 49), (82, 86)];
    assert_eq!(spliced.unmarked(events), vec![(10, 15), (41, 49)]);
}

#[test]
fn a_burst_rises_from_where_the_face_starts_towards_the_apex_not_from_a_slight_lead_in() {
    // A faint smile held 20 frames (0.02, twice the floor) before it widens to 0.2 in 5 frames
    // and eases off.
    let pull = |i: usize| match i {
        0..10 => 0.0,
        10..30 => 0.02,
        30..35 => 0.02 + 0.036 * (i - 29) as f64,
        _ => 0.15,
    };
    let source = BurstSource {
        changes: (0..40)
            .map(|i| {
                let mut df = [0.0; NUM_FEATURES];
                df[crate::timeline::features::LIP_CORNER_PULL_LEFT] = pull(i);
                Some((df, [0.0; 7]))
            })
            .collect(),
        episodes: vec![(10, 39)],
        file: "smile.mp4".into(),
    };
    // The apex at 34; under a quarter of the way (0.065) last at frame 30: the widening's first
    // frame.
    assert_eq!(source.rise((10, 39)), (30, 34));
    // An episode that rises from its onset keeps it.
    assert_eq!(source.rise((33, 39)), (33, 34));
}

#[test]
fn a_control_cut_at_either_end_counts_false_events_in_the_second_by_the_cut_only() {
    // Cuts start every 0.2 s while 2 s of the 4-s clip remain (0, 0.2, ..., 2.0 s), and stop
    // the same way (4.0, 3.8, ..., 2.0 s).
    let unmarked = talking_score(control(Vec::new()));
    assert_eq!((unmarked.late_starts, unmarked.early_stops), (11, 11));
    // The brow raise (2.0-2.4 s) starts in the first second of the cuts from 1.2 s to 2.0 s,
    // and ends in the last second of those stopping from 3.2 s down to 2.2 s (cut off there
    // still rising).
    assert_eq!(
        (unmarked.late_start_false, unmarked.early_stop_false),
        (5, 6),
        "{unmarked:?}"
    );
    let per_minute = |n: f64| n / (11.0 / 60.0);
    assert!((unmarked.late_start_false_per_minute - per_minute(5.0)).abs() < 1e-9);
    assert!((unmarked.early_stop_false_per_minute - per_minute(6.0)).abs() < 1e-9);
    let marked = talking_score(control(vec![Episode {
        onset: 1.95,
        offset: 2.45,
        moved: "brows raised".into(),
    }]));
    assert_eq!((marked.late_start_false, marked.early_stop_false), (0, 0));
}

#[test]
fn each_burst_missed_is_counted_and_listed_with_what_became_of_it() {
    // The brow raise at frames 60–71 stands for a burst that was found; nothing moves at
    // 100–105, beside a movement marked in the host at 108–112.
    let spliced = Spliced {
        timeline: brow_raise(),
        truth: vec![(60, 71), (100, 105)],
        origins: vec!["raise.mp4 #1".into(), "raise.mp4 #2".into()],
        marked: (0..120).map(|i| (108..113).contains(&i)).collect(),
    };
    let spot_options = SpotOptions::default();
    let (spotting, reading) = spot_and_reading(&spliced.timeline, &spot_options);
    let events = spotting.events;
    let mut score = SplitScore::default();
    let listing = DevBenchOptions {
        list_misses: true,
        ..DevBenchOptions::default()
    };
    let all = spliced.unmarked(intervals(&events, None));
    record_outcomes(
        &mut score, &spliced, &events, &all, "host.mp4", &reading, &listing,
    );
    let o = &score.outcomes;
    assert_eq!((o.bursts, o.found, o.no_event), (2, 1, 1), "{o:?}");
    assert_eq!(o.missed_beside_marked, 1);
    assert_eq!(score.misses.len(), 1);
    let miss = &score.misses[0];
    assert_eq!((miss.frames, miss.outcome), ((100, 105), Outcome::NoEvent));
    assert!(miss.beside_marked && miss.event.is_none());
    // Nothing moved there: the miss says how little, and it counts among those under `high`.
    let unseen = miss.unseen.as_ref().expect("a burst with no event is read");
    assert!(unseen.under(spot_options.high), "{unseen:?}");
    assert_eq!(o.no_event_under_high, 1);
    assert!(score.false_events.is_empty(), "{:?}", score.false_events);
    // Without the listing only the counts are kept.
    let mut counted = SplitScore::default();
    let options = DevBenchOptions::default();
    record_outcomes(
        &mut counted,
        &spliced,
        &events,
        &all,
        "host.mp4",
        &reading,
        &options,
    );
    assert_eq!(counted.outcomes.found, 1);
    assert!(counted.misses.is_empty());
    // Where no burst was spliced, the raise is a false event, and it is listed with what moved.
    let unspliced = Spliced {
        truth: vec![(100, 105)],
        origins: vec!["raise.mp4 #2".into()],
        marked: vec![false; 120],
        ..spliced
    };
    let mut listed = SplitScore::default();
    let all = unspliced.unmarked(intervals(&events, None));
    record_outcomes(
        &mut listed,
        &unspliced,
        &events,
        &all,
        "host.mp4",
        &reading,
        &listing,
    );
    assert_eq!(listed.false_events.len(), 1);
    assert!(listed.false_events[0].moved.contains("inner_brow_raise"));
}
