//! The executor: answers a routed request with a whole answer or a stream (a cascade, or one
//! rung with its fallbacks), and keeps a [`Trail`] of what happened for the request's outcome.
//! It renders nothing: the handler does, once.

use std::time::Instant;

use switchyard_api::{ChatRequest, ChatResponse, Usage};
use switchyard_providers::ChunkStream;
use switchyard_router::Decision;

use super::{cascade, fallbacks};
use crate::error::ErrorResponse;
use crate::gateway::{Gateway, Model};
use crate::guard::Outbound;

/// What the client asked for: one whole answer, or a stream of chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Whole,
    Stream,
}

impl Delivery {
    pub fn of(req: &ChatRequest) -> Delivery {
        if req.is_stream() {
            Delivery::Stream
        } else {
            Delivery::Whole
        }
    }
}

/// An answer: whole, or a stream to relay. A request for a whole answer always gets a whole
/// one; a streamed request may get either (a cascade's held answer is replayed as chunks).
pub enum Answer {
    Whole(ChatResponse),
    Stream(ChunkStream),
}

/// An answer, the model that gave it (whose price bills its usage), and what the request had
/// spent before it.
pub struct Answered<'g> {
    pub answer: Answer,
    pub model: &'g Model,
    pub spent: Spent,
}

/// Where a request stands when a model is asked: when the first model was called, and what
/// earlier cascade rungs cost.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    pub since: Instant,
    pub cost_usd: f64,
}

impl Spent {
    pub fn nothing() -> Spent {
        Spent {
            since: Instant::now(),
            cost_usd: 0.0,
        }
    }

    /// The request's cost once `model` answered with `usage`.
    pub fn with(&self, model: &Model, usage: Usage) -> f64 {
        self.cost_usd
            + model
                .price
                .cost(usage.prompt_tokens, usage.completion_tokens)
    }
}

/// What answering found out, for the request's outcome (written once, by the handler).
#[derive(Debug, Default)]
pub struct Trail {
    /// The model that answered; empty when none did.
    pub model: String,
    /// What happened after the decision, appended to its reason (failures, fallbacks, cascade
    /// steps), in order.
    pub reason: String,
    /// Cascade confidences, `confidence.<rung>`.
    pub scores: Vec<(String, f64)>,
    /// Each cascade rung judged or failed, in order.
    pub steps: Vec<switchyard_router::logged::Rung>,
    /// Time upstream, when no answer came to measure it on.
    pub upstream_ms: Option<f64>,
}

impl Trail {
    pub fn note(&mut self, text: &str) {
        self.reason.push_str(text);
    }

    /// A model the guard's policy keeps the request from was passed over.
    pub fn skipped(&mut self, model: &str) {
        self.note(&format!(
            "; {model} skipped: the guard's policy keeps the request from it"
        ));
    }
}

/// Every model the decision may ask: its rungs (all of a cascade's, else the first) and their
/// fallbacks, each once, in order.
pub fn reachable<'g>(gw: &'g Gateway, decision: &Decision) -> Vec<&'g Model> {
    let rungs = if decision.cascade {
        &decision.ladder[..]
    } else {
        &decision.ladder[..decision.ladder.len().min(1)]
    };
    let mut out: Vec<&Model> = Vec::new();
    for rung in rungs {
        for m in fallbacks::candidates(gw, rung) {
            if !out.iter().any(|o| o.name == m.name) {
                out.push(m);
            }
        }
    }
    out
}

/// Answers the request as the decision says.
pub async fn execute<'g>(
    gw: &'g Gateway,
    decision: &Decision,
    outbound: &Outbound,
    delivery: Delivery,
    trail: &mut Trail,
) -> Result<Answered<'g>, ErrorResponse> {
    if decision.cascade {
        let threshold = decision
            .confidence_threshold
            .unwrap_or(gw.calibration.threshold);
        cascade::run(gw, &decision.ladder, threshold, outbound, delivery, trail).await
    } else {
        one_rung(
            gw,
            decision.target(),
            outbound,
            delivery,
            Spent::nothing(),
            trail,
        )
        .await
    }
}

/// One rung with its fallbacks, as the client asked: a whole answer or a stream.
pub async fn one_rung<'g>(
    gw: &'g Gateway,
    rung: &str,
    outbound: &Outbound,
    delivery: Delivery,
    spent: Spent,
    trail: &mut Trail,
) -> Result<Answered<'g>, ErrorResponse> {
    let mut candidates = fallbacks::candidates(gw, rung);
    let configured = !candidates.is_empty();
    candidates.retain(|m| {
        let admitted = outbound.admits(m);
        if !admitted {
            trail.skipped(&m.name);
        }
        admitted
    });
    if configured && candidates.is_empty() {
        return Err(ErrorResponse(crate::guard::refused(&format!(
            "the guard's policy keeps this request from `{rung}` and its fallbacks; send it without the personal data, or change the [guard] policy"
        ))));
    }
    let answered = match delivery {
        Delivery::Whole => {
            fallbacks::first_answer(rung, &candidates, trail, |m| Box::pin(outbound.complete(m)))
                .await
                .map(|(resp, model)| (Answer::Whole(resp), model))
        }
        Delivery::Stream => {
            fallbacks::first_answer(rung, &candidates, trail, |m| Box::pin(outbound.stream(m)))
                .await
                .map(|(chunks, model)| (Answer::Stream(chunks), model))
        }
    };
    match answered {
        Ok((answer, model)) => Ok(Answered {
            answer,
            model,
            spent,
        }),
        Err(exhausted) => {
            trail.upstream_ms = Some(spent.since.elapsed().as_secs_f64() * 1e3);
            Err(ErrorResponse(exhausted.to_api_error()))
        }
    }
}
