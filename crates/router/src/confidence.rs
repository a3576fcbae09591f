//! The cascade's confidence model: how sure the small model is of the answer it just gave.
//!
//! The small model answers first; [`AnswerSignals::from_logprobs`] summarises its token
//! logprobs, and a [`Calibration`] (a logistic model fitted on labelled questions by
//! `switchyard calibrate`) turns those signals into P(the answer is good). The cascade keeps
//! the answer when that probability reaches the calibration's threshold and escalates otherwise.
//!
//! Everything here is pure: no model calls, no I/O except [`Calibration::load`] and
//! [`Calibration::save`]. Fitting and the held-out metrics ([`auc`], [`brier`],
//! [`reliability`], [`threshold_for_escalation`]) live here too so that they are testable and
//! reusable over logged cascade outcomes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchyard_api::TokenLogprob;

/// Logprobs below this are clamped to it, so a `-inf` from a sampler never poisons a mean.
pub const LOGPROB_FLOOR: f64 = -100.0;

/// What one answer's token logprobs say about the model's certainty.
///
/// Works on a whole answer or on a prefix of one (the first N tokens of a stream); a calibration
/// fitted on whole answers does not transfer to prefixes (see [`Calibration::prefix_tokens`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AnswerSignals {
    /// Mean of the sampled tokens' logprobs (the per-token log-likelihood).
    pub mean_logprob: f64,
    /// The least likely sampled token's logprob.
    pub min_logprob: f64,
    /// The first sampled token's logprob (for a short answer, often the answer itself).
    pub first_logprob: f64,
    /// Mean over tokens of the entropy (nats) of the top-k alternatives' distribution,
    /// renormalised to sum to 1 over those k alternatives: 0 when one alternative holds all the
    /// mass, ln k when all k are equally likely. A token without alternatives counts as 0.
    pub mean_entropy: f64,
    /// Number of tokens summarised.
    pub tokens: usize,
    /// The answer was cut by the token limit (or the caller decides on a prefix).
    pub truncated: bool,
}

impl AnswerSignals {
    /// Summarises the logprobs of an answer (or of its first tokens). Every entry counts,
    /// including an end-of-generation token. An empty slice gives all-zero signals and
    /// `tokens == 0`.
    pub fn from_logprobs(tokens: &[TokenLogprob], truncated: bool) -> AnswerSignals {
        let Some(first) = tokens.first() else {
            return AnswerSignals {
                truncated,
                ..AnswerSignals::default()
            };
        };
        let logprob = |t: &TokenLogprob| floor(f64::from(t.logprob));
        let n = tokens.len() as f64;
        AnswerSignals {
            mean_logprob: tokens.iter().map(logprob).sum::<f64>() / n,
            min_logprob: tokens.iter().map(logprob).fold(0.0, f64::min),
            first_logprob: logprob(first),
            mean_entropy: tokens.iter().map(top_k_entropy).sum::<f64>() / n,
            tokens: tokens.len(),
            truncated,
        }
    }

    /// The signals an answer is judged by, the one rule `switchyard calibrate` fits with and
    /// the cascade judges with: the whole answer's, or with `prefix_tokens = Some(k)` its first
    /// k tokens' alone. A prefix is never truncated: the cascade stops reading a stream at its
    /// k-th token, so it sees the token limit (`cut`) only when the answer ended before it, and
    /// then judges the whole (shorter) answer.
    pub fn judged(tokens: &[TokenLogprob], cut: bool, prefix_tokens: Option<usize>) -> Self {
        match prefix_tokens {
            Some(k) if tokens.len() >= k => AnswerSignals::from_logprobs(&tokens[..k], false),
            _ => AnswerSignals::from_logprobs(tokens, cut),
        }
    }
}

fn floor(logprob: f64) -> f64 {
    if logprob.is_nan() {
        LOGPROB_FLOOR
    } else {
        logprob.clamp(LOGPROB_FLOOR, 0.0)
    }
}

/// Entropy of the top-k alternatives after renormalising them to a distribution.
fn top_k_entropy(t: &TokenLogprob) -> f64 {
    let lps: Vec<f64> = t
        .top_logprobs
        .iter()
        .map(|a| floor(f64::from(a.logprob)))
        .collect();
    let max = lps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lps.len() < 2 {
        return 0.0;
    }
    let z: f64 = lps.iter().map(|lp| (lp - max).exp()).sum();
    lps.iter()
        .map(|lp| {
            let p = (lp - max).exp() / z;
            if p > 0.0 {
                -p * p.ln()
            } else {
                0.0
            }
        })
        .sum()
}

/// One input of the logistic model, computed from [`AnswerSignals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    MeanLogprob,
    MinLogprob,
    FirstLogprob,
    MeanEntropy,
    /// ln(1 + tokens).
    LogTokens,
    /// 1 when truncated, else 0.
    Truncated,
}

impl Feature {
    /// Every feature, in the order `switchyard calibrate` uses.
    pub const ALL: [Feature; 6] = [
        Feature::MeanLogprob,
        Feature::MinLogprob,
        Feature::FirstLogprob,
        Feature::MeanEntropy,
        Feature::LogTokens,
        Feature::Truncated,
    ];

    /// The feature's value for one answer.
    pub fn value(self, s: &AnswerSignals) -> f64 {
        match self {
            Feature::MeanLogprob => s.mean_logprob,
            Feature::MinLogprob => s.min_logprob,
            Feature::FirstLogprob => s.first_logprob,
            Feature::MeanEntropy => s.mean_entropy,
            Feature::LogTokens => (1.0 + s.tokens as f64).ln(),
            Feature::Truncated => f64::from(u8::from(s.truncated)),
        }
    }

    /// The sign the fit forces on the feature's weight, so that more certainty never lowers the
    /// probability: +1 for logprobs, -1 for entropy, 0 (free) for the rest.
    fn direction(self) -> f64 {
        match self {
            Feature::MeanLogprob | Feature::MinLogprob | Feature::FirstLogprob => 1.0,
            Feature::MeanEntropy => -1.0,
            Feature::LogTokens | Feature::Truncated => 0.0,
        }
    }

    /// The feature's name in calibration files.
    pub fn name(self) -> &'static str {
        match self {
            Feature::MeanLogprob => "mean_logprob",
            Feature::MinLogprob => "min_logprob",
            Feature::FirstLogprob => "first_logprob",
            Feature::MeanEntropy => "mean_entropy",
            Feature::LogTokens => "log_tokens",
            Feature::Truncated => "truncated",
        }
    }
}

/// Predicted against observed in one probability bin of the held-out split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin's lower edge (inclusive); the bin is `[lo, lo + width)`, the last one closed.
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// Mean predicted probability in the bin.
    pub predicted: f64,
    /// Share of good answers in the bin.
    pub observed: f64,
}

/// Where a calibration comes from and how well it did on data it was not fitted on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationMetadata {
    /// The model the calibration was fitted for (its GGUF file name).
    pub model: String,
    /// The labelled data and how it was used (file, prompt format, answer parsing).
    pub data: String,
    /// Questions answered (train plus held-out).
    pub n: usize,
    pub n_train: usize,
    pub n_test: usize,
    /// Share of good answers over all `n`: the small model's accuracy.
    pub accuracy: f64,
    /// Held-out ROC AUC of the raw mean logprob alone; `None` when the split has one class.
    pub auc_mean_logprob: Option<f64>,
    /// Held-out ROC AUC of the calibrated probability.
    pub auc: Option<f64>,
    /// Held-out Brier score of the calibrated probability (lower is better).
    pub brier: f64,
    /// Held-out Brier score of always predicting the training accuracy, for comparison.
    pub brier_base_rate: f64,
    /// The escalation share the threshold was chosen for.
    pub target_escalation: f64,
    /// Held-out share of answers below the threshold (escalated).
    pub escalation: f64,
    /// Held-out accuracy of the answers kept (at or above the threshold); `None` if none kept.
    pub accuracy_kept: Option<f64>,
    /// Held-out reliability diagram.
    pub reliability: Vec<ReliabilityBin>,
}

/// Errors of loading, saving and fitting calibrations.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot read or write the calibration {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the calibration {path} is not valid JSON for a calibration: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the calibration {path} is inconsistent: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot fit a calibration: {0}")]
    Fit(String),
}

/// A logistic model from [`AnswerSignals`] to P(the small model's answer is good), with the
/// threshold under which the cascade escalates.
///
/// `p = sigmoid(bias + Σ weights[i] · (features[i](signals) − means[i]) / scales[i])`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub features: Vec<Feature>,
    /// Per feature: the training mean subtracted before weighting.
    pub means: Vec<f64>,
    /// Per feature: the training standard deviation divided by (1 where it was 0).
    pub scales: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// Answers with a probability below this escalate.
    pub threshold: f64,
    /// Fitted on the signals of each answer's first this many tokens (`switchyard calibrate
    /// --prefix-tokens K`): the cascade judges a rung on the first K tokens of its stream and
    /// escalates without waiting for the rest. `None` (the default): fitted on whole answers,
    /// and the cascade holds a rung's whole answer before judging it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_tokens: Option<usize>,
    pub metadata: CalibrationMetadata,
}

const BUILTIN: &str = include_str!("../calibrations/smollm2-135m-instruct.json");
const BUILTIN_PREFIX4: &str = include_str!("../calibrations/smollm2-135m-instruct-prefix4.json");

/// The calibrations shipped in the crate, by the name a config selects them with
/// (`[router] calibration = "builtin:prefix4"`), with what each judges.
pub const BUILTINS: [(&str, &str); 2] = [
    ("builtin", "the whole answer"),
    ("builtin:prefix4", "the first 4 tokens"),
];

/// How [`Calibration::fit`] fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the weights (not the bias), per example.
    pub l2: f64,
    /// Gradient steps.
    pub steps: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            l2: 0.01,
            steps: 4000,
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Calibration {
    /// The calibration fitted for SmolLM2-135M-Instruct (the default small model), shipped in
    /// the crate so a fresh clone can cascade. Its metadata says how it was measured.
    pub fn builtin() -> Calibration {
        // The file is part of the crate; a test checks that it parses and validates.
        serde_json::from_str(BUILTIN).expect("the builtin calibration is valid JSON")
    }

    /// A shipped calibration by its name in [`BUILTINS`]; `None` for any other name.
    pub fn named_builtin(name: &str) -> Option<Calibration> {
        let text = match name {
            "builtin" => BUILTIN,
            "builtin:prefix4" => BUILTIN_PREFIX4,
            _ => return None,
        };
        // Both files are part of the crate; a test checks that they parse and validate.
        Some(serde_json::from_str(text).expect("a builtin calibration is valid JSON"))
    }

    /// P(the answer with these signals is good), in (0, 1).
    pub fn probability(&self, signals: &AnswerSignals) -> f64 {
        sigmoid(self.logit(signals))
    }

    fn logit(&self, signals: &AnswerSignals) -> f64 {
        self.features
            .iter()
            .zip(&self.means)
            .zip(&self.scales)
            .zip(&self.weights)
            .map(|(((f, m), s), w)| w * (f.value(signals) - m) / s)
            .sum::<f64>()
            + self.bias
    }

    /// P(the answer with these token logprobs is good), judged as the calibration was fitted
    /// ([`AnswerSignals::judged`] with its `prefix_tokens`); `cut`: the answer hit the token
    /// limit. `None` for an answer without logprobs.
    pub fn confidence(&self, tokens: &[TokenLogprob], cut: bool) -> Option<f64> {
        (!tokens.is_empty())
            .then(|| self.probability(&AnswerSignals::judged(tokens, cut, self.prefix_tokens)))
    }

    /// Whether the cascade keeps an answer of this probability.
    pub fn keeps(&self, probability: f64) -> bool {
        probability >= self.threshold
    }

    /// A short explanation for the route header and the log, e.g. `confidence 0.42 < 0.55`.
    pub fn describe(&self, probability: f64) -> String {
        let op = if self.keeps(probability) { ">=" } else { "<" };
        format!("confidence {probability:.2} {op} {:.2}", self.threshold)
    }

    /// The same calibration with another threshold (a config override).
    pub fn with_threshold(mut self, threshold: f64) -> Calibration {
        self.threshold = threshold;
        self
    }

    /// Reads and validates a calibration file.
    pub fn load(path: &Path) -> Result<Calibration, CalibrationError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let c: Calibration =
            serde_json::from_str(&text).map_err(|source| CalibrationError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        c.validate().map_err(|reason| CalibrationError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(c)
    }

    /// Writes the calibration as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let io = |source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        text.push('\n');
        std::fs::write(path, text).map_err(io)
    }

    /// Checks the vectors agree in length and every number is usable.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.features.len();
        if self.means.len() != n || self.scales.len() != n || self.weights.len() != n {
            return Err(format!(
                "{n} features but {} means, {} scales and {} weights",
                self.means.len(),
                self.scales.len(),
                self.weights.len()
            ));
        }
        let finite = self
            .means
            .iter()
            .chain(&self.weights)
            .all(|x| x.is_finite());
        if !finite || !self.bias.is_finite() {
            return Err("a mean, weight or the bias is not a finite number".into());
        }
        if !self.scales.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err("every scale must be a positive number".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not in [0, 1]", self.threshold));
        }
        if self.prefix_tokens == Some(0) {
            return Err("prefix_tokens must be at least 1 (or absent, for whole answers)".into());
        }
        Ok(())
    }

    /// Fits a logistic model on answers labelled good (`true`) or not, by full-batch gradient
    /// descent on standardised features with an L2 penalty. Weights are kept in the direction
    /// of certainty (never negative on a logprob, never positive on entropy), so more certainty
    /// never lowers the probability. The threshold is left at 0.5 and the metadata empty.
    pub fn fit(
        features: &[Feature],
        samples: &[AnswerSignals],
        good: &[bool],
        opts: FitOptions,
    ) -> Result<Calibration, CalibrationError> {
        if samples.is_empty() || samples.len() != good.len() {
            return Err(CalibrationError::Fit(format!(
                "need one label per answer and at least one answer, got {} answers and {} labels",
                samples.len(),
                good.len()
            )));
        }
        let n = samples.len() as f64;
        let raw: Vec<Vec<f64>> = samples
            .iter()
            .map(|s| features.iter().map(|f| f.value(s)).collect())
            .collect();
        let mut means = vec![0.0; features.len()];
        let mut scales = vec![0.0; features.len()];
        for (j, (m, s)) in means.iter_mut().zip(&mut scales).enumerate() {
            *m = raw.iter().map(|r| r[j]).sum::<f64>() / n;
            let var = raw.iter().map(|r| (r[j] - *m).powi(2)).sum::<f64>() / n;
            *s = if var > 1e-12 { var.sqrt() } else { 1.0 };
        }
        let x: Vec<Vec<f64>> = raw
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&means)
                    .zip(&scales)
                    .map(|((v, m), s)| (v - m) / s)
                    .collect()
            })
            .collect();
        let y: Vec<f64> = good.iter().map(|&g| f64::from(u8::from(g))).collect();
        let rate = (y.iter().sum::<f64>() / n).clamp(1e-3, 1.0 - 1e-3);
        let mut bias = (rate / (1.0 - rate)).ln();
        let mut weights = vec![0.0; features.len()];
        let lr = 0.5;
        for _ in 0..opts.steps {
            let mut gw = vec![0.0; features.len()];
            let mut gb = 0.0;
            for (xi, yi) in x.iter().zip(&y) {
                let z = bias + xi.iter().zip(&weights).map(|(a, w)| a * w).sum::<f64>();
                let err = sigmoid(z) - yi;
                gb += err;
                for (g, a) in gw.iter_mut().zip(xi) {
                    *g += err * a;
                }
            }
            bias -= lr * gb / n;
            for ((w, g), f) in weights.iter_mut().zip(&gw).zip(features) {
                *w -= lr * (g / n + opts.l2 * *w);
                let d = f.direction();
                if d != 0.0 && *w * d < 0.0 {
                    *w = 0.0;
                }
            }
        }
        let c = Calibration {
            features: features.to_vec(),
            means,
            scales,
            weights,
            bias,
            threshold: 0.5,
            prefix_tokens: None,
            metadata: CalibrationMetadata::default(),
        };
        c.validate().map_err(CalibrationError::Fit)?;
        Ok(c)
    }
}

/// ROC AUC: the probability that a random good answer scores above a random bad one (ties
/// count half). `None` when either class is missing.
pub fn auc(scores: &[f64], good: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len().min(good.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let pos = idx.iter().filter(|&&i| good[i]).count();
    let neg = idx.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // Sum of the good answers' ranks (1-based, ties averaged): Mann–Whitney U.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * idx[i..=j].iter().filter(|&&k| good[k]).count() as f64;
        i = j + 1;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Mean squared error of probabilities against outcomes; 0 for no data.
pub fn brier(probabilities: &[f64], good: &[bool]) -> f64 {
    let n = probabilities.len().min(good.len());
    if n == 0 {
        return 0.0;
    }
    probabilities
        .iter()
        .zip(good)
        .map(|(p, &g)| (p - f64::from(u8::from(g))).powi(2))
        .sum::<f64>()
        / n as f64
}

/// Predicted against observed in `bins` equal-width probability bins (empty bins left out).
pub fn reliability(probabilities: &[f64], good: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let width = 1.0 / bins as f64;
    let mut acc = vec![(0usize, 0.0, 0.0); bins];
    for (p, &g) in probabilities.iter().zip(good) {
        let b = ((p / width) as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += p;
        acc[b].2 += f64::from(u8::from(g));
    }
    acc.into_iter()
        .enumerate()
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|(b, (n, sp, sg))| ReliabilityBin {
            lo: b as f64 * width,
            hi: (b + 1) as f64 * width,
            n,
            predicted: sp / n as f64,
            observed: sg / n as f64,
        })
        .collect()
}

/// The threshold under which about `share` of these probabilities fall: the cascade escalates
/// that share of traffic like this. 0 for no data or `share <= 0`.
pub fn threshold_for_escalation(probabilities: &[f64], share: f64) -> f64 {
    let mut sorted: Vec<f64> = probabilities
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .collect();
    if sorted.is_empty() || share <= 0.0 {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let k = ((share.min(1.0) * sorted.len() as f64).round() as usize).min(sorted.len());
    if k == sorted.len() {
        return 1.0;
    }
    // Escalate the k lowest: the threshold sits just above the k-th lowest, at the (k+1)-th.
    sorted[k]
}

// Grading answers to labelled questions, for fitting and measuring calibrations: shared by
// `switchyard calibrate` and the cascade benchmark.

/// Where `choice` first occurs in `lower` (already lowercased) as a whole: not inside a longer
/// word or number.
pub fn first_mention(lower: &str, choice: &str) -> Option<usize> {
    let choice = choice.trim().to_lowercase();
    if choice.is_empty() {
        return None;
    }
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    lower.match_indices(&choice).map(|(at, _)| at).find(|&at| {
        boundary(lower[..at].chars().next_back())
            && boundary(lower[at + choice.len()..].chars().next())
    })
}

/// The choice a free-text answer gives: the one it mentions first, after the first "=" if any
/// (the model was asked for the answer only; a restated question is the exception). `None`
/// when it mentions none.
pub fn text_choice(answer: &str, choices: &[String; 4]) -> Option<usize> {
    // "7 * 3 = 21": a restated question is not the answer; what follows "=" is.
    let answer = answer.split_once('=').map_or(answer, |(_, rest)| rest);
    let lower = answer.to_lowercase();
    (0..choices.len())
        .filter_map(|i| first_mention(&lower, &choices[i]).map(|at| (at, i)))
        .min()
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::TopLogprob;

    fn token(logprob: f32, alternatives: &[f32]) -> TokenLogprob {
        TokenLogprob {
            token: "x".into(),
            logprob,
            bytes: None,
            top_logprobs: alternatives
                .iter()
                .map(|&lp| TopLogprob {
                    token: "y".into(),
                    logprob: lp,
                    bytes: None,
                })
                .collect(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn signals_are_the_mean_min_and_first_logprob_and_the_renormalised_top_k_entropy() {
        let half = 0.5f32.ln();
        let quarter = 0.25f32.ln();
        // Token 1: two alternatives of 0.5 each → entropy ln 2.
        // Token 2: alternatives 0.25, 0.25 (renormalised to 0.5, 0.5) → entropy ln 2.
        // Token 3: one alternative → entropy 0.
        let tokens = [
            token(half, &[half, half]),
            token(quarter, &[quarter, quarter]),
            token(-0.1, &[-0.1]),
        ];
        let s = AnswerSignals::from_logprobs(&tokens, false);
        let lp = |x: f32| f64::from(x);
        assert!(close(s.mean_logprob, (lp(half) + lp(quarter) - 0.1) / 3.0));
        assert!(close(s.min_logprob, lp(quarter)));
        assert!(close(s.first_logprob, lp(half)));
        assert!(close(s.mean_entropy, 2.0 * 2f64.ln() / 3.0));
        assert_eq!(s.tokens, 3);
        assert!(!s.truncated);
    }

    #[test]
    fn a_certain_token_has_no_entropy_and_uniform_alternatives_have_ln_k() {
        let certain = AnswerSignals::from_logprobs(&[token(0.0, &[0.0, -60.0, -70.0])], true);
        assert!(certain.mean_entropy < 1e-9);
        assert!(certain.truncated);
        let u = (1.0f32 / 5.0).ln();
        let uniform = AnswerSignals::from_logprobs(&[token(u, &[u; 5])], false);
        assert!(close(uniform.mean_entropy, 5f64.ln()));
    }

    #[test]
    fn a_prefix_is_summarised_on_its_own_tokens() {
        let tokens = [token(-0.1, &[]), token(-3.0, &[]), token(-0.2, &[])];
        let prefix = AnswerSignals::from_logprobs(&tokens[..1], true);
        assert_eq!(prefix.tokens, 1);
        assert!(close(prefix.mean_logprob, f64::from(-0.1f32)));
        assert!(close(prefix.min_logprob, f64::from(-0.1f32)));
    }

    #[test]
    fn no_tokens_and_infinite_logprobs_stay_finite() {
        let empty = AnswerSignals::from_logprobs(&[], false);
        assert_eq!(empty.tokens, 0);
        assert_eq!(empty.mean_logprob, 0.0);
        let s = AnswerSignals::from_logprobs(&[token(f32::NEG_INFINITY, &[0.0, f32::NAN])], false);
        assert_eq!(s.min_logprob, LOGPROB_FLOOR);
        assert!(s.mean_entropy.is_finite());
        assert!(Calibration::builtin().probability(&s).is_finite());
    }

    /// Known coefficients for every feature, so a test can compute the probability by hand.
    fn known_calibration(prefix_tokens: Option<usize>) -> Calibration {
        Calibration {
            features: Feature::ALL.to_vec(),
            means: vec![-0.8, -1.0, -0.2, 0.1, 1.0, 0.0],
            scales: vec![0.5, 2.0, 1.0, 0.25, 0.5, 1.0],
            weights: vec![1.2, 0.3, 0.5, -0.8, 0.1, -2.0],
            bias: 0.4,
            threshold: 0.5,
            prefix_tokens,
            metadata: CalibrationMetadata::default(),
        }
    }

    /// Two tokens: the first (p = e^-0.5) with two equally likely alternatives (entropy ln 2),
    /// the second (p = e^-1.5) with none (entropy 0).
    fn known_answer() -> [TokenLogprob; 2] {
        let half = 0.5f32.ln();
        [token(-0.5, &[half, half]), token(-1.5, &[])]
    }

    #[test]
    fn the_confidence_is_the_logistic_of_the_standardised_weighted_signals() {
        let c = known_calibration(None);
        // By hand: mean -1.0, min -1.5, first -0.5, entropy ln2/2, ln(1 + 2 tokens), not cut.
        let z = 0.4 + 1.2 * (-1.0 + 0.8) / 0.5 + 0.3 * (-1.5 + 1.0) / 2.0 + 0.5 * (-0.5 + 0.2)
            - 0.8 * (2f64.ln() / 2.0 - 0.1) / 0.25
            + 0.1 * (3f64.ln() - 1.0) / 0.5;
        let expected = 1.0 / (1.0 + (-z).exp());
        let p = c.confidence(&known_answer(), false).unwrap();
        assert!((p - expected).abs() < 1e-9, "{p} vs {expected}");
        assert!((p - 0.254_583_7).abs() < 1e-6, "{p}");
        // Cut by the token limit: the truncated weight (-2) lowers the logit by exactly 2.
        let cut = c.confidence(&known_answer(), true).unwrap();
        let expected_cut = 1.0 / (1.0 + (-(z - 2.0)).exp());
        assert!((cut - expected_cut).abs() < 1e-9, "{cut} vs {expected_cut}");
        assert_eq!(c.confidence(&[], false), None);
    }

    #[test]
    fn a_prefix_calibration_judges_the_first_k_tokens_and_a_shorter_answer_whole() {
        // On the first token alone: mean = min = first = -0.5, entropy ln 2, ln(1 + 1).
        let z = 0.4 + 1.2 * (-0.5 + 0.8) / 0.5 + 0.3 * (-0.5 + 1.0) / 2.0 + 0.5 * (-0.5 + 0.2)
            - 0.8 * (2f64.ln() - 0.1) / 0.25
            + 0.1 * (2f64.ln() - 1.0) / 0.5;
        let expected = 1.0 / (1.0 + (-z).exp());
        let one = known_calibration(Some(1));
        // Cut after the prefix: the cascade never saw the cut, so it is not truncated.
        let p = one.confidence(&known_answer(), true).unwrap();
        assert!((p - expected).abs() < 1e-9, "{p} vs {expected}");
        // An answer shorter than the prefix is judged whole, its cut included.
        let three = known_calibration(Some(3));
        let whole = known_calibration(None);
        assert_eq!(
            three.confidence(&known_answer(), true),
            whole.confidence(&known_answer(), true)
        );
    }

    #[test]
    fn the_judged_signals_are_the_first_k_tokens_untruncated_or_the_whole_answer() {
        let answer = [
            token(-0.5, &[]),
            token(-0.1, &[]),
            token(-4.0, &[]),
            token(-3.0, &[]),
        ];
        let whole = AnswerSignals::judged(&answer, true, None);
        assert_eq!((whole.tokens, whole.truncated), (4, true));
        assert_eq!(whole.min_logprob, -4.0);
        let prefix = AnswerSignals::judged(&answer, true, Some(2));
        assert_eq!((prefix.tokens, prefix.truncated), (2, false));
        assert_eq!(prefix.min_logprob, -0.5);
        let short = AnswerSignals::judged(&answer, true, Some(5));
        assert_eq!((short.tokens, short.truncated), (4, true));
        let exact = AnswerSignals::judged(&answer, true, Some(4));
        assert_eq!((exact.tokens, exact.truncated), (4, false));
        assert_eq!(AnswerSignals::judged(&answer, false, Some(8)).tokens, 4);
    }

    #[test]
    fn the_builtin_calibration_is_valid_and_says_what_it_was_fitted_on() {
        let c = Calibration::builtin();
        c.validate().unwrap();
        assert!(c.metadata.model.contains("SmolLM2-135M"));
        assert!(c.metadata.n >= 100);
        assert!((0.0..=1.0).contains(&c.threshold));
    }

    #[test]
    fn the_builtin_probability_rises_with_the_mean_logprob() {
        let c = Calibration::builtin();
        let at = |mean: f64| {
            c.probability(&AnswerSignals {
                mean_logprob: mean,
                min_logprob: -2.0,
                first_logprob: -1.0,
                mean_entropy: 0.8,
                tokens: 3,
                truncated: false,
            })
        };
        let ps: Vec<f64> = (0..=40).map(|i| at(-4.0 + f64::from(i) * 0.1)).collect();
        assert!(ps.windows(2).all(|w| w[1] >= w[0]), "{ps:?}");
        assert!(ps.iter().all(|p| *p > 0.0 && *p < 1.0));
    }

    #[test]
    fn describe_compares_the_probability_with_the_threshold() {
        let c = Calibration::builtin().with_threshold(0.55);
        assert_eq!(c.describe(0.42), "confidence 0.42 < 0.55");
        assert_eq!(c.describe(0.7), "confidence 0.70 >= 0.55");
        assert!(c.keeps(0.55) && !c.keeps(0.549));
    }

    #[test]
    fn a_saved_calibration_loads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let c = Calibration::builtin().with_threshold(0.25);
        c.save(&path).unwrap();
        assert_eq!(Calibration::load(&path).unwrap(), c);
    }

    #[test]
    fn a_prefix_calibration_round_trips_and_a_whole_answer_file_has_no_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut c = Calibration::builtin();
        assert_eq!(c.prefix_tokens, None);
        // Existing files, written before the field, load unchanged and write no such key.
        c.save(&path).unwrap();
        assert!(!std::fs::read_to_string(&path)
            .unwrap()
            .contains("prefix_tokens"));
        c.prefix_tokens = Some(4);
        c.save(&path).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"prefix_tokens\": 4"));
        assert_eq!(Calibration::load(&path).unwrap(), c);
    }

    #[test]
    fn a_prefix_of_zero_tokens_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut c = Calibration::builtin();
        c.prefix_tokens = Some(0);
        c.save(&path).unwrap();
        let e = Calibration::load(&path).unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("prefix_tokens"), "{e}");
        c.prefix_tokens = Some(1);
        c.validate().unwrap();
    }

    #[test]
    fn the_builtins_are_named_and_the_prefix_one_judges_four_tokens() {
        for (name, _) in BUILTINS {
            let c = Calibration::named_builtin(name).unwrap();
            c.validate().unwrap();
            assert!(c.metadata.model.contains("SmolLM2-135M"), "{name}");
        }
        assert_eq!(
            Calibration::named_builtin("builtin").unwrap(),
            Calibration::builtin()
        );
        let prefix = Calibration::named_builtin("builtin:prefix4").unwrap();
        assert_eq!(prefix.prefix_tokens, Some(4));
        assert!(prefix.metadata.data.contains("first 4 tokens"));
        assert!(Calibration::named_builtin("builtin:prefix5").is_none());
    }

    #[test]
    fn loading_rejects_broken_files_with_the_path_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut c = Calibration::builtin();
        c.weights.pop();
        c.save(&path).unwrap();
        let e = Calibration::load(&path).unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("weights"), "{e}");
        std::fs::write(&path, r#"{"features": ["vibes"]}"#).unwrap();
        assert!(matches!(
            Calibration::load(&path),
            Err(CalibrationError::Parse { .. })
        ));
        assert!(matches!(
            Calibration::load(&dir.path().join("missing.json")),
            Err(CalibrationError::Io { .. })
        ));
    }

    fn signals(mean: f64) -> AnswerSignals {
        AnswerSignals {
            mean_logprob: mean,
            min_logprob: mean * 2.0,
            first_logprob: mean,
            mean_entropy: -mean,
            tokens: 2,
            truncated: false,
        }
    }

    #[test]
    fn fitting_learns_that_likelier_answers_are_better_and_is_calibrated_in_the_mean() {
        // Good answers have mean logprob near -0.2, bad ones near -1.5, with overlap.
        let mut samples = Vec::new();
        let mut good = Vec::new();
        for i in 0..200 {
            let noise = f64::from(i % 10) / 10.0;
            let g = i % 3 != 0;
            samples.push(signals(if g { -0.2 - noise } else { -1.0 - noise }));
            good.push(g);
        }
        let c = Calibration::fit(&Feature::ALL, &samples, &good, FitOptions::default()).unwrap();
        let ps: Vec<f64> = samples.iter().map(|s| c.probability(s)).collect();
        assert!(auc(&ps, &good).unwrap() > 0.9);
        let mean_p = ps.iter().sum::<f64>() / ps.len() as f64;
        let rate = good.iter().filter(|g| **g).count() as f64 / good.len() as f64;
        assert!((mean_p - rate).abs() < 0.02, "{mean_p} vs {rate}");
        assert!(c.probability(&signals(-0.1)) > c.probability(&signals(-2.0)));
    }

    #[test]
    fn fitting_one_class_gives_a_finite_model() {
        let samples = [signals(-0.5), signals(-1.0)];
        let c = Calibration::fit(
            &Feature::ALL,
            &samples,
            &[false, false],
            FitOptions::default(),
        )
        .unwrap();
        assert!(c.probability(&samples[0]) < 0.01);
    }

    #[test]
    fn auc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(
            auc(&[0.2, 0.4, 0.4, 0.8], &[false, true, false, true]),
            Some(0.875)
        );
        assert_eq!(auc(&[0.5, 0.6], &[true, true]), None);
    }

    #[test]
    fn brier_reliability_and_the_escalation_threshold() {
        assert!(close(
            brier(&[1.0, 0.0, 0.5], &[true, false, true]),
            0.25 / 3.0
        ));
        let bins = reliability(&[0.1, 0.15, 0.9], &[false, true, true], 5);
        assert_eq!(bins.len(), 2);
        assert_eq!((bins[0].n, bins[0].observed), (2, 0.5));
        assert!(close(bins[0].predicted, 0.125));
        assert_eq!((bins[1].n, bins[1].observed), (1, 1.0));
        let ps: Vec<f64> = (0..10).map(|i| f64::from(i) / 10.0).collect();
        let t = threshold_for_escalation(&ps, 0.3);
        assert_eq!(ps.iter().filter(|p| **p < t).count(), 3);
        assert_eq!(threshold_for_escalation(&ps, 0.0), 0.0);
        assert_eq!(threshold_for_escalation(&ps, 1.0), 1.0);
    }
}
