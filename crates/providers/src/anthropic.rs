//! Anthropic's Messages API (`POST {base_url}/messages`), translated to and from OpenAI's
//! chat completions.
//!
//! Request: system and developer messages become the top-level `system`; content parts become
//! blocks (text, images from data or plain URLs); assistant `tool_calls` become `tool_use`
//! blocks and tool-role messages `tool_result` blocks in a user turn; consecutive turns of one
//! role merge. `max_tokens` is required upstream (4096 when the client gave none), `stop`
//! becomes `stop_sequences`, `temperature` is clamped to Anthropic's 0–1, `user` becomes
//! `metadata.user_id`, function tools get `input_schema`, and `tool_choice` /
//! `parallel_tool_calls` map onto Anthropic's `tool_choice`. Fields with no Anthropic
//! counterpart (`seed`, penalties, `logprobs`, `n`, `response_format`…) are not sent.
//!
//! Response: text blocks join into the content, `tool_use` blocks become `tool_calls`;
//! `stop_reason` end_turn/stop_sequence → `stop`, max_tokens → `length`, tool_use →
//! `tool_calls`, refusal → `content_filter`. Usage counts cached input tokens as prompt tokens.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eventsource_stream::Event;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use switchyard_api::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, Choice, Content, Delta, Message, Role,
    Stop, Usage,
};
use tokio::time::Instant;

use crate::openai::preview;
use crate::transport::{Endpoint, EventError, Translate};
use crate::{ChunkStream, Provider, ProviderConfig, ProviderError, SetupError};

/// What `max_tokens` is when the client set none: Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
const VERSION: &str = "2023-06-01";

/// An Anthropic upstream, spoken to in its Messages API.
pub struct AnthropicProvider {
    model: String,
    endpoint: Arc<Endpoint>,
}

impl AnthropicProvider {
    /// Fails when the base URL is not an absolute http(s) URL or the key cannot be sent as a
    /// header; warns when the base URL already ends with `/messages`, which is appended.
    pub fn new(cfg: ProviderConfig) -> Result<Self, SetupError> {
        let model = cfg.model.clone();
        let endpoint = crate::endpoint("anthropic", cfg, "messages", |key| {
            let mut headers = vec![("anthropic-version", HeaderValue::from_static(VERSION))];
            if let Some(key) = key {
                headers.push(("x-api-key", crate::secret_header(key)?));
            }
            Ok(headers)
        })?;
        Ok(AnthropicProvider { model, endpoint })
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let invalid = |message: String| ProviderError::Request {
            upstream: self.endpoint.upstream.clone(),
            message,
        };
        let translated = translate(req, &self.model, stream).map_err(invalid)?;
        serde_json::to_vec(&translated)
            .map(Bytes::from)
            .map_err(|e| invalid(format!("the request could not be serialised: {e}")))
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let ep = &self.endpoint;
        let body = self.body(req, false)?;
        let start = Instant::now();
        ep.with_retries(start, || async {
            let (resp, _) = ep.send(body.clone(), start).await?;
            let bytes = ep.read_body(resp, start).await?;
            let msg = serde_json::from_slice::<MessagesResponse>(&bytes).map_err(|e| {
                ep.protocol(format!(
                    "the body is not an Anthropic message ({e}): {}",
                    preview(&bytes)
                ))
            })?;
            Ok(msg.into_openai())
        })
        .await
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let ep = &self.endpoint;
        let body = self.body(req, true)?;
        let start = Instant::now();
        ep.with_retries(start, || async {
            let (resp, first) = ep.send(body.clone(), start).await?;
            ep.events(resp, first, start, AnthropicEvents::default())
                .start()
                .await
        })
        .await
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

// ---------------------------------------------------------------------------------------------
// Request translation

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
}

static EMPTY_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"type": "object", "properties": {}}));

fn translate<'a>(
    req: &'a ChatRequest,
    model: &'a str,
    stream: bool,
) -> Result<MessagesRequest<'a>, String> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn<'a>> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.push(m.text());
                continue;
            }
            Role::User => ("user", content_blocks(m, i)?),
            Role::Assistant => ("assistant", assistant_blocks(m, i)?),
            Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    format!("messages[{i}] is a tool result without `tool_call_id`")
                })?;
                (
                    "user",
                    vec![Block::ToolResult {
                        tool_use_id: id,
                        content: m.text(),
                    }],
                )
            }
        };
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    let stop_sequences = match &req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.as_str()],
        Some(Stop::Many(v)) => v.iter().map(String::as_str).collect(),
    };
    let tools = req
        .tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| tool(t, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagesRequest {
        model,
        max_tokens: req.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns,
        stop_sequences,
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: req.extra.get("top_k"),
        tool_choice: tool_choice(req)?,
        tools,
        metadata: req.user.as_deref().map(|user_id| Metadata { user_id }),
        stream,
    })
}

fn content_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>, String> {
    match &m.content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(vec![Block::Text { text }]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match (p.kind.as_str(), p.text.as_deref()) {
                ("text", Some(text)) => Ok(Block::Text { text }),
                ("image_url", _) => {
                    let url = p
                        .extra
                        .get("image_url")
                        .and_then(|u| u.get("url").or(Some(u)))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            format!("messages[{i}].content[{j}] is an image_url without a url")
                        })?;
                    Ok(Block::Image {
                        source: image_source(url),
                    })
                }
                (kind, _) => Err(format!(
                    "messages[{i}].content[{j}] has type `{kind}`, which Anthropic upstreams do not take (text and image_url only)"
                )),
            })
            .collect(),
    }
}

/// `data:MEDIA;base64,DATA` URLs become base64 sources; others are passed as URLs.
fn image_source(url: &str) -> ImageSource<'_> {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media_type, data)) = rest.split_once(";base64,") {
            return ImageSource::Base64 { media_type, data };
        }
    }
    ImageSource::Url { url }
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>, String> {
    let mut blocks = content_blocks(m, i)?;
    // Anthropic rejects empty text blocks, which assistant turns with tool calls often carry.
    blocks.retain(|b| !matches!(b, Block::Text { text } if text.is_empty()));
    for (j, call) in m
        .tool_calls
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        fn field<'v>(
            v: Option<&'v Value>,
            name: &str,
            i: usize,
            j: usize,
        ) -> Result<&'v str, String> {
            v.and_then(Value::as_str)
                .ok_or_else(|| format!("messages[{i}].tool_calls[{j}] has no `{name}`"))
        }
        let id = field(call.get("id"), "id", i, j)?;
        let function = call.get("function");
        let name = field(function.and_then(|f| f.get("name")), "function.name", i, j)?;
        let args = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = if args.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str::<Value>(args)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    format!("messages[{i}].tool_calls[{j}].function.arguments is not a JSON object")
                })?
        };
        blocks.push(Block::ToolUse { id, name, input });
    }
    Ok(blocks)
}

fn tool(t: &Value, i: usize) -> Result<Tool<'_>, String> {
    let f = match t.get("type").and_then(Value::as_str) {
        Some("function") | None => t.get("function").unwrap_or(t),
        Some(other) => {
            return Err(format!(
                "tools[{i}] has type `{other}`; Anthropic upstreams take function tools only"
            ))
        }
    };
    Ok(Tool {
        name: f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tools[{i}] has no function name"))?,
        description: f.get("description").and_then(Value::as_str),
        input_schema: f.get("parameters").unwrap_or(&EMPTY_SCHEMA),
    })
}

fn tool_choice(req: &ChatRequest) -> Result<Option<Value>, String> {
    let mut choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            other => {
                return Err(format!(
                    "tool_choice `{other}` is not auto, none or required"
                ))
            }
        }),
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or("tool_choice names no function")?;
            Some(json!({"type": "tool", "name": name}))
        }
    };
    if req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(choice)
}

// ---------------------------------------------------------------------------------------------
// Response translation

#[derive(Deserialize)]
struct MessagesResponse {
    id: String,
    model: String,
    #[serde(default)]
    content: Vec<ResponseBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
}

impl AnthropicUsage {
    fn prompt_tokens(&self) -> u32 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }
}

fn tool_call(id: &str, name: &str, arguments: String) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

impl MessagesResponse {
    fn into_openai(self) -> ChatResponse {
        let mut text: Option<String> = None;
        let mut calls = Vec::new();
        for block in self.content {
            match block {
                ResponseBlock::Text { text: t } => match &mut text {
                    Some(all) => all.push_str(&t),
                    None => text = Some(t),
                },
                ResponseBlock::ToolUse { id, name, input } => {
                    let input = if input.is_null() {
                        Value::Object(Map::new())
                    } else {
                        input
                    };
                    calls.push(tool_call(&id, &name, input.to_string()));
                }
                ResponseBlock::Other => {}
            }
        }
        let finish = self.stop_reason.as_deref().map_or("stop", finish_reason);
        ChatResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: now(),
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: Role::Assistant,
                    content: text,
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    extra: Map::new(),
                },
                finish_reason: Some(finish.to_owned()),
                logprobs: None,
            }],
            usage: Some(Usage::new(
                self.usage.prompt_tokens(),
                self.usage.output_tokens,
            )),
            extra: Map::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stream translation

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Error {
        error: StreamError,
    },
    /// `ping`, `content_block_stop`, and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    id: String,
    model: String,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signatures, citations: not part of an OpenAI answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

#[derive(Default)]
struct AnthropicEvents {
    id: String,
    model: String,
    created: u64,
    usage: AnthropicUsage,
    /// For each content block index that is a tool call, its OpenAI tool-call index.
    tools: Vec<(u32, u32)>,
}

impl AnthropicEvents {
    fn chunk(&self, delta: Delta) -> ChatChunk {
        ChatChunk::delta(&self.id, self.created, &self.model, delta)
    }

    fn tool_index(&self, block: u32) -> Option<u32> {
        self.tools
            .iter()
            .find(|(b, _)| *b == block)
            .map(|&(_, t)| t)
    }
}

impl Translate for AnthropicEvents {
    const END: &'static str = "`message_stop`";

    fn event(&mut self, event: Event, out: &mut VecDeque<ChatChunk>) -> Result<bool, EventError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let parsed = serde_json::from_str::<StreamEvent>(&event.data).map_err(|e| {
            EventError::Malformed(format!(
                "an event is not an Anthropic stream event ({e}): {}",
                preview(event.data.as_bytes())
            ))
        })?;
        match parsed {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.created = now();
                self.usage = message.usage;
                out.push_back(self.chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    tool_calls: None,
                }));
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                StartBlock::Text { text } if !text.is_empty() => out.push_back(self.chunk(Delta {
                    content: Some(text),
                    ..Delta::default()
                })),
                StartBlock::ToolUse { id, name } => {
                    let n = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push((index, n));
                    let mut call = tool_call(&id, &name, String::new());
                    call["index"] = json!(n);
                    out.push_back(self.chunk(Delta {
                        tool_calls: Some(vec![call]),
                        ..Delta::default()
                    }));
                }
                _ => {}
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => out.push_back(self.chunk(Delta {
                    content: Some(text),
                    ..Delta::default()
                })),
                BlockDelta::InputJsonDelta { partial_json } => {
                    let n = self.tool_index(index).ok_or_else(|| {
                        EventError::Malformed(format!(
                            "input_json_delta for block {index}, which is not a tool_use block"
                        ))
                    })?;
                    out.push_back(self.chunk(Delta {
                        tool_calls: Some(vec![
                            json!({"index": n, "function": {"arguments": partial_json}}),
                        ]),
                        ..Delta::default()
                    }));
                }
                BlockDelta::Other => {}
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.output_tokens = u.output_tokens;
                    if u.input_tokens > 0 {
                        self.usage.input_tokens = u.input_tokens;
                    }
                }
                if let Some(reason) = delta.stop_reason {
                    out.push_back(ChatChunk::finish(
                        &self.id,
                        self.created,
                        &self.model,
                        finish_reason(&reason),
                    ));
                }
            }
            StreamEvent::MessageStop => {
                out.push_back(ChatChunk::usage(
                    &self.id,
                    self.created,
                    &self.model,
                    Usage::new(self.usage.prompt_tokens(), self.usage.output_tokens),
                ));
                return Ok(true);
            }
            StreamEvent::Error { error } => {
                return Err(EventError::Upstream(format!(
                    "{}: {}",
                    error.kind, error.message
                )))
            }
            StreamEvent::Other => {}
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn translates_a_tool_conversation() {
        let r = req(json!({
            "model": "c", "user": "u7", "stop": "END", "temperature": 1.5,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false
        }));
        let v = serde_json::to_value(translate(&r, "claude-x", false).unwrap()).unwrap();
        assert_eq!(v["model"], "claude-x");
        assert_eq!(v["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(v["system"], "Be brief.");
        assert_eq!(v["stop_sequences"], json!(["END"]));
        assert_eq!(v["temperature"], 1.0);
        assert_eq!(v["metadata"]["user_id"], "u7");
        assert!(v.get("stream").is_none());
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(msgs[0]["content"][1]["source"]["media_type"], "image/png");
        assert_eq!(msgs[1]["role"], "assistant");
        assert_eq!(msgs[1]["content"].as_array().unwrap().len(), 1);
        assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
        assert_eq!(msgs[1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
        assert_eq!(msgs[2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(msgs[2]["content"][1]["text"], "Thanks");
        assert_eq!(
            v["tools"][0]["input_schema"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn rejects_what_anthropic_cannot_take() {
        let bad_args = req(json!({"model": "c", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "[1]"}}]}
        ]}));
        assert!(translate(&bad_args, "m", false)
            .err()
            .unwrap()
            .contains("arguments"));
        let audio = req(json!({"model": "c", "messages": [
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
        ]}));
        assert!(translate(&audio, "m", false)
            .err()
            .unwrap()
            .contains("input_audio"));
    }

    #[test]
    fn maps_stop_reasons() {
        assert_eq!(finish_reason("end_turn"), "stop");
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
        assert_eq!(finish_reason("tool_use"), "tool_calls");
    }
}
