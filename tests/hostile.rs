//! Hostile servers and inputs (issue 14): each case gives the right answer, or a one-line error
//! with the right exit code (2 bad input, 1 server fault); nothing panics, hangs or grows
//! without bound. The server cases run against the fake server on 127.0.0.1.

#[path = "support/ask_messages.rs"]
mod ask_messages;
#[path = "support/fake_vlm.rs"]
mod fake_vlm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ask_messages::ask;
use emolens::labels::LabelSet;
use emolens::remote::AskOptions;
use emolens::remote::client::Client;
use emolens::remote::native::UreqTransport;
use emolens::remote::request::build_messages;
use emolens::remote::{
    Answer, Endpoint, Hint, Limit, RemoteError, ResponseLimits, RetryPolicy, parse_answer,
};
use fake_vlm::{Dialect, Reply, Server, faults, non_streamed, streamed};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn options(stream: bool) -> (AskOptions, usize) {
    (
        AskOptions {
            model: "m".into(),
            stream,
            top_logprobs: None,
            schema: true,
            temperature: Some(0.0),
            max_tokens: Some(100),
        },
        1,
    )
}

/// Asks once through `server`, within `timeout`; returns the label or the error, and how long
/// it took.
fn ask_once(
    server: &Server,
    stream: bool,
    limits: ResponseLimits,
    timeout: Duration,
) -> (Result<Option<String>, RemoteError>, Duration) {
    let transport = UreqTransport::new(timeout);
    let client = Client {
        transport: &transport,
        endpoint: Endpoint::new(&server.base, None).unwrap(),
        policy: RetryPolicy {
            overall_timeout: timeout,
            max_retries: 0,
            ..RetryPolicy::default()
        },
        limits,
    };
    let labels = LabelSet::dfew();
    let messages = |order: &[String]| build_messages("What emotion?", &[], order);
    let start = Instant::now();
    let result = ask(&client, &labels, &options(stream), &messages).map(|r| r.label);
    (result, start.elapsed())
}

fn answering(text: String) -> Server {
    Server::start(move |_, req| {
        if req.body["stream"] == true {
            Reply::sse(&streamed(Dialect::Vllm, &text, true), 16)
        } else {
            Reply::json(200, &non_streamed(Dialect::Vllm, &text, false))
        }
    })
}

#[test]
fn unicode_before_the_answer_still_reads_happy() {
    let labels = LabelSet::dfew();
    for text in faults::UNICODE_ANSWERS {
        let a = parse_answer(text, &labels);
        assert!(
            matches!(a, Answer::Parsed { label, .. } if labels.name(label) == "happy"),
            "{a:?}"
        );
        let server = answering(text.to_string());
        for stream in [false, true] {
            let (r, _) = ask_once(
                &server,
                stream,
                ResponseLimits::default(),
                Duration::from_secs(20),
            );
            assert_eq!(
                r.unwrap().as_deref(),
                Some("happy"),
                "{text} stream={stream}"
            );
        }
    }
}

#[test]
fn two_megabytes_of_braces_parse_in_linear_time() {
    let labels = LabelSet::dfew();
    let text = faults::braces(2 << 20) + r#"{"label": "happy"}"#;
    let start = Instant::now();
    let a = parse_answer(&text, &labels);
    assert!(matches!(a, Answer::Parsed { .. }), "{:?}", start.elapsed());
    let bare = faults::braces(2 << 20);
    assert!(matches!(
        parse_answer(&bare, &labels),
        Answer::Unparsed { .. }
    ));
    // Quadratic rescanning took minutes; one pass takes milliseconds (generous for slow CI).
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // Through the client too (2 MB is under the default response limit).
    let server = answering(text);
    let (r, took) = ask_once(
        &server,
        false,
        ResponseLimits::default(),
        Duration::from_secs(20),
    );
    assert_eq!(r.unwrap().as_deref(), Some("happy"));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_body_that_never_ends_is_cut_off_at_the_limit() {
    let limits = ResponseLimits {
        max_response_bytes: 1 << 20,
        max_sse_line_bytes: 64 << 10,
    };
    for (stream, one_line, expected) in [
        (false, false, Limit::ResponseBody),
        (true, false, Limit::ResponseBody),
        (true, true, Limit::SseLine),
    ] {
        let server = Server::start(move |_, _| faults::endless(stream, one_line));
        let (r, took) = ask_once(&server, stream, limits, Duration::from_secs(30));
        match r {
            Err(RemoteError::TooLarge { limit, .. }) => assert_eq!(limit, expected),
            other => panic!("stream={stream} one_line={one_line}: {other:?}"),
        }
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    // The default limit ends it too (16 MiB).
    let server = Server::start(|_, _| faults::endless(false, false));
    let (r, _) = ask_once(
        &server,
        false,
        ResponseLimits::default(),
        Duration::from_secs(60),
    );
    let e = r.unwrap_err();
    assert!(
        matches!(e, RemoteError::TooLarge { limit: Limit::ResponseBody, bytes } if bytes == 16 << 20)
    );
    assert_eq!(e.hint(), Some(Hint::Limit(Limit::ResponseBody)), "{e}");
}

#[test]
fn done_then_an_open_connection_still_answers_at_once() {
    let body = streamed(Dialect::Vllm, fake_vlm::ANSWER, true);
    let server = Server::start(move |_, _| faults::done_then_open(&body));
    let (r, took) = ask_once(
        &server,
        true,
        ResponseLimits::default(),
        Duration::from_secs(30),
    );
    assert_eq!(r.unwrap().as_deref(), Some("happy"));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn redirects_are_reported_not_followed() {
    let elsewhere = Server::start(|_, _| Reply::json(200, "{}"));
    let target = format!("http://{}/v1/chat/completions?sig=s3cret", elsewhere.addr);
    for status in [301, 302, 307, 308] {
        let target = target.clone();
        let server = Server::start(move |_, _| faults::redirect(status, &target));
        let (r, _) = ask_once(
            &server,
            false,
            ResponseLimits::default(),
            Duration::from_secs(20),
        );
        let e = r.unwrap_err();
        assert!(
            matches!(e, RemoteError::Redirect { status: s, .. } if s == status),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            !text.contains("s3cret") && text.contains("not followed"),
            "{text}"
        );
    }
    assert!(
        elsewhere.requests().is_empty(),
        "the body went to the redirect's target"
    );
}

// ---------------------------------------------------------------- the CLI

fn emolens_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_emolens"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 2 and an error on the first line of stderr that contains `says`; no panic.
fn refused(args: &[&str], says: &str) {
    let (code, _, err) = emolens_in(Path::new(ROOT), args);
    assert_eq!(code, 2, "{args:?}: {err}");
    let first = err.lines().next().unwrap_or("");
    assert!(first.contains(says), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

fn clip() -> String {
    format!("{ROOT}/tests/data/video/single_face.mp4")
}

#[test]
fn cli_refuses_hostile_arguments_in_one_line() {
    let e = ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m"];
    fn ask<'a>(e: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [&["ask", "--prompt", "x"][..], e, extra].concat()
    }
    refused(
        &ask(&e, &["--permutations", "18446744073709551615"]),
        "--permutations",
    );
    refused(
        &ask(&e, &["--permutations", "1000000000000"]),
        "--permutations",
    );
    refused(&ask(&e, &["--permutations", "8"]), "7 rotations");
    refused(&ask(&e, &["--permutations", "0"]), "--permutations");
    refused(&ask(&e, &["--timeout", "18446744073709551615"]), "a day");
    refused(&ask(&e, &["--timeout", "0"]), "a day");
    refused(&ask(&e, &["--tau", "nan"]), "finite");
    refused(
        &ask(&e, &["--priors", "inf,1,1,1,1,1,1"]),
        "finite positive",
    );
    refused(&ask(&e, &["--max-response-mb", "0"]), "--max-response-mb");
    for endpoint in ["http://é/v1", "http://[::1/v1", "http://h:70000/v1"] {
        refused(
            &[
                "ask",
                "--prompt",
                "x",
                "--model",
                "m",
                "--endpoint",
                endpoint,
            ],
            "endpoint",
        );
    }
    let (code, _, err) = emolens_in(
        Path::new(ROOT),
        &ask(&e, &["--endpoint", "http://h/v1?token=abc"]),
    );
    assert!(code == 2 && !err.contains("abc"), "{err}");
    for cmd in [
        &["video"][..],
        &["prompt"],
        &["ask", "--endpoint", "http://h/v1", "--model", "m"],
    ] {
        for fps in [
            "--keyframe-fps=nan",
            "--keyframe-fps=inf",
            "--keyframe-fps=-1",
            "--keyframe-fps=6",
        ] {
            let mut args = cmd.to_vec();
            args.push(fps);
            let path = clip();
            args.push(&path);
            refused(&args, "keyframe");
        }
    }
    refused(&["spot-bench", "--keyframe-fps", "nan"], "keyframe");
}

#[test]
fn cli_summaries_never_sends_an_image() {
    let jpeg = std::env::temp_dir().join(format!("emolens-hostile-{}.jpg", std::process::id()));
    std::fs::write(&jpeg, [0xff, 0xd8, 0xff, 0xe0]).unwrap();
    refused(
        &[
            "ask",
            "--image",
            jpeg.to_str().unwrap(),
            "--mode",
            "summaries",
            "--endpoint",
            "http://h/v1",
            "--model",
            "m",
        ],
        "promises none",
    );
    refused(
        &["prompt", "--stage1", "--mode", "summaries", &clip()],
        "no pixels",
    );
    refused(&["prompt", "--permutations", "9", &clip()], "rotations");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(ROOT)
        .join("target/tmp")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_video_named_like_an_option_is_analysed() {
    let dir = temp_dir("dash-name");
    std::fs::copy(clip(), dir.join("-version")).unwrap();
    let info = emolens::video::probe(&dir.join("-version")).unwrap();
    assert_eq!((info.width, info.height), (640, 360));
    let (code, out, err) = emolens_in(&dir, &["prompt", "--mode", "summaries", "--", "-version"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["path"], "-version");
    assert!(json["frames"].as_u64().unwrap() > 10);
}

#[test]
fn huge_frames_are_scaled_down_or_refused() {
    let dir = temp_dir("huge");
    let path = dir.join("huge.mp4");
    // 8192×4608: 37.7 megapixels, over the decode limit at full size.
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=gray:s=8192x4608:d=0.08:r=25",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let decoder =
        emolens::video::VideoDecoder::open(&path, Some(emolens::video::DEFAULT_MAX_SIDE)).unwrap();
    let frames: Vec<_> = decoder.collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0].image.width, frames[0].image.height),
        (1920, 1080)
    );
    let e = emolens::video::VideoDecoder::open(&path, Some(0))
        .err()
        .unwrap();
    assert!(e.to_string().contains("megapixels"), "{e}");
    refused(
        &["video", "--max-side", "0", path.to_str().unwrap()],
        "--max-side",
    );
}

// ---------------------------------------------------------------- no pixel where none is promised

fn carries_an_image(body: &serde_json::Value) -> bool {
    let text = body.to_string();
    text.contains("image_url") || text.contains("data:image")
}

/// Every request `ask --mode summaries` sends, with each option that adds requests (label
/// orders, the content-free baseline, streaming): none carries an image. The same flow in an
/// image mode does carry them, so the check can fail.
#[test]
fn summaries_mode_sends_no_pixel_in_any_request() {
    let server = Server::start(|_, req| fake_vlm::dialect_reply(Dialect::Vllm, req));
    let base = server.base.clone();
    let run = |mode: &str, extra: &[&str]| {
        let path = clip();
        let mut args = vec![
            "ask",
            &path,
            "--endpoint",
            &base,
            "--model",
            "m",
            "--mode",
            mode,
        ];
        args.extend(extra);
        let (code, _, err) = emolens_in(Path::new(ROOT), &args);
        assert_eq!(code, 0, "{args:?}: {err}");
    };
    run("summaries", &["--permutations", "3", "--content-free"]);
    run(
        "summaries",
        &["--stream", "--seed", "5", "--permutations", "4"],
    );
    let sent = server.requests();
    assert_eq!(sent.len(), 3 + 3 + 4);
    for r in &sent {
        assert!(!carries_an_image(&r.body), "{}", r.body);
    }
    run("keyframes", &[]);
    assert!(carries_an_image(&server.requests().last().unwrap().body));
}

/// Whatever path built a text-only request, its body has no image part.
#[test]
fn a_text_only_request_never_writes_an_image() {
    let labels: Vec<String> = LabelSet::dfew().names().to_vec();
    let messages = build_messages("x", &["data:image/jpeg;base64,/9j/".into()], &labels);
    let mut r = emolens::remote::ChatRequest::new("m", messages);
    assert!(carries_an_image(&r.to_json()));
    r.text_only = true;
    assert!(!carries_an_image(&r.to_json()) && !r.has_images());
    let endpoint = Endpoint::new("http://h/v1", None).unwrap();
    assert!(!endpoint.http_request(&r).body.contains("image_url"));
}

/// The core refuses what the CLI and `buildPrompt` both pass on: stage 1 in the summaries mode,
/// more label orders than differ; seeded orders are all different up to n!.
#[test]
fn prompt_requests_are_checked_in_the_core() {
    use emolens::prompt::{
        ImageDetail, LabelOrdering, PromptMode, PromptRequest, check_permutations, label_orders,
    };
    let request = |mode, permutations, stage1| PromptRequest {
        mode,
        labels: LabelSet::dfew(),
        detail: ImageDetail::Low,
        permutations,
        stage1,
    };
    assert!(
        request(PromptMode::Summaries, 1, true)
            .check()
            .unwrap_err()
            .contains("no pixels")
    );
    assert!(request(PromptMode::Enriched, 1, true).check().is_ok());
    assert!(request(PromptMode::Enriched, 8, false).check().is_err());
    assert!(
        request(PromptMode::Enriched, usize::MAX, false)
            .check()
            .is_err()
    );
    assert!(check_permutations(3, 6, LabelOrdering::Seeded(1)).is_ok());
    assert!(check_permutations(3, 7, LabelOrdering::Seeded(1)).is_err());
    assert!(check_permutations(20, 10_000, LabelOrdering::Seeded(1)).is_ok());
    assert!(check_permutations(20, 10_001, LabelOrdering::Seeded(1)).is_err());
    let orders = label_orders(3, 6, LabelOrdering::Seeded(7));
    let mut distinct = orders.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6);
    // Asked for more than exist, the core gives each once (callers have said why already).
    assert_eq!(
        label_orders(3, 1_000_000_000_000, LabelOrdering::Cyclic).len(),
        3
    );
}

#[test]
fn calibration_report_with_non_ascii_labels() {
    let dir = temp_dir("calibration");
    let csv = dir.join("labels.csv");
    let mut text = String::from("name,gt,ranked\n");
    for (i, (gt, ranked)) in [
        ("嫌悪感", "嫌悪感,happy"),
        ("disgusté", "disgusté,嫌悪感"),
        ("happy", "happy,disgusté"),
        ("嫌悪感", "happy,嫌悪感"),
    ]
    .iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        text.push_str(&format!("c{i},{gt},\"{ranked}\"\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let (code, out, err) = emolens_in(&dir, &["eval-calibration", "labels.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("嫌悪感") && out.contains("disgusté"), "{out}");
}
