//! The authorization matrix (spec §11.5, §11.3 "404 instead of 403"): every data-plane endpoint
//! against every caller that must be refused — no session, another account, a removed member, a
//! member who left, a deleted account — and the refusal leaks nothing: the problem document is
//! byte for byte the one a resource that does not exist gets.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api::{self, Body, ProblemKind};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::ids::{AccountId, NodeId, ShareId, UploadId};
use coffer_core::rotation::{self, RemoveMember};
use coffer_core::share::{GranterKeys, PERMISSION_READ, PERMISSION_WRITE};
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
    let granter = GranterKeys {
        signing_key: alice.signing(),
        user_name: &alice.name,
        identity_generation: 0,
    };
    let out = rotation::remove_member_lazy(
        &RemoveMember {
            owner: &granter,
            share: &record,
            removed: &bob.name,
            parent_key: &alice.root.folder_key(),
            folder_key: &team.folder_key(),
            subtree: &[team.record.clone(), sub.record.clone(), file.record.clone()],
            time: now(),
        },
        &mut OsRng,
    )
    .unwrap();
    http.cbor(
        Method::DELETE,
        &format!("/v1/shares/{sid}/members/{}", bob.account_id),
        alice.t(),
        &api::MemberRemoveRequest {
            expected_revision: 0,
            rotation_bundle: ByteBuf::from(encode(&out.bundle)),
        },
    )
    .await
    .ok::<api::ShareUpdated>(200);
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
