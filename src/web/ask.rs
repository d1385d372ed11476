//! `askClip(report, options)`: the whole multi-stage ask (stage 1, label orders, the long-tail
//! correction) about an analysed clip, through the core flow ([`crate::ask`]), with a remote
//! server over `fetch` or the VLM loaded in the page. Resolves to the JSON of `emolens ask VIDEO`.
//!
//! ```js
//! const answer = await askClip(report, { endpoint, model, apiKey, mode: 'enriched', stage1: true,
//!   permutations: 2, contentFree: true, onProgress: (done, total) => {}, signal });
//! const local = await askClip(report, { vlm: await LocalVlm.load({ baseUrl }), stage1: true });
//! ```

use js_sys::{Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::clip::clip_of;
use super::options::{bad, flag, get, number, to_js};
use crate::ask::{AskFlow, AskPlan, CorrectionPlan, PlanError, Question, Setting};
use crate::labels::LabelSet;
use crate::prompt::{ImageDetail, PromptMode};
#[cfg(feature = "page")]
use crate::remote::js::{remote_flow, settings};
use crate::timeline::VideoReport;
#[cfg(feature = "vlm")]
use {
    super::options::label_set,
    crate::ask::{AskError, Query, Stage},
    crate::vlm::{ask::DESCRIPTION_TOKENS, web::LocalVlm},
    web_sys::AbortSignal,
};

/// A refused plan, worded with the option it is about.
fn plan_error(e: PlanError) -> JsValue {
    let option = match e.setting {
        Setting::Permutations => "permutations",
        Setting::Priors => "priors",
        Setting::Tau => "tau",
        Setting::Stage1 => "stage1",
        Setting::ContentFree => "contentFree",
        Setting::Images => "textOnly",
    };
    bad(format!("options.{option}: {}", e.message))
}

/// A string option read as one of a serde enum's names (`mode`, `detail`).
fn named<T: serde::de::DeserializeOwned>(
    options: &JsValue,
    key: &str,
    default: T,
) -> Result<T, JsValue> {
    match get(options, key) {
        None => Ok(default),
        Some(v) => v
            .as_string()
            .and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok())
            .ok_or_else(|| {
                bad(format!(
                    "options.{key} is not one of its names (see the README)"
                ))
            }),
    }
}

/// The clip question of `options` about `report`: mode, detail, stage1, priors/tau, contentFree
/// (checked by `AskFlow::new`).
fn clip_plan(
    report: JsValue,
    options: &JsValue,
    labels: LabelSet,
    permutations: usize,
    seed: Option<u64>,
    max_in_flight: usize,
    text_only: bool,
) -> Result<AskPlan, JsValue> {
    let report: VideoReport = serde_wasm_bindgen::from_value(report).map_err(|e| {
        bad(format!(
            "askClip takes the report of analyzeVideo (or emolens video --json): {e}"
        ))
    })?;
    let mode: PromptMode = named(options, "mode", PromptMode::Enriched)?;
    let detail: ImageDetail = named(options, "detail", ImageDetail::Low)?;
    let stage1 = flag(options, "stage1", false)?;
    let correction = match (get(options, "priors"), flag(options, "contentFree", false)?) {
        (Some(p), _) => CorrectionPlan::Priors {
            priors: serde_wasm_bindgen::from_value(p)
                .map_err(|_| bad("options.priors must be an array of numbers, one per label"))?,
            tau: number(options, "tau", 1.0, -1e9, 1e9)?,
        },
        (None, true) => CorrectionPlan::ContentFree,
        (None, false) => CorrectionPlan::None,
    };
    let text_only = text_only || !mode.sends_images();
    let clip = clip_of(&report, mode, stage1 && !text_only).map_err(bad)?;
    Ok(AskPlan {
        labels,
        question: Question::Clip {
            clip,
            mode,
            detail,
            stage1,
        },
        permutations,
        seed,
        correction,
        max_in_flight,
        text_only,
    })
}

fn on_progress(options: &JsValue) -> Result<Option<Function>, JsValue> {
    get(options, "onProgress")
        .map(|f| {
            f.dyn_into::<Function>()
                .map_err(|_| bad("options.onProgress must be a function (done, total)"))
        })
        .transpose()
}

/// Asks about an analysed clip (`analyzeVideo`'s report, keyframe JPEGs included for the image
/// modes). With `options.vlm` (a loaded `LocalVlm`) it runs in the page (see
/// `LocalVlm.askClip`); else it asks the server at `options.endpoint` as `askRemote` does.
/// `options`: those of `askRemote`, and `mode = 'enriched' | 'keyframes' | 'summaries'`,
/// `detail = 'low' | 'high'`, `stage1 = false`, `priors?` (one per label) with `tau = 1`,
/// `contentFree = false`, `onProgress?(answered, total)`. Resolves to `emolens ask VIDEO --json`'s
/// JSON: `{ label, scores, probabilities, rationale, usage, runs, ..., stage1?, corrected? }`.
#[cfg(feature = "page")]
#[wasm_bindgen(js_name = askClip)]
pub fn ask_clip(report: JsValue, options: JsValue) -> Promise {
    if let Some(vlm) = get(&options, "vlm") {
        // The loaded model lives behind its JS object, in the VLM's own wasm module
        // (emolens/vlm): its own method runs the flow.
        let method = js_sys::Reflect::get(&vlm, &"askClip".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        return match method {
            Some(f) => match f.call2(&vlm, &report, &options) {
                Ok(p) => p.unchecked_into(),
                Err(e) => Promise::reject(&e),
            },
            None => Promise::reject(&bad("options.vlm must be a LocalVlm (LocalVlm.load)")),
        };
    }
    future_to_promise(async move {
        let s = settings(&options, &JsValue::UNDEFINED)?;
        let plan = clip_plan(
            report,
            &options,
            s.labels.clone(),
            s.permutations,
            s.seed,
            s.max_in_flight,
            s.text_only,
        )?;
        let flow = AskFlow::new(plan).map_err(plan_error)?;
        let outcome = remote_flow(&s, flow, on_progress(&options)?.as_ref()).await?;
        to_js(&outcome.to_json())
    })
}

/// A failed local ask: the stage, then the model's error.
#[cfg(feature = "vlm")]
fn local_error(e: AskError<JsValue>) -> JsValue {
    let message = get(&e.error, "message")
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{:?}", e.error));
    let text = match e.stage {
        Stage::Describe { segment } => format!("stage 1, stretch {segment}: {message}"),
        Stage::Classify => message,
        Stage::ContentFree => format!("content-free question: {message}"),
    };
    let err = js_sys::Error::new(&text);
    if get(&e.error, "name").and_then(|n| n.as_string()).as_deref() == Some("AbortError") {
        err.set_name("AbortError");
    }
    err.into()
}

#[cfg(feature = "vlm")]
#[wasm_bindgen]
impl LocalVlm {
    /// `askClip` with this model: stage 1 generated greedily (`maxTokens`, default 64, per
    /// description), each label order's final question and the content-free one answered by
    /// closed-set label probabilities from the logits, corrected as with a server. Options: those
    /// of `askClip` except the server's; one query at a time. `signal` stops between queries.
    #[wasm_bindgen(js_name = askClip)]
    pub fn ask_clip(&self, report: JsValue, options: JsValue) -> Promise {
        let model = self.shared();
        future_to_promise(async move {
            if !options.is_undefined() && !options.is_object() {
                return Err(bad("options must be an object"));
            }
            let labels = label_set(&options, &JsValue::UNDEFINED)?;
            let permutations = number(&options, "permutations", 1.0, 1.0, 64.0)? as usize;
            let seed = get(&options, "seed")
                .map(|_| number(&options, "seed", 0.0, 0.0, 9.007e15))
                .transpose()?
                .map(|s| s as u64);
            let max_tokens = number(
                &options,
                "maxTokens",
                DESCRIPTION_TOKENS as f64,
                1.0,
                1024.0,
            )?;
            let text_only = flag(&options, "textOnly", false)?;
            let signal = get(&options, "signal")
                .map(|s| {
                    s.dyn_into::<AbortSignal>()
                        .map_err(|_| bad("options.signal must be an AbortSignal"))
                })
                .transpose()?;
            let plan = clip_plan(
                report,
                &options,
                labels.clone(),
                permutations,
                seed,
                1,
                text_only,
            )?;
            let flow = AskFlow::<JsValue>::new(plan).map_err(plan_error)?;
            let progress = on_progress(&options)?;
            let (model, labels, signal) = (&model, &labels, &signal);
            let answer = |q: Query| async move {
                if signal.as_ref().is_some_and(|s| s.aborted()) {
                    let e = js_sys::Error::new("the ask was aborted by options.signal");
                    e.set_name("AbortError");
                    return Err(e.into());
                }
                model
                    .answer(&q, labels, max_tokens as usize)
                    .await
                    .map_err(|e| bad(e.to_string()))
            };
            let report_progress = |done: usize, total: usize| {
                if let Some(f) = &progress {
                    let _ = f.call2(
                        &JsValue::NULL,
                        &(done as u32).into(),
                        &(total as u32).into(),
                    );
                }
            };
            let outcome = crate::ask::drive_async(flow, answer, report_progress)
                .await
                .map_err(local_error)?;
            to_js(&outcome.to_json())
        })
    }
}
