//! Spotting facial movement episodes (onset, apex, offset) against the person's own baseline.
//!
//! Each channel (15 action features, 6 expression probabilities) is first turned into an
//! activation against the baseline ([`super::activation`]). A channel is active where its
//! activation passes a high threshold, extended by hysteresis down to a low one (or a quarter
//! of its peak, for a strong movement); overlapping active stretches of all channels form one
//! episode. In speech the thresholds rise and the classifier must hold. Episodes that only move
//! the eyes briefly are blinks; episodes that only move the mouth back and forth are talking; the
//! classifier alone makes an event only where a landmark channel of its class moves too.

use super::Timeline;
use super::activation::NUM_CHANNELS;
use super::episodes::{
    Bounds, CLASS_HOLD_S, bounds_and_channels, capped_total, join, split_apart,
    split_at_class_changes,
};
use super::features::{FEATURE_NAMES, MOUTH_OPEN, NUM_FEATURES, is_eye_feature, is_mouth_feature};
use super::reading::{LOW_IN_SPEECH, Reading, fits, trim};
use super::speech::runs;
pub use super::spotting::{ChannelMove, Event, EventKind, Span, SpotOptions, SpotSeries, Spotting};
use super::stats::peak;
use crate::face::EXPRESSIONS;

/// The apex is the first frame within this share of the episode's strongest.
const APEX_SHARE: f64 = 0.95;
/// In speech an episode's bounds are where its bounding channels together reach this share of
/// their strongest. Each channel's hysteresis runs down to its noise, and the union of channels
/// carried the words on either side of a brief burst into it: a micro burst came out macro, or
/// merged with the talking around it. Dev, seeds 13-20: spliced F1 0.866 -> 0.869, micro 0.827
/// -> 0.838; controls unchanged.
const CORE_SHARE: f64 = 0.4;
/// Out of speech the same at a lower share: there the hysteresis carries a head's sway or the
/// host's own slow offset on either side of a brief burst into it (a micro burst came out
/// macro), but a still face's own ramp into an expression is part of it: from 0.35 up the
/// still-face bench loses bursts (F1 0.985 -> 0.879), from 0.2 to 0.3 it keeps them all. Dev,
/// seeds 13-20: micro F1 0.846 -> 0.851 (0.850 at 0.2, 0.852 at 0.3), spliced 0.880 -> 0.881;
/// aside micro 0.829 -> 0.830; controls unchanged.
const CORE_SHARE_OUT_OF_SPEECH: f64 = 0.25;
/// An episode at its strongest within this many frames of the face being lost is dropped.
const RISING_INTO_LOSS: usize = 2;
/// In speech one landmark channel alone under `high_alone_in_speech` still stands where the
/// classifier class it belongs to holds past this with it: a brief frown read sad. (Its hold is
/// too short for the classifier's own held channel to join the episode and vouch for it.)
const VOUCHING_IN_SPEECH: f64 = 5.0;

/// Spots events on a timeline's main face.
pub fn spot(timeline: &Timeline, options: &SpotOptions) -> Spotting {
    spot_and_reading(timeline, options).0
}

/// [`spot`], and the reading of the clip it spotted on (each channel's activation, where the
/// person talks): what a benchmark reads where no event was spotted.
pub fn spot_and_reading(timeline: &Timeline, options: &SpotOptions) -> (Spotting, Reading) {
    let s = SpotSeries::of(timeline);
    let r = Reading::new(
        &s.times,
        &s.features,
        &s.expressions,
        Some(&s.yaw),
        timeline.fps,
        options,
    );
    (spot_reading(&r, &s.times, &s.frames, &s.expressions), r)
}

/// A channel's name: the feature's, or `expression:<class>`.
pub(crate) fn channel_name(c: usize) -> String {
    if c < NUM_FEATURES {
        FEATURE_NAMES[c].to_string()
    } else {
        format!("expression:{}", EXPRESSIONS[c - NUM_FEATURES + 1])
    }
}

fn dominant(p: &[f64; 7]) -> usize {
    (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
}

/// The spotter on raw series (one entry per frame; `None` where the face is not visible).
/// Expressions may be `None` everywhere (landmark-only spotting); `yaw` is the head's yaw proxy
/// per frame ([`super::pose::pose_proxies`]), where known.
pub fn spot_series(
    times: &[f64],
    frame_indices: &[usize],
    features: &[Option<[f64; NUM_FEATURES]>],
    expressions: &[Option<[f64; 7]>],
    yaw: Option<&[f64]>,
    fps: f64,
    options: &SpotOptions,
) -> Spotting {
    let r = Reading::new(times, features, expressions, yaw, fps, options);
    spot_reading(&r, times, frame_indices, expressions)
}

/// The spotter on a clip's reading; the series it was read from give each frame's time, index
/// and classifier reading.
fn spot_reading(
    r: &Reading,
    times: &[f64],
    frame_indices: &[usize],
    expressions: &[Option<[f64; 7]>],
) -> Spotting {
    let (fps, options) = (r.fps, &r.options);
    let frame_s = 1.0 / fps.max(1e-9);
    let (leading, following) = r.leading_and_following(&r.stretches());

    // Union across channels, merging short visible gaps; then apart where the face went back to
    // rest between two movements.
    let merge_gap = (options.merge_gap_s / frame_s).round() as usize;
    let mut episodes: Vec<Bounds> = join(&leading, &r.present, merge_gap)
        .into_iter()
        .flat_map(|members| {
            // The mouth alone opening and closing again is talking, told on the whole below.
            if members.iter().all(|&(_, _, c)| is_mouth_feature(c)) {
                vec![bounds_and_channels(&members)]
            } else {
                split_apart(members, &r.activation)
            }
        })
        .collect();
    for &(s, e, c) in &following {
        for episode in episodes.iter_mut().filter(|ep| s <= ep.1 && ep.0 <= e) {
            if !episode.2.contains(&c) {
                episode.2.push(c);
            }
        }
    }

    // A face going from one expression straight into another is two events.
    let hold = ((CLASS_HOLD_S * fps).round() as usize).max(1);
    let episodes: Vec<Bounds> = episodes
        .into_iter()
        .flat_map(|episode| split_at_class_changes(episode, &r.activation, options, hold))
        .collect();
    let span = |s: usize, e: usize| Span {
        start_time: times[s],
        end_time: times[e] + frame_s,
        start_frame: frame_indices[s],
        end_frame: frame_indices[e],
    };
    let mut out = Spotting {
        events: Vec::new(),
        blinks: Vec::new(),
        talking: runs(&bridged(&r.speech, &r.present))
            .into_iter()
            .map(|(s, e)| span(s, e))
            .collect(),
        baseline_frames: r.baseline_frames,
        baseline_neutral: r.baseline_neutral,
    };
    for (s, e, channels) in episodes {
        let bounding = bounding_channels(&channels);
        let (s, e) = trim(s, e, |i| holds_bound(r, &bounding, i));
        let (s, e) = core(r, &bounding, s, e);
        let duration = times[e] - times[s] + frame_s;
        match verdict(r, s, e, channels, duration) {
            Verdict::Dropped => {}
            Verdict::Blink => out.blinks.push(span(s, e)),
            Verdict::Talking => {
                let talk = span(s, e);
                let overlaps =
                    |t: &Span| t.start_frame <= talk.end_frame && talk.start_frame <= t.end_frame;
                if !out.talking.iter().any(overlaps) {
                    out.talking.push(talk);
                    out.talking.sort_by_key(|t| t.start_frame);
                }
            }
            Verdict::Event(channels) => out.events.push(event(
                r,
                (s, e, duration),
                &channels,
                times,
                frame_indices,
                expressions,
            )),
        }
    }
    out
}

/// The channels that bound an episode of `channels`: the classifier lags the face and reads
/// on after it, so where a landmark channel moved, the landmarks alone (else the classifier's
/// lag kept the smoothing's extra frame and a brief burst came out a frame over half a second,
/// macro). Dev, seeds 13-20, with [`holds_bound`]'s floor in speech: micro F1 0.815 -> 0.826,
/// real episodes 11 -> 12 of 23; the still-face bench unchanged.
fn bounding_channels(channels: &[usize]) -> Vec<usize> {
    let landmarks: Vec<usize> = channels
        .iter()
        .copied()
        .filter(|&c| c < NUM_FEATURES)
        .collect();
    if landmarks.is_empty() {
        channels.to_vec()
    } else {
        landmarks
    }
}

/// Whether frame `i` still belongs to an episode bounded by `channels`: one of them,
/// unsmoothed, moves past its noise there (the stretches were found on smoothed activations, a
/// frame wider on each side). In speech the words move every landmark channel by 2–3 units:
/// there a landmark frame holds the bound only from `LOW_IN_SPEECH`, as in the stretches.
fn holds_bound(r: &Reading, channels: &[usize], i: usize) -> bool {
    channels.iter().any(|&c| {
        let floor = if c < NUM_FEATURES && r.speech[i] {
            r.options.low.max(LOW_IN_SPEECH)
        } else {
            r.options.low
        };
        r.sharp[c][i] >= floor
    })
}

/// `s..=e` without its edge frames where the bounding `channels` together (each capped) stay
/// under [`CORE_SHARE`] of their strongest there (in speech; elsewhere
/// [`CORE_SHARE_OUT_OF_SPEECH`]).
fn core(r: &Reading, channels: &[usize], s: usize, e: usize) -> (usize, usize) {
    let together = |i: usize| capped_total(&r.activation, channels, i);
    let strongest = (s..=e).map(together).fold(0.0, f64::max);
    trim(s, e, |i| {
        let share = if r.speech[i] {
            CORE_SHARE
        } else {
            CORE_SHARE_OUT_OF_SPEECH
        };
        together(i) >= share * strongest
    })
}

/// What an episode is.
enum Verdict {
    /// Nothing: too brief, the classifier's flicker, one channel barely above its noise, or the
    /// face lost as it rose.
    Dropped,
    Blink,
    /// The mouth alone, opening and closing: told as talking.
    Talking,
    /// An event, of these channels.
    Event(Vec<usize>),
}

/// What the episode `s..=e` (`duration` seconds) of `channels` is.
fn verdict(r: &Reading, s: usize, e: usize, mut channels: Vec<usize>, duration: f64) -> Verdict {
    let (options, activation, speech) = (&r.options, &r.activation, &r.speech);
    let in_speech = speech[s..=e].contains(&true);
    // Words move the lips and brows in beats about a syllable long: in speech a movement no
    // longer than one is not told from them.
    let shortest = if in_speech {
        options.min_duration_s.max(options.min_duration_in_speech_s)
    } else {
        options.min_duration_s
    };
    if duration < shortest {
        return Verdict::Dropped;
    }
    // The classifier alone for a few frames: a per-frame network's flicker, not a face.
    if channels.iter().all(|&c| c >= NUM_FEATURES) {
        if duration < options.classifier_min_s {
            return Verdict::Dropped;
        }
        // The classifier reading a face that did not move (light, pose, a per-frame
        // misreading) is no event: a landmark channel of its class must move with it, if
        // only to `low`, and the event names it. The mouth's opening must reach `high`: an
        // open vowel reads surprised, and its opening is no gasp.
        let support_floor = |b: usize| {
            if is_mouth_feature(b) {
                options.high
            } else {
                options.low
            }
        };
        let support: Vec<usize> = (0..NUM_FEATURES)
            .filter(|&b| channels.iter().any(|&k| fits(b, k)))
            .filter(|&b| peak(&activation[b][s..=e]) >= support_floor(b))
            .collect();
        if support.is_empty() {
            return Verdict::Dropped;
        }
        channels.extend(support);
    }
    // One landmark channel alone, barely above the noise: head motion, light and words
    // shifting the points look like this; an expression moves more or several channels.
    if let [c] = channels[..] {
        let strongest = peak(&activation[c][s..=e]);
        let bar = if in_speech {
            options.high_alone_in_speech
        } else {
            options.high_alone
        };
        let vouched = (s..=e).any(|i| {
            speech[i]
                && (NUM_FEATURES..NUM_CHANNELS).any(|k| r.moves_with(c, k, i, VOUCHING_IN_SPEECH))
        });
        if c < NUM_FEATURES && !is_eye_feature(c) && strongest < bar && !vouched {
            return Verdict::Dropped;
        }
    }
    // Blink: only the eyes, closing, briefly.
    let eyes_only = channels.iter().all(|&c| is_eye_feature(c));
    if eyes_only && duration < options.blink_max_s {
        let closing = channels.iter().any(|&c| {
            let peak = (s..=e).max_by(|&a, &b| activation[c][a].total_cmp(&activation[c][b]));
            peak.is_some_and(|p| r.change[c][p] < 0.0)
        });
        if closing {
            return Verdict::Blink;
        }
    }
    // Talking: only the mouth, in speech (a word said wide, held) or opening and closing
    // more than once. Talking is a span, not events, unless more than the mouth moves or it
    // opens wide.
    if channels
        .iter()
        .all(|&c| c < NUM_FEATURES && is_mouth_feature(c))
    {
        let gasp = r.gasps.iter().any(|&(gs, ge, _)| gs <= e && s <= ge);
        if in_speech && !gasp {
            return Verdict::Dropped;
        }
        let a = &activation[MOUTH_OPEN];
        let mut openings = 0;
        let mut open = false;
        for &v in &a[s..=e] {
            if !open && v >= options.high {
                openings += 1;
                open = true;
            } else if open && v < options.low {
                open = false;
            }
        }
        if openings >= 2 {
            return Verdict::Talking;
        }
        // At the first or last frame the face is seen, the mouth may be ending or starting a
        // sentence whose other syllables fall outside the clip: too few swings to tell words
        // by (a recording started mid-sentence read its last words as an event).
        let at_edge = !r.present[..s].contains(&true) || !r.present[e + 1..].contains(&true);
        if at_edge && !gasp {
            return Verdict::Dropped;
        }
    }
    // Under way where the face is first seen (the clip's start, or its return after a loss):
    // no onset was seen, only a face unlike the baseline, which may be no more than where this
    // face rests then. A landmark channel must move past the bar for one moving alone.
    if found_at(r, s) {
        let strongest = channels
            .iter()
            .filter(|&&c| c < NUM_FEATURES)
            .map(|&c| peak(&activation[c][s..=e]))
            .fold(0.0, f64::max);
        if strongest < options.high_alone {
            return Verdict::Dropped;
        }
    }
    // Still rising when the face is lost: most often the movement is what hid it (a hand
    // reaching the chin bends the landmarks, then covers the face), and no offset was seen.
    // (Uncapped here: a strong movement reaches the apex's cap while it still rises.)
    let strength = |i: usize| channels.iter().map(|&c| activation[c][i]).sum::<f64>();
    let strongest_at = (s..=e)
        .max_by(|&a, &b| strength(a).total_cmp(&strength(b)))
        .unwrap_or(s);
    if lost_after(r, e) && strongest_at + RISING_INTO_LOSS >= e {
        return Verdict::Dropped;
    }
    Verdict::Event(channels)
}

/// Whether the face is first seen at frame `s`: the clip's first frame, or its return after a loss.
fn found_at(r: &Reading, s: usize) -> bool {
    s == 0 || !r.present[s - 1]
}

/// Whether the face is lost right after frame `e`.
fn lost_after(r: &Reading, e: usize) -> bool {
    e + 1 < r.present.len() && !r.present[e + 1]
}

/// The event of `channels` over `s..=e`: its apex, what moved and by how much, what the
/// classifier read.
fn event(
    r: &Reading,
    (s, e, duration): (usize, usize, f64),
    channels: &[usize],
    times: &[f64],
    frame_indices: &[usize],
    expressions: &[Option<[f64; 7]>],
) -> Event {
    let (options, activation) = (&r.options, &r.activation);
    let n = times.len();
    // Apex: where the moving channels together first come within 5 % of their strongest
    // (each capped so one runaway channel does not decide alone). An expression held at its
    // peak is a plateau, and the plateau's maximum frame would move with every pixel level
    // the decoder rounds differently; its first frame does not.
    let total: Vec<f64> = (s..=e)
        .map(|i| capped_total(activation, channels, i))
        .collect();
    let strongest = peak(&total);
    let apex = s + total
        .iter()
        .position(|&t| t >= APEX_SHARE * strongest)
        .unwrap_or(0);
    let mut moves: Vec<ChannelMove> = channels
        .iter()
        .map(|&c| {
            let peak = (s..=e)
                .max_by(|&a, &b| activation[c][a].total_cmp(&activation[c][b]))
                .unwrap_or(s);
            ChannelMove {
                name: channel_name(c),
                peak_activation: activation[c][peak],
                peak_change: r.change[c][peak],
                peak_time: times[peak],
            }
        })
        .collect();
    moves.sort_by(|a, b| b.peak_activation.total_cmp(&a.peak_activation));

    let apex_expression = expressions[apex].map(|p| {
        let d = dominant(&p);
        (EXPRESSIONS[d].to_string(), p[d])
    });
    let mut sequence: Vec<String> = Vec::new();
    let around = s.saturating_sub(1)..=(e + 1).min(n - 1);
    for (p, &seen) in expressions[around.clone()].iter().zip(&r.present[around]) {
        if let Some(p) = p.filter(|_| seen) {
            let label = EXPRESSIONS[dominant(&p)].to_string();
            if sequence.last() != Some(&label) {
                sequence.push(label);
            }
        }
    }
    Event {
        onset_time: times[s],
        apex_time: times[apex],
        offset_time: times[e],
        onset_frame: frame_indices[s],
        apex_frame: frame_indices[apex],
        offset_frame: frame_indices[e],
        duration,
        kind: if duration < options.micro_max_s {
            EventKind::Micro
        } else {
            EventKind::Macro
        },
        moves,
        apex_expression,
        expression_sequence: sequence,
        cut_off: e + 1 >= n || lost_after(r, e),
    }
}

/// `mask` with its faceless gaps filled where it holds on both sides: talking goes on while the
/// detector misses the face for a few frames, and the summaries say so once.
fn bridged(mask: &[bool], present: &[bool]) -> Vec<bool> {
    let mut out = mask.to_vec();
    let mut i = 0;
    while i < mask.len() {
        if present[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < mask.len() && !present[i] {
            i += 1;
        }
        if start > 0 && mask[start - 1] && i < mask.len() && mask[i] {
            out[start..i].iter_mut().for_each(|f| *f = true);
        }
    }
    out
}

#[cfg(test)]
#[path = "spot_tests.rs"]
mod tests;
