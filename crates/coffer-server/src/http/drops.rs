//! Drops (spec §11.11.6, §11.11.2): anonymous uploads through a drop link, and the owner's view
//! of the finished drops, open to the link folder's owner and to the `write` members of the
//! share holding that folder.
//!
//! The link-scoped endpoints are authorized by the link (existence, expiry, exhaustion, and the
//! link access token of a password link), which the caller of these functions has already
//! checked; an upload id is then a capability for its drop, accepted only under the same link.

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::{AccountId, LinkId, NodeId, UploadId};
use rand_core::OsRng;
use std::collections::{BTreeMap, BTreeSet};

use super::auth::path_id;
use super::body::no_content;
use super::content::{serve_blob, Served};
use super::links::LinkAuth;
use super::nodes::{access, cbor, invalid_record, not_found, problem, store_error};
use super::uploads::{
    abort, check_shape, lapse_times, live_upload, live_upload_head, parse_index, part_headers,
    status_of, store_part,
};
use super::{ApiResult, AppState, Cbor, NoBody, Session};
use crate::store::{
    DropRecord, Link, LinkKind, NewUpload, Permission, Upload, UploadCreated, UploadLimits,
    UploadTarget,
};

/// This module's owner routes (spec §11.11.2), mounted by [`super::data_routes`]. The
/// link-scoped drop endpoints (§11.11.6) are mounted with the link routes, behind the link's
/// authentication, and call the `*_drop*` functions below.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/drops", get(list_drops))
        .route("/v1/drops/{drop-id}", axum::routing::delete(delete_drop))
        .route("/v1/drops/{drop-id}/content", get(drop_content))
        .route("/v1/l/{link_id}/drops", axum::routing::post(h_create_drop))
        .route(
            "/v1/l/{link_id}/uploads/{upload_id}",
            get(h_drop_status).delete(h_abort_drop),
        )
        .route(
            "/v1/l/{link_id}/uploads/{upload_id}/parts/{index}",
            axum::routing::put(h_put_drop_part),
        )
        .route(
            "/v1/l/{link_id}/uploads/{upload_id}/finalize",
            axum::routing::post(h_finalize_drop),
        )
}

async fn h_create_drop(
    link: LinkAuth,
    State(state): State<AppState>,
    Cbor(req): Cbor<api::DropCreateRequest>,
) -> ApiResult<Response> {
    if link.link.link.kind != LinkKind::Drop {
        return Err(not_found());
    }
    let m = &state.metrics;
    state
        .limits
        .drops_per_link
        .check(&link.link.link.link_id, m)?;
    state.limits.drops_per_address.check(&link.ip, m)?;
    create_drop(&state, &link.link, req).await
}

async fn h_drop_status(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, upload)): Path<(String, String)>,
) -> ApiResult<Response> {
    drop_status(&state, &link.link, &upload).await
}

async fn h_abort_drop(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, upload)): Path<(String, String)>,
    nb: NoBody,
) -> ApiResult<Response> {
    abort_drop(&state, &link.link, &upload, nb).await
}

async fn h_put_drop_part(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, upload, index)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: HttpBody,
) -> ApiResult<Response> {
    put_drop_part(&state, &link.link, &upload, &index, &headers, body).await
}

async fn h_finalize_drop(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, upload)): Path<(String, String)>,
    nb: NoBody,
) -> ApiResult<Response> {
    finalize_drop(&state, &link.link, &upload, nb).await
}

// ---- owner endpoints ---------------------------------------------------------------------------
// Open to the owner of the drop link's folder and to the `write` members of the share whose
// subtree holds that folder (§11.11.2, §10.9.3); anyone else gets the `404` of a missing drop.

/// The folder a drop was dropped into, from its `DropEnvelope` (checked against the link's
/// folder when the drop was created); `None` for an envelope that no longer decodes.
fn drop_folder(d: &DropRecord) -> Option<NodeId> {
    coffer_core::encoding::decode_bounded::<coffer_core::link::DropEnvelope>(
        &d.envelope,
        coffer_core::link::MAX_DROP_ENVELOPE_LEN,
    )
    .ok()
    .map(|env| env.folder_id)
}

/// Whether `caller` may write to `folder` of `owner`'s tree, as a `write` member of the share
/// whose subtree holds it (the tree's owner is decided by the caller of this function).
async fn member_writes(
    state: &AppState,
    caller: AccountId,
    owner: AccountId,
    folder: NodeId,
) -> ApiResult<bool> {
    let Some(node) = state.meta.node(folder).await.map_err(store_error)? else {
        return Ok(false);
    };
    if node.node.owner != owner {
        return Ok(false);
    }
    Ok(access(state, caller, &node)
        .await?
        .is_some_and(|a| a.can_write()))
}

/// Whether `caller` may list, read and delete drop `d` (§11.11.2).
async fn may_file(state: &AppState, caller: AccountId, d: &DropRecord) -> ApiResult<bool> {
    if d.owner == caller {
        return Ok(true);
    }
    match drop_folder(d) {
        Some(folder) => member_writes(state, caller, d.owner, folder).await,
        None => Ok(false),
    }
}

/// The finished drop `id` if `caller` may file it, or `404`.
async fn drop_for(state: &AppState, caller: AccountId, id: &str) -> ApiResult<DropRecord> {
    let id = path_id::<UploadId>(id)?;
    let d = state
        .meta
        .drop_info(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    if may_file(state, caller, &d).await? {
        Ok(d)
    } else {
        Err(not_found())
    }
}

/// Every drop `caller` may file: its own links' drops, and those of share owners into folders
/// it may write to as a member; oldest first.
async fn drops_for(state: &AppState, caller: AccountId) -> ApiResult<Vec<DropRecord>> {
    let mut out = state.meta.drops_of(caller).await.map_err(store_error)?;
    let mut owners = BTreeSet::new();
    for sh in state
        .meta
        .shares_member_of(caller)
        .await
        .map_err(store_error)?
    {
        if sh.permission_of(&caller) == Some(Permission::Write) {
            owners.insert(sh.share.owner);
        }
    }
    for owner in owners {
        // One decision per folder: a link's drops all go into the same one.
        let mut writable: BTreeMap<NodeId, bool> = BTreeMap::new();
        for d in state.meta.drops_of(owner).await.map_err(store_error)? {
            let Some(folder) = drop_folder(&d) else {
                continue;
            };
            let ok = match writable.get(&folder) {
                Some(&ok) => ok,
                None => {
                    let ok = member_writes(state, caller, owner, folder).await?;
                    writable.insert(folder, ok);
                    ok
                }
            };
            if ok {
                out.push(d);
            }
        }
    }
    out.sort_by_key(|d| (d.created_at, d.drop_id));
    Ok(out)
}

/// `GET /v1/drops`.
pub(crate) async fn list_drops(
    State(state): State<AppState>,
    caller: Session,
) -> ApiResult<Response> {
    let drops = drops_for(&state, caller.account_id).await?;
    let mut out = Vec::with_capacity(drops.len());
    let mut records: BTreeMap<LinkId, Vec<u8>> = BTreeMap::new();
    for d in drops {
        // The link's record opens the drop (§10.9.1): the live link's current record, or the
        // one the drop kept when its link was revoked or rotated (§11.11.2).
        let link_record = match d.link_record {
            Some(kept) => kept,
            None => match records.entry(d.link_id) {
                std::collections::btree_map::Entry::Occupied(e) => e.get().clone(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    let rec = state
                        .meta
                        .link(d.link_id)
                        .await
                        .map_err(store_error)?
                        .filter(|l| l.link.owner == d.owner)
                        .map(|l| l.link.link_record)
                        // Only a drop whose link was revoked before schema version 2 has none.
                        .unwrap_or_default();
                    slot.insert(rec).clone()
                }
            },
        };
        // A drop is never listed with an empty record (§11.11.2): it could not be opened.
        if link_record.is_empty() {
            continue;
        }
        out.push(api::DropInfo {
            drop_id: d.drop_id,
            link_id: d.link_id,
            created_at: d.created_at,
            total_length: d.total_length,
            drop_envelope: ByteBuf::from(d.envelope),
            link_record: ByteBuf::from(link_record),
        });
    }
    Ok(cbor(StatusCode::OK, &api::DropList { drops: out }))
}

/// `GET /v1/drops/{drop-id}/content` (and `HEAD`).
pub(crate) async fn drop_content(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let d = drop_for(&state, caller.account_id, &id).await?;
    let served = Served {
        key: d.blob_key,
        length: d.total_length,
        etag: format!("\"d{}\"", d.drop_id),
    };
    serve_blob(&state, &headers, &served).await
}

/// `DELETE /v1/drops/{drop-id}`.
pub(crate) async fn delete_drop(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let d = drop_for(&state, caller.account_id, &id).await?;
    let key = state
        .meta
        .delete_drop(d.owner, d.drop_id)
        .await
        .map_err(store_error)?;
    let _ = state.blobs.delete_blob(&key).await;
    Ok(no_content())
}

// ---- link-scoped data path (§11.11.6) -----------------------------------------------------------
// Called by the link routes (links.rs) after the link's authentication.

/// The largest drop the server accepts (bytes of ciphertext).
pub(crate) fn drop_limit(state: &AppState) -> u64 {
    state.config.file.limits.max_content_length
}

/// `POST /v1/l/{link-id}/drops` on a live drop link: a new drop upload.
pub(crate) async fn create_drop(
    state: &AppState,
    link: &Link,
    req: api::DropCreateRequest,
) -> ApiResult<Response> {
    if link.link.kind != LinkKind::Drop {
        return Err(not_found());
    }
    check_shape(req.total_length, req.part_size, drop_limit(state))?;
    check_envelope(&req.drop_envelope, link)?;
    let t = state.now();
    let (expires_at, max_expires_at) = lapse_times(t);
    let new = NewUpload {
        upload_id: UploadId::generate(&mut OsRng),
        creator: None,
        owner: link.link.owner,
        target: UploadTarget::Drop {
            link_id: link.link.link_id,
            envelope: req.drop_envelope.to_vec(),
        },
        total_length: req.total_length,
        part_size: req.part_size,
        created_at: t,
        expires_at,
        max_expires_at,
    };
    let limits = UploadLimits {
        quota_bytes: state.config.file.quotas.storage_bytes,
        max_account_uploads: None,
        max_link_uploads: Some(1000),
        max_link_drops: Some(10_000),
    };
    match state
        .meta
        .create_upload(new, limits, t)
        .await
        .map_err(store_error)?
    {
        UploadCreated::Created(u) | UploadCreated::Existing(u) => {
            Ok(cbor(StatusCode::CREATED, &status_of(&u)?))
        }
    }
}

/// The drop envelope decodes as a `DropEnvelope` of §10 for this link and folder (`422`).
fn check_envelope(bytes: &[u8], link: &Link) -> ApiResult<()> {
    let env: coffer_core::link::DropEnvelope =
        coffer_core::encoding::decode_bounded(bytes, coffer_core::link::MAX_DROP_ENVELOPE_LEN)
            .map_err(|_| invalid_record("not a DropEnvelope"))?;
    if env.link_id != link.link.link_id || env.folder_id != link.link.node_id {
        return Err(invalid_record("the drop envelope is for another link"));
    }
    Ok(())
}

/// A live drop upload of this link with its parts, or `404`.
async fn link_upload(state: &AppState, link_id: LinkId, id: &str) -> ApiResult<Upload> {
    let u = live_upload(state, path_id::<UploadId>(id)?).await?;
    check_link_upload(&u.upload, link_id)?;
    Ok(u)
}

/// A live drop upload of this link without its parts (what a part request needs), or `404`.
async fn link_upload_head(state: &AppState, link_id: LinkId, id: &str) -> ApiResult<NewUpload> {
    let u = live_upload_head(state, path_id::<UploadId>(id)?).await?;
    check_link_upload(&u, link_id)?;
    Ok(u)
}

/// `404` unless `u` is a drop of link `link_id`.
fn check_link_upload(u: &NewUpload, link_id: LinkId) -> ApiResult<()> {
    match &u.target {
        UploadTarget::Drop { link_id: l, .. } if *l == link_id => Ok(()),
        _ => Err(not_found()),
    }
}

/// `PUT /v1/l/{link-id}/uploads/{upload-id}/parts/{index}`.
pub(crate) async fn put_drop_part(
    state: &AppState,
    link: &Link,
    upload: &str,
    index: &str,
    headers: &HeaderMap,
    body: HttpBody,
) -> ApiResult<Response> {
    let index = parse_index(index)?;
    let announced = part_headers(headers)?;
    let u = match link_upload_head(state, link.link.link_id, upload).await {
        Ok(u) => u,
        Err(e) => {
            super::body::discard_declared(announced, body, 0).await;
            return Err(e);
        }
    };
    let stored = store_part(state, &u, index, announced, body).await?;
    Ok(cbor(StatusCode::OK, &stored))
}

/// `GET /v1/l/{link-id}/uploads/{upload-id}`.
pub(crate) async fn drop_status(
    state: &AppState,
    link: &Link,
    upload: &str,
) -> ApiResult<Response> {
    let u = link_upload(state, link.link.link_id, upload).await?;
    Ok(cbor(StatusCode::OK, &status_of(&u)?))
}

/// `POST /v1/l/{link-id}/uploads/{upload-id}/finalize`.
pub(crate) async fn finalize_drop(
    state: &AppState,
    link: &Link,
    upload: &str,
    _: NoBody,
) -> ApiResult<Response> {
    let u = link_upload(state, link.link.link_id, upload).await?;
    if !u.is_complete() {
        return Err(problem(ProblemKind::UploadIncomplete, "parts are missing"));
    }
    // An accepted drop counts against the link's limit (§10.8), decided atomically.
    if link.link.max_downloads.is_some() {
        match state
            .meta
            .consume_download(link.link.link_id, state.now())
            .await
            .map_err(store_error)?
        {
            crate::store::LinkAccess::Live(_) => {}
            crate::store::LinkAccess::Exhausted => {
                return Err(problem(
                    ProblemKind::LinkExhausted,
                    "the link's limit is used up",
                ))
            }
            crate::store::LinkAccess::Expired => {
                return Err(problem(ProblemKind::LinkExpired, "the link has expired"))
            }
            crate::store::LinkAccess::NotFound => return Err(not_found()),
        }
    }
    let id = u.upload.upload_id;
    let length = state
        .blobs
        .assemble(id, u.part_count(), &u.blob_key)
        .await
        .map_err(store_error)?;
    if length != u.upload.total_length {
        let _ = state.blobs.delete_blob(&u.blob_key).await;
        return Err(problem(ProblemKind::UploadIncomplete, "parts are missing"));
    }
    match state
        .meta
        .finalize_drop(id, link.link.link_id, state.now())
        .await
    {
        Ok(_) => {
            let _ = state.blobs.delete_parts(id).await;
            Ok(no_content())
        }
        Err(e) => {
            let _ = state.blobs.delete_blob(&u.blob_key).await;
            Err(store_error(e))
        }
    }
}

/// `DELETE /v1/l/{link-id}/uploads/{upload-id}`.
pub(crate) async fn abort_drop(
    state: &AppState,
    link: &Link,
    upload: &str,
    _: NoBody,
) -> ApiResult<Response> {
    let u = link_upload(state, link.link.link_id, upload).await?;
    abort(state, u.upload.upload_id).await?;
    Ok(no_content())
}
