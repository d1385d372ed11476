//! The local VLM as the ask flow's transport: a stage-1 description is generated greedily, a
//! classifying query is answered by closed-set scoring of the label names (probabilities from
//! the logits, so the long-tail corrections work on them as on a server's logprobs).

use super::chat::images_of;
use super::load::LocalModel;
use super::score::score_label_texts;
use super::tokenizer::TextStream;
use super::{GenerationConfig, Sampling, VlmError};
use crate::ask::{Exchange, Purpose, Query, Reply};
use crate::labels::LabelSet;
use crate::remote::response::Completion;

/// Longest stage-1 description, in tokens, unless the caller says.
pub const DESCRIPTION_TOKENS: usize = 64;

impl LocalModel {
    /// Answers one query of the ask flow. `max_tokens` bounds a description.
    pub async fn answer(
        &self,
        query: &Query,
        labels: &LabelSet,
        max_tokens: usize,
    ) -> Result<Reply, VlmError> {
        let images = images_of(&query.messages, Vec::new())?;
        let input = self.prepare_input(&query.messages, &images)?;
        if let Purpose::Describe { .. } = query.purpose {
            let config = GenerationConfig {
                max_new_tokens: max_tokens,
                sampling: Sampling::Greedy,
                stop_tokens: self.stop_tokens.clone(),
            };
            let mut stream = TextStream::new(&self.tokenizer);
            let mut failure = None;
            let ids = self
                .model
                .generate(
                    &input.prompt_ids,
                    input.pixel_values,
                    &config,
                    |id| match stream.push(id) {
                        Ok(_) => true,
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    },
                )
                .await?;
            if let Some(e) = failure {
                return Err(e);
            }
            let tokens = ids.len() as u64;
            return Ok(Reply::Completion(Exchange {
                completion: Completion {
                    content: stream.text()?,
                    logprobs: Vec::new(),
                    usage: Some(crate::remote::response::Usage {
                        prompt_tokens: Some(input.prompt_ids.len() as u64),
                        completion_tokens: Some(tokens),
                        total_tokens: Some(input.prompt_ids.len() as u64 + tokens),
                    }),
                    finish_reason: None,
                    model: None,
                },
                dropped: Vec::new(),
                attempts: 1,
            }));
        }
        let probabilities = score_label_texts(
            &self.model,
            &self.tokenizer,
            &input.prompt_ids,
            input.pixel_values,
            labels,
        )
        .await?;
        Ok(Reply::Scored(probabilities))
    }
}
