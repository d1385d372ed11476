//! The module's one WebGPU device (burn's runtime can be set up only once per wasm module): the
//! face analyzer's in the page's module, the local VLM's in `emolens/vlm`.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::Promise;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub(crate) struct WebGpu {
    pub(crate) device: Device,
    /// Shown by the Analyzer (`adapterInfo`).
    #[cfg_attr(not(feature = "page"), allow(dead_code))]
    pub(crate) adapter_info: String,
    /// Why the adapter is a software one (SwiftShader, a fallback adapter), when it is: it runs
    /// on the CPU, far slower than the wasm CPU path.
    pub(crate) software: Option<String>,
    /// The device's `maxStorageBufferBindingSize`: no single tensor can be larger (the VLM
    /// checks its tensors against it).
    #[cfg_attr(not(feature = "vlm"), allow(dead_code))]
    pub(crate) max_storage_buffer: u64,
}

thread_local! {
    /// The page's one WebGPU device, or why there is none.
    static WEBGPU: RefCell<Option<Result<Rc<WebGpu>, String>>> = const { RefCell::new(None) };
}

pub(crate) async fn webgpu() -> Result<Rc<WebGpu>, String> {
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

#[cfg(feature = "vlm")]
/// The page's shared WebGPU device (for the VLM binding).
pub(crate) async fn webgpu_device() -> Result<Device, String> {
    webgpu().await.map(|gpu| gpu.device.clone())
}

#[cfg(feature = "vlm")]
/// The shared WebGPU device for `backend: 'auto'`: refused, with the reason, when the adapter
/// is a software one.
pub(crate) async fn hardware_webgpu_device() -> Result<Device, String> {
    let gpu = webgpu().await?;
    match &gpu.software {
        Some(reason) => Err(reason.clone()),
        None => Ok(gpu.device.clone()),
    }
}

#[cfg(feature = "vlm")]
/// The WebGPU device's largest storage buffer, when there is a device.
pub(crate) async fn max_storage_buffer_bytes() -> Option<u64> {
    webgpu().await.ok().map(|gpu| gpu.max_storage_buffer)
}

pub(crate) fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
