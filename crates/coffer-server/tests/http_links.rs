//! Link HTTP tests (spec §11.11): owner endpoints, anonymous resolve, password unlock with its
//! rate limit, rotation, re-sealing, expiry and download limits, bad input.

mod common;

use std::time::Duration;

use coffer_core::account;
use coffer_core::api::{
    LinkCreateRequest, LinkCreated, LinkKind, LinkList, LinkParams, LinkResealRequest,
    LinkResolved, LinkRotateRequest, LinkUnlockRequest, LinkUnlocked, LinkVerifier, ProblemKind,
};
use coffer_core::encoding::{ByteBuf, Bytes};
use coffer_core::ids::NodeId;
use coffer_core::link::{self, CreatedLink, LinkOptions, LinkTarget, NewLinkPassword, NodeKind};
use coffer_core::primitives::{Argon2Params, SecretKey};
use coffer_server::config::{FileConfig, Rate};
use coffer_server::store::{self, LinkAccess, NodeWrite};
use common::accounts::*;
use common::TestServer;
use rand_core::OsRng;

const ORIGIN: &str = "https://coffer.example";

struct Owner {
    reg: Registered,
    session: LoggedIn,
}

async fn owner(srv: &TestServer, name: &str) -> Owner {
    let reg = register(srv, name, "pw").await;
    let session = login(srv, name, "pw").await;
    Owner { reg, session }
}

/// Builds a link to the owner's root folder (or `target`) and its `LinkParams`.
fn make_link(
    o: &Owner,
    target: Option<(NodeId, NodeKind)>,
    options: &LinkOptions<'_>,
    now: u64,
) -> (CreatedLink, LinkParams) {
    let secrets = &o.session.account.secrets;
    let (node_id, node_kind) = target.unwrap_or((secrets.root_node_id, NodeKind::Folder));
    let t = LinkTarget {
        node_id,
        node_kind,
        generation: 0,
        node_key: if node_kind == NodeKind::Folder {
            secrets.root_node_key.clone()
        } else {
            SecretKey::generate(&mut OsRng)
        },
    };
    let created = link::create_link(&mut OsRng, ORIGIN, &t, options, now).expect("create link");
    let owner_key = account::link_entries_key(&o.session.account.master_key, &o.reg.account_id);
    let owner_entry = link::seal_owner_entry(&owner_key, &created.owner_entry, &mut OsRng);
    let kind = match (node_kind, options.upload_only) {
        (_, true) => LinkKind::Drop,
        (NodeKind::File, false) => LinkKind::File,
        (NodeKind::Folder, false) => LinkKind::Folder,
    };
    let params = LinkParams {
        link_id: created.url.link_id(),
        node_id,
        kind,
        link_record: ByteBuf::from(created.record.clone()),
        owner_entry: ByteBuf::from(owner_entry),
        verifier_hash: created.verifier_hash.map(Bytes),
        expires_at: options.expires_at,
        max_downloads: options.max_downloads,
    };
    (created, params)
}

fn lpath(p: &LinkParams) -> String {
    format!("/v1/l/{}", p.link_id)
}

#[tokio::test]
async fn folder_link_create_list_resolve_revoke() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    let bob = owner(&srv, "bob").await;
    let (_, params) = make_link(&alice, None, &LinkOptions::default(), srv.now());
    let req = LinkCreateRequest {
        link: params.clone(),
    };
    let created: LinkCreated = srv
        .post("/v1/links", Some(&alice.session.token), &req)
        .await
        .body(201);
    assert_eq!(created.link_id, params.link_id);
    // Replay of the identical create answers the same.
    let again: LinkCreated = srv
        .post("/v1/links", Some(&alice.session.token), &req)
        .await
        .body(201);
    assert_eq!(again, created);
    // Bob cannot link alice's folder (404: he may not learn it exists), nor reuse the id.
    srv.post("/v1/links", Some(&bob.session.token), &req)
        .await
        .expect(ProblemKind::NotFound);

    // Anonymous resolve: the record and the folder's node record, not counted.
    let r = srv.get(&lpath(&params), None).await;
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let resolved: LinkResolved = r.body(200);
    assert_eq!(resolved.kind, LinkKind::Folder);
    assert_eq!(resolved.password, None);
    assert_eq!(
        resolved.link_record.as_deref().map(Vec::as_slice),
        Some(params.link_record.as_slice())
    );
    assert_eq!(
        resolved.node.as_deref().map(Vec::as_slice),
        Some(alice.reg.root_node.as_slice())
    );
    assert_eq!(resolved.downloads_remaining, None);
    // Session tokens are not link tokens; a link without a password ignores none.
    srv.get(&lpath(&params), Some(&alice.session.token))
        .await
        .body::<LinkResolved>(200);

    // The owner's list; bob's is empty.
    let list: LinkList = srv
        .get("/v1/links", Some(&alice.session.token))
        .await
        .body(200);
    assert_eq!(list.links.len(), 1);
    let e = &list.links[0];
    assert_eq!(e.link_id, params.link_id);
    assert_eq!(e.downloads, 0);
    assert!(!e.password);
    assert_eq!(e.owner_entry, params.owner_entry);
    let list: LinkList = srv
        .get("/v1/links", Some(&bob.session.token))
        .await
        .body(200);
    assert!(list.links.is_empty());

    // Revoke: bob cannot, alice can; then the link is gone everywhere.
    let path = format!("/v1/links/{}", params.link_id);
    srv.delete(&path, Some(&bob.session.token))
        .await
        .expect(ProblemKind::NotFound);
    assert_eq!(
        srv.delete(&path, Some(&alice.session.token)).await.status,
        204
    );
    srv.get(&lpath(&params), None)
        .await
        .expect(ProblemKind::NotFound);
    srv.delete(&path, Some(&alice.session.token))
        .await
        .expect(ProblemKind::NotFound);
}

#[tokio::test]
async fn file_links_name_files() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    // A file node placed directly in the store (uploads are the data plane's).
    let file_id = NodeId::generate(&mut OsRng);
    srv.handle
        .state()
        .meta
        .create_node(
            NodeWrite {
                node_id: file_id,
                parent_id: Some(alice.reg.account.secrets.root_node_id),
                owner: alice.reg.account_id,
                kind: store::NodeKind::File,
                revision: 0,
                share_id: None,
                record: b"file record".to_vec(),
            },
            None,
        )
        .await
        .expect("node");
    let opts = LinkOptions {
        max_downloads: Some(2),
        ..LinkOptions::default()
    };
    let (_, params) = make_link(&alice, Some((file_id, NodeKind::File)), &opts, srv.now());
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    let resolved: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    assert_eq!(resolved.kind, LinkKind::File);
    assert_eq!(
        resolved.node.as_deref().map(Vec::as_slice),
        Some(&b"file record"[..])
    );
    assert_eq!(resolved.downloads_remaining, Some(2));

    // Download limit: two counted downloads exhaust the link (410 from then on).
    let meta = &srv.handle.state().meta;
    for _ in 0..2 {
        let a = meta
            .consume_download(params.link_id, srv.now())
            .await
            .expect("consume");
        assert!(matches!(a, LinkAccess::Live(_)));
    }
    srv.get(&lpath(&params), None)
        .await
        .expect(ProblemKind::LinkExhausted);
    let list: LinkList = srv
        .get("/v1/links", Some(&alice.session.token))
        .await
        .body(200);
    assert_eq!(list.links[0].downloads, 2);

    // A folder link naming the file, and a file link naming a folder, are invalid records.
    let (_, mut wrong) = make_link(
        &alice,
        Some((file_id, NodeKind::File)),
        &LinkOptions::default(),
        srv.now(),
    );
    wrong.kind = LinkKind::Folder;
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest { link: wrong },
    )
    .await
    .expect(ProblemKind::InvalidRecord);
}

#[tokio::test]
async fn password_link_unlock_and_rate_limit() {
    let mut cfg = FileConfig::default();
    cfg.rate_limits.unlock_failures_per_link = Rate {
        count: 3,
        per_secs: 3600,
    };
    let srv = TestServer::start_with(cfg).await;
    let alice = owner(&srv, "alice").await;
    let opts = LinkOptions {
        password: Some(NewLinkPassword {
            password: b"link password",
            params: Argon2Params::MIN,
        }),
        ..LinkOptions::default()
    };
    let (created, params) = make_link(&alice, None, &opts, srv.now());
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);

    // Locked: password parameters only.
    let locked: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    assert!(locked.link_record.is_none());
    assert!(locked.node.is_none());
    let pw = locked.password.clone().expect("password parameters");
    // An invalid token is 401 link-locked.
    let r = srv
        .get(
            &lpath(&params),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    r.expect(ProblemKind::LinkLocked);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"coffer-link\"")
    );

    // The right verifier from the password and the link secret.
    let pw_key = pw.derive_key(b"link password").expect("derive");
    let verifier = link::password_verifier(created.url.secret(), &pw_key);
    let good = LinkUnlockRequest {
        verifier: LinkVerifier::from_bytes(*verifier),
    };
    let unlock_path = format!("{}/unlock", lpath(&params));
    let unlocked: LinkUnlocked = srv.post(&unlock_path, None, &good).await.body(200);
    assert!(unlocked.expires_at > srv.now());
    let token = unlocked.access_token.to_b64();
    let open: LinkResolved = srv.get(&lpath(&params), Some(&token)).await.body(200);
    assert_eq!(
        open.link_record.as_deref().map(Vec::as_slice),
        Some(params.link_record.as_slice())
    );
    assert!(open.node.is_some());
    // A link token is not a session token.
    srv.get("/v1/account", Some(&token))
        .await
        .expect(ProblemKind::Unauthenticated);

    // Wrong verifiers: 403 until the per-link limit, then 429 even for the right one.
    let bad = LinkUnlockRequest {
        verifier: LinkVerifier::from_bytes([0u8; 32]),
    };
    for _ in 0..3 {
        srv.post(&unlock_path, None, &bad)
            .await
            .expect(ProblemKind::LinkUnlockFailed);
    }
    let r = srv.post(&unlock_path, None, &good).await;
    r.expect(ProblemKind::RateLimited);
    assert!(r.header("retry-after").as_deref().is_some());

    // Rotation kills the old link and its tokens; the new one starts locked.
    let (_, new_params) = make_link(&alice, None, &opts, srv.now());
    let rotated: LinkCreated = srv
        .post(
            &format!("/v1/links/{}/rotate", params.link_id),
            Some(&alice.session.token),
            &LinkRotateRequest {
                link: new_params.clone(),
            },
        )
        .await
        .body(201);
    assert_eq!(rotated.link_id, new_params.link_id);
    srv.get(&lpath(&params), Some(&token))
        .await
        .expect(ProblemKind::NotFound);
    let r: LinkResolved = srv.get(&lpath(&new_params), None).await.body(200);
    assert!(r.link_record.is_none());
    srv.get(&lpath(&new_params), Some(&token))
        .await
        .expect(ProblemKind::LinkLocked);
    // Replay of the rotation answers the same.
    let again: LinkCreated = srv
        .post(
            &format!("/v1/links/{}/rotate", params.link_id),
            Some(&alice.session.token),
            &LinkRotateRequest {
                link: new_params.clone(),
            },
        )
        .await
        .body(201);
    assert_eq!(again, rotated);
}

#[tokio::test]
async fn unlock_of_a_link_without_password_is_400() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    let (_, params) = make_link(&alice, None, &LinkOptions::default(), srv.now());
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    srv.post(
        &format!("{}/unlock", lpath(&params)),
        None,
        &LinkUnlockRequest {
            verifier: LinkVerifier::from_bytes([1u8; 32]),
        },
    )
    .await
    .expect(ProblemKind::InvalidParameter);
}

#[tokio::test]
async fn expiry_and_rotation_rules() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    let now = srv.now();
    // An expiry in the past is refused.
    let past = LinkOptions {
        expires_at: Some(now - 10),
        ..LinkOptions::default()
    };
    let (_, p) = make_link(&alice, None, &past, now);
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest { link: p },
    )
    .await
    .expect(ProblemKind::InvalidParameter);

    let soon = LinkOptions {
        expires_at: Some(now + 60),
        ..LinkOptions::default()
    };
    let (_, params) = make_link(&alice, None, &soon, now);
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    let r: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    assert_eq!(r.expires_at, Some(now + 60));

    // Rotation must keep the node and kind, and take a new id.
    let (_, same_id) = (None::<()>, params.clone());
    let rotate = |p: LinkParams| LinkRotateRequest { link: p };
    let path = format!("/v1/links/{}/rotate", params.link_id);
    srv.post(&path, Some(&alice.session.token), &rotate(same_id))
        .await
        .expect(ProblemKind::InvalidParameter);
    let drop_opts = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    let (_, other_kind) = make_link(&alice, None, &drop_opts, now);
    srv.post(&path, Some(&alice.session.token), &rotate(other_kind))
        .await
        .expect(ProblemKind::InvalidParameter);

    // After the expiry: 410 link-expired.
    srv.handle.state().advance_clock(Duration::from_secs(120));
    srv.get(&lpath(&params), None)
        .await
        .expect(ProblemKind::LinkExpired);
    srv.post(
        &format!("{}/unlock", lpath(&params)),
        None,
        &LinkUnlockRequest {
            verifier: LinkVerifier::from_bytes([1u8; 32]),
        },
    )
    .await
    .expect(ProblemKind::LinkExpired);
    // Listed still, with its expiry.
    let list: LinkList = srv
        .get("/v1/links", Some(&alice.session.token))
        .await
        .body(200);
    assert_eq!(list.links.len(), 1);
}

#[tokio::test]
async fn drop_links_resolve_without_a_node() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    let opts = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    let (_, params) = make_link(&alice, None, &opts, srv.now());
    srv.post(
        "/v1/links",
        Some(&alice.session.token),
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    let r: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    assert_eq!(r.kind, LinkKind::Drop);
    assert!(r.node.is_none());
    assert!(r.link_record.is_some());
}

#[tokio::test]
async fn bad_link_input() {
    let srv = TestServer::start_with(FileConfig::default()).await;
    let alice = owner(&srv, "alice").await;
    let t = Some(alice.session.token.as_str());
    let now = srv.now();
    // A record for another link id.
    let (_, a) = make_link(&alice, None, &LinkOptions::default(), now);
    let (_, b) = make_link(&alice, None, &LinkOptions::default(), now);
    let mut mixed = a.clone();
    mixed.link_record = b.link_record.clone();
    srv.post("/v1/links", t, &LinkCreateRequest { link: mixed })
        .await
        .expect(ProblemKind::InvalidRecord);
    // Parameters that disagree with the record.
    let mut limit = a.clone();
    limit.max_downloads = Some(5);
    srv.post("/v1/links", t, &LinkCreateRequest { link: limit })
        .await
        .expect(ProblemKind::InvalidRecord);
    let mut no_pw = a.clone();
    no_pw.verifier_hash = Some(Bytes([3; 32]));
    srv.post("/v1/links", t, &LinkCreateRequest { link: no_pw })
        .await
        .expect(ProblemKind::InvalidRecord);
    // Garbage record and owner entry.
    let mut garbage = a.clone();
    garbage.link_record = ByteBuf::from(vec![0xa0]);
    srv.post("/v1/links", t, &LinkCreateRequest { link: garbage })
        .await
        .expect(ProblemKind::InvalidRecord);
    let mut entry = a.clone();
    entry.owner_entry = ByteBuf::from(vec![1, 2, 3]);
    srv.post("/v1/links", t, &LinkCreateRequest { link: entry })
        .await
        .expect(ProblemKind::InvalidRecord);
    // A download limit of 0 does not decode.
    let mut zero = a.clone();
    zero.max_downloads = Some(0);
    srv.raw(
        reqwest::Method::POST,
        "/v1/links",
        t,
        Some(coffer_core::api::CBOR_CONTENT_TYPE),
        Some(coffer_core::encoding::encode(&LinkCreateRequest {
            link: zero,
        })),
    )
    .await
    .expect(ProblemKind::MalformedBody);
    // Malformed link ids in paths; unknown links.
    srv.get("/v1/l/short", None)
        .await
        .expect(ProblemKind::InvalidParameter);
    srv.get(&lpath(&a), None)
        .await
        .expect(ProblemKind::NotFound);
    srv.post(
        &format!("/v1/links/{}/rotate", a.link_id),
        t,
        &LinkRotateRequest { link: b.clone() },
    )
    .await
    .expect(ProblemKind::NotFound);
    // Unauthenticated owner endpoints.
    srv.get("/v1/links", None)
        .await
        .expect(ProblemKind::Unauthenticated);
    srv.assert_healthy().await;
    // The good one still works.
    srv.post("/v1/links", t, &LinkCreateRequest { link: a })
        .await
        .body::<LinkCreated>(201);
}

/// The re-seal of `created` for generation `generation` of `folder` with a fresh folder key.
fn resealed(created: &CreatedLink, folder: NodeId, generation: u64) -> LinkResealRequest {
    let t = LinkTarget {
        node_id: folder,
        node_kind: NodeKind::Folder,
        generation,
        node_key: SecretKey::generate(&mut OsRng),
    };
    let r = link::reseal_link(&mut OsRng, &created.owner_entry, &t).expect("reseal");
    LinkResealRequest {
        link_record: ByteBuf::from(r.record),
    }
}

/// Changes one plaintext field of an encoded record (leaving its sealed parts as they are).
fn reencoded(record: &[u8], f: impl FnOnce(&mut link::LinkRecord)) -> LinkResealRequest {
    let mut r = link::LinkRecord::parse(record).expect("parse");
    f(&mut r);
    LinkResealRequest {
        link_record: ByteBuf::from(r.to_bytes()),
    }
}

#[tokio::test]
async fn reseal_replaces_the_record_under_the_same_link_id() {
    let srv = TestServer::start().await;
    let alice = owner(&srv, "alice").await;
    let bob = owner(&srv, "bob").await;
    let t = Some(alice.session.token.as_str());
    let now = srv.now();
    let root = alice.session.account.secrets.root_node_id;
    let opts = LinkOptions {
        expires_at: Some(now + 3600),
        max_downloads: Some(5),
        ..LinkOptions::default()
    };
    let (created, params) = make_link(&alice, None, &opts, now);
    srv.post(
        "/v1/links",
        t,
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    let path = format!("/v1/links/{}", params.link_id);

    // The normal path: the same URL now opens at generation 1; nothing else changed.
    let gen1 = resealed(&created, root, 1);
    let r = srv.send(reqwest::Method::PUT, &path, t, &gen1).await;
    assert_eq!(r.status, 204);
    let got: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    let record = got.link_record.expect("record");
    assert_eq!(record.as_slice(), gen1.link_record.as_slice());
    let opened = link::open_link(&created.url, &record, None, now).expect("open");
    assert_eq!(opened.generation, 1);
    assert_eq!(got.expires_at, Some(now + 3600));
    assert_eq!(got.downloads_remaining, Some(5));
    let list: LinkList = srv.get("/v1/links", t).await.body(200);
    assert_eq!(list.links.len(), 1);
    let e = &list.links[0];
    assert_eq!(
        (
            e.link_id,
            e.owner_entry.as_slice(),
            e.link_record.as_slice()
        ),
        (
            params.link_id,
            params.owner_entry.as_slice(),
            gen1.link_record.as_slice()
        )
    );
    // A replay of the applied re-seal succeeds again.
    assert_eq!(
        srv.send(reqwest::Method::PUT, &path, t, &gen1).await.status,
        204
    );

    // Another account's link, and an unknown one: 404.
    srv.send(
        reqwest::Method::PUT,
        &path,
        Some(&bob.session.token),
        &resealed(&created, root, 2),
    )
    .await
    .expect(ProblemKind::NotFound);
    let (other, other_params) = make_link(&alice, None, &LinkOptions::default(), now);
    srv.send(
        reqwest::Method::PUT,
        &format!("/v1/links/{}", other_params.link_id),
        t,
        &resealed(&other, root, 1),
    )
    .await
    .expect(ProblemKind::NotFound);

    // A record for another link id, another node, or with a changed policy: 422.
    srv.send(
        reqwest::Method::PUT,
        &path,
        t,
        &LinkResealRequest {
            link_record: other_params.link_record.clone(),
        },
    )
    .await
    .expect(ProblemKind::InvalidRecord);
    let cases: [(&str, LinkResealRequest); 4] = [
        (
            "another node",
            reencoded(&gen1.link_record, |r| {
                r.node_id = NodeId::from_bytes([9; 16]);
            }),
        ),
        (
            "a later expiry",
            reencoded(&gen1.link_record, |r| r.expires_at = Some(now + 7200)),
        ),
        (
            "no download limit",
            reencoded(&gen1.link_record, |r| r.max_downloads = None),
        ),
        (
            "a garbage record",
            LinkResealRequest {
                link_record: ByteBuf::from(vec![0xa0]),
            },
        ),
    ];
    for (what, body) in &cases {
        let r = srv.send(reqwest::Method::PUT, &path, t, body).await;
        assert_eq!(r.status, 422, "{what}");
        r.expect(ProblemKind::InvalidRecord);
    }

    // A body that does not decode: 400; no session: 401.
    srv.raw(
        reqwest::Method::PUT,
        &path,
        t,
        Some(coffer_core::api::CBOR_CONTENT_TYPE),
        Some(coffer_core::encoding::encode(&LinkCreateRequest {
            link: params.clone(),
        })),
    )
    .await
    .expect(ProblemKind::MalformedBody);
    srv.send(reqwest::Method::PUT, &path, None, &gen1)
        .await
        .expect(ProblemKind::Unauthenticated);

    // None of the failures changed the record.
    let got: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    assert_eq!(
        got.link_record.as_deref().map(Vec::as_slice),
        Some(gen1.link_record.as_slice())
    );

    // A revoked link cannot be re-sealed.
    assert_eq!(srv.delete(&path, t).await.status, 204);
    srv.send(reqwest::Method::PUT, &path, t, &gen1)
        .await
        .expect(ProblemKind::NotFound);
}

#[tokio::test]
async fn reseal_of_a_drop_link_never_lowers_its_generation() {
    let srv = TestServer::start().await;
    let alice = owner(&srv, "alice").await;
    let t = Some(alice.session.token.as_str());
    let root = alice.session.account.secrets.root_node_id;
    let opts = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    let (created, params) = make_link(&alice, None, &opts, srv.now());
    srv.post(
        "/v1/links",
        t,
        &LinkCreateRequest {
            link: params.clone(),
        },
    )
    .await
    .body::<LinkCreated>(201);
    let path = format!("/v1/links/{}", params.link_id);
    let gen3 = resealed(&created, root, 3);
    assert_eq!(
        srv.send(reqwest::Method::PUT, &path, t, &gen3).await.status,
        204
    );
    let got: LinkResolved = srv.get(&lpath(&params), None).await.body(200);
    let record = link::LinkRecord::parse(&got.link_record.expect("record")).expect("parse");
    assert_eq!(record.drop.map(|d| d.generation), Some(3));
    // Back to the original (generation 0) record, or to generation 2: refused.
    srv.send(
        reqwest::Method::PUT,
        &path,
        t,
        &LinkResealRequest {
            link_record: params.link_record.clone(),
        },
    )
    .await
    .expect(ProblemKind::InvalidRecord);
    srv.send(reqwest::Method::PUT, &path, t, &resealed(&created, root, 2))
        .await
        .expect(ProblemKind::InvalidRecord);
    // A read record for the drop link: refused.
    srv.send(
        reqwest::Method::PUT,
        &path,
        t,
        &reencoded(&gen3.link_record, |r| r.drop = None),
    )
    .await
    .expect(ProblemKind::InvalidRecord);
}
