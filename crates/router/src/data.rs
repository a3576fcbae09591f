//! Labelled examples for training and evaluating routers, read from files.
//!
//! Two formats:
//!
//! * **RouteLLM-style CSV**: a `prompt` column and one column per model holding the quality of
//!   that model's answer, either `True`/`False` or a number (`0.0`…`1.0`, or any scale as long
//!   as both models use the same one). The caller names the weak and the strong column.
//! * **JSONL**, one example per line:
//!   ```json
//!   {"prompt": "What is 2+2?", "scores": {"small": 1.0, "large": 1.0}, "group": "arithmetic"}
//!   {"messages": [{"role": "user", "content": "Hi"}], "scores": {"small": 0, "large": true}}
//!   ```
//!   Exactly one of `prompt` (a string) or `messages` (OpenAI-style `role`/`content` objects,
//!   `content` a string) gives the conversation; `scores` maps model names to qualities (numbers
//!   or booleans); `group` is optional and defaults to the file's stem.
//!
//! Every example gets a `group`: the file's stem (for the MMLU data, the subject), so that
//! evaluation can hold out whole groups the learner never saw.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One labelled conversation: how well the weak and the strong model answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The conversation as the router sees it (see [`conversation_text`]).
    pub text: String,
    /// Quality of the weak (cheap) model's answer.
    pub weak: f64,
    /// Quality of the strong (expensive) model's answer.
    pub strong: f64,
    /// Where it came from (file stem or the JSONL `group` field), for held-out splits.
    pub group: String,
    /// Features computed when the example was served (request-log rows, which keep no
    /// text): used as they are instead of embedding `text` and computing its cheap features.
    pub features: Option<Features>,
}

/// A conversation's features as the learned router sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// The [`crate::learned::EMBEDDER`] vector.
    pub embedding: Vec<f32>,
    /// [`crate::learned::cheap_features`] of the conversation.
    pub cheap: [f32; 6],
}

impl Example {
    /// What replaying a router over this example needs: the two models' qualities.
    pub fn outcome(&self) -> crate::eval::Outcome {
        crate::eval::Outcome {
            weak: self.weak,
            strong: self.strong,
        }
    }
}

/// Why labelled data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, {location}: {message}")]
    Format {
        path: PathBuf,
        location: String,
        message: String,
    },
    #[error(
        "{path}: unsupported file type (expected .csv or .jsonl, a directory holding them, or a switchyard request log in SQLite)"
    )]
    UnsupportedType { path: PathBuf },
}

/// The two models being routed between: column names (CSV) or `scores` keys (JSONL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPair {
    pub weak: String,
    pub strong: String,
}

/// The file RouteLLM uses to list prompts that leaked into training data.
pub const CONTAMINATED_FILE: &str = "contaminated_prompts.jsonl";

/// The text a router embeds for a conversation: a single message is its content alone (so a
/// one-turn chat and a dataset prompt look the same); several are `role: content` lines.
pub fn conversation_text<'a>(turns: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let turns: Vec<(&str, &str)> = turns.into_iter().collect();
    match turns.as_slice() {
        [(_, content)] => (*content).to_owned(),
        _ => turns
            .iter()
            .map(|(role, content)| format!("{role}: {content}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn format_err(path: &Path, location: String, message: impl ToString) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        location,
        message: message.to_string(),
    }
}

/// A file's group: its stem (`mmlu_anatomy.csv` → `mmlu_anatomy`).
pub fn group_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The data files a path names: itself, or the `.csv`/`.jsonl` files in a directory (sorted,
/// without [`CONTAMINATED_FILE`]).
pub fn data_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_err(path))? {
        let p = entry.map_err(io_err(path))?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_contaminated = p.file_name().is_some_and(|n| n == CONTAMINATED_FILE);
        if p.is_file() && (ext == "csv" || ext == "jsonl") && !is_contaminated {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The model names a file offers: CSV columns other than `prompt`, or the `scores` keys of the
/// first JSONL line.
pub fn model_names(path: &Path) -> Result<Vec<String>, DataError> {
    match extension(path)? {
        Kind::Csv => {
            let mut reader =
                csv::Reader::from_path(path).map_err(|e| format_err(path, "header".into(), e))?;
            let headers = reader
                .headers()
                .map_err(|e| format_err(path, "header".into(), e))?;
            Ok(headers
                .iter()
                .filter(|h| *h != "prompt")
                .map(str::to_owned)
                .collect())
        }
        Kind::Jsonl => {
            let text = std::fs::read_to_string(path).map_err(io_err(path))?;
            let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
                return Ok(Vec::new());
            };
            let line: JsonLine =
                serde_json::from_str(first).map_err(|e| format_err(path, "line 1".into(), e))?;
            Ok(line.scores.keys().cloned().collect())
        }
    }
}

enum Kind {
    Csv,
    Jsonl,
}

fn extension(path: &Path) -> Result<Kind, DataError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => Ok(Kind::Csv),
        Some("jsonl") => Ok(Kind::Jsonl),
        _ => Err(DataError::UnsupportedType {
            path: path.to_path_buf(),
        }),
    }
}

/// Load one file (by extension) or every data file in a directory.
pub fn load(path: &Path, pair: &ModelPair) -> Result<Vec<Example>, DataError> {
    let mut all = Vec::new();
    for file in data_files(path)? {
        all.extend(match extension(&file)? {
            Kind::Csv => load_csv(&file, pair)?,
            Kind::Jsonl => load_jsonl(&file, pair)?,
        });
    }
    Ok(all)
}

/// A quality cell: `True`/`False` (any case) or a number.
fn parse_quality(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if cell.eq_ignore_ascii_case("true") {
        Some(1.0)
    } else if cell.eq_ignore_ascii_case("false") {
        Some(0.0)
    } else {
        cell.parse::<f64>().ok().filter(|v| v.is_finite())
    }
}

/// Load a RouteLLM-style CSV (see the module docs).
pub fn load_csv(path: &Path, pair: &ModelPair) -> Result<Vec<Example>, DataError> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format_err(path, "header".into(), e))?;
    let headers = reader
        .headers()
        .map_err(|e| format_err(path, "header".into(), e))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            format_err(
                path,
                "header".into(),
                format!(
                    "no column `{name}` (columns: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let (prompt, weak, strong) = (
        column("prompt")?,
        column(&pair.weak)?,
        column(&pair.strong)?,
    );
    let group = group_of(path);
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let location = || format!("record {}", i + 1);
        let record = record.map_err(|e| format_err(path, location(), e))?;
        let cell = |idx: usize| record.get(idx).unwrap_or("");
        let quality = |idx: usize, name: &str| {
            parse_quality(cell(idx)).ok_or_else(|| {
                format_err(
                    path,
                    location(),
                    format!(
                        "`{name}` is {:?}, expected True/False or a number",
                        cell(idx)
                    ),
                )
            })
        };
        out.push(Example {
            text: cell(prompt).to_owned(),
            weak: quality(weak, &pair.weak)?,
            strong: quality(strong, &pair.strong)?,
            group: group.clone(),
            features: None,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct JsonMessage {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct JsonLine {
    prompt: Option<String>,
    messages: Option<Vec<JsonMessage>>,
    scores: serde_json::Map<String, serde_json::Value>,
    group: Option<String>,
}

/// Load a JSONL file (see the module docs for the schema).
pub fn load_jsonl(path: &Path, pair: &ModelPair) -> Result<Vec<Example>, DataError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let default_group = group_of(path);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let location = || format!("line {}", i + 1);
        let line: JsonLine =
            serde_json::from_str(raw).map_err(|e| format_err(path, location(), e))?;
        let text = match (line.prompt, line.messages) {
            (Some(p), None) => p,
            (None, Some(m)) if !m.is_empty() => {
                conversation_text(m.iter().map(|m| (m.role.as_str(), m.content.as_str())))
            }
            _ => {
                return Err(format_err(
                    path,
                    location(),
                    "needs exactly one of `prompt` or a non-empty `messages`",
                ))
            }
        };
        let score = |name: &str| {
            let value = line
                .scores
                .get(name)
                .ok_or_else(|| format_err(path, location(), format!("`scores` has no `{name}`")))?;
            value
                .as_bool()
                .map(|b| if b { 1.0 } else { 0.0 })
                .or_else(|| value.as_f64())
                .ok_or_else(|| {
                    format_err(
                        path,
                        location(),
                        format!("score of `{name}` is {value}, expected a number or a boolean"),
                    )
                })
        };
        out.push(Example {
            text,
            weak: score(&pair.weak)?,
            strong: score(&pair.strong)?,
            group: line.group.unwrap_or_else(|| default_group.clone()),
            features: None,
        });
    }
    Ok(out)
}

/// The prompts a RouteLLM `contaminated_prompts.jsonl` lists (its `eval_prompt` fields; a
/// `prompt` field is accepted too).
pub fn load_contaminated(path: &Path) -> Result<HashSet<String>, DataError> {
    #[derive(Deserialize)]
    struct Line {
        eval_prompt: Option<String>,
        prompt: Option<String>,
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut set = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .map_err(|e| format_err(path, format!("line {}", i + 1), e))?;
        match line.eval_prompt.or(line.prompt) {
            Some(p) => set.insert(p),
            None => {
                return Err(format_err(
                    path,
                    format!("line {}", i + 1),
                    "needs `eval_prompt` or `prompt`",
                ))
            }
        };
    }
    Ok(set)
}

/// Drop the examples whose text is listed; returns how many were dropped.
pub fn decontaminate(examples: &mut Vec<Example>, contaminated: &HashSet<String>) -> usize {
    let before = examples.len();
    examples.retain(|e| !contaminated.contains(&e.text));
    before - examples.len()
}

/// The distinct groups, sorted.
pub fn groups(examples: &[Example]) -> Vec<String> {
    examples
        .iter()
        .map(|e| e.group.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> ModelPair {
        ModelPair {
            weak: "w".into(),
            strong: "s".into(),
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_reads_booleans_numbers_and_multiline_prompts_with_the_file_as_group() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "mmlu_x.csv",
            "prompt,w,s\n\"Q1\nA. a\nAnswer:\",True,False\nQ2,0.25,1\n",
        );
        let ex = load(&p, &pair()).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].text, "Q1\nA. a\nAnswer:");
        assert_eq!((ex[0].weak, ex[0].strong), (1.0, 0.0));
        assert_eq!((ex[1].weak, ex[1].strong), (0.25, 1.0));
        assert_eq!(ex[1].group, "mmlu_x");
        assert_eq!(model_names(&p).unwrap(), vec!["w", "s"]);
    }

    #[test]
    fn csv_errors_name_the_missing_column_and_the_bad_cell() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "prompt,w,other\nQ,True,True\n");
        let err = load(&p, &pair()).unwrap_err().to_string();
        assert!(
            err.contains("no column `s`") && err.contains("other"),
            "{err}"
        );
        let p = write(dir.path(), "b.csv", "prompt,w,s\nQ,True,maybe\n");
        let err = load(&p, &pair()).unwrap_err().to_string();
        assert!(err.contains("record 1") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn jsonl_takes_a_prompt_or_messages_and_an_optional_group() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "log.jsonl",
            concat!(
                r#"{"prompt": "hi", "scores": {"w": 1, "s": true}}"#,
                "\n\n",
                r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "sum 2+2"}], "scores": {"w": false, "s": 0.5}, "group": "math"}"#,
                "\n"
            ),
        );
        let ex = load(&p, &pair()).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!((ex[0].text.as_str(), ex[0].group.as_str()), ("hi", "log"));
        assert_eq!(ex[1].text, "system: be brief\nuser: sum 2+2");
        assert_eq!(
            (ex[1].weak, ex[1].strong, ex[1].group.as_str()),
            (0.0, 0.5, "math")
        );
    }

    #[test]
    fn jsonl_errors_say_which_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "bad.jsonl",
            "{\"prompt\": \"a\", \"scores\": {\"w\": 1, \"s\": 1}}\n{\"scores\": {\"w\": 1, \"s\": 1}}\n",
        );
        let err = load(&p, &pair()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("prompt"), "{err}");
    }

    #[test]
    fn a_directory_loads_its_data_files_and_contaminated_prompts_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.csv", "prompt,w,s\nQ2,True,True\n");
        write(
            dir.path(),
            "a.csv",
            "prompt,w,s\nQ1,False,True\nleaked,True,True\n",
        );
        write(
            dir.path(),
            CONTAMINATED_FILE,
            "{\"train_prompt\": \"x\", \"eval_prompt\": \"leaked\"}\n",
        );
        let mut ex = load(dir.path(), &pair()).unwrap();
        assert_eq!(groups(&ex), vec!["a", "b"]);
        let set = load_contaminated(&dir.path().join(CONTAMINATED_FILE)).unwrap();
        assert_eq!(decontaminate(&mut ex, &set), 1);
        assert_eq!(
            ex.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            vec!["Q1", "Q2"]
        );
    }

    #[test]
    fn one_message_is_its_content_alone() {
        assert_eq!(conversation_text([("user", "hello")]), "hello");
        assert_eq!(
            conversation_text([("user", "a"), ("assistant", "b")]),
            "user: a\nassistant: b"
        );
    }
}
