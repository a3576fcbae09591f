//! Blocks to chunks: a chunk never spans two sections, holds whole sentences where it can, fits
//! a token budget with its heading path, and repeats the end of the chunk before it.

use crate::parse::Block;

/// How chunks are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most tokens of a chunk's heading path and text together.
    pub tokens: usize,
    /// Tokens of the previous chunk's end that a chunk of the same section starts with.
    pub overlap: usize,
}

impl Default for Budget {
    /// 128 word pieces, the length all-MiniLM-L6-v2 was trained on, with 24 of overlap.
    fn default() -> Self {
        Budget {
            tokens: 128,
            overlap: 24,
        }
    }
}

/// A piece of a document as it is stored, embedded and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The section's headings, outermost first, joined by " > ".
    pub heading: String,
    pub text: String,
}

impl Chunk {
    /// What is embedded and keyword-indexed: the heading path, then the text.
    pub fn indexed_text(&self) -> String {
        indexed_text(&self.heading, &self.text)
    }
}

pub(crate) fn indexed_text(heading: &str, text: &str) -> String {
    if heading.is_empty() {
        text.to_owned()
    } else {
        format!("{heading}\n{text}")
    }
}

/// A sentence (or a run of words of a sentence too long for a chunk), and whether it ends its
/// block (a paragraph, item or row).
struct Piece {
    text: String,
    tokens: usize,
    ends_block: bool,
}

/// Cut `blocks` into chunks; `count` says how many tokens a text is.
pub fn chunks(blocks: &[Block], budget: Budget, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < blocks.len() {
        let headings = &blocks[start].headings;
        let end = blocks[start..]
            .iter()
            .position(|b| &b.headings != headings)
            .map_or(blocks.len(), |n| start + n);
        let heading = headings.join(" > ");
        // The heading is embedded with every chunk, but never leaves it less than half the budget.
        let room = budget
            .tokens
            .saturating_sub(count(&heading) + 1)
            .max(budget.tokens / 2)
            .max(1);
        let pieces = pieces(&blocks[start..end], room, count);
        section(
            &heading,
            &pieces,
            room,
            budget.overlap.min(room / 2),
            &mut out,
        );
        start = end;
    }
    out
}

fn pieces(blocks: &[Block], room: usize, count: &dyn Fn(&str) -> usize) -> Vec<Piece> {
    let mut out = Vec::new();
    for block in blocks {
        let sentences = sentences(&block.text);
        let last = sentences.len().saturating_sub(1);
        for (i, sentence) in sentences.into_iter().enumerate() {
            let tokens = count(sentence);
            if tokens <= room {
                out.push(Piece {
                    text: sentence.to_owned(),
                    tokens,
                    ends_block: i == last,
                });
                continue;
            }
            let words: Vec<&str> = sentence.split_whitespace().collect();
            // Words per window, from the sentence's own ratio of tokens to words.
            let per = (words.len() * room / tokens).max(1);
            let windows: Vec<&[&str]> = words.chunks(per).collect();
            let last_window = windows.len().saturating_sub(1);
            for (j, window) in windows.into_iter().enumerate() {
                let text = window.join(" ");
                out.push(Piece {
                    tokens: count(&text),
                    text,
                    ends_block: i == last && j == last_window,
                });
            }
        }
    }
    out
}

/// Sentences end at `.`, `!` or `?` followed by whitespace.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace)
        {
            out.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out.retain(|s| !s.is_empty());
    out
}

fn section(heading: &str, pieces: &[Piece], room: usize, overlap: usize, out: &mut Vec<Chunk>) {
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        let mut tokens = pieces[first].tokens;
        while last + 1 < pieces.len() && tokens + pieces[last + 1].tokens <= room {
            last += 1;
            tokens += pieces[last].tokens;
        }
        out.push(Chunk {
            heading: heading.to_owned(),
            text: join(&pieces[first..=last]),
        });
        if last + 1 >= pieces.len() {
            break;
        }
        // Step back over whole pieces that fit the overlap, never to where this chunk began.
        let mut next = last + 1;
        let mut repeated = 0;
        while next > first + 1 && repeated + pieces[next - 1].tokens <= overlap {
            next -= 1;
            repeated += pieces[next].tokens;
        }
        first = next;
    }
}

/// Pieces of one block joined by spaces, blocks by newlines.
fn join(pieces: &[Piece]) -> String {
    let mut text = String::new();
    for piece in pieces {
        text.push_str(&piece.text);
        text.push(if piece.ends_block { '\n' } else { ' ' });
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn block(headings: &[&str], text: &str) -> Block {
        Block {
            headings: headings.iter().map(|h| h.to_string()).collect(),
            text: text.into(),
        }
    }

    #[test]
    fn a_chunk_never_spans_two_sections_and_keeps_its_heading_path() {
        let blocks = [
            block(&["Billing", "Late payment"], "A fee applies."),
            block(&["Billing", "Late payment"], "It is waived once."),
            block(&["Billing", "Refunds"], "Refunds take 5 days."),
        ];
        let budget = Budget {
            tokens: 100,
            overlap: 0,
        };
        assert_eq!(
            chunks(&blocks, budget, &words),
            vec![
                Chunk {
                    heading: "Billing > Late payment".into(),
                    text: "A fee applies.\nIt is waived once.".into()
                },
                Chunk {
                    heading: "Billing > Refunds".into(),
                    text: "Refunds take 5 days.".into()
                },
            ]
        );
    }

    #[test]
    fn a_long_section_is_cut_at_sentences_within_the_budget_with_overlap() {
        let text = "One two three four. Five six seven eight. Nine ten eleven twelve. Thirteen fourteen fifteen sixteen.";
        let budget = Budget {
            tokens: 10,
            overlap: 4,
        };
        let got = chunks(&[block(&["H"], text)], budget, &words);
        for chunk in &got {
            assert!(words(&chunk.indexed_text()) <= 10, "{chunk:?}");
        }
        let texts: Vec<&str> = got.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "One two three four. Five six seven eight.",
                "Five six seven eight. Nine ten eleven twelve.",
                "Nine ten eleven twelve. Thirteen fourteen fifteen sixteen.",
            ]
        );
    }

    #[test]
    fn a_sentence_longer_than_the_budget_is_cut_into_word_windows() {
        let text = (1..=25)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let budget = Budget {
            tokens: 10,
            overlap: 0,
        };
        let got = chunks(&[block(&[], &text)], budget, &words);
        assert!(got.len() >= 3, "{got:?}");
        assert!(got.iter().all(|c| words(&c.text) <= 10));
        let rejoined: Vec<String> = got.iter().map(|c| c.text.clone()).collect();
        assert_eq!(rejoined.join(" "), text);
    }
}
