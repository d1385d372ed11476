//! Remote VLMs behind an OpenAI-compatible chat-completions API (vLLM, llama.cpp's server,
//! Ollama, hosted APIs).
//!
//! The core is target-independent and does no I/O: [`request`] builds bodies, [`sse`] parses
//! streams, [`response`] turns statuses and error bodies into [`RemoteError`] and decides retries,
//! [`answer`] reads the model's text into a label, [`ask`] combines label-order runs. Transports are thin: [`native`] (ureq, with
//! the blocking loop and permutation threads in [`client`]) and, in the browser, `web` (fetch),
//! with its JavaScript API in `js` (`askRemote`, `previewRemote`).

pub mod answer;
pub mod ask;
pub mod request;
pub mod response;
pub mod sse;

#[cfg(not(target_arch = "wasm32"))]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use answer::{Answer, parse_answer};
pub use request::{ChatRequest, Message, Param, Part, Role};
pub use response::{Completion, RemoteError, RetryPolicy};

/// A secret. Its `Debug` never shows it, and it only ever goes into the Authorization header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Reads the key from the environment variable `var` (native only; the browser passes it in).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env(var: &str) -> Result<Self, RemoteError> {
        match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => Ok(Self(k.trim().to_string())),
            _ => Err(RemoteError::Config(format!(
                "environment variable {var} (named by --api-key-env) is not set or empty"
            ))),
        }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where requests go: a base URL (`http://host:8000/v1`) or a full `.../chat/completions` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub api_key: Option<ApiKey>,
}

impl Endpoint {
    pub fn new(url: &str, api_key: Option<ApiKey>) -> Result<Self, RemoteError> {
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RemoteError::Config(format!(
                "endpoint must start with http:// or https://, got '{url}'"
            )));
        }
        // Credentials in a URL end up in logs and proxies: the key goes in a header only.
        if url
            .split('?')
            .nth(1)
            .is_some_and(|q| q.to_lowercase().contains("key"))
            || url["https://".len().min(url.len())..]
                .split('/')
                .next()
                .is_some_and(|host| host.contains('@'))
        {
            return Err(RemoteError::Config(
                "the endpoint URL carries credentials; pass the API key on its own (--api-key-env, \
                 or apiKey in the browser): it is only ever sent in the Authorization header"
                    .into(),
            ));
        }
        let base = url.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        Ok(Self { url, api_key })
    }

    pub fn http_request(&self, req: &ChatRequest) -> HttpRequest {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.push((
            "Accept".into(),
            if req.stream {
                "text/event-stream"
            } else {
                "application/json"
            }
            .into(),
        ));
        if let Some(k) = &self.api_key {
            headers.push(("Authorization".into(), k.bearer()));
        }
        HttpRequest {
            url: self.url.clone(),
            headers,
            body: req.to_json().to_string(),
        }
    }
}

/// A POST ready for a transport.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("authorization") {
                    (k.as_str(), "<redacted>")
                } else {
                    (k.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_never_shown() {
        let e = Endpoint::new("http://h:1/v1/", Some(ApiKey::new("sk-secret"))).unwrap();
        assert_eq!(e.url, "http://h:1/v1/chat/completions");
        let r = e.http_request(&ChatRequest::new("m", vec![]));
        assert!(!format!("{e:?}{r:?}").contains("sk-secret"));
        assert!(!r.url.contains("sk-secret"));
        assert!(r.headers.iter().any(|(_, v)| v == "Bearer sk-secret"));
        assert!(Endpoint::new("https://u:p@h/v1", None).is_err());
        assert!(Endpoint::new("https://h/v1?api_key=x", None).is_err());
        assert!(Endpoint::new("h/v1", None).is_err());
    }
}
