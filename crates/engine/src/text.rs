//! Turning token bytes into text that is safe to stream: whole UTF-8 characters only, and never
//! any part of a stop sequence.

/// Accumulates token bytes and hands out only complete UTF-8 characters, because one character
/// (an emoji, a CJK ideograph) is often split across several tokens.
#[derive(Default)]
pub(crate) struct Utf8Buffer {
    pending: Vec<u8>,
}

impl Utf8Buffer {
    /// Appends `bytes` and returns the text that is now complete. Invalid bytes (a model can
    /// produce them) become U+FFFD rather than being held forever.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` guarantees this prefix is valid UTF-8, so nothing is lost.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Whatever is left when generation ends, with an incomplete character replaced.
    pub(crate) fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Released {
    /// Text that can be sent to the client now.
    pub text: String,
    /// A stop sequence was found; `text` ends right before it and generation must end.
    pub stopped: bool,
}

/// Holds back text only while it could still be the beginning of a stop sequence.
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> Released {
        self.held.push_str(text);
        // Earlier text was only released when no stop could start in it, so searching the held
        // part is enough.
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            self.held.truncate(at);
            return Released {
                text: std::mem::take(&mut self.held),
                stopped: true,
            };
        }
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let release = self.held.len() - keep;
        let rest = self.held.split_off(release);
        Released {
            text: std::mem::replace(&mut self.held, rest),
            stopped: false,
        }
    }

    /// Text still held when generation ends for another reason: it was not a stop after all.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length in bytes of the longest proper prefix of `stop` that `text` ends with.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .filter(|&k| stop.is_char_boundary(k))
        .find(|&k| text.ends_with(&stop[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_characters_split_across_tokens_are_held_until_complete() {
        let mut b = Utf8Buffer::default();
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(b.push(b"a"), "a");
        assert_eq!(b.push(&euro[..1]), "");
        assert_eq!(b.push(&euro[1..2]), "");
        assert_eq!(b.push(&[euro[2], b'b']), "€b");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut b = Utf8Buffer::default();
        assert_eq!(b.push(&[0xff, b'x']), "\u{fffd}x");
        assert_eq!(b.push(&[0xe2]), "");
        assert_eq!(b.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_sequence_is_cut_and_not_emitted() {
        let mut m = StopMatcher::new(&["END".to_string()]);
        assert_eq!(
            m.push("hello E"),
            Released {
                text: "hello ".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("NDING"),
            Released {
                text: "".into(),
                stopped: true
            }
        );
    }

    #[test]
    fn held_prefix_is_released_when_it_turns_out_not_to_be_a_stop() {
        let mut m = StopMatcher::new(&["\n\n".to_string()]);
        assert_eq!(m.push("a\n").text, "a");
        assert_eq!(m.push("b").text, "\nb");
        assert_eq!(m.push("\n").text, "");
        assert_eq!(m.finish(), "\n");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let mut m = StopMatcher::new(&["yz".to_string(), "x".to_string(), String::new()]);
        let r = m.push("abxyz");
        assert_eq!(r.text, "ab");
        assert!(r.stopped);
    }

    #[test]
    fn without_stops_everything_is_released() {
        let mut m = StopMatcher::new(&[]);
        assert_eq!(m.push("anything").text, "anything");
    }
}
