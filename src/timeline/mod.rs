//! Temporal analysis: per-frame face results → a per-frame record of the main face (tracked id,
//! box, landmarks, expressions, pose-free action features) → spotted facial movement episodes →
//! keyframes and factual summaries. Target-independent: the native CLI feeds it frames decoded
//! by ffmpeg, the browser frames from a `<video>` element.

pub mod activation;
pub mod bench;
pub mod brows;
pub mod cover;
pub mod devbench;
pub mod devbench_misses;
mod devbench_splice;
pub mod episodes;
pub mod features;
pub mod keyframes;
pub mod live;
pub mod pose;
pub mod reading;
pub mod report;
pub mod speech;
pub mod spot;
pub mod spotting;
pub mod stats;
pub mod summary;
pub mod track;

use serde::{Deserialize, Serialize};

use crate::face::{Face, FrameFaces, PixelBox};
pub use features::{ActionFeatures, FEATURE_NAMES, NUM_FEATURES};
pub use keyframes::{
    Keyframe, KeyframeOptions, KeyframeSampling, StretchSummary, select_keyframes, summarise,
};
pub use report::{LiveStats, ReportKeyframe, VideoReport};
pub use spot::{Event, EventKind, SpotOptions, SpotSeries, Spotting, spot};
pub use track::{Tracker, TrackerOptions};

/// One frame of the timeline. Main-face fields are `None` where the main face is not visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub index: usize,
    /// Media time, seconds.
    pub time: f64,
    /// Any face detected in this frame.
    pub face_present: bool,
    pub face_count: usize,
    /// Track id of the main face, when it is in this frame.
    pub track_id: Option<u32>,
    #[serde(rename = "box")]
    pub bbox: Option<PixelBox>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub landmarks: Option<Vec<[f64; 2]>>,
    /// Probabilities in [`crate::face::EXPRESSIONS`] order.
    pub expressions: Option<[f64; 7]>,
    /// In [`FEATURE_NAMES`] order.
    pub features: Option<[f64; NUM_FEATURES]>,
    /// How far the brows moved up against the person's rest, read from pixels ([`brows`]);
    /// inter-ocular units.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub brow_shift: Option<f64>,
    /// The mouth hidden (a hand over it): the lips' edge gone where the landmarks put them
    /// ([`cover`]). The spotter reads no face here.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub mouth_covered: bool,
}

impl FrameRecord {
    pub fn main_face(&self) -> bool {
        self.features.is_some()
    }

    /// Frame `index` at 30 fps with the main face (track 1) visible: for tests.
    #[cfg(test)]
    pub(crate) fn visible(
        index: usize,
        landmarks: Option<Vec<[f64; 2]>>,
        expressions: [f64; 7],
        features: [f64; NUM_FEATURES],
    ) -> Self {
        FrameRecord {
            index,
            time: index as f64 / 30.0,
            face_present: true,
            face_count: 1,
            track_id: Some(1),
            bbox: None,
            landmarks,
            expressions: Some(expressions),
            features: Some(features),
            brow_shift: None,
            mouth_covered: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackSummary {
    pub id: u32,
    pub first_time: f64,
    pub last_time: f64,
    pub frames: usize,
    /// Mean box area as a fraction of the frame.
    pub mean_area: f64,
}

/// The whole clip, frame by frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    pub fps: f64,
    pub width: usize,
    pub height: usize,
    pub main_track: Option<u32>,
    pub tracks: Vec<TrackSummary>,
    pub records: Vec<FrameRecord>,
}

impl Timeline {
    /// A 64-pixel clip at 30 fps of these records: for tests.
    #[cfg(test)]
    pub(crate) fn of_records(records: Vec<FrameRecord>) -> Self {
        Timeline {
            fps: 30.0,
            width: 64,
            height: 64,
            main_track: Some(1),
            tracks: Vec::new(),
            records,
        }
    }

    /// (Re)computes the action features from the records' landmarks, aligned to this person's
    /// own neutral geometry when there is enough of it, and the brow lift from their brow shift.
    /// [`TimelineBuilder::finish`] calls it; `dev-bench` calls it on cached timelines, so a change
    /// of the features needs no re-analysis.
    pub fn refresh_features(&mut self) {
        let rest = rest_or_all(self.records.iter().filter_map(|r| {
            let landmarks = r.landmarks.as_deref()?;
            Some((reads_neutral(r.expressions), landmarks))
        }));
        let reference = features::reference_shape(rest.into_iter());
        for r in &mut self.records {
            r.features = r
                .landmarks
                .as_deref()
                .and_then(|l| features::action_features(l, reference.as_ref()).map(|a| a.0));
            // No profile (the face too small, or analysed elsewhere): no measured shift.
            if let Some(f) = r.features.as_mut() {
                f[features::BROW_LIFT] = r.brow_shift.unwrap_or(0.0);
            }
        }
    }

    /// This clip's settings and tracks with other frame records (a cut or a splice of it),
    /// without copying its own records first.
    pub fn with_records(&self, records: Vec<FrameRecord>) -> Timeline {
        Timeline {
            fps: self.fps,
            width: self.width,
            height: self.height,
            main_track: self.main_track,
            tracks: self.tracks.clone(),
            records,
        }
    }

    pub fn duration(&self) -> f64 {
        self.records
            .last()
            .map(|r| r.time + 1.0 / self.fps)
            .unwrap_or(0.0)
    }
}

/// Whether the classifier reads a face as neutral: a person's rest (the spotter's baseline, the
/// reference shape, the rest brow profile) is taken from such frames.
pub fn reads_neutral(expressions: Option<[f64; 7]>) -> bool {
    expressions.is_some_and(|p| p[0] >= 0.5)
}

/// Fewest neutral-reading frames a reference shape or rest profile is taken from.
const MIN_REST_FRAMES: usize = 5;

/// The items of neutral-reading frames where there are [`MIN_REST_FRAMES`] of them, else all.
pub(crate) fn rest_or_all<T>(items: impl IntoIterator<Item = (bool, T)>) -> Vec<T> {
    let (neutral, other): (Vec<_>, Vec<_>) = items.into_iter().partition(|(n, _)| *n);
    let all = neutral.len() < MIN_REST_FRAMES;
    let chosen = neutral.into_iter().chain(other.into_iter().filter(|_| all));
    chosen.map(|(_, item)| item).collect()
}

/// Tracks shorter than this many frames are dropped as spurious detections.
pub const MIN_TRACK_FRAMES: usize = 3;

struct PendingFrame {
    index: usize,
    time: f64,
    faces: Vec<(u32, Face)>,
}

/// Builds a [`Timeline`] from frames pushed in display order.
pub struct TimelineBuilder {
    fps: f64,
    width: usize,
    height: usize,
    tracker: Tracker,
    frames: Vec<PendingFrame>,
}

impl TimelineBuilder {
    pub fn new(fps: f64, options: TrackerOptions) -> Self {
        Self {
            fps: if fps > 0.0 { fps } else { 30.0 },
            width: 0,
            height: 0,
            tracker: Tracker::new(options),
            frames: Vec::new(),
        }
    }

    pub fn push(&mut self, index: usize, time: f64, frame: &FrameFaces) {
        self.width = frame.width;
        self.height = frame.height;
        let boxes: Vec<PixelBox> = frame.faces.iter().map(|f| f.bbox).collect();
        let ids = self.tracker.update(time, &boxes);
        self.frames.push(PendingFrame {
            index,
            time,
            faces: ids.into_iter().zip(frame.faces.iter().cloned()).collect(),
        });
    }

    pub fn finish(mut self) -> Timeline {
        // A "face" seen in fewer than MIN_TRACK_FRAMES frames is a detector false positive:
        // real faces do not flash up for a single frame at video rates.
        let mut counts = std::collections::HashMap::new();
        for frame in &self.frames {
            for (id, _) in &frame.faces {
                *counts.entry(*id).or_insert(0usize) += 1;
            }
        }
        let short = |id: &u32| counts.get(id).is_some_and(|&n| n < MIN_TRACK_FRAMES);
        if self.frames.len() >= MIN_TRACK_FRAMES {
            for frame in &mut self.frames {
                frame.faces.retain(|(id, _)| !short(id));
            }
        }
        let area = (self.width * self.height).max(1) as f64;
        let mut tracks: Vec<TrackSummary> = Vec::new();
        for frame in &self.frames {
            for (id, face) in &frame.faces {
                let a = face.bbox.width * face.bbox.height / area;
                match tracks.iter_mut().find(|t| t.id == *id) {
                    Some(t) => {
                        t.last_time = frame.time;
                        t.mean_area += a;
                        t.frames += 1;
                    }
                    None => tracks.push(TrackSummary {
                        id: *id,
                        first_time: frame.time,
                        last_time: frame.time,
                        frames: 1,
                        mean_area: a,
                    }),
                }
            }
        }
        tracks
            .iter_mut()
            .for_each(|t| t.mean_area /= t.frames as f64);
        // Main face: big and there most of the time (size × stability).
        let total = self.frames.len().max(1) as f64;
        let main_track = tracks
            .iter()
            .max_by(|a, b| {
                let score = |t: &TrackSummary| t.mean_area.sqrt() * t.frames as f64 / total;
                score(a).total_cmp(&score(b))
            })
            .map(|t| t.id);

        fn face_of(f: &PendingFrame, id: Option<u32>) -> Option<&Face> {
            f.faces
                .iter()
                .find(|(t, _)| Some(*t) == id)
                .map(|(_, face)| face)
        }
        let main_face = |f| face_of(f, main_track);
        let mut records: Vec<FrameRecord> = self
            .frames
            .iter()
            .map(|f| {
                let face = main_face(f);
                FrameRecord {
                    index: f.index,
                    time: f.time,
                    face_present: !f.faces.is_empty(),
                    face_count: f.faces.len(),
                    track_id: face.and(main_track),
                    bbox: face.map(|f| f.bbox),
                    landmarks: face.map(|f| f.landmarks.clone()),
                    expressions: face.map(|f| f.expressions.to_array()),
                    features: None,
                    brow_shift: None,
                    mouth_covered: false,
                }
            })
            .collect();
        let profiles: Vec<Option<&[f32]>> = self
            .frames
            .iter()
            .map(|f| main_face(f).and_then(|face| face.brow_profiles.as_deref()))
            .collect();
        let neutral: Vec<bool> = records
            .iter()
            .map(|r: &FrameRecord| reads_neutral(r.expressions))
            .collect();
        for (r, shift) in records
            .iter_mut()
            .zip(brows::brow_shifts(&profiles, &neutral))
        {
            r.brow_shift = shift;
        }
        let contrasts: Vec<_> = self
            .frames
            .iter()
            .map(|f| main_face(f).and_then(|face| face.contour_contrast))
            .collect();
        for (r, covered) in records
            .iter_mut()
            .zip(cover::mouth_covered(&contrasts, &neutral))
        {
            r.mouth_covered = covered;
        }
        let mut timeline = Timeline {
            fps: self.fps,
            width: self.width,
            height: self.height,
            main_track,
            tracks,
            records,
        };
        timeline.refresh_features();
        timeline
    }
}
