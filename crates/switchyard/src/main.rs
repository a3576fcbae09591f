//! The `switchyard` command line: a thin shell over `switchyard-server`.

mod calibrate;
mod chat;
mod guard;
mod keys;
mod knowledge;
mod offline;
mod replay;
mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use switchyard_server::{Config, Server};

/// An AI gateway: small local models first, a large cloud model for the hard rest.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible gateway (with no --config: the embedded local default).
    Serve {
        /// The config file (see `switchyard init`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on; overrides [server] listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Write a commented example config.
    Init {
        /// Where to write it.
        #[arg(default_value = "switchyard.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Send one request through the whole path; print the answer and the decision.
    Chat(chat::Args),
    /// Learn a router from labelled data (RouteLLM-style CSV, JSONL, or the request log);
    /// write its model file.
    Train(offline::TrainArgs),
    /// Replay labelled data through a learned router and the baselines: APGR, CPT, a plot.
    Eval(offline::EvalArgs),
    /// Every model answers a labelled workload through the gateway; every router is replayed
    /// on the answers: share served small, quality kept, cost saved, latency, APGR.
    Replay(replay::Args),
    /// Fit the cascade's confidence calibration: run a local model over labelled questions.
    Calibrate(calibrate::Args),
    /// The privacy guard: scan a text for personal data, or evaluate the detector.
    Guard(guard::Args),
    /// Put documents (Markdown, text, HTML, PDF; files or folders) into a knowledge base.
    Ingest(knowledge::IngestArgs),
    /// Knowledge bases: list them, show one's documents, evaluate retrieval and answers.
    Kb(knowledge::KbArgs),
    /// What the traffic cost, what it would have cost on the baseline model, and the saving,
    /// by key, model, route or day.
    Usage(usage::Args),
    /// Virtual API keys: create (the secret is printed once), list, revoke, rotate.
    Keys(keys::Args),
}

const EXAMPLE: &str = include_str!("switchyard.example.toml");

/// SmolLM2-135M's sampling for what a request leaves unset: at the OpenAI default temperature
/// (1) it invents ("Paris, also known as Daktaditaktadit…"), at 0.7 it still rambles and
/// miscounts, at 0.2 it answers as at 0 with some variety; 256 tokens bound a ramble.
const SMOLLM2_DEFAULTS: &str = "defaults = { temperature = 0.2, top_p = 0.9, max_tokens = 256 }";

/// The embedded default: the default SLM from the models folder, no upstream.
fn embedded_default() -> Result<Config> {
    embedded_default_in(Path::new(&switchyard_models::dir()))
}

/// The larger local tier (`scripts/fetch-models.sh --large`): with it, the embedded default
/// cascades from SmolLM2 to it, priced as gpt-4o-mini so the savings show.
const LARGE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

fn embedded_default_in(models: &Path) -> Result<Config> {
    let path = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.is_file() {
        bail!(
            "the default model {} is missing: run scripts/fetch-models.sh (or set SWITCHYARD_MODELS to the folder holding it, or pass --config)",
            path.display()
        );
    }
    let mut text = format!(
        "[models.small]\nprovider = \"local\"\npath = {:?}\n{SMOLLM2_DEFAULTS}\n",
        path.display().to_string()
    );
    let large = models.join(LARGE);
    if large.is_file() {
        text.push_str(&format!(
            "[models.large]\nprovider = \"local\"\npath = {:?}\nprice = {{ input = 0.15, output = 0.60 }}\n\
             [[routes]]\nname = \"cascade\"\nwhen = {{ min_chars = 1 }}\nladder = [\"small\", \"large\"]\ncascade = true\n",
            large.display().to_string()
        ));
    }
    let embedder = models.join("all-MiniLM-L6-v2");
    if embedder.is_dir() {
        text.push_str(&format!(
            "[embeddings]\npath = {:?}\n",
            embedder.display().to_string()
        ));
    }
    Ok(Config::parse(
        &text,
        Path::new("<embedded default>"),
        &|k| std::env::var(k).ok(),
    )?)
}

pub fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => embedded_default(),
    }
}

/// The store a config names (`[store] path`), or the default one here without a config.
pub fn store_path(config: Option<&Config>) -> PathBuf {
    config.map_or_else(
        || switchyard_server::config::StoreConfig::default().path,
        |c| c.store.path.clone(),
    )
}

pub fn build_server(config: &Config) -> Result<Server> {
    Ok(Server::new(config, &switchyard_server::load_local)?)
}

/// A gateway served in-process on a loopback port, for commands that send it requests.
pub struct Local {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), switchyard_server::ServerError>>,
}

impl Local {
    pub async fn start(config: &Config) -> Result<Local> {
        let server = build_server(config)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Local {
            base: format!("http://{addr}"),
            stop,
            task,
        })
    }

    /// Stops it the way SIGTERM does: in-flight requests finish and the log is flushed.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("the in-process gateway panicked")??;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is called, not
/// when the future is first polled, so a signal sent right after the "listening" line still
/// stops the server cleanly.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests and flushing the request log");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests and flushing the request log");
    })
}

async fn serve(config: Option<PathBuf>, listen: Option<SocketAddr>) -> Result<()> {
    let mut config = load_config(config.as_deref())?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let server = build_server(&config)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    let names: Vec<&str> = config.models.keys().map(String::as_str).collect();
    tracing::info!(%addr, models = ?names, "switchyard is serving");
    println!(
        "switchyard listening on http://{addr} (models: {})",
        names.join(", ")
    );
    server.serve(listener, shutdown).await?;
    Ok(())
}

fn init(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    std::fs::write(path, EXAMPLE).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // llama.cpp reports every tensor and key it loads at info level: warnings only,
            // unless RUST_LOG asks for more.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama-cpp-2=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Init { path, force } => init(&path, force),
        Command::Chat(args) => chat::run(args).await,
        Command::Train(args) => offline::train(args),
        Command::Eval(args) => offline::eval(args),
        Command::Replay(args) => replay::run(args).await,
        Command::Calibrate(args) => calibrate::run(args).await,
        Command::Guard(args) => guard::run(args),
        Command::Ingest(args) => knowledge::ingest(args),
        Command::Kb(args) => knowledge::kb(args).await,
        Command::Usage(args) => usage::run(args),
        Command::Keys(args) => keys::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let config = Config::parse(EXAMPLE, Path::new("switchyard.example.toml"), &|_| None)
            .expect("the example written by `switchyard init` must be a valid config");
        assert_eq!(config.default_model(), Some("small"));
        assert!(config.server.api_keys.is_empty());
        assert_eq!(config.models["large"].fallbacks, vec!["claude"]);
        assert_eq!(config.models["small"].defaults.temperature, Some(0.2));
    }

    #[test]
    fn the_embedded_default_cascades_to_the_larger_tier_when_it_is_fetched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf"), "").unwrap();
        let alone = embedded_default_in(dir.path()).unwrap();
        assert!(alone.routes.is_empty());
        assert_eq!(alone.models["small"].defaults.max_tokens, Some(256));

        std::fs::write(dir.path().join(LARGE), "").unwrap();
        let both = embedded_default_in(dir.path()).unwrap();
        assert_eq!(both.routes[0].ladder, vec!["small", "large"]);
        assert!(both.routes[0].cascade);
        assert_eq!(both.default_model(), Some("small"));
    }

    #[test]
    fn the_embedded_default_says_how_to_fetch_a_missing_model() {
        let dir = tempfile::tempdir().unwrap();
        let e = embedded_default_in(dir.path()).unwrap_err().to_string();
        assert!(e.contains("scripts/fetch-models.sh"), "{e}");
    }
}
