//! Names the page needs to label what the package returns, so no JavaScript repeats them:
//! the order of `expressions` and `features` in frame records, `buildPrompt`'s modes and the
//! label sets.

use wasm_bindgen::prelude::*;

use crate::face::EXPRESSIONS;
use crate::prompt::PromptMode;
use crate::timeline::features::FEATURE_NAMES;

/// The 7 expression names, in the order of a frame record's `expressions` array.
#[wasm_bindgen(js_name = expressionNames)]
pub fn expression_names() -> Vec<String> {
    EXPRESSIONS.iter().map(|s| s.to_string()).collect()
}

/// The action feature names, in the order of a frame record's `features` array.
#[wasm_bindgen(js_name = featureNames)]
pub fn feature_names() -> Vec<String> {
    FEATURE_NAMES.iter().map(|s| s.to_string()).collect()
}

/// `buildPrompt`'s modes (`options.mode`), the default first.
#[wasm_bindgen(js_name = promptModes)]
pub fn prompt_modes() -> Vec<String> {
    [
        PromptMode::Enriched,
        PromptMode::Keyframes,
        PromptMode::Summaries,
    ]
    .iter()
    .map(|mode| {
        serde_json::to_value(mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .expect("a prompt mode serialises to its name")
    })
    .collect()
}

/// The label names of a set (`'dfew'`, `'mafw'`, `'faceapi'`, `'a,b,c'`), in the set's order: the
/// names `askClip`, `askRemote` and `buildPrompt` use for `labels`.
#[wasm_bindgen(js_name = labelNames)]
pub fn label_names(spec: &str) -> Result<Vec<String>, JsError> {
    crate::labels::LabelSet::from_spec(spec)
        .map(|set| set.names().to_vec())
        .map_err(|e| JsError::new(&format!("labels: {e}")))
}
