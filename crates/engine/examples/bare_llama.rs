//! The reference: plain llama-cpp-2 calls, one sequence, greedy, no engine around them.
//!
//! Renders the GGUF's chat template around `--prompt` (after `--system` when given), decodes it,
//! then generates up to `--tokens` tokens greedily (stopping at end-of-generation, as the engine
//! does), and prints one JSON line. With `--cached N` the first N prompt tokens are already in
//! the KV cache when the clock starts, as a gateway's prefix cache holds a prefix shared with an
//! earlier request; only the rest is decoded and counted. Compare with `engine_bench`, which does
//! the same through `Engine`:
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example bare_llama -- --threads 2
//! cargo run --release -p switchyard-engine --example engine_bench -- --threads 2
//! ```

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;

use bench_common::{conversation, load_llama, peak_rss_mib, per_second, Args};

const BATCH: usize = 512;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let threads = i32::try_from(args.threads)?;

    let load_start = Instant::now();
    let (backend, model, template) = load_llama(&args)?;
    let prompt = model.apply_chat_template(&template, &conversation(&args, &args.prompt)?, true)?;
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, true);
    // At least one prompt token is decoded: its logits give the first token (the engine does
    // the same).
    if args.cached >= tokens.len() {
        return Err(format!(
            "--cached {} must be below the prompt's {} tokens",
            args.cached,
            tokens.len()
        )
        .into());
    }
    let n_ctx = u32::try_from(tokens.len() + args.tokens + 1)?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_ubatch(BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

    let mut batch = LlamaBatch::new(BATCH, 1);
    let mut sampler = LlamaSampler::greedy();
    let vocab = model.vocab();
    let decode_prompt = |ctx: &mut llama_cpp_2::context::LlamaContext,
                         batch: &mut LlamaBatch,
                         from: usize|
     -> Result<(), Box<dyn std::error::Error>> {
        for (c, chunk) in tokens[from..].chunks(BATCH).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = from + c * BATCH + i;
                batch.add(t, i32::try_from(pos)?, &[0], pos + 1 == tokens.len())?;
            }
            ctx.decode(batch)?;
        }
        Ok(())
    };
    // Once untimed, as the gateway is warmed up before it is measured: the first decode of a
    // process also allocates llama.cpp's compute buffers and starts its thread pool. Then all
    // but the first `--cached` tokens leave the cache.
    decode_prompt(&mut ctx, &mut batch, 0)?;
    ctx.clear_kv_cache_seq(Some(0), Some(u32::try_from(args.cached)?), None)?;
    let start = Instant::now();
    decode_prompt(&mut ctx, &mut batch, args.cached)?;
    let mut token = sampler.sample(&ctx, batch.n_tokens() - 1);
    let first = Instant::now();
    let mut text = Vec::new();
    let mut generated = 1;
    let mut pos = tokens.len();
    while generated < args.tokens && !vocab.is_eog(token) {
        vocab.token_to_piece_into(token, &mut text, false, None);
        batch.clear();
        batch.add(token, i32::try_from(pos)?, &[0], true)?;
        ctx.decode(&mut batch)?;
        token = sampler.sample(&ctx, 0);
        pos += 1;
        generated += 1;
    }
    let end = Instant::now();

    let ttft = first.duration_since(start).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "load_ms": load_ms,
            "prompt_tokens": tokens.len(),
            "cached_prompt_tokens": args.cached,
            "prompt_tok_s": per_second(tokens.len() - args.cached, ttft),
            "gen_tokens": generated,
            "gen_tok_s": per_second(generated - 1, end.duration_since(first).as_secs_f64()),
            "ttft_ms": ttft * 1e3,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    eprintln!("{}", String::from_utf8_lossy(&text));
    Ok(())
}
