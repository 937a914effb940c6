//! Shares (spec §11.10): create, list, read, add and remove members, leave, delete, grants.
//!
//! The server checks every record before storing it: the `SignedShare` is signed by the caller
//! (the owner) and names the share, its root and generation; each member is a live account whose
//! current identity the record names; each `Grant` is signed by the owner, for this share and
//! generation, to that member. Member removal validates the whole `RotationBundle` against the
//! stored share and subtree with the protocol's own rules (`rotation::ShareState`), then applies
//! it in one store transaction.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::{decode_bounded, ByteBuf};
use coffer_core::ids::{AccountId, ShareId};
use coffer_core::primitives::VerifyingKey;
use coffer_core::rotation::{self, RotationBundle, ShareState};
use coffer_core::share::{
    self, Grant, Member, ShareRecord, SignedGrant, PERMISSION_READ, PERMISSION_WRITE,
};

use super::auth::path_id;
use super::body::no_content;
use super::nodes::{
    cbor, check_node_batch, current_identity, invalid_record, not_found, peek_record, problem,
    release, store_error,
};
use super::{ApiError, ApiResult, AppState, Cbor, NoBody, Session};
use crate::store::{
    GrantWrite, MemberRemoval, NodeUpdate, NodeWrite, Permission, Share, ShareWrite,
};

/// This module's routes (spec §11.10), mounted by [`super::data_routes`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shares", post(create_share).get(list_shares))
        .route("/v1/shares/{share-id}", get(get_share).delete(delete_share))
        .route("/v1/shares/{share-id}/members", post(add_member))
        .route(
            "/v1/shares/{share-id}/members/{account-id}",
            axum::routing::delete(remove_member),
        )
        .route("/v1/shares/{share-id}/leave", post(leave))
        .route("/v1/shares/{share-id}/grants/mine", get(my_grants))
}

fn permission(p: u64) -> ApiResult<Permission> {
    match p {
        PERMISSION_READ => Ok(Permission::Read),
        PERMISSION_WRITE => Ok(Permission::Write),
        _ => Err(invalid_record("unknown permission")),
    }
}

/// The stored share record, decoded (it was verified when written).
pub(crate) fn stored_share(s: &Share) -> ApiResult<ShareRecord> {
    let outer: share::SignedShare = decode_bounded(&s.share.record, share::MAX_SIGNED_SHARE_LEN)
        .map_err(|_| ApiError::internal("stored share record", "inconsistent state"))?;
    decode_bounded(&outer.record, share::MAX_SIGNED_SHARE_LEN)
        .map_err(|_| ApiError::internal("stored share record", "inconsistent state"))
}

/// The live account a share record names as a member, checked against its current identity.
async fn member_account(state: &AppState, m: &Member, owner: AccountId) -> ApiResult<AccountId> {
    let acct = state
        .meta
        .account_by_username(&m.user_name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| invalid_record("a member is not a live account"))?;
    if acct.account_id == owner {
        return Err(invalid_record("the owner is not a member"));
    }
    let id = current_identity(state, acct.account_id)
        .await
        .map_err(|_| invalid_record("a member has no identity"))?;
    if id.generation != m.identity_generation
        || id.signing_key.to_bytes() != m.ed25519.0
        || id.agreement_key.to_bytes() != m.x25519.0
    {
        return Err(invalid_record(
            "a member's keys are not its current identity",
        ));
    }
    Ok(acct.account_id)
}

/// Verifies a signed grant (§8) by `owner` for `share_id`, `generation` and member `m`.
fn check_grant(
    bytes: &[u8],
    owner: &VerifyingKey,
    share_id: ShareId,
    generation: u64,
    m: &Member,
) -> ApiResult<()> {
    let bad = || invalid_record("grant does not verify for this share, generation and member");
    let outer: SignedGrant =
        decode_bounded(bytes, share::MAX_SIGNED_GRANT_LEN).map_err(|_| bad())?;
    let grant: Grant =
        decode_bounded(&outer.grant, share::MAX_SIGNED_GRANT_LEN).map_err(|_| bad())?;
    if grant.granter.ed25519.0 != owner.to_bytes() {
        return Err(bad());
    }
    owner
        .verify(share::LABEL_GRANT, &outer.grant, &outer.signature.0)
        .map_err(|_| bad())?;
    if grant.share_id != share_id
        || grant.generation != generation
        || grant.recipient.user_name != m.user_name
        || grant.recipient.x25519 != m.x25519
        || grant.recipient.identity_generation != m.identity_generation
        || grant.permission != m.permission
    {
        return Err(bad());
    }
    Ok(())
}

/// The share and the caller's role: `404` for a stranger, `403` for a member where only the owner
/// may act (`owner_only`).
async fn share_for(
    state: &AppState,
    caller: AccountId,
    id: ShareId,
    owner_only: bool,
) -> ApiResult<Share> {
    let s = state
        .meta
        .share(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    if s.share.owner == caller {
        return Ok(s);
    }
    if s.permission_of(&caller).is_none() {
        return Err(not_found());
    }
    if owner_only {
        return Err(problem(
            ProblemKind::Forbidden,
            "only the owner manages a share",
        ));
    }
    Ok(s)
}

fn updated(status: StatusCode, id: ShareId, revision: u64, generation: u64) -> Response {
    cbor(
        status,
        &api::ShareUpdated {
            share_id: id,
            revision,
            generation,
        },
    )
}

/// `POST /v1/shares`.
pub(crate) async fn create_share(
    State(state): State<AppState>,
    caller: Session,
    Cbor(req): Cbor<api::ShareCreateRequest>,
) -> ApiResult<Response> {
    let me = caller.account_id;
    let root = state
        .meta
        .node(req.root_node_id)
        .await
        .map_err(store_error)?
        .filter(|n| n.node.owner == me)
        .ok_or_else(not_found)?;
    if root.node.parent_id.is_none() {
        return Err(problem(
            ProblemKind::Forbidden,
            "the root folder cannot be shared",
        ));
    }
    let identity = current_identity(&state, me).await?;
    let key = identity.signing_key;
    let record = share::verify_share(&req.signed_share, req.share_id, &key, 0)
        .map_err(|_| invalid_record("share record does not verify for the caller"))?;
    let root_rec = super::nodes::stored_record(&root)?;
    if record.generation != 0
        || record.folder_id != req.root_node_id
        || record.owner.user_name != identity.user_name
        || record.check_folder(&root_rec).is_err()
    {
        return Err(invalid_record("share record does not match the root"));
    }
    let mut members = Vec::with_capacity(record.members.len());
    let mut grants = Vec::with_capacity(record.members.len());
    let by_member: BTreeMap<AccountId, &ByteBuf> =
        req.grants.iter().map(|g| (g.member, &g.grant)).collect();
    if by_member.len() != record.members.len() {
        return Err(invalid_record("one grant per member"));
    }
    for m in &record.members {
        let acct = member_account(&state, m, me).await?;
        let g = by_member
            .get(&acct)
            .ok_or_else(|| invalid_record("one grant per member"))?;
        check_grant(g, &key, req.share_id, 0, m)?;
        members.push((acct, permission(m.permission)?));
        grants.push(GrantWrite {
            share_id: req.share_id,
            member: acct,
            generation: 0,
            grant: g.to_vec(),
        });
    }
    let nodes = check_node_batch(&state, &req.node_records, req.root_node_id, &key).await?;
    // Replay, or an id in use.
    if let Some(existing) = state.meta.share(req.share_id).await.map_err(store_error)? {
        if existing.share.owner == me
            && existing.share.record == req.signed_share.as_slice()
            && existing.revision == 0
        {
            return Ok(updated(StatusCode::CREATED, req.share_id, 0, 0));
        }
        return Err(problem(ProblemKind::AlreadyExists, "share id in use"));
    }
    // Shares do not nest: no share root at, above or below the new root.
    let above = state
        .meta
        .node_path(req.root_node_id)
        .await
        .map_err(store_error)?;
    let below = state
        .meta
        .subtree(req.root_node_id)
        .await
        .map_err(store_error)?;
    for id in above.iter().chain(below.iter()) {
        if state
            .meta
            .share_by_root(*id)
            .await
            .map_err(store_error)?
            .is_some()
        {
            return Err(problem(
                ProblemKind::AlreadyExists,
                "a share already covers this subtree",
            ));
        }
    }
    let write = ShareWrite {
        share_id: req.share_id,
        root_node_id: req.root_node_id,
        owner: me,
        generation: 0,
        members,
        record: req.signed_share.to_vec(),
    };
    let up = state
        .meta
        .create_share(write, grants, nodes)
        .await
        .map_err(store_error)?;
    Ok(updated(
        StatusCode::CREATED,
        req.share_id,
        up.revision,
        up.generation,
    ))
}

fn entry(s: Share) -> api::ShareEntry {
    api::ShareEntry {
        share_id: s.share.share_id,
        revision: s.revision,
        signed_share: ByteBuf::from(s.share.record),
    }
}

/// `GET /v1/shares`.
pub(crate) async fn list_shares(
    State(state): State<AppState>,
    caller: Session,
) -> ApiResult<Response> {
    let owned = state
        .meta
        .shares_owned(caller.account_id)
        .await
        .map_err(store_error)?;
    let member_of = state
        .meta
        .shares_member_of(caller.account_id)
        .await
        .map_err(store_error)?;
    Ok(cbor(
        StatusCode::OK,
        &api::ShareList {
            owned: owned.into_iter().map(entry).collect(),
            member_of: member_of
                .into_iter()
                .filter(|s| s.permission_of(&caller.account_id).is_some())
                .map(entry)
                .collect(),
        },
    ))
}

/// `GET /v1/shares/{share-id}`.
pub(crate) async fn get_share(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let s = share_for(&state, caller.account_id, id, false).await?;
    Ok(cbor(
        StatusCode::OK,
        &api::ShareResponse {
            share_id: id,
            revision: s.revision,
            signed_share: ByteBuf::from(s.share.record),
            departed: s.departed,
        },
    ))
}

/// `POST /v1/shares/{share-id}/members`: add a member, or change a member's permission.
pub(crate) async fn add_member(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<api::MemberAddRequest>,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let me = caller.account_id;
    let s = share_for(&state, me, id, true).await?;
    let current = stored_share(&s)?;
    let key = current_identity(&state, me).await?.signing_key;
    let record = share::verify_share(&req.signed_share, id, &key, current.generation)
        .map_err(|_| invalid_record("share record does not verify for the owner"))?;
    if record.generation != current.generation
        || record.folder_id != current.folder_id
        || record.owner != current.owner
    {
        return Err(invalid_record("share record changes more than its members"));
    }
    // Exactly the current members plus (or with a new permission for) grant.member.
    let m = {
        let acct = state
            .meta
            .account(req.grant.member)
            .await
            .map_err(store_error)?
            .ok_or_else(|| invalid_record("the new member is not a live account"))?;
        record
            .member(&acct.username)
            .cloned()
            .ok_or_else(|| invalid_record("the record does not list the new member"))?
    };
    let expected: Vec<&Member> = current
        .members
        .iter()
        .filter(|x| x.user_name != m.user_name)
        .collect();
    let got: Vec<&Member> = record
        .members
        .iter()
        .filter(|x| x.user_name != m.user_name)
        .collect();
    if expected != got {
        return Err(invalid_record("the record changes other members"));
    }
    let acct = member_account(&state, &m, me).await?;
    if acct != req.grant.member {
        return Err(invalid_record("the grant is for another member"));
    }
    check_grant(&req.grant.grant, &key, id, current.generation, &m)?;
    let stored_grants = state.meta.grants(id, acct).await.map_err(store_error)?;
    let replay = s.share.record == req.signed_share.as_slice()
        && stored_grants
            .iter()
            .any(|g| g.generation == current.generation && g.grant == req.grant.grant.as_slice());
    if replay && req.expected_revision.saturating_add(1) == s.revision {
        return Ok(updated(StatusCode::OK, id, s.revision, s.share.generation));
    }
    if s.revision != req.expected_revision {
        return Err(ApiError::revision_mismatch(s.revision));
    }
    if current.member(&m.user_name) == Some(&m) && s.permission_of(&acct).is_some() {
        return Err(problem(ProblemKind::AlreadyExists, "already a member"));
    }
    let mut members = Vec::with_capacity(record.members.len());
    for x in &record.members {
        let a = if x.user_name == m.user_name {
            acct
        } else {
            s.share
                .members
                .iter()
                .zip(&current.members)
                .find(|(_, c)| c.user_name == x.user_name)
                .map(|((a, _), _)| *a)
                .ok_or_else(|| ApiError::internal("member index", "inconsistent state"))?
        };
        members.push((a, permission(x.permission)?));
    }
    let write = ShareWrite {
        share_id: id,
        root_node_id: s.share.root_node_id,
        owner: me,
        generation: current.generation,
        members,
        record: req.signed_share.to_vec(),
    };
    let grant = GrantWrite {
        share_id: id,
        member: acct,
        generation: current.generation,
        grant: req.grant.grant.to_vec(),
    };
    let up = state
        .meta
        .add_member(id, req.expected_revision, write, grant)
        .await
        .map_err(store_error)?;
    Ok(updated(StatusCode::OK, id, up.revision, up.generation))
}

/// `DELETE /v1/shares/{share-id}/members/{account-id}`: removal with a rotation bundle.
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    caller: Session,
    Path((id, member)): Path<(String, String)>,
    Cbor(req): Cbor<api::MemberRemoveRequest>,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let member = path_id::<AccountId>(&member)?;
    let me = caller.account_id;
    let s = share_for(&state, me, id, true).await?;
    let current = stored_share(&s)?;
    let pos = s
        .share
        .members
        .iter()
        .position(|(a, _)| *a == member)
        .ok_or_else(not_found)?;
    let removed_name = current
        .members
        .get(pos)
        .map(|m| m.user_name.clone())
        .ok_or_else(|| ApiError::internal("member index", "inconsistent state"))?;
    let key = current_identity(&state, me).await?.signing_key;
    // The whole subtree's current records, as the rotation rules need them.
    let ids = state
        .meta
        .subtree(s.share.root_node_id)
        .await
        .map_err(store_error)?;
    let mut stored = BTreeMap::new();
    let mut records = BTreeMap::new();
    for nid in ids {
        if let Some(n) = state.meta.node(nid).await.map_err(store_error)? {
            records.insert(nid, super::nodes::stored_record(&n)?);
            stored.insert(nid, n);
        }
    }
    let bundle: RotationBundle = decode_bounded(&req.rotation_bundle, rotation::MAX_BUNDLE_LEN)
        .map_err(|_| invalid_record("not a RotationBundle"))?;
    if bundle.removed != removed_name {
        return Err(invalid_record("the bundle removes another member"));
    }
    let mut st = ShareState {
        share: current.clone(),
        nodes: records,
    };
    st.apply_rotation(&req.rotation_bundle, &key)
        .map_err(|_| invalid_record("rotation bundle does not verify against the share"))?;
    if s.revision != req.expected_revision {
        return Err(ApiError::revision_mismatch(s.revision));
    }
    let members: Vec<(AccountId, Permission)> = s
        .share
        .members
        .iter()
        .copied()
        .filter(|(a, _)| *a != member)
        .collect();
    let grants = bundle
        .grants
        .iter()
        .zip(&members)
        .map(|(g, (a, _))| GrantWrite {
            share_id: id,
            member: *a,
            generation: bundle.to_generation,
            grant: g.to_vec(),
        })
        .collect();
    let mut nodes = Vec::with_capacity(bundle.nodes.len());
    for n in &bundle.nodes {
        let peek = peek_record(n)?;
        let old = stored
            .get(&peek.node_id)
            .ok_or_else(|| invalid_record("bundle node not in the share"))?;
        nodes.push(NodeUpdate {
            expected_revision: old.node.revision,
            node: NodeWrite {
                revision: old.node.revision + 1,
                record: n.to_vec(),
                ..old.node.clone()
            },
        });
    }
    let removal = MemberRemoval {
        share_id: id,
        expected_revision: req.expected_revision,
        removed: vec![member],
        share: ShareWrite {
            share_id: id,
            root_node_id: s.share.root_node_id,
            owner: me,
            generation: bundle.to_generation,
            members,
            record: bundle.share.to_vec(),
        },
        grants,
        nodes,
    };
    let up = state
        .meta
        .remove_members(removal)
        .await
        .map_err(store_error)?;
    release(&state, &up.removed).await;
    Ok(updated(StatusCode::OK, id, up.revision, up.generation))
}

/// `POST /v1/shares/{share-id}/leave`.
pub(crate) async fn leave(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let s = share_for(&state, caller.account_id, id, false).await?;
    if s.share.owner == caller.account_id {
        return Err(problem(ProblemKind::Forbidden, "the owner cannot leave"));
    }
    let up = state
        .meta
        .leave_share(id, caller.account_id)
        .await
        .map_err(store_error)?;
    release(&state, &up.removed).await;
    Ok(no_content())
}

/// `GET /v1/shares/{share-id}/grants/mine`.
pub(crate) async fn my_grants(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let s = share_for(&state, caller.account_id, id, false).await?;
    if s.share.owner == caller.account_id {
        return Err(problem(ProblemKind::Forbidden, "the owner holds no grants"));
    }
    let grants = state
        .meta
        .grants(id, caller.account_id)
        .await
        .map_err(store_error)?;
    Ok(cbor(
        StatusCode::OK,
        &api::MyGrants {
            share_id: id,
            grants: grants
                .into_iter()
                .map(|g| api::GenerationGrant {
                    generation: g.generation,
                    grant: ByteBuf::from(g.grant),
                })
                .collect(),
        },
    ))
}

/// `DELETE /v1/shares/{share-id}`.
pub(crate) async fn delete_share(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<api::ShareDeleteRequest>,
) -> ApiResult<Response> {
    let id = path_id::<ShareId>(&id)?;
    let s = share_for(&state, caller.account_id, id, true).await?;
    let key = current_identity(&state, caller.account_id)
        .await?
        .signing_key;
    let nodes = check_node_batch(&state, &req.node_records, s.share.root_node_id, &key).await?;
    if s.revision != req.expected_revision {
        return Err(ApiError::revision_mismatch(s.revision));
    }
    let removed = state
        .meta
        .delete_share(id, req.expected_revision, nodes)
        .await
        .map_err(store_error)?;
    release(&state, &removed).await;
    Ok(no_content())
}
