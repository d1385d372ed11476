//! Why spliced bursts were missed, burst by burst: what the dev-set benchmark
//! ([`super::devbench`]) needs to say where the spotter fails, not only how often.
//!
//! Each burst is read against the event that overlaps it most (all events, those on the host's
//! own marked movements too: a burst merged into one of them is a miss of the burst).

use serde::{Deserialize, Serialize};

use super::Event;
use super::activation::NUM_CHANNELS;
use super::bench::interval_iou;
use super::devbench::{DevBenchOptions, SplitScore, length_class};
use super::devbench_splice::Spliced;
use super::reading::Reading;
use super::spot::{EventKind, channel_name};
use super::stats::peak;

/// What became of one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An event matches it (IoU ≥ 0.5) and is of its length class.
    Found,
    /// An event matches it but is the other length class (a micro burst called macro).
    WrongKind,
    /// The event overlapping it most is longer and matches under 0.5: the burst ran into
    /// other movement (the host's words or its own expression).
    Merged,
    /// The event overlapping it most is no longer and matches under 0.5: only part was seen.
    CutShort,
    /// No event overlaps it.
    NoEvent,
}

impl Outcome {
    /// In words, for a report.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::WrongKind => "the other length class",
            Outcome::Merged => "merged into a longer event",
            Outcome::CutShort => "cut short",
            Outcome::NoEvent => "no event",
        }
    }
}

/// One burst that was not found, and the event that overlapped it most.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Miss {
    pub host: String,
    /// The source episode (`file #k`).
    pub source: String,
    /// Frames of the spliced clip, inclusive.
    pub frames: (usize, usize),
    pub seconds: f64,
    pub outcome: Outcome,
    /// Whether the burst lies on or within [`BESIDE_S`] of a movement marked in the host.
    pub beside_marked: bool,
    /// The most overlapping event: frames, kind, IoU and what moved (strongest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<MissedBy>,
    /// With no event: the channels that moved most in the burst, strongest first, and whether
    /// the host talks there (its thresholds are higher then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<Unseen>,
}

/// How far a burst that made no event moved the channels, as the spotter reads them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unseen {
    /// The [`STRONGEST_LISTED`] channels by peak activation in the burst, strongest first.
    pub strongest: Vec<(String, f64)>,
    /// Whether any frame of the burst is in speech.
    pub in_speech: bool,
}

/// How many of a missed burst's channels are listed.
const STRONGEST_LISTED: usize = 3;

impl Unseen {
    /// The burst `truth` in `reading`.
    fn of(reading: &Reading, truth: (usize, usize)) -> Self {
        let (s, e) = truth;
        let mut strongest: Vec<(String, f64)> = (0..NUM_CHANNELS)
            .map(|c| (channel_name(c), peak(&reading.activation[c][s..=e])))
            .collect();
        strongest.sort_by(|a, b| b.1.total_cmp(&a.1));
        strongest.truncate(STRONGEST_LISTED);
        Unseen {
            strongest,
            in_speech: reading.speech[s..=e].contains(&true),
        }
    }

    /// Whether no channel reached `high`: the burst moved the face no more than the host's own
    /// noise does, and no threshold the spotter could take would find it alone.
    pub fn under(&self, high: f64) -> bool {
        self.strongest.first().is_none_or(|c| c.1 < high)
    }

    /// In words, for a report.
    pub fn words(&self) -> String {
        let moved: Vec<String> = self
            .strongest
            .iter()
            .map(|(name, a)| format!("{name} {a:.1}"))
            .collect();
        format!(
            "strongest {}{}",
            moved.join(", "),
            if self.in_speech { ", in speech" } else { "" }
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissedBy {
    pub frames: (usize, usize),
    pub kind: EventKind,
    pub iou: f64,
    pub moved: String,
}

/// An event in a spliced clip on neither a burst nor a movement marked in the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FalseEvent {
    pub host: String,
    pub frames: (usize, usize),
    pub kind: EventKind,
    pub moved: String,
}

/// Counts of the outcomes of a split's bursts (one splicing draw).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MissTally {
    pub bursts: usize,
    pub found: usize,
    pub wrong_kind: usize,
    pub merged: usize,
    pub cut_short: usize,
    pub no_event: usize,
    /// Of those with no event, the bursts under `high` in every channel ([`Unseen::under`]).
    #[serde(default)]
    pub no_event_under_high: usize,
    /// Of the bursts not found, those on or beside a movement marked in the host.
    pub missed_beside_marked: usize,
}

impl MissTally {
    pub fn add(&mut self, outcome: Outcome, beside_marked: bool) {
        self.bursts += 1;
        match outcome {
            Outcome::Found => self.found += 1,
            Outcome::WrongKind => self.wrong_kind += 1,
            Outcome::Merged => self.merged += 1,
            Outcome::CutShort => self.cut_short += 1,
            Outcome::NoEvent => self.no_event += 1,
        }
        if outcome != Outcome::Found && beside_marked {
            self.missed_beside_marked += 1;
        }
    }
}

/// A burst this close to a marked host movement shares its episode when the spotter joins
/// them (its merge gap).
pub const BESIDE_S: f64 = 0.2;

/// The outcome of the burst `truth` (frames, inclusive) of length class `class` among `events`,
/// and the most overlapping event with its IoU.
pub fn outcome(
    truth: (usize, usize),
    class: EventKind,
    events: &[Event],
) -> (Outcome, Option<(&Event, f64)>) {
    let best = events
        .iter()
        .map(|e| (e, interval_iou((e.onset_frame, e.offset_frame), truth)))
        .filter(|&(_, iou)| iou > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((event, iou)) = best else {
        return (Outcome::NoEvent, None);
    };
    let outcome = if iou >= 0.5 {
        if event.kind == class {
            Outcome::Found
        } else {
            Outcome::WrongKind
        }
    } else if event.offset_frame - event.onset_frame > truth.1 - truth.0 {
        Outcome::Merged
    } else {
        Outcome::CutShort
    };
    (outcome, Some((event, iou)))
}

/// What an event says moved: each channel and its peak activation, strongest first.
pub fn moved(event: &Event) -> String {
    event
        .moves
        .iter()
        .map(|m| format!("{} {:.1}", m.name, m.peak_activation))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `truth` lies on or within `beside` frames of a marked frame.
pub fn beside_marked(truth: (usize, usize), marked: &[bool], beside: usize) -> bool {
    let from = truth.0.saturating_sub(beside);
    let to = (truth.1 + beside + 1).min(marked.len());
    from < to && marked[from..to].contains(&true)
}

/// Each burst's outcome into `score`; with [`DevBenchOptions::list_misses`], the misses and the
/// false events too. `unmarked` are the intervals of `events` the clip is scored on
/// ([`Spliced::unmarked`]). A burst with no event is read against the channels' activations in
/// `reading` (the clip's, the events were spotted on), to tell one the host's noise hides from
/// one the thresholds miss.
pub(super) fn record_outcomes(
    score: &mut SplitScore,
    spliced: &Spliced,
    events: &[Event],
    unmarked: &[(usize, usize)],
    host: &str,
    reading: &Reading,
    options: &DevBenchOptions,
) {
    let fps = spliced.timeline.fps;
    let beside = (BESIDE_S * fps).round() as usize;
    for (&t, source) in spliced.truth.iter().zip(&spliced.origins) {
        let near = beside_marked(t, &spliced.marked, beside);
        let (result, event) = outcome(t, length_class(t, fps), events);
        score.outcomes.add(result, near);
        let unseen = (result == Outcome::NoEvent).then(|| Unseen::of(reading, t));
        if unseen
            .as_ref()
            .is_some_and(|u| u.under(reading.options.high))
        {
            score.outcomes.no_event_under_high += 1;
        }
        if options.list_misses && result != Outcome::Found {
            score.misses.push(Miss {
                host: host.to_string(),
                source: source.clone(),
                frames: t,
                seconds: (t.1 - t.0 + 1) as f64 / fps,
                outcome: result,
                beside_marked: near,
                event: event.map(|(e, iou)| MissedBy {
                    frames: (e.onset_frame, e.offset_frame),
                    kind: e.kind,
                    iou,
                    moved: moved(e),
                }),
                unseen,
            });
        }
    }
    if options.list_misses {
        for e in events {
            let frames = (e.onset_frame, e.offset_frame);
            let on_burst = spliced
                .truth
                .iter()
                .any(|&t| interval_iou(frames, t) >= 0.5);
            if !on_burst && unmarked.contains(&frames) {
                score.false_events.push(FalseEvent {
                    host: host.to_string(),
                    frames,
                    kind: e.kind,
                    moved: moved(e),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(onset: usize, offset: usize, kind: EventKind) -> Event {
        Event {
            onset_time: onset as f64 / 30.0,
            apex_time: onset as f64 / 30.0,
            offset_time: offset as f64 / 30.0,
            onset_frame: onset,
            apex_frame: onset,
            offset_frame: offset,
            duration: (offset - onset + 1) as f64 / 30.0,
            kind,
            moves: Vec::new(),
            apex_expression: None,
            expression_sequence: Vec::new(),
            cut_off: false,
        }
    }

    #[test]
    fn each_burst_is_read_against_the_event_overlapping_it_most() {
        use EventKind::{Macro, Micro};
        let burst = (100, 109);
        let outcome_of = |events: &[Event]| outcome(burst, Micro, events).0;
        assert_eq!(outcome_of(&[]), Outcome::NoEvent);
        assert_eq!(outcome_of(&[event(10, 20, Micro)]), Outcome::NoEvent);
        assert_eq!(outcome_of(&[event(100, 110, Micro)]), Outcome::Found);
        assert_eq!(outcome_of(&[event(99, 116, Macro)]), Outcome::WrongKind);
        assert_eq!(outcome_of(&[event(80, 109, Macro)]), Outcome::Merged);
        assert_eq!(outcome_of(&[event(106, 109, Micro)]), Outcome::CutShort);
        // The better overlap decides: a found burst with a stray event beside it is found.
        assert_eq!(
            outcome_of(&[event(108, 130, Macro), event(100, 109, Micro)]),
            Outcome::Found
        );
    }

    #[test]
    fn a_burst_beside_a_marked_movement_is_told_apart() {
        let mut marked = vec![false; 50];
        marked[20..25].fill(true);
        assert!(beside_marked((26, 30), &marked, 2));
        assert!(!beside_marked((28, 30), &marked, 2));
        assert!(beside_marked((10, 21), &marked, 0));
        assert!(beside_marked((45, 49), &[true; 50], 6));
    }
}
