//! A workload: JSONL requests with the label each answer is judged by.
//!
//! `{"messages": [...] | "prompt": "...", "grade": {"kind": ..., "answer": ...}, "group"?,
//! "route"?, "max_tokens"?, "temperature"?}` a line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_api::{Message, Role};

use crate::grade::{Grade, GradeSpec};

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("cannot read the workload {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the workload {0} has no requests")]
    Empty(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    messages: Option<Vec<Message>>,
    prompt: Option<String>,
    grade: Option<GradeSpec>,
    group: Option<String>,
    route: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
}

/// One request of the workload.
#[derive(Debug, Clone)]
pub struct Item {
    /// Names the request in the answer cache: a hash of what is sent (messages, route,
    /// sampling), so an edited row is answered again.
    pub id: String,
    /// Its line in the workload file.
    pub line: usize,
    pub messages: Vec<Message>,
    pub grade: Grade,
    /// Requests of one group are kept on the same side of a train/held-out split.
    pub group: Option<String>,
    /// The route that answers it, pinned; the router's own choice when unset.
    pub route: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl Item {
    /// The conversation's text, for the prompt-length baseline.
    pub fn text(&self) -> String {
        self.messages
            .iter()
            .map(Message::text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The group the split keeps it in: its own, or itself alone.
    pub fn split_group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.id)
    }
}

pub struct Workload {
    pub items: Vec<Item>,
}

impl Workload {
    pub fn load(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let workload = Workload::parse(&text).map_err(|(line, message)| WorkloadError::Row {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        if workload.items.is_empty() {
            return Err(WorkloadError::Empty(path.to_path_buf()));
        }
        Ok(workload)
    }

    /// The rows of a JSONL text; an error is its line number and what is wrong there.
    pub fn parse(text: &str) -> Result<Workload, (usize, String)> {
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(line).map_err(|e| (line_no, e.to_string()))?;
            let messages = match (row.messages, row.prompt) {
                (Some(m), None) if !m.is_empty() => m,
                (None, Some(p)) => vec![Message::new(Role::User, p)],
                _ => {
                    return Err((
                        line_no,
                        "give the request as `messages` (a non-empty list) or as `prompt` (a string), not both".into(),
                    ))
                }
            };
            let grade = row.grade.ok_or((
                line_no,
                "`grade` is missing: say how an answer is judged, e.g. {\"kind\": \"contains\", \"answer\": \"Paris\"}, or {\"kind\": \"none\"}".to_owned(),
            ))?;
            let grade = Grade::compile(grade).map_err(|m| (line_no, m))?;
            let id = id_of(&messages, &row.route, row.max_tokens, row.temperature);
            items.push(Item {
                id,
                line: line_no,
                messages,
                grade,
                group: row.group,
                route: row.route,
                max_tokens: row.max_tokens,
                temperature: row.temperature,
            });
        }
        Ok(Workload { items })
    }

    /// Whether any request is labelled (quality can be measured).
    pub fn graded(&self) -> bool {
        self.items.iter().any(|i| !matches!(i.grade, Grade::None))
    }
}

fn id_of(
    messages: &[Message],
    route: &Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
) -> String {
    let what = serde_json::json!({
        "messages": messages, "route": route, "max_tokens": max_tokens, "temperature": temperature,
    });
    let digest = Sha256::digest(what.to_string().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_take_messages_or_a_prompt_and_say_where_they_are_wrong() {
        let w = Workload::parse(concat!(
            r#"{"prompt": "2+2?", "grade": {"kind": "number", "answer": 4}, "group": "maths"}"#,
            "\n\n",
            r#"{"messages": [{"role": "user", "content": "Hi"}], "grade": {"kind": "none"}, "route": "chat"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(w.items.len(), 2);
        assert_eq!(w.items[0].text(), "2+2?");
        assert_eq!(w.items[1].line, 3);
        assert_eq!(w.items[1].route.as_deref(), Some("chat"));
        assert_ne!(w.items[0].id, w.items[1].id);
        assert!(w.graded());

        let (line, message) = Workload::parse("{\"prompt\": \"x\"}\n").err().unwrap();
        assert_eq!(line, 1);
        assert!(message.contains("`grade` is missing"), "{message}");
        let (_, message) =
            Workload::parse(r#"{"prompt": "x", "messages": [], "grade": {"kind": "none"}}"#)
                .err()
                .unwrap();
        assert!(message.contains("not both"), "{message}");
        let (_, message) = Workload::parse(r#"{"prompt": "x", "grade": {"kind": "fuzzy"}}"#)
            .err()
            .unwrap();
        assert!(message.contains("fuzzy"), "{message}");
    }

    #[test]
    fn the_same_request_has_the_same_id_and_an_edited_one_a_new_one() {
        let a = Workload::parse(r#"{"prompt": "x", "grade": {"kind": "none"}}"#).unwrap();
        let b = Workload::parse(r#"{"prompt": "x", "grade": {"kind": "exact", "answer": "y"}}"#)
            .unwrap();
        let c = Workload::parse(r#"{"prompt": "x", "max_tokens": 9, "grade": {"kind": "none"}}"#)
            .unwrap();
        assert_eq!(
            a.items[0].id, b.items[0].id,
            "the label is not part of what is sent"
        );
        assert_ne!(a.items[0].id, c.items[0].id);
    }
}
