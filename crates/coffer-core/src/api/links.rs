//! Links and drops (spec §11.11).

use alloc::vec::Vec;

use super::token::{DropSecret, LinkAccessToken, LinkVerifier};
use super::{body, wire_enum, MAX_BULK_BODY, MAX_RECORD_BODY, MAX_SMALL_BODY};
use crate::encoding::{ByteBuf, Bytes};
use crate::error::DecodeError;
use crate::ids::{LinkId, NodeId, UploadId};

wire_enum! {
    /// What a link gives its holder (spec §11.11.1).
    pub enum LinkKind {
        /// Read one file.
        File = 0,
        /// Read a folder and everything below it.
        Folder = 1,
        /// Upload files for the owner, read nothing.
        Drop = 2,
    }
}

crate::cbor_struct! {
    /// A link's records and server-enforced parameters, as created or rotated.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkParams {
        /// The link id (§10: derived from the link secret).
        pub link_id: LinkId,
        /// The node the link points to (the drop target folder for a drop link).
        pub node_id: NodeId,
        /// What the link gives.
        pub kind: LinkKind,
        /// The `LinkRecord` (§10), served to link holders.
        pub link_record: ByteBuf,
        /// The `OwnerLinkEntry` (§10), served to the owner only.
        pub owner_entry: ByteBuf,
        /// `SHA-256(verifier)` of the link password verifier (§10), or null without a password.
        pub verifier_hash: Option<Bytes<32>>,
        /// `SHA-256(drop secret)` (§10); present iff kind is drop.
        pub drop_secret_hash: Option<Bytes<32>>,
        /// Expiry time, or null.
        pub expires_at: Option<u64>,
        /// Download limit (at least 1), or null; null for a drop link.
        pub max_downloads: Option<u64>,
    }
}

crate::cbor_struct! {
    /// One link in a `LinkList`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkEntry {
        /// The link.
        pub link_id: LinkId,
        /// Its node.
        pub node_id: NodeId,
        /// Its kind.
        pub kind: LinkKind,
        /// Creation (or rotation) time.
        pub created_at: u64,
        /// Expiry time, or null.
        pub expires_at: Option<u64>,
        /// Download limit, or null.
        pub max_downloads: Option<u64>,
        /// Downloads counted so far.
        pub downloads: u64,
        /// Whether a password is required.
        pub password: bool,
        /// The `OwnerLinkEntry` (§10).
        pub owner_entry: ByteBuf,
    }
}

crate::cbor_struct! {
    /// One finished drop in a `DropList`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DropInfo {
        /// The drop (the id of the upload that carried it).
        pub drop_id: UploadId,
        /// The drop link it came through.
        pub link_id: LinkId,
        /// When it was finalized.
        pub created_at: u64,
        /// Its ciphertext length.
        pub total_length: u64,
        /// The `DropEnvelope` (§10).
        pub drop_envelope: ByteBuf,
    }
}

body! {
    /// `POST /v1/links` request.
    pub struct LinkCreateRequest (type = 160, max = MAX_RECORD_BODY, check = check_link_create) {
        /// The link.
        pub link: LinkParams,
    }
}

body! {
    /// `POST /v1/links` and `POST /v1/links/{link-id}/rotate` response.
    pub struct LinkCreated (type = 161, max = MAX_SMALL_BODY) {
        /// The (new) link id.
        pub link_id: LinkId,
        /// Creation time.
        pub created_at: u64,
    }
}

body! {
    /// `GET /v1/links` response.
    pub struct LinkList (type = 162, max = MAX_BULK_BODY, check = check_link_list) {
        /// The caller's live links.
        pub links: Vec<LinkEntry>,
    }
}

body! {
    /// `POST /v1/links/{link-id}/rotate` request: the replacement, installed atomically.
    pub struct LinkRotateRequest (type = 163, max = MAX_RECORD_BODY, check = check_link_rotate) {
        /// The new link (new link id, same node).
        pub link: LinkParams,
    }
}

body! {
    /// `GET /v1/l/{link-id}` response.
    pub struct LinkResolved (type = 164, max = MAX_RECORD_BODY, check = check_link_resolved) {
        /// The link.
        pub link_id: LinkId,
        /// Its kind.
        pub kind: LinkKind,
        /// The `LinkRecord` (§10).
        pub link_record: ByteBuf,
        /// The target's `SignedNode` (§7); null for a drop link.
        pub node: Option<ByteBuf>,
        /// Expiry time, or null.
        pub expires_at: Option<u64>,
        /// Downloads left, or null when unlimited.
        pub downloads_remaining: Option<u64>,
    }
}

body! {
    /// `POST /v1/l/{link-id}/unlock` request.
    pub struct LinkUnlockRequest (type = 165, max = MAX_SMALL_BODY) {
        /// The link password verifier (§10).
        pub verifier: LinkVerifier,
    }
}

body! {
    /// `POST /v1/l/{link-id}/unlock` response.
    pub struct LinkUnlocked (type = 166, max = MAX_SMALL_BODY) {
        /// Bearer token for this link's endpoints.
        pub access_token: LinkAccessToken,
        /// Its expiry.
        pub expires_at: u64,
    }
}

body! {
    /// `POST /v1/l/{link-id}/drops` request: start an anonymous upload to a drop link.
    pub struct DropCreateRequest (type = 167, max = MAX_RECORD_BODY) {
        /// The drop secret (§10).
        pub drop_secret: DropSecret,
        /// The `DropEnvelope` (§10).
        pub drop_envelope: ByteBuf,
        /// Exact ciphertext length.
        pub total_length: u64,
        /// Length of every part but the last.
        pub part_size: u64,
    }
}

body! {
    /// `GET /v1/drops` response.
    pub struct DropList (type = 168, max = MAX_BULK_BODY) {
        /// Finished drops, oldest first.
        pub drops: Vec<DropInfo>,
    }
}

fn rule(ok: bool) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue)
    }
}

/// A download limit is at least 1 and exists only for reading links.
fn limit_ok(kind: LinkKind, max_downloads: Option<u64>) -> bool {
    !matches!(
        (kind, max_downloads),
        (_, Some(0)) | (LinkKind::Drop, Some(_))
    )
}

impl LinkParams {
    /// The structural rules of spec §11.11.1: a drop secret hash iff the link is a drop link;
    /// a download limit of at least 1, and none on a drop link.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] when a rule is broken.
    pub fn check(&self) -> Result<(), DecodeError> {
        rule(
            self.drop_secret_hash.is_some() == (self.kind == LinkKind::Drop)
                && limit_ok(self.kind, self.max_downloads),
        )
    }
}

fn check_link_create(b: &LinkCreateRequest) -> Result<(), DecodeError> {
    b.link.check()
}

fn check_link_rotate(b: &LinkRotateRequest) -> Result<(), DecodeError> {
    b.link.check()
}

/// Every entry's limit follows the rules of `LinkParams`.
fn check_link_list(b: &LinkList) -> Result<(), DecodeError> {
    rule(b.links.iter().all(|l| limit_ok(l.kind, l.max_downloads)))
}

/// A drop link has no node and no download count; a reading link has its node.
fn check_link_resolved(b: &LinkResolved) -> Result<(), DecodeError> {
    let drop = b.kind == LinkKind::Drop;
    rule(b.node.is_none() == drop && !(drop && b.downloads_remaining.is_some()))
}
