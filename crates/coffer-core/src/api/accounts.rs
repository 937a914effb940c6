//! Accounts, sessions and the identity directory (spec §11.6, §11.7).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::token::SessionToken;
use super::{
    body, wire_enum, MAX_BULK_BODY, MAX_RECORD_BODY, MAX_SESSION_LABEL_LEN, MAX_SMALL_BODY,
};
use crate::account::Registration;
use crate::encoding::{encode, ByteBuf, Bytes, ERR_INVALID_VALUE};
use crate::error::{DecodeError, Result};
use crate::ids::{AccountId, NodeId};

/// Shortest username, in bytes.
pub const MIN_USERNAME_LEN: usize = 3;
/// Longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;

/// A username in its only accepted form (spec §11.6.1): 3 to 64 bytes of `a-z 0-9 . _ -`,
/// starting and ending with a letter or digit. Clients normalise (lower-case) before sending;
/// servers reject every other form, so two accounts can never differ only in case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] unless `name` follows the rule above.
    pub fn new(name: &str) -> Result<Self, DecodeError> {
        let b = name.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let inner = |c: u8| edge(c) || matches!(c, b'.' | b'_' | b'-');
        let ok = (MIN_USERNAME_LEN..=MAX_USERNAME_LEN).contains(&b.len())
            && b.first().copied().is_some_and(edge)
            && b.last().copied().is_some_and(edge)
            && b.iter().copied().all(inner);
        if ok {
            Ok(Username(name.into()))
        } else {
            Err(DecodeError::InvalidValue)
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Username::new(&s).map_err(|_| serde::de::Error::custom(ERR_INVALID_VALUE))
    }
}

/// A session identifier: 16 random bytes chosen by the server; public (it names a session in
/// lists and in `DELETE /v1/sessions/{session-id}`), unlike the session token.
pub type SessionId = Bytes<16>;
/// A handle of an unfinished login or re-authentication (16 random bytes chosen by the server).
pub type HandshakeId = Bytes<16>;

wire_enum! {
    /// What a fresh OPAQUE proof is for (spec §11.6.6). A proof is usable for its purpose only.
    pub enum ReauthPurpose {
        /// `POST /v1/account/password/finish`.
        PasswordChange = 0,
        /// `POST /v1/account/recover/finish`.
        Recovery = 1,
        /// `POST /v1/account/delete/finish`.
        AccountDeletion = 2,
    }
}

impl ReauthPurpose {
    /// Whether the operation also registers a new password (and so carries an OPAQUE
    /// registration request and upload).
    #[must_use]
    pub const fn registers_password(self) -> bool {
        matches!(
            self,
            ReauthPurpose::PasswordChange | ReauthPurpose::Recovery
        )
    }
}

body! {
    /// `POST /v1/accounts/register/start` request.
    pub struct RegisterStartRequest (type = 100, max = MAX_SMALL_BODY) {
        /// The username to register.
        pub username: Username,
        /// OPAQUE `RegistrationRequest` (§6).
        pub registration_request: ByteBuf,
    }
}

body! {
    /// `POST /v1/accounts/register/start` response: the reserved account id and the server's
    /// OPAQUE answer.
    pub struct RegisterStartResponse (type = 101, max = MAX_SMALL_BODY) {
        /// The account id reserved for this registration.
        pub account_id: AccountId,
        /// OPAQUE `RegistrationResponse` (§6).
        pub registration_response: ByteBuf,
        /// When the reservation lapses (seconds since the epoch).
        pub expires_at: u64,
    }
}

body! {
    /// `POST /v1/accounts/register/finish` request: everything an account is, at once.
    pub struct RegisterFinishRequest (type = 102, max = MAX_RECORD_BODY) {
        /// The account id from `RegisterStartResponse`.
        pub account_id: AccountId,
        /// OPAQUE `RegistrationUpload` (§6).
        pub registration_upload: ByteBuf,
        /// The account's `KeyBundle` (§6.4): the master key wrapped under the OPAQUE export key
        /// and the account's private keys sealed under the master key.
        pub key_bundle: ByteBuf,
        /// Identity generation 0, a `SignedIdentity` (§6).
        pub signed_identity: ByteBuf,
        /// The root folder's first record, a `SignedNode` (§7).
        pub root_node: ByteBuf,
    }
}

impl RegisterFinishRequest {
    /// The client's registration finish (spec §6.8 step 5, §11.6.2) for `registration`: its
    /// OPAQUE upload, key bundle and identity, with the account's root folder made by
    /// [`Registration::create_root`] at `time` (the metadata's `mtime` and the record's `time`).
    /// `account_id` is the registration's, the one `RegisterStartResponse` reserved.
    ///
    /// Randomness: that of [`Registration::create_root`].
    ///
    /// # Errors
    /// As [`Registration::create_root`].
    pub fn new(
        registration: &Registration,
        time: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self> {
        let (_, root_node) = registration.create_root(time, rng)?;
        Ok(RegisterFinishRequest {
            account_id: registration.account.account_id,
            registration_upload: ByteBuf::from(registration.registration_upload.clone()),
            key_bundle: ByteBuf::from(registration.key_bundle.clone()),
            signed_identity: ByteBuf::from(registration.signed_identity.clone()),
            root_node: ByteBuf::from(encode(&root_node)),
        })
    }
}

body! {
    /// `POST /v1/accounts/register/finish` response.
    pub struct RegisterFinishResponse (type = 103, max = MAX_SMALL_BODY) {
        /// The new account.
        pub account_id: AccountId,
        /// The account revision (0).
        pub account_revision: u64,
    }
}

body! {
    /// `POST /v1/sessions/login/start` request.
    pub struct LoginStartRequest (type = 104, max = MAX_SMALL_BODY) {
        /// The username.
        pub username: Username,
        /// OPAQUE `CredentialRequest` (§6).
        pub credential_request: ByteBuf,
    }
}

body! {
    /// `POST /v1/sessions/login/start` response.
    pub struct LoginStartResponse (type = 105, max = MAX_SMALL_BODY) {
        /// Names this login in `login/finish`.
        pub login_id: HandshakeId,
        /// OPAQUE `CredentialResponse` (§6); a fake one, indistinguishable, for unknown users.
        pub credential_response: ByteBuf,
        /// When the unfinished login lapses.
        pub expires_at: u64,
    }
}

body! {
    /// `POST /v1/sessions/login/finish` request.
    pub struct LoginFinishRequest (type = 106, max = MAX_SMALL_BODY, check = check_login_finish) {
        /// From `LoginStartResponse`.
        pub login_id: HandshakeId,
        /// OPAQUE `CredentialFinalization` (§6).
        pub credential_finalization: ByteBuf,
        /// A label for the session list (device name), at most 128 bytes; may be empty.
        pub session_label: String,
    }
}

body! {
    /// `POST /v1/sessions/login/finish` response: a session and the account's sealed keys.
    pub struct LoginFinishResponse (type = 107, max = MAX_SMALL_BODY) {
        /// The account.
        pub account_id: AccountId,
        /// The new session's public id.
        pub session_id: SessionId,
        /// The new session's bearer token.
        pub session_token: SessionToken,
        /// The session's absolute expiry.
        pub session_expires_at: u64,
        /// The account revision.
        pub account_revision: u64,
        /// The account's `KeyBundle` (§6.4): the master key wrapped under the OPAQUE export key
        /// and the account's private keys sealed under the master key.
        pub key_bundle: ByteBuf,
        /// The current identity generation.
        pub identity_generation: u64,
        /// The root folder.
        pub root_node_id: NodeId,
    }
}

crate::cbor_struct! {
    /// One session in a `SessionList`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SessionInfo {
        /// The session's public id.
        pub session_id: SessionId,
        /// The label given at login.
        pub label: String,
        /// Creation time.
        pub created_at: u64,
        /// Last authenticated request (the server MAY round it to the hour).
        pub last_used_at: u64,
        /// Absolute expiry.
        pub expires_at: u64,
        /// Whether this is the session making the request.
        pub current: bool,
    }
}

body! {
    /// `GET /v1/sessions` response.
    pub struct SessionList (type = 108, max = MAX_RECORD_BODY, check = check_session_list) {
        /// Every live session of the account, oldest first.
        pub sessions: Vec<SessionInfo>,
    }
}

body! {
    /// `POST /v1/sessions/revoke-others` response.
    pub struct SessionsRevoked (type = 109, max = MAX_SMALL_BODY) {
        /// How many sessions were revoked.
        pub revoked: u64,
    }
}

body! {
    /// `POST /v1/account/{password,recover,delete}/start` request: the first half of a fresh
    /// OPAQUE login, and for password change and recovery the first half of a new registration.
    pub struct ReauthStartRequest (type = 110, max = MAX_SMALL_BODY, check = check_reauth_start) {
        /// Must match the endpoint.
        pub purpose: ReauthPurpose,
        /// OPAQUE `CredentialRequest` under the current password.
        pub credential_request: ByteBuf,
        /// OPAQUE `RegistrationRequest` for the new password; present iff the purpose registers
        /// a password.
        pub registration_request: Option<ByteBuf>,
    }
}

body! {
    /// `POST /v1/account/{password,recover,delete}/start` response.
    pub struct ReauthStartResponse (type = 111, max = MAX_SMALL_BODY, check = check_reauth_response) {
        /// Names this re-authentication in the finish request.
        pub reauth_id: HandshakeId,
        /// The purpose, repeated.
        pub purpose: ReauthPurpose,
        /// OPAQUE `CredentialResponse`.
        pub credential_response: ByteBuf,
        /// OPAQUE `RegistrationResponse`; present iff the request had a registration request.
        pub registration_response: Option<ByteBuf>,
        /// When the proof lapses.
        pub expires_at: u64,
    }
}

body! {
    /// `POST /v1/account/password/finish` request.
    pub struct PasswordChangeFinishRequest (type = 112, max = MAX_SMALL_BODY) {
        /// From `ReauthStartResponse` (purpose password change).
        pub reauth_id: HandshakeId,
        /// OPAQUE `CredentialFinalization` under the current password.
        pub credential_finalization: ByteBuf,
        /// The account revision the change applies to.
        pub expected_account_revision: u64,
        /// OPAQUE `RegistrationUpload` for the new password.
        pub registration_upload: ByteBuf,
        /// The new `KeyBundle` (§6.4, §9.1): the same master key wrapped under the new export
        /// key, everything else unchanged (`account::check_password_change`).
        pub key_bundle: ByteBuf,
    }
}

body! {
    /// `POST /v1/account/recover/finish` request: compromise recovery (§9.4).
    pub struct RecoveryFinishRequest (type = 113, max = MAX_BULK_BODY, check = check_recovery_finish) {
        /// From `ReauthStartResponse` (purpose recovery).
        pub reauth_id: HandshakeId,
        /// OPAQUE `CredentialFinalization` under the current password.
        pub credential_finalization: ByteBuf,
        /// The account revision the recovery applies to.
        pub expected_account_revision: u64,
        /// OPAQUE `RegistrationUpload` for the new password.
        pub registration_upload: ByteBuf,
        /// The new `KeyBundle` (§6.4, §9.4): the new master key wrapped under the new export
        /// key and the new private keys sealed under it (`account::check_recovery`).
        pub key_bundle: ByteBuf,
        /// The next identity generation, a `SignedIdentity` (§6).
        pub signed_identity: ByteBuf,
        /// The re-keyed tree (§9.4 step 3): every node record of the account's tree, re-keyed
        /// under the new root node key and signed under the new identity generation, each a
        /// `SignedNode` (§7), the root first.
        pub signed_nodes: Vec<ByteBuf>,
        /// One `RotationBundle` (§9.2) per share the account owns, moving it to a new generation.
        pub rotations: Vec<ByteBuf>,
        /// The links the account keeps, each replaced by a re-sealed link (§10.11); every other
        /// link of the account is revoked.
        pub links: Vec<LinkReplacement>,
    }
}

body! {
    /// `POST /v1/account/delete/finish` request.
    pub struct AccountDeleteFinishRequest (type = 114, max = MAX_SMALL_BODY) {
        /// From `ReauthStartResponse` (purpose account deletion).
        pub reauth_id: HandshakeId,
        /// OPAQUE `CredentialFinalization` under the current password.
        pub credential_finalization: ByteBuf,
        /// The account being deleted, repeated as a confirmation.
        pub account_id: AccountId,
    }
}

body! {
    /// Response to a password change or a compromise recovery.
    pub struct AccountUpdated (type = 115, max = MAX_SMALL_BODY) {
        /// The new account revision.
        pub account_revision: u64,
        /// The current identity generation (new after a recovery).
        pub identity_generation: u64,
        /// How many other sessions were revoked.
        pub sessions_revoked: u64,
    }
}

body! {
    /// `GET /v1/account` response.
    pub struct AccountInfo (type = 116, max = MAX_SMALL_BODY) {
        /// The account.
        pub account_id: AccountId,
        /// Its username.
        pub username: Username,
        /// The account revision.
        pub account_revision: u64,
        /// The current identity generation.
        pub identity_generation: u64,
        /// The root folder.
        pub root_node_id: NodeId,
        /// Registration time.
        pub created_at: u64,
        /// Ciphertext bytes charged to the account (content, drops, unfinished uploads).
        pub storage_used: u64,
        /// The account's quota, if any.
        pub storage_quota: Option<u64>,
    }
}

body! {
    /// `GET /v1/users/{username}` response.
    pub struct UserLookupResponse (type = 117, max = MAX_SMALL_BODY) {
        /// The account.
        pub account_id: AccountId,
        /// The username, repeated.
        pub username: Username,
        /// The current identity generation.
        pub identity_generation: u64,
    }
}

body! {
    /// `PUT /v1/identities/{account-id}` request: append one identity generation.
    pub struct IdentityAppendRequest (type = 120, max = MAX_RECORD_BODY) {
        /// The generation currently last in the chain; the new one must be the next.
        pub expected_generation: u64,
        /// The new generation, a `SignedIdentity` (§6).
        pub signed_identity: ByteBuf,
    }
}

body! {
    /// `GET /v1/identities/{account-id}` response (also the `PUT` response).
    pub struct IdentityChain (type = 121, max = MAX_BULK_BODY, check = check_identity_chain) {
        /// The account.
        pub account_id: AccountId,
        /// Every `SignedIdentity` (§6), generation 0 first, none missing.
        pub generations: Vec<ByteBuf>,
    }
}

fn rule(ok: bool) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue)
    }
}

/// `session-label` is at most 128 bytes.
fn check_login_finish(b: &LoginFinishRequest) -> Result<(), DecodeError> {
    rule(b.session_label.len() <= MAX_SESSION_LABEL_LEN)
}

/// Exactly one session is the current one.
fn check_session_list(b: &SessionList) -> Result<(), DecodeError> {
    rule(b.sessions.iter().filter(|s| s.current).count() == 1)
}

/// A registration request is present iff the purpose registers a password.
fn check_reauth_start(b: &ReauthStartRequest) -> Result<(), DecodeError> {
    rule(b.registration_request.is_some() == b.purpose.registers_password())
}

/// A registration response is present iff the purpose registers a password.
fn check_reauth_response(b: &ReauthStartResponse) -> Result<(), DecodeError> {
    rule(b.registration_response.is_some() == b.purpose.registers_password())
}

/// A chain has at least generation 0.
fn check_identity_chain(b: &IdentityChain) -> Result<(), DecodeError> {
    rule(!b.generations.is_empty())
}

crate::cbor_struct! {
    /// One link kept through compromise recovery: the old link id and its replacement.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LinkReplacement {
        /// The link being replaced.
        pub old_link_id: crate::ids::LinkId,
        /// The replacement, checked as for `POST /v1/links/{link-id}/rotate` (§11.11.7).
        pub link: super::LinkParams,
    }
}

/// Every link replacement follows the structural rules of `LinkParams`.
fn check_recovery_finish(b: &RecoveryFinishRequest) -> Result<(), DecodeError> {
    b.links.iter().try_for_each(|r| r.link.check())
}
