//! Values only a word before them makes personal data: dates of birth, passport numbers,
//! driver's licence numbers. The trigger pass finds the word; the value is looked for in the
//! few bytes after it.

use regex::Regex;

use super::{finding, floor_boundary};
use crate::{Evidence, Finding, GuardError, Kind};

/// How far after its word a value may start, and how far it may reach.
const START_WITHIN: usize = 32;
const WINDOW: usize = 72;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Anchor {
    Birth,
    Passport,
    License,
}

/// The anchor words, matched ASCII case-insensitively at the start of a word.
pub(super) const ANCHORS: &[(&str, Anchor)] = &[
    ("born", Anchor::Birth),
    ("dob", Anchor::Birth),
    ("d.o.b", Anchor::Birth),
    ("date of birth", Anchor::Birth),
    ("birth date", Anchor::Birth),
    ("birthdate", Anchor::Birth),
    ("birthday", Anchor::Birth),
    ("date de naissance", Anchor::Birth),
    ("né le", Anchor::Birth),
    ("née le", Anchor::Birth),
    ("né", Anchor::Birth),
    ("née", Anchor::Birth),
    ("geboren", Anchor::Birth),
    ("geburtsdatum", Anchor::Birth),
    ("geb.", Anchor::Birth),
    ("fecha de nacimiento", Anchor::Birth),
    ("nacido", Anchor::Birth),
    ("nacida", Anchor::Birth),
    ("data di nascita", Anchor::Birth),
    ("nato il", Anchor::Birth),
    ("nata il", Anchor::Birth),
    ("passport", Anchor::Passport),
    ("passeport", Anchor::Passport),
    ("reisepass", Anchor::Passport),
    ("pasaporte", Anchor::Passport),
    ("passaporto", Anchor::Passport),
    ("driver's license", Anchor::License),
    ("driver's licence", Anchor::License),
    ("drivers license", Anchor::License),
    ("driver license", Anchor::License),
    ("driving licence", Anchor::License),
    ("driving license", Anchor::License),
    ("licence", Anchor::License),
    ("license", Anchor::License),
    ("dl", Anchor::License),
    ("führerschein", Anchor::License),
    ("permis de conduire", Anchor::License),
    ("carnet de conducir", Anchor::License),
];

const MONTHS: &str = "january|february|march|april|may|june|july|august|september|october|\
november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|januar|februar|märz|maerz|\
mai|juni|juli|oktober|dezember|janvier|février|fevrier|mars|avril|juin|juillet|août|aout|\
septembre|octobre|novembre|décembre|decembre|enero|febrero|marzo|abril|mayo|junio|julio|agosto|\
septiembre|setiembre|octubre|noviembre|diciembre|gennaio|febbraio|aprile|maggio|giugno|luglio|\
settembre|ottobre|dicembre";

pub(super) struct Anchors {
    date: Regex,
    passport: Regex,
}

impl Anchors {
    pub(super) fn new() -> Result<Anchors, GuardError> {
        let date = format!(
            r"(?i)\b(?:\d{{1,2}}[./-]\d{{1,2}}[./-](?:\d{{4}}|\d{{2}})|\d{{4}}[./-]\d{{1,2}}[./-]\d{{1,2}}|\d{{1,2}}(?:st|nd|rd|th|er)?\.?\s+(?:de\s+|of\s+)?(?:{MONTHS})\.?,?\s+(?:de\s+)?\d{{4}}|(?:{MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})\b"
        );
        let passport = r"^(?:[0-9]{9}|[A-Z][0-9]{7,8}|[A-Z]{2}[0-9]{7}|[0-9]{2}[A-Z]{2}[0-9]{5}|[CFGHJK][CFGHJKLMNPRTVWXYZ0-9]{8})$";
        let compile = |p: &str| Regex::new(p).map_err(|e| GuardError::Setup(format!("{p}: {e}")));
        Ok(Anchors {
            date: compile(&date)?,
            passport: compile(passport)?,
        })
    }

    /// The value after the anchor word `text[s..e]`, if one is there.
    pub(super) fn after(
        &self,
        anchor: Anchor,
        text: &str,
        s: usize,
        e: usize,
        out: &mut Vec<Finding>,
    ) {
        let b = text.as_bytes();
        if s > 0 && b[s - 1].is_ascii_alphanumeric() {
            return;
        }
        // "borne", "dlrow": the word goes on. Birth words take a plural or a colon after.
        if e < b.len() && b[e].is_ascii_alphabetic() && !(anchor == Anchor::Birth && b[e] == b's') {
            return;
        }
        let Some(window) = text.get(e..floor_boundary(text, e + WINDOW)) else {
            return;
        };
        match anchor {
            Anchor::Birth => {
                let date = self.date.find(window);
                if let Some(m) =
                    date.filter(|m| m.start() <= START_WITHIN && plausible_date(m.as_str()))
                {
                    out.push(finding(
                        Kind::DateOfBirth,
                        e + m.start(),
                        e + m.end(),
                        0.9,
                        Evidence::Pattern,
                    ));
                }
            }
            Anchor::Passport => {
                let token = first_token_with_digits(window, false);
                if let Some((ts, te)) =
                    token.filter(|&(ts, te)| self.passport.is_match(&window[ts..te]))
                {
                    out.push(finding(
                        Kind::Passport,
                        e + ts,
                        e + te,
                        0.85,
                        Evidence::Pattern,
                    ));
                }
            }
            Anchor::License => {
                if let Some((ts, te)) = first_token_with_digits(window, true) {
                    let token = &window.as_bytes()[ts..te];
                    let alnum = token.iter().filter(|c| c.is_ascii_alphanumeric()).count();
                    let digits = token.iter().filter(|c| c.is_ascii_digit()).count();
                    if (5..=20).contains(&alnum)
                        && digits >= 4
                        && !token.iter().any(u8::is_ascii_lowercase)
                    {
                        out.push(finding(
                            Kind::DriversLicense,
                            e + ts,
                            e + te,
                            0.8,
                            Evidence::Pattern,
                        ));
                    }
                }
            }
        }
    }
}

/// The first word of `window` that has a digit, within [`START_WITHIN`] bytes; with
/// `dashes`, words joined by single dashes count as one ("D123-4567-8901").
fn first_token_with_digits(window: &str, dashes: bool) -> Option<(usize, usize)> {
    let b = window.as_bytes();
    let mut i = 0;
    while i < b.len() && i <= START_WITHIN {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len()
            && (b[i].is_ascii_alphanumeric()
                || (dashes && b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)))
        {
            i += 1;
        }
        if b[s..i].iter().any(u8::is_ascii_digit) {
            return Some((s, i));
        }
    }
    None
}

/// Numeric dates need a day up to 31 and a month up to 12 (either order).
fn plausible_date(d: &str) -> bool {
    let parts: Vec<u32> = d
        .split(['.', '/', '-'])
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    match parts[..] {
        [y, m, day] if y > 31 => (1..=12).contains(&m) && (1..=31).contains(&day),
        [a, b, _] => (1..=31).contains(&a) && (1..=31).contains(&b) && (a <= 12 || b <= 12),
        _ => true,
    }
}
