//! The fake VLM server of the native tests (`tests/support/fake_vlm.rs`), for the browser test:
//! same dialect byte shapes and faults, plus CORS, on 127.0.0.1.
//!
//!   cargo run --release --example fake_vlm_server     # prints "listening http://127.0.0.1:PORT"
//!
//! A request's behaviour comes from its path, `/<scenario>/<case>/v1/chat/completions`: the
//! scenario (below) picks the answer, the case id keeps each test's request count apart (for
//! "fail once, then answer"). `GET /seen` lists every request received (method, path, headers,
//! body; `CLOSED` when a client went away during a stalled answer); `GET /stats` the most
//! requests in flight at once per case. It exits when its stdin closes.
//!
//! Every answer allows the requesting origin (CORS) except in `ollama-refuses-origin`, which
//! answers like Ollama for an origin outside OLLAMA_ORIGINS (403, empty, no CORS headers), and
//! `nocors`, a server with no CORS support at all. `Retry-After` is exposed to scripts only in
//! `ratelimit`; `ratelimit-hidden` sends it without `Access-Control-Expose-Headers`.

#[path = "../tests/support/fake_vlm.rs"]
mod fake_vlm;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_vlm::{Captured, Dialect, Reply, Server, dialect_reply, faults, non_streamed, streamed};
use serde_json::json;

#[derive(Default)]
struct State {
    /// Requests per `scenario/case` so far.
    count: HashMap<String, usize>,
    in_flight: HashMap<String, usize>,
    peak: HashMap<String, usize>,
}

fn dialect(name: &str) -> Option<Dialect> {
    match name {
        "vllm" => Some(Dialect::Vllm),
        "llamacpp" => Some(Dialect::LlamaCpp),
        "ollama" => Some(Dialect::Ollama),
        _ => None,
    }
}

fn has_images(req: &Captured) -> bool {
    req.body["messages"].as_array().is_some_and(|ms| {
        ms.iter().any(|m| {
            m["content"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["type"] == "image_url"))
        })
    })
}

/// The answer of `scenario` to the n-th POST of its case.
fn answer(scenario: &str, n: usize, req: &Captured) -> Reply {
    let ok = |d| dialect_reply(d, req);
    if let Some(d) = dialect(scenario) {
        return ok(d);
    }
    // `bytes-<dialect>`: the stream one byte per chunk; `odd-<dialect>`: 13-byte chunks, 1 ms apart.
    if let Some((how, d)) = scenario.split_once('-')
        && let Some(d) = dialect(d)
    {
        let mut r = ok(d);
        match how {
            "bytes" => r.chunk = Some(1),
            "odd" => {
                r.chunk = Some(13);
                r.pause = Some(Duration::from_millis(1));
            }
            _ => return Reply::json(404, r#"{"error":"unknown scenario"}"#),
        }
        return r;
    }
    match scenario {
        "nocors" => ok(Dialect::Vllm),
        "unauthorized" if req.header("authorization").is_some() => faults::unauthorized(),
        "unauthorized" => Reply::json(500, r#"{"error":"the test expected an API key"}"#),
        "ollama-origin" => faults::ollama_origin_refused(),
        "ratelimit" if n == 0 => {
            faults::rate_limited("1").with_header("Access-Control-Expose-Headers", "Retry-After")
        }
        "ratelimit-hidden" if n == 0 => faults::rate_limited("30"),
        "ratelimit" | "ratelimit-hidden" => ok(Dialect::Vllm),
        "unavailable" => {
            faults::unavailable("0").with_header("Access-Control-Expose-Headers", "Retry-After")
        }
        "server-error" => faults::server_error(),
        "too-large" => faults::too_large(),
        "no-images" if has_images(req) => faults::image_unsupported_llamacpp(),
        "no-images" => ok(Dialect::LlamaCpp),
        "reject-format" if req.body.get("response_format").is_some() => {
            faults::response_format_rejected()
        }
        "reject-format" => ok(Dialect::Vllm),
        "model-missing" => faults::model_not_found_ollama(),
        "wrong-path" => faults::wrong_path(),
        "bad-request" => faults::bad_request(),
        "stall" => {
            // A third of the answer, then nothing until the client gives up.
            let body = streamed(Dialect::Vllm, fake_vlm::ANSWER, true);
            let mut r = Reply::sse(&body, 7);
            r.stall_after = Some(body.len() / 3);
            r
        }
        // Hostile servers (issue 14).
        "unicode" | "kelvin" => {
            let text = fake_vlm::faults::UNICODE_ANSWERS[usize::from(scenario == "kelvin")];
            if req.body["stream"] == true {
                Reply::sse(&streamed(Dialect::Vllm, text, true), 16)
            } else {
                Reply::json(200, &non_streamed(Dialect::Vllm, text, false))
            }
        }
        "endless" => fake_vlm::faults::endless(false, false),
        "endless-stream" => fake_vlm::faults::endless(true, false),
        "endless-line" => fake_vlm::faults::endless(true, true),
        "done-open" => {
            fake_vlm::faults::done_then_open(&streamed(Dialect::Vllm, fake_vlm::ANSWER, true))
        }
        "redirect" => {
            fake_vlm::faults::redirect(307, "/vllm/redirected/v1/chat/completions?sig=s3cret")
        }
        "garbage" => Reply::json(
            200,
            &non_streamed(
                Dialect::Ollama,
                "I'm sorry, I can't determine emotions from images.",
                false,
            ),
        ),
        "biased" => {
            // A position-biased model: it answers whichever label the schema lists first.
            let first = req.body["response_format"]["json_schema"]["schema"]["properties"]["label"]
                ["enum"][0]
                .as_str()
                .unwrap_or("none")
                .to_string();
            let text = json!({"label": first, "scores": {first.clone(): 1.0}, "rationale": "r"});
            Reply::json(200, &non_streamed(Dialect::Vllm, &text.to_string(), false))
        }
        _ => Reply::json(404, r#"{"error":"unknown scenario"}"#),
    }
}

fn with_cors(mut r: Reply, req: &Captured) -> Reply {
    let origin = req.header("origin").unwrap_or("*").to_string();
    r.headers.push(("Access-Control-Allow-Origin", origin));
    r.headers.push(("Vary", "Origin".into()));
    r
}

fn main() {
    let seen: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let state: Arc<Mutex<State>> = Arc::default();
    let log = seen.clone();
    let server = Server::start_logging("127.0.0.1:0", seen, move |_, req| {
        match req.path.as_str() {
            "/seen" => {
                let all: Vec<Captured> = log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|c| !c.path.starts_with("/seen") && !c.path.starts_with("/stats"))
                    .cloned()
                    .collect();
                return Reply::json(200, &serde_json::to_string(&all).unwrap());
            }
            "/stats" => {
                let peak = state.lock().unwrap().peak.clone();
                return Reply::json(200, &json!({ "peak": peak }).to_string());
            }
            _ => {}
        }
        let mut parts = req.path.trim_start_matches('/').splitn(3, '/');
        let scenario = parts.next().unwrap_or("").to_string();
        let case = format!("{scenario}/{}", parts.next().unwrap_or(""));
        if scenario == "ollama-refuses-origin" {
            return faults::ollama_origin_refused();
        }
        if req.method == "OPTIONS" {
            if scenario == "nocors" {
                return Reply::empty(405);
            }
            let asked = req
                .header("access-control-request-headers")
                .unwrap_or("")
                .to_string();
            return with_cors(Reply::empty(204), req)
                .with_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                .with_header("Access-Control-Allow-Headers", &asked);
        }
        let n = {
            let mut s = state.lock().unwrap();
            let n = *s.count.entry(case.clone()).or_default();
            s.count.insert(case.clone(), n + 1);
            let live = s.in_flight.entry(case.clone()).or_default();
            *live += 1;
            let live = *live;
            let peak = s.peak.entry(case.clone()).or_default();
            *peak = (*peak).max(live);
            n
        };
        if scenario == "biased" {
            // Long enough for concurrent requests to overlap.
            std::thread::sleep(Duration::from_millis(300));
        }
        let reply = answer(&scenario, n, req);
        *state.lock().unwrap().in_flight.get_mut(&case).unwrap() -= 1;
        if scenario == "nocors" {
            reply
        } else {
            with_cors(reply, req)
        }
    });
    println!("listening http://{}", server.addr);
    // Run until the test that started us closes our stdin (or goes away).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
