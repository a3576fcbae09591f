//! Labelled routing data: RouteLLM-style CSV and JSONL files (or folders of them), the graded
//! answers of a `switchyard replay` folder, and the gateway's request log (an SQLite file, told
//! by its header): its `"model": "auto"` rows that carry features (`[router] record_features`)
//! and a label from their cascade or feedback (see `switchyard_router::logged`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use switchyard_router::data::{self, Example, Features, ModelPair};
use switchyard_router::logged::{self, Label, Logged};

use crate::OfflineError;

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether a path is a request log: an SQLite file, whatever its name.
pub fn is_request_log(path: &Path) -> bool {
    let mut header = [0u8; 16];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut header))
            .is_ok()
        && &header == SQLITE_HEADER
}

/// A `switchyard replay` folder stands for its labels: the training half, or with `held_out`
/// the held-out half. Replaces each such path and returns the labels files it put in.
pub fn replay_labels(paths: &mut [PathBuf], held_out: bool) -> Vec<PathBuf> {
    let mut replaced = Vec::new();
    for path in paths {
        if let Some(labels) = switchyard_replay::labels::for_folder(path, held_out) {
            replaced.push(labels.clone());
            *path = labels;
        }
    }
    replaced
}

/// The two models to compare and how they were picked.
#[derive(Debug, Clone)]
pub struct Pair {
    pub models: ModelPair,
    /// True when the pair was chosen by mean quality from the path's two model columns.
    pub by_mean_quality: bool,
}

/// The weak and strong model of each path: `explicit` when given, else the two model columns
/// of the path's first data file, the lower-scoring one as weak. Each path its own pair, so
/// that sources of different model pairs (RouteLLM's MMLU, a replay's labels) train one router.
/// Request logs label the small model against the larger ones, so they have no columns to pick.
pub fn model_pairs(
    paths: &[PathBuf],
    explicit: Option<ModelPair>,
) -> Result<Vec<Pair>, OfflineError> {
    paths
        .iter()
        .map(|path| match &explicit {
            Some(models) => Ok(Pair {
                models: models.clone(),
                by_mean_quality: false,
            }),
            None if is_request_log(path) => Ok(Pair {
                models: ModelPair {
                    weak: "the small model".into(),
                    strong: "a larger model".into(),
                },
                by_mean_quality: false,
            }),
            None => own_pair(path),
        })
        .collect()
}

/// The two model columns of `path`'s first data file, the lower-scoring one as weak.
fn own_pair(path: &Path) -> Result<Pair, OfflineError> {
    let first = data::data_files(path)?
        .into_iter()
        .next()
        .ok_or_else(|| OfflineError::NoDataFiles(path.display().to_string()))?;
    let names = data::model_names(&first)?;
    let [a, b] = names.as_slice() else {
        return Err(OfflineError::ModelColumns {
            file: first,
            count: names.len(),
            names: names.join(", "),
        });
    };
    let models = ModelPair {
        weak: a.clone(),
        strong: b.clone(),
    };
    let examples = data::load(&first, &models)?;
    let total = |f: fn(&Example) -> f64| examples.iter().map(f).sum::<f64>();
    let models = if total(|e| e.weak) > total(|e| e.strong) {
        ModelPair {
            weak: b.clone(),
            strong: a.clone(),
        }
    } else {
        models
    };
    Ok(Pair {
        models,
        by_mean_quality: true,
    })
}

/// What [`load`] read.
#[derive(Debug)]
pub struct Loaded {
    pub examples: Vec<Example>,
    /// Prompts dropped as contaminated (a folder's contaminated_prompts.jsonl, or `contaminated`).
    pub contaminated_dropped: usize,
    /// Each request log read, and what was found in it.
    pub logs: Vec<(PathBuf, LogCounts)>,
}

/// Load every path, each with its pair (`pairs[i]` is `paths[i]`'s), and drop contaminated
/// prompts.
pub fn load(
    paths: &[PathBuf],
    pairs: &[ModelPair],
    contaminated: Option<&Path>,
) -> Result<Loaded, OfflineError> {
    let mut examples = Vec::new();
    let mut listed_prompts = HashSet::new();
    let mut logs = Vec::new();
    for (path, pair) in paths.iter().zip(pairs) {
        if is_request_log(path) {
            let (found, counts) = load_log(path)?;
            examples.extend(found);
            logs.push((path.clone(), counts));
            continue;
        }
        examples.extend(data::load(path, pair)?);
        let listed = path.join(data::CONTAMINATED_FILE);
        if path.is_dir() && listed.is_file() {
            listed_prompts.extend(data::load_contaminated(&listed)?);
        }
    }
    if let Some(path) = contaminated {
        listed_prompts.extend(data::load_contaminated(path)?);
    }
    let contaminated_dropped = data::decontaminate(&mut examples, &listed_prompts);
    Ok(Loaded {
        examples,
        contaminated_dropped,
        logs,
    })
}

/// What reading a request log found, row by row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogCounts {
    pub rows: usize,
    pub not_auto: usize,
    pub no_features: usize,
    pub no_label: usize,
    pub not_good_enough: usize,
    pub good_enough: usize,
    pub feedback: usize,
    pub feedback_unknown: usize,
}

impl fmt::Display for LogCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} logged requests: {} not routed by \"auto\" (ignored), {} without features (skipped), \
             {} without a label (skipped), {} examples ({} small model not good enough, {} good enough); \
             {} feedback rows, {} for requests not in the log",
            self.rows,
            self.not_auto,
            self.no_features,
            self.no_label,
            self.not_good_enough + self.good_enough,
            self.not_good_enough,
            self.good_enough,
            self.feedback,
            self.feedback_unknown,
        )
    }
}

/// The labelled examples of a request log (see `switchyard_router::logged` for the rules), and
/// how many rows were skipped and why.
pub fn load_log(path: &Path) -> Result<(Vec<Example>, LogCounts), OfflineError> {
    let wrap = |source| OfflineError::Log {
        path: path.to_path_buf(),
        source,
    };
    let feedback = switchyard_store::read_feedback(path).map_err(wrap)?;
    let mut counts = LogCounts {
        feedback: feedback.len(),
        ..LogCounts::default()
    };
    // Oldest first: the latest score for a request wins.
    let mut latest: HashMap<String, f64> = feedback
        .into_iter()
        .map(|f| (f.request_id, f.score))
        .collect();
    let mut rated = HashSet::new();
    let group = data::group_of(path);
    let mut examples = Vec::new();
    switchyard_store::scan_requests(path, |r| {
        counts.rows += 1;
        let feedback = latest.get(&r.id).copied();
        if feedback.is_some() {
            rated.insert(r.id.clone());
        }
        if r.requested_model != switchyard_router::AUTO {
            counts.not_auto += 1;
            return;
        }
        let features = match (r.embedding, r.cheap_features.map(<[f32; 6]>::try_from)) {
            (Some(embedding), Some(Ok(cheap))) if !embedding.is_empty() => {
                Features { embedding, cheap }
            }
            _ => {
                counts.no_features += 1;
                return;
            }
        };
        let scores: BTreeMap<String, f64> = r
            .scores
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let steps = logged::read_steps(r.cascade.as_deref());
        let row = Logged {
            reason: &r.route,
            cascade: steps.as_deref(),
            scores: &scores,
            chosen: r.chosen.as_deref(),
            answered_by: &r.model,
            status: r.status,
            feedback,
        };
        match logged::judge(&row) {
            None => counts.no_label += 1,
            Some(j) => {
                match j.label {
                    Label::NotGoodEnough => counts.not_good_enough += 1,
                    Label::GoodEnough => counts.good_enough += 1,
                }
                examples.push(j.label.example(features, group.clone()));
            }
        }
    })
    .map_err(wrap)?;
    latest.retain(|id, _| !rated.contains(id));
    counts.feedback_unknown = latest.len();
    Ok((examples, counts))
}

/// Keep (`keep = true`) or drop the examples of `groups`; every named group must exist.
pub fn select_groups(
    examples: &mut Vec<Example>,
    groups: &[String],
    keep: bool,
) -> Result<(), OfflineError> {
    let known: HashSet<String> = data::groups(examples).into_iter().collect();
    if let Some(unknown) = groups.iter().find(|g| !known.contains(*g)) {
        return Err(OfflineError::UnknownGroup {
            group: unknown.clone(),
            example: known
                .iter()
                .next()
                .map_or("mmlu_anatomy", String::as_str)
                .to_owned(),
        });
    }
    let set: HashSet<&String> = groups.iter().collect();
    examples.retain(|e| set.contains(&e.group) == keep);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_lower_scoring_column_of_the_first_file_is_the_weak_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.csv",
            "prompt,big,tiny\nQ1,True,False\nQ2,True,True\n",
        );
        let pairs = model_pairs(&[p], None).unwrap();
        let pair = &pairs[0];
        assert!(pair.by_mean_quality);
        assert_eq!(
            (pair.models.weak.as_str(), pair.models.strong.as_str()),
            ("tiny", "big")
        );
    }

    #[test]
    fn each_source_brings_its_own_pair_and_they_train_together() {
        let dir = tempfile::tempdir().unwrap();
        let mmlu = write(
            dir.path(),
            "mmlu.csv",
            "prompt,gpt,mixtral\nQ1,True,False\nQ2,True,True\n",
        );
        let replay = write(
            dir.path(),
            "labels.jsonl",
            "{\"prompt\": \"2+2?\", \"scores\": {\"large\": 1.0, \"small\": 0.0}}\n",
        );
        let paths = [mmlu, replay];
        let pairs = model_pairs(&paths, None).unwrap();
        let names: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.models.weak.as_str(), p.models.strong.as_str()))
            .collect();
        assert_eq!(names, [("mixtral", "gpt"), ("small", "large")]);
        let models: Vec<ModelPair> = pairs.into_iter().map(|p| p.models).collect();
        let loaded = load(&paths, &models, None).unwrap();
        let labels: Vec<(f64, f64)> = loaded.examples.iter().map(|e| (e.weak, e.strong)).collect();
        assert_eq!(labels, [(0.0, 1.0), (1.0, 1.0), (0.0, 1.0)]);
    }

    #[test]
    fn three_model_columns_ask_for_weak_and_strong() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "prompt,x,y,z\nQ1,True,False,True\n");
        let err = model_pairs(&[p], None).unwrap_err().to_string();
        assert!(err.contains("3 model columns (x, y, z)"), "{err}");
        assert!(err.contains("--weak and --strong"), "{err}");
    }

    #[test]
    fn a_folders_contaminated_prompts_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.csv",
            "prompt,w,s\nQ1,False,True\nleaked,True,True\n",
        );
        write(
            dir.path(),
            data::CONTAMINATED_FILE,
            "{\"prompt\": \"leaked\"}\n",
        );
        let pair = ModelPair {
            weak: "w".into(),
            strong: "s".into(),
        };
        let loaded = load(&[dir.path().to_path_buf()], &[pair], None).unwrap();
        assert_eq!(loaded.contaminated_dropped, 1);
        assert_eq!(loaded.examples.len(), 1);
        assert!(loaded.logs.is_empty());
    }

    #[test]
    fn selecting_an_unknown_group_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "mmlu_anatomy.csv",
            "prompt,w,s\nQ1,False,True\n",
        );
        let pair = ModelPair {
            weak: "w".into(),
            strong: "s".into(),
        };
        let mut examples = load(&[p], &[pair], None).unwrap().examples;
        let err = select_groups(&mut examples, &["mmlu_nope".into()], true).unwrap_err();
        assert!(err.to_string().contains("no group `mmlu_nope`"), "{err}");
        select_groups(&mut examples, &["mmlu_anatomy".into()], false).unwrap();
        assert!(examples.is_empty());
    }

    #[test]
    fn only_sqlite_files_are_request_logs() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(dir.path(), "switchyard.db", "prompt,w,s\n");
        assert!(!is_request_log(&csv));
        let db = write(dir.path(), "log", "SQLite format 3\0rest of the page");
        assert!(is_request_log(&db));
        assert!(!is_request_log(dir.path()));
    }
}
