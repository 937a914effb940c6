//! The identity directory (spec §11.7).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use coffer_core::account::verify_chain;
use coffer_core::api::{IdentityAppendRequest, IdentityChain, SessionToken, SESSION_IDLE_TTL_SECS};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::AccountId;

use super::auth::{path_id, ClientIp, Session};
use super::body::{Cbor, CborResponse};
use super::error::{record_error, ApiError, ApiResult};
use super::AppState;
use crate::store;

/// Routes of §11.7.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/identities/{account_id}",
        get(read_chain).put(append_identity),
    )
}

fn chain_body(chain: store::IdentityChain) -> IdentityChain {
    IdentityChain {
        account_id: chain.account_id,
        generations: chain.generations.into_iter().map(ByteBuf::from).collect(),
    }
}

/// Whether the request carries a live session (reads with one are not limited per address).
async fn has_session(state: &AppState, headers: &HeaderMap) -> ApiResult<bool> {
    let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| SessionToken::from_header(v).ok())
    else {
        return Ok(false);
    };
    let found = state
        .meta
        .authenticate_session(token.hash().as_bytes(), state.now(), SESSION_IDLE_TTL_SECS)
        .await?;
    Ok(found.is_some())
}

/// `GET /v1/identities/{account-id}`: public; rate-limited per address without a session.
async fn read_chain(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<CborResponse<IdentityChain>> {
    if !has_session(&state, &headers).await? {
        state
            .limits
            .identity_reads_per_address
            .check(&ip, &state.metrics)?;
    }
    let account: AccountId = path_id(&id)?;
    let chain = state
        .meta
        .identity_chain(account)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(CborResponse::ok(chain_body(chain)))
}

/// `PUT /v1/identities/{account-id}`: appends the next generation after checking the extended
/// chain with `account::verify_chain`.
async fn append_identity(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Cbor(req): Cbor<IdentityAppendRequest>,
) -> ApiResult<CborResponse<IdentityChain>> {
    let account: AccountId = path_id(&id)?;
    if account != session.account_id {
        return Err(ApiError::forbidden(
            "only the account itself appends to its identity chain",
        ));
    }
    let chain = state
        .meta
        .identity_chain(account)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let current = (chain.generations.len() as u64).saturating_sub(1);
    let replay = usize::try_from(req.expected_generation)
        .ok()
        .and_then(|g| chain.generations.get(g + 1))
        .is_some_and(|stored| stored.as_slice() == req.signed_identity.as_slice());
    if replay {
        // Replay rule (§11.4.4): the same append, already applied, succeeds again.
        return Ok(CborResponse::ok(chain_body(chain)));
    }
    if req.expected_generation != current {
        return Err(ApiError::revision_mismatch(current));
    }
    let mut extended: Vec<&[u8]> = chain.generations.iter().map(Vec::as_slice).collect();
    extended.push(&req.signed_identity);
    let head = verify_chain(&extended).map_err(|e| record_error("identity chain", &e))?;
    if head.generation != current + 1 {
        return Err(ApiError::invalid_record(
            "the identity is not the next generation",
        ));
    }
    let chain = state
        .meta
        .append_identity(
            account,
            req.expected_generation,
            req.signed_identity.to_vec(),
        )
        .await?;
    Ok(CborResponse::ok(chain_body(chain)))
}
