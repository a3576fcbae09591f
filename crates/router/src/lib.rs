//! Routing decisions: pure functions of the request and the router's model.
