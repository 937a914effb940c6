//! `coffer-load`: a load generator for `cofferd`.
//!
//! It drives N concurrent HTTP/1.1 connections (one client per connection, keep-alive) for a
//! duration and prints requests per second, p50 and p99 latency, and the count of responses by
//! status. Setup (accounts, folders, links) happens before the clock starts; what is measured is
//! the server's work. Client-side costs are taken out of the loop: OPAQUE messages that need no
//! Argon2id are precomputed, records are signed before they are sent.
//!
//! Scenarios:
//! - `link-resolve`: `GET /v1/l/{link-id}` of a folder link (anonymous, no password).
//! - `upload-small`: one small file per iteration: `POST /v1/uploads`, `PUT` its single part,
//!   `POST .../finalize` with a signed record (three requests; latency is per request).
//! - `register-login`: `POST /v1/accounts/register/start` with a fresh user name, then
//!   `POST /v1/sessions/login/start` for one of the pre-registered users (the server's OPRF and
//!   3DH work). The login finish needs a fresh Argon2id on the client per attempt, so it is not
//!   in the loop; setup logs every pre-registered user in once, end to end.
//! - `overload`: `link-resolve` offered open-loop at `--rate` requests per second (set it to about
//!   5x the sustainable rate): the excess must be answered `503` with `Retry-After`, admitted
//!   requests keep a bounded p99, and the server answers normally at once afterwards (the
//!   recovery probe printed last).
//!
//! Rate limits (spec §11.13) are per client address, and a load generator is one address: run the
//! server with a configuration that raises them (`load.toml`: every `[rate-limits]` entry
//! `{ count = 1000000, per-secs = 1 }`, and `[limits] max-in-flight` as below). Commands:
//!
//! ```text
//! cargo build --release -p coffer-server     # (the figures below: the dev profile, see note)
//! cofferd --listen 127.0.0.1:18480 --data /tmp/coffer-load --config load.toml &   # max-in-flight 512
//! coffer-load --url http://127.0.0.1:18480 --connections 256 --duration 8s --scenario link-resolve
//! coffer-load --url http://127.0.0.1:18480 --connections 16 --duration 8s --scenario upload-small
//! coffer-load --url http://127.0.0.1:18480 --connections 16 --duration 8s --scenario register-login
//! # restart with max-in-flight 64; offer 5x the sustainable link-resolve rate:
//! coffer-load --url http://127.0.0.1:18480 --connections 512 --duration 8s --scenario overload --rate 23000
//! ```
//!
//! Figures of 2026-11-28 (2 shared cores, server and load generator on the same machine, dev
//! profile: dependencies at opt-level 3, this crate at opt-level 1; the release build did not
//! finish in time on the shared box):
//!
//! ```text
//! link-resolve, 256 conn:    4583 req/s, p50 56.4 ms, p99 94.2 ms, 37019 x 200, 0 errors
//! upload-small, 16 conn:      140 files/s (420 req/s), p50 25.5 ms, p99 242 ms, all 2xx
//! register+login start, 16:   440 req/s, p50 22.4 ms, p99 350 ms, all 2xx
//! overload, 23000 req/s offered (5x), max-in-flight 64:
//!   83289 x 503 (every one with Retry-After), 12419 x 200; admitted p50 44 ms, p99 316 ms,
//!   max 396 ms; server up; recovery probe right after: 50/50 x 200, p99 1.5 ms; /healthz 200
//! ```
//!
//! Release build, same machine and conditions (rate limits raised, max-in-flight 512; overload
//! with max-in-flight 64):
//!
//! ```text
//! link-resolve, 256 conn:    6692 req/s, p50 37.9 ms, p99 53.5 ms, 53796 x 200, 0 errors
//! upload-small, 16 conn:      121 files/s (364 req/s), p50 29.2 ms, p99 267 ms (fsync-bound)
//! register+login start, 16:   518 req/s, p50 16.5 ms, p99 249 ms
//! overload, 33000 req/s offered: 112284 x 503 (all with Retry-After), 22895 x 200; admitted p99
//!   93.9 ms, max 134 ms; recovery probe: 50/50 x 200, p99 5.1 ms; /healthz 200
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use coffer_core::account::{self, OpaqueIdentities, UnlockedAccount};
use coffer_core::api::{self, Body};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::ids::LinkId;
use coffer_core::link::{self, LinkOptions, LinkTarget, NodeKind};
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::primitives::SecretKey;
use coffer_core::tree::{self, FileContent, FolderKey, NewNode, SealedMetadata};
use rand_core::{OsRng, RngCore};
use reqwest::Method;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    LinkResolve,
    UploadSmall,
    RegisterLogin,
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
    /// `overload` only: offered requests per second (open loop).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The server identity string OPAQUE binds (`[server] identity` of the server's config).
    #[arg(long, default_value = "coffer")]
    server_identity: String,
    /// Plaintext bytes per file in `upload-small`.
    #[arg(long, default_value_t = 4096)]
    file_size: usize,
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
    retry_after: bool,
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
        let retry_after = r.headers().contains_key("retry-after");
        let body = r.bytes().await?.to_vec();
        Ok(Resp {
            status,
            retry_after,
            body,
        })
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

fn folder_meta(node: &NewNode, name: &str) -> Result<SealedMetadata> {
    let m = Metadata::folder(name.into(), now())?;
    Ok(SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    })
}

async fn register(http: &Http, name: &str, sid: &str) -> Result<()> {
    let ids = OpaqueIdentities {
        user_name: name,
        server_identity: sid,
    };
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
    let (reg, resp) = {
        let name = name.to_owned();
        let sid = sid.to_owned();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let ids = OpaqueIdentities {
                user_name: &name,
                server_identity: &sid,
            };
            let reg = account::register(
                state,
                PASSWORD,
                &resp.registration_response,
                &ids,
                resp.account_id,
                now(),
                &mut OsRng,
            )?;
            Ok((reg, resp))
        })
        .await??
    };
    let _ = ids;
    let acct = &reg.account;
    let root = NewNode {
        node_id: acct.secrets.root_node_id,
        node_key: acct.secrets.root_node_key.clone(),
    };
    let (_, signed_root) = tree::create_root(
        &acct.secrets.identity.signing,
        &root,
        folder_meta(&root, "root")?,
        now(),
    )?;
    let finish = api::RegisterFinishRequest {
        account_id: resp.account_id,
        registration_upload: ByteBuf::from(reg.registration_upload),
        key_bundle: ByteBuf::from(reg.key_bundle.clone()),
        signed_identity: ByteBuf::from(reg.signed_identity),
        root_node: ByteBuf::from(encode(&signed_root)),
    };
    let _: api::RegisterFinishResponse = http
        .cbor(
            Method::POST,
            "/v1/accounts/register/finish",
            None,
            &finish,
            201,
        )
        .await?;
    Ok(())
}

async fn login(http: &Http, name: &str, sid: &str) -> Result<Session> {
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
        tokio::task::spawn_blocking(move || {
            let ids = OpaqueIdentities {
                user_name: &name,
                server_identity: &sid,
            };
            account::login_finish(state, PASSWORD, &cr, &ids, &mut OsRng)
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

/// One small upload: create, the single part, finalize. Returns the statuses and latencies of the
/// three requests.
async fn upload_small(
    http: &Http,
    s: &Session,
    plaintext: &[u8],
    out: &mut Vec<(u16, Duration, bool)>,
) -> Result<()> {
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
    let t = Instant::now();
    let r = http
        .send(
            Method::POST,
            "/v1/uploads",
            Some(&s.token),
            Some(api::CBOR_CONTENT_TYPE),
            Some(create.to_bytes()),
        )
        .await?;
    out.push((r.status, t.elapsed(), r.retry_after));
    if r.status != 201 {
        return Ok(());
    }
    let st = api::UploadStatus::from_bytes(&r.body).map_err(|e| anyhow!("{e:?}"))?;
    let t = Instant::now();
    let r = http
        .send(
            Method::PUT,
            &format!("/v1/uploads/{}/parts/0", st.upload_id),
            Some(&s.token),
            Some(api::OCTET_STREAM_CONTENT_TYPE),
            Some(ct),
        )
        .await?;
    out.push((r.status, t.elapsed(), r.retry_after));
    if r.status != 200 {
        return Ok(());
    }
    let fin = api::UploadFinalizeRequest {
        expected_revision: None,
        signed_node: ByteBuf::from(encode(&signed)),
    };
    let t = Instant::now();
    let r = http
        .send(
            Method::POST,
            &format!("/v1/uploads/{}/finalize", st.upload_id),
            Some(&s.token),
            Some(api::CBOR_CONTENT_TYPE),
            Some(fin.to_bytes()),
        )
        .await?;
    out.push((r.status, t.elapsed(), r.retry_after));
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Measurement

#[derive(Default)]
struct Stats {
    samples: Vec<(u16, Duration, bool)>,
    transport_errors: u64,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.samples.extend(other.samples);
        self.transport_errors += other.transport_errors;
    }

    fn print(&self, title: &str, elapsed: Duration) {
        let n = self.samples.len();
        println!("== {title}");
        println!(
            "requests: {n} in {:.2}s = {:.0} req/s; transport errors: {}",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
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
        println!(
            "  admitted: {ok_n} = {:.0} req/s",
            ok_n as f64 / elapsed.as_secs_f64()
        );
    }
}

async fn closed_loop<F, Fut>(connections: usize, duration: Duration, make: F) -> (Stats, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Stats> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections).map(|i| tokio::spawn(make(i))).collect();
    let mut stats = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            stats.merge(s);
        }
    }
    let _ = duration;
    (stats, start.elapsed())
}

async fn run_link_resolve(args: &Args, setup: &Http) -> Result<f64> {
    let s = new_session(setup, &args.server_identity).await?;
    let link_id = make_link(setup, &s).await?;
    let path = format!("/v1/l/{link_id}");
    let deadline = Instant::now() + args.duration;
    let base = args.url.clone();
    let (stats, elapsed) = closed_loop(args.connections, args.duration, |_| {
        let path = path.clone();
        let base = base.clone();
        async move {
            let mut st = Stats::default();
            let Ok(http) = Http::new(&base, 1) else {
                st.transport_errors += 1;
                return st;
            };
            while Instant::now() < deadline {
                let t = Instant::now();
                match http.send(Method::GET, &path, None, None, None).await {
                    Ok(r) => st.samples.push((r.status, t.elapsed(), r.retry_after)),
                    Err(_) => st.transport_errors += 1,
                }
            }
            st
        }
    })
    .await;
    stats.print(
        &format!("link-resolve, {} connections", args.connections),
        elapsed,
    );
    let ok = stats.samples.iter().filter(|s| s.0 == 200).count();
    Ok(ok as f64 / elapsed.as_secs_f64())
}

async fn run_upload_small(args: &Args, setup: &Http) -> Result<()> {
    let sessions: Vec<Arc<Session>> = {
        let mut v = Vec::new();
        for _ in 0..args.connections.clamp(1, 8) {
            v.push(Arc::new(new_session(setup, &args.server_identity).await?));
        }
        v
    };
    let mut plaintext = vec![0u8; args.file_size];
    OsRng.fill_bytes(&mut plaintext);
    let plaintext = Arc::new(plaintext);
    let deadline = Instant::now() + args.duration;
    let base = args.url.clone();
    let files = Arc::new(AtomicU64::new(0));
    let (stats, elapsed) = closed_loop(args.connections, args.duration, |i| {
        let s = sessions[i % sessions.len()].clone();
        let base = base.clone();
        let plaintext = plaintext.clone();
        let files = files.clone();
        async move {
            let mut st = Stats::default();
            let Ok(http) = Http::new(&base, 1) else {
                st.transport_errors += 1;
                return st;
            };
            while Instant::now() < deadline {
                let before = st.samples.len();
                if upload_small(&http, &s, &plaintext, &mut st.samples)
                    .await
                    .is_err()
                {
                    st.transport_errors += 1;
                }
                if st.samples.len() == before + 3 && st.samples.last().is_some_and(|x| x.0 == 201) {
                    files.fetch_add(1, Ordering::Relaxed);
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
    let n = files.load(Ordering::Relaxed);
    println!(
        "  files finalized: {n} = {:.0} files/s",
        n as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn run_register_login(args: &Args, setup: &Http) -> Result<()> {
    let sid = args.server_identity.clone();
    // Setup: a few real accounts, each logged in once end to end (client Argon2id happens here).
    let mut users = Vec::new();
    for _ in 0..4 {
        let name = unique_name("loadrl");
        register(setup, &name, &sid).await?;
        login(setup, &name, &sid).await?;
        users.push(name);
    }
    // Precomputed client messages: a registration request and login KE1 messages need no
    // Argon2id; the server's work per message is the same whatever the blind.
    let (_, reg_request) = account::registration_start(PASSWORD, &mut OsRng)?;
    let ke1: Vec<Vec<u8>> = (0..64)
        .map(|_| account::login_start(PASSWORD, &mut OsRng).map(|(_, m)| m))
        .collect::<std::result::Result<_, _>>()?;
    let users = Arc::new(users);
    let ke1 = Arc::new(ke1);
    let deadline = Instant::now() + args.duration;
    let base = args.url.clone();
    let (stats, elapsed) = closed_loop(args.connections, args.duration, |i| {
        let users = users.clone();
        let ke1 = ke1.clone();
        let reg_request = reg_request.clone();
        let base = base.clone();
        async move {
            let mut st = Stats::default();
            let Ok(http) = Http::new(&base, 1) else {
                st.transport_errors += 1;
                return st;
            };
            let mut k = i;
            while Instant::now() < deadline {
                k += 1;
                let Ok(username) = api::Username::new(&unique_name("r")) else {
                    continue;
                };
                let reg = api::RegisterStartRequest {
                    username,
                    registration_request: ByteBuf::from(reg_request.clone()),
                };
                let t = Instant::now();
                match http
                    .send(
                        Method::POST,
                        "/v1/accounts/register/start",
                        None,
                        Some(api::CBOR_CONTENT_TYPE),
                        Some(reg.to_bytes()),
                    )
                    .await
                {
                    Ok(r) => st.samples.push((r.status, t.elapsed(), r.retry_after)),
                    Err(_) => st.transport_errors += 1,
                }
                let Ok(username) = api::Username::new(&users[k % users.len()]) else {
                    continue;
                };
                let login = api::LoginStartRequest {
                    username,
                    credential_request: ByteBuf::from(ke1[k % ke1.len()].clone()),
                };
                let t = Instant::now();
                match http
                    .send(
                        Method::POST,
                        "/v1/sessions/login/start",
                        None,
                        Some(api::CBOR_CONTENT_TYPE),
                        Some(login.to_bytes()),
                    )
                    .await
                {
                    Ok(r) => st.samples.push((r.status, t.elapsed(), r.retry_after)),
                    Err(_) => st.transport_errors += 1,
                }
            }
            st
        }
    })
    .await;
    stats.print(
        &format!(
            "register-start + login-start, {} connections",
            args.connections
        ),
        elapsed,
    );
    Ok(())
}

async fn run_overload(args: &Args, setup: &Http) -> Result<()> {
    if args.rate == 0 {
        bail!("overload needs --rate (offered requests per second)");
    }
    let s = new_session(setup, &args.server_identity).await?;
    let link_id = make_link(setup, &s).await?;
    let path = Arc::new(format!("/v1/l/{link_id}"));
    // A pool of clients; each request takes a permit (at most `connections` in flight).
    let http = Http::new(&args.url, args.connections)?;
    let permits = Arc::new(Semaphore::new(args.connections));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut next = start;
    let mut not_sent = 0u64;
    while Instant::now() < deadline {
        next += interval;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            not_sent += 1;
            tokio::time::sleep_until(next.into()).await;
            continue;
        };
        let http = http.clone();
        let path = path.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = http.send(Method::GET, &path, None, None, None).await;
            let _ = tx.send(r.map(|r| (r.status, t.elapsed(), r.retry_after)).ok());
            drop(permit);
        });
        if next > Instant::now() {
            tokio::time::sleep_until(next.into()).await;
        }
    }
    drop(tx);
    let mut stats = Stats::default();
    while let Some(r) = rx.recv().await {
        match r {
            Some(s) => stats.samples.push(s),
            None => stats.transport_errors += 1,
        }
    }
    let elapsed = start.elapsed();
    stats.print(
        &format!(
            "overload: {} req/s offered, at most {} in flight",
            args.rate, args.connections
        ),
        elapsed,
    );
    println!("  not sent (client in-flight cap reached): {not_sent}");
    // Recovery: the server must answer normally at once.
    let probe = Http::new(&args.url, 1)?;
    let mut rec = Stats::default();
    let t0 = Instant::now();
    for _ in 0..50 {
        let t = Instant::now();
        match probe.send(Method::GET, &path, None, None, None).await {
            Ok(r) => rec.samples.push((r.status, t.elapsed(), r.retry_after)),
            Err(_) => rec.transport_errors += 1,
        }
    }
    rec.print("recovery probe right after the overload", t0.elapsed());
    let h = probe
        .send(Method::GET, "/healthz", None, None, None)
        .await?;
    println!("  /healthz after: {}", h.status);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let setup = Http::new(&args.url, 4)?;
    match args.scenario {
        Scenario::LinkResolve => {
            run_link_resolve(&args, &setup).await?;
        }
        Scenario::UploadSmall => run_upload_small(&args, &setup).await?,
        Scenario::RegisterLogin => run_register_login(&args, &setup).await?,
        Scenario::Overload => run_overload(&args, &setup).await?,
    }
    Ok(())
}
