//! The auth layer: `/v1` needs `Authorization: Bearer <key>` as soon as `[server] api_keys` is
//! set or any virtual key was created in the store (`switchyard keys create`). The key a
//! request came with names it in its outcome (a config key by its place, `api_keys[0]`; a
//! virtual key by its name), so usage and spend are attributed without the secret reaching the
//! log. The store's keys are read again when the last reading is a second old, before the
//! request is let in, so a revocation made anywhere takes effect within about a second.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use switchyard_api::{ApiError, ErrorKind};
use switchyard_store::{KeyHasher, Keys, StoreError};

use crate::error::ErrorResponse;
use crate::record::OutcomeSlot;

/// How stale the store's keys may be when a request is let in.
const FRESH: Duration = Duration::from_secs(1);

/// The virtual key a request came with, for handlers that scope what they show to it.
#[derive(Debug, Clone)]
pub struct VirtualKey(pub String);

/// The keys that open `/v1`.
pub struct Access {
    config: Vec<String>,
    store: Mutex<Keys>,
    hasher: KeyHasher,
    snapshot: RwLock<Snapshot>,
}

struct Snapshot {
    read_at: Instant,
    any: bool,
    keys: HashMap<[u8; 32], String>,
}

impl Access {
    pub fn open(config: Vec<String>, store: &Path) -> Result<Access, StoreError> {
        let keys = Keys::open(store)?;
        let hasher = keys.hasher();
        let snapshot = read(&keys)?;
        Ok(Access {
            config,
            store: Mutex::new(keys),
            hasher,
            snapshot: RwLock::new(snapshot),
        })
    }

    /// The place of a config key presented among the configured ones. Compares against every
    /// key in constant time, so timing tells nothing about a key.
    fn config_key(&self, presented: &[u8]) -> Option<usize> {
        self.config
            .iter()
            .enumerate()
            .fold(None, |found, (i, key)| {
                if bool::from(key.as_bytes().ct_eq(presented)) {
                    Some(i)
                } else {
                    found
                }
            })
    }

    /// Reads the store's keys again when the last reading is older than [`FRESH`]. A failed
    /// reading keeps the last one (and says so in the log).
    async fn refresh(self: &Arc<Self>) {
        let stale = self
            .snapshot
            .read()
            .map(|s| s.read_at.elapsed() > FRESH)
            .unwrap_or(true);
        if !stale {
            return;
        }
        let access = self.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let keys = access.store.lock().unwrap_or_else(|p| p.into_inner());
            read(&keys)
        })
        .await;
        match reading {
            Ok(Ok(fresh)) => {
                if let Ok(mut s) = self.snapshot.write() {
                    *s = fresh;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the virtual keys failed; using the last reading")
            }
            Err(e) => tracing::warn!(error = %e, "the virtual-key reading task failed"),
        }
    }
}

fn read(keys: &Keys) -> Result<Snapshot, StoreError> {
    let active = keys.active(switchyard_store::RequestRecord::now_ms())?;
    Ok(Snapshot {
        read_at: Instant::now(),
        any: keys.any()?,
        keys: active.into_iter().map(|k| (k.hash, k.name)).collect(),
    })
}

/// Who a presented secret is.
enum Caller {
    Config(usize),
    Virtual(String),
}

pub async fn require_key(
    State(access): State<Arc<Access>>,
    mut req: Request,
    next: Next,
) -> Response {
    access.refresh().await;
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::to_vec);
    let (needed, caller) = {
        let Ok(snapshot) = access.snapshot.read() else {
            return ErrorResponse(ApiError::new(
                ErrorKind::Internal,
                "the gateway's key table is unreadable; restart it",
            ))
            .into_response();
        };
        let caller = presented.as_deref().and_then(|key| {
            access.config_key(key).map(Caller::Config).or_else(|| {
                let hash = access.hasher.hash(key);
                snapshot
                    .keys
                    .get(&hash)
                    .map(|name| Caller::Virtual(name.clone()))
            })
        });
        (!access.config.is_empty() || snapshot.any, caller)
    };
    if !needed {
        return next.run(req).await;
    }
    let name = match caller {
        Some(Caller::Config(i)) => format!("api_keys[{i}]"),
        Some(Caller::Virtual(name)) => {
            req.extensions_mut().insert(VirtualKey(name.clone()));
            name
        }
        None if presented.is_some() => {
            return ErrorResponse(ApiError::new(
                ErrorKind::Authentication,
                "the API key in `Authorization: Bearer …` is not valid for this gateway (unknown, revoked or expired); check [server] api_keys or `switchyard keys list`",
            ))
            .into_response()
        }
        None => {
            return ErrorResponse(ApiError::new(
                ErrorKind::Authentication,
                "missing API key: send `Authorization: Bearer <key>` with one of the gateway's [server] api_keys or a key from `switchyard keys create`",
            ))
            .into_response()
        }
    };
    if let Some(slot) = req.extensions().get::<OutcomeSlot>() {
        slot.lock().key_name = Some(name);
    }
    next.run(req).await
}
