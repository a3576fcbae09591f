//! Routing through the whole path: `"model": "auto"` requests go where the routes say, with
//! the route's module applied, the decision in the headers and its numbers in the log.

mod common;

use common::{models_dir, no_local, start_with, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

async fn ask(
    gw: &common::Running,
    text: &str,
    conversation: Option<&str>,
) -> (String, String, Value) {
    let mut req = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": "auto", "messages": [{"role": "user", "content": text}]}));
    if let Some(c) = conversation {
        req = req.header("x-switchyard-conversation", c);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let model = resp.headers()["x-switchyard-model"]
        .to_str()
        .unwrap()
        .to_owned();
    let route = resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned();
    (model, route, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_requests_follow_rule_and_semantic_routes_and_stick_to_their_conversation() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "{}{}[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n
[[routes]]
name = \"legal\"
when = {{ keywords = [\"contract\", \"lawsuit\"] }}
target = \"big\"
system_prompt = \"You are a careful legal assistant.\"

[[routes]]
name = \"support\"
examples = [\"Where is my order?\", \"How do I reset my password?\"]
similarity = 0.5
target = \"cheap\"
",
        upstream("cheap", "openai", &mock.base_url(), "echo"),
        upstream("big", "openai", &mock.base_url(), "echo"),
        models_dir()
    );
    let mut gw = start_with(&config, &no_local).await;

    let (model, route, body) = ask(&gw, "Can you check this contract for me?", None).await;
    assert_eq!(model, "big");
    assert_eq!(route, "route legal: keyword \"contract\"");
    let sent: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        sent["messages"][0]["content"],
        "You are a careful legal assistant."
    );

    let (model, route, _) = ask(
        &gw,
        "I forgot my password, how can I reset it?",
        Some("c-1"),
    )
    .await;
    assert_eq!(model, "cheap");
    assert!(route.starts_with("route support: similarity"), "{route}");

    // The same conversation stays on its model while no rule says otherwise...
    let (model, route, _) = ask(&gw, "What's the weather like on Mars?", Some("c-1")).await;
    assert_eq!(
        (model.as_str(), route.as_str()),
        ("cheap", "sticky: the conversation stays on cheap")
    );
    // ...and a rule moves it.
    let (model, _, _) = ask(&gw, "Actually, I want to start a lawsuit.", Some("c-1")).await;
    assert_eq!(model, "big");

    let rows = gw.rows().await;
    let support = rows
        .iter()
        .find(|r| r.route.starts_with("route support"))
        .unwrap();
    let scores: Value = serde_json::from_str(support.scores.as_deref().unwrap()).unwrap();
    assert!(scores["similarity.support"].as_f64().unwrap() >= 0.5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_learned_score_sends_hard_questions_to_the_strong_model() {
    use switchyard_router::data::Example;
    use switchyard_router::learned::{train, TrainOptions};

    // Hard questions are ones only the strong model answered well; easy ones both did.
    let hard = [
        "Prove that there are infinitely many primes.",
        "Derive the Black-Scholes equation.",
        "Compute the eigenvalues of a 3x3 rotation matrix.",
        "Explain the proof of Fermat's last theorem.",
        "Solve this differential equation: y'' + y = sin(x).",
        "What is the Galois group of x^5 - 2?",
    ];
    let easy = [
        "Hello, how are you?",
        "What is the capital of France?",
        "Say thanks to my colleague.",
        "What colour is the sky?",
        "Tell me a short joke.",
        "How many days are in a week?",
    ];
    let examples: Vec<Example> = hard
        .iter()
        .map(|t| (t, 0.0, 1.0))
        .chain(easy.iter().map(|t| (t, 1.0, 1.0)))
        .enumerate()
        .map(|(i, (t, weak, strong))| Example {
            text: t.to_string(),
            weak,
            strong,
            group: format!("g{}", i % 3),
            features: None,
        })
        .collect();
    let embedder = switchyard_embed::Embedder::load(std::path::Path::new(&format!(
        "{}/all-MiniLM-L6-v2",
        models_dir()
    )))
    .unwrap();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let vectors = embedder.embed(&texts).unwrap().vectors;
    let options = TrainOptions {
        folds: 3,
        target_large_share: 0.5,
        ..TrainOptions::default()
    };
    let model = train(&examples, &vectors, &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.json");
    model.save(&path).unwrap();

    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "[router]\nlearned = {{ path = {:?}, weak = \"cheap\", strong = \"big\" }}\n{}{}[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n",
        path.display().to_string(),
        upstream("cheap", "openai", &mock.base_url(), "mock"),
        upstream("big", "openai", &mock.base_url(), "mock"),
        models_dir()
    );
    let gw = start_with(&config, &no_local).await;
    let (model, route, _) = ask(
        &gw,
        "Prove that the square root of two is irrational.",
        None,
    )
    .await;
    assert_eq!(model, "big", "{route}");
    assert!(route.starts_with("learned knn"), "{route}");
    let (model, route, _) = ask(&gw, "Hi there, how is it going?", None).await;
    assert_eq!(model, "cheap", "{route}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_pins_a_route_and_the_model_that_answers_it() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "{}{}
[[routes]]
name = \"legal\"
when = {{ keywords = [\"contract\"] }}
ladder = [\"cheap\", \"big\"]
cascade = true
system_prompt = \"You are a careful legal assistant.\"
",
        upstream("cheap", "openai", &mock.base_url(), "echo"),
        upstream("big", "openai", &mock.base_url(), "echo"),
    );
    let gw = start_with(&config, &no_local).await;
    let send = |route: Option<&'static str>, model: &'static str| {
        let mut req = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .header("x-switchyard-pin-model", model)
            .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}));
        if let Some(r) = route {
            req = req.header("x-switchyard-pin-route", r);
        }
        req.send()
    };

    // "hello" matches no rule; the pinned route applies anyway, answered by the pinned model.
    let resp = send(Some("legal"), "big").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "big");
    let route = resp.headers()["x-switchyard-route"].to_str().unwrap();
    assert_eq!(
        route,
        "route legal: pinned; pinned to big (the router chose cascade cheap,big)"
    );
    let body: Value = resp.json().await.unwrap();
    let sent: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        "You are a careful legal assistant."
    );

    // Without a pinned route, the router's own decision is kept and only the model changes.
    let resp = send(None, "big").await.unwrap();
    assert_eq!(resp.headers()["x-switchyard-model"], "big");

    let resp = send(Some("billing"), "big").await.unwrap();
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "route_not_found");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use one of: legal"),
        "{err}"
    );
    let resp = send(Some("legal"), "nope").await.unwrap();
    assert_eq!(resp.status(), 404);
}
