//! The gateway's state: the configured models, the router and the request log, built once
//! from the config and shared by every handler.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderName;
use indexmap::IndexMap;
use lru::LruCache;
use switchyard_embed::Embedder;
use switchyard_providers::{
    AnthropicProvider, OpenAiConfig, OpenAiProvider, Provider, RetryPolicy, SetupError, Timeouts,
};
use switchyard_router::confidence::{Calibration, BUILTINS};
use switchyard_router::learned::LearnedRouter;
use switchyard_router::{LearnedPolicy, Router};

use crate::config::{Config, ModelConfig, Price, ProviderKind};

/// One configured model: who answers, at what price, and who stands in when it fails.
pub struct Model {
    pub name: String,
    pub provider: Arc<dyn Provider>,
    pub price: Price,
    pub fallbacks: Vec<String>,
    pub owned_by: &'static str,
    /// Sees requests as written: in-process, or `on_premises`.
    pub local: bool,
    /// Where it processes data, for `keep_in_region` (a local model's is the gateway's).
    pub region: Option<String>,
    /// Its own per-type guard actions.
    pub guard: std::collections::BTreeMap<switchyard_guard::Kind, crate::config::Action>,
    /// Sampling for what a request leaves unset.
    pub defaults: crate::config::SamplingDefaults,
}

pub struct Gateway {
    pub models: IndexMap<String, Model>,
    pub router: Router,
    /// Embeds conversations for semantic routes and the learned score.
    pub embedder: Option<Arc<Embedder>>,
    /// Which model answered each conversation's last turn (when conversations are sticky).
    pub conversations: Option<Mutex<LruCache<String, String>>>,
    /// Request headers that rule routes match on.
    pub metadata_headers: Vec<HeaderName>,
    /// Turns a cascade rung's logprobs into P(its answer is good).
    pub calibration: Calibration,
    /// Log the learned router's features of each routed request (`[router] record_features`).
    pub record_features: bool,
    /// The privacy guard; none when `[guard] enabled = false`.
    pub guard: Option<crate::guard::Guard>,
    /// What of a request's text the log keeps.
    pub log_text: crate::config::LogText,
    /// The store's knowledge bases, which routes answer from; none without an embedder.
    pub knowledge: crate::knowledge::Bases,
}

/// How many conversations the gateway remembers the model of.
const CONVERSATIONS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("[models.{name}]: {message}")]
    Model { name: String, message: String },
    #[error("[[routes]]: {0}")]
    Route(#[from] switchyard_router::RouteError),
    #[error("[router] calibration: {0}")]
    Calibration(String),
    #[error("[router] learned: {0}")]
    Learned(String),
    #[error("[[routes]] `{route}`: embedding its examples failed: {message}")]
    Examples { route: String, message: String },
    #[error("[guard]: {0}")]
    Guard(String),
    #[error("knowledge bases: {0}")]
    Knowledge(#[from] switchyard_knowledge::KnowledgeError),
}

/// Builds a local model's provider; the embedded engine plugs in here.
pub type LocalLoader =
    dyn Fn(&str, &ModelConfig) -> Result<Arc<dyn Provider>, String> + Send + Sync;

impl Gateway {
    pub fn build(
        config: &Config,
        local: &LocalLoader,
        embedder: Option<Arc<Embedder>>,
    ) -> Result<Gateway, BuildError> {
        let client = switchyard_providers::http_client(Duration::from_millis(
            config
                .models
                .values()
                .map(|m| m.timeouts.connect_ms)
                .max()
                .unwrap_or(5_000),
        ));
        let mut models = IndexMap::new();
        for (name, m) in &config.models {
            let err = |message: String| BuildError::Model {
                name: name.clone(),
                message,
            };
            let (provider, owned_by): (Arc<dyn Provider>, &'static str) = match m.provider {
                ProviderKind::Local => (local(name, m).map_err(err)?, "switchyard-local"),
                ProviderKind::Openai | ProviderKind::Anthropic => {
                    let cfg = OpenAiConfig {
                        base_url: m.base_url.clone().unwrap_or_default(),
                        model: m.model.clone().unwrap_or_else(|| name.clone()),
                        api_key: m.api_key.clone().filter(|k| !k.is_empty()),
                        timeouts: Timeouts {
                            connect: Duration::from_millis(m.timeouts.connect_ms),
                            first_byte: Duration::from_millis(m.timeouts.first_byte_ms),
                            idle: Duration::from_millis(m.timeouts.idle_ms),
                            total: Duration::from_millis(m.timeouts.total_ms),
                        },
                        retry: RetryPolicy {
                            max_retries: m.retries,
                            ..RetryPolicy::default()
                        },
                        client: client.clone(),
                    };
                    let setup = |e: SetupError| err(e.to_string());
                    if m.provider == ProviderKind::Openai {
                        let provider = OpenAiProvider::new(cfg).map_err(setup)?;
                        (Arc::new(provider), "openai-compatible")
                    } else {
                        let provider = AnthropicProvider::new(cfg).map_err(setup)?;
                        (Arc::new(provider), "anthropic")
                    }
                }
            };
            models.insert(
                name.clone(),
                Model {
                    name: name.clone(),
                    provider,
                    price: m.price,
                    fallbacks: m.fallbacks.clone(),
                    owned_by,
                    local: m.is_local(),
                    region: m
                        .region
                        .clone()
                        .or_else(|| m.is_local().then(|| config.guard.region.clone()).flatten()),
                    guard: m.guard.clone(),
                    defaults: m.defaults,
                },
            );
        }
        let default = config
            .default_model()
            .map(str::to_owned)
            .unwrap_or_default();
        let mut router = Router::new(models.keys().cloned().collect(), default);
        let mut metadata_headers = Vec::new();
        for route in &config.routes {
            let examples = match (&embedder, route.examples.is_empty()) {
                (_, true) => Vec::new(),
                (Some(e), false) => {
                    let texts: Vec<&str> = route.examples.iter().map(String::as_str).collect();
                    e.embed(&texts)
                        .map_err(|e| BuildError::Examples {
                            route: route.name.clone(),
                            message: e.to_string(),
                        })?
                        .vectors
                }
                // Config validation requires [embeddings] for routes with examples.
                (None, false) => Vec::new(),
            };
            if let Some(when) = &route.when {
                for name in when.headers.keys() {
                    let header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|e| BuildError::Examples {
                            route: route.name.clone(),
                            message: format!("header name `{name}`: {e}"),
                        })?;
                    if !metadata_headers.contains(&header) {
                        metadata_headers.push(header);
                    }
                }
            }
            router = router.with_route(route.clone(), examples)?;
        }
        if let Some(l) = &config.router.learned {
            let mut scorer =
                LearnedRouter::load(&l.path).map_err(|e| BuildError::Learned(e.to_string()))?;
            if let Some(t) = l.threshold {
                scorer = scorer.with_threshold(t);
            }
            router = router.with_learned(LearnedPolicy {
                threshold: scorer.threshold(),
                scorer: Box::new(scorer),
                weak: l.weak.clone(),
                strong: l.strong.clone(),
            });
        }
        let conversations = config.router.sticky_conversations.then(|| {
            Mutex::new(LruCache::new(
                NonZeroUsize::new(CONVERSATIONS).unwrap_or(NonZeroUsize::MIN),
            ))
        });
        let calibration = match &config.router.calibration {
            Some(path) => load_calibration(path)?,
            None => Calibration::builtin(),
        };
        let record_features = config.router.record_features && embedder.is_some();
        let guard = crate::guard::Guard::build(config)?;
        let knowledge = match &embedder {
            Some(e) => Some(Arc::new(knowledge(config, e.clone())?)),
            None => None,
        };
        Ok(Gateway {
            models,
            router,
            embedder,
            conversations,
            metadata_headers,
            calibration,
            record_features,
            guard,
            log_text: config.store.log_text,
            knowledge,
        })
    }
}

/// The knowledge bases kept in the config's store, their indexes built now so the first
/// request does not wait; a route naming a base the store lacks is warned about, as it may
/// be ingested through the API later.
fn knowledge(
    config: &Config,
    embedder: Arc<Embedder>,
) -> Result<switchyard_knowledge::Knowledge, BuildError> {
    let knowledge = switchyard_knowledge::Knowledge::open(&config.store.path, embedder)?;
    knowledge.load()?;
    let names = knowledge.names()?;
    for route in &config.routes {
        if let Some(base) = route
            .knowledge
            .as_deref()
            .filter(|b| !names.iter().any(|n| n == b))
        {
            tracing::warn!(
                "route `{}` answers from knowledge base `{base}`, which {} does not hold yet: its requests fail until you run `switchyard ingest --kb {base} PATH` or POST documents to /v1/knowledge/{base}/documents",
                route.name,
                config.store.path.display()
            );
        }
    }
    Ok(knowledge)
}

/// `[router] calibration`: a shipped one by name (`builtin`, `builtin:prefix4`) or a file.
pub fn load_calibration(path: &std::path::Path) -> Result<Calibration, BuildError> {
    let name = path.to_string_lossy();
    if name.starts_with("builtin") && !path.exists() {
        return Calibration::named_builtin(&name).ok_or_else(|| {
            let allowed: Vec<String> = BUILTINS
                .iter()
                .map(|(name, judges)| format!("\"{name}\" (judges {judges})"))
                .collect();
            BuildError::Calibration(format!(
                "unknown builtin calibration \"{name}\"; the builtin ones are {}, or give the \
                 path of a file written by `switchyard calibrate`",
                allowed.join(" and ")
            ))
        });
    }
    Calibration::load(path).map_err(|e| BuildError::Calibration(e.to_string()))
}
