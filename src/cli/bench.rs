//! `emolens spot-bench VIDEO [--clips N] [--controls N] [--seed S] [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::EXIT_BAD_INPUT;
use super::video::{AnalysisArgs, analyse};
use emolens::timeline::SpotOptions;
use emolens::timeline::bench::{
    BenchOptions, BenchScore, BurstShape, KeyframeCoverage, evaluate, find_ranges, generate,
    keyframe_coverage,
};

#[derive(Args)]
pub struct BenchArgs {
    /// A clip that starts neutral and then smiles (e.g. single_face.mp4).
    video: PathBuf,
    /// Clips with smile bursts.
    #[arg(long, default_value_t = 24)]
    clips: usize,
    /// Burst-free control clips.
    #[arg(long, default_value_t = 6)]
    controls: usize,
    /// Frames per clip.
    #[arg(long, default_value_t = 300)]
    clip_frames: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Abrupt bursts of full-smile frames instead of rise-and-fall bursts from the real onset.
    #[arg(long)]
    step: bool,
    #[arg(long)]
    json: bool,
    /// Keyframe budget per second for the keyframe-sampling comparison.
    #[arg(long, default_value_t = 1.0, value_parser = super::keyframe_fps)]
    keyframe_fps: f64,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

#[derive(Serialize)]
struct Report {
    source: String,
    neutral_frames: (usize, usize),
    smile_frames: (usize, usize),
    options: BenchOptions,
    score: BenchScore,
    /// Uniform against emotion-balanced keyframe sampling at the same budget.
    keyframes: Vec<KeyframeCoverage>,
}

pub fn run(args: BenchArgs) -> ExitCode {
    let source = analyse(&args.video, &args.analysis);
    let source = match source {
        Ok(a) => a.timeline,
        Err(e) => {
            eprintln!("emolens: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let Some((neutral, smile)) = find_ranges(&source) else {
        eprintln!(
            "emolens: {} needs a neutral start and a smile of at least 15 frames",
            args.video.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let options = BenchOptions {
        clips: args.clips,
        controls: args.controls,
        clip_frames: args.clip_frames,
        seed: args.seed,
        shape: if args.step {
            BurstShape::Step
        } else {
            BurstShape::RiseFall
        },
        ..BenchOptions::default()
    };
    let clips = generate(neutral.clone(), smile.clone(), &options);
    let score = evaluate(&source, &clips, &SpotOptions::default());
    let keyframes = keyframe_coverage(&source, &clips, &SpotOptions::default(), args.keyframe_fps);
    let report = Report {
        source: args.video.display().to_string(),
        neutral_frames: (neutral.start, neutral.end - 1),
        smile_frames: (smile.start, smile.end - 1),
        options,
        score,
        keyframes,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        let s = &report.score;
        println!(
            "source {}: neutral frames {}–{}, smile frames {}–{}",
            report.source,
            report.neutral_frames.0,
            report.neutral_frames.1,
            report.smile_frames.0,
            report.smile_frames.1
        );
        println!(
            "{} clips ({} bursts), {} controls: {} events, {} hits ({} called micro)",
            s.clips, s.truth, s.controls, s.predicted, s.hits, s.hits_micro
        );
        println!(
            "precision {:.3}, recall {:.3}, F1 {:.3}; false events on controls {:.2}/min",
            s.precision, s.recall, s.f1, s.control_false_per_minute
        );
        println!(
            "keyframes at {} per second of clip, bursts with a keyframe inside:",
            args.keyframe_fps
        );
        for k in &report.keyframes {
            println!(
                "  {:<24} {}/{} bursts ({:.1}%), {} keyframes, {:.1}% of them not neutral",
                k.strategy,
                k.bursts_shown,
                k.bursts,
                100.0 * k.burst_recall,
                k.keyframes,
                100.0 * k.non_neutral_share
            );
        }
    }
    ExitCode::SUCCESS
}
