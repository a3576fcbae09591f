use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use switchyard_api::{ApiError, ErrorKind};

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Opening the TCP/TLS connection.
    Connect,
    /// Waiting for the response headers (and, for streams, the first event).
    FirstByte,
    /// Waiting for the next chunk of a response that had started.
    Idle,
    /// The whole request, retries and streaming included.
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "while connecting",
            TimeoutPhase::FirstByte => "waiting for the first byte of the response",
            TimeoutPhase::Idle => "waiting for the next chunk of the response",
            TimeoutPhase::Total => "before the whole request completed",
        })
    }
}

/// What went wrong talking to an upstream. `upstream` names it (kind, base URL, model id).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The request never got a response: connection refused, reset, DNS, TLS.
    #[error("upstream {upstream} could not be reached: {message}")]
    Connect { upstream: Arc<str>, message: String },
    /// A timeout ran out.
    #[error("upstream {upstream} timed out {phase} (limit {}ms)", .after.as_millis())]
    Timeout {
        upstream: Arc<str>,
        phase: TimeoutPhase,
        after: Duration,
    },
    /// The upstream answered with a non-success status.
    #[error("upstream {upstream} answered HTTP {status}: {message}")]
    Status {
        upstream: Arc<str>,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The upstream answered 2xx with something that is not the expected wire format.
    #[error("upstream {upstream} sent a malformed response: {message}")]
    Protocol { upstream: Arc<str>, message: String },
    /// A streamed response broke after it had started.
    #[error("upstream {upstream} stream broke after it started: {message}")]
    StreamBroken { upstream: Arc<str>, message: String },
    /// The request cannot be expressed in the upstream's wire format, or the provider is
    /// misconfigured (bad base URL or API key).
    #[error("request cannot be sent to upstream {upstream}: {message}")]
    Request { upstream: Arc<str>, message: String },
    /// An in-process model failed; `status` is the answer the client should get (429 when its
    /// queue is full, 400 for a request it cannot take, 500 otherwise).
    #[error("local model {model}: {message}")]
    Local {
        model: String,
        status: u16,
        message: String,
    },
}

impl ProviderError {
    /// The error to answer the client with: timeouts are 504 `upstream_timeout`, a request the
    /// upstream format cannot express is 400, everything else is 502 `upstream_failed`.
    pub fn to_api_error(&self) -> ApiError {
        let kind = match self {
            ProviderError::Timeout { .. } => ErrorKind::UpstreamTimeout,
            ProviderError::Request { .. } => ErrorKind::InvalidRequest,
            ProviderError::Local { status: 429, .. } => ErrorKind::RateLimited,
            ProviderError::Local { status: 400, .. } => ErrorKind::InvalidRequest,
            ProviderError::Local { .. } => ErrorKind::Internal,
            _ => ErrorKind::Upstream,
        };
        ApiError::new(kind, self.to_string())
    }

    /// Whether trying again may help: connection failures, 408/409/429/5xx answers, and
    /// timeouts before any byte of the response.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Connect { .. } => true,
            ProviderError::Timeout { phase, .. } => {
                matches!(phase, TimeoutPhase::Connect | TimeoutPhase::FirstByte)
            }
            ProviderError::Status { status, .. } => {
                matches!(status, 408 | 409 | 429) || *status >= 500
            }
            ProviderError::Local { status, .. } => *status == 429,
            ProviderError::Protocol { .. }
            | ProviderError::StreamBroken { .. }
            | ProviderError::Request { .. } => false,
        }
    }

    /// The upstream's HTTP status, when it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The wait the upstream asked for (`Retry-After`), when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
