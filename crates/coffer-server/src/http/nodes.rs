//! Nodes (spec §11.8) and the authorization helpers of the data plane (spec §11.5).
//!
//! Every node belongs to its owner's tree; a share grants its current members read or write
//! access to the subtree below its root. `access` decides what a caller may do with a node:
//! `None` is answered `404` exactly like a node that does not exist.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use coffer_core::account;
use coffer_core::api::{self, Body, ProblemKind};
use coffer_core::encoding::{decode_bounded, ByteBuf};
use coffer_core::ids::{AccountId, NodeId, ShareId};
use coffer_core::primitives::VerifyingKey;
use coffer_core::tree::{self, NodeExpectation, NodeRecord, SignedNode};

use super::auth::path_id;
use super::links::LinkAuth;
use super::{ApiError, ApiResult, AppState, Cbor, Session};
use crate::store::{self, Node, NodeKind, NodeUpdate, NodeWrite, Permission, Removed, StoreError};

/// This module's routes (spec §11.8), mounted by [`super::data_routes`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/root", get(get_root))
        .route("/v1/nodes", axum::routing::post(create_node))
        .route(
            "/v1/nodes/{node-id}",
            get(get_node).put(update_node).delete(delete_node),
        )
        .route("/v1/nodes/{node-id}/children", get(get_children))
        .route("/v1/l/{link_id}/nodes/{node_id}", get(link_node))
        .route(
            "/v1/l/{link_id}/nodes/{node_id}/children",
            get(link_children),
        )
}

/// A problem of `kind` with a fixed detail (never anything about other accounts' data).
pub(crate) fn problem(kind: ProblemKind, detail: &'static str) -> ApiError {
    ApiError::new(kind, detail)
}

/// `404 not-found`, identical for "missing" and "not yours".
pub(crate) fn not_found() -> ApiError {
    ApiError::not_found()
}

/// `422 invalid-record`.
pub(crate) fn invalid_record(detail: &'static str) -> ApiError {
    ApiError::invalid_record(detail)
}

/// Maps a store error to its problem (§11.3).
pub(crate) fn store_error(e: StoreError) -> ApiError {
    e.into()
}

/// A CBOR response with `status` (and `Cache-Control: no-store`).
pub(crate) fn cbor<B: Body>(status: StatusCode, b: &B) -> Response {
    let mut r = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(api::CBOR_CONTENT_TYPE),
        )],
        b.to_bytes(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---- authorization -------------------------------------------------------------------------

/// What a caller may do with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The tree's owner: everything.
    Owner,
    /// A current member of the share containing the node.
    Member {
        /// The member's permission.
        permission: Permission,
        /// The share.
        share_id: ShareId,
        /// The share's root.
        share_root: NodeId,
    },
}

impl Access {
    /// Whether the caller may write (create, update, delete below the share root, upload).
    pub(crate) fn can_write(self) -> bool {
        match self {
            Access::Owner => true,
            Access::Member { permission, .. } => permission == Permission::Write,
        }
    }
}

/// The share whose subtree contains `node_id` (shares do not nest), with its root.
pub(crate) async fn enclosing_share(
    state: &AppState,
    node_id: NodeId,
) -> ApiResult<Option<store::Share>> {
    let path = state.meta.node_path(node_id).await.map_err(store_error)?;
    for id in path {
        if let Some(s) = state.meta.share_by_root(id).await.map_err(store_error)? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// What `caller` may do with `node`, or `None` (answered `404`).
pub(crate) async fn access(
    state: &AppState,
    caller: AccountId,
    node: &Node,
) -> ApiResult<Option<Access>> {
    if node.node.owner == caller {
        return Ok(Some(Access::Owner));
    }
    Ok(enclosing_share(state, node.node.node_id)
        .await?
        .and_then(|s| {
            s.permission_of(&caller).map(|permission| Access::Member {
                permission,
                share_id: s.share.share_id,
                share_root: s.share.root_node_id,
            })
        }))
}

/// A node the caller may read, or `404`.
pub(crate) async fn readable(
    state: &AppState,
    caller: AccountId,
    node_id: NodeId,
) -> ApiResult<(Node, Access)> {
    let node = state
        .meta
        .node(node_id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let a = access(state, caller, &node).await?.ok_or_else(not_found)?;
    Ok((node, a))
}

/// A node the caller may write: `404` if it may not read it, `403` if it may only read.
pub(crate) async fn writable(
    state: &AppState,
    caller: AccountId,
    node_id: NodeId,
) -> ApiResult<(Node, Access)> {
    let (node, a) = readable(state, caller, node_id).await?;
    if !a.can_write() {
        return Err(problem(ProblemKind::Forbidden, "read-only access"));
    }
    Ok((node, a))
}

/// The caller's current identity signing key (§6), from its verified identity chain.
pub(crate) async fn identity_key(
    state: &AppState,
    account_id: AccountId,
) -> ApiResult<VerifyingKey> {
    Ok(current_identity(state, account_id).await?.signing_key)
}

/// An account's current verified identity (§6); `404` for an unknown or deleted account.
pub(crate) async fn current_identity(
    state: &AppState,
    account_id: AccountId,
) -> ApiResult<account::VerifiedIdentity> {
    let chain = state
        .meta
        .identity_chain(account_id)
        .await
        .map_err(store_error)?
        .filter(|c| !c.deleted)
        .ok_or_else(not_found)?;
    account::verify_chain(&chain.generations)
        .map_err(|_| ApiError::internal("identity chain", "stored chain does not verify"))
}

/// Decodes a `SignedNode` strictly without verifying it, to learn where it claims to belong.
pub(crate) fn peek_record(signed: &[u8]) -> ApiResult<NodeRecord> {
    let outer: SignedNode = decode_bounded(signed, tree::MAX_SIGNED_NODE_LEN)
        .map_err(|_| invalid_record("not a SignedNode"))?;
    let record: NodeRecord = decode_bounded(&outer.record, tree::MAX_SIGNED_NODE_LEN)
        .map_err(|_| invalid_record("not a NodeRecord"))?;
    record
        .check_structure()
        .map_err(|_| invalid_record("node record structure"))?;
    Ok(record)
}

/// The stored record of a node, decoded (it was verified when written).
pub(crate) fn stored_record(node: &Node) -> ApiResult<NodeRecord> {
    peek_record(&node.node.record)
        .map_err(|_| ApiError::internal("stored node record", "inconsistent state"))
}

/// Verifies a record's signature under `author` and its place: node id, parent and the parent's
/// current key generation (§7).
pub(crate) fn verify_record(
    signed: &[u8],
    node_id: NodeId,
    parent: Option<(NodeId, u64)>,
    author: &VerifyingKey,
) -> ApiResult<NodeRecord> {
    tree::verify_node(
        signed,
        &NodeExpectation {
            node_id,
            parent,
            key_generation: None,
        },
        &[*author],
    )
    .map_err(|_| invalid_record("node record does not verify for the caller at this place"))
}

/// The parent generation a child must not exceed: the parent's current folder key generation.
pub(crate) fn parent_generation(parent: &Node) -> ApiResult<u64> {
    let r = stored_record(parent)?;
    if !r.is_folder() {
        return Err(invalid_record("the parent is not a folder"));
    }
    Ok(r.key_generation)
}

/// Deletes from the blob store what a metadata removal released. Failures are logged only: the
/// metadata no longer references the bytes, and garbage collection retries.
pub(crate) async fn release(state: &AppState, removed: &Removed) {
    for key in &removed.blob_keys {
        if let Err(e) = state.blobs.delete_blob(key).await {
            tracing::warn!(error = %e, "blob deletion failed; left to garbage collection");
        }
    }
    for u in &removed.uploads {
        if let Err(e) = state.blobs.delete_parts(u.upload.upload_id).await {
            tracing::warn!(error = %e, "part deletion failed; left to garbage collection");
        }
        let _ = state.blobs.delete_blob(&u.blob_key).await;
    }
}

/// Checks a batch of re-keyed node records that a share change applies (§11.10 create and
/// delete): every record is for a stored node of the subtree rooted at `root`, the next revision
/// of it, signed by `author`, with the same parent, kind and content.
pub(crate) async fn check_node_batch(
    state: &AppState,
    records: &[ByteBuf],
    root: NodeId,
    author: &VerifyingKey,
) -> ApiResult<Vec<NodeUpdate>> {
    let mut out = Vec::with_capacity(records.len());
    let mut seen = std::collections::BTreeSet::new();
    for signed in records {
        let peek = peek_record(signed)?;
        if !seen.insert(peek.node_id) {
            return Err(invalid_record("a node appears twice"));
        }
        let stored = state
            .meta
            .node(peek.node_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| invalid_record("a record names an unknown node"))?;
        let path = state
            .meta
            .node_path(peek.node_id)
            .await
            .map_err(store_error)?;
        if !path.contains(&root) {
            return Err(invalid_record("a record lies outside the subtree"));
        }
        let parent = stored.node.parent_id.map(|p| (p, u64::MAX));
        let rec = verify_record(signed, peek.node_id, parent, author)?;
        let old = stored_record(&stored)?;
        if rec.kind != old.kind
            || rec
                .file
                .as_ref()
                .map(|f| (f.content_revision, f.ciphertext_length))
                != old
                    .file
                    .as_ref()
                    .map(|f| (f.content_revision, f.ciphertext_length))
        {
            return Err(invalid_record("a record changes kind or content"));
        }
        out.push(NodeUpdate {
            expected_revision: stored.node.revision,
            node: NodeWrite {
                node_id: stored.node.node_id,
                parent_id: stored.node.parent_id,
                owner: stored.node.owner,
                kind: stored.node.kind,
                revision: stored.node.revision + 1,
                share_id: stored.node.share_id,
                record: signed.to_vec(),
            },
        });
    }
    Ok(out)
}

// ---- responses -------------------------------------------------------------------------------

fn node_etag(node: &Node) -> String {
    format!("\"n{}\"", node.node.revision)
}

/// `200 NodeRecord` with `ETag: "n<revision>"`, or `304` for a matching `If-None-Match`.
pub(crate) fn node_response(headers: &HeaderMap, node: &Node) -> Response {
    let etag = node_etag(node);
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut r = cbor(
        StatusCode::OK,
        &api::NodeResponse {
            signed_node: ByteBuf::from(node.node.record.clone()),
        },
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Whether `If-None-Match` names `etag` (or `*`).
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == etag || t == "*" || t.strip_prefix("W/") == Some(etag))
}

fn written(status: StatusCode, node: &Node) -> Response {
    cbor(
        status,
        &api::NodeWritten {
            node_id: node.node.node_id,
            revision: node.node.revision,
        },
    )
}

// ---- handlers --------------------------------------------------------------------------------

/// `GET /v1/root`.
pub(crate) async fn get_root(
    State(state): State<AppState>,
    caller: Session,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let acct = state
        .meta
        .account(caller.account_id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let (node, _) = readable(&state, caller.account_id, acct.root_node_id).await?;
    Ok(node_response(&headers, &node))
}

/// `GET /v1/nodes/{node-id}`.
pub(crate) async fn get_node(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = path_id::<NodeId>(&id)?;
    let (node, _) = readable(&state, caller.account_id, id).await?;
    Ok(node_response(&headers, &node))
}

/// Parses `limit` and `cursor` of a children listing (§11.4.5). The cursor is returned as sent;
/// [`children_page`] authenticates it.
pub(crate) fn page_params(q: &Option<String>) -> ApiResult<(u32, Option<Vec<u8>>)> {
    let bad = || problem(ProblemKind::InvalidParameter, "invalid query parameter");
    let mut limit: Option<u32> = None;
    let mut cursor: Option<Vec<u8>> = None;
    if let Some(q) = q {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').ok_or_else(bad)?;
            match k {
                "limit" if limit.is_none() => {
                    if v.is_empty() || v.len() > 4 || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    let n: u32 = v.parse().map_err(|_| bad())?;
                    if n == 0 || u64::from(n) > api::MAX_PAGE_LIMIT {
                        return Err(bad());
                    }
                    limit = Some(n);
                }
                "cursor" if cursor.is_none() => {
                    let c = coffer_core::encoding::b64url_decode(v).map_err(|_| bad())?;
                    if c.is_empty() || c.len() > 64 {
                        return Err(bad());
                    }
                    cursor = Some(c);
                }
                _ => return Err(bad()),
            }
        }
    }
    Ok((limit.unwrap_or(api::DEFAULT_PAGE_LIMIT as u32), cursor))
}

/// One page of children as a `NodeList`, continuing after the node an authentic `cursor` of
/// this folder names (`400 invalid-parameter` for any other cursor, §11.4.5).
pub(crate) async fn children_page(
    state: &AppState,
    parent: &Node,
    limit: u32,
    cursor: Option<&[u8]>,
) -> ApiResult<api::NodeList> {
    let after = match cursor {
        Some(c) => Some(
            state
                .cursor_key
                .open(parent.node.node_id, c)
                .ok_or_else(|| problem(ProblemKind::InvalidParameter, "invalid cursor"))?,
        ),
        None => None,
    };
    let mut kids = if parent.node.kind == NodeKind::Folder {
        state
            .meta
            .children(parent.node.node_id, after, limit + 1)
            .await
            .map_err(store_error)?
    } else {
        Vec::new()
    };
    let next_cursor = if kids.len() > limit as usize {
        kids.truncate(limit as usize);
        kids.last()
            .map(|n| ByteBuf::from(state.cursor_key.seal(parent.node.node_id, n.node.node_id)))
    } else {
        None
    };
    Ok(api::NodeList {
        parent_id: parent.node.node_id,
        records: kids
            .into_iter()
            .map(|n| ByteBuf::from(n.node.record))
            .collect(),
        next_cursor,
    })
}

/// `GET /v1/nodes/{node-id}/children?cursor=&limit=`.
pub(crate) async fn get_children(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let id = path_id::<NodeId>(&id)?;
    let (limit, after) = page_params(&q)?;
    let (node, _) = readable(&state, caller.account_id, id).await?;
    let list = children_page(&state, &node, limit, after.as_deref()).await?;
    Ok(cbor(StatusCode::OK, &list))
}

/// `POST /v1/nodes`: a new folder (files are created by upload finalize, §11.9.5).
pub(crate) async fn create_node(
    State(state): State<AppState>,
    caller: Session,
    Cbor(req): Cbor<api::NodeCreateRequest>,
) -> ApiResult<Response> {
    let peek = peek_record(&req.signed_node)?;
    let parent_id = peek
        .parent_id
        .ok_or_else(|| invalid_record("a root cannot be created"))?;
    let (parent, _) = writable(&state, caller.account_id, parent_id).await?;
    let generation = parent_generation(&parent)?;
    let key = identity_key(&state, caller.account_id).await?;
    let rec = verify_record(
        &req.signed_node,
        peek.node_id,
        Some((parent_id, generation)),
        &key,
    )?;
    if !rec.is_folder() {
        return Err(invalid_record(
            "a file receives its record with its content (upload finalize)",
        ));
    }
    if let Some(existing) = state.meta.node(rec.node_id).await.map_err(store_error)? {
        return if existing.node.record == req.signed_node.as_slice()
            && access(&state, caller.account_id, &existing)
                .await?
                .is_some()
        {
            Ok(written(StatusCode::CREATED, &existing))
        } else {
            Err(problem(ProblemKind::AlreadyExists, "node id in use"))
        };
    }
    let write = NodeWrite {
        node_id: rec.node_id,
        parent_id: Some(parent_id),
        owner: parent.node.owner,
        kind: NodeKind::Folder,
        revision: 1,
        share_id: None,
        record: req.signed_node.to_vec(),
    };
    let node = state
        .meta
        .create_node(write, Some(state.config.file.quotas.max_nodes))
        .await
        .map_err(store_error)?;
    Ok(written(StatusCode::CREATED, &node))
}

/// `PUT /v1/nodes/{node-id}`: rename, move or re-key.
pub(crate) async fn update_node(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<api::NodeUpdateRequest>,
) -> ApiResult<Response> {
    let id = path_id::<NodeId>(&id)?;
    let (stored, acc) = writable(&state, caller.account_id, id).await?;
    let old = stored_record(&stored)?;
    let peek = peek_record(&req.signed_node)?;
    if peek.node_id != id {
        return Err(invalid_record("the record is for another node"));
    }
    // A member may not touch the share root.
    if let Access::Member { share_root, .. } = acc {
        if share_root == id {
            return Err(problem(
                ProblemKind::Forbidden,
                "members may not change the share root",
            ));
        }
    }
    let new_parent = peek.parent_id;
    let parent = match (old.parent_id, new_parent) {
        (None, None) => None,
        (None, Some(_)) | (Some(_), None) => {
            return Err(problem(ProblemKind::Forbidden, "the root cannot be moved"))
        }
        (Some(old_p), Some(new_p)) => {
            let (np, np_acc) = writable(&state, caller.account_id, new_p).await?;
            if new_p != old_p {
                // A move: both parents writable, same tree, no cycle, share boundaries.
                writable(&state, caller.account_id, old_p).await?;
                if np.node.owner != stored.node.owner {
                    return Err(invalid_record("the new parent is in another tree"));
                }
                let path = state.meta.node_path(new_p).await.map_err(store_error)?;
                if path.contains(&id) {
                    return Err(invalid_record("a node cannot move below itself"));
                }
                if state
                    .meta
                    .share_by_root(id)
                    .await
                    .map_err(store_error)?
                    .is_some()
                {
                    return Err(problem(
                        ProblemKind::Forbidden,
                        "a share root cannot be moved",
                    ));
                }
                let from = enclosing_share(&state, old_p)
                    .await?
                    .map(|s| s.share.share_id);
                let to = enclosing_share(&state, new_p)
                    .await?
                    .map(|s| s.share.share_id);
                if from != to && !matches!((acc, np_acc), (Access::Owner, Access::Owner)) {
                    return Err(problem(
                        ProblemKind::Forbidden,
                        "only the owner moves across a share boundary",
                    ));
                }
            }
            Some((new_p, parent_generation(&np)?))
        }
    };
    let key = identity_key(&state, caller.account_id).await?;
    let rec = verify_record(&req.signed_node, id, parent, &key)?;
    if rec.kind != old.kind
        || rec
            .file
            .as_ref()
            .map(|f| (f.content_revision, f.ciphertext_length))
            != old
                .file
                .as_ref()
                .map(|f| (f.content_revision, f.ciphertext_length))
    {
        return Err(invalid_record(
            "an update keeps the kind and the content (content changes by upload)",
        ));
    }
    if rec.metadata_revision < old.metadata_revision {
        return Err(invalid_record("the metadata revision went down"));
    }
    // Replay of the applied update.
    if stored.node.record == req.signed_node.as_slice()
        && stored.node.revision == req.expected_revision.saturating_add(1)
    {
        return Ok(written(StatusCode::OK, &stored));
    }
    if stored.node.revision != req.expected_revision {
        return Err(ApiError::revision_mismatch(stored.node.revision));
    }
    let update = NodeUpdate {
        expected_revision: req.expected_revision,
        node: NodeWrite {
            node_id: id,
            parent_id: rec.parent_id,
            owner: stored.node.owner,
            kind: stored.node.kind,
            revision: req.expected_revision + 1,
            share_id: stored.node.share_id,
            record: req.signed_node.to_vec(),
        },
    };
    let node = state.meta.update_node(update).await.map_err(store_error)?;
    Ok(written(StatusCode::OK, &node))
}

/// `DELETE /v1/nodes/{node-id}`: the node and its whole subtree.
pub(crate) async fn delete_node(
    State(state): State<AppState>,
    caller: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<api::NodeDeleteRequest>,
) -> ApiResult<Response> {
    let id = path_id::<NodeId>(&id)?;
    let (stored, acc) = writable(&state, caller.account_id, id).await?;
    let Some(parent_id) = stored.node.parent_id else {
        return Err(problem(
            ProblemKind::Forbidden,
            "the root cannot be deleted",
        ));
    };
    if let Access::Member { share_root, .. } = acc {
        if share_root == id {
            return Err(problem(
                ProblemKind::Forbidden,
                "members may not delete the share root",
            ));
        }
    }
    writable(&state, caller.account_id, parent_id).await?;
    if stored.node.revision != req.expected_revision {
        return Err(ApiError::revision_mismatch(stored.node.revision));
    }
    let removed = state
        .meta
        .delete_subtree(id, req.expected_revision)
        .await
        .map_err(store_error)?;
    release(&state, &removed).await;
    Ok(cbor(
        StatusCode::OK,
        &api::NodeDeleted {
            node_id: id,
            deleted_nodes: removed.nodes,
        },
    ))
}

// ---- reading through a link (§11.11.5) ----------------------------------------------------------

/// A node a link gives access to *at the time of the request*: the link's node itself, or for a
/// folder link a node of its subtree (still in the link owner's tree). Anything else is `404`,
/// and so is every node of a drop link.
pub(crate) async fn link_scoped(
    state: &AppState,
    link: &LinkAuth,
    node_id: NodeId,
) -> ApiResult<Node> {
    let l = &link.link.link;
    let in_scope = match l.kind {
        store::LinkKind::Drop => false,
        store::LinkKind::File => node_id == l.node_id,
        store::LinkKind::Folder => {
            node_id == l.node_id
                || state
                    .meta
                    .node_path(node_id)
                    .await
                    .map_err(store_error)?
                    .contains(&l.node_id)
        }
    };
    if !in_scope {
        return Err(not_found());
    }
    state
        .meta
        .node(node_id)
        .await
        .map_err(store_error)?
        .filter(|n| n.node.owner == l.owner)
        .ok_or_else(not_found)
}

/// `GET /v1/l/{link-id}/nodes/{node-id}`.
async fn link_node(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, node)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let node_id: NodeId = path_id(&node)?;
    let node = link_scoped(&state, &link, node_id).await?;
    Ok(node_response(&headers, &node))
}

/// `GET /v1/l/{link-id}/nodes/{node-id}/children?cursor=&limit=` (folder links).
async fn link_children(
    link: LinkAuth,
    State(state): State<AppState>,
    Path((_, node)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let node_id: NodeId = path_id(&node)?;
    let (limit, after) = page_params(&q)?;
    if link.link.link.kind != store::LinkKind::Folder {
        return Err(not_found());
    }
    let node = link_scoped(&state, &link, node_id).await?;
    let list = children_page(&state, &node, limit, after.as_deref()).await?;
    Ok(cbor(StatusCode::OK, &list))
}
