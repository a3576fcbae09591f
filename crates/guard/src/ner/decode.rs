//! From per-token label probabilities to entity spans: BIO decoding over word pieces, spans
//! widened to whole words, a name's given name and surname (and an address's parts) joined.

use crate::{Evidence, Finding, Kind};

/// What one of the model's labels means: part `part` (an index into the model's entity types,
/// GIVEN_NAME, STREET_NAME, …) of a [`Kind`], beginning an entity (`B-`) or inside one (`I-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tag {
    pub kind: Kind,
    pub part: usize,
    pub begin: bool,
}

/// One token of the text: its byte span and the pre-tokenizer word it belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub start: usize,
    pub end: usize,
    pub word: Option<u32>,
}

/// An entity being decoded: its tokens `first..=last` and the sum of their probabilities of
/// being `kind` (a merged span keeps the sums of its parts).
struct Span {
    kind: Kind,
    part: usize,
    first: usize,
    last: usize,
    score_sum: f32,
    scored: usize,
}

/// Decodes `probs` (`tokens.len()` rows of `tags.len()` softmax probabilities, in token order)
/// into findings in `text`. `tags[c]` is label `c`'s meaning, `None` for `O` and for labels with
/// no [`Kind`].
///
/// A token's label is its most probable one. `B-X` starts an entity, `I-X` continues an `X`
/// entity right before it or starts one (after `O` or another type); a word piece joins the
/// entity its word's earlier pieces are in, whatever its own label; an entity starting inside a
/// word is widened to the word's start. Then consecutive names are joined when only whitespace
/// separates them (a given name and a surname), and consecutive address parts when whitespace
/// and at most one comma do (number, street, city, post code). The score is the mean, over the
/// entity's tokens, of each token's probability of the entity's kind (all labels of that kind
/// summed), so a token split between `B-` and `I-` still counts.
pub(super) fn decode(
    text: &str,
    tokens: &[Token],
    probs: &[f32],
    tags: &[Option<Tag>],
) -> Vec<Finding> {
    let classes = tags.len();
    if classes == 0 || probs.len() != tokens.len() * classes {
        return Vec::new();
    }
    let kind_prob = |t: usize, kind: Kind| -> f32 {
        let row = &probs[t * classes..(t + 1) * classes];
        row.iter()
            .zip(tags)
            .filter(|(_, tag)| tag.is_some_and(|tag| tag.kind == kind))
            .map(|(p, _)| p)
            .sum()
    };

    let mut spans: Vec<Span> = Vec::new();
    let mut open = false;
    for (t, token) in tokens.iter().enumerate() {
        let same_word = t > 0 && token.word.is_some() && token.word == tokens[t - 1].word;
        if open && same_word {
            if let Some(span) = spans.last_mut() {
                span.last = t;
            }
            continue;
        }
        let row = &probs[t * classes..(t + 1) * classes];
        let best = argmax(row);
        let Some(tag) = tags[best] else {
            open = false;
            continue;
        };
        match spans.last_mut() {
            Some(span) if open && !tag.begin && span.part == tag.part => span.last = t,
            _ => spans.push(Span {
                kind: tag.kind,
                part: tag.part,
                first: t,
                last: t,
                score_sum: 0.0,
                scored: 0,
            }),
        }
        open = true;
    }

    for span in &mut spans {
        while span.first > 0
            && tokens[span.first].word.is_some()
            && tokens[span.first - 1].word == tokens[span.first].word
        {
            span.first -= 1;
        }
        span.score_sum = (span.first..=span.last)
            .map(|t| kind_prob(t, span.kind))
            .sum();
        span.scored = span.last - span.first + 1;
    }

    let mut findings: Vec<Finding> = Vec::with_capacity(spans.len());
    let mut sums: Vec<(f32, usize)> = Vec::with_capacity(spans.len());
    for span in spans {
        let Some((start, end)) = byte_span(text, &tokens[span.first..=span.last]) else {
            continue;
        };
        if let (Some(prev), Some(sum)) = (findings.last_mut(), sums.last_mut()) {
            if prev.kind == span.kind
                && prev.end <= start
                && joins(span.kind, &text[prev.end..start])
            {
                prev.end = end;
                sum.0 += span.score_sum;
                sum.1 += span.scored;
                continue;
            }
        }
        findings.push(Finding {
            kind: span.kind,
            start,
            end,
            score: 0.0,
            evidence: Evidence::Model,
        });
        sums.push((span.score_sum, span.scored));
    }
    for (finding, (sum, n)) in findings.iter_mut().zip(sums) {
        finding.score = (sum / n.max(1) as f32).clamp(0.0, 1.0);
    }
    findings
}

/// Whether two findings of `kind` with `gap` between them are one value.
fn joins(kind: Kind, gap: &str) -> bool {
    let gap = gap.trim();
    match kind {
        Kind::Person => gap.is_empty(),
        Kind::Address => gap.is_empty() || gap == ",",
        _ => false,
    }
}

/// The byte span the tokens cover (zero-width tokens aside), widened to `char` boundaries.
fn byte_span(text: &str, tokens: &[Token]) -> Option<(usize, usize)> {
    let covered = tokens
        .iter()
        .filter(|t| t.start < t.end && t.end <= text.len());
    let start = covered.clone().map(|t| t.start).min()?;
    let end = covered.map(|t| t.end).max()?;
    let start = (0..=start).rev().find(|&i| text.is_char_boundary(i))?;
    let end = (end..=text.len()).find(|&i| text.is_char_boundary(i))?;
    Some((start, end))
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 {
                (i, p)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Labels: 0 O, 1 B-GIVEN, 2 I-GIVEN, 3 B-SURNAME, 4 B-STREET, 5 I-STREET, 6 B-CITY, 7 B-EMAIL.
    fn tags() -> Vec<Option<Tag>> {
        let tag = |kind, part, begin| Some(Tag { kind, part, begin });
        vec![
            None,
            tag(Kind::Person, 0, true),
            tag(Kind::Person, 0, false),
            tag(Kind::Person, 1, true),
            tag(Kind::Address, 2, true),
            tag(Kind::Address, 2, false),
            tag(Kind::Address, 3, true),
            tag(Kind::Email, 4, true),
        ]
    }

    /// Tokens at the given byte spans (word ids given), each labelled `label` with probability
    /// 0.9 and the rest spread over label 0.
    fn run(text: &str, tokens: &[(usize, usize, u32, usize)]) -> Vec<Finding> {
        let tags = tags();
        let mut probs = Vec::new();
        for &(_, _, _, label) in tokens {
            let mut row = vec![0.0; tags.len()];
            row[label] = 0.9;
            row[0] += 0.1;
            probs.extend(row);
        }
        let tokens: Vec<Token> = tokens
            .iter()
            .map(|&(start, end, word, _)| Token {
                start,
                end,
                word: Some(word),
            })
            .collect();
        decode(text, &tokens, &probs, &tags)
    }

    fn spans(found: &[Finding]) -> Vec<(Kind, usize, usize)> {
        found.iter().map(|f| (f.kind, f.start, f.end)).collect()
    }

    #[test]
    fn word_pieces_a_given_name_and_a_surname_make_one_person() {
        // "hi Johnny Smith": "john" "##ny" (B then stray B on the piece) "smith" B-SURNAME.
        let found = run(
            "hi Johnny Smith",
            &[(0, 2, 0, 0), (3, 7, 1, 1), (7, 9, 1, 1), (10, 15, 2, 3)],
        );
        assert_eq!(spans(&found), vec![(Kind::Person, 3, 15)]);
        assert!((found[0].score - 0.9).abs() < 1e-6);
        assert_eq!(found[0].evidence, Evidence::Model);
    }

    #[test]
    fn an_inside_label_after_o_starts_an_entity_and_a_span_widens_to_its_word() {
        // "at Elmstreet": "at" O, "elm" O, "##street" I-STREET.
        let found = run("at Elmstreet", &[(0, 2, 0, 0), (3, 6, 1, 0), (6, 12, 1, 5)]);
        assert_eq!(spans(&found), vec![(Kind::Address, 3, 12)]);
        // The widened-over piece counts with its own (low) address probability.
        assert!((found[0].score - 0.45).abs() < 1e-6);
    }

    #[test]
    fn address_parts_join_over_a_comma_but_emails_and_separate_names_do_not() {
        let text = "Main Street, Leeds a@b c@d Ann and Bo";
        let found = run(
            text,
            &[
                (0, 4, 0, 4),
                (5, 11, 1, 5),
                (11, 12, 2, 0),
                (13, 18, 3, 6),
                (19, 22, 4, 7),
                (23, 26, 5, 7),
                (27, 30, 6, 1),
                (31, 34, 7, 0),
                (35, 37, 8, 1),
            ],
        );
        assert_eq!(
            spans(&found),
            vec![
                (Kind::Address, 0, 18),
                (Kind::Email, 19, 22),
                (Kind::Email, 23, 26),
                (Kind::Person, 27, 30),
                (Kind::Person, 35, 37),
            ]
        );
    }

    #[test]
    fn spans_land_on_char_boundaries() {
        // A token whose offsets fall inside "é" (bytes 1..3) is widened to the whole char.
        let found = run("Ré", &[(0, 2, 0, 1)]);
        assert_eq!(spans(&found), vec![(Kind::Person, 0, 3)]);
    }
}
