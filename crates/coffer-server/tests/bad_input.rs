//! Hostile input on every endpoint of the index (spec §11.20): garbage, truncated, oversized and
//! non-canonical CBOR, wrong content types, malformed path segments and query parameters. Every
//! answer is a 4xx problem document of §11.3 (never a 5xx), and the server keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::api::{self, Auth, Body, Payload, ENDPOINTS};
use coffer_core::ids::NodeId;
use common::*;
use rand_core::OsRng;
use reqwest::Method;

/// Fills a path template with well-formed parameters.
fn fill(template: &str, id: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{username}" => "nobody-here".to_owned(),
            "{index}" => "0".to_owned(),
            s if s.starts_with('{') => id.to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The body size limit of a request structure.
fn limit_of(name: &str) -> usize {
    api::BODIES
        .iter()
        .find(|b| b.name == name)
        .map_or(api::MAX_SMALL_BODY, |b| b.max_len)
}

#[track_caller]
fn assert_client_error(r: &Resp, what: &str) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: status {} body {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if !r.body.is_empty() {
        r.problem();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_on_every_endpoint() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let user = new_user(&http, "target").await;
    let id = NodeId::generate(&mut OsRng).to_string();

    // A valid structure of another type, to truncate and to send where it does not belong.
    let other = api::NodeDeleteRequest {
        expected_revision: 7,
    }
    .to_bytes();
    let non_canonical: Vec<Vec<u8>> = vec![
        // [129, 1, 7] with a non-minimal integer: 0x18 0x07 for 7.
        vec![0x83, 0x18, 0x81, 0x01, 0x18, 0x07],
        // An indefinite-length array.
        vec![0x9f, 0x18, 0x81, 0x01, 0x07, 0xff],
        // A map where an array belongs.
        vec![0xa1, 0x01, 0x02],
        // A tag.
        vec![0xc1, 0x83, 0x18, 0x81, 0x01, 0x07],
        // A float.
        vec![0x83, 0x18, 0x81, 0x01, 0xf9, 0x3c, 0x00],
        // Trailing bytes.
        [other.clone(), vec![0x00]].concat(),
        // Huge declared length.
        vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ];

    for e in ENDPOINTS {
        if e.path == "/metrics" || e.path == "/healthz" {
            continue;
        }
        let path = fill(e.path, &id);
        let method = Method::from_bytes(e.method.as_bytes()).unwrap();
        let token = match e.auth {
            Auth::Session | Auth::SessionOfAccount | Auth::SessionAndProof => user.t(),
            _ => None,
        };
        let what = |case: &str| format!("{} {} ({case})", e.method, e.path);

        // Malformed path parameters.
        if e.path.contains("-id}") {
            for bad in [
                "short",
                "AAAAAAAAAAAAAAAAAAAAAA==",
                "AAAAAAAAAAAAAAAAAAAAA!",
                "AAAAAAAAAAAAAAAAAAAAAAA",
            ] {
                let p = fill(e.path, bad);
                let r = http.send(method.clone(), &p, token, None, None, &[]).await;
                assert_client_error(&r, &what(&format!("path {bad}")));
            }
        }
        // An undefined query parameter.
        let r = http
            .send(
                method.clone(),
                &format!("{path}?bogus=1"),
                token,
                None,
                None,
                &[],
            )
            .await;
        assert_client_error(&r, &what("query"));

        match e.request {
            Payload::Body(name) => {
                let ct = Some(api::CBOR_CONTENT_TYPE);
                let mut cases: Vec<(String, Vec<u8>)> = vec![
                    ("empty".into(), vec![]),
                    ("garbage".into(), random_bytes(200)),
                    ("truncated".into(), other[..other.len() - 1].to_vec()),
                    ("another structure".into(), other.clone()),
                ];
                for (i, nc) in non_canonical.iter().enumerate() {
                    cases.push((format!("non-canonical {i}"), nc.clone()));
                }
                for (case, b) in cases {
                    let r = http
                        .send(method.clone(), &path, token, ct, Some(b), &[])
                        .await;
                    assert_client_error(&r, &what(&case));
                }
                // Wrong content types.
                for bad_ct in ["text/plain", "application/json", "application/octet-stream"] {
                    let r = http
                        .send(
                            method.clone(),
                            &path,
                            token,
                            Some(bad_ct),
                            Some(other.clone()),
                            &[],
                        )
                        .await;
                    assert_client_error(&r, &what(bad_ct));
                }
                let r = http
                    .send(method.clone(), &path, token, None, Some(other.clone()), &[])
                    .await;
                assert_client_error(&r, &what("no content type"));
                // One byte over the limit (bulk bodies: a single endpoint suffices).
                let limit = limit_of(name);
                if limit <= api::MAX_RECORD_BODY || name == "ShareCreateRequest" {
                    // A server may refuse a body longer than it reads before refusing (the
                    // reference server: 1 MiB) by closing the connection (§11.4.1 step 4): the
                    // write then fails instead of the `413` arriving. A shorter one is answered.
                    let body = vec![0x41; limit + 1];
                    let may_close = body.len() > 1 << 20;
                    let mut answer = Err(None);
                    for _ in 0..2 {
                        // Twice: the first may meet a pooled connection the server closed.
                        let sent = http
                            .try_send(method.clone(), &path, token, ct, Some(body.clone()), &[])
                            .await;
                        answer = sent.map_err(Some);
                        if answer.is_ok() {
                            break;
                        }
                    }
                    match answer {
                        Ok(r) => assert_client_error(&r, &what("oversized")),
                        Err(e) => assert!(may_close, "{}: {e:?}", what("oversized")),
                    }
                }
            }
            Payload::Octets => {
                for (case, cty) in [("text/plain", Some("text/plain")), ("none", None)] {
                    let r = http
                        .send(method.clone(), &path, token, cty, Some(vec![1; 10]), &[])
                        .await;
                    assert_client_error(&r, &what(case));
                }
            }
            Payload::Empty if e.method != "GET" => {
                let r = http
                    .send(
                        method.clone(),
                        &path,
                        token,
                        Some(api::CBOR_CONTENT_TYPE),
                        Some(random_bytes(50)),
                        &[],
                    )
                    .await;
                assert_client_error(&r, &what("body where none belongs"));
            }
            _ => {}
        }
    }

    // Invalid bearer tokens are treated as none.
    for bad in [
        "Bearer",
        "Bearer x",
        "Basic abc",
        "Bearer  AAAA",
        &format!("bearer {}", "A".repeat(44)),
    ] {
        let r = http
            .send(
                Method::GET,
                "/v1/root",
                None,
                None,
                None,
                &[("authorization", bad)],
            )
            .await;
        assert_eq!(r.status, 401, "{bad}");
        r.problem();
    }
    // An unknown path and a wrong method.
    assert_eq!(http.get("/v1/nope", user.t()).await.status, 404);
    let r = http.bare(Method::PATCH, "/v1/root", user.t()).await;
    assert_eq!(r.status, 405);

    // Still serving, and the session still works.
    assert!(http.healthy().await);
    http.get("/v1/root", user.t())
        .await
        .ok::<api::NodeResponse>(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_parts() {
    let srv = TestServer::start().await;
    let http = srv.http();
    let user = new_user(&http, "parts").await;
    let (node, _) = user.file_record(&user.root, "f", b"abc", 1);
    let st = user
        .upload_create(&http, &node, user.root.id, PART + 10)
        .await;
    let p0 = format!("/v1/uploads/{}/parts/0", st.upload_id);
    // Longer than the part, shorter than the part, an index past the end, a non-number.
    for (path, len) in [
        (p0.clone(), PART as usize + 1),
        (p0.clone(), 10),
        (format!("/v1/uploads/{}/parts/2", st.upload_id), 10),
        (format!("/v1/uploads/{}/parts/x", st.upload_id), 10),
        (format!("/v1/uploads/{}/parts/-1", st.upload_id), 10),
        (
            format!("/v1/uploads/{}/parts/00000000000000000000001", st.upload_id),
            10,
        ),
    ] {
        let r = http.put_part(&path, user.t(), vec![1; len]).await;
        assert_client_error(&r, &path);
    }
    // Nothing was recorded.
    let s: api::UploadStatus = http
        .get(&format!("/v1/uploads/{}", st.upload_id), user.t())
        .await
        .ok(200);
    assert_eq!(s.present.to_vec(), vec![0]);
    assert!(http.healthy().await);
}

/// A refused body a client writes whole before reading the answer: the refusal comes after the
/// server has read the body, on a connection that stays open. A body a little over its
/// endpoint's limit gets its `413` (not a connection reset mid-write), a part of the wrong
/// length or index its `400`, and the next request is served on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bodies_are_answered_after_they_are_read() {
    let srv = TestServer::start().await;
    let addr = srv.handle.local_addr();
    let limit = <api::RegisterStartRequest as api::Body>::MAX_LEN;
    let head = format!("Content-Type: {}\r\n", api::CBOR_CONTENT_TYPE);
    let first =
        refused_then_served(addr, "POST /v1/accounts/register/start", &head, limit + 1).await;
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");

    let http = srv.http();
    let alice = new_user(&http, "writer").await;
    let (node, ct) = alice.file_record(&alice.root, "parts", &random_bytes(3 * PART as usize), 1);
    let st = alice
        .upload_create(&http, &node, alice.root.id, ct.len() as u64)
        .await;
    let head = format!(
        "Authorization: Bearer {}\r\nContent-Type: {}\r\n",
        alice.token,
        api::OCTET_STREAM_CONTENT_TYPE
    );
    let part = |i: u64| format!("PUT /v1/uploads/{}/parts/{i}", st.upload_id);
    for (what, request, len) in [
        ("one byte short", part(0), PART - 1),
        ("one byte long", part(0), PART + 1),
        ("past the end", part(9), PART),
    ] {
        let len = usize::try_from(len).unwrap();
        let answer = refused_then_served(addr, &request, &head, len).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
    }
}

/// Sends `request` (method and path) with the extra header lines `head` and a body of `len`
/// bytes: the head, a pause in which a server that answers at once would have answered and
/// closed, then the body. Returns the answer, after checking that a second request on the same
/// connection is served.
async fn refused_then_served(
    addr: std::net::SocketAddr,
    request: &str,
    head: &str,
    len: usize,
) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("{request} HTTP/1.1\r\nHost: {addr}\r\n{head}Content-Length: {len}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("head");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for piece in vec![0x41u8; len].chunks(64 * 1024) {
        if let Err(e) = conn.write_all(piece).await {
            let mut early = vec![0u8; 4096];
            let n = tokio::io::AsyncReadExt::read(&mut conn, &mut early)
                .await
                .unwrap_or(0);
            panic!(
                "{request}: the server did not read the body ({e}); it answered {:?}",
                String::from_utf8_lossy(&early[..n])
            );
        }
    }
    let answer = read_response(&mut conn).await;
    conn.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("second request");
    let second = read_response(&mut conn).await;
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "after {answer}: {second}"
    );
    answer
}

/// One response (head and `Content-Length` body) as text.
async fn read_response(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).await.expect("read");
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().expect("length"));
    let mut rest = vec![0u8; len];
    conn.read_exact(&mut rest).await.expect("body");
    buf.extend_from_slice(&rest);
    String::from_utf8_lossy(&buf).into_owned()
}
