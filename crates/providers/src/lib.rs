//! Upstream providers: OpenAI-compatible and Anthropic clients, timeouts, retries.
