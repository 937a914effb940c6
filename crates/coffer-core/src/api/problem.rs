//! Errors as RFC 9457 problem details (spec §11.3).

use alloc::string::String;

use serde::{Deserialize, Serialize};

/// The media type of every error response.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// The prefix of every problem type URI; the problem's name follows it.
pub const PROBLEM_TYPE_BASE: &str = "https://coffer.invalid/problems/";

macro_rules! problems {
    ($( $(#[$m:meta])* $variant:ident = ($name:expr, $status:expr, $title:expr) ),+ $(,)?) => {
        /// Every problem type of spec §11.3. The mapping to a status, a type URI and a title is
        /// total and fixed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ProblemKind { $( $(#[$m])* $variant ),+ }

        impl ProblemKind {
            /// Every problem kind, in the order of spec §11.3.
            pub const ALL: &'static [ProblemKind] = &[$( ProblemKind::$variant ),+];

            /// The problem's short name: the last segment of its type URI.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $( ProblemKind::$variant => $name ),+ }
            }

            /// The HTTP status code that always accompanies this problem.
            #[must_use]
            pub const fn status(self) -> u16 {
                match self { $( ProblemKind::$variant => $status ),+ }
            }

            /// The fixed human-readable title.
            #[must_use]
            pub const fn title(self) -> &'static str {
                match self { $( ProblemKind::$variant => $title ),+ }
            }

            /// The type URI: [`PROBLEM_TYPE_BASE`] followed by [`name`](Self::name).
            #[must_use]
            pub const fn type_uri(self) -> &'static str {
                match self { $( ProblemKind::$variant => concat!("https://coffer.invalid/problems/", $name) ),+ }
            }
        }
    };
}

problems! {
    /// The body is not a valid encoding of the expected structure (spec §1.3), or not the
    /// expected structure at all.
    MalformedBody = ("malformed-body", 400, "Malformed request body"),
    /// A path segment, query parameter or header is malformed or out of range.
    InvalidParameter = ("invalid-parameter", 400, "Invalid request parameter"),
    /// An upload part's length is not the length its index requires.
    WrongLength = ("wrong-length", 400, "Wrong part length"),
    /// No session token, or an unknown, expired or revoked one.
    Unauthenticated = ("unauthenticated", 401, "Authentication required"),
    /// An OPAQUE login did not complete: wrong password, unknown user, tampered or stale
    /// messages; deliberately indistinguishable.
    AuthenticationFailed = ("authentication-failed", 401, "Authentication failed"),
    /// The link is password-protected and no valid link access token was presented.
    LinkLocked = ("link-locked", 401, "Link is password-protected"),
    /// The caller can see the resource but may not perform this operation on it.
    Forbidden = ("forbidden", 403, "Forbidden"),
    /// The fresh OPAQUE proof of a sensitive operation failed, expired or was for another
    /// operation.
    ReauthFailed = ("reauth-failed", 403, "Re-authentication failed"),
    /// The link password verifier is wrong.
    LinkUnlockFailed = ("link-unlock-failed", 403, "Wrong link password"),
    /// No such resource, or one the caller may not know about.
    NotFound = ("not-found", 404, "Not found"),
    /// The path exists but not with this method.
    MethodNotAllowed = ("method-not-allowed", 405, "Method not allowed"),
    /// The revision or generation named by the request is not the current one.
    RevisionMismatch = ("revision-mismatch", 409, "Revision mismatch"),
    /// The identifier chosen by the client is already in use by a different resource.
    AlreadyExists = ("already-exists", 409, "Already exists"),
    /// The username is already registered or reserved.
    UsernameTaken = ("username-taken", 409, "Username taken"),
    /// An upload cannot be finalized: parts are missing.
    UploadIncomplete = ("upload-incomplete", 409, "Upload incomplete"),
    /// The link has passed its expiry time.
    LinkExpired = ("link-expired", 410, "Link expired"),
    /// The link has used up its download limit.
    LinkExhausted = ("link-exhausted", 410, "Link download limit reached"),
    /// A part upload without `Content-Length`.
    LengthRequired = ("length-required", 411, "Length required"),
    /// The body is larger than the endpoint's limit.
    PayloadTooLarge = ("payload-too-large", 413, "Payload too large"),
    /// The body's media type is not the one the endpoint takes.
    UnsupportedMediaType = ("unsupported-media-type", 415, "Unsupported media type"),
    /// The `Range` header cannot be satisfied.
    RangeNotSatisfiable = ("range-not-satisfiable", 416, "Range not satisfiable"),
    /// The body decodes, but an embedded record fails the server's checks (signature, ids,
    /// chain, generation, membership).
    InvalidRecord = ("invalid-record", 422, "Invalid record"),
    /// Too many requests; retry after the `Retry-After` delay.
    RateLimited = ("rate-limited", 429, "Too many requests"),
    /// A server fault; nothing was changed.
    Internal = ("internal", 500, "Internal server error"),
    /// The server is shedding load; retry after the `Retry-After` delay.
    Unavailable = ("unavailable", 503, "Service unavailable"),
    /// The account's storage quota would be exceeded.
    QuotaExceeded = ("quota-exceeded", 507, "Storage quota exceeded"),
}

impl ProblemKind {
    /// The kind whose type URI is `uri`, if it is one of spec §11.3.
    #[must_use]
    pub fn from_type_uri(uri: &str) -> Option<Self> {
        let name = uri.strip_prefix(PROBLEM_TYPE_BASE)?;
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether the client may retry the identical request later (`Retry-After` is sent).
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(self, ProblemKind::RateLimited | ProblemKind::Unavailable)
    }
}

/// An RFC 9457 problem details object, serialized as JSON (`application/problem+json`).
///
/// Receivers MUST ignore members they do not know (RFC 9457 §3.2) and MUST classify the problem by
/// `type`, never by `title` or `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type URI.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The fixed title of the type.
    pub title: String,
    /// The HTTP status code, repeated.
    pub status: u16,
    /// A human-readable explanation of this occurrence. Never contains secrets, record contents,
    /// or anything about resources the caller may not know about.
    pub detail: String,
    /// For `revision-mismatch`: the current revision or generation on the server.
    #[serde(
        rename = "current-revision",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_revision: Option<u64>,
    /// For `rate-limited` and `unavailable`: the `Retry-After` delay in seconds, repeated.
    #[serde(
        rename = "retry-after",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    #[must_use]
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: kind.type_uri().into(),
            title: kind.title().into(),
            status: kind.status(),
            detail: detail.into(),
            current_revision: None,
            retry_after: None,
        }
    }

    /// A `revision-mismatch` naming the current revision.
    #[must_use]
    pub fn revision_mismatch(current: u64) -> Self {
        let mut p = Problem::new(
            ProblemKind::RevisionMismatch,
            "the expected revision is not the current one",
        );
        p.current_revision = Some(current);
        p
    }

    /// A retryable problem (`rate-limited` or `unavailable`) with its delay in seconds.
    #[must_use]
    pub fn retry_later(kind: ProblemKind, seconds: u64) -> Self {
        let mut p = Problem::new(kind, "retry later");
        p.retry_after = Some(seconds);
        p
    }

    /// The kind, if `type` is one of spec §11.3 and `status` agrees with it.
    #[must_use]
    pub fn kind(&self) -> Option<ProblemKind> {
        ProblemKind::from_type_uri(&self.type_uri).filter(|k| k.status() == self.status)
    }
}
