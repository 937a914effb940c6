//! # coffer-core: the Coffer v1 protocol, sans-IO
//!
//! Coffer is an end-to-end encrypted cloud locker and sharing protocol. This crate is the whole
//! protocol and nothing else: bytes, keys and randomness go in, bytes come out. It opens no
//! sockets, reads no files, reads no clock and spawns no tasks, so it runs the same in a server, a
//! command-line client, a test harness and a browser (WebAssembly). Randomness is always passed in
//! as `&mut impl CryptoRngCore`, and times as explicit values, so every operation is deterministic
//! under test.
//!
//! ## Where to start
//!
//! The modules follow the chapters of the written specification in `spec/`, and use its names:
//!
//! | spec chapter | module | what it gives you |
//! |---|---|---|
//! | §1 Encoding | [`encoding`] | strict deterministic CBOR, base64url |
//! | §2 Primitives | [`primitives`] | keys, HKDF, AEADs, Ed25519, HPKE, Argon2id |
//! | §3 Key commitment | [`seal`] | the committed seal every wrapped key uses |
//! | §4 Content | [`content`] | encrypt and decrypt file bodies, random access |
//! | §5 Metadata | [`metadata`] | encrypted names, sizes, times, types, digests |
//! | §6 Account keys | [`account`] | master key, identities and their chain, OPAQUE |
//! | §7 Tree | [`tree`] | nodes, node keys, signed node records |
//! | §8 Sharing | [`share`] | share generations and grants |
//! | §9 Key rotation | [`rotation`] | password change, member removal, compromise recovery |
//! | §10 Links | [`link`] | link secrets, URLs, link records, link passwords |
//! | §11 HTTP API | [`api`] | the request and response bodies of the HTTP API |
//!
//! To open a shared link, for example: parse the URL with [`link`], fetch the link record by its
//! link id, open it with the link secret to get the node key, open the node's metadata with
//! [`metadata`] and its content with [`content`].
//!
//! ## Errors
//!
//! Every fallible function returns [`Error`]. Decryption failures are opaque
//! ([`Error::DecryptionFailed`]); resource limits are explicit ([`Error::LimitExceeded`]).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;

pub mod encoding;
mod error;
pub mod ids;
pub mod primitives;
pub mod seal;

pub mod account;
pub mod api;
pub mod content;
pub mod link;
pub mod metadata;
pub mod rotation;
pub mod share;
pub mod tree;

pub use error::{DecodeError, Error, Result};
pub use rand_core::{CryptoRng, CryptoRngCore, RngCore};
