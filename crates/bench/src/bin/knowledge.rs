//! Knowledge bases on this machine, three ways (the knowledge issue's floors):
//!
//! 1. ingest: chunks per second through the real `Knowledge::ingest` (parse, chunk, embed, store
//!    in SQLite) of the sample base `examples/knowledge/docs`, ingested again and again under
//!    `copyN/` prefixes until at least `--min-chunks` (or synthetic Markdown with `--synthetic`),
//!    each copy followed by the embedder alone on the same texts (the share of ingest it takes,
//!    timed under the same load), in word pieces per second too; `--runs` runs, medians
//!    (floor: 200 chunks/s);
//! 2. search: p50 and p99 of `Index::search` (k = 5, query vector precomputed) in each mode at
//!    each of `--sizes` chunks of synthetic text and vectors, the query embedding alone, and the
//!    two summed per query (end to end); modes interleaved per query, `--runs` runs, medians
//!    (floor: hybrid p99 at most 20 ms at 100k chunks);
//! 3. memory: resident set size before and after building each index, and the recall@10 of
//!    the vector mode (an int8 scan re-scored in f32) against exact f32 brute force.
//!
//! One JSON line per measurement on stdout; a summary on stderr. Run:
//! `cargo run --release -p switchyard-bench --bin knowledge -- --runs 3`.

use std::collections::{BinaryHeap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use switchyard_bench::{median, percentile};
use switchyard_embed::Embedder;
use switchyard_knowledge::{
    chunks, parse, Budget, Chunk, Format, Index, Ingested, Knowledge, Mode, Search, StoredChunk,
};

#[derive(Parser)]
struct Args {
    /// Runs of the ingest and the search measurements; the report gives per-run figures and
    /// their medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Index sizes, in chunks, to time searches at.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Query texts timed per run (each in every mode).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Ingest whole copies of the documents until at least this many chunks are stored.
    #[arg(long, default_value_t = 2000)]
    min_chunks: usize,
    /// The documents to ingest (Markdown, HTML and text files, read recursively).
    #[arg(long, default_value_os_t = default_docs())]
    docs: PathBuf,
    /// Ingest synthetic Markdown documents instead of `--docs`.
    #[arg(long)]
    synthetic: bool,
    /// Skip the ingest measurement.
    #[arg(long)]
    no_ingest: bool,
    /// Skip the search and memory measurements.
    #[arg(long)]
    no_search: bool,
    /// Seed of every synthetic text and vector.
    #[arg(long, default_value_t = 20250)]
    seed: u64,
    /// The models folder (for all-MiniLM-L6-v2).
    #[arg(long, default_value_os_t = switchyard_models::dir())]
    models: PathBuf,
}

fn default_docs() -> PathBuf {
    // This crate is crates/bench, two levels below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/knowledge/docs")
}

/// Texts embedded per call, as `Knowledge::ingest` does.
const EMBED_BATCH: usize = 16;
/// Chunks per synthetic document of the search corpus.
const PER_DOC: usize = 8;
/// Hits per timed search.
const K: usize = 5;
/// Depth of the recall measurement.
const RECALL_K: usize = 10;
const INGEST_FLOOR: f64 = 200.0;
const HYBRID_P99_FLOOR_MS: f64 = 20.0;
const FLOOR_SIZE: usize = 100_000;

/// Frequent words first (stop words, then a support site's words): the head of the Zipf
/// vocabulary. Generated words make up its tail.
const HEAD: &[&str] = &[
    "the",
    "to",
    "and",
    "of",
    "a",
    "you",
    "your",
    "in",
    "is",
    "for",
    "or",
    "on",
    "it",
    "be",
    "can",
    "if",
    "with",
    "that",
    "this",
    "we",
    "are",
    "as",
    "by",
    "not",
    "from",
    "will",
    "an",
    "at",
    "our",
    "any",
    "have",
    "when",
    "all",
    "may",
    "do",
    "more",
    "which",
    "after",
    "each",
    "one",
    "has",
    "but",
    "how",
    "use",
    "what",
    "there",
    "out",
    "up",
    "about",
    "other",
    "so",
    "than",
    "only",
    "into",
    "its",
    "also",
    "new",
    "no",
    "some",
    "these",
    "them",
    "their",
    "then",
    "must",
    "should",
    "account",
    "bill",
    "payment",
    "plan",
    "data",
    "device",
    "phone",
    "service",
    "customer",
    "support",
    "charge",
    "fee",
    "month",
    "monthly",
    "card",
    "credit",
    "bank",
    "transfer",
    "refund",
    "invoice",
    "balance",
    "due",
    "date",
    "late",
    "contract",
    "upgrade",
    "roaming",
    "network",
    "coverage",
    "signal",
    "sim",
    "esim",
    "number",
    "port",
    "privacy",
    "consent",
    "personal",
    "information",
    "request",
    "delete",
    "access",
    "password",
    "login",
    "security",
    "email",
    "address",
    "app",
    "settings",
    "order",
    "delivery",
    "return",
    "warranty",
    "repair",
    "screen",
    "battery",
    "charger",
    "replacement",
    "store",
    "online",
    "chat",
    "call",
    "minutes",
    "text",
    "messages",
    "international",
    "rates",
    "country",
    "travel",
    "allowance",
    "unlimited",
    "speed",
    "limit",
    "usage",
    "alert",
    "notification",
    "family",
    "line",
    "add",
    "remove",
    "cancel",
    "cancellation",
    "notice",
    "period",
    "days",
    "business",
    "legal",
    "terms",
    "conditions",
    "policy",
    "agreement",
    "law",
    "dispute",
    "complaint",
    "ticket",
    "agent",
    "hours",
    "weekend",
    "holiday",
    "discount",
    "offer",
    "price",
    "cost",
    "tax",
    "total",
    "direct",
    "debit",
    "autopay",
    "reminder",
    "statement",
    "download",
    "portal",
    "profile",
    "name",
    "identity",
    "verify",
    "document",
    "passport",
    "proof",
    "residence",
    "owner",
    "holder",
    "ownership",
    "company",
    "employee",
    "admin",
    "manager",
    "role",
    "permission",
    "team",
    "change",
    "update",
    "check",
    "pay",
    "send",
    "receive",
    "keep",
    "open",
    "close",
    "choose",
    "first",
    "last",
    "next",
    "every",
    "before",
    "during",
    "within",
    "until",
    "free",
    "extra",
    "standard",
    "premium",
    "basic",
    "annual",
    "early",
    "termination",
    "deposit",
    "credit",
    "score",
    "history",
    "record",
    "copy",
    "paper",
    "digital",
    "secure",
    "code",
    "pin",
    "lost",
    "stolen",
    "block",
    "unlock",
    "reset",
    "restore",
    "backup",
    "transfer",
    "contact",
    "team",
    "office",
    "region",
    "local",
    "abroad",
    "zone",
    "europe",
    "calls",
    "gigabytes",
    "hotspot",
    "tethering",
    "fair",
    "throttle",
    "priority",
    "outage",
    "maintenance",
    "status",
    "report",
    "fault",
    "engineer",
    "visit",
    "appointment",
    "installation",
    "router",
    "broadband",
    "fibre",
    "speedtest",
    "wifi",
    "password",
    "parental",
    "controls",
    "child",
    "age",
    "student",
    "senior",
    "military",
    "loyalty",
    "reward",
    "points",
    "voucher",
    "gift",
    "trade",
    "value",
];

/// Tail words from syllables, distinct from each other and from the head.
fn vocabulary(size: usize, rng: &mut StdRng) -> Vec<String> {
    const ONSETS: &[&str] = &[
        "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br", "cl",
        "dr", "gr", "pl", "st", "tr", "sh", "ch", "th",
    ];
    const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"];
    const CODAS: &[&str] = &["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"];
    let mut seen: HashSet<String> = HEAD.iter().map(|w| w.to_string()).collect();
    let mut words: Vec<String> = Vec::with_capacity(size);
    for w in HEAD {
        if !words.iter().any(|x| x == w) {
            words.push(w.to_string());
        }
    }
    while words.len() < size {
        let syllables = rng.random_range(2..=4);
        let mut word = String::new();
        for _ in 0..syllables {
            word.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
            word.push_str(NUCLEI[rng.random_range(0..NUCLEI.len())]);
        }
        word.push_str(CODAS[rng.random_range(0..CODAS.len())]);
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// Words drawn with Zipf–Mandelbrot weights 1 / (rank + 2.7).
struct Zipf {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(words: Vec<String>) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 2.7);
                total
            })
            .collect();
        Zipf { words, cumulative }
    }

    fn word(&self, rng: &mut StdRng) -> &str {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let at = rng.random::<f64>() * total;
        let rank = self.cumulative.partition_point(|&c| c < at);
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// `n` words as sentences of 6 to 18 words, each capitalised and ended with a full stop.
    fn prose(&self, n: usize, rng: &mut StdRng) -> String {
        let mut out = String::with_capacity(n * 8);
        let mut left = n;
        while left > 0 {
            let len = rng.random_range(6..=18).min(left);
            for i in 0..len {
                let word = self.word(rng);
                if i == 0 {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    let mut chars = word.chars();
                    if let Some(c) = chars.next() {
                        out.extend(c.to_uppercase());
                        out.push_str(chars.as_str());
                    }
                } else {
                    out.push(' ');
                    out.push_str(word);
                }
            }
            out.push('.');
            left -= len;
        }
        out
    }

    fn words(&self, n: usize, rng: &mut StdRng) -> String {
        (0..n).map(|_| self.word(rng)).collect::<Vec<_>>().join(" ")
    }
}

/// A few hundred distinct support-site sentences, to embed once: the vectors of the synthetic
/// chunks are mixtures of theirs.
fn pool_sentences(n: usize, rng: &mut StdRng) -> Vec<String> {
    const OPENERS: &[&str] = &[
        "How do I",
        "Can I",
        "I want to",
        "Why can't I",
        "What happens when I",
        "Where can I",
        "Is it possible to",
        "You can",
        "Customers may",
        "We will help you",
        "Please explain how to",
        "Our team can",
    ];
    const VERBS: &[&str] = &[
        "cancel", "change", "pay", "dispute", "upgrade", "download", "update", "transfer",
        "unlock", "reset", "replace", "check", "add", "remove", "activate", "suspend", "renew",
        "report", "return", "share",
    ];
    const OBJECTS: &[&str] = &[
        "my monthly bill",
        "the data plan",
        "a late payment fee",
        "my phone number",
        "the SIM card",
        "an eSIM profile",
        "my account password",
        "the direct debit",
        "a roaming allowance",
        "my broadband router",
        "the family plan",
        "a second line",
        "my personal data",
        "the privacy settings",
        "a broken screen",
        "my contract",
        "the early termination charge",
        "a refund",
        "the invoice PDF",
        "my billing address",
        "a stolen phone",
        "the parental controls",
        "my credit card",
        "the business account",
        "an international calling pack",
        "the warranty claim",
        "my loyalty points",
        "a complaint",
        "the delivery date",
        "my email notifications",
    ];
    const TAILS: &[&str] = &[
        "",
        " before the end of the month",
        " while travelling abroad",
        " in the app",
        " online without calling support",
        " after the contract ends",
        " for another person on my account",
        " when the payment fails",
        " within fourteen days",
        " at a store near me",
        " without losing my number",
        " if I moved to a new address",
    ];
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let s = format!(
            "{} {} {}{}.",
            OPENERS[rng.random_range(0..OPENERS.len())],
            VERBS[rng.random_range(0..VERBS.len())],
            OBJECTS[rng.random_range(0..OBJECTS.len())],
            TAILS[rng.random_range(0..TAILS.len())]
        );
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}

fn embed_all(embedder: &Embedder, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(EMBED_BATCH) {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        out.extend(embedder.embed(&refs)?.vectors);
    }
    Ok(out)
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f32 {
    let u = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v = rng.random::<f64>();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// The next chunk vector: one pool vector, plus up to two others with smaller weights, plus
/// noise, L2-normalised. Drawn from its own generator, so the vectors can be drawn again
/// without the texts.
fn chunk_vector(pool: &[Vec<f32>], rng: &mut StdRng, out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(&pool[rng.random_range(0..pool.len())]);
    for _ in 0..rng.random_range(0..=2) {
        let other = &pool[rng.random_range(0..pool.len())];
        let w = rng.random_range(0.1f32..0.6);
        for (o, x) in out.iter_mut().zip(other) {
            *o += w * x;
        }
    }
    for o in out.iter_mut() {
        *o += 0.04 * gaussian(rng);
    }
    let norm = dot(out, out).sqrt().max(f32::MIN_POSITIVE);
    for o in out.iter_mut() {
        *o /= norm;
    }
}

/// f32 dot product in eight lanes (vectorises; a plain iterator sum does not).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn doc_path(doc: usize) -> String {
    format!("docs/d{doc:05}.md")
}

/// `n` synthetic chunks: a 2–4 word heading and 80–120 words of text each, eight to a document.
fn corpus(n: usize, zipf: &Zipf, pool: &[Vec<f32>], seed: u64) -> Vec<StoredChunk> {
    let mut text_rng = StdRng::seed_from_u64(seed ^ 0x7e47);
    let mut vector_rng = StdRng::seed_from_u64(seed ^ 0x7ec7);
    let mut vector = Vec::new();
    let mut heading = String::new();
    (0..n)
        .map(|i| {
            if i % PER_DOC == 0 || heading.is_empty() {
                let len = text_rng.random_range(2..=4);
                heading = zipf.words(len, &mut text_rng);
            }
            let len = text_rng.random_range(80..=120);
            let text = zipf.prose(len, &mut text_rng);
            chunk_vector(pool, &mut vector_rng, &mut vector);
            StoredChunk {
                id: i as u64 + 1,
                path: doc_path(i / PER_DOC),
                ordinal: (i % PER_DOC) as u32,
                heading: heading.clone(),
                text,
                vector: vector.clone(),
            }
        })
        .collect()
}

/// The exact top `RECALL_K` chunks of each query by f32 dot product, drawing the corpus's
/// vectors again one at a time (so no second copy of them is held).
fn exact_top(n: usize, pool: &[Vec<f32>], seed: u64, queries: &[Vec<f32>]) -> Vec<Vec<usize>> {
    #[derive(PartialEq)]
    struct Min(f32, usize);
    impl Eq for Min {}
    impl PartialOrd for Min {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Min {
        // Reversed: the heap's top is the lowest score.
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
        }
    }
    let mut vector_rng = StdRng::seed_from_u64(seed ^ 0x7ec7);
    let mut vector = Vec::new();
    let mut heaps: Vec<BinaryHeap<Min>> = queries
        .iter()
        .map(|_| BinaryHeap::with_capacity(RECALL_K + 1))
        .collect();
    for row in 0..n {
        chunk_vector(pool, &mut vector_rng, &mut vector);
        for (q, heap) in queries.iter().zip(&mut heaps) {
            let score = dot(q, &vector);
            if heap.len() < RECALL_K {
                heap.push(Min(score, row));
            } else if heap.peek().is_some_and(|m| score > m.0) {
                heap.pop();
                heap.push(Min(score, row));
            }
        }
    }
    heaps
        .into_iter()
        .map(|h| h.into_iter().map(|Min(_, row)| row).collect())
        .collect()
}

/// The corpus row of a hit: documents are `docs/dNNNNN.md` with `PER_DOC` chunks each.
fn row_of(document: &str, chunk: u32) -> Option<usize> {
    let doc: usize = document
        .strip_prefix("docs/d")?
        .strip_suffix(".md")?
        .parse()
        .ok()?;
    Some(doc * PER_DOC + chunk as usize)
}

/// VmRSS and VmHWM of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Hand freed heap pages back to the kernel, so that RSS counts what is live.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim takes no pointers and may be called at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

fn mib(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn ms3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The documents to ingest: each file's path under the folder, format and bytes.
fn read_docs(dir: &Path) -> Result<Vec<(String, Format, Vec<u8>)>> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Format, Vec<u8>)>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out)?;
            } else if let Some(format) = Format::of_path(&path).filter(|f| *f != Format::Pdf) {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push((rel.display().to_string(), format, std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    Ok(out)
}

/// Multi-paragraph Markdown documents of the head vocabulary (real words: real word pieces).
fn synthetic_docs(count: usize, seed: u64) -> Vec<(String, Format, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xd0c5);
    let zipf = Zipf::new(vocabulary(0, &mut rng));
    (0..count)
        .map(|d| {
            let mut md = format!("# {}\n\n", zipf.words(rng.random_range(2..=5), &mut rng));
            for _ in 0..rng.random_range(3..=6) {
                md.push_str(&format!(
                    "## {}\n\n",
                    zipf.words(rng.random_range(2..=4), &mut rng)
                ));
                for _ in 0..rng.random_range(2..=4) {
                    let words = rng.random_range(40..=90);
                    md.push_str(&zipf.prose(words, &mut rng));
                    md.push_str("\n\n");
                }
            }
            (
                format!("synthetic/doc{d:03}.md"),
                Format::Markdown,
                md.into_bytes(),
            )
        })
        .collect()
}

struct Summary(Vec<String>);

impl Summary {
    fn line(&mut self, s: String) {
        eprintln!("{s}");
        self.0.push(s);
    }
}

/// The texts `Knowledge::ingest` embeds for each document (parsed and cut as it cuts them);
/// none for a document it cannot read.
fn embedded_texts(embedder: &Embedder, docs: &[(String, Format, Vec<u8>)]) -> Vec<Vec<String>> {
    let count = |text: &str| {
        embedder
            .count_tokens(text)
            .unwrap_or_else(|_| text.split_whitespace().count())
    };
    docs.iter()
        .map(|(_, format, bytes)| match parse(*format, bytes) {
            Ok(blocks) => chunks(&blocks, Budget::default(), &count)
                .iter()
                .map(Chunk::indexed_text)
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect()
}

/// One ingest run: seconds ingesting and seconds embedding the same texts alone, summed over
/// the copies, and the chunks and documents stored.
struct IngestRun {
    seconds: f64,
    embed_s: f64,
    chunks: usize,
    documents: usize,
    copies: usize,
    sqlite_mib: f64,
}

/// Ingest copies of `docs` into a fresh store until `min_chunks` are stored. After each copy the
/// embedder alone embeds that copy's texts (in batches of 16 per document, as ingest does), so
/// the two are timed under the same load and the embedder's share of ingest is a paired figure.
fn ingest_run(
    embedder: &Arc<Embedder>,
    docs: &[(String, Format, Vec<u8>)],
    texts: &[Vec<String>],
    min_chunks: usize,
) -> Result<IngestRun> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("knowledge.db");
    let knowledge = Knowledge::open(&db, embedder.clone())?;
    let mut run = IngestRun {
        seconds: 0.0,
        embed_s: 0.0,
        chunks: 0,
        documents: 0,
        copies: 0,
        sqlite_mib: 0.0,
    };
    while run.chunks < min_chunks {
        let before = run.chunks;
        let t = Instant::now();
        for (path, format, bytes) in docs {
            let stored = format!("copy{}/{path}", run.copies);
            match knowledge.ingest("bench", &stored, *format, bytes)? {
                Ingested::Stored { chunks } => {
                    run.chunks += chunks;
                    run.documents += 1;
                }
                Ingested::Unchanged => bail!("{stored} was already stored"),
            }
        }
        run.seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for doc in texts {
            std::hint::black_box(embed_all(embedder, doc)?);
        }
        run.embed_s += t.elapsed().as_secs_f64();
        run.copies += 1;
        if run.chunks == before {
            bail!("no document gave a chunk");
        }
    }
    // The WAL holds what has not been checkpointed into the main file yet.
    run.sqlite_mib = ["knowledge.db", "knowledge.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.path().join(name)).ok())
        .map(|m| m.len() as f64 / 1048576.0)
        .sum();
    Ok(run)
}

fn ingest(args: &Args, embedder: &Arc<Embedder>, summary: &mut Summary) -> Result<()> {
    let (source, mut docs) = if args.synthetic {
        ("synthetic", synthetic_docs(40, args.seed))
    } else {
        let docs = read_docs(&args.docs)?;
        if docs.is_empty() {
            eprintln!(
                "no Markdown, HTML or text files under {}: ingesting synthetic documents",
                args.docs.display()
            );
            ("synthetic", synthetic_docs(40, args.seed))
        } else {
            ("docs", docs)
        }
    };
    // A document ingest refuses is left out of every copy (it would fail each time).
    let files = docs.len();
    let mut texts = embedded_texts(embedder, &docs);
    let mut skipped = 0usize;
    let mut keep = texts.iter().map(|t| !t.is_empty());
    docs.retain(|(path, format, bytes)| {
        let ok = keep.next().unwrap_or(false);
        if !ok {
            let why = parse(*format, bytes)
                .err()
                .unwrap_or_else(|| "it has no text".into());
            eprintln!("skipping {path}: {why}");
            skipped += 1;
        }
        ok
    });
    texts.retain(|t| !t.is_empty());
    if docs.is_empty() {
        bail!("no document of {} gave a chunk", args.docs.display());
    }
    let bytes: usize = docs.iter().map(|(_, _, b)| b.len()).sum();
    let texts_per_copy: usize = texts.iter().map(Vec::len).sum();
    let tokens_per_copy: usize = texts
        .iter()
        .flatten()
        .map(|t| embedder.count_tokens(t).map_or(0, |n| n + 2))
        .sum();
    let tokens_per_chunk = tokens_per_copy as f64 / texts_per_copy as f64;

    let mut rates = Vec::new();
    let mut shares = Vec::new();
    let mut embed_rates = Vec::new();
    for r in 0..args.runs {
        let run = ingest_run(embedder, &docs, &texts, args.min_chunks)?;
        let rate = run.chunks as f64 / run.seconds;
        let embed_rate = (texts_per_copy * run.copies) as f64 / run.embed_s;
        let share = run.embed_s / run.seconds;
        println!(
            "{}",
            json!({
                "bench": "knowledge", "measure": "ingest", "run": r + 1, "source": source,
                "files": files, "skipped": skipped, "bytes_per_copy": bytes,
                "copies": run.copies, "documents": run.documents, "chunks": run.chunks,
                "tokens_per_chunk": mib(tokens_per_chunk),
                "seconds": ms3(run.seconds), "chunks_per_s": mib(rate),
                "embed_only_s": ms3(run.embed_s), "embed_share": ms3(share),
                "embed_only_chunks_per_s": mib(embed_rate),
                "embed_only_tokens_per_s": (embed_rate * tokens_per_chunk).round(),
                "sqlite_mib": mib(run.sqlite_mib),
                "precision": format!("{:?}", embedder.precision()),
            })
        );
        eprintln!(
            "ingest run {}: {} chunks in {:.2} s = {rate:.1} chunks/s; the embedder alone {embed_rate:.1} chunks/s ({:.0}% of ingest)",
            r + 1,
            run.chunks,
            run.seconds,
            100.0 * share
        );
        rates.push(rate);
        shares.push(share);
        embed_rates.push(embed_rate);
    }
    let rate = median(rates.clone());
    let share = median(shares);
    let embed_rate = median(embed_rates);
    let pass = rate >= INGEST_FLOOR;
    println!(
        "{}",
        json!({
            "bench": "knowledge", "measure": "ingest_median", "runs": args.runs,
            "source": source, "chunks_per_s": mib(rate),
            "chunks_per_s_runs": rates.iter().map(|v| mib(*v)).collect::<Vec<_>>(),
            "embed_share": ms3(share), "embed_only_chunks_per_s": mib(embed_rate),
            "tokens_per_chunk": mib(tokens_per_chunk),
            "embed_only_tokens_per_s": (embed_rate * tokens_per_chunk).round(),
            "precision": format!("{:?}", embedder.precision()),
            "floor_chunks_per_s": INGEST_FLOOR, "pass": pass,
        })
    );
    summary.line(format!(
        "ingest ({source}, {} files, {texts_per_copy} chunks of {tokens_per_chunk:.0} word pieces a copy), median of {} runs: {rate:.1} chunks/s [{}] (floor >= {INGEST_FLOOR}); the embedder ({:?}) alone {embed_rate:.1} chunks/s = {:.0} word pieces/s, {:.0}% of ingest time",
        docs.len(),
        args.runs,
        if pass { "PASS" } else { "FAIL" },
        embedder.precision(),
        embed_rate * tokens_per_chunk,
        100.0 * share,
    ));
    Ok(())
}

const MODES: [Mode; 3] = [Mode::Hybrid, Mode::Vector, Mode::Keyword];

/// Sorted latencies (ms) of one run: the three modes, the query embedding, and embedding plus
/// hybrid search summed per query.
struct RunTimes {
    modes: [Vec<f64>; 3],
    embed: Vec<f64>,
    end_to_end: Vec<f64>,
}

fn time_run(
    index: &Index,
    embedder: &Embedder,
    texts: &[String],
    vectors: &[Vec<f32>],
) -> Result<RunTimes> {
    let mut modes: [Vec<f64>; 3] = Default::default();
    let mut embed = Vec::with_capacity(texts.len());
    let mut end_to_end = Vec::with_capacity(texts.len());
    for (i, (text, vector)) in texts.iter().zip(vectors).enumerate() {
        let mut hybrid = 0.0;
        let mut embedded = 0.0;
        // Step 3 is the embedding; the order turns by one each query.
        for step in 0..4 {
            let which = (step + i) % 4;
            let t = Instant::now();
            if which == 3 {
                std::hint::black_box(embedder.embed(&[text.as_str()])?);
                embedded = t.elapsed().as_secs_f64() * 1e3;
                embed.push(embedded);
            } else {
                let search = Search {
                    text,
                    k: K,
                    mode: MODES[which],
                    prefix: None,
                };
                std::hint::black_box(index.search(&search, Some(vector))?);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if which == 0 {
                    hybrid = ms;
                }
                modes[which].push(ms);
            }
        }
        end_to_end.push(embedded + hybrid);
    }
    for v in modes.iter_mut().chain([&mut embed, &mut end_to_end]) {
        v.sort_by(f64::total_cmp);
    }
    Ok(RunTimes {
        modes,
        embed,
        end_to_end,
    })
}

fn search(args: &Args, embedder: &Embedder, summary: &mut Summary) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let zipf = Zipf::new(vocabulary(4000, &mut rng));
    let t = Instant::now();
    let pool = embed_all(embedder, &pool_sentences(320, &mut rng))?;
    let texts: Vec<String> = (0..args.queries)
        .map(|_| {
            let n = rng.random_range(5..=12);
            zipf.words(n, &mut rng)
        })
        .collect();
    let vectors = embed_all(embedder, &texts)?;
    let query_tokens = texts
        .iter()
        .map(|t| embedder.count_tokens(t).map_or(0, |n| n + 2))
        .sum::<usize>() as f64
        / texts.len() as f64;
    eprintln!(
        "embedded 320 pool sentences and {} queries ({query_tokens:.1} word pieces each, markers included) in {:.1} s",
        texts.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        json!({
            "bench": "knowledge", "measure": "queries", "queries": texts.len(),
            "tokens_per_query": mib(query_tokens),
        })
    );

    for &size in &args.sizes {
        trim_heap();
        let (rss_before, _) = memory_mib();
        let t = Instant::now();
        let chunks = corpus(size, &zipf, &pool, args.seed);
        let generate_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let index = Index::build(chunks)?;
        let build_s = t.elapsed().as_secs_f64();
        let (rss_after, hwm) = memory_mib();
        trim_heap();
        let (rss_live, _) = memory_mib();
        println!(
            "{}",
            json!({
                "bench": "knowledge", "measure": "memory", "chunks": index.len(),
                "generate_s": ms3(generate_s), "build_s": ms3(build_s),
                "rss_before_mib": mib(rss_before), "rss_after_mib": mib(rss_after),
                "rss_after_trim_mib": mib(rss_live), "index_mib": mib(rss_live - rss_before),
                "index_untrimmed_mib": mib(rss_after - rss_before), "hwm_mib": mib(hwm),
            })
        );
        summary.line(format!(
            "{size} chunks: index built in {build_s:.1} s; RSS {rss_before:.0} MiB before, {rss_after:.0} MiB after ({rss_live:.0} MiB with freed pages returned: index {:.0} MiB), peak {hwm:.0} MiB",
            rss_live - rss_before
        ));

        // Warm-up: caches, the searcher, rayon's threads.
        for (text, vector) in texts.iter().zip(&vectors).take(20) {
            for mode in MODES {
                let search = Search {
                    text,
                    k: K,
                    mode,
                    prefix: None,
                };
                std::hint::black_box(index.search(&search, Some(vector))?);
            }
            std::hint::black_box(embedder.embed(&[text.as_str()])?);
        }

        let names = ["hybrid", "vector", "keyword", "embed", "end_to_end"];
        let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for run in 0..args.runs {
            let times = time_run(&index, embedder, &texts, &vectors)?;
            let lists = times.modes.iter().chain([&times.embed, &times.end_to_end]);
            for (m, list) in lists.enumerate() {
                let (p50, p99) = (percentile(list, 0.5), percentile(list, 0.99));
                p50s[m].push(p50);
                p99s[m].push(p99);
                println!(
                    "{}",
                    json!({
                        "bench": "knowledge", "measure": "search", "chunks": size,
                        "run": run + 1, "mode": names[m], "k": K, "queries": list.len(),
                        "p50_ms": ms3(p50), "p99_ms": ms3(p99),
                    })
                );
            }
        }
        let mut line = format!("{size} chunks, median of {} runs:", args.runs);
        for (m, name) in names.iter().enumerate() {
            let (p50, p99) = (median(p50s[m].clone()), median(p99s[m].clone()));
            let mut out = json!({
                "bench": "knowledge", "measure": "search_median", "chunks": size,
                "runs": args.runs, "mode": name, "k": K, "p50_ms": ms3(p50), "p99_ms": ms3(p99),
                "p99_ms_runs": p99s[m].iter().map(|v| ms3(*v)).collect::<Vec<_>>(),
            });
            if size == FLOOR_SIZE && (*name == "hybrid" || *name == "end_to_end") {
                out["floor_p99_ms"] = json!(HYBRID_P99_FLOOR_MS);
                out["pass"] = json!(p99 <= HYBRID_P99_FLOOR_MS);
            }
            println!("{out}");
            line.push_str(&format!(" {name} {p50:.2}/{p99:.2}"));
        }
        line.push_str(" ms (p50/p99)");
        if size == FLOOR_SIZE {
            let hybrid = median(p99s[0].clone());
            line.push_str(&format!(
                "; hybrid p99 {} the {HYBRID_P99_FLOOR_MS} ms floor [{}]",
                if hybrid <= HYBRID_P99_FLOOR_MS {
                    "within"
                } else {
                    "over"
                },
                if hybrid <= HYBRID_P99_FLOOR_MS {
                    "PASS"
                } else {
                    "FAIL"
                }
            ));
        }
        summary.line(line);

        let t = Instant::now();
        let exact = exact_top(size, &pool, args.seed, &vectors);
        let mut found = 0usize;
        for ((text, vector), truth) in texts.iter().zip(&vectors).zip(&exact) {
            let search = Search {
                text,
                k: RECALL_K,
                mode: Mode::Vector,
                prefix: None,
            };
            let hits = index.search(&search, Some(vector))?;
            found += hits
                .iter()
                .filter_map(|h| row_of(&h.document, h.chunk))
                .filter(|row| truth.contains(row))
                .count();
        }
        let recall = found as f64 / (RECALL_K * texts.len()) as f64;
        println!(
            "{}",
            json!({
                "bench": "knowledge", "measure": "recall", "chunks": size, "k": RECALL_K,
                "queries": texts.len(), "recall": (recall * 1e4).round() / 1e4,
                "against": "f32 brute force", "seconds": ms3(t.elapsed().as_secs_f64()),
            })
        );
        summary.line(format!(
            "{size} chunks: vector-mode recall@{RECALL_K} against f32 brute force {recall:.4}"
        ));
        drop(index);
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.queries == 0 {
        bail!("--runs and --queries must be at least 1");
    }
    let started = Instant::now();
    let dir = args.models.join("all-MiniLM-L6-v2");
    if !dir.exists() {
        bail!("{} is missing: run scripts/fetch-models.sh", dir.display());
    }
    let embedder = Arc::new(Embedder::load(&dir)?);
    eprintln!(
        "embedder: {} ({:?}), {} dimensions; {} CPUs",
        embedder.model_name(),
        embedder.precision(),
        embedder.dimensions(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut summary = Summary(Vec::new());
    if !args.no_ingest {
        ingest(&args, &embedder, &mut summary)?;
    }
    if !args.no_search {
        search(&args, &embedder, &mut summary)?;
    }
    eprintln!(
        "\nsummary ({:.0} s in all):",
        started.elapsed().as_secs_f64()
    );
    for line in &summary.0 {
        eprintln!("  {line}");
    }
    Ok(())
}
