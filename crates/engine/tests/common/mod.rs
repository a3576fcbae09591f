//! Helpers shared by the engine's test files.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use switchyard_engine::{
    ChatTurn, Engine, EngineConfig, Event, FinishReason, GenerateRequest, Generation, Token,
};

/// A model file from the models folder; panics saying how to fetch it when it is missing.
fn model(name: &str) -> PathBuf {
    switchyard_models::find(name).unwrap_or_else(|missing| panic!("{missing}"))
}

pub fn tiny_path() -> PathBuf {
    model("tiny.gguf")
}

pub fn smollm2_path() -> PathBuf {
    model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The 2-layer test model with `slots` slots, one thread (tests run side by side).
pub fn tiny(slots: usize, queue: usize) -> Engine {
    Engine::load(EngineConfig {
        threads: Some(1),
        context_tokens: 512 * slots as u32,
        slots,
        queue,
        ..EngineConfig::new(tiny_path())
    })
    .expect("tiny.gguf loads (run scripts/fetch-models.sh if it is missing)")
}

pub fn ask(question: &str) -> Vec<ChatTurn> {
    vec![ChatTurn::new("user", question)]
}

/// A deterministic request: greedy, `max_tokens` tokens at most.
pub fn greedy(question: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: ask(question),
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..GenerateRequest::default()
    }
}

/// Everything a generation reported.
#[derive(Debug)]
pub struct Outcome {
    pub tokens: Vec<Token>,
    pub text: String,
    pub finish_reason: FinishReason,
    pub completion_tokens: u32,
    pub prompt_tokens: u32,
}

/// Reads a generation to its end; panics on failure or after a minute.
pub async fn collect(mut generation: Generation) -> Outcome {
    let mut tokens = Vec::new();
    let read = async {
        while let Some(event) = generation.events.recv().await {
            match event {
                Event::Token(t) => tokens.push(t),
                Event::Done {
                    finish_reason,
                    completion_tokens,
                    prompt_tokens,
                    ..
                } => return (finish_reason, completion_tokens, prompt_tokens),
                Event::Failed(e) => panic!("generation failed: {e}"),
            }
        }
        panic!("event stream ended without Done");
    };
    let (finish_reason, completion_tokens, prompt_tokens) =
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("generation finishes within a minute");
    Outcome {
        text: tokens.iter().map(|t| t.text.as_str()).collect(),
        tokens,
        finish_reason,
        completion_tokens,
        prompt_tokens,
    }
}
