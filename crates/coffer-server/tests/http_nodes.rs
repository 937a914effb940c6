//! Nodes, uploads and downloads over HTTP (spec §11.8, §11.9): the normal paths, resumable and
//! idempotent uploads, atomic finalize, ranges, concurrency control.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api::{self, Body, ProblemKind};
use coffer_core::encoding::ByteBuf;
use coffer_core::link::{self, LinkOptions};
use common::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_rename_move_delete() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;

    // The root is served byte for byte.
    let r = http.get("/v1/root", alice.t()).await;
    let root: api::NodeResponse = r.ok(200);
    assert_eq!(root.signed_node.to_vec(), alice.root.signed);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    let a = alice.mkdir(&http, &alice.root, "a").await;
    let b = alice.mkdir(&http, &a, "b").await;
    let got: api::NodeResponse = http
        .get(&format!("/v1/nodes/{}", a.id), alice.t())
        .await
        .ok(200);
    assert_eq!(got.signed_node.to_vec(), a.signed);

    // Replaying the identical create succeeds again; another record under the same id is 409.
    let again: api::NodeWritten = http
        .post(
            "/v1/nodes",
            alice.t(),
            &api::NodeCreateRequest {
                signed_node: ByteBuf::from(a.signed.clone()),
            },
        )
        .await
        .ok(201);
    assert_eq!(again.revision, a.revision);
    let other = alice.renamed(&a, "a2");
    http.post(
        "/v1/nodes",
        alice.t(),
        &api::NodeCreateRequest {
            signed_node: ByteBuf::from(other.signed.clone()),
        },
    )
    .await
    .expect(ProblemKind::AlreadyExists);

    // Children: root lists a; a lists b; a file lists nothing.
    let kids = alice.children(&http, alice.root.id).await;
    assert_eq!(kids, vec![a.signed.clone()]);
    assert_eq!(alice.children(&http, a.id).await, vec![b.signed.clone()]);

    // Rename with the current revision; a stale revision is 409 with the current one.
    let a2 = alice.renamed(&a, "renamed");
    let w: api::NodeWritten = http
        .cbor(
            Method::PUT,
            &format!("/v1/nodes/{}", a.id),
            alice.t(),
            &api::NodeUpdateRequest {
                expected_revision: a.revision,
                signed_node: ByteBuf::from(a2.signed.clone()),
            },
        )
        .await
        .ok(200);
    assert_eq!(w.revision, a.revision + 1);
    let a3 = alice.renamed(&a2, "again");
    let p = http
        .cbor(
            Method::PUT,
            &format!("/v1/nodes/{}", a.id),
            alice.t(),
            &api::NodeUpdateRequest {
                expected_revision: a.revision,
                signed_node: ByteBuf::from(a3.signed.clone()),
            },
        )
        .await
        .expect(ProblemKind::RevisionMismatch);
    assert_eq!(p.current_revision, Some(w.revision));
    // The stored record is the renamed one, and the ETag names its revision.
    let r = http.get(&format!("/v1/nodes/{}", a.id), alice.t()).await;
    assert_eq!(etag_revision(&r), w.revision);
    let cur: api::NodeResponse = r.ok(200);
    assert_eq!(cur.signed_node.to_vec(), a2.signed);
    let etag = r.header("etag").unwrap();
    let r = http
        .get_h(
            &format!("/v1/nodes/{}", a.id),
            alice.t(),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 304);

    // A record for another node id is refused.
    let wrong = http
        .cbor(
            Method::PUT,
            &format!("/v1/nodes/{}", b.id),
            alice.t(),
            &api::NodeUpdateRequest {
                expected_revision: b.revision,
                signed_node: ByteBuf::from(a3.signed.clone()),
            },
        )
        .await;
    wrong.expect(ProblemKind::InvalidRecord);

    // The root cannot be deleted; a stale delete is 409; delete removes the subtree.
    http.cbor(
        Method::DELETE,
        &format!("/v1/nodes/{}", alice.root.id),
        alice.t(),
        &api::NodeDeleteRequest {
            expected_revision: alice.root.revision,
        },
    )
    .await
    .expect(ProblemKind::Forbidden);
    http.cbor(
        Method::DELETE,
        &format!("/v1/nodes/{}", a.id),
        alice.t(),
        &api::NodeDeleteRequest {
            expected_revision: a.revision,
        },
    )
    .await
    .expect(ProblemKind::RevisionMismatch);
    let d: api::NodeDeleted = http
        .cbor(
            Method::DELETE,
            &format!("/v1/nodes/{}", a.id),
            alice.t(),
            &api::NodeDeleteRequest {
                expected_revision: w.revision,
            },
        )
        .await
        .ok(200);
    assert_eq!(d.deleted_nodes, 2);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", b.id), alice.t()).await);
    assert!(alice.children(&http, alice.root.id).await.is_empty());
    // Deleting again is 404 (a retrying client treats it as success).
    assert_not_found(
        &http
            .cbor(
                Method::DELETE,
                &format!("/v1/nodes/{}", a.id),
                alice.t(),
                &api::NodeDeleteRequest {
                    expected_revision: w.revision,
                },
            )
            .await,
    );
    assert!(http.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_resume_finalize_download_ranges() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let docs = alice.mkdir(&http, &alice.root, "docs").await;

    // Three parts: two full, one short.
    let plaintext = random_bytes(2 * 1024 * 1024 + 5000);
    let (node, ct) = alice.file_record(&docs, "big.bin", &plaintext, 1);
    let total = ct.len() as u64;
    let st = alice.upload_create(&http, &node, docs.id, total).await;
    assert_eq!(st.part_count, 3);
    assert_eq!(st.present.to_vec(), vec![0]);
    assert_eq!(st.node_id, Some(node.id));
    let up = st.upload_id;
    let parts: Vec<Vec<u8>> = ct.chunks(PART as usize).map(<[u8]>::to_vec).collect();

    // Nothing is visible before finalize.
    assert_not_found(&http.get(&format!("/v1/nodes/{}", node.id), alice.t()).await);

    // Part 2, then part 0 twice (idempotent).
    for i in [2usize, 0, 0] {
        let s: api::PartStored = http
            .put_part(
                &format!("/v1/uploads/{up}/parts/{i}"),
                alice.t(),
                parts[i].clone(),
            )
            .await
            .ok(200);
        assert_eq!(s.part_index, i as u64);
    }
    let st: api::UploadStatus = http
        .get(&format!("/v1/uploads/{up}"), alice.t())
        .await
        .ok(200);
    assert_eq!(st.present.to_vec(), vec![0b101]);

    // A wrong length, an index past the end, no content type.
    http.put_part(
        &format!("/v1/uploads/{up}/parts/1"),
        alice.t(),
        parts[1][1..].to_vec(),
    )
    .await
    .expect(ProblemKind::WrongLength);
    http.put_part(
        &format!("/v1/uploads/{up}/parts/3"),
        alice.t(),
        parts[2].clone(),
    )
    .await
    .expect(ProblemKind::InvalidParameter);
    http.send(
        Method::PUT,
        &format!("/v1/uploads/{up}/parts/1"),
        alice.t(),
        Some("text/plain"),
        Some(parts[1].clone()),
        &[],
    )
    .await
    .expect(ProblemKind::UnsupportedMediaType);

    // Finalize with a part missing: 409, nothing visible.
    let fin = api::UploadFinalizeRequest {
        expected_revision: None,
        signed_node: ByteBuf::from(node.signed.clone()),
    };
    http.post(&format!("/v1/uploads/{up}/finalize"), alice.t(), &fin)
        .await
        .expect(ProblemKind::UploadIncomplete);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", node.id), alice.t()).await);

    http.put_part(
        &format!("/v1/uploads/{up}/parts/1"),
        alice.t(),
        parts[1].clone(),
    )
    .await
    .ok::<api::PartStored>(200);
    // A record naming another length is refused.
    let (other, _) = alice.file_record(&docs, "x", b"short", 1);
    let bad = api::UploadFinalizeRequest {
        expected_revision: None,
        signed_node: ByteBuf::from(other.signed.clone()),
    };
    http.post(&format!("/v1/uploads/{up}/finalize"), alice.t(), &bad)
        .await
        .expect(ProblemKind::InvalidRecord);

    let w: api::NodeWritten = http
        .post(&format!("/v1/uploads/{up}/finalize"), alice.t(), &fin)
        .await
        .ok(201);
    // A replayed finalize answers the same.
    let w2: api::NodeWritten = http
        .post(&format!("/v1/uploads/{up}/finalize"), alice.t(), &fin)
        .await
        .ok(201);
    assert_eq!(w, w2);
    let mut node = node;
    node.revision = w.revision;
    assert_eq!(alice.download(&http, &node).await, plaintext);
    assert_eq!(
        alice.children(&http, docs.id).await,
        vec![node.signed.clone()]
    );

    // Ranges.
    let path = format!("/v1/nodes/{}/content", node.id);
    let r = http
        .get_h(&path, alice.t(), &[("range", "bytes=0-99")])
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, ct[..100]);
    assert_eq!(
        r.header("content-range").as_deref(),
        Some(format!("bytes 0-99/{total}").as_str())
    );
    let etag = r.header("etag").unwrap();
    assert_eq!(etag, "\"c1\"");
    let r = http
        .get_h(&path, alice.t(), &[("range", "bytes=-10")])
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, ct[ct.len() - 10..]);
    let r = http
        .get_h(
            &path,
            alice.t(),
            &[("range", &format!("bytes={}-", total - 3))],
        )
        .await;
    assert_eq!(r.body, ct[ct.len() - 3..]);
    let r = http
        .get_h(
            &path,
            alice.t(),
            &[("range", &format!("bytes=5-{}", total + 100))],
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, ct[5..]);
    for bad in [
        format!("bytes={total}-"),
        "bytes=0-1,5-6".into(),
        "items=0-1".into(),
        "bytes=9-3".into(),
        "bytes=-0".into(),
        "bytes= 1-2".into(),
    ] {
        let r = http.get_h(&path, alice.t(), &[("range", &bad)]).await;
        r.expect(ProblemKind::RangeNotSatisfiable);
        assert_eq!(
            r.header("content-range").as_deref(),
            Some(format!("bytes */{total}").as_str()),
            "{bad}"
        );
    }
    // If-Range with another ETag sends everything; If-None-Match with the current one is 304.
    let r = http
        .get_h(
            &path,
            alice.t(),
            &[("range", "bytes=0-9"), ("if-range", "\"c7\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), ct.len());
    let r = http
        .get_h(
            &path,
            alice.t(),
            &[("range", "bytes=0-9"), ("if-range", &etag)],
        )
        .await;
    assert_eq!(r.status, 206);
    let r = http
        .get_h(&path, alice.t(), &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status, 304);
    // A folder has no content.
    assert_not_found(
        &http
            .get(&format!("/v1/nodes/{}/content", docs.id), alice.t())
            .await,
    );

    // Replace the content: revision 2, same node, the record's update checks.
    let new_plain = random_bytes(3000);
    let file_key = coffer_core::primitives::SecretKey::generate(&mut rand_core::OsRng);
    let new_ct = coffer_core::content::encrypt(&file_key, &new_plain, &mut rand_core::OsRng);
    let (rec2, signed2) = coffer_core::tree::update_content(
        alice.signing(),
        &node.record,
        &node.key,
        &coffer_core::tree::FileContent {
            file_key: file_key.clone(),
            content_revision: 2,
            ciphertext_length: new_ct.len() as u64,
        },
        now(),
        &mut rand_core::OsRng,
    )
    .unwrap();
    let node2 = Node {
        record: rec2,
        signed: coffer_core::encoding::encode(&signed2),
        file_key: Some(file_key),
        ..node.clone()
    };
    let st2 = alice
        .upload_create(&http, &node2, docs.id, new_ct.len() as u64)
        .await;
    // An upload of a content revision that does not exceed the current one is refused.
    http.post(
        "/v1/uploads",
        alice.t(),
        &api::UploadCreateRequest {
            node_id: node.id,
            parent_id: docs.id,
            content_revision: 1,
            total_length: 10,
            part_size: PART,
        },
    )
    .await
    .expect(ProblemKind::RevisionMismatch);
    alice.upload_parts(&http, st2.upload_id, &new_ct).await;
    let w3: api::NodeWritten = http
        .post(
            &format!("/v1/uploads/{}/finalize", st2.upload_id),
            alice.t(),
            &api::UploadFinalizeRequest {
                expected_revision: Some(w.revision),
                signed_node: ByteBuf::from(node2.signed.clone()),
            },
        )
        .await
        .ok(200);
    assert_eq!(w3.revision, w.revision + 1);
    assert_eq!(alice.download(&http, &node2).await, new_plain);
    let r = http.get(&path, alice.t()).await;
    assert_eq!(r.header("etag").as_deref(), Some("\"c2\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_shapes_abort_and_pagination() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let (node, _) = alice.file_record(&alice.root, "f", b"hello", 1);
    // Shapes outside §11.9.1.
    for (total, part) in [
        (0, PART),
        (10, PART - api::CONTENT_CHUNK_STRIDE),
        (10, PART + 1),
        (10, api::MAX_PART_SIZE + api::CONTENT_CHUNK_STRIDE),
        (PART * (api::MAX_PARTS + 1), PART),
    ] {
        let r = http
            .post(
                "/v1/uploads",
                alice.t(),
                &api::UploadCreateRequest {
                    node_id: node.id,
                    parent_id: alice.root.id,
                    content_revision: 1,
                    total_length: total,
                    part_size: part,
                },
            )
            .await;
        let p = r.problem();
        assert!(
            p.status == 400 || p.status == 413,
            "{total}/{part}: {}",
            p.type_uri
        );
    }
    // Content revision 0 is reserved for drops.
    http.post(
        "/v1/uploads",
        alice.t(),
        &api::UploadCreateRequest {
            node_id: node.id,
            parent_id: alice.root.id,
            content_revision: 0,
            total_length: 10,
            part_size: PART,
        },
    )
    .await
    .expect(ProblemKind::InvalidParameter);
    // A parent that does not exist.
    http.post(
        "/v1/uploads",
        alice.t(),
        &api::UploadCreateRequest {
            node_id: node.id,
            parent_id: coffer_core::ids::NodeId::generate(&mut rand_core::OsRng),
            content_revision: 1,
            total_length: 10,
            part_size: PART,
        },
    )
    .await
    .expect(ProblemKind::NotFound);

    // Create, retry (same upload), abort.
    let st = alice.upload_create(&http, &node, alice.root.id, 100).await;
    let again: api::UploadStatus = http
        .post(
            "/v1/uploads",
            alice.t(),
            &api::UploadCreateRequest {
                node_id: node.id,
                parent_id: alice.root.id,
                content_revision: 1,
                total_length: 100,
                part_size: PART,
            },
        )
        .await
        .ok(200);
    assert_eq!(again.upload_id, st.upload_id);
    http.put_part(
        &format!("/v1/uploads/{}/parts/0", st.upload_id),
        alice.t(),
        vec![7; 100],
    )
    .await
    .ok::<api::PartStored>(200);
    http.bare(
        Method::DELETE,
        &format!("/v1/uploads/{}", st.upload_id),
        alice.t(),
    )
    .await
    .empty(204);
    assert_not_found(
        &http
            .get(&format!("/v1/uploads/{}", st.upload_id), alice.t())
            .await,
    );
    assert_not_found(
        &http
            .put_part(
                &format!("/v1/uploads/{}/parts/0", st.upload_id),
                alice.t(),
                vec![7; 100],
            )
            .await,
    );

    // Pagination: 5 folders, pages of 2, ascending node id, no duplicates.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(alice.mkdir(&http, &alice.root, &format!("d{i}")).await.id);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut path = format!("/v1/nodes/{}/children?limit=2", alice.root.id);
    loop {
        let l: api::NodeList = http.get(&path, alice.t()).await.ok(200);
        assert!(l.records.len() <= 2);
        seen.extend(l.records.iter().map(|r| record_of(r).node_id));
        match l.next_cursor {
            Some(c) => {
                path = format!(
                    "/v1/nodes/{}/children?limit=2&cursor={}",
                    alice.root.id,
                    coffer_core::encoding::b64url_encode(&c)
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // Cursors are authenticated (§11.4.5): a bare node id, an altered cursor, or a cursor of
    // another folder is 400, so a client cannot probe node ids.
    let first: api::NodeList = http
        .get(
            &format!("/v1/nodes/{}/children?limit=2", alice.root.id),
            alice.t(),
        )
        .await
        .ok(200);
    let cursor = first.next_cursor.expect("a second page").to_vec();
    let b64 = coffer_core::encoding::b64url_encode;
    let mut altered = cursor.clone();
    altered[0] ^= 1;
    let mut bad_tag = cursor.clone();
    *bad_tag.last_mut().unwrap() ^= 1;
    let sub = alice.mkdir(&http, &alice.root, "sub").await;
    for forged in [
        b64(ids[1].as_bytes()),
        b64(&altered),
        b64(&bad_tag),
        b64(&cursor[..cursor.len() - 1]),
    ] {
        http.get(
            &format!("/v1/nodes/{}/children?cursor={forged}", alice.root.id),
            alice.t(),
        )
        .await
        .expect(ProblemKind::InvalidParameter);
    }
    http.get(
        &format!("/v1/nodes/{}/children?cursor={}", sub.id, b64(&cursor)),
        alice.t(),
    )
    .await
    .expect(ProblemKind::InvalidParameter);
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=!!", "foo=1"] {
        http.get(
            &format!("/v1/nodes/{}/children?{bad}", alice.root.id),
            alice.t(),
        )
        .await
        .expect(ProblemKind::InvalidParameter);
    }
    let _ = api::NodeList::MAX_LEN;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_through_links_and_drops() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "linker").await;
    let pub_dir = alice.mkdir(&http, &alice.root, "public").await;
    let inner = alice.mkdir(&http, &pub_dir, "inner").await;
    let plain = random_bytes(300_000);
    let file = alice.upload_file(&http, &inner, "shared.bin", &plain).await;
    let private = alice
        .upload_file(&http, &alice.root, "private", b"not linked")
        .await;

    // A folder link: the subtree is readable, nothing outside it.
    let l = alice
        .make_link(&http, &pub_dir, &LinkOptions::default())
        .await;
    let base = format!("/v1/l/{}", l.id);
    let r: api::NodeResponse = http
        .get(&format!("{base}/nodes/{}", inner.id), None)
        .await
        .ok(200);
    assert_eq!(r.signed_node.to_vec(), inner.signed);
    let kids: api::NodeList = http
        .get(
            &format!("{base}/nodes/{}/children?limit=10", pub_dir.id),
            None,
        )
        .await
        .ok(200);
    assert_eq!(kids.records.len(), 1);
    let c = http
        .get(&format!("{base}/nodes/{}/content", file.id), None)
        .await;
    assert_eq!(c.status, 200);
    let key = file.file_key.as_ref().unwrap();
    assert_eq!(coffer_core::content::decrypt(key, &c.body).unwrap(), plain);
    for n in [private.id, alice.root.id] {
        assert_not_found(&http.get(&format!("{base}/nodes/{n}"), None).await);
        assert_not_found(&http.get(&format!("{base}/nodes/{n}/content"), None).await);
    }
    // A session token is not a link credential, and the folder link has no /content.
    assert_not_found(&http.get(&format!("{base}/content"), None).await);

    // A file link with a download limit of 2: ranges not starting at 0 are not counted.
    let fl = alice
        .make_link(
            &http,
            &file,
            &LinkOptions {
                max_downloads: Some(2),
                ..LinkOptions::default()
            },
        )
        .await;
    let fbase = format!("/v1/l/{}", fl.id);
    for _ in 0..3 {
        let r = http
            .get_h(
                &format!("{fbase}/content"),
                None,
                &[("range", "bytes=10-20")],
            )
            .await;
        assert_eq!(r.status, 206);
    }
    assert_eq!(
        http.get(&format!("{fbase}/content"), None).await.status,
        200
    );
    let r = http
        .get_h(&format!("{fbase}/content"), None, &[("range", "bytes=0-9")])
        .await;
    assert_eq!(r.status, 206);
    http.get(&format!("{fbase}/content"), None)
        .await
        .expect(ProblemKind::LinkExhausted);

    // A drop link: anyone holding it uploads; the owner lists, downloads and deletes drops.
    let dl = alice
        .make_link(
            &http,
            &pub_dir,
            &LinkOptions {
                upload_only: true,
                ..LinkOptions::default()
            },
        )
        .await;
    let dbase = format!("/v1/l/{}", dl.id);
    let drop_plain = random_bytes(5000);
    let ct_len = coffer_core::content::ciphertext_len(drop_plain.len() as u64).unwrap();
    let (st, drop) = start_drop(&http, &dl, ct_len).await;
    let ct = coffer_core::content::encrypt(&drop.node_key, &drop_plain, &mut rand_core::OsRng);
    assert_eq!(st.node_id, None);
    // Nothing is readable through a drop link.
    assert_not_found(
        &http
            .get(&format!("{dbase}/nodes/{}", pub_dir.id), None)
            .await,
    );
    // The upload id works only under its link.
    assert_not_found(
        &http
            .get(&format!("{base}/uploads/{}", st.upload_id), None)
            .await,
    );
    assert_not_found(
        &http
            .get(&format!("/v1/uploads/{}", st.upload_id), alice.t())
            .await,
    );
    http.post(
        &format!("{dbase}/uploads/{}/finalize", st.upload_id),
        None,
        &api::NodeDeleteRequest {
            expected_revision: 0,
        },
    )
    .await
    .expect(ProblemKind::MalformedBody);
    let r = http
        .send(
            Method::POST,
            &format!("{dbase}/uploads/{}/finalize", st.upload_id),
            None,
            None,
            None,
            &[],
        )
        .await;
    r.expect(ProblemKind::UploadIncomplete);
    http.put_part(
        &format!("{dbase}/uploads/{}/parts/0", st.upload_id),
        None,
        ct.clone(),
    )
    .await
    .ok::<api::PartStored>(200);
    let s: api::UploadStatus = http
        .get(&format!("{dbase}/uploads/{}", st.upload_id), None)
        .await
        .ok(200);
    assert_eq!(s.present.to_vec(), vec![1]);
    http.send(
        Method::POST,
        &format!("{dbase}/uploads/{}/finalize", st.upload_id),
        None,
        None,
        None,
        &[],
    )
    .await
    .empty(204);
    let drops: api::DropList = http.get("/v1/drops", alice.t()).await.ok(200);
    assert_eq!(drops.drops.len(), 1);
    assert_eq!(drops.drops[0].drop_id, st.upload_id);
    assert_eq!(drops.drops[0].drop_envelope.to_vec(), drop.envelope);
    let got = http
        .get(&format!("/v1/drops/{}/content", st.upload_id), alice.t())
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        coffer_core::content::decrypt(&drop.node_key, &got.body).unwrap(),
        drop_plain
    );
    // Another account sees none of it.
    let mallory = new_user(&http, "mallory").await;
    assert_not_found(
        &http
            .get(&format!("/v1/drops/{}/content", st.upload_id), mallory.t())
            .await,
    );
    let none: api::DropList = http.get("/v1/drops", mallory.t()).await.ok(200);
    assert!(none.drops.is_empty());
    http.bare(
        Method::DELETE,
        &format!("/v1/drops/{}", st.upload_id),
        alice.t(),
    )
    .await
    .empty(204);
    assert_not_found(
        &http
            .get(&format!("/v1/drops/{}/content", st.upload_id), alice.t())
            .await,
    );

    // Revocation: the link id is 404 everywhere at once.
    http.bare(Method::DELETE, &format!("/v1/links/{}", l.id), alice.t())
        .await
        .empty(204);
    assert_not_found(&http.get(&format!("{base}/nodes/{}", inner.id), None).await);
    assert_not_found(
        &http
            .get(&format!("{base}/nodes/{}/content", file.id), None)
            .await,
    );
}

/// Drops outlive their link (§11.11.2, §11.11.7): after the link is revoked or rotated, the
/// owner still lists each drop with the record of the link it came through, opens it with the
/// folder key alone, and downloads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_outlive_a_revoked_or_rotated_link() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "alice").await;
    let inbox = alice.mkdir(&http, &alice.root, "inbox").await;
    let upload_only = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    let revoked = alice.make_link(&http, &inbox, &upload_only).await;
    let rotated = alice.make_link(&http, &inbox, &upload_only).await;
    let d1 = drop_file(&http, &revoked, b"first drop").await;
    let d2 = drop_file(&http, &rotated, b"second drop").await;

    http.bare(
        Method::DELETE,
        &format!("/v1/links/{}", revoked.id),
        alice.t(),
    )
    .await
    .empty(204);
    let (successor, params) = alice.link_params(&inbox, &upload_only);
    http.post(
        &format!("/v1/links/{}/rotate", rotated.id),
        alice.t(),
        &api::LinkRotateRequest { link: params },
    )
    .await
    .ok::<api::LinkCreated>(201);
    assert_not_found(&http.get(&format!("/v1/l/{}", revoked.id), None).await);
    assert_not_found(&http.get(&format!("/v1/l/{}", rotated.id), None).await);
    // A drop through the successor is listed with the successor's record.
    let d3 = drop_file(&http, &successor, b"third drop").await;

    let list: api::DropList = http.get("/v1/drops", alice.t()).await.ok(200);
    for (id, link_id, plain) in [
        (d1, revoked.id, &b"first drop"[..]),
        (d2, rotated.id, b"second drop"),
        (d3, successor.id, b"third drop"),
    ] {
        let info = list
            .drops
            .iter()
            .find(|d| d.drop_id == id)
            .expect("drop listed");
        assert_eq!(info.link_id, link_id);
        let record: link::LinkRecord =
            coffer_core::encoding::decode(&info.link_record).expect("the link's record");
        assert_eq!(record.link_id, link_id);
        let secret = link::open_drop_secret(&record, &inbox.key).expect("drop secret opens");
        let opened =
            link::open_drop(&secret, link_id, inbox.id, &info.drop_envelope).expect("drop opens");
        let got = http
            .get(&format!("/v1/drops/{id}/content"), alice.t())
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(
            coffer_core::content::decrypt(&opened.node_key, &got.body).unwrap(),
            plain
        );
    }
    assert_eq!(list.drops.len(), 3);
    // The owner still deletes them.
    http.bare(Method::DELETE, &format!("/v1/drops/{d1}"), alice.t())
        .await
        .empty(204);
    assert_not_found(
        &http
            .get(&format!("/v1/drops/{d1}/content"), alice.t())
            .await,
    );
}
