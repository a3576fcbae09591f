//! The cascade: the small local model answers first; its calibrated confidence decides
//! whether that answer is kept or the request climbs the ladder.

mod common;

use common::{models_dir, sse_events, start_with, streamed_text, upstream};
use serde_json::{json, Value};
use switchyard_mock::{MockConfig, ANSWER};
use switchyard_router::confidence::Calibration;

/// tiny (local) → large (mock), cascading on every request at `threshold`.
async fn gateway(threshold: f64) -> (common::Running, switchyard_mock::MockHandle) {
    gateway_with(threshold, "").await
}

/// The same gateway with a calibration fitted on the first `k` tokens (the builtin's weights,
/// marked as a prefix calibration): the cascade judges tiny on the first `k` tokens it streams.
async fn prefix_gateway(
    threshold: f64,
    k: usize,
) -> (common::Running, switchyard_mock::MockHandle) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefix.json");
    let mut calibration = Calibration::builtin();
    calibration.prefix_tokens = Some(k);
    calibration.save(&path).unwrap();
    let router = format!("[router]\ncalibration = {:?}\n", path.display().to_string());
    gateway_with(threshold, &router).await
}

async fn gateway_with(
    threshold: f64,
    router: &str,
) -> (common::Running, switchyard_mock::MockHandle) {
    gateway_of("tiny.gguf", threshold, router).await
}

/// The cascade gateway with `file` (in the models folder) as its first rung, `tiny`.
async fn gateway_of(
    file: &str,
    threshold: f64,
    router: &str,
) -> (common::Running, switchyard_mock::MockHandle) {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "{router}[models.tiny]\nprovider = \"local\"\npath = \"{}/{file}\"\nslots = 2\ncontext_tokens = 1024\nprice = {{ input = 1.0, output = 1.0 }}\n{}
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
    assert!(small_rung_cost(&rows[0]) > 0.0);
}

/// What a request escalated to `large` cost beyond the large model's own price (2 and 10 USD
/// per million prompt and completion tokens): the small rung's tokens.
fn small_rung_cost(row: &switchyard_store::RequestRecord) -> f64 {
    let large_only = (2.0 * row.prompt_tokens as f64 + 10.0 * row.completion_tokens as f64) / 1e6;
    row.cost_usd - large_only
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_are_held_until_judged_then_replayed_or_escalated_live() {
    let (gw, _mock) = gateway(0.0).await;
    let mut body = question(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(body.clone()).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let ev = sse_events(resp).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6);

    let (gw, _mock) = gateway(1.0).await;
    let resp = gw.chat(body).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    let ev = sse_events(resp).await;
    assert_eq!(streamed_text(&ev), ANSWER);
}

/// A greedy question long enough that tiny's answer runs past the judged prefix.
fn long_question(stream: bool, model: &str) -> Value {
    json!({"model": model, "max_tokens": 12, "temperature": 0.0, "stream": stream,
           "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

/// The chunks' content, in order, and the parsed chunks (`[DONE]` left out).
fn content_of(ev: &[String]) -> (String, Vec<Value>) {
    let chunks: Vec<Value> = ev
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (text, chunks)
}

fn route(resp: &reqwest::Response) -> String {
    resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_judged_stream_that_is_kept_carries_the_small_models_whole_answer() {
    let (mut gw, mock) = prefix_gateway(0.0, 3).await;
    let direct: Value = gw
        .chat(long_question(false, "tiny"))
        .await
        .json()
        .await
        .unwrap();
    let whole = direct["choices"][0]["message"]["content"].as_str().unwrap();
    let completion = direct["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion > 3, "tiny must answer past the prefix: {direct}");

    let mut body = long_question(true, "auto");
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let why = route(&resp);
    assert!(
        why.contains("cascade: tiny confidence") && why.ends_with(">= 0.00, kept"),
        "{why}"
    );
    let ev = sse_events(resp).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let (text, chunks) = content_of(&ev);
    assert_eq!(text, whole, "the held chunks and the live rest, in order");
    // The client did not ask for logprobs: the ones the cascade judged by do not leak.
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0].get("logprobs").is_none()));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"].as_u64(), Some(completion));
    assert_eq!(mock.requests(), 0);

    let rows = gw.rows().await;
    let row = rows.iter().find(|r| r.requested_model == "auto").unwrap();
    assert_eq!((row.model.as_str(), row.stream), ("tiny", true));
    assert_eq!(u64::from(row.completion_tokens), completion);
    let scores: Value = serde_json::from_str(row.scores.as_deref().unwrap()).unwrap();
    assert!((0.0..=1.0).contains(&scores["confidence.tiny"].as_f64().unwrap()));
    // The kept rung streamed on; its cost, known when the stream ended, is the row's.
    let steps: Value = serde_json::from_str(row.cascade.as_deref().unwrap()).unwrap();
    assert_eq!(steps[0]["kept"], json!(true), "{steps}");
    assert!(row.cost_usd > 0.0);
    assert_eq!(steps[0]["cost_usd"].as_f64(), Some(row.cost_usd), "{steps}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_prefix_stream_gives_only_the_logprobs_and_usage_the_client_asked_for() {
    let (gw, _mock) = prefix_gateway(0.0, 3).await;
    let mut body = long_question(true, "auto");
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(1);
    let resp = gw.chat(body).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let ev = sse_events(resp).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let (_, chunks) = content_of(&ev);
    // No include_usage: no usage-only chunk and no usage on the others.
    assert!(chunks.iter().all(|c| c["usage"].is_null()), "{chunks:?}");
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));
    // Asked for logprobs with one alternative: every token has them, cut from the judged five.
    let tokens: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["logprobs"]["content"].as_array())
        .flatten()
        .collect();
    assert!(tokens.len() > 3, "{chunks:?}");
    assert!(tokens
        .iter()
        .all(|t| t["top_logprobs"].as_array().unwrap().len() <= 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_judged_stream_that_escalates_is_dropped_and_the_large_model_answers() {
    let (mut gw, mock) = prefix_gateway(1.0, 3).await;
    let mut body = long_question(true, "auto");
    body["max_tokens"] = json!(200);
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    let why = route(&resp);
    assert!(why.contains("cascade: tiny confidence") && why.contains("< 1.00, escalated"));
    let ev = sse_events(resp).await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let (text, chunks) = content_of(&ev);
    assert_eq!(text, ANSWER);
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0].get("logprobs").is_none()));
    assert_eq!(mock.requests(), 1);

    let rows = gw.rows().await;
    assert_eq!(rows[0].model, "large");
    assert!(rows[0]
        .scores
        .as_deref()
        .unwrap()
        .contains("confidence.tiny"));
    // The small stream was dropped after its judged prefix: the log charges tiny (1 USD per
    // million output tokens) for the 3 tokens read, not the 200 it was allowed.
    let small = small_rung_cost(&rows[0]);
    assert!(small > 0.0 && small < 4.5e-6, "tiny cost {small}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_not_streamed_gets_the_answer_assembled_from_the_judged_stream() {
    let (mut gw, mock) = prefix_gateway(0.0, 3).await;
    let streamed = sse_events(gw.chat(long_question(true, "auto")).await).await;
    let (streamed_text, _) = content_of(&streamed);

    let resp = gw.chat(long_question(false, "auto")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    assert!(route(&resp).ends_with(", kept"));
    let body: Value = resp.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["content"], streamed_text.as_str());
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["logprobs"].is_null(), "not asked for: {body}");
    let direct: Value = gw
        .chat(long_question(false, "tiny"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        choice["message"]["content"],
        direct["choices"][0]["message"]["content"]
    );
    assert_eq!(
        choice["finish_reason"],
        direct["choices"][0]["finish_reason"]
    );
    assert_eq!(body["usage"], direct["usage"]);
    assert_eq!(body["object"], "chat.completion");

    let mut asked = long_question(false, "auto");
    asked["logprobs"] = json!(true);
    asked["top_logprobs"] = json!(2);
    let body: Value = gw.chat(asked).await.json().await.unwrap();
    let tokens = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(
        tokens.len() as u64,
        body["usage"]["completion_tokens"].as_u64().unwrap()
    );
    assert!(tokens
        .iter()
        .all(|t| t["top_logprobs"].as_array().unwrap().len() == 2));
    assert_eq!(mock.requests(), 0);

    let rows = gw.rows().await;
    let row = &rows[1];
    assert_eq!((row.model.as_str(), row.stream), ("tiny", false));
    assert!(row.scores.as_deref().unwrap().contains("confidence.tiny"));
    assert_eq!(
        row.completion_tokens,
        direct["usage"]["completion_tokens"].as_u64().unwrap() as u32
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_builtin_calibration_is_an_error_naming_the_builtin_ones() {
    let text = format!(
        "[router]\ncalibration = \"builtin:prefix7\"\n{}",
        upstream("large", "openai", "http://127.0.0.1:9", "mock")
    );
    let config =
        switchyard_server::Config::parse(&text, std::path::Path::new("t.toml"), &|_| None).unwrap();
    let e = match switchyard_server::Server::new(&config, &common::no_local) {
        Ok(_) => panic!("an unknown builtin calibration was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("builtin:prefix7")
            && e.contains("\"builtin\"")
            && e.contains("\"builtin:prefix4\""),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_builtin_prefix4_calibration_decides_on_the_first_4_tokens() {
    let router = "[router]\ncalibration = \"builtin:prefix4\"\n";
    let (mut gw, mock) = gateway_with(1.0, router).await;
    let mut body = long_question(false, "auto");
    body["max_tokens"] = json!(200);
    let resp = gw.chat(body).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    assert!(route(&resp).contains("< 1.00, escalated"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(mock.requests(), 1);
    let rows = gw.rows().await;
    // tiny was read for its first 4 tokens (1 USD per million), not the 200 allowed.
    let small = small_rung_cost(&rows[0]);
    assert!(small > 3.5e-6 && small < 4.5e-6, "tiny cost {small}");
}

/// A calibration on the mean logprob alone: P(good) = sigmoid(mean logprob + bias).
fn mean_logprob_calibration(path: &std::path::Path, bias: f64) {
    use switchyard_router::confidence::Feature;
    let calibration = Calibration {
        features: vec![Feature::MeanLogprob],
        means: vec![0.0],
        scales: vec![1.0],
        weights: vec![1.0],
        bias,
        ..Calibration::builtin()
    };
    calibration.save(path).unwrap();
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// A greedy question to tiny with the logprobs the cascade judges by.
fn greedy(model: &str, question: &str) -> Value {
    json!({"model": model, "max_tokens": 6, "temperature": 0.0,
           "logprobs": true, "top_logprobs": 5,
           "messages": [{"role": "user", "content": question}]})
}

/// The first rung's own answer: its mean token logprob, and its prompt and completion tokens.
async fn tiny_answers(gw: &common::Running, question: &str) -> (f64, u32, u32) {
    let body: Value = gw
        .chat(greedy("tiny", question))
        .await
        .json()
        .await
        .unwrap();
    let tokens = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    let sum: f64 = tokens.iter().map(|t| t["logprob"].as_f64().unwrap()).sum();
    let usage = |k: &str| body["usage"][k].as_u64().unwrap() as u32;
    (
        sum / tokens.len() as f64,
        usage("prompt_tokens"),
        usage("completion_tokens"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mid_threshold_keeps_the_surer_answer_and_escalates_the_other_at_known_confidences() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mean.json");
    let router = format!("[router]\ncalibration = {:?}\n", path.display().to_string());
    let questions = ["What is the capital of France?", "Continue: zq xv wk"];
    // SmolLM2 as the first rung: a real model, whose certainty differs between questions.
    let smol = "SmolLM2-135M-Instruct.Q4_1.gguf";

    // The first rung's greedy answers, measured directly (a named model skips the cascade).
    mean_logprob_calibration(&path, 0.0);
    let (measure, _mock) = gateway_of(smol, 0.5, &router).await;
    let mut answers = Vec::new();
    for q in questions {
        answers.push(tiny_answers(&measure, q).await);
    }
    drop(measure);
    let (sure, unsure) = if answers[0].0 >= answers[1].0 {
        (0, 1)
    } else {
        (1, 0)
    };
    let gap = answers[sure].0 - answers[unsure].0;
    assert!(
        gap > 0.05,
        "the questions must differ in tiny's certainty: {answers:?}"
    );

    // The threshold 0.5 sits halfway between the two answers' mean logprobs.
    let bias = -(answers[0].0 + answers[1].0) / 2.0;
    mean_logprob_calibration(&path, bias);
    let (mut gw, mock) = gateway_of(smol, 0.5, &router).await;
    let mut models = Vec::new();
    for q in questions {
        let mut ask = greedy("auto", q);
        ask.as_object_mut().unwrap().remove("logprobs");
        ask.as_object_mut().unwrap().remove("top_logprobs");
        let resp = gw.chat(ask).await;
        assert_eq!(resp.status(), 200);
        models.push(
            resp.headers()["x-switchyard-model"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(models[sure], "tiny");
    assert_eq!(models[unsure], "large");
    assert_eq!(mock.requests(), 1);

    let rows = gw.rows().await;
    for (i, row) in rows.iter().enumerate() {
        let (mean, prompt, completion) = answers[i];
        let expected = sigmoid(mean + bias);
        let scores: Value = serde_json::from_str(row.scores.as_deref().unwrap()).unwrap();
        let p = scores["confidence.tiny"].as_f64().unwrap();
        assert!((p - expected).abs() < 1e-4, "row {i}: {p} vs {expected}");
        // tiny costs 1 USD per million tokens, prompt or completion.
        let tiny_cost = f64::from(prompt + completion) / 1e6;
        let steps: Value = serde_json::from_str(row.cascade.as_deref().unwrap()).unwrap();
        let step = &steps[0];
        assert_eq!(
            (
                &step["model"],
                &step["step"],
                &step["threshold"],
                &step["kept"]
            ),
            (
                &json!("tiny"),
                &json!("judged"),
                &json!(0.5),
                &json!(i == sure)
            ),
            "{steps}"
        );
        assert!((step["confidence"].as_f64().unwrap() - p).abs() < 1e-12);
        assert!((step["cost_usd"].as_f64().unwrap() - tiny_cost).abs() < 1e-12);
        if i == sure {
            assert_eq!((row.model.as_str(), row.prompt_tokens), ("tiny", prompt));
            assert_eq!(row.completion_tokens, completion);
            assert!((row.cost_usd - tiny_cost).abs() < 1e-12, "{}", row.cost_usd);
        } else {
            assert_eq!(row.model, "large");
            // Both rungs: tiny's whole answer, then large's at 2 and 10 USD per million.
            let large = (2.0 * f64::from(row.prompt_tokens)
                + 10.0 * f64::from(row.completion_tokens))
                / 1e6;
            assert!(
                (row.cost_usd - (tiny_cost + large)).abs() < 1e-12,
                "{} vs {tiny_cost} + {large}",
                row.cost_usd
            );
        }
    }
}
