//! `switchyard train` and `switchyard eval`: learn a router from labelled data and replay
//! labelled data through it, offline, without calling any model.
//!
//! Data is RouteLLM-style CSV, JSONL, or the gateway's own request log (an SQLite file, told
//! by its header): its `"model": "auto"` rows that carry features (`[router] record_features`)
//! and a label from their cascade or feedback (see `switchyard_router::logged`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use switchyard_embed::{Embedder, Precision};
use switchyard_router::data::{self, Example, Features, ModelPair};
use switchyard_router::eval::{self, Evaluation, Outcome, Report};
use switchyard_router::learned::{self, LearnedRouter, LearnerKind, Target, TrainOptions};
use switchyard_router::logged::{self, Label, Logged};

/// Where the data, the models and the embedding cache come from (shared by both commands).
#[derive(clap::Args)]
pub struct DataArgs {
    /// Labelled data: RouteLLM-style CSV, JSONL, directories of them, or a switchyard request
    /// log (the SQLite file of [store] path, with features recorded). A directory's
    /// contaminated_prompts.jsonl, when present, lists prompts to drop.
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// The weak (cheap) model's column or score key; with --strong. Omitted: the two model
    /// columns of the first file, the lower-scoring one as weak.
    #[arg(long, requires = "strong")]
    weak: Option<String>,
    /// The strong (expensive) model's column or score key.
    #[arg(long, requires = "weak")]
    strong: Option<String>,
    /// Another contaminated-prompts file (RouteLLM's format) to drop prompts from.
    #[arg(long)]
    contaminated: Option<PathBuf>,
    /// The all-MiniLM-L6-v2 folder [default: $SWITCHYARD_MODELS/all-MiniLM-L6-v2, or
    /// the workspace's models/all-MiniLM-L6-v2].
    #[arg(long)]
    embedder: Option<PathBuf>,
    /// Do not read or write the embedding cache (embeddings.cache next to the model file).
    #[arg(long)]
    no_cache: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LearnerArg {
    Knn,
    Logreg,
    Gain,
    Auto,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TargetArg {
    StrongBetter,
    WeakFails,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The model file to write.
    #[arg(long)]
    out: PathBuf,
    /// The learner; auto tries every candidate and keeps the best by cross-validated APGR.
    #[arg(long, value_enum, default_value = "auto")]
    learner: LearnerArg,
    /// What the score predicts: the strong model doing better, or the weak one failing (knn
    /// and logreg; gain predicts both models' quality and scores the expected difference).
    #[arg(long, value_enum, default_value = "strong-better")]
    target: TargetArg,
    /// Share of traffic the calibrated threshold sends to the large model.
    #[arg(long, default_value_t = 0.2)]
    target_large_share: f64,
    /// Groups (file stems, e.g. mmlu_anatomy) left out of training, to evaluate on later.
    #[arg(long, value_delimiter = ',')]
    holdout_groups: Vec<String>,
    /// Cross-validation folds over groups, to choose the learner's parameters.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// How many times the cross-validation runs, over different shuffles of the groups.
    #[arg(long, default_value_t = 3)]
    cv_repeats: usize,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The model file written by `switchyard train`.
    #[arg(long)]
    router: PathBuf,
    /// Evaluate only these groups (file stems), e.g. the ones held out of training.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Threshold bins of the quality curve (RouteLLM's --num-results).
    #[arg(long, default_value_t = eval::DEFAULT_POINTS)]
    points: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the curves as an SVG plot.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn models_dir() -> PathBuf {
    switchyard_models::dir()
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether a path is a request log: an SQLite file, whatever its name.
pub(crate) fn is_request_log(path: &Path) -> bool {
    let mut header = [0u8; 16];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut header))
            .is_ok()
        && &header == SQLITE_HEADER
}

fn model_pair(args: &DataArgs) -> Result<ModelPair> {
    if let (Some(weak), Some(strong)) = (&args.weak, &args.strong) {
        return Ok(ModelPair {
            weak: weak.clone(),
            strong: strong.clone(),
        });
    }
    let files: Vec<&PathBuf> = args.data.iter().filter(|p| !is_request_log(p)).collect();
    if files.is_empty() {
        // Request logs label the small model against the larger ones: no columns to pick.
        return Ok(ModelPair {
            weak: "the small model".into(),
            strong: "a larger model".into(),
        });
    }
    let first = files
        .into_iter()
        .map(|p| data::data_files(p))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .next()
        .context("no data files found under --data")?;
    let names = data::model_names(&first)?;
    let [a, b] = names.as_slice() else {
        bail!(
            "{} has {} model columns ({}); pick two with --weak and --strong",
            first.display(),
            names.len(),
            names.join(", ")
        );
    };
    let pair = ModelPair {
        weak: a.clone(),
        strong: b.clone(),
    };
    let examples = data::load(&first, &pair)?;
    let mean = |f: fn(&Example) -> f64| examples.iter().map(f).sum::<f64>();
    let pair = if mean(|e| e.weak) > mean(|e| e.strong) {
        ModelPair {
            weak: b.clone(),
            strong: a.clone(),
        }
    } else {
        pair
    };
    eprintln!(
        "models: weak = {}, strong = {} (by mean quality; pass --weak/--strong to choose)",
        pair.weak, pair.strong
    );
    Ok(pair)
}

/// Load every --data path, drop contaminated prompts, and say what was read.
fn load_examples(args: &DataArgs, pair: &ModelPair) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    let mut contaminated = HashSet::new();
    for path in &args.data {
        if is_request_log(path) {
            examples.extend(load_log(path)?);
            continue;
        }
        examples.extend(data::load(path, pair)?);
        let listed = path.join(data::CONTAMINATED_FILE);
        if path.is_dir() && listed.is_file() {
            contaminated.extend(data::load_contaminated(&listed)?);
        }
    }
    if let Some(path) = &args.contaminated {
        contaminated.extend(data::load_contaminated(path)?);
    }
    let dropped = data::decontaminate(&mut examples, &contaminated);
    eprintln!(
        "data: {} examples in {} groups ({dropped} contaminated prompts dropped)",
        examples.len(),
        data::groups(&examples).len()
    );
    Ok(examples)
}

/// What reading a request log found, row by row.
#[derive(Debug, Default)]
struct LogCounts {
    rows: usize,
    not_auto: usize,
    no_features: usize,
    no_label: usize,
    not_good_enough: usize,
    good_enough: usize,
    feedback: usize,
    feedback_unknown: usize,
}

/// The labelled examples of a request log (see `switchyard_router::logged` for the rules);
/// says how many rows were skipped and why.
fn load_log(path: &Path) -> Result<Vec<Example>> {
    let context = || format!("cannot read the request log {}", path.display());
    let feedback = switchyard_store::read_feedback(path).with_context(context)?;
    let mut counts = LogCounts {
        feedback: feedback.len(),
        ..LogCounts::default()
    };
    // Oldest first: the latest score for a request wins.
    let mut latest: HashMap<String, f64> = feedback
        .into_iter()
        .map(|f| (f.request_id, f.score))
        .collect();
    let mut rated = HashSet::new();
    let group = data::group_of(path);
    let mut examples = Vec::new();
    switchyard_store::scan_requests(path, |r| {
        counts.rows += 1;
        let feedback = latest.get(&r.id).copied();
        if feedback.is_some() {
            rated.insert(r.id.clone());
        }
        if r.requested_model != switchyard_router::AUTO {
            counts.not_auto += 1;
            return;
        }
        let features = match (r.embedding, r.cheap_features.map(<[f32; 6]>::try_from)) {
            (Some(embedding), Some(Ok(cheap))) if !embedding.is_empty() => {
                Features { embedding, cheap }
            }
            _ => {
                counts.no_features += 1;
                return;
            }
        };
        let scores: BTreeMap<String, f64> = r
            .scores
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let steps = logged::read_steps(r.cascade.as_deref());
        let row = Logged {
            reason: &r.route,
            cascade: steps.as_deref(),
            scores: &scores,
            chosen: r.chosen.as_deref(),
            answered_by: &r.model,
            status: r.status,
            feedback,
        };
        match logged::judge(&row) {
            None => counts.no_label += 1,
            Some(j) => {
                match j.label {
                    Label::NotGoodEnough => counts.not_good_enough += 1,
                    Label::GoodEnough => counts.good_enough += 1,
                }
                examples.push(j.label.example(features, group.clone()));
            }
        }
    })
    .with_context(context)?;
    latest.retain(|id, _| !rated.contains(id));
    counts.feedback_unknown = latest.len();
    let c = &counts;
    eprintln!(
        "{}: {} logged requests: {} not routed by \"auto\" (ignored), {} without features (skipped), \
         {} without a label (skipped), {} examples ({} small model not good enough, {} good enough); \
         {} feedback rows, {} for requests not in the log",
        path.display(),
        c.rows,
        c.not_auto,
        c.no_features,
        c.no_label,
        examples.len(),
        c.not_good_enough,
        c.good_enough,
        c.feedback,
        c.feedback_unknown,
    );
    Ok(examples)
}

/// Every example's embedding: the one it carries (request-log rows), else its text embedded
/// (through the cache).
fn embeddings_of(
    args: &DataArgs,
    cache_path: Option<PathBuf>,
    examples: &[Example],
) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<&str> = examples
        .iter()
        .filter(|e| e.features.is_none())
        .map(|e| e.text.as_str())
        .collect();
    let mut computed = if texts.is_empty() {
        Vec::new()
    } else {
        embed_all(args, cache_path, &texts)?
    }
    .into_iter();
    examples
        .iter()
        .map(|e| match &e.features {
            Some(f) => Ok(f.embedding.clone()),
            None => computed.next().context("an embedding went missing"),
        })
        .collect()
}

/// Keep (`keep = true`) or drop the examples of `groups`; every named group must exist.
fn select_groups(examples: &mut Vec<Example>, groups: &[String], keep: bool) -> Result<()> {
    let known: HashSet<String> = data::groups(examples).into_iter().collect();
    if let Some(unknown) = groups.iter().find(|g| !known.contains(*g)) {
        bail!(
            "no group `{unknown}` in the data (groups are file stems, e.g. {})",
            known.iter().next().map_or("mmlu_anatomy", String::as_str)
        );
    }
    let set: HashSet<&String> = groups.iter().collect();
    examples.retain(|e| set.contains(&e.group) == keep);
    Ok(())
}

const CACHE_MAGIC: &[u8; 8] = b"SYEMB01\n";

/// Embeddings keyed by SHA-256 of (embedder name, text), in a file of fixed-size records.
struct EmbeddingCache {
    path: Option<PathBuf>,
    dims: usize,
    known: HashMap<[u8; 32], Vec<f32>>,
}

fn cache_key(text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(learned::EMBEDDER.as_bytes());
    // The vectors differ slightly between precisions: never mix them in one training set.
    h.update(format!("{:?}", Precision::fastest()).as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}

impl EmbeddingCache {
    fn open(path: Option<PathBuf>, dims: usize) -> Self {
        let mut known = HashMap::new();
        if let Some(p) = &path {
            match Self::read(p, dims) {
                Ok(k) => known = k,
                Err(e) if p.exists() => {
                    eprintln!("ignoring the embedding cache {}: {e:#}", p.display())
                }
                Err(_) => {}
            }
        }
        EmbeddingCache { path, dims, known }
    }

    fn read(path: &Path, dims: usize) -> Result<HashMap<[u8; 32], Vec<f32>>> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut bytes)?;
        let header = 8 + 4;
        if bytes.len() < header || &bytes[..8] != CACHE_MAGIC {
            bail!("not an embedding cache");
        }
        let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if stored != dims {
            bail!("it holds {stored}-dimensional vectors, not {dims}");
        }
        let record = 32 + 4 * dims;
        Ok(bytes[header..]
            .chunks_exact(record)
            .map(|r| {
                let mut key = [0u8; 32];
                key.copy_from_slice(&r[..32]);
                let v = r[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (key, v)
            })
            .collect())
    }

    fn append(&self, new: &[([u8; 32], Vec<f32>)]) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if new.is_empty() {
            return Ok(());
        }
        let fresh = !path.is_file();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write the embedding cache {}", path.display()))?;
        let mut buf = Vec::new();
        if fresh {
            buf.extend_from_slice(CACHE_MAGIC);
            buf.extend_from_slice(&(self.dims as u32).to_le_bytes());
        }
        for (key, v) in new {
            buf.extend_from_slice(key);
            v.iter()
                .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        }
        file.write_all(&buf)?;
        Ok(())
    }
}

/// Embed every text (from the cache where possible), with a progress bar.
fn embed_all(
    args: &DataArgs,
    cache_path: Option<PathBuf>,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>> {
    let dir = args
        .embedder
        .clone()
        .unwrap_or_else(|| models_dir().join("all-MiniLM-L6-v2"));
    let cache_path = if args.no_cache { None } else { cache_path };
    // all-MiniLM-L6-v2's width, checked against the model when it has to be loaded; the
    // model is loaded only when the cache lacks something.
    let dims = 384;
    let cache = EmbeddingCache::open(cache_path, dims);
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache_key(t)).collect();
    let missing: Vec<usize> = (0..texts.len())
        .filter(|&i| !cache.known.contains_key(&keys[i]))
        .collect();
    let mut fresh: HashMap<[u8; 32], Vec<f32>> = HashMap::new();
    if !missing.is_empty() {
        let embedder = Embedder::load(&dir)
            .with_context(|| format!("cannot load the embedder from {}", dir.display()))?;
        if embedder.dimensions() != dims {
            bail!(
                "the embedder at {} gives {} dimensions, expected {dims}",
                dir.display(),
                embedder.dimensions()
            );
        }
        let bar = ProgressBar::new(missing.len() as u64).with_message("embedding");
        bar.set_style(ProgressStyle::with_template(
            "{msg} {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}]",
        )?);
        let mut batch_new = Vec::new();
        for chunk in missing.chunks(64) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let out = embedder.embed(&batch)?;
            for (&i, v) in chunk.iter().zip(out.vectors) {
                batch_new.push((keys[i], v.clone()));
                fresh.insert(keys[i], v);
            }
            // Write as we go, so an interrupted run keeps what it paid for.
            cache.append(&batch_new)?;
            batch_new.clear();
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
    }
    eprintln!(
        "embeddings: {} cached, {} computed",
        texts.len() - missing.len(),
        missing.len()
    );
    keys.iter()
        .map(|k| {
            cache
                .known
                .get(k)
                .or_else(|| fresh.get(k))
                .cloned()
                .context("an embedding went missing")
        })
        .collect()
}

fn cache_next_to(model: &Path) -> PathBuf {
    model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("embeddings.cache")
}

/// A `switchyard replay` folder stands for its labels: the training half for `train`, the
/// held-out half for `eval`.
fn replay_labels(args: &mut DataArgs, held_out: bool) {
    for path in &mut args.data {
        if let Some(labels) = switchyard_replay::labels::for_folder(path, held_out) {
            eprintln!("data: {} (the replay's graded answers)", labels.display());
            *path = labels;
        }
    }
}

pub fn train(mut args: TrainArgs) -> Result<()> {
    replay_labels(&mut args.data, false);
    let pair = model_pair(&args.data)?;
    let mut examples = load_examples(&args.data, &pair)?;
    select_groups(&mut examples, &args.holdout_groups, false)?;
    if !args.holdout_groups.is_empty() {
        eprintln!(
            "training on {} examples ({} groups held out)",
            examples.len(),
            args.holdout_groups.len()
        );
    }
    // The embedding cache lives next to the model file, so its folder must exist first.
    if let Some(dir) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let embeddings = embeddings_of(&args.data, Some(cache_next_to(&args.out)), &examples)?;
    let opts = TrainOptions {
        learner: match args.learner {
            LearnerArg::Knn => LearnerKind::Knn,
            LearnerArg::Logreg => LearnerKind::Logreg,
            LearnerArg::Gain => LearnerKind::Gain,
            LearnerArg::Auto => LearnerKind::Auto,
        },
        target: match args.target {
            TargetArg::StrongBetter => Target::StrongBetter,
            TargetArg::WeakFails => Target::WeakFails,
        },
        target_large_share: args.target_large_share,
        folds: args.folds,
        repeats: args.cv_repeats,
        training_files: args
            .data
            .data
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        holdout_groups: args.holdout_groups.clone(),
        ..TrainOptions::default()
    };
    let router = learned::train(&examples, &embeddings, &opts)?;
    let meta = router.metadata();
    println!(
        "cross-validation ({} folds over groups, {} repeats), mean APGR of the validation folds:",
        meta.folds, args.cv_repeats
    );
    for c in &meta.validation {
        let mark = if c.name == router.name() {
            "  <- chosen"
        } else {
            ""
        };
        println!("  {:<28} {:.4}{mark}", c.name, c.cv_apgr);
    }
    router.save(&args.out)?;
    println!(
        "wrote {}: {} on {} examples, threshold {:.4} (about {:.0}% to {})",
        args.out.display(),
        router.name(),
        meta.examples,
        router.threshold(),
        100.0 * meta.target_large_share,
        pair.strong
    );
    Ok(())
}

fn metrics_json(e: &Evaluation) -> serde_json::Value {
    serde_json::json!({"apgr": e.apgr, "cpt50": e.cpt50, "cpt80": e.cpt80, "cpt95": e.cpt95})
}

pub fn eval(mut args: EvalArgs) -> Result<()> {
    replay_labels(&mut args.data, true);
    let router = LearnedRouter::load(&args.router)?;
    let pair = model_pair(&args.data)?;
    let mut examples = load_examples(&args.data, &pair)?;
    if !args.groups.is_empty() {
        select_groups(&mut examples, &args.groups, true)?;
    }
    let trained: HashSet<&String> = router.metadata().training_groups.iter().collect();
    let seen = examples
        .iter()
        .filter(|e| trained.contains(&e.group))
        .count();
    if seen > 0 {
        eprintln!(
            "warning: {seen} of {} examples are from groups the router was trained on; pass --groups to evaluate on held-out ones",
            examples.len()
        );
    }
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let embeddings = embeddings_of(&args.data, Some(cache_next_to(&args.router)), &examples)?;
    let scores: Vec<f64> = embeddings
        .iter()
        .zip(&examples)
        .map(|(v, e)| router.score_example(e, v))
        .collect();
    let outcomes: Vec<Outcome> = examples.iter().map(Example::outcome).collect();
    let report = eval::report(&scores, &texts, &outcomes, args.points)?;
    let at_threshold =
        scores.iter().filter(|s| router.prefers_strong(**s)).count() as f64 / scores.len() as f64;
    if let Some(path) = &args.plot {
        plot(path, &report, &router.name(), &pair)?;
    }
    if args.json {
        let mut obj = metrics_json(&report.router);
        obj["router"] = router.name().into();
        obj["examples"] = report.examples.into();
        obj["weak_quality"] = report.weak_quality.into();
        obj["strong_quality"] = report.strong_quality.into();
        obj["strong_share_at_threshold"] = at_threshold.into();
        obj["baselines"] = serde_json::json!({
            "random": metrics_json(&report.random),
            "length": metrics_json(&report.length),
            "oracle": metrics_json(&report.oracle),
        });
        println!("{obj}");
        return Ok(());
    }
    println!(
        "{} examples; weak {} {:.4}, strong {} {:.4}",
        report.examples, pair.weak, report.weak_quality, pair.strong, report.strong_quality
    );
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>7}",
        "router", "APGR", "CPT50", "CPT80", "CPT95"
    );
    let rows = [
        (format!("learned {}", router.name()), &report.router),
        ("random (20 seeds)".into(), &report.random),
        ("prompt length".into(), &report.length),
        ("oracle".into(), &report.oracle),
    ];
    for (name, e) in rows {
        println!(
            "{name:<24} {:>7.4} {:>6.1}% {:>6.1}% {:>6.1}%",
            e.apgr,
            100.0 * e.cpt50,
            100.0 * e.cpt80,
            100.0 * e.cpt95
        );
    }
    println!(
        "at the stored threshold {:.4}: {:.1}% of these prompts go to {}",
        router.threshold(),
        100.0 * at_threshold,
        pair.strong
    );
    if let Some(path) = &args.plot {
        println!("plot: {}", path.display());
    }
    Ok(())
}

/// Quality against share of strong calls, one line per router, the two models as flat lines.
fn plot(path: &Path, report: &Report, name: &str, pair: &ModelPair) -> Result<()> {
    use plotters::prelude::*;
    let series = [
        (format!("learned {name}"), &report.router, RED),
        ("random".to_owned(), &report.random, BLACK),
        ("prompt length".to_owned(), &report.length, BLUE),
        ("oracle".to_owned(), &report.oracle, GREEN),
    ];
    let all = series
        .iter()
        .flat_map(|(_, e, _)| e.curve.iter().map(|p| p.quality))
        .chain([report.weak_quality, report.strong_quality]);
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q), b.max(q)));
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Quality vs strong-model calls ({} examples)",
                report.examples
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..100f64, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc(format!("calls to {} (%)", pair.strong))
        .y_desc("mean quality")
        .draw()?;
    for (label, e, color) in series {
        chart
            .draw_series(LineSeries::new(
                e.curve.iter().map(|p| (100.0 * p.strong_share, p.quality)),
                color.stroke_width(2),
            ))?
            .label(format!("{label} (APGR {:.3})", e.apgr))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for (label, q) in [
        (format!("{} only", pair.weak), report.weak_quality),
        (format!("{} only", pair.strong), report.strong_quality),
    ] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, q), (100.0, q)],
                RGBColor(150, 150, 150),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(150, 150, 150)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
