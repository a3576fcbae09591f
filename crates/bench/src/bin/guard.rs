//! The privacy guard's cost, three ways (issue 10's floors):
//!
//! 1. rule detection and redaction throughput on one core over ~10 MB of mixed text (prose with
//!    personal data every tenth sentence): at least 50 MB/s;
//! 2. the gateway's added latency p99 for a 2 KB prompt with the rules on, against the same
//!    gateway with the guard off, alternating in one run, both in front of the mock upstream's
//!    `echo` model (so the answer holds every placeholder to restore): at most 200 µs;
//! 3. the token classifier alone on a 2 KB prompt with 2 threads: p50 and p99 (aim: 15 ms p50).
//!
//! Build first: `cargo build --release --bins`; run: `cargo run --release -p switchyard-bench
//! --bin guard`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use switchyard_bench::{median, open_loop, percentile, sibling, Bound, Floors, Process};
use switchyard_guard::vault::Vault;
use switchyard_guard::{Detector, DetectorConfig};

#[derive(Parser)]
struct Args {
    /// Runs of the throughput and classifier measurements; the report gives medians.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Requests per second through each gateway.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Seconds per measured gateway phase.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Guard-off/guard-on pairs of gateway phases.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the gateway measurement (no processes started).
    #[arg(long)]
    no_gateway: bool,
}

const PROSE: &[&str] = &[
    "The quarterly report shows revenue grew by 12 percent while costs stayed flat. ",
    "Please review the attached draft before Thursday's meeting and send comments. ",
    "Our API returns a JSON object with the fields id, name, created_at and status. ",
    "In 2023 the team shipped version 4.2.1 with faster builds and fewer crashes. ",
    "The model was trained on 1.5 billion tokens for 3 epochs at a learning rate of 0.0003. ",
    "Customers in the north region reported delays; order #48213 arrived two days late. ",
    "She moved to Lisbon last spring and now works remotely for a design studio. ",
    "Prices start at $1,299.00 and the premium tier costs $2,499.50 per seat. ",
];

const PERSONAL: &[&str] = &[
    "Contact me at jane.doe@example.com or +1 650-253-0000. ",
    "My card is 4242 4242 4242 4242 and my SSN is 123-45-6789. ",
    "Wire it to GB82 WEST 1234 5698 7654 32 by Friday. ",
    "The server at 192.168.10.24 uses key AKIAIOSFODNN7EXAMPLE. ",
    "password = \"hunter2!\" and born on 12 March 1990. ",
    "Margaret Thompson lives at 42 Harrow Lane, Leeds. ",
];

/// About `bytes` of prose with a personal-data sentence one time in ten (xorshift, fixed
/// seed: the same text every run).
fn mixed_text(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 128);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    while text.len() < bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let pick = (seed / 10) as usize;
        if seed.is_multiple_of(10) {
            text.push_str(PERSONAL[pick % PERSONAL.len()]);
        } else {
            text.push_str(PROSE[pick % PROSE.len()]);
        }
        if seed.is_multiple_of(7) {
            text.push('\n');
        }
    }
    text
}

/// A 2 KB prompt that holds personal data of several kinds.
fn prompt() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 2048 {
        text.push_str(PROSE[i % PROSE.len()]);
        if i % 3 == 0 {
            text.push_str(PERSONAL[(i / 3) % PERSONAL.len()]);
        }
        i += 1;
    }
    text
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut floors = Floors::default();

    let rules = Detector::new(&DetectorConfig::default())?;
    let text = mixed_text(10_000_000);
    let mut scan = Vec::new();
    let mut redact = Vec::new();
    let mut found = 0;
    for _ in 0..args.runs {
        let t = Instant::now();
        let findings = rules.scan(&text)?;
        scan.push(text.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        let mut vault = Vault::default();
        std::hint::black_box(vault.redact(&text, &findings));
        let redact_s = t.elapsed().as_secs_f64();
        redact.push(text.len() as f64 / redact_s / 1e6);
        found = findings.len();
    }
    let scan_mbs = median(scan.clone());
    let redact_mbs = median(redact);
    // Detection and redaction of the same text, one after the other.
    let both_mbs = 1.0 / (1.0 / scan_mbs + 1.0 / redact_mbs);
    println!(
        "rules over {:.1} MB of mixed text ({found} findings), one core, median of {}: detect {scan_mbs:.1} MB/s, redact {redact_mbs:.1} MB/s, both {both_mbs:.1} MB/s (runs: {})",
        text.len() as f64 / 1e6,
        args.runs,
        scan.iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    floors.check(
        "rules: detect + redact MB/s on one core",
        both_mbs,
        Bound::AtLeast,
        50.0,
    );

    let prompt = prompt();
    let ner_dir = switchyard_models::find("rampart")?;
    let ner = Detector::new(&DetectorConfig {
        ner: Some(ner_dir),
        // The same prompt again and again: measure the model, not the memory of its findings.
        remember: 0,
        ..DetectorConfig::default()
    })?;
    let (ner_p50, ner_p99) = latency_ms(args.runs, || ner.scan(&prompt).map(drop))?;
    println!(
        "rules + classifier on a {} B prompt, 2 threads, median of {}: p50 {ner_p50:.2} ms, p99 {ner_p99:.2} ms",
        prompt.len(),
        args.runs
    );
    let encoder_p50 = encoder_reference(&prompt, args.runs)?;

    if !args.no_gateway {
        let added = gateway(&args, &prompt)?;
        floors.check(
            "gateway: added p99 µs with the rules on",
            added,
            Bound::AtMost,
            200.0,
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "rules_detect_mb_s": scan_mbs, "rules_redact_mb_s": redact_mbs,
            "rules_both_mb_s": both_mbs, "classifier_p50_ms": ner_p50,
            "classifier_p99_ms": ner_p99, "int8_encoder_p50_ms": encoder_p50,
        })
    );
    floors.finish()
}

/// p50 and p99 (ms) of `call`, each the median over `runs` runs of 60 calls, after 5 to warm.
fn latency_ms<E: std::error::Error + Send + Sync + 'static>(
    runs: usize,
    call: impl Fn() -> Result<(), E>,
) -> Result<(f64, f64)> {
    for _ in 0..5 {
        call()?;
    }
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..runs {
        let mut times = Vec::with_capacity(60);
        for _ in 0..60 {
            let t = Instant::now();
            call()?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        p50s.push(percentile(&times, 0.5));
        p99s.push(percentile(&times, 0.99));
    }
    Ok((median(p50s), median(p99s)))
}

/// The other route issue 10 names for the classifier: the project's own int8 MiniLM encoder
/// (the embedder, the same shape: 6 layers, 384 wide) over the same prompt, cut in two halves
/// of at most 256 word pieces as the classifier's windows are. Without the classifier's head,
/// so a lower bound on that route's cost. Returns the p50 in ms.
fn encoder_reference(prompt: &str, runs: usize) -> Result<f64> {
    let Ok(dir) = switchyard_models::find("all-MiniLM-L6-v2") else {
        println!("int8 encoder reference: all-MiniLM-L6-v2 not fetched, skipped");
        return Ok(f64::NAN);
    };
    let embedder = switchyard_embed::Embedder::load(&dir)?;
    let mut cut = prompt.len() / 2;
    while !prompt.is_char_boundary(cut) {
        cut += 1;
    }
    let halves = [&prompt[..cut], &prompt[cut..]];
    let (p50, _) = latency_ms(runs, || embedder.embed(&halves).map(drop))?;
    println!(
        "reference: the int8 MiniLM encoder ({:?}) on the same prompt in two halves: p50 {p50:.2} ms",
        embedder.precision()
    );
    Ok(p50)
}

/// Two gateways in front of one mock: the guard off, and the rules on (no classifier).
/// Returns the median over rounds of p99(on) − p99(off), in µs.
fn gateway(args: &Args, prompt: &str) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut mock = Command::new(sibling("switchyard-mock")?);
    mock.args(["--listen", "127.0.0.1:0"]);
    let (_mock, mock_url) = Process::start_printing_url(mock)?;
    let mock_base = format!("{}/v1", mock_url.trim_end_matches("/v1"));
    let start = |name: &str, guard: &str| -> Result<(Process, String)> {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[store]\npath = {:?}\n[guard]\n{guard}\n[models.cloud]\nprovider = \"openai\"\nbase_url = \"{mock_base}\"\nmodel = \"echo\"\n",
                dir.path().join(format!("{name}.db")).display().to_string()
            ),
        )?;
        let mut gw = Command::new(sibling("switchyard")?);
        gw.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn");
        let (process, url) = Process::start_printing_url(gw)?;
        Ok((process, format!("{url}/v1/chat/completions")))
    };
    let (off, off_url) = start("off", "enabled = false")?;
    let (on, on_url) = start("on", "model = false")?;
    let body: &'static str = Box::leak(
        serde_json::json!({"model": "cloud", "messages": [{"role": "user", "content": prompt}]})
            .to_string()
            .into_boxed_str(),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let phase = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    let check = rt.block_on(async {
        let resp = client
            .post(&on_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let redacted = resp
            .headers()
            .get("x-switchyard-redacted")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = resp.text().await?;
        anyhow::Ok((redacted, answer))
    })?;
    let (redacted, answer) = check;
    let redacted = redacted.context("the guarded gateway redacted nothing from the prompt")?;
    anyhow::ensure!(
        answer.contains("jane.doe@example.com"),
        "the guarded gateway's answer was not restored"
    );
    println!(
        "guarded gateway redacts {redacted} from the {} B prompt",
        prompt.len()
    );
    rt.block_on(async {
        for url in [&off_url, &on_url] {
            open_loop(&client, url, body, args.rate, Duration::from_secs(1)).await;
        }
        for round in 1..=args.rounds {
            let a = open_loop(&client, &off_url, body, args.rate, phase).await;
            let b = open_loop(&client, &on_url, body, args.rate, phase).await;
            let r = [
                percentile(&a.latencies_ms, 0.5),
                percentile(&a.latencies_ms, 0.99),
                percentile(&b.latencies_ms, 0.5),
                percentile(&b.latencies_ms, 0.99),
            ];
            println!(
                "round {round}: guard off p50 {:.3} ms p99 {:.3} ms | rules on p50 {:.3} ms p99 {:.3} ms | errors {} + {}",
                r[0], r[1], r[2], r[3], a.errors, b.errors
            );
            rows.push(r);
        }
    });
    off.terminate()?;
    on.terminate()?;
    let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let added_p50 = (col(2) - col(0)) * 1e3;
    let added_p99 = median(rows.iter().map(|r| (r[3] - r[1]) * 1e3).collect());
    println!(
        "gateway, {:.0} req/s, {} rounds of {:.0} s, medians: guard off p50 {:.3} ms p99 {:.3} ms; rules on p50 {:.3} ms p99 {:.3} ms; added p50 {added_p50:.0} µs, p99 {added_p99:.0} µs",
        args.rate,
        args.rounds,
        args.seconds,
        col(0),
        col(1),
        col(2),
        col(3)
    );
    Ok(added_p99)
}
