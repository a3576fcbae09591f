//! `switchyard chat "question"`: one request through the whole path (a running gateway at
//! --url, or one started in-process on a loopback port), then the answer and the decision.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The question (one user message).
    question: String,
    /// A running gateway's base URL, e.g. http://127.0.0.1:8080; when unset, a gateway is
    /// started in-process from --config (or the embedded default).
    #[arg(long)]
    url: Option<String>,
    /// The config for the in-process gateway.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The model to ask for: a configured name, or "auto" for the router.
    #[arg(long, default_value = "auto")]
    model: String,
    /// Sampling temperature; 0 (the default here) answers deterministically, so the same
    /// question shows the same answer and decision.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// The gateway's API key, when it has any.
    #[arg(long, env = "SWITCHYARD_API_KEY")]
    api_key: Option<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let (base, local) = match &args.url {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let config = crate::load_config(args.config.as_deref())?;
            let local = crate::Local::start(&config).await?;
            (local.base.clone(), Some(local))
        }
    };
    let result = ask(&base, &args).await;
    if let Some(local) = local {
        local.stop().await?;
    }
    result
}

async fn ask(base: &str, args: &Args) -> Result<()> {
    let body = serde_json::json!({
        "model": args.model,
        "messages": [{"role": "user", "content": args.question}],
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
    });
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&body);
    if let Some(key) = &args.api_key {
        req = req.bearer_auth(key);
    }
    let started = Instant::now();
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {base}"))?;
    let elapsed = started.elapsed();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let (model, route, scores, cost, id) = (
        header("x-switchyard-model"),
        header("x-switchyard-route"),
        header("x-switchyard-scores"),
        header("x-switchyard-cost-usd"),
        header("x-switchyard-request-id"),
    );
    let status = resp.status();
    let json: serde_json::Value = resp
        .json()
        .await
        .context("the gateway's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "the gateway answered {status}: {}",
            json["error"]["message"].as_str().unwrap_or("(no message)")
        );
    }
    let answer = json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    println!("{}", answer.trim());
    println!();
    println!("model:   {model}");
    println!("route:   {route}");
    if scores != "-" {
        println!("scores:  {scores}");
    }
    if let Some(sources) = json["switchyard"]["sources"].as_array() {
        if sources.is_empty() {
            println!("sources: none relevant");
        }
        for (i, s) in sources.iter().enumerate() {
            let heading = s["heading"].as_str().filter(|h| !h.is_empty());
            println!(
                "{}[{}] {}{} (score {:.2})",
                if i == 0 { "sources: " } else { "         " },
                i + 1,
                s["document"].as_str().unwrap_or("?"),
                heading.map(|h| format!(" > {h}")).unwrap_or_default(),
                s["score"].as_f64().unwrap_or(0.0)
            );
        }
    }
    println!("cost:    ${cost}");
    println!(
        "tokens:  {} prompt + {} completion",
        json["usage"]["prompt_tokens"], json["usage"]["completion_tokens"]
    );
    println!("latency: {:.0} ms", elapsed.as_secs_f64() * 1e3);
    println!("request: {id}");
    Ok(())
}
