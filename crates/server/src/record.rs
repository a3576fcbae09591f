//! The record layer: every `/v1` request gets an id, the `x-switchyard-*` headers, one row in
//! the request log and its metrics, whatever stage answered it. Handlers only fill in an
//! [`Outcome`]; the row is written when the response body is finished (or dropped, when the
//! client goes away), so streamed requests are recorded with their final usage.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use switchyard_api::ApiError;
use switchyard_store::{RequestLog, RequestRecord};

use crate::metrics::{Metrics, Observation};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-switchyard-request-id");
pub const MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
pub const ROUTE: HeaderName = HeaderName::from_static("x-switchyard-route");
pub const COST: HeaderName = HeaderName::from_static("x-switchyard-cost-usd");
/// The decision's numbers, `name=value` separated by spaces; only when there are any.
pub const SCORES: HeaderName = HeaderName::from_static("x-switchyard-scores");
/// What the guard replaced with placeholders before the request left, `EMAIL=2,PHONE=1`
/// (distinct values by type); only when it replaced any.
pub const REDACTED: HeaderName = HeaderName::from_static("x-switchyard-redacted");

/// What the request path learned about one request, filled in stage by stage.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub requested_model: String,
    /// The model the decision chose to answer first.
    pub chosen: String,
    /// The configured model that answered.
    pub model: String,
    /// The decision's low-cardinality label (for metrics).
    pub route: String,
    /// The numbers behind the decision and any cascade confidences, for the log.
    pub scores: std::collections::BTreeMap<String, f64>,
    /// The decision's explanation (for the header and the log).
    pub reason: String,
    /// Each cascade rung's verdict, as data (for the log).
    pub steps: Vec<switchyard_router::logged::Rung>,
    pub stream: bool,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    pub upstream_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub error: Option<String>,
    /// A failure after a stream's 200 was sent, which the log should show as such.
    pub failed_status: Option<u16>,
    /// The learned router's features of the conversation, when `[router] record_features`.
    pub features: Option<switchyard_router::data::Features>,
    /// Distinct values the guard replaced by placeholders in what the answering model got,
    /// by type label (`EMAIL`).
    pub redacted: std::collections::BTreeMap<&'static str, usize>,
    /// The type label of the personal data the guard refused the request for.
    pub blocked: Option<&'static str>,
    /// The request's messages with every finding redacted, as JSON (`[store] log_text`).
    pub text: Option<String>,
    /// The knowledge passages put into the prompt, as ids (the log's `sources`).
    pub sources: Option<String>,
    /// A chat completion: its counterfactual is the baseline model on the same tokens.
    pub chat: bool,
    /// The name of the API key the request came with (the auth layer's; never the secret).
    pub key_name: Option<String>,
}

impl Outcome {
    /// `EMAIL=2,PHONE=1`; none when nothing was redacted.
    pub fn redacted_summary(&self) -> Option<String> {
        (!self.redacted.is_empty()).then(|| {
            self.redacted
                .iter()
                .map(|(kind, n)| format!("{kind}={n}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Shared between the handler (and its response stream) and the record layer.
#[derive(Clone, Default)]
pub struct OutcomeSlot(Arc<Mutex<Outcome>>);

impl OutcomeSlot {
    pub fn lock(&self) -> MutexGuard<'_, Outcome> {
        // A panic while holding the lock cannot leave an Outcome half-valid: keep using it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Recorder {
    pub log: Arc<RequestLog>,
    pub metrics: Arc<Metrics>,
    /// The price of `[accounting]`'s baseline model; none when no model is configured with one.
    pub baseline: Option<crate::config::Price>,
}

impl Recorder {
    /// What the request would have cost on the baseline: its price on the prompt tokens and
    /// the answering model's completion tokens. Anything but a chat completion (embeddings)
    /// has no counterfactual and is its own baseline.
    fn baseline_cost(&self, o: &Outcome) -> f64 {
        match (&self.baseline, o.chat) {
            (Some(price), true) => price.cost(o.prompt_tokens, o.completion_tokens),
            _ => o.cost_usd,
        }
    }
}

/// Header values must be visible ASCII: anything else (a model or route name in another
/// script) becomes `?` rather than bytes clients cannot read.
fn header(value: &str) -> HeaderValue {
    let ascii: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).unwrap_or_else(|_| HeaderValue::from_static("unprintable"))
}

pub async fn record(
    State(recorder): State<Arc<Recorder>>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let created_at_ms = RequestRecord::now_ms();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let slot = OutcomeSlot::default();
    req.extensions_mut().insert(slot.clone());

    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    {
        let mut o = slot.lock();
        if let Some(err) = resp.extensions().get::<ApiError>() {
            o.error.get_or_insert_with(|| err.message.clone());
        }
        let h = resp.headers_mut();
        h.insert(REQUEST_ID, header(&id));
        h.insert(
            MODEL,
            header(if o.model.is_empty() { "none" } else { &o.model }),
        );
        h.insert(
            ROUTE,
            header(if o.reason.is_empty() {
                "none"
            } else {
                &o.reason
            }),
        );
        // A stream's usage arrives with its last chunk: its cost is in the log, the metrics
        // and a final SSE comment, not known when the headers go out.
        let cost = if o.stream && status == 200 {
            HeaderValue::from_static("pending")
        } else {
            header(&format!("{:.8}", o.cost_usd))
        };
        h.insert(COST, cost);
        if !o.scores.is_empty() {
            let scores: Vec<String> = o
                .scores
                .iter()
                .map(|(k, v)| format!("{k}={v:.4}"))
                .collect();
            h.insert(SCORES, header(&scores.join(" ")));
        }
        if let Some(redacted) = o.redacted_summary() {
            h.insert(REDACTED, header(&redacted));
        }
    }
    let guard = RowOnDrop {
        recorder,
        slot,
        id,
        start,
        created_at_ms,
        status,
    };
    resp.map(|inner| {
        Body::new(Recorded {
            inner,
            _guard: guard,
        })
    })
}

/// A response body that writes the request's row when it is finished or dropped.
struct Recorded {
    inner: Body,
    _guard: RowOnDrop,
}

impl http_body::Body for Recorded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

struct RowOnDrop {
    recorder: Arc<Recorder>,
    slot: OutcomeSlot,
    id: String,
    start: Instant,
    created_at_ms: i64,
    status: u16,
}

impl Drop for RowOnDrop {
    fn drop(&mut self) {
        let latency_ms = self.start.elapsed().as_secs_f64() * 1e3;
        let o = std::mem::take(&mut *self.slot.lock());
        let status = o.failed_status.unwrap_or(self.status);
        let baseline_cost_usd = self.recorder.baseline_cost(&o);
        self.recorder.metrics.observe(&Observation {
            model: &o.model,
            route: &o.route,
            key: o.key_name.as_deref().unwrap_or(""),
            status,
            latency_s: latency_ms / 1e3,
            upstream_s: o.upstream_ms.map(|ms| ms / 1e3),
            prompt_tokens: o.prompt_tokens,
            completion_tokens: o.completion_tokens,
            cost_usd: o.cost_usd,
            baseline_cost_usd,
            redacted: &o.redacted,
            blocked: o.blocked,
        });
        let redacted = o.redacted_summary();
        self.recorder.log.record_now(RequestRecord {
            id: std::mem::take(&mut self.id),
            created_at_ms: self.created_at_ms,
            requested_model: o.requested_model,
            chosen: (!o.chosen.is_empty()).then_some(o.chosen),
            model: o.model,
            route: o.reason,
            status,
            stream: o.stream,
            prompt_tokens: o.prompt_tokens,
            completion_tokens: o.completion_tokens,
            cost_usd: o.cost_usd,
            latency_ms,
            upstream_latency_ms: o.upstream_ms,
            ttft_ms: o.ttft_ms,
            error: o.error,
            scores: (!o.scores.is_empty())
                .then(|| serde_json::to_string(&o.scores).unwrap_or_default()),
            cascade: (!o.steps.is_empty())
                .then(|| switchyard_router::logged::write_steps(&o.steps)),
            cheap_features: o.features.as_ref().map(|f| f.cheap.to_vec()),
            embedding: o.features.map(|f| f.embedding),
            redacted,
            text: o.text,
            sources: o.sources,
            baseline_cost_usd: Some(baseline_cost_usd),
            key_name: o.key_name,
            route_name: (!o.route.is_empty()).then_some(o.route),
        });
    }
}
