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

/// Why a provider cannot be built from its configuration: found at startup, so that a model
/// that could never answer stops the gateway from starting instead of failing every request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// `base_url` is not an absolute http(s) URL.
    #[error("base_url \"{url}\" is not a valid URL: {reason}; write the API's base URL in full, e.g. \"https://api.openai.com/v1\"")]
    BaseUrl { url: String, reason: String },
    /// The API key cannot be sent as an HTTP header value.
    #[error("api_key has characters an HTTP header cannot carry (a line break or other control character, often a key file's trailing newline); remove them")]
    ApiKey,
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
    /// The upstream refused the API key (HTTP 401 or 403): the key configured for this model is
    /// missing, wrong, or lacks access to the model.
    #[error("upstream {upstream} refused the API key (HTTP {status}: {message}); check the api_key configured for this model")]
    Unauthorized {
        upstream: Arc<str>,
        status: u16,
        message: String,
    },
    /// The upstream answered 2xx with something that is not the expected wire format.
    #[error("upstream {upstream} sent a malformed response: {message}")]
    Protocol { upstream: Arc<str>, message: String },
    /// A streamed response broke after it had started.
    #[error("upstream {upstream} stream broke after it started: {message}")]
    StreamBroken { upstream: Arc<str>, message: String },
    /// The request cannot be expressed in the upstream's wire format.
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
            ProviderError::Unauthorized { .. }
            | ProviderError::Protocol { .. }
            | ProviderError::StreamBroken { .. }
            | ProviderError::Request { .. } => false,
        }
    }

    /// Whether another model (a configured fallback) may answer after this error.
    ///
    /// Every error [`is_retryable`](Self::is_retryable) falls back, and so does an upstream's
    /// refusal of the API key ([`ProviderError::Unauthorized`], HTTP 401/403): retrying the same
    /// upstream cannot help, but another upstream has its own key. Errors that say the request
    /// itself is wrong (other 4xx answers, a request the wire format cannot express) do not fall
    /// back, since every model would refuse it alike; nor do malformed responses and streams
    /// that broke after they started, whose answer may already be partly delivered.
    pub fn falls_back(&self) -> bool {
        self.is_retryable() || matches!(self, ProviderError::Unauthorized { .. })
    }

    /// The upstream's HTTP status, when it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Status { status, .. } | ProviderError::Unauthorized { status, .. } => {
                Some(*status)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> ProviderError {
        ProviderError::Status {
            upstream: "openai:m (http://u)".into(),
            status,
            message: "no".into(),
            retry_after: None,
        }
    }

    fn unauthorized(status: u16) -> ProviderError {
        ProviderError::Unauthorized {
            upstream: "openai:m (http://u)".into(),
            status,
            message: "invalid api key".into(),
        }
    }

    fn timeout(phase: TimeoutPhase) -> ProviderError {
        ProviderError::Timeout {
            upstream: "u".into(),
            phase,
            after: Duration::from_secs(1),
        }
    }

    fn local(status: u16) -> ProviderError {
        ProviderError::Local {
            model: "small".into(),
            status,
            message: "m".into(),
        }
    }

    #[test]
    fn everything_retryable_falls_back() {
        let retryable = [
            ProviderError::Connect {
                upstream: "u".into(),
                message: "refused".into(),
            },
            timeout(TimeoutPhase::Connect),
            timeout(TimeoutPhase::FirstByte),
            status(408),
            status(409),
            status(429),
            status(500),
            status(503),
            local(429),
        ];
        for e in retryable {
            assert!(e.is_retryable() && e.falls_back(), "{e}");
        }
    }

    #[test]
    fn a_refused_key_falls_back_but_is_not_retried() {
        for e in [unauthorized(401), unauthorized(403)] {
            assert!(!e.is_retryable(), "{e}");
            assert!(e.falls_back(), "{e}");
        }
    }

    #[test]
    fn a_wrong_request_or_a_broken_answer_does_not_fall_back() {
        let final_errors = [
            status(400),
            status(404),
            status(422),
            ProviderError::Request {
                upstream: "u".into(),
                message: "cannot be expressed".into(),
            },
            ProviderError::Protocol {
                upstream: "u".into(),
                message: "not JSON".into(),
            },
            ProviderError::StreamBroken {
                upstream: "u".into(),
                message: "reset".into(),
            },
            timeout(TimeoutPhase::Idle),
            timeout(TimeoutPhase::Total),
            local(400),
            local(500),
        ];
        for e in final_errors {
            assert!(!e.is_retryable() && !e.falls_back(), "{e}");
        }
    }

    #[test]
    fn a_refused_key_is_a_502_that_says_to_check_the_key() {
        let api = unauthorized(401).to_api_error();
        assert_eq!(api.status(), 502);
        assert_eq!(
            api.message,
            "upstream openai:m (http://u) refused the API key (HTTP 401: invalid api key); \
             check the api_key configured for this model"
        );
        assert_eq!(unauthorized(403).status(), Some(403));
    }
}
