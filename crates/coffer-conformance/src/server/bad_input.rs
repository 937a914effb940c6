//! Bad input on every endpoint of the index (spec §11.20): garbage, truncated, non-canonical
//! and oversized bodies, another structure, wrong content types, bodies where none belong,
//! malformed path segments, undefined query parameters, malformed bearer tokens. Every answer is
//! the 4xx problem document the processing order of §11.4.1 names, never a 5xx, and the server
//! keeps serving.

use coffer_core::api::{self, Auth, Payload, ProblemKind, ENDPOINTS};
use coffer_core::ids::NodeId;
use reqwest::Method;

use super::client;
use super::http::{Request, Resp};
use super::{Abort, Ctx, Fixture};
use crate::{ensure, fail};

/// Fills a path template: link ids with `links` (`[folder, drop]`), other ids with `id`.
fn fill(template: &str, id: &str, links: &[String; 2]) -> String {
    let drop_link = template.contains("/drops") || template.contains("/uploads");
    template
        .split('/')
        .map(|seg| match seg {
            "{username}" => "nobody-here".to_owned(),
            "{index}" => "0".to_owned(),
            "{link-id}" if drop_link => links[1].clone(),
            "{link-id}" => links[0].clone(),
            s if s.starts_with('{') => id.to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn example(name: &str) -> Option<Vec<u8>> {
    api::BODIES
        .iter()
        .find(|b| b.name == name)
        .map(|b| (b.example)())
}

fn limit_of(name: &str) -> usize {
    api::BODIES
        .iter()
        .find(|b| b.name == name)
        .map_or(api::MAX_SMALL_BODY, |b| b.max_len)
}

/// Invalid CBOR for every structure: non-minimal integers, indefinite lengths, a map, a tag, a
/// float, a huge declared length.
fn non_canonical() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "a non-minimal integer",
            vec![0x83, 0x18, 0x81, 0x01, 0x18, 0x07],
        ),
        (
            "an indefinite-length array",
            vec![0x9f, 0x18, 0x81, 0x01, 0x07, 0xff],
        ),
        ("a map", vec![0xa1, 0x01, 0x02]),
        ("a tag", vec![0xc1, 0x83, 0x18, 0x81, 0x01, 0x07]),
        ("a float", vec![0x83, 0x18, 0x81, 0x01, 0xf9, 0x3c, 0x00]),
        (
            "a huge declared length",
            vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ]
}

/// Checks one answer: the expected problem kind, or (`None`) any 4xx problem.
fn expect(r: &Resp, kind: Option<ProblemKind>, case: &str) -> Result<(), String> {
    let res = match kind {
        Some(k) => r.problem(k).map(drop),
        None => r.client_error().map(drop),
    };
    res.map_err(|e| format!("{case}: {e}"))
}

/// Runs the area.
pub async fn run(c: &mut Ctx<'_>, fx: &Fixture) -> Result<(), Abort> {
    let http = &fx.http;
    // A session of its own, so that a server that wrongly acts on bad input cannot end the
    // session the other areas use.
    let r = async {
        let me = client::login(http, &fx.sid, &fx.alice.name, &fx.alice.password).await?;
        let folder = me.mkdir(http, &me.root, "bad-input").await?;
        let fl = me
            .make_link(http, &folder, &coffer_core::link::LinkOptions::default())
            .await?;
        let dl = me
            .make_link(
                http,
                &folder,
                &coffer_core::link::LinkOptions {
                    upload_only: true,
                    ..Default::default()
                },
            )
            .await?;
        Ok((me, [fl.id.to_string(), dl.id.to_string()]))
    }
    .await;
    let (me, links) = c.need(
        "set up a session, a folder link and a drop link",
        "§11.6.3, §11.11",
        r,
    )?;
    let id = NodeId::generate(&mut rand_core::OsRng).to_string();
    let other = api::NodeDeleteRequest {
        expected_revision: 7,
    };
    let other = api::Body::to_bytes(&other);
    let cbor = Some(api::CBOR_CONTENT_TYPE);

    for e in ENDPOINTS {
        if matches!(e.auth, Auth::Operator) || e.path == "/healthz" {
            continue;
        }
        let method = match Method::from_bytes(e.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let token = match e.auth {
            Auth::Session | Auth::SessionOfAccount | Auth::SessionAndProof => me.t(),
            _ => None,
        };
        let path = fill(e.path, &id, &links);
        let mut errors: Vec<String> = Vec::new();
        let mut cases: Vec<Case> = Vec::new();

        // Malformed path parameters.
        if e.path.contains("-id}") {
            for bad in [
                "short",
                "AAAAAAAAAAAAAAAAAAAAAA==",
                "AAAAAAAAAAAAAAAAAAAAA!",
                "AAAAAAAAAAAAAAAAAAAAAAA",
            ] {
                let p = fill(e.path, bad, &[bad.to_owned(), bad.to_owned()]);
                cases.push(Case::new(
                    format!("path id {bad:?}"),
                    p,
                    ProblemKind::InvalidParameter,
                ));
            }
        }
        cases.push(Case::new(
            "an undefined query parameter".into(),
            format!("{path}?bogus=1"),
            ProblemKind::InvalidParameter,
        ));
        let p = &path;
        match e.request {
            Payload::Body(name) => {
                let own = example(name).unwrap_or_default();
                let mut bodies: Vec<(String, Vec<u8>)> = vec![
                    ("an empty body".into(), vec![]),
                    ("garbage".into(), client::random_bytes(200)),
                    (
                        "a truncated body".into(),
                        own[..own.len().saturating_sub(1)].to_vec(),
                    ),
                    ("trailing bytes".into(), [own.clone(), vec![0]].concat()),
                ];
                if name != "NodeDeleteRequest" {
                    bodies.push(("another structure".into(), other.clone()));
                }
                for (what, b) in non_canonical() {
                    bodies.push((what.into(), b));
                }
                for (what, b) in bodies {
                    cases
                        .push(Case::new(what, p.clone(), ProblemKind::MalformedBody).body(cbor, b));
                }
                for ct in ["text/plain", "application/json", "application/octet-stream"] {
                    cases.push(
                        Case::new(
                            format!("Content-Type {ct}"),
                            p.clone(),
                            ProblemKind::UnsupportedMediaType,
                        )
                        .body(Some(ct), own.clone()),
                    );
                }
                cases.push(
                    Case::new(
                        "no Content-Type".into(),
                        p.clone(),
                        ProblemKind::UnsupportedMediaType,
                    )
                    .body(None, own.clone()),
                );
                let limit = limit_of(name);
                if limit <= api::MAX_RECORD_BODY || name == "ShareCreateRequest" {
                    cases.push(
                        Case::new(
                            format!("a body of {} bytes (limit {limit})", limit + 1),
                            p.clone(),
                            ProblemKind::PayloadTooLarge,
                        )
                        .body(cbor, vec![0x41; limit + 1]),
                    );
                }
            }
            Payload::Octets => {
                for (what, ct) in [
                    ("Content-Type text/plain", Some("text/plain")),
                    ("no Content-Type", None),
                ] {
                    cases.push(
                        Case::new(what.into(), p.clone(), ProblemKind::UnsupportedMediaType)
                            .body(ct, vec![1; 10]),
                    );
                }
            }
            Payload::Empty if e.method != "GET" => {
                cases.push(
                    Case::new(
                        "a body where none belongs".into(),
                        p.clone(),
                        ProblemKind::MalformedBody,
                    )
                    .body(cbor, client::random_bytes(50)),
                );
            }
            _ => {}
        }
        for case in cases {
            // A server may answer an oversized body with 413 as soon as it sees its length and
            // close the connection without reading the rest (RFC 9110 §15.5.14); the client's
            // write then fails before it reads the answer. Such a transport failure is retried
            // a few times; an answer, once read, is judged as it is.
            let attempts = if case.kind == ProblemKind::PayloadTooLarge {
                4
            } else {
                1
            };
            let mut outcome = None;
            for _ in 0..attempts {
                let mut req = Request::new(method.clone(), &case.path, token);
                if let Some(b) = &case.body {
                    req = req.body(case.content_type, b.clone());
                }
                match http.send(req).await {
                    Ok(r) => {
                        outcome = Some(expect(&r, Some(case.kind), &case.what));
                        break;
                    }
                    Err(f) => outcome = Some(Err(format!("{}: {f}", case.what))),
                }
            }
            if let Some(Err(why)) = outcome {
                errors.push(why);
            }
        }
        let r = if errors.is_empty() {
            Ok(())
        } else {
            Err(fail!("{}", errors.join("; ")))
        };
        c.check(
            &format!(
                "{} {}: bad input gets the 4xx problem of §11.4.1",
                e.method, e.path
            ),
            "§11.1, §11.3, §11.4.1, §11.4.2",
            r,
        );
    }

    let r = async {
        for bad in [
            "Bearer".to_owned(),
            "Bearer x".to_owned(),
            "Basic abc".to_owned(),
            format!("Bearer  {}", &me.token),
            format!("Bearer {}=", &me.token),
            format!("Bearer {}A", &me.token),
        ] {
            let h = [("authorization", bad.as_str())];
            let r = http
                .send(Request::new(Method::GET, "/v1/root", None).headers(&h))
                .await?;
            r.problem(ProblemKind::Unauthenticated)
                .map_err(|e| fail!("Authorization: {bad:?}: {e}"))?;
        }
        let lower = format!("bearer {}", &me.token);
        let h = [("authorization", lower.as_str())];
        http.send(Request::new(Method::GET, "/v1/root", None).headers(&h))
            .await?
            .status_is(200)
            .map_err(|e| fail!("the scheme name is case-insensitive: {e}"))?;
        Ok(())
    }
    .await;
    c.check(
        "malformed bearer credentials are treated as none (401); the scheme is case-insensitive",
        "§11.2.1",
        r,
    );
    let r = async {
        http.get("/v1/no-such-endpoint", me.t())
            .await?
            .problem(ProblemKind::NotFound)?;
        let r = http.bare(Method::PATCH, "/v1/root", me.t()).await?;
        r.problem(ProblemKind::MethodNotAllowed)?;
        ensure!(r.header("allow").is_some(), "405 without Allow");
        Ok(())
    }
    .await;
    c.check(
        "an unknown path is 404, a wrong method 405 with Allow",
        "§11.3, §11.4.1",
        r,
    );
    let r = async {
        http.get("/healthz", None).await?.status_is(200)?;
        http.get("/v1/root", me.t()).await?.status_is(200)?;
        let s: api::SessionList = http.get("/v1/sessions", me.t()).await?.ok(200)?;
        ensure!(!s.sessions.is_empty(), "no sessions");
        Ok(())
    }
    .await;
    c.check(
        "after all of it the server serves and the session works",
        "§11.12",
        r,
    );
    let _ = http.bare(Method::POST, "/v1/sessions/logout", me.t()).await;
    Ok(())
}

/// One bad request and the problem it must get.
struct Case {
    what: String,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    kind: ProblemKind,
}

impl Case {
    fn new(what: String, path: String, kind: ProblemKind) -> Case {
        Case {
            what,
            path,
            content_type: None,
            body: None,
            kind,
        }
    }

    fn body(mut self, content_type: Option<&'static str>, body: Vec<u8>) -> Case {
        self.content_type = content_type;
        self.body = Some(body);
        self
    }
}
