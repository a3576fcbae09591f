//! The auth layer: when API keys are configured, `/v1` needs `Authorization: Bearer <key>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use switchyard_api::{ApiError, ErrorKind};

use crate::error::ErrorResponse;

/// The keys that open `/v1`; empty means no auth.
pub struct ApiKeys(pub Vec<String>);

impl ApiKeys {
    /// Compares against every key in constant time, so timing tells nothing about a key.
    fn accepts(&self, presented: &[u8]) -> bool {
        self.0.iter().fold(false, |found, key| {
            found | bool::from(key.as_bytes().ct_eq(presented))
        })
    }
}

pub async fn require_key(State(keys): State<Arc<ApiKeys>>, req: Request, next: Next) -> Response {
    if keys.0.is_empty() {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(key) if keys.accepts(key) => next.run(req).await,
        Some(_) => ErrorResponse(ApiError::new(
            ErrorKind::Authentication,
            "the API key in `Authorization: Bearer …` is not valid for this gateway; check [server] api_keys",
        ))
        .into_response(),
        None => ErrorResponse(ApiError::new(
            ErrorKind::Authentication,
            "missing API key: send `Authorization: Bearer <key>` with one of the gateway's [server] api_keys",
        ))
        .into_response(),
    }
}
