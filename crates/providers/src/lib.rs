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
pub use error::{ProviderError, SetupError, TimeoutPhase};
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
/// makes from the API key.
fn endpoint(
    kind: &str,
    cfg: ProviderConfig,
    path: &str,
    headers: impl FnOnce(Option<&str>) -> Result<Vec<(&'static str, HeaderValue)>, SetupError>,
) -> Result<Arc<transport::Endpoint>, SetupError> {
    let base = base_url(&cfg.base_url)?;
    if let Some(warning) = suffix_warning(&base, path) {
        tracing::warn!(model = %cfg.model, "{warning}");
    }
    let url = base
        .join(path)
        .map_err(|e| bad_url(&cfg.base_url, e.to_string()))?;
    let upstream: Arc<str> = format!(
        "{kind}:{} ({})",
        cfg.model,
        cfg.base_url.trim_end_matches('/')
    )
    .into();
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers(cfg.api_key.as_deref())? {
        map.insert(name, value);
    }
    Ok(Arc::new(transport::Endpoint {
        upstream,
        url,
        headers: map,
        timeouts: cfg.timeouts,
        retry: cfg.retry,
        client: cfg.client,
    }))
}

fn bad_url(url: &str, reason: impl Into<String>) -> SetupError {
    SetupError::BaseUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `base_url` as an absolute http(s) URL whose path ends in `/`, so that joining the
/// endpoint's path keeps every segment of it.
fn base_url(raw: &str) -> Result<reqwest::Url, SetupError> {
    if !raw.contains("://") {
        return Err(bad_url(
            raw,
            "it has no scheme (start it with https:// or http://)",
        ));
    }
    let mut url = reqwest::Url::parse(raw).map_err(|e| bad_url(raw, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad_url(
            raw,
            format!("its scheme is `{}`, not http or https", url.scheme()),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad_url(
            raw,
            "it has a query or fragment, which the endpoint's path would follow",
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A warning when `base` already ends with the `path` the provider appends (as TensorZero's
/// `check_api_base_suffix` warns): `…/v1/chat/completions` would be posted to
/// `…/v1/chat/completions/chat/completions`.
fn suffix_warning(base: &reqwest::Url, path: &str) -> Option<String> {
    let trimmed = base.path().trim_end_matches('/');
    trimmed.ends_with(&format!("/{path}")).then(|| {
        format!(
            "base_url \"{base}\" ends with /{path}, which the provider appends itself: requests go to {base}{path}; \
             remove /{path} from base_url unless the upstream really serves that path"
        )
    })
}

/// A header value made from an API key, marked sensitive so it never shows in debug output.
fn secret_header(value: &str) -> Result<HeaderValue, SetupError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| SetupError::ApiKey)?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_url(base: &str, path: &str) -> Result<String, SetupError> {
        let cfg = ProviderConfig::new(base, "m");
        endpoint("openai", cfg, path, |_| Ok(Vec::new())).map(|e| e.url.to_string())
    }

    #[test]
    fn the_path_is_appended_to_every_segment_of_the_base_url() {
        for base in ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"] {
            assert_eq!(
                endpoint_url(base, "chat/completions").unwrap(),
                "http://127.0.0.1:9/v1/chat/completions"
            );
        }
        assert_eq!(
            endpoint_url("https://example.com", "messages").unwrap(),
            "https://example.com/messages"
        );
    }

    #[test]
    fn a_base_url_without_a_scheme_says_so() {
        assert_eq!(
            endpoint_url("api.openai.com/v1", "chat/completions").unwrap_err().to_string(),
            "base_url \"api.openai.com/v1\" is not a valid URL: it has no scheme (start it with \
             https:// or http://); write the API's base URL in full, e.g. \"https://api.openai.com/v1\""
        );
    }

    #[test]
    fn other_malformed_base_urls_are_refused() {
        let reason = |base: &str| match endpoint_url(base, "messages") {
            Err(SetupError::BaseUrl { reason, .. }) => reason,
            other => panic!("{base}: {other:?}"),
        };
        assert_eq!(
            reason("ftp://example.com/v1"),
            "its scheme is `ftp`, not http or https"
        );
        assert_eq!(
            reason("http://exa mple.com/v1"),
            "invalid international domain name"
        );
        assert_eq!(reason("http://:80/v1"), "empty host");
        assert_eq!(
            reason("http://example.com/v1?key=x"),
            "it has a query or fragment, which the endpoint's path would follow"
        );
    }

    #[test]
    fn a_base_url_ending_in_the_endpoint_path_is_warned_about() {
        let base = base_url("https://api.openai.com/v1/chat/completions").unwrap();
        let warning = suffix_warning(&base, "chat/completions").unwrap();
        assert!(
            warning.contains(
                "requests go to https://api.openai.com/v1/chat/completions/chat/completions"
            ),
            "{warning}"
        );
        let base = base_url("https://api.anthropic.com/v1/messages/").unwrap();
        assert!(suffix_warning(&base, "messages").is_some());
        let base = base_url("https://api.openai.com/v1").unwrap();
        assert_eq!(suffix_warning(&base, "chat/completions"), None);
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused() {
        assert_eq!(secret_header("sk-abc\n"), Err(SetupError::ApiKey));
        assert!(secret_header("sk-abc").unwrap().is_sensitive());
    }
}
