//! The offline tools behind `switchyard train` and `switchyard eval`: labelled routing data read
//! from RouteLLM-style files, `switchyard replay` folders or the gateway's request log
//! ([`labelled`]); their sentence embeddings through an on-disk cache ([`embeddings`]); a learned
//! router judged against the random, length and oracle baselines ([`judge`]), and its curves
//! drawn ([`plot`]). No model is called but the embedder; the command line only prints.

pub mod embeddings;
pub mod judge;
pub mod labelled;
pub mod plot;

use std::path::PathBuf;

/// Why an offline tool could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Data(#[from] switchyard_router::data::DataError),
    #[error(transparent)]
    Learn(#[from] switchyard_router::learned::LearnError),
    #[error(transparent)]
    Eval(#[from] switchyard_router::eval::EvalError),
    #[error("cannot read the request log {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: switchyard_store::StoreError,
    },
    #[error("no data files found under {0}")]
    NoDataFiles(String),
    #[error("{file} has {count} model columns ({names}); pick two with --weak and --strong")]
    ModelColumns {
        file: PathBuf,
        count: usize,
        names: String,
    },
    #[error("no group `{group}` in the data (groups are file stems, e.g. {example})")]
    UnknownGroup { group: String, example: String },
    #[error("cannot load the embedder from {dir}: {source}")]
    Embedder {
        dir: PathBuf,
        #[source]
        source: switchyard_embed::EmbedError,
    },
    #[error("the embedder at {dir} gives {got} dimensions, expected {want}")]
    EmbedderWidth {
        dir: PathBuf,
        got: usize,
        want: usize,
    },
    #[error("embedding failed: {0}")]
    Embed(#[from] switchyard_embed::EmbedError),
    #[error("cannot write the embedding cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{examples} examples but {embeddings} embeddings")]
    Mismatch { examples: usize, embeddings: usize },
    #[error("cannot draw the plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
}
