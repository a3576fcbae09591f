//! Sentence embeddings in-process (all-MiniLM-L6-v2).

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

mod bert;
#[cfg(target_arch = "x86_64")]
mod int8;

const MODEL_NAME: &str = "all-MiniLM-L6-v2";
const MAX_SEQ_LEN: usize = 256;
const FETCH_HINT: &str = "run scripts/fetch-models.sh";

/// Why loading the model or embedding text failed.
#[derive(thiserror::Error, Debug)]
pub enum EmbedError {
    #[error("embedding model file {path} is missing; {hint}")]
    MissingFile { path: PathBuf, hint: &'static str },
    #[error("embedding model file {path} is unreadable or corrupt ({reason}); {hint}")]
    CorruptFile {
        path: PathBuf,
        reason: String,
        hint: &'static str,
    },
    #[error("tokenizing input failed: {0}")]
    Tokenize(String),
    #[error("embedding inference failed: {0}")]
    Inference(String),
    #[error(
        "{0:?} embeddings need a CPU with AVX-512 VNNI, which this one lacks; use Precision::F32"
    )]
    Unsupported(Precision),
}

/// The arithmetic the encoder's dense layers run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The model's own f32 weights: bit-for-bit the reference computation, up to summation order.
    F32,
    /// Weights per column and activations per row in 8 bits, on AVX-512 VNNI: about twice as fast;
    /// vectors keep a cosine similarity above 0.99 to the f32 ones.
    Int8,
}

impl Precision {
    /// Int8 where the CPU has AVX-512 VNNI, f32 elsewhere.
    pub fn fastest() -> Precision {
        #[cfg(target_arch = "x86_64")]
        if int8::available() {
            return Precision::Int8;
        }
        Precision::F32
    }

    fn available(self) -> bool {
        self == Precision::F32 || Precision::fastest() == Precision::Int8
    }
}

/// Sentence vectors and the number of input tokens that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// An all-MiniLM-L6-v2 sentence embedder. `Send + Sync`: share it through an `Arc`.
pub struct Embedder {
    tokenizer: Tokenizer,
    model: bert::Bert,
    precision: Precision,
}

fn corrupt(path: &Path, reason: impl ToString) -> EmbedError {
    EmbedError::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        hint: FETCH_HINT,
    }
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile {
            path,
            hint: FETCH_HINT,
        })
    }
}

impl Embedder {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir`, to run in the
    /// [fastest](Precision::fastest) precision this CPU has.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::load_with(dir, Precision::fastest())
    }

    /// Load as [`Embedder::load`], in the given precision.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Embedder, EmbedError> {
        if !precision.available() {
            return Err(EmbedError::Unsupported(precision));
        }
        let config_path = existing(dir, "config.json")?;
        let tokenizer_path = existing(dir, "tokenizer.json")?;
        let weights_path = existing(dir, "model.safetensors")?;

        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| corrupt(&config_path, e))?;
        let config: bert::Config =
            serde_json::from_str(&config_text).map_err(|e| corrupt(&config_path, e))?;

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| corrupt(&tokenizer_path, e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_SEQ_LEN.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| corrupt(&tokenizer_path, e))?;

        let weights = std::fs::read(&weights_path).map_err(|e| corrupt(&weights_path, e))?;
        let model = bert::Bert::load(&config, &weights, precision)
            .map_err(|e| corrupt(&weights_path, e))?;
        Ok(Embedder {
            tokenizer,
            model,
            precision,
        })
    }

    /// The model's name, as reported to API clients.
    pub fn model_name(&self) -> &str {
        MODEL_NAME
    }

    /// The arithmetic this embedder runs in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Length of every vector [`Embedder::embed`] returns.
    pub fn dimensions(&self) -> usize {
        self.model.hidden_size()
    }

    /// How many word pieces `text` is, without the `[CLS]`/`[SEP]` markers; at most 256, the
    /// most [`Embedder::embed`] reads of one text.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().len())
            .map_err(|e| EmbedError::Tokenize(e.to_string()))
    }

    /// The most word pieces [`Embedder::embed`] reads of one text, markers included.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer
            .get_truncation()
            .map_or(MAX_SEQ_LEN, |t| t.max_length)
    }

    /// Embed each text: mean of the token states over the attention mask, L2-normalised.
    /// Texts longer than 256 word pieces are truncated.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let ids: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
        let tokens = ids.iter().map(Vec::len).sum();
        let vectors = self.model.embed(&ids).map_err(EmbedError::Inference)?;
        Ok(Embeddings { vectors, tokens })
    }
}
