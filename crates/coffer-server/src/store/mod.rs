//! Storage traits and backends.
//!
//! The server keeps two kinds of state, each behind a trait so that backends can be swapped
//! (spec §11; the embedded default is SQLite plus a local directory, a later release adds
//! PostgreSQL and S3):
//!
//! - [`MetadataStore`]: accounts, OPAQUE password files, sessions, handshakes, identity chains,
//!   nodes, uploads, shares, grants, links, link access tokens and drops. Every method is one
//!   *domain operation* and is atomic on its own: it runs in one transaction, and either every
//!   effect it documents happens or none does. The store never parses a record: callers pass the
//!   signed bytes together with the few fields the server must read (§11.15), already checked.
//! - [`BlobStore`]: ciphertext. Upload parts, assembled content blobs, drops. Blob keys are opaque
//!   strings chosen by the metadata store ([`Upload::blob_key`]); no file path leaks out.
//!
//! Times are passed in (`now`, seconds since the Unix epoch) wherever expiry matters, so tests
//! control them. Backends: [`sqlite`] + [`local`] (embedded), [`memory`] (both traits, in memory).
//! [`testsuite`] holds the behaviour every backend must pass.
//!
//! # Finalizing an upload across both stores
//!
//! 1. [`BlobStore::assemble`] turns the parts into the blob under [`Upload::blob_key`]
//!    (atomically; the parts are kept);
//! 2. [`MetadataStore::finalize_upload`] (or [`MetadataStore::finalize_drop`]) checks every
//!    precondition and makes record and blob visible together, in one transaction;
//! 3. on success the caller deletes the parts ([`BlobStore::delete_parts`]) and the replaced
//!    blob ([`Finalized::replaced_blob`]); on failure it deletes the assembled blob, and the
//!    client may retry with the parts still in place.
//!
//! A crash between the steps leaves either parts of a live upload (retried or lapsing) or a blob
//! no metadata references; [`MetadataStore::blob_key_in_use`] tells garbage collection which.

use std::io;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub use coffer_core::ids::{AccountId, LinkId, NodeId, ShareId, UploadId};

pub mod local;
pub mod memory;
pub mod sqlite;
pub mod testsuite;

/// A session's public identifier (§11.2.1), by which it is listed and revoked.
pub type SessionId = [u8; 16];
/// A login, re-authentication or registration handshake identifier.
pub type HandshakeId = [u8; 16];
/// A SHA-256 digest (token hashes, verifier hashes, part digests).
pub type Digest = [u8; 32];

/// The finest granularity with which a backend must record a session's last use.
pub const LAST_USED_GRANULARITY_SECS: u64 = 60;

/// A boxed error from a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of both stores. Each variant maps to one problem type of §11.3.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The resource does not exist (or is no longer live).
    #[error("not found")]
    NotFound,
    /// An expected revision or generation is not the current one (`409 revision-mismatch`).
    #[error("revision mismatch (current {current})")]
    RevisionMismatch {
        /// The current revision or generation.
        current: u64,
    },
    /// A client-chosen identifier is already in use (`409 already-exists`).
    #[error("already exists")]
    AlreadyExists,
    /// The username is registered, reserved or retained (`409 username-taken`).
    #[error("username taken")]
    UsernameTaken,
    /// Finalize while parts are missing or their lengths do not add up (`409 upload-incomplete`).
    #[error("upload incomplete")]
    UploadIncomplete,
    /// The owner's byte quota would be exceeded (`507 quota-exceeded`).
    #[error("quota exceeded")]
    QuotaExceeded,
    /// A count limit (nodes, unfinished uploads, links, drops) would be exceeded (`507`).
    #[error("count limit reached")]
    LimitReached,
    /// A caller passed arguments that violate the operation's contract (a server bug, not a
    /// client's mistake: the HTTP layer validates first).
    #[error("invalid store request: {0}")]
    Invalid(&'static str),
    /// The backend failed; nothing was changed.
    #[error("storage backend failure: {0}")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl Into<BoxError>) -> Self {
        StoreError::Backend(e.into())
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

// ---- record types -------------------------------------------------------------------------

/// A node's kind, as its `SignedNode` states it (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A folder.
    Folder,
    /// A file.
    File,
}

/// A share member's permission (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read the subtree.
    Read,
    /// Read and write below the share root.
    Write,
}

/// A link's kind (§11.11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// Read one file.
    File,
    /// Read a folder's subtree.
    Folder,
    /// Upload drops for the owner.
    Drop,
}

/// A node record to store: the signed bytes and the fields the server reads (§11.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeWrite {
    /// The node id.
    pub node_id: NodeId,
    /// The parent (none for a root).
    pub parent_id: Option<NodeId>,
    /// The owner: the account whose tree the node is in.
    pub owner: AccountId,
    /// File or folder.
    pub kind: NodeKind,
    /// The record's revision.
    pub revision: u64,
    /// The share id the record carries, if any.
    pub share_id: Option<ShareId>,
    /// The exact `SignedNode` bytes.
    pub record: Vec<u8>,
}

/// A stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The record and its fields.
    pub node: NodeWrite,
    /// The content revision (0: no content).
    pub content_revision: u64,
    /// The ciphertext length of the content (0: no content).
    pub content_length: u64,
    /// The content blob, if the node has content.
    pub blob_key: Option<String>,
}

/// A node update guarded by the revision the caller expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUpdate {
    /// The revision the stored record must have.
    pub expected_revision: u64,
    /// The new record (content fields are kept: content changes only through finalize).
    pub node: NodeWrite,
}

/// What a subtree deletion removed; the caller deletes the listed blobs and upload parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Number of nodes deleted.
    pub nodes: u64,
    /// Content and drop blobs no longer referenced.
    pub blob_keys: Vec<String>,
    /// Unfinished uploads deleted (their parts, and their blob key, are to be deleted).
    pub uploads: Vec<Upload>,
    /// Links deleted.
    pub links: Vec<LinkId>,
    /// Shares deleted.
    pub shares: Vec<ShareId>,
    /// Sessions ended.
    pub sessions: u64,
}

impl Removed {
    /// Appends another removal summary.
    pub fn extend(&mut self, other: Removed) {
        self.nodes += other.nodes;
        self.blob_keys.extend(other.blob_keys);
        self.uploads.extend(other.uploads);
        self.links.extend(other.links);
        self.shares.extend(other.shares);
        self.sessions += other.sessions;
    }
}

/// A new account (§11.6.2), created atomically with its identity generation 0 and root node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The account id reserved at registration start.
    pub account_id: AccountId,
    /// The username (already validated, §11.6.1).
    pub username: String,
    /// The OPAQUE password file (serialised `ServerRegistration`).
    pub password_file: Vec<u8>,
    /// The account's key material: the §6.4 `KeyBundle` bytes (the wrapped master key and the
    /// sealed account secrets, with their generations).
    pub key_bundle: Vec<u8>,
    /// The `SignedIdentity` of generation 0.
    pub identity: Vec<u8>,
    /// The root folder (no parent, owned by the account).
    pub root: NodeWrite,
    /// Creation time.
    pub created_at: u64,
}

impl NewAccount {
    /// Checks that the root is a parentless folder owned by the account.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] otherwise.
    pub fn check_root(&self) -> StoreResult<()> {
        if self.root.owner != self.account_id
            || self.root.parent_id.is_some()
            || self.root.kind != NodeKind::Folder
        {
            return Err(StoreError::Invalid(
                "the root must be a parentless folder of the account",
            ));
        }
        Ok(())
    }

    /// The stored account this creates: revision 0, identity generation 0.
    #[must_use]
    pub fn to_account(&self) -> Account {
        Account {
            account_id: self.account_id,
            username: self.username.clone(),
            revision: 0,
            password_file: self.password_file.clone(),
            key_bundle: self.key_bundle.clone(),
            identity_generation: 0,
            root_node_id: self.root.node_id,
            created_at: self.created_at,
        }
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id.
    pub account_id: AccountId,
    /// The username.
    pub username: String,
    /// `account-revision` (§11.4.3).
    pub revision: u64,
    /// The OPAQUE password file.
    pub password_file: Vec<u8>,
    /// The §6.4 `KeyBundle`.
    pub key_bundle: Vec<u8>,
    /// The last identity generation.
    pub identity_generation: u64,
    /// The root folder.
    pub root_node_id: NodeId,
    /// Creation time.
    pub created_at: u64,
}

/// Password change (§11.6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// The account.
    pub account_id: AccountId,
    /// The calling session, which stays live.
    pub keep_session: SessionId,
    /// The account revision the client expects.
    pub expected_revision: u64,
    /// The new OPAQUE password file.
    pub password_file: Vec<u8>,
    /// The new §6.4 `KeyBundle`.
    pub key_bundle: Vec<u8>,
}

/// A share re-keyed by compromise recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRekey {
    /// The new share record (same share id and root).
    pub share: ShareWrite,
    /// Grants to add.
    pub grants: Vec<GrantWrite>,
}

/// Compromise recovery (§11.6.8), applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The account.
    pub account_id: AccountId,
    /// The calling session, which stays live.
    pub keep_session: SessionId,
    /// The account revision the client expects.
    pub expected_revision: u64,
    /// The new OPAQUE password file.
    pub password_file: Vec<u8>,
    /// The new §6.4 `KeyBundle`.
    pub key_bundle: Vec<u8>,
    /// The identity generation the chain must end at now.
    pub expected_generation: u64,
    /// The next `SignedIdentity` (generation `expected_generation + 1`).
    pub identity: Vec<u8>,
    /// Re-keyed node records.
    pub nodes: Vec<NodeUpdate>,
    /// Re-keyed shares.
    pub shares: Vec<ShareRekey>,
    /// Links replaced: (old link id, replacement). Every other link of the account is revoked.
    pub links: Vec<(LinkId, LinkWrite)>,
}

/// The result of a password change or recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdated {
    /// The new account revision.
    pub revision: u64,
    /// The identity generation.
    pub identity_generation: u64,
    /// Sessions ended.
    pub sessions_revoked: u64,
    /// What else was removed (recovery: unfinished uploads, revoked links).
    pub removed: Removed,
}

/// An identity chain (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityChain {
    /// The account.
    pub account_id: AccountId,
    /// Every `SignedIdentity`, generation 0 first.
    pub generations: Vec<Vec<u8>>,
    /// Whether the account was deleted (the chain is kept, §11.6.9).
    pub deleted: bool,
}

/// A new session (§11.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The public session id.
    pub session_id: SessionId,
    /// The account.
    pub account_id: AccountId,
    /// SHA-256 of the token.
    pub token_hash: Digest,
    /// The client's label.
    pub label: String,
    /// Login time.
    pub created_at: u64,
    /// The absolute expiry (login + `SESSION_MAX_TTL_SECS`).
    pub expires_at: u64,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The public session id.
    pub session_id: SessionId,
    /// The account.
    pub account_id: AccountId,
    /// The client's label.
    pub label: String,
    /// Login time.
    pub created_at: u64,
    /// Last authenticated request.
    pub last_used_at: u64,
    /// The absolute expiry.
    pub expires_at: u64,
}

/// What a handshake is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// A registration reservation (§11.6.2): `username` and `account_id` are set.
    Registration,
    /// A login (§11.6.3): `username` set, `account_id` set unless the user is unknown.
    Login,
    /// A re-authentication with its purpose (0, 1, 2; §11.6.6): `account_id`, `session_id` set.
    Reauth(u8),
}

/// A short-lived server-side handshake state (§11.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The handshake id.
    pub id: HandshakeId,
    /// What it is for.
    pub kind: HandshakeKind,
    /// The username it concerns.
    pub username: Option<String>,
    /// The account it concerns.
    pub account_id: Option<AccountId>,
    /// The session it is bound to.
    pub session_id: Option<SessionId>,
    /// Opaque state (serialised OPAQUE server state).
    pub state: Vec<u8>,
    /// Expiry.
    pub expires_at: u64,
}

/// What an upload fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadTarget {
    /// Content of a node (new or existing) under a parent.
    Node {
        /// The node.
        node_id: NodeId,
        /// Its parent.
        parent_id: NodeId,
        /// The content revision (≥ 1).
        content_revision: u64,
    },
    /// An anonymous drop through a drop link.
    Drop {
        /// The link.
        link_id: LinkId,
        /// The `DropEnvelope` (§10).
        envelope: Vec<u8>,
    },
}

/// A new upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// The upload id.
    pub upload_id: UploadId,
    /// The creating account (none for a drop).
    pub creator: Option<AccountId>,
    /// The account whose quota is charged.
    pub owner: AccountId,
    /// What it fills.
    pub target: UploadTarget,
    /// Exact ciphertext length.
    pub total_length: u64,
    /// Part size (§11.9.1).
    pub part_size: u64,
    /// Creation time.
    pub created_at: u64,
    /// Lapse time (refreshed on part writes, never beyond `max_expires_at`).
    pub expires_at: u64,
    /// Latest possible lapse time.
    pub max_expires_at: u64,
}

impl NewUpload {
    /// The number of parts of the upload's shape.
    #[must_use]
    pub fn part_count(&self) -> u64 {
        if self.part_size == 0 {
            0
        } else {
            self.total_length.div_ceil(self.part_size)
        }
    }

    /// The required length of part `index` (§11.9.1), or `None` past the last part.
    #[must_use]
    pub fn part_length(&self, index: u64) -> Option<u64> {
        part_length(self.total_length, self.part_size, index)
    }
}

/// A stored, unfinished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The upload as created (with its current `expires_at`).
    pub upload: NewUpload,
    /// The blob key its content will have.
    pub blob_key: String,
    /// Indexes and lengths of the parts recorded present, ascending.
    pub parts: Vec<(u64, u64)>,
}

impl Upload {
    /// Whether this upload is the live one a repeated create of `new` resumes (§11.4.4): same
    /// creator, target and shape, not expired at `now`.
    #[must_use]
    pub fn resumed_by(&self, new: &NewUpload, now: u64) -> bool {
        self.upload.expires_at > now
            && self.upload.creator == new.creator
            && self.upload.target == new.target
            && self.upload.total_length == new.total_length
            && self.upload.part_size == new.part_size
    }

    /// The number of parts of the upload's shape.
    #[must_use]
    pub fn part_count(&self) -> u64 {
        self.upload.part_count()
    }

    /// The required length of part `index` (§11.9.1), or `None` past the last part.
    #[must_use]
    pub fn part_length(&self, index: u64) -> Option<u64> {
        self.upload.part_length(index)
    }

    /// Whether every part is present with its required length.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        let count = self.part_count();
        self.parts.len() as u64 == count
            && self
                .parts
                .iter()
                .enumerate()
                .all(|(i, &(idx, len))| idx == i as u64 && self.part_length(idx) == Some(len))
    }
}

/// The required length of part `index` of an upload of `total` bytes in parts of `part_size`.
#[must_use]
pub fn part_length(total: u64, part_size: u64, index: u64) -> Option<u64> {
    if part_size == 0 {
        return None;
    }
    let start = index.checked_mul(part_size)?;
    if start >= total {
        return None;
    }
    Some((total - start).min(part_size))
}

/// Limits checked by [`MetadataStore::create_upload`] in the same transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadLimits {
    /// The owner's byte quota (content, reservations of live uploads, finished drops).
    pub quota_bytes: Option<u64>,
    /// At most this many unfinished uploads by the creator (§11.9.2: 100).
    pub max_account_uploads: Option<u64>,
    /// At most this many unfinished drops per link (§11.11.6: 1000).
    pub max_link_uploads: Option<u64>,
    /// At most this many finished drops per link (§11.11.6: 10 000).
    pub max_link_drops: Option<u64>,
}

/// Outcome of [`MetadataStore::create_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCreated {
    /// A new upload.
    Created(Upload),
    /// A live upload of the same creator, node, parent, content revision and shape existed
    /// (§11.9.2 retry): returned unchanged.
    Existing(Upload),
}

/// Finalize of a node upload (§11.9.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizeNode {
    /// `None`: the node must not exist (create); else the stored revision (update).
    pub expected_revision: Option<u64>,
    /// The new record (node id and parent must be the upload's).
    pub node: NodeWrite,
    /// The owner's byte quota, re-checked.
    pub quota_bytes: Option<u64>,
}

/// Result of a node finalize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// The node as now stored.
    pub node: Node,
    /// Whether the node was created (else updated).
    pub created: bool,
    /// The previous content blob, to be deleted once no download uses it.
    pub replaced_blob: Option<String>,
}

/// A share record to store (§8) with the fields the server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareWrite {
    /// The share id.
    pub share_id: ShareId,
    /// The shared folder.
    pub root_node_id: NodeId,
    /// The owner.
    pub owner: AccountId,
    /// The key generation.
    pub generation: u64,
    /// The members the record lists, with their permissions.
    pub members: Vec<(AccountId, Permission)>,
    /// The exact `SignedShare` bytes.
    pub record: Vec<u8>,
}

/// A stored share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The current record.
    pub share: ShareWrite,
    /// `share-revision` (§11.4.3).
    pub revision: u64,
    /// Members the record lists who left or were deleted (§11.10).
    pub departed: Vec<AccountId>,
}

impl Share {
    /// The departed members once `next` replaces the record: those `next` still lists, except
    /// `leaving` (removed by a rotation, or re-added by a member addition).
    #[must_use]
    pub fn departed_after(&self, next: &ShareWrite, leaving: &[AccountId]) -> Vec<AccountId> {
        self.departed
            .iter()
            .filter(|d| next.members.iter().any(|(m, _)| m == *d) && !leaving.contains(d))
            .copied()
            .collect()
    }

    /// The permission of a current member (listed and not departed).
    #[must_use]
    pub fn permission_of(&self, account: &AccountId) -> Option<Permission> {
        if self.departed.contains(account) {
            return None;
        }
        self.share
            .members
            .iter()
            .find(|(a, _)| a == account)
            .map(|&(_, p)| p)
    }
}

/// A grant to store (§8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantWrite {
    /// The share.
    pub share_id: ShareId,
    /// The member.
    pub member: AccountId,
    /// The generation.
    pub generation: u64,
    /// The exact `Grant` bytes.
    pub grant: Vec<u8>,
}

/// Member removal with its rotation bundle (§11.10), applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRemoval {
    /// The share.
    pub share_id: ShareId,
    /// The share revision the client expects.
    pub expected_revision: u64,
    /// Members removed (the named one and departed ones rotated out).
    pub removed: Vec<AccountId>,
    /// The next record (generation `current + 1`).
    pub share: ShareWrite,
    /// Grants of the new generation.
    pub grants: Vec<GrantWrite>,
    /// Re-keyed node records.
    pub nodes: Vec<NodeUpdate>,
}

/// Result of a share change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareUpdated {
    /// The new share revision.
    pub revision: u64,
    /// The key generation.
    pub generation: u64,
    /// Unfinished uploads aborted (delete their parts).
    pub removed: Removed,
}

/// A link to store (§11.11.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkWrite {
    /// The link id.
    pub link_id: LinkId,
    /// The owner.
    pub owner: AccountId,
    /// The target node.
    pub node_id: NodeId,
    /// The kind.
    pub kind: LinkKind,
    /// The `LinkRecord` bytes.
    pub link_record: Vec<u8>,
    /// The `OwnerLinkEntry` bytes.
    pub owner_entry: Vec<u8>,
    /// SHA-256 of the password verifier, if the link has a password.
    pub verifier_hash: Option<Digest>,
    /// SHA-256 of the drop secret (drop links).
    pub drop_secret_hash: Option<Digest>,
    /// Expiry.
    pub expires_at: Option<u64>,
    /// Download limit.
    pub max_downloads: Option<u64>,
    /// Creation time.
    pub created_at: u64,
}

/// A stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link as created.
    pub link: LinkWrite,
    /// Downloads counted so far.
    pub downloads: u64,
}

/// The state of a link for an anonymous request (§11.11.3, §11.11.5), in the order of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAccess {
    /// No such link (or revoked).
    NotFound,
    /// Expired (`410 link-expired`).
    Expired,
    /// Download limit reached (`410 link-exhausted`).
    Exhausted,
    /// Live; for [`MetadataStore::consume_download`], the download was counted.
    Live(Box<Link>),
}

impl LinkAccess {
    /// The state of `link` (`None`: unknown or revoked) at `now`, in the order of checks:
    /// expiry before exhaustion.
    #[must_use]
    pub fn of(link: Option<Link>, now: u64) -> Self {
        match link {
            None => LinkAccess::NotFound,
            Some(l) if l.link.expires_at.is_some_and(|e| now >= e) => LinkAccess::Expired,
            Some(l) if l.link.max_downloads.is_some_and(|m| l.downloads >= m) => {
                LinkAccess::Exhausted
            }
            Some(l) => LinkAccess::Live(Box::new(l)),
        }
    }
}

/// A finished drop (§11.11.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropRecord {
    /// The drop id (the upload id).
    pub drop_id: UploadId,
    /// The link it came through.
    pub link_id: LinkId,
    /// The link's owner.
    pub owner: AccountId,
    /// Finalize time.
    pub created_at: u64,
    /// Ciphertext length.
    pub total_length: u64,
    /// The `DropEnvelope` bytes.
    pub envelope: Vec<u8>,
    /// The content blob.
    pub blob_key: String,
    /// The `LinkRecord` of the link the drop came through, kept when that link was revoked or
    /// rotated (its drop part opens the drop, §10.9.1, §11.11.2); `None` while the link lives
    /// (its current record is the one to use).
    pub link_record: Option<Vec<u8>>,
}

/// Expired state purged by [`MetadataStore::purge_expired`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Sessions.
    pub sessions: u64,
    /// Handshakes and reservations.
    pub handshakes: u64,
    /// Link access tokens.
    pub link_tokens: u64,
}

/// A secret of the server itself kept in the metadata store (not an account's): zeroized on drop,
/// redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecret(zeroize::Zeroizing<Vec<u8>>);

impl ServerSecret {
    /// Wraps secret bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        ServerSecret(zeroize::Zeroizing::new(bytes))
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

/// The metadata store. Every method is atomic on its own (one transaction).
///
/// Every method is also safe to drop part-way, as the server does when a client goes away: the
/// operation is then done or not done, and the store serves what follows as before (no
/// transaction or lock left behind, no stale cache). The test suite's
/// `dropped_operations_leave_the_store_usable` checks this.
///
/// Authorization is the caller's: the store checks only what it must check *inside* the
/// transaction to stay consistent (revisions, existence, completeness, quota, limits).
#[async_trait]
pub trait MetadataStore: Send + Sync {
    // ---- registration, handshakes --------------------------------------------------------

    /// Stores a handshake. A [`HandshakeKind::Registration`] handshake reserves its username and
    /// account id: [`StoreError::UsernameTaken`] if the username is registered, retained after
    /// deletion, or reserved by a live registration; [`StoreError::AlreadyExists`] if the id is
    /// in use.
    async fn put_handshake(&self, handshake: Handshake, now: u64) -> StoreResult<()>;

    /// Consumes a live handshake of the given kind (single use). `None` if unknown, expired,
    /// used or of another kind (it is then left untouched, except that an expired one is gone).
    async fn take_handshake(
        &self,
        id: HandshakeId,
        kind: HandshakeKind,
        now: u64,
    ) -> StoreResult<Option<Handshake>>;

    /// Creates an account with its identity generation 0 and root node, releasing its live
    /// registration reservation. [`StoreError::AlreadyExists`] if the account exists;
    /// [`StoreError::NotFound`] if there is no live reservation of this account id and username;
    /// [`StoreError::UsernameTaken`] if the username is in use.
    async fn create_account(&self, account: NewAccount, now: u64) -> StoreResult<Account>;

    // ---- accounts -------------------------------------------------------------------------

    /// A live account by id.
    async fn account(&self, account_id: AccountId) -> StoreResult<Option<Account>>;

    /// A live account by username.
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>>;

    /// Bytes charged to the account: content of its nodes, reservations of its live uploads,
    /// its finished drops.
    async fn storage_used(&self, account_id: AccountId, now: u64) -> StoreResult<u64>;

    /// Password change (§11.6.7): checks the revision, replaces the password file and wrapped
    /// master key, increments the revision, ends every other session and every handshake of the
    /// account.
    async fn change_password(&self, change: PasswordChange) -> StoreResult<AccountUpdated>;

    /// Compromise recovery (§11.6.8): checks revision and generation, replaces the password file
    /// and keys, appends the identity, applies re-keyed nodes (revisions checked) and shares,
    /// swaps replaced links, revokes every other link and every link token of the account, ends
    /// every other session, handshake and unfinished upload of the account. All or nothing.
    async fn recover_account(&self, recovery: Recovery) -> StoreResult<AccountUpdated>;

    /// Account deletion (§11.6.9): removes every row of the account (nodes, uploads, shares it
    /// owns with their grants, links with tokens and unfinished drops, finished drops, sessions,
    /// handshakes, its grants in other shares — recording it as departed there), retains the
    /// username (as a hash) and keeps the identity chain marked deleted. Returns what the caller
    /// must delete from the blob store.
    async fn delete_account(&self, account_id: AccountId) -> StoreResult<Removed>;

    // ---- sessions -------------------------------------------------------------------------

    /// Creates a session and returns its account as it stands when the session is created (in
    /// the same atomic step: a login answers with the account's key bundle without a second
    /// read). [`StoreError::NotFound`] if the account does not exist;
    /// [`StoreError::AlreadyExists`] on a duplicate id or token hash.
    async fn create_session(&self, session: NewSession) -> StoreResult<Account>;

    /// Looks a live session up by token hash and records `now` as its last use (a backend may
    /// skip the write while the recorded last use is less than [`LAST_USED_GRANULARITY_SECS`]
    /// old; §11.6.4 allows rounding). A session is live while `now < expires_at` and
    /// `now < last_used_at + idle_ttl`; a dead one is deleted.
    async fn authenticate_session(
        &self,
        token_hash: &Digest,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Option<Session>>;

    /// The account's live sessions, oldest first.
    async fn list_sessions(
        &self,
        account_id: AccountId,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Vec<Session>>;

    /// Ends one session of the account. `false` if it has no such session.
    async fn revoke_session(
        &self,
        account_id: AccountId,
        session_id: SessionId,
    ) -> StoreResult<bool>;

    /// Ends every session of the account except `keep`; returns how many.
    async fn revoke_other_sessions(
        &self,
        account_id: AccountId,
        keep: SessionId,
    ) -> StoreResult<u64>;

    /// Ends every session of the account; returns how many.
    async fn revoke_all_sessions(&self, account_id: AccountId) -> StoreResult<u64>;

    // ---- identities -----------------------------------------------------------------------

    /// The identity chain of an account (kept after deletion, marked so).
    async fn identity_chain(&self, account_id: AccountId) -> StoreResult<Option<IdentityChain>>;

    /// Appends generation `expected_generation + 1`. [`StoreError::RevisionMismatch`] with the
    /// current generation otherwise; [`StoreError::NotFound`] for an unknown or deleted account.
    async fn append_identity(
        &self,
        account_id: AccountId,
        expected_generation: u64,
        identity: Vec<u8>,
    ) -> StoreResult<IdentityChain>;

    // ---- nodes ----------------------------------------------------------------------------

    /// Creates a node without content. [`StoreError::AlreadyExists`] if the id is in use;
    /// [`StoreError::NotFound`] if the parent does not exist; [`StoreError::LimitReached`] if
    /// the owner already has `max_nodes` nodes.
    async fn create_node(&self, node: NodeWrite, max_nodes: Option<u64>) -> StoreResult<Node>;

    /// A node.
    async fn node(&self, node_id: NodeId) -> StoreResult<Option<Node>>;

    /// Children of a node in ascending node-id order, strictly after `after`, at most `limit`.
    async fn children(
        &self,
        parent_id: NodeId,
        after: Option<NodeId>,
        limit: u32,
    ) -> StoreResult<Vec<Node>>;

    /// The path from a node up to its root: the node first, the root last. Empty if unknown.
    async fn node_path(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>>;

    /// Every node id of the subtree rooted at `node_id` (itself included).
    async fn subtree(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>>;

    /// Number of nodes the account owns.
    async fn node_count(&self, owner: AccountId) -> StoreResult<u64>;

    /// Replaces a node's record if its revision is `expected_revision`
    /// ([`StoreError::RevisionMismatch`] otherwise). Content fields are kept.
    async fn update_node(&self, update: NodeUpdate) -> StoreResult<Node>;

    /// Deletes a node and its subtree (§11.8) if its revision is `expected_revision`: their
    /// content, unfinished uploads into them, links to them (with tokens and unfinished drops),
    /// shares rooted in them (with grants).
    async fn delete_subtree(&self, node_id: NodeId, expected_revision: u64)
        -> StoreResult<Removed>;

    // ---- uploads --------------------------------------------------------------------------

    /// Creates an upload, checking the limits in the same transaction.
    async fn create_upload(
        &self,
        upload: NewUpload,
        limits: UploadLimits,
        now: u64,
    ) -> StoreResult<UploadCreated>;

    /// A live upload (`now` before its lapse time), with the list of its parts present.
    async fn upload(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<Upload>>;

    /// A live upload as [`MetadataStore::upload`] returns it, without the list of its parts:
    /// what a part request needs. Its cost must not grow with the number of parts present (an
    /// upload has up to `MAX_PARTS`, and every part request reads it).
    async fn upload_head(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<NewUpload>>;

    /// Records part `index` as stored with `length` bytes and moves the lapse time to
    /// `min(expires_at, max_expires_at)`. [`StoreError::NotFound`] for an unknown or lapsed
    /// upload; [`StoreError::Invalid`] for an index or length outside the shape. Like
    /// [`MetadataStore::upload_head`], its cost must not grow with the number of parts present.
    async fn record_part(
        &self,
        upload_id: UploadId,
        index: u64,
        length: u64,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<()>;

    /// Finalizes a node upload (§11.9.5): every part present with its length
    /// ([`StoreError::UploadIncomplete`]); node absent ([`StoreError::AlreadyExists`]) or at
    /// `expected_revision` ([`StoreError::RevisionMismatch`]); parent present; quota. Then the
    /// record and the content become visible together and the upload is gone.
    async fn finalize_upload(
        &self,
        upload_id: UploadId,
        finalize: FinalizeNode,
        now: u64,
    ) -> StoreResult<Finalized>;

    /// Finalizes a drop upload into a finished drop (drop id = upload id).
    async fn finalize_drop(
        &self,
        upload_id: UploadId,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<DropRecord>;

    /// Deletes an unfinished upload (abort or lapse) and releases its reservation; returns it
    /// so that the caller deletes its parts (and its blob key, if assembled).
    async fn delete_upload(&self, upload_id: UploadId) -> StoreResult<Option<Upload>>;

    /// Uploads whose lapse time is at or before `now`, at most `limit`.
    async fn expired_uploads(&self, now: u64, limit: u32) -> StoreResult<Vec<Upload>>;

    /// Whether any node, drop or unfinished upload references the blob key (for orphan GC).
    async fn blob_key_in_use(&self, blob_key: &str) -> StoreResult<bool>;

    /// Whether an upload row (live or lapsed) exists (for orphan part GC).
    async fn upload_exists(&self, upload_id: UploadId) -> StoreResult<bool>;

    // ---- shares ---------------------------------------------------------------------------

    /// Creates a share (revision 0) with its grants and node records.
    /// [`StoreError::AlreadyExists`] if the share id is used or the root already has a share.
    async fn create_share(
        &self,
        share: ShareWrite,
        grants: Vec<GrantWrite>,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<ShareUpdated>;

    /// A share.
    async fn share(&self, share_id: ShareId) -> StoreResult<Option<Share>>;

    /// The share rooted at a node, if any.
    async fn share_by_root(&self, node_id: NodeId) -> StoreResult<Option<Share>>;

    /// Shares the account owns.
    async fn shares_owned(&self, owner: AccountId) -> StoreResult<Vec<Share>>;

    /// Shares the account is a current member of.
    async fn shares_member_of(&self, member: AccountId) -> StoreResult<Vec<Share>>;

    /// Adds a member or changes a permission (§11.10): checks the revision, replaces the record,
    /// stores the grant, increments the revision.
    async fn add_member(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        share: ShareWrite,
        grant: GrantWrite,
    ) -> StoreResult<ShareUpdated>;

    /// Removes members with a rotation bundle (§11.10), all or nothing: checks the revision,
    /// replaces the record, stores the new grants, applies the node records, deletes every grant
    /// of the removed members and their unfinished uploads into the subtree, clears them from
    /// `departed`, increments the revision.
    async fn remove_members(&self, removal: MemberRemoval) -> StoreResult<ShareUpdated>;

    /// A member leaves (§11.10): deletes its grants and its unfinished uploads into the subtree,
    /// adds it to `departed`, increments the revision. [`StoreError::NotFound`] if not a member.
    async fn leave_share(&self, share_id: ShareId, member: AccountId) -> StoreResult<ShareUpdated>;

    /// Deletes a share (§11.10): checks the revision, applies the node records, deletes every
    /// grant and the members' unfinished uploads into the subtree.
    async fn delete_share(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<Removed>;

    /// The member's grants of a share, oldest generation first.
    async fn grants(&self, share_id: ShareId, member: AccountId) -> StoreResult<Vec<GrantWrite>>;

    // ---- links ----------------------------------------------------------------------------

    /// Creates a link with `downloads` = 0. [`StoreError::AlreadyExists`] if the id is used;
    /// [`StoreError::LimitReached`] if the owner already has `max_links` links (expired and
    /// exhausted ones count until revoked: stricter than §11.11.2's "live links").
    async fn create_link(&self, link: LinkWrite, max_links: Option<u64>) -> StoreResult<Link>;

    /// A link, whatever its state.
    async fn link(&self, link_id: LinkId) -> StoreResult<Option<Link>>;

    /// The link's state at `now` (not counted).
    async fn link_access(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess>;

    /// Decides and counts a download atomically (§11.11.5): never more than `max-downloads`
    /// counted, whatever the concurrency.
    async fn consume_download(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess>;

    /// The owner's links, oldest first.
    async fn links_of(&self, owner: AccountId) -> StoreResult<Vec<Link>>;

    /// Revokes the owner's link with its tokens and unfinished drops
    /// ([`StoreError::NotFound`] for another owner's or an unknown link).
    async fn revoke_link(&self, owner: AccountId, link_id: LinkId) -> StoreResult<Removed>;

    /// Re-seals the owner's link (§11.11.7): atomically replaces its `LinkRecord` by
    /// `link_record` and changes nothing else (id, owner entry, verifier hash, policy, download
    /// count, creation time, tokens and drops are kept). The caller has checked the record
    /// (`LinkRecord::is_reseal_of`). [`StoreError::NotFound`] for an unknown link or another
    /// owner's. Returns the link as stored after the change.
    async fn reseal_link(
        &self,
        owner: AccountId,
        link_id: LinkId,
        link_record: Vec<u8>,
    ) -> StoreResult<Link>;

    /// Rotates a link atomically: the old one is revoked as by [`Self::revoke_link`] and the new
    /// one is live with `downloads` = 0. [`StoreError::AlreadyExists`] if the new id is used.
    async fn rotate_link(
        &self,
        owner: AccountId,
        old: LinkId,
        new: LinkWrite,
    ) -> StoreResult<(Link, Removed)>;

    /// Stores a link access token hash for a link.
    async fn create_link_token(
        &self,
        token_hash: Digest,
        link_id: LinkId,
        expires_at: u64,
    ) -> StoreResult<()>;

    /// Whether a live token of this hash exists for this link.
    async fn link_token_valid(
        &self,
        token_hash: &Digest,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<bool>;

    // ---- drops ----------------------------------------------------------------------------

    /// The owner's finished drops, oldest first.
    async fn drops_of(&self, owner: AccountId) -> StoreResult<Vec<DropRecord>>;

    /// A finished drop.
    async fn drop_info(&self, drop_id: UploadId) -> StoreResult<Option<DropRecord>>;

    /// Deletes the owner's drop; returns its blob key ([`StoreError::NotFound`] otherwise).
    async fn delete_drop(&self, owner: AccountId, drop_id: UploadId) -> StoreResult<String>;

    // ---- maintenance ----------------------------------------------------------------------

    /// Deletes expired sessions, handshakes and link tokens.
    async fn purge_expired(&self, now: u64, idle_ttl: u64) -> StoreResult<Purged>;

    /// The server secret `name` (e.g. the pagination-cursor MAC key, §11.4.5), storing `fresh`
    /// first if there is none: every caller, concurrent or after a restart, gets the first one
    /// stored.
    async fn server_secret(&self, name: &str, fresh: ServerSecret) -> StoreResult<ServerSecret>;

    /// Whether the store is reachable (for `/healthz`).
    async fn health(&self) -> StoreResult<()>;
}

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A part as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartStored {
    /// Bytes stored.
    pub length: u64,
}

/// A blob being read.
pub struct BlobRead {
    /// The blob's whole length.
    pub length: u64,
    /// The requested range's bytes.
    pub stream: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// The blob store: ciphertext parts and blobs. Keys are opaque (`[a-z0-9-]`, 1–64 characters).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores part `index` of an upload from a stream, durably, replacing any earlier copy
    /// atomically (idempotent). At most `max_len` bytes are accepted
    /// ([`StoreError::Invalid`] beyond; nothing is then stored).
    async fn put_part(
        &self,
        upload_id: UploadId,
        index: u64,
        body: ByteStream,
        max_len: u64,
    ) -> StoreResult<PartStored>;

    /// The parts present: (index, length), ascending.
    async fn list_parts(&self, upload_id: UploadId) -> StoreResult<Vec<(u64, u64)>>;

    /// Concatenates parts `0..part_count` into the blob `key`, atomically (the blob appears
    /// complete or not at all) and durably; the parts are kept. Returns the blob's length.
    /// [`StoreError::UploadIncomplete`] if a part is missing.
    async fn assemble(&self, upload_id: UploadId, part_count: u64, key: &str) -> StoreResult<u64>;

    /// The length of a blob, or `None`.
    async fn blob_length(&self, key: &str) -> StoreResult<Option<u64>>;

    /// Reads a blob, or a range of it (`range.end` ≤ length, non-empty).
    /// [`StoreError::NotFound`] for a missing blob, [`StoreError::Invalid`] for a bad range.
    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobRead>;

    /// Deletes a blob; `false` if it did not exist.
    async fn delete_blob(&self, key: &str) -> StoreResult<bool>;

    /// Deletes every part of an upload.
    async fn delete_parts(&self, upload_id: UploadId) -> StoreResult<()>;

    /// Every blob key.
    async fn list_blobs(&self) -> StoreResult<Vec<String>>;

    /// Every upload with parts stored.
    async fn list_uploads(&self) -> StoreResult<Vec<UploadId>>;
}

/// Wraps bytes as a [`ByteStream`] (for tests and small bodies).
#[must_use]
pub fn bytes_stream(data: impl Into<Bytes>) -> ByteStream {
    let data: Bytes = data.into();
    Box::pin(futures_util::stream::once(async move {
        Ok::<_, io::Error>(data)
    }))
}

/// Checks a blob key's form (`[a-z0-9-]{1,64}`).
#[must_use]
pub fn valid_blob_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The blob key an upload's content gets: derived from the upload id, so that garbage
/// collection can tell an assembled-but-uncommitted blob of a live upload from an orphan.
#[must_use]
pub fn blob_key_for_upload(upload_id: &UploadId) -> String {
    format!("c-{}", hex::encode(upload_id.as_bytes()))
}

/// What [`collect_orphans`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orphans {
    /// Blobs no node, drop or unfinished upload references.
    pub blobs: u64,
    /// Part sets of uploads the metadata store no longer has.
    pub uploads: u64,
}

/// Deletes blobs and parts no metadata references: the debris of a crash between a metadata
/// change and the blob deletions it called for, or of a failed blob deletion.
///
/// Safe to run while the server serves requests: an upload's row exists before its first part
/// is written and until after its assembled blob is referenced by a node or drop (the blob key
/// is derived from the upload id, [`blob_key_for_upload`]), so nothing in flight is an orphan.
/// A part written concurrently with its upload's deletion may survive one pass; the next one
/// removes it.
///
/// # Errors
/// The first store error; what was deleted before it stays deleted.
pub async fn collect_orphans(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
) -> StoreResult<Orphans> {
    let mut out = Orphans::default();
    for upload_id in blobs.list_uploads().await? {
        if !meta.upload_exists(upload_id).await? {
            blobs.delete_parts(upload_id).await?;
            out.uploads += 1;
        }
    }
    for key in blobs.list_blobs().await? {
        if !meta.blob_key_in_use(&key).await? && blobs.delete_blob(&key).await? {
            out.blobs += 1;
        }
    }
    Ok(out)
}

/// `Ok` when the stored revision (or generation) is the one the caller expected, else
/// [`StoreError::RevisionMismatch`] carrying the current value: the optimistic-concurrency check
/// every backend applies before a mutation (spec §11.4.3).
pub(crate) fn expect_revision(current: u64, expected: u64) -> StoreResult<()> {
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::RevisionMismatch { current })
    }
}

/// The checks every backend makes before applying a rotated share record `next` over the stored
/// `current` one (§9.2.2, §9.4): the same share, root and owner, and the generation one above.
/// Applying it then deletes every grant of the share of a generation below `next.generation`.
pub(crate) fn check_rotation(current: &ShareWrite, next: &ShareWrite) -> StoreResult<()> {
    if next.share_id != current.share_id
        || next.root_node_id != current.root_node_id
        || next.owner != current.owner
    {
        return Err(StoreError::Invalid("record for another share"));
    }
    if current.generation.checked_add(1) != Some(next.generation) {
        return Err(StoreError::Invalid(
            "a rotation moves the share to the next generation",
        ));
    }
    Ok(())
}

/// The finalize quota check every backend makes (§11.9.5): the owner's usage `used`, less the
/// reservation of the upload (when it is charged to the same account) and the content the node
/// had (`old`), plus the new content, stays within `quota`.
pub(crate) fn check_finalize_quota(
    quota: Option<u64>,
    used: u64,
    upload: &Upload,
    owner: &AccountId,
    old: Option<&Node>,
) -> StoreResult<()> {
    let Some(q) = quota else {
        return Ok(());
    };
    let released = if &upload.upload.owner == owner {
        upload.upload.total_length
    } else {
        0
    };
    let old_len = old.map_or(0, |n| n.content_length);
    if used
        .saturating_sub(released)
        .saturating_sub(old_len)
        .saturating_add(upload.upload.total_length)
        > q
    {
        return Err(StoreError::QuotaExceeded);
    }
    Ok(())
}

/// Checks the same-share rules of a member addition (§11.10) against the stored `current`
/// share: the new record and the grant are for `share_id` and the record keeps the root.
pub(crate) fn check_member_add(
    current: &Share,
    share_id: ShareId,
    share: &ShareWrite,
    grant: &GrantWrite,
) -> StoreResult<()> {
    if share.share_id != share_id
        || grant.share_id != share_id
        || share.root_node_id != current.share.root_node_id
    {
        return Err(StoreError::Invalid("record or grant for another share"));
    }
    Ok(())
}

/// The first finalize checks every backend makes inside its transaction (§11.9.5): the upload
/// is a node upload for `f`'s node and parent, `f` is a file, and every part is present.
/// Returns the node id, parent id and content revision of the upload.
pub(crate) fn finalize_target(
    upload: &Upload,
    f: &FinalizeNode,
) -> StoreResult<(NodeId, NodeId, u64)> {
    let UploadTarget::Node {
        node_id,
        parent_id,
        content_revision,
    } = upload.upload.target
    else {
        return Err(StoreError::Invalid("not a node upload"));
    };
    if f.node.node_id != node_id
        || f.node.parent_id != Some(parent_id)
        || f.node.kind != NodeKind::File
    {
        return Err(StoreError::Invalid(
            "the record is not for the upload's node and parent",
        ));
    }
    if !upload.is_complete() {
        return Err(StoreError::UploadIncomplete);
    }
    Ok((node_id, parent_id, content_revision))
}

/// The finalize check against the stored node `old` (§11.4.3, §11.9.5): a new file needs no
/// expected revision and no existing node; a new content revision needs the expected record
/// revision and a content revision above the stored one.
pub(crate) fn check_finalize_over(
    old: Option<&Node>,
    expected_revision: Option<u64>,
    content_revision: u64,
) -> StoreResult<()> {
    match (old, expected_revision) {
        (Some(_), None) => Err(StoreError::AlreadyExists),
        (None, Some(_)) => Err(StoreError::NotFound),
        (Some(n), Some(r)) if n.node.revision != r || n.content_revision >= content_revision => {
            Err(StoreError::RevisionMismatch {
                current: n.node.revision,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(b: u8) -> AccountId {
        AccountId::from_bytes([b; 16])
    }

    fn share(generation: u64, members: &[u8]) -> ShareWrite {
        ShareWrite {
            share_id: ShareId::from_bytes([1; 16]),
            root_node_id: NodeId::from_bytes([2; 16]),
            owner: account(9),
            generation,
            members: members
                .iter()
                .map(|&b| (account(b), Permission::Read))
                .collect(),
            record: vec![generation as u8],
        }
    }

    #[test]
    fn link_access_checks_expiry_before_exhaustion() {
        let link = |expires_at, max_downloads, downloads| Link {
            link: LinkWrite {
                link_id: LinkId::from_bytes([3; 16]),
                owner: account(9),
                node_id: NodeId::from_bytes([2; 16]),
                kind: LinkKind::File,
                link_record: vec![],
                owner_entry: vec![],
                verifier_hash: None,
                drop_secret_hash: None,
                expires_at,
                max_downloads,
                created_at: 0,
            },
            downloads,
        };
        assert_eq!(LinkAccess::of(None, 10), LinkAccess::NotFound);
        assert_eq!(
            LinkAccess::of(Some(link(Some(10), Some(1), 1)), 10),
            LinkAccess::Expired
        );
        assert_eq!(
            LinkAccess::of(Some(link(Some(11), Some(1), 1)), 10),
            LinkAccess::Exhausted
        );
        let live = link(Some(11), Some(2), 1);
        assert_eq!(
            LinkAccess::of(Some(live.clone()), 10),
            LinkAccess::Live(Box::new(live))
        );
    }

    #[test]
    fn departed_after_keeps_listed_departed_members_not_leaving() {
        let current = Share {
            share: share(0, &[1, 2, 3]),
            revision: 0,
            departed: vec![account(2), account(3)],
        };
        assert_eq!(
            current.departed_after(&share(1, &[1, 2, 3]), &[account(3)]),
            vec![account(2)]
        );
        assert_eq!(
            current.departed_after(&share(1, &[1, 3]), &[]),
            vec![account(3)]
        );
    }

    #[test]
    fn rotation_moves_to_the_next_generation_of_the_same_share() {
        let current = share(4, &[1, 2]);
        assert!(check_rotation(&current, &share(5, &[1])).is_ok());
        for bad in [share(4, &[1]), share(6, &[1])] {
            assert!(matches!(
                check_rotation(&current, &bad),
                Err(StoreError::Invalid(_))
            ));
        }
        let mut other = share(5, &[1]);
        other.root_node_id = NodeId::from_bytes([7; 16]);
        assert!(check_rotation(&current, &other).is_err());
        assert!(check_rotation(&share(u64::MAX, &[1]), &share(0, &[1])).is_err());
    }

    #[test]
    fn finalize_quota_releases_the_reservation_and_the_old_content() {
        let owner = account(9);
        let upload = Upload {
            upload: NewUpload {
                upload_id: UploadId::from_bytes([4; 16]),
                creator: Some(owner),
                owner,
                target: UploadTarget::Node {
                    node_id: NodeId::from_bytes([5; 16]),
                    parent_id: NodeId::from_bytes([2; 16]),
                    content_revision: 2,
                },
                total_length: 40,
                part_size: 40,
                created_at: 0,
                expires_at: 1,
                max_expires_at: 1,
            },
            blob_key: String::new(),
            parts: vec![],
        };
        let old = Node {
            node: NodeWrite {
                node_id: NodeId::from_bytes([5; 16]),
                parent_id: Some(NodeId::from_bytes([2; 16])),
                owner,
                kind: NodeKind::File,
                revision: 1,
                share_id: None,
                record: vec![],
            },
            content_revision: 1,
            content_length: 30,
            blob_key: None,
        };
        // Used 100 = 30 old content + 40 reservation + 30 else: the new content replaces both.
        assert!(check_finalize_quota(Some(70), 100, &upload, &owner, Some(&old)).is_ok());
        assert!(matches!(
            check_finalize_quota(Some(69), 100, &upload, &owner, Some(&old)),
            Err(StoreError::QuotaExceeded)
        ));
        // A reservation charged to another account is not released.
        assert!(check_finalize_quota(Some(70), 100, &upload, &account(8), Some(&old)).is_err());
        assert!(check_finalize_quota(None, u64::MAX, &upload, &owner, None).is_ok());
    }
}
