//! Answers between their two shapes: a stream assembled into one whole answer, a whole answer
//! replayed as the chunks a stream would have carried, and the logprobs the cascade asked for
//! cut back to what the client asked for.

use switchyard_api::{
    ChatChunk, ChatRequest, ChatResponse, Delta, Logprobs, Role, TokenLogprob, Usage,
};
use switchyard_providers::ChunkStream;

/// The answer a stream carried, as one response: its first choice's content, tool calls,
/// logprobs and finish reason, and the usage.
pub fn assemble(chunks: Vec<ChatChunk>) -> ChatResponse {
    let (id, created, model) = chunks.first().map_or_else(
        || (String::new(), 0, String::new()),
        |c| (c.id.clone(), c.created, c.model.clone()),
    );
    let mut content = String::new();
    let mut logprobs: Vec<TokenLogprob> = Vec::new();
    let mut tool_calls: Vec<serde_json::Value> = Vec::new();
    let mut finish = None;
    let mut usage: Option<Usage> = None;
    for chunk in chunks {
        usage = chunk.usage.or(usage);
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            content.push_str(choice.delta.content.as_deref().unwrap_or(""));
            if let Some(lps) = choice.logprobs.and_then(|l| l.content) {
                logprobs.extend(lps);
            }
            for call in choice.delta.tool_calls.into_iter().flatten() {
                merge_tool_call(&mut tool_calls, call);
            }
            finish = choice.finish_reason.or(finish);
        }
    }
    let finish = finish.unwrap_or_else(|| "stop".to_owned());
    let mut resp = ChatResponse::text(&id, created, &model, content, &finish, Usage::default());
    resp.usage = usage;
    let choice = &mut resp.choices[0];
    if !logprobs.is_empty() {
        choice.logprobs = Some(Logprobs {
            content: Some(logprobs),
        });
    }
    if !tool_calls.is_empty() {
        choice.message.tool_calls = Some(tool_calls);
    }
    resp
}

/// Streamed tool calls come in pieces sharing an `index`: the first names the call, the rest
/// add to its `function.arguments`.
fn merge_tool_call(calls: &mut Vec<serde_json::Value>, piece: serde_json::Value) {
    let index = piece.get("index").cloned();
    let Some(call) = calls
        .iter_mut()
        .find(|c| index.is_some() && c.get("index") == index.as_ref())
    else {
        calls.push(piece);
        return;
    };
    let more = piece
        .pointer("/function/arguments")
        .and_then(|a| a.as_str())
        .unwrap_or("");
    if let Some(args) = call.pointer_mut("/function/arguments") {
        let joined = format!("{}{more}", args.as_str().unwrap_or(""));
        *args = serde_json::Value::String(joined);
    }
}

/// A held answer as the chunks a stream would have carried.
pub fn replay(resp: ChatResponse) -> ChunkStream {
    let (id, created, model) = (resp.id.as_str(), resp.created, resp.model.as_str());
    let mut chunks = Vec::new();
    if let Some(choice) = resp.choices.first() {
        let mut c = ChatChunk::delta(
            id,
            created,
            model,
            Delta {
                role: Some(Role::Assistant),
                content: choice.message.content.clone(),
                tool_calls: choice.message.tool_calls.clone(),
            },
        );
        c.choices[0].logprobs = choice.logprobs.clone();
        chunks.push(Ok(c));
        let reason = choice.finish_reason.as_deref().unwrap_or("stop");
        chunks.push(Ok(ChatChunk::finish(id, created, model, reason)));
    }
    if let Some(u) = resp.usage {
        chunks.push(Ok(ChatChunk::usage(id, created, model, u)));
    }
    Box::pin(futures::stream::iter(chunks))
}

/// A copy of `req` that asks for the logprobs the cascade judges by (at least 5 alternatives
/// a token, for the entropy).
pub fn with_logprobs(req: &ChatRequest) -> ChatRequest {
    let mut probe = req.clone();
    probe.logprobs = Some(true);
    probe.top_logprobs = Some(req.top_logprobs.unwrap_or(0).max(5));
    probe
}

/// The cascade asked for logprobs to judge the answer; give the client only what it asked for.
pub fn fit_logprobs(resp: &mut ChatResponse, req: &ChatRequest) {
    let wanted = Wanted::of(req);
    for choice in &mut resp.choices {
        wanted.fit(&mut choice.logprobs);
    }
}

/// The same for a stream's chunks.
pub fn fit_chunk_logprobs(chunks: ChunkStream, req: &ChatRequest) -> ChunkStream {
    use futures::StreamExt;
    let wanted = Wanted::of(req);
    Box::pin(chunks.map(move |chunk| {
        chunk.map(|mut chunk| {
            for choice in &mut chunk.choices {
                wanted.fit(&mut choice.logprobs);
            }
            chunk
        })
    }))
}

/// Whether the client asked for logprobs, and for how many alternatives per token.
#[derive(Clone, Copy)]
struct Wanted {
    logprobs: bool,
    top: usize,
}

impl Wanted {
    fn of(req: &ChatRequest) -> Wanted {
        Wanted {
            logprobs: req.logprobs == Some(true),
            top: usize::from(req.top_logprobs.unwrap_or(0)),
        }
    }

    fn fit(self, logprobs: &mut Option<Logprobs>) {
        if !self.logprobs {
            *logprobs = None;
        } else if let Some(tokens) = logprobs.as_mut().and_then(|l| l.content.as_mut()) {
            for t in tokens {
                t.top_logprobs.truncate(self.top);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;
    use switchyard_api::TopLogprob;

    fn delta(content: Option<&str>, tool_calls: Option<Vec<serde_json::Value>>) -> ChatChunk {
        ChatChunk::delta(
            "id-1",
            7,
            "tiny",
            Delta {
                role: None,
                content: content.map(str::to_owned),
                tool_calls,
            },
        )
    }

    fn token(text: &str, logprob: f32, top: usize) -> TokenLogprob {
        TokenLogprob {
            token: text.into(),
            logprob,
            bytes: None,
            top_logprobs: (0..top)
                .map(|i| TopLogprob {
                    token: format!("alt{i}"),
                    logprob: -(i as f32),
                    bytes: None,
                })
                .collect(),
        }
    }

    fn usage(prompt: u32, completion: u32) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        }
    }

    #[test]
    fn streamed_tool_call_pieces_merge_into_whole_calls_by_index() {
        let chunks = vec![
            delta(
                None,
                Some(vec![json!({"index": 0, "id": "call_a", "type": "function",
                                  "function": {"name": "lookup", "arguments": ""}})]),
            ),
            delta(
                None,
                Some(vec![
                    json!({"index": 0, "function": {"arguments": "{\"city\":"}}),
                ]),
            ),
            delta(
                None,
                Some(vec![
                    json!({"index": 1, "id": "call_b", "type": "function",
                           "function": {"name": "time", "arguments": "{}"}}),
                    json!({"index": 0, "function": {"arguments": "\"Paris\"}"}}),
                ]),
            ),
            ChatChunk::finish("id-1", 7, "tiny", "tool_calls"),
        ];
        let resp = assemble(chunks);
        let choice = &resp.choices[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            choice.message.tool_calls,
            Some(vec![
                json!({"index": 0, "id": "call_a", "type": "function",
                       "function": {"name": "lookup", "arguments": "{\"city\":\"Paris\"}"}}),
                json!({"index": 1, "id": "call_b", "type": "function",
                       "function": {"name": "time", "arguments": "{}"}}),
            ])
        );
    }

    #[test]
    fn a_stream_assembles_into_its_content_logprobs_finish_and_usage() {
        let mut first = delta(Some("Par"), None);
        first.choices[0].logprobs = Some(Logprobs {
            content: Some(vec![token("Par", -0.1, 2)]),
        });
        let mut second = delta(Some("is"), None);
        second.choices[0].logprobs = Some(Logprobs {
            content: Some(vec![token("is", -0.2, 2)]),
        });
        let chunks = vec![
            first,
            second,
            ChatChunk::finish("id-1", 7, "tiny", "length"),
            ChatChunk::usage("id-1", 7, "tiny", usage(5, 2)),
        ];
        let resp = assemble(chunks);
        assert_eq!(
            (resp.id.as_str(), resp.created, resp.model.as_str()),
            ("id-1", 7, "tiny")
        );
        let choice = &resp.choices[0];
        assert_eq!(choice.message.content.as_deref(), Some("Paris"));
        assert_eq!(choice.finish_reason.as_deref(), Some("length"));
        let tokens = choice.logprobs.as_ref().unwrap().content.as_ref().unwrap();
        assert_eq!(
            tokens.iter().map(|t| t.token.as_str()).collect::<Vec<_>>(),
            ["Par", "is"]
        );
        assert_eq!(resp.usage, Some(usage(5, 2)));
        assert_eq!(choice.message.tool_calls, None);
    }

    #[tokio::test]
    async fn a_replayed_answer_assembles_back_into_the_same_answer() {
        let mut resp = ChatResponse::text("id-2", 9, "tiny", "Paris.".into(), "stop", usage(4, 2));
        resp.choices[0].logprobs = Some(Logprobs {
            content: Some(vec![token("Paris", -0.3, 1), token(".", -0.01, 1)]),
        });
        resp.choices[0].message.tool_calls = Some(vec![
            json!({"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}),
        ]);
        let chunks: Vec<ChatChunk> = replay(resp.clone()).map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.len(), 3, "content, finish, usage");
        assert_eq!(assemble(chunks), resp);
    }

    #[test]
    fn logprobs_are_dropped_unless_asked_for_and_cut_to_the_alternatives_asked_for() {
        let answer = || {
            let mut r = ChatResponse::text("i", 0, "m", "x".into(), "stop", usage(1, 1));
            r.choices[0].logprobs = Some(Logprobs {
                content: Some(vec![token("x", -0.5, 5)]),
            });
            r
        };
        let mut req: ChatRequest =
            serde_json::from_value(json!({"model": "auto", "messages": []})).unwrap();
        let mut resp = answer();
        fit_logprobs(&mut resp, &req);
        assert!(resp.choices[0].logprobs.is_none());

        req.logprobs = Some(true);
        req.top_logprobs = Some(2);
        let probe = with_logprobs(&req);
        assert_eq!((probe.logprobs, probe.top_logprobs), (Some(true), Some(5)));
        let mut resp = answer();
        fit_logprobs(&mut resp, &req);
        let tokens = resp.choices[0]
            .logprobs
            .as_ref()
            .unwrap()
            .content
            .as_ref()
            .unwrap();
        assert_eq!(tokens[0].top_logprobs.len(), 2);
    }
}
