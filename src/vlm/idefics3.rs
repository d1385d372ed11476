//! Idefics3 (SmolVLM): SigLIP-style vision encoder → pixel-shuffle connector → Llama decoder.
//!
//! Weights are loaded by their transformers names. Forward passes are written out op by op so
//! they can be compared line by line with the reference implementation. Nothing here reads
//! tensors synchronously: host reads go through `into_data_async` so the same code runs on
//! WebGPU in a browser.

use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::tensor::activation::{gelu, gelu_approximate, log_softmax, silu, softmax};
use burn::tensor::module::{conv2d, embedding, layer_norm, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::quantization::{QuantScheme, QuantValue, ScaleDtype};
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};

use super::VlmError;
use super::config::{Idefics3Config, ModelDims, VisionAct};
use super::weights::Weights;

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

fn load_linear(
    w: &Weights,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
    bias: bool,
) -> Result<Linear, VlmError> {
    let weight = w.linear_weight(&format!("{prefix}.weight"), out_dim, in_dim)?;
    let weight = match w.matrices {
        WeightPrecision::F32 => weight,
        WeightPrecision::F16 => weight.cast(FloatDType::F16),
        // Blocks run along the output dimension; a layer it does not divide stays f32.
        WeightPrecision::Q8 if out_dim.is_multiple_of(Q8_BLOCK as usize) => {
            weight.quantize_dynamic(&q8_scheme())
        }
        WeightPrecision::Q8 => weight,
    };
    let bias = if bias {
        Some(Param::from_tensor(
            w.tensor(&format!("{prefix}.bias"), [out_dim])?,
        ))
    } else {
        None
    };
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias,
    })
}

/// How the weight matrices of the linear layers are held on the device. Everything else
/// (norms, embeddings, biases, activations, the KV cache) stays f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPrecision {
    #[default]
    F32,
    /// Half the memory; each product runs in f16 (its input cast to f16, its result back to f32).
    F16,
    /// 8-bit symmetric integers with one f32 scale per [`Q8_BLOCK`] outputs of an input row
    /// (burn's quantization, min-max calibrated at load): 1.125 bytes per weight.
    Q8,
}

/// Values sharing one scale in [`WeightPrecision::Q8`].
pub const Q8_BLOCK: u8 = 32;

fn q8_scheme() -> QuantScheme {
    QuantScheme::default()
        .with_value(QuantValue::Q8S)
        .per_block([1, Q8_BLOCK], ScaleDtype::F32)
}

impl WeightPrecision {
    pub fn parse(name: &str) -> Result<Self, VlmError> {
        match name {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "q8" => Ok(Self::Q8),
            other => Err(VlmError::Input(format!(
                "unknown weight precision {other:?} (f32, f16 or q8)"
            ))),
        }
    }
}

/// `y = x·W + b` with `W` stored `[in, out]`, in f32 or f16 ([`WeightPrecision`]).
#[derive(Module, Debug)]
struct Linear {
    weight: Param<Tensor<2>>,
    bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.weight.val();
        let bias = self.bias.as_ref().map(|b| b.val());
        if weight.dtype() != DType::F16 {
            return linear(x, weight, bias);
        }
        let y = linear(x.cast(FloatDType::F16), weight, None).cast(FloatDType::F32);
        match bias {
            Some(b) => y + b.unsqueeze::<D>(),
            None => y,
        }
    }
}

/// LayerNorm with bias (vision side).
#[derive(Module, Debug)]
struct LayerNorm {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    eps: f64,
}

impl LayerNorm {
    fn load(w: &Weights, prefix: &str, dim: usize, eps: f64) -> Result<Self, VlmError> {
        Ok(Self {
            weight: Param::from_tensor(w.tensor(&format!("{prefix}.weight"), [dim])?),
            bias: Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [dim])?),
            eps,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }
}

/// Llama RMSNorm: x / sqrt(mean(x²) + eps) * weight, in f32.
#[derive(Module, Debug)]
struct RmsNorm {
    weight: Param<Tensor<1>>,
    eps: f64,
}

impl RmsNorm {
    fn load(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self, VlmError> {
        Ok(Self {
            weight: Param::from_tensor(w.tensor(name, [dim])?),
            eps,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let ms = (x.clone() * x.clone()).mean_dim(2);
        let inv = (ms + self.eps).sqrt().recip();
        x * inv * self.weight.val().unsqueeze::<3>()
    }
}

/// Plain softmax attention over `[batch, heads, len, head_dim]`; `bias` is an additive mask.
fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Option<Tensor<4>>,
    scale: f64,
) -> Tensor<4> {
    let scores = q.matmul(k.swap_dims(2, 3)) * scale;
    let scores = match bias {
        Some(b) => scores + b,
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

// ---------------------------------------------------------------------------------------------
// Vision encoder
// ---------------------------------------------------------------------------------------------

#[derive(Module, Debug)]
struct VisionAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, t, d] = x.dims();
        let split = |y: Tensor<3>| y.reshape([n, t, self.heads, self.head_dim]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let scale = (self.head_dim as f64).powf(-0.5);
        let y = attend(q, k, v, None, scale)
            .swap_dims(1, 2)
            .reshape([n, t, d]);
        self.out_proj.forward(y)
    }
}

#[derive(Module, Debug)]
struct VisionLayer {
    layer_norm1: LayerNorm,
    self_attn: VisionAttention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    tanh_gelu: bool,
}

impl VisionLayer {
    fn load(w: &Weights, p: &str, d: &ModelDims) -> Result<Self, VlmError> {
        let h = d.vision_hidden;
        let attn = |name: &str| load_linear(w, &format!("{p}.self_attn.{name}"), h, h, true);
        Ok(Self {
            layer_norm1: LayerNorm::load(w, &format!("{p}.layer_norm1"), h, d.ln_eps)?,
            self_attn: VisionAttention {
                q_proj: attn("q_proj")?,
                k_proj: attn("k_proj")?,
                v_proj: attn("v_proj")?,
                out_proj: attn("out_proj")?,
                heads: d.vision_heads,
                head_dim: h / d.vision_heads,
            },
            layer_norm2: LayerNorm::load(w, &format!("{p}.layer_norm2"), h, d.ln_eps)?,
            fc1: load_linear(w, &format!("{p}.mlp.fc1"), d.vision_intermediate, h, true)?,
            fc2: load_linear(w, &format!("{p}.mlp.fc2"), h, d.vision_intermediate, true)?,
            tanh_gelu: d.vision_act == VisionAct::GeluTanh,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x));
        let h = self.fc1.forward(self.layer_norm2.forward(x.clone()));
        let h = if self.tanh_gelu {
            gelu_approximate(h)
        } else {
            gelu(h)
        };
        x + self.fc2.forward(h)
    }
}

#[derive(Module, Debug)]
struct VisionModel {
    patch_weight: Param<Tensor<4>>,
    patch_bias: Param<Tensor<1>>,
    position_embedding: Param<Tensor<2>>,
    layers: Vec<VisionLayer>,
    post_layernorm: LayerNorm,
    patch: usize,
}

impl VisionModel {
    fn load(w: &Weights, d: &ModelDims) -> Result<Self, VlmError> {
        let p = "model.vision_model";
        let h = d.vision_hidden;
        let layers = (0..d.vision_layers)
            .map(|i| VisionLayer::load(w, &format!("{p}.encoder.layers.{i}"), d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            patch_weight: Param::from_tensor(w.tensor(
                &format!("{p}.embeddings.patch_embedding.weight"),
                [h, d.channels, d.patch, d.patch],
            )?),
            patch_bias: Param::from_tensor(
                w.tensor(&format!("{p}.embeddings.patch_embedding.bias"), [h])?,
            ),
            position_embedding: Param::from_tensor(w.tensor(
                &format!("{p}.embeddings.position_embedding.weight"),
                [d.num_patches(), h],
            )?),
            layers,
            post_layernorm: LayerNorm::load(w, &format!("{p}.post_layernorm"), h, d.ln_eps)?,
            patch: d.patch,
        })
    }

    /// `[images, channels, H, W]` → `[images, patches, hidden]`.
    fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        // A conv with stride = kernel = patch is the patchify + linear projection.
        let opts = ConvOptions::new([self.patch, self.patch], [0, 0], [1, 1], 1);
        let x = conv2d(
            pixels,
            self.patch_weight.val(),
            Some(self.patch_bias.val()),
            opts,
        );
        let [n, d, gh, gw] = x.dims();
        let x = x.reshape([n, d, gh * gw]).swap_dims(1, 2);
        // Full (unpadded) images use position ids 0..patches in row-major order.
        let mut x = x + self.position_embedding.val().unsqueeze::<3>();
        for layer in &self.layers {
            x = layer.forward(x);
        }
        self.post_layernorm.forward(x)
    }
}

// ---------------------------------------------------------------------------------------------
// Connector
// ---------------------------------------------------------------------------------------------

#[derive(Module, Debug)]
struct Connector {
    proj: Linear,
    scale: usize,
}

impl Connector {
    /// Folds each `scale × scale` block of patches into the channel dimension, in the same
    /// element order as transformers' `Idefics3Connector.pixel_shuffle`.
    fn pixel_shuffle(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, seq, d] = x.dims();
        let s = self.scale;
        let side = (seq as f64).sqrt().round() as usize;
        let x = x.reshape([n, side, side / s, d * s]);
        let x = x.swap_dims(1, 2);
        let x = x.reshape([n, side / s, side / s, d * s * s]);
        let x = x.swap_dims(1, 2);
        x.reshape([n, seq / (s * s), d * s * s])
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.proj.forward(self.pixel_shuffle(x))
    }
}

// ---------------------------------------------------------------------------------------------
// Llama decoder
// ---------------------------------------------------------------------------------------------

/// Default RoPE angles' cos and sin with `cat(freqs, freqs)` layout for positions
/// `start..start + len`, computed in f32 like transformers: `[len × head_dim]` each, row-major.
fn rope_values(theta: f64, head_dim: usize, start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for pos in start..start + len {
        // Both halves use the same frequencies (cat(freqs, freqs)).
        for _ in 0..2 {
            for f in &inv_freq {
                let a = pos as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    (cos, sin)
}

/// cos/sin for every position up to the model's `max_positions`, built and uploaded once at
/// load: a decode step only slices its row instead of computing and uploading a new table.
#[derive(Clone, Debug)]
struct RopeTable {
    cos: Tensor<2>,
    sin: Tensor<2>,
    theta: f64,
}

impl RopeTable {
    fn new(theta: f64, head_dim: usize, positions: usize, device: &Device) -> Self {
        let (cos, sin) = rope_values(theta, head_dim, 0, positions);
        let table =
            |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [positions, head_dim]), device);
        Self {
            cos: table(cos),
            sin: table(sin),
            theta,
        }
    }

    /// The tables for positions `start..start + len`, `[1, 1, len, head_dim]` each; positions
    /// past the table are computed on the host (sequences longer than the model was trained for).
    fn rope(&self, start: usize, len: usize) -> Rope {
        let [positions, head_dim] = self.cos.dims();
        if start + len <= positions {
            let rows = |t: &Tensor<2>| t.clone().narrow(0, start, len).unsqueeze::<4>();
            return Rope {
                cos: rows(&self.cos),
                sin: rows(&self.sin),
            };
        }
        let device = self.cos.device();
        let (cos, sin) = rope_values(self.theta, head_dim, start, len);
        let table = |v: Vec<f32>| {
            Tensor::<2>::from_data(TensorData::new(v, [len, head_dim]), &device).unsqueeze::<4>()
        };
        Rope {
            cos: table(cos),
            sin: table(sin),
        }
    }
}

/// Rotary tables for a run of positions, `[1, 1, len, head_dim]` each.
struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    /// x·cos + rotate_half(x)·sin, with rotate_half(x) = cat(-x₂, x₁).
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let hd = x.dims()[3];
        let x1 = x.clone().narrow(3, 0, hd / 2);
        let x2 = x.clone().narrow(3, hd / 2, hd / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

/// Additive causal mask `[1, 1, len, past + len]`: query i sees keys 0..=past + i.
fn causal_mask(past: usize, len: usize, device: &Device) -> Tensor<4> {
    let total = past + len;
    let mut m = vec![0f32; len * total];
    for i in 0..len {
        for j in past + i + 1..total {
            m[i * total + j] = f32::NEG_INFINITY;
        }
    }
    Tensor::<2>::from_data(TensorData::new(m, [len, total]), device).unsqueeze::<4>()
}

#[derive(Module, Debug)]
struct TextAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl TextAttention {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        mask: Option<Tensor<4>>,
        cache: &mut Option<(Tensor<4>, Tensor<4>)>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let hd = self.head_dim;
        let q = self.q_proj.forward(x.clone());
        let k = self.k_proj.forward(x.clone());
        let v = self.v_proj.forward(x);
        let q = rope.apply(q.reshape([b, s, self.heads, hd]).swap_dims(1, 2));
        let k = rope.apply(k.reshape([b, s, self.kv_heads, hd]).swap_dims(1, 2));
        let v = v.reshape([b, s, self.kv_heads, hd]).swap_dims(1, 2);

        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));

        // Grouped-query attention: each kv head serves `rep = heads / kv_heads` query heads
        // (query head g·rep + r uses kv head g). The rep query heads of a group are stacked as
        // rows against their shared keys, so the cache is never copied rep times per step.
        let rep = self.heads / self.kv_heads;
        let kvh = self.kv_heads;
        let total = k.dims()[2];
        let q = q.reshape([b, kvh, rep * s, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let scores = match mask {
            // The mask `[1, 1, s, total]` applies to each of the rep stacked heads.
            Some(m) => (scores.reshape([b, kvh, rep, s, total]) + m.unsqueeze_dim::<5>(2))
                .reshape([b, kvh, rep * s, total]),
            None => scores,
        };
        let y = softmax(scores, 3)
            .matmul(v)
            .reshape([b, self.heads, s, hd])
            .swap_dims(1, 2)
            .reshape([b, s, self.heads * hd]);
        self.o_proj.forward(y)
    }
}

#[derive(Module, Debug)]
struct TextLayer {
    input_layernorm: RmsNorm,
    self_attn: TextAttention,
    post_attention_layernorm: RmsNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl TextLayer {
    fn load(w: &Weights, p: &str, d: &ModelDims) -> Result<Self, VlmError> {
        let h = d.text_hidden;
        let (q_dim, kv_dim) = (d.heads * d.head_dim, d.kv_heads * d.head_dim);
        let lin = |name: &str, o, i| load_linear(w, &format!("{p}.{name}"), o, i, false);
        Ok(Self {
            input_layernorm: RmsNorm::load(
                w,
                &format!("{p}.input_layernorm.weight"),
                h,
                d.rms_eps,
            )?,
            self_attn: TextAttention {
                q_proj: lin("self_attn.q_proj", q_dim, h)?,
                k_proj: lin("self_attn.k_proj", kv_dim, h)?,
                v_proj: lin("self_attn.v_proj", kv_dim, h)?,
                o_proj: lin("self_attn.o_proj", h, q_dim)?,
                heads: d.heads,
                kv_heads: d.kv_heads,
                head_dim: d.head_dim,
            },
            post_attention_layernorm: RmsNorm::load(
                w,
                &format!("{p}.post_attention_layernorm.weight"),
                h,
                d.rms_eps,
            )?,
            gate_proj: lin("mlp.gate_proj", d.text_intermediate, h)?,
            up_proj: lin("mlp.up_proj", d.text_intermediate, h)?,
            down_proj: lin("mlp.down_proj", h, d.text_intermediate)?,
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        mask: Option<Tensor<4>>,
        cache: &mut Option<(Tensor<4>, Tensor<4>)>,
    ) -> Tensor<3> {
        let x = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), rope, mask, cache);
        let h = self.post_attention_layernorm.forward(x.clone());
        let gated = silu(self.gate_proj.forward(h.clone())) * self.up_proj.forward(h);
        x + self.down_proj.forward(gated)
    }
}

/// Per-layer keys and values of the tokens seen so far. Cloning is cheap (tensors are shared),
/// which lets label scoring branch from one prompt.
#[derive(Clone, Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            len: 0,
        }
    }

    /// Number of tokens already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Full model
// ---------------------------------------------------------------------------------------------

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    Greedy,
    /// Temperature then nucleus (top-p) sampling, reproducible for a given seed.
    /// A temperature <= 0 falls back to greedy.
    TopP {
        temperature: f32,
        top_p: f32,
        seed: u64,
    },
}

/// Image tiles the vision encoder runs in one pass (see [`Idefics3::image_features`]).
pub const VISION_TILES_PER_PASS: usize = 2;

/// Most new tokens one `generate` call produces (each grows the key/value cache).
pub const MAX_NEW_TOKENS: usize = 8192;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends after emitting one of these (it is included in the output).
    pub stop_tokens: Vec<u32>,
}

#[derive(Module, Debug)]
pub struct Idefics3 {
    vision: VisionModel,
    connector: Connector,
    embed_tokens: Embedding,
    layers: Vec<TextLayer>,
    norm: RmsNorm,
    /// `None` when the head is tied to `embed_tokens`.
    lm_head: Option<Linear>,
    #[module(skip)]
    dims: ModelDims,
    #[module(skip)]
    rope: RopeTable,
}

impl Idefics3 {
    /// Builds the model from a config and the bytes of `model.safetensors`.
    pub fn load(
        config: &Idefics3Config,
        safetensors: &[u8],
        device: &Device,
    ) -> Result<Self, VlmError> {
        Self::load_with(config, safetensors, device, WeightPrecision::F32)
    }

    /// [`Self::load`] with the linear layers' matrices held in `precision`.
    pub fn load_with(
        config: &Idefics3Config,
        safetensors: &[u8],
        device: &Device,
        precision: WeightPrecision,
    ) -> Result<Self, VlmError> {
        let d = config.dims()?;
        let mut w = Weights::parse(safetensors, device)?;
        w.matrices = precision;
        let vision = VisionModel::load(&w, &d)?;
        let connector = Connector {
            proj: load_linear(
                &w,
                "model.connector.modality_projection.proj",
                d.text_hidden,
                d.vision_hidden * d.scale_factor * d.scale_factor,
                false,
            )?,
            scale: d.scale_factor,
        };
        let embed_tokens = Embedding {
            weight: Param::from_tensor(w.tensor(
                "model.text_model.embed_tokens.weight",
                [d.vocab, d.text_hidden],
            )?),
        };
        let layers = (0..d.text_layers)
            .map(|i| TextLayer::load(&w, &format!("model.text_model.layers.{i}"), &d))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = RmsNorm::load(&w, "model.text_model.norm.weight", d.text_hidden, d.rms_eps)?;
        let lm_head = if d.tied {
            None
        } else {
            Some(load_linear(&w, "lm_head", d.vocab, d.text_hidden, false)?)
        };
        let rope = RopeTable::new(d.rope_theta, d.head_dim, d.max_positions, device);
        Ok(Self {
            vision,
            connector,
            embed_tokens,
            layers,
            norm,
            lm_head,
            dims: d,
            rope,
        })
    }

    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    pub fn device(&self) -> Device {
        self.embed_tokens.weight.val().device()
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// `[images, channels, H, W]` pixel values (already normalized, one tile per image) →
    /// `[images × tokens_per_image, text_hidden]` features, in image order. Unlike
    /// transformers, all-zero padding images are not dropped: pass only real images.
    pub fn image_features(&self, pixel_values: Tensor<4>) -> Result<Tensor<2>, VlmError> {
        let d = &self.dims;
        let [n, c, h, w] = pixel_values.dims();
        if c != d.channels || h != d.image_size || w != d.image_size {
            return Err(VlmError::Input(format!(
                "pixel_values are [{n}, {c}, {h}, {w}], expected [images, {}, {}, {}]",
                d.channels, d.image_size, d.image_size
            )));
        }
        if n == 0 {
            return Err(VlmError::Input("pixel_values hold no image".into()));
        }
        // Tiles are independent: encode a few at a time, so the attention scores of one pass
        // (tiles × heads × patches² floats: 96 MiB for two SigLIP-base/512 tiles) stay within
        // WebGPU's default 128 MiB binding limit however many tiles a prompt has (SmolVLM splits
        // one keyframe into up to 17).
        let pieces: Vec<Tensor<3>> = (0..n)
            .step_by(VISION_TILES_PER_PASS)
            .map(|start| {
                let count = VISION_TILES_PER_PASS.min(n - start);
                let tiles = pixel_values.clone().narrow(0, start, count);
                self.connector.forward(self.vision.forward(tiles))
            })
            .collect();
        Ok(Tensor::cat(pieces, 0).reshape([n * d.tokens_per_image(), d.text_hidden]))
    }

    /// Token embeddings `[1, len, hidden]`, with each image token replaced by the next row of
    /// `image_features`.
    pub fn embed(
        &self,
        input_ids: &[u32],
        image_features: Option<Tensor<2>>,
    ) -> Result<Tensor<3>, VlmError> {
        let d = &self.dims;
        if input_ids.is_empty() {
            return Err(VlmError::Input("empty token sequence".into()));
        }
        if let Some(bad) = input_ids.iter().find(|&&t| t as usize >= d.vocab) {
            return Err(VlmError::Input(format!(
                "token id {bad} is outside the vocabulary ({})",
                d.vocab
            )));
        }
        let n_image = input_ids.iter().filter(|&&t| t == d.image_token_id).count();
        let n_feat = image_features.as_ref().map_or(0, |f| f.dims()[0]);
        if n_image != n_feat {
            return Err(VlmError::Input(format!(
                "{n_image} image tokens in the prompt but {n_feat} image feature rows"
            )));
        }
        let device = self.device();
        let ids: Vec<i64> = input_ids.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, input_ids.len()]), &device);
        let text = embedding(self.embed_tokens.weight.val(), ids);
        let Some(features) = image_features.filter(|_| n_image > 0) else {
            return Ok(text);
        };

        // Stitch runs of text and image rows together in sequence order.
        let text = text.squeeze_dim::<2>(0);
        let mut pieces = Vec::new();
        let (mut start, mut next_feat) = (0, 0);
        while start < input_ids.len() {
            let is_img = input_ids[start] == d.image_token_id;
            let mut end = start;
            while end < input_ids.len() && (input_ids[end] == d.image_token_id) == is_img {
                end += 1;
            }
            let len = end - start;
            if is_img {
                pieces.push(features.clone().narrow(0, next_feat, len));
                next_feat += len;
            } else {
                pieces.push(text.clone().narrow(0, start, len));
            }
            start = end;
        }
        Ok(Tensor::cat(pieces, 0).unsqueeze::<3>())
    }

    /// Runs the decoder over new embeddings after the cached ones; returns final-norm hidden
    /// states `[1, len, hidden]` and extends the cache.
    pub fn forward_hidden(&self, embeds: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let device = embeds.device();
        let len = embeds.dims()[1];
        let past = cache.len;
        // Decode steps (len 1) need no mask and only slice the RoPE table: nothing is uploaded.
        let rope = self.rope.rope(past, len);
        let mask = (len > 1).then(|| causal_mask(past, len, &device));
        let mut x = embeds;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward(x, &rope, mask.clone(), kv);
        }
        cache.len += len;
        self.norm.forward(x)
    }

    /// Vocabulary logits for hidden states `[1, len, hidden]` → `[1, len, vocab]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(self.embed_tokens.weight.val().transpose().unsqueeze::<3>()),
        }
    }

    /// Full forward pass without cache reuse: logits `[1, len, vocab]` for every position.
    pub fn forward(
        &self,
        input_ids: &[u32],
        pixel_values: Option<Tensor<4>>,
    ) -> Result<Tensor<3>, VlmError> {
        let features = pixel_values.map(|p| self.image_features(p)).transpose()?;
        let embeds = self.embed(input_ids, features)?;
        let mut cache = self.new_cache();
        Ok(self.logits(self.forward_hidden(embeds, &mut cache)))
    }

    /// Runs the prompt (text + images) and returns the logits of its last position `[1, 1, vocab]`.
    fn prefill(
        &self,
        prompt_ids: &[u32],
        pixel_values: Option<Tensor<4>>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, VlmError> {
        let features = pixel_values.map(|p| self.image_features(p)).transpose()?;
        let embeds = self.embed(prompt_ids, features)?;
        let hidden = self.forward_hidden(embeds, cache);
        let len = hidden.dims()[1];
        Ok(self.logits(hidden.narrow(1, len - 1, 1)))
    }

    /// Generates up to `max_new_tokens` after the prompt, calling `on_token` with each token as
    /// soon as it is chosen; `on_token` returning `false` stops generation.
    pub async fn generate(
        &self,
        prompt_ids: &[u32],
        pixel_values: Option<Tensor<4>>,
        config: &GenerationConfig,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<Vec<u32>, VlmError> {
        if config.max_new_tokens > MAX_NEW_TOKENS {
            return Err(VlmError::Config(format!(
                "at most {MAX_NEW_TOKENS} new tokens per call, asked for {}",
                config.max_new_tokens
            )));
        }
        let mut out = Vec::with_capacity(config.max_new_tokens);
        if config.max_new_tokens == 0 {
            return Ok(out);
        }
        let mut rng = match config.sampling {
            Sampling::TopP { seed, .. } => SplitMix64(seed),
            Sampling::Greedy => SplitMix64(0),
        };
        let mut cache = self.new_cache();
        let mut logits = self.prefill(prompt_ids, pixel_values, &mut cache)?;
        loop {
            let token = match config.sampling {
                Sampling::TopP {
                    temperature, top_p, ..
                } if temperature > 0.0 => {
                    let values = read_f32(logits).await?;
                    sample_top_p(&values, temperature, top_p, &mut rng)
                }
                _ => argmax(logits).await?,
            };
            out.push(token);
            let keep_going = on_token(token);
            if !keep_going
                || out.len() >= config.max_new_tokens
                || config.stop_tokens.contains(&token)
            {
                return Ok(out);
            }
            let embeds = self.embed(&[token], None)?;
            logits = self.logits(self.forward_hidden(embeds, &mut cache));
        }
    }

    /// Log-probability of each label's full token sequence following the prompt. The prompt
    /// (and its images) runs once; every label continues from a copy of its KV cache.
    pub async fn score_labels(
        &self,
        prompt_ids: &[u32],
        pixel_values: Option<Tensor<4>>,
        labels: &[Vec<u32>],
    ) -> Result<Vec<f32>, VlmError> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        // Validate every label before spending any compute.
        if let Some(bad) = labels
            .iter()
            .flatten()
            .find(|&&t| t as usize >= self.dims.vocab)
        {
            return Err(VlmError::Input(format!(
                "label token {bad} is outside the vocabulary ({})",
                self.dims.vocab
            )));
        }
        let device = self.device();
        let mut cache = self.new_cache();
        let first = log_softmax(self.prefill(prompt_ids, pixel_values, &mut cache)?, 2);
        let mut sums = Vec::with_capacity(labels.len());
        for label in labels {
            if label.is_empty() {
                sums.push(Tensor::<1>::zeros([1], &device));
                continue;
            }
            // Log-probs predicting label[0], then label[1..] from label[..n-1].
            let logp = if label.len() > 1 {
                let mut branch = cache.clone();
                let embeds = self.embed(&label[..label.len() - 1], None)?;
                let rest = log_softmax(self.logits(self.forward_hidden(embeds, &mut branch)), 2);
                Tensor::cat(vec![first.clone(), rest], 1)
            } else {
                first.clone()
            };
            let idx: Vec<i64> = label.iter().map(|&t| t as i64).collect();
            let idx =
                Tensor::<3, Int>::from_data(TensorData::new(idx, [1, label.len(), 1]), &device);
            sums.push(logp.gather(2, idx).sum().reshape([1]));
        }
        read_f32(Tensor::cat(sums, 0)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Host reads and sampling
// ---------------------------------------------------------------------------------------------

/// All values of a float tensor, read asynchronously.
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, VlmError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| VlmError::Readback(format!("{e:?}")))?;
    Ok(data.iter::<f32>().collect())
}

/// Index of the largest logit (first one on ties, like `torch.argmax`).
async fn argmax(logits: Tensor<3>) -> Result<u32, VlmError> {
    let vocab = logits.dims()[2];
    let idx = logits.reshape([vocab]).argmax(0);
    let data = idx
        .into_data_async()
        .await
        .map_err(|e| VlmError::Readback(format!("{e:?}")))?;
    data.iter::<i64>()
        .next()
        .map(|i| i as u32)
        .ok_or_else(|| VlmError::Readback("empty argmax".into()))
}

/// Small seeded generator so sampling is reproducible on every target without extra crates.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Temperature softmax, keep the smallest most-probable set whose mass reaches `top_p`, draw.
fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut SplitMix64) -> u32 {
    let t = temperature as f64;
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let mut probs: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i, ((x as f64 - max) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let limit = (top_p as f64).clamp(0.0, 1.0) * total;
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        kept += 1;
        mass += p.1;
        if mass >= limit {
            break;
        }
    }
    let mut r = rng.next_f64() * mass;
    for p in &probs[..kept] {
        if r < p.1 {
            return p.0 as u32;
        }
        r -= p.1;
    }
    probs[kept - 1].0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_rows_come_from_the_table_and_past_it_are_computed() {
        let device = Device::flex();
        let table = RopeTable::new(1e5, 8, 16, &device);
        // Inside the table (a slice) and past its end (computed) give the same values as
        // computing the run directly.
        for (start, len) in [(0, 16), (5, 1), (15, 1), (14, 4), (40, 3)] {
            let rope = table.rope(start, len);
            let (cos, sin) = rope_values(1e5, 8, start, len);
            assert_eq!(rope.cos.dims(), [1, 1, len, 8]);
            let got_cos: Vec<f32> = rope.cos.into_data().iter::<f32>().collect();
            let got_sin: Vec<f32> = rope.sin.into_data().iter::<f32>().collect();
            assert_eq!(got_cos, cos, "cos at {start}+{len}");
            assert_eq!(got_sin, sin, "sin at {start}+{len}");
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        let mut rng = SplitMix64(7);
        // With top_p tiny only the best token can be drawn.
        for _ in 0..50 {
            assert_eq!(sample_top_p(&[0.0, 3.0, 1.0], 1.0, 0.01, &mut rng), 1);
        }
        // With top_p = 1 every token shows up eventually.
        let mut seen = [false; 3];
        for _ in 0..500 {
            seen[sample_top_p(&[0.0, 0.5, 0.2], 1.0, 1.0, &mut rng) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
