//! Knowledge bases on the request path and over HTTP: the passages a route retrieves for the
//! conversation, and the `/v1/knowledge` endpoints that search a base and add, list and remove
//! its documents.
//!
//! The server builds each base's index when it starts; documents added or removed through
//! these endpoints update it at once, while `switchyard ingest` run against the same store is
//! seen by a server started after it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_api::{ApiError, ChatRequest, ErrorKind, Role};
use switchyard_knowledge::{Format, Hit, Ingested, Knowledge, KnowledgeError, Mode, Search, MAX_K};

use crate::error::ErrorResponse;

/// The store's knowledge bases; none when the config has no `[embeddings]` to embed them with.
pub type Bases = Option<Arc<Knowledge>>;

/// What a route's retrieval found for one request.
pub struct Grounding {
    pub base: String,
    /// The passages for the prompt, best first; empty when none reached the route's
    /// `min_score`.
    pub hits: Vec<Hit>,
}

impl Grounding {
    /// The system text that puts the passages, numbered, before the conversation.
    pub fn prompt(&self) -> String {
        switchyard_knowledge::prompt(&self.hits)
    }

    /// The response's `switchyard.sources`: where each numbered passage came from, and its
    /// cosine similarity to the question.
    pub fn sources(&self) -> Value {
        Value::Array(
            self.hits
                .iter()
                .map(|h| {
                    json!({
                        "document": h.document,
                        "chunk": h.chunk,
                        "heading": h.heading,
                        "score": h.similarity.unwrap_or(h.score),
                    })
                })
                .collect(),
        )
    }

    /// The request log's `sources`: ids only, never passage text.
    pub fn log(&self) -> String {
        let chunks: Vec<String> = self
            .hits
            .iter()
            .map(|h| format!("{}#{}", h.document, h.chunk))
            .collect();
        json!({"kb": self.base, "chunks": chunks}).to_string()
    }
}

/// Follow-ups shorter than this many words ("and for business accounts?") are searched
/// together with the user's message before them, which says what they are about.
const FOLLOW_UP_WORDS: usize = 8;

/// What to retrieve for: the conversation's last user message, with the one before it when
/// the last is a short follow-up.
pub fn query(req: &ChatRequest) -> String {
    let mut users = req
        .messages
        .iter()
        .rev()
        .filter(|m| matches!(m.role, Role::User))
        .map(|m| m.text());
    let last = users.next().unwrap_or_default();
    match users.next() {
        Some(before) if last.split_whitespace().count() < FOLLOW_UP_WORDS => {
            format!("{before}\n{last}")
        }
        _ => last,
    }
}

/// The route's passages for `query`: the base's best `k` (hybrid retrieval), or none when
/// even the best is less similar to the question than `min_score`.
pub async fn ground(
    knowledge: &Arc<Knowledge>,
    route: &switchyard_router::Knowledge,
    query: String,
) -> Result<Grounding, ApiError> {
    let knowledge = knowledge.clone();
    let base = route.base.clone();
    let k = route.k;
    let hits = blocking(move || {
        knowledge.search(
            &base,
            &Search {
                text: &query,
                k,
                mode: Mode::Hybrid,
                prefix: None,
            },
        )
    })
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!(
                "the route's knowledge base `{}` could not be searched: {}",
                route.base, e.message
            ),
        )
    })?;
    let relevant = hits.iter().any(|h| {
        h.similarity
            .is_some_and(|s| f64::from(s) >= route.min_score)
    });
    Ok(Grounding {
        base: route.base.clone(),
        hits: if relevant { hits } else { Vec::new() },
    })
}

/// Runs a knowledge call (SQLite and the embedder) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KnowledgeError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("knowledge task failed: {e}")))?
        .map_err(api_error)
}

fn api_error(e: KnowledgeError) -> ApiError {
    let kind = match &e {
        KnowledgeError::UnknownBase { .. } => ErrorKind::NotFound,
        KnowledgeError::BadName(_)
        | KnowledgeError::BadPath(_)
        | KnowledgeError::Parse { .. }
        | KnowledgeError::Mismatch { .. } => ErrorKind::InvalidRequest,
        _ => ErrorKind::Internal,
    };
    let error = ApiError::new(kind, e.to_string());
    if kind == ErrorKind::NotFound {
        error.with_code("knowledge_base_not_found")
    } else {
        error
    }
}

fn available(bases: &Bases) -> Result<Arc<Knowledge>, ApiError> {
    bases.clone().ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            "this gateway serves no knowledge bases: they are embedded with the sentence embedder, so add an [embeddings] table to the config",
        )
        .with_code("knowledge_unavailable")
    })
}

fn default_k() -> usize {
    5
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    query: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    mode: Mode,
    /// Only documents whose path starts with this.
    prefix: Option<String>,
}

/// `POST /v1/knowledge/{kb}/search`.
pub async fn search(
    State(bases): State<Bases>,
    Path(kb): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ErrorResponse> {
    let knowledge = available(&bases)?;
    let body: SearchBody = crate::body::parse_json(body)?;
    if body.query.trim().is_empty() {
        return Err(
            ApiError::invalid("query", "`query` is empty: give the text to search for").into(),
        );
    }
    if !(1..=MAX_K).contains(&body.k) {
        return Err(ApiError::invalid(
            "k",
            format!("`k` is {}; ask for 1 to {MAX_K} passages", body.k),
        )
        .into());
    }
    let mode = body.mode;
    let hits = blocking(move || {
        knowledge.search(
            &kb,
            &Search {
                text: &body.query,
                k: body.k,
                mode,
                prefix: body.prefix.as_deref(),
            },
        )
    })
    .await?;
    let data: Vec<Value> = hits
        .into_iter()
        .map(|h| {
            json!({
                "document": h.document,
                "chunk": h.chunk,
                "heading": h.heading,
                "text": h.text,
                "score": h.score,
            })
        })
        .collect();
    Ok(Json(
        json!({"object": "list", "mode": mode.name(), "data": data}),
    ))
}

/// `GET /v1/knowledge`: the bases, with their counts of documents and chunks.
pub async fn bases(State(bases): State<Bases>) -> Result<Json<Value>, ErrorResponse> {
    let knowledge = available(&bases)?;
    let data = blocking(move || knowledge.bases()).await?;
    Ok(Json(json!({"object": "list", "data": data})))
}

/// `GET /v1/knowledge/{kb}/documents`.
pub async fn documents(
    State(bases): State<Bases>,
    Path(kb): Path<String>,
) -> Result<Json<Value>, ErrorResponse> {
    let knowledge = available(&bases)?;
    let docs = blocking(move || knowledge.documents(&kb)).await?;
    let data: Vec<Value> = docs
        .into_iter()
        .map(|d| {
            json!({
                "object": "knowledge.document",
                "path": d.path,
                "format": d.format,
                "bytes": d.bytes,
                "chunks": d.chunks,
                "sha256": d.sha256,
                "ingested_at": d.ingested_at_ms / 1000,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[derive(Deserialize)]
pub struct Upload {
    /// The document's path in the base (`billing/late-payment.md`).
    path: Option<String>,
}

/// The document's format: its Content-Type when that names one, else its path's extension.
fn format(headers: &HeaderMap, path: &str) -> Result<Format, ApiError> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::of_media_type)
        .or_else(|| Format::of_path(std::path::Path::new(path)))
        .ok_or_else(|| {
            ApiError::invalid(
                "path",
                format!(
                    "cannot tell the format of `{path}`: send Content-Type text/markdown, text/plain, text/html or application/pdf, or end the path in .md, .txt, .html or .pdf"
                ),
            )
        })
}

/// `POST /v1/knowledge/{kb}/documents?path=P`: ingests the body as one document (creating the
/// base when new), replacing what was stored at `P`.
pub async fn upload(
    State(bases): State<Bases>,
    Path(kb): Path<String>,
    query: Result<Query<Upload>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ErrorResponse> {
    let knowledge = available(&bases)?;
    let Query(upload) =
        query.map_err(|e| ApiError::invalid("path", format!("bad query string: {e}")))?;
    let path = upload
        .path
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "path",
                "name the document with `?path=`, e.g. ?path=billing/late-payment.md",
            )
        })?;
    let format = format(&headers, &path)?;
    let body = crate::body::bytes(body)?;
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("the body is empty: send the document `{path}` itself as the body"),
        )
        .into());
    }
    let (kb_name, name) = (kb.clone(), path.clone());
    let ingested = blocking(move || knowledge.ingest(&kb_name, &name, format, &body)).await?;
    let (status, code, chunks) = match ingested {
        Ingested::Stored { chunks } => (StatusCode::CREATED, "stored", Some(chunks)),
        Ingested::Unchanged => (StatusCode::OK, "unchanged", None),
    };
    Ok((
        status,
        Json(json!({
            "object": "knowledge.document",
            "kb": kb,
            "path": path,
            "format": format.name(),
            "status": code,
            "chunks": chunks,
        })),
    ))
}

/// `DELETE /v1/knowledge/{kb}/documents/{path}`.
pub async fn delete(
    State(bases): State<Bases>,
    Path((kb, path)): Path<(String, String)>,
) -> Result<Json<Value>, ErrorResponse> {
    let knowledge = available(&bases)?;
    let (kb_name, name) = (kb.clone(), path.clone());
    let removed = blocking(move || knowledge.delete(&kb_name, &name)).await?;
    if !removed {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("knowledge base `{kb}` has no document `{path}`; GET /v1/knowledge/{kb}/documents lists them"),
        )
        .with_code("document_not_found")
        .into());
    }
    Ok(Json(json!({
        "object": "knowledge.document.deleted",
        "kb": kb,
        "path": path,
        "deleted": true,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(messages: Value) -> ChatRequest {
        serde_json::from_value(json!({"model": "auto", "messages": messages})).unwrap()
    }

    #[test]
    fn the_query_is_the_last_user_message() {
        let req = request(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the late payment fee on a home internet account?"},
            {"role": "assistant", "content": "It is $9.50."},
            {"role": "user", "content": "When is the service restricted if I still have not paid my bill?"}
        ]));
        assert_eq!(
            query(&req),
            "When is the service restricted if I still have not paid my bill?"
        );
    }

    #[test]
    fn a_short_follow_up_is_searched_with_the_question_before_it() {
        let req = request(json!([
            {"role": "user", "content": "What is the late payment fee?"},
            {"role": "assistant", "content": "It is $9.50."},
            {"role": "user", "content": "And for business accounts?"}
        ]));
        assert_eq!(
            query(&req),
            "What is the late payment fee?\nAnd for business accounts?"
        );
    }

    #[test]
    fn the_log_keeps_chunk_ids_and_no_passage_text() {
        let g = Grounding {
            base: "corvane".into(),
            hits: vec![Hit {
                document: "billing/late-payment.md".into(),
                chunk: 2,
                heading: "Late payment > Late payment fee".into(),
                text: "a fee of $9.50".into(),
                score: 0.03,
                similarity: Some(0.61),
            }],
        };
        assert_eq!(
            g.log(),
            r#"{"chunks":["billing/late-payment.md#2"],"kb":"corvane"}"#
        );
        let sources = g.sources();
        assert_eq!(sources[0]["document"], "billing/late-payment.md");
        assert_eq!(sources[0]["chunk"], 2);
        assert!((sources[0]["score"].as_f64().unwrap() - 0.61).abs() < 1e-6);
        assert!(sources[0].get("text").is_none());
    }
}
