//! Anthropic's Messages API.

/// Placeholder until the translation lands.
pub struct AnthropicProvider;
