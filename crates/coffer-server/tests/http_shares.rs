//! Shares over HTTP (spec §11.10): create, list, read, member writes, add, remove with a rotation
//! bundle, leave, delete.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::rotation::{self, RemoveMember};
use coffer_core::share::{
    self, GrantExpectation, GranterKeys, RecipientKeys, PERMISSION_READ, PERMISSION_WRITE,
};
use common::*;
use reqwest::Method;

fn granter(u: &User) -> GranterKeys<'_> {
    GranterKeys {
        signing_key: u.signing(),
        user_name: &u.name,
        identity_generation: u.account.secrets.identity_generation,
    }
}

/// The member's view of the shared folder: its key opened from the grant of `generation`.
async fn open_share_folder(
    http: &Http,
    member: &User,
    owner: &User,
    share_id: coffer_core::ids::ShareId,
    folder: &Node,
    generation: u64,
) -> Node {
    let g: api::MyGrants = http
        .get(&format!("/v1/shares/{share_id}/grants/mine"), member.t())
        .await
        .ok(200);
    let entry = g
        .grants
        .iter()
        .find(|e| e.generation == generation)
        .expect("grant of the generation");
    let (_, key) = share::open_grant(
        &entry.grant,
        &GrantExpectation {
            share_id,
            generation,
            granter: owner.pinned(),
        },
        &RecipientKeys {
            user_name: &member.name,
            identity_generation: member.account.secrets.identity_generation,
            secret: &member.account.secrets.identity.agreement,
        },
    )
    .expect("grant opens");
    let r: api::NodeResponse = http
        .get(&format!("/v1/nodes/{}", folder.id), member.t())
        .await
        .ok(200);
    let record = record_of(&r.signed_node);
    Node {
        id: folder.id,
        record,
        signed: r.signed_node.to_vec(),
        key,
        revision: folder.revision,
        file_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_lifecycle() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let bob = new_user(&http, "bob").await;
    let carol = new_user(&http, "carol").await;
    let dave = new_user(&http, "dave").await;

    let team = alice.mkdir(&http, &alice.root, "team").await;
    let inner = alice.mkdir(&http, &team, "inner").await;
    // The root itself cannot be shared.
    let (sid, record) = alice
        .share(
            &http,
            &team,
            &[(&bob, PERMISSION_WRITE), (&carol, PERMISSION_READ)],
        )
        .await;

    // Lists and reads.
    let l: api::ShareList = http.get("/v1/shares", alice.t()).await.ok(200);
    assert_eq!(l.owned.len(), 1);
    assert!(l.member_of.is_empty());
    let l: api::ShareList = http.get("/v1/shares", bob.t()).await.ok(200);
    assert_eq!(l.member_of.len(), 1);
    assert_eq!(l.member_of[0].share_id, sid);
    let s: api::ShareResponse = http
        .get(&format!("/v1/shares/{sid}"), bob.t())
        .await
        .ok(200);
    assert_eq!(s.revision, 0);
    assert!(s.departed.is_empty());
    assert_not_found(&http.get(&format!("/v1/shares/{sid}"), dave.t()).await);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", team.id), dave.t()).await);

    // Members read the subtree; a writer writes, a reader may not.
    let bob_team = open_share_folder(&http, &bob, &alice, sid, &team, 0).await;
    assert_eq!(bob_team.folder_key().key, team.key);
    let kids = bob.children(&http, team.id).await;
    assert_eq!(kids, vec![inner.signed.clone()]);
    let bobs = bob.mkdir(&http, &bob_team, "bobs").await;
    let carol_team = open_share_folder(&http, &carol, &alice, sid, &team, 0).await;
    let c = carol.folder_record(&carol_team, "nope");
    http.post(
        "/v1/nodes",
        carol.t(),
        &api::NodeCreateRequest {
            signed_node: ByteBuf::from(c.signed.clone()),
        },
    )
    .await
    .expect(ProblemKind::Forbidden);
    let file = bob
        .upload_file(&http, &bob_team, "from-bob", b"hello from bob")
        .await;
    assert_eq!(carol.download(&http, &file).await, b"hello from bob");
    assert_eq!(alice.download(&http, &file).await, b"hello from bob");
    // A member may not delete the share root nor manage the share; the owner may not leave.
    http.cbor(
        Method::DELETE,
        &format!("/v1/nodes/{}", team.id),
        bob.t(),
        &api::NodeDeleteRequest {
            expected_revision: team.revision,
        },
    )
    .await
    .expect(ProblemKind::Forbidden);
    http.cbor(
        Method::DELETE,
        &format!("/v1/shares/{sid}"),
        bob.t(),
        &api::ShareDeleteRequest {
            expected_revision: 0,
            node_records: vec![],
        },
    )
    .await
    .expect(ProblemKind::Forbidden);
    http.bare(Method::POST, &format!("/v1/shares/{sid}/leave"), alice.t())
        .await
        .expect(ProblemKind::Forbidden);
    http.get(&format!("/v1/shares/{sid}/grants/mine"), alice.t())
        .await
        .expect(ProblemKind::Forbidden);

    // Add dave (read).
    let mut with_dave = record.clone();
    with_dave
        .members
        .push(dave.pinned().as_member(PERMISSION_READ));
    let signed = with_dave.sign(alice.signing()).unwrap();
    let grant = share::issue_grant(
        &granter(&alice),
        &with_dave,
        with_dave.members.last().unwrap(),
        &team.folder_key(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    let add = api::MemberAddRequest {
        expected_revision: 0,
        signed_share: ByteBuf::from(encode(&signed)),
        grant: api::GrantEntry {
            member: dave.account_id,
            grant: ByteBuf::from(encode(&grant)),
        },
    };
    let up: api::ShareUpdated = http
        .post(&format!("/v1/shares/{sid}/members"), alice.t(), &add)
        .await
        .ok(200);
    assert_eq!((up.revision, up.generation), (1, 0));
    // A replay answers the same; a stale revision otherwise is 409.
    let up2: api::ShareUpdated = http
        .post(&format!("/v1/shares/{sid}/members"), alice.t(), &add)
        .await
        .ok(200);
    assert_eq!(up, up2);
    assert_eq!(dave.children(&http, team.id).await.len(), 3);

    // Remove carol: a lazy rotation of the whole subtree.
    let subtree_records = {
        let mut v = vec![team.record.clone(), inner.record.clone()];
        v.push(record_of(&bobs.signed));
        v.push(record_of(&file.signed));
        v
    };
    let out = rotation::remove_member_lazy(
        &RemoveMember {
            owner: &granter(&alice),
            share: &with_dave,
            removed: &carol.name,
            parent_key: &alice.root.folder_key(),
            folder_key: &team.folder_key(),
            subtree: &subtree_records,
            time: now(),
        },
        &mut rand_core::OsRng,
    )
    .unwrap();
    let path = format!("/v1/shares/{sid}/members/{}", carol.account_id);
    http.cbor(
        Method::DELETE,
        &path,
        alice.t(),
        &api::MemberRemoveRequest {
            expected_revision: 0,
            rotation_bundle: ByteBuf::from(encode(&out.bundle)),
        },
    )
    .await
    .expect(ProblemKind::RevisionMismatch);
    let up: api::ShareUpdated = http
        .cbor(
            Method::DELETE,
            &path,
            alice.t(),
            &api::MemberRemoveRequest {
                expected_revision: 1,
                rotation_bundle: ByteBuf::from(encode(&out.bundle)),
            },
        )
        .await
        .ok(200);
    assert_eq!((up.revision, up.generation), (2, 1));
    assert_not_found(&http.get(&format!("/v1/nodes/{}", team.id), carol.t()).await);
    assert_not_found(&http.get(&format!("/v1/shares/{sid}"), carol.t()).await);
    assert_not_found(
        &http
            .get(&format!("/v1/nodes/{}/content", file.id), carol.t())
            .await,
    );
    assert_not_found(
        &http
            .get(&format!("/v1/shares/{sid}/grants/mine"), carol.t())
            .await,
    );
    // Every grant of generation 0 is gone (§9.2.2): remaining members hold only the new one.
    for member in [&bob, &dave] {
        let g: api::MyGrants = http
            .get(&format!("/v1/shares/{sid}/grants/mine"), member.t())
            .await
            .ok(200);
        assert_eq!(
            g.grants.iter().map(|e| e.generation).collect::<Vec<_>>(),
            vec![1]
        );
    }
    // Bob opens the new grant and reads the file written before the removal through it.
    let bob_team1 = open_share_folder(&http, &bob, &alice, sid, &team, 1).await;
    assert_eq!(bob_team1.record.key_generation, 1);
    let r: api::NodeResponse = http
        .get(&format!("/v1/nodes/{}", file.id), bob.t())
        .await
        .ok(200);
    let rekeyed = record_of(&r.signed_node);
    let node_key = rekeyed
        .open_node_key(&bob_team1.record, &bob_team1.folder_key())
        .expect("the file opens under the new generation");
    let read = Node {
        file_key: Some(rekeyed.open_file_key(&node_key).expect("file key")),
        id: file.id,
        record: rekeyed,
        signed: r.signed_node.to_vec(),
        key: node_key,
        revision: file.revision,
    };
    assert_eq!(bob.download(&http, &read).await, b"hello from bob");

    // Bob leaves: departed, no access.
    http.bare(Method::POST, &format!("/v1/shares/{sid}/leave"), bob.t())
        .await
        .empty(204);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", team.id), bob.t()).await);
    let s: api::ShareResponse = http
        .get(&format!("/v1/shares/{sid}"), alice.t())
        .await
        .ok(200);
    assert_eq!(s.departed, vec![bob.account_id]);
    assert_eq!(s.revision, 3);

    // Delete the share: dave loses access, alice keeps her tree.
    http.cbor(
        Method::DELETE,
        &format!("/v1/shares/{sid}"),
        alice.t(),
        &api::ShareDeleteRequest {
            expected_revision: 3,
            node_records: vec![],
        },
    )
    .await
    .empty(204);
    assert_not_found(&http.get(&format!("/v1/shares/{sid}"), alice.t()).await);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", team.id), dave.t()).await);
    http.get(&format!("/v1/nodes/{}", team.id), alice.t())
        .await
        .ok::<api::NodeResponse>(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_create_checks() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let bob = new_user(&http, "bob").await;
    let a = alice.mkdir(&http, &alice.root, "a").await;
    let b = alice.mkdir(&http, &a, "b").await;
    alice.share(&http, &a, &[(&bob, PERMISSION_READ)]).await;
    // A share inside a share, and a share of the root, are refused.
    let (_, signed, grants) = share::create_share(
        &granter(&alice),
        coffer_core::ids::ShareId::generate(&mut rand_core::OsRng),
        &b.folder_key(),
        vec![bob.pinned().as_member(PERMISSION_READ)],
        &mut rand_core::OsRng,
    )
    .unwrap();
    let body = |sid, root| api::ShareCreateRequest {
        share_id: sid,
        root_node_id: root,
        signed_share: ByteBuf::from(encode(&signed)),
        grants: vec![api::GrantEntry {
            member: bob.account_id,
            grant: ByteBuf::from(encode(&grants[0])),
        }],
        node_records: vec![],
    };
    let rec: share::ShareRecord = {
        let s: share::SignedShare = coffer_core::encoding::decode(&encode(&signed)).unwrap();
        coffer_core::encoding::decode(&s.record).unwrap()
    };
    http.post("/v1/shares", alice.t(), &body(rec.share_id, b.id))
        .await
        .expect(ProblemKind::AlreadyExists);
    // Bob cannot share alice's folder: not his (404).
    http.post("/v1/shares", bob.t(), &body(rec.share_id, b.id))
        .await
        .expect(ProblemKind::NotFound);
    // A signed share for another folder than the root named: 422.
    let c = alice.mkdir(&http, &alice.root, "c").await;
    http.post("/v1/shares", alice.t(), &body(rec.share_id, c.id))
        .await
        .expect(ProblemKind::InvalidRecord);
}
