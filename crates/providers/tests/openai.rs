mod common;

use std::time::{Duration, Instant};

use common::*;
use switchyard_api::ErrorKind;
use switchyard_providers::{OpenAiProvider, Provider, ProviderError, TimeoutPhase};

#[tokio::test]
async fn completes_through_the_upstream_model_id() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "mock"));
    let resp = p.complete(&request("client-name")).await.unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("This is a mock answer.")
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    let sent = mock.last_received().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.json()["model"], "mock");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert!(sent.json().get("stream").is_none());
}

#[tokio::test]
async fn streams_with_usage() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "mock"));
    let (chunks, err) = collect(p.stream(&request("client")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text(&chunks), "This is a mock answer.");
    assert_eq!(finish(&chunks).as_deref(), Some("stop"));
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    assert!(last.usage.unwrap().completion_tokens > 0);
    let sent = mock.last_received().unwrap().json();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn passes_every_field_through() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "echo"));
    let mut req: switchyard_api::ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "client-name",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2, "seed": 42, "user": "alice", "stop": ["\n\n"],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "response_format": {"type": "json_object"}, "logit_bias": {"50256": -100}
    }))
    .unwrap();
    let resp = p.complete(&req).await.unwrap();
    let echoed: serde_json::Value =
        serde_json::from_str(resp.choices[0].message.content.as_deref().unwrap()).unwrap();
    assert_eq!(echoed["model"], "echo");
    assert_eq!(echoed["seed"], 42);
    assert_eq!(echoed["user"], "alice");
    assert_eq!(echoed["stop"][0], "\n\n");
    assert_eq!(echoed["tools"][0]["function"]["name"], "lookup");
    assert_eq!(echoed["tool_choice"], "auto");
    assert_eq!(echoed["response_format"]["type"], "json_object");
    assert_eq!(echoed["logit_bias"]["50256"], -100);
    assert_eq!(echoed["messages"][0]["content"], "Be brief.");
    assert_eq!(echoed["temperature"], serde_json::json!(0.2));

    // A stream the client asked for without usage still asks upstream for it.
    req.stream = Some(true);
    let (chunks, err) = collect(p.stream(&req).await.unwrap()).await;
    assert!(err.is_none());
    let echoed: serde_json::Value = serde_json::from_str(&text(&chunks)).unwrap();
    assert_eq!(echoed["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn retries_a_flaky_upstream() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "flaky-2"));
    let resp = p.complete(&request("c")).await.unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("This is a mock answer.")
    );
    assert_eq!(mock.requests(), 3);

    // Streams retry the same way, before the first chunk.
    let p = OpenAiProvider::new(config(mock.base_url(), "flaky-1"));
    let (chunks, err) = collect(p.stream(&request("c")).await.unwrap()).await;
    assert!(err.is_none());
    assert_eq!(text(&chunks), "This is a mock answer.");
    assert_eq!(mock.requests(), 5);
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "ratelimit-1"));
    let t = Instant::now();
    p.complete(&request("c")).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(mock.requests(), 2);
}

#[tokio::test]
async fn exhausted_retries_map_to_502() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "fail-500"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert_eq!(mock.requests(), 3);
    assert!(
        matches!(err, ProviderError::Status { status: 500, .. }),
        "{err:?}"
    );
    let api = err.to_api_error();
    assert_eq!(api.kind, ErrorKind::Upstream);
    assert_eq!(api.status(), 502);
    assert!(
        api.message.contains("HTTP 500") && api.message.contains("mock failure"),
        "{}",
        api.message
    );

    // 4xx other than 408/409/429 are not retried.
    let p = OpenAiProvider::new(config(mock.base_url(), "fail-400"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(mock.requests(), 4);
}

#[tokio::test]
async fn slow_headers_time_out_as_504() {
    let mock = mock().await;
    let mut cfg = config(mock.base_url(), "slow-1000");
    cfg.timeouts.first_byte = Duration::from_millis(100);
    cfg.retry.max_retries = 0;
    let p = OpenAiProvider::new(cfg);
    let t = Instant::now();
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(900));
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
    assert!(err.is_retryable());
    let api = err.to_api_error();
    assert_eq!(api.status(), 504);
    assert_eq!(api.code.as_deref(), Some("upstream_timeout"));
}

#[tokio::test]
async fn total_timeout_bounds_retries() {
    let mock = mock().await;
    let mut cfg = config(mock.base_url(), "slow-300");
    cfg.timeouts.first_byte = Duration::from_millis(100);
    cfg.timeouts.total = Duration::from_millis(250);
    cfg.retry.max_retries = 10;
    let p = OpenAiProvider::new(cfg);
    let t = Instant::now();
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(err.to_api_error().status(), 504);
}

#[tokio::test]
async fn refused_connections_are_502() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = OpenAiProvider::new(config(format!("http://{addr}/v1"), "mock"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    let api = err.to_api_error();
    assert_eq!(api.status(), 502);
    assert!(api.message.contains(&addr.to_string()), "{}", api.message);
    assert!(p.stream(&request("c")).await.is_err());
}

#[tokio::test]
async fn a_broken_stream_ends_with_an_error() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "stream-break-3"));
    let (chunks, err) = collect(p.stream(&request("c")).await.unwrap()).await;
    assert_eq!(chunks.len(), 3);
    let err = err.expect("the stream reports the break");
    assert!(matches!(err, ProviderError::StreamBroken { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.to_api_error().status(), 502);
    assert_eq!(mock.requests(), 1);
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    let mock = mock().await;
    let mut cfg = config(mock.base_url(), "stream-stall-2000");
    cfg.timeouts.idle = Duration::from_millis(150);
    let p = OpenAiProvider::new(cfg);
    let t = Instant::now();
    let (chunks, err) = collect(p.stream(&request("c")).await.unwrap()).await;
    assert!(t.elapsed() < Duration::from_millis(1500));
    assert_eq!(chunks.len(), 1);
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
    assert_eq!(err.to_api_error().status(), 504);
}

#[tokio::test]
async fn non_json_is_a_protocol_error() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "bad-json"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert_eq!(err.to_api_error().status(), 502);
    let err = p.stream(&request("c")).await.err().expect("stream fails");
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert_eq!(mock.requests(), 2);
}

#[tokio::test]
async fn tool_calls_come_back() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "tool-call"));
    let resp = p.complete(&request("c")).await.unwrap();
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let calls = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn a_bad_base_url_is_reported_on_call() {
    let p = OpenAiProvider::new(config("not a url".into(), "mock"));
    let err = p.complete(&request("c")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Request { .. }), "{err:?}");
    assert!(err.to_string().contains("not a valid URL"));
}
