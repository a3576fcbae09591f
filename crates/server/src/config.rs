//! `switchyard.toml`: parsed strictly (an unknown key is an error naming the key and its line),
//! with `${VAR}` and `${VAR:-default}` replaced from the environment first.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use switchyard_api::ChatRequest;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: environment variable `{var}` is not set; export it, or write ${{{var}:-default}} to make it optional")]
    MissingVar {
        path: PathBuf,
        line: usize,
        var: String,
    },
    #[error("{path}:{line}: unclosed `${{` in a value; write ${{NAME}}")]
    UnclosedVar { path: PathBuf, line: usize },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub router: RouterConfig,
    #[serde(default)]
    pub models: IndexMap<String, ModelConfig>,
    /// The in-process sentence embedder behind `/v1/embeddings`, semantic routes and the
    /// learned score; none when unset.
    pub embeddings: Option<EmbeddingsConfig>,
    /// `[[routes]]`: tried in order for requests with `"model": "auto"`.
    #[serde(default)]
    pub routes: Vec<switchyard_router::RouteConfig>,
    /// `[guard]`: the privacy guard.
    #[serde(default)]
    pub guard: GuardConfig,
    /// `[accounting]`: what each request's cost is compared with.
    #[serde(default)]
    pub accounting: AccountingConfig,
}

/// `[accounting]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingConfig {
    /// The model every request's counterfactual cost is priced on ("what if everything went to
    /// the large model"); the model with the highest price when unset.
    pub baseline: Option<String>,
}

/// What the guard does with one type of personal data found in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Non-local models get a placeholder instead of the value; the answer gets it back.
    Redact,
    /// The request is refused with a 400 naming the type.
    Block,
    /// Only local (or on-premises) models may answer it.
    KeepLocal,
    /// Sent as written.
    Allow,
}

/// `[guard]`: find personal data in every request, redact it before it leaves for a non-local
/// model and restore it in the answer, as the per-type policy says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Off sends every request as written (and `when.pii` never matches).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The token classifier for names, street addresses and organisations. When on and its
    /// files are missing, the server refuses to start.
    #[serde(default = "yes")]
    pub model: bool,
    /// The classifier's folder [default: the models folder's `rampart/`].
    pub model_path: Option<PathBuf>,
    /// The most text (bytes, all of a request's texts together) the classifier reads; a longer
    /// request gets a 413 rather than holding the CPU for seconds (about 0.12 ms a word piece
    /// on two cores). The rules alone have no limit.
    #[serde(default = "default_max_model_bytes")]
    pub max_model_bytes: usize,
    /// Regions (ISO 3166, e.g. "US", "GB", "DE") phone numbers without a country code are
    /// read in.
    #[serde(default = "default_phone_regions")]
    pub phone_regions: Vec<String>,
    /// Findings scoring below this (0–1) are ignored.
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    /// The gateway's own region: local models count as being in it for `keep_in_region`.
    pub region: Option<String>,
    /// Per-type actions (`email = "block"`); a type not named is redacted.
    #[serde(default)]
    pub policy: BTreeMap<switchyard_guard::Kind, Action>,
    /// Types that may only reach models of a region (`iban = "eu"`).
    #[serde(default)]
    pub keep_in_region: BTreeMap<switchyard_guard::Kind, String>,
    /// `[guard.routes.NAME]`: a route's own policy.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteGuard>,
}

/// `[guard.routes.NAME]`: overrides for the requests one route decided.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteGuard {
    /// Per-type actions over the global ones.
    #[serde(default)]
    pub policy: BTreeMap<switchyard_guard::Kind, Action>,
    /// Every request of this route may only reach models of this region.
    pub keep_in_region: Option<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enabled: true,
            model: true,
            model_path: None,
            max_model_bytes: default_max_model_bytes(),
            phone_regions: default_phone_regions(),
            min_score: default_min_score(),
            region: None,
            policy: BTreeMap::new(),
            keep_in_region: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }
}

/// The regions the guard's evaluation reads national numbers in (docs/guard-eval.md).
fn default_phone_regions() -> Vec<String> {
    ["US", "GB", "DE", "FR"].map(String::from).to_vec()
}

fn default_max_model_bytes() -> usize {
    128 * 1024
}

fn default_min_score() -> f32 {
    0.5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// The model id clients send.
    #[serde(default = "default_embeddings_name")]
    pub name: String,
    /// The folder holding `model.safetensors`, `tokenizer.json` and `config.json`.
    pub path: PathBuf,
}

fn default_embeddings_name() -> String {
    "all-MiniLM-L6-v2".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// When non-empty, `/v1` needs `Authorization: Bearer <one of these>`. Empty strings (an
    /// optional `${VAR:-}` left unset) are ignored.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// The largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before its connection is closed
    /// (a slow or stalled client would otherwise hold a connection forever).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            api_keys: Vec::new(),
            max_body_bytes: default_max_body(),
            header_read_timeout_ms: default_header_read_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

fn default_header_read_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store")]
    pub path: PathBuf,
    /// What of a request's text the log keeps: nothing (the default), or its messages with
    /// every value the guard finds replaced by a placeholder (`"redacted"`).
    #[serde(default)]
    pub log_text: LogText,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogText {
    #[default]
    None,
    Redacted,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store(),
            log_text: LogText::None,
        }
    }
}

fn default_store() -> PathBuf {
    PathBuf::from("switchyard.db")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// The model that answers `"model": "auto"`; the first model declared when unset.
    pub default: Option<String>,
    /// Keep a conversation (header `x-switchyard-conversation`) on the model that answered its
    /// previous turn, unless a rule route says otherwise.
    #[serde(default = "yes")]
    pub sticky_conversations: bool,
    /// The cascade's confidence calibration: a file written by `switchyard calibrate`, or a
    /// shipped one by name: `"builtin"` (SmolLM2-135M, judged on the whole answer; the default
    /// when unset) or `"builtin:prefix4"` (SmolLM2-135M, judged on the first 4 tokens of a
    /// rung's stream). A calibration with `prefix_tokens` makes the cascade decide on that many
    /// tokens instead of holding the rung's whole answer.
    pub calibration: Option<PathBuf>,
    /// A learned score (written by `switchyard train`) deciding between two models.
    pub learned: Option<LearnedConfig>,
    /// Keep the learned router's features (the conversation's embedding and cheap text
    /// features, never its text) with each `"model": "auto"` request's log row, so that
    /// `switchyard train --data switchyard.db` can learn from the traffic. Needs [embeddings].
    #[serde(default)]
    pub record_features: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedConfig {
    /// The model file.
    pub path: PathBuf,
    /// Overrides the threshold stored with the model.
    pub threshold: Option<f64>,
    /// Answers when the score is below the threshold.
    pub weak: String,
    /// Answers when the score reaches the threshold.
    pub strong: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            default: None,
            sticky_conversations: true,
            calibration: None,
            learned: None,
            record_features: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Openai,
    Anthropic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: ProviderKind,
    /// Local models: the GGUF file.
    pub path: Option<PathBuf>,
    /// Upstream models: the API's base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// Upstream models: the model id sent upstream (the config name when unset).
    pub model: Option<String>,
    pub api_key: Option<String>,
    #[serde(default)]
    pub price: Price,
    /// Models to try, in order, when this one fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Retries on connect errors, 429 and 5xx, with exponential backoff and jitter.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Local models: threads for generation (all cores when unset).
    pub threads: Option<usize>,
    /// Local models: sequences decoded together.
    pub slots: Option<usize>,
    /// Local models: context tokens shared by the slots.
    pub context_tokens: Option<u32>,
    /// Local models: requests that may wait for a slot before 429.
    pub queue: Option<usize>,
    /// Where the model processes data (`"eu"`), for `keep_in_region`; a local model is in the
    /// gateway's `[guard] region`.
    pub region: Option<String>,
    /// An upstream model that runs on the company's own machines: it sees requests as written,
    /// like a local model, and may answer `keep_local` data.
    #[serde(default)]
    pub on_premises: bool,
    /// Per-type actions for this model over the route's and the global ones
    /// (`guard = { person = "allow" }`).
    #[serde(default)]
    pub guard: BTreeMap<switchyard_guard::Kind, Action>,
    /// Sampling for what a request leaves unset
    /// (`defaults = { temperature = 0.2, top_p = 0.9, max_tokens = 256 }`).
    #[serde(default)]
    pub defaults: SamplingDefaults,
}

/// A model's sampling defaults: each applies only where the request sets nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingDefaults {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Completion tokens, when the request sets neither `max_tokens` nor
    /// `max_completion_tokens`.
    pub max_tokens: Option<u32>,
}

impl SamplingDefaults {
    /// `req` with the defaults filled in where it is silent; borrowed when nothing changes.
    pub fn apply<'r>(&self, req: &'r ChatRequest) -> Cow<'r, ChatRequest> {
        let temperature = req.temperature.is_none() && self.temperature.is_some();
        let top_p = req.top_p.is_none() && self.top_p.is_some();
        let max_tokens = req.max_output_tokens().is_none() && self.max_tokens.is_some();
        if !(temperature || top_p || max_tokens) {
            return Cow::Borrowed(req);
        }
        let mut req = req.clone();
        if temperature {
            req.temperature = self.temperature;
        }
        if top_p {
            req.top_p = self.top_p;
        }
        if max_tokens {
            req.max_tokens = self.max_tokens;
        }
        Cow::Owned(req)
    }

    /// What is out of range, in words.
    fn problem(&self) -> Option<String> {
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Some(format!("defaults.temperature = {t} is outside 0..2"));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Some(format!(
                "defaults.top_p = {p} must be above 0 and at most 1"
            ));
        }
        if self.max_tokens == Some(0) {
            return Some("defaults.max_tokens = 0: give at least 1, or leave it out".into());
        }
        None
    }
}

impl ModelConfig {
    /// Sees requests as written: it runs in-process or on the company's own machines.
    pub fn is_local(&self) -> bool {
        self.provider == ProviderKind::Local || self.on_premises
    }
}

fn default_retries() -> u32 {
    2
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
}

impl Price {
    pub fn cost(&self, prompt_tokens: u32, completion_tokens: u32) -> f64 {
        (self.input * f64::from(prompt_tokens) + self.output * f64::from(completion_tokens)) / 1e6
    }
}

/// Upstream timeouts in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    #[serde(default = "default_first_byte_ms")]
    pub first_byte_ms: u64,
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
    #[serde(default = "default_total_ms")]
    pub total_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect_ms: default_connect_ms(),
            first_byte_ms: default_first_byte_ms(),
            idle_ms: default_idle_ms(),
            total_ms: default_total_ms(),
        }
    }
}

fn default_connect_ms() -> u64 {
    5_000
}
fn default_first_byte_ms() -> u64 {
    60_000
}
fn default_idle_ms() -> u64 {
    30_000
}
fn default_total_ms() -> u64 {
    600_000
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Config::parse(&text, path, &|k| env.get(k).cloned())
    }

    /// Parses config text; `env` looks variables up (the process environment in [`Config::load`]).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = substitute(text, path, env)?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(&e, &text),
        })?;
        config.server.api_keys.retain(|k| !k.is_empty());
        config.validate(path)?;
        Ok(config)
    }

    /// The model that answers `"auto"`.
    pub fn default_model(&self) -> Option<&str> {
        self.router
            .default
            .as_deref()
            .or_else(|| self.models.keys().next().map(String::as_str))
    }

    /// The model savings are counted against: `[accounting] baseline`, or else the priciest
    /// model (output price, then input price; the first declared among equals).
    pub fn baseline_model(&self) -> Option<&str> {
        if let Some(b) = &self.accounting.baseline {
            return Some(b);
        }
        let mut best: Option<(&str, Price)> = None;
        for (name, m) in &self.models {
            let dearer =
                best.is_none_or(|(_, p)| (m.price.output, m.price.input) > (p.output, p.input));
            if dearer {
                best = Some((name, m.price));
            }
        }
        best.map(|(name, _)| name)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if self.models.is_empty() {
            return Err(invalid(
                "no models configured: add a [models.NAME] table (see `switchyard init`)".into(),
            ));
        }
        if let Some(b) = &self.accounting.baseline {
            if !self.models.contains_key(b) {
                return Err(invalid(format!(
                    "[accounting] baseline = \"{b}\" names no configured model; use one of: {}",
                    self.model_names()
                )));
            }
        }
        if let Some(d) = &self.router.default {
            if !self.models.contains_key(d) {
                return Err(invalid(format!(
                    "router.default = \"{d}\" names no configured model; use one of: {}",
                    self.model_names()
                )));
            }
        }
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.knowledge.is_some() && self.embeddings.is_none())
        {
            return Err(invalid(format!(
                "[[routes]] \"{}\": `knowledge` needs the sentence embedder the bases are searched with: add an [embeddings] table",
                route.name
            )));
        }
        if self.routes.iter().any(|r| !r.examples.is_empty()) && self.embeddings.is_none() {
            return Err(invalid(
                "routes with `examples` need the sentence embedder: add an [embeddings] table"
                    .into(),
            ));
        }
        if !self.guard.enabled {
            if let Some(route) = self
                .routes
                .iter()
                .find(|r| r.when.as_ref().is_some_and(|w| w.pii.is_some()))
            {
                return Err(invalid(format!(
                    "[[routes]] \"{}\": `when.pii` needs the privacy guard, which `[guard] enabled = false` turns off; turn it on or remove `pii` from this route's `when`",
                    route.name
                )));
            }
        }
        for name in self.guard.routes.keys() {
            if !self.routes.iter().any(|r| &r.name == name) {
                let routes: Vec<&str> = self.routes.iter().map(|r| r.name.as_str()).collect();
                return Err(invalid(format!(
                    "[guard.routes.{name}] names no route; the [[routes]] are: {}",
                    if routes.is_empty() {
                        "(none)".to_owned()
                    } else {
                        routes.join(", ")
                    }
                )));
            }
        }
        if self.store.log_text == LogText::Redacted && !self.guard.enabled {
            return Err(invalid(
                "[store] log_text = \"redacted\" needs the privacy guard to find what to redact; remove `[guard] enabled = false` or log no text".into(),
            ));
        }
        if self.router.record_features && self.embeddings.is_none() {
            return Err(invalid(
                "[router] record_features = true needs the sentence embedder the features come from: add an [embeddings] table"
                    .into(),
            ));
        }
        for (name, m) in &self.models {
            if let Some(problem) = m.defaults.problem() {
                return Err(invalid(format!("[models.{name}]: {problem}")));
            }
            if name == switchyard_router::AUTO {
                return Err(invalid(
                    "[models.auto]: \"auto\" is reserved for the router; pick another name".into(),
                ));
            }
            match m.provider {
                ProviderKind::Local => {
                    if m.path.is_none() {
                        return Err(invalid(format!(
                            "[models.{name}]: provider = \"local\" needs `path` to a GGUF file"
                        )));
                    }
                }
                ProviderKind::Openai | ProviderKind::Anthropic => {
                    let Some(url) = &m.base_url else {
                        return Err(invalid(format!(
                            "[models.{name}]: an upstream provider needs `base_url`, e.g. \"https://api.openai.com/v1\""
                        )));
                    };
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(invalid(format!(
                            "[models.{name}]: base_url \"{url}\" must start with http:// or https://"
                        )));
                    }
                }
            }
            for f in &m.fallbacks {
                if f == name {
                    return Err(invalid(format!(
                        "[models.{name}]: a model cannot be its own fallback"
                    )));
                }
                if !self.models.contains_key(f) {
                    return Err(invalid(format!(
                        "[models.{name}]: fallback \"{f}\" names no configured model; use one of: {}",
                        self.model_names()
                    )));
                }
            }
        }
        Ok(())
    }

    fn model_names(&self) -> String {
        self.models.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// toml's messages already name the key and quote the line; make sure the line number leads.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            let line = if text[..span.start.min(text.len())].ends_with('\n') {
                line + 1
            } else {
                line
            };
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` line by line, so errors can name the line.
fn substitute(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line));
        let mut rest = code;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ConfigError::UnclosedVar {
                    path: path.to_owned(),
                    line: i + 1,
                });
            };
            let expr = &after[..end];
            let (var, default) = match expr.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (expr, None),
            };
            match (env(var), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::MissingVar {
                        path: path.to_owned(),
                        line: i + 1,
                        var: var.to_owned(),
                    })
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    Ok(out)
}

/// Where a line's TOML comment starts (a `#` outside a string), or its length: variables in
/// comments are documentation, not values.
fn comment_start(line: &str) -> usize {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return i,
            None => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let env = |k: &str| (k == "KEY").then(|| "secret".to_owned());
        Config::parse(text, Path::new("test.toml"), &env)
    }

    const UPSTREAM: &str =
        "[models.large]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

    #[test]
    fn variables_come_from_the_environment() {
        let c = parse(&format!(
            "[server]\napi_keys = [\"${{KEY}}\", \"${{UNSET:-}}\"]\n{UPSTREAM}"
        ))
        .unwrap();
        assert_eq!(c.server.api_keys, vec!["secret"]);
    }

    #[test]
    fn variables_in_comments_are_left_alone() {
        let c = parse(&format!(
            "# set ${{UNSET}} to …\n{UPSTREAM}model = \"a#${{KEY}}\" # ${{UNSET}}\n"
        ))
        .unwrap();
        assert_eq!(c.models["large"].model.as_deref(), Some("a#secret"));
    }

    #[test]
    fn the_first_model_is_the_default() {
        let c = parse(&format!(
            "{UPSTREAM}[models.other]\nprovider = \"anthropic\"\nbase_url = \"http://x/v1\"\n"
        ))
        .unwrap();
        assert_eq!(c.default_model(), Some("large"));
        assert_eq!(c.server.max_body_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn routes_are_an_array_of_tables() {
        let c = parse(&format!(
            "{UPSTREAM}[[routes]]\nname = \"code\"\nwhen = {{ code = true, keywords = [\"rust\"] }}\ntarget = \"large\"\n"
        ))
        .unwrap();
        assert_eq!(c.routes[0].name, "code");
        assert_eq!(c.routes[0].when.as_ref().unwrap().code, Some(true));
    }

    #[test]
    fn record_features_is_off_by_default() {
        assert!(!parse(UPSTREAM).unwrap().router.record_features);
        let c = parse(&format!(
            "[router]\nrecord_features = true\n[embeddings]\npath = \"models/all-MiniLM-L6-v2\"\n{UPSTREAM}"
        ))
        .unwrap();
        assert!(c.router.record_features);
    }

    #[test]
    fn price_is_per_million_tokens() {
        let p = Price {
            input: 2.5,
            output: 10.0,
        };
        assert!((p.cost(1_000, 100) - 0.0035).abs() < 1e-12);
    }
}
