//! What both providers share: the HTTP client, timeouts, retries and the SSE reader.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use switchyard_api::ChatChunk;
use tokio::time::{timeout_at, Instant};

use crate::{ChunkStream, ProviderError, TimeoutPhase};

/// How long to wait, per phase of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection. The shared client enforces it: build it with
    /// [`http_client`]`(timeouts.connect)`.
    pub connect: Duration,
    /// From sending the request to the response headers (and, for streams, the first event).
    pub first_byte: Duration,
    /// Between two chunks of a response that has started.
    pub idle: Duration,
    /// The whole call, retries and the full stream included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        }
    }
}

/// Retries of failed attempts (see [`ProviderError::is_retryable`]), only ever before any byte
/// of the response has been handed to the caller. Waits are exponential backoff with full
/// jitter (`random(0..=min(max, base·2^attempt))`), or the upstream's `Retry-After` capped at
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt + 1` after `err`.
    fn wait(&self, attempt: u32, err: &ProviderError) -> Duration {
        if let Some(asked) = err.retry_after() {
            return asked.min(self.max);
        }
        let cap = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max);
        let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=cap_us))
    }
}

/// One pooled HTTP client for all providers: keep-alive, idle connections kept 90 s, Nagle off.
pub fn http_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(60))
        .build()
        // Building fails only when the TLS backend cannot initialise, which is a broken build,
        // not a runtime condition.
        .expect("the HTTP client's TLS backend failed to initialise")
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An upstream endpoint, ready to post to.
pub(crate) struct Endpoint {
    pub upstream: Arc<str>,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub client: reqwest::Client,
}

impl Endpoint {
    pub fn total_deadline(&self, start: Instant) -> Instant {
        start + self.timeouts.total
    }

    /// Runs `attempt` until it succeeds, fails for good, or retries run out.
    pub async fn with_retries<T, F, Fut>(
        &self,
        start: Instant,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let deadline = self.total_deadline(start);
        let mut n = 0;
        loop {
            let err = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if n >= self.retry.max_retries || !err.is_retryable() {
                return Err(err);
            }
            let wait = self.retry.wait(n, &err);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            tokio::time::sleep(wait).await;
            n += 1;
        }
    }

    /// Posts `body` and waits for a success status. Returns the response and the deadline for
    /// its first byte of body.
    pub async fn send(
        &self,
        body: Bytes,
        start: Instant,
    ) -> Result<(reqwest::Response, Instant), ProviderError> {
        let (deadline, phase) = self.first_byte_deadline(start);
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send();
        let resp = match timeout_at(deadline, request).await {
            Err(_) => return Err(self.timeout(phase)),
            Ok(Err(e)) => return Err(self.transport_error(&e)),
            Ok(Ok(resp)) => resp,
        };
        if resp.status().is_success() {
            return Ok((resp, deadline));
        }
        Err(self.status_error(resp, start).await)
    }

    fn first_byte_deadline(&self, start: Instant) -> (Instant, TimeoutPhase) {
        earliest(
            (
                Instant::now() + self.timeouts.first_byte,
                TimeoutPhase::FirstByte,
            ),
            (self.total_deadline(start), TimeoutPhase::Total),
        )
    }

    /// The deadline for the next chunk of a started response.
    pub fn idle_deadline(&self, start: Instant) -> (Instant, TimeoutPhase) {
        earliest(
            (Instant::now() + self.timeouts.idle, TimeoutPhase::Idle),
            (self.total_deadline(start), TimeoutPhase::Total),
        )
    }

    pub fn timeout(&self, phase: TimeoutPhase) -> ProviderError {
        let after = match phase {
            TimeoutPhase::Connect => self.timeouts.connect,
            TimeoutPhase::FirstByte => self.timeouts.first_byte,
            TimeoutPhase::Idle => self.timeouts.idle,
            TimeoutPhase::Total => self.timeouts.total,
        };
        ProviderError::Timeout {
            upstream: self.upstream.clone(),
            phase,
            after,
        }
    }

    /// An error from reqwest before the response arrived.
    fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        if e.is_connect() && e.is_timeout() {
            return self.timeout(TimeoutPhase::Connect);
        }
        ProviderError::Connect {
            upstream: self.upstream.clone(),
            message: error_chain(e),
        }
    }

    pub fn protocol(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Protocol {
            upstream: self.upstream.clone(),
            message: message.into(),
        }
    }

    pub fn broken(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::StreamBroken {
            upstream: self.upstream.clone(),
            message: message.into(),
        }
    }

    /// Reads a whole (non-streamed) body within the idle and total limits.
    pub async fn read_body(
        &self,
        resp: reqwest::Response,
        start: Instant,
    ) -> Result<Bytes, ProviderError> {
        let (deadline, phase) = self.idle_deadline(start);
        match timeout_at(deadline, resp.bytes()).await {
            Err(_) => Err(self.timeout(phase)),
            Ok(Err(e)) => {
                Err(self.broken(format!("the response body broke off: {}", error_chain(&e))))
            }
            Ok(Ok(b)) => Ok(b),
        }
    }

    /// Turns a non-success response into [`ProviderError::Status`] (or
    /// [`ProviderError::Unauthorized`] for 401/403), with the upstream's own
    /// message when its body has one (`{"error": {"message": …}}`, OpenAI's and Anthropic's shape).
    async fn status_error(&self, resp: reqwest::Response, start: Instant) -> ProviderError {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let reason = resp.status().canonical_reason().unwrap_or("error");
        let (deadline, _) = self.idle_deadline(start);
        let message = match timeout_at(deadline, resp.bytes()).await {
            Ok(Ok(body)) => error_message(&body).unwrap_or_else(|| reason.to_owned()),
            _ => reason.to_owned(),
        };
        if matches!(status, 401 | 403) {
            return ProviderError::Unauthorized {
                upstream: self.upstream.clone(),
                status,
                message,
            };
        }
        ProviderError::Status {
            upstream: self.upstream.clone(),
            status,
            message,
            retry_after,
        }
    }

    /// Starts reading a streamed response as server-sent events.
    pub fn events<T: Translate>(
        self: &Arc<Self>,
        resp: reqwest::Response,
        first_deadline: Instant,
        start: Instant,
        translate: T,
    ) -> SseReader<T> {
        SseReader {
            events: Box::pin(resp.bytes_stream().eventsource()),
            translate,
            pending: VecDeque::new(),
            endpoint: Arc::clone(self),
            start,
            first_deadline: Some(first_deadline),
            state: ReadState::Reading,
        }
    }
}

fn earliest(a: (Instant, TimeoutPhase), b: (Instant, TimeoutPhase)) -> (Instant, TimeoutPhase) {
    if b.0 < a.0 {
        b
    } else {
        a
    }
}

/// The error and its causes, joined: reqwest's own message alone says little.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

/// `error.message` from an error body, or the body itself (cut short) when it is not JSON.
fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let err = &v["error"];
        if let Some(m) = err["message"].as_str().or_else(|| err.as_str()) {
            return Some(m.to_owned());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(300).collect())
}

/// Why a translator rejected an event.
pub(crate) enum EventError {
    /// Not the expected wire format.
    Malformed(String),
    /// The upstream reported an error inside the stream.
    Upstream(String),
}

/// Turns one wire format's events into OpenAI chunks.
pub(crate) trait Translate: Send + 'static {
    /// What a complete stream ends with, for the error when it ends without it.
    const END: &'static str;
    /// Handles one event, pushing any chunks it yields to `out`; `Ok(true)` when the stream is
    /// complete.
    fn event(&mut self, event: Event, out: &mut VecDeque<ChatChunk>) -> Result<bool, EventError>;
}

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

enum ReadState {
    Reading,
    /// The upstream said the stream is complete; hand out what is pending.
    Complete,
    /// Nothing more will come.
    Finished,
}

/// Reads a streamed response: each poll waits within the first-byte (first event), idle and
/// total limits, and any failure becomes one final `Err` item.
pub(crate) struct SseReader<T> {
    events: Events,
    translate: T,
    pending: VecDeque<ChatChunk>,
    endpoint: Arc<Endpoint>,
    start: Instant,
    first_deadline: Option<Instant>,
    state: ReadState,
}

impl<T: Translate> SseReader<T> {
    pub async fn next(&mut self) -> Option<Result<ChatChunk, ProviderError>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(Ok(chunk));
            }
            match self.state {
                ReadState::Reading => {}
                ReadState::Complete => {
                    self.state = ReadState::Finished;
                    self.drain().await;
                    return None;
                }
                ReadState::Finished => return None,
            }
            let (deadline, phase) = match self.first_deadline.take() {
                Some(d) => (d, TimeoutPhase::FirstByte),
                None => self.endpoint.idle_deadline(self.start),
            };
            let err = match timeout_at(deadline, self.events.next()).await {
                Err(_) => self.endpoint.timeout(phase),
                Ok(None) => self
                    .endpoint
                    .broken(format!("the stream ended without {}", T::END)),
                Ok(Some(Err(e))) => self.endpoint.broken(match e {
                    EventStreamError::Transport(e) => error_chain(&e),
                    other => other.to_string(),
                }),
                Ok(Some(Ok(event))) => match self.translate.event(event, &mut self.pending) {
                    Ok(done) => {
                        if done {
                            self.state = ReadState::Complete;
                        }
                        continue;
                    }
                    Err(EventError::Malformed(m)) => self.endpoint.protocol(m),
                    Err(EventError::Upstream(m)) => self
                        .endpoint
                        .broken(format!("the upstream reported an error: {m}")),
                },
            };
            self.state = ReadState::Finished;
            return Some(Err(err));
        }
    }

    /// Reads the body to its end (briefly) so the connection goes back to the pool.
    async fn drain(&mut self) {
        let limit = Instant::now() + Duration::from_millis(50);
        let _ = timeout_at(limit, async {
            while let Some(Ok(_)) = self.events.next().await {}
        })
        .await;
    }

    /// Waits for the first chunk, so failures before it can be retried; then the rest.
    pub async fn start(mut self) -> Result<ChunkStream, ProviderError> {
        let first = match self.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(e),
            None => return Err(self.endpoint.broken("the stream ended before any chunk")),
        };
        let rest = futures::stream::unfold(self, |mut reader| async move {
            reader.next().await.map(|item| (item, reader))
        });
        Ok(Box::pin(
            futures::stream::once(async { Ok(first) }).chain(rest),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(28) && wait <= Duration::from_secs(30));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_has_full_jitter_under_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        let connect = ProviderError::Connect {
            upstream: "u".into(),
            message: "refused".into(),
        };
        for attempt in 0..6 {
            let cap = Duration::from_millis(100 * 2u64.pow(attempt)).min(policy.max);
            for _ in 0..50 {
                assert!(policy.wait(attempt, &connect) <= cap);
            }
        }
        let limited = |secs| ProviderError::Status {
            upstream: "u".into(),
            status: 429,
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(policy.wait(0, &limited(0)), Duration::ZERO);
        assert_eq!(policy.wait(0, &limited(60)), policy.max);
    }
}
