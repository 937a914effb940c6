//! Errors as RFC 9457 problem details (spec §11.3).
//!
//! Every handler returns `Result<_, ApiError>`. An [`ApiError`] names a [`ProblemKind`], whose
//! status, type URI and title come from `coffer_core::api`; the detail is a fixed or
//! caller-safe text. Server faults are logged (inside the request's span, which carries the
//! request id) and answered with `500 internal` and the detail "internal error" only.

use std::borrow::Cow;
use std::fmt;

use axum::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::api::{Problem, ProblemKind, PROBLEM_CONTENT_TYPE};

/// An error answered as a problem details document.
pub struct ApiError {
    kind: ProblemKind,
    detail: Cow<'static, str>,
    current_revision: Option<u64>,
    retry_after: Option<u64>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("kind", &self.kind.name())
            .field("detail", &self.detail)
            .finish_non_exhaustive()
    }
}

impl ApiError {
    /// A problem of `kind` with a fixed detail text (never a secret or record content).
    #[must_use]
    pub fn new(kind: ProblemKind, detail: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            kind,
            detail: detail.into(),
            current_revision: None,
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// The problem kind.
    #[must_use]
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// `400 malformed-body`.
    #[must_use]
    pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ProblemKind::MalformedBody, detail)
    }

    /// `400 invalid-parameter`.
    #[must_use]
    pub fn invalid_parameter(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ProblemKind::InvalidParameter, detail)
    }

    /// `404 not-found`, identical for "absent" and "not yours" (spec §11.3).
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(ProblemKind::NotFound, "no such resource")
    }

    /// `401 unauthenticated` with `WWW-Authenticate: Bearer realm="coffer"`.
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::new(
            ProblemKind::Unauthenticated,
            "a valid session token is required",
        )
        .with_header(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"coffer\""),
        )
    }

    /// `403 forbidden`.
    #[must_use]
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }

    /// `422 invalid-record`.
    #[must_use]
    pub fn invalid_record(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ProblemKind::InvalidRecord, detail)
    }

    /// `409 revision-mismatch` with `current-revision`.
    #[must_use]
    pub fn revision_mismatch(current: u64) -> Self {
        let mut e = Self::new(
            ProblemKind::RevisionMismatch,
            "the expected revision is not the current one",
        );
        e.current_revision = Some(current);
        e
    }

    /// `429 rate-limited` or `503 unavailable` with `Retry-After` (header and member).
    #[must_use]
    pub fn retry_later(kind: ProblemKind, seconds: u64) -> Self {
        let seconds = seconds.max(1);
        let mut e = Self::new(kind, "retry later");
        e.retry_after = Some(seconds);
        e
    }

    /// `429 rate-limited` after `seconds`.
    #[must_use]
    pub fn rate_limited(seconds: u64) -> Self {
        Self::retry_later(ProblemKind::RateLimited, seconds)
    }

    /// `500 internal`: logs `what` and the error (inside the request span, which carries the
    /// request id); the response says only "internal error".
    #[must_use]
    pub fn internal(what: &str, err: impl fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error: {what}");
        Self::new(ProblemKind::Internal, "internal error")
    }

    /// Adds a response header (`Allow`, `WWW-Authenticate`, `Content-Range`, ...).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets `current-revision`.
    #[must_use]
    pub fn with_current_revision(mut self, current: u64) -> Self {
        self.current_revision = Some(current);
        self
    }

    /// The problem document this error is answered with.
    #[must_use]
    pub fn problem(&self) -> Problem {
        let mut p = Problem::new(self.kind, self.detail.clone().into_owned());
        p.current_revision = self.current_revision;
        p.retry_after = self.retry_after;
        p
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match serde_json::to_vec(&self.problem()) {
            Ok(b) => b,
            Err(_) => br#"{"type":"https://coffer.invalid/problems/internal","title":"Internal server error","status":500,"detail":"internal error"}"#.to_vec(),
        };
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.headers {
            h.append(name, value);
        }
        resp
    }
}

/// Maps a coffer-core error raised while checking a client's record to `422 invalid-record`
/// (decoding, binding, signature, chain); a core error that can only be a server fault
/// (`Internal`) becomes `500`.
#[must_use]
pub fn record_error(what: &'static str, err: &coffer_core::Error) -> ApiError {
    match err {
        coffer_core::Error::Internal(_) => ApiError::internal(what, err),
        _ => ApiError::invalid_record(format!("{what}: {}", err.class())),
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::store::StoreError> for ApiError {
    /// Store outcomes map to their problem types (§11.3); backend failures and contract
    /// violations (`Invalid`: a server bug, the HTTP layer validates first) are `500`.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as S;
        match e {
            S::NotFound => ApiError::not_found(),
            S::RevisionMismatch { current } => ApiError::revision_mismatch(current),
            S::AlreadyExists => ApiError::new(
                ProblemKind::AlreadyExists,
                "the identifier is in use by a different resource",
            ),
            S::UsernameTaken => ApiError::new(
                ProblemKind::UsernameTaken,
                "the username is registered, reserved or retained",
            ),
            S::UploadIncomplete => ApiError::new(
                ProblemKind::UploadIncomplete,
                "parts are missing or do not add up to the total length",
            ),
            S::QuotaExceeded => ApiError::new(
                ProblemKind::QuotaExceeded,
                "the storage quota would be exceeded",
            ),
            S::LimitReached => ApiError::new(
                ProblemKind::QuotaExceeded,
                "a count limit would be exceeded",
            ),
            other => ApiError::internal("store", other),
        }
    }
}
