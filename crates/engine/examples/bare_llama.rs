//! The reference: plain llama-cpp-2 calls, one sequence, greedy, no engine around them.
//!
//! Renders the GGUF's chat template around `--prompt`, decodes it, then generates up to
//! `--tokens` tokens greedily (stopping at end-of-generation, as the engine does), and prints one
//! JSON line. Compare with `engine_bench`, which does the same through `Engine`:
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
use llama_cpp_2::model::LlamaChatMessage;
use llama_cpp_2::sampling::LlamaSampler;

use bench_common::{load_llama, peak_rss_mib, per_second, Args};

const BATCH: usize = 512;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let threads = i32::try_from(args.threads)?;

    let load_start = Instant::now();
    let (backend, model, template) = load_llama(&args)?;
    let prompt = model.apply_chat_template(
        &template,
        &[LlamaChatMessage::new("user".into(), args.prompt.clone())?],
        true,
    )?;
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, true);
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
                         batch: &mut LlamaBatch|
     -> Result<(), Box<dyn std::error::Error>> {
        for (c, chunk) in tokens.chunks(BATCH).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = c * BATCH + i;
                batch.add(t, i32::try_from(pos)?, &[0], pos + 1 == tokens.len())?;
            }
            ctx.decode(batch)?;
        }
        Ok(())
    };
    // Once untimed, as the gateway is warmed up before it is measured: the first decode of a
    // process also allocates llama.cpp's compute buffers and starts its thread pool.
    decode_prompt(&mut ctx, &mut batch)?;
    ctx.clear_kv_cache();
    let start = Instant::now();
    decode_prompt(&mut ctx, &mut batch)?;
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
            "prompt_tok_s": per_second(tokens.len(), ttft),
            "gen_tokens": generated,
            "gen_tok_s": per_second(generated - 1, end.duration_since(first).as_secs_f64()),
            "ttft_ms": ttft * 1e3,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    eprintln!("{}", String::from_utf8_lossy(&text));
    Ok(())
}
