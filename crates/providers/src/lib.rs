//! Upstream providers: OpenAI-compatible and Anthropic clients, timeouts, retries.
//!
//! Each provider takes the client's [`ChatRequest`], sends it upstream under its own model id,
//! and answers in OpenAI's wire types whatever the upstream speaks.
//!
//! * Timeouts ([`Timeouts`]): connect (enforced by the shared [`http_client`]), first byte
//!   (response headers, and for streams the first event), idle (between chunks) and total.
//! * Retries ([`RetryPolicy`]): on connection failures, 408/409/429/5xx and timeouts before the
//!   first byte, only before anything has been handed to the caller; `Retry-After` is honoured.
//! * Streams never end silently: a stream that breaks, stalls or ends without the upstream's
//!   end marker yields a final `Err` item.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use switchyard_api::{ChatChunk, ChatRequest, ChatResponse};

mod anthropic;
mod error;
mod openai;
mod transport;

pub use anthropic::AnthropicProvider;
pub use error::{ProviderError, TimeoutPhase};
pub use openai::OpenAiProvider;
pub use transport::{http_client, RetryPolicy, Timeouts};

/// A streamed completion: OpenAI chunks, the usage-only chunk included, and a final `Err` if
/// the stream fails after it started.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// An upstream that answers chat completions.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Non-streamed completion. `req.model` is the client's name; the provider substitutes its
    /// own upstream model id. The response's `model` is what the upstream reported.
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Streamed completion. The provider asks the upstream for usage
    /// (`stream_options.include_usage`) and yields OpenAI chunks, the usage-only chunk
    /// included: the caller decides whether to forward it. Returns once the first chunk has
    /// arrived, so failures before it are errors here (and were retried).
    async fn stream(&self, req: &ChatRequest) -> Result<ChunkStream, ProviderError>;
}

/// How to reach one upstream model.
#[derive(Clone)]
pub struct ProviderConfig {
    /// e.g. `https://api.openai.com/v1` or `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// The model id sent upstream.
    pub model: String,
    pub api_key: Option<String>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// The shared pooled client (see [`http_client`]).
    pub client: reqwest::Client,
}

/// Configuration of an [`OpenAiProvider`].
pub type OpenAiConfig = ProviderConfig;
/// Configuration of an [`AnthropicProvider`].
pub type AnthropicConfig = ProviderConfig;

impl ProviderConfig {
    /// Default timeouts and retries, no key, a new client.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let timeouts = Timeouts::default();
        ProviderConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeouts,
            retry: RetryPolicy::default(),
            client: http_client(timeouts.connect),
        }
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Builds the endpoint `{base_url}/{path}` with JSON content type and the headers `headers`
/// makes from the API key, or the configuration error every call will answer with.
fn endpoint(
    kind: &str,
    cfg: ProviderConfig,
    path: &str,
    headers: impl FnOnce(Option<&str>) -> Result<Vec<(&'static str, HeaderValue)>, String>,
) -> (Arc<str>, Result<Arc<transport::Endpoint>, String>) {
    let base = cfg.base_url.trim_end_matches('/');
    let upstream: Arc<str> = format!("{kind}:{} ({base})", cfg.model).into();
    let built = (|| {
        let url = reqwest::Url::parse(&format!("{base}/{path}"))
            .map_err(|e| format!("base_url `{}` is not a valid URL: {e}", cfg.base_url))?;
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers(cfg.api_key.as_deref())? {
            map.insert(name, value);
        }
        Ok(Arc::new(transport::Endpoint {
            upstream: upstream.clone(),
            url,
            headers: map,
            timeouts: cfg.timeouts,
            retry: cfg.retry,
            client: cfg.client,
        }))
    })();
    (upstream, built)
}

/// A header value made from an API key, marked sensitive so it never shows in debug output.
fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| "the API key has characters not allowed in an HTTP header".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// The endpoint, or the configuration error as a [`ProviderError::Request`].
fn ready<'a>(
    upstream: &Arc<str>,
    endpoint: &'a Result<Arc<transport::Endpoint>, String>,
) -> Result<&'a Arc<transport::Endpoint>, ProviderError> {
    endpoint.as_ref().map_err(|m| ProviderError::Request {
        upstream: upstream.clone(),
        message: m.clone(),
    })
}
