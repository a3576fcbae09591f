//! The Anthropic wire format: the translation to the Messages API and back to OpenAI's shape.
//! The behaviours shared with the OpenAI provider (retries, timeouts, errors, streams) are in
//! `suite.rs`.

mod common;

use common::*;
use serde_json::json;
use switchyard_api::ChatRequest;
use switchyard_providers::{AnthropicProvider, Provider};

fn provider(mock: &switchyard_mock::MockHandle, model: &str) -> AnthropicProvider {
    AnthropicProvider::new(config(mock.base_url(), model)).unwrap()
}

#[tokio::test]
async fn completes_in_openai_shape() {
    let mock = mock().await;
    let resp = provider(&mock, "mock")
        .complete(&request("client"))
        .await
        .unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("This is a mock answer.")
    );
    assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(resp.id.starts_with("msg_"));
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    let sent = mock.last_received().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("x-api-key"), Some("sk-test"));
    assert!(sent.header("authorization").is_none());
    assert_eq!(sent.json()["max_tokens"], 4096);
    assert_eq!(sent.json()["model"], "mock");
}

#[tokio::test]
async fn streams_in_openai_shape() {
    let mock = mock().await;
    let (chunks, err) = collect(provider(&mock, "mock").stream(&request("c")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        chunks[0].choices[0].delta.role,
        Some(switchyard_api::Role::Assistant)
    );
    assert_eq!(text(&chunks), "This is a mock answer.");
    assert_eq!(finish(&chunks).as_deref(), Some("stop"));
    let usage = chunks.last().unwrap().usage.expect("usage chunk last");
    assert!(usage.prompt_tokens > 0);
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert_eq!(mock.last_received().unwrap().json()["stream"], true);
}

#[tokio::test]
async fn sends_system_and_tools_translated() {
    let mock = mock().await;
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "client", "max_tokens": 100, "stop": ["\n\n", "END"], "top_p": 0.9,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required"
    }))
    .unwrap();
    let resp = provider(&mock, "echo").complete(&req).await.unwrap();
    let sent: serde_json::Value =
        serde_json::from_str(resp.choices[0].message.content.as_deref().unwrap()).unwrap();
    assert_eq!(sent["model"], "echo");
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["max_tokens"], 100);
    assert_eq!(sent["stop_sequences"], json!(["\n\n", "END"]));
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}])
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
}

#[tokio::test]
async fn tool_use_becomes_tool_calls() {
    let mock = mock().await;
    let mut req = request("c");
    req.tools = Some(vec![
        json!({"type": "function", "function": {"name": "lookup"}}),
    ]);
    let p = provider(&mock, "tool-call");
    let resp = p.complete(&req).await.unwrap();
    let msg = &resp.choices[0].message;
    assert_eq!(msg.content.as_deref(), Some("Let me check."));
    let call = &msg.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call["id"], "toolu_mock_1");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "lookup");
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));

    let (chunks, err) = collect(p.stream(&req).await.unwrap()).await;
    assert!(err.is_none());
    let calls: Vec<&serde_json::Value> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .collect();
    assert_eq!(calls[0]["function"]["name"], "lookup");
    assert_eq!(calls[0]["id"], "toolu_mock_1");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let streamed_args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(streamed_args, r#"{"city":"Paris"}"#);
}
