//! Frames per second of the face pipeline natively, against face-api.js (tfjs wasm backend in
//! node) measured in the same run on the same pixels.
//!
//! `cargo run --release --example bench_face [-- --repeat N]` after `cargo test --release --test face`
//! (which writes the PNG copies it reads). The Vulkan row needs a Vulkan driver (lavapipe on a
//! machine without a GPU: `CUBECL_WGPU_DEFAULT_DEVICE` may select it).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::tensor::Device;
use emolens::face::{DetectorOptions, FaceAnalyzer, FaceWeights};
use emolens::frames::read_image;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FILES: [&str; 3] = ["single_face.png", "multi_face.png", "happy.png"];

fn main() {
    let repeat: usize = std::env::args()
        .skip_while(|a| a != "--repeat")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = Path::new(ROOT).join("target/parity");
    let paths: Vec<_> = FILES.iter().map(|f| dir.join(f)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        eprintln!(
            "{} is missing: run `cargo test --release --test face` first",
            missing.display()
        );
        std::process::exit(2);
    }
    let images: Vec<_> = paths.iter().map(|p| read_image(p).unwrap()).collect();
    let weights =
        FaceWeights::load_dir(&Path::new(ROOT).join("node_modules/@vladmandic/face-api/model"))
            .unwrap();

    let peer_ms = peer_milliseconds(&paths, repeat);
    println!("{:<34} {}", "file", FILES.join("  "));
    println!(
        "{:<34} {}",
        "face-api.js (tfjs wasm) ms/frame",
        format_row(&peer_ms)
    );

    let mut devices = vec![("burn flex (CPU)", Some(Device::flex()))];
    devices.push((
        "burn wgpu (Vulkan)",
        Device::wgpu_options()
            .init()
            .map_err(|e| eprintln!("no wgpu device: {e}"))
            .ok(),
    ));
    for (name, device) in devices {
        let Some(device) = device else { continue };
        for (mode, input_size) in [
            ("416, as face-api", Some(416)),
            ("default, two views", None),
        ] {
            let options = DetectorOptions {
                input_size,
                ..Default::default()
            };
            let analyzer = FaceAnalyzer::new(&weights, &device, options).unwrap();
            let ms: Vec<f64> = images
                .iter()
                .map(|image| {
                    pollster::block_on(analyzer.analyze(&[image])).unwrap(); // warm-up (shader compilation)
                    let start = Instant::now();
                    for _ in 0..repeat {
                        pollster::block_on(analyzer.analyze(&[image])).unwrap();
                    }
                    start.elapsed().as_secs_f64() * 1000.0 / repeat as f64
                })
                .collect();
            let ratio: Vec<String> = peer_ms
                .iter()
                .zip(&ms)
                .map(|(p, m)| format!("{:.2}x", p / m))
                .collect();
            println!(
                "{:<34} {}",
                format!("{name} {mode} ms/frame"),
                format_row(&ms)
            );
            println!("{:<34} {}", "  speed vs face-api.js", ratio.join("  "));
        }
    }
}

fn format_row(ms: &[f64]) -> String {
    ms.iter()
        .map(|m| format!("{m:.1} ({:.1} fps)", 1000.0 / m))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Mean milliseconds per frame of face-api.js on each file.
fn peer_milliseconds(paths: &[std::path::PathBuf], repeat: usize) -> Vec<f64> {
    let output = Command::new("node")
        .arg(Path::new(ROOT).join("tests/peer/face_api_peer.mjs"))
        .args([
            "--input-size",
            "416",
            "--backend",
            "wasm",
            "--repeat",
            &repeat.to_string(),
        ])
        .args(paths)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    files.iter().map(|f| f["ms"].as_f64().unwrap()).collect()
}
