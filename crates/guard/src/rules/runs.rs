//! The one pass over alphanumeric runs: digit groups gather into clusters for the numeric
//! validators, mixed words go to the id and wallet validators, short hex words followed by
//! `:`, `-` or `.` to the IPv6 and MAC parsers.

use super::{network, numbers, words, Rules};
use crate::Finding;

/// The most digit groups in one cluster; a longer table of numbers is cut into clusters.
const MAX_GROUPS: usize = 24;

pub(super) fn scan(rules: &Rules, text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let n = b.len();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    // Bytes a found value covers (an IBAN's groups, an IPv6 address): not looked at again.
    let mut skip_until = 0;
    // The end of the last hex run tried, so a long one is not retried from each word.
    let mut hex_tried = 0;
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let s = i;
        let mut digits = 0;
        let mut hex = true;
        while i < n && b[i].is_ascii_alphanumeric() {
            digits += usize::from(b[i].is_ascii_digit());
            hex &= b[i].is_ascii_hexdigit();
            i += 1;
        }
        let e = i;
        if s < skip_until {
            continue;
        }
        let len = e - s;
        if hex && s >= hex_tried && e < n {
            let next = b[e];
            if next == b':' && len <= 4 || next == b'-' && len == 2 || next == b'.' && len == 4 {
                let (tried, found) = network::hex_run(text, s, out);
                hex_tried = tried;
                if let Some(end) = found {
                    numbers::flush(rules, text, &mut groups, out);
                    skip_until = end;
                    i = end.max(e);
                    continue;
                }
            }
        }
        if digits == len {
            if !joins(b, &groups, s) {
                numbers::flush(rules, text, &mut groups, out);
            }
            groups.push((s, e));
        } else {
            numbers::flush(rules, text, &mut groups, out);
            if digits > 0 {
                if let Some(end) = words::check(text, s, e, out) {
                    skip_until = end;
                    i = end.max(e);
                }
            }
        }
    }
    numbers::flush(rules, text, &mut groups, out);
}

/// Whether a digit group starting at `s` continues the cluster `groups`: the bytes between
/// are one separator (space, `-`, `.`, `/`, a parenthesis) or up to three of spaces, dashes
/// and parentheses ("(415) 555", " - ").
fn joins(b: &[u8], groups: &[(usize, usize)], s: usize) -> bool {
    let Some(&(_, last)) = groups.last() else {
        return true;
    };
    if groups.len() >= MAX_GROUPS {
        return false;
    }
    let gap = &b[last..s];
    match gap.len() {
        1 => matches!(gap[0], b' ' | b'-' | b'.' | b'/' | b'(' | b')'),
        2 | 3 => gap.iter().all(|c| matches!(c, b' ' | b'-' | b'(' | b')')),
        _ => false,
    }
}
