//! Conformance runner for the Coffer v1 test vectors (spec/conformance.md).
//!
//! The runner reads every published vector file, splits each test into the *inputs* it sends to
//! an implementation and the *expected outputs* it keeps, and compares what comes back. The
//! implementation is either coffer-core in-process ([`ops::handle`]) or an external *driver*
//! process that speaks the JSON-lines protocol of [`protocol`].
//!
//! [`server`] is the other half: a black-box suite that drives any server implementing the HTTP
//! API of spec §11 and reports, check by check, where it departs from the spec.

pub mod doc;
pub mod junit;
pub mod ops;
pub mod protocol;
pub mod runner;
pub mod server;
