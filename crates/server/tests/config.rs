//! Every error `switchyard.toml` can be refused with, each against its own fixture in
//! `tests/fixtures/config/`, with the exact message the user sees.

use std::path::PathBuf;

use switchyard_server::{Config, ConfigError, LocalLoader, Server};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(format!("{name}.toml"))
}

/// Parses a fixture with an empty environment, so no variable of the machine leaks in.
fn load(name: &str) -> Result<Config, ConfigError> {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).expect("the fixture exists");
    Config::parse(&text, &path, &|_| None)
}

/// The message a fixture is refused with, less the leading `{path}` every message starts with.
#[track_caller]
fn refusal(name: &str) -> String {
    let message = match load(name) {
        Ok(_) => panic!("{name}.toml was accepted"),
        Err(e) => e.to_string(),
    };
    let path = fixture(name).display().to_string();
    match message.strip_prefix(&path) {
        Some(rest) => rest.to_owned(),
        None => panic!("the message does not start with the file's path: {message}"),
    }
}

/// The message a fixture that parses is refused with when the server starts.
fn startup_refusal(name: &str) -> String {
    let config = load(name).expect("the fixture parses");
    let no_local: &LocalLoader = &|_, _| Err("no local models in this test".to_owned());
    match Server::new(&config, no_local) {
        Ok(_) => panic!("the server started with {name}.toml"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_file_that_cannot_be_read() {
    let path = fixture("does_not_exist");
    let err = Config::load(&path).expect_err("no config");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read config file {}: No such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn an_unset_environment_variable() {
    assert_eq!(
        refusal("missing_variable"),
        ":4: environment variable `SWITCHYARD_TEST_KEY` is not set; export it, or write \
         ${SWITCHYARD_TEST_KEY:-default} to make it optional"
    );
}

#[test]
fn an_unclosed_variable() {
    assert_eq!(
        refusal("unclosed_variable"),
        ":4: unclosed `${` in a value; write ${NAME}"
    );
}

#[test]
fn an_unknown_key() {
    assert_eq!(
        refusal("unknown_key"),
        ": line 4: unknown field `colour`, expected one of `provider`, `path`, `base_url`, \
         `model`, `api_key`, `price`, `fallbacks`, `timeouts`, `retries`, `threads`, `slots`, \
         `context_tokens`, `queue`, `region`, `on_premises`, `guard`, `defaults`"
    );
}

#[test]
fn an_unknown_route_condition() {
    assert_eq!(
        refusal("unknown_route_condition"),
        ": line 7: unknown field `colour`, expected one of `keywords`, `regex`, `min_chars`, \
         `max_chars`, `min_turns`, `max_turns`, `tools`, `code`, `users`, `headers`, `pii`"
    );
}

#[test]
fn a_value_of_the_wrong_type() {
    assert_eq!(
        refusal("wrong_type"),
        ": line 4: invalid type: string \"two\", expected u32"
    );
}

#[test]
fn no_models() {
    assert_eq!(
        refusal("no_models"),
        ": no models configured: add a [models.NAME] table (see `switchyard init`)"
    );
}

#[test]
fn a_default_that_names_no_model() {
    assert_eq!(
        refusal("unknown_default"),
        ": router.default = \"huge\" names no configured model; use one of: large"
    );
}

#[test]
fn route_examples_without_the_embedder() {
    assert_eq!(
        refusal("examples_without_embeddings"),
        ": routes with `examples` need the sentence embedder: add an [embeddings] table"
    );
}

#[test]
fn a_route_on_personal_data_with_the_guard_off() {
    assert_eq!(
        refusal("pii_route_without_guard"),
        ": [[routes]] \"private\": `when.pii` needs the privacy guard, which `[guard] enabled \
         = false` turns off; turn it on or remove `pii` from this route's `when`"
    );
}

#[test]
fn a_guard_policy_for_a_route_that_does_not_exist() {
    assert_eq!(
        refusal("guard_route_unknown"),
        ": [guard.routes.support] names no route; the [[routes]] are: code"
    );
}

#[test]
fn a_guard_policy_for_a_type_that_does_not_exist() {
    let message = refusal("guard_unknown_type");
    assert!(
        message.contains("unknown variant `emails`, expected one of `email`, `phone`"),
        "{message}"
    );
    assert!(message.starts_with(": line 6:"), "{message}");
}

#[test]
fn recorded_features_without_the_embedder() {
    assert_eq!(
        refusal("record_features_without_embeddings"),
        ": [router] record_features = true needs the sentence embedder the features come \
         from: add an [embeddings] table"
    );
}

#[test]
fn a_model_named_auto() {
    assert_eq!(
        refusal("model_named_auto"),
        ": [models.auto]: \"auto\" is reserved for the router; pick another name"
    );
}

#[test]
fn a_local_model_without_a_path() {
    assert_eq!(
        refusal("local_without_path"),
        ": [models.small]: provider = \"local\" needs `path` to a GGUF file"
    );
}

#[test]
fn a_sampling_default_out_of_range() {
    assert_eq!(
        refusal("defaults_out_of_range"),
        ": [models.small]: defaults.temperature = 3 is outside 0..2"
    );
}

#[test]
fn an_upstream_model_without_a_base_url() {
    assert_eq!(
        refusal("upstream_without_base_url"),
        ": [models.large]: an upstream provider needs `base_url`, e.g. \
         \"https://api.openai.com/v1\""
    );
}

#[test]
fn a_base_url_without_a_scheme() {
    assert_eq!(
        refusal("base_url_without_scheme"),
        ": [models.large]: base_url \"api.anthropic.com/v1\" must start with http:// or https://"
    );
}

#[test]
fn a_model_that_is_its_own_fallback() {
    assert_eq!(
        refusal("own_fallback"),
        ": [models.large]: a model cannot be its own fallback"
    );
}

#[test]
fn a_fallback_that_names_no_model() {
    assert_eq!(
        refusal("unknown_fallback"),
        ": [models.large]: fallback \"backup\" names no configured model; use one of: large"
    );
}

#[test]
fn a_malformed_base_url_stops_the_server_starting() {
    assert_eq!(
        startup_refusal("malformed_base_url"),
        "[models.large]: base_url \"http://exa mple.com/v1\" is not a valid URL: invalid \
         international domain name; write the API's base URL in full, e.g. \
         \"https://api.openai.com/v1\""
    );
}

#[test]
fn a_key_that_cannot_be_a_header_stops_the_server_starting() {
    assert_eq!(
        startup_refusal("key_not_a_header"),
        "[models.large]: api_key has characters an HTTP header cannot carry (a line break or \
         other control character, often a key file's trailing newline); remove them"
    );
}

#[test]
fn the_guard_model_missing_stops_the_server_starting() {
    assert_eq!(
        startup_refusal("guard_model_missing"),
        "[guard]: /nonexistent/rampart/onnx/model_q4.onnx is missing: run \
         scripts/fetch-models.sh; or set `[guard] model_path` to the folder holding the \
         personal-data model, or `[guard] model = false` to detect with the rules alone \
         (names, street addresses and organisations are then not found)"
    );
}
