//! The storage test suite (`coffer_server::store::testsuite`) against every embedded backend:
//! SQLite + local directory (in a temporary directory) and the in-memory stores.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_server::store::local::LocalBlobStore;
use coffer_server::store::memory::{MemoryBlobStore, MemoryMetadataStore};
use coffer_server::store::sqlite::{SqliteMetadataStore, SqliteOptions};
use coffer_server::store::testsuite::{self, Harness, Stores};

/// SQLite metadata + local-directory blobs in a temporary directory.
#[derive(Default)]
struct SqliteLocal {
    state: Mutex<Option<(tempfile::TempDir, Arc<SqliteMetadataStore>)>>,
}

impl SqliteLocal {
    fn dir(&self) -> PathBuf {
        self.state
            .lock()
            .expect("lock")
            .as_ref()
            .expect("fresh() first")
            .0
            .path()
            .to_path_buf()
    }

    async fn open(&self, dir: &std::path::Path) -> Stores {
        let meta = Arc::new(
            SqliteMetadataStore::open(dir.join("coffer.db"), SqliteOptions::default())
                .await
                .expect("open sqlite"),
        );
        let blobs = Arc::new(
            LocalBlobStore::open(dir.join("blobs"))
                .await
                .expect("open blobs"),
        );
        if let Some(state) = self.state.lock().expect("lock").as_mut() {
            state.1 = meta.clone();
        }
        Stores { meta, blobs }
    }

    fn sqlite(&self) -> Arc<SqliteMetadataStore> {
        self.state
            .lock()
            .expect("lock")
            .as_ref()
            .expect("fresh() first")
            .1
            .clone()
    }
}

#[async_trait]
impl Harness for SqliteLocal {
    async fn fresh(&self) -> Stores {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let meta = Arc::new(
            SqliteMetadataStore::open(path.join("coffer.db"), SqliteOptions::default())
                .await
                .expect("open sqlite"),
        );
        *self.state.lock().expect("lock") = Some((dir, meta));
        self.open(&path).await
    }

    async fn reopen(&self, stores: Stores) -> Option<Stores> {
        self.sqlite().close().await;
        drop(stores);
        let dir = self.dir();
        Some(self.open(&dir).await)
    }

    async fn dump(&self, _stores: &Stores) -> Vec<(String, Vec<u8>)> {
        self.sqlite().dump_values().await.expect("dump")
    }

    async fn reopen_with_debris(&self, stores: Stores) -> Option<(Stores, bool)> {
        // What a crash mid-write leaves: a partial temporary file.
        let tmp = self.dir().join("blobs").join("tmp");
        std::fs::write(tmp.join("0123456789abcdef0123456789abcdef"), b"half a part")
            .expect("debris");
        std::fs::create_dir_all(tmp.join("stray-dir")).expect("debris dir");
        let reopened = self.reopen(stores).await?;
        let clean = std::fs::read_dir(&tmp).expect("read tmp").next().is_none();
        Some((reopened, clean))
    }
}

/// The in-memory stores.
#[derive(Default)]
struct Memory {
    meta: Mutex<Option<Arc<MemoryMetadataStore>>>,
}

#[async_trait]
impl Harness for Memory {
    async fn fresh(&self) -> Stores {
        let meta = Arc::new(MemoryMetadataStore::new());
        *self.meta.lock().expect("lock") = Some(meta.clone());
        Stores {
            meta,
            blobs: Arc::new(MemoryBlobStore::new()),
        }
    }

    async fn reopen(&self, _stores: Stores) -> Option<Stores> {
        None
    }

    async fn dump(&self, _stores: &Stores) -> Vec<(String, Vec<u8>)> {
        self.meta
            .lock()
            .expect("lock")
            .as_ref()
            .expect("fresh() first")
            .dump_values()
    }

    async fn reopen_with_debris(&self, _stores: Stores) -> Option<(Stores, bool)> {
        None
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_local {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    testsuite::$name(&SqliteLocal::default()).await;
                }
            )*
        }
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    testsuite::$name(&Memory::default()).await;
                }
            )*
        }
    };
}

suite!(
    registration,
    concurrent_registrations,
    handshakes,
    sessions,
    password_change,
    identities,
    nodes,
    delete_subtree,
    uploads_and_finalize,
    quota_and_limits,
    upload_expiry_and_gc,
    shares,
    rotation_deletes_old_grants,
    links,
    link_reseal,
    drops,
    recovery,
    account_deletion_scan,
    reopen_keeps_data,
    leftover_temp_files,
    blob_basics,
    assembled_blob_is_a_snapshot,
    orphan_collection,
    concurrent_revisions,
    dropped_operations_leave_the_store_usable,
    server_secrets,
);

/// A database written by a newer schema version is refused rather than misread.
#[tokio::test]
async fn sqlite_refuses_unknown_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coffer.db");
    let store = SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .expect("open");
    store.close().await;
    let url = format!("sqlite://{}", path.display());
    {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("url")
            .connect()
            .await
            .expect("connect");
        sqlx::raw_sql("PRAGMA user_version = 99")
            .execute(&mut conn)
            .await
            .expect("bump");
    }
    assert!(SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .is_err());
}

/// What schema version 5 removed from version 4, put back by the downgrades below: the unused
/// `handshakes` table (handshakes live in memory) and the `accounts.sealed_account_secrets`
/// column (the secrets travel inside the key bundle).
const V4_LEFTOVERS: &str = "CREATE TABLE handshakes (
        id BLOB PRIMARY KEY NOT NULL,
        kind INTEGER NOT NULL,
        username TEXT,
        account_id BLOB,
        session_id BLOB,
        state BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX handshakes_account ON handshakes(account_id);
    CREATE INDEX handshakes_username ON handshakes(username);
    ALTER TABLE accounts ADD COLUMN sealed_account_secrets BLOB NOT NULL DEFAULT x''";

/// Opens a plain connection to the database file (to reshape it as an older version would).
async fn raw_connection(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// How many of `what` (a table or an `accounts` column) the database has.
async fn schema_has(conn: &mut sqlx::SqliteConnection, table: &str, column: Option<&str>) -> i64 {
    let q = match column {
        None => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(table.to_owned()),
        Some(c) => sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?")
            .bind(table.to_owned())
            .bind(c.to_owned()),
    };
    q.fetch_one(conn).await.expect("schema query")
}

/// A database of schema version 4, with an account whose leftover column is filled and a stale
/// handshake row, is migrated at open to version 5: the table and the column are gone, the
/// account reads back unchanged, and the store keeps working.
#[tokio::test]
async fn sqlite_migrates_version_4() {
    use coffer_server::store::MetadataStore;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coffer.db");
    let store = SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .expect("open");
    let before = testsuite::register(&store, "vera", 1_000).await;
    store.close().await;
    {
        let mut conn = raw_connection(&path).await;
        sqlx::raw_sql(&format!(
            "{V4_LEFTOVERS}; UPDATE accounts SET sealed_account_secrets = x'0102'; \
             INSERT INTO handshakes VALUES (x'00', 1, 'vera', NULL, NULL, x'03', 99); \
             PRAGMA user_version = 4"
        ))
        .execute(&mut conn)
        .await
        .expect("downgrade");
        assert_eq!(schema_has(&mut conn, "handshakes", None).await, 1);
    }
    let store = SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .expect("migrated");
    assert_eq!(
        store.account_by_username("vera").await.expect("read"),
        Some(before.clone())
    );
    let other = testsuite::register(&store, "walt", 1_000).await;
    assert_ne!(other.account_id, before.account_id);
    assert!(store
        .dump_values()
        .await
        .expect("dump")
        .iter()
        .all(|(table, _)| table != "handshakes"));
    store.close().await;
    let mut conn = raw_connection(&path).await;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .expect("version");
    assert_eq!(version, coffer_server::store::sqlite::SCHEMA_VERSION);
    assert_eq!(version, 5);
    assert_eq!(schema_has(&mut conn, "handshakes", None).await, 0);
    assert_eq!(
        schema_has(&mut conn, "accounts", Some("sealed_account_secrets")).await,
        0
    );
    assert_eq!(
        schema_has(&mut conn, "accounts", Some("key_bundle")).await,
        1
    );
}

/// A database of schema version 1 (drops without `link_record`, no `server_secrets`, the
/// account's `key_bundle` column named `wrapped_master_key`, and the version-4 leftovers) is
/// migrated at open.
#[tokio::test]
async fn sqlite_migrates_version_1() {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coffer.db");
    let store = SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .expect("open");
    store.close().await;
    let url = format!("sqlite://{}", path.display());
    let connect = || async {
        sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("url")
            .connect()
            .await
            .expect("connect")
    };
    {
        // Back to the version-1 shape.
        let mut conn = connect().await;
        sqlx::raw_sql(&format!(
            "{V4_LEFTOVERS}; DROP TABLE server_secrets; \
                 ALTER TABLE drops DROP COLUMN link_record; \
                 ALTER TABLE accounts RENAME COLUMN key_bundle TO wrapped_master_key; \
                 PRAGMA user_version = 1"
        ))
        .execute(&mut conn)
        .await
        .expect("downgrade");
    }
    let store = SqliteMetadataStore::open(&path, SqliteOptions::default())
        .await
        .expect("migrated");
    store.close().await;
    let mut conn = connect().await;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .expect("version");
    assert_eq!(version, coffer_server::store::sqlite::SCHEMA_VERSION);
    let has_column: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('drops') WHERE name = 'link_record'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("table info");
    assert_eq!(has_column, 1);
    let has_table: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'server_secrets'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("tables");
    assert_eq!(has_table, 1);
    let renamed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('accounts') WHERE name = 'key_bundle'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("table info");
    assert_eq!(renamed, 1);
}
