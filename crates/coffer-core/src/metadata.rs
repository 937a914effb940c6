//! Spec §5, "Metadata": encrypted node metadata.
//!
//! ```text
//! metadata_key = HKDF-SHA-256(ikm = node_key, salt = "", info = "coffer/v1/metadata/key" || 0x00, L = 32)
//! aad          = encode(MetadataAad { node_id, revision })
//! sealed       = seal(metadata_key, "coffer/v1/metadata/seal", aad, encode(Metadata))   ; spec §3
//! ```
//!
//! A node's name, size, modification time, media type and content digest are visible only to
//! holders of the node key. The server stores `sealed` next to the node; the `revision` it is bound
//! to is the node's metadata revision, which the writer increments on every change and which the
//! signed node record (spec §7) carries, so the server cannot serve older metadata under a newer
//! revision, nor one node's metadata under another node's id.
//!
//! [`Metadata`] values are validated when constructed ([`Error::InvalidArgument`]) and when
//! decoded ([`crate::DecodeError::InvalidValue`]): an invalid name, media type or size/digest
//! combination never exists as a `Metadata`.

use alloc::string::String;
use alloc::vec::Vec;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{self, Bytes};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::primitives::{self, SecretKey};
use crate::seal;

/// HKDF label of the metadata key.
pub const METADATA_KEY_LABEL: &str = "coffer/v1/metadata/key";
/// Seal label of sealed metadata.
pub const METADATA_SEAL_LABEL: &str = "coffer/v1/metadata/seal";
/// Maximum length of a name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;
/// Maximum length of a media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;
/// Maximum length of sealed metadata; longer input is rejected before any cryptography.
pub const MAX_SEALED_METADATA_LEN: usize = 1024;

mod wire {
    #![allow(unreachable_pub, dead_code)]
    use crate::encoding::Bytes;
    use alloc::string::String;

    crate::cbor_struct! {
        /// The wire form of [`super::Metadata`], before validation.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct MetadataWire (type = 10, version = 1) {
            pub name: String,
            pub size: u64,
            pub mtime: u64,
            pub media_type: Option<String>,
            pub content_digest: Option<Bytes<32>>,
        }
    }
}
use wire::MetadataWire;

/// The plaintext metadata of a node (spec §5.1): structure type 10, version 1.
///
/// Fields are private so that every value is valid; build one with [`Metadata::new`],
/// [`Metadata::file`] or [`Metadata::folder`].
#[derive(Clone, PartialEq, Eq)]
pub struct Metadata {
    name: String,
    size: u64,
    mtime: u64,
    media_type: Option<String>,
    content_digest: Option<Bytes<32>>,
}

impl core::fmt::Debug for Metadata {
    // Names are user data; keep them out of logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Metadata")
            .field("name", &"<redacted>")
            .field("size", &self.size)
            .field("mtime", &self.mtime)
            .field("media_type", &self.media_type)
            .field("content_digest", &self.content_digest)
            .finish()
    }
}

/// Checks a name (spec §5.2): 1 to 255 bytes of UTF-8, no `/`, no NUL, not `.` or `..`.
///
/// # Errors
/// [`Error::InvalidArgument`] if the name breaks a rule.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.bytes().any(|b| b == b'/' || b == 0)
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument("invalid name"))
    }
}

/// A `restricted-name` of RFC 6838 §4.2, lower case: 1 to 127 characters from
/// `a-z 0-9 ! # $ & - ^ _ . +`, starting with a letter or digit.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 127
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&-^_.+".contains(c))
}

/// Checks a media type (spec §5.2): at most 127 bytes, `type "/" subtype`, both lower-case
/// RFC 6838 restricted names, no parameters.
///
/// # Errors
/// [`Error::InvalidArgument`] if the media type breaks a rule.
pub fn validate_media_type(media_type: &str) -> Result<()> {
    let ok = media_type.len() <= MAX_MEDIA_TYPE_LEN
        && match media_type.split_once('/') {
            Some((t, s)) => restricted_name(t) && restricted_name(s),
            None => false,
        };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument("invalid media type"))
    }
}

impl Metadata {
    /// The structure type code (spec §5.1).
    pub const TYPE: u64 = MetadataWire::TYPE;
    /// The structure version.
    pub const VERSION: u64 = MetadataWire::VERSION;

    /// Builds and validates metadata.
    ///
    /// `content_digest` is the content digest of the plaintext (spec §2.3,
    /// [`primitives::content_digest`]) for a file and `None` for a folder,
    /// whose `size` must then be 0.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a rule of spec §5.2 is broken.
    pub fn new(
        name: String,
        size: u64,
        mtime: u64,
        media_type: Option<String>,
        content_digest: Option<[u8; 32]>,
    ) -> Result<Self> {
        let m = Metadata {
            name,
            size,
            mtime,
            media_type,
            content_digest: content_digest.map(Bytes),
        };
        m.validate()?;
        Ok(m)
    }

    /// Metadata of a file with plaintext `content`: its size and content digest (spec §2.3) are
    /// computed.
    ///
    /// # Errors
    /// As [`Metadata::new`].
    pub fn file(
        name: String,
        content: &[u8],
        mtime: u64,
        media_type: Option<String>,
    ) -> Result<Self> {
        Self::new(
            name,
            content.len() as u64,
            mtime,
            media_type,
            Some(primitives::content_digest(content)),
        )
    }

    /// Metadata of a folder: size 0, no media type, no digest.
    ///
    /// # Errors
    /// As [`Metadata::new`].
    pub fn folder(name: String, mtime: u64) -> Result<Self> {
        Self::new(name, 0, mtime, None, None)
    }

    fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if let Some(t) = &self.media_type {
            validate_media_type(t)?;
        }
        if self.content_digest.is_none() && self.size != 0 {
            return Err(Error::InvalidArgument("folder metadata with a size"));
        }
        Ok(())
    }

    /// The name (a single path component).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plaintext content size in bytes (0 for folders).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The modification time, seconds since the Unix epoch.
    #[must_use]
    pub fn mtime(&self) -> u64 {
        self.mtime
    }

    /// The media type, if known.
    #[must_use]
    pub fn media_type(&self) -> Option<&str> {
        self.media_type.as_deref()
    }

    /// The content digest of the plaintext (spec §2.3; `None` for folders).
    #[must_use]
    pub fn content_digest(&self) -> Option<&[u8; 32]> {
        self.content_digest.as_ref().map(Bytes::as_bytes)
    }

    fn to_wire(&self) -> MetadataWire {
        MetadataWire {
            name: self.name.clone(),
            size: self.size,
            mtime: self.mtime,
            media_type: self.media_type.clone(),
            content_digest: self.content_digest,
        }
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = MetadataWire::deserialize(d)?;
        let m = Metadata {
            name: w.name,
            size: w.size,
            mtime: w.mtime,
            media_type: w.media_type,
            content_digest: w.content_digest,
        };
        // Decoding reports any broken rule as DecodeError::InvalidValue.
        m.validate()
            .map_err(|_| serde::de::Error::custom(encoding::ERR_INVALID_VALUE))?;
        Ok(m)
    }
}

crate::cbor_struct! {
    /// The associated data of sealed metadata (spec §5.1, §5.3): structure type 11, version 1.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MetadataAad (type = 11, version = 1) {
        /// The node the metadata belongs to.
        pub node_id: NodeId,
        /// The node's metadata revision.
        pub revision: u64,
    }
}

/// `metadata_key = HKDF-SHA-256(node_key, salt = "", info = "coffer/v1/metadata/key" || 0x00)`.
#[must_use]
pub fn metadata_key(node_key: &SecretKey) -> SecretKey {
    primitives::derive_key(node_key.expose(), &[], METADATA_KEY_LABEL, &[])
}

/// The encoded [`MetadataAad`] for `node_id` at `revision`.
#[must_use]
pub fn metadata_aad(node_id: &NodeId, revision: u64) -> Vec<u8> {
    encoding::encode(&MetadataAad {
        node_id: *node_id,
        revision,
    })
}

/// Seals `metadata` for node `node_id` at metadata revision `revision` (spec §5.3).
///
/// The result is at most [`MAX_SEALED_METADATA_LEN`] bytes (a valid [`Metadata`] encodes to at
/// most 441 bytes).
#[must_use]
pub fn seal_metadata(
    node_key: &SecretKey,
    node_id: &NodeId,
    revision: u64,
    metadata: &Metadata,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let key = metadata_key(node_key);
    let plaintext = zeroize::Zeroizing::new(encoding::encode(metadata));
    seal::seal(
        &key,
        METADATA_SEAL_LABEL,
        &metadata_aad(node_id, revision),
        &plaintext,
        rng,
    )
}

/// Opens sealed metadata of node `node_id` at metadata revision `revision` (spec §5.5).
///
/// # Errors
/// [`Error::LimitExceeded`] for more than [`MAX_SEALED_METADATA_LEN`] bytes (before any
/// cryptography); [`Error::DecryptionFailed`] for a wrong key, node id or revision, or tampered
/// bytes; [`Error::Decode`] if the authenticated plaintext is not a valid [`Metadata`].
pub fn open_metadata(
    node_key: &SecretKey,
    node_id: &NodeId,
    revision: u64,
    sealed: &[u8],
) -> Result<Metadata> {
    if sealed.len() > MAX_SEALED_METADATA_LEN {
        return Err(Error::LimitExceeded {
            what: "sealed metadata length",
            limit: MAX_SEALED_METADATA_LEN as u64,
        });
    }
    let key = metadata_key(node_key);
    let plaintext = seal::open(
        &key,
        METADATA_SEAL_LABEL,
        &metadata_aad(node_id, revision),
        sealed,
    )?;
    Ok(encoding::decode::<Metadata>(&plaintext)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecodeError;
    use alloc::string::ToString as _;
    use rand_chacha::rand_core::SeedableRng as _;

    fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([seed; 32])
    }

    fn sample() -> Metadata {
        Metadata::file(
            "report.pdf".into(),
            b"%PDF-1.7",
            1_700_000_000,
            Some("application/pdf".into()),
        )
        .expect("valid")
    }

    #[test]
    fn round_trip_and_bindings() {
        let mut r = rng(1);
        let nk = SecretKey::generate(&mut r);
        let id = NodeId::generate(&mut r);
        let m = sample();
        let sealed = seal_metadata(&nk, &id, 7, &m, &mut r);
        assert_eq!(open_metadata(&nk, &id, 7, &sealed), Ok(m.clone()));
        assert_eq!(
            open_metadata(&nk, &id, 6, &sealed),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            open_metadata(&nk, &NodeId::generate(&mut r), 7, &sealed),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            open_metadata(&SecretKey::generate(&mut r), &id, 7, &sealed),
            Err(Error::DecryptionFailed)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert_eq!(
                open_metadata(&nk, &id, 7, &bad),
                Err(Error::DecryptionFailed)
            );
        }
        assert!(matches!(
            open_metadata(&nk, &id, 7, &[0u8; MAX_SEALED_METADATA_LEN + 1]),
            Err(Error::LimitExceeded { .. })
        ));
        let folder = Metadata::folder("Photos".into(), 5).expect("valid");
        let sealed = seal_metadata(&nk, &id, 0, &folder, &mut r);
        assert_eq!(open_metadata(&nk, &id, 0, &sealed), Ok(folder));
    }

    #[test]
    fn name_rules() {
        let long = "é".repeat(127) + "a"; // 255 bytes
        assert_eq!(long.len(), 255);
        for ok in ["a", "..a", "a.", "...", " ", "名前", long.as_str()] {
            assert!(Metadata::folder(ok.to_string(), 0).is_ok(), "{ok:?}");
        }
        let too_long = long.clone() + "b";
        for bad in ["", ".", "..", "a/b", "/", "a\0b", too_long.as_str()] {
            assert_eq!(
                Metadata::folder(bad.to_string(), 0),
                Err(Error::InvalidArgument("invalid name")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn media_type_and_folder_rules() {
        for ok in [
            "text/plain",
            "application/vnd.ms-excel",
            "image/svg+xml",
            "a/b",
        ] {
            assert!(validate_media_type(ok).is_ok(), "{ok}");
        }
        let long = alloc::format!("application/{}", "x".repeat(116));
        assert_eq!(long.len(), 128);
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "Text/plain",
            "text/plain; charset=utf-8",
            "text/pl ain",
            "text/plain/x",
            "-a/b",
            long.as_str(),
        ] {
            assert!(validate_media_type(bad).is_err(), "{bad}");
        }
        assert!(Metadata::new("f".into(), 3, 0, None, None).is_err());
        assert!(Metadata::new("f".into(), 0, 0, Some("text/plain".into()), None).is_ok());
    }

    #[test]
    fn decode_validates() {
        let mut w = sample().to_wire();
        w.name = "a/b".into();
        let bytes = encoding::encode(&w);
        assert_eq!(
            encoding::decode::<Metadata>(&bytes),
            Err(DecodeError::InvalidValue)
        );
        let good = encoding::encode(&sample());
        assert_eq!(encoding::decode::<Metadata>(&good), Ok(sample()));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            encoding::decode::<Metadata>(&trailing),
            Err(DecodeError::TrailingBytes)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn prop_round_trip_and_single_byte_changes(
            name in "[^/\u{0}]{1,60}",
            size in proptest::prelude::any::<u64>(),
            mtime in proptest::prelude::any::<u64>(),
            rev in 0u64..u64::MAX,
            pos in proptest::prelude::any::<proptest::sample::Index>(),
            x in 1u8..=255,
        ) {
            proptest::prop_assume!(name != "." && name != ".." && name.len() <= MAX_NAME_LEN);
            let m = Metadata::new(name, size, mtime, Some("text/plain".into()), Some([7; 32]))
                .expect("valid");
            let mut r = rng(3);
            let nk = SecretKey::generate(&mut r);
            let id = NodeId::generate(&mut r);
            let sealed = seal_metadata(&nk, &id, rev, &m, &mut r);
            proptest::prop_assert_eq!(open_metadata(&nk, &id, rev, &sealed), Ok(m));
            proptest::prop_assert_eq!(
                open_metadata(&nk, &id, rev + 1, &sealed),
                Err(Error::DecryptionFailed)
            );
            let mut bad = sealed.clone();
            let i = pos.index(bad.len());
            bad[i] ^= x;
            proptest::prop_assert_eq!(
                open_metadata(&nk, &id, rev, &bad),
                Err(Error::DecryptionFailed)
            );
        }
    }

    #[test]
    fn largest_valid_metadata_fits_the_bound() {
        let m = Metadata::new(
            "n".repeat(255),
            u64::MAX,
            u64::MAX,
            Some(alloc::format!("a/{}", "b".repeat(125))),
            Some([0xff; 32]),
        )
        .expect("valid");
        let mut r = rng(2);
        let sealed = seal_metadata(
            &SecretKey::generate(&mut r),
            &NodeId::generate(&mut r),
            u64::MAX,
            &m,
            &mut r,
        );
        assert_eq!(encoding::encode(&m).len(), 441);
        assert!(sealed.len() <= MAX_SEALED_METADATA_LEN);
    }
}
