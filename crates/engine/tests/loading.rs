//! Loading models, and failing clearly when the file is wrong.

mod common;

use std::io::Write;

use common::{smollm2_path, tiny, tiny_path};
use switchyard_engine::{ChatTurn, Engine, EngineConfig, EngineError};

#[test]
fn loads_a_gguf_and_names_it_after_the_file() {
    let engine = tiny(1, 1);
    assert_eq!(engine.model_name(), "tiny");
    assert_eq!(engine.slot_context_tokens(), 512);
}

#[test]
fn a_missing_file_is_an_error_naming_the_path() {
    let path = tiny_path().with_file_name("no-such-model.gguf");
    let err = Engine::load(EngineConfig::new(&path))
        .err()
        .expect("load fails");
    assert!(matches!(err, EngineError::ModelNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no-such-model.gguf"), "{message}");
    assert!(
        message.contains("fetch-models"),
        "says what to do: {message}"
    );
}

#[test]
fn a_file_that_is_not_gguf_is_an_error_not_a_panic() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"this is not a model at all, just some garbage bytes")
        .unwrap();
    let err = Engine::load(EngineConfig::new(file.path()))
        .err()
        .expect("load fails");
    assert!(matches!(err, EngineError::NotGguf { .. }), "{err:?}");
    assert!(err.to_string().contains(&file.path().display().to_string()));
}

#[test]
fn a_corrupt_gguf_is_an_error_not_a_panic() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"GGUF").unwrap();
    file.write_all(&[0xA5; 4096]).unwrap();
    let err = Engine::load(EngineConfig::new(file.path()))
        .err()
        .expect("load fails");
    assert!(matches!(err, EngineError::ModelLoad { .. }), "{err:?}");
    assert!(err.to_string().contains(&file.path().display().to_string()));
}

#[test]
fn a_truncated_gguf_is_an_error_not_a_panic() {
    let bytes = std::fs::read(tiny_path()).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    let err = Engine::load(EngineConfig::new(file.path()))
        .err()
        .expect("load fails");
    assert!(matches!(err, EngineError::ModelLoad { .. }), "{err:?}");
}

#[test]
fn nonsensical_configuration_is_rejected() {
    let zero_slots = EngineConfig {
        slots: 0,
        ..EngineConfig::new(tiny_path())
    };
    assert!(matches!(
        Engine::load(zero_slots),
        Err(EngineError::Config(_))
    ));
}

#[test]
fn without_a_template_in_the_gguf_the_prompt_is_chatml() {
    let engine = tiny(1, 1);
    let prompt = engine
        .render_prompt(&[
            ChatTurn::new("system", "Be brief."),
            ChatTurn::new("user", "Hello there"),
        ])
        .unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn the_gguf_template_is_used_when_present() {
    let engine = Engine::load(EngineConfig::new(smollm2_path())).unwrap();
    let prompt = engine
        .render_prompt(&[ChatTurn::new("user", "What is 2+2?")])
        .unwrap();
    assert!(
        prompt.contains("<|im_start|>user\nWhat is 2+2?<|im_end|>"),
        "{prompt}"
    );
    assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
}

#[test]
fn counts_tokens() {
    let engine = tiny(1, 1);
    let short = engine.count_tokens("Hello").unwrap();
    let long = engine
        .count_tokens("Hello, world, and everyone in it")
        .unwrap();
    assert!(short >= 1);
    assert!(long > short);
    assert_eq!(engine.count_tokens("").unwrap(), 0);
}

#[test]
fn an_engine_can_be_shared_across_tasks_and_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Engine>();
}
