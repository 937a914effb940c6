//! Accounts and sessions (spec §11.6): registration, login, sessions, account and user lookup,
//! re-authentication, password change, compromise recovery and account deletion.
//!
//! OPAQUE runs through coffer-core's server functions; the server's state between the two
//! messages of each handshake is kept in the metadata store under a random handshake id with
//! `HANDSHAKE_TTL_SECS` of life, consumed by the finish. Every record a client uploads is checked
//! with coffer-core before it is stored.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use coffer_core::account::{
    self, server_login_finish, server_login_start, server_registration_finish,
    server_registration_start, OpaqueIdentities, ServerLoginState,
};
use coffer_core::api::{
    AccountDeleteFinishRequest, AccountInfo, AccountUpdated, LoginFinishRequest,
    LoginFinishResponse, LoginStartRequest, LoginStartResponse, PasswordChangeFinishRequest,
    ProblemKind, ReauthPurpose, ReauthStartRequest, ReauthStartResponse, RegisterFinishRequest,
    RegisterFinishResponse, RegisterStartRequest, RegisterStartResponse, SessionInfo, SessionList,
    SessionToken, SessionsRevoked, UserLookupResponse, Username, HANDSHAKE_TTL_SECS,
    SESSION_IDLE_TTL_SECS, SESSION_MAX_TTL_SECS,
};
use coffer_core::encoding::{ByteBuf, Bytes};
use coffer_core::ids::AccountId;
use coffer_core::tree;
use rand_core::{OsRng, RngCore};

use super::auth::{path_id16, ClientIp, Session};
use super::body::{no_content, Cbor, CborResponse, NoBody};
use super::error::{record_error, ApiError, ApiResult};
use super::{delete_removed_blobs, AppState};
use crate::store::{self, Handshake, HandshakeKind, NewAccount, NewSession, NodeKind, NodeWrite};

/// Routes of §11.6.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/register/start", post(register_start))
        .route("/v1/accounts/register/finish", post(register_finish))
        .route("/v1/sessions/login/start", post(login_start))
        .route("/v1/sessions/login/finish", post(login_finish))
        .route("/v1/sessions/logout", post(logout))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{session_id}", delete(revoke_session))
        .route("/v1/sessions/revoke-others", post(revoke_others))
        .route("/v1/account", get(account_info))
        .route("/v1/users/{username}", get(user_lookup))
        .route("/v1/account/password/start", post(password_start))
        .route("/v1/account/password/finish", post(password_finish))
        .route("/v1/account/recover/start", post(recover_start))
        .route(
            "/v1/account/recover/finish",
            post(super::recovery::recover_finish),
        )
        .route("/v1/account/delete/start", post(delete_start))
        .route("/v1/account/delete/finish", post(delete_finish))
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b
}

/// The OPAQUE identities of a user on this server (§6.2).
pub(crate) fn identities<'a>(state: &'a AppState, user: &'a str) -> OpaqueIdentities<'a> {
    OpaqueIdentities {
        user_name: user,
        server_identity: &state.config.file.server.identity,
    }
}

fn opaque_malformed(what: &'static str) -> impl FnOnce(coffer_core::Error) -> ApiError {
    move |e| ApiError::malformed(format!("{what}: {}", e.class()))
}

// ---- registration (§11.6.2) -----------------------------------------------------------------

async fn register_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Cbor(req): Cbor<RegisterStartRequest>,
) -> ApiResult<CborResponse<RegisterStartResponse>> {
    state
        .limits
        .register_per_address
        .check(&ip, &state.metrics)?;
    let now = state.now();
    let username = req.username.as_str();
    let response = server_registration_start(
        &state.opaque,
        &req.registration_request,
        &identities(&state, username),
    )
    .map_err(opaque_malformed("registration request"))?;
    let account_id = AccountId::generate(&mut OsRng);
    let expires_at = now + HANDSHAKE_TTL_SECS;
    state
        .meta
        .put_handshake(
            Handshake {
                id: *account_id.as_bytes(),
                kind: HandshakeKind::Registration,
                username: Some(username.to_owned()),
                account_id: Some(account_id),
                session_id: None,
                state: Vec::new(),
                expires_at,
            },
            now,
        )
        .await?;
    Ok(CborResponse::created(RegisterStartResponse {
        account_id,
        registration_response: ByteBuf::from(response),
        expires_at,
    }))
}

/// Checks a registration's records (§11.6.2) and returns the account to create.
fn check_registration(req: &RegisterFinishRequest, now: u64) -> ApiResult<NewAccount> {
    let password_file = server_registration_finish(&req.registration_upload)
        .map_err(|e| record_error("registration upload", &e))?;
    let identity_record = account::parse_signed_identity(&req.signed_identity)
        .map_err(|e| record_error("signed identity", &e))?;
    let identity = account::check_new_account(
        &req.account_id,
        &identity_record.user_name,
        &req.key_bundle,
        &req.signed_identity,
    )
    .map_err(|e| record_error("key bundle or identity", &e))?;
    // The username of the account is the identity's user name, which must be a valid username.
    Username::new(&identity.user_name)
        .map_err(|_| ApiError::invalid_record("the identity's user name is not a username"))?;
    let root =
        tree::verify_node_signature(&req.root_node).map_err(|e| record_error("root node", &e))?;
    let root_ok = root.parent_id.is_none()
        && root.is_folder()
        && root.key_generation == 0
        && root.file.is_none()
        && root.author.0 == identity.signing_key.to_bytes();
    if !root_ok {
        return Err(ApiError::invalid_record(
            "the root node must be a parentless folder at generation 0 signed by identity generation 0",
        ));
    }
    Ok(NewAccount {
        account_id: req.account_id,
        username: identity.user_name,
        password_file,
        // The §6.4 KeyBundle, kept whole (it carries the sealed account secrets).
        key_bundle: req.key_bundle.to_vec(),
        identity: req.signed_identity.to_vec(),
        root: NodeWrite {
            node_id: root.node_id,
            parent_id: None,
            owner: req.account_id,
            kind: NodeKind::Folder,
            revision: 0,
            share_id: None,
            record: req.root_node.to_vec(),
        },
        created_at: now,
    })
}

async fn register_finish(
    State(state): State<AppState>,
    Cbor(req): Cbor<RegisterFinishRequest>,
) -> ApiResult<CborResponse<RegisterFinishResponse>> {
    let now = state.now();
    let new = check_registration(&req, now)?;
    match state.meta.create_account(new.clone(), now).await {
        Ok(acc) => Ok(CborResponse::created(RegisterFinishResponse {
            account_id: acc.account_id,
            account_revision: acc.revision,
        })),
        Err(store::StoreError::AlreadyExists) => {
            // Replay rule (§11.4.4): the same registration, already applied, succeeds again.
            let existing = state.meta.account(req.account_id).await?;
            let chain = state.meta.identity_chain(req.account_id).await?;
            match (existing, chain) {
                (Some(acc), Some(chain))
                    if acc.revision == 0
                        && acc.username == new.username
                        && acc.password_file == new.password_file
                        && acc.key_bundle == new.key_bundle
                        && chain.generations.first() == Some(&new.identity) =>
                {
                    Ok(CborResponse::created(RegisterFinishResponse {
                        account_id: acc.account_id,
                        account_revision: acc.revision,
                    }))
                }
                _ => Err(ApiError::new(
                    ProblemKind::AlreadyExists,
                    "the account id is in use",
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}

// ---- login (§11.6.3) ------------------------------------------------------------------------

async fn login_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Cbor(req): Cbor<LoginStartRequest>,
) -> ApiResult<CborResponse<LoginStartResponse>> {
    let username = req.username.as_str().to_owned();
    let m = &state.metrics;
    state.limits.login_failures_per_user.check(&username, m)?;
    state
        .limits
        .login_per_user_address
        .check(&(username.clone(), ip), m)?;
    state.limits.login_per_user.check(&username, m)?;
    state.limits.login_per_address.check(&ip, m)?;
    let now = state.now();
    let account = state.meta.account_by_username(&username).await?;
    // For an unknown user, OPAQUE answers with the fake credential response of RFC 9807
    // (derived from the OPRF seed and the credential identifier): nothing tells them apart.
    let (login_state, response) = server_login_start(
        &state.opaque,
        account.as_ref().map(|a| a.password_file.as_slice()),
        &req.credential_request,
        &identities(&state, &username),
        &mut OsRng,
    )
    .map_err(|e| match e {
        coffer_core::Error::Decode(_) | coffer_core::Error::InvalidArgument(_) => {
            ApiError::malformed("credential request: malformed")
        }
        other => ApiError::internal("login start", other),
    })?;
    let login_id = random16();
    let expires_at = now + HANDSHAKE_TTL_SECS;
    state
        .meta
        .put_handshake(
            Handshake {
                id: login_id,
                kind: HandshakeKind::Login,
                username: Some(username),
                account_id: account.map(|a| a.account_id),
                session_id: None,
                state: login_state.as_bytes().to_vec(),
                expires_at,
            },
            now,
        )
        .await?;
    Ok(CborResponse::ok(LoginStartResponse {
        login_id: Bytes(login_id),
        credential_response: ByteBuf::from(response),
        expires_at,
    }))
}

fn auth_failed() -> ApiError {
    ApiError::new(
        ProblemKind::AuthenticationFailed,
        "the login did not complete",
    )
}

async fn login_finish(
    State(state): State<AppState>,
    Cbor(req): Cbor<LoginFinishRequest>,
) -> ApiResult<CborResponse<LoginFinishResponse>> {
    let now = state.now();
    let hs = state
        .meta
        .take_handshake(req.login_id.0, HandshakeKind::Login, now)
        .await?
        .ok_or_else(auth_failed)?;
    let username = hs.username.clone().unwrap_or_default();
    let login_state = ServerLoginState::from_bytes(&hs.state);
    let proof = server_login_finish(&login_state, &req.credential_finalization);
    let account_id = match (proof, hs.account_id) {
        (Ok(_session_key), Some(id)) => Some(id),
        _ => None,
    };
    let fail = |state: &AppState| {
        state.limits.login_failures_per_user.record(username);
        state.metrics.login(false);
        auth_failed()
    };
    let Some(account_id) = account_id else {
        return Err(fail(&state));
    };
    let token = SessionToken::generate(&mut OsRng);
    let session_id = random16();
    let expires_at = now + SESSION_MAX_TTL_SECS;
    // The session and the account it answers with come from one store call; an account deleted
    // since the login started fails like a wrong password.
    let account = match state
        .meta
        .create_session(NewSession {
            session_id,
            account_id,
            token_hash: *token.hash().as_bytes(),
            label: req.session_label.clone(),
            created_at: now,
            expires_at,
        })
        .await
    {
        Ok(account) => account,
        Err(store::StoreError::NotFound) => return Err(fail(&state)),
        Err(e) => return Err(e.into()),
    };
    state.metrics.login(true);
    Ok(CborResponse::ok(LoginFinishResponse {
        account_id: account.account_id,
        session_id: Bytes(session_id),
        session_token: token,
        session_expires_at: expires_at,
        account_revision: account.revision,
        key_bundle: ByteBuf::from(account.key_bundle),
        identity_generation: account.identity_generation,
        root_node_id: account.root_node_id,
    }))
}

// ---- sessions (§11.6.4) ---------------------------------------------------------------------

async fn logout(
    State(state): State<AppState>,
    session: Session,
    _body: NoBody,
) -> ApiResult<Response> {
    state
        .meta
        .revoke_session(session.account_id, session.session_id)
        .await?;
    Ok(no_content())
}

async fn list_sessions(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<CborResponse<SessionList>> {
    let now = state.now();
    let sessions = state
        .meta
        .list_sessions(session.account_id, now, SESSION_IDLE_TTL_SECS)
        .await?;
    let sessions: Vec<SessionInfo> = sessions
        .into_iter()
        .map(|s| SessionInfo {
            session_id: Bytes(s.session_id),
            current: s.session_id == session.session_id,
            label: s.label,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s
                .expires_at
                .min(s.last_used_at.saturating_add(SESSION_IDLE_TTL_SECS)),
        })
        .collect();
    if sessions.iter().filter(|s| s.current).count() != 1 {
        // The caller's session was revoked concurrently.
        return Err(ApiError::unauthenticated());
    }
    Ok(CborResponse::ok(SessionList { sessions }))
}

async fn revoke_session(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    _body: NoBody,
) -> ApiResult<Response> {
    let id = path_id16(&id)?;
    if state.meta.revoke_session(session.account_id, id).await? {
        Ok(no_content())
    } else {
        Err(ApiError::not_found())
    }
}

async fn revoke_others(
    State(state): State<AppState>,
    session: Session,
    _body: NoBody,
) -> ApiResult<CborResponse<SessionsRevoked>> {
    let revoked = state
        .meta
        .revoke_other_sessions(session.account_id, session.session_id)
        .await?;
    Ok(CborResponse::ok(SessionsRevoked { revoked }))
}

// ---- account and user lookup (§11.6.5) ------------------------------------------------------

async fn account_info(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<CborResponse<AccountInfo>> {
    let acc = state
        .meta
        .account(session.account_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let used = state.meta.storage_used(acc.account_id, state.now()).await?;
    let username = Username::new(&acc.username)
        .map_err(|_| ApiError::internal("stored username", "not a valid username"))?;
    Ok(CborResponse::ok(AccountInfo {
        account_id: acc.account_id,
        username,
        account_revision: acc.revision,
        identity_generation: acc.identity_generation,
        root_node_id: acc.root_node_id,
        created_at: acc.created_at,
        storage_used: used,
        storage_quota: state.config.file.quotas.storage_bytes,
    }))
}

async fn user_lookup(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> ApiResult<CborResponse<UserLookupResponse>> {
    state
        .limits
        .lookups_per_session
        .check(&session.session_id, &state.metrics)?;
    let username =
        Username::new(&name).map_err(|_| ApiError::invalid_parameter("malformed username"))?;
    let acc = state
        .meta
        .account_by_username(username.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(CborResponse::ok(UserLookupResponse {
        account_id: acc.account_id,
        username,
        identity_generation: acc.identity_generation,
    }))
}

// ---- re-authentication (§11.6.6) ------------------------------------------------------------

async fn reauth_start(
    state: &AppState,
    session: &Session,
    purpose: ReauthPurpose,
    req: ReauthStartRequest,
) -> ApiResult<CborResponse<ReauthStartResponse>> {
    if req.purpose != purpose {
        return Err(ApiError::malformed(
            "the purpose does not match this endpoint",
        ));
    }
    state
        .limits
        .reauth_failures_per_account
        .check(&session.account_id, &state.metrics)?;
    let now = state.now();
    let acc = state
        .meta
        .account(session.account_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let ids = identities(state, &acc.username);
    let (login_state, credential_response) = server_login_start(
        &state.opaque,
        Some(&acc.password_file),
        &req.credential_request,
        &ids,
        &mut OsRng,
    )
    .map_err(|e| match e {
        coffer_core::Error::Decode(_) | coffer_core::Error::InvalidArgument(_) => {
            ApiError::malformed("credential request: malformed")
        }
        other => ApiError::internal("re-authentication start", other),
    })?;
    let registration_response = match &req.registration_request {
        Some(r) => Some(ByteBuf::from(
            server_registration_start(&state.opaque, r, &ids)
                .map_err(opaque_malformed("registration request"))?,
        )),
        None => None,
    };
    let reauth_id = random16();
    let expires_at = now + HANDSHAKE_TTL_SECS;
    state
        .meta
        .put_handshake(
            Handshake {
                id: reauth_id,
                kind: reauth_kind(purpose),
                username: Some(acc.username.clone()),
                account_id: Some(acc.account_id),
                session_id: Some(session.session_id),
                state: login_state.as_bytes().to_vec(),
                expires_at,
            },
            now,
        )
        .await?;
    Ok(CborResponse::ok(ReauthStartResponse {
        reauth_id: Bytes(reauth_id),
        purpose,
        credential_response: ByteBuf::from(credential_response),
        registration_response,
        expires_at,
    }))
}

fn reauth_kind(purpose: ReauthPurpose) -> HandshakeKind {
    // Purpose codes are 0, 1, 2 (§11.17).
    HandshakeKind::Reauth(u8::try_from(purpose.code()).unwrap_or(u8::MAX))
}

fn reauth_failed() -> ApiError {
    ApiError::new(
        ProblemKind::ReauthFailed,
        "the fresh password proof did not verify",
    )
}

/// The common finish rules of §11.6.6: consume the handshake, which must be live, of this
/// purpose and bound to the calling session, and verify the OPAQUE finalization. Failures count
/// against the account's re-authentication limit.
pub(crate) async fn reauth_finish(
    state: &AppState,
    session: &Session,
    purpose: ReauthPurpose,
    reauth_id: [u8; 16],
    finalization: &[u8],
) -> ApiResult<store::Account> {
    let limits = &state.limits.reauth_failures_per_account;
    limits.check(&session.account_id, &state.metrics)?;
    let now = state.now();
    let hs = state
        .meta
        .take_handshake(reauth_id, reauth_kind(purpose), now)
        .await?;
    let ok = hs.is_some_and(|hs| {
        hs.session_id == Some(session.session_id)
            && hs.account_id == Some(session.account_id)
            && server_login_finish(&ServerLoginState::from_bytes(&hs.state), finalization).is_ok()
    });
    if !ok {
        limits.record(session.account_id);
        return Err(reauth_failed());
    }
    state
        .meta
        .account(session.account_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)
}

async fn password_start(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<ReauthStartRequest>,
) -> ApiResult<CborResponse<ReauthStartResponse>> {
    reauth_start(&state, &session, ReauthPurpose::PasswordChange, req).await
}

async fn recover_start(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<ReauthStartRequest>,
) -> ApiResult<CborResponse<ReauthStartResponse>> {
    reauth_start(&state, &session, ReauthPurpose::Recovery, req).await
}

async fn delete_start(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<ReauthStartRequest>,
) -> ApiResult<CborResponse<ReauthStartResponse>> {
    reauth_start(&state, &session, ReauthPurpose::AccountDeletion, req).await
}

// ---- password change (§11.6.7) --------------------------------------------------------------

async fn password_finish(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<PasswordChangeFinishRequest>,
) -> ApiResult<CborResponse<AccountUpdated>> {
    let acc = reauth_finish(
        &state,
        &session,
        ReauthPurpose::PasswordChange,
        req.reauth_id.0,
        &req.credential_finalization,
    )
    .await?;
    if req.expected_account_revision != acc.revision {
        return Err(ApiError::revision_mismatch(acc.revision));
    }
    let password_file = server_registration_finish(&req.registration_upload)
        .map_err(|e| record_error("registration upload", &e))?;
    account::check_password_change(&acc.key_bundle, &req.key_bundle)
        .map_err(|e| record_error("key bundle", &e))?;
    let updated = state
        .meta
        .change_password(store::PasswordChange {
            account_id: acc.account_id,
            keep_session: session.session_id,
            expected_revision: req.expected_account_revision,
            password_file,
            key_bundle: req.key_bundle.to_vec(),
        })
        .await?;
    Ok(CborResponse::ok(AccountUpdated {
        account_revision: updated.revision,
        identity_generation: updated.identity_generation,
        sessions_revoked: updated.sessions_revoked,
    }))
}

// ---- account deletion (§11.6.9) -------------------------------------------------------------

async fn delete_finish(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<AccountDeleteFinishRequest>,
) -> ApiResult<Response> {
    let acc = reauth_finish(
        &state,
        &session,
        ReauthPurpose::AccountDeletion,
        req.reauth_id.0,
        &req.credential_finalization,
    )
    .await?;
    if req.account_id != acc.account_id {
        return Err(ApiError::malformed(
            "account-id is not the session's account",
        ));
    }
    let removed = state.meta.delete_account(acc.account_id).await?;
    delete_removed_blobs(&state, &removed).await;
    Ok(no_content())
}
