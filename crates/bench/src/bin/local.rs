//! The local provider through the HTTP API against bare llama.cpp (`bare_llama`, a minimal
//! program over the same vendored llama.cpp), same GGUF, threads and prompt, alternating in one
//! run: prompt and generation tokens/s, time to first token, peak memory, as ratios. Both sides
//! do the same work: the gateway reports how many prompt tokens its prefix cache held
//! (`usage.prompt_tokens_details.cached_tokens`) and `bare_llama` starts with that many in its KV
//! cache (`--cached`), so each decodes the same tokens; this is measured twice, nearly cold (a
//! system message that differs at its start each run: only the template's first tokens are
//! shared) and with a cached prefix (the same ~90-token system message each run). Then the
//! aggregate generation rate of 4 concurrent streams and the time to first token after a cached
//! system prompt, against issue 3's floors. Build first:
//! `cargo build --release --bins && cargo build --release -p switchyard-engine --examples`.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_bench::{median, sibling, Bound, Floors, Process};

#[derive(Parser)]
struct Args {
    /// The GGUF to serve and to run bare.
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    model: String,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Tokens to generate per request.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Alternating bare/HTTP pairs.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const PROMPT: &str = "Write a detailed story about a lighthouse keeper who discovers a message in a bottle. Describe the sea, the weather, the keeper's daily routine, the discovery, and what happens next.";
const SYSTEM: &str = "You are the support assistant of Northwind Bank. Answer customers politely and briefly. Never ask for passwords or full card numbers. If a question is about fraud, tell the customer to call the fraud line at once. If a question is about opening hours, branches are open from nine to five on weekdays. Mortgage questions go to a human adviser. Keep every answer under eighty words and end with an offer to help further.";
/// With the run's " (N)" appended, exactly 20 SmolLM2 tokens (the 20-token user turn);
/// the chat template adds 6 more after it.
const TURN: &str = "I noticed a payment on my card I do not recognise. What should I do?";

/// Times of one streamed completion, in seconds from the request.
struct Stream {
    first: f64,
    tokens: Vec<f64>,
    prompt_tokens: u64,
    /// Prompt tokens the gateway's prefix cache held, so not decoded.
    cached_tokens: u64,
    completion_tokens: u64,
}

async fn stream(client: &reqwest::Client, url: &str, body: Value) -> Result<Stream> {
    let start = Instant::now();
    let resp = client.post(url).json(&body).send().await?;
    if !resp.status().is_success() {
        bail!("gateway answered {}: {}", resp.status(), resp.text().await?);
    }
    let mut bytes = resp.bytes_stream();
    let (mut buf, mut tokens, mut usage) = (String::new(), Vec::new(), Value::Null);
    while let Some(chunk) = bytes.next().await {
        buf.push_str(std::str::from_utf8(&chunk?)?);
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
            {
                tokens.push(start.elapsed().as_secs_f64());
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
    }
    Ok(Stream {
        first: *tokens.first().context("no token arrived")?,
        tokens,
        prompt_tokens: usage["prompt_tokens"].as_u64().context("no usage")?,
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .context("the gateway reported no cached prompt tokens")?,
        completion_tokens: usage["completion_tokens"].as_u64().context("no usage")?,
    })
}

fn request(system: Option<&str>, user: &str, max_tokens: u32) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(json!({"role": "system", "content": s}));
    }
    messages.push(json!({"role": "user", "content": user}));
    json!({"model": "local", "messages": messages, "max_tokens": max_tokens, "temperature": 0,
           "stream": true, "stream_options": {"include_usage": true}})
}

/// Runs a reference program to its end and parses the JSON line it prints last.
fn last_json_line(mut program: Command) -> Result<Value> {
    let name = program.get_program().to_string_lossy().into_owned();
    let out = program.output()?;
    if !out.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .with_context(|| format!("{name} printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let examples = std::env::current_exe()?.with_file_name("examples");
    let (bare, bare_cached) = (
        examples.join("bare_llama"),
        examples.join("bare_cached_turn"),
    );
    for program in [&bare, &bare_cached] {
        if !program.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p switchyard-engine --examples`",
                program.display()
            );
        }
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[models.local]\nprovider = \"local\"\npath = {:?}\nthreads = {}\nslots = 4\ncontext_tokens = 4096\n",
            dir.path().join("bench.db").display().to_string(),
            std::fs::canonicalize(&args.model)
                .with_context(|| format!("model {} not found: run scripts/fetch-models.sh", args.model))?
                .display()
                .to_string(),
            args.threads
        ),
    )?;
    let mut gw = Command::new(sibling("switchyard")?);
    gw.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn");
    let (gateway, url) = Process::start_printing_url(gw)?;
    let url = format!("{url}/v1/chat/completions");
    // The gateway closes a keep-alive connection idle for its header-read timeout (10 s) while
    // bare llama.cpp runs; drop pooled connections before that rather than race its close.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // Warm up once.
    rt.block_on(stream(&client, &url, request(None, PROMPT, 8)))?;
    let cases = [Case::NearlyCold, Case::CachedPrefix];
    let mut results = Vec::new();
    for case in cases {
        let mut rows: Vec<[f64; 6]> = Vec::new();
        let mut decoded = Vec::new();
        for run in 1..=args.runs {
            let (system, prompt) = case.conversation(run);
            let s = rt.block_on(stream(
                &client,
                &url,
                request(system.as_deref(), &prompt, args.tokens),
            ))?;
            let mut bare_run = Command::new(&bare);
            bare_run
                .args(["--model", &args.model])
                .args(["--threads", &args.threads.to_string()])
                .args(["--tokens", &args.tokens.to_string(), "--prompt", &prompt])
                .args(["--cached", &s.cached_tokens.to_string()]);
            if let Some(system) = &system {
                bare_run.args(["--system", system]);
            }
            let b = last_json_line(bare_run)?;
            if b["prompt_tokens"].as_u64() != Some(s.prompt_tokens) {
                bail!(
                    "the two sides rendered different prompts: bare llama.cpp {} tokens, the gateway {}",
                    b["prompt_tokens"],
                    s.prompt_tokens
                );
            }
            let new_tokens = s.prompt_tokens - s.cached_tokens;
            let gen_s = s.tokens.last().copied().unwrap_or(s.first) - s.first;
            let http = [
                new_tokens as f64 / s.first,
                (s.tokens.len() as f64 - 1.0) / gen_s,
                s.first * 1e3,
            ];
            let bare_row = [
                b["prompt_tok_s"].as_f64().unwrap_or(f64::NAN),
                b["gen_tok_s"].as_f64().unwrap_or(f64::NAN),
                b["ttft_ms"].as_f64().unwrap_or(f64::NAN),
            ];
            println!(
                "{} run {run}: {} prompt tokens, {} cached, {} decoded | bare prompt {:.0} tok/s gen {:.1} tok/s ttft {:.1} ms | http prompt {:.0} tok/s gen {:.1} tok/s ttft {:.1} ms ({} completion tokens)",
                case.name(), s.prompt_tokens, s.cached_tokens, new_tokens,
                bare_row[0], bare_row[1], bare_row[2], http[0], http[1], http[2], s.completion_tokens
            );
            rows.push([
                bare_row[0],
                bare_row[1],
                bare_row[2],
                http[0],
                http[1],
                http[2],
            ]);
            decoded.push(new_tokens as f64);
        }
        let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
        results.push(CaseResult {
            case,
            decoded: median(decoded),
            medians: [col(0), col(1), col(2), col(3), col(4), col(5)],
        });
    }
    let single_stream = results[0].medians[4];

    // Four concurrent streams: the aggregate rate while all four are generating.
    let mut aggregates = Vec::new();
    for run in 0..3 {
        let streams = rt.block_on(async {
            let reqs = (0..4).map(|i| {
                stream(
                    &client,
                    &url,
                    request(None, &format!("Tale {run}-{i}. {PROMPT}"), args.tokens),
                )
            });
            let mut out = Vec::new();
            for r in futures::future::join_all(reqs).await {
                out.push(r?);
            }
            Ok::<_, anyhow::Error>(out)
        })?;
        let from = streams.iter().map(|s| s.first).fold(0.0, f64::max);
        let to = streams
            .iter()
            .map(|s| s.tokens.last().copied().unwrap_or(0.0))
            .fold(f64::INFINITY, f64::min);
        let n = streams
            .iter()
            .flat_map(|s| s.tokens.iter())
            .filter(|&&t| t > from && t <= to)
            .count();
        aggregates.push(n as f64 / (to - from));
    }
    let aggregate = median(aggregates);

    // Time to first token for a 20-token user turn after the system prompt is cached.
    let mut ttfts = Vec::new();
    let mut turn_decoded = 0;
    for run in 0..5 {
        rt.block_on(stream(&client, &url, request(Some(SYSTEM), "Hi.", 1)))?;
        let s = rt.block_on(stream(
            &client,
            &url,
            request(Some(SYSTEM), &format!("{TURN} ({run})"), 8),
        ))?;
        ttfts.push(s.first * 1e3);
        turn_decoded = s.prompt_tokens - s.cached_tokens;
    }
    let cached_ttft = median(ttfts);
    let rss = peak_rss_mib(gateway.0.id())?;
    gateway.terminate()?;
    // The same turn after the same cached system prompt, bare (the gateway has stopped).
    let mut cached_run = Command::new(&bare_cached);
    cached_run
        .args([
            "--model",
            &args.model,
            "--threads",
            &args.threads.to_string(),
        ])
        .args(["--system", SYSTEM, "--prompt", TURN]);
    let b = last_json_line(cached_run)?;
    let bare_cached_ttft = b["cached_turn_ttft_ms"].as_f64().unwrap_or(f64::NAN);
    let bare_turn_decoded = b["decoded_tokens"].as_u64().unwrap_or(0);

    println!();
    println!(
        "{} , {} threads, {} tokens, medians of {} runs:",
        args.model, args.threads, args.tokens, args.runs
    );
    let mut report = serde_json::Map::new();
    for r in &results {
        let [bp, bg, bt, hp, hg, ht] = r.medians;
        println!(
            "  {} ({:.0} prompt tokens decoded by each side):",
            r.case.name(),
            r.decoded
        );
        println!("                   prompt tok/s   gen tok/s   ttft ms");
        println!("    bare llama.cpp {bp:>12.0} {bg:>11.1} {bt:>9.1}");
        println!("    switchyard     {hp:>12.0} {hg:>11.1} {ht:>9.1}");
        println!(
            "    ratio          {:>12.3} {:>11.3} {:>9.3}",
            hp / bp,
            hg / bg,
            ht / bt
        );
        report.insert(
            r.case.key().to_owned(),
            json!({
                "decoded_prompt_tokens": r.decoded,
                "bare_prompt_tok_s": bp, "bare_gen_tok_s": bg, "bare_ttft_ms": bt,
                "http_prompt_tok_s": hp, "http_gen_tok_s": hg, "http_ttft_ms": ht,
                "prompt_ratio": hp / bp, "gen_ratio": hg / bg, "ttft_ratio": ht / bt,
            }),
        );
    }
    println!(
        "  4 concurrent streams: aggregate {aggregate:.1} gen tok/s = {:.2}x single-stream",
        aggregate / single_stream
    );
    println!(
        "  ttft after a cached system prompt (20-token turn; decoded: gateway {turn_decoded}, bare {bare_turn_decoded} tokens): \
         {cached_ttft:.1} ms; bare llama.cpp {bare_cached_ttft:.1} ms; ratio {:.3}",
        cached_ttft / bare_cached_ttft
    );
    println!("  gateway peak RSS: {rss:.0} MiB");
    report.extend([
        ("aggregate_gen_tok_s_4".to_owned(), json!(aggregate)),
        (
            "aggregate_over_single".to_owned(),
            json!(aggregate / single_stream),
        ),
        ("cached_system_ttft_ms".to_owned(), json!(cached_ttft)),
        (
            "bare_cached_system_ttft_ms".to_owned(),
            json!(bare_cached_ttft),
        ),
        (
            "cached_system_ttft_ratio".to_owned(),
            json!(cached_ttft / bare_cached_ttft),
        ),
        ("gateway_peak_rss_mib".to_owned(), json!(rss)),
    ]);
    println!("{}", Value::Object(report));

    let mut floors = Floors::default();
    for r in &results {
        floors.check(
            &format!("{} generation, switchyard / bare llama.cpp", r.case.name()),
            r.medians[4] / r.medians[1],
            Bound::AtLeast,
            0.95,
        );
    }
    floors.check(
        "4 concurrent streams / one stream",
        aggregate / single_stream,
        Bound::AtLeast,
        2.0,
    );
    floors.check(
        "ttft ms, 20-token turn after a cached system prompt",
        cached_ttft,
        Bound::AtMost,
        50.0,
    );
    floors.finish()
}

/// What the KV cache holds before a measured request, the same on both sides.
#[derive(Clone, Copy)]
enum Case {
    /// A system message that differs from the first word each run: only the chat template's
    /// opening tokens are shared with anything cached.
    NearlyCold,
    /// The same ~90-token system message every run (a deployment's fixed preamble), so it and
    /// the user turn's "Story number " opening are shared with the previous request.
    CachedPrefix,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::NearlyCold => "nearly cold",
            Case::CachedPrefix => "cached prefix",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Case::NearlyCold => "nearly_cold",
            Case::CachedPrefix => "cached_prefix",
        }
    }

    /// The system message (if any) and user message of run `run`.
    fn conversation(self, run: usize) -> (Option<String>, String) {
        match self {
            Case::NearlyCold => (
                Some(format!("{run} is this story's number. You write stories.")),
                PROMPT.to_owned(),
            ),
            Case::CachedPrefix => (
                Some(SYSTEM.to_owned()),
                format!("Story number {run}. {PROMPT}"),
            ),
        }
    }
}

struct CaseResult {
    case: Case,
    decoded: f64,
    /// Bare prompt tok/s, gen tok/s, ttft ms; then the same through the gateway.
    medians: [f64; 6],
}
