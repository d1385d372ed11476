//! Closed-set label scoring from label names: the probability the model gives each label as its
//! answer, renormalised over the set (feeds [`crate::calibration::Correction`]).

use burn::tensor::Tensor;

use super::tokenizer::VlmTokenizer;
use super::{Idefics3, VlmError};
use crate::labels::LabelSet;

/// Token ids of each label as the answer would start after `Assistant:` — with a leading
/// space, no special tokens.
pub fn label_token_ids(
    tokenizer: &VlmTokenizer,
    labels: &LabelSet,
) -> Result<Vec<Vec<u32>>, VlmError> {
    labels
        .names()
        .iter()
        .map(|name| {
            let ids = tokenizer.encode(&format!(" {name}"), false)?;
            if ids.is_empty() {
                return Err(VlmError::Input(format!(
                    "label {name:?} encodes to no tokens"
                )));
            }
            Ok(ids)
        })
        .collect()
}

/// Softmax over summed log-probabilities, in f64.
pub fn softmax_logprobs(logprobs: &[f32]) -> Vec<f64> {
    let max = logprobs
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let exp: Vec<f64> = logprobs.iter().map(|&x| (x as f64 - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

/// Per-label probabilities (in `labels` order, summing to 1) for label token sequences.
pub async fn score_label_ids(
    model: &Idefics3,
    prompt_ids: &[u32],
    pixel_values: Option<Tensor<4>>,
    label_ids: &[Vec<u32>],
) -> Result<Vec<f64>, VlmError> {
    let logprobs = model
        .score_labels(prompt_ids, pixel_values, label_ids)
        .await?;
    Ok(softmax_logprobs(&logprobs))
}

/// Tokenises each label with a leading space, scores it after the prompt with
/// [`Idefics3::score_labels`] and normalises over the set.
pub async fn score_label_texts(
    model: &Idefics3,
    tokenizer: &VlmTokenizer,
    prompt_ids: &[u32],
    pixel_values: Option<Tensor<4>>,
    labels: &LabelSet,
) -> Result<Vec<f64>, VlmError> {
    let ids = label_token_ids(tokenizer, labels)?;
    score_label_ids(model, prompt_ids, pixel_values, &ids).await
}
