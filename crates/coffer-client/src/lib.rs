//! `coffer-client`: the Coffer client library (spec §11 over HTTP, thin over `coffer-core`) and
//! the `coffer` command-line tool (`src/bin/coffer/`).
//!
//! # Where to start
//!
//! A [`Client`] talks to one server. [`Client::register`] and [`Client::login`] (in [`account`])
//! run OPAQUE and unlock the account; the resulting [`Session`] (token, account id, unwrapped
//! keys) is kept in the [`ConfigDir`]'s session file so later processes act without the
//! password (see [`state`] for what that file holds and why). With a session, [`files`] resolves
//! remote paths from `/` (folders shared with you appear under `/shared/OWNER/NAME`), lists,
//! creates, moves and removes nodes, uploads (parallel encryption, resumable) and downloads
//! (streaming, verified as it streams, byte ranges). [`links`] creates and opens links,
//! [`shares`] shares folders with other users, [`identity`] fetches and pins identities, and
//! [`rotate`] recovers from a compromise.
//!
//! # Trust
//!
//! The server is not trusted with plaintext or with integrity: every record is built and opened
//! with `coffer-core`, every signature, commitment and binding is checked, and a server that
//! lies produces an [`Error::Integrity`], never wrong bytes. Downloaded plaintext is written to a
//! temporary file in the destination directory and renamed into place only once every chunk has
//! authenticated.

#![forbid(unsafe_code)]

pub mod account;
pub mod error;
pub mod files;
pub mod http;
pub mod identity;
pub mod links;
pub mod rotate;
pub mod shares;
pub mod state;

use std::time::{SystemTime, UNIX_EPOCH};

pub use error::{Error, Result};
pub use files::{RemoteNode, RemotePath, Resolved};
pub use http::{Bearer, Http};
pub use state::{ConfigDir, Session};

/// The default server URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// The default server identity that OPAQUE binds (spec §6.2): `cofferd`'s default.
pub const DEFAULT_SERVER_IDENTITY: &str = "coffer";

/// A client of one Coffer server, with its config directory and, once logged in, its session.
#[derive(Debug)]
pub struct Client {
    http: Http,
    config: ConfigDir,
    session: Option<Session>,
    server_identity: String,
}

impl Client {
    /// A client of the server at `server` using `config` for its state; loads the session if
    /// one is saved for this server.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad URL; [`Error::State`] for a damaged session file.
    pub fn new(server: &str, config: ConfigDir) -> Result<Self> {
        let http = Http::new(server)?;
        let session = config
            .load_session()?
            .filter(|s| s.server.trim_end_matches('/') == http.base());
        Ok(Client {
            http,
            config,
            session,
            server_identity: DEFAULT_SERVER_IDENTITY.to_owned(),
        })
    }

    /// Uses `identity` as the server identity OPAQUE binds (the server's configured
    /// `identity`; default [`DEFAULT_SERVER_IDENTITY`]).
    #[must_use]
    pub fn with_server_identity(mut self, identity: &str) -> Self {
        identity.clone_into(&mut self.server_identity);
        self
    }

    /// The transport.
    #[must_use]
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The config directory.
    #[must_use]
    pub fn config(&self) -> &ConfigDir {
        &self.config
    }

    /// The server identity OPAQUE binds.
    #[must_use]
    pub fn server_identity(&self) -> &str {
        &self.server_identity
    }

    /// The session, if logged in.
    #[must_use]
    pub fn session_opt(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The session.
    ///
    /// # Errors
    /// [`Error::Auth`] when not logged in to this server.
    pub fn session(&self) -> Result<&Session> {
        self.session.as_ref().ok_or_else(|| {
            Error::Auth(format!(
                "not logged in to {}: run `coffer login USER`",
                self.http.base()
            ))
        })
    }

    /// The session token.
    ///
    /// # Errors
    /// As [`Client::session`].
    pub fn bearer(&self) -> Result<&Bearer> {
        Ok(&self.session()?.token)
    }

    /// Replaces the session (and saves it; `None` deletes the file).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn set_session(&mut self, session: Option<Session>) -> Result<()> {
        match &session {
            Some(s) => self.config.save_session(s)?,
            None => self.config.delete_session()?,
        }
        self.session = session;
        Ok(())
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
