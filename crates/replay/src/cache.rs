//! The answers collected so far: `answers.jsonl` in the output folder, one answer a line,
//! appended and flushed as each arrives, so a killed run loses at most the line it was
//! writing and the next run resumes where it stopped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchyard_api::TokenLogprob;

/// One model's answer to one request, as the gateway gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    /// The request's [`crate::Item::id`].
    pub item: String,
    /// The model asked to answer.
    pub model: String,
    /// The model that did (a fallback, or a knowledge route's escalation, may differ).
    pub served_by: String,
    /// The gateway's explanation of the decision (`x-switchyard-route`).
    pub route: String,
    pub text: String,
    pub finish_reason: Option<String>,
    /// The answer's token logprobs (local models).
    #[serde(default)]
    pub logprobs: Vec<TokenLogprob>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("the answer cache {path}: {source}")]
pub struct CacheError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

pub struct AnswerCache {
    path: PathBuf,
    file: File,
    answers: HashMap<(String, String), Answer>,
}

impl AnswerCache {
    pub const FILE: &'static str = "answers.jsonl";

    /// Opens (or starts) the cache in `dir`. A last line cut short by a kill is dropped.
    pub fn open(dir: &Path) -> Result<AnswerCache, CacheError> {
        let path = dir.join(Self::FILE);
        let err = |source| CacheError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(e)),
        };
        let whole = text.rfind('\n').map_or(0, |at| at + 1);
        let mut answers = HashMap::new();
        for line in text[..whole].lines() {
            if let Ok(a) = serde_json::from_str::<Answer>(line) {
                answers.insert((a.item.clone(), a.model.clone()), a);
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        if whole < text.len() {
            file.set_len(whole as u64).map_err(err)?;
        }
        Ok(AnswerCache {
            path,
            file,
            answers,
        })
    }

    pub fn get(&self, item: &str, model: &str) -> Option<&Answer> {
        self.answers.get(&(item.to_owned(), model.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Keeps an answer, on disk first.
    pub fn put(&mut self, answer: Answer) -> Result<(), CacheError> {
        let mut line = serde_json::to_string(&answer).map_err(|e| CacheError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| CacheError {
                path: self.path.clone(),
                source,
            })?;
        self.answers
            .insert((answer.item.clone(), answer.model.clone()), answer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(item: &str, model: &str) -> Answer {
        Answer {
            item: item.into(),
            model: model.into(),
            served_by: model.into(),
            route: "default".into(),
            text: "Paris".into(),
            finish_reason: Some("stop".into()),
            logprobs: Vec::new(),
            prompt_tokens: 3,
            completion_tokens: 1,
            cost_usd: 0.0,
            latency_ms: 12.0,
        }
    }

    #[test]
    fn answers_survive_a_reopen_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = AnswerCache::open(dir.path()).unwrap();
        cache.put(answer("q1", "small")).unwrap();
        cache.put(answer("q1", "large")).unwrap();
        drop(cache);
        // A kill in the middle of writing the third line.
        let path = dir.path().join(AnswerCache::FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"item": "q2", "mod"#).unwrap();
        drop(f);

        let mut cache = AnswerCache::open(dir.path()).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("q1", "large"), Some(&answer("q1", "large")));
        cache.put(answer("q2", "small")).unwrap();
        drop(cache);
        let cache = AnswerCache::open(dir.path()).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(cache.get("q2", "small").is_some());
    }
}
