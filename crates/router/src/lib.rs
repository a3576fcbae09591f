//! Routing decisions: pure functions of the request's [`Signals`] and the router's model.
//!
//! A router never calls a model; it returns a [`Decision`] and the server executes it. That
//! keeps every router testable offline and replayable over logged traffic. The order of
//! precedence, each step explaining itself in the decision's `reason`:
//!
//! 1. a configured model name in the request bypasses routing;
//! 2. rule routes (keywords, regexes, length, turns, tools, code, user, headers, personal
//!    data), first match in config order;
//! 3. a conversation stays on the model that answered it before;
//! 4. semantic routes: the most similar route's example utterances, above its threshold;
//! 5. the learned score: above its threshold, the strong model;
//! 6. the default model.

pub mod confidence;
pub mod data;
pub mod eval;
pub mod learned;
pub mod logged;
pub mod rules;
pub mod signals;

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_api::{ApiError, ChatRequest, ErrorKind};

pub use rules::{Rule, RuleError, When};
pub use signals::Signals;

/// The model name that asks the router to choose.
pub const AUTO: &str = "auto";

/// What the router chose and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// The rungs to try, cheapest first: one model, or a ladder for a cascade.
    pub ladder: Vec<String>,
    /// A short, low-cardinality label for metrics: the route's name or the policy's.
    pub route: String,
    /// The full explanation, sent back in `x-switchyard-route` and kept in the request log.
    pub reason: String,
    /// The numbers behind the decision (similarities, scores, thresholds), for the log.
    pub scores: BTreeMap<String, f64>,
    /// A system prompt the route puts before the conversation.
    pub system_prompt: Option<String>,
    /// The ladder is a cascade: a rung's answer is kept only if its calibrated confidence
    /// reaches the threshold, otherwise the next rung answers.
    pub cascade: bool,
    /// The route's confidence threshold; the calibration's own when unset.
    pub confidence_threshold: Option<f64>,
    /// The knowledge base the answer comes from.
    pub knowledge: Option<Knowledge>,
}

/// A route's knowledge base: passages retrieved for the conversation go into the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Knowledge {
    pub base: String,
    /// Passages put into the prompt.
    pub k: usize,
    /// The cosine similarity a passage must reach to count as relevant.
    pub min_score: f64,
    /// The model that answers, without passages, when none is relevant; none: the route's
    /// model answers and is told the sources hold nothing on the question.
    pub escalate_to: Option<String>,
}

/// Passages a route with a knowledge base retrieves when it does not say.
pub const DEFAULT_K: usize = 4;
/// The least similarity of a relevant passage when a route does not say: all-MiniLM-L6-v2
/// puts a question and a passage that answers it above this, unrelated text mostly below.
pub const DEFAULT_MIN_SCORE: f64 = 0.3;

impl Decision {
    /// The model that answers first.
    pub fn target(&self) -> &str {
        self.ladder.first().map(String::as_str).unwrap_or_default()
    }

    fn to(route: &str, model: &str, reason: String) -> Decision {
        Decision {
            ladder: vec![model.to_owned()],
            route: route.to_owned(),
            reason,
            ..Decision::default()
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("model `{requested}` is not configured; use one of: {available}, or \"auto\"")]
    UnknownModel {
        requested: String,
        available: String,
    },
    #[error("route `{requested}` is not configured; use one of: {available}")]
    UnknownRoute {
        requested: String,
        available: String,
    },
    #[error("route `{route}`: {message}")]
    Invalid { route: String, message: String },
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        if let RouteError::UnknownRoute { .. } = e {
            return ApiError::new(ErrorKind::NotFound, e.to_string()).with_code("route_not_found");
        }
        ApiError::new(ErrorKind::NotFound, e.to_string())
            .with_param("model")
            .with_code("model_not_found")
    }
}

/// One `[[routes]]` entry of the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Rule conditions; all must hold.
    pub when: Option<When>,
    /// Example utterances: the route applies when the conversation is similar enough to one.
    #[serde(default)]
    pub examples: Vec<String>,
    /// The cosine similarity an example must reach.
    #[serde(default = "default_similarity")]
    pub similarity: f64,
    /// The model that answers (or use `ladder`).
    pub target: Option<String>,
    /// Models from cheapest to most capable.
    #[serde(default)]
    pub ladder: Vec<String>,
    /// Put before the conversation as a system message (a specialised module on a small model).
    pub system_prompt: Option<String>,
    /// Try the ladder's rungs in order, escalating when a rung's confidence is below
    /// `confidence_threshold` (the calibration's threshold when unset).
    #[serde(default)]
    pub cascade: bool,
    pub confidence_threshold: Option<f64>,
    /// A knowledge base (`switchyard ingest --kb NAME`) the route's model answers from.
    pub knowledge: Option<String>,
    /// Passages retrieved from it (default 4, at most 20).
    pub k: Option<usize>,
    /// The cosine similarity a passage must reach to be used (default 0.3).
    pub min_score: Option<f64>,
    /// The model that answers instead when no passage reaches `min_score`.
    pub escalate_to: Option<String>,
}

fn default_similarity() -> f64 {
    0.5
}

/// P(the weak model is not good enough | conversation): a learned score.
pub trait Scorer: Send + Sync {
    fn score(&self, embedding: &[f32], text: &str) -> f64;
    /// What the scorer is, for explanations (e.g. "knn(k=25)").
    fn describe(&self) -> String;
}

impl Scorer for learned::LearnedRouter {
    fn score(&self, embedding: &[f32], text: &str) -> f64 {
        learned::LearnedRouter::score(self, embedding, text)
    }

    fn describe(&self) -> String {
        self.name()
    }
}

/// The learned score's place in routing: above `threshold`, `strong` answers; else `weak`.
pub struct LearnedPolicy {
    pub scorer: Box<dyn Scorer>,
    pub threshold: f64,
    pub weak: String,
    pub strong: String,
}

struct Route {
    config: RouteConfig,
    rule: Option<Rule>,
    /// Unit-length embeddings of the examples.
    examples: Vec<Vec<f32>>,
}

pub struct Router {
    models: Vec<String>,
    default: String,
    routes: Vec<Route>,
    learned: Option<LearnedPolicy>,
}

impl Router {
    /// `models` are the configured names; `default` (one of them) answers `"auto"` when no
    /// route, conversation or score decides.
    pub fn new(models: Vec<String>, default: String) -> Self {
        Router {
            models,
            default,
            routes: Vec::new(),
            learned: None,
        }
    }

    /// Adds a route; `examples` are the embeddings of its example utterances, in order.
    pub fn with_route(
        mut self,
        config: RouteConfig,
        examples: Vec<Vec<f32>>,
    ) -> Result<Self, RouteError> {
        let invalid = |message: String| RouteError::Invalid {
            route: config.name.clone(),
            message,
        };
        let rungs = Self::rungs(&config);
        if rungs.is_empty() {
            return Err(invalid("give it a `target` model or a `ladder`".into()));
        }
        if config.target.is_some() && !config.ladder.is_empty() {
            return Err(invalid("give it `target` or `ladder`, not both".into()));
        }
        for m in &rungs {
            if !self.models.contains(m) {
                return Err(invalid(format!(
                    "model `{m}` is not configured; use one of: {}",
                    self.models.join(", ")
                )));
            }
        }
        if config.cascade && rungs.len() < 2 {
            return Err(invalid(
                "a cascade needs a `ladder` of at least two models".into(),
            ));
        }
        if config.when.is_none() && config.examples.is_empty() {
            return Err(invalid(
                "give it `when` conditions, `examples`, or both".into(),
            ));
        }
        if config.knowledge.is_none()
            && (config.k.is_some() || config.min_score.is_some() || config.escalate_to.is_some())
        {
            return Err(invalid(
                "`k`, `min_score` and `escalate_to` need `knowledge = \"BASE\"`".into(),
            ));
        }
        if config.k.is_some_and(|k| !(1..=20).contains(&k)) {
            return Err(invalid("`k` must be between 1 and 20".into()));
        }
        if config.min_score.is_some_and(|m| !(-1.0..=1.0).contains(&m)) {
            return Err(invalid(
                "`min_score` is a cosine similarity, between -1 and 1".into(),
            ));
        }
        if let Some(m) = config
            .escalate_to
            .as_ref()
            .filter(|m| !self.models.contains(m))
        {
            return Err(invalid(format!(
                "`escalate_to` model `{m}` is not configured; use one of: {}",
                self.models.join(", ")
            )));
        }
        if examples.len() != config.examples.len() {
            return Err(invalid("every example needs its embedding".into()));
        }
        let rule = match &config.when {
            Some(w) => Some(Rule::compile(&config.name, w.clone())?),
            None => None,
        };
        self.routes.push(Route {
            config,
            rule,
            examples,
        });
        Ok(self)
    }

    pub fn with_learned(mut self, learned: LearnedPolicy) -> Self {
        self.learned = Some(learned);
        self
    }

    /// Whether deciding needs the conversation's embedding in [`Signals::embedding`].
    pub fn needs_embedding(&self) -> bool {
        self.learned.is_some() || self.routes.iter().any(|r| !r.examples.is_empty())
    }

    fn rungs(config: &RouteConfig) -> Vec<String> {
        match &config.target {
            Some(t) => vec![t.clone()],
            None => config.ladder.clone(),
        }
    }

    fn decide_route(route: &Route, reason: String, scores: BTreeMap<String, f64>) -> Decision {
        let c = &route.config;
        Decision {
            ladder: Self::rungs(c),
            route: c.name.clone(),
            reason,
            scores,
            system_prompt: c.system_prompt.clone(),
            cascade: c.cascade,
            confidence_threshold: c.confidence_threshold,
            knowledge: c.knowledge.as_ref().map(|base| Knowledge {
                base: base.clone(),
                k: c.k.unwrap_or(DEFAULT_K),
                min_score: c.min_score.unwrap_or(DEFAULT_MIN_SCORE),
                escalate_to: c.escalate_to.clone(),
            }),
        }
    }

    /// The best similarity of `embedding` to one of the route's examples, and that example.
    fn similarity(route: &Route, embedding: Option<&[f32]>) -> Option<(f64, usize)> {
        let e = embedding?;
        route
            .examples
            .iter()
            .enumerate()
            .map(|(i, x)| {
                (
                    x.iter().zip(e).map(|(a, b)| f64::from(a * b)).sum::<f64>(),
                    i,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Replay's pins (`switchyard replay`): `route` instead of the route the router chose, and
    /// `model` answering alone instead of the ladder, so that every model answers a request as
    /// the route would have it answer (its system prompt and knowledge base still apply).
    pub fn pin(
        &self,
        decision: Decision,
        route: Option<&str>,
        model: Option<&str>,
    ) -> Result<Decision, RouteError> {
        let mut decision = match route {
            None => decision,
            Some(name) => {
                let Some(r) = self.routes.iter().find(|r| r.config.name == name) else {
                    return Err(RouteError::UnknownRoute {
                        requested: name.to_owned(),
                        available: self
                            .routes
                            .iter()
                            .map(|r| r.config.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                Self::decide_route(r, format!("route {name}: pinned"), decision.scores)
            }
        };
        if let Some(m) = model {
            if !self.models.iter().any(|x| x == m) {
                return Err(RouteError::UnknownModel {
                    requested: m.to_owned(),
                    available: self.models.join(", "),
                });
            }
            // What the router chose, for replay to follow offline.
            let chose = if decision.cascade {
                format!("cascade {}", decision.ladder.join(","))
            } else {
                decision.target().to_owned()
            };
            decision.ladder = vec![m.to_owned()];
            decision.cascade = false;
            decision.reason += &format!("; pinned to {m} (the router chose {chose})");
        }
        Ok(decision)
    }

    pub fn decide(&self, req: &ChatRequest, s: &Signals) -> Result<Decision, RouteError> {
        if req.model != AUTO {
            if self.models.contains(&req.model) {
                return Ok(Decision::to(
                    "explicit",
                    &req.model,
                    format!("explicit: client asked for {}", req.model),
                ));
            }
            return Err(RouteError::UnknownModel {
                requested: req.model.clone(),
                available: self.models.join(", "),
            });
        }
        let embedding = s.embedding.as_deref();
        let mut scores = BTreeMap::new();

        for route in self.routes.iter().filter(|r| r.rule.is_some()) {
            let Some(why) = route.rule.as_ref().and_then(|r| r.check(s)) else {
                continue;
            };
            if route.examples.is_empty() {
                return Ok(Self::decide_route(
                    route,
                    format!("route {}: {why}", route.config.name),
                    scores,
                ));
            }
            if let Some((sim, i)) = Self::similarity(route, embedding) {
                scores.insert(format!("similarity.{}", route.config.name), sim);
                if sim >= route.config.similarity {
                    let reason = format!(
                        "route {}: {why}, similarity {sim:.2} >= {:.2} to \"{}\"",
                        route.config.name, route.config.similarity, route.config.examples[i]
                    );
                    return Ok(Self::decide_route(route, reason, scores));
                }
            }
        }

        if let Some(previous) = &s.previous_model {
            if self.models.contains(previous) {
                return Ok(Decision {
                    scores,
                    ..Decision::to(
                        "sticky",
                        previous,
                        format!("sticky: the conversation stays on {previous}"),
                    )
                });
            }
        }

        let best = self
            .routes
            .iter()
            .filter(|r| r.rule.is_none())
            .filter_map(|r| Self::similarity(r, embedding).map(|(sim, i)| (r, sim, i)))
            .inspect(|(r, sim, _)| {
                scores.insert(format!("similarity.{}", r.config.name), *sim);
            })
            .filter(|(r, sim, _)| *sim >= r.config.similarity)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((route, sim, i)) = best {
            let reason = format!(
                "route {}: similarity {sim:.2} >= {:.2} to \"{}\"",
                route.config.name, route.config.similarity, route.config.examples[i]
            );
            return Ok(Self::decide_route(route, reason, scores));
        }

        if let (Some(l), Some(e)) = (&self.learned, embedding) {
            let score = l.scorer.score(e, s.learned_text());
            scores.insert("learned".into(), score);
            scores.insert("learned.threshold".into(), l.threshold);
            let (model, cmp) = if score >= l.threshold {
                (&l.strong, ">=")
            } else {
                (&l.weak, "<")
            };
            let reason = format!(
                "learned {}: score {score:.2} {cmp} threshold {:.2} -> {model}",
                l.scorer.describe(),
                l.threshold
            );
            return Ok(Decision {
                scores,
                ..Decision::to("learned", model, reason)
            });
        }

        Ok(Decision {
            scores,
            ..Decision::to(
                "default",
                &self.default,
                format!("default: auto -> {}", self.default),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::{Message, Role};

    fn request(model: &str, text: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![Message::new(Role::User, text)],
            ..Default::default()
        }
    }

    fn models() -> Vec<String> {
        ["small", "medium", "large"].map(String::from).to_vec()
    }

    fn route(name: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            when: None,
            examples: Vec::new(),
            similarity: 0.5,
            target: None,
            ladder: Vec::new(),
            system_prompt: None,
            cascade: false,
            confidence_threshold: None,
            knowledge: None,
            k: None,
            min_score: None,
            escalate_to: None,
        }
    }

    fn decide(router: &Router, req: &ChatRequest, embedding: Option<Vec<f32>>) -> Decision {
        let mut s = Signals::from_request(req);
        s.embedding = embedding;
        router.decide(req, &s).unwrap()
    }

    /// Two semantic routes with one-hot "embeddings" so similarities are easy to read.
    fn semantic_router() -> Router {
        Router::new(models(), "small".into())
            .with_route(
                RouteConfig {
                    examples: vec!["where is my order".into()],
                    similarity: 0.6,
                    target: Some("small".into()),
                    ..route("support")
                },
                vec![vec![1.0, 0.0]],
            )
            .unwrap()
            .with_route(
                RouteConfig {
                    examples: vec!["prove this theorem".into()],
                    similarity: 0.6,
                    target: Some("large".into()),
                    ..route("math")
                },
                vec![vec![0.0, 1.0]],
            )
            .unwrap()
    }

    #[test]
    fn a_configured_name_bypasses_routing() {
        let d = decide(
            &semantic_router(),
            &request("large", "where is my order"),
            Some(vec![1.0, 0.0]),
        );
        assert_eq!((d.target(), d.route.as_str()), ("large", "explicit"));
    }

    #[test]
    fn an_unknown_model_is_a_404_that_lists_the_choices() {
        let req = request("gpt-9", "hi");
        let err: ApiError = Router::new(models(), "small".into())
            .decide(&req, &Signals::from_request(&req))
            .unwrap_err()
            .into();
        assert_eq!(err.status(), 404);
        assert_eq!(err.code.as_deref(), Some("model_not_found"));
        assert!(
            err.message.contains("small, medium, large"),
            "{}",
            err.message
        );
    }

    #[test]
    fn auto_with_nothing_to_go_on_goes_to_the_default_model() {
        let d = decide(
            &Router::new(models(), "medium".into()),
            &request("auto", "hi"),
            None,
        );
        assert_eq!((d.target(), d.route.as_str()), ("medium", "default"));
        assert_eq!(d.reason, "default: auto -> medium");
    }

    #[test]
    fn the_first_matching_rule_route_wins_and_carries_its_module() {
        let router = Router::new(models(), "small".into())
            .with_route(
                RouteConfig {
                    when: Some(When {
                        code: Some(true),
                        ..Default::default()
                    }),
                    ladder: vec!["small".into(), "medium".into(), "large".into()],
                    cascade: true,
                    confidence_threshold: Some(0.7),
                    system_prompt: Some("You review code.".into()),
                    ..route("code")
                },
                Vec::new(),
            )
            .unwrap()
            .with_route(
                RouteConfig {
                    when: Some(When {
                        min_chars: Some(1),
                        ..Default::default()
                    }),
                    target: Some("large".into()),
                    ..route("anything")
                },
                Vec::new(),
            )
            .unwrap();
        let d = decide(
            &router,
            &request(
                "auto",
                "```rust
fn main() {}
```",
            ),
            None,
        );
        assert_eq!(d.ladder, vec!["small", "medium", "large"]);
        assert_eq!(d.route, "code");
        assert_eq!(d.reason, "route code: code");
        assert!(d.cascade);
        assert_eq!(d.confidence_threshold, Some(0.7));
        assert_eq!(d.system_prompt.as_deref(), Some("You review code."));
        let d = decide(&router, &request("auto", "hello"), None);
        assert_eq!((d.route.as_str(), d.target()), ("anything", "large"));
    }

    #[test]
    fn the_most_similar_semantic_route_above_its_threshold_wins() {
        let router = semantic_router();
        let d = decide(
            &router,
            &request("auto", "where's my parcel"),
            Some(vec![0.9, 0.1]),
        );
        assert_eq!((d.route.as_str(), d.target()), ("support", "small"));
        assert!(
            d.reason
                .contains("similarity 0.90 >= 0.60 to \"where is my order\""),
            "{}",
            d.reason
        );
        assert_eq!(d.scores["similarity.math"], 0.1f32 as f64);
        let d = decide(&router, &request("auto", "hmm"), Some(vec![0.5, 0.5]));
        assert_eq!(d.route, "default", "below both thresholds");
    }

    #[test]
    fn a_conversation_stays_on_its_model_unless_a_rule_says_otherwise() {
        let router = semantic_router()
            .with_route(
                RouteConfig {
                    when: Some(When {
                        keywords: vec!["urgent".into()],
                        ..Default::default()
                    }),
                    target: Some("medium".into()),
                    ..route("urgent")
                },
                Vec::new(),
            )
            .unwrap();
        let req = request("auto", "where is my order");
        let mut s = Signals::from_request(&req);
        s.embedding = Some(vec![1.0, 0.0]);
        s.previous_model = Some("large".into());
        let d = router.decide(&req, &s).unwrap();
        assert_eq!((d.route.as_str(), d.target()), ("sticky", "large"));
        let urgent = request("auto", "URGENT: where is my order");
        s.conversation = Signals::from_request(&urgent).conversation;
        assert_eq!(router.decide(&urgent, &s).unwrap().route, "urgent");
    }

    struct Length;
    impl Scorer for Length {
        fn score(&self, _: &[f32], text: &str) -> f64 {
            (text.len() as f64 / 100.0).min(1.0)
        }
        fn describe(&self) -> String {
            "length/100".into()
        }
    }

    #[test]
    fn the_learned_score_sends_hard_requests_to_the_strong_model() {
        let router = Router::new(models(), "small".into()).with_learned(LearnedPolicy {
            scorer: Box::new(Length),
            threshold: 0.5,
            weak: "small".into(),
            strong: "large".into(),
        });
        assert!(router.needs_embedding());
        let d = decide(
            &router,
            &request("auto", &"why ".repeat(30)),
            Some(vec![0.0]),
        );
        assert_eq!((d.route.as_str(), d.target()), ("learned", "large"));
        assert!(
            d.reason
                .starts_with("learned length/100: score 1.00 >= threshold 0.50 -> large"),
            "{}",
            d.reason
        );
        assert_eq!(d.scores["learned"], 1.0);
        let d = decide(&router, &request("auto", "hi"), Some(vec![0.0]));
        assert_eq!(d.target(), "small");
    }

    #[test]
    fn bad_routes_are_refused_with_their_name() {
        let r = Router::new(models(), "small".into());
        let err = |c: RouteConfig| {
            r_with(&r, c)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let when = Some(When::default());
        assert!(err(RouteConfig {
            when: when.clone(),
            ..route("a")
        })
        .contains("`target` model or a `ladder`"));
        assert!(err(RouteConfig {
            when: when.clone(),
            target: Some("gpt".into()),
            ..route("b")
        })
        .contains("model `gpt` is not configured"));
        assert!(err(RouteConfig {
            when: when.clone(),
            target: Some("small".into()),
            cascade: true,
            ..route("c")
        })
        .contains("at least two"));
        assert!(err(RouteConfig {
            target: Some("small".into()),
            ..route("d")
        })
        .contains("`when` conditions, `examples`"));
        let knowing = RouteConfig {
            when: when.clone(),
            target: Some("small".into()),
            ..route("e")
        };
        assert!(err(RouteConfig {
            min_score: Some(0.5),
            ..knowing.clone()
        })
        .contains("need `knowledge"));
        let knowing = RouteConfig {
            knowledge: Some("support".into()),
            ..knowing
        };
        assert!(err(RouteConfig {
            k: Some(0),
            ..knowing.clone()
        })
        .contains("`k` must be"));
        assert!(err(RouteConfig {
            escalate_to: Some("gpt".into()),
            ..knowing.clone()
        })
        .contains("`escalate_to` model `gpt`"));
    }

    #[test]
    fn a_route_with_a_knowledge_base_carries_it_into_the_decision_with_defaults() {
        let router = Router::new(models(), "small".into())
            .with_route(
                RouteConfig {
                    when: Some(When {
                        keywords: vec!["refund".into()],
                        ..When::default()
                    }),
                    target: Some("small".into()),
                    knowledge: Some("support".into()),
                    escalate_to: Some("large".into()),
                    ..route("support")
                },
                Vec::new(),
            )
            .unwrap();
        let d = decide(&router, &request("auto", "how do I get a refund?"), None);
        assert_eq!(
            d.knowledge,
            Some(Knowledge {
                base: "support".into(),
                k: DEFAULT_K,
                min_score: DEFAULT_MIN_SCORE,
                escalate_to: Some("large".into()),
            })
        );
        assert_eq!(
            decide(&router, &request("auto", "hello"), None).knowledge,
            None
        );
    }

    fn r_with(r: &Router, c: RouteConfig) -> Result<Router, RouteError> {
        Router::new(r.models.clone(), r.default.clone()).with_route(c, Vec::new())
    }
}
