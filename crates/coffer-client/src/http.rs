//! The transport of spec §11: CBOR bodies over HTTP, problem documents mapped to [`Error`],
//! bearer credentials, and bounded retries.
//!
//! Everything here is protocol-agnostic plumbing: it never builds or opens a record. Retries
//! follow spec §11.4.4: `429`/`503` are retried after `Retry-After` (at most
//! [`MAX_ATTEMPTS`] attempts, exponential backoff with jitter); a broken connection is retried only
//! for requests the caller marks as safe to replay ([`Retry::Idempotent`]), which are `GET`,
//! `PUT` of an upload part, and mutations whose replay the server answers identically.

use std::time::Duration;

use bytes::Bytes;
use coffer_core::api::{self, Body, Problem, ProblemKind};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The most attempts of one request (spec §11.4.4: "SHOULD give up after 8 attempts").
pub const MAX_ATTEMPTS: u32 = 8;
/// The most attempts of one request whose connection failed.
pub const MAX_TRANSPORT_ATTEMPTS: u32 = 3;
/// The longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A bearer credential: a session token or a link access token (spec §11.2), kept as its
/// base64url text, zeroized on drop and never printed.
#[derive(Clone)]
pub struct Bearer(Zeroizing<String>);

impl Bearer {
    /// A bearer credential from the base64url text of a token.
    #[must_use]
    pub fn from_b64(text: String) -> Self {
        Bearer(Zeroizing::new(text))
    }

    /// The base64url text (for persisting it in the session file only).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn header(&self) -> Result<HeaderValue> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0.as_str()))
            .map_err(|_| Error::State("malformed bearer token".into()))?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(<redacted>)")
    }
}

/// Whether a request may be sent again after the connection broke mid-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Safe to replay (a read, a part upload, a mutation the server answers identically on
    /// replay, spec §11.4.4).
    Idempotent,
    /// A handshake step (login, registration, re-authentication): retried only after
    /// `429`/`503`, which the server answers before doing anything.
    Once,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Payload {
    /// No body.
    Empty,
    /// A CBOR body (already encoded).
    Cbor(Vec<u8>),
    /// Ciphertext (`application/octet-stream`).
    Octets(Bytes),
}

/// An HTTP client bound to one server's base URL.
#[derive(Clone, Debug)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`Error::Usage`] for a URL that is not `http://` or `https://`; [`Error::Transport`] if the
    /// HTTP client cannot be built.
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "server URL {base:?} must start with http:// or https://"
            )));
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()?;
        Ok(Http { base, client })
    }

    /// The base URL, without a trailing slash.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the successful response (any 2xx or 304), unread; a problem
    /// document becomes [`Error::Problem`] (or a more specific variant), anything else
    /// [`Error::UnexpectedStatus`].
    ///
    /// # Errors
    /// As above, and [`Error::Transport`] when the server stays unreachable.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&Bearer>,
        payload: Payload,
        headers: HeaderMap,
        retry: Retry,
    ) -> Result<Response> {
        let url = format!("{}{}", self.base, path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut rb = self
                .client
                .request(method.clone(), &url)
                .headers(headers.clone());
            if let Some(b) = bearer {
                rb = rb.header(AUTHORIZATION, b.header()?);
            }
            rb = match &payload {
                Payload::Empty => rb,
                Payload::Cbor(v) => rb
                    .header(CONTENT_TYPE, api::CBOR_CONTENT_TYPE)
                    .body(v.clone()),
                Payload::Octets(b) => rb
                    .header(CONTENT_TYPE, api::OCTET_STREAM_CONTENT_TYPE)
                    .body(b.clone()),
            };
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    // A refused connection never reached the server; anything else did only if
                    // the request was sent, so replay only what is safe to replay.
                    let replay = e.is_connect() || retry == Retry::Idempotent;
                    if replay && attempt < MAX_TRANSPORT_ATTEMPTS && !e.is_builder() {
                        tokio::time::sleep(backoff(attempt, None)).await;
                        continue;
                    }
                    return Err(Error::Transport(e));
                }
            };
            let status = resp.status();
            if status.is_success() || status == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let err = problem_of(resp).await;
            if let Error::Problem(p) = &err {
                if p.kind().is_some_and(ProblemKind::is_retryable) && attempt < MAX_ATTEMPTS {
                    tokio::time::sleep(backoff(attempt, p.retry_after)).await;
                    continue;
                }
            }
            return Err(err);
        }
    }

    /// `GET` of a CBOR body.
    ///
    /// # Errors
    /// As [`Http::send`], and [`Error::Integrity`] for a body that does not decode as `T`.
    pub async fn get<T: Body>(&self, path: &str, bearer: Option<&Bearer>) -> Result<T> {
        let r = self
            .send(
                Method::GET,
                path,
                bearer,
                Payload::Empty,
                HeaderMap::new(),
                Retry::Idempotent,
            )
            .await?;
        decode_body(r).await
    }

    /// A CBOR request with a CBOR response.
    ///
    /// # Errors
    /// As [`Http::send`], and [`Error::Integrity`] for a body that does not decode as `T`.
    pub async fn call<B: Body, T: Body>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&Bearer>,
        body: &B,
        retry: Retry,
    ) -> Result<T> {
        let r = self
            .send(
                method,
                path,
                bearer,
                Payload::Cbor(body.to_bytes()),
                HeaderMap::new(),
                retry,
            )
            .await?;
        decode_body(r).await
    }

    /// `POST` of a CBOR body with a CBOR response.
    ///
    /// # Errors
    /// As [`Http::call`].
    pub async fn post<B: Body, T: Body>(
        &self,
        path: &str,
        bearer: Option<&Bearer>,
        body: &B,
        retry: Retry,
    ) -> Result<T> {
        self.call(Method::POST, path, bearer, body, retry).await
    }

    /// `PUT` of a CBOR body with a CBOR response.
    ///
    /// # Errors
    /// As [`Http::call`].
    pub async fn put<B: Body, T: Body>(
        &self,
        path: &str,
        bearer: Option<&Bearer>,
        body: &B,
    ) -> Result<T> {
        self.call(Method::PUT, path, bearer, body, Retry::Idempotent)
            .await
    }

    /// A request whose success has no body (`204`): `payload` is sent as is.
    ///
    /// # Errors
    /// As [`Http::send`].
    pub async fn no_content(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&Bearer>,
        payload: Payload,
        retry: Retry,
    ) -> Result<()> {
        self.send(method, path, bearer, payload, HeaderMap::new(), retry)
            .await?;
        Ok(())
    }

    /// `DELETE` with an optional CBOR body and a CBOR response. A retried `DELETE` that meets
    /// `404` is *not* turned into success here; callers that retry decide.
    ///
    /// # Errors
    /// As [`Http::call`].
    pub async fn delete<B: Body, T: Body>(
        &self,
        path: &str,
        bearer: Option<&Bearer>,
        body: &B,
    ) -> Result<T> {
        self.call(Method::DELETE, path, bearer, body, Retry::Idempotent)
            .await
    }

    /// `PUT` of raw ciphertext (an upload part) with a CBOR response.
    ///
    /// # Errors
    /// As [`Http::call`].
    pub async fn put_octets<T: Body>(
        &self,
        path: &str,
        bearer: Option<&Bearer>,
        bytes: Bytes,
    ) -> Result<T> {
        let r = self
            .send(
                Method::PUT,
                path,
                bearer,
                Payload::Octets(bytes),
                HeaderMap::new(),
                Retry::Idempotent,
            )
            .await?;
        decode_body(r).await
    }

    /// `GET` of ciphertext, optionally a byte range `first..=last` (`last` `None`: to the end)
    /// pinned to `if_range` (an ETag), returning the response for the caller to stream.
    ///
    /// # Errors
    /// As [`Http::send`]; [`Error::Integrity`] if a range was asked and the server answered
    /// with something else than `206` with the asked range, or `200` without `If-Range`.
    pub async fn get_octets(
        &self,
        path: &str,
        bearer: Option<&Bearer>,
        range: Option<(u64, Option<u64>)>,
        if_range: Option<&str>,
    ) -> Result<Response> {
        let mut headers = HeaderMap::new();
        if let Some((first, last)) = range {
            let v = match last {
                Some(l) => format!("bytes={first}-{l}"),
                None => format!("bytes={first}-"),
            };
            headers.insert(
                reqwest::header::RANGE,
                HeaderValue::from_str(&v).map_err(|_| Error::Usage("bad range".into()))?,
            );
            if let Some(tag) = if_range {
                headers.insert(
                    reqwest::header::IF_RANGE,
                    HeaderValue::from_str(tag).map_err(|_| Error::integrity("malformed ETag"))?,
                );
            }
        }
        self.send(
            Method::GET,
            path,
            bearer,
            Payload::Empty,
            headers,
            Retry::Idempotent,
        )
        .await
    }
}

/// The delay before attempt `attempt + 1`: `Retry-After` when given, else exponential from
/// 100 ms; with up to 25 % jitter; at most [`MAX_BACKOFF`].
fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    let base = match retry_after {
        Some(s) => Duration::from_secs(s),
        None => Duration::from_millis(100u64 << attempt.min(8)),
    };
    let mut b = [0u8; 2];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let jitter = base.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 4.0);
    (base + jitter).min(MAX_BACKOFF)
}

/// Decodes a successful response's CBOR body as `T`, checking its media type.
///
/// # Errors
/// [`Error::Integrity`] for another media type or a body that does not decode.
pub async fn decode_body<T: Body>(resp: Response) -> Result<T> {
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if ct != api::CBOR_CONTENT_TYPE {
        return Err(Error::integrity(format!(
            "server sent {ct:?} where {} was expected",
            T::NAME
        )));
    }
    let bytes = read_limited(resp, T::MAX_LEN).await?;
    T::from_bytes(&bytes)
        .map_err(|e| Error::integrity(format!("malformed {} from the server: {e}", T::NAME)))
}

/// Reads a body of at most `max` bytes (more is refused without reading further).
async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > max {
            return Err(Error::integrity("server response over the body limit"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Turns an error response into an [`Error`]: a problem document into [`Error::Problem`] (with
/// `401`s into [`Error::Auth`] and `404`s into [`Error::NotFound`] left to callers, who know what
/// was not found), anything else into [`Error::UnexpectedStatus`].
async fn problem_of(resp: Response) -> Error {
    let status = resp.status().as_u16();
    let is_problem = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == api::PROBLEM_CONTENT_TYPE);
    if !is_problem {
        return Error::UnexpectedStatus { status };
    }
    match read_limited(resp, api::MAX_SMALL_BODY).await {
        Ok(body) => match serde_json::from_slice::<Problem>(&body) {
            Ok(p) if p.status == status => Error::Problem(Box::new(p)),
            _ => Error::UnexpectedStatus { status },
        },
        Err(e) => e,
    }
}
