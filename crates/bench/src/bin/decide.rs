//! Decision latency per router kind, on one core of this machine: rules only; semantic routes
//! (embedding the prompt with the in-process MiniLM, then matching); the learned score (with
//! `--learned FILE` from `switchyard train`). Prints p50 and p99 of each.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;
use switchyard_api::{ChatRequest, Message, Role};
use switchyard_bench::{percentile, Bound, Floors};
use switchyard_router::{RouteConfig, Router, Signals, When};

#[derive(Parser)]
struct Args {
    /// Decisions timed per router kind.
    #[arg(long, default_value_t = 2000)]
    runs: usize,
    /// A learned router file from `switchyard train`, to time the learned score too.
    #[arg(long)]
    learned: Option<std::path::PathBuf>,
    /// The models folder (for all-MiniLM-L6-v2).
    #[arg(long, default_value_os_t = switchyard_models::dir())]
    models: std::path::PathBuf,
}

/// A 30-word prompt.
const PROMPT: &str = "Hello, I ordered a pair of running shoes last Tuesday and the tracking page still says the parcel is waiting at the depot. Can you tell me when it will arrive?";

fn route(name: &str) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        when: None,
        examples: Vec::new(),
        similarity: 0.5,
        target: Some("small".into()),
        ladder: Vec::new(),
        system_prompt: None,
        cascade: false,
        confidence_threshold: None,
        knowledge: None,
        k: None,
        min_score: None,
        escalate_to: None,
    }
}

fn rules_router() -> Result<Router> {
    let mut r = Router::new(vec!["small".into(), "large".into()], "small".into());
    let rules = [
        When {
            keywords: vec!["contract".into(), "lawsuit".into(), "liability".into()],
            ..Default::default()
        },
        When {
            regex: vec![
                r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b".into(),
                r"(?i)\bsql\b.*\bselect\b".into(),
            ],
            ..Default::default()
        },
        When {
            code: Some(true),
            ..Default::default()
        },
        When {
            min_chars: Some(4000),
            ..Default::default()
        },
        When {
            tools: Some(true),
            ..Default::default()
        },
    ];
    for (i, when) in rules.into_iter().enumerate() {
        r = r.with_route(
            RouteConfig {
                when: Some(when),
                ..route(&format!("rule{i}"))
            },
            Vec::new(),
        )?;
    }
    Ok(r)
}

fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..runs / 10 {
        f();
    }
    let mut us: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), percentile(&us, 0.99))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let req = ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::new(Role::System, "You are a helpful assistant."),
            Message::new(Role::User, PROMPT),
        ],
        ..Default::default()
    };
    let rules = rules_router()?;
    let (r50, r99) = time(args.runs, || {
        let s = Signals::from_request(&req);
        std::hint::black_box(rules.decide(&req, &s).ok());
    });

    let dir = std::path::Path::new(&args.models).join("all-MiniLM-L6-v2");
    let embedder = switchyard_embed::Embedder::load(&dir).context("run scripts/fetch-models.sh")?;
    let examples = [
        "Where is my order?",
        "How do I reset my password?",
        "I want a refund.",
        "Can I change my delivery address?",
    ];
    let vectors = embedder.embed(&examples)?.vectors;
    let semantic = Router::new(vec!["small".into(), "large".into()], "large".into()).with_route(
        RouteConfig {
            examples: examples.map(String::from).to_vec(),
            similarity: 0.4,
            ..route("support")
        },
        vectors,
    )?;
    let mut matched = String::new();
    let (s50, s99) = time(args.runs.min(500), || {
        let mut s = Signals::from_request(&req);
        s.embedding = embedder
            .embed(&[Signals::text_to_embed(&req).as_str()])
            .ok()
            .and_then(|e| e.vectors.into_iter().next());
        if let Ok(d) = semantic.decide(&req, &s) {
            matched = d.route;
        }
    });

    let learned = match &args.learned {
        Some(path) => {
            let scorer = switchyard_router::learned::LearnedRouter::load(path)?;
            let router = Router::new(vec!["small".into(), "large".into()], "small".into())
                .with_learned(switchyard_router::LearnedPolicy {
                    threshold: scorer.threshold(),
                    scorer: Box::new(scorer),
                    weak: "small".into(),
                    strong: "large".into(),
                });
            let mut embedding = None;
            let (e50, e99) = time(args.runs.min(500), || {
                let mut s = Signals::from_request(&req);
                s.embedding = embedder
                    .embed(&[Signals::text_to_embed(&req).as_str()])
                    .ok()
                    .and_then(|e| e.vectors.into_iter().next());
                embedding.clone_from(&s.embedding);
                std::hint::black_box(router.decide(&req, &s).ok());
            });
            let mut s = Signals::from_request(&req);
            s.embedding = embedding;
            let (l50, l99) = time(args.runs.min(500), || {
                std::hint::black_box(router.decide(&req, &s).ok());
            });
            Some((e50, e99, l50, l99))
        }
        None => None,
    };

    println!(
        "decision latency, {} runs each (semantic: {} runs; routed to `{matched}`):",
        args.runs,
        args.runs.min(500)
    );
    println!("  rules (5 routes)                  p50 {r50:>8.2} µs   p99 {r99:>8.2} µs   (floor: 20 µs)");
    println!(
        "  semantic (embed 30 words + match) p50 {:>8.2} ms   p99 {:>8.2} ms   (floor: 5 ms p50)",
        s50 / 1e3,
        s99 / 1e3
    );
    let mut out = json!({"rules_p50_us": r50, "rules_p99_us": r99, "semantic_p50_ms": s50 / 1e3, "semantic_p99_ms": s99 / 1e3});
    if let Some((e50, e99, l50, l99)) = learned {
        println!(
            "  learned (embed 30 words + score)  p50 {:>8.2} ms   p99 {:>8.2} ms",
            e50 / 1e3,
            e99 / 1e3
        );
        println!(
            "  learned score alone               p50 {:>8.2} ms   p99 {:>8.2} ms",
            l50 / 1e3,
            l99 / 1e3
        );
        out["learned_p50_ms"] = json!(e50 / 1e3);
        out["learned_p99_ms"] = json!(e99 / 1e3);
        out["learned_score_only_p50_ms"] = json!(l50 / 1e3);
    }
    println!("{out}");
    let mut floors = Floors::default();
    floors.check("rules decision p50 µs", r50, Bound::AtMost, 20.0);
    floors.check("semantic decision p50 ms", s50 / 1e3, Bound::AtMost, 5.0);
    floors.finish()
}
