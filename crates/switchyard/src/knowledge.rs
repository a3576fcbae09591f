//! `switchyard ingest` and `switchyard kb`: put documents into a knowledge base, look at what a
//! store holds, and measure how well a base retrieves and how much retrieval helps the local
//! models answer (or, with `--beir`, how the retrieval modes do on a public benchmark).
//!
//! The knowledge bases live in the config's `[store] path` (the request log's SQLite file) and
//! are embedded with the config's `[embeddings]` model (all-MiniLM-L6-v2 from the models folder
//! when the config has none).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::json;
use switchyard_embed::Embedder;
use switchyard_knowledge::{
    prompt, Format, Ingested, Knowledge, KnowledgeError, Mode, Search, MAX_K,
};
use switchyard_server::config::ProviderKind;
use switchyard_server::Config;

/// The modes compared side by side, in the order they are shown.
const MODES: [Mode; 3] = [Mode::Vector, Mode::Keyword, Mode::Hybrid];

/// What the summary says about skipped files.
const SKIPPED: &str = "not Markdown, text, HTML or PDF";

#[derive(clap::Args)]
pub struct IngestArgs {
    /// The config naming the store ([store] path) and the embedder ([embeddings] path); without
    /// it: switchyard.db here and all-MiniLM-L6-v2 from the models folder.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The knowledge base (created when new): 1 to 64 letters, digits, `-` or `_`.
    #[arg(long, value_parser = kb_name)]
    kb: String,
    /// Files and folders to ingest. Folders are walked recursively in sorted order (entries
    /// whose names start with `.` are left out); each document is stored under its path
    /// relative to the folder given, a file given by itself under its file name.
    #[arg(required_unless_present = "delete", value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Remove the document stored as PATH (as `kb show` lists it); repeatable. Done before
    /// anything is ingested.
    #[arg(long = "delete", value_name = "PATH")]
    delete: Vec<String>,
}

#[derive(clap::Args)]
pub struct KbArgs {
    #[command(subcommand)]
    command: KbCommand,
}

#[derive(clap::Subcommand)]
enum KbCommand {
    /// The knowledge bases of the store, with their counts of documents and chunks.
    List {
        /// The config naming the store; without it: switchyard.db here.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The documents of one knowledge base.
    Show {
        /// The knowledge base.
        name: String,
        /// The config naming the store; without it: switchyard.db here.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Measure a base's retrieval (vector, keyword, hybrid) on labelled questions and the local
    /// models' answers without and with it; or, with --beir, retrieval on a BEIR dataset.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The config: the store, the embedder, and the models that answer (with no --config: the
    /// embedded local default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The knowledge base the questions are about.
    #[arg(long, required_unless_present = "beir", conflicts_with = "beir")]
    kb: Option<String>,
    /// Labelled questions, one JSON object a line: {"id", "split", "question", "document",
    /// "answer"} (document and answer null when the base does not hold the answer).
    #[arg(long, required_unless_present = "beir", conflicts_with = "beir")]
    questions: Option<PathBuf>,
    /// Which questions to ask.
    #[arg(long, value_enum, default_value_t = Split::All)]
    split: Split,
    /// The models that answer, by config name, comma-separated (default: every
    /// `provider = "local"` model of the config).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Measure retrieval only: no model answers.
    #[arg(long, conflicts_with = "models")]
    retrieval_only: bool,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 96)]
    max_tokens: u32,
    /// Print one JSON object with every figure instead of the tables.
    #[arg(long)]
    json: bool,
    /// A BEIR-format dataset folder (corpus.jsonl.gz or corpus.jsonl, queries.jsonl,
    /// qrels-test.tsv): its corpus is ingested into a temporary store and each test query is
    /// searched in every mode.
    #[arg(long, value_name = "DIR")]
    beir: Option<PathBuf>,
    /// With --beir: only the first N test queries (the whole corpus is still ingested).
    #[arg(long, requires = "beir", value_name = "N")]
    limit: Option<usize>,
    /// With --beir: keep the ingested corpus in this SQLite file instead of a temporary one;
    /// a later run with the same file re-embeds only what changed.
    #[arg(long, requires = "beir", value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    Dev,
    Test,
    All,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Test => "test",
            Split::All => "all",
        }
    }
}

/// A knowledge base's name as `Knowledge` accepts it, checked when the command line is read so
/// that a bad one is refused before the embedder loads or a folder is walked.
fn kb_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err("use 1 to 64 letters, digits, `-` or `_`".into())
    }
}

pub fn ingest(args: IngestArgs) -> Result<()> {
    let (_, store, embedder) = settings(args.config.as_deref())?;
    let knowledge = open(&store, embedder)?;
    let kb = args.kb.as_str();
    for path in &args.delete {
        if knowledge.delete(kb, path)? {
            println!("kb {kb}: deleted {path}");
        } else {
            println!("kb {kb}: {path} is not there; nothing deleted (`switchyard kb show {kb}` lists the documents)");
        }
    }
    if args.paths.is_empty() {
        return Ok(());
    }
    let sources = collect(&args.paths)?;
    let bar = progress(
        sources.len() as u64,
        "{wide_bar} {pos}/{len} files, {msg} [{elapsed_precise}<{eta_precise}]",
    )?;
    bar.set_message("0 chunks");
    let started = Instant::now();
    let mut tally = Tally::default();
    for source in &sources {
        match ingest_one(&knowledge, kb, source) {
            Ok(Some(Ingested::Stored { chunks })) => {
                tally.stored += 1;
                tally.chunks += chunks;
            }
            Ok(Some(Ingested::Unchanged)) => tally.unchanged += 1,
            Ok(None) => tally.skipped += 1,
            Err(Failure::File(reason)) => {
                tally.failed += 1;
                bar.suspend(|| eprintln!("failed: {}: {reason}", source.file.display()));
            }
            Err(Failure::Fatal(e)) => {
                bar.abandon();
                return Err(e.context(format!(
                    "stopped at {} ({} documents stored before it)",
                    source.file.display(),
                    tally.stored
                )));
            }
        }
        bar.inc(1);
        bar.set_message(format!("{} chunks", tally.chunks));
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    println!("kb {kb}: {}", tally.summary(elapsed));
    if let Some(base) = knowledge.bases()?.into_iter().find(|b| b.name == kb) {
        println!(
            "kb {kb} now holds {} documents, {} chunks ({})",
            base.documents,
            base.chunks,
            store.display()
        );
    }
    if tally.failed > 0 {
        bail!(
            "{} of {} files could not be ingested (each is named above); fix or remove them and run again: unchanged documents are skipped",
            tally.failed,
            sources.len()
        );
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    stored: usize,
    unchanged: usize,
    skipped: usize,
    failed: usize,
    chunks: usize,
}

impl Tally {
    fn summary(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let mut out = format!(
            "{} documents ({} stored, {} unchanged), {} chunks",
            self.stored + self.unchanged,
            self.stored,
            self.unchanged,
            self.chunks
        );
        if self.skipped > 0 {
            out.push_str(&format!(", {} skipped ({SKIPPED})", self.skipped));
        }
        if self.failed > 0 {
            out.push_str(&format!(", {} failed", self.failed));
        }
        out.push_str(&format!(", in {secs:.1} s"));
        if self.chunks > 0 {
            out.push_str(&format!(
                " ({:.0} chunks/s)",
                self.chunks as f64 / secs.max(1e-9)
            ));
        }
        out
    }
}

/// One file to ingest: where it is, the path it is stored under, and its format (none: skip).
struct Source {
    file: PathBuf,
    /// Empty for an unreadable entry, which is never stored.
    stored: String,
    format: Option<Format>,
    /// Why it cannot even be listed (a folder walk's error).
    unreadable: Option<String>,
}

enum Failure {
    /// This file cannot be ingested; the others go on.
    File(String),
    /// Nothing more can be ingested (the store, the embedder, the base's name).
    Fatal(anyhow::Error),
}

fn ingest_one(
    knowledge: &Knowledge,
    kb: &str,
    source: &Source,
) -> Result<Option<Ingested>, Failure> {
    if let Some(reason) = &source.unreadable {
        return Err(Failure::File(reason.clone()));
    }
    let Some(format) = source.format else {
        return Ok(None);
    };
    let bytes = std::fs::read(&source.file).map_err(|e| Failure::File(e.to_string()))?;
    match knowledge.ingest(kb, &source.stored, format, &bytes) {
        Ok(done) => Ok(Some(done)),
        Err(KnowledgeError::Parse { reason, .. }) => Err(Failure::File(reason)),
        Err(e @ KnowledgeError::BadPath(_)) => Err(Failure::File(e.to_string())),
        Err(e) => Err(Failure::Fatal(e.into())),
    }
}

fn hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// The files named by `paths`, folders walked, each with its stored path; two files that would
/// be stored under the same path are refused.
fn collect(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).with_context(|| {
            format!(
                "cannot ingest {}: no such file or folder (or it cannot be read)",
                root.display()
            )
        })?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| anyhow!("{} has no file name", root.display()))?;
            sources.push(Source {
                format: Format::of_path(root),
                file: root.clone(),
                stored: name,
                unreadable: None,
            });
            continue;
        }
        let walk = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !hidden(e.file_name()));
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) => {
                    let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                    let stored = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    // A link to a folder is listed as a file by a walk that does not follow
                    // links: it is neither ingested nor a failure.
                    let format = if e.path().is_file() {
                        Format::of_path(e.path())
                    } else {
                        None
                    };
                    sources.push(Source {
                        format,
                        file: e.path().to_path_buf(),
                        stored,
                        unreadable: None,
                    });
                }
                Err(err) => {
                    let reason = err
                        .io_error()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| err.to_string());
                    sources.push(Source {
                        format: None,
                        file: err.path().unwrap_or(root).to_path_buf(),
                        stored: String::new(),
                        unreadable: Some(reason),
                    });
                }
            }
        }
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for s in sources.iter().filter(|s| s.format.is_some()) {
        if let Some(first) = seen.insert(&s.stored, &s.file) {
            bail!(
                "{} and {} would both be stored as `{}`; ingest them into separate bases, or give the folder above both",
                first.display(),
                s.file.display(),
                s.stored
            );
        }
    }
    Ok(sources)
}

/// A progress bar on stderr when it is a terminal; a hidden one (that prints nothing) on CI.
fn progress(len: u64, template: &str) -> Result<ProgressBar> {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template(template)?);
    Ok(bar)
}

/// The config (when one is given), the store file and the embedder folder.
fn settings(config: Option<&Path>) -> Result<(Option<Config>, PathBuf, PathBuf)> {
    let config = match config {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    let store = crate::store_path(config.as_ref());
    let embedder = match config.as_ref().and_then(|c| c.embeddings.as_ref()) {
        Some(e) => e.path.clone(),
        None => switchyard_models::find("all-MiniLM-L6-v2").map_err(|missing| {
            anyhow!("the embedding model for knowledge bases: {missing}, or add an [embeddings] table with its `path` to the config")
        })?,
    };
    Ok((config, store, embedder))
}

fn open(store: &Path, embedder_dir: PathBuf) -> Result<Knowledge> {
    let embedder = Embedder::load(&embedder_dir).with_context(|| {
        format!(
            "cannot load the embedding model from {}",
            embedder_dir.display()
        )
    })?;
    Knowledge::open(store, Arc::new(embedder))
        .with_context(|| format!("cannot open the knowledge store {}", store.display()))
}

pub async fn kb(args: KbArgs) -> Result<()> {
    match args.command {
        KbCommand::List { config } => list(config.as_deref()),
        KbCommand::Show { name, config } => show(&name, config.as_deref()),
        KbCommand::Eval(args) => match &args.beir {
            Some(dir) => beir(dir, &args),
            None => eval(&args).await,
        },
    }
}

fn list(config: Option<&Path>) -> Result<()> {
    let (_, store, embedder) = settings(config)?;
    let knowledge = open(&store, embedder)?;
    let bases = knowledge.bases()?;
    if bases.is_empty() {
        println!(
            "no knowledge bases in {}; create one with `switchyard ingest --kb NAME PATH`",
            store.display()
        );
        return Ok(());
    }
    let width = bases.iter().map(|b| b.name.len()).max().unwrap_or(0).max(4);
    println!("{:<width$}  {:>9}  {:>7}", "base", "documents", "chunks");
    for b in &bases {
        println!("{:<width$}  {:>9}  {:>7}", b.name, b.documents, b.chunks);
    }
    Ok(())
}

fn show(name: &str, config: Option<&Path>) -> Result<()> {
    let (_, store, embedder) = settings(config)?;
    let knowledge = open(&store, embedder)?;
    let docs = knowledge.documents(name)?;
    let width = docs.iter().map(|d| d.path.len()).max().unwrap_or(0).max(4);
    println!(
        "{:<width$}  {:<8}  {:>9}  {:>6}  ingested",
        "path", "format", "bytes", "chunks"
    );
    for d in &docs {
        println!(
            "{:<width$}  {:<8}  {:>9}  {:>6}  {}",
            d.path,
            d.format,
            d.bytes,
            d.chunks,
            utc(d.ingested_at_ms)
        );
    }
    let bytes: u64 = docs.iter().map(|d| d.bytes).sum();
    let chunks: u64 = docs.iter().map(|d| d.chunks).sum();
    println!(
        "kb {name}: {} documents, {bytes} bytes, {chunks} chunks",
        docs.len()
    );
    Ok(())
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

// ---------------------------------------------------------------------------------------------
// kb eval on labelled questions

#[derive(Deserialize)]
struct QuestionRow {
    id: serde_json::Value,
    #[serde(default)]
    split: Option<String>,
    question: String,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    answer: Option<String>,
}

struct Question {
    id: String,
    question: String,
    /// The stored path of the document holding the answer; none when the base does not.
    document: Option<String>,
    answer: Option<String>,
}

fn read_questions(path: &Path, split: Split) -> Result<Vec<Question>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the questions {}", path.display()))?;
    let mut out = Vec::new();
    let mut splits = BTreeMap::<String, usize>::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: QuestionRow = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a question ({{\"id\", \"split\", \"question\", \"document\", \"answer\"}}, document and answer null when unanswerable)",
                path.display(),
                i + 1
            )
        })?;
        let row_split = row.split.unwrap_or_default();
        *splits.entry(row_split.clone()).or_default() += 1;
        if split != Split::All && row_split != split.name() {
            continue;
        }
        let id = match row.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        out.push(Question {
            id,
            question: row.question,
            document: blank(row.document),
            answer: blank(row.answer),
        });
    }
    if out.is_empty() {
        let found: Vec<String> = splits.iter().map(|(s, n)| format!("{s:?}: {n}")).collect();
        bail!(
            "{} has no questions in split {}; its splits are {}",
            path.display(),
            split.name(),
            if found.is_empty() {
                "none (the file is empty)".to_owned()
            } else {
                found.join(", ")
            }
        );
    }
    Ok(out)
}

/// A question's labelled document as stored: the same path, else the one stored path that ends
/// with it (or that it ends with) at a `/`.
fn resolve(label: &str, stored: &[String]) -> Option<String> {
    let label = label.trim_start_matches("./");
    if stored.iter().any(|s| s == label) {
        return Some(label.to_owned());
    }
    let near: Vec<&String> = stored
        .iter()
        .filter(|s| label.ends_with(&format!("/{s}")) || s.ends_with(&format!("/{label}")))
        .collect();
    match near[..] {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Retrieval figures of one mode over the answerable questions.
#[derive(Default, Clone, Copy)]
struct Retrieval {
    recall_1: f64,
    recall_5: f64,
    mrr_10: f64,
    latency_ms: f64,
}

/// The 1-based rank of the first hit from `document` among `hits`' documents.
fn rank_of(documents: &[String], document: &str) -> Option<usize> {
    documents.iter().position(|d| d == document).map(|i| i + 1)
}

fn retrieval(
    knowledge: &Knowledge,
    kb: &str,
    questions: &[&Question],
    mode: Mode,
) -> Result<Retrieval> {
    let mut r = Retrieval::default();
    let started = Instant::now();
    for q in questions {
        let hits = knowledge.search(
            kb,
            &Search {
                text: &q.question,
                k: 10,
                mode,
                prefix: None,
            },
        )?;
        let documents: Vec<String> = hits.into_iter().map(|h| h.document).collect();
        let label = q.document.as_deref().unwrap_or_default();
        if let Some(rank) = rank_of(&documents, label) {
            r.recall_1 += f64::from(rank <= 1);
            r.recall_5 += f64::from(rank <= 5);
            r.mrr_10 += 1.0 / rank as f64;
        }
    }
    let n = questions.len().max(1) as f64;
    r.recall_1 /= n;
    r.recall_5 /= n;
    r.mrr_10 /= n;
    r.latency_ms = started.elapsed().as_secs_f64() * 1e3 / n;
    Ok(r)
}

/// Lowercase, typographic apostrophes made plain, runs of whitespace made one space.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `needle` occurs in `hay` not inside a longer word or number ("25" is not in "250").
fn occurs(hay: &str, needle: &str) -> bool {
    let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let starts_word = needle.chars().next().is_some_and(char::is_alphanumeric);
    let ends_word = needle.chars().last().is_some_and(char::is_alphanumeric);
    hay.match_indices(needle).any(|(at, _)| {
        (!starts_word || edge(hay[..at].chars().last()))
            && (!ends_word || edge(hay[at + needle.len()..].chars().next()))
    })
}

/// Whether `reply` states `answer`: it occurs in it, case and whitespace aside; for an amount of
/// money ("$9.50") the number alone ("9.50") counts too.
pub fn states_answer(reply: &str, answer: &str) -> bool {
    let reply = normalise(reply);
    let answer = normalise(answer.trim().trim_end_matches('.'));
    if answer.is_empty() {
        return false;
    }
    if occurs(&reply, &answer) {
        return true;
    }
    match answer.strip_prefix(['$', '€', '£']) {
        Some(amount) => !amount.trim().is_empty() && occurs(&reply, amount.trim()),
        None => false,
    }
}

/// Phrases with which a reply says it does not know.
const DONT_KNOW: &[&str] = &[
    "don't know",
    "do not know",
    "not sure",
    "no information",
    "not mentioned",
    "cannot find",
    "can't find",
    "could not find",
    "couldn't find",
    "not in the sources",
    "isn't in the sources",
    "not in the provided",
    "not provided",
    "sources do not",
    "sources don't",
    "does not contain",
    "doesn't contain",
    "do not contain",
    "don't contain",
    "no mention",
    "not specified",
    "don't have information",
    "do not have information",
    "don't have enough",
    "do not have enough",
    "cannot answer",
    "can't answer",
    "unable to answer",
    "unable to find",
];

/// Whether a reply says it does not know.
pub fn says_dont_know(reply: &str) -> bool {
    let reply = normalise(reply);
    DONT_KNOW.iter().any(|p| reply.contains(p))
}

/// One model's answers without or with retrieval.
#[derive(Default, Clone, Copy)]
struct Answers {
    /// Answerable questions whose reply states the answer.
    right: usize,
    /// Unanswerable questions whose reply says it does not know.
    abstained: usize,
    /// Answerable questions whose reply says it does not know.
    abstained_answerable: usize,
    /// Requests the gateway refused or failed.
    errors: usize,
}

struct ModelAnswers {
    model: String,
    without: Answers,
    with: Answers,
    seconds: f64,
}

async fn eval(args: &EvalArgs) -> Result<()> {
    let (Some(kb), Some(path)) = (args.kb.as_deref(), args.questions.as_deref()) else {
        bail!("kb eval needs --kb and --questions (or --beir DIR)");
    };
    let config = crate::load_config(args.config.as_deref())?;
    let models: Vec<String> = if args.retrieval_only {
        Vec::new()
    } else if args.models.is_empty() {
        config
            .models
            .iter()
            .filter(|(_, m)| m.provider == ProviderKind::Local)
            .map(|(name, _)| name.clone())
            .collect()
    } else {
        for name in &args.models {
            if !config.models.contains_key(name) {
                let known: Vec<&str> = config.models.keys().map(String::as_str).collect();
                bail!(
                    "--models names `{name}`, which the config does not declare; its models are: {}",
                    known.join(", ")
                );
            }
        }
        args.models.clone()
    };
    let store = config.store.path.clone();
    let embedder = match &config.embeddings {
        Some(e) => e.path.clone(),
        None => settings(None)?.2,
    };
    let knowledge = open(&store, embedder)?;
    let stored: Vec<String> = knowledge
        .documents(kb)?
        .into_iter()
        .map(|d| d.path)
        .collect();
    let mut questions = read_questions(path, args.split)?;
    let mut unknown = Vec::new();
    for q in &mut questions {
        if let Some(label) = q.document.take() {
            match resolve(&label, &stored) {
                Some(found) => q.document = Some(found),
                None => {
                    unknown.push(format!("{} ({label})", q.id));
                    q.document = Some(label);
                }
            }
        }
    }
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} questions name a document kb {kb} does not hold, so retrieval cannot find it: {}",
            unknown.len(),
            unknown.join(", ")
        );
    }
    let answerable: Vec<&Question> = questions.iter().filter(|q| q.document.is_some()).collect();
    let unanswerable = questions.len() - answerable.len();
    if !models.is_empty() {
        // An answerable question without its answer could never be scored right, yet would
        // count in the accuracy's denominator.
        let unscored: Vec<&str> = answerable
            .iter()
            .filter(|q| q.answer.is_none())
            .map(|q| q.id.as_str())
            .collect();
        if !unscored.is_empty() {
            bail!(
                "{}: questions {} name a document but no answer, so their replies cannot be scored; add each answer, or pass --retrieval-only",
                path.display(),
                unscored.join(", ")
            );
        }
    }
    let mut modes = Vec::new();
    for mode in MODES {
        modes.push((mode, retrieval(&knowledge, kb, &answerable, mode)?));
    }
    let answers = if models.is_empty() {
        Vec::new()
    } else {
        answer_all(args, &config, &knowledge, kb, &questions, &models).await?
    };

    let answered_n = answerable.len();
    if args.json {
        let retrieval: serde_json::Map<String, serde_json::Value> = modes
            .iter()
            .map(|(mode, r)| {
                (
                    mode.name().to_owned(),
                    json!({
                        "recall@1": r.recall_1,
                        "recall@5": r.recall_5,
                        "mrr@10": r.mrr_10,
                        "latency_ms": r.latency_ms,
                    }),
                )
            })
            .collect();
        let side = |a: &Answers| {
            json!({
                "accuracy": ratio(a.right, answered_n),
                "right": a.right,
                "dont_know_unanswerable": ratio(a.abstained, unanswerable),
                "dont_know_unanswerable_count": a.abstained,
                "dont_know_answerable": ratio(a.abstained_answerable, answered_n),
                "errors": a.errors,
            })
        };
        let models: serde_json::Map<String, serde_json::Value> = answers
            .iter()
            .map(|m| {
                (
                    m.model.clone(),
                    json!({
                        "without_retrieval": side(&m.without),
                        "with_retrieval": side(&m.with),
                        "seconds": m.seconds,
                    }),
                )
            })
            .collect();
        let out = json!({
            "kb": kb,
            "questions_file": path.display().to_string(),
            "split": args.split.name(),
            "questions": questions.len(),
            "answerable": answered_n,
            "unanswerable": unanswerable,
            "unknown_documents": unknown.len(),
            "retrieval": retrieval,
            "answers": {
                "retrieval": "hybrid, k=4",
                "max_tokens": args.max_tokens,
                "temperature": 0.0,
                "models": models,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "kb {kb}, split {}: {} questions ({answered_n} answerable, {unanswerable} unanswerable)",
        args.split.name(),
        questions.len()
    );
    println!();
    println!(
        "{:<9}  {:>8}  {:>8}  {:>6}  {:>10}",
        "retrieval", "recall@1", "recall@5", "MRR@10", "ms/query"
    );
    for (mode, r) in &modes {
        println!(
            "{:<9}  {:>8.3}  {:>8.3}  {:>6.3}  {:>10.1}",
            mode.name(),
            r.recall_1,
            r.recall_5,
            r.mrr_10,
            r.latency_ms
        );
    }
    if answers.is_empty() {
        return Ok(());
    }
    println!();
    println!(
        "answers (greedy, at most {} tokens; with retrieval: hybrid, k=4)",
        args.max_tokens
    );
    let width = answers
        .iter()
        .map(|m| m.model.len())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<width$}  {:<9}  {:>16}  {:>24}  {:>6}",
        "model", "retrieval", "answer right", "says it doesn't know", "errors"
    );
    let cell = |n: usize, of: usize| format!("{n}/{of} {:>4.0}%", 100.0 * ratio(n, of));
    for m in &answers {
        for (label, a) in [("none", &m.without), ("hybrid", &m.with)] {
            println!(
                "{:<width$}  {:<9}  {:>16}  {:>24}  {:>6}",
                m.model,
                label,
                cell(a.right, answered_n),
                cell(a.abstained, unanswerable),
                a.errors
            );
        }
    }
    println!("(answer right: over the {answered_n} answerable questions; says it doesn't know: over the {unanswerable} unanswerable ones)");
    Ok(())
}

fn ratio(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// Every model answers every question without and with retrieval, through an in-process
/// gateway.
async fn answer_all(
    args: &EvalArgs,
    config: &Config,
    knowledge: &Knowledge,
    kb: &str,
    questions: &[Question],
    models: &[String],
) -> Result<Vec<ModelAnswers>> {
    // The passages each question gets: the same for every model.
    let mut systems = Vec::with_capacity(questions.len());
    for q in questions {
        let hits = knowledge.search(
            kb,
            &Search {
                text: &q.question,
                k: 4,
                mode: Mode::Hybrid,
                prefix: None,
            },
        )?;
        systems.push(prompt(&hits));
    }
    let server = crate::build_server(config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let bar = progress(
        (models.len() * questions.len() * 2) as u64,
        "answering {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    )?;
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let mut result = Ok(());
    for model in models {
        bar.set_message(model.clone());
        let slots = config.models[model].slots.unwrap_or(4).max(1);
        let started = Instant::now();
        match answer_model(
            args, &client, &base, model, questions, &systems, slots, &bar,
        )
        .await
        {
            Ok((without, with)) => out.push(ModelAnswers {
                model: model.clone(),
                without,
                with,
                seconds: started.elapsed().as_secs_f64(),
            }),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    bar.finish_and_clear();
    let _ = stop.send(());
    task.await.context("the in-process gateway panicked")??;
    result.map(|()| out)
}

/// One model's answers: (without retrieval, with retrieval).
#[allow(clippy::too_many_arguments)]
async fn answer_model(
    args: &EvalArgs,
    client: &reqwest::Client,
    base: &str,
    model: &str,
    questions: &[Question],
    systems: &[String],
    slots: usize,
    bar: &ProgressBar,
) -> Result<(Answers, Answers)> {
    let jobs: Vec<(usize, bool)> = (0..questions.len())
        .flat_map(|i| [(i, false), (i, true)])
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    let spawn = |tasks: &mut tokio::task::JoinSet<(usize, bool, Result<String>)>,
                 job: (usize, bool)| {
        let (i, with) = job;
        let mut messages = Vec::new();
        if with {
            messages.push(json!({"role": "system", "content": systems[i]}));
        }
        messages.push(json!({"role": "user", "content": questions[i].question}));
        let body = json!({
            "model": model,
            "messages": messages,
            "max_tokens": args.max_tokens,
            "temperature": 0.0,
        });
        let request = client
            .post(format!("{base}/v1/chat/completions"))
            .json(&body);
        tasks.spawn(async move { (i, with, complete(request).await) });
    };
    let (mut without, mut with) = (Answers::default(), Answers::default());
    let mut first_error = true;
    while next < jobs.len().min(slots) {
        spawn(&mut tasks, jobs[next]);
        next += 1;
    }
    while let Some(done) = tasks.join_next().await {
        let (i, retrieved, reply) = done.context("an answering task panicked")?;
        let side = if retrieved { &mut with } else { &mut without };
        let q = &questions[i];
        match reply {
            Ok(reply) => match &q.answer {
                Some(answer) if q.document.is_some() => {
                    side.right += usize::from(states_answer(&reply, answer));
                    side.abstained_answerable += usize::from(says_dont_know(&reply));
                }
                _ => side.abstained += usize::from(says_dont_know(&reply)),
            },
            Err(e) => {
                side.errors += 1;
                if first_error {
                    first_error = false;
                    bar.suspend(|| {
                        eprintln!("warning: {model} did not answer question {}: {e:#}", q.id)
                    });
                }
            }
        }
        if next < jobs.len() {
            spawn(&mut tasks, jobs[next]);
            next += 1;
        }
        bar.inc(1);
    }
    Ok((without, with))
}

/// The reply text of one chat completion.
async fn complete(request: reqwest::RequestBuilder) -> Result<String> {
    let resp = request
        .send()
        .await
        .context("cannot reach the in-process gateway")?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .context("cannot read the in-process gateway's answer")?;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("the gateway answered {status} with a body that is not JSON"))?;
    if !status.is_success() {
        bail!(
            "the gateway answered {status}: {}",
            json["error"]["message"].as_str().unwrap_or("(no message)")
        );
    }
    Ok(json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

// ---------------------------------------------------------------------------------------------
// kb eval --beir

#[derive(Deserialize)]
struct BeirDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct BeirQuery {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

/// Published figures for SciFact (BEIR test split): nDCG@10, recall@10, recall@100 and the
/// system that measured them.
fn published(dataset: &str, mode: Mode) -> (Option<f64>, Option<f64>, Option<f64>, &'static str) {
    if !dataset.to_ascii_lowercase().contains("scifact") {
        return (None, None, None, "");
    }
    match mode {
        Mode::Keyword => (Some(0.679), None, Some(0.925), "BM25 (Anserini, flat)"),
        Mode::Vector => (Some(0.645), Some(0.783), Some(0.925), "all-MiniLM-L6-v2"),
        Mode::Hybrid => (None, None, None, ""),
    }
}

fn lines(path: &Path) -> Result<Box<dyn BufRead>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        ))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in lines(path)?.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not {what}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// query id → (document id → graded relevance), from a `query-id corpus-id score` TSV.
fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>> {
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, line) in lines(path)?.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (i == 0 && fields.first() == Some(&"query-id")) {
            continue;
        }
        let [query, doc, score] = fields[..] else {
            bail!(
                "{}:{}: not `query-id<TAB>corpus-id<TAB>score`",
                path.display(),
                i + 1
            );
        };
        let score: i64 = score
            .parse()
            .with_context(|| format!("{}:{}: the score is not a number", path.display(), i + 1))?;
        if score > 0 {
            qrels
                .entry(query.to_owned())
                .or_default()
                .insert(doc.to_owned(), score as u32);
        }
    }
    Ok(qrels)
}

/// nDCG@k as trec_eval (and BEIR, through pytrec_eval) computes it: gain = the graded relevance,
/// discount log2(rank + 1), the ideal DCG from the query's judged documents.
pub fn ndcg_at(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(relevant.get(d).copied().unwrap_or(0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / (i as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// The share of the relevant documents among the first `k` ranked.
pub fn recall_at(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.contains_key(*d))
        .count();
    found as f64 / relevant.len() as f64
}

#[derive(Default, Clone, Copy)]
struct BeirScores {
    ndcg_10: f64,
    recall_10: f64,
    recall_100: f64,
    documents: f64,
    latency_ms: f64,
}

fn beir(dir: &Path, args: &EvalArgs) -> Result<()> {
    let corpus_path = ["corpus.jsonl.gz", "corpus.jsonl"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{} holds no corpus.jsonl.gz or corpus.jsonl: give a BEIR-format dataset folder",
                dir.display()
            )
        })?;
    let dataset = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "beir".into());
    let qrels = read_qrels(&dir.join("qrels-test.tsv"))?;
    let mut queries: Vec<BeirQuery> =
        read_jsonl::<BeirQuery>(&dir.join("queries.jsonl"), "a query ({\"_id\", \"text\"})")?
            .into_iter()
            .filter(|q| qrels.contains_key(&q.id))
            .collect();
    if let Some(limit) = args.limit {
        if limit == 0 {
            bail!("--limit must be at least 1");
        }
        queries.truncate(limit);
    }
    if queries.is_empty() {
        bail!(
            "{}: no query of queries.jsonl has a judgement in qrels-test.tsv",
            dir.display()
        );
    }
    let corpus: Vec<BeirDoc> =
        read_jsonl(&corpus_path, "a document ({\"_id\", \"title\", \"text\"})")?;
    let embedder = settings(args.config.as_deref())?.2;
    let temp = tempfile::tempdir().context("cannot create a temporary folder for the store")?;
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| temp.path().join("beir.db"));
    let knowledge = open(&store, embedder)?;
    let kb: String = {
        let name: String = dataset
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if name.is_empty() {
            "beir".into()
        } else {
            name
        }
    };

    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    say(format!(
        "{dataset}: {} documents, {} test queries{}; ingesting into {}",
        corpus.len(),
        queries.len(),
        if args.limit.is_some() {
            " (--limit)"
        } else {
            ""
        },
        store.display()
    ));
    let bar = progress(
        corpus.len() as u64,
        "ingesting {wide_bar} {pos}/{len} documents, {msg} [{elapsed_precise}<{eta_precise}]",
    )?;
    let started = Instant::now();
    let mut tally = Tally::default();
    for doc in &corpus {
        let text = format!("# {}\n\n{}\n", doc.title.trim(), doc.text.trim());
        match knowledge.ingest(&kb, &doc.id, Format::Markdown, text.as_bytes()) {
            Ok(Ingested::Stored { chunks }) => {
                tally.stored += 1;
                tally.chunks += chunks;
            }
            Ok(Ingested::Unchanged) => tally.unchanged += 1,
            Err(KnowledgeError::Parse { reason, .. }) => {
                tally.failed += 1;
                bar.suspend(|| eprintln!("failed: document {}: {reason}", doc.id));
            }
            Err(e @ KnowledgeError::BadPath(_)) => {
                tally.failed += 1;
                bar.suspend(|| eprintln!("failed: document {:?}: {e}", doc.id));
            }
            Err(e) => {
                bar.abandon();
                return Err(
                    anyhow::Error::from(e).context(format!("while ingesting document {}", doc.id))
                );
            }
        }
        bar.inc(1);
        bar.set_message(format!("{} chunks", tally.chunks));
    }
    bar.finish_and_clear();
    let ingest_secs = started.elapsed().as_secs_f64();
    let total_chunks = knowledge
        .bases()?
        .into_iter()
        .find(|b| b.name == kb)
        .map(|b| b.chunks)
        .unwrap_or(0);
    say(format!("ingest: {}", tally.summary(started.elapsed())));
    say(format!(
        "ingest throughput: {:.1} documents/s, {:.1} chunks/s ({} chunks in the base)",
        tally.stored as f64 / ingest_secs.max(1e-9),
        tally.chunks as f64 / ingest_secs.max(1e-9),
        total_chunks
    ));
    // Build the index before timing searches.
    let load = Instant::now();
    knowledge.load()?;
    let load_secs = load.elapsed().as_secs_f64();

    let bar = progress(
        (queries.len() * MODES.len()) as u64,
        "searching {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    )?;
    let mut scores = Vec::new();
    for mode in MODES {
        bar.set_message(mode.name());
        let mut s = BeirScores::default();
        let started = Instant::now();
        for q in &queries {
            let hits = knowledge.search(
                &kb,
                &Search {
                    text: &q.text,
                    k: MAX_K,
                    mode,
                    prefix: None,
                },
            )?;
            let mut seen = HashSet::new();
            let ranked: Vec<String> = hits
                .into_iter()
                .map(|h| h.document)
                .filter(|d| seen.insert(d.clone()))
                .collect();
            let relevant = &qrels[&q.id];
            s.ndcg_10 += ndcg_at(&ranked, relevant, 10);
            s.recall_10 += recall_at(&ranked, relevant, 10);
            s.recall_100 += recall_at(&ranked, relevant, 100);
            s.documents += ranked.len() as f64;
            bar.inc(1);
        }
        let n = queries.len() as f64;
        s.latency_ms = started.elapsed().as_secs_f64() * 1e3 / n;
        s.ndcg_10 /= n;
        s.recall_10 /= n;
        s.recall_100 /= n;
        s.documents /= n;
        scores.push((mode, s));
    }
    bar.finish_and_clear();

    if args.json {
        let modes: serde_json::Map<String, serde_json::Value> = scores
            .iter()
            .map(|(mode, s)| {
                let (p_ndcg, p_r10, p_r100, p_name) = published(&dataset, *mode);
                (
                    mode.name().to_owned(),
                    json!({
                        "ndcg@10": s.ndcg_10,
                        "recall@10": s.recall_10,
                        "recall@100": s.recall_100,
                        "documents_per_query": s.documents,
                        "latency_ms": s.latency_ms,
                        "published": {
                            "system": p_name,
                            "ndcg@10": p_ndcg,
                            "recall@10": p_r10,
                            "recall@100": p_r100,
                        },
                    }),
                )
            })
            .collect();
        let out = json!({
            "dataset": dataset,
            "documents": corpus.len(),
            "queries": queries.len(),
            "chunks": total_chunks,
            "ingest": {
                "stored": tally.stored,
                "unchanged": tally.unchanged,
                "failed": tally.failed,
                "chunks": tally.chunks,
                "seconds": ingest_secs,
                "documents_per_s": tally.stored as f64 / ingest_secs.max(1e-9),
                "chunks_per_s": tally.chunks as f64 / ingest_secs.max(1e-9),
            },
            "index_build_seconds": load_secs,
            "k_chunks": MAX_K,
            "modes": modes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("index built in {load_secs:.1} s");
    println!();
    println!(
        "{:<8}  {:>7}  {:>9}  {:>10}  {:>9}  {:>9}   published",
        "mode", "nDCG@10", "recall@10", "recall@100", "docs/query", "ms/query"
    );
    let fig = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    for (mode, s) in &scores {
        let (p_ndcg, p_r10, p_r100, p_name) = published(&dataset, *mode);
        let reference = if p_name.is_empty() {
            String::new()
        } else {
            format!(
                "{p_name}: nDCG@10 {}, recall@10 {}, recall@100 {}",
                fig(p_ndcg),
                fig(p_r10),
                fig(p_r100)
            )
        };
        println!(
            "{:<8}  {:>7.3}  {:>9.3}  {:>10.3}  {:>10.1}  {:>9.1}   {reference}",
            mode.name(),
            s.ndcg_10,
            s.recall_10,
            s.recall_100,
            s.documents,
            s.latency_ms
        );
    }
    println!(
        "(each query searches the top {MAX_K} chunks; a document ranks where its first chunk does, so recall@100 counts the documents of those chunks: docs/query)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_case_and_space_aside_and_money_without_its_sign() {
        assert!(states_answer("The fee is  $9.50 per month.", "$9.50"));
        assert!(states_answer("The fee is 9.50 dollars.", "$9.50"));
        assert!(!states_answer("The fee is $19.50.", "$9.50"));
        assert!(states_answer("You have FOURTEEN\ndays", "fourteen days"));
        assert!(!states_answer("within 140 days", "14"));
        assert!(!states_answer("anything", ""));
    }

    #[test]
    fn dont_know_is_recognised() {
        assert!(says_dont_know("I don’t know."));
        assert!(says_dont_know("The sources do not contain that."));
        assert!(!says_dont_know("The fee is $9.50 [1]."));
    }

    #[test]
    fn ndcg_and_recall_follow_trec_eval() {
        let rel: HashMap<String, u32> = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
        let ranked = vec!["b".to_owned(), "x".to_owned(), "a".to_owned()];
        let dcg = 2.0 + 1.0 / 4f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&ranked, &rel, 10) - dcg / idcg).abs() < 1e-12);
        assert_eq!(recall_at(&ranked, &rel, 2), 0.5);
        assert_eq!(recall_at(&ranked, &rel, 10), 1.0);
    }

    #[test]
    fn labels_resolve_to_stored_paths() {
        let stored = vec!["billing/late.md".to_owned(), "plans/a.md".to_owned()];
        assert_eq!(
            resolve("billing/late.md", &stored).as_deref(),
            Some("billing/late.md")
        );
        assert_eq!(
            resolve("docs/billing/late.md", &stored).as_deref(),
            Some("billing/late.md")
        );
        assert_eq!(
            resolve("late.md", &stored).as_deref(),
            Some("billing/late.md")
        );
        assert_eq!(resolve("other.md", &stored), None);
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_705_600_000), "2025-12-02 20:00:00 UTC");
    }
}
