//! `POST /v1/feedback`: a client's verdict on an answer, `{"request_id", "score", "comment"}`,
//! kept in the store's `feedback` table for `switchyard train --data switchyard.db`.
//!
//! The row is queued for the store's writer like a request-log row: the request never waits on
//! SQLite, and so the request id is not checked against the log here (the rated request's own
//! row may still be in the writer's queue). Feedback for an id the log does not hold is kept
//! and ignored by training.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use switchyard_api::{ApiError, ErrorKind};
use switchyard_store::{FeedbackRecord, RequestLog, RequestRecord};

use crate::error::ErrorResponse;
use crate::record::OutcomeSlot;

/// Longest accepted request id and comment, in characters.
const MAX_ID: usize = 200;
const MAX_COMMENT: usize = 4_096;

const FIELDS: &str = "`request_id` (the x-switchyard-request-id of the answer), `score` (a number from 0, bad, to 1, good) and an optional `comment`";

pub async fn feedback(
    State(log): State<Arc<RequestLog>>,
    Extension(slot): Extension<OutcomeSlot>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ErrorResponse> {
    {
        let mut o = slot.lock();
        o.route = "feedback".into();
        o.reason = "feedback".into();
    }
    let body: Value = crate::body::parse_json(body)?;
    let record = validate(body)?;
    let answer = json!({
        "object": "feedback",
        "request_id": record.request_id,
        "score": record.score,
    });
    log.feedback(record).await;
    Ok(Json(answer))
}

fn validate(body: Value) -> Result<FeedbackRecord, ApiError> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("the request body must be a JSON object with {FIELDS}"),
        ));
    };
    let request_id = match take(&mut fields, "request_id") {
        None => {
            return Err(ApiError::invalid(
                "request_id",
                format!("`request_id` is required; send {FIELDS}"),
            ))
        }
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ID => id,
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                "request_id",
                format!("`request_id` must be 1 to {MAX_ID} characters: the x-switchyard-request-id header of the answer you rate"),
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "request_id",
                format!(
                    "`request_id` must be a string (the x-switchyard-request-id header of the answer you rate), not {other}"
                ),
            ))
        }
    };
    let score = match take(&mut fields, "score") {
        None => {
            return Err(ApiError::invalid(
                "score",
                "`score` is required: a number from 0 (bad) to 1 (good)",
            ))
        }
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..=1.0).contains(&s) => s,
            _ => {
                return Err(ApiError::invalid(
                    "score",
                    format!("`score` is {n}: it must be from 0 (bad) to 1 (good)"),
                ))
            }
        },
        Some(other) => {
            return Err(ApiError::invalid(
                "score",
                format!("`score` must be a number from 0 (bad) to 1 (good), not {other}"),
            ))
        }
    };
    let comment = match take(&mut fields, "comment") {
        None => None,
        Some(Value::String(c)) if c.chars().count() <= MAX_COMMENT => Some(c),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                "comment",
                format!("`comment` is longer than {MAX_COMMENT} characters"),
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "comment",
                format!("`comment` must be a string, not {other}"),
            ))
        }
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(ApiError::invalid(
            unknown.clone(),
            format!("unknown field `{unknown}`; feedback takes {FIELDS}"),
        ));
    }
    Ok(FeedbackRecord {
        request_id,
        created_at_ms: RequestRecord::now_ms(),
        score,
        comment,
    })
}

/// Removes a field; an explicit `null` counts as absent.
fn take(fields: &mut Map<String, Value>, name: &str) -> Option<Value> {
    fields.remove(name).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(body: Value) -> Option<String> {
        validate(body).unwrap_err().param
    }

    #[test]
    fn every_field_is_checked_and_named() {
        let ok = validate(json!({"request_id": "abc", "score": 0.25, "comment": "meh"})).unwrap();
        assert_eq!(
            (ok.request_id.as_str(), ok.score, ok.comment.as_deref()),
            ("abc", 0.25, Some("meh"))
        );
        assert_eq!(
            validate(json!({"request_id": "a", "score": 1}))
                .unwrap()
                .score,
            1.0
        );
        assert_eq!(param_of(json!({"score": 1})).as_deref(), Some("request_id"));
        assert_eq!(
            param_of(json!({"request_id": 7, "score": 1})).as_deref(),
            Some("request_id")
        );
        assert_eq!(
            param_of(json!({"request_id": "", "score": 1})).as_deref(),
            Some("request_id")
        );
        for bad in [
            json!(2.0),
            json!(-0.1),
            json!("0.5"),
            json!(true),
            Value::Null,
        ] {
            assert_eq!(
                param_of(json!({"request_id": "a", "score": bad})).as_deref(),
                Some("score")
            );
        }
        assert_eq!(
            param_of(json!({"request_id": "a", "score": 1, "comment": 3})).as_deref(),
            Some("comment")
        );
        assert_eq!(
            param_of(json!({"request_id": "a", "score": 1, "requestId": "a"})).as_deref(),
            Some("requestId")
        );
        assert_eq!(validate(json!([1])).unwrap_err().status(), 400);
    }
}
