//! Compromise recovery of an account that owns a share (spec §9.4, §11.6.8): the tree, the share
//! (by a recovery rotation), the identity and the key bundle change in one request; members keep
//! reading old and new files through the new generation; other sessions and unreplaced links die.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::account::{self, OpaqueIdentities};
use coffer_core::api::{self, ProblemKind, ReauthPurpose};
use coffer_core::encoding::{encode, ByteBuf, Bytes};
use coffer_core::link::LinkOptions;
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::rotation::{self, RecoverShare, RotationOutput};
use coffer_core::share::{self, GrantExpectation, GranterKeys, PinnedIdentity, RecipientKeys};
use coffer_core::tree::{self, NewNode, NodeRecord, SealedMetadata};
use common::*;
use rand_core::OsRng;

/// What the recovering client sends, and what it keeps to check the outcome.
struct Recovered {
    request: api::RecoveryFinishRequest,
    new_account: account::Recovery,
    rotation: RotationOutput,
}

/// Runs the recovery's re-authentication start (with the new registration) and builds the whole
/// `RecoveryFinishRequest`: a new root, `top` re-sealed under it, and `team` (shared as `sid`)
/// re-keyed by a recovery rotation of `share_record`. `sign_share_with_old` makes a bundle under the old identity
/// (which the server must refuse).
async fn build_recovery(
    http: &Http,
    alice: &User,
    share_record: &share::ShareRecord,
    team: &[&Node],
    top: &Node,
    sign_share_with_old: bool,
) -> Recovered {
    let sid_name = server_identity();
    let ids = OpaqueIdentities {
        user_name: &alice.name,
        server_identity: &sid_name,
    };
    let (login_state, credential_request) =
        account::login_start(PASSWORD, &mut OsRng).expect("login start");
    let (reg_state, registration_request) =
        account::registration_start(PASSWORD, &mut OsRng).expect("registration start");
    let resp: api::ReauthStartResponse = http
        .post(
            "/v1/account/recover/start",
            alice.t(),
            &api::ReauthStartRequest {
                purpose: ReauthPurpose::Recovery,
                credential_request: ByteBuf::from(credential_request),
                registration_request: Some(ByteBuf::from(registration_request)),
            },
        )
        .await
        .ok(200);
    let finish = account::login_finish(
        login_state,
        PASSWORD,
        &resp.credential_response,
        &ids,
        &mut OsRng,
    )
    .expect("login finish");
    let chain: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .ok(200);
    let current_identity = chain.generations.last().expect("generation 0");
    let rec = account::recover(
        reg_state,
        PASSWORD,
        resp.registration_response.as_deref().expect("registration"),
        &ids,
        &alice.account,
        current_identity,
        now(),
        &mut OsRng,
    )
    .expect("recover");
    let secrets = &rec.account.secrets;
    let new_sign = &secrets.identity.signing;

    // The root under its new key, metadata re-sealed under it.
    let root = NewNode {
        node_id: secrets.root_node_id,
        node_key: secrets.root_node_key.clone(),
    };
    let md = Metadata::folder("root".into(), now()).expect("metadata");
    let sealed = seal_metadata(&root.node_key, &root.node_id, 2, &md, &mut OsRng);
    let (root_rec, root_signed) = tree::create_root(
        new_sign,
        &root,
        SealedMetadata {
            revision: 2,
            sealed,
        },
        now(),
    )
    .expect("root");
    let new_root_key = root_rec.folder_key(root.node_key.clone());

    // `top` (a file outside the share): its node key re-sealed under the new root key.
    let mut top_rec = top.record.clone();
    top_rec.sealed_node_key = Some(ByteBuf::from(tree::seal_node_key(
        &new_root_key,
        top.id,
        &top.key,
        &mut OsRng,
    )));
    top_rec.parent_generation = new_root_key.generation;
    top_rec.author = Bytes(new_sign.verifying_key().to_bytes());
    top_rec.time = now();
    let top_signed = top_rec.sign(new_sign).expect("sign top");

    // The share: a recovery rotation signed by the new identity.
    let old_granter = GranterKeys {
        signing_key: alice.signing(),
        user_name: &alice.name,
        identity_generation: 0,
    };
    let new_granter = GranterKeys {
        signing_key: new_sign,
        user_name: &alice.name,
        identity_generation: secrets.identity_generation,
    };
    let subtree: Vec<NodeRecord> = team.iter().map(|n| n.record.clone()).collect();
    let rotation = rotation::rekey_share_for_recovery(
        &RecoverShare {
            owner: &new_granter,
            share: share_record,
            departed: &[],
            parent_key: &new_root_key,
            folder_key: &team[0].folder_key(),
            subtree: &subtree,
            time: now(),
        },
        &mut OsRng,
    )
    .expect("rekey share");
    let mut bundle = rotation.bundle.clone();
    if sign_share_with_old {
        // The same share record, signed by the old key: not a recovery rotation.
        let mut old_owner = rotation.share.clone();
        old_owner.owner.ed25519 = Bytes(old_granter.signing_key.verifying_key().to_bytes());
        bundle.share = ByteBuf::from(encode(
            &old_owner.sign(old_granter.signing_key).expect("sign"),
        ));
    }
    let request = api::RecoveryFinishRequest {
        reauth_id: resp.reauth_id,
        credential_finalization: ByteBuf::from(finish.finalization),
        expected_account_revision: 0,
        registration_upload: ByteBuf::from(rec.registration_upload.clone()),
        key_bundle: ByteBuf::from(rec.key_bundle.clone()),
        signed_identity: ByteBuf::from(rec.signed_identity.clone()),
        signed_nodes: vec![
            ByteBuf::from(encode(&root_signed)),
            ByteBuf::from(encode(&top_signed)),
        ],
        rotations: vec![ByteBuf::from(encode(&bundle))],
        links: Vec::new(),
    };
    Recovered {
        request,
        new_account: rec,
        rotation,
    }
}

/// A member's view of a node below `parent`, opened from the server's current record.
async fn open_below(
    http: &Http,
    member: &User,
    parent: &Node,
    id: coffer_core::ids::NodeId,
) -> Node {
    let r: api::NodeResponse = http
        .get(&format!("/v1/nodes/{id}"), member.t())
        .await
        .ok(200);
    let record = record_of(&r.signed_node);
    let key = record
        .open_node_key(&parent.record, &parent.folder_key())
        .expect("node key opens");
    let file_key = record
        .file
        .as_ref()
        .map(|_| record.open_file_key(&key).expect("file key"));
    Node {
        id,
        record,
        signed: r.signed_node.to_vec(),
        key,
        revision: etag_revision(&http.get(&format!("/v1/nodes/{id}"), member.t()).await),
        file_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_of_a_share_owner_keeps_members_reading() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let bob = new_user(&http, "bob").await;
    let other_session = login(&http, &alice.name).await;

    let team = alice.mkdir(&http, &alice.root, "team").await;
    let old = alice
        .upload_file(&http, &team, "old", b"written before the recovery")
        .await;
    let top = alice.upload_file(&http, &alice.root, "top", b"top").await;
    let (sid, record) = alice
        .share(&http, &team, &[(&bob, share::PERMISSION_WRITE)])
        .await;
    let link = alice.make_link(&http, &top, &LinkOptions::default()).await;
    http.get(&format!("/v1/l/{}", link.id), None)
        .await
        .ok::<api::LinkResolved>(200);

    // Refused, with nothing changed: a share re-keyed under the old identity; no bundle; a
    // share node also listed in `signed-nodes`.
    let bad = build_recovery(&http, &alice, &record, &[&team, &old], &top, true).await;
    let p = http
        .post("/v1/account/recover/finish", alice.t(), &bad.request)
        .await
        .expect(ProblemKind::InvalidRecord);
    assert_eq!(
        p.detail,
        "a rotation bundle does not verify against its share"
    );
    let mut bad = build_recovery(&http, &alice, &record, &[&team, &old], &top, false).await;
    bad.request.rotations.clear();
    let p = http
        .post("/v1/account/recover/finish", alice.t(), &bad.request)
        .await
        .expect(ProblemKind::InvalidRecord);
    assert_eq!(
        p.detail,
        "recovery needs exactly one rotation bundle per share the account owns"
    );
    let mut bad = build_recovery(&http, &alice, &record, &[&team, &old], &top, false).await;
    bad.request
        .signed_nodes
        .push(ByteBuf::from(bad.rotation.bundle.nodes[1].to_vec()));
    let p = http
        .post("/v1/account/recover/finish", alice.t(), &bad.request)
        .await
        .expect(ProblemKind::InvalidRecord);
    assert_eq!(
        p.detail,
        "the re-keyed tree must hold exactly one record per node outside the owned shares"
    );
    http.get("/v1/account", other_session.t())
        .await
        .ok::<api::AccountInfo>(200);
    let s: api::ShareResponse = http
        .get(&format!("/v1/shares/{sid}"), bob.t())
        .await
        .ok(200);
    assert_eq!(s.revision, 0);

    // The recovery.
    let rec = build_recovery(&http, &alice, &record, &[&team, &old], &top, false).await;
    let updated: api::AccountUpdated = http
        .post("/v1/account/recover/finish", alice.t(), &rec.request)
        .await
        .ok(200);
    assert_eq!(updated.account_revision, 1);
    assert_eq!(updated.identity_generation, 1);
    assert_eq!(updated.sessions_revoked, 1);
    http.get("/v1/account", other_session.t())
        .await
        .expect(ProblemKind::Unauthenticated);
    // The link was not replaced: revoked.
    assert_not_found(&http.get(&format!("/v1/l/{}", link.id), None).await);

    // Alice logs in again: the new key bundle, and a root signed by the new identity.
    let alice = login(&http, &alice.name).await;
    assert_eq!(alice.account.master_key.generation, 1);
    assert_eq!(
        alice.signing().verifying_key(),
        rec.new_account
            .account
            .secrets
            .identity
            .signing
            .verifying_key()
    );
    let s: api::ShareResponse = http
        .get(&format!("/v1/shares/{sid}"), bob.t())
        .await
        .ok(200);
    assert_eq!(s.revision, 1);
    let new_owner = PinnedIdentity {
        user_name: alice.name.clone(),
        identity_generation: 1,
        ed25519: alice.signing().verifying_key(),
        x25519: alice.account.secrets.identity.agreement.public_key(),
    };
    let now_share =
        share::verify_share(&s.signed_share, sid, &new_owner.ed25519, 1).expect("share");
    assert_eq!(now_share, rec.rotation.share);

    // Bob opens the new generation's grant from the new identity, then reads the old file.
    let g: api::MyGrants = http
        .get(&format!("/v1/shares/{sid}/grants/mine"), bob.t())
        .await
        .ok(200);
    let entry = g
        .grants
        .iter()
        .find(|e| e.generation == 1)
        .expect("grant of generation 1");
    assert_eq!(
        g.grants.iter().map(|e| e.generation).collect::<Vec<_>>(),
        vec![1],
        "the recovery rotation deletes the old identity's grants (§11.6.8)"
    );
    let (_, team_key) = share::open_grant(
        &entry.grant,
        &GrantExpectation {
            share_id: sid,
            generation: 1,
            granter: new_owner.clone(),
        },
        &RecipientKeys {
            user_name: &bob.name,
            identity_generation: 0,
            secret: &bob.account.secrets.identity.agreement,
        },
    )
    .expect("grant opens");
    assert_ne!(team_key, team.key);
    let r: api::NodeResponse = http
        .get(&format!("/v1/nodes/{}", team.id), bob.t())
        .await
        .ok(200);
    let team_rec = tree::verify_node(
        &r.signed_node,
        &tree::NodeExpectation {
            node_id: team.id,
            parent: Some((alice.root.id, alice.root.record.key_generation)),
            key_generation: Some(1),
        },
        &[new_owner.ed25519],
    )
    .expect("team verifies under the new identity");
    let bob_team = Node {
        id: team.id,
        record: team_rec,
        signed: r.signed_node.to_vec(),
        key: team_key,
        revision: etag_revision(&http.get(&format!("/v1/nodes/{}", team.id), bob.t()).await),
        file_key: None,
    };
    let bob_old = open_below(&http, &bob, &bob_team, old.id).await;
    assert_eq!(
        bob.download(&http, &bob_old).await,
        b"written before the recovery"
    );

    // Alice's new login reaches the share folder from the new root, and writes a new file
    // under the new generation; Bob reads it.
    let alice_team = open_below(&http, &alice, &alice.root, team.id).await;
    assert_eq!(alice_team.folder_key().key, bob_team.key);
    assert_eq!(alice_team.record.key_generation, 1);
    let new_file = alice
        .upload_file(&http, &alice_team, "new", b"written after the recovery")
        .await;
    let bob_new = open_below(&http, &bob, &bob_team, new_file.id).await;
    assert_eq!(
        bob.download(&http, &bob_new).await,
        b"written after the recovery"
    );
    // And the file outside the share is intact under the new root.
    let alice_top = open_below(&http, &alice, &alice.root, top.id).await;
    assert_eq!(alice.download(&http, &alice_top).await, b"top");
}
