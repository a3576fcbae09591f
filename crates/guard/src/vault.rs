//! The per-request vault: each distinct value becomes a typed placeholder (`<EMAIL_1>`), the
//! same value the same placeholder in every text of the request, and placeholders in an answer
//! are turned back into their values.
//!
//! A vault lives as long as one request; it is never logged and never sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::{Finding, Kind};

/// A placeholder as models write it back: `<EMAIL_1>`, and also `email_1`, `<Email_1`,
/// `EMAIL_1>`: the label and the number are what count. The label must start a word, so
/// `MY_EMAIL_1` is no placeholder.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    let labels: Vec<&str> = Kind::ALL.iter().map(|k| k.label()).collect();
    let pattern = format!(r"(?i)<?\b({})_(\d{{1,6}})\b>?", labels.join("|"));
    Regex::new(&pattern).expect("the placeholder pattern is a valid regex")
});

/// Placeholders and the values they stand for, for one request.
#[derive(Debug, Default)]
pub struct Vault {
    /// (kind, value) → the placeholder's number.
    numbers: HashMap<(Kind, String), u32>,
    /// (kind, number) → the value.
    values: HashMap<(Kind, u32), String>,
    /// The next number to give each kind.
    next: BTreeMap<Kind, u32>,
    /// Placeholders the request's own text already holds: never given out, so restoring
    /// cannot turn a client's literal `<PERSON_1>` into someone's name.
    taken: HashSet<(Kind, u32)>,
}

impl Vault {
    /// A vault for a request whose texts are `texts`: placeholders already in them are never
    /// handed out.
    pub fn for_texts<'t>(texts: impl IntoIterator<Item = &'t str>) -> Vault {
        let mut vault = Vault::default();
        for text in texts {
            vault.keep_out_placeholders_in(text);
        }
        vault
    }

    /// Marks the placeholders `text` already holds as never to be handed out.
    pub fn keep_out_placeholders_in(&mut self, text: &str) {
        for (kind, number, _) in placeholders(text) {
            self.taken.insert((kind, number));
        }
    }

    /// `text` with each finding replaced by its value's placeholder. `findings` must be sorted
    /// and must not overlap (as [`crate::Detector::scan`] returns them).
    pub fn redact(&mut self, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in findings {
            let (Some(before), Some(value)) = (text.get(at..f.start), text.get(f.start..f.end))
            else {
                continue;
            };
            out.push_str(before);
            let number = self.number(f.kind, value);
            out.push_str(&placeholder(f.kind, number));
            at = f.end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        out
    }

    /// The placeholder number of `value`, giving it the next free one when it is new.
    fn number(&mut self, kind: Kind, value: &str) -> u32 {
        if let Some(&n) = self.numbers.get(&(kind, value.to_owned())) {
            return n;
        }
        let next = self.next.entry(kind).or_insert(1);
        while self.taken.contains(&(kind, *next)) {
            *next += 1;
        }
        let n = *next;
        *next += 1;
        self.numbers.insert((kind, value.to_owned()), n);
        self.values.insert((kind, n), value.to_owned());
        n
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many distinct values of each kind were redacted.
    pub fn counts(&self) -> BTreeMap<Kind, usize> {
        let mut counts = BTreeMap::new();
        for (kind, _) in self.values.keys() {
            *counts.entry(*kind).or_default() += 1;
        }
        counts
    }

    /// The kinds with values in the vault.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.next.keys().copied()
    }

    /// The value a placeholder stands for, when this vault gave it out.
    pub fn value(&self, kind: Kind, number: u32) -> Option<&str> {
        self.values.get(&(kind, number)).map(String::as_str)
    }

    /// `text` with every placeholder this vault gave out replaced by its value; any other
    /// placeholder-like text is left as it is.
    pub fn restore(&self, text: &str, escape: Escape) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (kind, number, span) in placeholders(text) {
            let Some(value) = self.value(kind, number) else {
                continue;
            };
            out.push_str(&text[at..span.start]);
            escape.push(&mut out, value);
            at = span.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// How a restored value is written into the text it goes back into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Plain text (message content).
    None,
    /// Inside a JSON string (tool-call arguments): quotes and backslashes escaped.
    Json,
}

impl Escape {
    fn push(self, out: &mut String, value: &str) {
        match self {
            Escape::None => out.push_str(value),
            Escape::Json => {
                let quoted = serde_json::to_string(value).unwrap_or_default();
                out.push_str(
                    quoted
                        .get(1..quoted.len().saturating_sub(1))
                        .unwrap_or(value),
                );
            }
        }
    }
}

/// The canonical placeholder for a kind's `number`th value.
pub fn placeholder(kind: Kind, number: u32) -> String {
    format!("<{}_{number}>", kind.label())
}

/// Every placeholder-like run in `text`: its kind, number and byte span.
fn placeholders(text: &str) -> impl Iterator<Item = (Kind, u32, std::ops::Range<usize>)> + '_ {
    PLACEHOLDER.captures_iter(text).filter_map(|c| {
        let whole = c.get(0)?;
        let kind = Kind::from_label(&c.get(1)?.as_str().to_ascii_uppercase())?;
        let number = c.get(2)?.as_str().parse().ok()?;
        Some((kind, number, whole.range()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Evidence;

    fn finding(kind: Kind, text: &str, value: &str) -> Finding {
        let start = text.find(value).unwrap();
        Finding {
            kind,
            start,
            end: start + value.len(),
            score: 1.0,
            evidence: Evidence::Pattern,
        }
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder_in_every_text() {
        let mut vault = Vault::default();
        let a = "Mail ann@example.com or bob@example.com";
        let b = "I said ann@example.com";
        let ra = vault.redact(
            a,
            &[
                finding(Kind::Email, a, "ann@example.com"),
                finding(Kind::Email, a, "bob@example.com"),
            ],
        );
        let rb = vault.redact(b, &[finding(Kind::Email, b, "ann@example.com")]);
        assert_eq!(ra, "Mail <EMAIL_1> or <EMAIL_2>");
        assert_eq!(rb, "I said <EMAIL_1>");
        assert_eq!(vault.counts().get(&Kind::Email), Some(&2));
    }

    #[test]
    fn kinds_are_numbered_apart() {
        let mut vault = Vault::default();
        let t = "Ann Lee, ann@example.com";
        let r = vault.redact(
            t,
            &[
                finding(Kind::Person, t, "Ann Lee"),
                finding(Kind::Email, t, "ann@example.com"),
            ],
        );
        assert_eq!(r, "<PERSON_1>, <EMAIL_1>");
    }

    #[test]
    fn placeholders_already_in_the_request_are_never_given_out() {
        let earlier = "Earlier you wrote <PERSON_1> and PERSON_2.";
        let now = "Call Ann Lee.";
        let mut vault = Vault::for_texts([earlier, now]);
        let r = vault.redact(now, &[finding(Kind::Person, now, "Ann Lee")]);
        assert_eq!(r, "Call <PERSON_3>.");
        assert_eq!(
            vault.restore(earlier, Escape::None),
            earlier,
            "the client's own placeholders are text, not values"
        );
    }

    #[test]
    fn restoring_tolerates_case_and_missing_brackets_but_not_other_numbers() {
        let mut vault = Vault::default();
        let t = "ann@example.com";
        vault.redact(t, &[finding(Kind::Email, t, t)]);
        for (answer, restored) in [
            ("Write to <EMAIL_1>.", "Write to ann@example.com."),
            ("Write to EMAIL_1.", "Write to ann@example.com."),
            ("Write to <email_1>", "Write to ann@example.com"),
            ("Write to <Email_1 now", "Write to ann@example.com now"),
            ("Write to <EMAIL_12>.", "Write to <EMAIL_12>."),
            ("Write to <EMAIL_2>.", "Write to <EMAIL_2>."),
            ("Write to <PHONE_1>.", "Write to <PHONE_1>."),
            ("Write to MY_EMAIL_1.", "Write to MY_EMAIL_1."),
        ] {
            assert_eq!(vault.restore(answer, Escape::None), restored, "{answer}");
        }
    }

    #[test]
    fn values_restored_into_json_strings_are_escaped() {
        let mut vault = Vault::default();
        let t = r#"Ann "the boss" Lee"#;
        vault.redact(t, &[finding(Kind::Person, t, t)]);
        let args = r#"{"to": "<PERSON_1>"}"#;
        let restored = vault.restore(args, Escape::Json);
        let parsed: serde_json::Value = serde_json::from_str(&restored).unwrap();
        assert_eq!(parsed["to"], t);
    }

    #[test]
    fn findings_off_char_boundaries_are_skipped_not_panicked_on() {
        let mut vault = Vault::default();
        let t = "é ann@example.com";
        let bad = Finding {
            kind: Kind::Email,
            start: 1,
            end: 3,
            score: 1.0,
            evidence: Evidence::Pattern,
        };
        assert_eq!(vault.redact(t, &[bad]), t);
    }
}
