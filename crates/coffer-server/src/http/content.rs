//! Content downloads (spec §11.9.7): the blob streamed from the blob store, one byte range at most,
//! `ETag` of the content revision, `If-Range` and `If-None-Match`.

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use coffer_core::api::{self, ByteRange, ProblemKind};
use coffer_core::ids::NodeId;

use super::auth::path_id;
use super::links::LinkAuth;
use super::nodes::{if_none_match, not_found, readable, store_error};
use super::{ApiError, ApiResult, AppState, Session};
use crate::store::{LinkAccess, LinkKind, NodeKind};

/// This module's routes (spec §11.9.7), mounted by [`super::data_routes`]. `HEAD` is served by
/// the `GET` handler without a body.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes/{node-id}/content", get(get_content))
        .route("/v1/l/{link_id}/content", get(link_content))
        .route(
            "/v1/l/{link_id}/nodes/{node_id}/content",
            get(link_node_content),
        )
}

/// What a download serves: a blob of known length under an entity tag.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The blob key.
    pub(crate) key: String,
    /// The blob's length.
    pub(crate) length: u64,
    /// The entity tag, quoted (`"c3"`, `"d<drop-id>"`).
    pub(crate) etag: String,
}

/// How a request asks for the content: the whole of it, a range, or nothing (`304`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Not modified (`If-None-Match` matched).
    NotModified,
    /// Everything (`200`).
    Whole,
    /// One range (`206`).
    Range(ByteRange),
}

impl Want {
    /// Whether the response includes byte 0 of the content (a counted link download, §11.11.5).
    pub(crate) fn includes_start(self) -> bool {
        match self {
            Want::NotModified => false,
            Want::Whole => true,
            Want::Range(r) => r.includes_start(),
        }
    }
}

/// Decides what to send (§11.9.7): `If-None-Match` (304), then `Range` unless `If-Range` names
/// another entity; an unsatisfiable range is `416` with `Content-Range: bytes */<length>`.
pub(crate) fn decide(headers: &HeaderMap, s: &Served) -> Result<Want, Box<Response>> {
    if if_none_match(headers, &s.etag) {
        return Ok(Want::NotModified);
    }
    let Some(range) = headers.get(header::RANGE) else {
        return Ok(Want::Whole);
    };
    if let Some(ir) = headers.get(header::IF_RANGE) {
        if ir.to_str().ok().map(str::trim) != Some(s.etag.as_str()) {
            return Ok(Want::Whole);
        }
    }
    let parsed = range
        .to_str()
        .ok()
        .and_then(|v| ByteRange::parse(v, s.length).ok());
    match parsed {
        Some(r) => Ok(Want::Range(r)),
        None => {
            let mut resp = ApiError::new(ProblemKind::RangeNotSatisfiable, "range not satisfiable")
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&ByteRange::unsatisfied_content_range(s.length)) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Err(Box::new(resp))
        }
    }
}

/// Streams what [`decide`] chose.
pub(crate) async fn send(state: &AppState, s: &Served, want: Want) -> ApiResult<Response> {
    let etag = HeaderValue::from_str(&s.etag)
        .map_err(|_| ApiError::internal("etag", "inconsistent state"))?;
    let range = match want {
        Want::NotModified => {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
        }
        Want::Whole => None,
        Want::Range(r) => Some(r),
    };
    let read = state
        .blobs
        .read(&s.key, range.map(|r| r.first..r.last + 1))
        .await
        .map_err(store_error)?;
    let (status, len) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, read.length),
    };
    let mut resp = Response::new(HttpBody::from_stream(read.stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(api::OCTET_STREAM_CONTENT_TYPE),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, etag);
    if let Some(r) = range {
        if let Ok(v) = HeaderValue::from_str(&r.content_range(s.length)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// Serves a blob: [`decide`] then [`send`].
pub(crate) async fn serve_blob(
    state: &AppState,
    headers: &HeaderMap,
    s: &Served,
) -> ApiResult<Response> {
    match decide(headers, s) {
        Ok(want) => send(state, s, want).await,
        Err(resp) => Ok(*resp),
    }
}

/// The content of a node, if it is a file with content.
pub(crate) fn served_node(node: &crate::store::Node) -> Option<Served> {
    if node.node.kind != NodeKind::File || node.content_revision == 0 {
        return None;
    }
    Some(Served {
        key: node.blob_key.clone()?,
        length: node.content_length,
        etag: format!("\"c{}\"", node.content_revision),
    })
}

/// `GET /v1/nodes/{node-id}/content` (and `HEAD`).
pub(crate) async fn get_content(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = path_id::<NodeId>(&id)?;
    let (node, _) = readable(&state, caller.account_id, id).await?;
    let served = served_node(&node).ok_or_else(not_found)?;
    serve_blob(&state, &headers, &served).await
}

/// Serves a node's content to a link holder (§11.11.5): a response that includes byte 0 of the
/// content (not `HEAD`, not `304`) is a download, decided and counted atomically by the store
/// before anything is sent; once the limit is used up the link answers `410 link-exhausted`.
async fn serve_to_link(
    state: &AppState,
    link: &LinkAuth,
    method: &axum::http::Method,
    headers: &HeaderMap,
    node: &crate::store::Node,
) -> ApiResult<Response> {
    let served = served_node(node).ok_or_else(not_found)?;
    let want = match decide(headers, &served) {
        Ok(w) => w,
        Err(resp) => return Ok(*resp),
    };
    if want.includes_start() && method != axum::http::Method::HEAD {
        match state
            .meta
            .consume_download(link.link.link.link_id, state.now())
            .await
            .map_err(store_error)?
        {
            LinkAccess::Live(_) => {}
            LinkAccess::NotFound => return Err(not_found()),
            LinkAccess::Expired => {
                return Err(ApiError::new(
                    ProblemKind::LinkExpired,
                    "the link has expired",
                ))
            }
            LinkAccess::Exhausted => {
                return Err(ApiError::new(
                    ProblemKind::LinkExhausted,
                    "the link's limit is used up",
                ))
            }
        }
    }
    send(state, &served, want).await
}

/// `GET /v1/l/{link-id}/content` (file links).
async fn link_content(
    link: LinkAuth,
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if link.link.link.kind != LinkKind::File {
        return Err(not_found());
    }
    let node = super::nodes::link_scoped(&state, &link, link.link.link.node_id).await?;
    serve_to_link(&state, &link, &method, &headers, &node).await
}

/// `GET /v1/l/{link-id}/nodes/{node-id}/content` (file and folder links).
async fn link_node_content(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, node)): Path<(String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let node_id: NodeId = path_id(&node)?;
    let node = super::nodes::link_scoped(&state, &link, node_id).await?;
    serve_to_link(&state, &link, &method, &headers, &node).await
}
