//! Personal-data detection, redaction vault, streaming restorer.
//!
//! [`Detector`] finds personal data in text: rule-based detectors ([`rules`]) in one pass, and
//! optionally the Rampart token classifier ([`ner`]) for names, addresses and organisations.
//! Each [`Finding`] has a [`Kind`], a byte span and a score.

pub mod eval;
pub mod ner;
pub mod restore;
pub mod rules;
pub mod screen;
pub mod synth;
pub mod vault;

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

/// A type of personal data. Its [`Kind::label`] names placeholders (`<EMAIL_1>`), headers and
/// metrics; its snake-case name is what the config and the eval data use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    MacAddress,
    /// A URL with a user name and password in it (`https://user:pass@host`).
    UrlCredentials,
    DateOfBirth,
    Passport,
    DriversLicense,
    /// National identity or social-insurance numbers (UK NINO, FR NIR, ES DNI/NIE, IT codice
    /// fiscale, IN Aadhaar, …).
    NationalId,
    /// Tax identifiers (US ITIN/EIN, DE Steuer-ID, IN PAN, …).
    TaxId,
    CryptoWallet,
    /// API keys, tokens, private keys, passwords.
    Secret,
    Person,
    Address,
    Organization,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::Email,
        Kind::Phone,
        Kind::CreditCard,
        Kind::Iban,
        Kind::UsSsn,
        Kind::IpAddress,
        Kind::MacAddress,
        Kind::UrlCredentials,
        Kind::DateOfBirth,
        Kind::Passport,
        Kind::DriversLicense,
        Kind::NationalId,
        Kind::TaxId,
        Kind::CryptoWallet,
        Kind::Secret,
        Kind::Person,
        Kind::Address,
        Kind::Organization,
    ];

    /// The upper-case label of placeholders, headers and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::Iban => "IBAN",
            Kind::UsSsn => "US_SSN",
            Kind::IpAddress => "IP_ADDRESS",
            Kind::MacAddress => "MAC_ADDRESS",
            Kind::UrlCredentials => "URL_CREDENTIALS",
            Kind::DateOfBirth => "DATE_OF_BIRTH",
            Kind::Passport => "PASSPORT",
            Kind::DriversLicense => "DRIVERS_LICENSE",
            Kind::NationalId => "NATIONAL_ID",
            Kind::TaxId => "TAX_ID",
            Kind::CryptoWallet => "CRYPTO_WALLET",
            Kind::Secret => "SECRET",
            Kind::Person => "PERSON",
            Kind::Address => "ADDRESS",
            Kind::Organization => "ORGANIZATION",
        }
    }

    /// The snake-case name of the config and the eval data.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::UsSsn => "us_ssn",
            Kind::IpAddress => "ip_address",
            Kind::MacAddress => "mac_address",
            Kind::UrlCredentials => "url_credentials",
            Kind::DateOfBirth => "date_of_birth",
            Kind::Passport => "passport",
            Kind::DriversLicense => "drivers_license",
            Kind::NationalId => "national_id",
            Kind::TaxId => "tax_id",
            Kind::CryptoWallet => "crypto_wallet",
            Kind::Secret => "secret",
            Kind::Person => "person",
            Kind::Address => "address",
            Kind::Organization => "organization",
        }
    }

    pub fn from_label(label: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.label() == label)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which detector found a value; on overlapping findings a checksum beats a pattern, and a
/// pattern beats the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Model,
    Pattern,
    Checksum,
}

/// One value of personal data in a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// Byte offsets into the scanned text, on `char` boundaries.
    pub start: usize,
    pub end: usize,
    /// How sure the detector is, in [0, 1], after context words.
    pub score: f32,
    pub evidence: Evidence,
}

impl Finding {
    pub fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// How a [`Detector`] is built.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Regions (ISO 3166, e.g. "US", "GB") phone numbers without a country code are read in.
    pub regions: Vec<String>,
    /// The Rampart model's folder; `None` runs the rules alone.
    pub ner: Option<PathBuf>,
    /// Findings scoring below this are dropped.
    pub min_score: f32,
    /// How many texts' model findings to remember: a conversation resends its earlier turns
    /// and its system prompt with every request, and the model is the costly part.
    pub remember: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            regions: vec!["US".into(), "GB".into()],
            ner: None,
            min_score: 0.5,
            remember: 4096,
        }
    }
}

/// Finds personal data: the rules, then the model, merged into non-overlapping findings.
pub struct Detector {
    rules: rules::Rules,
    ner: Option<ner::Ner>,
    min_score: f32,
    remembered: Option<Remembered>,
}

/// The model's findings by the text's sha256.
type Remembered = Mutex<LruCache<[u8; 32], Arc<Vec<Finding>>>>;

impl Detector {
    pub fn new(config: &DetectorConfig) -> Result<Detector, GuardError> {
        let rules = rules::Rules::new(&config.regions)?;
        let ner = config.ner.as_deref().map(ner::Ner::load).transpose()?;
        let remembered = NonZeroUsize::new(config.remember)
            .filter(|_| ner.is_some())
            .map(|n| Mutex::new(LruCache::new(n)));
        Ok(Detector {
            rules,
            ner,
            min_score: config.min_score,
            remembered,
        })
    }

    pub fn has_model(&self) -> bool {
        self.ner.is_some()
    }

    /// The findings in `text`: sorted by start, none overlapping, none below the minimum
    /// score.
    pub fn scan(&self, text: &str) -> Result<Vec<Finding>, GuardError> {
        let mut found = self.rules.find(text);
        if let Some(ner) = &self.ner {
            found.extend(self.model_findings(ner, text)?.iter().cloned());
        }
        trim_around_organizations(text, &mut found);
        found.retain(|f| f.score >= self.min_score && f.start < f.end);
        Ok(resolve(found))
    }
}

/// A model finding (a name, an address) that runs into an organisation name the rules found
/// keeps its longer part outside the name, trimmed of spaces and punctuation, instead of losing
/// the overlap whole to the pattern ("Acme Inc.\n\n12 High St" stays an address after the
/// name; a model "person" inside the name is dropped).
fn trim_around_organizations(text: &str, found: &mut [Finding]) {
    let orgs: Vec<(usize, usize)> = found
        .iter()
        .filter(|f| f.kind == Kind::Organization && f.evidence == Evidence::Pattern)
        .map(|f| (f.start, f.end))
        .collect();
    if orgs.is_empty() {
        return;
    }
    for f in found
        .iter_mut()
        .filter(|f| f.evidence == Evidence::Model && f.kind != Kind::Organization)
    {
        for &(s, e) in &orgs {
            if f.start >= e || s >= f.end {
                continue;
            }
            let left = (f.start, s.max(f.start));
            let right = (e.min(f.end), f.end);
            let (a, b) = if left.1 - left.0 >= right.1 - right.0 {
                left
            } else {
                right
            };
            let part = text.get(a..b).unwrap_or("");
            let kept = part.trim_start_matches(|c: char| !c.is_alphanumeric());
            let lead = part.len() - kept.len();
            let kept = kept.trim_end_matches(|c: char| !c.is_alphanumeric());
            f.start = a + lead;
            f.end = f.start + kept.len();
        }
    }
}

impl Detector {
    /// The model's findings in `text`, remembered by its hash.
    fn model_findings(&self, ner: &ner::Ner, text: &str) -> Result<Arc<Vec<Finding>>, GuardError> {
        let Some(remembered) = &self.remembered else {
            return Ok(Arc::new(ner.find(text)?));
        };
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        // A panic elsewhere cannot leave the cache half-written: keep using it.
        let seen = remembered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(found) = seen {
            return Ok(found);
        }
        let found = Arc::new(ner.find(text)?);
        remembered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, found.clone());
        Ok(found)
    }
}

/// Keeps the strongest of overlapping findings: stronger evidence first (a checksum beats a
/// pattern beats the model, which splits card numbers into phone fragments), then the higher
/// score, then the longer span.
fn resolve(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        b.evidence
            .cmp(&a.evidence)
            .then(b.score.total_cmp(&a.score))
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        if !kept.iter().any(|k| k.overlaps(&f)) {
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{0}")]
    Setup(String),
    #[error("the personal-data model failed on a text: {0}")]
    Model(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_finding_running_into_an_organisation_keeps_its_part_outside_it() {
        let text = "Acme Inc.\n\n12 High St, Leeds";
        let f = |kind, start, end, evidence| Finding {
            kind,
            start,
            end,
            score: 0.9,
            evidence,
        };
        let mut found = vec![
            f(Kind::Organization, 0, 9, Evidence::Pattern),
            f(Kind::Address, 5, text.len(), Evidence::Model),
            f(Kind::Person, 0, 4, Evidence::Model),
        ];
        trim_around_organizations(text, &mut found);
        found.retain(|f| f.start < f.end);
        let spans: Vec<(Kind, &str)> = resolve(found)
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            spans,
            [
                (Kind::Organization, "Acme Inc."),
                (Kind::Address, "12 High St, Leeds")
            ]
        );
    }

    fn with_model(remember: usize) -> Detector {
        let dir = switchyard_models::find("rampart").unwrap_or_else(|e| panic!("{e}"));
        Detector::new(&DetectorConfig {
            ner: Some(dir),
            remember,
            ..DetectorConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn remembered(d: &Detector) -> usize {
        d.remembered
            .as_ref()
            .map_or(0, |m| m.lock().map_or(0, |c| c.len()))
    }

    #[test]
    fn a_text_seen_before_gets_the_models_findings_it_got_then() {
        let d = with_model(2);
        let text = "Margaret Thompson wrote to jane@example.com.";
        let first = d.scan(text).unwrap();
        assert!(first.iter().any(|f| f.kind == Kind::Person), "{first:?}");
        assert_eq!(d.scan(text).unwrap(), first);
        assert_eq!(remembered(&d), 1);
        for other in ["Ask Peter Jones.", "Ask Mary Smith.", "Ask Tom Brown."] {
            d.scan(other).unwrap();
        }
        assert_eq!(remembered(&d), 2, "only the most recent texts are kept");
        assert_eq!(remembered(&with_model(0)), 0);
    }
}
