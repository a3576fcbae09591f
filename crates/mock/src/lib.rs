//! A mock upstream that speaks the OpenAI and Anthropic wire formats, for tests, demos and load.
