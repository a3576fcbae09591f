//! The request log and other state, in SQLite.
