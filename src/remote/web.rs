//! Browser transport: `fetch` with an `AbortController` (so a request can be cancelled), the
//! body read chunk by chunk from its `ReadableStream`. The retry and parameter-dropping loop is
//! the same decision function as natively, driven asynchronously.
//!
//! `fetch` and `setTimeout` are looked up on the global object, so this works in a window and in
//! a worker alike.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStreamDefaultReader, Request, RequestInit, Response,
};

use super::request::{ChatRequest, Param};
use super::response::{
    Completion, Next, RemoteError, RetryPolicy, classify, next_step, parse_retry_after,
};
use super::sse::CompletionReader;
use super::{Endpoint, HttpRequest};

fn js_err(what: &str, e: JsValue) -> RemoteError {
    // An aborted fetch rejects with an AbortError.
    let name = Reflect::get(&e, &"name".into())
        .ok()
        .and_then(|n| n.as_string());
    if name.as_deref() == Some("AbortError") {
        return RemoteError::Cancelled;
    }
    let msg = Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    // The browser hides CORS refusals behind a generic TypeError.
    RemoteError::Transport(format!(
        "{what}: {msg} (if the server is reachable, it may not allow this origin: for Ollama set \
         OLLAMA_ORIGINS)"
    ))
}

fn global_fn(name: &str) -> Result<(JsValue, Function), RemoteError> {
    let global = js_sys::global();
    let f = Reflect::get(&global, &name.into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| RemoteError::Config(format!("no global {name}()")))?;
    Ok((global.into(), f))
}

async fn sleep_ms(ms: f64) {
    let Ok((global, set_timeout)) = global_fn("setTimeout") else {
        return;
    };
    let p = Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from_f64(ms));
    });
    let _ = JsFuture::from(p).await;
}

/// A cancellable client for one endpoint.
pub struct WebClient {
    pub endpoint: Endpoint,
    pub policy: RetryPolicy,
    controller: AbortController,
}

impl WebClient {
    pub fn new(endpoint: Endpoint, policy: RetryPolicy) -> Result<Self, RemoteError> {
        let controller = AbortController::new().map_err(|e| js_err("AbortController", e))?;
        Ok(Self {
            endpoint,
            policy,
            controller,
        })
    }

    /// Aborts the request in flight; `complete` then returns [`RemoteError::Cancelled`].
    pub fn cancel(&self) {
        self.controller.abort();
    }

    /// Sends `req` with the same degradation and retry rules as the native client.
    /// `on_delta` sees streamed text as it arrives.
    pub async fn complete(
        &self,
        mut req: ChatRequest,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<(Completion, Vec<Param>), RemoteError> {
        let start = js_sys::Date::now();
        let timeout_ms = self.policy.overall_timeout.as_secs_f64() * 1000.0;
        let mut retries = 0;
        loop {
            let err = match self.attempt(&req, on_delta).await {
                Ok(c) => return Ok((c, req.dropped.clone())),
                Err(e) => e,
            };
            if self.controller.signal().aborted() {
                return Err(RemoteError::Cancelled);
            }
            let elapsed =
                std::time::Duration::from_secs_f64((js_sys::Date::now() - start) / 1000.0);
            match next_step(err, &req, retries, elapsed, &self.policy) {
                Next::Drop(p) => req.drop_param(p),
                Next::RetryAfter(wait) => {
                    retries += 1;
                    sleep_ms(wait.as_secs_f64() * 1000.0).await;
                }
                Next::Fail(e) => return Err(e),
            }
            if js_sys::Date::now() - start >= timeout_ms {
                return Err(RemoteError::Timeout(self.policy.overall_timeout));
            }
        }
    }

    async fn attempt(
        &self,
        req: &ChatRequest,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, RemoteError> {
        let http = self.endpoint.http_request(req);
        let resp = self.fetch(&http).await?;
        let status = resp.status();
        if !(200..300).contains(&status) {
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
        let mut reader = CompletionReader::new(req.stream);
        let Some(body) = resp.body() else {
            return reader.finish();
        };
        let stream: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        loop {
            let chunk = JsFuture::from(stream.read())
                .await
                .map_err(|e| js_err("reading the response", e))?;
            let done = Reflect::get(&chunk, &"done".into())
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                break;
            }
            let value = Reflect::get(&chunk, &"value".into()).unwrap_or(JsValue::UNDEFINED);
            let bytes = Uint8Array::new(&value).to_vec();
            let delta = reader.push(&bytes)?;
            if !delta.is_empty() {
                on_delta(&delta);
            }
        }
        reader.finish()
    }

    async fn fetch(&self, http: &HttpRequest) -> Result<Response, RemoteError> {
        let headers = Headers::new().map_err(|e| js_err("Headers", e))?;
        for (k, v) in &http.headers {
            headers.set(k, v).map_err(|e| js_err("header", e))?;
        }
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(&http.body));
        init.set_signal(Some(&self.controller.signal()));
        let request = Request::new_with_str_and_init(&http.url, &init)
            .map_err(|e| js_err("building the request", e))?;
        let (global, fetch) = global_fn("fetch")?;
        let promise: Promise = fetch
            .call1(&global, &request)
            .map_err(|e| js_err("fetch", e))?
            .unchecked_into();
        let resp = JsFuture::from(promise)
            .await
            .map_err(|e| js_err("fetch", e))?;
        Ok(resp.unchecked_into())
    }
}
