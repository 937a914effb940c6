//! Bearer tokens and the 256-bit secrets of anonymous link users (spec §11.2, §11.11).

use core::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{b64url_decode, b64url_encode, Bytes};
use crate::error::DecodeError;
use crate::primitives::{ct_eq, sha256};

/// Length of every token and link secret of this chapter.
pub const TOKEN_LEN: usize = 32;

/// Reads a 32-byte byte string straight into a fixed array, wiping any owned copy, so that no
/// unzeroized heap buffer of the secret is left behind by decoding.
struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = [u8; TOKEN_LEN];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string of 32 bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        v.try_into()
            .map_err(|_| E::custom(crate::encoding::ERR_INVALID_VALUE))
    }

    fn visit_byte_buf<E: serde::de::Error>(
        self,
        mut v: alloc::vec::Vec<u8>,
    ) -> Result<Self::Value, E> {
        let out = self.visit_bytes(&v);
        v.zeroize();
        out
    }
}

macro_rules! secret32 {
    ($(#[$meta:meta])* $name:ident, $scheme:expr) => {
        $(#[$meta])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; TOKEN_LEN]);

        impl $name {
            /// Draws a fresh value from `rng` (256 bits).
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                let mut b = [0u8; TOKEN_LEN];
                rng.fill_bytes(&mut b);
                $name(b)
            }

            /// Wraps existing bytes.
            #[must_use]
            pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Self {
                $name(bytes)
            }

            /// The secret bytes. Copies are not zeroized for you.
            #[must_use]
            pub fn expose(&self) -> &[u8; TOKEN_LEN] {
                &self.0
            }

            /// `SHA-256(value)`: what a server stores and looks the value up by (spec §11.2.1).
            #[must_use]
            pub fn hash(&self) -> Bytes<32> {
                Bytes(sha256(&self.0))
            }

            /// Whether `hash` is this value's [`hash`](Self::hash), compared in constant time.
            #[must_use]
            pub fn matches_hash(&self, hash: &Bytes<32>) -> bool {
                ct_eq(&sha256(&self.0), hash.as_bytes())
            }

            /// The text form: unpadded base64url, 43 characters.
            #[must_use]
            pub fn to_b64(&self) -> alloc::string::String {
                b64url_encode(&self.0)
            }

            /// Parses the text form.
            ///
            /// # Errors
            /// [`DecodeError::InvalidText`] unless `text` is the canonical base64url of 32 bytes.
            pub fn from_b64(text: &str) -> Result<Self, DecodeError> {
                if text.len() != 43 {
                    return Err(DecodeError::InvalidText);
                }
                let v = zeroize::Zeroizing::new(b64url_decode(text)?);
                let arr: [u8; TOKEN_LEN] =
                    v.as_slice().try_into().map_err(|_| DecodeError::InvalidText)?;
                Ok($name(arr))
            }

            /// The value of an HTTP header that carries it (`<scheme> <base64url>`), or `None`
            /// for values that are sent in bodies only.
            #[must_use]
            pub fn to_header(&self) -> Option<alloc::string::String> {
                let scheme: Option<&str> = $scheme;
                scheme.map(|s| alloc::format!("{s} {}", self.to_b64()))
            }

            /// Parses the header form `<scheme> <base64url>`: exactly one space, scheme matched
            /// case-insensitively (RFC 9110 §11.1), token canonical.
            ///
            /// # Errors
            /// [`DecodeError::InvalidText`] on anything else, or for body-only values.
            pub fn from_header(value: &str) -> Result<Self, DecodeError> {
                let scheme: Option<&str> = $scheme;
                let scheme = scheme.ok_or(DecodeError::InvalidText)?;
                let (got, token) = value.split_once(' ').ok_or(DecodeError::InvalidText)?;
                if !got.eq_ignore_ascii_case(scheme) {
                    return Err(DecodeError::InvalidText);
                }
                Self::from_b64(token)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                ct_eq(&self.0, &other.0)
            }
        }
        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_bytes(SecretVisitor).map($name)
            }
        }
    };
}

secret32!(
    /// A session token: 256 random bits drawn by the server at login, sent by the client as
    /// `Authorization: Bearer <base64url>`. The server stores only [`SessionToken::hash`].
    SessionToken,
    Some("Bearer")
);
secret32!(
    /// A link access token: 256 random bits drawn by the server when a password-protected link
    /// is unlocked, sent as `Authorization: Bearer <base64url>` on that link's endpoints only.
    /// The server stores only its hash.
    LinkAccessToken,
    Some("Bearer")
);
secret32!(
    /// A link password verifier (spec §10), presented in `LinkUnlockRequest`; the server stores
    /// only its SHA-256 hash (`verifier-hash`).
    LinkVerifier,
    None
);
