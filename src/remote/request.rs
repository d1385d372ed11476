//! Chat-completions request bodies (OpenAI-compatible), and the optional parameters a server
//! may refuse.
//!
//! Messages are plain data so that any prompt builder (a fixed prompt, the video-context
//! enricher) can hand a `Vec<Message>` to the client.

use serde::Serialize;
use serde_json::{Value, json};

use crate::labels::LabelSet;

use crate::chat::ImageDetail;
pub use crate::chat::{Message, Part, Role, image_data_url, messages_from_json, text_only};

/// Optional request parameters that some servers reject. Each can be dropped once on a 400 that
/// names it, so the same request works against vLLM, llama.cpp and Ollama.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    ResponseFormat,
    Logprobs,
    StreamOptions,
}

impl Param {
    pub const ALL: [Param; 3] = [Param::ResponseFormat, Param::Logprobs, Param::StreamOptions];

    /// Words in an error message that identify this parameter.
    pub fn mentions(self) -> &'static [&'static str] {
        match self {
            Param::ResponseFormat => &["response_format", "json_schema", "response format"],
            Param::Logprobs => &["logprobs", "top_logprobs"],
            Param::StreamOptions => &["stream_options", "include_usage"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Param::ResponseFormat => "response_format",
            Param::Logprobs => "logprobs",
            Param::StreamOptions => "stream_options",
        }
    }
}

/// How every request of an ask is put to the server (the flow's plan says what is asked).
#[derive(Debug, Clone)]
pub struct AskOptions {
    pub model: String,
    pub stream: bool,
    pub top_logprobs: Option<u8>,
    pub schema: bool,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

impl AskOptions {
    /// The request for one of the flow's queries. A stage-1 description is free text: no
    /// schema, no logprobs, not streamed; a classifying query lists its label order in the schema.
    pub fn request(&self, query: &crate::ask::Query, text_only: bool) -> ChatRequest {
        let mut r = ChatRequest::new(self.model.clone(), query.messages.clone());
        r.temperature = self.temperature;
        r.max_tokens = self.max_tokens;
        r.text_only = text_only;
        if let Some(order) = query.purpose.order() {
            r.stream = self.stream;
            r.top_logprobs = self.top_logprobs;
            r.schema_labels = self.schema.then(|| order.to_vec());
        }
        r
    }
}

/// A chat-completions request. `to_json` renders what goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: bool,
    /// Ask for a final usage chunk when streaming (`stream_options.include_usage`).
    pub include_usage: bool,
    /// `Some(k)`: `logprobs: true, top_logprobs: k`.
    pub top_logprobs: Option<u8>,
    /// Restrict the answer to a JSON object whose label is one of these names (in this order).
    pub schema_labels: Option<Vec<String>>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Parameters removed after a server rejected them.
    pub dropped: Vec<Param>,
    /// A promise that no pixel leaves: the body is written without image parts, whatever the
    /// messages hold (the front ends refuse images given with such a mode before this).
    pub text_only: bool,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            stream: false,
            include_usage: true,
            top_logprobs: None,
            schema_labels: None,
            temperature: None,
            max_tokens: None,
            dropped: Vec::new(),
            text_only: false,
        }
    }

    /// Whether the body carries an image (never, for a text-only request).
    pub fn has_images(&self) -> bool {
        !self.text_only && self.messages.iter().any(|m| m.image_count() > 0)
    }

    /// Whether `p` would be sent.
    pub fn uses(&self, p: Param) -> bool {
        if self.dropped.contains(&p) {
            return false;
        }
        match p {
            Param::ResponseFormat => self.schema_labels.is_some(),
            Param::Logprobs => self.top_logprobs.is_some(),
            Param::StreamOptions => self.stream && self.include_usage,
        }
    }

    pub fn drop_param(&mut self, p: Param) {
        if !self.dropped.contains(&p) {
            self.dropped.push(p);
        }
    }

    pub fn to_json(&self) -> Value {
        let stripped;
        let messages = if self.text_only {
            stripped = text_only(&self.messages);
            &stripped
        } else {
            &self.messages
        };
        let mut body = json!({
            "model": self.model,
            "messages": messages.iter().map(Message::to_json).collect::<Vec<_>>(),
            "stream": self.stream,
        });
        let obj = body.as_object_mut().expect("object");
        if self.uses(Param::StreamOptions) {
            obj.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if self.uses(Param::Logprobs) {
            obj.insert("logprobs".into(), json!(true));
            obj.insert("top_logprobs".into(), json!(self.top_logprobs));
        }
        if self.uses(Param::ResponseFormat) {
            let labels = self.schema_labels.as_deref().unwrap_or_default();
            obj.insert("response_format".into(), answer_schema(labels));
        }
        if let Some(t) = self.temperature {
            obj.insert("temperature".into(), json!(t));
        }
        if let Some(m) = self.max_tokens {
            obj.insert("max_tokens".into(), json!(m));
        }
        body
    }
}

/// `response_format` with a JSON schema that only admits the given labels. `label` comes first
/// so that its first token is the model's first decision (that is where logprobs are read).
pub fn answer_schema(labels: &[String]) -> Value {
    let score_props: serde_json::Map<String, Value> = labels
        .iter()
        .map(|l| {
            (
                l.clone(),
                json!({"type": "number", "minimum": 0, "maximum": 1}),
            )
        })
        .collect();
    json!({
        "type": "json_schema",
        "json_schema": {
            "name": "emotion",
            "strict": true,
            "schema": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": labels},
                    "scores": {
                        "type": "object",
                        "properties": score_props,
                        "required": labels,
                        "additionalProperties": false
                    },
                    "rationale": {"type": "string"}
                },
                "required": ["label", "scores", "rationale"],
                "additionalProperties": false
            }
        }
    })
}

/// The instruction that names the labels, in the given order (permuting it is how label-order
/// bias is averaged out).
pub fn instruction(labels: &[String]) -> String {
    format!(
        "Classify the emotion shown. Choose exactly one label from this list: {}. \
         Reply with only a JSON object: {{\"label\": <one label from the list>, \
         \"scores\": {{<each label>: <probability 0..1>}}, \"rationale\": <one sentence>}}.",
        labels.join(", ")
    )
}

/// The default conversation: a system message with the instruction, a user message with the
/// prompt text and images.
pub fn build_messages(prompt: &str, images: &[String], labels: &[String]) -> Vec<Message> {
    let mut user = vec![Part::Text(prompt.to_string())];
    user.extend(images.iter().map(|url| Part::Image {
        url: url.clone(),
        detail: ImageDetail::default(),
    }));
    vec![
        Message::text(Role::System, instruction(labels)),
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

/// Label names in the order `perm` gives.
pub fn ordered_names(labels: &LabelSet, perm: &[usize]) -> Vec<String> {
    perm.iter().map(|&i| labels.name(i).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::messages_json;

    #[test]
    fn request_has_all_parameters_and_drops_them() {
        let labels: Vec<String> = ["happy", "sad"].iter().map(|s| s.to_string()).collect();
        let mut r = ChatRequest::new(
            "m",
            build_messages("hi", &["data:image/jpeg;base64,AA==".into()], &labels),
        );
        r.stream = true;
        r.top_logprobs = Some(5);
        r.schema_labels = Some(labels.clone());
        r.temperature = Some(0.0);
        r.max_tokens = Some(100);
        let j = r.to_json();
        assert_eq!(j["stream_options"]["include_usage"], true);
        assert_eq!(j["top_logprobs"], 5);
        assert_eq!(
            j["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"],
            json!(["happy", "sad"])
        );
        assert!(j["messages"][0]["content"].as_str().unwrap().len() > 10);
        assert_eq!(j["messages"][1]["content"][1]["type"], "image_url");
        // The JSON round-trips, and the text-only mode keeps the text and no pixel.
        let back = messages_from_json(&j["messages"]).unwrap();
        assert_eq!(back, r.messages);
        let text = text_only(&back);
        assert_eq!(text.len(), 2);
        assert!(text.iter().all(|m| m.image_count() == 0));
        let wire = serde_json::to_string(&messages_json(&text)).unwrap();
        assert!(!wire.contains("image_url") && !wire.contains("data:image"));
        for bad in [
            json!({}),
            json!([]),
            json!([{"role": "robot", "content": "x"}]),
            json!([{"role": "user", "content": [{"type": "video", "url": "x"}]}]),
            json!([{"role": "user", "content": [{"type": "image_url"}]}]),
        ] {
            assert!(messages_from_json(&bad).is_err(), "{bad}");
        }
        r.drop_param(Param::ResponseFormat);
        r.drop_param(Param::Logprobs);
        r.drop_param(Param::StreamOptions);
        let j = r.to_json();
        for k in [
            "response_format",
            "logprobs",
            "top_logprobs",
            "stream_options",
        ] {
            assert!(j.get(k).is_none(), "{k} still sent");
        }
    }
}
