//! Real-size SmolVLM checkpoints with seeded random weights, written without a download, to
//! measure load time, memory and speed at the released models' sizes (`examples/bench_vlm.rs`).
//!
//! A checkpoint folder holds what [`super::load::prepare`] reads: `config.json` (the public
//! config of SmolVLM-256M/500M-Instruct, [`super::config::known`], plus the fields transformers
//! writes beside them), `preprocessor_config.json` (SmolVLM's processor values),
//! `tokenizer.json` (the SmolLM tokenizer extended with SmolVLM's 128 added tokens at their
//! ids, `<image>` = 49190) and `model.safetensors` (every tensor [`super::Idefics3::load`] reads,
//! by its transformers name, in f32 or f16). Weights are uniform with the standard deviation of
//! transformers' `initializer_range` (0.02), norms 1 and biases 0, so activations stay finite;
//! the same seed gives the same bytes. The answers are meaningless: only sizes and speed count.

use std::io::Write;
use std::path::Path;

use super::config::{Idefics3Config, ModelDims};
use super::load::{CONFIG_FILE, MODEL_FILE, PREPROCESSOR_FILE, TOKENIZER_FILE};
use super::{VlmError, config::known};
use crate::rng::Rng;

/// First id after the SmolLM vocabulary: SmolVLM's added tokens take 49152..49280.
const BASE_VOCAB: usize = 49152;
/// transformers' `initializer_range` for these models.
const INIT_STD: f32 = 0.02;

/// The released models this can imitate, by short name.
pub const MODELS: [&str; 2] = ["256m", "500m"];

/// Weight dtype of the written `model.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthDtype {
    F32,
    F16,
}

impl SynthDtype {
    pub fn parse(name: &str) -> Result<Self, VlmError> {
        match name {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            other => Err(VlmError::Input(format!(
                "unknown dtype {other:?} (f32 or f16)"
            ))),
        }
    }
    fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
    fn safetensors_name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
        }
    }
}

/// How a tensor is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    Ones,
    Zeros,
    /// Uniform with standard deviation [`INIT_STD`].
    Random,
}

/// One tensor of the checkpoint: transformers name, PyTorch shape, contents.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub fill: Fill,
}

impl TensorSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The full `config.json` of a released model (`256m` or `500m`).
pub fn known_config(model: &str) -> Result<serde_json::Value, VlmError> {
    let json = match model.to_ascii_lowercase().as_str() {
        "256m" => known::SMOLVLM_256M_INSTRUCT,
        "500m" => known::SMOLVLM_500M_INSTRUCT,
        other => {
            return Err(VlmError::Input(format!(
                "unknown model {other:?} (one of {})",
                MODELS.join(", ")
            )));
        }
    };
    let mut v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| VlmError::Config(e.to_string()))?;
    v["architectures"] = serde_json::json!(["Idefics3ForConditionalGeneration"]);
    v["model_type"] = "idefics3".into();
    v["_synthetic"] = format!("random weights imitating SmolVLM-{model}-Instruct").into();
    let t = &mut v["text_config"];
    t["model_type"] = "llama".into();
    t["max_position_embeddings"] = 8192.into();
    t["bos_token_id"] = 1.into();
    t["eos_token_id"] = 49279.into(); // <end_of_utterance>
    t["tie_word_embeddings"] = false.into();
    v["vision_config"]["model_type"] = "idefics3_vision".into();
    Ok(v)
}

/// SmolVLM-256M/500M-Instruct's `preprocessor_config.json` (the fields this crate reads).
pub const PREPROCESSOR_JSON: &str = r#"{
  "do_resize": true, "size": {"longest_edge": 2048}, "max_image_size": {"longest_edge": 512},
  "do_image_splitting": true, "do_rescale": true, "rescale_factor": 0.00392156862745098,
  "do_normalize": true, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
  "image_processor_type": "Idefics3ImageProcessor", "processor_class": "Idefics3Processor"
}
"#;

/// Every tensor [`super::Idefics3::load`] reads for `d`, in load order.
pub fn tensor_specs(d: &ModelDims) -> Vec<TensorSpec> {
    let mut out = Vec::new();
    let mut add =
        |name: String, shape: Vec<usize>, fill: Fill| out.push(TensorSpec { name, shape, fill });
    let (vh, vi) = (d.vision_hidden, d.vision_intermediate);
    let v = "model.vision_model";
    add(
        format!("{v}.embeddings.patch_embedding.weight"),
        vec![vh, d.channels, d.patch, d.patch],
        Fill::Random,
    );
    add(
        format!("{v}.embeddings.patch_embedding.bias"),
        vec![vh],
        Fill::Zeros,
    );
    add(
        format!("{v}.embeddings.position_embedding.weight"),
        vec![d.num_patches(), vh],
        Fill::Random,
    );
    for i in 0..d.vision_layers {
        let p = format!("{v}.encoder.layers.{i}");
        for ln in ["layer_norm1", "layer_norm2"] {
            add(format!("{p}.{ln}.weight"), vec![vh], Fill::Ones);
            add(format!("{p}.{ln}.bias"), vec![vh], Fill::Zeros);
        }
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            add(
                format!("{p}.self_attn.{proj}.weight"),
                vec![vh, vh],
                Fill::Random,
            );
            add(format!("{p}.self_attn.{proj}.bias"), vec![vh], Fill::Zeros);
        }
        add(format!("{p}.mlp.fc1.weight"), vec![vi, vh], Fill::Random);
        add(format!("{p}.mlp.fc1.bias"), vec![vi], Fill::Zeros);
        add(format!("{p}.mlp.fc2.weight"), vec![vh, vi], Fill::Random);
        add(format!("{p}.mlp.fc2.bias"), vec![vh], Fill::Zeros);
    }
    add(format!("{v}.post_layernorm.weight"), vec![vh], Fill::Ones);
    add(format!("{v}.post_layernorm.bias"), vec![vh], Fill::Zeros);

    let th = d.text_hidden;
    let s2 = d.scale_factor * d.scale_factor;
    add(
        "model.connector.modality_projection.proj.weight".into(),
        vec![th, vh * s2],
        Fill::Random,
    );
    add(
        "model.text_model.embed_tokens.weight".into(),
        vec![d.vocab, th],
        Fill::Random,
    );
    let (q, kv, ti) = (
        d.heads * d.head_dim,
        d.kv_heads * d.head_dim,
        d.text_intermediate,
    );
    for i in 0..d.text_layers {
        let p = format!("model.text_model.layers.{i}");
        add(format!("{p}.input_layernorm.weight"), vec![th], Fill::Ones);
        add(
            format!("{p}.self_attn.q_proj.weight"),
            vec![q, th],
            Fill::Random,
        );
        add(
            format!("{p}.self_attn.k_proj.weight"),
            vec![kv, th],
            Fill::Random,
        );
        add(
            format!("{p}.self_attn.v_proj.weight"),
            vec![kv, th],
            Fill::Random,
        );
        add(
            format!("{p}.self_attn.o_proj.weight"),
            vec![th, q],
            Fill::Random,
        );
        add(
            format!("{p}.post_attention_layernorm.weight"),
            vec![th],
            Fill::Ones,
        );
        add(
            format!("{p}.mlp.gate_proj.weight"),
            vec![ti, th],
            Fill::Random,
        );
        add(
            format!("{p}.mlp.up_proj.weight"),
            vec![ti, th],
            Fill::Random,
        );
        add(
            format!("{p}.mlp.down_proj.weight"),
            vec![th, ti],
            Fill::Random,
        );
    }
    add("model.text_model.norm.weight".into(), vec![th], Fill::Ones);
    if !d.tied {
        add("lm_head.weight".into(), vec![d.vocab, th], Fill::Random);
    }
    out
}

/// FNV-1a, so each tensor's values depend only on the seed and its name.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `specs` as a safetensors file: header, then each tensor's little-endian bytes in
/// order. Returns the file size.
pub fn write_safetensors(
    out: &mut impl Write,
    specs: &[TensorSpec],
    dtype: SynthDtype,
    seed: u64,
) -> std::io::Result<u64> {
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut offset = 0usize;
    for s in specs {
        let end = offset + s.len() * dtype.bytes();
        let shape: Vec<String> = s.shape.iter().map(|x| x.to_string()).collect();
        header.push_str(&format!(
            ",\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            s.name,
            dtype.safetensors_name(),
            shape.join(",")
        ));
        offset = end;
    }
    header.push('}');
    // The data starts 8-byte aligned (the header is padded with spaces, as the format allows).
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(header.as_bytes())?;

    // Uniform on [-a, a] has standard deviation a / √3.
    let amplitude = INIT_STD * 3f32.sqrt();
    let mut buf = Vec::with_capacity(1 << 20);
    for s in specs {
        let mut rng = Rng(seed ^ name_hash(&s.name));
        let mut remaining = s.len();
        while remaining > 0 {
            let n = remaining.min(1 << 18);
            buf.clear();
            for _ in 0..n {
                let x = match s.fill {
                    Fill::Ones => 1.0,
                    Fill::Zeros => 0.0,
                    // 24 random bits → [-1, 1).
                    Fill::Random => {
                        ((rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * amplitude
                    }
                };
                match dtype {
                    SynthDtype::F32 => buf.extend_from_slice(&x.to_le_bytes()),
                    SynthDtype::F16 => buf.extend_from_slice(&half::f16::from_f32(x).to_le_bytes()),
                }
            }
            out.write_all(&buf)?;
            remaining -= n;
        }
    }
    Ok(8 + header.len() as u64 + offset as u64)
}

/// The SmolVLM tokenizer's layout on top of a SmolLM `tokenizer.json` (49,152 tokens): the 128
/// added tokens at ids 49152..49280 (`<global-img>`, the 36 `<row_r_col_c>`,
/// `<fake_token_around_image>` 49189, `<image>` 49190, reserved fillers, `<end_of_utterance>`
/// 49279), each in the BPE vocabulary and as a special added token.
pub fn smolvlm_tokenizer(smollm: &[u8]) -> Result<Vec<u8>, VlmError> {
    let bad = |m: &str| VlmError::Tokenizer(format!("base tokenizer.json: {m}"));
    let mut v: serde_json::Value =
        serde_json::from_slice(smollm).map_err(|e| bad(&format!("not valid JSON: {e}")))?;
    let mut names = vec!["<global-img>".to_string()];
    for r in 1..=6 {
        for c in 1..=6 {
            names.push(format!("<row_{r}_col_{c}>"));
        }
    }
    names.push("<fake_token_around_image>".into());
    names.push("<image>".into());
    while names.len() < 127 {
        names.push(format!("<|reserved_special_token_{}|>", names.len() - 39));
    }
    names.push("<end_of_utterance>".into());
    let vocab = v
        .pointer_mut("/model/vocab")
        .and_then(|x| x.as_object_mut())
        .ok_or_else(|| bad("no model.vocab object"))?;
    if vocab.len() != BASE_VOCAB {
        return Err(bad(&format!(
            "model.vocab has {} tokens, expected SmolLM's {BASE_VOCAB}",
            vocab.len()
        )));
    }
    for (i, name) in names.iter().enumerate() {
        vocab.insert(name.clone(), (BASE_VOCAB + i).into());
    }
    let added = v
        .get_mut("added_tokens")
        .and_then(|x| x.as_array_mut())
        .ok_or_else(|| bad("no added_tokens list"))?;
    for (i, name) in names.iter().enumerate() {
        added.push(serde_json::json!({
            "id": BASE_VOCAB + i, "content": name, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    }
    serde_json::to_vec(&v).map_err(|e| VlmError::Tokenizer(e.to_string()))
}

/// What [`write_checkpoint`] wrote.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    pub parameters: u64,
    pub tensors: usize,
    pub model_bytes: u64,
}

/// Writes a complete checkpoint folder for `model` (`256m`/`500m`) into `dir` (created if
/// missing). `smollm_tokenizer` is a SmolLM `tokenizer.json` (see [`smolvlm_tokenizer`]).
pub fn write_checkpoint(
    dir: &Path,
    model: &str,
    dtype: SynthDtype,
    seed: u64,
    smollm_tokenizer: &[u8],
) -> Result<SynthSummary, VlmError> {
    let config = known_config(model)?;
    let dims = Idefics3Config::from_json(&config.to_string())?.dims()?;
    let tokenizer = smolvlm_tokenizer(smollm_tokenizer)?;
    let io = |path: &Path, e: std::io::Error| VlmError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))
    };
    let pretty =
        serde_json::to_string_pretty(&config).map_err(|e| VlmError::Config(e.to_string()))?;
    write(CONFIG_FILE, pretty.as_bytes())?;
    write(PREPROCESSOR_FILE, PREPROCESSOR_JSON.as_bytes())?;
    write(TOKENIZER_FILE, &tokenizer)?;

    let specs = tensor_specs(&dims);
    // Written under a temporary name and renamed, so a half-written file is never mistaken
    // for a checkpoint.
    let path = dir.join(MODEL_FILE);
    let partial = dir.join(format!("{MODEL_FILE}.partial"));
    let file = std::fs::File::create(&partial).map_err(|e| io(&partial, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 22, file);
    let model_bytes = write_safetensors(&mut out, &specs, dtype, seed)
        .and_then(|n| out.flush().map(|_| n))
        .map_err(|e| io(&partial, e))?;
    drop(out);
    std::fs::rename(&partial, &path).map_err(|e| io(&path, e))?;
    Ok(SynthSummary {
        parameters: specs.iter().map(|s| s.len() as u64).sum(),
        tensors: specs.len(),
        model_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_cover_every_parameter_of_both_models() {
        for model in MODELS {
            let config = known_config(model).unwrap();
            let dims = Idefics3Config::from_json(&config.to_string())
                .unwrap()
                .dims()
                .unwrap();
            let total: u64 = tensor_specs(&dims).iter().map(|s| s.len() as u64).sum();
            assert_eq!(total, dims.parameter_count(), "{model}");
        }
    }

    #[test]
    fn written_tensors_load_into_the_model() {
        // The tiny test config (both head layouts): every tensor the loader reads is written,
        // with the shapes it expects, and the forward pass stays finite.
        for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/vlm")
                .join(name);
            let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
            let config = Idefics3Config::from_json(&text).unwrap();
            let specs = tensor_specs(&config.dims().unwrap());
            for dtype in [SynthDtype::F32, SynthDtype::F16] {
                let mut bytes = Vec::new();
                write_safetensors(&mut bytes, &specs, dtype, 3).unwrap();
                let device = burn::tensor::Device::flex();
                let model = super::super::Idefics3::load(&config, &bytes, &device).unwrap();
                let logits = model.forward(&[1, 2, 3], None).unwrap();
                let values: Vec<f32> = logits.into_data().iter::<f32>().collect();
                assert!(values.iter().all(|x| x.is_finite()), "{name} {dtype:?}");
            }
        }
    }

    #[test]
    fn tokenizer_has_smolvlm_ids() {
        let base = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/vlm/smollm_tokenizer/tokenizer.json"),
        )
        .unwrap();
        let t =
            super::super::tokenizer::VlmTokenizer::from_bytes(&smolvlm_tokenizer(&base).unwrap())
                .unwrap();
        assert!(t.missing_smolvlm_tokens().is_empty());
        assert_eq!(t.token_id("<image>"), Some(49190));
        assert_eq!(t.token_id("<fake_token_around_image>"), Some(49189));
        assert_eq!(t.token_id("<end_of_utterance>"), Some(49279));
        assert_eq!(t.token_id("<global-img>"), Some(49152));
        assert_eq!(t.vocab_size(), 49280);
        // An added token encodes to one id, text around it as before.
        let ids = t.encode("a<image>b", false).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[1], 49190);
        assert!(smolvlm_tokenizer(b"{}").is_err());
    }

    #[test]
    fn safetensors_parse_and_are_deterministic() {
        let specs = vec![
            TensorSpec {
                name: "a".into(),
                shape: vec![3, 5],
                fill: Fill::Random,
            },
            TensorSpec {
                name: "b".into(),
                shape: vec![7],
                fill: Fill::Ones,
            },
        ];
        for dtype in [SynthDtype::F32, SynthDtype::F16] {
            let mut one = Vec::new();
            let n = write_safetensors(&mut one, &specs, dtype, 7).unwrap();
            assert_eq!(n as usize, one.len());
            let mut two = Vec::new();
            write_safetensors(&mut two, &specs, dtype, 7).unwrap();
            assert_eq!(one, two);
            let st = safetensors::SafeTensors::deserialize(&one).unwrap();
            assert_eq!(st.tensor("a").unwrap().shape(), [3, 5]);
            assert_eq!(st.tensor("b").unwrap().shape(), [7]);
        }
        assert!(SynthDtype::parse("int4").is_err());
        assert!(known_config("7b").is_err());
    }
}
