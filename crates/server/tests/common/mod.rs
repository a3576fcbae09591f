//! A gateway on a loopback port, built from config text, with its request log in a temp dir.
#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};

use futures::StreamExt;

use switchyard_server::{Config, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    pub base: String,
    pub db: PathBuf,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), switchyard_server::ServerError>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A local loader for configs that have no local model.
pub fn no_local(
    name: &str,
    _: &switchyard_server::ModelConfig,
) -> Result<std::sync::Arc<dyn switchyard_providers::Provider>, String> {
    Err(format!("test config has local model {name}"))
}

/// The models folder scripts/fetch-models.sh fills.
pub fn models_dir() -> String {
    switchyard_models::dir().display().to_string()
}

pub async fn start(config: &str) -> Running {
    start_with(config, &no_local).await
}

pub async fn start_with(config: &str, local: &switchyard_server::LocalLoader) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let mut running = start_at(&db, config, local).await;
    running._dir = Some(dir);
    running
}

/// A gateway whose store is the file `db`, which outlives it: a later gateway opens it again.
pub async fn start_at(db: &Path, config: &str, local: &switchyard_server::LocalLoader) -> Running {
    let db = db.to_path_buf();
    let text = format!("[store]\npath = {:?}\n{config}", db.display().to_string());
    let config = Config::parse(&text, Path::new("test.toml"), &|_| None).unwrap();
    let server = Server::new(&config, local).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        base,
        db,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
        _dir: None,
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GETs `path`, with `key` as its bearer token when given: the status and the JSON body.
    pub async fn get_json(&self, path: &str, key: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the gateway the way SIGTERM does and waits for the request log to be flushed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn rows(&mut self) -> Vec<switchyard_store::RequestRecord> {
        self.stop().await;
        switchyard_store::read_requests(&self.db).unwrap()
    }
}

/// One upstream model named `name` at the mock, asking it for `upstream` behaviour.
pub fn upstream(name: &str, provider: &str, base_url: &str, upstream: &str) -> String {
    format!(
        "[models.{name}]\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\nmodel = \"{upstream}\"\nprice = {{ input = 2.0, output = 10.0 }}\nretries = 1\ntimeouts = {{ connect_ms = 500, first_byte_ms = 1000, idle_ms = 1000, total_ms = 5000 }}\n"
    )
}

/// The `data:` payloads of a server-sent-events response, read to its end (or to where the
/// stream broke).
pub async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The text a stream's content deltas add up to.
pub fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
