//! Generating: streaming, limits, stop sequences, logprobs, sampling.

mod common;

use std::collections::HashSet;

use common::{ask, collect, greedy, smollm2_path, tiny};
use switchyard_engine::{Engine, EngineConfig, EngineError, Event, FinishReason, GenerateRequest};

#[tokio::test]
async fn tokens_stream_one_event_at_a_time_then_done() {
    let engine = tiny(1, 1);
    let mut generation = engine.generate(greedy("Tell me a story", 8)).unwrap();
    assert!(generation.prompt_tokens > 0);
    let mut tokens = 0;
    loop {
        match generation
            .events
            .recv()
            .await
            .expect("stream stays open until Done")
        {
            Event::Token(_) => tokens += 1,
            Event::Done {
                completion_tokens,
                prompt_tokens,
                ..
            } => {
                assert_eq!(completion_tokens, tokens);
                assert_eq!(prompt_tokens, generation.prompt_tokens);
                break;
            }
            Event::Failed(e) => panic!("{e}"),
        }
    }
    assert!(
        generation.events.recv().await.is_none(),
        "nothing after Done"
    );
}

#[tokio::test]
async fn max_tokens_gives_exactly_that_many_tokens_and_length() {
    let engine = tiny(1, 1);
    let out = collect(engine.generate(greedy("Count with me", 5)).unwrap()).await;
    assert_eq!(out.tokens.len(), 5);
    assert_eq!(out.completion_tokens, 5);
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn text_stops_before_a_stop_sequence_which_is_not_sent() {
    // Greedy decoding is deterministic, so a fresh engine repeats the same completion; pick a
    // piece of it as the stop sequence.
    let full = collect(tiny(1, 1).generate(greedy("Hello", 24)).unwrap()).await;
    let chars: Vec<char> = full.text.chars().collect();
    assert!(
        chars.len() >= 8,
        "tiny model produced too little text: {:?}",
        full.text
    );
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let expected = &full.text[..full.text.find(&stop).unwrap()];

    let request = GenerateRequest {
        stop: vec![stop.clone()],
        ..greedy("Hello", 24)
    };
    let out = collect(tiny(1, 1).generate(request).unwrap()).await;
    assert_eq!(out.text, expected, "stop sequence {stop:?}");
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert!(!out.text.contains(&stop));
}

#[tokio::test]
async fn logprobs_are_log_probabilities_with_sorted_alternatives() {
    let engine = tiny(1, 1);
    let request = GenerateRequest {
        top_logprobs: Some(5),
        ..greedy("Hello", 10)
    };
    let out = collect(engine.generate(request).unwrap()).await;
    for token in &out.tokens {
        assert!(token.logprob <= 0.0, "{token:?}");
        assert_eq!(token.top_logprobs.len(), 5);
        assert!(token.top_logprobs.windows(2).all(|w| w[0].1 >= w[1].1));
        // Greedy picks the most likely token, so it heads its own alternatives.
        let (best_text, best_logprob) = &token.top_logprobs[0];
        assert_eq!(best_text, &String::from_utf8_lossy(&token.bytes));
        assert!((best_logprob - token.logprob).abs() < 1e-5, "{token:?}");
    }
}

#[tokio::test]
async fn without_top_logprobs_only_the_tokens_own_logprob_is_reported() {
    let out = collect(tiny(1, 1).generate(greedy("Hello", 3)).unwrap()).await;
    assert!(out
        .tokens
        .iter()
        .all(|t| t.top_logprobs.is_empty() && t.logprob <= 0.0));
}

/// The bytes of every token a fresh engine generates for `request`.
async fn generated(request: GenerateRequest) -> Vec<Vec<u8>> {
    let out = collect(tiny(1, 1).generate(request).unwrap()).await;
    out.tokens.into_iter().map(|t| t.bytes).collect()
}

fn sampled(seed: u64) -> GenerateRequest {
    GenerateRequest {
        messages: ask("Once upon a time"),
        max_tokens: Some(16),
        temperature: Some(1.0),
        top_p: Some(0.95),
        seed: Some(seed),
        ..GenerateRequest::default()
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_sampled_text() {
    assert_eq!(generated(sampled(7)).await, generated(sampled(7)).await);
}

#[tokio::test]
async fn sampling_differs_from_greedy_and_between_seeds() {
    let seven = generated(sampled(7)).await;
    let greedy = generated(GenerateRequest {
        temperature: Some(0.0),
        seed: None,
        ..sampled(7)
    })
    .await;
    assert_ne!(seven, greedy, "a temperature of 1 sampled the greedy text");
    assert_ne!(
        seven,
        generated(sampled(8)).await,
        "seeds 7 and 8 drew the same text"
    );
}

#[tokio::test]
async fn penalties_make_a_repetitive_greedy_text_repeat_less() {
    // Greedy decoding of the tiny model loops: 45 distinct tokens in 160 (measured). Penalising
    // the tokens already generated must break the loops (measured: 160 distinct in 160).
    let plain = greedy("Repeat after me", 160);
    let penalised = GenerateRequest {
        presence_penalty: Some(1.5),
        frequency_penalty: Some(1.0),
        ..plain.clone()
    };
    let out = collect(tiny(1, 1).generate(penalised).unwrap()).await;
    assert_eq!(out.completion_tokens as usize, out.tokens.len());
    let penalised: Vec<Vec<u8>> = out.tokens.into_iter().map(|t| t.bytes).collect();
    let plain = generated(plain).await;
    let distinct = |text: &[Vec<u8>]| text.iter().collect::<HashSet<_>>().len();
    assert!(
        distinct(&penalised) >= 2 * distinct(&plain),
        "penalties gave {} distinct tokens of {}, without them {} of {}",
        distinct(&penalised),
        penalised.len(),
        distinct(&plain),
        plain.len()
    );
}

#[test]
fn out_of_range_parameters_are_rejected_with_the_parameter_named() {
    let engine = tiny(1, 1);
    let cases = [
        GenerateRequest {
            temperature: Some(3.0),
            ..greedy("x", 1)
        },
        GenerateRequest {
            top_p: Some(0.0),
            ..greedy("x", 1)
        },
        GenerateRequest {
            top_logprobs: Some(21),
            ..greedy("x", 1)
        },
        greedy("x", 0),
    ];
    for (request, name) in
        cases
            .into_iter()
            .zip(["temperature", "top_p", "top_logprobs", "max_tokens"])
    {
        match engine.generate(request) {
            Err(e @ EngineError::InvalidRequest(_)) => assert!(e.to_string().contains(name)),
            other => panic!("{name}: expected InvalidRequest, got {other:?}"),
        }
    }
}

#[test]
fn a_prompt_longer_than_a_slot_is_rejected() {
    let engine = tiny(1, 1);
    let long = "word ".repeat(2000);
    match engine.generate(greedy(&long, 1)) {
        Err(EngineError::PromptTooLong { limit, .. }) => assert_eq!(limit, 511),
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
}

#[tokio::test]
async fn max_tokens_defaults_to_what_fits_in_the_slot() {
    let engine = Engine::load(EngineConfig {
        threads: Some(1),
        context_tokens: 64,
        slots: 1,
        ..EngineConfig::new(common::tiny_path())
    })
    .unwrap();
    let request = GenerateRequest {
        max_tokens: None,
        ..greedy("Hi", 1)
    };
    let generation = engine.generate(request).unwrap();
    let prompt = generation.prompt_tokens as usize;
    let out = collect(generation).await;
    // The tiny model never ends its turn on this prompt, so it fills the slot.
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(out.tokens.len() + prompt, engine.slot_context_tokens());
}

#[tokio::test]
async fn smollm2_knows_the_capital_of_france() {
    let engine = Engine::load(EngineConfig::new(smollm2_path())).unwrap();
    let out = collect(
        engine
            .generate(greedy("What is the capital of France?", 32))
            .unwrap(),
    )
    .await;
    assert!(out.text.contains("Paris"), "{:?}", out.text);
}
