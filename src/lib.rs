//! emolens: emotion understanding in video, in the browser.
//!
//! The pipeline has one module per stage: [`frames`] (pixels in) → [`face`] (detection, landmarks,
//! expression per frame) → [`timeline`] (tracking, action features, spotting, keyframes) →
//! [`prompt`] → [`vlm`] (in-browser SmolVLM) or [`remote`]. The browser binding ([`web`]) is a thin layer
//! over this core, which also builds and is tested natively.

pub mod ask;
pub mod calibration;
pub mod chat;
pub mod face;
pub mod frames;
pub mod labels;
pub mod prompt;
pub mod remote;
pub mod rng;
pub mod timeline;
#[cfg(not(target_arch = "wasm32"))]
pub mod video;
#[cfg(feature = "vlm")]
pub mod vlm;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
