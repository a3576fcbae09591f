//! `switchyard replay` end to end: the tiny local model and a mock upstream answer a small
//! workload through the gateway, the answers are cached and graded, every router is replayed,
//! and a second run asks no model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use switchyard_mock::MockConfig;

fn tiny() -> PathBuf {
    switchyard_models::find("tiny.gguf").unwrap_or_else(|missing| panic!("{missing}"))
}

/// One of each grade; the mock's `echo` answers with the request, which holds the answer.
const WORKLOAD: &str = r#"{"prompt": "Reply with the word yes.", "grade": {"kind": "exact", "answer": "yes"}, "group": "a"}
{"prompt": "Which fruit is yellow: banana or plum?", "grade": {"kind": "contains", "answer": ["banana"]}, "group": "a"}
{"prompt": "Pick one. A) stone B) water C) sand. Which is wet? Answer: B", "grade": {"kind": "choice", "answer": "B"}, "group": "b"}
{"prompt": "What is 40 + 2? The answer is 42", "grade": {"kind": "number", "answer": 42}, "group": "b"}
{"prompt": "Write def add(a, b): in Python", "grade": {"kind": "regex", "answer": "def add\\("}, "group": "c"}
{"messages": [{"role": "user", "content": "Hello there"}], "grade": {"kind": "none"}, "group": "c"}
"#;

fn config(dir: &Path, mock: &str, large: &str) -> PathBuf {
    let path = dir.join("switchyard.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\npath = \"{db}\"\n
[models.small]\nprovider = \"local\"\npath = \"{tiny}\"\nslots = 2\ncontext_tokens = 1024\nprice = {{ input = 0.0, output = 0.0 }}\n
[models.large]\nprovider = \"openai\"\nbase_url = \"{mock}\"\nmodel = \"{large}\"\nprice = {{ input = 2.5, output = 10.0 }}\n
[[routes]]\nname = \"everything\"\nwhen = {{ min_chars = 1 }}\nladder = [\"small\", \"large\"]\ncascade = true\nconfidence_threshold = 0.5\n",
            db = dir.join("switchyard.db").display(),
            tiny = tiny().display(),
        ),
    )
    .unwrap();
    path
}

fn replay(config: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--max-tokens", "8", "--concurrency", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(run: &Output) -> String {
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_collects_grades_and_replays_every_router_and_a_second_run_asks_nothing() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &mock.base_url(), "echo");
    let data = dir.path().join("workload.jsonl");
    std::fs::write(&data, WORKLOAD).unwrap();
    let out = dir.path().join("replay");

    let (c, d, o) = (config.clone(), data.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || replay(&c, &d, &o, &["--json"]))
        .await
        .unwrap();
    let report: Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!(report["models"], serde_json::json!(["small", "large"]));
    assert_eq!(report["requests"], 6);
    for name in [
        "all_small",
        "all_large",
        "random",
        "length",
        "oracle",
        "cascade",
        "configured",
    ] {
        let r = &report["routers"][name];
        for key in [
            "small_share",
            "large_share",
            "quality",
            "quality_vs_large",
            "cost_usd",
            "saving_vs_large",
            "latency_p50_ms",
            "latency_p95_ms",
            "apgr",
            "cpt50",
            "cpt80",
            "cpt95",
        ] {
            assert!(r.get(key).is_some(), "{name} lacks {key}: {r}");
        }
    }
    // Five of the six rows are labelled; the echo (the request's JSON) holds four of their
    // answers, but is not exactly "yes".
    assert_eq!(report["routers"]["all_large"]["quality"], 0.8);
    assert_eq!(report["routers"]["all_small"]["small_share"], 1.0);
    assert_eq!(report["routers"]["all_small"]["saving_vs_large"], 1.0);
    assert!(report["routers"]["all_large"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(
        mock.requests(),
        6,
        "the large model answered each request once"
    );
    let cached = std::fs::read_to_string(out.join("answers.jsonl")).unwrap();
    assert_eq!(cached.lines().count(), 12);
    assert!(out.join("replay.svg").is_file() && out.join("report.json").is_file());

    // The configured router is the cascade: replayed, it escalates what the live one does.
    let live = tokio::task::spawn_blocking(move || {
        WORKLOAD
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|row| {
                let text = row["prompt"]
                    .as_str()
                    .or(row["messages"][0]["content"].as_str())
                    .unwrap()
                    .to_owned();
                let run = Command::new(env!("CARGO_BIN_EXE_switchyard"))
                    .env("RUST_LOG", "warn")
                    .args(["chat", "--max-tokens", "8", "--config"])
                    .arg(&config)
                    .arg(&text)
                    .output()
                    .unwrap();
                ok(&run).contains("model:   small")
            })
            .filter(|small| *small)
            .count()
    })
    .await
    .unwrap();
    let replayed = report["routers"]["configured"]["small_share"]
        .as_f64()
        .unwrap()
        * 6.0;
    assert_eq!(replayed.round() as usize, live, "{report}");
    assert_eq!(
        report["routers"]["cascade"]["small_share"],
        report["routers"]["configured"]["small_share"]
    );

    // The chats went into the request log: its live operating point is what they did; the
    // replay's own pinned requests are not counted.
    let run = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .arg("replay")
        .arg("--config")
        .arg(dir.path().join("switchyard.toml"))
        .arg("--data")
        .arg(dir.path().join("switchyard.db"))
        .arg("--json")
        .output()
        .unwrap();
    let point: Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!(point["requests"], 6, "{point}");
    assert_eq!(point["cascade_requests"], 6);
    let escalated = point["escalation_rate"].as_f64().unwrap() * 6.0;
    assert_eq!(escalated.round() as usize, 6 - live, "{point}");

    // Everything is cached: the second run starts no gateway and asks no model.
    let before = mock.requests();
    let (c, d, o) = (
        dir.path().join("switchyard.toml"),
        data.clone(),
        out.clone(),
    );
    let run = tokio::task::spawn_blocking(move || replay(&c, &d, &o, &["--split", "0.5"]))
        .await
        .unwrap();
    let table = ok(&run);
    assert_eq!(mock.requests(), before);
    assert!(!String::from_utf8_lossy(&run.stderr).contains("collected"));
    assert!(
        table.contains("cascade") && table.contains("oracle"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_collection_resumes_where_it_stopped() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &mock.base_url(), "slow-400");
    let data = dir.path().join("workload.jsonl");
    std::fs::write(&data, WORKLOAD).unwrap();
    let out = dir.path().join("replay");
    let answers = out.join("answers.jsonl");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .arg("replay")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--max-tokens", "8", "--concurrency", "1", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&answers).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no answers were cached"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = std::fs::read_to_string(&answers).unwrap().lines().count();
    assert!(kept < 12, "the run finished before it was killed");

    let (c, d, o) = (config.clone(), data.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || replay(&c, &d, &o, &["--json"]))
        .await
        .unwrap();
    let report: Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!(report["requests"], 6);
    let lines: Vec<Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut keys: Vec<String> = lines
        .iter()
        .map(|a| format!("{}/{}", a["item"], a["model"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12, "every request answered by both models");
    assert!(
        lines.len() <= 13,
        "at most the answer in flight at the kill is asked twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calibrate_fits_on_the_replays_cached_answers_without_inference() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &mock.base_url(), "echo");
    let data = dir.path().join("workload.jsonl");
    // Half the rows any answer passes, half none does: both classes for the fit.
    let rows: String = (0..8)
        .map(|i| {
            let grade = if i % 2 == 0 {
                r#"{"kind": "regex", "answer": "(?s)."}"#
            } else {
                r#"{"kind": "exact", "answer": "never said"}"#
            };
            format!("{{\"prompt\": \"Tell me about number {i}.\", \"grade\": {grade}, \"group\": \"g{i}\"}}\n")
        })
        .collect();
    std::fs::write(&data, rows).unwrap();
    let out = dir.path().join("replay");
    let (c, d, o) = (config.clone(), data.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || replay(&c, &d, &o, &["--split", "0.5"]))
        .await
        .unwrap();
    ok(&run);
    for file in ["train.jsonl", "held-out.jsonl", "small.jsonl"] {
        assert!(out.join("labels").join(file).is_file(), "{file}");
    }

    let calibration = dir.path().join("calibration.json");
    let run = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .arg("calibrate")
        .arg("--data")
        .arg(&out)
        .arg("--out")
        .arg(&calibration)
        .output()
        .unwrap();
    let stdout = ok(&run);
    assert!(stdout.contains("held-out AUC"), "{stdout}");
    let c = switchyard_router::confidence::Calibration::load(&calibration).unwrap();
    assert_eq!(c.metadata.model, "small");
    assert_eq!(
        (c.metadata.n, c.metadata.n_train, c.metadata.n_test),
        (8, 4, 4)
    );
    assert!(
        c.metadata.data.contains("switchyard replay"),
        "{}",
        c.metadata.data
    );
}
