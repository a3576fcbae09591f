//! The same measurement as `bare_llama`, through `Engine`: one stream alone, then four
//! concurrent streams decoded together. Prints one JSON line with `bare_llama`'s fields plus
//! `aggregate_gen_tok_s_4` (tokens of all four streams over the wall time from submitting them
//! to the last one finishing, prompt processing included).
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example engine_bench -- --threads 2
//! ```

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::time::Instant;

use switchyard_engine::{ChatTurn, Engine, EngineConfig, Event, GenerateRequest};

use bench_common::{peak_rss_mib, per_second, Args};

/// When each token of one stream arrived.
struct Timeline {
    submitted: Instant,
    tokens: Vec<Instant>,
    prompt_tokens: usize,
}

async fn run(engine: &Engine, prompt: String, max_tokens: usize) -> Result<Timeline, String> {
    let submitted = Instant::now();
    let mut generation = engine
        .generate(GenerateRequest {
            messages: vec![ChatTurn::new("user", prompt)],
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let load_start = Instant::now();
    let engine = Engine::load(EngineConfig {
        threads: Some(args.threads),
        ..EngineConfig::new(&args.model)
    })?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

    let single = run(&engine, args.prompt.clone(), args.tokens).await?;
    let (Some(&first), Some(&last)) = (single.tokens.first(), single.tokens.last()) else {
        return Err("the model generated nothing".into());
    };
    let ttft = first.duration_since(single.submitted).as_secs_f64();

    // Distinct openings, so the prefix cache cannot skip the prompts.
    let start = Instant::now();
    let streams: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            let prompt = format!("Request {i}. {}", args.prompt);
            tokio::spawn(async move { run(&engine, prompt, args.tokens).await })
        })
        .collect();
    let mut total = 0;
    for s in streams {
        total += s.await?.map_err(|e| e.to_string())?.tokens.len();
    }
    let wall = start.elapsed().as_secs_f64();

    println!(
        "{}",
        serde_json::json!({
            "load_ms": load_ms,
            "prompt_tokens": single.prompt_tokens,
            "prompt_tok_s": per_second(single.prompt_tokens, ttft),
            "gen_tokens": single.tokens.len(),
            "gen_tok_s": per_second(single.tokens.len() - 1, last.duration_since(first).as_secs_f64()),
            "ttft_ms": ttft * 1e3,
            "peak_rss_mib": peak_rss_mib(),
            "aggregate_gen_tok_s_4": per_second(total, wall),
        })
    );
    Ok(())
}
