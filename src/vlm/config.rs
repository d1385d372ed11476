//! Idefics3 / SmolVLM configuration, read from transformers' `config.json`.

use serde::Deserialize;

use super::VlmError;

/// Raw `text_config` as written by transformers (Llama).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Older configs omit it; it then equals `num_attention_heads` (plain MHA).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub rms_norm_eps: f64,
    /// transformers < 5 writes `rope_theta`; 5.x nests it in `rope_parameters`.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    pub vocab_size: usize,
    /// Longest sequence the model was trained for (RoPE tables are built up to it once).
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub hidden_act: Option<String>,
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub mlp_bias: Option<bool>,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// Raw `vision_config` (SigLIP-style encoder).
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub patch_size: usize,
    pub image_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_vision_act")]
    pub hidden_act: String,
    #[serde(default = "default_channels")]
    pub num_channels: usize,
}

fn default_layer_norm_eps() -> f64 {
    1e-6
}
fn default_vision_act() -> String {
    "gelu_pytorch_tanh".into()
}
fn default_channels() -> usize {
    3
}
fn default_scale_factor() -> usize {
    2
}

/// Top-level `config.json` of `Idefics3ForConditionalGeneration`.
#[derive(Debug, Clone, Deserialize)]
pub struct Idefics3Config {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    #[serde(default = "default_scale_factor")]
    pub scale_factor: usize,
    pub image_token_id: u32,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

/// RoPE table length when the config does not say (SmolVLM-256M/500M's value).
pub const DEFAULT_MAX_POSITIONS: usize = 8192;
/// Longest RoPE table built at load (a config may claim far more; 32768 × 64 × 2 × 4 B = 16 MB).
pub const MAX_ROPE_TABLE: usize = 32768;

/// Vision activation functions the encoder supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionAct {
    /// tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    GeluTanh,
    /// exact erf GELU (`gelu`).
    Gelu,
}

/// Validated dimensions derived from [`Idefics3Config`]; everything the model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDims {
    pub text_hidden: usize,
    pub text_intermediate: usize,
    pub text_layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    /// Positions the RoPE table covers (`max_position_embeddings`, default
    /// [`DEFAULT_MAX_POSITIONS`], at most [`MAX_ROPE_TABLE`]); later positions are computed per call.
    pub max_positions: usize,
    pub vocab: usize,
    pub tied: bool,
    pub vision_hidden: usize,
    pub vision_intermediate: usize,
    pub vision_layers: usize,
    pub vision_heads: usize,
    pub patch: usize,
    pub image_size: usize,
    pub channels: usize,
    pub ln_eps: f64,
    pub vision_act: VisionAct,
    pub scale_factor: usize,
    pub image_token_id: u32,
}

impl ModelDims {
    /// Patches per image side.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch
    }
    /// Vision tokens per image before the pixel shuffle.
    pub fn num_patches(&self) -> usize {
        self.patches_per_side() * self.patches_per_side()
    }
    /// LM tokens per image after the pixel shuffle.
    pub fn tokens_per_image(&self) -> usize {
        self.num_patches() / (self.scale_factor * self.scale_factor)
    }
}

impl Idefics3Config {
    pub fn from_json(text: &str) -> Result<Self, VlmError> {
        serde_json::from_str(text).map_err(|e| VlmError::Config(format!("config.json: {e}")))
    }

    /// Checks that the config describes a model this code can run and derives its dims.
    pub fn dims(&self) -> Result<ModelDims, VlmError> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let bad = |m: String| Err(VlmError::Config(m));

        let nonzero = [
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.vocab_size", t.vocab_size),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.patch_size", v.patch_size),
            ("vision_config.image_size", v.image_size),
            ("scale_factor", self.scale_factor),
        ];
        for (name, value) in nonzero {
            if value == 0 {
                return bad(format!("{name} must be > 0"));
            }
        }

        let heads = t.num_attention_heads;
        let kv_heads = t.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return bad(format!(
                "num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})"
            ));
        }
        let head_dim = match t.head_dim {
            Some(d) => d,
            None => {
                if !t.hidden_size.is_multiple_of(heads) {
                    return bad(format!(
                        "text hidden_size ({}) is not divisible by num_attention_heads ({heads})",
                        t.hidden_size
                    ));
                }
                t.hidden_size / heads
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim ({head_dim}) must be even and > 0 for RoPE"
            ));
        }
        if let Some(act) = &t.hidden_act
            && act != "silu"
        {
            return bad(format!(
                "text hidden_act {act:?} is not supported (only silu)"
            ));
        }
        if t.attention_bias == Some(true) || t.mlp_bias == Some(true) {
            return bad("text attention_bias / mlp_bias are not supported".into());
        }
        let rope_type = t
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_type.clone())
            .or_else(|| {
                t.rope_scaling.as_ref().and_then(|s| {
                    s.get("rope_type")
                        .or_else(|| s.get("type"))
                        .and_then(|x| x.as_str())
                        .map(String::from)
                })
            });
        if let Some(rt) = rope_type
            && rt != "default"
        {
            return bad(format!("rope_type {rt:?} is not supported (only default)"));
        }
        let rope_theta = t
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or(t.rope_theta)
            .unwrap_or(10000.0);
        if rope_theta <= 0.0 {
            return bad(format!("rope_theta ({rope_theta}) must be > 0"));
        }

        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return bad(format!(
                "vision hidden_size ({}) is not divisible by num_attention_heads ({})",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return bad(format!(
                "image_size ({}) is not a multiple of patch_size ({})",
                v.image_size, v.patch_size
            ));
        }
        let side = v.image_size / v.patch_size;
        if !side.is_multiple_of(self.scale_factor) {
            return bad(format!(
                "patches per side ({side}) is not a multiple of scale_factor ({})",
                self.scale_factor
            ));
        }
        let vision_act = match v.hidden_act.as_str() {
            "gelu_pytorch_tanh" | "gelu_new" => VisionAct::GeluTanh,
            "gelu" => VisionAct::Gelu,
            other => return bad(format!("vision hidden_act {other:?} is not supported")),
        };
        if self.image_token_id as usize >= t.vocab_size {
            return bad(format!(
                "image_token_id ({}) is outside the vocabulary ({})",
                self.image_token_id, t.vocab_size
            ));
        }

        Ok(ModelDims {
            text_hidden: t.hidden_size,
            text_intermediate: t.intermediate_size,
            text_layers: t.num_hidden_layers,
            heads,
            kv_heads,
            head_dim,
            rms_eps: t.rms_norm_eps,
            rope_theta,
            max_positions: t
                .max_position_embeddings
                .unwrap_or(DEFAULT_MAX_POSITIONS)
                .clamp(1, MAX_ROPE_TABLE),
            vocab: t.vocab_size,
            // transformers reads the top-level flag; fall back to the text one.
            tied: self
                .tie_word_embeddings
                .or(t.tie_word_embeddings)
                .unwrap_or(false),
            vision_hidden: v.hidden_size,
            vision_intermediate: v.intermediate_size,
            vision_layers: v.num_hidden_layers,
            vision_heads: v.num_attention_heads,
            patch: v.patch_size,
            image_size: v.image_size,
            channels: v.num_channels,
            ln_eps: v.layer_norm_eps,
            vision_act,
            scale_factor: self.scale_factor,
            image_token_id: self.image_token_id,
        })
    }

    /// End-of-sequence ids from `text_config.eos_token_id` (a number or a list).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        match &self.text_config.eos_token_id {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|x| x as u32).into_iter().collect()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u32)
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl ModelDims {
    /// Number of parameters the model holds, counted tensor by tensor as [`super::Idefics3::load`]
    /// reads them (an untied `lm_head` included).
    pub fn parameter_count(&self) -> u64 {
        let (vh, vi) = (self.vision_hidden as u64, self.vision_intermediate as u64);
        let patch = (vh * self.channels as u64 * (self.patch * self.patch) as u64) + vh;
        let position = self.num_patches() as u64 * vh;
        // q, k, v, out (with bias), two LayerNorms, fc1 and fc2 (with bias).
        let vision_layer = 4 * (vh * vh + vh) + 4 * vh + (vi * vh + vi) + (vh * vi + vh);
        let vision = patch + position + self.vision_layers as u64 * vision_layer + 2 * vh;

        let s2 = (self.scale_factor * self.scale_factor) as u64;
        let (th, ti) = (self.text_hidden as u64, self.text_intermediate as u64);
        let connector = th * vh * s2;

        let q = (self.heads * self.head_dim) as u64;
        let kv = (self.kv_heads * self.head_dim) as u64;
        let text_layer = 2 * q * th + 2 * kv * th + 3 * ti * th + 2 * th;
        let embed = self.vocab as u64 * th;
        let head = if self.tied { 0 } else { embed };
        let text = embed + self.text_layers as u64 * text_layer + th + head;
        vision + connector + text
    }
}

impl ModelDims {
    /// Parameters in the linear layers' weight matrices (what [`super::WeightPrecision::F16`]
    /// halves): vision attention and MLP, connector, decoder attention and MLP, untied head.
    pub fn matrix_parameter_count(&self) -> u64 {
        let (vh, vi) = (self.vision_hidden as u64, self.vision_intermediate as u64);
        let vision = self.vision_layers as u64 * (4 * vh * vh + 2 * vh * vi);
        let s2 = (self.scale_factor * self.scale_factor) as u64;
        let (th, ti) = (self.text_hidden as u64, self.text_intermediate as u64);
        let q = (self.heads * self.head_dim) as u64;
        let kv = (self.kv_heads * self.head_dim) as u64;
        let text = self.text_layers as u64 * (2 * q * th + 2 * kv * th + 3 * ti * th);
        let head = if self.tied { 0 } else { self.vocab as u64 * th };
        vision + th * vh * s2 + text + head
    }
}

impl Idefics3Config {
    /// See [`ModelDims::parameter_count`].
    pub fn parameter_count(&self) -> Result<u64, VlmError> {
        Ok(self.dims()?.parameter_count())
    }
}

/// Public `config.json` dimensions of released SmolVLM checkpoints (fields this crate reads),
/// copied by hand from the Hugging Face model cards / configs, for memory estimates without a
/// download. Both pair a SigLIP-base/16 encoder at 512 px (scale factor 4 → 64 tokens per tile)
/// with a SmolLM2 decoder and an untied LM head over the 49,280-token SmolVLM vocabulary.
pub mod known {
    /// HuggingFaceTB/SmolVLM-256M-Instruct: SmolLM2-135M decoder (576 hidden, 30 layers,
    /// 9 heads / 3 kv heads).
    pub const SMOLVLM_256M_INSTRUCT: &str = r#"{
        "image_token_id": 49190, "scale_factor": 4, "tie_word_embeddings": false,
        "text_config": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "rms_norm_eps": 1e-5,
            "rope_theta": 100000.0, "vocab_size": 49280, "hidden_act": "silu"},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
            "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
    }"#;

    /// HuggingFaceTB/SmolVLM-500M-Instruct: SmolLM2-360M decoder (960 hidden, 32 layers,
    /// 15 heads / 5 kv heads).
    pub const SMOLVLM_500M_INSTRUCT: &str = r#"{
        "image_token_id": 49190, "scale_factor": 4, "tie_word_embeddings": false,
        "text_config": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
            "num_attention_heads": 15, "num_key_value_heads": 5, "rms_norm_eps": 1e-5,
            "rope_theta": 100000.0, "vocab_size": 49280, "hidden_act": "silu"},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
            "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
    }"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "image_token_id": 9,
            "scale_factor": 2,
            "text_config": {
                "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
                "vocab_size": 32
            },
            "vision_config": {
                "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                "num_attention_heads": 2, "patch_size": 8, "image_size": 32
            }
        })
    }

    fn dims(v: &serde_json::Value) -> Result<ModelDims, VlmError> {
        Idefics3Config::from_json(&v.to_string())?.dims()
    }

    #[test]
    fn defaults_and_derived_dims() {
        let d = dims(&base()).unwrap();
        assert_eq!(d.head_dim, 16);
        assert_eq!(d.rope_theta, 10000.0);
        assert!(!d.tied);
        assert_eq!(d.vision_act, VisionAct::GeluTanh);
        assert_eq!(d.tokens_per_image(), 4);
    }

    #[test]
    fn rope_theta_and_tie_from_either_place() {
        let mut v = base();
        v["text_config"]["rope_theta"] = 5e5.into();
        v["text_config"]["tie_word_embeddings"] = true.into();
        let d = dims(&v).unwrap();
        assert_eq!(d.rope_theta, 5e5);
        assert!(d.tied);
        v["text_config"]["rope_parameters"] =
            serde_json::json!({"rope_theta": 1e5, "rope_type": "default"});
        v["tie_word_embeddings"] = false.into();
        let d = dims(&v).unwrap();
        assert_eq!(d.rope_theta, 1e5);
        assert!(!d.tied, "the top-level flag wins");
    }

    #[test]
    fn unsupported_configs_are_rejected() {
        let cases: [(&str, &str, serde_json::Value); 4] = [
            ("text_config", "hidden_act", "gelu".into()),
            ("vision_config", "hidden_act", "relu".into()),
            ("vision_config", "image_size", 36.into()),
            ("text_config", "head_dim", 15.into()),
        ];
        for (section, key, value) in cases {
            let mut v = base();
            v[section][key] = value;
            assert!(
                matches!(dims(&v), Err(VlmError::Config(_))),
                "{section}.{key}"
            );
        }
        let mut v = base();
        v["text_config"]["rope_parameters"] = serde_json::json!({"rope_type": "llama3"});
        assert!(matches!(dims(&v), Err(VlmError::Config(_))));
    }
}
