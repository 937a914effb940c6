//! Crash safety (spec §11.9): a real `cofferd` process is killed with SIGKILL while uploads,
//! part writes and a finalize are in flight, then restarted on the same data directory. Nothing
//! partial is visible, every unfinished upload resumes from the parts its status reports, and
//! everything committed is intact (downloaded and decrypted); blobs and parts no metadata
//! references are removed at the restart. And a client that goes away mid-request does not
//! leave the deletions of a committed change half-done.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use coffer_core::api::{self, ProblemKind};
use coffer_core::encoding::ByteBuf;
use common::*;

/// Stores part 0 of the ciphertext `ct` for `upload`.
async fn put_part0(http: &Http, user: &User, upload: coffer_core::ids::UploadId, ct: &[u8]) {
    http.put_part(
        &format!("/v1/uploads/{upload}/parts/0"),
        user.t(),
        ct[..PART as usize].to_vec(),
    )
    .await
    .ok::<api::PartStored>(200);
}

struct Pending {
    node: Node,
    ct: Vec<u8>,
    plain: Vec<u8>,
    upload: coffer_core::ids::UploadId,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_upload_then_resume() {
    let data = tempfile::tempdir().expect("temp dir");
    let p1 = Process::spawn(data.path());
    p1.wait_ready().await;
    let http = Http::new(&p1.url);
    let alice = new_user(&http, "crash").await;
    let folder = alice.mkdir(&http, &alice.root, "in-flight").await;

    // Committed before the crash.
    let kept_plain = random_bytes(1_500_000);
    let kept = alice.upload_file(&http, &folder, "kept", &kept_plain).await;

    // Four uploads of three parts each; part 0 stored for all of them.
    let mut pending = Vec::new();
    for i in 0..4 {
        let plain = random_bytes(2 * 1024 * 1024 + 1000 * (i + 1));
        let (node, ct) = alice.file_record(&folder, &format!("p{i}"), &plain, 1);
        let st = alice
            .upload_create(&http, &node, folder.id, ct.len() as u64)
            .await;
        assert_eq!(st.part_count, 3);
        put_part0(&http, &alice, st.upload_id, &ct).await;
        pending.push(Pending {
            node,
            ct,
            plain,
            upload: st.upload_id,
        });
    }
    // Upload 0 gets all its parts, so its finalize can race the kill.
    for i in 1..3 {
        let part = pending[0].ct[i * PART as usize..]
            .chunks(PART as usize)
            .next()
            .unwrap();
        http.put_part(
            &format!("/v1/uploads/{}/parts/{i}", pending[0].upload),
            alice.t(),
            part.to_vec(),
        )
        .await
        .ok::<api::PartStored>(200);
    }

    // In flight: the remaining parts of uploads 1..4 and the finalize of upload 0.
    let mut tasks = Vec::new();
    for p in &pending[1..] {
        for i in 1..3usize {
            let http = http.clone();
            let token = alice.token.clone();
            let path = format!("/v1/uploads/{}/parts/{i}", p.upload);
            let part = p.ct[i * PART as usize..]
                .chunks(PART as usize)
                .next()
                .unwrap()
                .to_vec();
            tasks.push(tokio::spawn(async move {
                let _ = http
                    .try_send(
                        reqwest::Method::PUT,
                        &path,
                        Some(&token),
                        Some(api::OCTET_STREAM_CONTENT_TYPE),
                        Some(part),
                        &[],
                    )
                    .await;
            }));
        }
    }
    {
        let http = http.clone();
        let token = alice.token.clone();
        let path = format!("/v1/uploads/{}/finalize", pending[0].upload);
        let body = api::UploadFinalizeRequest {
            expected_revision: None,
            signed_node: ByteBuf::from(pending[0].node.signed.clone()),
        };
        tasks.push(tokio::spawn(async move {
            let _ = http
                .try_send(
                    reqwest::Method::POST,
                    &path,
                    Some(&token),
                    Some(api::CBOR_CONTENT_TYPE),
                    Some(coffer_core::api::Body::to_bytes(&body)),
                    &[],
                )
                .await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(15)).await;
    let mut p1 = p1;
    p1.kill9();
    for t in tasks {
        let _ = t.await;
    }

    // What a crash between a metadata change and its blob deletions leaves: a blob and the
    // parts of an upload that no metadata references.
    let blob_root = data.path().join(coffer_server::BLOB_DIR);
    let orphan_blob = blob_root
        .join("blobs")
        .join(format!("c-{}", "ab".repeat(16)));
    let orphan_parts = blob_root.join("parts").join("cd".repeat(16));
    for dir in [&orphan_blob, &orphan_parts] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("0"), b"debris").unwrap();
    }

    // Restart on the same data directory.
    let p2 = Process::spawn(data.path());
    p2.wait_ready().await;
    // The orphan scan runs at start.
    for _ in 0..100 {
        if !orphan_blob.exists() && !orphan_parts.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!orphan_blob.exists(), "an orphaned blob survived the start");
    assert!(!orphan_parts.exists(), "orphaned parts survived the start");
    let http = Http::new(&p2.url);
    // The session survived (it is stored), and what was committed is intact.
    assert_eq!(alice.download(&http, &kept).await, kept_plain);

    let visible: Vec<Vec<u8>> = alice.children(&http, folder.id).await;
    for p in &pending {
        let node_path = format!("/v1/nodes/{}", p.node.id);
        let r = http.get(&node_path, alice.t()).await;
        if r.status == 200 {
            // Only the raced finalize may have committed, and then completely.
            assert_eq!(
                p.upload, pending[0].upload,
                "a partial upload became visible"
            );
            let mut n = p.node.clone();
            n.revision = etag_revision(&r);
            assert_eq!(alice.download(&http, &n).await, p.plain);
            continue;
        }
        r.expect(ProblemKind::NotFound);
        assert!(!visible.contains(&p.node.signed));
        // Resume: the status lists what is stored; send the rest; finalize.
        let st: api::UploadStatus = http
            .get(&format!("/v1/uploads/{}", p.upload), alice.t())
            .await
            .ok(200);
        let parts: Vec<&[u8]> = p.ct.chunks(PART as usize).collect();
        assert!(
            st.present[0] & 1 == 1,
            "part 0 was acknowledged before the crash"
        );
        for (i, part) in parts.iter().enumerate() {
            if st.present[0] & (1 << i) == 0 {
                http.put_part(
                    &format!("/v1/uploads/{}/parts/{i}", p.upload),
                    alice.t(),
                    part.to_vec(),
                )
                .await
                .ok::<api::PartStored>(200);
            }
        }
        let w: api::NodeWritten = http
            .post(
                &format!("/v1/uploads/{}/finalize", p.upload),
                alice.t(),
                &api::UploadFinalizeRequest {
                    expected_revision: None,
                    signed_node: ByteBuf::from(p.node.signed.clone()),
                },
            )
            .await
            .ok(201);
        let mut n = p.node.clone();
        n.revision = w.revision;
        assert_eq!(alice.download(&http, &n).await, p.plain, "resumed content");
    }
    let all = alice.children(&http, folder.id).await;
    assert_eq!(all.len(), 1 + pending.len());
    drop(p2);
}

/// A local blob store whose deletions take 300 ms: long enough for a client to give up first.
struct SlowDeletes(coffer_server::store::local::LocalBlobStore);

#[async_trait::async_trait]
impl coffer_server::store::BlobStore for SlowDeletes {
    async fn put_part(
        &self,
        upload_id: coffer_core::ids::UploadId,
        index: u64,
        body: coffer_server::store::ByteStream,
        max_len: u64,
    ) -> coffer_server::store::StoreResult<coffer_server::store::PartStored> {
        self.0.put_part(upload_id, index, body, max_len).await
    }
    async fn list_parts(
        &self,
        upload_id: coffer_core::ids::UploadId,
    ) -> coffer_server::store::StoreResult<Vec<(u64, u64)>> {
        self.0.list_parts(upload_id).await
    }
    async fn assemble(
        &self,
        upload_id: coffer_core::ids::UploadId,
        part_count: u64,
        key: &str,
    ) -> coffer_server::store::StoreResult<u64> {
        self.0.assemble(upload_id, part_count, key).await
    }
    async fn blob_length(&self, key: &str) -> coffer_server::store::StoreResult<Option<u64>> {
        self.0.blob_length(key).await
    }
    async fn read(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> coffer_server::store::StoreResult<coffer_server::store::BlobRead> {
        self.0.read(key, range).await
    }
    async fn delete_blob(&self, key: &str) -> coffer_server::store::StoreResult<bool> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.delete_blob(key).await
    }
    async fn delete_parts(
        &self,
        upload_id: coffer_core::ids::UploadId,
    ) -> coffer_server::store::StoreResult<()> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.delete_parts(upload_id).await
    }
    async fn list_blobs(&self) -> coffer_server::store::StoreResult<Vec<String>> {
        self.0.list_blobs().await
    }
    async fn list_uploads(
        &self,
    ) -> coffer_server::store::StoreResult<Vec<coffer_core::ids::UploadId>> {
        self.0.list_uploads().await
    }
}

/// A client that goes away mid-request (here: after 100 ms, while the server deletes) does not
/// stop the deletions that follow a committed metadata change half-way: aborting an upload
/// whose client gives up still removes its parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_finish_when_the_client_goes_away() {
    use coffer_server::store::BlobStore as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(dir.path());
    let setup = coffer_server::load_or_create_server_setup(dir.path()).expect("setup");
    let (meta, _) = coffer_server::open_stores(&config).await.expect("stores");
    let blobs = std::sync::Arc::new(SlowDeletes(
        coffer_server::store::local::LocalBlobStore::open(dir.path().join("slow-blobs"))
            .await
            .expect("blobs"),
    ));
    let handle = coffer_server::serve_with(config, meta, blobs.clone(), setup)
        .await
        .expect("serve");
    let base = format!("http://{}", handle.local_addr());
    let http = Http::new(&base);
    let alice = new_user(&http, "leaver").await;
    let (node, ct) = alice.file_record(&alice.root, "abandoned", &random_bytes(2 * 1024 * 1024), 1);
    let st = alice
        .upload_create(&http, &node, alice.root.id, ct.len() as u64)
        .await;
    put_part0(&http, &alice, st.upload_id, &ct).await;
    assert_eq!(blobs.list_uploads().await.unwrap(), vec![st.upload_id]);

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gone = impatient
        .delete(format!("{base}/v1/uploads/{}", st.upload_id))
        .bearer_auth(&alice.token)
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up before the answer");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        blobs.list_uploads().await.unwrap().is_empty(),
        "the parts of the aborted upload were left behind"
    );
    http.get(&format!("/v1/uploads/{}", st.upload_id), alice.t())
        .await
        .expect(ProblemKind::NotFound);
    handle.shutdown().await.expect("shutdown");
}
