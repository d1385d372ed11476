//! Hugging Face `tokenizer.json` through the `tokenizers` crate (built without onig so it also
//! compiles for wasm32), plus SmolVLM's image tokens and streaming decode.

use tokenizers::{AddedToken, Tokenizer};

use super::VlmError;
use super::chat::{END_OF_UTTERANCE, FAKE_TOKEN, GLOBAL_IMG, IMAGE_TOKEN};

/// SmolVLM's tokenizer has `<row_i_col_j>` for i, j in 1..=6.
pub const MAX_GRID: usize = 6;

pub struct VlmTokenizer {
    inner: Tokenizer,
}

fn err(e: impl std::fmt::Display) -> VlmError {
    VlmError::Tokenizer(e.to_string())
}

impl VlmTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VlmError> {
        // tokenizers 0.23 panics (`expect("Helper")`) on a JSON syntax error inside the
        // `decoder` value (a syntax error, a lone surrogate escape), found by tests/fuzz.rs:
        // only JSON that parses whole reaches it.
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| err(format!("tokenizer.json is not valid JSON: {e}")))?;
        let inner =
            Tokenizer::from_bytes(bytes).map_err(|e| err(format!("tokenizer.json: {e}")))?;
        Ok(Self { inner })
    }

    /// SmolVLM's extra special tokens that the tokenizer does not have yet (a SmolVLM
    /// `tokenizer.json` already has them all; a plain SmolLM one has none).
    pub fn missing_smolvlm_tokens(&self) -> Vec<String> {
        smolvlm_special_tokens()
            .into_iter()
            .filter(|t| self.inner.token_to_id(t).is_none())
            .collect()
    }

    /// Adds the missing SmolVLM tokens as special added tokens (each then encodes to one id);
    /// returns how many were added.
    pub fn add_smolvlm_tokens(&mut self) -> Result<usize, VlmError> {
        let tokens: Vec<AddedToken> = self
            .missing_smolvlm_tokens()
            .into_iter()
            .map(|t| AddedToken::from(t, true))
            .collect();
        self.inner.add_special_tokens(tokens).map_err(err)
    }

    /// Token ids; `add_special_tokens` applies the file's post-processor (BOS etc.), as
    /// transformers' processor does for a prompt.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, VlmError> {
        let enc = self.inner.encode(text, add_special_tokens).map_err(err)?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, VlmError> {
        self.inner.decode(ids, skip_special_tokens).map_err(err)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// `<fake_token_around_image>`, `<image>`, `<global-img>`, `<end_of_utterance>` and the
/// `<row_i_col_j>` grid tokens.
pub fn smolvlm_special_tokens() -> Vec<String> {
    let mut t: Vec<String> = [FAKE_TOKEN, IMAGE_TOKEN, GLOBAL_IMG, END_OF_UTTERANCE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for r in 1..=MAX_GRID {
        for c in 1..=MAX_GRID {
            t.push(format!("<row_{r}_col_{c}>"));
        }
    }
    t
}

/// Turns generated ids into text pieces as they arrive. Byte-level BPE can split a UTF-8
/// character over tokens, so a piece is only released once it decodes without a trailing
/// replacement character.
pub struct TextStream<'a> {
    tokenizer: &'a VlmTokenizer,
    ids: Vec<u32>,
    emitted: usize,
}

impl<'a> TextStream<'a> {
    pub fn new(tokenizer: &'a VlmTokenizer) -> Self {
        Self {
            tokenizer,
            ids: Vec::new(),
            emitted: 0,
        }
    }

    /// The new text after `id` (possibly empty); special tokens are skipped.
    pub fn push(&mut self, id: u32) -> Result<String, VlmError> {
        self.ids.push(id);
        let text = self.tokenizer.decode(&self.ids, true)?;
        if text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let Some(piece) = text.get(self.emitted..).map(str::to_string) else {
            return Ok(String::new());
        };
        self.emitted = text.len();
        Ok(piece)
    }

    pub fn text(&self) -> Result<String, VlmError> {
        self.tokenizer.decode(&self.ids, true)
    }
}
