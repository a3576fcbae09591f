//! The cascade: each rung but the last answers with logprobs, and its answer is kept only when
//! its calibrated confidence reaches the threshold; otherwise the next rung is asked.
//!
//! With a calibration fitted on whole answers, a rung answers in full and a streamed request is
//! held until it is judged (the handler replays it as chunks). With one fitted on the first K
//! tokens (`prefix_tokens`), a rung streams and is judged on its first K tokens
//! ([`judge_prefix`]). The last rung answers with its fallbacks, streaming live.

use futures::StreamExt;
use switchyard_api::{ChatChunk, ChatResponse, StreamOptions, TokenLogprob};
use switchyard_providers::{ChunkStream, ProviderError};
use switchyard_router::confidence::Calibration;
use switchyard_router::logged::{Rung, Step};

use super::assemble::{assemble, fit_chunk_logprobs, fit_logprobs, with_logprobs};
use super::execute::{one_rung, Answer, Answered, Delivery, Spent, Trail};
use super::fallbacks::not_configured;
use crate::error::ErrorResponse;
use crate::gateway::{Gateway, Model};
use crate::guard::Outbound;

pub async fn run<'g>(
    gw: &'g Gateway,
    ladder: &[String],
    threshold: f64,
    outbound: &Outbound,
    delivery: Delivery,
    trail: &mut Trail,
) -> Result<Answered<'g>, ErrorResponse> {
    let mut spent = Spent::nothing();
    let Some((last, earlier)) = ladder.split_last() else {
        return Err(ErrorResponse(not_configured("")));
    };
    for name in earlier {
        let Some(model) = gw.models.get(name) else {
            continue;
        };
        if !outbound.admits(model) {
            trail.skipped(name);
            continue;
        }
        let judge = Judge {
            model,
            calibration: &gw.calibration,
            threshold,
        };
        let kept = match gw.calibration.prefix_tokens {
            Some(k) => judge.prefix(k, outbound, delivery, &mut spent, trail).await,
            None => judge.whole(outbound, &mut spent, trail).await,
        };
        if let Some(answered) = kept {
            return Ok(answered);
        }
    }
    one_rung(gw, last, outbound, delivery, spent, trail).await
}

/// One cascade rung being judged.
struct Judge<'g> {
    model: &'g Model,
    calibration: &'g Calibration,
    threshold: f64,
}

/// A rung's verdict: kept when its confidence reaches the threshold, or when it gave no
/// logprobs to judge.
fn verdict(confidence: Option<f64>, threshold: f64) -> Step {
    match confidence {
        Some(p) => Step::Judged {
            confidence: p,
            threshold,
            kept: p >= threshold,
        },
        None => Step::Unjudged,
    }
}

impl<'g> Judge<'g> {
    /// Notes the step in the trail; says whether the rung's answer is kept.
    fn record(&self, step: Step, cost_usd: Option<f64>, trail: &mut Trail) -> bool {
        let name = &self.model.name;
        if let Step::Judged { confidence, .. } = step {
            trail
                .scores
                .push((format!("confidence.{name}"), confidence));
        }
        trail.note(&format!("; {}", step.describe(name)));
        let kept = step.kept();
        if kept {
            trail.model.clone_from(name);
        }
        trail.steps.push(Rung {
            model: name.clone(),
            step,
            cost_usd,
        });
        kept
    }

    /// Notes a rung that failed to answer; the cascade goes on up the ladder.
    fn failed(&self, e: &ProviderError, cost_usd: f64, trail: &mut Trail) {
        tracing::warn!(model = %self.model.name, error = %e, "cascade rung failed");
        self.record(Step::Failed, Some(cost_usd), trail);
    }

    /// A rung answering in full, then judged on its whole answer.
    async fn whole(
        &self,
        outbound: &Outbound,
        spent: &mut Spent,
        trail: &mut Trail,
    ) -> Option<Answered<'g>> {
        let req = outbound.original();
        let probe = outbound.map(|r| {
            let mut probe = with_logprobs(r);
            probe.stream = None;
            probe.stream_options = None;
            probe
        });
        let mut resp = match probe.complete(self.model).await {
            Ok(resp) => resp,
            Err(e) => {
                self.failed(&e, 0.0, trail);
                return None;
            }
        };
        let before = *spent;
        spent.cost_usd = before.with(self.model, resp.usage.unwrap_or_default());
        let step = verdict(whole_confidence(self.calibration, &resp), self.threshold);
        if !self.record(step, Some(spent.cost_usd - before.cost_usd), trail) {
            return None;
        }
        fit_logprobs(&mut resp, req);
        Some(Answered {
            answer: Answer::Whole(resp),
            model: self.model,
            spent: before,
        })
    }

    /// A rung judged on the first `k` tokens of its stream (the calibration was fitted on
    /// prefixes of that length). The rung streams with logprobs and usage; its chunks are held
    /// until `k` content tokens carried logprobs or the stream ended, and those tokens are
    /// judged. Kept: a streamed request gets the held chunks and then the rest of the live
    /// stream, a whole one the answer assembled from the chunks. Escalated: the stream is
    /// dropped, which stops the rung's generation, and `None` sends the cascade to the next
    /// rung (as does a failure).
    async fn prefix(
        &self,
        k: usize,
        outbound: &Outbound,
        delivery: Delivery,
        spent: &mut Spent,
        trail: &mut Trail,
    ) -> Option<Answered<'g>> {
        let req = outbound.original();
        let probe = outbound.map(|r| {
            let mut probe = with_logprobs(r);
            probe.stream = Some(true);
            probe.stream_options = Some(StreamOptions {
                include_usage: true,
            });
            probe
        });
        let price = self.model.price;
        let mut chunks = match probe.stream(self.model).await {
            Ok(chunks) => chunks,
            Err(e) => {
                self.failed(&e, 0.0, trail);
                return None;
            }
        };
        let read = match Prefix::read(&mut chunks, k).await {
            Ok(read) => read,
            Err((e, tokens)) => {
                let cost = price.cost(0, tokens as u32);
                spent.cost_usd += cost;
                self.failed(&e, cost, trail);
                return None;
            }
        };
        let step = verdict(
            self.calibration.confidence(&read.tokens, read.cut),
            self.threshold,
        );
        if !step.kept() {
            drop(chunks);
            let cost = read.cost(price);
            spent.cost_usd += cost;
            self.record(step, Some(cost), trail);
            return None;
        }
        let before = *spent;
        if delivery == Delivery::Stream {
            // Its cost is known when the stream ends: the rest of the request's.
            self.record(step, None, trail);
            let live = futures::stream::iter(read.held.into_iter().map(Ok)).chain(chunks);
            return Some(Answered {
                answer: Answer::Stream(fit_chunk_logprobs(Box::pin(live), req)),
                model: self.model,
                spent: before,
            });
        }
        let mut held = read.held;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => held.push(chunk),
                Err(e) => {
                    let cost = price.cost(0, read.tokens.len() as u32);
                    spent.cost_usd += cost;
                    self.failed(&e, cost, trail);
                    return None;
                }
            }
        }
        let mut resp = assemble(held);
        let cost = before.with(self.model, resp.usage.unwrap_or_default()) - before.cost_usd;
        self.record(step, Some(cost), trail);
        fit_logprobs(&mut resp, req);
        Some(Answered {
            answer: Answer::Whole(resp),
            model: self.model,
            spent: before,
        })
    }
}

/// P(the answer is good), from its token logprobs; none when it came without them.
fn whole_confidence(calibration: &Calibration, resp: &ChatResponse) -> Option<f64> {
    let choice = resp.choices.first()?;
    let tokens = choice.logprobs.as_ref()?.content.as_ref()?;
    calibration.confidence(tokens, choice.finish_reason.as_deref() == Some("length"))
}

/// The start of a rung's stream, read until `k` tokens carried logprobs or the stream ended.
struct Prefix {
    held: Vec<ChatChunk>,
    tokens: Vec<TokenLogprob>,
    /// The stream ended by the token limit within the prefix.
    cut: bool,
}

impl Prefix {
    /// The prefix, or the error that broke the stream and how many tokens had been read.
    async fn read(chunks: &mut ChunkStream, k: usize) -> Result<Prefix, (ProviderError, usize)> {
        let mut read = Prefix {
            held: Vec::new(),
            tokens: Vec::new(),
            cut: false,
        };
        while read.tokens.len() < k {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    for choice in chunk.choices.iter().filter(|c| c.index == 0) {
                        if let Some(lps) = choice.logprobs.as_ref().and_then(|l| l.content.as_ref())
                        {
                            read.tokens.extend(lps.iter().cloned());
                        }
                        read.cut |= choice.finish_reason.as_deref() == Some("length");
                    }
                    read.held.push(chunk);
                }
                Some(Err(e)) => return Err((e, read.tokens.len())),
                None => break,
            }
        }
        Ok(read)
    }

    /// What the stream generated when dropped here: its usage when it ended within the
    /// prefix, else the tokens read (an unfinished stream does not report its prompt).
    fn cost(&self, price: crate::config::Price) -> f64 {
        match self.held.iter().find_map(|c| c.usage) {
            Some(u) => price.cost(u.prompt_tokens, u.completion_tokens),
            None => price.cost(0, self.tokens.len() as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::{Delta, Logprobs, Usage};

    fn token_chunk(lps: &[f32], finish: Option<&str>) -> ChatChunk {
        let mut c = ChatChunk::delta("s", 0, "tiny", Delta::default());
        c.choices[0].logprobs = Some(Logprobs {
            content: Some(
                lps.iter()
                    .map(|&logprob| TokenLogprob {
                        token: "t".into(),
                        logprob,
                        bytes: None,
                        top_logprobs: Vec::new(),
                    })
                    .collect(),
            ),
        });
        c.choices[0].finish_reason = finish.map(str::to_owned);
        c
    }

    fn stream(items: Vec<Result<ChatChunk, ProviderError>>) -> ChunkStream {
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn the_prefix_is_read_until_k_tokens_and_the_rest_is_left_in_the_stream() {
        let mut chunks = stream(vec![
            Ok(token_chunk(&[-0.1], None)),
            Ok(token_chunk(&[-0.2, -0.3], None)),
            Ok(token_chunk(&[-0.4], None)),
        ]);
        let read = Prefix::read(&mut chunks, 2).await.unwrap();
        assert_eq!(
            (read.held.len(), read.tokens.len(), read.cut),
            (2, 3, false)
        );
        assert_eq!(chunks.count().await, 1, "the rest stays live");
        let price = crate::config::Price {
            input: 1.0,
            output: 2.0,
        };
        // Unfinished: the tokens read, at the output price.
        assert!((read.cost(price) - 6.0 / 1e6).abs() < 1e-15);
    }

    #[tokio::test]
    async fn a_stream_ending_within_the_prefix_is_cut_only_by_the_token_limit() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 1,
            total_tokens: 11,
            ..Usage::default()
        };
        let mut chunks = stream(vec![
            Ok(token_chunk(&[-0.1], Some("length"))),
            Ok(ChatChunk::usage("s", 0, "tiny", usage)),
        ]);
        let read = Prefix::read(&mut chunks, 4).await.unwrap();
        assert_eq!((read.tokens.len(), read.cut), (1, true));
        let price = crate::config::Price {
            input: 1.0,
            output: 2.0,
        };
        // Finished: its reported usage, prompt included.
        assert!((read.cost(price) - 12.0 / 1e6).abs() < 1e-15);
    }

    #[test]
    fn a_rung_is_kept_at_the_threshold_or_without_logprobs_and_escalated_below() {
        assert!(verdict(Some(0.5), 0.5).kept());
        assert!(!verdict(Some(0.499), 0.5).kept());
        assert_eq!(verdict(None, 0.5), Step::Unjudged);
        assert!(Step::Unjudged.kept() && !Step::Failed.kept());
    }
}
