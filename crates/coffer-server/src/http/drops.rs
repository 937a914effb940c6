//! Drops (spec §11.11.6, §11.11.2): anonymous uploads through a drop link, and the owner's view
//! of the finished drops.
//!
//! The link-scoped endpoints are authorized by the link (existence, expiry, exhaustion, and the
//! link access token of a password link), which the caller of these functions has already
//! checked; an upload id is then a capability for its drop, accepted only under the same link.

use std::sync::Arc;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::{LinkId, UploadId};
use rand_core::OsRng;

use super::content::{serve_blob, Served};
use super::nodes::{
    body, cbor, invalid_record, no_query, not_found, now, parse_id, problem, store_error,
    ApiResult,
};
use super::uploads::{abort, check_shape, lapse_times, parse_index, part_headers, status_of, store_part};
use super::{AppState, Authed};
use crate::store::{Link, LinkKind, NewUpload, Upload, UploadCreated, UploadLimits, UploadTarget};

// ---- owner endpoints ---------------------------------------------------------------------------

/// `GET /v1/drops`.
pub(crate) async fn list_drops(
    State(state): State<Arc<AppState>>,
    caller: Authed,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    no_query(&q)?;
    let drops = state
        .meta
        .drops_of(caller.account_id)
        .await
        .map_err(store_error)?;
    Ok(cbor(
        StatusCode::OK,
        &api::DropList {
            drops: drops
                .into_iter()
                .map(|d| api::DropInfo {
                    drop_id: d.drop_id,
                    link_id: d.link_id,
                    created_at: d.created_at,
                    total_length: d.total_length,
                    drop_envelope: ByteBuf::from(d.envelope),
                })
                .collect(),
        },
    ))
}

/// `GET /v1/drops/{drop-id}/content` (and `HEAD`).
pub(crate) async fn drop_content(
    State(state): State<Arc<AppState>>,
    caller: Authed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id, UploadId::from_b64)?;
    no_query(&q)?;
    let d = state
        .meta
        .drop_info(id)
        .await
        .map_err(store_error)?
        .filter(|d| d.owner == caller.account_id)
        .ok_or_else(not_found)?;
    let served = Served {
        key: d.blob_key,
        length: d.total_length,
        etag: format!("\"d{id}\""),
    };
    serve_blob(&state, &headers, &served).await
}

/// `DELETE /v1/drops/{drop-id}`.
pub(crate) async fn delete_drop(
    State(state): State<Arc<AppState>>,
    caller: Authed,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&id, UploadId::from_b64)?;
    no_query(&q)?;
    if !bytes.is_empty() {
        return Err(problem(ProblemKind::MalformedBody, "this request takes no body"));
    }
    let key = state
        .meta
        .delete_drop(caller.account_id, id)
        .await
        .map_err(store_error)?;
    let _ = state.blobs.delete_blob(&key).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- link-scoped data path (§11.11.6) -----------------------------------------------------------

/// The largest drop the server accepts (bytes of ciphertext).
pub(crate) fn drop_limit(state: &AppState) -> u64 {
    state.limits.max_drop_length
}

/// `POST /v1/l/{link-id}/drops` on a live drop link: a new drop upload.
pub(crate) async fn create_drop(state: &AppState, link: &Link, bytes: &[u8]) -> ApiResult<Response> {
    if link.link.kind != LinkKind::Drop {
        return Err(not_found());
    }
    let req: api::DropCreateRequest = body(bytes)?;
    check_shape(req.total_length, req.part_size, drop_limit(state))?;
    check_envelope(&req.drop_envelope, link)?;
    let t = now();
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
        quota_bytes: state.limits.quota_bytes,
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

/// A live drop upload of this link, or `404`.
async fn link_upload(state: &AppState, link_id: LinkId, id: &str) -> ApiResult<Upload> {
    let id = parse_id(id, UploadId::from_b64)?;
    let u = state
        .meta
        .upload(id, now())
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    match &u.upload.target {
        UploadTarget::Drop { link_id: l, .. } if *l == link_id => Ok(u),
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
    let u = link_upload(state, link.link.link_id, upload).await?;
    let stored = store_part(state, &u, index, announced, body).await?;
    Ok(cbor(StatusCode::OK, &stored))
}

/// `GET /v1/l/{link-id}/uploads/{upload-id}`.
pub(crate) async fn drop_status(state: &AppState, link: &Link, upload: &str) -> ApiResult<Response> {
    let u = link_upload(state, link.link.link_id, upload).await?;
    Ok(cbor(StatusCode::OK, &status_of(&u)?))
}

/// `POST /v1/l/{link-id}/uploads/{upload-id}/finalize`.
pub(crate) async fn finalize_drop(
    state: &AppState,
    link: &Link,
    upload: &str,
    bytes: &[u8],
) -> ApiResult<Response> {
    if !bytes.is_empty() {
        return Err(problem(ProblemKind::MalformedBody, "this request takes no body"));
    }
    let u = link_upload(state, link.link.link_id, upload).await?;
    if !u.is_complete() {
        return Err(problem(ProblemKind::UploadIncomplete, "parts are missing"));
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
        .finalize_drop(id, link.link.link_id, now())
        .await
    {
        Ok(_) => {
            let _ = state.blobs.delete_parts(id).await;
            Ok(StatusCode::NO_CONTENT.into_response())
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
    bytes: &[u8],
) -> ApiResult<Response> {
    if !bytes.is_empty() {
        return Err(problem(ProblemKind::MalformedBody, "this request takes no body"));
    }
    let u = link_upload(state, link.link.link_id, upload).await?;
    abort(state, u.upload.upload_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
