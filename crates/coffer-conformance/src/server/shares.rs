//! Shares (spec §11.10): create, list, member reads and writes, what members may not do, member
//! removal with a rotation bundle (the removed member loses access at once), delete.

use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::ids::ShareId;
use coffer_core::rotation::{self, RemoveMember};
use coffer_core::share::{self, GrantExpectation, RecipientKeys};
use reqwest::Method;

use super::client::{self, Node, User};
use super::http::{Context as _, Http, R};
use super::{Abort, Ctx, Fixture, READ, WRITE};
use crate::{ensure, fail};

/// The member's view of the shared folder: its key from the grant of `generation`.
async fn open_share_folder(
    http: &Http,
    member: &User,
    owner: &User,
    share_id: ShareId,
    folder: &Node,
    generation: u64,
) -> R<Node> {
    let g: api::MyGrants = http
        .get(&format!("/v1/shares/{share_id}/grants/mine"), member.t())
        .await?
        .ok(200)?;
    let entry = g
        .grants
        .iter()
        .find(|e| e.generation == generation)
        .ok_or_else(|| fail!("no grant of generation {generation}"))?;
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
    .ctx("the grant does not open")?;
    let r: api::NodeResponse = http
        .get(&format!("/v1/nodes/{}", folder.id), member.t())
        .await?
        .ok(200)?;
    let record = tree_verify(&r.signed_node, owner)?;
    Ok(Node {
        id: folder.id,
        record,
        signed: r.signed_node.to_vec(),
        key,
        revision: folder.revision,
        file_key: None,
    })
}

fn tree_verify(signed: &[u8], author: &User) -> R<coffer_core::tree::NodeRecord> {
    let rec = client::record_of(signed)?;
    ensure!(
        rec.author.0 == author.signing().verifying_key().to_bytes(),
        "the record's author is not the owner"
    );
    Ok(rec)
}

/// Checks that `who` sees nothing of the share and its subtree (all `404`).
async fn shut_out(http: &Http, who: &User, sid: ShareId, team: &Node, file: &Node) -> R<()> {
    for (what, path) in [
        ("the share", format!("/v1/shares/{sid}")),
        ("its grants", format!("/v1/shares/{sid}/grants/mine")),
        ("the shared folder", format!("/v1/nodes/{}", team.id)),
        ("its children", format!("/v1/nodes/{}/children", team.id)),
        ("a file's record", format!("/v1/nodes/{}", file.id)),
        ("a file's content", format!("/v1/nodes/{}/content", file.id)),
    ] {
        http.get(&path, who.t())
            .await?
            .problem(ProblemKind::NotFound)
            .map_err(|e| fail!("{what}: {e}"))?;
    }
    let l: api::ShareList = http.get("/v1/shares", who.t()).await?.ok(200)?;
    ensure!(
        l.member_of.iter().all(|s| s.share_id != sid),
        "the share is still listed"
    );
    Ok(())
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    let (a, b, cc) = (&fx.alice, &fx.bob, &fx.carol);
    let r = async {
        let team = a.mkdir(http, &a.root, "team").await?;
        let file = a.upload_file(http, &team, "plan.txt", b"the plan").await?;
        let (sid, record) = a.share(http, &team, &[(b, WRITE), (cc, READ)]).await?;
        Ok((team, file, sid, record))
    }
    .await;
    let (team, file, sid, record) = c.need(
        "share a folder with a writer and a reader (201 ShareUpdated, revision 0)",
        "§11.10",
        r,
    )?;
    let r = async {
        let l: api::ShareList = http.get("/v1/shares", a.t()).await?.ok(200)?;
        ensure!(
            l.owned.iter().any(|s| s.share_id == sid),
            "not in the owner's owned list"
        );
        let l: api::ShareList = http.get("/v1/shares", b.t()).await?.ok(200)?;
        ensure!(
            l.member_of.iter().any(|s| s.share_id == sid),
            "not in the member's member-of list"
        );
        let s: api::ShareResponse = http
            .get(&format!("/v1/shares/{sid}"), b.t())
            .await?
            .ok(200)?;
        ensure!(
            s.revision == 0 && s.departed.is_empty(),
            "revision {} departed {:?}",
            s.revision,
            s.departed
        );
        Ok(())
    }
    .await;
    c.check(
        "the share is listed as owned and as member-of; members read it",
        "§11.10",
        r,
    );
    let r = async {
        let bt = open_share_folder(http, b, a, sid, &team, 0).await?;
        ensure!(
            bt.key.expose() == team.key.expose(),
            "the grant holds another folder key"
        );
        let kids = crate::server::content::children(http, b, team.id).await?;
        ensure!(
            kids.contains(&file.signed),
            "the member does not see the owner's file"
        );
        ensure!(
            b.download(http, &file).await? == b"the plan",
            "content differs"
        );
        let bobs = b.mkdir(http, &bt, "bobs").await?;
        let bf = b
            .upload_file(http, &bt, "from-bob", b"hello from bob")
            .await?;
        ensure!(
            cc.download(http, &bf).await? == b"hello from bob",
            "the reader reads other content"
        );
        ensure!(
            a.download(http, &bf).await? == b"hello from bob",
            "the owner reads other content"
        );
        Ok((bobs, bf))
    }
    .await;
    let (bobs, bf) = c.need(
        "a writer opens its grant, reads, creates folders and uploads; reader and owner read it",
        "§11.5, §11.10",
        r,
    )?;
    let r = async {
        let ct = open_share_folder(http, cc, a, sid, &team, 0).await?;
        let n = cc.folder_record(&ct, "nope")?;
        http.post(
            "/v1/nodes",
            cc.t(),
            &api::NodeCreateRequest {
                signed_node: ByteBuf::from(n.signed.clone()),
            },
        )
        .await?
        .problem(ProblemKind::Forbidden)
        .map(drop)
    }
    .await;
    c.check(
        "a read-only member writing is 403 forbidden",
        "§11.5, §11.3",
        r,
    );
    let r = async {
        b.delete_with(
            http,
            &format!("/v1/nodes/{}", team.id),
            &api::NodeDeleteRequest {
                expected_revision: team.revision,
            },
        )
        .await?
        .problem(ProblemKind::Forbidden)
        .map_err(|e| fail!("a member deleting the share root: {e}"))?;
        b.delete_with(
            http,
            &format!("/v1/shares/{sid}"),
            &api::ShareDeleteRequest {
                expected_revision: 0,
                node_records: vec![],
            },
        )
        .await?
        .problem(ProblemKind::Forbidden)
        .map_err(|e| fail!("a member deleting the share: {e}"))?;
        http.bare(Method::POST, &format!("/v1/shares/{sid}/leave"), a.t())
            .await?
            .problem(ProblemKind::Forbidden)
            .map_err(|e| fail!("the owner leaving: {e}"))?;
        http.get(&format!("/v1/shares/{sid}/grants/mine"), a.t())
            .await?
            .problem(ProblemKind::Forbidden)
            .map_err(|e| fail!("the owner's grants/mine: {e}"))?;
        let l = a.link_params(&team, &coffer_core::link::LinkOptions::default())?;
        http.post(
            "/v1/links",
            b.t(),
            &api::LinkCreateRequest { link: l.params },
        )
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("a member creating a link: {e}"))?;
        Ok(())
    }
    .await;
    c.check(
        "members may not delete the share root or the share (403), the owner may not leave (403), members create no links (404)",
        "§11.10, §11.5",
        r,
    );

    // Remove carol with a rotation of the whole subtree.
    let r = async {
        let subtree = vec![
            team.record.clone(),
            file.record.clone(),
            bobs.record.clone(),
            bf.record.clone(),
        ];
        let out = rotation::remove_member_lazy(
            &RemoveMember {
                owner: &a.granter(),
                share: &record,
                removed: &cc.name,
                parent_key: &a.root.folder_key(),
                folder_key: &team.folder_key(),
                subtree: &subtree,
                time: client::now(),
            },
            &mut rand_core::OsRng,
        )
        .ctx("build the rotation")?;
        let path = format!("/v1/shares/{sid}/members/{}", cc.account_id);
        let stale = api::MemberRemoveRequest {
            expected_revision: 4,
            rotation_bundle: ByteBuf::from(encode(&out.bundle)),
        };
        a.delete_with(http, &path, &stale)
            .await?
            .problem(ProblemKind::RevisionMismatch)
            .map_err(|e| fail!("a stale expected-revision: {e}"))?;
        let ok = api::MemberRemoveRequest {
            expected_revision: 0,
            rotation_bundle: ByteBuf::from(encode(&out.bundle)),
        };
        let up: api::ShareUpdated = a.delete_with(http, &path, &ok).await?.ok(200)?;
        ensure!(
            (up.revision, up.generation) == (1, 1),
            "revision and generation {:?}, expected (1, 1)",
            (up.revision, up.generation)
        );
        Ok(())
    }
    .await;
    c.need(
        "remove a member with a rotation bundle: stale revision 409, then 200 (revision 1, generation 1)",
        "§11.10, §9.2",
        r,
    )?;
    let r = shut_out(http, cc, sid, &team, &file).await;
    c.check(
        "the removed member sees nothing of the share at once (404)",
        "§11.10, §11.5",
        r,
    );
    let r = async {
        let g: api::MyGrants = http
            .get(&format!("/v1/shares/{sid}/grants/mine"), b.t())
            .await?
            .ok(200)?;
        let gens: Vec<u64> = g.grants.iter().map(|e| e.generation).collect();
        // The rotation deleted every grant of generation 0 (§9.2.2).
        ensure!(gens == vec![1], "grant generations {gens:?}, expected [1]");
        let bt = open_share_folder(http, b, a, sid, &team, 1).await?;
        ensure!(
            bt.record.key_generation == 1,
            "the shared folder is at generation {}",
            bt.record.key_generation
        );
        ensure!(
            b.download(http, &file).await? == b"the plan",
            "content differs"
        );
        Ok(())
    }
    .await;
    c.check(
        "the remaining member holds only the new generation's grant and opens it",
        "§11.10, §9.2.2",
        r,
    );
    let r = async {
        a.delete_with(
            http,
            &format!("/v1/shares/{sid}"),
            &api::ShareDeleteRequest {
                expected_revision: 1,
                node_records: vec![],
            },
        )
        .await?
        .status_is(204)?;
        shut_out(http, b, sid, &team, &file).await?;
        http.get(&format!("/v1/nodes/{}", team.id), a.t())
            .await?
            .status_is(200)
    }
    .await;
    c.check(
        "the owner deletes the share (204): members lose access, the owner keeps the tree",
        "§11.10",
        r,
    );
    Ok(())
}
