//! The request/retry loop over a blocking transport, and label-order permutations run
//! concurrently (native: std threads). The browser has its own async loop over the same pieces
//! (`next_step`, the SSE parser, the answer parser).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::answer::{Answer, label_probs, parse_answer};
use super::request::{ChatRequest, Message, Param};
use super::response::{
    Completion, Next, RemoteError, RetryPolicy, Usage, classify, next_step, parse_retry_after,
};
use super::sse::CompletionReader;
use super::{Endpoint, HttpRequest};
use crate::labels::LabelSet;

/// How a transport's POST ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpOutcome {
    /// 2xx; the body went to `on_chunk`.
    Success,
    /// Any other status, with its body (read whole: error bodies are small) and Retry-After.
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
}

/// A blocking HTTP POST. On 2xx it must hand the body to `on_chunk` as it arrives, so that
/// streamed tokens are seen before the response ends.
pub trait Transport: Sync {
    fn post(
        &self,
        req: &HttpRequest,
        on_chunk: &mut dyn FnMut(&[u8]) -> Result<(), RemoteError>,
    ) -> Result<HttpOutcome, RemoteError>;
}

pub struct Client<'t> {
    pub transport: &'t dyn Transport,
    pub endpoint: Endpoint,
    pub policy: RetryPolicy,
}

/// A completion and the parameters dropped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub completion: Completion,
    pub dropped: Vec<Param>,
    pub attempts: u32,
}

impl Client<'_> {
    /// Sends `req`, dropping rejected parameters and retrying 429/503 as the policy allows.
    pub fn complete(&self, mut req: ChatRequest) -> Result<Exchange, RemoteError> {
        let start = Instant::now();
        let mut retries = 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match self.attempt(&req) {
                Ok(completion) => {
                    return Ok(Exchange {
                        completion,
                        dropped: req.dropped.clone(),
                        attempts,
                    });
                }
                Err(e) => e,
            };
            match next_step(err, &req, retries, start.elapsed(), &self.policy) {
                Next::Drop(p) => req.drop_param(p),
                Next::RetryAfter(wait) => {
                    retries += 1;
                    std::thread::sleep(wait);
                }
                Next::Fail(e) => return Err(e),
            }
            if start.elapsed() >= self.policy.overall_timeout {
                return Err(RemoteError::Timeout(self.policy.overall_timeout));
            }
        }
    }

    fn attempt(&self, req: &ChatRequest) -> Result<Completion, RemoteError> {
        let http = self.endpoint.http_request(req);
        let mut reader = CompletionReader::new(req.stream);
        let outcome = self
            .transport
            .post(&http, &mut |bytes| reader.push(bytes).map(drop))?;
        match outcome {
            HttpOutcome::Status {
                status,
                body,
                retry_after,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let ra = retry_after.and_then(|v| parse_retry_after(&v, now));
                Err(classify(status, &body, ra, req))
            }
            HttpOutcome::Success => reader.finish(),
        }
    }
}

/// Label orders for `k` requests (see [`crate::prompt::label_orders`]): rotations spread over
/// the set, or seeded shuffles.
pub fn permutations(n: usize, k: usize, seed: Option<u64>) -> Vec<Vec<usize>> {
    use crate::prompt::{LabelOrdering, label_orders};
    label_orders(
        n,
        k.max(1),
        seed.map_or(LabelOrdering::Cyclic, LabelOrdering::Seeded),
    )
}

/// Runs the jobs with at most `max_in_flight` at a time; results keep the jobs' order.
pub fn run_bounded<T: Send>(
    jobs: Vec<Box<dyn FnOnce() -> T + Send + '_>>,
    max_in_flight: usize,
) -> Vec<T> {
    let n = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new((0..n).map(|_| None).collect::<Vec<Option<T>>>());
    std::thread::scope(|s| {
        for _ in 0..max_in_flight.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let job = queue.lock().unwrap().pop();
                    let Some((i, job)) = job else { break };
                    let out = job();
                    results.lock().unwrap()[i] = Some(out);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// Options of one classification (all permutations share them).
#[derive(Debug, Clone)]
pub struct AskOptions {
    pub model: String,
    pub stream: bool,
    pub top_logprobs: Option<u8>,
    pub schema: bool,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub permutations: usize,
    pub seed: Option<u64>,
    pub max_in_flight: usize,
}

/// One request of a permutation run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Run {
    /// Label names in the order the model saw them.
    pub order: Vec<String>,
    pub answer: Answer,
    /// Per-label probabilities from logprobs, in set order, when the server returned them.
    pub probabilities: Option<Vec<f64>>,
    pub raw: String,
}

/// The combined result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AskResult {
    /// `None` when no run's answer could be parsed.
    pub label: Option<String>,
    /// Mean of the parsed runs' scores, label name → score.
    pub scores: Option<Vec<(String, f64)>>,
    /// Mean of the logprob probabilities, when every parsed run had them.
    pub probabilities: Option<Vec<(String, f64)>>,
    pub rationale: Option<String>,
    pub usage: Option<Usage>,
    pub dropped_parameters: Vec<Param>,
    pub runs: Vec<Run>,
}

/// The requests that `ask` would send, one per permutation.
pub fn build_requests(
    labels: &LabelSet,
    opts: &AskOptions,
    messages: &dyn Fn(&[String]) -> Vec<Message>,
) -> Vec<(Vec<String>, ChatRequest)> {
    permutations(labels.len(), opts.permutations, opts.seed)
        .into_iter()
        .map(|perm| {
            let order = super::request::ordered_names(labels, &perm);
            let mut r = ChatRequest::new(opts.model.clone(), messages(&order));
            r.stream = opts.stream;
            r.top_logprobs = opts.top_logprobs;
            r.schema_labels = opts.schema.then(|| order.clone());
            r.temperature = opts.temperature;
            r.max_tokens = opts.max_tokens;
            (order, r)
        })
        .collect()
}

/// Classifies with `opts.permutations` label orders (`messages` renders the conversation for
/// one order) and averages the answers per label. Fails if any request fails.
pub fn ask(
    client: &Client<'_>,
    labels: &LabelSet,
    opts: &AskOptions,
    messages: &dyn Fn(&[String]) -> Vec<Message>,
) -> Result<AskResult, RemoteError> {
    let requests = build_requests(labels, opts, messages);
    let jobs: Vec<Box<dyn FnOnce() -> Result<(Vec<String>, Exchange), RemoteError> + Send + '_>> =
        requests
            .into_iter()
            .map(|(order, r)| {
                Box::new(move || client.complete(r).map(|x| (order, x)))
                    as Box<dyn FnOnce() -> _ + Send>
            })
            .collect();
    let outcomes = run_bounded(jobs, opts.max_in_flight);
    let mut runs = Vec::new();
    let mut usage: Option<Usage> = None;
    let mut dropped: Vec<Param> = Vec::new();
    for o in outcomes {
        let (order, x) = o?;
        let c = x.completion;
        if let Some(u) = &c.usage {
            let acc = usage.get_or_insert_with(Usage::default);
            let add = |a: &mut Option<u64>, b: Option<u64>| {
                if let Some(b) = b {
                    *a = Some(a.unwrap_or(0) + b);
                }
            };
            add(&mut acc.prompt_tokens, u.prompt_tokens);
            add(&mut acc.completion_tokens, u.completion_tokens);
            add(&mut acc.total_tokens, u.total_tokens);
        }
        for p in x.dropped {
            if !dropped.contains(&p) {
                dropped.push(p);
            }
        }
        let answer = parse_answer(&c.content, labels);
        let probabilities = match answer {
            Answer::Parsed { .. } => label_probs(&c.content, &c.logprobs, labels),
            Answer::Unparsed { .. } => None,
        };
        runs.push(Run {
            order,
            answer,
            probabilities,
            raw: c.content,
        });
    }
    Ok(combine(labels, runs, usage, dropped))
}

fn mean(vs: &[&Vec<f64>], k: usize) -> Vec<f64> {
    let mut m = vec![0.0; k];
    for v in vs {
        for (a, x) in m.iter_mut().zip(v.iter()) {
            *a += x / vs.len() as f64;
        }
    }
    m
}

/// Averages parsed runs. The label is the argmax of the mean logprob probabilities when every
/// parsed run has them (token probabilities are better calibrated than stated scores), else of
/// the mean scores.
pub fn combine(
    labels: &LabelSet,
    runs: Vec<Run>,
    usage: Option<Usage>,
    dropped_parameters: Vec<Param>,
) -> AskResult {
    let k = labels.len();
    let parsed: Vec<&Run> = runs
        .iter()
        .filter(|r| matches!(r.answer, Answer::Parsed { .. }))
        .collect();
    let named =
        |v: Vec<f64>| -> Vec<(String, f64)> { labels.names().iter().cloned().zip(v).collect() };
    let scores: Vec<&Vec<f64>> = parsed
        .iter()
        .filter_map(|r| match &r.answer {
            Answer::Parsed { scores, .. } => Some(scores),
            _ => None,
        })
        .collect();
    let probs: Vec<&Vec<f64>> = parsed
        .iter()
        .filter_map(|r| r.probabilities.as_ref())
        .collect();
    let mean_scores = (!scores.is_empty()).then(|| mean(&scores, k));
    let mean_probs = (!probs.is_empty() && probs.len() == parsed.len()).then(|| mean(&probs, k));
    let decide = mean_probs.as_ref().or(mean_scores.as_ref());
    AskResult {
        label: decide.map(|v| labels.name(crate::calibration::argmax(v)).to_string()),
        rationale: parsed.iter().find_map(|r| match &r.answer {
            Answer::Parsed { rationale, .. } => rationale.clone(),
            _ => None,
        }),
        scores: mean_scores.map(named),
        probabilities: mean_probs.map(named),
        usage,
        dropped_parameters,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_permutations() {
        for seed in [None, Some(42)] {
            let ps = permutations(7, 4, seed);
            assert_eq!(ps.len(), 4);
            assert_eq!(ps[0], (0..7).collect::<Vec<_>>());
            for p in &ps {
                let mut s = p.clone();
                s.sort();
                assert_eq!(s, (0..7).collect::<Vec<_>>());
            }
            // Distinct orders, so label position bias is actually varied.
            for i in 0..4 {
                for j in 0..i {
                    assert_ne!(ps[i], ps[j]);
                }
            }
        }
        // Cyclic: each label appears first in a different request.
        let firsts: Vec<usize> = permutations(7, 7, None).iter().map(|p| p[0]).collect();
        let mut f = firsts.clone();
        f.sort();
        f.dedup();
        assert_eq!(f.len(), 7);
    }

    #[test]
    fn bounded_concurrency() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let jobs: Vec<Box<dyn FnOnce() -> usize + Send + '_>> = (0..10usize)
            .map(|i| {
                let (live, peak) = (&live, &peak);
                Box::new(move || {
                    let n = live.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    live.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                }) as Box<dyn FnOnce() -> usize + Send>
            })
            .collect();
        let out = run_bounded(jobs, 3);
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(peak.load(Ordering::SeqCst) >= 2);
    }
}
