//! The learned router: a score P(the weak model is not good enough | conversation) from the
//! conversation's sentence embedding (all-MiniLM-L6-v2) and a few cheap text features, and a
//! threshold above which the request goes to the strong model.
//!
//! Learners, chosen by measurement (grouped cross-validation on the training data, see
//! [`train`]):
//!
//! * **kNN**: cosine similarity to the training conversations, the similarity-weighted mean of
//!   the labels of the `k` nearest; `k` chosen by validation. Training vectors are stored as f16.
//! * **logistic regression** on the standardised embedding, optionally with the cheap features.
//!   Written here as full-batch gradient descent (Adam, L2): about forty lines, where a crate
//!   (`linfa-logistic`) would bring ndarray and argmin for the same fit on ≤ 20k rows.
//! * **gain**: two such logistic regressions, one for the strong model's quality and one for
//!   the weak model's, and the score `(1 + P(strong right) − P(weak right)) / 2`: the expected
//!   quality gained by calling the strong model, on a 0…1 scale. That gain is what routing a
//!   prompt to the strong model is worth on the quality curve, so it is the score APGR rewards;
//!   the single-label targets ([`Target`]) see only part of it ("strong better" ignores the
//!   prompts the strong model gets wrong and the weak one right). It ignores `--target`.
//!
//! The threshold is calibrated as RouteLLM does: the score quantile such that about
//! `target_large_share` of the training prompts score at or above it (on out-of-fold scores, so
//! the fit to its own training data does not skew it).
//!
//! Pure: no model calls. [`LearnedRouter::load`] and [`LearnedRouter::save`] read and write the
//! model file (JSON; kNN vectors as base64 little-endian f16).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Example;
use crate::eval::{self, Outcome};

/// The embedder whose vectors the learners are trained on.
pub const EMBEDDER: &str = "all-MiniLM-L6-v2";
/// The model file's format version (2 added the `gain` learner; version 1 files still load).
pub const FORMAT: u32 = 2;
/// The oldest format version [`LearnedRouter::load`] still reads.
pub const OLDEST_FORMAT: u32 = 1;

/// Names of the cheap features, in the order [`cheap_features`] returns them.
pub const CHEAP_FEATURES: [&str; 6] = [
    "log_chars",
    "log_lines",
    "digit_share",
    "math_share",
    "log_code_markers",
    "log_question_marks",
];

/// Cheap, explainable text features (see [`CHEAP_FEATURES`]).
pub fn cheap_features(text: &str) -> [f32; 6] {
    let chars = text.chars().count().max(1) as f32;
    let digits = text.chars().filter(char::is_ascii_digit).count() as f32;
    let math = text
        .chars()
        .filter(|c| "+-*/=^<>%√∑∫π≤≥≠±×÷".contains(*c))
        .count() as f32
        + 3.0 * text.matches("\\frac").count() as f32;
    let code = [
        "```", "{", "}", ";", "def ", "fn ", "return", "()", "=>", "#include",
    ]
    .iter()
    .map(|m| text.matches(m).count())
    .sum::<usize>() as f32;
    [
        chars.ln_1p(),
        (text.lines().count() as f32).ln_1p(),
        digits / chars,
        math / chars,
        code.ln_1p(),
        (text.matches('?').count() as f32).ln_1p(),
    ]
}

/// What the learner is taught to predict from an example's two qualities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// 1 where the strong model did strictly better than the weak one (RouteLLM's "strong
    /// wins" label).
    StrongBetter,
    /// 1 − the weak model's quality (qualities on a 0…1 scale): how badly the weak one did.
    WeakFails,
}

impl Target {
    pub fn label(self, e: &Example) -> f32 {
        match self {
            Target::StrongBetter => (e.strong > e.weak) as u8 as f32,
            Target::WeakFails => (1.0 - e.weak).clamp(0.0, 1.0) as f32,
        }
    }
}

/// Which learner [`train`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerKind {
    Knn,
    Logreg,
    /// Two logistic regressions, the strong and the weak model's quality; the score is the
    /// expected gain.
    Gain,
    /// Every candidate of all three; the best by cross-validated APGR wins.
    Auto,
}

/// Why training, loading or saving failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a switchyard router model: {message}")]
    Format { path: PathBuf, message: String },
    #[error("cannot train: {0}")]
    Train(String),
    #[error(transparent)]
    Eval(#[from] eval::EvalError),
}

/// One learner configuration and its cross-validated quality on the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    /// Mean APGR of the validation folds (folds are whole groups; each fold scored by a model
    /// fitted without it), over every repeat of the cross-validation.
    pub cv_apgr: f64,
}

/// Where the model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub embedder: String,
    pub target: Target,
    pub target_large_share: f64,
    pub training_files: Vec<String>,
    pub training_groups: Vec<String>,
    pub holdout_groups: Vec<String>,
    pub examples: usize,
    pub folds: usize,
    /// Every candidate tried, with its cross-validated APGR.
    pub validation: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq)]
struct Knn {
    k: usize,
    dims: usize,
    /// Row-major, `labels.len()` rows of `dims` unit vectors.
    vectors: Vec<f32>,
    labels: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Logreg {
    l2: f32,
    cheap: bool,
    dims: usize,
    mean: Vec<f32>,
    scale: Vec<f32>,
    weights: Vec<f32>,
    bias: f32,
}

/// The strong and the weak model's quality, each a logistic regression on the same features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Gain {
    strong: Logreg,
    weak: Logreg,
}

impl Gain {
    fn score_features(&self, embedding: &[f32], cheap: &[f32; 6]) -> f64 {
        let strong = self.strong.score_features(embedding, cheap);
        let weak = self.weak.score_features(embedding, cheap);
        (1.0 + strong - weak) / 2.0
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Scorer {
    Knn(Knn),
    Logreg(Logreg),
    Gain(Gain),
}

/// A trained learned router: scorer, threshold and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedRouter {
    scorer: Scorer,
    threshold: f64,
    meta: Metadata,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LearnerFile {
    Knn {
        k: usize,
        dims: usize,
        labels: Vec<f32>,
        /// base64 of little-endian f16, row-major.
        vectors_f16: String,
    },
    Logreg(Logreg),
    Gain(Gain),
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: u32,
    threshold: f64,
    learner: LearnerFile,
    metadata: Metadata,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes so the compiler vectorises the reduction.
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

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl Knn {
    /// Similarities and labels of the `k` nearest rows, most similar first.
    fn nearest(&self, query: &[f32], k: usize) -> Vec<(f32, f32)> {
        nearest(&self.vectors, self.dims, &self.labels, query, k)
    }

    fn score(&self, query: &[f32]) -> f64 {
        weighted_mean(&self.nearest(query, self.k), self.k)
    }
}

/// The `k` most similar rows of `vectors`, as (similarity, label), most similar first.
fn nearest(
    vectors: &[f32],
    dims: usize,
    labels: &[f32],
    query: &[f32],
    k: usize,
) -> Vec<(f32, f32)> {
    let mut sims: Vec<(f32, f32)> = vectors
        .chunks_exact(dims)
        .zip(labels)
        .map(|(v, &y)| (dot(v, query), y))
        .collect();
    let k = k.min(sims.len());
    if k == 0 {
        return Vec::new();
    }
    sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    sims.truncate(k);
    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
    sims
}

/// Similarity-weighted mean label of the first `k` neighbours (weights floored at a small
/// positive value so opposite vectors still count a little and ties break by closeness).
fn weighted_mean(neighbours: &[(f32, f32)], k: usize) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for &(s, y) in neighbours.iter().take(k) {
        let w = f64::from(s.max(1e-3));
        num += w * f64::from(y);
        den += w;
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

impl Logreg {
    fn features(&self, embedding: &[f32], cheap: &[f32; 6]) -> Vec<f32> {
        let mut x: Vec<f32> = embedding.iter().copied().take(self.dims).collect();
        x.resize(self.dims, 0.0);
        if self.cheap {
            x.extend(cheap);
        }
        x
    }

    fn score(&self, embedding: &[f32], text: &str) -> f64 {
        self.score_features(embedding, &cheap_features(text))
    }

    fn score_features(&self, embedding: &[f32], cheap: &[f32; 6]) -> f64 {
        let x = self.features(embedding, cheap);
        let z: f32 = x
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| (x - m) * s * w)
            .sum::<f32>()
            + self.bias;
        f64::from(sigmoid(z))
    }

    /// Fit on raw feature rows (`n × d`) and soft labels.
    fn fit(rows: &[Vec<f32>], labels: &[f32], l2: f32, cheap: bool, dims: usize) -> Logreg {
        let n = rows.len().max(1);
        let d = rows.first().map_or(0, Vec::len);
        let mut mean = vec![0f32; d];
        for r in rows {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += x / n as f32;
            }
        }
        let mut var = vec![0f32; d];
        for r in rows {
            for ((v, x), m) in var.iter_mut().zip(r).zip(&mean) {
                *v += (x - m) * (x - m) / n as f32;
            }
        }
        let scale: Vec<f32> = var.iter().map(|v| 1.0 / v.sqrt().max(1e-6)).collect();
        let x: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((x, m), s)| (x - m) * s)
                    .collect()
            })
            .collect();
        // Full-batch Adam on the mean cross-entropy plus l2/2·|w|².
        let (lr, b1, b2, eps) = (0.05f32, 0.9f32, 0.999f32, 1e-8f32);
        let mut w = vec![0f32; d + 1]; // the last entry is the bias
        let (mut m1, mut m2) = (vec![0f32; d + 1], vec![0f32; d + 1]);
        for t in 1..=200 {
            let grad = x
                .par_iter()
                .zip(labels)
                .fold(
                    || vec![0f32; d + 1],
                    |mut g, (r, y)| {
                        let err = sigmoid(dot(r, &w[..d]) + w[d]) - y;
                        for (gi, xi) in g.iter_mut().zip(r) {
                            *gi += err * xi;
                        }
                        g[d] += err;
                        g
                    },
                )
                .reduce(
                    || vec![0f32; d + 1],
                    |mut a, b| {
                        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                        a
                    },
                );
            for i in 0..=d {
                let reg = if i < d { l2 * w[i] } else { 0.0 };
                let g = grad[i] / n as f32 + reg;
                m1[i] = b1 * m1[i] + (1.0 - b1) * g;
                m2[i] = b2 * m2[i] + (1.0 - b2) * g * g;
                let mh = m1[i] / (1.0 - b1.powi(t));
                let vh = m2[i] / (1.0 - b2.powi(t));
                w[i] -= lr * mh / (vh.sqrt() + eps);
            }
        }
        let bias = w[d];
        w.truncate(d);
        Logreg {
            l2,
            cheap,
            dims,
            mean,
            scale,
            weights: w,
            bias,
        }
    }
}

impl Scorer {
    fn name(&self) -> String {
        match self {
            Scorer::Knn(k) => format!("knn(k={})", k.k),
            Scorer::Logreg(l) => format!(
                "logreg(l2={}{})",
                l.l2,
                if l.cheap { ", +cheap" } else { "" }
            ),
            Scorer::Gain(g) => format!(
                "gain(l2={}{})",
                g.strong.l2,
                if g.strong.cheap { ", +cheap" } else { "" }
            ),
        }
    }
}

impl LearnedRouter {
    /// The score: estimated P(the weak model is not good enough). `embedding` is the
    /// conversation's [`EMBEDDER`] vector ([`LearnedRouter::dims`] entries; missing ones count
    /// as 0), `text` the conversation ([`crate::data::conversation_text`]).
    pub fn score(&self, embedding: &[f32], text: &str) -> f64 {
        match &self.scorer {
            Scorer::Knn(k) => k.score(embedding),
            Scorer::Logreg(l) => l.score(embedding, text),
            Scorer::Gain(g) => g.score_features(embedding, &cheap_features(text)),
        }
    }

    /// The score of an example: from its [`Example::features`] when it carries them (rows of
    /// the request log), else from `embedding` and its text.
    pub fn score_example(&self, example: &Example, embedding: &[f32]) -> f64 {
        match (&self.scorer, &example.features) {
            (Scorer::Logreg(l), Some(f)) => l.score_features(embedding, &f.cheap),
            (Scorer::Gain(g), Some(f)) => g.score_features(embedding, &f.cheap),
            _ => self.score(embedding, &example.text),
        }
    }

    /// Scores at or above it go to the strong model.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The same router with another threshold (a config override).
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Whether a score sends the request to the strong model.
    pub fn prefers_strong(&self, score: f64) -> bool {
        score >= self.threshold
    }

    /// The learner and its parameters, e.g. `knn(k=25)`.
    pub fn name(&self) -> String {
        self.scorer.name()
    }

    /// An explanation of a decision, e.g. `learned knn(k=25): score 0.71 ≥ threshold 0.63`.
    pub fn describe(&self, score: f64) -> String {
        let op = if self.prefers_strong(score) {
            "≥"
        } else {
            "<"
        };
        format!(
            "learned {}: score {score:.2} {op} threshold {:.2}",
            self.name(),
            self.threshold
        )
    }

    /// Length of the embeddings the router expects.
    pub fn dims(&self) -> usize {
        match &self.scorer {
            Scorer::Knn(k) => k.dims,
            Scorer::Logreg(l) => l.dims,
            Scorer::Gain(g) => g.strong.dims,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Write the model file (JSON).
    pub fn save(&self, path: &Path) -> Result<(), LearnError> {
        let learner = match &self.scorer {
            Scorer::Knn(k) => {
                let bytes: Vec<u8> = k
                    .vectors
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect();
                LearnerFile::Knn {
                    k: k.k,
                    dims: k.dims,
                    labels: k.labels.clone(),
                    vectors_f16: base64::engine::general_purpose::STANDARD.encode(bytes),
                }
            }
            Scorer::Logreg(l) => LearnerFile::Logreg(l.clone()),
            Scorer::Gain(g) => LearnerFile::Gain(g.clone()),
        };
        let file = ModelFile {
            format: FORMAT,
            threshold: self.threshold,
            learner,
            metadata: self.meta.clone(),
        };
        let io = |source| LearnError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec(&file).map_err(|e| io(e.into()))?;
        std::fs::write(path, json).map_err(io)
    }

    /// Read a model file written by [`LearnedRouter::save`].
    pub fn load(path: &Path) -> Result<LearnedRouter, LearnError> {
        let bytes = std::fs::read(path).map_err(|source| LearnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| LearnError::Format {
            path: path.to_path_buf(),
            message,
        };
        let file: ModelFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&file.format) {
            return Err(bad(format!(
                "format {} (this switchyard reads {OLDEST_FORMAT} to {FORMAT}); retrain it with \
                 `switchyard train`",
                file.format
            )));
        }
        if !file.threshold.is_finite() {
            return Err(bad("the threshold is not a number".into()));
        }
        let scorer = match file.learner {
            LearnerFile::Knn {
                k,
                dims,
                labels,
                vectors_f16,
            } => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(vectors_f16)
                    .map_err(|e| bad(format!("kNN vectors: {e}")))?;
                if dims == 0 || k == 0 || raw.len() != labels.len() * dims * 2 {
                    return Err(bad(format!(
                        "kNN holds {} bytes of vectors for {} labels of {dims} dimensions (k={k})",
                        raw.len(),
                        labels.len()
                    )));
                }
                let vectors = raw
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect();
                Scorer::Knn(Knn {
                    k,
                    dims,
                    vectors,
                    labels,
                })
            }
            LearnerFile::Logreg(l) => {
                check_logreg(&l).map_err(bad)?;
                Scorer::Logreg(l)
            }
            LearnerFile::Gain(g) => {
                check_logreg(&g.strong).map_err(bad)?;
                check_logreg(&g.weak).map_err(bad)?;
                if g.strong.dims != g.weak.dims || g.strong.cheap != g.weak.cheap {
                    return Err(bad(
                        "the gain learner's two logistic regressions differ in features".into(),
                    ));
                }
                Scorer::Gain(g)
            }
        };
        Ok(LearnedRouter {
            scorer,
            threshold: file.threshold,
            meta: file.metadata,
        })
    }
}

/// Whether a stored logistic regression has as many parameters as its features.
fn check_logreg(l: &Logreg) -> Result<(), String> {
    let d = l.dims + if l.cheap { CHEAP_FEATURES.len() } else { 0 };
    if [l.mean.len(), l.scale.len(), l.weights.len()] != [d; 3] {
        return Err(format!(
            "logistic regression parameters do not have {d} entries"
        ));
    }
    Ok(())
}

/// How [`train`] works.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub learner: LearnerKind,
    pub target: Target,
    /// Share of traffic the calibrated threshold sends to the strong model.
    pub target_large_share: f64,
    /// Cross-validation folds (over groups when there are at least two groups).
    pub folds: usize,
    /// How many times the cross-validation is run, each time with the groups shuffled into
    /// folds differently (seeds `seed`, `seed + 1`, …): which subjects share a fold moves a
    /// candidate's APGR by about 0.02 on MMLU, as much as the candidates differ.
    pub repeats: usize,
    pub seed: u64,
    /// Threshold bins of the validation APGR ([`eval::DEFAULT_POINTS`]).
    pub points: usize,
    /// Recorded in the metadata.
    pub training_files: Vec<String>,
    pub holdout_groups: Vec<String>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            learner: LearnerKind::Knn,
            target: Target::StrongBetter,
            target_large_share: 0.2,
            folds: 5,
            repeats: 3,
            seed: 0,
            points: eval::DEFAULT_POINTS,
            training_files: Vec::new(),
            holdout_groups: Vec::new(),
        }
    }
}

/// The kNN `k` values and logistic-regression L2 strengths tried (the latter for both the
/// logistic regression and the gain learner, with and without the cheap features).
pub const KNN_KS: [usize; 7] = [5, 10, 20, 40, 80, 160, 320];
pub const LOGREG_L2: [f32; 4] = [1e-3, 1e-2, 1e-1, 1.0];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Config {
    Knn { k: usize },
    Logreg { l2: f32, cheap: bool },
    Gain { l2: f32, cheap: bool },
}

impl Config {
    fn name(&self) -> String {
        let plus = |cheap: bool| if cheap { ", +cheap" } else { "" };
        match *self {
            Config::Knn { k } => format!("knn(k={k})"),
            Config::Logreg { l2, cheap } => format!("logreg(l2={l2}{})", plus(cheap)),
            Config::Gain { l2, cheap } => format!("gain(l2={l2}{})", plus(cheap)),
        }
    }
}

/// The quality labels of the gain learner's two regressions (qualities on a 0…1 scale).
fn quality_labels(examples: &[Example]) -> (Vec<f32>, Vec<f32>) {
    let q = |x: f64| x.clamp(0.0, 1.0) as f32;
    (
        examples.iter().map(|e| q(e.strong)).collect(),
        examples.iter().map(|e| q(e.weak)).collect(),
    )
}

/// What the learners are fitted to, row for row: the target's label, and each model's quality
/// (the gain learner's two labels).
struct Labels<'a> {
    target: &'a [f32],
    strong: &'a [f32],
    weak: &'a [f32],
}

fn fit(
    config: Config,
    rows: &[&[f32]],
    cheap_rows: &[[f32; 6]],
    labels: &Labels,
    dims: usize,
) -> Scorer {
    let logreg = |y: &[f32], l2: f32, cheap: bool| {
        let tmp = Logreg {
            l2,
            cheap,
            dims,
            mean: Vec::new(),
            scale: Vec::new(),
            weights: Vec::new(),
            bias: 0.0,
        };
        let feats: Vec<Vec<f32>> = rows
            .iter()
            .zip(cheap_rows)
            .map(|(r, c)| tmp.features(r, c))
            .collect();
        Logreg::fit(&feats, y, l2, cheap, dims)
    };
    match config {
        Config::Knn { k } => Scorer::Knn(Knn {
            k,
            dims,
            vectors: rows.iter().flat_map(|r| r.iter().copied()).collect(),
            labels: labels.target.to_vec(),
        }),
        Config::Logreg { l2, cheap } => Scorer::Logreg(logreg(labels.target, l2, cheap)),
        Config::Gain { l2, cheap } => Scorer::Gain(Gain {
            strong: logreg(labels.strong, l2, cheap),
            weak: logreg(labels.weak, l2, cheap),
        }),
    }
}

/// Assign each example to a fold: whole groups when there are at least two, else examples.
fn folds(examples: &[Example], folds: usize, seed: u64) -> (Vec<usize>, usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let groups = crate::data::groups(examples);
    if groups.len() >= 2 {
        let mut order = groups;
        order.shuffle(&mut rng);
        let f = folds.clamp(2, order.len());
        let of = |g: &str| order.iter().position(|o| o == g).unwrap_or(0) % f;
        (examples.iter().map(|e| of(&e.group)).collect(), f)
    } else {
        let f = folds.clamp(2, examples.len().max(2));
        let mut idx: Vec<usize> = (0..examples.len()).map(|i| i % f).collect();
        idx.shuffle(&mut rng);
        (idx, f)
    }
}

/// Train, choose the learner configuration by grouped cross-validation (the mean APGR of the
/// validation folds, each scored by a model fitted on the other folds: what a held-out
/// evaluation measures; repeated [`TrainOptions::repeats`] times over different shuffles),
/// refit it on all the data and calibrate the threshold on its out-of-fold scores.
/// `embeddings[i]` is the [`EMBEDDER`] vector of `examples[i].text` (or the one its
/// [`Example::features`] carry); the cheap features come from those features too when given.
pub fn train(
    examples: &[Example],
    embeddings: &[Vec<f32>],
    opts: &TrainOptions,
) -> Result<LearnedRouter, LearnError> {
    if examples.len() != embeddings.len() {
        return Err(LearnError::Train(format!(
            "{} examples but {} embeddings",
            examples.len(),
            embeddings.len()
        )));
    }
    if examples.len() < 10 {
        return Err(LearnError::Train(format!(
            "{} examples; at least 10 are needed",
            examples.len()
        )));
    }
    if !(0.0..=1.0).contains(&opts.target_large_share) {
        return Err(LearnError::Train(format!(
            "--target-large-share {} is not between 0 and 1",
            opts.target_large_share
        )));
    }
    let dims = embeddings[0].len();
    if dims == 0 || embeddings.iter().any(|e| e.len() != dims) {
        return Err(LearnError::Train(
            "embeddings are empty or of different lengths".into(),
        ));
    }
    let labels: Vec<f32> = examples.iter().map(|e| opts.target.label(e)).collect();
    let cheap: Vec<[f32; 6]> = examples
        .iter()
        .map(|e| match &e.features {
            Some(f) => f.cheap,
            None => cheap_features(&e.text),
        })
        .collect();
    let outcomes: Vec<Outcome> = examples.iter().map(Example::outcome).collect();
    let (strong, weak) = quality_labels(examples);
    let all_labels = Labels {
        target: &labels,
        strong: &strong,
        weak: &weak,
    };

    let mut configs = Vec::new();
    if matches!(opts.learner, LearnerKind::Knn | LearnerKind::Auto) {
        configs.extend(KNN_KS.iter().map(|&k| Config::Knn { k }));
    }
    if matches!(opts.learner, LearnerKind::Logreg | LearnerKind::Auto) {
        for cheap in [false, true] {
            configs.extend(LOGREG_L2.iter().map(|&l2| Config::Logreg { l2, cheap }));
        }
    }
    if matches!(opts.learner, LearnerKind::Gain | LearnerKind::Auto) {
        for cheap in [false, true] {
            configs.extend(LOGREG_L2.iter().map(|&l2| Config::Gain { l2, cheap }));
        }
    }

    // Every configuration's APGR on each validation fold, as the held-out evaluation measures
    // it (one model's scores on groups it never saw), and every example's out-of-fold score
    // in each repeat (for the threshold).
    let repeats = opts.repeats.max(1);
    let mut fold_apgr = vec![Vec::new(); configs.len()];
    let mut oof = vec![vec![vec![0f64; examples.len()]; configs.len()]; repeats];
    let mut nfolds = 0;
    for (repeat, repeat_oof) in oof.iter_mut().enumerate() {
        let (fold_of, nf) = folds(examples, opts.folds, opts.seed.wrapping_add(repeat as u64));
        nfolds = nf;
        for f in 0..nf {
            let train_idx: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] != f).collect();
            let val_idx: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] == f).collect();
            if train_idx.is_empty() || val_idx.is_empty() {
                continue;
            }
            let rows: Vec<&[f32]> = train_idx
                .iter()
                .map(|&i| embeddings[i].as_slice())
                .collect();
            let tr_cheap: Vec<[f32; 6]> = train_idx.iter().map(|&i| cheap[i]).collect();
            let pick = |v: &[f32]| -> Vec<f32> { train_idx.iter().map(|&i| v[i]).collect() };
            let (tr_target, tr_strong, tr_weak) = (pick(&labels), pick(&strong), pick(&weak));
            let tr_labels = Labels {
                target: &tr_target,
                strong: &tr_strong,
                weak: &tr_weak,
            };
            let mut scores = vec![vec![0f64; val_idx.len()]; configs.len()];
            // kNN: one neighbour search at the largest k serves every k.
            let knn_cols: Vec<(usize, usize)> = configs
                .iter()
                .enumerate()
                .filter_map(|(c, cfg)| match cfg {
                    Config::Knn { k } => Some((c, *k)),
                    _ => None,
                })
                .collect();
            if let Some(kmax) = knn_cols.iter().map(|(_, k)| *k).max() {
                let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
                let found: Vec<Vec<(f32, f32)>> = val_idx
                    .par_iter()
                    .map(|&i| nearest(&flat, dims, &tr_target, &embeddings[i], kmax))
                    .collect();
                for (v, nb) in found.iter().enumerate() {
                    for &(c, k) in &knn_cols {
                        scores[c][v] = weighted_mean(nb, k);
                    }
                }
            }
            for (c, cfg) in configs.iter().enumerate() {
                if let Config::Knn { .. } = cfg {
                    continue;
                }
                let model = fit(*cfg, &rows, &tr_cheap, &tr_labels, dims);
                for (v, &i) in val_idx.iter().enumerate() {
                    scores[c][v] = match &model {
                        Scorer::Logreg(l) => l.score_features(&embeddings[i], &cheap[i]),
                        Scorer::Gain(g) => g.score_features(&embeddings[i], &cheap[i]),
                        Scorer::Knn(k) => k.score(&embeddings[i]),
                    };
                }
            }
            let val_outcomes: Vec<Outcome> = val_idx.iter().map(|&i| outcomes[i]).collect();
            for (c, sc) in scores.iter().enumerate() {
                // A fold where the strong model does no better has no gap to recover: it
                // says nothing about any candidate and is left out.
                if let Ok(e) = eval::evaluate(sc, &val_outcomes, opts.points) {
                    fold_apgr[c].push(e.apgr);
                }
                for (&i, s) in val_idx.iter().zip(sc) {
                    repeat_oof[c][i] = *s;
                }
            }
        }
    }

    let mut validation = Vec::new();
    for (c, cfg) in configs.iter().enumerate() {
        let cv_apgr = if fold_apgr[c].is_empty() {
            // No fold has a gap on its own: fall back to all out-of-fold scores at once
            // (which fails, clearly, when the data as a whole has no gap either).
            eval::evaluate(&oof[0][c], &outcomes, opts.points)?.apgr
        } else {
            fold_apgr[c].iter().sum::<f64>() / fold_apgr[c].len() as f64
        };
        validation.push((
            c,
            Candidate {
                name: cfg.name(),
                cv_apgr,
            },
        ));
    }
    // The best; on a tie the first (the smaller k, the weaker L2, the fewer features).
    let (best, _) = validation
        .iter()
        .rev()
        .max_by(|a, b| a.1.cv_apgr.total_cmp(&b.1.cv_apgr))
        .ok_or_else(|| LearnError::Train("no learner configuration to try".into()))?;
    let best = *best;

    let all_rows: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
    let scorer = fit(configs[best], &all_rows, &cheap, &all_labels, dims);
    // The score quantile of each repeat's out-of-fold scores, averaged (averaging the scores
    // instead would narrow their spread, and with it the quantile).
    let threshold = oof
        .iter()
        .map(|scores| {
            let mut sorted = scores[best].clone();
            sorted.sort_by(f64::total_cmp);
            eval::quantile(&sorted, 1.0 - opts.target_large_share)
        })
        .sum::<f64>()
        / repeats as f64;

    Ok(LearnedRouter {
        scorer,
        threshold,
        meta: Metadata {
            embedder: EMBEDDER.into(),
            target: opts.target,
            target_large_share: opts.target_large_share,
            training_files: opts.training_files.clone(),
            training_groups: crate::data::groups(examples),
            holdout_groups: opts.holdout_groups.clone(),
            examples: examples.len(),
            folds: nfolds,
            validation: validation.into_iter().map(|(_, c)| c).collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy world in 4 dimensions: prompts near axis 0 are "hard" (the weak model fails, the
    /// strong one succeeds), prompts near axis 1 are easy. Four groups.
    fn toy(n: usize) -> (Vec<Example>, Vec<Vec<f32>>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut ex = Vec::new();
        let mut emb = Vec::new();
        for i in 0..n {
            let hard = i % 3 == 0;
            let noise: Vec<f32> = (0..4)
                .map(|_| rand::Rng::random_range(&mut rng, -0.3..0.3))
                .collect();
            let mut v = [0f32; 4];
            v[if hard { 0 } else { 1 }] = 1.0;
            v.iter_mut().zip(&noise).for_each(|(a, b)| *a += b);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            emb.push(v.iter().map(|x| x / norm).collect());
            ex.push(Example {
                text: if hard {
                    format!("Compute {i} * 17 = ?")
                } else {
                    "Name the capital.".into()
                },
                weak: if hard { 0.0 } else { 1.0 },
                strong: 1.0,
                group: format!("g{}", i % 4),
                features: None,
            });
        }
        (ex, emb)
    }

    #[test]
    fn knn_learns_the_toy_world_and_calibrates_the_share() {
        let (ex, emb) = toy(300);
        let router = train(&ex, &emb, &TrainOptions::default()).unwrap();
        assert!(router.name().starts_with("knn(k="), "{}", router.name());
        let hard = router.score(&[1.0, 0.0, 0.0, 0.0], "");
        let easy = router.score(&[0.0, 1.0, 0.0, 0.0], "");
        assert!(hard > 0.9 && easy < 0.1, "{hard} {easy}");
        // A third of the prompts are hard, the target share is 20 %: the threshold sits in
        // the hard cluster's scores, so hard prompts mostly go strong.
        let strong_share = emb
            .iter()
            .filter(|e| router.prefers_strong(router.score(e, "")))
            .count() as f64
            / emb.len() as f64;
        assert!((0.15..=0.4).contains(&strong_share), "{strong_share}");
        assert_eq!(router.metadata().folds, 4);
        assert_eq!(router.metadata().validation.len(), KNN_KS.len());
        let best = router
            .metadata()
            .validation
            .iter()
            .map(|c| c.cv_apgr)
            .fold(f64::MIN, f64::max);
        // A perfect ranking here reaches 1 − (1/3)/2 ≈ 0.833: quality climbs linearly to the
        // strong model's over the first third of strong calls, then stays.
        assert!(best > 0.8, "{:?}", router.metadata().validation);
    }

    #[test]
    fn logistic_regression_learns_the_toy_world_too() {
        let (ex, emb) = toy(200);
        let opts = TrainOptions {
            learner: LearnerKind::Logreg,
            ..TrainOptions::default()
        };
        let router = train(&ex, &emb, &opts).unwrap();
        assert!(router.name().starts_with("logreg("), "{}", router.name());
        let hard = router.score(&[1.0, 0.0, 0.0, 0.0], "Compute 3 * 17 = ?");
        let easy = router.score(&[0.0, 1.0, 0.0, 0.0], "Name the capital.");
        assert!(hard > 0.8 && easy < 0.2, "{hard} {easy}");
    }

    #[test]
    fn auto_tries_every_candidate() {
        let (ex, emb) = toy(120);
        let opts = TrainOptions {
            learner: LearnerKind::Auto,
            ..TrainOptions::default()
        };
        let router = train(&ex, &emb, &opts).unwrap();
        assert_eq!(
            router.metadata().validation.len(),
            KNN_KS.len() + 4 * LOGREG_L2.len()
        );
        let names: Vec<&str> = router
            .metadata()
            .validation
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(names.contains(&"gain(l2=0.1, +cheap)"), "{names:?}");
    }

    #[test]
    fn the_model_file_round_trips_and_explains_itself() {
        let (ex, emb) = toy(100);
        let dir = tempfile::tempdir().unwrap();
        for learner in [LearnerKind::Knn, LearnerKind::Logreg, LearnerKind::Gain] {
            let opts = TrainOptions {
                learner,
                ..TrainOptions::default()
            };
            let router = train(&ex, &emb, &opts).unwrap();
            let path = dir.path().join("router.json");
            router.save(&path).unwrap();
            let back = LearnedRouter::load(&path).unwrap();
            assert_eq!(back.name(), router.name());
            assert!((back.threshold() - router.threshold()).abs() < 1e-12);
            assert_eq!(back.dims(), 4);
            // f16 storage moves kNN scores a little, never much.
            for e in &emb {
                assert!((back.score(e, "x") - router.score(e, "x")).abs() < 1e-2);
            }
            let t = back.threshold();
            let text = back.describe(t + 0.01);
            assert!(
                text.starts_with("learned ") && text.contains(" ≥ threshold"),
                "{text}"
            );
            assert!(back.describe(t - 0.01).contains(" < threshold"));
            let over = back.with_threshold(0.5);
            assert_eq!(over.threshold(), 0.5);
        }
    }

    /// Three clusters: near axis 0 only the strong model is right (gain +1), near axis 1 both
    /// are (gain 0), near axis 2 only the weak one is (gain −1); in proportions 2 : 2 : 1, so
    /// the strong model is the better one overall. Four groups.
    fn three_clusters(n: usize) -> (Vec<Example>, Vec<Vec<f32>>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (mut ex, mut emb) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = [0, 0, 1, 1, 2][i % 5];
            let mut v: Vec<f32> = (0..4)
                .map(|_| rand::Rng::random_range(&mut rng, -0.3..0.3))
                .collect();
            v[c] += 1.0;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            emb.push(v.iter().map(|x| x / norm).collect());
            let (weak, strong) = [(0.0, 1.0), (1.0, 1.0), (1.0, 0.0)][c];
            ex.push(Example {
                text: format!("question {i}"),
                weak,
                strong,
                group: format!("g{}", i % 4),
                features: None,
            });
        }
        (ex, emb)
    }

    #[test]
    fn the_gain_learner_ranks_by_expected_quality_gain() {
        let (ex, emb) = three_clusters(300);
        let opts = TrainOptions {
            learner: LearnerKind::Gain,
            ..TrainOptions::default()
        };
        let router = train(&ex, &emb, &opts).unwrap();
        assert!(router.name().starts_with("gain(l2="), "{}", router.name());
        let at = |axis: usize| {
            let mut v = vec![0f32; 4];
            v[axis] = 1.0;
            router.score(&v, "question")
        };
        let (only_strong, both, only_weak) = (at(0), at(1), at(2));
        // The strong model's gain, (1 + gain) / 2: near 1, ½ and 0. A "strong better" label
        // could not tell the last two apart (0 for both).
        assert!(only_strong > 0.8, "{only_strong}");
        assert!((0.3..0.7).contains(&both), "{both}");
        assert!(only_weak < 0.2, "{only_weak}");
        let best = router.metadata().validation[0].cv_apgr;
        assert!(best > 0.9, "{:?}", router.metadata().validation);
    }

    #[test]
    fn version_1_model_files_still_load_and_newer_ones_are_refused() {
        let (ex, emb) = toy(100);
        let opts = TrainOptions {
            learner: LearnerKind::Logreg,
            ..TrainOptions::default()
        };
        let router = train(&ex, &emb, &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.json");
        router.save(&path).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["format"], FORMAT);
        json["format"] = 1.into();
        std::fs::write(&path, json.to_string()).unwrap();
        assert_eq!(LearnedRouter::load(&path).unwrap().name(), router.name());
        json["format"] = (FORMAT + 1).into();
        std::fs::write(&path, json.to_string()).unwrap();
        let err = LearnedRouter::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("format {}", FORMAT + 1)) && err.contains("retrain"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_model_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, b"{\"format\": 1}").unwrap();
        let err = LearnedRouter::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a switchyard router model"), "{err}");
        let missing = LearnedRouter::load(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, LearnError::Io { .. }));
    }

    #[test]
    fn bad_training_input_is_refused() {
        let (ex, emb) = toy(30);
        assert!(train(&ex[..5], &emb[..5], &TrainOptions::default()).is_err());
        assert!(train(&ex, &emb[..29], &TrainOptions::default()).is_err());
        let opts = TrainOptions {
            target_large_share: 1.5,
            ..TrainOptions::default()
        };
        assert!(train(&ex, &emb, &opts).is_err());
    }

    #[test]
    fn cheap_features_see_length_digits_math_and_code() {
        let plain = cheap_features("What is the capital of France?");
        let math = cheap_features("Solve 3x^2 + 4 = 19 for x.");
        let code = cheap_features("```\nfn main() { return; }\n```");
        assert!(math[2] > plain[2] && math[3] > plain[3]);
        assert!(code[4] > plain[4] && code[1] > plain[1]);
        assert!(plain[5] > 0.0 && math[5] == 0.0);
    }

    #[test]
    fn targets_label_examples() {
        let e = |weak, strong| Example {
            text: String::new(),
            weak,
            strong,
            group: String::new(),
            features: None,
        };
        assert_eq!(Target::StrongBetter.label(&e(0.0, 1.0)), 1.0);
        assert_eq!(Target::StrongBetter.label(&e(0.0, 0.0)), 0.0);
        assert_eq!(Target::WeakFails.label(&e(0.0, 0.0)), 1.0);
        assert_eq!(Target::WeakFails.label(&e(0.25, 1.0)), 0.75);
    }
}
