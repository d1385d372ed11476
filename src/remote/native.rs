//! Native transport: ureq, blocking, the body read incrementally so streamed chunks are parsed
//! as they arrive.

use std::io::Read;
use std::time::Duration;

use super::HttpRequest;
use super::client::{HttpOutcome, Transport};
use super::response::{MAX_TIMEOUT, RemoteError};

pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// `timeout` bounds each call (connect, send, and reading the whole body); at most
    /// [`MAX_TIMEOUT`] (a longer one would overflow the client's clock arithmetic).
    pub fn new(timeout: Duration) -> Self {
        let timeout = timeout.min(MAX_TIMEOUT);
        let agent = ureq::Agent::config_builder()
            // Statuses are classified by the core, which needs their bodies.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            // A redirect would re-send the body (prompt, images) and the key elsewhere: the
            // core reports it instead.
            .max_redirects(0)
            .user_agent(concat!("emolens/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent }
    }
}

fn transport_error(e: ureq::Error) -> RemoteError {
    match e {
        ureq::Error::Timeout(t) => RemoteError::Transport(format!("timed out ({t})")),
        // ureq's messages may quote the URL: never with its query (tokens, signatures).
        e => RemoteError::Transport(super::redact_urls_in(&e.to_string())),
    }
}

impl Transport for UreqTransport {
    fn post(
        &self,
        req: &HttpRequest,
        on_chunk: &mut dyn FnMut(&[u8]) -> Result<bool, RemoteError>,
    ) -> Result<HttpOutcome, RemoteError> {
        let mut call = self.agent.post(&req.url);
        for (k, v) in &req.headers {
            call = call.header(k, v);
        }
        let resp = call.send(req.body.as_bytes()).map_err(transport_error)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut reader = resp.into_body().into_reader();
        if (200..300).contains(&status) {
            let mut buf = [0u8; 8192];
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| RemoteError::Transport(format!("reading the response: {e}")))?;
                if n == 0 || !on_chunk(&buf[..n])? {
                    return Ok(HttpOutcome::Success);
                }
            }
        }
        // Error bodies are short; cap them so a misbehaving server cannot exhaust memory.
        let mut body = Vec::new();
        let _ = reader.take(64 * 1024).read_to_end(&mut body);
        Ok(HttpOutcome::Status {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            retry_after,
            location,
        })
    }
}
