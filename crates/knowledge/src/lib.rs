//! Knowledge bases: ingest, chunk, embed, index, retrieve.
