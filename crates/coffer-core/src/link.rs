//! Spec §10, "Links": link secrets, URLs, link records, link passwords, upload-only ("drop box")
//! links, and the owner's record of the links it made.
//!
//! A link is a 32-byte random *link secret* carried in the fragment of a URL, which browsers never
//! send to the server. Everything else derives from it:
//!
//! ```text
//! link_id        = HKDF-SHA-256(ikm = secret, salt = "", info = "coffer/v1/link/id" || 0x00, L = 16)
//! link_key       = HKDF-SHA-256(ikm = secret, salt = "", info = "coffer/v1/link/key" || 0x00, L = 32)
//! pw_key         = Argon2id(password, salt, params)                       (password links only)
//! capability_key = HKDF-SHA-256(ikm = link_key || pw_key, salt = "",
//!                               info = "coffer/v1/link/capability-key" || 0x00 || link_id, L = 32)
//! verifier       = HKDF-SHA-256(ikm = link_key || pw_key, salt = "",
//!                               info = "coffer/v1/link/password-verifier" || 0x00 || link_id, L = 32)
//! ```
//!
//! (`pw_key` is the empty string for a link without a password.) The server stores a
//! [`LinkRecord`] under `link_id`: plaintext fields it enforces (permission, expiry, download
//! limit, password parameters) and a [`LinkCapability`] sealed under `capability_key` whose
//! associated data is the encoding of those plaintext fields, so a server that alters them is
//! detected by the client.
//!
//! Entry points: [`create_link`] (owner), [`LinkUrl::parse`] and [`open_link`] (anyone holding the
//! URL), [`create_drop`] / [`open_drop`] (upload-only links), [`reseal_link`] and [`rotate_link`]
//! (spec §9.3), [`seal_owner_entry`] / [`open_owner_entry`] (the owner's list of its links).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::encoding::{b64url_encode, decode_bounded, encode, ByteBuf, Bytes, ERR_INVALID_VALUE};
use crate::error::{DecodeError, Error, Result};
use crate::ids::{LinkId, NodeId, ID_LEN};
use crate::primitives::{
    self, AgreementPublic, AgreementSecret, Argon2Params, SecretKey, HPKE_ENC_LEN, KEY_LEN, TAG_LEN,
};
use crate::seal::{self, SEALED_KEY_LEN, SEAL_OVERHEAD};

// ---------------------------------------------------------------------------------------------
// Constants and labels

/// Length of a link secret. v1 uses 256 bits, so no stretching is ever needed.
pub const LINK_SECRET_LEN: usize = 32;
/// Length of the Argon2id salt of a link password.
pub const LINK_SALT_LEN: usize = 16;
/// Length of a password verifier and of its hash.
pub const VERIFIER_LEN: usize = 32;
/// The link format version carried in the URL fragment.
pub const LINK_URL_VERSION: u64 = 1;
/// Maximum length of a URL origin (everything before `/l/`), in bytes.
pub const MAX_ORIGIN_LEN: usize = 1024;
/// Maximum length of a whole link URL, in bytes.
pub const MAX_LINK_URL_LEN: usize = MAX_ORIGIN_LEN + 3 + 22 + 1 + 2 + 43 + 2;
/// Maximum encoded length of a [`LinkRecord`]; longer input is rejected before parsing.
pub const MAX_LINK_RECORD_LEN: usize = 1024;
/// Maximum length of the metadata plaintext an uploader may put in a [`DropEnvelope`].
pub const MAX_DROP_METADATA_LEN: usize = 64 * 1024;
/// Maximum encoded length of a [`DropEnvelope`]; longer input is rejected before parsing.
pub const MAX_DROP_ENVELOPE_LEN: usize = MAX_DROP_METADATA_LEN + 512;
/// Maximum encoded length of an [`OwnerLinkEntry`] plaintext.
pub const MAX_OWNER_ENTRY_LEN: usize = 512;
/// Length of the HPKE ciphertext of a 32-byte node key (key plus tag).
pub const DROP_NODE_KEY_CT_LEN: usize = KEY_LEN + TAG_LEN;

/// HKDF label of the link id.
pub const LABEL_ID: &str = "coffer/v1/link/id";
/// HKDF label of the link key.
pub const LABEL_KEY: &str = "coffer/v1/link/key";
/// HKDF label of the capability key.
pub const LABEL_CAPABILITY_KEY: &str = "coffer/v1/link/capability-key";
/// Seal label of the sealed [`LinkCapability`].
pub const LABEL_CAPABILITY: &str = "coffer/v1/link/capability";
/// HKDF label of the password verifier.
pub const LABEL_PASSWORD_VERIFIER: &str = "coffer/v1/link/password-verifier";
/// Seal label of the drop secret (sealed under the folder key).
pub const LABEL_DROP_SECRET: &str = "coffer/v1/link/drop-secret";
/// HPKE info label of a dropped node key.
pub const LABEL_DROP_NODE_KEY: &str = "coffer/v1/link/drop-node-key";
/// Seal label of a dropped node's metadata.
pub const LABEL_DROP_METADATA: &str = "coffer/v1/link/drop-metadata";
/// Seal label of a sealed [`OwnerLinkEntry`].
pub const LABEL_OWNER_ENTRY: &str = "coffer/v1/link/owner-entry";
/// HKDF label of a dropped file's file key ([`drop_file_key`]).
pub const LABEL_DROP_FILE_KEY: &str = "coffer/v1/link/drop-file-key";

// ---------------------------------------------------------------------------------------------
// Small enumerations

macro_rules! small_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// The wire value.
            #[must_use]
            pub fn to_u64(self) -> u64 {
                match self { $($name::$variant => $value),* }
            }

            /// Parses the wire value.
            ///
            /// # Errors
            /// [`DecodeError::InvalidValue`] for a value outside the enumeration.
            pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
                match v {
                    $($value => Ok($name::$variant),)*
                    _ => Err(DecodeError::InvalidValue),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
                s.serialize_u64(self.to_u64())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
                let v = u64::deserialize(d)?;
                $name::from_u64(v).map_err(|_| serde::de::Error::custom(ERR_INVALID_VALUE))
            }
        }
    };
}

small_enum!(
    /// What a link lets its holder do (spec §10.4).
    Permission {
        /// Read the node (a file, or a folder and everything below it).
        Read = 0,
        /// Add files to a folder without being able to read anything in it.
        UploadOnly = 1,
    }
);

/// The kind of node a link points to: the node kind of spec §7 (folder 0, file 1).
pub use crate::tree::NodeKind;

// ---------------------------------------------------------------------------------------------
// The link secret and its derivations

/// The link secret: 32 random bytes, carried only in the URL fragment. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret(SecretKey);

impl LinkSecret {
    /// Draws a fresh secret (32 bytes from `rng`).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        LinkSecret(SecretKey::generate(rng))
    }

    /// Wraps existing secret bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; LINK_SECRET_LEN]) -> Self {
        LinkSecret(SecretKey::from_bytes(bytes))
    }

    /// The secret bytes. Handle with care.
    #[must_use]
    pub fn expose(&self) -> &[u8; LINK_SECRET_LEN] {
        self.0.expose()
    }

    /// `link_id = HKDF(ikm = secret, salt = "", info = "coffer/v1/link/id" || 0x00, L = 16)`.
    #[must_use]
    pub fn link_id(&self) -> LinkId {
        let mut id = [0u8; ID_LEN];
        primitives::hkdf(self.0.expose(), &[], LABEL_ID, &[], &mut id);
        LinkId::from_bytes(id)
    }

    /// `link_key = HKDF(ikm = secret, salt = "", info = "coffer/v1/link/key" || 0x00, L = 32)`.
    #[must_use]
    pub fn link_key(&self) -> SecretKey {
        primitives::derive_key(self.0.expose(), &[], LABEL_KEY, &[])
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// `ikm = link_key || pw_key` (just `link_key` without a password).
fn link_ikm(link_key: &SecretKey, pw_key: Option<&SecretKey>) -> Zeroizing<Vec<u8>> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN));
    ikm.extend_from_slice(link_key.expose());
    if let Some(pw) = pw_key {
        ikm.extend_from_slice(pw.expose());
    }
    ikm
}

/// `capability_key = HKDF(ikm = link_key || pw_key, salt = "",
/// info = "coffer/v1/link/capability-key" || 0x00 || link_id, L = 32)`; `pw_key` is empty for a
/// link without a password.
#[must_use]
pub fn capability_key(secret: &LinkSecret, pw_key: Option<&SecretKey>) -> SecretKey {
    let ikm = link_ikm(&secret.link_key(), pw_key);
    primitives::derive_key(&ikm, &[], LABEL_CAPABILITY_KEY, secret.link_id().as_bytes())
}

/// `verifier = HKDF(ikm = link_key || pw_key, salt = "",
/// info = "coffer/v1/link/password-verifier" || 0x00 || link_id, L = 32)`.
///
/// The client sends it to the server to prove it knows the password *and* the link secret; the
/// server stores only [`verifier_hash`] of it.
#[must_use]
pub fn password_verifier(secret: &LinkSecret, pw_key: &SecretKey) -> Zeroizing<[u8; VERIFIER_LEN]> {
    let ikm = link_ikm(&secret.link_key(), Some(pw_key));
    let mut out = Zeroizing::new([0u8; VERIFIER_LEN]);
    primitives::hkdf(
        &ikm,
        &[],
        LABEL_PASSWORD_VERIFIER,
        secret.link_id().as_bytes(),
        out.as_mut(),
    );
    out
}

/// `verifier_hash = SHA-256(verifier)`: what the server stores.
#[must_use]
pub fn verifier_hash(verifier: &[u8; VERIFIER_LEN]) -> [u8; VERIFIER_LEN] {
    primitives::sha256(verifier)
}

/// Server side: whether a presented verifier matches the stored hash (constant time).
#[must_use]
pub fn check_verifier(stored_hash: &[u8; VERIFIER_LEN], presented: &[u8]) -> bool {
    presented.len() == VERIFIER_LEN
        && primitives::ct_eq(&primitives::sha256(presented), stored_hash)
}

// ---------------------------------------------------------------------------------------------
// URLs

/// A parsed link URL: `<origin>/l/<link id>#1.<secret>[.p]` (spec §10.3).
///
/// [`LinkUrl::parse`] accepts only the canonical form and checks that the link id in the path is
/// the one derived from the secret; [`fmt::Display`] produces the canonical form.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkUrl {
    origin: String,
    secret: LinkSecret,
    password_required: bool,
}

fn is_origin_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:@/%[]!$&'()*+,;=".contains(&c)
}

fn check_origin(origin: &str) -> Result<(), DecodeError> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or(DecodeError::InvalidText)?;
    if origin.len() > MAX_ORIGIN_LEN
        || rest.is_empty()
        || rest.starts_with('/')
        || origin.ends_with('/')
        || !origin.bytes().all(is_origin_char)
    {
        return Err(DecodeError::InvalidText);
    }
    Ok(())
}

fn decode_b64_exact<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    // Length first: base64url of N bytes without padding has exactly ceil(4N/3) characters.
    if text.len() != (4 * N).div_ceil(3) {
        return Err(DecodeError::InvalidText);
    }
    let bytes = crate::encoding::b64url_decode(text)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| DecodeError::InvalidText)
}

impl LinkUrl {
    /// A URL for `secret` under `origin` (`http://` or `https://`, no trailing slash).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `origin` is not a valid origin (spec §10.3).
    pub fn new(origin: &str, secret: LinkSecret, password_required: bool) -> Result<Self> {
        check_origin(origin).map_err(|_| Error::InvalidArgument("invalid link origin"))?;
        Ok(LinkUrl {
            origin: origin.into(),
            secret,
            password_required,
        })
    }

    /// Parses a link URL, applying every MUST-reject rule of spec §10.3.
    ///
    /// # Errors
    /// [`Error::Decode`] with [`DecodeError::InvalidText`] for any malformed or non-canonical
    /// URL, [`DecodeError::UnknownVersion`] for a fragment version other than 1, and
    /// [`Error::Binding`] when the path's link id is not the one derived from the secret.
    pub fn parse(url: &str) -> Result<Self> {
        if url.len() > MAX_LINK_URL_LEN {
            return Err(DecodeError::InvalidText.into());
        }
        let (before, fragment) = url.split_once('#').ok_or(DecodeError::InvalidText)?;
        // `before` = origin "/l/" link-id, the link id being exactly 22 characters.
        let split = before
            .len()
            .checked_sub(25)
            .ok_or(DecodeError::InvalidText)?;
        if !before.is_char_boundary(split) {
            return Err(DecodeError::InvalidText.into());
        }
        let (origin, tail) = before.split_at(split);
        let id_text = tail.strip_prefix("/l/").ok_or(DecodeError::InvalidText)?;
        check_origin(origin)?;
        let path_id = LinkId::from_bytes(decode_b64_exact::<ID_LEN>(id_text)?);

        let mut parts = fragment.split('.');
        let version = parts.next().unwrap_or_default();
        let secret_text = parts.next().ok_or(DecodeError::InvalidText)?;
        let flag = parts.next();
        if parts.next().is_some() {
            return Err(DecodeError::InvalidText.into());
        }
        if version != "1" {
            let numeric = !version.is_empty()
                && version.bytes().all(|c| c.is_ascii_digit())
                && !(version.len() > 1 && version.starts_with('0'));
            return Err(if numeric {
                DecodeError::UnknownVersion
            } else {
                DecodeError::InvalidText
            }
            .into());
        }
        let mut secret_bytes = decode_b64_exact::<LINK_SECRET_LEN>(secret_text)?;
        let secret = LinkSecret::from_bytes(secret_bytes);
        secret_bytes.zeroize();
        let password_required = match flag {
            None => false,
            Some("p") => true,
            Some(_) => return Err(DecodeError::InvalidText.into()),
        };
        if secret.link_id() != path_id {
            return Err(Error::Binding(
                "link id in the URL path is not derived from the secret",
            ));
        }
        Ok(LinkUrl {
            origin: origin.into(),
            secret,
            password_required,
        })
    }

    /// The origin: everything before `/l/`.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The link secret.
    #[must_use]
    pub fn secret(&self) -> &LinkSecret {
        &self.secret
    }

    /// The link id (derived from the secret).
    #[must_use]
    pub fn link_id(&self) -> LinkId {
        self.secret.link_id()
    }

    /// Whether the URL says the link needs a password (the `.p` flag).
    #[must_use]
    pub fn password_required(&self) -> bool {
        self.password_required
    }
}

impl fmt::Display for LinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = Zeroizing::new(b64url_encode(self.secret.expose()));
        write!(
            f,
            "{}/l/{}#{}.{}{}",
            self.origin,
            self.link_id().to_b64(),
            LINK_URL_VERSION,
            secret.as_str(),
            if self.password_required { ".p" } else { "" }
        )
    }
}

impl fmt::Debug for LinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkUrl")
            .field("origin", &self.origin)
            .field("link_id", &self.link_id())
            .field("secret", &"<redacted>")
            .field("password_required", &self.password_required)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Wire structures

crate::cbor_struct! {
    /// The password parameters of a link (nested in [`LinkRecord`]): Argon2id cost and salt.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkPassword {
        /// Argon2id memory, KiB.
        pub m_kib: u64,
        /// Argon2id passes.
        pub t: u64,
        /// Argon2id lanes.
        pub p: u64,
        /// Argon2id salt, 16 random bytes.
        pub salt: Bytes<LINK_SALT_LEN>,
    }
}

impl LinkPassword {
    /// The Argon2id parameters, checked against [`Argon2Params::MIN`] and [`Argon2Params::MAX`].
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for any parameter out of range.
    pub fn argon2_params(&self) -> Result<Argon2Params> {
        let too_big = |what| Error::LimitExceeded {
            what,
            limit: u64::from(Argon2Params::MAX.m_kib),
        };
        let params = Argon2Params {
            m_kib: u32::try_from(self.m_kib).map_err(|_| too_big("argon2id memory (KiB)"))?,
            t: u32::try_from(self.t).map_err(|_| Error::LimitExceeded {
                what: "argon2id passes",
                limit: u64::from(Argon2Params::MAX.t),
            })?,
            p: u32::try_from(self.p).map_err(|_| Error::LimitExceeded {
                what: "argon2id lanes",
                limit: u64::from(Argon2Params::MAX.p),
            })?,
        };
        params.check()?;
        Ok(params)
    }

    /// `pw_key = Argon2id(password, salt, params)`, after checking the parameters.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when the parameters are out of range; nothing is computed then.
    pub fn derive_key(&self, password: &[u8]) -> Result<SecretKey> {
        self.argon2_params()?.derive(password, &self.salt.0)
    }
}

crate::cbor_struct! {
    /// The drop part of an upload-only link's record (nested in [`LinkRecord`]).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkDrop {
        /// The folder key generation that seals the drop secret.
        pub generation: u64,
        /// The drop secret sealed under that generation's folder key (104 bytes, spec §3.2).
        pub sealed_drop_secret: ByteBuf,
    }
}

crate::cbor_struct! {
    /// The link record (type 70): what the server stores under the link id.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkRecord (type = 70, version = 1) {
        /// `link_id`, derived from the link secret.
        pub link_id: LinkId,
        /// The node the link points to.
        pub node_id: NodeId,
        /// What the link allows.
        pub permission: Permission,
        /// Expiry, seconds since the Unix epoch (the link is invalid from that second on).
        pub expires_at: Option<u64>,
        /// How many downloads the server allows (at least 1).
        pub max_downloads: Option<u64>,
        /// Password parameters, for a password-protected link.
        pub password: Option<LinkPassword>,
        /// The sealed drop secret, exactly for an upload-only link.
        pub drop: Option<LinkDrop>,
        /// The sealed [`LinkCapability`].
        pub capability: ByteBuf,
    }
}

crate::cbor_struct! {
    /// The associated data of the sealed capability (type 75): the record's public fields.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CapabilityContext (type = 75, version = 1) {
        /// As in [`LinkRecord`].
        pub link_id: LinkId,
        /// As in [`LinkRecord`].
        pub node_id: NodeId,
        /// As in [`LinkRecord`].
        pub permission: Permission,
        /// As in [`LinkRecord`].
        pub expires_at: Option<u64>,
        /// As in [`LinkRecord`].
        pub max_downloads: Option<u64>,
        /// As in [`LinkRecord`].
        pub password: Option<LinkPassword>,
        /// As in [`LinkRecord`].
        pub drop: Option<LinkDrop>,
    }
}

impl LinkRecord {
    /// Decodes a record (at most [`MAX_LINK_RECORD_LEN`] bytes) and checks its structural rules:
    /// `drop` is present exactly for upload-only links, its sealed secret is 104 bytes, and
    /// `max_downloads` is not 0. This is all a server needs before storing a record (plus
    /// [`LinkPassword::argon2_params`] when a password is present).
    ///
    /// # Errors
    /// [`Error::Decode`] for any violation.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let record: LinkRecord = decode_bounded(bytes, MAX_LINK_RECORD_LEN)?;
        let drop_ok = match (&record.permission, &record.drop) {
            (Permission::Read, None) => true,
            (Permission::UploadOnly, Some(d)) => d.sealed_drop_secret.len() == SEALED_KEY_LEN,
            _ => false,
        };
        if !drop_ok || record.max_downloads == Some(0) {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(record)
    }

    /// Server side: everything a server checks before storing `bytes` under `link_id` (spec
    /// §10.8): [`LinkRecord::parse`], the record's link id, and the password parameters.
    ///
    /// # Errors
    /// As [`LinkRecord::parse`]; [`Error::Binding`] for another link id;
    /// [`Error::LimitExceeded`] for Argon2id parameters out of range.
    pub fn validate_for_storage(bytes: &[u8], link_id: LinkId) -> Result<Self> {
        let record = Self::parse(bytes)?;
        if record.link_id != link_id {
            return Err(Error::Binding("link record is for another link id"));
        }
        if let Some(pw) = &record.password {
            pw.argon2_params()?;
        }
        Ok(record)
    }

    /// Server side (spec §11.11.7): whether this record is a re-sealing (§9.3, §10.11) of
    /// `stored`: the same link id, node id, permission, expiry, download limit and password
    /// parameters, and a drop part exactly when `stored` has one, whose generation did not go
    /// down. Only the sealed parts (the capability, the sealed drop secret) and the drop part's
    /// generation may differ. The capability's generation is sealed, so it cannot be checked here;
    /// link holders verify it when they open the record (§10.7).
    #[must_use]
    pub fn is_reseal_of(&self, stored: &LinkRecord) -> bool {
        let drop_ok = match (&self.drop, &stored.drop) {
            (None, None) => true,
            (Some(new), Some(old)) => new.generation >= old.generation,
            _ => false,
        };
        drop_ok
            && self.link_id == stored.link_id
            && self.node_id == stored.node_id
            && self.permission == stored.permission
            && self.expires_at == stored.expires_at
            && self.max_downloads == stored.max_downloads
            && self.password == stored.password
    }

    /// The encoded record.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The associated data of the sealed capability: the encoded [`CapabilityContext`]
    /// `[75, 1, link-id, node-id, permission, expires-at, max-downloads, password, drop]`.
    #[must_use]
    pub fn capability_aad(&self) -> Vec<u8> {
        encode(&CapabilityContext {
            link_id: self.link_id,
            node_id: self.node_id,
            permission: self.permission,
            expires_at: self.expires_at,
            max_downloads: self.max_downloads,
            password: self.password.clone(),
            drop: self.drop.clone(),
        })
    }
}

crate::cbor_struct! {
    /// The link capability (type 71), sealed inside the record under the capability key.
    /// Exactly one of `read_key` (read links) and `drop_public` (upload-only links) is present.
    #[derive(Clone, PartialEq, Eq)]
    pub struct LinkCapability (type = 71, version = 1) {
        /// The kind of the node.
        pub node_kind: NodeKind,
        /// The key generation of `read_key` (the folder key generation for folders).
        pub generation: u64,
        /// Read links: the node key (a file's node key, or the folder key of `generation`).
        pub read_key: Option<Bytes<KEY_LEN>>,
        /// Upload-only links: the X25519 drop public key.
        pub drop_public: Option<Bytes<32>>,
    }
}

impl Drop for LinkCapability {
    fn drop(&mut self) {
        if let Some(k) = self.read_key.as_mut() {
            k.0.zeroize();
        }
    }
}

impl fmt::Debug for LinkCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkCapability")
            .field("node_kind", &self.node_kind)
            .field("generation", &self.generation)
            .field("read_key", &self.read_key.as_ref().map(|_| "<redacted>"))
            .field("drop_public", &self.drop_public)
            .finish()
    }
}

crate::cbor_struct! {
    /// Associated data of the sealed drop secret (type 74): `[74, 1, folder-id, link-id,
    /// generation]`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DropSecretContext (type = 74, version = 1) {
        /// The folder.
        pub folder_id: NodeId,
        /// The upload-only link.
        pub link_id: LinkId,
        /// The folder key generation sealing the drop secret.
        pub generation: u64,
    }
}

fn drop_secret_aad(folder_id: NodeId, link_id: LinkId, generation: u64) -> Vec<u8> {
    encode(&DropSecretContext {
        folder_id,
        link_id,
        generation,
    })
}

// ---------------------------------------------------------------------------------------------
// Creating and opening links

/// The node a link gives access to, with the key that reads it.
#[derive(Debug, Clone)]
pub struct LinkTarget {
    /// The node.
    pub node_id: NodeId,
    /// File or folder.
    pub node_kind: NodeKind,
    /// The generation of `node_key` (a folder's current key generation).
    pub generation: u64,
    /// A file's node key, or a folder's folder key of `generation`.
    pub node_key: SecretKey,
}

/// A password for a new link, with its Argon2id cost.
#[derive(Clone, Copy)]
pub struct NewLinkPassword<'a> {
    /// The password bytes (UTF-8, NFC-normalised by the application).
    pub password: &'a [u8],
    /// The Argon2id cost (use [`Argon2Params::DEFAULT`]).
    pub params: Argon2Params,
}

impl fmt::Debug for NewLinkPassword<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewLinkPassword")
            .field("password", &"<redacted>")
            .field("params", &self.params)
            .finish()
    }
}

/// Options of a new link.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkOptions<'a> {
    /// Require a password.
    pub password: Option<NewLinkPassword<'a>>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// Download limit (at least 1).
    pub max_downloads: Option<u64>,
    /// Make an upload-only ("drop box") link to a folder instead of a read link.
    pub upload_only: bool,
}

/// A new link, as returned by [`create_link`] and [`rotate_link`].
#[derive(Debug)]
pub struct CreatedLink {
    /// The URL to hand out (contains the secret).
    pub url: LinkUrl,
    /// The encoded [`LinkRecord`] to store at the server under `url.link_id()`.
    pub record: Vec<u8>,
    /// For password links, `SHA-256(verifier)` to store at the server beside the record.
    pub verifier_hash: Option<[u8; VERIFIER_LEN]>,
    /// The owner's entry for this link; seal it with [`seal_owner_entry`] and keep it.
    pub owner_entry: OwnerLinkEntry,
}

/// A record re-sealed for a new key generation by [`reseal_link`].
#[derive(Debug)]
pub struct ResealedLink {
    /// The encoded [`LinkRecord`] that replaces the stored one (same link id).
    pub record: Vec<u8>,
    /// Unchanged verifier hash (password links).
    pub verifier_hash: Option<[u8; VERIFIER_LEN]>,
}

/// Everything [`build_record`] needs; shared by create, reseal and rotate.
struct RecordInputs<'a> {
    secret: &'a LinkSecret,
    target: &'a LinkTarget,
    permission: Permission,
    expires_at: Option<u64>,
    max_downloads: Option<u64>,
    password: Option<(&'a LinkPassword, &'a SecretKey)>,
    drop_secret: Option<&'a AgreementSecret>,
}

/// Seals the capability and assembles the record. Draws, in order: the drop secret's seal nonce
/// (upload-only links), then the capability's seal nonce.
fn build_record(inputs: &RecordInputs<'_>, rng: &mut impl CryptoRngCore) -> Result<Vec<u8>> {
    let t = inputs.target;
    if inputs.max_downloads == Some(0) {
        return Err(Error::InvalidArgument("max_downloads must be at least 1"));
    }
    let link_id = inputs.secret.link_id();
    let (drop, read_key, drop_public) = match (inputs.permission, inputs.drop_secret) {
        (Permission::Read, None) => (None, Some(Bytes(*t.node_key.expose())), None),
        (Permission::UploadOnly, Some(ds)) => {
            if t.node_kind != NodeKind::Folder {
                return Err(Error::InvalidArgument("upload-only links point to folders"));
            }
            let aad = drop_secret_aad(t.node_id, link_id, t.generation);
            let sealed = seal::seal(&t.node_key, LABEL_DROP_SECRET, &aad, ds.expose(), rng);
            let drop = LinkDrop {
                generation: t.generation,
                sealed_drop_secret: ByteBuf::from(sealed),
            };
            (Some(drop), None, Some(Bytes(ds.public_key().to_bytes())))
        }
        _ => return Err(Error::Internal("link permission and drop secret disagree")),
    };
    let capability = LinkCapability {
        node_kind: t.node_kind,
        generation: t.generation,
        read_key,
        drop_public,
    };
    let mut record = LinkRecord {
        link_id,
        node_id: t.node_id,
        permission: inputs.permission,
        expires_at: inputs.expires_at,
        max_downloads: inputs.max_downloads,
        password: inputs.password.map(|(p, _)| p.clone()),
        drop,
        capability: ByteBuf::new(),
    };
    let key = capability_key(inputs.secret, inputs.password.map(|(_, k)| k));
    let plaintext = Zeroizing::new(encode(&capability));
    let sealed = seal::seal(
        &key,
        LABEL_CAPABILITY,
        &record.capability_aad(),
        &plaintext,
        rng,
    );
    record.capability = ByteBuf::from(sealed);
    Ok(record.to_bytes())
}

/// Creates a link to `target` under `origin` (spec §10.5).
///
/// Draws, in order: the link secret (32 bytes); for a password, the salt (16); for an upload-only
/// link, the drop secret (32) and the drop secret's seal nonce (24); the capability's seal nonce
/// (24). With a password it runs Argon2id once.
///
/// # Errors
/// [`Error::InvalidArgument`] for an invalid origin, `max_downloads` of 0, or an upload-only link
/// to a file; [`Error::LimitExceeded`] for Argon2id parameters out of range.
pub fn create_link(
    rng: &mut impl CryptoRngCore,
    origin: &str,
    target: &LinkTarget,
    options: &LinkOptions<'_>,
    now: u64,
) -> Result<CreatedLink> {
    check_origin(origin).map_err(|_| Error::InvalidArgument("invalid link origin"))?;
    if let Some(pw) = &options.password {
        pw.params.check()?;
    }
    if options.max_downloads == Some(0) {
        return Err(Error::InvalidArgument("max_downloads must be at least 1"));
    }
    if options.upload_only && target.node_kind != NodeKind::Folder {
        return Err(Error::InvalidArgument("upload-only links point to folders"));
    }
    let secret = LinkSecret::generate(rng);
    let password = match &options.password {
        Some(pw) => {
            let salt: [u8; LINK_SALT_LEN] = primitives::random_array(rng);
            let params = LinkPassword {
                m_kib: u64::from(pw.params.m_kib),
                t: u64::from(pw.params.t),
                p: u64::from(pw.params.p),
                salt: Bytes(salt),
            };
            let key = params.derive_key(pw.password)?;
            Some((params, key))
        }
        None => None,
    };
    let drop_secret = options.upload_only.then(|| AgreementSecret::generate(rng));
    let entry = OwnerLinkEntry {
        secret: Bytes(*secret.expose()),
        node_id: target.node_id,
        node_kind: target.node_kind,
        permission: if options.upload_only {
            Permission::UploadOnly
        } else {
            Permission::Read
        },
        expires_at: options.expires_at,
        max_downloads: options.max_downloads,
        password: password.as_ref().map(|(p, k)| OwnerLinkPassword {
            m_kib: p.m_kib,
            t: p.t,
            p: p.p,
            salt: p.salt,
            password_key: Bytes(*k.expose()),
        }),
        drop_secret: drop_secret.as_ref().map(|d| Bytes(*d.expose())),
        created_at: now,
    };
    finish_link(
        origin,
        secret,
        &entry,
        password.as_ref(),
        drop_secret.as_ref(),
        target,
        rng,
    )
}

fn finish_link(
    origin: &str,
    secret: LinkSecret,
    entry: &OwnerLinkEntry,
    password: Option<&(LinkPassword, SecretKey)>,
    drop_secret: Option<&AgreementSecret>,
    target: &LinkTarget,
    rng: &mut impl CryptoRngCore,
) -> Result<CreatedLink> {
    let record = build_record(
        &RecordInputs {
            secret: &secret,
            target,
            permission: entry.permission,
            expires_at: entry.expires_at,
            max_downloads: entry.max_downloads,
            password: password.map(|(p, k)| (p, k)),
            drop_secret,
        },
        rng,
    )?;
    let verifier_hash = password.map(|(_, k)| verifier_hash(&password_verifier(&secret, k)));
    let url = LinkUrl::new(origin, secret, password.is_some())?;
    Ok(CreatedLink {
        url,
        record,
        verifier_hash,
        owner_entry: entry.clone(),
    })
}

/// What the holder of a link may do with it: the opened capability, with the record's
/// (now authenticated) public fields.
#[derive(Debug)]
pub struct OpenedLink {
    /// The link id.
    pub link_id: LinkId,
    /// The node the link points to.
    pub node_id: NodeId,
    /// File or folder.
    pub node_kind: NodeKind,
    /// The key generation of the carried key.
    pub generation: u64,
    /// Expiry, as authenticated by the owner.
    pub expires_at: Option<u64>,
    /// Download limit, as authenticated by the owner.
    pub max_downloads: Option<u64>,
    /// The key material.
    pub access: LinkAccess,
}

/// The key material a link grants.
#[derive(Debug)]
pub enum LinkAccess {
    /// A read link: the node key (a file's node key or the folder key of the generation).
    Read {
        /// The node key.
        node_key: SecretKey,
    },
    /// An upload-only link: only the public key uploads are encrypted to.
    UploadOnly {
        /// The X25519 drop public key.
        drop_public: AgreementPublic,
    },
}

impl OpenedLink {
    /// The permission the link grants.
    #[must_use]
    pub fn permission(&self) -> Permission {
        match self.access {
            LinkAccess::Read { .. } => Permission::Read,
            LinkAccess::UploadOnly { .. } => Permission::UploadOnly,
        }
    }
}

/// Steps 1–4 of opening (spec §10.6): parse, check the record against the URL, check expiry.
fn precheck(url: &LinkUrl, record: &[u8], now: u64) -> Result<LinkRecord> {
    let record = LinkRecord::parse(record)?;
    if record.link_id != url.link_id() {
        return Err(Error::Binding("link record is for another link id"));
    }
    if record.password.is_some() != url.password_required() {
        return Err(Error::Binding(
            "password flag of the URL and record disagree",
        ));
    }
    if record.expires_at.is_some_and(|e| now >= e) {
        return Err(Error::LinkExpired);
    }
    Ok(record)
}

/// Opens a link: checks `record` against `url`, checks expiry against `now`, derives the keys
/// (running Argon2id on `password` for a password link, after checking its parameters) and opens
/// the capability (spec §10.6).
///
/// # Errors
/// [`Error::Decode`] for a malformed or non-canonical record; [`Error::Binding`] when the record
/// is for another link id or its password flag disagrees with the URL's; [`Error::LinkExpired`];
/// [`Error::InvalidArgument`] when a password is needed and `password` is `None`;
/// [`Error::LimitExceeded`] for out-of-range Argon2id parameters (before any work);
/// [`Error::DecryptionFailed`] for a wrong password, a tampered record or a wrong secret;
/// [`Error::InvalidPublicKey`] for an invalid drop public key.
pub fn open_link(
    url: &LinkUrl,
    record: &[u8],
    password: Option<&[u8]>,
    now: u64,
) -> Result<OpenedLink> {
    let rec = precheck(url, record, now)?;
    let pw_key = match (&rec.password, password) {
        (None, _) => None,
        (Some(_), None) => return Err(Error::InvalidArgument("this link needs a password")),
        (Some(params), Some(pw)) => Some(params.derive_key(pw)?),
    };
    open_checked(url.secret(), &rec, pw_key.as_ref())
}

/// As [`open_link`], with the password key already derived (a client that computed `pw_key` to
/// send the verifier need not run Argon2id twice).
///
/// # Errors
/// As [`open_link`].
pub fn open_link_with_key(
    url: &LinkUrl,
    record: &[u8],
    pw_key: Option<&SecretKey>,
    now: u64,
) -> Result<OpenedLink> {
    let rec = precheck(url, record, now)?;
    let pw_key = match (&rec.password, pw_key) {
        (None, _) => None,
        (Some(_), None) => return Err(Error::InvalidArgument("this link needs a password")),
        (Some(params), Some(k)) => {
            params.argon2_params()?;
            Some(k)
        }
    };
    open_checked(url.secret(), &rec, pw_key)
}

fn open_checked(
    secret: &LinkSecret,
    rec: &LinkRecord,
    pw_key: Option<&SecretKey>,
) -> Result<OpenedLink> {
    let key = capability_key(secret, pw_key);
    let plaintext = seal::open(
        &key,
        LABEL_CAPABILITY,
        &rec.capability_aad(),
        &rec.capability,
    )?;
    let cap: LinkCapability = crate::encoding::decode(&plaintext)?;
    let access = match (rec.permission, &cap.read_key, &cap.drop_public, &rec.drop) {
        (Permission::Read, Some(k), None, None) => LinkAccess::Read {
            node_key: SecretKey::from_bytes(k.0),
        },
        (Permission::UploadOnly, None, Some(p), Some(d)) if cap.node_kind == NodeKind::Folder => {
            if d.generation != cap.generation {
                return Err(Error::Binding(
                    "drop secret generation differs from the capability's",
                ));
            }
            LinkAccess::UploadOnly {
                drop_public: AgreementPublic::from_bytes(&p.0)?,
            }
        }
        _ => return Err(DecodeError::InvalidValue.into()),
    };
    Ok(OpenedLink {
        link_id: rec.link_id,
        node_id: rec.node_id,
        node_kind: cap.node_kind,
        generation: cap.generation,
        expires_at: rec.expires_at,
        max_downloads: rec.max_downloads,
        access,
    })
}

// ---------------------------------------------------------------------------------------------
// Upload-only links: the drop box

crate::cbor_struct! {
    /// A dropped upload (type 72): a new node's key encrypted to the link's drop public key, and
    /// the node's metadata sealed under that key.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DropEnvelope (type = 72, version = 1) {
        /// The upload-only link.
        pub link_id: LinkId,
        /// The folder the link drops into.
        pub folder_id: NodeId,
        /// The new node, chosen at random by the uploader.
        pub node_id: NodeId,
        /// HPKE encapsulated key.
        pub enc: Bytes<HPKE_ENC_LEN>,
        /// HPKE ciphertext of the node key (48 bytes).
        pub sealed_node_key: Bytes<DROP_NODE_KEY_CT_LEN>,
        /// The node's metadata plaintext (spec §5 encoding), sealed under the node key.
        pub sealed_metadata: ByteBuf,
    }
}

impl DropEnvelope {
    /// Server side (spec §11.11.6, §11.15): decodes an envelope of at most
    /// [`MAX_DROP_ENVELOPE_LEN`] bytes strictly and checks that it names `link_id` and the link's
    /// folder `folder_id`. Nothing in it can be verified without the drop secret.
    ///
    /// # Errors
    /// [`Error::Decode`] for malformed input; [`Error::Binding`] for another link or folder.
    pub fn parse_for_link(bytes: &[u8], link_id: LinkId, folder_id: NodeId) -> Result<Self> {
        let env: DropEnvelope = decode_bounded(bytes, MAX_DROP_ENVELOPE_LEN)?;
        if env.link_id != link_id || env.folder_id != folder_id {
            return Err(Error::Binding("drop envelope is for another link"));
        }
        Ok(env)
    }
}

crate::cbor_struct! {
    /// The associated data of both ciphertexts of a [`DropEnvelope`] (type 76):
    /// `[76, 1, link-id, folder-id, node-id]`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DropContext (type = 76, version = 1) {
        /// The upload-only link.
        pub link_id: LinkId,
        /// The folder.
        pub folder_id: NodeId,
        /// The new node.
        pub node_id: NodeId,
    }
}

fn drop_hpke_info(link_id: LinkId, folder_id: NodeId) -> Vec<u8> {
    let mut info = Vec::with_capacity(LABEL_DROP_NODE_KEY.len() + 1 + 2 * ID_LEN);
    info.extend_from_slice(LABEL_DROP_NODE_KEY.as_bytes());
    info.push(0);
    info.extend_from_slice(link_id.as_bytes());
    info.extend_from_slice(folder_id.as_bytes());
    info
}

/// An upload prepared by [`create_drop`].
#[derive(Debug)]
pub struct DropUpload {
    /// The new node's id.
    pub node_id: NodeId,
    /// The new node's key: encrypt the file key and content under it as for any file (§4).
    pub node_key: SecretKey,
    /// The encoded [`DropEnvelope`] to send with the upload.
    pub envelope: Vec<u8>,
}

/// Uploader side: prepares a new file for an upload-only link.
///
/// Draws, in order: the node id (16 bytes), the node key (32), the HPKE ephemeral `ikmE` (32),
/// the metadata seal nonce (24).
///
/// # Errors
/// [`Error::InvalidArgument`] if `link` is not an upload-only link;
/// [`Error::LimitExceeded`] if `metadata` is longer than [`MAX_DROP_METADATA_LEN`].
pub fn create_drop(
    rng: &mut impl CryptoRngCore,
    link: &OpenedLink,
    metadata: &[u8],
) -> Result<DropUpload> {
    let LinkAccess::UploadOnly { drop_public } = &link.access else {
        return Err(Error::InvalidArgument("not an upload-only link"));
    };
    if metadata.len() > MAX_DROP_METADATA_LEN {
        return Err(Error::LimitExceeded {
            what: "drop metadata length",
            limit: MAX_DROP_METADATA_LEN as u64,
        });
    }
    let node_id = NodeId::generate(rng);
    let node_key = SecretKey::generate(rng);
    let aad = encode(&DropContext {
        link_id: link.link_id,
        folder_id: link.node_id,
        node_id,
    });
    let info = drop_hpke_info(link.link_id, link.node_id);
    let (enc, ct) = primitives::hpke_seal(drop_public, &info, &aad, node_key.expose(), rng)?;
    let ct: [u8; DROP_NODE_KEY_CT_LEN] = ct
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal("HPKE ciphertext length"))?;
    let sealed_metadata = seal::seal(&node_key, LABEL_DROP_METADATA, &aad, metadata, rng);
    let envelope = encode(&DropEnvelope {
        link_id: link.link_id,
        folder_id: link.node_id,
        node_id,
        enc: Bytes(enc),
        sealed_node_key: Bytes(ct),
        sealed_metadata: ByteBuf::from(sealed_metadata),
    });
    Ok(DropUpload {
        node_id,
        node_key,
        envelope,
    })
}

/// The file key of a dropped file (spec §10.9.2 step 5):
/// `HKDF-SHA-256(ikm = node_key, salt = "", info = "coffer/v1/link/drop-file-key" || 0x00 ||
/// node-id, L = 32)`.
///
/// A drop envelope has no room for a sealed file key, so the uploader encrypts the content (§4)
/// under this key, derived from the fresh node key it encrypts to the drop public key; the filing
/// member derives the same key from the opened node key and, when it files the node (§10.9.3 step
/// 6), seals it under the node key in the file's record like any file key (§7).
#[must_use]
pub fn drop_file_key(node_key: &SecretKey, node_id: NodeId) -> SecretKey {
    primitives::derive_key(
        node_key.expose(),
        &[],
        LABEL_DROP_FILE_KEY,
        node_id.as_bytes(),
    )
}

/// Owner side: opens the drop secret of an upload-only link's record with the folder key of the
/// generation named in the record.
///
/// # Errors
/// [`Error::InvalidArgument`] for a read link; [`Error::DecryptionFailed`] for a wrong folder key,
/// generation or tampered record.
pub fn open_drop_secret(record: &LinkRecord, folder_key: &SecretKey) -> Result<AgreementSecret> {
    let drop = record
        .drop
        .as_ref()
        .ok_or(Error::InvalidArgument("not an upload-only link"))?;
    let aad = drop_secret_aad(record.node_id, record.link_id, drop.generation);
    let key = seal::open_key(
        folder_key,
        LABEL_DROP_SECRET,
        &aad,
        &drop.sealed_drop_secret,
    )?;
    Ok(AgreementSecret::from_bytes(*key.expose()))
}

/// A drop opened by [`open_drop`]: file it under the folder as a normal node (re-seal the node
/// key under the folder key, seal the metadata, sign the node record; §5, §7).
#[derive(Debug)]
pub struct OpenedDrop {
    /// The new node's id.
    pub node_id: NodeId,
    /// The new node's key.
    pub node_key: SecretKey,
    /// The metadata plaintext the uploader supplied (to be validated as §5 metadata).
    pub metadata: Zeroizing<Vec<u8>>,
}

/// Owner side: opens a [`DropEnvelope`] received for `link_id` into `folder_id`.
///
/// # Errors
/// [`Error::Decode`] for a malformed envelope (or one over [`MAX_DROP_ENVELOPE_LEN`]);
/// [`Error::Binding`] when it names another link or folder; [`Error::DecryptionFailed`] for a
/// tampered envelope or a wrong drop secret.
pub fn open_drop(
    drop_secret: &AgreementSecret,
    link_id: LinkId,
    folder_id: NodeId,
    envelope: &[u8],
) -> Result<OpenedDrop> {
    let env: DropEnvelope = decode_bounded(envelope, MAX_DROP_ENVELOPE_LEN)?;
    if env.link_id != link_id || env.folder_id != folder_id {
        return Err(Error::Binding(
            "drop envelope is for another link or folder",
        ));
    }
    let aad = encode(&DropContext {
        link_id,
        folder_id,
        node_id: env.node_id,
    });
    let info = drop_hpke_info(link_id, folder_id);
    let pt = Zeroizing::new(primitives::hpke_open(
        drop_secret,
        &env.enc.0,
        &info,
        &aad,
        &env.sealed_node_key.0,
    )?);
    let node_key = SecretKey::from_slice(&pt).map_err(|_| Error::DecryptionFailed)?;
    let metadata = seal::open(&node_key, LABEL_DROP_METADATA, &aad, &env.sealed_metadata)?;
    Ok(OpenedDrop {
        node_id: env.node_id,
        node_key,
        metadata,
    })
}

// ---------------------------------------------------------------------------------------------
// The owner's entries; re-sealing and rotation (spec §9.3)

crate::cbor_struct! {
    /// The password part of an [`OwnerLinkEntry`]: the record's parameters plus `pw_key`, so the
    /// owner can re-seal and rotate without asking for the password again.
    #[derive(Clone, PartialEq, Eq)]
    pub struct OwnerLinkPassword {
        /// Argon2id memory, KiB.
        pub m_kib: u64,
        /// Argon2id passes.
        pub t: u64,
        /// Argon2id lanes.
        pub p: u64,
        /// Argon2id salt.
        pub salt: Bytes<LINK_SALT_LEN>,
        /// `pw_key`.
        pub password_key: Bytes<KEY_LEN>,
    }
}

impl Drop for OwnerLinkPassword {
    fn drop(&mut self) {
        self.password_key.0.zeroize();
    }
}

impl OwnerLinkPassword {
    fn split(&self) -> (LinkPassword, SecretKey) {
        (
            LinkPassword {
                m_kib: self.m_kib,
                t: self.t,
                p: self.p,
                salt: self.salt,
            },
            SecretKey::from_bytes(self.password_key.0),
        )
    }
}

crate::cbor_struct! {
    /// The owner's entry for one link (type 73), sealed under an owner key with
    /// [`seal_owner_entry`]: everything needed to list, re-seal, rotate and revoke the link.
    #[derive(Clone, PartialEq, Eq)]
    pub struct OwnerLinkEntry (type = 73, version = 1) {
        /// The link secret.
        pub secret: Bytes<LINK_SECRET_LEN>,
        /// The node the link points to.
        pub node_id: NodeId,
        /// File or folder.
        pub node_kind: NodeKind,
        /// What the link allows.
        pub permission: Permission,
        /// Expiry.
        pub expires_at: Option<u64>,
        /// Download limit.
        pub max_downloads: Option<u64>,
        /// Password parameters and `pw_key`.
        pub password: Option<OwnerLinkPassword>,
        /// The drop secret (upload-only links).
        pub drop_secret: Option<Bytes<32>>,
        /// When the link was created, seconds since the Unix epoch.
        pub created_at: u64,
    }
}

impl Drop for OwnerLinkEntry {
    fn drop(&mut self) {
        self.secret.0.zeroize();
        if let Some(d) = self.drop_secret.as_mut() {
            d.0.zeroize();
        }
    }
}

impl fmt::Debug for OwnerLinkEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerLinkEntry")
            .field("link_id", &self.link_id())
            .field("node_id", &self.node_id)
            .field("node_kind", &self.node_kind)
            .field("permission", &self.permission)
            .field("expires_at", &self.expires_at)
            .field("max_downloads", &self.max_downloads)
            .field("password", &self.password.is_some())
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl OwnerLinkEntry {
    /// The link secret.
    #[must_use]
    pub fn link_secret(&self) -> LinkSecret {
        LinkSecret::from_bytes(self.secret.0)
    }

    /// The link id.
    #[must_use]
    pub fn link_id(&self) -> LinkId {
        self.link_secret().link_id()
    }

    /// The link's URL under `origin`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid origin.
    pub fn url(&self, origin: &str) -> Result<LinkUrl> {
        LinkUrl::new(origin, self.link_secret(), self.password.is_some())
    }

    fn check_consistent(&self) -> Result<(), DecodeError> {
        let ok = match self.permission {
            Permission::Read => self.drop_secret.is_none(),
            Permission::UploadOnly => {
                self.drop_secret.is_some() && self.node_kind == NodeKind::Folder
            }
        };
        if !ok || self.max_downloads == Some(0) {
            return Err(DecodeError::InvalidValue);
        }
        Ok(())
    }
}

crate::cbor_struct! {
    /// Associated data of a sealed owner entry (type 77): `[77, 1, link-id]`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OwnerEntryContext (type = 77, version = 1) {
        /// The link the entry is for.
        pub link_id: LinkId,
    }
}

/// Seals an owner entry under `owner_key` (label `coffer/v1/link/owner-entry`, associated data
/// `[77, 1, link-id]`). Draws the 24-byte seal nonce.
#[must_use]
pub fn seal_owner_entry(
    owner_key: &SecretKey,
    entry: &OwnerLinkEntry,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let aad = encode(&OwnerEntryContext {
        link_id: entry.link_id(),
    });
    let pt = Zeroizing::new(encode(entry));
    seal::seal(owner_key, LABEL_OWNER_ENTRY, &aad, &pt, rng)
}

/// Opens an owner entry stored under `link_id`.
///
/// # Errors
/// [`Error::DecryptionFailed`] for a wrong key, wrong link id or tampering; [`Error::Decode`] for
/// a malformed entry; [`Error::Binding`] if the secret inside does not derive `link_id`.
pub fn open_owner_entry(
    owner_key: &SecretKey,
    link_id: LinkId,
    sealed: &[u8],
) -> Result<OwnerLinkEntry> {
    if sealed.len() > MAX_OWNER_ENTRY_LEN + SEAL_OVERHEAD {
        return Err(Error::DecryptionFailed);
    }
    let aad = encode(&OwnerEntryContext { link_id });
    let pt = seal::open(owner_key, LABEL_OWNER_ENTRY, &aad, sealed)?;
    let entry: OwnerLinkEntry = crate::encoding::decode(&pt)?;
    entry.check_consistent()?;
    if entry.link_id() != link_id {
        return Err(Error::Binding("owner entry holds another link's secret"));
    }
    Ok(entry)
}

fn check_target(entry: &OwnerLinkEntry, target: &LinkTarget) -> Result<()> {
    if entry.node_id != target.node_id || entry.node_kind != target.node_kind {
        return Err(Error::InvalidArgument("target is not the link's node"));
    }
    Ok(())
}

/// Re-seals a link's record for a new key generation of its folder (spec §9.3): same secret,
/// same URL, same options; the capability (and an upload-only link's drop secret) sealed under
/// `target`'s key. Draws the seal nonces as [`create_link`] does; runs no Argon2id.
///
/// # Errors
/// [`Error::InvalidArgument`] if `target` is not the entry's node; [`Error::Decode`] for an
/// inconsistent entry.
pub fn reseal_link(
    rng: &mut impl CryptoRngCore,
    entry: &OwnerLinkEntry,
    target: &LinkTarget,
) -> Result<ResealedLink> {
    check_target(entry, target)?;
    entry.check_consistent()?;
    let secret = entry.link_secret();
    let password = entry.password.as_ref().map(OwnerLinkPassword::split);
    let drop_secret = entry
        .drop_secret
        .as_ref()
        .map(|d| AgreementSecret::from_bytes(d.0));
    let record = build_record(
        &RecordInputs {
            secret: &secret,
            target,
            permission: entry.permission,
            expires_at: entry.expires_at,
            max_downloads: entry.max_downloads,
            password: password.as_ref().map(|(p, k)| (p, k)),
            drop_secret: drop_secret.as_ref(),
        },
        rng,
    )?;
    let verifier_hash = password
        .as_ref()
        .map(|(_, k)| verifier_hash(&password_verifier(&secret, k)));
    Ok(ResealedLink {
        record,
        verifier_hash,
    })
}

/// Rotates a link (spec §9.3): a new secret (hence a new link id and URL) with the same node,
/// permission, expiry, download limit and password (same salt and `pw_key`, so no Argon2id runs),
/// and for an upload-only link a fresh drop key pair. The server stores the new record and deletes
/// the old one atomically.
///
/// Draws, in order: the secret (32); for upload-only links the drop secret (32) and its seal
/// nonce (24); the capability seal nonce (24).
///
/// # Errors
/// As [`reseal_link`], and [`Error::InvalidArgument`] for an invalid origin.
pub fn rotate_link(
    rng: &mut impl CryptoRngCore,
    entry: &OwnerLinkEntry,
    origin: &str,
    target: &LinkTarget,
    now: u64,
) -> Result<CreatedLink> {
    check_origin(origin).map_err(|_| Error::InvalidArgument("invalid link origin"))?;
    check_target(entry, target)?;
    entry.check_consistent()?;
    let secret = LinkSecret::generate(rng);
    let password = entry.password.as_ref().map(OwnerLinkPassword::split);
    let drop_secret =
        (entry.permission == Permission::UploadOnly).then(|| AgreementSecret::generate(rng));
    let mut new_entry = entry.clone();
    new_entry.secret = Bytes(*secret.expose());
    new_entry.drop_secret = drop_secret.as_ref().map(|d| Bytes(*d.expose()));
    new_entry.created_at = now;
    finish_link(
        origin,
        secret,
        &new_entry,
        password.as_ref(),
        drop_secret.as_ref(),
        target,
        rng,
    )
}

#[cfg(test)]
mod tests;
