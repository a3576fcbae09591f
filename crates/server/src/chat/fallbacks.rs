//! Fallbacks: one rung's model, then its configured fallbacks in order, until one answers. An
//! error that [`ProviderError::falls_back`] says another model may not help with ends the
//! loop; when none answers, the error lists every attempt.

use futures::future::BoxFuture;
use switchyard_api::{ApiError, ErrorKind};
use switchyard_providers::ProviderError;

use super::execute::Trail;
use crate::gateway::{Gateway, Model};

/// The models to try for one rung, in order: the rung's model, then its configured fallbacks.
pub fn candidates<'g>(gw: &'g Gateway, rung: &str) -> Vec<&'g Model> {
    let mut out = Vec::with_capacity(2);
    if let Some(m) = gw.models.get(rung) {
        out.push(m);
        out.extend(m.fallbacks.iter().filter_map(|f| gw.models.get(f)));
    }
    out
}

/// One model that was asked and failed.
#[derive(Debug)]
pub struct Attempt {
    pub model: String,
    pub error: ProviderError,
}

/// No candidate answered: what each one tried said, in order.
#[derive(Debug)]
pub struct Exhausted {
    pub rung: String,
    pub attempts: Vec<Attempt>,
    /// Candidates left untried because the last error does not fall back.
    pub untried: Vec<String>,
}

impl Exhausted {
    /// The client's error: the last attempt's kind (a timeout stays a 504), with every
    /// attempt's model and error in the message when there was more than one.
    pub fn to_api_error(&self) -> ApiError {
        let Some(last) = self.attempts.last() else {
            return not_configured(&self.rung);
        };
        let mut err = last.error.to_api_error();
        if self.attempts.len() > 1 || !self.untried.is_empty() {
            let tried: Vec<String> = self
                .attempts
                .iter()
                .map(|a| format!("`{}`: {}", a.model, a.error))
                .collect();
            err.message = format!(
                "`{}` and its fallbacks failed; {}",
                self.rung,
                tried.join("; ")
            );
            if !self.untried.is_empty() {
                err.message.push_str(&format!(
                    " (not tried, as that error does not fall back: {})",
                    self.untried.join(", ")
                ));
            }
        }
        err
    }
}

pub fn not_configured(rung: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        format!("the router chose `{rung}`, which is not configured"),
    )
}

/// Asks each candidate in order until one answers; the trail notes each failure and the
/// fallback that answered.
pub async fn first_answer<'m, 'f, T>(
    rung: &str,
    candidates: &[&'m Model],
    trail: &mut Trail,
    ask: impl Fn(&'m Model) -> BoxFuture<'f, Result<T, ProviderError>>,
) -> Result<(T, &'m Model), Exhausted> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for (i, &model) in candidates.iter().enumerate() {
        match ask(model).await {
            Ok(answer) => {
                if i > 0 {
                    trail.note(&format!(", fell back to {}", model.name));
                }
                trail.model = model.name.clone();
                return Ok((answer, model));
            }
            Err(error) => {
                tracing::warn!(model = %model.name, error = %error, "model failed");
                trail.note(&format!("; {} failed", model.name));
                let next = error.falls_back();
                attempts.push(Attempt {
                    model: model.name.clone(),
                    error,
                });
                if !next {
                    break;
                }
            }
        }
    }
    let untried = candidates[attempts.len()..]
        .iter()
        .map(|m| m.name.clone())
        .collect();
    Err(Exhausted {
        rung: rung.to_owned(),
        attempts,
        untried,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use switchyard_api::{ChatRequest, ChatResponse, Usage};
    use switchyard_providers::{ChunkStream, Provider, TimeoutPhase};

    /// A model that answers, or fails with the error `fail` makes.
    struct Fake(Option<fn() -> ProviderError>);

    #[async_trait::async_trait]
    impl Provider for Fake {
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, ProviderError> {
            match self.0 {
                Some(fail) => Err(fail()),
                None => Ok(ChatResponse::text(
                    "id",
                    0,
                    "m",
                    "ok".into(),
                    "stop",
                    Usage::default(),
                )),
            }
        }

        async fn stream(&self, _: &ChatRequest) -> Result<ChunkStream, ProviderError> {
            Err(ProviderError::Request {
                upstream: "fake".into(),
                message: "not streamed in these tests".into(),
            })
        }
    }

    fn model(name: &str, fail: Option<fn() -> ProviderError>) -> Model {
        Model {
            name: name.into(),
            provider: Arc::new(Fake(fail)),
            price: crate::config::Price::default(),
            fallbacks: Vec::new(),
            owned_by: "test",
            local: false,
            region: None,
            guard: Default::default(),
            defaults: Default::default(),
        }
    }

    fn overloaded() -> ProviderError {
        ProviderError::Status {
            upstream: "openai:a".into(),
            status: 503,
            message: "overloaded".into(),
            retry_after: None,
        }
    }

    fn timed_out() -> ProviderError {
        ProviderError::Timeout {
            upstream: "openai:b".into(),
            phase: TimeoutPhase::FirstByte,
            after: std::time::Duration::from_millis(100),
        }
    }

    fn bad_request() -> ProviderError {
        ProviderError::Status {
            upstream: "openai:a".into(),
            status: 400,
            message: "no such parameter".into(),
            retry_after: None,
        }
    }

    async fn ask(models: &[Model]) -> (Result<String, Exhausted>, Trail) {
        let candidates: Vec<&Model> = models.iter().collect();
        let req: ChatRequest =
            serde_json::from_value(serde_json::json!({"model": "a", "messages": []})).unwrap();
        let mut trail = Trail::default();
        let got = first_answer("a", &candidates, &mut trail, |m| m.provider.complete(&req))
            .await
            .map(|(_, m)| m.name.clone());
        (got, trail)
    }

    #[tokio::test]
    async fn the_first_model_that_answers_answers_and_the_trail_says_who_failed_before() {
        let models = [
            model("a", Some(overloaded)),
            model("b", Some(timed_out)),
            model("c", None),
        ];
        let (got, trail) = ask(&models).await;
        assert_eq!(got.unwrap(), "c");
        assert_eq!(trail.model, "c");
        assert_eq!(trail.reason, "; a failed; b failed, fell back to c");
    }

    #[tokio::test]
    async fn when_every_model_fails_the_error_lists_each_with_what_went_wrong() {
        let models = [model("a", Some(overloaded)), model("b", Some(timed_out))];
        let (got, trail) = ask(&models).await;
        let err = got.unwrap_err().to_api_error();
        // The last error's kind: a timeout is still a 504.
        assert_eq!(err.status(), 504);
        assert_eq!(
            err.message,
            format!(
                "`a` and its fallbacks failed; `a`: {}; `b`: {}",
                overloaded(),
                timed_out()
            )
        );
        assert_eq!(trail.model, "");
    }

    #[tokio::test]
    async fn an_error_that_does_not_fall_back_stops_the_loop_and_says_what_was_not_tried() {
        let models = [model("a", Some(bad_request)), model("b", None)];
        let (got, _) = ask(&models).await;
        let err = got.unwrap_err().to_api_error();
        assert_eq!(err.status(), 502);
        assert_eq!(
            err.message,
            format!(
                "`a` and its fallbacks failed; `a`: {} (not tried, as that error does not fall \
                 back: b)",
                bad_request()
            )
        );
        // One model and no fallbacks: its own error, unchanged.
        let (got, _) = ask(&[model("a", Some(overloaded))]).await;
        assert_eq!(
            got.unwrap_err().to_api_error().message,
            overloaded().to_string()
        );
        let (got, _) = ask(&[]).await;
        assert!(got
            .unwrap_err()
            .to_api_error()
            .message
            .contains("not configured"));
    }
}
