//! Local inference over llama.cpp: load GGUF, chat template, batched generation with logprobs.
