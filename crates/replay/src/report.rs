//! Step three: every router and baseline replayed offline on the cached, graded answers.
//!
//! With two or more models, the first is the small one and the last the large one. Each
//! router gives every request a plan: the small model answers, the large one does, or (a
//! cascade) the small one answers and is escalated, paying for both and waiting for both.
//! Routers that score requests (random, prompt length, the cascade's confidence, the
//! oracle) are also measured over all thresholds, as RouteLLM does (APGR, CPT); their
//! operating point is the cheapest threshold that keeps `target_quality` of all-large
//! quality on the training requests, measured on the held-out ones.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use switchyard_router::confidence::Calibration;
use switchyard_router::eval::{self, CurvePoint, Outcome};

use crate::cache::{Answer, AnswerCache};
use crate::workload::Item;

pub struct Options<'a> {
    /// The models, small first, large last.
    pub models: &'a [String],
    /// The cascade's calibration and the threshold the config gives it.
    pub calibration: Option<(&'a Calibration, f64)>,
    /// The share of all-large quality a router's chosen threshold must keep.
    pub target_quality: f64,
    /// The share of requests (by group) held out: thresholds are chosen on the rest, figures
    /// reported on these. `None`: both on every request.
    pub held_out: Option<f64>,
    pub seed: u64,
}

/// One router's figures on the reported requests.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub small_share: f64,
    pub large_share: f64,
    /// Mean grade; `None` when no request is labelled.
    pub quality: Option<f64>,
    pub quality_vs_large: Option<f64>,
    pub cost_usd: f64,
    pub saving_vs_large: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub apgr: Option<f64>,
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub cpt95: Option<f64>,
    /// The threshold of the operating point, for routers that score.
    pub threshold: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub models: Vec<String>,
    /// Requests reported on (the held-out ones when split).
    pub requests: usize,
    /// Requests the thresholds were chosen on.
    pub train_requests: usize,
    /// Requests left out because a model's answer is missing from the cache.
    pub unanswered: usize,
    pub routers: BTreeMap<String, Figures>,
    /// Quality against large share over every threshold, for the plot.
    #[serde(skip)]
    pub curves: BTreeMap<String, Vec<CurvePoint>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    #[error("replay needs at least two models (small first, large last); got {0}")]
    TooFewModels(usize),
    #[error("no request has an answer from every model yet: run the collection first")]
    NothingAnswered,
    #[error("the split leaves no request on one side: use a held-out share between 0 and 1 on a workload of more than one group")]
    EmptySide,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    Small,
    Large,
    /// The small model answered and the cascade escalated to the large one.
    Escalated,
}

/// A router's score of a request: higher goes to the large model.
type Score<'s> = dyn Fn(&Row) -> f64 + 's;

struct Row<'a> {
    small: &'a Answer,
    large: &'a Answer,
    q_small: Option<f64>,
    q_large: Option<f64>,
    length: f64,
    /// The cascade's calibrated confidence in the small answer (`None`: not judged, kept).
    confidence: Option<f64>,
    /// What the configured router chose, read from the gateway's explanation.
    routed: Routed,
}

#[derive(Debug, Clone, PartialEq)]
enum Routed {
    Model(String),
    Cascade,
}

/// What the gateway appends to its explanation of a pinned request: "(the router chose M)" or
/// "(the router chose cascade A,B)" (`switchyard_router::Router::pin`).
pub(crate) const ROUTER_CHOSE: &str = "(the router chose ";

/// What the router chose before replay pinned the model.
fn routed(reason: &str) -> Option<Routed> {
    let (_, rest) = reason.rsplit_once(ROUTER_CHOSE)?;
    let chose = rest.strip_suffix(')')?;
    Some(match chose.strip_prefix("cascade ") {
        Some(_) => Routed::Cascade,
        None => Routed::Model(chose.to_owned()),
    })
}

/// Which requests are held out: whole groups (a request without one is its own), drawn by
/// `seed`.
pub fn held_out(items: &[Item], share: f64, seed: u64) -> Vec<bool> {
    let mut groups: Vec<&str> = items.iter().map(Item::split_group).collect();
    groups.sort_unstable();
    groups.dedup();
    groups.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n = ((groups.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    let out: std::collections::HashSet<&str> = groups[..n].iter().copied().collect();
    items
        .iter()
        .map(|i| out.contains(i.split_group()))
        .collect()
}

pub fn report(
    items: &[Item],
    cache: &AnswerCache,
    options: &Options,
) -> Result<Report, ReportError> {
    let (Some(small), Some(large)) = (options.models.first(), options.models.last()) else {
        return Err(ReportError::TooFewModels(options.models.len()));
    };
    if options.models.len() < 2 {
        return Err(ReportError::TooFewModels(options.models.len()));
    }
    let sides = match options.held_out {
        Some(share) => held_out(items, share, options.seed),
        None => vec![false; items.len()],
    };
    let (mut train, mut test, mut unanswered) = (Vec::new(), Vec::new(), 0);
    for (item, out) in items.iter().zip(sides) {
        let (Some(s), Some(l)) = (cache.get(&item.id, small), cache.get(&item.id, large)) else {
            unanswered += 1;
            continue;
        };
        let row = Row {
            small: s,
            large: l,
            q_small: item.grade.score(&s.text),
            q_large: item.grade.score(&l.text),
            length: item.text().chars().count() as f64,
            confidence: options.calibration.and_then(|(c, _)| {
                c.confidence(&s.logprobs, s.finish_reason.as_deref() == Some("length"))
            }),
            routed: routed(&s.route).unwrap_or(Routed::Model(small.clone())),
        };
        if out || options.held_out.is_none() {
            test.push(row);
        } else {
            train.push(row);
        }
    }
    // Unsplit, thresholds are chosen on the requests they are reported on.
    let train_rows: &[Row] = if options.held_out.is_some() {
        &train
    } else {
        &test
    };
    if test.is_empty() && train.is_empty() {
        return Err(ReportError::NothingAnswered);
    }
    if test.is_empty() || train_rows.is_empty() {
        return Err(ReportError::EmptySide);
    }

    let mut routers = BTreeMap::new();
    let mut curves = BTreeMap::new();
    let fixed = |f: &dyn Fn(&Row) -> Plan| test.iter().map(f).collect::<Vec<_>>();
    routers.insert(
        "all_small".into(),
        figures(&test, &fixed(&|_| Plan::Small), None),
    );
    routers.insert(
        "all_large".into(),
        figures(&test, &fixed(&|_| Plan::Large), None),
    );
    let oracle = |r: &Row| match (r.q_small, r.q_large) {
        (Some(s), Some(l)) if l > s => Plan::Large,
        _ => Plan::Small,
    };
    let mut o = figures(&test, &fixed(&oracle), None);
    score_metrics(
        &mut o,
        &test,
        &|r| r.q_large.unwrap_or(0.0) - r.q_small.unwrap_or(0.0),
        &mut curves,
        "oracle",
    );
    routers.insert("oracle".into(), o);

    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut draws = BTreeMap::new();
    for r in train_rows.iter().chain(&test) {
        draws.insert(r.small.item.clone(), rng.random::<f64>());
    }
    let random = |r: &Row| draws[&r.small.item];
    let length = |r: &Row| r.length;
    let scored: [(&str, &Score<'_>); 2] = [("random", &random), ("length", &length)];
    for (name, score) in scored {
        let t = choose_threshold(train_rows, score, Plan::Large, options.target_quality);
        let mut f = figures(&test, &at(&test, score, t, Plan::Large), Some(t));
        score_metrics(&mut f, &test, score, &mut curves, name);
        routers.insert(name.into(), f);
    }

    if let Some((_, threshold)) = options.calibration {
        // Escalated when the confidence is below the threshold; an unjudged answer is kept.
        let doubt = |r: &Row| r.confidence.map_or(-1.0, |p| 1.0 - p);
        let plans: Vec<Plan> = test.iter().map(|r| cascade_plan(r, threshold)).collect();
        let mut f = figures(&test, &plans, Some(threshold));
        score_metrics(&mut f, &test, &doubt, &mut curves, "cascade");
        routers.insert("cascade".into(), f);
        let t = choose_threshold(train_rows, &doubt, Plan::Escalated, options.target_quality);
        let mut f = figures(&test, &at(&test, &doubt, t, Plan::Escalated), Some(1.0 - t));
        f.apgr = routers["cascade"].apgr;
        f.cpt50 = routers["cascade"].cpt50;
        f.cpt80 = routers["cascade"].cpt80;
        f.cpt95 = routers["cascade"].cpt95;
        routers.insert("cascade_at_target".into(), f);
    }

    let configured = |r: &Row| match &r.routed {
        Routed::Model(m) if m == small => Plan::Small,
        Routed::Model(_) => Plan::Large,
        Routed::Cascade => options
            .calibration
            .map_or(Plan::Small, |(_, t)| cascade_plan(r, t)),
    };
    routers.insert(
        "configured".into(),
        figures(&test, &fixed(&configured), None),
    );

    Ok(Report {
        models: options.models.to_vec(),
        requests: test.len(),
        train_requests: train_rows.len(),
        unanswered,
        routers,
        curves,
    })
}

fn cascade_plan(r: &Row, threshold: f64) -> Plan {
    match r.confidence {
        Some(p) if p < threshold => Plan::Escalated,
        _ => Plan::Small,
    }
}

/// Plans at threshold `t`: `score >= t` goes to `plan`, the rest stays small.
fn at(rows: &[Row], score: &dyn Fn(&Row) -> f64, t: f64, plan: Plan) -> Vec<Plan> {
    rows.iter()
        .map(|r| if score(r) >= t { plan } else { Plan::Small })
        .collect()
}

/// The cheapest threshold on `rows` keeping `target` of all-large quality (the highest such
/// threshold on a tie); without labels, the median score. One sweep down the sorted scores,
/// moving a request at a time to `plan`, so 10,000 requests take milliseconds.
fn choose_threshold(rows: &[Row], score: &Score<'_>, plan: Plan, target: f64) -> f64 {
    let mut order: Vec<(f64, &Row)> = rows.iter().map(|r| (score(r), r)).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let graded = |r: &Row| r.q_small.zip(r.q_large);
    let n = rows.iter().filter(|r| graded(r).is_some()).count();
    if n == 0 {
        let mut scores: Vec<f64> = order.iter().map(|(s, _)| *s).collect();
        scores.reverse();
        return if scores.is_empty() {
            0.0
        } else {
            eval::quantile(&scores, 0.5)
        };
    }
    let want = target * rows.iter().filter_map(graded).map(|(_, l)| l).sum::<f64>();
    let mut quality: f64 = rows.iter().filter_map(graded).map(|(s, _)| s).sum();
    let mut cost: f64 = rows.iter().map(|r| r.small.cost_usd).sum();
    let mut best = (quality >= want - 1e-9).then_some((cost, f64::INFINITY));
    let mut i = 0;
    while i < order.len() {
        let t = order[i].0;
        while i < order.len() && order[i].0 == t {
            let r = order[i].1;
            if let Some((s, l)) = graded(r) {
                quality += l - s;
            }
            cost += match plan {
                Plan::Escalated => r.large.cost_usd,
                _ => r.large.cost_usd - r.small.cost_usd,
            };
            i += 1;
        }
        if quality >= want - 1e-9 && best.is_none_or(|(c, _)| cost < c - 1e-15) {
            best = Some((cost, t));
        }
    }
    best.map_or(f64::NEG_INFINITY, |(_, t)| t)
}

/// APGR and CPTs of a scoring router over the labelled rows.
fn score_metrics(
    f: &mut Figures,
    rows: &[Row],
    score: &dyn Fn(&Row) -> f64,
    curves: &mut BTreeMap<String, Vec<CurvePoint>>,
    name: &str,
) {
    let labelled: Vec<&Row> = rows
        .iter()
        .filter(|r| r.q_small.is_some() && r.q_large.is_some())
        .collect();
    let outcomes: Vec<Outcome> = labelled
        .iter()
        .map(|r| Outcome {
            weak: r.q_small.unwrap_or(0.0),
            strong: r.q_large.unwrap_or(0.0),
        })
        .collect();
    let scores: Vec<f64> = labelled.iter().map(|r| score(r)).collect();
    if let Ok(e) = eval::evaluate(&scores, &outcomes, eval::DEFAULT_POINTS) {
        f.apgr = Some(e.apgr);
        f.cpt50 = Some(e.cpt50);
        f.cpt80 = Some(e.cpt80);
        f.cpt95 = Some(e.cpt95);
        curves.insert(name.to_owned(), e.curve);
    }
}

fn figures(rows: &[Row], plans: &[Plan], threshold: Option<f64>) -> Figures {
    let n = rows.len().max(1) as f64;
    let (mut small, mut cost, mut large_cost) = (0usize, 0.0, 0.0);
    let (mut quality, mut large_quality, mut graded) = (0.0, 0.0, 0usize);
    let mut latencies = Vec::with_capacity(rows.len());
    for (r, plan) in rows.iter().zip(plans) {
        large_cost += r.large.cost_usd;
        let (q, c, ms) = match plan {
            Plan::Small => (r.q_small, r.small.cost_usd, r.small.latency_ms),
            Plan::Large => (r.q_large, r.large.cost_usd, r.large.latency_ms),
            Plan::Escalated => (
                r.q_large,
                r.small.cost_usd + r.large.cost_usd,
                r.small.latency_ms + r.large.latency_ms,
            ),
        };
        small += (*plan == Plan::Small) as usize;
        cost += c;
        latencies.push(ms);
        if let (Some(q), Some(l)) = (q, r.q_large) {
            quality += q;
            large_quality += l;
            graded += 1;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let quantile = |q| {
        if latencies.is_empty() {
            0.0
        } else {
            eval::quantile(&latencies, q)
        }
    };
    let quality = (graded > 0).then(|| quality / graded as f64);
    let large_quality = large_quality / graded.max(1) as f64;
    Figures {
        small_share: small as f64 / n,
        large_share: 1.0 - small as f64 / n,
        quality,
        quality_vs_large: quality
            .filter(|_| large_quality > 0.0)
            .map(|q| q / large_quality),
        cost_usd: cost,
        saving_vs_large: if large_cost > 0.0 {
            1.0 - cost / large_cost
        } else {
            0.0
        },
        latency_p50_ms: quantile(0.5),
        latency_p95_ms: quantile(0.95),
        apgr: None,
        cpt50: None,
        cpt80: None,
        cpt95: None,
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    /// `n` requests in groups of two; the small model is right on even ones, the large on all.
    fn setup(n: usize) -> (tempfile::TempDir, Vec<Item>, AnswerCache) {
        let rows: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"prompt\": \"question {i} {}\", \"grade\": {{\"kind\": \"exact\", \"answer\": \"yes\"}}, \"group\": \"g{}\"}}\n",
                    "x".repeat(i),
                    i / 2
                )
            })
            .collect();
        let items = Workload::parse(&rows).unwrap().items;
        let dir = tempfile::tempdir().unwrap();
        let mut cache = AnswerCache::open(dir.path()).unwrap();
        for (i, item) in items.iter().enumerate() {
            for (model, right, cost) in [("small", i % 2 == 0, 0.0), ("large", true, 1.0)] {
                cache
                    .put(Answer {
                        item: item.id.clone(),
                        model: model.into(),
                        served_by: model.into(),
                        route: format!(
                            "default: auto -> small; pinned to {model} (the router chose small)"
                        ),
                        text: if right { "yes" } else { "no" }.into(),
                        finish_reason: Some("stop".into()),
                        logprobs: Vec::new(),
                        prompt_tokens: 5,
                        completion_tokens: 1,
                        cost_usd: cost,
                        latency_ms: if model == "small" { 10.0 } else { 100.0 },
                    })
                    .unwrap();
            }
        }
        (dir, items, cache)
    }

    fn models() -> Vec<String> {
        vec!["small".into(), "large".into()]
    }

    fn options(models: &[String], held_out: Option<f64>, seed: u64) -> Options<'_> {
        Options {
            models,
            calibration: None,
            target_quality: 0.95,
            held_out,
            seed,
        }
    }

    #[test]
    fn baselines_and_the_oracle_on_known_answers() {
        let (_dir, items, cache) = setup(10);
        let models = models();
        let r = report(&items, &cache, &options(&models, None, 1)).unwrap();
        assert_eq!(r.requests, 10);
        let small = &r.routers["all_small"];
        assert_eq!((small.small_share, small.quality), (1.0, Some(0.5)));
        assert_eq!(small.saving_vs_large, 1.0);
        let large = &r.routers["all_large"];
        assert_eq!(
            (large.large_share, large.quality, large.cost_usd),
            (1.0, Some(1.0), 10.0)
        );
        assert_eq!(large.latency_p50_ms, 100.0);
        // The oracle sends exactly the five the small model gets wrong.
        let oracle = &r.routers["oracle"];
        assert_eq!((oracle.large_share, oracle.quality), (0.5, Some(1.0)));
        assert_eq!(oracle.saving_vs_large, 0.5);
        // On the curve (0 %, 0.5), (50 %, 1), (100 %, 1): three quarters of the gap's area.
        assert!((oracle.apgr.unwrap() - 0.75).abs() < 1e-9, "{oracle:?}");
        // Random and length must reach 95 % of all-large: that leaves at most one wrong.
        for name in ["random", "length"] {
            let f = &r.routers[name];
            assert!(f.quality.unwrap() >= 0.95 * 1.0 - 1e-9, "{name}: {f:?}");
            assert!(f.apgr.is_some(), "{name}");
        }
        assert_eq!(r.routers["configured"].small_share, 1.0);
    }

    #[test]
    fn the_held_out_half_shares_no_group_with_the_training_half() {
        let (_dir, items, _cache) = setup(40);
        let out = held_out(&items, 0.5, 7);
        assert_eq!(out.iter().filter(|o| **o).count(), 20);
        for (a, oa) in items.iter().zip(&out) {
            for (b, ob) in items.iter().zip(&out) {
                if a.group == b.group {
                    assert_eq!(oa, ob, "group {:?} is on both sides", a.group);
                }
            }
        }
        assert_eq!(
            out,
            held_out(&items, 0.5, 7),
            "the same seed, the same split"
        );
        assert_ne!(out, held_out(&items, 0.5, 8));
    }

    #[test]
    fn a_split_reports_on_the_held_out_requests_only() {
        let (_dir, items, cache) = setup(40);
        let models = models();
        let r = report(&items, &cache, &options(&models, Some(0.5), 3)).unwrap();
        assert_eq!((r.requests, r.train_requests), (20, 20));
        assert_eq!(r.routers["all_large"].cost_usd, 20.0);
        let wrong = report(&items, &cache, &options(&models[..1], None, 3));
        assert_eq!(wrong.err(), Some(ReportError::TooFewModels(1)));
    }

    #[test]
    fn the_router_choice_is_read_from_the_explanation() {
        assert_eq!(
            routed("route legal: pinned; pinned to big (the router chose cascade cheap,big)"),
            Some(Routed::Cascade)
        );
        assert_eq!(
            routed("default: auto -> small; pinned to big (the router chose small)"),
            Some(Routed::Model("small".into()))
        );
        assert_eq!(routed("explicit: client asked for big"), None);
    }
}
