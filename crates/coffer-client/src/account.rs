//! Accounts and sessions (spec §6, §11.6): register, login, logout, whoami, sessions, password
//! change and account deletion. Every cryptographic step is `coffer_core::account`'s.

use coffer_core::account::{self, OpaqueIdentities};
use coffer_core::api::{self, ReauthPurpose, SessionId, Username};
use coffer_core::encoding::ByteBuf;
use rand_core::OsRng;
use reqwest::Method;

use crate::error::{Error, Result};
use crate::http::{Bearer, Payload, Retry};
use crate::state::Session;
use crate::{now, Client};

/// What `whoami` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WhoAmI {
    /// The user name.
    pub username: String,
    /// The account id (base64url).
    pub account_id: String,
    /// The server.
    pub server: String,
    /// The current identity generation.
    pub identity_generation: u64,
    /// The fingerprint of the account's current identity, as the server's chain proves it.
    pub fingerprint: String,
    /// Ciphertext bytes charged to the account.
    pub storage_used: u64,
    /// The quota, if any.
    pub storage_quota: Option<u64>,
}

/// One session of the account, as `sessions list` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionEntry {
    /// The session id (hex), for `sessions revoke`.
    pub id: String,
    /// The device label.
    pub label: String,
    /// Creation time (seconds since the epoch).
    pub created_at: u64,
    /// Last use.
    pub last_used_at: u64,
    /// Expiry.
    pub expires_at: u64,
    /// Whether this is the calling session.
    pub current: bool,
}

/// The default session label: `coffer on <hostname>`.
#[must_use]
pub fn default_session_label() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into());
    let mut label = format!("coffer on {host}");
    while label.len() > api::MAX_SESSION_LABEL_LEN {
        label.pop();
    }
    label
}

fn username(name: &str) -> Result<Username> {
    Username::new(name).map_err(|_| {
        Error::Usage(format!(
            "{name:?} is not a valid user name (lower-case letters, digits, '-', '_', '.')"
        ))
    })
}

/// Maps a core error of an OPAQUE step to a clear authentication error.
fn auth_error(e: coffer_core::Error) -> Error {
    match e {
        coffer_core::Error::AuthenticationFailed => {
            Error::Auth("wrong user name or password".into())
        }
        coffer_core::Error::InvalidArgument(what) => Error::Usage(what.into()),
        other => Error::from(other),
    }
}

/// Maps a server problem of a login step to a clear authentication error.
fn login_problem(e: Error) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::AuthenticationFailed) => {
            Error::Auth("wrong user name or password".into())
        }
        Some(api::ProblemKind::ReauthFailed) => Error::Auth("wrong password".into()),
        _ => e,
    }
}

impl Client {
    /// Registers `name` with `password` (OPAQUE registration, a new identity and root folder,
    /// spec §6.8, §11.6.2), then logs in.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad name or empty password; [`Error::Problem`] with
    /// `username-taken`; transport errors.
    pub async fn register(&mut self, name: &str, password: &[u8]) -> Result<()> {
        let user = username(name)?;
        let sid = self.server_identity().to_owned();
        let ids = OpaqueIdentities {
            user_name: name,
            server_identity: &sid,
        };
        let (state, request) =
            account::registration_start(password, &mut OsRng).map_err(auth_error)?;
        let start = api::RegisterStartRequest {
            username: user,
            registration_request: ByteBuf::from(request),
        };
        let resp: api::RegisterStartResponse = self
            .http()
            .post("/v1/accounts/register/start", None, &start, Retry::Once)
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::UsernameTaken) => {
                    Error::Conflict(format!("the user name {name:?} is taken; choose another"))
                }
                _ => e,
            })?;
        let time = now();
        let reg = account::register(
            state,
            password,
            &resp.registration_response,
            &ids,
            resp.account_id,
            time,
            &mut OsRng,
        )
        .map_err(auth_error)?;
        let finish = api::RegisterFinishRequest::new(&reg, time, &mut OsRng)?;
        let done: api::RegisterFinishResponse = self
            .http()
            .post("/v1/accounts/register/finish", None, &finish, Retry::Once)
            .await?;
        if done.account_id != resp.account_id {
            return Err(Error::integrity(
                "registration answered for another account",
            ));
        }
        self.login(name, password).await
    }

    /// Logs in as `name` (OPAQUE login, §11.6.3), unlocks the account's keys, checks them
    /// against the account's identity chain and the root folder's record, and saves the session.
    ///
    /// # Errors
    /// [`Error::Auth`] for a wrong name or password; [`Error::Integrity`] when what the server
    /// returns does not open or verify.
    pub async fn login(&mut self, name: &str, password: &[u8]) -> Result<()> {
        let user = username(name)?;
        let sid = self.server_identity().to_owned();
        let ids = OpaqueIdentities {
            user_name: name,
            server_identity: &sid,
        };
        let (state, request) = account::login_start(password, &mut OsRng).map_err(auth_error)?;
        let start = api::LoginStartRequest {
            username: user,
            credential_request: ByteBuf::from(request),
        };
        let resp: api::LoginStartResponse = self
            .http()
            .post("/v1/sessions/login/start", None, &start, Retry::Once)
            .await
            .map_err(login_problem)?;
        let fin =
            account::login_finish(state, password, &resp.credential_response, &ids, &mut OsRng)
                .map_err(auth_error)?;
        let req = api::LoginFinishRequest {
            login_id: resp.login_id,
            credential_finalization: ByteBuf::from(fin.finalization.clone()),
            session_label: default_session_label(),
        };
        let done: api::LoginFinishResponse = self
            .http()
            .post("/v1/sessions/login/finish", None, &req, Retry::Once)
            .await
            .map_err(login_problem)?;
        let unlocked = account::unlock(&fin.export_key, &done.account_id, &done.key_bundle)?;
        if unlocked.secrets.root_node_id != done.root_node_id
            || unlocked.secrets.identity_generation != done.identity_generation
        {
            return Err(Error::integrity(
                "login response disagrees with the account's sealed keys",
            ));
        }
        let session = Session {
            server: self.http().base().to_owned(),
            username: name.to_owned(),
            session_id: done.session_id,
            token: Bearer::from_b64(done.session_token.to_b64()),
            account: unlocked,
            key_bundle: done.key_bundle.to_vec(),
            account_revision: done.account_revision,
        };
        // The identity chain must end in the keys the account holds.
        self.check_own_identity(&session).await?;
        self.set_session(Some(session))?;
        Ok(())
    }

    /// Fetches the account's identity chain, verifies it (spec §6.6) and checks that it ends in
    /// the session's keys; returns the verified current identity.
    async fn check_own_identity(
        &self,
        session: &Session,
    ) -> Result<coffer_core::account::VerifiedIdentity> {
        let chain: api::IdentityChain = self
            .http()
            .get(
                &format!("/v1/identities/{}", session.account.account_id),
                None,
            )
            .await?;
        if chain.account_id != session.account.account_id {
            return Err(Error::integrity("identity chain of another account"));
        }
        let verified = account::verify_chain(&chain.generations)?;
        if verified.user_name != session.username {
            return Err(Error::integrity("identity chain names another user"));
        }
        session.account.check_identity(&verified)?;
        Ok(verified)
    }

    /// Ends the session on the server and deletes the session file. A session the server has
    /// already ended is not an error.
    ///
    /// # Errors
    /// Transport errors (the file is kept then, so the user can retry).
    pub async fn logout(&mut self) -> Result<()> {
        let Some(session) = self.session.as_ref() else {
            return self.set_session(None);
        };
        let r = self
            .http()
            .no_content(
                Method::POST,
                "/v1/sessions/logout",
                Some(&session.token),
                Payload::Empty,
                Retry::Idempotent,
            )
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.problem_kind() == Some(api::ProblemKind::Unauthenticated) => {}
            Err(e) => return Err(e),
        }
        self.set_session(None)
    }

    /// Who the session is: account info from the server, and the identity fingerprint verified
    /// from the identity chain.
    ///
    /// # Errors
    /// [`Error::Auth`] when not logged in or the session has ended.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let s = self.session()?;
        let info: api::AccountInfo = self
            .http()
            .get("/v1/account", Some(&s.token))
            .await
            .map_err(session_problem)?;
        if info.account_id != s.account_id() || info.username.as_str() != s.username {
            return Err(Error::integrity("account info of another account"));
        }
        let verified = self.check_own_identity(s).await?;
        Ok(WhoAmI {
            username: s.username.clone(),
            account_id: s.account_id().to_b64(),
            server: s.server.clone(),
            identity_generation: verified.generation,
            fingerprint: verified.fingerprint.to_string(),
            storage_used: info.storage_used,
            storage_quota: info.storage_quota,
        })
    }

    /// The account's live sessions.
    ///
    /// # Errors
    /// [`Error::Auth`] when not logged in.
    pub async fn sessions(&self) -> Result<Vec<SessionEntry>> {
        let s = self.session()?;
        let list: api::SessionList = self
            .http()
            .get("/v1/sessions", Some(&s.token))
            .await
            .map_err(session_problem)?;
        Ok(list
            .sessions
            .iter()
            .map(|i| SessionEntry {
                id: hex::encode(i.session_id.0),
                label: i.label.clone(),
                created_at: i.created_at,
                last_used_at: i.last_used_at,
                expires_at: i.expires_at,
                current: i.current,
            })
            .collect())
    }

    /// Ends the session `id` (hex, as [`Client::sessions`] lists it). Ending the current one
    /// also deletes the session file.
    ///
    /// # Errors
    /// [`Error::Usage`] for a malformed id, [`Error::NotFound`] for an unknown one.
    pub async fn revoke_session(&mut self, id: &str) -> Result<()> {
        let bytes = hex::decode(id)
            .ok()
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| Error::Usage(format!("{id:?} is not a session id (32 hex digits)")))?;
        let sid: SessionId = coffer_core::encoding::Bytes(bytes);
        let s = self.session()?;
        let current = s.session_id == sid;
        self.http()
            .no_content(
                Method::DELETE,
                &format!(
                    "/v1/sessions/{}",
                    coffer_core::encoding::b64url_encode(&bytes)
                ),
                Some(&s.token),
                Payload::Empty,
                Retry::Once,
            )
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::NotFound) => {
                    Error::NotFound(format!("no session {id}: see `coffer sessions list`"))
                }
                _ => session_problem(e),
            })?;
        if current {
            self.set_session(None)?;
        }
        Ok(())
    }

    /// Ends every other session of the account; returns how many.
    ///
    /// # Errors
    /// [`Error::Auth`] when not logged in.
    pub async fn revoke_other_sessions(&self) -> Result<u64> {
        let s = self.session()?;
        let r = self
            .http()
            .send(
                Method::POST,
                "/v1/sessions/revoke-others",
                Some(&s.token),
                Payload::Empty,
                reqwest::header::HeaderMap::new(),
                Retry::Idempotent,
            )
            .await
            .map_err(session_problem)?;
        let done: api::SessionsRevoked = crate::http::decode_body(r).await?;
        Ok(done.revoked)
    }

    /// Runs the start of a re-authentication (§11.6.6) for `purpose`; for a password change or
    /// recovery, also the registration start of `new_password`. Returns the OPAQUE states and the
    /// server's response, and the finished login (whose finalization the finish step sends).
    pub(crate) async fn reauth(
        &self,
        purpose: ReauthPurpose,
        password: &[u8],
        new_password: Option<&[u8]>,
    ) -> Result<Reauth> {
        let s = self.session()?;
        let path = match purpose {
            ReauthPurpose::PasswordChange => "/v1/account/password/start",
            ReauthPurpose::Recovery => "/v1/account/recover/start",
            ReauthPurpose::AccountDeletion => "/v1/account/delete/start",
        };
        let (login_state, request) =
            account::login_start(password, &mut OsRng).map_err(auth_error)?;
        let (registration, registration_request) = match new_password {
            Some(p) => {
                let (st, req) = account::registration_start(p, &mut OsRng).map_err(auth_error)?;
                (Some(st), Some(ByteBuf::from(req)))
            }
            None => (None, None),
        };
        let start = api::ReauthStartRequest {
            purpose,
            credential_request: ByteBuf::from(request),
            registration_request,
        };
        let resp: api::ReauthStartResponse = self
            .http()
            .post(path, Some(&s.token), &start, Retry::Once)
            .await
            .map_err(session_problem)?;
        if resp.purpose != purpose {
            return Err(Error::integrity("re-authentication for another purpose"));
        }
        let sid = self.server_identity().to_owned();
        let ids = OpaqueIdentities {
            user_name: &s.username,
            server_identity: &sid,
        };
        let login = account::login_finish(
            login_state,
            password,
            &resp.credential_response,
            &ids,
            &mut OsRng,
        )
        .map_err(|e| match e {
            coffer_core::Error::AuthenticationFailed => Error::Auth("wrong password".into()),
            other => auth_error(other),
        })?;
        Ok(Reauth {
            response: resp,
            login,
            registration,
        })
    }

    /// Changes the password (§9.1, §11.6.7): a fresh proof of `old`, a new OPAQUE registration
    /// of `new`, the same master key re-wrapped. The server ends every other session. Returns
    /// how many.
    ///
    /// # Errors
    /// [`Error::Auth`] for a wrong current password.
    pub async fn change_password(&mut self, old: &[u8], new: &[u8]) -> Result<u64> {
        let re = self
            .reauth(ReauthPurpose::PasswordChange, old, Some(new))
            .await?;
        let s = self.session()?.clone();
        let sid = self.server_identity().to_owned();
        let ids = OpaqueIdentities {
            user_name: &s.username,
            server_identity: &sid,
        };
        let registration = re
            .registration
            .ok_or(Error::Internal("registration state missing"))?;
        let reg_response =
            re.response.registration_response.as_ref().ok_or_else(|| {
                Error::integrity("no registration response for a password change")
            })?;
        let change = account::change_password(
            registration,
            new,
            reg_response,
            &ids,
            &s.account,
            &s.key_bundle,
            &mut OsRng,
        )
        .map_err(auth_error)?;
        let body = api::PasswordChangeFinishRequest {
            reauth_id: re.response.reauth_id,
            credential_finalization: ByteBuf::from(re.login.finalization.clone()),
            expected_account_revision: s.account_revision,
            registration_upload: ByteBuf::from(change.registration_upload),
            key_bundle: ByteBuf::from(change.key_bundle.clone()),
        };
        let done: api::AccountUpdated = self
            .http()
            .post(
                "/v1/account/password/finish",
                Some(&s.token),
                &body,
                Retry::Once,
            )
            .await
            .map_err(login_problem)?;
        let mut next = s;
        next.key_bundle = change.key_bundle;
        next.account_revision = done.account_revision;
        self.set_session(Some(next))?;
        Ok(done.sessions_revoked)
    }

    /// Deletes the account (§9.5, §11.6.9) after a fresh proof of `password`, then deletes the
    /// session file.
    ///
    /// # Errors
    /// [`Error::Auth`] for a wrong password.
    pub async fn delete_account(&mut self, password: &[u8]) -> Result<()> {
        let re = self
            .reauth(ReauthPurpose::AccountDeletion, password, None)
            .await?;
        let s = self.session()?;
        let body = api::AccountDeleteFinishRequest {
            reauth_id: re.response.reauth_id,
            credential_finalization: ByteBuf::from(re.login.finalization.clone()),
            account_id: s.account_id(),
        };
        self.http()
            .no_content(
                Method::POST,
                "/v1/account/delete/finish",
                Some(&s.token),
                Payload::Cbor(coffer_core::api::Body::to_bytes(&body)),
                Retry::Once,
            )
            .await
            .map_err(login_problem)?;
        // The account's upload state is useless now.
        let _ = std::fs::remove_dir_all(self.config().path().join(crate::state::UPLOADS_DIR));
        self.set_session(None)
    }
}

/// A started re-authentication (§11.6.6).
pub(crate) struct Reauth {
    /// The server's start response.
    pub(crate) response: api::ReauthStartResponse,
    /// The finished OPAQUE login: its finalization goes into the finish request.
    pub(crate) login: account::LoginFinish,
    /// The registration state of the new password (purposes 0 and 1).
    pub(crate) registration: Option<account::ClientRegistration>,
}

/// Maps `401 unauthenticated` on a session endpoint to a clear "log in again".
pub(crate) fn session_problem(e: Error) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::Unauthenticated) => Error::Auth(
            "the session has ended (logged out, revoked or expired): run `coffer login USER`"
                .into(),
        ),
        _ => e,
    }
}
