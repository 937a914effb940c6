//! Client-side test harness for `cofferd`: starts a real server on an ephemeral port with a
//! temporary data directory and speaks the protocol of spec §11 to it over HTTP, using coffer-core
//! for everything a client does (OPAQUE, node records, content encryption, shares).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

pub mod accounts;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_core::account::{self, OpaqueIdentities, UnlockedAccount};
use coffer_core::api::{self, Body, Problem, ProblemKind};
use coffer_core::encoding::{decode, encode, ByteBuf};
use coffer_core::ids::{AccountId, NodeId, ShareId, UploadId};
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::primitives::SecretKey;
use coffer_core::share::{self, GranterKeys, PinnedIdentity};
use coffer_core::tree::{self, FileContent, FolderKey, NewNode, NodeRecord, SealedMetadata};
use rand_core::OsRng;
use reqwest::Method;

/// The password every test user has.
pub const PASSWORD: &[u8] = b"correct horse battery staple";

/// The smallest legal part size (16 chunk strides).
pub const PART: u64 = api::MIN_PART_SIZE;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// Servers

/// A server running in this process (the library's `serve`), on 127.0.0.1 with a temp dir.
pub struct TestServer {
    pub handle: coffer_server::ServerHandle,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the test configuration (lenient rate limits).
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir).await
    }

    /// A server on `dir` with the test configuration.
    pub async fn start_in(dir: tempfile::TempDir) -> TestServer {
        let config = test_config(dir.path());
        Self::serve(config, dir).await
    }

    /// A server with the given limits, quotas and rate limits (e.g. the defaults), except that
    /// queue-delay shedding is off: a loaded test machine stalls the test's runtime, and a shed
    /// request would fail an unrelated test. `tests/overload.rs` uses
    /// [`TestServer::start_exactly`].
    pub async fn start_with(mut file: coffer_server::config::FileConfig) -> TestServer {
        file.limits.max_queue_delay_ms = 0;
        Self::start_exactly(file).await
    }

    /// A server with exactly the given limits, quotas and rate limits.
    pub async fn start_exactly(file: coffer_server::config::FileConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        config.file = file;
        Self::serve(config, dir).await
    }

    async fn serve(config: coffer_server::config::Config, dir: tempfile::TempDir) -> TestServer {
        let handle = start_server(config).await;
        TestServer {
            base: format!("http://{}", handle.local_addr()),
            handle,
            client: reqwest::Client::new(),
            dir,
        }
    }

    pub fn http(&self) -> Http {
        Http::new(&self.base)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.handle.shutdown().await.expect("shutdown");
        self.dir
    }

    /// The server's clock.
    pub fn now(&self) -> u64 {
        self.handle.state().now()
    }

    /// One request, read whole.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.http()
            .send(method, path, token, content_type, body, &[])
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::GET, path, token, None, None).await
    }

    /// A request with a CBOR body.
    pub async fn send<B: Body>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Resp {
        self.http().cbor(method, path, token, body).await
    }

    pub async fn post<B: Body>(&self, path: &str, token: Option<&str>, body: &B) -> Resp {
        self.send(Method::POST, path, token, body).await
    }

    /// `POST` of a "no body" endpoint.
    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::POST, path, token, None, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::DELETE, path, token, None, None).await
    }

    /// Checks the server still serves.
    /// Waits (up to 5 s) until `/healthz` answers `200`: the server is not shedding. With
    /// queue-delay shedding on, a test's own CPU work on the server's runtime (a client's
    /// Argon2id) makes the next new request look queued; this lets the runtime's probe see it
    /// idle again.
    pub async fn settle(&self) {
        let started = std::time::Instant::now();
        while self.get("/healthz", None).await.status != 200 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "still shedding after 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn assert_healthy(&self) {
        let r = self.get("/healthz", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
    }
}

/// Starts the library's server on the configuration's data directory.
pub async fn start_server(config: coffer_server::config::Config) -> coffer_server::ServerHandle {
    coffer_server::serve(config).await.expect("serve")
}

/// Rate limits the test suite itself cannot trip (one client address registers and logs in
/// many users); the limits themselves are tested by the control-plane tests.
pub const TEST_CONFIG_TOML: &str = r#"
# Queue-delay shedding off: a loaded test machine stalls the runtime (see `start_with`).
[limits]
max-queue-delay-ms = 0

[rate-limits]
register-per-address = { count = 1000000, per-secs = 1 }
login-per-user-address = { count = 1000000, per-secs = 1 }
login-per-user = { count = 1000000, per-secs = 1 }
login-per-address = { count = 1000000, per-secs = 1 }
login-failures-per-user = { count = 1000000, per-secs = 1 }
reauth-failures-per-account = { count = 1000000, per-secs = 1 }
lookups-per-session = { count = 1000000, per-secs = 1 }
identity-reads-per-address = { count = 1000000, per-secs = 1 }
unlock-failures-per-link = { count = 1000000, per-secs = 1 }
unlock-failures-per-address = { count = 1000000, per-secs = 1 }
link-requests-per-address = { count = 1000000, per-secs = 1 }
link-requests-per-link = { count = 1000000, per-secs = 1 }
drops-per-link = { count = 1000000, per-secs = 1 }
drops-per-address = { count = 1000000, per-secs = 1 }
requests-per-session = { count = 1000000, per-secs = 1 }
"#;

/// The configuration tests use: loopback, ephemeral port, the test rate limits.
pub fn test_config(dir: &Path) -> coffer_server::config::Config {
    let mut c =
        coffer_server::config::Config::new("127.0.0.1:0".parse().expect("addr"), dir.to_path_buf());
    c.file = coffer_server::config::FileConfig::parse(TEST_CONFIG_TOML).expect("test config");
    c
}

/// A real `cofferd` process (for kill -9).
pub struct Process {
    pub url: String,
    pub child: Child,
}

impl Process {
    pub fn spawn(data: &Path) -> Process {
        let port = free_port();
        let config = data.with_extension("toml");
        std::fs::write(&config, TEST_CONFIG_TOML).expect("config file");
        let child = Command::new(env!("CARGO_BIN_EXE_cofferd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cofferd");
        Process {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    pub async fn wait_ready(&self) {
        let http = Http::new(&self.url);
        for _ in 0..200 {
            if let Ok(r) = http
                .try_send(Method::GET, "/healthz", None, None, None, &[])
                .await
            {
                if r.status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cofferd did not become ready");
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ------------------------------------------------------------------------------------------
// HTTP

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as `T`, after checking the status.
    #[track_caller]
    pub fn ok<T: Body>(&self, status: u16) -> T {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some(api::CBOR_CONTENT_TYPE)
        );
        T::from_bytes(&self.body).expect("response body decodes")
    }

    /// The body as `T`, after checking the status (the same as [`Resp::ok`]).
    #[track_caller]
    pub fn body<T: Body>(&self, status: u16) -> T {
        self.ok(status)
    }

    /// Checks an empty success.
    #[track_caller]
    pub fn empty(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }

    /// The problem document, checked for consistency.
    #[track_caller]
    pub fn problem(&self) -> Problem {
        assert!(
            self.status >= 400,
            "expected a problem, got {}",
            self.status
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some(api::PROBLEM_CONTENT_TYPE),
            "status {} body {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let p: Problem = serde_json::from_slice(&self.body).expect("problem json");
        assert_eq!(p.status, self.status);
        assert!(p.kind().is_some(), "unknown problem type {}", p.type_uri);
        p
    }

    /// Asserts a shed request (spec §11.13): an `unavailable` problem whose `retry-after`
    /// member equals the `Retry-After` header, which lies in `range` (seconds).
    #[track_caller]
    pub fn expect_shed(&self, range: std::ops::RangeInclusive<u64>) {
        let p = self.expect(ProblemKind::Unavailable);
        let retry: u64 = self
            .header("retry-after")
            .as_deref()
            .expect("retry-after")
            .parse()
            .expect("secs");
        assert!(
            range.contains(&retry),
            "Retry-After {retry} outside {range:?}"
        );
        assert_eq!(p.retry_after, Some(retry));
    }

    /// Asserts the problem kind.
    #[track_caller]
    pub fn expect(&self, kind: ProblemKind) -> Problem {
        let p = self.problem();
        assert_eq!(
            p.kind(),
            Some(kind),
            "expected {} got {} ({})",
            kind.name(),
            p.type_uri,
            p.detail
        );
        p
    }
}

/// An HTTP client bound to one server.
#[derive(Clone)]
pub struct Http {
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(16)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> reqwest::Result<Resp> {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        // A server may answer before reading a body it refuses (413) and close the connection;
        // the pooled connection then fails the *next* request. Retry once on a new one.
        match self
            .try_send(
                method.clone(),
                path,
                token,
                content_type,
                body.clone(),
                headers,
            )
            .await
        {
            Ok(r) => r,
            Err(_) => self
                .try_send(method, path, token, content_type, body, headers)
                .await
                .expect("request"),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Method::GET, path, token, None, None, &[]).await
    }

    pub async fn get_h(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, path, token, None, None, headers)
            .await
    }

    pub async fn cbor<B: Body>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Resp {
        self.send(
            method,
            path,
            token,
            Some(api::CBOR_CONTENT_TYPE),
            Some(body.to_bytes()),
            &[],
        )
        .await
    }

    pub async fn post<B: Body>(&self, path: &str, token: Option<&str>, body: &B) -> Resp {
        self.cbor(Method::POST, path, token, body).await
    }

    /// A request with no body.
    pub async fn bare(&self, method: Method, path: &str, token: Option<&str>) -> Resp {
        self.send(method, path, token, None, None, &[]).await
    }

    pub async fn put_part(&self, path: &str, token: Option<&str>, bytes: Vec<u8>) -> Resp {
        self.send(
            Method::PUT,
            path,
            token,
            Some(api::OCTET_STREAM_CONTENT_TYPE),
            Some(bytes),
            &[],
        )
        .await
    }

    pub async fn healthy(&self) -> bool {
        matches!(self.try_send(Method::GET, "/healthz", None, None, None, &[]).await, Ok(r) if r.status == 200)
    }
}

// ------------------------------------------------------------------------------------------
// Accounts

/// The server identity string OPAQUE binds (spec §6.2). Tests use the configured default.
pub fn server_identity() -> String {
    coffer_server::config::ServerSettings::default().identity
}

/// A logged-in user with its unlocked account and root folder.
pub struct User {
    pub name: String,
    pub account_id: AccountId,
    pub token: String,
    pub account: UnlockedAccount,
    pub root: Node,
}

/// A node as the client knows it: its current record and key.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub record: NodeRecord,
    pub signed: Vec<u8>,
    pub key: SecretKey,
    /// The server's revision of the record (§11.4.3).
    pub revision: u64,
    pub file_key: Option<SecretKey>,
}

impl Node {
    pub fn folder_key(&self) -> FolderKey {
        self.record.folder_key(self.key.clone())
    }
}

fn meta_folder(node: &NewNode, name: &str) -> SealedMetadata {
    let m = Metadata::folder(name.into(), now()).expect("metadata");
    SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    }
}

fn meta_file(node: &NewNode, name: &str, content: &[u8]) -> SealedMetadata {
    let m = Metadata::file(name.into(), content, now(), None).expect("metadata");
    SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    }
}

/// A unique user name for this test process.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut r = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut r);
    format!("{prefix}{n}x{}", hex::encode(r))
}

/// The full register body of a new account, with the server's registration response in hand.
pub struct PreparedRegistration {
    pub finish: api::RegisterFinishRequest,
}

/// Registers `name` (OPAQUE registration, identity, root folder).
pub async fn register(http: &Http, name: &str) {
    let sid = server_identity();
    let ids = OpaqueIdentities {
        user_name: name,
        server_identity: &sid,
    };
    let (state, request) = account::registration_start(PASSWORD, &mut OsRng).expect("start");
    let start = api::RegisterStartRequest {
        username: api::Username::new(name).expect("username"),
        registration_request: ByteBuf::from(request),
    };
    let resp: api::RegisterStartResponse = http
        .post("/v1/accounts/register/start", None, &start)
        .await
        .ok(201);
    let finish = registration_finish_body(state, &ids, &resp);
    let done: api::RegisterFinishResponse = http
        .post("/v1/accounts/register/finish", None, &finish)
        .await
        .ok(201);
    assert_eq!(done.account_id, resp.account_id);
}

/// The client side of registration step 2: builds the `RegisterFinishRequest`.
pub fn registration_finish_body(
    state: account::ClientRegistration,
    ids: &OpaqueIdentities<'_>,
    resp: &api::RegisterStartResponse,
) -> api::RegisterFinishRequest {
    let time = now();
    let reg = account::register(
        state,
        PASSWORD,
        &resp.registration_response,
        ids,
        resp.account_id,
        time,
        &mut OsRng,
    )
    .expect("register");
    api::RegisterFinishRequest::new(&reg, time, &mut OsRng).expect("finish request")
}

/// Logs in, unlocks the account and fetches the root.
pub async fn login(http: &Http, name: &str) -> User {
    let sid = server_identity();
    let ids = OpaqueIdentities {
        user_name: name,
        server_identity: &sid,
    };
    let (state, request) = account::login_start(PASSWORD, &mut OsRng).expect("login start");
    let start = api::LoginStartRequest {
        username: api::Username::new(name).expect("username"),
        credential_request: ByteBuf::from(request),
    };
    let resp: api::LoginStartResponse = http
        .post("/v1/sessions/login/start", None, &start)
        .await
        .ok(200);
    let fin = account::login_finish(state, PASSWORD, &resp.credential_response, &ids, &mut OsRng)
        .expect("login finish");
    let req = api::LoginFinishRequest {
        login_id: resp.login_id,
        credential_finalization: ByteBuf::from(fin.finalization.clone()),
        session_label: "test".into(),
    };
    let done: api::LoginFinishResponse = http
        .post("/v1/sessions/login/finish", None, &req)
        .await
        .ok(200);
    let account =
        account::unlock(&fin.export_key, &done.account_id, &done.key_bundle).expect("unlock");
    let token = done.session_token.to_b64();
    let r: api::NodeResponse = http.get("/v1/root", Some(&token)).await.ok(200);
    let record = tree::verify_node(
        &r.signed_node,
        &tree::NodeExpectation {
            node_id: account.secrets.root_node_id,
            parent: None,
            key_generation: None,
        },
        &[account.secrets.identity.signing.verifying_key()],
    )
    .expect("root verifies");
    let root = Node {
        id: record.node_id,
        record,
        signed: r.signed_node.to_vec(),
        key: account.secrets.root_node_key.clone(),
        revision: 0,
        file_key: None,
    };
    let mut user = User {
        name: name.into(),
        account_id: done.account_id,
        token,
        account,
        root,
    };
    user.root.revision = user.revision_of(http, user.root.id).await;
    user
}

/// Registers and logs in a fresh user.
pub async fn new_user(http: &Http, prefix: &str) -> User {
    let name = unique_name(prefix);
    register(http, &name).await;
    login(http, &name).await
}

/// The revision the server reports for a node, from a node read's `ETag: "n<revision>"`.
pub fn etag_revision(resp: &Resp) -> u64 {
    let tag = resp.header("etag").expect("etag");
    tag.trim_matches('"')
        .strip_prefix('n')
        .and_then(|s| s.parse().ok())
        .expect("etag revision")
}

impl User {
    pub fn t(&self) -> Option<&str> {
        Some(&self.token)
    }

    pub fn signing(&self) -> &coffer_core::primitives::SigningKey {
        &self.account.secrets.identity.signing
    }

    pub fn pinned(&self) -> PinnedIdentity {
        PinnedIdentity {
            user_name: self.name.clone(),
            identity_generation: self.account.secrets.identity_generation,
            ed25519: self.account.secrets.identity.signing.verifying_key(),
            x25519: self.account.secrets.identity.agreement.public_key(),
        }
    }

    pub async fn revision_of(&self, http: &Http, id: NodeId) -> u64 {
        let r = http.get(&format!("/v1/nodes/{id}"), self.t()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        etag_revision(&r)
    }

    /// Builds a folder record under `parent` (not sent).
    pub fn folder_record(&self, parent: &Node, name: &str) -> Node {
        let node = NewNode::generate(&mut OsRng);
        let (record, signed) = tree::create_folder(
            self.signing(),
            &parent.folder_key(),
            &node,
            meta_folder(&node, name),
            now(),
            &mut OsRng,
        )
        .expect("folder");
        Node {
            id: node.node_id,
            record,
            signed: encode(&signed),
            key: node.node_key,
            revision: 0,
            file_key: None,
        }
    }

    /// Creates a folder under `parent`.
    pub async fn mkdir(&self, http: &Http, parent: &Node, name: &str) -> Node {
        let mut n = self.folder_record(parent, name);
        let w: api::NodeWritten = http
            .post(
                "/v1/nodes",
                self.t(),
                &api::NodeCreateRequest {
                    signed_node: ByteBuf::from(n.signed.clone()),
                },
            )
            .await
            .ok(201);
        assert_eq!(w.node_id, n.id);
        n.revision = w.revision;
        n
    }

    /// Builds a file record of `ciphertext_len` under `parent` (not sent).
    pub fn file_record(
        &self,
        parent: &Node,
        name: &str,
        plaintext: &[u8],
        content_revision: u64,
    ) -> (Node, Vec<u8>) {
        let node = NewNode::generate(&mut OsRng);
        let file_key = SecretKey::generate(&mut OsRng);
        let ciphertext = coffer_core::content::encrypt(&file_key, plaintext, &mut OsRng);
        let (record, signed) = tree::create_file(
            self.signing(),
            &parent.folder_key(),
            &node,
            meta_file(&node, name, plaintext),
            &FileContent {
                file_key: file_key.clone(),
                content_revision,
                ciphertext_length: ciphertext.len() as u64,
            },
            now(),
            &mut OsRng,
        )
        .expect("file");
        (
            Node {
                id: node.node_id,
                record,
                signed: encode(&signed),
                key: node.node_key,
                revision: 0,
                file_key: Some(file_key),
            },
            ciphertext,
        )
    }

    /// Starts an upload for `node` (new or existing) in `parent`.
    pub async fn upload_create(
        &self,
        http: &Http,
        node: &Node,
        parent: NodeId,
        total_length: u64,
    ) -> api::UploadStatus {
        let content_revision = node
            .record
            .file
            .as_ref()
            .map(|f| f.content_revision)
            .unwrap_or(1);
        http.post(
            "/v1/uploads",
            self.t(),
            &api::UploadCreateRequest {
                node_id: node.id,
                parent_id: parent,
                content_revision,
                total_length,
                part_size: PART,
            },
        )
        .await
        .ok(201)
    }

    /// Uploads every part of `ciphertext` (in reverse order, to exercise any-order uploads).
    pub async fn upload_parts(&self, http: &Http, upload: UploadId, ciphertext: &[u8]) {
        let parts: Vec<&[u8]> = ciphertext.chunks(PART as usize).collect();
        for (i, p) in parts.iter().enumerate().rev() {
            let s: api::PartStored = http
                .put_part(
                    &format!("/v1/uploads/{upload}/parts/{i}"),
                    self.t(),
                    p.to_vec(),
                )
                .await
                .ok(200);
            assert_eq!(s.length, p.len() as u64, "length of part {i}");
        }
    }

    /// Uploads a new file with `plaintext` into `parent`: create, parts, finalize.
    pub async fn upload_file(
        &self,
        http: &Http,
        parent: &Node,
        name: &str,
        plaintext: &[u8],
    ) -> Node {
        let (mut node, ct) = self.file_record(parent, name, plaintext, 1);
        let st = self
            .upload_create(http, &node, parent.id, ct.len() as u64)
            .await;
        self.upload_parts(http, st.upload_id, &ct).await;
        let w: api::NodeWritten = http
            .post(
                &format!("/v1/uploads/{}/finalize", st.upload_id),
                self.t(),
                &api::UploadFinalizeRequest {
                    expected_revision: None,
                    signed_node: ByteBuf::from(node.signed.clone()),
                },
            )
            .await
            .ok(201);
        node.revision = w.revision;
        node
    }

    /// Downloads and decrypts a file's content.
    pub async fn download(&self, http: &Http, node: &Node) -> Vec<u8> {
        let r = http
            .get(&format!("/v1/nodes/{}/content", node.id), self.t())
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let key = node.file_key.as_ref().expect("file key");
        coffer_core::content::decrypt(key, &r.body).expect("content decrypts")
    }

    /// Renames `node` (a new metadata revision), PUT with its current revision.
    pub fn renamed(&self, node: &Node, name: &str) -> Node {
        let rev = node.record.metadata_revision + 1;
        let m = if node.record.is_folder() {
            Metadata::folder(name.into(), now())
        } else {
            Metadata::new(name.into(), 1, now(), None, Some([0; 32]))
        }
        .expect("metadata");
        let mkey = node.record.metadata_key(&node.key).expect("metadata key");
        let _ = mkey;
        let sealed = seal_metadata(&node.key, &node.id, rev, &m, &mut OsRng);
        let (record, signed) = tree::update_metadata(
            self.signing(),
            &node.record,
            SealedMetadata {
                revision: rev,
                sealed,
            },
            now(),
        )
        .expect("update");
        Node {
            record,
            signed: encode(&signed),
            ..node.clone()
        }
    }

    /// Lists every child record of a folder (all pages).
    pub async fn children(&self, http: &Http, folder: NodeId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/nodes/{folder}/children?cursor={c}"),
                None => format!("/v1/nodes/{folder}/children"),
            };
            let l: api::NodeList = http.get(&path, self.t()).await.ok(200);
            out.extend(l.records.iter().map(|r| r.to_vec()));
            match l.next_cursor {
                Some(c) => cursor = Some(coffer_core::encoding::b64url_encode(&c)),
                None => return out,
            }
        }
    }

    /// Shares `folder` with `members` (pinned identity, permission); returns the share id and the
    /// share record.
    pub async fn share(
        &self,
        http: &Http,
        folder: &Node,
        members: &[(&User, u64)],
    ) -> (ShareId, share::ShareRecord) {
        let share_id = ShareId::generate(&mut OsRng);
        let granter = GranterKeys {
            signing_key: self.signing(),
            user_name: &self.name,
            identity_generation: self.account.secrets.identity_generation,
        };
        let ms = members
            .iter()
            .map(|(u, p)| u.pinned().as_member(*p))
            .collect();
        let (record, signed, grants) =
            share::create_share(&granter, share_id, &folder.folder_key(), ms, &mut OsRng)
                .expect("share");
        let body = api::ShareCreateRequest {
            share_id,
            root_node_id: folder.id,
            signed_share: ByteBuf::from(encode(&signed)),
            grants: members
                .iter()
                .zip(grants)
                .map(|((u, _), g)| api::GrantEntry {
                    member: u.account_id,
                    grant: ByteBuf::from(encode(&g)),
                })
                .collect(),
            node_records: Vec::new(),
        };
        let up: api::ShareUpdated = http.post("/v1/shares", self.t(), &body).await.ok(201);
        assert_eq!(up.share_id, share_id);
        assert_eq!(up.revision, 0);
        (share_id, record)
    }

    /// Removes `member` from the share of `folder` (a child of the caller's root) with a lazy
    /// rotation of `subtree` (every record below the folder, parents first; §9.2), at share
    /// revision `expected_revision`.
    #[allow(clippy::too_many_arguments)]
    pub async fn remove_member(
        &self,
        http: &Http,
        share_id: ShareId,
        record: &share::ShareRecord,
        member: &User,
        folder: &Node,
        subtree: &[NodeRecord],
        expected_revision: u64,
    ) -> api::ShareUpdated {
        let granter = GranterKeys {
            signing_key: self.signing(),
            user_name: &self.name,
            identity_generation: self.account.secrets.identity_generation,
        };
        let out = coffer_core::rotation::remove_member_lazy(
            &coffer_core::rotation::RemoveMember {
                owner: &granter,
                share: record,
                removed: &member.name,
                parent_key: &self.root.folder_key(),
                folder_key: &folder.folder_key(),
                subtree,
                time: now(),
            },
            &mut OsRng,
        )
        .expect("rotation");
        http.cbor(
            Method::DELETE,
            &format!("/v1/shares/{share_id}/members/{}", member.account_id),
            self.t(),
            &api::MemberRemoveRequest {
                expected_revision,
                rotation_bundle: ByteBuf::from(encode(&out.bundle)),
            },
        )
        .await
        .ok(200)
    }
}

/// A `Problem` check used by the authorization matrix: the response is a 404 `not-found`
/// exactly like the one for a resource that does not exist.
#[track_caller]
pub fn assert_not_found(r: &Resp) {
    r.expect(ProblemKind::NotFound);
}

/// Decodes a `SignedNode`'s record without verification (tests only).
pub fn record_of(signed: &[u8]) -> NodeRecord {
    let s: tree::SignedNode = decode(signed).expect("signed node");
    decode(&s.record).expect("record")
}

/// Random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut v);
    v
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Deletes the user's account (fresh OPAQUE proof, §11.6.9).
pub async fn delete_account(http: &Http, user: &User) {
    let sid = server_identity();
    let ids = OpaqueIdentities {
        user_name: &user.name,
        server_identity: &sid,
    };
    let (state, request) = account::login_start(PASSWORD, &mut OsRng).expect("login start");
    let start = api::ReauthStartRequest {
        purpose: api::ReauthPurpose::AccountDeletion,
        credential_request: ByteBuf::from(request),
        registration_request: None,
    };
    let resp: api::ReauthStartResponse = http
        .post("/v1/account/delete/start", user.t(), &start)
        .await
        .ok(200);
    let fin = account::login_finish(state, PASSWORD, &resp.credential_response, &ids, &mut OsRng)
        .expect("login finish");
    http.post(
        "/v1/account/delete/finish",
        user.t(),
        &api::AccountDeleteFinishRequest {
            reauth_id: resp.reauth_id,
            credential_finalization: ByteBuf::from(fin.finalization),
            account_id: user.account_id,
        },
    )
    .await
    .empty(204);
}

/// A link the owner created: its URL (with the secret) and id.
pub struct MadeLink {
    pub url: coffer_core::link::LinkUrl,
    pub id: coffer_core::ids::LinkId,
}

impl User {
    /// Creates a link to `node` (§10, §11.11.2).
    pub async fn make_link(
        &self,
        http: &Http,
        node: &Node,
        options: &coffer_core::link::LinkOptions<'_>,
    ) -> MadeLink {
        let (made, params) = self.link_params(node, options);
        http.post(
            "/v1/links",
            self.t(),
            &api::LinkCreateRequest { link: params },
        )
        .await
        .ok::<api::LinkCreated>(201);
        made
    }

    /// Builds a link to `node` and its `LinkParams` (not sent).
    pub fn link_params(
        &self,
        node: &Node,
        options: &coffer_core::link::LinkOptions<'_>,
    ) -> (MadeLink, api::LinkParams) {
        use coffer_core::link::{self, LinkTarget, NodeKind};
        let folder = node.record.is_folder();
        let target = LinkTarget {
            node_id: node.id,
            node_kind: if folder {
                NodeKind::Folder
            } else {
                NodeKind::File
            },
            generation: node.record.key_generation,
            node_key: node.key.clone(),
        };
        let created = link::create_link(
            &mut OsRng,
            "https://coffer.example",
            &target,
            options,
            now(),
        )
        .expect("create link");
        let id = created.url.link_id();
        let owner_key = account::link_entries_key(&self.account.master_key, &self.account_id);
        let owner_entry = link::seal_owner_entry(&owner_key, &created.owner_entry, &mut OsRng);
        let kind = if options.upload_only {
            api::LinkKind::Drop
        } else if folder {
            api::LinkKind::Folder
        } else {
            api::LinkKind::File
        };
        let params = api::LinkParams {
            link_id: id,
            node_id: node.id,
            kind,
            link_record: ByteBuf::from(created.record),
            owner_entry: ByteBuf::from(owner_entry),
            verifier_hash: created.verifier_hash.map(coffer_core::encoding::Bytes),
            expires_at: options.expires_at,
            max_downloads: options.max_downloads,
        };
        (
            MadeLink {
                url: created.url,
                id,
            },
            params,
        )
    }
}

/// Starts an anonymous drop of `total_length` ciphertext bytes through the drop link `l`
/// (§11.11.6): resolves and opens the link, seals a `DropEnvelope`, creates the upload. Returns
/// the upload's status and the drop's keys.
pub async fn start_drop(
    http: &Http,
    l: &MadeLink,
    total_length: u64,
) -> (api::UploadStatus, coffer_core::link::DropUpload) {
    use coffer_core::link;
    let resolved: api::LinkResolved = http.get(&format!("/v1/l/{}", l.id), None).await.ok(200);
    let opened = link::open_link(
        &l.url,
        resolved.link_record.as_ref().expect("record"),
        None,
        now(),
    )
    .expect("link opens");
    let drop = link::create_drop(&mut OsRng, &opened, b"meta").expect("drop");
    let st: api::UploadStatus = http
        .post(
            &format!("/v1/l/{}/drops", l.id),
            None,
            &api::DropCreateRequest {
                drop_envelope: ByteBuf::from(drop.envelope.clone()),
                total_length,
                part_size: PART,
            },
        )
        .await
        .ok(201);
    (st, drop)
}

/// Drops one file of `plain` through the drop link `dl`; returns the drop id.
pub async fn drop_file(http: &Http, dl: &MadeLink, plain: &[u8]) -> coffer_core::ids::UploadId {
    let dbase = format!("/v1/l/{}", dl.id);
    let length = coffer_core::content::ciphertext_len(plain.len() as u64).expect("length");
    let (st, drop) = start_drop(http, dl, length).await;
    let ct = coffer_core::content::encrypt(&drop.node_key, plain, &mut rand_core::OsRng);
    assert_eq!(ct.len() as u64, length);
    http.put_part(
        &format!("{dbase}/uploads/{}/parts/0", st.upload_id),
        None,
        ct,
    )
    .await
    .ok::<api::PartStored>(200);
    http.send(
        Method::POST,
        &format!("{dbase}/uploads/{}/finalize", st.upload_id),
        None,
        None,
        None,
        &[],
    )
    .await
    .empty(204);
    st.upload_id
}
