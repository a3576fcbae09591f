//! Knowledge bases over HTTP: documents added, listed and removed through `/v1/knowledge`,
//! searched in each mode, kept across a restart, and a route that answers from a base with
//! its sources (whole and streamed), escalating when nothing relevant is found.
//!
//! The answering models are the mock's `echo`, whose answer is the request it received: what
//! the route put into the prompt is read back from the answer.

mod common;

use common::{models_dir, no_local, sse_events, start, start_at, streamed_text, upstream, Running};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;

const LATE_PAYMENT: &str = "# Late payment\n\n## Late payment fee\n\nIf the full amount due has not been received 5 days after the due date, we add a late payment fee of $9.50 to your next statement.\n\n## Suspension\n\nAt 45 days after the due date we suspend all services on the account.\n";
const ROAMING: &str = "Roaming abroad\n\nTravel passes\n\nA Europe travel pass costs $5 a day and includes 1 GB of mobile data, unlimited texts and 100 minutes of calls.\n";
const PRIVACY: &str = "<html><head><title>Privacy</title></head><body><nav>Home | Help</nav><main><h1>Privacy</h1><h2>Call recordings</h2><p>We keep recordings of support calls for 90 days, then delete them.</p></main><footer>Corvane</footer></body></html>";

fn embeddings() -> String {
    format!(
        "[embeddings]\npath = \"{}/all-MiniLM-L6-v2\"\n",
        models_dir()
    )
}

/// Two echo models behind the mock: `answer` on the knowledge route, `big` where it escalates.
fn config(mock: &str, route_extra: &str) -> String {
    format!(
        "[router]\ndefault = \"answer\"\n{}{}{}
[[routes]]
name = \"support\"
when = {{ min_chars = 1 }}
target = \"answer\"
system_prompt = \"You are Corvane's support assistant.\"
knowledge = \"corvane\"
k = 2
{route_extra}",
        upstream("answer", "openai", mock, "echo"),
        upstream("big", "openai", mock, "echo"),
        embeddings()
    )
}

async fn put(
    gw: &Running,
    kb: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> reqwest::Response {
    gw.client
        .post(gw.url(&format!("/v1/knowledge/{kb}/documents")))
        .query(&[("path", path)])
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// The sample documents in base `corvane`, one per format the API reads.
async fn fill(gw: &Running) {
    for (path, ty, body) in [
        ("billing/late-payment.md", "text/markdown", LATE_PAYMENT),
        ("mobile/roaming.txt", "text/plain", ROAMING),
        ("privacy/recordings.html", "text/html", PRIVACY),
    ] {
        let resp = put(gw, "corvane", path, ty, body).await;
        assert_eq!(resp.status(), 201, "{path}: {}", resp.text().await.unwrap());
    }
}

async fn search(gw: &Running, kb: &str, body: Value) -> reqwest::Response {
    gw.client
        .post(gw.url(&format!("/v1/knowledge/{kb}/search")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap()["error"].clone())
}

fn ask(text: &str, stream: bool) -> Value {
    json!({"model": "auto", "stream": stream, "messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": text}
    ]})
}

/// The request the echo model received, from its answer.
fn echoed(answer: &str) -> Value {
    serde_json::from_str(answer).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_are_added_listed_searched_in_each_mode_and_removed() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&config(&mock.base_url(), "")).await;
    fill(&gw).await;

    let again = put(
        &gw,
        "corvane",
        "billing/late-payment.md",
        "text/markdown",
        LATE_PAYMENT,
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "unchanged");

    let listed: Value = gw
        .client
        .get(gw.url("/v1/knowledge/corvane/documents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "billing/late-payment.md",
            "mobile/roaming.txt",
            "privacy/recordings.html"
        ]
    );
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["chunks"].as_u64().unwrap() >= 1));

    for mode in ["hybrid", "vector", "keyword"] {
        let resp = search(
            &gw,
            "corvane",
            json!({"query": "How long do you keep recordings of my calls?", "k": 2, "mode": mode}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let found: Value = resp.json().await.unwrap();
        assert_eq!(found["object"], "list");
        let first = &found["data"][0];
        assert_eq!(
            first["document"], "privacy/recordings.html",
            "{mode}: {found}"
        );
        assert_eq!(first["heading"], "Privacy > Call recordings", "{mode}");
        assert!(
            first["text"].as_str().unwrap().contains("90 days"),
            "{mode}"
        );
        assert!(first["score"].as_f64().unwrap() > 0.0);
        assert!(found["data"].as_array().unwrap().len() <= 2);
    }
    let only_mobile = search(
        &gw,
        "corvane",
        json!({"query": "late payment fee", "prefix": "mobile/"}),
    )
    .await;
    let found: Value = only_mobile.json().await.unwrap();
    assert!(
        found["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["document"] == "mobile/roaming.txt"),
        "{found}"
    );

    let removed = gw
        .client
        .delete(gw.url("/v1/knowledge/corvane/documents/privacy/recordings.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    assert_eq!(removed.json::<Value>().await.unwrap()["deleted"], true);
    let found: Value = search(&gw, "corvane", json!({"query": "recordings of calls"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        found["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["document"] != "privacy/recordings.html"),
        "a removed document is no longer found: {found}"
    );
    let (status, error) = error_of(
        gw.client
            .delete(gw.url("/v1/knowledge/corvane/documents/privacy/recordings.html"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("privacy/recordings.html"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_knowledge_requests_get_openai_shaped_errors_that_say_what_to_fix() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&config(&mock.base_url(), "")).await;
    fill(&gw).await;

    let (status, error) = error_of(search(&gw, "manuals", json!({"query": "fee"})).await).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "knowledge_base_not_found");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("manuals") && message.contains("corvane"),
        "{message}"
    );

    let (status, error) =
        error_of(search(&gw, "corvane", json!({"query": "fee", "k": 0})).await).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("k")));
    let (status, error) = error_of(search(&gw, "corvane", json!({"query": " "})).await).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("query")));
    let (status, error) =
        error_of(search(&gw, "corvane", json!({"query": "fee", "mode": "fuzzy"})).await).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("mode")));
    let (status, error) = error_of(search(&gw, "corvane", json!({"k": 3})).await).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("query"),
        "{error}"
    );

    let no_path = gw
        .client
        .post(gw.url("/v1/knowledge/corvane/documents"))
        .header("content-type", "text/markdown")
        .body("# Hello")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(no_path).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("path")));
    let (status, error) = error_of(
        put(
            &gw,
            "corvane",
            "notes.docx",
            "application/octet-stream",
            "PK",
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("notes.docx"),
        "{error}"
    );
    let (status, error) = error_of(
        put(
            &gw,
            "corvane",
            "broken.pdf",
            "application/pdf",
            "%PDF-1.4 not really",
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("broken.pdf"),
        "{error}"
    );
    let (status, _) = error_of(put(&gw, "bad name!", "a.md", "text/markdown", "# A").await).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_is_served_again_after_a_restart() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("switchyard.db");
    let config = config(&mock.base_url(), "");
    let mut first = start_at(&db, &config, &no_local).await;
    fill(&first).await;
    first.stop().await;

    let second = start_at(&db, &config, &no_local).await;
    let found: Value = search(
        &second,
        "corvane",
        json!({"query": "travel pass in Europe", "k": 1}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        found["data"][0]["document"], "mobile/roaming.txt",
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_knowledge_route_puts_numbered_passages_after_its_prompt_and_returns_the_sources() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&config(&mock.base_url(), "")).await;
    fill(&gw).await;

    let resp = gw
        .chat(ask("How much is the fee when I pay my bill late?", false))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let sources = body["switchyard"]["sources"].as_array().unwrap();
    assert_eq!(sources[0]["document"], "billing/late-payment.md", "{body}");
    assert_eq!(sources[0]["heading"], "Late payment > Late payment fee");
    assert!(sources[0]["score"].as_f64().unwrap() >= 0.3);
    assert!(sources[0].get("text").is_none());

    let sent = echoed(body["choices"][0]["message"]["content"].as_str().unwrap());
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2,
        "the passages join the system message: {sent}"
    );
    let system = messages[0]["content"].as_str().unwrap();
    let route = system.find("You are Corvane's support assistant.").unwrap();
    let first = system
        .find("[1] billing/late-payment.md (Late payment > Late payment fee)")
        .unwrap();
    let client = system.find("Answer in one sentence.").unwrap();
    assert!(
        route < first && first < client,
        "route prompt, passages, client's: {system}"
    );
    assert!(system.contains("$9.50"));

    let events = sse_events(
        gw.chat(ask("How much is the fee when I pay my bill late?", true))
            .await,
    )
    .await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["object"], "chat.completion.chunk");
    assert_eq!(
        last["switchyard"]["sources"][0]["document"], "billing/late-payment.md",
        "{last}"
    );
    assert!(streamed_text(&events).contains("[1] billing/late-payment.md"));

    let rows = gw.rows().await;
    let chats: Vec<_> = rows.iter().filter(|r| r.model == "answer").collect();
    assert_eq!(chats.len(), 2);
    for row in chats {
        let sources: Value = serde_json::from_str(row.sources.as_deref().unwrap()).unwrap();
        assert_eq!(sources["kb"], "corvane");
        let ids: Vec<&str> = sources["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(ids[0].starts_with("billing/late-payment.md#"), "{ids:?}");
        assert!(
            !row.sources.as_deref().unwrap().contains("$9.50"),
            "ids, never passage text"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_the_base_cannot_answer_escalates_without_passages() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&config(
        &mock.base_url(),
        "min_score = 0.45\nescalate_to = \"big\"\n",
    ))
    .await;
    fill(&gw).await;

    let resp = gw
        .chat(ask("Who painted the ceiling of the Sistine Chapel?", false))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "big");
    let route = resp.headers()["x-switchyard-route"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(route.contains("escalated to big"), "{route}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["switchyard"]["sources"], json!([]));
    let sent = echoed(body["choices"][0]["message"]["content"].as_str().unwrap());
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are Corvane's support assistant."));
    assert!(
        !system.contains("[1]"),
        "no passages for the escalation: {system}"
    );

    // Without an escalation the route's model is told that no source matches.
    let mock2 = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&config(&mock2.base_url(), "min_score = 0.45\n")).await;
    fill(&gw).await;
    let resp = gw
        .chat(ask("Who painted the ceiling of the Sistine Chapel?", false))
        .await;
    assert_eq!(resp.headers()["x-switchyard-model"], "answer");
    let body: Value = resp.json().await.unwrap();
    let sent = echoed(body["choices"][0]["message"]["content"].as_str().unwrap());
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("No source matches this question."),
        "{system}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_naming_a_base_needs_the_embedder() {
    let text = "[models.m]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\n[[routes]]\nname = \"kb\"\nwhen = { min_chars = 1 }\ntarget = \"m\"\nknowledge = \"corvane\"\n";
    let err = switchyard_server::Config::parse(text, std::path::Path::new("t.toml"), &|_| None)
        .unwrap_err();
    assert!(err.to_string().contains("[embeddings]"), "{err}");
}
