//! `switchyard-mock --listen 127.0.0.1:9100`: a mock OpenAI/Anthropic upstream.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use switchyard_mock::{spawn, MockConfig};

/// A mock upstream speaking the OpenAI and Anthropic wire formats. The request's model id
/// selects failure modes (`fail-503`, `flaky-2`, `slow-200`, `stream-break-3`, `echo`, …; see
/// the crate docs).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mock = spawn(MockConfig {
        listen: args.listen,
        keep_requests: 0,
    })
    .await?;
    println!("switchyard-mock listening on {}", mock.base_url());
    stopped().await?;
    // Requests in flight get a moment to finish; stalled streams do not hold the exit.
    let _ = tokio::time::timeout(Duration::from_secs(2), mock.shutdown()).await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
