//! A learned router replayed over labelled examples, next to the random, prompt-length and
//! oracle baselines of the same examples.

use std::collections::HashSet;

use switchyard_router::data::Example;
use switchyard_router::eval::{self, Evaluation, Outcome, Report};
use switchyard_router::learned::LearnedRouter;

use crate::OfflineError;

/// What [`judge`] found.
#[derive(Debug)]
pub struct Judged {
    pub report: Report,
    /// Share of the examples the router's stored threshold sends to the strong model.
    pub strong_share_at_threshold: f64,
    /// Examples from groups the router was trained on (a held-out figure should have none).
    pub seen_in_training: usize,
}

/// Score every example (`embeddings[i]` is `examples[i]`'s) and evaluate the scores on `points`
/// threshold bins.
pub fn judge(
    router: &LearnedRouter,
    examples: &[Example],
    embeddings: &[Vec<f32>],
    points: usize,
) -> Result<Judged, OfflineError> {
    if examples.len() != embeddings.len() {
        return Err(OfflineError::Mismatch {
            examples: examples.len(),
            embeddings: embeddings.len(),
        });
    }
    let trained: HashSet<&String> = router.metadata().training_groups.iter().collect();
    let seen_in_training = examples
        .iter()
        .filter(|e| trained.contains(&e.group))
        .count();
    let scores: Vec<f64> = embeddings
        .iter()
        .zip(examples)
        .map(|(v, e)| router.score_example(e, v))
        .collect();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let outcomes: Vec<Outcome> = examples.iter().map(Example::outcome).collect();
    let report = eval::report(&scores, &texts, &outcomes, points)?;
    let strong = scores.iter().filter(|s| router.prefers_strong(**s)).count();
    Ok(Judged {
        report,
        strong_share_at_threshold: strong as f64 / scores.len().max(1) as f64,
        seen_in_training,
    })
}

/// One evaluation's headline figures as JSON.
pub fn metrics_json(e: &Evaluation) -> serde_json::Value {
    serde_json::json!({"apgr": e.apgr, "cpt50": e.cpt50, "cpt80": e.cpt80, "cpt95": e.cpt95})
}
