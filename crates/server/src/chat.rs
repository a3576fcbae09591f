//! `POST /v1/chat/completions`: parse → route → execute (with fallbacks) → answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::StreamExt;
use switchyard_api::{ApiError, ChatChunk, ChatRequest, ErrorKind};
use switchyard_providers::{ChunkStream, ProviderError};
use switchyard_router::Decision;

use crate::config::Price;
use crate::error::ErrorResponse;
use crate::gateway::{Gateway, Model};
use crate::record::OutcomeSlot;

pub async fn completions(
    State(gw): State<Arc<Gateway>>,
    Extension(slot): Extension<OutcomeSlot>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ErrorResponse> {
    let req = parse(body)?;
    {
        let mut o = slot.lock();
        o.requested_model.clone_from(&req.model);
        o.stream = req.is_stream();
    }
    let decision = gw.router.decide(&req).map_err(ApiError::from)?;
    {
        let mut o = slot.lock();
        o.route = decision.route;
        o.reason.clone_from(&decision.reason);
    }
    if req.is_stream() {
        stream(&gw, &slot, decision, req).await
    } else {
        complete(&gw, &slot, decision, req).await
    }
}

fn parse(body: Result<Bytes, BytesRejection>) -> Result<ChatRequest, ApiError> {
    let req: ChatRequest = crate::body::parse_json(body)?;
    req.validate()?;
    Ok(req)
}

/// The models to try, in order: the decision's target, then its configured fallbacks.
fn ladder<'g>(gw: &'g Gateway, decision: &Decision) -> Vec<&'g Model> {
    let mut out = Vec::with_capacity(2);
    if let Some(m) = gw.models.get(&decision.target) {
        out.push(m);
        out.extend(m.fallbacks.iter().filter_map(|f| gw.models.get(f)));
    }
    out
}

/// Notes a failed attempt; says whether the next model on the ladder should be tried.
fn attempt_failed(slot: &OutcomeSlot, model: &Model, e: &ProviderError) -> bool {
    tracing::warn!(model = %model.name, error = %e, "model failed");
    let mut o = slot.lock();
    o.reason.push_str(&format!("; {} failed", model.name));
    e.is_retryable()
}

fn answered_by(slot: &OutcomeSlot, model: &Model, first: bool) {
    let mut o = slot.lock();
    o.model.clone_from(&model.name);
    if !first {
        o.reason.push_str(&format!(", fell back to {}", model.name));
    }
}

fn failure(e: ProviderError) -> ErrorResponse {
    ErrorResponse(e.to_api_error())
}

async fn complete(
    gw: &Gateway,
    slot: &OutcomeSlot,
    decision: Decision,
    req: ChatRequest,
) -> Result<Response, ErrorResponse> {
    let mut last = None;
    let upstream_start = Instant::now();
    for (i, model) in ladder(gw, &decision).into_iter().enumerate() {
        match model.provider.complete(&req).await {
            Ok(resp) => {
                answered_by(slot, model, i == 0);
                let usage = resp.usage.unwrap_or_default();
                let mut o = slot.lock();
                o.upstream_ms = Some(upstream_start.elapsed().as_secs_f64() * 1e3);
                o.prompt_tokens = usage.prompt_tokens;
                o.completion_tokens = usage.completion_tokens;
                o.cost_usd = model
                    .price
                    .cost(usage.prompt_tokens, usage.completion_tokens);
                let body = serde_json::to_vec(&resp).map_err(|e| {
                    ApiError::new(
                        ErrorKind::Internal,
                        format!("encoding the answer failed: {e}"),
                    )
                })?;
                return Ok(json(body));
            }
            Err(e) => {
                let next = attempt_failed(slot, model, &e);
                last = Some(e);
                if !next {
                    break;
                }
            }
        }
    }
    slot.lock().upstream_ms = Some(upstream_start.elapsed().as_secs_f64() * 1e3);
    Err(last.map(failure).unwrap_or_else(|| no_model(&decision)))
}

fn no_model(decision: &Decision) -> ErrorResponse {
    ErrorResponse(ApiError::new(
        ErrorKind::Internal,
        format!(
            "the router chose `{}`, which is not configured",
            decision.target
        ),
    ))
}

fn json(body: Vec<u8>) -> Response {
    let mut resp = Body::from(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn stream(
    gw: &Gateway,
    slot: &OutcomeSlot,
    decision: Decision,
    req: ChatRequest,
) -> Result<Response, ErrorResponse> {
    let mut last = None;
    let upstream_start = Instant::now();
    for (i, model) in ladder(gw, &decision).into_iter().enumerate() {
        match model.provider.stream(&req).await {
            Ok(chunks) => {
                answered_by(slot, model, i == 0);
                let relay = Relay {
                    chunks,
                    slot: slot.clone(),
                    price: model.price,
                    include_usage: req.include_usage(),
                    upstream_start,
                    first_token_seen: false,
                    ended: false,
                };
                let mut resp = Body::from_stream(relay.into_sse()).into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                return Ok(resp);
            }
            Err(e) => {
                let next = attempt_failed(slot, model, &e);
                last = Some(e);
                if !next {
                    break;
                }
            }
        }
    }
    slot.lock().upstream_ms = Some(upstream_start.elapsed().as_secs_f64() * 1e3);
    Err(last.map(failure).unwrap_or_else(|| no_model(&decision)))
}

/// Forwards upstream chunks as server-sent events, noting usage and time to first token.
struct Relay {
    chunks: ChunkStream,
    slot: OutcomeSlot,
    price: Price,
    include_usage: bool,
    upstream_start: Instant,
    first_token_seen: bool,
    ended: bool,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.ended {
            let mut o = self.slot.lock();
            o.upstream_ms = Some(self.upstream_start.elapsed().as_secs_f64() * 1e3);
            o.error = Some("client disconnected before the stream ended".into());
            o.failed_status = Some(499);
        }
    }
}

enum Step {
    Open(Relay),
    Closed,
}

fn event(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

impl Relay {
    fn into_sse(self) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        futures::stream::unfold(Step::Open(self), |step| async move {
            let Step::Open(mut relay) = step else {
                return None;
            };
            loop {
                match relay.chunks.next().await {
                    Some(Ok(chunk)) => {
                        if let Some(bytes) = relay.forward(chunk) {
                            return Some((Ok(bytes), Step::Open(relay)));
                        }
                    }
                    Some(Err(e)) => {
                        let bytes = relay.fail(e);
                        return Some((Ok(bytes), Step::Closed));
                    }
                    None => {
                        let bytes = relay.finish();
                        return Some((Ok(bytes), Step::Closed));
                    }
                }
            }
        })
    }

    /// The event for one upstream chunk, or none when the client did not ask for it.
    fn forward(&mut self, mut chunk: ChatChunk) -> Option<Bytes> {
        if !self.first_token_seen && !chunk.choices.is_empty() {
            self.first_token_seen = true;
            self.slot.lock().ttft_ms = Some(self.upstream_start.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(u) = chunk.usage {
            let mut o = self.slot.lock();
            o.prompt_tokens = u.prompt_tokens;
            o.completion_tokens = u.completion_tokens;
            o.cost_usd = self.price.cost(u.prompt_tokens, u.completion_tokens);
        }
        if !self.include_usage {
            if chunk.choices.is_empty() {
                return None;
            }
            chunk.usage = None;
        }
        serde_json::to_vec(&chunk).ok().map(|b| event(&b))
    }

    fn fail(&mut self, e: ProviderError) -> Bytes {
        self.ended = true;
        let err = e.to_api_error();
        let mut o = self.slot.lock();
        o.upstream_ms = Some(self.upstream_start.elapsed().as_secs_f64() * 1e3);
        o.error = Some(err.message.clone());
        o.failed_status = Some(err.status());
        event(&serde_json::to_vec(&err.body()).unwrap_or_default())
    }

    fn finish(&mut self) -> Bytes {
        self.ended = true;
        let mut o = self.slot.lock();
        o.upstream_ms = Some(self.upstream_start.elapsed().as_secs_f64() * 1e3);
        // An SSE comment: clients ignore it, people and scripts reading the stream see the cost.
        Bytes::from(format!(
            ": x-switchyard-cost-usd={:.8}\n\ndata: [DONE]\n\n",
            o.cost_usd
        ))
    }
}
