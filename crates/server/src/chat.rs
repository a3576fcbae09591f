//! `POST /v1/chat/completions`: parse → route → execute → render.
//!
//! The handler parses and routes, hands the request to the [`execute`] room (one rung with its
//! [`fallbacks`], or a [`cascade`]), which returns a whole answer or a stream, and renders that
//! once: JSON, or server-sent events through the [`relay`]. What execution found out comes back
//! as a [`Trail`] and goes into the request's outcome in one write; a stream's own figures
//! are written by the relay when it ends.

mod assemble;
mod cascade;
mod execute;
mod fallbacks;
mod relay;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use switchyard_api::{ApiError, ChatRequest, ChatResponse, Content, ErrorKind, Message, Role};
use switchyard_router::{Decision, Signals, AUTO};

use crate::config::LogText;
use crate::error::ErrorResponse;
use crate::gateway::Gateway;
use crate::guard::Outbound;
use crate::record::OutcomeSlot;
use execute::{execute, Answer, Answered, Delivery, Trail};

/// Clients name a conversation with this header to keep it on one model.
const CONVERSATION: &str = "x-switchyard-conversation";

/// `switchyard replay` pins the route (by name) and the one model that answers it with these
/// headers, so that every model answers a request the way its route would have it answered.
const PIN_ROUTE: &str = "x-switchyard-pin-route";
const PIN_MODEL: &str = "x-switchyard-pin-model";

/// The response's extension field: `switchyard.sources` (a streamed answer's is in its last
/// chunk).
const SWITCHYARD: &str = "switchyard";

pub async fn completions(
    State(gw): State<Arc<Gateway>>,
    Extension(slot): Extension<OutcomeSlot>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ErrorResponse> {
    let req = parse(body)?;
    let delivery = Delivery::of(&req);
    {
        let mut o = slot.lock();
        o.requested_model.clone_from(&req.model);
        o.stream = delivery == Delivery::Stream;
        o.chat = true;
    }
    let conversation = headers
        .get(CONVERSATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| req.model == AUTO)
        .map(str::to_owned);
    let screening = match &gw.guard {
        Some(guard) => Some(guard.screen(&req).await?),
        None => None,
    };
    let mut signals = signals(&gw, &req, &headers, conversation.as_deref()).await?;
    if let Some(s) = &screening {
        signals.pii = s.kinds().keys().map(|k| k.name().to_owned()).collect();
    }
    let mut decision = gw.router.decide(&req, &signals).map_err(ApiError::from)?;
    if req.model == AUTO {
        let pin = |name| headers.get(name).and_then(|v| v.to_str().ok());
        decision = gw
            .router
            .pin(decision, pin(PIN_ROUTE), pin(PIN_MODEL))
            .map_err(ApiError::from)?;
    }
    let grounding = match (&decision.knowledge, &gw.knowledge) {
        (Some(route), Some(bases)) => {
            let query = retrieval_query(&gw, &decision, &req, screening.as_ref());
            let grounding = crate::knowledge::ground(bases, route, query).await?;
            slot.lock().sources = Some(grounding.log());
            Some(grounding)
        }
        _ => None,
    };
    let passages = match (&grounding, &decision.knowledge) {
        (Some(g), Some(route)) if g.hits.is_empty() && route.escalate_to.is_some() => {
            let to = route.escalate_to.clone().unwrap_or_default();
            decision.reason += &format!(
                "; no passage of knowledge base {} reached min_score {}: escalated to {to}",
                g.base, route.min_score
            );
            decision.ladder = vec![to];
            decision.cascade = false;
            None
        }
        (Some(g), _) => Some(g.prompt()),
        _ => None,
    };
    let mut outbound = match (&gw.guard, &screening) {
        (Some(guard), Some(screening)) => {
            if let Some(kind) = guard.blocked(screening, &decision.route) {
                slot.lock().blocked = Some(kind.label());
                return Err(ErrorResponse(blocked(kind)));
            }
            if gw.log_text == LogText::Redacted {
                slot.lock().text = Some(guard.redacted_text(screening, &req));
            }
            let reachable = execute::reachable(&gw, &decision);
            guard.outbound(screening, req, &decision.route, &reachable)?
        }
        _ => Outbound::unguarded(req),
    };
    // The route's prompt, then the passages: both a prefix the engine's cache can reuse
    // across requests to the route as far as they agree.
    let system: Vec<&str> = [decision.system_prompt.as_deref(), passages.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !system.is_empty() {
        let prompt = system.join("\n\n");
        outbound.edit(|r| put_system_prompt(r, &prompt));
    }
    let mut trail = Trail::default();
    let answered = execute(&gw, &decision, &outbound, delivery, &mut trail).await;
    if let Ok(a) = &answered {
        slot.lock().redacted = outbound.redacted_for(a.model);
    }
    let mut billed = None;
    let req = outbound.original();
    let sources = grounding.as_ref().map(|g| g.sources());
    let response = answered.and_then(|a| render(a, req, delivery, sources, &slot, &mut billed));
    if let (Ok(_), Some(id), Some(conversations)) = (&response, conversation, &gw.conversations) {
        if let Ok(mut c) = conversations.lock() {
            c.put(id, trail.model.clone());
        }
    }
    let features = gw
        .record_features
        .then(|| signals.learned_features())
        .flatten();
    note(&slot, decision, features, trail, billed);
    response
}

/// What to retrieve a route's passages for: the conversation as written when only local
/// models may see the answer's prompt, its redacted text when a model that is not local may
/// (the rungs and fallbacks the decision reaches, and the model it escalates to).
fn retrieval_query(
    gw: &Gateway,
    decision: &Decision,
    req: &ChatRequest,
    screening: Option<&switchyard_guard::screen::Screening>,
) -> String {
    let escalation = decision
        .knowledge
        .as_ref()
        .and_then(|k| k.escalate_to.as_deref())
        .into_iter()
        .flat_map(|to| fallbacks::candidates(gw, to));
    let exposed = execute::reachable(gw, decision)
        .into_iter()
        .chain(escalation)
        .any(|m| !m.local);
    match (&gw.guard, screening) {
        (Some(guard), Some(s)) if exposed && !s.kinds().is_empty() => {
            crate::knowledge::query(&guard.redacted(s, req))
        }
        _ => crate::knowledge::query(req),
    }
}

/// The client's error for personal data the policy blocks: the type, never the value.
fn blocked(kind: switchyard_guard::Kind) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidRequest,
        format!(
            "this request holds personal data of type {} ({}), which the [guard] policy blocks; remove it and send the request again",
            kind.name(),
            kind.label()
        ),
    )
    .with_code("personal_data_blocked")
}

/// A whole answer's usage, the request's total cost and its time upstream (ms), for the
/// outcome.
type Billed = (switchyard_api::Usage, f64, f64);

/// Renders the answer once: a whole answer as JSON (or, for a streamed request, replayed as
/// chunks), a stream as server-sent events.
fn render(
    answered: Answered<'_>,
    req: &ChatRequest,
    delivery: Delivery,
    sources: Option<serde_json::Value>,
    slot: &OutcomeSlot,
    billed: &mut Option<Billed>,
) -> Result<Response, ErrorResponse> {
    let Answered {
        answer,
        model,
        spent,
    } = answered;
    let extension = sources.map(|s| serde_json::json!({ "sources": s }));
    let chunks = match (answer, delivery) {
        (Answer::Whole(mut resp), Delivery::Whole) => {
            if let Some(extension) = extension {
                resp.extra.insert(SWITCHYARD.into(), extension);
            }
            let usage = resp.usage.unwrap_or_default();
            let upstream_ms = spent.since.elapsed().as_secs_f64() * 1e3;
            *billed = Some((usage, spent.with(model, usage), upstream_ms));
            return json(&resp);
        }
        (Answer::Whole(resp), Delivery::Stream) => assemble::replay(resp),
        (Answer::Stream(chunks), _) => chunks,
    };
    let relay = relay::Relay::new(
        chunks,
        slot.clone(),
        model.price,
        spent,
        req.include_usage(),
        extension,
    );
    let mut resp = Body::from_stream(relay.into_sse()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// The request's outcome from its decision and what execution found out, in one write.
fn note(
    slot: &OutcomeSlot,
    decision: Decision,
    features: Option<switchyard_router::data::Features>,
    trail: Trail,
    billed: Option<Billed>,
) {
    let mut o = slot.lock();
    o.chosen = decision.target().to_owned();
    o.route = decision.route;
    o.reason = decision.reason + &trail.reason;
    o.scores = decision.scores;
    o.scores.extend(trail.scores);
    o.features = features;
    o.model = trail.model;
    o.steps = trail.steps;
    if let Some(ms) = trail.upstream_ms {
        o.upstream_ms = Some(ms);
    }
    if let Some((usage, cost, upstream_ms)) = billed {
        o.upstream_ms = Some(upstream_ms);
        o.prompt_tokens = usage.prompt_tokens;
        o.completion_tokens = usage.completion_tokens;
        o.cost_usd = cost;
    }
}

/// The router's inputs: the request's own facts, the metadata rules match on, the
/// conversation's embedding when a route needs it, and the model it was on before.
async fn signals(
    gw: &Gateway,
    req: &ChatRequest,
    headers: &HeaderMap,
    conversation: Option<&str>,
) -> Result<Signals, ApiError> {
    if req.model != AUTO {
        // A named model bypasses the router: nothing to look at.
        return Ok(Signals::default());
    }
    let mut s = Signals::from_request(req);
    for name in &gw.metadata_headers {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            s.metadata.insert(name.as_str().to_owned(), v.to_owned());
        }
    }
    if let (Some(id), Some(conversations)) = (conversation, &gw.conversations) {
        s.previous_model = conversations
            .lock()
            .ok()
            .and_then(|mut c| c.get(id).cloned());
    }
    // Computed once, for the router and, when features are recorded, for the log.
    let wanted = gw.router.needs_embedding() || gw.record_features;
    if let (true, Some(embedder)) = (wanted, &gw.embedder) {
        let text = Signals::text_to_embed(req);
        let embedder = embedder.clone();
        // A few milliseconds of CPU: off the async workers.
        let embedded = tokio::task::spawn_blocking(move || embedder.embed(&[text.as_str()]))
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("embedding task failed: {e}")))?
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Internal,
                    format!("embedding the conversation failed: {e}"),
                )
            })?;
        s.embedding = embedded.vectors.into_iter().next();
    }
    Ok(s)
}

/// A route's system prompt goes first; the client's own system message follows it, so the
/// route's prompt is a stable prefix the local engine's cache can reuse.
fn put_system_prompt(req: &mut ChatRequest, prompt: &str) {
    match req.messages.first_mut() {
        Some(first) if matches!(first.role, Role::System | Role::Developer) => {
            let own = first.text();
            first.content = Some(Content::Text(format!("{prompt}\n\n{own}")));
        }
        _ => req.messages.insert(0, Message::new(Role::System, prompt)),
    }
}

fn parse(body: Result<Bytes, BytesRejection>) -> Result<ChatRequest, ApiError> {
    let req: ChatRequest = crate::body::parse_json(body)?;
    req.validate()?;
    Ok(req)
}

fn json(resp: &ChatResponse) -> Result<Response, ErrorResponse> {
    let body = serde_json::to_vec(resp).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("encoding the answer failed: {e}"),
        )
    })?;
    let mut resp = Body::from(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(messages: serde_json::Value) -> ChatRequest {
        serde_json::from_value(serde_json::json!({"model": "auto", "messages": messages})).unwrap()
    }

    #[test]
    fn a_routes_system_prompt_goes_before_the_clients_own() {
        let mut req = request(serde_json::json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}
        ]));
        put_system_prompt(&mut req, "You are a pirate.");
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[0].text(), "You are a pirate.\n\nBe brief.");

        let mut req = request(serde_json::json!([{"role": "user", "content": "Hi"}]));
        put_system_prompt(&mut req, "You are a pirate.");
        assert_eq!(req.messages.len(), 2);
        assert!(matches!(req.messages[0].role, Role::System));
        assert_eq!(req.messages[0].text(), "You are a pirate.");
    }
}
