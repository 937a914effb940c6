//! A lying server: a proxy between real `coffer` processes and a real `cofferd` that tampers
//! with what the server sends (content bytes, node records, listings) or fails an upload
//! mid-way. The client must give a clear error (exit 5 for tampering) and never write wrong
//! bytes; an interrupted upload resumes.

mod support;

use std::sync::Mutex;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::api::{Body as _, NodeList};
use coffer_core::encoding::ByteBuf;
use support::proxy::{Liar, Proxy, Relayed};
use support::*;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// Forward faithfully.
    None,
    /// Flip one bit in the middle of every content download.
    FlipContent,
    /// Drop the last bytes of every content download.
    TruncateContent,
    /// Flip a bit of the first record's signature in listings of folders other than the root.
    ForgeRecord,
    /// Serve the root's listing for any other folder (valid signatures, wrong place).
    SwapListing,
    /// Refuse upload part 3 (a non-retryable error): the upload stops there.
    FailPart3,
    /// Answer every upload creation `200` instead of `201`, as for an identical creation
    /// while a matching upload is live (another attempt's, §11.9.2).
    CreateExisting,
    /// The session ends when part 2 is sent: from then on parts meet a broken connection (a
    /// server refuses them with `401` before reading the body, §11.4.1) and every other request
    /// is answered `401`.
    SessionEndsAtPart2,
}

/// Tampers with content, listings and uploads; learns the root from the first listing.
struct Tamperer {
    root: Mutex<Option<String>>,
    /// The session has ended (`Tamper::SessionEndsAtPart2`).
    ended: std::sync::atomic::AtomicBool,
}

/// The index of a part upload request.
fn part_index(req: &Relayed) -> Option<u64> {
    if req.method != "PUT" || !req.path.starts_with("/v1/uploads/") {
        return None;
    }
    req.path.rsplit_once("/parts/")?.1.parse().ok()
}

/// A response whose body breaks off: the client sees the connection fail.
fn broken_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("cut by the test proxy"))
    });
    Response::builder()
        .status(200)
        .header("content-type", coffer_core::api::CBOR_CONTENT_TYPE)
        .body(Body::from_stream(failing))
        .expect("response")
}

/// The folder a listing request is for.
fn listing(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/nodes/")
        .and_then(|r| r.strip_suffix("/children"))
}

fn problem(status: u16, kind: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("https://coffer.invalid/problems/{kind}"),
        "title": "Invalid request parameter",
        "status": status,
        "detail": "refused by the test proxy",
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

impl Liar for Tamperer {
    type Lie = Tamper;

    fn before(&self, tamper: Tamper, req: &Relayed) -> Result<Option<String>, Box<Response>> {
        if tamper == Tamper::FailPart3 && req.method == "PUT" && req.path.ends_with("/parts/3") {
            return Err(Box::new(problem(400, "invalid-parameter")));
        }
        if tamper == Tamper::SessionEndsAtPart2 {
            use std::sync::atomic::Ordering;
            match part_index(req) {
                Some(i) if i >= 2 || self.ended.load(Ordering::SeqCst) => {
                    self.ended.store(true, Ordering::SeqCst);
                    return Err(Box::new(broken_connection()));
                }
                None if self.ended.load(Ordering::SeqCst) => {
                    return Err(Box::new(problem(401, "unauthenticated")));
                }
                _ => {}
            }
        }
        // The first folder listed is the root.
        if let Some(folder) = listing(&req.path) {
            let mut root = self.root.lock().expect("lock");
            let root_id = root.get_or_insert_with(|| folder.to_owned()).clone();
            if tamper == Tamper::SwapListing && folder != root_id {
                return Ok(Some(format!("/v1/nodes/{root_id}/children")));
            }
        }
        Ok(None)
    }

    fn status(&self, tamper: Tamper, req: &Relayed, status: StatusCode) -> StatusCode {
        if tamper == Tamper::CreateExisting
            && req.method == "POST"
            && req.path == "/v1/uploads"
            && status == StatusCode::CREATED
        {
            return StatusCode::OK;
        }
        status
    }

    fn after(&self, tamper: Tamper, req: &Relayed, status: StatusCode, bytes: &mut Vec<u8>) {
        let is_content = req.path.ends_with("/content") && (status == 200 || status == 206);
        match tamper {
            Tamper::FlipContent if is_content && !bytes.is_empty() => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x01;
            }
            Tamper::TruncateContent if is_content && bytes.len() > 200 => {
                bytes.truncate(bytes.len() - 100);
            }
            _ => {}
        }
        if let (Some(folder), true) = (listing(&req.path), status == 200) {
            let root_id = self.root.lock().expect("lock").clone().unwrap_or_default();
            if folder != root_id && matches!(tamper, Tamper::ForgeRecord | Tamper::SwapListing) {
                let mut list = NodeList::from_bytes(bytes).expect("node list");
                if tamper == Tamper::ForgeRecord {
                    if let Some(first) = list.records.first_mut() {
                        let mut v = first.to_vec();
                        let last = v.len() - 1;
                        v[last] ^= 0x01;
                        *first = ByteBuf::from(v);
                    }
                } else {
                    // Relabel the root's listing as the asked folder's.
                    list.parent_id = coffer_core::ids::NodeId::from_b64(folder).expect("node id");
                }
                *bytes = list.to_bytes();
            }
        }
    }
}

/// A server, a proxy in front of it, and a user `name` registered through the proxy.
fn registered_behind_proxy(name: &str) -> (Server, Proxy<Tamperer>, User) {
    let server = Server::start();
    let proxy = tamper_proxy(&server.url);
    let mut a = server.user(&unique(name));
    a.server = proxy.url.clone();
    a.ok(&["register", &a.name.clone()]);
    (server, proxy, a)
}

/// A proxy in front of `upstream` that forwards faithfully until told otherwise.
fn tamper_proxy(upstream: &str) -> Proxy<Tamperer> {
    let liar = Tamperer {
        root: Mutex::new(None),
        ended: std::sync::atomic::AtomicBool::new(false),
    };
    Proxy::start(upstream, liar, Tamper::None)
}

fn no_temp_files(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".coffer"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn tampered_content_and_records_give_clear_errors_never_wrong_bytes() {
    let (_server, proxy, a) = registered_behind_proxy("eve");
    let local = tempfile::tempdir().expect("dir");
    let data = random_bytes(2 * 1024 * 1024 + 99);
    let src = local.path().join("f.bin");
    std::fs::write(&src, &data).expect("write");
    let src = src.to_str().expect("utf-8");
    a.ok(&["ls", "/"]); // the proxy learns the root
    a.ok(&["mkdir", "/a"]);
    a.ok(&["mkdir", "/b"]);
    a.ok(&["put", src, "/a/f.bin"]);
    a.ok(&["put", src, "/top.bin"]);

    let out = tempfile::tempdir().expect("out");
    let dest = out.path().join("f.bin");
    let dest_s = dest.to_str().expect("utf-8");

    proxy.set(Tamper::FlipContent);
    let e = a.fails(&["get", "/top.bin", dest_s], 5);
    assert!(e.contains("integrity"), "{e}");
    assert!(!dest.exists(), "unverified plaintext written");
    a.fails(&["get", "/top.bin", dest_s, "--range", "100-1000000"], 5);
    assert!(!dest.exists());
    no_temp_files(out.path());

    proxy.set(Tamper::TruncateContent);
    a.fails(&["get", "/top.bin", dest_s], 5);
    assert!(!dest.exists());
    no_temp_files(out.path());

    proxy.set(Tamper::ForgeRecord);
    let e = a.fails(&["ls", "/a"], 5);
    assert!(e.contains("integrity"), "{e}");
    a.fails(&["get", "/a/f.bin", dest_s], 5);
    assert!(!dest.exists());

    proxy.set(Tamper::SwapListing);
    // /b is empty; the server claims it holds the root's entries.
    a.fails(&["ls", "/b"], 5);
    a.fails(&["get", "/b/top.bin", dest_s], 5);
    assert!(!dest.exists());

    // An honest server again: everything is intact.
    proxy.set(Tamper::None);
    a.ok(&["get", "/a/f.bin", dest_s]);
    assert!(std::fs::read(&dest).expect("read") == data);
}

#[test]
fn interrupted_put_resumes_and_an_edited_file_restarts() {
    let (_server, proxy, a) = registered_behind_proxy("frank");
    let local = tempfile::tempdir().expect("dir");
    let mut data = random_bytes(6 * 8 * 1024 * 1024 + 777); // 7 parts
    let src = local.path().join("big.bin");
    std::fs::write(&src, &data).expect("write");
    let src_s = src.to_str().expect("utf-8");

    // Part 3 is refused: the upload stops, its state stays (0600): the record, and the
    // journal of the parts sent, a check per line.
    proxy.set(Tamper::FailPart3);
    a.fails(&["put", src_s, "/big.bin"], 1);
    let uploads = a.config_dir().join("uploads");
    let mut states: Vec<_> = std::fs::read_dir(&uploads)
        .expect("uploads")
        .flatten()
        .map(|e| e.path())
        .collect();
    states.sort_by_key(|p| p.extension().map(|e| e.to_os_string()));
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[0].extension().expect("ext"), "json");
    assert_eq!(states[1].extension().expect("ext"), "sent");
    #[cfg(unix)]
    for state in &states {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(state).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let journal = std::fs::read_to_string(&states[1]).expect("journal");
    assert!(
        (1..=7).contains(&journal.lines().count()) && journal.ends_with('\n'),
        "{journal}"
    );
    assert!(a.json(&["ls"]).as_array().expect("list").is_empty());

    // Repeating the command continues where it stopped.
    proxy.set(Tamper::None);
    let v = a.json(&["put", src_s, "/big.bin"]);
    assert_eq!(v["resumed"], true);
    let sent = v["parts_sent"].as_u64().expect("sent");
    assert_eq!(v["parts_total"], 7);
    assert!(
        (1..7).contains(&sent),
        "resumed upload sent {sent} of 7 parts"
    );
    assert!(std::fs::read_dir(&uploads)
        .expect("uploads")
        .next()
        .is_none());
    let dest = local.path().join("back.bin");
    a.ok(&["get", "/big.bin", dest.to_str().expect("utf-8")]);
    assert!(std::fs::read(&dest).expect("read") == data);

    // Interrupted again, then the file is edited in place keeping its size and time: the
    // resumed upload must not mix old and new content or re-encrypt changed plaintext.
    proxy.set(Tamper::FailPart3);
    a.fails(&["put", src_s, "/other.bin"], 1);
    let mtime = std::fs::metadata(&src)
        .expect("meta")
        .modified()
        .expect("mtime");
    data[3 * 8 * 1024 * 1024 + 10] ^= 0xff;
    data[10] ^= 0xff;
    std::fs::write(&src, &data).expect("rewrite");
    std::fs::File::options()
        .write(true)
        .open(&src)
        .expect("open")
        .set_modified(mtime)
        .expect("set mtime");
    proxy.set(Tamper::None);
    let e = a.fails(&["put", src_s, "/other.bin"], 6);
    assert!(e.contains("changed"), "{e}");
    let v = a.json(&["put", src_s, "/other.bin"]);
    assert_eq!(v["resumed"], false);
    a.ok(&["get", "/other.bin", dest.to_str().expect("utf-8")]);
    assert!(std::fs::read(&dest).expect("read") == data);

    // State written by an older client (format 1: no `format` field, plaintext digests) is
    // never resumed: its upload is discarded and a new one sends every part.
    proxy.set(Tamper::FailPart3);
    a.fails(&["put", src_s, "/third.bin"], 1);
    let state = std::fs::read_dir(&uploads)
        .expect("uploads")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("state");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("read")).expect("json");
    v.as_object_mut().expect("object").remove("format");
    std::fs::write(&state, v.to_string()).expect("write");
    proxy.set(Tamper::None);
    let v = a.json(&["put", src_s, "/third.bin"]);
    assert_eq!(v["resumed"], false);
    assert_eq!(v["parts_sent"], 7);
    a.ok(&["get", "/third.bin", dest.to_str().expect("utf-8")]);
    assert!(std::fs::read(&dest).expect("read") == data);

    // Another attempt's upload of the same version, running at the same moment: its creation
    // answered `200` with no part present yet. It is never used (both would send parts under
    // their own keys); the client aborts it, creates again, and stops when that repeats.
    proxy.set(Tamper::CreateExisting);
    let e = a.fails(&["put", src_s, "/replaced.bin"], 6);
    assert!(e.contains("in progress"), "{e}");
    proxy.set(Tamper::None);

    // A new version of an existing file is interrupted, then its state no longer applies (the
    // file is edited again: another modification time). The next attempt's creation is
    // identical to the interrupted one's, and the server returns that upload (§11.9.2), whose
    // parts are under the lost attempt's file key: they must not be finished with this
    // attempt's, which would leave the file undecryptable.
    a.ok(&["put", src_s, "/replaced.bin"]);
    data[20] ^= 0xff;
    std::fs::write(&src, &data).expect("version 2");
    proxy.set(Tamper::FailPart3);
    a.fails(&["put", src_s, "/replaced.bin"], 1);
    data[30] ^= 0xff;
    std::fs::write(&src, &data).expect("version 3");
    std::fs::File::options()
        .write(true)
        .open(&src)
        .expect("open")
        .set_modified(mtime + std::time::Duration::from_secs(60))
        .expect("set mtime");
    proxy.set(Tamper::None);
    let v = a.json(&["put", src_s, "/replaced.bin"]);
    assert_eq!(v["resumed"], false);
    assert_eq!(v["parts_sent"], 7, "every part is sent under the new key");
    a.ok(&["get", "/replaced.bin", dest.to_str().expect("utf-8")]);
    assert!(std::fs::read(&dest).expect("read") == data);
}

#[test]
fn a_session_that_ends_mid_upload_says_log_in_again() {
    let (_server, proxy, a) = registered_behind_proxy("gail");
    let local = tempfile::tempdir().expect("dir");
    let src = write_local(local.path(), "big.bin", &random_bytes(5 * 8 * 1024 * 1024));
    // Parts meet a broken connection; the client asks once more with a bodyless request and
    // reports what that answer says (not a transport failure), keeping the state to resume.
    proxy.set(Tamper::SessionEndsAtPart2);
    let e = a.fails(&["put", path_str(&src), "/big.bin"], 3);
    assert!(e.contains("coffer login"), "{e}");
    assert!(a
        .config_dir()
        .join("uploads")
        .read_dir()
        .expect("state")
        .next()
        .is_some());
}
