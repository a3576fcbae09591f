//! Accounting: every request is priced against the baseline model as well as on the model that
//! answered, in the log, in `/metrics` and in `GET /v1/usage`.

mod common;

use common::{models_dir, start, start_with, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

fn question(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

/// `small` and `large` at the mock; `large` costs 2 / 10 USD per million tokens, `small` 0.1 / 0.4.
fn two_models(base_url: &str) -> String {
    let small = upstream("small", "openai", base_url, "mock")
        .replace("input = 2.0, output = 10.0", "input = 0.1, output = 0.4");
    format!("{small}{}", upstream("large", "openai", base_url, "mock"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn each_request_is_priced_on_the_baseline_too_and_usage_sums_it() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&format!(
        "[accounting]\nbaseline = \"large\"\n{}",
        two_models(&mock.base_url())
    ))
    .await;
    for model in ["small", "small", "large"] {
        assert_eq!(gw.chat(question(model)).await.status(), 200);
    }
    let (_, usage) = gw.get_json("/v1/usage?group_by=model", None).await;
    let rows = gw.rows().await;
    let chats: Vec<_> = rows
        .iter()
        .filter(|r| !r.requested_model.is_empty())
        .collect();
    assert_eq!(chats.len(), 3);
    for r in &chats {
        let on_large =
            (2.0 * f64::from(r.prompt_tokens) + 10.0 * f64::from(r.completion_tokens)) / 1e6;
        assert!(r.prompt_tokens > 0 && r.completion_tokens > 0, "{r:?}");
        assert!(close(r.baseline_cost_usd.unwrap(), on_large), "{r:?}");
        assert_eq!(r.route_name.as_deref(), Some("explicit"));
    }
    let small: Vec<_> = chats.iter().filter(|r| r.model == "small").collect();
    let saved: f64 = small
        .iter()
        .map(|r| r.baseline_cost_usd.unwrap() - r.cost_usd)
        .sum();
    assert!(saved > 0.0);

    let groups = usage["data"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{usage}");
    let group = |name: &str| groups.iter().find(|g| g["group"] == name).unwrap();
    assert_eq!(group("small")["requests"], 2);
    assert_eq!(group("large")["requests"], 1);
    assert!(close(group("small")["saved_usd"].as_f64().unwrap(), saved));
    assert!(
        close(group("large")["saved_usd"].as_f64().unwrap(), 0.0),
        "the baseline saves nothing against itself"
    );
    let total = &usage["total"];
    assert_eq!(total["requests"], 3);
    let cost: f64 = chats.iter().map(|r| r.cost_usd).sum();
    assert!(close(total["cost_usd"].as_f64().unwrap(), cost));
    assert!(close(
        total["baseline_cost_usd"].as_f64().unwrap() - total["cost_usd"].as_f64().unwrap(),
        total["saved_usd"].as_f64().unwrap()
    ));
    let tokens: u32 = chats.iter().map(|r| r.prompt_tokens).sum();
    assert_eq!(total["prompt_tokens"], tokens);
}

#[tokio::test]
async fn the_baseline_is_the_priciest_model_when_none_is_named() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&two_models(&mock.base_url())).await;
    assert_eq!(gw.chat(question("small")).await.status(), 200);
    let rows = gw.rows().await;
    let r = rows.iter().find(|r| r.model == "small").unwrap();
    let on_large = (2.0 * f64::from(r.prompt_tokens) + 10.0 * f64::from(r.completion_tokens)) / 1e6;
    assert!(close(r.baseline_cost_usd.unwrap(), on_large));
}

#[tokio::test]
async fn spend_is_attributed_to_the_key_in_usage_and_metrics() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "[server]\napi_keys = [\"first-secret\", \"second-secret\"]\n{}",
        two_models(&mock.base_url())
    ))
    .await;
    for _ in 0..2 {
        let resp = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("second-secret")
            .json(&question("small"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let (_, usage) = gw
        .get_json("/v1/usage?group_by=key", Some("first-secret"))
        .await;
    assert_eq!(usage["data"][0]["group"], "api_keys[1]", "{usage}");
    assert_eq!(usage["data"][0]["requests"], 2);
    let metrics = gw.metrics().await;
    for family in [
        "switchyard_cost_usd_total",
        "switchyard_baseline_cost_usd_total",
    ] {
        let needle = format!("{family}{{model=\"small\",route=\"explicit\",key=\"api_keys[1]\"}}");
        assert!(metrics.contains(&needle), "missing {needle} in\n{metrics}");
    }
    assert!(!metrics.contains("second-secret"));
}

#[tokio::test]
async fn usage_windows_by_time_and_refuses_what_it_cannot_read() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&two_models(&mock.base_url())).await;
    assert_eq!(gw.chat(question("small")).await.status(), 200);
    let (status, all) = gw
        .get_json("/v1/usage?from=2020-01-01&group_by=day", None)
        .await;
    assert_eq!(
        (status, all["total"]["requests"].as_u64()),
        (200, Some(1)),
        "{all}"
    );
    let (_, none) = gw.get_json("/v1/usage?to=2020-01-01T00:00:00Z", None).await;
    assert_eq!(none["total"]["requests"], 0);
    assert_eq!(none["data"], json!([]));
    for (query, param) in [
        ("?group_by=team", "group_by"),
        ("?from=last%20tuesday", "from"),
        ("?since=7d", "since"),
    ] {
        let (status, body) = gw.get_json(&format!("/v1/usage{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn a_cascade_that_escalated_paid_twice_and_saved_less_than_nothing() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nslots = 1\ncontext_tokens = 1024\nprice = {{ input = 1.0, output = 1.0 }}\n{}
[[routes]]
name = \"everything\"
when = {{ min_chars = 0 }}
ladder = [\"tiny\", \"large\"]
cascade = true
confidence_threshold = 1.0
",
        models_dir(),
        upstream("large", "openai", &mock.base_url(), "mock"),
    );
    let mut gw = start_with(&config, &switchyard_server::load_local).await;
    let mut req = question("auto");
    req["max_tokens"] = json!(8);
    assert_eq!(gw.chat(req).await.status(), 200);
    let rows = gw.rows().await;
    let r = rows.iter().find(|r| r.requested_model == "auto").unwrap();
    assert_eq!(r.model, "large", "a threshold of 1 escalates every answer");
    let steps = switchyard_router::logged::read_steps(r.cascade.as_deref()).unwrap();
    let tiny = steps[0].cost_usd.unwrap();
    assert!(tiny > 0.0);
    let baseline = r.baseline_cost_usd.unwrap();
    assert!(close(r.cost_usd - baseline, tiny), "{r:?}");
    assert_eq!(r.route_name.as_deref(), Some("everything"));
}
