//! Restoring answers: a whole response, or a stream whose placeholders may be split across
//! chunks. A stream's text is held back only while its tail could still become a placeholder,
//! per choice and per field; everything else passes at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use switchyard_api::{ChatChunk, ChatResponse};

use crate::vault::{Escape, Vault};
use crate::Kind;

/// The longest placeholder a model can write back, `<URL_CREDENTIALS_999999>`, in bytes.
const LONGEST: usize = 32;

/// Restores one field's text as it arrives in fragments.
#[derive(Debug)]
pub struct Restorer {
    vault: Arc<Vault>,
    escape: Escape,
    labels: Vec<&'static str>,
    held: String,
}

impl Restorer {
    pub fn new(vault: Arc<Vault>, escape: Escape) -> Restorer {
        let labels = vault.kinds().map(Kind::label).collect();
        Restorer {
            vault,
            escape,
            labels,
            held: String::new(),
        }
    }

    /// The restored text that can be let out once `fragment` has arrived.
    pub fn push(&mut self, fragment: &str) -> String {
        self.held.push_str(fragment);
        let cut = self.growing_start().unwrap_or(self.held.len());
        let out = self.vault.restore(&self.held[..cut], self.escape);
        self.held.drain(..cut);
        out
    }

    /// Whatever is still held, restored: the field has ended.
    pub fn finish(&mut self) -> String {
        let out = self.vault.restore(&self.held, self.escape);
        self.held.clear();
        out
    }

    /// Where a tail of the held text starts that could still grow into a placeholder.
    fn growing_start(&self) -> Option<usize> {
        let text = self.held.as_str();
        let from = text.len().saturating_sub(LONGEST);
        let mut prev: Option<char> = text[..from].chars().next_back();
        for (i, c) in text[from..].char_indices() {
            let at = from + i;
            let starts_word = !prev.is_some_and(is_word);
            if (c == '<' || starts_word) && self.could_grow(&text[at..]) {
                return Some(at);
            }
            prev = Some(c);
        }
        None
    }

    /// `tail` is an unfinished placeholder of a kind in the vault: `<`, `<EMA`, `EMAIL_`,
    /// `<EMAIL_1` (more digits or a `>` may follow).
    fn could_grow(&self, tail: &str) -> bool {
        let rest = tail.strip_prefix('<').unwrap_or(tail);
        if rest.is_empty() {
            return tail == "<";
        }
        if !rest.chars().all(is_word) {
            return false;
        }
        let upper = rest.to_ascii_uppercase();
        self.labels.iter().any(|label| {
            if label.len() >= upper.len() {
                return label.starts_with(&upper);
            }
            upper
                .strip_prefix(label)
                .and_then(|r| r.strip_prefix('_'))
                .is_some_and(|digits| {
                    digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit())
                })
        })
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Restores a whole answer: each choice's content and tool-call arguments.
pub fn restore_response(vault: &Vault, resp: &mut ChatResponse) {
    if vault.is_empty() {
        return;
    }
    for choice in &mut resp.choices {
        if let Some(content) = &mut choice.message.content {
            *content = vault.restore(content, Escape::None);
        }
        for call in choice.message.tool_calls.iter_mut().flatten() {
            if let Some(args) = arguments(call) {
                *args = vault.restore(args, Escape::Json);
            }
        }
    }
}

/// A tool call's `function.arguments` string.
fn arguments(call: &mut Value) -> Option<&mut String> {
    match call.get_mut("function")?.get_mut("arguments")? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Which text of a streamed choice a restorer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Content,
    /// The arguments of the tool call with this `index`.
    Arguments(u64),
}

/// Restores a stream of chunks, holding back per choice and per field only what could still
/// become a placeholder.
#[derive(Debug)]
pub struct StreamRestorer {
    vault: Arc<Vault>,
    fields: BTreeMap<(u32, Field), Restorer>,
    /// The last chunk seen, to address a closing chunk with what is still held.
    last: Option<ChatChunk>,
}

impl StreamRestorer {
    pub fn new(vault: Arc<Vault>) -> StreamRestorer {
        StreamRestorer {
            vault,
            fields: BTreeMap::new(),
            last: None,
        }
    }

    /// The chunk with its placeholders restored; a choice that finishes in it gets whatever
    /// its fields still held.
    pub fn chunk(&mut self, mut chunk: ChatChunk) -> ChatChunk {
        if self.vault.is_empty() {
            return chunk;
        }
        for choice in &mut chunk.choices {
            let index = choice.index;
            if let Some(content) = &mut choice.delta.content {
                *content = self.field(index, Field::Content).push(content);
            }
            for call in choice.delta.tool_calls.iter_mut().flatten() {
                let Some(i) = call.get("index").and_then(Value::as_u64) else {
                    continue;
                };
                if let Some(args) = arguments(call) {
                    *args = self.field(index, Field::Arguments(i)).push(args);
                }
            }
            if choice.finish_reason.is_some() {
                self.flush_choice(index, &mut choice.delta);
            }
        }
        self.last = Some(ChatChunk {
            choices: Vec::new(),
            usage: None,
            ..chunk.clone()
        });
        chunk
    }

    /// A last chunk with what is still held, when the stream ended with text held back (no
    /// choice finished).
    pub fn finish(&mut self) -> Option<ChatChunk> {
        let indexes: Vec<u32> = self.fields.keys().map(|(i, _)| *i).collect();
        let mut chunk = self.last.take()?;
        for index in indexes {
            let mut delta = switchyard_api::Delta::default();
            self.flush_choice(index, &mut delta);
            if delta.content.is_some() || delta.tool_calls.is_some() {
                chunk.choices.push(switchyard_api::ChunkChoice {
                    index,
                    delta,
                    finish_reason: None,
                    logprobs: None,
                });
            }
        }
        (!chunk.choices.is_empty()).then_some(chunk)
    }

    fn field(&mut self, choice: u32, field: Field) -> &mut Restorer {
        let escape = match field {
            Field::Content => Escape::None,
            Field::Arguments(_) => Escape::Json,
        };
        let vault = &self.vault;
        self.fields
            .entry((choice, field))
            .or_insert_with(|| Restorer::new(vault.clone(), escape))
    }

    /// Moves what a choice's fields still hold into `delta`, and forgets the choice.
    fn flush_choice(&mut self, index: u32, delta: &mut switchyard_api::Delta) {
        let keys: Vec<(u32, Field)> = self
            .fields
            .range((index, Field::Content)..=(index, Field::Arguments(u64::MAX)))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(mut restorer) = self.fields.remove(&key) else {
                continue;
            };
            let rest = restorer.finish();
            if rest.is_empty() {
                continue;
            }
            match key.1 {
                Field::Content => delta
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(&rest),
                Field::Arguments(i) => {
                    let calls = delta.tool_calls.get_or_insert_with(Vec::new);
                    let existing = calls
                        .iter_mut()
                        .find(|c| c.get("index").and_then(Value::as_u64) == Some(i));
                    match existing.and_then(arguments) {
                        Some(args) => args.push_str(&rest),
                        None => calls.push(serde_json::json!({
                            "index": i,
                            "function": {"arguments": rest},
                        })),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Evidence, Finding};
    use switchyard_api::{ChunkChoice, Delta};

    fn vault_with(values: &[(Kind, &str)]) -> Arc<Vault> {
        let mut vault = Vault::default();
        for (kind, value) in values {
            vault.redact(
                value,
                &[Finding {
                    kind: *kind,
                    start: 0,
                    end: value.len(),
                    score: 1.0,
                    evidence: Evidence::Pattern,
                }],
            );
        }
        Arc::new(vault)
    }

    fn vault() -> Arc<Vault> {
        vault_with(&[
            (Kind::Email, "ann@example.com"),
            (Kind::Person, "Ann Lee"),
            (Kind::CreditCard, "4242 4242 4242 4242"),
        ])
    }

    const ANSWER: &str =
        "Dear <PERSON_1>, we wrote to <EMAIL_1> about card <CREDIT_CARD_1>. EMAIL_1!";
    const RESTORED: &str =
        "Dear Ann Lee, we wrote to ann@example.com about card 4242 4242 4242 4242. ann@example.com!";

    #[test]
    fn a_placeholder_split_at_any_cut_point_is_restored() {
        for cut in 1..ANSWER.len() {
            let mut r = Restorer::new(vault(), Escape::None);
            let mut out = r.push(&ANSWER[..cut]);
            out += &r.push(&ANSWER[cut..]);
            out += &r.finish();
            assert_eq!(out, RESTORED, "cut at {cut}");
        }
    }

    #[test]
    fn an_answer_streamed_a_byte_at_a_time_is_restored() {
        let mut r = Restorer::new(vault(), Escape::None);
        let mut out = String::new();
        for i in 0..ANSWER.len() {
            out += &r.push(&ANSWER[i..i + 1]);
        }
        out += &r.finish();
        assert_eq!(out, RESTORED);
    }

    #[test]
    fn only_what_could_still_be_a_placeholder_is_held_back() {
        let mut r = Restorer::new(vault(), Escape::None);
        assert_eq!(r.push("Hello there"), "Hello there");
        assert_eq!(r.push(" dear <PER"), " dear ");
        assert_eq!(r.push("SON_1"), "");
        assert_eq!(r.push("> and"), "Ann Lee and");
        assert_eq!(r.push(" 3 < 4"), " 3 < 4");
        assert_eq!(r.push(" <b>"), " <b>", "no kind starts with B");
        assert_eq!(r.push(" Emergency"), " Emergency");
        assert_eq!(r.finish(), "");
    }

    #[test]
    fn a_placeholder_the_vault_never_gave_stays_as_written() {
        let mut r = Restorer::new(vault(), Escape::None);
        let mut out = r.push("<EMAIL_2> and <EMAIL_1");
        out += &r.push("0>");
        out += &r.finish();
        assert_eq!(out, "<EMAIL_2> and <EMAIL_10>");
    }

    fn chunk(choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: "c".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices,
            usage: None,
        }
    }

    fn content(index: u32, text: &str, finish: Option<&str>) -> ChunkChoice {
        ChunkChoice {
            index,
            delta: Delta {
                content: Some(text.into()),
                ..Delta::default()
            },
            finish_reason: finish.map(str::to_owned),
            logprobs: None,
        }
    }

    fn streamed(chunks: Vec<ChatChunk>) -> (BTreeMap<u32, String>, BTreeMap<(u32, u64), String>) {
        let mut restorer = StreamRestorer::new(vault());
        let mut out = Vec::new();
        for c in chunks {
            out.push(restorer.chunk(c));
        }
        out.extend(restorer.finish());
        let mut text = BTreeMap::<u32, String>::new();
        let mut args = BTreeMap::<(u32, u64), String>::new();
        for c in out {
            for ch in c.choices {
                if let Some(t) = ch.delta.content {
                    text.entry(ch.index).or_default().push_str(&t);
                }
                for call in ch.delta.tool_calls.into_iter().flatten() {
                    let i = call["index"].as_u64().unwrap();
                    let a = call["function"]["arguments"].as_str().unwrap_or_default();
                    args.entry((ch.index, i)).or_default().push_str(a);
                }
            }
        }
        (text, args)
    }

    #[test]
    fn several_choices_are_restored_apart() {
        let (text, _) = streamed(vec![
            chunk(vec![
                content(0, "To <EMA", None),
                content(1, "Hi <PERS", None),
            ]),
            chunk(vec![
                content(1, "ON_1>", Some("stop")),
                content(0, "IL_1", None),
            ]),
            chunk(vec![content(0, ">.", Some("stop"))]),
        ]);
        assert_eq!(text[&0], "To ann@example.com.");
        assert_eq!(text[&1], "Hi Ann Lee");
    }

    #[test]
    fn a_choice_that_finishes_gets_what_was_held() {
        let (text, _) = streamed(vec![
            chunk(vec![content(0, "Yours, <PERSON_1", None)]),
            chunk(vec![content(0, "", Some("stop"))]),
        ]);
        assert_eq!(text[&0], "Yours, Ann Lee");
    }

    #[test]
    fn a_stream_that_ends_without_finishing_is_flushed() {
        let (text, _) = streamed(vec![chunk(vec![content(0, "Yours, PERSON_1", None)])]);
        assert_eq!(text[&0], "Yours, Ann Lee");
    }

    #[test]
    fn tool_call_arguments_are_restored_per_call_and_stay_json() {
        let vault = vault_with(&[(Kind::Person, r#"Ann "AL" Lee"#), (Kind::Email, "a@b.io")]);
        let call =
            |i: u64, args: &str| serde_json::json!({"index": i, "function": {"arguments": args}});
        let choice = |calls: Vec<Value>, finish: Option<&str>| ChunkChoice {
            index: 0,
            delta: Delta {
                tool_calls: Some(calls),
                ..Delta::default()
            },
            finish_reason: finish.map(str::to_owned),
            logprobs: None,
        };
        let mut restorer = StreamRestorer::new(vault);
        let chunks = vec![
            chunk(vec![choice(vec![call(0, r#"{"name": "<PER"#)], None)]),
            chunk(vec![choice(vec![call(1, r#"{"to": "<EMAIL"#)], None)]),
            chunk(vec![choice(vec![call(0, r#"SON_1>"}"#)], None)]),
            chunk(vec![choice(vec![call(1, r#"_1>"}"#)], Some("tool_calls"))]),
        ];
        let mut args: BTreeMap<u64, String> = BTreeMap::new();
        for c in chunks {
            for ch in restorer.chunk(c).choices {
                for call in ch.delta.tool_calls.into_iter().flatten() {
                    let i = call["index"].as_u64().unwrap();
                    args.entry(i)
                        .or_default()
                        .push_str(call["function"]["arguments"].as_str().unwrap());
                }
            }
        }
        let first: Value = serde_json::from_str(&args[&0]).unwrap();
        let second: Value = serde_json::from_str(&args[&1]).unwrap();
        assert_eq!(first["name"], r#"Ann "AL" Lee"#);
        assert_eq!(second["to"], "a@b.io");
    }

    #[test]
    fn a_whole_answer_is_restored_in_content_and_tool_calls() {
        let mut resp: ChatResponse = serde_json::from_value(serde_json::json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Sent to <EMAIL_1>.",
                "tool_calls": [{"id": "t", "type": "function",
                    "function": {"name": "send", "arguments": "{\"to\": \"<PERSON_1>\"}"}}]
            }}]
        }))
        .unwrap();
        restore_response(&vault(), &mut resp);
        let m = &resp.choices[0].message;
        assert_eq!(m.content.as_deref(), Some("Sent to ann@example.com."));
        let args = m.tool_calls.as_ref().unwrap()[0]["function"]["arguments"]
            .as_str()
            .unwrap();
        assert_eq!(args, r#"{"to": "Ann Lee"}"#);
    }
}
