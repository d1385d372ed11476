//! What the browser binding's files share: `analyzeVideo`'s options (defaults defined here once),
//! errors as JS `Error`s, plain JSON-compatible results, the callback options serde cannot read,
//! canvases and pixels, and the checks on frames a caller decoded.

use js_sys::{Function, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{OffscreenCanvas, OffscreenCanvasRenderingContext2d};

use crate::face::TrackingOptions;
use crate::frames::RgbImage;
use crate::timeline::KeyframeSampling;
use crate::timeline::keyframes::encode_jpeg;
use crate::web::js_message;

/// Options of `analyzeVideo` that are plain data (`onProgress` and `signal` are read apart).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VideoOptions {
    /// 'file' or 'live'; by default 'live' for a MediaStream in `srcObject`, else 'file'.
    #[serde(default)]
    pub(crate) mode: Option<String>,
    #[serde(default = "one")]
    pub(crate) keyframe_fps: f64,
    #[serde(default)]
    pub(crate) max_keyframes: Option<usize>,
    /// 'balanced' (default) or 'uniform' (evenly spread frames only, for comparison).
    #[serde(default)]
    pub(crate) keyframe_sampling: KeyframeSampling,
    /// Longer side of keyframe JPEGs (0: frame size).
    #[serde(default = "default_keyframe_size")]
    pub(crate) keyframe_size: usize,
    #[serde(default = "default_quality")]
    pub(crate) keyframe_quality: u8,
    /// Include every frame's record.
    #[serde(default)]
    pub(crate) records: bool,
    /// File mode: frames per forward pass.
    #[serde(default = "default_batch")]
    pub(crate) batch: usize,
    /// Stop after this many frames (file mode: the report covers only those).
    #[serde(default)]
    pub(crate) max_frames: Option<usize>,
    /// The clip's frame rate; by default the median interval between frames.
    #[serde(default)]
    pub(crate) fps: Option<f64>,
    /// How long to wait for one frame before giving up with an Error.
    #[serde(default = "default_frame_timeout")]
    pub(crate) frame_timeout_ms: f64,
    /// Live mode: at most this many analysed frames kept as JPEGs for the keyframes.
    #[serde(default = "default_live_jpeg_limit")]
    pub(crate) live_jpeg_limit: usize,
    /// Live mode in a Web Worker (`www/live.js`): frames that may wait while one is analysed.
    #[serde(default = "default_live_queue")]
    pub(crate) live_queue: usize,
    /// Follow faces from frame to frame and run the detector only every `redetectEvery` frames
    /// (and when a face moves fast, is lost or nears the edge); `false`: detect on every frame.
    #[serde(default = "yes")]
    pub(crate) tracking: bool,
    #[serde(default)]
    pub(crate) redetect_every: Option<usize>,
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
pub(crate) fn aborted(signal: &JsValue) -> bool {
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

pub(crate) fn jpeg_data_url(image: &RgbImage, size: usize, quality: u8) -> Result<String, JsValue> {
    let jpeg = encode_jpeg(image, size, quality).map_err(|e| err(format!("keyframe JPEG: {e}")))?;
    Ok(crate::prompt::image_data_url(&jpeg))
}

pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
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
