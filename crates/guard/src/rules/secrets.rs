//! Secrets: providers' API keys, JWTs, PEM private keys, and passwords or high-entropy
//! tokens assigned to a key/token/secret/password word.
//!
//! Provider patterns adapted from gitleaks' config/gitleaks.toml (MIT, © 2019 Zachary Rice; see GITLEAKS-LICENSE).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use regex::Regex;

use super::{ceil_boundary, checksum, finding, floor_boundary};
use crate::{Evidence, Finding, GuardError, Kind};

/// The longest provider key read (PyPI tokens run long).
const MAX_KEY: usize = 1200;
/// The longest keyword value read.
const MAX_VALUE: usize = 256;

/// Where a provider's pattern starts relative to its trigger literal.
#[derive(Clone, Copy)]
enum Back {
    /// At the literal.
    None,
    /// This many bytes before it (Azure AD secrets: "abc8Q~…").
    Bytes(usize),
    /// At the digits before it (Telegram bot tokens: "123456:AA…").
    Digits,
}

/// Trigger literals (case-sensitive), where the pattern starts, the pattern.
const PROVIDERS: &[(&[&str], Back, &str)] = &[
    // AWS access key ids.
    (
        &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        Back::None,
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
    ),
    // GCP API keys.
    (&["AIza"], Back::None, r"AIza[\w-]{35}"),
    // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
    (
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        Back::None,
        r"gh[pousr]_[0-9a-zA-Z]{36}",
    ),
    (&["github_pat_"], Back::None, r"github_pat_\w{82}"),
    // GitLab personal, pipeline-trigger and deploy tokens.
    (
        &["glpat-", "glptt-", "gldt-"],
        Back::None,
        r"gl(?:pat|ptt|dt)-[\w-]{20,}",
    ),
    // Slack bot, user, app-level and config tokens; incoming webhooks.
    (
        &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxe-"],
        Back::None,
        r"xox[abeprs]-[0-9A-Za-z-]{10,}",
    ),
    (
        &["xapp-"],
        Back::None,
        r"(?i)xapp-\d-[a-z0-9]+-\d+-[a-z0-9]+",
    ),
    (
        &["hooks.slack.com/"],
        Back::None,
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
    ),
    // Stripe secret and restricted keys.
    (
        &[
            "sk_live_", "rk_live_", "sk_test_", "rk_test_", "sk_prod_", "rk_prod_",
        ],
        Back::None,
        r"[sr]k_(?:live|test|prod)_[a-zA-Z0-9]{10,99}",
    ),
    // OpenAI project, service-account, admin and legacy keys.
    (
        &["sk-"],
        Back::None,
        r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})",
    ),
    // Anthropic API and admin keys.
    (
        &["sk-ant-"],
        Back::None,
        r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}",
    ),
    // Twilio API keys.
    (&["SK"], Back::None, r"SK[0-9a-fA-F]{32}"),
    // SendGrid.
    (&["SG."], Back::None, r"SG\.[\w-]{22}\.[\w-]{43}"),
    // npm.
    (&["npm_"], Back::None, r"npm_[A-Za-z0-9]{36}"),
    // PyPI upload tokens.
    (
        &["pypi-AgEIcHlwaS5vcmc"],
        Back::None,
        r"pypi-AgEIcHlwaS5vcmc[\w-]{50,}",
    ),
    // Hugging Face access and organisation tokens.
    (
        &["hf_", "api_org_"],
        Back::None,
        r"(?:hf_|api_org_)[A-Za-z0-9]{34}",
    ),
    // Discord webhooks (bot tokens come through the "discord" keyword).
    (
        &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
        Back::None,
        r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{60,70}",
    ),
    // Telegram bot tokens.
    (&[":AA"], Back::Digits, r"\d{5,16}:A[\w-]{32,40}"),
    // Azure storage account keys, Service Bus / Event Hubs shared access keys, AD client
    // secrets.
    (
        &["AccountKey="],
        Back::None,
        r"AccountKey=[A-Za-z0-9+/]{86}==",
    ),
    (
        &["SharedAccessKey="],
        Back::None,
        r"SharedAccessKey=[A-Za-z0-9+/]{43}=",
    ),
    (
        &["Q~"],
        Back::Bytes(4),
        r"[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}",
    ),
    // Shopify, DigitalOcean, Linear, Databricks, Grafana, Postman, Vault, New Relic.
    (
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        Back::None,
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
    ),
    (
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        Back::None,
        r"do[opr]_v1_[a-f0-9]{64}",
    ),
    (&["lin_api_"], Back::None, r"lin_api_[a-zA-Z0-9]{40}"),
    (&["dapi"], Back::None, r"dapi[a-f0-9]{32}(?:-\d)?"),
    (
        &["glsa_"],
        Back::None,
        r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
    ),
    (&["PMAK-"], Back::None, r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    (&["hvs."], Back::None, r"hvs\.[\w-]{90,120}"),
    (&["NRAK-"], Back::None, r"NRAK-[A-Z0-9]{27}"),
];

/// The kind of value a keyword announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    /// Any value that is not a placeholder.
    Password,
    /// Only a high-entropy value.
    Token,
}

/// Words a secret is assigned to, matched ASCII case-insensitively anywhere in an
/// identifier ("AWS_SECRET_ACCESS_KEY", "accessToken").
pub(super) const KEYWORDS: &[(&str, Keyword)] = &[
    ("password", Keyword::Password),
    ("passwd", Keyword::Password),
    ("pwd", Keyword::Password),
    ("passphrase", Keyword::Password),
    ("passwort", Keyword::Password),
    ("contraseña", Keyword::Password),
    ("mot de passe", Keyword::Password),
    ("key", Keyword::Token),
    ("token", Keyword::Token),
    ("secret", Keyword::Token),
    ("auth", Keyword::Token),
    ("credential", Keyword::Token),
    ("discord", Keyword::Token),
    ("telegram", Keyword::Token),
];

pub(super) struct Secrets {
    /// Per provider: where it starts, its pattern anchored at the start.
    providers: Vec<(Back, Regex)>,
}

impl Secrets {
    pub(super) fn new() -> Result<Secrets, GuardError> {
        let providers = PROVIDERS
            .iter()
            .map(|&(_, back, pattern)| {
                Regex::new(&format!("^(?-u:{pattern})"))
                    .map(|re| (back, re))
                    .map_err(|e| GuardError::Setup(format!("secret pattern {pattern}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Secrets { providers })
    }

    /// Each provider's trigger literals with the provider's index.
    pub(super) fn literals(&self) -> impl Iterator<Item = (usize, &'static str)> {
        PROVIDERS
            .iter()
            .enumerate()
            .flat_map(|(i, (lits, _, _))| lits.iter().map(move |&l| (i, l)))
    }

    /// The key of provider `i` whose trigger literal starts at `at`.
    pub(super) fn provider(&self, i: usize, text: &str, at: usize) -> Option<Finding> {
        let (back, re) = self.providers.get(i)?;
        let b = text.as_bytes();
        let s = match *back {
            Back::None => at,
            Back::Bytes(n) => at.checked_sub(n)?,
            Back::Digits => {
                let mut s = at;
                while s > 0 && at - s < 16 && b[s - 1].is_ascii_digit() {
                    s -= 1;
                }
                s
            }
        };
        if !text.is_char_boundary(s) || (s > 0 && is_token_byte(b[s - 1])) {
            return None;
        }
        let window = text.get(s..floor_boundary(text, s + MAX_KEY))?;
        let m = re.find(window)?;
        let e = s + m.end();
        if e < b.len() && is_token_byte(b[e]) {
            return None;
        }
        Some(finding(Kind::Secret, s, e, 0.95, Evidence::Pattern))
    }
}

/// Bytes a key runs on in: a key glued to more of them is part of something longer.
fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A PEM private-key block from its `-----BEGIN` at `s` through its END line (or, cut off,
/// through the end of its base64 body).
pub(super) fn private_key(text: &str, s: usize) -> Option<Finding> {
    let b = text.as_bytes();
    let head_end = s
        + 10
        + b.get(s + 10..)?
            .windows(5)
            .take(80)
            .position(|w| w == b"-----")?;
    let label = text.get(s + 10..head_end)?.trim();
    if !label.ends_with("PRIVATE KEY") && !label.ends_with("PRIVATE KEY BLOCK") {
        return None;
    }
    let body = head_end + 5;
    let rest = &b[body..];
    let e = match rest.windows(8).position(|w| w == b"-----END") {
        Some(p) => {
            let end_label = body + p + 8;
            let close = b[end_label..]
                .windows(5)
                .take(80)
                .position(|w| w == b"-----")?;
            end_label + close + 5
        }
        None => {
            let body_len = rest
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || b"+/=\\ \t\r\n".contains(c)))
                .unwrap_or(rest.len());
            body + body_len
        }
    };
    Some(finding(Kind::Secret, s, e, 0.99, Evidence::Pattern))
}

/// A JWT at `s`: three base64url segments, the first decoding to a JSON object with "alg".
pub(super) fn jwt(text: &str, s: usize) -> Option<Finding> {
    let b = text.as_bytes();
    if s > 0 && (is_token_byte(b[s - 1]) || b[s - 1] == b'-') {
        return None;
    }
    let seg = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let mut e = s;
    let mut dots = Vec::with_capacity(2);
    while e < b.len() && (seg(b[e]) || b[e] == b'.') && e - s < 16 * 1024 {
        if b[e] == b'.' {
            if dots.len() == 2 {
                break;
            }
            dots.push(e);
        }
        e += 1;
    }
    let [d1, d2] = dots[..] else {
        return None;
    };
    if d2 == d1 + 1 || e == d2 + 1 {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(&b[s..d1]).ok()?;
    let header = std::str::from_utf8(&header).ok()?.trim();
    if !(header.starts_with('{') && header.ends_with('}') && header.contains("\"alg\"")) {
        return None;
    }
    Some(finding(Kind::Secret, s, e, 0.95, Evidence::Checksum))
}

/// The value assigned to the keyword at `text[s..e]`: `password = "…"`, `"api_key": "…"`,
/// `token: …`, `the secret is …`.
pub(super) fn keyword_value(text: &str, e: usize, kw: Keyword) -> Option<Finding> {
    let b = text.as_bytes();
    // "keyboard", "tokens", "secretary", "author": not the keyword.
    if e < b.len() && b[e].is_ascii_lowercase() {
        return None;
    }
    let mut i = e;
    // The rest of the identifier: "api_key_id", "tokenValue".
    while i < b.len() && i - e < 24 && (is_token_byte(b[i]) || b[i] == b'-' || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && matches!(b[i], b'"' | b'\'' | b'`') {
        i += 1;
    }
    i = skip_spaces(b, i);
    let rest = &b[i.min(b.len())..];
    let sep = [&b":="[..], b"=>", b"->", b":", b"=", b"is "]
        .into_iter()
        .find(|sep| rest.starts_with(sep))?;
    i = skip_spaces(b, i + sep.len());
    for scheme in ["bearer ", "basic "] {
        if b.get(i..i + scheme.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(scheme.as_bytes()))
        {
            i = skip_spaces(b, i + scheme.len());
        }
    }
    let quote = b
        .get(i)
        .copied()
        .filter(|c| matches!(c, b'"' | b'\'' | b'`'));
    if quote.is_some() {
        i += 1;
    }
    let v = i;
    let mut j = v;
    while j < b.len() && j - v < MAX_VALUE {
        let c = b[j];
        let stop = match quote {
            Some(q) => c == q || c == b'\n',
            None => c.is_ascii_whitespace() || b",;&)(}]<>\"'`".contains(&c),
        };
        if stop {
            break;
        }
        j += 1;
    }
    let j = floor_boundary(text, j);
    let v = ceil_boundary(text, v);
    let value = text.get(v..j)?;
    // A PEM block assigned to a key ("private_key": "-----BEGIN …") is found whole as that.
    if value.starts_with("-----BEGIN") {
        return None;
    }
    let found = match kw {
        Keyword::Password => password(value, quote.is_some()),
        Keyword::Token => high_entropy(value.as_bytes()),
    };
    found.then(|| finding(Kind::Secret, v, j, 0.85, Evidence::Pattern))
}

/// The token after `Bearer ` (the trigger ends at `e`).
pub(super) fn bearer(text: &str, e: usize) -> Option<Finding> {
    let b = text.as_bytes();
    let mut j = e;
    while j < b.len()
        && j - e < MAX_VALUE
        && (b[j].is_ascii_alphanumeric() || b"-._~+/=".contains(&b[j]))
    {
        j += 1;
    }
    high_entropy(&b[e..j]).then(|| finding(Kind::Secret, e, j, 0.85, Evidence::Pattern))
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// A password value: not empty, not a placeholder ("${DB_PASSWORD}", "<password>",
/// "********"), and unquoted only when it is not a plain word or call (`getpass()`).
fn password(v: &str, quoted: bool) -> bool {
    let lower = v.to_ascii_lowercase();
    let placeholder = v.starts_with(['$', '{', '<', '%', '['])
        || v.bytes()
            .all(|c| c == b'*' || c == b'x' || c == b'X' || c == b'.')
        || matches!(
            lower.as_str(),
            "null" | "none" | "nil" | "true" | "false" | "undefined" | "redacted" | "password"
        )
        || lower.starts_with("process.env")
        || lower.starts_with("os.environ");
    let plain_word = v
        .bytes()
        .all(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'.');
    let code = v.contains("::") || v.contains("->");
    v.len() >= 4 && !placeholder && (quoted || !(plain_word || code))
}

/// A token that looks random: 16 to 256 bytes, letters and digits, entropy of at least
/// 3.3 bits a byte, and not a UUID nor code (`String::from_utf8`, `read_u32_le`).
pub(super) fn high_entropy(v: &[u8]) -> bool {
    let letters = v.iter().any(u8::is_ascii_alphabetic);
    let digits = v.iter().any(u8::is_ascii_digit);
    let path = v.windows(2).any(|w| w == b"::");
    let snake_case = v.iter().filter(|&&c| c == b'_').count() >= 2
        && (v
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
            || v.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'));
    (16..=MAX_VALUE).contains(&v.len())
        && letters
        && digits
        && !path
        && !snake_case
        && !uuid(v)
        && checksum::entropy(v) >= 3.3
}

/// 8-4-4-4-12 hex digits.
fn uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}
