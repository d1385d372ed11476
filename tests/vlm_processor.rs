//! SmolVLM processor, chat layout, tokenizer, label scoring from text and loading from bytes.
//! Data: tests/data/vlm.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use emolens::chat::{Message, Part, Role};
use emolens::frames::RgbImage;
use emolens::labels::LabelSet;
use emolens::vlm::chat::{self, END_OF_UTTERANCE, FAKE_TOKEN, GLOBAL_IMG, IMAGE_TOKEN};
use emolens::vlm::config::known;
use emolens::vlm::load::{LocalModel, VlmFiles, load_from_bytes, prepare};
use emolens::vlm::processor::ProcessorConfig;
use emolens::vlm::score::{label_token_ids, score_label_ids, score_label_texts};
use emolens::vlm::tokenizer::{TextStream, VlmTokenizer, smolvlm_special_tokens};
use emolens::vlm::{GenerationConfig, Idefics3Config, Sampling, VlmError};
use safetensors::SafeTensors;

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vlm")
        .join(name)
}

fn solid(width: usize, height: usize, rgb: [u8; 3]) -> RgbImage {
    let data = (0..width * height).flat_map(|_| rgb).collect();
    RgbImage::new(width, height, data).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Processor
// ---------------------------------------------------------------------------------------------

#[test]
fn smolvlm_defaults() {
    let c = ProcessorConfig::default();
    assert_eq!(c.size.longest_edge, 2048);
    assert_eq!(c.tile_size(), 512);
    assert!((c.rescale_factor - 1.0 / 255.0).abs() < 1e-12);
    assert_eq!(c.image_mean, [0.5; 3]);
    // A real preprocessor_config.json's extra fields are ignored, given ones are read.
    let c = ProcessorConfig::from_json(
        r#"{"do_image_splitting": true, "resample": 1, "max_image_size": {"longest_edge": 384},
            "size": {"longest_edge": 1536}, "image_processor_type": "Idefics3ImageProcessor"}"#,
    )
    .unwrap();
    assert_eq!((c.size.longest_edge, c.tile_size()), (1536, 384));
}

#[test]
fn tile_counts_for_smolvlm_sizes() {
    let c = ProcessorConfig::default();
    // (width, height) → (rows, cols); worked through transformers' arithmetic by hand.
    let cases = [
        ((640, 480), (3, 4)),  // → 2048×1536
        ((100, 100), (4, 4)),  // small images are scaled up to 2048
        ((300, 1000), (4, 2)), // → 614×2048 → 1024×2048
        ((4000, 10), (1, 4)),  // → 2048×6 → 2048×512
    ];
    for ((w, h), grid) in cases {
        assert_eq!(c.grid(h, w), grid, "{w}x{h}");
    }
    // Full processing of one of them: 12 tiles + the global image, all 512².
    let p = c.process(&solid(640, 480, [10, 20, 30])).unwrap();
    assert_eq!((p.rows, p.cols, p.tiles, p.tile_size), (3, 4, 13, 512));
    assert_eq!(p.pixel_values.len(), 13 * 3 * 512 * 512);

    let no_split = ProcessorConfig {
        do_image_splitting: false,
        ..ProcessorConfig::default()
    };
    let p = no_split.process(&solid(640, 480, [0, 0, 0])).unwrap();
    assert_eq!((p.rows, p.cols, p.tiles), (0, 0, 1));
}

fn small_config() -> ProcessorConfig {
    ProcessorConfig::from_json(
        r#"{"size": {"longest_edge": 64}, "max_image_size": {"longest_edge": 32}}"#,
    )
    .unwrap()
}

#[test]
fn small_tiles_and_global_image() {
    let c = small_config();
    // 40×20 → 64×32 → 1 row, 2 cols + global.
    let p = c.process(&solid(40, 20, [0, 0, 0])).unwrap();
    assert_eq!((p.rows, p.cols, p.tiles, p.tile_size), (1, 2, 3, 32));
    // 20×20 → 64×64 → 2×2 + global.
    let p = c.process(&solid(20, 20, [0, 0, 0])).unwrap();
    assert_eq!((p.rows, p.cols, p.tiles), (2, 2, 5));
    assert!(
        c.process(&RgbImage {
            width: 0,
            height: 0,
            data: vec![]
        })
        .is_err()
    );
}

#[test]
fn normalisation_and_channel_order() {
    let c = small_config();
    let p = c.process(&solid(50, 50, [255, 0, 128])).unwrap();
    let n = 32 * 32;
    for tile in p.pixel_values.chunks(3 * n) {
        // Lanczos keeps a flat image flat (weights sum to 1).
        assert!(tile[..n].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(tile[n..2 * n].iter().all(|&v| (v + 1.0).abs() < 1e-6));
        let mid = (128.0 / 255.0 - 0.5) / 0.5;
        assert!(tile[2 * n..].iter().all(|&v| (v - mid).abs() < 1e-6));
    }

    // Left half red, right half blue, split 1×2: tile 0 is red, tile 1 is blue, tiles are
    // row-major, the global image holds both.
    let (w, h) = (64, 32);
    let data = (0..w * h)
        .flat_map(|i| {
            if i % w < w / 2 {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            }
        })
        .collect();
    let p = c.process(&RgbImage::new(w, h, data).unwrap()).unwrap();
    assert_eq!((p.rows, p.cols, p.tiles), (1, 2, 3));
    let tile =
        |t: usize, ch: usize, y: usize, x: usize| p.pixel_values[t * 3 * n + ch * n + y * 32 + x];
    assert!(tile(0, 0, 16, 10) > 0.99 && tile(0, 2, 16, 10) < -0.99);
    assert!(tile(1, 0, 16, 20) < -0.99 && tile(1, 2, 16, 20) > 0.99);
    assert!(tile(2, 0, 16, 2) > 0.99 && tile(2, 2, 16, 29) > 0.99);
}

// ---------------------------------------------------------------------------------------------
// Chat template and image layout
// ---------------------------------------------------------------------------------------------

#[test]
fn chat_template_matches_smolvlm() {
    let msgs = vec![
        Message::text(Role::System, "Be brief."),
        Message::user(vec![
            Part::PassedImage,
            Part::Text("What emotion is shown?".into()),
        ]),
    ];
    assert_eq!(
        chat::apply_chat_template(&msgs, true),
        "<|im_start|>System: Be brief.<end_of_utterance>\nUser:<image>What emotion is shown?<end_of_utterance>\nAssistant:"
    );
}

#[test]
fn image_layout_strings() {
    let single = chat::image_prompt(0, 0, 2);
    assert_eq!(
        single,
        format!("{FAKE_TOKEN}{GLOBAL_IMG}{IMAGE_TOKEN}{IMAGE_TOKEN}{FAKE_TOKEN}")
    );
    let split = chat::image_prompt(2, 2, 1);
    let tile = |r, c| format!("{FAKE_TOKEN}<row_{r}_col_{c}>{IMAGE_TOKEN}");
    assert_eq!(
        split,
        format!(
            "{}{}\n{}{}\n\n{FAKE_TOKEN}{GLOBAL_IMG}{IMAGE_TOKEN}{FAKE_TOKEN}",
            tile(1, 1),
            tile(1, 2),
            tile(2, 1),
            tile(2, 2)
        )
    );
}

fn smolvlm_tokenizer() -> VlmTokenizer {
    let bytes = std::fs::read(data_dir("smollm_tokenizer/tokenizer.json")).unwrap();
    let mut t = VlmTokenizer::from_bytes(&bytes).unwrap();
    assert_eq!(
        t.add_smolvlm_tokens().unwrap(),
        smolvlm_special_tokens().len()
    );
    t
}

#[test]
fn prompt_layout_token_counts() {
    let tok = smolvlm_tokenizer();
    let image_id = tok.token_id(IMAGE_TOKEN).unwrap();
    let seq_len = 64; // SmolVLM-256M: (512 / 16)² / 4²
    let c = ProcessorConfig::default();
    let images = vec![
        c.process(&solid(640, 480, [1, 2, 3])).unwrap(),
        ProcessorConfig {
            do_image_splitting: false,
            ..c.clone()
        }
        .process(&solid(64, 64, [1, 2, 3]))
        .unwrap(),
    ];
    let msgs = vec![Message::user(vec![
        Part::PassedImage,
        Part::Text("Compare".into()),
        Part::PassedImage,
    ])];
    let template = chat::apply_chat_template(&msgs, true);
    let text = chat::expand_images(&template, &images, seq_len).unwrap();
    let ids = tok.encode(&text, true).unwrap();
    assert_eq!(
        ids.iter().filter(|&&t| t == image_id).count(),
        (13 + 1) * seq_len
    );
    // Every image's layout costs exactly what image_token_count says in SmolLM's vocabulary
    // (the "\n\n" before the global image is one token).
    let bare = tok
        .encode(
            &chat::apply_chat_template(&msgs, true).replace(IMAGE_TOKEN, ""),
            true,
        )
        .unwrap();
    let expected = bare.len()
        + chat::image_token_count(3, 4, seq_len)
        + chat::image_token_count(0, 0, seq_len);
    assert_eq!(ids.len(), expected);
    assert_eq!(ids[0], 1, "<|im_start|>");
    assert!(chat::expand_images(&template, &images[..1], seq_len).is_err());
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

#[test]
fn tokenizer_round_trip_and_special_tokens() {
    let tok = VlmTokenizer::from_bytes(
        &std::fs::read(data_dir("smollm_tokenizer/tokenizer.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    for text in [
        "Hello world!",
        "  The person looks surprised, then happy. 12345",
        "émotions: 😀 — «ça va»\n\ttab",
    ] {
        let ids = tok.encode(text, true).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
    assert_eq!(tok.encode("<|endoftext|>", false).unwrap(), vec![0]);
    assert_eq!(tok.encode("<|im_start|>", false).unwrap(), vec![1]);
    assert_eq!(tok.encode("<|im_end|>", false).unwrap(), vec![2]);
    assert!(tok.token_id(IMAGE_TOKEN).is_none());
    assert_eq!(tok.missing_smolvlm_tokens().len(), 40);

    let tok = smolvlm_tokenizer();
    assert_eq!(tok.missing_smolvlm_tokens().len(), 0);
    for special in smolvlm_special_tokens() {
        let ids = tok.encode(&special, false).unwrap();
        assert_eq!(ids.len(), 1, "{special}");
        assert!(ids[0] >= 49152);
        // Also inside text, with no space around it.
        let ids = tok.encode(&format!("a{special}b"), false).unwrap();
        assert!(ids.contains(&tok.token_id(&special).unwrap()), "{special}");
    }
    let ids = tok.encode("User: hi<end_of_utterance>", false).unwrap();
    assert_eq!(
        *ids.last().unwrap(),
        tok.token_id(END_OF_UTTERANCE).unwrap()
    );
    assert_eq!(tok.decode(&ids, true).unwrap(), "User: hi");
}

#[test]
fn text_stream_waits_for_whole_characters() {
    let tok = smolvlm_tokenizer();
    let text = "ok 😀 done";
    let ids = tok.encode(text, false).unwrap();
    let mut stream = TextStream::new(&tok);
    let pieces: Vec<String> = ids.iter().map(|&i| stream.push(i).unwrap()).collect();
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')));
}

// ---------------------------------------------------------------------------------------------
// Tiny checkpoint: loading from bytes and label scoring
// ---------------------------------------------------------------------------------------------

/// GPT-2's byte → printable character table used by byte-level BPE.
fn byte_chars() -> Vec<char> {
    let mut bytes: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars = bytes.clone();
    let mut extra = 0;
    for b in 0..256 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec![' '; 256];
    for (b, c) in bytes.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).unwrap();
    }
    table
}

/// A byte-level tokenizer over the tiny model's 256 ids: 0–2 ChatML specials, bytes 0–244 as
/// ids 3–247 (no merges), then SmolVLM's tokens for up to 1×2 tiles, with `<image>` = 255 as in
/// its config.
fn tiny_tokenizer_json() -> String {
    let specials = [
        (0, "<|endoftext|>"),
        (1, "<|im_start|>"),
        (2, "<|im_end|>"),
        (248, "<row_1_col_2>"),
        (249, "<row_2_col_1>"),
        (250, "<row_2_col_2>"),
        (251, END_OF_UTTERANCE),
        (252, FAKE_TOKEN),
        (253, GLOBAL_IMG),
        (254, "<row_1_col_1>"),
        (255, IMAGE_TOKEN),
    ];
    let mut vocab = serde_json::Map::new();
    for (b, c) in byte_chars().iter().enumerate().take(245) {
        vocab.insert(c.to_string(), (b + 3).into());
    }
    let mut added = Vec::new();
    for (id, s) in specials {
        vocab.insert(s.to_string(), id.into());
        added.push(
            serde_json::json!({"id": id, "content": s, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        );
    }
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "vocab": vocab, "merges": []}
    })
    .to_string()
}

const TINY_PREPROCESSOR: &str =
    r#"{"size": {"longest_edge": 64}, "max_image_size": {"longest_edge": 32}}"#;

fn tiny_files() -> VlmFiles {
    let dir = data_dir("smolvlm_tiny");
    VlmFiles {
        config: Some(std::fs::read(dir.join("config.json")).unwrap()),
        model: Some(std::fs::read(dir.join("model.safetensors")).unwrap()),
        tokenizer: Some(tiny_tokenizer_json().into_bytes()),
        preprocessor: Some(TINY_PREPROCESSOR.as_bytes().to_vec()),
    }
}

fn tiny_model() -> LocalModel {
    load_from_bytes(tiny_files(), &Device::flex()).unwrap()
}

#[test]
fn tiny_tokenizer_fits_the_tiny_model() {
    let m = tiny_model();
    assert_eq!(m.tokenizer.token_id(IMAGE_TOKEN), Some(255));
    assert_eq!(m.stop_tokens, vec![2, 251]);
    let ids = m.tokenizer.encode(" happy", false).unwrap();
    assert_eq!(
        ids,
        b" happy".iter().map(|&b| b as u32 + 3).collect::<Vec<_>>()
    );
    assert_eq!(m.memory.parameters, m.model.dims().parameter_count());
    assert_eq!(m.memory.device_bytes, 4 * m.memory.parameters);
}

#[test]
fn label_probabilities_from_text_sum_to_one() {
    let m = tiny_model();
    let msgs = vec![Message::user(vec![
        Part::PassedImage,
        Part::Text("Which emotion?".into()),
    ])];
    // 40×20 splits into 1×2 tiles + global: 3 × 4 image tokens.
    let input = m
        .prepare_input(&msgs, &[solid(40, 20, [200, 100, 50])])
        .unwrap();
    assert_eq!(input.images[0].tiles, 3);
    let n_image = input.prompt_ids.iter().filter(|&&t| t == 255).count();
    assert_eq!(n_image, 3 * m.model.dims().tokens_per_image());
    assert!(input.prompt_ids.iter().all(|&t| t < 256));

    let labels = LabelSet::dfew();
    let probs = pollster::block_on(score_label_texts(
        &m.model,
        &m.tokenizer,
        &input.prompt_ids,
        input.pixel_values.clone(),
        &labels,
    ))
    .unwrap();
    assert_eq!(probs.len(), labels.len());
    let total: f64 = probs.iter().sum();
    assert!((total - 1.0).abs() < 1e-9, "sum {total}");
    assert!(probs.iter().all(|&p| p > 0.0 && p < 1.0));

    // Same numbers from the label ids directly.
    let ids = label_token_ids(&m.tokenizer, &labels).unwrap();
    let again = pollster::block_on(score_label_ids(
        &m.model,
        &input.prompt_ids,
        input.pixel_values,
        &ids,
    ))
    .unwrap();
    for (a, b) in probs.iter().zip(&again) {
        assert!((a - b).abs() < 1e-9);
    }
}

#[test]
fn generation_from_chat_streams_text() {
    let m = tiny_model();
    let msgs = vec![Message::user(vec![Part::Text("Hi".into())])];
    let input = m.prepare_input(&msgs, &[]).unwrap();
    assert!(input.pixel_values.is_none());
    let config = GenerationConfig {
        max_new_tokens: 5,
        sampling: Sampling::Greedy,
        stop_tokens: m.stop_tokens.clone(),
    };
    let mut stream = TextStream::new(&m.tokenizer);
    let mut pieces = String::new();
    let tokens = pollster::block_on(m.model.generate(&input.prompt_ids, None, &config, |t| {
        pieces.push_str(&stream.push(t).unwrap());
        true
    }))
    .unwrap();
    assert!(!tokens.is_empty());
    assert_eq!(
        pieces,
        m.tokenizer
            .decode(&tokens, true)
            .unwrap()
            .trim_end_matches('\u{FFFD}')
    );
}

// ---------------------------------------------------------------------------------------------
// Loading errors and parameter counts
// ---------------------------------------------------------------------------------------------

fn prepare_err(files: VlmFiles) -> VlmError {
    match prepare(files) {
        Ok(_) => panic!("loading should fail"),
        Err(e) => e,
    }
}

#[test]
fn loading_errors_from_bytes() {
    for (name, strip) in [
        ("config.json", 0),
        ("model.safetensors", 1),
        ("tokenizer.json", 2),
    ] {
        let mut f = tiny_files();
        match strip {
            0 => f.config = None,
            1 => f.model = None,
            _ => f.tokenizer = None,
        }
        let e = prepare_err(f);
        assert!(matches!(&e, VlmError::MissingFile(n) if n == name), "{e}");
        assert!(e.to_string().contains(name));
    }
    // The preprocessor config is optional, but SmolVLM's default 512 px tiles don't fit a
    // 32 px encoder.
    let mut f = tiny_files();
    f.preprocessor = None;
    assert!(matches!(prepare_err(f), VlmError::Config(m) if m.contains("max_image_size")));

    // Unsupported config.
    let mut f = tiny_files();
    let mut cfg: serde_json::Value = serde_json::from_slice(f.config.as_ref().unwrap()).unwrap();
    cfg["text_config"]["hidden_act"] = "gelu".into();
    f.config = Some(cfg.to_string().into_bytes());
    assert!(matches!(prepare_err(f), VlmError::Config(m) if m.contains("hidden_act")));

    // The tokenizer's <image> must be the config's image token.
    let mut f = tiny_files();
    f.tokenizer = Some(std::fs::read(data_dir("smollm_tokenizer/tokenizer.json")).unwrap());
    assert!(matches!(prepare_err(f), VlmError::Config(m) if m.contains("image_token_id")));

    let mut f = tiny_files();
    f.tokenizer = Some(b"{not json".to_vec());
    assert!(matches!(prepare_err(f), VlmError::Tokenizer(_)));

    let mut f = tiny_files();
    f.model = Some(b"garbage".to_vec());
    assert!(matches!(prepare_err(f), VlmError::SafeTensors(_)));

    // An integer tensor is an unsupported dtype, caught before any upload.
    let mut f = tiny_files();
    let bytes = f.model.take().unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = st.tensors();
    let ints = [0u8; 8];
    tensors.push((
        "extra.int".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::I32, vec![2], &ints).unwrap(),
    ));
    f.model = Some(safetensors::serialize(tensors, None).unwrap());
    assert!(
        matches!(prepare_err(f), VlmError::Dtype { name, dtype } if name == "extra.int" && dtype == "I32")
    );
}

#[test]
fn parameter_count_matches_the_checkpoints() {
    for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
        let dir = data_dir(name);
        let config =
            Idefics3Config::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let in_file: u64 = st
            .tensors()
            .iter()
            .map(|(_, v)| v.shape().iter().product::<usize>() as u64)
            .sum();
        assert_eq!(config.parameter_count().unwrap(), in_file, "{name}");
    }
    let p256 = Idefics3Config::from_json(known::SMOLVLM_256M_INSTRUCT)
        .unwrap()
        .parameter_count()
        .unwrap();
    let p500 = Idefics3Config::from_json(known::SMOLVLM_500M_INSTRUCT)
        .unwrap()
        .parameter_count()
        .unwrap();
    assert!((250_000_000..265_000_000).contains(&p256), "{p256}");
    assert!((500_000_000..515_000_000).contains(&p500), "{p500}");
}

/// The whole ask flow on the local VLM: stage 1 generated, the final question and the
/// content-free one scored over the label set, the correction made from those probabilities.
#[test]
fn the_ask_flow_runs_on_the_local_vlm() {
    use emolens::ask::{AskFlow, AskPlan, CorrectionPlan, Question, drive_async};
    use emolens::prompt::{ClipContext, ImageDetail, Keyframe, PromptMode, Segment};
    let m = tiny_model();
    let jpeg =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/faces/happy.jpg"))
            .unwrap();
    let keyframe = |time| Keyframe {
        time,
        width: 0,
        height: 0,
        jpeg: jpeg.clone(),
    };
    let segment = |start: f64, end: f64, keyframe| Segment {
        start,
        end,
        summary: format!("From {start:.2} s to {end:.2} s the lip corners rose."),
        description: None,
        keyframe: Some(keyframe),
    };
    let labels = LabelSet::custom(&["happy", "sad", "fear"], None).unwrap();
    let plan = AskPlan {
        labels: labels.clone(),
        question: Question::Clip {
            clip: ClipContext {
                duration: 2.0,
                fps: 30.0,
                frames: 60,
                frame_width: 64,
                frame_height: 64,
                keyframes: vec![keyframe(0.5), keyframe(1.5)],
                segments: vec![segment(0.0, 1.0, 0), segment(1.0, 2.0, 1)],
                events: Vec::new(),
            },
            mode: PromptMode::Enriched,
            detail: ImageDetail::Low,
            stage1: true,
        },
        permutations: 2,
        seed: None,
        correction: CorrectionPlan::ContentFree,
        max_in_flight: 1,
        text_only: false,
    };
    let run = || {
        let flow = AskFlow::new(plan.clone()).unwrap();
        let (m, labels) = (&m, &labels);
        let answer = |q: emolens::ask::Query| async move { m.answer(&q, labels, 6).await };
        pollster::block_on(drive_async(flow, answer, |_, _| {})).unwrap()
    };
    let out = run();
    let stage1 = out.stage1.as_ref().unwrap();
    assert_eq!(stage1.keys().copied().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(out.result.runs.len(), 2);
    for r in &out.result.runs {
        let p = r.probabilities.as_ref().unwrap();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let corrected = out.corrected.as_ref().expect("content-free correction");
    assert_eq!(corrected.content_free_scores.as_ref().unwrap().len(), 3);
    assert!(out.result.label.is_some());
    // Greedy and closed-set: the same flow gives the same outcome.
    assert_eq!(run(), out);
}
