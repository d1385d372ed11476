//! The JavaScript API of the remote client: a thin layer that reads options, runs the shared
//! request/answer core over the fetch transport ([`super::web`]) and returns the JSON that
//! `emolens ask --json` prints.
//!
//! ```js
//! const controller = new AbortController();
//! const result = await askRemote(prompt.requests[0].messages, {
//!   endpoint: 'http://localhost:11434/v1', model: 'llava:7b', labels: 'dfew',
//!   stream: true, onToken: (text) => out.textContent += text, signal: controller.signal,
//! });
//! // { label, scores, probabilities, rationale, usage, dropped_parameters, unparsed, raw, orders, runs }
//! const sent = previewRemote(messages, options); // what would be POSTed, key redacted
//! ```
//! Errors reject with an `Error` whose message says what happened and what to do; `name` is
//! `AbortError` after the signal aborted, `TimeoutError` after `timeoutMs`; `kind` and `status`
//! say which fault it was (e.g. `kind: 'image_unsupported'` → offer `textOnly: true`).

use std::cell::RefCell;
use std::time::Duration;

use js_sys::{Array, Function, Promise, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::AbortSignal;

use super::request::{AskOptions, Message, Part, messages_from_json, ordered_names, text_only};
use super::response::{RemoteError, RetryPolicy};
use super::web::WebClient;
use super::{ApiKey, ChatRequest, Endpoint, Hint, Limit, ResponseLimits};
use crate::ask::runs::permutations;
use crate::ask::{AskError, AskFlow, AskPlan, CorrectionPlan, Query, Question, Reply, Stage};
use crate::labels::LabelSet;
use crate::prompt::{LabelOrdering, check_permutations};
use crate::web::options::{bad, flag, get, label_set, number, to_js};

fn to_json(v: &JsValue, what: &str) -> Result<Value, JsValue> {
    serde_wasm_bindgen::from_value(v.clone())
        .map_err(|e| bad(format!("{what} is not plain JSON data: {e}")))
}

/// The error's sentence, with what to change in the page's options.
fn browser_message(e: &RemoteError, timeout: Duration) -> String {
    let hint = match (e, e.hint()) {
        // The fetch transport words its network failures as whole sentences.
        (RemoteError::Transport(m), _) => return m.clone(),
        (RemoteError::Cancelled, _) => {
            return "the request was aborted by options.signal; nothing more is sent or read"
                .into();
        }
        (_, None) => return e.to_string(),
        (_, Some(Hint::ApiKey)) => "check options.apiKey".to_string(),
        (_, Some(Hint::Origin)) => format!(
            "start Ollama with OLLAMA_ORIGINS={} (or '*' for any origin)",
            super::web::page_origin()
        ),
        (_, Some(Hint::Model(model))) => {
            format!("check options.model (for Ollama, `ollama pull {model}` on the server)")
        }
        (_, Some(Hint::TextOnly)) => {
            "use a vision model, or ask in text-only mode (options.textOnly = \
            true, or the prompt's 'summaries' mode): then no pixel leaves the page"
                .to_string()
        }
        (_, Some(Hint::Limit(Limit::ResponseBody))) => {
            "raise options.maxResponseBytes if it is legitimate".to_string()
        }
        (_, Some(Hint::Limit(Limit::SseLine))) => {
            "raise options.maxSseLineBytes if it is legitimate".to_string()
        }
        (_, Some(Hint::Timeout)) => {
            return format!(
                "gave up after {} ms (options.timeoutMs), waits and retries included",
                timeout.as_millis()
            );
        }
    };
    format!("{e}; {hint}")
}

fn remote_error(e: &RemoteError, timeout: Duration) -> JsValue {
    let err = js_sys::Error::new(&browser_message(e, timeout));
    err.set_name(match e {
        RemoteError::Cancelled => "AbortError",
        RemoteError::Timeout(_) => "TimeoutError",
        _ => "RemoteVlmError",
    });
    let _ = Reflect::set(&err, &"kind".into(), &e.kind().into());
    if let Some(s) = e.status() {
        let _ = Reflect::set(&err, &"status".into(), &s.into());
    }
    err.into()
}

/// Label names in the order one request lists them.
type LabelOrder = Vec<String>;

/// Everything `askRemote` and `previewRemote` read from `options`.
pub(crate) struct Settings {
    endpoint: Endpoint,
    pub labels: LabelSet,
    ask: AskOptions,
    /// Label orders asked (1 unless the messages are a function of the order).
    pub permutations: usize,
    pub seed: Option<u64>,
    pub max_in_flight: usize,
    policy: RetryPolicy,
    pub text_only: bool,
    limits: ResponseLimits,
    /// `options.permutations` as given (the prompt's `requests` may set the count instead).
    permutations_given: bool,
    on_token: Option<Function>,
    signal: Option<AbortSignal>,
}

fn string(options: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    match get(options, key) {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| bad(format!("options.{key} must be a string"))),
    }
}

/// The prompt builder's output in the summaries mode: it promises no pixels, so its requests
/// are sent text-only whatever they hold.
fn summaries_prompt(messages: &JsValue) -> bool {
    get(messages, "mode").and_then(|m| m.as_string()).as_deref() == Some("summaries")
}

pub(crate) fn settings(options: &JsValue, messages: &JsValue) -> Result<Settings, JsValue> {
    if !options.is_object() {
        return Err(bad(
            "options must be an object: { endpoint, model, labels?, apiKey?, stream?, ... }",
        ));
    }
    let url = string(options, "endpoint")?.ok_or_else(|| {
        bad("options.endpoint is missing: the server's base URL, e.g. 'http://localhost:11434/v1'")
    })?;
    let model = string(options, "model")?
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| bad("options.model is missing: the model's name on the server"))?;
    let api_key = string(options, "apiKey")?
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(ApiKey::new);
    let endpoint =
        Endpoint::new(&url, api_key).map_err(|e| bad(format!("options.endpoint: {e}")))?;
    let top_logprobs = match get(options, "logprobs") {
        None => Some(5),
        Some(v) if v.as_bool() == Some(true) => Some(5),
        Some(v) if v.as_bool() == Some(false) => None,
        Some(_) => match number(options, "logprobs", 5.0, 0.0, 20.0)? as u8 {
            0 => None,
            k => Some(k),
        },
    };
    let permutations_given = get(options, "permutations").is_some();
    let timeout_ms = number(options, "timeoutMs", 300_000.0, 1.0, 86_400_000.0)?;
    let on_token = match get(options, "onToken") {
        None => None,
        Some(f) => Some(
            f.dyn_into::<Function>()
                .map_err(|_| bad("options.onToken must be a function (text, requestIndex)"))?,
        ),
    };
    let signal = match get(options, "signal") {
        None => None,
        Some(s) => Some(
            s.dyn_into::<AbortSignal>()
                .map_err(|_| bad("options.signal must be an AbortSignal"))?,
        ),
    };
    Ok(Settings {
        endpoint,
        labels: label_set(options, messages)?,
        ask: AskOptions {
            model,
            stream: flag(options, "stream", false)?,
            top_logprobs,
            schema: flag(options, "schema", true)?,
            temperature: Some(number(options, "temperature", 0.0, 0.0, 2.0)? as f32),
            max_tokens: Some(number(options, "maxTokens", 512.0, 1.0, 1e6)? as u32),
        },
        permutations: number(options, "permutations", 1.0, 1.0, 64.0)? as usize,
        seed: get(options, "seed")
            .map(|_| number(options, "seed", 0.0, 0.0, 9.007e15))
            .transpose()?
            .map(|s| s as u64),
        max_in_flight: number(options, "maxConcurrent", 4.0, 1.0, 64.0)? as usize,
        policy: RetryPolicy {
            max_retries: number(options, "retries", 3.0, 0.0, 20.0)? as u32,
            default_wait: Duration::from_secs_f64(
                number(options, "retryDelayMs", 2000.0, 0.0, 600_000.0)? / 1000.0,
            ),
            overall_timeout: Duration::from_secs_f64(timeout_ms / 1000.0),
            ..RetryPolicy::default()
        },
        text_only: flag(options, "textOnly", false)? || summaries_prompt(messages),
        limits: ResponseLimits {
            max_response_bytes: number(
                options,
                "maxResponseBytes",
                16.0 * 1048576.0,
                1024.0,
                4294967296.0,
            )? as usize,
            max_sse_line_bytes: number(options, "maxSseLineBytes", 1048576.0, 1024.0, 1073741824.0)?
                as usize,
        },
        permutations_given,
        on_token,
        signal,
    })
}

/// `messages` as an array, or an object carrying `messages` (one of `emolens prompt`'s requests).
fn conversation(v: &JsValue, what: &str) -> Result<Vec<Message>, JsValue> {
    let v = if Array::is_array(v) {
        v.clone()
    } else {
        get(v, "messages").ok_or_else(|| bad(format!("{what} has no messages array")))?
    };
    let messages =
        messages_from_json(&to_json(&v, what)?).map_err(|e| bad(format!("{what}: {e}")))?;
    if messages
        .iter()
        .flat_map(|m| &m.content)
        .any(|p| matches!(p, Part::PassedImage))
    {
        return Err(bad(format!(
            "{what} has a {{type: 'image'}} part: a server takes images only as image_url parts \
             (data: URLs); {{type: 'image'}} is for LocalVlm.generate"
        )));
    }
    Ok(messages)
}

/// The label order of one of the prompt's requests, checked against the label set.
fn request_order(entry: &JsValue, labels: &LabelSet, what: &str) -> Result<Vec<String>, JsValue> {
    let Some(order) = get(entry, "label_order") else {
        return Ok(labels.names().to_vec());
    };
    let names: Vec<String> = serde_wasm_bindgen::from_value(order).map_err(|_| {
        bad(format!(
            "{what}.label_order must be an array of label names"
        ))
    })?;
    let canonical: Vec<String> = names
        .iter()
        .map(|n| labels.canonical(n).map(|i| labels.name(i).to_string()))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            bad(format!(
                "{what}.label_order names a label outside the label set"
            ))
        })?;
    if canonical.len() != labels.len() {
        return Err(bad(format!(
            "{what}.label_order lists {} labels, the label set has {}",
            canonical.len(),
            labels.len()
        )));
    }
    Ok(canonical)
}

/// One (label order, conversation) per request. `messages` is an array of messages (one
/// request), one of `emolens prompt`'s requests, its whole output (`{labels, requests}`: one
/// request per label order), or a function `(labelOrder) => messages` called per permutation.
fn conversations(
    messages: &JsValue,
    s: &Settings,
) -> Result<Vec<(LabelOrder, Vec<Message>)>, JsValue> {
    let labels = &s.labels;
    let k = s.permutations;
    let ordering = s.seed.map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded);
    check_permutations(labels.len(), k, ordering)
        .map_err(|e| bad(format!("options.permutations: {e}")))?;
    let list = if let Some(f) = messages.dyn_ref::<Function>() {
        permutations(labels.len(), k, s.seed)
            .into_iter()
            .map(|perm| {
                let order = ordered_names(labels, &perm);
                let js_order: Array = order.iter().map(|n| JsValue::from_str(n)).collect();
                let v = f.call1(&JsValue::NULL, &js_order).map_err(|e| {
                    bad(format!(
                        "the messages function threw: {}",
                        get(&e, "message")
                            .and_then(|m| m.as_string())
                            .unwrap_or_default()
                    ))
                })?;
                Ok((order, conversation(&v, "the messages function's result")?))
            })
            .collect::<Result<Vec<_>, JsValue>>()?
    } else if let Some(requests) = get(messages, "requests") {
        if !Array::is_array(&requests) {
            return Err(bad("messages.requests must be an array"));
        }
        let requests = Array::from(&requests);
        if s.permutations_given && k != requests.length() as usize {
            return Err(bad(format!(
                "options.permutations is {k} but the prompt has {} requests (one per label \
                 order); leave permutations out or build the prompt with as many",
                requests.length()
            )));
        }
        requests
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let what = format!("messages.requests[{i}]");
                Ok((
                    request_order(&entry, labels, &what)?,
                    conversation(&entry, &what)?,
                ))
            })
            .collect::<Result<Vec<_>, JsValue>>()?
    } else if Array::is_array(messages) || get(messages, "messages").is_some() {
        if k > 1 {
            return Err(bad(format!(
                "options.permutations is {k}, but one conversation lists the labels in one order \
                 only: pass a function (labelOrder) => messages, or the prompt built with \
                 --permutations {k} (its requests)"
            )));
        }
        vec![(
            request_order(messages, labels, "messages")?,
            conversation(messages, "messages")?,
        )]
    } else {
        return Err(bad(
            "messages must be an array of {role, content}, a prompt request {messages}, the \
             prompt's output {requests}, or a function (labelOrder) => messages",
        ));
    };
    if !s.text_only {
        return Ok(list);
    }
    list.into_iter()
        .map(|(order, m)| {
            let text = text_only(&m);
            if text.is_empty() {
                return Err(bad(
                    "options.textOnly removed every message: the conversation has no text",
                ));
            }
            Ok((order, text))
        })
        .collect()
}

/// The settings and the flow's queries (one classifying query per conversation).
fn queries(messages: &JsValue, options: &JsValue) -> Result<(Settings, AskPlan), JsValue> {
    let s = settings(options, messages)?;
    let list = conversations(messages, &s)?;
    let plan = AskPlan {
        labels: s.labels.clone(),
        permutations: list.len(),
        question: Question::Conversations(list),
        seed: s.seed,
        correction: CorrectionPlan::None,
        max_in_flight: s.max_in_flight,
        text_only: s.text_only,
    };
    Ok((s, plan))
}

/// What `askRemote` would send, sending nothing: `{ url, textOnly, images, requests: [{ order,
/// method, url, headers, body }] }`. `body` is the exact JSON text of the first attempt; the
/// Authorization header shows `Bearer <redacted>`.
#[wasm_bindgen(js_name = previewRemote)]
pub fn preview_remote(messages: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let (s, plan) = queries(&messages, &options)?;
    let reqs: Vec<(LabelOrder, ChatRequest)> = AskFlow::<RemoteError>::preview(plan)
        .map_err(|e| bad(e.message))?
        .iter()
        .map(|q| {
            let order = q.purpose.order().unwrap_or_default().to_vec();
            (order, s.ask.request(q, s.text_only))
        })
        .collect();
    let images: usize = reqs
        .iter()
        .flat_map(|(_, r)| r.messages.iter().map(Message::image_count))
        .sum();
    let requests: Vec<Value> = reqs
        .iter()
        .map(|(order, r)| {
            let http = s.endpoint.http_request(r);
            let headers: serde_json::Map<String, Value> = http
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("authorization") {
                        "Bearer <redacted>"
                    } else {
                        v.as_str()
                    };
                    (k.clone(), json!(v))
                })
                .collect();
            json!({"order": order, "method": "POST", "url": http.url, "headers": headers, "body": http.body})
        })
        .collect();
    to_js(&json!({
        "url": s.endpoint.url,
        "textOnly": s.text_only,
        "images": images,
        "requests": requests,
    }))
}

/// Asks the server: one request per label order (at most `maxConcurrent` at a time), each
/// retried and degraded like the native client, through the core ask flow; resolves to
/// `emolens ask --json`'s structure.
/// `options`: `{ endpoint, model, labels = 'dfew', apiKey?, stream = false, onToken?(text,
/// requestIndex), signal?, logprobs = 5, schema = true, temperature = 0, maxTokens = 512,
/// permutations = 1, seed?, maxConcurrent = 4, timeoutMs = 300000, retries = 3,
/// retryDelayMs = 2000, textOnly = false }`. An exception thrown by `onToken` rejects the call
/// once the requests have ended.
#[wasm_bindgen(js_name = askRemote)]
pub fn ask_remote(messages: JsValue, options: JsValue) -> Promise {
    future_to_promise(async move {
        let (s, plan) = queries(&messages, &options)?;
        let flow = AskFlow::new(plan).map_err(|e| bad(e.message))?;
        let outcome = remote_flow(&s, flow, None).await?;
        to_js(&outcome.to_json())
    })
}

/// Drives `flow` over `fetch` with the settings' endpoint, retries, limits, signal and onToken
/// (its second argument: the query's index); `on_progress(done, total)` after each answer.
pub(crate) async fn remote_flow(
    s: &Settings,
    flow: AskFlow<RemoteError>,
    on_progress: Option<&Function>,
) -> Result<crate::ask::AskOutcome, JsValue> {
    let timeout = s.policy.overall_timeout;
    let client = WebClient::new(s.endpoint.clone(), s.policy, s.limits, s.signal.clone())
        .map_err(|e| remote_error(&e, timeout))?;
    let callback_error: RefCell<Option<JsValue>> = RefCell::default();
    let (client, callback_error) = (&client, &callback_error);
    let answer = |q: Query| {
        let req = s.ask.request(&q, s.text_only);
        let on_token = s.on_token.clone();
        async move {
            let mut on_delta = |text: &str| {
                if let Some(f) = &on_token
                    && let Err(e) = f.call2(&JsValue::NULL, &text.into(), &(q.id as u32).into())
                {
                    callback_error.borrow_mut().get_or_insert(e);
                }
            };
            client
                .complete(req, &mut on_delta)
                .await
                .map(Reply::Completion)
        }
    };
    let progress = |done: usize, total: usize| {
        if let Some(f) = on_progress
            && let Err(e) = f.call2(
                &JsValue::NULL,
                &(done as u32).into(),
                &(total as u32).into(),
            )
        {
            callback_error.borrow_mut().get_or_insert(e);
        }
    };
    let outcome = crate::ask::drive_async(flow, answer, progress).await;
    if let Some(e) = callback_error.borrow_mut().take() {
        return Err(e);
    }
    outcome.map_err(|e| ask_error(&e, timeout))
}

/// A failed ask as a rejected `Error`: the remote error, with the stage named when it was not
/// the final question.
fn ask_error(e: &AskError<RemoteError>, timeout: Duration) -> JsValue {
    let err = remote_error(&e.error, timeout);
    if e.stage != Stage::Classify {
        let message = e.in_context(&browser_message(&e.error, timeout));
        let _ = Reflect::set(&err, &"message".into(), &message.into());
        let stage = e.in_context("");
        let _ = Reflect::set(
            &err,
            &"stage".into(),
            &stage.trim_end_matches([':', ' ']).into(),
        );
    }
    err
}
