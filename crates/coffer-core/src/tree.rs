//! Spec §7, "Tree": nodes, node keys and signed node records.
//!
//! Every node (file or folder) has a random [`NodeId`] and a random 256-bit *node key*. A
//! folder's node key is its *folder key*; folder keys have *generations* (§9.2 rotates them). A
//! child's node key is sealed under its parent's folder key of some generation, with associated
//! data binding parent id, child id and that generation ([`NodeKeyAad`]). A file additionally
//! carries its file key (§4) sealed under its node key ([`FileKeyAad`]). A folder at generation
//! `g > 0` carries a *back-chain*: for every `i` in `1..=g` the key of generation `i - 1` sealed
//! under the key of generation `i` ([`BackChainAad`]), so that the holder of the current key can
//! open everything still sealed under an older generation.
//!
//! Every record is signed by its author ([`SignedNode`]). [`verify_node`] checks the signature,
//! that the author is acceptable, and that the record belongs where it was found, so a server
//! cannot plant, swap or move nodes unnoticed.

use alloc::vec::Vec;

use rand_core::CryptoRngCore;

use crate::encoding::{decode_bounded, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error, Result};
use crate::ids::NodeId;
use crate::primitives::{SecretKey, SigningKey, VerifyingKey, SIGNATURE_LEN};
use crate::seal::{open_key, seal_key, SEALED_KEY_LEN};

/// Label sealing a child's node key under its parent's folder key.
pub const LABEL_NODE_KEY: &str = "coffer/v1/tree/node-key";
/// Label sealing a file's file key under its node key.
pub const LABEL_FILE_KEY: &str = "coffer/v1/tree/file-key";
/// Label sealing a folder key of generation `g - 1` under the key of generation `g`.
pub const LABEL_BACK_CHAIN: &str = "coffer/v1/tree/back-chain";
/// Label of the author's signature over a node record.
pub const LABEL_NODE_SIGNATURE: &str = "coffer/v1/tree/node";

/// `kind` of a folder: the wire value of [`NodeKind::Folder`].
pub const KIND_FOLDER: u64 = 0;
/// `kind` of a file: the wire value of [`NodeKind::File`].
pub const KIND_FILE: u64 = 1;

/// The kind of a node (spec §7.3, `node-kind`): the one file/folder enumeration of the protocol,
/// also used by links (§10). Encoded as an unsigned integer: folder 0, file 1; any other value is
/// `invalid-value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A folder ([`KIND_FOLDER`]).
    Folder,
    /// A file ([`KIND_FILE`]).
    File,
}

impl NodeKind {
    /// The wire value.
    #[must_use]
    pub fn to_u64(self) -> u64 {
        match self {
            NodeKind::Folder => KIND_FOLDER,
            NodeKind::File => KIND_FILE,
        }
    }

    /// Parses the wire value.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] for a value other than 0 and 1.
    pub fn from_u64(v: u64) -> core::result::Result<Self, DecodeError> {
        match v {
            KIND_FOLDER => Ok(NodeKind::Folder),
            KIND_FILE => Ok(NodeKind::File),
            _ => Err(DecodeError::InvalidValue),
        }
    }
}

impl serde::Serialize for NodeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.to_u64())
    }
}

impl<'de> serde::Deserialize<'de> for NodeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let v = <u64 as serde::Deserialize>::deserialize(d)?;
        NodeKind::from_u64(v)
            .map_err(|_| serde::de::Error::custom(crate::encoding::ERR_INVALID_VALUE))
    }
}

/// Maximum encoded length of a [`SignedNode`]; longer input is rejected before parsing.
pub const MAX_SIGNED_NODE_LEN: usize = 1 << 20;

crate::cbor_struct! {
    /// Associated data of a sealed node key (type 42).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NodeKeyAad (type = 42, version = 1) {
        /// The parent folder.
        pub parent_id: NodeId,
        /// The child whose node key is sealed.
        pub child_id: NodeId,
        /// The generation of the parent's folder key that seals it.
        pub parent_generation: u64,
    }
}

crate::cbor_struct! {
    /// Associated data of a sealed file key (type 43).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FileKeyAad (type = 43, version = 1) {
        /// The file node.
        pub node_id: NodeId,
        /// The content revision the file key encrypts.
        pub content_revision: u64,
    }
}

crate::cbor_struct! {
    /// Associated data of one back-chain entry (type 44).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BackChainAad (type = 44, version = 1) {
        /// The folder.
        pub folder_id: NodeId,
        /// The generation of the sealing key; the sealed key is of `generation - 1`.
        pub generation: u64,
    }
}

crate::cbor_struct! {
    /// The content reference of a file node.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FileRef {
        /// The content revision; the server addresses content by node id and revision.
        pub content_revision: u64,
        /// Length of the content ciphertext in bytes (§4).
        pub ciphertext_length: u64,
        /// The file key sealed under the node key ([`LABEL_FILE_KEY`], [`FileKeyAad`]).
        pub sealed_file_key: ByteBuf,
    }
}

crate::cbor_struct! {
    /// A node record (type 40): one version of one file or folder.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NodeRecord (type = 40, version = 1) {
        /// The node.
        pub node_id: NodeId,
        /// The parent folder; `None` for the root folder.
        pub parent_id: Option<NodeId>,
        /// [`KIND_FOLDER`] or [`KIND_FILE`] (the wire values of [`NodeKind`]).
        pub kind: u64,
        /// A folder's key generation (0 at creation); 0 for files.
        pub key_generation: u64,
        /// The generation of the parent's folder key sealing this node key; 0 for the root.
        pub parent_generation: u64,
        /// The node key sealed under the parent's folder key; `None` for the root.
        pub sealed_node_key: Option<ByteBuf>,
        /// The metadata revision (§5).
        pub metadata_revision: u64,
        /// The generation of this node's own key that seals the metadata; 0 for files.
        pub metadata_generation: u64,
        /// The sealed metadata (§5), opaque here.
        pub sealed_metadata: ByteBuf,
        /// Files: the content reference. Folders: `None`.
        pub file: Option<FileRef>,
        /// Folders: `key_generation` entries, entry `i - 1` sealing generation `i - 1` under `i`.
        pub back_chain: Vec<ByteBuf>,
        /// The Ed25519 public key of the identity that wrote this record.
        pub author: Bytes<32>,
        /// The time the author wrote the record, seconds since the Unix epoch.
        pub time: u64,
    }
}

crate::cbor_struct! {
    /// A signed node record (type 41).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedNode (type = 41, version = 1) {
        /// The exact encoding of the [`NodeRecord`].
        pub record: ByteBuf,
        /// `Ed25519(author, "coffer/v1/tree/node" || 0x00 || record)`.
        pub signature: Bytes<SIGNATURE_LEN>,
    }
}

/// A folder key of a known generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderKey {
    /// The folder.
    pub folder_id: NodeId,
    /// The generation of `key`.
    pub generation: u64,
    /// The folder key.
    pub key: SecretKey,
}

/// A node id and node key drawn for a node about to be created, so that its metadata can be
/// sealed (§5) before the record is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// The new node's id.
    pub node_id: NodeId,
    /// The new node's key.
    pub node_key: SecretKey,
}

impl NewNode {
    /// Draws a node id (16 bytes) then a node key (32 bytes).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let node_id = NodeId::generate(rng);
        let node_key = SecretKey::generate(rng);
        NewNode { node_id, node_key }
    }
}

/// Sealed metadata (§5) and its revision, carried opaquely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedMetadata {
    /// The metadata revision.
    pub revision: u64,
    /// The sealed bytes.
    pub sealed: Vec<u8>,
}

/// A file's content reference, given when a file is created or its content replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// The file key (§4).
    pub file_key: SecretKey,
    /// The content revision.
    pub content_revision: u64,
    /// The content ciphertext length.
    pub ciphertext_length: u64,
}

/// Where a record was found, as the verifying client expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeExpectation {
    /// The node id under which the record was fetched.
    pub node_id: NodeId,
    /// The parent it was listed under, with the parent's current key generation; `None` for the
    /// root folder.
    pub parent: Option<(NodeId, u64)>,
    /// For a folder whose current generation the client knows (e.g. a share's generation, §8),
    /// that generation; the record must carry exactly it.
    pub key_generation: Option<u64>,
}

/// Encodes a node key's associated data.
#[must_use]
pub fn node_key_aad(parent_id: NodeId, child_id: NodeId, parent_generation: u64) -> Vec<u8> {
    encode(&NodeKeyAad {
        parent_id,
        child_id,
        parent_generation,
    })
}

/// Encodes a file key's associated data.
#[must_use]
pub fn file_key_aad(node_id: NodeId, content_revision: u64) -> Vec<u8> {
    encode(&FileKeyAad {
        node_id,
        content_revision,
    })
}

/// Encodes a back-chain entry's associated data.
#[must_use]
pub fn back_chain_aad(folder_id: NodeId, generation: u64) -> Vec<u8> {
    encode(&BackChainAad {
        folder_id,
        generation,
    })
}

/// Seals a child's node key under its parent's folder key.
#[must_use]
pub fn seal_node_key(
    parent: &FolderKey,
    child_id: NodeId,
    node_key: &SecretKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let aad = node_key_aad(parent.folder_id, child_id, parent.generation);
    seal_key(&parent.key, LABEL_NODE_KEY, &aad, node_key, rng)
}

/// Seals a file key under the file's node key for `content_revision`.
#[must_use]
pub fn seal_file_key(
    node_key: &SecretKey,
    node_id: NodeId,
    content_revision: u64,
    file_key: &SecretKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let aad = file_key_aad(node_id, content_revision);
    seal_key(node_key, LABEL_FILE_KEY, &aad, file_key, rng)
}

/// Seals the folder key of generation `new.generation - 1` under `new`: one back-chain entry.
///
/// # Errors
/// [`Error::InvalidArgument`] when `new.generation` is 0 or the ids differ.
pub fn seal_back_chain(
    new: &FolderKey,
    previous: &FolderKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    if new.folder_id != previous.folder_id
        || previous.generation.checked_add(1) != Some(new.generation)
    {
        return Err(Error::InvalidArgument(
            "back-chain needs consecutive generations",
        ));
    }
    let aad = back_chain_aad(new.folder_id, new.generation);
    Ok(seal_key(
        &new.key,
        LABEL_BACK_CHAIN,
        &aad,
        &previous.key,
        rng,
    ))
}

impl NodeRecord {
    /// Checks the structural rules of spec §7.3 that the CDDL cannot express.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] on any violation.
    pub fn check_structure(&self) -> Result<()> {
        let bad = Err(Error::Decode(DecodeError::InvalidValue));
        let sealed_len_ok = |b: &ByteBuf| b.len() == SEALED_KEY_LEN;
        match (&self.parent_id, &self.sealed_node_key) {
            (None, None) => {
                if self.parent_generation != 0 || self.kind != KIND_FOLDER {
                    return bad;
                }
            }
            (Some(parent), Some(sealed)) => {
                if !sealed_len_ok(sealed) || *parent == self.node_id {
                    return bad;
                }
            }
            _ => return bad,
        }
        match (self.kind, &self.file) {
            (KIND_FOLDER, None) => {
                if self.back_chain.len() as u64 != self.key_generation
                    || !self.back_chain.iter().all(sealed_len_ok)
                    || self.metadata_generation > self.key_generation
                {
                    return bad;
                }
            }
            (KIND_FILE, Some(file)) => {
                if self.key_generation != 0
                    || self.metadata_generation != 0
                    || !self.back_chain.is_empty()
                    || !sealed_len_ok(&file.sealed_file_key)
                    || file.content_revision == 0
                {
                    return bad;
                }
            }
            _ => return bad,
        }
        Ok(())
    }

    /// The node's kind.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] for a `kind` other than folder or file (a record that passed
    /// [`NodeRecord::check_structure`] never has one).
    pub fn node_kind(&self) -> Result<NodeKind> {
        Ok(NodeKind::from_u64(self.kind)?)
    }

    /// Whether this is a folder.
    #[must_use]
    pub fn is_folder(&self) -> bool {
        self.kind == KIND_FOLDER
    }

    /// The author's public key.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] if the author field is not a valid Ed25519 key.
    pub fn author_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.author.0)
    }

    /// The key of generation `generation` of this folder, given its current key (generation
    /// `key_generation`), walking the back-chain.
    ///
    /// # Errors
    /// [`Error::Binding`] if this is not a folder, the key is not this folder's, or `generation`
    /// is newer than the record; [`Error::DecryptionFailed`] if a back-chain entry does not open.
    pub fn folder_key_at(&self, current: &FolderKey, generation: u64) -> Result<SecretKey> {
        if !self.is_folder() {
            return Err(Error::Binding("not a folder"));
        }
        if current.folder_id != self.node_id || current.generation != self.key_generation {
            return Err(Error::Binding("folder key does not match the record"));
        }
        if generation > self.key_generation {
            return Err(Error::Binding("generation newer than the folder's"));
        }
        let mut key = current.key.clone();
        let mut g = self.key_generation;
        while g > generation {
            let idx = usize::try_from(g - 1).map_err(|_| Error::Binding("generation"))?;
            let entry = self
                .back_chain
                .get(idx)
                .ok_or(Error::Decode(DecodeError::InvalidValue))?;
            key = open_key(
                &key,
                LABEL_BACK_CHAIN,
                &back_chain_aad(self.node_id, g),
                entry,
            )?;
            g -= 1;
        }
        Ok(key)
    }

    /// Opens this node's key, given the parent's record and the parent's current folder key.
    /// Walks the parent's back-chain when this node is sealed under an older generation.
    ///
    /// # Errors
    /// [`Error::Binding`] if `parent` is not this node's parent or this node claims a newer
    /// generation than the parent has; [`Error::DecryptionFailed`] if the seal does not open.
    pub fn open_node_key(&self, parent: &NodeRecord, parent_key: &FolderKey) -> Result<SecretKey> {
        let sealed = self
            .sealed_node_key
            .as_ref()
            .ok_or(Error::Binding("the root's key is sealed by the account"))?;
        if self.parent_id != Some(parent.node_id) {
            return Err(Error::Binding("parent id"));
        }
        let key = parent.folder_key_at(parent_key, self.parent_generation)?;
        let aad = node_key_aad(parent.node_id, self.node_id, self.parent_generation);
        open_key(&key, LABEL_NODE_KEY, &aad, sealed)
    }

    /// This folder's current key, given its current node key (as opened by
    /// [`NodeRecord::open_node_key`], or from a grant or the account).
    #[must_use]
    pub fn folder_key(&self, key: SecretKey) -> FolderKey {
        FolderKey {
            folder_id: self.node_id,
            generation: self.key_generation,
            key,
        }
    }

    /// The key that seals this node's metadata (§5): the node key itself for files, the folder
    /// key of generation `metadata_generation` for folders.
    ///
    /// # Errors
    /// As [`NodeRecord::folder_key_at`].
    pub fn metadata_key(&self, node_key: &SecretKey) -> Result<SecretKey> {
        if self.is_folder() {
            self.folder_key_at(&self.folder_key(node_key.clone()), self.metadata_generation)
        } else {
            Ok(node_key.clone())
        }
    }

    /// Opens a file's file key with its node key.
    ///
    /// # Errors
    /// [`Error::Binding`] for a folder; [`Error::DecryptionFailed`] if the seal does not open.
    pub fn open_file_key(&self, node_key: &SecretKey) -> Result<SecretKey> {
        let file = self.file.as_ref().ok_or(Error::Binding("not a file"))?;
        let aad = file_key_aad(self.node_id, file.content_revision);
        open_key(node_key, LABEL_FILE_KEY, &aad, &file.sealed_file_key)
    }

    /// Signs this record with `author`, whose public key must be the record's `author`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the key does not match the `author` field; as
    /// [`NodeRecord::check_structure`] for a record no verifier would accept.
    pub fn sign(&self, author: &SigningKey) -> Result<SignedNode> {
        self.check_structure()?;
        if author.verifying_key().to_bytes() != self.author.0 {
            return Err(Error::InvalidArgument(
                "signing key is not the record's author",
            ));
        }
        let record = encode(self);
        let signature = Bytes(author.sign(LABEL_NODE_SIGNATURE, &record));
        Ok(SignedNode {
            record: ByteBuf::from(record),
            signature,
        })
    }
}

/// Server side (spec §11.15): decodes a signed node record strictly, checks
/// [`NodeRecord::check_structure`] and the signature under the author key the record names, and
/// returns the record. The server then checks that `author` is the caller's current identity key
/// (§6) and reads `node_id`, `parent_id`, `kind`, the revisions and `file`. Clients use
/// [`verify_node`], which also pins the author and the record's place.
///
/// # Errors
/// [`Error::Decode`] for malformed input, [`Error::InvalidPublicKey`] for an invalid author key,
/// [`Error::BadSignature`] for a signature that does not verify.
pub fn verify_node_signature(signed: &[u8]) -> Result<NodeRecord> {
    let outer: SignedNode = decode_bounded(signed, MAX_SIGNED_NODE_LEN)?;
    let record: NodeRecord = decode_bounded(&outer.record, MAX_SIGNED_NODE_LEN)?;
    record.check_structure()?;
    record
        .author_key()?
        .verify(LABEL_NODE_SIGNATURE, &outer.record, &outer.signature.0)?;
    Ok(record)
}

/// Verifies a signed node record found at `expected`, written by one of `authors`.
///
/// In order: the outer structure and the record decode strictly (§1) and pass
/// [`NodeRecord::check_structure`]; the author is a valid key and one of `authors`; the
/// signature verifies; the node id, parent id and generations match `expected`.
///
/// # Errors
/// [`Error::Decode`] for malformed input, [`Error::InvalidPublicKey`] for an invalid author key,
/// [`Error::Binding`] for an unacceptable author or a record that does not belong where it was
/// found, [`Error::BadSignature`] for a signature that does not verify.
pub fn verify_node(
    signed: &[u8],
    expected: &NodeExpectation,
    authors: &[VerifyingKey],
) -> Result<NodeRecord> {
    let outer: SignedNode = decode_bounded(signed, MAX_SIGNED_NODE_LEN)?;
    let record: NodeRecord = decode_bounded(&outer.record, MAX_SIGNED_NODE_LEN)?;
    record.check_structure()?;
    let author = record.author_key()?;
    if !authors.contains(&author) {
        return Err(Error::Binding("author not acceptable"));
    }
    author.verify(LABEL_NODE_SIGNATURE, &outer.record, &outer.signature.0)?;
    if record.node_id != expected.node_id {
        return Err(Error::Binding("node id"));
    }
    match (expected.parent, record.parent_id) {
        (None, None) => {}
        (Some((parent_id, parent_generation)), Some(got)) => {
            if got != parent_id {
                return Err(Error::Binding("parent id"));
            }
            if record.parent_generation > parent_generation {
                return Err(Error::Binding("parent generation"));
            }
        }
        _ => return Err(Error::Binding("parent id")),
    }
    if let Some(g) = expected.key_generation {
        if !record.is_folder() || record.key_generation != g {
            return Err(Error::Binding("key generation"));
        }
    }
    Ok(record)
}

/// Creates the root folder's record (generation 0). Its node key is `node.node_key`, which the
/// account seals (§6).
///
/// # Errors
/// As [`NodeRecord::sign`] (never, for a consistent `author`).
pub fn create_root(
    author: &SigningKey,
    node: &NewNode,
    metadata: SealedMetadata,
    time: u64,
) -> Result<(NodeRecord, SignedNode)> {
    new_record(author, node, None, None, metadata, time)
}

/// Builds and signs the generation-0 record of a new node: the root when `parent` is `None`,
/// otherwise a child of `parent` whose node key is sealed as `sealed_node_key`; a file exactly
/// when `file` is present. Shared by [`create_root`], [`create_folder`] and [`create_file`].
fn new_record(
    author: &SigningKey,
    node: &NewNode,
    parent: Option<(&FolderKey, Vec<u8>)>,
    file: Option<FileRef>,
    metadata: SealedMetadata,
    time: u64,
) -> Result<(NodeRecord, SignedNode)> {
    let (parent_id, parent_generation, sealed_node_key) = match parent {
        Some((p, sealed)) => (Some(p.folder_id), p.generation, Some(ByteBuf::from(sealed))),
        None => (None, 0, None),
    };
    let record = NodeRecord {
        node_id: node.node_id,
        parent_id,
        kind: if file.is_some() {
            KIND_FILE
        } else {
            KIND_FOLDER
        },
        key_generation: 0,
        parent_generation,
        sealed_node_key,
        metadata_revision: metadata.revision,
        metadata_generation: 0,
        sealed_metadata: ByteBuf::from(metadata.sealed),
        file,
        back_chain: Vec::new(),
        author: Bytes(author.verifying_key().to_bytes()),
        time,
    };
    let signed = record.sign(author)?;
    Ok((record, signed))
}

/// Creates a folder (generation 0) under `parent`, sealing `node.node_key` under the parent's
/// key. `metadata` must be sealed (§5) under `node.node_key` for `node.node_id`.
///
/// # Errors
/// As [`NodeRecord::sign`].
pub fn create_folder(
    author: &SigningKey,
    parent: &FolderKey,
    node: &NewNode,
    metadata: SealedMetadata,
    time: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(NodeRecord, SignedNode)> {
    let sealed = seal_node_key(parent, node.node_id, &node.node_key, rng);
    new_record(author, node, Some((parent, sealed)), None, metadata, time)
}

/// Creates a file under `parent`: seals `node.node_key` under the parent's key and the file key
/// under the node key.
///
/// # Errors
/// As [`NodeRecord::sign`].
pub fn create_file(
    author: &SigningKey,
    parent: &FolderKey,
    node: &NewNode,
    metadata: SealedMetadata,
    content: &FileContent,
    time: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(NodeRecord, SignedNode)> {
    let sealed = seal_node_key(parent, node.node_id, &node.node_key, rng);
    let sealed_file_key = seal_file_key(
        &node.node_key,
        node.node_id,
        content.content_revision,
        &content.file_key,
        rng,
    );
    let file = FileRef {
        content_revision: content.content_revision,
        ciphertext_length: content.ciphertext_length,
        sealed_file_key: ByteBuf::from(sealed_file_key),
    };
    new_record(
        author,
        node,
        Some((parent, sealed)),
        Some(file),
        metadata,
        time,
    )
}

/// Renames or otherwise updates a node's metadata: a new record with `metadata`, whose revision
/// must exceed the current one. For a folder, `metadata` must be sealed under its current
/// generation's key, which the record then names.
///
/// # Errors
/// [`Error::InvalidArgument`] if the revision does not increase; as [`NodeRecord::sign`].
pub fn update_metadata(
    author: &SigningKey,
    current: &NodeRecord,
    metadata: SealedMetadata,
    time: u64,
) -> Result<(NodeRecord, SignedNode)> {
    if metadata.revision <= current.metadata_revision {
        return Err(Error::InvalidArgument("metadata revision must increase"));
    }
    let mut record = current.clone();
    record.metadata_revision = metadata.revision;
    record.metadata_generation = current.key_generation;
    record.sealed_metadata = ByteBuf::from(metadata.sealed);
    record.author = Bytes(author.verifying_key().to_bytes());
    record.time = time;
    let signed = record.sign(author)?;
    Ok((record, signed))
}

/// Replaces a file's content reference: a new file key sealed under the node key for a content
/// revision that must exceed the current one.
///
/// # Errors
/// [`Error::InvalidArgument`] for a folder or a non-increasing revision; as [`NodeRecord::sign`].
pub fn update_content(
    author: &SigningKey,
    current: &NodeRecord,
    node_key: &SecretKey,
    content: &FileContent,
    time: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(NodeRecord, SignedNode)> {
    let old = current
        .file
        .as_ref()
        .ok_or(Error::InvalidArgument("not a file"))?;
    if content.content_revision <= old.content_revision {
        return Err(Error::InvalidArgument("content revision must increase"));
    }
    let sealed_file_key = seal_file_key(
        node_key,
        current.node_id,
        content.content_revision,
        &content.file_key,
        rng,
    );
    let mut record = current.clone();
    record.file = Some(FileRef {
        content_revision: content.content_revision,
        ciphertext_length: content.ciphertext_length,
        sealed_file_key: ByteBuf::from(sealed_file_key),
    });
    record.author = Bytes(author.verifying_key().to_bytes());
    record.time = time;
    let signed = record.sign(author)?;
    Ok((record, signed))
}

/// Moves a node under `new_parent`: a new record whose node key is re-sealed under the new
/// parent's current key. Everything else is unchanged.
///
/// # Errors
/// [`Error::InvalidArgument`] when moving the root or a node under itself; as
/// [`NodeRecord::sign`].
pub fn move_node(
    author: &SigningKey,
    current: &NodeRecord,
    node_key: &SecretKey,
    new_parent: &FolderKey,
    time: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(NodeRecord, SignedNode)> {
    if current.parent_id.is_none() {
        return Err(Error::InvalidArgument("the root cannot be moved"));
    }
    if new_parent.folder_id == current.node_id {
        return Err(Error::InvalidArgument("a node cannot be its own parent"));
    }
    let mut record = current.clone();
    record.parent_id = Some(new_parent.folder_id);
    record.parent_generation = new_parent.generation;
    record.sealed_node_key = Some(ByteBuf::from(seal_node_key(
        new_parent,
        current.node_id,
        node_key,
        rng,
    )));
    record.author = Bytes(author.verifying_key().to_bytes());
    record.time = time;
    let signed = record.sign(author)?;
    Ok((record, signed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng as _;

    struct Tree {
        owner: SigningKey,
        root_key: SecretKey,
        records: Vec<(NodeRecord, Vec<u8>)>,
        keys: Vec<SecretKey>,
        file_keys: Vec<Option<SecretKey>>,
    }

    fn meta(rng: &mut impl CryptoRngCore) -> SealedMetadata {
        let mut b = [0u8; 40];
        rng.fill_bytes(&mut b);
        SealedMetadata {
            revision: 1,
            sealed: b.to_vec(),
        }
    }

    /// root -> a (folder) -> b (folder) -> f2 (file); root -> f1 (file); a -> f3 (file)
    fn tree(seed: u8) -> Tree {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
        let owner = SigningKey::generate(&mut rng);
        let root = NewNode::generate(&mut rng);
        let m = meta(&mut rng);
        let (r, s) = create_root(&owner, &root, m, 100).expect("root");
        let mut t = Tree {
            owner,
            root_key: root.node_key.clone(),
            records: vec![(r, encode(&s))],
            keys: vec![root.node_key],
            file_keys: vec![None],
        };
        // (parent index, is folder)
        for (parent, folder) in [
            (0usize, true),
            (1, true),
            (2, false),
            (0, false),
            (1, false),
        ] {
            let pk = t.records[parent].0.folder_key(t.keys[parent].clone());
            let node = NewNode::generate(&mut rng);
            let m = meta(&mut rng);
            let (r, s, fk) = if folder {
                let (r, s) = create_folder(&t.owner, &pk, &node, m, 101, &mut rng).expect("f");
                (r, s, None)
            } else {
                let c = FileContent {
                    file_key: SecretKey::generate(&mut rng),
                    content_revision: 1,
                    ciphertext_length: 1000,
                };
                let (r, s) = create_file(&t.owner, &pk, &node, m, &c, 102, &mut rng).expect("f");
                (r, s, Some(c.file_key))
            };
            t.records.push((r, encode(&s)));
            t.keys.push(node.node_key);
            t.file_keys.push(fk);
        }
        t
    }

    fn parent_index(t: &Tree, i: usize) -> Option<usize> {
        let pid = t.records[i].0.parent_id?;
        t.records.iter().position(|(r, _)| r.node_id == pid)
    }

    fn expectation(t: &Tree, i: usize) -> NodeExpectation {
        let r = &t.records[i].0;
        NodeExpectation {
            node_id: r.node_id,
            parent: parent_index(t, i)
                .map(|p| (t.records[p].0.node_id, t.records[p].0.key_generation)),
            key_generation: None,
        }
    }

    #[test]
    fn server_verifies_node_signature() {
        let t = tree(3);
        for (r, s) in &t.records {
            assert_eq!(verify_node_signature(s).as_ref(), Ok(r));
        }
        let (_, s) = &t.records[3];
        let mut outer: SignedNode = crate::encoding::decode(s).expect("outer");
        outer.signature.0[5] ^= 0x10;
        assert_eq!(
            verify_node_signature(&encode(&outer)),
            Err(Error::BadSignature)
        );
        // Another key named as author: the signature no longer verifies under it.
        let mut rec = t.records[3].0.clone();
        rec.author = Bytes(
            SigningKey::generate(&mut rand_chacha::ChaCha20Rng::from_seed([9; 32]))
                .verifying_key()
                .to_bytes(),
        );
        let forged = SignedNode {
            record: ByteBuf::from(encode(&rec)),
            signature: outer.signature,
        };
        assert!(verify_node_signature(&encode(&forged)).is_err());
        let mut trailing = s.clone();
        trailing.push(0);
        assert!(matches!(
            verify_node_signature(&trailing),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn open_every_node_from_the_root_key() {
        let t = tree(1);
        let authors = [t.owner.verifying_key()];
        let mut opened: Vec<SecretKey> = vec![t.root_key.clone()];
        for i in 0..t.records.len() {
            let rec = verify_node(&t.records[i].1, &expectation(&t, i), &authors).expect("verify");
            assert_eq!(rec, t.records[i].0);
            if let Some(p) = parent_index(&t, i) {
                let pk = t.records[p].0.folder_key(opened[p].clone());
                let k = rec.open_node_key(&t.records[p].0, &pk).expect("open");
                assert_eq!(k, t.keys[i]);
                opened.push(k);
            }
            if let Some(fk) = &t.file_keys[i] {
                assert_eq!(&rec.open_file_key(&opened[i]).expect("file key"), fk);
            }
        }
    }

    #[test]
    fn wrong_author_parent_generation_and_node_rejected() {
        let t = tree(2);
        let authors = [t.owner.verifying_key()];
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([9; 32]);
        let stranger = SigningKey::generate(&mut rng);
        let e = expectation(&t, 3);
        assert_eq!(
            verify_node(&t.records[3].1, &e, &[stranger.verifying_key()]).map(|_| ()),
            Err(Error::Binding("author not acceptable"))
        );
        // Moved by the server: found under another parent.
        let mut moved = e;
        moved.parent = Some((t.records[0].0.node_id, 0));
        assert_eq!(
            verify_node(&t.records[3].1, &moved, &authors).map(|_| ()),
            Err(Error::Binding("parent id"))
        );
        // Served as the root.
        let mut root = e;
        root.parent = None;
        assert!(verify_node(&t.records[3].1, &root, &authors).is_err());
        // Swapped: another node's record under this id.
        let mut other = e;
        other.node_id = t.records[4].0.node_id;
        assert_eq!(
            verify_node(&t.records[3].1, &other, &authors).map(|_| ()),
            Err(Error::Binding("node id"))
        );
        // Folder generation the client knows differs.
        let mut g = expectation(&t, 1);
        g.key_generation = Some(1);
        assert_eq!(
            verify_node(&t.records[1].1, &g, &authors).map(|_| ()),
            Err(Error::Binding("key generation"))
        );
    }

    #[test]
    fn swapped_node_keys_and_moved_records_do_not_open() {
        let t = tree(3);
        // Give node 4's sealed key to node 3's record (same parent? 3 is under 2, 4 under 0).
        let mut swapped = t.records[5].0.clone(); // f3 under a (index 1)
        swapped.sealed_node_key = t.records[2].0.sealed_node_key.clone(); // b's key, also under a
        let pk = t.records[1].0.folder_key(t.keys[1].clone());
        assert_eq!(
            swapped.open_node_key(&t.records[1].0, &pk),
            Err(Error::DecryptionFailed)
        );
        // A record rewritten to claim another parent does not open under that parent.
        let mut moved = t.records[3].0.clone(); // f2 under b
        moved.parent_id = Some(t.records[1].0.node_id);
        assert_eq!(
            moved.open_node_key(&t.records[1].0, &pk),
            Err(Error::DecryptionFailed)
        );
        // Claiming another parent generation fails too.
        let mut gen = t.records[5].0.clone();
        gen.parent_generation = 0;
        assert!(gen.open_node_key(&t.records[1].0, &pk).is_ok());
        let mut rotated = t.records[1].0.clone();
        rotated.key_generation = 1;
        assert!(gen.open_node_key(&rotated, &pk).is_err());
    }

    #[test]
    fn move_rename_and_content_update() {
        let t = tree(4);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
        let authors = [t.owner.verifying_key()];
        let root = t.records[0].0.folder_key(t.root_key.clone());
        let (moved, signed) =
            move_node(&t.owner, &t.records[3].0, &t.keys[3], &root, 200, &mut rng).expect("move");
        let e = NodeExpectation {
            node_id: moved.node_id,
            parent: Some((root.folder_id, 0)),
            key_generation: None,
        };
        let got = verify_node(&encode(&signed), &e, &authors).expect("verify");
        assert_eq!(
            got.open_node_key(&t.records[0].0, &root),
            Ok(t.keys[3].clone())
        );
        // The old record no longer verifies at the new place.
        assert!(verify_node(&t.records[3].1, &e, &authors).is_err());
        let (renamed, _) = update_metadata(
            &t.owner,
            &moved,
            SealedMetadata {
                revision: 2,
                sealed: vec![1, 2, 3],
            },
            201,
        )
        .expect("rename");
        assert_eq!(renamed.metadata_revision, 2);
        assert!(update_metadata(
            &t.owner,
            &renamed,
            SealedMetadata {
                revision: 2,
                sealed: vec![]
            },
            202
        )
        .is_err());
        let c = FileContent {
            file_key: SecretKey::generate(&mut rng),
            content_revision: 2,
            ciphertext_length: 5,
        };
        let (upd, _) =
            update_content(&t.owner, &renamed, &t.keys[3], &c, 203, &mut rng).expect("content");
        assert_eq!(upd.open_file_key(&t.keys[3]), Ok(c.file_key.clone()));
        assert!(update_content(&t.owner, &upd, &t.keys[3], &c, 204, &mut rng).is_err());
        assert!(move_node(&t.owner, &t.records[0].0, &t.root_key, &root, 1, &mut rng).is_err());
    }

    #[test]
    fn back_chain_walk() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([6; 32]);
        let t = tree(6);
        let mut rec = t.records[1].0.clone();
        let mut keys = vec![t.keys[1].clone()];
        for g in 1..=3u64 {
            let new = FolderKey {
                folder_id: rec.node_id,
                generation: g,
                key: SecretKey::generate(&mut rng),
            };
            let prev = FolderKey {
                folder_id: rec.node_id,
                generation: g - 1,
                key: keys[usize::try_from(g - 1).expect("small")].clone(),
            };
            rec.back_chain.push(ByteBuf::from(
                seal_back_chain(&new, &prev, &mut rng).expect("chain"),
            ));
            rec.key_generation = g;
            keys.push(new.key);
        }
        rec.check_structure().expect("structure");
        let cur = rec.folder_key(keys[3].clone());
        for g in 0..=3u64 {
            assert_eq!(
                rec.folder_key_at(&cur, g),
                Ok(keys[usize::try_from(g).expect("small")].clone())
            );
        }
        assert!(rec.folder_key_at(&cur, 4).is_err());
        // A child sealed under generation 0 still opens through the chain.
        let child = &t.records[5].0;
        assert_eq!(child.open_node_key(&rec, &cur), Ok(t.keys[5].clone()));
        // A tampered chain entry breaks the walk.
        let mut bad = rec.clone();
        let mut e = bad.back_chain[1].to_vec();
        e[40] ^= 1;
        bad.back_chain[1] = ByteBuf::from(e);
        assert_eq!(bad.folder_key_at(&cur, 0), Err(Error::DecryptionFailed));
        assert_eq!(bad.folder_key_at(&cur, 2), Ok(keys[2].clone()));
        // Swapped chain entries fail.
        let mut sw = rec.clone();
        sw.back_chain.swap(0, 1);
        assert_eq!(sw.folder_key_at(&cur, 1), Err(Error::DecryptionFailed));
    }

    #[test]
    fn structure_rules() {
        let t = tree(7);
        let ok = |r: &NodeRecord| r.check_structure().is_ok();
        let file = t.records[3].0.clone();
        let folder = t.records[1].0.clone();
        assert!(ok(&file) && ok(&folder) && ok(&t.records[0].0));
        let mut r = file.clone();
        r.kind = KIND_FOLDER;
        assert!(!ok(&r));
        let mut r = folder.clone();
        r.kind = KIND_FILE;
        assert!(!ok(&r));
        let mut r = folder.clone();
        r.kind = 2;
        assert!(!ok(&r));
        let mut r = folder.clone();
        r.key_generation = 1;
        assert!(!ok(&r));
        let mut r = folder.clone();
        r.sealed_node_key = None;
        assert!(!ok(&r));
        let mut r = folder.clone();
        r.parent_id = Some(r.node_id);
        assert!(!ok(&r));
        let mut r = t.records[0].0.clone();
        r.parent_generation = 1;
        assert!(!ok(&r));
        let mut r = file.clone();
        r.metadata_generation = 1;
        assert!(!ok(&r));
        let mut r = folder;
        r.metadata_generation = 1;
        assert!(!ok(&r));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_single_byte_change_is_rejected(idx in any::<prop::sample::Index>(), delta in 1u8..=255) {
            let t = tree(8);
            let authors = [t.owner.verifying_key()];
            let (_, bytes) = &t.records[3];
            let mut bad = bytes.clone();
            let i = idx.index(bad.len());
            bad[i] = bad[i].wrapping_add(delta);
            prop_assert!(verify_node(&bad, &expectation(&t, 3), &authors).is_err());
        }

        #[test]
        fn trailing_and_truncated_rejected(cut in 1usize..50, extra in any::<u8>()) {
            let t = tree(8);
            let authors = [t.owner.verifying_key()];
            let (_, bytes) = &t.records[3];
            let mut long = bytes.clone();
            long.push(extra);
            prop_assert!(verify_node(&long, &expectation(&t, 3), &authors).is_err());
            let short = &bytes[..bytes.len() - cut];
            prop_assert!(verify_node(short, &expectation(&t, 3), &authors).is_err());
        }
    }
}
