//! Context words: the few words before a match raise or lower its score, as Presidio's
//! context enhancement does.

use super::floor_boundary;

/// How far back context words are looked for, in bytes and in words.
const WINDOW_BYTES: usize = 64;
const WINDOW_WORDS: usize = 6;

/// What a raising word adds and a lowering word takes away.
const RAISE: f32 = 0.35;
const LOWER: f32 = 0.4;

/// Words that make a number something other than personal data: an order or invoice
/// number, a version, a tracking or reference code.
const LOWERING: &[&str] = &[
    "order",
    "invoice",
    "version",
    "ver",
    "tracking",
    "ref",
    "reference",
    "isbn",
    "sku",
    "serial",
    "build",
    "release",
    "ticket",
    "receipt",
    "transaction",
    "confirmation",
    "section",
    "rfc",
    "chapter",
    "§",
];

pub(crate) const CARD: &[&str] = &[
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "american express",
    "discover",
    "cc",
    "kreditkarte",
    "carte",
    "tarjeta",
];
pub(crate) const SSN: &[&str] = &["ssn", "social security", "social sec", "ss#", "ss no"];
pub(crate) const ITIN: &[&str] = &["itin", "taxpayer", "tax id", "tin"];
pub(crate) const EIN: &[&str] = &[
    "ein",
    "fein",
    "employer identification",
    "employer id",
    "tax id",
    "federal tax",
];
pub(crate) const AADHAAR: &[&str] = &["aadhaar", "aadhar", "uidai", "uid"];
pub(crate) const STEUER_ID: &[&str] = &["steuer", "idnr", "identifikationsnummer", "tax id", "tin"];
pub(crate) const NIR: &[&str] = &[
    "nir",
    "insee",
    "sécurité sociale",
    "securite sociale",
    "sécu",
    "secu",
    "social security",
];
pub(crate) const NINO: &[&str] = &["national insurance", "nino", "ni number", "ni no"];
pub(crate) const DNI: &[&str] = &["dni", "nie", "nif", "documento", "identidad"];
pub(crate) const PAN: &[&str] = &["pan", "permanent account", "income tax"];
pub(crate) const IP: &[&str] = &["ip", "address", "host", "server", "client", "addr"];
pub(crate) const PHONE: &[&str] = &[
    "phone",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "call",
    "fax",
    "whatsapp",
    "contact",
    "sms",
    "text me",
    "ring",
    "telefon",
    "handy",
    "téléphone",
    "portable",
    "teléfono",
    "móvil",
    "movil",
];

/// Words before a national identity number, beyond each country's own ones above (none that
/// is a common word in another language: not "sin", "nie" or "ein").
pub(crate) const NATIONAL_ID: &[&str] = &[
    "national id",
    "national identity",
    "national insurance",
    "id number",
    "id no",
    "id card",
    "identity",
    "identification",
    "nino",
    "ni number",
    "ssn",
    "social security",
    "social insurance",
    "nir",
    "insee",
    "dni",
    "nif",
    "documento",
    "identidad",
    "codice fiscale",
    "aadhaar",
    "aadhar",
    "personalausweis",
    "ausweis",
];
pub(crate) const TAX_ID: &[&str] = &[
    "tax",
    "itin",
    "fein",
    "tin",
    "taxpayer",
    "employer identification",
    "steuer",
    "idnr",
    "pan",
    "vat",
    "utr",
];
pub(crate) const PASSPORT: &[&str] = &[
    "passport",
    "passeport",
    "reisepass",
    "pasaporte",
    "passaporto",
];
pub(crate) const LICENCE: &[&str] = &[
    "driver",
    "driving",
    "licence",
    "license",
    "dl",
    "führerschein",
    "permis",
    "carnet",
];
pub(crate) const BANK_ACCOUNT: &[&str] = &[
    "account",
    "acct",
    "iban",
    "bank",
    "routing",
    "sort code",
    "konto",
    "compte",
    "cuenta",
    "conto",
];

/// Whether one of `words` is among the few words before `start`.
pub(crate) fn raised(text: &str, start: usize, words: &[&str]) -> bool {
    let window = window(text, start);
    words.iter().any(|w| has_word(&window, w))
}

/// Whether a word that makes a number something other than personal data (an order, a
/// version, a tracking code) is among the few words before `start`.
pub(crate) fn lowered(text: &str, start: usize) -> bool {
    let window = window(text, start);
    LOWERING.iter().any(|w| has_word(&window, w))
}

/// `base` after the words before `start`: raised when one of `raising` is there, lowered
/// when `lowerable` and a lowering word is.
pub(super) fn score(text: &str, start: usize, base: f32, raising: &[&str], lowerable: bool) -> f32 {
    let window = window(text, start);
    let mut score = base;
    if raising.iter().any(|w| has_word(&window, w)) {
        score += RAISE;
    }
    if lowerable && LOWERING.iter().any(|w| has_word(&window, w)) {
        score -= LOWER;
    }
    score.clamp(0.0, 1.0)
}

/// The last few words before `start` in its sentence, lower-cased: a word in the sentence
/// before ("…the order failed. Whitelist 10.1.2.3") says nothing about this value.
fn window(text: &str, start: usize) -> String {
    let from = floor_boundary(text, start.saturating_sub(WINDOW_BYTES));
    let raw = text.get(from..start).unwrap_or("");
    let before = raw[sentence_start(raw)..].to_lowercase();
    let mut words = 0;
    let mut in_word = false;
    let mut cut = 0;
    for (i, c) in before.char_indices().rev() {
        if c.is_alphanumeric() {
            if !in_word {
                words += 1;
                if words > WINDOW_WORDS {
                    cut = i + c.len_utf8();
                    break;
                }
            }
            in_word = true;
        } else {
            in_word = false;
        }
    }
    before[cut..].to_string()
}

/// Where the last sentence of `text` starts: after a `.`, `!` or `?` followed by white space and
/// a capital letter ("Tel. +44…" and "SSN no. 123…" go on, their context words counting).
fn sentence_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'.' | b'!' | b'?') {
            continue;
        }
        let rest = &text[i + 1..];
        let trimmed = rest.trim_start();
        if trimmed.len() < rest.len() && trimmed.chars().next().is_some_and(char::is_uppercase) {
            start = i + 1;
        }
    }
    start
}

/// Whether `word` starts a word of `window`; a short word (under 5 bytes: "ssn", "tel")
/// must also end one, so "tel" is not found in "hotel" nor "pan" in "panel".
fn has_word(window: &str, word: &str) -> bool {
    let mut prev_alnum = false;
    window.char_indices().any(|(i, c)| {
        let starts = !prev_alnum;
        prev_alnum = c.is_alphanumeric();
        starts
            && prev_alnum
            && window[i..].starts_with(word)
            && (word.len() >= 5
                || window[i + word.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raising_word_before_the_match_adds_to_its_score() {
        let text = "my ssn is 123456789";
        assert!((score(text, 10, 0.3, SSN, true) - 0.65).abs() < 1e-6);
        assert!((score(text, 10, 0.3, CARD, true) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn a_lowering_word_takes_from_it_when_the_kind_allows() {
        let text = "Order number 4242424242424242";
        assert!((score(text, 13, 0.8, CARD, true) - 0.4).abs() < 1e-6);
        assert!((score(text, 13, 0.8, CARD, false) - 0.8).abs() < 1e-6);
    }

    #[test]
    fn words_of_the_sentence_before_do_not_count() {
        let text = "I paid but the order failed. Whitelist 153.153.146.212 now";
        assert!((score(text, 39, 0.85, &[], true) - 0.85).abs() < 1e-6);
        let text = "SSN no. 123456789";
        assert!((score(text, 8, 0.3, SSN, true) - 0.65).abs() < 1e-6);
        let text = "Order no. 4242424242424242";
        assert!((score(text, 10, 0.8, CARD, true) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn only_the_last_few_words_count() {
        let text = "ssn one two three four five six seven 123";
        let start = text.len() - 3;
        assert!((score(text, start, 0.3, SSN, true) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn raising_and_lowering_words_are_told_apart() {
        let text = "my passport is X1234567 and the order number 123456";
        assert!(raised(text, 15, PASSPORT));
        assert!(!raised(text, 15, LICENCE));
        assert!(!lowered(text, 15));
        assert!(lowered(text, text.len() - 6));
    }

    #[test]
    fn short_words_match_whole_words_only() {
        assert!(!has_word("the hotel", "tel"));
        assert!(has_word("tel.", "tel"));
        assert!(has_word("passports", "passport"));
        assert!(!has_word("the panel", "pan"));
    }
}
