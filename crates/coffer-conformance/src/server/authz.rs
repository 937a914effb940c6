//! Authorization denials (spec §11.5, §11.3 "404 instead of 403"): every endpoint touching
//! another account's node, upload, share, link or session answers a caller without a session
//! `401`, and another account `404` exactly like a resource that does not exist; nothing changes.

use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::{b64url_encode, ByteBuf};
use coffer_core::ids::NodeId;
use reqwest::Method;

use super::client::{self, PART};
use super::http::{Request, Resp, R};
use super::{Abort, Ctx, Fixture, READ};
use crate::{ensure, fail};

/// One request against a resource, with `{id}` standing for the resource's id.
struct Probe {
    method: Method,
    template: String,
    real: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
}

impl Probe {
    fn new(method: Method, template: &str, real: impl ToString) -> Probe {
        Probe {
            method,
            template: template.to_owned(),
            real: real.to_string(),
            content_type: None,
            body: None,
        }
    }

    fn cbor<B: api::Body>(mut self, b: &B) -> Probe {
        self.content_type = Some(api::CBOR_CONTENT_TYPE);
        self.body = Some(b.to_bytes());
        self
    }

    fn octets(mut self, b: Vec<u8>) -> Probe {
        self.content_type = Some(api::OCTET_STREAM_CONTENT_TYPE);
        self.body = Some(b);
        self
    }

    fn path(&self, id: &str) -> String {
        self.template.replace("{id}", id)
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    async fn send(&self, fx: &Fixture, id: &str, token: Option<&str>) -> R<Resp> {
        let path = self.path(id);
        let mut r = Request::new(self.method.clone(), &path, token);
        if let Some(b) = &self.body {
            r = r.body(self.content_type, b.clone());
        }
        fx.http.send(r).await
    }
}

fn random_id() -> String {
    NodeId::generate(&mut rand_core::OsRng).to_string()
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    let a = &fx.alice;
    let r = async {
        let folder = a.mkdir(http, &a.root, "private").await?;
        let file = a
            .upload_file(http, &folder, "secret.txt", b"secret")
            .await?;
        let shared = a.mkdir(http, &a.root, "shared-with-carol").await?;
        let (sid, _) = a.share(http, &shared, &[(&fx.carol, READ)]).await?;
        let (pending, pct) = a.file_record(&folder, "pending", b"pending upload")?;
        let up = a
            .upload_create(http, &pending, folder.id, pct.len() as u64)
            .await?;
        let link = a
            .make_link(http, &folder, &coffer_core::link::LinkOptions::default())
            .await?;
        Ok((folder, file, sid, pending, pct, up.upload_id, link))
    }
    .await;
    let (folder, file, sid, pending, pct, up, link) = c.need(
        "set up the owner's folder, file, share, unfinished upload and link",
        "§11.8, §11.9, §11.10, §11.11",
        r,
    )?;
    let renamed = c.need("build a rename", "§11.8", a.renamed(&folder, "renamed"))?;
    let child = c.need(
        "build a child record",
        "§11.8",
        a.folder_record(&folder, "child"),
    )?;

    let probes = vec![
        Probe::new(Method::GET, "/v1/nodes/{id}", folder.id),
        Probe::new(Method::GET, "/v1/nodes/{id}/children", folder.id),
        Probe::new(Method::GET, "/v1/nodes/{id}/content", file.id),
        Probe::new(Method::HEAD, "/v1/nodes/{id}/content", file.id),
        Probe::new(Method::PUT, "/v1/nodes/{id}", folder.id).cbor(&api::NodeUpdateRequest {
            expected_revision: folder.revision,
            signed_node: ByteBuf::from(renamed.signed.clone()),
        }),
        Probe::new(Method::DELETE, "/v1/nodes/{id}", file.id).cbor(&api::NodeDeleteRequest {
            expected_revision: file.revision,
        }),
        Probe::new(Method::GET, "/v1/uploads/{id}", up),
        Probe::new(Method::PUT, "/v1/uploads/{id}/parts/0", up).octets(pct.clone()),
        Probe::new(Method::POST, "/v1/uploads/{id}/finalize", up).cbor(
            &api::UploadFinalizeRequest {
                expected_revision: None,
                signed_node: ByteBuf::from(pending.signed.clone()),
            },
        ),
        Probe::new(Method::DELETE, "/v1/uploads/{id}", up),
        Probe::new(Method::GET, "/v1/shares/{id}", sid),
        Probe::new(Method::GET, "/v1/shares/{id}/grants/mine", sid),
        Probe::new(Method::POST, "/v1/shares/{id}/leave", sid),
        Probe::new(Method::DELETE, "/v1/shares/{id}", sid).cbor(&api::ShareDeleteRequest {
            expected_revision: 0,
            node_records: vec![],
        }),
        Probe::new(Method::DELETE, "/v1/links/{id}", link.id),
        Probe::new(
            Method::DELETE,
            "/v1/sessions/{id}",
            b64url_encode(&a.session_id.0),
        ),
    ];
    for p in &probes {
        let r = async {
            let r = p.send(fx, &p.real, None).await?;
            if p.method == Method::HEAD {
                // A HEAD response has no body to hold the problem document.
                r.status_is(401)?;
            } else {
                r.problem(ProblemKind::Unauthenticated)?;
            }
            let h = r.header("www-authenticate").unwrap_or_default();
            ensure!(
                h.starts_with("Bearer"),
                "401 without a Bearer WWW-Authenticate challenge"
            );
            Ok(())
        }
        .await;
        c.check(
            &format!("{}: no session is 401 unauthenticated", p.label()),
            "§11.2.1, §11.4.1",
            r,
        );
        let r = async {
            let theirs = p.send(fx, &p.real, fx.bob.t()).await?;
            let missing = p.send(fx, &random_id(), fx.bob.t()).await?;
            if p.method == Method::HEAD {
                theirs.status_is(404)?;
                missing.status_is(404)?;
                return Ok(());
            }
            let pt = theirs.problem(ProblemKind::NotFound)?;
            let pm = missing
                .problem(ProblemKind::NotFound)
                .map_err(|e| fail!("a resource that does not exist: {e}"))?;
            ensure!(
                pt == pm,
                "the 404 for another account's resource differs from the 404 for none: {:?} vs {:?}",
                pt.detail,
                pm.detail
            );
            Ok(())
        }
        .await;
        c.check(
            &format!(
                "{}: another account gets the 404 of a missing resource",
                p.label()
            ),
            "§11.3, §11.5",
            r,
        );
    }
    let r = async {
        let n = http
            .post(
                "/v1/nodes",
                fx.bob.t(),
                &api::NodeCreateRequest {
                    signed_node: ByteBuf::from(child.signed.clone()),
                },
            )
            .await?;
        n.problem(ProblemKind::NotFound)
            .map_err(|e| fail!("creating a node in another account's folder: {e}"))?;
        let u = http
            .post(
                "/v1/uploads",
                fx.bob.t(),
                &api::UploadCreateRequest {
                    node_id: NodeId::generate(&mut rand_core::OsRng),
                    parent_id: folder.id,
                    content_revision: 1,
                    total_length: 10,
                    part_size: PART,
                },
            )
            .await?;
        u.problem(ProblemKind::NotFound)
            .map_err(|e| fail!("uploading into another account's folder: {e}"))?;
        let l = http
            .post(
                &format!("/v1/links/{}/rotate", link.id),
                fx.bob.t(),
                &api::LinkRotateRequest {
                    link: a.link_params(&folder, &Default::default())?.params,
                },
            )
            .await?;
        l.problem(ProblemKind::NotFound)
            .map_err(|e| fail!("rotating another account's link: {e}"))?;
        let chain: api::IdentityChain = http
            .get(&format!("/v1/identities/{}", a.account_id), None)
            .await?
            .ok(200)?;
        let append = api::IdentityAppendRequest {
            expected_generation: 0,
            signed_identity: chain
                .generations
                .first()
                .cloned()
                .ok_or_else(|| fail!("an empty identity chain"))?,
        };
        http.cbor(
            Method::PUT,
            &format!("/v1/identities/{}", a.account_id),
            fx.bob.t(),
            &append,
        )
        .await?
        .problem(ProblemKind::Forbidden)
        .map_err(|e| fail!("appending to another account's identity chain: {e}"))?;
        Ok(())
    }
    .await;
    c.check(
        "creating nodes, uploads and link rotations in another account's tree is 404; appending to its identity chain 403",
        "§11.5, §11.7, §11.8, §11.9.2",
        r,
    );
    let r = async {
        ensure!(
            a.revision_of(http, folder.id).await? == folder.revision,
            "the folder's revision changed"
        );
        ensure!(
            a.download(http, &file).await? == b"secret",
            "the file changed"
        );
        let s: api::UploadStatus = http
            .get(&format!("/v1/uploads/{up}"), a.t())
            .await?
            .ok(200)?;
        ensure!(
            s.present.to_vec() == vec![0],
            "a part was stored by another account"
        );
        let sh: api::ShareResponse = http
            .get(&format!("/v1/shares/{sid}"), a.t())
            .await?
            .ok(200)?;
        ensure!(sh.revision == 0, "the share changed");
        http.get(&link.path(), None).await?.status_is(200)?;
        http.get("/v1/account", a.t()).await?.status_is(200)?;
        let kids = super::content::children(http, a, folder.id).await?;
        ensure!(
            kids.iter().all(|k| client::record_of(k)
                .map(|r| r.node_id != child.id)
                .unwrap_or(true)),
            "another account created a node in the folder"
        );
        Ok(())
    }
    .await;
    c.check(
        "after all denials the owner's resources are unchanged",
        "§11.4.1",
        r,
    );
    Ok(())
}
