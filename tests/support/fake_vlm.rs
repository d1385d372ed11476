//! A fake OpenAI-compatible VLM server on 127.0.0.1 that answers in the exact byte shapes of
//! vLLM, llama.cpp's server and Ollama (streamed and not) and with the faults they produce.
//!
//! One source of truth for two users: the native tests (`tests/remote.rs`, which include this
//! file) and the browser test's server (`examples/fake_vlm_server.rs`, which adds CORS and picks
//! a behaviour from the URL path).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
// ---------------------------------------------------------------- test server

#[derive(Debug, Clone, serde::Serialize)]
pub struct Captured {
    /// `POST`, `OPTIONS`, ...; `CLOSED` marks a client that went away during a stalled reply.
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send the body with chunked transfer encoding in pieces of this many bytes, flushing each
    /// (how streaming servers send SSE).
    pub chunk: Option<usize>,
    /// Sleep after every chunk (default: 1 ms after every 16th).
    pub pause: Option<Duration>,
    /// After this many body bytes, stop sending and hold the connection until the client
    /// closes it (a model that hangs mid-answer).
    pub stall_after: Option<usize>,
    /// After the body, send these bytes again and again until the client goes away (a server
    /// whose answer never ends). Chunked.
    pub endless: Option<Vec<u8>>,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: body.as_bytes().to_vec(),
            chunk: None,
            pause: None,
            stall_after: None,
            endless: None,
        }
    }
    pub fn sse(body: &str, chunk: usize) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("Content-Type", "text/event-stream; charset=utf-8".into()),
                ("Cache-Control", "no-cache".into()),
            ],
            body: body.as_bytes().to_vec(),
            chunk: Some(chunk),
            pause: None,
            stall_after: None,
            endless: None,
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: vec![],
            chunk: None,
            pause: None,
            stall_after: None,
            endless: None,
        }
    }
    pub fn with_header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.into()));
        self
    }
}

type Handler = dyn Fn(usize, &Captured) -> Reply + Send + Sync;

pub struct Server {
    pub base: String,
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    /// Answers the n-th request (0-based, in arrival order) with `handler(n, request)`.
    pub fn start(handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", handler)
    }

    pub fn start_on(
        addr: &str,
        handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_logging(addr, Arc::new(Mutex::new(Vec::new())), handler)
    }

    /// Like `start_on`, logging every request (and client that went away) into `seen`.
    pub fn start_logging(
        addr: &str,
        seen: Arc<Mutex<Vec<Captured>>>,
        handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}/v1");
        let handler: Arc<Handler> = Arc::new(handler);
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (handler, seen) = (handler.clone(), seen2.clone());
                std::thread::spawn(move || serve(stream, &*handler, &seen));
            }
        });
        Self { base, addr, seen }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Serves requests on one connection until the client closes it or a reply ends it.
fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Captured>>) {
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                return;
            };
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let captured = Captured {
            method,
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
        // Preflights keep the connection (browsers reuse it); everything else closes it, so a
        // streamed body ends when the connection does.
        let keep_alive = captured.method == "OPTIONS";
        let out = stream.try_clone().unwrap();
        if !write_reply(out, &reply, keep_alive) {
            let mut gone = captured.clone();
            gone.method = "CLOSED".into();
            seen.lock().unwrap().push(gone);
        }
        if !keep_alive {
            return;
        }
    }
}

/// Writes `reply`; false when it stalled and the client then closed the connection.
fn write_reply(mut out: TcpStream, reply: &Reply, keep_alive: bool) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: {}\r\n",
        reply.status,
        reason(reply.status),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = match reply.stall_after {
        Some(n) => &reply.body[..n.min(reply.body.len())],
        None => &reply.body[..],
    };
    match reply.chunk {
        None if reply.endless.is_none() => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body);
        }
        size => {
            let size = size.unwrap_or(8192);
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let _ = out.write_all(head.as_bytes());
            for (i, piece) in body.chunks(size.max(1)).enumerate() {
                let _ = out.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
                let _ = out.write_all(piece);
                let _ = out.write_all(b"\r\n");
                let _ = out.flush();
                // Pause so the client really sees separate reads.
                match reply.pause {
                    Some(d) => std::thread::sleep(d),
                    None if i % 16 == 0 => std::thread::sleep(Duration::from_millis(1)),
                    None => {}
                }
            }
            if let Some(filler) = &reply.endless {
                // Until the client closes the connection (a write then fails), at most 60 s.
                let until = std::time::Instant::now() + Duration::from_secs(60);
                let mut chunk = format!("{:x}\r\n", filler.len()).into_bytes();
                chunk.extend_from_slice(filler);
                chunk.extend_from_slice(b"\r\n");
                while std::time::Instant::now() < until && out.write_all(&chunk).is_ok() {}
                return false;
            }
            if reply.stall_after.is_none() {
                let _ = out.write_all(b"0\r\n\r\n");
            }
        }
    }
    let _ = out.flush();
    if reply.stall_after.is_some() {
        // Hold the answer back until the client gives up (read returns 0 or fails), at most 60 s.
        out.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let mut buf = [0u8; 64];
        return !matches!(out.read(&mut buf), Ok(0) | Err(_));
    }
    true
}

// ---------------------------------------------------------------- dialects

pub const ANSWER: &str = r#"{"label": "happy", "scores": {"happy": 0.7, "neutral": 0.2, "surprise": 0.1}, "rationale": "Raised cheeks and a broad smile."}"#;

/// Splits the answer into model-like tokens (the label value is one token).
pub fn tokens(text: &str) -> Vec<String> {
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
pub fn logprobs_json(text: &str, llama: bool) -> Value {
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
pub enum Dialect {
    Vllm,
    LlamaCpp,
    Ollama,
}

pub const ALL: [Dialect; 3] = [Dialect::Vllm, Dialect::LlamaCpp, Dialect::Ollama];

pub fn non_streamed(d: Dialect, text: &str, with_logprobs: bool) -> String {
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

pub fn streamed(d: Dialect, text: &str, with_usage: bool) -> String {
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

/// How a well-behaved server of dialect `d` answers `req`: streams when asked, logprobs where
/// the dialect has them, the final usage chunk when asked for.
pub fn dialect_reply(d: Dialect, req: &Captured) -> Reply {
    let stream = req.body["stream"] == json!(true);
    let usage = req.body["stream_options"]["include_usage"] == json!(true);
    let lp = req.body["logprobs"] == json!(true) && d != Dialect::Ollama;
    if stream {
        Reply::sse(&streamed(d, ANSWER, usage), 7)
    } else {
        Reply::json(200, &non_streamed(d, ANSWER, lp))
    }
}

pub fn dialect_server(d: Dialect) -> Server {
    Server::start(move |_, req| dialect_reply(d, req))
}

// ---------------------------------------------------------------- faults

/// The faults, each in the shape a real server sends it.
pub mod faults {
    use super::Reply;

    /// An answer behind characters whose lowercase has another byte length (Turkish dotted
    /// capital I, the Kelvin sign): the label must still be read.
    pub const UNICODE_ANSWERS: [&str; 2] = [
        "İİİİİİİİİİİ{\"label\": \"happy\"}",
        "\u{212a}\u{212a}\u{212a} {\"label\": \"happy\"}",
    ];

    /// `{` repeated: a parser that rescans from every brace takes minutes.
    pub fn braces(n: usize) -> String {
        "{".repeat(n)
    }

    /// A 200 whose body never ends: JSON that keeps going, or a stream of content chunks, or
    /// (`one_line`) a stream whose first line never ends.
    pub fn endless(stream: bool, one_line: bool) -> Reply {
        let (mut r, filler) = match (stream, one_line) {
            (false, _) => (
                Reply::json(200, "{\"choices\": [{\"message\": {\"content\": \""),
                "aaaaaaaa".repeat(512),
            ),
            (true, false) => (
                Reply::sse("", 4096),
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n".repeat(64),
            ),
            (true, true) => (
                Reply::sse("data: {\"choices\":[{\"delta\":{\"content\":\"", 4096),
                "a".repeat(4096),
            ),
        };
        r.endless = Some(filler.into_bytes());
        r
    }

    /// The whole streamed answer and `[DONE]`, then the connection stays open.
    pub fn done_then_open(body: &str) -> Reply {
        let mut r = Reply::sse(body, 64);
        r.stall_after = Some(body.len());
        r
    }

    /// A redirect that a client following it would answer with the body and key elsewhere.
    pub fn redirect(status: u16, location: &str) -> Reply {
        let mut r = Reply::empty(status);
        r.headers.push(("Location", location.to_string()));
        r
    }

    /// A 400 that names no parameter the client could drop.
    pub fn bad_request() -> Reply {
        Reply::json(
            400,
            r#"{"error":{"message":"messages: field required","type":"invalid_request_error"}}"#,
        )
    }

    /// Ollama (Go's mux) for a path it does not serve, e.g. an endpoint without /v1.
    pub fn wrong_path() -> Reply {
        let mut r = Reply::json(404, "404 page not found");
        r.headers = vec![("Content-Type", "text/plain".into())];
        r
    }

    /// OpenAI's (and vLLM's with --api-key) answer to a wrong key.
    pub fn unauthorized() -> Reply {
        Reply::json(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        )
    }

    /// Ollama refusing a request from an origin outside OLLAMA_ORIGINS: 403, empty body.
    pub fn ollama_origin_refused() -> Reply {
        Reply::empty(403)
    }

    pub fn rate_limited(retry_after: &str) -> Reply {
        Reply::json(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#,
        )
        .with_header("Retry-After", retry_after)
    }

    pub fn unavailable(retry_after: &str) -> Reply {
        Reply::json(503, r#"{"error":"server busy"}"#).with_header("Retry-After", retry_after)
    }

    /// llama.cpp's server failing on an image.
    pub fn server_error() -> Reply {
        Reply::json(
            500,
            r#"{"error":{"code":500,"message":"failed to decode image","type":"server_error"}}"#,
        )
    }

    /// nginx in front of a server, refusing a large body.
    pub fn too_large() -> Reply {
        let mut r = Reply::json(
            413,
            "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n",
        );
        r.headers = vec![("Content-Type", "text/html".into())];
        r
    }

    /// llama.cpp's server started without a multimodal projector.
    pub fn image_unsupported_llamacpp() -> Reply {
        Reply::json(
            500,
            r#"{"error":{"code":500,"message":"image input is not supported - hint: if this is unexpected, you may need to provide the mmproj","type":"server_error"}}"#,
        )
    }

    /// vLLM serving a text-only model.
    pub fn image_unsupported_vllm() -> Reply {
        Reply::json(
            400,
            r#"{"object":"error","message":"Model Qwen/Qwen2.5-7B-Instruct does not support image input","type":"BadRequestError","param":null,"code":400}"#,
        )
    }

    /// vLLM's older error shape, naming the parameter it cannot honour.
    pub fn response_format_rejected() -> Reply {
        Reply::json(
            400,
            r#"{"object":"error","message":"1 validation error: response_format.json_schema is not supported by this model","type":"BadRequestError","param":null,"code":400}"#,
        )
    }

    /// Ollama asked for a model it has not pulled.
    pub fn model_not_found_ollama() -> Reply {
        Reply::json(
            404,
            r#"{"error":{"message":"model \"llava:7b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
        )
    }
}
