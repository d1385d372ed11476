//! The dev-set benchmark's spliced clips ([`super::devbench`]): an expression clip's episodes
//! as changes against its own neutral frames, and a control played forward and back with bursts
//! of them added to its records.

use super::activation::FEATURE_FLOOR;
use super::bench::interval_iou;
use super::devbench::{DevBenchOptions, DevClip, Episode, episode_frames};
use super::stats::median;
use super::{NUM_FEATURES, Timeline};
use crate::rng::Rng;

/// A source of bursts: the expression clip's per-frame changes against its own neutral frames.
pub(super) struct BurstSource {
    /// Per frame: feature change and expression probability change (`None` where no face).
    pub(super) changes: Vec<Option<([f64; NUM_FEATURES], [f64; 7])>>,
    pub(super) episodes: Vec<(usize, usize)>,
    /// The clip's file name, to name each episode as `file #k`.
    pub(super) file: String,
}

/// Fewest neutral-looking frames that make a burst source's reference.
const MIN_NEUTRAL_FRAMES: usize = 3;

/// A burst rises from the last frame of its episode that has made under this share of the
/// movement to the apex ([`BurstSource::rise`]). Read on the bursts alone, not the spotter:
/// rising from the marked onset, 24 of the 1009 bursts of both splits (seed 13; all from
/// grin_pout's long smile and pouts) showed half their apex movement on under half their frames,
/// the apex often on one; from this share none do (from 0.1, 8 still do), and the bursts' frames
/// at half their apex movement or more go from 94 % to 99 %.
const RISE_START_SHARE: f64 = 0.25;

impl BurstSource {
    /// The frame of an episode where the face moved most: the landmark changes, each in units of
    /// its jitter floor, summed.
    fn apex(&self, start: usize, end: usize) -> usize {
        (start..=end)
            .max_by(|&a, &b| self.size(a).total_cmp(&self.size(b)))
            .unwrap_or(start)
    }

    /// How far the face has moved at frame `i`: the landmark changes, each in units of its
    /// jitter floor, summed.
    fn size(&self, i: usize) -> f64 {
        self.changes[i].map_or(0.0, |(df, _)| {
            df.iter()
                .zip(FEATURE_FLOOR)
                .map(|(d, f)| (d / f).abs())
                .sum::<f64>()
        })
    }

    /// The rise of the episode `onset..=end` that a burst plays: from where the face starts
    /// towards the apex (the last frame from `onset` on that has made under
    /// [`RISE_START_SHARE`] of the movement there) to the apex. An episode marked from a slight
    /// lead-in (a faint smile held a second before it widens) would otherwise be compressed into
    /// a burst that barely moves until its apex, reached in one frame.
    pub(super) fn rise(&self, (onset, end): (usize, usize)) -> (usize, usize) {
        let apex = self.apex(onset, end);
        let (from, to) = (self.size(onset), self.size(apex));
        let start = (onset..=apex)
            .rev()
            .find(|&i| self.size(i) <= from + RISE_START_SHARE * (to - from))
            .unwrap_or(onset);
        (start, apex)
    }
}

pub(super) fn burst_source(clip: &DevClip, timeline: &Timeline) -> BurstSource {
    let episodes = episode_frames(clip, timeline);
    let outside = |i: usize| episodes.iter().all(|&(s, e)| i < s || i > e);
    let rest: Vec<_> = timeline
        .records
        .iter()
        .enumerate()
        .filter(|&(i, r)| outside(i) && r.features.is_some() && r.expressions.is_some())
        .map(|(_, r)| (r.features.unwrap(), r.expressions.unwrap()))
        .collect();
    // The change is taken against the neutral-looking frames outside the episodes (as the
    // spotter takes its baseline): an expression held on after the marked offset, or one not
    // marked, would otherwise sit in the reference and cancel part of the burst.
    let neutral: Vec<_> = rest
        .iter()
        .filter(|r| crate::timeline::reads_neutral(Some(r.1)))
        .copied()
        .collect();
    let rest = if neutral.len() >= MIN_NEUTRAL_FRAMES {
        neutral
    } else {
        rest
    };
    let centre = |get: &dyn Fn(usize) -> f64| {
        let mut v: Vec<f64> = (0..rest.len()).map(get).collect();
        if v.is_empty() { 0.0 } else { median(&mut v) }
    };
    let feat_ref: Vec<f64> = (0..NUM_FEATURES)
        .map(|c| centre(&|k| rest[k].0[c]))
        .collect();
    let expr_ref: Vec<f64> = (0..7).map(|c| centre(&|k| rest[k].1[c])).collect();
    let changes = timeline
        .records
        .iter()
        .map(|r| {
            let (f, p) = (r.features?, r.expressions?);
            Some((
                std::array::from_fn(|c| f[c] - feat_ref[c]),
                std::array::from_fn(|c| p[c] - expr_ref[c]),
            ))
        })
        .collect();
    BurstSource {
        changes,
        episodes,
        file: clip.file.clone(),
    }
}

/// A host clip (a control played forward and back) with bursts spliced in.
pub(super) struct Spliced {
    pub(super) timeline: Timeline,
    /// The bursts' frame intervals.
    pub(super) truth: Vec<(usize, usize)>,
    /// The source episode of each burst (`file #k`).
    pub(super) origins: Vec<String>,
    /// Per frame: whether the host frame lies on a movement marked in the host.
    pub(super) marked: Vec<bool>,
}

impl Spliced {
    /// `events` less those on a movement marked in the host that match no burst: the host's own
    /// expression, which the spotter is right to report.
    pub(super) fn unmarked(&self, events: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
        events
            .into_iter()
            .filter(|&(s, e)| {
                !self.marked[s..=e].contains(&true)
                    || self.truth.iter().any(|&t| interval_iou((s, e), t) >= 0.5)
            })
            .collect()
    }
}

pub(super) fn spliced_clip(
    host: &Timeline,
    movements: &[Episode],
    sources: &[BurstSource],
    lengths: (usize, usize),
    options: &DevBenchOptions,
    rng: &mut Rng,
) -> Spliced {
    let n = host.records.len();
    let period = 2 * (n - 1).max(1);
    let phase = rng.range(0, period);
    let mut marked = Vec::with_capacity(options.clip_frames);
    let mut records: Vec<_> = (0..options.clip_frames)
        .map(|i| {
            let k = (i + phase) % period;
            let src = if k < n { k } else { period - k };
            let mut r = host.records[src.min(n - 1)].clone();
            marked.push(
                movements
                    .iter()
                    .any(|m| m.onset <= r.time && r.time <= m.offset),
            );
            r.index = i;
            r.time = i as f64 / host.fps;
            r
        })
        .collect();
    let mut truth = Vec::new();
    let mut origins = Vec::new();
    let mut cursor = options.gap_frames;
    loop {
        let source = &sources[rng.range(0, sources.len() - 1)];
        let episode = rng.range(0, source.episodes.len() - 1);
        let len = rng.range(lengths.0, lengths.1);
        let start = cursor + rng.range(0, options.gap_frames);
        if start + len + options.gap_frames > options.clip_frames {
            break;
        }
        // Rise from where the face starts towards the episode's apex, sped up or slowed down to
        // half the burst, and back: a brief expression that still reaches its apex, as
        // micro-expressions do (the first frames of a slow smile's onset alone would splice
        // barely a move).
        let up = len.div_ceil(2);
        let (from, apex) = source.rise(source.episodes[episode]);
        let rise: Vec<usize> = (0..up)
            .map(|k| from + ((apex - from) as f64 * (k + 1) as f64 / up as f64).round() as usize)
            .collect();
        let fall = rise[..(len - up).min(up)].iter().rev().copied();
        let piece: Vec<usize> = rise.iter().copied().chain(fall).collect();
        // Where the host's face is lost (turned away, a hand over it) a burst is seen by no one:
        // no truth goes there.
        if records[start..start + piece.len()]
            .iter()
            .any(|r| r.features.is_none())
        {
            cursor = start + piece.len() + options.gap_frames;
            continue;
        }
        for (k, &s) in piece.iter().enumerate() {
            let r = &mut records[start + k];
            if let (Some(f), Some(p), Some((df, dp))) = (
                r.features.as_mut(),
                r.expressions.as_mut(),
                source.changes[s],
            ) {
                for c in 0..NUM_FEATURES {
                    f[c] += df[c];
                }
                for c in 0..7 {
                    p[c] = (p[c] + dp[c]).clamp(0.0, 1.0);
                }
                let sum: f64 = p.iter().sum();
                p.iter_mut().for_each(|v| *v /= sum.max(1e-9));
            }
        }
        truth.push((start, start + piece.len() - 1));
        origins.push(format!("{} #{}", source.file, episode + 1));
        cursor = start + piece.len() + options.gap_frames;
    }
    Spliced {
        timeline: host.with_records(records),
        truth,
        origins,
        marked,
    }
}
