//! `emolens vlm-check DIR` (and `vlmCheck` in the browser): parity of the burn model against
//! transformers' reference outputs. The comparison works on bytes and an already loaded model so
//! native file reads and browser fetches share it; only the directory readers are native.

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

#[cfg(not(target_arch = "wasm32"))]
use super::Idefics3Config;
use super::idefics3::read_f32;
use super::{GenerationConfig, Idefics3, Sampling, VlmError};

/// Largest tolerated absolute difference for image features and logits.
pub const TOLERANCE: f32 = 1e-4;

/// The reference files next to a checkpoint's `config.json` and `model.safetensors`.
pub const REFERENCE_TENSORS_FILE: &str = "reference.safetensors";
pub const REFERENCE_JSON_FILE: &str = "reference.json";

#[cfg(not(target_arch = "wasm32"))]
fn read(path: &Path) -> Result<Vec<u8>, VlmError> {
    std::fs::read(path).map_err(|e| VlmError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Loads `DIR/config.json` and `DIR/model.safetensors`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(dir: &Path, device: &Device) -> Result<(Idefics3Config, Idefics3), VlmError> {
    let text = read(&dir.join("config.json"))?;
    let config = Idefics3Config::from_json(&String::from_utf8_lossy(&text))?;
    let bytes = read(&dir.join("model.safetensors"))?;
    let model = Idefics3::load(&config, &bytes, device)?;
    Ok((config, model))
}

/// Reference inputs and outputs written by transformers.
pub struct Reference {
    pub input_ids: Vec<u32>,
    /// `[images, channels, H, W]` (a leading batch of 1 is dropped).
    pub pixel_values: (Vec<f32>, [usize; 4]),
    pub image_features: Vec<f32>,
    pub logits: Vec<f32>,
    pub greedy_new_tokens: Vec<u32>,
}

impl Reference {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path) -> Result<Self, VlmError> {
        Self::from_bytes(
            &read(&dir.join(REFERENCE_TENSORS_FILE))?,
            &read(&dir.join(REFERENCE_JSON_FILE))?,
        )
    }

    /// From the bytes of `reference.safetensors` and `reference.json`.
    pub fn from_bytes(tensors: &[u8], json: &[u8]) -> Result<Self, VlmError> {
        let st = SafeTensors::deserialize(tensors)
            .map_err(|e| VlmError::SafeTensors(format!("{REFERENCE_TENSORS_FILE}: {e}")))?;
        let get = |name: &str| {
            st.tensor(name)
                .map_err(|_| VlmError::MissingTensor(name.to_string()))
        };
        let floats = |name: &str| -> Result<(Vec<f32>, Vec<usize>), VlmError> {
            let v = get(name)?;
            if v.dtype() != Dtype::F32 {
                return Err(VlmError::Dtype {
                    name: name.into(),
                    dtype: format!("{:?}", v.dtype()),
                });
            }
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((data, v.shape().to_vec()))
        };

        let ids = get("input_ids")?;
        let input_ids: Vec<u32> = match ids.dtype() {
            Dtype::I64 => ids
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as u32)
                .collect(),
            Dtype::I32 => ids
                .data()
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
                .collect(),
            other => {
                return Err(VlmError::Dtype {
                    name: "input_ids".into(),
                    dtype: format!("{other:?}"),
                });
            }
        };

        let (pixels, shape) = floats("pixel_values")?;
        // Accept [batch=1, images, C, H, W] or [images, C, H, W].
        let shape4 = match shape.as_slice() {
            [1, n, c, h, w] | [n, c, h, w] => [*n, *c, *h, *w],
            other => {
                return Err(VlmError::Input(format!(
                    "pixel_values has unsupported shape {other:?}"
                )));
            }
        };
        let (image_features, _) = floats("image_features")?;
        let (logits, _) = floats("logits")?;

        let json: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| VlmError::Input(format!("{REFERENCE_JSON_FILE}: {e}")))?;
        let greedy_new_tokens = json
            .get("greedy_new_tokens")
            .and_then(|v| v.as_array())
            .ok_or_else(|| VlmError::Input("reference.json lacks greedy_new_tokens".into()))?
            .iter()
            .map(|v| v.as_u64().map(|x| x as u32))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| VlmError::Input("greedy_new_tokens must be integers".into()))?;

        Ok(Self {
            input_ids,
            pixel_values: (pixels, shape4),
            image_features,
            logits,
            greedy_new_tokens,
        })
    }

    pub fn pixel_tensor(&self, device: &Device) -> Tensor<4> {
        let (values, shape) = &self.pixel_values;
        Tensor::from_data(TensorData::new(values.clone(), *shape), device)
    }
}

/// Outcome of a parity run.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub image_features_max_diff: f32,
    pub logits_max_diff: f32,
    pub tokens: Vec<u32>,
    pub expected_tokens: Vec<u32>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.image_features_max_diff <= TOLERANCE
            && self.logits_max_diff <= TOLERANCE
            && self.tokens == self.expected_tokens
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

/// Runs the reference inputs of `DIR` through its checkpoint and compares.
#[cfg(not(target_arch = "wasm32"))]
pub async fn run_check(dir: &Path, device: &Device) -> Result<CheckReport, VlmError> {
    let (_, model) = load_dir(dir, device)?;
    let reference = Reference::load(dir)?;
    compare(&model, &reference, device).await
}

/// Runs the reference inputs through `model` and compares (async: no blocking reads, so it
/// also runs on WebGPU in a browser).
pub async fn compare(
    model: &Idefics3,
    reference: &Reference,
    device: &Device,
) -> Result<CheckReport, VlmError> {
    let features = model.image_features(reference.pixel_tensor(device))?;
    let image_features = read_f32(features.clone()).await?;
    let embeds = model.embed(&reference.input_ids, Some(features))?;
    let mut cache = model.new_cache();
    let logits = read_f32(model.logits(model.forward_hidden(embeds, &mut cache))).await?;

    let config = GenerationConfig {
        max_new_tokens: reference.greedy_new_tokens.len(),
        sampling: Sampling::Greedy,
        stop_tokens: Vec::new(),
    };
    let tokens = model
        .generate(
            &reference.input_ids,
            Some(reference.pixel_tensor(device)),
            &config,
            |_| true,
        )
        .await?;

    Ok(CheckReport {
        image_features_max_diff: max_abs_diff(&image_features, &reference.image_features),
        logits_max_diff: max_abs_diff(&logits, &reference.logits),
        tokens,
        expected_tokens: reference.greedy_new_tokens.clone(),
    })
}

/// Time to first token and decode speed of greedy generation on the reference inputs.
#[derive(Debug, Clone)]
pub struct GenerationTiming {
    pub prompt_tokens: usize,
    pub images: usize,
    pub new_tokens: usize,
    /// From the call to the first token (vision encoder + prefill + one read), in ms.
    pub first_token_ms: f64,
    /// Tokens after the first per second (each one decoder step and one read).
    pub decode_tokens_per_s: f64,
}

/// Generates `new_tokens` greedily on the reference inputs (no stop tokens, so the count is
/// fixed) and times it with `now_ms`, a millisecond clock (`Instant` natively,
/// `performance.now()` in a browser).
pub async fn time_generation(
    model: &Idefics3,
    reference: &Reference,
    device: &Device,
    new_tokens: usize,
    now_ms: impl Fn() -> f64,
) -> Result<GenerationTiming, VlmError> {
    if new_tokens < 2 {
        return Err(VlmError::Input(
            "timing needs at least 2 new tokens (one first token, one decode step)".into(),
        ));
    }
    let config = GenerationConfig {
        max_new_tokens: new_tokens,
        sampling: Sampling::Greedy,
        stop_tokens: Vec::new(),
    };
    let start = now_ms();
    let mut first = None;
    let out = model
        .generate(
            &reference.input_ids,
            Some(reference.pixel_tensor(device)),
            &config,
            |_| {
                first.get_or_insert_with(&now_ms);
                true
            },
        )
        .await?;
    let end = now_ms();
    let first = first.ok_or_else(|| VlmError::Input("no token was generated".into()))?;
    Ok(GenerationTiming {
        prompt_tokens: reference.input_ids.len(),
        images: reference.pixel_values.1[0],
        new_tokens: out.len(),
        first_token_ms: first - start,
        decode_tokens_per_s: (out.len() - 1) as f64 / ((end - first) / 1e3),
    })
}

/// The `vlm-check` subcommand: prints the comparison, returns the process exit code
/// (0 parity, 1 mismatch, 2 missing or bad input).
#[cfg(not(target_arch = "wasm32"))]
pub fn vlm_check_command(dir: &Path) -> i32 {
    let device = Device::flex();
    match pollster::block_on(run_check(dir, &device)) {
        Ok(r) => {
            println!(
                "image_features max abs diff: {:.3e} ({})",
                r.image_features_max_diff,
                verdict(r.image_features_max_diff <= TOLERANCE)
            );
            println!(
                "logits max abs diff:         {:.3e} ({})",
                r.logits_max_diff,
                verdict(r.logits_max_diff <= TOLERANCE)
            );
            println!(
                "greedy tokens: {:?} ({})",
                r.tokens,
                verdict(r.tokens == r.expected_tokens)
            );
            if r.tokens != r.expected_tokens {
                println!("expected:      {:?}", r.expected_tokens);
            }
            if r.passed() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISMATCH" }
}
