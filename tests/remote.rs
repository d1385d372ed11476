//! The remote VLM client against a local HTTP server that answers in the byte shapes of vLLM,
//! llama.cpp's server and Ollama's OpenAI-compatible endpoint, and with each fault they produce.
//! Everything stays on 127.0.0.1.

#[path = "support/ask_messages.rs"]
mod ask_messages;
#[path = "support/fake_vlm.rs"]
mod fake_vlm;

use std::time::{Duration, Instant};

use ask_messages::ask;
use emolens::labels::LabelSet;
use emolens::remote::AskOptions;
use emolens::remote::client::Client;
use emolens::remote::native::UreqTransport;
use emolens::remote::request::build_messages;
use emolens::remote::{
    Answer, ApiKey, ChatRequest, Endpoint, Hint, Param, RemoteError, ResponseLimits, RetryPolicy,
};
use fake_vlm::{
    ALL, ANSWER, Dialect, Reply, Server, dialect_server, faults, non_streamed, streamed,
};
use serde_json::{Value, json};

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
        limits: ResponseLimits::default(),
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
            faults::response_format_rejected()
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
    let e = fault(faults::bad_request).unwrap_err();
    assert_eq!(
        e,
        RemoteError::BadRequest("messages: field required".into())
    );
}

#[test]
fn unauthorized_and_the_key_travels_only_in_the_header() {
    let server = Server::start(|_, req| {
        if req.header("authorization") == Some("Bearer sk-test-123") {
            faults::unauthorized()
        } else {
            Reply::json(500, r#"{"error":"no key"}"#)
        }
    });
    let t = transport();
    let c = client(&t, &server, Some("sk-test-123"));
    let e = c.complete(image_request("m", false)).unwrap_err();
    assert!(matches!(&e, RemoteError::Unauthorized(m) if m == "Incorrect API key provided"));
    assert_eq!(e.hint(), Some(Hint::ApiKey));
    assert_eq!((e.kind(), e.status()), ("unauthorized", Some(401)));
    let r = &server.requests()[0];
    assert!(!r.path.contains("sk-test"));
    assert!(!format!("{:?}", c.endpoint).contains("sk-test"));
}

#[test]
fn ollama_forbidden_origin() {
    let e = fault(faults::ollama_origin_refused).unwrap_err();
    assert_eq!(e, RemoteError::OriginNotAllowed);
    assert_eq!(e.hint(), Some(Hint::Origin));
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
    let e = fault(faults::model_not_found_ollama).unwrap_err();
    assert!(matches!(&e, RemoteError::ModelNotFound { model, .. } if model == "llava:7b"));
    for body in [
        r#"{"error":"model 'llava:7b' not found"}"#,
        r#"{"object":"error","message":"The model `llava:7b` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
    ] {
        let e = fault(move || Reply::json(404, body)).unwrap_err();
        assert!(
            matches!(&e, RemoteError::ModelNotFound { model, .. } if model == "llava:7b"),
            "{e:?}"
        );
    }
    let e = fault(faults::wrong_path).unwrap_err();
    assert!(matches!(e, RemoteError::NotFound(_)));
}

#[test]
fn payload_too_large() {
    let e = fault(faults::too_large).unwrap_err();
    assert!(matches!(e, RemoteError::PayloadTooLarge(_)));
    assert!(e.to_string().contains("fewer or smaller images"));
    assert!(!e.to_string().contains("<html>"), "{e}");
}

#[test]
fn rate_limited_then_success_after_retry_after() {
    let server = Server::start(|n, _| {
        if n == 0 {
            faults::rate_limited("1")
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
    let server = Server::start(|_, _| faults::unavailable("0"));
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
    let e = fault(faults::server_error).unwrap_err();
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
    for reply in [
        faults::image_unsupported_llamacpp,
        faults::image_unsupported_vllm,
    ] {
        let e = fault(reply).unwrap_err();
        assert!(matches!(e, RemoteError::ImageUnsupported(_)), "{e:?}");
        assert_eq!(e.hint(), Some(Hint::TextOnly));
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

fn options(k: usize) -> (AskOptions, usize) {
    (
        AskOptions {
            model: "m".into(),
            stream: false,
            top_logprobs: None,
            schema: true,
            temperature: Some(0.0),
            max_tokens: Some(100),
        },
        k,
    )
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
            // Per-request details: one run, first attempt, as the server ended it.
            let run = &out["runs"][0];
            assert_eq!(run["kind"], "parsed", "{out}");
            assert_eq!(run["attempts"], 1);
            assert_eq!(run["finish_reason"], "stop");
            assert_eq!(run["order"], json!(LabelSet::dfew().names()));
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
    assert_eq!(out["runs"][0]["attempts"], 2);
    assert_eq!(
        out["runs"][0]["dropped_parameters"],
        json!(["response_format"])
    );
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

/// `emolens ask` about `single_face.mp4` in text-only mode, plus `extra` arguments.
fn ask_about_clip(server: &Server, extra: &[&str]) -> (i32, Value, String) {
    let clip = format!(
        "{}/tests/data/video/single_face.mp4",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = [
        "ask",
        &clip,
        "--endpoint",
        &server.base,
        "--model",
        "m",
        "--mode",
        "summaries",
    ];
    emolens(&[&args[..], extra].concat(), &[])
}

#[test]
fn cli_ask_about_a_video_with_stage_one() {
    let clip = format!(
        "{}/tests/data/video/single_face.mp4",
        env!("CARGO_MANIFEST_DIR")
    );
    let server = dialect_server(Dialect::Vllm);
    let args = [
        "ask",
        &clip,
        "--endpoint",
        &server.base,
        "--model",
        "m",
        "--stage1",
    ];
    let (code, out, err) = emolens(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["label"], "happy", "{out}");
    // One request per stretch between keyframes, then the final question carrying their
    // descriptions next to the measurements and the keyframes.
    let stage1 = out["stage1"].as_array().expect("stage-1 descriptions");
    assert!(!stage1.is_empty(), "{out}");
    let sent = server.requests();
    assert_eq!(sent.len(), stage1.len() + 1);
    for r in &sent[..stage1.len()] {
        assert!(
            r.body.get("response_format").is_none(),
            "stage 1 asks for free text"
        );
        assert!(
            r.body.to_string().contains("image_url"),
            "stage 1 shows one frame"
        );
    }
    let last = sent.last().unwrap().body.to_string();
    assert!(last.contains("Described:"), "{last}");
    assert!(
        last.contains("lip-corner pull"),
        "the measured summary is sent: {last}"
    );
    assert!(last.contains("image_url"));

    // Text only: no pixel leaves, and stage 1 (which needs frames) is refused.
    let server = dialect_server(Dialect::Ollama);
    let (code, out, err) = ask_about_clip(&server, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["label"], "happy");
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].body.to_string().contains("image_url"));
    let (code, _, err) = ask_about_clip(&server, &["--stage1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--stage1"), "{err}");
}

#[test]
fn cli_ask_corrects_the_decision_with_priors_or_a_content_free_answer() {
    // The answer's scores: happy 0.7, neutral 0.2, surprise 0.1 (Ollama: no logprobs, so the
    // scores are what gets corrected). Happy is common, neutral rare: neutral wins after the
    // logit adjustment (ln .2 − ln .01 > ln .7 − ln .9).
    let server = dialect_server(Dialect::Ollama);
    let priors = "0.9,0.02,0.01,0.02,0.02,0.02,0.01";
    let (code, out, err) = ask_about_clip(&server, &["--priors", priors]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["label"], "happy");
    assert_eq!(out["corrected"]["method"], "priors");
    assert_eq!(out["corrected"]["label"], "neutral", "{out}");

    // Contextual calibration: a second request about the content-free clip (no measurements).
    let server = dialect_server(Dialect::Ollama);
    let (code, out, err) = ask_about_clip(&server, &["--content-free"]);
    assert_eq!(code, 0, "{err}");
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    // Both go out together; one carries the measurements, the content-free one none.
    let measured = sent
        .iter()
        .filter(|r| r.body.to_string().contains("lip-corner pull"))
        .count();
    assert_eq!(
        measured, 1,
        "measurements emptied in the content-free question"
    );
    assert_eq!(out["corrected"]["method"], "content_free");
    assert!(
        out["corrected"]["content_free_scores"]["happy"].is_f64(),
        "{out}"
    );

    // Priors that do not fit the label set are refused before anything is sent.
    let (code, _, err) = ask_about_clip(&server, &["--priors", "0.5,0.5"]);
    assert_eq!(code, 2);
    assert!(err.contains("--priors: needs 7"), "{err}");
}
