//! Keyframes and per-stretch summaries.
//!
//! Keyframes: a sparse base rate, the apex of every event, and one frame of every stretch in
//! which a non-neutral expression dominates, so that long neutral stretches never crowd out
//! brief rare states. When a budget caps the count, base-rate frames go first, taken from the
//! most represented expression. Summaries state only measured facts between keyframes.

use serde::{Deserialize, Serialize};

use super::Timeline;
use super::spot::Spotting;
pub use super::summary::{
    StretchSummary, SummaryOptions, describe_event, describe_event_with, summarise, summarise_with,
};
use crate::face::EXPRESSIONS;
use crate::frames::RgbImage;

/// Highest base rate, keyframes per second.
pub const MAX_BASE_FPS: f64 = 5.0;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct KeyframeOptions {
    /// Base rate, keyframes per second (capped at [`MAX_BASE_FPS`]).
    pub base_fps: f64,
    /// At most this many keyframes (event apexes are always kept).
    pub max_keyframes: Option<usize>,
    #[serde(default)]
    pub sampling: KeyframeSampling,
}

impl Default for KeyframeOptions {
    fn default() -> Self {
        Self {
            base_fps: 1.0,
            max_keyframes: None,
            sampling: KeyframeSampling::Balanced,
        }
    }
}

/// How keyframes are chosen: a switch so that the two can be compared (`emolens spot-bench`
/// prints both at one budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyframeSampling {
    /// Base rate, plus every event apex and the rare states (this module's comment).
    #[default]
    Balanced,
    /// Evenly spread frames only, as many as the base rate gives (or `max_keyframes`): the usual
    /// VLM baseline, blind to what happens between them.
    Uniform,
}

impl std::str::FromStr for KeyframeSampling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "balanced" => Ok(Self::Balanced),
            "uniform" => Ok(Self::Uniform),
            other => Err(format!(
                "unknown keyframe sampling '{other}': use 'balanced' or 'uniform'"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyframeReason {
    Base,
    /// The peak of a stretch dominated by a non-neutral expression.
    State,
    /// The apex of a spotted event.
    Apex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyframe {
    /// Position in the timeline's records.
    pub record: usize,
    /// Frame index in the video.
    pub frame: usize,
    pub time: f64,
    pub reason: KeyframeReason,
    /// Dominant expression of the main face there, if visible.
    pub expression: Option<String>,
}

pub(crate) fn dominant_label(p: &[f64; 7]) -> usize {
    (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
}

/// While talking, a dominant class must hold this long (seconds) to count: the classifier
/// follows the mouth (an open vowel reads as surprised, teeth as happy) from frame to frame, and
/// the spotter trusts it there only where it holds (twice [`super::speech::HOLD_S`]).
pub const TALKING_LABEL_HOLD_S: f64 = 2.0 * super::speech::HOLD_S;

/// The main face's dominant class per record (`None` where not visible). Inside talking spans
/// the classifier follows the mouth, so there each frame first takes the class that most frames
/// read within [`TALKING_LABEL_HOLD_S`] around it (a class highest in two frames of three, broken
/// by the words, is the reading); runs still shorter than that then read as the class held
/// before them (or, where none held yet, as the first class that holds after them: a clip that
/// starts mid-sentence).
pub fn held_labels(timeline: &Timeline, spotting: &Spotting) -> Vec<Option<usize>> {
    let records = &timeline.records;
    // Under a covered mouth the classifier guesses: no label, no rare-state keyframe.
    let probs: Vec<Option<[f64; 7]>> = records
        .iter()
        .map(|r| r.expressions.filter(|_| r.main_face() && !r.mouth_covered))
        .collect();
    let talking: Vec<bool> = records
        .iter()
        .map(|r| {
            spotting
                .talking
                .iter()
                .any(|t| t.start_frame <= r.index && r.index <= t.end_frame)
        })
        .collect();
    let min_run = (TALKING_LABEL_HOLD_S * timeline.fps).round() as usize;
    let mut labels = majority_in_talking(&probs, &talking, min_run / 2);
    let mut held: Option<usize> = None;
    // Flicker seen before any class held.
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < labels.len() {
        let start = i;
        while i < labels.len() && labels[i] == labels[start] {
            i += 1;
        }
        let Some(l) = labels[start] else { continue };
        if i - start < min_run && talking[start..i].iter().all(|&t| t) {
            match held {
                Some(h) => labels[start..i].iter_mut().for_each(|x| *x = Some(h)),
                None => pending.push((start, i)),
            }
        } else {
            held = Some(l);
            for (a, b) in pending.drain(..) {
                labels[a..b].iter_mut().for_each(|x| *x = Some(l));
            }
        }
    }
    labels
}

/// Each visible talking frame's class by majority over the visible talking frames within
/// `radius` of it (ties: the higher summed probability); other frames keep their dominant class.
fn majority_in_talking(
    probs: &[Option<[f64; 7]>],
    talking: &[bool],
    radius: usize,
) -> Vec<Option<usize>> {
    let dominant: Vec<Option<usize>> = probs
        .iter()
        .map(|p| p.map(|p| dominant_label(&p)))
        .collect();
    (0..probs.len())
        .map(|i| {
            if !talking[i] || dominant[i].is_none() {
                return dominant[i];
            }
            let mut votes = [(0usize, 0.0f64); 7];
            let window = i.saturating_sub(radius)..(i + radius + 1).min(probs.len());
            for k in window.filter(|&k| talking[k]) {
                if let (Some(l), Some(p)) = (dominant[k], probs[k]) {
                    votes[l].0 += 1;
                    (0..7).for_each(|c| votes[c].1 += p[c]);
                }
            }
            (0..7).max_by(|&a, &b| {
                votes[a]
                    .0
                    .cmp(&votes[b].0)
                    .then(votes[a].1.total_cmp(&votes[b].1))
            })
        })
        .collect()
}

/// Records nearest to `rate` evenly spaced times per second from the first record on.
pub fn base_rate_records(timeline: &Timeline, rate: f64) -> Vec<usize> {
    let records = &timeline.records;
    let rate = rate.clamp(0.0, MAX_BASE_FPS);
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Vec::new();
    };
    // A NaN rate would never pass the last record.
    if rate.is_nan() || rate <= 0.0 {
        return Vec::new();
    }
    let nearest = |t: f64| {
        records
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1.time - t).abs().total_cmp(&(b.1.time - t).abs()))
            .map(|(i, _)| i)
            .unwrap_or(0)
    };
    let mut picks = Vec::new();
    let mut k = 0;
    loop {
        let t = first.time + k as f64 / rate;
        if t > last.time + 1e-9 {
            break;
        }
        picks.push(nearest(t));
        k += 1;
    }
    picks.dedup();
    picks
}

/// The usual VLM baseline, [`KeyframeSampling::Uniform`]: `count` frames evenly
/// spread over the clip, blind to what happens in it.
fn select_uniform_keyframes(timeline: &Timeline, count: usize) -> Vec<Keyframe> {
    let records = &timeline.records;
    if records.is_empty() || count == 0 {
        return Vec::new();
    }
    let n = records.len();
    let count = count.min(n);
    // The middle record of each of `count` equal parts.
    let mut picks: Vec<usize> = (0..count).map(|k| (2 * k * n + n) / (2 * count)).collect();
    picks.dedup();
    picks
        .into_iter()
        .map(|r| Keyframe {
            record: r,
            frame: records[r].index,
            time: records[r].time,
            reason: KeyframeReason::Base,
            expression: records[r]
                .expressions
                .map(|p| EXPRESSIONS[dominant_label(&p)].to_string()),
        })
        .collect()
}

/// Base keyframes, event apexes and emotion-balanced state frames (see the module comment).
pub fn select_keyframes(
    timeline: &Timeline,
    spotting: &Spotting,
    options: &KeyframeOptions,
) -> Vec<Keyframe> {
    let records = &timeline.records;
    if records.is_empty() {
        return Vec::new();
    }
    if options.sampling == KeyframeSampling::Uniform {
        let budget = base_rate_records(timeline, options.base_fps).len();
        return select_uniform_keyframes(
            timeline,
            options.max_keyframes.map_or(budget, |m| m.min(budget)),
        );
    }
    let label = |i: usize| records[i].expressions.map(|p| dominant_label(&p));
    let held = held_labels(timeline, spotting);
    let mut picks: Vec<(usize, KeyframeReason)> = base_rate_records(timeline, options.base_fps)
        .into_iter()
        .map(|r| (r, KeyframeReason::Base))
        .collect();
    for e in &spotting.events {
        if let Some(i) = records.iter().position(|r| r.index == e.apex_frame) {
            picks.push((i, KeyframeReason::Apex));
        }
    }
    // Runs of one dominant non-neutral expression (2+ frames; while talking, held) that no
    // keyframe shows yet: their most confident (earliest on ties) frame, so brief rare states
    // are never left out.
    let mut runs = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let Some(l) = held[i].filter(|&l| l != 0) else {
            i += 1;
            continue;
        };
        let start = i;
        while i < records.len() && held[i] == Some(l) {
            i += 1;
        }
        if i - start >= 2 {
            runs.push((start, i, l));
        }
    }
    for (start, end, l) in runs {
        if picks.iter().any(|p| (start..end).contains(&p.0)) {
            continue;
        }
        let p = |k: usize| records[k].expressions.map_or(0.0, |p| p[l]);
        let best = (start..end)
            .min_by(|&a, &b| p(b).total_cmp(&p(a)))
            .unwrap_or(start);
        picks.push((best, KeyframeReason::State));
    }
    // One keyframe per record, keeping the strongest reason.
    picks.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    picks.dedup_by_key(|p| p.0);

    if let Some(max) = options.max_keyframes {
        while picks.len() > max {
            // Drop a base keyframe of the most represented expression (neutral usually).
            let mut counts = [0usize; 8];
            for &(r, _) in &picks {
                counts[label(r).unwrap_or(7)] += 1;
            }
            let victim = picks
                .iter()
                .enumerate()
                .filter(|(_, p)| p.1 == KeyframeReason::Base)
                .max_by_key(|(k, p)| (counts[label(p.0).unwrap_or(7)], *k))
                .map(|(k, _)| k)
                .or_else(|| picks.iter().position(|p| p.1 == KeyframeReason::State));
            match victim {
                Some(k) => {
                    picks.remove(k);
                }
                None => break,
            }
        }
    }
    picks
        .into_iter()
        .map(|(r, reason)| Keyframe {
            record: r,
            frame: records[r].index,
            time: records[r].time,
            reason,
            expression: label(r).map(|l| EXPRESSIONS[l].to_string()),
        })
        .collect()
}

/// A keyframe image as JPEG: downscaled so its longer side is at most `max_side` (0 keeps the
/// size), at `quality` 1–100.
pub fn encode_jpeg(image: &RgbImage, max_side: usize, quality: u8) -> Result<Vec<u8>, String> {
    let buffer =
        image::RgbImage::from_raw(image.width as u32, image.height as u32, image.data.clone())
            .ok_or("pixel buffer does not match its size")?;
    let long = image.width.max(image.height);
    let buffer = if max_side > 0 && long > max_side {
        let s = max_side as f64 / long as f64;
        let w = ((image.width as f64 * s).round() as u32).max(1);
        let h = ((image.height as f64 * s).round() as u32).max(1);
        image::imageops::resize(&buffer, w, h, image::imageops::FilterType::Triangle)
    } else {
        buffer
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(&buffer)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Width and height of a JPEG, read from its frame header (SOF) by walking the marker segments:
/// no decoder, so the page's wasm carries none.
pub fn jpeg_dimensions(jpeg: &[u8]) -> Result<(u32, u32), String> {
    let bad = |why: &str| Err(format!("not a readable JPEG: {why}"));
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return bad("no start-of-image marker");
    }
    let mut at = 2;
    loop {
        // A marker is 0xFF (any number of fill bytes) and a code.
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(0xFF), Some(&code)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return bad("truncated or malformed before its frame header");
        };
        at += 2;
        match code {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return bad("no frame header before the image data"),
            _ => {}
        }
        let Some(len) = jpeg
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return bad("truncated segment");
        };
        // Start of frame, any coding (0xC4, 0xC8 and 0xCC share the range but are not frames):
        // precision, then height and width.
        if matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC) {
            let Some(header) = jpeg.get(at + 2..at + 7) else {
                return bad("truncated frame header");
            };
            let height = u16::from_be_bytes([header[1], header[2]]) as u32;
            let width = u16::from_be_bytes([header[3], header[4]]) as u32;
            if width == 0 || height == 0 {
                return bad("zero width or height in its frame header");
            }
            return Ok((width, height));
        }
        if len < 2 {
            return bad("segment length under 2");
        }
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: usize, height: usize) -> RgbImage {
        let data = (0..width * height * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        RgbImage::new(width, height, data).unwrap()
    }

    #[test]
    fn jpeg_dimensions_reads_the_frame_header() {
        let jpeg = encode_jpeg(&image(37, 23), 0, 80).unwrap();
        assert_eq!(jpeg_dimensions(&jpeg), Ok((37, 23)));
        // Fill bytes before a marker, and an application segment before the frame header.
        let mut padded = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0x00, 0x04, 0xAB, 0xCD];
        padded.extend_from_slice(&jpeg[2..]);
        assert_eq!(jpeg_dimensions(&padded), Ok((37, 23)));
        // The photo fixtures agree with the image crate's decoder.
        for name in ["happy.jpg", "sad.jpg"] {
            let path = format!("{}/tests/data/faces/{name}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap();
            let decoded = image::load_from_memory(&bytes).unwrap();
            assert_eq!(
                jpeg_dimensions(&bytes),
                Ok((decoded.width(), decoded.height()))
            );
        }
    }

    #[test]
    fn jpeg_dimensions_refuses_what_is_not_a_jpeg() {
        let jpeg = encode_jpeg(&image(8, 8), 0, 80).unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        for bad in [
            &b""[..],
            &b"\x89PNG\r\n\x1a\n"[..],
            &jpeg[..sof + 5],                      // cut inside the frame header
            &[0xFF, 0xD8, 0xFF, 0xD9],             // start, then end of image
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01], // a segment length under 2
            &[0xFF, 0xD8, 0x00, 0x00],             // not a marker
        ] {
            let err = jpeg_dimensions(bad).unwrap_err();
            assert!(err.starts_with("not a readable JPEG"), "{err}");
        }
        // Height 0 (defined later by a DNL segment) is refused, not reported as 0.
        let mut zero = jpeg.clone();
        zero[sof + 5] = 0;
        zero[sof + 6] = 0;
        assert!(jpeg_dimensions(&zero).is_err());
    }
}
