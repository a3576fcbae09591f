//! The gateway: an axum app wiring the request path's stages.
