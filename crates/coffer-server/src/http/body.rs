//! CBOR request and response bodies (spec §11.1, §11.4.1 steps 4–5, §11.4.2).
//!
//! [`Cbor<T>`] extracts one request body: the media type must be `application/cbor` (`415`),
//! the body must fit `T::MAX_LEN` (`413`, decided from `Content-Length` before reading, and
//! enforced while reading a body without one; a declared body up to 1 MiB is read and discarded
//! first, so that the client gets the answer), and it must decode with `T::from_bytes`, the
//! strict decoder that also applies the structural rules (`400 malformed-body`).
//! [`NoBody`] enforces "no body" endpoints. [`CborResponse`] writes a body.
//!
//! Extractors run in argument order, so handlers take the authentication extractor first and
//! the body last, giving the order of checks of §11.4.1.

use axum::body::Body as AxumBody;
use axum::extract::{FromRequest, Request};
use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::api::{Body, ProblemKind, CBOR_CONTENT_TYPE};

use super::error::ApiError;

/// A decoded CBOR request body of type `T`.
#[derive(Debug)]
pub struct Cbor<T>(pub T);

/// Checks that the request's media type is `mime` (parameters are not permitted; the type is
/// compared case-insensitively).
///
/// # Errors
/// `415 unsupported-media-type`.
pub fn require_media_type(headers: &HeaderMap, mime: &str) -> Result<(), ApiError> {
    let ok = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            format!("the body must be {mime}"),
        ))
    }
}

/// The declared `Content-Length`, if any.
///
/// # Errors
/// `400 invalid-parameter` for a malformed header.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter("malformed Content-Length")),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ProblemKind::PayloadTooLarge,
        format!("the body exceeds this endpoint's limit of {limit} bytes"),
    )
}

/// A refused body declared at most this long is still read (and discarded) before the refusal
/// is sent: hyper closes a connection whose request body was left unread, and a client that
/// writes its whole body before reading the answer (most HTTP/1.1 clients) then meets a reset
/// connection instead of the `413` or `400`. A longer body is not read.
const DRAIN_MAX: u64 = 1 << 20;

/// Before a refusal decided from the headers: reads `body`, declared `declared` bytes long, to
/// its end and keeps nothing, if it is at most [`DRAIN_MAX`] longer than `accepted` (what the
/// caller would accept from this client anyway, such as a part of its upload; 0 for none).
/// hyper stops a body at its declared length.
pub(crate) async fn discard_declared(declared: u64, mut body: AxumBody, accepted: u64) {
    use http_body_util::BodyExt as _;
    if declared <= accepted.saturating_add(DRAIN_MAX) {
        while let Some(Ok(_)) = body.frame().await {}
    }
}

/// Reads a whole body of at most `limit` bytes.
///
/// # Errors
/// `413 payload-too-large` when the body is (or is declared) longer; `400 malformed-body` when
/// the client aborts it.
pub async fn read_limited(
    headers: &HeaderMap,
    body: AxumBody,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = content_length(headers)? {
        if len > limit as u64 {
            discard_declared(len, body, 0).await;
            return Err(too_large(limit));
        }
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            // `to_bytes` reports the limit as a `LengthLimitError` in the error's source chain.
            let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = src {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large(limit));
                }
                src = s.source();
            }
            return Err(ApiError::malformed("the request body could not be read"));
        }
    };
    Ok(bytes)
}

impl<S, T> FromRequest<S> for Cbor<T>
where
    S: Send + Sync,
    T: Body + Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        require_media_type(&parts.headers, CBOR_CONTENT_TYPE)?;
        let bytes = read_limited(&parts.headers, body, T::MAX_LEN).await?;
        T::from_bytes(&bytes).map(Cbor).map_err(|e| {
            ApiError::malformed(format!(
                "the body is not a valid {} ({})",
                T::NAME,
                coffer_core::Error::from(e).class()
            ))
        })
    }
}

/// The empty body of a "no body" endpoint; anything else is `400 malformed-body`.
#[derive(Debug, Clone, Copy)]
pub struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, 0)
            .await
            .map_err(|_| ApiError::malformed("this endpoint takes no body"))?;
        if bytes.is_empty() {
            Ok(NoBody)
        } else {
            Err(ApiError::malformed("this endpoint takes no body"))
        }
    }
}

/// A CBOR response body with its status; always `Cache-Control: no-store`.
#[derive(Debug)]
pub struct CborResponse<T>(pub StatusCode, pub T);

impl<T: Body> CborResponse<T> {
    /// `200 OK` with `body`.
    pub fn ok(body: T) -> Self {
        CborResponse(StatusCode::OK, body)
    }

    /// `201 Created` with `body`.
    pub fn created(body: T) -> Self {
        CborResponse(StatusCode::CREATED, body)
    }
}

impl<T: Body> IntoResponse for CborResponse<T> {
    fn into_response(self) -> Response {
        let bytes = self.1.to_bytes();
        if bytes.len() > T::MAX_LEN {
            // Never send what a conforming client must refuse (§11.4.2).
            return ApiError::internal(
                "response over its limit",
                format_args!("{} of {} bytes", T::NAME, bytes.len()),
            )
            .into_response();
        }
        let mut resp = (self.0, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(CBOR_CONTENT_TYPE));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// `204 No Content` with `Cache-Control: no-store`.
#[must_use]
pub fn no_content() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
