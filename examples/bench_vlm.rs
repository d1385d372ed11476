//! The local VLM's speed natively: load time, memory, time to first token (TTFT) and decode
//! tokens/s, on burn's CPU backend (flex) or wgpu (Vulkan; lavapipe without a GPU).
//!
//! ```sh
//! bench_vlm [--tokens N --repeat R --wgpu]        # the tiny test checkpoints (reference inputs)
//! bench_vlm synth --model 256m|500m --dtype f32|f16 --out DIR [--seed S]
//!     # a real-size SmolVLM checkpoint with seeded random weights (no download; the SmolLM
//!     # tokenizer is built into this binary, so it runs anywhere on its own)
//! bench_vlm DIR [--backend cpu|wgpu] [--weights f32|f16|q8] [--prompt PROMPT.json] [--tokens 32]
//!     [--repeat 3] [--split on|off|both]
//!     # a checkpoint folder on a clip prompt with 4 keyframes
//! ```
//!
//! The clip prompt is `emolens prompt CLIP` output (`--prompt`; its first request's messages,
//! keyframes included) or, without it, one built in here by the project's prompt builder
//! (`prompt::final_request`) around four 512×512 keyframes. `--split off` (or `--no-split`) turns
//! SmolVLM's image splitting off (each keyframe one 512 tile instead of up to 4×4 tiles plus the
//! global one).
//! Memory: the process' peak resident set (VmHWM: on wgpu only host memory) and the weights'
//! bytes on the device (f32, or the linear layers' matrices in f16 or q8 with `--weights`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use emolens::chat::{Message, messages_from_json};
use emolens::frames::RgbImage;
use emolens::prompt::{self, ClipContext, Keyframe, PromptMode, PromptOptions, Segment};
use emolens::vlm::check::{Reference, load_dir, time_generation};
use emolens::vlm::idefics3::read_f32;
use emolens::vlm::load::{LocalModel, MemoryEstimate, VlmFiles, human_bytes, prepare};
use emolens::vlm::{GenerationConfig, Sampling, VlmError, WeightPrecision, chat, synth};

/// SmolLM's tokenizer, which `synth` extends with SmolVLM's added tokens.
const SMOLLM_TOKENIZER: &[u8] = include_bytes!("../tests/data/vlm/smollm_tokenizer/tokenizer.json");

fn value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match value(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} takes a whole number, got {v:?}")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("synth") => synth_command(&args[1..]),
        Some(dir) if !dir.starts_with("--") => bench_checkpoint(Path::new(dir), &args[1..]),
        _ => bench_tiny(&args),
    };
    if let Err(e) = result {
        eprintln!("bench_vlm: {e}");
        std::process::exit(2);
    }
}

fn synth_command(args: &[String]) -> Result<(), String> {
    let model = value(args, "--model").ok_or("synth needs --model 256m|500m")?;
    let dtype = synth::SynthDtype::parse(&value(args, "--dtype").unwrap_or("f32".into()))
        .map_err(|e| e.to_string())?;
    let out = PathBuf::from(value(args, "--out").ok_or("synth needs --out DIR")?);
    let seed = number(args, "--seed", 0)? as u64;
    let start = Instant::now();
    let s = synth::write_checkpoint(&out, &model, dtype, seed, SMOLLM_TOKENIZER)
        .map_err(|e| e.to_string())?;
    println!(
        "synth: SmolVLM-{model} ({dtype:?}, seed {seed}): {} parameters in {} tensors, model.safetensors {} → {} in {:.1} s",
        s.parameters,
        s.tensors,
        human_bytes(s.model_bytes),
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn device(backend: &str) -> Result<Device, String> {
    match backend {
        "cpu" | "flex" => Ok(Device::flex()),
        "wgpu" => Device::wgpu_options()
            .init()
            .map_err(|e| format!("no wgpu device: {e}")),
        other => Err(format!("unknown backend {other:?} (cpu or wgpu)")),
    }
}

/// Peak resident set of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn rss_text() -> String {
    peak_rss().map_or("unknown".into(), human_bytes)
}

/// A clip prompt: `emolens prompt` JSON (first request) or a built-in one with four keyframes.
fn clip_prompt(path: Option<&str>) -> Result<(Vec<Message>, Vec<RgbImage>, String), String> {
    if let Some(path) = path {
        let text = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| format!("{path}: {e}"))?;
        let messages = json
            .pointer("/requests/0/messages")
            .or_else(|| json.get("messages"))
            .unwrap_or(&json);
        let messages = messages_from_json(messages).map_err(|e| format!("{path}: {e}"))?;
        let images = chat::images_of(&messages, Vec::new()).map_err(|e| e.to_string())?;
        return Ok((messages, images, format!("{path} (emolens prompt)")));
    }
    let (w, h) = (512u32, 512u32);
    let mut keyframes = Vec::new();
    for k in 0..4u32 {
        // A smooth pattern that differs per keyframe (JPEG-encoded, as the prompt carries it).
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                ((x + 40 * k) % 256) as u8,
                ((y + 60 * k) % 256) as u8,
                ((x + y) / 4 % 256) as u8,
            ])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&img)
            .map_err(|e| e.to_string())?;
        keyframes.push(Keyframe {
            time: 0.8 * k as f64,
            width: w,
            height: h,
            jpeg,
        });
    }
    let clip = ClipContext {
        duration: 3.2,
        fps: 30.0,
        frames: 96,
        frame_width: w,
        frame_height: h,
        keyframes,
        segments: (0..4)
            .map(|i| Segment {
                start: 0.8 * i as f64,
                end: 0.8 * (i + 1) as f64,
                summary: format!(
                    "{:.2}–{:.2} s: neutral → happy. Sustained left lip-corner pull, right lip-corner pull, mouth open (apex {:.2} s, macro); neutral 0.41 → 0.12, happy 0.22 → 0.71.",
                    0.8 * i as f64, 0.8 * (i + 1) as f64, 0.8 * i as f64 + 0.4
                ),
                description: None,
                keyframe: Some(i),
            })
            .collect(),
        events: vec![
            "0.53–2.37 s: macro left lip-corner pull, apex 1.53 s".into(),
            "1.20–1.48 s: micro brow lowering, apex 1.32 s".into(),
        ],
    };
    let options = PromptOptions::new(PromptMode::Enriched, emolens::labels::LabelSet::dfew());
    let messages = prompt::final_request(&clip, &options);
    let images = chat::images_of(&messages, Vec::new()).map_err(|e| e.to_string())?;
    Ok((
        messages,
        images,
        "built-in clip (4 keyframes 512×512)".into(),
    ))
}

fn bench_checkpoint(dir: &Path, args: &[String]) -> Result<(), String> {
    let backend = value(args, "--backend").unwrap_or("cpu".into());
    let tokens = number(args, "--tokens", 32)?.max(2);
    let repeat = number(args, "--repeat", 3)?.max(1);
    let splits: Vec<bool> = match value(args, "--split").as_deref() {
        _ if args.iter().any(|a| a == "--no-split") => vec![false],
        None | Some("on") => vec![true],
        Some("off") => vec![false],
        Some("both") => vec![false, true],
        Some(other) => return Err(format!("--split takes on, off or both, got {other:?}")),
    };
    let e = |e: VlmError| e.to_string();

    if !dir.join("config.json").is_file() {
        return Err(format!(
            "{} is not a checkpoint folder (no config.json; make one with `bench_vlm synth`)",
            dir.display()
        ));
    }
    let precision = WeightPrecision::parse(&value(args, "--weights").unwrap_or("f32".into()))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let device = device(&backend)?;
    let device_ms = start.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let files = VlmFiles::from_dir(dir).map_err(e)?;
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let prepared = prepare(files).map_err(e)?;
    let prepare_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut local = prepared.upload_with(&device, precision).map_err(e)?;
    // Uploads may be queued: one small read makes sure the weights are on the device.
    let probe = local.model.embed(&[0], None).map_err(e)?;
    pollster::block_on(read_f32(probe)).map_err(e)?;
    let upload_ms = t.elapsed().as_secs_f64() * 1e3;
    let ready_ms = start.elapsed().as_secs_f64() * 1e3;
    let mem = local.memory.clone();
    println!("checkpoint {} on {backend}", dir.display());
    println!(
        "  parameters {} ({} file, {}); weights on the device {} (matrices {precision:?})",
        mem.parameters,
        mem.file_dtype,
        human_bytes(mem.file_bytes),
        human_bytes(mem.device_bytes)
    );
    println!(
        "  ready in {ready_ms:.0} ms: device {device_ms:.0}, read files {read_ms:.0}, parse+check {prepare_ms:.0}, convert+upload {upload_ms:.0}; peak RSS {}",
        rss_text()
    );

    let (messages, images, source) = clip_prompt(value(args, "--prompt").as_deref())?;
    let tag = format!(
        "{} {backend} matrices-{}",
        dir.file_name()
            .map_or("?".into(), |n| n.to_string_lossy().to_string()),
        format!("{precision:?}").to_lowercase()
    );
    for split in splits {
        local.processor.do_image_splitting = split;
        measure(
            &local, &messages, &images, &source, split, tokens, repeat, &tag, &mem, ready_ms,
        )?;
    }
    Ok(())
}

/// TTFT and decode speed of `local` on one clip prompt.
#[allow(clippy::too_many_arguments)]
fn measure(
    local: &LocalModel,
    messages: &[Message],
    images: &[RgbImage],
    source: &str,
    split: bool,
    tokens: usize,
    repeat: usize,
    tag: &str,
    mem: &MemoryEstimate,
    ready_ms: f64,
) -> Result<(), String> {
    let e = |e: VlmError| e.to_string();
    let t = Instant::now();
    let input = local.prepare_input(messages, images).map_err(e)?;
    let process_ms = t.elapsed().as_secs_f64() * 1e3;
    let image_id = local.config.image_token_id;
    let n_image = input.prompt_ids.iter().filter(|&&t| t == image_id).count();
    let tiles = input.pixel_values.as_ref().map_or(0, |p| p.dims()[0]);
    let layout: Vec<String> = input
        .images
        .iter()
        .map(|i| format!("{}×{}+1", i.rows, i.cols))
        .collect();
    println!(
        "  prompt: {source}; {} images → {tiles} tiles of {} px (grid+global per image: {}; splitting {}), processed in {process_ms:.0} ms",
        images.len(),
        local.model.dims().image_size,
        layout.join(", "),
        if split { "on" } else { "off" }
    );
    println!(
        "  prompt tokens {}: {n_image} image (<image>, {} per tile) + {} text (template, layout tokens, words)",
        input.prompt_ids.len(),
        local.model.dims().tokens_per_image(),
        input.prompt_ids.len() - n_image
    );

    // Finite activations (random weights are small, but check): the first tile's image
    // features and the logits after the first prompt tokens.
    if let Some(p) = &input.pixel_values {
        let first = p.clone().narrow(0, 0, 1);
        let f = pollster::block_on(read_f32(local.model.image_features(first).map_err(e)?));
        let head = &input.prompt_ids[..input.prompt_ids.len().min(16)];
        let text_only: Vec<u32> = head.iter().copied().filter(|&t| t != image_id).collect();
        let l = pollster::block_on(read_f32(local.model.forward(&text_only, None).map_err(e)?));
        let finite = f
            .map_err(e)?
            .iter()
            .chain(l.map_err(e)?.iter())
            .all(|x| x.is_finite());
        println!(
            "  activations finite: {}",
            if finite { "yes" } else { "NO" }
        );
    }

    let config = GenerationConfig {
        max_new_tokens: tokens,
        sampling: Sampling::Greedy,
        stop_tokens: Vec::new(),
    };
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64() * 1e3;
    let mut runs = Vec::new();
    for run in 0..repeat {
        let pixels = input.pixel_values.clone();
        let begin = now();
        let mut first = None;
        let out = pollster::block_on(local.model.generate(
            &input.prompt_ids,
            pixels,
            &config,
            |_| {
                first.get_or_insert_with(now);
                true
            },
        ))
        .map_err(e)?;
        let end = now();
        let first = first.ok_or("no token was generated")?;
        let ttft = first - begin;
        let rate = (out.len() - 1) as f64 / ((end - first) / 1e3);
        println!(
            "  run {}: TTFT {ttft:.0} ms, decode {rate:.1} tok/s ({} tokens){}",
            run + 1,
            out.len(),
            if run == 0 { " (cold)" } else { "" }
        );
        runs.push((ttft, rate));
    }
    // The cold run pays for shader compilation and allocations; the rest show steady state.
    let warm = if runs.len() > 1 {
        &runs[1..]
    } else {
        &runs[..]
    };
    let best_ttft = warm.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let best_rate = warm.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "  RESULT {tag} {}: ready {ready_ms:.0} ms, peak RSS {}, device weights {}, prompt {} tok ({n_image} image), TTFT {best_ttft:.0} ms, decode {best_rate:.1} tok/s (best of {} warm runs, {tokens} tokens)",
        if split { "split" } else { "no-split" },
        rss_text(),
        human_bytes(mem.device_bytes),
        input.prompt_ids.len(),
        warm.len()
    );
    Ok(())
}

fn bench_tiny(args: &[String]) -> Result<(), String> {
    let tokens = number(args, "--tokens", 32)?;
    let repeat = number(args, "--repeat", 5)?.max(1);
    let wgpu = args.iter().any(|a| a == "--wgpu");
    let device = device(if wgpu { "wgpu" } else { "cpu" })?;
    let backend = if wgpu { "wgpu (Vulkan)" } else { "flex (CPU)" };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vlm");

    println!("decode speed, {backend}, greedy, {tokens} new tokens, best of {repeat}");
    println!(
        "{:<20} {:>8} {:>7} {:>10} {:>12}",
        "checkpoint", "prompt", "tiles", "TTFT ms", "decode tok/s"
    );
    for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
        let dir = root.join(name);
        let (_, model) = load_dir(&dir, &device).map_err(|e| e.to_string())?;
        let reference = Reference::load(&dir).map_err(|e| e.to_string())?;
        let clock = Instant::now();
        let (mut best_ttft, mut best_rate) = (f64::INFINITY, 0f64);
        for _ in 0..repeat {
            let t =
                pollster::block_on(time_generation(&model, &reference, &device, tokens, || {
                    clock.elapsed().as_secs_f64() * 1e3
                }))
                .map_err(|e| e.to_string())?;
            best_ttft = best_ttft.min(t.first_token_ms);
            best_rate = best_rate.max(t.decode_tokens_per_s);
        }
        println!(
            "{:<20} {:>8} {:>7} {:>10.2} {:>12.0}",
            name,
            reference.input_ids.len(),
            reference.pixel_values.1[0],
            best_ttft,
            best_rate
        );
    }
    println!();
    println!(
        "real-size checkpoints: `bench_vlm synth --model 256m --out DIR`, then `bench_vlm DIR`"
    );
    Ok(())
}
