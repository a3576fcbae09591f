//! Personal-data detection, redaction vault, streaming restorer.
