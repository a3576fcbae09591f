//! When another model answers instead: a model's `fallbacks` after an upstream failure (on
//! streams too, and after a timeout), the errors that must not fall back because every model
//! would refuse the request alike, and a cascade rung that fails on its way up the ladder.

mod common;

use common::{sse_events, start, streamed_text};
use serde_json::{json, Value};
use switchyard_mock::{MockConfig, MockHandle, ANSWER};

/// A model at the mock asking it for `upstream` behaviour: no retries, so each failure is one
/// upstream request, and a first-byte limit short enough to time out `slow-1000` quickly.
fn model(name: &str, base_url: &str, upstream: &str) -> String {
    format!(
        "[models.{name}]\nprovider = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"{upstream}\"\nprice = {{ input = 2.0, output = 10.0 }}\nretries = 0\ntimeouts = {{ connect_ms = 500, first_byte_ms = 200, idle_ms = 1000, total_ms = 5000 }}\n"
    )
}

/// `primary` (at one mock, asking for `upstream`) falling back to `backup` (at another, so its
/// requests are counted apart).
async fn primary_and_backup(upstream: &str) -> (common::Running, MockHandle, MockHandle) {
    let failing = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let backup = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "{}fallbacks = [\"backup\"]\n{}",
        model("primary", &failing.base_url(), upstream),
        model("backup", &backup.base_url(), "mock"),
    ))
    .await;
    (gw, failing, backup)
}

fn question(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "What is 2+2?"}]})
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()[name].to_str().unwrap().to_owned()
}

/// The answer's text, from a stream's deltas or a whole answer's message.
async fn answer_text(resp: reqwest::Response, stream: bool) -> String {
    if stream {
        return streamed_text(&sse_events(resp).await);
    }
    let body: Value = resp.json().await.unwrap();
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_stream_falls_back_before_its_first_byte_and_the_backup_streams_it() {
    let (mut gw, failing, backup) = primary_and_backup("fail-503").await;
    let resp = gw.chat(question("primary", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "backup");
    let route = header(&resp, "x-switchyard-route");
    assert!(
        route.contains("primary failed") && route.ends_with("fell back to backup"),
        "{route}"
    );
    let ev = sse_events(resp).await;
    assert_eq!(ev.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(streamed_text(&ev), ANSWER);
    assert_eq!((failing.requests(), backup.requests()), (1, 1));

    let rows = gw.rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.status, row.model.as_str(), row.requested_model.as_str()),
        (200, "backup", "primary")
    );
    assert_eq!(
        row.chosen.as_deref(),
        Some("primary"),
        "the log says who was chosen"
    );
    assert!(row.stream && row.completion_tokens > 0, "{row:?}");
    assert_eq!(row.route, route);
}

#[tokio::test]
async fn a_model_that_times_out_falls_back_instead_of_answering_504() {
    let (mut gw, failing, backup) = primary_and_backup("slow-1000").await;
    for stream in [false, true] {
        let resp = gw.chat(question("primary", stream)).await;
        assert_eq!(resp.status(), 200, "stream {stream}");
        assert_eq!(header(&resp, "x-switchyard-model"), "backup");
        assert!(header(&resp, "x-switchyard-route").contains("primary failed"));
        let text = answer_text(resp, stream).await;
        assert_eq!(text, ANSWER);
    }
    assert_eq!((failing.requests(), backup.requests()), (2, 2));
    let rows = gw.rows().await;
    assert!(rows.iter().all(|r| r.status == 200 && r.model == "backup"));

    // Without a fallback, the same timeout is the client's 504.
    let slow = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&model("alone", &slow.base_url(), "slow-1000")).await;
    let resp = gw.chat(question("alone", false)).await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
}

/// The upstream behaviours that say the request itself is wrong, or that the answer cannot be
/// read: another model would not do better, so the client gets the error at once.
#[tokio::test]
async fn errors_that_say_the_request_is_wrong_do_not_fall_back() {
    for (upstream, says) in [
        ("fail-400", "HTTP 400"),
        ("fail-404", "HTTP 404"),
        ("fail-422", "HTTP 422"),
        ("bad-json", "malformed"),
    ] {
        let (mut gw, failing, backup) = primary_and_backup(upstream).await;
        let resp = gw.chat(question("primary", false)).await;
        assert_eq!(resp.status(), 502, "{upstream}");
        assert_eq!(header(&resp, "x-switchyard-model"), "none");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "upstream_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{upstream}: {message}");
        assert_eq!(failing.requests(), 1, "{upstream}");
        assert_eq!(backup.requests(), 0, "{upstream} fell back");

        let rows = gw.rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, 502);
        assert!(rows[0].error.as_deref().unwrap().contains(says), "{rows:?}");
    }
}

#[tokio::test]
async fn a_stream_whose_first_event_is_not_json_is_a_502_and_does_not_fall_back() {
    let (mut gw, failing, backup) = primary_and_backup("bad-json").await;
    let resp = gw.chat(question("primary", true)).await;
    // The gateway reads a stream's first event before it answers 200, so the client gets the
    // error as a plain response rather than a stream that fails at once.
    assert_eq!(resp.status(), 502);
    assert_eq!(header(&resp, "x-switchyard-model"), "none");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "upstream_error", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed"));
    assert_eq!((failing.requests(), backup.requests()), (1, 0));
    let rows = gw.rows().await;
    assert_eq!((rows[0].status, rows[0].stream), (502, true));
    assert!(rows[0].error.as_deref().unwrap().contains("malformed"));
}

/// A refused key is this upstream's problem, not the request's: another upstream has its own
/// key, so the fallback answers (and the same upstream is not retried).
#[tokio::test]
async fn a_refused_api_key_falls_back() {
    for upstream in ["fail-401", "fail-403"] {
        let (mut gw, failing, backup) = primary_and_backup(upstream).await;
        let resp = gw.chat(question("primary", false)).await;
        assert_eq!(resp.status(), 200, "{upstream} did not fall back");
        assert_eq!(header(&resp, "x-switchyard-model"), "backup");
        assert_eq!(
            (failing.requests(), backup.requests()),
            (1, 1),
            "{upstream}"
        );
        assert_eq!(gw.rows().await[0].model, "backup");
    }
}

/// A ladder whose first rung cannot answer: `broken` at the mock (`fail-500`) or at a port
/// where nothing listens, then `large`.
async fn ladder_with_broken_first_rung(
    broken_url: &str,
    broken: &str,
) -> (common::Running, MockHandle) {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&format!(
        "{}{}
[[routes]]
name = \"everything\"
when = {{ min_chars = 0 }}
ladder = [\"broken\", \"large\"]
cascade = true
confidence_threshold = 0.5
",
        model("broken", broken_url, broken),
        model("large", &mock.base_url(), "mock"),
    ))
    .await;
    (gw, mock)
}

#[tokio::test]
async fn a_cascade_rung_that_fails_escalates_to_the_next_rung() {
    // A port held by a socket that is bound but never listens: connections to it are refused
    // for as long as the test runs, and no other process can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let unreachable = format!("http://{}/v1", held.local_addr().unwrap());
    let failing = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    for (url, upstream) in [(failing.base_url(), "fail-500"), (unreachable, "mock")] {
        let (mut gw, _large) = ladder_with_broken_first_rung(&url, upstream).await;
        for stream in [false, true] {
            let resp = gw.chat(question("auto", stream)).await;
            assert_eq!(resp.status(), 200, "{upstream} stream {stream}");
            assert_eq!(header(&resp, "x-switchyard-model"), "large");
            let route = header(&resp, "x-switchyard-route");
            assert!(
                route.starts_with("route everything")
                    && route.contains("cascade: broken failed, escalated"),
                "{route}"
            );
            assert_eq!(resp.headers().get("x-switchyard-scores"), None);
            let text = answer_text(resp, stream).await;
            assert_eq!(text, ANSWER);
        }
        let rows = gw.rows().await;
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert_eq!((row.status, row.model.as_str()), (200, "large"));
            assert!(row.route.contains("cascade: broken failed, escalated"));
            assert_eq!(row.error, None);
            // Only the rung that answered is charged: the failed one produced no tokens.
            let large = (2.0 * f64::from(row.prompt_tokens)
                + 10.0 * f64::from(row.completion_tokens))
                / 1e6;
            assert!(
                row.completion_tokens > 0 && (row.cost_usd - large).abs() < 1e-12,
                "{row:?}"
            );
        }
    }
}
