//! The cascade: the small local model answers first; its calibrated confidence decides
//! whether that answer is kept or the request climbs the ladder.

mod common;

use common::{models_dir, start_with, upstream};
use serde_json::{json, Value};
use switchyard_mock::{MockConfig, ANSWER};

/// tiny (local) → large (mock), cascading on every request at `threshold`.
async fn gateway(threshold: f64) -> (common::Running, switchyard_mock::MockHandle) {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nslots = 2\ncontext_tokens = 1024\nprice = {{ input = 1.0, output = 1.0 }}\n{}
[[routes]]
name = \"everything\"
when = {{ min_chars = 0 }}
ladder = [\"tiny\", \"large\"]
cascade = true
confidence_threshold = {threshold}
",
        models_dir(),
        upstream("large", "openai", &mock.base_url(), "mock"),
    );
    (
        start_with(&config, &switchyard_server::load_local).await,
        mock,
    )
}

fn question(stream: bool) -> Value {
    json!({"model": "auto", "max_tokens": 6, "stream": stream,
           "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confident_small_answer_is_kept_without_the_logprobs_it_was_judged_by() {
    let (mut gw, mock) = gateway(0.0).await;
    let resp = gw.chat(question(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let route = resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        route.contains("cascade: tiny confidence") && route.ends_with(">= 0.00, kept"),
        "{route}"
    );
    let body: Value = resp.json().await.unwrap();
    assert!(body["choices"][0]["logprobs"].is_null());
    assert_eq!(mock.requests(), 0);
    let rows = gw.rows().await;
    let scores: Value = serde_json::from_str(rows[0].scores.as_deref().unwrap()).unwrap();
    let p = scores["confidence.tiny"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsure_small_answer_escalates_and_the_log_keeps_why() {
    let (mut gw, mock) = gateway(1.0).await;
    let resp = gw.chat(question(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    let route = resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(route.contains("< 1.00, escalated"), "{route}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(mock.requests(), 1);
    let rows = gw.rows().await;
    assert_eq!(rows[0].model, "large");
    assert!(rows[0]
        .scores
        .as_deref()
        .unwrap()
        .contains("confidence.tiny"));
    // The small model's tokens were spent too: the cost counts both rungs.
    let large_only =
        (2.0 * rows[0].prompt_tokens as f64 + 10.0 * rows[0].completion_tokens as f64) / 1e6;
    assert!(rows[0].cost_usd > large_only);
}

async fn events(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_are_held_until_judged_then_replayed_or_escalated_live() {
    let (gw, _mock) = gateway(0.0).await;
    let mut body = question(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(body.clone()).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let ev = events(resp).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6);

    let (gw, _mock) = gateway(1.0).await;
    let resp = gw.chat(body).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    let ev = events(resp).await;
    let text: String = ev[..ev.len() - 1]
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, ANSWER);
}
