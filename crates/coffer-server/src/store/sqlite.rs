//! Embedded metadata store: SQLite through sqlx.
//!
//! One database file in WAL mode with foreign keys on; durability per [`CommitSync`] (group
//! commit by default: an answered write is on disk). The schema is created at open and versioned
//! with `PRAGMA user_version` (older versions are migrated at open). Every operation runs in one
//! transaction; writing ones queue in the server, one at a time, and start with
//! `BEGIN IMMEDIATE`.
//!
//! Unsigned 64-bit values are stored bit-for-bit in SQLite's signed 64-bit integers; the store
//! compares them in SQL only where they are server-chosen (times) or bounded (lengths), and
//! compares client-chosen ones (link expiry and limits, revisions) in Rust or by equality.

use super::{
    check_finalize_over, check_finalize_quota, check_member_add, check_rotation, expect_revision,
    finalize_target,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::memory::{check_shape, username_hash, MAX_DEPTH};
use super::*;

/// The schema version this code writes (`PRAGMA user_version`). Older versions are migrated
/// at open by `MIGRATIONS`.
pub const SCHEMA_VERSION: i64 = 5;

/// `MIGRATIONS[i]` moves a database of version `i + 1` to version `i + 2`, in the transaction
/// that opens it.
const MIGRATIONS: &[&str] = &[
    // 2: a drop keeps its link's record once the link is revoked or rotated.
    "ALTER TABLE drops ADD COLUMN link_record BLOB",
    // 3: secrets of the server itself (the pagination-cursor MAC key, §11.4.5).
    SERVER_SECRETS,
    // 4: the account column holds the whole §6.4 KeyBundle; named for it.
    "ALTER TABLE accounts RENAME COLUMN wrapped_master_key TO key_bundle",
    // 5: handshakes live in memory, and the sealed account secrets inside the key bundle.
    "DROP TABLE handshakes; ALTER TABLE accounts DROP COLUMN sealed_account_secrets",
];

const SERVER_SECRETS: &str = "CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    secret BLOB NOT NULL
) STRICT";

const SCHEMA: &str = r"
CREATE TABLE accounts (
    account_id BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    revision INTEGER NOT NULL,
    password_file BLOB NOT NULL,
    key_bundle BLOB NOT NULL,
    identity_generation INTEGER NOT NULL,
    root_node_id BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE retained_usernames (username_hash BLOB PRIMARY KEY NOT NULL) STRICT;
CREATE TABLE identity_chains (
    account_id BLOB PRIMARY KEY NOT NULL,
    deleted INTEGER NOT NULL
) STRICT;
CREATE TABLE identities (
    account_id BLOB NOT NULL REFERENCES identity_chains(account_id),
    generation INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (account_id, generation)
) STRICT;
CREATE TABLE sessions (
    session_id BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_account ON sessions(account_id);
CREATE TABLE nodes (
    node_id BLOB PRIMARY KEY NOT NULL,
    parent_id BLOB REFERENCES nodes(node_id) DEFERRABLE INITIALLY DEFERRED,
    owner BLOB NOT NULL,
    kind INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    share_id BLOB,
    record BLOB NOT NULL,
    content_revision INTEGER NOT NULL,
    content_length INTEGER NOT NULL,
    blob_key TEXT
) STRICT;
CREATE INDEX nodes_parent ON nodes(parent_id, node_id);
CREATE INDEX nodes_owner ON nodes(owner);
CREATE INDEX nodes_blob ON nodes(blob_key);
CREATE TABLE uploads (
    upload_id BLOB PRIMARY KEY NOT NULL,
    creator BLOB,
    owner BLOB NOT NULL,
    node_id BLOB,
    parent_id BLOB,
    content_revision INTEGER NOT NULL,
    link_id BLOB,
    envelope BLOB,
    total_length INTEGER NOT NULL,
    part_size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    max_expires_at INTEGER NOT NULL,
    blob_key TEXT NOT NULL
) STRICT;
CREATE INDEX uploads_owner ON uploads(owner);
CREATE INDEX uploads_creator ON uploads(creator);
CREATE INDEX uploads_node ON uploads(node_id);
CREATE INDEX uploads_parent ON uploads(parent_id);
CREATE INDEX uploads_link ON uploads(link_id);
CREATE INDEX uploads_expiry ON uploads(expires_at);
CREATE TABLE upload_parts (
    upload_id BLOB NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (upload_id, idx)
) STRICT;
CREATE TABLE shares (
    share_id BLOB PRIMARY KEY NOT NULL,
    root_node_id BLOB NOT NULL UNIQUE,
    owner BLOB NOT NULL,
    generation INTEGER NOT NULL,
    record BLOB NOT NULL,
    revision INTEGER NOT NULL
) STRICT;
CREATE INDEX shares_owner ON shares(owner);
CREATE TABLE share_members (
    share_id BLOB NOT NULL REFERENCES shares(share_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    account_id BLOB NOT NULL,
    permission INTEGER NOT NULL,
    PRIMARY KEY (share_id, account_id)
) STRICT;
CREATE INDEX share_members_account ON share_members(account_id);
CREATE TABLE share_departed (
    share_id BLOB NOT NULL REFERENCES shares(share_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    account_id BLOB NOT NULL,
    PRIMARY KEY (share_id, account_id)
) STRICT;
CREATE TABLE grants (
    share_id BLOB NOT NULL REFERENCES shares(share_id) ON DELETE CASCADE,
    member BLOB NOT NULL,
    generation INTEGER NOT NULL,
    grant_record BLOB NOT NULL,
    PRIMARY KEY (share_id, member, generation)
) STRICT;
CREATE INDEX grants_member ON grants(member);
CREATE TABLE links (
    link_id BLOB PRIMARY KEY NOT NULL,
    owner BLOB NOT NULL,
    node_id BLOB NOT NULL,
    kind INTEGER NOT NULL,
    link_record BLOB NOT NULL,
    owner_entry BLOB NOT NULL,
    verifier_hash BLOB,
    drop_secret_hash BLOB,
    expires_at INTEGER,
    max_downloads INTEGER,
    created_at INTEGER NOT NULL,
    downloads INTEGER NOT NULL
) STRICT;
CREATE INDEX links_owner ON links(owner);
CREATE INDEX links_node ON links(node_id);
CREATE TABLE link_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    link_id BLOB NOT NULL REFERENCES links(link_id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX link_tokens_link ON link_tokens(link_id);
CREATE TABLE drops (
    drop_id BLOB PRIMARY KEY NOT NULL,
    link_id BLOB NOT NULL,
    owner BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    total_length INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    blob_key TEXT NOT NULL,
    link_record BLOB
) STRICT;
CREATE INDEX drops_owner ON drops(owner);
CREATE INDEX drops_link ON drops(link_id);
";

/// How a committed write becomes durable (`[storage] commit-sync` of the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitSync {
    /// Group commit (the default): SQLite commits without syncing (`synchronous=NORMAL`), and
    /// the store answers only after an `fsync` of the write-ahead log that covers the commit;
    /// one `fsync` covers every commit made while the previous one ran. What a caller has been
    /// told is committed survives a crash of the process and of the machine, as with
    /// [`CommitSync::Each`]; the difference is that a concurrent reader may see a commit up to
    /// one `fsync` before it is durable, so after a power loss (not a process crash) such a
    /// read may not be repeatable. Needs a database file ([`SqliteMetadataStore::open`]); a URL
    /// opened with [`SqliteMetadataStore::open_url`] uses `Each`.
    #[default]
    Group,
    /// One `fsync` per commit inside SQLite (`synchronous=FULL`): a commit is durable before
    /// any other connection can see it. Writes are bounded by the disk's `fsync` rate.
    Each,
}

/// Options of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a statement waits for a lock before failing.
    pub busy_timeout: Duration,
    /// How commits are made durable.
    pub commit_sync: CommitSync,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            commit_sync: CommitSync::default(),
        }
    }
}

/// The SQLite metadata store.
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    pool: SqlitePool,
    shared: Arc<Shared>,
}

/// Entries per read cache; a full cache is emptied and refilled.
const CACHE_CAPACITY: usize = 8192;

/// What every clone of the store shares: the writer queue, the group commit and the read cache.
///
/// # Read cache
///
/// Links and nodes read outside a write transaction (anonymous link resolves, authorization of
/// node requests) are cached with the value of `epoch` read *before* the database read. Every
/// write transaction that may change a link or a node increments `epoch` after its commit and
/// before it returns, which invalidates every entry at once: a read that starts after a write
/// returned never sees data older than that write. Expiry is compared with the clock at each
/// access and download counts are consumed inside write transactions, so limits stay exact.
struct Shared {
    /// One write transaction at a time, queued in order (instead of SQLite's busy-wait backoff).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// `Some` in [`CommitSync::Group`] mode.
    group: Option<GroupSync>,
    epoch: std::sync::atomic::AtomicU64,
    links: Mutex<HashMap<LinkId, (u64, Option<Link>)>>,
    nodes: Mutex<HashMap<NodeId, (u64, Option<Node>)>>,
    handshakes: Mutex<Handshakes>,
}

/// Live handshakes (registration reservations, logins, re-authentications): in memory, not in
/// the database. They live minutes (`HANDSHAKE_TTL_SECS`); a restart loses them and the
/// client's next message fails like one to an expired handshake, so they need no durable
/// write. A registration's uniqueness is still enforced by the database when the account is
/// created (username `UNIQUE`, account id primary key).
#[derive(Default)]
struct Handshakes {
    by_id: HashMap<HandshakeId, Handshake>,
    /// Usernames reserved by registrations.
    names: HashMap<String, HandshakeId>,
    /// Account ids reserved by registrations.
    accounts: HashMap<AccountId, HandshakeId>,
    /// When expired handshakes were last swept.
    swept_at: u64,
}

impl Handshakes {
    fn remove(&mut self, id: &HandshakeId) -> Option<Handshake> {
        let h = self.by_id.remove(id)?;
        if h.kind == HandshakeKind::Registration {
            if let Some(name) = &h.username {
                if self.names.get(name) == Some(id) {
                    self.names.remove(name);
                }
            }
            if let Some(a) = &h.account_id {
                if self.accounts.get(a) == Some(id) {
                    self.accounts.remove(a);
                }
            }
        }
        Some(h)
    }

    /// Removes every handshake `f` selects; returns how many.
    fn remove_where(&mut self, f: impl Fn(&Handshake) -> bool) -> u64 {
        let ids: Vec<HandshakeId> = self.by_id.values().filter(|h| f(h)).map(|h| h.id).collect();
        for id in &ids {
            self.remove(id);
        }
        ids.len() as u64
    }

    /// Removes expired handshakes (at most once a second from `put`: the sweep is linear).
    fn sweep(&mut self, now: u64) -> u64 {
        self.swept_at = now;
        self.remove_where(|h| h.expires_at <= now)
    }

    /// The live registration reserving `name`.
    fn reservation_of(&self, name: &str, now: u64) -> Option<&Handshake> {
        self.names
            .get(name)
            .and_then(|id| self.by_id.get(id))
            .filter(|h| h.expires_at > now)
    }

    fn account_reserved(&self, account: &AccountId, now: u64) -> bool {
        self.accounts
            .get(account)
            .and_then(|id| self.by_id.get(id))
            .is_some_and(|h| h.expires_at > now)
    }

    /// Whether a registration handshake `id` may reserve `name` and `account` (none of them
    /// held by a live handshake).
    fn may_reserve(
        &self,
        id: &HandshakeId,
        name: &str,
        account: &AccountId,
        now: u64,
    ) -> StoreResult<()> {
        if self.by_id.contains_key(id) || self.account_reserved(account, now) {
            return Err(StoreError::AlreadyExists);
        }
        if self.reservation_of(name, now).is_some() {
            return Err(StoreError::UsernameTaken);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("group_commit", &self.group.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn new(group: Option<GroupSync>) -> Self {
        Shared {
            writer: Arc::new(tokio::sync::Mutex::new(())),
            group,
            epoch: std::sync::atomic::AtomicU64::new(0),
            links: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            handshakes: Mutex::new(Handshakes::default()),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn invalidate(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn cached<K: std::hash::Hash + Eq, V: Clone>(
        &self,
        map: &Mutex<HashMap<K, (u64, Option<V>)>>,
        key: &K,
    ) -> Option<Option<V>> {
        let epoch = self.epoch();
        let m = lock(map);
        match m.get(key) {
            Some((e, v)) if *e == epoch => Some(v.clone()),
            _ => None,
        }
    }

    fn remember<K: std::hash::Hash + Eq, V>(
        map: &Mutex<HashMap<K, (u64, Option<V>)>>,
        epoch: u64,
        key: K,
        value: Option<V>,
    ) {
        let mut m = lock(map);
        if m.len() >= CACHE_CAPACITY {
            m.clear();
        }
        m.insert(key, (epoch, value));
    }
}

/// Group commit of [`CommitSync::Group`]: `fsync` of the write-ahead log, shared by every commit
/// made before it started.
struct GroupSync {
    wal: std::path::PathBuf,
    /// Commits made so far (tickets).
    committed: std::sync::atomic::AtomicU64,
    /// Every ticket up to this one is durable.
    synced: std::sync::atomic::AtomicU64,
    /// Held by the one task running an `fsync`; the others queue and usually find their ticket
    /// covered when their turn comes.
    syncing: tokio::sync::Mutex<Option<u64>>,
}

impl GroupSync {
    fn new(db_file: &Path) -> Self {
        let mut wal = db_file.as_os_str().to_owned();
        wal.push("-wal");
        GroupSync {
            wal: wal.into(),
            committed: std::sync::atomic::AtomicU64::new(0),
            synced: std::sync::atomic::AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(None),
        }
    }

    /// Returns once the commit made just before the call is durable.
    async fn barrier(&self) -> std::io::Result<()> {
        use std::sync::atomic::Ordering::AcqRel;
        use std::sync::atomic::Ordering::Acquire;
        let ticket = self.committed.fetch_add(1, AcqRel) + 1;
        if self.synced.load(Acquire) >= ticket {
            return Ok(());
        }
        // The guard holds the inode of the last log synced with its directory.
        let mut last_inode = self.syncing.lock().await;
        if self.synced.load(Acquire) >= ticket {
            return Ok(());
        }
        let upto = self.committed.load(Acquire);
        let wal = self.wal.clone();
        let known = *last_inode;
        let inode = tokio::task::spawn_blocking(move || sync_wal(&wal, known))
            .await
            .map_err(std::io::Error::other)??;
        *last_inode = inode.or(known);
        self.synced.fetch_max(upto, AcqRel);
        Ok(())
    }
}

/// `fsync` of the write-ahead log (and of its directory the first time a log file is seen).
/// No log file means none is needed: SQLite removes it only after checkpointing it into the
/// database file and syncing that.
fn sync_wal(wal: &Path, known_inode: Option<u64>) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::MetadataExt as _;
    let f = match std::fs::File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    f.sync_data()?;
    let inode = f.metadata()?.ino();
    if known_inode != Some(inode) {
        if let Some(dir) = wal.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(Some(inode))
}

/// A write transaction: holds the writer queue until it commits or is dropped (rolled back).
struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
    shared: Arc<Shared>,
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl WriteTx {
    /// Commits, invalidates the read cache, lets the next writer in, and waits until the
    /// commit is durable. The first three run to their end even if the caller is dropped (see
    /// [`to_completion`]): a commit that took effect always invalidates the cache.
    async fn commit(self) -> Result<(), sqlx::Error> {
        let WriteTx { tx, _turn, shared } = self;
        let group = Arc::clone(&shared);
        to_completion(async move {
            let r = tx.commit().await;
            shared.invalidate();
            drop(_turn);
            r
        })
        .await?;
        if let Some(g) = &group.group {
            g.barrier().await.map_err(sqlx::Error::Io)?;
        }
        Ok(())
    }
}

/// Runs `work` to its end on a task of its own, whatever becomes of the caller's future.
///
/// A request's future is dropped whenever its client goes away, and sqlx is not safe to drop
/// at every step: a future dropped after a custom `BEGIN` (`BEGIN IMMEDIATE`) took effect but
/// before sqlx handed back its `Transaction` leaves the pooled connection inside a transaction
/// that nothing will end, holding the database's write lock, so that every later write fails
/// (`database is locked`, or sqlx's `begin_with at non-zero transaction depth`). A
/// multi-statement query dropped part-way stops before its `COMMIT` in the same way, and a
/// commit dropped after it took effect would skip the read cache's invalidation. Those steps run
/// here; a caller dropped meanwhile leaves their result to be dropped at the task's end (a
/// `Transaction` dropped open is rolled back before its connection is reused).
async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, sqlx::Error> {
    match tokio::spawn(work).await {
        Ok(r) => r,
        Err(e) => Err(sqlx::Error::Io(std::io::Error::other(e))),
    }
}

type Conn = SqliteConnection;

/// After a failed query that opened its own transaction (`BEGIN IMMEDIATE; ...; COMMIT` in one
/// query): rolls the transaction back, so that the connection goes back to the pool with none
/// open; a connection whose rollback fails is closed instead of reused.
async fn rollback_batch(c: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    let in_tx = match sqlx::query("ROLLBACK").execute(&mut **c).await {
        Ok(_) => false,
        // Nothing to roll back: the failure came before `BEGIN` took effect, or at `COMMIT`,
        // which then ended the transaction.
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => false,
        Err(_) => true,
    };
    if in_tx {
        c.close_on_drop();
    }
}

/// The account, its identity chain at generation 0 and its root node: one transaction in one
/// multi-statement query (numbered parameters are shared by its statements), in one hand-off to
/// the connection's worker thread. On failure the transaction may be left open
/// ([`rollback_batch`]).
async fn insert_account(c: &mut Conn, new: &NewAccount) -> Result<(), sqlx::Error> {
    sqlx::query(
        "BEGIN IMMEDIATE;
         INSERT INTO accounts (account_id, username, revision, password_file, key_bundle,
                               identity_generation, root_node_id, created_at)
         VALUES (?1, ?2, 0, ?3, ?4, 0, ?5, ?6);
         INSERT INTO identity_chains (account_id, deleted) VALUES (?1, 0);
         INSERT INTO identities (account_id, generation, record) VALUES (?1, 0, ?7);
         INSERT INTO nodes (node_id, parent_id, owner, kind, revision, share_id, record,
                            content_revision, content_length, blob_key)
         VALUES (?5, NULL, ?1, ?8, ?9, ?10, ?11, 0, 0, NULL);
         COMMIT",
    )
    .bind(&new.account_id.as_bytes()[..])
    .bind(&new.username)
    .bind(&new.password_file)
    .bind(&new.key_bundle)
    .bind(&new.root.node_id.as_bytes()[..])
    .bind(i(new.created_at))
    .bind(&new.identity)
    .bind(kind_code(new.root.kind))
    .bind(i(new.root.revision))
    .bind(new.root.share_id.as_ref().map(|s| s.as_bytes().to_vec()))
    .bind(&new.root.record)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Bit-for-bit conversion of an unsigned value into SQLite's integer.
fn i(v: u64) -> i64 {
    v as i64
}

/// The inverse of [`i`].
fn u(v: i64) -> u64 {
    v as u64
}

fn id16(v: Vec<u8>) -> StoreResult<[u8; 16]> {
    <[u8; 16]>::try_from(v.as_slice())
        .map_err(|_| StoreError::backend("stored id of the wrong length"))
}

fn digest(v: Vec<u8>) -> StoreResult<Digest> {
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| StoreError::backend("stored digest of the wrong length"))
}

fn get_u(row: &SqliteRow, col: &str) -> StoreResult<u64> {
    row.try_get::<i64, _>(col).map(u).map_err(db)
}

fn get_opt_u(row: &SqliteRow, col: &str) -> StoreResult<Option<u64>> {
    Ok(row.try_get::<Option<i64>, _>(col).map_err(db)?.map(u))
}

fn get_bytes(row: &SqliteRow, col: &str) -> StoreResult<Vec<u8>> {
    row.try_get::<Vec<u8>, _>(col).map_err(db)
}

fn get_id(row: &SqliteRow, col: &str) -> StoreResult<[u8; 16]> {
    id16(get_bytes(row, col)?)
}

fn get_opt_id(row: &SqliteRow, col: &str) -> StoreResult<Option<[u8; 16]>> {
    row.try_get::<Option<Vec<u8>>, _>(col)
        .map_err(db)?
        .map(id16)
        .transpose()
}

fn kind_code(k: NodeKind) -> i64 {
    match k {
        NodeKind::Folder => 0,
        NodeKind::File => 1,
    }
}

fn perm_code(p: Permission) -> i64 {
    match p {
        Permission::Read => 0,
        Permission::Write => 1,
    }
}

fn link_kind_code(k: LinkKind) -> i64 {
    match k {
        LinkKind::File => 0,
        LinkKind::Folder => 1,
        LinkKind::Drop => 2,
    }
}

fn check_len(v: u64) -> StoreResult<()> {
    if v > i64::MAX as u64 {
        return Err(StoreError::Invalid("length beyond 2^63"));
    }
    Ok(())
}

const NODE_COLS: &str =
    "node_id, parent_id, owner, kind, revision, share_id, record, content_revision, content_length, blob_key";

fn node_from_row(row: &SqliteRow) -> StoreResult<Node> {
    let kind = match row.try_get::<i64, _>("kind").map_err(db)? {
        0 => NodeKind::Folder,
        1 => NodeKind::File,
        _ => return Err(StoreError::backend("stored node kind out of range")),
    };
    Ok(Node {
        node: NodeWrite {
            node_id: NodeId::from_bytes(get_id(row, "node_id")?),
            parent_id: get_opt_id(row, "parent_id")?.map(NodeId::from_bytes),
            owner: AccountId::from_bytes(get_id(row, "owner")?),
            kind,
            revision: get_u(row, "revision")?,
            share_id: get_opt_id(row, "share_id")?.map(ShareId::from_bytes),
            record: get_bytes(row, "record")?,
        },
        content_revision: get_u(row, "content_revision")?,
        content_length: get_u(row, "content_length")?,
        blob_key: row.try_get::<Option<String>, _>("blob_key").map_err(db)?,
    })
}

async fn get_node(c: &mut Conn, id: &NodeId) -> StoreResult<Option<Node>> {
    let row = sqlx::query(&format!("SELECT {NODE_COLS} FROM nodes WHERE node_id = ?"))
        .bind(&id.as_bytes()[..])
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    row.as_ref().map(node_from_row).transpose()
}

async fn node_exists(c: &mut Conn, id: &NodeId) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM nodes WHERE node_id = ?")
        .bind(&id.as_bytes()[..])
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
        .is_some())
}

async fn update_node(c: &mut Conn, up: NodeUpdate) -> StoreResult<Node> {
    let stored = get_node(c, &up.node.node_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    expect_revision(stored.node.revision, up.expected_revision)?;
    if let Some(p) = &up.node.parent_id {
        if !node_exists(c, p).await? {
            return Err(StoreError::NotFound);
        }
    }
    let n = &up.node;
    sqlx::query("UPDATE nodes SET parent_id = ?, owner = ?, kind = ?, revision = ?, share_id = ?, record = ? WHERE node_id = ?")
        .bind(n.parent_id.as_ref().map(|p| p.as_bytes().to_vec()))
        .bind(&n.owner.as_bytes()[..])
        .bind(kind_code(n.kind))
        .bind(i(n.revision))
        .bind(n.share_id.as_ref().map(|s| s.as_bytes().to_vec()))
        .bind(&n.record)
        .bind(&n.node_id.as_bytes()[..])
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(Node {
        node: up.node,
        ..stored
    })
}

async fn insert_node(c: &mut Conn, n: &NodeWrite) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO nodes (node_id, parent_id, owner, kind, revision, share_id, record, content_revision, content_length, blob_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, NULL)",
    )
    .bind(&n.node_id.as_bytes()[..])
    .bind(n.parent_id.as_ref().map(|p| p.as_bytes().to_vec()))
    .bind(&n.owner.as_bytes()[..])
    .bind(kind_code(n.kind))
    .bind(i(n.revision))
    .bind(n.share_id.as_ref().map(|s| s.as_bytes().to_vec()))
    .bind(&n.record)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(())
}

async fn subtree(c: &mut Conn, root: &NodeId) -> StoreResult<Vec<NodeId>> {
    let rows = sqlx::query(
        "WITH RECURSIVE sub(id) AS (SELECT node_id FROM nodes WHERE node_id = ?
           UNION SELECT n.node_id FROM nodes n JOIN sub ON n.parent_id = sub.id)
         SELECT id FROM sub",
    )
    .bind(&root.as_bytes()[..])
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| get_id(r, "id").map(NodeId::from_bytes))
        .collect()
}

const UPLOAD_COLS: &str =
    "upload_id, creator, owner, node_id, parent_id, content_revision, link_id, envelope, \
     total_length, part_size, created_at, expires_at, max_expires_at, blob_key";

/// The upload a row of `UPLOAD_COLS` holds, without its parts.
fn upload_head_from_row(row: &SqliteRow) -> StoreResult<NewUpload> {
    let upload_id = UploadId::from_bytes(get_id(row, "upload_id")?);
    let target = match get_opt_id(row, "link_id")? {
        Some(l) => UploadTarget::Drop {
            link_id: LinkId::from_bytes(l),
            envelope: row
                .try_get::<Option<Vec<u8>>, _>("envelope")
                .map_err(db)?
                .unwrap_or_default(),
        },
        None => UploadTarget::Node {
            node_id: NodeId::from_bytes(
                get_opt_id(row, "node_id")?
                    .ok_or_else(|| StoreError::backend("upload without target"))?,
            ),
            parent_id: NodeId::from_bytes(
                get_opt_id(row, "parent_id")?
                    .ok_or_else(|| StoreError::backend("upload without parent"))?,
            ),
            content_revision: get_u(row, "content_revision")?,
        },
    };
    Ok(NewUpload {
        upload_id,
        creator: get_opt_id(row, "creator")?.map(AccountId::from_bytes),
        owner: AccountId::from_bytes(get_id(row, "owner")?),
        target,
        total_length: get_u(row, "total_length")?,
        part_size: get_u(row, "part_size")?,
        created_at: get_u(row, "created_at")?,
        expires_at: get_u(row, "expires_at")?,
        max_expires_at: get_u(row, "max_expires_at")?,
    })
}

/// The upload a row of `UPLOAD_COLS` holds, with its parts.
async fn upload_from_row(c: &mut Conn, row: &SqliteRow) -> StoreResult<Upload> {
    let upload = upload_head_from_row(row)?;
    let parts =
        sqlx::query("SELECT idx, length FROM upload_parts WHERE upload_id = ? ORDER BY idx")
            .bind(&upload.upload_id.as_bytes()[..])
            .fetch_all(&mut *c)
            .await
            .map_err(db)?
            .iter()
            .map(|r| Ok((get_u(r, "idx")?, get_u(r, "length")?)))
            .collect::<StoreResult<Vec<_>>>()?;
    Ok(Upload {
        upload,
        blob_key: row.try_get::<String, _>("blob_key").map_err(db)?,
        parts,
    })
}

async fn uploads_where(c: &mut Conn, clause: &str, binds: &[&[u8]]) -> StoreResult<Vec<Upload>> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE {clause}");
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b.to_vec());
    }
    let rows = q.fetch_all(&mut *c).await.map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(upload_from_row(c, r).await?);
    }
    Ok(out)
}

async fn get_upload(c: &mut Conn, id: &UploadId) -> StoreResult<Option<Upload>> {
    Ok(uploads_where(c, "upload_id = ?", &[&id.as_bytes()[..]])
        .await?
        .pop())
}

async fn live_upload(c: &mut Conn, id: &UploadId, now: u64) -> StoreResult<Option<Upload>> {
    Ok(get_upload(c, id)
        .await?
        .filter(|u| u.upload.expires_at > now))
}

/// A live upload without its parts: one row, however many parts are present.
async fn live_upload_head(c: &mut Conn, id: &UploadId, now: u64) -> StoreResult<Option<NewUpload>> {
    let sql = format!("SELECT {UPLOAD_COLS} FROM uploads WHERE upload_id = ? AND expires_at > ?");
    sqlx::query(&sql)
        .bind(&id.as_bytes()[..])
        .bind(i(now))
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
        .as_ref()
        .map(upload_head_from_row)
        .transpose()
}

async fn delete_uploads(c: &mut Conn, uploads: &[Upload]) -> StoreResult<()> {
    for up in uploads {
        sqlx::query("DELETE FROM uploads WHERE upload_id = ?")
            .bind(&up.upload.upload_id.as_bytes()[..])
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    Ok(())
}

async fn storage_used(c: &mut Conn, owner: &AccountId, now: u64) -> StoreResult<u64> {
    let row = sqlx::query(
        "SELECT (SELECT COALESCE(SUM(content_length), 0) FROM nodes WHERE owner = ?1)
              + (SELECT COALESCE(SUM(total_length), 0) FROM uploads WHERE owner = ?1 AND expires_at > ?2)
              + (SELECT COALESCE(SUM(total_length), 0) FROM drops WHERE owner = ?1) AS used",
    )
    .bind(&owner.as_bytes()[..])
    .bind(i(now))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    get_u(&row, "used")
}

const LINK_COLS: &str =
    "link_id, owner, node_id, kind, link_record, owner_entry, verifier_hash, drop_secret_hash, \
     expires_at, max_downloads, created_at, downloads";

fn link_from_row(row: &SqliteRow) -> StoreResult<Link> {
    let kind = match row.try_get::<i64, _>("kind").map_err(db)? {
        0 => LinkKind::File,
        1 => LinkKind::Folder,
        2 => LinkKind::Drop,
        _ => return Err(StoreError::backend("stored link kind out of range")),
    };
    let opt_digest = |col: &str| -> StoreResult<Option<Digest>> {
        row.try_get::<Option<Vec<u8>>, _>(col)
            .map_err(db)?
            .map(digest)
            .transpose()
    };
    Ok(Link {
        link: LinkWrite {
            link_id: LinkId::from_bytes(get_id(row, "link_id")?),
            owner: AccountId::from_bytes(get_id(row, "owner")?),
            node_id: NodeId::from_bytes(get_id(row, "node_id")?),
            kind,
            link_record: get_bytes(row, "link_record")?,
            owner_entry: get_bytes(row, "owner_entry")?,
            verifier_hash: opt_digest("verifier_hash")?,
            drop_secret_hash: opt_digest("drop_secret_hash")?,
            expires_at: get_opt_u(row, "expires_at")?,
            max_downloads: get_opt_u(row, "max_downloads")?,
            created_at: get_u(row, "created_at")?,
        },
        downloads: get_u(row, "downloads")?,
    })
}

async fn get_link(c: &mut Conn, id: &LinkId) -> StoreResult<Option<Link>> {
    let row = sqlx::query(&format!("SELECT {LINK_COLS} FROM links WHERE link_id = ?"))
        .bind(&id.as_bytes()[..])
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    row.as_ref().map(link_from_row).transpose()
}

async fn insert_link(c: &mut Conn, l: &LinkWrite) -> StoreResult<Link> {
    if get_link(c, &l.link_id).await?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    sqlx::query(
        "INSERT INTO links (link_id, owner, node_id, kind, link_record, owner_entry, verifier_hash, drop_secret_hash,
                            expires_at, max_downloads, created_at, downloads)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
    )
    .bind(&l.link_id.as_bytes()[..])
    .bind(&l.owner.as_bytes()[..])
    .bind(&l.node_id.as_bytes()[..])
    .bind(link_kind_code(l.kind))
    .bind(&l.link_record)
    .bind(&l.owner_entry)
    .bind(l.verifier_hash.map(|h| h.to_vec()))
    .bind(l.drop_secret_hash.map(|h| h.to_vec()))
    .bind(l.expires_at.map(i))
    .bind(l.max_downloads.map(i))
    .bind(i(l.created_at))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(Link {
        link: l.clone(),
        downloads: 0,
    })
}

/// Deletes a link, its tokens (cascade) and its unfinished drops.
async fn revoke_link(c: &mut Conn, id: &LinkId) -> StoreResult<Removed> {
    let mut removed = Removed::default();
    // Finished drops outlive the link: they keep its last record, which opens them.
    sqlx::query(
        "UPDATE drops SET link_record = (SELECT link_record FROM links WHERE link_id = ?1) WHERE link_id = ?1 AND link_record IS NULL",
    )
    .bind(&id.as_bytes()[..])
    .execute(&mut *c)
    .await
    .map_err(db)?;
    let res = sqlx::query("DELETE FROM links WHERE link_id = ?")
        .bind(&id.as_bytes()[..])
        .execute(&mut *c)
        .await
        .map_err(db)?;
    if res.rows_affected() > 0 {
        removed.links.push(*id);
    }
    let uploads = uploads_where(c, "link_id = ?", &[&id.as_bytes()[..]]).await?;
    delete_uploads(c, &uploads).await?;
    removed.uploads = uploads;
    Ok(removed)
}

async fn load_share(c: &mut Conn, row: &SqliteRow) -> StoreResult<Share> {
    let share_id = ShareId::from_bytes(get_id(row, "share_id")?);
    let members = sqlx::query(
        "SELECT account_id, permission FROM share_members WHERE share_id = ? ORDER BY position",
    )
    .bind(&share_id.as_bytes()[..])
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        let p = match r.try_get::<i64, _>("permission").map_err(db)? {
            0 => Permission::Read,
            1 => Permission::Write,
            _ => return Err(StoreError::backend("stored permission out of range")),
        };
        Ok((AccountId::from_bytes(get_id(r, "account_id")?), p))
    })
    .collect::<StoreResult<Vec<_>>>()?;
    let departed =
        sqlx::query("SELECT account_id FROM share_departed WHERE share_id = ? ORDER BY position")
            .bind(&share_id.as_bytes()[..])
            .fetch_all(&mut *c)
            .await
            .map_err(db)?
            .iter()
            .map(|r| get_id(r, "account_id").map(AccountId::from_bytes))
            .collect::<StoreResult<Vec<_>>>()?;
    Ok(Share {
        share: ShareWrite {
            share_id,
            root_node_id: NodeId::from_bytes(get_id(row, "root_node_id")?),
            owner: AccountId::from_bytes(get_id(row, "owner")?),
            generation: get_u(row, "generation")?,
            members,
            record: get_bytes(row, "record")?,
        },
        revision: get_u(row, "revision")?,
        departed,
    })
}

async fn shares_where(c: &mut Conn, clause: &str, bind: &[u8]) -> StoreResult<Vec<Share>> {
    let rows = sqlx::query(&format!(
        "SELECT share_id, root_node_id, owner, generation, record, revision FROM shares WHERE {clause} ORDER BY share_id"
    ))
    .bind(bind.to_vec())
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(load_share(c, r).await?);
    }
    Ok(out)
}

async fn get_share(c: &mut Conn, id: &ShareId) -> StoreResult<Option<Share>> {
    Ok(shares_where(c, "share_id = ?", &id.as_bytes()[..])
        .await?
        .pop())
}

/// Replaces a share's record, members and departed list; sets its revision.
async fn write_share(
    c: &mut Conn,
    s: &ShareWrite,
    revision: u64,
    departed: &[AccountId],
    insert: bool,
) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO shares (share_id, root_node_id, owner, generation, record, revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    } else {
        "UPDATE shares SET root_node_id = ?2, owner = ?3, generation = ?4, record = ?5, revision = ?6 WHERE share_id = ?1"
    };
    sqlx::query(sql)
        .bind(&s.share_id.as_bytes()[..])
        .bind(&s.root_node_id.as_bytes()[..])
        .bind(&s.owner.as_bytes()[..])
        .bind(i(s.generation))
        .bind(&s.record)
        .bind(i(revision))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let sid = &s.share_id.as_bytes()[..];
    sqlx::query("DELETE FROM share_members WHERE share_id = ?")
        .bind(sid)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let mut seen = HashSet::new();
    for (pos, (m, p)) in s.members.iter().enumerate() {
        if !seen.insert(*m) {
            return Err(StoreError::Invalid("a member listed twice"));
        }
        sqlx::query("INSERT INTO share_members (share_id, position, account_id, permission) VALUES (?, ?, ?, ?)")
            .bind(sid)
            .bind(pos as i64)
            .bind(&m.as_bytes()[..])
            .bind(perm_code(*p))
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    set_departed(c, &s.share_id, departed).await
}

async fn set_departed(c: &mut Conn, share_id: &ShareId, departed: &[AccountId]) -> StoreResult<()> {
    let sid = &share_id.as_bytes()[..];
    sqlx::query("DELETE FROM share_departed WHERE share_id = ?")
        .bind(sid)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    for (pos, a) in departed.iter().enumerate() {
        sqlx::query("INSERT INTO share_departed (share_id, position, account_id) VALUES (?, ?, ?)")
            .bind(sid)
            .bind(pos as i64)
            .bind(&a.as_bytes()[..])
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    Ok(())
}

async fn put_grant(c: &mut Conn, share_id: &ShareId, g: &GrantWrite) -> StoreResult<()> {
    if &g.share_id != share_id {
        return Err(StoreError::Invalid("grant for another share"));
    }
    sqlx::query("INSERT OR REPLACE INTO grants (share_id, member, generation, grant_record) VALUES (?, ?, ?, ?)")
        .bind(&g.share_id.as_bytes()[..])
        .bind(&g.member.as_bytes()[..])
        .bind(i(g.generation))
        .bind(&g.grant)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

async fn delete_grants_of(c: &mut Conn, share_id: &ShareId, member: &AccountId) -> StoreResult<()> {
    sqlx::query("DELETE FROM grants WHERE share_id = ? AND member = ?")
        .bind(&share_id.as_bytes()[..])
        .bind(&member.as_bytes()[..])
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

/// Deletes every grant of a share of a generation below `generation` (§9.2.2).
async fn delete_grants_below(c: &mut Conn, share_id: &ShareId, generation: u64) -> StoreResult<()> {
    sqlx::query("DELETE FROM grants WHERE share_id = ? AND generation < ?")
        .bind(&share_id.as_bytes()[..])
        .bind(i(generation))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

/// Aborts the unfinished uploads of `creators` into the subtree of `root`.
async fn abort_uploads_into(
    c: &mut Conn,
    creators: &[AccountId],
    root: &NodeId,
) -> StoreResult<Vec<Upload>> {
    let nodes: HashSet<NodeId> = subtree(c, root).await?.into_iter().collect();
    let mut out = Vec::new();
    for creator in creators {
        let uploads = uploads_where(
            c,
            "creator = ? AND link_id IS NULL",
            &[&creator.as_bytes()[..]],
        )
        .await?;
        for up in uploads {
            if let UploadTarget::Node {
                node_id, parent_id, ..
            } = &up.upload.target
            {
                if nodes.contains(node_id) || nodes.contains(parent_id) {
                    out.push(up);
                }
            }
        }
    }
    delete_uploads(c, &out).await?;
    Ok(out)
}

/// Deletes a share (members, departed, grants by cascade).
async fn drop_share(c: &mut Conn, id: &ShareId) -> StoreResult<Removed> {
    let res = sqlx::query("DELETE FROM shares WHERE share_id = ?")
        .bind(&id.as_bytes()[..])
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let mut removed = Removed::default();
    if res.rows_affected() > 0 {
        removed.shares.push(*id);
    }
    Ok(removed)
}

/// Deletes nodes with their content, uploads into them, links to them and shares rooted in them.
async fn remove_nodes(c: &mut Conn, ids: &[NodeId]) -> StoreResult<Removed> {
    let mut removed = Removed::default();
    for id in ids {
        let b = &id.as_bytes()[..];
        if let Some(n) = get_node(c, id).await? {
            removed.nodes += 1;
            removed.blob_keys.extend(n.blob_key);
        }
        let uploads = uploads_where(
            c,
            "link_id IS NULL AND (node_id = ?1 OR parent_id = ?1)",
            &[b],
        )
        .await?;
        delete_uploads(c, &uploads).await?;
        removed.uploads.extend(uploads);
        let links = sqlx::query("SELECT link_id FROM links WHERE node_id = ?")
            .bind(b)
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        for l in &links {
            let lid = LinkId::from_bytes(get_id(l, "link_id")?);
            removed.extend(revoke_link(c, &lid).await?);
        }
        let shares = sqlx::query("SELECT share_id FROM shares WHERE root_node_id = ?")
            .bind(b)
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        for s in &shares {
            let sid = ShareId::from_bytes(get_id(s, "share_id")?);
            removed.extend(drop_share(c, &sid).await?);
        }
    }
    for id in ids {
        sqlx::query("DELETE FROM nodes WHERE node_id = ?")
            .bind(&id.as_bytes()[..])
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    Ok(removed)
}

fn session_from_row(row: &SqliteRow) -> StoreResult<Session> {
    Ok(Session {
        session_id: get_id(row, "session_id")?,
        account_id: AccountId::from_bytes(get_id(row, "account_id")?),
        label: row.try_get::<String, _>("label").map_err(db)?,
        created_at: get_u(row, "created_at")?,
        last_used_at: get_u(row, "last_used_at")?,
        expires_at: get_u(row, "expires_at")?,
    })
}

const ACCOUNT_COLS: &str =
    "account_id, username, revision, password_file, key_bundle, identity_generation, \
     root_node_id, created_at";

fn account_from_row(row: &SqliteRow) -> StoreResult<Account> {
    Ok(Account {
        account_id: AccountId::from_bytes(get_id(row, "account_id")?),
        username: row.try_get::<String, _>("username").map_err(db)?,
        revision: get_u(row, "revision")?,
        password_file: get_bytes(row, "password_file")?,
        key_bundle: get_bytes(row, "key_bundle")?,
        identity_generation: get_u(row, "identity_generation")?,
        root_node_id: NodeId::from_bytes(get_id(row, "root_node_id")?),
        created_at: get_u(row, "created_at")?,
    })
}

async fn get_account(c: &mut Conn, id: &AccountId) -> StoreResult<Option<Account>> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = ?"
    ))
    .bind(&id.as_bytes()[..])
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    row.as_ref().map(account_from_row).transpose()
}

async fn chain(c: &mut Conn, id: &AccountId) -> StoreResult<Option<IdentityChain>> {
    let Some(row) = sqlx::query("SELECT deleted FROM identity_chains WHERE account_id = ?")
        .bind(&id.as_bytes()[..])
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let deleted = row.try_get::<i64, _>("deleted").map_err(db)? != 0;
    let generations =
        sqlx::query("SELECT record FROM identities WHERE account_id = ? ORDER BY generation")
            .bind(&id.as_bytes()[..])
            .fetch_all(&mut *c)
            .await
            .map_err(db)?
            .iter()
            .map(|r| get_bytes(r, "record"))
            .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(IdentityChain {
        account_id: *id,
        generations,
        deleted,
    }))
}

async fn push_identity(
    c: &mut Conn,
    id: &AccountId,
    generation: u64,
    record: &[u8],
) -> StoreResult<()> {
    sqlx::query("INSERT INTO identities (account_id, generation, record) VALUES (?, ?, ?)")
        .bind(&id.as_bytes()[..])
        .bind(i(generation))
        .bind(record)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    sqlx::query("UPDATE accounts SET identity_generation = ? WHERE account_id = ?")
        .bind(i(generation))
        .bind(&id.as_bytes()[..])
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

async fn revoke_sessions(
    c: &mut Conn,
    account: &AccountId,
    keep: Option<&SessionId>,
) -> StoreResult<u64> {
    let res = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND session_id IS NOT ?")
        .bind(&account.as_bytes()[..])
        .bind(keep.map(|k| k.to_vec()))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(res.rows_affected())
}

async fn set_account_keys(
    c: &mut Conn,
    id: &AccountId,
    revision: u64,
    pf: &[u8],
    key_bundle: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE accounts SET revision = ?, password_file = ?, key_bundle = ? WHERE account_id = ?",
    )
    .bind(i(revision))
    .bind(pf)
    .bind(key_bundle)
    .bind(&id.as_bytes()[..])
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(())
}

fn drop_from_row(row: &SqliteRow) -> StoreResult<DropRecord> {
    Ok(DropRecord {
        drop_id: UploadId::from_bytes(get_id(row, "drop_id")?),
        link_id: LinkId::from_bytes(get_id(row, "link_id")?),
        owner: AccountId::from_bytes(get_id(row, "owner")?),
        created_at: get_u(row, "created_at")?,
        total_length: get_u(row, "total_length")?,
        envelope: get_bytes(row, "envelope")?,
        blob_key: row.try_get::<String, _>("blob_key").map_err(db)?,
        link_record: row
            .try_get::<Option<Vec<u8>>, _>("link_record")
            .map_err(db)?,
    })
}

async fn count(c: &mut Conn, sql: &str, bind: &[u8], now: Option<u64>) -> StoreResult<u64> {
    let mut q = sqlx::query(sql).bind(bind.to_vec());
    if let Some(n) = now {
        q = q.bind(i(n));
    }
    let row = q.fetch_one(&mut *c).await.map_err(db)?;
    row.try_get::<i64, _>(0).map(u).map_err(db)
}

impl SqliteMetadataStore {
    /// Opens (creating if needed) the database file at `path` and its schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened, or holds a schema of another version.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref();
        let (synchronous, group) = match options.commit_sync {
            CommitSync::Group => (SqliteSynchronous::Normal, Some(GroupSync::new(path))),
            CommitSync::Each => (SqliteSynchronous::Full, None),
        };
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            // Deleted content is overwritten, not left in free pages (account deletion, §9.5).
            .pragma("secure_delete", "ON")
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        Self::open_with(connect, options, group).await
    }

    /// Opens a database from a `sqlite:` URL (see sqlx's `SqliteConnectOptions`), with the same
    /// settings as [`Self::open`].
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_url(url: &str, options: SqliteOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Deleted content is overwritten, not left in free pages (account deletion, §9.5).
            .pragma("secure_delete", "ON")
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        Self::open_with(connect, options, None).await
    }

    async fn open_with(
        connect: SqliteConnectOptions,
        options: SqliteOptions,
        group: Option<GroupSync>,
    ) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(db)?;
        let store = SqliteMetadataStore {
            pool,
            shared: Arc::new(Shared::new(group)),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        match version {
            0 => {
                let statements = SCHEMA.split(';').chain(std::iter::once(SERVER_SECRETS));
                for statement in statements.map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(statement).execute(&mut *tx).await.map_err(db)?;
                }
                sqlx::query(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            SCHEMA_VERSION => {}
            v if (1..SCHEMA_VERSION).contains(&v) => {
                for m in MIGRATIONS
                    .iter()
                    .skip(usize::try_from(v - 1).unwrap_or(usize::MAX))
                {
                    for statement in m.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                        sqlx::query(statement).execute(&mut *tx).await.map_err(db)?;
                    }
                }
                sqlx::query(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            v => {
                return Err(StoreError::backend(format!(
                    "database schema version {v} is not supported (expected {SCHEMA_VERSION})"
                )))
            }
        }
        tx.commit().await.map_err(db)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every value of every table, as bytes (integers as their decimal text), by table name:
    /// for the deletion scan of the test suite.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    pub async fn dump_values(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut *c)
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get::<String, _>(0).map_err(db))
        .collect::<StoreResult<_>>()?;
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info(?)")
                .bind(&t)
                .fetch_all(&mut *c)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get::<String, _>(0).map_err(db))
                .collect::<StoreResult<_>>()?;
            for col in cols {
                let rows = sqlx::query(&format!("SELECT CAST(\"{col}\" AS BLOB) FROM \"{t}\""))
                    .fetch_all(&mut *c)
                    .await
                    .map_err(db)?;
                for r in rows {
                    if let Some(v) = r.try_get::<Option<Vec<u8>>, _>(0).map_err(db)? {
                        out.push((t.clone(), v));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ends the handshakes of an account (and those naming `username`): password change,
    /// recovery, deletion. Done before the change commits; if it then fails, the handshakes
    /// are lost as if expired.
    fn drop_handshakes_of(&self, account: &AccountId, username: Option<&str>) {
        lock(&self.shared.handshakes).remove_where(|h| {
            h.account_id.as_ref() == Some(account)
                || username.is_some_and(|u| h.username.as_deref() == Some(u))
        });
    }

    /// The checks of [`MetadataStore::create_account`] on `c`'s snapshot, in the order of the
    /// memory store: the account id unused, the user name reserved for this account by a live
    /// registration handshake (whose id it returns) and free (neither an account's nor
    /// retained), the root a parentless folder of the account, its node id unused.
    async fn check_new_account(
        &self,
        c: &mut Conn,
        new: &NewAccount,
        now: u64,
    ) -> StoreResult<HandshakeId> {
        // The reservation is read before the snapshot: an account whose creation removed it
        // was committed first, so the snapshot sees it (`AlreadyExists`, not `NotFound`).
        let reservation = lock(&self.shared.handshakes)
            .reservation_of(&new.username, now)
            .filter(|h| h.account_id == Some(new.account_id))
            .map(|h| h.id);
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = ?1)
                    OR EXISTS (SELECT 1 FROM identity_chains WHERE account_id = ?1),
                    EXISTS (SELECT 1 FROM accounts WHERE username = ?2)
                    OR EXISTS (SELECT 1 FROM retained_usernames WHERE username_hash = ?3),
                    EXISTS (SELECT 1 FROM nodes WHERE node_id = ?4)",
        )
        .bind(&new.account_id.as_bytes()[..])
        .bind(&new.username)
        .bind(&username_hash(&new.username)[..])
        .bind(&new.root.node_id.as_bytes()[..])
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        let flag = |col: usize| row.try_get::<bool, _>(col).map_err(db);
        if flag(0)? {
            return Err(StoreError::AlreadyExists);
        }
        let reservation = reservation.ok_or(StoreError::NotFound)?;
        if flag(1)? {
            return Err(StoreError::UsernameTaken);
        }
        new.check_root()?;
        if flag(2)? {
            return Err(StoreError::AlreadyExists);
        }
        Ok(reservation)
    }

    async fn write(&self) -> StoreResult<WriteTx> {
        let turn = Arc::clone(&self.shared.writer).lock_owned().await;
        let pool = self.pool.clone();
        let shared = Arc::clone(&self.shared);
        // Begun where a dropped caller cannot interrupt it (see `to_completion`).
        to_completion(async move {
            let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            Ok(WriteTx {
                tx,
                _turn: turn,
                shared,
            })
        })
        .await
        .map_err(db)
    }

    async fn read(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pool.acquire().await.map_err(db)
    }

    /// After an account deletion: moves the WAL into the database file and truncates it, so the
    /// deleted rows (already zeroed by `secure_delete`) survive in neither file. A checkpoint
    /// blocked by concurrent readers is retried a few times; if it still cannot complete, the
    /// next automatic checkpoint finishes the job (the deletion itself is already durable).
    async fn purge_deleted_pages(&self) {
        for attempt in 0..5u32 {
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await
            {
                Ok((0, _, _)) => return,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "wal checkpoint after account deletion failed");
                    return;
                }
            }
        }
        tracing::warn!("wal checkpoint after account deletion still busy; left to autocheckpoint");
    }
}

macro_rules! commit {
    ($tx:ident, $value:expr) => {{
        let value = $value;
        $tx.commit().await.map_err(db)?;
        Ok(value)
    }};
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn put_handshake(&self, h: Handshake, now: u64) -> StoreResult<()> {
        if h.kind != HandshakeKind::Registration {
            let mut hs = lock(&self.shared.handshakes);
            if now > hs.swept_at {
                hs.sweep(now);
            }
            if hs.by_id.contains_key(&h.id) {
                return Err(StoreError::AlreadyExists);
            }
            hs.by_id.insert(h.id, h);
            return Ok(());
        }
        let (Some(name), Some(account)) = (h.username.clone(), h.account_id) else {
            return Err(StoreError::Invalid(
                "registration needs a username and an account id",
            ));
        };
        // Not in the writer's turn: an account committed between this check and the reservation
        // below only makes the start succeed for a name that its finish then refuses
        // (`create_account` decides, under the tables' unique keys). Keeping the writer free of
        // reads is what lets registrations through at launch-day rates.
        lock(&self.shared.handshakes).may_reserve(&h.id, &name, &account, now)?;
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = ?1)
                    OR EXISTS (SELECT 1 FROM retained_usernames WHERE username_hash = ?2),
                    EXISTS (SELECT 1 FROM accounts WHERE account_id = ?3)
                    OR EXISTS (SELECT 1 FROM identity_chains WHERE account_id = ?3)",
        )
        .bind(&name)
        .bind(&username_hash(&name)[..])
        .bind(&account.as_bytes()[..])
        .fetch_one(&mut *self.read().await?)
        .await
        .map_err(db)?;
        if row.try_get::<bool, _>(0).map_err(db)? {
            return Err(StoreError::UsernameTaken);
        }
        if row.try_get::<bool, _>(1).map_err(db)? {
            return Err(StoreError::AlreadyExists);
        }
        let mut hs = lock(&self.shared.handshakes);
        if now > hs.swept_at {
            hs.sweep(now);
        }
        // Again under the lock that inserts: a concurrent start may have reserved the name or
        // the id since the first check.
        hs.may_reserve(&h.id, &name, &account, now)?;
        // A stale reservation of the same name or id (expired, not yet swept) gives way.
        for stale in [
            hs.names.get(&name).copied(),
            hs.accounts.get(&account).copied(),
        ]
        .into_iter()
        .flatten()
        {
            hs.remove(&stale);
        }
        hs.names.insert(name, h.id);
        hs.accounts.insert(account, h.id);
        hs.by_id.insert(h.id, h);
        Ok(())
    }

    async fn take_handshake(
        &self,
        id: HandshakeId,
        kind: HandshakeKind,
        now: u64,
    ) -> StoreResult<Option<Handshake>> {
        let mut hs = lock(&self.shared.handshakes);
        let Some(h) = hs.by_id.get(&id) else {
            return Ok(None);
        };
        if h.expires_at <= now {
            hs.remove(&id);
            return Ok(None);
        }
        if h.kind != kind {
            return Ok(None);
        }
        Ok(hs.remove(&id))
    }

    async fn create_account(&self, new: NewAccount, now: u64) -> StoreResult<Account> {
        // One hand-off to the connection's worker thread in the writer's turn: the checks run
        // before it, on a snapshot, and the tables' unique keys decide for an account committed
        // in between (a failed insert is classified by the same checks, then certain to see it).
        // A retained user name cannot slip in between: the account deletion that retains it
        // removes the account's row in the same transaction, and either refuses the name.
        let reservation = self
            .check_new_account(&mut *self.read().await?, &new, now)
            .await?;
        let turn = Arc::clone(&self.shared.writer).lock_owned().await;
        let c = self.read().await?;
        let shared = Arc::clone(&self.shared);
        // The batch, and its rollback or the cache's invalidation, run to their end even if
        // this future is dropped (see `to_completion`): a batch stopped before its `COMMIT`
        // would leave the connection in a transaction holding the write lock.
        let (written, mut c, new) = to_completion(async move {
            let mut c = c;
            let written = insert_account(&mut c, &new).await;
            match &written {
                Err(_) => rollback_batch(&mut c).await,
                Ok(()) => {
                    shared.invalidate();
                    lock(&shared.handshakes).remove(&reservation);
                }
            }
            drop(turn);
            Ok((written, c, new))
        })
        .await
        .map_err(db)?;
        if let Err(e) = written {
            let unique = matches!(&e, sqlx::Error::Database(d)
                if d.kind() == sqlx::error::ErrorKind::UniqueViolation);
            if unique {
                // The conflicting account is committed now: the checks name it.
                self.check_new_account(&mut c, &new, now).await?;
            }
            return Err(db(e));
        }
        drop(c);
        if let Some(g) = &self.shared.group {
            g.barrier().await.map_err(|e| db(sqlx::Error::Io(e)))?;
        }
        // What was just written, without reading it back.
        Ok(new.to_account())
    }

    async fn account(&self, account_id: AccountId) -> StoreResult<Option<Account>> {
        get_account(&mut *self.read().await?, &account_id).await
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>> {
        let mut c = self.read().await?;
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn storage_used(&self, account_id: AccountId, now: u64) -> StoreResult<u64> {
        storage_used(&mut *self.read().await?, &account_id, now).await
    }

    async fn change_password(&self, ch: PasswordChange) -> StoreResult<AccountUpdated> {
        let mut tx = self.write().await?;
        let a = get_account(&mut tx, &ch.account_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(a.revision, ch.expected_revision)?;
        set_account_keys(
            &mut tx,
            &ch.account_id,
            a.revision + 1,
            &ch.password_file,
            &ch.key_bundle,
        )
        .await?;
        self.drop_handshakes_of(&ch.account_id, None);
        let sessions_revoked =
            revoke_sessions(&mut tx, &ch.account_id, Some(&ch.keep_session)).await?;
        commit!(
            tx,
            AccountUpdated {
                revision: a.revision + 1,
                identity_generation: a.identity_generation,
                sessions_revoked,
                removed: Removed::default()
            }
        )
    }

    async fn recover_account(&self, r: Recovery) -> StoreResult<AccountUpdated> {
        let mut tx = self.write().await?;
        let acc = r.account_id;
        let a = get_account(&mut tx, &acc)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(a.revision, r.expected_revision)?;
        expect_revision(a.identity_generation, r.expected_generation)?;
        set_account_keys(
            &mut tx,
            &acc,
            a.revision + 1,
            &r.password_file,
            &r.key_bundle,
        )
        .await?;
        push_identity(&mut tx, &acc, a.identity_generation + 1, &r.identity).await?;
        for n in r.nodes {
            if n.node.owner != acc {
                return Err(StoreError::Invalid(
                    "recovery re-keys only the account's nodes",
                ));
            }
            update_node(&mut tx, n).await?;
        }
        for rk in r.shares {
            let sh = get_share(&mut tx, &rk.share.share_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if sh.share.owner != acc {
                return Err(StoreError::Invalid(
                    "recovery re-keys only the account's shares",
                ));
            }
            check_rotation(&sh.share, &rk.share)?;
            let departed = sh.departed_after(&rk.share, &[]);
            write_share(&mut tx, &rk.share, sh.revision + 1, &departed, false).await?;
            delete_grants_below(&mut tx, &rk.share.share_id, rk.share.generation).await?;
            for g in &rk.grants {
                put_grant(&mut tx, &rk.share.share_id, g).await?;
            }
        }
        let mut removed = Removed::default();
        let mut kept = HashSet::new();
        for (old, new) in r.links {
            match get_link(&mut tx, &old).await? {
                Some(l) if l.link.owner == acc => {}
                _ => return Err(StoreError::NotFound),
            }
            if new.owner != acc {
                return Err(StoreError::Invalid("replacement link of another owner"));
            }
            removed.extend(revoke_link(&mut tx, &old).await?);
            kept.insert(new.link_id);
            insert_link(&mut tx, &new).await?;
        }
        let links = sqlx::query("SELECT link_id FROM links WHERE owner = ?")
            .bind(&acc.as_bytes()[..])
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for l in &links {
            let lid = LinkId::from_bytes(get_id(l, "link_id")?);
            if !kept.contains(&lid) {
                removed.extend(revoke_link(&mut tx, &lid).await?);
            }
        }
        sqlx::query(
            "DELETE FROM link_tokens WHERE link_id IN (SELECT link_id FROM links WHERE owner = ?)",
        )
        .bind(&acc.as_bytes()[..])
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let uploads = uploads_where(&mut tx, "creator = ?", &[&acc.as_bytes()[..]]).await?;
        delete_uploads(&mut tx, &uploads).await?;
        removed.uploads.extend(uploads);
        self.drop_handshakes_of(&acc, None);
        let sessions_revoked = revoke_sessions(&mut tx, &acc, Some(&r.keep_session)).await?;
        commit!(
            tx,
            AccountUpdated {
                revision: a.revision + 1,
                identity_generation: a.identity_generation + 1,
                sessions_revoked,
                removed
            }
        )
    }

    async fn delete_account(&self, account_id: AccountId) -> StoreResult<Removed> {
        let mut tx = self.write().await?;
        let acc = &account_id.as_bytes()[..];
        let a = get_account(&mut tx, &account_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut removed = Removed::default();
        let owned: Vec<NodeId> = sqlx::query("SELECT node_id FROM nodes WHERE owner = ?")
            .bind(acc)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(|r| get_id(r, "node_id").map(NodeId::from_bytes))
            .collect::<StoreResult<_>>()?;
        removed.extend(remove_nodes(&mut tx, &owned).await?);
        for s in shares_where(&mut tx, "owner = ?", acc).await? {
            removed.extend(drop_share(&mut tx, &s.share.share_id).await?);
        }
        let links = sqlx::query("SELECT link_id FROM links WHERE owner = ?")
            .bind(acc)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for l in &links {
            removed.extend(revoke_link(&mut tx, &LinkId::from_bytes(get_id(l, "link_id")?)).await?);
        }
        let uploads = uploads_where(&mut tx, "owner = ?1 OR creator = ?1", &[acc]).await?;
        delete_uploads(&mut tx, &uploads).await?;
        removed.uploads.extend(uploads);
        let drops = sqlx::query("SELECT blob_key FROM drops WHERE owner = ?")
            .bind(acc)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for d in &drops {
            removed
                .blob_keys
                .push(d.try_get::<String, _>(0).map_err(db)?);
        }
        sqlx::query("DELETE FROM drops WHERE owner = ?")
            .bind(acc)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Its grants in other accounts' shares; it is recorded as departed there.
        sqlx::query("DELETE FROM grants WHERE member = ?")
            .bind(acc)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for s in shares_where(
            &mut tx,
            "share_id IN (SELECT share_id FROM share_members WHERE account_id = ?)",
            acc,
        )
        .await?
        {
            if !s.departed.contains(&account_id) {
                let mut departed = s.departed.clone();
                departed.push(account_id);
                set_departed(&mut tx, &s.share.share_id, &departed).await?;
                sqlx::query("UPDATE shares SET revision = revision + 1 WHERE share_id = ?")
                    .bind(&s.share.share_id.as_bytes()[..])
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        self.drop_handshakes_of(&account_id, Some(&a.username));
        removed.sessions = revoke_sessions(&mut tx, &account_id, None).await?;
        sqlx::query("DELETE FROM accounts WHERE account_id = ?")
            .bind(acc)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT OR IGNORE INTO retained_usernames (username_hash) VALUES (?)")
            .bind(&username_hash(&a.username)[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE identity_chains SET deleted = 1 WHERE account_id = ?")
            .bind(acc)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // To its end even if this future is dropped: the deleted rows leave the WAL now.
        let this = self.clone();
        let _ = to_completion(async move {
            this.purge_deleted_pages().await;
            Ok(())
        })
        .await;
        Ok(removed)
    }

    async fn create_session(&self, s: NewSession) -> StoreResult<Account> {
        // One query of two statements, run in one hand-off to the connection's worker thread
        // instead of a transaction of five: the insert is atomic on its own (it inserts only if
        // the account exists and neither the session id nor the token hash is in use), and the
        // account is read back only if it inserted. Both run in the writer's turn, so no other
        // write comes between them.
        let turn = Arc::clone(&self.shared.writer).lock_owned().await;
        let mut c = self.read().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO sessions (session_id, account_id, token_hash, label, created_at, last_used_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?5, ?6
             WHERE EXISTS (SELECT 1 FROM accounts WHERE account_id = ?2)
               AND NOT EXISTS (SELECT 1 FROM sessions WHERE session_id = ?1 OR token_hash = ?3);
             SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = ?2 AND changes() = 1"
        ))
        .bind(&s.session_id[..])
        .bind(&s.account_id.as_bytes()[..])
        .bind(&s.token_hash[..])
        .bind(&s.label)
        .bind(i(s.created_at))
        .bind(i(s.expires_at))
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            // Tell the two refusals apart (rare path): a missing account first.
            let account = get_account(&mut c, &s.account_id).await?;
            return Err(if account.is_none() {
                StoreError::NotFound
            } else {
                StoreError::AlreadyExists
            });
        };
        let account = account_from_row(&row)?;
        drop(c);
        drop(turn);
        if let Some(g) = &self.shared.group {
            g.barrier().await.map_err(|e| db(sqlx::Error::Io(e)))?;
        }
        Ok(account)
    }

    async fn authenticate_session(
        &self,
        token_hash: &Digest,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Option<Session>> {
        // Single statements, each atomic on its own: no write transaction on the hot path, and
        // last use is written at most once per `LAST_USED_GRANULARITY_SECS`.
        let Some(row) = sqlx::query(
            "SELECT session_id, account_id, label, created_at, last_used_at, expires_at FROM sessions WHERE token_hash = ?",
        )
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let mut s = session_from_row(&row)?;
        if now >= s.expires_at || now >= s.last_used_at.saturating_add(idle_ttl) {
            sqlx::query("DELETE FROM sessions WHERE session_id = ?")
                .bind(&s.session_id[..])
                .execute(&self.pool)
                .await
                .map_err(db)?;
            return Ok(None);
        }
        if now >= s.last_used_at.saturating_add(LAST_USED_GRANULARITY_SECS) {
            let res = sqlx::query(
                "UPDATE sessions SET last_used_at = MAX(last_used_at, ?1) WHERE session_id = ?2",
            )
            .bind(i(now))
            .bind(&s.session_id[..])
            .execute(&self.pool)
            .await
            .map_err(db)?;
            if res.rows_affected() == 0 {
                // Revoked between the two statements.
                return Ok(None);
            }
            s.last_used_at = now;
        }
        Ok(Some(s))
    }

    async fn list_sessions(
        &self,
        account_id: AccountId,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Vec<Session>> {
        let mut c = self.read().await?;
        let rows = sqlx::query(
            "SELECT session_id, account_id, label, created_at, last_used_at, expires_at FROM sessions
             WHERE account_id = ? ORDER BY created_at, session_id",
        )
        .bind(&account_id.as_bytes()[..])
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        let all = rows
            .iter()
            .map(session_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(all
            .into_iter()
            .filter(|s| now < s.expires_at && now < s.last_used_at.saturating_add(idle_ttl))
            .collect())
    }

    async fn revoke_session(
        &self,
        account_id: AccountId,
        session_id: SessionId,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let res = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND session_id = ?")
            .bind(&account_id.as_bytes()[..])
            .bind(&session_id[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(tx, res.rows_affected() > 0)
    }

    async fn revoke_other_sessions(
        &self,
        account_id: AccountId,
        keep: SessionId,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = revoke_sessions(&mut tx, &account_id, Some(&keep)).await?;
        commit!(tx, n)
    }

    async fn revoke_all_sessions(&self, account_id: AccountId) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let n = revoke_sessions(&mut tx, &account_id, None).await?;
        commit!(tx, n)
    }

    async fn identity_chain(&self, account_id: AccountId) -> StoreResult<Option<IdentityChain>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let c = chain(&mut tx, &account_id).await?;
        commit!(tx, c)
    }

    async fn append_identity(
        &self,
        account_id: AccountId,
        expected_generation: u64,
        identity: Vec<u8>,
    ) -> StoreResult<IdentityChain> {
        let mut tx = self.write().await?;
        let a = get_account(&mut tx, &account_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(a.identity_generation, expected_generation)?;
        push_identity(&mut tx, &account_id, expected_generation + 1, &identity).await?;
        let c = chain(&mut tx, &account_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        commit!(tx, c)
    }

    async fn create_node(&self, node: NodeWrite, max_nodes: Option<u64>) -> StoreResult<Node> {
        let mut tx = self.write().await?;
        if node_exists(&mut tx, &node.node_id).await? {
            return Err(StoreError::AlreadyExists);
        }
        match &node.parent_id {
            Some(p) if node_exists(&mut tx, p).await? => {}
            _ => return Err(StoreError::NotFound),
        }
        if let Some(max) = max_nodes {
            if count(
                &mut tx,
                "SELECT COUNT(*) FROM nodes WHERE owner = ?",
                &node.owner.as_bytes()[..],
                None,
            )
            .await?
                >= max
            {
                return Err(StoreError::LimitReached);
            }
        }
        insert_node(&mut tx, &node).await?;
        commit!(
            tx,
            Node {
                node,
                content_revision: 0,
                content_length: 0,
                blob_key: None
            }
        )
    }

    async fn node(&self, node_id: NodeId) -> StoreResult<Option<Node>> {
        if let Some(n) = self.shared.cached(&self.shared.nodes, &node_id) {
            return Ok(n);
        }
        let epoch = self.shared.epoch();
        let n = get_node(&mut *self.read().await?, &node_id).await?;
        Shared::remember(&self.shared.nodes, epoch, node_id, n.clone());
        Ok(n)
    }

    async fn children(
        &self,
        parent_id: NodeId,
        after: Option<NodeId>,
        limit: u32,
    ) -> StoreResult<Vec<Node>> {
        let mut c = self.read().await?;
        let rows = sqlx::query(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE parent_id = ? AND node_id > ? ORDER BY node_id LIMIT ?"
        ))
        .bind(&parent_id.as_bytes()[..])
        .bind(after.map_or_else(Vec::new, |a| a.as_bytes().to_vec()))
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        rows.iter().map(node_from_row).collect()
    }

    async fn node_path(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut out = Vec::new();
        let mut cur = Some(node_id);
        while let Some(id) = cur {
            let Some(row) = sqlx::query("SELECT parent_id FROM nodes WHERE node_id = ?")
                .bind(&id.as_bytes()[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
            else {
                break;
            };
            if out.contains(&id) || out.len() > MAX_DEPTH {
                return Err(StoreError::backend("node path does not end at a root"));
            }
            out.push(id);
            cur = get_opt_id(&row, "parent_id")?.map(NodeId::from_bytes);
        }
        commit!(tx, out)
    }

    async fn subtree(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>> {
        subtree(&mut *self.read().await?, &node_id).await
    }

    async fn node_count(&self, owner: AccountId) -> StoreResult<u64> {
        count(
            &mut *self.read().await?,
            "SELECT COUNT(*) FROM nodes WHERE owner = ?",
            &owner.as_bytes()[..],
            None,
        )
        .await
    }

    async fn update_node(&self, up: NodeUpdate) -> StoreResult<Node> {
        let mut tx = self.write().await?;
        let n = update_node(&mut tx, up).await?;
        commit!(tx, n)
    }

    async fn delete_subtree(
        &self,
        node_id: NodeId,
        expected_revision: u64,
    ) -> StoreResult<Removed> {
        let mut tx = self.write().await?;
        let n = get_node(&mut tx, &node_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(n.node.revision, expected_revision)?;
        if n.node.parent_id.is_none() {
            return Err(StoreError::Invalid("a root cannot be deleted"));
        }
        let ids = subtree(&mut tx, &node_id).await?;
        let removed = remove_nodes(&mut tx, &ids).await?;
        commit!(tx, removed)
    }

    async fn create_upload(
        &self,
        up: NewUpload,
        limits: UploadLimits,
        now: u64,
    ) -> StoreResult<UploadCreated> {
        check_shape(&up)?;
        check_len(up.total_length)?;
        check_len(up.part_size)?;
        let mut tx = self.write().await?;
        if let (UploadTarget::Node { node_id, .. }, Some(creator)) = (&up.target, &up.creator) {
            let candidates = uploads_where(
                &mut tx,
                "creator = ? AND node_id = ?",
                &[&creator.as_bytes()[..], &node_id.as_bytes()[..]],
            )
            .await?;
            if let Some(existing) = candidates.into_iter().find(|u| u.resumed_by(&up, now)) {
                return commit!(tx, UploadCreated::Existing(existing));
            }
        }
        let uid = &up.upload_id.as_bytes()[..];
        let used = sqlx::query(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1) OR EXISTS (SELECT 1 FROM drops WHERE drop_id = ?1)",
        )
        .bind(uid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .is_some();
        if used {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(q) = limits.quota_bytes {
            if storage_used(&mut tx, &up.owner, now)
                .await?
                .saturating_add(up.total_length)
                > q
            {
                return Err(StoreError::QuotaExceeded);
            }
        }
        if let (Some(max), Some(creator)) = (limits.max_account_uploads, &up.creator) {
            let n = count(
                &mut tx,
                "SELECT COUNT(*) FROM uploads WHERE creator = ? AND expires_at > ?",
                &creator.as_bytes()[..],
                Some(now),
            )
            .await?;
            if n >= max {
                return Err(StoreError::LimitReached);
            }
        }
        if let UploadTarget::Drop { link_id, .. } = &up.target {
            let lid = &link_id.as_bytes()[..];
            if let Some(max) = limits.max_link_uploads {
                if count(
                    &mut tx,
                    "SELECT COUNT(*) FROM uploads WHERE link_id = ? AND expires_at > ?",
                    lid,
                    Some(now),
                )
                .await?
                    >= max
                {
                    return Err(StoreError::LimitReached);
                }
            }
            if let Some(max) = limits.max_link_drops {
                if count(
                    &mut tx,
                    "SELECT COUNT(*) FROM drops WHERE link_id = ?",
                    lid,
                    None,
                )
                .await?
                    >= max
                {
                    return Err(StoreError::LimitReached);
                }
            }
        }
        let (node_id, parent_id, content_revision, link_id, envelope) = match &up.target {
            UploadTarget::Node {
                node_id,
                parent_id,
                content_revision,
            } => (
                Some(node_id.as_bytes().to_vec()),
                Some(parent_id.as_bytes().to_vec()),
                *content_revision,
                None,
                None,
            ),
            UploadTarget::Drop { link_id, envelope } => (
                None,
                None,
                0,
                Some(link_id.as_bytes().to_vec()),
                Some(envelope.clone()),
            ),
        };
        let blob_key = blob_key_for_upload(&up.upload_id);
        sqlx::query(
            "INSERT INTO uploads (upload_id, creator, owner, node_id, parent_id, content_revision, link_id, envelope,
                                  total_length, part_size, created_at, expires_at, max_expires_at, blob_key)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uid)
        .bind(up.creator.map(|c| c.as_bytes().to_vec()))
        .bind(&up.owner.as_bytes()[..])
        .bind(node_id)
        .bind(parent_id)
        .bind(i(content_revision))
        .bind(link_id)
        .bind(envelope)
        .bind(i(up.total_length))
        .bind(i(up.part_size))
        .bind(i(up.created_at))
        .bind(i(up.expires_at))
        .bind(i(up.max_expires_at))
        .bind(&blob_key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        commit!(
            tx,
            UploadCreated::Created(Upload {
                upload: up,
                blob_key,
                parts: Vec::new()
            })
        )
    }

    async fn upload(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<Upload>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let u = live_upload(&mut tx, &upload_id, now).await?;
        commit!(tx, u)
    }

    async fn upload_head(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<NewUpload>> {
        live_upload_head(&mut *self.read().await?, &upload_id, now).await
    }

    async fn record_part(
        &self,
        upload_id: UploadId,
        index: u64,
        length: u64,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let up = live_upload_head(&mut tx, &upload_id, now)
            .await?
            .ok_or(StoreError::NotFound)?;
        if up.part_length(index) != Some(length) {
            return Err(StoreError::Invalid(
                "part index or length outside the upload's shape",
            ));
        }
        let uid = &upload_id.as_bytes()[..];
        sqlx::query(
            "INSERT OR REPLACE INTO upload_parts (upload_id, idx, length) VALUES (?, ?, ?)",
        )
        .bind(uid)
        .bind(i(index))
        .bind(i(length))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("UPDATE uploads SET expires_at = ? WHERE upload_id = ?")
            .bind(i(expires_at.min(up.max_expires_at)))
            .bind(uid)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(tx, ())
    }

    async fn finalize_upload(
        &self,
        upload_id: UploadId,
        f: FinalizeNode,
        now: u64,
    ) -> StoreResult<Finalized> {
        let mut tx = self.write().await?;
        let up = live_upload(&mut tx, &upload_id, now)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (node_id, parent_id, content_revision) = finalize_target(&up, &f)?;
        let old = get_node(&mut tx, &node_id).await?;
        check_finalize_over(old.as_ref(), f.expected_revision, content_revision)?;
        if !node_exists(&mut tx, &parent_id).await? {
            return Err(StoreError::NotFound);
        }
        if f.quota_bytes.is_some() {
            let used = storage_used(&mut tx, &f.node.owner, now).await?;
            check_finalize_quota(f.quota_bytes, used, &up, &f.node.owner, old.as_ref())?;
        }
        if old.is_none() {
            insert_node(&mut tx, &f.node).await?;
        } else {
            update_node(
                &mut tx,
                NodeUpdate {
                    expected_revision: f.expected_revision.unwrap_or_default(),
                    node: f.node.clone(),
                },
            )
            .await?;
        }
        sqlx::query("UPDATE nodes SET content_revision = ?, content_length = ?, blob_key = ? WHERE node_id = ?")
            .bind(i(content_revision))
            .bind(i(up.upload.total_length))
            .bind(&up.blob_key)
            .bind(&node_id.as_bytes()[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        delete_uploads(&mut tx, std::slice::from_ref(&up)).await?;
        let node = Node {
            node: f.node,
            content_revision,
            content_length: up.upload.total_length,
            blob_key: Some(up.blob_key.clone()),
        };
        commit!(
            tx,
            Finalized {
                node,
                created: old.is_none(),
                replaced_blob: old.and_then(|n| n.blob_key)
            }
        )
    }

    async fn finalize_drop(
        &self,
        upload_id: UploadId,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<DropRecord> {
        let mut tx = self.write().await?;
        let up = live_upload(&mut tx, &upload_id, now)
            .await?
            .ok_or(StoreError::NotFound)?;
        let UploadTarget::Drop {
            link_id: l,
            envelope,
        } = &up.upload.target
        else {
            return Err(StoreError::NotFound);
        };
        if l != &link_id || get_link(&mut tx, &link_id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        if !up.is_complete() {
            return Err(StoreError::UploadIncomplete);
        }
        let d = DropRecord {
            drop_id: upload_id,
            link_id,
            owner: up.upload.owner,
            created_at: now,
            total_length: up.upload.total_length,
            envelope: envelope.clone(),
            blob_key: up.blob_key.clone(),
            link_record: None,
        };
        sqlx::query("INSERT INTO drops (drop_id, link_id, owner, created_at, total_length, envelope, blob_key) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&d.drop_id.as_bytes()[..])
            .bind(&d.link_id.as_bytes()[..])
            .bind(&d.owner.as_bytes()[..])
            .bind(i(d.created_at))
            .bind(i(d.total_length))
            .bind(&d.envelope)
            .bind(&d.blob_key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        delete_uploads(&mut tx, std::slice::from_ref(&up)).await?;
        commit!(tx, d)
    }

    async fn delete_upload(&self, upload_id: UploadId) -> StoreResult<Option<Upload>> {
        let mut tx = self.write().await?;
        let up = get_upload(&mut tx, &upload_id).await?;
        if let Some(u) = &up {
            delete_uploads(&mut tx, std::slice::from_ref(u)).await?;
        }
        commit!(tx, up)
    }

    async fn expired_uploads(&self, now: u64, limit: u32) -> StoreResult<Vec<Upload>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(&format!(
            "SELECT {UPLOAD_COLS} FROM uploads WHERE expires_at <= ? ORDER BY expires_at, upload_id LIMIT ?"
        ))
        .bind(i(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(upload_from_row(&mut tx, r).await?);
        }
        commit!(tx, out)
    }

    async fn blob_key_in_use(&self, blob_key: &str) -> StoreResult<bool> {
        let mut c = self.read().await?;
        Ok(sqlx::query(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM nodes WHERE blob_key = ?1)
                OR EXISTS (SELECT 1 FROM drops WHERE blob_key = ?1)
                OR EXISTS (SELECT 1 FROM uploads WHERE blob_key = ?1)",
        )
        .bind(blob_key)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
        .is_some())
    }

    async fn upload_exists(&self, upload_id: UploadId) -> StoreResult<bool> {
        let mut c = self.read().await?;
        Ok(sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ?")
            .bind(&upload_id.as_bytes()[..])
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?
            .is_some())
    }

    async fn create_share(
        &self,
        share: ShareWrite,
        grants: Vec<GrantWrite>,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<ShareUpdated> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM shares WHERE share_id = ? OR root_node_id = ?")
            .bind(&share.share_id.as_bytes()[..])
            .bind(&share.root_node_id.as_bytes()[..])
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .is_some();
        if exists {
            return Err(StoreError::AlreadyExists);
        }
        if !node_exists(&mut tx, &share.root_node_id).await? {
            return Err(StoreError::NotFound);
        }
        for n in nodes {
            update_node(&mut tx, n).await?;
        }
        write_share(&mut tx, &share, 0, &[], true).await?;
        for g in &grants {
            put_grant(&mut tx, &share.share_id, g).await?;
        }
        commit!(
            tx,
            ShareUpdated {
                revision: 0,
                generation: share.generation,
                removed: Removed::default()
            }
        )
    }

    async fn share(&self, share_id: ShareId) -> StoreResult<Option<Share>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let s = get_share(&mut tx, &share_id).await?;
        commit!(tx, s)
    }

    async fn share_by_root(&self, node_id: NodeId) -> StoreResult<Option<Share>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let s = shares_where(&mut tx, "root_node_id = ?", &node_id.as_bytes()[..])
            .await?
            .pop();
        commit!(tx, s)
    }

    async fn shares_owned(&self, owner: AccountId) -> StoreResult<Vec<Share>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let s = shares_where(&mut tx, "owner = ?", &owner.as_bytes()[..]).await?;
        commit!(tx, s)
    }

    async fn shares_member_of(&self, member: AccountId) -> StoreResult<Vec<Share>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let s = shares_where(
            &mut tx,
            "share_id IN (SELECT share_id FROM share_members WHERE account_id = ?)",
            &member.as_bytes()[..],
        )
        .await?
        .into_iter()
        .filter(|s| s.permission_of(&member).is_some())
        .collect();
        commit!(tx, s)
    }

    async fn add_member(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        share: ShareWrite,
        grant: GrantWrite,
    ) -> StoreResult<ShareUpdated> {
        let mut tx = self.write().await?;
        let sh = get_share(&mut tx, &share_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(sh.revision, expected_revision)?;
        check_member_add(&sh, share_id, &share, &grant)?;
        let departed = sh.departed_after(&share, &[grant.member]);
        write_share(&mut tx, &share, sh.revision + 1, &departed, false).await?;
        put_grant(&mut tx, &share_id, &grant).await?;
        commit!(
            tx,
            ShareUpdated {
                revision: sh.revision + 1,
                generation: share.generation,
                removed: Removed::default()
            }
        )
    }

    async fn remove_members(&self, r: MemberRemoval) -> StoreResult<ShareUpdated> {
        let mut tx = self.write().await?;
        let sh = get_share(&mut tx, &r.share_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(sh.revision, r.expected_revision)?;
        check_rotation(&sh.share, &r.share)?;
        for n in r.nodes {
            update_node(&mut tx, n).await?;
        }
        // Every grant of the old generation or older goes, the removed members' with them
        // (§9.2.2); remaining members read older seals through the back-chains.
        delete_grants_below(&mut tx, &r.share_id, r.share.generation).await?;
        for m in &r.removed {
            delete_grants_of(&mut tx, &r.share_id, m).await?;
        }
        for g in &r.grants {
            put_grant(&mut tx, &r.share_id, g).await?;
        }
        let uploads = abort_uploads_into(&mut tx, &r.removed, &sh.share.root_node_id).await?;
        let departed = sh.departed_after(&r.share, &r.removed);
        write_share(&mut tx, &r.share, sh.revision + 1, &departed, false).await?;
        commit!(
            tx,
            ShareUpdated {
                revision: sh.revision + 1,
                generation: r.share.generation,
                removed: Removed {
                    uploads,
                    ..Removed::default()
                }
            }
        )
    }

    async fn leave_share(&self, share_id: ShareId, member: AccountId) -> StoreResult<ShareUpdated> {
        let mut tx = self.write().await?;
        let sh = get_share(&mut tx, &share_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if sh.permission_of(&member).is_none() {
            return Err(StoreError::NotFound);
        }
        delete_grants_of(&mut tx, &share_id, &member).await?;
        let uploads = abort_uploads_into(&mut tx, &[member], &sh.share.root_node_id).await?;
        let mut departed = sh.departed.clone();
        departed.push(member);
        set_departed(&mut tx, &share_id, &departed).await?;
        sqlx::query("UPDATE shares SET revision = ? WHERE share_id = ?")
            .bind(i(sh.revision + 1))
            .bind(&share_id.as_bytes()[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(
            tx,
            ShareUpdated {
                revision: sh.revision + 1,
                generation: sh.share.generation,
                removed: Removed {
                    uploads,
                    ..Removed::default()
                }
            }
        )
    }

    async fn delete_share(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<Removed> {
        let mut tx = self.write().await?;
        let sh = get_share(&mut tx, &share_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        expect_revision(sh.revision, expected_revision)?;
        for n in nodes {
            update_node(&mut tx, n).await?;
        }
        let members: Vec<AccountId> = sh.share.members.iter().map(|m| m.0).collect();
        let uploads = abort_uploads_into(&mut tx, &members, &sh.share.root_node_id).await?;
        let mut removed = drop_share(&mut tx, &share_id).await?;
        removed.uploads.extend(uploads);
        commit!(tx, removed)
    }

    async fn grants(&self, share_id: ShareId, member: AccountId) -> StoreResult<Vec<GrantWrite>> {
        let mut c = self.read().await?;
        let rows = sqlx::query("SELECT generation, grant_record FROM grants WHERE share_id = ? AND member = ? ORDER BY generation")
            .bind(&share_id.as_bytes()[..])
            .bind(&member.as_bytes()[..])
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(GrantWrite {
                    share_id,
                    member,
                    generation: get_u(r, "generation")?,
                    grant: get_bytes(r, "grant_record")?,
                })
            })
            .collect()
    }

    async fn create_link(&self, link: LinkWrite, max_links: Option<u64>) -> StoreResult<Link> {
        let mut tx = self.write().await?;
        if get_link(&mut tx, &link.link_id).await?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(max) = max_links {
            if count(
                &mut tx,
                "SELECT COUNT(*) FROM links WHERE owner = ?",
                &link.owner.as_bytes()[..],
                None,
            )
            .await?
                >= max
            {
                return Err(StoreError::LimitReached);
            }
        }
        let l = insert_link(&mut tx, &link).await?;
        commit!(tx, l)
    }

    async fn link(&self, link_id: LinkId) -> StoreResult<Option<Link>> {
        if let Some(l) = self.shared.cached(&self.shared.links, &link_id) {
            return Ok(l);
        }
        let epoch = self.shared.epoch();
        let l = get_link(&mut *self.read().await?, &link_id).await?;
        Shared::remember(&self.shared.links, epoch, link_id, l.clone());
        Ok(l)
    }

    async fn link_access(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess> {
        Ok(LinkAccess::of(self.link(link_id).await?, now))
    }

    async fn consume_download(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess> {
        let mut tx = self.write().await?;
        let access = LinkAccess::of(get_link(&mut tx, &link_id).await?, now);
        let LinkAccess::Live(mut l) = access else {
            return Ok(access);
        };
        l.downloads += 1;
        sqlx::query("UPDATE links SET downloads = ? WHERE link_id = ?")
            .bind(i(l.downloads))
            .bind(&link_id.as_bytes()[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(tx, LinkAccess::Live(l))
    }

    async fn links_of(&self, owner: AccountId) -> StoreResult<Vec<Link>> {
        let mut c = self.read().await?;
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLS} FROM links WHERE owner = ? ORDER BY created_at, link_id"
        ))
        .bind(&owner.as_bytes()[..])
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        rows.iter().map(link_from_row).collect()
    }

    async fn revoke_link(&self, owner: AccountId, link_id: LinkId) -> StoreResult<Removed> {
        let mut tx = self.write().await?;
        match get_link(&mut tx, &link_id).await? {
            Some(l) if l.link.owner == owner => {}
            _ => return Err(StoreError::NotFound),
        }
        let removed = revoke_link(&mut tx, &link_id).await?;
        commit!(tx, removed)
    }

    async fn reseal_link(
        &self,
        owner: AccountId,
        link_id: LinkId,
        link_record: Vec<u8>,
    ) -> StoreResult<Link> {
        let mut tx = self.write().await?;
        let res = sqlx::query("UPDATE links SET link_record = ? WHERE link_id = ? AND owner = ?")
            .bind(&link_record[..])
            .bind(&link_id.as_bytes()[..])
            .bind(&owner.as_bytes()[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if res.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        let l = get_link(&mut tx, &link_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        commit!(tx, l)
    }

    async fn rotate_link(
        &self,
        owner: AccountId,
        old: LinkId,
        new: LinkWrite,
    ) -> StoreResult<(Link, Removed)> {
        let mut tx = self.write().await?;
        match get_link(&mut tx, &old).await? {
            Some(l) if l.link.owner == owner => {}
            _ => return Err(StoreError::NotFound),
        }
        if new.link_id == old || new.owner != owner {
            return Err(StoreError::Invalid(
                "rotation needs a new link id of the same owner",
            ));
        }
        if get_link(&mut tx, &new.link_id).await?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        let removed = revoke_link(&mut tx, &old).await?;
        let l = insert_link(&mut tx, &new).await?;
        commit!(tx, (l, removed))
    }

    async fn create_link_token(
        &self,
        token_hash: Digest,
        link_id: LinkId,
        expires_at: u64,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if get_link(&mut tx, &link_id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        if sqlx::query("SELECT 1 FROM link_tokens WHERE token_hash = ?")
            .bind(&token_hash[..])
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .is_some()
        {
            return Err(StoreError::AlreadyExists);
        }
        sqlx::query("INSERT INTO link_tokens (token_hash, link_id, expires_at) VALUES (?, ?, ?)")
            .bind(&token_hash[..])
            .bind(&link_id.as_bytes()[..])
            .bind(i(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(tx, ())
    }

    async fn link_token_valid(
        &self,
        token_hash: &Digest,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<bool> {
        let mut c = self.read().await?;
        let row = sqlx::query("SELECT link_id, expires_at FROM link_tokens WHERE token_hash = ?")
            .bind(&token_hash[..])
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(false) };
        Ok(get_id(&row, "link_id")? == *link_id.as_bytes() && now < get_u(&row, "expires_at")?)
    }

    async fn drops_of(&self, owner: AccountId) -> StoreResult<Vec<DropRecord>> {
        let mut c = self.read().await?;
        let rows = sqlx::query(
            "SELECT drop_id, link_id, owner, created_at, total_length, envelope, blob_key, link_record FROM drops WHERE owner = ? ORDER BY created_at, drop_id",
        )
        .bind(&owner.as_bytes()[..])
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        rows.iter().map(drop_from_row).collect()
    }

    async fn drop_info(&self, drop_id: UploadId) -> StoreResult<Option<DropRecord>> {
        let mut c = self.read().await?;
        let row = sqlx::query("SELECT drop_id, link_id, owner, created_at, total_length, envelope, blob_key, link_record FROM drops WHERE drop_id = ?")
            .bind(&drop_id.as_bytes()[..])
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
        row.as_ref().map(drop_from_row).transpose()
    }

    async fn delete_drop(&self, owner: AccountId, drop_id: UploadId) -> StoreResult<String> {
        let mut tx = self.write().await?;
        let Some(row) = sqlx::query("SELECT blob_key FROM drops WHERE drop_id = ? AND owner = ?")
            .bind(&drop_id.as_bytes()[..])
            .bind(&owner.as_bytes()[..])
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
        else {
            return Err(StoreError::NotFound);
        };
        let key = row.try_get::<String, _>(0).map_err(db)?;
        sqlx::query("DELETE FROM drops WHERE drop_id = ?")
            .bind(&drop_id.as_bytes()[..])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        commit!(tx, key)
    }

    async fn purge_expired(&self, now: u64, idle_ttl: u64) -> StoreResult<Purged> {
        let mut tx = self.write().await?;
        let n = i(now);
        // Idle expiry: last_used_at + idle_ttl <= now, written without overflow.
        let sessions =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_used_at <= ?")
                .bind(n)
                .bind(i(now.saturating_sub(idle_ttl)))
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        let handshakes = lock(&self.shared.handshakes).sweep(now);
        let link_tokens = sqlx::query("DELETE FROM link_tokens WHERE expires_at <= ?")
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        commit!(
            tx,
            Purged {
                sessions,
                handshakes,
                link_tokens
            }
        )
    }

    async fn server_secret(&self, name: &str, fresh: ServerSecret) -> StoreResult<ServerSecret> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT OR IGNORE INTO server_secrets (name, secret) VALUES (?, ?)")
            .bind(name)
            .bind(fresh.expose())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let stored: Vec<u8> = sqlx::query("SELECT secret FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        commit!(tx, ServerSecret::new(stored))
    }

    async fn health(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both commit modes: what a write returned survives closing and reopening the database, and
    /// a read after a write sees it (the read cache is invalidated by the write).
    #[tokio::test]
    async fn commits_persist_and_reads_follow_writes_in_both_modes() {
        for mode in [CommitSync::Group, CommitSync::Each] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("m.sqlite");
            let options = SqliteOptions {
                commit_sync: mode,
                ..SqliteOptions::default()
            };
            let store = SqliteMetadataStore::open(&path, options.clone())
                .await
                .expect("open");
            let now = 1_000;
            let acc = super::super::testsuite::register(&store, "cache-user", now).await;
            let root = acc.root_node_id;
            let before = store.node(root).await.expect("node").expect("root");
            let mut up = before.node.clone();
            up.revision += 1;
            up.record = b"changed".to_vec();
            store
                .update_node(NodeUpdate {
                    node: up,
                    expected_revision: before.node.revision,
                })
                .await
                .expect("update");
            let after = store.node(root).await.expect("node").expect("root");
            assert_eq!(
                after.node.record, b"changed",
                "{mode:?}: cached read after write"
            );
            store.close().await;
            let store = SqliteMetadataStore::open(&path, options)
                .await
                .expect("reopen");
            let again = store.node(root).await.expect("node").expect("root");
            assert_eq!(again.node.record, b"changed", "{mode:?}: after reopening");
            assert!(store
                .account_by_username("cache-user")
                .await
                .expect("account")
                .is_some());
        }
    }

    /// Handshakes are single use, typed and expire; a registration reserves its username.
    #[tokio::test]
    async fn handshakes_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteMetadataStore::open(dir.path().join("m.sqlite"), SqliteOptions::default())
                .await
                .expect("open");
        let login = |id: u8, expires_at| Handshake {
            id: [id; 16],
            kind: HandshakeKind::Login,
            username: Some("u".into()),
            account_id: None,
            session_id: None,
            state: vec![id],
            expires_at,
        };
        store.put_handshake(login(1, 100), 10).await.expect("put");
        assert!(matches!(
            store.put_handshake(login(1, 100), 10).await,
            Err(StoreError::AlreadyExists)
        ));
        let reg = |id: u8, name: &str| Handshake {
            id: [id; 16],
            kind: HandshakeKind::Registration,
            username: Some(name.into()),
            account_id: Some(AccountId::from_bytes([id; 16])),
            session_id: None,
            state: Vec::new(),
            expires_at: 100,
        };
        store
            .put_handshake(reg(2, "taken"), 10)
            .await
            .expect("reserve");
        assert!(matches!(
            store.put_handshake(reg(3, "taken"), 10).await,
            Err(StoreError::UsernameTaken)
        ));
        // Wrong kind: left in place; right kind: taken once.
        assert!(store
            .take_handshake([1; 16], HandshakeKind::Registration, 20)
            .await
            .expect("take")
            .is_none());
        let h = store
            .take_handshake([1; 16], HandshakeKind::Login, 20)
            .await
            .expect("take")
            .expect("live");
        assert_eq!(h.state, vec![1]);
        assert!(store
            .take_handshake([1; 16], HandshakeKind::Login, 20)
            .await
            .expect("take")
            .is_none());
        // Expired: gone, and its reservation with it.
        store.put_handshake(login(4, 50), 10).await.expect("put");
        assert!(store
            .take_handshake([4; 16], HandshakeKind::Login, 50)
            .await
            .expect("take")
            .is_none());
        store
            .put_handshake(reg(5, "taken"), 100)
            .await
            .expect("an expired reservation gives way");
    }
}
