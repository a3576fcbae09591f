//! Arguments, measurements and llama.cpp set-up shared by the engine's bench examples, so that
//! they measure the same thing the same way.

use std::path::PathBuf;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};

pub struct Args {
    pub model: PathBuf,
    pub prompt: String,
    pub tokens: usize,
    pub threads: usize,
    /// A system message before the user's; none leaves the chat template's default.
    pub system: Option<String>,
    /// Leading prompt tokens already in the KV cache when the prompt is timed (`bare_llama`),
    /// as a gateway's prefix cache holds a prefix shared with an earlier request.
    pub cached: usize,
}

const USAGE: &str = "options: --model PATH (default models/SmolLM2-135M-Instruct.Q4_1.gguf) \
--prompt TEXT (the user message) --tokens N (default 128) --threads T (default: all cores) \
--system TEXT (a system message before the user's) --cached N (bare_llama: the first N prompt \
tokens are in the KV cache before the timed decode; default 0)";

impl Args {
    pub fn parse() -> Result<Args, String> {
        let mut args = Args {
            model: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf"
            )),
            prompt: "Write a long, detailed essay about the history of the Roman Empire, from \
                     the founding of Rome to the fall of Constantinople, covering its emperors, \
                     wars, economy, culture, religion and lasting influence on Europe."
                .to_string(),
            tokens: 128,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            system: None,
            cached: 0,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
            let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--model" => args.model = PathBuf::from(value),
                "--prompt" => args.prompt = value,
                "--tokens" => args.tokens = number(&value)?,
                "--threads" => args.threads = number(&value)?,
                "--system" => args.system = Some(value),
                "--cached" => args.cached = number(&value)?,
                _ => return Err(format!("unknown option {flag}; {USAGE}")),
            }
        }
        Ok(args)
    }
}

/// Peak resident memory of this process, from the kernel's high-water mark.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Tokens per second; generation speed counts the tokens after the first one over the time
/// after the first one, so prompt processing is not mixed in.
pub fn per_second(tokens: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}

/// The plain llama.cpp set-up of the reference programs: logs off, the backend, the model from
/// `--model`, and its chat template (ChatML when it has none, as the engine does).
// engine_bench, which includes this module too, loads through `Engine` instead.
#[allow(dead_code)]
pub fn load_llama(
    args: &Args,
) -> Result<(LlamaBackend, LlamaModel, LlamaChatTemplate), Box<dyn std::error::Error>> {
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
    let backend = LlamaBackend::init()?;
    let model = LlamaModel::load_from_file(&backend, &args.model, &LlamaModelParams::default())?;
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"))?;
    Ok((backend, model, template))
}

/// The conversation the reference programs render: the optional system message, then `user`.
// engine_bench, which includes this module too, renders through `Engine` instead.
#[allow(dead_code)]
pub fn conversation(
    args: &Args,
    user: &str,
) -> Result<Vec<llama_cpp_2::model::LlamaChatMessage>, Box<dyn std::error::Error>> {
    use llama_cpp_2::model::LlamaChatMessage;
    let mut turns = Vec::new();
    if let Some(system) = &args.system {
        turns.push(LlamaChatMessage::new("system".into(), system.clone())?);
    }
    turns.push(LlamaChatMessage::new("user".into(), user.to_string())?);
    Ok(turns)
}
