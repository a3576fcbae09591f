//! Shared by every test binary of the crate; each uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use switchyard_api::{ChatChunk, ChatRequest, Message, Role};
use switchyard_mock::{spawn, MockConfig, MockHandle};
use switchyard_providers::{
    http_client, ChunkStream, ProviderConfig, ProviderError, RetryPolicy, Timeouts,
};

pub async fn mock() -> MockHandle {
    spawn(MockConfig::default()).await.expect("mock starts")
}

/// Fast retries and short timeouts, so failure tests run quickly.
pub fn config(base_url: String, model: &str) -> ProviderConfig {
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(5),
        idle: Duration::from_secs(5),
        total: Duration::from_secs(20),
    };
    ProviderConfig {
        base_url,
        model: model.to_owned(),
        api_key: Some("sk-test".to_owned()),
        timeouts,
        retry: RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(1),
            max: Duration::from_secs(5),
        },
        client: http_client(timeouts.connect),
    }
}

pub fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![Message::new(Role::User, "Say something.")],
        ..Default::default()
    }
}

/// All items of a stream: the chunks, and the error it ended with if any.
pub async fn collect(mut s: ChunkStream) -> (Vec<ChatChunk>, Option<ProviderError>) {
    let mut chunks = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => {
                assert!(s.next().await.is_none(), "nothing follows an error");
                return (chunks, Some(e));
            }
        }
    }
    (chunks, None)
}

pub fn text(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}

pub fn finish(chunks: &[ChatChunk]) -> Option<String> {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .find_map(|c| c.finish_reason.clone())
}
