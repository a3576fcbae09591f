use std::path::PathBuf;

/// Everything that can go wrong in the engine. Each message says what happened and what to do.
#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    #[error("model file {path} does not exist: check the model path in the config, or run scripts/fetch-models.sh to download the default models")]
    ModelNotFound { path: PathBuf },

    #[error("could not read model file {path}: {source}; check that the file is readable by this process")]
    ModelUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a GGUF model file (it does not start with the GGUF magic bytes): point the config at a .gguf file, e.g. a quantized model converted with llama.cpp")]
    NotGguf { path: PathBuf },

    #[error("llama.cpp could not load {path}: the file is corrupt, truncated, or uses an architecture or quantization this build does not support; re-download it (scripts/fetch-models.sh) or use another GGUF")]
    ModelLoad { path: PathBuf },

    #[error("could not create a llama.cpp context of {context_tokens} tokens for {slots} slots: {reason}; lower `context_tokens` or `slots`")]
    Context {
        context_tokens: u32,
        slots: usize,
        reason: String,
    },

    #[error("invalid engine configuration: {0}")]
    Config(String),

    #[error("could not initialise llama.cpp: {0}")]
    Backend(String),

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error("the prompt has {prompt_tokens} tokens but a slot holds at most {limit} (prompt plus at least one generated token): shorten the conversation, or raise `context_tokens` / lower `slots`")]
    PromptTooLong { prompt_tokens: usize, limit: usize },

    #[error("the local model is busy: {queue} requests are already waiting for a slot; retry later, or raise `queue` / `slots`")]
    Busy { queue: usize },

    #[error("llama.cpp failed to decode a batch ({0}); the request was stopped, retry it")]
    Decode(String),

    #[error("the inference thread has stopped; restart the process (see earlier log lines for the cause)")]
    Stopped,
}
