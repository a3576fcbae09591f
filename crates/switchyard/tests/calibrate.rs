//! `switchyard calibrate` end to end on the tiny test model: it answers labelled questions,
//! fits a calibration and writes a file the cascade can load.

use std::path::PathBuf;
use std::process::Command;

use switchyard_router::confidence::{AnswerSignals, Calibration, Feature};

fn tiny() -> PathBuf {
    switchyard_models::find("tiny.gguf").unwrap_or_else(|missing| panic!("{missing}"))
}

const QUESTIONS: &str = r#"{"question": "What is 2 + 2?", "answer_a": "3", "answer_b": "4", "answer_c": "5", "answer_d": "22", "correct_answer": "B", "topic": "addition"}
{"question": "What is the capital of France?", "answer_a": "Paris", "answer_b": "Rome", "answer_c": "Lyon", "answer_d": "Nice", "correct_answer": "A", "topic": "geography"}
{"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c", "answer_d": "answer_d", "correct_answer": "answer", "topic": "junk"}
{"question": "Which is a mammal?", "answer_a": "Trout", "answer_b": "Eagle", "answer_c": "Whale", "answer_d": "Frog", "correct_answer": "C", "topic": "biology"}
{"question": "What is 3 * 3?", "answer_a": "6", "answer_b": "33", "answer_c": "12", "answer_d": "9", "correct_answer": "D", "topic": "multiplication"}
{"question": "Which colour is the sky on a clear day?", "answer_a": "Blue", "answer_b": "Green", "answer_c": "Red", "answer_d": "Black", "correct_answer": "A", "topic": "general"}
"#;

#[test]
fn calibrate_answers_the_questions_and_writes_a_calibration_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("questions.jsonl");
    std::fs::write(&data, QUESTIONS).unwrap();
    let out = dir.path().join("calibration.json");
    let records = dir.path().join("records.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .args(["calibrate", "--model"])
        .arg(tiny())
        .arg("--data")
        .arg(&data)
        .args(["--n", "5", "--threads", "2", "--max-tokens", "4"])
        .args(["--target-escalation", "0.4", "--out"])
        .arg(&out)
        .arg("--records")
        .arg(&records)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("5 answered") && stdout.contains("1 junk rows skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("held-out AUC") && stdout.contains("threshold"),
        "{stdout}"
    );

    let c = Calibration::load(&out).unwrap();
    assert_eq!(c.features, Feature::ALL);
    assert_eq!(c.weights.len(), Feature::ALL.len());
    assert_eq!(c.metadata.model, "tiny.gguf");
    assert_eq!(
        (c.metadata.n, c.metadata.n_train + c.metadata.n_test),
        (5, 5)
    );
    assert!(c.metadata.n_test >= 1);
    assert!(c.metadata.data.contains("questions.jsonl"));
    assert_eq!(c.metadata.target_escalation, 0.4);
    assert!((0.0..=1.0).contains(&c.threshold));
    assert!((0.0..=1.0).contains(&c.metadata.accuracy));
    let p = c.probability(&AnswerSignals::default());
    assert!(p > 0.0 && p < 1.0);
    assert_eq!(
        std::fs::read_to_string(&records).unwrap().lines().count(),
        5
    );
}

#[test]
fn calibrate_names_the_line_of_a_malformed_question() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(&data, "{\"question\": \"no choices\"}\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("RUST_LOG", "warn")
        .args(["calibrate", "--model"])
        .arg(tiny())
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("c.json"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("bad.jsonl:1"), "{stderr}");
}
