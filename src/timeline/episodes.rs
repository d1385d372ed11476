//! Episodes from the channels' active stretches: stretches of any channels that overlap or lie
//! close together form one episode, and an episode whose movement falls back almost to rest and
//! rises again, or that goes from one movement to its opposite, is two.

use super::features::{
    BROW_LIFT, BROW_LOWER, INNER_BROW_RAISE, LIP_CORNER_DEPRESS_LEFT, LIP_CORNER_DEPRESS_RIGHT,
    LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT, LIP_PUCKER, NUM_FEATURES, OUTER_BROW_RAISE,
};
use super::spotting::SpotOptions;
use super::stats::peak;

/// An active stretch of one channel: (first frame, last frame, channel).
pub type Stretch = (usize, usize, usize);

/// An episode: (first frame, last frame, its channels, each once).
pub type Bounds = (usize, usize, Vec<usize>);

/// Each channel's activation counts up to this in an episode's total: one runaway channel (a
/// wide-open mouth, a face with a tiny baseline spread) must not decide alone.
const ACTIVATION_CAP: f64 = 10.0;

/// The `channels`' activations at frame `i` together, each capped at [`ACTIVATION_CAP`].
pub fn capped_total(activation: &[Vec<f64>], channels: &[usize], i: usize) -> f64 {
    channels
        .iter()
        .map(|&c| activation[c][i].min(ACTIVATION_CAP))
        .sum()
}

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
pub fn bounds_and_channels(members: &[Stretch]) -> Bounds {
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

/// `members` (one episode's stretches) split at their deepest valley (else where opposed
/// movements hand over), then each part again (its stretches cut to it); each part's bounds and
/// channels. Only the landmark channels' total is read: the classifier lags the face and reads on
/// across the dip.
pub fn split_apart(members: Vec<Stretch>, activation: &[Vec<f64>]) -> Vec<Bounds> {
    let (start, end, channels) = bounds_and_channels(&members);
    let landmarks: Vec<usize> = channels
        .iter()
        .copied()
        .filter(|&c| c < NUM_FEATURES)
        .collect();
    let total: Vec<f64> = (start..=end)
        .map(|i| capped_total(activation, &landmarks, i))
        .collect();
    // The deepest dip relative to the smaller peak around it.
    let valley = (MIN_PART..total.len().saturating_sub(MIN_PART))
        .filter_map(|v| {
            let around = peak(&total[..v]).min(peak(&total[v + 1..]));
            let depth = total[v] / around;
            // No landmark channel moved on one side (`around` 0): nothing to part.
            (around > 0.0 && depth < VALLEY_SHARE).then_some((v, depth))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    // The left part ends before the right part starts: the valley frame belongs to neither.
    let (left_end, right_start) = match valley {
        Some((v, _)) => (start + v - 1, start + v + 1),
        None => match handover(&members) {
            Some(v) if v + 1 >= start + MIN_PART && v + MIN_PART <= end => (v, v + 1),
            _ => return vec![(start, end, channels)],
        },
    };
    let part = |lo: usize, hi: usize| -> Vec<Stretch> {
        members
            .iter()
            .filter(|m| m.0 <= hi && lo <= m.1)
            .map(|&(s, e, c)| (s.max(lo), e.min(hi), c))
            .collect()
    };
    let mut parts = split_apart(part(start, left_end), activation);
    parts.extend(split_apart(part(right_start, end), activation));
    parts
}

/// The classifier must read an expression class this long (seconds) for a change of class
/// within an episode to part it: its flicker between two classes is no new expression.
pub const CLASS_HOLD_S: f64 = 0.3;

/// `episode` parted where the classifier, having read one expression class past `high` for
/// `hold` frames, reads another for as long: the face went from one expression straight into
/// another with no rest between (a slight smile into a grin baring the teeth, then into a
/// pucker with widened eyes, in grin_pout), which the landmarks' valleys and handovers miss
/// where the lip corners stay pulled throughout. Each part keeps the channels that reach `low`
/// in it. Dev: real episodes found 12 -> 15 of 23; spliced F1 over seeds 13-20 unchanged
/// (0.866; 0.2-0.4 s alike, 0.5 s finds one fewer).
pub fn split_at_class_changes(
    (start, end, channels): Bounds,
    activation: &[Vec<f64>],
    options: &SpotOptions,
    hold: usize,
) -> Vec<Bounds> {
    // The class read at each frame: the strongest past `high`, if any.
    let reads: Vec<Option<usize>> = (start..=end)
        .map(|i| {
            (NUM_FEATURES..activation.len())
                .filter(|&k| activation[k][i] >= options.high)
                .max_by(|&a, &b| activation[a][i].total_cmp(&activation[b][i]))
        })
        .collect();
    // Runs of one class read for at least `hold` frames: (first frame, class).
    let mut held: Vec<(usize, usize)> = Vec::new();
    let mut first = start;
    for run in reads.chunk_by(|a, b| a == b) {
        if let Some(k) = run[0].filter(|_| run.len() >= hold) {
            held.push((first, k));
        }
        first += run.len();
    }
    let cuts = held
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| w[1].0)
        .filter(|&c| c >= start + MIN_PART && c + MIN_PART <= end);
    let mut parts = Vec::new();
    let mut from = start;
    for cut in cuts.chain(std::iter::once(end + 1)) {
        let to = cut - 1;
        let moved: Vec<usize> = channels
            .iter()
            .copied()
            .filter(|&c| peak(&activation[c][from..=to]) >= options.low)
            .collect();
        parts.push((
            from,
            to,
            if moved.is_empty() {
                channels.clone()
            } else {
                moved
            },
        ));
        from = cut;
    }
    parts
}

/// Where one of a pair of opposed movements hands over to the other with no return to rest
/// between (brows lowered, then raised; lips puckered, then smiling; lip corners pulled up, then
/// down): the first one's last frame. A face cannot do both at once: two expressions (dev, seeds
/// 13-20: micro F1 0.825 -> 0.829, real episodes 10 -> 11 of 13; overlap allowed, no gain).
fn handover(members: &[Stretch]) -> Option<usize> {
    const OPPOSED: [(&[usize], &[usize]); 3] = [
        (
            &[LIP_PUCKER],
            &[LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT],
        ),
        (
            &[BROW_LOWER],
            &[INNER_BROW_RAISE, OUTER_BROW_RAISE, BROW_LIFT],
        ),
        (
            &[LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT],
            &[LIP_CORNER_DEPRESS_LEFT, LIP_CORNER_DEPRESS_RIGHT],
        ),
    ];
    let span = |channels: &[usize]| {
        let of = || members.iter().filter(|m| channels.contains(&m.2));
        Some((of().map(|m| m.0).min()?, of().map(|m| m.1).max()?))
    };
    OPPOSED.iter().find_map(|&(a, b)| {
        let (a, b) = (span(a)?, span(b)?);
        let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        (first.1 < second.0).then_some(first.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::features::LIP_CORNER_PULL_LEFT;

    fn one_channel(values: &[f64]) -> Vec<Vec<f64>> {
        vec![values.to_vec()]
    }

    #[test]
    fn a_movement_that_falls_back_to_rest_and_rises_again_is_two() {
        let a = one_channel(&[3.0, 6.0, 8.0, 6.0, 3.0, 1.0, 0.5, 1.0, 4.0, 7.0, 5.0, 3.0]);
        let parts = split_apart(vec![(0, 11, 0)], &a);
        assert_eq!(parts, vec![(0, 5, vec![0]), (7, 11, vec![0])]);
    }

    #[test]
    fn a_wobble_in_one_movement_is_no_valley_and_a_dip_at_its_edge_no_part() {
        let a = one_channel(&[3.0, 6.0, 8.0, 5.0, 4.0, 6.0, 7.0, 5.0, 3.0]);
        assert_eq!(split_apart(vec![(0, 8, 0)], &a).len(), 1);
        // The dip lies two frames from the end: that is the offset, not a second movement.
        let a = one_channel(&[3.0, 6.0, 8.0, 6.0, 5.0, 4.0, 0.5, 3.0]);
        assert_eq!(split_apart(vec![(0, 7, 0)], &a).len(), 1);
    }

    #[test]
    fn opposed_movements_one_after_the_other_are_two_but_overlapping_one() {
        let mut a = vec![vec![0.0; 12]; NUM_FEATURES];
        a[BROW_LOWER][..6].copy_from_slice(&[3.0, 5.0, 6.0, 5.0, 4.0, 3.0]);
        a[BROW_LIFT][6..].copy_from_slice(&[3.0, 4.0, 6.0, 5.0, 4.0, 3.0]);
        // The classifier reads on across the handover: its stretch is cut to each part.
        let members = vec![
            (0, 5, BROW_LOWER),
            (0, 11, NUM_FEATURES),
            (6, 11, BROW_LIFT),
        ];
        let parts = split_apart(members, &a);
        assert_eq!(
            parts,
            vec![
                (0, 5, vec![BROW_LOWER, NUM_FEATURES]),
                (6, 11, vec![NUM_FEATURES, BROW_LIFT])
            ]
        );
        // Overlapping, they are one movement read two ways (brows drawn together as they rise,
        // as in fear): no handover.
        let members = vec![(0, 7, BROW_LOWER), (6, 11, BROW_LIFT)];
        assert_eq!(split_apart(members, &a).len(), 1);
    }

    #[test]
    fn a_face_going_from_one_expression_into_another_is_two_but_a_flicker_is_not() {
        let (happy, angry) = (NUM_FEATURES + 2, NUM_FEATURES + 3);
        let mut a = vec![vec![0.0; 20]; NUM_FEATURES + 6];
        // The lip corners pulled throughout; the classifier reads happy for 10 frames, then
        // angry for 10 (the lips stretched into a grin baring the teeth).
        a[LIP_CORNER_PULL_LEFT] = vec![6.0; 20];
        a[happy][..10].fill(8.0);
        a[angry][10..].fill(8.0);
        let options = SpotOptions::default();
        let episode = (0, 19, vec![LIP_CORNER_PULL_LEFT, happy, angry]);
        assert_eq!(
            split_at_class_changes(episode.clone(), &a, &options, 5),
            vec![
                (0, 9, vec![LIP_CORNER_PULL_LEFT, happy]),
                (10, 19, vec![LIP_CORNER_PULL_LEFT, angry])
            ]
        );
        // Read angry for 3 frames only: a flicker, one expression.
        a[angry][10..].fill(0.0);
        a[happy][10..].fill(8.0);
        a[angry][12..15].fill(9.0);
        assert_eq!(split_at_class_changes(episode, &a, &options, 5).len(), 1);
    }

    #[test]
    fn stretches_join_across_a_short_visible_gap_but_not_a_faceless_one() {
        let present = [true, true, true, true, false, true, true, true];
        let joined = join(&[(0, 1, 0), (3, 3, 1), (5, 7, 0)], &present, 2);
        assert_eq!(joined, vec![vec![(0, 1, 0), (3, 3, 1)], vec![(5, 7, 0)]]);
    }
}
