//! Words of letters and digits: IBANs (compact or in groups of four), UK NINO, Spanish
//! DNI/NIE, Italian codice fiscale, Indian PAN, and Bitcoin and Ethereum addresses.

use iban::Iban;

use super::{checksum, context, finding};
use crate::{Evidence, Finding, Kind};

/// Checks the word `text[s..e]` (ASCII letters and digits, at least one digit); returns the
/// end of a value that reaches past the word (a grouped IBAN), so its groups are skipped.
pub(super) fn check(text: &str, s: usize, e: usize, out: &mut Vec<Finding>) -> Option<usize> {
    let w = &text.as_bytes()[s..e];
    let len = w.len();
    if len >= 4
        && w[..2].iter().all(u8::is_ascii_uppercase)
        && w[2..4].iter().all(u8::is_ascii_digit)
    {
        if let Some(end) = iban(text, s, e, out) {
            return Some(end);
        }
    }
    let push = |out: &mut Vec<Finding>, kind, base, raising, evidence| {
        let score = context::score(text, s, base, raising, false);
        out.push(finding(kind, s, e, score, evidence));
    };
    match len {
        9 if nino(w) => push(
            out,
            Kind::NationalId,
            0.85,
            context::NINO,
            Evidence::Pattern,
        ),
        9 if dni_or_nie(w) => push(out, Kind::NationalId, 0.9, context::DNI, Evidence::Checksum),
        10 if pan(w) => push(out, Kind::TaxId, 0.8, context::PAN, Evidence::Pattern),
        16 if codice_fiscale(w) => {
            push(out, Kind::NationalId, 0.95, &[], Evidence::Checksum);
        }
        42 if w.starts_with(b"0x") && w[2..].iter().all(u8::is_ascii_hexdigit) => {
            push(out, Kind::CryptoWallet, 0.85, &[], Evidence::Pattern);
        }
        _ => {}
    }
    if (25..=35).contains(&len) && matches!(w[0], b'1' | b'3') && checksum::base58check_address(w) {
        push(out, Kind::CryptoWallet, 0.95, &[], Evidence::Checksum);
    }
    if len >= 14
        && (w[..3].eq_ignore_ascii_case(b"bc1") || w[..3].eq_ignore_ascii_case(b"tb1"))
        && checksum::segwit_address(w)
    {
        push(out, Kind::CryptoWallet, 0.95, &[], Evidence::Checksum);
    }
    None
}

/// An IBAN starting with the word `text[s..e]`: the word alone, or it and the groups of up
/// to four capitals and digits that follow it one space apart. The longest that passes
/// mod-97 and its country's length is kept.
fn iban(text: &str, s: usize, e: usize, out: &mut Vec<Finding>) -> Option<usize> {
    let b = text.as_bytes();
    let mut ends = vec![e];
    if e - s == 4 {
        let mut pos = e;
        let mut chars = 4;
        while pos + 1 < b.len() && b[pos] == b' ' && chars < 34 {
            let g = pos + 1;
            let mut q = g;
            while q < b.len() && q - g < 5 && (b[q].is_ascii_uppercase() || b[q].is_ascii_digit()) {
                q += 1;
            }
            let group = q - g;
            let bounded = q == b.len() || !b[q].is_ascii_alphanumeric();
            if group == 0 || group > 4 || !bounded {
                break;
            }
            ends.push(q);
            chars += group;
            pos = q;
            if group < 4 {
                break;
            }
        }
    }
    for &end in ends.iter().rev() {
        if text.get(s..end).is_some_and(|c| c.parse::<Iban>().is_ok()) {
            out.push(finding(Kind::Iban, s, end, 0.95, Evidence::Checksum));
            return Some(end);
        }
    }
    None
}

/// Whether two letters may start a UK National Insurance number.
pub(super) fn nino_prefix(p: &[u8]) -> bool {
    let [a, b] = p else {
        return false;
    };
    a.is_ascii_uppercase()
        && b.is_ascii_uppercase()
        && !matches!(a, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V')
        && !matches!(b, b'D' | b'F' | b'I' | b'O' | b'Q' | b'U' | b'V')
        && !matches!(p, b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ")
}

/// UK NINO written "AB123456C".
fn nino(w: &[u8]) -> bool {
    nino_prefix(&w[..2]) && w[2..8].iter().all(u8::is_ascii_digit) && matches!(w[8], b'A'..=b'D')
}

/// The DNI check letter of a number.
pub(super) fn dni_letter(n: u64) -> u8 {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    LETTERS[(n % 23) as usize]
}

/// Spanish DNI ("12345678Z") or NIE ("X1234567L": X, Y, Z stand for 0, 1, 2).
fn dni_or_nie(w: &[u8]) -> bool {
    let lead = match w[0] {
        b'X' => Some(0),
        b'Y' => Some(1),
        b'Z' => Some(2),
        c if c.is_ascii_digit() => Some(u64::from(c - b'0')),
        _ => None,
    };
    let Some(lead) = lead else {
        return false;
    };
    if !w[1..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let rest: Vec<u8> = w[1..8].iter().map(|c| c - b'0').collect();
    let n = lead * 10_000_000 + checksum::number(&rest);
    dni_letter(n) == w[8]
}

/// Indian PAN: five letters (the fourth the holder type), four digits, a letter.
fn pan(w: &[u8]) -> bool {
    w[..5].iter().all(u8::is_ascii_uppercase)
        && matches!(
            w[3],
            b'A' | b'B' | b'C' | b'F' | b'G' | b'H' | b'L' | b'J' | b'P' | b'T'
        )
        && w[5..9].iter().all(u8::is_ascii_digit)
        && w[9].is_ascii_uppercase()
}

/// Italian codice fiscale: surname and name letters, birth year, month letter, day and
/// place (digits, or their omocodia letters), and the check letter.
fn codice_fiscale(w: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let digit_like = |c: u8| c.is_ascii_digit() || b"LMNPQRSTUV".contains(&c);
    let shape = w[..6].iter().all(u8::is_ascii_uppercase)
        && [6, 7, 9, 10, 12, 13, 14].iter().all(|&i| digit_like(w[i]))
        && b"ABCDEHLMPRST".contains(&w[8])
        && w[11].is_ascii_uppercase()
        && w[15].is_ascii_uppercase();
    if !shape {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in w[..15].iter().enumerate() {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A')
        };
        sum += if i % 2 == 0 { ODD[v as usize] } else { v };
    }
    w[15] == b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let s = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if let Some(end) = check(text, s, i, &mut out) {
                i = end;
            }
        }
        out
    }

    #[test]
    fn codice_fiscale_checks_its_last_letter() {
        assert!(codice_fiscale(b"RSSMRA85T10A562S"));
        assert!(!codice_fiscale(b"RSSMRA85T10A562T"));
    }

    #[test]
    fn dni_and_nie_check_their_letter() {
        assert!(dni_or_nie(b"12345678Z"));
        assert!(!dni_or_nie(b"12345678A"));
        assert!(dni_or_nie(b"X1234567L"));
        assert!(!dni_or_nie(b"X1234567A"));
    }

    #[test]
    fn nino_prefixes_follow_the_allocation_rules() {
        assert!(nino(b"AB123456C"));
        assert!(!nino(b"QQ123456C"));
        assert!(!nino(b"GB123456A"));
        assert!(!nino(b"AB123456E"));
    }

    #[test]
    fn an_iban_in_groups_is_found_whole_and_a_bad_checksum_is_not() {
        let text = "pay GB82 WEST 1234 5698 7654 32 today";
        let f = find(text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::Iban);
        assert_eq!(&text[f[0].start..f[0].end], "GB82 WEST 1234 5698 7654 32");
        assert_eq!(f[0].evidence, Evidence::Checksum);
        assert!(find("pay GB83 WEST 1234 5698 7654 32 today").is_empty());
    }

    #[test]
    fn a_compact_iban_is_found() {
        let text = "IBAN: DE89370400440532013000.";
        let f = find(text);
        assert_eq!(f.len(), 1);
        assert_eq!(&text[f[0].start..f[0].end], "DE89370400440532013000");
    }

    #[test]
    fn wallets_are_found_when_their_checksum_holds() {
        for addr in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ] {
            let text = format!("send to {addr} now");
            let f = find(&text);
            assert_eq!(f.len(), 1, "{addr}");
            assert_eq!(f[0].kind, Kind::CryptoWallet);
            assert_eq!(&text[f[0].start..f[0].end], addr);
        }
        assert!(find("send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb now").is_empty());
    }

    #[test]
    fn pan_needs_a_holder_type_letter() {
        assert!(pan(b"ABCPE1234F"));
        assert!(!pan(b"ABCDE1234F"));
    }
}
