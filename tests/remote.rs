//! The remote VLM client against a local HTTP server that answers in the byte shapes of vLLM,
//! llama.cpp's server and Ollama's OpenAI-compatible endpoint, and with each fault they produce.
//! Everything stays on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emolens::labels::LabelSet;
use emolens::remote::client::{AskOptions, Client, ask};
use emolens::remote::native::UreqTransport;
use emolens::remote::request::build_messages;
use emolens::remote::{Answer, ApiKey, ChatRequest, Endpoint, Param, RemoteError, RetryPolicy};
use serde_json::{Value, json};

// ---------------------------------------------------------------- test server

#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Send the body with chunked transfer encoding in pieces of this many bytes, flushing each
    /// (how streaming servers send SSE).
    chunk: Option<usize>,
}

impl Reply {
    fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: body.as_bytes().to_vec(),
            chunk: None,
        }
    }
    fn sse(body: &str, chunk: usize) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("Content-Type", "text/event-stream; charset=utf-8".into()),
                ("Cache-Control", "no-cache".into()),
            ],
            body: body.as_bytes().to_vec(),
            chunk: Some(chunk),
        }
    }
    fn with_header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.into()));
        self
    }
}

type Handler = dyn Fn(usize, &Captured) -> Reply + Send + Sync;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    /// Answers the n-th request (0-based, in arrival order) with `handler(n, request)`.
    fn start(handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (handler, seen) = (handler.clone(), seen2.clone());
                std::thread::spawn(move || serve(stream, &*handler, &seen));
            }
        });
        Self { base, seen }
    }

    fn requests(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Captured>>) {
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let captured = Captured {
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = {
        let mut s = seen.lock().unwrap();
        s.push(captured.clone());
        s.len() - 1
    };
    let reply = handler(n, &captured);
    let mut out = stream;
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nConnection: close\r\n",
        reply.status
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match reply.chunk {
        None => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&reply.body);
        }
        Some(size) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let _ = out.write_all(head.as_bytes());
            for (i, piece) in reply.body.chunks(size).enumerate() {
                let _ = out.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
                let _ = out.write_all(piece);
                let _ = out.write_all(b"\r\n");
                let _ = out.flush();
                // Pause now and then so the client really sees separate reads.
                if i % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = out.write_all(b"0\r\n\r\n");
        }
    }
    let _ = out.flush();
}

// ---------------------------------------------------------------- dialects

const ANSWER: &str = r#"{"label": "happy", "scores": {"happy": 0.7, "neutral": 0.2, "surprise": 0.1}, "rationale": "Raised cheeks and a broad smile."}"#;

/// Splits the answer into model-like tokens (the label value is one token).
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, ' ' | '"' | ',' | ':' | '{' | '}') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// OpenAI-style logprobs for `text`; the token "happy" gets alternatives.
fn logprobs_json(text: &str, llama: bool) -> Value {
    let content: Vec<Value> = tokens(text)
        .into_iter()
        .map(|t| {
            let top = if t == "happy\"" || t == "happy" {
                vec![("happy", -0.36), ("neutral", -1.61), ("surprise", -2.3)]
            } else {
                vec![]
            };
            let mut tok = json!({
                "token": t,
                "logprob": top.first().map(|x| x.1).unwrap_or(-0.01),
                "bytes": t.as_bytes(),
                "top_logprobs": top.iter().map(|(s, l)| {
                    let mut a = json!({"token": s, "logprob": l, "bytes": s.as_bytes()});
                    if llama { a["id"] = json!(9999); }
                    a
                }).collect::<Vec<_>>(),
            });
            if llama {
                tok["id"] = json!(1234);
            }
            tok
        })
        .collect();
    json!({ "content": content })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    Vllm,
    LlamaCpp,
    Ollama,
}

const ALL: [Dialect; 3] = [Dialect::Vllm, Dialect::LlamaCpp, Dialect::Ollama];

fn non_streamed(d: Dialect, text: &str, with_logprobs: bool) -> String {
    let lp = if with_logprobs {
        logprobs_json(text, d == Dialect::LlamaCpp)
    } else {
        Value::Null
    };
    let v = match d {
        Dialect::Vllm => json!({
            "id": "chatcmpl-5b1e0c6f7a9d4e0f8c3b2a1d0e9f8a7b",
            "object": "chat.completion",
            "created": 1764100000,
            "model": "Qwen/Qwen2.5-VL-7B-Instruct",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "reasoning_content": null, "content": text, "tool_calls": []},
                "logprobs": lp,
                "finish_reason": "stop",
                "stop_reason": null
            }],
            "usage": {"prompt_tokens": 1432, "total_tokens": 1470, "completion_tokens": 38, "prompt_tokens_details": null},
            "prompt_logprobs": null,
            "kv_transfer_params": null
        }),
        Dialect::LlamaCpp => {
            let mut choice = json!({"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": text}});
            if with_logprobs {
                choice["logprobs"] = lp;
            }
            json!({
                "choices": [choice],
                "created": 1764100000,
                "model": "gpt-3.5-turbo",
                "system_fingerprint": "b5600-6a2bc8bf",
                "object": "chat.completion",
                "usage": {"completion_tokens": 38, "prompt_tokens": 1432, "total_tokens": 1470},
                "id": "chatcmpl-Qm3d8ZyKx0pWn4cV7bT2sR1aE9uF6hJ",
                "timings": {"prompt_n": 1432, "prompt_ms": 812.3, "prompt_per_token_ms": 0.567, "prompt_per_second": 1762.9,
                            "predicted_n": 38, "predicted_ms": 410.2, "predicted_per_token_ms": 10.79, "predicted_per_second": 92.6}
            })
        }
        Dialect::Ollama => json!({
            "id": "chatcmpl-417",
            "object": "chat.completion",
            "created": 1764100000,
            "model": "llava:7b",
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1432, "completion_tokens": 38, "total_tokens": 1470}
        }),
    };
    v.to_string()
}

fn streamed(d: Dialect, text: &str, with_usage: bool) -> String {
    let toks = tokens(text);
    let mut out = String::new();
    let mut push = |v: Value| out.push_str(&format!("data: {v}\n\n"));
    match d {
        Dialect::Vllm => {
            let head = |choices: Value| json!({"id": "chatcmpl-5b1e0c6f", "object": "chat.completion.chunk", "created": 1764100000, "model": "Qwen/Qwen2.5-VL-7B-Instruct", "choices": choices});
            push(head(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
            ));
            for t in &toks {
                let lp = logprobs_json(t, false);
                push(head(
                    json!([{"index": 0, "delta": {"content": t}, "logprobs": lp, "finish_reason": null}]),
                ));
            }
            push(head(
                json!([{"index": 0, "delta": {"content": ""}, "logprobs": null, "finish_reason": "stop", "stop_reason": null}]),
            ));
            if with_usage {
                let mut u = head(json!([]));
                u["usage"] =
                    json!({"prompt_tokens": 1432, "total_tokens": 1470, "completion_tokens": 38});
                push(u);
            }
        }
        Dialect::LlamaCpp => {
            let head = |choices: Value| json!({"choices": choices, "created": 1764100000, "id": "chatcmpl-Qm3d8Zy", "model": "gpt-3.5-turbo", "system_fingerprint": "b5600-6a2bc8bf", "object": "chat.completion.chunk"});
            push(head(
                json!([{"finish_reason": null, "index": 0, "delta": {"role": "assistant", "content": null}}]),
            ));
            for t in &toks {
                push(head(
                    json!([{"finish_reason": null, "index": 0, "delta": {"content": t}, "logprobs": logprobs_json(t, true)}]),
                ));
            }
            let mut last = head(json!([{"finish_reason": "stop", "index": 0, "delta": {}}]));
            last["timings"] = json!({"prompt_n": 1432, "prompt_ms": 812.3, "predicted_n": 38, "predicted_ms": 410.2, "predicted_per_second": 92.6});
            push(last);
            if with_usage {
                let mut u = head(json!([]));
                u["usage"] =
                    json!({"completion_tokens": 38, "prompt_tokens": 1432, "total_tokens": 1470});
                u["timings"] = json!({"prompt_n": 1432, "predicted_n": 38});
                push(u);
            }
        }
        Dialect::Ollama => {
            let head = |choices: Value| json!({"id": "chatcmpl-417", "object": "chat.completion.chunk", "created": 1764100000, "model": "llava:7b", "system_fingerprint": "fp_ollama", "choices": choices});
            for t in &toks {
                push(head(
                    json!([{"index": 0, "delta": {"role": "assistant", "content": t}, "finish_reason": null}]),
                ));
            }
            push(head(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]),
            ));
            if with_usage {
                let mut u = head(json!([]));
                u["usage"] =
                    json!({"prompt_tokens": 1432, "completion_tokens": 38, "total_tokens": 1470});
                push(u);
            }
        }
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// A well-behaved server of dialect `d`: streams when asked, logprobs where the dialect has them.
fn dialect_server(d: Dialect) -> Server {
    Server::start(move |_, req| {
        let stream = req.body["stream"] == json!(true);
        let usage = req.body["stream_options"]["include_usage"] == json!(true);
        let lp = req.body["logprobs"] == json!(true) && d != Dialect::Ollama;
        if stream {
            Reply::sse(&streamed(d, ANSWER, usage), 7)
        } else {
            Reply::json(200, &non_streamed(d, ANSWER, lp))
        }
    })
}

// ---------------------------------------------------------------- helpers

fn image_request(model: &str, stream: bool) -> ChatRequest {
    let labels: Vec<String> = LabelSet::dfew().names().to_vec();
    let mut r = ChatRequest::new(
        model,
        build_messages(
            "What emotion?",
            &["data:image/jpeg;base64,/9j/4AAQ".into()],
            &labels,
        ),
    );
    r.stream = stream;
    r.top_logprobs = Some(3);
    r.schema_labels = Some(labels);
    r.temperature = Some(0.0);
    r.max_tokens = Some(200);
    r
}

fn client<'t>(t: &'t UreqTransport, server: &Server, key: Option<&str>) -> Client<'t> {
    Client {
        transport: t,
        endpoint: Endpoint::new(&server.base, key.map(ApiKey::new)).unwrap(),
        policy: RetryPolicy {
            overall_timeout: Duration::from_secs(20),
            ..RetryPolicy::default()
        },
    }
}

fn transport() -> UreqTransport {
    UreqTransport::new(Duration::from_secs(20))
}

fn fault(reply: impl Fn() -> Reply + Send + Sync + 'static) -> Result<(), RemoteError> {
    let server = Server::start(move |_, _| reply());
    let t = transport();
    client(&t, &server, None)
        .complete(image_request("llava:7b", false))
        .map(drop)
}

// ---------------------------------------------------------------- dialect tests

#[test]
fn every_dialect_streamed_and_not() {
    let labels = LabelSet::dfew();
    for d in ALL {
        for stream in [false, true] {
            let server = dialect_server(d);
            let t = transport();
            let x = client(&t, &server, None)
                .complete(image_request("m", stream))
                .unwrap_or_else(|e| panic!("{d:?} stream={stream}: {e}"));
            let c = &x.completion;
            assert_eq!(c.content, ANSWER, "{d:?} stream={stream}");
            assert_eq!(c.finish_reason.as_deref(), Some("stop"));
            let u = c.usage.as_ref().expect("usage");
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (Some(1432), Some(38))
            );
            assert!(x.dropped.is_empty());
            let a = emolens::remote::parse_answer(&c.content, &labels);
            assert!(matches!(a, Answer::Parsed { label, .. } if labels.name(label) == "happy"));
            // Logprobs where the dialect sends them: the label token's alternatives.
            let probs = emolens::remote::answer::label_probs(&c.content, &c.logprobs, &labels);
            if d == Dialect::Ollama {
                assert!(probs.is_none());
            } else {
                let p = probs.unwrap_or_else(|| panic!("{d:?} stream={stream}: no probs"));
                let h = labels.canonical("happy").unwrap();
                assert!((p[h] - 0.6992).abs() < 1e-3, "{p:?}");
            }
            // What went out.
            let sent = &server.requests()[0];
            assert_eq!(sent.path, "/v1/chat/completions");
            assert_eq!(sent.body["stream"], json!(stream));
            assert_eq!(sent.body["messages"][1]["content"][1]["type"], "image_url");
            assert!(sent.header("authorization").is_none());
        }
    }
}

#[test]
fn sse_split_at_every_byte() {
    for d in ALL {
        let server = Server::start(move |_, _| Reply::sse(&streamed(d, ANSWER, true), 1));
        let t = transport();
        let x = client(&t, &server, None)
            .complete(image_request("m", true))
            .unwrap();
        assert_eq!(x.completion.content, ANSWER, "{d:?}");
        assert_eq!(x.completion.usage.unwrap().total_tokens, Some(1470));
    }
}

#[test]
fn crlf_stream_with_comments() {
    let body = streamed(Dialect::Vllm, ANSWER, true).replace("\n", "\r\n");
    let body = format!(": ping\r\n\r\n{body}");
    let server = Server::start(move |_, _| Reply::sse(&body, 5));
    let t = transport();
    let x = client(&t, &server, None)
        .complete(image_request("m", true))
        .unwrap();
    assert_eq!(x.completion.content, ANSWER);
}

#[test]
fn error_in_the_middle_of_a_stream() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"{\\\"la\"}}]}\n\n\
                data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"InternalServerError\",\"code\":500}}\n\n";
    let server = Server::start(move |_, _| Reply::sse(body, 9));
    let t = transport();
    let e = client(&t, &server, None)
        .complete(image_request("m", true))
        .unwrap_err();
    assert_eq!(e, RemoteError::Stream("CUDA out of memory".into()));
}

// ---------------------------------------------------------------- faults

#[test]
fn rejected_response_format_is_dropped_once() {
    // vLLM's older error shape, naming the parameter.
    let server = Server::start(|_, req| {
        if req.body.get("response_format").is_some() {
            Reply::json(
                400,
                r#"{"object":"error","message":"1 validation error: response_format.json_schema is not supported by this model","type":"BadRequestError","param":null,"code":400}"#,
            )
        } else {
            Reply::json(200, &non_streamed(Dialect::Vllm, ANSWER, false))
        }
    });
    let t = transport();
    let x = client(&t, &server, None)
        .complete(image_request("m", false))
        .unwrap();
    assert_eq!(x.dropped, vec![Param::ResponseFormat]);
    assert_eq!(x.attempts, 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.get("response_format").is_none());
    // Everything else is still sent.
    assert_eq!(reqs[1].body["top_logprobs"], 3);
}

#[test]
fn several_rejected_parameters_are_dropped_in_turn() {
    let server = Server::start(|_, req| {
        let b = &req.body;
        if b.get("stream_options").is_some() {
            Reply::json(
                400,
                r#"{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error","param":"stream_options","code":null}}"#,
            )
        } else if b.get("logprobs").is_some() {
            Reply::json(400, r#"{"error":"logprobs is not supported"}"#)
        } else {
            Reply::sse(&streamed(Dialect::Ollama, ANSWER, false), 64)
        }
    });
    let t = transport();
    let x = client(&t, &server, None)
        .complete(image_request("m", true))
        .unwrap();
    assert_eq!(x.dropped, vec![Param::StreamOptions, Param::Logprobs]);
    assert_eq!(x.completion.content, ANSWER);
    assert_eq!(x.completion.usage, None);
}

#[test]
fn a_400_that_names_nothing_we_can_drop_fails() {
    let e = fault(|| {
        Reply::json(
            400,
            r#"{"error":{"message":"messages: field required","type":"invalid_request_error"}}"#,
        )
    })
    .unwrap_err();
    assert_eq!(
        e,
        RemoteError::BadRequest("messages: field required".into())
    );
}

#[test]
fn unauthorized_and_the_key_travels_only_in_the_header() {
    let server = Server::start(|_, req| {
        if req.header("authorization") == Some("Bearer sk-test-123") {
            Reply::json(
                401,
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            )
        } else {
            Reply::json(500, r#"{"error":"no key"}"#)
        }
    });
    let t = transport();
    let c = client(&t, &server, Some("sk-test-123"));
    let e = c.complete(image_request("m", false)).unwrap_err();
    assert!(matches!(&e, RemoteError::Unauthorized(m) if m == "Incorrect API key provided"));
    assert!(e.to_string().contains("--api-key-env"));
    let r = &server.requests()[0];
    assert!(!r.path.contains("sk-test"));
    assert!(!format!("{:?}", c.endpoint).contains("sk-test"));
}

#[test]
fn ollama_forbidden_origin() {
    let e = fault(|| Reply {
        status: 403,
        headers: vec![],
        body: vec![],
        chunk: None,
    })
    .unwrap_err();
    assert_eq!(e, RemoteError::OriginNotAllowed);
    assert!(e.to_string().contains("OLLAMA_ORIGINS"));
    // A 403 with a body is an ordinary refusal.
    let e = fault(|| {
        Reply::json(
            403,
            r#"{"error":{"message":"quota exceeded for this project"}}"#,
        )
    })
    .unwrap_err();
    assert_eq!(
        e,
        RemoteError::Forbidden("quota exceeded for this project".into())
    );
}

#[test]
fn model_not_found() {
    for body in [
        r#"{"error":{"message":"model \"llava:7b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
        r#"{"error":"model 'llava:7b' not found"}"#,
        r#"{"object":"error","message":"The model `llava:7b` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
    ] {
        let e = fault(move || Reply::json(404, body)).unwrap_err();
        assert!(
            matches!(&e, RemoteError::ModelNotFound { model, .. } if model == "llava:7b"),
            "{e:?}"
        );
    }
    let e = fault(|| Reply::json(404, "404 page not found")).unwrap_err();
    assert!(matches!(e, RemoteError::NotFound(_)));
}

#[test]
fn payload_too_large() {
    let e = fault(|| Reply {
        status: 413,
        headers: vec![("Content-Type", "text/html".into())],
        body: b"<html><body><h1>413 Request Entity Too Large</h1></body></html>".to_vec(),
        chunk: None,
    })
    .unwrap_err();
    assert!(matches!(e, RemoteError::PayloadTooLarge(_)));
    assert!(e.to_string().contains("fewer or smaller images"));
}

#[test]
fn rate_limited_then_success_after_retry_after() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::json(
                429,
                r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#,
            )
            .with_header("Retry-After", "1")
        } else {
            Reply::json(200, &non_streamed(Dialect::Vllm, ANSWER, false))
        }
    });
    let t = transport();
    let start = Instant::now();
    let x = client(&t, &server, None)
        .complete(image_request("m", false))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(x.attempts, 2);
    assert_eq!(x.completion.content, ANSWER);
}

#[test]
fn retries_are_bounded() {
    let server = Server::start(|_, _| {
        Reply::json(503, r#"{"error":"server busy"}"#).with_header("Retry-After", "0")
    });
    let t = transport();
    let e = client(&t, &server, None)
        .complete(image_request("m", false))
        .unwrap_err();
    assert!(matches!(e, RemoteError::Unavailable { .. }), "{e:?}");
    assert_eq!(server.requests().len(), 4, "one try and three retries");
}

#[test]
fn unavailable_with_http_date_then_success() {
    let server = Server::start(|n, _| {
        if n == 0 {
            // A date in the past means "now".
            Reply::json(503, "").with_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
        } else {
            Reply::json(200, &non_streamed(Dialect::LlamaCpp, ANSWER, false))
        }
    });
    let t = transport();
    let x = client(&t, &server, None)
        .complete(image_request("m", false))
        .unwrap();
    assert_eq!(x.attempts, 2);
}

#[test]
fn server_error() {
    let e = fault(|| {
        Reply::json(
            500,
            r#"{"error":{"code":500,"message":"failed to decode image","type":"server_error"}}"#,
        )
    })
    .unwrap_err();
    assert_eq!(
        e,
        RemoteError::Server {
            status: 500,
            message: "failed to decode image".into()
        }
    );
}

#[test]
fn image_input_not_supported() {
    for (status, body) in [
        (
            500,
            r#"{"error":{"code":500,"message":"image input is not supported - hint: if this is unexpected, you may need to provide the mmproj","type":"server_error"}}"#,
        ),
        (
            400,
            r#"{"object":"error","message":"Model Qwen/Qwen2.5-7B-Instruct does not support image input","type":"BadRequestError","param":null,"code":400}"#,
        ),
    ] {
        let e = fault(move || Reply::json(status, body)).unwrap_err();
        assert!(matches!(e, RemoteError::ImageUnsupported(_)), "{e:?}");
        assert!(e.to_string().contains("--mode summaries"));
    }
}

#[test]
fn garbage_answer_is_unparsed() {
    let server = Server::start(|_, _| {
        Reply::json(
            200,
            &non_streamed(
                Dialect::Ollama,
                "I'm sorry, I can't determine emotions from images.",
                false,
            ),
        )
    });
    let t = transport();
    let labels = LabelSet::dfew();
    let opts = options(1);
    let r = ask(&client(&t, &server, None), &labels, &opts, &|o| {
        build_messages("x", &[], o)
    })
    .unwrap();
    assert_eq!(r.label, None);
    assert_eq!(r.scores, None);
    assert_eq!(
        r.runs[0].answer,
        Answer::Unparsed {
            raw: "I'm sorry, I can't determine emotions from images.".into()
        }
    );
}

fn options(k: usize) -> AskOptions {
    AskOptions {
        model: "m".into(),
        stream: false,
        top_logprobs: None,
        schema: true,
        temperature: Some(0.0),
        max_tokens: Some(100),
        permutations: k,
        seed: None,
        max_in_flight: 2,
    }
}

#[test]
fn permutations_average_per_label() {
    // A position-biased model: it answers whichever label it was shown first.
    let server = Server::start(|_, req| {
        let first =
            req.body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"][0]
                .as_str()
                .unwrap()
                .to_string();
        let text =
            json!({"label": first, "scores": {first.clone(): 1.0}, "rationale": "r"}).to_string();
        Reply::json(200, &non_streamed(Dialect::Vllm, &text, false))
    });
    let t = transport();
    let labels = LabelSet::custom(&["happy", "sad", "neutral"], None).unwrap();
    let r = ask(&client(&t, &server, None), &labels, &options(3), &|o| {
        build_messages("x", &[], o)
    })
    .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let mut firsts: Vec<String> = r.runs.iter().map(|r| r.order[0].clone()).collect();
    firsts.sort();
    assert_eq!(firsts, ["happy", "neutral", "sad"]);
    // The bias averages out to a uniform score.
    for (_, s) in r.scores.unwrap() {
        assert!((s - 1.0 / 3.0).abs() < 1e-9);
    }
    assert_eq!(r.usage.unwrap().completion_tokens, Some(3 * 38));
}

// ---------------------------------------------------------------- the CLI

fn emolens(args: &[&str], envs: &[(&str, &str)]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emolens"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn tiny_jpeg() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("emolens-remote-{}.jpg", std::process::id()));
    std::fs::write(&p, [0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F']).unwrap();
    p
}

#[test]
fn cli_ask_in_every_dialect() {
    let img = tiny_jpeg();
    for d in ALL {
        for stream in [false, true] {
            let server = dialect_server(d);
            let mut args = vec![
                "ask",
                "--endpoint",
                &server.base,
                "--model",
                "m",
                "--image",
                img.to_str().unwrap(),
                "--labels",
                "dfew",
            ];
            if stream {
                args.push("--stream");
            }
            let (code, out, err) = emolens(&args, &[]);
            assert_eq!(code, 0, "{d:?} stream={stream}: {err}");
            assert_eq!(out["label"], "happy", "{d:?}: {out}");
            assert!((out["scores"]["happy"].as_f64().unwrap() - 0.7).abs() < 1e-9);
            assert_eq!(out["rationale"], "Raised cheeks and a broad smile.");
            assert_eq!(out["usage"]["prompt_tokens"], 1432);
            assert_eq!(out["dropped_parameters"], json!([]));
            assert_eq!(out["raw"], ANSWER);
            if d != Dialect::Ollama {
                assert!(out["probabilities"]["happy"].as_f64().unwrap() > 0.6);
            }
            let sent = &server.requests()[0].body;
            assert!(
                sent["messages"][1]["content"][1]["image_url"]["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("data:image/jpeg;base64,/9j/")
            );
        }
    }
}

#[test]
fn cli_reports_dropped_parameters_and_errors() {
    let server = Server::start(|_, req| {
        if req.body.get("response_format").is_some() {
            Reply::json(
                400,
                r#"{"error":"json: unknown field \"response_format\""}"#,
            )
        } else {
            Reply::json(200, &non_streamed(Dialect::Ollama, ANSWER, false))
        }
    });
    let (code, out, err) = emolens(
        &[
            "ask",
            "--endpoint",
            &server.base,
            "--model",
            "m",
            "--permutations",
            "2",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["dropped_parameters"], json!(["response_format"]));
    assert_eq!(out["label"], "happy");

    let server = Server::start(|_, _| Reply::json(401, r#"{"error":"unauthorized"}"#));
    let (code, _, err) = emolens(
        &[
            "ask",
            "--endpoint",
            &server.base,
            "--model",
            "m",
            "--api-key-env",
            "EMOLENS_TEST_KEY",
        ],
        &[("EMOLENS_TEST_KEY", "sk-very-secret")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("sk-very-secret"));
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer sk-very-secret")
    );
}

#[test]
fn cli_dry_run_sends_nothing() {
    let server = Server::start(|_, _| Reply::json(500, "{}"));
    let img = tiny_jpeg();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emolens"))
        .args([
            "ask",
            "--endpoint",
            &server.base,
            "--model",
            "qwen",
            "--image",
            img.to_str().unwrap(),
            "--labels",
            "a,b,c",
            "--stream",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["model"], "qwen");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"],
        json!(["a", "b", "c"])
    );
    assert!(
        body["messages"][1]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.requests().is_empty());
}
