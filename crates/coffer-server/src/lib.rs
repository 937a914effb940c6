//! # cofferd: the Coffer server
//!
//! `cofferd` implements the HTTP API of spec §11. It stores only ciphertext and opaque,
//! signed records; it never sees a password, a key, a link secret or a plaintext name.
//!
//! - [`config`]: command line, environment and TOML configuration.
//! - [`store`]: the two storage traits (metadata and blobs) and their embedded implementations
//!   (SQLite and a local directory). Every backend passes the same storage test suite.
//! - [`http`]: the axum application: routes, authorization, limits, metrics.
//!
//! [`serve`] binds, starts the server and background maintenance, and returns a
//! [`ServerHandle`] with the bound address and a graceful shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod http;
pub mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer_core::account::ServerSetup;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::AppState;
use crate::store::{BlobStore, MetadataStore};

/// Name of the SQLite metadata database in the data directory.
pub const METADATA_FILE: &str = "metadata.sqlite";
/// Name of the blob directory in the data directory.
pub const BLOB_DIR: &str = "blobs";
/// Name of the file in the data directory that holds the OPAQUE server setup (0600).
pub const OPAQUE_SETUP_FILE: &str = "opaque-server-setup";

/// An error starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The stores could not be opened.
    #[error("cannot open the stores: {0}")]
    Store(String),
    /// The OPAQUE server setup file is corrupt.
    #[error("the OPAQUE server setup in {0} is corrupt; restore it from a backup (a new one would invalidate every password)")]
    CorruptSetup(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Opens the embedded stores under the data directory: the SQLite metadata database and the
/// local blob directory.
///
/// # Errors
/// [`ServeError::Store`] when either cannot be opened or migrated.
pub async fn open_stores(
    config: &Config,
) -> Result<(Arc<dyn MetadataStore>, Arc<dyn BlobStore>), ServeError> {
    let dir = &config.data_dir;
    let meta = store::sqlite::SqliteMetadataStore::open(
        dir.join(METADATA_FILE),
        store::sqlite::SqliteOptions {
            commit_sync: match config.file.storage.commit_sync {
                config::CommitSyncSetting::Group => store::sqlite::CommitSync::Group,
                config::CommitSyncSetting::Each => store::sqlite::CommitSync::Each,
            },
            ..store::sqlite::SqliteOptions::default()
        },
    )
    .await
    .map_err(|e| ServeError::Store(format!("metadata database in {}: {e}", dir.display())))?;
    let blobs = store::local::LocalBlobStore::open(dir.join(BLOB_DIR))
        .await
        .map_err(|e| ServeError::Store(format!("blob directory in {}: {e}", dir.display())))?;
    Ok((Arc::new(meta), Arc::new(blobs)))
}

/// Loads the OPAQUE server setup from the data directory, creating it (atomically, mode 0600)
/// on first start. It must never change afterwards: a new setup invalidates every password file
/// and makes the fake login responses for unknown users distinguishable from before.
///
/// # Errors
/// I/O errors; [`ServeError::CorruptSetup`].
pub fn load_or_create_server_setup(dir: &Path) -> Result<ServerSetup, ServeError> {
    let path = dir.join(OPAQUE_SETUP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = zeroize::Zeroizing::new(bytes);
            ServerSetup::from_bytes(&bytes)
                .map_err(|_| ServeError::CorruptSetup(path.display().to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let setup = ServerSetup::generate(&mut rand_core::OsRng);
            let bytes = setup.to_bytes();
            write_private_atomic(dir, OPAQUE_SETUP_FILE, &bytes)?;
            Ok(setup)
        }
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

/// Writes `bytes` to `dir/name` atomically: a temporary file created with mode 0600, written,
/// fsynced, renamed over the target, and the directory fsynced.
fn write_private_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ServeError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(io_err(format!("creating {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("writing {}", tmp.display())))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).map_err(io_err(format!("renaming {}", tmp.display())))?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing {}", dir.display())))?;
    Ok(())
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    maintenance: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server is bound to (the real port when `--listen` named port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The application state (tests use it to move the clock or inspect the stores).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server
    /// to end.
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits until the server ends (after [`ServerHandle::shutdown`] or a fatal error).
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn wait(self) -> Result<(), ServeError> {
        let res = match self.server.await {
            Ok(r) => r.map_err(io_err("serving")),
            Err(e) => Err(ServeError::Io {
                what: "server task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        };
        let _ = self.stop.send(true);
        let _ = self.maintenance.await;
        res
    }
}

/// Opens the stores under the data directory, binds `config.listen` and serves until
/// [`ServerHandle::shutdown`].
///
/// # Errors
/// The data directory cannot be created; the stores cannot be opened; the address cannot be
/// bound.
pub async fn serve(config: Config) -> Result<ServerHandle, ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(io_err(format!(
        "creating data directory {}",
        config.data_dir.display()
    )))?;
    let setup = load_or_create_server_setup(&config.data_dir)?;
    let (meta, blobs) = open_stores(&config).await?;
    serve_with(config, meta, blobs, setup).await
}

/// Like [`serve`], with stores and setup supplied by the caller (other backends, tests).
///
/// # Errors
/// The address cannot be bound; the metadata store cannot supply the cursor key.
pub async fn serve_with(
    config: Config,
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    setup: ServerSetup,
) -> Result<ServerHandle, ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io_err(format!("binding {}", config.listen)))?;
    let addr = listener.local_addr().map_err(io_err("local address"))?;
    let cursor_key = http::cursor::CursorKey::load(&*meta)
        .await
        .map_err(|e| ServeError::Store(e.to_string()))?;
    let state = AppState::new(config, meta, blobs, setup, cursor_key);
    let app = http::router(state.clone());
    let (stop, stop_rx) = watch::channel(false);

    let mut rx = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await
    });

    let delay_state = state.clone();
    let delay_stop = stop_rx.clone();
    tokio::spawn(async move { delay_state.watch_queue_delay(delay_stop).await });
    let maintenance = tokio::spawn(maintain(state.clone(), stop_rx));
    Ok(ServerHandle {
        addr,
        state,
        stop,
        server,
        maintenance,
    })
}

/// Maintenance rounds (one a minute) from one orphan scan to the next; the first round scans.
const ORPHAN_SCAN_ROUNDS: u64 = 60;

/// Periodic maintenance, at start and then once a minute: forget idle rate-limit keys, purge
/// expired sessions, handshakes and link tokens, delete lapsed uploads; at start and then
/// hourly, remove orphaned blobs and parts ([`http::collect_orphans`]).
async fn maintain(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        state.limits.retain_recent();
        http::collect_garbage(&state, state.now()).await;
        if round % ORPHAN_SCAN_ROUNDS == 0 {
            http::collect_orphans(&state).await;
        }
    }
}
