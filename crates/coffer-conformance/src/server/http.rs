//! The suite's HTTP layer: one request at a time, whole responses, `429`/`503` retried after
//! `Retry-After` (spec §11.4.4), and response checks that turn every mismatch into a [`Failure`].

use std::fmt;
use std::time::{Duration, Instant};

use coffer_core::api::{self, Body, Problem, ProblemKind};
use reqwest::Method;

/// Why a check failed: a human-readable reason, printed after `FAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of one step of a check.
pub type R<T> = Result<T, Failure>;

/// Builds a [`Failure`] from format arguments.
#[macro_export]
#[doc(hidden)]
macro_rules! fail {
    ($($t:tt)*) => { $crate::server::http::Failure(format!($($t)*)) };
}

/// Fails the current check unless the condition holds.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure {
    ($c:expr, $($t:tt)*) => {
        if !$c {
            return Err($crate::fail!($($t)*));
        }
    };
}

/// Maps any displayable error (coffer-core's, reqwest's) to a [`Failure`] with context.
pub trait Context<T> {
    /// Prefixes the error with `what`.
    fn ctx(self, what: &str) -> R<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> R<T> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// A short description of what came back, for failure messages.
    pub fn describe(&self) -> String {
        let what = self.describe_body();
        if self.status == 429 || self.status == 503 {
            let after = self.header("retry-after").unwrap_or_else(|| "?".into());
            return format!(
                "{what} [Retry-After {after} s is beyond --max-wait: the server's limits are \
                 below what the suite needs, spec/conformance.md §C.7.3]"
            );
        }
        what
    }

    fn describe_body(&self) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        if ct.starts_with(api::PROBLEM_CONTENT_TYPE) {
            if let Ok(p) = serde_json::from_slice::<Problem>(&self.body) {
                let name = p
                    .type_uri
                    .strip_prefix(api::PROBLEM_TYPE_BASE)
                    .unwrap_or(&p.type_uri);
                return format!("{} {name} ({})", self.status, clip(&p.detail));
            }
        }
        if ct == api::CBOR_CONTENT_TYPE || ct == api::OCTET_STREAM_CONTENT_TYPE {
            return format!("{} {ct}, {} bytes", self.status, self.body.len());
        }
        format!(
            "{} {ct} {:?}",
            self.status,
            clip(&String::from_utf8_lossy(&self.body))
        )
    }

    /// The body as `T`, after checking the status and the content type.
    pub fn ok<T: Body>(&self, status: u16) -> R<T> {
        self.status_is(status)?;
        let ct = self.header("content-type");
        ensure!(
            ct.as_deref() == Some(api::CBOR_CONTENT_TYPE),
            "expected Content-Type {}, got {ct:?}",
            api::CBOR_CONTENT_TYPE
        );
        T::from_bytes(&self.body).ctx("the response body does not decode")
    }

    /// Checks the status only.
    pub fn status_is(&self, status: u16) -> R<()> {
        ensure!(
            self.status == status,
            "expected {status}, got {}",
            self.describe()
        );
        Ok(())
    }

    /// Checks that this is a consistent problem document of spec §11.3 and returns it.
    pub fn any_problem(&self) -> R<Problem> {
        ensure!(
            self.status >= 400,
            "expected a problem, got {}",
            self.describe()
        );
        let ct = self.header("content-type");
        ensure!(
            ct.as_deref() == Some(api::PROBLEM_CONTENT_TYPE),
            "status {}: expected Content-Type {}, got {ct:?}",
            self.status,
            api::PROBLEM_CONTENT_TYPE
        );
        let p: Problem = serde_json::from_slice(&self.body).ctx("problem document is not JSON")?;
        ensure!(
            p.status == self.status,
            "problem status {} differs from the HTTP status {}",
            p.status,
            self.status
        );
        let kind = ProblemKind::from_type_uri(&p.type_uri)
            .ok_or_else(|| fail!("unknown problem type {}", p.type_uri))?;
        ensure!(
            kind.status() == p.status,
            "problem type {} with status {} (the table says {})",
            kind.name(),
            p.status,
            kind.status()
        );
        ensure!(
            p.title == kind.title(),
            "problem title {:?}, expected {:?}",
            p.title,
            kind.title()
        );
        Ok(p)
    }

    /// Checks for the problem `kind` (status, type, document).
    pub fn problem(&self, kind: ProblemKind) -> R<Problem> {
        ensure!(
            self.status == kind.status(),
            "expected {} {}, got {}",
            kind.status(),
            kind.name(),
            self.describe()
        );
        let p = self.any_problem()?;
        ensure!(
            p.kind() == Some(kind),
            "expected {}, got {}",
            kind.name(),
            p.type_uri
        );
        Ok(p)
    }

    /// Checks for a 4xx problem document (any type): bad input is the client's fault, never a
    /// server error.
    pub fn client_error(&self) -> R<Problem> {
        ensure!(
            (400..500).contains(&self.status),
            "expected a 4xx problem, got {}",
            self.describe()
        );
        self.any_problem()
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('\n', " ")
}

/// An HTTP client bound to one server.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
    max_wait: Duration,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path (and query), starting with `/`.
    pub path: &'a str,
    /// The bearer token.
    pub token: Option<&'a str>,
    /// The `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// Other headers.
    pub headers: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// A request without body.
    pub fn new(method: Method, path: &'a str, token: Option<&'a str>) -> Self {
        Request {
            method,
            path,
            token,
            content_type: None,
            body: None,
            headers: &[],
        }
    }

    /// With a body of `content_type`.
    #[must_use]
    pub fn body(mut self, content_type: Option<&'a str>, body: Vec<u8>) -> Self {
        self.content_type = content_type;
        self.body = Some(body);
        self
    }

    /// With extra headers.
    #[must_use]
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }
}

impl Http {
    /// A client of the server at `base` (`http://host:port`, no `/v1`); `429` and `503` answers
    /// are retried after their `Retry-After` as long as the total wait for one request stays
    /// within `max_wait`.
    pub fn new(base: &str, max_wait: Duration) -> R<Http> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .ctx("building the HTTP client")?;
        Ok(Http {
            base: base.trim_end_matches('/').to_owned(),
            client,
            max_wait,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn once(&self, r: &Request<'_>) -> reqwest::Result<Resp> {
        let mut rb = self
            .client
            .request(r.method.clone(), format!("{}{}", self.base, r.path));
        if let Some(t) = r.token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = r.content_type {
            rb = rb.header("content-type", ct);
        }
        for (k, v) in r.headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = &r.body {
            rb = rb.body(b.clone());
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Sends a request. A transport error is retried once on a new connection (a server may
    /// answer a refused body early and close the connection); `429` and `503` are retried after
    /// `Retry-After` within the wait budget, and otherwise returned as they are.
    pub async fn send(&self, r: Request<'_>) -> R<Resp> {
        let start = Instant::now();
        loop {
            let resp = match self.once(&r).await {
                Ok(resp) => resp,
                Err(_) => self
                    .once(&r)
                    .await
                    .ctx(&format!("{} {}", r.method, r.path))?,
            };
            if resp.status == 429 || resp.status == 503 {
                let secs = resp
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(secs) = secs {
                    let wait = Duration::from_secs(secs.max(1));
                    if start.elapsed() + wait <= self.max_wait {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> R<Resp> {
        self.send(Request::new(Method::GET, path, token)).await
    }

    /// `GET path` with extra headers.
    pub async fn get_h(&self, path: &str, token: Option<&str>, h: &[(&str, &str)]) -> R<Resp> {
        self.send(Request::new(Method::GET, path, token).headers(h))
            .await
    }

    /// A request carrying a CBOR body.
    pub async fn cbor<B: Body>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> R<Resp> {
        self.send(
            Request::new(method, path, token).body(Some(api::CBOR_CONTENT_TYPE), body.to_bytes()),
        )
        .await
    }

    /// `POST path` with a CBOR body.
    pub async fn post<B: Body>(&self, path: &str, token: Option<&str>, body: &B) -> R<Resp> {
        self.cbor(Method::POST, path, token, body).await
    }

    /// A request with no body.
    pub async fn bare(&self, method: Method, path: &str, token: Option<&str>) -> R<Resp> {
        self.send(Request::new(method, path, token)).await
    }

    /// `PUT` of an upload part.
    pub async fn put_part(&self, path: &str, token: Option<&str>, bytes: Vec<u8>) -> R<Resp> {
        self.send(
            Request::new(Method::PUT, path, token)
                .body(Some(api::OCTET_STREAM_CONTENT_TYPE), bytes),
        )
        .await
    }
}
