//! What the request log collects for training the router from traffic: explicit feedback
//! (`POST /v1/feedback`) and, with `[router] record_features`, the router's features of each
//! routed request.

mod common;

use common::{models_dir, start, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

fn question(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "What is 2+2?"}]})
}

async fn post_feedback(gw: &common::Running, body: Value) -> reqwest::Response {
    gw.client
        .post(gw.url("/v1/feedback"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn feedback_is_stored_and_bad_fields_are_named_400s() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let resp = gw.chat(question("large")).await;
    let id = resp.headers()["x-switchyard-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let resp = post_feedback(
        &gw,
        json!({"request_id": id, "score": 0.25, "comment": "missed the point"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"object": "feedback", "request_id": id, "score": 0.25})
    );

    for (body, param) in [
        (json!({"score": 1.0}), "request_id"),
        (json!({"request_id": id, "score": 2.0}), "score"),
        (json!({"request_id": id, "score": "0.5"}), "score"),
        (json!({"request_id": id}), "score"),
    ] {
        let resp = post_feedback(&gw, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(param),
            "{err}"
        );
    }
    let resp = gw
        .client
        .post(gw.url("/v1/feedback"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    gw.stop().await;
    let feedback = switchyard_store::read_feedback(&gw.db).unwrap();
    assert_eq!(feedback.len(), 1, "{feedback:?}");
    assert_eq!(
        (feedback[0].request_id.as_str(), feedback[0].score),
        (id.as_str(), 0.25)
    );
    assert_eq!(feedback[0].comment.as_deref(), Some("missed the point"));
}

#[tokio::test]
async fn feedback_sits_behind_the_api_keys() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "[server]\napi_keys = [\"sk-1\"]\n{}",
        upstream("large", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let body = json!({"request_id": "x", "score": 1});
    assert_eq!(post_feedback(&gw, body.clone()).await.status(), 401);
    let resp = gw
        .client
        .post(gw.url("/v1/feedback"))
        .bearer_auth("sk-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn routed_requests_keep_their_features_when_asked_and_never_their_text() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = |record: bool| {
        format!(
            "[router]\nrecord_features = {record}\n[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n{}",
            models_dir(),
            upstream("large", "openai", &mock.base_url(), "mock")
        )
    };
    let mut gw = start(&config(true)).await;
    assert_eq!(gw.chat(question("auto")).await.status(), 200);
    assert_eq!(gw.chat(question("large")).await.status(), 200);
    let rows = gw.rows().await;
    let auto = rows.iter().find(|r| r.requested_model == "auto").unwrap();
    let embedding = auto
        .embedding
        .as_ref()
        .expect("an auto request's embedding");
    assert_eq!(embedding.len(), 384);
    let norm: f32 = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    assert_eq!(
        auto.cheap_features.as_deref(),
        Some(&switchyard_router::learned::cheap_features("user: What is 2+2?\n")[..])
    );
    let named = rows.iter().find(|r| r.requested_model == "large").unwrap();
    assert_eq!((&named.embedding, &named.cheap_features), (&None, &None));
    // No column of the log holds the conversation.
    let raw = std::fs::read(&gw.db).unwrap();
    assert!(!raw.windows(4).any(|w| w == b"2+2?"));

    let mut off = start(&config(false)).await;
    off.chat(question("auto")).await;
    let rows = off.rows().await;
    assert_eq!(
        (&rows[0].embedding, &rows[0].cheap_features),
        (&None, &None)
    );
}
