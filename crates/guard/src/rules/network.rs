//! E-mail addresses, URLs with credentials, IPv6 and MAC addresses.

use std::net::Ipv6Addr;

use super::{context, finding};
use crate::{Evidence, Finding, Kind};

/// The longest hex run (IPv6 with an IPv4 tail is 45 bytes) tried as an address.
const MAX_HEX_RUN: usize = 64;

/// The e-mail address around the `@` at `at`.
pub(super) fn email(text: &str, at: usize) -> Option<Finding> {
    let b = text.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let mut s = at;
    while s > 0 && at - s < 64 && local(b[s - 1]) {
        s -= 1;
    }
    while s < at && b[s] == b'.' {
        s += 1;
    }
    if s == at || b[at - 1] == b'.' || in_url(b, s) {
        return None;
    }
    let mut e = at + 1;
    while e < b.len()
        && e - at < 255
        && (b[e].is_ascii_alphanumeric() || b[e] == b'.' || b[e] == b'-')
    {
        e += 1;
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &text[at + 1..e];
    let tld = domain.rsplit('.').next().unwrap_or("");
    if !domain.contains('.')
        || domain.starts_with(['.', '-'])
        || domain.contains("..")
        || tld.len() < 2
        || !tld.bytes().all(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    Some(finding(Kind::Email, s, e, 0.9, Evidence::Pattern))
}

/// Whether `s` is inside a URL's authority ("scheme://user:pass@host" is a URL with
/// credentials, found as that, not an e-mail address).
fn in_url(b: &[u8], s: usize) -> bool {
    let from = s.saturating_sub(256);
    let before = &b[from..s];
    let word = before
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .map_or(before, |i| &before[i + 1..]);
    word.windows(3).any(|w| w == b"://")
}

/// `scheme://user:password@host[:port]` around the `://` at `sep`.
pub(super) fn url_credentials(text: &str, sep: usize) -> Option<Finding> {
    let b = text.as_bytes();
    let scheme = |c: u8| c.is_ascii_alphanumeric() || b"+.-".contains(&c);
    let mut s = sep;
    while s > 0 && sep - s < 32 && scheme(b[s - 1]) {
        s -= 1;
    }
    while s < sep && !b[s].is_ascii_alphabetic() {
        s += 1;
    }
    if s == sep {
        return None;
    }
    let user_start = sep + 3;
    let mut at = user_start;
    let mut colon = None;
    while at < b.len() && at - user_start < 256 {
        match b[at] {
            b'@' => break,
            b':' if colon.is_none() => colon = Some(at),
            c if c.is_ascii_whitespace() || b"/?#\"'<>".contains(&c) => return None,
            _ => {}
        }
        at += 1;
    }
    let colon = colon?;
    if at >= b.len() || b[at] != b'@' || colon + 1 == at {
        return None;
    }
    let mut e = at + 1;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || b".-:[]".contains(&b[e])) {
        e += 1;
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b':' | b'-') {
        e -= 1;
    }
    if e == at + 1 {
        return None;
    }
    Some(finding(Kind::UrlCredentials, s, e, 0.95, Evidence::Pattern))
}

/// Tries the run of hex digits, `:`, `-` and `.` starting at `s` as an IPv6 or MAC address;
/// returns where the run ends and, if it held one, where the address ends.
pub(super) fn hex_run(text: &str, s: usize, out: &mut Vec<Finding>) -> (usize, Option<usize>) {
    let b = text.as_bytes();
    let mut e = s;
    while e < b.len() && (b[e].is_ascii_hexdigit() || matches!(b[e], b':' | b'.' | b'-')) {
        e += 1;
    }
    // A run glued to more of a word ("f64::from", "2::cmp") is code, not an address.
    if e - s > MAX_HEX_RUN || (e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_')) {
        return (e, None);
    }
    let mut end = e;
    while end > s && matches!(b[end - 1], b':' | b'.' | b'-') {
        end -= 1;
    }
    let run = &text[s..end];
    // A hex word glued to a longer word ("std::", "0xff:") is code, not an address.
    if s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b':') {
        return (e, None);
    }
    if mac(run.as_bytes()) {
        out.push(finding(Kind::MacAddress, s, end, 0.85, Evidence::Pattern));
        return (e, Some(end));
    }
    let colons = run.bytes().filter(|&c| c == b':').count();
    if colons >= 2
        && !run.contains('-')
        && run.bytes().any(|c| c.is_ascii_digit())
        && run
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified())
    {
        let score = context::score(text, s, 0.85, context::IP, true);
        out.push(finding(Kind::IpAddress, s, end, score, Evidence::Pattern));
        return (e, Some(end));
    }
    (e, None)
}

/// Six hex pairs joined by one of `:` or `-`, or three hex quads joined by `.` (Cisco) with
/// at least one letter among them (twelve digits in threes are a number first).
fn mac(r: &[u8]) -> bool {
    let hex = |x: &[u8]| x.iter().all(u8::is_ascii_hexdigit);
    match r.len() {
        17 => {
            let sep = r[2];
            matches!(sep, b':' | b'-')
                && (0..6).all(|i| hex(&r[i * 3..i * 3 + 2]))
                && (0..5).all(|i| r[i * 3 + 2] == sep)
        }
        14 => {
            (0..3).all(|i| hex(&r[i * 5..i * 5 + 4]))
                && r[4] == b'.'
                && r[9] == b'.'
                && r.iter().any(u8::is_ascii_alphabetic)
        }
        _ => false,
    }
}
