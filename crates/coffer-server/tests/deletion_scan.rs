//! Account deletion leaves nothing behind (spec §11.6.9): after the deletion, every byte of the
//! data directory (the SQLite database with its WAL, and the blob directory) is scanned for the
//! account's username, its records, keys and ciphertext.
//!
//! The identity chain is kept by design (public keys; other accounts' records must still verify),
//! and with it the account id that keys it and the username inside its signed records: those
//! bytes are blanked out of the haystack before searching, and nothing else may remain.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api;
use coffer_core::share::PERMISSION_WRITE;
use common::*;
use reqwest::Method;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Overwrites every occurrence of `what` in `hay`.
fn blank(hay: &mut [u8], what: &[u8]) {
    if what.is_empty() || what.len() > hay.len() {
        return;
    }
    let mut i = 0;
    while i + what.len() <= hay.len() {
        if &hay[i..i + what.len()] == what {
            hay[i..i + what.len()].fill(0);
            i += what.len();
        } else {
            i += 1;
        }
    }
}

/// The database file and the blob directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_account_leaves_no_trace() {
    scan(false).await;
}

/// The SQLite write-ahead log too: the store checkpoints and truncates it after an account
/// deletion, and `secure_delete` zeroes the freed pages (this test found the leak first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_account_leaves_no_trace_in_the_wal() {
    scan(true).await;
}

async fn scan(include_wal: bool) {
    let srv = TestServer::start().await;
    let http = srv.http();
    let alice = new_user(&http, "victim").await;
    let bob = new_user(&http, "bystander").await;

    // Alice's data: folders, files (one multi-part), a share with bob, an unfinished upload,
    // a node bob wrote into her share.
    let docs = alice.mkdir(&http, &alice.root, "docs").await;
    let small = alice
        .upload_file(&http, &docs, "small", b"tiny secret")
        .await;
    let big_plain = random_bytes(1_200_000);
    let big = alice.upload_file(&http, &docs, "big", &big_plain).await;
    let (sid, _) = alice.share(&http, &docs, &[(&bob, PERMISSION_WRITE)]).await;
    let (pending, pending_ct) = alice.file_record(&docs, "pending", &random_bytes(5000), 1);
    let st = alice
        .upload_create(&http, &pending, docs.id, pending_ct.len() as u64)
        .await;
    http.put_part(
        &format!("/v1/uploads/{}/parts/0", st.upload_id),
        alice.t(),
        pending_ct.clone(),
    )
    .await
    .ok::<api::PartStored>(200);

    // What must disappear: every record's bytes, every ciphertext, the key bundle.
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, n) in [
        ("root", &alice.root),
        ("docs", &docs),
        ("small", &small),
        ("big", &big),
    ] {
        needles.push((format!("{name} record"), n.signed.clone()));
    }
    for (name, ct_of) in [("small", &small), ("big", &big)] {
        let r = http
            .get(&format!("/v1/nodes/{}/content", ct_of.id), alice.t())
            .await;
        assert_eq!(r.status, 200);
        // Windows of the ciphertext: start, middle, end.
        let ct = r.body;
        for at in [0, ct.len() / 2, ct.len().saturating_sub(48)] {
            let end = (at + 48).min(ct.len());
            needles.push((format!("{name} ciphertext @{at}"), ct[at..end].to_vec()));
        }
    }
    needles.push(("unfinished part".into(), pending_ct[100..148].to_vec()));
    let share: api::ShareResponse = http
        .get(&format!("/v1/shares/{sid}"), alice.t())
        .await
        .ok(200);
    needles.push(("share record".into(), share.signed_share.to_vec()));
    let grants: api::MyGrants = http
        .get(&format!("/v1/shares/{sid}/grants/mine"), bob.t())
        .await
        .ok(200);
    needles.push(("grant".into(), grants.grants[0].grant.to_vec()));
    let chain: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .ok(200);

    delete_account(&http, &alice).await;

    // The deleted session is gone, the data unreachable (also for bob).
    http.get("/v1/root", alice.t())
        .await
        .expect(coffer_core::api::ProblemKind::Unauthenticated);
    assert_not_found(&http.get(&format!("/v1/nodes/{}", docs.id), bob.t()).await);
    assert_not_found(&http.get(&format!("/v1/shares/{sid}"), bob.t()).await);
    // The chain is still served (public keys), as §11.6.9 requires.
    let kept: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", alice.account_id), None)
        .await
        .ok(200);
    assert_eq!(kept.generations, chain.generations);
    // Bob is unaffected.
    http.get("/v1/root", bob.t())
        .await
        .ok::<api::NodeResponse>(200);
    let _ = http.bare(Method::GET, "/healthz", None).await;

    // Stop the server so every byte is on disk, then scan the whole data directory.
    let dir = srv.stop().await;
    let files = files_below(dir.path());
    assert!(!files.is_empty());
    let username = alice.name.as_bytes().to_vec();
    let mut found = Vec::new();
    for f in &files {
        let is_wal = f.to_string_lossy().ends_with("-wal");
        if is_wal && !include_wal {
            continue;
        }
        // SQLite removes its -wal and -shm files when the last connection closes, which may
        // happen between the listing and this read: a file that is gone holds nothing.
        let mut hay = match std::fs::read(f) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("read {}: {e}", f.display()),
        };
        for (what, needle) in &needles {
            if contains(&hay, needle) {
                found.push(format!("{what} in {}", f.display()));
            }
        }
        for g in &kept.generations {
            blank(&mut hay, g);
        }
        if contains(&hay, &username) {
            found.push(format!(
                "username outside the retained identity chain in {}",
                f.display()
            ));
        }
        let is_blob = !f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".db") || n.contains("sqlite"));
        if is_blob && contains(&hay, alice.account_id.as_bytes()) {
            found.push(format!("account id in {}", f.display()));
        }
    }
    assert!(found.is_empty(), "left behind after deletion: {found:#?}");
}
