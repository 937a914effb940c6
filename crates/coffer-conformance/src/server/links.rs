//! Links and drops (spec §11.11): create, resolve, reading through a link, password unlock,
//! download limits, expiry, rotation, revocation, and upload-only drops.

use std::time::Duration;

use coffer_core::api::{self, LinkKind, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::link::{self, LinkOptions, NewLinkPassword};
use coffer_core::primitives::Argon2Params;
use reqwest::Method;

use super::client::{self, MadeLink, Node, User, PART};
use super::http::{Context as _, Http, R};
use super::{Abort, Ctx, Fixture};
use crate::{ensure, fail};

const LINK_PASSWORD: &[u8] = b"conformance link password";

fn password_options() -> LinkOptions<'static> {
    LinkOptions {
        password: Some(NewLinkPassword {
            password: LINK_PASSWORD,
            params: Argon2Params::MIN,
        }),
        ..LinkOptions::default()
    }
}

/// Resolves `l` anonymously (with an optional link token).
async fn resolve(http: &Http, l: &MadeLink, token: Option<&str>) -> R<api::LinkResolved> {
    let r = http.get(&l.path(), token).await?;
    ensure!(
        r.header("cache-control").as_deref() == Some("no-store"),
        "a /v1/l response without Cache-Control: no-store"
    );
    r.ok(200)
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    let a = &fx.alice;
    let r = async {
        let public = a.mkdir(http, &a.root, "public").await?;
        let inner = a.mkdir(http, &public, "inner").await?;
        let plain = client::random_bytes(70_000);
        let file = a.upload_file(http, &inner, "shared.bin", &plain).await?;
        let private = a
            .upload_file(http, &a.root, "private", b"not linked")
            .await?;
        Ok((public, inner, file, plain, private))
    }
    .await;
    let (public, inner, file, plain, private) = c.need(
        "set up a folder tree with a file, and a file outside it",
        "§11.8, §11.9",
        r,
    )?;

    let r = async {
        let l = a.make_link(http, &public, &LinkOptions::default()).await?;
        let again: api::LinkCreated = http
            .post(
                "/v1/links",
                a.t(),
                &api::LinkCreateRequest {
                    link: l.params.clone(),
                },
            )
            .await?
            .ok(201)?;
        ensure!(again.link_id == l.id, "the replay answered another link");
        Ok(l)
    }
    .await;
    let fl = c.need(
        "create a folder link (201); an identical replay answers 201",
        "§11.11.2, §11.4.4",
        r,
    )?;
    let r = async {
        let res = resolve(http, &fl, None).await?;
        ensure!(res.kind == LinkKind::Folder, "kind {:?}", res.kind);
        ensure!(
            res.password.is_none(),
            "a link without password reports password parameters"
        );
        let rec = res
            .link_record
            .as_deref()
            .ok_or_else(|| fail!("no link-record"))?;
        ensure!(
            rec.as_slice() == fl.params.link_record.as_slice(),
            "link-record differs from what was stored"
        );
        let node = res.node.as_deref().ok_or_else(|| fail!("no node"))?;
        ensure!(
            node.as_slice() == public.signed.as_slice(),
            "node is not the folder's current record"
        );
        ensure!(
            res.downloads_remaining.is_none(),
            "downloads-remaining without a limit"
        );
        link::open_link(&fl.url, rec, None, client::now()).ctx("the link record does not open")?;
        Ok(())
    }
    .await;
    c.check(
        "resolve returns the stored record and the folder's node, no-store",
        "§11.11.3",
        r,
    );
    let base = fl.path();
    let r = async {
        let n: api::NodeResponse = http
            .get(&format!("{base}/nodes/{}", inner.id), None)
            .await?
            .ok(200)?;
        ensure!(
            n.signed_node.as_slice() == inner.signed.as_slice(),
            "the record differs"
        );
        let kids: api::NodeList = http
            .get(
                &format!("{base}/nodes/{}/children?limit=10", public.id),
                None,
            )
            .await?
            .ok(200)?;
        ensure!(
            kids.records
                .iter()
                .any(|r| r.as_slice() == inner.signed.as_slice()),
            "the child is not listed"
        );
        let got = http
            .get(&format!("{base}/nodes/{}/content", file.id), None)
            .await?;
        got.status_is(200)?;
        let key = file.file_key.as_ref().ok_or_else(|| fail!("no file key"))?;
        ensure!(
            coffer_core::content::decrypt(key, &got.body).ctx("decrypt")? == plain,
            "the content differs"
        );
        Ok(())
    }
    .await;
    c.check(
        "a folder link reads its subtree: nodes, children, content",
        "§11.11.5",
        r,
    );
    let r = async {
        for id in [private.id, a.root.id] {
            http.get(&format!("{base}/nodes/{id}"), None)
                .await?
                .problem(ProblemKind::NotFound)?;
            http.get(&format!("{base}/nodes/{id}/content"), None)
                .await?
                .problem(ProblemKind::NotFound)?;
        }
        http.get(&format!("{base}/content"), None)
            .await?
            .problem(ProblemKind::NotFound)
            .map_err(|e| fail!("/content of a folder link: {e}"))?;
        http.post(
            &format!("{base}/drops"),
            None,
            &api::DropCreateRequest {
                drop_envelope: ByteBuf::from(vec![0u8; 8]),
                total_length: 10,
                part_size: PART,
            },
        )
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("a drop through a read link: {e}"))?;
        Ok(())
    }
    .await;
    c.check(
        "a folder link reads nothing outside its subtree, and no endpoint its kind lacks (404)",
        "§11.11.5, §11.5",
        r,
    );
    let r = async {
        let list: api::LinkList = http.get("/v1/links", a.t()).await?.ok(200)?;
        let e = list
            .links
            .iter()
            .find(|e| e.link_id == fl.id)
            .ok_or_else(|| fail!("the link is not listed"))?;
        // One file was downloaded whole through the link above (§11.11.5 counts every start).
        ensure!(e.downloads == 1, "downloads {}, expected 1", e.downloads);
        ensure!(
            e.owner_entry == fl.params.owner_entry,
            "owner-entry differs"
        );
        let other: api::LinkList = http.get("/v1/links", fx.bob.t()).await?.ok(200)?;
        ensure!(
            other.links.iter().all(|e| e.link_id != fl.id),
            "another account lists the link"
        );
        Ok(())
    }
    .await;
    c.check(
        "the owner's link list holds the link with its download count; another account's does not",
        "§11.11.2, §11.11.5",
        r,
    );
    let r = async {
        http.post(
            &format!("{base}/unlock"),
            None,
            &api::LinkUnlockRequest {
                verifier: api::LinkVerifier::from_bytes([1u8; 32]),
            },
        )
        .await?
        .problem(ProblemKind::InvalidParameter)
        .map(drop)
    }
    .await;
    c.check(
        "unlock of a link without password is 400 invalid-parameter",
        "§11.11.4",
        r,
    );

    let r = download_limit(http, a, &file).await;
    c.check(
        "download limit: ranges past byte 0 uncounted, then 410 link-exhausted once used up",
        "§11.11.5",
        r,
    );
    let r = password_and_rotation(http, fx, &public, &inner).await;
    c.check(
        "password link: locked resolve, 401 link-locked, 403 on a wrong verifier, token opens; rotation kills the old link and its tokens",
        "§11.11.3, §11.11.4, §11.11.7, §11.2.2",
        r,
    );
    let r = async {
        let now = client::now();
        let past = a.link_params(
            &public,
            &LinkOptions {
                expires_at: Some(now - 10),
                ..LinkOptions::default()
            },
        )?;
        http.post(
            "/v1/links",
            a.t(),
            &api::LinkCreateRequest { link: past.params },
        )
        .await?
        .problem(ProblemKind::InvalidParameter)
        .map_err(|e| fail!("an expiry in the past: {e}"))?;
        let at = now + 4;
        let l = a
            .make_link(
                http,
                &file,
                &LinkOptions {
                    expires_at: Some(at),
                    ..LinkOptions::default()
                },
            )
            .await?;
        let res = resolve(http, &l, None).await?;
        ensure!(
            res.expires_at == Some(at),
            "expires-at {:?}, expected {at}",
            res.expires_at
        );
        while client::now() <= at + 1 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        http.get(&l.path(), None)
            .await?
            .problem(ProblemKind::LinkExpired)?;
        http.get(&format!("{}/content", l.path()), None)
            .await?
            .problem(ProblemKind::LinkExpired)?;
        let list: api::LinkList = http.get("/v1/links", a.t()).await?.ok(200)?;
        ensure!(
            list.links.iter().any(|e| e.link_id == l.id),
            "an expired link is no longer listed"
        );
        Ok(())
    }
    .await;
    c.check(
        "expiry: a past expiry is 400; after expires-at the link is 410 link-expired, still listed",
        "§11.11.1, §11.11.2, §11.11.3",
        r,
    );
    let r = async {
        let path = format!("/v1/links/{}", fl.id);
        http.bare(Method::DELETE, &path, fx.bob.t())
            .await?
            .problem(ProblemKind::NotFound)
            .map_err(|e| fail!("revocation by another account: {e}"))?;
        http.bare(Method::DELETE, &path, a.t())
            .await?
            .status_is(204)?;
        http.get(&base, None)
            .await?
            .problem(ProblemKind::NotFound)?;
        http.get(&format!("{base}/nodes/{}", inner.id), None)
            .await?
            .problem(ProblemKind::NotFound)?;
        http.get(&format!("{base}/nodes/{}/content", file.id), None)
            .await?
            .problem(ProblemKind::NotFound)?;
        http.bare(Method::DELETE, &path, a.t())
            .await?
            .problem(ProblemKind::NotFound)
            .map(drop)
    }
    .await;
    c.check(
        "revoke: another account 404; the owner 204, then the link is 404 everywhere",
        "§11.11.7",
        r,
    );
    let r = drops(http, fx, &public).await;
    c.check(
        "drop link: anonymous upload (parts, finalize 204), reads nothing; the owner lists, downloads and deletes the drop",
        "§11.11.6, §11.11.2",
        r,
    );
    let r = async {
        let l = a
            .make_link(
                http,
                &public,
                &LinkOptions {
                    upload_only: true,
                    max_downloads: Some(1),
                    ..LinkOptions::default()
                },
            )
            .await?;
        let opened = open_drop_link(http, &l).await?;
        let id = drop_once(http, &l, &opened, b"first").await?;
        http.get(&l.path(), None)
            .await?
            .problem(ProblemKind::LinkExhausted)
            .map_err(|e| fail!("resolve after the last accepted drop: {e}"))?;
        let st = new_drop(http, &l, &opened, b"second").await?;
        st.0.problem(ProblemKind::LinkExhausted)
            .map_err(|e| fail!("a drop after the last accepted one: {e}"))?;
        http.bare(Method::DELETE, &format!("/v1/drops/{id}"), a.t())
            .await?
            .status_is(204)
    }
    .await;
    c.check(
        "a drop link's limit counts accepted drops (then 410 link-exhausted)",
        "§11.11.6, §10.8",
        r,
    );
    Ok(())
}

async fn download_limit(http: &Http, a: &User, file: &Node) -> R<()> {
    let l = a
        .make_link(
            http,
            file,
            &LinkOptions {
                max_downloads: Some(2),
                ..LinkOptions::default()
            },
        )
        .await?;
    let res = resolve(http, &l, None).await?;
    ensure!(res.kind == LinkKind::File, "kind {:?}", res.kind);
    ensure!(
        res.downloads_remaining == Some(2),
        "downloads-remaining {:?}",
        res.downloads_remaining
    );
    let content = format!("{}/content", l.path());
    for _ in 0..3 {
        http.get_h(&content, None, &[("range", "bytes=10-20")])
            .await?
            .status_is(206)
            .map_err(|e| fail!("a range past byte 0: {e}"))?;
    }
    let r = http.bare(Method::HEAD, &content, None).await?;
    r.status_is(200).map_err(|e| fail!("HEAD: {e}"))?;
    http.get(&content, None).await?.status_is(200)?;
    let res = resolve(http, &l, None).await?;
    ensure!(
        res.downloads_remaining == Some(1),
        "downloads-remaining {:?} after one download (ranges past 0 and HEAD must not count)",
        res.downloads_remaining
    );
    http.get_h(&content, None, &[("range", "bytes=0-9")])
        .await?
        .status_is(206)?;
    http.get(&content, None)
        .await?
        .problem(ProblemKind::LinkExhausted)?;
    http.get(&l.path(), None)
        .await?
        .problem(ProblemKind::LinkExhausted)?;
    let list: api::LinkList = http.get("/v1/links", a.t()).await?.ok(200)?;
    let e = list
        .links
        .iter()
        .find(|e| e.link_id == l.id)
        .ok_or_else(|| fail!("an exhausted link is no longer listed"))?;
    ensure!(
        e.downloads == 2,
        "downloads {} in the list, expected 2",
        e.downloads
    );
    Ok(())
}

async fn password_and_rotation(http: &Http, fx: &Fixture, public: &Node, inner: &Node) -> R<()> {
    let a = &fx.alice;
    let l = a.make_link(http, public, &password_options()).await?;
    let locked = resolve(http, &l, None).await?;
    ensure!(
        locked.link_record.is_none() && locked.node.is_none(),
        "a locked resolve released the record or the node"
    );
    let pw = locked
        .password
        .clone()
        .ok_or_else(|| fail!("no password parameters"))?;
    let r = http
        .get(
            &l.path(),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await?;
    r.problem(ProblemKind::LinkLocked)
        .map_err(|e| fail!("an unknown link token: {e}"))?;
    let h = r.header("www-authenticate").unwrap_or_default();
    ensure!(
        h.contains("realm=\"coffer-link\""),
        "401 link-locked without WWW-Authenticate: Bearer realm=\"coffer-link\" (got {h:?})"
    );
    let node_path = format!("{}/nodes/{}", l.path(), inner.id);
    http.get(&node_path, None)
        .await?
        .problem(ProblemKind::LinkLocked)
        .map_err(|e| fail!("reading without a token: {e}"))?;
    http.get(&node_path, a.t())
        .await?
        .problem(ProblemKind::LinkLocked)
        .map_err(|e| fail!("a session token on a link endpoint: {e}"))?;
    let unlock = format!("{}/unlock", l.path());
    http.post(
        &unlock,
        None,
        &api::LinkUnlockRequest {
            verifier: api::LinkVerifier::from_bytes([0u8; 32]),
        },
    )
    .await?
    .problem(ProblemKind::LinkUnlockFailed)
    .map_err(|e| fail!("a wrong verifier: {e}"))?;
    let pw_key = pw
        .derive_key(LINK_PASSWORD)
        .ctx("derive the password key")?;
    let verifier = link::password_verifier(l.url.secret(), &pw_key);
    let good = api::LinkUnlockRequest {
        verifier: api::LinkVerifier::from_bytes(*verifier),
    };
    let unlocked: api::LinkUnlocked = http.post(&unlock, None, &good).await?.ok(200)?;
    ensure!(
        unlocked.expires_at > client::now(),
        "the token expires in the past"
    );
    let token = unlocked.access_token.to_b64();
    let open = resolve(http, &l, Some(&token)).await?;
    let rec = open
        .link_record
        .as_deref()
        .ok_or_else(|| fail!("no record with a valid token"))?;
    ensure!(
        rec.as_slice() == l.params.link_record.as_slice(),
        "the record differs"
    );
    link::open_link_with_key(&l.url, rec, Some(&pw_key), client::now())
        .ctx("the record does not open")?;
    http.get(&node_path, Some(&token)).await?.status_is(200)?;
    http.get("/v1/account", Some(&token))
        .await?
        .problem(ProblemKind::Unauthenticated)
        .map_err(|e| fail!("a link token as a session token: {e}"))?;

    // Rotation rules, then a rotation.
    let rotate = format!("/v1/links/{}/rotate", l.id);
    http.post(
        &rotate,
        a.t(),
        &api::LinkRotateRequest {
            link: l.params.clone(),
        },
    )
    .await?
    .problem(ProblemKind::InvalidParameter)
    .map_err(|e| fail!("a rotation keeping the link id: {e}"))?;
    let drop_kind = a.link_params(
        public,
        &LinkOptions {
            upload_only: true,
            ..LinkOptions::default()
        },
    )?;
    http.post(
        &rotate,
        a.t(),
        &api::LinkRotateRequest {
            link: drop_kind.params,
        },
    )
    .await?
    .problem(ProblemKind::InvalidParameter)
    .map_err(|e| fail!("a rotation changing the kind: {e}"))?;
    let new = a.link_params(public, &password_options())?;
    let created: api::LinkCreated = http
        .post(
            &rotate,
            a.t(),
            &api::LinkRotateRequest {
                link: new.params.clone(),
            },
        )
        .await?
        .ok(201)?;
    ensure!(
        created.link_id == new.id,
        "the rotation answered another link id"
    );
    http.get(&l.path(), Some(&token))
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("the old link after rotation: {e}"))?;
    http.get(&node_path, Some(&token))
        .await?
        .problem(ProblemKind::NotFound)?;
    let res = resolve(http, &new, None).await?;
    ensure!(res.link_record.is_none(), "the new link is not locked");
    http.get(&new.path(), Some(&token))
        .await?
        .problem(ProblemKind::LinkLocked)
        .map_err(|e| fail!("the old token on the new link: {e}"))?;
    http.bare(Method::DELETE, &format!("/v1/links/{}", new.id), a.t())
        .await?
        .status_is(204)
}

/// Resolves and opens a drop link.
async fn open_drop_link(http: &Http, l: &MadeLink) -> R<link::OpenedLink> {
    let res = resolve(http, l, None).await?;
    let rec = res
        .link_record
        .as_deref()
        .ok_or_else(|| fail!("a drop link without record"))?;
    link::open_link(&l.url, rec, None, client::now()).ctx("open the drop link")
}

/// Starts a drop through `l`: the create response and the drop's key, ciphertext and envelope.
async fn new_drop(
    http: &Http,
    l: &MadeLink,
    opened: &link::OpenedLink,
    plain: &[u8],
) -> R<(
    super::http::Resp,
    coffer_core::primitives::SecretKey,
    Vec<u8>,
    Vec<u8>,
)> {
    let d = link::create_drop(&mut rand_core::OsRng, opened, b"conformance").ctx("create drop")?;
    let ct = coffer_core::content::encrypt(&d.node_key, plain, &mut rand_core::OsRng);
    let r = http
        .post(
            &format!("{}/drops", l.path()),
            None,
            &api::DropCreateRequest {
                drop_envelope: ByteBuf::from(d.envelope.clone()),
                total_length: ct.len() as u64,
                part_size: PART,
            },
        )
        .await?;
    Ok((r, d.node_key, ct, d.envelope))
}

/// Uploads one whole drop through `l`; returns its id.
async fn drop_once(
    http: &Http,
    l: &MadeLink,
    opened: &link::OpenedLink,
    plain: &[u8],
) -> R<coffer_core::ids::UploadId> {
    let (r, _, ct, _) = new_drop(http, l, opened, plain).await?;
    let st: api::UploadStatus = r.ok(201)?;
    let up = format!("{}/uploads/{}", l.path(), st.upload_id);
    http.put_part(&format!("{up}/parts/0"), None, ct)
        .await?
        .ok::<api::PartStored>(200)?;
    http.bare(Method::POST, &format!("{up}/finalize"), None)
        .await?
        .status_is(204)?;
    Ok(st.upload_id)
}

async fn drops(http: &Http, fx: &Fixture, public: &Node) -> R<()> {
    let a = &fx.alice;
    let l = a
        .make_link(
            http,
            public,
            &LinkOptions {
                upload_only: true,
                ..LinkOptions::default()
            },
        )
        .await?;
    let res = resolve(http, &l, None).await?;
    ensure!(res.kind == LinkKind::Drop, "kind {:?}", res.kind);
    ensure!(res.node.is_none(), "a drop link released the folder's node");
    let plain = client::random_bytes(5000);
    let opened = open_drop_link(http, &l).await?;
    let (r, key, ct, envelope) = new_drop(http, &l, &opened, &plain).await?;
    let st: api::UploadStatus = r.ok(201)?;
    ensure!(
        st.node_id.is_none() && st.content_revision == 0,
        "a drop's UploadStatus names a node or a content revision"
    );
    let up = format!("{}/uploads/{}", l.path(), st.upload_id);
    http.get(&format!("{}/nodes/{}", l.path(), public.id), None)
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("reading through a drop link: {e}"))?;
    http.get(&format!("/v1/uploads/{}", st.upload_id), a.t())
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("a drop's upload id outside its link: {e}"))?;
    http.bare(Method::POST, &format!("{up}/finalize"), None)
        .await?
        .problem(ProblemKind::UploadIncomplete)?;
    http.put_part(&format!("{up}/parts/0"), None, ct.clone())
        .await?
        .ok::<api::PartStored>(200)?;
    let s: api::UploadStatus = http.get(&up, None).await?.ok(200)?;
    ensure!(
        s.present.to_vec() == vec![1],
        "present {:?}",
        s.present.to_vec()
    );
    http.bare(Method::POST, &format!("{up}/finalize"), None)
        .await?
        .status_is(204)?;
    let list: api::DropList = http.get("/v1/drops", a.t()).await?.ok(200)?;
    let e = list
        .drops
        .iter()
        .find(|d| d.drop_id == st.upload_id)
        .ok_or_else(|| fail!("the drop is not listed to the owner"))?;
    ensure!(
        e.drop_envelope.as_slice() == envelope.as_slice(),
        "the envelope differs"
    );
    let got = http
        .get(&format!("/v1/drops/{}/content", st.upload_id), a.t())
        .await?;
    got.status_is(200)?;
    ensure!(
        coffer_core::content::decrypt(&key, &got.body).ctx("decrypt the drop")? == plain,
        "the drop's content differs"
    );
    let other: api::DropList = http.get("/v1/drops", fx.bob.t()).await?.ok(200)?;
    ensure!(
        other.drops.iter().all(|d| d.drop_id != st.upload_id),
        "another account lists the drop"
    );
    http.get(&format!("/v1/drops/{}/content", st.upload_id), fx.bob.t())
        .await?
        .problem(ProblemKind::NotFound)?;
    http.bare(
        Method::DELETE,
        &format!("/v1/drops/{}", st.upload_id),
        a.t(),
    )
    .await?
    .status_is(204)?;
    http.get(&format!("/v1/drops/{}/content", st.upload_id), a.t())
        .await?
        .problem(ProblemKind::NotFound)?;
    http.bare(Method::DELETE, &format!("/v1/links/{}", l.id), a.t())
        .await?
        .status_is(204)
}
