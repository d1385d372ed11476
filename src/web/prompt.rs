//! `buildPrompt(report, options)`: the VLM request from a video report, the same JSON as
//! `emolens prompt` prints (the library's prompt code on the report's keyframes and summaries).
//!
//! ```js
//! const prompt = buildPrompt(report, { labels: 'dfew', mode: 'enriched' });
//! ```

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::clip::clip_of;
use crate::labels::LabelSet;
use crate::prompt::{ImageDetail, PromptMode, PromptRequest, prompt_json};
use crate::timeline::{KeyframeOptions, KeyframeSampling, VideoReport};

/// Options of `buildPrompt`, named as `emolens prompt`'s flags.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PromptOptions {
    /// 'dfew', 'ferv39k', 'mafw', 'faceapi', 'a,b,c', or an array of names.
    #[serde(default)]
    labels: Option<LabelsOption>,
    #[serde(default)]
    mode: Option<PromptMode>,
    #[serde(default)]
    detail: Option<ImageDetail>,
    #[serde(default)]
    permutations: Option<usize>,
    #[serde(default)]
    stage1: bool,
    /// Pick keyframes again at this base rate (needs the report's records; image modes need
    /// pixels for every new keyframe, i.e. only frames that were keyframes in the report).
    #[serde(default)]
    keyframe_fps: Option<f64>,
    /// Pick keyframes again with this sampling ('balanced' | 'uniform'), under the same conditions.
    #[serde(default)]
    keyframe_sampling: Option<KeyframeSampling>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelsOption {
    Spec(String),
    List(Vec<String>),
}

/// Builds the VLM request from a video report (`analyzer.analyzeVideo`'s result, or
/// `emolens video --json` with keyframe data URLs): the same JSON as `emolens prompt`.
///
/// `options`: `{ labels = 'dfew', mode = 'enriched'|'keyframes'|'summaries', detail = 'low'|'high',
/// permutations = 1, stage1 = false, keyframeFps?, keyframeSampling? }`. `summaries` carries no
/// image. Keyframes are the report's; `keyframeFps` / `keyframeSampling` pick them again from its records (`records: true`), and image
/// modes then need a JPEG for each, which only frames that were already keyframes have.
#[wasm_bindgen(js_name = buildPrompt)]
pub fn build_prompt(report: JsValue, options: JsValue) -> Result<JsValue, JsError> {
    // Straight from the JS values (no JSON text): every number arrives bit-exact, so spotting
    // the records again (keyframeFps) gives exactly the report's events.
    let report: VideoReport = serde_wasm_bindgen::from_value(report).map_err(|e| {
        JsError::new(&format!(
            "buildPrompt takes the report of analyzeVideo (or emolens video --json): {e}"
        ))
    })?;
    let options: PromptOptions = if options.is_undefined() || options.is_null() {
        serde_wasm_bindgen::from_value(js_sys::Object::new().into())
    } else {
        serde_wasm_bindgen::from_value(options)
    }
    .map_err(|e| JsError::new(&format!("bad buildPrompt options: {e}")))?;
    // Another keyframe rate: picked again from the records; pixels exist only for frames that
    // were keyframes already (checked below when the mode sends images).
    let report = match (options.keyframe_fps, options.keyframe_sampling) {
        (None, None) => report,
        (fps, sampling) => {
            let fps = fps.unwrap_or(KeyframeOptions::default().base_fps);
            if !(fps.is_finite() && fps >= 0.0) {
                return Err(JsError::new(&format!(
                    "keyframeFps must be a number >= 0 (at most 5 are used), not {fps}"
                )));
            }
            report
                .with_keyframes(&KeyframeOptions {
                    base_fps: fps,
                    max_keyframes: None,
                    sampling: sampling.unwrap_or_default(),
                })
                .map_err(|e| JsError::new(&format!("keyframeFps / keyframeSampling: {e}")))?
        }
    };
    let spec = match options.labels {
        None => "dfew".to_string(),
        Some(LabelsOption::Spec(spec)) => spec,
        Some(LabelsOption::List(names)) => names.join(","),
    };
    let labels = LabelSet::from_spec(&spec).map_err(|e| JsError::new(&format!("labels: {e}")))?;
    let mode = options.mode.unwrap_or(PromptMode::Enriched);
    let permutations = options.permutations.unwrap_or(1);
    if permutations == 0 {
        return Err(JsError::new("permutations must be at least 1"));
    }
    let clip = clip_of(&report, mode, options.stage1).map_err(|e| JsError::new(&e))?;
    let json = prompt_json(
        &report.path,
        &clip,
        &PromptRequest {
            mode,
            labels,
            detail: options.detail.unwrap_or_default(),
            permutations,
            stage1: options.stage1,
        },
    )
    .map_err(|e| JsError::new(&e))?;
    json.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}
