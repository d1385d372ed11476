//! Browser transport: `fetch`, the body read chunk by chunk from its `ReadableStream`, with the
//! same retry and parameter-dropping decisions as natively ([`Retrying`]), driven asynchronously.
//!
//! One `AbortController` per client stops everything in flight, waits included: it is aborted by
//! the caller's `AbortSignal` and by the overall timeout. A failed `fetch` is a bare `TypeError`
//! whether the server is down or refused the page's origin (CORS); a `no-cors` probe tells the
//! two apart so the error can say which, and how to fix it.
//!
//! `fetch` and `setTimeout` are looked up on the global object, so this works in a window and in
//! a worker alike.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Headers, ReadableStreamDefaultReader, Response};

use super::request::ChatRequest;
use super::response::{
    Completion, RemoteError, RetryPolicy, Retrying, classify, parse_retry_after,
};
use super::sse::{CompletionReader, ResponseLimits};
use super::{Endpoint, HttpRequest};
use crate::ask::Exchange;

fn property(v: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(v, &key.into())
        .ok()
        .filter(|x| !x.is_undefined() && !x.is_null())
}

fn error_text(e: &JsValue) -> String {
    property(e, "message")
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn global_fn(name: &str) -> Result<(JsValue, Function), RemoteError> {
    let global: JsValue = js_sys::global().into();
    let f = property(&global, name)
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| RemoteError::Config(format!("this context has no global {name}()")))?;
    Ok((global, f))
}

/// The page's (or worker's) origin, for error messages.
pub fn page_origin() -> String {
    property(&js_sys::global(), "origin")
        .and_then(|o| o.as_string())
        .unwrap_or_else(|| "this page's origin".into())
}

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> &str {
    let rest = url.find("://").map_or(0, |i| i + 3);
    url[rest..].find('/').map_or(url, |i| &url[..rest + i])
}

/// A client for one endpoint; everything it sends stops when the caller's signal aborts or the
/// policy's overall timeout passes.
pub struct WebClient {
    pub endpoint: Endpoint,
    pub policy: RetryPolicy,
    pub limits: ResponseLimits,
    controller: AbortController,
    caller_signal: Option<AbortSignal>,
    /// `controller.abort` bound to the controller: the abort listener and the timer callback.
    abort: Function,
    timer: Option<JsValue>,
    started_ms: f64,
}

impl WebClient {
    pub fn new(
        endpoint: Endpoint,
        policy: RetryPolicy,
        limits: ResponseLimits,
        caller_signal: Option<AbortSignal>,
    ) -> Result<Self, RemoteError> {
        let controller = AbortController::new()
            .map_err(|e| RemoteError::Config(format!("AbortController: {}", error_text(&e))))?;
        let abort = property(&controller, "abort")
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| RemoteError::Config("AbortController has no abort()".into()))?
            .bind0(&controller);
        if let Some(s) = &caller_signal {
            if s.aborted() {
                controller.abort();
            } else {
                let _ = s.add_event_listener_with_callback("abort", &abort);
            }
        }
        let (global, set_timeout) = global_fn("setTimeout")?;
        let ms = policy.overall_timeout.as_secs_f64() * 1000.0;
        let timer = set_timeout
            .call2(&global, &abort, &JsValue::from_f64(ms))
            .ok();
        Ok(Self {
            endpoint,
            policy,
            limits,
            controller,
            caller_signal,
            abort,
            timer,
            started_ms: js_sys::Date::now(),
        })
    }

    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            ((js_sys::Date::now() - self.started_ms) / 1000.0).max(0.0),
        )
    }

    /// Why the controller was aborted, if it was: the caller's signal, else the timeout.
    fn stopped(&self) -> Option<RemoteError> {
        if self.caller_signal.as_ref().is_some_and(|s| s.aborted()) {
            return Some(RemoteError::Cancelled);
        }
        self.controller
            .signal()
            .aborted()
            .then_some(RemoteError::Timeout(self.policy.overall_timeout))
    }

    /// Sends `req` with the same degradation and retry rules as the native client.
    /// `on_delta` sees streamed text as it arrives.
    pub async fn complete(
        &self,
        req: ChatRequest,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Exchange, RemoteError> {
        let mut request = Retrying::new(req);
        loop {
            if let Some(e) = self.stopped() {
                return Err(e);
            }
            let err = match self.attempt(request.attempt(), on_delta).await {
                Ok(completion) => return Ok(request.succeeded(completion)),
                Err(e) => self.stopped().unwrap_or(e),
            };
            if let Some(wait) = request.failed(err, self.elapsed(), &self.policy)? {
                self.sleep(wait.as_secs_f64() * 1000.0).await;
            }
        }
    }

    /// Waits `ms`, or less when the controller aborts.
    async fn sleep(&self, ms: f64) {
        let Ok((global, set_timeout)) = global_fn("setTimeout") else {
            return;
        };
        let signal = self.controller.signal();
        let p = Promise::new(&mut |resolve, _| {
            let _ = set_timeout.call2(&global, &resolve, &JsValue::from_f64(ms));
            let _ = signal.add_event_listener_with_callback("abort", &resolve);
        });
        let _ = JsFuture::from(p).await;
    }

    async fn attempt(
        &self,
        req: &ChatRequest,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, RemoteError> {
        let http = self.endpoint.http_request(req);
        let resp = self.fetch(&http).await?;
        // `redirect: 'manual'`: the browser hides where it pointed, but never follows it.
        if property(&resp, "type")
            .and_then(|t| t.as_string())
            .as_deref()
            == Some("opaqueredirect")
        {
            return Err(RemoteError::Redirect {
                status: resp.status(),
                location: "(hidden by the browser)".into(),
            });
        }
        let status = resp.status();
        if !(200..300).contains(&status) {
            // Null unless the server lists it in Access-Control-Expose-Headers; `next_step`
            // then backs off on its own.
            let retry_after = resp.headers().get("retry-after").ok().flatten();
            let body = match resp.text() {
                Ok(p) => JsFuture::from(p)
                    .await
                    .ok()
                    .and_then(|t| t.as_string())
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            let now = (js_sys::Date::now() / 1000.0) as u64;
            let ra = retry_after.and_then(|v| parse_retry_after(&v, now));
            return Err(classify(status, &body, ra, req));
        }
        let mut reader = CompletionReader::with_limits(req.stream, self.limits);
        let Some(body) = resp.body() else {
            return reader.finish();
        };
        let stream: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        loop {
            let chunk = JsFuture::from(stream.read()).await.map_err(|e| {
                RemoteError::Transport(format!(
                    "the connection broke while reading the response: {}",
                    error_text(&e)
                ))
            })?;
            if property(&chunk, "done").and_then(|d| d.as_bool()) != Some(false) {
                break;
            }
            let value = property(&chunk, "value").unwrap_or(JsValue::UNDEFINED);
            let delta = match reader.push(&Uint8Array::new(&value).to_vec()) {
                Ok(d) => d,
                Err(e) => {
                    let _ = stream.cancel(); // stop the download, not only the reading
                    return Err(e);
                }
            };
            if !delta.is_empty() {
                on_delta(&delta);
            }
            if reader.is_done() {
                // `[DONE]`: the answer is whole even if the server keeps the connection open.
                let _ = stream.cancel();
                break;
            }
        }
        reader.finish()
    }

    async fn fetch(&self, http: &HttpRequest) -> Result<Response, RemoteError> {
        let headers = Headers::new()
            .map_err(|e| RemoteError::Config(format!("Headers: {}", error_text(&e))))?;
        for (k, v) in &http.headers {
            // Never echo the value: it may be the key.
            headers
                .set(k, v)
                .map_err(|_| RemoteError::Config(format!("the {k} header is not valid")))?;
        }
        let init = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&init, &k.into(), v).map(drop);
        let _ = set("method", &"POST".into());
        let _ = set("headers", &headers);
        let _ = set("body", &http.body.as_str().into());
        let _ = set("signal", &self.controller.signal());
        // A redirect would re-send the body (prompt, keyframes) and the key to wherever it
        // points: it is reported instead (see `attempt`).
        let _ = set("redirect", &"manual".into());
        // No cookies: the API key header is the only credential.
        let _ = set("credentials", &"omit".into());
        let _ = set("cache", &"no-store".into());
        let (global, fetch) = global_fn("fetch")?;
        let called = fetch.call2(&global, &http.url.as_str().into(), &init);
        let result = match called {
            Ok(p) => JsFuture::from(p.unchecked_into::<Promise>()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => Ok(r.unchecked_into()),
            Err(e) => Err(self.fetch_failure(&http.url, &e).await),
        }
    }

    /// Explains a rejected fetch. The browser gives a bare TypeError for a refused origin and for
    /// a dead server alike; a `no-cors` GET (no headers, no body, response unreadable) reaches a
    /// live server either way, so it tells which.
    async fn fetch_failure(&self, url: &str, e: &JsValue) -> RemoteError {
        if let Some(stopped) = self.stopped() {
            return stopped;
        }
        let name = property(e, "name").and_then(|n| n.as_string());
        if name.as_deref() != Some("TypeError") {
            return RemoteError::Transport(format!(
                "fetch {} failed: {}",
                super::redact_url(url),
                error_text(e)
            ));
        }
        let origin = page_origin();
        let server = origin_of(url);
        let how = format!(
            "Allow the origin on the server: Ollama: set OLLAMA_ORIGINS={origin} (Ollama answers \
             a refused origin with a 403 that carries no CORS headers, which the browser reports \
             exactly like this); vLLM: --allowed-origins '[\"{origin}\"]'; llama.cpp's server \
             allows any origin, so check a proxy in front of it"
        );
        if self.reachable(url).await {
            RemoteError::Transport(format!(
                "{server} answered, but the browser withheld the response: the server does not \
                 allow requests from this page's origin {origin} (CORS, including the preflight \
                 for the Authorization and Content-Type headers). {how}"
            ))
        } else {
            RemoteError::Transport(format!(
                "could not reach {} from this page: the server is not running, the host or \
                 port is wrong, or the browser blocked it (an https page calling http, or a \
                 public page calling a private address). If the server does run there, it may \
                 be refusing this page's origin {origin}. {how}",
                super::redact_url(url)
            ))
        }
    }

    async fn reachable(&self, url: &str) -> bool {
        let Ok((global, fetch)) = global_fn("fetch") else {
            return false;
        };
        let init = Object::new();
        for (k, v) in [
            ("method", "GET"),
            ("mode", "no-cors"),
            ("credentials", "omit"),
            ("cache", "no-store"),
        ] {
            let _ = Reflect::set(&init, &k.into(), &v.into());
        }
        let _ = Reflect::set(&init, &"signal".into(), &self.controller.signal());
        match fetch.call2(&global, &url.into(), &init) {
            Ok(p) => JsFuture::from(p.unchecked_into::<Promise>()).await.is_ok(),
            Err(_) => false,
        }
    }
}

impl Drop for WebClient {
    fn drop(&mut self) {
        if let Some(s) = &self.caller_signal {
            let _ = s.remove_event_listener_with_callback("abort", &self.abort);
        }
        if let (Some(id), Ok((global, clear))) = (&self.timer, global_fn("clearTimeout")) {
            let _ = clear.call1(&global, id);
        }
    }
}
