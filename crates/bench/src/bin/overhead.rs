//! Gateway overhead: latency straight to the mock upstream and through Switchyard (request
//! logging on), at a fixed request rate, alternating in the same run; p50/p99 of both and the
//! difference, each latency from the request's scheduled send time (open loop, corrected for
//! coordinated omission). Checks issue 2's floor: p99 overhead at most 1 ms at 1,000 requests/s,
//! zero errors, every request logged. The privacy guard runs its rules; its classifier, whose
//! cost the `guard` benchmark measures on its own, is off. Build first: `cargo build --release
//! --bins`.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use switchyard_bench::{
    median, open_loop, open_loop_as, percentile, sibling, Bound, Floors, Process,
};

#[derive(Parser)]
struct Args {
    /// Requests per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Direct/gateway pairs; the report gives their medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Virtual keys created in the gateway's store; the load goes round robin over them.
    #[arg(long, default_value_t = 0)]
    keys: usize,
}

const BODY: &str = r#"{"model":"mock","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16}"#;

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut mock = Command::new(sibling("switchyard-mock")?);
    mock.args(["--listen", "127.0.0.1:0"]);
    let (_mock, mock_url) = Process::start_printing_url(mock)?;
    let mock_base = format!("{}/v1", mock_url.trim_end_matches("/v1"));
    let db = dir.path().join("bench.db");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[guard]\nmodel = false\n[models.mock]\nprovider = \"openai\"\nbase_url = \"{mock_base}\"\nprice = {{ input = 1.0, output = 2.0 }}\n",
            db.display().to_string()
        ),
    )?;
    let keys: Vec<String> = {
        let store = switchyard_store::Keys::open(&db)?;
        (0..args.keys)
            .map(|i| store.create(&format!("bench-{i}"), None))
            .collect::<Result<_, _>>()?
    };
    let mut gw = Command::new(sibling("switchyard")?);
    gw.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn");
    let (gateway, gw_url) = Process::start_printing_url(gw)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let direct_url = format!("{mock_base}/chat/completions");
    let gateway_url = format!("{gw_url}/v1/chat/completions");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let phase = Duration::from_secs_f64(args.seconds);
    let (mut rows, mut sent_through_gateway) = (Vec::new(), 0usize);
    rt.block_on(async {
        // Warm both paths (connections, caches) before measuring.
        open_loop(&client, &direct_url, BODY, args.rate, Duration::from_secs(1)).await;
        let warm = open_loop_as(&client, &gateway_url, BODY, args.rate, Duration::from_secs(1), &keys).await;
        sent_through_gateway += warm.sent;
        for round in 1..=args.rounds {
            let d = open_loop(&client, &direct_url, BODY, args.rate, phase).await;
            let g = open_loop_as(&client, &gateway_url, BODY, args.rate, phase, &keys).await;
            sent_through_gateway += g.sent;
            let r = [
                percentile(&d.latencies_ms, 0.5),
                percentile(&d.latencies_ms, 0.99),
                percentile(&g.latencies_ms, 0.5),
                percentile(&g.latencies_ms, 0.99),
            ];
            println!(
                "round {round}: direct p50 {:.3} ms p99 {:.3} ms | through switchyard p50 {:.3} ms p99 {:.3} ms | errors {} + {}",
                r[0], r[1], r[2], r[3], d.errors, g.errors
            );
            rows.push((r, d.errors + g.errors));
        }
    });
    gateway.terminate()?;
    let logged = switchyard_store::read_requests(&db)?.len();

    let col = |i: usize| median(rows.iter().map(|(r, _)| r[i]).collect());
    let errors: usize = rows.iter().map(|(_, e)| e).sum();
    let (dp50, dp99, gp50, gp99) = (col(0), col(1), col(2), col(3));
    println!();
    println!(
        "rate {:.0} req/s, {} rounds of {:.0} s, {} virtual keys, medians:",
        args.rate, args.rounds, args.seconds, args.keys
    );
    println!("  direct to mock     p50 {dp50:.3} ms   p99 {dp99:.3} ms");
    println!("  through switchyard p50 {gp50:.3} ms   p99 {gp99:.3} ms");
    println!(
        "  overhead           p50 {:.3} ms   p99 {:.3} ms",
        gp50 - dp50,
        gp99 - dp99
    );
    println!("  errors {errors}; request-log rows {logged} of {sent_through_gateway} sent through the gateway");
    println!(
        "{}",
        serde_json::json!({
            "rate": args.rate, "rounds": args.rounds, "seconds": args.seconds, "keys": args.keys,
            "direct_p50_ms": dp50, "direct_p99_ms": dp99,
            "gateway_p50_ms": gp50, "gateway_p99_ms": gp99,
            "overhead_p50_ms": gp50 - dp50, "overhead_p99_ms": gp99 - dp99,
            "errors": errors, "logged_rows": logged, "gateway_requests": sent_through_gateway,
        })
    );
    let mut floors = Floors::default();
    floors.check("p99 overhead ms", gp99 - dp99, Bound::AtMost, 1.0);
    floors.check("errors", errors as f64, Bound::AtMost, 0.0);
    floors.check(
        "request-log rows missing",
        sent_through_gateway.saturating_sub(logged) as f64,
        Bound::AtMost,
        0.0,
    );
    floors.finish()
}
