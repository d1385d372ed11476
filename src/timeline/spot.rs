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
use super::activation::{Activations, NUM_CHANNELS, activations};
use super::episodes::{ACTIVATION_CAP, Bounds, bounds_and_channels, join, split_apart};
use super::features::{
    BROW_LIFT, BROW_LOWER, FEATURE_NAMES, INNER_BROW_RAISE, JAW_DROP, LIP_CORNER_DEPRESS_LEFT,
    LIP_CORNER_DEPRESS_RIGHT, LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT, LIP_PUCKER, MOUTH_OPEN,
    NOSE_WRINKLE, NUM_FEATURES, OUTER_BROW_RAISE, is_eye_feature, is_mouth_feature,
    is_speech_channel,
};
use super::speech::{HOLD_S, hold_in, runs, speech_frames, speech_range, wide_openings};
use super::spotting::mouth_opening;
pub use super::spotting::{ChannelMove, Event, EventKind, Span, SpotOptions, SpotSeries, Spotting};
use super::stats::peak;
use crate::face::EXPRESSIONS;

/// The apex is the first frame within this share of the episode's strongest.
const APEX_SHARE: f64 = 0.95;
/// Seconds around speech where the classifier alone starts no episode.
const NEAR_SPEECH_S: f64 = 0.5;
/// In speech a classifier channel confirms a landmark movement where it holds this long
/// (seconds each side): a single frame's flicker does not, a 0.2-s micro-expression does.
const CONFIRM_HOLD_S: f64 = 0.07;
/// In speech the lip corners and the upper lip move with the words by up to 2–3 units: there an
/// episode extends over them only down to this activation (else a smile absorbs the syllables
/// around it).
const LOW_IN_SPEECH: f64 = 3.0;
/// A channel's active stretch ends where it falls below this share of its own peak (or `low`,
/// whichever is higher). A strong movement ends where it falls back, not where the face's own
/// slow offset (light, a held pose, the running baseline catching up) keeps the channel just
/// above `low`, which would stretch the event and merge it with the next. A quarter, not half:
/// a burst that rises and falls evenly (a triangle) is half as wide at half its peak.
const PEAK_SHARE: f64 = 0.25;
/// An episode at its strongest within this many frames of the face being lost is dropped.
const RISING_INTO_LOSS: usize = 2;
/// In speech one landmark channel alone under `high_alone_in_speech` still stands where the
/// classifier class it belongs to holds past this with it: a brief frown read sad. (Its hold is
/// too short for the classifier's own held channel to join the episode and vouch for it.)
const VOUCHING_IN_SPEECH: f64 = 5.0;
/// An expressive talker's words move the lip corners and brows further than a calm one's: in
/// speech a landmark channel starts an episode on its own only past `high_in_speech` and past
/// this many times its own range in the clip's speech (its 75th percentile there: a smile held
/// over a quarter of the speech raises it), once there is a second of speech to measure it on.
const OWN_SPEECH_RANGE: f64 = 3.0;
const SPEECH_RANGE_SHARE: f64 = 0.75;
const SPEECH_RANGE_MIN_S: f64 = 1.0;
/// In speech a landmark channel's stretch ends where it falls back into that range (1× the
/// 75th percentile): frames there move as much as the person's words move them, so they belong
/// to the talking, not to the expression. A burst spliced into talking otherwise ran on into
/// the next words and lost its bounds (dev, seeds 13-20: micro F1 0.830 -> 0.843).
const SPEECH_RANGE_BOUND: f64 = 1.0;

/// Spots events on a timeline's main face.
pub fn spot(timeline: &Timeline, options: &SpotOptions) -> Spotting {
    let s = SpotSeries::of(timeline);
    spot_series(
        &s.times,
        &s.frames,
        &s.features,
        &s.expressions,
        Some(&s.yaw),
        timeline.fps,
        options,
    )
}

/// Whether a landmark channel belongs to an expression class channel (FACS): the brow lowerer
/// in anger, sadness, fear and disgust; the inner brow raiser in sadness, fear and surprise; the
/// outer one in fear and surprise; the lip-corner puller in happiness, the lip-corner depressor
/// in sadness, the nose wrinkler in disgust; the mouth opening, the jaw drop and the lips drawn
/// in (an "oh") in surprise and fear.
fn fits(channel: usize, class: usize) -> bool {
    let Some(name) = class.checked_sub(NUM_FEATURES).map(|k| EXPRESSIONS[k + 1]) else {
        return false;
    };
    match channel {
        BROW_LOWER => matches!(name, "angry" | "sad" | "fearful" | "disgusted"),
        INNER_BROW_RAISE | BROW_LIFT => matches!(name, "sad" | "fearful" | "surprised"),
        OUTER_BROW_RAISE => matches!(name, "fearful" | "surprised"),
        LIP_CORNER_PULL_LEFT | LIP_CORNER_PULL_RIGHT => name == "happy",
        LIP_CORNER_DEPRESS_LEFT | LIP_CORNER_DEPRESS_RIGHT => name == "sad",
        NOSE_WRINKLE => name == "disgusted",
        MOUTH_OPEN | JAW_DROP | LIP_PUCKER => matches!(name, "surprised" | "fearful"),
        _ => false,
    }
}

fn channel_name(c: usize) -> String {
    if c < NUM_FEATURES {
        FEATURE_NAMES[c].to_string()
    } else {
        format!("expression:{}", EXPRESSIONS[c - NUM_FEATURES + 1])
    }
}

/// `start..=end` narrowed from both ends to the frames where `keep` holds (one frame at least).
fn trim(mut start: usize, mut end: usize, keep: impl Fn(usize) -> bool) -> (usize, usize) {
    while start < end && !keep(start) {
        start += 1;
    }
    while end > start && !keep(end) {
        end -= 1;
    }
    (start, end)
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
    let n = times.len();
    let present: Vec<bool> = features.iter().map(|f| f.is_some()).collect();
    let frame_s = 1.0 / fps.max(1e-9);

    let mouth = mouth_opening(features);
    let Activations {
        mut activation,
        change,
        mut sharp,
        baseline_frames,
        baseline_neutral,
    } = activations(times, features, &mouth, yaw, expressions, fps, options);

    // Speech: mouth-region channels and the classifier follow the syllables; there the classifier
    // counts only where it holds and the landmark channels start an episode only past
    // `high_in_speech`.
    let speech = speech_frames(&mouth, fps);
    // Around speech too the classifier reads an open mouth and teeth (an open vowel held, the
    // first and last syllables): it may not start an episode there.
    let near = (NEAR_SPEECH_S * fps).round() as usize;
    let near_speech: Vec<bool> = (0..n)
        .map(|i| speech[i.saturating_sub(near)..(i + near + 1).min(n)].contains(&true))
        .collect();
    // The classifier that confirms a landmark movement need only hold briefly: a micro-expression
    // lasts 0.2 s, shorter than the hold that keeps the classifier from starting episodes on its
    // own, and the landmark channel must move with it anyway.
    let confirm_hold = (CONFIRM_HOLD_S * fps).round() as usize;
    // Per classifier channel (index `c - NUM_FEATURES`).
    let confirming: Vec<Vec<f64>> = activation[NUM_FEATURES..]
        .iter()
        .map(|a| hold_in(a, &speech, confirm_hold))
        .collect();
    // Only the classifier and the mouth's opening channels (which follow every syllable) are
    // held: an opening over 0.3 s would also erase a micro-expression's lip-corner movement
    // (0.2 s); the lip corners and the upper lip need `high_in_speech` instead.
    // A wide opening (a gasp, a laugh) keeps its own frames unheld: held, a brief one is gone.
    let gasps: Vec<(usize, usize, usize)> = [MOUTH_OPEN, JAW_DROP]
        .into_iter()
        .flat_map(|c| {
            wide_openings(&activation[c], &speech, options.wide_open_in_speech)
                .into_iter()
                .map(move |(s, e)| (s, e, c))
        })
        .filter(|&(s, e, _)| {
            (NUM_FEATURES..NUM_CHANNELS).any(|k| peak(&activation[k][s..=e]) >= options.high)
        })
        .collect();
    let unheld: Vec<(usize, usize, f64, f64)> = gasps
        .iter()
        .flat_map(|&(s, e, c)| (s..=e).map(move |i| (c, i)))
        .map(|(c, i)| (c, i, activation[c][i], sharp[c][i]))
        .collect();
    let hold = (HOLD_S * fps).round() as usize;
    for c in (0..NUM_CHANNELS).filter(|&c| c >= NUM_FEATURES || is_mouth_feature(c)) {
        activation[c] = hold_in(&activation[c], &speech, hold);
        sharp[c] = hold_in(&sharp[c], &speech, hold);
    }
    for (c, i, a, s) in unheld {
        activation[c][i] = activation[c][i].max(a);
        sharp[c][i] = sharp[c][i].max(s);
    }

    // A landmark channel past `high` with a class it belongs to held past `bar` at frame `i`.
    let moves_with = |landmark: usize, class: usize, i: usize, bar: f64| {
        fits(landmark, class)
            && activation[landmark][i] >= options.high
            && confirming[class - NUM_FEATURES][i] >= bar
    };
    // In speech a movement that the classifier confirms (an expression it belongs to, held, not
    // a syllable) starts an episode at the ordinary threshold: words beat the brows and drag the
    // lip corners, and teeth read as happy, but a smile or a frown that moves both is not a word.
    let confirmed = |c: usize, i: usize| {
        if c < NUM_FEATURES {
            (NUM_FEATURES..NUM_CHANNELS).any(|k| moves_with(c, k, i, options.high))
        } else {
            (0..NUM_FEATURES).any(|b| moves_with(b, c, i, options.high))
        }
    };

    // In speech a brow raise that the landmarks and the pixels both see starts an episode at the
    // ordinary threshold: the landmark brows beat with the words (their points follow the mouth)
    // and the pixel profile has noise of its own, but the two rarely err together.
    let brows_agree = |c: usize, i: usize| {
        matches!(c, INNER_BROW_RAISE | OUTER_BROW_RAISE | BROW_LIFT)
            && activation[BROW_LIFT][i] >= options.high
            && activation[INNER_BROW_RAISE][i].max(activation[OUTER_BROW_RAISE][i]) >= options.high
    };
    // Active stretches per channel, with hysteresis, never across a faceless frame.
    let mut stretches: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, channel)
    let range_frames = (SPEECH_RANGE_MIN_S * fps).round() as usize;
    for (c, a) in activation.iter().enumerate() {
        let lip = c < NUM_FEATURES && is_speech_channel(c) && !is_mouth_feature(c);
        // Only the landmark channels are held to the person's own speech range.
        let own_range = (c < NUM_FEATURES)
            .then(|| speech_range(a, &speech, SPEECH_RANGE_SHARE, range_frames))
            .flatten();
        let high_in_speech = own_range.map_or(options.high_in_speech, |r| {
            options.high_in_speech.max(OWN_SPEECH_RANGE * r)
        });
        let talking_level = own_range.map_or(0.0, |r| SPEECH_RANGE_BOUND * r);
        let on = |i: usize| {
            present[i]
                && a[i]
                    >= if lip && speech[i] {
                        LOW_IN_SPEECH
                    } else {
                        options.low
                    }
        };
        let mut i = 0;
        while i < n {
            if !on(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && on(i) {
                i += 1;
            }
            let end = i - 1;
            let seeds = |i: usize| {
                if speech[i] {
                    (c < NUM_FEATURES && a[i] >= high_in_speech)
                        || confirmed(c, i)
                        || brows_agree(c, i)
                } else if near_speech[i] && c >= NUM_FEATURES {
                    false
                } else {
                    a[i] >= options.high
                }
            };
            if (start..=end).any(seeds) {
                let floor = PEAK_SHARE * peak(&a[start..=end]);
                let (s, e) = trim(start, end, |i| {
                    a[i] >= floor && (!speech[i] || a[i] >= talking_level)
                });
                stretches.push((s, e, c));
            }
        }
    }
    stretches.extend(&gasps);
    stretches.sort();
    // Some stretches join the episode other channels make (so it says what moved) but do not
    // stretch its bounds. In speech the mouth's opening channels follow the words, and so does
    // the classifier (an open vowel reads surprised, teeth happy). Anywhere the classifier lags
    // the face and reads on after it (a face it reads sad at rest stays sad after a frown): where
    // the landmarks moved, they say when.
    // A mouth opening the classifier confirms (held surprised over a held jaw drop), or a wide
    // one, is a gasp, not a syllable: the expression's own movement.
    let mouth_in_speech = |s: usize, e: usize, c: usize| {
        is_mouth_feature(c)
            && speech[s..=e].contains(&true)
            && !(s..=e).any(|i| confirmed(c, i))
            && !gasps.contains(&(s, e, c))
    };
    let landmark: Vec<(usize, usize)> = stretches
        .iter()
        .filter(|&&(s, e, c)| c < NUM_FEATURES && !mouth_in_speech(s, e, c))
        .map(|&(s, e, _)| (s, e))
        .collect();
    let (following, stretches): (Vec<_>, Vec<_>) = stretches.into_iter().partition(|&(s, e, c)| {
        if c >= NUM_FEATURES {
            speech[s] || landmark.iter().any(|&(ls, le)| s <= le && ls <= e)
        } else {
            mouth_in_speech(s, e, c)
        }
    });

    // Union across channels, merging short visible gaps; then apart where the face went back to
    // rest between two movements.
    let merge_gap = (options.merge_gap_s / frame_s).round() as usize;
    let mut episodes: Vec<Bounds> = join(&stretches, &present, merge_gap)
        .into_iter()
        .flat_map(|members| {
            // The mouth alone opening and closing again is talking, told on the whole below.
            if members.iter().all(|&(_, _, c)| is_mouth_feature(c)) {
                vec![bounds_and_channels(&members)]
            } else {
                split_apart(members, &activation)
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

    let mut out = Spotting {
        events: Vec::new(),
        blinks: Vec::new(),
        talking: runs(&bridged(&speech, &present))
            .into_iter()
            .map(|(s, e)| Span {
                start_time: times[s],
                end_time: times[e] + frame_s,
                start_frame: frame_indices[s],
                end_frame: frame_indices[e],
            })
            .collect(),
        baseline_frames,
        baseline_neutral,
    };
    for (s, e, mut channels) in episodes {
        let (s, e) = trim(s, e, |i| {
            channels.iter().any(|&c| sharp[c][i] >= options.low)
        });
        let duration = times[e] - times[s] + frame_s;
        if duration < options.min_duration_s {
            continue;
        }
        // The classifier alone for a few frames: a per-frame network's flicker, not a face.
        if channels.iter().all(|&c| c >= NUM_FEATURES) {
            if duration < options.classifier_min_s {
                continue;
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
                continue;
            }
            channels.extend(support);
        }
        // One landmark channel alone, barely above the noise: head motion, light and words
        // shifting the points look like this; an expression moves more or several channels.
        if let [c] = channels[..] {
            let strongest = peak(&activation[c][s..=e]);
            let bar = if speech[s..=e].contains(&true) {
                options.high_alone_in_speech
            } else {
                options.high_alone
            };
            let vouched = (s..=e).any(|i| {
                speech[i]
                    && (NUM_FEATURES..NUM_CHANNELS).any(|k| moves_with(c, k, i, VOUCHING_IN_SPEECH))
            });
            if c < NUM_FEATURES && !is_eye_feature(c) && strongest < bar && !vouched {
                continue;
            }
        }
        let span = Span {
            start_time: times[s],
            end_time: times[e] + frame_s,
            start_frame: frame_indices[s],
            end_frame: frame_indices[e],
        };
        // Blink: only the eyes, closing, briefly.
        let eyes_only = channels.iter().all(|&c| is_eye_feature(c));
        if eyes_only && duration < options.blink_max_s {
            let closing = channels.iter().any(|&c| {
                let peak = (s..=e).max_by(|&a, &b| activation[c][a].total_cmp(&activation[c][b]));
                peak.is_some_and(|p| change[c][p] < 0.0)
            });
            if closing {
                out.blinks.push(span);
                continue;
            }
        }
        // Talking: only the mouth, in speech (a word said wide, held) or opening and closing
        // more than once. Talking is a span, not events, unless more than the mouth moves or it
        // opens wide.
        if channels
            .iter()
            .all(|&c| c < NUM_FEATURES && is_mouth_feature(c))
        {
            let gasp = gasps.iter().any(|&(gs, ge, _)| gs <= e && s <= ge);
            if speech[s..=e].contains(&true) && !gasp {
                continue;
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
                let overlaps =
                    |t: &Span| t.start_frame <= span.end_frame && span.start_frame <= t.end_frame;
                if !out.talking.iter().any(overlaps) {
                    out.talking.push(span);
                    out.talking.sort_by_key(|t| t.start_frame);
                }
                continue;
            }
        }

        // Apex: where the moving channels together first come within 5 % of their strongest
        // (each capped so one runaway channel does not decide alone). An expression held at its
        // peak is a plateau, and the plateau's maximum frame would move with every pixel level
        // the decoder rounds differently; its first frame does not.
        let total: Vec<f64> = (s..=e)
            .map(|i| {
                channels
                    .iter()
                    .map(|&c| activation[c][i].min(ACTIVATION_CAP))
                    .sum::<f64>()
            })
            .collect();
        let strongest = peak(&total);
        let apex = s + total
            .iter()
            .position(|&t| t >= APEX_SHARE * strongest)
            .unwrap_or(0);
        // Still rising when the face is lost: most often the movement is what hid it (a hand
        // reaching the chin bends the landmarks, then covers the face), and no offset was seen.
        // (Uncapped here: a strong movement reaches the apex's cap while it still rises.)
        let lost = e + 1 < n && !present[e + 1];
        let strength = |i: usize| channels.iter().map(|&c| activation[c][i]).sum::<f64>();
        let strongest_at = (s..=e)
            .max_by(|&a, &b| strength(a).total_cmp(&strength(b)))
            .unwrap_or(s);
        if lost && strongest_at + RISING_INTO_LOSS >= e {
            continue;
        }
        let mut moves: Vec<ChannelMove> = channels
            .iter()
            .map(|&c| {
                let peak = (s..=e)
                    .max_by(|&a, &b| activation[c][a].total_cmp(&activation[c][b]))
                    .unwrap_or(s);
                ChannelMove {
                    name: channel_name(c),
                    peak_activation: activation[c][peak],
                    peak_change: change[c][peak],
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
        for i in s.saturating_sub(1)..=(e + 1).min(n - 1) {
            if let Some(p) = expressions[i].filter(|_| present[i]) {
                let label = EXPRESSIONS[dominant(&p)].to_string();
                if sequence.last() != Some(&label) {
                    sequence.push(label);
                }
            }
        }
        out.events.push(Event {
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
            cut_off: e + 1 >= n || lost,
        });
    }
    out
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
