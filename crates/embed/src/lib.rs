//! Sentence embeddings in-process (all-MiniLM-L6-v2).
