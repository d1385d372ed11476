//! Per-channel activations against the person's own baseline: the first stage of spotting.
//!
//! Channels are the 15 action features and the 6 non-neutral expression probabilities. Each is
//! lightly smoothed and measured against its baseline (the frames where the person looks
//! neutral, or the half the classifier reads most neutral when that is under half a second) in
//! units of its robust spread there (MAD, with a floor for landmark jitter and, in speech, for
//! what words move the lip corners and round the lips). Three things that are not expressions
//! are taken out of the landmark channels first:
//! - speech: the part of the lip corners and the upper lip that follows the mouth's opening;
//! - a turned head: the part of each one-sided channel (eyes, lip corners) that follows the yaw;
//! - slow changes (a head held turned, a lean, lighting, a face coming back after it was lost):
//!   the baseline is a running median over a few seconds, not one value for the clip.

use super::features::{
    EYE_OPEN_LEFT, EYE_OPEN_RIGHT, LIP_CORNER_DEPRESS_LEFT, LIP_CORNER_DEPRESS_RIGHT,
    LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT, LIP_PUCKER, NUM_FEATURES, is_bidirectional,
    is_mouth_feature, is_speech_channel,
};
use super::speech::speech_frames;
use super::spot::SpotOptions;
use super::stats::{local_median, mad_sigma, median, robust_slope, smooth};

pub const NUM_CHANNELS: usize = NUM_FEATURES + 6;

/// Floor of each feature's spread: landmark jitter on a still face, in inter-ocular units
/// (eye openings are ratios).
pub(crate) const FEATURE_FLOOR: [f64; NUM_FEATURES] = [
    0.012, 0.012, 0.012, 0.03, 0.03, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.012, 0.01, 0.012, 0.01,
];

/// How much each one-sided channel moves per unit of yaw proxy ([`super::pose::pose_proxies`]):
/// a turned head foreshortens one side of the face against the other, so the two sides move
/// apart though nothing moved. Half the slope of each left-minus-right difference against the
/// yaw, measured on the development set's 13 clips with head turns (9 people, yaw spread
/// 0.13-0.33): the pull difference moved by 0.9-1.2 per unit of yaw (the median halved, 0.49;
/// per clip 0.46-0.58), the depression difference by 0.21-0.35 (0.13; 0.11-0.17), the eye
/// openings' by 0.1-0.2 (0.09): the same for every person, so geometry.
fn yaw_coupling(channel: usize) -> f64 {
    match channel {
        EYE_OPEN_LEFT => 0.09,
        EYE_OPEN_RIGHT => -0.09,
        LIP_CORNER_PULL_LEFT => -0.49,
        LIP_CORNER_PULL_RIGHT => 0.49,
        LIP_CORNER_DEPRESS_LEFT => 0.13,
        LIP_CORNER_DEPRESS_RIGHT => -0.13,
        _ => 0.0,
    }
}

/// The yaw is averaged over this many seconds each side before it is taken out: the landmarks
/// it is read from jitter from frame to frame, a head turns over tenths of a second.
const YAW_SMOOTH_S: f64 = 0.1;

/// Yaw changes up to this (the proxy's sway on a still head) are not taken out: at the lip
/// corners' coupling they move a channel by less than its jitter floor.
const YAW_DEAD_BAND: f64 = 0.02;

/// The running baseline needs this many seconds of baseline frames in its window, else the
/// clip's baseline is used.
const LOCAL_MIN_S: f64 = 0.5;
/// The running baseline is computed every this many seconds and interpolated between.
const LOCAL_STRIDE_S: f64 = 0.2;

/// In a clip with a second of speech or more, the lip-corner pulls and the lips' rounding are
/// measured in units of at least this spread (inter-ocular units): words move them that much.
/// It is the 25th percentile of the spreads of the 22 talking controls the dev set then had,
/// whole (pulls 0.020-0.021, rounding 0.020; medians 0.025-0.028 and 0.023). A few seconds of
/// calm speech (a recording started late) gave half the person's usual spread, and a slight
/// smile read twice as strong (dev controls cut to start later: 13 -> 6 false events in 502
/// first seconds; spliced F1 over seeds 13-20 0.862 -> 0.865).
const SPEECH_SPREAD_FLOOR: f64 = 0.02;

/// Per channel and frame (0 where no face).
pub struct Activations {
    /// Robust z against the baseline (one-sided channels: only the action's direction).
    pub activation: Vec<Vec<f64>>,
    /// Unsmoothed activation: smoothing widens a step by its radius on each side, so episode
    /// bounds are refined on this one.
    pub sharp: Vec<Vec<f64>>,
    /// Change from the baseline (feature units or probability).
    pub change: Vec<Vec<f64>>,
    pub baseline_frames: usize,
    /// Whether the baseline frames are neutral-looking ones.
    pub baseline_neutral: bool,
    /// Frames where the person talks ([`speech_frames`] of the mouth's opening).
    pub speech: Vec<bool>,
}

/// Where too few frames read neutral, the baseline is the half of the frames the classifier
/// reads most neutral, not all of them. A person who smiles through most of her speech
/// (talking_garden: 9 of 250 frames read neutral, 178 happy) was measured against her smiles:
/// their median and spread, and a smile burst spliced there moved the lip corners 2-3 units.
/// Against her less smiling half, dev (seeds 13-20): spliced F1 0.866 -> 0.877 (micro 0.832 ->
/// 0.838; talking_garden as a host 0.36 -> 0.79), talking controls 0.3 -> 0.0 false/min; a
/// third gave 0.879 but more late starts (7 not 6), a fifth 0.877. The present frames at or
/// above the median neutral reading, in time order; all of them where the classifier read
/// none, or where half would be under `fewest`.
fn most_neutral_looking(
    present: &[bool],
    expressions: &[Option<[f64; 7]>],
    fewest: usize,
) -> Vec<usize> {
    let frames: Vec<usize> = (0..present.len()).filter(|&i| present[i]).collect();
    let mut readings: Vec<f64> = frames
        .iter()
        .filter_map(|&i| expressions[i].map(|p| p[0]))
        .collect();
    if readings.len() < 2 * fewest {
        return frames;
    }
    let middle = median(&mut readings);
    frames
        .into_iter()
        .filter(|&i| expressions[i].is_some_and(|p| p[0] >= middle))
        .collect()
}

/// `mouth` is the mouth-opening series (NaN where no face), which the spotter also reads speech
/// from; `yaw` the yaw proxy per frame (NaN where unknown), if known.
pub fn activations(
    times: &[f64],
    features: &[Option<[f64; NUM_FEATURES]>],
    mouth: &[f64],
    yaw: Option<&[f64]>,
    expressions: &[Option<[f64; 7]>],
    fps: f64,
    options: &SpotOptions,
) -> Activations {
    let n = times.len();
    let present: Vec<bool> = features.iter().map(|f| f.is_some()).collect();

    // Baseline frames: where the person looks neutral, if there are as many as a running
    // baseline needs. Not a share of the clip: an expressive face that reads neutral for half a
    // second is better measured against that half second than against all its frames, whose
    // own expressions would widen the spread, and a long session needs no more of them.
    let neutral: Vec<usize> = (0..n)
        .filter(|&i| present[i] && super::reads_neutral(expressions[i]))
        .collect();
    let fewest = (LOCAL_MIN_S * fps).max(5.0);
    let baseline_neutral = neutral.len() as f64 >= fewest;
    let baseline: Vec<usize> = if baseline_neutral {
        neutral
    } else {
        most_neutral_looking(&present, expressions, fewest.ceil() as usize)
    };

    // Speech moves the lip corners and the upper lip with the mouth's opening: that part of each
    // such channel (a straight-line fit on the baseline frames) is taken out, so words move them
    // less while a smile, which pulls the corners whatever the mouth does, stays.
    let coupling: Vec<f64> = (0..NUM_FEATURES)
        .map(|c| {
            if !options.decouple_speech || !is_speech_channel(c) || is_mouth_feature(c) {
                return 0.0;
            }
            let pairs: Vec<(f64, f64)> = baseline
                .iter()
                .filter_map(|&i| features[i].map(|f| (mouth[i], f[c])))
                .collect();
            robust_slope(&pairs)
        })
        .collect();
    let mouth_centre = {
        let mut m: Vec<f64> = baseline
            .iter()
            .map(|&i| mouth[i])
            .filter(|v| v.is_finite())
            .collect();
        median(&mut m)
    };

    // The head's turn away from its usual yaw (the baseline frames' median), smoothed; a turn
    // within the dead band is left alone.
    let turned: Option<Vec<f64>> = yaw.and_then(|y| {
        let y = smooth(y, (YAW_SMOOTH_S * fps).round() as usize);
        let mut usual: Vec<f64> = baseline
            .iter()
            .map(|&i| y[i])
            .filter(|v| v.is_finite())
            .collect();
        if usual.is_empty() {
            return None;
        }
        let centre = median(&mut usual);
        Some(
            y.iter()
                .map(|v| {
                    let d = v - centre;
                    if d.is_finite() {
                        d.signum() * (d.abs() - YAW_DEAD_BAND).max(0.0)
                    } else {
                        0.0
                    }
                })
                .collect(),
        )
    });
    let turn = |c: usize, i: usize| turned.as_ref().map_or(0.0, |t| yaw_coupling(c) * t[i]);
    let speech = speech_frames(mouth, fps);
    let talks = speech.iter().filter(|&&s| s).count() as f64 >= fps;
    let floor = |c: usize| match c {
        LIP_CORNER_PULL_LEFT | LIP_CORNER_PULL_RIGHT | LIP_PUCKER if talks => {
            FEATURE_FLOOR[c].max(SPEECH_SPREAD_FLOOR)
        }
        _ => FEATURE_FLOOR[c],
    };

    let mut out = Activations {
        activation: vec![vec![0.0; n]; NUM_CHANNELS],
        sharp: vec![vec![0.0; n]; NUM_CHANNELS],
        change: vec![vec![0.0; n]; NUM_CHANNELS],
        baseline_frames: baseline.len(),
        baseline_neutral,
        speech,
    };
    for c in 0..NUM_CHANNELS {
        let series: Vec<f64> = (0..n)
            .map(|i| {
                if c < NUM_FEATURES {
                    features[i].map_or(f64::NAN, |f| {
                        f[c] - coupling[c] * (mouth[i] - mouth_centre) - turn(c, i)
                    })
                } else if present[i] {
                    expressions[i].map_or(f64::NAN, |p| p[c - NUM_FEATURES + 1])
                } else {
                    f64::NAN
                }
            })
            .collect();
        let s = smooth(&series, options.smooth_radius);
        let mut base: Vec<f64> = baseline
            .iter()
            .map(|&i| s[i])
            .filter(|v| !v.is_nan())
            .collect();
        if base.is_empty() {
            continue;
        }
        let global = median(&mut base);
        // The classifier's probabilities are not moved by pose or light the way landmark
        // distances are: they keep the clip's baseline.
        let centre = if options.baseline_window_s > 0.0 && c < NUM_FEATURES {
            local_median(
                &s,
                times,
                &baseline,
                options.baseline_window_s,
                (LOCAL_MIN_S * fps).ceil() as usize,
                (LOCAL_STRIDE_S * fps).round() as usize,
                global,
            )
        } else {
            vec![global; n]
        };
        let (unit, one_sided) = if c < NUM_FEATURES {
            let residuals: Vec<f64> = baseline
                .iter()
                .map(|&i| s[i] - centre[i])
                .filter(|v| !v.is_nan())
                .collect();
            (
                mad_sigma(&residuals, 0.0).max(floor(c)),
                !is_bidirectional(c),
            )
        } else {
            (options.expression_unit, true)
        };
        let activation = |v: f64| {
            let z = v / unit;
            if one_sided { z.max(0.0) } else { z.abs() }
        };
        for i in (0..n).filter(|&i| !s[i].is_nan()) {
            out.change[c][i] = s[i] - centre[i];
            out.activation[c][i] = activation(s[i] - centre[i]);
            out.sharp[c][i] = activation(series[i] - centre[i]);
        }
    }
    out
}
