//! The decision of an ask: the label orders' answers combined, then corrected for the long tail,
//! and the JSON both front ends return (`emolens ask --json`, the page's `askClip`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::runs::{AskResult, Run, collect};
use super::{AskPlan, CorrectionPlan};
use crate::calibration::{Correction, argmax};
use crate::labels::LabelSet;

/// The corrected decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrected {
    /// `priors` or `content_free`.
    pub method: &'static str,
    pub label: String,
    /// Per label, in the set's order.
    pub adjusted_scores: Vec<f64>,
    /// The content-free answer's per-label values, for `content_free`.
    pub content_free_scores: Option<Vec<f64>>,
}

/// Everything an ask found.
#[derive(Debug, Clone, PartialEq)]
pub struct AskOutcome {
    pub labels: LabelSet,
    pub result: AskResult,
    /// Stage 1's descriptions by stretch, when stage 1 ran.
    pub stage1: Option<BTreeMap<usize, String>>,
    pub corrected: Option<Corrected>,
    /// What the caller should know but is no failure (a correction that could not be made).
    pub notes: Vec<String>,
}

pub(super) fn decide(
    plan: &AskPlan,
    descriptions: BTreeMap<usize, String>,
    classified: Vec<Run>,
    content_free: Vec<Run>,
) -> AskOutcome {
    let labels = &plan.labels;
    let result = collect(labels, classified);
    let mut notes = Vec::new();
    let correction = match &plan.correction {
        CorrectionPlan::None => None,
        CorrectionPlan::Priors { priors, tau } => {
            Some(("priors", Correction::from_priors(priors, *tau), None))
        }
        CorrectionPlan::ContentFree => match label_values(&collect(labels, content_free), labels) {
            Some(values) => Some((
                "content_free",
                Correction::from_content_free(&values),
                Some(values),
            )),
            None => {
                notes.push("the content-free answer names no label; no correction".into());
                None
            }
        },
    };
    let corrected = match (correction, label_values(&result, labels)) {
        (Some((method, correction, content_free_scores)), Some(values)) => {
            let adjusted_scores = correction.adjust(&values);
            Some(Corrected {
                method,
                label: labels.name(argmax(&adjusted_scores)).to_string(),
                adjusted_scores,
                content_free_scores,
            })
        }
        (Some(_), None) => {
            notes.push("the answer names no label; no correction".into());
            None
        }
        _ => None,
    };
    let stage1 =
        matches!(plan.question, super::Question::Clip { stage1: true, .. }).then_some(descriptions);
    AskOutcome {
        labels: labels.clone(),
        result,
        stage1,
        corrected,
        notes,
    }
}

/// Per-label values in the label set's order: the logprob probabilities when the VLM gave them,
/// else the answer's scores (floored, so a log never meets zero).
fn label_values(result: &AskResult, labels: &LabelSet) -> Option<Vec<f64>> {
    let pairs = result.probabilities.as_ref().or(result.scores.as_ref())?;
    labels
        .names()
        .iter()
        .map(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.max(1e-6))
        })
        .collect()
}

impl AskOutcome {
    /// The JSON of `emolens ask --json`: the combined answer ([`AskResult::to_json`]), then
    /// `stage1` (descriptions by stretch) and `corrected` where they apply.
    pub fn to_json(&self) -> Value {
        let labels = &self.labels;
        let mut out = self.result.to_json(labels);
        if let Some(descriptions) = &self.stage1 {
            out["stage1"] = descriptions
                .iter()
                .map(|(segment, text)| json!({"segment": segment, "description": text}))
                .collect();
        }
        if let Some(c) = &self.corrected {
            let named = |v: &[f64]| -> serde_json::Map<String, Value> {
                labels
                    .names()
                    .iter()
                    .zip(v)
                    .map(|(n, x)| (n.clone(), json!(x)))
                    .collect()
            };
            out["corrected"] = json!({
                "method": c.method,
                "label": c.label,
                "adjusted_scores": named(&c.adjusted_scores),
                "content_free_scores": c.content_free_scores.as_deref().map(named),
            });
        }
        if !self.notes.is_empty() {
            out["notes"] = json!(self.notes);
        }
        out
    }
}
