//! Incremental server-sent-events parsing, and assembling streamed chat-completion chunks.
//!
//! Network reads cut the stream anywhere: inside a line, between `\r` and `\n`, inside a UTF-8
//! sequence. The parser keeps the unfinished line as bytes and only decodes whole lines, so the
//! events it yields do not depend on how the bytes were split.

use serde_json::Value;

use super::response::{
    Completion, Limit, RemoteError, parse_error_body, parse_logprobs, parse_usage,
};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field, when the server sets one.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Bounds on what one response may make the client hold; past them the response is refused
/// (never buffered without end). Adjustable: `--max-response-mb` / `--max-sse-line-kb` on the
/// command line, `maxResponseBytes` / `maxSseLineBytes` in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Bytes of one response body, streamed or not.
    pub max_response_bytes: usize,
    /// Bytes of one server-sent-events line (one streamed chunk's JSON).
    pub max_sse_line_bytes: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 16 << 20,
            max_sse_line_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// Longest line kept (0: no bound).
    max_line: usize,
    /// The previous byte was a `\r` that ended a line; a following `\n` belongs to it.
    after_cr: bool,
    /// Nothing decoded yet: a leading byte-order mark is skipped.
    at_start: bool,
    data: Option<String>,
    event: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self {
            at_start: true,
            ..Self::default()
        }
    }

    /// A parser that refuses lines longer than `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            max_line,
            ..Self::new()
        }
    }

    /// Feeds bytes; returns the events completed by them, or an error once a line grows past
    /// the bound.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, RemoteError> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                _ => {
                    if self.max_line > 0 && self.line.len() >= self.max_line {
                        return Err(RemoteError::TooLarge {
                            limit: Limit::SseLine,
                            bytes: self.max_line,
                        });
                    }
                    self.line.push(b)
                }
            }
        }
        Ok(events)
    }

    /// End of stream: an event without its closing blank line is discarded, as the SSE spec
    /// says; a final unterminated line is still taken as a line first (servers that close the
    /// connection right after `data: [DONE]` without a newline exist).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
            self.end_line(&mut events);
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw).into_owned();
        if self.at_start {
            self.at_start = false;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return; // comment (keep-alive pings)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry, unknown fields: not needed here
        }
    }
}

/// Builds a [`Completion`] from streamed chunks.
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    pub completion: Completion,
    pub done: bool,
}

impl StreamAccumulator {
    /// Applies one event. `[DONE]` ends the stream; an `{"error": ...}` payload mid-stream
    /// (vLLM and llama.cpp send one when generation fails) becomes an error.
    pub fn apply(&mut self, ev: &SseEvent) -> Result<(), RemoteError> {
        if self.done {
            return Ok(()); // whatever follows `[DONE]` is not part of the answer
        }
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| RemoteError::Protocol(format!("stream chunk is not JSON ({e})")))?;
        if v.get("error").is_some() || ev.event.as_deref() == Some("error") {
            let msg = parse_error_body(data).unwrap_or_else(|| data.to_string());
            return Err(RemoteError::Stream(msg));
        }
        let c = &mut self.completion;
        if let Some(m) = v.get("model").and_then(Value::as_str) {
            c.model = Some(m.to_string());
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            c.usage = parse_usage(u);
        }
        // The usage chunk has `"choices": []`; other chunks carry one choice with a delta.
        for choice in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(t) = choice
                .get("delta")
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
            {
                c.content.push_str(t);
            }
            if let Some(lp) = choice.get("logprobs") {
                c.logprobs.extend(parse_logprobs(lp));
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                c.finish_reason = Some(f.to_string());
            }
        }
        Ok(())
    }
}

/// Reads a 2xx body, streamed or not, into a [`Completion`]; every transport feeds it bytes.
#[derive(Debug)]
pub struct CompletionReader {
    stream: bool,
    parser: SseParser,
    acc: StreamAccumulator,
    raw: Vec<u8>,
    received: usize,
    limits: ResponseLimits,
}

impl CompletionReader {
    pub fn new(stream: bool) -> Self {
        Self::with_limits(stream, ResponseLimits::default())
    }

    pub fn with_limits(stream: bool, limits: ResponseLimits) -> Self {
        Self {
            stream,
            parser: SseParser::with_max_line(limits.max_sse_line_bytes),
            acc: StreamAccumulator::default(),
            raw: Vec::new(),
            received: 0,
            limits,
        }
    }

    /// The stream said `[DONE]`: the transport stops reading (a server may keep the connection
    /// open after it), and later bytes are ignored.
    pub fn is_done(&self) -> bool {
        self.stream && self.acc.done
    }

    /// Feeds body bytes; returns the content text they added (for live display).
    pub fn push(&mut self, bytes: &[u8]) -> Result<String, RemoteError> {
        if self.is_done() {
            return Ok(String::new());
        }
        self.received = self.received.saturating_add(bytes.len());
        if self.received > self.limits.max_response_bytes {
            return Err(RemoteError::TooLarge {
                limit: Limit::ResponseBody,
                bytes: self.limits.max_response_bytes,
            });
        }
        if !self.stream {
            self.raw.extend_from_slice(bytes);
            return Ok(String::new());
        }
        // Keep the first bytes too: a server that ignores `stream` answers with plain JSON.
        if self.raw.len() < 1 << 20 {
            self.raw.extend_from_slice(bytes);
        }
        let before = self.acc.completion.content.len();
        for ev in self.parser.push(bytes)? {
            self.acc.apply(&ev)?;
        }
        Ok(self.acc.completion.content[before..].to_string())
    }

    pub fn finish(mut self) -> Result<Completion, RemoteError> {
        let text = String::from_utf8_lossy(&self.raw).into_owned();
        if !self.stream {
            return super::response::parse_completion(&text);
        }
        for ev in self.parser.finish() {
            self.acc.apply(&ev)?;
        }
        if !self.acc.done && self.acc.completion == Completion::default() {
            if text.trim_start().starts_with('{') {
                return super::response::parse_completion(&text);
            }
            return Err(RemoteError::Protocol(
                "stream ended without any completion chunk".into(),
            ));
        }
        Ok(self.acc.completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c).unwrap());
        }
        out.extend(p.finish());
        out
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn line_endings_comments_and_multiline_data() {
        let s = b": ping\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata:c\n\ndata: d\r\rdata: [DONE]\n\n";
        let got = all(&[s]);
        assert_eq!(
            got,
            vec![
                ev("a\nb"),
                SseEvent {
                    event: Some("x".into()),
                    data: "c".into()
                },
                ev("d"),
                ev("[DONE]")
            ]
        );
    }

    #[test]
    fn unterminated_last_line_is_kept() {
        assert_eq!(
            all(&[b"data: 1\n\ndata: [DONE]"]),
            vec![ev("1"), ev("[DONE]")]
        );
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let stream = "\u{feff}: keep-alive\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"é😀\"}}]}\r\n\r\n\
                      data: line1\ndata: line2\n\n\rdata: x\r\revent: e\r\ndata: y\n\n\
                      id: 3\nretry: 10\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        let expected = all(&[bytes]);
        assert_eq!(expected.len(), 5);
        // Every single cut point, then random multi-way splits.
        for cut in 0..=bytes.len() {
            assert_eq!(all(&[&bytes[..cut], &bytes[cut..]]), expected, "cut {cut}");
        }
        let mut rng = crate::rng::Rng(0x9e3779b97f4a7c15);
        for _ in 0..2000 {
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let n = rng.range(1, 9);
                let j = (i + n).min(bytes.len());
                pieces.push(&bytes[i..j]);
                i = j;
            }
            assert_eq!(all(&pieces), expected);
        }
    }
}
