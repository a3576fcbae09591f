//! Local models are served through `/v1/chat/completions` exactly like upstream ones.

mod common;

use common::{models_dir, start_with};
use serde_json::{json, Value};

fn tiny() -> String {
    format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nprice = {{ input = 1.0, output = 2.0 }}\nslots = 2\ncontext_tokens = 1024\nthreads = 2\n",
        models_dir()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_completion_has_usage_logprobs_cost_and_a_row() {
    let mut gw = start_with(&tiny(), &switchyard_server::load_local).await;
    let resp = gw
        .chat(json!({
            "model": "tiny", "max_tokens": 5, "temperature": 0, "logprobs": true, "top_logprobs": 3,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        }))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "tiny");
    let body: Value = resp.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 5);
    let tokens = choice["logprobs"]["content"].as_array().unwrap();
    assert_eq!(tokens.len(), 5);
    for t in tokens {
        assert!(t["logprob"].as_f64().unwrap() <= 0.0);
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert!(top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64());
    }
    let prompt = body["usage"]["prompt_tokens"].as_u64().unwrap() as f64;
    let rows = gw.rows().await;
    assert_eq!(rows[0].model, "tiny");
    assert!((rows[0].cost_usd - (prompt + 2.0 * 5.0) / 1e6).abs() < 1e-12);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_stream_has_a_role_chunk_text_finish_and_usage() {
    let gw = start_with(&tiny(), &switchyard_server::load_local).await;
    let resp = gw
        .chat(json!({
            "model": "tiny", "max_tokens": 8, "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hello"}]
        }))
        .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("length")]);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_local_model_fails_at_startup_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}/log.db\"\n[models.gone]\nprovider = \"local\"\npath = \"/no/such/model.gguf\"\n",
        dir.path().display()
    );
    let config =
        switchyard_server::Config::parse(&text, std::path::Path::new("t.toml"), &|_| None).unwrap();
    let err = switchyard_server::Server::new(&config, &switchyard_server::load_local)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("[models.gone]") && err.contains("/no/such/model.gguf"),
        "{err}"
    );
}

fn with_embeddings() -> String {
    format!(
        "{}[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n",
        tiny(),
        models_dir()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_are_served_as_floats_or_base64_and_rank_by_meaning() {
    let mut gw = start_with(&with_embeddings(), &switchyard_server::load_local).await;
    let post = |body: Value| gw.client.post(gw.url("/v1/embeddings")).json(&body).send();
    let resp = post(json!({"model": "all-MiniLM-L6-v2", "input": [
        "A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."
    ]}))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "all-MiniLM-L6-v2");
    let body: Value = resp.json().await.unwrap();
    let vectors: Vec<Vec<f64>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0].len(), 384);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]) + 0.2);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let b64: Value = post(json!({"model": "all-MiniLM-L6-v2", "input": "A man is eating food.", "encoding_format": "base64"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    assert!(floats
        .iter()
        .zip(&vectors[0])
        .all(|(a, b)| (a - b).abs() < 1e-5));

    let wrong = post(json!({"model": "tiny", "input": "x"})).await.unwrap();
    assert_eq!(wrong.status(), 404);
    let rows = gw.rows().await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].model, "all-MiniLM-L6-v2");
}

/// Reads a stream until it has carried `events` SSE events.
async fn read_events(resp: &mut reqwest::Response, events: usize) {
    let mut body = String::new();
    while body.matches("data: ").count() < events {
        let chunk = resp.chunk().await.unwrap().expect("the stream goes on");
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_local_queue_answers_429_and_the_rest_still_complete() {
    let config = format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{}/tiny.gguf\"\nslots = 1\nqueue = 1\ncontext_tokens = 4096\n",
        models_dir()
    );
    let gw = start_with(&config, &switchyard_server::load_local).await;
    let stream = |max_tokens: u32| {
        gw.client
            .post(gw.url("/v1/chat/completions"))
            .json(
                &json!({"model": "tiny", "max_tokens": max_tokens, "stream": true,
                "messages": [{"role": "user", "content": "Hello"}]}),
            )
            .send()
    };
    // The one slot: held once its request has sent a token (after the role chunk), and for
    // about 4,000 tokens, far longer than the rest of the test takes.
    let mut holding = stream(4000).await.unwrap();
    assert_eq!(holding.status(), 200);
    read_events(&mut holding, 2).await;
    // The one queue place: taken once the engine has accepted the request, which the answer's
    // status says.
    let queued = stream(5).await.unwrap();
    assert_eq!(queued.status(), 200);

    let (status, body) = {
        let r = gw.chat(json!({"model": "tiny", "max_tokens": 5, "messages": [{"role": "user", "content": "Hello"}]})).await;
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("queue"), "{body}");

    // The client that held the slot leaves; the queued request gets the slot and completes.
    drop(holding);
    let text = queued.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"finish_reason\":\"length\""), "{text}");
}
