//! Training the learned router from the gateway's own request log: serve with
//! `[router] record_features` and cascades, rate a few answers through `POST /v1/feedback`,
//! stop cleanly, then `switchyard train --data <the log>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use switchyard_router::learned::LearnedRouter;
use switchyard_server::{Config, Server};

fn models_dir() -> String {
    switchyard_models::dir().display().to_string()
}

/// Serves `config` until `work` is done, then stops the way SIGTERM does (the log flushed).
async fn serving<F, Fut>(config: &str, db: &Path, work: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let text = format!("[store]\npath = {:?}\n{config}", db.display().to_string());
    let config = Config::parse(&text, Path::new("test.toml"), &|_| None).unwrap();
    let server = Server::new(&config, &switchyard_server::load_local).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    work(base).await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

async fn ask(client: &reqwest::Client, base: &str, model: &str, text: &str) -> String {
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": model, "max_tokens": 4,
                      "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{text}");
    resp.headers()["x-switchyard-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn rate(client: &reqwest::Client, base: &str, id: &str, score: f64) {
    let resp = client
        .post(format!("{base}/v1/feedback"))
        .json(&json!({"request_id": id, "score": score}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["request_id"], id);
}

fn train(data: &[&Path], out: &Path, extra: &[&str]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.env("SWITCHYARD_MODELS", models_dir())
        .env("RUST_LOG", "warn")
        .arg("train");
    for d in data {
        cmd.arg("--data").arg(d);
    }
    let out = cmd.arg("--out").arg(out).args(extra).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_log_trains_a_router_the_server_loads() {
    let mock = switchyard_mock::spawn(switchyard_mock::MockConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Any name: the trainer knows an SQLite file by its header.
    let db: PathBuf = dir.path().join("traffic.log");
    let models = format!(
        "[models.tiny]\nprovider = \"local\"\npath = \"{m}/tiny.gguf\"\nslots = 2\ncontext_tokens = 1024\n\
         [models.large]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"mock\"\nprice = {{ input = 2.0, output = 10.0 }}\n\
         [embeddings]\npath = \"{m}/all-MiniLM-L6-v2\"\n",
        mock.base_url(),
        m = models_dir(),
    );
    // Before features were recorded: a routed request's row without them.
    serving(&models, &db, |base| async move {
        ask(&reqwest::Client::new(), &base, "auto", "An old question?").await;
    })
    .await;

    // Proofs always escalate (no confidence reaches 1), everything else is always kept, and
    // greetings go straight to the large model (features, but no cascade to label them).
    let config = format!(
        "[router]\nrecord_features = true\n{models}
[[routes]]
name = \"proofs\"
when = {{ keywords = [\"prove\"] }}
ladder = [\"tiny\", \"large\"]
cascade = true
confidence_threshold = 1.0

[[routes]]
name = \"greetings\"
when = {{ keywords = [\"hello\"] }}
target = \"large\"

[[routes]]
name = \"rest\"
when = {{ min_chars = 0 }}
ladder = [\"tiny\", \"large\"]
cascade = true
confidence_threshold = 0.0
"
    );
    serving(&config, &db, |base| async move {
        let client = reqwest::Client::new();
        let mut proofs = Vec::new();
        let mut easy = Vec::new();
        for i in 0..6 {
            proofs.push(
                ask(
                    &client,
                    &base,
                    "auto",
                    &format!("Prove that there are infinitely many primes above {i}."),
                )
                .await,
            );
            easy.push(
                ask(
                    &client,
                    &base,
                    "auto",
                    &format!("What colour is a ripe banana number {i}?"),
                )
                .await,
            );
        }
        ask(&client, &base, "auto", "hello there").await;
        ask(&client, &base, "large", "Named, not routed.").await;
        // A kept answer rated bad becomes "not good enough"; a good rating keeps it good; a
        // good rating of an escalated request rates the large model, not the small one.
        rate(&client, &base, &easy[0], 0.0).await;
        rate(&client, &base, &easy[1], 1.0).await;
        rate(&client, &base, &proofs[0], 1.0).await;
        rate(&client, &base, "no-such-request", 0.0).await;
    })
    .await;

    let rows = switchyard_store::read_requests(&db).unwrap();
    assert_eq!(rows.len(), 19, "1 old + 14 chats + 4 feedback posts");
    // Each cascade's first rung is logged as data: the 6 proofs escalated, the 6 others kept.
    let kept: Vec<bool> = rows
        .iter()
        .filter_map(|r| switchyard_router::logged::read_steps(r.cascade.as_deref()))
        .map(|steps| steps[0].step.kept())
        .collect();
    assert_eq!(kept.iter().filter(|k| !**k).count(), 6, "{kept:?}");
    assert_eq!(kept.iter().filter(|k| **k).count(), 6, "{kept:?}");

    let out = dir.path().join("router.json");
    let (stdout, stderr) = train(&[&db], &out, &[]);
    assert!(
        stderr.contains(
            "19 logged requests: 5 not routed by \"auto\" (ignored), 1 without features (skipped), \
             1 without a label (skipped), 12 examples (7 small model not good enough, 5 good enough); \
             4 feedback rows, 1 for requests not in the log"
        ),
        "{stderr}"
    );
    assert!(
        stdout.contains("on 12 examples") && stdout.contains("<- chosen"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("embeddings:"),
        "log rows are not re-embedded: {stderr}"
    );
    let router = LearnedRouter::load(&out).unwrap();
    assert_eq!(router.metadata().examples, 12);
    assert_eq!(router.dims(), 384);

    // Replaying the log through it works too (no text: only features).
    let eval = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("SWITCHYARD_MODELS", models_dir())
        .args(["eval", "--json", "--data"])
        .arg(&db)
        .arg("--router")
        .arg(&out)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(report["examples"], 12, "{report}");

    // The server loads it.
    let served = format!(
        "[router]\nlearned = {{ path = {:?}, weak = \"tiny\", strong = \"large\" }}\n{models}",
        out.display().to_string()
    );
    let db2 = dir.path().join("second.db");
    serving(&served, &db2, |base| async move {
        ask(&reqwest::Client::new(), &base, "auto", "Prove it.").await;
    })
    .await;
    let rows = switchyard_store::read_requests(&db2).unwrap();
    assert!(
        rows[0]
            .route
            .starts_with(&format!("learned {}: score", router.name())),
        "{}",
        rows[0].route
    );

    // Mixed with labelled JSONL: both go through the same learner selection.
    let jsonl = dir.path().join("labelled.jsonl");
    let lines: Vec<String> = (0..10)
        .map(|i| {
            json!({"prompt": format!("Question {i}?"), "scores": {"tiny": i % 2, "large": 1}})
                .to_string()
        })
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let mixed = dir.path().join("mixed.json");
    let (stdout, _) = train(
        &[&jsonl, &db],
        &mixed,
        &["--weak", "tiny", "--strong", "large", "--learner", "logreg"],
    );
    assert!(stdout.contains("on 22 examples"), "{stdout}");
    let router = LearnedRouter::load(&mixed).unwrap();
    assert_eq!(router.metadata().examples, 22);
    assert_eq!(
        router.metadata().training_groups,
        vec!["labelled".to_owned(), "traffic".to_owned()]
    );
}
