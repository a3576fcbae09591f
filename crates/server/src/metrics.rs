//! `/metrics` in Prometheus text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

/// Spend is counted by who spent it, on what, by which route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    model: String,
    route: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardLabels {
    r#type: &'static str,
}

/// What one finished request contributes to the metrics.
pub struct Observation<'a> {
    pub model: &'a str,
    pub route: &'a str,
    /// The API key's name; empty when the request came without one.
    pub key: &'a str,
    pub status: u16,
    pub latency_s: f64,
    pub upstream_s: Option<f64>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    /// What the request would have cost on the accounting baseline model.
    pub baseline_cost_usd: f64,
    /// Distinct values redacted, by type label.
    pub redacted: &'a std::collections::BTreeMap<&'static str, usize>,
    /// The type the request was refused for.
    pub blocked: Option<&'static str>,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ModelLabels, Histogram>,
    upstream: Family<ModelLabels, Histogram>,
    overhead: Histogram,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<SpendLabels, Counter<f64, AtomicU64>>,
    baseline_cost: Family<SpendLabels, Counter<f64, AtomicU64>>,
    redactions: Family<GuardLabels, Counter>,
    blocked: Family<GuardLabels, Counter>,
}

fn seconds_histogram() -> Histogram {
    // 50 µs to about 105 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ModelLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let upstream = Family::<ModelLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let overhead = seconds_histogram();
        let tokens = Family::<TokenLabels, Counter>::default();
        let cost = Family::<SpendLabels, Counter<f64, AtomicU64>>::default();
        let baseline_cost = Family::<SpendLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "requests",
            "Requests by answering model, route and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Total request latency, as the client sees it",
            latency.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time spent waiting on the model that answered",
            upstream.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Total latency minus upstream latency",
            overhead.clone(),
        );
        registry.register("tokens", "Tokens by model and kind", tokens.clone());
        registry.register(
            "cost_usd",
            "Cost in US dollars by answering model, route and API key",
            cost.clone(),
        );
        registry.register(
            "baseline_cost_usd",
            "What the same requests would have cost on the [accounting] baseline model, in US dollars",
            baseline_cost.clone(),
        );
        let redactions = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_redactions",
            "Distinct personal-data values replaced by placeholders before a request left, by type",
            redactions.clone(),
        );
        let blocked = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_blocked_requests",
            "Requests refused for holding personal data the policy blocks, by type",
            blocked.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            upstream,
            overhead,
            tokens,
            cost,
            baseline_cost,
            redactions,
            blocked,
        }
    }
}

impl Metrics {
    pub fn observe(&self, o: &Observation<'_>) {
        let model = ModelLabels {
            model: o.model.to_owned(),
        };
        self.requests
            .get_or_create(&RequestLabels {
                model: o.model.to_owned(),
                route: o.route.to_owned(),
                status: o.status.to_string(),
            })
            .inc();
        self.latency.get_or_create(&model).observe(o.latency_s);
        if let Some(up) = o.upstream_s {
            self.upstream.get_or_create(&model).observe(up);
            self.overhead.observe((o.latency_s - up).max(0.0));
        }
        for (kind, n) in [
            ("prompt", o.prompt_tokens),
            ("completion", o.completion_tokens),
        ] {
            if n > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        model: o.model.to_owned(),
                        kind,
                    })
                    .inc_by(u64::from(n));
            }
        }
        let spend = SpendLabels {
            model: o.model.to_owned(),
            route: o.route.to_owned(),
            key: o.key.to_owned(),
        };
        if o.cost_usd > 0.0 {
            self.cost.get_or_create(&spend).inc_by(o.cost_usd);
        }
        if o.baseline_cost_usd > 0.0 {
            self.baseline_cost
                .get_or_create(&spend)
                .inc_by(o.baseline_cost_usd);
        }
        for (&kind, &n) in o.redacted {
            self.redactions
                .get_or_create(&GuardLabels { r#type: kind })
                .inc_by(n as u64);
        }
        if let Some(kind) = o.blocked {
            self.blocked
                .get_or_create(&GuardLabels { r#type: kind })
                .inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
