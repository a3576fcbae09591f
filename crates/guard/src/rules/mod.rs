//! Rule-based detectors: patterns, checksums and context words, in one pass over the text.
//!
//! Two scans cover every detector. [`runs`] walks the alphanumeric runs once: digit groups
//! joined by separators go to the numeric validators (cards, SSNs, national and tax ids, IPv4,
//! phones), mixed words to the id and wallet validators, hex runs to IPv6 and MAC. One
//! Aho-Corasick pass finds the trigger literals (`@`, `://`, secret prefixes, `-----BEGIN`,
//! `eyJ`, secret keywords, passport/licence/birth words); regexes run only on the short
//! windows those point at. A third walk over the capitalised words finds organisation names
//! by their legal form or organisation word ([`organization`]).

mod anchors;
pub(crate) mod checksum;
pub(crate) mod context;
mod network;
mod numbers;
mod organization;
mod phone;
mod runs;
mod secrets;
mod words;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use crate::{Evidence, Finding, GuardError, Kind};

/// What a trigger literal found by the Aho-Corasick pass starts.
#[derive(Debug, Clone, Copy)]
enum Action {
    Email,
    UrlCredentials,
    PrivateKey,
    Jwt,
    /// A provider's key prefix: the index of its rule in [`secrets::Secrets`].
    Provider(usize),
    /// A word a secret value follows (`password = …`, `"token": "…"`).
    Keyword(secrets::Keyword),
    Bearer,
    Anchor(anchors::Anchor),
}

/// Every rule-based detector, compiled once.
pub struct Rules {
    phones: phone::Phones,
    triggers: AhoCorasick,
    /// Per trigger pattern: its action, and whether it must match case-sensitively (the
    /// automaton itself is ASCII case-insensitive, so one pass serves both).
    actions: Vec<(Action, bool)>,
    literals: Vec<String>,
    secrets: secrets::Secrets,
    anchors: anchors::Anchors,
}

impl Rules {
    /// `regions`: ISO 3166 region codes (e.g. "US", "GB") phone numbers without a country code
    /// are read in, in order.
    pub fn new(regions: &[String]) -> Result<Rules, GuardError> {
        let phones = phone::Phones::new(regions)?;
        let secrets = secrets::Secrets::new()?;
        let anchors = anchors::Anchors::new()?;
        let mut literals: Vec<String> = Vec::new();
        let mut actions = Vec::new();
        let mut add = |lit: &str, action: Action, exact: bool| {
            literals.push(lit.to_string());
            actions.push((action, exact));
        };
        add("@", Action::Email, true);
        add("://", Action::UrlCredentials, true);
        add("-----BEGIN", Action::PrivateKey, true);
        add("eyJ", Action::Jwt, true);
        add("bearer ", Action::Bearer, false);
        for (i, lit) in secrets.literals() {
            add(lit, Action::Provider(i), true);
        }
        for &(lit, kw) in secrets::KEYWORDS {
            add(lit, Action::Keyword(kw), false);
        }
        for &(lit, anchor) in anchors::ANCHORS {
            add(lit, Action::Anchor(anchor), false);
        }
        let triggers = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(|e| GuardError::Setup(format!("rule triggers: {e}")))?;
        Ok(Rules {
            phones,
            triggers,
            actions,
            literals,
            secrets,
            anchors,
        })
    }

    /// The findings in `text`, in order of start; overlapping findings are allowed (the
    /// [`crate::Detector`] resolves them).
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        runs::scan(self, text, &mut out);
        self.scan_triggers(text, &mut out);
        organization::scan(text, &mut out);
        out.sort_by(|a, b| {
            (a.start, a.end, a.kind)
                .cmp(&(b.start, b.end, b.kind))
                .then(b.evidence.cmp(&a.evidence))
                .then(b.score.total_cmp(&a.score))
        });
        // Two triggers can reach one value ("née le" and "née", "Bearer" and the JWT):
        // the strongest of the same kind and span stays.
        out.dedup_by(|later, kept| {
            (later.start, later.end, later.kind) == (kept.start, kept.end, kept.kind)
        });
        out
    }

    fn scan_triggers(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Keyword values already taken: two keywords ("api_key", "key") reach the same value.
        let mut keyword_end = 0;
        for m in self.triggers.find_overlapping_iter(text) {
            let Some(&(action, exact)) = self.actions.get(m.pattern().as_usize()) else {
                continue;
            };
            let (s, e) = (m.start(), m.end());
            if exact
                && self
                    .literals
                    .get(m.pattern().as_usize())
                    .map(String::as_bytes)
                    != Some(&bytes[s..e])
            {
                continue;
            }
            match action {
                Action::Email => out.extend(network::email(text, s)),
                Action::UrlCredentials => out.extend(network::url_credentials(text, s)),
                Action::PrivateKey => out.extend(secrets::private_key(text, s)),
                Action::Jwt => out.extend(secrets::jwt(text, s)),
                Action::Provider(i) => out.extend(self.secrets.provider(i, text, s)),
                Action::Bearer | Action::Keyword(_) if s >= keyword_end => {
                    let value = match action {
                        Action::Keyword(kw) => secrets::keyword_value(text, e, kw),
                        _ => secrets::bearer(text, e),
                    };
                    if let Some(f) = value {
                        keyword_end = f.end;
                        out.push(f);
                    }
                }
                Action::Bearer | Action::Keyword(_) => {}
                Action::Anchor(anchor) => self.anchors.after(anchor, text, s, e, out),
            }
        }
    }
}

/// A finding, its score clamped into [0, 1].
fn finding(kind: Kind, start: usize, end: usize, score: f32, evidence: Evidence) -> Finding {
    Finding {
        kind,
        start,
        end,
        score: score.clamp(0.0, 1.0),
        evidence,
    }
}

/// The largest char boundary at or below `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary at or above `i`.
fn ceil_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
