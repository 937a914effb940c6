//! Spec §11, "HTTP API": the request and response bodies shared by `cofferd` and its clients.
//!
//! Every body is a top-level Coffer structure (spec §1.4) with a type code from 100–199, sent as
//! `application/cbor`. Records defined by other chapters (a `SignedNode` of §7, a `LinkRecord` of
//! §10, ...) travel *opaquely*: as a byte string holding the exact encoding the author signed or
//! sealed, so that signatures always cover the bytes that were sent and the API never re-encodes
//! them.
//!
//! Each body implements [`Body`], whose [`Body::from_bytes`] enforces the body's size limit
//! *before* parsing and the strict decoding of spec §1.3 after. Errors are RFC 9457 problem
//! details ([`Problem`], [`ProblemKind`]). Bearer credentials ([`SessionToken`],
//! [`LinkAccessToken`]) and the secret an anonymous link user presents ([`LinkVerifier`]) are
//! zeroized, compared in constant time and never printed. [`upload`] holds the
//! arithmetic of resumable uploads and of HTTP byte ranges, which client and server must agree on
//! exactly.

use alloc::vec::Vec;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::encoding::{decode_bounded, encode};
use crate::error::DecodeError;

mod accounts;
mod catalogue;
mod endpoints;
mod links;
mod nodes;
mod problem;
mod shares;
mod token;
pub mod upload;

pub use accounts::*;
pub use catalogue::{BodyInfo, BODIES};
pub use endpoints::{Auth, Endpoint, Payload, ENDPOINTS};
pub use links::*;
pub use nodes::*;
pub use problem::{Problem, ProblemKind, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE};
pub use shares::*;
pub use token::{LinkAccessToken, LinkVerifier, SessionToken, TOKEN_LEN};
pub use upload::ByteRange;

/// The path prefix of every versioned endpoint.
pub const BASE_PATH: &str = "/v1";
/// The media type of every structured request and response body.
pub const CBOR_CONTENT_TYPE: &str = "application/cbor";
/// The media type of content parts and content downloads (ciphertext).
pub const OCTET_STREAM_CONTENT_TYPE: &str = "application/octet-stream";

/// Size of one content chunk on the wire (spec §4): [`crate::content::ENCRYPTED_CHUNK_LEN`],
/// 65 536 bytes of plaintext plus a 16-byte Poly1305 tag. Upload part sizes are whole multiples
/// of it (spec §11.9.1).
pub const CONTENT_CHUNK_STRIDE: u64 = crate::content::ENCRYPTED_CHUNK_LEN as u64;
/// The smallest permitted upload part size: 16 chunks (about 1 MiB).
pub const MIN_PART_SIZE: u64 = 16 * CONTENT_CHUNK_STRIDE;
/// The part size clients SHOULD use: 128 chunks, 8 390 656 bytes (8 MiB of plaintext).
pub const DEFAULT_PART_SIZE: u64 = 128 * CONTENT_CHUNK_STRIDE;
/// The largest permitted upload part size: 1024 chunks (64 MiB of plaintext).
pub const MAX_PART_SIZE: u64 = 1024 * CONTENT_CHUNK_STRIDE;
/// The largest number of parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// The largest ciphertext length of one file or drop: `MAX_PARTS * MAX_PART_SIZE`.
/// A server MAY enforce a lower limit.
pub const MAX_CONTENT_LENGTH: u64 = MAX_PARTS * MAX_PART_SIZE;

/// Body limit of small control bodies (login, sessions, unlock, ...): 64 KiB.
pub const MAX_SMALL_BODY: usize = 64 * 1024;
/// Body limit of bodies carrying one or a few records (nodes, links, identities): 1 MiB.
pub const MAX_RECORD_BODY: usize = 1024 * 1024;
/// Body limit of bodies carrying many records (share creation, lists, rotation bundles, compromise
/// recovery): 64 MiB.
pub const MAX_BULK_BODY: usize = 64 * 1024 * 1024;

/// Largest `limit` a client may ask of a paginated list.
pub const MAX_PAGE_LIMIT: u64 = 1000;
/// The `limit` a server uses when the client names none.
pub const DEFAULT_PAGE_LIMIT: u64 = 200;
/// Largest length of a pagination cursor.
pub const MAX_CURSOR_LEN: usize = 64;
/// Length of a session label (free text naming the device), at most, in bytes.
pub const MAX_SESSION_LABEL_LEN: usize = 128;

/// Lifetime of an unfinished registration, login or re-authentication (seconds).
pub const HANDSHAKE_TTL_SECS: u64 = 300;
/// Idle lifetime of a session (seconds): 30 days without use.
pub const SESSION_IDLE_TTL_SECS: u64 = 30 * 24 * 3600;
/// Absolute lifetime of a session (seconds): 90 days.
pub const SESSION_MAX_TTL_SECS: u64 = 90 * 24 * 3600;
/// Lifetime of a link access token (seconds): 1 hour.
pub const LINK_ACCESS_TTL_SECS: u64 = 3600;
/// Lifetime of an upload after its last activity (seconds): 24 hours.
pub const UPLOAD_IDLE_TTL_SECS: u64 = 24 * 3600;
/// Absolute lifetime of an upload (seconds): 7 days.
pub const UPLOAD_MAX_TTL_SECS: u64 = 7 * 24 * 3600;

/// A request or response body of spec §11.
pub trait Body: Serialize + DeserializeOwned {
    /// The structure's name in spec §11 and `coffer.cddl`.
    const NAME: &'static str;
    /// The structure's type code (100–199).
    const TYPE_CODE: u64;
    /// The largest encoding a receiver accepts; longer bodies are refused (HTTP 413) unread.
    const MAX_LEN: usize;
    /// The field names in wire order, as spelt in the CDDL.
    const FIELDS: &'static [&'static str];

    /// The body's deterministic encoding.
    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a body, refusing more than [`Body::MAX_LEN`] bytes before parsing.
    ///
    /// # Errors
    /// Every [`DecodeError`] of spec §1.3; [`DecodeError::Malformed`] when over the limit.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: Self = decode_bounded(bytes, Self::MAX_LEN)?;
        value.check()?;
        Ok(value)
    }

    /// The body's structural rules (spec §11.17, "Parser rules") beyond its CDDL: rules that
    /// relate fields of the body to each other. [`Body::from_bytes`] applies them; senders
    /// SHOULD call this before sending.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] when a rule is broken.
    fn check(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// Defines a body: a `cbor_struct!` with version 1 plus its [`Body`] implementation.
macro_rules! body {
    (
        $(#[$meta:meta])*
        pub struct $name:ident (type = $ty:expr, max = $max:expr, check = $check:path) {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::api::body!(@define $(#[$meta])* $name, $ty, $max, [$( $(#[$fmeta])* $field : $fty ),*]);

        impl $crate::api::Body for $name {
            const NAME: &'static str = stringify!($name);
            const TYPE_CODE: u64 = $ty;
            const MAX_LEN: usize = $max;
            const FIELDS: &'static [&'static str] = &[$( stringify!($field) ),*];

            fn check(&self) -> ::core::result::Result<(), $crate::DecodeError> {
                $check(self)
            }
        }
    };
    (@define $(#[$meta:meta])* $name:ident, $ty:expr, $max:expr, [$( $(#[$fmeta:meta])* $field:ident : $fty:ty ),*]) => {
        $crate::cbor_struct! {
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct $name (type = $ty, version = 1) {
                $( $(#[$fmeta])* pub $field : $fty ),*
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident (type = $ty:expr, max = $max:expr) {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::cbor_struct! {
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct $name (type = $ty, version = 1) {
                $( $(#[$fmeta])* pub $field : $fty ),*
            }
        }

        impl $crate::api::Body for $name {
            const NAME: &'static str = stringify!($name);
            const TYPE_CODE: u64 = $ty;
            const MAX_LEN: usize = $max;
            const FIELDS: &'static [&'static str] = &[$( stringify!($field) ),*];
        }
    };
}
pub(crate) use body;

/// Defines a wire enumeration: a small unsigned integer, anything else rejected with
/// [`DecodeError::InvalidValue`].
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$( $name::$variant ),+];

            /// The wire code.
            #[must_use]
            pub const fn code(self) -> u64 {
                match self { $( $name::$variant => $value ),+ }
            }

            /// The value with wire code `code`, if any.
            #[must_use]
            pub const fn from_code(code: u64) -> Option<Self> {
                match code { $( $value => Some($name::$variant), )+ _ => None }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u64(self.code())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = <u64 as ::serde::Deserialize>::deserialize(d)?;
                $name::from_code(code).ok_or_else(|| {
                    <D::Error as ::serde::de::Error>::custom($crate::encoding::ERR_INVALID_VALUE)
                })
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests;
