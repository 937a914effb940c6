//! Links (spec §11.11): owner endpoints (create, list, revoke, rotate, re-seal), anonymous resolve and
//! unlock, and the [`LinkAuth`] extractor that every other `/v1/l/{link-id}/...` endpoint uses.
//!
//! Link ids are capabilities: they never appear in logs or metrics (the framing middleware logs
//! route templates only).

use axum::extract::{FromRequestParts, Path, RawPathParams, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use coffer_core::api::{
    LinkAccessToken, LinkCreateRequest, LinkCreated, LinkEntry, LinkKind as ApiLinkKind, LinkList,
    LinkParams, LinkResealRequest, LinkResolved, LinkRotateRequest, LinkUnlockRequest,
    LinkUnlocked, ProblemKind, LINK_ACCESS_TTL_SECS,
};
use coffer_core::encoding::{ByteBuf, Bytes};
use coffer_core::ids::{AccountId, LinkId};
use coffer_core::link::{LinkRecord, MAX_OWNER_ENTRY_LEN};
use coffer_core::seal::SEAL_OVERHEAD;
use rand_core::OsRng;

use super::auth::{path_id, ClientIp, Session};
use super::body::{no_content, Cbor, CborResponse, NoBody};
use super::error::{record_error, ApiError, ApiResult};
use super::{delete_removed_blobs, AppState};
use crate::store::{self, Link, LinkAccess, LinkKind, LinkWrite, NodeKind};

/// Routes of §11.11.2–§11.11.4 (owner endpoints, resolve, unlock).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/links", post(create_link).get(list_links))
        .route("/v1/links/{link_id}", delete(revoke_link).put(reseal_link))
        .route("/v1/links/{link_id}/rotate", post(rotate_link))
        .route("/v1/l/{link_id}", get(resolve))
        .route("/v1/l/{link_id}/unlock", post(unlock))
}

fn api_kind(k: LinkKind) -> ApiLinkKind {
    match k {
        LinkKind::File => ApiLinkKind::File,
        LinkKind::Folder => ApiLinkKind::Folder,
        LinkKind::Drop => ApiLinkKind::Drop,
    }
}

fn store_kind(k: ApiLinkKind) -> LinkKind {
    match k {
        ApiLinkKind::File => LinkKind::File,
        ApiLinkKind::Folder => LinkKind::Folder,
        ApiLinkKind::Drop => LinkKind::Drop,
    }
}

/// Checks new link parameters for the caller (§11.11.2 create; also rotate and recovery's link
/// replacements) and returns the link to store.
pub(crate) async fn check_link_params(
    state: &AppState,
    owner: AccountId,
    p: &LinkParams,
    now: u64,
) -> ApiResult<LinkWrite> {
    let node = state
        .meta
        .node(p.node_id)
        .await?
        .filter(|n| n.node.owner == owner)
        .ok_or_else(ApiError::not_found)?;
    let kind_ok = match p.kind {
        ApiLinkKind::File => node.node.kind == NodeKind::File,
        ApiLinkKind::Folder | ApiLinkKind::Drop => node.node.kind == NodeKind::Folder,
    };
    if !kind_ok {
        return Err(ApiError::invalid_record(
            "file links name a file, folder and drop links a folder",
        ));
    }
    if p.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::invalid_parameter(
            "expires-at is not in the future",
        ));
    }
    let record = LinkRecord::validate_for_storage(&p.link_record, p.link_id)
        .map_err(|e| record_error("link record", &e))?;
    if !p.matches_record(&record) {
        return Err(ApiError::invalid_record(
            "the link record does not agree with the link parameters",
        ));
    }
    let entry_len = p.owner_entry.len();
    if entry_len <= SEAL_OVERHEAD || entry_len > MAX_OWNER_ENTRY_LEN + SEAL_OVERHEAD {
        return Err(ApiError::invalid_record(
            "the owner entry is not a sealed owner link entry",
        ));
    }
    Ok(LinkWrite {
        link_id: p.link_id,
        owner,
        node_id: p.node_id,
        kind: store_kind(p.kind),
        link_record: p.link_record.to_vec(),
        owner_entry: p.owner_entry.to_vec(),
        verifier_hash: p.verifier_hash.as_ref().map(|h| *h.as_bytes()),
        drop_secret_hash: None,
        expires_at: p.expires_at,
        max_downloads: p.max_downloads,
        created_at: now,
    })
}

/// Whether a stored link is the one `w` would create (replay rule, §11.4.4).
fn same_link(stored: &Link, w: &LinkWrite) -> bool {
    let s = &stored.link;
    s.link_id == w.link_id
        && s.owner == w.owner
        && s.node_id == w.node_id
        && s.kind == w.kind
        && s.link_record == w.link_record
        && s.owner_entry == w.owner_entry
        && s.verifier_hash == w.verifier_hash
        && s.expires_at == w.expires_at
        && s.max_downloads == w.max_downloads
}

async fn create_link(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<LinkCreateRequest>,
) -> ApiResult<CborResponse<LinkCreated>> {
    let now = state.now();
    let write = check_link_params(&state, session.account_id, &req.link, now).await?;
    match state
        .meta
        .create_link(write.clone(), Some(state.config.file.quotas.max_links))
        .await
    {
        Ok(link) => Ok(CborResponse::created(LinkCreated {
            link_id: link.link.link_id,
            created_at: link.link.created_at,
        })),
        Err(store::StoreError::AlreadyExists) => match state.meta.link(write.link_id).await? {
            Some(stored) if same_link(&stored, &write) => Ok(CborResponse::created(LinkCreated {
                link_id: stored.link.link_id,
                created_at: stored.link.created_at,
            })),
            _ => Err(store::StoreError::AlreadyExists.into()),
        },
        Err(e) => Err(e.into()),
    }
}

async fn list_links(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<CborResponse<LinkList>> {
    let links = state.meta.links_of(session.account_id).await?;
    let links = links
        .into_iter()
        .map(|l| LinkEntry {
            link_id: l.link.link_id,
            node_id: l.link.node_id,
            kind: api_kind(l.link.kind),
            created_at: l.link.created_at,
            expires_at: l.link.expires_at,
            max_downloads: l.link.max_downloads,
            downloads: l.downloads,
            password: l.link.verifier_hash.is_some(),
            link_record: ByteBuf::from(l.link.link_record),
            owner_entry: ByteBuf::from(l.link.owner_entry),
        })
        .collect();
    Ok(CborResponse::ok(LinkList { links }))
}

async fn revoke_link(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    _body: NoBody,
) -> ApiResult<Response> {
    let link_id: LinkId = path_id(&id)?;
    let removed = state.meta.revoke_link(session.account_id, link_id).await?;
    delete_removed_blobs(&state, &removed).await;
    Ok(no_content())
}

async fn rotate_link(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<LinkRotateRequest>,
) -> ApiResult<CborResponse<LinkCreated>> {
    let old_id: LinkId = path_id(&id)?;
    let now = state.now();
    let old = state
        .meta
        .link(old_id)
        .await?
        .filter(|l| l.link.owner == session.account_id);
    let Some(old) = old else {
        // Replay rule: the rotation was applied, the old link is gone and the new one is the
        // submitted one.
        if let Some(new) = state.meta.link(req.link.link_id).await? {
            let write = check_link_params(&state, session.account_id, &req.link, now).await?;
            if same_link(&new, &write) {
                return Ok(CborResponse::created(LinkCreated {
                    link_id: new.link.link_id,
                    created_at: new.link.created_at,
                }));
            }
        }
        return Err(ApiError::not_found());
    };
    if req.link.link_id == old_id {
        return Err(ApiError::invalid_parameter(
            "the new link id must differ from the old one",
        ));
    }
    if req.link.node_id != old.link.node_id || store_kind(req.link.kind) != old.link.kind {
        return Err(ApiError::invalid_parameter(
            "a rotated link keeps its node and kind",
        ));
    }
    let write = check_link_params(&state, session.account_id, &req.link, now).await?;
    let (link, removed) = state
        .meta
        .rotate_link(session.account_id, old_id, write)
        .await?;
    delete_removed_blobs(&state, &removed).await;
    Ok(CborResponse::created(LinkCreated {
        link_id: link.link.link_id,
        created_at: link.link.created_at,
    }))
}

/// `PUT /v1/links/{link-id}` (§11.11.7): replaces the caller's link record by the same link
/// re-sealed for a new key generation; nothing else changes.
async fn reseal_link(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<LinkResealRequest>,
) -> ApiResult<Response> {
    let link_id: LinkId = path_id(&id)?;
    let stored = state
        .meta
        .link(link_id)
        .await?
        .filter(|l| l.link.owner == session.account_id)
        .ok_or_else(ApiError::not_found)?;
    let new = LinkRecord::validate_for_storage(&req.link_record, link_id)
        .map_err(|e| record_error("link record", &e))?;
    let old = LinkRecord::parse(&stored.link.link_record)
        .map_err(|e| ApiError::internal("stored link record", e))?;
    if !new.is_reseal_of(&old) {
        return Err(ApiError::invalid_record(
            "a re-sealed link record keeps the link's id, node and policy",
        ));
    }
    state
        .meta
        .reseal_link(session.account_id, link_id, req.link_record.to_vec())
        .await?;
    Ok(no_content())
}

// ---- anonymous access (§11.11.3–§11.11.6) ---------------------------------------------------

fn link_locked() -> ApiError {
    ApiError::new(
        ProblemKind::LinkLocked,
        "a valid link access token is required",
    )
    .with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"coffer-link\""),
    )
}

/// The state of a live link for an anonymous request, after rate limits, existence (`404`),
/// expiry and exhaustion (`410`).
async fn live_link(state: &AppState, ip: std::net::IpAddr, link_id: LinkId) -> ApiResult<Link> {
    let m = &state.metrics;
    state.limits.link_requests_per_address.check(&ip, m)?;
    state.limits.link_requests_per_link.check(&link_id, m)?;
    match state.meta.link_access(link_id, state.now()).await? {
        LinkAccess::Live(link) => Ok(*link),
        LinkAccess::NotFound => Err(ApiError::not_found()),
        LinkAccess::Expired => Err(ApiError::new(
            ProblemKind::LinkExpired,
            "the link has expired",
        )),
        LinkAccess::Exhausted => Err(ApiError::new(
            ProblemKind::LinkExhausted,
            "the link's limit is used up",
        )),
    }
}

/// Whether the request carries a valid link access token for this link: `None` without an
/// `Authorization` header, `Some(false)` for a malformed, unknown, expired or foreign token.
async fn link_token(state: &AppState, parts: &Parts, link_id: LinkId) -> ApiResult<Option<bool>> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| LinkAccessToken::from_header(v).ok())
    else {
        return Ok(Some(false));
    };
    let valid = state
        .meta
        .link_token_valid(token.hash().as_bytes(), link_id, state.now())
        .await?;
    Ok(Some(valid))
}

/// An authorized anonymous link request (§11.4.1 step 3 for `/v1/l/{link-id}/...`): rate
/// limits, the link's existence (`404`), expiry and exhaustion (`410`), then for a password link
/// a valid link access token (`401 link-locked`). Data-plane link endpoints take this first.
#[derive(Debug, Clone)]
pub struct LinkAuth {
    /// The live link.
    pub link: Link,
    /// The client address (for drop-creation limits).
    pub ip: std::net::IpAddr,
}

impl FromRequestParts<AppState> for LinkAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_parameter("malformed path"))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "link_id")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| ApiError::internal("link route", "no link_id parameter"))?;
        let link_id: LinkId = path_id(&raw)?;
        let link = live_link(state, ip, link_id).await?;
        if link.link.verifier_hash.is_some()
            && link_token(state, parts, link_id).await? != Some(true)
        {
            return Err(link_locked());
        }
        Ok(LinkAuth { link, ip })
    }
}

/// `GET /v1/l/{link-id}`: a locked password link answers with its password parameters only.
async fn resolve(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    parts: axum::http::HeaderMap,
) -> ApiResult<CborResponse<LinkResolved>> {
    let link_id: LinkId = path_id(&id)?;
    let link = live_link(&state, ip, link_id).await?;
    let record = LinkRecord::parse(&link.link.link_record)
        .map_err(|e| ApiError::internal("stored link record", e.class()))?;
    let locked = if link.link.verifier_hash.is_some() {
        let token = match parts.get(AUTHORIZATION) {
            None => None,
            Some(v) => Some(
                match v
                    .to_str()
                    .ok()
                    .and_then(|v| LinkAccessToken::from_header(v).ok())
                {
                    Some(t) => {
                        state
                            .meta
                            .link_token_valid(t.hash().as_bytes(), link_id, state.now())
                            .await?
                    }
                    None => false,
                },
            ),
        };
        match token {
            None => true,
            Some(true) => false,
            Some(false) => return Err(link_locked()),
        }
    } else {
        false
    };
    let node = if locked || link.link.kind == LinkKind::Drop {
        None
    } else {
        let node = state
            .meta
            .node(link.link.node_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        Some(ByteBuf::from(node.node.record))
    };
    let downloads_remaining = link
        .link
        .max_downloads
        .map(|max| max.saturating_sub(link.downloads));
    Ok(CborResponse::ok(LinkResolved {
        link_id,
        kind: api_kind(link.link.kind),
        password: record.password,
        link_record: (!locked).then(|| ByteBuf::from(link.link.link_record)),
        node,
        expires_at: link.link.expires_at,
        downloads_remaining,
    }))
}

/// `POST /v1/l/{link-id}/unlock`: constant-time comparison of SHA-256(verifier) with the stored
/// hash; failures count per link and per address, and once either limit is reached every
/// attempt is `429` whether or not the verifier is right.
async fn unlock(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Cbor(req): Cbor<LinkUnlockRequest>,
) -> ApiResult<CborResponse<LinkUnlocked>> {
    let link_id: LinkId = path_id(&id)?;
    state.limits.check_unlock(&link_id, &ip, &state.metrics)?;
    let link = live_link(&state, ip, link_id).await?;
    let Some(hash) = link.link.verifier_hash else {
        return Err(ApiError::invalid_parameter("the link has no password"));
    };
    if !req.verifier.matches_hash(&Bytes(hash)) {
        state.limits.record_unlock_failure(link_id, ip);
        return Err(ApiError::new(
            ProblemKind::LinkUnlockFailed,
            "the verifier does not match",
        ));
    }
    let now = state.now();
    let expires_at = link
        .link
        .expires_at
        .map_or(now + LINK_ACCESS_TTL_SECS, |e| {
            e.min(now + LINK_ACCESS_TTL_SECS)
        });
    let token = LinkAccessToken::generate(&mut OsRng);
    state
        .meta
        .create_link_token(*token.hash().as_bytes(), link_id, expires_at)
        .await?;
    Ok(CborResponse::ok(LinkUnlocked {
        access_token: token,
        expires_at,
    }))
}
