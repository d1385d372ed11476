//! The answers to one question asked in K label orders, combined per label, and the JSON of that
//! combination (`emolens ask --json`'s core, the browser's `askRemote` and `askClip`).

use serde_json::{Value, json};

use crate::labels::LabelSet;
use crate::remote::answer::{Answer, label_probs, parse_answer};
use crate::remote::request::Param;
use crate::remote::response::{Completion, Usage};

/// A completion and what it took to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub completion: Completion,
    /// Parameters the server rejected and the request was sent again without.
    pub dropped: Vec<Param>,
    /// Requests sent, the successful one included.
    pub attempts: u32,
}

/// Label orders for `k` requests (see [`crate::prompt::label_orders`]): rotations spread over
/// the set, or seeded shuffles.
pub fn permutations(n: usize, k: usize, seed: Option<u64>) -> Vec<Vec<usize>> {
    use crate::prompt::{LabelOrdering, label_orders};
    label_orders(
        n,
        k.max(1),
        seed.map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded),
    )
}

/// One request of a permutation run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Run {
    /// Label names in the order the model saw them.
    pub order: Vec<String>,
    pub answer: Answer,
    /// Per-label probabilities from logprobs, in set order, when the server returned them.
    pub probabilities: Option<Vec<f64>>,
    pub raw: String,
    pub attempts: u32,
    pub dropped: Vec<Param>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
}

impl Run {
    /// A closed-set answer: per-label probabilities in the set's order (the local VLM scores
    /// each label's tokens); the label is their argmax.
    pub fn scored(order: Vec<String>, probabilities: Vec<f64>, labels: &LabelSet) -> Self {
        let label = crate::calibration::argmax(&probabilities);
        Run {
            order,
            answer: Answer::Parsed {
                label,
                scores: probabilities.clone(),
                rationale: None,
            },
            probabilities: Some(probabilities),
            raw: labels.name(label).to_string(),
            attempts: 1,
            dropped: Vec::new(),
            usage: None,
            finish_reason: None,
            model: None,
        }
    }

    /// Reads the model's answer out of an exchange.
    pub fn new(order: Vec<String>, exchange: Exchange, labels: &LabelSet) -> Self {
        let c = exchange.completion;
        let answer = parse_answer(&c.content, labels);
        let probabilities = match answer {
            Answer::Parsed { .. } => label_probs(&c.content, &c.logprobs, labels),
            Answer::Unparsed { .. } => None,
        };
        Run {
            order,
            answer,
            probabilities,
            raw: c.content,
            attempts: exchange.attempts,
            dropped: exchange.dropped,
            usage: c.usage,
            finish_reason: c.finish_reason,
            model: c.model,
        }
    }
}

/// The combined result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AskResult {
    /// `None` when no run's answer could be parsed.
    pub label: Option<String>,
    /// Mean of the parsed runs' scores, label name → score.
    pub scores: Option<Vec<(String, f64)>>,
    /// Mean of the logprob probabilities, when every parsed run had them.
    pub probabilities: Option<Vec<(String, f64)>>,
    pub rationale: Option<String>,
    pub usage: Option<Usage>,
    pub dropped_parameters: Vec<Param>,
    pub runs: Vec<Run>,
}

/// Sums the runs' usage, collects their dropped parameters, and combines.
pub fn collect(labels: &LabelSet, runs: Vec<Run>) -> AskResult {
    let mut usage: Option<Usage> = None;
    let mut dropped: Vec<Param> = Vec::new();
    for x in &runs {
        if let Some(u) = &x.usage {
            let acc = usage.get_or_insert_with(Usage::default);
            let add = |a: &mut Option<u64>, b: Option<u64>| {
                if let Some(b) = b {
                    *a = Some(a.unwrap_or(0) + b);
                }
            };
            add(&mut acc.prompt_tokens, u.prompt_tokens);
            add(&mut acc.completion_tokens, u.completion_tokens);
            add(&mut acc.total_tokens, u.total_tokens);
        }
        for p in &x.dropped {
            if !dropped.contains(p) {
                dropped.push(*p);
            }
        }
    }
    combine(labels, runs, usage, dropped)
}

fn mean(vs: &[&Vec<f64>], k: usize) -> Vec<f64> {
    let mut m = vec![0.0; k];
    for v in vs {
        for (a, x) in m.iter_mut().zip(v.iter()) {
            *a += x / vs.len() as f64;
        }
    }
    m
}

/// Averages parsed runs. The label is the argmax of the mean logprob probabilities when every
/// parsed run has them (token probabilities are better calibrated than stated scores), else of
/// the mean scores.
pub fn combine(
    labels: &LabelSet,
    runs: Vec<Run>,
    usage: Option<Usage>,
    dropped_parameters: Vec<Param>,
) -> AskResult {
    let k = labels.len();
    let parsed: Vec<&Run> = runs
        .iter()
        .filter(|r| matches!(r.answer, Answer::Parsed { .. }))
        .collect();
    let named =
        |v: Vec<f64>| -> Vec<(String, f64)> { labels.names().iter().cloned().zip(v).collect() };
    let scores: Vec<&Vec<f64>> = parsed
        .iter()
        .filter_map(|r| match &r.answer {
            Answer::Parsed { scores, .. } => Some(scores),
            _ => None,
        })
        .collect();
    let probs: Vec<&Vec<f64>> = parsed
        .iter()
        .filter_map(|r| r.probabilities.as_ref())
        .collect();
    let mean_scores = (!scores.is_empty()).then(|| mean(&scores, k));
    let mean_probs = (!probs.is_empty() && probs.len() == parsed.len()).then(|| mean(&probs, k));
    let decide = mean_probs.as_ref().or(mean_scores.as_ref());
    AskResult {
        label: decide.map(|v| labels.name(crate::calibration::argmax(v)).to_string()),
        rationale: parsed.iter().find_map(|r| match &r.answer {
            Answer::Parsed { rationale, .. } => rationale.clone(),
            _ => None,
        }),
        scores: mean_scores.map(named),
        probabilities: mean_probs.map(named),
        usage,
        dropped_parameters,
        runs,
    }
}

fn label_map(pairs: impl IntoIterator<Item = (String, f64)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, x)| (k, json!(x))).collect())
}

impl AskResult {
    /// The result as `emolens ask --json` prints it (and `askRemote` resolves to): the combined
    /// decision, then one entry per request in `runs`. `unparsed` counts runs whose text named
    /// no label; their raw text is kept, nothing is guessed.
    pub fn to_json(&self, labels: &LabelSet) -> Value {
        let raw: Vec<&str> = self.runs.iter().map(|r| r.raw.as_str()).collect();
        let unparsed = self
            .runs
            .iter()
            .filter(|r| matches!(r.answer, Answer::Unparsed { .. }))
            .count();
        let per_label = |v: &Option<Vec<(String, f64)>>| v.clone().map(label_map);
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                let set_order =
                    |v: &Vec<f64>| label_map(labels.names().iter().cloned().zip(v.iter().copied()));
                let (kind, label, scores, rationale) = match &r.answer {
                    Answer::Parsed {
                        label,
                        scores,
                        rationale,
                    } => (
                        "parsed",
                        Some(labels.name(*label)),
                        Some(set_order(scores)),
                        rationale.clone(),
                    ),
                    Answer::Unparsed { .. } => ("unparsed", None, None, None),
                };
                json!({
                    "order": r.order,
                    "kind": kind,
                    "label": label,
                    "scores": scores,
                    "probabilities": r.probabilities.as_ref().map(set_order),
                    "rationale": rationale,
                    "raw": r.raw,
                    "attempts": r.attempts,
                    "dropped_parameters": r.dropped,
                    "usage": r.usage,
                    "finish_reason": r.finish_reason,
                    "model": r.model,
                })
            })
            .collect();
        json!({
            "label": self.label,
            "scores": per_label(&self.scores),
            "probabilities": per_label(&self.probabilities),
            "rationale": self.rationale,
            "usage": self.usage,
            "dropped_parameters": self.dropped_parameters,
            "unparsed": unparsed,
            "raw": if raw.len() == 1 { json!(raw[0]) } else { json!(raw) },
            "orders": self.runs.iter().map(|r| &r.order).collect::<Vec<_>>(),
            "runs": runs,
        })
    }
}
