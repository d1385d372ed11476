//! The face pipeline on real photos and real weights, natively on burn's CPU backend, and its
//! parity with face-api.js itself (run by node on the same lossless pixels).

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use emolens::face::{
    DetectorOptions, EXPRESSIONS, Face, FaceAnalyzer, FaceWeights, FrameFaces, MODEL_NAMES,
};
use emolens::frames::{RgbImage, read_image};
use emolens::weights::{Manifest, WeightError, load_from_dir};
use serde::Deserialize;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn models_dir() -> PathBuf {
    Path::new(ROOT).join("node_modules/@vladmandic/face-api/model")
}

fn faces_dir() -> PathBuf {
    Path::new(ROOT).join("tests/data/faces")
}

fn analyzer(options: DetectorOptions) -> FaceAnalyzer {
    let weights =
        FaceWeights::load_dir(&models_dir()).expect("face-api models installed by `npm ci`");
    FaceAnalyzer::new(&weights, &Device::flex(), options).unwrap()
}

fn analyze(analyzer: &FaceAnalyzer, image: &RgbImage) -> FrameFaces {
    pollster::block_on(analyzer.analyze(&[image]))
        .unwrap()
        .remove(0)
}

fn photo(name: &str) -> RgbImage {
    read_image(&faces_dir().join(name)).unwrap()
}

// ---- weights -------------------------------------------------------------------------------

#[test]
fn real_weights_load_with_every_shape_checked() {
    for model in MODEL_NAMES {
        load_from_dir(&models_dir(), model).unwrap();
    }
    let weights = FaceWeights::load_dir(&models_dir()).unwrap();
    FaceAnalyzer::new(&weights, &Device::flex(), DetectorOptions::default()).unwrap();
}

fn manifest_and_shard(model: &str) -> (String, Vec<u8>) {
    let manifest =
        std::fs::read_to_string(models_dir().join(format!("{model}-weights_manifest.json")))
            .unwrap();
    let shard = std::fs::read(models_dir().join(format!("{model}.bin"))).unwrap();
    (manifest, shard)
}

#[test]
fn truncated_weights_are_a_clear_error() {
    let (manifest, mut shard) = manifest_and_shard("face_expression_model");
    shard.truncate(shard.len() - 10);
    let err = Manifest::parse("face_expression_model", &manifest)
        .unwrap()
        .decode(&[shard])
        .unwrap_err();
    assert!(matches!(err, WeightError::ByteCount { .. }), "{err}");
    assert!(
        err.to_string().contains("face_expression_model.bin"),
        "{err}"
    );
}

#[test]
fn a_manifest_for_another_model_is_a_clear_error() {
    // The landmark manifest with the expression weights: the byte count is wrong.
    let (manifest, _) = manifest_and_shard("face_landmark_68_model");
    let (_, shard) = manifest_and_shard("face_expression_model");
    let err = Manifest::parse("face_landmark_68_model", &manifest)
        .unwrap()
        .decode(&[shard])
        .unwrap_err();
    assert!(matches!(err, WeightError::ByteCount { .. }), "{err}");

    // The expression model installed under the landmark model's name: the files decode, and the
    // network's shape check catches the 7-unit head where 136 are needed.
    let dir = tempdir("wrong-model");
    for model in MODEL_NAMES {
        for suffix in ["-weights_manifest.json", ".bin"] {
            let source = if model == "face_landmark_68_model" {
                "face_expression_model"
            } else {
                model
            };
            std::fs::copy(
                models_dir().join(format!("{source}{suffix}")),
                dir.join(format!("{model}{suffix}")),
            )
            .unwrap();
        }
    }
    let weights = FaceWeights::load_dir(&dir).unwrap();
    let err = FaceAnalyzer::new(&weights, &Device::flex(), DetectorOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("fc/weights") && message.contains("[256, 136]"),
        "{message}"
    );
}

#[test]
fn malformed_or_missing_manifests_are_clear_errors() {
    assert!(matches!(
        Manifest::parse("m", "{not json"),
        Err(WeightError::Manifest { .. })
    ));
    assert!(matches!(
        Manifest::parse("m", r#"[{"paths": [], "weights": []}]"#),
        Err(WeightError::Manifest { .. })
    ));
    let int_weights =
        r#"[{"paths": ["a.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "int32"}]}]"#;
    let err = Manifest::parse("m", int_weights)
        .unwrap()
        .decode(&[vec![0; 4]])
        .unwrap_err();
    assert!(matches!(err, WeightError::Dtype { .. }), "{err}");
    let err = load_from_dir(Path::new("/nonexistent"), "tiny_face_detector_model").unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/tiny_face_detector_model-weights_manifest.json"),
        "{err}"
    );
}

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(ROOT).join("target/test-tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- behaviour on the labelled photos ------------------------------------------------------

#[test]
fn labelled_photos_are_recognised() {
    let analyzer = analyzer(DetectorOptions::default());
    let mut correct = 0;
    for label in EXPRESSIONS {
        let result = analyze(&analyzer, &photo(&format!("{label}.jpg")));
        assert!(!result.faces.is_empty(), "no face found in {label}.jpg");
        let main = result
            .faces
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .unwrap();
        let (predicted, p) = main.expressions.dominant();
        eprintln!(
            "{label}.jpg: {predicted} ({p:.3}), {} face(s)",
            result.faces.len()
        );
        let sum: f64 = main.expressions.to_array().iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
        assert_eq!(main.landmarks.len(), 68);
        correct += (predicted == label) as usize;
    }
    assert!(
        correct >= 6,
        "only {correct} of 7 labelled photos recognised"
    );
}

#[test]
fn no_face_in_a_landscape() {
    let result = analyze(
        &analyzer(DetectorOptions::default()),
        &photo("free-mountain-vector-01.jpg"),
    );
    assert!(result.faces.is_empty(), "{:?}", result.faces.len());
}

#[test]
fn several_faces_found() {
    let result = analyze(
        &analyzer(DetectorOptions::default()),
        &photo("multi_face.jpg"),
    );
    assert!(result.faces.len() >= 2, "found {}", result.faces.len());
}

#[test]
fn default_detection_finds_what_single_sizes_miss() {
    // face-api at 416 misses the frame-filling face; at 224 the small ones.
    let default = analyzer(DetectorOptions::default());
    let at = |size| {
        analyzer(DetectorOptions {
            input_size: Some(size),
            ..Default::default()
        })
    };
    let fearful = photo("fearful.jpg");
    assert_eq!(analyze(&at(416), &fearful).faces.len(), 0);
    assert_eq!(analyze(&default, &fearful).faces.len(), 1);
    let multi = photo("multi_face.jpg");
    let small = analyze(&at(224), &multi).faces.len();
    let found = analyze(&default, &multi).faces.len();
    let peer_best = analyze(&at(416), &multi).faces.len();
    assert!(
        found >= peer_best && found > small,
        "default {found}, 416: {peer_best}, 224: {small}"
    );
}

#[test]
fn grayscale_and_alpha_images_are_analysed() {
    let analyzer = analyzer(DetectorOptions::default());
    for name in ["BWPictureHuman.jpg", "Image_with_alpha.png"] {
        let result = analyze(&analyzer, &photo(name));
        eprintln!("{name}: {} face(s)", result.faces.len());
    }
    // A face in the alpha image (the peer finds it at 608).
    assert!(
        !analyze(&analyzer, &photo("Image_with_alpha.png"))
            .faces
            .is_empty()
    );
}

#[test]
fn unreadable_input_is_an_error() {
    assert!(read_image(Path::new("/nonexistent.jpg")).is_err());
    let err = read_image(&Path::new(ROOT).join("Cargo.toml")).unwrap_err();
    assert!(err.to_string().contains("Cargo.toml"), "{err}");
}

#[test]
fn frames_are_batched() {
    let analyzer = analyzer(DetectorOptions::default());
    let (a, b) = (photo("happy.jpg"), photo("multi_face.jpg"));
    let together = pollster::block_on(analyzer.analyze(&[&a, &b])).unwrap();
    let alone = [analyze(&analyzer, &a), analyze(&analyzer, &b)];
    for (t, s) in together.iter().zip(&alone) {
        assert_eq!(t.faces.len(), s.faces.len());
        for (x, y) in t.faces.iter().zip(&s.faces) {
            assert!(max_expression_diff(x, y) < 1e-5);
        }
    }
}

// ---- parity with face-api.js ---------------------------------------------------------------

/// The photos, as lossless PNG copies (JPEG decoders differ between the two sides). Made once
/// per test run; the tests that use them run in parallel.
fn png_copies() -> &'static [PathBuf] {
    static COPIES: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    COPIES.get_or_init(|| {
        let dir = Path::new(ROOT).join("target/parity");
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "angry.jpg",
            "disgusted.jpg",
            "fearful.jpg",
            "happy.jpg",
            "neutral.jpg",
            "sad.jpg",
            "surprised.jpg",
            "multi_face.jpg",
            "single_face.jpg",
            "Image_with_alpha.png",
        ];
        names
            .iter()
            .map(|name| {
                let out = dir.join(Path::new(name).with_extension("png").file_name().unwrap());
                // The alpha image keeps its alpha: both sides must drop it themselves.
                image::open(faces_dir().join(name))
                    .unwrap()
                    .save(&out)
                    .unwrap();
                out
            })
            .collect()
    })
}

#[derive(Deserialize)]
struct PeerFile {
    path: String,
    faces: Vec<Face>,
}

fn run_peer(size: usize, files: &[PathBuf]) -> Vec<PeerFile> {
    let output = Command::new("node")
        .arg(Path::new(ROOT).join("tests/peer/face_api_peer.mjs"))
        .args(["--input-size", &size.to_string(), "--backend", "wasm"])
        .args(files)
        .output()
        .expect("node runs (installed by the set-up)");
    assert!(
        output.status.success(),
        "face-api peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("peer prints JSON")
}

fn max_expression_diff(a: &Face, b: &Face) -> f64 {
    a.expressions
        .to_array()
        .iter()
        .zip(b.expressions.to_array())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_landmark_diff(a: &Face, b: &Face) -> f64 {
    a.landmarks
        .iter()
        .zip(&b.landmarks)
        .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn parity_with_face_api_at_416_and_608() {
    let files = png_copies();
    let mut worst = (0.0f64, 0.0f64, 1.0f64);
    let mut compared = 0;
    for size in [416, 608] {
        let analyzer = analyzer(DetectorOptions {
            input_size: Some(size),
            ..Default::default()
        });
        for peer in run_peer(size, files) {
            let ours = analyze(&analyzer, &read_image(Path::new(&peer.path)).unwrap());
            assert_eq!(
                ours.faces.len(),
                peer.faces.len(),
                "{} at {size}: face count",
                peer.path
            );
            for theirs in &peer.faces {
                // Match by overlap: every face the peer finds must be ours too.
                let mine = ours
                    .faces
                    .iter()
                    .max_by(|a, b| {
                        a.bbox
                            .iou(&theirs.bbox)
                            .total_cmp(&b.bbox.iou(&theirs.bbox))
                    })
                    .unwrap_or_else(|| panic!("{} at {size}: face missing", peer.path));
                let iou = mine.bbox.iou(&theirs.bbox);
                let landmarks = max_landmark_diff(mine, theirs);
                let expressions = max_expression_diff(mine, theirs);
                eprintln!(
                    "{} @{size}: IoU {iou:.5}, landmarks {landmarks:.4} px, expressions {expressions:.2e}",
                    peer.path
                );
                assert!(iou >= 0.95, "{} at {size}: box IoU {iou}", peer.path);
                assert!(
                    landmarks <= 1.0,
                    "{} at {size}: landmarks off by {landmarks} px",
                    peer.path
                );
                assert!(
                    expressions <= 1e-3,
                    "{} at {size}: expressions off by {expressions}",
                    peer.path
                );
                worst = (
                    worst.0.max(expressions),
                    worst.1.max(landmarks),
                    worst.2.min(iou),
                );
                compared += 1;
            }
        }
    }
    eprintln!(
        "parity: {compared} faces; max expression diff {:.2e}, max landmark diff {:.4} px, min box IoU {:.5}",
        worst.0, worst.1, worst.2
    );
    assert!(compared >= 15, "only {compared} faces compared");
}

/// Writes the native results (default options) for the browser test to compare against.
#[test]
fn native_reference_for_the_browser_test() {
    let analyzer = analyzer(DetectorOptions::default());
    let results: Vec<serde_json::Value> = png_copies()
        .iter()
        .map(|path| {
            let frame = analyze(&analyzer, &read_image(path).unwrap());
            let mut value = serde_json::to_value(&frame).unwrap();
            value["path"] = path.display().to_string().into();
            value
        })
        .collect();
    let out = Path::new(ROOT).join("target/parity/native.json");
    std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap()).unwrap();
}
