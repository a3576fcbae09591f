//! The gateway's contract, end to end over HTTP, against the mock upstream.

mod common;

use common::{sse_events, start, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

fn question(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "What is 2+2?"}]})
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test]
async fn a_completion_is_answered_with_headers_cost_and_a_log_row() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;

    let resp = gw.chat(question("large")).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-switchyard-model"], "large");
    assert!(h["x-switchyard-route"]
        .to_str()
        .unwrap()
        .starts_with("explicit"));
    let id = h["x-switchyard-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!answer.is_empty());
    let (p, c) = (
        body["usage"]["prompt_tokens"].as_u64().unwrap(),
        body["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    let cost = (2.0 * p as f64 + 10.0 * c as f64) / 1e6;
    let header_cost: f64 = h["x-switchyard-cost-usd"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((header_cost - cost).abs() < 1e-8, "{header_cost} vs {cost}");

    let rows = gw.rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.id, id);
    assert_eq!(
        (row.status, row.model.as_str(), row.requested_model.as_str()),
        (200, "large", "large")
    );
    assert_eq!(
        (row.prompt_tokens as u64, row.completion_tokens as u64),
        (p, c)
    );
    assert!((row.cost_usd - cost).abs() < 1e-12);
    assert!(row.latency_ms >= row.upstream_latency_ms.unwrap());
}

#[tokio::test]
async fn a_models_sampling_defaults_fill_only_what_the_request_leaves_unset() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = upstream("large", "openai", &mock.base_url(), "mock")
        + "defaults = { temperature = 0.2, top_p = 0.9, max_tokens = 64 }\n";
    let gw = start(&config).await;

    assert_eq!(gw.chat(question("large")).await.status(), 200);
    let sent = mock.last_received().unwrap().json();
    assert_eq!(sent["temperature"].as_f64().map(|t| t as f32), Some(0.2));
    assert_eq!(sent["top_p"].as_f64().map(|p| p as f32), Some(0.9));
    assert_eq!(sent["max_tokens"], 64);

    let mut own = question("large");
    own["temperature"] = json!(1.0);
    own["max_completion_tokens"] = json!(10);
    assert_eq!(gw.chat(own).await.status(), 200);
    let sent = mock.last_received().unwrap().json();
    assert_eq!(sent["temperature"], 1.0);
    assert_eq!(sent["max_completion_tokens"], 10);
    assert!(sent.get("max_tokens").is_none_or(Value::is_null), "{sent}");
    assert_eq!(sent["top_p"].as_f64().map(|p| p as f32), Some(0.9));
}

#[tokio::test]
async fn auto_goes_to_the_default_model() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "[router]\ndefault = \"b\"\n{}{}",
        upstream("a", "openai", &mock.base_url(), "mock"),
        upstream("b", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let resp = gw.chat(question("auto")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "b");
}

#[tokio::test]
async fn a_stream_ends_with_usage_and_done_and_is_logged_with_its_tokens() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let mut body = question("large");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_events(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.is_empty());
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);

    let rows = gw.rows().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].stream);
    assert_eq!(
        rows[0].completion_tokens as u64,
        usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(rows[0].cost_usd > 0.0);
    assert!(rows[0].ttft_ms.is_some());
}

#[tokio::test]
async fn a_stream_without_include_usage_carries_no_usage_chunk() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let mut body = question("large");
    body["stream"] = json!(true);
    let events = sse_events(gw.chat(body).await).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert!(v["usage"].is_null(), "unexpected usage in {e}");
    }
    // The gateway still learned the usage for the log.
    assert!(gw.rows().await[0].completion_tokens > 0);
}

#[tokio::test]
async fn a_stream_broken_upstream_ends_with_an_error_event_not_a_silent_truncation() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream(
        "large",
        "openai",
        &mock.base_url(),
        "stream-break-2",
    ))
    .await;
    let mut body = question("large");
    body["stream"] = json!(true);
    let events = sse_events(gw.chat(body).await).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error", "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let rows = gw.rows().await;
    assert_eq!(rows[0].status, 502);
    assert!(rows[0].error.is_some());
}

#[tokio::test]
async fn bad_input_gets_openai_shaped_400s() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let raw = |body: &'static str| {
        gw.client
            .post(gw.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, err) = error_of(raw("{not json").await.unwrap()).await;
    assert_eq!(
        (status, err["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (status, err) = error_of(raw(r#"{"model": 5, "messages": []}"#).await.unwrap()).await;
    assert_eq!(
        (status, err["param"].as_str()),
        (400, Some("model")),
        "{err}"
    );
    let (status, err) = error_of(raw(r#"{"model": "large", "messages": []}"#).await.unwrap()).await;
    assert_eq!((status, err["param"].as_str()), (400, Some("messages")));
    let (status, err) = error_of(
        gw.chat(json!({"model": "large", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, err["param"].as_str()),
        (400, Some("temperature")),
        "{err}"
    );
    let (status, err) = error_of(
        gw.chat(json!({"model": "large", "messages": [{"role": "wizard", "content": "x"}]}))
            .await,
    )
    .await;
    assert_eq!(
        (status, err["param"].as_str()),
        (400, Some("messages[0].role")),
        "{err}"
    );
    // Every one of them is still a row in the log.
    let rows = gw.rows().await;
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.status == 400 && r.error.is_some()));
}

#[tokio::test]
async fn an_unknown_model_is_404_model_not_found() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let (status, err) = error_of(gw.chat(question("gpt-9")).await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("model_not_found"))
    );
    assert!(err["message"].as_str().unwrap().contains("large"));
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected_and_others_are_still_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&format!(
        "[server]\nheader_read_timeout_ms = 300\n{}",
        upstream("large", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The gateway must close the connection itself, well before this test's own deadline.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stalled.read_to_end(&mut rest),
    )
    .await;
    assert!(
        closed.is_ok(),
        "a client stuck in its headers was still connected after 5 s"
    );
    let healthy = gw.client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "[server]\nmax_body_bytes = 1024\n{}",
        upstream("large", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let big =
        json!({"model": "large", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (status, err) = error_of(gw.chat(big).await).await;
    assert_eq!(status, 413);
    assert!(err["message"].as_str().unwrap().contains("max_body_bytes"));
}

#[tokio::test]
async fn api_keys_guard_v1_with_openai_shaped_401s() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&format!(
        "[server]\napi_keys = [\"sk-right\"]\n{}",
        upstream("large", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let send = |key: Option<&'static str>| {
        let mut r = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .json(&question("large"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let (status, err) = error_of(send(None).await.unwrap()).await;
    assert_eq!(
        (status, err["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let (status, _) = error_of(send(Some("sk-wrong")).await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(send(Some("sk-right")).await.unwrap().status(), 200);
    // Health and metrics stay open for probes.
    assert_eq!(
        gw.client
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let statuses: Vec<u16> = gw.rows().await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200]);
}

/// An upstream that closes every connection as soon as it is made, for as long as the test
/// runs (a port bound and released could be taken by another process in between).
async fn hang_up_at_once() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    addr
}

#[tokio::test]
async fn a_dead_upstream_is_502_and_a_slow_one_504() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let closed = format!("http://{}/v1", hang_up_at_once().await);
    let gw = start(&format!(
        "{}{}{}",
        upstream("dead", "openai", &closed, "mock"),
        upstream("failing", "openai", &mock.base_url(), "fail-500"),
        upstream("slow", "openai", &mock.base_url(), "slow-3000"),
    ))
    .await;
    let (status, err) = error_of(gw.chat(question("dead")).await).await;
    assert_eq!(
        (status, err["type"].as_str()),
        (502, Some("upstream_error")),
        "{err}"
    );
    let (status, _) = error_of(gw.chat(question("failing")).await).await;
    assert_eq!(status, 502);
    let (status, err) = error_of(gw.chat(question("slow")).await).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (504, Some("upstream_timeout")),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_model_falls_back_in_order() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&format!(
        "{}fallbacks = [\"also-failing\", \"backup\"]\n{}{}",
        upstream("primary", "openai", &mock.base_url(), "fail-503"),
        upstream("also-failing", "openai", &mock.base_url(), "fail-500"),
        upstream("backup", "openai", &mock.base_url(), "mock"),
    ))
    .await;
    let resp = gw.chat(question("primary")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "backup");
    let route = resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        route.contains("primary failed") && route.contains("fell back to backup"),
        "{route}"
    );
    assert_eq!(gw.rows().await[0].model, "backup");
}

#[tokio::test]
async fn unknown_fields_and_tools_reach_the_upstream() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&upstream("large", "openai", &mock.base_url(), "echo")).await;
    let mut body = question("large");
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    body["tool_choice"] = json!("auto");
    body["response_format"] = json!({"type": "json_object"});
    body["seed"] = json!(7);
    let resp: Value = gw.chat(body).await.json().await.unwrap();
    let sent: Value =
        serde_json::from_str(resp["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(sent["model"], "echo");
    assert_eq!(sent["tools"][0]["function"]["name"], "lookup");
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["response_format"]["type"], "json_object");
    assert_eq!(sent["seed"], 7);
}

#[tokio::test]
async fn models_health_and_metrics_endpoints() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let (_, models) = gw.get_json("/v1/models", None).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["large", "auto"]);
    assert_eq!(
        gw.client
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(gw.chat(question("large")).await.status(), 200);
    let metrics = gw.metrics().await;
    for needle in [
        "switchyard_requests_total{model=\"large\",route=\"explicit\",status=\"200\"} 1",
        "switchyard_request_duration_seconds_count{model=\"large\"} 1",
        "switchyard_upstream_duration_seconds_count{model=\"large\"} 1",
        "switchyard_gateway_overhead_seconds_count 1",
        "switchyard_tokens_total{model=\"large\",kind=\"completion\"}",
        "switchyard_cost_usd_total{model=\"large\",route=\"explicit\",key=\"\"}",
        "switchyard_baseline_cost_usd_total{model=\"large\",route=\"explicit\",key=\"\"}",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let (status, err) = error_of(gw.client.get(gw.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("unknown_url")));
}

#[tokio::test]
async fn a_clean_stop_finishes_in_flight_requests_and_loses_no_row() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "slow-500")).await;
    let mut inflight = Vec::new();
    for _ in 0..20 {
        let req = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .json(&question("large"))
            .send();
        inflight.push(tokio::spawn(req));
    }
    // The stop comes once the upstream holds all 20, each 500 ms from its answer (checked
    // every 5 ms: the mock has no notification to wait on).
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while mock.requests() < 20 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the mock receives all 20 requests");
    let rows = gw.rows().await;
    for r in inflight {
        assert_eq!(r.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.status == 200));
}
