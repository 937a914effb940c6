//! A lying server: a proxy between real `coffer` processes and a real `cofferd` that tampers
//! with what the server sends (content bytes, node records, listings) or fails an upload
//! mid-way. The client must give a clear error (exit 5 for tampering) and never write wrong
//! bytes; an interrupted upload resumes.

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use coffer_core::api::{Body as _, NodeList};
use coffer_core::encoding::ByteBuf;
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
}

struct ProxyState {
    upstream: String,
    tamper: Mutex<Tamper>,
    root: Mutex<Option<String>>,
    client: reqwest::Client,
}

struct Proxy {
    url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            tamper: Mutex::new(Tamper::None),
            root: Mutex::new(None),
            client: reqwest::Client::new(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                let app = axum::Router::new().fallback(forward).with_state(st);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("proxy address");
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    fn set(&self, t: Tamper) {
        *self.state.tamper.lock().expect("lock") = t;
    }
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

async fn forward(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let tamper = *st.tamper.lock().expect("lock");
    let method = req.method().clone();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .expect("request body");
    if tamper == Tamper::FailPart3 && method == "PUT" && path.ends_with("/parts/3") {
        return problem(400, "invalid-parameter");
    }
    // Which folder a listing is for; the first one listed is the root.
    let listing = path
        .strip_prefix("/v1/nodes/")
        .and_then(|r| r.strip_suffix("/children"))
        .map(str::to_owned);
    let mut upstream_path = path_q.clone();
    if let Some(folder) = &listing {
        let mut root = st.root.lock().expect("lock");
        let root_id = root.get_or_insert_with(|| folder.clone()).clone();
        if tamper == Tamper::SwapListing && *folder != root_id {
            upstream_path = format!("/v1/nodes/{root_id}/children");
        }
    }
    let mut rb = st
        .client
        .request(method, format!("{}{}", st.upstream, upstream_path));
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let resp = rb.body(body.to_vec()).send().await.expect("upstream");
    let status = resp.status();
    let rh = resp.headers().clone();
    let mut bytes = resp.bytes().await.expect("upstream body").to_vec();
    let is_content = path.ends_with("/content") && (status == 200 || status == 206);
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
    if let (Some(folder), true) = (&listing, status == 200) {
        let root_id = st.root.lock().expect("lock").clone().unwrap_or_default();
        if *folder != root_id && matches!(tamper, Tamper::ForgeRecord | Tamper::SwapListing) {
            let mut list = NodeList::from_bytes(&bytes).expect("node list");
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
            bytes = list.to_bytes();
        }
    }
    let mut out = Response::builder().status(status.as_u16());
    for (k, v) in &rh {
        if k != "content-length" && k != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(bytes)).expect("response")
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
    let server = Server::start();
    let proxy = Proxy::start(&server.url);
    let mut a = server.user(&unique("eve"));
    a.server = proxy.url.clone();
    a.ok(&["register", &a.name.clone()]);
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
    let server = Server::start();
    let proxy = Proxy::start(&server.url);
    let mut a = server.user(&unique("frank"));
    a.server = proxy.url.clone();
    a.ok(&["register", &a.name.clone()]);
    let local = tempfile::tempdir().expect("dir");
    let mut data = random_bytes(6 * 8 * 1024 * 1024 + 777); // 7 parts
    let src = local.path().join("big.bin");
    std::fs::write(&src, &data).expect("write");
    let src_s = src.to_str().expect("utf-8");

    // Part 3 is refused: the upload stops, its state stays (0600).
    proxy.set(Tamper::FailPart3);
    a.fails(&["put", src_s, "/big.bin"], 1);
    let uploads = a.config_dir().join("uploads");
    let states: Vec<_> = std::fs::read_dir(&uploads)
        .expect("uploads")
        .flatten()
        .collect();
    assert_eq!(states.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = states[0].metadata().expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
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
}
