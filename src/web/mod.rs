//! The browser binding: a thin wasm-bindgen layer over the core.
//!
//! One crate, two wasm modules (Cargo features; `scripts/build-wasm.sh` builds both):
//! - the page's (`page`): [`analyzer`] (`Analyzer`: face analysis per frame), [`video`]
//!   (`analyzeVideo`, `analyzeFrames`; `video.js` only waits for frames), [`live`] (live
//!   sessions, on this thread or in a Web Worker), [`chunks`] (dense analysis in parallel
//!   workers), [`prompt`] (`buildPrompt`), [`ask`] (`askClip`), [`names`] (labels for the page),
//!   [`helpers`] (video options, canvases), and the remote client's binding beside its core
//!   (`remote::js`);
//! - the local VLM's (`vlm`, the package's `emolens/vlm`, fetched only when a page loads a VLM):
//!   `vlm::web` (`LocalVlm`) and `LocalVlm.askClip` in [`ask`].
//!
//! Both: [`device`] (the WebGPU device, created once per module; every tensor read is
//! asynchronous, since a synchronous read on WebGPU aborts the module), [`options`] (reading a
//! page's options), [`clip`] (a report's clip context).

#[cfg(feature = "page")]
pub mod analyzer;
pub mod ask;
#[cfg(feature = "page")]
pub mod chunks;
pub mod clip;
pub mod device;
#[cfg(feature = "page")]
pub mod helpers;
#[cfg(feature = "page")]
pub mod live;
#[cfg(feature = "page")]
pub mod names;
pub mod options;
#[cfg(feature = "page")]
pub mod prompt;
#[cfg(feature = "page")]
pub mod video;

#[cfg(feature = "page")]
pub use analyzer::Analyzer;
#[cfg(feature = "page")]
pub(crate) use device::js_message;
#[cfg(feature = "vlm")]
pub(crate) use device::{hardware_webgpu_device, max_storage_buffer_bytes, webgpu_device};

use wasm_bindgen::prelude::*;

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
