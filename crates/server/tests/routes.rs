//! What a routed request tells its client: the `x-switchyard-scores` header with the numbers
//! behind the decision, and rule routes that match on request headers, over HTTP.

mod common;

use std::collections::BTreeMap;

use common::{models_dir, start, start_with, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

fn ask(text: &str) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": text}]})
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `name=value name=value`, as the header writes them.
fn parse_scores(header: &str) -> BTreeMap<String, f64> {
    header
        .split(' ')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

const SUPPORT: [&str; 2] = ["Where is my order?", "How do I reset my password?"];
const MATHS: [&str; 2] = [
    "Solve this equation for x.",
    "What is the derivative of x squared?",
];

/// The best cosine similarity of `text` to `examples`, computed here with the same MiniLM.
fn similarity(embedder: &switchyard_embed::Embedder, text: &str, examples: &[&str]) -> f64 {
    let mut texts = vec![text];
    texts.extend_from_slice(examples);
    let vectors = embedder.embed(&texts).unwrap().vectors;
    vectors[1..]
        .iter()
        .map(|e| {
            e.iter()
                .zip(&vectors[0])
                .map(|(a, b)| f64::from(a * b))
                .sum::<f64>()
        })
        .fold(f64::MIN, f64::max)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scores_header_carries_every_similarity_the_decision_weighed() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let config = format!(
        "[router]\ndefault = \"big\"\n{}{}[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n
[[routes]]
name = \"urgent\"
when = {{ keywords = [\"urgent\"] }}
target = \"big\"

[[routes]]
name = \"support\"
examples = {SUPPORT:?}
similarity = 0.5
target = \"cheap\"

[[routes]]
name = \"maths\"
examples = {MATHS:?}
similarity = 0.5
target = \"big\"
",
        upstream("cheap", "openai", &mock.base_url(), "mock"),
        upstream("big", "openai", &mock.base_url(), "mock"),
        models_dir()
    );
    let mut gw = start_with(&config, &common::no_local).await;
    let embedder = switchyard_embed::Embedder::load(std::path::Path::new(&format!(
        "{}/all-MiniLM-L6-v2",
        models_dir()
    )))
    .unwrap();

    let question = "I forgot my password, how can I reset it?";
    let resp = gw.chat(ask(question)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-switchyard-model").as_deref(),
        Some("cheap")
    );
    let scores = parse_scores(&header(&resp, "x-switchyard-scores").unwrap());
    assert_eq!(
        scores.keys().collect::<Vec<_>>(),
        ["similarity.maths", "similarity.support"]
    );
    let (support, maths) = (
        similarity(&embedder, question, &SUPPORT),
        similarity(&embedder, question, &MATHS),
    );
    assert!(support >= 0.5 && maths < 0.5, "{support} {maths}");
    // Four decimals in the header; the gateway embedded the question on its own.
    assert!(
        (scores["similarity.support"] - support).abs() < 1e-3,
        "{scores:?} {support}"
    );
    assert!(
        (scores["similarity.maths"] - maths).abs() < 1e-3,
        "{scores:?} {maths}"
    );
    let route = header(&resp, "x-switchyard-route").unwrap();
    assert!(
        route.starts_with(&format!(
            "route support: similarity {support:.2} >= 0.50 to \"How do I reset my password?\""
        )),
        "{route}"
    );

    // Nothing similar enough: the default answers, and the header still shows why.
    let resp = gw.chat(ask("Tell me about the history of Rome.")).await;
    assert_eq!(
        header(&resp, "x-switchyard-route").as_deref(),
        Some("default: auto -> big")
    );
    let fell_through = parse_scores(&header(&resp, "x-switchyard-scores").unwrap());
    assert!(fell_through.values().all(|s| *s < 0.5), "{fell_through:?}");
    assert_eq!(fell_through.len(), 2);

    // A rule decides without numbers, and a named model without any decision: no header.
    let resp = gw.chat(ask("This is urgent: where is my order?")).await;
    assert_eq!(
        header(&resp, "x-switchyard-route").as_deref(),
        Some("route urgent: keyword \"urgent\"")
    );
    assert_eq!(header(&resp, "x-switchyard-scores"), None);
    let mut named = ask(question);
    named["model"] = json!("big");
    assert_eq!(header(&gw.chat(named).await, "x-switchyard-scores"), None);

    // The log keeps the same numbers, unrounded.
    let rows = gw.rows().await;
    let logged: BTreeMap<String, f64> =
        serde_json::from_str(rows[0].scores.as_deref().unwrap()).unwrap();
    for (name, value) in &scores {
        assert!((logged[name] - value).abs() <= 5e-5, "{name}: {logged:?}");
    }
    assert_eq!(
        (rows[2].scores.as_deref(), rows[3].scores.as_deref()),
        (None, None)
    );
}

/// cheap by default; `big` for requests whose `x-team` header says `legal`.
fn team_routes(team_header: &str, base_url: &str) -> String {
    format!(
        "[router]\ndefault = \"cheap\"\n{}{}
[[routes]]
name = \"legal-team\"
when = {{ headers = {{ \"{team_header}\" = \"legal\" }} }}
target = \"big\"
",
        upstream("cheap", "openai", base_url, "mock"),
        upstream("big", "openai", base_url, "mock"),
    )
}

async fn routed(gw: &common::Running, team: Option<&str>, model: &str) -> (String, String) {
    let mut body = ask("Can you look at this clause?");
    body["model"] = json!(model);
    let mut req = gw.client.post(gw.url("/v1/chat/completions")).json(&body);
    if let Some(team) = team {
        req = req.header("X-Team", team);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    (
        header(&resp, "x-switchyard-model").unwrap(),
        header(&resp, "x-switchyard-route").unwrap(),
    )
}

#[tokio::test]
async fn a_header_route_matches_the_exact_value_of_the_header() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&team_routes("x-team", &mock.base_url())).await;

    // The client writes `X-Team`: header names are case-insensitive, values are not.
    assert_eq!(
        routed(&gw, Some("legal"), "auto").await,
        (
            "big".to_owned(),
            "route legal-team: x-team: legal".to_owned()
        )
    );
    for other in [Some("Legal"), Some("sales"), None] {
        assert_eq!(
            routed(&gw, other, "auto").await,
            ("cheap".to_owned(), "default: auto -> cheap".to_owned()),
            "x-team: {other:?}"
        );
    }
    // A named model bypasses the routes, header or not.
    assert_eq!(routed(&gw, Some("legal"), "cheap").await.0, "cheap");

    let rows = gw.rows().await;
    assert_eq!(rows[0].route, "route legal-team: x-team: legal");
    assert_eq!(rows[0].model, "big");
}

/// HTTP header names are case-insensitive, and the gateway lowercases the names it collects
/// from the routes: a route written with `X-Team` must match like one written `x-team`.
#[tokio::test]
async fn a_header_route_written_with_capitals_matches_too() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&team_routes("X-Team", &mock.base_url())).await;
    let (model, route) = routed(&gw, Some("legal"), "auto").await;
    assert_eq!(model, "big", "{route}");
}
