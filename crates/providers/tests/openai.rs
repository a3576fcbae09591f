//! The OpenAI wire format: what the provider sends upstream. The behaviours shared with the
//! Anthropic provider (retries, timeouts, errors, streams) are in `suite.rs`.

mod common;

use common::*;
use switchyard_providers::{OpenAiProvider, Provider};

#[tokio::test]
async fn sends_the_upstream_model_id_and_a_bearer_key() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "mock")).unwrap();
    p.complete(&request("client-name")).await.unwrap();
    let sent = mock.last_received().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.json()["model"], "mock");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert!(sent.header("x-api-key").is_none());
    assert!(sent.json().get("stream").is_none());
    assert!(sent.json().get("stream_options").is_none());
}

#[tokio::test]
async fn passes_every_field_through() {
    let mock = mock().await;
    let p = OpenAiProvider::new(config(mock.base_url(), "echo")).unwrap();
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
