//! `switchyard usage`: the request log's spend against the baseline, as a table or JSON, read
//! from the store a config names after the gateway served traffic.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use switchyard_mock::MockConfig;
use switchyard_server::{Config, Server};

fn config(db: &Path, mock: &str) -> String {
    format!(
        "[store]\npath = {:?}\n[accounting]\nbaseline = \"large\"\n\
         [models.small]\nprovider = \"openai\"\nbase_url = \"{mock}\"\nmodel = \"mock\"\nprice = {{ input = 0.1, output = 0.4 }}\n\
         [models.large]\nprovider = \"openai\"\nbase_url = \"{mock}\"\nmodel = \"mock\"\nprice = {{ input = 2.0, output = 10.0 }}\n",
        db.display().to_string()
    )
}

fn usage(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("usage")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_prints_spend_and_savings_from_the_log_a_config_names() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("switchyard.db");
    let text = config(&db, &mock.base_url());
    let file = dir.path().join("switchyard.toml");
    std::fs::write(&file, &text).unwrap();

    let server = Server::new(
        &Config::parse(&text, &file, &|_| None).unwrap(),
        &switchyard_server::load_local,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for model in ["small", "small", "large"] {
        let resp = client
            .post(format!("{base}/v1/chat/completions"))
            .json(
                &json!({"model": model, "messages": [{"role": "user", "content": "Hello there"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let served: Value = client
        .get(format!("{base}/v1/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    let cfg = file.display().to_string();
    let (ok, out, err) = usage(&["--config", &cfg, "--json"]);
    assert!(ok, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed, served,
        "the CLI and GET /v1/usage read the same sums"
    );
    assert_eq!(printed["total"]["requests"], 3);
    assert!(printed["total"]["saved_usd"].as_f64().unwrap() > 0.0);

    let (ok, out, err) = usage(&["--config", &cfg, "--since", "1h", "--group-by", "route"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("group") && lines[0].contains("saved"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("explicit") && lines[1].contains(" 3 "),
        "{out}"
    );
    assert!(lines[2].starts_with("total"), "{out}");

    let (ok, _, err) = usage(&["--config", &cfg, "--group-by", "team"]);
    assert!(!ok && err.contains("key, model, route or day"), "{err}");
    let (ok, _, err) = usage(&["--config", &cfg, "--from", "someday"]);
    assert!(!ok && err.contains("someday"), "{err}");
    let missing = dir.path().join("none.toml");
    std::fs::write(
        &missing,
        config(&dir.path().join("none.db"), &mock.base_url()),
    )
    .unwrap();
    let (ok, _, err) = usage(&["--config", &missing.display().to_string()]);
    assert!(
        !ok && err.contains("none.db") && err.contains("serve some traffic first"),
        "{err}"
    );
}
