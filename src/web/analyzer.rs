//! `Analyzer`: face analysis in the page, one frame at a time.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Promise, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{
    HtmlImageElement, HtmlVideoElement, ImageBitmap, ImageData, OffscreenCanvas,
    OffscreenCanvasRenderingContext2d,
};

use super::device::{js_message, webgpu};
use crate::face::{DetectorOptions, FaceAnalyzer, FaceWeights, FrameFaces, MODEL_NAMES};
use crate::frames::RgbImage;
use crate::weights::{Manifest, WeightMap};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOptions {
    #[serde(default = "default_backend")]
    backend: String,
    #[serde(default = "default_model_base_url")]
    model_base_url: String,
    #[serde(default)]
    input_size: Option<usize>,
    #[serde(default)]
    score_threshold: Option<f64>,
}

fn default_backend() -> String {
    "auto".into()
}

fn default_model_base_url() -> String {
    "models/".into()
}

/// The result of one frame, as JSON: the CLI's fields plus the backend that ran.
#[derive(Serialize)]
struct FrameResult<'a> {
    #[serde(flatten)]
    frame: &'a FrameFaces,
    backend: &'a str,
}

/// Face analysis in the page: created once, then called per frame.
#[wasm_bindgen]
pub struct Analyzer {
    pub(crate) inner: Rc<FaceAnalyzer>,
    pub(crate) backend: String,
    adapter_info: Option<String>,
    fallback_reason: Option<String>,
    canvas: Rc<RefCell<Option<(OffscreenCanvas, OffscreenCanvasRenderingContext2d)>>>,
}

#[wasm_bindgen]
impl Analyzer {
    /// `options`: `{ backend: 'auto' | 'webgpu' | 'cpu', modelBaseUrl, inputSize?, scoreThreshold? }`.
    /// `'auto'` uses WebGPU when the browser has a hardware adapter and the CPU otherwise, also
    /// when the only adapter is a software one (`fallbackReason` says why).
    pub async fn create(options: JsValue) -> Result<Analyzer, JsError> {
        let options: CreateOptions = if options.is_undefined() || options.is_null() {
            serde_wasm_bindgen::from_value(js_sys::Object::new().into())
        } else {
            serde_wasm_bindgen::from_value(options)
        }
        .map_err(|e| JsError::new(&format!("bad Analyzer options: {e}")))?;

        let (device, backend, adapter_info, fallback_reason) = match options.backend.as_str() {
            "cpu" => (Device::flex(), "cpu", None, None),
            "webgpu" => {
                let gpu = webgpu().await.map_err(|e| JsError::new(&e))?;
                (
                    gpu.device.clone(),
                    "webgpu",
                    Some(gpu.adapter_info.clone()),
                    None,
                )
            }
            "auto" => match webgpu().await {
                Ok(gpu) if gpu.software.is_some() => {
                    (Device::flex(), "cpu", None, gpu.software.clone())
                }
                Ok(gpu) => (
                    gpu.device.clone(),
                    "webgpu",
                    Some(gpu.adapter_info.clone()),
                    None,
                ),
                Err(reason) => (Device::flex(), "cpu", None, Some(reason)),
            },
            other => {
                return Err(JsError::new(&format!(
                    "unknown backend '{other}': use 'auto', 'webgpu' or 'cpu'"
                )));
            }
        };

        let weights = fetch_weights(&options.model_base_url).await?;
        let detector_options = DetectorOptions {
            input_size: options.input_size,
            score_threshold: options
                .score_threshold
                .unwrap_or(DetectorOptions::default().score_threshold),
        };
        let inner = FaceAnalyzer::new(&weights, &device, detector_options)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Analyzer {
            inner: Rc::new(inner),
            backend: backend.into(),
            adapter_info,
            fallback_reason,
            canvas: Rc::new(RefCell::new(None)),
        })
    }

    /// `'webgpu'` or `'cpu'`: what really runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The WebGPU adapter's description, `null` on the CPU.
    #[wasm_bindgen(getter, js_name = adapterInfo)]
    pub fn adapter_info(&self) -> Option<String> {
        self.adapter_info.clone()
    }

    /// Why `'auto'` fell back to the CPU, `null` otherwise.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// Analyses one frame of an `HTMLVideoElement`, `HTMLImageElement`, `ImageBitmap` or
    /// `ImageData`; resolves to `{ width, height, backend, faces: [...] }`.
    #[wasm_bindgen(js_name = analyzeFrame)]
    pub fn analyze_frame(&self, source: JsValue) -> Promise {
        let inner = self.inner.clone();
        let backend = self.backend.clone();
        let pixels = self.pixels(&source);
        future_to_promise(async move {
            let image = pixels?;
            let frames = inner
                .analyze(&[&image])
                .await
                .map_err(|e| JsValue::from(JsError::new(&e.to_string())))?;
            let result = FrameResult {
                frame: &frames[0],
                backend: &backend,
            };
            result
                .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
                .map_err(|e| JsError::new(&e.to_string()).into())
        })
    }
}

impl Analyzer {
    /// Another handle on the same networks (a live session keeps one).
    pub(crate) fn share(&self) -> Analyzer {
        Analyzer {
            inner: self.inner.clone(),
            backend: self.backend.clone(),
            adapter_info: self.adapter_info.clone(),
            fallback_reason: self.fallback_reason.clone(),
            canvas: self.canvas.clone(),
        }
    }

    /// Copies the source's current pixels (RGB) through a reused offscreen canvas.
    fn pixels(&self, source: &JsValue) -> Result<RgbImage, JsValue> {
        let error = |message: String| JsValue::from(JsError::new(&message));
        if let Some(data) = source.dyn_ref::<ImageData>() {
            return RgbImage::from_rgba(
                data.width() as usize,
                data.height() as usize,
                &data.data(),
            )
            .map_err(|e| error(e.to_string()));
        }
        let (width, height) = if let Some(video) = source.dyn_ref::<HtmlVideoElement>() {
            (video.video_width(), video.video_height())
        } else if let Some(image) = source.dyn_ref::<HtmlImageElement>() {
            (image.natural_width(), image.natural_height())
        } else if let Some(bitmap) = source.dyn_ref::<ImageBitmap>() {
            (bitmap.width(), bitmap.height())
        } else {
            return Err(error(
                "analyzeFrame takes an HTMLVideoElement, HTMLImageElement, ImageBitmap or ImageData".into(),
            ));
        };
        if width == 0 || height == 0 {
            return Err(error(
                "the frame has no pixels yet (video not loaded, or image not decoded)".into(),
            ));
        }

        let mut slot = self.canvas.borrow_mut();
        let reusable = matches!(&*slot, Some((canvas, _)) if canvas.width() == width && canvas.height() == height);
        if !reusable {
            let canvas = OffscreenCanvas::new(width, height)?;
            // Frames are read back every time: tell the browser to keep the canvas on the CPU.
            let settings = js_sys::Object::new();
            js_sys::Reflect::set(&settings, &"willReadFrequently".into(), &JsValue::TRUE)?;
            let context = canvas
                .get_context_with_context_options("2d", &settings)?
                .ok_or_else(|| error("no 2D canvas context".into()))?
                .dyn_into::<OffscreenCanvasRenderingContext2d>()?;
            *slot = Some((canvas, context));
        }
        let (_, context) = slot.as_ref().expect("canvas was just created");
        if let Some(video) = source.dyn_ref::<HtmlVideoElement>() {
            context.draw_image_with_html_video_element(video, 0.0, 0.0)?;
        } else if let Some(image) = source.dyn_ref::<HtmlImageElement>() {
            context.draw_image_with_html_image_element(image, 0.0, 0.0)?;
        } else if let Some(bitmap) = source.dyn_ref::<ImageBitmap>() {
            context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
        }
        let data = context.get_image_data(0.0, 0.0, width as f64, height as f64)?;
        RgbImage::from_rgba(width as usize, height as usize, &data.data())
            .map_err(|e| error(e.to_string()))
    }
}

/// Fetches and decodes the three face-api.js models from `base` (a URL folder).
async fn fetch_weights(base: &str) -> Result<FaceWeights, JsError> {
    let base = if base.ends_with('/') || base.is_empty() {
        base.to_string()
    } else {
        format!("{base}/")
    };
    let mut maps: Vec<WeightMap> = Vec::new();
    for model in MODEL_NAMES {
        let manifest_url = format!("{base}{model}-weights_manifest.json");
        let manifest_bytes = fetch_bytes(&manifest_url).await?;
        let text = String::from_utf8(manifest_bytes)
            .map_err(|e| JsError::new(&format!("{manifest_url}: {e}")))?;
        let manifest = Manifest::parse(model, &text).map_err(|e| JsError::new(&e.to_string()))?;
        let mut shards = Vec::new();
        for path in manifest.shard_paths() {
            shards.push(fetch_bytes(&format!("{base}{path}")).await?);
        }
        maps.push(
            manifest
                .decode(&shards)
                .map_err(|e| JsError::new(&e.to_string()))?,
        );
    }
    let maps: [WeightMap; 3] = maps
        .try_into()
        .map_err(|_| JsError::new("three models expected"))?;
    Ok(FaceWeights::from_maps(maps))
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsError> {
    let global = js_sys::global();
    let fetch = js_sys::Reflect::get(&global, &"fetch".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(|| JsError::new("this context has no fetch()"))?;
    let describe = |e: JsValue| JsError::new(&format!("cannot fetch {url}: {}", js_message(&e)));
    let promise: Promise = fetch.call1(&global, &url.into()).map_err(describe)?.into();
    let response: web_sys::Response = JsFuture::from(promise).await.map_err(describe)?.into();
    if !response.ok() {
        return Err(JsError::new(&format!(
            "cannot fetch {url}: HTTP {}",
            response.status()
        )));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(describe)?)
        .await
        .map_err(describe)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
