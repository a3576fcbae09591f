//! Local inference over llama.cpp: load GGUF, chat template, batched generation with logprobs.
//!
//! One [`Engine`] owns one model. A dedicated OS thread owns the llama.cpp context and runs a
//! continuous-batching loop, so generation never blocks the async runtime:
//!
//! - The context holds `slots` sequences. Every step decodes one [`LlamaBatch`] holding the
//!   next token of every generating sequence plus chunks of newly arrived prompts, so a new
//!   request starts at the next step instead of waiting for the others to finish.
//! - Requests that find every slot busy wait in a bounded queue of `queue` entries;
//!   [`Engine::generate`] answers [`EngineError::Busy`] when it is full.
//! - Each slot remembers which tokens its KV cache holds. A request goes to the free slot with
//!   the longest common token prefix and only the rest of its prompt is decoded, so a repeated
//!   system prompt or a growing conversation is not processed again ([`EngineStats`]).
//! - Dropping [`Generation::events`] cancels the request: its slot is freed at the next step
//!   (a request cancelled while still queued keeps its queue place until a slot frees up, and
//!   is then skipped).
//!
//! Semantics the server relies on:
//!
//! - `context_tokens` is split evenly between slots (llama.cpp rounds the total up to a multiple
//!   of 256); a request's prompt plus completion must fit in one slot
//!   ([`Engine::slot_context_tokens`]). `max_tokens: None` means "until the slot is full".
//! - `temperature: None` means 1.0 (OpenAI's default); `0.0` means greedy decoding.
//! - Every sampled token, including the end-of-generation token that ends with
//!   [`FinishReason::Stop`], produces one [`Event::Token`] and counts in `completion_tokens`
//!   (as vLLM and llama-server count it). [`Token::text`] is the text *released* at that step:
//!   it can be empty while bytes of a split UTF-8 character, or text that may be the beginning
//!   of a stop sequence, are held back, and it can carry text held from earlier tokens. The
//!   concatenation of all `text` fields is the completion, cut right before the first stop
//!   sequence (which is never sent).
//! - [`Token::logprob`] and [`Token::top_logprobs`] are log-probabilities under the model's raw
//!   distribution (log-softmax of the logits over the whole vocabulary), before temperature,
//!   top-p or penalties, as in OpenAI's API.
//! - A stream ends with exactly one [`Event::Done`] or [`Event::Failed`]; one that ends without
//!   either (the engine thread died) is a failure too.
//! - [`Generation::prompt_tokens`] is known when `generate` returns: the prompt is rendered and
//!   tokenized on the caller's thread (microseconds to a few milliseconds); decoding happens on
//!   the engine thread.

mod error;
mod logprob;
mod text;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

pub use error::EngineError;
use worker::{Job, Stats};

/// How to load a model and how much work to take on.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The GGUF file.
    pub path: PathBuf,
    /// CPU threads for decoding; `None` uses every available core.
    pub threads: Option<usize>,
    /// Total context (KV cache) in tokens, split evenly between the slots.
    pub context_tokens: u32,
    /// Sequences decoded together (maximum concurrent requests).
    pub slots: usize,
    /// Requests that may wait for a free slot before `generate` answers `Busy`.
    pub queue: usize,
}

impl EngineConfig {
    /// The defaults: all cores, 4096 tokens of context, 4 slots, a queue of 64.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threads: None,
            context_tokens: 4096,
            slots: 4,
            queue: 64,
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

impl ChatTurn {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat completion request, with OpenAI's parameter meanings.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    pub messages: Vec<ChatTurn>,
    /// At least 1; `None` generates until the end of generation or a full slot.
    pub max_tokens: Option<u32>,
    /// 0..=2; `None` is 1.0, 0 is greedy.
    pub temperature: Option<f32>,
    /// (0, 1]; `None` is 1.0 (no nucleus cut).
    pub top_p: Option<f32>,
    /// Same seed, same request, same output (when run alone; batching can change rounding).
    pub seed: Option<u64>,
    /// Generation ends before the first occurrence of any of these; it is not returned.
    pub stop: Vec<String>,
    /// -2..=2, over the tokens generated so far.
    pub presence_penalty: Option<f32>,
    /// -2..=2, over the tokens generated so far.
    pub frequency_penalty: Option<f32>,
    /// 0..=20 alternatives per token; the sampled token's own logprob is always computed.
    pub top_logprobs: Option<u8>,
}

/// A running generation. Dropping `events` cancels it.
#[derive(Debug)]
pub struct Generation {
    pub prompt_tokens: u32,
    pub events: tokio::sync::mpsc::Receiver<Event>,
}

/// What a generation reports, in order: tokens, then exactly one `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    Token(Token),
    Done {
        finish_reason: FinishReason,
        completion_tokens: u32,
        prompt_tokens: u32,
        /// Of `prompt_tokens`, those whose keys and values were already in the cache (a prefix
        /// shared with an earlier request), so they were not decoded again.
        cached_prompt_tokens: u32,
    },
    Failed(EngineError),
}

/// One sampled token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Text released at this step (see the crate docs: may be empty or carry held text).
    pub text: String,
    /// Log-probability of this token under the model, always ≤ 0.
    pub logprob: f32,
    /// The token's own bytes (possibly part of a UTF-8 character; empty for control tokens).
    pub bytes: Vec<u8>,
    /// The most likely tokens at this position with their log-probabilities, best first.
    pub top_logprobs: Vec<(String, f32)>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence was produced.
    Stop,
    /// `max_tokens` was reached, or the slot's context is full.
    Length,
}

/// Counters since the engine was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests admitted to a slot.
    pub requests: u64,
    /// Prompt tokens decoded.
    pub prompt_tokens_processed: u64,
    /// Prompt tokens found already in a slot's KV cache and not decoded again.
    pub prompt_tokens_reused: u64,
    /// Tokens sampled.
    pub generated_tokens: u64,
    /// Batches decoded.
    pub steps: u64,
    /// The most sequences one batch has held.
    pub max_sequences_per_step: u64,
}

/// A loaded model ready to generate. Cheap to clone; all clones share one model and thread.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    model: Arc<LlamaModel>,
    name: String,
    template: Option<LlamaChatTemplate>,
    warned_template: AtomicBool,
    jobs: SyncSender<Job>,
    queue: usize,
    slot_context: usize,
    stats: Arc<Stats>,
}

/// llama.cpp's backend may be initialised once per process; every engine shares it.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

/// Checks the file before llama.cpp sees it, so the common mistakes get precise messages.
fn check_model_file(path: &Path) -> Result<(), EngineError> {
    use std::io::Read;
    if !path.exists() {
        return Err(EngineError::ModelNotFound {
            path: path.to_path_buf(),
        });
    }
    let unreadable = |source| EngineError::ModelUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        Ok(()) => Err(EngineError::NotGguf {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(EngineError::NotGguf {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(unreadable(e)),
    }
}

impl Engine {
    /// Loads the model and starts the inference thread.
    pub fn load(cfg: EngineConfig) -> Result<Engine, EngineError> {
        if cfg.slots == 0 || cfg.slots > 256 {
            return Err(EngineError::Config(format!(
                "`slots` must be between 1 and 256, got {}",
                cfg.slots
            )));
        }
        if cfg.context_tokens < cfg.slots as u32 * 16 {
            return Err(EngineError::Config(format!(
                "`context_tokens` ({}) leaves fewer than 16 tokens per slot ({} slots); raise it",
                cfg.context_tokens, cfg.slots
            )));
        }
        if cfg.threads == Some(0) {
            return Err(EngineError::Config("`threads` must be at least 1".into()));
        }
        check_model_file(&cfg.path)?;
        let backend = backend()?;
        let started = std::time::Instant::now();
        // Read, not mapped: llama.cpp repacks most weights into its own buffers at load, and a
        // mapping would keep a second, page-cache copy of them resident (SmolLM2: 308 -> 245 MiB).
        let params = LlamaModelParams::default().with_use_mmap(false);
        let model = LlamaModel::load_from_file(backend, &cfg.path, &params).map_err(|e| {
            tracing::debug!(error = %e, "llama.cpp model load failed");
            EngineError::ModelLoad {
                path: cfg.path.clone(),
            }
        })?;
        let model = Arc::new(model);
        let name = cfg
            .path
            .file_stem()
            .map_or_else(|| "local".to_string(), |s| s.to_string_lossy().into_owned());
        let template = model.chat_template(None).ok();
        let threads = cfg.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let stats = Arc::new(Stats::default());
        // At least one place, so that a full set of slots still lets one request wait.
        let queue = cfg.queue.max(1);
        let (jobs, rx) = sync_channel(queue);
        let slot_context = worker::spawn(
            worker::Setup {
                model: Arc::clone(&model),
                backend,
                threads,
                context_tokens: cfg.context_tokens,
                slots: cfg.slots,
                stats: Arc::clone(&stats),
            },
            rx,
        )?;
        tracing::info!(
            model = %name,
            path = %cfg.path.display(),
            threads,
            slots = cfg.slots,
            slot_context,
            load_ms = started.elapsed().as_millis() as u64,
            "local model loaded"
        );
        Ok(Engine {
            inner: Arc::new(Inner {
                model,
                name,
                template,
                warned_template: AtomicBool::new(false),
                jobs,
                queue,
                slot_context,
                stats,
            }),
        })
    }

    /// The model's name: the file name without its extension.
    pub fn model_name(&self) -> &str {
        &self.inner.name
    }

    /// Tokens one request may use, prompt and completion together.
    pub fn slot_context_tokens(&self) -> usize {
        self.inner.slot_context
    }

    /// Counters since load (prefix-cache reuse, batching).
    pub fn stats(&self) -> EngineStats {
        self.inner.stats.snapshot()
    }

    /// Renders a conversation with the GGUF's chat template, ending with the assistant's turn
    /// opened. Falls back to ChatML (with one warning) when the GGUF has no template or
    /// llama.cpp does not recognise it.
    pub fn render_prompt(&self, messages: &[ChatTurn]) -> Result<String, EngineError> {
        let model = &self.inner.model;
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                EngineError::InvalidRequest(
                    "a message role or content contains a NUL character; remove it".into(),
                )
            })?;
        let why = match &self.inner.template {
            Some(t) => match model.apply_chat_template(t, &chat, true) {
                Ok(s) => return Ok(s),
                Err(e) => format!("llama.cpp could not apply it ({e})"),
            },
            None => "the GGUF has none".to_string(),
        };
        if !self.inner.warned_template.swap(true, Ordering::Relaxed) {
            tracing::warn!(model = %self.inner.name, "chat template: {why}; using ChatML instead");
        }
        let chatml = LlamaChatTemplate::new("chatml")
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        model
            .apply_chat_template(&chatml, &chat, true)
            .map_err(|e| EngineError::InvalidRequest(format!("could not render the chat: {e}")))
    }

    /// Tokens in `text` as plain text (no BOS added; special-token text is recognised).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EngineError> {
        Ok(self.tokenize(text, false).len())
    }

    fn tokenize(&self, text: &str, add_bos: bool) -> Vec<LlamaToken> {
        // Tokenizing only reads the vocabulary, which llama.cpp allows from any thread while
        // the engine thread decodes (llama-server does the same).
        self.inner
            .model
            .vocab()
            .tokenize(text.as_bytes(), add_bos, true)
    }

    /// Starts a generation and returns at once; tokens arrive on [`Generation::events`].
    pub fn generate(&self, req: GenerateRequest) -> Result<Generation, EngineError> {
        validate(&req)?;
        let prompt = self.render_prompt(&req.messages)?;
        let tokens = self.tokenize(&prompt, true);
        let limit = self.inner.slot_context - 1;
        if tokens.is_empty() {
            return Err(EngineError::InvalidRequest(
                "the prompt is empty after tokenization".into(),
            ));
        }
        if tokens.len() > limit {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: tokens.len(),
                limit,
            });
        }
        let room = self.inner.slot_context - tokens.len();
        let max_tokens = req.max_tokens.map_or(room, |m| (m as usize).min(room));
        // Room for every event this generation can produce, so the engine thread never waits
        // for a slow reader (tokio allocates the buffer lazily, so this costs nothing).
        let (tx, events) = tokio::sync::mpsc::channel(max_tokens + 2);
        let prompt_tokens = tokens.len() as u32;
        let job = Job {
            tokens,
            max_tokens,
            temperature: req.temperature.unwrap_or(1.0),
            top_p: req.top_p.unwrap_or(1.0),
            seed: req.seed,
            presence_penalty: req.presence_penalty.unwrap_or(0.0),
            frequency_penalty: req.frequency_penalty.unwrap_or(0.0),
            top_logprobs: usize::from(req.top_logprobs.unwrap_or(0)),
            stop: req.stop,
            events: tx,
        };
        match self.inner.jobs.try_send(job) {
            Ok(()) => Ok(Generation {
                prompt_tokens,
                events,
            }),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy {
                queue: self.inner.queue,
            }),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

fn validate(req: &GenerateRequest) -> Result<(), EngineError> {
    let bad = |m: String| Err(EngineError::InvalidRequest(m));
    if req.max_tokens == Some(0) {
        return bad("`max_tokens` must be at least 1".into());
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return bad(format!("`temperature` must be between 0 and 2, got {t}"));
        }
    }
    if let Some(p) = req.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return bad(format!("`top_p` must be in (0, 1], got {p}"));
        }
    }
    for (name, v) in [
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        if let Some(v) = v {
            if !(-2.0..=2.0).contains(&v) {
                return bad(format!("`{name}` must be between -2 and 2, got {v}"));
            }
        }
    }
    if let Some(n) = req.top_logprobs {
        if n > 20 {
            return bad(format!("`top_logprobs` must be at most 20, got {n}"));
        }
    }
    Ok(())
}
