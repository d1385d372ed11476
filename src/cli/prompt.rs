//! `emolens prompt PATH [--labels dfew|mafw|...] [--mode enriched|keyframes|summaries] [--keyframe-fps F]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EXIT_BAD_INPUT;
use super::video::{AnalysisArgs, analyse};
use emolens::labels::LabelSet;
use emolens::prompt::{ClipContext, ImageDetail, PromptMode, PromptRequest, prompt_json};
use emolens::timeline::{KeyframeOptions, KeyframeSampling, VideoReport};
use emolens::video::encode_frames;

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Enriched,
    Keyframes,
    Summaries,
}

#[derive(Clone, Copy, ValueEnum)]
enum DetailArg {
    Low,
    High,
}

/// How a clip becomes the context of a VLM request (shared by `prompt` and `ask`).
#[derive(Args)]
pub struct ClipArgs {
    #[arg(long, value_enum, default_value_t = Mode::Enriched)]
    mode: Mode,
    /// Base keyframe rate per second (at most 5); event apexes and rare states come on top.
    #[arg(long, default_value_t = 1.0, value_parser = super::keyframe_fps)]
    keyframe_fps: f64,
    /// balanced: base rate plus event apexes and rare states; uniform: evenly spread frames only
    /// (the usual VLM baseline, for comparison).
    #[arg(long, default_value = "balanced")]
    keyframe_sampling: KeyframeSampling,
    /// Longer side of keyframe JPEGs in pixels.
    #[arg(long, default_value_t = 512)]
    keyframe_size: usize,
    /// Image detail level (sets the image token cost).
    #[arg(long, value_enum, default_value_t = DetailArg::Low)]
    detail: DetailArg,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

impl ClipArgs {
    pub fn mode(&self) -> PromptMode {
        match self.mode {
            Mode::Enriched => PromptMode::Enriched,
            Mode::Keyframes => PromptMode::Keyframes,
            Mode::Summaries => PromptMode::Summaries,
        }
    }

    pub fn detail(&self) -> ImageDetail {
        match self.detail {
            DetailArg::Low => ImageDetail::Low,
            DetailArg::High => ImageDetail::High,
        }
    }

    /// Analyses the clip and gathers its context; keyframe pixels are only encoded when
    /// something will carry them (an image mode, or stage 1).
    pub fn clip(&self, path: &Path, stage1: bool) -> Result<(VideoReport, ClipContext), String> {
        let analysis = analyse(path, &self.analysis)?;
        let report = VideoReport::new(
            path.display().to_string(),
            &analysis.timeline,
            &analysis.spotting,
            analysis.frames_per_second,
            &KeyframeOptions {
                base_fps: self.keyframe_fps,
                max_keyframes: None,
                sampling: self.keyframe_sampling,
            },
            false,
        );
        let jpegs = if self.mode().sends_images() || stage1 {
            let jpegs = encode_frames(
                path,
                self.analysis.max_side(),
                &report.keyframe_frames(),
                self.keyframe_size,
                85,
            )?
            .into_iter()
            .map(|(_, w, h, jpeg)| (w, h, jpeg));
            Some(jpegs.collect())
        } else {
            None
        };
        let clip = ClipContext::from_report(&report, jpegs);
        Ok((report, clip))
    }
}

#[derive(Args)]
pub struct PromptArgs {
    /// Any video file ffmpeg reads.
    path: PathBuf,
    /// dfew, ferv39k, mafw, faceapi, or a comma-separated list.
    #[arg(long, default_value = "dfew")]
    labels: String,
    /// Label-order debiasing: this many requests, labels listed in rotated orders.
    #[arg(long, default_value_t = 1)]
    permutations: usize,
    /// Also print the stage-1 requests (one per segment).
    #[arg(long)]
    stage1: bool,
    #[command(flatten)]
    clip: ClipArgs,
}

pub fn run(args: PromptArgs) -> ExitCode {
    match build(&args) {
        Ok(json) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("JSON serialises")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("emolens: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn build(args: &PromptArgs) -> Result<serde_json::Value, String> {
    let labels = LabelSet::from_spec(&args.labels).map_err(|e| format!("--labels: {e}"))?;
    let request = PromptRequest {
        mode: args.clip.mode(),
        labels,
        detail: args.clip.detail(),
        permutations: args.permutations,
        stage1: args.stage1,
    };
    // Checked before the clip is analysed: a refused request should not cost the analysis.
    request
        .check()
        .map_err(|e| format!("--permutations/--stage1: {e}"))?;
    let (report, clip) = args.clip.clip(&args.path, args.stage1)?;
    prompt_json(&report.path, &clip, &request)
}
