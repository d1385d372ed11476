//! Time to first token and decode speed of the burn Idefics3 on the tiny test checkpoints
//! (CPU: flex backend; `--wgpu`: burn-wgpu on Vulkan, lavapipe without a GPU), and the memory
//! released SmolVLM checkpoints need.
//!
//! `cargo run --release --example bench_vlm [-- --tokens N --repeat R --wgpu]`

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use emolens::vlm::Idefics3Config;
use emolens::vlm::check::{Reference, load_dir, time_generation};
use emolens::vlm::config::known;
use emolens::vlm::load::human_bytes;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let tokens = arg("--tokens", 32);
    let repeat = arg("--repeat", 5);
    let wgpu = std::env::args().any(|a| a == "--wgpu");
    let (device, backend) = if wgpu {
        let device = Device::wgpu_options()
            .init()
            .unwrap_or_else(|e| panic!("no wgpu device: {e}"));
        (device, "wgpu (Vulkan)")
    } else {
        (Device::flex(), "flex (CPU)")
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vlm");

    println!("decode speed, {backend}, greedy, {tokens} new tokens, best of {repeat}");
    println!(
        "{:<20} {:>8} {:>7} {:>10} {:>12}",
        "checkpoint", "prompt", "tiles", "TTFT ms", "decode tok/s"
    );
    for name in ["smolvlm_tiny", "smolvlm_tiny_tied"] {
        let dir = root.join(name);
        let (_, model) = load_dir(&dir, &device).expect("checkpoint loads");
        let reference = Reference::load(&dir).expect("reference loads");
        let clock = Instant::now();
        let (mut best_ttft, mut best_rate) = (f64::INFINITY, 0f64);
        for _ in 0..repeat {
            let t =
                pollster::block_on(time_generation(&model, &reference, &device, tokens, || {
                    clock.elapsed().as_secs_f64() * 1e3
                }))
                .expect("generation runs");
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
    println!("weights in memory (parameters from the public configs in vlm::config::known)");
    println!(
        "{:<28} {:>13} {:>10} {:>10}",
        "model", "parameters", "f16", "f32"
    );
    for (name, json) in [
        ("SmolVLM-256M-Instruct", known::SMOLVLM_256M_INSTRUCT),
        ("SmolVLM-500M-Instruct", known::SMOLVLM_500M_INSTRUCT),
    ] {
        let config = Idefics3Config::from_json(json).expect("known config parses");
        let params = config.parameter_count().expect("known config is valid");
        println!(
            "{:<28} {:>13} {:>10} {:>10}",
            name,
            params,
            human_bytes(params * 2),
            human_bytes(params * 4)
        );
    }
    println!(
        "(this implementation holds weights in f32 on the device; KV cache and activations come on top)"
    );
}
