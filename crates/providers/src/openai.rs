//! Any OpenAI-compatible `/chat/completions` upstream.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use eventsource_stream::Event;
use reqwest::header::AUTHORIZATION;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use switchyard_api::{ChatChunk, ChatRequest, ChatResponse, StreamOptions};
use tokio::time::Instant;

use crate::transport::{Endpoint, EventError, Translate};
use crate::{ChunkStream, Provider, ProviderConfig, ProviderError, SetupError};

/// An OpenAI-compatible upstream (OpenAI, vLLM, llama.cpp server, …). Every field of the
/// request passes through, unknown ones included, with `model` replaced by the upstream id.
pub struct OpenAiProvider {
    model: String,
    endpoint: Arc<Endpoint>,
}

impl OpenAiProvider {
    /// Fails when the base URL is not an absolute http(s) URL or the key cannot be sent as a
    /// header; warns when the base URL already ends with `/chat/completions`, which is appended.
    pub fn new(cfg: ProviderConfig) -> Result<Self, SetupError> {
        let model = cfg.model.clone();
        let endpoint = crate::endpoint("openai", cfg, "chat/completions", |key| {
            key.map(|key| {
                let bearer = crate::secret_header(&format!("Bearer {key}"))?;
                Ok((AUTHORIZATION.as_str(), bearer))
            })
            .into_iter()
            .collect()
        })?;
        Ok(OpenAiProvider { model, endpoint })
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        serde_json::to_vec(&Upstream {
            req,
            model: &self.model,
            stream,
        })
        .map(Bytes::from)
        .map_err(|e| ProviderError::Request {
            upstream: self.endpoint.upstream.clone(),
            message: format!("the request could not be serialised: {e}"),
        })
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let ep = &self.endpoint;
        let body = self.body(req, false)?;
        let start = Instant::now();
        ep.with_retries(start, || async {
            let (resp, _) = ep.send(body.clone(), start).await?;
            let bytes = ep.read_body(resp, start).await?;
            serde_json::from_slice::<ChatResponse>(&bytes).map_err(|e| {
                ep.protocol(format!(
                    "the body is not a chat completion ({e}): {}",
                    preview(&bytes)
                ))
            })
        })
        .await
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let ep = &self.endpoint;
        let body = self.body(req, true)?;
        let start = Instant::now();
        ep.with_retries(start, || async {
            let (resp, first) = ep.send(body.clone(), start).await?;
            ep.events(resp, first, start, OpenAiEvents).start().await
        })
        .await
    }
}

/// The first bytes of a body, for error messages.
pub(crate) fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// OpenAI SSE: each `data:` is a chunk, `[DONE]` ends the stream.
struct OpenAiEvents;

impl Translate for OpenAiEvents {
    const END: &'static str = "`data: [DONE]`";

    fn event(&mut self, event: Event, out: &mut VecDeque<ChatChunk>) -> Result<bool, EventError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        match serde_json::from_str::<ChatChunk>(data) {
            Ok(chunk) => {
                out.push_back(chunk);
                Ok(false)
            }
            Err(e) => {
                // Some upstreams report failures mid-stream as `data: {"error": …}`.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                    if let Some(err) = v.get("error") {
                        let msg = err["message"].as_str().unwrap_or("unknown error");
                        return Err(EventError::Upstream(msg.to_owned()));
                    }
                }
                Err(EventError::Malformed(format!(
                    "an event is not a chat completion chunk ({e}): {}",
                    preview(data.as_bytes())
                )))
            }
        }
    }
}

/// The request as sent upstream: every field of the client's, `model` replaced, `stream` set,
/// and for streams `stream_options.include_usage` forced on. Serialised straight from the
/// borrowed request, without a copy.
struct Upstream<'a> {
    req: &'a ChatRequest,
    model: &'a str,
    stream: bool,
}

impl Serialize for Upstream<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Destructured without `..`: a field added to ChatRequest fails to compile here until
        // it is passed on.
        let ChatRequest {
            model: _,
            messages,
            stream: _,
            stream_options: _,
            temperature,
            top_p,
            max_tokens,
            max_completion_tokens,
            stop,
            seed,
            n,
            user,
            presence_penalty,
            frequency_penalty,
            logprobs,
            top_logprobs,
            tools,
            tool_choice,
            extra,
        } = self.req;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry("messages", messages)?;
        if self.stream {
            map.serialize_entry("stream", &true)?;
            map.serialize_entry(
                "stream_options",
                &StreamOptions {
                    include_usage: true,
                },
            )?;
        }
        fn opt<M: SerializeMap, T: Serialize>(
            map: &mut M,
            key: &str,
            v: &Option<T>,
        ) -> Result<(), M::Error> {
            match v {
                Some(v) => map.serialize_entry(key, v),
                None => Ok(()),
            }
        }
        opt(&mut map, "temperature", temperature)?;
        opt(&mut map, "top_p", top_p)?;
        opt(&mut map, "max_tokens", max_tokens)?;
        opt(&mut map, "max_completion_tokens", max_completion_tokens)?;
        opt(&mut map, "stop", stop)?;
        opt(&mut map, "seed", seed)?;
        opt(&mut map, "n", n)?;
        opt(&mut map, "user", user)?;
        opt(&mut map, "presence_penalty", presence_penalty)?;
        opt(&mut map, "frequency_penalty", frequency_penalty)?;
        opt(&mut map, "logprobs", logprobs)?;
        opt(&mut map, "top_logprobs", top_logprobs)?;
        opt(&mut map, "tools", tools)?;
        opt(&mut map, "tool_choice", tool_choice)?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_body_replaces_model_and_keeps_everything_else() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "client-name", "messages": [{"role": "user", "content": "hi"}],
            "stream": true, "stream_options": {"include_usage": false},
            "seed": 7, "user": "u1", "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto", "response_format": {"type": "json_object"}
        }))
        .unwrap();
        let plain = serde_json::to_value(Upstream {
            req: &req,
            model: "gpt-x",
            stream: false,
        })
        .unwrap();
        assert_eq!(plain["model"], "gpt-x");
        assert!(plain.get("stream").is_none() && plain.get("stream_options").is_none());
        assert_eq!(plain["seed"], 7);
        assert_eq!(plain["user"], "u1");
        assert_eq!(plain["tool_choice"], "auto");
        assert_eq!(plain["tools"][0]["function"]["name"], "f");
        assert_eq!(plain["response_format"]["type"], "json_object");
        let streamed = serde_json::to_value(Upstream {
            req: &req,
            model: "gpt-x",
            stream: true,
        })
        .unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["stream_options"]["include_usage"], true);
    }
}
