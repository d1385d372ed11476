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
use emolens::ask::{AskFlow, AskOutcome, AskPlan, CorrectionPlan, PlanError, Question, Setting};
use emolens::labels::LabelSet;
use emolens::prompt::{LabelOrdering, label_orders};
use emolens::remote::client::{AskFailure, Client, ask};
use emolens::remote::native::UreqTransport;
use emolens::remote::request::{AskOptions, build_messages, image_data_url, ordered_names};
use emolens::remote::{ApiKey, Endpoint, Hint, Limit, RemoteError, ResponseLimits, RetryPolicy};
use emolens::vlm::ask::DESCRIPTION_TOKENS;
use emolens::vlm::load::LocalModel;

const DEFAULT_PROMPT: &str = "What emotion does the person in these frames express?";
/// A server's answer may be a JSON object with a rationale: room for it.
const DEFAULT_MAX_TOKENS: u32 = 512;

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
    #[arg(long, required_unless_present = "local_vlm")]
    endpoint: Option<String>,
    #[arg(long, required_unless_present = "local_vlm")]
    model: Option<String>,
    /// Ask the SmolVLM checkpoint in this folder (config.json, tokenizer.json,
    /// model.safetensors, preprocessor_config.json) on the CPU instead of a server: stage 1
    /// generated (at most --max-tokens each), label orders answered by closed-set label
    /// probabilities, as the page's `askClip` with `vlm` does.
    #[arg(long, value_name = "DIR", requires = "video", conflicts_with_all = ["endpoint", "model", "stream", "dry_run"])]
    local_vlm: Option<PathBuf>,
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
    /// Longest answer, in tokens (default: 512 from a server; with --local-vlm, 64 per stage-1
    /// description).
    #[arg(long)]
    max_tokens: Option<u32>,
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

/// A refused plan, worded with the flag it is about.
fn plan_error(e: &PlanError) -> String {
    let flag = match e.setting {
        Setting::Permutations => "--permutations",
        Setting::Priors => "--priors",
        Setting::Tau => "--tau",
        Setting::Stage1 => "--stage1",
        Setting::ContentFree => "--content-free",
        Setting::Images => "--image",
    };
    format!("{flag}: {}", e.message)
}

/// What is asked: the clip's context (analysed here), or the prompt and images in every label
/// order.
fn question(args: &AskArgs, labels: &LabelSet) -> Result<Question, String> {
    if let Some(video) = &args.video {
        let (_, clip) = args.clip.clip(video, args.stage1)?;
        return Ok(Question::Clip {
            clip,
            mode: args.clip.mode(),
            detail: args.clip.detail(),
            stage1: args.stage1,
        });
    }
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?
        }
        (None, None) => DEFAULT_PROMPT.to_string(),
    };
    let mut images = Vec::new();
    for path in &args.image {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        images.push(image_data_url(&bytes));
    }
    let ordering = args
        .seed
        .map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded);
    emolens::prompt::check_permutations(labels.len(), args.permutations, ordering)
        .map_err(|e| format!("--permutations: {e}"))?;
    Ok(Question::Conversations(
        label_orders(labels.len(), args.permutations, ordering)
            .iter()
            .map(|perm| {
                let order = ordered_names(labels, perm);
                let messages = build_messages(&prompt, &images, &order);
                (order, messages)
            })
            .collect(),
    ))
}

pub fn run(args: AskArgs) -> ExitCode {
    let labels = match label_set(&args.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let api_key = match args
        .api_key_env
        .as_deref()
        .map(ApiKey::from_env)
        .transpose()
    {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let opts = AskOptions {
        model: args.model.clone().unwrap_or_default(),
        stream: args.stream,
        top_logprobs: (args.top_logprobs > 0).then_some(args.top_logprobs),
        schema: !args.no_schema,
        temperature: Some(args.temperature),
        max_tokens: Some(args.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    };
    let correction = match (&args.priors, args.content_free) {
        (Some(priors), _) => CorrectionPlan::Priors {
            priors: priors.clone(),
            tau: args.tau,
        },
        (None, true) => CorrectionPlan::ContentFree,
        (None, false) => CorrectionPlan::None,
    };
    let mut plan = AskPlan {
        labels: labels.clone(),
        question: Question::Conversations(Vec::new()),
        permutations: args.permutations,
        seed: args.seed,
        correction,
        max_in_flight: args.concurrency.max(1),
        text_only: !args.clip.mode().sends_images(),
    };
    // The settings are checked, and a local model loaded, before the clip is analysed (minutes
    // for a long one).
    let probe = AskPlan {
        question: Question::Conversations(vec![(labels.names().to_vec(), Vec::new())]),
        correction: match &plan.correction {
            CorrectionPlan::ContentFree => CorrectionPlan::None,
            c => c.clone(),
        },
        ..plan.clone()
    };
    if let Err(e) = probe.check() {
        return fail(plan_error(&e));
    }
    let local = match &args.local_vlm {
        Some(dir) => match load_local(dir) {
            Ok(model) => Some(model),
            Err(e) => return fail(e),
        },
        None => None,
    };
    plan.question = match question(&args, &labels) {
        Ok(q) => q,
        Err(e) => return fail(e),
    };
    if let Err(e) = plan.check() {
        return fail(plan_error(&e));
    }
    if let Some(model) = &local {
        let max_tokens = args.max_tokens.map_or(DESCRIPTION_TOKENS, |n| n as usize);
        return ask_local(model, plan, max_tokens);
    }
    let endpoint = match Endpoint::new(args.endpoint.as_deref().unwrap_or_default(), api_key) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };

    if args.dry_run {
        eprintln!(
            "emolens: dry run, would POST to {}",
            emolens::remote::redact_url(&endpoint.url)
        );
        let text_only = plan.text_only;
        let queries = AskFlow::<RemoteError>::preview(plan).expect("the plan was checked");
        for q in &queries {
            println!(
                "{}",
                endpoint.http_request(&opts.request(q, text_only)).body
            );
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
    match ask(&client, &opts, plan) {
        Ok(outcome) => print_outcome(&outcome),
        Err(AskFailure::Plan(e)) => fail(plan_error(&e)),
        Err(AskFailure::Remote(e)) => {
            eprintln!("emolens: {}", e.in_context(&worded(&e.error)));
            ExitCode::FAILURE
        }
    }
}

/// A server's fault with what to change, in this command's flags.
fn worded(e: &RemoteError) -> String {
    let hint = match e.hint() {
        None => return e.to_string(),
        Some(Hint::ApiKey) => "pass the key's variable with --api-key-env VAR".to_string(),
        Some(Hint::Origin) => "start Ollama with OLLAMA_ORIGINS set to include the calling page's \
            origin (e.g. OLLAMA_ORIGINS=http://localhost:8080), or '*' for any origin"
            .to_string(),
        Some(Hint::Model(model)) => {
            format!("check --model (and, for Ollama, `ollama pull {model}` on the server)")
        }
        Some(Hint::TextOnly) => {
            "use a vision model, or the text-only mode (--mode summaries)".to_string()
        }
        Some(Hint::Limit(Limit::ResponseBody)) => {
            "raise it with --max-response-mb if the answer is legitimate".to_string()
        }
        Some(Hint::Limit(Limit::SseLine)) => {
            "raise it with --max-sse-line-kb if the stream is legitimate".to_string()
        }
        Some(Hint::Timeout) => "raise --timeout if the server is slow".to_string(),
    };
    format!("{e}; {hint}")
}

fn load_local(dir: &std::path::Path) -> Result<LocalModel, String> {
    use emolens::vlm::load::{VlmFiles, load_from_bytes};
    VlmFiles::from_dir(dir)
        .and_then(|files| load_from_bytes(files, &burn::tensor::Device::flex()))
        .map_err(|e| format!("--local-vlm {}: {e}", dir.display()))
}

/// The flow on the local VLM (CPU), printed as with a server.
fn ask_local(model: &LocalModel, plan: AskPlan, max_tokens: usize) -> ExitCode {
    let labels = plan.labels.clone();
    let flow = AskFlow::new(plan).expect("the plan was checked");
    let (model, labels) = (&model, &labels);
    let answer = |q: emolens::ask::Query| async move { model.answer(&q, labels, max_tokens).await };
    match pollster::block_on(emolens::ask::drive_async(flow, answer, |_, _| {})) {
        Ok(outcome) => print_outcome(&outcome),
        Err(e) => {
            eprintln!("emolens: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The notes on stderr, the JSON on stdout.
fn print_outcome(outcome: &AskOutcome) -> ExitCode {
    for note in &outcome.notes {
        eprintln!("emolens: {note}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome.to_json()).expect("serialisable")
    );
    ExitCode::SUCCESS
}
