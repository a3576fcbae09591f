//! How llama.cpp's decode time grows with the number of sequences in one batch, with plain
//! llama-cpp-2 calls and no engine: the evidence for what continuous batching can gain.
//!
//! Each of `B` sequences (B = 1, 2, 4, 8) first gets the same chat prompt; then every step
//! decodes one token per sequence in a single `llama_decode`, with logits for each, and only
//! the `decode` call is timed. Prints one JSON line per batch size (median over the steps):
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example decode_scaling -- --threads 2
//! ```
//!
//! `ms_per_step` is the wall time of one decode; `tok_s` is B / that; `speedup` is `tok_s` over
//! the B = 1 figure. A speedup near B means decoding is bound by reading the weights (batching
//! is nearly free); near 1 means it is bound by arithmetic that grows with B. `DS_ONLY=4` in the
//! environment measures one batch size (for a profiler).
//!
//! `cpu_ms_per_step` is the calling thread's time on a CPU per decode (mean). With
//! `--threads 1` that thread does all of ggml's work, so the figure is the compute cost itself,
//! unaffected by other processes competing for the cores (which inflate the wall time, and with
//! several threads make ggml's spinning barriers wait for descheduled threads).

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaChatMessage;

use bench_common::{load_llama, peak_rss_mib, per_second, Args};

const SIZES: [usize; 4] = [1, 2, 4, 8];
const STEPS: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let threads = i32::try_from(args.threads)?;
    let (backend, model, template) = load_llama(&args)?;
    let prompt = model.apply_chat_template(
        &template,
        &[LlamaChatMessage::new("user".into(), args.prompt.clone())?],
        true,
    )?;
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, true);
    let max_seq = *SIZES.iter().max().unwrap_or(&1);
    let per_seq = tokens.len() + STEPS + 1;

    let mut baseline = None;
    let only: Option<usize> = std::env::var("DS_ONLY").ok().and_then(|v| v.parse().ok());
    for unified in [false, true] {
        for &b in SIZES.iter().filter(|&&b| only.is_none_or(|o| o == b)) {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(u32::try_from(per_seq * max_seq)?))
                .with_n_batch(512)
                .with_n_ubatch(512)
                .with_n_seq_max(u32::try_from(max_seq)?)
                .with_kv_unified(unified)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let mut ctx = model.new_context(&backend, params)?;
            let mut batch = LlamaBatch::new(512, 1);
            for s in 0..b {
                batch.clear();
                for (i, &t) in tokens.iter().enumerate() {
                    batch.add(t, i32::try_from(i)?, &[i32::try_from(s)?], false)?;
                }
                ctx.decode(&mut batch)?;
            }
            let mut times = Vec::with_capacity(STEPS);
            let cpu_start = thread_cpu_ns();
            let token = tokens[tokens.len() - 1];
            for step in 0..STEPS {
                batch.clear();
                for s in 0..b {
                    let pos = i32::try_from(tokens.len() + step)?;
                    batch.add(token, pos, &[i32::try_from(s)?], true)?;
                }
                let start = Instant::now();
                ctx.decode(&mut batch)?;
                times.push(start.elapsed().as_secs_f64());
            }
            let cpu_ms = (thread_cpu_ns() - cpu_start) as f64 / 1e6 / STEPS as f64;
            times.sort_by(f64::total_cmp);
            let ms = times[STEPS / 2] * 1e3;
            let tok_s = per_second(b, ms / 1e3);
            if b == 1 && !unified {
                baseline = Some(tok_s);
            }
            println!(
                "{}",
                serde_json::json!({
                    "kv_unified": unified,
                    "sequences": b,
                    "ms_per_step": ms,
                    "cpu_ms_per_step": cpu_ms,
                    "tok_s": tok_s,
                    "speedup": baseline.map_or(1.0, |base| tok_s / base),
                    "peak_rss_mib": peak_rss_mib(),
                })
            );
        }
    }
    Ok(())
}

/// Nanoseconds this thread has run on a CPU, from the kernel's scheduler statistics.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
