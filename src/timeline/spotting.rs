//! The spotter's options, what it reads from a timeline and what it reports ([`super::spot`]).

use serde::{Deserialize, Serialize};

use super::Timeline;
use super::features::{MOUTH_OPEN, NUM_FEATURES};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct SpotOptions {
    /// Activation (robust z) a channel must reach somewhere in an episode.
    pub high: f64,
    /// In speech the classifier follows the mouth and the brows beat with the words: there only
    /// a landmark channel reaching this starts an episode, or a brow channel past `high` where
    /// the held classifier passes `high` too (an expression, not a word).
    pub high_in_speech: f64,
    /// Activation a landmark channel moving alone must reach.
    pub high_alone: f64,
    /// The same in speech. Words pull one lip corner alone up to 6–7 units now and then, but
    /// for a syllable: with those dropped (`min_duration_in_speech_s`) the bar is no higher
    /// than elsewhere (7 before; dev, seeds 13-20: spliced F1 0.875 -> 0.880, micro 0.837 ->
    /// 0.846, talking controls still 0.0 false/min).
    pub high_alone_in_speech: f64,
    /// In speech the mouth opens with the words up to 6–9 units (the dev set's talking
    /// controls); an opening past this, where the classifier moves too, is no syllable but a
    /// gasp or a laugh: an episode of its own.
    pub wide_open_in_speech: f64,
    /// Shortest episode (seconds) seen by the expression classifier alone.
    pub classifier_min_s: f64,
    /// Activation down to which an episode extends around its peak.
    pub low: f64,
    /// Shortest episode kept, seconds (single-frame glitches are not movements).
    pub min_duration_s: f64,
    /// The same in speech, where the words move the lips and brows in beats about this long.
    /// At 30 frames/s a 5-frame event in speech is dropped, a 6-frame one kept (dev, seeds
    /// 13-20: spliced F1 0.869 -> 0.875; talking controls 0.4 -> 0.0 false/min).
    pub min_duration_in_speech_s: f64,
    /// Episodes closer than this (seconds, face visible in between) are one episode.
    pub merge_gap_s: f64,
    /// Episodes shorter than this are micro, the rest macro.
    pub micro_max_s: f64,
    /// Eye-only closures shorter than this are blinks.
    pub blink_max_s: f64,
    /// Probability rise of an expression class that counts as one activation unit.
    pub expression_unit: f64,
    /// Smoothing radius in frames (centred moving average).
    pub smooth_radius: usize,
    /// The baseline follows slow changes (pose held, lighting, leaning): a running median of
    /// the baseline frames within this many seconds each side; 0 takes one for the whole clip.
    pub baseline_window_s: f64,
    /// Take the part the mouth's opening explains out of the lip-corner and upper-lip channels.
    pub decouple_speech: bool,
}

impl Default for SpotOptions {
    fn default() -> Self {
        Self {
            high: 4.0,
            high_in_speech: 6.0,
            high_alone: 6.0,
            high_alone_in_speech: 6.0,
            wide_open_in_speech: 10.0,
            classifier_min_s: 0.15,
            low: 2.0,
            min_duration_s: 0.06,
            min_duration_in_speech_s: 0.17,
            merge_gap_s: 0.2,
            micro_max_s: 0.5,
            blink_max_s: 0.4,
            expression_unit: 0.1,
            smooth_radius: 1,
            baseline_window_s: 3.0,
            decouple_speech: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Micro,
    Macro,
}

/// How one channel moved in an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMove {
    /// Feature name, or `expression:<class>`.
    pub name: String,
    /// Peak activation (robust z against the baseline).
    pub peak_activation: f64,
    /// Change from baseline at the peak: inter-ocular units (eye opening: ratio; expression:
    /// probability).
    pub peak_change: f64,
    pub peak_time: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub onset_time: f64,
    pub apex_time: f64,
    pub offset_time: f64,
    pub onset_frame: usize,
    pub apex_frame: usize,
    pub offset_frame: usize,
    /// Offset − onset + one frame, seconds.
    pub duration: f64,
    pub kind: EventKind,
    /// Channels that moved, strongest first.
    pub moves: Vec<ChannelMove>,
    /// Dominant expression at the apex and its probability.
    pub apex_expression: Option<(String, f64)>,
    /// Dominant expression sequence from just before onset to just after offset.
    pub expression_sequence: Vec<String>,
    /// Still active at the end of the clip or when the face was lost.
    pub cut_off: bool,
}

/// A span of frames (blinks, talking).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start_time: f64,
    pub end_time: f64,
    pub start_frame: usize,
    pub end_frame: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spotting {
    pub events: Vec<Event>,
    pub blinks: Vec<Span>,
    pub talking: Vec<Span>,
    /// Frames the baseline was taken from, and whether they were neutral-looking ones.
    pub baseline_frames: usize,
    pub baseline_neutral: bool,
}

/// A timeline's main face as the spotter reads it: one entry per record.
pub struct SpotSeries {
    pub times: Vec<f64>,
    pub frames: Vec<usize>,
    /// `None` where no face is seen, or its mouth is covered (the landmarks and the classifier
    /// guess there).
    pub features: Vec<Option<[f64; NUM_FEATURES]>>,
    pub expressions: Vec<Option<[f64; 7]>>,
    /// The yaw proxy ([`super::pose::pose_proxies`]), NaN where unknown.
    pub yaw: Vec<f64>,
}

impl SpotSeries {
    pub fn of(timeline: &Timeline) -> Self {
        let features: Vec<Option<[f64; NUM_FEATURES]>> = timeline
            .records
            .iter()
            .map(|r| r.features.filter(|_| !r.mouth_covered))
            .collect();
        let expressions = timeline
            .records
            .iter()
            .zip(&features)
            .map(|(r, f)| r.expressions.filter(|_| f.is_some()))
            .collect();
        let yaw = timeline
            .records
            .iter()
            .map(|r| {
                let pose = r.landmarks.as_deref().and_then(super::pose::pose_proxies);
                pose.map_or(f64::NAN, |p| p.0)
            })
            .collect();
        Self {
            times: timeline.records.iter().map(|r| r.time).collect(),
            frames: timeline.records.iter().map(|r| r.index).collect(),
            features,
            expressions,
            yaw,
        }
    }

    /// The mouth's opening per frame (NaN where no face), which speech is read from.
    pub fn mouth(&self) -> Vec<f64> {
        mouth_opening(&self.features)
    }
}

/// The mouth's opening per frame (NaN where no face), which speech is read from.
pub fn mouth_opening(features: &[Option<[f64; NUM_FEATURES]>]) -> Vec<f64> {
    features
        .iter()
        .map(|f| f.map_or(f64::NAN, |f| f[MOUTH_OPEN]))
        .collect()
}
