//! Latency of embedding one 30-word sentence (37 word pieces): `cargo run --release -p switchyard-embed --example embed_bench`.
//! Prints JSON `{"p50_ms", "p99_ms", "min_ms", "runs"}`; `min_ms` shows the uncontended cost on a
//! busy machine.

use std::path::PathBuf;
use std::time::Instant;

use switchyard_embed::Embedder;

const SENTENCE: &str = "The quarterly report shows that customer support tickets about billing \
    errors dropped sharply after the new invoice system launched, while questions about refunds \
    stayed roughly the same over last summer.";
const RUNS: usize = 200;
const WARMUP: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("SWITCHYARD_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
        .join("all-MiniLM-L6-v2");
    let embedder = Embedder::load(&dir)?;
    for _ in 0..WARMUP {
        embedder.embed(&[SENTENCE])?;
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        embedder.embed(&[SENTENCE])?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let p50 = times[RUNS / 2];
    let p99 = times[RUNS * 99 / 100];
    let min = times[0];
    println!("{{\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"min_ms\":{min:.3},\"runs\":{RUNS}}}");
    Ok(())
}
