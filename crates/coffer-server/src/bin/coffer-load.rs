//! `coffer-load`: a load generator for `cofferd`.
//!
//! It drives N concurrent HTTP/1.1 keep-alive connections for a duration and prints requests per
//! second, p50, p99 and max latency, the count of responses by status (and how many carried
//! `Retry-After`), completed operations per second, and the CPU time of the generator and (with
//! `--server-pid`) of the server. Setup (accounts, folders, links) happens before the clock
//! starts.
//!
//! The generator is kept cheap so that it leaves the CPU to the server: the measured requests go
//! through hyper's connection API (`hyper::client::conn::http1`) over one `TcpStream` each, all on
//! one current-thread runtime, built from pre-encoded parts; reqwest is used for setup only.
//!
//! Scenarios:
//! - `link-resolve`: `GET /v1/l/{link-id}` of a folder link (anonymous, no password).
//! - `upload-small`: one small file per iteration: `POST /v1/uploads`, `PUT` its single part,
//!   `POST .../finalize` with a signed record (three requests; latency is per request; the
//!   client's encryption and signing happen between requests, outside the timings).
//! - `register`: full registrations, `POST /v1/accounts/register/start` with a fresh user name
//!   then `.../finish` with the account's records (key bundle, identity, root node) made for the
//!   server-chosen account id. The client's OPAQUE finish (Argon2id, about 50 ms of client CPU)
//!   is precomputed: every registration sends the upload of one real registration made during
//!   setup, and wraps its key bundle under that registration's export key
//!   (`coffer_core::account::new_account`). The server cannot tell (it never runs the KSF): its
//!   work is the real work (OPRF evaluation, upload and record validation, signature checks, the
//!   durable account creation).
//! - `login`: full logins of 8 users registered in setup, `POST /v1/sessions/login/start` (KE1,
//!   fresh per login) then `.../finish` (KE3, computed per login from the server's KE2). The
//!   client's Argon2id runs once per user: `coffer_core::account::KsfMemo` reuses its output
//!   (the client's 3DH still runs per login, in the generator's CPU figure).
//! - `register-login`: both, interleaved on each connection.
//! - `overload` (issue 3: "offered 5x what it can sustain, the server answers 503 + Retry-After
//!   to the excess, stays up, keeps p99 of admitted requests bounded and recovers at once"), in
//!   one run and three phases, each printed:
//!   1. sustained: full logins (as `login`) closed loop on `--sustain-connections` (16)
//!      connections for `--duration`: the rate S the server sustains;
//!   2. offered: login starts open loop at `--factor` (5) x S per second (or `--rate`) for
//!      `--duration`, at most `--connections` logins in flight; each admitted start (`200`) is
//!      followed by its finish on the same connection; every `503` is counted with whether it
//!      carried `Retry-After` (the generator does not retry: the excess is new visitors). It
//!      prints offered and sent rates, responses by status, the admitted rate with p50, p99 and
//!      max latency, completed logins, and the CPU of generator and server;
//!   3. recovery: 50 full logins one after another as soon as the offer has drained (and the time
//!      to the first completed one), then `GET /healthz`.
//!
//!   Why logins: the offer must be 5x what the server sustains, from one generator thread on
//!   the same 2 cores. A cached link resolve costs the server about 15 us, about what it costs
//!   the generator to send one, so 5x resolves cannot be offered here. A login costs the server
//!   1.4-1.8 ms of CPU (OPRF evaluation and 3DH for KE2, the handshake stored, KE3 verified, the
//!   session created durably) and is the request launch day brings in bulk. The generator's
//!   KE1s (a blinding and an ephemeral key) are precomputed before the clock starts, and a shed
//!   start costs it only a pre-encoded request; a shed KE1 goes back to the pool (the server did
//!   not process it). Only admitted logins cost it a client finish (3DH and MAC, Argon2id from
//!   the memo). Registrations would work too, but each admitted one makes the generator build a
//!   whole account (keys, identity, signed root), and they grow the database for good.
//!
//! Rate limits (spec §11.13) are per client address, and a load generator is one address: run the
//! server with `crates/coffer-server/load.toml` (every rate limit raised, `[limits]` at the
//! defaults).
//! Commands (from the repository root):
//!
//! ```text
//! cargo build --release -p coffer-server
//! target/release/cofferd --listen 127.0.0.1:18480 --data /tmp/coffer-load \
//!     --config crates/coffer-server/load.toml &
//! L="target/release/coffer-load --url http://127.0.0.1:18480 --duration 8s --server-pid $!"
//! $L --connections 256 --scenario link-resolve
//! $L --connections 16 --scenario register
//! $L --connections 16 --scenario login
//! $L --connections 16 --scenario upload-small
//! $L --connections 512 --scenario overload   # default shedding: max-queue-delay-ms = 50
//! ```
//!
//! # Figures
//!
//! 2026-11-28 19:43-19:45 UTC (session 4), release build of main, quiet machine (load average
//! 1.6-2.7, which is this generator and server), same conditions and defaults as below:
//!
//! ```text
//! link-resolve, 256 conn   49605 req/s, p50 4.9 ms, p99 10.9 ms, max 40 ms; 309 x 503 (0.08%)
//! register (start+finish)  1313 /s at 16 connections, p99 16.8 ms; 1277 /s at 32, p99 35.1 ms
//!                          (final build, 20:49 UTC: 1303-1498 /s at 16, p99 14.1-17.7 ms)
//! login (start+finish)     1311 /s, p99 14.7 ms
//! upload-small, 16 conn    243 files/s, p99 46.8 ms (238-305 in four A/B runs, no change)
//! server CPU per op        resolve 23 us, registration 1.08 ms, login 0.79 ms
//! ```
//!
//! Registrations now keep the writer's turn for their one write: the start reserves the name
//! without it, and the finish runs its checks before it (the tables' unique keys decide a
//! race). That took them from 700-800/s to 1200-1380/s in back-to-back runs of the old and new
//! binaries under load, and server CPU from 1.39 to 0.99 ms each. The few 503s of link-resolve
//! at 256 connections are the queue-delay bound at work while generator and server saturate
//! both cores (both binaries, before and after session 4's shedding change, shed 30-300 of
//! about 450 000 in A/B runs).
//!
//! Overload: sustained 1195 full logins/s; offered 5974 login starts/s (5.0x) open loop with
//! at most 512 in flight, 5463/s sent: 36020 x 503 (all with `Retry-After`), 18428 x 200
//! (2261/s), admitted p50 47.8 ms, p99 143 ms, max 177 ms, 944 logins/s completed during the
//! offer; recovery: first full login 5.7 ms after the offer drained, 50/50, `/healthz` 200.
//! Session 4 sheds new work first (spec §11.13): a login start needs more than a quarter of
//! the in-flight slots free, and its finish, a follow-up, takes any slot and is never shed
//! for queue delay below 8x the bound, so admitted starts complete (admitted p99 195 -> 143 ms).
//!
//! 2026-11-28 17:03-17:07 UTC, release build of main after session 3's merges, on a quiet
//! machine (no other builds; load average about 2, which is this generator and server), server
//! and generator on the same 2 cores, each scenario on a fresh data directory, 8 s each.
//! `[limits]` at the defaults (`max-in-flight = 64`, `max-queue-delay-ms = 50`):
//!
//! ```text
//! link-resolve, 256 conn   51988 req/s, p50 4.8 ms, p99 10.9 ms, max 21.7 ms, no errors
//!                          (with max-in-flight 512: 39718-46238 req/s, p99 11.8-16.2 ms)
//! register (start+finish)  845 /s, p99 15.1 ms  (744-758 /s in two runs before)
//! login (start+finish)     1259 /s, p99 12.9 ms (1168-1219 /s in two runs before)
//! upload-small, 16 conn    315 files/s, p99 30.1 ms
//! server CPU per op        resolve 24 us, registration 1.5 ms, login 0.9 ms
//! ```
//!
//! Overload, the same server: sustained 1162 full logins/s (closed loop, 16 connections); then
//! 5810 login starts/s offered open loop (5.0x) for 8 s with at most 512 in flight: 4355/s
//! sent (the rest found no idle connection), 29189 x 503 (all with `Retry-After`), 19199 x 200
//! (2379/s), admitted p50 70 ms, p99 195 ms, max 256 ms; recovery: the first full login
//! completed 6.1 ms after the offer drained, 50/50 logins, `/healthz` 200. With `max-in-flight
//! = 512` the same offer produced no 503 at all (512 connections never exceed 512 in flight),
//! admitted p99 440 ms, and the queue-delay check then shed the recovery probe (50 x 503,
//! `/healthz` 503): hence the default of 64.
//!
//! Earlier (session 2, shared machine, load average 4-8; "before" is commit 68ca9fb):
//! link-resolve 6925 -> 15376-20967 req/s; registrations 254 -> 566 /s; logins 187 -> 647 /s.
//! Session 3 cut account creation from eleven statements (each a hand-off to the SQLite
//! connection's worker thread) to two, session creation from five to one, and login finish no
//! longer reads the account separately: server CPU per registration 2.16 -> 1.31 ms and per
//! login 1.15 -> 1.02 ms, measured back to back under load.
//!
//! Not reached in session 3 (reached in session 4, above): 1000 registrations/s (845). A profile (`perf record -e cpu-clock -g`) of the
//! registration run shows about a third of the server's CPU in the scheduler, waking sqlx's
//! per-connection worker threads (flume channels) and the group-commit thread; the crypto
//! (OPRF evaluation, signature checks) is about 15%. More connections do not help (32: 778/s,
//! 64: 847/s, with about 0.6 core idle): account creations are serialised through the one
//! writer, about 1.2 ms of its turn each (two statement hand-offs to sqlx's worker thread).
//! Next: checks outside the writer's turn (the UNIQUE constraints decide), or several queued
//! account creations in one transaction.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use coffer_core::account::{self, OpaqueIdentities, UnlockedAccount};
use coffer_core::api::{self, Body};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::ids::LinkId;
use coffer_core::link::{self, LinkOptions, LinkTarget, NodeKind};
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::primitives::SecretKey;
use coffer_core::tree::{self, FileContent, FolderKey, NewNode, SealedMetadata};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method as HMethod, Uri};
use hyper_util::rt::TokioIo;
use rand_core::{OsRng, RngCore};
use reqwest::Method;
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    LinkResolve,
    UploadSmall,
    RegisterLogin,
    Register,
    Login,
    Overload,
}

/// Load generator for cofferd.
#[derive(Debug, Parser)]
#[command(name = "coffer-load", version)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent connections (for `overload`: the most requests in flight).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to measure: `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// What to do.
    #[arg(long, value_enum, default_value = "link-resolve")]
    scenario: Scenario,
    /// `overload` only: offered login starts per second (open loop); 0: `--factor` times the
    /// sustained rate measured first.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// `overload` only: the offer as a multiple of the sustained rate (when `--rate` is 0).
    #[arg(long, default_value_t = 5.0)]
    factor: f64,
    /// `overload` only: connections of the closed loop that measures the sustained rate.
    #[arg(long, default_value_t = 16)]
    sustain_connections: usize,
    /// The server identity string OPAQUE binds (`[server] identity` of the server's config).
    #[arg(long, default_value = "coffer")]
    server_identity: String,
    /// Plaintext bytes per file in `upload-small`.
    #[arg(long, default_value_t = 4096)]
    file_size: usize,
    /// The server's process id: its CPU time during the measurement is printed too.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration unit in {s:?}")),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ------------------------------------------------------------------------------------------
// A minimal protocol client for setup.

const PASSWORD: &[u8] = b"load generator password";

#[derive(Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

struct Resp {
    status: u16,
    body: Vec<u8>,
}

impl Http {
    fn new(base: &str, pool: usize) -> Result<Self> {
        Ok(Http {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(pool)
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Resp> {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let body = r.bytes().await?.to_vec();
        Ok(Resp { status, body })
    }

    async fn cbor<B: Body, R: Body>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &B,
        want: u16,
    ) -> Result<R> {
        let r = self
            .send(
                method,
                path,
                token,
                Some(api::CBOR_CONTENT_TYPE),
                Some(body.to_bytes()),
            )
            .await?;
        decode_as(path, &r, want)
    }
}

fn decode_as<R: Body>(what: &str, r: &Resp, want: u16) -> Result<R> {
    if r.status != want {
        bail!(
            "{what}: status {} ({})",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    R::from_bytes(&r.body).map_err(|e| anyhow!("{what}: bad body: {e:?}"))
}

struct Session {
    token: String,
    account: UnlockedAccount,
    root: tree::NodeRecord,
}

impl Session {
    fn root_key(&self) -> FolderKey {
        self.root
            .folder_key(self.account.secrets.root_node_key.clone())
    }
}

/// The client's part of a registration finish for the server-chosen `account_id`: the account's
/// keys and records (key bundle under `export_key`, identity, signed root folder) with the
/// OPAQUE registration `upload`.
fn finish_request(
    export_key: &account::ExportKey,
    name: &str,
    account_id: coffer_core::ids::AccountId,
    upload: &[u8],
) -> Result<api::RegisterFinishRequest> {
    let time = now();
    let mut reg = account::new_account(export_key, name, account_id, time, &mut OsRng)?;
    reg.registration_upload = upload.to_vec();
    Ok(api::RegisterFinishRequest::new(&reg, time, &mut OsRng)?)
}

fn folder_meta(node: &NewNode, name: &str) -> Result<SealedMetadata> {
    let m = Metadata::folder(name.into(), now())?;
    Ok(SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    })
}

/// A real registration, end to end. Returns its OPAQUE upload and export key.
async fn register(http: &Http, name: &str, sid: &str) -> Result<(Vec<u8>, account::ExportKey)> {
    let (state, request) = account::registration_start(PASSWORD, &mut OsRng)?;
    let start = api::RegisterStartRequest {
        username: api::Username::new(name).map_err(|e| anyhow!("username: {e:?}"))?,
        registration_request: ByteBuf::from(request),
    };
    let resp: api::RegisterStartResponse = http
        .cbor(
            Method::POST,
            "/v1/accounts/register/start",
            None,
            &start,
            201,
        )
        .await?;
    let (upload, export_key) = {
        let name = name.to_owned();
        let sid = sid.to_owned();
        let response = resp.registration_response.to_vec();
        tokio::task::spawn_blocking(move || {
            let ids = OpaqueIdentities {
                user_name: &name,
                server_identity: &sid,
            };
            account::registration_finish(state, PASSWORD, &response, &ids, &mut OsRng)
        })
        .await??
    };
    let finish = finish_request(&export_key, name, resp.account_id, &upload)?;
    let _: api::RegisterFinishResponse = http
        .cbor(
            Method::POST,
            "/v1/accounts/register/finish",
            None,
            &finish,
            201,
        )
        .await?;
    Ok((upload, export_key))
}

async fn login(http: &Http, name: &str, sid: &str) -> Result<Session> {
    login_with(http, name, sid, None).await
}

async fn login_with(
    http: &Http,
    name: &str,
    sid: &str,
    memo: Option<&Arc<account::KsfMemo>>,
) -> Result<Session> {
    let (state, request) = account::login_start(PASSWORD, &mut OsRng)?;
    let start = api::LoginStartRequest {
        username: api::Username::new(name).map_err(|e| anyhow!("username: {e:?}"))?,
        credential_request: ByteBuf::from(request),
    };
    let resp: api::LoginStartResponse = http
        .cbor(Method::POST, "/v1/sessions/login/start", None, &start, 200)
        .await?;
    let fin = {
        let name = name.to_owned();
        let sid = sid.to_owned();
        let cr = resp.credential_response.to_vec();
        let memo = memo.cloned();
        tokio::task::spawn_blocking(move || {
            let ids = OpaqueIdentities {
                user_name: &name,
                server_identity: &sid,
            };
            match memo {
                Some(m) => account::login_finish_memo(state, PASSWORD, &cr, &ids, &m, &mut OsRng),
                None => account::login_finish(state, PASSWORD, &cr, &ids, &mut OsRng),
            }
        })
        .await??
    };
    let req = api::LoginFinishRequest {
        login_id: resp.login_id,
        credential_finalization: ByteBuf::from(fin.finalization.clone()),
        session_label: "coffer-load".into(),
    };
    let done: api::LoginFinishResponse = http
        .cbor(Method::POST, "/v1/sessions/login/finish", None, &req, 200)
        .await?;
    let account = account::unlock(&fin.export_key, &done.account_id, &done.key_bundle)?;
    let token = done.session_token.to_b64();
    let r = http
        .send(Method::GET, "/v1/root", Some(&token), None, None)
        .await?;
    let root: api::NodeResponse = decode_as("root", &r, 200)?;
    let record = tree::verify_node(
        &root.signed_node,
        &tree::NodeExpectation {
            node_id: account.secrets.root_node_id,
            parent: None,
            key_generation: None,
        },
        &[account.secrets.identity.signing.verifying_key()],
    )?;
    Ok(Session {
        token,
        account,
        root: record,
    })
}

fn unique_name(prefix: &str) -> String {
    let mut r = [0u8; 6];
    OsRng.fill_bytes(&mut r);
    format!("{prefix}{}", hex::encode(r))
}

async fn new_session(http: &Http, sid: &str) -> Result<Session> {
    let name = unique_name("load");
    register(http, &name, sid).await.context("register")?;
    login(http, &name, sid).await.context("login")
}

/// Creates a folder in the root and a read link to it; returns the link id.
async fn make_link(http: &Http, s: &Session) -> Result<LinkId> {
    let node = NewNode::generate(&mut OsRng);
    let (record, signed) = tree::create_folder(
        &s.account.secrets.identity.signing,
        &s.root_key(),
        &node,
        folder_meta(&node, "linked")?,
        now(),
        &mut OsRng,
    )?;
    let _: api::NodeWritten = http
        .cbor(
            Method::POST,
            "/v1/nodes",
            Some(&s.token),
            &api::NodeCreateRequest {
                signed_node: ByteBuf::from(encode(&signed)),
            },
            201,
        )
        .await?;
    let target = LinkTarget {
        node_id: node.node_id,
        node_kind: NodeKind::Folder,
        generation: record.key_generation,
        node_key: node.node_key.clone(),
    };
    let created = link::create_link(
        &mut OsRng,
        "https://coffer.example",
        &target,
        &LinkOptions::default(),
        now(),
    )?;
    let link_id = created.url.link_id();
    let owner_key = account::link_entries_key(&s.account.master_key, &s.account.account_id);
    let owner_entry = link::seal_owner_entry(&owner_key, &created.owner_entry, &mut OsRng);
    let params = api::LinkParams {
        link_id,
        node_id: node.node_id,
        kind: api::LinkKind::Folder,
        link_record: ByteBuf::from(created.record),
        owner_entry: ByteBuf::from(owner_entry),
        verifier_hash: None,
        expires_at: None,
        max_downloads: None,
    };
    let _: api::LinkCreated = http
        .cbor(
            Method::POST,
            "/v1/links",
            Some(&s.token),
            &api::LinkCreateRequest { link: params },
            201,
        )
        .await?;
    Ok(link_id)
}

// ------------------------------------------------------------------------------------------
// The measuring client: hyper's HTTP/1.1 connection API over one TCP connection each, on a
// current-thread runtime, with requests built from pre-encoded parts.

/// A request ready to send: everything pre-encoded; sending clones reference-counted parts.
#[derive(Clone)]
struct Req {
    method: HMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn new(
        target: &Target,
        method: HMethod,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, target.host.clone());
        if let Some(t) = token {
            headers.insert(AUTHORIZATION, HeaderValue::try_from(format!("Bearer {t}"))?);
        }
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::try_from(ct)?);
        }
        Ok(Req {
            method,
            uri: Uri::try_from(path)?,
            headers,
            body: Bytes::from(body),
        })
    }

    fn cbor<B: Body>(target: &Target, path: &str, token: Option<&str>, body: &B) -> Result<Self> {
        Req::new(
            target,
            HMethod::POST,
            path,
            token,
            Some(api::CBOR_CONTENT_TYPE),
            body.to_bytes(),
        )
    }

    fn build(&self) -> hyper::Request<Full<Bytes>> {
        let mut r = hyper::Request::new(Full::new(self.body.clone()));
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// Where the server is.
#[derive(Clone)]
struct Target {
    addr: std::net::SocketAddr,
    host: HeaderValue,
}

impl Target {
    async fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().context("--url")?;
        if uri.scheme_str() != Some("http") {
            bail!("--url must be an http:// URL");
        }
        let auth = uri
            .authority()
            .ok_or_else(|| anyhow!("--url has no host"))?;
        let port = auth.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((auth.host(), port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("--url: {} does not resolve", auth.host()))?;
        Ok(Target {
            addr,
            host: HeaderValue::try_from(auth.as_str())?,
        })
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

/// A response: status, whether it carried `Retry-After`, the body.
struct Answer {
    status: u16,
    retry_after: bool,
    body: Bytes,
}

impl Conn {
    async fn open(target: &Target) -> Result<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx })
    }

    async fn send(&mut self, req: &Req) -> Result<Answer> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req.build()).await?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key(RETRY_AFTER);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Sends and records one sample; `None` after a transport error (the connection is then
    /// reopened).
    async fn timed(&mut self, target: &Target, req: &Req, st: &mut Stats) -> Option<Answer> {
        let t = Instant::now();
        match self.send(req).await {
            Ok(a) => {
                st.samples.push((a.status, t.elapsed(), a.retry_after));
                Some(a)
            }
            Err(_) => {
                st.transport_errors += 1;
                if let Ok(c) = Conn::open(target).await {
                    *self = c;
                }
                None
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Measurement

#[derive(Default)]
struct Stats {
    samples: Vec<(u16, Duration, bool)>,
    transport_errors: u64,
    /// Completed multi-request operations by name (files, registrations, logins).
    done: BTreeMap<&'static str, u64>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.samples.extend(other.samples);
        self.transport_errors += other.transport_errors;
        for (k, v) in other.done {
            *self.done.entry(k).or_default() += v;
        }
    }

    fn print(&self, title: &str, elapsed: Duration) {
        let n = self.samples.len();
        let secs = elapsed.as_secs_f64();
        println!("== {title}");
        println!(
            "requests: {n} in {secs:.2}s = {:.0} req/s; transport errors: {}",
            n as f64 / secs,
            self.transport_errors
        );
        let mut by_status: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
        for (s, _, ra) in &self.samples {
            let e = by_status.entry(*s).or_default();
            e.0 += 1;
            if *ra {
                e.1 += 1;
            }
        }
        for (s, (count, ra)) in &by_status {
            println!("  status {s}: {count} (with Retry-After: {ra})");
        }
        let pct = |v: &mut Vec<Duration>, label: &str| {
            if v.is_empty() {
                return;
            }
            v.sort_unstable();
            let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
            println!(
                "  {label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                p(0.50).as_secs_f64() * 1e3,
                p(0.99).as_secs_f64() * 1e3,
                p(1.0).as_secs_f64() * 1e3
            );
        };
        let mut all: Vec<Duration> = self.samples.iter().map(|s| s.1).collect();
        pct(&mut all, "all responses");
        let mut ok: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| s.0 < 400)
            .map(|s| s.1)
            .collect();
        pct(&mut ok, "admitted (2xx/3xx)");
        let ok_n = ok.len();
        println!("  admitted: {ok_n} = {:.0} req/s", ok_n as f64 / secs);
        for (k, v) in &self.done {
            println!("  {k} completed: {v} = {:.0}/s", *v as f64 / secs);
        }
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc/{pid}/stat`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration in use.
    Some((utime + stime) / 100.0)
}

/// Measures CPU time of the load generator and (with `--server-pid`) of the server.
struct CpuMeter {
    server_pid: Option<u32>,
    start: (Option<f64>, Option<f64>),
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid.and_then(|p| cpu_secs(&p.to_string()));
        CpuMeter {
            server_pid,
            start: (cpu_secs("self"), server),
        }
    }

    fn print(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let (Some(a), Some(b)) = (self.start.0, cpu_secs("self")) {
            println!(
                "  cpu: load generator {:.2} s ({:.0}% of one core)",
                b - a,
                (b - a) / secs * 100.0
            );
        }
        let now = self.server_pid.and_then(|p| cpu_secs(&p.to_string()));
        if let (Some(a), Some(b)) = (self.start.1, now) {
            println!(
                "  cpu: server {:.2} s ({:.0}% of one core)",
                b - a,
                (b - a) / secs * 100.0
            );
        }
    }
}

/// Runs `make(i)` for each of `connections` connections until it returns; merges the stats.
async fn closed_loop<F, Fut>(connections: usize, make: F) -> (Stats, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Stats> + 'static,
{
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let tasks: Vec<_> = (0..connections)
        .map(|i| local.spawn_local(make(i)))
        .collect();
    let stats = local
        .run_until(async move {
            let mut stats = Stats::default();
            for t in tasks {
                if let Ok(s) = t.await {
                    stats.merge(s);
                }
            }
            stats
        })
        .await;
    (stats, start.elapsed())
}

async fn run_link_resolve(args: &Args, target: &Target, setup: &Http) -> Result<()> {
    let s = new_session(setup, &args.server_identity).await?;
    let link_id = make_link(setup, &s).await?;
    let req = Rc::new(Req::new(
        target,
        HMethod::GET,
        &format!("/v1/l/{link_id}"),
        None,
        None,
        Vec::new(),
    )?);
    let deadline = Instant::now() + args.duration;
    let cpu = CpuMeter::start(args.server_pid);
    let (stats, elapsed) = closed_loop(args.connections, |_| {
        let req = req.clone();
        let target = target.clone();
        async move {
            let mut st = Stats::default();
            let Ok(mut c) = Conn::open(&target).await else {
                st.transport_errors += 1;
                return st;
            };
            while Instant::now() < deadline {
                c.timed(&target, &req, &mut st).await;
            }
            st
        }
    })
    .await;
    stats.print(
        &format!("link-resolve, {} connections", args.connections),
        elapsed,
    );
    cpu.print(elapsed);
    Ok(())
}

/// A small file ready to upload: the three requests minus the upload id.
struct SmallFile {
    create: Req,
    part: Vec<u8>,
    finalize: Vec<u8>,
}

fn small_file(target: &Target, s: &Session, plaintext: &[u8]) -> Result<SmallFile> {
    let node = NewNode::generate(&mut OsRng);
    let file_key = SecretKey::generate(&mut OsRng);
    let ct = coffer_core::content::encrypt(&file_key, plaintext, &mut OsRng);
    let m = Metadata::file("f".into(), plaintext, now(), None)?;
    let meta = SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    };
    let (_, signed) = tree::create_file(
        &s.account.secrets.identity.signing,
        &s.root_key(),
        &node,
        meta,
        &FileContent {
            file_key,
            content_revision: 1,
            ciphertext_length: ct.len() as u64,
        },
        now(),
        &mut OsRng,
    )?;
    let create = api::UploadCreateRequest {
        node_id: node.node_id,
        parent_id: s.root.node_id,
        content_revision: 1,
        total_length: ct.len() as u64,
        part_size: api::MIN_PART_SIZE,
    };
    let finalize = api::UploadFinalizeRequest {
        expected_revision: None,
        signed_node: ByteBuf::from(encode(&signed)),
    };
    Ok(SmallFile {
        create: Req::cbor(target, "/v1/uploads", Some(&s.token), &create)?,
        part: ct,
        finalize: finalize.to_bytes(),
    })
}

async fn run_upload_small(args: &Args, target: &Target, setup: &Http) -> Result<()> {
    let mut sessions = Vec::new();
    for _ in 0..args.connections.clamp(1, 8) {
        sessions.push(Rc::new(new_session(setup, &args.server_identity).await?));
    }
    let mut plaintext = vec![0u8; args.file_size];
    OsRng.fill_bytes(&mut plaintext);
    let plaintext = Rc::new(plaintext);
    let deadline = Instant::now() + args.duration;
    let cpu = CpuMeter::start(args.server_pid);
    let (stats, elapsed) = closed_loop(args.connections, |i| {
        let s = sessions[i % sessions.len()].clone();
        let plaintext = plaintext.clone();
        let target = target.clone();
        async move {
            let mut st = Stats::default();
            let Ok(mut c) = Conn::open(&target).await else {
                st.transport_errors += 1;
                return st;
            };
            while Instant::now() < deadline {
                // The client's encryption and signing happen outside the timed requests.
                let Ok(f) = small_file(&target, &s, &plaintext) else {
                    st.transport_errors += 1;
                    continue;
                };
                let Some(a) = c.timed(&target, &f.create, &mut st).await else {
                    continue;
                };
                let Ok(status) = api::UploadStatus::from_bytes(&a.body) else {
                    continue;
                };
                let base = format!("/v1/uploads/{}", status.upload_id);
                let (Ok(part), Ok(fin)) = (
                    Req::new(
                        &target,
                        HMethod::PUT,
                        &format!("{base}/parts/0"),
                        Some(&s.token),
                        Some(api::OCTET_STREAM_CONTENT_TYPE),
                        f.part,
                    ),
                    Req::new(
                        &target,
                        HMethod::POST,
                        &format!("{base}/finalize"),
                        Some(&s.token),
                        Some(api::CBOR_CONTENT_TYPE),
                        f.finalize,
                    ),
                ) else {
                    continue;
                };
                if c.timed(&target, &part, &mut st).await.map(|a| a.status) != Some(200) {
                    continue;
                }
                if c.timed(&target, &fin, &mut st).await.map(|a| a.status) == Some(201) {
                    *st.done.entry("files").or_default() += 1;
                }
            }
            st
        }
    })
    .await;
    stats.print(
        &format!(
            "upload-small ({} B plaintext), {} connections",
            args.file_size, args.connections
        ),
        elapsed,
    );
    cpu.print(elapsed);
    Ok(())
}

/// What the registration and login loops share.
struct AccountLoad {
    target: Target,
    sid: String,
    /// The upload and export key of one real registration (one Argon2id): every measured
    /// registration sends this upload, and its key bundle wraps under this export key.
    upload: Vec<u8>,
    export_key: account::ExportKey,
    /// A valid registration request (a blinded element).
    reg_request: Vec<u8>,
    /// Registered users with their password.
    users: Vec<String>,
    /// Argon2id once per user, reused by every login of that user.
    memo: Arc<account::KsfMemo>,
}

/// One full registration: start with a fresh user name, then finish with the account's records.
async fn one_registration(c: &mut Conn, l: &AccountLoad, st: &mut Stats) -> Option<()> {
    let name = unique_name("r");
    let start = api::RegisterStartRequest {
        username: api::Username::new(&name).ok()?,
        registration_request: ByteBuf::from(l.reg_request.clone()),
    };
    let req = Req::cbor(&l.target, "/v1/accounts/register/start", None, &start).ok()?;
    let a = c.timed(&l.target, &req, st).await?;
    let resp = api::RegisterStartResponse::from_bytes(&a.body).ok()?;
    // The client's part: the account's keys and records for the server-chosen account id. (Its
    // OPAQUE finish, which would run Argon2id, is the precomputed upload.)
    let finish = finish_request(&l.export_key, &name, resp.account_id, &l.upload).ok()?;
    let req = Req::cbor(&l.target, "/v1/accounts/register/finish", None, &finish).ok()?;
    if c.timed(&l.target, &req, st).await?.status == 201 {
        *st.done.entry("registrations").or_default() += 1;
    }
    Some(())
}

/// A login start ready to send: the client's OPAQUE state and the pre-encoded request (KE1).
/// Until the server answers it `200` it can be sent again (a shed request was not processed).
struct PendingLogin {
    user: usize,
    state: account::ClientLogin,
    req: Req,
}

impl AccountLoad {
    /// A fresh login start (KE1) for user `k` (modulo the number of users).
    fn login_start(&self, k: usize) -> Option<PendingLogin> {
        let user = k % self.users.len();
        let (state, ke1) = account::login_start(PASSWORD, &mut OsRng).ok()?;
        let start = api::LoginStartRequest {
            username: api::Username::new(&self.users[user]).ok()?,
            credential_request: ByteBuf::from(ke1),
        };
        let req = Req::cbor(&self.target, "/v1/sessions/login/start", None, &start).ok()?;
        Some(PendingLogin { user, state, req })
    }
}

/// The second half of a login whose start was answered `a` (`200`): the client's KE3 (3DH and
/// MAC; its Argon2id comes from the memo), then `.../finish`.
async fn login_finish(
    c: &mut Conn,
    l: &AccountLoad,
    p: PendingLogin,
    a: &Answer,
    st: &mut Stats,
) -> Option<()> {
    let resp = api::LoginStartResponse::from_bytes(&a.body).ok()?;
    let ids = OpaqueIdentities {
        user_name: &l.users[p.user],
        server_identity: &l.sid,
    };
    let fin = account::login_finish_memo(
        p.state,
        PASSWORD,
        &resp.credential_response,
        &ids,
        &l.memo,
        &mut OsRng,
    )
    .ok()?;
    let finish = api::LoginFinishRequest {
        login_id: resp.login_id,
        credential_finalization: ByteBuf::from(fin.finalization.clone()),
        session_label: "coffer-load".into(),
    };
    let req = Req::cbor(&l.target, "/v1/sessions/login/finish", None, &finish).ok()?;
    if c.timed(&l.target, &req, st).await?.status == 200 {
        *st.done.entry("logins").or_default() += 1;
    }
    Some(())
}

/// One full login of a registered user: KE1, KE2, KE3 and the session.
async fn one_login(c: &mut Conn, l: &AccountLoad, k: usize, st: &mut Stats) -> Option<()> {
    let p = l.login_start(k)?;
    let a = c.timed(&l.target, &p.req, st).await?;
    if a.status != 200 {
        return None;
    }
    login_finish(c, l, p, &a, st).await
}

/// Setup of the account scenarios: registers and logs in the users, makes the reused upload.
async fn account_load(args: &Args, target: &Target, setup: &Http) -> Result<AccountLoad> {
    let sid = args.server_identity.clone();
    // Setup: a few real accounts, each logged in once end to end (the memo stretches each
    // user's password once, here).
    let memo = account::KsfMemo::new();
    let mut users = Vec::new();
    for _ in 0..8 {
        let name = unique_name("loadrl");
        register(setup, &name, &sid).await?;
        login_with(setup, &name, &sid, Some(&memo)).await?;
        users.push(name);
    }
    // One real OPAQUE registration whose upload and export key the measured registrations
    // reuse (the server cannot tell: it never runs the KSF).
    let (upload, export_key) = register(setup, &unique_name("loadup"), &sid).await?;
    let (_, reg_request) = account::registration_start(PASSWORD, &mut OsRng)?;
    Ok(AccountLoad {
        target: target.clone(),
        sid,
        upload,
        export_key,
        reg_request,
        users,
        memo,
    })
}

/// One closed-loop connection of the account scenarios until `deadline`: registrations, logins
/// or both (`register-login`; `overload` measures logins).
async fn account_worker(
    load: Rc<AccountLoad>,
    i: usize,
    scenario: Scenario,
    deadline: Instant,
) -> Stats {
    let mut st = Stats::default();
    let Ok(mut c) = Conn::open(&load.target).await else {
        st.transport_errors += 1;
        return st;
    };
    let mut k = i;
    while Instant::now() < deadline {
        k += 1;
        if matches!(scenario, Scenario::Register | Scenario::RegisterLogin) {
            let _ = one_registration(&mut c, &load, &mut st).await;
        }
        if scenario != Scenario::Register {
            let _ = one_login(&mut c, &load, k, &mut st).await;
        }
    }
    st
}

async fn run_accounts(args: &Args, target: &Target, setup: &Http) -> Result<()> {
    let load = Rc::new(account_load(args, target, setup).await?);
    let scenario = args.scenario;
    let deadline = Instant::now() + args.duration;
    let cpu = CpuMeter::start(args.server_pid);
    let (stats, elapsed) = closed_loop(args.connections, |i| {
        account_worker(load.clone(), i, scenario, deadline)
    })
    .await;
    let what = match scenario {
        Scenario::Register => "registrations (start + finish)",
        Scenario::Login => "logins (start + finish)",
        _ => "registrations and logins, interleaved (each start + finish)",
    };
    stats.print(
        &format!("{what}, {} connections", args.connections),
        elapsed,
    );
    cpu.print(elapsed);
    Ok(())
}

async fn run_overload(args: &Args, target: &Target, setup: &Http) -> Result<()> {
    let load = Rc::new(account_load(args, target, setup).await?);

    // 1. What the server sustains: full logins, closed loop.
    let deadline = Instant::now() + args.duration;
    let cpu = CpuMeter::start(args.server_pid);
    let (stats, elapsed) = closed_loop(args.sustain_connections, |i| {
        account_worker(load.clone(), i, Scenario::Login, deadline)
    })
    .await;
    stats.print(
        &format!(
            "overload 1/3, sustained: full logins, closed loop, {} connections",
            args.sustain_connections
        ),
        elapsed,
    );
    cpu.print(elapsed);
    let sustained = stats.done.get("logins").copied().unwrap_or(0) as f64 / elapsed.as_secs_f64();
    if sustained < 1.0 {
        bail!("the server completed no logins in the closed loop");
    }
    let rate = if args.rate > 0 {
        args.rate as f64
    } else {
        sustained * args.factor
    };

    // Client messages of the admitted logins, precomputed (KE1s: a blinding and an ephemeral
    // key each). A shed start goes back to the pool: the server did not process it.
    let want = (sustained * args.duration.as_secs_f64() * 1.5) as usize + args.connections;
    let t = Instant::now();
    let pool: Rc<std::cell::RefCell<Vec<PendingLogin>>> = Rc::new(
        (0..want)
            .filter_map(|k| load.login_start(k))
            .collect::<Vec<_>>()
            .into(),
    );
    println!(
        "  {} login starts precomputed in {:.2}s (outside the measurements)",
        pool.borrow().len(),
        t.elapsed().as_secs_f64()
    );

    // 2. The offer: login starts open loop at `rate`, each admitted one followed by its finish
    // on the same connection. `connections` open connections; a start takes an idle one (at
    // most `connections` logins in flight) and gives it back when its login is over.
    let (idle_tx, mut idle_rx) = tokio::sync::mpsc::unbounded_channel::<Conn>();
    for _ in 0..args.connections {
        idle_tx
            .send(Conn::open(target).await?)
            .map_err(|_| anyhow!("idle queue"))?;
    }
    let shared = Rc::new(std::cell::RefCell::new(Stats::default()));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let cpu = CpuMeter::start(args.server_pid);
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    let deadline = start + args.duration;
    let (offered, not_sent) = local
        .run_until(async {
            let mut next = start;
            let (mut offered, mut not_sent) = (0u64, 0u64);
            while Instant::now() < deadline {
                next += interval;
                offered += 1;
                let popped = pool.borrow_mut().pop();
                let pending = popped.or_else(|| load.login_start(offered as usize));
                match (idle_rx.try_recv(), pending) {
                    (Ok(mut c), Some(p)) => {
                        let (load, pool, shared) = (load.clone(), pool.clone(), shared.clone());
                        let idle_tx = idle_tx.clone();
                        tokio::task::spawn_local(async move {
                            let mut st = Stats::default();
                            if let Some(a) = c.timed(&load.target, &p.req, &mut st).await {
                                if a.status == 200 {
                                    let _ = login_finish(&mut c, &load, p, &a, &mut st).await;
                                } else {
                                    pool.borrow_mut().push(p);
                                }
                            }
                            shared.borrow_mut().merge(st);
                            let _ = idle_tx.send(c);
                        });
                    }
                    (Ok(c), None) => {
                        not_sent += 1;
                        let _ = idle_tx.send(c);
                    }
                    (Err(_), p) => {
                        not_sent += 1;
                        pool.borrow_mut().extend(p);
                    }
                }
                if next > Instant::now() {
                    tokio::time::sleep_until(next.into()).await;
                }
            }
            (offered, not_sent)
        })
        .await;
    let offer_secs = start.elapsed().as_secs_f64();
    // Let the logins in flight finish.
    local.await;
    let drained = Instant::now();
    let elapsed = start.elapsed();
    let stats = std::mem::take(&mut *shared.borrow_mut());
    stats.print(
        &format!(
            "overload 2/3, offered: {rate:.0} login starts/s open loop ({:.1}x the sustained \
             {sustained:.0} logins/s), at most {} in flight",
            rate / sustained,
            args.connections
        ),
        elapsed,
    );
    cpu.print(elapsed);
    println!(
        "  offered {offered} = {:.0}/s, sent {} = {:.0}/s, not sent (no idle connection): \
         {not_sent}",
        offered as f64 / offer_secs,
        offered - not_sent,
        (offered - not_sent) as f64 / offer_secs
    );

    // 3. Recovery: full logins, one after another, as soon as the offer has drained.
    let mut probe = Conn::open(target).await?;
    let mut rec = Stats::default();
    let mut first_login = None;
    let t0 = Instant::now();
    for k in 0..50 {
        if one_login(&mut probe, &load, k, &mut rec).await.is_some() && first_login.is_none() {
            first_login = Some(drained.elapsed());
        }
    }
    rec.print(
        "overload 3/3, recovery: 50 full logins right after",
        t0.elapsed(),
    );
    if let Some(d) = first_login {
        println!(
            "  first completed login {:.1} ms after the offer drained",
            d.as_secs_f64() * 1e3
        );
    }
    let h = probe
        .send(&Req::new(
            target,
            HMethod::GET,
            "/healthz",
            None,
            None,
            Vec::new(),
        )?)
        .await?;
    println!("  /healthz after: {}", h.status);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    // One thread: the generator must leave the machine's other core to the server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let target = Target::parse(&args.url).await?;
        let setup = Http::new(&args.url, 4)?;
        match args.scenario {
            Scenario::LinkResolve => run_link_resolve(&args, &target, &setup).await,
            Scenario::UploadSmall => run_upload_small(&args, &target, &setup).await,
            Scenario::RegisterLogin | Scenario::Register | Scenario::Login => {
                run_accounts(&args, &target, &setup).await
            }
            Scenario::Overload => run_overload(&args, &target, &setup).await,
        }
    })
}
