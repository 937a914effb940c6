//! Identifiers (spec §1.5): 16 random bytes each, encoded as a CBOR byte string of exactly 16
//! bytes, and as base64url without padding in URLs.

use core::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::encoding::{b64url_decode, b64url_encode, Bytes};
use crate::error::DecodeError;

/// Length of every identifier.
pub const ID_LEN: usize = 16;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Bytes<ID_LEN>);

        impl $name {
            /// Draws a fresh random identifier.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                $name(Bytes(crate::primitives::random_array(rng)))
            }

            /// The identifier with the given bytes.
            #[must_use]
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                $name(Bytes(bytes))
            }

            /// The identifier's bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0 .0
            }

            /// The base64url form (22 characters).
            #[must_use]
            pub fn to_b64(&self) -> alloc::string::String {
                b64url_encode(&self.0 .0)
            }

            /// Parses the base64url form.
            ///
            /// # Errors
            /// [`DecodeError::InvalidText`] unless `text` is the canonical base64url of 16 bytes.
            pub fn from_b64(text: &str) -> Result<Self, DecodeError> {
                let bytes = b64url_decode(text)?;
                let arr: [u8; ID_LEN] = bytes.as_slice().try_into().map_err(|_| DecodeError::InvalidText)?;
                Ok($name(Bytes(arr)))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_b64())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_b64())
            }
        }
    };
}

id_type!(
    /// A node (file or folder) identifier, chosen at random by the creating client.
    NodeId
);
id_type!(
    /// A share identifier, chosen at random by the sharing client.
    ShareId
);
id_type!(
    /// A link identifier, derived from the link secret (spec §10); the only part of a link the
    /// server sees.
    LinkId
);
id_type!(
    /// An account identifier, chosen at random by the server at registration.
    AccountId
);
id_type!(
    /// A resumable upload identifier, chosen at random by the server.
    UploadId
);
