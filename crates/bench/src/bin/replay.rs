//! The replay step's time: every router and baseline replayed, with the labels written, over
//! `--requests` cached answers of two models (synthetic: graded, with token logprobs for the
//! cascade), as a median of `--runs`. The floor: 10,000 requests in at most 10 s.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use rand::{Rng, SeedableRng};
use switchyard_api::TokenLogprob;
use switchyard_bench::{median, Bound, Floors};
use switchyard_replay::report::Options;
use switchyard_replay::{Answer, AnswerCache, Workload};
use switchyard_router::confidence::Calibration;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let rows: String = (0..args.requests)
        .map(|i| {
            format!(
                "{{\"prompt\": \"Question {i}: {}\", \"grade\": {{\"kind\": \"number\", \"answer\": {i}}}, \"group\": \"g{}\"}}\n",
                "word ".repeat(i % 50),
                i % 97
            )
        })
        .collect();
    let items = Workload::parse(&rows)
        .map_err(|(line, m)| anyhow::anyhow!("line {line}: {m}"))?
        .items;
    let dir = tempfile::tempdir()?;
    let mut cache = AnswerCache::open(dir.path())?;
    for (i, item) in items.iter().enumerate() {
        for model in ["small", "large"] {
            let right = model == "large" || rng.random_bool(0.6);
            let logprobs = (0..8)
                .map(|_| TokenLogprob {
                    token: "x".into(),
                    logprob: -rng.random::<f32>() * if right { 0.5 } else { 2.0 },
                    bytes: None,
                    top_logprobs: Vec::new(),
                })
                .collect();
            cache.put(Answer {
                item: item.id.clone(),
                model: model.into(),
                served_by: model.into(),
                route: format!(
                    "default: auto -> small; pinned to {model} (the router chose small)"
                ),
                text: if right {
                    i.to_string()
                } else {
                    "no idea".into()
                },
                finish_reason: Some("stop".into()),
                logprobs: if model == "small" {
                    logprobs
                } else {
                    Vec::new()
                },
                prompt_tokens: 20,
                completion_tokens: 8,
                cost_usd: if model == "small" { 0.0 } else { 1e-5 },
                latency_ms: if model == "small" { 300.0 } else { 2000.0 },
            })?;
        }
    }
    let models = vec!["small".to_owned(), "large".to_owned()];
    let calibration = Calibration::builtin();
    let out = tempfile::tempdir()?;
    let mut times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let report = switchyard_replay::report(
            &items,
            &cache,
            &Options {
                models: &models,
                calibration: Some((&calibration, calibration.threshold)),
                target_quality: 0.95,
                held_out: Some(0.5),
                seed: 7,
            },
        )?;
        let sides = switchyard_replay::report::held_out(&items, 0.5, 7);
        switchyard_replay::labels::write(out.path(), &items, &cache, &models, Some(&sides))?;
        std::hint::black_box(&report);
        times.push(started.elapsed().as_secs_f64());
    }
    let s = median(times);
    println!(
        "replay of {} cached requests (all routers, labels): median {s:.3} s over {} runs",
        args.requests, args.runs
    );
    let mut floors = Floors::default();
    if args.requests >= 10_000 {
        floors.check(
            "replay step, seconds for 10,000 requests",
            s,
            Bound::AtMost,
            10.0,
        );
    }
    floors.finish()
}
