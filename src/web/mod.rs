//! The browser binding: a thin wasm-bindgen layer over [`crate::face`].
//!
//! ```js
//! const analyzer = await Analyzer.create({ backend: 'auto', modelBaseUrl: 'models/' });
//! const result = await analyzer.analyzeFrame(videoElement); // same JSON as `emolens image --json`
//! ```
//! The WebGPU device is created once per page and shared (burn's runtime can only be set up once);
//! every tensor read is asynchronous, since a synchronous read on WebGPU aborts the module.
//!
//! The rest of the binding, one file per concern: [`video`] (`analyzeVideo`, `analyzeFrames`;
//! `video.js` only waits for frames), [`live`] (live sessions, on this thread or in a Web
//! Worker), [`chunks`] (dense analysis in parallel workers), [`prompt`] (`buildPrompt`), [`names`]
//! (labels for the page), [`helpers`] (options, errors, canvases).
//! The remote client's and the local VLM's bindings live beside their cores (`remote::js`,
//! `vlm::web`).

pub mod ask;
pub mod chunks;
pub mod helpers;
pub mod live;
pub mod names;
pub mod prompt;
pub mod video;

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

use crate::face::{DetectorOptions, FaceAnalyzer, FaceWeights, FrameFaces, MODEL_NAMES};
use crate::frames::RgbImage;
use crate::weights::{Manifest, WeightMap};

unsafe extern "C" {
    /// Static constructors (dependencies register kernels with `inventory`), made by wasm-ld.
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
fn start() {
    // Run once, here. Without an explicit call wasm-ld treats the module as a "command" and runs
    // every constructor again at the start of every exported function: each call across the
    // JS boundary (every JS value made or dropped) paid for it, most of the time of a frame.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

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

struct WebGpu {
    device: Device,
    adapter_info: String,
    /// Why the adapter is a software one (SwiftShader, a fallback adapter), when it is: it runs
    /// on the CPU, far slower than the wasm CPU path.
    software: Option<String>,
    /// The device's `maxStorageBufferBindingSize`: no single tensor can be larger.
    max_storage_buffer: u64,
}

thread_local! {
    /// The page's one WebGPU device, or why there is none.
    static WEBGPU: RefCell<Option<Result<Rc<WebGpu>, String>>> = const { RefCell::new(None) };
}

async fn webgpu() -> Result<Rc<WebGpu>, String> {
    if let Some(known) = WEBGPU.with(|cell| cell.borrow().clone()) {
        return known;
    }
    // Ask the browser first: it says plainly whether there is an adapter and which one, where
    // wgpu on the web reports neither name nor driver.
    let result = match browser_adapter_info().await {
        Err(reason) => Err(reason),
        Ok((adapter_info, software)) => Device::wgpu_options()
            .init_with_setup_async()
            .await
            .map(|(device, setup)| {
                let max_storage_buffer = setup.device.limits().max_storage_buffer_binding_size;
                Rc::new(WebGpu {
                    device,
                    adapter_info,
                    software,
                    max_storage_buffer,
                })
            })
            .map_err(|e| format!("WebGPU is offered but burn could not use it: {e}")),
    };
    WEBGPU.with(|cell| *cell.borrow_mut() = Some(result.clone()));
    result
}

/// `navigator.gpu.requestAdapter()`'s `info` as "vendor architecture (description)", and why
/// it is a software adapter when it is one.
async fn browser_adapter_info() -> Result<(String, Option<String>), String> {
    let get = |target: &JsValue, key: &str| {
        js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
    };
    let no_adapter =
        "this browser offers no WebGPU adapter (navigator.gpu is missing or returned none)";
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    let request = get(&gpu, "requestAdapter")
        .dyn_into::<js_sys::Function>()
        .map_err(|_| no_adapter.to_string())?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|_| no_adapter.to_string())?
        .into();
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| format!("{no_adapter}: {}", js_message(&e)))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(no_adapter.into());
    }
    let info = get(&adapter, "info");
    let field = |key| get(&info, key).as_string().unwrap_or_default();
    let (vendor, architecture, description) =
        (field("vendor"), field("architecture"), field("description"));
    let mut text = format!("{vendor} {architecture}").trim().to_string();
    if !description.is_empty() {
        text = format!("{text} ({description})").trim().to_string();
    }
    let text = if text.is_empty() {
        "WebGPU adapter".to_string()
    } else {
        text
    };
    // `info.isFallbackAdapter` (Chrome ≥ 121; `adapter.isFallbackAdapter` before), or the
    // software rasteriser by name where a browser says neither.
    let fallback = get(&info, "isFallbackAdapter").is_truthy()
        || get(&adapter, "isFallbackAdapter").is_truthy();
    let software_name = ["swiftshader", "llvmpipe", "lavapipe", "software", "warp"]
        .iter()
        .any(|name| text.to_lowercase().contains(name));
    let software = (fallback || software_name).then(|| {
        format!(
            "the WebGPU adapter ({text}) is a software {} that runs on the CPU, slower than emolens' own CPU path",
            if fallback { "fallback adapter" } else { "rasteriser" }
        )
    });
    Ok((text, software))
}

/// The page's shared WebGPU device (for the VLM binding).
pub(crate) async fn webgpu_device() -> Result<Device, String> {
    webgpu().await.map(|gpu| gpu.device.clone())
}

/// The shared WebGPU device for `backend: 'auto'`: refused, with the reason, when the adapter
/// is a software one.
pub(crate) async fn hardware_webgpu_device() -> Result<Device, String> {
    let gpu = webgpu().await?;
    match &gpu.software {
        Some(reason) => Err(reason.clone()),
        None => Ok(gpu.device.clone()),
    }
}

/// The WebGPU device's largest storage buffer, when there is a device.
pub(crate) async fn max_storage_buffer_bytes() -> Option<u64> {
    webgpu().await.ok().map(|gpu| gpu.max_storage_buffer)
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

pub(crate) fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
