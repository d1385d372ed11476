//! `emolens image PATH... [--json] [--input-size N]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{Backend, EXIT_BAD_INPUT, default_models_dir};
use emolens::face::{DetectorOptions, EXPRESSIONS, FaceAnalyzer, FaceWeights, FrameFaces};
use emolens::frames::read_image;

#[derive(Args)]
pub struct ImageArgs {
    /// JPEG or PNG files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON (one array, an object per file) instead of text.
    #[arg(long)]
    json: bool,
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

#[derive(Serialize)]
struct FileResult<'a> {
    path: String,
    #[serde(flatten)]
    frame: &'a FrameFaces,
}

pub fn run(args: ImageArgs) -> ExitCode {
    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let options = DetectorOptions {
        input_size: args.input_size,
        score_threshold: args.score_threshold,
    };
    let analyzer = match args.backend.device().and_then(|device| {
        let weights = FaceWeights::load_dir(&models).map_err(|e| e.to_string())?;
        FaceAnalyzer::new(&weights, &device, options).map_err(|e| e.to_string())
    }) {
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
