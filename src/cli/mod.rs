//! Subcommands. Each lives in its own file; this one only parses arguments and dispatches.

mod ask;
mod bench;
mod calibration;
mod devbench;
mod image;
mod prompt;
mod video;
mod vlm_check;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use emolens::face::{DetectorOptions, FaceAnalyzer, FaceWeights};

#[derive(Parser)]
#[command(
    name = "emolens",
    version,
    about = "Emotion understanding in video: per-frame face analysis, temporal context, VLM prompting"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Detect faces in photos: box, score, 68 landmarks and 7 expression probabilities per face.
    Image(image::ImageArgs),
    /// Evaluate label-free corrections of a VLM's ranked emotion predictions (fit on one half,
    /// measured on the other; ground truth is never used for fitting).
    EvalCalibration(calibration::EvalCalibrationArgs),
    /// Check the SmolVLM (Idefics3) implementation against a checkpoint's reference outputs:
    /// exit 0 when image features and logits are within 1e-4 and greedy tokens are identical.
    VlmCheck(vlm_check::VlmCheckArgs),
    /// Ask a remote OpenAI-compatible VLM (vLLM, llama.cpp, Ollama, hosted APIs) which emotion
    /// images and a prompt show; prints JSON {label, scores, rationale, usage, ...}.
    Ask(ask::AskArgs),
    /// Analyse every frame of a video: tracked main face, action features, spotted micro and
    /// macro expression events, keyframes and factual summaries.
    Video(video::VideoArgs),
    /// Spotting benchmark: smile bursts spliced into a clip's neutral stretch, scored with the
    /// MEGC interval metric (IoU >= 0.5), plus false events on burst-free controls.
    SpotBench(bench::BenchArgs),
    /// Spotting on the real-clip development set (tests/data/video/dev): false events per minute
    /// on real controls per kind, real episodes found, bursts spliced into real moving faces.
    DevBench(devbench::DevBenchArgs),
    /// Build the VLM request for a video: keyframes, measured summaries and events, the label
    /// set; prints the OpenAI-compatible messages with token estimates.
    Prompt(prompt::PromptArgs),
}

/// Which burn device runs the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (flex).
    Cpu,
    /// burn-wgpu on the system's GPU API (Vulkan natively; lavapipe without a GPU).
    Wgpu,
}

impl Backend {
    pub fn device(self) -> Result<burn::tensor::Device, String> {
        match self {
            Backend::Cpu => Ok(burn::tensor::Device::flex()),
            Backend::Wgpu => burn::tensor::Device::wgpu_options()
                .init()
                .map_err(|e| format!("no wgpu device: {e}")),
        }
    }
}

/// The face networks: where their files are, which device runs them, how the detector looks.
#[derive(Args)]
pub struct DetectorArgs {
    /// Run the detector once at this size (128..608, multiple of 32), as face-api.js does.
    /// Default: two views at 416, which also finds faces that fill the frame.
    #[arg(long)]
    input_size: Option<usize>,
    /// Minimum detection score.
    #[arg(long, default_value_t = 0.5)]
    score_threshold: f64,
    /// Folder with the face-api.js model files.
    #[arg(long)]
    models: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

impl DetectorArgs {
    pub fn analyzer(&self) -> Result<FaceAnalyzer, String> {
        let models = self.models.clone().unwrap_or_else(default_models_dir);
        let options = DetectorOptions {
            input_size: self.input_size,
            score_threshold: self.score_threshold,
        };
        let device = self.backend.device()?;
        let weights = FaceWeights::load_dir(&models).map_err(|e| e.to_string())?;
        FaceAnalyzer::new(&weights, &device, options).map_err(|e| e.to_string())
    }
}

/// Exit codes: 0 success, 1 a check failed, 2 bad input or set-up.
pub const EXIT_BAD_INPUT: u8 = 2;

/// `--keyframe-fps`: a finite rate from 0 to 5 (NaN or infinity would never finish sampling).
pub fn keyframe_fps(s: &str) -> Result<f64, String> {
    let max = emolens::timeline::keyframes::MAX_BASE_FPS;
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "a keyframe rate from 0 to {max} per second, got '{s}'"
        )),
    }
}

/// A finite number (no NaN, no infinity).
pub fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("a finite number, got '{s}'")),
    }
}

/// `--timeout`: whole seconds from 1 to a day.
pub fn timeout_secs(s: &str) -> Result<u64, String> {
    let max = emolens::remote::response::MAX_TIMEOUT.as_secs();
    match s.trim().parse::<u64>() {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(format!("seconds from 1 to {max} (a day), got '{s}'")),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Image(args) => image::run(args),
        Command::EvalCalibration(args) => calibration::run(args),
        Command::VlmCheck(args) => vlm_check::run(args),
        Command::Ask(args) => ask::run(args),
        Command::Video(args) => video::run(args),
        Command::SpotBench(args) => bench::run(args),
        Command::DevBench(args) => devbench::run(args),
        Command::Prompt(args) => prompt::run(args),
    }
}

/// Where the face-api.js model files are: `--models`, `EMOLENS_MODELS`, or the npm package
/// installed by the set-up (looked up from the working directory, then from the crate).
pub fn default_models_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("EMOLENS_MODELS") {
        return dir.into();
    }
    let relative = std::path::Path::new("node_modules/@vladmandic/face-api/model");
    if relative.is_dir() {
        return relative.to_path_buf();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
