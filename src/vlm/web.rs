//! The browser binding for the local VLM: fetch a SmolVLM checkpoint from a URL folder (with
//! progress, Cache API storage and abort), then generate or score labels on WebGPU (or the CPU).
//!
//! ```js
//! const vlm = await LocalVlm.load({
//!   baseUrl: 'https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/',
//!   onProgress: (done, total) => bar.value = done / total,
//!   signal: controller.signal,
//! });
//! const text = await vlm.generate('What emotion does this face show?', [imageData],
//!   { maxTokens: 64, temperature: 0, onToken: (piece) => out.textContent += piece });
//! const scores = await vlm.scoreLabels('Which emotion?', [imageData], ['happy', 'sad']);
//! ```

use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{
    AbortSignal, Cache, CacheStorage, ImageData, ReadableStreamDefaultReader, RequestInit, Response,
};

use super::chat::images_of;
use super::check::{
    REFERENCE_JSON_FILE, REFERENCE_TENSORS_FILE, Reference, TOLERANCE, compare, time_generation,
};
use super::idefics3::MAX_NEW_TOKENS;
use super::load::{
    CONFIG_FILE, FILES, LocalModel, MODEL_FILE, MemoryEstimate, PREPROCESSOR_FILE, VlmFiles,
    human_bytes, prepare,
};
use super::score::score_label_texts;
use super::tokenizer::TextStream;
use super::{GenerationConfig, Idefics3, Idefics3Config, Sampling};
use crate::chat::{Message, Part, messages_from_json};
use crate::frames::RgbImage;
use crate::labels::LabelSet;

const CACHE_NAME: &str = "emolens-vlm";

fn js_err(message: impl std::fmt::Display) -> JsValue {
    JsError::new(&message.to_string()).into()
}

fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return None;
    }
    Reflect::get(obj, &key.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A SmolVLM running in the page.
#[wasm_bindgen]
pub struct LocalVlm {
    inner: Rc<LocalModel>,
    backend: String,
    loaded_from_cache: bool,
    cached_offline: bool,
    fallback_reason: Option<String>,
}

impl LocalVlm {
    /// The model, for the ask flow's in-page transport (`askClip`).
    pub(crate) fn shared(&self) -> Rc<LocalModel> {
        self.inner.clone()
    }
}

#[wasm_bindgen]
impl LocalVlm {
    /// `options`: `{ baseUrl, onProgress?(bytesDone, bytesTotal), signal?, backend?: 'auto' |
    /// 'webgpu' | 'cpu', maxMemoryBytes? }`. Fetches `config.json`, `tokenizer.json`,
    /// `preprocessor_config.json` (optional) and `model.safetensors` from `baseUrl`, from the
    /// Cache API when stored there by an earlier load. `'auto'` takes WebGPU when the browser
    /// offers it, else the CPU, and then says why in `fallbackReason`. Before uploading it
    /// checks the memory the weights need (`memoryBytes`) against `maxMemoryBytes` and the
    /// adapter's buffer limit. `signal` aborts until the weights are on the device.
    pub async fn load(options: JsValue) -> Result<LocalVlm, JsError> {
        let base = get(&options, "baseUrl")
            .and_then(|v| v.as_string())
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                JsError::new("LocalVlm.load needs { baseUrl }, the URL folder of the checkpoint")
            })?;
        let base = folder_url(&base);
        let on_progress = get(&options, "onProgress").and_then(|f| f.dyn_into::<Function>().ok());
        let signal = get(&options, "signal").and_then(|s| s.dyn_into::<AbortSignal>().ok());
        let backend = get(&options, "backend")
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| "auto".into());
        let max_memory = get(&options, "maxMemoryBytes").and_then(|v| v.as_f64());
        // Known before a single byte is downloaded.
        check_backend_name(&backend)?;

        let cache = open_cache().await;
        let fetched = fetch_all(&base, cache.as_ref(), on_progress.as_ref(), signal.as_ref())
            .await
            .map_err(|e| JsError::new(&message(&e)))?;
        let loaded_from_cache = fetched.iter().all(|f| f.from_cache);
        let any_from_cache = fetched.iter().any(|f| f.from_cache);
        // The small files are kept to store them after they pass the checks below.
        let small_files: Vec<Option<Vec<u8>>> =
            fetched[..3].iter().map(|f| f.bytes.clone()).collect();
        let [config, tokenizer, preprocessor, model] = fetched.map(|f| f.bytes);
        let prepared = match prepare(VlmFiles {
            config,
            model,
            tokenizer,
            preprocessor,
        }) {
            Ok(p) => p,
            Err(e) => {
                // A stored copy that no longer passes (or no longer matches the rest) would fail
                // every later load too: it is removed so the next load fetches anew.
                if let Some(cache) = cache.as_ref().filter(|_| any_from_cache) {
                    delete_all(cache, &base).await;
                    return Err(JsError::new(&format!(
                        "{e} (in the files kept in the browser cache: they were removed, load again to fetch them anew)"
                    )));
                }
                return Err(JsError::new(&e.to_string()));
            }
        };

        // Only whole files that parsed and passed every check are stored, so an aborted or
        // failed load never leaves anything in the cache that a later load would trust.
        let cached_offline = match &cache {
            Some(cache) if !loaded_from_cache => {
                let bodies = [
                    small_files[0].as_deref(),
                    small_files[1].as_deref(),
                    small_files[2].as_deref(),
                    Some(prepared.model_bytes()),
                ];
                match store_all(cache, &base, &bodies).await {
                    Ok(()) => true,
                    Err(e) => {
                        web_sys::console::warn_1(
                            &format!(
                                "emolens: the model works but is not stored for offline use: {}",
                                message(&e)
                            )
                            .into(),
                        );
                        false
                    }
                }
            }
            Some(_) => true,
            None => false,
        };

        aborted(signal.as_ref()).map_err(|e| JsError::new(&message(&e)))?;
        let (device, backend, fallback_reason) = pick_device(&backend).await?;
        check_memory(&prepared.memory, max_memory, &backend)?;
        let largest = largest_tensor_bytes(&prepared);
        check_page_memory(&prepared.memory, largest, &backend)?;
        if backend == "webgpu"
            && let Some(limit) = crate::web::max_storage_buffer_bytes().await
            && largest > limit
        {
            return Err(JsError::new(&format!(
                "the model's largest weight needs {} in one GPU buffer; this adapter allows {}",
                human_bytes(largest),
                human_bytes(limit)
            )));
        }
        let inner = prepared
            .upload(&device)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(LocalVlm {
            inner: Rc::new(inner),
            backend,
            loaded_from_cache,
            cached_offline,
            fallback_reason,
        })
    }

    /// Deletes every checkpoint file stored by earlier loads; resolves to whether there was any.
    #[wasm_bindgen(js_name = clearCache)]
    pub async fn clear_cache() -> Result<bool, JsError> {
        let Some(caches) = cache_storage() else {
            return Ok(false);
        };
        let deleted = JsFuture::from(caches.delete(CACHE_NAME))
            .await
            .map_err(|e| {
                JsError::new(&format!("clearing the model cache failed: {}", message(&e)))
            })?;
        Ok(deleted.as_bool() == Some(true))
    }

    /// With `backend: 'auto'` on the CPU: why WebGPU was not used (else `null`).
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// Whether every file of this load came from the Cache API (nothing from the network).
    #[wasm_bindgen(getter, js_name = loadedFromCache)]
    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    /// Whether the checkpoint is in the Cache API, so the next load works offline.
    #[wasm_bindgen(getter, js_name = cachedOffline)]
    pub fn cached_offline(&self) -> bool {
        self.cached_offline
    }

    /// `'webgpu'` or `'cpu'`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Bytes the weights take on the device (parameters × 4: weights are held in f32).
    #[wasm_bindgen(getter, js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        self.inner.memory.device_bytes as f64
    }

    #[wasm_bindgen(getter, js_name = parameterCount)]
    pub fn parameter_count(&self) -> f64 {
        self.inner.memory.parameters as f64
    }

    /// `prompt`: user text (the images go before it) or OpenAI-style messages, where
    /// `{type: 'image'}` parts take `images` in order. `images`: `ImageData` or encoded
    /// JPEG/PNG bytes (`Uint8Array`). `options`: `{ maxTokens = 128, temperature = 0, topP = 1,
    /// seed = 0, onToken?(textPiece, tokenId) }`; `onToken` returning `false` stops.
    /// Resolves to the generated text.
    pub fn generate(&self, prompt: JsValue, images: JsValue, options: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (messages, images) = messages_and_images(&prompt, &images)?;
            let input = inner.prepare_input(&messages, &images).map_err(js_err)?;
            // Each option a finite number in its range: `maxTokens: Infinity` would ask for
            // usize::MAX tokens, NaN would silently become 0.
            let num = |k: &str, min: f64, max: f64| -> Result<Option<f64>, JsValue> {
                match get(&options, k) {
                    None => Ok(None),
                    Some(v) => match v.as_f64() {
                        Some(x) if x.is_finite() && (min..=max).contains(&x) => Ok(Some(x)),
                        _ => Err(JsValue::from(js_sys::Error::new(&format!(
                            "options.{k} must be a number from {min} to {max}"
                        )))),
                    },
                }
            };
            let max_tokens = num("maxTokens", 0.0, MAX_NEW_TOKENS as f64)?.unwrap_or(128.0);
            let temperature = num("temperature", 0.0, 100.0)?.unwrap_or(0.0) as f32;
            let top_p = num("topP", 0.0, 1.0)?.unwrap_or(1.0) as f32;
            let seed = num("seed", 0.0, 9.007e15)?.unwrap_or(0.0) as u64;
            let config = GenerationConfig {
                max_new_tokens: max_tokens as usize,
                sampling: if temperature > 0.0 {
                    Sampling::TopP {
                        temperature,
                        top_p,
                        seed,
                    }
                } else {
                    Sampling::Greedy
                },
                stop_tokens: inner.stop_tokens.clone(),
            };
            let on_token = get(&options, "onToken").and_then(|f| f.dyn_into::<Function>().ok());
            let mut stream = TextStream::new(&inner.tokenizer);
            let mut failure = None;
            inner
                .model
                .generate(&input.prompt_ids, input.pixel_values, &config, |id| {
                    let piece = match stream.push(id) {
                        Ok(p) => p,
                        Err(e) => {
                            failure = Some(js_err(e));
                            return false;
                        }
                    };
                    match &on_token {
                        Some(f) => match f.call2(&JsValue::NULL, &piece.into(), &id.into()) {
                            Ok(r) => r.as_bool() != Some(false),
                            Err(e) => {
                                failure = Some(e);
                                false
                            }
                        },
                        None => true,
                    }
                })
                .await
                .map_err(js_err)?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok(stream.text().map_err(js_err)?.into())
        })
    }

    /// Closed-set scoring: resolves to `{ labels, probabilities }`, the probability of each
    /// label (with a leading space) as the answer after the prompt, normalised over `labels`.
    #[wasm_bindgen(js_name = scoreLabels)]
    pub fn score_labels(&self, prompt: JsValue, images: JsValue, labels: Vec<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (messages, images) = messages_and_images(&prompt, &images)?;
            let names: Vec<&str> = labels.iter().map(String::as_str).collect();
            let set = LabelSet::custom(&names, None).map_err(js_err)?;
            let input = inner.prepare_input(&messages, &images).map_err(js_err)?;
            let probs = score_label_texts(
                &inner.model,
                &inner.tokenizer,
                &input.prompt_ids,
                input.pixel_values,
                &set,
            )
            .await
            .map_err(js_err)?;
            let out = Object::new();
            Reflect::set(
                &out,
                &"labels".into(),
                &labels.iter().map(JsValue::from).collect::<Array>(),
            )?;
            Reflect::set(
                &out,
                &"probabilities".into(),
                &probs.iter().map(|&p| JsValue::from(p)).collect::<Array>(),
            )?;
            Ok(out.into())
        })
    }
}

fn check_backend_name(backend: &str) -> Result<(), JsError> {
    match backend {
        "auto" | "webgpu" | "cpu" => Ok(()),
        other => Err(JsError::new(&format!(
            "unknown backend '{other}': use 'auto', 'webgpu' or 'cpu'"
        ))),
    }
}

/// The device for `backend`, its name, and for `'auto'` without a hardware WebGPU adapter why it
/// runs on the CPU.
async fn pick_device(backend: &str) -> Result<(Device, String, Option<String>), JsError> {
    check_backend_name(backend)?;
    if backend == "cpu" {
        return Ok((Device::flex(), "cpu".into(), None));
    }
    let device = if backend == "auto" {
        crate::web::hardware_webgpu_device().await
    } else {
        crate::web::webgpu_device().await
    };
    Ok(match (backend, device) {
        (_, Ok(device)) => (device, "webgpu".into(), None),
        ("auto", Err(reason)) => {
            web_sys::console::warn_1(&format!("emolens: the VLM runs on the CPU: {reason}").into());
            (Device::flex(), "cpu".into(), Some(reason))
        }
        (_, Err(reason)) => return Err(JsError::new(&reason)),
    })
}

fn check_memory(memory: &MemoryEstimate, max: Option<f64>, backend: &str) -> Result<(), JsError> {
    web_sys::console::info_1(
        &format!(
            "emolens: the VLM has {} parameters ({} in the file as {}); it needs {} on the {backend}",
            memory.parameters,
            human_bytes(memory.file_bytes),
            memory.file_dtype,
            human_bytes(memory.device_bytes)
        )
        .into(),
    );
    if let Some(max) = max
        && memory.device_bytes as f64 > max
    {
        return Err(JsError::new(&format!(
            "the model needs {} but maxMemoryBytes is {}",
            human_bytes(memory.device_bytes),
            human_bytes(max as u64)
        )));
    }
    Ok(())
}

/// Most a WebAssembly page can address (wasm32: 65536 pages of 64 KiB).
const WASM_MEMORY_LIMIT: u64 = 4 << 30;
/// Room left for the activations and the allocator, beyond the weights.
const WASM_MEMORY_HEADROOM: u64 = 512 << 20;

/// The weights must fit in this page's memory beside the file already in it: on the CPU every
/// weight lives there in f32; on WebGPU one tensor at a time passes through it. Past 4 GiB the
/// allocation would abort the module (the page's emolens stops working), so it is refused here.
fn check_page_memory(memory: &MemoryEstimate, largest: u64, backend: &str) -> Result<(), JsError> {
    let in_use = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as u64
        })
        .unwrap_or(0);
    let more = if backend == "cpu" {
        memory.device_bytes
    } else {
        largest
    };
    if in_use + more + WASM_MEMORY_HEADROOM > WASM_MEMORY_LIMIT {
        return Err(JsError::new(&format!(
            "the model does not fit in this page's memory: {} are in use (the checkpoint's file \
             among them) and its weights need {} more on the {backend}, beyond the 4 GiB a \
             WebAssembly page can address. Use an f16 checkpoint, WebGPU, or a smaller model",
            human_bytes(in_use),
            human_bytes(more)
        )));
    }
    Ok(())
}

/// The largest weight in f32 (the token embedding in SmolVLM); it must fit one GPU buffer.
fn largest_tensor_bytes(prepared: &super::load::Prepared) -> u64 {
    let d = match prepared.config.dims() {
        Ok(d) => d,
        Err(_) => return 0,
    };
    let embed = (d.vocab * d.text_hidden) as u64;
    let mlp = (d.text_intermediate * d.text_hidden) as u64;
    let conn = (d.text_hidden * d.vision_hidden * d.scale_factor * d.scale_factor) as u64;
    embed.max(mlp).max(conn) * 4
}

fn messages_and_images(
    prompt: &JsValue,
    images: &JsValue,
) -> Result<(Vec<Message>, Vec<RgbImage>), JsValue> {
    let given: Vec<RgbImage> = if images.is_undefined() || images.is_null() {
        Vec::new()
    } else {
        Array::from(images)
            .iter()
            .map(|v| to_rgb(&v))
            .collect::<Result<_, _>>()?
    };
    let messages = if let Some(text) = prompt.as_string() {
        let mut parts = vec![Part::PassedImage; given.len()];
        parts.push(Part::Text(text));
        vec![Message::user(parts)]
    } else {
        let json: serde_json::Value = serde_wasm_bindgen::from_value(prompt.clone())
            .map_err(|e| js_err(format!("prompt must be a string or messages: {e}")))?;
        messages_from_json(&json).map_err(|e| js_err(format!("prompt: {e}")))?
    };
    let images = images_of(&messages, given).map_err(js_err)?;
    Ok((messages, images))
}

fn to_rgb(value: &JsValue) -> Result<RgbImage, JsValue> {
    if let Some(data) = value.dyn_ref::<ImageData>() {
        return RgbImage::from_rgba(data.width() as usize, data.height() as usize, &data.data())
            .map_err(js_err);
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return RgbImage::decode(&bytes.to_vec()).map_err(js_err);
    }
    Err(js_err(
        "images must be ImageData or encoded image bytes (Uint8Array)",
    ))
}

// ---------------------------------------------------------------------------------------------
// Fetching with progress, cache and abort
// ---------------------------------------------------------------------------------------------

fn folder_url(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

const ABORTED: &str = "loading the model was aborted (AbortSignal)";

fn aborted(signal: Option<&AbortSignal>) -> Result<(), JsValue> {
    match signal {
        Some(s) if s.aborted() => Err(js_err(ABORTED)),
        _ => Ok(()),
    }
}

/// A fetch or body read that failed: the abort when the signal fired, else the browser's reason.
fn network_error(url: &str, error: &JsValue, signal: Option<&AbortSignal>) -> JsValue {
    if signal.is_some_and(|s| s.aborted()) {
        js_err(ABORTED)
    } else if error.is_instance_of::<js_sys::TypeError>() {
        // All fetch() says about a refused connection, no network or a CORS refusal.
        js_err(format!(
            "cannot fetch {url}: {} (no network, the server is unreachable, or it does not allow this page's origin (CORS))",
            message(error)
        ))
    } else {
        js_err(format!("cannot fetch {url}: {}", message(error)))
    }
}

fn cache_storage() -> Option<CacheStorage> {
    // The Cache API only exists in secure contexts; without it every load goes to the network.
    Reflect::get(&js_sys::global(), &"caches".into())
        .ok()?
        .dyn_into::<CacheStorage>()
        .ok()
}

async fn open_cache() -> Option<Cache> {
    JsFuture::from(cache_storage()?.open(CACHE_NAME))
        .await
        .ok()?
        .dyn_into::<Cache>()
        .ok()
}

/// A stored response for a file the server does not have (only the optional one), so an
/// offline load knows it is absent rather than asking the network.
const ABSENT_STATUS: u16 = 404;

/// A response for `url`, from the cache when stored there (`true`), else from the network.
/// `None` for an absent optional file.
async fn response_for(
    url: &str,
    cache: Option<&Cache>,
    signal: Option<&AbortSignal>,
    optional: bool,
) -> Result<(Option<Response>, bool), JsValue> {
    aborted(signal)?;
    if let Some(cache) = cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(response) = hit.dyn_into::<Response>()
    {
        if response.status() == ABSENT_STATUS && optional {
            return Ok((None, true));
        }
        if response.ok() {
            return Ok((Some(response), true));
        }
    }
    let fetch = Reflect::get(&js_sys::global(), &"fetch".into())?
        .dyn_into::<Function>()
        .map_err(|_| js_err("this context has no fetch()"))?;
    let init = RequestInit::new();
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    let promise: Promise = fetch
        .call2(&JsValue::NULL, &url.into(), &init)
        .map_err(|e| network_error(url, &e, signal))?
        .into();
    let response: Response = JsFuture::from(promise)
        .await
        .map_err(|e| network_error(url, &e, signal))?
        .into();
    if optional && response.status() == 404 {
        return Ok((None, false));
    }
    if !response.ok() {
        let hint = if response.status() == 404 {
            " (not found: is baseUrl the folder that holds config.json?)"
        } else {
            ""
        };
        return Err(js_err(format!(
            "cannot fetch {url}: HTTP {} {}{hint}",
            response.status(),
            response.status_text()
        )));
    }
    Ok((Some(response), false))
}

fn content_length(response: &Response) -> f64 {
    response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// One checkpoint file and where it came from.
struct Fetched {
    bytes: Option<Vec<u8>>,
    from_cache: bool,
}

/// All four files, in [`FILES`] order. Progress counts body bytes against the sum of the
/// `Content-Length`s (raised when a body turns out longer) and ends with done = total.
async fn fetch_all(
    base: &str,
    cache: Option<&Cache>,
    on_progress: Option<&Function>,
    signal: Option<&AbortSignal>,
) -> Result<[Fetched; 4], JsValue> {
    let mut responses = Vec::new();
    for name in FILES {
        let url = format!("{base}{name}");
        let (response, from_cache) =
            response_for(&url, cache, signal, name == PREPROCESSOR_FILE).await?;
        responses.push((url, response, from_cache));
    }
    let mut total: f64 = responses
        .iter()
        .filter_map(|(_, r, _)| r.as_ref())
        .map(content_length)
        .sum();
    let mut done = 0.0;
    let report = |done: f64, total: f64| -> Result<(), JsValue> {
        match on_progress {
            Some(f) => f
                .call2(&JsValue::NULL, &done.into(), &total.into())
                .map(drop),
            None => Ok(()),
        }
    };
    report(done, total)?;
    let mut out = Vec::new();
    for (url, response, from_cache) in responses {
        let Some(response) = response else {
            out.push(Fetched {
                bytes: None,
                from_cache,
            });
            continue;
        };
        let mut bytes = Vec::with_capacity(content_length(&response) as usize);
        if let Some(body) = response.body() {
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            loop {
                if let Err(e) = aborted(signal) {
                    // The abort already failed the stream, so the cancel's promise rejects;
                    // awaited here so the page sees no unhandled rejection.
                    let _ = JsFuture::from(reader.cancel()).await;
                    return Err(e);
                }
                let chunk = JsFuture::from(reader.read())
                    .await
                    .map_err(|e| network_error(&url, &e, signal))?;
                if Reflect::get(&chunk, &"done".into())?.as_bool() == Some(true) {
                    break;
                }
                let value: Uint8Array = Reflect::get(&chunk, &"value".into())?.unchecked_into();
                let start = bytes.len();
                bytes.resize(start + value.length() as usize, 0);
                value.copy_to(&mut bytes[start..]);
                done += value.length() as f64;
                total = total.max(done);
                report(done, total)?;
            }
        }
        out.push(Fetched {
            bytes: Some(bytes),
            from_cache,
        });
    }
    // A compressed transfer's Content-Length counts fewer bytes than the body: end at done.
    if total != done {
        report(done, done)?;
    }
    out.try_into()
        .map_err(|_| js_err("internal: expected four checkpoint files"))
}

/// Stores the files (`None`: the absent optional one) under their URLs, all or nothing.
async fn store_all(cache: &Cache, base: &str, bodies: &[Option<&[u8]>; 4]) -> Result<(), JsValue> {
    let response_class = Reflect::get(&js_sys::global(), &"Response".into())?
        .dyn_into::<Function>()
        .map_err(|_| js_err("this context has no Response"))?;
    let mut puts = Vec::new();
    for (name, body) in FILES.iter().zip(bodies) {
        let init = Object::new();
        let headers = Object::new();
        let body_value: JsValue = match body {
            Some(bytes) => {
                Reflect::set(
                    &headers,
                    &"content-length".into(),
                    &bytes.len().to_string().into(),
                )?;
                Uint8Array::from(*bytes).into()
            }
            None => {
                Reflect::set(&init, &"status".into(), &ABSENT_STATUS.into())?;
                JsValue::NULL
            }
        };
        Reflect::set(&init, &"headers".into(), &headers)?;
        let response: Response =
            Reflect::construct(&response_class, &Array::of2(&body_value, &init))?.unchecked_into();
        puts.push(JsFuture::from(
            cache.put_with_str(&format!("{base}{name}"), &response),
        ));
    }
    let mut failure = None;
    for put in puts {
        if let Err(e) = put.await {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        // A partial copy must not be mistaken for a complete one by a later offline load.
        delete_all(cache, base).await;
        return Err(e);
    }
    Ok(())
}

/// Removes every stored file of the checkpoint at `base` (best effort: a failure only leaves
/// entries that the next load checks again).
async fn delete_all(cache: &Cache, base: &str) {
    for name in FILES {
        let _ = JsFuture::from(cache.delete_with_str(&format!("{base}{name}"))).await;
    }
}

/// The body of `url` in one piece (for the parity files, which are not cached).
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let (response, _) = response_for(url, None, None, false).await?;
    let response = response.ok_or_else(|| js_err(format!("cannot fetch {url}")))?;
    let buffer = JsFuture::from(
        response
            .array_buffer()
            .map_err(|e| network_error(url, &e, None))?,
    )
    .await
    .map_err(|e| network_error(url, &e, None))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

// ---------------------------------------------------------------------------------------------
// Parity and timing against reference outputs (the CLI's `vlm-check`)
// ---------------------------------------------------------------------------------------------

/// `config.json` + `model.safetensors` + the reference files of a checkpoint folder, loaded on
/// the chosen backend.
async fn load_reference_checkpoint(
    base_url: &str,
    options: &JsValue,
) -> Result<(Idefics3, Reference, Device, String), JsError> {
    let base = folder_url(base_url);
    let backend = get(options, "backend")
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| "auto".into());
    let fetch = |name: &'static str| {
        let url = format!("{base}{name}");
        async move {
            fetch_bytes(&url)
                .await
                .map_err(|e| JsError::new(&message(&e)))
        }
    };
    let config = fetch(CONFIG_FILE).await?;
    let weights = fetch(MODEL_FILE).await?;
    let reference = Reference::from_bytes(
        &fetch(REFERENCE_TENSORS_FILE).await?,
        &fetch(REFERENCE_JSON_FILE).await?,
    )
    .map_err(js_err_plain)?;
    let config = Idefics3Config::from_json(
        std::str::from_utf8(&config)
            .map_err(|_| JsError::new(&format!("{CONFIG_FILE} is not UTF-8")))?,
    )
    .map_err(js_err_plain)?;
    let (device, backend, _) = pick_device(&backend).await?;
    let model = Idefics3::load(&config, &weights, &device).map_err(js_err_plain)?;
    Ok((model, reference, device, backend))
}

fn js_err_plain(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn set(target: &Object, key: &str, value: impl Into<JsValue>) -> Result<(), JsError> {
    Reflect::set(target, &key.into(), &value.into())
        .map(drop)
        .map_err(|e| JsError::new(&message(&e)))
}

fn id_array(ids: &[u32]) -> Array {
    ids.iter().map(|&t| JsValue::from(t)).collect()
}

/// The browser's `emolens vlm-check DIR`: loads `config.json`, `model.safetensors`,
/// `reference.safetensors` and `reference.json` from `baseUrl`, runs the reference inputs on
/// `options.backend` (`'auto'` | `'webgpu'` | `'cpu'`) and resolves to `{ backend,
/// maxImageFeatureDiff, maxLogitDiff, tolerance, tokens, expectedTokens, greedyMatches, passed }`.
#[wasm_bindgen(js_name = vlmCheck)]
pub async fn vlm_check(base_url: String, options: JsValue) -> Result<JsValue, JsError> {
    let (model, reference, device, backend) =
        load_reference_checkpoint(&base_url, &options).await?;
    let report = compare(&model, &reference, &device)
        .await
        .map_err(js_err_plain)?;
    let out = Object::new();
    set(&out, "backend", backend)?;
    set(&out, "maxImageFeatureDiff", report.image_features_max_diff)?;
    set(&out, "maxLogitDiff", report.logits_max_diff)?;
    set(&out, "tolerance", TOLERANCE)?;
    set(&out, "tokens", id_array(&report.tokens))?;
    set(&out, "expectedTokens", id_array(&report.expected_tokens))?;
    set(
        &out,
        "greedyMatches",
        report.tokens == report.expected_tokens,
    )?;
    set(&out, "passed", report.passed())?;
    Ok(out.into())
}

fn now_ms() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &"performance".into())
        .ok()
        .and_then(|perf| {
            let now = Reflect::get(&perf, &"now".into())
                .ok()?
                .dyn_into::<Function>()
                .ok()?;
            now.call0(&perf).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

/// Time to first token and decode speed on the reference inputs of a checkpoint folder, as
/// `examples/bench_vlm.rs` measures natively: `options` `{ backend, tokens = 16, repeat = 3 }`;
/// resolves to `{ backend, promptTokens, images, newTokens, firstRunTtftMs, ttftMs,
/// decodeTokensPerSecond }` (best of the runs; the first one also compiles the GPU kernels).
#[wasm_bindgen(js_name = vlmBenchmark)]
pub async fn vlm_benchmark(base_url: String, options: JsValue) -> Result<JsValue, JsError> {
    let num = |k: &str, default: f64| get(&options, k).and_then(|v| v.as_f64()).unwrap_or(default);
    let tokens = num("tokens", 16.0) as usize;
    let repeat = (num("repeat", 3.0) as usize).max(1);
    let (model, reference, device, backend) =
        load_reference_checkpoint(&base_url, &options).await?;
    let mut runs = Vec::new();
    for _ in 0..repeat {
        runs.push(
            time_generation(&model, &reference, &device, tokens, now_ms)
                .await
                .map_err(js_err_plain)?,
        );
    }
    let best_ttft = runs
        .iter()
        .map(|r| r.first_token_ms)
        .fold(f64::INFINITY, f64::min);
    let best_rate = runs
        .iter()
        .map(|r| r.decode_tokens_per_s)
        .fold(0.0, f64::max);
    let out = Object::new();
    set(&out, "backend", backend)?;
    set(&out, "promptTokens", runs[0].prompt_tokens as u32)?;
    set(&out, "images", runs[0].images as u32)?;
    set(&out, "newTokens", runs[0].new_tokens as u32)?;
    set(&out, "firstRunTtftMs", runs[0].first_token_ms)?;
    set(&out, "ttftMs", best_ttft)?;
    set(&out, "decodeTokensPerSecond", best_rate)?;
    Ok(out.into())
}
