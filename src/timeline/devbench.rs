//! Spotting benchmark on real clips: a small hand-annotated development set of real faces that
//! talk, move, change lighting, and make real expressions.
//!
//! Three scores per split: false events per minute on the controls (clips with no expression
//! episode), per control kind; the real annotated episodes found; and bursts of those real
//! episodes spliced into the moving, talking control faces. A burst is spliced as a change: the
//! expression clip's feature and probability changes against its own neutral frames are added to
//! the host's records, so the host's head motion, speech and lighting stay underneath. Each
//! burst rises from where the episode's face starts towards its apex and falls back within the
//! burst's length (micro: 6–13 frames, 0.2–0.43 s at 30 fps, 0.24–0.52 s at 25 fps; the micro
//! score counts those under 0.5 s), so a micro burst is a brief real expression, not the first
//! frames of one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bench::{count_hits, matched_truths};
use super::devbench_misses::{FalseEvent, Miss, MissTally, record_outcomes};
use super::devbench_splice::{burst_source, spliced_clip};
use super::spot::{EventKind, SpotOptions, spot, spot_and_reading};
use super::{FrameRecord, Timeline};
use crate::rng::Rng;

/// The annotations file (`tests/data/video/dev/annotations.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSet {
    pub clips: Vec<DevClip>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevClip {
    /// File name beside the annotations file.
    pub file: String,
    /// `dev` (for development) or `aside` (held out of tuning).
    pub split: String,
    /// `expression` for clips with episodes; for controls what happens in them (talking,
    /// head-motion, lighting, ...).
    pub kind: String,
    /// Who is in the clip, where one person's footage is cut into several clips: controls of one
    /// person and kind share one host's spliced clips, so a face does not weigh more for being
    /// cut finer. By default each clip is its own person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    pub episodes: Vec<Episode>,
    /// In a control, the clear facial movements that are not speech (a brow raise for emphasis,
    /// lips pressed in a pause) found by a blind frame review, one that did not see the spotter's
    /// output. The clip stays a control and a host; an event on one of these is counted apart,
    /// not as false: reporting it is right.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub movements: Vec<Episode>,
}

/// A real expression episode (or a control's marked movement), marked by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Episode {
    /// Seconds.
    pub onset: f64,
    pub offset: f64,
    /// What moved, in words.
    pub moved: String,
}

/// Precision, recall and F1 of interval matches at IoU ≥ 0.5.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Match {
    pub truth: usize,
    pub predicted: usize,
    pub hits: usize,
    pub f1: f64,
}

impl Match {
    fn add(&mut self, truth: usize, predicted: usize, hits: usize) {
        self.truth += truth;
        self.predicted += predicted;
        self.hits += hits;
        let p = self.hits as f64 / self.predicted.max(1) as f64;
        let r = self.hits as f64 / self.truth.max(1) as f64;
        self.f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ControlScore {
    pub clips: usize,
    pub minutes: f64,
    /// All events spotted in the controls.
    pub events: usize,
    /// Of these, the events on a movement marked in the control ([`DevClip::movements`]).
    pub on_marked: usize,
    /// The movements marked in the controls, and how many of them an event overlaps: what the
    /// spotter misses in real faces that talk.
    pub marked: usize,
    pub marked_found: usize,
    /// The other events, per minute of control video.
    pub false_per_minute: f64,
    /// The controls cut to start later (every 0.2 s while 2 s remain): the cuts, and the
    /// events on no marked movement with their onset in a cut's first second.
    pub late_starts: usize,
    pub late_start_false: usize,
    /// Those events per minute of first seconds.
    pub late_start_false_per_minute: f64,
    /// The same for the controls cut to stop earlier, and the events with their offset in a
    /// cut's last second.
    #[serde(default)]
    pub early_stops: usize,
    #[serde(default)]
    pub early_stop_false: usize,
    #[serde(default)]
    pub early_stop_false_per_minute: f64,
}

/// A recording starts wherever the user pressed record, often mid-sentence or mid-movement,
/// with nothing before it: no baseline, no speech heard, no neutral face to align the
/// landmarks to; and it stops wherever they pressed stop. So each control is also cut to start
/// later, and to stop earlier, every this many seconds...
const CUT_STEP_S: f64 = 0.2;
/// ...while at least this many seconds remain...
const CUT_MIN_S: f64 = 2.0;
/// ...and the events with their onset in a cut's first second (their offset in its last) are
/// read.
const CUT_WINDOW_S: f64 = 1.0;

/// Whether the interval `onset..end` (seconds) overlaps the marked movement `m`.
fn overlaps(m: &Episode, onset: f64, end: f64) -> bool {
    onset < m.offset && m.onset < end
}

/// Which end of a control a cut takes off.
#[derive(Clone, Copy, PartialEq)]
enum CutEnd {
    /// The recording started later: events with their onset in the cut's first second count.
    Start,
    /// It stopped earlier: events with their offset in the cut's last second count.
    Stop,
}

/// (cuts, false events in the second by the cut): the control `timeline` cut at one end every
/// [`CUT_STEP_S`] seconds, each cut analysed on its own (its features aligned to its own
/// neutral frames, as a recording of its own would be).
fn cut_controls(
    clip: &DevClip,
    timeline: &Timeline,
    spot_options: &SpotOptions,
    end: CutEnd,
) -> (usize, usize) {
    let n = timeline.records.len();
    let fps = timeline.fps.max(1e-9);
    let step = ((CUT_STEP_S * fps).round() as usize).max(1);
    let min_frames = (CUT_MIN_S * fps).round() as usize;
    let (mut cuts, mut false_events) = (0, 0);
    let mut removed = 0;
    while removed + min_frames <= n {
        let kept = match end {
            CutEnd::Start => removed..n,
            CutEnd::Stop => 0..n - removed,
        };
        let t0 = timeline.records[kept.start].time;
        let mut cut = timeline.with_records(
            timeline.records[kept]
                .iter()
                .enumerate()
                .map(|(i, r)| FrameRecord {
                    index: i,
                    time: r.time - t0,
                    ..r.clone()
                })
                .collect(),
        );
        // (A timeline kept without its landmarks keeps the features it has.)
        if cut.records.iter().any(|r| r.landmarks.is_some()) {
            cut.refresh_features();
        }
        let length = cut.duration();
        false_events += spot(&cut, spot_options)
            .events
            .iter()
            .filter(|e| match end {
                CutEnd::Start => e.onset_time < CUT_WINDOW_S,
                CutEnd::Stop => e.offset_time + 1.0 / fps > length - CUT_WINDOW_S,
            })
            .filter(|e| {
                let (onset, end) = (t0 + e.onset_time, t0 + e.offset_time + 1.0 / fps);
                !clip.movements.iter().any(|m| overlaps(m, onset, end))
            })
            .count();
        cuts += 1;
        removed += step;
    }
    (cuts, false_events)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SplitScore {
    pub split: String,
    /// Per control kind.
    pub controls: BTreeMap<String, ControlScore>,
    /// The annotated real episodes in the expression clips.
    pub real: Match,
    /// Bursts spliced into the controls: all, micro-length (truth < 0.5 s against events the
    /// spotter called micro) and macro-length.
    pub spliced: Match,
    pub spliced_micro: Match,
    pub spliced_macro: Match,
    /// All spliced bursts, per host kind.
    pub spliced_by_host: BTreeMap<String, Match>,
    /// All spliced bursts, per host clip: where the spotter still fails.
    pub spliced_by_host_clip: BTreeMap<String, Match>,
    /// The bursts spliced from each real episode (`clip #k`), and how many were found.
    pub found_by_source: BTreeMap<String, Found>,
    /// What became of each burst, by the event overlapping it most.
    pub outcomes: MissTally,
    /// With [`DevBenchOptions::list_misses`]: each burst not found, and each event in the
    /// spliced clips on neither a burst nor a marked host movement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<Miss>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub false_events: Vec<FalseEvent>,
}

/// Bursts spliced from one source episode and found (matched at IoU ≥ 0.5).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Found {
    pub bursts: usize,
    pub found: usize,
}

/// Spliced clips per host (per person, where a person's footage is cut into several clips) and
/// burst length class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevBenchOptions {
    pub clips_per_host: usize,
    /// Burst lengths in frames (inclusive ranges).
    pub micro_frames: (usize, usize),
    pub macro_frames: (usize, usize),
    /// Host frames between bursts and at the clip ends.
    pub gap_frames: usize,
    pub clip_frames: usize,
    pub seed: u64,
    /// List each missed burst and each false event ([`SplitScore::misses`]).
    pub list_misses: bool,
}

impl Default for DevBenchOptions {
    fn default() -> Self {
        Self {
            clips_per_host: 8,
            micro_frames: (6, 13),
            macro_frames: (20, 40),
            gap_frames: 30,
            clip_frames: 300,
            seed: 13,
            list_misses: false,
        }
    }
}

/// Episode frame ranges (inclusive record indices) of an annotated clip.
pub(super) fn episode_frames(clip: &DevClip, timeline: &Timeline) -> Vec<(usize, usize)> {
    let n = timeline.records.len();
    clip.episodes
        .iter()
        .filter_map(|e| {
            let s = timeline
                .records
                .iter()
                .position(|r| r.time + 1e-6 >= e.onset)?;
            let end = timeline
                .records
                .iter()
                .rposition(|r| r.time <= e.offset + 1e-6)
                .unwrap_or(n - 1);
            (end > s).then_some((s, end))
        })
        .collect()
}

/// A burst's length class: micro under half a second.
pub(super) fn length_class(burst: (usize, usize), fps: f64) -> EventKind {
    if ((burst.1 - burst.0 + 1) as f64 / fps) < 0.5 {
        EventKind::Micro
    } else {
        EventKind::Macro
    }
}

/// The frame intervals of `events` (of `kind` only, if given).
fn intervals(events: &[super::Event], kind: Option<EventKind>) -> Vec<(usize, usize)> {
    events
        .iter()
        .filter(|e| kind.is_none_or(|k| e.kind == k))
        .map(|e| (e.onset_frame, e.offset_frame))
        .collect()
}

/// One person's control clips of one kind, with their timelines.
type PersonsClips<'a> = Vec<(&'a DevClip, &'a Timeline)>;

/// Scores one split: `clips` are the split's annotated clips with their analysed timelines.
pub fn evaluate_split(
    split: &str,
    clips: &[(DevClip, Timeline)],
    spot_options: &SpotOptions,
    options: &DevBenchOptions,
) -> SplitScore {
    let mut score = SplitScore {
        split: split.to_string(),
        ..SplitScore::default()
    };
    let mut sources = Vec::new();
    // Hosts per person and kind (each clip its own person unless annotated otherwise).
    let mut people: Vec<((&str, &str), PersonsClips)> = Vec::new();
    for (clip, timeline) in clips {
        if clip.episodes.is_empty() {
            let c = score.controls.entry(clip.kind.clone()).or_default();
            c.clips += 1;
            c.minutes += timeline.duration() / 60.0;
            let events = spot(timeline, spot_options).events;
            let frame_s = 1.0 / timeline.fps.max(1e-9);
            let overlap =
                |e: &super::Event, m: &Episode| overlaps(m, e.onset_time, e.offset_time + frame_s);
            c.events += events.len();
            c.on_marked += events
                .iter()
                .filter(|e| clip.movements.iter().any(|m| overlap(e, m)))
                .count();
            c.marked += clip.movements.len();
            c.marked_found += clip
                .movements
                .iter()
                .filter(|m| events.iter().any(|e| overlap(e, m)))
                .count();
            c.false_per_minute = (c.events - c.on_marked) as f64 / c.minutes.max(1e-9);
            let per_minute = |false_events: usize, cuts: usize| {
                false_events as f64 / (cuts as f64 * CUT_WINDOW_S / 60.0).max(1e-9)
            };
            let (cuts, false_events) = cut_controls(clip, timeline, spot_options, CutEnd::Start);
            c.late_starts += cuts;
            c.late_start_false += false_events;
            c.late_start_false_per_minute = per_minute(c.late_start_false, c.late_starts);
            let (cuts, false_events) = cut_controls(clip, timeline, spot_options, CutEnd::Stop);
            c.early_stops += cuts;
            c.early_stop_false += false_events;
            c.early_stop_false_per_minute = per_minute(c.early_stop_false, c.early_stops);
            if timeline.records.len() > 1 {
                let who = (
                    clip.kind.as_str(),
                    clip.person.as_deref().unwrap_or(&clip.file),
                );
                match people.iter_mut().find(|(p, _)| *p == who) {
                    Some((_, theirs)) => theirs.push((clip, timeline)),
                    None => people.push((who, vec![(clip, timeline)])),
                }
            }
        } else {
            let truth = episode_frames(clip, timeline);
            let predicted = intervals(&spot(timeline, spot_options).events, None);
            score
                .real
                .add(truth.len(), predicted.len(), count_hits(&predicted, &truth));
            let source = burst_source(clip, timeline);
            if !source.episodes.is_empty() {
                sources.push(source);
            }
        }
    }
    if sources.is_empty() {
        return score;
    }
    // A person's spliced clips are spread over their clips.
    let mut rng = Rng(options.seed);
    for (_, theirs) in &people {
        for k in 0..options.clips_per_host {
            let (host_clip, host) = theirs[k % theirs.len()];
            let (kind, lengths) = if k % 2 == 0 {
                (EventKind::Micro, options.micro_frames)
            } else {
                (EventKind::Macro, options.macro_frames)
            };
            let spliced = spliced_clip(
                host,
                &host_clip.movements,
                &sources,
                lengths,
                options,
                &mut rng,
            );
            let (timeline, truth) = (&spliced.timeline, &spliced.truth);
            let (spotting, reading) = spot_and_reading(timeline, spot_options);
            let events = spotting.events;
            let all = spliced.unmarked(intervals(&events, None));
            let matched = matched_truths(&all, truth);
            let hits = matched.iter().filter(|&&m| m).count();
            score.spliced.add(truth.len(), all.len(), hits);
            for per in [
                score.spliced_by_host.entry(host_clip.kind.clone()),
                score.spliced_by_host_clip.entry(host_clip.file.clone()),
            ] {
                per.or_default().add(truth.len(), all.len(), hits);
            }
            for (origin, found) in spliced.origins.iter().zip(matched) {
                let f = score.found_by_source.entry(origin.clone()).or_default();
                f.bursts += 1;
                f.found += usize::from(found);
            }
            // By length class: this class's truth against the events the spotter gave that kind.
            let fps = host.fps;
            let class_truth: Vec<_> = truth
                .iter()
                .copied()
                .filter(|&t| length_class(t, fps) == kind)
                .collect();
            let called = spliced.unmarked(intervals(&events, Some(kind)));
            let hits = count_hits(&called, &class_truth);
            let class = if kind == EventKind::Micro {
                &mut score.spliced_micro
            } else {
                &mut score.spliced_macro
            };
            class.add(class_truth.len(), called.len(), hits);
            record_outcomes(
                &mut score,
                &spliced,
                &events,
                &all,
                &host_clip.file,
                &reading,
                options,
            );
        }
    }
    score
}

#[cfg(test)]
#[path = "devbench_tests.rs"]
mod tests;
