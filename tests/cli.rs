//! The `emolens` binary as a user runs it.

use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn emolens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emolens"))
        .current_dir(ROOT)
        .args(args)
        .output()
        .unwrap()
}

fn faces(path: &str) -> String {
    format!("{ROOT}/tests/data/faces/{path}")
}

#[test]
fn image_json_lists_every_face() {
    let out = emolens(&[
        "image",
        "--json",
        &faces("multi_face.jpg"),
        &faces("free-mountain-vector-01.jpg"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = json.as_array().unwrap();
    assert_eq!(files.len(), 2);
    let multi = files[0]["faces"].as_array().unwrap();
    assert!(multi.len() >= 2);
    let face = &multi[0];
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 68);
    for key in ["x", "y", "width", "height"] {
        assert!(face["box"][key].is_f64(), "box.{key}");
    }
    for label in [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgusted",
        "surprised",
    ] {
        assert!(face["expressions"][label].is_f64(), "{label}");
    }
    assert_eq!(
        files[1]["faces"],
        serde_json::json!([]),
        "no face: an empty list"
    );
}

#[test]
fn text_output_names_the_expression() {
    let out = emolens(&["image", "assets/sample.jpg"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("1 face(s)") && text.contains("landmarks:"),
        "{text}"
    );
}

#[test]
fn unreadable_files_exit_2_with_one_line() {
    for bad in ["/nonexistent.jpg", "Cargo.toml"] {
        let out = emolens(&["image", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(bad), "{stderr}");
    }
}

#[test]
fn bad_input_size_and_missing_models_are_clear() {
    let out = emolens(&["image", "--input-size", "100", "assets/sample.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 32"));
    let out = emolens(&["image", "--models", "/nonexistent", "assets/sample.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("tiny_face_detector_model-weights_manifest.json")
    );
}
