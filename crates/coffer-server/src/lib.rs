//! # cofferd: the Coffer server
//!
//! `cofferd` implements the HTTP API of spec §11. It stores only ciphertext and opaque,
//! signed records; it never sees a password, a key, a link secret or a plaintext name.
//!
//! - [`config`]: command line, environment and TOML configuration.
//! - [`store`]: the two storage traits (metadata and blobs) and their embedded implementations
//!   (SQLite and a local directory). Every backend passes the same storage test suite.
//! - [`http`]: the axum application: routes, authorization, limits, metrics.
#![forbid(unsafe_code)]

pub mod config;
pub mod http;
pub mod store;
