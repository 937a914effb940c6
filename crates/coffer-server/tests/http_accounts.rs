//! Control-plane HTTP tests: registration, login, sessions, re-authentication, password change,
//! deletion, identities, framing (problem documents, limits, shedding, shutdown, metrics).
//! Every test starts the real server on 127.0.0.1:0 with a temporary data directory.

mod common;

use std::time::Duration;

use coffer_core::account::{self, IdentityKeys};
use coffer_core::api::{
    AccountDeleteFinishRequest, AccountInfo, AccountUpdated, IdentityAppendRequest, IdentityChain,
    LoginFinishRequest, PasswordChangeFinishRequest, ProblemKind, ReauthPurpose,
    ReauthStartRequest, ReauthStartResponse, RegisterStartRequest, SessionList, SessionsRevoked,
    UserLookupResponse, Username, CBOR_CONTENT_TYPE,
};
use coffer_core::encoding::ByteBuf;
use coffer_server::config::{FileConfig, Rate};
use common::accounts::*;
use common::TestServer;
use rand_core::OsRng;
use reqwest::Method;

#[tokio::test]
async fn register_login_sessions_account_lookup() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = register(&srv, "alice", "correct horse").await;
    let s1 = login(&srv, "alice", "correct horse").await;
    assert_eq!(s1.response.account_id, alice.account_id);
    assert_eq!(s1.response.identity_generation, 0);
    assert_eq!(s1.response.account_revision, 0);
    assert_eq!(s1.response.root_node_id, alice.account.secrets.root_node_id);
    assert_eq!(
        s1.response.key_bundle.as_slice(),
        alice.key_bundle.as_slice()
    );

    // The account.
    let info: AccountInfo = srv.get("/v1/account", Some(&s1.token)).await.body(200);
    assert_eq!(info.account_id, alice.account_id);
    assert_eq!(info.username.as_str(), "alice");
    assert_eq!(info.storage_quota, None);
    let r = srv.get("/v1/account", Some(&s1.token)).await;
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    // User lookup.
    let u: UserLookupResponse = srv.get("/v1/users/alice", Some(&s1.token)).await.body(200);
    assert_eq!(u.account_id, alice.account_id);
    srv.get("/v1/users/nobody", Some(&s1.token))
        .await
        .expect(ProblemKind::NotFound);
    srv.get("/v1/users/Alice", Some(&s1.token))
        .await
        .expect(ProblemKind::InvalidParameter);
    srv.get("/v1/users/alice", None)
        .await
        .expect(ProblemKind::Unauthenticated);

    // The identity directory is public.
    let chain: IdentityChain = srv
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .body(200);
    assert_eq!(chain.generations.len(), 1);
    assert_eq!(
        chain.generations[0].as_slice(),
        alice.signed_identity.as_slice()
    );
    account::verify_chain(&chain.generations).expect("chain verifies");

    // Sessions: three logins, listed oldest first with the caller's marked.
    let s2 = login(&srv, "alice", "correct horse").await;
    let s3 = login(&srv, "alice", "correct horse").await;
    let list: SessionList = srv.get("/v1/sessions", Some(&s2.token)).await.body(200);
    assert_eq!(list.sessions.len(), 3);
    let current: Vec<_> = list.sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].session_id, s2.response.session_id);
    assert_eq!(current[0].label, "test");

    // Logout ends only the calling session.
    assert_eq!(
        srv.post_empty("/v1/sessions/logout", Some(&s2.token))
            .await
            .status,
        204
    );
    srv.get("/v1/account", Some(&s2.token))
        .await
        .expect(ProblemKind::Unauthenticated);
    assert_eq!(srv.get("/v1/account", Some(&s1.token)).await.status, 200);

    // Revoking one session by id.
    let path = format!(
        "/v1/sessions/{}",
        coffer_core::encoding::b64url_encode(s3.response.session_id.as_bytes())
    );
    assert_eq!(srv.delete(&path, Some(&s1.token)).await.status, 204);
    srv.get("/v1/account", Some(&s3.token))
        .await
        .expect(ProblemKind::Unauthenticated);
    srv.delete(&path, Some(&s1.token))
        .await
        .expect(ProblemKind::NotFound);

    // Another account cannot revoke alice's sessions (404, not 403).
    register(&srv, "bob", "bob's password").await;
    let bob = login(&srv, "bob", "bob's password").await;
    let s4 = login(&srv, "alice", "correct horse").await;
    let p4 = format!(
        "/v1/sessions/{}",
        coffer_core::encoding::b64url_encode(s4.response.session_id.as_bytes())
    );
    srv.delete(&p4, Some(&bob.token))
        .await
        .expect(ProblemKind::NotFound);
    assert_eq!(srv.get("/v1/account", Some(&s4.token)).await.status, 200);

    // Revoke others.
    let revoked: SessionsRevoked = srv
        .post_empty("/v1/sessions/revoke-others", Some(&s1.token))
        .await
        .body(200);
    assert_eq!(revoked.revoked, 1);
    srv.get("/v1/account", Some(&s4.token))
        .await
        .expect(ProblemKind::Unauthenticated);
    assert_eq!(srv.get("/v1/account", Some(&bob.token)).await.status, 200);
}

#[tokio::test]
async fn registration_conflicts_and_replay() {
    let mut cfg = FileConfig::default();
    cfg.rate_limits.register_per_address = Rate {
        count: 100,
        per_secs: 3600,
    };
    let srv = TestServer::start_with(cfg).await;
    let (req, _) = register_request(&srv, "carol", "pw-carol").await;
    // A second start for a reserved username.
    let (_, reg_req) = account::registration_start(b"other", &mut OsRng).expect("start");
    let start = RegisterStartRequest {
        username: Username::new("carol").expect("name"),
        registration_request: ByteBuf::from(reg_req),
    };
    srv.post("/v1/accounts/register/start", None, &start)
        .await
        .expect(ProblemKind::UsernameTaken);
    // Finish, then the identical finish again: the replay rule answers the same.
    let a = srv.post("/v1/accounts/register/finish", None, &req).await;
    let b = srv.post("/v1/accounts/register/finish", None, &req).await;
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(a.body, b.body);
    // The username is taken now.
    srv.post("/v1/accounts/register/start", None, &start)
        .await
        .expect(ProblemKind::UsernameTaken);
    // A finish for an account id without a reservation.
    let (mut other, _) = register_request(&srv, "dave", "pw-dave").await;
    other.account_id = coffer_core::ids::AccountId::from_bytes([9; 16]);
    let r = srv.post("/v1/accounts/register/finish", None, &other).await;
    assert!(r.status == 404 || r.status == 422, "{}", r.status);
    // A root node signed by someone else is refused.
    let (mut bad, _) = register_request(&srv, "erin", "pw-erin").await;
    let (good_for_other, _) = register_request(&srv, "frank", "pw-frank").await;
    bad.root_node = good_for_other.root_node.clone();
    srv.post("/v1/accounts/register/finish", None, &bad)
        .await
        .expect(ProblemKind::InvalidRecord);
    // A garbage key bundle is refused.
    let mut bad = good_for_other.clone();
    bad.key_bundle = ByteBuf::from(vec![0x82, 0x01, 0x02]);
    srv.post("/v1/accounts/register/finish", None, &bad)
        .await
        .expect(ProblemKind::InvalidRecord);
    srv.assert_healthy().await;
}

#[tokio::test]
async fn registration_starts_are_rate_limited_per_address() {
    let mut cfg = FileConfig::default();
    cfg.rate_limits.register_per_address = Rate {
        count: 2,
        per_secs: 3600,
    };
    let srv = TestServer::start_with(cfg).await;
    for name in ["ann", "ben", "cid"] {
        let (_, reg_req) = account::registration_start(b"x", &mut OsRng).expect("start");
        let r = srv
            .post(
                "/v1/accounts/register/start",
                None,
                &RegisterStartRequest {
                    username: Username::new(name).expect("name"),
                    registration_request: ByteBuf::from(reg_req),
                },
            )
            .await;
        if name == "cid" {
            r.expect(ProblemKind::RateLimited);
            let secs: u64 = r
                .header("retry-after")
                .as_deref()
                .expect("header")
                .parse()
                .expect("n");
            assert!((1..=1800).contains(&secs), "{secs}");
        } else {
            assert_eq!(r.status, 201);
        }
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_used_login_ids() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    register(&srv, "alice", "right").await;
    failed_login(&srv, "alice", "wrong")
        .await
        .expect(ProblemKind::AuthenticationFailed);
    // An unknown user still gets a login id and a (fake) credential response.
    let r = failed_login(&srv, "nobody", "whatever").await;
    r.expect(ProblemKind::AuthenticationFailed);
    // A login id is single-use.
    let (start, finish) = login_start(&srv, "alice", "right").await;
    let finish = finish.expect("right password");
    let req = LoginFinishRequest {
        login_id: start.login_id,
        credential_finalization: ByteBuf::from(finish.finalization),
        session_label: "x".into(),
    };
    assert_eq!(
        srv.post("/v1/sessions/login/finish", None, &req)
            .await
            .status,
        200
    );
    srv.post("/v1/sessions/login/finish", None, &req)
        .await
        .expect(ProblemKind::AuthenticationFailed);
}

#[tokio::test]
async fn login_failures_lock_the_username_for_the_window() {
    let mut cfg = FileConfig::default();
    cfg.rate_limits.login_failures_per_user = Rate {
        count: 2,
        per_secs: 600,
    };
    let srv = TestServer::start_with(cfg).await;
    register(&srv, "alice", "right").await;
    for _ in 0..2 {
        failed_login(&srv, "alice", "wrong")
            .await
            .expect(ProblemKind::AuthenticationFailed);
    }
    let (_, req) = account::login_start(b"right", &mut OsRng).expect("start");
    let r = srv
        .post(
            "/v1/sessions/login/start",
            None,
            &coffer_core::api::LoginStartRequest {
                username: Username::new("alice").expect("name"),
                credential_request: ByteBuf::from(req),
            },
        )
        .await;
    let p = r.expect(ProblemKind::RateLimited);
    let retry: u64 = r
        .header("retry-after")
        .as_deref()
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=600).contains(&retry));
    assert_eq!(p.retry_after, Some(retry));
}

/// Runs a re-authentication start for `purpose` with the given password.
async fn reauth(
    srv: &TestServer,
    token: &str,
    username: &str,
    password: &str,
    purpose: ReauthPurpose,
    new_password: Option<&str>,
) -> (
    ReauthStartResponse,
    Option<account::LoginFinish>,
    Option<account::ClientRegistration>,
) {
    let path = match purpose {
        ReauthPurpose::PasswordChange => "/v1/account/password/start",
        ReauthPurpose::Recovery => "/v1/account/recover/start",
        ReauthPurpose::AccountDeletion => "/v1/account/delete/start",
    };
    let (login_state, credential_request) =
        account::login_start(password.as_bytes(), &mut OsRng).expect("login start");
    let (reg_state, registration_request) = match new_password {
        Some(p) => {
            let (s, r) = account::registration_start(p.as_bytes(), &mut OsRng).expect("reg");
            (Some(s), Some(ByteBuf::from(r)))
        }
        None => (None, None),
    };
    let resp: ReauthStartResponse = srv
        .post(
            path,
            Some(token),
            &ReauthStartRequest {
                purpose,
                credential_request: ByteBuf::from(credential_request),
                registration_request,
            },
        )
        .await
        .body(200);
    assert_eq!(resp.purpose, purpose);
    let finish = account::login_finish(
        login_state,
        password.as_bytes(),
        &resp.credential_response,
        &ids(username),
        &mut OsRng,
    )
    .ok();
    (resp, finish, reg_state)
}

#[tokio::test]
async fn password_change_revokes_other_sessions() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    register(&srv, "alice", "old password").await;
    let s1 = login(&srv, "alice", "old password").await;
    let s2 = login(&srv, "alice", "old password").await;

    // A wrong current password fails the fresh proof.
    let (resp, finish, reg) = reauth(
        &srv,
        &s1.token,
        "alice",
        "not the password",
        ReauthPurpose::PasswordChange,
        Some("new password"),
    )
    .await;
    assert!(finish.is_none());
    let change = account::change_password(
        reg.expect("reg state"),
        b"new password",
        resp.registration_response
            .as_deref()
            .expect("registration response"),
        &ids("alice"),
        &s1.account,
        &s1.response.key_bundle,
        &mut OsRng,
    )
    .expect("change");
    let bad = PasswordChangeFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(vec![1u8; 64]),
        expected_account_revision: 0,
        registration_upload: ByteBuf::from(change.registration_upload.clone()),
        key_bundle: ByteBuf::from(change.key_bundle.clone()),
    };
    srv.post("/v1/account/password/finish", Some(&s1.token), &bad)
        .await
        .expect(ProblemKind::ReauthFailed);

    // The right password, but a proof started by another session is refused.
    let (resp, finish, reg) = reauth(
        &srv,
        &s2.token,
        "alice",
        "old password",
        ReauthPurpose::PasswordChange,
        Some("new password"),
    )
    .await;
    let finish = finish.expect("right password");
    let change = account::change_password(
        reg.expect("reg state"),
        b"new password",
        resp.registration_response
            .as_deref()
            .expect("registration response"),
        &ids("alice"),
        &s1.account,
        &s1.response.key_bundle,
        &mut OsRng,
    )
    .expect("change");
    let req = PasswordChangeFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finish.finalization),
        expected_account_revision: 0,
        registration_upload: ByteBuf::from(change.registration_upload),
        key_bundle: ByteBuf::from(change.key_bundle),
    };
    srv.post("/v1/account/password/finish", Some(&s1.token), &req)
        .await
        .expect(ProblemKind::ReauthFailed);

    // The same flow from the right session succeeds.
    let (resp, finish, reg) = reauth(
        &srv,
        &s1.token,
        "alice",
        "old password",
        ReauthPurpose::PasswordChange,
        Some("new password"),
    )
    .await;
    let finish = finish.expect("right password");
    let change = account::change_password(
        reg.expect("reg state"),
        b"new password",
        resp.registration_response
            .as_deref()
            .expect("registration response"),
        &ids("alice"),
        &s1.account,
        &s1.response.key_bundle,
        &mut OsRng,
    )
    .expect("change");
    let mut req = PasswordChangeFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finish.finalization),
        expected_account_revision: 0,
        registration_upload: ByteBuf::from(change.registration_upload),
        key_bundle: ByteBuf::from(change.key_bundle),
    };
    let updated: AccountUpdated = srv
        .post("/v1/account/password/finish", Some(&s1.token), &req)
        .await
        .body(200);
    assert_eq!(updated.account_revision, 1);
    assert_eq!(updated.sessions_revoked, 1);
    srv.get("/v1/account", Some(&s2.token))
        .await
        .expect(ProblemKind::Unauthenticated);
    assert_eq!(srv.get("/v1/account", Some(&s1.token)).await.status, 200);
    // The reauth id was consumed.
    req.expected_account_revision = 1;
    srv.post("/v1/account/password/finish", Some(&s1.token), &req)
        .await
        .expect(ProblemKind::ReauthFailed);

    // The old password fails, the new one works and opens the same master key.
    failed_login(&srv, "alice", "old password")
        .await
        .expect(ProblemKind::AuthenticationFailed);
    let s3 = login(&srv, "alice", "new password").await;
    assert_eq!(s3.response.account_revision, 1);
    assert_eq!(
        s3.account.master_key.key.expose(),
        s1.account.master_key.key.expose()
    );
}

#[tokio::test]
async fn reauth_purpose_must_match_the_endpoint() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    register(&srv, "alice", "pw").await;
    let s = login(&srv, "alice", "pw").await;
    let (_, credential_request) = account::login_start(b"pw", &mut OsRng).expect("start");
    let req = ReauthStartRequest {
        purpose: ReauthPurpose::AccountDeletion,
        credential_request: ByteBuf::from(credential_request),
        registration_request: None,
    };
    srv.post("/v1/account/password/start", Some(&s.token), &req)
        .await
        .expect(ProblemKind::MalformedBody);
    srv.post("/v1/account/delete/start", None, &req)
        .await
        .expect(ProblemKind::Unauthenticated);
}

#[tokio::test]
async fn account_deletion_removes_everything() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = register(&srv, "alice", "pw").await;
    let s1 = login(&srv, "alice", "pw").await;
    let s2 = login(&srv, "alice", "pw").await;

    let (resp, finish, _) = reauth(
        &srv,
        &s1.token,
        "alice",
        "pw",
        ReauthPurpose::AccountDeletion,
        None,
    )
    .await;
    let finish = finish.expect("right password");
    // The account id in the body must be the session's.
    let wrong = AccountDeleteFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finish.finalization.clone()),
        account_id: coffer_core::ids::AccountId::from_bytes([1; 16]),
    };
    srv.post("/v1/account/delete/finish", Some(&s1.token), &wrong)
        .await
        .expect(ProblemKind::MalformedBody);

    let (resp, finish, _) = reauth(
        &srv,
        &s1.token,
        "alice",
        "pw",
        ReauthPurpose::AccountDeletion,
        None,
    )
    .await;
    let req = AccountDeleteFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finish.expect("right").finalization),
        account_id: alice.account_id,
    };
    assert_eq!(
        srv.post("/v1/account/delete/finish", Some(&s1.token), &req)
            .await
            .status,
        204
    );
    // Every session is gone, and login fails like for an unknown user.
    for t in [&s1.token, &s2.token] {
        srv.get("/v1/account", Some(t))
            .await
            .expect(ProblemKind::Unauthenticated);
    }
    failed_login(&srv, "alice", "pw")
        .await
        .expect(ProblemKind::AuthenticationFailed);
    // The identity chain is kept (records alice signed must still verify); the name is retained.
    let chain: IdentityChain = srv
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .body(200);
    assert_eq!(chain.generations.len(), 1);
    let (_, reg_req) = account::registration_start(b"x", &mut OsRng).expect("start");
    srv.post(
        "/v1/accounts/register/start",
        None,
        &RegisterStartRequest {
            username: Username::new("alice").expect("name"),
            registration_request: ByteBuf::from(reg_req),
        },
    )
    .await
    .expect(ProblemKind::UsernameTaken);
    // Nothing of the account is left in the store.
    let meta = &srv.handle.state().meta;
    assert!(meta
        .account(alice.account_id)
        .await
        .expect("store")
        .is_none());
    assert!(meta
        .node(alice.account.secrets.root_node_id)
        .await
        .expect("store")
        .is_none());
}

#[tokio::test]
async fn identity_append_checks_the_chain() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = register(&srv, "alice", "pw").await;
    register(&srv, "bob", "pw").await;
    let s = login(&srv, "alice", "pw").await;
    let bob = login(&srv, "bob", "pw").await;
    let path = format!("/v1/identities/{}", alice.account_id);
    let next_keys = IdentityKeys::generate(&mut OsRng);
    let next = account::rotate_identity(
        &alice.signed_identity,
        &alice.account.secrets.identity.signing,
        &next_keys,
        srv.now(),
    )
    .expect("rotate");
    let req = IdentityAppendRequest {
        expected_generation: 0,
        signed_identity: ByteBuf::from(next.clone()),
    };
    // Only the account itself.
    srv.send(Method::PUT, &path, Some(&bob.token), &req)
        .await
        .expect(ProblemKind::Forbidden);
    // A stale expected generation.
    let stale = IdentityAppendRequest {
        expected_generation: 5,
        signed_identity: ByteBuf::from(next.clone()),
    };
    let p = srv
        .send(Method::PUT, &path, Some(&s.token), &stale)
        .await
        .expect(ProblemKind::RevisionMismatch);
    assert_eq!(p.current_revision, Some(0));
    // A record that does not chain (generation 0 of someone else).
    let other = IdentityAppendRequest {
        expected_generation: 0,
        signed_identity: ByteBuf::from(
            account::create_identity(&next_keys, "alice", srv.now()).expect("identity"),
        ),
    };
    srv.send(Method::PUT, &path, Some(&s.token), &other)
        .await
        .expect(ProblemKind::InvalidRecord);
    // The real next generation, then its replay.
    let chain: IdentityChain = srv
        .send(Method::PUT, &path, Some(&s.token), &req)
        .await
        .body(200);
    assert_eq!(chain.generations.len(), 2);
    let again: IdentityChain = srv
        .send(Method::PUT, &path, Some(&s.token), &req)
        .await
        .body(200);
    assert_eq!(again, chain);
    let v = account::verify_chain(&chain.generations).expect("verifies");
    assert_eq!(v.generation, 1);
    srv.get("/v1/identities/AAAAAAAAAAAAAAAAAAAAAA", None)
        .await
        .expect(ProblemKind::NotFound);
}

#[tokio::test]
async fn bad_input_gets_problem_documents_and_the_server_keeps_serving() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = register(&srv, "alice", "pw").await;
    let s = login(&srv, "alice", "pw").await;
    let (_, reg_req) = account::registration_start(b"x", &mut OsRng).expect("start");
    let good = RegisterStartRequest {
        username: Username::new("zed").expect("name"),
        registration_request: ByteBuf::from(reg_req),
    };
    let bytes = coffer_core::api::Body::to_bytes(&good);
    let path = "/v1/accounts/register/start";
    let post = |body: Vec<u8>, ct: Option<&'static str>| {
        let srv = &srv;
        async move { srv.raw(Method::POST, path, None, ct, Some(body)).await }
    };
    // Garbage, truncated, trailing bytes, non-canonical, wrong type code.
    post(b"\xff\x00garbage".to_vec(), Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::MalformedBody);
    post(bytes[..bytes.len() - 3].to_vec(), Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::MalformedBody);
    let mut trailing = bytes.clone();
    trailing.push(0);
    post(trailing, Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::MalformedBody);
    // Non-canonical: the type code 100 as a two-byte integer (0x18 0x64 → 0x19 0x00 0x64).
    assert_eq!(&bytes[1..3], &[0x18, 0x64]);
    let mut noncanon = vec![bytes[0], 0x19, 0x00, 0x64];
    noncanon.extend_from_slice(&bytes[3..]);
    post(noncanon, Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::MalformedBody);
    let mut wrong_type = bytes.clone();
    wrong_type[2] = 0x65;
    post(wrong_type, Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::MalformedBody);
    // Wrong media type, no media type.
    post(bytes.clone(), Some("application/json"))
        .await
        .expect(ProblemKind::UnsupportedMediaType);
    post(bytes.clone(), None)
        .await
        .expect(ProblemKind::UnsupportedMediaType);
    // Oversized: declared and streamed.
    post(vec![0u8; 70_000], Some(CBOR_CONTENT_TYPE))
        .await
        .expect(ProblemKind::PayloadTooLarge);
    let stream = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 8192]))),
    );
    let r = srv
        .client
        .post(format!("{}{path}", srv.base))
        .header("content-type", CBOR_CONTENT_TYPE)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 413);
    // A body on a no-body endpoint.
    srv.raw(
        Method::POST,
        "/v1/sessions/logout",
        Some(&s.token),
        Some(CBOR_CONTENT_TYPE),
        Some(vec![0x80]),
    )
    .await
    .expect(ProblemKind::MalformedBody);
    // Authentication comes before the body.
    srv.raw(
        Method::POST,
        "/v1/account/password/start",
        None,
        Some("text/plain"),
        Some(b"hello".to_vec()),
    )
    .await
    .expect(ProblemKind::Unauthenticated);
    // Malformed and unknown tokens are treated alike.
    for t in ["abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""] {
        let r = srv.get("/v1/account", Some(t)).await;
        r.expect(ProblemKind::Unauthenticated);
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"coffer\"")
        );
    }
    // Paths, methods, queries.
    srv.get("/v1/nothing-here", None)
        .await
        .expect(ProblemKind::NotFound);
    let r = srv.get("/v1/accounts/register/start", None).await;
    r.expect(ProblemKind::MethodNotAllowed);
    assert!(r
        .header("allow")
        .as_deref()
        .is_some_and(|a| a.contains("POST")));
    srv.get("/v1/identities/not-an-id", None)
        .await
        .expect(ProblemKind::InvalidParameter);
    srv.get(&format!("/v1/identities/{}?x=1", alice.account_id), None)
        .await
        .expect(ProblemKind::InvalidParameter);
    srv.delete("/v1/sessions/AAAA", Some(&s.token))
        .await
        .expect(ProblemKind::InvalidParameter);
    // Still serving, and the good request works.
    srv.assert_healthy().await;
    assert_eq!(post(bytes, Some(CBOR_CONTENT_TYPE)).await.status, 201);
}

/// A request whose body arrives only when the test says so: it holds an in-flight slot.
fn held_request(
    srv: &TestServer,
) -> (
    tokio::task::JoinHandle<u16>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stream = futures_util::stream::once(async move {
        let _ = rx.await;
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"\x80"))
    });
    let req = srv
        .client
        .post(format!("{}/v1/accounts/register/start", srv.base))
        .header("content-type", CBOR_CONTENT_TYPE)
        .body(reqwest::Body::wrap_stream(stream));
    let task = tokio::spawn(async move { req.send().await.expect("send").status().as_u16() });
    (task, tx)
}

#[tokio::test]
async fn load_shedding_answers_503_with_retry_after() {
    let mut cfg = FileConfig::default();
    cfg.limits.max_in_flight = 1;
    let srv = TestServer::start_with(cfg).await;
    let (task, release) = held_request(&srv);
    // Wait until the held request occupies the slot.
    let mut shed = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = srv.get("/v1/account", None).await;
        if r.status == 503 {
            shed = Some(r);
            break;
        }
    }
    let r = shed.expect("a second request is shed");
    r.expect_shed(1..=30);
    release.send(()).expect("release");
    // The held request completes (its body is not a valid request: 400).
    assert_eq!(task.await.expect("task"), 400);
    srv.assert_healthy().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let addr = srv.handle.local_addr();
    let (task, release) = held_request(&srv);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let TestServer { handle, dir, .. } = srv;
    let shutdown = tokio::spawn(handle.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shutdown.is_finished(), "shutdown waits for the request");
    release.send(()).expect("release");
    assert_eq!(task.await.expect("task"), 400);
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes")
        .expect("join")
        .expect("clean shutdown");
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    drop(dir);
}

#[tokio::test]
async fn metrics_need_the_operator_token_and_use_route_templates() {
    let mut cfg = FileConfig::default();
    cfg.server.metrics_token = Some("operator-secret".into());
    let srv = TestServer::start_with(cfg).await;
    let alice = register(&srv, "alice", "pw").await;
    srv.get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .body::<IdentityChain>(200);
    srv.get("/metrics", None)
        .await
        .expect(ProblemKind::Unauthenticated);
    srv.get("/metrics", Some("wrong"))
        .await
        .expect(ProblemKind::Unauthenticated);
    let r = srv.get("/metrics", Some("operator-secret")).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf-8");
    assert!(text.contains(
        "cofferd_http_requests_total{method=\"GET\",route=\"/v1/identities/{account_id}\",status=\"200\"} 1"
    ), "{text}");
    assert!(text.contains("cofferd_http_request_duration_seconds_bucket"));
    assert!(text.contains("cofferd_shed_requests_total 0"));
    assert!(
        !text.contains(&alice.account_id.to_string()),
        "no ids in metrics"
    );
    // Without a configured token the endpoint does not exist.
    let plain = TestServer::start_with(FileConfig::default()).await;
    plain
        .get("/metrics", None)
        .await
        .expect(ProblemKind::NotFound);
}

#[tokio::test]
async fn the_opaque_setup_survives_a_restart() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    register(&srv, "alice", "pw").await;
    let TestServer { handle, dir, .. } = srv;
    handle.shutdown().await.expect("shutdown");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(coffer_server::OPAQUE_SETUP_FILE))
            .expect("setup file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The same data directory, with the test configuration (queue-delay shedding off: the
    // client's Argon2id runs on this test's runtime, and a loaded machine made it shed).
    let srv = TestServer::start_in(dir).await;
    let s = login(&srv, "alice", "pw").await;
    let _: AccountInfo = srv.get("/v1/account", Some(&s.token)).await.body(200);
}

#[tokio::test]
async fn compromise_recovery_rekeys_the_tree_and_the_identity() {
    use coffer_core::api::RecoveryFinishRequest;
    use coffer_core::metadata::{seal_metadata, Metadata};
    use coffer_core::tree::{self, NewNode, SealedMetadata};

    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = register(&srv, "alice", "old").await;
    let s1 = login(&srv, "alice", "old").await;
    let s2 = login(&srv, "alice", "old").await;

    let build = |resp: &ReauthStartResponse,
                 finish: account::LoginFinish,
                 reg: account::ClientRegistration,
                 sign_with_new: bool| {
        let rec = account::recover(
            reg,
            b"new",
            resp.registration_response
                .as_deref()
                .expect("registration response"),
            &ids("alice"),
            &s1.account,
            &alice.signed_identity,
            srv.now(),
            &mut OsRng,
        )
        .expect("recover");
        let secrets = &rec.account.secrets;
        let node = NewNode {
            node_id: secrets.root_node_id,
            node_key: secrets.root_node_key.clone(),
        };
        let md = Metadata::new("root".into(), 0, srv.now(), None, None).expect("md");
        let sealed = seal_metadata(&node.node_key, &node.node_id, 2, &md, &mut OsRng);
        let signer = if sign_with_new {
            &secrets.identity.signing
        } else {
            &s1.account.secrets.identity.signing
        };
        let (_, signed) = tree::create_root(
            signer,
            &node,
            SealedMetadata {
                revision: 2,
                sealed,
            },
            srv.now(),
        )
        .expect("root");
        RecoveryFinishRequest {
            reauth_id: resp.reauth_id,
            credential_finalization: ByteBuf::from(finish.finalization),
            expected_account_revision: 0,
            registration_upload: ByteBuf::from(rec.registration_upload),
            key_bundle: ByteBuf::from(rec.key_bundle),
            signed_identity: ByteBuf::from(rec.signed_identity),
            signed_nodes: vec![ByteBuf::from(coffer_core::encoding::encode(&signed))],
            rotations: Vec::new(),
            links: Vec::new(),
        }
    };

    // A root still signed by the old identity is refused, and nothing changes.
    let (resp, finish, reg) = reauth(
        &srv,
        &s1.token,
        "alice",
        "old",
        ReauthPurpose::Recovery,
        Some("new"),
    )
    .await;
    let bad = build(&resp, finish.expect("right"), reg.expect("reg"), false);
    srv.post("/v1/account/recover/finish", Some(&s1.token), &bad)
        .await
        .expect(ProblemKind::InvalidRecord);
    assert_eq!(srv.get("/v1/account", Some(&s2.token)).await.status, 200);

    let (resp, finish, reg) = reauth(
        &srv,
        &s1.token,
        "alice",
        "old",
        ReauthPurpose::Recovery,
        Some("new"),
    )
    .await;
    let req = build(&resp, finish.expect("right"), reg.expect("reg"), true);
    let updated: AccountUpdated = srv
        .post("/v1/account/recover/finish", Some(&s1.token), &req)
        .await
        .body(200);
    assert_eq!(updated.account_revision, 1);
    assert_eq!(updated.identity_generation, 1);
    assert_eq!(updated.sessions_revoked, 1);
    srv.get("/v1/account", Some(&s2.token))
        .await
        .expect(ProblemKind::Unauthenticated);
    let chain: IdentityChain = srv
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .body(200);
    assert_eq!(chain.generations.len(), 2);
    failed_login(&srv, "alice", "old")
        .await
        .expect(ProblemKind::AuthenticationFailed);
    let s3 = login(&srv, "alice", "new").await;
    assert_eq!(s3.response.identity_generation, 1);
    assert_eq!(s3.account.master_key.generation, 1);
}
