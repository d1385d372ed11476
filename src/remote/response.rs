//! Responses: non-streamed completions, error bodies turned into actionable errors, and the
//! retry policy (what to do after each failure), shared by every transport.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::request::{ChatRequest, Param};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

/// One generated token with its log-probability and the alternatives the server reported.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    pub top: Vec<(String, f64)>,
}

/// What the model said, however it arrived (streamed or not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub content: String,
    pub logprobs: Vec<TokenLogprob>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    #[error("bad request (400): {0}")]
    BadRequest(String),
    #[error("the server rejected the API key (401): {0}")]
    Unauthorized(String),
    #[error(
        "forbidden (403) with an empty body: this is how Ollama refuses a request from an origin \
         it does not allow"
    )]
    OriginNotAllowed,
    #[error("forbidden (403): {0}")]
    Forbidden(String),
    #[error("model '{model}' not found (404): {message}")]
    ModelNotFound { model: String, message: String },
    #[error("not found (404): {0}. Check the endpoint URL (it should end in /v1)")]
    NotFound(String),
    #[error("request too large (413): {0}. Send fewer or smaller images")]
    PayloadTooLarge(String),
    #[error("this model does not accept images: {0}")]
    ImageUnsupported(String),
    #[error("rate limited (429): {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("server error ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("service unavailable (503): {message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("unexpected status {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the server reported an error mid-stream: {0}")]
    Stream(String),
    #[error("malformed response: {0}")]
    Protocol(String),
    #[error("connection failed: {0}")]
    Transport(String),
    #[error("the server sent a {limit} longer than {bytes} bytes: refused")]
    TooLarge { limit: Limit, bytes: usize },
    #[error(
        "the server answered {status} redirecting to {location}: not followed (the request \
         carries the prompt, maybe images and the key); use the final URL as the endpoint"
    )]
    Redirect { status: u16, location: String },
    #[error("gave up after {0:?} (overall timeout)")]
    Timeout(Duration),
    #[error("request cancelled")]
    Cancelled,
    #[error("{0}")]
    Config(String),
}

/// A bound on what a response may make the client hold ([`super::sse::ResponseLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ResponseBody,
    SseLine,
}

/// What the user can change about a fault. Each front end words it with its own names
/// (`--api-key-env VAR` on the command line, `options.apiKey` in the page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Give (another) API key.
    ApiKey,
    /// Let the page's origin through (Ollama's OLLAMA_ORIGINS).
    Origin,
    /// Check the model's name on the server (for Ollama, `ollama pull` it).
    Model(String),
    /// Use a vision model, or the text-only mode (no pixel leaves).
    TextOnly,
    /// Raise this limit if the answer is legitimate.
    Limit(Limit),
    /// Raise the overall time limit.
    Timeout,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::ResponseBody => "response",
            Limit::SseLine => "server-sent-events line",
        })
    }
}

impl RemoteError {
    /// A short name for the fault, for code that reacts to one (the page's `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteError::BadRequest(_) => "bad_request",
            RemoteError::Unauthorized(_) => "unauthorized",
            RemoteError::OriginNotAllowed => "origin_not_allowed",
            RemoteError::Forbidden(_) => "forbidden",
            RemoteError::ModelNotFound { .. } => "model_not_found",
            RemoteError::NotFound(_) => "not_found",
            RemoteError::PayloadTooLarge(_) => "payload_too_large",
            RemoteError::ImageUnsupported(_) => "image_unsupported",
            RemoteError::RateLimited { .. } => "rate_limited",
            RemoteError::Server { .. } => "server_error",
            RemoteError::Unavailable { .. } => "unavailable",
            RemoteError::Status { .. } => "status",
            RemoteError::Stream(_) => "stream_error",
            RemoteError::Protocol(_) => "protocol",
            RemoteError::Transport(_) => "network",
            RemoteError::TooLarge { .. } => "too_large",
            RemoteError::Redirect { .. } => "redirect",
            RemoteError::Timeout(_) => "timeout",
            RemoteError::Cancelled => "aborted",
            RemoteError::Config(_) => "config",
        }
    }

    /// The HTTP status the server answered with, where one did.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            RemoteError::BadRequest(_) => 400,
            RemoteError::Unauthorized(_) => 401,
            RemoteError::OriginNotAllowed | RemoteError::Forbidden(_) => 403,
            RemoteError::ModelNotFound { .. } | RemoteError::NotFound(_) => 404,
            RemoteError::PayloadTooLarge(_) => 413,
            RemoteError::RateLimited { .. } => 429,
            RemoteError::Unavailable { .. } => 503,
            RemoteError::Server { status, .. } | RemoteError::Status { status, .. } => *status,
            _ => return None,
        })
    }

    /// What the user can change about it, if anything.
    pub fn hint(&self) -> Option<Hint> {
        Some(match self {
            RemoteError::Unauthorized(_) => Hint::ApiKey,
            RemoteError::OriginNotAllowed => Hint::Origin,
            RemoteError::ModelNotFound { model, .. } => Hint::Model(model.clone()),
            RemoteError::ImageUnsupported(_) => Hint::TextOnly,
            RemoteError::TooLarge { limit, .. } => Hint::Limit(*limit),
            RemoteError::Timeout(_) => Hint::Timeout,
            _ => return None,
        })
    }
}

impl RemoteError {
    /// How long the server asked us to wait, for errors worth retrying.
    fn retry_after(&self) -> Option<Option<Duration>> {
        match self {
            RemoteError::RateLimited { retry_after, .. }
            | RemoteError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The message of an error body: `{"error": {"message": ...}}`, `{"error": "..."}` (Ollama,
/// llama.cpp's older builds), `{"message": ...}`, `{"detail": ...}` (FastAPI validation errors),
/// or the body itself when it is short plain text.
pub fn parse_error_body(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let pick = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| Some(v.to_string())),
                Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        return v
            .get("error")
            .and_then(pick)
            .or_else(|| v.get("message").and_then(pick))
            .or_else(|| v.get("detail").and_then(pick))
            .or_else(|| Some(body.to_string()));
    }
    // Proxies (nginx, Cloudflare) answer with an HTML page: keep its words, not its markup.
    if body.starts_with('<') {
        let mut text = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !words.is_empty() {
            return Some(words.chars().take(500).collect());
        }
    }
    Some(body.chars().take(500).collect())
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date relative to `now_unix` (seconds).
pub fn parse_retry_after(value: &str, now_unix: u64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = parse_http_date(v)?;
    Some(Duration::from_secs(at.saturating_sub(now_unix)))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only date form servers send today.
fn parse_http_date(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's civil-date algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    u64::try_from(days * 86400 + (h * 3600 + m * 60 + sec) as i64).ok()
}

fn mentions_images(msg: &str) -> bool {
    let m = msg.to_lowercase();
    let image = m.contains("image") || m.contains("vision") || m.contains("multimodal");
    let refusal = [
        "not support",
        "unsupported",
        "does not accept",
        "cannot process",
        "not enabled",
        "only text",
        "text-only",
        "no vision",
        "mmproj",
    ]
    .iter()
    .any(|w| m.contains(w));
    image && refusal
}

/// Turns a non-2xx response into an error. `retry_after` is the header, already parsed.
pub fn classify(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    req: &ChatRequest,
) -> RemoteError {
    let parsed = parse_error_body(body);
    let message = parsed.clone().unwrap_or_else(|| "(empty body)".into());
    if req.has_images() && mentions_images(&message) {
        return RemoteError::ImageUnsupported(message);
    }
    match status {
        400 | 422 => RemoteError::BadRequest(message),
        401 => RemoteError::Unauthorized(message),
        403 if parsed.is_none() => RemoteError::OriginNotAllowed,
        403 => RemoteError::Forbidden(message),
        404 if message.to_lowercase().contains("model") => RemoteError::ModelNotFound {
            model: req.model.clone(),
            message,
        },
        404 => RemoteError::NotFound(message),
        413 => RemoteError::PayloadTooLarge(message),
        429 => RemoteError::RateLimited {
            message,
            retry_after,
        },
        503 => RemoteError::Unavailable {
            message,
            retry_after,
        },
        500..=599 => RemoteError::Server { status, message },
        _ => RemoteError::Status { status, message },
    }
}

/// Parses a non-streamed chat-completion body.
pub fn parse_completion(body: &str) -> Result<Completion, RemoteError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| RemoteError::Protocol(format!("response is not JSON ({e})")))?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(RemoteError::Stream(
            parse_error_body(body).unwrap_or_default(),
        ));
    }
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| RemoteError::Protocol("response has no choices".into()))?;
    let message = choice.get("message");
    Ok(Completion {
        // Content may be null when a reasoning model spent its budget thinking.
        content: message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        logprobs: choice
            .get("logprobs")
            .map(parse_logprobs)
            .unwrap_or_default(),
        usage: v.get("usage").and_then(parse_usage),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

pub fn parse_usage(u: &Value) -> Option<Usage> {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    Some(Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        total_tokens: n("total_tokens"),
    })
    .filter(|x| x.prompt_tokens.is_some() || x.completion_tokens.is_some())
}

/// `choice.logprobs.content[]` → tokens (null or absent → none).
pub fn parse_logprobs(lp: &Value) -> Vec<TokenLogprob> {
    let items = lp.get("content").and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(TokenLogprob {
                token: t.get("token")?.as_str()?.to_string(),
                logprob: t.get("logprob")?.as_f64()?,
                top: t
                    .get("top_logprobs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        Some((
                            a.get("token")?.as_str()?.to_string(),
                            a.get("logprob")?.as_f64()?,
                        ))
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Longest overall timeout accepted (`--timeout`, `timeoutMs`): a day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Bounds on retrying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after 429/503 (each waits for Retry-After, or `default_wait` doubled per retry
    /// when there is none).
    pub max_retries: u32,
    pub default_wait: Duration,
    /// A Retry-After longer than this is not waited for.
    pub max_wait: Duration,
    /// For the whole exchange, waits and retries included.
    pub overall_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            default_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
            overall_timeout: Duration::from_secs(300),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send again after this wait.
    RetryAfter(Duration),
    /// Send again without this parameter (it was named in a 400).
    Drop(Param),
    Fail(RemoteError),
}

/// Decides the next step after `err`; `retries` counts 429/503 retries so far, `elapsed` the
/// time spent. A parameter is dropped at most once, since `req.uses` is false afterwards.
pub fn next_step(
    err: RemoteError,
    req: &ChatRequest,
    retries: u32,
    elapsed: Duration,
    policy: &RetryPolicy,
) -> Next {
    if let RemoteError::BadRequest(msg) = &err {
        let m = msg.to_lowercase();
        // Longest mention first: "top_logprobs" must not be mistaken for something else.
        if let Some(p) = Param::ALL
            .into_iter()
            .find(|p| req.uses(*p) && p.mentions().iter().any(|w| m.contains(w)))
        {
            return Next::Drop(p);
        }
        return Next::Fail(err);
    }
    if let Some(after) = err.retry_after() {
        // Without a Retry-After (or, in a browser, one the server did not expose to scripts
        // with Access-Control-Expose-Headers), back off exponentially from `default_wait`.
        let wait = after.unwrap_or_else(|| {
            policy
                .default_wait
                .saturating_mul(1 << retries.min(16))
                .min(policy.max_wait)
        });
        if retries < policy.max_retries
            && wait <= policy.max_wait
            && elapsed + wait < policy.overall_timeout
        {
            return Next::RetryAfter(wait);
        }
    }
    Next::Fail(err)
}

/// One request through its attempts, for every transport: the transport sends
/// [`Retrying::attempt`], reports a failure to [`Retrying::failed`] and waits as told.
#[derive(Debug)]
pub struct Retrying {
    req: ChatRequest,
    retries: u32,
    attempts: u32,
}

impl Retrying {
    pub fn new(req: ChatRequest) -> Self {
        Self {
            req,
            retries: 0,
            attempts: 0,
        }
    }

    /// The request to send now (counted as an attempt).
    pub fn attempt(&mut self) -> &ChatRequest {
        self.attempts += 1;
        &self.req
    }

    /// After a failed attempt, `elapsed` into the request: `Ok(None)` to send again at once (a
    /// rejected parameter was dropped), `Ok(Some(wait))` to send again after `wait`, or the
    /// error to give up with. Cancellation and the overall timeout end it at once.
    pub fn failed(
        &mut self,
        err: RemoteError,
        elapsed: Duration,
        policy: &RetryPolicy,
    ) -> Result<Option<Duration>, RemoteError> {
        if matches!(err, RemoteError::Cancelled | RemoteError::Timeout(_)) {
            return Err(err);
        }
        match next_step(err, &self.req, self.retries, elapsed, policy) {
            Next::Drop(p) => {
                self.req.drop_param(p);
                Ok(None)
            }
            Next::RetryAfter(wait) => {
                self.retries += 1;
                Ok(Some(wait))
            }
            Next::Fail(e) => Err(e),
        }
    }

    /// The answer, with the parameters dropped on the way and the attempts it took.
    pub fn succeeded(self, completion: Completion) -> crate::ask::Exchange {
        crate::ask::Exchange {
            completion,
            dropped: self.req.dropped,
            attempts: self.attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::request::{Message, Part, Role};

    fn req(images: bool) -> ChatRequest {
        let mut content = vec![Part::Text("x".into())];
        if images {
            content.push(Part::Image {
                url: "data:image/jpeg;base64,AA==".into(),
                detail: Default::default(),
            });
        }
        ChatRequest::new(
            "llava",
            vec![Message {
                role: Role::User,
                content,
            }],
        )
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            parse_error_body(r#"{"error":{"message":"bad","type":"x"}}"#).unwrap(),
            "bad"
        );
        assert_eq!(
            parse_error_body(r#"{"error":"model 'x' not found"}"#).unwrap(),
            "model 'x' not found"
        );
        assert_eq!(
            parse_error_body(r#"{"object":"error","message":"m","code":400}"#).unwrap(),
            "m"
        );
        assert_eq!(parse_error_body("   "), None);
        assert_eq!(parse_error_body("Bad Gateway").unwrap(), "Bad Gateway");
        assert_eq!(
            parse_error_body(
                "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
            )
            .unwrap(),
            "413 Request Entity Too Large 413 Request Entity Too Large nginx/1.22.1"
        );
    }

    #[test]
    fn statuses() {
        let r = req(true);
        assert_eq!(classify(403, "", None, &r), RemoteError::OriginNotAllowed);
        assert!(matches!(
            classify(
                404,
                r#"{"error":"model \"llava\" not found, try pulling it first"}"#,
                None,
                &r
            ),
            RemoteError::ModelNotFound { .. }
        ));
        assert!(matches!(
            classify(
                500,
                r#"{"error":{"message":"image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"}}"#,
                None,
                &r
            ),
            RemoteError::ImageUnsupported(_)
        ));
        // Without images the same words are not about our request.
        assert!(matches!(
            classify(
                500,
                r#"{"error":"image input is not supported"}"#,
                None,
                &req(false)
            ),
            RemoteError::Server { .. }
        ));
        let e = classify(403, "", None, &r);
        assert_eq!(
            (e.kind(), e.status(), e.hint()),
            ("origin_not_allowed", Some(403), Some(Hint::Origin))
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7", 0), Some(Duration::from_secs(7)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn retry_is_bounded() {
        let p = RetryPolicy::default();
        let r = req(false);
        let e = || RemoteError::RateLimited {
            message: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            next_step(e(), &r, 0, Duration::ZERO, &p),
            Next::RetryAfter(Duration::from_secs(1))
        );
        assert!(matches!(
            next_step(e(), &r, 3, Duration::ZERO, &p),
            Next::Fail(_)
        ));
        assert!(matches!(
            next_step(
                e(),
                &r,
                0,
                Duration::from_secs(299) + Duration::from_millis(500),
                &p
            ),
            Next::Fail(_)
        ));
        // No Retry-After: 2 s, 4 s, 8 s.
        let unknown = || RemoteError::Unavailable {
            message: String::new(),
            retry_after: None,
        };
        for (retries, secs) in [(0, 2), (1, 4), (2, 8)] {
            assert_eq!(
                next_step(unknown(), &r, retries, Duration::ZERO, &p),
                Next::RetryAfter(Duration::from_secs(secs))
            );
        }
        let mut r = req(false);
        r.top_logprobs = Some(3);
        let bad = RemoteError::BadRequest("top_logprobs is not supported".into());
        assert_eq!(
            next_step(bad.clone(), &r, 0, Duration::ZERO, &p),
            Next::Drop(Param::Logprobs)
        );
        r.drop_param(Param::Logprobs);
        assert!(matches!(
            next_step(bad, &r, 0, Duration::ZERO, &p),
            Next::Fail(_)
        ));
    }
}
