//! How an answer is judged: a workload row's `"grade"`.

use regex::Regex;
use serde::Deserialize;

/// A row's label, as written in the workload.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GradeSpec {
    Exact {
        answer: String,
    },
    Contains {
        answer: OneOrMany,
    },
    Choice {
        answer: String,
    },
    Number {
        answer: f64,
        #[serde(default)]
        tolerance: f64,
    },
    Regex {
        answer: String,
    },
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A compiled label: scores an answer 1 (right) or 0 (wrong), or not at all (`none`).
#[derive(Debug, Clone)]
pub enum Grade {
    /// Equal after trimming, case folding and dropping closing punctuation and quotes.
    Exact(String),
    /// Holds any of these, case folded.
    Contains(Vec<String>),
    /// A multiple-choice letter, upper case.
    Choice(char),
    /// The answer's final number is within `tolerance` of this.
    Number {
        answer: f64,
        tolerance: f64,
    },
    Regex(Regex),
    /// Unlabelled: only cost and latency are reported.
    None,
}

impl Grade {
    /// Compiles a label; the error says what is wrong with it.
    pub fn compile(spec: GradeSpec) -> Result<Grade, String> {
        Ok(match spec {
            GradeSpec::Exact { answer } => Grade::Exact(normalize(&answer)),
            GradeSpec::Contains { answer } => {
                let all = match answer {
                    OneOrMany::One(a) => vec![a],
                    OneOrMany::Many(a) => a,
                };
                let all: Vec<String> = all
                    .iter()
                    .map(|a| a.trim().to_lowercase())
                    .filter(|a| !a.is_empty())
                    .collect();
                if all.is_empty() {
                    return Err("a `contains` grade needs a non-empty `answer`".into());
                }
                Grade::Contains(all)
            }
            GradeSpec::Choice { answer } => {
                let mut letters = answer.trim().chars();
                match (letters.next(), letters.next()) {
                    (Some(c), None) if c.is_ascii_alphabetic() => {
                        Grade::Choice(c.to_ascii_uppercase())
                    }
                    _ => {
                        return Err(format!(
                        "a `choice` grade's `answer` is one letter, such as \"B\", not {answer:?}"
                    ))
                    }
                }
            }
            GradeSpec::Number { answer, tolerance } => {
                if !answer.is_finite() || tolerance.is_nan() || tolerance < 0.0 {
                    return Err(
                        "a `number` grade needs a finite `answer` and a `tolerance` >= 0".into(),
                    );
                }
                Grade::Number { answer, tolerance }
            }
            GradeSpec::Regex { answer } => Grade::Regex(
                Regex::new(&answer)
                    .map_err(|e| format!("the `regex` grade does not compile: {e}"))?,
            ),
            GradeSpec::None => Grade::None,
        })
    }

    /// 1 for a right answer, 0 for a wrong one, `None` when unlabelled.
    pub fn score(&self, answer: &str) -> Option<f64> {
        let right = match self {
            Grade::Exact(want) => normalize(answer) == *want,
            Grade::Contains(any) => {
                let lower = answer.to_lowercase();
                any.iter().any(|a| lower.contains(a.as_str()))
            }
            Grade::Choice(want) => choice(answer) == Some(*want),
            Grade::Number {
                answer: want,
                tolerance,
            } => final_number(answer)
                .is_some_and(|n| (n - want).abs() <= tolerance.max(1e-9 * want.abs().max(1.0))),
            Grade::Regex(re) => re.is_match(answer),
            Grade::None => return None,
        };
        Some(if right { 1.0 } else { 0.0 })
    }
}

fn normalize(text: &str) -> String {
    text.trim()
        .trim_end_matches(['.', '!', '?'])
        .trim_matches(['"', '\'', '`', '*'])
        .trim()
        .to_lowercase()
}

/// The letter a multiple-choice answer gives: "B", "B)", "(B) ...", "**B.** ...", "The answer
/// is B", "Answer: B". A sentence opening with the article "A" is not the letter A.
fn choice(answer: &str) -> Option<char> {
    static PATTERNS: std::sync::OnceLock<[Regex; 3]> = std::sync::OnceLock::new();
    let [stated, opening, bracketed] = PATTERNS.get_or_init(|| {
        [
            Regex::new(r"(?i)\banswer\s*(?:is|:)?\s*(?:option\s+)?[(*\[]*([A-J])\b").ok(),
            Regex::new(r"(?i)^[\s(*\[]*([A-J])(?:\s*$|[).:\]*,]|\s+-)").ok(),
            Regex::new(r"\(([A-J])\)").ok(),
        ]
        .map(|r| r.unwrap_or_else(|| unreachable!("the choice patterns are valid")))
    });
    [stated, opening, bracketed]
        .iter()
        .find_map(|re| re.captures(answer.trim()))
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().chars().next())
        .map(|c| c.to_ascii_uppercase())
}

/// The number an answer ends on: the first after its last "answer"/"####"/"=", or else its
/// last number ("1,234" and "$5.50" read as numbers).
fn final_number(answer: &str) -> Option<f64> {
    static NUMBER: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let re = NUMBER
        .get_or_init(|| Regex::new(r"-?\d[\d,]*(?:\.\d+)?").ok())
        .as_ref()?;
    let lower = answer.to_lowercase();
    let marker = ["answer", "####", "="]
        .iter()
        .filter_map(|m| lower.rfind(m).map(|at| at + m.len()))
        .max();
    let parse = |m: regex::Match| m.as_str().replace(',', "").parse::<f64>().ok();
    marker
        .and_then(|at| re.find(&lower[at..]).and_then(parse))
        .or_else(|| re.find_iter(&lower).last().and_then(parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade(json: &str) -> Grade {
        Grade::compile(serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn exact_ignores_case_space_and_closing_punctuation() {
        let g = grade(r#"{"kind": "exact", "answer": "Paris"}"#);
        assert_eq!(g.score("  paris.\n"), Some(1.0));
        assert_eq!(g.score("\"Paris\""), Some(1.0));
        assert_eq!(g.score("Paris, France"), Some(0.0));
    }

    #[test]
    fn contains_takes_any_of_a_list() {
        let g = grade(r#"{"kind": "contains", "answer": ["30 days", "thirty days"]}"#);
        assert_eq!(g.score("You can return it within Thirty Days."), Some(1.0));
        assert_eq!(g.score("Returns are not accepted."), Some(0.0));
        assert!(Grade::compile(
            serde_json::from_str(r#"{"kind": "contains", "answer": []}"#).unwrap()
        )
        .is_err());
    }

    #[test]
    fn choice_reads_the_letter_however_it_is_written() {
        let g = grade(r#"{"kind": "choice", "answer": "b"}"#);
        for right in [
            "B",
            "B)",
            "(B) Rome",
            "**B.** Rome",
            "The answer is B.",
            "Answer: B",
            "b",
            "I think the answer is (B).",
        ] {
            assert_eq!(g.score(right), Some(1.0), "{right}");
        }
        for wrong in ["A whale is a mammal", "C", "A) Paris", "Because of Bob", ""] {
            assert_eq!(g.score(wrong), Some(0.0), "{wrong}");
        }
    }

    #[test]
    fn number_takes_the_stated_or_last_number_within_tolerance() {
        let g = grade(r#"{"kind": "number", "answer": 1234}"#);
        assert_eq!(g.score("6 boxes of 200 plus 34 is 1,234 apples"), Some(1.0));
        assert_eq!(
            g.score("The answer is 1234. (I checked it 3 times)"),
            Some(1.0)
        );
        assert_eq!(g.score("12 * 100 = 1234"), Some(1.0));
        assert_eq!(g.score("1234 is close, but 1235"), Some(0.0));
        assert_eq!(g.score("no idea"), Some(0.0));
        let g = grade(r#"{"kind": "number", "answer": 3.5, "tolerance": 0.01}"#);
        assert_eq!(g.score("It costs $3.50."), Some(1.0));
        assert_eq!(g.score("-3.5"), Some(0.0));
    }

    #[test]
    fn regex_matches_and_none_is_unlabelled() {
        let g = grade(r#"{"kind": "regex", "answer": "(?i)def \\w+\\("}"#);
        assert_eq!(g.score("```python\nDEF add(a, b):"), Some(1.0));
        assert_eq!(g.score("add = lambda a, b: a + b"), Some(0.0));
        assert_eq!(grade(r#"{"kind": "none"}"#).score("anything"), None);
        let bad =
            Grade::compile(serde_json::from_str(r#"{"kind": "regex", "answer": "("}"#).unwrap());
        assert!(bad.unwrap_err().contains("does not compile"));
    }
}
