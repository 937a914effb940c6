//! Accounts and sessions (spec §11.6, §11.7): registration, login, sessions, lookup, password
//! change with session revocation, and account deletion, on an account of its own.

use coffer_core::account;
use coffer_core::api::{self, ProblemKind, ReauthPurpose};
use coffer_core::encoding::{b64url_encode, ByteBuf};
use reqwest::Method;

use super::client::{self, User};
use super::http::{Context as _, Http, R};
use super::{Abort, Ctx, Fixture};
use crate::{ensure, fail};

/// Checks that `token` no longer authenticates: `401 unauthenticated` with the Bearer challenge.
pub async fn assert_ended(http: &Http, token: &str) -> R<()> {
    let r = http.get("/v1/account", Some(token)).await?;
    r.problem(ProblemKind::Unauthenticated)?;
    let h = r.header("www-authenticate").unwrap_or_default();
    ensure!(
        h.starts_with("Bearer") && h.contains("realm=\"coffer\""),
        "401 without WWW-Authenticate: Bearer realm=\"coffer\" (got {h:?})"
    );
    Ok(())
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    let sid = fx.sid.as_str();
    let name = client::random_name("dora");
    let pw = client::random_password();

    // Registration, step by step.
    let (state, start) = c.need(
        "build registration",
        "§11.6.2",
        client::registration_start(&name, &pw),
    )?;
    let r = async {
        let resp: api::RegisterStartResponse = http
            .post("/v1/accounts/register/start", None, &start)
            .await?
            .ok(201)?;
        ensure!(
            resp.expires_at > client::now(),
            "expires-at {} is not in the future",
            resp.expires_at
        );
        Ok(resp)
    }
    .await;
    let resp = c.need(
        "register/start answers 201 RegisterStartResponse",
        "§11.6.2",
        r,
    )?;
    let r = async {
        let (_, again) = client::registration_start(&name, &pw)?;
        http.post("/v1/accounts/register/start", None, &again)
            .await?
            .problem(ProblemKind::UsernameTaken)
            .map(drop)
    }
    .await;
    c.check(
        "a second start for a reserved username is 409 username-taken",
        "§11.6.2",
        r,
    );
    let finish = c.need(
        "build registration finish",
        "§11.6.2",
        client::registration_finish(state, &name, &pw, sid, &resp),
    )?;
    let r = async {
        let done: api::RegisterFinishResponse = http
            .post("/v1/accounts/register/finish", None, &finish)
            .await?
            .ok(201)?;
        ensure!(done.account_id == resp.account_id, "another account id");
        ensure!(
            done.account_revision == 0,
            "account revision {} is not 0",
            done.account_revision
        );
        Ok(done)
    }
    .await;
    let done = c.need(
        "register/finish creates the account (201, revision 0)",
        "§11.6.2",
        r,
    )?;
    let r = async {
        let again: api::RegisterFinishResponse = http
            .post("/v1/accounts/register/finish", None, &finish)
            .await?
            .ok(201)?;
        ensure!(again == done, "the replay answered a different body");
        Ok(())
    }
    .await;
    c.check(
        "a replayed register/finish answers the same 201 body",
        "§11.4.4",
        r,
    );
    let r = async {
        let (_, again) = client::registration_start(&name, &pw)?;
        http.post("/v1/accounts/register/start", None, &again)
            .await?
            .problem(ProblemKind::UsernameTaken)
            .map(drop)
    }
    .await;
    c.check(
        "register/start of a registered username is 409 username-taken",
        "§11.6.2",
        r,
    );
    let r = async {
        let probe = client::random_name("case");
        let (_, req) = client::registration_start(&probe, &pw)?;
        let mut bytes = api::Body::to_bytes(&req);
        let pos = bytes
            .windows(probe.len())
            .position(|w| w == probe.as_bytes())
            .ok_or_else(|| fail!("the username is not in the encoding"))?;
        bytes[pos] = b'C';
        http.send(
            super::http::Request::new(Method::POST, "/v1/accounts/register/start", None)
                .body(Some(api::CBOR_CONTENT_TYPE), bytes),
        )
        .await?
        .problem(ProblemKind::MalformedBody)
        .map(drop)
    }
    .await;
    c.check(
        "a username with upper-case letters is 400 malformed-body",
        "§11.6.1",
        r,
    );

    // Login.
    let r = async {
        let a = client::login_attempt(http, sid, &name, b"not the password").await?;
        ensure!(
            a.finish.is_none(),
            "the client authenticated the server with a wrong password"
        );
        a.resp.problem(ProblemKind::AuthenticationFailed).map(drop)
    }
    .await;
    c.check(
        "a wrong password is 401 authentication-failed",
        "§11.6.3",
        r,
    );
    let r = async {
        let unknown = client::random_name("nobody");
        let a = client::login_attempt(http, sid, &unknown, &pw).await?;
        a.resp.problem(ProblemKind::AuthenticationFailed).map(drop)
    }
    .await;
    c.check(
        "an unknown username gets a login-id, then 401 authentication-failed",
        "§11.6.3",
        r,
    );
    let r = async {
        let (state, request) = account::login_start(&pw, &mut rand_core::OsRng).ctx("login")?;
        let start = api::LoginStartRequest {
            username: api::Username::new(&name).ctx("username")?,
            credential_request: ByteBuf::from(request),
        };
        let resp: api::LoginStartResponse = http
            .post("/v1/sessions/login/start", None, &start)
            .await?
            .ok(200)?;
        let fin = account::login_finish(
            state,
            &pw,
            &resp.credential_response,
            &client::ids(&name, sid),
            &mut rand_core::OsRng,
        )
        .ctx("the server's OPAQUE response does not authenticate")?;
        let req = api::LoginFinishRequest {
            login_id: resp.login_id,
            credential_finalization: ByteBuf::from(fin.finalization),
            session_label: "once".into(),
        };
        let ok: api::LoginFinishResponse = http
            .post("/v1/sessions/login/finish", None, &req)
            .await?
            .ok(200)?;
        http.post("/v1/sessions/login/finish", None, &req)
            .await?
            .problem(ProblemKind::AuthenticationFailed)?;
        // Leave no session behind.
        http.bare(
            Method::POST,
            "/v1/sessions/logout",
            Some(&ok.session_token.to_b64()),
        )
        .await?
        .status_is(204)
    }
    .await;
    c.check("a login-id is single-use (401 on reuse)", "§11.6.3", r);
    let user = c.need(
        "login returns a session; the key bundle unlocks, the identity chain and root verify",
        "§11.6.3",
        client::login(http, sid, &name, &pw).await,
    )?;
    let r = if user.account_id != done.account_id {
        Err(fail!("another account id"))
    } else if user.account_revision != 0 {
        Err(fail!("account revision {}", user.account_revision))
    } else {
        Ok(())
    };
    c.check(
        "login reports the account's id and revision 0",
        "§11.6.3",
        r,
    );

    // Account info, lookup, identity chain.
    let r = async {
        let r = http.get("/v1/account", user.t()).await?;
        ensure!(
            r.header("cache-control").as_deref() == Some("no-store"),
            "authenticated response without Cache-Control: no-store"
        );
        let info: api::AccountInfo = r.ok(200)?;
        ensure!(info.account_id == user.account_id, "another account id");
        ensure!(info.username.as_str() == name, "another username");
        ensure!(info.root_node_id == user.root.id, "another root node id");
        Ok(())
    }
    .await;
    c.check(
        "GET /v1/account describes the caller's account",
        "§11.6.5",
        r,
    );
    let r = async {
        let l: api::UserLookupResponse = http
            .get(&format!("/v1/users/{}", fx.alice.name), user.t())
            .await?
            .ok(200)?;
        ensure!(l.account_id == fx.alice.account_id, "another account id");
        http.get(
            &format!("/v1/users/{}", client::random_name("nobody")),
            user.t(),
        )
        .await?
        .problem(ProblemKind::NotFound)?;
        Ok(())
    }
    .await;
    c.check(
        "user lookup finds live accounts, 404 for unknown names",
        "§11.6.5",
        r,
    );
    let r = async {
        let unknown = coffer_core::ids::AccountId::generate(&mut rand_core::OsRng);
        http.get(&format!("/v1/identities/{unknown}"), None)
            .await?
            .problem(ProblemKind::NotFound)
            .map(drop)
    }
    .await;
    c.check(
        "the identity chain of an unknown account is 404",
        "§11.7",
        r,
    );

    // Sessions.
    let r = sessions(http, sid, fx, &user).await;
    c.check(
        "sessions: list with current, revoke one, revoke others, logout",
        "§11.6.4, §11.2.1",
        r,
    );

    // Password change.
    let new_pw = client::random_password();
    let r = password_change(http, sid, &user, &new_pw).await;
    let changed = c.record(
        "password change: wrong proof 403, stale revision 409, then success ends other sessions",
        "§11.6.6, §11.6.7",
        r,
    );
    let user = match changed {
        Some(u) => u,
        None => return Err(Abort),
    };

    // Compromise recovery of this account (its tree is its root folder alone).
    let newer_pw = client::random_password();
    let r = recovery(http, sid, &user, &newer_pw).await;
    let recovered = c.record(
        "compromise recovery: a root signed by the old identity is 422 and changes nothing; then 200 with a new identity generation, other sessions ended",
        "§11.6.8, §9.4",
        r,
    );
    let user = match recovered {
        Some(u) => u,
        None => return Err(Abort),
    };

    // Deletion.
    let r = async {
        // The purpose must match the endpoint.
        let (req_state, request) =
            account::login_start(&user.password, &mut rand_core::OsRng).ctx("login start")?;
        drop(req_state);
        http.post(
            "/v1/account/delete/start",
            user.t(),
            &api::ReauthStartRequest {
                purpose: ReauthPurpose::PasswordChange,
                credential_request: ByteBuf::from(request),
                registration_request: None,
            },
        )
        .await?
        .problem(ProblemKind::MalformedBody)
        .map(drop)
    }
    .await;
    c.check(
        "a re-authentication for another purpose is 400 malformed-body",
        "§11.6.6",
        r,
    );
    let r = async {
        let other = client::login(http, sid, &user.name, &user.password).await?;
        client::delete_account(http, sid, &user)
            .await?
            .status_is(204)?;
        assert_ended(http, &user.token).await?;
        assert_ended(http, &other.token).await?;
        Ok(())
    }
    .await;
    c.need("account deletion (204) ends every session", "§11.6.9", r)?;
    let r = async {
        let a = client::login_attempt(http, sid, &user.name, &user.password).await?;
        a.resp.problem(ProblemKind::AuthenticationFailed).map(drop)
    }
    .await;
    c.check("a deleted account cannot log in (401)", "§11.6.9", r);
    let r = async {
        let (_, again) = client::registration_start(&user.name, &user.password)?;
        http.post("/v1/accounts/register/start", None, &again)
            .await?
            .problem(ProblemKind::UsernameTaken)
            .map(drop)
    }
    .await;
    c.check(
        "a deleted account's username is retained (409 username-taken)",
        "§11.6.9, §11.6.1",
        r,
    );
    let r = async {
        http.get(&format!("/v1/users/{}", user.name), fx.alice.t())
            .await?
            .problem(ProblemKind::NotFound)
            .map(drop)
    }
    .await;
    c.check("user lookup of a deleted account is 404", "§11.6.5", r);
    let r = async {
        let chain: api::IdentityChain = http
            .get(&format!("/v1/identities/{}", user.account_id), None)
            .await?
            .ok(200)?;
        account::verify_chain(&chain.generations).ctx("identity chain")?;
        Ok(())
    }
    .await;
    c.check(
        "a deleted account's identity chain is still served",
        "§11.6.9, §11.7",
        r,
    );
    Ok(())
}

fn session_path(id: &api::SessionId) -> String {
    format!("/v1/sessions/{}", b64url_encode(&id.0))
}

async fn sessions(http: &Http, sid: &str, fx: &Fixture, user: &User) -> R<()> {
    let s2 = client::login(http, sid, &user.name, &user.password).await?;
    let list: api::SessionList = http.get("/v1/sessions", user.t()).await?.ok(200)?;
    ensure!(
        list.sessions.len() >= 2,
        "{} sessions listed, expected at least 2",
        list.sessions.len()
    );
    let current: Vec<_> = list.sessions.iter().filter(|s| s.current).collect();
    ensure!(
        current.len() == 1 && current[0].session_id == user.session_id,
        "exactly the caller's session must be marked current"
    );
    ensure!(
        list.sessions.iter().any(|s| s.session_id == s2.session_id),
        "the second session is not listed"
    );
    // Another account's session id is 404, and nothing happens to it.
    http.bare(
        Method::DELETE,
        &session_path(&fx.alice.session_id),
        user.t(),
    )
    .await?
    .problem(ProblemKind::NotFound)
    .map_err(|e| fail!("deleting another account's session: {e}"))?;
    http.get("/v1/account", fx.alice.t())
        .await?
        .status_is(200)?;
    // Revoke one.
    http.bare(Method::DELETE, &session_path(&s2.session_id), user.t())
        .await?
        .status_is(204)?;
    assert_ended(http, &s2.token)
        .await
        .map_err(|e| fail!("after DELETE /v1/sessions/{{id}}: {e}"))?;
    http.bare(Method::DELETE, &session_path(&s2.session_id), user.t())
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("deleting an ended session again: {e}"))?;
    // Revoke others.
    let s3 = client::login(http, sid, &user.name, &user.password).await?;
    let s4 = client::login(http, sid, &user.name, &user.password).await?;
    let rev: api::SessionsRevoked = http
        .bare(Method::POST, "/v1/sessions/revoke-others", user.t())
        .await?
        .ok(200)?;
    ensure!(
        rev.revoked >= 2,
        "revoke-others ended {} sessions, expected at least 2",
        rev.revoked
    );
    assert_ended(http, &s3.token).await?;
    assert_ended(http, &s4.token).await?;
    http.get("/v1/account", user.t()).await?.status_is(200)?;
    let list: api::SessionList = http.get("/v1/sessions", user.t()).await?.ok(200)?;
    ensure!(
        list.sessions.len() == 1,
        "{} sessions left after revoke-others",
        list.sessions.len()
    );
    // Logout.
    let s5 = client::login(http, sid, &user.name, &user.password).await?;
    http.bare(Method::POST, "/v1/sessions/logout", Some(&s5.token))
        .await?
        .status_is(204)?;
    assert_ended(http, &s5.token).await?;
    Ok(())
}

/// Starts a password change to `new_pw`, re-authenticating with `password`, and builds its finish
/// request (for the user's current account revision). The first value is false when the server's
/// response did not verify (a wrong `password`); the request then carries a zero finalization.
async fn password_change_request(
    http: &Http,
    sid: &str,
    user: &User,
    password: &[u8],
    new_pw: &[u8],
) -> R<(bool, api::PasswordChangeFinishRequest)> {
    let (resp, finish, reg) = client::reauth_start(
        http,
        sid,
        user,
        password,
        ReauthPurpose::PasswordChange,
        Some(new_pw),
    )
    .await?;
    let reg = reg.ok_or_else(|| fail!("no registration state"))?;
    let response = resp
        .registration_response
        .as_deref()
        .ok_or_else(|| fail!("ReauthStartResponse without registration-response"))?;
    let change = account::change_password(
        reg,
        new_pw,
        response,
        &client::ids(&user.name, sid),
        &user.account,
        &user.key_bundle,
        &mut rand_core::OsRng,
    )
    .ctx("change password")?;
    let verified = finish.is_some();
    let finalization = finish.map_or_else(|| vec![0u8; 64], |f| f.finalization);
    let req = api::PasswordChangeFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finalization),
        expected_account_revision: user.account_revision,
        registration_upload: ByteBuf::from(change.registration_upload),
        key_bundle: ByteBuf::from(change.key_bundle),
    };
    Ok((verified, req))
}

async fn password_change(http: &Http, sid: &str, user: &User, new_pw: &[u8]) -> R<User> {
    let other = client::login(http, sid, &user.name, &user.password).await?;
    // A wrong current password: the proof fails.
    let (verified, req) =
        password_change_request(http, sid, user, b"not the password", new_pw).await?;
    ensure!(!verified, "a wrong password authenticated the server");
    http.post("/v1/account/password/finish", user.t(), &req)
        .await?
        .problem(ProblemKind::ReauthFailed)
        .map_err(|e| fail!("a failed proof: {e}"))?;
    // A stale account revision.
    let (verified, mut req) =
        password_change_request(http, sid, user, &user.password, new_pw).await?;
    ensure!(verified, "the re-authentication response did not verify");
    req.expected_account_revision = user.account_revision + 7;
    let p = http
        .post("/v1/account/password/finish", user.t(), &req)
        .await?
        .problem(ProblemKind::RevisionMismatch)
        .map_err(|e| fail!("a stale expected-account-revision: {e}"))?;
    ensure!(
        p.current_revision == Some(user.account_revision),
        "revision-mismatch names current-revision {:?}, expected {}",
        p.current_revision,
        user.account_revision
    );
    // Success.
    let (verified, req) = password_change_request(http, sid, user, &user.password, new_pw).await?;
    ensure!(verified, "the re-authentication response did not verify");
    let up: api::AccountUpdated = http
        .post("/v1/account/password/finish", user.t(), &req)
        .await?
        .ok(200)?;
    ensure!(
        up.account_revision == user.account_revision + 1,
        "account revision {} after the change, expected {}",
        up.account_revision,
        user.account_revision + 1
    );
    ensure!(
        up.sessions_revoked >= 1,
        "sessions-revoked is 0 with another session live"
    );
    assert_ended(http, &other.token)
        .await
        .map_err(|e| fail!("the other session after a password change: {e}"))?;
    http.get("/v1/account", user.t()).await?.status_is(200)?;
    // The re-authentication was consumed.
    http.post("/v1/account/password/finish", user.t(), &req)
        .await?
        .problem(ProblemKind::ReauthFailed)
        .map_err(|e| fail!("a reused reauth-id: {e}"))?;
    // The old password fails, the new one opens the same master key.
    client::login_attempt(http, sid, &user.name, &user.password)
        .await?
        .resp
        .problem(ProblemKind::AuthenticationFailed)
        .map_err(|e| fail!("login with the old password: {e}"))?;
    let fresh = client::login(http, sid, &user.name, new_pw).await?;
    ensure!(
        fresh.account.master_key.key.expose() == user.account.master_key.key.expose(),
        "the new password opens another master key"
    );
    ensure!(
        fresh.account_revision == user.account_revision + 1,
        "login reports the old account revision"
    );
    // Carry on with the new session and the new password.
    Ok(User {
        password: new_pw.to_vec(),
        ..fresh
    })
}

/// Builds a `RecoveryFinishRequest` for a root-only account: the next key bundle and identity,
/// and the root re-signed (by `old_signer` when given, to provoke a refusal).
fn recovery_request(
    sid: &str,
    user: &User,
    new_pw: &[u8],
    current_identity: &[u8],
    started: (
        api::ReauthStartResponse,
        account::LoginFinish,
        account::ClientRegistration,
    ),
    sign_with_old: bool,
) -> R<(api::RecoveryFinishRequest, account::UnlockedAccount)> {
    let (resp, finish, reg) = started;
    use coffer_core::metadata::{seal_metadata, Metadata};
    use coffer_core::tree::{self, NewNode, SealedMetadata};
    let response = resp
        .registration_response
        .as_deref()
        .ok_or_else(|| fail!("ReauthStartResponse without registration-response"))?;
    let rec = account::recover(
        reg,
        new_pw,
        response,
        &client::ids(&user.name, sid),
        &user.account,
        current_identity,
        client::now(),
        &mut rand_core::OsRng,
    )
    .ctx("recover")?;
    let secrets = &rec.account.secrets;
    let node = NewNode {
        node_id: secrets.root_node_id,
        node_key: secrets.root_node_key.clone(),
    };
    let revision = user.root.record.metadata_revision + 1;
    let md = Metadata::folder("root".into(), client::now()).ctx("metadata")?;
    let sealed = seal_metadata(
        &node.node_key,
        &node.node_id,
        revision,
        &md,
        &mut rand_core::OsRng,
    );
    let signer = if sign_with_old {
        user.signing()
    } else {
        &secrets.identity.signing
    };
    let (_, signed) = tree::create_root(
        signer,
        &node,
        SealedMetadata { revision, sealed },
        client::now(),
    )
    .ctx("root record")?;
    Ok((
        api::RecoveryFinishRequest {
            reauth_id: resp.reauth_id,
            credential_finalization: ByteBuf::from(finish.finalization),
            expected_account_revision: user.account_revision,
            registration_upload: ByteBuf::from(rec.registration_upload),
            key_bundle: ByteBuf::from(rec.key_bundle),
            signed_identity: ByteBuf::from(rec.signed_identity),
            signed_nodes: vec![ByteBuf::from(coffer_core::encoding::encode(&signed))],
            rotations: Vec::new(),
            links: Vec::new(),
        },
        rec.account,
    ))
}

async fn recovery(http: &Http, sid: &str, user: &User, new_pw: &[u8]) -> R<User> {
    let other = client::login(http, sid, &user.name, &user.password).await?;
    let chain: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", user.account_id), None)
        .await?
        .ok(200)?;
    let current = chain
        .generations
        .last()
        .ok_or_else(|| fail!("an empty identity chain"))?
        .to_vec();
    let start = || async {
        let (resp, finish, reg) = client::reauth_start(
            http,
            sid,
            user,
            &user.password,
            ReauthPurpose::Recovery,
            Some(new_pw),
        )
        .await?;
        let finish =
            finish.ok_or_else(|| fail!("the re-authentication response did not verify"))?;
        let reg = reg.ok_or_else(|| fail!("no registration state"))?;
        Ok::<_, super::http::Failure>((resp, finish, reg))
    };
    // A root still signed by the old identity: refused, nothing changes.
    let (bad, _) = recovery_request(sid, user, new_pw, &current, start().await?, true)?;
    http.post("/v1/account/recover/finish", user.t(), &bad)
        .await?
        .problem(ProblemKind::InvalidRecord)
        .map_err(|e| fail!("a root signed by the old identity: {e}"))?;
    http.get("/v1/account", Some(&other.token))
        .await?
        .status_is(200)
        .map_err(|e| fail!("another session after a refused recovery: {e}"))?;
    // The real recovery.
    let (req, recovered) = recovery_request(sid, user, new_pw, &current, start().await?, false)?;
    let up: api::AccountUpdated = http
        .post("/v1/account/recover/finish", user.t(), &req)
        .await?
        .ok(200)?;
    ensure!(
        up.account_revision == user.account_revision + 1 && up.identity_generation == 1,
        "revision {} and identity generation {} after recovery, expected {} and 1",
        up.account_revision,
        up.identity_generation,
        user.account_revision + 1
    );
    ensure!(
        up.sessions_revoked >= 1,
        "sessions-revoked is 0 with another session live"
    );
    assert_ended(http, &other.token)
        .await
        .map_err(|e| fail!("another session after recovery: {e}"))?;
    let chain: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", user.account_id), None)
        .await?
        .ok(200)?;
    let id = account::verify_chain(&chain.generations).ctx("the new identity chain")?;
    ensure!(
        id.generation == 1 && id.signing_key == recovered.secrets.identity.signing.verifying_key(),
        "the identity chain does not end at the new generation"
    );
    client::login_attempt(http, sid, &user.name, &user.password)
        .await?
        .resp
        .problem(ProblemKind::AuthenticationFailed)
        .map_err(|e| fail!("login with the old password: {e}"))?;
    // `login` verifies the root under the new identity key.
    let fresh = client::login(http, sid, &user.name, new_pw).await?;
    ensure!(
        fresh.account.master_key.generation == 1 && fresh.account.secrets.identity_generation == 1,
        "the new key bundle is not at master key and identity generation 1"
    );
    Ok(User {
        password: new_pw.to_vec(),
        ..fresh
    })
}
