//! `GET /v1/usage?from=&to=&group_by=key|model|route|day`: requests, tokens, cost and what the
//! same requests would have cost on the `[accounting]` baseline, summed from the request log.
//! A virtual key sees only its own requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use switchyard_api::{ApiError, ErrorKind};
use switchyard_store::{GroupBy, RequestLog, Usage, UsageQuery};

use crate::auth::VirtualKey;
use crate::error::ErrorResponse;
use crate::record::OutcomeSlot;

/// The log to sum, and its writer, flushed first so a client sees its own requests.
pub struct UsageSource {
    pub log: Arc<RequestLog>,
    pub path: PathBuf,
}

const PARAMS: &str = "`from` and `to` (Unix seconds, 2026-12-01 or 2026-12-01T08:30:00Z) and `group_by` (key, model, route or day)";

pub async fn usage(
    State(source): State<Arc<UsageSource>>,
    Extension(slot): Extension<OutcomeSlot>,
    caller: Option<Extension<VirtualKey>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Usage>, ErrorResponse> {
    {
        let mut o = slot.lock();
        o.route = "usage".into();
        o.reason = "usage".into();
    }
    let Query(params) = params.map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("cannot read the query string ({e}); send {PARAMS}"),
        )
    })?;
    let mut query = read(&params)?;
    // A virtual key sees its own usage; a config key (an operator's) sees all.
    query.key = caller.map(|Extension(VirtualKey(name))| name);
    source.log.flush().await;
    let path = source.path.clone();
    // A SQLite aggregate over the log: off the async workers.
    let usage = tokio::task::spawn_blocking(move || switchyard_store::usage(&path, &query))
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("usage task failed: {e}")))?
        .map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!("reading usage from the store failed: {e}"),
            )
        })?;
    Ok(Json(usage))
}

fn read(params: &BTreeMap<String, String>) -> Result<UsageQuery, ApiError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["from", "to", "group_by"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            unknown,
            format!("unknown query parameter `{unknown}`; /v1/usage takes {PARAMS}"),
        ));
    }
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(name)
            .map(|t| switchyard_store::parse_time(t).map_err(|e| ApiError::invalid(name, e)))
            .transpose()
    };
    let group_by = match params.get("group_by") {
        Some(g) => g
            .parse::<GroupBy>()
            .map_err(|e| ApiError::invalid("group_by", e))?,
        None => GroupBy::Model,
    };
    Ok(UsageQuery {
        from_ms: time("from")?,
        to_ms: time("to")?,
        key: None,
        group_by,
    })
}
