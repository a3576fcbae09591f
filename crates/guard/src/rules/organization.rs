//! Organisation names: a run of capitalised words ending in a legal form ("Acme Widgets
//! GmbH", "Johnson & Johnson Inc.") or an organisation word ("Hilton Food Group"), and the
//! reverse forms "University of X", "Bank of X", "Ministry of X", "Department of X".
//!
//! One pass over the words: only a word starting with a capital (or `plc`) is looked at, and
//! only a suffix walks back over the words before it, so the cost is a byte test per byte.
//! A name needs at least one capitalised word besides its suffix, so a suffix alone ("Group 4
//! results", "Systems are down", "the bank") is never found; sentence-initial ordinary words
//! ("The", "We", "Our") are not taken into the name; an organisation word (not a legal form)
//! on a line of its own in title case is a heading, not a name.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::{context, finding};
use crate::{Evidence, Finding, Kind};

/// A legal form: the name is a registered entity.
const LEGAL: f32 = 0.85;
/// A short capitals-only legal form that is also a word or code ("AS", "SE", "SA").
const SHORT_LEGAL: f32 = 0.75;
/// "University of X", "Ministry of X", "Bank of X".
const REVERSE: f32 = 0.8;
/// "Company", "Bancorp": nearly always a name after capitalised words.
const STRONG_WORD: f32 = 0.7;
/// An organisation word ("Group", "Systems"): capitalised runs before it are often names,
/// sometimes titles.
const WORD: f32 = 0.6;

/// The words before a name that make it an organisation's.
const ORG_CONTEXT: &[&str] = &[
    "at", "for", "from", "with", "works", "worked", "working", "employer", "employed", "company",
    "joined",
];

/// The most words walked back from a suffix.
const MAX_WORDS: usize = 8;

const LEGAL_FORMS: &[&str] = &[
    "Inc",
    "Inc.",
    "INC",
    "INC.",
    "Incorporated",
    "Corp",
    "Corp.",
    "CORP",
    "CORP.",
    "Corporation",
    "CORPORATION",
    "Co.",
    "CO.",
    "LLC",
    "L.L.C.",
    "Ltd",
    "Ltd.",
    "LTD",
    "LTD.",
    "Limited",
    "LIMITED",
    "PLC",
    "Plc",
    "plc",
    "LLP",
    "L.L.P.",
    "L.P.",
    "GmbH",
    "gGmbH",
    "KGaA",
    "S.A.",
    "S.A.S.",
    "SARL",
    "S.à r.l.",
    "S.p.A.",
    "SpA",
    "S.r.l.",
    "Srl",
    "B.V.",
    "N.V.",
    "Pty",
    "Oy",
    "Oyj",
    "A/S",
    "K.K.",
    "S.L.",
    "Bhd",
    "Berhad",
    "e.V.",
    "Co.Ltd.",
    "Co.Ltd",
    "CO.LTD.",
    "CO.LTD",
    "AG",
    "KG",
    "SE",
    "SA",
    "SAS",
    "AB",
    "AS",
    "ASA",
    "LP",
    "BV",
    "NV",
    "SCA",
];

/// Legal forms of two or three capitals that are also words or codes: the name must have a
/// lower-case letter somewhere, so capitals-only text ("PAID AS AGREED") is left alone.
fn short(form: &str) -> bool {
    form.len() <= 3
        && form.bytes().all(|b| b.is_ascii_uppercase())
        && !matches!(form, "INC" | "LTD" | "PLC" | "LLC" | "LLP")
}

const STRONG_WORDS: &[&str] = &["Company", "Bancorp", "Incorporated"];

const WORDS: &[&str] = &[
    "Group",
    "Holdings",
    "Holding",
    "Bank",
    "Foundation",
    "Association",
    "University",
    "Institute",
    "Hospital",
    "Agency",
    "Council",
    "Society",
    "Trust",
    "Partners",
    "Associates",
    "Laboratories",
    "Labs",
    "Technologies",
    "Systems",
    "Solutions",
    "Industries",
    "International",
    "Organization",
    "Organisation",
    "Enterprises",
    "Ventures",
    "Pharmaceuticals",
    "Airlines",
    "Motors",
    "College",
    "Fund",
    "ETF",
    "Networks",
    "Investors",
];

/// Words a reverse form starts with: "University of X".
const REVERSE_HEADS: &[&str] = &[
    "University",
    "Bank",
    "Ministry",
    "Department",
    "Institute",
    "College",
    "Academy",
    "Society",
    "Association",
    "Federation",
    "Commission",
];

/// Lower-case words inside a name ("Bank of America", "Procter and Gamble").
const JOINERS: &[&str] = &[
    "of", "and", "for", "the", "de", "du", "des", "la", "le", "del", "della", "di", "da", "van",
    "von", "der", "den", "und", "et", "y",
];

/// Capitalised words that start sentences or come before names but are not part of them.
const STOP: &[&str] = &[
    "The",
    "A",
    "An",
    "We",
    "Our",
    "Your",
    "My",
    "His",
    "Her",
    "Their",
    "Its",
    "This",
    "That",
    "These",
    "Those",
    "I",
    "You",
    "He",
    "She",
    "They",
    "It",
    "At",
    "In",
    "On",
    "For",
    "From",
    "With",
    "By",
    "To",
    "Of",
    "And",
    "Or",
    "But",
    "If",
    "As",
    "When",
    "While",
    "After",
    "Before",
    "Since",
    "During",
    "Dear",
    "Hi",
    "Hello",
    "Thanks",
    "Please",
    "Contact",
    "Call",
    "Email",
    "Yesterday",
    "Today",
    "Tomorrow",
    "Then",
    "So",
    "Also",
    "All",
    "Some",
    "Any",
    "No",
    "Not",
    "Is",
    "Are",
    "Was",
    "Were",
    "Will",
    "Can",
    "Do",
    "Does",
    "Did",
    "Every",
    "Each",
    "Both",
    "Via",
    "Per",
    "About",
    "Re",
    "Fwd",
    "Subject",
    "Note",
    "See",
    "Ask",
    "Join",
    "Visit",
    "Welcome",
    "Why",
    "How",
    "What",
    "Where",
    "Who",
    "Here",
    "There",
];

/// A byte that can be part of a name's word: letters, digits, `&`, `-`, `'`, `.`, `/`, and any
/// byte of a non-ASCII character (so words end only at ASCII bytes, on char boundaries).
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'&' | b'-' | b'\'' | b'.' | b'/') || b >= 0x80
}

/// What a suffix found makes of the name.
#[derive(Clone, Copy, PartialEq)]
enum Suffix {
    Legal {
        short: bool,
    },
    /// A legal form glued to the name's last word: the word is a name by itself.
    Glued,
    Word(f32),
}

/// `core` without a trailing possessive (`'s`, `’s`) and the punctuation after it, but with a
/// final `.` kept: the span of the suffix within the word.
fn core(word: &str) -> &str {
    let w = word
        .strip_suffix("'s")
        .or_else(|| word.strip_suffix("’s"))
        .unwrap_or(word);
    w.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '.')
}

/// Every legal form and organisation word by its text, looked up once a candidate word rather
/// than compared with each list in turn (the rules' pass meets hundreds of thousands of
/// capitalised words a megabyte). A text in more than one list is what the first of legal
/// forms, strong words, words makes it.
static SUFFIXES: LazyLock<HashMap<&'static str, Suffix>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for w in WORDS {
        map.insert(*w, Suffix::Word(WORD));
    }
    for w in STRONG_WORDS {
        map.insert(*w, Suffix::Word(STRONG_WORD));
    }
    for form in LEGAL_FORMS {
        map.insert(*form, Suffix::Legal { short: short(form) });
    }
    map
});

/// The suffix `word` is, and the length of the word it ends with (a final `.` of a sentence
/// is left out of an organisation word: "… at Acme Group.").
fn suffix(word: &str) -> Option<(Suffix, usize)> {
    if let Some(legal @ Suffix::Legal { .. }) = SUFFIXES.get(word) {
        return Some((*legal, word.len()));
    }
    let bare = word.strip_suffix('.').unwrap_or(word);
    if let Some(found) = SUFFIXES.get(bare) {
        return Some((*found, bare.len()));
    }
    // A legal form glued to the name: "HoldingsInc.", "CompanyLimited", "CareNetInc.".
    for form in ["Inc.", "Ltd.", "Limited", "Corporation", "Corp."] {
        if let Some(head) = word.strip_suffix(form) {
            if head.len() >= 2 && head.as_bytes().last().is_some_and(u8::is_ascii_alphabetic) {
                return Some((Suffix::Glued, word.len()));
            }
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Capital,
    Joiner,
    /// `&`: joins names but, unlike a joiner word, not a sentence's first word to them.
    Amp,
}

/// Whether `w` (a trimmed word) can be part of a name: capitalised ("Acme", "AT&T", "3M",
/// "eBay") or a joiner.
fn class(w: &str) -> Option<Class> {
    if w == "&" {
        return Some(Class::Amp);
    }
    if JOINERS.contains(&w) {
        return Some(Class::Joiner);
    }
    let first = w.chars().next()?;
    if first.is_uppercase() {
        return Some(Class::Capital);
    }
    if (first.is_ascii_digit() || first.is_lowercase())
        && w.chars().any(|c| c.is_uppercase())
        && w.chars().any(char::is_alphabetic)
    {
        return Some(Class::Capital);
    }
    if first.is_ascii_digit() && w.chars().any(char::is_alphabetic) && w.len() <= 4 {
        return Some(Class::Capital);
    }
    None
}

/// A word of more than three letters ending in `.` ends a sentence ("… from Paris. Acme Inc.").
fn ends_sentence(w: &str) -> bool {
    w.ends_with('.') && w.chars().filter(|c| c.is_alphabetic()).count() > 3
}

/// Whether `start` begins a sentence: nothing but white space before it since the text's
/// start, a line break or a sentence's final punctuation.
fn sentence_start(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t', '"', '\'', '(', '“']);
    before.is_empty() || before.ends_with(['.', '!', '?', '\n', ':', ';'])
}

fn stop(w: &str) -> bool {
    STOP.contains(&w.strip_suffix('.').unwrap_or(w))
}

/// The start of the name whose last word starts at `s`: the capitalised words and joiners
/// before it, one space apart (`comma`: ", " is allowed before the suffix, "Acme, Inc."),
/// without leading joiners and ordinary words. `None` when no capitalised word is left.
/// `lower`: whether some word of the name has a lower-case letter.
fn walk_back(text: &str, s: usize, comma: bool) -> Option<(usize, bool)> {
    let b = text.as_bytes();
    // (start, class, is stop word, has lower case) of each word, right to left.
    let mut words: Vec<(usize, Class, bool, bool)> = Vec::new();
    let mut p = s;
    let mut prev_of = false;
    while words.len() < MAX_WORDS {
        let mut q = p;
        if q >= 1 && b[q - 1] == b' ' {
            q -= 1;
        } else {
            break;
        }
        if words.is_empty() && comma && q >= 1 && b[q - 1] == b',' {
            q -= 1;
        }
        let end = q;
        while q > 0 && word_byte(b[q - 1]) {
            q -= 1;
        }
        let raw = &text[q..end];
        // A word opened by punctuation ("(Acme", "“Acme") is the first of the name.
        let trimmed = raw.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '&');
        let opened = trimmed.len() < raw.len();
        let w = trimmed.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '&');
        if w.len() < trimmed.len() || w.is_empty() || ends_sentence(w) {
            break;
        }
        let Some(c) = class(w) else { break };
        // A legal form ends another name ("Koninklijke DSM N.V. and Beter Bed Holding N.V."),
        // but for the first half of a two-word form ("Pty Ltd", "Co. Ltd").
        if !matches!(w, "Pty" | "Co." | "Co" | "CO.")
            && matches!(suffix(w), Some((Suffix::Legal { .. } | Suffix::Glued, _)))
        {
            break;
        }
        // "of" joins a name only after an organisation word ("Bank of America Corp"): a
        // person's name is not taken in ("Jane Doe of Acme Inc.").
        if prev_of && !(REVERSE_HEADS.contains(&w) || WORDS.contains(&w)) {
            break;
        }
        prev_of = w == "of";
        let start = end - trimmed.len();
        words.push((
            start,
            c,
            c == Class::Capital && stop(w),
            w.chars().any(char::is_lowercase),
        ));
        p = start;
        if opened {
            break;
        }
    }
    // Drop leading joiners and ordinary words, and a sentence's first word before a joiner
    // ("Results of Northwind Systems"); the name starts at the first word left.
    loop {
        match words.last() {
            Some(&(_, c, is_stop, _)) if c != Class::Capital || is_stop => {
                words.pop();
            }
            Some(&(start, _, _, _))
                if words.len() >= 2
                    && words[words.len() - 2].1 == Class::Joiner
                    && sentence_start(text, start) =>
            {
                words.pop();
            }
            _ => break,
        }
    }
    let &(start, _, _, _) = words.last()?;
    let lower = words.iter().any(|w| w.3);
    Some((start, lower))
}

/// Whether `text[s..e]` is the only thing on its line but list marks and punctuation: a
/// heading ("## Payment Systems").
fn alone_on_line(text: &str, s: usize, e: usize) -> bool {
    let line_start = text[..s].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[e..].find('\n').map_or(text.len(), |i| e + i);
    let before = text[line_start..s].chars().all(|c| !c.is_alphabetic());
    let after = text[e..line_end].chars().all(|c| !c.is_alphanumeric());
    before && after
}

/// A reverse form whose head word ("University" of "University of Oxford") ends at `e`: its
/// end, when " of " and a capitalised word follow.
fn reverse_end(text: &str, e: usize) -> Option<usize> {
    text.get(e..)?.strip_prefix(" of ")?;
    let b = text.as_bytes();
    let mut p = e + 4;
    let mut end = None;
    let mut words = 0;
    while p < b.len() && words < MAX_WORDS {
        let mut q = p;
        while q < b.len() && word_byte(b[q]) {
            q += 1;
        }
        let w = core(&text[p..q]);
        let bare = w.strip_suffix('.').unwrap_or(w);
        match class(bare) {
            Some(Class::Capital) if !(words == 0 && stop(bare)) => end = Some(p + bare.len()),
            Some(Class::Joiner | Class::Amp) if words > 0 || bare == "the" => {}
            _ => break,
        }
        words += 1;
        // The name goes on only over one space and a whole word.
        if w.len() < q - p || bare.len() < w.len() || q >= b.len() || b[q] != b' ' {
            break;
        }
        p = q + 1;
    }
    end
}

/// Every organisation name in `text`.
pub(super) fn scan(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if !word_byte(c) {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && word_byte(b[i]) {
            i += 1;
        }
        // Only a word starting with a capital can be a suffix, but for `plc`.
        if !(c.is_ascii_uppercase() || c == b'p' || c == b'e' || c == b'g') {
            continue;
        }
        let w = core(&text[s..i]);
        if let Some((kind, len)) = suffix(w) {
            let e = s + len;
            let comma = matches!(kind, Suffix::Legal { .. } | Suffix::Glued);
            let walked = match walk_back(text, s, comma) {
                None if kind == Suffix::Glued => Some((s, true)),
                walked => walked,
            };
            if let Some((start, lower)) = walked {
                let base = match kind {
                    Suffix::Legal { short: true } if !lower => None,
                    Suffix::Legal { short: true } => Some(SHORT_LEGAL),
                    Suffix::Legal { short: false } | Suffix::Glued => Some(LEGAL),
                    Suffix::Word(score) if score <= WORD && alone_on_line(text, start, e) => None,
                    Suffix::Word(score) => Some(score),
                };
                if let Some(base) = base {
                    let score = context::score(text, start, base, ORG_CONTEXT, false);
                    out.push(finding(
                        Kind::Organization,
                        start,
                        e,
                        score,
                        Evidence::Pattern,
                    ));
                }
            }
        }
        if REVERSE_HEADS.contains(&w) {
            if let Some(end) = reverse_end(text, s + w.len()) {
                let start = walk_back(text, s, false).map_or(s, |(start, _)| start);
                let score = context::score(text, start, REVERSE, ORG_CONTEXT, false);
                out.push(finding(
                    Kind::Organization,
                    start,
                    end,
                    score,
                    Evidence::Pattern,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .filter(|f| f.score >= 0.5)
            .map(|f| &text[f.start..f.end])
            .collect()
    }

    fn best(text: &str, name: &str) -> f32 {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .filter(|f| &text[f.start..f.end] == name)
            .map(|f| f.score)
            .fold(0.0, f32::max)
    }

    #[test]
    fn legal_forms_end_a_name() {
        assert_eq!(
            names("Payment to Acme Widgets Inc. is due."),
            ["Acme Widgets Inc."]
        );
        assert_eq!(names("Zscaler Inc reported"), ["Zscaler Inc"]);
        assert_eq!(
            names("invoice from Müller Logistik GmbH today"),
            ["Müller Logistik GmbH"]
        );
        assert_eq!(
            names("Hilton Food Group plc results"),
            ["Hilton Food Group", "Hilton Food Group plc"]
        );
        assert_eq!(names("we paid Acme, Inc. twice"), ["Acme, Inc."]);
        assert_eq!(
            names("Koninklijke DSM N.V. and Beter Bed Holding N.V."),
            [
                "Koninklijke DSM N.V.",
                "Beter Bed Holding",
                "Beter Bed Holding N.V."
            ]
        );
        assert_eq!(names("Johnson & Johnson Ltd"), ["Johnson & Johnson Ltd"]);
        assert_eq!(names("TRADE WORKS Co.Ltd signed"), ["TRADE WORKS Co.Ltd"]);
        assert_eq!(
            names("Blue Lagoon Pty Ltd"),
            ["Blue Lagoon Pty", "Blue Lagoon Pty Ltd"]
        );
        assert_eq!(
            names("Banco Santander S.A. and Telia Company AB"),
            ["Banco Santander S.A.", "Telia Company", "Telia Company AB"]
        );
        assert_eq!(
            names("Berkshire HoldingsInc. filed"),
            ["Berkshire HoldingsInc."]
        );
        assert_eq!(names("Acme Inc.'s CEO"), ["Acme Inc."]);
        assert_eq!(
            names("I worked for CareNetInc. as a nurse"),
            ["CareNetInc."]
        );
    }

    #[test]
    fn organisation_words_end_a_name_with_a_lower_score() {
        assert_eq!(
            names("Results of Northwind Systems improved"),
            ["Northwind Systems"]
        );
        assert!(best("Results: Northwind Systems improved", "Northwind Systems") < 0.7);
        assert!(best("Results: Acme GmbH improved", "Acme GmbH") > 0.8);
        assert_eq!(names("The Ford Foundation funds it"), ["Ford Foundation"]);
        assert_eq!(names("Ford Motor Company"), ["Ford Motor Company"]);
        assert_eq!(
            names("Pacific Assets Trust is listed"),
            ["Pacific Assets Trust"]
        );
    }

    #[test]
    fn reverse_forms_are_found() {
        assert_eq!(
            names("She studied at the University of Oxford."),
            ["University of Oxford"]
        );
        assert_eq!(
            names("a loan from Bank of America today"),
            ["Bank of America"]
        );
        assert_eq!(
            names("the Ministry of Defence said"),
            ["Ministry of Defence"]
        );
        assert_eq!(
            names("the Department of the Interior"),
            ["Department of the Interior"]
        );
        assert_eq!(
            names("Central Bank of Ireland"),
            ["Central Bank", "Central Bank of Ireland"]
        );
        assert!(names("the Department of finance").is_empty());
    }

    #[test]
    fn context_words_raise_the_score() {
        let plain = best("Northwind Systems is hiring", "Northwind Systems");
        let raised = best("She works at Northwind Systems", "Northwind Systems");
        assert!(raised > plain + 0.3, "{plain} {raised}");
    }

    #[test]
    fn a_suffix_alone_is_not_a_name() {
        assert!(names("I called the bank and the group about it").is_empty());
        assert!(names("Group 4 results are in").is_empty());
        assert!(names("Systems are down since noon").is_empty());
        assert!(names("Our Group grew. We Systems people").is_empty());
        assert!(names("The Bank said no").is_empty());
        assert!(names("a bank, a trust, some partners").is_empty());
    }

    #[test]
    fn headings_and_capitals_are_not_names() {
        assert!(names("## Payment Systems\n\nText here").is_empty());
        assert!(names("Storage Solutions\n- item").is_empty());
        assert!(names("PAID AS AGREED; SHIP SA").is_empty());
        assert!(names("Welcome to Paris. Group meetings").is_empty());
    }

    #[test]
    fn sentence_ends_and_punctuation_bound_the_name() {
        assert_eq!(names("We met in Paris. Acme Group won"), ["Acme Group"]);
        assert_eq!(names("John Smith, Acme Ltd, London"), ["Acme Ltd"]);
        assert_eq!(names("Jane Doe of Acme Inc. spoke"), ["Acme Inc."]);
        assert_eq!(
            names("a loan from Bank of America Corp"),
            ["Bank of America Corp", "Bank of America Corp"]
        );
        assert_eq!(names("Call (Acme Holdings) now"), ["Acme Holdings"]);
        assert_eq!(names("He joined Acme Group."), ["Acme Group"]);
    }
}
