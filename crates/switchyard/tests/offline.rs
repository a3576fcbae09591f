//! `switchyard train` and `switchyard eval` end to end on a few small MMLU subjects (about 700
//! prompts to embed), from the RouteLLM data beside the clone.

use std::path::PathBuf;
use std::process::Command;

const WEAK: &str = "mistralai/Mixtral-8x7B-Instruct-v0.1";
const STRONG: &str = "gpt-4-1106-preview";

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/routellm-mmlu"
    ));
    assert!(
        dir.join("mmlu_anatomy.csv").is_file(),
        "the router training data is missing: expected the RouteLLM MMLU CSVs in {} \
         (the shared/ folder beside the clone)",
        dir.display()
    );
    dir
}

fn subject(name: &str) -> String {
    data_dir()
        .join(format!("mmlu_{name}.csv"))
        .display()
        .to_string()
}

fn switchyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.env(switchyard_models::ENV, switchyard_models::dir())
        .env("RUST_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn train_then_eval_on_held_out_subjects_reports_routellm_metrics_and_baselines() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: train makes it (the embedding cache goes there too).
    let model = dir.path().join("routers").join("router.json");
    let plot = dir.path().join("curves.svg");
    let contaminated = data_dir().join("contaminated_prompts.jsonl");

    let mut train = switchyard();
    train.args(["train", "--data"]);
    for s in [
        "abstract_algebra",
        "college_computer_science",
        "business_ethics",
        "medical_genetics",
    ] {
        train.arg(subject(s));
    }
    train
        .args(["--weak", WEAK, "--strong", STRONG, "--out"])
        .arg(&model)
        .arg("--contaminated")
        .arg(&contaminated)
        .args(["--target-large-share", "0.3"]);
    let out = run(&mut train);
    assert!(out.contains("cross-validation"), "{out}");
    assert!(out.contains("<- chosen"), "{out}");
    assert!(model.is_file());
    assert!(dir
        .path()
        .join("routers")
        .join("embeddings.cache")
        .is_file());

    let mut eval = switchyard();
    eval.args(["eval", "--data"]);
    for s in ["high_school_computer_science", "global_facts", "management"] {
        eval.arg(subject(s));
    }
    eval.args(["--weak", WEAK, "--strong", STRONG, "--router"])
        .arg(&model)
        .args(["--json", "--plot"])
        .arg(&plot);
    let out = run(&mut eval);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    let metric = |v: &serde_json::Value, key: &str| -> f64 {
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no number `{key}` in {v}"))
    };
    for (name, v) in [
        ("router", &report),
        ("random", &report["baselines"]["random"]),
        ("length", &report["baselines"]["length"]),
        ("oracle", &report["baselines"]["oracle"]),
    ] {
        for key in ["cpt50", "cpt80", "cpt95"] {
            let share = metric(v, key);
            assert!((0.0..=1.0).contains(&share), "{name} {key} = {share}");
        }
        assert!(
            metric(v, "cpt50") <= metric(v, "cpt80") + 1e-9,
            "{name}: {v}"
        );
        assert!(
            metric(v, "cpt80") <= metric(v, "cpt95") + 1e-9,
            "{name}: {v}"
        );
        assert!(metric(v, "apgr").is_finite(), "{name}: {v}");
    }
    let apgr = |v: &serde_json::Value| metric(v, "apgr");
    let oracle = apgr(&report["baselines"]["oracle"]);
    let random = apgr(&report["baselines"]["random"]);
    assert!(oracle > 0.9, "{report}");
    assert!(oracle > apgr(&report), "{report}");
    assert!(oracle > random, "{report}");
    assert!((random - 0.5).abs() < 0.05, "{report}");
    assert_eq!(report["examples"], 303, "{report}");

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("oracle"), "{svg:.300}");

    // The human-readable table names every router.
    let mut table = switchyard();
    table
        .args(["eval", "--data", &subject("management")])
        .args(["--weak", WEAK, "--strong", STRONG, "--router"])
        .arg(&model);
    let out = run(&mut table);
    for row in ["learned ", "random", "prompt length", "oracle", "APGR"] {
        assert!(out.contains(row), "{out}");
    }
}

#[test]
fn eval_refuses_a_missing_router_file_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard()
        .args(["eval", "--data", &subject("management")])
        .args(["--weak", WEAK, "--strong", STRONG, "--router"])
        .arg(dir.path().join("none.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none.json"), "{err}");
}

#[test]
fn train_names_an_unknown_holdout_group() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard()
        .args(["train", "--data", &subject("management")])
        .args(["--weak", WEAK, "--strong", STRONG, "--out"])
        .arg(dir.path().join("r.json"))
        .args(["--holdout-groups", "mmlu_nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mmlu_nope"), "{err}");
}

/// Prompts of two kinds, written from templates so that held-out prompts are new sentences: the
/// weak model fails every calculus question and answers every geography one; the strong model
/// answers both. The geography questions are the longer ones, so prompt length points the wrong
/// way; a learner that reads the prompt must find who can answer it.
fn two_kinds(items: std::ops::Range<usize>) -> String {
    const FUNCTIONS: [&str; 12] = [
        "x^2",
        "sin(x)",
        "e^(2x)",
        "1/(1+x^2)",
        "x ln(x)",
        "cos(3x)",
        "x^3 - x",
        "sqrt(x)",
        "x e^x",
        "tan(x)",
        "ln(1+x)",
        "x sin(x)",
    ];
    const COUNTRIES: [&str; 12] = [
        "France", "Peru", "Kenya", "Norway", "Vietnam", "Chile", "Egypt", "Poland", "Canada",
        "Ghana", "Nepal", "Portugal",
    ];
    let mut csv = format!("prompt,{WEAK},{STRONG}\n");
    for i in items {
        let (f, c, a, b) = (
            FUNCTIONS[i % 12],
            COUNTRIES[i % 12],
            i % 7,
            i % 7 + 1 + i / 12,
        );
        csv.push_str(&format!(
            "\"Compute the definite integral of {f} from {a} to {b} and simplify it.\",False,True\n"
        ));
        csv.push_str(&format!(
            "\"Name the capital city of {c} and the main language that most of the people who live there speak.\",True,True\n"
        ));
    }
    csv
}

#[test]
fn the_learned_router_beats_random_and_length_where_the_prompt_tells_who_can_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (train_csv, eval_csv) = (dir.path().join("train.csv"), dir.path().join("eval.csv"));
    std::fs::write(&train_csv, two_kinds(0..96)).unwrap();
    std::fs::write(&eval_csv, two_kinds(96..144)).unwrap();
    let model = dir.path().join("router.json");
    run(switchyard()
        .args(["train", "--data"])
        .arg(&train_csv)
        .args(["--weak", WEAK, "--strong", STRONG, "--out"])
        .arg(&model));
    let out = run(switchyard()
        .args(["eval", "--data"])
        .arg(&eval_csv)
        .args(["--weak", WEAK, "--strong", STRONG, "--router"])
        .arg(&model)
        .arg("--json"));
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    let apgr = |v: &serde_json::Value| v["apgr"].as_f64().expect("apgr");
    let (learned, random, length, oracle) = (
        apgr(&report),
        apgr(&report["baselines"]["random"]),
        apgr(&report["baselines"]["length"]),
        apgr(&report["baselines"]["oracle"]),
    );
    assert!(
        learned > random + 0.25 && learned > length + 0.25,
        "learned {learned}, random {random}, length {length}: {report}"
    );
    // Here every prompt tells: the learner should route as well as the oracle, give or take.
    assert!(
        learned > oracle - 0.05 && learned <= oracle + 1e-9,
        "{report}"
    );
}
