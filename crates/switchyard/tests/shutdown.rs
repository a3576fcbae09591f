//! Stopping the real `switchyard serve` with SIGTERM (what a supervisor sends) or SIGINT (Ctrl-C)
//! while requests are in flight: each one still gets its answer, the process exits cleanly, and
//! the request log has every row.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{json, Value};
use switchyard_mock::{MockConfig, ANSWER};

/// Requests in flight when the signal comes.
const IN_FLIGHT: u64 = 8;

/// A running `switchyard serve`, killed if a test fails before it exits by itself.
struct Gateway {
    child: Child,
    url: String,
    /// The lines it writes to stderr (its log), as they come.
    log: mpsc::Receiver<String>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn serve(config: &Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchyard");
        let url = common::printed_address(&mut child);
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Gateway { child, url, log }
    }

    /// Sends the signal `name` (`TERM`, `INT`) to the gateway's process.
    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {name} failed");
    }

    /// Blocks until the gateway logs a line containing `needle`; panics if its log ends first.
    fn wait_for_log(&self, needle: &str) {
        let mut seen = Vec::new();
        for line in self.log.iter() {
            if line.contains(needle) {
                return;
            }
            seen.push(line);
        }
        panic!(
            "the gateway's log ended without {needle:?}:\n{}",
            seen.join("\n")
        );
    }
}

/// Starts the gateway in front of a mock whose model holds every request until released,
/// puts [`IN_FLIGHT`] requests through it, signals it once the mock holds them all, and checks
/// that nothing in flight is lost.
async fn a_signal_finishes_in_flight_requests_and_flushes_the_log(signal: &'static str) {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[models.large]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"held\"\nprice = {{ input = 2.0, output = 10.0 }}\n",
            db.display().to_string(),
            mock.base_url(),
        ),
    )
    .unwrap();
    let mut gateway = Gateway::serve(&config);

    let client = reqwest::Client::new();
    let answers: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let send = client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .json(&json!({"model": "large", "messages": [{"role": "user", "content": format!("question {i}")}]}))
                .send();
            tokio::spawn(async move {
                let resp = send.await?;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
        })
        .collect();
    // Every request has passed the gateway and waits upstream: all of them are in flight.
    mock.wait_for_requests(IN_FLIGHT).await;

    gateway.signal(signal);
    // The gateway noticed the signal (and stops accepting) before any answer could come back.
    tokio::task::block_in_place(|| gateway.wait_for_log("shutting down"));
    mock.release_held();

    for answer in answers {
        let (status, body) = answer.await.unwrap().expect("the request was answered");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], ANSWER);
    }
    let exit = tokio::task::block_in_place(|| gateway.child.wait()).unwrap();
    assert!(
        exit.success(),
        "switchyard exited with {exit} after SIG{signal}"
    );

    let rows = switchyard_store::read_requests(&db).unwrap();
    assert_eq!(rows.len() as u64, IN_FLIGHT, "one row per request");
    assert!(
        rows.iter()
            .all(|r| r.status == 200 && r.model == "large" && r.cost_usd > 0.0),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_loses_no_row() {
    a_signal_finishes_in_flight_requests_and_flushes_the_log("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_in_flight_requests_and_loses_no_row() {
    a_signal_finishes_in_flight_requests_and_flushes_the_log("INT").await;
}

/// The signal handlers exist before the address is printed: a supervisor that stops the
/// gateway as soon as it says it is listening gets a clean exit, not a kill.
#[test]
fn a_signal_right_after_the_listening_line_is_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[models.large]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
            dir.path().join("log.db").display().to_string(),
        ),
    )
    .unwrap();
    for signal in ["TERM", "INT"] {
        let mut gateway = Gateway::serve(&config);
        gateway.signal(signal);
        let exit = gateway.child.wait().unwrap();
        assert!(
            exit.success(),
            "switchyard exited with {exit} after SIG{signal}"
        );
    }
}
