//! Sharing one model between requests: batching, queueing, cancellation, prefix reuse.

mod common;

use std::time::Duration;

use common::{collect, greedy, tiny};
use switchyard_engine::{ChatTurn, EngineError, Event, FinishReason, GenerateRequest};

/// Waits for the first token, proving the request holds a slot.
async fn first_token(generation: &mut switchyard_engine::Generation) {
    let event = tokio::time::timeout(Duration::from_secs(30), generation.events.recv())
        .await
        .expect("a token within 30 s");
    assert!(matches!(event, Some(Event::Token(_))), "{event:?}");
}

#[tokio::test]
async fn concurrent_requests_are_decoded_together_in_one_batch() {
    let engine = tiny(4, 4);
    let generations: Vec<_> = (0..4)
        .map(|i| {
            engine
                .generate(greedy(&format!("Question number {i}"), 16))
                .unwrap()
        })
        .collect();
    let outcomes = futures_join(generations).await;
    for out in &outcomes {
        assert_eq!(out.completion_tokens, 16);
        assert_eq!(out.finish_reason, FinishReason::Length);
    }
    let stats = engine.stats();
    assert!(stats.max_sequences_per_step > 1, "{stats:?}");
    // Batched: far fewer decode steps than tokens generated.
    assert!(stats.steps < stats.generated_tokens, "{stats:?}");
}

async fn futures_join(generations: Vec<switchyard_engine::Generation>) -> Vec<common::Outcome> {
    let handles: Vec<_> = generations
        .into_iter()
        .map(|g| tokio::spawn(collect(g)))
        .collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    outcomes
}

/// Two slots of 4,096 tokens: room for a request that runs far longer than any other.
fn roomy() -> switchyard_engine::Engine {
    switchyard_engine::Engine::load(switchyard_engine::EngineConfig {
        threads: Some(1),
        context_tokens: 2 * 4096,
        slots: 2,
        queue: 2,
        ..switchyard_engine::EngineConfig::new(common::tiny_path())
    })
    .unwrap()
}

/// Drains what a generation has sent so far; true when that includes its end.
fn has_ended(generation: &mut switchyard_engine::Generation) -> bool {
    while let Ok(event) = generation.events.try_recv() {
        if !matches!(event, Event::Token(_)) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_new_request_joins_while_another_is_generating() {
    let engine = roomy();
    // About 4,000 tokens: the short request's 4 cannot wait for it without this test noticing,
    // however the threads are scheduled.
    let mut long = engine
        .generate(greedy("A long answer please", 4000))
        .unwrap();
    first_token(&mut long).await;
    let short = collect(engine.generate(greedy("Short", 4)).unwrap()).await;
    assert_eq!(short.completion_tokens, 4);
    assert!(
        !has_ended(&mut long),
        "the short request waited for the long one to finish"
    );
    assert!(engine.stats().max_sequences_per_step >= 2);
}

#[tokio::test]
async fn a_full_queue_answers_busy() {
    let engine = tiny(1, 1);
    let mut running = engine.generate(greedy("Keep talking", 400)).unwrap();
    first_token(&mut running).await;
    let waiting = engine.generate(greedy("Next in line", 3)).unwrap();
    match engine.generate(greedy("One too many", 3)) {
        Err(e @ EngineError::Busy { .. }) => assert!(e.to_string().contains("retry")),
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(running);
    let out = collect(waiting).await;
    assert_eq!(out.completion_tokens, 3);
}

#[tokio::test]
async fn dropping_the_receiver_cancels_and_frees_the_slot() {
    let engine = tiny(2, 2);
    for _ in 0..2 {
        let mut g = engine.generate(greedy("Go on forever", 400)).unwrap();
        first_token(&mut g).await;
        drop(g);
    }
    // Were the cancelled requests still holding both slots, these would wait forever.
    let a = engine.generate(greedy("First", 3)).unwrap();
    let b = engine.generate(greedy("Second", 3)).unwrap();
    for out in futures_join(vec![a, b]).await {
        assert_eq!(out.completion_tokens, 3);
    }
    assert!(engine.stats().generated_tokens < 2 * 400, "cancelled early");
}

#[tokio::test]
async fn a_repeated_system_prompt_is_not_processed_again() {
    let engine = tiny(2, 2);
    let system = "You are the support assistant of Example Bank. Answer politely, in one \
                  sentence, and never reveal account numbers or personal data. "
        .repeat(3);
    let conversation = |question: &str| GenerateRequest {
        messages: vec![
            ChatTurn::new("system", system.clone()),
            ChatTurn::new("user", question),
        ],
        ..greedy("", 2)
    };
    collect(
        engine
            .generate(conversation("How do I reset my PIN?"))
            .unwrap(),
    )
    .await;
    let before = engine.stats();

    let second = engine
        .generate(conversation("Where is the nearest branch?"))
        .unwrap();
    let prompt_tokens = u64::from(second.prompt_tokens);
    collect(second).await;
    let after = engine.stats();

    let reused = after.prompt_tokens_reused - before.prompt_tokens_reused;
    let processed = after.prompt_tokens_processed - before.prompt_tokens_processed;
    let system_tokens = engine.count_tokens(&system).unwrap() as u64;
    assert!(
        reused >= system_tokens,
        "reused {reused} of {system_tokens}"
    );
    assert_eq!(reused + processed, prompt_tokens);
}

#[tokio::test]
async fn an_identical_prompt_reuses_all_but_its_last_token() {
    let engine = tiny(1, 1);
    collect(engine.generate(greedy("Same question", 2)).unwrap()).await;
    let before = engine.stats();
    collect(engine.generate(greedy("Same question", 2)).unwrap()).await;
    let after = engine.stats();
    assert_eq!(
        after.prompt_tokens_processed - before.prompt_tokens_processed,
        1
    );
}

#[tokio::test]
async fn a_long_prompt_is_processed_in_chunks_while_others_keep_generating() {
    let engine = roomy();
    let mut running = engine.generate(greedy("Keep talking", 4000)).unwrap();
    first_token(&mut running).await;
    let before = engine.stats();

    let long = engine.generate(greedy(&"word ".repeat(1200), 1)).unwrap();
    let prompt = u64::from(long.prompt_tokens);
    assert!(prompt > 1024);
    let out = collect(long).await;
    assert_eq!(out.completion_tokens, 1);
    let after = engine.stats();
    assert!(!has_ended(&mut running), "{after:?}");

    let steps = after.steps - before.steps;
    let generated = after.generated_tokens - before.generated_tokens;
    // 512 tokens a step, one of them the running request's next token: the prompt needed
    // ceil(prompt / 511) steps at least.
    assert!(
        steps >= prompt.div_ceil(511),
        "{steps} steps for {prompt} tokens"
    );
    // Interleaved, every step of the window also gave the running request a token, so the
    // window generated a token a step, plus the long request's one. The counters are read while
    // the engine works, so each snapshot may miss the token of the step in progress: one less.
    // Had the prompt had steps to itself (three or more), it would be at least two less.
    assert!(
        generated >= steps,
        "{generated} tokens generated in {steps} steps: the running request was paused"
    );
}

#[tokio::test]
async fn a_generation_outlives_the_engine_handle() {
    let generation = tiny(1, 1).generate(greedy("Hello", 5)).unwrap();
    // The engine value is already dropped here; the thread finishes the work it has.
    let out = collect(generation).await;
    assert_eq!(out.completion_tokens, 5);
}
