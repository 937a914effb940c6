//! Spec §11, "HTTP API": request and response bodies.
