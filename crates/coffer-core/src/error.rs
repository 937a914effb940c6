//! Typed errors. Every failure a peer can provoke maps to one [`Error`] variant, and every variant
//! has a stable *failure class* string ([`Error::class`]) that the published test vectors name.

/// What went wrong while decoding a structure (spec §1, "Encoding").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not well-formed CBOR of the expected shape.
    #[error("malformed encoding")]
    Malformed,
    /// Well-formed, but not the deterministic encoding (spec §1.2): non-shortest heads,
    /// indefinite lengths, unsorted or duplicate map keys, floats or tags where none are allowed.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// Bytes follow the encoded item.
    #[error("trailing bytes after the encoded item")]
    TrailingBytes,
    /// The type tag of the structure is not the expected one.
    #[error("unexpected structure type")]
    WrongType,
    /// The structure's version is not one this implementation supports.
    #[error("unsupported version")]
    UnknownVersion,
    /// A field has a value outside its permitted set (wrong length, out-of-range enum, ...).
    #[error("invalid field value")]
    InvalidValue,
    /// A text form (base64url, URL) is malformed or not canonical.
    #[error("invalid text encoding")]
    InvalidText,
}

/// The error type of every fallible operation in coffer-core.
///
/// Decryption failures are deliberately opaque: a wrong key, a flipped bit, a failed key
/// commitment and a wrong associated-data binding are all [`Error::DecryptionFailed`], so that no
/// oracle tells an attacker which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input could not be decoded.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// Authenticated decryption failed (wrong key, tampered bytes, wrong binding, failed commitment).
    #[error("decryption failed")]
    DecryptionFailed,
    /// Encrypted content ended before its final chunk, or continued after it.
    #[error("content truncated or extended")]
    Truncated,
    /// A signature did not verify under the strict rules of spec §2.3.
    #[error("invalid signature")]
    BadSignature,
    /// A public key is malformed, of small order, or non-canonical.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A Diffie-Hellman exchange produced the all-zero shared secret.
    #[error("non-contributory key exchange")]
    NonContributory,
    /// A structure is authentic but does not belong where it was found: wrong id, wrong
    /// generation, wrong owner, a broken chain.
    #[error("binding mismatch: {0}")]
    Binding(&'static str),
    /// A resource bound was exceeded (KDF cost, size, count). Nothing was computed.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded {
        /// What was over the limit.
        what: &'static str,
        /// The limit that applies.
        limit: u64,
    },
    /// A caller-supplied argument is out of range (a byte range past the end, a zero length, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The OPAQUE protocol failed: the password is wrong or a message was tampered with.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A link has expired or is out of downloads (decided by the caller's clock and counters).
    #[error("link no longer valid")]
    LinkExpired,
    /// A bug in coffer-core or in a dependency; never caused by input.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The stable failure class of this error, as named by the `result` of invalid test vectors
    /// (spec §13, "Test vectors").
    #[must_use]
    pub fn class(&self) -> &'static str {
        match self {
            Error::Decode(DecodeError::Malformed) => "malformed",
            Error::Decode(DecodeError::NonCanonical) => "non-canonical",
            Error::Decode(DecodeError::TrailingBytes) => "trailing-bytes",
            Error::Decode(DecodeError::WrongType) => "wrong-type",
            Error::Decode(DecodeError::UnknownVersion) => "unknown-version",
            Error::Decode(DecodeError::InvalidValue) => "invalid-value",
            Error::Decode(DecodeError::InvalidText) => "invalid-text",
            Error::DecryptionFailed => "decryption-failed",
            Error::Truncated => "truncated",
            Error::BadSignature => "bad-signature",
            Error::InvalidPublicKey => "invalid-public-key",
            Error::NonContributory => "non-contributory",
            Error::Binding(_) => "binding-mismatch",
            Error::LimitExceeded { .. } => "limit-exceeded",
            Error::InvalidArgument(_) => "invalid-argument",
            Error::AuthenticationFailed => "authentication-failed",
            Error::LinkExpired => "link-expired",
            Error::Internal(_) => "internal",
        }
    }
}

/// `Result` with coffer-core's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
