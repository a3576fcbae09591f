//! A local model reports, as OpenAI does, how many prompt tokens its prefix cache served:
//! `usage.prompt_tokens_details.cached_tokens`, in whole answers and in a stream's usage chunk.

mod common;

use common::{models_dir, sse_events, start_with};
use serde_json::{json, Value};

fn one_slot_tiny() -> String {
    format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nslots = 1\ncontext_tokens = 1024\nthreads = 2\n",
        models_dir()
    )
}

fn conversation(system: &str, user: &str) -> Value {
    json!([{"role": "system", "content": system}, {"role": "user", "content": user}])
}

async fn usage(gw: &common::Running, messages: &Value) -> Value {
    let resp = gw
        .chat(json!({"model": "tiny", "max_tokens": 2, "temperature": 0, "messages": messages}))
        .await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["usage"].clone()
}

fn cached(usage: &Value) -> u64 {
    usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .expect("a local answer reports its cached prompt tokens")
}

#[tokio::test]
async fn a_repeated_prompt_is_served_from_the_cache_but_its_last_token() {
    let gw = start_with(&one_slot_tiny(), &switchyard_server::load_local).await;
    let messages = conversation("You answer in one word.", "Name a colour.");
    let first = usage(&gw, &messages).await;
    assert_eq!(cached(&first), 0, "a fresh slot holds nothing: {first}");
    let again = usage(&gw, &messages).await;
    let prompt = again["prompt_tokens"].as_u64().unwrap();
    // The last prompt token is always decoded again: its logits give the first answer token.
    assert_eq!(cached(&again), prompt - 1, "{again}");
}

#[tokio::test]
async fn a_shared_system_prompt_is_cached_and_a_different_one_is_not() {
    let gw = start_with(&one_slot_tiny(), &switchyard_server::load_local).await;
    let system = "You are the support assistant of a bank. Answer politely and briefly.";
    usage(&gw, &conversation(system, "Hello.")).await;
    let same_system = usage(&gw, &conversation(system, "When do branches open?")).await;
    let other_system = usage(&gw, &conversation("Reply in French.", "Bonjour.")).await;
    let (shared, other) = (cached(&same_system), cached(&other_system));
    assert!(
        shared > other && shared < same_system["prompt_tokens"].as_u64().unwrap(),
        "same system prompt: {same_system}; another one: {other_system}"
    );
}

#[tokio::test]
async fn a_stream_reports_its_cached_prompt_tokens_in_the_usage_chunk() {
    let gw = start_with(&one_slot_tiny(), &switchyard_server::load_local).await;
    let messages = conversation("You answer in one word.", "Name a colour.");
    usage(&gw, &messages).await;
    let resp = gw
        .chat(
            json!({"model": "tiny", "max_tokens": 2, "temperature": 0, "messages": messages,
                     "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    let usage = sse_events(resp)
        .await
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| !v["usage"].is_null())
        .expect("a usage chunk")["usage"]
        .clone();
    assert_eq!(
        cached(&usage),
        usage["prompt_tokens"].as_u64().unwrap() - 1,
        "{usage}"
    );
}
