//! The client's error type, [`Error`], and its classification into CLI exit codes.

use coffer_core::api::{Problem, ProblemKind};

/// Everything a client operation can fail with.
///
/// The variants separate what the user can act on: a refused login ([`Error::Auth`]), a missing
/// path ([`Error::NotFound`]), a server that broke the protocol or tampered with data
/// ([`Error::Integrity`]), a conflicting concurrent change ([`Error::Conflict`]), an unreachable
/// server ([`Error::Transport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a problem document (spec §11.3).
    #[error("server refused the request: {} ({})", .0.title, .0.detail)]
    Problem(Box<Problem>),
    /// The server answered with an unexpected status or a body that is not a problem document.
    #[error("unexpected server response: HTTP {status}")]
    UnexpectedStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// Not logged in, a wrong password, or a session the server no longer knows.
    #[error("{0}")]
    Auth(String),
    /// The remote path or resource does not exist (or is not visible to this account).
    #[error("not found: {0}")]
    NotFound(String),
    /// The server (or a link) handed out data that fails a signature, commitment, binding or
    /// authentication check: possible tampering. Nothing unverified was written.
    #[error("integrity check failed (possible tampering by the server): {0}")]
    Integrity(String),
    /// A pinned identity changed without a valid rotation chain (spec §6.6): the directory
    /// served another account, a forked chain or a rollback for a user pinned before. Nothing
    /// was shared with or accepted from that identity.
    #[error(
        "IDENTITY OF {user} CHANGED WITHOUT A VALID ROTATION CHAIN: pinned generation \
         {pinned_generation} with fingerprint {pinned}, but the server now serves generation \
         {served_generation} with fingerprint {served}; compare fingerprints with {user} out of \
         band before trusting it"
    )]
    IdentityChanged {
        /// The user name.
        user: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The pinned generation.
        pinned_generation: u64,
        /// The fingerprint of the identity now served.
        served: String,
        /// Its generation.
        served_generation: u64,
    },
    /// A concurrent change, an existing name, or a state that forbids the operation.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Invalid input from the user (a path, a name, an option).
    #[error("{0}")]
    Usage(String),
    /// A local file-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The local state (session file, upload state) is unreadable.
    #[error("local state: {0}")]
    State(String),
    /// A feature that is not available in this build.
    #[error("not implemented: {0}")]
    Unimplemented(&'static str),
    /// A broken internal invariant (a bug in this client); nothing was sent for it.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The documented exit codes of the `coffer` tool (also used by library callers that want the
/// same classification).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any other failure.
    pub const GENERIC: i32 = 1;
    /// Bad command-line usage or input.
    pub const USAGE: i32 = 2;
    /// Authentication failed or needed (log in again).
    pub const AUTH: i32 = 3;
    /// The path or resource does not exist.
    pub const NOT_FOUND: i32 = 4;
    /// Integrity failure: the server or link served data that does not verify.
    pub const INTEGRITY: i32 = 5;
    /// Conflict with the server's state (exists, changed concurrently, link expired...).
    pub const CONFLICT: i32 = 6;
    /// The server is unreachable, overloaded or failing.
    pub const UNAVAILABLE: i32 = 7;
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An integrity failure.
    pub fn integrity(what: impl std::fmt::Display) -> Self {
        Error::Integrity(what.to_string())
    }

    /// The problem kind, when the server answered with a known problem.
    #[must_use]
    pub fn problem_kind(&self) -> Option<ProblemKind> {
        match self {
            Error::Problem(p) => p.kind(),
            _ => None,
        }
    }

    /// The exit code of the `coffer` tool for this error (see [`exit`]).
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Problem(p) => match p.kind() {
                Some(
                    ProblemKind::Unauthenticated
                    | ProblemKind::AuthenticationFailed
                    | ProblemKind::ReauthFailed
                    | ProblemKind::LinkLocked
                    | ProblemKind::LinkUnlockFailed
                    | ProblemKind::Forbidden,
                ) => exit::AUTH,
                Some(ProblemKind::NotFound) => exit::NOT_FOUND,
                Some(
                    ProblemKind::RevisionMismatch
                    | ProblemKind::AlreadyExists
                    | ProblemKind::UsernameTaken
                    | ProblemKind::UploadIncomplete
                    | ProblemKind::LinkExpired
                    | ProblemKind::LinkExhausted
                    | ProblemKind::QuotaExceeded,
                ) => exit::CONFLICT,
                Some(
                    ProblemKind::RateLimited | ProblemKind::Unavailable | ProblemKind::Internal,
                ) => exit::UNAVAILABLE,
                _ => exit::GENERIC,
            },
            Error::UnexpectedStatus { status } if *status >= 500 => exit::UNAVAILABLE,
            Error::UnexpectedStatus { .. } => exit::GENERIC,
            Error::Transport(_) => exit::UNAVAILABLE,
            Error::Auth(_) => exit::AUTH,
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::Integrity(_) | Error::IdentityChanged { .. } => exit::INTEGRITY,
            Error::Conflict(_) => exit::CONFLICT,
            Error::Usage(_) => exit::USAGE,
            Error::Io { .. } | Error::State(_) | Error::Unimplemented(_) | Error::Internal(_) => {
                exit::GENERIC
            }
        }
    }

    /// A one-line hint saying what the user can do about this error, if there is a useful one.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self.exit_code() {
            exit::AUTH => Some("log in again with `coffer login USER`, or check the password"),
            exit::UNAVAILABLE => Some("check --server / COFFER_SERVER and that cofferd is running"),
            exit::INTEGRITY => {
                Some("do not trust this server's data; nothing unverified was written")
            }
            _ => None,
        }
    }
}

impl From<coffer_core::Error> for Error {
    /// Core errors met while opening or verifying what the server sent are integrity failures;
    /// an invalid argument is the caller's input.
    fn from(e: coffer_core::Error) -> Self {
        match e {
            coffer_core::Error::InvalidArgument(what) => Error::Usage(what.to_owned()),
            other => Error::Integrity(other.to_string()),
        }
    }
}

impl From<coffer_core::DecodeError> for Error {
    fn from(e: coffer_core::DecodeError) -> Self {
        Error::Integrity(format!("malformed server data: {e}"))
    }
}
