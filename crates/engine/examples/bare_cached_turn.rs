//! The reference for time to first token after a cached system prompt: plain llama-cpp-2 calls.
//!
//! Renders the chat template around `--system` and a first user turn ("Hi.") and decodes it, as
//! a gateway's first request leaves the system prompt in the KV cache. Then, seven times, it
//! renders the same system prompt with the user turn `--prompt (N)`, keeps the tokens the two
//! share (the engine's prefix cache does the same), decodes the rest and picks the first token
//! greedily; it prints one JSON line with the median of that time and the tokens decoded.
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example bare_cached_turn -- --threads 2 \
//!     --system "You are…" --prompt "I noticed a payment…"
//! ```

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use bench_common::{conversation, load_llama, peak_rss_mib, per_second, Args};

const RUNS: usize = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse()?;
    args.system
        .get_or_insert_with(|| "You are a helpful assistant.".to_string());
    let threads = i32::try_from(args.threads)?;
    let (backend, model, template) = load_llama(&args)?;
    let render = |user: &str| -> Result<Vec<LlamaToken>, Box<dyn std::error::Error>> {
        let prompt = model.apply_chat_template(&template, &conversation(&args, user)?, true)?;
        Ok(model.vocab().tokenize(prompt.as_bytes(), true, true))
    };
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(4096))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(4096, 1);
    let mut sampler = LlamaSampler::greedy();

    let first = render("Hi.")?;
    for (i, &t) in first.iter().enumerate() {
        batch.add(t, i32::try_from(i)?, &[0], false)?;
    }
    ctx.decode(&mut batch)?;

    let mut times = Vec::with_capacity(RUNS);
    let mut decoded = 0;
    for run in 0..RUNS {
        let tokens = render(&format!("{} ({run})", args.prompt))?;
        let keep = first
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        ctx.clear_kv_cache_seq(Some(0), Some(u32::try_from(keep)?), None)?;
        let start = Instant::now();
        batch.clear();
        for (i, &t) in tokens.iter().enumerate().skip(keep) {
            batch.add(t, i32::try_from(i)?, &[0], i + 1 == tokens.len())?;
        }
        ctx.decode(&mut batch)?;
        let _first_token = sampler.sample(&ctx, batch.n_tokens() - 1);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        decoded = tokens.len() - keep;
    }
    times.sort_by(f64::total_cmp);
    let median = times[RUNS / 2];
    println!(
        "{}",
        serde_json::json!({
            "cached_turn_ttft_ms": median,
            "decoded_tokens": decoded,
            "decoded_tok_s": per_second(decoded, median / 1e3),
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}
