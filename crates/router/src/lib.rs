//! Routing decisions: pure functions of the request and the router's model.
//!
//! A router never calls a model; it returns a [`Decision`] and the server executes it. That
//! keeps every router testable offline and replayable over logged traffic.

use switchyard_api::{ApiError, ChatRequest, ErrorKind};

/// The model name that asks the router to choose.
pub const AUTO: &str = "auto";

/// What the router chose and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The configured model that should answer.
    pub target: String,
    /// A short, low-cardinality label for metrics: which rule or policy decided.
    pub route: &'static str,
    /// The full explanation, sent back in `x-switchyard-route` and kept in the request log.
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("model `{requested}` is not configured; use one of: {available}, or \"auto\"")]
    UnknownModel {
        requested: String,
        available: String,
    },
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        ApiError::new(ErrorKind::NotFound, e.to_string())
            .with_param("model")
            .with_code("model_not_found")
    }
}

/// The router: a configured model name bypasses it; `"auto"` goes to the default model.
#[derive(Debug, Clone)]
pub struct Router {
    models: Vec<String>,
    default: String,
}

impl Router {
    /// `models` are the configured names; `default` (one of them) answers `"auto"`.
    pub fn new(models: Vec<String>, default: String) -> Self {
        Router { models, default }
    }

    pub fn decide(&self, req: &ChatRequest) -> Result<Decision, RouteError> {
        if req.model == AUTO {
            return Ok(Decision {
                target: self.default.clone(),
                route: "default",
                reason: format!("default: auto -> {}", self.default),
            });
        }
        if self.models.contains(&req.model) {
            return Ok(Decision {
                target: req.model.clone(),
                route: "explicit",
                reason: format!("explicit: client asked for {}", req.model),
            });
        }
        Err(RouteError::UnknownModel {
            requested: req.model.clone(),
            available: self.models.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::{Message, Role};

    fn request(model: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![Message::new(Role::User, "hi")],
            ..Default::default()
        }
    }

    fn router() -> Router {
        Router::new(vec!["small".into(), "large".into()], "small".into())
    }

    #[test]
    fn a_configured_name_bypasses_routing() {
        let d = router().decide(&request("large")).unwrap();
        assert_eq!(d.target, "large");
        assert_eq!(d.route, "explicit");
    }

    #[test]
    fn auto_goes_to_the_default_model() {
        let d = router().decide(&request("auto")).unwrap();
        assert_eq!(d.target, "small");
        assert!(d.reason.contains("default"));
    }

    #[test]
    fn an_unknown_model_is_a_404_that_lists_the_choices() {
        let err: ApiError = router().decide(&request("gpt-9")).unwrap_err().into();
        assert_eq!(err.status(), 404);
        assert_eq!(err.code.as_deref(), Some("model_not_found"));
        assert!(err.message.contains("small, large"), "{}", err.message);
    }
}
