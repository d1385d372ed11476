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

use super::chat::{ChatMessage, ChatPart, from_openai_json};
use super::load::{
    FILES, LocalModel, MemoryEstimate, PREPROCESSOR_FILE, VlmFiles, human_bytes, prepare,
};
use super::score::score_label_texts;
use super::tokenizer::TextStream;
use super::{GenerationConfig, Sampling};
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
}

#[wasm_bindgen]
impl LocalVlm {
    /// `options`: `{ baseUrl, onProgress?(bytesDone, bytesTotal), signal?, backend?: 'auto' |
    /// 'webgpu' | 'cpu', maxMemoryBytes? }`. Fetches `config.json`, `tokenizer.json`,
    /// `preprocessor_config.json` (optional) and `model.safetensors` from `baseUrl`, from the
    /// Cache API when stored there by an earlier load. Before uploading it checks the memory
    /// the weights need (`memoryBytes`) against `maxMemoryBytes` and the adapter's buffer limit.
    pub async fn load(options: JsValue) -> Result<LocalVlm, JsError> {
        let base = get(&options, "baseUrl")
            .and_then(|v| v.as_string())
            .ok_or_else(|| JsError::new("LocalVlm.load needs { baseUrl }"))?;
        let base = if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        };
        let on_progress = get(&options, "onProgress").and_then(|f| f.dyn_into::<Function>().ok());
        let signal = get(&options, "signal").and_then(|s| s.dyn_into::<AbortSignal>().ok());
        let backend = get(&options, "backend")
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| "auto".into());
        let max_memory = get(&options, "maxMemoryBytes").and_then(|v| v.as_f64());

        let bytes = fetch_all(&base, on_progress.as_ref(), signal.as_ref())
            .await
            .map_err(|e| JsError::new(&message(&e)))?;
        let [config, tokenizer, preprocessor, model] = bytes;
        let prepared = prepare(VlmFiles {
            config,
            model,
            tokenizer,
            preprocessor,
        })
        .map_err(|e| JsError::new(&e.to_string()))?;

        let (device, backend) = pick_device(&backend).await?;
        check_memory(&prepared.memory, max_memory, &backend)?;
        let largest = largest_tensor_bytes(&prepared);
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
        })
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
            let num = |k: &str| get(&options, k).and_then(|v| v.as_f64());
            let temperature = num("temperature").unwrap_or(0.0) as f32;
            let config = GenerationConfig {
                max_new_tokens: num("maxTokens").unwrap_or(128.0) as usize,
                sampling: if temperature > 0.0 {
                    Sampling::TopP {
                        temperature,
                        top_p: num("topP").unwrap_or(1.0) as f32,
                        seed: num("seed").unwrap_or(0.0) as u64,
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

async fn pick_device(backend: &str) -> Result<(Device, String), JsError> {
    match backend {
        "cpu" => Ok((Device::flex(), "cpu".into())),
        "webgpu" => Ok((
            crate::web::webgpu_device()
                .await
                .map_err(|e| JsError::new(&e))?,
            "webgpu".into(),
        )),
        "auto" => Ok(match crate::web::webgpu_device().await {
            Ok(d) => (d, "webgpu".into()),
            Err(_) => (Device::flex(), "cpu".into()),
        }),
        other => Err(JsError::new(&format!(
            "unknown backend '{other}': use 'auto', 'webgpu' or 'cpu'"
        ))),
    }
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
) -> Result<(Vec<ChatMessage>, Vec<RgbImage>), JsValue> {
    let given: Vec<RgbImage> = if images.is_undefined() || images.is_null() {
        Vec::new()
    } else {
        Array::from(images)
            .iter()
            .map(|v| to_rgb(&v))
            .collect::<Result<_, _>>()?
    };
    if let Some(text) = prompt.as_string() {
        let mut parts = vec![ChatPart::Image; given.len()];
        parts.push(ChatPart::Text(text));
        return Ok((vec![ChatMessage::user(parts)], given));
    }
    let json: serde_json::Value = serde_wasm_bindgen::from_value(prompt.clone())
        .map_err(|e| js_err(format!("prompt must be a string or messages: {e}")))?;
    let (messages, slots) = from_openai_json(&json).map_err(js_err)?;
    let mut given = given.into_iter();
    let mut out = Vec::new();
    for slot in slots {
        match slot {
            Some(img) => out.push(img),
            None => out.push(
                given
                    .next()
                    .ok_or_else(|| js_err("more {type: 'image'} parts than images"))?,
            ),
        }
    }
    if given.next().is_some() {
        return Err(js_err("more images than {type: 'image'} parts"));
    }
    Ok((messages, out))
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

fn aborted(signal: Option<&AbortSignal>) -> Result<(), JsValue> {
    match signal {
        Some(s) if s.aborted() => Err(js_err("loading was aborted")),
        _ => Ok(()),
    }
}

async fn open_cache() -> Option<Cache> {
    // The Cache API only exists in secure contexts; without it every load goes to the network.
    let caches = Reflect::get(&js_sys::global(), &"caches".into())
        .ok()?
        .dyn_into::<CacheStorage>()
        .ok()?;
    JsFuture::from(caches.open(CACHE_NAME))
        .await
        .ok()?
        .dyn_into::<Cache>()
        .ok()
}

/// A response for `url`: from the cache when stored there, else from the network (stored while
/// it streams). `None` for a 404 of an optional file.
async fn response_for(
    url: &str,
    cache: Option<&Cache>,
    signal: Option<&AbortSignal>,
    optional: bool,
) -> Result<Option<Response>, JsValue> {
    if let Some(cache) = cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(response) = hit.dyn_into::<Response>()
    {
        return Ok(Some(response));
    }
    aborted(signal)?;
    let fetch = Reflect::get(&js_sys::global(), &"fetch".into())?
        .dyn_into::<Function>()
        .map_err(|_| js_err("this context has no fetch()"))?;
    let init = RequestInit::new();
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    let describe = |e: JsValue| js_err(format!("cannot fetch {url}: {}", message(&e)));
    let promise: Promise = fetch
        .call2(&JsValue::NULL, &url.into(), &init)
        .map_err(describe)?
        .into();
    let response: Response = JsFuture::from(promise).await.map_err(describe)?.into();
    if optional && response.status() == 404 {
        return Ok(None);
    }
    if !response.ok() {
        return Err(js_err(format!(
            "cannot fetch {url}: HTTP {}",
            response.status()
        )));
    }
    if let Some(cache) = cache
        && let Ok(copy) = response.clone()
    {
        // Stored in the background from a tee of the body; a failure (quota) only costs the
        // offline copy, and is reported on the console.
        let put = cache.put_with_str(url, &copy);
        let url = url.to_string();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = JsFuture::from(put).await {
                web_sys::console::warn_1(
                    &format!("emolens: not cached {url}: {}", message(&e)).into(),
                );
            }
        });
    }
    Ok(Some(response))
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

/// All four files, in [`FILES`] order; progress counts bytes over the sum of their
/// `Content-Length`s (grown when a length is unknown).
async fn fetch_all(
    base: &str,
    on_progress: Option<&Function>,
    signal: Option<&AbortSignal>,
) -> Result<[Option<Vec<u8>>; 4], JsValue> {
    let cache = open_cache().await;
    let mut responses = Vec::new();
    for name in FILES {
        let url = format!("{base}{name}");
        responses
            .push(response_for(&url, cache.as_ref(), signal, name == PREPROCESSOR_FILE).await?);
    }
    let mut total: f64 = responses.iter().flatten().map(content_length).sum();
    let mut done = 0.0;
    let mut out: [Option<Vec<u8>>; 4] = Default::default();
    for (slot, response) in out.iter_mut().zip(responses) {
        let Some(response) = response else { continue };
        let Some(body) = response.body() else {
            *slot = Some(Vec::new());
            continue;
        };
        let expected = content_length(&response);
        let mut bytes = Vec::with_capacity(expected as usize);
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        loop {
            if let Err(e) = aborted(signal) {
                let _ = reader.cancel();
                return Err(e);
            }
            let chunk = JsFuture::from(reader.read()).await?;
            if Reflect::get(&chunk, &"done".into())?.as_bool() == Some(true) {
                break;
            }
            let value: Uint8Array = Reflect::get(&chunk, &"value".into())?.unchecked_into();
            let start = bytes.len();
            bytes.resize(start + value.length() as usize, 0);
            value.copy_to(&mut bytes[start..]);
            done += value.length() as f64;
            total = total.max(done);
            if let Some(f) = on_progress {
                f.call2(&JsValue::NULL, &done.into(), &total.into())?;
            }
        }
        *slot = Some(bytes);
    }
    Ok(out)
}
