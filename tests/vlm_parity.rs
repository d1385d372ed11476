//! Parity of the burn Idefics3 against transformers' reference outputs, label scoring and
//! loading errors. Data: tests/data/vlm.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use emolens::vlm::check::{Reference, TOLERANCE, load_dir, run_check};
use emolens::vlm::idefics3::read_f32;
use emolens::vlm::{GenerationConfig, Idefics3, Idefics3Config, Sampling, VlmError};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vlm")
        .join(name)
}

fn check(name: &str) {
    let device = Device::flex();
    let r = pollster::block_on(run_check(&data_dir(name), &device)).expect("check runs");
    println!(
        "{name}: image_features {:.3e}, logits {:.3e}",
        r.image_features_max_diff, r.logits_max_diff
    );
    assert!(r.image_features_max_diff <= TOLERANCE, "{r:?}");
    assert!(r.logits_max_diff <= TOLERANCE, "{r:?}");
    assert_eq!(r.tokens, r.expected_tokens);
}

#[test]
fn parity_untied_one_image() {
    check("smolvlm_tiny");
}

#[test]
fn parity_tied_gqa_two_images() {
    check("smolvlm_tiny_tied");
}

/// Linear layers' matrices in f16 or 8-bit on the device (half or about a quarter of the
/// memory): image features and logits stay within 1e-2 of transformers' f32 reference and the
/// greedy tokens are the same.
#[test]
fn reduced_precision_weight_matrices_stay_close() {
    reduced_precision_on(&Device::flex());
}

/// The same on a wgpu adapter (see [`parity_wgpu`]).
#[test]
#[ignore]
fn reduced_precision_weight_matrices_stay_close_wgpu() {
    reduced_precision_on(&Device::wgpu(burn::tensor::DeviceKind::Cpu));
}

fn reduced_precision_on(device: &Device) {
    use emolens::vlm::WeightPrecision;
    for (name, precision) in [
        ("smolvlm_tiny", WeightPrecision::F16),
        ("smolvlm_tiny_tied", WeightPrecision::F16),
        ("smolvlm_tiny", WeightPrecision::Q8),
        ("smolvlm_tiny_tied", WeightPrecision::Q8),
    ] {
        let dir = data_dir(name);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let config = Idefics3Config::from_json(&text).unwrap();
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let model = Idefics3::load_with(&config, &bytes, device, precision).unwrap();
        let reference = Reference::load(&dir).unwrap();
        let r =
            pollster::block_on(emolens::vlm::check::compare(&model, &reference, device)).unwrap();
        println!(
            "{name} {precision:?} matrices: image_features {:.3e}, logits {:.3e}",
            r.image_features_max_diff, r.logits_max_diff
        );
        assert!(r.image_features_max_diff <= 1e-2, "{r:?}");
        assert!(r.logits_max_diff <= 1e-2, "{r:?}");
        assert_eq!(r.tokens, r.expected_tokens);
    }
    assert!(WeightPrecision::parse("int4").is_err());
}

fn load(name: &str) -> (Idefics3, Reference, Device) {
    let device = Device::flex();
    let dir = data_dir(name);
    let (_, model) = load_dir(&dir, &device).expect("model loads");
    let reference = Reference::load(&dir).expect("reference loads");
    (model, reference, device)
}

/// Sum of log p(label[j] | prompt, label[..j]) from one uncached forward over prompt + label.
fn full_forward_logprob(
    model: &Idefics3,
    reference: &Reference,
    device: &Device,
    label: &[u32],
) -> f32 {
    let prompt = &reference.input_ids;
    let ids: Vec<u32> = prompt.iter().chain(label).copied().collect();
    let logits = model
        .forward(&ids, Some(reference.pixel_tensor(device)))
        .unwrap();
    let vocab = model.dims().vocab;
    let logp = pollster::block_on(read_f32(log_softmax(logits, 2))).unwrap();
    label
        .iter()
        .enumerate()
        .map(|(j, &t)| logp[(prompt.len() - 1 + j) * vocab + t as usize])
        .sum()
}

#[test]
fn label_scores_match_full_forward() {
    for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
        let (model, reference, device) = load(name);
        let labels = vec![
            vec![68, 170, 245],
            vec![14],
            vec![10, 11, 12, 13],
            vec![3, 3],
        ];
        let scores = pollster::block_on(model.score_labels(
            &reference.input_ids,
            Some(reference.pixel_tensor(&device)),
            &labels,
        ))
        .unwrap();
        assert_eq!(scores.len(), labels.len());
        for (label, score) in labels.iter().zip(&scores) {
            let expected = full_forward_logprob(&model, &reference, &device, label);
            assert!(
                (score - expected).abs() <= 1e-4,
                "{name} {label:?}: cached {score} vs full {expected}"
            );
            assert!(*score <= 0.0);
        }
    }
}

#[test]
fn label_probabilities_sum_to_one() {
    let (model, reference, device) = load("smolvlm_tiny");
    let vocab = model.dims().vocab as u32;
    let pixels = || Some(reference.pixel_tensor(&device));
    let prompt = &reference.input_ids;

    // Single tokens cover the whole distribution.
    let singles: Vec<Vec<u32>> = (0..vocab).map(|t| vec![t]).collect();
    let s = pollster::block_on(model.score_labels(prompt, pixels(), &singles)).unwrap();
    let total: f64 = s.iter().map(|&x| (x as f64).exp()).sum();
    assert!((total - 1.0).abs() < 1e-4, "sum {total}");

    // Over every second token, p(a, b) sums to p(a).
    let a = 68;
    let pairs: Vec<Vec<u32>> = (0..vocab).map(|b| vec![a, b]).collect();
    let p = pollster::block_on(model.score_labels(prompt, pixels(), &pairs)).unwrap();
    let total: f64 = p.iter().map(|&x| (x as f64).exp()).sum();
    let pa = (s[a as usize] as f64).exp();
    assert!((total - pa).abs() < 1e-4, "sum {total} vs p(a) {pa}");
}

#[test]
fn sampling_is_seeded_and_streams_tokens() {
    let (model, reference, device) = load("smolvlm_tiny_tied");
    let config = GenerationConfig {
        max_new_tokens: 6,
        sampling: Sampling::TopP {
            temperature: 1.5,
            top_p: 0.9,
            seed: 42,
        },
        stop_tokens: Vec::new(),
    };
    let run = |streamed: &mut Vec<u32>| {
        pollster::block_on(model.generate(
            &reference.input_ids,
            Some(reference.pixel_tensor(&device)),
            &config,
            |t| {
                streamed.push(t);
                true
            },
        ))
        .unwrap()
    };
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let a = run(&mut s1);
    let b = run(&mut s2);
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "same seed, same tokens");
    assert_eq!(a, s1, "callback sees every token in order");

    // The callback can stop generation early.
    let tokens = pollster::block_on(model.generate(
        &reference.input_ids,
        Some(reference.pixel_tensor(&device)),
        &GenerationConfig {
            sampling: Sampling::Greedy,
            ..config.clone()
        },
        |_| false,
    ))
    .unwrap();
    assert_eq!(tokens.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Loading errors
// ---------------------------------------------------------------------------------------------

/// A fresh temp copy of `smolvlm_tiny` with `config.json` and `model.safetensors` replaced.
fn temp_model(tag: &str, config: &str, model: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emolens_vlm_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), model).unwrap();
    dir
}

fn original() -> (String, Vec<u8>) {
    let dir = data_dir("smolvlm_tiny");
    (
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        std::fs::read(dir.join("model.safetensors")).unwrap(),
    )
}

/// Re-serializes the checkpoint after `edit` has changed its list of tensors.
fn rewrite<'a>(bytes: &'a [u8], edit: impl FnOnce(&mut Vec<(String, TensorView<'a>)>)) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<(String, TensorView<'a>)> = st.tensors();
    edit(&mut tensors);
    safetensors::serialize(tensors, None).unwrap()
}

fn load_err(tag: &str, config: &str, model: &[u8]) -> VlmError {
    let dir = temp_model(tag, config, model);
    let result = load_dir(&dir, &Device::flex());
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(_) => panic!("{tag}: loading should fail"),
        Err(e) => {
            println!("{tag}: {e}");
            e
        }
    }
}

#[test]
fn truncated_file_is_an_error() {
    let (config, bytes) = original();
    let e = load_err("truncated", &config, &bytes[..bytes.len() / 2]);
    assert!(matches!(e, VlmError::SafeTensors(_)), "{e:?}");
    let e = load_err("tiny", &config, &bytes[..5]);
    assert!(matches!(e, VlmError::SafeTensors(_)), "{e:?}");
}

#[test]
fn missing_tensor_is_an_error() {
    let (config, bytes) = original();
    let gone = "model.text_model.layers.1.mlp.up_proj.weight";
    let edited = rewrite(&bytes, |t| t.retain(|(n, _)| n != gone));
    let e = load_err("missing", &config, &edited);
    assert!(
        matches!(&e, VlmError::MissingTensor(n) if n == gone),
        "{e:?}"
    );
}

#[test]
fn unsupported_dtype_is_an_error() {
    let (config, bytes) = original();
    let name = "model.text_model.norm.weight";
    let ints = vec![0u8; 64 * 4];
    let edited = rewrite(&bytes, |t| {
        for (n, v) in t.iter_mut() {
            if n == name {
                *v = TensorView::new(Dtype::I32, vec![64], &ints).unwrap();
            }
        }
    });
    let e = load_err("dtype", &config, &edited);
    assert!(
        matches!(&e, VlmError::Dtype { name: n, .. } if n == name),
        "{e:?}"
    );
}

#[test]
fn half_precision_weights_load() {
    // F16 and BF16 checkpoints are converted to f32 and still give close logits.
    let (config, bytes) = original();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for dtype in [Dtype::F16, Dtype::BF16] {
        let converted: Vec<(String, Vec<u8>, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| {
                let data: Vec<u8> = v
                    .data()
                    .chunks_exact(4)
                    .flat_map(|c| {
                        let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        match dtype {
                            Dtype::F16 => half::f16::from_f32(x).to_le_bytes(),
                            _ => half::bf16::from_f32(x).to_le_bytes(),
                        }
                    })
                    .collect();
                (n, data, v.shape().to_vec())
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = converted
            .iter()
            .map(|(n, d, s)| (n.clone(), TensorView::new(dtype, s.clone(), d).unwrap()))
            .collect();
        let edited = safetensors::serialize(views, None).unwrap();
        let cfg = Idefics3Config::from_json(&config).unwrap();
        let model = Idefics3::load(&cfg, &edited, &Device::flex()).expect("half loads");
        let reference = Reference::load(&data_dir("smolvlm_tiny")).unwrap();
        let device = Device::flex();
        let logits = model
            .forward(&reference.input_ids, Some(reference.pixel_tensor(&device)))
            .unwrap();
        let logits = pollster::block_on(read_f32(logits)).unwrap();
        let diff = logits
            .iter()
            .zip(&reference.logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 0.1, "{dtype:?}: logits differ by {diff}");
    }
}

#[test]
fn inconsistent_config_is_an_error() {
    let (config, bytes) = original();
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();

    // Heads that do not divide into key/value groups: rejected before any weight is read.
    json["text_config"]["num_key_value_heads"] = 3.into();
    let e = load_err("kvheads", &json.to_string(), &bytes);
    assert!(matches!(e, VlmError::Config(_)), "{e:?}");

    // A hidden size that disagrees with the weights: a shape error names the tensor.
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["text_config"]["hidden_size"] = 48.into();
    let e = load_err("hidden", &json.to_string(), &bytes);
    assert!(matches!(e, VlmError::Shape { .. }), "{e:?}");

    // Patches per side not divisible by the pixel-shuffle factor.
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["scale_factor"] = 3.into();
    let e = load_err("scale", &json.to_string(), &bytes);
    assert!(matches!(e, VlmError::Config(_)), "{e:?}");

    // Not JSON at all.
    let e = load_err("json", "{not json", &bytes);
    assert!(matches!(e, VlmError::Config(_)), "{e:?}");
}

#[test]
fn bad_inputs_are_errors() {
    let (model, reference, device) = load("smolvlm_tiny");
    // Image tokens without images.
    let e = model.forward(&reference.input_ids, None).unwrap_err();
    assert!(matches!(e, VlmError::Input(_)), "{e:?}");
    // Wrong image size.
    let small = Tensor::<4>::zeros([1, 3, 16, 16], &device);
    let e = model
        .forward(&reference.input_ids, Some(small))
        .unwrap_err();
    assert!(matches!(e, VlmError::Input(_)), "{e:?}");
    // Token outside the vocabulary.
    let e = model.forward(&[1, 9999], None).unwrap_err();
    assert!(matches!(e, VlmError::Input(_)), "{e:?}");
    let e =
        pollster::block_on(model.score_labels(&[1, 2], None, &[vec![3], vec![9999]])).unwrap_err();
    assert!(matches!(e, VlmError::Input(_)), "{e:?}");
    // An empty label has probability one.
    let s = pollster::block_on(model.score_labels(&[1, 2], None, &[vec![]])).unwrap();
    assert_eq!(s, vec![0.0]);
}

/// Same parity on wgpu (a GPU, or lavapipe's software Vulkan); opt-in because it needs a
/// Vulkan/Metal/DX12 adapter: `cargo test --release --test vlm_parity -- --ignored`.
#[test]
#[ignore]
fn parity_wgpu() {
    use burn::tensor::DeviceKind;
    for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
        let device = Device::wgpu(DeviceKind::Cpu);
        let r = pollster::block_on(run_check(&data_dir(name), &device)).expect("check runs");
        println!(
            "wgpu {name}: image_features {:.3e}, logits {:.3e}, tokens {:?}",
            r.image_features_max_diff, r.logits_max_diff, r.tokens
        );
        assert!(r.passed(), "{r:?}");
    }
}
