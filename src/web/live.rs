//! Live analysis (a webcam): the frames of a running stream, analysed as they come, never queued.
//!
//! [`LiveFrames`] is the part both ways share: it analyses a frame drawn in a canvas, keeps a
//! bounded ring of keyframe-sized JPEGs (encoded by the browser, asynchronously) and builds the
//! report. `Analyzer.analyzeVideo` drives it on the page's thread; [`LiveSession`] lets a Web
//! Worker drive it (`www/worker.js`), so that the page's main thread only hands frames over:
//!
//! ```js
//! const session = LiveSession.start(analyzer, { keyframeFps: 1 });   // in the worker
//! await session.push(imageBitmap, mediaTimeSeconds, droppedSinceLastPush);
//! const report = await session.finish(stopped, droppedSinceLastPush); // analyzeVideo's report
//! ```

use std::collections::VecDeque;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ImageBitmap, OffscreenCanvasRenderingContext2d};

use crate::timeline::live::LivePolicy;
use crate::timeline::{LiveStats, VideoReport};
use crate::web::helpers::{
    VideoOptions, canvas_pixels, err, frame_canvas, now_ms, plain, plain_options,
};
use crate::web::video::{Collected, blob_data_url, canvas_jpeg, report_of};
use crate::web::{Analyzer, js_message};

/// The analysed frames of a live session and the JPEGs kept for its keyframes.
pub(crate) struct LiveFrames {
    collected: Collected,
    /// (frame index, the browser's pending JPEG Blob) of the latest analysed frames.
    jpegs: VecDeque<(usize, Promise)>,
    dropped: usize,
    last_time: f64,
    started: f64,
}

impl LiveFrames {
    pub(crate) fn new(options: &VideoOptions) -> Self {
        Self {
            collected: Collected::new(f64::NAN, options),
            jpegs: VecDeque::new(),
            dropped: 0,
            last_time: f64::NEG_INFINITY,
            started: now_ms(),
        }
    }

    pub(crate) fn analysed(&self) -> usize {
        self.collected.frames.len()
    }

    pub(crate) fn count_dropped(&mut self, frames: usize) {
        self.dropped += frames;
    }

    /// Analyses the frame drawn in `context`, shown at `media_time`; a frame that is not newer
    /// than the last one is skipped (`false`).
    pub(crate) async fn take(
        &mut self,
        analyzer: &Analyzer,
        context: &OffscreenCanvasRenderingContext2d,
        (width, height): (u32, u32),
        media_time: f64,
        options: &VideoOptions,
    ) -> Result<bool, JsValue> {
        if self.collected.first_media_time.is_nan() {
            self.collected.first_media_time = media_time;
        }
        let time = media_time - self.collected.first_media_time;
        if time <= self.last_time {
            return Ok(false);
        }
        self.last_time = time;
        let image = canvas_pixels(context, width, height)?;
        let faces = analyzer
            .analyze_batch(std::slice::from_ref(&image), &mut self.collected.tracker)
            .await?;
        let index = self.collected.frames.len();
        let frame = faces.into_iter().next().expect("one result per image");
        self.collected.frames.push((index, time, frame));
        self.jpegs.push_back((
            index,
            canvas_jpeg(context, options.keyframe_size, options.keyframe_quality)?,
        ));
        while self.jpegs.len() > options.live_jpeg_limit.max(1) {
            self.jpegs.pop_front();
        }
        Ok(true)
    }

    /// The report: keyframes picked from every analysed frame, with the JPEGs still kept.
    pub(crate) async fn finish(
        &self,
        options: &VideoOptions,
        path: String,
        stopped: bool,
        worker: bool,
    ) -> Result<VideoReport, JsValue> {
        if self.collected.frames.is_empty() {
            return Err(err(
                "the live video ended or was stopped before any frame was analysed",
            ));
        }
        let mut report = report_of(&self.collected, options, path, now_ms() - self.started);
        let mut without = 0;
        for keyframe in &mut report.keyframes {
            let pending = self
                .jpegs
                .iter()
                .find(|(i, _)| *i == keyframe.keyframe.frame);
            keyframe.jpeg = match pending {
                Some((_, promise)) => {
                    let blob = JsFuture::from(promise.clone())
                        .await
                        .map_err(|e| err(format!("keyframe JPEG: {}", js_message(&e))))?;
                    blob_data_url(blob).await?.as_string()
                }
                None => None,
            };
            without += usize::from(keyframe.jpeg.is_none());
        }
        report.live = Some(LiveStats {
            dropped_frames: self.dropped,
            keyframes_without_jpeg: without,
            stopped,
            worker,
        });
        Ok(report)
    }
}

/// A live session driven from outside, frame by frame (in a Web Worker: frames arrive as
/// transferred `ImageBitmap`s).
#[wasm_bindgen]
pub struct LiveSession {
    analyzer: Analyzer,
    options: VideoOptions,
    frames: LiveFrames,
    canvas: Option<((u32, u32), OffscreenCanvasRenderingContext2d)>,
}

#[wasm_bindgen]
impl LiveSession {
    /// Starts a session on `analyzer` with `analyzeVideo`'s options (keyframes, tracking, ...).
    pub fn start(analyzer: &Analyzer, options: JsValue) -> Result<LiveSession, JsValue> {
        let options = plain_options(&options)?;
        Ok(LiveSession {
            analyzer: analyzer.share(),
            frames: LiveFrames::new(&options),
            options,
            canvas: None,
        })
    }

    /// Analyses one frame (an `ImageBitmap`, closed afterwards) shown at `mediaTime` seconds;
    /// `dropped`: frames the camera showed since the last push that were not sent. Resolves to
    /// the number of frames analysed so far.
    pub async fn push(
        &mut self,
        frame: ImageBitmap,
        media_time: f64,
        dropped: u32,
    ) -> Result<u32, JsValue> {
        if !media_time.is_finite() {
            frame.close();
            return Err(err(format!(
                "push: mediaTime must be a number, not {media_time}"
            )));
        }
        self.frames.count_dropped(dropped as usize);
        let size = (frame.width(), frame.height());
        if size.0 == 0 || size.1 == 0 {
            frame.close();
            return Err(err("push: the frame has no pixels"));
        }
        if self.canvas.as_ref().is_none_or(|(s, _)| *s != size) {
            self.canvas = Some((size, frame_canvas(size.0, size.1)?));
        }
        let (_, context) = self.canvas.as_ref().expect("made above");
        let drawn = context.draw_image_with_image_bitmap(&frame, 0.0, 0.0);
        frame.close();
        drawn?;
        self.frames
            .take(&self.analyzer, context, size, media_time, &self.options)
            .await?;
        Ok(self.frames.analysed() as u32)
    }

    /// The session's report (`analyzeVideo`'s, with `live`); `stopped`: ended by the user;
    /// `dropped`: frames not sent since the last push.
    pub async fn finish(&mut self, stopped: bool, dropped: u32) -> Result<JsValue, JsValue> {
        self.frames.count_dropped(dropped as usize);
        let report = self
            .frames
            .finish(&self.options, "live".into(), stopped, true)
            .await?;
        serde::Serialize::serialize(&report, &serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| err(e.to_string()))
    }
}

/// The page's side of a worker session: what to do with each presented frame
/// ([`LivePolicy`]); each answer is `{ action, ... }` as the policy's types serialise.
#[wasm_bindgen]
pub struct LiveCapture {
    policy: LivePolicy,
}

#[wasm_bindgen]
impl LiveCapture {
    /// With `analyzeVideo`'s options (of which it reads `liveQueue`: frames that may wait).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<LiveCapture, JsValue> {
        let options = plain_options(&options)?;
        // Each waiting frame is a decoded bitmap (3.7 MB at 720p): bounded, not unlimited.
        const MOST: usize = 240;
        if !(1..=MOST).contains(&options.live_queue) {
            return Err(err(format!(
                "liveQueue must be between 1 and {MOST} frames, got {}",
                options.live_queue
            )));
        }
        Ok(LiveCapture {
            policy: LivePolicy::new(options.live_queue),
        })
    }

    /// The camera presented a frame (`presentedFrames` of `requestVideoFrameCallback`):
    /// `{ action: 'send', dropped } | { action: 'queue', dropsOldest } | { action: 'ignore' }`.
    pub fn presented(&mut self, presented_frames: f64) -> Result<JsValue, JsValue> {
        plain(&self.policy.presented(presented_frames.max(0.0) as u64))
    }

    /// The frame in flight was analysed:
    /// `{ action: 'sendNext', dropped } | { action: 'idle' } | { action: 'finish', dropped }`.
    pub fn analysed(&mut self) -> Result<JsValue, JsValue> {
        plain(&self.policy.analysed())
    }

    /// Stop: `{ action: 'finish', dropped } | { action: 'drain' }` (the queued frames are
    /// analysed first) `| { action: 'nothing' }`.
    pub fn stop(&mut self) -> Result<JsValue, JsValue> {
        plain(&self.policy.stop())
    }
}
