//! The guard stage: screens each chat request for personal data, refuses what the policy
//! blocks, tells the router what it found, keeps requests off models they may not reach, and
//! gives each model the view of the request it may see: the original for local (and
//! on-premises) models, a redacted copy with a vault for the rest. Answers from a redacted view
//! are restored before the client sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use switchyard_api::{ApiError, ChatRequest, ChatResponse, ErrorKind};
use switchyard_guard::restore::{restore_response, StreamRestorer};
use switchyard_guard::screen::Screening;
use switchyard_guard::vault::Vault;
use switchyard_guard::{Detector, DetectorConfig, Kind};
use switchyard_providers::{ChunkStream, ProviderError};

use crate::config::{Action, Config, RouteGuard};
use crate::gateway::{BuildError, Model};

/// The guard as configured: the detector and the policy.
pub struct Guard {
    detector: Arc<Detector>,
    max_model_bytes: usize,
    policy: BTreeMap<Kind, Action>,
    keep_in_region: BTreeMap<Kind, String>,
    routes: BTreeMap<String, RouteGuard>,
}

impl Guard {
    /// None when `[guard] enabled = false`. The classifier is loaded when it is on and some
    /// request could need it: a model that is not local, a route on `when.pii`, or a policy
    /// other than redaction (which local models never need).
    pub fn build(config: &Config) -> Result<Option<Guard>, BuildError> {
        let g = &config.guard;
        if !g.enabled {
            return Ok(None);
        }
        let needed = config.models.values().any(|m| !m.is_local())
            || config
                .routes
                .iter()
                .any(|r| r.when.as_ref().is_some_and(|w| w.pii.is_some()))
            || g.policy.values().any(|a| *a != Action::Redact)
            || g.routes.values().any(|r| !r.policy.is_empty())
            || config.store.log_text == crate::config::LogText::Redacted;
        let ner = (g.model && needed).then(|| {
            g.model_path
                .clone()
                .unwrap_or_else(|| switchyard_models::dir().join("rampart"))
        });
        let detector = Detector::new(&DetectorConfig {
            regions: g.phone_regions.clone(),
            ner: ner.clone(),
            min_score: g.min_score,
            ..DetectorConfig::default()
        })
        .map_err(|e| BuildError::Guard(model_error(e, ner.is_some())))?;
        Ok(Some(Guard {
            detector: Arc::new(detector),
            max_model_bytes: g.max_model_bytes,
            policy: g.policy.clone(),
            keep_in_region: g.keep_in_region.clone(),
            routes: g.routes.clone(),
        }))
    }

    /// What the request holds; the classifier runs off the async workers.
    pub async fn screen(&self, req: &ChatRequest) -> Result<Screening, ApiError> {
        let screened = if self.detector.has_model() {
            let mut bytes = 0;
            switchyard_guard::screen::each_text(req, |t| bytes += t.len());
            if bytes > self.max_model_bytes {
                return Err(ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the request's text is {bytes} bytes, more than the privacy guard's classifier reads ([guard] max_model_bytes = {}); send less text, or raise the limit",
                        self.max_model_bytes
                    ),
                ));
            }
            let detector = self.detector.clone();
            let req = req.clone();
            tokio::task::spawn_blocking(move || Screening::of(&detector, &req))
                .await
                .map_err(|e| ApiError::new(ErrorKind::Internal, format!("the guard failed: {e}")))?
        } else {
            // The rules take microseconds: not worth a thread hop.
            Screening::of(&self.detector, req)
        };
        screened.map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!("the guard could not screen the request: {e}"),
            )
        })
    }

    /// The action for `kind` on `route`, before any model's own.
    fn action(&self, route: &str, kind: Kind) -> Action {
        self.routes
            .get(route)
            .and_then(|r| r.policy.get(&kind))
            .or_else(|| self.policy.get(&kind))
            .copied()
            .unwrap_or(Action::Redact)
    }

    /// The first kind found that `route`'s policy blocks.
    pub fn blocked(&self, screening: &Screening, route: &str) -> Option<Kind> {
        screening
            .kinds()
            .into_keys()
            .find(|&k| self.action(route, k) == Action::Block)
    }

    /// What `model` may be sent of a request holding `found` on `route`: refused, or the kinds
    /// to redact (empty: as written).
    fn admit(&self, found: &BTreeSet<Kind>, route: &str, model: &Model) -> Admission {
        let mut regions = self
            .routes
            .get(route)
            .and_then(|r| r.keep_in_region.as_deref())
            .into_iter()
            .chain(
                found
                    .iter()
                    .filter_map(|k| self.keep_in_region.get(k).map(String::as_str)),
            );
        if let Some(region) = regions.find(|&r| {
            !model
                .region
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(r))
        }) {
            return Admission::Refused(format!(
                "its data must stay in region \"{region}\" and `{}` is {}",
                model.name,
                match &model.region {
                    Some(m) => format!("in \"{m}\""),
                    None => "in no configured region".to_owned(),
                }
            ));
        }
        let mut redact = BTreeSet::new();
        for &kind in found {
            let action = model
                .guard
                .get(&kind)
                .copied()
                .unwrap_or_else(|| self.action(route, kind));
            match action {
                _ if model.local => {}
                Action::Allow => {}
                Action::Redact => {
                    redact.insert(kind);
                }
                Action::Block | Action::KeepLocal => {
                    return Admission::Refused(format!(
                        "it holds {} data, which the policy keeps on local models, and `{}` is not local",
                        kind.name(),
                        model.name
                    ));
                }
            }
        }
        Admission::Redact(redact)
    }

    /// The request as every candidate model may see it, in the order given. A candidate the
    /// policy keeps the request from is left out; none left is a 400 naming why.
    pub fn outbound(
        &self,
        screening: &Screening,
        req: ChatRequest,
        route: &str,
        candidates: &[&Model],
    ) -> Result<Outbound, ApiError> {
        let found: BTreeSet<Kind> = screening.kinds().into_keys().collect();
        let mut views: Vec<View> = vec![View::original(req)];
        let mut by_model = BTreeMap::new();
        let mut refusals = Vec::new();
        for model in candidates {
            match self.admit(&found, route, model) {
                Admission::Refused(why) => refusals.push(why),
                Admission::Redact(kinds) => {
                    let at = match views.iter().position(|v| v.redacted_kinds == kinds) {
                        Some(at) => at,
                        None => {
                            let redacted = View::redacted(screening, &views[0].req, kinds);
                            views.push(redacted);
                            views.len() - 1
                        }
                    };
                    by_model.insert(model.name.clone(), at);
                }
            }
        }
        if by_model.is_empty() && !candidates.is_empty() {
            return Err(refused(&format!(
                "no model may answer this request: {}; send it without that data, name a model that may receive it, or change the [guard] policy",
                refusals.join("; ")
            )));
        }
        Ok(Outbound {
            views,
            by_model,
            guarded: true,
        })
    }

    /// The request with every finding redacted.
    pub fn redacted(&self, screening: &Screening, req: &ChatRequest) -> ChatRequest {
        let mut vault = Screening::vault(req);
        screening.redact(req, &mut vault, |_| true)
    }

    /// The request's messages as JSON with every finding redacted, for the log.
    pub fn redacted_text(&self, screening: &Screening, req: &ChatRequest) -> String {
        serde_json::to_string(&self.redacted(screening, req).messages).unwrap_or_default()
    }
}

fn model_error(e: switchyard_guard::GuardError, with_model: bool) -> String {
    if with_model {
        format!(
            "{e}; or set `[guard] model_path` to the folder holding the personal-data model, or `[guard] model = false` to detect with the rules alone (names, street addresses and organisations are then not found)"
        )
    } else {
        e.to_string()
    }
}

/// The client's error when the policy keeps a request from every model that could answer it.
pub fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message).with_code("personal_data_policy")
}

enum Admission {
    Refused(String),
    Redact(BTreeSet<Kind>),
}

/// One way of sending the request: as written, or with some kinds redacted.
struct View {
    redacted_kinds: BTreeSet<Kind>,
    req: ChatRequest,
    /// The placeholders' values; none when nothing was replaced.
    vault: Option<Arc<Vault>>,
}

impl View {
    fn original(req: ChatRequest) -> View {
        View {
            redacted_kinds: BTreeSet::new(),
            req,
            vault: None,
        }
    }

    fn redacted(screening: &Screening, req: &ChatRequest, kinds: BTreeSet<Kind>) -> View {
        let mut vault = Screening::vault(req);
        let redacted = screening.redact(req, &mut vault, |k| kinds.contains(&k));
        View {
            redacted_kinds: kinds,
            req: redacted,
            vault: (!vault.is_empty()).then(|| Arc::new(vault)),
        }
    }
}

/// The request as each model may see it. Without a guard, every model sees it as written.
pub struct Outbound {
    /// The first is the request as written.
    views: Vec<View>,
    /// Each admitted model's view.
    by_model: BTreeMap<String, usize>,
    /// Only the models in `by_model` may be sent it; otherwise any model, as written.
    guarded: bool,
}

impl Outbound {
    /// Every model sees the request as written.
    pub fn unguarded(req: ChatRequest) -> Outbound {
        Outbound {
            views: vec![View::original(req)],
            by_model: BTreeMap::new(),
            guarded: false,
        }
    }

    /// The request as the client sent it (and the route changed it).
    pub fn original(&self) -> &ChatRequest {
        &self.views[0].req
    }

    /// Whether `model` may be sent this request.
    pub fn admits(&self, model: &Model) -> bool {
        !self.guarded || self.by_model.contains_key(&model.name)
    }

    fn view(&self, model: &Model) -> &View {
        let at = self.by_model.get(&model.name).copied().unwrap_or(0);
        &self.views[at]
    }

    /// Changes every view in place the same way (a route's system prompt).
    pub fn edit(&mut self, f: impl Fn(&mut ChatRequest)) {
        for v in &mut self.views {
            f(&mut v.req);
        }
    }

    /// A copy with every view changed the same way (a cascade rung's probe).
    pub fn map(&self, f: impl Fn(&ChatRequest) -> ChatRequest) -> Outbound {
        Outbound {
            views: self
                .views
                .iter()
                .map(|v| View {
                    redacted_kinds: v.redacted_kinds.clone(),
                    req: f(&v.req),
                    vault: v.vault.clone(),
                })
                .collect(),
            by_model: self.by_model.clone(),
            guarded: self.guarded,
        }
    }

    /// Distinct values replaced in what `model` got, by type label.
    pub fn redacted_for(&self, model: &Model) -> BTreeMap<&'static str, usize> {
        self.view(model)
            .vault
            .as_ref()
            .map(|v| {
                v.counts()
                    .into_iter()
                    .map(|(k, n)| (k.label(), n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `model`'s whole answer to its view, restored.
    pub async fn complete(&self, model: &Model) -> Result<ChatResponse, ProviderError> {
        let view = self.view(model);
        let mut resp = model
            .provider
            .complete(&model.defaults.apply(&view.req))
            .await?;
        if let Some(vault) = &view.vault {
            restore_response(vault, &mut resp);
        }
        Ok(resp)
    }

    /// `model`'s stream for its view, restored chunk by chunk.
    pub async fn stream(&self, model: &Model) -> Result<ChunkStream, ProviderError> {
        let view = self.view(model);
        let chunks = model
            .provider
            .stream(&model.defaults.apply(&view.req))
            .await?;
        Ok(match &view.vault {
            Some(vault) => restored(chunks, StreamRestorer::new(vault.clone())),
            None => chunks,
        })
    }
}

/// A stream with its placeholders restored; what the restorer holds back at the end comes out
/// as one last chunk.
fn restored(chunks: ChunkStream, restorer: StreamRestorer) -> ChunkStream {
    let state = (chunks, Some(restorer));
    Box::pin(futures::stream::unfold(
        state,
        |(mut chunks, mut restorer)| async move {
            let r = restorer.as_mut()?;
            match chunks.next().await {
                Some(Ok(chunk)) => Some((Ok(r.chunk(chunk)), (chunks, restorer))),
                Some(Err(e)) => Some((Err(e), (chunks, restorer))),
                None => {
                    let last = r.finish();
                    restorer = None;
                    last.map(|c| (Ok(c), (chunks, restorer)))
                }
            }
        },
    ))
}
