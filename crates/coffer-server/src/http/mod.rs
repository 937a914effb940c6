//! The HTTP application.
