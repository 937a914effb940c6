//! The client side of registration and login with explicit passwords (the account tests),
//! built from coffer-core.

use coffer_core::account::{self, OpaqueIdentities, UnlockedAccount};
use coffer_core::api::{
    LoginFinishRequest, LoginFinishResponse, LoginStartRequest, LoginStartResponse,
    RegisterFinishRequest, RegisterFinishResponse, RegisterStartRequest, RegisterStartResponse,
    Username,
};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::AccountId;
use rand_core::OsRng;

use super::{Resp, TestServer};

/// The server identity OPAQUE binds (the configuration's default, `server_identity()`).
pub const SERVER_IDENTITY: &str = "coffer";

pub fn ids(user: &str) -> OpaqueIdentities<'_> {
    OpaqueIdentities {
        user_name: user,
        server_identity: SERVER_IDENTITY,
    }
}

/// A registered user (not logged in).
pub struct Registered {
    pub username: String,
    pub account_id: AccountId,
    pub account: UnlockedAccount,
    pub key_bundle: Vec<u8>,
    pub signed_identity: Vec<u8>,
    pub root_node: Vec<u8>,
}

/// A logged-in session.
pub struct LoggedIn {
    pub token: String,
    pub response: LoginFinishResponse,
    pub account: UnlockedAccount,
}

/// The client side of registration, returning the finish request (not yet sent).
pub async fn register_request(
    srv: &TestServer,
    username: &str,
    password: &str,
) -> (RegisterFinishRequest, UnlockedAccount) {
    let (state, request) =
        account::registration_start(password.as_bytes(), &mut OsRng).expect("registration start");
    let start: RegisterStartResponse = srv
        .post(
            "/v1/accounts/register/start",
            None,
            &RegisterStartRequest {
                username: Username::new(username).expect("username"),
                registration_request: ByteBuf::from(request),
            },
        )
        .await
        .body(201);
    let now = srv.now();
    let reg = account::register(
        state,
        password.as_bytes(),
        &start.registration_response,
        &ids(username),
        start.account_id,
        now,
        &mut OsRng,
    )
    .expect("register");
    let finish = RegisterFinishRequest::new(&reg, now, &mut OsRng).expect("finish request");
    (finish, reg.account)
}

pub async fn register(srv: &TestServer, username: &str, password: &str) -> Registered {
    let (req, account) = register_request(srv, username, password).await;
    let done: RegisterFinishResponse = srv
        .post("/v1/accounts/register/finish", None, &req)
        .await
        .body(201);
    assert_eq!(done.account_id, req.account_id);
    assert_eq!(done.account_revision, 0);
    Registered {
        username: username.into(),
        account_id: req.account_id,
        account,
        key_bundle: req.key_bundle.to_vec(),
        signed_identity: req.signed_identity.to_vec(),
        root_node: req.root_node.to_vec(),
    }
}

/// Runs login start; returns the login id and the client's OPAQUE result, or `None` when the
/// client's own OPAQUE check fails (wrong password).
pub async fn login_start(
    srv: &TestServer,
    username: &str,
    password: &str,
) -> (LoginStartResponse, Option<account::LoginFinish>) {
    let (state, request) =
        account::login_start(password.as_bytes(), &mut OsRng).expect("login start");
    let r = srv
        .post(
            "/v1/sessions/login/start",
            None,
            &LoginStartRequest {
                username: Username::new(username).expect("username"),
                credential_request: ByteBuf::from(request),
            },
        )
        .await;
    let start: LoginStartResponse = r.body(200);
    let finish = account::login_finish(
        state,
        password.as_bytes(),
        &start.credential_response,
        &ids(username),
        &mut OsRng,
    )
    .ok();
    (start, finish)
}

/// A full login; panics unless it succeeds.
pub async fn login(srv: &TestServer, username: &str, password: &str) -> LoggedIn {
    let (start, finish) = login_start(srv, username, password).await;
    let finish = finish.expect("the server authenticated itself");
    let resp: LoginFinishResponse = srv
        .post(
            "/v1/sessions/login/finish",
            None,
            &LoginFinishRequest {
                login_id: start.login_id,
                credential_finalization: ByteBuf::from(finish.finalization),
                session_label: "test".into(),
            },
        )
        .await
        .body(200);
    let account = account::unlock(&finish.export_key, &resp.account_id, &resp.key_bundle)
        .expect("the key bundle opens with the export key");
    LoggedIn {
        token: resp.session_token.to_b64(),
        response: resp,
        account,
    }
}

/// A login whose client side failed (wrong password): sends a well-formed but wrong
/// finalization and returns the server's answer.
pub async fn failed_login(srv: &TestServer, username: &str, password: &str) -> Resp {
    let (start, finish) = login_start(srv, username, password).await;
    assert!(
        finish.is_none(),
        "the wrong password must not authenticate the server"
    );
    srv.post(
        "/v1/sessions/login/finish",
        None,
        &LoginFinishRequest {
            login_id: start.login_id,
            credential_finalization: ByteBuf::from(vec![7u8; 64]),
            session_label: String::new(),
        },
    )
    .await
}
