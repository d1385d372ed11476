//! Spotting benchmark: synthetic clips with known micro-expression intervals, made by splicing
//! short bursts of smile frames from a real clip into its neutral stretch, and the MEGC interval
//! metric to score a spotter on them.
//!
//! Per-frame analysis does not look at neighbouring frames, so a spliced clip's per-frame
//! records are exactly the source frames' records: we splice analysed records, not pixels,
//! which makes hundreds of clips cost one analysis of the source.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::keyframes::{
    Keyframe, KeyframeOptions, KeyframeSampling, base_rate_records, select_keyframes,
};
use super::spot::{EventKind, SpotOptions, Spotting, spot};
use super::{FrameRecord, Timeline};
use crate::rng::Rng;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Clips with bursts.
    pub clips: usize,
    /// Burst-free control clips.
    pub controls: usize,
    /// Length of each clip in frames.
    pub clip_frames: usize,
    /// Bursts per clip (inclusive range).
    pub bursts_per_clip: (usize, usize),
    /// Burst length in frames (inclusive range).
    pub burst_frames: (usize, usize),
    /// Neutral frames at least this long between bursts and at the clip ends.
    pub min_gap_frames: usize,
    pub seed: u64,
    pub shape: BurstShape,
}

/// How a burst is cut from the source's smile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BurstShape {
    /// From the real smile onset, played forward then back: rise, apex, fall.
    #[default]
    RiseFall,
    /// A contiguous piece of the full smile: abrupt on and off.
    Step,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            clips: 24,
            controls: 6,
            clip_frames: 300,
            bursts_per_clip: (2, 4),
            burst_frames: (6, 15),
            min_gap_frames: 36,
            seed: 7,
            shape: BurstShape::RiseFall,
        }
    }
}

/// One synthetic clip: source frame per output frame, and the true burst intervals
/// (inclusive output frame indices).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchClip {
    pub source_frames: Vec<usize>,
    pub truth: Vec<(usize, usize)>,
}

/// The neutral stretch played forward and back (no jump cuts), from a random phase.
fn ping_pong(neutral: &Range<usize>, len: usize, phase: usize) -> Vec<usize> {
    let n = neutral.len();
    if n <= 1 {
        return vec![neutral.start; len];
    }
    let period = 2 * (n - 1);
    (0..len)
        .map(|i| {
            let k = (i + phase) % period;
            neutral.start + if k < n { k } else { period - k }
        })
        .collect()
}

/// Generates burst clips and controls. `neutral` and `smile` are source frame ranges.
pub fn generate(
    neutral: Range<usize>,
    smile: Range<usize>,
    options: &BenchOptions,
) -> Vec<BenchClip> {
    let mut rng = Rng(options.seed);
    let mut clips = Vec::new();
    for c in 0..options.clips + options.controls {
        let phase = rng.range(0, 1000);
        let mut frames = ping_pong(&neutral, options.clip_frames, phase);
        let mut truth = Vec::new();
        if c < options.clips {
            let wanted = rng.range(options.bursts_per_clip.0, options.bursts_per_clip.1);
            let mut cursor = options.min_gap_frames;
            for _ in 0..wanted {
                let len = rng
                    .range(options.burst_frames.0, options.burst_frames.1)
                    .min(smile.len());
                let start = cursor + rng.range(0, options.min_gap_frames);
                if start + len + options.min_gap_frames > options.clip_frames {
                    break;
                }
                let piece: Vec<usize> = match options.shape {
                    // A contiguous piece of the real smile, from a random point of it.
                    BurstShape::Step => {
                        let from = rng.range(smile.start, smile.end - len);
                        (from..from + len).collect()
                    }
                    // The real onset (between the neutral stretch and the full smile), forward
                    // for half the burst and back for the other half.
                    BurstShape::RiseFall => {
                        let from = rng.range(neutral.end, smile.start.max(neutral.end));
                        let up = len.div_ceil(2);
                        let rise: Vec<usize> = (from..from + up).collect();
                        let fall = rise[..len - up].iter().rev().copied();
                        rise.iter().copied().chain(fall).collect()
                    }
                };
                frames[start..start + len].copy_from_slice(&piece);
                truth.push((start, start + len - 1));
                cursor = start + len + options.min_gap_frames;
            }
        }
        clips.push(BenchClip {
            source_frames: frames,
            truth,
        });
    }
    clips
}

/// The timeline of a spliced clip: the source's records, re-timed.
pub fn splice(source: &Timeline, clip: &BenchClip) -> Timeline {
    let records: Vec<FrameRecord> = clip
        .source_frames
        .iter()
        .enumerate()
        .map(|(i, &s)| FrameRecord {
            index: i,
            time: i as f64 / source.fps,
            ..source.records[s].clone()
        })
        .collect();
    source.with_records(records)
}

/// Intersection over union of two inclusive frame intervals.
pub fn interval_iou(a: (usize, usize), b: (usize, usize)) -> f64 {
    let inter = (a.1.min(b.1) + 1).saturating_sub(a.0.max(b.0));
    let union = (a.1.max(b.1) + 1) - a.0.min(b.0);
    inter as f64 / union as f64
}

/// MEGC matching: a prediction is a hit when its IoU with a not yet matched truth interval is
/// at least 0.5 (best such truth first). Returns the hits.
pub fn count_hits(predicted: &[(usize, usize)], truth: &[(usize, usize)]) -> usize {
    matched_truths(predicted, truth)
        .iter()
        .filter(|&&m| m)
        .count()
}

/// Which truth intervals a prediction hit, by the matching of [`count_hits`].
pub fn matched_truths(predicted: &[(usize, usize)], truth: &[(usize, usize)]) -> Vec<bool> {
    let mut used = vec![false; truth.len()];
    for &p in predicted {
        let best = (0..truth.len())
            .filter(|&k| !used[k])
            .map(|k| (k, interval_iou(p, truth[k])))
            .filter(|&(_, iou)| iou >= 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((k, _)) = best {
            used[k] = true;
        }
    }
    used
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchScore {
    pub clips: usize,
    pub controls: usize,
    pub truth: usize,
    pub predicted: usize,
    pub hits: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Hits the spotter also called micro (all bursts are shorter than 0.5 s).
    pub hits_micro: usize,
    /// Events on the burst-free controls, per minute of control video.
    pub control_false_per_minute: f64,
}

/// Spots every clip and scores it.
pub fn evaluate(source: &Timeline, clips: &[BenchClip], options: &SpotOptions) -> BenchScore {
    let (mut truth, mut predicted, mut hits, mut hits_micro) = (0, 0, 0, 0);
    let (mut controls, mut control_events, mut control_frames) = (0, 0, 0);
    for clip in clips {
        let timeline = splice(source, clip);
        let events = spot(&timeline, options).events;
        if clip.truth.is_empty() {
            controls += 1;
            control_events += events.len();
            control_frames += clip.source_frames.len();
            continue;
        }
        let intervals: Vec<(usize, usize)> = events
            .iter()
            .map(|e| (e.onset_frame, e.offset_frame))
            .collect();
        let h = count_hits(&intervals, &clip.truth);
        // Hits that were also classified micro: matched events, counted once each.
        hits_micro += events
            .iter()
            .filter(|e| {
                e.kind == EventKind::Micro
                    && clip
                        .truth
                        .iter()
                        .any(|&t| interval_iou((e.onset_frame, e.offset_frame), t) >= 0.5)
            })
            .count()
            .min(h);
        truth += clip.truth.len();
        predicted += events.len();
        hits += h;
    }
    let precision = if predicted > 0 {
        hits as f64 / predicted as f64
    } else {
        0.0
    };
    let recall = if truth > 0 {
        hits as f64 / truth as f64
    } else {
        0.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let minutes = control_frames as f64 / source.fps / 60.0;
    BenchScore {
        clips: clips.len() - controls,
        controls,
        truth,
        predicted,
        hits,
        precision,
        recall,
        f1,
        hits_micro,
        control_false_per_minute: if minutes > 0.0 {
            control_events as f64 / minutes
        } else {
            0.0
        },
    }
}

/// How well one keyframe strategy shows the brief rare states of the burst clips.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyframeCoverage {
    pub strategy: String,
    /// Keyframes over all burst clips.
    pub keyframes: usize,
    pub bursts: usize,
    /// Bursts with at least one keyframe inside.
    pub bursts_shown: usize,
    pub burst_recall: f64,
    /// Share of keyframes whose dominant expression is not neutral.
    pub non_neutral_share: f64,
}

/// Keyframe sampling on the burst clips, at one budget per clip: `base_fps` keyframes per
/// second. Compares frames evenly spread over the clip (the usual VLM baseline), the
/// emotion-balanced selection without spotted events, and the full selection (balanced plus
/// event apexes). The base rate is what all three spend; the balanced ones trade base frames
/// of the commonest expression for rare ones.
pub fn keyframe_coverage(
    source: &Timeline,
    clips: &[BenchClip],
    options: &SpotOptions,
    base_fps: f64,
) -> Vec<KeyframeCoverage> {
    let strategies = ["uniform", "balanced (no events)", "balanced + event apexes"];
    let mut totals = vec![(0usize, 0usize, 0usize, 0usize); strategies.len()];
    for clip in clips.iter().filter(|c| !c.truth.is_empty()) {
        let timeline = splice(source, clip);
        let spotting = spot(&timeline, options);
        // Every strategy gets as many keyframes as the base rate alone would give.
        let budget = base_rate_records(&timeline, base_fps).len();
        let capped = KeyframeOptions {
            base_fps,
            max_keyframes: Some(budget),
            sampling: KeyframeSampling::Balanced,
        };
        let uniform = KeyframeOptions {
            sampling: KeyframeSampling::Uniform,
            ..capped
        };
        let no_events = Spotting {
            events: Vec::new(),
            ..spotting.clone()
        };
        let picks: [Vec<Keyframe>; 3] = [
            select_keyframes(&timeline, &spotting, &uniform),
            select_keyframes(&timeline, &no_events, &capped),
            select_keyframes(&timeline, &spotting, &capped),
        ];
        for (total, keyframes) in totals.iter_mut().zip(&picks) {
            total.0 += keyframes.len();
            total.1 += clip.truth.len();
            total.2 += clip
                .truth
                .iter()
                .filter(|&&(a, b)| keyframes.iter().any(|k| (a..=b).contains(&k.frame)))
                .count();
            total.3 += keyframes
                .iter()
                .filter(|k| k.expression.as_deref().is_some_and(|e| e != "neutral"))
                .count();
        }
    }
    strategies
        .iter()
        .zip(totals)
        .map(
            |(name, (keyframes, bursts, shown, rare))| KeyframeCoverage {
                strategy: name.to_string(),
                keyframes,
                bursts,
                bursts_shown: shown,
                burst_recall: shown as f64 / bursts.max(1) as f64,
                non_neutral_share: rare as f64 / keyframes.max(1) as f64,
            },
        )
        .collect()
}

/// Neutral and smile source ranges of a clip like `single_face.mp4`: the frames before the first
/// happy one (less a margin, so no onset leaks in), and the longest run of clearly happy frames.
pub fn find_ranges(source: &Timeline) -> Option<(Range<usize>, Range<usize>)> {
    let happy = |r: &FrameRecord| r.expressions.map_or(0.0, |p| p[1]);
    let neutral = |r: &FrameRecord| super::reads_neutral(r.expressions);
    let first_happy = source.records.iter().position(|r| happy(r) >= 0.5)?;
    let neutral_end = source.records[..first_happy]
        .iter()
        .position(|r| !neutral(r))
        .unwrap_or(first_happy)
        .saturating_sub(4);
    let mut best: Option<Range<usize>> = None;
    let mut i = 0;
    while i < source.records.len() {
        if happy(&source.records[i]) < 0.9 {
            i += 1;
            continue;
        }
        let start = i;
        while i < source.records.len() && happy(&source.records[i]) >= 0.9 {
            i += 1;
        }
        if best.as_ref().is_none_or(|b| i - start > b.len()) {
            best = Some(start..i);
        }
    }
    let smile = best?;
    (neutral_end >= 4 && smile.len() >= 15).then_some((0..neutral_end, smile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_and_megc_matching() {
        assert_eq!(interval_iou((0, 9), (0, 9)), 1.0);
        assert_eq!(interval_iou((0, 9), (10, 19)), 0.0);
        assert!((interval_iou((0, 9), (5, 14)) - 5.0 / 15.0).abs() < 1e-12);
        // Two predictions on one truth: one hit only.
        assert_eq!(count_hits(&[(0, 9), (1, 10)], &[(0, 9)]), 1);
        assert_eq!(count_hits(&[(0, 9), (20, 29)], &[(1, 10), (21, 28)]), 2);
        assert_eq!(count_hits(&[(0, 30)], &[(0, 9)]), 0);
    }

    #[test]
    fn clips_have_bursts_of_the_requested_length_apart() {
        let options = BenchOptions::default();
        let clips = generate(0..16, 25..70, &options);
        let steps = generate(
            0..16,
            25..70,
            &BenchOptions {
                shape: BurstShape::Step,
                ..options.clone()
            },
        );
        assert!(steps.iter().all(|c| {
            c.truth
                .iter()
                .all(|&(a, b)| c.source_frames[a..=b].iter().all(|s| (25..70).contains(s)))
        }));
        assert_eq!(clips.len(), options.clips + options.controls);
        for (c, clip) in clips.iter().enumerate() {
            assert_eq!(clip.source_frames.len(), options.clip_frames);
            if c >= options.clips {
                assert!(clip.truth.is_empty());
                assert!(clip.source_frames.iter().all(|&s| s < 16));
                continue;
            }
            assert!(!clip.truth.is_empty());
            for &(a, b) in &clip.truth {
                let len = b - a + 1;
                assert!((6..=15).contains(&len));
                // Rise from the onset (16..25) into the smile, and back to where it began.
                assert!(
                    clip.source_frames[a..=b]
                        .iter()
                        .all(|&s| (16..70).contains(&s))
                );
                assert_eq!(clip.source_frames[a], clip.source_frames[b]);
            }
            for w in clip.truth.windows(2) {
                assert!(w[1].0 - w[0].1 > options.min_gap_frames);
            }
        }
    }
}
