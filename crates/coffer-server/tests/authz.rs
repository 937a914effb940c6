//! The authorization matrix (spec §11.5, §11.3 "404 instead of 403"): every data-plane endpoint
//! against every caller that must be refused — no session, another account, a removed member, a
//! member who left, a deleted account — and the refusal leaks nothing: the problem document is
//! byte for byte the one a resource that does not exist gets. The link rows: every endpoint
//! reachable through a link, for a revoked link (the `404` of an unknown link) and an expired
//! link (`410 link-expired`).
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api::{self, Body, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::{AccountId, NodeId, ShareId, UploadId};
use coffer_core::share::{PERMISSION_READ, PERMISSION_WRITE};
use common::*;
use rand_core::OsRng;
use reqwest::Method;

#[derive(Clone, Debug)]
struct Req {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
}

fn req(name: &'static str, method: Method, path: String) -> Req {
    Req {
        name,
        method,
        path,
        content_type: None,
        body: None,
    }
}

fn with<B: Body>(mut r: Req, b: &B) -> Req {
    r.content_type = Some(api::CBOR_CONTENT_TYPE);
    r.body = Some(b.to_bytes());
    r
}

async fn send(http: &Http, r: &Req, token: Option<&str>) -> Resp {
    http.send(
        r.method.clone(),
        &r.path,
        token,
        r.content_type,
        r.body.clone(),
        &[],
    )
    .await
}

/// Every data-plane request about the given resources.
#[allow(clippy::too_many_arguments)]
fn requests(
    owner: &User,
    folder: &Node,
    file: &Node,
    upload: UploadId,
    share: ShareId,
    member: AccountId,
    new_child: &Node,
) -> Vec<Req> {
    let n = folder.id;
    let f = file.id;
    let mut part = req(
        "put part",
        Method::PUT,
        format!("/v1/uploads/{upload}/parts/0"),
    );
    part.content_type = Some(api::OCTET_STREAM_CONTENT_TYPE);
    part.body = Some(vec![0; 100]);
    vec![
        req("get node", Method::GET, format!("/v1/nodes/{n}")),
        req("children", Method::GET, format!("/v1/nodes/{n}/children")),
        req("content", Method::GET, format!("/v1/nodes/{f}/content")),
        req(
            "head content",
            Method::HEAD,
            format!("/v1/nodes/{f}/content"),
        ),
        with(
            req("update node", Method::PUT, format!("/v1/nodes/{n}")),
            &api::NodeUpdateRequest {
                expected_revision: folder.revision,
                signed_node: ByteBuf::from(owner.renamed(folder, "x").signed),
            },
        ),
        with(
            req("delete node", Method::DELETE, format!("/v1/nodes/{n}")),
            &api::NodeDeleteRequest {
                expected_revision: folder.revision,
            },
        ),
        with(
            req("create node", Method::POST, "/v1/nodes".into()),
            &api::NodeCreateRequest {
                signed_node: ByteBuf::from(new_child.signed.clone()),
            },
        ),
        with(
            req("create upload", Method::POST, "/v1/uploads".into()),
            &api::UploadCreateRequest {
                node_id: NodeId::generate(&mut OsRng),
                parent_id: n,
                content_revision: 1,
                total_length: 100,
                part_size: PART,
            },
        ),
        req(
            "upload status",
            Method::GET,
            format!("/v1/uploads/{upload}"),
        ),
        part,
        with(
            req(
                "finalize",
                Method::POST,
                format!("/v1/uploads/{upload}/finalize"),
            ),
            &api::UploadFinalizeRequest {
                expected_revision: None,
                signed_node: ByteBuf::from(file.signed.clone()),
            },
        ),
        req(
            "abort upload",
            Method::DELETE,
            format!("/v1/uploads/{upload}"),
        ),
        req("get share", Method::GET, format!("/v1/shares/{share}")),
        req(
            "my grants",
            Method::GET,
            format!("/v1/shares/{share}/grants/mine"),
        ),
        req("leave", Method::POST, format!("/v1/shares/{share}/leave")),
        with(
            req(
                "delete share",
                Method::DELETE,
                format!("/v1/shares/{share}"),
            ),
            &api::ShareDeleteRequest {
                expected_revision: 0,
                node_records: vec![],
            },
        ),
        with(
            req(
                "remove member",
                Method::DELETE,
                format!("/v1/shares/{share}/members/{member}"),
            ),
            &api::MemberRemoveRequest {
                expected_revision: 0,
                rotation_bundle: ByteBuf::from(vec![0x80]),
            },
        ),
        req(
            "drop content",
            Method::GET,
            format!("/v1/drops/{upload}/content"),
        ),
        req("delete drop", Method::DELETE, format!("/v1/drops/{upload}")),
    ]
}

/// The same requests about resources that do not exist.
fn missing(owner: &User, template: &[Req], ids: &[(String, String)]) -> Vec<Req> {
    let _ = owner;
    template
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for (from, to) in ids {
                r.path = r.path.replace(from.as_str(), to.as_str());
            }
            r
        })
        .collect()
}

fn fresh<T: std::fmt::Display>(x: T) -> String {
    x.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "owner").await;
    let mallory = new_user(&http, "stranger").await;
    let bob = new_user(&http, "removed").await;
    let carol = new_user(&http, "keeper").await;
    let dave = new_user(&http, "leaver").await;
    let eve = new_user(&http, "deleted").await;

    let team = alice.mkdir(&http, &alice.root, "team").await;
    let sub = alice.mkdir(&http, &team, "sub").await;
    let file = alice.upload_file(&http, &sub, "f", b"secret").await;
    let (sid, record) = alice
        .share(
            &http,
            &team,
            &[
                (&bob, PERMISSION_WRITE),
                (&carol, PERMISSION_READ),
                (&dave, PERMISSION_WRITE),
                (&eve, PERMISSION_READ),
            ],
        )
        .await;
    let (pending, _) = alice.file_record(&sub, "p", b"x", 1);
    let up = alice.upload_create(&http, &pending, sub.id, 100).await;

    // Remove bob (rotation), dave leaves, eve deletes her account.
    let subtree = [team.record.clone(), sub.record.clone(), file.record.clone()];
    alice
        .remove_member(&http, sid, &record, &bob, &team, &subtree, 0)
        .await;
    http.bare(Method::POST, &format!("/v1/shares/{sid}/leave"), dave.t())
        .await
        .empty(204);
    let eve_token = eve.token.clone();
    delete_account(&http, &eve).await;
    // The share still works for carol.
    http.get(&format!("/v1/nodes/{}", team.id), carol.t())
        .await
        .ok::<api::NodeResponse>(200);

    let child = bob.folder_record(&sub, "c");
    let reqs = requests(
        &alice,
        &sub,
        &file,
        up.upload_id,
        sid,
        carol.account_id,
        &child,
    );
    let ids = vec![
        (fresh(sub.id), fresh(NodeId::generate(&mut OsRng))),
        (fresh(file.id), fresh(NodeId::generate(&mut OsRng))),
        (fresh(up.upload_id), fresh(UploadId::generate(&mut OsRng))),
        (fresh(sid), fresh(ShareId::generate(&mut OsRng))),
    ];
    let ghosts = missing(&alice, &reqs, &ids);

    // The reference: what a resource that does not exist gets (asked by mallory).
    let mut reference = Vec::new();
    for g in &ghosts {
        let r = send(&http, g, mallory.t()).await;
        if g.method == Method::HEAD {
            assert_eq!(r.status, 404, "{}", g.name);
        } else if g.name == "create node" || g.name == "create upload" {
            // These name the parent in the body; the path is the same.
            reference.push(None);
            continue;
        } else {
            r.expect(ProblemKind::NotFound);
        }
        reference.push(Some(r.body));
    }

    for (who, token) in [
        ("stranger", mallory.t()),
        ("removed member", bob.t()),
        ("member who left", dave.t()),
    ] {
        for (r, reference) in reqs.iter().zip(&reference) {
            let resp = send(&http, r, token).await;
            // Share endpoints that leak nothing about the tree: same 404 as a missing one.
            assert_eq!(resp.status, 404, "{who}: {} -> {}", r.name, resp.status);
            if r.method != Method::HEAD {
                let p = resp.expect(ProblemKind::NotFound);
                if let Some(reference) = reference {
                    assert_eq!(
                        &resp.body, reference,
                        "{who}: {} differs from a missing resource",
                        r.name
                    );
                }
                assert!(!p.detail.contains(&sub.id.to_string()));
            }
        }
    }
    // No session, and a deleted account's session: 401 everywhere.
    for (who, token) in [
        ("no session", None),
        ("deleted account", Some(eve_token.as_str())),
    ] {
        for r in &reqs {
            let resp = send(&http, r, token).await;
            assert_eq!(resp.status, 401, "{who}: {}", r.name);
            if r.method != Method::HEAD {
                resp.expect(ProblemKind::Unauthenticated);
                assert!(resp.header("www-authenticate").is_some());
            }
        }
    }
    // A reader may read but not write: 403 for writes, never for reads.
    let resp = send(&http, &reqs[0], carol.t()).await;
    assert_eq!(resp.status, 200);
    let mine = bob.folder_record(&sub, "by-carol");
    let _ = mine;
    // The owner still has everything.
    for r in &reqs[..4] {
        let resp = send(&http, r, alice.t()).await;
        assert!(resp.status < 300, "owner: {} -> {}", r.name, resp.status);
    }
    assert!(http.healthy().await);
}

/// Every endpoint reachable through a link (§11.11.3–§11.11.6) of `kind`, for link `id`.
fn link_requests(
    id: coffer_core::ids::LinkId,
    kind: api::LinkKind,
    folder: NodeId,
    file: NodeId,
    upload: UploadId,
) -> Vec<Req> {
    let base = format!("/v1/l/{id}");
    let mut out = vec![
        req("resolve", Method::GET, base.clone()),
        with(
            req("unlock", Method::POST, format!("{base}/unlock")),
            &api::LinkUnlockRequest {
                verifier: api::LinkVerifier::from_bytes([7; 32]),
            },
        ),
    ];
    match kind {
        api::LinkKind::File => out.extend([
            req("link content", Method::GET, format!("{base}/content")),
            req("head link content", Method::HEAD, format!("{base}/content")),
            req("link node", Method::GET, format!("{base}/nodes/{file}")),
            req(
                "link node content",
                Method::GET,
                format!("{base}/nodes/{file}/content"),
            ),
        ]),
        api::LinkKind::Folder => out.extend([
            req("link node", Method::GET, format!("{base}/nodes/{folder}")),
            req(
                "link children",
                Method::GET,
                format!("{base}/nodes/{folder}/children"),
            ),
            req(
                "link file content",
                Method::GET,
                format!("{base}/nodes/{file}/content"),
            ),
            req(
                "head link file content",
                Method::HEAD,
                format!("{base}/nodes/{file}/content"),
            ),
        ]),
        _ => {
            let mut part = req(
                "drop part",
                Method::PUT,
                format!("{base}/uploads/{upload}/parts/0"),
            );
            part.content_type = Some(api::OCTET_STREAM_CONTENT_TYPE);
            part.body = Some(vec![0; 100]);
            out.extend([
                with(
                    req("create drop", Method::POST, format!("{base}/drops")),
                    &api::DropCreateRequest {
                        drop_envelope: ByteBuf::from(vec![0x80]),
                        total_length: 100,
                        part_size: PART,
                    },
                ),
                part,
                req(
                    "drop status",
                    Method::GET,
                    format!("{base}/uploads/{upload}"),
                ),
                req(
                    "finalize drop",
                    Method::POST,
                    format!("{base}/uploads/{upload}/finalize"),
                ),
                req(
                    "abort drop",
                    Method::DELETE,
                    format!("{base}/uploads/{upload}"),
                ),
            ]);
        }
    }
    out
}

/// The link rows of the matrix: every endpoint reachable through a link, for a revoked link
/// (exactly the `404` of a link that never existed) and an expired one (`410 link-expired`,
/// naming nothing), for file, folder and drop links; a live link of each kind works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_authorization_matrix() {
    use coffer_core::link::LinkOptions;
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "linker").await;
    let team = alice.mkdir(&http, &alice.root, "team").await;
    let file = alice.upload_file(&http, &team, "f", b"linked").await;
    let soon = now() + 30;
    let kinds = [
        (api::LinkKind::File, &file, false),
        (api::LinkKind::Folder, &team, false),
        (api::LinkKind::Drop, &team, true),
    ];
    let mut cases = Vec::new();
    for (kind, node, upload_only) in kinds {
        let mk = |expires_at| LinkOptions {
            expires_at,
            upload_only,
            ..LinkOptions::default()
        };
        let live = alice.make_link(&http, node, &mk(None)).await;
        let revoked = alice.make_link(&http, node, &mk(None)).await;
        let expired = alice.make_link(&http, node, &mk(Some(soon))).await;
        let (revoked_upload, expired_upload) = if upload_only {
            (
                start_drop(&http, &revoked, 100).await.0.upload_id,
                start_drop(&http, &expired, 100).await.0.upload_id,
            )
        } else {
            (
                UploadId::generate(&mut OsRng),
                UploadId::generate(&mut OsRng),
            )
        };
        http.bare(
            Method::DELETE,
            &format!("/v1/links/{}", revoked.id),
            alice.t(),
        )
        .await
        .empty(204);
        cases.push((kind, live, revoked, revoked_upload, expired, expired_upload));
    }
    srv.handle
        .state()
        .advance_clock(std::time::Duration::from_secs(60));

    for (kind, live, revoked, revoked_upload, expired, expired_upload) in &cases {
        let reqs = |id, upload| link_requests(id, *kind, team.id, file.id, upload);
        // Revoked: byte for byte what a link that never existed gets.
        let ghost = coffer_core::ids::LinkId::generate(&mut OsRng);
        for (r, g) in reqs(revoked.id, *revoked_upload)
            .iter()
            .zip(reqs(ghost, *revoked_upload).iter())
        {
            let got = send(&http, r, None).await;
            let reference = send(&http, g, None).await;
            assert_eq!(got.status, 404, "revoked {kind:?}: {}", r.name);
            assert_eq!(reference.status, 404, "unknown {kind:?}: {}", g.name);
            if r.method != Method::HEAD {
                got.expect(ProblemKind::NotFound);
                assert_eq!(
                    got.body, reference.body,
                    "revoked {kind:?}: {} differs from an unknown link",
                    r.name
                );
            }
            // An owner's session changes nothing on anonymous link endpoints.
            assert_eq!(send(&http, r, alice.t()).await.status, 404);
        }
        // Expired: 410 link-expired on every endpoint, naming nothing.
        for r in reqs(expired.id, *expired_upload) {
            let got = send(&http, &r, None).await;
            assert_eq!(got.status, 410, "expired {kind:?}: {}", r.name);
            if r.method != Method::HEAD {
                let p = got.expect(ProblemKind::LinkExpired);
                for secret in [
                    team.id.to_string(),
                    file.id.to_string(),
                    expired.id.to_string(),
                ] {
                    assert!(!p.detail.contains(&secret), "{}: {}", r.name, p.detail);
                }
            }
        }
        // The live link still resolves (the rows above are not an artefact of the setup).
        http.get(&format!("/v1/l/{}", live.id), None)
            .await
            .ok::<api::LinkResolved>(200);
    }
    assert!(http.healthy().await);
}

/// The drop endpoints (§11.11.2) serve the owner of the drop link's folder and the `write`
/// members of the share holding it, and no one else: a read member, a removed member, a member
/// who left and a stranger list nothing and get, for every drop, the `404` of a drop that does
/// not exist, byte for byte. A write member sees exactly what the owner sees of the drops into
/// the share, nothing of the owner's other drops, and may delete them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_endpoints_follow_share_write_permission() {
    use coffer_core::link::LinkOptions;
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "dropowner").await;
    let bob = new_user(&http, "dropwriter").await;
    let carol = new_user(&http, "dropreader").await;
    let dave = new_user(&http, "dropremoved").await;
    let erin = new_user(&http, "dropleaver").await;
    let mallory = new_user(&http, "dropstranger").await;

    let team = alice.mkdir(&http, &alice.root, "team").await;
    let sub = alice.mkdir(&http, &team, "inbox").await;
    let outside = alice.mkdir(&http, &alice.root, "private").await;
    let (sid, record) = alice
        .share(
            &http,
            &team,
            &[
                (&bob, PERMISSION_WRITE),
                (&carol, PERMISSION_READ),
                (&dave, PERMISSION_WRITE),
                (&erin, PERMISSION_WRITE),
            ],
        )
        .await;
    let upload_only = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    let inside = alice.make_link(&http, &sub, &upload_only).await;
    let private = alice.make_link(&http, &outside, &upload_only).await;
    let d_in = drop_file(&http, &inside, b"into the share").await;
    let d_in2 = drop_file(&http, &inside, b"into the share, again").await;
    let d_out = drop_file(&http, &private, b"into a private folder").await;
    // Drops of the same second are ordered by id: compare sets.
    let set = |v: &[UploadId]| v.iter().copied().collect::<std::collections::BTreeSet<_>>();
    let listed = |l: &api::DropList| set(&l.drops.iter().map(|d| d.drop_id).collect::<Vec<_>>());

    // Before removal dave, a write member, lists the share's drops.
    let l: api::DropList = http.get("/v1/drops", dave.t()).await.ok(200);
    assert_eq!(listed(&l), set(&[d_in, d_in2]));

    // Remove dave (rotation); erin leaves.
    let subtree = [team.record.clone(), sub.record.clone()];
    alice
        .remove_member(&http, sid, &record, &dave, &team, &subtree, 0)
        .await;
    http.bare(Method::POST, &format!("/v1/shares/{sid}/leave"), erin.t())
        .await
        .empty(204);

    // The owner lists all three; the write member exactly the two into the share, each with
    // the same link record and the same ciphertext as the owner.
    let all: api::DropList = http.get("/v1/drops", alice.t()).await.ok(200);
    assert_eq!(listed(&all), set(&[d_in, d_in2, d_out]));
    let mine: api::DropList = http.get("/v1/drops", bob.t()).await.ok(200);
    assert_eq!(listed(&mine), set(&[d_in, d_in2]));
    for m in &mine.drops {
        let a = all.drops.iter().find(|a| a.drop_id == m.drop_id).unwrap();
        assert_eq!(m, a, "the member's entry is the owner's");
        let path = format!("/v1/drops/{}/content", m.drop_id);
        let by_bob = http.get(&path, bob.t()).await;
        assert_eq!(by_bob.status, 200);
        assert_eq!(by_bob.body, http.get(&path, alice.t()).await.body);
    }

    // The reference: a drop that does not exist, asked by the stranger.
    let ghost = UploadId::generate(&mut OsRng);
    let missing_content = http
        .get(&format!("/v1/drops/{ghost}/content"), mallory.t())
        .await;
    missing_content.expect(ProblemKind::NotFound);
    let missing_delete = http
        .bare(Method::DELETE, &format!("/v1/drops/{ghost}"), mallory.t())
        .await;
    missing_delete.expect(ProblemKind::NotFound);
    // The write member learns nothing of the owner's other drops either.
    let refused = [
        ("read member", carol.t(), vec![d_in, d_in2, d_out]),
        ("removed member", dave.t(), vec![d_in, d_in2, d_out]),
        ("member who left", erin.t(), vec![d_in, d_in2, d_out]),
        ("stranger", mallory.t(), vec![d_in, d_in2, d_out]),
        ("write member", bob.t(), vec![d_out]),
    ];
    for (who, token, drops) in refused {
        let l: api::DropList = http.get("/v1/drops", token).await.ok(200);
        if who != "write member" {
            assert!(l.drops.is_empty(), "{who} lists drops");
        }
        for id in drops {
            let c = http.get(&format!("/v1/drops/{id}/content"), token).await;
            assert_eq!(c.status, 404, "{who}: content of {id}");
            assert_eq!(c.body, missing_content.body, "{who}: content differs");
            let h = http
                .bare(Method::HEAD, &format!("/v1/drops/{id}/content"), token)
                .await;
            assert_eq!(h.status, 404);
            let d = http
                .bare(Method::DELETE, &format!("/v1/drops/{id}"), token)
                .await;
            assert_eq!(d.status, 404, "{who}: delete of {id}");
            assert_eq!(d.body, missing_delete.body, "{who}: delete differs");
        }
    }
    // Nothing was deleted by the refused requests; the write member deletes one of the share's.
    let after: api::DropList = http.get("/v1/drops", alice.t()).await.ok(200);
    assert_eq!(listed(&after), set(&[d_in, d_in2, d_out]));
    http.bare(Method::DELETE, &format!("/v1/drops/{d_in2}"), bob.t())
        .await
        .empty(204);
    let after: api::DropList = http.get("/v1/drops", alice.t()).await.ok(200);
    assert_eq!(listed(&after), set(&[d_in, d_out]));
    assert!(http.healthy().await);
}
