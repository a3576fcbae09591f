//! A mock upstream that speaks the OpenAI and Anthropic wire formats, for tests, demos and load.
//!
//! Endpoints: `POST /v1/chat/completions` (OpenAI, streamed or not, honours
//! `stream_options.include_usage`), `POST /v1/messages` (Anthropic Messages API, streamed or
//! not; needs an `anthropic-version` header like the real one) and `GET /v1/models`.
//! It answers at once with `"This is a mock answer."` and usage counts estimated from the
//! request (about one token per four characters of message content, plus four per message).
//!
//! # Behaviour by model id
//!
//! The request's `model` picks the behaviour, so it works through a gateway whose configured
//! upstream model id is one of these:
//!
//! | model id | behaviour |
//! |---|---|
//! | anything else (e.g. `mock`) | the normal answer |
//! | `fail-NNN` (e.g. `fail-500`, `fail-503`) | HTTP NNN (400–599) with an error body in the endpoint's format |
//! | `flaky-N` | the first N requests for this model id on this mock instance answer 503, later ones succeed |
//! | `ratelimit-N` | the first N requests for this model id answer 429 with `Retry-After: 1` |
//! | `slow-MS` | waits MS milliseconds before sending the response headers |
//! | `stream-break-K` | streams K events (at most all but the last), then drops the connection without the end marker |
//! | `stream-stall-MS` | streams one event, waits MS milliseconds, then the rest |
//! | `stream-error-K` | streams K events (at most all but the last), then an error event in the endpoint's format (OpenAI: `data: {"error": {…}}`; Anthropic: `event: error`) and ends the stream, as the real APIs report a failure after the 200 |
//! | `held` | waits until [`MockHandle::release_held`] (for tests: the binary never releases) before sending the response headers |
//! | `bad-json` | 200 with a body that is not JSON (for streams: an event whose data is not JSON) |
//! | `echo` | the answer's text is the raw JSON body the mock received |
//! | `echo-pieces` | as `echo`, streamed in deltas of a few characters (so a value can be split anywhere), and when the request has tools also a call to the first one with arguments `{"echo": BODY}`, streamed the same way |
//! | `tool-call` | a call to the request's first tool (or `get_weather`) with arguments `{"city":"Paris"}`; finish `tool_calls` / `tool_use` |
//! | `length` | a truncated answer, finish `length` / `max_tokens` |
//! | `stop-seq` | a truncated answer, finish `stop` / `stop_sequence` (`stop_sequence: " answer"`) |
//!
//! Every answered request is counted ([`MockHandle::requests`], awaitable with
//! [`MockHandle::wait_for_requests`]) and, up to [`MockConfig::keep_requests`], kept with its
//! headers and body ([`MockHandle::received`]).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

/// The mock's normal answer.
pub const ANSWER: &str = "This is a mock answer.";
const ANSWER_PIECES: [&str; 6] = ["This", " is", " a", " mock", " answer", "."];

/// Where to listen and what to remember.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Default `127.0.0.1:0`: any free port.
    pub listen: SocketAddr,
    /// How many received requests (headers and body) to keep for [`MockHandle::received`];
    /// the oldest go first. 0 keeps none (for load tests).
    pub keep_requests: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            keep_requests: 1024,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `/v1/chat/completions` or `/v1/messages`.
    pub path: &'static str,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running mock. Dropping it (or [`MockHandle::shutdown`]) stops it.
pub struct MockHandle {
    addr: SocketAddr,
    state: Arc<MockState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`: what a provider's `base_url` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// How many chat requests (either endpoint) the mock has received.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Waits until the mock has received at least `n` chat requests (either endpoint): a test
    /// knows its requests are in flight upstream without guessing how long that takes.
    pub async fn wait_for_requests(&self, n: u64) {
        loop {
            // Created before the check, so a request counted in between still wakes it.
            let counted = self.state.counted.notified();
            if self.requests() >= n {
                return;
            }
            counted.await;
        }
    }

    /// Lets every `held` request answer, those waiting now and any that come later.
    pub fn release_held(&self) {
        self.state.released.send_replace(true);
    }

    /// The requests kept (see [`MockConfig::keep_requests`]), oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.kept().iter().cloned().collect()
    }

    /// The most recent request kept.
    pub fn last_received(&self) -> Option<Received> {
        self.state.kept().back().cloned()
    }

    /// Stops accepting, lets requests in flight finish, and waits for that.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.stop.take().map(|s| s.send(()));
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a mock on `cfg.listen` and returns once it accepts connections.
pub async fn spawn(cfg: MockConfig) -> std::io::Result<MockHandle> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(MockState {
        requests: AtomicU64::new(0),
        keep: cfg.keep_requests,
        kept: Mutex::new(VecDeque::new()),
        counters: Mutex::new(HashMap::new()),
        counted: Notify::new(),
        released: watch::Sender::new(false),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/v1/models", get(models))
        .with_state(state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(MockHandle {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}

struct MockState {
    requests: AtomicU64,
    keep: usize,
    kept: Mutex<VecDeque<Received>>,
    /// Requests seen per model id, for `flaky-N` and `ratelimit-N`.
    counters: Mutex<HashMap<String, u64>>,
    /// Woken at every counted request, for [`MockHandle::wait_for_requests`].
    counted: Notify,
    /// Whether `held` requests may answer ([`MockHandle::release_held`]).
    released: watch::Sender<bool>,
    created: u64,
}

impl MockState {
    fn kept(&self) -> std::sync::MutexGuard<'_, VecDeque<Received>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the request, keeps it if asked to, and returns its number (from 1).
    fn record(&self, path: &'static str, headers: &HeaderMap, body: &Bytes) -> u64 {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.counted.notify_waiters();
        if self.keep > 0 {
            let mut kept = self.kept();
            if kept.len() >= self.keep {
                kept.pop_front();
            }
            kept.push_back(Received {
                path,
                headers: headers.clone(),
                body: body.clone(),
            });
        }
        n
    }

    /// How many requests for `model` came before this one.
    fn seen_before(&self, model: &str) -> u64 {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let c = counters.entry(model.to_owned()).or_insert(0);
        *c += 1;
        *c - 1
    }
}

/// What the model id asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Normal,
    Fail(u16),
    Flaky(u64),
    RateLimit(u64),
    Slow(u64),
    StreamBreak(usize),
    StreamStall(u64),
    StreamError(usize),
    Held,
    BadJson,
    Echo,
    EchoPieces,
    ToolCall,
    Length,
    StopSeq,
}

fn behaviour(model: &str) -> Behaviour {
    fn num<T: std::str::FromStr>(model: &str, prefix: &str) -> Option<T> {
        model.strip_prefix(prefix)?.parse().ok()
    }
    match model {
        "bad-json" => return Behaviour::BadJson,
        "held" => return Behaviour::Held,
        "echo" => return Behaviour::Echo,
        "echo-pieces" => return Behaviour::EchoPieces,
        "tool-call" => return Behaviour::ToolCall,
        "length" => return Behaviour::Length,
        "stop-seq" => return Behaviour::StopSeq,
        _ => {}
    }
    if let Some(s) = num::<u16>(model, "fail-").filter(|s| (400..600).contains(s)) {
        Behaviour::Fail(s)
    } else if let Some(n) = num(model, "flaky-") {
        Behaviour::Flaky(n)
    } else if let Some(n) = num(model, "ratelimit-") {
        Behaviour::RateLimit(n)
    } else if let Some(ms) = num(model, "slow-") {
        Behaviour::Slow(ms)
    } else if let Some(k) = num(model, "stream-break-") {
        Behaviour::StreamBreak(k)
    } else if let Some(ms) = num(model, "stream-stall-") {
        Behaviour::StreamStall(ms)
    } else if let Some(k) = num(model, "stream-error-") {
        Behaviour::StreamError(k)
    } else {
        Behaviour::Normal
    }
}

/// The parts of a request the mock looks at; the rest is skipped without being built.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<ProbeStreamOptions>,
    #[serde(borrow, default)]
    messages: Vec<ProbeMessage<'a>>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ProbeStreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ProbeMessage<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

impl Probe<'_> {
    fn prompt_tokens(&self) -> u32 {
        let chars: usize = self
            .messages
            .iter()
            .filter_map(|m| m.content.map(|c| c.get().len()))
            .chain(self.system.map(|s| s.get().len()))
            .sum();
        u32::try_from(chars / 4 + 4 * self.messages.len()).unwrap_or(u32::MAX)
    }

    /// The first tool's name: OpenAI's `tools[0].function.name` or Anthropic's `tools[0].name`.
    fn first_tool(&self) -> Option<String> {
        let tools: serde_json::Value = serde_json::from_str(self.tools?.get()).ok()?;
        let t = &tools[0];
        t["function"]["name"]
            .as_str()
            .or_else(|| t["name"].as_str())
            .map(str::to_owned)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    OpenAi,
    Anthropic,
}

/// What the answer says, independent of the wire format.
struct Answer {
    /// Text pieces, one per streamed delta.
    pieces: Vec<Cow<'static, str>>,
    tool: Option<String>,
    /// The tool call's arguments (a JSON object), one piece per streamed delta.
    tool_args: Vec<Cow<'static, str>>,
    finish: Finish,
    prompt_tokens: u32,
    completion_tokens: u32,
}

#[derive(Clone, Copy)]
enum Finish {
    Stop,
    Length,
    StopSequence,
    Tool,
}

impl Finish {
    fn name(self, format: Format) -> &'static str {
        match (format, self) {
            (Format::OpenAi, Finish::Stop | Finish::StopSequence) => "stop",
            (Format::OpenAi, Finish::Length) => "length",
            (Format::OpenAi, Finish::Tool) => "tool_calls",
            (Format::Anthropic, Finish::Stop) => "end_turn",
            (Format::Anthropic, Finish::Length) => "max_tokens",
            (Format::Anthropic, Finish::StopSequence) => "stop_sequence",
            (Format::Anthropic, Finish::Tool) => "tool_use",
        }
    }
}

const TOOL_ARGS: [&str; 2] = ["{\"city\":", "\"Paris\"}"];

/// `text` in pieces of `n` characters.
fn split_every(text: &str, n: usize) -> Vec<Cow<'static, str>> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(n)
        .map(|c| Cow::Owned(c.iter().collect()))
        .collect()
}

async fn openai(State(state): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&state, Format::OpenAi, &headers, body).await
}

async fn anthropic(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !headers.contains_key("anthropic-version") {
        state.record("/v1/messages", &headers, &body);
        return error(
            Format::Anthropic,
            400,
            "anthropic-version: header is required",
        );
    }
    handle(&state, Format::Anthropic, &headers, body).await
}

const MODELS: &str = concat!(
    r#"{"object":"list","data":["#,
    r#"{"id":"mock","object":"model","created":0,"owned_by":"switchyard-mock"},"#,
    r#"{"id":"echo","object":"model","created":0,"owned_by":"switchyard-mock"}"#,
    "]}"
);

async fn models() -> Response {
    respond(200, "application/json", Body::from(MODELS))
}

async fn handle(state: &MockState, format: Format, headers: &HeaderMap, body: Bytes) -> Response {
    let path = match format {
        Format::OpenAi => "/v1/chat/completions",
        Format::Anthropic => "/v1/messages",
    };
    let n = state.record(path, headers, &body);
    let probe: Probe = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(format, 400, &format!("the body is not valid JSON: {e}")),
    };
    let behaviour = behaviour(&probe.model);
    match behaviour {
        Behaviour::Fail(status) => {
            return error(
                format,
                status,
                &format!("mock failure {status} as asked by the model id"),
            )
        }
        Behaviour::Flaky(k) if state.seen_before(&probe.model) < k => {
            return error(format, 503, "mock flakiness: try again")
        }
        Behaviour::RateLimit(k) if state.seen_before(&probe.model) < k => {
            let mut r = error(format, 429, "mock rate limit: retry after 1 second");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Behaviour::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Behaviour::Held => {
            // The sender lives in the state this handler borrows: it cannot close while waiting.
            let _ = state
                .released
                .subscribe()
                .wait_for(|released| *released)
                .await;
        }
        Behaviour::BadJson => {
            return if probe.stream {
                respond(
                    200,
                    "text/event-stream",
                    Body::from("data: {this is not json\n\n"),
                )
            } else {
                respond(200, "application/json", Body::from("this is not json"))
            };
        }
        _ => {}
    }
    let answer = answer(&probe, behaviour, &body);
    let id = match format {
        Format::OpenAi => format!("chatcmpl-mock-{n}"),
        Format::Anthropic => format!("msg_mock_{n}"),
    };
    let model = &*probe.model;
    if !probe.stream {
        let mut out = Vec::with_capacity(512);
        match format {
            Format::OpenAi => openai_json(&mut out, &id, state.created, model, &answer),
            Format::Anthropic => anthropic_json(&mut out, &id, model, &answer),
        }
        return respond(200, "application/json", Body::from(out));
    }
    let mut events = Events::default();
    match format {
        Format::OpenAi => {
            let usage = probe.stream_options.is_some_and(|o| o.include_usage);
            openai_events(&mut events, &id, state.created, model, &answer, usage)
        }
        Format::Anthropic => anthropic_events(&mut events, &id, model, &answer),
    }
    let body = match behaviour {
        Behaviour::StreamBreak(k) => events.broken_after(k),
        Behaviour::StreamStall(ms) => events.stalled(Duration::from_millis(ms)),
        Behaviour::StreamError(k) => events.failed_after(k, format),
        _ => Body::from(events.buf),
    };
    let mut r = respond(200, "text/event-stream", body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn answer(probe: &Probe, behaviour: Behaviour, body: &Bytes) -> Answer {
    let prompt_tokens = probe.prompt_tokens();
    let words = |n: usize| -> Vec<Cow<'static, str>> {
        ANSWER_PIECES[..n]
            .iter()
            .map(|p| Cow::Borrowed(*p))
            .collect()
    };
    let (pieces, tool, finish) = match behaviour {
        Behaviour::Echo => {
            let text = String::from_utf8_lossy(body).into_owned();
            (vec![Cow::Owned(text)], None, Finish::Stop)
        }
        Behaviour::EchoPieces => {
            let text = String::from_utf8_lossy(body);
            let tool = probe.first_tool();
            let finish = if tool.is_some() {
                Finish::Tool
            } else {
                Finish::Stop
            };
            (split_every(&text, 3), tool, finish)
        }
        Behaviour::ToolCall => (
            vec![Cow::Borrowed("Let me check.")],
            Some(
                probe
                    .first_tool()
                    .unwrap_or_else(|| "get_weather".to_owned()),
            ),
            Finish::Tool,
        ),
        Behaviour::Length => (words(3), None, Finish::Length),
        Behaviour::StopSeq => (words(4), None, Finish::StopSequence),
        _ => (words(ANSWER_PIECES.len()), None, Finish::Stop),
    };
    let completion_tokens = pieces
        .iter()
        .map(|p| u32::try_from(p.len() / 5).unwrap_or(u32::MAX).max(1))
        .sum::<u32>()
        + if tool.is_some() { 8 } else { 0 };
    let tool_args = match (behaviour, &tool) {
        (_, None) => Vec::new(),
        (Behaviour::EchoPieces, Some(_)) => {
            let args = serde_json::json!({"echo": String::from_utf8_lossy(body)}).to_string();
            split_every(&args, 3)
        }
        (_, Some(_)) => TOOL_ARGS.iter().map(|p| Cow::Borrowed(*p)).collect(),
    };
    Answer {
        pieces,
        tool,
        tool_args,
        finish,
        prompt_tokens,
        completion_tokens,
    }
}

fn respond(status: u16, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An error in the endpoint's own shape.
fn error(format: Format, status: u16, message: &str) -> Response {
    let (oa_type, an_type) = match status {
        400 => ("invalid_request_error", "invalid_request_error"),
        401 => ("authentication_error", "authentication_error"),
        404 => ("invalid_request_error", "not_found_error"),
        429 => ("rate_limit_error", "rate_limit_error"),
        503 | 529 => ("server_error", "overloaded_error"),
        _ => ("server_error", "api_error"),
    };
    let body = match format {
        Format::OpenAi => {
            serde_json::json!({"error": {"message": message, "type": oa_type, "param": null, "code": null}})
        }
        Format::Anthropic => {
            serde_json::json!({"type": "error", "error": {"type": an_type, "message": message}})
        }
    };
    respond(status, "application/json", Body::from(body.to_string()))
}

/// Writes `s` as a JSON string.
fn js(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn openai_json(out: &mut Vec<u8>, id: &str, created: u64, model: &str, a: &Answer) {
    let _ = write!(
        out,
        r#"{{"id":"{id}","object":"chat.completion","created":{created},"model":"#
    );
    js(out, model);
    out.extend_from_slice(br#","choices":[{"index":0,"message":{"role":"assistant","content":"#);
    js(out, &a.pieces.concat());
    if let Some(tool) = &a.tool {
        out.extend_from_slice(
            br#","tool_calls":[{"id":"call_mock_1","type":"function","function":{"name":"#,
        );
        js(out, tool);
        out.extend_from_slice(br#","arguments":"#);
        js(out, &a.tool_args.concat());
        out.extend_from_slice(b"}}]");
    }
    let _ = write!(
        out,
        r#"}},"finish_reason":"{}"}}],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}}"#,
        a.finish.name(Format::OpenAi),
        a.prompt_tokens,
        a.completion_tokens,
        a.prompt_tokens + a.completion_tokens
    );
}

fn anthropic_json(out: &mut Vec<u8>, id: &str, model: &str, a: &Answer) {
    let _ = write!(
        out,
        r#"{{"id":"{id}","type":"message","role":"assistant","model":"#
    );
    js(out, model);
    out.extend_from_slice(br#","content":[{"type":"text","text":"#);
    js(out, &a.pieces.concat());
    out.push(b'}');
    if let Some(tool) = &a.tool {
        out.extend_from_slice(br#",{"type":"tool_use","id":"toolu_mock_1","name":"#);
        js(out, tool);
        let _ = write!(out, r#","input":{}}}"#, a.tool_args.concat());
    }
    let _ = write!(
        out,
        r#"],"stop_reason":"{}","stop_sequence":{},"usage":{{"input_tokens":{},"output_tokens":{}}}}}"#,
        a.finish.name(Format::Anthropic),
        stop_sequence(a),
        a.prompt_tokens,
        a.completion_tokens
    );
}

fn stop_sequence(a: &Answer) -> &'static str {
    match a.finish {
        Finish::StopSequence => r#"" answer""#,
        _ => "null",
    }
}

/// Server-sent events written into one buffer, with where each ends.
#[derive(Default)]
struct Events {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Events {
    fn event(&mut self, name: Option<&str>, data: impl FnOnce(&mut Vec<u8>)) {
        if let Some(name) = name {
            self.buf.extend_from_slice(b"event: ");
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(b"data: ");
        data(&mut self.buf);
        self.buf.extend_from_slice(b"\n\n");
        self.ends.push(self.buf.len());
    }

    fn split(self) -> Vec<Bytes> {
        let buf = Bytes::from(self.buf);
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let b = buf.slice(start..end);
                start = end;
                b
            })
            .collect()
    }

    /// The first `k` events (at most all but the last), then a dropped connection.
    fn broken_after(self, k: usize) -> Body {
        let mut events = self.split();
        events.truncate(k.min(events.len().saturating_sub(1)));
        let stream =
            futures::stream::iter(events.into_iter().map(Ok)).chain(futures::stream::once(async {
                // Let the events go out before the connection is cut.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(std::io::Error::other("mock stream break"))
            }));
        Body::from_stream(stream)
    }

    /// The first `k` events (at most all but the last), then the endpoint's error event; the
    /// stream then ends cleanly, without the end marker.
    fn failed_after(self, k: usize, format: Format) -> Body {
        let mut events = self.split();
        events.truncate(k.min(events.len().saturating_sub(1)));
        let message = "mock failure mid-stream as asked by the model id";
        let error = match format {
            Format::OpenAi => format!(
                "data: {}\n\n",
                serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
            ),
            Format::Anthropic => format!(
                "event: error\ndata: {}\n\n",
                serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": message}})
            ),
        };
        events.push(Bytes::from(error));
        Body::from_stream(futures::stream::iter(
            events.into_iter().map(Ok::<_, std::io::Error>),
        ))
    }

    /// The first event, a pause, then the rest.
    fn stalled(self, pause: Duration) -> Body {
        let mut events = self.split().into_iter();
        let first = events.next();
        let stream = futures::stream::iter(first.map(Ok::<_, std::io::Error>)).chain(
            futures::stream::once(async move {
                tokio::time::sleep(pause).await;
                futures::stream::iter(events.map(Ok))
            })
            .flatten(),
        );
        Body::from_stream(stream)
    }
}

fn openai_events(ev: &mut Events, id: &str, created: u64, model: &str, a: &Answer, usage: bool) {
    let head = |out: &mut Vec<u8>| {
        let _ = write!(
            out,
            r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"#
        );
        js(out, model);
    };
    let delta = |ev: &mut Events, body: &dyn Fn(&mut Vec<u8>)| {
        ev.event(None, |out| {
            head(out);
            out.extend_from_slice(br#","choices":[{"index":0,"delta":"#);
            body(out);
            out.extend_from_slice(br#","finish_reason":null}]}"#);
        })
    };
    delta(ev, &|out| {
        out.extend_from_slice(br#"{"role":"assistant","content":""}"#)
    });
    for piece in &a.pieces {
        delta(ev, &|out| {
            out.extend_from_slice(br#"{"content":"#);
            js(out, piece);
            out.push(b'}');
        });
    }
    if let Some(tool) = &a.tool {
        delta(ev, &|out| {
            out.extend_from_slice(br#"{"tool_calls":[{"index":0,"id":"call_mock_1","type":"function","function":{"name":"#);
            js(out, tool);
            out.extend_from_slice(br#","arguments":""}}]}"#);
        });
        for part in &a.tool_args {
            delta(ev, &|out| {
                out.extend_from_slice(br#"{"tool_calls":[{"index":0,"function":{"arguments":"#);
                js(out, part);
                out.extend_from_slice(b"}}]}");
            });
        }
    }
    ev.event(None, |out| {
        head(out);
        let _ = write!(
            out,
            r#","choices":[{{"index":0,"delta":{{}},"finish_reason":"{}"}}]}}"#,
            a.finish.name(Format::OpenAi)
        );
    });
    if usage {
        ev.event(None, |out| {
            head(out);
            let _ = write!(
                out,
                r#","choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}}"#,
                a.prompt_tokens,
                a.completion_tokens,
                a.prompt_tokens + a.completion_tokens
            );
        });
    }
    ev.event(None, |out| out.extend_from_slice(b"[DONE]"));
}

fn anthropic_events(ev: &mut Events, id: &str, model: &str, a: &Answer) {
    ev.event(Some("message_start"), |out| {
        let _ = write!(out, r#"{{"type":"message_start","message":{{"id":"{id}","type":"message","role":"assistant","content":[],"model":"#);
        js(out, model);
        let _ = write!(
            out,
            r#","stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"output_tokens":1}}}}}}"#,
            a.prompt_tokens
        );
    });
    ev.event(Some("content_block_start"), |out| {
        out.extend_from_slice(br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
    });
    ev.event(Some("ping"), |out| {
        out.extend_from_slice(br#"{"type":"ping"}"#)
    });
    for piece in &a.pieces {
        ev.event(Some("content_block_delta"), |out| {
            out.extend_from_slice(
                br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#,
            );
            js(out, piece);
            out.extend_from_slice(b"}}");
        });
    }
    ev.event(Some("content_block_stop"), |out| {
        out.extend_from_slice(br#"{"type":"content_block_stop","index":0}"#)
    });
    if let Some(tool) = &a.tool {
        ev.event(Some("content_block_start"), |out| {
            out.extend_from_slice(br#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_mock_1","name":"#);
            js(out, tool);
            out.extend_from_slice(br#","input":{}}}"#);
        });
        for part in &a.tool_args {
            ev.event(Some("content_block_delta"), |out| {
                out.extend_from_slice(br#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"#);
                js(out, part);
                out.extend_from_slice(b"}}");
            });
        }
        ev.event(Some("content_block_stop"), |out| {
            out.extend_from_slice(br#"{"type":"content_block_stop","index":1}"#)
        });
    }
    ev.event(Some("message_delta"), |out| {
        let _ = write!(
            out,
            r#"{{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":{}}},"usage":{{"output_tokens":{}}}}}"#,
            a.finish.name(Format::Anthropic),
            stop_sequence(a),
            a.completion_tokens
        );
    });
    ev.event(Some("message_stop"), |out| {
        out.extend_from_slice(br#"{"type":"message_stop"}"#)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_select_behaviours() {
        assert_eq!(behaviour("mock"), Behaviour::Normal);
        assert_eq!(behaviour("gpt-4o"), Behaviour::Normal);
        assert_eq!(behaviour("fail-503"), Behaviour::Fail(503));
        assert_eq!(behaviour("fail-200"), Behaviour::Normal);
        assert_eq!(behaviour("flaky-2"), Behaviour::Flaky(2));
        assert_eq!(behaviour("ratelimit-1"), Behaviour::RateLimit(1));
        assert_eq!(behaviour("slow-250"), Behaviour::Slow(250));
        assert_eq!(behaviour("stream-break-3"), Behaviour::StreamBreak(3));
        assert_eq!(behaviour("stream-stall-100"), Behaviour::StreamStall(100));
        assert_eq!(behaviour("stream-error-2"), Behaviour::StreamError(2));
        assert_eq!(behaviour("held"), Behaviour::Held);
        assert_eq!(behaviour("bad-json"), Behaviour::BadJson);
        assert_eq!(behaviour("echo"), Behaviour::Echo);
        assert_eq!(behaviour("echo-pieces"), Behaviour::EchoPieces);
    }

    async fn error_stream(format: Format, k: usize) -> String {
        let mut events = Events::default();
        for i in 0..4 {
            events.event(None, |out| {
                let _ = write!(out, "{{\"n\":{i}}}");
            });
        }
        let body = events.failed_after(k, format);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_stream_error_follows_k_events_in_the_endpoints_format() {
        let openai = error_stream(Format::OpenAi, 2).await;
        let events: Vec<&str> = openai.split_terminator("\n\n").collect();
        assert_eq!(&events[..2], ["data: {\"n\":0}", "data: {\"n\":1}"]);
        let error: serde_json::Value =
            serde_json::from_str(events[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(error["error"]["type"], "server_error");
        assert_eq!(events.len(), 3, "nothing after the error: {openai}");

        let anthropic = error_stream(Format::Anthropic, 9).await;
        let events: Vec<&str> = anthropic.split_terminator("\n\n").collect();
        assert_eq!(
            events.len(),
            4,
            "at most all but the last event, then the error"
        );
        let (name, data) = events[3].split_once('\n').unwrap();
        assert_eq!(name, "event: error");
        let error: serde_json::Value =
            serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            (error["type"].as_str(), error["error"]["type"].as_str()),
            (Some("error"), Some("overloaded_error"))
        );
    }
}
