//! What the spotter reads a clip as, before it forms episodes ([`super::spot`]): each channel's
//! activation, held in speech where it follows the syllables; where the person talks; where the
//! classifier confirms a landmark movement; and each channel's active stretches.

use super::activation::{Activations, NUM_CHANNELS, activations};
use super::episodes::Stretch;
use super::features::{
    BROW_LIFT, BROW_LOWER, INNER_BROW_RAISE, JAW_DROP, LIP_CORNER_DEPRESS_LEFT,
    LIP_CORNER_DEPRESS_RIGHT, LIP_CORNER_PULL_LEFT, LIP_CORNER_PULL_RIGHT, LIP_PUCKER, MOUTH_OPEN,
    NOSE_WRINKLE, NUM_FEATURES, OUTER_BROW_RAISE, is_mouth_feature, is_speech_channel,
};
use super::speech::{HOLD_S, hold_in, speech_range, wide_openings};
use super::spotting::{SpotOptions, mouth_opening};
use super::stats::peak;
use crate::face::EXPRESSIONS;

/// Seconds around speech where the classifier alone starts no episode.
const NEAR_SPEECH_S: f64 = 0.5;
/// In speech a classifier channel confirms a landmark movement where it holds this long
/// (seconds each side): a single frame's flicker does not, a 0.2-s micro-expression does.
const CONFIRM_HOLD_S: f64 = 0.07;
/// In speech the lip corners and the upper lip move with the words by up to 2–3 units: there an
/// episode extends over them only down to this activation (else a smile absorbs the syllables
/// around it).
pub const LOW_IN_SPEECH: f64 = 3.0;
/// A channel's active stretch ends where it falls below this share of its own peak (or `low`,
/// whichever is higher). A strong movement ends where it falls back, not where the face's own
/// slow offset (light, a held pose, the running baseline catching up) keeps the channel just
/// above `low`, which would stretch the event and merge it with the next. A quarter, not half:
/// a burst that rises and falls evenly (a triangle) is half as wide at half its peak.
const PEAK_SHARE: f64 = 0.25;
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

/// Whether a landmark channel belongs to an expression class channel (FACS): the brow lowerer
/// in anger, sadness, fear and disgust; the inner brow raiser in sadness, fear and surprise; the
/// outer one in fear and surprise; the lip-corner puller in happiness, the lip-corner depressor
/// in sadness, the nose wrinkler in disgust; the mouth opening, the jaw drop and the lips drawn
/// in (an "oh") in surprise and fear.
pub fn fits(channel: usize, class: usize) -> bool {
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

/// A clip as the spotter reads it, frame by frame.
pub struct Reading {
    pub options: SpotOptions,
    pub fps: f64,
    /// Whether the face is visible.
    pub present: Vec<bool>,
    /// Per channel: activation ([`Activations`]), held in speech for the classifier and the
    /// mouth's opening.
    pub activation: Vec<Vec<f64>>,
    /// The same unsmoothed, which episode bounds are refined on.
    pub sharp: Vec<Vec<f64>>,
    /// Change from the baseline.
    pub change: Vec<Vec<f64>>,
    pub baseline_frames: usize,
    pub baseline_neutral: bool,
    /// Where the person talks.
    pub speech: Vec<bool>,
    /// Within `NEAR_SPEECH_S` of speech.
    near_speech: Vec<bool>,
    /// Per classifier channel (index `c - NUM_FEATURES`): its activation held briefly in speech.
    confirming: Vec<Vec<f64>>,
    /// Wide openings of the mouth or the jaw in speech that the classifier moves with: gasps
    /// and laughs, not syllables.
    pub gasps: Vec<Stretch>,
}

impl Reading {
    /// `yaw` is the head's yaw proxy per frame ([`super::pose::pose_proxies`]), where known.
    pub fn new(
        times: &[f64],
        features: &[Option<[f64; NUM_FEATURES]>],
        expressions: &[Option<[f64; 7]>],
        yaw: Option<&[f64]>,
        fps: f64,
        options: &SpotOptions,
    ) -> Self {
        let n = times.len();
        let present: Vec<bool> = features.iter().map(|f| f.is_some()).collect();
        let mouth = mouth_opening(features);
        let Activations {
            mut activation,
            change,
            mut sharp,
            baseline_frames,
            baseline_neutral,
            speech,
        } = activations(times, features, &mouth, yaw, expressions, fps, options);

        // Speech (read from the mouth's opening with the activations): mouth-region channels
        // and the classifier follow the syllables; there the classifier counts only where it
        // holds and the landmark channels start an episode only past `high_in_speech`.
        // Around speech too the classifier reads an open mouth and teeth (an open vowel held,
        // the first and last syllables): it may not start an episode there.
        let near = (NEAR_SPEECH_S * fps).round() as usize;
        let near_speech: Vec<bool> = (0..n)
            .map(|i| speech[i.saturating_sub(near)..(i + near + 1).min(n)].contains(&true))
            .collect();
        // The classifier that confirms a landmark movement need only hold briefly: a
        // micro-expression lasts 0.2 s, shorter than the hold that keeps the classifier from
        // starting episodes on its own, and the landmark channel must move with it anyway.
        let confirm_hold = (CONFIRM_HOLD_S * fps).round() as usize;
        let confirming: Vec<Vec<f64>> = activation[NUM_FEATURES..]
            .iter()
            .map(|a| hold_in(a, &speech, confirm_hold))
            .collect();
        // Only the classifier and the mouth's opening channels (which follow every syllable)
        // are held: an opening over 0.3 s would also erase a micro-expression's lip-corner
        // movement (0.2 s); the lip corners and the upper lip need `high_in_speech` instead.
        // A wide opening (a gasp, a laugh) keeps its own frames unheld: held, a brief one is
        // gone.
        let gasps: Vec<Stretch> = [MOUTH_OPEN, JAW_DROP]
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
        Reading {
            options: *options,
            fps,
            present,
            activation,
            sharp,
            change,
            baseline_frames,
            baseline_neutral,
            speech,
            near_speech,
            confirming,
            gasps,
        }
    }

    /// A landmark channel past `high` with a class it belongs to held past `bar` at frame `i`.
    pub fn moves_with(&self, landmark: usize, class: usize, i: usize, bar: f64) -> bool {
        fits(landmark, class)
            && self.activation[landmark][i] >= self.options.high
            && self.confirming[class - NUM_FEATURES][i] >= bar
    }

    /// In speech a movement that the classifier confirms (an expression it belongs to, held,
    /// not a syllable) starts an episode at the ordinary threshold: words beat the brows and
    /// drag the lip corners, and teeth read as happy, but a smile or a frown that moves both is
    /// not a word.
    fn confirmed(&self, c: usize, i: usize) -> bool {
        let high = self.options.high;
        if c < NUM_FEATURES {
            (NUM_FEATURES..NUM_CHANNELS).any(|k| self.moves_with(c, k, i, high))
        } else {
            (0..NUM_FEATURES).any(|b| self.moves_with(b, c, i, high))
        }
    }

    /// In speech a brow raise that the landmarks and the pixels both see starts an episode at
    /// the ordinary threshold: the landmark brows beat with the words (their points follow the
    /// mouth) and the pixel profile has noise of its own, but the two rarely err together.
    fn brows_agree(&self, c: usize, i: usize) -> bool {
        let (a, high) = (&self.activation, self.options.high);
        matches!(c, INNER_BROW_RAISE | OUTER_BROW_RAISE | BROW_LIFT)
            && a[BROW_LIFT][i] >= high
            && a[INNER_BROW_RAISE][i].max(a[OUTER_BROW_RAISE][i]) >= high
    }

    /// Active stretches per channel, with hysteresis, never across a faceless frame; the gasps
    /// among them.
    pub fn stretches(&self) -> Vec<Stretch> {
        let (options, speech, present) = (&self.options, &self.speech, &self.present);
        let n = present.len();
        let mut stretches: Vec<Stretch> = Vec::new();
        let range_frames = (SPEECH_RANGE_MIN_S * self.fps).round() as usize;
        for (c, a) in self.activation.iter().enumerate() {
            let lip = c < NUM_FEATURES && is_speech_channel(c) && !is_mouth_feature(c);
            // Only the landmark channels are held to the person's own speech range.
            let own_range = (c < NUM_FEATURES)
                .then(|| speech_range(a, speech, SPEECH_RANGE_SHARE, range_frames))
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
            let seeds = |i: usize| {
                if speech[i] {
                    (c < NUM_FEATURES && a[i] >= high_in_speech)
                        || self.confirmed(c, i)
                        || self.brows_agree(c, i)
                } else if self.near_speech[i] && c >= NUM_FEATURES {
                    false
                } else {
                    a[i] >= options.high
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
                if (start..=end).any(seeds) {
                    let floor = PEAK_SHARE * peak(&a[start..=end]);
                    let (s, e) = trim(start, end, |i| {
                        a[i] >= floor && (!speech[i] || a[i] >= talking_level)
                    });
                    stretches.push((s, e, c));
                }
            }
        }
        stretches.extend(&self.gasps);
        stretches.sort();
        stretches
    }

    /// `stretches` parted into those that bound episodes and those that only join them.
    /// Some stretches join the episode other channels make (so it says what moved) but do not
    /// stretch its bounds. In speech the mouth's opening channels follow the words, and so does
    /// the classifier (an open vowel reads surprised, teeth happy). Anywhere the classifier lags
    /// the face and reads on after it (a face it reads sad at rest stays sad after a frown):
    /// where the landmarks moved, they say when.
    pub fn leading_and_following(&self, stretches: &[Stretch]) -> (Vec<Stretch>, Vec<Stretch>) {
        let syllable: Vec<bool> = stretches
            .iter()
            .map(|&(s, e, c)| self.mouth_in_speech(s, e, c))
            .collect();
        let landmark: Vec<(usize, usize)> = stretches
            .iter()
            .zip(&syllable)
            .filter(|&(&(_, _, c), &syllable)| c < NUM_FEATURES && !syllable)
            .map(|(&(s, e, _), _)| (s, e))
            .collect();
        let (mut leading, mut following) = (Vec::new(), Vec::new());
        for (&(s, e, c), syllable) in stretches.iter().zip(syllable) {
            let follows = if c >= NUM_FEATURES {
                self.speech[s] || landmark.iter().any(|&(ls, le)| s <= le && ls <= e)
            } else {
                syllable
            };
            if follows {
                &mut following
            } else {
                &mut leading
            }
            .push((s, e, c));
        }
        (leading, following)
    }

    /// A stretch of the mouth's opening in speech that is a syllable: neither confirmed by the
    /// classifier (held surprised over a held jaw drop) nor a wide opening, which are a gasp,
    /// the expression's own movement.
    fn mouth_in_speech(&self, s: usize, e: usize, c: usize) -> bool {
        is_mouth_feature(c)
            && self.speech[s..=e].contains(&true)
            && !(s..=e).any(|i| self.confirmed(c, i))
            && !self.gasps.contains(&(s, e, c))
    }
}

/// `start..=end` narrowed from both ends to the frames where `keep` holds (one frame at least).
pub fn trim(mut start: usize, mut end: usize, keep: impl Fn(usize) -> bool) -> (usize, usize) {
    while start < end && !keep(start) {
        start += 1;
    }
    while end > start && !keep(end) {
        end -= 1;
    }
    (start, end)
}
