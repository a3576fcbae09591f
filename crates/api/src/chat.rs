use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ApiError;

/// `POST /v1/chat/completions` request. Fields the gateway does not model stay in `extra` and
/// are sent on to upstreams unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `stop`: one string or up to four.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }

    /// The message's text: a string content, or its text parts joined by newlines.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Message content: a plain string or an array of typed parts (text, image_url, …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// The completion budget the client asked for, whichever of the two names it used.
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    pub fn stop_sequences(&self) -> Vec<String> {
        self.stop.as_ref().map(Stop::to_vec).unwrap_or_default()
    }

    /// Checks what serde cannot: value ranges and the shape of the conversation.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                "model",
                "`model` is empty: name a configured model, or \"auto\" to let the router choose",
            ));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages",
                "`messages` is empty: send at least one message",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            let empty = match &m.content {
                None => m.tool_calls.is_none(),
                Some(Content::Text(_)) => false,
                Some(Content::Parts(p)) => p.is_empty(),
            };
            if empty {
                return Err(ApiError::invalid(
                    format!("messages[{i}].content"),
                    format!("`messages[{i}]` has no content: give it a string or content parts"),
                ));
            }
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ApiError::invalid(
                    "temperature",
                    format!("`temperature` is {t}: it must be between 0 and 2"),
                ));
            }
        }
        if let Some(p) = self.top_p {
            if !(0.0..=1.0).contains(&p) {
                return Err(ApiError::invalid(
                    "top_p",
                    format!("`top_p` is {p}: it must be between 0 and 1"),
                ));
            }
        }
        for (name, v) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if let Some(v) = v {
                if !(-2.0..=2.0).contains(&v) {
                    return Err(ApiError::invalid(
                        name,
                        format!("`{name}` is {v}: it must be between -2 and 2"),
                    ));
                }
            }
        }
        if self.max_output_tokens() == Some(0) {
            return Err(ApiError::invalid(
                "max_tokens",
                "`max_tokens` is 0: ask for at least one token",
            ));
        }
        if let Some(n) = self.n {
            if n != 1 {
                return Err(ApiError::invalid(
                    "n",
                    format!("`n` is {n}: Switchyard answers one choice per request; send n=1"),
                ));
            }
        }
        if let Some(Stop::Many(v)) = &self.stop {
            if v.len() > 4 {
                return Err(ApiError::invalid(
                    "stop",
                    format!("`stop` has {} sequences: send at most 4", v.len()),
                ));
            }
        }
        if let Some(k) = self.top_logprobs {
            if k > 20 {
                return Err(ApiError::invalid(
                    "top_logprobs",
                    format!("`top_logprobs` is {k}: it must be between 0 and 20"),
                ));
            }
            if self.logprobs != Some(true) {
                return Err(ApiError::invalid(
                    "top_logprobs",
                    "`top_logprobs` needs `logprobs: true`",
                ));
            }
        }
        if self.stream_options.is_some() && !self.is_stream() {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` is only allowed with `stream: true`",
            ));
        }
        Ok(())
    }
}

/// A non-streamed completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    #[serde(default = "chat_completion")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn chat_completion() -> String {
    "chat.completion".into()
}

fn chat_completion_chunk() -> String {
    "chat.completion.chunk".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: AssistantMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Logprobs>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssistantMessage {
    pub role: Role,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// OpenAI's breakdown of the prompt tokens.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from a cache of an earlier request's prefix.
    #[serde(default)]
    pub cached_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: None,
        }
    }

    /// The same usage, saying that `cached_tokens` of the prompt came from a prefix cache.
    pub fn with_cached_prompt_tokens(self, cached_tokens: u32) -> Self {
        Usage {
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens }),
            ..self
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Logprobs {
    #[serde(default)]
    pub content: Option<Vec<TokenLogprob>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
}

/// One server-sent event of a streamed completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatChunk {
    pub id: String,
    #[serde(default = "chat_completion_chunk")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Logprobs>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
}

impl ChatChunk {
    /// A chunk with one choice carrying `delta`.
    pub fn delta(id: &str, created: u64, model: &str, delta: Delta) -> Self {
        ChatChunk {
            id: id.to_owned(),
            object: chat_completion_chunk(),
            created,
            model: model.to_owned(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: None,
                logprobs: None,
            }],
            usage: None,
        }
    }

    /// The chunk that closes a choice with its finish reason.
    pub fn finish(id: &str, created: u64, model: &str, reason: &str) -> Self {
        let mut c = ChatChunk::delta(id, created, model, Delta::default());
        c.choices[0].finish_reason = Some(reason.to_owned());
        c
    }

    /// The usage-only chunk sent last when `stream_options.include_usage` is set.
    pub fn usage(id: &str, created: u64, model: &str, usage: Usage) -> Self {
        ChatChunk {
            id: id.to_owned(),
            object: chat_completion_chunk(),
            created,
            model: model.to_owned(),
            choices: Vec::new(),
            usage: Some(usage),
        }
    }
}

impl ChatResponse {
    /// A one-choice assistant answer.
    pub fn text(
        id: &str,
        created: u64,
        model: &str,
        text: String,
        finish: &str,
        usage: Usage,
    ) -> Self {
        ChatResponse {
            id: id.to_owned(),
            object: chat_completion(),
            created,
            model: model.to_owned(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: Role::Assistant,
                    content: Some(text),
                    tool_calls: None,
                    extra: Map::new(),
                },
                finish_reason: Some(finish.to_owned()),
                logprobs: None,
            }],
            usage: Some(usage),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn content_may_be_a_string_or_parts() {
        let r = parse(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]}
        ]}))
        .unwrap();
        assert_eq!(r.messages[0].text(), "hi");
        assert_eq!(r.messages[1].text(), "a\nb");
        r.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_kept_for_upstreams() {
        let r = parse(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})).unwrap();
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["response_format"]["type"], "json_object");
        assert!(back.get("stream").is_none());
    }

    #[test]
    fn validation_names_the_offending_field() {
        let base =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let cases = [
            ("temperature", serde_json::json!(3.0)),
            ("top_p", serde_json::json!(1.5)),
            ("n", serde_json::json!(2)),
            ("max_tokens", serde_json::json!(0)),
        ];
        for (field, value) in cases {
            let mut v = base.clone();
            v[field] = value;
            let err = parse(v).unwrap().validate().unwrap_err();
            assert_eq!(err.param.as_deref(), Some(field));
            assert_eq!(err.status(), 400);
        }
        let empty = parse(serde_json::json!({"model": "m", "messages": []})).unwrap();
        assert_eq!(
            empty.validate().unwrap_err().param.as_deref(),
            Some("messages")
        );
    }

    #[test]
    fn error_body_has_openai_shape() {
        let err =
            ApiError::new(crate::ErrorKind::NotFound, "no such model").with_code("model_not_found");
        let body = serde_json::to_value(err.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["message"], "no such model");
        assert!(body["error"]["param"].is_null());
    }
}
