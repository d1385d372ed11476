//! Browser video: `Analyzer.analyzeVideo(video, options)` analyses every frame of a `<video>` and
//! returns the report `emolens video --json` prints (the library's report code);
//! `analyzeFrames` does the same for frames the caller decoded.
//!
//! ```js
//! const report = await analyzer.analyzeVideo(video, { keyframeFps: 1, onProgress: (done, total) => {} });
//! ```
//!
//! File mode (a video with a `src`): the video is paused on every frame it presents
//! (`requestVideoFrameCallback`), that frame is drawn and analysed, then it plays on to the next;
//! so no frame is skipped however slow the analysis, and each has its exact media time. Keyframe
//! pixels are taken afterwards by seeking back to each keyframe (checked by its media time).
//! Live mode (a `MediaStream` in `srcObject`): the video keeps running; only the newest frame
//! is taken when the previous analysis is done, the frames presented meanwhile are dropped and
//! counted. Keyframes are only known at the end, so every analysed frame is kept as a JPEG, at
//! most `liveJpegLimit` of them (the oldest go first); a keyframe whose JPEG went has none.

use js_sys::Reflect;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlVideoElement, OffscreenCanvasRenderingContext2d};

use crate::face::{FaceTracker, FrameFaces};
use crate::frames::RgbImage;
use crate::timeline::{
    KeyframeOptions, SpotOptions, TimelineBuilder, TrackerOptions, VideoReport, spot,
};
use crate::web::Analyzer;
use crate::web::helpers::{
    VideoOptions, aborted, canvas_pixels, check_frames, err, frame_canvas, image_data_rgb,
    jpeg_data_url, js_option, now_ms, plain, plain_options, report_progress,
};
use crate::web::live::LiveFrames;

#[wasm_bindgen(module = "/src/web/video.js")]
extern "C" {
    #[wasm_bindgen(js_name = loadVideo, catch)]
    async fn load_video(video: &HtmlVideoElement, timeout_ms: f64) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = nextFrame, catch)]
    async fn next_frame(
        video: &HtmlVideoElement,
        context: &OffscreenCanvasRenderingContext2d,
        step: bool,
        seek_to: Option<f64>,
        timeout_ms: f64,
        signal: &JsValue,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = canvasJpeg, catch)]
    pub(crate) fn canvas_jpeg(
        context: &OffscreenCanvasRenderingContext2d,
        size: usize,
        quality: u8,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_name = blobDataUrl, catch)]
    pub(crate) async fn blob_data_url(blob: JsValue) -> Result<JsValue, JsValue>;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrameMeta {
    media_time: f64,
    presented_frames: f64,
}

/// Frame rate from media times: the median interval (robust to a variable rate's outliers).
fn median_fps(times: &[f64]) -> Option<f64> {
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    // Media times come in microseconds: round away the truncation (29.97 stays 29.97).
    Some((1.0 / median * 1000.0).round() / 1000.0)
}

/// The analysed frames of a session, before the timeline is built (the rate is known last).
pub(crate) struct Collected {
    /// (index, time from the first frame, faces)
    pub(crate) frames: Vec<(usize, f64, FrameFaces)>,
    /// Media time of the first frame (to seek back to keyframes).
    pub(crate) first_media_time: f64,
    /// Decides where the detector runs, frame after frame.
    pub(crate) tracker: FaceTracker,
}

impl Collected {
    pub(crate) fn new(first_media_time: f64, options: &VideoOptions) -> Self {
        Self {
            frames: Vec::new(),
            first_media_time,
            tracker: FaceTracker::new(options.tracking()),
        }
    }
}

pub(crate) fn report_of(
    collected: &Collected,
    options: &VideoOptions,
    path: String,
    elapsed_ms: f64,
) -> VideoReport {
    let times: Vec<f64> = collected.frames.iter().map(|f| f.1).collect();
    let fps = options.fps.or_else(|| median_fps(&times)).unwrap_or(30.0);
    let mut builder = TimelineBuilder::new(fps, TrackerOptions::default());
    for (index, time, faces) in &collected.frames {
        builder.push(*index, *time, faces);
    }
    let timeline = builder.finish();
    let spotting = spot(&timeline, &SpotOptions::default());
    let mut report = VideoReport::new(
        path,
        &timeline,
        &spotting,
        collected.frames.len() as f64 / (elapsed_ms / 1000.0).max(1e-9),
        &KeyframeOptions {
            base_fps: options.keyframe_fps,
            max_keyframes: options.max_keyframes,
            sampling: options.keyframe_sampling,
        },
        options.records,
    );
    report.tracking = Some(collected.tracker.stats());
    report
}

fn frame_meta(value: JsValue) -> Result<Option<FrameMeta>, JsValue> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    serde_wasm_bindgen::from_value(value)
        .map(Some)
        .map_err(|e| err(format!("frame metadata: {e}")))
}

/// File mode's frames in display order: pixels wait in `pending` until a batch is full.
struct FileFrames {
    collected: Collected,
    pending: Vec<(usize, f64, RgbImage)>,
    /// Times of every frame taken so far.
    times: Vec<f64>,
    width: u32,
    height: u32,
}

impl FileFrames {
    /// The frame rate seen lately (30 until two frames are in). Asked for every frame, so it
    /// looks at the last frames only: the whole history would make a long file quadratic.
    fn fps(&self) -> f64 {
        const RECENT: usize = 121;
        let from = self.times.len().saturating_sub(RECENT);
        median_fps(&self.times[from..]).unwrap_or(30.0)
    }

    /// Takes the frame now drawn in `context`, shown at `time`; the same frame presented again
    /// (after a pause) is taken once.
    async fn take(
        &mut self,
        analyzer: &Analyzer,
        context: &OffscreenCanvasRenderingContext2d,
        time: f64,
        batch: usize,
    ) -> Result<(), JsValue> {
        if let Some(&last) = self.times.last() {
            if time == last {
                return Ok(());
            }
            if time < last {
                return Err(err(format!(
                    "the video went back from {last:.6} s to {time:.6} s while stepping through it"
                )));
            }
        }
        let index = self.times.len();
        self.times.push(time);
        self.pending.push((
            index,
            time,
            canvas_pixels(context, self.width, self.height)?,
        ));
        if self.pending.len() >= batch {
            self.flush(analyzer).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, analyzer: &Analyzer) -> Result<(), JsValue> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let images: Vec<RgbImage> = self.pending.iter().map(|p| p.2.clone()).collect();
        let results = analyzer
            .analyze_batch(&images, &mut self.collected.tracker)
            .await?;
        for ((index, time, _), faces) in self.pending.drain(..).zip(results) {
            self.collected.frames.push((index, time, faces));
        }
        Ok(())
    }
}

#[wasm_bindgen]
impl Analyzer {
    /// Analyses every frame of an `HTMLVideoElement` and resolves to the report of
    /// `emolens video --json` (keyframes carry `jpeg`, a data URL; live sessions add `live`).
    ///
    /// `options`: `{ mode?: 'file'|'live', keyframeFps = 1 (cap 5), maxKeyframes?,
    /// keyframeSampling = 'balanced'|'uniform',
    /// keyframeSize = 640, keyframeQuality = 85, records = false, batch = 4, maxFrames?, fps?,
    /// frameTimeoutMs = 15000, liveJpegLimit = 1800, onProgress?(done, total), signal? }`.
    /// Aborting a file analysis rejects; aborting a live session resolves with what it has.
    #[wasm_bindgen(js_name = analyzeVideo)]
    pub async fn analyze_video(
        &self,
        video: JsValue,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let video: HtmlVideoElement = video
            .dyn_into()
            .map_err(|_| err("analyzeVideo takes an HTMLVideoElement"))?;
        let settings = plain_options(&options)?;
        let on_progress = js_option(&options, "onProgress");
        if !on_progress.is_undefined() && !on_progress.is_function() {
            return Err(err("onProgress must be a function"));
        }
        let signal = js_option(&options, "signal");
        let src_object = Reflect::get(&video, &"srcObject".into()).unwrap_or(JsValue::NULL);
        let live = match settings.mode.as_deref() {
            Some("live") => true,
            Some("file") => false,
            None => !src_object.is_null() && !src_object.is_undefined(),
            Some(other) => {
                return Err(err(format!("unknown mode '{other}': use 'file' or 'live'")));
            }
        };
        let path = Reflect::get(&video, &"currentSrc".into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| if live { "live".into() } else { "video".into() });

        load_video(&video, settings.frame_timeout_ms).await?;
        let (width, height) = (video.video_width(), video.video_height());
        let context = frame_canvas(width, height)?;
        let report = if live {
            self.analyze_live(&video, &context, &settings, &on_progress, &signal, path)
                .await?
        } else {
            // A looping video would jump back to its start instead of ending.
            let looping = Reflect::get(&video, &"loop".into()).is_ok_and(|v| v.is_truthy());
            Reflect::set(&video, &"loop".into(), &JsValue::FALSE)?;
            let result = self
                .analyze_file(&video, &context, &settings, &on_progress, &signal, path)
                .await;
            Reflect::set(&video, &"loop".into(), &JsValue::from_bool(looping))?;
            result?
        };
        plain(&report)
    }

    /// Analyses frames the caller decoded (e.g. with WebCodecs): `frames` an array of
    /// `ImageData` in display order, `times` their media times in seconds. Resolves to the
    /// same report as `analyzeVideo` (options: keyframeFps, maxKeyframes, keyframeSize,
    /// keyframeQuality, records, batch, fps, onProgress).
    #[wasm_bindgen(js_name = analyzeFrames)]
    pub async fn analyze_frames(
        &self,
        frames: js_sys::Array,
        times: Vec<f64>,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let settings = plain_options(&options)?;
        let on_progress = js_option(&options, "onProgress");
        check_frames("analyzeFrames", &frames, &times)?;
        let image_of = |i: usize| image_data_rgb("analyzeFrames", &frames, i);
        let started = now_ms();
        let mut collected = Collected::new(times[0], &settings);
        for start in (0..times.len()).step_by(settings.batch) {
            let end = (start + settings.batch).min(times.len());
            let images = (start..end).map(image_of).collect::<Result<Vec<_>, _>>()?;
            let results = self.analyze_batch(&images, &mut collected.tracker).await?;
            for (i, faces) in (start..end).zip(results) {
                collected.frames.push((i, times[i] - times[0], faces));
            }
            report_progress(&on_progress, end, Some(times.len()))?;
        }
        let mut report = report_of(&collected, &settings, "frames".into(), now_ms() - started);
        attach_jpegs(&mut report, image_of, &settings)?;
        plain(&report)
    }
}

/// Encodes the report's keyframes from the frames they name.
pub(crate) fn attach_jpegs(
    report: &mut VideoReport,
    image_of: impl Fn(usize) -> Result<RgbImage, JsValue>,
    settings: &VideoOptions,
) -> Result<(), JsValue> {
    for keyframe in &mut report.keyframes {
        keyframe.jpeg = Some(jpeg_data_url(
            &image_of(keyframe.keyframe.frame)?,
            settings.keyframe_size,
            settings.keyframe_quality,
        )?);
    }
    Ok(())
}

impl Analyzer {
    /// Consecutive frames of one video (see `FaceAnalyzer::analyze_sequence`).
    pub(crate) async fn analyze_batch(
        &self,
        images: &[RgbImage],
        tracker: &mut FaceTracker,
    ) -> Result<Vec<FrameFaces>, JsValue> {
        let refs: Vec<&RgbImage> = images.iter().collect();
        self.inner
            .analyze_sequence(&refs, tracker)
            .await
            .map_err(|e| err(e.to_string()))
    }

    async fn analyze_file(
        &self,
        video: &HtmlVideoElement,
        context: &OffscreenCanvasRenderingContext2d,
        options: &VideoOptions,
        on_progress: &JsValue,
        signal: &JsValue,
        path: String,
    ) -> Result<VideoReport, JsValue> {
        let (width, height) = (video.video_width(), video.video_height());
        let timeout = options.frame_timeout_ms;
        let duration = video.duration();
        let started = now_ms();
        let no_signal = JsValue::UNDEFINED;
        let seek = |media_time: f64| {
            next_frame(video, context, false, Some(media_time), timeout, &no_signal)
        };
        // The first frame: seek to the start (a paused video presents the frame it seeks to).
        let mut meta =
            frame_meta(seek(0.0).await?)?.ok_or_else(|| err("the video shows no first frame"))?;
        let first = meta.media_time;
        let mut stepper = FileFrames {
            collected: Collected::new(first, options),
            pending: Vec::new(),
            times: Vec::new(),
            width,
            height,
        };
        loop {
            if aborted(signal) {
                return Err(err("video analysis was aborted"));
            }
            let analysed = stepper.collected.frames.len();
            stepper
                .take(self, context, meta.media_time - first, options.batch)
                .await?;
            let seen = stepper.times.len();
            if stepper.collected.frames.len() > analysed {
                // The total is estimated from the duration and the rate seen so far.
                let total = (duration.is_finite() && seen >= 2)
                    .then(|| ((duration * stepper.fps()).round() as usize).max(seen));
                report_progress(on_progress, stepper.collected.frames.len(), total)?;
            }
            if options.max_frames.is_some_and(|max| seen >= max) {
                break;
            }
            let next =
                match frame_meta(next_frame(video, context, true, None, timeout, signal).await?)? {
                    Some(next) => next,
                    None if aborted(signal) => return Err(err("video analysis was aborted")),
                    None => break,
                };
            // Playback can move past a frame before the pause lands: a gap wider than one
            // frame (or frames presented but not seen) is searched by seeking into it.
            let last = *stepper.times.last().expect("a frame was taken");
            let next_time = next.media_time - first;
            let interval = 1.0 / stepper.fps();
            let missed = next.presented_frames - meta.presented_frames > 1.0;
            meta = next;
            if next_time - last > 1.5 * interval || missed {
                let mut probe = last;
                loop {
                    let guess = probe + interval;
                    if guess > next_time - 0.5 * interval {
                        break;
                    }
                    let shown = frame_meta(seek(first + guess + 0.25 * interval).await?)?
                        .ok_or_else(|| err("seeking inside the video showed no frame"))?;
                    let time = shown.media_time - first;
                    if time > probe + 1e-6 && time < next_time - 1e-6 {
                        stepper.take(self, context, time, options.batch).await?;
                        probe = time;
                    } else if time >= next_time - 1e-6 {
                        break;
                    } else {
                        probe = guess;
                    }
                }
                // Show the frame playback had reached again, and go on from there.
                let shown = frame_meta(seek(first + next_time + 0.25 * interval).await?)?
                    .ok_or_else(|| err("seeking inside the video showed no frame"))?;
                if (shown.media_time - meta.media_time).abs() > 1e-4 {
                    return Err(err(format!(
                        "seeking back to {next_time:.6} s showed the frame at {:.6} s",
                        shown.media_time - first
                    )));
                }
            }
        }
        stepper.flush(self).await?;
        let collected = stepper.collected;
        report_progress(
            on_progress,
            collected.frames.len(),
            Some(collected.frames.len()),
        )?;
        let elapsed = now_ms() - started;

        let mut report = report_of(&collected, options, path, elapsed);
        // Keyframe pixels: seek back to each keyframe; a quarter frame past its time, so that a
        // time rounded down to microseconds still lands inside that frame.
        let times: Vec<f64> = collected.frames.iter().map(|f| f.1).collect();
        let nudge = 0.25 / median_fps(&times).unwrap_or(30.0);
        for keyframe in &mut report.keyframes {
            let target = collected.first_media_time + keyframe.keyframe.time;
            let shown = frame_meta(seek(target + nudge).await?)?
                .ok_or_else(|| err("seeking to a keyframe showed no frame"))?;
            if (shown.media_time - target).abs() > 1e-4 {
                return Err(err(format!(
                    "seeking to the keyframe at {:.6} s showed the frame at {:.6} s",
                    keyframe.keyframe.time,
                    shown.media_time - collected.first_media_time
                )));
            }
            let image = canvas_pixels(context, width, height)?;
            keyframe.jpeg = Some(jpeg_data_url(
                &image,
                options.keyframe_size,
                options.keyframe_quality,
            )?);
        }
        Ok(report)
    }

    async fn analyze_live(
        &self,
        video: &HtmlVideoElement,
        context: &OffscreenCanvasRenderingContext2d,
        options: &VideoOptions,
        on_progress: &JsValue,
        signal: &JsValue,
        path: String,
    ) -> Result<VideoReport, JsValue> {
        let size = (video.video_width(), video.video_height());
        let mut frames = LiveFrames::new(options);
        let mut last_presented: Option<f64> = None;
        loop {
            if aborted(signal) || options.max_frames.is_some_and(|m| frames.analysed() >= m) {
                break;
            }
            // Only the frame presented after the previous analysis ends is taken: the ones
            // presented meanwhile are gone (never queued), and counted.
            let value = next_frame(
                video,
                context,
                false,
                None,
                options.frame_timeout_ms,
                signal,
            )
            .await?;
            let Some(meta) = frame_meta(value)? else {
                break;
            };
            if let Some(previous) = last_presented {
                frames.count_dropped((meta.presented_frames - previous - 1.0).max(0.0) as usize);
            }
            last_presented = Some(meta.presented_frames);
            if frames
                .take(self, context, size, meta.media_time, options)
                .await?
            {
                report_progress(on_progress, frames.analysed(), None)?;
            }
        }
        frames.finish(options, path, aborted(signal), false).await
    }
}
