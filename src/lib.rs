//! emolens: emotion understanding in video, in the browser.
//!
//! The pipeline has one module per stage: [`frames`] (pixels in) → [`face`] (detection, landmarks,
//! expression per frame) → timeline → prompt → vlm. The browser binding ([`web`]) is a thin layer
//! over this core, which also builds and is tested natively.

pub mod calibration;
pub mod face;
pub mod frames;
pub mod labels;
pub mod prompt;
pub mod remote;
pub mod vlm;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
