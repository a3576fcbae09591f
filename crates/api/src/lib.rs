//! OpenAI-compatible wire types and the error shape.
//!
//! Requests keep every field they do not model in `extra`, so unknown fields pass through to
//! upstreams instead of being dropped or rejected.

mod chat;
mod embeddings;
mod error;
mod models;

pub use chat::*;
pub use embeddings::*;
pub use error::{ApiError, ErrorBody, ErrorDetail, ErrorKind};
pub use models::{ModelList, ModelObject};
