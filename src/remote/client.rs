//! The request/retry loop over a blocking transport, and the ask flow ([`crate::ask`]) driven
//! over it (native: std threads). The browser has its own async loop over the same pieces
//! (`next_step`, the SSE parser, the flow).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::request::{AskOptions, ChatRequest};
use super::response::{
    Completion, RemoteError, RetryPolicy, Retrying, classify, parse_retry_after,
};
use super::sse::{CompletionReader, ResponseLimits};
use super::{Endpoint, HttpRequest};
use crate::ask::{AskError, AskFlow, AskOutcome, AskPlan, Exchange, PlanError, Reply};

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
    pub fn complete(&self, req: ChatRequest) -> Result<Exchange, RemoteError> {
        let start = Instant::now();
        let mut request = Retrying::new(req);
        loop {
            let err = match self.attempt(request.attempt()) {
                Ok(completion) => return Ok(request.succeeded(completion)),
                Err(e) => e,
            };
            if let Some(wait) = request.failed(err, start.elapsed(), &self.policy)? {
                std::thread::sleep(wait);
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

/// Why an ask did not end with an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AskFailure {
    Plan(PlanError),
    Remote(AskError<RemoteError>),
}

impl std::fmt::Display for AskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskFailure::Plan(e) => f.write_str(&e.message),
            AskFailure::Remote(e) => e.fmt(f),
        }
    }
}

/// Runs the whole ask flow of `plan` against the server: every query retried and degraded by
/// [`Client::complete`], at most `plan.max_in_flight` at once.
pub fn ask(
    client: &Client<'_>,
    opts: &AskOptions,
    plan: AskPlan,
) -> Result<AskOutcome, AskFailure> {
    let text_only = plan.text_only;
    let flow = AskFlow::new(plan).map_err(AskFailure::Plan)?;
    crate::ask::drive(flow, &|query| {
        client
            .complete(opts.request(query, text_only))
            .map(Reply::Completion)
    })
    .map_err(AskFailure::Remote)
}
