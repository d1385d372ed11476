//! The request/retry loop over a blocking transport, and label-order permutations run
//! concurrently (native: std threads). The browser has its own async loop over the same pieces
//! (`next_step`, the SSE parser, [`super::ask`]).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::ask::{AskOptions, AskResult, Exchange, build_requests, collect};
use super::request::{ChatRequest, Message};
use super::response::{
    Completion, Next, RemoteError, RetryPolicy, classify, next_step, parse_retry_after,
};
use super::sse::{CompletionReader, ResponseLimits};
use super::{Endpoint, HttpRequest};
use crate::labels::LabelSet;

/// How a transport's POST ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpOutcome {
    /// 2xx; the body went to `on_chunk`.
    Success,
    /// Any other status, with its body (read whole: error bodies are small), Retry-After and,
    /// for a redirect, Location (redirects are never followed).
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
        location: Option<String>,
    },
}

/// A blocking HTTP POST. On 2xx it must hand the body to `on_chunk` as it arrives, so that
/// streamed tokens are seen before the response ends, and stop reading (success) as soon as
/// `on_chunk` answers `Ok(false)`: the answer is complete even if the connection stays open.
pub trait Transport: Sync {
    fn post(
        &self,
        req: &HttpRequest,
        on_chunk: &mut dyn FnMut(&[u8]) -> Result<bool, RemoteError>,
    ) -> Result<HttpOutcome, RemoteError>;
}

pub struct Client<'t> {
    pub transport: &'t dyn Transport,
    pub endpoint: Endpoint,
    pub policy: RetryPolicy,
    pub limits: ResponseLimits,
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
        let mut reader = CompletionReader::with_limits(req.stream, self.limits);
        let outcome = self.transport.post(&http, &mut |bytes| {
            reader.push(bytes)?;
            Ok(!reader.is_done())
        })?;
        match outcome {
            HttpOutcome::Status {
                status,
                location: Some(location),
                ..
            } if (300..400).contains(&status) => Err(RemoteError::Redirect {
                status,
                location: super::redact_url(&location),
            }),
            HttpOutcome::Status {
                status,
                body,
                retry_after,
                ..
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

/// Classifies with `opts.permutations` label orders (`messages` renders the conversation for
/// one order) and averages the answers per label. Fails if any request fails.
pub fn ask(
    client: &Client<'_>,
    labels: &LabelSet,
    opts: &AskOptions,
    messages: &dyn Fn(&[String]) -> Vec<Message>,
) -> Result<AskResult, RemoteError> {
    let requests = build_requests(labels, opts, messages);
    type Job<'a> = Box<dyn FnOnce() -> Result<(Vec<String>, Exchange), RemoteError> + Send + 'a>;
    let jobs: Vec<Job<'_>> = requests
        .into_iter()
        .map(|(order, r)| {
            Box::new(move || client.complete(r).map(|x| (order, x)))
                as Box<dyn FnOnce() -> _ + Send>
        })
        .collect();
    let exchanges = run_bounded(jobs, opts.max_in_flight)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(collect(labels, exchanges))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::remote::ask::permutations;

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
