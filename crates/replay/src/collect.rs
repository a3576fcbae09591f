//! Step one: every model answers every request once, through a running gateway.
//!
//! Each request is sent as `"model": "auto"` with the headers that pin the model (and the
//! row's route, when it names one): the router's route still applies, with its system prompt,
//! knowledge base and guard policy, but the pinned model answers it alone. Answers come back
//! in any order and are cached as they arrive.

use std::time::Instant;

use futures::StreamExt;
use switchyard_api::TokenLogprob;

use crate::cache::{Answer, AnswerCache, CacheError};
use crate::workload::Item;

/// A model to collect answers from.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// Local models are asked for token logprobs (the cascade's confidence needs them).
    pub local: bool,
}

/// Where and how to collect.
pub struct Gateway<'a> {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub base: &'a str,
    pub api_key: Option<&'a str>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Longest answer when the row does not say.
    pub max_tokens: u32,
}

/// What a collection did.
#[derive(Debug, Default)]
pub struct Collected {
    /// Answers already in the cache.
    pub cached: usize,
    /// Answers asked for now.
    pub asked: usize,
    /// The requests that failed, as `(line, model, error)`; they are asked again next run.
    pub failed: Vec<(usize, String, String)>,
}

/// Asks every model in `targets` every item the cache lacks; `progress` is told after each
/// answer, with how many of `total` are done.
pub async fn collect(
    gateway: &Gateway<'_>,
    items: &[Item],
    targets: &[Target],
    cache: &mut AnswerCache,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Collected, CacheError> {
    let client = reqwest::Client::new();
    let mut done = Collected::default();
    let mut wanted = Vec::new();
    for item in items {
        for t in targets {
            if cache.get(&item.id, &t.name).is_some() {
                done.cached += 1;
            } else {
                wanted.push((item, t));
            }
        }
    }
    let total = done.cached + wanted.len();
    progress(done.cached, total);
    let mut answers = futures::stream::iter(wanted)
        .map(|(item, t)| {
            let client = &client;
            async move { (item, t, ask(client, gateway, item, t).await) }
        })
        .buffer_unordered(gateway.concurrency.max(1));
    while let Some((item, t, answer)) = answers.next().await {
        done.asked += 1;
        match answer {
            Ok(a) => cache.put(a)?,
            Err(e) => done.failed.push((item.line, t.name.clone(), e)),
        }
        progress(done.cached + done.asked, total);
    }
    Ok(done)
}

async fn ask(
    client: &reqwest::Client,
    gateway: &Gateway<'_>,
    item: &Item,
    target: &Target,
) -> Result<Answer, String> {
    let mut body = serde_json::json!({
        "model": "auto",
        "messages": item.messages,
        "temperature": item.temperature.unwrap_or(0.0),
        "max_tokens": item.max_tokens.unwrap_or(gateway.max_tokens),
    });
    if target.local {
        body["logprobs"] = true.into();
    }
    let mut req = client
        .post(format!("{}/v1/chat/completions", gateway.base))
        .header("x-switchyard-pin-model", &target.name)
        .json(&body);
    if let Some(route) = &item.route {
        req = req.header("x-switchyard-pin-route", route);
    }
    if let Some(key) = gateway.api_key {
        req = req.bearer_auth(key);
    }
    let started = Instant::now();
    let resp = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the gateway at {}: {e}", gateway.base))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (served_by, route, cost) = (
        header("x-switchyard-model"),
        header("x-switchyard-route"),
        header("x-switchyard-cost-usd"),
    );
    let status = resp.status();
    let json: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    if !status.is_success() {
        return Err(format!(
            "the gateway answered {status}: {}",
            json["error"]["message"].as_str().unwrap_or("(no message)")
        ));
    }
    let choice = &json["choices"][0];
    let logprobs: Vec<TokenLogprob> =
        serde_json::from_value(choice["logprobs"]["content"].clone()).unwrap_or_default();
    let tokens = |k: &str| json["usage"][k].as_u64().unwrap_or(0) as u32;
    Ok(Answer {
        item: item.id.clone(),
        model: target.name.clone(),
        served_by,
        route,
        text: choice["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        finish_reason: choice["finish_reason"].as_str().map(str::to_owned),
        logprobs,
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
        cost_usd: cost.parse().unwrap_or(0.0),
        latency_ms,
    })
}
