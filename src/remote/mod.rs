//! Remote VLMs behind an OpenAI-compatible chat-completions API (vLLM, llama.cpp's server,
//! Ollama, hosted APIs).
//!
//! The core is target-independent and does no I/O: [`request`] builds bodies, [`sse`] parses
//! streams, [`response`] turns statuses and error bodies into [`RemoteError`] and decides retries,
//! [`answer`] reads the model's text into a label (the multi-stage flow that combines the answers is [`crate::ask`]). Transports are thin: [`native`] (ureq, with
//! the blocking loop and permutation threads in [`client`]) and, in the browser, `web` (fetch),
//! with its JavaScript API in `js` (`askRemote`, `previewRemote`).

pub mod answer;
pub mod request;
pub mod response;
pub mod sse;

#[cfg(not(target_arch = "wasm32"))]
pub mod client;
#[cfg(all(target_arch = "wasm32", feature = "page"))]
pub mod js;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(all(target_arch = "wasm32", feature = "page"))]
pub mod web;

pub use answer::{Answer, parse_answer};
pub use request::{AskOptions, ChatRequest, Message, Param, Part, Role};
pub use response::{Completion, Hint, Limit, RemoteError, RetryPolicy};
pub use sse::ResponseLimits;

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

/// Query parameter names that carry credentials; such a URL is refused (the key goes in a header).
const CREDENTIAL_PARAMS: [&str; 7] = [
    "key",
    "token",
    "sig",
    "secret",
    "password",
    "auth",
    "credential",
];

impl Endpoint {
    /// Checks and completes the URL. Refused with a one-line reason: another scheme, a host that
    /// is not plain ASCII (an internationalised name must be given in its `xn--` form), a bad
    /// port, spaces or non-ASCII in the path, a fragment, credentials (user:pass@ or a query
    /// parameter named like a key, token or signature). Errors never repeat a query string.
    pub fn new(url: &str, api_key: Option<ApiKey>) -> Result<Self, RemoteError> {
        let url = url.trim();
        let shown = redact_url(url);
        let bad = |why: String| Err(RemoteError::Config(why));
        let rest = match url.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                rest
            }
            _ => {
                return bad(format!(
                    "endpoint must start with http:// or https://, got '{shown}'"
                ));
            }
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        // Credentials in a URL end up in logs and proxies: the key goes in a header only.
        let credential_param = query.is_some_and(|q| {
            q.split('&').any(|pair| {
                let name = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
                CREDENTIAL_PARAMS.iter().any(|c| name.contains(c))
            })
        });
        if authority.contains('@') || credential_param {
            return bad(
                "the endpoint URL carries credentials; pass the API key on its own (--api-key-env, \
                 or apiKey in the browser): it is only ever sent in the Authorization header"
                    .into(),
            );
        }
        if tail.contains('#') {
            return bad(format!("endpoint '{shown}' has a #fragment: remove it"));
        }
        check_authority(authority).map_err(|why| {
            RemoteError::Config(format!("endpoint '{shown}': {}", one_line(&why)))
        })?;
        // RFC 3986 characters only (what the HTTP stack accepts), `%` as an escape.
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c);
        let bad_escape = tail.match_indices('%').any(|(i, _)| {
            !tail
                .get(i + 1..i + 3)
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
        });
        if let Some(c) = tail
            .chars()
            .find(|&c| !allowed(c))
            .or(bad_escape.then_some('%'))
        {
            return bad(format!(
                "endpoint '{shown}': the path or query holds {c:?}; percent-encode it"
            ));
        }
        let base = format!(
            "{}://{authority}{}",
            &url[..url.len() - rest.len() - 3],
            path.trim_end_matches('/')
        );
        let full = if base.ends_with("/chat/completions") {
            base
        } else {
            format!("{base}/chat/completions")
        };
        let url = match query {
            Some(q) => format!("{full}?{q}"),
            None => full,
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

/// `host[:port]`: an ASCII host name, IPv4 or `[IPv6]` literal, and a port in 1–65535.
fn check_authority(authority: &str) -> Result<(), String> {
    if let Some(c) = authority.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "the host holds {c:?}, which is not ASCII: give an internationalised name in its \
             punycode (xn--...) form"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ]")?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{inside}] is not an IPv6 address"));
        }
        match after {
            "" => (inside, None),
            p => (
                inside,
                Some(
                    p.strip_prefix(':')
                        .ok_or("text after the ] of an IPv6 host")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(format!("'{host}' is not a host name"));
    }
    if let Some(p) = port
        && !(p.len() <= 5 && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n)))
    {
        return Err(format!("port '{p}' is not a number from 1 to 65535"));
    }
    Ok(())
}

/// A URL as it may be shown: no user:password@, no query values (tokens, signatures).
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let user = if host.len() < authority.len() {
                "…@"
            } else {
                ""
            };
            format!("{scheme}://{user}{host}{path}")
        }
        None => before_query.to_string(),
    };
    if query.is_some() {
        out.push_str("?…");
    }
    one_line(&out)
}

/// Control characters escaped, so an error quoting user text stays one line.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with every http(s) URL in it passed through [`redact_url`].
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest
        .find("http://")
        .into_iter()
        .chain(rest.find("https://"))
        .min()
    {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ','))
            .map_or(rest.len(), |e| i + e);
        out.push_str(&redact_url(&rest[i..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn hostile_endpoints_are_refused_in_one_line() {
        for (url, says) in [
            ("http://é/v1", "not ASCII"),
            ("https://bücher.example/v1", "punycode"),
            ("http:///v1", "no host"),
            ("http://h:0/v1", "port"),
            ("http://h:99999/v1", "port"),
            ("http://h:8a/v1", "port"),
            ("http://[::1/v1", "closing ]"),
            ("http://h/v 1", "percent-encode"),
            ("http://h/v1/é", "percent-encode"),
            ("http://h/v1#x", "fragment"),
            ("http://h/v1?token=abc", "credentials"),
            ("http://h/v1?x=1&sig=abc", "credentials"),
            ("ftp://h/v1", "http://"),
            ("", "http://"),
            ("http://", "no host"),
        ] {
            let e = Endpoint::new(url, None).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains('\n') && !e.contains("abc"), "{url}: {e}");
        }
        let e = Endpoint::new("http://[::1]:8000/v1?api-version=2", None).unwrap();
        assert_eq!(e.url, "http://[::1]:8000/v1/chat/completions?api-version=2");
        let e = Endpoint::new("HTTPS://xn--bcher-kva.example/v1/chat/completions/", None).unwrap();
        assert_eq!(e.url, "HTTPS://xn--bcher-kva.example/v1/chat/completions");
        assert_eq!(
            redact_urls_in("error: http://u:p@h:1/v1?sig=s3cret failed (see https://x/y)"),
            "error: http://…@h:1/v1?… failed (see https://x/y)"
        );
    }
}
