//! SmolVLM's chat template and Idefics3's image-token layout.
//!
//! The template (SmolVLM-256M/500M-Instruct `chat_template.json`) written out as code:
//! `<|im_start|>` once, then per message `Role:` (`Role: ` when the message starts with text),
//! its parts concatenated (an image part is `<image>`), `<end_of_utterance>\n`; finally
//! `Assistant:` as the generation prompt. E.g.
//! `<|im_start|>User:<image>What is shown?<end_of_utterance>\nAssistant:`.
//! Each `<image>` is then expanded to the tile layout of that image ([`image_prompt`]).

use super::VlmError;
use super::processor::ProcessedImage;
use crate::chat::{Message, Part};
use crate::frames::RgbImage;

pub const IM_START: &str = "<|im_start|>";
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";
pub const FAKE_TOKEN: &str = "<fake_token_around_image>";
pub const IMAGE_TOKEN: &str = "<image>";
pub const GLOBAL_IMG: &str = "<global-img>";

fn capitalize(role: &str) -> String {
    let mut c = role.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(|x| x.to_lowercase()))
            .collect(),
        None => String::new(),
    }
}

/// The chat template, with one `<image>` per image part (not yet expanded).
pub fn apply_chat_template(messages: &[Message], add_generation_prompt: bool) -> String {
    let mut s = String::from(IM_START);
    for m in messages {
        s.push_str(&capitalize(m.role.as_str()));
        // Jinja: ':' when the first part is an image, ': ' otherwise.
        s.push_str(match m.content.first() {
            Some(Part::Text(_)) | None => ": ",
            Some(_) => ":",
        });
        for part in &m.content {
            match part {
                Part::Text(t) => s.push_str(t),
                Part::Image { .. } | Part::PassedImage => s.push_str(IMAGE_TOKEN),
            }
        }
        s.push_str(END_OF_UTTERANCE);
        s.push('\n');
    }
    if add_generation_prompt {
        s.push_str("Assistant:");
    }
    s
}

/// Idefics3's text for one image: per tile `<fake_token_around_image><row_r_col_c>` and
/// `image_seq_len` `<image>`s, a newline after each row, then the global image; an unsplit
/// image (`rows == 0`) is the global image alone.
pub fn image_prompt(rows: usize, cols: usize, image_seq_len: usize) -> String {
    let images = IMAGE_TOKEN.repeat(image_seq_len);
    let global = format!("{FAKE_TOKEN}{GLOBAL_IMG}{images}{FAKE_TOKEN}");
    if rows == 0 || cols == 0 {
        return global;
    }
    let mut s = String::new();
    for r in 1..=rows {
        for c in 1..=cols {
            s.push_str(&format!("{FAKE_TOKEN}<row_{r}_col_{c}>{images}"));
        }
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&global);
    s
}

/// Replaces the i-th `<image>` of `text` with the layout of `images[i]`.
pub fn expand_images(
    text: &str,
    images: &[ProcessedImage],
    image_seq_len: usize,
) -> Result<String, VlmError> {
    let pieces: Vec<&str> = text.split(IMAGE_TOKEN).collect();
    if pieces.len() - 1 != images.len() {
        return Err(VlmError::Input(format!(
            "the prompt has {} image placeholders but {} images were given",
            pieces.len() - 1,
            images.len()
        )));
    }
    let mut s = String::from(pieces[0]);
    for (img, piece) in images.iter().zip(&pieces[1..]) {
        s.push_str(&image_prompt(img.rows, img.cols, image_seq_len));
        s.push_str(piece);
    }
    Ok(s)
}

/// Tokens the expanded layout of one image takes in SmolVLM's vocabulary (for budgeting
/// prompts): there the last row's `\n` and the one before the global image merge into one
/// `\n\n` token.
pub fn image_token_count(rows: usize, cols: usize, image_seq_len: usize) -> usize {
    let global = image_seq_len + 3;
    if rows == 0 || cols == 0 {
        global
    } else {
        // Per tile: fake + row/col + images; rows − 1 single newlines and one double.
        rows * cols * (image_seq_len + 2) + rows + global
    }
}

/// The images of `messages` in order: `image_url` parts (`data:` URLs) decoded, each
/// `{type: 'image'}` part taking the next of `passed`, every one of which must be used.
pub fn images_of(messages: &[Message], passed: Vec<RgbImage>) -> Result<Vec<RgbImage>, VlmError> {
    let mut passed = passed.into_iter();
    let mut images = Vec::new();
    for part in messages.iter().flat_map(|m| &m.content) {
        match part {
            Part::Text(_) => {}
            Part::Image { url, .. } => images.push(decode_data_url(url)?),
            Part::PassedImage => {
                images.push(passed.next().ok_or_else(|| {
                    VlmError::Input("more {type: 'image'} parts than images".into())
                })?)
            }
        }
    }
    if passed.next().is_some() {
        return Err(VlmError::Input(
            "more images than {type: 'image'} parts".into(),
        ));
    }
    Ok(images)
}

/// Decodes a base64 `data:image/...` URL.
pub fn decode_data_url(url: &str) -> Result<RgbImage, VlmError> {
    use base64::Engine;
    let b64 = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .map(|(_, b)| b)
        .ok_or_else(|| {
            VlmError::Input("only base64 data: image URLs can be used locally".into())
        })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| VlmError::Input(format!("bad base64 image: {e}")))?;
    RgbImage::decode(&bytes).map_err(|e| VlmError::Input(e.to_string()))
}
