//! The auth layer: when API keys are configured, `/v1` needs `Authorization: Bearer <key>`.
//! The key a request came with is named in its outcome (`api_keys[0]`, by its place in the
//! config), so usage and spend are attributed to it without the secret reaching the log.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use switchyard_api::{ApiError, ErrorKind};

use crate::error::ErrorResponse;
use crate::record::OutcomeSlot;

/// The keys that open `/v1`; empty means no auth.
pub struct ApiKeys(pub Vec<String>);

impl ApiKeys {
    /// The place of the key presented among the configured ones. Compares against every key
    /// in constant time, so timing tells nothing about a key.
    fn accepts(&self, presented: &[u8]) -> Option<usize> {
        self.0.iter().enumerate().fold(None, |found, (i, key)| {
            if bool::from(key.as_bytes().ct_eq(presented)) {
                Some(i)
            } else {
                found
            }
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
    match presented.and_then(|key| keys.accepts(key)) {
        Some(i) => {
            if let Some(slot) = req.extensions().get::<OutcomeSlot>() {
                slot.lock().key_name = Some(format!("api_keys[{i}]"));
            }
            next.run(req).await
        }
        None if presented.is_some() => ErrorResponse(
ApiError::new(
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
