//! `emolens ask [VIDEO] --endpoint URL --model NAME [--mode enriched|keyframes|summaries]
//! [--stage1] [--image JPEG]... [--prompt TEXT] [--dry-run]`: classify an emotion with a remote
//! OpenAI-compatible VLM, from a video's enriched context (what `emolens prompt` builds) or from
//! images and a prompt.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::EXIT_BAD_INPUT;
use super::prompt::ClipArgs;
use emolens::calibration::Correction;
use emolens::labels::LabelSet;
use emolens::prompt::{
    ClipContext, LabelOrdering, PromptOptions, check_permutations, content_free, final_request,
    stage1_requests,
};
use emolens::remote::ask::AskResult;
use emolens::remote::ask::{AskOptions, build_requests};
use emolens::remote::client::{Client, ask};
use emolens::remote::native::UreqTransport;
use emolens::remote::request::{ChatRequest, Message, build_messages, image_data_url};
use emolens::remote::{ApiKey, Endpoint, ResponseLimits, RetryPolicy};

const DEFAULT_PROMPT: &str = "What emotion does the person in these frames express?";

#[derive(Args)]
pub struct AskArgs {
    /// A video: analysed, then asked about through the prompt of `--mode` (as `emolens prompt`
    /// builds it). Without it, `--image` and `--prompt` make the request.
    video: Option<PathBuf>,
    /// Stage 1 first: one request per stretch between keyframes (its measured summary and one
    /// frame) asking the VLM to describe the change; the final question then carries those
    /// descriptions next to the measurements.
    #[arg(long, requires = "video")]
    stage1: bool,
    /// Prior correction (logit adjustment): class priors, one per label in the set's order;
    /// the decision is then argmax of log p − τ·log prior.
    #[arg(long, value_delimiter = ',', conflicts_with = "content_free")]
    priors: Option<Vec<f64>>,
    /// τ of the prior correction.
    #[arg(long, default_value_t = 1.0, value_parser = super::finite)]
    tau: f64,
    /// Contextual calibration: also ask about the content-free clip (grey keyframes, empty
    /// measurements) and divide its answer out.
    #[arg(long, requires = "video")]
    content_free: bool,
    #[command(flatten)]
    clip: ClipArgs,
    /// Base URL of the OpenAI-compatible API (e.g. http://localhost:8000/v1 for vLLM,
    /// http://localhost:8080/v1 for llama.cpp, http://localhost:11434/v1 for Ollama).
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    model: String,
    /// Name of the environment variable holding the API key (the key itself is never an
    /// argument, so it stays out of shell history and process lists).
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// Stream the answer (server-sent events).
    #[arg(long)]
    stream: bool,
    /// Label set: dfew, mafw, faceapi, or a comma-separated list.
    #[arg(long, default_value = "dfew")]
    labels: String,
    #[arg(long, conflicts_with_all = ["prompt_file", "video"])]
    prompt: Option<String>,
    #[arg(long, conflicts_with = "video")]
    prompt_file: Option<PathBuf>,
    /// Image files (JPEG/PNG), sent inline as data URLs.
    #[arg(long, conflicts_with = "video")]
    image: Vec<PathBuf>,
    /// Ask K times with the label list in different orders and average (label-order bias):
    /// at most as many orders as differ (one per label rotated, or with --seed n! shuffles,
    /// up to 10000).
    #[arg(long, default_value_t = 1)]
    permutations: usize,
    /// Shuffle label orders with this seed instead of rotating them.
    #[arg(long)]
    seed: Option<u64>,
    /// At most this many requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Alternatives per token to request (0: do not ask for logprobs).
    #[arg(long, default_value_t = 5)]
    top_logprobs: u8,
    /// Do not send a JSON schema (`response_format`).
    #[arg(long)]
    no_schema: bool,
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 512)]
    max_tokens: u32,
    /// Overall time limit in seconds, retries included (at most 86400, a day).
    #[arg(long, default_value_t = 300, value_parser = super::timeout_secs)]
    timeout: u64,
    /// Largest response accepted, in MiB (a server that sends more is cut off: exit 1).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_response_mb: u32,
    /// Longest server-sent-events line accepted, in KiB (one streamed chunk).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1048576))]
    max_sse_line_kb: u32,
    /// Print the request body (one JSON line per request) and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn label_set(spec: &str) -> Result<LabelSet, String> {
    LabelSet::from_spec(spec).map_err(|e| format!("--labels: {e}"))
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("emolens: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

pub fn run(args: AskArgs) -> ExitCode {
    let labels = match label_set(&args.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(p) => p,
            Err(e) => return fail(format!("cannot read {}: {e}", f.display())),
        },
        (None, None) => DEFAULT_PROMPT.to_string(),
    };
    let mut images = Vec::new();
    for path in &args.image {
        match std::fs::read(path) {
            Ok(bytes) => images.push(image_data_url(&bytes)),
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        }
    }
    let api_key = match args
        .api_key_env
        .as_deref()
        .map(ApiKey::from_env)
        .transpose()
    {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let endpoint = match Endpoint::new(&args.endpoint, api_key) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let opts = AskOptions {
        model: args.model.clone(),
        stream: args.stream,
        top_logprobs: (args.top_logprobs > 0).then_some(args.top_logprobs),
        schema: !args.no_schema,
        temperature: Some(args.temperature),
        max_tokens: Some(args.max_tokens),
        permutations: args.permutations,
        seed: args.seed,
        max_in_flight: args.concurrency.max(1),
        text_only: !args.clip.mode().sends_images(),
    };
    let ordering = args
        .seed
        .map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded);
    if let Err(e) = check_permutations(labels.len(), args.permutations, ordering) {
        return fail(format!("--permutations: {e}"));
    }
    if opts.text_only && !images.is_empty() {
        return fail("--image sends pixels, and --mode summaries promises none: drop one of them");
    }
    if let Some(priors) = &args.priors
        && (priors.len() != labels.len() || priors.iter().any(|p| !(p.is_finite() && *p > 0.0)))
    {
        return fail(format!(
            "--priors needs {} finite positive numbers, one per label ({})",
            labels.len(),
            labels.names().join(", ")
        ));
    }
    if args.stage1 && !args.clip.mode().sends_images() {
        return fail(
            "--stage1 sends one frame per stretch, and --mode summaries promises no pixels: drop one of them",
        );
    }
    let mut clip = match &args.video {
        Some(video) => match args.clip.clip(video, args.stage1) {
            Ok((_, clip)) => Some(clip),
            Err(e) => return fail(e),
        },
        None => None,
    };
    let stage1 = match &clip {
        Some(clip) if args.stage1 => stage1_requests(clip, args.clip.detail()),
        _ => Vec::new(),
    };
    let stage1_request = |messages: Vec<Message>| {
        let mut r = ChatRequest::new(args.model.clone(), messages);
        r.text_only = opts.text_only;
        r.temperature = Some(args.temperature);
        r.max_tokens = Some(args.max_tokens);
        r
    };

    if args.dry_run {
        eprintln!(
            "emolens: dry run, would POST to {}",
            emolens::remote::redact_url(&endpoint.url)
        );
        for (_, messages) in &stage1 {
            println!(
                "{}",
                endpoint
                    .http_request(&stage1_request(messages.clone()))
                    .body
            );
        }
        let messages = final_messages(&labels, &args, clip.as_ref(), &prompt, &images);
        for (_, r) in build_requests(&labels, &opts, &messages) {
            println!("{}", endpoint.http_request(&r).body);
        }
        return ExitCode::SUCCESS;
    }

    let policy = RetryPolicy {
        overall_timeout: Duration::from_secs(args.timeout),
        ..RetryPolicy::default()
    };
    let transport = UreqTransport::new(policy.overall_timeout);
    let client = Client {
        transport: &transport,
        endpoint,
        policy,
        limits: ResponseLimits {
            max_response_bytes: (args.max_response_mb as usize) << 20,
            max_sse_line_bytes: (args.max_sse_line_kb as usize) << 10,
        },
    };
    // Stage 1, one stretch after another: each description goes into the final question.
    let mut descriptions = Vec::new();
    for (segment, messages) in stage1 {
        match client.complete(stage1_request(messages)) {
            Ok(exchange) => {
                let text = exchange.completion.content.trim().to_string();
                if let Some(clip) = clip.as_mut() {
                    clip.segments[segment].description = Some(text.clone());
                }
                descriptions.push(serde_json::json!({"segment": segment, "description": text}));
            }
            Err(e) => {
                eprintln!("emolens: stage 1, stretch {segment}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let messages = final_messages(&labels, &args, clip.as_ref(), &prompt, &images);
    let result = match ask(&client, &labels, &opts, &messages) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("emolens: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = result.to_json(&labels);
    if args.stage1 {
        out["stage1"] = serde_json::Value::Array(descriptions);
    }
    // Long-tail corrections of the decision, on the per-label probabilities (else the scores).
    let correction = match (&args.priors, &clip) {
        (Some(priors), _) => Some(("priors", Correction::from_priors(priors, args.tau), None)),
        (None, Some(clip)) if args.content_free => {
            let blank = content_free(clip);
            let messages = final_messages(&labels, &args, Some(&blank), &prompt, &images);
            match ask(&client, &labels, &opts, &messages) {
                Ok(answer) => match label_values(&answer, &labels) {
                    Some(values) => Some((
                        "content_free",
                        Correction::from_content_free(&values),
                        Some(values),
                    )),
                    None => {
                        eprintln!("emolens: the content-free answer names no label; no correction");
                        None
                    }
                },
                Err(e) => {
                    eprintln!("emolens: content-free request: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    if let (Some((method, correction, baseline)), Some(values)) =
        (correction, label_values(&result, &labels))
    {
        let adjusted = correction.adjust(&values);
        let best = emolens::calibration::argmax(&adjusted);
        let named = |v: &[f64]| -> serde_json::Map<String, serde_json::Value> {
            labels
                .names()
                .iter()
                .zip(v)
                .map(|(n, x)| (n.clone(), serde_json::json!(x)))
                .collect()
        };
        out["corrected"] = serde_json::json!({
            "method": method,
            "label": labels.name(best),
            "adjusted_scores": named(&adjusted),
            "content_free_scores": baseline.as_deref().map(named),
        });
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("serialisable")
    );
    ExitCode::SUCCESS
}

/// The conversation for one label order: the clip's final question in `--mode` when a video was
/// given, else the prompt and images.
fn final_messages<'a>(
    labels: &'a LabelSet,
    args: &'a AskArgs,
    clip: Option<&'a ClipContext>,
    prompt: &'a str,
    images: &'a [String],
) -> impl Fn(&[String]) -> Vec<Message> + 'a {
    move |order: &[String]| match clip {
        Some(clip) => {
            let mut options = PromptOptions::new(args.clip.mode(), labels.clone());
            options.label_order = order.iter().filter_map(|n| labels.canonical(n)).collect();
            options.detail = args.clip.detail();
            final_request(clip, &options)
        }
        None => build_messages(prompt, images, order),
    }
}

/// Per-label values in the label set's order: the logprob probabilities when the server gave
/// them, else the answer's scores (floored, so a log never meets zero).
fn label_values(result: &AskResult, labels: &LabelSet) -> Option<Vec<f64>> {
    let pairs = result.probabilities.as_ref().or(result.scores.as_ref())?;
    labels
        .names()
        .iter()
        .map(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.max(1e-6))
        })
        .collect()
}
