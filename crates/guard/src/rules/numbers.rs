//! Numbers: a cluster of digit groups joined by separators ("4242 4242 4242 4242",
//! "123-45-6789", "+1 (415) 555-2671", "192.168.0.1") is tried as every run of its groups
//! that shares one separator, against each numeric shape.

use std::net::Ipv4Addr;

use super::{checksum, context, finding, Rules};
use crate::{Evidence, Finding, Kind};

/// The most digits a value read from a cluster has (a 19-digit card).
const MAX_DIGITS: usize = 19;

/// Checks the cluster `groups` (byte spans of digit runs) and empties it.
pub(super) fn flush(
    rules: &Rules,
    text: &str,
    groups: &mut Vec<(usize, usize)>,
    out: &mut Vec<Finding>,
) {
    if !groups.is_empty() {
        check(rules, text, groups, out);
        groups.clear();
    }
}

/// One run of a cluster's groups with one separator between them.
struct Value<'a> {
    start: usize,
    end: usize,
    digits: &'a [u8],
    lens: &'a [usize],
    /// `None` for a single group.
    sep: Option<&'a [u8]>,
    /// No group joins it on either side by the same separator (so "1.2.3.4" is not read
    /// out of "1.2.3.4.5", nor an SSN out of "123-45-6789-0").
    maximal: bool,
}

fn check(rules: &Rules, text: &str, groups: &[(usize, usize)], out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let (first, last) = (groups[0].0, groups[groups.len() - 1].1);
    let mut start = first;
    if start > 0 && b[start - 1] == b'(' {
        start -= 1;
    }
    // A cluster led by `+` is an international phone number: its first groups are a country
    // code and a number, never a card or an id ("+49 151 87689802" passes Luhn as a Visa).
    let plus = start > 0 && b[start - 1] == b'+';
    if plus {
        start -= 1;
    }
    // Digits glued to a word ("ORD-123456", "/users/123456789", a UUID's last group, the
    // local part of an e-mail) are part of an identifier, not a number of their own.
    let glue = |c: u8| matches!(c, b'-' | b'_' | b'.' | b'/' | b'@');
    if start >= 2 && glue(b[start - 1]) && b[start - 2].is_ascii_alphanumeric() {
        return;
    }
    if last < b.len() && (b[last] == b'@' || b[last] == b'_') {
        return;
    }
    if last + 1 < b.len()
        && glue(b[last])
        && b[last + 1].is_ascii_alphabetic()
        && !label_word(b, last + 1)
    {
        // Only "12345678-Z", a DNI with its letter, is glued to a letter and still a value.
        if let [(s, e)] = groups {
            if e - s == 8 {
                dni_letter(text, *s, *e, out);
            }
        }
        return;
    }
    let before = out.len();
    let sep_at = |j: usize| &b[groups[j].1..groups[j + 1].0];
    let mut digits = [0u8; MAX_DIGITS];
    let mut lens = [0usize; 8];
    for a in usize::from(plus)..groups.len() {
        let mut sep: Option<&[u8]> = None;
        let mut nd = 0;
        for (ng, z) in (a..groups.len()).enumerate() {
            if z > a {
                let s = sep_at(z - 1);
                match sep {
                    None => sep = Some(s),
                    Some(p) if p != s => break,
                    Some(_) => {}
                }
            }
            let (gs, ge) = groups[z];
            if nd + (ge - gs) > MAX_DIGITS || ng == lens.len() {
                break;
            }
            for &c in &b[gs..ge] {
                digits[nd] = c - b'0';
                nd += 1;
            }
            lens[ng] = ge - gs;
            let joined = |j: usize| match sep {
                Some(s) => sep_at(j) == s,
                None => matches!(sep_at(j), b"-" | b"." | b"/"),
            };
            let maximal = (a == 0 || !joined(a - 1)) && (z + 1 == groups.len() || !joined(z));
            let value = Value {
                start: groups[a].0,
                end: ge,
                digits: &digits[..nd],
                lens: &lens[..=ng],
                sep,
                maximal,
            };
            shapes(text, &value, out);
        }
    }
    // The phone matcher is the costliest check: skipped when a strong value (a card, an
    // address, an SSN) already covers the whole cluster.
    let covered = out[before..]
        .iter()
        .any(|f| f.start <= first && f.end >= last && f.score >= 0.8);
    if covered {
        return;
    }
    // A date ("2024-05-01 12") is no phone number; what follows it may be one.
    let phone_from = if date_at(b, groups) { 3 } else { 0 };
    if let Some(&(from, _)) = groups.get(phone_from) {
        let total: usize = groups[phone_from..].iter().map(|(s, e)| e - s).sum();
        // No region's numbers run under 7 or over 17 digits.
        if (7..=17).contains(&total) {
            let from = if phone_from == 0 { start } else { from };
            rules.phones.find(text, from, last, out);
        }
    }
}

/// Whether the letters at `at` are a word that labels the number before it ("-Office",
/// "-Fax", "/home"): three or more letters ending the token, not the next part of an
/// identifier ("-abcd-12", "-d276…", a DNI's one letter).
fn label_word(b: &[u8], at: usize) -> bool {
    let mut e = at;
    while e < b.len() && b[e].is_ascii_alphabetic() {
        e += 1;
    }
    let ends = match b.get(e) {
        None => true,
        Some(&c) if c.is_ascii_digit() || c == b'_' => false,
        Some(b'-' | b'.' | b'/' | b'@' | b':') => {
            !b.get(e + 1).is_some_and(u8::is_ascii_alphanumeric)
        }
        Some(_) => true,
    };
    e - at >= 3 && ends
}

fn shapes(text: &str, v: &Value, out: &mut Vec<Finding>) {
    let d = v.digits;
    let n = d.len();
    let grouped = v.sep.is_some();
    let sep = v.sep.unwrap_or(b"");
    let push = |out: &mut Vec<Finding>, kind, base, raising, evidence| {
        let score = context::score(text, v.start, base, raising, true);
        out.push(finding(kind, v.start, v.end, score, evidence));
    };
    if (13..=19).contains(&n)
        && matches!(sep, b"" | b" " | b"-")
        && card_issuer(d)
        && checksum::luhn(d)
    {
        let base = if grouped { 0.95 } else { 0.8 };
        push(
            out,
            Kind::CreditCard,
            base,
            context::CARD,
            Evidence::Checksum,
        );
    }
    if !v.maximal {
        return;
    }
    let dashed = sep == b"-";
    let spaced = sep == b" ";
    if (v.lens == [3, 2, 4] && (dashed || spaced)) || v.lens == [9] {
        let area = checksum::number(&d[..3]);
        let group = checksum::number(&d[3..5]);
        let serial = checksum::number(&d[5..]);
        let base = match (dashed, spaced) {
            (true, _) => 0.85,
            (_, true) => 0.7,
            _ => 0.3,
        };
        if area >= 900 {
            if matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99) {
                push(out, Kind::TaxId, base, context::ITIN, Evidence::Pattern);
            }
        } else if area != 0 && area != 666 && group != 0 && serial != 0 {
            push(out, Kind::UsSsn, base, context::SSN, Evidence::Pattern);
        }
    }
    if v.lens == [2, 7] && dashed && ein_prefix(checksum::number(&d[..2])) {
        push(out, Kind::TaxId, 0.4, context::EIN, Evidence::Pattern);
    }
    if ((v.lens == [4, 4, 4] && (dashed || spaced)) || v.lens == [12])
        && d[0] >= 2
        && checksum::verhoeff(d)
    {
        let base = if grouped { 0.8 } else { 0.45 };
        push(
            out,
            Kind::NationalId,
            base,
            context::AADHAAR,
            Evidence::Checksum,
        );
    }
    if (v.lens == [11] || (v.lens == [2, 3, 3, 3] && matches!(sep, b" " | b"/"))) && steuer_id(d) {
        let base = if grouped { 0.6 } else { 0.45 };
        push(
            out,
            Kind::TaxId,
            base,
            context::STEUER_ID,
            Evidence::Checksum,
        );
    }
    if n == 15
        && (v.lens == [15] || (spaced && matches!(v.lens, [13, 2] | [1, 2, 2, 2, 3, 3, 2])))
        && nir(d)
    {
        let base = if grouped { 0.9 } else { 0.7 };
        push(
            out,
            Kind::NationalId,
            base,
            context::NIR,
            Evidence::Checksum,
        );
    }
    if v.lens.len() == 4
        && sep == b"."
        && v.lens.iter().all(|&l| l <= 3)
        && text
            .get(v.start..v.end)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            // Loopback, "any" and broadcast addresses name no one.
            .is_some_and(|ip| !ip.is_loopback() && !ip.is_unspecified() && !ip.is_broadcast())
    {
        push(out, Kind::IpAddress, 0.85, context::IP, Evidence::Pattern);
    }
    if v.lens == [2, 2, 2] && spaced {
        nino_spaced(text, v, out);
    }
    if v.lens == [8] {
        dni_letter(text, v.start, v.end, out);
    }
}

/// The issuer prefixes and lengths of the card networks: Visa, Mastercard (incl. the 2-series),
/// Amex, Discover, Diners, JCB, UnionPay, Maestro.
fn card_issuer(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| checksum::number(&d[..k]);
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => (matches!(p(2), 51..=55) && n == 16) || matches!(p(4), 5018 | 5020 | 5038 | 5893),
        2 => matches!(p(4), 2221..=2720) && n == 16,
        3 => {
            (matches!(p(2), 34 | 37) && n == 15)
                || (matches!(p(3), 300..=305) || matches!(p(2), 36 | 38 | 39)) && n >= 14
                || matches!(p(4), 3528..=3589) && n >= 16
        }
        6 => {
            (p(4) == 6011 || matches!(p(3), 644..=649) || p(2) == 65 || p(2) == 62) && n >= 16
                || matches!(p(4), 6304 | 6759 | 6761 | 6762 | 6763)
        }
        _ => false,
    }
}

/// The prefixes the IRS assigns EINs under.
fn ein_prefix(p: u64) -> bool {
    !matches!(p, 0 | 7..=9 | 17..=19 | 28 | 29 | 49 | 69 | 70 | 78 | 79 | 89 | 96 | 97)
}

/// German Steuer-ID: 11 digits, no leading zero, in the first ten one digit twice or three
/// times and the others at most once, and the ISO 7064 check digit.
fn steuer_id(d: &[u8]) -> bool {
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[usize::from(x)] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c > 1).count();
    let most = counts.iter().copied().max().unwrap_or(0);
    repeated == 1 && most <= 3 && checksum::iso7064_mod11_10(d)
}

/// French NIR (numéro de sécurité sociale): sex 1/2 (3, 7, 8 for provisional numbers), a
/// birth month, and the key 97 − (first 13 digits mod 97).
fn nir(d: &[u8]) -> bool {
    let month = checksum::number(&d[3..5]);
    let body = checksum::number(&d[..13]);
    let key = checksum::number(&d[13..]);
    matches!(d[0], 1 | 2 | 3 | 7 | 8)
        && matches!(month, 1..=12 | 20..=42 | 50..=99)
        && key == 97 - body % 97
}

/// UK NINO written "AB 12 34 56 C": two prefix letters before the digit groups, a suffix
/// letter after.
fn nino_spaced(text: &str, v: &Value, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    if v.start < 3 || v.end + 2 > b.len() {
        return;
    }
    let prefix = &b[v.start - 3..v.start - 1];
    let bounded_before = v.start == 3 || !b[v.start - 4].is_ascii_alphanumeric();
    let bounded_after = v.end + 2 == b.len() || !b[v.end + 2].is_ascii_alphanumeric();
    if b[v.start - 1] == b' '
        && b[v.end] == b' '
        && matches!(b[v.end + 1], b'A'..=b'D')
        && bounded_before
        && bounded_after
        && super::words::nino_prefix(prefix)
    {
        let (s, e) = (v.start - 3, v.end + 2);
        let score = context::score(text, s, 0.85, context::NINO, false);
        out.push(finding(Kind::NationalId, s, e, score, Evidence::Pattern));
    }
}

/// Spanish DNI written "12345678-Z" or "12345678 Z": the letter is the number mod 23.
fn dni_letter(text: &str, start: usize, end: usize, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let at = end + 1;
    if at >= b.len() || !matches!(b[end], b'-' | b' ') {
        return;
    }
    let digits: Vec<u8> = b[start..end].iter().map(|c| c - b'0').collect();
    let bounded = at + 1 == b.len() || !b[at + 1].is_ascii_alphanumeric();
    if bounded && super::words::dni_letter(checksum::number(&digits)) == b[at] {
        let score = context::score(text, start, 0.85, context::DNI, false);
        out.push(finding(
            Kind::NationalId,
            start,
            at + 1,
            score,
            Evidence::Checksum,
        ));
    }
}

/// Whether the cluster starts with a date: 2024-05-01, 2024/05/01, 01/05/2024, 01.05.2024.
fn date_at(b: &[u8], groups: &[(usize, usize)]) -> bool {
    let [(s0, e0), (s1, e1), (s2, e2), ..] = groups[..] else {
        return false;
    };
    let lens = [e0 - s0, e1 - s1, e2 - s2];
    let (sep1, sep2) = (&b[e0..s1], &b[e1..s2]);
    let date_sep = matches!(sep1, b"-" | b"/" | b".") && sep1 == sep2;
    date_sep && matches!(lens, [4, 1 | 2, 1 | 2] | [1 | 2, 1 | 2, 4])
}
