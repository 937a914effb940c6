//! Links and drops (spec §11.11).

use alloc::vec::Vec;

use super::token::{LinkAccessToken, LinkVerifier};
use super::{body, wire_enum, MAX_BULK_BODY, MAX_RECORD_BODY, MAX_SMALL_BODY};
use crate::encoding::{ByteBuf, Bytes};
use crate::error::DecodeError;
use crate::ids::{LinkId, NodeId, UploadId};
use crate::link::LinkPassword;

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
        /// `SHA-256(verifier)` of the link password verifier (§10.2), or null without a
        /// password; present exactly when the record has a `password` part.
        pub verifier_hash: Option<Bytes<32>>,
        /// Expiry time, or null.
        pub expires_at: Option<u64>,
        /// Download limit (at least 1; for a drop link, a limit on accepted drops), or null.
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
        /// The `LinkRecord` (§10); for a drop link its `drop` part holds the drop secret sealed
        /// under the folder key (§10.9.1), which opens the link's drops.
        pub link_record: ByteBuf,
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
        /// The drop link's `LinkRecord` (§10), whose `drop` part holds the drop secret sealed
        /// under the folder key (§10.9.1): any member with that folder key opens the drop.
        pub link_record: ByteBuf,
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
    /// `GET /v1/l/{link-id}` response. For a password link requested without a valid link
    /// access token (spec §11.11.3) the server sends only `password` (to compute the verifier),
    /// kind and expiry: `link_record` and `node` are null until the link is unlocked.
    pub struct LinkResolved (type = 164, max = MAX_RECORD_BODY, check = check_link_resolved) {
        /// The link.
        pub link_id: LinkId,
        /// Its kind.
        pub kind: LinkKind,
        /// The record's `password` part (Argon2id cost and salt, §10.4.2), or null for a link
        /// without a password.
        pub password: Option<LinkPassword>,
        /// The `LinkRecord` (§10); null exactly for a locked password link.
        pub link_record: Option<ByteBuf>,
        /// The target's `SignedNode` (§7); null for a drop link and for a locked password link.
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
    /// `POST /v1/l/{link-id}/drops` request: start an anonymous upload to a drop link (authorized
    /// by the link id, plus the link access token for a password link).
    pub struct DropCreateRequest (type = 167, max = MAX_RECORD_BODY) {
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

body! {
    /// `PUT /v1/links/{link-id}` request: re-seal a link for a new key generation of its folder
    /// (spec §9.3, §10.11, §11.11.7). Same link id, URL, policy, verifier and owner entry; only
    /// the record's sealed parts (and its drop part's generation) change.
    pub struct LinkResealRequest (type = 169, max = MAX_RECORD_BODY) {
        /// The re-sealed `LinkRecord` (§10) that replaces the stored one.
        pub link_record: ByteBuf,
    }
}

fn rule(ok: bool) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue)
    }
}

/// A download limit is at least 1 (for a drop link it counts accepted drops, spec §10.8).
fn limit_ok(max_downloads: Option<u64>) -> bool {
    max_downloads != Some(0)
}

impl LinkParams {
    /// The structural rules of spec §11.11.1: a download limit, if any, of at least 1. (That the record agrees with these fields is checked with
    /// [`crate::link::LinkRecord::validate_for_storage`] and [`LinkParams::matches_record`].)
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] when a rule is broken.
    pub fn check(&self) -> Result<(), DecodeError> {
        rule(limit_ok(self.max_downloads))
    }

    /// Server side (spec §11.11.2): whether the link record's plaintext fields agree with these
    /// parameters: same link id, node id, expiry and download limit; `kind` 2 exactly for an
    /// upload-only record; a verifier hash exactly when the record has a password.
    #[must_use]
    pub fn matches_record(&self, record: &crate::link::LinkRecord) -> bool {
        use crate::link::Permission;
        let kind_ok = match record.permission {
            Permission::Read => self.kind != LinkKind::Drop,
            Permission::UploadOnly => self.kind == LinkKind::Drop,
        };
        kind_ok
            && record.link_id == self.link_id
            && record.node_id == self.node_id
            && record.expires_at == self.expires_at
            && record.max_downloads == self.max_downloads
            && record.password.is_some() == self.verifier_hash.is_some()
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
    rule(b.links.iter().all(|l| limit_ok(l.max_downloads)))
}

/// A drop link has no node; an unlocked reading link has its node; a
/// record is absent only for a locked password link, which then carries no node either.
fn check_link_resolved(b: &LinkResolved) -> Result<(), DecodeError> {
    let drop = b.kind == LinkKind::Drop;
    let locked = b.link_record.is_none();
    rule((!locked || b.password.is_some()) && b.node.is_none() == (drop || locked))
}
