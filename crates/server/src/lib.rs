//! The gateway: an axum app wiring the request path's stages.
//!
//! Each cross-cutting concern is a layer around the `/v1` routes (outermost first): record
//! (request id, `x-switchyard-*` headers, the request-log row and metrics), then auth; the
//! handlers hold only their stage's logic.

pub mod config;

mod auth;
mod body;
mod chat;
mod embeddings;
mod error;
mod feedback;
mod gateway;
mod guard;
mod knowledge;
mod local;
mod metrics;
mod record;
mod usage;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{middleware, Json, Router};
use switchyard_api::{ApiError, ErrorKind, ModelList, ModelObject};
use switchyard_store::RequestLog;

pub use config::{Config, ConfigError, ModelConfig};
pub use gateway::{load_calibration, BuildError, Gateway, LocalLoader, Model};
pub use local::{load_local, token_logprob};
pub use record::{COST, MODEL, REDACTED, REQUEST_ID, ROUTE, SCORES};

use auth::Access;
use embeddings::EmbeddingModel;
use error::ErrorResponse;
use metrics::Metrics;
use record::Recorder;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
    #[error("[embeddings]: {0}")]
    Embeddings(#[from] switchyard_embed::EmbedError),
}

/// A gateway ready to serve: its routes and the request log they write to.
pub struct Server {
    app: Router,
    log: Arc<RequestLog>,
    header_read_timeout: Duration,
}

impl Server {
    /// Builds the models and opens the request log; `local` loads `provider = "local"` models.
    pub fn new(config: &Config, local: &LocalLoader) -> Result<Server, ServerError> {
        let embedding_model = match &config.embeddings {
            Some(e) => Some(Arc::new(EmbeddingModel {
                name: e.name.clone(),
                embedder: Arc::new(switchyard_embed::Embedder::load(&e.path)?),
            })),
            None => None,
        };
        let gateway = Arc::new(Gateway::build(
            config,
            local,
            embedding_model.as_ref().map(|m| m.embedder.clone()),
        )?);
        let log = Arc::new(RequestLog::open(&config.store.path)?);
        let metrics = Arc::new(Metrics::default());
        let recorder = Arc::new(Recorder {
            log: log.clone(),
            metrics: metrics.clone(),
            baseline: config
                .baseline_model()
                .and_then(|name| config.models.get(name))
                .map(|m| m.price),
        });
        let usage_source = Arc::new(usage::UsageSource {
            log: log.clone(),
            path: config.store.path.clone(),
        });
        let access = Arc::new(Access::open(
            config.server.api_keys.clone(),
            &config.store.path,
        )?);

        let listing = Arc::new(Listing {
            gateway: gateway.clone(),
            embeddings: embedding_model.as_ref().map(|e| e.name.clone()),
        });
        let bases = gateway.knowledge.clone();
        let v1 = Router::new()
            .route("/chat/completions", post(chat::completions))
            .with_state(gateway)
            .route(
                "/embeddings",
                post(embeddings::embeddings).with_state(embedding_model),
            )
            .route("/models", get(models).with_state(listing))
            .route(
                "/feedback",
                post(feedback::feedback).with_state(log.clone()),
            )
            .route("/usage", get(usage::usage).with_state(usage_source))
            .route("/knowledge", get(knowledge::bases))
            .route("/knowledge/{kb}/search", post(knowledge::search))
            .route(
                "/knowledge/{kb}/documents",
                get(knowledge::documents).post(knowledge::upload),
            )
            .route(
                "/knowledge/{kb}/documents/{*path}",
                delete(knowledge::delete),
            )
            .with_state(bases)
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(config.server.max_body_bytes))
            .layer(middleware::from_fn_with_state(access, auth::require_key))
            .layer(middleware::from_fn_with_state(recorder, record::record));
        let app = Router::new()
            .nest("/v1", v1)
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(render_metrics).with_state(metrics))
            .fallback(not_found);
        Ok(Server {
            app,
            log,
            header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
        })
    }

    /// The routes, for serving or for driving in-process.
    pub fn router(&self) -> Router {
        self.app.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish,
    /// and flushes the request log: a clean stop loses no row.
    ///
    /// Connections are served with hyper-util's builder rather than `axum::serve`, which has no
    /// header-read timeout: a client that never finishes its headers is disconnected.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::server::graceful::GracefulShutdown;
        use hyper_util::service::TowerToHyperService;

        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let connections = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    Err(e) => {
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Streamed tokens go out as written, not held back by Nagle's algorithm.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
            let service = TowerToHyperService::new(self.app.clone());
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = connections.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
        drop(listener);
        connections.shutdown().await;
        self.log.close().await;
        Ok(())
    }
}

/// What `/v1/models` lists.
struct Listing {
    gateway: Arc<Gateway>,
    embeddings: Option<String>,
}

async fn models(State(listing): State<Arc<Listing>>) -> Json<ModelList> {
    let mut data: Vec<ModelObject> = listing
        .gateway
        .models
        .values()
        .map(|m| ModelObject::new(&m.name, m.owned_by))
        .collect();
    data.push(ModelObject::new(
        switchyard_router::AUTO,
        "switchyard-router",
    ));
    if let Some(name) = &listing.embeddings {
        data.push(ModelObject::new(name, "switchyard-local"));
    }
    Json(ModelList::new(data))
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

async fn not_found(uri: axum::http::Uri) -> ErrorResponse {
    ErrorResponse(
        ApiError::new(
            ErrorKind::NotFound,
            format!(
                "no endpoint at {uri}; Switchyard serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, POST /v1/feedback, the knowledge bases under /v1/knowledge (GET /v1/knowledge, POST /v1/knowledge/{{kb}}/search, GET and POST /v1/knowledge/{{kb}}/documents, DELETE /v1/knowledge/{{kb}}/documents/{{path}}), GET /healthz and GET /metrics"
            ),
        )
        .with_code("unknown_url"),
    )
}
