//! `emolens image PATH... [--json] [--input-size N]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{DetectorArgs, EXIT_BAD_INPUT};
use emolens::face::{EXPRESSIONS, FrameFaces};
use emolens::frames::read_image;

#[derive(Args)]
pub struct ImageArgs {
    /// JPEG or PNG files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON (one array, an object per file) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    detector: DetectorArgs,
}

#[derive(Serialize)]
struct FileResult<'a> {
    path: String,
    #[serde(flatten)]
    frame: &'a FrameFaces,
}

pub fn run(args: ImageArgs) -> ExitCode {
    let analyzer = match args.detector.analyzer() {
        Ok(analyzer) => analyzer,
        Err(e) => {
            eprintln!("emolens: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };

    let mut failed = false;
    let mut results = Vec::new();
    for path in &args.paths {
        let analysis = read_image(path)
            .map_err(|e| e.to_string())
            .and_then(|image| {
                pollster::block_on(analyzer.analyze(&[&image])).map_err(|e| e.to_string())
            });
        match analysis {
            Ok(mut frames) => results.push((path.display().to_string(), frames.remove(0))),
            Err(e) => {
                eprintln!("emolens: {e}");
                failed = true;
            }
        }
    }

    if args.json {
        let out: Vec<FileResult> = results
            .iter()
            .map(|(path, frame)| FileResult {
                path: path.clone(),
                frame,
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("results serialise")
        );
    } else {
        for (path, frame) in &results {
            print_text(path, frame);
        }
    }
    if failed {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_text(path: &str, frame: &FrameFaces) {
    println!(
        "{path}: {}x{}, {} face(s)",
        frame.width,
        frame.height,
        frame.faces.len()
    );
    for (i, face) in frame.faces.iter().enumerate() {
        let b = face.bbox;
        let (label, p) = face.expressions.dominant();
        println!(
            "  face {i}: box x={:.1} y={:.1} w={:.1} h={:.1} score={:.3}, {label} ({:.1}%)",
            b.x,
            b.y,
            b.width,
            b.height,
            face.score,
            p * 100.0
        );
        let probs: Vec<String> = EXPRESSIONS
            .iter()
            .zip(face.expressions.to_array())
            .map(|(name, p)| format!("{name} {p:.3}"))
            .collect();
        println!("    expressions: {}", probs.join(", "));
        let points: Vec<String> = face
            .landmarks
            .iter()
            .map(|[x, y]| format!("{x:.1},{y:.1}"))
            .collect();
        println!("    landmarks: {}", points.join(" "));
    }
}
