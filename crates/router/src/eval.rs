//! Offline evaluation of a router over labelled data, as RouteLLM defines it.
//!
//! A router gives each prompt a score; prompts scoring at or above a threshold go to the strong
//! model. Following RouteLLM's `evaluate.py`, the thresholds are the edges of `points` equally
//! populated score bins (`pandas.qcut`: linear-interpolated quantiles at 0, 1/points, …, 1); each
//! threshold but the last selects `score >= t`, the last (the maximum) `score > t`, so the
//! curve runs from 100 % down to 0 % strong calls. At each threshold, quality is the mean over
//! prompts of the strong model's quality if routed strong, else the weak model's.
//!
//! * **APGR** (average performance gap recovered): the trapezoid area under quality against
//!   strong share, minus the weak-only area, over the strong-only minus weak-only area.
//!   Random routing scores 0.5.
//! * **CPT(x)** (call-performance threshold): the smallest share of strong calls at which the
//!   performance gap recovered, `(quality - weak) / (strong - weak)`, reaches `x`; linear
//!   between curve points (RouteLLM uses `np.interp`, the same on a monotone curve).
//!
//! Baselines in the same run: a random router (seeded, averaged over seeds), a prompt-length
//! router (longer goes strong) and the oracle (strong only where it does better than weak).

use rand::{Rng, SeedableRng};

/// RouteLLM's default number of threshold bins (`--num-results`).
pub const DEFAULT_POINTS: usize = 10;

/// One labelled outcome: the quality each model reached on a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub weak: f64,
    pub strong: f64,
}

/// One point of the quality against strong-share curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    pub threshold: f64,
    /// Share of prompts sent to the strong model, 0…1.
    pub strong_share: f64,
    /// Mean quality over all prompts when routed at this threshold.
    pub quality: f64,
}

/// A router's figures on one data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub apgr: f64,
    pub cpt50: f64,
    pub cpt80: f64,
    pub cpt95: f64,
    /// Sorted by strong share, ascending.
    pub curve: Vec<CurvePoint>,
}

/// Why a data set cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    #[error("no labelled examples to evaluate")]
    Empty,
    #[error("{scores} scores for {outcomes} outcomes")]
    LengthMismatch { scores: usize, outcomes: usize },
    #[error("the strong model ({strong:.4}) is not better than the weak one ({weak:.4}) on this data: there is no gap to recover")]
    NoGap { weak: f64, strong: f64 },
    #[error("a score is not a finite number")]
    NotFinite,
}

/// Mean quality of the weak-only and strong-only routers.
pub fn model_qualities(outcomes: &[Outcome]) -> (f64, f64) {
    let n = outcomes.len().max(1) as f64;
    (
        outcomes.iter().map(|o| o.weak).sum::<f64>() / n,
        outcomes.iter().map(|o| o.strong).sum::<f64>() / n,
    )
}

/// numpy's default (linear) quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len().saturating_sub(1)) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The curve at RouteLLM's quantile thresholds, sorted by strong share.
pub fn curve(
    scores: &[f64],
    outcomes: &[Outcome],
    points: usize,
) -> Result<Vec<CurvePoint>, EvalError> {
    if outcomes.is_empty() {
        return Err(EvalError::Empty);
    }
    if scores.len() != outcomes.len() {
        return Err(EvalError::LengthMismatch {
            scores: scores.len(),
            outcomes: outcomes.len(),
        });
    }
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(EvalError::NotFinite);
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let points = points.max(1);
    let n = outcomes.len() as f64;
    let mut curve: Vec<CurvePoint> = (0..=points)
        .map(|i| {
            let threshold = quantile(&sorted, i as f64 / points as f64);
            let last = i == points;
            let (mut strong_calls, mut total) = (0usize, 0.0);
            for (s, o) in scores.iter().zip(outcomes) {
                let strong = if last {
                    *s > threshold
                } else {
                    *s >= threshold
                };
                strong_calls += strong as usize;
                total += if strong { o.strong } else { o.weak };
            }
            CurvePoint {
                threshold,
                strong_share: strong_calls as f64 / n,
                quality: total / n,
            }
        })
        .collect();
    curve.sort_by(|a, b| a.strong_share.total_cmp(&b.strong_share));
    Ok(curve)
}

/// APGR and CPTs of a curve (sorted by share) between the weak-only and strong-only qualities.
pub fn metrics(curve: Vec<CurvePoint>, weak: f64, strong: f64) -> Result<Evaluation, EvalError> {
    if strong <= weak {
        return Err(EvalError::NoGap { weak, strong });
    }
    let trapz = |f: &dyn Fn(&CurvePoint) -> f64| {
        curve
            .windows(2)
            .map(|w| (w[1].strong_share - w[0].strong_share) * (f(&w[0]) + f(&w[1])) / 2.0)
            .sum::<f64>()
    };
    let area = trapz(&|p| p.quality);
    let weak_area = trapz(&|_| weak);
    let strong_area = trapz(&|_| strong);
    let apgr = if strong_area > weak_area {
        (area - weak_area) / (strong_area - weak_area)
    } else {
        0.0
    };
    let pgr = |p: &CurvePoint| (p.quality - weak) / (strong - weak);
    let cpt = |x: f64| -> f64 {
        match curve.iter().position(|p| pgr(p) >= x - 1e-12) {
            None => 1.0,
            Some(0) => curve[0].strong_share,
            Some(i) => {
                let (a, b) = (&curve[i - 1], &curve[i]);
                let (pa, pb) = (pgr(a), pgr(b));
                a.strong_share + (x - pa) / (pb - pa) * (b.strong_share - a.strong_share)
            }
        }
    };
    Ok(Evaluation {
        apgr,
        cpt50: cpt(0.5),
        cpt80: cpt(0.8),
        cpt95: cpt(0.95),
        curve,
    })
}

/// Evaluate a router's scores (higher = more in need of the strong model).
pub fn evaluate(
    scores: &[f64],
    outcomes: &[Outcome],
    points: usize,
) -> Result<Evaluation, EvalError> {
    let (weak, strong) = model_qualities(outcomes);
    metrics(curve(scores, outcomes, points)?, weak, strong)
}

/// Scores of the prompt-length router: longer prompts (in characters) go strong.
pub fn length_scores<S: AsRef<str>>(texts: &[S]) -> Vec<f64> {
    texts
        .iter()
        .map(|t| t.as_ref().chars().count() as f64)
        .collect()
}

/// Scores of the oracle: how much better the strong model did than the weak one.
pub fn oracle_scores(outcomes: &[Outcome]) -> Vec<f64> {
    outcomes.iter().map(|o| o.strong - o.weak).collect()
}

/// The random router, averaged over `seeds` seeded runs (metrics and curve pointwise).
pub fn random_baseline(
    outcomes: &[Outcome],
    points: usize,
    seeds: u64,
) -> Result<Evaluation, EvalError> {
    let seeds = seeds.max(1);
    let runs = (0..seeds)
        .map(|seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let scores: Vec<f64> = outcomes.iter().map(|_| rng.random::<f64>()).collect();
            evaluate(&scores, outcomes, points)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let k = runs.len() as f64;
    let mean = |f: &dyn Fn(&Evaluation) -> f64| runs.iter().map(f).sum::<f64>() / k;
    let curve = (0..runs[0].curve.len())
        .map(|i| CurvePoint {
            threshold: f64::NAN,
            strong_share: runs.iter().map(|r| r.curve[i].strong_share).sum::<f64>() / k,
            quality: runs.iter().map(|r| r.curve[i].quality).sum::<f64>() / k,
        })
        .collect();
    Ok(Evaluation {
        apgr: mean(&|e| e.apgr),
        cpt50: mean(&|e| e.cpt50),
        cpt80: mean(&|e| e.cpt80),
        cpt95: mean(&|e| e.cpt95),
        curve,
    })
}

/// A router and the three baselines, measured on the same data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub examples: usize,
    pub weak_quality: f64,
    pub strong_quality: f64,
    pub router: Evaluation,
    pub random: Evaluation,
    pub length: Evaluation,
    pub oracle: Evaluation,
}

/// Evaluate `scores` next to the random, length and oracle baselines.
pub fn report<S: AsRef<str>>(
    scores: &[f64],
    texts: &[S],
    outcomes: &[Outcome],
    points: usize,
) -> Result<Report, EvalError> {
    let (weak_quality, strong_quality) = model_qualities(outcomes);
    Ok(Report {
        examples: outcomes.len(),
        weak_quality,
        strong_quality,
        router: evaluate(scores, outcomes, points)?,
        random: random_baseline(outcomes, points, 20)?,
        length: evaluate(&length_scores(texts), outcomes, points)?,
        oracle: evaluate(&oracle_scores(outcomes), outcomes, points)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(weak: f64, strong: f64) -> Outcome {
        Outcome { weak, strong }
    }

    /// Four prompts: the weak model fails only the first two, the strong one fails only the
    /// last. Weak-only 0.5, strong-only 0.75.
    fn four() -> Vec<Outcome> {
        vec![o(0.0, 1.0), o(0.0, 1.0), o(1.0, 1.0), o(1.0, 0.0)]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert!(close(quantile(&s, 0.0), 1.0));
        assert!(close(quantile(&s, 0.5), 2.5));
        assert!(close(quantile(&s, 1.0 / 3.0), 2.0));
        assert!(close(quantile(&s, 1.0), 4.0));
    }

    #[test]
    fn the_curve_runs_from_all_strong_to_none_at_quantile_thresholds() {
        // Scores rank the prompts perfectly; 4 bins over 4 distinct scores.
        let c = curve(&[4.0, 3.0, 2.0, 1.0], &four(), 4).unwrap();
        let shares: Vec<f64> = c.iter().map(|p| p.strong_share).collect();
        let quality: Vec<f64> = c.iter().map(|p| p.quality).collect();
        assert_eq!(shares, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(quality, vec![0.5, 0.75, 1.0, 1.0, 0.75]);
    }

    #[test]
    fn apgr_and_cpt_of_a_perfect_ranking_by_hand() {
        // Area by trapezoids: .25*(.5+.75)/2 + .25*(.75+1)/2 + .25*(1+1)/2 + .25*(1+.75)/2
        //   = .15625 + .21875 + .25 + .21875 = .84375; weak area .5, strong .75.
        // APGR = (.84375 - .5) / .25 = 1.375. PGR per point: 0, 1, 2, 2, 1.
        // CPT(50%): halfway from share 0 (PGR 0) to .25 (PGR 1) = .125.
        let e = evaluate(&[4.0, 3.0, 2.0, 1.0], &four(), 4).unwrap();
        assert!(close(e.apgr, 1.375), "{}", e.apgr);
        assert!(close(e.cpt50, 0.125));
        assert!(close(e.cpt80, 0.2));
        assert!(close(e.cpt95, 0.2375));
    }

    #[test]
    fn a_reversed_ranking_recovers_less_than_nothing() {
        // Shares 0,.25,.5,.75,1 with qualities .5,.25,.25,.5,.75 → area .40625, APGR -.375;
        // PGR 0,-1,-1,0,1, so every CPT lies on the last segment, from .75 to 1.
        let e = evaluate(&[1.0, 2.0, 3.0, 4.0], &four(), 4).unwrap();
        assert!(close(e.apgr, -0.375), "{}", e.apgr);
        assert!(close(e.cpt50, 0.875));
        assert!(close(e.cpt95, 0.9875));
    }

    #[test]
    fn ties_move_together() {
        // All scores equal: the first thresholds take everything (>=), the last nothing (>).
        let c = curve(&[0.3; 4], &four(), 4).unwrap();
        assert_eq!(c.first().unwrap().strong_share, 0.0);
        assert!(c[1..].iter().all(|p| p.strong_share == 1.0));
        let e = metrics(c, 0.5, 0.75).unwrap();
        // One straight segment from (0, .5) to (1, .75): exactly half the gap.
        assert!(close(e.apgr, 0.5));
    }

    #[test]
    fn baselines_on_a_larger_sample_land_where_they_should() {
        // 1,000 prompts: 30 % need the strong model, 10 % only the weak one gets right.
        let outcomes: Vec<Outcome> = (0..1000)
            .map(|i| match i % 10 {
                0..=2 => o(0.0, 1.0),
                3 => o(1.0, 0.0),
                _ => o(1.0, 1.0),
            })
            .collect();
        let oracle = evaluate(&oracle_scores(&outcomes), &outcomes, 10).unwrap();
        assert!(oracle.apgr > 0.9, "{}", oracle.apgr);
        assert!(oracle.cpt50 < 0.2, "{}", oracle.cpt50);
        let random = random_baseline(&outcomes, 10, 20).unwrap();
        assert!((random.apgr - 0.5).abs() < 0.05, "{}", random.apgr);
        assert!((random.cpt50 - 0.5).abs() < 0.1, "{}", random.cpt50);
        // A length router on prompts whose length says nothing is about random too.
        let texts: Vec<String> = (0..1000).map(|i| "x".repeat(1 + (i * 7919) % 97)).collect();
        let length = evaluate(&length_scores(&texts), &outcomes, 10).unwrap();
        assert!((length.apgr - 0.5).abs() < 0.1, "{}", length.apgr);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(evaluate(&[], &[], 10), Err(EvalError::Empty));
        assert!(matches!(
            evaluate(&[1.0], &four(), 10),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert_eq!(
            evaluate(&[f64::NAN; 4], &four(), 10),
            Err(EvalError::NotFinite)
        );
        let same = vec![o(1.0, 1.0); 3];
        assert!(matches!(
            evaluate(&[1.0, 2.0, 3.0], &same, 10),
            Err(EvalError::NoGap { .. })
        ));
    }
}
