//! `emolens ask --endpoint URL --model NAME [--image JPEG]... [--prompt TEXT] [--dry-run]`:
//! classify an emotion with a remote OpenAI-compatible VLM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::EXIT_BAD_INPUT;
use emolens::labels::LabelSet;
use emolens::remote::ask::{AskOptions, build_requests};
use emolens::remote::client::{Client, ask};
use emolens::remote::native::UreqTransport;
use emolens::remote::request::{build_messages, image_data_url};
use emolens::remote::{ApiKey, Endpoint, RetryPolicy};

const DEFAULT_PROMPT: &str = "What emotion does the person in these frames express?";

#[derive(Args)]
pub struct AskArgs {
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
    #[arg(long, conflicts_with = "prompt_file")]
    prompt: Option<String>,
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Image files (JPEG/PNG), sent inline as data URLs.
    #[arg(long)]
    image: Vec<PathBuf>,
    /// Ask K times with the label list in different orders and average (label-order bias).
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
    /// Overall time limit in seconds, retries included.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
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
        permutations: args.permutations.max(1),
        seed: args.seed,
        max_in_flight: args.concurrency.max(1),
    };
    let messages = |order: &[String]| build_messages(&prompt, &images, order);

    if args.dry_run {
        eprintln!("emolens: dry run, would POST to {}", endpoint.url);
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
    };
    let result = match ask(&client, &labels, &opts, &messages) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("emolens: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = result.to_json(&labels);
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("serialisable")
    );
    ExitCode::SUCCESS
}
