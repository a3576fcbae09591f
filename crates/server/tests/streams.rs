//! Streamed answers beyond the happy path: the cost a stream's headers cannot know yet (the
//! `pending` header, the SSE trailer, the log), an upstream that reports an error in the middle
//! of its stream, a client that goes away mid-stream from a local model, and what a cascade
//! that held its first rung's answer charges.

mod common;

use std::time::Instant;

use common::{models_dir, start, start_with, upstream};
use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_mock::{MockConfig, ANSWER};

const COST_TRAILER: &str = ": x-switchyard-cost-usd=";

fn question(model: &str) -> Value {
    json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

/// A stream's blocks (events and comments), read to its end.
async fn blocks(resp: reqwest::Response) -> Vec<String> {
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.split_terminator("\n\n").map(str::to_owned).collect()
}

/// The JSON of every `data:` event but `[DONE]`.
fn chunks(blocks: &[String]) -> Vec<Value> {
    blocks
        .iter()
        .filter_map(|b| b.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The cost the stream's trailer states, checked to be the comment right before `[DONE]`.
fn trailer_cost(blocks: &[String]) -> String {
    let [.., trailer, done] = blocks else {
        panic!("a stream of {} blocks: {blocks:?}", blocks.len());
    };
    assert_eq!(done, "data: [DONE]");
    trailer
        .strip_prefix(COST_TRAILER)
        .unwrap_or_else(|| panic!("no cost comment before [DONE]: {trailer:?}"))
        .to_owned()
}

/// USD per million prompt and completion tokens, as `common::upstream` prices its models.
fn upstream_cost(usage: &Value) -> f64 {
    let tokens = |k: &str| usage[k].as_u64().unwrap() as f64;
    (2.0 * tokens("prompt_tokens") + 10.0 * tokens("completion_tokens")) / 1e6
}

#[tokio::test]
async fn a_streams_cost_is_pending_in_its_headers_and_stated_before_done_as_logged() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    for provider in ["openai", "anthropic"] {
        let mut gw = start(&upstream("large", provider, &mock.base_url(), "mock")).await;
        let resp = gw.chat(question("large")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-switchyard-cost-usd"], "pending");
        let read = blocks(resp).await;
        let stated = trailer_cost(&read);
        let chunks = chunks(&read);
        assert_eq!(text_of(&chunks), ANSWER, "{provider}");
        let usage = &chunks.last().unwrap()["usage"];
        let cost: f64 = stated.parse().unwrap();
        assert!(
            cost > 0.0 && (cost - upstream_cost(usage)).abs() < 1e-8,
            "{provider}: trailer {stated}, usage {usage}"
        );

        let rows = gw.rows().await;
        assert_eq!(format!("{:.8}", rows[0].cost_usd), stated, "{provider}");
    }
}

#[tokio::test]
async fn a_stream_refused_before_it_started_has_a_cost_header_not_pending() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&upstream("large", "openai", &mock.base_url(), "fail-400")).await;
    let resp = gw.chat(question("large")).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-switchyard-cost-usd"], "0.00000000");
}

#[tokio::test]
async fn an_upstream_error_mid_stream_ends_the_clients_stream_with_an_error_event() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    // Each breaks off after the events that carry "This" and " is".
    for (provider, upstream_model) in [
        ("openai", "stream-error-3"),
        ("anthropic", "stream-error-5"),
    ] {
        let mut gw = start(&upstream(
            "large",
            provider,
            &mock.base_url(),
            upstream_model,
        ))
        .await;
        let resp = gw.chat(question("large")).await;
        assert_eq!(resp.status(), 200, "{provider}");
        let read = blocks(resp).await;
        assert!(!read.iter().any(|b| b == "data: [DONE]"), "{read:?}");
        assert!(!read.iter().any(|b| b.starts_with(COST_TRAILER)));
        let chunks = chunks(&read);
        let (error, relayed) = chunks.split_last().unwrap();
        assert_eq!(text_of(relayed), "This is", "{provider}: {read:?}");
        assert_eq!(
            error["error"]["type"], "upstream_error",
            "{provider}: {error}"
        );
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("mock failure mid-stream"), "{message}");

        let rows = gw.rows().await;
        let row = &rows[0];
        assert_eq!((row.status, row.stream), (502, true), "{provider}");
        assert!(
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("mock failure mid-stream")),
            "{row:?}"
        );
    }
}

/// Tokens the abandoned stream asks for, and how many the client reads before it leaves.
const ASKED: u32 = 8000;
const READ: u32 = 100;

/// tiny with one slot (room for [`ASKED`] tokens): while one request generates, the next waits.
fn one_slot_tiny() -> String {
    format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nprice = {{ input = 1.0, output = 2.0 }}\nslots = 1\nqueue = 4\ncontext_tokens = 8192\nthreads = 2\n",
        models_dir()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_gone_mid_stream_stops_the_local_generation_frees_its_slot_and_is_logged() {
    let mut gw = start_with(&one_slot_tiny(), &switchyard_server::load_local).await;
    let long = json!({"model": "tiny", "stream": true, "temperature": 0, "max_tokens": ASKED,
                      "messages": [{"role": "user", "content": "Keep talking"}]});
    let sent = Instant::now();
    let resp = gw.chat(long).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut tokens = 0;
    while tokens < READ {
        let chunk = body
            .next()
            .await
            .expect("tiny ended its answer early")
            .unwrap();
        let text = std::str::from_utf8(&chunk).unwrap();
        for data in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
            let v: Value = serde_json::from_str(data).unwrap();
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                tokens += 1;
            }
        }
    }
    // More than tiny's time per token: everything since the request was sent, over the tokens.
    let per_token = sent.elapsed() / tokens;
    drop(body);

    // The slot is free again: the next request is served well before the abandoned one could
    // have generated the rest of its tokens.
    let abandoned_would_take = per_token * (ASKED - tokens);
    let start = Instant::now();
    let next = gw
        .chat(json!({"model": "tiny", "max_tokens": 3, "messages": [{"role": "user", "content": "Hello"}]}))
        .await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    let waited = start.elapsed();
    assert_eq!(next["usage"]["completion_tokens"], 3);
    assert!(
        waited < abandoned_would_take / 4,
        "the next request waited {waited:?}; the abandoned one needed about {abandoned_would_take:?}"
    );

    let rows = gw.rows().await;
    assert_eq!(rows.len(), 2);
    let gone = &rows[0];
    // 499: nginx's "client closed request"; the answer was cut, so the log says so.
    assert_eq!(
        (gone.status, gone.model.as_str(), gone.stream),
        (499, "tiny", true)
    );
    assert_eq!(
        gone.error.as_deref(),
        Some(
            "client disconnected before the stream ended; \
             usage counted from the tokens forwarded, prompt tokens unknown"
        )
    );
    assert!(gone.ttft_ms.is_some());
    // A local stream reports its usage in its last chunk, which never came: the row counts
    // the tokens sent to the client: at least those it read (more may have been in flight in
    // the socket's buffers), fewer than it asked for, billed at tiny's price.
    assert_eq!(gone.prompt_tokens, 0);
    assert!(
        (tokens..ASKED).contains(&gone.completion_tokens),
        "{} logged, {tokens} read",
        gone.completion_tokens
    );
    assert!(gone.cost_usd > 0.0, "{}", gone.cost_usd);
    assert_eq!((rows[1].status, rows[1].completion_tokens), (200, 3));
}

/// tiny (local, 1 USD per million tokens either way) then large (the mock), cascading on whole
/// answers (the builtin calibration): a streamed request's tiny answer is held until judged.
/// "keep" questions are kept whatever tiny's confidence, "climb" ones always escalate.
async fn held_cascade() -> (common::Running, switchyard_mock::MockHandle) {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let ladder = |name: &str, threshold: f64| {
        format!(
            "[[routes]]\nname = \"{name}\"\nwhen = {{ keywords = [\"{name}\"] }}\nladder = [\"tiny\", \"large\"]\ncascade = true\nconfidence_threshold = {threshold}\n"
        )
    };
    let config = format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nslots = 2\ncontext_tokens = 1024\nprice = {{ input = 1.0, output = 1.0 }}\n{}{}{}",
        models_dir(),
        upstream("large", "openai", &mock.base_url(), "mock"),
        ladder("keep", 0.0),
        ladder("climb", 1.0),
    );
    (
        start_with(&config, &switchyard_server::load_local).await,
        mock,
    )
}

fn greedy(model: &str, text: &str, stream: bool) -> Value {
    let mut q = json!({"model": model, "max_tokens": 6, "temperature": 0,
                       "messages": [{"role": "user", "content": text}]});
    if stream {
        q["stream"] = json!(true);
        q["stream_options"] = json!({"include_usage": true});
    }
    q
}

/// What tiny's greedy answer to `text` costs, asked directly (the cascade's rung is greedy too).
async fn tiny_cost(gw: &common::Running, text: &str) -> f64 {
    let body: Value = gw
        .chat(greedy("tiny", text, false))
        .await
        .json()
        .await
        .unwrap();
    let tokens = |k: &str| body["usage"][k].as_u64().unwrap() as f64;
    (tokens("prompt_tokens") + tokens("completion_tokens")) / 1e6
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_cascade_stream_states_and_logs_the_cost_of_every_rung_that_answered() {
    let (mut gw, mock) = held_cascade().await;
    let (kept, climbed) = (
        "Please keep it short: what is the capital of France?",
        "Please climb higher: what is the capital of France?",
    );

    // Kept: tiny's held answer is replayed, and charged once.
    let resp = gw.chat(greedy("auto", kept, true)).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    assert_eq!(resp.headers()["x-switchyard-cost-usd"], "pending");
    let read = blocks(resp).await;
    let kept_cost = trailer_cost(&read);
    let usage = chunks(&read).last().unwrap()["usage"].clone();
    assert_eq!(usage["completion_tokens"], 6, "{usage}");
    let tokens = |k: &str| usage[k].as_u64().unwrap() as f64;
    let replayed = (tokens("prompt_tokens") + tokens("completion_tokens")) / 1e6;
    assert_eq!(kept_cost, format!("{replayed:.8}"));
    assert_eq!(kept_cost, format!("{:.8}", tiny_cost(&gw, kept).await));
    assert_eq!(mock.requests(), 0);

    // Escalated: large streams live, and the stream's cost is tiny's held answer plus large's.
    let resp = gw.chat(greedy("auto", climbed, true)).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "large");
    assert_eq!(resp.headers()["x-switchyard-cost-usd"], "pending");
    let read = blocks(resp).await;
    let climbed_cost = trailer_cost(&read);
    let chunks = chunks(&read);
    assert_eq!(text_of(&chunks), ANSWER);
    let large = upstream_cost(&chunks.last().unwrap()["usage"]);
    let both = tiny_cost(&gw, climbed).await + large;
    assert_eq!(climbed_cost, format!("{both:.8}"));
    assert_eq!(mock.requests(), 1);

    let rows = gw.rows().await;
    let logged = |route: &str| {
        let row = rows
            .iter()
            .find(|r| r.route.starts_with(route))
            .unwrap_or_else(|| panic!("no row for {route}: {rows:?}"));
        format!("{:.8}", row.cost_usd)
    };
    assert_eq!(logged("route keep"), kept_cost);
    assert_eq!(logged("route climb"), climbed_cost);
}
