//! Fuzzing of every parser that reads what a server, a model folder or a user's file hands us:
//! the SSE reader, the answer parser, the tfjs manifest reader, the SmolVLM loading path
//! (config.json, safetensors, tokenizer.json), the calibration CSV and endpoint URLs.
//!
//! Each target mutates seed inputs (byte flips, inserted tokens that parsers care about,
//! deleted and duplicated ranges, splices) with a fixed-seed generator, so every run replays,
//! and checks properties besides "no panic". `cargo test` runs a few thousand inputs per target
//! (seconds); `scripts/fuzz.sh` sets EMOLENS_FUZZ_ITERS (e.g. 1000000) and EMOLENS_FUZZ_SEED.
//! An input that panics is written to target/fuzz-crashes/ and fails the test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use emolens::labels::LabelSet;
use emolens::remote::response::TokenLogprob;
use emolens::remote::sse::{CompletionReader, ResponseLimits, SseParser};
use emolens::remote::{Answer, Endpoint, parse_answer};
use emolens::rng::Rng;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Fragments that steer parsers into their edge cases.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ":",
    ",",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "data: ",
    "data:",
    "event: error",
    "[DONE]",
    ": ping",
    "\u{feff}",
    "İ",
    "\u{212a}",
    "é",
    "😀",
    "嫌悪感",
    "\0",
    "\"label\"",
    "\"scores\"",
    "happy",
    "Happiness",
    "NaN",
    "1e308",
    "-1",
    "0",
    "18446744073709551615",
    "99999999999999999999",
    "null",
    "true",
    "http://",
    "https://",
    "@",
    "?",
    "#",
    "/",
    "..",
    "%",
    "[::1]",
    ":65536",
    "token=",
    "sig=",
    "xn--",
    ",,",
    "\"\"",
    "float16",
    "uint8",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next_u64() as u8),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(64)).min(v.len());
                let piece = v[start..end].to_vec();
                for _ in 0..1 + rng.below(3) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            6 => {
                // A digit run: numbers past every integer type.
                let digits: Vec<u8> = (0..1 + rng.below(24))
                    .map(|_| b'0' + rng.below(10) as u8)
                    .collect();
                v.splice(at..at, digits);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let n = 1 + rng.below(40);
                v.splice(at..at, t.iter().copied().cycle().take(t.len() * n));
            }
        }
    }
    v
}

fn iterations(default: usize) -> usize {
    std::env::var("EMOLENS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `target` on `iterations` mutated inputs; saves and reports the ones that panic.
fn fuzz(name: &str, default_iters: usize, seeds: &[Vec<u8>], target: impl Fn(&[u8])) {
    let seed = std::env::var("EMOLENS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let n = iterations(default_iters);
    let started = std::time::Instant::now();
    let mut crashes = Vec::new();
    // The panic message once per crash, not the default hook's backtrace for each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for seed_input in seeds {
        if catch_unwind(AssertUnwindSafe(|| target(seed_input))).is_err() {
            crashes.push(seed_input.clone());
        }
    }
    for _ in 0..n {
        let input = mutate(&mut rng, seeds);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            crashes.push(input);
            if crashes.len() >= 20 {
                break;
            }
        }
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz {name}: {} inputs in {:.1} s, {} crash(es)",
        n + seeds.len(),
        started.elapsed().as_secs_f64(),
        crashes.len()
    );
    if !crashes.is_empty() {
        let dir = Path::new(ROOT).join("target/fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, c) in crashes.iter().enumerate() {
            std::fs::write(dir.join(format!("{name}-{i}.bin")), c).unwrap();
        }
        // Re-run the first to show its panic.
        target(&crashes[0]);
        panic!(
            "{name}: {} crashing inputs saved in {}",
            crashes.len(),
            dir.display()
        );
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------- targets

#[test]
fn fuzz_sse_reader() {
    let seeds: Vec<Vec<u8>> = [
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"{\\\"label\\\": \\\"happy\\\"}\"}}]}\n\ndata: [DONE]\n\n",
        ": ping\r\n\r\nevent: error\r\ndata: {\"error\":{\"message\":\"boom\"}}\r\n\r\n",
        "\u{feff}data: {\"choices\":[{\"delta\":{\"content\":\"é\"},\"logprobs\":{\"content\":[{\"token\":\"h\",\"logprob\":-0.1,\"top_logprobs\":[]}]}}],\"usage\":{\"prompt_tokens\":3}}\r\rdata: [DONE]",
        "{\"choices\":[{\"message\":{\"content\":\"sad\"}}]}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let limits = ResponseLimits {
        max_response_bytes: 4096,
        max_sse_line_bytes: 512,
    };
    fuzz("sse", 4000, &seeds, |bytes| {
        // Events do not depend on how the bytes were split.
        let whole = {
            let mut p = SseParser::with_max_line(512);
            p.push(bytes).map(|mut e| {
                e.extend(p.finish());
                e
            })
        };
        let cut = bytes.len() / 3;
        let split = {
            let mut p = SseParser::with_max_line(512);
            let mut events = Vec::new();
            p.push(&bytes[..cut])
                .and_then(|e| {
                    events.extend(e);
                    p.push(&bytes[cut..])
                })
                .map(|e| {
                    events.extend(e);
                    events.extend(p.finish());
                    events
                })
        };
        assert_eq!(whole.is_ok(), split.is_ok());
        if let (Ok(a), Ok(b)) = (&whole, &split) {
            assert_eq!(a, b);
        }
        for stream in [true, false] {
            let mut reader = CompletionReader::with_limits(stream, limits);
            let mut failed = false;
            for chunk in bytes.chunks(7) {
                if reader.push(chunk).is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed && let Ok(c) = reader.finish() {
                assert!(c.content.len() <= limits.max_response_bytes);
            }
        }
    });
}

#[test]
fn fuzz_answer_parser() {
    let seeds: Vec<Vec<u8>> = [
        "```json\n{\"label\": \"Happiness\", \"scores\": {\"happy\": 0.6, \"sad\": 0.4}, \"rationale\": \"smile {wide}\"}\n```",
        "İİİ{\"label\": \"happy\"}",
        "  **Anger**.",
        "{\"emotion\": \"fear\", \"probs\": {\"fear\": 1e308, \"sad\": 1e308}}",
        "{ {\"label\": \"sad\"} \"unclosed",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let labels = LabelSet::dfew();
    fuzz("answer", 4000, &seeds, |bytes| {
        let content = text(bytes);
        if let Answer::Parsed { label, scores, .. } = parse_answer(&content, &labels) {
            assert!(label < labels.len());
            assert_eq!(scores.len(), labels.len());
            assert!(
                scores.iter().all(|s| s.is_finite() && *s >= 0.0),
                "{scores:?}"
            );
        }
        // Tokens that spell the content, cut at arbitrary char boundaries.
        let mut tokens = Vec::new();
        let mut cur = String::new();
        for (i, c) in content.chars().enumerate() {
            cur.push(c);
            if i % 3 == 2 {
                tokens.push(TokenLogprob {
                    token: std::mem::take(&mut cur),
                    logprob: -0.5,
                    top: vec![("happy".into(), -0.1), (c.to_string(), f64::NAN)],
                });
            }
        }
        if let Some(p) = emolens::remote::answer::label_probs(&content, &tokens, &labels) {
            let sum: f64 = p.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "{p:?}");
        }
    });
}

#[test]
fn fuzz_tfjs_manifest() {
    let seeds: Vec<Vec<u8>> = [
        r#"[{"paths": ["a.bin"], "weights": [{"name": "w", "shape": [2, 3], "dtype": "float32"}, {"name": "q", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}}]}]"#,
        r#"[{"paths": ["a.bin", "b.bin"], "weights": [{"name": "h", "shape": [3, 1], "dtype": "float32", "quantization": {"dtype": "float16"}}]}, {"paths": ["c"], "weights": []}]"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("manifest", 4000, &seeds, |bytes| {
        let Ok(m) = emolens::weights::Manifest::parse("m", &text(bytes)) else {
            return;
        };
        let paths = m.shard_paths();
        assert!(
            paths
                .iter()
                .all(|p| !p.starts_with('/') && !p.split('/').any(|c| c == ".." || c.is_empty()))
        );
        let total = m.total_bytes();
        if total > 1 << 20 {
            return;
        }
        // Shards cut in every plausible way: the exact size, one byte short, one too many.
        for extra in [0isize, -1, 1] {
            let size = (total as isize + extra).max(0) as usize;
            let mut shards = vec![Vec::new(); paths.len()];
            if let Some(first) = shards.first_mut() {
                *first = vec![0x3c; size];
            }
            let r = m.decode(&shards);
            if size != total && !paths.is_empty() {
                assert!(r.is_err());
            }
        }
    });
}

#[test]
fn fuzz_calibration_csv() {
    let seeds: Vec<Vec<u8>> = [
        "name,gt,ranked\nclip1,happy,\"happy,sad\"\nclip2,sad,\"sad,happy\"\nclip3,disgust,\"disgust\"\nclip4,嫌悪感,\"嫌悪感,happy\"\n",
        "gt,name,pred\r\n a , disgusté ,\"x, y\"\r\nb,Happy,\"happy\"\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("calibration", 2000, &seeds, |bytes| {
        if let Ok(data) = emolens::calibration::parse_csv(&text(bytes)) {
            let report = emolens::calibration::evaluate_dataset(
                &data,
                emolens::calibration::RankRule::Reciprocal,
            );
            let rendered = emolens::calibration::render_text("f.csv", &report);
            assert!(!rendered.is_empty());
            serde_json::to_string(&report).unwrap();
        }
    });
}

#[test]
fn fuzz_endpoint_urls() {
    let seeds: Vec<Vec<u8>> = [
        "http://localhost:11434/v1",
        "https://api.example.com/v1/chat/completions?api-version=2024",
        "http://[::1]:8000/v1/",
        "http://é/v1",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("endpoint", 20000, &seeds, |bytes| {
        let url = text(bytes);
        let shown = emolens::remote::redact_url(&url);
        // Nothing of the query is shown: it may hold tokens or signatures.
        if url.contains('?') {
            assert_eq!(shown.split_once('?').map(|(_, q)| q), Some("…"), "{shown}");
        }
        assert!(!shown.contains('\n'));
        emolens::remote::redact_urls_in(&url);
        match Endpoint::new(&url, None) {
            Ok(e) => {
                assert!(
                    e.url.is_ascii() && !e.url.contains(char::is_whitespace),
                    "{}",
                    e.url
                );
                assert!(e.url.to_ascii_lowercase().starts_with("http"));
                assert!(e.url.contains("/chat/completions"));
                // What was accepted is a URL the HTTP stack takes.
                assert!(e.url.parse::<ureq::http::Uri>().is_ok(), "{}", e.url);
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{msg}");
            }
        }
    });
}

// ---------------------------------------------------------------- SmolVLM files

fn vlm_file(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(ROOT).join("tests/data/vlm").join(name)).unwrap()
}

#[test]
fn fuzz_vlm_config() {
    let seeds = vec![
        vlm_file("smolvlm_tiny/config.json"),
        vlm_file("smolvlm_tiny_tied/config.json"),
    ];
    fuzz("vlm-config", 3000, &seeds, |bytes| {
        if let Ok(config) = emolens::vlm::config::Idefics3Config::from_json(&text(bytes))
            && let Ok(dims) = config.dims()
        {
            let _ = dims.parameter_count();
            let _ = dims.tokens_per_image();
        }
    });
}

#[test]
fn fuzz_safetensors() {
    let seeds = vec![vlm_file("smolvlm_tiny/reference.safetensors")];
    let device = burn::tensor::Device::flex();
    fuzz("safetensors", 1500, &seeds, |bytes| {
        let Ok(w) = emolens::vlm::weights::Weights::parse(bytes, &device) else {
            return;
        };
        let Ok(st) = safetensors::SafeTensors::deserialize(bytes) else {
            panic!("Weights::parse accepted what safetensors refuses");
        };
        for (name, view) in st.tensors() {
            if let Ok(v) = w.read_f32(&name, view.shape()) {
                assert_eq!(v.len(), view.shape().iter().product::<usize>());
            }
        }
    });
}

/// A small tokenizer.json (word level) with the shape of the real ones.
const TINY_TOKENIZER: &str = r#"{"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
 "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
 "model": {"type": "WordLevel", "vocab": {"<|endoftext|>": 0, "happy": 1, "sad": 2, "<unk>": 3}, "unk_token": "<unk>"}}"#;

#[test]
fn fuzz_tokenizer_json() {
    let seeds = vec![TINY_TOKENIZER.as_bytes().to_vec()];
    fuzz("tokenizer", 1000, &seeds, |bytes| {
        let Ok(mut t) = emolens::vlm::tokenizer::VlmTokenizer::from_bytes(bytes) else {
            return;
        };
        let _ = t.add_smolvlm_tokens();
        if let Ok(ids) = t.encode("happy sad İ <image>", false) {
            let _ = t.decode(&ids, true);
        }
        let _ = t.decode(&[0, 1, u32::MAX], false);
    });
}
