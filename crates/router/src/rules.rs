//! Rule conditions: keywords, regexes, length, turns, tools, code, user, metadata, personal
//! data. Compiled once; matching is a few scans of the conversation text.

use std::collections::BTreeMap;

use aho_corasick::AhoCorasick;
use regex::RegexSet;
use serde::Deserialize;

use crate::Signals;

/// When a route applies; every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Any of these words or phrases, case-insensitive.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Any of these regular expressions.
    #[serde(default)]
    pub regex: Vec<String>,
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub min_turns: Option<usize>,
    pub max_turns: Option<usize>,
    /// Whether the request carries tools (or tool calls).
    pub tools: Option<bool>,
    /// Whether the conversation contains code.
    pub code: Option<bool>,
    /// The request's `user` is one of these.
    #[serde(default)]
    pub users: Vec<String>,
    /// Request headers with these exact values; names match in any case, as HTTP's do.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether the guard found personal data.
    pub pii: Option<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("route `{route}`: {message}")]
pub struct RuleError {
    pub route: String,
    pub message: String,
}

/// A compiled [`When`].
#[derive(Debug, Clone)]
pub struct Rule {
    when: When,
    keywords: Option<AhoCorasick>,
    regex: Option<RegexSet>,
}

impl Rule {
    pub fn compile(route: &str, mut when: When) -> Result<Rule, RuleError> {
        // Signals carry header names lowercased, as HTTP/2 sends them.
        when.headers = std::mem::take(&mut when.headers)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let err = |message: String| RuleError {
            route: route.to_owned(),
            message,
        };
        let keywords = if when.keywords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&when.keywords)
                    .map_err(|e| err(format!("keywords: {e}")))?,
            )
        };
        let regex = if when.regex.is_empty() {
            None
        } else {
            Some(RegexSet::new(&when.regex).map_err(|e| err(format!("regex: {e}")))?)
        };
        Ok(Rule {
            when,
            keywords,
            regex,
        })
    }

    /// What matched, in words, or `None` when the rule does not apply.
    pub fn check(&self, s: &Signals) -> Option<String> {
        let w = &self.when;
        let mut why = Vec::new();
        if let Some(k) = &self.keywords {
            let m = k.find(&s.conversation)?;
            why.push(format!(
                "keyword \"{}\"",
                w.keywords[m.pattern().as_usize()]
            ));
        }
        if let Some(r) = &self.regex {
            let i = r.matches(&s.conversation).into_iter().next()?;
            why.push(format!("regex /{}/", w.regex[i]));
        }
        if let Some(min) = w.min_chars {
            (s.chars >= min).then_some(())?;
            why.push(format!("{} chars >= {min}", s.chars));
        }
        if let Some(max) = w.max_chars {
            (s.chars <= max).then_some(())?;
            why.push(format!("{} chars <= {max}", s.chars));
        }
        if let Some(min) = w.min_turns {
            (s.turns >= min).then_some(())?;
            why.push(format!("{} turns >= {min}", s.turns));
        }
        if let Some(max) = w.max_turns {
            (s.turns <= max).then_some(())?;
            why.push(format!("{} turns <= {max}", s.turns));
        }
        if let Some(tools) = w.tools {
            (s.has_tools == tools).then_some(())?;
            why.push(if tools { "tools" } else { "no tools" }.into());
        }
        if let Some(code) = w.code {
            (s.has_code == code).then_some(())?;
            why.push(if code { "code" } else { "no code" }.into());
        }
        if !w.users.is_empty() {
            let user = s.user.as_deref()?;
            w.users.iter().any(|u| u == user).then_some(())?;
            why.push(format!("user {user}"));
        }
        for (name, value) in &w.headers {
            (s.metadata.get(name) == Some(value)).then_some(())?;
            why.push(format!("{name}: {value}"));
        }
        if let Some(pii) = w.pii {
            (s.pii.is_empty() != pii).then_some(())?;
            why.push(if pii {
                format!("personal data ({})", s.pii.join(", "))
            } else {
                "no personal data".into()
            });
        }
        Some(why.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(text: &str) -> Signals {
        Signals {
            conversation: format!("user: {text}\n"),
            chars: text.len(),
            turns: 1,
            ..Default::default()
        }
    }

    fn rule(toml_when: When) -> Rule {
        Rule::compile("r", toml_when).unwrap()
    }

    #[test]
    fn every_condition_must_hold_and_the_match_explains_itself() {
        let r = rule(When {
            keywords: vec!["refund".into(), "chargeback".into()],
            max_chars: Some(100),
            ..Default::default()
        });
        assert_eq!(
            r.check(&signals("I want a REFUND now")).as_deref(),
            Some("keyword \"refund\", 19 chars <= 100")
        );
        assert_eq!(r.check(&signals("hello")), None);
        assert_eq!(
            r.check(&signals(&format!("refund {}", "x".repeat(200)))),
            None
        );
    }

    #[test]
    fn regexes_users_headers_and_personal_data() {
        let r = rule(When {
            regex: vec![r"\bIBAN\b".into()],
            users: vec!["alice".into()],
            headers: [("x-team".to_owned(), "legal".to_owned())].into(),
            pii: Some(true),
            ..Default::default()
        });
        let mut s = signals("check this IBAN please");
        assert_eq!(r.check(&s), None, "no user, header or pii yet");
        s.user = Some("alice".into());
        s.metadata.insert("x-team".into(), "legal".into());
        s.pii = vec!["iban".into()];
        assert_eq!(
            r.check(&s).as_deref(),
            Some("regex /\\bIBAN\\b/, user alice, x-team: legal, personal data (iban)")
        );
    }

    #[test]
    fn a_bad_regex_names_its_route() {
        let err = Rule::compile(
            "broken",
            When {
                regex: vec!["(".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.route, "broken");
        assert!(err.message.starts_with("regex"));
    }
}
