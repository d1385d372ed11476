//! The video report: what `emolens video --json` prints and the browser's `analyzeVideo`
//! returns, built by one function from an analysed timeline so both give the same structure.

use serde::{Deserialize, Serialize};

use super::keyframes::{Keyframe, KeyframeOptions, StretchSummary, select_keyframes, summarise};
use super::spot::{Event, SpotOptions, Spotting, spot};
use super::{FrameRecord, Timeline, TrackSummary};
use crate::face::TrackingStats;

/// A keyframe in the report: where it is and, when its pixels were taken, where they went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportKeyframe {
    #[serde(flatten)]
    pub keyframe: Keyframe,
    /// File name of its JPEG (native `--keyframes DIR`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
    /// Its JPEG as a `data:image/jpeg;base64,...` URL (browser).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jpeg: Option<String>,
}

/// Frames a live session could not analyse because the previous one was still running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveStats {
    /// Frames the camera delivered while an analysis was running (never analysed).
    pub dropped_frames: usize,
    /// Keyframes whose JPEG had already been discarded (bounded memory) when the session ended.
    pub keyframes_without_jpeg: usize,
    /// Whether the session was stopped by its AbortSignal.
    pub stopped: bool,
    /// Whether it ran in a Web Worker (`www/live.js`) rather than on the page's thread.
    #[serde(default)]
    pub worker: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoReport {
    /// The file (native) or the video's URL (browser).
    pub path: String,
    pub fps: f64,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub face_frames: usize,
    pub duration: f64,
    /// Decoding + analysis speed, frames per second.
    pub analysis_fps: f64,
    pub main_track: Option<u32>,
    pub tracks: Vec<TrackSummary>,
    pub baseline_frames: usize,
    pub baseline_neutral: bool,
    pub events: Vec<Event>,
    pub blinks: usize,
    pub talking: usize,
    pub summaries: Vec<StretchSummary>,
    pub keyframes: Vec<ReportKeyframe>,
    /// Every frame's record, on request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub records: Option<Vec<FrameRecord>>,
    /// Live (webcam) sessions only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub live: Option<LiveStats>,
    /// Where the face detector ran and where faces were tracked from the previous frame.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tracking: Option<TrackingStats>,
}

impl VideoReport {
    /// Picks the keyframes, writes the summaries and assembles the report; keyframe pixels are
    /// added afterwards by the caller (files natively, data URLs in the browser).
    pub fn new(
        path: String,
        timeline: &Timeline,
        spotting: &Spotting,
        analysis_fps: f64,
        keyframe_options: &KeyframeOptions,
        with_records: bool,
    ) -> Self {
        let keyframes = select_keyframes(timeline, spotting, keyframe_options);
        let summaries = summarise(timeline, spotting, &keyframes);
        Self {
            path,
            fps: timeline.fps,
            width: timeline.width,
            height: timeline.height,
            frames: timeline.records.len(),
            face_frames: timeline.records.iter().filter(|r| r.face_present).count(),
            duration: timeline.duration(),
            analysis_fps,
            main_track: timeline.main_track,
            tracks: timeline.tracks.clone(),
            baseline_frames: spotting.baseline_frames,
            baseline_neutral: spotting.baseline_neutral,
            events: spotting.events.clone(),
            blinks: spotting.blinks.len(),
            talking: spotting.talking.len(),
            summaries,
            keyframes: keyframes
                .into_iter()
                .map(|keyframe| ReportKeyframe {
                    keyframe,
                    file: None,
                    jpeg: None,
                })
                .collect(),
            records: with_records.then(|| timeline.records.clone()),
            live: None,
            tracking: None,
        }
    }

    /// The same report with keyframes (and so summaries) picked anew, e.g. at another rate.
    /// Needs the records: the timeline is rebuilt from them and spotted again. Keyframes that
    /// were keyframes before keep their pixels; new ones have none.
    pub fn with_keyframes(&self, keyframe_options: &KeyframeOptions) -> Result<Self, String> {
        let records = self.records.clone().ok_or(
            "picking keyframes again needs the report's per-frame records (analyse with records: true, or --records)",
        )?;
        let timeline = Timeline {
            fps: self.fps,
            width: self.width,
            height: self.height,
            main_track: self.main_track,
            tracks: self.tracks.clone(),
            records,
        };
        let spotting = spot(&timeline, &SpotOptions::default());
        if spotting.events != self.events {
            return Err(
                "the report's events do not follow from its records (was it edited?)".into(),
            );
        }
        let mut out = Self::new(
            self.path.clone(),
            &timeline,
            &spotting,
            self.analysis_fps,
            keyframe_options,
            true,
        );
        out.live = self.live.clone();
        for keyframe in &mut out.keyframes {
            if let Some(old) = self
                .keyframes
                .iter()
                .find(|k| k.keyframe.frame == keyframe.keyframe.frame)
            {
                keyframe.file = old.file.clone();
                keyframe.jpeg = old.jpeg.clone();
            }
        }
        Ok(out)
    }

    /// The frame indices of the keyframes, in order.
    pub fn keyframe_frames(&self) -> Vec<usize> {
        self.keyframes.iter().map(|k| k.keyframe.frame).collect()
    }
}
