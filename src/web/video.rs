//! Browser video: `Analyzer.analyzeVideo(video, options)` analyses every frame of a `<video>` and
//! returns the report `emolens video --json` prints; `buildPrompt(report, options)` turns it into
//! the JSON `emolens prompt` prints. Both reuse the library's report and prompt code.
//!
//! ```js
//! const report = await analyzer.analyzeVideo(video, { keyframeFps: 1, onProgress: (done, total) => {} });
//! const prompt = buildPrompt(report, { labels: 'dfew', mode: 'enriched' });
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

use js_sys::{Function, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlVideoElement, OffscreenCanvas, OffscreenCanvasRenderingContext2d};

use crate::face::{FaceTracker, FrameFaces, TrackingOptions};
use crate::frames::RgbImage;
use crate::labels::LabelSet;
use crate::prompt::{ClipContext, ImageDetail, PromptMode, PromptRequest, prompt_json};
use crate::timeline::keyframes::{encode_jpeg, jpeg_dimensions};
use crate::timeline::{
    KeyframeOptions, KeyframeSampling, SpotOptions, TimelineBuilder, TrackerOptions, VideoReport,
    spot,
};
use crate::web::live::LiveFrames;
use crate::web::{Analyzer, js_message};

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

/// Options of `analyzeVideo` that are plain data (`onProgress` and `signal` are read apart).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VideoOptions {
    /// 'file' or 'live'; by default 'live' for a MediaStream in `srcObject`, else 'file'.
    #[serde(default)]
    mode: Option<String>,
    #[serde(default = "one")]
    keyframe_fps: f64,
    #[serde(default)]
    max_keyframes: Option<usize>,
    /// 'balanced' (default) or 'uniform' (evenly spread frames only, for comparison).
    #[serde(default)]
    keyframe_sampling: KeyframeSampling,
    /// Longer side of keyframe JPEGs (0: frame size).
    #[serde(default = "default_keyframe_size")]
    pub(crate) keyframe_size: usize,
    #[serde(default = "default_quality")]
    pub(crate) keyframe_quality: u8,
    /// Include every frame's record.
    #[serde(default)]
    records: bool,
    /// File mode: frames per forward pass.
    #[serde(default = "default_batch")]
    batch: usize,
    /// Stop after this many frames (file mode: the report covers only those).
    #[serde(default)]
    max_frames: Option<usize>,
    /// The clip's frame rate; by default the median interval between frames.
    #[serde(default)]
    fps: Option<f64>,
    /// How long to wait for one frame before giving up with an Error.
    #[serde(default = "default_frame_timeout")]
    frame_timeout_ms: f64,
    /// Live mode: at most this many analysed frames kept as JPEGs for the keyframes.
    #[serde(default = "default_live_jpeg_limit")]
    pub(crate) live_jpeg_limit: usize,
    /// Live mode in a Web Worker (`www/live.js`): frames that may wait while one is analysed.
    #[serde(default = "default_live_queue")]
    pub(crate) live_queue: usize,
    /// Follow faces from frame to frame and run the detector only every `redetectEvery` frames
    /// (and when a face moves fast, is lost or nears the edge); `false`: detect on every frame.
    #[serde(default = "yes")]
    tracking: bool,
    #[serde(default)]
    redetect_every: Option<usize>,
}

impl VideoOptions {
    pub(crate) fn tracking(&self) -> TrackingOptions {
        TrackingOptions::with(self.tracking, self.redetect_every)
    }
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}
fn default_keyframe_size() -> usize {
    640
}
fn default_quality() -> u8 {
    85
}
fn default_batch() -> usize {
    4
}
fn default_frame_timeout() -> f64 {
    15_000.0
}
fn default_live_jpeg_limit() -> usize {
    1800
}
fn default_live_queue() -> usize {
    crate::timeline::live::DEFAULT_QUEUE_LIMIT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrameMeta {
    media_time: f64,
    presented_frames: f64,
}

pub(crate) fn err(message: impl AsRef<str>) -> JsValue {
    JsError::new(message.as_ref()).into()
}

/// A value as plain JSON-compatible JS data (objects, not Maps).
pub(crate) fn plain<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| err(e.to_string()))
}

/// Reads an option that serde cannot (a function, an AbortSignal).
pub(crate) fn js_option(options: &JsValue, key: &str) -> JsValue {
    if options.is_object() {
        Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// Options as data: `onProgress` and `signal` are dropped before serde sees them.
pub(crate) fn plain_options(options: &JsValue) -> Result<VideoOptions, JsValue> {
    let plain = js_sys::Object::new();
    if options.is_object() {
        let source: &js_sys::Object = options.unchecked_ref();
        let entries = js_sys::Object::entries(source);
        for entry in entries.iter() {
            let pair: js_sys::Array = entry.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            if key != "onProgress" && key != "signal" {
                Reflect::set(&plain, &key.into(), &pair.get(1))?;
            }
        }
    } else if !options.is_undefined() && !options.is_null() {
        return Err(err("analyzeVideo options must be an object"));
    }
    let options: VideoOptions = serde_wasm_bindgen::from_value(plain.into())
        .map_err(|e| err(format!("bad analyzeVideo options: {e}")))?;
    if !options.keyframe_fps.is_finite() || options.keyframe_fps < 0.0 {
        return Err(err(format!(
            "keyframeFps must be a number >= 0 (at most 5 are used), not {}",
            options.keyframe_fps
        )));
    }
    if !(1..=100).contains(&options.keyframe_quality) {
        return Err(err(format!(
            "keyframeQuality must be 1-100, not {}",
            options.keyframe_quality
        )));
    }
    if let Some(fps) = options.fps
        && !(fps.is_finite() && fps > 0.0)
    {
        return Err(err(format!("fps must be a positive number, not {fps}")));
    }
    if options.batch == 0 {
        return Err(err("batch must be at least 1"));
    }
    options
        .tracking()
        .validate()
        .map_err(|e| err(format!("redetectEvery: {e}")))?;
    Ok(options)
}

/// Whether the user's AbortSignal has fired.
fn aborted(signal: &JsValue) -> bool {
    !signal.is_undefined()
        && !signal.is_null()
        && Reflect::get(signal, &"aborted".into())
            .map(|v| v.is_truthy())
            .unwrap_or(false)
}

/// A 2D context of the video's size that frames are drawn into and read back from.
pub(crate) fn frame_canvas(
    width: u32,
    height: u32,
) -> Result<OffscreenCanvasRenderingContext2d, JsValue> {
    let canvas = OffscreenCanvas::new(width, height)?;
    let settings = js_sys::Object::new();
    Reflect::set(&settings, &"willReadFrequently".into(), &JsValue::TRUE)?;
    canvas
        .get_context_with_context_options("2d", &settings)?
        .ok_or_else(|| err("this browser gives no 2D canvas context"))?
        .dyn_into::<OffscreenCanvasRenderingContext2d>()
        .map_err(|_| err("the 2D canvas context has an unexpected type"))
}

pub(crate) fn canvas_pixels(
    context: &OffscreenCanvasRenderingContext2d,
    width: u32,
    height: u32,
) -> Result<RgbImage, JsValue> {
    let data = context.get_image_data(0.0, 0.0, width as f64, height as f64)?;
    RgbImage::from_rgba(width as usize, height as usize, &data.data())
        .map_err(|e| err(e.to_string()))
}

fn jpeg_data_url(image: &RgbImage, size: usize, quality: u8) -> Result<String, JsValue> {
    let jpeg = encode_jpeg(image, size, quality).map_err(|e| err(format!("keyframe JPEG: {e}")))?;
    Ok(crate::prompt::image_data_url(&jpeg))
}

pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
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

pub(crate) fn report_progress(
    on_progress: &JsValue,
    done: usize,
    total: Option<usize>,
) -> Result<(), JsValue> {
    if let Some(callback) = on_progress.dyn_ref::<Function>() {
        let total = total
            .map(|t| JsValue::from(t as f64))
            .unwrap_or(JsValue::UNDEFINED);
        callback
            .call2(&JsValue::NULL, &(done as f64).into(), &total)
            .map_err(|e| err(format!("onProgress threw: {}", js_message(&e))))?;
    }
    Ok(())
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
        report
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| err(e.to_string()))
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
        report
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| err(e.to_string()))
    }
}

/// Checks what `analyzeFrames` and its parallel twin are given: one time per frame, finite and
/// increasing.
pub(crate) fn check_frames(
    who: &str,
    frames: &js_sys::Array,
    times: &[f64],
) -> Result<(), JsValue> {
    if frames.length() as usize != times.len() {
        return Err(err(format!(
            "{who} got {} frames and {} times",
            frames.length(),
            times.len()
        )));
    }
    if times.is_empty() {
        return Err(err(format!("{who} got no frames")));
    }
    if !times.iter().all(|t| t.is_finite()) || times.windows(2).any(|w| w[1] <= w[0]) {
        return Err(err(format!("{who}: times must be finite and increasing")));
    }
    Ok(())
}

/// The pixels of `frames[i]`, an `ImageData`.
pub(crate) fn image_data_rgb(
    who: &str,
    frames: &js_sys::Array,
    i: usize,
) -> Result<RgbImage, JsValue> {
    let data: web_sys::ImageData = frames
        .get(i as u32)
        .dyn_into()
        .map_err(|_| err(format!("{who}: frame {i} is not an ImageData")))?;
    RgbImage::from_rgba(data.width() as usize, data.height() as usize, &data.data())
        .map_err(|e| err(format!("frame {i}: {e}")))
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

/// Options of `buildPrompt`, named as `emolens prompt`'s flags.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PromptOptions {
    /// 'dfew', 'ferv39k', 'mafw', 'faceapi', 'a,b,c', or an array of names.
    #[serde(default)]
    labels: Option<LabelsOption>,
    #[serde(default)]
    mode: Option<PromptMode>,
    #[serde(default)]
    detail: Option<ImageDetail>,
    #[serde(default)]
    permutations: Option<usize>,
    #[serde(default)]
    stage1: bool,
    /// Pick keyframes again at this base rate (needs the report's records; image modes need
    /// pixels for every new keyframe, i.e. only frames that were keyframes in the report).
    #[serde(default)]
    keyframe_fps: Option<f64>,
    /// Pick keyframes again with this sampling ('balanced' | 'uniform'), under the same conditions.
    #[serde(default)]
    keyframe_sampling: Option<KeyframeSampling>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelsOption {
    Spec(String),
    List(Vec<String>),
}

fn jpeg_from_data_url(url: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let encoded = url
        .strip_prefix("data:image/jpeg;base64,")
        .ok_or("a keyframe's jpeg is not a data:image/jpeg;base64 URL")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("a keyframe's jpeg is not valid base64: {e}"))
}

/// Builds the VLM request from a video report (`analyzer.analyzeVideo`'s result, or
/// `emolens video --json` with keyframe data URLs): the same JSON as `emolens prompt`.
///
/// `options`: `{ labels = 'dfew', mode = 'enriched'|'keyframes'|'summaries', detail = 'low'|'high',
/// permutations = 1, stage1 = false, keyframeFps?, keyframeSampling? }`. `summaries` carries no
/// image. Keyframes are the report's; `keyframeFps` / `keyframeSampling` pick them again from its records (`records: true`), and image
/// modes then need a JPEG for each, which only frames that were already keyframes have.
#[wasm_bindgen(js_name = buildPrompt)]
pub fn build_prompt(report: JsValue, options: JsValue) -> Result<JsValue, JsError> {
    // Straight from the JS values (no JSON text): every number arrives bit-exact, so spotting
    // the records again (keyframeFps) gives exactly the report's events.
    let report: VideoReport = serde_wasm_bindgen::from_value(report).map_err(|e| {
        JsError::new(&format!(
            "buildPrompt takes the report of analyzeVideo (or emolens video --json): {e}"
        ))
    })?;
    let options: PromptOptions = if options.is_undefined() || options.is_null() {
        serde_wasm_bindgen::from_value(js_sys::Object::new().into())
    } else {
        serde_wasm_bindgen::from_value(options)
    }
    .map_err(|e| JsError::new(&format!("bad buildPrompt options: {e}")))?;
    // Another keyframe rate: picked again from the records; pixels exist only for frames that
    // were keyframes already (checked below when the mode sends images).
    let report = match (options.keyframe_fps, options.keyframe_sampling) {
        (None, None) => report,
        (fps, sampling) => {
            let fps = fps.unwrap_or(KeyframeOptions::default().base_fps);
            if !(fps.is_finite() && fps >= 0.0) {
                return Err(JsError::new(&format!(
                    "keyframeFps must be a number >= 0 (at most 5 are used), not {fps}"
                )));
            }
            report
                .with_keyframes(&KeyframeOptions {
                    base_fps: fps,
                    max_keyframes: None,
                    sampling: sampling.unwrap_or_default(),
                })
                .map_err(|e| JsError::new(&format!("keyframeFps / keyframeSampling: {e}")))?
        }
    };
    let spec = match options.labels {
        None => "dfew".to_string(),
        Some(LabelsOption::Spec(spec)) => spec,
        Some(LabelsOption::List(names)) => names.join(","),
    };
    let labels = LabelSet::from_spec(&spec).map_err(|e| JsError::new(&format!("labels: {e}")))?;
    let mode = options.mode.unwrap_or(PromptMode::Enriched);
    let permutations = options.permutations.unwrap_or(1);
    if permutations == 0 {
        return Err(JsError::new("permutations must be at least 1"));
    }
    // Pixels are only decoded when the request will carry them, as natively.
    let jpegs = if mode.sends_images() || options.stage1 {
        let jpegs = report
            .keyframes
            .iter()
            .map(|k| {
                let url = k.jpeg.as_deref().ok_or_else(|| {
                    format!(
                        "the keyframe at {:.3} s (frame {}) has no JPEG, and mode '{}' sends images: analyse the video with this keyframeFps, or use mode 'summaries'",
                        k.keyframe.time,
                        k.keyframe.frame,
                        serde_json::to_value(mode)
                            .unwrap_or_default()
                            .as_str()
                            .unwrap_or("?")
                    )
                })?;
                let jpeg = jpeg_from_data_url(url)?;
                let (w, h) = jpeg_dimensions(&jpeg)?;
                Ok((w, h, jpeg))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| JsError::new(&e))?;
        Some(jpegs)
    } else {
        None
    };
    let clip = ClipContext::from_report(&report, jpegs);
    let json = prompt_json(
        &report.path,
        &clip,
        &PromptRequest {
            mode,
            labels,
            detail: options.detail.unwrap_or_default(),
            permutations,
            stage1: options.stage1,
        },
    )
    .map_err(|e| JsError::new(&e))?;
    json.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}
