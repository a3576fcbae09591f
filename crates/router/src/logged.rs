//! Labelled examples from the request log: the gateway's own traffic, labelled by what its
//! cascades decided and by what clients said of answers (`POST /v1/feedback`).
//!
//! The log keeps no conversation text; with `[router] record_features` on, a routed request's
//! row keeps the learned router's features of it ([`Features`]), which is all training needs.
//! A row is labelled about its **small model** (a cascade's first rung, or the learned score's
//! weak model), which is what the learned score predicts: P(the small model is not good
//! enough | conversation).
//!
//! * **Not good enough**: the cascade judged the first rung's answer below its confidence
//!   threshold and escalated; or feedback below [`NEGATIVE_BELOW`] on an answer the small
//!   model gave.
//! * **Good enough**: the cascade judged the first rung's answer good enough and kept it, and
//!   feedback, if any, is not negative; or positive feedback on an answer the small model gave.
//! * **No label**: anything else (a larger model answered from the start, the first rung failed
//!   rather than being judged, a small-model answer nobody rated…).
//!
//! Each cascade rung is recorded as data, a [`Rung`], in the log's `cascade` column (a JSON
//! array), and read back as data. The decision's reason (`x-switchyard-route`, the log's `route`
//! column) says the same in words ([`Step::describe`]); only rows written before the column
//! existed are read from those words ([`legacy_steps`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::{Example, Features};

/// Feedback scores below this are negative; at or above, positive.
pub const NEGATIVE_BELOW: f64 = 0.5;

/// What one rung of a cascade did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The rung's answer was judged: kept when its confidence reached the threshold,
    /// otherwise escalated.
    Judged {
        confidence: f64,
        threshold: f64,
        kept: bool,
    },
    /// The rung answered without logprobs to judge: kept.
    Unjudged,
    /// The rung failed: escalated without a judgement.
    Failed,
}

/// One cascade rung as the request log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The rung's model.
    pub model: String,
    #[serde(flatten)]
    pub step: Step,
    /// What the rung cost (USD). A rung kept on its prefix streams on: its cost is filled in
    /// when the stream ends; none only if the row was written before that.
    pub cost_usd: Option<f64>,
}

/// The log's `cascade` column as written: a JSON array of [`Rung`]s.
pub fn write_steps(steps: &[Rung]) -> String {
    serde_json::to_string(steps).unwrap_or_default()
}

/// The log's `cascade` column read back; none when it is absent (an older row, or no cascade)
/// or not such an array.
pub fn read_steps(column: Option<&str>) -> Option<Vec<Rung>> {
    column.and_then(|c| serde_json::from_str(c).ok())
}

const PREFIX: &str = "cascade: ";

impl Step {
    /// Whether the rung's answer was kept: judged good enough, or not judged at all.
    pub fn kept(&self) -> bool {
        !matches!(self, Step::Judged { kept: false, .. } | Step::Failed)
    }

    /// The step as the decision's reason says it, e.g.
    /// `cascade: small confidence 0.42 < 0.50, escalated`.
    pub fn describe(&self, rung: &str) -> String {
        match self {
            Step::Judged {
                confidence,
                threshold,
                kept,
            } => {
                let (cmp, what) = if *kept {
                    (">=", "kept")
                } else {
                    ("<", "escalated")
                };
                format!("{PREFIX}{rung} confidence {confidence:.2} {cmp} {threshold:.2}, {what}")
            }
            Step::Unjudged => format!("{PREFIX}{rung} gave no logprobs to judge, kept"),
            Step::Failed => format!("{PREFIX}{rung} failed, escalated"),
        }
    }

    fn parse(part: &str) -> Option<(String, Step)> {
        let rest = part.strip_prefix(PREFIX)?;
        if let Some(rung) = rest.strip_suffix(" gave no logprobs to judge, kept") {
            return Some((rung.to_owned(), Step::Unjudged));
        }
        if let Some(rung) = rest.strip_suffix(" failed, escalated") {
            return Some((rung.to_owned(), Step::Failed));
        }
        let (rest, kept) = match (
            rest.strip_suffix(", kept"),
            rest.strip_suffix(", escalated"),
        ) {
            (Some(r), _) => (r, true),
            (None, Some(r)) => (r, false),
            (None, None) => return None,
        };
        let at = rest.rfind(" confidence ")?;
        let (rung, numbers) = (&rest[..at], &rest[at + " confidence ".len()..]);
        let mut words = numbers.split(' ');
        let confidence = words.next()?.parse().ok()?;
        let _cmp = words.next()?;
        let threshold = words.next()?.parse().ok()?;
        Some((
            rung.to_owned(),
            Step::Judged {
                confidence,
                threshold,
                kept,
            },
        ))
    }
}

/// The cascade steps a decision's reason records, in order (none when it was no cascade): for
/// rows logged before the `cascade` column, whose reason is their only record of the steps.
pub fn legacy_steps(reason: &str) -> Vec<Rung> {
    reason
        .split("; ")
        .filter_map(Step::parse)
        .map(|(model, step)| Rung {
            model,
            step,
            cost_usd: None,
        })
        .collect()
}

/// The label of a logged request, about its small model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    NotGoodEnough,
    GoodEnough,
}

impl Label {
    /// The example training sees: the small model as the weak one (quality 0 or 1), the larger
    /// model as the strong one, assumed good (quality 1). So both targets agree: "strong
    /// better" and "weak fails" are 1 exactly when the small model was not good enough.
    pub fn example(self, features: Features, group: String) -> Example {
        Example {
            text: String::new(),
            weak: match self {
                Label::NotGoodEnough => 0.0,
                Label::GoodEnough => 1.0,
            },
            strong: 1.0,
            group,
            features: Some(features),
        }
    }
}

/// What the request log says about one request.
#[derive(Debug, Clone, Copy)]
pub struct Logged<'a> {
    /// The decision's reason (the log's `route` column).
    pub reason: &'a str,
    /// The cascade's rungs (the log's `cascade` column, [`read_steps`]); none for rows written
    /// before the column, whose steps are read from the reason.
    pub cascade: Option<&'a [Rung]>,
    /// The decision's numbers (the log's `scores` column).
    pub scores: &'a BTreeMap<String, f64>,
    /// The model the decision chose to answer first (the log's `chosen` column); none for
    /// rows written before the column, whose reason says it.
    pub chosen: Option<&'a str>,
    /// The model that answered (the log's `model` column; empty when none did).
    pub answered_by: &'a str,
    /// The response's status (the log's `status` column; a stream that failed after its 200
    /// is logged with the failure's).
    pub status: u16,
    /// The latest feedback score sent for it, if any.
    pub feedback: Option<f64>,
}

/// A labelled request and the model its label is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub label: Label,
    /// The small model: the cascade's first rung, or the learned score's weak model.
    pub small: String,
}

/// Labels a logged request by the rules in the module docs; none when it says nothing about
/// its small model.
pub fn judge(row: &Logged) -> Option<Judgement> {
    let by_feedback = |small: &str| {
        row.feedback.map(|f| Judgement {
            label: if f < NEGATIVE_BELOW {
                Label::NotGoodEnough
            } else {
                Label::GoodEnough
            },
            small: small.to_owned(),
        })
    };
    let legacy;
    let steps = match row.cascade {
        Some(steps) => steps,
        None => {
            legacy = legacy_steps(row.reason);
            &legacy
        }
    };
    if let Some(Rung {
        model: first, step, ..
    }) = steps.first()
    {
        let label = match step {
            // Feedback then rates a later rung's answer, not the small model's.
            Step::Judged { kept: false, .. } => Label::NotGoodEnough,
            Step::Judged { kept: true, .. } => match row.feedback {
                Some(f) if f < NEGATIVE_BELOW => Label::NotGoodEnough,
                _ => Label::GoodEnough,
            },
            Step::Unjudged => return by_feedback(first),
            Step::Failed => return None,
        };
        return Some(Judgement {
            label,
            small: first.clone(),
        });
    }
    // The learned score chose its weak model, and it answered (no failure or fallback):
    // feedback on that answer rates the small model.
    let weak_chosen = match (
        row.scores.get("learned"),
        row.scores.get("learned.threshold"),
    ) {
        (Some(score), Some(threshold)) => score < threshold,
        _ => false,
    };
    if !weak_chosen || !row.reason.starts_with("learned ") {
        return None;
    }
    match row.chosen {
        Some(chosen) if chosen == row.answered_by && row.status < 400 => by_feedback(chosen),
        Some(_) => None,
        None if !row.reason.contains("; ") => {
            let (_, small) = row.reason.rsplit_once("-> ")?;
            by_feedback(small)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(confidence: f64, threshold: f64) -> Step {
        Step::Judged {
            confidence,
            threshold,
            kept: confidence >= threshold,
        }
    }

    fn rung(model: &str, step: Step) -> Rung {
        Rung {
            model: model.into(),
            step,
            cost_usd: Some(1e-6),
        }
    }

    #[test]
    fn steps_are_written_and_read_back_as_data() {
        let steps = vec![
            rung("small model", judged(0.4242, 0.5)),
            rung("medium", Step::Failed),
            Rung {
                cost_usd: None,
                ..rung("large", Step::Unjudged)
            },
        ];
        let column = write_steps(&steps);
        assert_eq!(
            column,
            r#"[{"model":"small model","step":"judged","confidence":0.4242,"threshold":0.5,"kept":false,"cost_usd":1e-6},{"model":"medium","step":"failed","cost_usd":1e-6},{"model":"large","step":"unjudged","cost_usd":null}]"#
        );
        assert_eq!(read_steps(Some(&column)), Some(steps));
        assert_eq!(read_steps(None), None);
        assert_eq!(read_steps(Some("not json")), None);
    }

    #[test]
    fn the_words_say_the_steps_and_old_rows_are_read_from_them() {
        assert_eq!(
            judged(0.4242, 0.5).describe("small model"),
            "cascade: small model confidence 0.42 < 0.50, escalated"
        );
        assert_eq!(
            judged(0.8, 0.5).describe("small"),
            "cascade: small confidence 0.80 >= 0.50, kept"
        );
        // A reason as rows before the `cascade` column wrote it.
        let old = "route code: code; cascade: small model confidence 0.42 < 0.50, escalated; \
                   cascade: medium failed, escalated; cascade: large gave no logprobs to judge, \
                   kept; large failed, fell back to claude";
        let legacy: Vec<(String, Step)> = legacy_steps(old)
            .into_iter()
            .map(|r| (r.model, r.step))
            .collect();
        assert_eq!(
            legacy,
            vec![
                ("small model".to_owned(), judged(0.42, 0.5)),
                ("medium".to_owned(), Step::Failed),
                ("large".to_owned(), Step::Unjudged),
            ]
        );
        assert!(legacy_steps("default: auto -> small").is_empty());
    }

    fn label(steps: &[Rung], scores: &[(&str, f64)], feedback: Option<f64>) -> Option<Label> {
        let scores = scores.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        judge(&Logged {
            reason: "route all: min_chars 0",
            cascade: Some(steps),
            scores: &scores,
            chosen: steps.first().map(|r| r.model.as_str()),
            answered_by: "large",
            status: 200,
            feedback,
        })
        .map(|j| j.label)
    }

    fn legacy_label(reason: &str, scores: &[(&str, f64)], feedback: Option<f64>) -> Option<Label> {
        let scores = scores.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        judge(&Logged {
            reason,
            cascade: None,
            scores: &scores,
            chosen: None,
            answered_by: "",
            status: 200,
            feedback,
        })
        .map(|j| j.label)
    }

    #[test]
    fn the_labelling_rules() {
        use Label::{GoodEnough as Good, NotGoodEnough as Bad};
        let escalated = [rung("small", judged(0.3, 0.5))];
        let kept = [rung("small", judged(0.8, 0.5))];
        let second_kept = [escalated[0].clone(), rung("medium", judged(0.9, 0.5))];
        // A cascade escalating from its first rung: not good enough, whatever the feedback
        // on the larger model's answer says.
        assert_eq!(label(&escalated, &[], None), Some(Bad));
        assert_eq!(label(&escalated, &[], Some(1.0)), Some(Bad));
        assert_eq!(label(&escalated, &[], Some(0.0)), Some(Bad));
        assert_eq!(label(&second_kept, &[], Some(0.0)), Some(Bad));
        // The first rung kept: good enough unless feedback says otherwise.
        assert_eq!(label(&kept, &[], None), Some(Good));
        assert_eq!(label(&kept, &[], Some(0.5)), Some(Good));
        assert_eq!(label(&kept, &[], Some(0.49)), Some(Bad));
        // Kept without a judgement: only feedback tells.
        let unjudged = [rung("small", Step::Unjudged)];
        assert_eq!(label(&unjudged, &[], None), None);
        assert_eq!(label(&unjudged, &[], Some(0.9)), Some(Good));
        assert_eq!(label(&unjudged, &[], Some(0.1)), Some(Bad));
        // The first rung failed: nothing is known of its quality.
        let failed = [rung("small", Step::Failed)];
        assert_eq!(label(&failed, &[], Some(0.0)), None);
        // The same rules for an old row, read from its reason.
        let route = "route all: min_chars 0";
        let old_escalated = format!("{route}; {}", judged(0.3, 0.5).describe("small"));
        let old_kept = format!("{route}; {}", judged(0.8, 0.5).describe("small"));
        assert_eq!(legacy_label(&old_escalated, &[], Some(1.0)), Some(Bad));
        assert_eq!(legacy_label(&old_kept, &[], None), Some(Good));
        // The learned score's weak model answered: feedback labels it.
        let weak = "learned knn(k=20): score 0.12 < threshold 0.50 -> small";
        let scores = [("learned", 0.12), ("learned.threshold", 0.5)];
        assert_eq!(legacy_label(weak, &scores, None), None);
        assert_eq!(legacy_label(weak, &scores, Some(0.2)), Some(Bad));
        assert_eq!(legacy_label(weak, &scores, Some(1.0)), Some(Good));
        // A row with the `chosen` column: the columns say who was chosen and who answered.
        let learned = |answered_by: &str, status: u16| {
            judge(&Logged {
                reason: weak,
                cascade: Some(&[]),
                scores: &scores.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                chosen: Some("small"),
                answered_by,
                status,
                feedback: Some(1.0),
            })
        };
        assert_eq!(
            learned("small", 200),
            Some(Judgement {
                label: Good,
                small: "small".into()
            })
        );
        assert_eq!(learned("large", 200), None, "a fallback answered");
        assert_eq!(learned("small", 502), None, "its stream failed");
        // ... but not when it failed and a fallback answered, nor when the strong one did.
        let fell_back = format!("{weak}; small failed, fell back to large");
        assert_eq!(legacy_label(&fell_back, &scores, Some(0.0)), None);
        let strong = "learned knn(k=20): score 0.72 >= threshold 0.50 -> large";
        let scores = [("learned", 0.72), ("learned.threshold", 0.5)];
        assert_eq!(legacy_label(strong, &scores, Some(0.0)), None);
        // A rule, a default or an explicit model: no small model to speak of.
        assert_eq!(legacy_label("default: auto -> small", &[], Some(0.0)), None);
        assert_eq!(
            legacy_label("explicit: client asked for large", &[], Some(1.0)),
            None
        );
    }

    #[test]
    fn a_label_is_an_example_both_targets_read_the_same_way() {
        use crate::learned::Target;
        let f = Features {
            embedding: vec![1.0, 0.0],
            cheap: [0.0; 6],
        };
        let bad = Label::NotGoodEnough.example(f.clone(), "log".into());
        let good = Label::GoodEnough.example(f, "log".into());
        for target in [Target::StrongBetter, Target::WeakFails] {
            assert_eq!(target.label(&bad), 1.0);
            assert_eq!(target.label(&good), 0.0);
        }
        assert_eq!(bad.group, "log");
        assert!(bad.features.is_some());
    }
}
