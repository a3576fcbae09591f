//! `POST /v1/chat/completions`: parse → route → execute (with fallbacks) → answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::future::BoxFuture;
use futures::StreamExt;
use switchyard_api::{
    ApiError, ChatChunk, ChatRequest, ChatResponse, Content, Delta, ErrorKind, Logprobs, Message,
    Role, StreamOptions, TokenLogprob, Usage,
};
use switchyard_providers::{ChunkStream, ProviderError};
use switchyard_router::confidence::{AnswerSignals, Calibration};
use switchyard_router::logged::Step as CascadeStep;
use switchyard_router::{Decision, Signals, AUTO};

use crate::config::Price;
use crate::error::ErrorResponse;
use crate::gateway::{Gateway, Model};
use crate::record::OutcomeSlot;

/// Clients name a conversation with this header to keep it on one model.
const CONVERSATION: &str = "x-switchyard-conversation";

pub async fn completions(
    State(gw): State<Arc<Gateway>>,
    Extension(slot): Extension<OutcomeSlot>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ErrorResponse> {
    let mut req = parse(body)?;
    {
        let mut o = slot.lock();
        o.requested_model.clone_from(&req.model);
        o.stream = req.is_stream();
    }
    let conversation = headers
        .get(CONVERSATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| req.model == AUTO)
        .map(str::to_owned);
    let signals = signals(&gw, &req, &headers, conversation.as_deref()).await?;
    let decision = gw.router.decide(&req, &signals).map_err(ApiError::from)?;
    {
        let mut o = slot.lock();
        o.route.clone_from(&decision.route);
        o.reason.clone_from(&decision.reason);
        o.scores.clone_from(&decision.scores);
        if gw.record_features {
            o.features = signals.learned_features();
        }
    }
    if let Some(prompt) = &decision.system_prompt {
        put_system_prompt(&mut req, prompt);
    }
    let answer = match decision.cascade {
        true => {
            let threshold = decision
                .confidence_threshold
                .unwrap_or(gw.calibration.threshold);
            cascade(&gw, &slot, &decision, threshold, req).await
        }
        false if req.is_stream() => {
            stream(&gw, &slot, decision.target(), req, Spent::nothing()).await
        }
        false => complete(&gw, &slot, decision.target(), req, Spent::nothing()).await,
    };
    if let (Ok(_), Some(id), Some(conversations)) = (&answer, conversation, &gw.conversations) {
        let model = slot.lock().model.clone();
        if let Ok(mut c) = conversations.lock() {
            c.put(id, model);
        }
    }
    answer
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

/// The models to try for one rung, in order: the rung's model, then its configured fallbacks.
fn candidates<'g>(gw: &'g Gateway, rung: &str) -> Vec<&'g Model> {
    let mut out = Vec::with_capacity(2);
    if let Some(m) = gw.models.get(rung) {
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

/// Where an answer stands when its last rung is asked: when the first model was called, and
/// what earlier cascade rungs cost.
struct Spent {
    since: Instant,
    cost_usd: f64,
}

impl Spent {
    fn nothing() -> Spent {
        Spent {
            since: Instant::now(),
            cost_usd: 0.0,
        }
    }
}

/// Asks the rung's model, then its fallbacks in order, until one answers.
async fn first_answer<'g, T>(
    gw: &'g Gateway,
    slot: &OutcomeSlot,
    rung: &str,
    since: Instant,
    ask: impl Fn(&'g Model) -> BoxFuture<'g, Result<T, ProviderError>>,
) -> Result<(T, &'g Model), ErrorResponse> {
    let mut last = None;
    for (i, model) in candidates(gw, rung).into_iter().enumerate() {
        match ask(model).await {
            Ok(answer) => {
                answered_by(slot, model, i == 0);
                return Ok((answer, model));
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
    slot.lock().upstream_ms = Some(since.elapsed().as_secs_f64() * 1e3);
    Err(last.map(failure).unwrap_or_else(|| no_model(rung)))
}

async fn complete(
    gw: &Gateway,
    slot: &OutcomeSlot,
    rung: &str,
    req: ChatRequest,
    spent: Spent,
) -> Result<Response, ErrorResponse> {
    let (resp, model) =
        first_answer(gw, slot, rung, spent.since, |m| m.provider.complete(&req)).await?;
    let usage = resp.usage.unwrap_or_default();
    let cost = model
        .price
        .cost(usage.prompt_tokens, usage.completion_tokens);
    slot.lock()
        .answered(spent.since, usage, spent.cost_usd + cost);
    json(&resp)
}

fn no_model(rung: &str) -> ErrorResponse {
    ErrorResponse(ApiError::new(
        ErrorKind::Internal,
        format!("the router chose `{rung}`, which is not configured"),
    ))
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

async fn stream(
    gw: &Gateway,
    slot: &OutcomeSlot,
    rung: &str,
    req: ChatRequest,
    spent: Spent,
) -> Result<Response, ErrorResponse> {
    let (chunks, model) =
        first_answer(gw, slot, rung, spent.since, |m| m.provider.stream(&req)).await?;
    Ok(sse(chunks, slot, model, &req, spent))
}

fn sse(
    chunks: ChunkStream,
    slot: &OutcomeSlot,
    model: &Model,
    req: &ChatRequest,
    spent: Spent,
) -> Response {
    let relay = Relay {
        chunks,
        slot: slot.clone(),
        price: model.price,
        earlier_cost: spent.cost_usd,
        include_usage: req.include_usage(),
        upstream_start: spent.since,
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
    resp
}

/// The cascade: each rung but the last answers with logprobs, and its answer is kept only when
/// its calibrated confidence reaches the threshold; otherwise the next rung is asked.
///
/// With a calibration fitted on whole answers, a rung answers in full and a streamed request is
/// held until it is judged, then replayed as chunks. With one fitted on the first K tokens
/// (`prefix_tokens`), a rung streams and is judged on its first K tokens ([`judge_prefix`]).
/// The last rung streams live.
async fn cascade(
    gw: &Gateway,
    slot: &OutcomeSlot,
    decision: &Decision,
    threshold: f64,
    req: ChatRequest,
) -> Result<Response, ErrorResponse> {
    let mut spent = Spent::nothing();
    let Some((last, earlier)) = decision.ladder.split_last() else {
        return Err(no_model(""));
    };
    for rung in earlier {
        let Some(model) = gw.models.get(rung) else {
            continue;
        };
        if let Some(k) = gw.calibration.prefix_tokens {
            let rung = Rung {
                name: rung,
                model,
                calibration: &gw.calibration,
                threshold,
            };
            match judge_prefix(slot, &rung, k, &req, &mut spent).await {
                Some(answer) => return answer,
                None => continue,
            }
        }
        let mut probe = req.clone();
        probe.stream = None;
        probe.stream_options = None;
        probe.logprobs = Some(true);
        probe.top_logprobs = Some(req.top_logprobs.unwrap_or(0).max(5));
        let mut resp = match model.provider.complete(&probe).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(model = %rung, error = %e, "cascade rung failed");
                let step = CascadeStep::Failed.describe(rung);
                slot.lock().reason.push_str(&format!("; {step}"));
                continue;
            }
        };
        let usage = resp.usage.unwrap_or_default();
        let earlier_cost = spent.cost_usd;
        spent.cost_usd += model
            .price
            .cost(usage.prompt_tokens, usage.completion_tokens);
        let confidence = confidence(&gw.calibration, &resp);
        let keep = confidence.is_none_or(|p| p >= threshold);
        {
            let mut o = slot.lock();
            let step = match confidence {
                Some(p) => {
                    o.scores.insert(format!("confidence.{rung}"), p);
                    CascadeStep::Judged {
                        confidence: p,
                        threshold,
                        kept: keep,
                    }
                }
                None => CascadeStep::Unjudged,
            };
            o.reason.push_str(&format!("; {}", step.describe(rung)));
            if keep {
                o.model.clone_from(rung);
                o.answered(spent.since, usage, spent.cost_usd);
            }
        }
        if !keep {
            continue;
        }
        fit_logprobs(&mut resp, &req);
        if req.is_stream() {
            // The replayed usage chunk adds this rung's own cost again.
            let before = Spent {
                since: spent.since,
                cost_usd: earlier_cost,
            };
            return Ok(sse(replay(resp), slot, model, &req, before));
        }
        return json(&resp);
    }
    if req.is_stream() {
        stream(gw, slot, last, req, spent).await
    } else {
        complete(gw, slot, last, req, spent).await
    }
}

/// One cascade rung being judged.
struct Rung<'g> {
    name: &'g str,
    model: &'g Model,
    calibration: &'g Calibration,
    threshold: f64,
}

/// Notes a cascade rung that failed to answer; the cascade goes on up the ladder.
fn rung_failed(slot: &OutcomeSlot, rung: &str, e: &ProviderError) {
    tracing::warn!(model = %rung, error = %e, "cascade rung failed");
    let step = CascadeStep::Failed.describe(rung);
    slot.lock().reason.push_str(&format!("; {step}"));
}

/// A rung judged on the first `k` tokens of its stream (the calibration was fitted on prefixes
/// of that length). The rung streams with logprobs and usage; its chunks are held until `k`
/// content tokens carried logprobs or the stream ended, and those tokens are judged. Kept: a
/// streamed request gets the held chunks and then the rest of the live stream, a non-streamed
/// one the whole answer assembled from the chunks. Escalated: the stream is dropped, which
/// stops the rung's generation, and `None` sends the cascade to the next rung (as does a
/// failure).
async fn judge_prefix(
    slot: &OutcomeSlot,
    rung: &Rung<'_>,
    k: usize,
    req: &ChatRequest,
    spent: &mut Spent,
) -> Option<Result<Response, ErrorResponse>> {
    let mut probe = req.clone();
    probe.stream = Some(true);
    probe.stream_options = Some(StreamOptions {
        include_usage: true,
    });
    probe.logprobs = Some(true);
    probe.top_logprobs = Some(req.top_logprobs.unwrap_or(0).max(5));
    let mut chunks = match rung.model.provider.stream(&probe).await {
        Ok(chunks) => chunks,
        Err(e) => {
            rung_failed(slot, rung.name, &e);
            return None;
        }
    };
    let mut held = Vec::new();
    let mut tokens: Vec<TokenLogprob> = Vec::new();
    let mut cut = false;
    while tokens.len() < k {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                for choice in chunk.choices.iter().filter(|c| c.index == 0) {
                    if let Some(lps) = choice.logprobs.as_ref().and_then(|l| l.content.as_ref()) {
                        tokens.extend(lps.iter().cloned());
                    }
                    cut |= choice.finish_reason.as_deref() == Some("length");
                }
                held.push(chunk);
            }
            Some(Err(e)) => {
                rung_failed(slot, rung.name, &e);
                return None;
            }
            None => break,
        }
    }
    // As `switchyard calibrate --prefix-tokens` fits it: truncated only when the answer was cut
    // by the token limit before its k-th token.
    let truncated = cut && tokens.len() < k;
    tokens.truncate(k);
    let confidence = (!tokens.is_empty()).then(|| {
        rung.calibration
            .probability(&AnswerSignals::from_logprobs(&tokens, truncated))
    });
    let keep = confidence.is_none_or(|p| p >= rung.threshold);
    {
        let mut o = slot.lock();
        let step = match confidence {
            Some(p) => {
                o.scores.insert(format!("confidence.{}", rung.name), p);
                CascadeStep::Judged {
                    confidence: p,
                    threshold: rung.threshold,
                    kept: keep,
                }
            }
            None => CascadeStep::Unjudged,
        };
        o.reason
            .push_str(&format!("; {}", step.describe(rung.name)));
        if keep {
            o.model = rung.name.to_owned();
        }
    }
    if !keep {
        drop(chunks);
        // What the dropped stream had generated: its usage when it ended within the prefix,
        // else the tokens read (the prompt's share of an unfinished stream is not reported).
        let usage = held.iter().find_map(|c| c.usage);
        let (prompt, completion) = usage.map_or((0, tokens.len() as u32), |u| {
            (u.prompt_tokens, u.completion_tokens)
        });
        spent.cost_usd += rung.model.price.cost(prompt, completion);
        return None;
    }
    let before = Spent {
        since: spent.since,
        cost_usd: spent.cost_usd,
    };
    if req.is_stream() {
        let (logprobs, top) = wanted_logprobs(req);
        let live = futures::stream::iter(held.into_iter().map(Ok))
            .chain(chunks)
            .map(move |chunk| {
                chunk.map(|mut chunk| {
                    for choice in &mut chunk.choices {
                        fit_choice_logprobs(&mut choice.logprobs, logprobs, top);
                    }
                    chunk
                })
            });
        return Some(Ok(sse(Box::pin(live), slot, rung.model, req, before)));
    }
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => held.push(chunk),
            Err(e) => {
                rung_failed(slot, rung.name, &e);
                spent.cost_usd += rung.model.price.cost(0, tokens.len() as u32);
                return None;
            }
        }
    }
    let mut resp = assemble(held);
    let usage = resp.usage.unwrap_or_default();
    spent.cost_usd += rung
        .model
        .price
        .cost(usage.prompt_tokens, usage.completion_tokens);
    slot.lock().answered(spent.since, usage, spent.cost_usd);
    fit_logprobs(&mut resp, req);
    Some(json(&resp))
}

/// The answer a stream carried, as one response: its first choice's content, tool calls,
/// logprobs and finish reason, and the usage.
fn assemble(chunks: Vec<ChatChunk>) -> ChatResponse {
    let (id, created, model) = chunks.first().map_or_else(
        || (String::new(), 0, String::new()),
        |c| (c.id.clone(), c.created, c.model.clone()),
    );
    let mut content = String::new();
    let mut logprobs: Vec<TokenLogprob> = Vec::new();
    let mut tool_calls: Vec<serde_json::Value> = Vec::new();
    let mut finish = None;
    let mut usage: Option<Usage> = None;
    for chunk in chunks {
        usage = chunk.usage.or(usage);
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            content.push_str(choice.delta.content.as_deref().unwrap_or(""));
            if let Some(lps) = choice.logprobs.and_then(|l| l.content) {
                logprobs.extend(lps);
            }
            for call in choice.delta.tool_calls.into_iter().flatten() {
                merge_tool_call(&mut tool_calls, call);
            }
            finish = choice.finish_reason.or(finish);
        }
    }
    let finish = finish.unwrap_or_else(|| "stop".to_owned());
    let mut resp = ChatResponse::text(&id, created, &model, content, &finish, Usage::default());
    resp.usage = usage;
    let choice = &mut resp.choices[0];
    if !logprobs.is_empty() {
        choice.logprobs = Some(Logprobs {
            content: Some(logprobs),
        });
    }
    if !tool_calls.is_empty() {
        choice.message.tool_calls = Some(tool_calls);
    }
    resp
}

/// Streamed tool calls come in pieces sharing an `index`: the first names the call, the rest
/// add to its `function.arguments`.
fn merge_tool_call(calls: &mut Vec<serde_json::Value>, piece: serde_json::Value) {
    let index = piece.get("index").cloned();
    let Some(call) = calls
        .iter_mut()
        .find(|c| index.is_some() && c.get("index") == index.as_ref())
    else {
        calls.push(piece);
        return;
    };
    let more = piece
        .pointer("/function/arguments")
        .and_then(|a| a.as_str())
        .unwrap_or("");
    if let Some(args) = call.pointer_mut("/function/arguments") {
        let joined = format!("{}{more}", args.as_str().unwrap_or(""));
        *args = serde_json::Value::String(joined);
    }
}

/// P(the answer is good), from its token logprobs; none when it came without them.
fn confidence(calibration: &Calibration, resp: &ChatResponse) -> Option<f64> {
    let choice = resp.choices.first()?;
    let tokens = choice.logprobs.as_ref()?.content.as_ref()?;
    if tokens.is_empty() {
        return None;
    }
    let truncated = choice.finish_reason.as_deref() == Some("length");
    Some(calibration.probability(&AnswerSignals::from_logprobs(tokens, truncated)))
}

/// The cascade asked for logprobs to judge the answer; give the client only what it asked for.
fn fit_logprobs(resp: &mut ChatResponse, req: &ChatRequest) {
    let (logprobs, top) = wanted_logprobs(req);
    for choice in &mut resp.choices {
        fit_choice_logprobs(&mut choice.logprobs, logprobs, top);
    }
}

/// Whether the client asked for logprobs, and for how many alternatives per token.
fn wanted_logprobs(req: &ChatRequest) -> (bool, usize) {
    (
        req.logprobs == Some(true),
        usize::from(req.top_logprobs.unwrap_or(0)),
    )
}

fn fit_choice_logprobs(logprobs: &mut Option<Logprobs>, wanted: bool, top: usize) {
    if !wanted {
        *logprobs = None;
    } else if let Some(tokens) = logprobs.as_mut().and_then(|l| l.content.as_mut()) {
        for t in tokens {
            t.top_logprobs.truncate(top);
        }
    }
}

/// A held answer as the chunks a stream would have carried.
fn replay(resp: ChatResponse) -> ChunkStream {
    let (id, created, model) = (resp.id.as_str(), resp.created, resp.model.as_str());
    let mut chunks = Vec::new();
    if let Some(choice) = resp.choices.first() {
        let mut c = ChatChunk::delta(
            id,
            created,
            model,
            Delta {
                role: Some(Role::Assistant),
                content: choice.message.content.clone(),
                tool_calls: choice.message.tool_calls.clone(),
            },
        );
        c.choices[0].logprobs = choice.logprobs.clone();
        chunks.push(Ok(c));
        let reason = choice.finish_reason.as_deref().unwrap_or("stop");
        chunks.push(Ok(ChatChunk::finish(id, created, model, reason)));
    }
    if let Some(u) = resp.usage {
        chunks.push(Ok(ChatChunk::usage(id, created, model, u)));
    }
    Box::pin(futures::stream::iter(chunks))
}

/// Forwards upstream chunks as server-sent events, noting usage and time to first token.
struct Relay {
    chunks: ChunkStream,
    slot: OutcomeSlot,
    price: Price,
    /// What earlier cascade rungs cost, added to this answer's own cost.
    earlier_cost: f64,
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
            o.cost_usd = self.earlier_cost + self.price.cost(u.prompt_tokens, u.completion_tokens);
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
