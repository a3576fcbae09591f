//! What every provider does, whatever wire format it speaks: each behaviour is written once and
//! run against both the OpenAI and the Anthropic provider, both against the mock, which speaks
//! both formats. Translation to and from each wire format is tested in `openai.rs` and
//! `anthropic.rs`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchyard_api::ErrorKind;
use switchyard_providers::{
    AnthropicProvider, OpenAiProvider, Provider, ProviderConfig, ProviderError, SetupError,
    TimeoutPhase,
};

const ANSWER: &str = "This is a mock answer.";

/// The provider under test.
#[derive(Clone, Copy)]
enum Wire {
    OpenAi,
    Anthropic,
}

impl Wire {
    fn try_build(self, cfg: ProviderConfig) -> Result<Box<dyn Provider>, SetupError> {
        Ok(match self {
            Wire::OpenAi => Box::new(OpenAiProvider::new(cfg)?),
            Wire::Anthropic => Box::new(AnthropicProvider::new(cfg)?),
        })
    }

    fn build(self, cfg: ProviderConfig) -> Box<dyn Provider> {
        self.try_build(cfg)
            .expect("the test's configuration is valid")
    }

    /// The provider for the mock model `model` (whose id selects the mock's behaviour).
    fn against(self, mock: &switchyard_mock::MockHandle, model: &str) -> Box<dyn Provider> {
        self.build(config(mock.base_url(), model))
    }

    /// The path the mock saw, and the header carrying the key `sk-test` as the wire sends it.
    fn path(self) -> &'static str {
        match self {
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
        }
    }

    fn key_header(self) -> (&'static str, &'static str) {
        match self {
            Wire::OpenAi => ("authorization", "Bearer sk-test"),
            Wire::Anthropic => ("x-api-key", "sk-test"),
        }
    }
}

/// Instantiates each named behaviour for both providers: `openai::NAME` and `anthropic::NAME`.
macro_rules! for_both_wires {
    ($($behaviour:ident),* $(,)?) => {
        mod openai {
            $(#[tokio::test]
            async fn $behaviour() {
                super::$behaviour(super::Wire::OpenAi).await
            })*
        }
        mod anthropic {
            $(#[tokio::test]
            async fn $behaviour() {
                super::$behaviour(super::Wire::Anthropic).await
            })*
        }
    };
}

for_both_wires!(
    completes_through_the_upstream_model_id,
    streams_with_usage_last,
    maps_finish_reasons,
    tool_calls_come_back,
    retries_a_flaky_upstream,
    rate_limits_honour_retry_after,
    exhausted_retries_map_to_502,
    other_4xx_are_neither_retried_nor_fallen_back_from,
    a_refused_key_is_a_502_that_falls_back,
    slow_headers_time_out_as_504,
    total_timeout_bounds_retries,
    refused_connections_are_502,
    a_broken_stream_ends_with_an_error,
    a_stalled_stream_times_out,
    non_json_is_a_protocol_error,
    a_malformed_base_url_is_refused_at_construction,
    a_key_that_cannot_be_a_header_is_refused_at_construction,
);

async fn completes_through_the_upstream_model_id(wire: Wire) {
    let mock = mock().await;
    let resp = wire
        .against(&mock, "mock")
        .complete(&request("client-name"))
        .await
        .unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(ANSWER));
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    let sent = mock.last_received().unwrap();
    assert_eq!(sent.path, wire.path());
    assert_eq!(sent.json()["model"], "mock");
    let (header, value) = wire.key_header();
    assert_eq!(sent.header(header), Some(value));
    assert_ne!(sent.json()["stream"], true);
}

async fn streams_with_usage_last(wire: Wire) {
    let mock = mock().await;
    let stream = wire.against(&mock, "mock").stream(&request("c")).await;
    let (chunks, err) = collect(stream.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text(&chunks), ANSWER);
    assert_eq!(finish(&chunks).as_deref(), Some("stop"));
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty(), "the usage chunk has no choices");
    let usage = last.usage.expect("usage comes last");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert_eq!(mock.last_received().unwrap().json()["stream"], true);
}

async fn maps_finish_reasons(wire: Wire) {
    let mock = mock().await;
    for (model, want) in [
        ("length", "length"),
        ("stop-seq", "stop"),
        ("tool-call", "tool_calls"),
    ] {
        let p = wire.against(&mock, model);
        let resp = p.complete(&request("c")).await.unwrap();
        assert_eq!(
            resp.choices[0].finish_reason.as_deref(),
            Some(want),
            "{model}"
        );
        let (chunks, err) = collect(p.stream(&request("c")).await.unwrap()).await;
        assert!(err.is_none(), "{model}: {err:?}");
        assert_eq!(finish(&chunks).as_deref(), Some(want), "{model} streamed");
    }
}

async fn tool_calls_come_back(wire: Wire) {
    let mock = mock().await;
    let mut req = request("c");
    req.tools = Some(vec![
        serde_json::json!({"type": "function", "function": {"name": "lookup"}}),
    ]);
    let p = wire.against(&mock, "tool-call");
    let resp = p.complete(&req).await.unwrap();
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let calls = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["name"], "lookup");
    assert_eq!(calls[0]["type"], "function");

    let (chunks, err) = collect(p.stream(&req).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let streamed: Vec<&serde_json::Value> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .collect();
    assert_eq!(streamed[0]["function"]["name"], "lookup");
}

async fn retries_a_flaky_upstream(wire: Wire) {
    let mock = mock().await;
    let resp = wire
        .against(&mock, "flaky-2")
        .complete(&request("c"))
        .await
        .unwrap();
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(ANSWER));
    assert_eq!(mock.requests(), 3, "two 503s, then the answer");

    // Streams retry the same way, before the first chunk.
    let stream = wire.against(&mock, "flaky-1").stream(&request("c")).await;
    let (chunks, err) = collect(stream.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text(&chunks), ANSWER);
    assert_eq!(mock.requests(), 5, "one 503, then the stream");
}

async fn rate_limits_honour_retry_after(wire: Wire) {
    let mock = mock().await;
    let t = Instant::now();
    wire.against(&mock, "ratelimit-1")
        .complete(&request("c"))
        .await
        .unwrap();
    // The backoff alone (1 ms base) would retry at once; the mock's `Retry-After: 1` makes
    // the second attempt wait a second.
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(mock.requests(), 2);
}

async fn exhausted_retries_map_to_502(wire: Wire) {
    let mock = mock().await;
    let err = wire
        .against(&mock, "fail-500")
        .complete(&request("c"))
        .await
        .unwrap_err();
    assert_eq!(mock.requests(), 3, "the attempt and two retries");
    assert!(
        matches!(err, ProviderError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.falls_back());
    let api = err.to_api_error();
    assert_eq!(api.kind, ErrorKind::Upstream);
    assert_eq!(api.status(), 502);
    assert!(
        api.message.contains("HTTP 500") && api.message.contains("mock failure 500"),
        "{}",
        api.message
    );
}

async fn other_4xx_are_neither_retried_nor_fallen_back_from(wire: Wire) {
    let mock = mock().await;
    for (i, status) in [400u16, 404, 422].into_iter().enumerate() {
        let err = wire
            .against(&mock, &format!("fail-{status}"))
            .complete(&request("c"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable() && !err.falls_back(), "{err}");
        assert_eq!(
            mock.requests(),
            i as u64 + 1,
            "HTTP {status} is not retried"
        );
    }
}

async fn a_refused_key_is_a_502_that_falls_back(wire: Wire) {
    let mock = mock().await;
    for (i, status) in [401u16, 403].into_iter().enumerate() {
        let err = wire
            .against(&mock, &format!("fail-{status}"))
            .complete(&request("c"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::Unauthorized { status: s, .. } if s == status),
            "{err:?}"
        );
        assert_eq!(
            mock.requests(),
            i as u64 + 1,
            "a refused key is not retried"
        );
        assert!(err.falls_back(), "another model has its own key");
        let api = err.to_api_error();
        assert_eq!(api.status(), 502);
        let model = format!("fail-{status}");
        assert!(
            api.message.contains(&model)
                && api
                    .message
                    .contains("check the api_key configured for this model"),
            "{}",
            api.message
        );
    }
}

async fn slow_headers_time_out_as_504(wire: Wire) {
    let mock = mock().await;
    // The mock would answer after 5 s: a first-byte limit that did not fire would return it.
    let mut cfg = config(mock.base_url(), "slow-5000");
    cfg.timeouts.first_byte = Duration::from_millis(100);
    cfg.retry.max_retries = 0;
    let t = Instant::now();
    let err = wire.build(cfg).complete(&request("c")).await.unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert!(
        matches!(
            err,
            ProviderError::Timeout {
                phase: TimeoutPhase::FirstByte,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(mock.requests(), 1);
    assert!(err.is_retryable() && err.falls_back());
    let api = err.to_api_error();
    assert_eq!(api.status(), 504);
    assert_eq!(api.code.as_deref(), Some("upstream_timeout"));
}

async fn total_timeout_bounds_retries(wire: Wire) {
    let mock = mock().await;
    let mut cfg = config(mock.base_url(), "slow-5000");
    cfg.timeouts.first_byte = Duration::from_millis(100);
    cfg.timeouts.total = Duration::from_millis(250);
    cfg.retry.max_retries = 10;
    let t = Instant::now();
    let err = wire.build(cfg).complete(&request("c")).await.unwrap_err();
    // Every attempt waits its full 100 ms for the first byte, so no more than three can start
    // within the 250 ms total; without the total limit all eleven would.
    let attempts = mock.requests();
    assert!((1..=3).contains(&attempts), "{attempts} attempts");
    assert!(
        t.elapsed() >= Duration::from_millis(240),
        "{:?}",
        t.elapsed()
    );
    assert!(matches!(err, ProviderError::Timeout { .. }), "{err:?}");
    assert_eq!(err.to_api_error().status(), 504);
}

async fn refused_connections_are_502(wire: Wire) {
    // A socket bound but not listening holds the port, so nothing else can take it, and
    // refuses every connection.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let p = wire.build(config(format!("http://{addr}/v1"), "mock"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable() && err.falls_back());
    let api = err.to_api_error();
    assert_eq!(api.status(), 502);
    assert!(api.message.contains(&addr.to_string()), "{}", api.message);
    let err = p
        .stream(&request("c"))
        .await
        .err()
        .expect("the stream fails");
    assert!(matches!(err, ProviderError::Connect { .. }), "{err:?}");
}

async fn a_broken_stream_ends_with_an_error(wire: Wire) {
    let mock = mock().await;
    let stream = wire
        .against(&mock, "stream-break-3")
        .stream(&request("c"))
        .await;
    let (chunks, err) = collect(stream.unwrap()).await;
    assert!(!chunks.is_empty());
    let partial = text(&chunks);
    assert!(
        ANSWER.starts_with(&partial) && partial.len() < ANSWER.len(),
        "{partial:?}"
    );
    assert_eq!(finish(&chunks), None);
    let err = err.expect("the stream reports the break");
    assert!(matches!(err, ProviderError::StreamBroken { .. }), "{err:?}");
    assert!(!err.is_retryable() && !err.falls_back());
    assert_eq!(err.to_api_error().status(), 502);
    assert_eq!(mock.requests(), 1, "a started stream is not retried");
}

async fn a_stalled_stream_times_out(wire: Wire) {
    let mock = mock().await;
    // The mock resumes after 5 s: an idle limit that did not fire would end the stream whole.
    let mut cfg = config(mock.base_url(), "stream-stall-5000");
    cfg.timeouts.idle = Duration::from_millis(150);
    let t = Instant::now();
    let (chunks, err) = collect(wire.build(cfg).stream(&request("c")).await.unwrap()).await;
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert!(!chunks.is_empty());
    assert_eq!(finish(&chunks), None);
    let err = err.expect("the stall is reported");
    assert!(
        matches!(
            err,
            ProviderError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !err.falls_back(),
        "part of the answer was already handed on"
    );
    assert_eq!(err.to_api_error().status(), 504);
    assert_eq!(mock.requests(), 1);
}

async fn non_json_is_a_protocol_error(wire: Wire) {
    let mock = mock().await;
    let p = wire.against(&mock, "bad-json");
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert!(!err.falls_back());
    assert_eq!(err.to_api_error().status(), 502);
    let err = p.stream(&request("c")).await.err().expect("stream fails");
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert_eq!(mock.requests(), 2, "neither is retried");
}

async fn a_malformed_base_url_is_refused_at_construction(wire: Wire) {
    let err = wire
        .try_build(config("localhost:8080/v1".into(), "mock"))
        .err()
        .expect("no provider");
    assert_eq!(
        err.to_string(),
        "base_url \"localhost:8080/v1\" is not a valid URL: it has no scheme (start it with \
         https:// or http://); write the API's base URL in full, e.g. \"https://api.openai.com/v1\""
    );
    let err = wire
        .try_build(config("http://exa mple.com/v1".into(), "mock"))
        .err()
        .expect("no provider");
    assert!(
        matches!(&err, SetupError::BaseUrl { url, .. } if url == "http://exa mple.com/v1"),
        "{err:?}"
    );
}

async fn a_key_that_cannot_be_a_header_is_refused_at_construction(wire: Wire) {
    let mut cfg = config("http://127.0.0.1:9/v1".into(), "mock");
    cfg.api_key = Some("sk-test\n".into());
    let err = wire.try_build(cfg).err().expect("no provider");
    assert_eq!(err, SetupError::ApiKey);
    assert!(err.to_string().contains("trailing newline"), "{err}");
}
