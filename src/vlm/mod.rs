//! Vision-language model: Idefics3 / SmolVLM in burn.
//!
//! [`config`] reads transformers' `config.json`, [`weights`] reads `model.safetensors`,
//! [`idefics3`] holds the architecture, generation and label scoring.
//! [`processor`], [`chat`] and [`tokenizer`] turn chat messages and images into model inputs as
//! transformers' `Idefics3Processor` does, [`load`] builds everything from file bytes and
//! [`score`] turns label names into probabilities. The model code is
//! target-independent; every host read is async so it also runs on WebGPU in a browser.

pub mod ask;
pub mod chat;
pub mod check;
pub mod config;
pub mod idefics3;
pub mod load;
pub mod processor;
pub mod score;
#[cfg(not(target_arch = "wasm32"))]
pub mod synth;
pub mod tokenizer;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use config::{Idefics3Config, ModelDims};
pub use idefics3::{GenerationConfig, Idefics3, KvCache, Sampling, WeightPrecision};

/// Everything that can go wrong loading or running the VLM.
#[derive(Debug, thiserror::Error)]
pub enum VlmError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("invalid safetensors file: {0}")]
    SafeTensors(String),
    #[error("missing tensor {0:?} in safetensors file")]
    MissingTensor(String),
    #[error("tensor {name:?} has shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor {name:?} has unsupported dtype {dtype} (expected F32, F16 or BF16)")]
    Dtype { name: String, dtype: String },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("reading a tensor from the device failed: {0}")]
    Readback(String),
    #[error("missing file {0}")]
    MissingFile(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("the model needs {} for its weights on the device, and allocating it failed: {message}", load::human_bytes(*bytes))]
    Allocation { bytes: u64, message: String },
}
