//! Reading a JSON request body into an OpenAI-shaped error when it is too large or malformed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use switchyard_api::{ApiError, ErrorKind};

/// The body, or the client's error when it is over the limit or could not be read.
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                "request body is over the gateway's limit; send less, or raise [server] max_body_bytes",
            )
        } else {
            ApiError::new(ErrorKind::InvalidRequest, format!("could not read the request body: {e}"))
        }
    })
}

pub fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = bytes(body)?;
    // serde_path_to_error names the field that is wrong (e.g. `messages[0].role`), not only
    // the line and column.
    let mut de = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!("request body is not valid JSON: {inner}"),
            )
        } else {
            ApiError::invalid(path.clone(), format!("`{path}` is invalid: {inner}"))
        }
    })
}
