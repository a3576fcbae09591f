//! The graded answers as router training data: `labels/train.jsonl` and, when split,
//! `labels/held-out.jsonl` in the replay folder, in the JSONL format `switchyard train` and
//! `switchyard eval` read (`{"messages", "scores": {MODEL: grade}, "group"}`), so the router
//! is learned from this gateway's own answers and judged on the half it never saw.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cache::{AnswerCache, CacheError};
use crate::workload::Item;

pub const DIR: &str = "labels";
pub const TRAIN: &str = "train.jsonl";
pub const HELD_OUT: &str = "held-out.jsonl";
/// The small model's graded answers with their token logprobs, for `switchyard calibrate`.
pub const SMALL: &str = "small.jsonl";

/// One graded answer of the small model, as `labels/small.jsonl` keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SmallAnswer {
    pub item: String,
    pub model: String,
    pub grade: f64,
    pub held_out: bool,
    pub finish_reason: Option<String>,
    pub logprobs: Vec<switchyard_api::TokenLogprob>,
}

/// Writes the labels of every graded request every model answered; `held_out` marks the
/// held-out ones (all on the training side when `None`). Returns the files written.
pub fn write(
    dir: &Path,
    items: &[Item],
    cache: &AnswerCache,
    models: &[String],
    held_out: Option<&[bool]>,
) -> Result<Vec<PathBuf>, CacheError> {
    let folder = dir.join(DIR);
    let err = |source| CacheError {
        path: folder.clone(),
        source,
    };
    std::fs::create_dir_all(&folder).map_err(err)?;
    let (mut train, mut test, mut small) = (String::new(), String::new(), String::new());
    for (i, item) in items.iter().enumerate() {
        let scores: Option<serde_json::Map<String, serde_json::Value>> = models
            .iter()
            .map(|m| {
                let answer = cache.get(&item.id, m)?;
                Some((m.clone(), item.grade.score(&answer.text)?.into()))
            })
            .collect();
        let Some(scores) = scores else { continue };
        let out = held_out.is_some_and(|h| h[i]);
        if let Some(a) = models.first().and_then(|m| cache.get(&item.id, m)) {
            let row = SmallAnswer {
                item: item.id.clone(),
                model: a.model.clone(),
                grade: scores[&a.model].as_f64().unwrap_or(0.0),
                held_out: out,
                finish_reason: a.finish_reason.clone(),
                logprobs: a.logprobs.clone(),
            };
            if let Ok(line) = serde_json::to_string(&row) {
                small.push_str(&line);
                small.push('\n');
            }
        }
        let messages: Vec<serde_json::Value> = item
            .messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.text()}))
            .collect();
        let line = serde_json::json!({
            "messages": messages,
            "scores": scores,
            "group": item.split_group(),
        });
        let side = if out { &mut test } else { &mut train };
        side.push_str(&line.to_string());
        side.push('\n');
    }
    let mut written = Vec::new();
    for (name, text) in [(TRAIN, train), (HELD_OUT, test), (SMALL, small)] {
        let path = folder.join(name);
        if text.is_empty() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|source| CacheError {
                path: path.clone(),
                source,
            })?;
        written.push(path);
    }
    Ok(written)
}

/// The small model's graded answers of a replay folder, `None` when `path` is not one.
pub fn small_answers(path: &Path) -> Option<Result<Vec<SmallAnswer>, CacheError>> {
    for_folder(path, false)?;
    let file = path.join(DIR).join(SMALL);
    Some(
        std::fs::read_to_string(&file)
            .map_err(|source| CacheError {
                path: file.clone(),
                source,
            })
            .and_then(|text| {
                text.lines()
                    .map(|l| {
                        serde_json::from_str(l).map_err(|e| CacheError {
                            path: file.clone(),
                            source: e.into(),
                        })
                    })
                    .collect()
            }),
    )
}

/// The labels file `switchyard train` (`held_out: false`) or `eval` (`true`) reads for a replay
/// folder; `None` when `path` is not one.
pub fn for_folder(path: &Path, held_out: bool) -> Option<PathBuf> {
    if !path.join(AnswerCache::FILE).is_file() {
        return None;
    }
    let folder = path.join(DIR);
    let test = folder.join(HELD_OUT);
    Some(if held_out && test.is_file() {
        test
    } else {
        folder.join(TRAIN)
    })
}
