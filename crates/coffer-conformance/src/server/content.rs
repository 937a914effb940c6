//! Nodes and content (spec §11.8, §11.9): create, read, rename with optimistic concurrency,
//! resumable uploads (parts in any order, retried parts, nothing visible before finalize, a bad
//! finalize leaves nothing), download with ranges, abort, delete.

use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::NodeId;
use reqwest::Method;

use super::client::{self, Node, User, PART};
use super::http::{Http, R};
use super::{Abort, Ctx, Fixture};
use crate::{ensure, fail};

/// Checks that `id` is not visible to `user`: node and content `404`, not among `parent`'s
/// children.
async fn invisible(http: &Http, user: &User, id: NodeId, parent: NodeId) -> R<()> {
    http.get(&format!("/v1/nodes/{id}"), user.t())
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("the node: {e}"))?;
    http.get(&format!("/v1/nodes/{id}/content"), user.t())
        .await?
        .problem(ProblemKind::NotFound)
        .map_err(|e| fail!("its content: {e}"))?;
    let kids = children(http, user, parent).await?;
    for k in kids {
        let rec = client::record_of(&k)?;
        ensure!(
            rec.node_id != id,
            "it is listed among the parent's children"
        );
    }
    Ok(())
}

/// Every child record of a folder (all pages).
pub async fn children(http: &Http, user: &User, folder: NodeId) -> R<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("/v1/nodes/{folder}/children?cursor={c}"),
            None => format!("/v1/nodes/{folder}/children"),
        };
        let l: api::NodeList = http.get(&path, user.t()).await?.ok(200)?;
        out.extend(l.records.iter().map(|r| r.to_vec()));
        match l.next_cursor {
            Some(c) => cursor = Some(coffer_core::encoding::b64url_encode(&c)),
            None => return Ok(out),
        }
    }
    Err(fail!("children: more than 1000 pages"))
}

fn bits(s: &api::UploadStatus) -> Vec<u8> {
    s.present.to_vec()
}

/// The `present` bit field of upload `up`, read as `a` (spec §11.9.4).
async fn present(http: &Http, a: &User, up: coffer_core::ids::UploadId) -> R<Vec<u8>> {
    let s: api::UploadStatus = http
        .get(&format!("/v1/uploads/{up}"), a.t())
        .await?
        .ok(200)?;
    Ok(bits(&s))
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    let a = &fx.alice;

    let mut dir = c.need(
        "create a folder (201 NodeWritten)",
        "§11.8",
        a.mkdir(http, &a.root, "content").await,
    )?;
    let r = async {
        let r = http.get(&format!("/v1/nodes/{}", dir.id), a.t()).await?;
        let etag = r.header("etag").ok_or_else(|| fail!("no ETag"))?;
        let n: api::NodeResponse = r.ok(200)?;
        ensure!(
            n.signed_node.as_slice() == dir.signed.as_slice(),
            "the record is not returned byte for byte"
        );
        ensure!(
            client::etag_revision(&r)? == dir.revision,
            "ETag {etag} does not carry the node revision {}",
            dir.revision
        );
        let r = http
            .get_h(
                &format!("/v1/nodes/{}", dir.id),
                a.t(),
                &[("if-none-match", &etag)],
            )
            .await?;
        r.status_is(304)?;
        let kids = children(http, a, a.root.id).await?;
        ensure!(
            kids.contains(&dir.signed),
            "the folder is not among the root's children"
        );
        Ok(())
    }
    .await;
    c.check(
        "read a node: bytes as written, ETag \"n<revision>\", If-None-Match 304, listed as a child",
        "§11.8",
        r,
    );
    let r = async {
        let renamed = a.renamed(&dir, "content-renamed")?;
        let stale = api::NodeUpdateRequest {
            expected_revision: dir.revision + 5,
            signed_node: ByteBuf::from(renamed.signed.clone()),
        };
        let p = http
            .cbor(Method::PUT, &format!("/v1/nodes/{}", dir.id), a.t(), &stale)
            .await?
            .problem(ProblemKind::RevisionMismatch)?;
        ensure!(
            p.current_revision == Some(dir.revision),
            "current-revision {:?}, expected {}",
            p.current_revision,
            dir.revision
        );
        let ok = api::NodeUpdateRequest {
            expected_revision: dir.revision,
            signed_node: ByteBuf::from(renamed.signed.clone()),
        };
        let w: api::NodeWritten = http
            .cbor(Method::PUT, &format!("/v1/nodes/{}", dir.id), a.t(), &ok)
            .await?
            .ok(200)?;
        ensure!(
            w.revision == dir.revision + 1,
            "revision {} after an update of {}",
            w.revision,
            dir.revision
        );
        // A replay of the applied update answers the same.
        let again: api::NodeWritten = http
            .cbor(Method::PUT, &format!("/v1/nodes/{}", dir.id), a.t(), &ok)
            .await?
            .ok(200)?;
        ensure!(again == w, "the replay answered differently");
        Ok(Node {
            revision: w.revision,
            ..renamed
        })
    }
    .await;
    if let Some(n) = c.record(
        "update a node: stale revision 409 with current-revision, then 200, replay 200",
        "§11.4.3, §11.4.4, §11.8",
        r,
    ) {
        dir = n;
    }

    let r = async {
        let f = a
            .upload_file(http, &dir, "small.txt", b"hello, conformance")
            .await?;
        ensure!(
            a.download(http, &f).await? == b"hello, conformance",
            "content differs"
        );
        Ok(())
    }
    .await;
    c.check("upload a one-part file and download it", "§11.9", r);

    // A three-part resumable upload.
    let plain = client::random_bytes(2 * PART as usize + 5000);
    let (node, ct) = c.need(
        "build a three-part file",
        "§11.9.1",
        a.file_record(&dir, "big.bin", &plain),
    )?;
    let len = ct.len() as u64;
    let r = async {
        let st = a.upload_create(http, &node, dir.id, len).await?;
        ensure!(
            st.part_count == 3,
            "part-count {}, expected 3",
            st.part_count
        );
        ensure!(
            bits(&st) == vec![0],
            "present {:?} for a new upload",
            bits(&st)
        );
        ensure!(
            st.node_id == Some(node.id) && st.content_revision == 1,
            "UploadStatus names another node or revision"
        );
        let again: api::UploadStatus = http
            .post(
                "/v1/uploads",
                a.t(),
                &api::UploadCreateRequest {
                    node_id: node.id,
                    parent_id: dir.id,
                    content_revision: 1,
                    total_length: len,
                    part_size: PART,
                },
            )
            .await?
            .ok(200)?;
        ensure!(
            again.upload_id == st.upload_id,
            "a retried create made another upload"
        );
        Ok(st)
    }
    .await;
    let st = c.need(
        "create an upload (201, three parts, none present); an identical create returns it (200)",
        "§11.9.2",
        r,
    )?;
    let up = st.upload_id;
    let r = async {
        a.put_part(http, up, 2, &ct).await?;
        a.put_part(http, up, 0, &ct).await?;
        let p = present(http, a, up).await?;
        ensure!(p == vec![0b101], "present {:?}, expected [5]", p);
        Ok(())
    }
    .await;
    c.need(
        "parts out of order (2, then 0); status shows them",
        "§11.9.3, §11.9.4",
        r,
    )?;
    let r = async {
        http.put_part(
            &format!("/v1/uploads/{up}/parts/1"),
            a.t(),
            vec![7; PART as usize + 1],
        )
        .await?
        .problem(ProblemKind::WrongLength)
        .map_err(|e| fail!("a part one byte long: {e}"))?;
        http.put_part(&format!("/v1/uploads/{up}/parts/2"), a.t(), vec![7; 10])
            .await?
            .problem(ProblemKind::WrongLength)
            .map_err(|e| fail!("a short last part: {e}"))?;
        http.put_part(&format!("/v1/uploads/{up}/parts/3"), a.t(), vec![7; 10])
            .await?
            .problem(ProblemKind::InvalidParameter)
            .map_err(|e| fail!("an index past the end: {e}"))?;
        let p = present(http, a, up).await?;
        ensure!(
            p == vec![0b101],
            "a refused part changed the status: {:?}",
            p
        );
        Ok(())
    }
    .await;
    c.check(
        "wrong part lengths are 400 wrong-length, an index past the end 400 invalid-parameter; nothing stored",
        "§11.9.3",
        r,
    );
    let r = async {
        a.finalize(http, up, &node.signed)
            .await?
            .problem(ProblemKind::UploadIncomplete)?;
        invisible(http, a, node.id, dir.id).await
    }
    .await;
    c.check(
        "finalize with a part missing is 409 upload-incomplete; nothing is visible",
        "§11.9.5",
        r,
    );
    let r = async {
        a.put_part(http, up, 1, &ct).await?;
        a.put_part(http, up, 1, &ct).await?;
        let p = present(http, a, up).await?;
        ensure!(p == vec![0b111], "present {:?}, expected [7]", p);
        invisible(http, a, node.id, dir.id).await
    }
    .await;
    c.need(
        "a retried part is stored again (200); complete but unfinalized content is invisible",
        "§11.9.3, §11.9",
        r,
    )?;
    let r = async {
        // A record of another node, and one naming another length.
        let (other, _) = a.file_record(&dir, "other", &plain)?;
        a.finalize(http, up, &other.signed)
            .await?
            .problem(ProblemKind::InvalidRecord)
            .map_err(|e| fail!("a record of another node: {e}"))?;
        let same_id = coffer_core::tree::NewNode {
            node_id: node.id,
            node_key: node.key.clone(),
        };
        let (short, _) = a.file_record_as(same_id, &dir, "short", b"short")?;
        a.finalize(http, up, &short.signed)
            .await?
            .problem(ProblemKind::InvalidRecord)
            .map_err(|e| fail!("a record naming another length: {e}"))?;
        invisible(http, a, node.id, dir.id).await?;
        invisible(http, a, other.id, dir.id).await
    }
    .await;
    c.check(
        "a finalize with a record that does not match the upload is 422 and leaves nothing",
        "§11.9.5, §11.4.1",
        r,
    );
    let r = async {
        let w: api::NodeWritten = a.finalize(http, up, &node.signed).await?.ok(201)?;
        ensure!(w.node_id == node.id, "NodeWritten names another node");
        let again: api::NodeWritten = a.finalize(http, up, &node.signed).await?.ok(201)?;
        ensure!(again == w, "the replayed finalize answered differently");
        ensure!(
            a.download(http, &node).await? == plain,
            "the content differs"
        );
        Ok(())
    }
    .await;
    c.need(
        "finalize makes record and content visible together (201); a replay answers the same",
        "§11.9.5, §11.4.4",
        r,
    )?;
    let r = async {
        http.put_part(
            &format!("/v1/uploads/{up}/parts/0"),
            a.t(),
            ct[..PART as usize].to_vec(),
        )
        .await?
        .problem(ProblemKind::NotFound)
        .map(drop)
    }
    .await;
    c.check("a part of a finalized upload is 404", "§11.9.3", r);

    let path = format!("/v1/nodes/{}/content", node.id);
    let r = ranges(http, a, &path, &ct).await;
    c.check(
        "download: 200 with ETag \"c1\" and Accept-Ranges; ranges 206 with Content-Range; HEAD; If-Range; If-None-Match 304",
        "§11.9.7",
        r,
    );
    let r = async {
        for bad in [
            "bytes=5-2".to_owned(),
            format!("bytes={len}-"),
            format!("bytes={}-{}", len + 10, len + 20),
            "bytes=0-1,3-4".to_owned(),
            "items=0-1".to_owned(),
            "bytes=-0".to_owned(),
            "bytes=abc".to_owned(),
        ] {
            let r = http.get_h(&path, a.t(), &[("range", &bad)]).await?;
            r.problem(ProblemKind::RangeNotSatisfiable)
                .map_err(|e| fail!("Range: {bad}: {e}"))?;
            let cr = r.header("content-range");
            ensure!(
                cr.as_deref() == Some(&format!("bytes */{len}")),
                "Range: {bad}: Content-Range {cr:?}, expected bytes */{len}"
            );
        }
        Ok(())
    }
    .await;
    c.check(
        "unsatisfiable ranges are 416 with Content-Range: bytes */<length>",
        "§11.9.7",
        r,
    );
    let r = async {
        http.get(&format!("/v1/nodes/{}/content", dir.id), a.t())
            .await?
            .problem(ProblemKind::NotFound)
            .map(drop)
    }
    .await;
    c.check("a folder has no content (404)", "§11.9.7", r);

    let r = async {
        let bad_shape =
            |part_size: u64, total: u64, rev: u64, id: NodeId| api::UploadCreateRequest {
                node_id: id,
                parent_id: dir.id,
                content_revision: rev,
                total_length: total,
                part_size,
            };
        let fresh = NodeId::generate(&mut rand_core::OsRng);
        for (what, req) in [
            (
                "part size not a multiple of the stride",
                bad_shape(PART + 1, 10, 1, fresh),
            ),
            (
                "part size below the minimum",
                bad_shape(api::CONTENT_CHUNK_STRIDE, 10, 1, fresh),
            ),
            ("total length 0", bad_shape(PART, 0, 1, fresh)),
            ("content revision 0", bad_shape(PART, 10, 0, fresh)),
            (
                "more than 10 000 parts",
                bad_shape(PART, PART * 10_001, 1, fresh),
            ),
        ] {
            let r = http.post("/v1/uploads", a.t(), &req).await?;
            ensure!(
                r.status == 400 || (r.status == 413 && what.starts_with("more")),
                "{what}: expected 400 invalid-parameter, got {}",
                r.describe()
            );
            r.any_problem().map_err(|e| fail!("{what}: {e}"))?;
        }
        // A new content revision must exceed the current one.
        http.post("/v1/uploads", a.t(), &bad_shape(PART, 10, 1, node.id))
            .await?
            .problem(ProblemKind::RevisionMismatch)
            .map_err(|e| fail!("content revision not above the current one: {e}"))?;
        Ok(())
    }
    .await;
    c.check(
        "upload shapes outside §11.9.1 are 400; a content revision not above the current is 409",
        "§11.9.1, §11.9.2",
        r,
    );
    let r = async {
        let (f, fct) = a.file_record(&dir, "aborted", b"to be aborted")?;
        let st = a.upload_create(http, &f, dir.id, fct.len() as u64).await?;
        a.put_part(http, st.upload_id, 0, &fct).await?;
        http.bare(
            Method::DELETE,
            &format!("/v1/uploads/{}", st.upload_id),
            a.t(),
        )
        .await?
        .status_is(204)?;
        http.get(&format!("/v1/uploads/{}", st.upload_id), a.t())
            .await?
            .problem(ProblemKind::NotFound)?;
        http.put_part(
            &format!("/v1/uploads/{}/parts/0", st.upload_id),
            a.t(),
            fct.clone(),
        )
        .await?
        .problem(ProblemKind::NotFound)?;
        a.finalize(http, st.upload_id, &f.signed)
            .await?
            .problem(ProblemKind::NotFound)?;
        invisible(http, a, f.id, dir.id).await
    }
    .await;
    c.check(
        "an aborted upload (204) is gone: status, parts and finalize 404, nothing visible",
        "§11.9.6",
        r,
    );
    let r = async {
        let rev = a.revision_of(http, node.id).await?;
        let path = format!("/v1/nodes/{}", node.id);
        a.delete_with(
            http,
            &path,
            &api::NodeDeleteRequest {
                expected_revision: rev + 3,
            },
        )
        .await?
        .problem(ProblemKind::RevisionMismatch)?;
        let d: api::NodeDeleted = a
            .delete_with(
                http,
                &path,
                &api::NodeDeleteRequest {
                    expected_revision: rev,
                },
            )
            .await?
            .ok(200)?;
        ensure!(
            d.node_id == node.id && d.deleted_nodes == 1,
            "NodeDeleted {:?}",
            (d.node_id, d.deleted_nodes)
        );
        invisible(http, a, node.id, dir.id).await?;
        a.delete_with(
            http,
            &path,
            &api::NodeDeleteRequest {
                expected_revision: rev,
            },
        )
        .await?
        .problem(ProblemKind::NotFound)
        .map(drop)
    }
    .await;
    c.check(
        "delete a file: stale revision 409, then 200; gone with its content; again 404",
        "§11.8, §11.4.4",
        r,
    );
    Ok(())
}

async fn ranges(http: &Http, a: &User, path: &str, ct: &[u8]) -> R<()> {
    let len = ct.len() as u64;
    let r = http.get(path, a.t()).await?;
    r.status_is(200)?;
    ensure!(
        r.body == ct,
        "the whole content differs from what was uploaded"
    );
    ensure!(
        r.header("content-type").as_deref() == Some(api::OCTET_STREAM_CONTENT_TYPE),
        "Content-Type {:?}",
        r.header("content-type")
    );
    ensure!(
        r.header("accept-ranges").as_deref() == Some("bytes"),
        "Accept-Ranges {:?}",
        r.header("accept-ranges")
    );
    let etag = r.header("etag");
    ensure!(
        etag.as_deref() == Some("\"c1\""),
        "ETag {etag:?}, expected \"c1\""
    );
    for (range, from, to) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (format!("bytes={}-", len - 1000), len - 1000, len - 1),
        ("bytes=-50".to_owned(), len - 50, len - 1),
        (
            format!("bytes={}-{}", len - 10, len + 1000),
            len - 10,
            len - 1,
        ),
        (
            format!("bytes={PART}-{}", PART + 65_551),
            PART,
            PART + 65_551,
        ),
    ] {
        let r = http.get_h(path, a.t(), &[("range", &range)]).await?;
        r.status_is(206).map_err(|e| fail!("Range: {range}: {e}"))?;
        let cr = r.header("content-range");
        let want = format!("bytes {from}-{to}/{len}");
        ensure!(
            cr.as_deref() == Some(&want),
            "Range: {range}: Content-Range {cr:?}, expected {want}"
        );
        ensure!(
            r.body == ct[from as usize..=to as usize],
            "Range: {range}: the bytes differ"
        );
    }
    let r = http
        .get_h(
            path,
            a.t(),
            &[("range", "bytes=0-9"), ("if-range", "\"c1\"")],
        )
        .await?;
    r.status_is(206)
        .map_err(|e| fail!("If-Range with the current ETag: {e}"))?;
    let r = http
        .get_h(
            path,
            a.t(),
            &[("range", "bytes=0-9"), ("if-range", "\"c99\"")],
        )
        .await?;
    r.status_is(200)
        .map_err(|e| fail!("If-Range with another ETag: {e}"))?;
    ensure!(
        r.body == ct,
        "If-Range with another ETag: not the whole content"
    );
    let r = http
        .get_h(path, a.t(), &[("if-none-match", "\"c1\"")])
        .await?;
    r.status_is(304)
        .map_err(|e| fail!("If-None-Match with the current ETag: {e}"))?;
    let r = http.bare(Method::HEAD, path, a.t()).await?;
    r.status_is(200).map_err(|e| fail!("HEAD: {e}"))?;
    ensure!(r.body.is_empty(), "HEAD returned a body");
    ensure!(
        r.header("content-length").as_deref() == Some(&len.to_string()),
        "HEAD: Content-Length {:?}, expected {len}",
        r.header("content-length")
    );
    Ok(())
}
