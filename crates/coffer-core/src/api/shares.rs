//! Shares to users (spec §11.10).

use alloc::vec::Vec;

use super::{body, MAX_BULK_BODY, MAX_RECORD_BODY, MAX_SMALL_BODY};
use crate::encoding::ByteBuf;
use crate::error::DecodeError;
use crate::ids::{AccountId, NodeId, ShareId};

crate::cbor_struct! {
    /// A member's grant, as uploaded.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GrantEntry {
        /// The member the grant is for.
        pub member: AccountId,
        /// A `Grant` (§8).
        pub grant: ByteBuf,
    }
}

crate::cbor_struct! {
    /// A grant of one share generation, as returned to its member.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GenerationGrant {
        /// The share generation.
        pub generation: u64,
        /// A `Grant` (§8).
        pub grant: ByteBuf,
    }
}

crate::cbor_struct! {
    /// One share in a `ShareList`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ShareEntry {
        /// The share.
        pub share_id: ShareId,
        /// Its share revision.
        pub revision: u64,
        /// Its current `SignedShare` (§8).
        pub signed_share: ByteBuf,
    }
}

body! {
    /// `POST /v1/shares` request.
    pub struct ShareCreateRequest (type = 145, max = MAX_BULK_BODY, check = check_share_create) {
        /// The new share's id, chosen at random by the owner.
        pub share_id: ShareId,
        /// The folder or file being shared.
        pub root_node_id: NodeId,
        /// Generation 0, a `SignedShare` (§8).
        pub signed_share: ByteBuf,
        /// One grant for every member the signed share lists, and no other.
        pub grants: Vec<GrantEntry>,
        /// `SignedNode` records (§7) that §8 changes together with the share (e.g. the root's
        /// record re-keyed under the share); each names the next revision of its node.
        pub node_records: Vec<ByteBuf>,
    }
}

body! {
    /// `GET /v1/shares/{share-id}` response.
    pub struct ShareResponse (type = 146, max = MAX_RECORD_BODY) {
        /// The share.
        pub share_id: ShareId,
        /// The share revision: 0 at creation, +1 for every accepted change.
        pub revision: u64,
        /// The current `SignedShare` (§8).
        pub signed_share: ByteBuf,
        /// Members who left and are still listed: the owner should rotate (§9.2).
        pub departed: Vec<AccountId>,
    }
}

body! {
    /// `GET /v1/shares` response.
    pub struct ShareList (type = 147, max = MAX_BULK_BODY) {
        /// Shares the caller owns.
        pub owned: Vec<ShareEntry>,
        /// Shares the caller is a member of.
        pub member_of: Vec<ShareEntry>,
    }
}

body! {
    /// `POST /v1/shares/{share-id}/members` request.
    pub struct MemberAddRequest (type = 148, max = MAX_RECORD_BODY) {
        /// The current share revision.
        pub expected_revision: u64,
        /// The new `SignedShare` (§8): same generation, the new member added.
        pub signed_share: ByteBuf,
        /// The new member's grant of the current generation.
        pub grant: GrantEntry,
    }
}

body! {
    /// `DELETE /v1/shares/{share-id}/members/{account-id}` request.
    pub struct MemberRemoveRequest (type = 149, max = MAX_BULK_BODY) {
        /// The current share revision.
        pub expected_revision: u64,
        /// A `RotationBundle` (§9.2): the next generation's `SignedShare`, grants for every
        /// remaining member and the re-keyed records; applied atomically.
        pub rotation_bundle: ByteBuf,
    }
}

body! {
    /// Response to share creation and member changes.
    pub struct ShareUpdated (type = 150, max = MAX_SMALL_BODY) {
        /// The share.
        pub share_id: ShareId,
        /// The share revision now.
        pub revision: u64,
        /// The share generation now.
        pub generation: u64,
    }
}

body! {
    /// `GET /v1/shares/{share-id}/grants/mine` response.
    pub struct MyGrants (type = 151, max = MAX_BULK_BODY) {
        /// The share.
        pub share_id: ShareId,
        /// The caller's grant of every generation it holds one for, oldest first.
        pub grants: Vec<GenerationGrant>,
    }
}

body! {
    /// `DELETE /v1/shares/{share-id}` request: stop sharing.
    pub struct ShareDeleteRequest (type = 152, max = MAX_BULK_BODY) {
        /// The current share revision.
        pub expected_revision: u64,
        /// `SignedNode` records (§7) that §8 changes when the share ends (e.g. the root's record
        /// re-keyed back under the owner); each names the next revision of its node.
        pub node_records: Vec<ByteBuf>,
    }
}

/// No member has two grants.
fn check_share_create(b: &ShareCreateRequest) -> Result<(), DecodeError> {
    let mut members: Vec<&AccountId> = b.grants.iter().map(|g| &g.member).collect();
    members.sort_unstable();
    let n = members.len();
    members.dedup();
    if members.len() == n {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue)
    }
}
