//! Shared pieces of the benchmark programs: child processes, percentiles, open-loop load.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A program built next to this one (same target folder and profile).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --release --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// A child process that is stopped when dropped.
pub struct Process(pub Child);

impl Process {
    /// Starts `program args…` and waits until it prints a line containing `http://HOST:PORT`.
    pub fn start_printing_url(mut cmd: Command) -> Result<(Process, String)> {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the program")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("the program exited before printing its address");
            };
            let line = line?;
            if let Some(w) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                break w.trim_end_matches(['/', ',', ')']).to_owned();
            }
        };
        Ok((Process(child), url))
    }

    /// Asks the process to stop the way an operator would (SIGTERM) and waits for it.
    pub fn terminate(mut self) -> Result<()> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let status = self.0.wait()?;
        if !status.success() {
            bail!("process exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The value below which `q` of the sorted samples fall (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Latencies (ms, sorted) and error count of an open-loop run.
pub struct LoadResult {
    pub latencies_ms: Vec<f64>,
    pub errors: usize,
    pub sent: usize,
}

/// Sends `body` to `url` at a fixed `rate` for `duration`, open loop: requests go out on
/// schedule whether or not earlier ones have answered, so a slow server cannot slow the load.
/// Each latency runs from the request's scheduled send time, not from when its task first ran
/// (as `oha --latency-correction` does): a stall that delays sending is counted, not hidden
/// (coordinated omission). Both phases of a comparison pay the same wait for the 1 ms tick that
/// sends a due request.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    rate: f64,
    duration: Duration,
) -> LoadResult {
    open_loop_as(client, url, body, rate, duration, &[]).await
}

/// [`open_loop`], each request sent with the next of `keys` as its bearer token, round robin
/// (none when `keys` is empty).
pub async fn open_loop_as(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    rate: f64,
    duration: Duration,
    keys: &[String],
) -> LoadResult {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity((rate * duration.as_secs_f64()) as usize + 16);
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < duration {
        tick.tick().await;
        // Request i is due at i / rate: every one whose time has come goes out now.
        let due = (start.elapsed().as_secs_f64() * rate) as usize + 1;
        while sent < due {
            let scheduled = start + Duration::from_secs_f64(sent as f64 / rate);
            sent += 1;
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if !keys.is_empty() {
                req = req.bearer_auth(&keys[sent % keys.len()]);
            }
            tasks.push(tokio::spawn(async move {
                let ok = match req.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (ok, scheduled.elapsed().as_secs_f64() * 1e3)
            }));
        }
    }
    let mut latencies_ms = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((true, ms)) => latencies_ms.push(ms),
            _ => errors += 1,
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    LoadResult {
        latencies_ms,
        errors,
        sent,
    }
}

/// Whether a figure must stay at or below its floor (a latency) or at or above it (a rate).
#[derive(Clone, Copy)]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// The floors an issue set for a benchmark's figures: each check prints PASS or FAIL, and
/// `finish` fails when any figure missed its floor, so the program exits non-zero.
#[derive(Default)]
pub struct Floors {
    missed: Vec<String>,
}

impl Floors {
    pub fn check(&mut self, what: &str, value: f64, bound: Bound, floor: f64) {
        let (ok, sign) = match bound {
            Bound::AtMost => (value <= floor, "<="),
            Bound::AtLeast => (value >= floor, ">="),
        };
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!("{verdict} {what}: {value:.3} (floor {sign} {floor})");
        if !ok {
            self.missed.push(what.to_owned());
        }
    }

    pub fn finish(self) -> Result<()> {
        if self.missed.is_empty() {
            Ok(())
        } else {
            bail!("missed the floor: {}", self.missed.join(", "))
        }
    }
}
