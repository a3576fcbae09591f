//! `POST /v1/embeddings`: the in-process sentence embedder.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine as _;
use switchyard_api::{
    ApiError, Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
    ErrorKind,
};
use switchyard_embed::Embedder;

use crate::error::ErrorResponse;
use crate::record::OutcomeSlot;

/// The embedding model and the name clients ask for it by.
pub struct EmbeddingModel {
    pub name: String,
    pub embedder: Arc<Embedder>,
}

pub async fn embeddings(
    State(model): State<Option<Arc<EmbeddingModel>>>,
    Extension(slot): Extension<OutcomeSlot>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmbeddingResponse>, ErrorResponse> {
    let req: EmbeddingRequest = crate::body::parse_json(body)?;
    slot.lock().requested_model.clone_from(&req.model);
    let Some(model) = model else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "this gateway serves no embedding model; add an [embeddings] table to the config",
        )
        .with_code("model_not_found")
        .into());
    };
    if req.model != model.name {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "embedding model `{}` is not served here; use `{}`",
                req.model, model.name
            ),
        )
        .with_param("model")
        .with_code("model_not_found")
        .into());
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("`encoding_format` is \"{other}\": use \"float\" or \"base64\""),
            )
            .into())
        }
    };
    let texts: Vec<String> = req.input.texts().into_iter().map(str::to_owned).collect();
    if texts.is_empty() {
        return Err(ApiError::invalid("input", "`input` is empty: send at least one text").into());
    }
    {
        let mut o = slot.lock();
        o.model.clone_from(&model.name);
        o.route = "explicit".into();
        o.reason = format!("explicit: embeddings from {}", model.name);
    }
    let started = Instant::now();
    let embedder = model.embedder.clone();
    // Embedding is CPU work of a few milliseconds: keep it off the async workers.
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed(&refs)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("the embedding task failed: {e}"),
        )
    })?
    .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let tokens = out.tokens as u32;
    {
        let mut o = slot.lock();
        o.upstream_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        o.prompt_tokens = tokens;
    }
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| Embedding {
            object: "embedding".into(),
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Float(v)
            },
        })
        .collect();
    Ok(Json(EmbeddingResponse {
        object: "list".into(),
        data,
        model: model.name.clone(),
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }))
}
