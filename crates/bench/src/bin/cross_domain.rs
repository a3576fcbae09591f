//! Does the learned router hold up on traffic unlike its training data? Every learner family
//! is trained on one source (RouteLLM's MMLU minus 11 held-out subjects; a replay's training
//! half; both) and judged on the others (the 11 held-out subjects; the replay's held-out half,
//! as a whole and family by family), next to random and prompt length on the same examples.
//! Each learner is judged as trained and with its score shrunk toward the prompt-length prior
//! where a prompt lies far from the training prompts. The worst case over the cross-domain
//! pairs, not the MMLU figure, says which default to ship.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use switchyard_offline::{embeddings, labelled};
use switchyard_router::data::{Example, ModelPair};
use switchyard_router::eval::{self, Outcome};
use switchyard_router::learned::{self, LearnedRouter, LearnerKind, TrainOptions};

/// Every fifth subject in alphabetical order: the held-out subjects of docs/benchmarks.md.
const HELD_OUT_SUBJECTS: [&str; 11] = [
    "mmlu_astronomy",
    "mmlu_college_computer_science",
    "mmlu_conceptual_physics",
    "mmlu_global_facts",
    "mmlu_high_school_geography",
    "mmlu_high_school_physics",
    "mmlu_human_aging",
    "mmlu_machine_learning",
    "mmlu_moral_disputes",
    "mmlu_professional_accounting",
    "mmlu_security_studies",
];

/// The fewest prompts, net, the strong model must win in a test set for its APGR to count.
const MIN_NET_WINS: f64 = 5.0;

#[derive(Parser)]
struct Args {
    /// RouteLLM's MMLU labels (a folder of CSVs).
    #[arg(long, default_value = "../shared/data/routellm-mmlu")]
    mmlu: PathBuf,
    /// A `switchyard replay` output folder (its labels/train.jsonl and labels/held-out.jsonl).
    #[arg(long)]
    replay: PathBuf,
    /// Embedding cache (created if missing).
    #[arg(long, default_value = "target/cross-domain/embeddings.cache")]
    cache: PathBuf,
    /// Learner families to train (knn, logreg, gain, auto).
    #[arg(long, value_delimiter = ',', default_value = "knn,logreg,gain")]
    learners: Vec<String>,
    /// Cross-validation repeats inside each training (the CLI's default is 3).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

struct Set {
    name: String,
    examples: Vec<Example>,
    embeddings: Vec<Vec<f32>>,
}

impl Set {
    fn outcomes(&self) -> Vec<Outcome> {
        self.examples.iter().map(Example::outcome).collect()
    }
}

fn kind(name: &str) -> Result<LearnerKind> {
    Ok(match name {
        "knn" => LearnerKind::Knn,
        "logreg" => LearnerKind::Logreg,
        "gain" => LearnerKind::Gain,
        "auto" => LearnerKind::Auto,
        other => anyhow::bail!("unknown learner {other:?}: use knn, logreg, gain or auto"),
    })
}

/// A replay group's family: "kb:billing/x.md" -> "kb", "arithmetic-2" -> "arithmetic".
fn family(group: &str) -> String {
    group.split([':', '-']).next().unwrap_or(group).to_owned()
}

fn load(path: PathBuf, pair: &ModelPair) -> Result<Vec<Example>> {
    Ok(labelled::load(&[path], std::slice::from_ref(pair), None)?.examples)
}

fn embed(source: &embeddings::Source, name: &str, examples: Vec<Example>) -> Result<Set> {
    let embedded = embeddings::of_examples(source, &examples, &mut |done, of| {
        if done == of || done % 1024 == 0 {
            eprintln!("{name}: embedded {done}/{of}");
        }
    })?;
    Ok(Set {
        name: name.into(),
        embeddings: embedded.vectors,
        examples,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let source = embeddings::Source {
        embedder: switchyard_models::find("all-MiniLM-L6-v2")?,
        cache: Some(args.cache.clone()),
    };
    if let Some(dir) = args.cache.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mmlu_pair = ModelPair {
        weak: "mistralai/Mixtral-8x7B-Instruct-v0.1".into(),
        strong: "gpt-4-1106-preview".into(),
    };
    let replay_pair = ModelPair {
        weak: "small".into(),
        strong: "large".into(),
    };
    let mmlu = load(args.mmlu.clone(), &mmlu_pair)?;
    let (mmlu_test, mmlu_train): (Vec<Example>, Vec<Example>) = mmlu
        .into_iter()
        .partition(|e| HELD_OUT_SUBJECTS.contains(&e.group.as_str()));
    let labels = |name: &str| args.replay.join("labels").join(name);
    let replay_train = load(labels("train.jsonl"), &replay_pair)?;
    let replay_test = load(labels("held-out.jsonl"), &replay_pair)?;

    let mmlu_train = embed(&source, "mmlu-46", mmlu_train)?;
    let mmlu_test = embed(&source, "mmlu-11", mmlu_test)?;
    let replay_train = embed(&source, "replay-train", replay_train)?;
    let replay_test = embed(&source, "replay-held-out", replay_test)?;
    let mix = Set {
        name: "mix".into(),
        examples: [&mmlu_train.examples[..], &replay_train.examples[..]].concat(),
        embeddings: [&mmlu_train.embeddings[..], &replay_train.embeddings[..]].concat(),
    };

    let mut tests = vec![
        (mmlu_test.name.clone(), mmlu_test),
        (
            replay_test.name.clone(),
            subset(&replay_test, "replay", |_| true),
        ),
    ];
    let families: Vec<String> = {
        let mut f: Vec<String> = replay_test
            .examples
            .iter()
            .map(|e| family(&e.group))
            .collect();
        f.sort();
        f.dedup();
        f
    };
    for f in &families {
        let s = subset(&replay_test, &format!("replay:{f}"), |e| {
            family(&e.group) == *f
        });
        tests.push((s.name.clone(), s));
    }
    // APGR measures the recovered gap between the models: a set where the strong model wins
    // fewer than five prompts net has next to no gap, and its APGR is noise.
    tests.retain(|(name, s)| {
        let (w, st) = eval::model_qualities(&s.outcomes());
        let keep = (st - w) * s.examples.len() as f64 >= MIN_NET_WINS;
        if !keep {
            eprintln!(
                "{name}: left out ({} examples, weak {w:.3}, strong {st:.3})",
                s.examples.len()
            );
        }
        keep
    });

    println!("test set                 n   weak  strong  random  length  oracle");
    let mut baselines = BTreeMap::new();
    for (name, s) in &tests {
        let texts: Vec<&str> = s.examples.iter().map(|e| e.text.as_str()).collect();
        let r = eval::report(
            &vec![0.0; texts.len()],
            &texts,
            &s.outcomes(),
            eval::DEFAULT_POINTS,
        )?;
        println!(
            "{name:<20} {:>5}  {:.3}  {:.3}   {:.3}   {:.3}   {:.3}",
            r.examples,
            r.weak_quality,
            r.strong_quality,
            r.random.apgr,
            r.length.apgr,
            r.oracle.apgr
        );
        baselines.insert(name.clone(), r.random.apgr.max(r.length.apgr));
    }
    println!();

    let sources = [&mmlu_train, &replay_train, &mix];
    print!(
        "{:<14} {:<30} {:<8}",
        "trained on", "learner (CV choice)", "score"
    );
    for (name, _) in &tests {
        print!(" {:>10}", short(name));
    }
    println!("  worst margin");
    for train in sources {
        for learner in &args.learners {
            let opts = TrainOptions {
                learner: kind(learner)?,
                target_large_share: 0.2,
                repeats: args.repeats,
                training_files: vec![train.name.clone()],
                ..TrainOptions::default()
            };
            let started = std::time::Instant::now();
            let router = learned::train(&train.examples, &train.embeddings, &opts)?;
            eprintln!(
                "{} {learner}: trained in {:.0?}",
                train.name,
                started.elapsed()
            );
            let prior = LengthPrior::new(&router, train);
            let near = Familiarity::new(train);
            for variant in ["plain", "shrunk"] {
                print!("{:<14} {:<30} {:<8}", train.name, router.name(), variant);
                let mut worst = f64::INFINITY;
                for (name, s) in &tests {
                    let scores: Vec<f64> = s
                        .examples
                        .iter()
                        .zip(&s.embeddings)
                        .map(|(e, v)| {
                            let learned = router.score(v, &e.text);
                            match variant {
                                "plain" => learned,
                                _ => {
                                    let w = near.weight(v);
                                    w * learned + (1.0 - w) * prior.score(&e.text)
                                }
                            }
                        })
                        .collect();
                    let apgr = eval::evaluate(&scores, &s.outcomes(), eval::DEFAULT_POINTS)?.apgr;
                    print!(" {apgr:>10.3}");
                    if is_cross(&train.name, name) {
                        worst = worst.min(apgr - baselines[name]);
                    }
                }
                println!("  {worst:+.3}");
            }
        }
    }
    Ok(())
}

fn short(name: &str) -> String {
    name.trim_start_matches("replay:")
        .chars()
        .take(10)
        .collect()
}

/// Whether a router trained on `train` is judged on `test` in the worst case: the pairs across
/// domains (MMLU to the workload's non-MMLU families and back), and for the mix every test.
fn is_cross(train: &str, test: &str) -> bool {
    match train {
        "mmlu-46" => test.starts_with("replay") && test != "replay:mmlu",
        "replay-train" => test == "mmlu-11",
        _ => true,
    }
}

fn subset(set: &Set, name: &str, keep: impl Fn(&Example) -> bool) -> Set {
    let (examples, embeddings) = set
        .examples
        .iter()
        .zip(&set.embeddings)
        .filter(|(e, _)| keep(e))
        .map(|(e, v)| (e.clone(), v.clone()))
        .unzip();
    Set {
        name: name.into(),
        examples,
        embeddings,
    }
}

/// The prompt-length router mapped onto the learned score's scale: a prompt whose length sits
/// at quantile q of the training prompts' lengths gets the training scores' quantile q.
struct LengthPrior {
    lengths: Vec<f64>,
    scores: Vec<f64>,
}

impl LengthPrior {
    fn new(router: &LearnedRouter, train: &Set) -> LengthPrior {
        let mut lengths = eval::length_scores(
            &train
                .examples
                .iter()
                .map(|e| e.text.as_str())
                .collect::<Vec<_>>(),
        );
        let mut scores: Vec<f64> = train
            .examples
            .iter()
            .zip(&train.embeddings)
            .map(|(e, v)| router.score(v, &e.text))
            .collect();
        lengths.sort_by(f64::total_cmp);
        scores.sort_by(f64::total_cmp);
        LengthPrior { lengths, scores }
    }

    fn score(&self, text: &str) -> f64 {
        let len = text.chars().count() as f64;
        let q = self.lengths.partition_point(|l| *l < len) as f64 / self.lengths.len() as f64;
        eval::quantile(&self.scores, q)
    }
}

/// How near a prompt lies to the training prompts: the mean cosine similarity of its 10
/// nearest, against the same figure of the training prompts themselves (leave one out).
struct Familiarity<'a> {
    train: &'a Set,
    far: f64,
    near: f64,
}

const NEIGHBOURS: usize = 10;

fn mean_top(train: &Set, query: &[f32], skip_self: bool) -> f64 {
    let mut sims: Vec<f32> = train
        .embeddings
        .iter()
        .map(|v| v.iter().zip(query).map(|(a, b)| a * b).sum())
        .collect();
    sims.sort_by(|a, b| b.total_cmp(a));
    let from = usize::from(skip_self);
    let top = &sims[from.min(sims.len())..(from + NEIGHBOURS).min(sims.len())];
    top.iter().map(|s| f64::from(*s)).sum::<f64>() / top.len().max(1) as f64
}

impl<'a> Familiarity<'a> {
    fn new(train: &'a Set) -> Familiarity<'a> {
        let step = (train.embeddings.len() / 300).max(1);
        let mut own: Vec<f64> = train
            .embeddings
            .iter()
            .step_by(step)
            .map(|v| mean_top(train, v, true))
            .collect();
        own.sort_by(f64::total_cmp);
        Familiarity {
            train,
            far: eval::quantile(&own, 0.01),
            near: eval::quantile(&own, 0.25),
        }
    }

    /// 1 for a prompt as near as a typical training prompt, 0 for one farther than almost all.
    fn weight(&self, query: &[f32]) -> f64 {
        let f = mean_top(self.train, query, false);
        ((f - self.far) / (self.near - self.far).max(1e-6)).clamp(0.0, 1.0)
    }
}
