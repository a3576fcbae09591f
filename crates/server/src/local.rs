//! `provider = "local"`: the in-process llama.cpp engine behind the same [`Provider`] trait as
//! upstreams, so routing, fallbacks, streaming, logging and cost work the same for both.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use switchyard_api::{
    ChatChunk, ChatRequest, ChatResponse, Delta, Logprobs, Role, TokenLogprob, TopLogprob, Usage,
};
use switchyard_engine::{
    ChatTurn, Engine, EngineConfig, EngineError, Event, FinishReason, GenerateRequest, Token,
};
use switchyard_providers::{ChunkStream, Provider, ProviderError};

use crate::config::ModelConfig;

/// Loads a `provider = "local"` model; the server's [`crate::LocalLoader`] for real use.
pub fn load_local(name: &str, m: &ModelConfig) -> Result<Arc<dyn Provider>, String> {
    let path = m
        .path
        .clone()
        .ok_or_else(|| "provider = \"local\" needs `path` to a GGUF file".to_owned())?;
    let mut cfg = EngineConfig::new(path);
    cfg.threads = m.threads;
    if let Some(slots) = m.slots {
        cfg.slots = slots;
    }
    if let Some(ctx) = m.context_tokens {
        cfg.context_tokens = ctx;
    }
    if let Some(queue) = m.queue {
        cfg.queue = queue;
    }
    let engine = Engine::load(cfg).map_err(|e| e.to_string())?;
    tracing::info!(
        model = name,
        file = engine.model_name(),
        "local model loaded"
    );
    Ok(Arc::new(LocalModel {
        engine,
        name: name.to_owned(),
    }))
}

pub struct LocalModel {
    engine: Engine,
    name: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn to_generate(req: &ChatRequest) -> GenerateRequest {
    GenerateRequest {
        messages: req
            .messages
            .iter()
            .map(|m| ChatTurn::new(m.role.as_str(), m.text()))
            .collect(),
        max_tokens: req.max_output_tokens(),
        temperature: req.temperature,
        top_p: req.top_p,
        seed: req.seed.map(|s| s as u64),
        stop: req.stop_sequences(),
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        top_logprobs: (req.logprobs == Some(true)).then(|| req.top_logprobs.unwrap_or(0)),
    }
}

fn engine_error(model: &str, e: EngineError) -> ProviderError {
    let status = match &e {
        EngineError::Busy { .. } => 429,
        EngineError::InvalidRequest(_) | EngineError::PromptTooLong { .. } => 400,
        _ => 500,
    };
    ProviderError::Local {
        model: model.to_owned(),
        status,
        message: e.to_string(),
    }
}

/// An engine token in OpenAI's logprobs shape.
pub fn token_logprob(t: &Token) -> TokenLogprob {
    TokenLogprob {
        token: String::from_utf8_lossy(&t.bytes).into_owned(),
        logprob: t.logprob,
        bytes: Some(t.bytes.clone()),
        top_logprobs: t
            .top_logprobs
            .iter()
            .map(|(token, logprob)| TopLogprob {
                token: token.clone(),
                logprob: *logprob,
                bytes: Some(token.as_bytes().to_vec()),
            })
            .collect(),
    }
}

fn finish_reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

#[async_trait]
impl Provider for LocalModel {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let want_logprobs = req.logprobs == Some(true);
        let mut generation = self
            .engine
            .generate(to_generate(req))
            .map_err(|e| engine_error(&self.name, e))?;
        let mut text = String::new();
        let mut logprobs = Vec::new();
        while let Some(event) = generation.events.recv().await {
            match event {
                Event::Token(t) => {
                    text.push_str(&t.text);
                    if want_logprobs {
                        logprobs.push(token_logprob(&t));
                    }
                }
                Event::Done {
                    finish_reason: reason,
                    completion_tokens,
                    prompt_tokens,
                    cached_prompt_tokens,
                } => {
                    let mut resp = ChatResponse::text(
                        &completion_id(),
                        unix_now(),
                        &self.name,
                        text,
                        finish_reason(reason),
                        Usage::new(prompt_tokens, completion_tokens)
                            .with_cached_prompt_tokens(cached_prompt_tokens),
                    );
                    if want_logprobs {
                        resp.choices[0].logprobs = Some(Logprobs {
                            content: Some(logprobs),
                        });
                    }
                    return Ok(resp);
                }
                Event::Failed(e) => return Err(engine_error(&self.name, e)),
            }
        }
        Err(engine_error(&self.name, EngineError::Stopped))
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let generation = self
            .engine
            .generate(to_generate(req))
            .map_err(|e| engine_error(&self.name, e))?;
        let mut relay = Relay {
            events: generation.events,
            pending: VecDeque::new(),
            ended: false,
            id: completion_id(),
            created: unix_now(),
            name: self.name.clone(),
            want_logprobs: req.logprobs == Some(true),
        };
        relay.pending.push_back(Ok(relay.chunk(Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            tool_calls: None,
        })));
        Ok(Box::pin(futures::stream::unfold(
            relay,
            |mut relay| async move { relay.next().await.map(|item| (item, relay)) },
        )))
    }
}

/// Turns engine events into OpenAI chunks; a generation that ends without `Done` is an error.
struct Relay {
    events: tokio::sync::mpsc::Receiver<Event>,
    pending: VecDeque<Result<ChatChunk, ProviderError>>,
    ended: bool,
    id: String,
    created: u64,
    name: String,
    want_logprobs: bool,
}

impl Relay {
    fn chunk(&self, delta: Delta) -> ChatChunk {
        ChatChunk::delta(&self.id, self.created, &self.name, delta)
    }

    async fn next(&mut self) -> Option<Result<ChatChunk, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.events.recv().await {
                Some(Event::Token(t)) if t.text.is_empty() && !self.want_logprobs => {}
                Some(Event::Token(t)) => {
                    let mut c = self.chunk(Delta {
                        content: Some(t.text.clone()),
                        ..Delta::default()
                    });
                    if self.want_logprobs {
                        c.choices[0].logprobs = Some(Logprobs {
                            content: Some(vec![token_logprob(&t)]),
                        });
                    }
                    self.pending.push_back(Ok(c));
                }
                Some(Event::Done {
                    finish_reason: reason,
                    completion_tokens,
                    prompt_tokens,
                    cached_prompt_tokens,
                }) => {
                    self.ended = true;
                    let (id, created, name) = (&self.id, self.created, &self.name);
                    self.pending.push_back(Ok(ChatChunk::finish(
                        id,
                        created,
                        name,
                        finish_reason(reason),
                    )));
                    self.pending.push_back(Ok(ChatChunk::usage(
                        id,
                        created,
                        name,
                        Usage::new(prompt_tokens, completion_tokens)
                            .with_cached_prompt_tokens(cached_prompt_tokens),
                    )));
                }
                Some(Event::Failed(e)) => {
                    self.ended = true;
                    self.pending.push_back(Err(engine_error(&self.name, e)));
                }
                None => {
                    self.ended = true;
                    self.pending
                        .push_back(Err(engine_error(&self.name, EngineError::Stopped)));
                }
            }
        }
    }
}
