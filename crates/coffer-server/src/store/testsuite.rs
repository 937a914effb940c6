//! The storage test suite, written against the traits.
//!
//! Every backend runs every function here (see `tests/storage_suite.rs`); a new backend
//! (PostgreSQL, S3) implements [`Harness`] and runs the same list. Each function panics with a
//! message on the first behaviour that differs from the traits' contract.
#![allow(clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use super::*;

/// A pair of stores under test.
#[derive(Clone)]
pub struct Stores {
    /// The metadata store.
    pub meta: Arc<dyn MetadataStore>,
    /// The blob store.
    pub blobs: Arc<dyn BlobStore>,
}

/// What a backend provides to the suite.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Fresh, empty stores (a new database and directory each time).
    async fn fresh(&self) -> Stores;

    /// Closes the stores and opens the same data again; `None` for a backend without
    /// persistence.
    async fn reopen(&self, stores: Stores) -> Option<Stores>;

    /// Every stored metadata value as bytes, with its table (for the deletion scan). Tables
    /// holding what §11.6.9 keeps after deletion (the identity chain) are named `identities` or
    /// `identity_chains`.
    async fn dump(&self, stores: &Stores) -> Vec<(String, Vec<u8>)>;

    /// Leaves the debris of an interrupted blob write behind, reopens the blob store and
    /// returns it with whether the debris is gone; `None` if the backend has no such state.
    async fn reopen_with_debris(&self, stores: Stores) -> Option<(Stores, bool)>;
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Fresh 16 unique bytes.
fn fresh16() -> [u8; 16] {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut out = [0x5au8; 16];
    out[..8].copy_from_slice(&Sha256::digest(n.to_be_bytes())[..8]);
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

fn nid() -> NodeId {
    NodeId::from_bytes(fresh16())
}

/// Base time of the tests.
const T0: u64 = 1_800_000_000;
const DAY: u64 = 86_400;
/// A part size for tests (the store does not enforce §11.9.1's minimum).
const PS: u64 = 1000;

fn node_write(
    owner: AccountId,
    parent: Option<NodeId>,
    kind: NodeKind,
    revision: u64,
) -> NodeWrite {
    let node_id = nid();
    let mut record = b"signed-node:".to_vec();
    record.extend_from_slice(node_id.as_bytes());
    record.extend_from_slice(&revision.to_be_bytes());
    NodeWrite {
        node_id,
        parent_id: parent,
        owner,
        kind,
        revision,
        share_id: None,
        record,
    }
}

fn next_revision(n: &NodeWrite) -> NodeWrite {
    let mut out = n.clone();
    out.revision += 1;
    out.record.extend_from_slice(b"+");
    out
}

/// The registration handshake reserving `name` at `now`, and the account it then creates.
fn new_registration(name: &str, now: u64) -> (Handshake, NewAccount) {
    let account_id = AccountId::from_bytes(fresh16());
    let handshake = Handshake {
        id: fresh16(),
        kind: HandshakeKind::Registration,
        username: Some(name.to_owned()),
        account_id: Some(account_id),
        session_id: None,
        state: Vec::new(),
        expires_at: now + 300,
    };
    let account = NewAccount {
        account_id,
        username: name.to_owned(),
        password_file: b"password-file-0".to_vec(),
        key_bundle: b"kb-0".to_vec(),
        identity: b"identity-0".to_vec(),
        root: node_write(account_id, None, NodeKind::Folder, 1),
        created_at: now,
    };
    (handshake, account)
}

/// Registers an account named `name` at `now`.
pub async fn register(m: &dyn MetadataStore, name: &str, now: u64) -> Account {
    let (handshake, account) = new_registration(name, now);
    m.put_handshake(handshake, now).await.expect("reserve");
    m.create_account(account, now)
        .await
        .expect("create account")
}

fn new_upload(
    creator: AccountId,
    node_id: NodeId,
    parent_id: NodeId,
    content_revision: u64,
    total: u64,
    now: u64,
) -> NewUpload {
    NewUpload {
        upload_id: UploadId::from_bytes(fresh16()),
        creator: Some(creator),
        owner: creator,
        target: UploadTarget::Node {
            node_id,
            parent_id,
            content_revision,
        },
        total_length: total,
        part_size: PS,
        created_at: now,
        expires_at: now + DAY,
        max_expires_at: now + 7 * DAY,
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn created(c: UploadCreated) -> Upload {
    match c {
        UploadCreated::Created(u) => u,
        UploadCreated::Existing(u) => panic!(
            "expected a new upload, got existing {:?}",
            u.upload.upload_id
        ),
    }
}

/// Sends every part of `data` to both stores.
async fn send_parts(s: &Stores, up: &Upload, data: &[u8], now: u64) {
    for (i, chunk) in data.chunks(up.upload.part_size as usize).enumerate() {
        let stored = s
            .blobs
            .put_part(
                up.upload.upload_id,
                i as u64,
                bytes_stream(chunk.to_vec()),
                up.upload.part_size,
            )
            .await
            .expect("put part");
        assert_eq!(stored.length, chunk.len() as u64);
        s.meta
            .record_part(up.upload.upload_id, i as u64, stored.length, now + DAY, now)
            .await
            .expect("record part");
    }
}

/// Uploads `data` as the content of a node (created if `expected` is `None`), the way the HTTP
/// layer does: parts, assemble, finalize, delete parts and the replaced blob.
pub async fn upload_content(
    s: &Stores,
    node: NodeWrite,
    expected: Option<u64>,
    content_revision: u64,
    data: &[u8],
    now: u64,
) -> Finalized {
    let parent = node.parent_id.expect("a parent");
    let up = created(
        s.meta
            .create_upload(
                new_upload(
                    node.owner,
                    node.node_id,
                    parent,
                    content_revision,
                    data.len() as u64,
                    now,
                ),
                UploadLimits::default(),
                now,
            )
            .await
            .expect("create upload"),
    );
    send_parts(s, &up, data, now).await;
    assert_eq!(
        s.blobs
            .assemble(up.upload.upload_id, up.part_count(), &up.blob_key)
            .await
            .expect("assemble"),
        data.len() as u64
    );
    let fin = s
        .meta
        .finalize_upload(
            up.upload.upload_id,
            FinalizeNode {
                expected_revision: expected,
                node,
                quota_bytes: None,
            },
            now,
        )
        .await
        .expect("finalize");
    s.blobs
        .delete_parts(up.upload.upload_id)
        .await
        .expect("delete parts");
    if let Some(old) = &fin.replaced_blob {
        s.blobs
            .delete_blob(old)
            .await
            .expect("delete replaced blob");
    }
    fin
}

async fn read_all(b: &dyn BlobStore, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let mut r = b.read(key, range).await.expect("read");
    let mut out = Vec::new();
    while let Some(chunk) = r.stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

fn link_write(
    owner: AccountId,
    node_id: NodeId,
    kind: LinkKind,
    max_downloads: Option<u64>,
    expires_at: Option<u64>,
    now: u64,
) -> LinkWrite {
    LinkWrite {
        link_id: LinkId::from_bytes(fresh16()),
        owner,
        node_id,
        kind,
        link_record: b"link-record".to_vec(),
        owner_entry: b"owner-entry".to_vec(),
        verifier_hash: None,
        drop_secret_hash: if kind == LinkKind::Drop {
            Some([7; 32])
        } else {
            None
        },
        expires_at,
        max_downloads,
        created_at: now,
    }
}

fn share_write(
    owner: AccountId,
    root: NodeId,
    generation: u64,
    members: &[(AccountId, Permission)],
) -> ShareWrite {
    let mut record = b"signed-share:".to_vec();
    record.extend_from_slice(&generation.to_be_bytes());
    for (m, _) in members {
        record.extend_from_slice(m.as_bytes());
    }
    ShareWrite {
        share_id: ShareId::from_bytes(fresh16()),
        root_node_id: root,
        owner,
        generation,
        members: members.to_vec(),
        record,
    }
}

fn grant(share_id: ShareId, member: AccountId, generation: u64) -> GrantWrite {
    GrantWrite {
        share_id,
        member,
        generation,
        grant: format!("grant-{generation}").into_bytes(),
    }
}

fn session(account: AccountId, created_at: u64) -> (NewSession, Digest) {
    let token = fresh16();
    let hash: Digest = Sha256::digest(token).into();
    (
        NewSession {
            session_id: fresh16(),
            account_id: account,
            token_hash: hash,
            label: "laptop".into(),
            created_at,
            expires_at: created_at + 90 * DAY,
        },
        hash,
    )
}

// ---- accounts -------------------------------------------------------------------------------

/// Registration reserves names and ids, creates the account with its chain and root.
pub async fn registration(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "alice", T0).await;
    assert_eq!(a.revision, 0);
    assert_eq!(a.identity_generation, 0);
    assert_eq!(m.account(a.account_id).await.expect("get"), Some(a.clone()));
    assert_eq!(
        m.account_by_username("alice").await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(m.account_by_username("nobody").await.expect("get"), None);
    let chain = m
        .identity_chain(a.account_id)
        .await
        .expect("chain")
        .expect("exists");
    assert_eq!(chain.generations, vec![b"identity-0".to_vec()]);
    assert!(!chain.deleted);
    let root = m.node(a.root_node_id).await.expect("root").expect("exists");
    assert_eq!(root.node.parent_id, None);
    assert_eq!(root.node.owner, a.account_id);

    // A registered name cannot be reserved again.
    let reserve = |name: &str, id: [u8; 16], expires_at: u64| Handshake {
        id: fresh16(),
        kind: HandshakeKind::Registration,
        username: Some(name.to_owned()),
        account_id: Some(AccountId::from_bytes(id)),
        session_id: None,
        state: vec![1, 2, 3],
        expires_at,
    };
    assert!(matches!(
        m.put_handshake(reserve("alice", fresh16(), T0 + 300), T0)
            .await,
        Err(StoreError::UsernameTaken)
    ));
    // A live reservation blocks the name; once lapsed, it does not.
    let bob_id = fresh16();
    m.put_handshake(reserve("bob", bob_id, T0 + 300), T0)
        .await
        .expect("reserve bob");
    assert!(matches!(
        m.put_handshake(reserve("bob", fresh16(), T0 + 400), T0 + 10)
            .await,
        Err(StoreError::UsernameTaken)
    ));
    // Finishing without the right reservation fails.
    let mut na = NewAccount {
        account_id: AccountId::from_bytes(fresh16()),
        username: "bob".into(),
        password_file: vec![1],
        key_bundle: vec![2],
        identity: vec![4],
        root: node_write(AccountId::from_bytes(bob_id), None, NodeKind::Folder, 1),
        created_at: T0,
    };
    assert!(matches!(
        m.create_account(na.clone(), T0 + 20).await,
        Err(StoreError::NotFound)
    ));
    na.account_id = AccountId::from_bytes(bob_id);
    assert!(
        matches!(
            m.create_account(na.clone(), T0 + 300).await,
            Err(StoreError::NotFound)
        ),
        "lapsed reservation"
    );
    m.put_handshake(reserve("bob", fresh16(), T0 + 700), T0 + 400)
        .await
        .expect("reservation lapsed, name free again");
    // Retry of a finished registration: the account exists.
    let mut again = na.clone();
    again.account_id = a.account_id;
    again.username = "alice".into();
    assert!(matches!(
        m.create_account(again, T0).await,
        Err(StoreError::AlreadyExists)
    ));
}

/// Registrations racing for one name or one account: exactly one wins, the others get the
/// errors a sequential run gives (the SQLite store checks outside its writer's turn and lets
/// the tables' keys decide).
pub async fn concurrent_registrations(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let reserve = |name: &str| Handshake {
        id: fresh16(),
        kind: HandshakeKind::Registration,
        username: Some(name.to_owned()),
        account_id: Some(AccountId::from_bytes(fresh16())),
        session_id: None,
        state: Vec::new(),
        expires_at: T0 + 300,
    };
    let starts: Vec<Handshake> = (0..16).map(|_| reserve("zoe")).collect();
    let results =
        futures_util::future::join_all(starts.iter().map(|h| m.put_handshake(h.clone(), T0))).await;
    let won: Vec<&Handshake> = starts
        .iter()
        .zip(&results)
        .filter_map(|(h, r)| r.is_ok().then_some(h))
        .collect();
    assert_eq!(won.len(), 1, "one reservation of the name: {results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(StoreError::UsernameTaken))));
    let account_id = won[0].account_id.expect("account id");
    let new = NewAccount {
        account_id,
        username: "zoe".into(),
        password_file: b"password-file-0".to_vec(),
        key_bundle: b"kb-0".to_vec(),
        identity: b"identity-0".to_vec(),
        root: node_write(account_id, None, NodeKind::Folder, 1),
        created_at: T0,
    };
    // The same finish sent eight times at once (a client retrying).
    let results =
        futures_util::future::join_all((0..8).map(|_| m.create_account(new.clone(), T0 + 1))).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "one account: {results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(StoreError::AlreadyExists))),
        "a retried finish gets the account or AlreadyExists: {results:?}"
    );
    assert_eq!(
        m.account_by_username("zoe")
            .await
            .expect("get")
            .map(|a| a.account_id),
        Some(account_id)
    );
    // Starts racing a finish for a name: none reserves a name whose account exists.
    assert!(matches!(
        m.put_handshake(reserve("zoe"), T0 + 2).await,
        Err(StoreError::UsernameTaken)
    ));
}

/// Handshakes are single use, typed and expire.
pub async fn handshakes(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "carol", T0).await;
    let hs = Handshake {
        id: fresh16(),
        kind: HandshakeKind::Reauth(0),
        username: None,
        account_id: Some(a.account_id),
        session_id: Some(fresh16()),
        state: b"opaque-state".to_vec(),
        expires_at: T0 + 300,
    };
    m.put_handshake(hs.clone(), T0).await.expect("put");
    assert!(matches!(
        m.put_handshake(hs.clone(), T0).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        m.take_handshake(hs.id, HandshakeKind::Reauth(1), T0)
            .await
            .expect("take"),
        None,
        "wrong purpose"
    );
    assert_eq!(
        m.take_handshake(hs.id, HandshakeKind::Reauth(0), T0 + 1)
            .await
            .expect("take"),
        Some(hs.clone())
    );
    assert_eq!(
        m.take_handshake(hs.id, HandshakeKind::Reauth(0), T0 + 2)
            .await
            .expect("take"),
        None,
        "single use"
    );
    let login = Handshake {
        id: fresh16(),
        kind: HandshakeKind::Login,
        username: Some("carol".into()),
        session_id: None,
        ..hs
    };
    m.put_handshake(login.clone(), T0).await.expect("put");
    assert_eq!(
        m.take_handshake(login.id, HandshakeKind::Login, T0 + 300)
            .await
            .expect("take"),
        None,
        "expired"
    );
}

/// Sessions: lookup by token hash, last use, idle and absolute expiry, listing, revocation.
pub async fn sessions(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "dave", T0).await;
    let b = register(m, "erin", T0).await;
    let idle = 30 * DAY;
    let (s1, h1) = session(a.account_id, T0);
    let (s2, h2) = session(a.account_id, T0 + 10);
    let (s3, h3) = session(a.account_id, T0 + 20);
    let (sb, hb) = session(b.account_id, T0);
    for x in [&s1, &s2, &s3, &sb] {
        // The account comes back with the session, as stored.
        let acc = m.create_session(x.clone()).await.expect("create");
        assert_eq!(
            Some(&acc),
            m.account(x.account_id).await.expect("a").as_ref()
        );
    }
    let unknown = session(AccountId::from_bytes([0xEE; 16]), T0).0;
    assert!(matches!(
        m.create_session(unknown).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        m.create_session(s1.clone()).await,
        Err(StoreError::AlreadyExists)
    ));
    let got = m
        .authenticate_session(&h1, T0 + 100, idle)
        .await
        .expect("auth")
        .expect("live");
    assert_eq!(
        (got.session_id, got.account_id, got.last_used_at),
        (s1.session_id, a.account_id, T0 + 100)
    );
    assert_eq!(
        m.authenticate_session(&[9; 32], T0, idle)
            .await
            .expect("auth"),
        None
    );
    let list = m
        .list_sessions(a.account_id, T0 + 100, idle)
        .await
        .expect("list");
    assert_eq!(
        list.iter().map(|x| x.session_id).collect::<Vec<_>>(),
        vec![s1.session_id, s2.session_id, s3.session_id]
    );
    // Idle expiry: s2 was never used after T0 + 10.
    assert_eq!(
        m.authenticate_session(&h2, T0 + 10 + idle, idle)
            .await
            .expect("auth"),
        None
    );
    assert!(m
        .authenticate_session(&h1, T0 + 100 + idle - 1, idle)
        .await
        .expect("auth")
        .is_some());
    // Absolute expiry.
    assert_eq!(
        m.authenticate_session(&hb, T0 + 90 * DAY, u64::MAX)
            .await
            .expect("auth"),
        None
    );
    // Revocation is per account.
    assert!(!m
        .revoke_session(b.account_id, s3.session_id)
        .await
        .expect("revoke"));
    assert!(m
        .revoke_session(a.account_id, s3.session_id)
        .await
        .expect("revoke"));
    assert_eq!(
        m.authenticate_session(&h3, T0 + 200, idle)
            .await
            .expect("auth"),
        None
    );
    let (s4, h4) = session(a.account_id, T0 + 300);
    m.create_session(s4.clone()).await.expect("create");
    assert_eq!(
        m.revoke_other_sessions(a.account_id, s4.session_id)
            .await
            .expect("others"),
        1
    );
    assert!(m
        .authenticate_session(&h4, T0 + 400, idle)
        .await
        .expect("auth")
        .is_some());
    assert_eq!(
        m.authenticate_session(&h1, T0 + 400, idle)
            .await
            .expect("auth"),
        None
    );
    assert_eq!(m.revoke_all_sessions(a.account_id).await.expect("all"), 1);
    assert_eq!(
        m.list_sessions(a.account_id, T0 + 400, idle)
            .await
            .expect("list"),
        vec![]
    );
    // Purge removes expired state.
    let (s5, _) = session(b.account_id, T0);
    m.create_session(s5).await.expect("create");
    let purged = m.purge_expired(T0 + 91 * DAY, idle).await.expect("purge");
    assert!(purged.sessions >= 1);
    assert_eq!(
        m.list_sessions(b.account_id, T0, u64::MAX)
            .await
            .expect("list"),
        vec![]
    );
}

/// Password change: revision checked, and the other sessions end in the same call.
pub async fn password_change(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "frank", T0).await;
    let (keep, hk) = session(a.account_id, T0);
    let (other, ho) = session(a.account_id, T0);
    m.create_session(keep.clone()).await.expect("s");
    m.create_session(other.clone()).await.expect("s");
    let pending = Handshake {
        id: fresh16(),
        kind: HandshakeKind::Login,
        username: Some("frank".into()),
        account_id: Some(a.account_id),
        session_id: None,
        state: vec![],
        expires_at: T0 + 300,
    };
    m.put_handshake(pending.clone(), T0).await.expect("login");
    let change = |rev| PasswordChange {
        account_id: a.account_id,
        keep_session: keep.session_id,
        expected_revision: rev,
        password_file: b"password-file-1".to_vec(),
        key_bundle: b"kb-1".to_vec(),
    };
    match m.change_password(change(5)).await {
        Err(StoreError::RevisionMismatch { current: 0 }) => {}
        other => panic!("expected revision mismatch, got {other:?}"),
    }
    assert!(
        m.authenticate_session(&ho, T0 + 1, DAY)
            .await
            .expect("auth")
            .is_some(),
        "a failed change revokes nothing"
    );
    let up = m.change_password(change(0)).await.expect("change");
    assert_eq!((up.revision, up.sessions_revoked), (1, 1));
    assert_eq!(
        m.authenticate_session(&ho, T0 + 2, DAY)
            .await
            .expect("auth"),
        None
    );
    assert!(m
        .authenticate_session(&hk, T0 + 2, DAY)
        .await
        .expect("auth")
        .is_some());
    assert_eq!(
        m.take_handshake(pending.id, HandshakeKind::Login, T0 + 3)
            .await
            .expect("take"),
        None,
        "logins of the account end"
    );
    let stored = m.account(a.account_id).await.expect("get").expect("exists");
    assert_eq!(
        (
            stored.revision,
            stored.password_file.as_slice(),
            stored.key_bundle.as_slice()
        ),
        (1, &b"password-file-1"[..], &b"kb-1"[..])
    );
}

/// Identity chains: append with the expected generation, conflict otherwise.
pub async fn identities(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "grace", T0).await;
    let c = m
        .append_identity(a.account_id, 0, b"identity-1".to_vec())
        .await
        .expect("append");
    assert_eq!(
        c.generations,
        vec![b"identity-0".to_vec(), b"identity-1".to_vec()]
    );
    match m
        .append_identity(a.account_id, 0, b"identity-1b".to_vec())
        .await
    {
        Err(StoreError::RevisionMismatch { current: 1 }) => {}
        other => panic!("expected mismatch, got {other:?}"),
    }
    assert_eq!(
        m.identity_chain(a.account_id)
            .await
            .expect("chain")
            .expect("exists")
            .generations
            .len(),
        2
    );
    assert_eq!(
        m.account(a.account_id)
            .await
            .expect("get")
            .expect("exists")
            .identity_generation,
        1
    );
    assert!(matches!(
        m.append_identity(AccountId::from_bytes(fresh16()), 0, vec![])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        m.identity_chain(AccountId::from_bytes(fresh16()))
            .await
            .expect("chain"),
        None
    );
}

// ---- nodes ----------------------------------------------------------------------------------

/// Node create, read, list with pagination, update with revision, path, subtree, count limit.
pub async fn nodes(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "heidi", T0).await;
    let root = a.root_node_id;
    let folder = node_write(a.account_id, Some(root), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    assert!(matches!(
        m.create_node(folder.clone(), None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        m.create_node(
            node_write(a.account_id, Some(nid()), NodeKind::File, 1),
            None
        )
        .await,
        Err(StoreError::NotFound)
    ));
    let mut kids = Vec::new();
    for _ in 0..5 {
        let n = node_write(a.account_id, Some(folder.node_id), NodeKind::File, 1);
        m.create_node(n.clone(), None).await.expect("create");
        kids.push(n.node_id);
    }
    kids.sort();
    let page1 = m.children(folder.node_id, None, 2).await.expect("children");
    let page2 = m
        .children(folder.node_id, Some(page1[1].node.node_id), 2)
        .await
        .expect("children");
    let page3 = m
        .children(folder.node_id, Some(page2[1].node.node_id), 2)
        .await
        .expect("children");
    let all: Vec<NodeId> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|n| n.node.node_id)
        .collect();
    assert_eq!(all, kids);
    assert_eq!(page3.len(), 1);
    let got = m.node(folder.node_id).await.expect("get").expect("exists");
    assert_eq!(got.node, folder);
    assert_eq!(
        (got.content_revision, got.content_length, got.blob_key),
        (0, 0, None)
    );
    // Update with the expected revision; a stale one changes nothing.
    let v2 = next_revision(&folder);
    assert_eq!(
        m.update_node(NodeUpdate {
            expected_revision: 1,
            node: v2.clone()
        })
        .await
        .expect("update")
        .node,
        v2
    );
    match m
        .update_node(NodeUpdate {
            expected_revision: 1,
            node: next_revision(&folder),
        })
        .await
    {
        Err(StoreError::RevisionMismatch { current: 2 }) => {}
        other => panic!("expected mismatch, got {other:?}"),
    }
    assert_eq!(
        m.node(folder.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        v2
    );
    assert_eq!(
        m.node_path(kids[0]).await.expect("path"),
        vec![kids[0], folder.node_id, root]
    );
    assert_eq!(m.node_path(nid()).await.expect("path"), vec![]);
    let mut sub = m.subtree(folder.node_id).await.expect("subtree");
    sub.sort();
    let mut want = kids.clone();
    want.push(folder.node_id);
    want.sort();
    assert_eq!(sub, want);
    assert_eq!(m.node_count(a.account_id).await.expect("count"), 7);
    assert!(matches!(
        m.create_node(
            node_write(a.account_id, Some(root), NodeKind::File, 1),
            Some(7)
        )
        .await,
        Err(StoreError::LimitReached)
    ));
    assert_eq!(m.node_count(a.account_id).await.expect("count"), 7);
}

/// Deleting a subtree removes nodes, content, uploads, links and shares, and reports the blobs.
pub async fn delete_subtree(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "ivan", T0).await;
    let b = register(m, "judy", T0).await;
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let file = node_write(a.account_id, Some(folder.node_id), NodeKind::File, 1);
    let fin = upload_content(&s, file.clone(), None, 1, &content(2500, 1), T0).await;
    let pending = created(
        m.create_upload(
            new_upload(a.account_id, nid(), folder.node_id, 1, 10, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("upload"),
    );
    let link = m
        .create_link(
            link_write(a.account_id, file.node_id, LinkKind::File, None, None, T0),
            None,
        )
        .await
        .expect("link");
    let sub = node_write(a.account_id, Some(folder.node_id), NodeKind::Folder, 1);
    m.create_node(sub.clone(), None).await.expect("create");
    let sh = share_write(
        a.account_id,
        sub.node_id,
        0,
        &[(b.account_id, Permission::Read)],
    );
    m.create_share(
        sh.clone(),
        vec![grant(sh.share_id, b.account_id, 0)],
        vec![],
    )
    .await
    .expect("share");
    let outside = node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1);
    m.create_node(outside.clone(), None).await.expect("create");

    assert!(matches!(
        m.delete_subtree(folder.node_id, 7).await,
        Err(StoreError::RevisionMismatch { current: 1 })
    ));
    assert!(matches!(
        m.delete_subtree(a.root_node_id, 1).await,
        Err(StoreError::Invalid(_))
    ));
    let removed = m.delete_subtree(folder.node_id, 1).await.expect("delete");
    assert_eq!(removed.nodes, 3);
    assert_eq!(
        removed.blob_keys,
        vec![fin.node.blob_key.clone().expect("content")]
    );
    assert_eq!(
        removed
            .uploads
            .iter()
            .map(|u| u.upload.upload_id)
            .collect::<Vec<_>>(),
        vec![pending.upload.upload_id]
    );
    assert_eq!(removed.links, vec![link.link.link_id]);
    assert_eq!(removed.shares, vec![sh.share_id]);
    for id in [folder.node_id, file.node_id, sub.node_id] {
        assert_eq!(m.node(id).await.expect("get"), None);
    }
    assert!(m.node(outside.node_id).await.expect("get").is_some());
    assert_eq!(
        m.upload(pending.upload.upload_id, T0).await.expect("get"),
        None
    );
    assert_eq!(m.link(link.link.link_id).await.expect("get"), None);
    assert_eq!(m.share(sh.share_id).await.expect("get"), None);
    assert_eq!(
        m.grants(sh.share_id, b.account_id).await.expect("grants"),
        vec![]
    );
    assert_eq!(
        m.shares_member_of(b.account_id).await.expect("member of"),
        vec![]
    );
    assert!(!m
        .blob_key_in_use(&removed.blob_keys[0])
        .await
        .expect("in use"));
}

// ---- uploads and blobs ----------------------------------------------------------------------

/// Parts are idempotent, finalize is all or nothing, content replaces content atomically.
pub async fn uploads_and_finalize(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "kim", T0).await;
    let data = content(2500, 3);
    let file = node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1);
    let req = new_upload(
        a.account_id,
        file.node_id,
        a.root_node_id,
        1,
        data.len() as u64,
        T0,
    );
    let up = created(
        m.create_upload(req.clone(), UploadLimits::default(), T0)
            .await
            .expect("create"),
    );
    assert_eq!(up.part_count(), 3);
    // Retried creation returns the same upload.
    let mut retry = req.clone();
    retry.upload_id = UploadId::from_bytes(fresh16());
    match m
        .create_upload(retry, UploadLimits::default(), T0 + 5)
        .await
        .expect("retry")
    {
        UploadCreated::Existing(u) => assert_eq!(u.upload.upload_id, up.upload.upload_id),
        UploadCreated::Created(_) => panic!("a retried creation must return the live upload"),
    }
    assert!(matches!(
        m.create_upload(req.clone(), UploadLimits::default(), T0)
            .await,
        Ok(UploadCreated::Existing(_))
    ));
    let uid = up.upload.upload_id;
    // Part 1 twice (second with the right bytes), part 2; part 0 missing.
    s.blobs
        .put_part(uid, 1, bytes_stream(vec![0u8; 1000]), PS)
        .await
        .expect("put");
    let p1 = s
        .blobs
        .put_part(uid, 1, bytes_stream(data[1000..2000].to_vec()), PS)
        .await
        .expect("put again");
    assert_eq!(p1.length, 1000);
    m.record_part(uid, 1, 1000, T0 + DAY, T0)
        .await
        .expect("record");
    m.record_part(uid, 1, 1000, T0 + DAY, T0)
        .await
        .expect("record again");
    s.blobs
        .put_part(uid, 2, bytes_stream(data[2000..].to_vec()), PS)
        .await
        .expect("put");
    m.record_part(uid, 2, 500, T0 + DAY, T0)
        .await
        .expect("record");
    assert!(
        matches!(
            m.record_part(uid, 2, 1000, T0 + DAY, T0).await,
            Err(StoreError::Invalid(_))
        ),
        "last part has 500 bytes"
    );
    assert!(
        matches!(
            m.record_part(uid, 3, 500, T0 + DAY, T0).await,
            Err(StoreError::Invalid(_))
        ),
        "index past the end"
    );
    assert_eq!(
        s.blobs.list_parts(uid).await.expect("list"),
        vec![(1, 1000), (2, 500)]
    );
    let status = m.upload(uid, T0).await.expect("status").expect("live");
    assert_eq!(status.parts, vec![(1, 1000), (2, 500)]);
    assert!(!status.is_complete());
    assert_eq!(
        m.upload_head(uid, T0).await.expect("head"),
        Some(status.upload.clone())
    );
    assert_eq!(
        m.upload_head(UploadId::from_bytes(fresh16()), T0)
            .await
            .expect("head"),
        None,
        "an unknown upload has no head"
    );
    // Oversized part: rejected, nothing replaced.
    assert!(s
        .blobs
        .put_part(uid, 2, bytes_stream(vec![1u8; 1001]), PS)
        .await
        .is_err());
    assert_eq!(
        s.blobs.list_parts(uid).await.expect("list"),
        vec![(1, 1000), (2, 500)]
    );
    // Finalize while incomplete: nothing visible.
    assert!(matches!(
        s.blobs.assemble(uid, 3, &up.blob_key).await,
        Err(StoreError::UploadIncomplete)
    ));
    let fin = FinalizeNode {
        expected_revision: None,
        node: file.clone(),
        quota_bytes: None,
    };
    assert!(matches!(
        m.finalize_upload(uid, fin.clone(), T0).await,
        Err(StoreError::UploadIncomplete)
    ));
    assert_eq!(m.node(file.node_id).await.expect("get"), None);
    assert_eq!(s.blobs.blob_length(&up.blob_key).await.expect("len"), None);
    // Complete it; a finalize that fails a precondition leaves the upload and parts intact.
    s.blobs
        .put_part(uid, 0, bytes_stream(data[..1000].to_vec()), PS)
        .await
        .expect("put");
    m.record_part(uid, 0, 1000, T0 + DAY, T0)
        .await
        .expect("record");
    assert_eq!(
        s.blobs
            .assemble(uid, 3, &up.blob_key)
            .await
            .expect("assemble"),
        2500
    );
    let wrong = FinalizeNode {
        expected_revision: Some(1),
        ..fin.clone()
    };
    assert!(matches!(
        m.finalize_upload(uid, wrong, T0).await,
        Err(StoreError::NotFound)
    ));
    assert!(m.upload(uid, T0).await.expect("status").is_some());
    assert!(
        m.blob_key_in_use(&up.blob_key).await.expect("in use"),
        "an assembled blob of a live upload is not an orphan"
    );
    let done = m
        .finalize_upload(uid, fin.clone(), T0 + 1)
        .await
        .expect("finalize");
    assert!(done.created);
    assert_eq!(done.replaced_blob, None);
    assert_eq!(
        (done.node.content_revision, done.node.content_length),
        (1, 2500)
    );
    assert_eq!(
        m.node(file.node_id).await.expect("get").expect("visible"),
        done.node
    );
    assert_eq!(m.upload(uid, T0 + 1).await.expect("status"), None);
    assert!(
        matches!(
            m.finalize_upload(uid, fin, T0 + 1).await,
            Err(StoreError::NotFound)
        ),
        "finalized once"
    );
    s.blobs.delete_parts(uid).await.expect("delete parts");
    let key1 = done.node.blob_key.clone().expect("key");
    assert_eq!(read_all(&*s.blobs, &key1, None).await, data);
    assert_eq!(
        read_all(&*s.blobs, &key1, Some(1000..1010)).await,
        data[1000..1010].to_vec()
    );
    assert_eq!(
        read_all(&*s.blobs, &key1, Some(2499..2500)).await,
        data[2499..].to_vec()
    );
    assert!(matches!(
        s.blobs.read(&key1, Some(10..2501)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.blobs.read(&key1, Some(5..5)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.blobs.read("c-missing", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.blobs.read("../etc/passwd", None).await.is_err());
    // A new content revision: a stale revision or content revision conflicts; the right one
    // replaces record and content together.
    let v2 = next_revision(&file);
    let data2 = content(1200, 9);
    let stale = created(
        m.create_upload(
            new_upload(a.account_id, file.node_id, a.root_node_id, 1, 1200, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("c"),
    );
    send_parts(&s, &stale, &data2, T0).await;
    let upd = FinalizeNode {
        expected_revision: Some(1),
        node: v2.clone(),
        quota_bytes: None,
    };
    assert!(matches!(
        m.finalize_upload(stale.upload.upload_id, upd.clone(), T0)
            .await,
        Err(StoreError::RevisionMismatch { .. })
    ));
    m.delete_upload(stale.upload.upload_id)
        .await
        .expect("abort");
    s.blobs
        .delete_parts(stale.upload.upload_id)
        .await
        .expect("abort parts");
    let fin2 = upload_content(&s, v2.clone(), Some(1), 2, &data2, T0 + 2).await;
    assert!(!fin2.created);
    assert_eq!(fin2.replaced_blob.as_deref(), Some(key1.as_str()));
    let now_node = m.node(file.node_id).await.expect("get").expect("exists");
    assert_eq!(
        (
            now_node.node.clone(),
            now_node.content_revision,
            now_node.content_length
        ),
        (v2, 2, 1200)
    );
    assert_eq!(
        read_all(&*s.blobs, now_node.blob_key.as_deref().expect("key"), None).await,
        data2
    );
    assert_eq!(
        s.blobs.blob_length(&key1).await.expect("len"),
        None,
        "the replaced blob was deleted"
    );
    assert_eq!(
        m.storage_used(a.account_id, T0 + 3).await.expect("used"),
        1200
    );
}

/// Quota and count limits are checked inside the operations.
pub async fn quota_and_limits(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "leo", T0).await;
    upload_content(
        &s,
        node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1),
        None,
        1,
        &content(1500, 1),
        T0,
    )
    .await;
    assert_eq!(m.storage_used(a.account_id, T0).await.expect("used"), 1500);
    let limits = UploadLimits {
        quota_bytes: Some(2000),
        max_account_uploads: Some(2),
        ..UploadLimits::default()
    };
    let big = new_upload(a.account_id, nid(), a.root_node_id, 1, 501, T0);
    assert!(matches!(
        m.create_upload(big, limits, T0).await,
        Err(StoreError::QuotaExceeded)
    ));
    let ok = created(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 300, T0),
            limits,
            T0,
        )
        .await
        .expect("fits"),
    );
    assert_eq!(
        m.storage_used(a.account_id, T0).await.expect("used"),
        1800,
        "reserved"
    );
    assert!(matches!(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 201, T0),
            limits,
            T0
        )
        .await,
        Err(StoreError::QuotaExceeded)
    ));
    created(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 100, T0),
            limits,
            T0,
        )
        .await
        .expect("fits"),
    );
    assert!(matches!(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 1, T0),
            limits,
            T0
        )
        .await,
        Err(StoreError::LimitReached)
    ));
    // Abort releases the reservation.
    m.delete_upload(ok.upload.upload_id)
        .await
        .expect("abort")
        .expect("existed");
    assert_eq!(m.storage_used(a.account_id, T0).await.expect("used"), 1600);
    // Finalize re-checks against a lowered quota.
    let n = node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1);
    let up = created(
        m.create_upload(
            new_upload(a.account_id, n.node_id, a.root_node_id, 1, 200, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("c"),
    );
    send_parts(&s, &up, &content(200, 2), T0).await;
    let fin = FinalizeNode {
        expected_revision: None,
        node: n.clone(),
        quota_bytes: Some(1700),
    };
    assert!(matches!(
        m.finalize_upload(up.upload.upload_id, fin.clone(), T0)
            .await,
        Err(StoreError::QuotaExceeded)
    ));
    assert_eq!(m.node(n.node_id).await.expect("get"), None);
    let fin = FinalizeNode {
        quota_bytes: Some(1900),
        ..fin
    };
    m.finalize_upload(up.upload.upload_id, fin, T0)
        .await
        .expect("fits");
    assert_eq!(m.storage_used(a.account_id, T0).await.expect("used"), 1800);
}

/// Uploads lapse; lapsed ones are listed for GC, refuse parts, and GC removes every trace.
pub async fn upload_expiry_and_gc(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "mia", T0).await;
    let up = created(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 1500, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("c"),
    );
    let uid = up.upload.upload_id;
    s.blobs
        .put_part(uid, 0, bytes_stream(content(1000, 1)), PS)
        .await
        .expect("put");
    // A part write moves the lapse time, never past the maximum; the upload with and without
    // its parts says so.
    let lapse_after = |expires_at: u64| async move {
        let head = m
            .upload_head(uid, T0 + 10)
            .await
            .expect("head")
            .expect("live");
        let full = m.upload(uid, T0 + 10).await.expect("get").expect("live");
        assert_eq!(
            head, full.upload,
            "the head is the upload without its parts"
        );
        assert_eq!(full.parts, vec![(0, 1000)]);
        assert_eq!(head.expires_at, expires_at);
    };
    m.record_part(uid, 0, 1000, T0 + 100 * DAY, T0 + 10)
        .await
        .expect("record");
    lapse_after(T0 + 7 * DAY).await;
    m.record_part(uid, 0, 1000, T0 + 10 + DAY, T0 + 10)
        .await
        .expect("record");
    lapse_after(T0 + 10 + DAY).await;
    assert_eq!(
        m.expired_uploads(T0 + 10 + DAY - 1, 100)
            .await
            .expect("expired"),
        vec![]
    );
    let lapse = T0 + 10 + DAY;
    assert_eq!(
        m.upload_head(uid, lapse).await.expect("head"),
        None,
        "lapsed uploads are not served"
    );
    assert_eq!(
        m.upload(uid, lapse).await.expect("get"),
        None,
        "lapsed uploads are not served"
    );
    assert!(matches!(
        m.record_part(uid, 1, 500, lapse + DAY, lapse).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        m.storage_used(a.account_id, lapse).await.expect("used"),
        0,
        "a lapsed reservation is released"
    );
    let expired = m.expired_uploads(lapse, 100).await.expect("expired");
    assert_eq!(
        expired
            .iter()
            .map(|u| u.upload.upload_id)
            .collect::<Vec<_>>(),
        vec![uid]
    );
    // The GC pass, as the server runs it.
    for e in expired {
        m.delete_upload(e.upload.upload_id).await.expect("delete");
        s.blobs
            .delete_parts(e.upload.upload_id)
            .await
            .expect("parts");
        s.blobs.delete_blob(&e.blob_key).await.expect("blob");
    }
    assert_eq!(
        m.expired_uploads(lapse, 100).await.expect("expired"),
        vec![]
    );
    assert!(!m.upload_exists(uid).await.expect("exists"));
    assert!(!s.blobs.list_uploads().await.expect("list").contains(&uid));
    assert_eq!(s.blobs.list_parts(uid).await.expect("list"), vec![]);
}

// ---- shares ---------------------------------------------------------------------------------

/// Share lifecycle: create, list, add member, remove with a rotation bundle (all or nothing),
/// leave, delete.
pub async fn shares(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let o = register(m, "olivia", T0).await;
    let b = register(m, "bert", T0).await;
    let c = register(m, "cleo", T0).await;
    let folder = node_write(o.account_id, Some(o.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let child = node_write(o.account_id, Some(folder.node_id), NodeKind::Folder, 1);
    m.create_node(child.clone(), None).await.expect("create");
    let sh0 = share_write(
        o.account_id,
        folder.node_id,
        0,
        &[(b.account_id, Permission::Write)],
    );
    let sid = sh0.share_id;
    let mut rekeyed = next_revision(&folder);
    rekeyed.share_id = Some(sid);
    // A failing node record aborts the creation.
    let bad = NodeUpdate {
        expected_revision: 9,
        node: rekeyed.clone(),
    };
    assert!(matches!(
        m.create_share(sh0.clone(), vec![grant(sid, b.account_id, 0)], vec![bad])
            .await,
        Err(StoreError::RevisionMismatch { .. })
    ));
    assert_eq!(m.share(sid).await.expect("get"), None);
    assert_eq!(m.grants(sid, b.account_id).await.expect("g"), vec![]);
    let up = m
        .create_share(
            sh0.clone(),
            vec![grant(sid, b.account_id, 0)],
            vec![NodeUpdate {
                expected_revision: 1,
                node: rekeyed.clone(),
            }],
        )
        .await
        .expect("create share");
    assert_eq!((up.revision, up.generation), (0, 0));
    assert_eq!(
        m.node(folder.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        rekeyed
    );
    let mut dup = share_write(o.account_id, folder.node_id, 0, &[]);
    assert!(
        matches!(
            m.create_share(dup.clone(), vec![], vec![]).await,
            Err(StoreError::AlreadyExists)
        ),
        "one share per root"
    );
    dup.share_id = sid;
    dup.root_node_id = child.node_id;
    assert!(
        matches!(
            m.create_share(dup, vec![], vec![]).await,
            Err(StoreError::AlreadyExists)
        ),
        "share id in use"
    );
    let got = m.share(sid).await.expect("get").expect("exists");
    assert_eq!(
        (got.share.clone(), got.revision, got.departed.clone()),
        (sh0.clone(), 0, vec![])
    );
    assert_eq!(got.permission_of(&b.account_id), Some(Permission::Write));
    assert_eq!(
        m.share_by_root(folder.node_id)
            .await
            .expect("by root")
            .map(|x| x.share.share_id),
        Some(sid)
    );
    assert_eq!(m.shares_owned(o.account_id).await.expect("owned").len(), 1);
    assert_eq!(
        m.shares_member_of(b.account_id)
            .await
            .expect("member")
            .len(),
        1
    );
    assert_eq!(
        m.shares_member_of(c.account_id)
            .await
            .expect("member")
            .len(),
        0
    );
    // Add a member.
    let sh1 = ShareWrite {
        members: vec![
            (b.account_id, Permission::Write),
            (c.account_id, Permission::Read),
        ],
        record: b"share-v1".to_vec(),
        ..sh0.clone()
    };
    assert!(matches!(
        m.add_member(sid, 5, sh1.clone(), grant(sid, c.account_id, 0))
            .await,
        Err(StoreError::RevisionMismatch { current: 0 })
    ));
    let up = m
        .add_member(sid, 0, sh1.clone(), grant(sid, c.account_id, 0))
        .await
        .expect("add");
    assert_eq!(up.revision, 1);
    assert_eq!(
        m.shares_member_of(c.account_id)
            .await
            .expect("member")
            .len(),
        1
    );
    // b has an unfinished upload into the subtree, which removal aborts.
    let b_up = created(
        m.create_upload(
            new_upload(b.account_id, nid(), child.node_id, 1, 10, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("c"),
    );
    // Removal with a bundle whose node record is stale: nothing happens.
    let sh2 = ShareWrite {
        generation: 1,
        members: vec![(c.account_id, Permission::Read)],
        record: b"share-v2".to_vec(),
        ..sh0.clone()
    };
    let child2 = next_revision(&child);
    let removal = |nodes: Vec<NodeUpdate>| MemberRemoval {
        share_id: sid,
        expected_revision: 1,
        removed: vec![b.account_id],
        share: sh2.clone(),
        grants: vec![grant(sid, c.account_id, 1)],
        nodes,
    };
    let stale = removal(vec![
        NodeUpdate {
            expected_revision: 1,
            node: child2.clone(),
        },
        NodeUpdate {
            expected_revision: 7,
            node: next_revision(&rekeyed),
        },
    ]);
    assert!(matches!(
        m.remove_members(stale).await,
        Err(StoreError::RevisionMismatch { .. })
    ));
    let same = m.share(sid).await.expect("get").expect("exists");
    assert_eq!((same.revision, same.share.clone()), (1, sh1.clone()));
    assert_eq!(
        m.node(child.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        child,
        "no node record of a failed bundle applied"
    );
    assert_eq!(m.grants(sid, c.account_id).await.expect("g").len(), 1);
    assert_eq!(m.grants(sid, b.account_id).await.expect("g").len(), 1);
    assert!(m
        .upload(b_up.upload.upload_id, T0)
        .await
        .expect("u")
        .is_some());
    let up = m
        .remove_members(removal(vec![NodeUpdate {
            expected_revision: 1,
            node: child2.clone(),
        }]))
        .await
        .expect("remove");
    assert_eq!((up.revision, up.generation), (2, 1));
    assert_eq!(
        up.removed
            .uploads
            .iter()
            .map(|u| u.upload.upload_id)
            .collect::<Vec<_>>(),
        vec![b_up.upload.upload_id]
    );
    assert_eq!(
        m.node(child.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        child2
    );
    assert_eq!(m.grants(sid, b.account_id).await.expect("g"), vec![]);
    assert_eq!(
        m.grants(sid, c.account_id)
            .await
            .expect("g")
            .iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>(),
        vec![1],
        "the rotation deletes every grant of the old generation (§9.2.2)"
    );
    assert_eq!(
        m.shares_member_of(b.account_id).await.expect("member"),
        vec![]
    );
    // c leaves: grants gone, departed recorded, revision up, record unchanged.
    let up = m.leave_share(sid, c.account_id).await.expect("leave");
    assert_eq!(up.revision, 3);
    assert!(matches!(
        m.leave_share(sid, c.account_id).await,
        Err(StoreError::NotFound)
    ));
    let after = m.share(sid).await.expect("get").expect("exists");
    assert_eq!(
        (after.departed.clone(), after.share.clone()),
        (vec![c.account_id], sh2.clone())
    );
    assert_eq!(after.permission_of(&c.account_id), None);
    assert_eq!(m.grants(sid, c.account_id).await.expect("g"), vec![]);
    assert_eq!(
        m.shares_member_of(c.account_id).await.expect("member"),
        vec![]
    );
    // Delete: revision checked, records applied.
    assert!(matches!(
        m.delete_share(sid, 0, vec![]).await,
        Err(StoreError::RevisionMismatch { current: 3 })
    ));
    let back = next_revision(&rekeyed);
    let removed = m
        .delete_share(
            sid,
            3,
            vec![NodeUpdate {
                expected_revision: 2,
                node: back.clone(),
            }],
        )
        .await
        .expect("delete");
    assert_eq!(removed.shares, vec![sid]);
    assert_eq!(m.share(sid).await.expect("get"), None);
    assert_eq!(
        m.node(folder.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        back
    );
    assert_eq!(m.shares_owned(o.account_id).await.expect("owned"), vec![]);
}

/// A member removal moves the share to generation `g + 1` and deletes every grant of generation
/// `g` or older, of every member, atomically with the rest of the bundle (§9.2.2); a bundle to
/// any other generation changes nothing; other shares' grants are untouched.
pub async fn rotation_deletes_old_grants(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let o = register(m, "oona", T0).await;
    let b = register(m, "bob", T0).await;
    let c = register(m, "cyd", T0).await;
    let d = register(m, "dex", T0).await;
    let folder = node_write(o.account_id, Some(o.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let other = node_write(o.account_id, Some(o.root_node_id), NodeKind::Folder, 1);
    m.create_node(other.clone(), None).await.expect("create");
    let all = [
        (b.account_id, Permission::Write),
        (c.account_id, Permission::Read),
        (d.account_id, Permission::Write),
    ];
    let sh0 = share_write(o.account_id, folder.node_id, 0, &all);
    let sid = sh0.share_id;
    let grants0 = all.iter().map(|(a, _)| grant(sid, *a, 0)).collect();
    m.create_share(sh0.clone(), grants0, vec![])
        .await
        .expect("share");
    let osh = share_write(o.account_id, other.node_id, 0, &all[..1]);
    let osid = osh.share_id;
    m.create_share(osh, vec![grant(osid, b.account_id, 0)], vec![])
        .await
        .expect("other share");
    let gens = |member: AccountId, share: ShareId| async move {
        m.grants(share, member)
            .await
            .expect("grants")
            .into_iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>()
    };
    let removal =
        |rev: u64, generation: u64, keep: &[(AccountId, Permission)], gone| MemberRemoval {
            share_id: sid,
            expected_revision: rev,
            removed: vec![gone],
            share: ShareWrite {
                generation,
                members: keep.to_vec(),
                record: format!("share-g{generation}").into_bytes(),
                ..sh0.clone()
            },
            grants: keep
                .iter()
                .map(|(a, _)| grant(sid, *a, generation))
                .collect(),
            nodes: vec![],
        };
    // A bundle that skips a generation, or stays at the current one, is refused whole.
    for generation in [0, 2] {
        assert!(matches!(
            m.remove_members(removal(0, generation, &all[1..], b.account_id))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    for (a, _) in &all {
        assert_eq!(gens(*a, sid).await, vec![0], "nothing applied");
    }
    // Remove b: c and d keep only their generation-1 grants, b keeps none.
    let up = m
        .remove_members(removal(0, 1, &all[1..], b.account_id))
        .await
        .expect("remove b");
    assert_eq!((up.revision, up.generation), (1, 1));
    assert_eq!(gens(b.account_id, sid).await, Vec::<u64>::new());
    assert_eq!(gens(c.account_id, sid).await, vec![1]);
    assert_eq!(gens(d.account_id, sid).await, vec![1]);
    assert_eq!(
        gens(b.account_id, osid).await,
        vec![0],
        "other share untouched"
    );
    // Remove c: d keeps only generation 2.
    m.remove_members(removal(1, 2, &all[2..], c.account_id))
        .await
        .expect("remove c");
    assert_eq!(gens(c.account_id, sid).await, Vec::<u64>::new());
    assert_eq!(gens(d.account_id, sid).await, vec![2]);
    // The same holds after a reopen (the deletion was committed, not cached).
    if let Some(s2) = h.reopen(s.clone()).await {
        let m2 = &*s2.meta;
        for (a, want) in [(c.account_id, vec![]), (d.account_id, vec![2])] {
            let got: Vec<u64> = m2
                .grants(sid, a)
                .await
                .expect("grants")
                .iter()
                .map(|g| g.generation)
                .collect();
            assert_eq!(got, want);
        }
    }
}

// ---- links and drops ------------------------------------------------------------------------

/// Link states, download counting at the limit under concurrency, revoke, rotate, tokens.
pub async fn links(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = s.meta.clone();
    let a = register(&*m, "nina", T0).await;
    let other = register(&*m, "otto", T0).await;
    let file = node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1);
    upload_content(&s, file.clone(), None, 1, &content(100, 1), T0).await;
    let lw = link_write(
        a.account_id,
        file.node_id,
        LinkKind::File,
        Some(5),
        Some(T0 + DAY),
        T0,
    );
    let lid = lw.link_id;
    m.create_link(lw.clone(), Some(10)).await.expect("create");
    assert!(matches!(
        m.create_link(lw.clone(), None).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        m.create_link(
            link_write(a.account_id, file.node_id, LinkKind::File, None, None, T0),
            Some(1)
        )
        .await,
        Err(StoreError::LimitReached)
    ));
    assert_eq!(
        m.link(lid).await.expect("get").expect("exists"),
        Link {
            link: lw.clone(),
            downloads: 0
        }
    );
    assert!(matches!(
        m.link_access(lid, T0).await.expect("access"),
        LinkAccess::Live(_)
    ));
    assert_eq!(
        m.link_access(LinkId::from_bytes(fresh16()), T0)
            .await
            .expect("access"),
        LinkAccess::NotFound
    );
    assert_eq!(
        m.link_access(lid, T0 + DAY).await.expect("access"),
        LinkAccess::Expired
    );
    assert_eq!(
        m.consume_download(lid, T0 + DAY).await.expect("consume"),
        LinkAccess::Expired,
        "an expired link counts nothing"
    );
    // 20 concurrent consumers of a 5-download link: exactly 5 succeed.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            m.consume_download(lid, T0 + 1).await
        }));
    }
    let mut counted = Vec::new();
    for t in tasks {
        match t.await.expect("join").expect("consume") {
            LinkAccess::Live(l) => counted.push(l.downloads),
            LinkAccess::Exhausted => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        m.link(lid).await.expect("get").expect("exists").downloads,
        5
    );
    assert_eq!(
        m.link_access(lid, T0 + 2).await.expect("access"),
        LinkAccess::Exhausted
    );
    assert_eq!(m.links_of(a.account_id).await.expect("list").len(), 1);
    // Tokens.
    m.create_link_token([1; 32], lid, T0 + 3600)
        .await
        .expect("token");
    assert!(m.link_token_valid(&[1; 32], lid, T0).await.expect("valid"));
    assert!(
        !m.link_token_valid(&[1; 32], lid, T0 + 3600)
            .await
            .expect("valid"),
        "expired"
    );
    assert!(
        !m.link_token_valid(&[1; 32], LinkId::from_bytes(fresh16()), T0)
            .await
            .expect("valid"),
        "bound to its link"
    );
    assert!(!m.link_token_valid(&[2; 32], lid, T0).await.expect("valid"));
    // Rotate: atomic swap; the old id and its tokens are gone, the new one starts at 0.
    let new = link_write(
        a.account_id,
        file.node_id,
        LinkKind::File,
        Some(5),
        None,
        T0 + 5,
    );
    assert!(
        matches!(
            m.rotate_link(other.account_id, lid, new.clone()).await,
            Err(StoreError::NotFound)
        ),
        "another owner's link"
    );
    let mut taken = new.clone();
    taken.link_id = lid;
    assert!(matches!(
        m.rotate_link(a.account_id, lid, taken).await,
        Err(StoreError::Invalid(_))
    ));
    let third = link_write(a.account_id, file.node_id, LinkKind::File, None, None, T0);
    m.create_link(third.clone(), None).await.expect("create");
    let mut clash = new.clone();
    clash.link_id = third.link_id;
    assert!(matches!(
        m.rotate_link(a.account_id, lid, clash).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(
        m.link(lid).await.expect("get").is_some(),
        "a failed rotation keeps the old link"
    );
    let (rotated, removed) = m
        .rotate_link(a.account_id, lid, new.clone())
        .await
        .expect("rotate");
    assert_eq!(rotated.downloads, 0);
    assert_eq!(removed.links, vec![lid]);
    assert_eq!(
        m.link_access(lid, T0 + 6).await.expect("access"),
        LinkAccess::NotFound
    );
    assert!(matches!(
        m.link_access(new.link_id, T0 + 6).await.expect("access"),
        LinkAccess::Live(_)
    ));
    assert!(!m.link_token_valid(&[1; 32], lid, T0).await.expect("valid"));
    // Revoke.
    assert!(matches!(
        m.revoke_link(other.account_id, new.link_id).await,
        Err(StoreError::NotFound)
    ));
    m.revoke_link(a.account_id, new.link_id)
        .await
        .expect("revoke");
    assert_eq!(m.link(new.link_id).await.expect("get"), None);
    assert!(matches!(
        m.revoke_link(a.account_id, new.link_id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(m.links_of(a.account_id).await.expect("list").len(), 1);
}

/// Re-sealing (§11.11.7) replaces only the record, for the owner only; the download count,
/// tokens and everything else are kept; a revoked link cannot be re-sealed.
pub async fn link_reseal(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = s.meta.clone();
    let a = register(&*m, "rhea", T0).await;
    let other = register(&*m, "sven", T0).await;
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let lw = link_write(
        a.account_id,
        folder.node_id,
        LinkKind::Folder,
        Some(5),
        Some(T0 + DAY),
        T0,
    );
    let lid = lw.link_id;
    m.create_link(lw.clone(), None).await.expect("create");
    assert!(matches!(
        m.consume_download(lid, T0 + 1).await.expect("consume"),
        LinkAccess::Live(_)
    ));
    m.create_link_token([3; 32], lid, T0 + 3600)
        .await
        .expect("token");
    assert!(
        matches!(
            m.reseal_link(other.account_id, lid, b"stolen".to_vec())
                .await,
            Err(StoreError::NotFound)
        ),
        "another owner's link"
    );
    assert!(matches!(
        m.reseal_link(
            a.account_id,
            LinkId::from_bytes(fresh16()),
            b"nowhere".to_vec()
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        m.link(lid).await.expect("get").expect("exists").link,
        lw,
        "failed re-seals change nothing"
    );
    let resealed = m
        .reseal_link(a.account_id, lid, b"link-record-gen-1".to_vec())
        .await
        .expect("reseal");
    let expected = Link {
        link: LinkWrite {
            link_record: b"link-record-gen-1".to_vec(),
            ..lw.clone()
        },
        downloads: 1,
    };
    assert_eq!(resealed, expected);
    assert_eq!(m.link(lid).await.expect("get"), Some(expected.clone()));
    assert_eq!(
        m.links_of(a.account_id).await.expect("list"),
        vec![expected.clone()]
    );
    assert!(
        m.link_token_valid(&[3; 32], lid, T0 + 2)
            .await
            .expect("valid"),
        "tokens survive a re-seal"
    );
    assert_eq!(
        m.reseal_link(a.account_id, lid, b"link-record-gen-1".to_vec())
            .await
            .expect("same record again"),
        expected
    );
    m.revoke_link(a.account_id, lid).await.expect("revoke");
    assert!(matches!(
        m.reseal_link(a.account_id, lid, b"too-late".to_vec()).await,
        Err(StoreError::NotFound)
    ));
}

/// Drops: anonymous uploads finalized into drops, listed to the owner, surviving revocation;
/// unfinished drops die with the link.
pub async fn drops(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "pia", T0).await;
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let lw = link_write(a.account_id, folder.node_id, LinkKind::Drop, None, None, T0);
    m.create_link(lw.clone(), None).await.expect("link");
    let drop_upload = |envelope: &[u8]| NewUpload {
        upload_id: UploadId::from_bytes(fresh16()),
        creator: None,
        owner: a.account_id,
        target: UploadTarget::Drop {
            link_id: lw.link_id,
            envelope: envelope.to_vec(),
        },
        total_length: 1500,
        part_size: PS,
        created_at: T0,
        expires_at: T0 + DAY,
        max_expires_at: T0 + 7 * DAY,
    };
    let limits = UploadLimits {
        max_link_uploads: Some(2),
        max_link_drops: Some(1),
        ..UploadLimits::default()
    };
    let d1 = created(
        m.create_upload(drop_upload(b"env-1"), limits, T0)
            .await
            .expect("drop"),
    );
    let d2 = created(
        m.create_upload(drop_upload(b"env-2"), limits, T0)
            .await
            .expect("drop"),
    );
    assert!(matches!(
        m.create_upload(drop_upload(b"env-3"), limits, T0).await,
        Err(StoreError::LimitReached)
    ));
    let data = content(1500, 4);
    send_parts(&s, &d1, &data[..1000], T0).await;
    assert!(matches!(
        m.finalize_drop(d1.upload.upload_id, lw.link_id, T0).await,
        Err(StoreError::UploadIncomplete)
    ));
    send_parts(&s, &d1, &data, T0).await;
    assert!(
        matches!(
            m.finalize_drop(d1.upload.upload_id, LinkId::from_bytes(fresh16()), T0)
                .await,
            Err(StoreError::NotFound)
        ),
        "other link"
    );
    s.blobs
        .assemble(d1.upload.upload_id, 2, &d1.blob_key)
        .await
        .expect("assemble");
    let done = m
        .finalize_drop(d1.upload.upload_id, lw.link_id, T0 + 1)
        .await
        .expect("finalize");
    s.blobs
        .delete_parts(d1.upload.upload_id)
        .await
        .expect("parts");
    assert_eq!(
        (
            done.drop_id,
            done.total_length,
            done.envelope.as_slice(),
            done.created_at
        ),
        (d1.upload.upload_id, 1500, &b"env-1"[..], T0 + 1)
    );
    assert_eq!(
        m.drops_of(a.account_id).await.expect("list"),
        vec![done.clone()]
    );
    assert_eq!(
        m.drop_info(done.drop_id).await.expect("get"),
        Some(done.clone())
    );
    assert_eq!(read_all(&*s.blobs, &done.blob_key, None).await, data);
    assert_eq!(
        m.storage_used(a.account_id, T0 + 1).await.expect("used"),
        3000,
        "drop and the reservation of d2"
    );
    assert!(
        matches!(
            m.create_upload(drop_upload(b"env-4"), limits, T0 + 1).await,
            Err(StoreError::LimitReached)
        ),
        "finished drops limit"
    );
    // Revocation deletes the unfinished drop, not the finished one.
    let removed = m
        .revoke_link(a.account_id, lw.link_id)
        .await
        .expect("revoke");
    assert_eq!(
        removed
            .uploads
            .iter()
            .map(|u| u.upload.upload_id)
            .collect::<Vec<_>>(),
        vec![d2.upload.upload_id]
    );
    // The finished drop keeps the revoked link's record, which opens it.
    let kept = DropRecord {
        link_record: Some(lw.link_record.clone()),
        ..done.clone()
    };
    assert_eq!(
        m.drops_of(a.account_id).await.expect("list"),
        vec![kept.clone()]
    );
    assert_eq!(m.drop_info(done.drop_id).await.expect("get"), Some(kept));
    let other = register(m, "quinn", T0).await;
    assert!(matches!(
        m.delete_drop(other.account_id, done.drop_id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        m.delete_drop(a.account_id, done.drop_id)
            .await
            .expect("delete"),
        done.blob_key
    );
    assert_eq!(m.drops_of(a.account_id).await.expect("list"), vec![]);
    assert!(!m.blob_key_in_use(&done.blob_key).await.expect("in use"));
}

// ---- recovery and deletion ------------------------------------------------------------------

/// Compromise recovery is all or nothing.
pub async fn recovery(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "rita", T0).await;
    let b = register(m, "sam", T0).await;
    let (keep, hk) = session(a.account_id, T0);
    let (other, ho) = session(a.account_id, T0);
    m.create_session(keep.clone()).await.expect("s");
    m.create_session(other).await.expect("s");
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let sh = share_write(
        a.account_id,
        folder.node_id,
        0,
        &[(b.account_id, Permission::Read)],
    );
    m.create_share(
        sh.clone(),
        vec![grant(sh.share_id, b.account_id, 0)],
        vec![],
    )
    .await
    .expect("share");
    let l_keep = link_write(
        a.account_id,
        folder.node_id,
        LinkKind::Folder,
        None,
        None,
        T0,
    );
    let l_drop = link_write(
        a.account_id,
        folder.node_id,
        LinkKind::Folder,
        None,
        None,
        T0,
    );
    m.create_link(l_keep.clone(), None).await.expect("link");
    m.create_link(l_drop.clone(), None).await.expect("link");
    m.create_link_token([3; 32], l_keep.link_id, T0 + 3600)
        .await
        .expect("token");
    let pending = created(
        m.create_upload(
            new_upload(a.account_id, nid(), folder.node_id, 1, 10, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("u"),
    );
    let replacement = link_write(
        a.account_id,
        folder.node_id,
        LinkKind::Folder,
        None,
        None,
        T0,
    );
    let sh1 = ShareWrite {
        generation: 1,
        record: b"share-rekeyed".to_vec(),
        ..sh.clone()
    };
    let root = m
        .node(a.root_node_id)
        .await
        .expect("get")
        .expect("root")
        .node;
    let recovery = |folder_expected: u64| Recovery {
        account_id: a.account_id,
        keep_session: keep.session_id,
        expected_revision: 0,
        password_file: b"pf-r".to_vec(),
        key_bundle: b"kb-r".to_vec(),
        expected_generation: 0,
        identity: b"identity-1".to_vec(),
        nodes: vec![
            NodeUpdate {
                expected_revision: 1,
                node: next_revision(&root),
            },
            NodeUpdate {
                expected_revision: folder_expected,
                node: next_revision(&folder),
            },
        ],
        shares: vec![ShareRekey {
            share: sh1.clone(),
            grants: vec![grant(sh.share_id, b.account_id, 1)],
        }],
        links: vec![(l_keep.link_id, replacement.clone())],
    };
    // A stale record anywhere in the bundle: nothing changes.
    assert!(matches!(
        m.recover_account(recovery(5)).await,
        Err(StoreError::RevisionMismatch { .. })
    ));
    let same = m.account(a.account_id).await.expect("get").expect("exists");
    assert_eq!(
        (
            same.revision,
            same.identity_generation,
            same.password_file.as_slice()
        ),
        (0, 0, &b"password-file-0"[..])
    );
    assert_eq!(
        m.identity_chain(a.account_id)
            .await
            .expect("c")
            .expect("exists")
            .generations
            .len(),
        1
    );
    assert_eq!(
        m.node(a.root_node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        root
    );
    assert_eq!(
        m.share(sh.share_id)
            .await
            .expect("get")
            .expect("exists")
            .share,
        sh
    );
    assert!(m.link(l_drop.link_id).await.expect("get").is_some());
    assert!(m
        .authenticate_session(&ho, T0 + 1, DAY)
        .await
        .expect("auth")
        .is_some());
    assert!(m
        .upload(pending.upload.upload_id, T0)
        .await
        .expect("u")
        .is_some());
    let mut wrong_gen = recovery(1);
    wrong_gen.expected_generation = 3;
    assert!(matches!(
        m.recover_account(wrong_gen).await,
        Err(StoreError::RevisionMismatch { current: 0 })
    ));
    // The real one.
    let up = m.recover_account(recovery(1)).await.expect("recover");
    assert_eq!(
        (up.revision, up.identity_generation, up.sessions_revoked),
        (1, 1, 1)
    );
    let acc = m.account(a.account_id).await.expect("get").expect("exists");
    assert_eq!(
        (acc.password_file.as_slice(), acc.key_bundle.as_slice()),
        (&b"pf-r"[..], &b"kb-r"[..])
    );
    assert_eq!(
        m.identity_chain(a.account_id)
            .await
            .expect("c")
            .expect("exists")
            .generations
            .len(),
        2
    );
    assert_eq!(
        m.node(folder.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        next_revision(&folder)
    );
    let shr = m.share(sh.share_id).await.expect("get").expect("exists");
    assert_eq!((shr.share.clone(), shr.revision), (sh1, 1));
    assert_eq!(
        m.grants(sh.share_id, b.account_id)
            .await
            .expect("g")
            .iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>(),
        vec![1],
        "a recovery rotation deletes the old generation's grants"
    );
    assert_eq!(m.link(l_keep.link_id).await.expect("get"), None);
    assert_eq!(
        m.link(l_drop.link_id).await.expect("get"),
        None,
        "links not replaced are revoked"
    );
    assert!(m.link(replacement.link_id).await.expect("get").is_some());
    assert!(!m
        .link_token_valid(&[3; 32], l_keep.link_id, T0)
        .await
        .expect("token"));
    assert_eq!(
        m.upload(pending.upload.upload_id, T0).await.expect("u"),
        None
    );
    assert!(up
        .removed
        .uploads
        .iter()
        .any(|u| u.upload.upload_id == pending.upload.upload_id));
    assert_eq!(
        m.authenticate_session(&ho, T0 + 2, DAY)
            .await
            .expect("auth"),
        None
    );
    assert!(m
        .authenticate_session(&hk, T0 + 2, DAY)
        .await
        .expect("auth")
        .is_some());
}

/// Account deletion leaves no row mentioning the account (except the kept identity chain) and,
/// once the caller deleted what it returned, no blob or part of it.
pub async fn account_deletion_scan(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let name = "zed-to-be-deleted";
    let a = register(m, name, T0).await;
    let b = register(m, "yara", T0).await;
    let (sess, _) = session(a.account_id, T0);
    m.create_session(sess).await.expect("s");
    m.put_handshake(
        Handshake {
            id: fresh16(),
            kind: HandshakeKind::Login,
            username: Some(name.into()),
            account_id: Some(a.account_id),
            session_id: None,
            state: vec![],
            expires_at: T0 + 300,
        },
        T0,
    )
    .await
    .expect("login");
    let mut keys = HashSet::new();
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let file = node_write(a.account_id, Some(folder.node_id), NodeKind::File, 1);
    keys.extend(
        upload_content(&s, file.clone(), None, 1, &content(1500, 1), T0)
            .await
            .node
            .blob_key,
    );
    // An unfinished upload with parts.
    let pending = created(
        m.create_upload(
            new_upload(a.account_id, nid(), folder.node_id, 1, 1500, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("u"),
    );
    send_parts(&s, &pending, &content(1000, 2), T0).await;
    // A share with a member, a link with a token, a finished and an unfinished drop.
    let sh = share_write(
        a.account_id,
        folder.node_id,
        0,
        &[(b.account_id, Permission::Read)],
    );
    m.create_share(
        sh.clone(),
        vec![grant(sh.share_id, b.account_id, 0)],
        vec![],
    )
    .await
    .expect("share");
    let link = link_write(a.account_id, folder.node_id, LinkKind::Drop, None, None, T0);
    m.create_link(link.clone(), None).await.expect("link");
    m.create_link_token([4; 32], link.link_id, T0 + 3600)
        .await
        .expect("token");
    let mk_drop = || NewUpload {
        upload_id: UploadId::from_bytes(fresh16()),
        creator: None,
        owner: a.account_id,
        target: UploadTarget::Drop {
            link_id: link.link_id,
            envelope: b"env".to_vec(),
        },
        total_length: 500,
        part_size: PS,
        created_at: T0,
        expires_at: T0 + DAY,
        max_expires_at: T0 + DAY,
    };
    let d = created(
        m.create_upload(mk_drop(), UploadLimits::default(), T0)
            .await
            .expect("drop"),
    );
    send_parts(&s, &d, &content(500, 3), T0).await;
    s.blobs
        .assemble(d.upload.upload_id, 1, &d.blob_key)
        .await
        .expect("assemble");
    keys.insert(
        m.finalize_drop(d.upload.upload_id, link.link_id, T0)
            .await
            .expect("drop")
            .blob_key,
    );
    s.blobs
        .delete_parts(d.upload.upload_id)
        .await
        .expect("parts");
    let d2 = created(
        m.create_upload(mk_drop(), UploadLimits::default(), T0)
            .await
            .expect("drop"),
    );
    send_parts(&s, &d2, &content(500, 5), T0).await;
    // a is also a member of b's share: it becomes departed there.
    let bf = node_write(b.account_id, Some(b.root_node_id), NodeKind::Folder, 1);
    m.create_node(bf.clone(), None).await.expect("create");
    let bsh = share_write(
        b.account_id,
        bf.node_id,
        0,
        &[(a.account_id, Permission::Write)],
    );
    m.create_share(
        bsh.clone(),
        vec![grant(bsh.share_id, a.account_id, 0)],
        vec![],
    )
    .await
    .expect("share");
    let b_key = upload_content(
        &s,
        node_write(b.account_id, Some(b.root_node_id), NodeKind::File, 1),
        None,
        1,
        &content(700, 6),
        T0,
    )
    .await
    .node
    .blob_key;

    let removed = m.delete_account(a.account_id).await.expect("delete");
    for k in &removed.blob_keys {
        s.blobs.delete_blob(k).await.expect("delete blob");
    }
    for u in &removed.uploads {
        s.blobs
            .delete_parts(u.upload.upload_id)
            .await
            .expect("parts");
        s.blobs.delete_blob(&u.blob_key).await.expect("blob");
    }
    assert_eq!(
        removed.blob_keys.iter().cloned().collect::<HashSet<_>>(),
        keys
    );
    assert!(removed.sessions >= 1);
    assert_eq!(m.account(a.account_id).await.expect("get"), None);
    assert_eq!(m.account_by_username(name).await.expect("get"), None);
    let chain = m
        .identity_chain(a.account_id)
        .await
        .expect("chain")
        .expect("kept");
    assert!(chain.deleted);
    // The username is never reassigned.
    let again = Handshake {
        id: fresh16(),
        kind: HandshakeKind::Registration,
        username: Some(name.into()),
        account_id: Some(AccountId::from_bytes(fresh16())),
        session_id: None,
        state: vec![],
        expires_at: T0 + 1000,
    };
    assert!(matches!(
        m.put_handshake(again, T0 + 500).await,
        Err(StoreError::UsernameTaken)
    ));
    // b's share records a as departed; b's data is untouched.
    let bs = m.share(bsh.share_id).await.expect("get").expect("exists");
    assert_eq!(bs.departed, vec![a.account_id]);
    assert_eq!(
        m.grants(bsh.share_id, a.account_id).await.expect("g"),
        vec![]
    );
    assert!(m.node(bf.node_id).await.expect("get").is_some());
    // The scan: no stored value mentions the account, except the kept identity chain and b's
    // share (whose record names a as a member until b rotates; `departed` says a is gone).
    let aid = a.account_id.as_bytes().to_vec();
    for (table, value) in h.dump(&s).await {
        if table == "identities" || table == "identity_chains" {
            continue;
        }
        // Exactly these mentions are expected: b's share record (it lists a until b rotates),
        // and a's member and departed entries of b's share.
        let expected_mention = (table == "shares" && value == bsh.record)
            || (matches!(table.as_str(), "share_members" | "share_departed") && value == aid);
        if expected_mention {
            continue;
        }
        assert!(
            !value.windows(aid.len()).any(|w| w == aid.as_slice()),
            "table {table} still holds the account id"
        );
        assert!(
            !value.windows(name.len()).any(|w| w == name.as_bytes()),
            "table {table} still holds the username"
        );
    }
    // Only b's blob is left, and no parts.
    assert_eq!(
        s.blobs.list_blobs().await.expect("blobs"),
        vec![b_key.expect("b's content")]
    );
    assert_eq!(s.blobs.list_uploads().await.expect("uploads"), vec![]);
}

/// Committed data survives closing and reopening the stores.
pub async fn reopen_keeps_data(h: &dyn Harness) {
    let s = h.fresh().await;
    let a = register(&*s.meta, "uma", T0).await;
    let file = node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1);
    let data = content(2100, 7);
    let fin = upload_content(&s, file.clone(), None, 1, &data, T0).await;
    let pending = created(
        s.meta
            .create_upload(
                new_upload(a.account_id, nid(), a.root_node_id, 1, 1500, T0),
                UploadLimits::default(),
                T0,
            )
            .await
            .expect("u"),
    );
    send_parts(&s, &pending, &content(1000, 8), T0).await;
    let Some(s2) = h.reopen(s).await else { return };
    assert_eq!(
        s2.meta.account(a.account_id).await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(
        s2.meta.node(file.node_id).await.expect("get"),
        Some(fin.node.clone())
    );
    assert_eq!(
        read_all(&*s2.blobs, fin.node.blob_key.as_deref().expect("key"), None).await,
        data
    );
    let up = s2
        .meta
        .upload(pending.upload.upload_id, T0)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(up.parts, vec![(0, 1000)]);
    assert_eq!(
        s2.blobs
            .list_parts(pending.upload.upload_id)
            .await
            .expect("parts"),
        vec![(0, 1000)]
    );
}

/// Debris of interrupted writes is removed at startup and never shows as a blob or part.
pub async fn leftover_temp_files(h: &dyn Harness) {
    let s = h.fresh().await;
    let a = register(&*s.meta, "vera", T0).await;
    let fin = upload_content(
        &s,
        node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1),
        None,
        1,
        &content(1000, 1),
        T0,
    )
    .await;
    let Some((s2, cleaned)) = h.reopen_with_debris(s).await else {
        return;
    };
    assert!(cleaned, "leftover temporary files are removed at startup");
    let key = fin.node.blob_key.expect("key");
    assert_eq!(
        s2.blobs.list_blobs().await.expect("blobs"),
        vec![key.clone()]
    );
    assert_eq!(s2.blobs.list_uploads().await.expect("uploads"), vec![]);
    assert_eq!(read_all(&*s2.blobs, &key, None).await, content(1000, 1));
}

/// Blob store basics: streaming part writes, idempotent overwrite, assemble, list, delete.
pub async fn blob_basics(h: &dyn Harness) {
    let s = h.fresh().await;
    let b = &*s.blobs;
    let uid = UploadId::from_bytes(fresh16());
    let chunks: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ];
    let stored = b
        .put_part(uid, 0, Box::pin(futures_util::stream::iter(chunks)), 100)
        .await
        .expect("put");
    assert_eq!(stored.length, 11);
    // A failing body stores nothing and keeps the earlier copy.
    let failing: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from_static(b"xx")),
        Err(std::io::Error::other("client went away")),
    ];
    assert!(b
        .put_part(uid, 0, Box::pin(futures_util::stream::iter(failing)), 100)
        .await
        .is_err());
    b.put_part(uid, 1, bytes_stream(&b"!"[..]), 100)
        .await
        .expect("put");
    assert_eq!(
        b.list_parts(uid).await.expect("list"),
        vec![(0, 11), (1, 1)]
    );
    assert_eq!(b.list_uploads().await.expect("uploads"), vec![uid]);
    assert!(matches!(
        b.assemble(uid, 3, "k-1").await,
        Err(StoreError::UploadIncomplete)
    ));
    assert_eq!(
        b.list_blobs().await.expect("blobs"),
        Vec::<String>::new(),
        "a failed assemble leaves no blob"
    );
    assert_eq!(b.assemble(uid, 2, "k-1").await.expect("assemble"), 12);
    assert_eq!(b.assemble(uid, 2, "k-1").await.expect("assemble again"), 12);
    assert!(matches!(
        b.assemble(uid, 2, "Bad/Key").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(b.blob_length("k-1").await.expect("len"), Some(12));
    assert_eq!(read_all(b, "k-1", Some(6..11)).await, b"world");
    assert_eq!(read_all(b, "k-1", None).await, b"hello world!");
    assert_eq!(b.list_blobs().await.expect("blobs"), vec!["k-1".to_owned()]);
    b.delete_parts(uid).await.expect("parts");
    b.delete_parts(uid).await.expect("parts twice");
    assert_eq!(b.list_uploads().await.expect("uploads"), vec![]);
    assert!(b.delete_blob("k-1").await.expect("delete"));
    assert!(!b.delete_blob("k-1").await.expect("delete twice"));
    assert_eq!(b.list_blobs().await.expect("blobs"), Vec::<String>::new());
}

/// An assembled blob is a snapshot of the parts: writing a part again (or failing to) after the
/// assembly, or deleting the parts, leaves it unchanged; assembling the same key again takes the
/// parts as they are then; every range, across part boundaries, reads back the right bytes.
pub async fn assembled_blob_is_a_snapshot(h: &dyn Harness) {
    let s = h.fresh().await;
    let b = &*s.blobs;
    let uid = UploadId::from_bytes(fresh16());
    let data = content(3000, 7);
    for (i, chunk) in data.chunks(1000).enumerate() {
        b.put_part(uid, i as u64, bytes_stream(chunk.to_vec()), 1000)
            .await
            .expect("put");
    }
    assert_eq!(b.assemble(uid, 3, "k-snap").await.expect("assemble"), 3000);
    let other = content(1000, 8);
    assert_ne!(other, data[1000..2000]);
    b.put_part(uid, 1, bytes_stream(other.clone()), 1000)
        .await
        .expect("rewrite");
    let failing: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(other[..10].to_vec())),
        Err(std::io::Error::other("client went away")),
    ];
    assert!(b
        .put_part(uid, 2, Box::pin(futures_util::stream::iter(failing)), 1000)
        .await
        .is_err());
    assert_eq!(
        read_all(b, "k-snap", None).await,
        data,
        "part writes after assembly leave the blob unchanged"
    );
    for r in [
        0..1,
        999..1001,
        500..2500,
        1000..2000,
        1999..2001,
        2999..3000,
        0..3000,
    ] {
        let want = &data[r.start as usize..r.end as usize];
        let mut read = b.read("k-snap", Some(r.clone())).await.expect("read");
        assert_eq!(read.length, 3000);
        let mut got = Vec::new();
        while let Some(chunk) = read.stream.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(got, want, "range {r:?}");
    }
    assert!(matches!(
        b.read("k-snap", Some(2500..3001)).await,
        Err(StoreError::Invalid(_))
    ));
    let mut renewed = data.clone();
    renewed[1000..2000].copy_from_slice(&other);
    assert_eq!(b.assemble(uid, 3, "k-snap").await.expect("again"), 3000);
    assert_eq!(read_all(b, "k-snap", None).await, renewed);
    b.delete_parts(uid).await.expect("parts");
    assert_eq!(
        read_all(b, "k-snap", None).await,
        renewed,
        "the blob outlives its parts"
    );
    assert_eq!(b.blob_length("k-snap").await.expect("len"), Some(3000));
    assert!(matches!(
        b.assemble(uid, 3, "k-snap").await,
        Err(StoreError::UploadIncomplete)
    ));
    assert_eq!(
        read_all(b, "k-snap", None).await,
        renewed,
        "a failed assembly leaves the earlier blob"
    );
    assert!(b.delete_blob("k-snap").await.expect("delete"));
    assert!(matches!(
        b.read("k-snap", None).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(b.blob_length("k-snap").await.expect("len"), None);
    assert_eq!(b.list_blobs().await.expect("blobs"), Vec::<String>::new());
}

/// Orphan collection deletes unreferenced blobs and parts, and nothing that is referenced or
/// belongs to a live upload.
pub async fn orphan_collection(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = &*s.meta;
    let a = register(m, "wes", T0).await;
    let fin = upload_content(
        &s,
        node_write(a.account_id, Some(a.root_node_id), NodeKind::File, 1),
        None,
        1,
        &content(1500, 1),
        T0,
    )
    .await;
    // A live upload with a part and an assembled (not yet committed) blob.
    let live = created(
        m.create_upload(
            new_upload(a.account_id, nid(), a.root_node_id, 1, 900, T0),
            UploadLimits::default(),
            T0,
        )
        .await
        .expect("u"),
    );
    send_parts(&s, &live, &content(900, 2), T0).await;
    s.blobs
        .assemble(live.upload.upload_id, 1, &live.blob_key)
        .await
        .expect("assemble");
    // Debris: parts of an unknown upload, a blob nothing references.
    let ghost = UploadId::from_bytes(fresh16());
    s.blobs
        .put_part(ghost, 0, bytes_stream(&b"ghost"[..]), 100)
        .await
        .expect("put");
    s.blobs
        .assemble(ghost, 1, &blob_key_for_upload(&ghost))
        .await
        .expect("assemble");
    let report = collect_orphans(m, &*s.blobs).await.expect("collect");
    assert_eq!(
        report,
        Orphans {
            blobs: 1,
            uploads: 1
        }
    );
    let mut want = vec![fin.node.blob_key.expect("key"), live.blob_key.clone()];
    want.sort();
    assert_eq!(s.blobs.list_blobs().await.expect("blobs"), want);
    assert_eq!(
        s.blobs.list_uploads().await.expect("uploads"),
        vec![live.upload.upload_id]
    );
    assert_eq!(
        collect_orphans(m, &*s.blobs).await.expect("collect"),
        Orphans::default()
    );
}

/// Concurrent writers naming the same expected revision: exactly one wins, whatever the backend.
pub async fn concurrent_revisions(h: &dyn Harness) {
    let s = h.fresh().await;
    let m = s.meta.clone();
    let a = register(&*m, "xena", T0).await;
    let folder = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(folder.clone(), None).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let m = m.clone();
        let mut node = next_revision(&folder);
        node.record.push(i);
        tasks.push(tokio::spawn(async move {
            m.update_node(NodeUpdate {
                expected_revision: 1,
                node,
            })
            .await
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            Ok(n) => wins.push(n.node),
            Err(StoreError::RevisionMismatch { current: 2 }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one writer wins");
    assert_eq!(
        m.node(folder.node_id)
            .await
            .expect("get")
            .expect("exists")
            .node,
        wins[0]
    );
    // Identity appends likewise.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            m.append_identity(a.account_id, 0, vec![i]).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("join").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        m.identity_chain(a.account_id)
            .await
            .expect("chain")
            .expect("exists")
            .generations
            .len(),
        2
    );
}

/// An operation whose future is dropped part-way (a client that went away, a timeout) is done
/// or not done, and never leaves the store unable to serve what follows: no transaction left
/// open on a pooled connection, no write lock held. Writes (one that commits, one that fails
/// inside its transaction, an account creation) and a read are each dropped after a delay
/// swept over 0-400 us, so that the drops land at every step of their work; after each, a
/// write must succeed at once.
pub async fn dropped_operations_leave_the_store_usable(h: &dyn Harness) {
    use std::time::Duration;

    let s = h.fresh().await;
    let m = s.meta.clone();
    let a = register(&*m, "yuri", T0).await;
    let dropped = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(dropped.clone(), None).await.expect("create");
    let mut checked = node_write(a.account_id, Some(a.root_node_id), NodeKind::Folder, 1);
    m.create_node(checked.clone(), None).await.expect("create");
    let mut revision = dropped.clone();
    for i in 0..800u64 {
        let delay = Duration::from_micros(i * 7919 % 400);
        let kind = i % 4;
        match kind {
            0 => {
                revision = next_revision(&revision);
                let op = m.update_node(NodeUpdate {
                    expected_revision: revision.revision - 1,
                    node: revision.clone(),
                });
                if !matches!(tokio::time::timeout(delay, op).await, Ok(Ok(_))) {
                    // Done or not done: the stored revision says which.
                    let stored = m
                        .node(dropped.node_id)
                        .await
                        .expect("read")
                        .expect("exists");
                    revision = stored.node;
                }
            }
            1 => {
                let op = m.append_identity(a.account_id, 1_000, b"not next".to_vec());
                let _ = tokio::time::timeout(delay, op).await;
            }
            2 => {
                let (handshake, account) = new_registration(&format!("dropped{i}"), T0);
                let op = async {
                    m.put_handshake(handshake, T0).await?;
                    m.create_account(account, T0).await
                };
                let _ = tokio::time::timeout(delay, op).await;
            }
            _ => {
                let _ = tokio::time::timeout(delay, m.node_path(dropped.node_id)).await;
            }
        }
        let next = next_revision(&checked);
        let done = tokio::time::timeout(
            Duration::from_secs(5),
            m.update_node(NodeUpdate {
                expected_revision: checked.revision,
                node: next.clone(),
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("a write waited 5 s after operation {kind} was dropped"));
        if let Err(e) = done {
            panic!("a write failed after operation {kind} was dropped after {delay:?}: {e:?}");
        }
        checked = next;
    }
    let stored = m
        .node(checked.node_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.node, checked, "the last write is what a read sees");
}

/// Server secrets: the first one stored for a name is returned to every later caller, also
/// after a reopen; names are independent.
pub async fn server_secrets(h: &dyn Harness) {
    let s = h.fresh().await;
    let first = ServerSecret::new(vec![1; 32]);
    let got = s
        .meta
        .server_secret("cursor", first.clone())
        .await
        .expect("secret");
    assert_eq!(got, first);
    let again = s
        .meta
        .server_secret("cursor", ServerSecret::new(vec![2; 32]))
        .await
        .expect("secret");
    assert_eq!(again, first, "the stored secret wins");
    let other = s
        .meta
        .server_secret("other", ServerSecret::new(vec![3; 32]))
        .await
        .expect("secret");
    assert_eq!(other.expose(), &[3; 32]);
    assert_eq!(format!("{first:?}"), "ServerSecret(..)");
    let Some(s2) = h.reopen(s).await else { return };
    let kept = s2
        .meta
        .server_secret("cursor", ServerSecret::new(vec![4; 32]))
        .await
        .expect("secret");
    assert_eq!(kept, first, "kept across a reopen");
}
