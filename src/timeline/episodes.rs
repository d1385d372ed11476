//! Episodes from the channels' active stretches: stretches of any channels that overlap or lie
//! close together form one episode, and an episode whose movement falls back almost to rest and
//! rises again is two.

use super::features::NUM_FEATURES;
use super::stats::peak;

/// An active stretch of one channel: (first frame, last frame, channel).
pub type Stretch = (usize, usize, usize);

/// Each channel's activation counts up to this in an episode's total: one runaway channel (a
/// wide-open mouth, a face with a tiny baseline spread) must not decide alone.
pub const ACTIVATION_CAP: f64 = 10.0;

/// An episode is two where the landmark channels' total falls below this share of the smaller of
/// its peaks before and after: the face went back to rest between two movements (a burst beside
/// a speaking smile, a smile then a frown). Above it the dip is one expression's own wobble (dev,
/// seeds 13-20: 0.15 and 0.2 alike, 0.3 splits real episodes, 0.5 halves macro ones).
const VALLEY_SHARE: f64 = 0.2;
/// Each part lasts this many frames at least: a dip at an episode's edge is its onset or offset.
const MIN_PART: usize = 3;

/// Stretches sorted by start, joined where they overlap or their gap (the face visible in it) is
/// at most `merge_gap` frames.
pub fn join(stretches: &[Stretch], present: &[bool], merge_gap: usize) -> Vec<Vec<Stretch>> {
    let mut episodes: Vec<(usize, Vec<Stretch>)> = Vec::new();
    for &(s, e, c) in stretches {
        if let Some((end, members)) = episodes.last_mut() {
            let visible_gap = s <= *end + 1 || (*end + 1..s).all(|i| present[i]);
            if s <= *end + 1 + merge_gap && visible_gap {
                *end = (*end).max(e);
                members.push((s, e, c));
                continue;
            }
        }
        episodes.push((e, vec![(s, e, c)]));
    }
    episodes.into_iter().map(|(_, members)| members).collect()
}

/// An episode's bounds and its channels, each once, in the order they joined.
pub fn bounds_and_channels(members: &[Stretch]) -> (usize, usize, Vec<usize>) {
    let start = members.iter().map(|m| m.0).min().unwrap_or(0);
    let end = members.iter().map(|m| m.1).max().unwrap_or(0);
    let mut channels: Vec<usize> = Vec::new();
    for &(_, _, c) in members {
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    (start, end, channels)
}

/// `members` (one episode's stretches) split at their deepest valley, then each part again:
/// the parts' stretches are cut to the part. Only the landmark channels' total is read: the
/// classifier lags the face and reads on across the dip.
pub fn split_at_valleys(members: Vec<Stretch>, activation: &[Vec<f64>]) -> Vec<Vec<Stretch>> {
    let (start, end, channels) = bounds_and_channels(&members);
    let total: Vec<f64> = (start..=end)
        .map(|i| {
            channels
                .iter()
                .filter(|&&c| c < NUM_FEATURES)
                .map(|&c| activation[c][i].min(ACTIVATION_CAP))
                .sum()
        })
        .collect();
    // The deepest dip relative to the smaller peak around it.
    let valley = (MIN_PART..total.len().saturating_sub(MIN_PART))
        .filter_map(|v| {
            let around = peak(&total[..v]).min(peak(&total[v + 1..]));
            // No landmark channel moved on one side: nothing to part.
            let depth = total[v] / around;
            (around > 0.0 && depth < VALLEY_SHARE).then_some((v, depth))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let Some((v, _)) = valley else {
        return vec![members];
    };
    let v = start + v;
    let part = |lo: usize, hi: usize| -> Vec<Stretch> {
        members
            .iter()
            .filter(|m| m.0 <= hi && lo <= m.1)
            .map(|&(s, e, c)| (s.max(lo), e.min(hi), c))
            .collect()
    };
    let mut parts = split_at_valleys(part(start, v - 1), activation);
    parts.extend(split_at_valleys(part(v + 1, end), activation));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_channel(values: &[f64]) -> Vec<Vec<f64>> {
        vec![values.to_vec()]
    }

    #[test]
    fn a_movement_that_falls_back_to_rest_and_rises_again_is_two() {
        let a = one_channel(&[3.0, 6.0, 8.0, 6.0, 3.0, 1.0, 0.5, 1.0, 4.0, 7.0, 5.0, 3.0]);
        let parts = split_at_valleys(vec![(0, 11, 0)], &a);
        assert_eq!(parts, vec![vec![(0, 5, 0)], vec![(7, 11, 0)]]);
    }

    #[test]
    fn a_wobble_in_one_movement_is_no_valley_and_a_dip_at_its_edge_no_part() {
        let a = one_channel(&[3.0, 6.0, 8.0, 5.0, 4.0, 6.0, 7.0, 5.0, 3.0]);
        assert_eq!(split_at_valleys(vec![(0, 8, 0)], &a).len(), 1);
        // The dip lies two frames from the end: that is the offset, not a second movement.
        let a = one_channel(&[3.0, 6.0, 8.0, 6.0, 5.0, 4.0, 0.5, 3.0]);
        assert_eq!(split_at_valleys(vec![(0, 7, 0)], &a).len(), 1);
    }

    #[test]
    fn stretches_join_across_a_short_visible_gap_but_not_a_faceless_one() {
        let present = [true, true, true, true, false, true, true, true];
        let joined = join(&[(0, 1, 0), (3, 3, 1), (5, 7, 0)], &present, 2);
        assert_eq!(joined, vec![vec![(0, 1, 0), (3, 3, 1)], vec![(5, 7, 0)]]);
    }
}
