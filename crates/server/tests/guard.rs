//! The privacy guard through the HTTP path: what reaches an upstream (recorded byte for byte by
//! the mock), what the client gets back, each policy, the header, the metrics and the log.

mod common;

use common::{sse_events, start, upstream, Running};
use serde_json::{json, Value};
use switchyard_guard::synth::{Corpus, Sample, DIR};
use switchyard_guard::Kind;
use switchyard_mock::{MockConfig, MockHandle};

const EMAIL: &str = "jane.doe@example.org";
const PHONE: &str = "+44 20 7946 0958";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";

async fn mock_upstream() -> MockHandle {
    switchyard_mock::spawn(MockConfig::default()).await.unwrap()
}

/// A gateway with `config` before one upstream model, `cloud`, at a fresh mock answering as
/// `behaviour`.
async fn cloud(config: &str, behaviour: &str) -> (MockHandle, Running) {
    let mock = mock_upstream().await;
    let gw = start(&format!(
        "{config}{}",
        upstream("cloud", "openai", &mock.base_url(), behaviour)
    ))
    .await;
    (mock, gw)
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

async fn answer_text(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every byte the mock received, as text.
fn received(mock: &MockHandle) -> String {
    mock.received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The values of the kinds the rules find in a labelled sample; the model's kinds (names,
/// addresses, organisations) are checked on their own below.
fn rule_values(s: &Sample) -> Vec<String> {
    s.spans
        .iter()
        .filter(|sp| !matches!(sp.kind, Kind::Person | Kind::Address | Kind::Organization))
        .map(|sp| s.text[sp.start..sp.end].to_owned())
        .collect()
}

/// Our own hard cases: international formats, secrets, values run into punctuation.
const OWN_CASES: &[&str] = &[
    "Email:jane.doe@example.org;phone:+44 20 7946 0958.",
    "(card 4111-1111-1111-1111) and IBAN DE89370400440532013000!",
    "SSN 078-05-1120, or was it 219-09-9999?",
    "Server at 192.168.14.7:8080, MAC 00:1A:2B:3C:4D:5E.",
    "export OPENAI_API_KEY=sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Ruf mich an: +49 30 901820, Steuer-ID 65929970489.",
    "Mon numéro est le +33 1 42 68 53 00.",
    "BTC: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
];

/// Gateways with and without the guard, in front of the same recording upstream.
struct Pair {
    guarded: Running,
    plain: Running,
    guarded_mock: MockHandle,
    plain_mock: MockHandle,
}

async fn pair(provider: &str) -> Pair {
    let guarded_mock = mock_upstream().await;
    let plain_mock = mock_upstream().await;
    let cfg = |mock: &MockHandle| upstream("cloud", provider, &mock.base_url(), "echo-pieces");
    Pair {
        guarded: start(&cfg(&guarded_mock)).await,
        plain: start(&format!("[guard]\nenabled = false\n{}", cfg(&plain_mock))).await,
        guarded_mock,
        plain_mock,
    }
}

/// A conversation holding `texts` in every place a model reads: the system prompt, a user
/// turn, an assistant's tool call, the tool's result and the last user turn.
fn conversation(texts: &[String], stream: bool) -> Value {
    let part = |i: usize| texts[i % texts.len()].clone();
    json!({
        "model": "cloud",
        "stream": stream,
        "messages": [
            {"role": "system", "content": format!("Customer notes: {}", part(0))},
            {"role": "user", "content": part(1)},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": json!({"query": part(2)}).to_string()}
            }]},
            {"role": "tool", "tool_call_id": "call_1", "content": part(3)},
            {"role": "user", "content": texts.join(" ")}
        ],
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "Looks a customer up",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}
        }}]
    })
}

/// What the client got: the answer's text and its tool-call arguments.
async fn what_the_client_got(resp: reqwest::Response, stream: bool) -> (String, String) {
    assert_eq!(resp.status(), 200);
    if !stream {
        let body: Value = resp.json().await.unwrap();
        let m = &body["choices"][0]["message"];
        return (
            m["content"].as_str().unwrap_or_default().to_owned(),
            m["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let (mut text, mut args) = (String::new(), String::new());
    for event in sse_events(resp).await {
        let Ok(chunk) = serde_json::from_str::<Value>(&event) else {
            continue;
        };
        let delta = &chunk["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or_default());
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    (text, args)
}

/// Values JSON writes as they are: the echoed body holds them verbatim, so the restored answer
/// can be compared with the unguarded one byte for byte.
fn json_plain(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
}

async fn leak_test(provider: &str) {
    let dir = switchyard_models::find(DIR).unwrap();
    let corpus = Corpus::load(&dir).unwrap();
    let mut samples: Vec<Sample> = corpus
        .samples(160, 0x5eed)
        .into_iter()
        .filter(|s| s.negative.is_none() && json_plain(&s.text))
        .collect();
    samples.truncate(48);
    let mut texts: Vec<String> = samples.iter().map(|s| s.text.clone()).collect();
    texts.extend(OWN_CASES.iter().map(|c| (*c).to_owned()));
    let mut values: Vec<String> = samples.iter().flat_map(rule_values).collect();
    values.extend(
        [
            EMAIL,
            PHONE,
            "4111-1111-1111-1111",
            "DE89370400440532013000",
            "078-05-1120",
        ]
        .map(str::to_owned),
    );
    values.extend(
        [
            "219-09-9999",
            "192.168.14.7",
            "00:1A:2B:3C:4D:5E",
            "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "+49 30 901820",
            "65929970489",
            "+33 1 42 68 53 00",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ]
        .map(str::to_owned),
    );
    assert!(values.len() > 40, "the set holds {} values", values.len());

    let p = pair(provider).await;
    for stream in [false, true] {
        for batch in texts.chunks(6) {
            let body = conversation(batch, stream);
            let guarded = p.guarded.chat(body.clone()).await;
            let plain = p.plain.chat(body).await;
            let got = what_the_client_got(guarded, stream).await;
            let want = what_the_client_got(plain, stream).await;
            assert!(
                !want.0.is_empty() && !want.1.is_empty(),
                "{provider}: {want:?}"
            );
            assert_eq!(
                got, want,
                "{provider}, stream {stream}: the restored answer differs"
            );
        }
    }
    let sent = received(&p.guarded_mock);
    let leaked: Vec<(&String, Vec<&String>)> = values
        .iter()
        .filter(|v| sent.contains(v.as_str()))
        .map(|v| (v, texts.iter().filter(|t| t.contains(v.as_str())).collect()))
        .collect();
    assert!(
        leaked.is_empty(),
        "{provider}: reached the upstream (value, in): {leaked:?}"
    );
    assert!(
        sent.contains("<EMAIL_1>"),
        "placeholders went upstream instead"
    );
    // The unguarded gateway is the control: the same values did reach its upstream.
    let control = received(&p.plain_mock);
    assert!(values.iter().all(|v| control.contains(v.as_str())));
}

#[tokio::test]
async fn no_personal_data_reaches_an_openai_upstream_and_the_client_gets_the_same_answer() {
    leak_test("openai").await;
}

#[tokio::test]
async fn no_personal_data_reaches_an_anthropic_upstream_and_the_client_gets_the_same_answer() {
    leak_test("anthropic").await;
}

#[tokio::test]
async fn names_and_addresses_are_redacted_by_the_model() {
    let (mock, gw) = cloud("", "echo").await;
    let text = "Please send the contract to Margaret Thompson at 42 Harrow Lane, Leeds.";
    let resp = gw.chat(ask("cloud", text)).await;
    let redacted = resp.headers()["x-switchyard-redacted"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(redacted.contains("PERSON=1"), "{redacted}");
    let answer = answer_text(resp).await;
    assert!(answer.contains("Margaret Thompson"), "restored: {answer}");
    let sent = received(&mock);
    assert!(
        !sent.contains("Margaret") && !sent.contains("Thompson"),
        "{sent}"
    );
    assert!(!sent.contains("Harrow Lane"), "{sent}");
}

#[tokio::test]
async fn the_response_says_what_was_redacted_by_type_and_the_metrics_count_it() {
    let (_mock, mut gw) = cloud("", "mock").await;
    let text = format!("Mail {EMAIL} or jane@example.com, call {PHONE}; {EMAIL} again.");
    let resp = gw.chat(ask("cloud", &text)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-redacted"], "EMAIL=2,PHONE=1");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("switchyard_guard_redactions_total{type=\"EMAIL\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("switchyard_guard_redactions_total{type=\"PHONE\"} 1"));
    let clean = gw
        .chat(ask("cloud", "What is the capital of France?"))
        .await;
    assert!(clean.headers().get("x-switchyard-redacted").is_none());
    let rows = gw.rows().await;
    assert_eq!(rows[0].redacted.as_deref(), Some("EMAIL=2,PHONE=1"));
    assert_eq!(rows[1].redacted, None);
}

#[tokio::test]
async fn a_blocked_type_is_refused_with_its_name_and_never_its_value() {
    let (mock, mut gw) = cloud("[guard.policy]\niban = \"block\"\n", "mock").await;
    let resp = gw
        .chat(ask("cloud", &format!("Pay into {IBAN} today")))
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(body["error"]["code"], "personal_data_blocked");
    assert!(message.contains("iban (IBAN)"), "{message}");
    assert!(!message.contains("DE89"), "{message}");
    assert_eq!(mock.requests(), 0, "nothing was sent");
    // Other types are still redacted and sent.
    assert_eq!(gw.chat(ask("cloud", EMAIL)).await.status(), 200);
    let metrics = gw.metrics().await;
    assert!(metrics.contains("switchyard_guard_blocked_requests_total{type=\"IBAN\"} 1"));
    let rows = gw.rows().await;
    assert_eq!(rows[0].status, 400);
    assert!(!format!("{:?}", rows[0]).contains("DE89"));
}

#[tokio::test]
async fn allowed_types_are_sent_as_written() {
    let (mock, gw) = cloud("[guard.policy]\nemail = \"allow\"\n", "mock").await;
    let resp = gw.chat(ask("cloud", &format!("{EMAIL}, {PHONE}"))).await;
    assert_eq!(resp.headers()["x-switchyard-redacted"], "PHONE=1");
    let sent = received(&mock);
    assert!(sent.contains(EMAIL) && !sent.contains(PHONE), "{sent}");
}

/// A cloud model, and one on the company's own machines that counts as local.
fn cloud_and_on_premises(cloud: &MockHandle, onprem: &MockHandle) -> String {
    format!(
        "{}{}on_premises = true\n",
        upstream("cloud", "openai", &cloud.base_url(), "mock"),
        upstream("onprem", "openai", &onprem.base_url(), "mock")
    )
}

#[tokio::test]
async fn keep_local_data_goes_to_a_local_model_as_written_or_is_refused() {
    let cloud = mock_upstream().await;
    let onprem = mock_upstream().await;
    let gw = start(&format!(
        "[guard.policy]\nus_ssn = \"keep_local\"\n{}",
        cloud_and_on_premises(&cloud, &onprem)
    ))
    .await;
    let text = "My SSN is 078-05-1120.";
    // Named, with no local model to fall back to: refused, naming the type.
    let resp = gw.chat(ask("cloud", text)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("us_ssn data, which the policy keeps on local models"),
        "{message}"
    );
    assert!(!message.contains("078-05"));
    assert_eq!(cloud.requests(), 0);
    // The local model sees it as written.
    let resp = gw.chat(ask("onprem", text)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-switchyard-redacted").is_none());
    assert!(received(&onprem).contains("078-05-1120"));
}

#[tokio::test]
async fn the_router_sees_personal_data_and_a_route_can_keep_it_local() {
    let cloud = mock_upstream().await;
    let onprem = mock_upstream().await;
    let gw = start(&format!(
        "[router]\ndefault = \"cloud\"\n{}[[routes]]\nname = \"private\"\nwhen = {{ pii = true }}\ntarget = \"onprem\"\n",
        cloud_and_on_premises(&cloud, &onprem)
    ))
    .await;
    let resp = gw.chat(ask("auto", &format!("Write to {EMAIL}"))).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "onprem");
    let route = resp.headers()["x-switchyard-route"].to_str().unwrap();
    assert!(route.contains("personal data (email)"), "{route}");
    let resp = gw.chat(ask("auto", "What is 2 + 2?")).await;
    assert_eq!(resp.headers()["x-switchyard-model"], "cloud");
    assert!(received(&onprem).contains(EMAIL));
}

#[tokio::test]
async fn a_model_the_policy_keeps_data_from_is_skipped_for_its_fallback() {
    let cloud = mock_upstream().await;
    let onprem = mock_upstream().await;
    let gw = start(&format!(
        "[guard.policy]\nus_ssn = \"keep_local\"\n{}fallbacks = [\"onprem\"]\n{}on_premises = true\n",
        upstream("cloud", "openai", &cloud.base_url(), "mock"),
        upstream("onprem", "openai", &onprem.base_url(), "mock")
    ))
    .await;
    let resp = gw.chat(ask("cloud", "SSN 078-05-1120")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "onprem");
    let route = resp.headers()["x-switchyard-route"].to_str().unwrap();
    assert!(
        route.contains("cloud skipped: the guard's policy"),
        "{route}"
    );
    assert_eq!(cloud.requests(), 0);
}

#[tokio::test]
async fn data_kept_in_a_region_reaches_only_models_of_that_region() {
    let us = mock_upstream().await;
    let eu = mock_upstream().await;
    let gw = start(&format!(
        "[guard]\nregion = \"eu\"\n[guard.keep_in_region]\niban = \"eu\"\n{}region = \"us\"\n{}region = \"EU\"\n",
        upstream("us", "openai", &us.base_url(), "mock"),
        upstream("eu", "anthropic", &eu.base_url(), "mock")
    ))
    .await;
    let text = format!("Refund to {IBAN}");
    let resp = gw.chat(ask("us", &text)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("must stay in region \"eu\" and `us` is in \"us\""),
        "{message}"
    );
    assert_eq!(us.requests(), 0);
    // An EU model may receive it, redacted as any non-local model.
    let resp = gw.chat(ask("eu", &text)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-redacted"], "IBAN=1");
    // Data without a region rule goes anywhere.
    assert_eq!(gw.chat(ask("us", EMAIL)).await.status(), 200);
}

#[tokio::test]
async fn a_route_can_keep_all_its_requests_in_a_region_and_override_the_policy() {
    let us = mock_upstream().await;
    let gw = start(&format!(
        "{}region = \"us\"\n[[routes]]\nname = \"hr\"\nwhen = {{ keywords = [\"payroll\"] }}\ntarget = \"us\"\n[[routes]]\nname = \"sales\"\nwhen = {{ keywords = [\"lead\"] }}\ntarget = \"us\"\n[guard.routes.hr]\nkeep_in_region = \"eu\"\n[guard.routes.sales]\npolicy = {{ email = \"allow\" }}\n",
        upstream("us", "openai", &us.base_url(), "mock")
    ))
    .await;
    let resp = gw.chat(ask("auto", "payroll question")).await;
    assert_eq!(resp.status(), 400);
    let resp = gw.chat(ask("auto", &format!("new lead: {EMAIL}"))).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-switchyard-redacted").is_none());
    assert!(received(&us).contains(EMAIL));
}

#[tokio::test]
async fn a_model_can_be_trusted_with_a_type() {
    let mock = mock_upstream().await;
    let gw = start(&format!(
        "{}guard = {{ email = \"allow\" }}\n",
        upstream("trusted", "openai", &mock.base_url(), "mock")
    ))
    .await;
    let resp = gw.chat(ask("trusted", &format!("{EMAIL} {PHONE}"))).await;
    assert_eq!(resp.headers()["x-switchyard-redacted"], "PHONE=1");
    assert!(received(&mock).contains(EMAIL));
}

#[tokio::test]
async fn the_log_holds_no_raw_values_and_keeps_redacted_text_only_when_asked() {
    for log_text in [false, true] {
        let mock = mock_upstream().await;
        let mut gw = start(&format!(
            "{}{}",
            // `start` opens the config with the [store] table: this line lands in it.
            if log_text {
                "log_text = \"redacted\"\n"
            } else {
                ""
            },
            upstream("cloud", "openai", &mock.base_url(), "echo")
        ))
        .await;
        let text = format!("I am Margaret Thompson, {EMAIL}, {PHONE}, IBAN {IBAN}.");
        assert_eq!(gw.chat(ask("cloud", &text)).await.status(), 200);
        let db = gw.db.clone();
        let rows = gw.rows().await;
        let raw = std::fs::read(&db).unwrap();
        let wal = std::fs::read(db.with_extension("db-wal")).unwrap_or_default();
        for bytes in [&raw, &wal] {
            let s = String::from_utf8_lossy(bytes);
            for v in [EMAIL, PHONE, IBAN, "Thompson"] {
                assert!(!s.contains(v), "the log file holds {v}");
            }
        }
        match (log_text, &rows[0].text) {
            (false, None) => {}
            (true, Some(t)) => {
                assert!(t.contains("<EMAIL_1>") && t.contains("<PERSON_1>"), "{t}");
                let messages: Value = serde_json::from_str(t).unwrap();
                assert_eq!(messages[0]["role"], "user");
            }
            other => panic!("log_text {log_text}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_guard_can_be_turned_off() {
    let (mock, gw) = cloud("[guard]\nenabled = false\n", "mock").await;
    let resp = gw.chat(ask("cloud", EMAIL)).await;
    assert!(resp.headers().get("x-switchyard-redacted").is_none());
    assert!(received(&mock).contains(EMAIL));
}

#[tokio::test]
async fn a_request_longer_than_the_classifier_reads_is_refused_not_sent() {
    let (mock, gw) = cloud("[guard]\nmax_model_bytes = 1000\n", "mock").await;
    let resp = gw.chat(ask("cloud", &"Call Margaret. ".repeat(100))).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_model_bytes = 1000"), "{message}");
    assert_eq!(mock.requests(), 0);
    assert_eq!(gw.chat(ask("cloud", "Call Margaret.")).await.status(), 200);
}
