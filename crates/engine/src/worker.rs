//! The engine thread: owns the llama.cpp context and runs the continuous-batching loop.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use crate::logprob::{greedy, logprobs};
use crate::text::{StopMatcher, Utf8Buffer};
use crate::{EngineError, EngineStats, Event, FinishReason, Token};

/// Most tokens decoded in one step; long prompts are processed in chunks of this size, so
/// other sequences keep generating between chunks.
const BATCH_TOKENS: u32 = 512;

/// A request, rendered and tokenized, waiting for a slot.
pub(crate) struct Job {
    pub tokens: Vec<LlamaToken>,
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u64>,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub top_logprobs: usize,
    pub stop: Vec<String>,
    pub events: Sender<Event>,
}

#[derive(Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    prompt_tokens_processed: AtomicU64,
    prompt_tokens_reused: AtomicU64,
    generated_tokens: AtomicU64,
    steps: AtomicU64,
    max_sequences_per_step: AtomicU64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> EngineStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            requests: get(&self.requests),
            prompt_tokens_processed: get(&self.prompt_tokens_processed),
            prompt_tokens_reused: get(&self.prompt_tokens_reused),
            generated_tokens: get(&self.generated_tokens),
            steps: get(&self.steps),
            max_sequences_per_step: get(&self.max_sequences_per_step),
        }
    }

    fn add(a: &AtomicU64, n: usize) {
        a.fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub(crate) struct Setup {
    pub model: Arc<LlamaModel>,
    pub backend: &'static LlamaBackend,
    pub threads: usize,
    pub context_tokens: u32,
    pub slots: usize,
    pub stats: Arc<Stats>,
}

/// Starts the engine thread; returns the tokens each slot holds once the context exists.
pub(crate) fn spawn(setup: Setup, jobs: Receiver<Job>) -> Result<usize, EngineError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("switchyard-engine".into())
        .spawn(move || {
            let model = Arc::clone(&setup.model);
            let threads = i32::try_from(setup.threads).unwrap_or(i32::MAX);
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(setup.context_tokens))
                .with_n_batch(BATCH_TOKENS)
                .with_n_ubatch(BATCH_TOKENS)
                .with_n_seq_max(setup.slots as u32)
                // One KV stream per slot: each slot gets a fixed share, and attention for one
                // sequence never scans the other slots' cached prefixes.
                .with_kv_unified(false)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let ctx = match model.new_context(setup.backend, params) {
                Ok(ctx) => ctx,
                Err(e) => {
                    let _ = ready_tx.send(Err(EngineError::Context {
                        context_tokens: setup.context_tokens,
                        slots: setup.slots,
                        reason: e.to_string(),
                    }));
                    return;
                }
            };
            let slot_context = ctx.n_ctx() as usize / setup.slots;
            if ready_tx.send(Ok(slot_context)).is_err() {
                return;
            }
            Worker::new(&model, ctx, setup.slots, slot_context, setup.stats).run(jobs);
            tracing::debug!("engine thread stopped");
        })
        .map_err(|e| EngineError::Backend(format!("could not start the engine thread: {e}")))?;
    ready_rx.recv().map_err(|_| EngineError::Stopped)?
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    slots: Vec<Slot>,
    slot_context: usize,
    stats: Arc<Stats>,
    /// Counts admissions, to prefill in arrival order and to find the least recently used slot.
    clock: u64,
}

struct Slot {
    seq: i32,
    /// Tokens whose keys and values are in this sequence's KV cache, positions 0..len.
    cached: Vec<LlamaToken>,
    last_used: u64,
    active: Option<Active>,
}

struct Active {
    job: Job,
    admitted: u64,
    /// Prompt tokens found in the slot's cache at admission (not decoded again).
    reused: usize,
    /// Next prompt token to decode; equals the prompt length once the prompt is done.
    prompt_next: usize,
    /// Sampled, sent, and still to be decoded so that the next token can be sampled.
    pending: Option<LlamaToken>,
    /// `None` for plain greedy decoding (temperature 0, no penalties), which takes the arg-max
    /// directly: llama.cpp's sampler would first copy the whole vocabulary for every token.
    sampler: Option<LlamaSampler>,
    generated: usize,
    utf8: Utf8Buffer,
    stop: StopMatcher,
    /// Tokens of this slot in the batch being decoded.
    fed: Vec<LlamaToken>,
    /// Where this slot's logits are in the batch being decoded, when it asked for them.
    logits_at: Option<i32>,
}

impl<'m> Worker<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        slots: usize,
        slot_context: usize,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            model,
            ctx,
            batch: LlamaBatch::new(BATCH_TOKENS as usize, 1),
            slots: (0..slots)
                .map(|i| Slot {
                    seq: i as i32,
                    cached: Vec::new(),
                    last_used: 0,
                    active: None,
                })
                .collect(),
            slot_context,
            stats,
            clock: 0,
        }
    }

    fn run(mut self, jobs: Receiver<Job>) {
        let mut open = true;
        loop {
            // Take new work while a slot is free: block only when there is nothing to decode.
            while open && self.slots.iter().any(|s| s.active.is_none()) {
                let idle = self.slots.iter().all(|s| s.active.is_none());
                let next = if idle {
                    jobs.recv().ok()
                } else {
                    match jobs.try_recv() {
                        Ok(job) => Some(job),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => None,
                    }
                };
                match next {
                    Some(job) if job.events.is_closed() => {} // cancelled while queued
                    Some(job) => self.admit(job),
                    None => open = false, // every Engine handle is gone
                }
            }
            for slot in &mut self.slots {
                if slot
                    .active
                    .as_ref()
                    .is_some_and(|a| a.job.events.is_closed())
                {
                    tracing::debug!(seq = slot.seq, "generation cancelled by its reader");
                    slot.active = None;
                }
            }
            if self.slots.iter().all(|s| s.active.is_none()) {
                if open {
                    continue;
                }
                return;
            }
            self.step();
        }
    }

    /// Puts a job in the free slot whose cache shares the longest prefix with its prompt.
    fn admit(&mut self, job: Job) {
        self.clock += 1;
        let Some(slot) = self
            .slots
            .iter_mut()
            .filter(|s| s.active.is_none())
            .max_by_key(|s| {
                (
                    common_prefix(&s.cached, &job.tokens),
                    std::cmp::Reverse(s.last_used),
                )
            })
        else {
            // Invariant: `run` only admits while a slot is free.
            unreachable!("admit called with every slot busy");
        };
        // Keep at least one prompt token to decode: its logits give the first token.
        let mut keep = common_prefix(&slot.cached, &job.tokens).min(job.tokens.len() - 1);
        if keep < slot.cached.len() {
            let removed =
                self.ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None);
            if !matches!(removed, Ok(true)) {
                // Recurrent models cannot drop a suffix; start this sequence over.
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                keep = 0;
            }
            slot.cached.truncate(keep);
        }
        Stats::add(&self.stats.requests, 1);
        Stats::add(&self.stats.prompt_tokens_reused, keep);
        slot.last_used = self.clock;
        slot.active = Some(Active {
            sampler: sampler_for(&job, self.model.n_vocab(), self.slot_context),
            utf8: Utf8Buffer::default(),
            stop: StopMatcher::new(&job.stop),
            admitted: self.clock,
            reused: keep,
            prompt_next: keep,
            pending: None,
            generated: 0,
            fed: Vec::new(),
            logits_at: None,
            job,
        });
    }

    /// Decodes one batch: the next token of every generating sequence, then prompt chunks.
    fn step(&mut self) {
        self.batch.clear();
        let mut budget = BATCH_TOKENS as usize;
        let mut sequences = 0u64;
        for slot in &mut self.slots {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            a.fed.clear();
            a.logits_at = None;
            if let Some(t) = a.pending.take() {
                a.logits_at = Some(self.batch.n_tokens());
                // Invariant: the batch holds BATCH_TOKENS and each slot adds one token here.
                let _ = self
                    .batch
                    .add(t, slot.cached.len() as i32, &[slot.seq], true);
                a.fed.push(t);
                budget -= 1;
                sequences += 1;
            }
        }
        let mut prefilling: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .active
                    .as_ref()
                    .is_some_and(|a| a.prompt_next < a.job.tokens.len())
            })
            .collect();
        prefilling.sort_by_key(|&i| self.slots[i].active.as_ref().map_or(0, |a| a.admitted));
        for i in prefilling {
            if budget == 0 {
                break;
            }
            let slot = &mut self.slots[i];
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            let end = a.job.tokens.len().min(a.prompt_next + budget);
            let start_pos = slot.cached.len();
            for (k, &t) in a.job.tokens[a.prompt_next..end].iter().enumerate() {
                let last = a.prompt_next + k + 1 == a.job.tokens.len();
                if last {
                    a.logits_at = Some(self.batch.n_tokens());
                }
                // Invariant: at most `budget` tokens are added, so the batch cannot overflow.
                let _ = self.batch.add(t, (start_pos + k) as i32, &[slot.seq], last);
                a.fed.push(t);
            }
            budget -= end - a.prompt_next;
            Stats::add(&self.stats.prompt_tokens_processed, end - a.prompt_next);
            a.prompt_next = end;
            sequences += 1;
        }

        Stats::add(&self.stats.steps, 1);
        self.stats
            .max_sequences_per_step
            .fetch_max(sequences, Ordering::Relaxed);

        if let Err(e) = self.ctx.decode(&mut self.batch) {
            tracing::error!(error = %e, "llama.cpp decode failed");
            self.fail_batch(&e.to_string());
            return;
        }
        for i in 0..self.slots.len() {
            self.after_decode(i);
        }
    }

    /// Records what a slot fed into the cache, then samples and reports its next token.
    fn after_decode(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(a) = slot.active.as_mut() else {
            return;
        };
        slot.cached.extend_from_slice(&a.fed);
        let Some(idx) = a.logits_at else {
            return;
        };
        let logits = self.ctx.get_logits_ith(idx);
        let token = match a.sampler.as_mut() {
            Some(sampler) => sampler.sample(&self.ctx, idx),
            None => LlamaToken(i32::try_from(greedy(logits)).unwrap_or(0)),
        };
        let (logprob, top) = logprobs(logits, token.0 as usize, a.job.top_logprobs);
        let vocab = self.model.vocab();
        let piece = |t: LlamaToken| vocab.token_to_piece(t, false, None);
        let bytes = piece(token);
        a.generated += 1;
        Stats::add(&self.stats.generated_tokens, 1);

        let released = a.stop.push(&a.utf8.push(&bytes));
        let mut text = released.text;
        let finish = if released.stopped || vocab.is_eog(token) {
            Some(FinishReason::Stop)
        } else if a.generated >= a.job.max_tokens || slot.cached.len() >= self.slot_context {
            Some(FinishReason::Length)
        } else {
            None
        };
        let mut finish_reason = finish;
        if finish.is_some() && !released.stopped {
            // The end came another way: held text was not a stop sequence after all.
            let tail = a.stop.push(&a.utf8.finish());
            text.push_str(&tail.text);
            if tail.stopped {
                finish_reason = Some(FinishReason::Stop);
            } else {
                text.push_str(&a.stop.finish());
            }
        }
        let event = Event::Token(Token {
            text,
            logprob,
            bytes,
            top_logprobs: top
                .into_iter()
                .map(|(id, lp)| {
                    let bytes = piece(LlamaToken(id as i32));
                    (String::from_utf8_lossy(&bytes).into_owned(), lp)
                })
                .collect(),
        });
        let mut alive = send(&a.job.events, event);
        match finish_reason {
            Some(finish_reason) => {
                if alive {
                    send(
                        &a.job.events,
                        Event::Done {
                            finish_reason,
                            completion_tokens: a.generated as u32,
                            prompt_tokens: a.job.tokens.len() as u32,
                            cached_prompt_tokens: a.reused as u32,
                        },
                    );
                }
                alive = false;
            }
            None => a.pending = Some(token),
        }
        if !alive {
            slot.active = None;
        }
    }

    /// A failed decode leaves the cache of the sequences in it unknown: report and reset them.
    fn fail_batch(&mut self, reason: &str) {
        for slot in &mut self.slots {
            let Some(a) = slot.active.take() else {
                continue;
            };
            if a.fed.is_empty() {
                slot.active = Some(a);
                continue;
            }
            send(
                &a.job.events,
                Event::Failed(EngineError::Decode(reason.to_string())),
            );
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
            slot.cached.clear();
        }
    }
}

/// Sends without ever waiting; false when the reader is gone.
fn send(events: &Sender<Event>, event: Event) -> bool {
    match events.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        // Invariant: the channel holds max_tokens + 2 events, more than one generation sends.
        Err(TrySendError::Full(_)) => {
            tracing::error!("event channel full; stopping the generation");
            false
        }
    }
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The llama.cpp sampler chain for one request, in OpenAI's order: penalties, temperature,
/// nucleus, then a seeded draw (or the arg-max when temperature is 0); `None` when the
/// request is plain greedy decoding, which needs no sampler.
fn sampler_for(job: &Job, n_vocab: i32, slot_context: usize) -> Option<LlamaSampler> {
    let penalised = job.presence_penalty != 0.0 || job.frequency_penalty != 0.0;
    if job.temperature == 0.0 && !penalised {
        return None;
    }
    let mut chain = Vec::new();
    if penalised {
        // The sampler only sees accepted (generated) tokens, so the penalty covers the
        // completion so far, as OpenAI's does.
        chain.push(LlamaSampler::penalties(
            n_vocab,
            i32::try_from(slot_context).unwrap_or(i32::MAX),
            1.0,
            job.frequency_penalty,
            job.presence_penalty,
        ));
    }
    if job.temperature == 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.push(LlamaSampler::temp(job.temperature));
        if job.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(job.top_p, 1));
        }
        chain.push(LlamaSampler::dist(seed32(job.seed)));
    }
    Some(LlamaSampler::chain_simple(chain))
}

/// llama.cpp takes a 32-bit seed, where u32::MAX asks for a random one.
fn seed32(seed: Option<u64>) -> u32 {
    match seed {
        None => u32::MAX,
        Some(s) => ((s ^ (s >> 32)) as u32).min(u32::MAX - 1),
    }
}
