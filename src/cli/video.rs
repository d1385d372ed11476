//! `emolens video PATH [--json] [--keyframes DIR] [--keyframe-fps F] [--batch N]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::{DetectorArgs, EXIT_BAD_INPUT};
use clap::Args;
use emolens::face::TrackingOptions;
use emolens::timeline::keyframes::{SummaryOptions, summarise_with};
use emolens::timeline::{KeyframeOptions, KeyframeSampling, VideoReport};
use emolens::video::{Analysis, analyse_video, encode_frames};

#[derive(Args)]
pub struct VideoArgs {
    /// Any video file ffmpeg reads.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write keyframes as JPEG files into this folder.
    #[arg(long)]
    keyframes: Option<PathBuf>,
    /// Base keyframe rate per second (at most 5); event apexes and rare states come on top.
    #[arg(long, default_value_t = 1.0, value_parser = super::keyframe_fps)]
    keyframe_fps: f64,
    /// balanced: base rate plus event apexes and rare states; uniform: evenly spread frames only
    /// (the usual VLM baseline, for comparison).
    #[arg(long, default_value = "balanced")]
    keyframe_sampling: KeyframeSampling,
    /// At most this many keyframes (event apexes always kept).
    #[arg(long)]
    max_keyframes: Option<usize>,
    /// Longer side of keyframe JPEGs in pixels (0: frame size).
    #[arg(long, default_value_t = 640)]
    keyframe_size: usize,
    /// JPEG quality 1–100.
    #[arg(long, default_value_t = 85)]
    keyframe_quality: u8,
    /// Include every frame's record (box, landmarks, expressions, features) in the JSON.
    #[arg(long)]
    records: bool,
    /// Summaries without the expression classifier's labels: movements, talking, head pose only.
    #[arg(long)]
    movements_only: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

/// How frames are decoded and analysed (shared by `video` and `prompt`).
#[derive(Args)]
pub struct AnalysisArgs {
    /// Frames per forward pass.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Downscale frames so the longer side is at most this (0: full size, up to 36 megapixels).
    #[arg(long, default_value_t = emolens::video::DEFAULT_MAX_SIDE)]
    max_side: usize,
    /// Run the face detector on every frame instead of following faces from frame to frame.
    #[arg(long)]
    no_tracking: bool,
    /// With tracking, run the detector at least every N frames (new faces are found within N).
    #[arg(long, default_value_t = TrackingOptions::default().redetect_every)]
    redetect_every: usize,
    #[command(flatten)]
    detector: DetectorArgs,
}

impl AnalysisArgs {
    pub fn max_side(&self) -> Option<usize> {
        Some(self.max_side)
    }

    pub fn tracking(&self) -> Result<TrackingOptions, String> {
        let options = TrackingOptions::with(!self.no_tracking, Some(self.redetect_every));
        options
            .validate()
            .map_err(|e| format!("--redetect-every: {e}"))?;
        Ok(options)
    }
}

/// Decodes and analyses every frame of `path`, reporting progress on stderr.
pub fn analyse(path: &Path, args: &AnalysisArgs) -> Result<Analysis, String> {
    let analyzer = args.detector.analyzer()?;
    let tracking = args.tracking()?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut progress = |done: usize, total: Option<usize>| {
        // Long files: a line every few seconds, so nobody wonders whether it hangs.
        if last_report.elapsed().as_secs_f64() > 2.0 {
            last_report = Instant::now();
            let total = total.map(|n| format!("/{n}")).unwrap_or_default();
            eprintln!(
                "emolens: {done}{total} frames analysed ({:.1} frames/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    };
    analyse_video(
        &analyzer,
        path,
        args.max_side(),
        args.batch,
        tracking,
        &mut progress,
    )
    .map_err(|e| e.to_string())
}

/// Writes the keyframes' JPEGs into `dir` and names each file in the report.
fn write_keyframes(
    path: &Path,
    max_side: Option<usize>,
    report: &mut VideoReport,
    dir: &Path,
    size: usize,
    quality: u8,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let frames = report.keyframe_frames();
    let jpegs = encode_frames(path, max_side, &frames, size, quality)?;
    for (k, (_, _, _, jpeg)) in report.keyframes.iter_mut().zip(jpegs) {
        let name = format!(
            "keyframe_{:06}_{:08.3}s.jpg",
            k.keyframe.frame, k.keyframe.time
        );
        std::fs::write(dir.join(&name), jpeg)
            .map_err(|e| format!("{}: {e}", dir.join(&name).display()))?;
        k.file = Some(name);
    }
    Ok(())
}

pub fn run(args: VideoArgs) -> ExitCode {
    let analysis = match analyse(&args.path, &args.analysis) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("emolens: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut report = VideoReport::new(
        args.path.display().to_string(),
        &analysis.timeline,
        &analysis.spotting,
        analysis.frames_per_second,
        &KeyframeOptions {
            base_fps: args.keyframe_fps,
            max_keyframes: args.max_keyframes,
            sampling: args.keyframe_sampling,
        },
        args.records,
    );
    report.tracking = Some(analysis.tracking);
    if args.movements_only {
        let keyframes: Vec<_> = report
            .keyframes
            .iter()
            .map(|k| k.keyframe.clone())
            .collect();
        report.summaries = summarise_with(
            &analysis.timeline,
            &analysis.spotting,
            &keyframes,
            &SummaryOptions { labels: false },
        );
    }
    if let Some(dir) = &args.keyframes
        && let Err(e) = write_keyframes(
            &args.path,
            args.analysis.max_side(),
            &mut report,
            dir,
            args.keyframe_size,
            args.keyframe_quality,
        )
    {
        eprintln!("emolens: keyframes: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        println!(
            "{}: {} frames at {:.2} fps ({:.2} s), face in {} frames; analysed at {:.1} frames/s",
            report.path,
            report.frames,
            report.fps,
            report.duration,
            report.face_frames,
            report.analysis_fps
        );
        let t = analysis.tracking;
        if !args.analysis.no_tracking {
            println!(
                "face detector on {} of {} frames, faces tracked on {} ({} periodic, {} moved, {} lost, {} at the edge)",
                t.detected, report.frames, t.tracked, t.periodic, t.moved, t.lost, t.edge
            );
        }
        println!(
            "{} event(s), {} blink(s), {} talking stretch(es)",
            report.events.len(),
            report.blinks,
            report.talking
        );
        for e in &report.events {
            println!("  {}", emolens::timeline::keyframes::describe_event(e));
        }
        println!("summaries:");
        for s in &report.summaries {
            println!("  {}", s.text);
        }
        println!("keyframes:");
        for k in &report.keyframes {
            println!(
                "  {:.2} s (frame {}, {:?}){}",
                k.keyframe.time,
                k.keyframe.frame,
                k.keyframe.reason,
                k.file
                    .as_ref()
                    .map(|f| format!(" → {f}"))
                    .unwrap_or_default()
            );
        }
    }
    ExitCode::SUCCESS
}
