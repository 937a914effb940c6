//! Resumable content uploads (spec §11.9.1–§11.9.6) and their garbage collection.
//!
//! Parts go to the blob store as they arrive (any order, any number of times); the metadata store
//! records which are present. Finalize assembles the parts into the content blob, then one
//! metadata transaction makes the record and the content visible together. Lapsed uploads are
//! deleted by [`collect_garbage`](super::collect_garbage), which `serve` runs periodically.

use std::io;

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{post, put};
use axum::Router;
use coffer_core::api::upload::{part_count, PartBitmap};
use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::{AccountId, UploadId};
use coffer_core::Error as CoreError;
use futures_util::TryStreamExt;
use rand_core::OsRng;

use super::auth::path_id;
use super::nodes::{
    access, cbor, identity_key, invalid_record, not_found, parent_generation, problem, readable,
    store_error, stored_record, verify_record, writable,
};
use super::{ApiError, ApiResult, AppState, Cbor, NoBody, Session};
use crate::store::{
    self, FinalizeNode, NewUpload, NodeKind, NodeWrite, Upload, UploadCreated, UploadLimits,
    UploadTarget,
};

/// This module's routes (spec §11.9.2–§11.9.6), mounted by [`super::data_routes`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/uploads", post(create_upload))
        .route(
            "/v1/uploads/{upload-id}",
            axum::routing::get(get_upload).delete(delete_upload),
        )
        .route("/v1/uploads/{upload-id}/parts/{index}", put(put_part))
        .route("/v1/uploads/{upload-id}/finalize", post(finalize))
}

/// Checks an upload shape (§11.9.1): `400 invalid-parameter`, or `413` for a length over the
/// limit. Returns the part count.
pub(crate) fn check_shape(total_length: u64, part_size: u64, max_length: u64) -> ApiResult<u64> {
    if total_length > max_length {
        return Err(problem(
            ProblemKind::PayloadTooLarge,
            "content length over the server's limit",
        ));
    }
    part_count(total_length, part_size).map_err(|e| match e {
        CoreError::LimitExceeded {
            what: "content length",
            ..
        } => problem(
            ProblemKind::PayloadTooLarge,
            "content length over the limit",
        ),
        _ => problem(
            ProblemKind::InvalidParameter,
            "upload shape outside §11.9.1",
        ),
    })
}

/// The `UploadStatus` of an upload.
pub(crate) fn status_of(u: &Upload) -> ApiResult<api::UploadStatus> {
    let count = u.part_count();
    let mut map = PartBitmap::new(count)
        .map_err(|_| ApiError::internal("part bitmap", "inconsistent state"))?;
    for &(i, _) in &u.parts {
        map.set(i)
            .map_err(|_| ApiError::internal("part index", "inconsistent state"))?;
    }
    let (node_id, content_revision) = match &u.upload.target {
        UploadTarget::Node {
            node_id,
            content_revision,
            ..
        } => (Some(*node_id), *content_revision),
        UploadTarget::Drop { .. } => (None, 0),
    };
    Ok(api::UploadStatus {
        upload_id: u.upload.upload_id,
        node_id,
        content_revision,
        total_length: u.upload.total_length,
        part_size: u.upload.part_size,
        part_count: count,
        present: ByteBuf::from(map.as_bytes().to_vec()),
        expires_at: u.upload.expires_at,
    })
}

/// A new upload's lapse times (§11.9.2).
pub(crate) fn lapse_times(now: u64) -> (u64, u64) {
    (
        now.saturating_add(api::UPLOAD_IDLE_TTL_SECS),
        now.saturating_add(api::UPLOAD_MAX_TTL_SECS),
    )
}

/// The live upload `id` with its parts, or `404`.
pub(crate) async fn live_upload(state: &AppState, id: UploadId) -> ApiResult<Upload> {
    state
        .meta
        .upload(id, state.now())
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)
}

/// The live upload `id` without its parts (what a part request needs: its cost does not grow
/// with the parts present), or `404`.
pub(crate) async fn live_upload_head(state: &AppState, id: UploadId) -> ApiResult<NewUpload> {
    state
        .meta
        .upload_head(id, state.now())
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)
}

/// The live node upload `id` of `caller` with its parts, or `404` (see [`check_own`]).
async fn own_upload(state: &AppState, caller: AccountId, id: UploadId) -> ApiResult<Upload> {
    let u = live_upload(state, id).await?;
    check_own(state, caller, &u.upload).await?;
    Ok(u)
}

/// The live node upload `id` of `caller` without its parts, or `404` (see [`check_own`]).
async fn own_upload_head(
    state: &AppState,
    caller: AccountId,
    id: UploadId,
) -> ApiResult<NewUpload> {
    let u = live_upload_head(state, id).await?;
    check_own(state, caller, &u).await?;
    Ok(u)
}

/// `404` unless `u` is a node upload created by `caller`, who can still write its target
/// (a member removed mid-upload no longer sees it).
async fn check_own(state: &AppState, caller: AccountId, u: &NewUpload) -> ApiResult<()> {
    if u.creator != Some(caller) {
        return Err(not_found());
    }
    let UploadTarget::Node {
        node_id, parent_id, ..
    } = &u.target
    else {
        return Err(not_found());
    };
    let target = match state.meta.node(*node_id).await.map_err(store_error)? {
        Some(n) => n,
        None => state
            .meta
            .node(*parent_id)
            .await
            .map_err(store_error)?
            .ok_or_else(not_found)?,
    };
    match access(state, caller, &target).await? {
        Some(a) if a.can_write() => Ok(()),
        _ => Err(not_found()),
    }
}

/// `POST /v1/uploads`.
pub(crate) async fn create_upload(
    State(state): State<AppState>,
    caller: Session,
    Cbor(req): Cbor<api::UploadCreateRequest>,
) -> ApiResult<Response> {
    check_shape(
        req.total_length,
        req.part_size,
        state.config.file.limits.max_content_length,
    )?;
    if req.content_revision == 0 {
        return Err(problem(
            ProblemKind::InvalidParameter,
            "content revisions start at 1",
        ));
    }
    let owner = match state.meta.node(req.node_id).await.map_err(store_error)? {
        Some(existing) => {
            let (_, _) = writable(&state, caller.account_id, req.node_id).await?;
            let rec = stored_record(&existing)?;
            let current = rec.file.as_ref().map_or(0, |f| f.content_revision);
            if existing.node.kind != NodeKind::File
                || existing.node.parent_id != Some(req.parent_id)
                || req.content_revision <= current
            {
                return Err(ApiError::revision_mismatch(current));
            }
            existing.node.owner
        }
        None => {
            let (parent, _) = writable(&state, caller.account_id, req.parent_id).await?;
            if parent.node.kind != NodeKind::Folder {
                return Err(problem(
                    ProblemKind::InvalidParameter,
                    "the parent is not a folder",
                ));
            }
            parent.node.owner
        }
    };
    let t = state.now();
    let (expires_at, max_expires_at) = lapse_times(t);
    let new = NewUpload {
        upload_id: UploadId::generate(&mut OsRng),
        creator: Some(caller.account_id),
        owner,
        target: UploadTarget::Node {
            node_id: req.node_id,
            parent_id: req.parent_id,
            content_revision: req.content_revision,
        },
        total_length: req.total_length,
        part_size: req.part_size,
        created_at: t,
        expires_at,
        max_expires_at,
    };
    let limits = UploadLimits {
        quota_bytes: state.config.file.quotas.storage_bytes,
        max_account_uploads: Some(state.config.file.quotas.max_unfinished_uploads),
        max_link_uploads: None,
        max_link_drops: None,
    };
    match state
        .meta
        .create_upload(new, limits, t)
        .await
        .map_err(store_error)?
    {
        UploadCreated::Created(u) => Ok(cbor(StatusCode::CREATED, &status_of(&u)?)),
        UploadCreated::Existing(u) => Ok(cbor(StatusCode::OK, &status_of(&u)?)),
    }
}

/// Parses a part index path segment.
pub(crate) fn parse_index(s: &str) -> ApiResult<u64> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem(ProblemKind::InvalidParameter, "invalid part index"));
    }
    s.parse()
        .map_err(|_| problem(ProblemKind::InvalidParameter, "invalid part index"))
}

/// The checks of a part upload that come before its bytes are read (§11.4.1 step 4): media type
/// (`415`) and a `Content-Length` (`411`).
pub(crate) fn part_headers(headers: &HeaderMap) -> ApiResult<u64> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if ct.as_deref() != Some(api::OCTET_STREAM_CONTENT_TYPE) {
        return Err(problem(
            ProblemKind::UnsupportedMediaType,
            "parts are application/octet-stream",
        ));
    }
    let len = headers
        .get(header::CONTENT_LENGTH)
        .ok_or_else(|| problem(ProblemKind::LengthRequired, "Content-Length is required"))?;
    len.to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| problem(ProblemKind::InvalidParameter, "invalid Content-Length"))
}

/// Stores part `index` of `u` from `body` and records it. The length was announced as
/// `announced`; it must be the part's length exactly.
pub(crate) async fn store_part(
    state: &AppState,
    u: &NewUpload,
    index: u64,
    announced: u64,
    body: HttpBody,
) -> ApiResult<api::PartStored> {
    let wrong = || {
        problem(
            ProblemKind::WrongLength,
            "the part's length is not its required length",
        )
    };
    let refusal = match u.part_length(index) {
        None => Some(problem(
            ProblemKind::InvalidParameter,
            "part index not below the part count",
        )),
        Some(want) if announced != want => Some(wrong()),
        Some(_) => None,
    };
    if let Some(refusal) = refusal {
        // Read first if not much longer than a part (what the client could send anyway), so
        // that the client gets the answer (see `body::discard_declared`).
        super::body::discard_declared(announced, body, u.part_size).await;
        return Err(refusal);
    }
    let want = announced;
    let stream = body
        .into_data_stream()
        .map_err(|e| io::Error::new(io::ErrorKind::UnexpectedEof, e));
    let id = u.upload_id;
    let stored = match state
        .blobs
        .put_part(id, index, Box::pin(stream), want)
        .await
    {
        Ok(s) => s,
        Err(store::StoreError::Invalid(_)) => return Err(wrong()),
        Err(store::StoreError::Backend(e)) => {
            // A body cut short by the client surfaces as an I/O error: nothing was stored.
            tracing::debug!(error = %e, "part not stored");
            return Err(wrong());
        }
        Err(e) => return Err(store_error(e)),
    };
    if stored.length != want {
        return Err(wrong());
    }
    let t = state.now();
    state
        .meta
        .record_part(
            id,
            index,
            stored.length,
            t.saturating_add(api::UPLOAD_IDLE_TTL_SECS),
            t,
        )
        .await
        .map_err(store_error)?;
    Ok(api::PartStored {
        upload_id: id,
        part_index: index,
        length: stored.length,
    })
}

/// `PUT /v1/uploads/{upload-id}/parts/{index}`.
pub(crate) async fn put_part(
    State(state): State<AppState>,
    caller: Session,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
    body: HttpBody,
) -> ApiResult<Response> {
    let id = path_id::<UploadId>(&id)?;
    let index = parse_index(&index)?;
    let announced = part_headers(&headers)?;
    let u = match own_upload_head(&state, caller.account_id, id).await {
        Ok(u) => u,
        Err(e) => {
            super::body::discard_declared(announced, body, 0).await;
            return Err(e);
        }
    };
    let stored = store_part(&state, &u, index, announced, body).await?;
    Ok(cbor(StatusCode::OK, &stored))
}

/// `GET /v1/uploads/{upload-id}`.
pub(crate) async fn get_upload(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id::<UploadId>(&id)?;
    let u = own_upload(&state, caller.account_id, id).await?;
    Ok(cbor(StatusCode::OK, &status_of(&u)?))
}

/// Deletes an unfinished upload and its parts.
pub(crate) async fn abort(state: &AppState, id: UploadId) -> ApiResult<()> {
    let u = state
        .meta
        .delete_upload(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let state = state.clone();
    super::to_completion(async move { super::delete_upload_blobs(&state, &u).await }).await;
    Ok(())
}

/// `DELETE /v1/uploads/{upload-id}`.
pub(crate) async fn delete_upload(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    let id = path_id::<UploadId>(&id)?;
    own_upload(&state, caller.account_id, id).await?;
    abort(&state, id).await?;
    Ok(super::body::no_content())
}

/// `POST /v1/uploads/{upload-id}/finalize`.
pub(crate) async fn finalize(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<api::UploadFinalizeRequest>,
) -> ApiResult<Response> {
    let id = path_id::<UploadId>(&id)?;
    let u = match own_upload(&state, caller.account_id, id).await {
        Ok(u) => u,
        Err(e) => {
            return replayed_finalize(&state, caller.account_id, &req)
                .await
                .ok_or(e)
        }
    };
    let UploadTarget::Node {
        node_id,
        parent_id,
        content_revision,
    } = u.upload.target.clone()
    else {
        return Err(not_found());
    };
    let (parent, _) = writable(&state, caller.account_id, parent_id).await?;
    let generation = parent_generation(&parent)?;
    let key = identity_key(&state, caller.account_id).await?;
    let rec = verify_record(
        &req.signed_node,
        node_id,
        Some((parent_id, generation)),
        &key,
    )?;
    match &rec.file {
        Some(f)
            if f.content_revision == content_revision
                && f.ciphertext_length == u.upload.total_length => {}
        _ => {
            return Err(invalid_record(
                "the record does not name this upload's content",
            ))
        }
    }
    let existing = state.meta.node(node_id).await.map_err(store_error)?;
    match (&existing, req.expected_revision) {
        (Some(_), None) => {
            return Err(problem(ProblemKind::AlreadyExists, "the node exists"));
        }
        (None, Some(_)) => return Err(not_found()),
        (Some(n), Some(r)) => {
            writable(&state, caller.account_id, node_id).await?;
            let old = stored_record(n)?;
            if old.kind != rec.kind || n.node.parent_id != Some(parent_id) {
                return Err(invalid_record(
                    "a content update keeps the kind and the parent",
                ));
            }
            if rec.metadata_revision < old.metadata_revision {
                return Err(invalid_record("the metadata revision went down"));
            }
            if n.node.revision != r {
                return Err(ApiError::revision_mismatch(n.node.revision));
            }
        }
        (None, None) => {}
    }
    if !u.is_complete() {
        return Err(problem(ProblemKind::UploadIncomplete, "parts are missing"));
    }
    let length = state
        .blobs
        .assemble(id, u.part_count(), &u.blob_key)
        .await
        .map_err(store_error)?;
    if length != u.upload.total_length {
        let _ = state.blobs.delete_blob(&u.blob_key).await;
        return Err(problem(ProblemKind::UploadIncomplete, "parts are missing"));
    }
    let write = NodeWrite {
        node_id,
        parent_id: Some(parent_id),
        owner: parent.node.owner,
        kind: NodeKind::File,
        revision: req.expected_revision.map_or(1, |r| r + 1),
        share_id: existing.as_ref().and_then(|n| n.node.share_id),
        record: req.signed_node.to_vec(),
    };
    let fin = FinalizeNode {
        expected_revision: req.expected_revision,
        node: write,
        quota_bytes: state.config.file.quotas.storage_bytes,
    };
    match state.meta.finalize_upload(id, fin, state.now()).await {
        Ok(done) => {
            let _ = state.blobs.delete_parts(id).await;
            if let Some(old) = &done.replaced_blob {
                // Open readers keep their file handle (local store); GC covers other backends.
                let _ = state.blobs.delete_blob(old).await;
            }
            let status = if done.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(cbor(
                status,
                &api::NodeWritten {
                    node_id,
                    revision: done.node.node.revision,
                },
            ))
        }
        Err(e) => {
            let _ = state.blobs.delete_blob(&u.blob_key).await;
            Err(store_error(e))
        }
    }
}

/// A finalize retried after it was applied (§11.4.4): the upload is gone and the node holds
/// exactly the submitted record.
async fn replayed_finalize(
    state: &AppState,
    caller: AccountId,
    req: &api::UploadFinalizeRequest,
) -> Option<Response> {
    let peek = super::nodes::peek_record(&req.signed_node).ok()?;
    let (node, a) = readable(state, caller, peek.node_id).await.ok()?;
    if !a.can_write() || node.node.record != req.signed_node.as_slice() {
        return None;
    }
    let status = match req.expected_revision {
        None if node.node.revision == 1 => StatusCode::CREATED,
        Some(r) if node.node.revision == r + 1 => StatusCode::OK,
        _ => return None,
    };
    Some(cbor(
        status,
        &api::NodeWritten {
            node_id: node.node.node_id,
            revision: node.node.revision,
        },
    ))
}
