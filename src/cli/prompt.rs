//! `emolens prompt PATH [--labels dfew|mafw|...] [--mode enriched|keyframes|summaries] [--keyframe-fps F]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EXIT_BAD_INPUT;
use super::video::{AnalysisArgs, analyse};
use emolens::labels::LabelSet;
use emolens::prompt::{
    ClipContext, ImageDetail, LabelOrdering, PromptMode, PromptOptions, all_frames_tokens,
    estimate_tokens, final_request, label_orders, messages_json, stage1_requests,
};
use emolens::timeline::{KeyframeOptions, select_keyframes, summarise};
use emolens::video::encode_frames;

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Enriched,
    Keyframes,
    Summaries,
}

#[derive(Args)]
pub struct PromptArgs {
    /// Any video file ffmpeg reads.
    path: PathBuf,
    /// dfew, ferv39k, mafw, faceapi, or a comma-separated list.
    #[arg(long, default_value = "dfew")]
    labels: String,
    #[arg(long, value_enum, default_value_t = Mode::Enriched)]
    mode: Mode,
    /// Base keyframe rate per second (at most 5); event apexes and rare states come on top.
    #[arg(long, default_value_t = 1.0)]
    keyframe_fps: f64,
    /// Longer side of keyframe JPEGs in pixels.
    #[arg(long, default_value_t = 512)]
    keyframe_size: usize,
    /// Image detail level (sets the image token cost).
    #[arg(long, value_enum, default_value_t = DetailArg::Low)]
    detail: DetailArg,
    /// Label-order debiasing: this many requests, labels listed in rotated orders.
    #[arg(long, default_value_t = 1)]
    permutations: usize,
    /// Also print the stage-1 requests (one per segment).
    #[arg(long)]
    stage1: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum DetailArg {
    Low,
    High,
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
    let mode = match args.mode {
        Mode::Enriched => PromptMode::Enriched,
        Mode::Keyframes => PromptMode::Keyframes,
        Mode::Summaries => PromptMode::Summaries,
    };
    let detail = match args.detail {
        DetailArg::Low => ImageDetail::Low,
        DetailArg::High => ImageDetail::High,
    };
    let analysis = analyse(&args.path, &args.analysis)?;
    let keyframe_options = KeyframeOptions {
        base_fps: args.keyframe_fps,
        max_keyframes: None,
    };
    let keyframes = select_keyframes(&analysis.timeline, &analysis.spotting, &keyframe_options);
    let summaries = summarise(&analysis.timeline, &analysis.spotting, &keyframes);
    // Pixels are only encoded when the request will carry them.
    let jpegs = if mode.sends_images() || args.stage1 {
        let frames: Vec<usize> = keyframes.iter().map(|k| k.frame).collect();
        encode_frames(
            &args.path,
            args.analysis.max_side,
            &frames,
            args.keyframe_size,
            85,
        )?
        .into_iter()
        .map(|(_, w, h, jpeg)| (w, h, jpeg))
        .collect()
    } else {
        keyframes.iter().map(|_| (0, 0, Vec::new())).collect()
    };
    let clip = ClipContext::from_analysis(
        &analysis.timeline,
        &analysis.spotting,
        &keyframes,
        &summaries,
        jpegs,
    );
    let keyframe_size = clip
        .keyframes
        .first()
        .map(|k| (k.width, k.height))
        .unwrap_or((0, 0));

    let requests: Vec<serde_json::Value> = label_orders(
        labels.len(),
        args.permutations.max(1),
        LabelOrdering::Cyclic,
    )
    .into_iter()
    .map(|order| {
        let mut options = PromptOptions::new(mode, labels.clone());
        options.label_order = order.clone();
        options.detail = detail;
        let messages = final_request(&clip, &options);
        let tokens = estimate_tokens(&messages, keyframe_size);
        serde_json::json!({
            "label_order": order.iter().map(|&i| labels.name(i)).collect::<Vec<_>>(),
            "messages": messages_json(&messages),
            "tokens": tokens,
        })
    })
    .collect();
    let mut out = serde_json::json!({
        "path": args.path.display().to_string(),
        "mode": mode,
        "labels": labels.names(),
        "frames": clip.frames,
        "duration": clip.duration,
        "keyframes": clip.keyframes.iter().map(|k| k.time).collect::<Vec<_>>(),
        "requests": requests,
        "all_frames_image_tokens": all_frames_tokens(&clip, detail),
    });
    if args.stage1 {
        out["stage1"] = stage1_requests(&clip, detail)
            .into_iter()
            .map(|(segment, messages)| serde_json::json!({"segment": segment, "messages": messages_json(&messages)}))
            .collect();
    }
    Ok(out)
}
