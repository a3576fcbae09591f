//! The deployment's live operating point from its request log: no model is called. What the
//! router actually did with `"model": "auto"` traffic — share answered by each model, cost
//! against sending everything to the large model, the cascade's escalation rate, feedback
//! scores by model.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use switchyard_router::eval;
use switchyard_store::{FeedbackRecord, RequestRecord};

/// A model's price in USD per million tokens, input and output.
pub type Price = (f64, f64);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelShare {
    pub requests: usize,
    pub share: f64,
    pub cost_usd: f64,
    /// Mean feedback score (0 bad … 1 good) of its answers, and how many were rated.
    pub feedback_mean: Option<f64>,
    pub feedback_n: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LivePoint {
    /// Answered `"model": "auto"` requests (explicitly named models are the client's choice,
    /// not the router's).
    pub requests: usize,
    pub models: BTreeMap<String, ModelShare>,
    pub small_share: f64,
    pub cost_usd: f64,
    /// What the same traffic would have cost on the large model: each answer's own token
    /// counts at the large model's price (an estimate: another model's tokenizer and answer
    /// length differ).
    pub all_large_cost_usd: f64,
    pub saving_vs_large: f64,
    /// Cascaded requests, and the share of them a later rung answered.
    pub cascade_requests: usize,
    pub escalation_rate: Option<f64>,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

/// The operating point of the log's routed traffic; `small` names the cheapest model,
/// `large_price` is the most capable one's.
pub fn operating_point(
    requests: &[RequestRecord],
    feedback: &[FeedbackRecord],
    small: &str,
    large_price: Price,
) -> LivePoint {
    let routed: Vec<&RequestRecord> = requests
        .iter()
        .filter(|r| r.requested_model == "auto" && r.status == 200 && !r.model.is_empty())
        // A replay's own collection, pinned to each model in turn, is not the router's doing.
        .filter(|r| !r.route.contains(crate::report::ROUTER_CHOSE))
        .collect();
    let n = routed.len();
    let ratings: HashMap<&str, Vec<f64>> = feedback.iter().fold(HashMap::new(), |mut m, f| {
        m.entry(f.request_id.as_str()).or_default().push(f.score);
        m
    });
    let (li, lo) = large_price;
    let mut models: BTreeMap<String, ModelShare> = BTreeMap::new();
    let mut scores: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut cost, mut large_cost, mut cascaded, mut escalated) = (0.0, 0.0, 0usize, 0usize);
    let mut latencies = Vec::with_capacity(n);
    for r in &routed {
        let m = models.entry(r.model.clone()).or_insert(ModelShare {
            requests: 0,
            share: 0.0,
            cost_usd: 0.0,
            feedback_mean: None,
            feedback_n: 0,
        });
        m.requests += 1;
        m.cost_usd += r.cost_usd;
        cost += r.cost_usd;
        large_cost += (f64::from(r.prompt_tokens) * li + f64::from(r.completion_tokens) * lo) / 1e6;
        latencies.push(r.latency_ms);
        if r.cascade.is_some() {
            cascaded += 1;
            escalated += (r.chosen.as_deref() != Some(r.model.as_str())) as usize;
        }
        if let Some(s) = ratings.get(r.id.as_str()) {
            scores.entry(r.model.clone()).or_default().extend(s);
        }
    }
    for (name, m) in &mut models {
        m.share = m.requests as f64 / n.max(1) as f64;
        if let Some(s) = scores.get(name) {
            m.feedback_n = s.len();
            m.feedback_mean = Some(s.iter().sum::<f64>() / s.len() as f64);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p| {
        if latencies.is_empty() {
            0.0
        } else {
            eval::quantile(&latencies, p)
        }
    };
    LivePoint {
        requests: n,
        small_share: models.get(small).map_or(0.0, |m| m.share),
        models,
        cost_usd: cost,
        all_large_cost_usd: large_cost,
        saving_vs_large: if large_cost > 0.0 {
            1.0 - cost / large_cost
        } else {
            0.0
        },
        cascade_requests: cascaded,
        escalation_rate: (cascaded > 0).then(|| escalated as f64 / cascaded as f64),
        latency_p50_ms: q(0.5),
        latency_p95_ms: q(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, requested: &str, chosen: &str, model: &str, cascade: bool) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            requested_model: requested.into(),
            chosen: Some(chosen.into()),
            model: model.into(),
            status: 200,
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            cost_usd: if model == "large" { 2.0 } else { 0.0 },
            latency_ms: if model == "large" { 900.0 } else { 100.0 },
            cascade: cascade.then(|| "[]".to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn the_live_point_counts_routed_traffic_escalations_and_feedback_by_model() {
        let rows = [
            row("a", "auto", "small", "small", true),
            row("b", "auto", "small", "small", true),
            row("c", "auto", "small", "large", true),
            row("d", "auto", "large", "large", false),
            row("e", "large", "large", "large", false),
            RequestRecord {
                route: "default: auto -> small; pinned to large (the router chose small)".into(),
                ..row("f", "auto", "large", "large", false)
            },
        ];
        let feedback = [
            FeedbackRecord {
                request_id: "a".into(),
                score: 1.0,
                ..Default::default()
            },
            FeedbackRecord {
                request_id: "c".into(),
                score: 0.5,
                ..Default::default()
            },
            FeedbackRecord {
                request_id: "e".into(),
                score: 0.0,
                ..Default::default()
            },
        ];
        let p = operating_point(&rows, &feedback, "small", (2.0, 8.0));
        assert_eq!(
            p.requests, 4,
            "explicit and pinned requests are not the router's"
        );
        assert_eq!(p.small_share, 0.5);
        assert_eq!(
            (p.cost_usd, p.all_large_cost_usd, p.saving_vs_large),
            (4.0, 8.0, 0.5)
        );
        assert_eq!(p.cascade_requests, 3);
        assert!((p.escalation_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(p.models["small"].feedback_mean, Some(1.0));
        assert_eq!(
            (
                p.models["large"].feedback_mean,
                p.models["large"].feedback_n
            ),
            (Some(0.5), 1)
        );
        assert_eq!(p.latency_p50_ms, 500.0);
    }
}
