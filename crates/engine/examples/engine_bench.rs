//! The same measurement as `bare_llama`, through `Engine`, plus what only an engine can do:
//! four streams decoded together, and a prompt whose system part is already cached.
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example engine_bench -- --threads 2
//! ```
//!
//! Prints one JSON line with `bare_llama`'s fields (one stream alone) and:
//!
//! - `aggregate_gen_tok_s_4`: four concurrent greedy streams with distinct prompts, each asked
//!   for `--tokens` tokens. Only the generation phase counts: the window opens when the last
//!   stream has received its first token (every prompt is processed by then) and closes when
//!   the first stream finishes (so all four are generating throughout); the figure is the
//!   tokens all streams received inside the window over its length.
//! - `aggregate_over_single`: that over `gen_tok_s`, measured the same way for one stream.
//! - `aggregate_gen_tok_s_4_to_end`: the same but with the window running until the last
//!   stream finishes (close to the windowed figure when the streams run equally long).
//! - `ttft_cached_system_ms`: a ~100-token system prompt is sent once (with another user turn)
//!   to warm the prefix cache; then each of several requests with the same system prompt and a
//!   different ~20-token user turn is timed from `generate` to its first token. The median is
//!   reported, with `cached_system_tokens` (prompt tokens the cache saved per request, from
//!   `EngineStats`) and `cached_prompt_tokens` (the whole prompt).

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::time::Instant;

use switchyard_engine::{ChatTurn, Engine, EngineConfig, Event, GenerateRequest};

use bench_common::{peak_rss_mib, per_second, Args};

/// About 100 tokens with SmolLM2's tokenizer.
const SYSTEM: &str = "You are the customer support assistant of Northwind Bank. Answer \
    questions about accounts, cards, transfers and online banking politely and briefly. Never \
    ask for a full card number, a PIN or a password. If a question is about a loan, a \
    mortgage or an investment, say that an advisor will call back within one business day. \
    If the customer seems upset, apologise once and then focus on solving the problem. Use \
    plain language, short sentences, and no more than three bullet points in any answer.";

/// About 20 tokens each; every one differs from the first words on.
const USER_TURNS: [&str; 6] = [
    "My debit card was declined at a shop this morning although my balance is fine. Why?",
    "How long does an international transfer to a euro account usually take to arrive?",
    "I forgot the password for online banking and the reset email never arrived. Help?",
    "Can I raise the daily cash withdrawal limit on my card for a trip next week, please?",
    "Someone I do not know sent money to my account by mistake. What should I do now?",
    "Where can I find last year's statements, and can I download them all as PDF files?",
];

/// When each token of one stream arrived.
struct Timeline {
    submitted: Instant,
    tokens: Vec<Instant>,
    prompt_tokens: usize,
}

async fn run(
    engine: &Engine,
    messages: Vec<ChatTurn>,
    max_tokens: usize,
) -> Result<Timeline, String> {
    let submitted = Instant::now();
    let mut generation = engine
        .generate(GenerateRequest {
            messages,
            max_tokens: Some(u32::try_from(max_tokens).map_err(|e| e.to_string())?),
            temperature: Some(0.0),
            ..GenerateRequest::default()
        })
        .map_err(|e| e.to_string())?;
    let mut tokens = Vec::with_capacity(max_tokens);
    while let Some(event) = generation.events.recv().await {
        match event {
            Event::Token(_) => tokens.push(Instant::now()),
            Event::Done { .. } => break,
            Event::Failed(e) => return Err(e.to_string()),
        }
    }
    Ok(Timeline {
        submitted,
        tokens,
        prompt_tokens: generation.prompt_tokens as usize,
    })
}

fn user(text: &str) -> Vec<ChatTurn> {
    vec![ChatTurn::new("user", text)]
}

fn with_system(text: &str) -> Vec<ChatTurn> {
    vec![ChatTurn::new("system", SYSTEM), ChatTurn::new("user", text)]
}

/// Tokens received in `(from, to]` over `to - from`, summed over all streams.
fn window_rate(streams: &[Timeline], from: Instant, to: Instant) -> f64 {
    let inside = streams
        .iter()
        .flat_map(|s| &s.tokens)
        .filter(|&&t| t > from && t <= to)
        .count();
    per_second(inside, to.saturating_duration_since(from).as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let load_start = Instant::now();
    let engine = Engine::load(EngineConfig {
        threads: Some(args.threads),
        ..EngineConfig::new(&args.model)
    })?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

    // One stream alone.
    let single = run(&engine, user(&args.prompt), args.tokens).await?;
    let (Some(&first), Some(&last)) = (single.tokens.first(), single.tokens.last()) else {
        return Err("the model generated nothing".into());
    };
    let ttft = first.duration_since(single.submitted).as_secs_f64();
    let gen_tok_s = per_second(
        single.tokens.len() - 1,
        last.duration_since(first).as_secs_f64(),
    );

    // Four streams at once. Distinct openings, so the prefix cache cannot skip the prompts.
    let before = engine.stats();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            let prompt = format!("Request {i}. {}", args.prompt);
            let tokens = args.tokens;
            tokio::spawn(async move { run(&engine, user(&prompt), tokens).await })
        })
        .collect();
    let mut streams = Vec::new();
    for h in handles {
        streams.push(h.await?.map_err(|e| e.to_string())?);
    }
    let after = engine.stats();
    let firsts = streams.iter().filter_map(|s| s.tokens.first().copied());
    let lasts = streams.iter().filter_map(|s| s.tokens.last().copied());
    let (Some(open), Some(close), Some(end)) = (firsts.max(), lasts.clone().min(), lasts.max())
    else {
        return Err("a stream generated nothing".into());
    };
    let aggregate = window_rate(&streams, open, close);
    let aggregate_to_end = window_rate(&streams, open, end);
    let steps = after.steps - before.steps;
    let generated = after.generated_tokens - before.generated_tokens;

    // Time to first token after a cached system prompt.
    let warm = run(&engine, with_system("Hello, who are you?"), 4).await?;
    let reused_before = engine.stats().prompt_tokens_reused;
    let mut ttfts = Vec::new();
    let mut cached_prompt_tokens = 0;
    for turn in USER_TURNS {
        let t = run(&engine, with_system(turn), 1).await?;
        let Some(&first) = t.tokens.first() else {
            return Err("the cached-prompt request generated nothing".into());
        };
        ttfts.push(first.duration_since(t.submitted).as_secs_f64() * 1e3);
        cached_prompt_tokens = t.prompt_tokens;
    }
    let reused = (engine.stats().prompt_tokens_reused - reused_before) / USER_TURNS.len() as u64;

    println!(
        "{}",
        serde_json::json!({
            "load_ms": load_ms,
            "prompt_tokens": single.prompt_tokens,
            "prompt_tok_s": per_second(single.prompt_tokens, ttft),
            "gen_tokens": single.tokens.len(),
            "gen_tok_s": gen_tok_s,
            "ttft_ms": ttft * 1e3,
            "peak_rss_mib": peak_rss_mib(),
            "aggregate_gen_tok_s_4": aggregate,
            "aggregate_over_single": aggregate / gen_tok_s,
            "aggregate_gen_tok_s_4_to_end": aggregate_to_end,
            "tokens_per_step_4": generated as f64 / steps.max(1) as f64,
            "ttft_cached_system_ms": median(ttfts),
            "cached_prompt_tokens": cached_prompt_tokens,
            "cached_system_tokens": reused,
            "warm_prompt_tokens": warm.prompt_tokens,
        })
    );
    Ok(())
}
