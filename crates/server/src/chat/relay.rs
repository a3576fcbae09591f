//! The SSE relay: forwards an answer's chunks as server-sent events and, when the stream ends
//! (or the client goes away), writes what it saw to the request's outcome once.

use std::time::Instant;

use axum::body::Bytes;
use futures::StreamExt;
use switchyard_api::{ChatChunk, Usage};
use switchyard_providers::{ChunkStream, ProviderError};

use super::execute::Spent;
use crate::config::Price;
use crate::record::OutcomeSlot;

/// Forwards upstream chunks as server-sent events, noting usage and time to first token.
pub struct Relay {
    chunks: ChunkStream,
    slot: OutcomeSlot,
    /// The answering model's price, for the usage the stream reports.
    price: Price,
    /// When the first model was asked, and what earlier cascade rungs cost.
    spent: Spent,
    include_usage: bool,
    /// The `switchyard` extension (the sources), sent in a last chunk of its own.
    extension: Option<serde_json::Value>,
    /// The stream's id, creation time and model, for that last chunk.
    identity: Option<(String, u64, String)>,
    ttft_ms: Option<f64>,
    usage: Option<Usage>,
    /// Tokens forwarded so far (a logprobs entry each, else one per non-empty delta): the
    /// completion's size when the stream ends before its usage came, as it does when the
    /// client goes away mid-answer (usage comes in a stream's last chunk).
    forwarded_tokens: u32,
    /// How the stream ended: `None` while it runs (a drop then is a disconnect), else the
    /// failure it ended with, if any.
    ended: Option<Option<(String, u16)>>,
}

enum Step {
    Open(Box<Relay>),
    Closed,
}

fn event(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Relay {
    pub fn new(
        chunks: ChunkStream,
        slot: OutcomeSlot,
        price: Price,
        spent: Spent,
        include_usage: bool,
        extension: Option<serde_json::Value>,
    ) -> Relay {
        Relay {
            chunks,
            slot,
            price,
            spent,
            include_usage,
            extension,
            identity: None,
            ttft_ms: None,
            usage: None,
            forwarded_tokens: 0,
            ended: None,
        }
    }

    pub fn into_sse(self) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        futures::stream::unfold(Step::Open(Box::new(self)), |step| async move {
            let Step::Open(mut relay) = step else {
                return None;
            };
            loop {
                match relay.chunks.next().await {
                    Some(Ok(chunk)) => {
                        if let Some(bytes) = relay.forward(chunk) {
                            return Some((Ok(bytes), Step::Open(relay)));
                        }
                    }
                    Some(Err(e)) => return Some((Ok(relay.fail(&e)), Step::Closed)),
                    None => return Some((Ok(relay.finish()), Step::Closed)),
                }
            }
        })
    }

    /// This answer's usage: as the stream reported it, else the tokens forwarded so far
    /// (the prompt's size is then unknown).
    fn usage(&self) -> Usage {
        self.usage
            .unwrap_or_else(|| Usage::new(0, self.forwarded_tokens))
    }

    /// The request's cost so far: earlier rungs' and this answer's.
    fn cost(&self) -> f64 {
        let u = self.usage();
        self.spent.cost_usd + self.price.cost(u.prompt_tokens, u.completion_tokens)
    }

    /// The event for one upstream chunk, or none when the client did not ask for it.
    fn forward(&mut self, mut chunk: ChatChunk) -> Option<Bytes> {
        if self.ttft_ms.is_none() && !chunk.choices.is_empty() {
            self.ttft_ms = Some(ms_since(self.spent.since));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        if self.identity.is_none() {
            self.identity = Some((chunk.id.clone(), chunk.created, chunk.model.clone()));
        }
        self.forwarded_tokens += chunk
            .choices
            .iter()
            .map(
                |c| match c.logprobs.as_ref().and_then(|l| l.content.as_ref()) {
                    Some(tokens) => tokens.len() as u32,
                    None => u32::from(
                        c.delta.content.as_ref().is_some_and(|t| !t.is_empty())
                            || c.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty()),
                    ),
                },
            )
            .sum::<u32>();
        if !self.include_usage {
            if chunk.choices.is_empty() {
                return None;
            }
            chunk.usage = None;
        }
        serde_json::to_vec(&chunk).ok().map(|b| event(&b))
    }

    fn fail(&mut self, e: &ProviderError) -> Bytes {
        let err = e.to_api_error();
        self.ended = Some(Some((err.message.clone(), err.status())));
        event(&serde_json::to_vec(&err.body()).unwrap_or_default())
    }

    fn finish(&mut self) -> Bytes {
        self.ended = Some(None);
        let mut out = Vec::new();
        if let Some(extension) = self.extension.take() {
            let (id, created, model) = self.identity.take().unwrap_or_default();
            // A chunk without choices, as the usage chunk is: clients read its extra field.
            let last = serde_json::json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "switchyard": extension,
            });
            out.extend_from_slice(&event(&serde_json::to_vec(&last).unwrap_or_default()));
        }
        // An SSE comment: clients ignore it, people and scripts reading the stream see the cost.
        out.extend_from_slice(
            format!(
                ": x-switchyard-cost-usd={:.8}\n\ndata: [DONE]\n\n",
                self.cost()
            )
            .as_bytes(),
        );
        Bytes::from(out)
    }
}

/// However the stream ended, what it saw goes to the outcome here, in one write.
impl Drop for Relay {
    fn drop(&mut self) {
        let failure = match &self.ended {
            None => Some((
                format!(
                    "client disconnected before the stream ended{}",
                    if self.usage.is_none() {
                        "; usage counted from the tokens forwarded, prompt tokens unknown"
                    } else {
                        ""
                    }
                ),
                499,
            )),
            Some(failure) => failure.clone(),
        };
        let cost = self.cost();
        let usage = self.usage();
        let mut o = self.slot.lock();
        o.upstream_ms = Some(ms_since(self.spent.since));
        o.ttft_ms = self.ttft_ms;
        o.prompt_tokens = usage.prompt_tokens;
        o.completion_tokens = usage.completion_tokens;
        o.cost_usd = cost;
        // A cascade rung kept on its prefix streams on: its cost is this answer's, known now.
        if let Some(rung) = o.steps.last_mut().filter(|r| r.cost_usd.is_none()) {
            rung.cost_usd = Some(cost - self.spent.cost_usd);
        }
        if let Some((message, status)) = failure {
            o.error = Some(message);
            o.failed_status = Some(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::{Delta, Usage};

    fn chunk(text: &str) -> ChatChunk {
        ChatChunk::delta(
            "s",
            1,
            "m",
            Delta {
                role: None,
                content: Some(text.into()),
                tool_calls: None,
            },
        )
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 10,
            completion_tokens: 2,
            total_tokens: 12,
            ..Usage::default()
        }
    }

    /// A relay over `items` after earlier rungs spent `spent_usd`, at 1 and 2 USD per prompt
    /// and completion token, and the slot it writes the outcome to.
    fn relay_of(
        items: Vec<Result<ChatChunk, ProviderError>>,
        spent_usd: f64,
        include_usage: bool,
    ) -> (Relay, OutcomeSlot) {
        let slot = OutcomeSlot::default();
        let spent = Spent {
            since: Instant::now(),
            cost_usd: spent_usd,
        };
        let price = Price {
            input: 1e6,
            output: 2e6,
        };
        let chunks: ChunkStream = Box::pin(futures::stream::iter(items));
        let relay = Relay::new(chunks, slot.clone(), price, spent, include_usage, None);
        (relay, slot)
    }

    /// The whole SSE body a relay sends and the outcome it leaves.
    async fn relay(
        items: Vec<Result<ChatChunk, ProviderError>>,
        include_usage: bool,
    ) -> (String, crate::record::Outcome) {
        let (relay, slot) = relay_of(items, 0.5, include_usage);
        let body: Vec<Bytes> = relay
            .into_sse()
            .map(|b| b.unwrap_or_default())
            .collect()
            .await;
        let text = body.iter().map(|b| String::from_utf8_lossy(b)).collect();
        let outcome = slot.lock().clone();
        (text, outcome)
    }

    #[tokio::test]
    async fn a_finished_stream_notes_its_usage_and_cost_once_and_trails_the_cost() {
        let (text, o) = relay(
            vec![Ok(chunk("a")), Ok(ChatChunk::usage("s", 1, "m", usage()))],
            false,
        )
        .await;
        // Earlier rungs' 0.5 plus 10 prompt tokens at 1 and 2 completion tokens at 2 USD each.
        assert!(
            text.ends_with(": x-switchyard-cost-usd=14.50000000\n\ndata: [DONE]\n\n"),
            "{text}"
        );
        assert!(
            !text.contains("prompt_tokens"),
            "usage not asked for: {text}"
        );
        assert_eq!((o.prompt_tokens, o.completion_tokens), (10, 2));
        assert_eq!(o.cost_usd, 14.5);
        assert!(o.ttft_ms.is_some() && o.upstream_ms.is_some());
        assert_eq!((o.error, o.failed_status), (None, None));

        let (text, _) = relay(
            vec![Ok(chunk("a")), Ok(ChatChunk::usage("s", 1, "m", usage()))],
            true,
        )
        .await;
        assert!(text.contains("\"prompt_tokens\":10"), "{text}");
    }

    #[tokio::test]
    async fn a_stream_that_breaks_ends_with_an_error_event_and_the_outcome_says_so() {
        let broken = ProviderError::StreamBroken {
            upstream: "u".into(),
            message: "reset".into(),
        };
        let (text, o) = relay(vec![Ok(chunk("a")), Err(broken)], true).await;
        assert!(text.contains("data: {\"error\""), "{text}");
        assert!(!text.contains("[DONE]"));
        assert_eq!(o.failed_status, Some(502));
        assert!(o.error.unwrap().contains("reset"));
    }

    #[test]
    fn a_relay_dropped_before_the_end_is_a_client_disconnect() {
        let (relay, slot) = relay_of(Vec::new(), 0.0, false);
        drop(relay);
        assert_eq!(slot.lock().failed_status, Some(499));
    }

    #[tokio::test]
    async fn a_client_that_leaves_mid_stream_is_billed_for_the_tokens_it_was_sent() {
        // A local stream: its usage would come only after the last token.
        let items = vec![
            Ok(chunk("")),
            Ok(chunk("Hel")),
            Ok(chunk("lo")),
            Ok(chunk(" there")),
            Ok(ChatChunk::usage("s", 1, "m", usage())),
        ];
        let (relay, slot) = relay_of(items, 0.0, false);
        let sse = relay.into_sse();
        let got: Vec<_> = sse.take(3).collect().await;
        assert_eq!(got.len(), 3);
        let o = slot.lock().clone();
        assert_eq!(o.failed_status, Some(499));
        assert_eq!((o.prompt_tokens, o.completion_tokens), (0, 2));
        assert_eq!(o.cost_usd, 4.0, "two forwarded tokens at 2 USD each");
        assert!(o.error.unwrap().contains("prompt tokens unknown"));
    }
}
