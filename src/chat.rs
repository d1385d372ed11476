//! The one OpenAI chat-message model: what the prompt builders write, what a server is sent and
//! what the local VLM reads, with its one parser (strict: a typo is refused with the reason, never
//! dropped or filled in).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// OpenAI's image detail levels (they set the image token cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImageDetail {
    #[default]
    Low,
    High,
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role as OpenAI names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// An image as a URL; a `data:` URL keeps the pixels inside the request (no upload step).
    Image {
        url: String,
        detail: ImageDetail,
    },
    /// The next image handed over beside the messages (`{type: 'image'}`): only the local VLM
    /// takes images that way; a server gets none.
    PassedImage,
}

/// A chat message: the one shape every prompt builder produces and every VLM client consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

impl Message {
    pub fn user(content: Vec<Part>) -> Self {
        Self {
            role: Role::User,
            content,
        }
    }

    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![Part::Text(text.into())],
        }
    }

    /// The OpenAI chat-completions JSON of this message.
    pub fn to_json(&self) -> serde_json::Value {
        // A text-only message goes as a plain string: some servers (older llama.cpp builds,
        // text-only models behind Ollama) accept only that form.
        let content = match self.content.as_slice() {
            [Part::Text(text)] => serde_json::Value::String(text.clone()),
            parts => parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => serde_json::json!({"type": "text", "text": text}),
                    Part::Image { url, detail } => serde_json::json!({
                        "type": "image_url",
                        "image_url": {"url": url, "detail": detail},
                    }),
                    Part::PassedImage => serde_json::json!({"type": "image"}),
                })
                .collect(),
        };
        serde_json::json!({"role": self.role, "content": content})
    }

    pub fn image_count(&self) -> usize {
        self.content
            .iter()
            .filter(|p| !matches!(p, Part::Text(_)))
            .count()
    }
}

/// All messages as a JSON array.
pub fn messages_json(messages: &[Message]) -> serde_json::Value {
    serde_json::Value::Array(messages.iter().map(Message::to_json).collect())
}

/// A `data:` URL for an image file's bytes; the type is sniffed from the magic number.
pub fn image_data_url(bytes: &[u8]) -> String {
    use base64::Engine;
    let mime = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        "image/png"
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else {
        "image/jpeg"
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("data:{mime};base64,{encoded}")
}

/// Reads OpenAI chat `messages` JSON (what `emolens prompt` prints under `messages`, and what
/// [`Message::to_json`] writes): a role and either a string or a list of `text` / `image_url`
/// parts. Anything else is refused with the reason, so a typo does not silently drop content.
pub fn messages_from_json(value: &Value) -> Result<Vec<Message>, String> {
    let list = value
        .as_array()
        .ok_or("messages must be an array of {role, content} objects")?;
    if list.is_empty() {
        return Err("messages is empty: there is nothing to ask".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| message_from_json(m).map_err(|e| format!("messages[{i}]: {e}")))
        .collect()
}

fn message_from_json(m: &Value) -> Result<Message, String> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("system") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(format!(
                "unknown role '{other}' (system, user or assistant)"
            ));
        }
        None => return Err("has no role".into()),
    };
    let content = match m.get("content") {
        Some(Value::String(text)) => vec![Part::Text(text.clone())],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| part_from_json(p).map_err(|e| format!("content[{j}]: {e}")))
            .collect::<Result<_, _>>()?,
        _ => return Err("content must be a string or a list of parts".into()),
    };
    Ok(Message { role, content })
}

fn part_from_json(p: &Value) -> Result<Part, String> {
    match p.get("type").and_then(Value::as_str) {
        Some("text") => p
            .get("text")
            .and_then(Value::as_str)
            .map(|t| Part::Text(t.to_string()))
            .ok_or_else(|| "a text part needs a string 'text'".to_string()),
        Some("image_url") => {
            let image = p.get("image_url");
            // OpenAI's form is {url, detail}; some clients send the URL string directly.
            let url = image
                .and_then(|i| i.get("url").or(Some(i)))
                .and_then(Value::as_str)
                .ok_or("an image_url part needs image_url.url")?;
            let detail = match image.and_then(|i| i.get("detail")).and_then(Value::as_str) {
                None | Some("low") => ImageDetail::Low,
                Some("high") => ImageDetail::High,
                Some(other) => {
                    return Err(format!(
                        "image detail '{other}' is not supported (low or high)"
                    ));
                }
            };
            Ok(Part::Image {
                url: url.to_string(),
                detail,
            })
        }
        Some("image") => Ok(Part::PassedImage),
        Some(other) => Err(format!(
            "unknown part type '{other}' (text, image_url, or image for an image passed beside)"
        )),
        None => Err("a part needs a type".into()),
    }
}

/// The messages with every image removed: the text-only mode, in which no pixel leaves the
/// device. Messages left without content are dropped.
pub fn text_only(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .filter_map(|m| {
            let content: Vec<Part> = m
                .content
                .iter()
                .filter(|p| matches!(p, Part::Text(_)))
                .cloned()
                .collect();
            (!content.is_empty()).then_some(Message {
                role: m.role,
                content,
            })
        })
        .collect()
}
