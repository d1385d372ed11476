//! Native speed of the face pipeline per stage and of the dense path (every frame of a clip,
//! with and without tracking), on burn's CPU backend and on wgpu (Vulkan, a real GPU where
//! there is one: `scripts/bench-gpu.sh`).
//!
//!   cargo run --release --example bench_dense -- [CLIP.mp4 | --rgb FRAMES.rgb --size 640x360]
//!       [--models DIR] [--backends cpu,wgpu] [--repeat N]
//!
//! A clip is decoded with ffmpeg; `--rgb` reads raw frames (as `examples/decode_frames` writes
//! them) where there is no ffmpeg. Prints one line per measurement: median ms and frames/s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use emolens::face::{DetectorOptions, FaceAnalyzer, FaceTracker, FaceWeights, TrackingOptions};
use emolens::frames::RgbImage;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Args {
    clip: PathBuf,
    rgb: Option<(PathBuf, usize, usize)>,
    models: PathBuf,
    backends: Vec<String>,
    repeat: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        clip: Path::new(ROOT).join("assets/sample.mp4"),
        rgb: None,
        models: Path::new(ROOT).join("node_modules/@vladmandic/face-api/model"),
        backends: vec!["cpu".into(), "wgpu".into()],
        repeat: 5,
    };
    let mut rgb_file = None;
    let mut size = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rgb" => rgb_file = Some(PathBuf::from(value()?)),
            "--size" => {
                let v = value()?;
                let (w, h) = v.split_once('x').ok_or("--size WxH")?;
                size = Some((
                    w.parse().map_err(|_| "--size WxH")?,
                    h.parse().map_err(|_| "--size WxH")?,
                ));
            }
            "--models" => args.models = PathBuf::from(value()?),
            "--backends" => args.backends = value()?.split(',').map(String::from).collect(),
            "--repeat" => args.repeat = value()?.parse().map_err(|_| "--repeat N")?,
            other if !other.starts_with("--") => args.clip = PathBuf::from(other),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if let Some(file) = rgb_file {
        let (w, h) = size.ok_or("--rgb needs --size WxH")?;
        args.rgb = Some((file, w, h));
    }
    Ok(args)
}

fn frames(args: &Args) -> Result<Vec<RgbImage>, String> {
    match &args.rgb {
        Some((file, w, h)) => {
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let frame = w * h * 3;
            if frame == 0 || bytes.len() % frame != 0 {
                return Err(format!("{}: not whole {w}x{h} RGB frames", file.display()));
            }
            bytes
                .chunks_exact(frame)
                .map(|c| RgbImage::new(*w, *h, c.to_vec()).map_err(|e| e.to_string()))
                .collect()
        }
        None => emolens::video::decode_all(&args.clip, None)
            .map(|v| v.into_iter().map(|f| f.image).collect())
            .map_err(|e| e.to_string()),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn report(name: &str, ms: f64) {
    println!(
        "{name:<58} {ms:>8.2} ms/frame {:>7.1} frames/s",
        1000.0 / ms
    );
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_dense: {e}");
            std::process::exit(2);
        }
    };
    let clip = match frames(&args) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("bench_dense: no frames");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("bench_dense: {e}");
            std::process::exit(2);
        }
    };
    let weights = FaceWeights::load_dir(&args.models).unwrap_or_else(|e| {
        eprintln!("bench_dense: {e}");
        std::process::exit(2)
    });
    println!(
        "{} frames of {}x{}",
        clip.len(),
        clip[0].width,
        clip[0].height
    );
    for backend in &args.backends {
        let device = match backend.as_str() {
            "cpu" => Device::flex(),
            "wgpu" => match Device::wgpu_options().init() {
                Ok(d) => d,
                Err(e) => {
                    println!("wgpu: no device ({e})");
                    continue;
                }
            },
            other => {
                eprintln!("bench_dense: unknown backend {other}");
                std::process::exit(2);
            }
        };
        let name = if backend == "cpu" {
            "burn flex (CPU)"
        } else {
            "burn wgpu"
        };
        for (mode, input_size) in [("416", Some(416)), ("default, two views", None)] {
            let options = DetectorOptions {
                input_size,
                ..Default::default()
            };
            let analyzer = FaceAnalyzer::new(&weights, &device, options).unwrap();
            let frame = &clip[0];
            let started = Instant::now();
            pollster::block_on(analyzer.analyze(&[frame])).unwrap();
            let first = started.elapsed().as_secs_f64() * 1000.0;
            let time = |f: &mut dyn FnMut()| {
                median(
                    (0..args.repeat)
                        .map(|_| {
                            let t = Instant::now();
                            f();
                            t.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect(),
                )
            };
            let whole = time(&mut || {
                pollster::block_on(analyzer.analyze(&[frame])).unwrap();
            });
            let boxes = pollster::block_on(analyzer.detect(&[frame])).unwrap();
            let detect = time(&mut || {
                pollster::block_on(analyzer.detect(&[frame])).unwrap();
            });
            let nets = time(&mut || {
                pollster::block_on(analyzer.analyze_boxes(&[frame], &boxes)).unwrap();
            });
            println!("{name}, detector {mode} (first frame {first:.0} ms):");
            report("  one frame (analyzeFrame)", whole);
            report("    detector", detect);
            report(
                &format!("    landmarks + expressions ({} faces)", boxes[0].len()),
                nets,
            );
        }
        let analyzer = FaceAnalyzer::new(&weights, &device, DetectorOptions::default()).unwrap();
        let refs: Vec<&RgbImage> = clip.iter().collect();
        for (mode, tracking) in [
            ("tracking", TrackingOptions::default()),
            ("detector on every frame, batch 8", TrackingOptions::off()),
        ] {
            let mut tracker = FaceTracker::new(tracking);
            let started = Instant::now();
            for chunk in refs.chunks(8) {
                pollster::block_on(analyzer.analyze_sequence(chunk, &mut tracker)).unwrap();
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / clip.len() as f64;
            report(&format!("{name}, dense path, {mode}"), ms);
            if tracking.enabled {
                let s = tracker.stats();
                println!(
                    "  detector on {} of {} frames ({} periodic, {} moved, {} lost, {} at the edge)",
                    s.detected,
                    clip.len(),
                    s.periodic,
                    s.moved,
                    s.lost,
                    s.edge
                );
            }
        }
    }
}
