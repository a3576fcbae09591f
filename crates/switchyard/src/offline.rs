//! `switchyard train` and `switchyard eval`: the command line of `switchyard_offline`, which
//! learns a router from labelled data and replays labelled data through it without calling
//! any model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use switchyard_offline::{embeddings, judge, labelled, plot};
use switchyard_router::data::{self, Example, ModelPair};
use switchyard_router::eval;
use switchyard_router::learned::{self, LearnedRouter, LearnerKind, Target, TrainOptions};

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

/// Each --data path's pair (`--weak`/`--strong` for all, else each path's own, said on stderr)
/// and the pair that names them in reports: the first path's.
fn model_pairs(args: &DataArgs) -> Result<(Vec<ModelPair>, ModelPair)> {
    let explicit = match (&args.weak, &args.strong) {
        (Some(weak), Some(strong)) => Some(ModelPair {
            weak: weak.clone(),
            strong: strong.clone(),
        }),
        _ => None,
    };
    let pairs = labelled::model_pairs(&args.data, explicit)?;
    for (path, pair) in args.data.iter().zip(&pairs) {
        if pair.by_mean_quality {
            eprintln!(
                "models: weak = {}, strong = {} in {} (by mean quality; pass --weak/--strong to choose)",
                pair.models.weak,
                pair.models.strong,
                path.display()
            );
        }
    }
    let models: Vec<ModelPair> = pairs.into_iter().map(|p| p.models).collect();
    let shown = models.first().cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no --data given: name a labelled file, folder, replay folder or request log"
        )
    })?;
    Ok((models, shown))
}

/// Load every --data path, drop contaminated prompts, and say what was read.
fn load_examples(args: &DataArgs, pairs: &[ModelPair]) -> Result<Vec<Example>> {
    let loaded = labelled::load(&args.data, pairs, args.contaminated.as_deref())?;
    for (path, counts) in &loaded.logs {
        eprintln!("{}: {counts}", path.display());
    }
    eprintln!(
        "data: {} examples in {} groups ({} contaminated prompts dropped)",
        loaded.examples.len(),
        data::groups(&loaded.examples).len(),
        loaded.contaminated_dropped
    );
    Ok(loaded.examples)
}

/// Every example's embedding, through the cache next to `model`, with a progress bar.
fn embeddings_of(args: &DataArgs, model: &Path, examples: &[Example]) -> Result<Vec<Vec<f32>>> {
    let source = embeddings::Source {
        embedder: args
            .embedder
            .clone()
            .unwrap_or_else(|| switchyard_models::dir().join("all-MiniLM-L6-v2")),
        cache: (!args.no_cache).then(|| embeddings::cache_next_to(model)),
    };
    let bar = ProgressBar::hidden().with_message("embedding");
    bar.set_style(ProgressStyle::with_template(
        "{msg} {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}]",
    )?);
    let embedded = embeddings::of_examples(&source, examples, &mut |done, of| {
        if bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_length(of as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if let (Some(why), Some(path)) = (&embedded.cache_ignored, &source.cache) {
        eprintln!("ignoring the embedding cache {}: {why}", path.display());
    }
    if embedded.cached + embedded.computed > 0 {
        eprintln!(
            "embeddings: {} cached, {} computed",
            embedded.cached, embedded.computed
        );
    }
    Ok(embedded.vectors)
}

/// A `switchyard replay` folder stands for its labels: the training half for `train`, the
/// held-out half for `eval`.
fn replay_labels(args: &mut DataArgs, held_out: bool) {
    for labels in labelled::replay_labels(&mut args.data, held_out) {
        eprintln!("data: {} (the replay's graded answers)", labels.display());
    }
}

pub fn train(mut args: TrainArgs) -> Result<()> {
    replay_labels(&mut args.data, false);
    let (pairs, pair) = model_pairs(&args.data)?;
    let mut examples = load_examples(&args.data, &pairs)?;
    labelled::select_groups(&mut examples, &args.holdout_groups, false)?;
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
    let embeddings = embeddings_of(&args.data, &args.out, &examples)?;
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

pub fn eval(mut args: EvalArgs) -> Result<()> {
    replay_labels(&mut args.data, true);
    let router = LearnedRouter::load(&args.router)?;
    let (pairs, pair) = model_pairs(&args.data)?;
    let mut examples = load_examples(&args.data, &pairs)?;
    if !args.groups.is_empty() {
        labelled::select_groups(&mut examples, &args.groups, true)?;
    }
    let embeddings = embeddings_of(&args.data, &args.router, &examples)?;
    let judged = judge::judge(&router, &examples, &embeddings, args.points)?;
    if judged.seen_in_training > 0 {
        eprintln!(
            "warning: {} of {} examples are from groups the router was trained on; pass --groups to evaluate on held-out ones",
            judged.seen_in_training,
            examples.len()
        );
    }
    let report = &judged.report;
    let at_threshold = judged.strong_share_at_threshold;
    if let Some(path) = &args.plot {
        plot::curves(path, report, &router.name(), &pair)?;
    }
    if args.json {
        let mut obj = judge::metrics_json(&report.router);
        obj["router"] = router.name().into();
        obj["examples"] = report.examples.into();
        obj["weak_quality"] = report.weak_quality.into();
        obj["strong_quality"] = report.strong_quality.into();
        obj["strong_share_at_threshold"] = at_threshold.into();
        obj["baselines"] = serde_json::json!({
            "random": judge::metrics_json(&report.random),
            "length": judge::metrics_json(&report.length),
            "oracle": judge::metrics_json(&report.oracle),
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
