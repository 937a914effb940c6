//! Remote files (spec §7, §11.8, §11.9): path resolution from `/`, list, mkdir, move, remove,
//! upload (parallel encryption, resumable) and download (streaming, verified, byte ranges).
//!
//! Remote paths start at the account's root folder (`/`). Folders other accounts share with
//! this one appear as `/shared/OWNER/NAME` (from [`Client::incoming`](crate::Client::incoming)).
//! Every node record on the way is verified with `coffer_core::tree::verify_node` against the
//! place it was found (node id, parent, generation) and the identities allowed to write there;
//! names come from the node's authenticated metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use coffer_core::api;
use coffer_core::content;
use coffer_core::encoding::{b64url_encode, decode_bounded, encode, ByteBuf};
use coffer_core::ids::{NodeId, UploadId};
use coffer_core::metadata::{self, Metadata};
use coffer_core::primitives::{ContentDigest, SecretKey, SigningKey, VerifyingKey};
use coffer_core::tree::{self, FileContent, FolderKey, NewNode, NodeRecord, SealedMetadata};
use futures_util::{StreamExt as _, TryStreamExt as _};
use rand_core::OsRng;
use reqwest::header::HeaderMap;
use reqwest::Method;

use crate::account::session_problem;
use crate::error::{Error, Result};
use crate::http::{decode_body, Bearer, Http, Payload, Retry};
use crate::state::{UploadKey, UploadState, UPLOAD_STATE_FORMAT};
use crate::{now, Client};

/// The name of the virtual folder holding folders shared with this account.
pub const SHARED_DIR: &str = "shared";

/// A parsed remote path: the names from `/` down, each a valid node name (spec §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePath {
    names: Vec<String>,
}

impl RemotePath {
    /// Parses `text`: `/`-separated names, an optional leading `/` (paths are always from the
    /// root), empty segments and `.` ignored, `..` refused.
    ///
    /// # Errors
    /// [`Error::Usage`] for `..` or a name metadata refuses.
    pub fn parse(text: &str) -> Result<Self> {
        let mut names = Vec::new();
        for seg in text.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    return Err(Error::Usage(format!(
                        "remote path {text:?}: `..` is not supported; write the path from /"
                    )))
                }
                name => {
                    metadata::validate_name(name).map_err(|e| {
                        Error::Usage(format!("remote path {text:?}: bad name {name:?}: {e}"))
                    })?;
                    names.push(name.to_owned());
                }
            }
        }
        Ok(RemotePath { names })
    }

    /// The root, `/`.
    #[must_use]
    pub fn root() -> Self {
        RemotePath { names: Vec::new() }
    }

    /// The names from the root down.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether this is `/`.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The parent path and the last name; `None` for `/`.
    #[must_use]
    pub fn split_last(&self) -> Option<(RemotePath, &str)> {
        let (last, rest) = self.names.split_last()?;
        Some((
            RemotePath {
                names: rest.to_vec(),
            },
            last.as_str(),
        ))
    }

    /// This path with `name` appended.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad name.
    pub fn join(&self, name: &str) -> Result<Self> {
        metadata::validate_name(name)
            .map_err(|e| Error::Usage(format!("bad name {name:?}: {e}")))?;
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Ok(RemotePath { names })
    }
}

impl std::fmt::Display for RemotePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for n in &self.names {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// Which identities may author records in a tree, and how to reach its nodes.
#[derive(Debug, Clone)]
pub struct TreeScope {
    /// The Ed25519 keys whose node records are accepted in this tree: the owner's current
    /// identity and, in a shared folder, the members with write permission.
    pub authors: Vec<VerifyingKey>,
    /// For a folder shared with this account: the owner's user name.
    pub shared_by: Option<String>,
}

/// A verified node: its record, its key, its metadata, and the scope it was found in.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    /// The node id.
    pub id: NodeId,
    /// The verified record.
    pub record: NodeRecord,
    /// The exact signed encoding the record came from.
    pub signed: Vec<u8>,
    /// The node key.
    pub key: SecretKey,
    /// The server's revision of the record (§11.4.3), from the `ETag`; 0 when unknown.
    pub revision: u64,
    /// The opened metadata.
    pub metadata: Metadata,
    /// Who may write in the tree this node belongs to.
    pub scope: Arc<TreeScope>,
}

impl RemoteNode {
    /// Whether this is a folder.
    #[must_use]
    pub fn is_folder(&self) -> bool {
        self.record.is_folder()
    }

    /// The node's name (from its metadata).
    #[must_use]
    pub fn name(&self) -> &str {
        self.metadata.name()
    }
}

/// What a remote path names.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A node of the account's tree or of a folder shared with it.
    Node(Box<RemoteNode>),
    /// `/shared`: the virtual folder of folders shared with this account.
    SharedRoot,
    /// `/shared/OWNER`: the virtual folder of what `OWNER` shares with this account.
    SharedOwner(String),
}

/// One entry of a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The name.
    pub name: String,
    /// `"file"` or `"folder"`.
    pub kind: &'static str,
    /// Plaintext size in bytes (files).
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// A file's content digest from its authenticated metadata (spec §2.3: BLAKE3 of the
    /// plaintext, what `b3sum` prints), hex; `None` for folders.
    #[serde(rename = "digest", skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

/// Reports transfer progress (bytes of plaintext); the CLI draws a bar, the library is quiet.
pub trait Progress: Send + Sync {
    /// The total number of bytes, once known.
    fn set_total(&self, _total: u64) {}
    /// `n` more bytes done.
    fn advance(&self, _n: u64) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What `put` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PutOutcome {
    /// The remote path written.
    pub path: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Parts sent by this run (fewer than the total when resuming).
    pub parts_sent: u64,
    /// Parts in the upload.
    pub parts_total: u64,
    /// Whether this run continued an interrupted upload.
    pub resumed: bool,
}

/// Decodes a signed node's id without verifying it (to know what to expect; the record is then
/// verified with [`tree::verify_node`]).
fn peek_node_id(signed: &[u8]) -> Result<NodeId> {
    let outer: tree::SignedNode = decode_bounded(signed, tree::MAX_SIGNED_NODE_LEN)?;
    let record: NodeRecord = decode_bounded(&outer.record, tree::MAX_SIGNED_NODE_LEN)?;
    Ok(record.node_id)
}

/// The node revision of a node read's `ETag: "n<revision>"` (§11.8).
fn etag_revision(resp: &reqwest::Response) -> Result<u64> {
    resp.headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim_matches('"').strip_prefix('n'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::integrity("node read without a node revision ETag"))
}

/// Opens a verified record's metadata with the node key.
fn open_meta(record: &NodeRecord, key: &SecretKey) -> Result<Metadata> {
    let mkey = record.metadata_key(key)?;
    Ok(metadata::open_metadata(
        &mkey,
        &record.node_id,
        record.metadata_revision,
        &record.sealed_metadata,
    )?)
}

/// Verifies a child record listed (or read) under `parent` and opens its key and metadata.
fn open_child(parent: &RemoteNode, signed: &[u8], revision: u64) -> Result<RemoteNode> {
    let id = peek_node_id(signed)?;
    let record = tree::verify_node(
        signed,
        &tree::NodeExpectation {
            node_id: id,
            parent: Some((parent.id, parent.record.key_generation)),
            key_generation: None,
        },
        &parent.scope.authors,
    )?;
    let key = record.open_node_key(&parent.record, &parent.folder_key())?;
    let metadata = open_meta(&record, &key)?;
    if !record.is_folder() {
        let file = record
            .file
            .as_ref()
            .ok_or_else(|| Error::integrity("file record without content"))?;
        if content::ciphertext_len(metadata.size()).ok() != Some(file.ciphertext_length) {
            return Err(Error::integrity(
                "a file's ciphertext length does not match its size",
            ));
        }
    }
    Ok(RemoteNode {
        id,
        record,
        signed: signed.to_vec(),
        key,
        revision,
        metadata,
        scope: Arc::clone(&parent.scope),
    })
}

impl RemoteNode {
    /// This folder's current folder key.
    #[must_use]
    pub fn folder_key(&self) -> FolderKey {
        self.record.folder_key(self.key.clone())
    }

    /// A file's plaintext size (from its authenticated metadata).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.metadata.size()
    }

    fn entry(&self) -> Entry {
        Entry {
            name: self.name().to_owned(),
            kind: if self.is_folder() { "folder" } else { "file" },
            size: self.metadata.size(),
            mtime: self.metadata.mtime(),
            content_digest: self.metadata.content_digest().map(hex::encode),
        }
    }
}

/// What a put writes to: a new file in `parent`, or the content of an existing file.
struct PutTarget {
    parent: RemoteNode,
    name: String,
    existing: Option<RemoteNode>,
}

/// One part's plaintext as the reader hands it to the encryption workers.
struct PartJob {
    index: u64,
    /// Ciphertext span of the part.
    span: (u64, u64),
    /// First chunk covered.
    first_chunk: u64,
    /// The plaintext of the chunks covering the part, laid out as their ciphertext will be
    /// (see [`read_into_layout`]).
    chunks: Vec<u8>,
}

/// Part buffers kept for reuse: a fresh buffer per part costs its pages again (page faults and
/// zeroing by the kernel, a measurable share of `put`'s CPU).
#[derive(Clone, Default)]
struct BufferPool(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// At most this many idle buffers are kept (the parts in flight, and the one being read).
    const KEEP: usize = 6;

    /// A buffer of `len` bytes, to be overwritten whole: a reused one keeps the ciphertext it
    /// held (only bytes it never had are zeroed).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        v.truncate(len);
        v.resize(len, 0);
        v
    }

    /// Returns a buffer (holding ciphertext only: plaintext is sealed in place before a part
    /// leaves the reader).
    fn put(&self, v: Vec<u8>) {
        if let Ok(mut p) = self.0.lock() {
            if p.len() < Self::KEEP {
                p.push(v);
            }
        }
    }
}

/// A part's ciphertext, a range of a pooled buffer handed to the HTTP body without a copy;
/// the buffer goes back to the pool when the body is done with it.
struct PooledPart {
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
    pool: BufferPool,
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

/// How many parts are encrypted and sent at once: bounded for memory (each is one part of
/// plaintext becoming ciphertext in place). At least three, so that a part is being encrypted
/// while two are on the wire or waiting for the server's `fsync`: with two, a 1 GiB put on two
/// cores took 12-15% longer (five alternating pairs on tmpfs), with peak RSS 41-50 MiB either
/// way.
fn upload_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(3)
        .clamp(3, 4)
}

/// The part size for a ciphertext of `total` bytes: the default, raised (in whole strides) when
/// the file would need more than `MAX_PARTS` parts.
fn part_size_for(total: u64) -> u64 {
    let mut size = api::DEFAULT_PART_SIZE;
    if total.div_ceil(size) > api::MAX_PARTS {
        let need = total.div_ceil(api::MAX_PARTS);
        size = need.div_ceil(api::CONTENT_CHUNK_STRIDE) * api::CONTENT_CHUNK_STRIDE;
    }
    size.min(api::MAX_PART_SIZE)
}

/// The chunks and plaintext bytes that cover the ciphertext span `[a, b)`.
fn chunks_for_span(a: u64, b: u64, plaintext_len: u64) -> (u64, u64, u64) {
    let h = content::HEADER_LEN as u64;
    let stride = content::ENCRYPTED_CHUNK_LEN as u64;
    let chunk = content::CHUNK_LEN as u64;
    let first = a.saturating_sub(h) / stride;
    let last = (b.max(h + 1) - 1 - h) / stride;
    let p0 = first * chunk;
    let p1 = ((last + 1) * chunk).min(plaintext_len);
    (first, p0, p1)
}

/// The resume check of a part (kept in the upload state, see [`crate::state`]): SHA-256 of the
/// Poly1305 tags of the sealed chunks covering it, hex. Under the upload's fixed file key, salt
/// and chunk indexes, a chunk's tag changes whenever its plaintext does, so equal checks mean
/// unchanged plaintext; hashing 16 bytes per 64 KiB chunk costs nothing next to hashing the
/// plaintext. Compared before a re-encrypted part is sent, so changed plaintext is never sent
/// under a used nonce.
fn part_check(sealed: &[u8]) -> String {
    use sha2::Digest as _;
    let tag = coffer_core::primitives::TAG_LEN;
    let mut h = sha2::Sha256::new();
    for c in sealed.chunks(content::ENCRYPTED_CHUNK_LEN) {
        h.update(&c[c.len().saturating_sub(tag)..]);
    }
    hex::encode(h.finalize())
}

/// Encrypts one part: the covering chunks in place, then the exact span cut out. Returns the
/// part's ciphertext and its resume check ([`part_check`]).
fn seal_part(
    sealer: &content::ContentSealer,
    job: PartJob,
    pool: &BufferPool,
) -> Result<(Bytes, String)> {
    let h = content::HEADER_LEN as u64;
    let stride = content::ENCRYPTED_CHUNK_LEN as u64;
    let mut buf = job.chunks;
    sealer.seal_chunks_in_layout(job.first_chunk, &mut buf)?;
    let check = part_check(&buf);
    let base = h + job.first_chunk * stride;
    let (a, len) = job.span;
    let b = a + len;
    if a < h {
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        out.extend_from_slice(&sealer.header()[usize::try_from(a).unwrap_or(0)..]);
        let rest = usize::try_from(b - h).map_err(|_| Error::Usage("part too large".into()))?;
        out.extend_from_slice(buf.get(..rest).ok_or(Error::Internal("part layout"))?);
        pool.put(buf);
        return Ok((Bytes::from(out), check));
    }
    let from = usize::try_from(a - base).map_err(|_| Error::Usage("part too large".into()))?;
    let to = usize::try_from(b - base).map_err(|_| Error::Usage("part too large".into()))?;
    if to > buf.len() {
        return Err(Error::Internal("part layout"));
    }
    let part = PooledPart {
        buf,
        range: from..to,
        pool: pool.clone(),
    };
    Ok((Bytes::from_owner(part), check))
}

impl Client {
    /// The identity signing key of the session.
    fn signing(&self) -> Result<&SigningKey> {
        Ok(&self.session()?.account.secrets.identity.signing)
    }

    /// The scope of the account's own tree: records written by its current identity, and by
    /// the members with write permission of the shares it owns (each share record verified
    /// against the account's own key). A member's record can only be placed where that member
    /// holds the parent's folder key, which [`open_child`] checks by opening the node key.
    async fn own_scope(&self) -> Result<Arc<TreeScope>> {
        let s = self.session()?;
        let me = self.signing()?.verifying_key();
        let mut authors = vec![me];
        let list: api::ShareList = self
            .http()
            .get("/v1/shares", Some(&s.token))
            .await
            .map_err(session_problem)?;
        for e in &list.owned {
            let record = coffer_core::share::verify_share(&e.signed_share, e.share_id, &me, 0)?;
            for k in record.writers()? {
                if !authors.contains(&k) {
                    authors.push(k);
                }
            }
        }
        Ok(Arc::new(TreeScope {
            authors,
            shared_by: None,
        }))
    }

    /// The account's root folder, verified against the account's sealed root id and key.
    ///
    /// # Errors
    /// [`Error::Integrity`] if the record does not verify.
    pub async fn root(&self) -> Result<RemoteNode> {
        let s = self.session()?;
        let resp = self
            .http()
            .send(
                Method::GET,
                "/v1/root",
                Some(&s.token),
                Payload::Empty,
                HeaderMap::new(),
                Retry::Idempotent,
            )
            .await
            .map_err(session_problem)?;
        let revision = etag_revision(&resp)?;
        let body: api::NodeResponse = decode_body(resp).await?;
        let secrets = &s.account.secrets;
        let scope = self.own_scope().await?;
        let record = tree::verify_node(
            &body.signed_node,
            &tree::NodeExpectation {
                node_id: secrets.root_node_id,
                parent: None,
                key_generation: None,
            },
            // The root is the account's own: only its identity writes it.
            &[self.signing()?.verifying_key()],
        )?;
        let key = secrets.root_node_key.clone();
        let metadata = open_meta(&record, &key)?;
        Ok(RemoteNode {
            id: record.node_id,
            record,
            signed: body.signed_node.to_vec(),
            key,
            revision,
            metadata,
            scope,
        })
    }

    /// Reads `node` again (its current record and revision), verified in the same place.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it is gone; [`Error::Integrity`].
    pub async fn refresh(
        &self,
        node: &RemoteNode,
        parent: Option<&RemoteNode>,
    ) -> Result<RemoteNode> {
        let s = self.session()?;
        let resp = self
            .http()
            .send(
                Method::GET,
                &format!("/v1/nodes/{}", node.id),
                Some(&s.token),
                Payload::Empty,
                HeaderMap::new(),
                Retry::Idempotent,
            )
            .await
            .map_err(|e| not_found(e, node.name()))?;
        let revision = etag_revision(&resp)?;
        let body: api::NodeResponse = decode_body(resp).await?;
        match parent {
            Some(p) => {
                let n = open_child(p, &body.signed_node, revision)?;
                if n.id != node.id {
                    return Err(Error::integrity("the server returned another node"));
                }
                Ok(n)
            }
            None => {
                let record = tree::verify_node(
                    &body.signed_node,
                    &tree::NodeExpectation {
                        node_id: node.id,
                        parent: node.record.parent_id.map(|p| (p, u64::MAX)),
                        key_generation: None,
                    },
                    &node.scope.authors,
                )?;
                let metadata = open_meta(&record, &node.key)?;
                Ok(RemoteNode {
                    record,
                    signed: body.signed_node.to_vec(),
                    revision,
                    metadata,
                    ..node.clone()
                })
            }
        }
    }

    /// Every child of `folder`, verified (all pages).
    ///
    /// # Errors
    /// [`Error::Integrity`] if a record does not verify or a listing is inconsistent.
    pub async fn children(&self, folder: &RemoteNode) -> Result<Vec<RemoteNode>> {
        let s = self.session()?;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/nodes/{}/children?cursor={c}", folder.id),
                None => format!("/v1/nodes/{}/children", folder.id),
            };
            let list: api::NodeList = self
                .http()
                .get(&path, Some(&s.token))
                .await
                .map_err(|e| not_found(e, folder.name()))?;
            if list.parent_id != folder.id {
                return Err(Error::integrity("listing of another folder"));
            }
            for r in &list.records {
                let child = open_child(folder, r, 0)?;
                if !seen.insert(child.id) {
                    return Err(Error::integrity("a node listed twice"));
                }
                out.push(child);
            }
            match list.next_cursor {
                Some(c) => cursor = Some(b64url_encode(&c)),
                None => break,
            }
        }
        out.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(out)
    }

    /// The child of `folder` named `name`, if any.
    ///
    /// # Errors
    /// [`Error::Conflict`] if several children have the name.
    async fn child_named(&self, folder: &RemoteNode, name: &str) -> Result<Option<RemoteNode>> {
        if !folder.is_folder() {
            return Err(Error::NotFound(format!("{} is a file", folder.name())));
        }
        let mut found = self
            .children(folder)
            .await?
            .into_iter()
            .filter(|c| c.name() == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(Error::Conflict(format!(
                "several entries are named {name:?}; rename one with `coffer mv`"
            )));
        }
        Ok(first)
    }

    /// Walks `names` down from `start`.
    async fn walk(&self, start: RemoteNode, names: &[String], shown: &str) -> Result<RemoteNode> {
        let mut cur = start;
        for name in names {
            cur = self
                .child_named(&cur, name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("{shown}: no such file or folder")))?;
        }
        Ok(cur)
    }

    /// Resolves `path` from `/`, verifying every record on the way.
    ///
    /// # Errors
    /// [`Error::NotFound`] when a name does not exist; [`Error::Integrity`] for a record that
    /// does not verify.
    pub async fn resolve(&self, path: &RemotePath) -> Result<Resolved> {
        let shown = path.to_string();
        match path.names() {
            [first, rest @ ..] if first == SHARED_DIR => match rest {
                [] => Ok(Resolved::SharedRoot),
                [owner] => {
                    let incoming = self.incoming().await?;
                    if incoming.iter().any(|s| &s.owner == owner) {
                        Ok(Resolved::SharedOwner(owner.clone()))
                    } else {
                        Err(Error::NotFound(format!(
                            "{shown}: {owner} shares nothing with you"
                        )))
                    }
                }
                [owner, name, below @ ..] => {
                    let share = self
                        .incoming()
                        .await?
                        .into_iter()
                        .find(|s| &s.owner == owner && &s.name == name)
                        .ok_or_else(|| {
                            Error::NotFound(format!("{shown}: no such shared folder"))
                        })?;
                    Ok(Resolved::Node(Box::new(
                        self.walk(share.root, below, &shown).await?,
                    )))
                }
            },
            names => {
                let root = self.root().await?;
                Ok(Resolved::Node(Box::new(
                    self.walk(root, names, &shown).await?,
                )))
            }
        }
    }

    /// Resolves `path` to a node (not a virtual `/shared` folder).
    async fn resolve_node(&self, path: &RemotePath) -> Result<RemoteNode> {
        match self.resolve(path).await? {
            Resolved::Node(n) => Ok(*n),
            _ => Err(Error::Usage(format!(
                "{path} is a virtual folder of shares; name a folder below it"
            ))),
        }
    }

    /// Resolves `path` to a folder.
    async fn resolve_folder(&self, path: &RemotePath) -> Result<RemoteNode> {
        let n = self.resolve_node(path).await?;
        if !n.is_folder() {
            return Err(Error::Usage(format!("{path} is a file, not a folder")));
        }
        Ok(n)
    }

    /// The incoming shares, or none when this build cannot list them yet.
    async fn incoming_or_none(&self) -> Result<Vec<crate::shares::IncomingShare>> {
        match self.incoming().await {
            Ok(v) => Ok(v),
            Err(Error::Unimplemented(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Lists a folder (or describes a file).
    ///
    /// # Errors
    /// As [`Client::resolve`].
    pub async fn ls(&self, path: &RemotePath) -> Result<Vec<Entry>> {
        let folder_entry = |name: &str| Entry {
            name: name.to_owned(),
            kind: "folder",
            size: 0,
            mtime: 0,
            content_digest: None,
        };
        match self.resolve(path).await? {
            Resolved::Node(n) if n.is_folder() => {
                let mut out: Vec<Entry> = self
                    .children(&n)
                    .await?
                    .iter()
                    .map(RemoteNode::entry)
                    .collect();
                if path.is_root() && !self.incoming_or_none().await?.is_empty() {
                    out.push(folder_entry(SHARED_DIR));
                    out.sort_by(|a, b| a.name.cmp(&b.name));
                }
                Ok(out)
            }
            Resolved::Node(n) => Ok(vec![n.entry()]),
            Resolved::SharedRoot => {
                let mut owners: Vec<String> = self
                    .incoming_or_none()
                    .await?
                    .into_iter()
                    .map(|s| s.owner)
                    .collect();
                owners.sort();
                owners.dedup();
                Ok(owners.iter().map(|o| folder_entry(o)).collect())
            }
            Resolved::SharedOwner(owner) => {
                let mut out: Vec<Entry> = self
                    .incoming()
                    .await?
                    .into_iter()
                    .filter(|s| s.owner == owner)
                    .map(|s| s.root.entry())
                    .collect();
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            }
        }
    }

    /// Creates the folder `path` (its parent must exist).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name exists.
    pub async fn mkdir(&self, path: &RemotePath) -> Result<()> {
        let (parent_path, name) = path
            .split_last()
            .ok_or_else(|| Error::Usage("/ exists already".into()))?;
        if parent_path.is_root() && name == SHARED_DIR {
            return Err(Error::Usage(format!(
                "/{SHARED_DIR} is reserved for folders shared with you"
            )));
        }
        let parent = self.resolve_folder(&parent_path).await?;
        if self.child_named(&parent, name).await?.is_some() {
            return Err(Error::Conflict(format!("{path} already exists")));
        }
        let node = NewNode::generate(&mut OsRng);
        let meta = Metadata::folder(name.to_owned(), now())?;
        let sealed = SealedMetadata {
            revision: 1,
            sealed: metadata::seal_metadata(&node.node_key, &node.node_id, 1, &meta, &mut OsRng),
        };
        let (_, signed) = tree::create_folder(
            self.signing()?,
            &parent.folder_key(),
            &node,
            sealed,
            now(),
            &mut OsRng,
        )?;
        let w: api::NodeWritten = self
            .http()
            .post(
                "/v1/nodes",
                Some(self.bearer()?),
                &api::NodeCreateRequest {
                    signed_node: ByteBuf::from(encode(&signed)),
                },
                Retry::Idempotent,
            )
            .await
            .map_err(|e| write_problem(e, path))?;
        if w.node_id != node.node_id {
            return Err(Error::integrity("the server created another node"));
        }
        Ok(())
    }

    /// Moves or renames `src` to `dst` (into `dst` when it is a folder). Returns the new path.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the target name exists.
    pub async fn mv(&self, src: &RemotePath, dst: &RemotePath) -> Result<RemotePath> {
        let (src_parent_path, _) = src
            .split_last()
            .ok_or_else(|| Error::Usage("/ cannot be moved".into()))?;
        let src_parent = self.resolve_folder(&src_parent_path).await?;
        let node = self
            .walk(
                src_parent.clone(),
                &src.names()[src.names().len() - 1..],
                &src.to_string(),
            )
            .await?;
        // Where to: into an existing folder, or to a new name in an existing folder.
        let (new_parent, new_name, new_path) = match self.resolve(dst).await {
            Ok(Resolved::Node(d)) if d.is_folder() => {
                let p = dst.join(node.name())?;
                let name = node.name().to_owned();
                (*d, name, p)
            }
            Ok(Resolved::Node(_)) => {
                return Err(Error::Conflict(format!("{dst} exists; remove it first")))
            }
            Ok(_) => return Err(Error::Usage(format!("{dst} is a virtual folder of shares"))),
            Err(Error::NotFound(_)) => {
                let (pp, name) = dst
                    .split_last()
                    .ok_or_else(|| Error::Usage("bad destination".into()))?;
                (
                    self.resolve_folder(&pp).await?,
                    name.to_owned(),
                    dst.clone(),
                )
            }
            Err(e) => return Err(e),
        };
        if new_parent.id == node.id {
            return Err(Error::Usage(format!("{src} cannot be moved into itself")));
        }
        if self.child_named(&new_parent, &new_name).await?.is_some() {
            return Err(Error::Conflict(format!("{new_path} already exists")));
        }
        let current = self.refresh(&node, Some(&src_parent)).await?;
        let signing = self.signing()?;
        let mut record = current.record.clone();
        if new_parent.id != src_parent.id {
            let (r, _) = tree::move_node(
                signing,
                &record,
                &current.key,
                &new_parent.folder_key(),
                now(),
                &mut OsRng,
            )?;
            record = r;
        }
        let signed = if new_name != current.name() || record == current.record {
            let m = &current.metadata;
            let meta = Metadata::new(
                new_name.clone(),
                m.size(),
                m.mtime(),
                m.media_type().map(str::to_owned),
                m.content_digest().copied(),
            )?;
            let rev = record.metadata_revision + 1;
            let sealed = SealedMetadata {
                revision: rev,
                sealed: metadata::seal_metadata(&current.key, &current.id, rev, &meta, &mut OsRng),
            };
            tree::update_metadata(signing, &record, sealed, now())?.1
        } else {
            record.sign(signing)?
        };
        let _: api::NodeWritten = self
            .http()
            .put(
                &format!("/v1/nodes/{}", current.id),
                Some(self.bearer()?),
                &api::NodeUpdateRequest {
                    expected_revision: current.revision,
                    signed_node: ByteBuf::from(encode(&signed)),
                },
            )
            .await
            .map_err(|e| write_problem(e, src))?;
        Ok(new_path)
    }

    /// Removes a file or a folder with everything below it.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn rm(&self, path: &RemotePath) -> Result<()> {
        let (parent_path, name) = path
            .split_last()
            .ok_or_else(|| Error::Usage("/ cannot be removed".into()))?;
        let parent = self.resolve_folder(&parent_path).await?;
        let node = self
            .child_named(&parent, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{path}: no such file or folder")))?;
        let current = self.refresh(&node, Some(&parent)).await?;
        let _: api::NodeDeleted = self
            .http()
            .delete(
                &format!("/v1/nodes/{}", current.id),
                Some(self.bearer()?),
                &api::NodeDeleteRequest {
                    expected_revision: current.revision,
                },
            )
            .await
            .map_err(|e| write_problem(e, path))?;
        Ok(())
    }

    /// Where `put` writes.
    async fn put_target(&self, local: &Path, remote: &RemotePath) -> Result<PutTarget> {
        let local_name = || -> Result<String> {
            let n = local.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Error::Usage(format!("{} has no usable file name", local.display()))
            })?;
            metadata::validate_name(n)
                .map_err(|e| Error::Usage(format!("{n:?} cannot be a remote name: {e}")))?;
            Ok(n.to_owned())
        };
        let into = |folder: RemoteNode, name: String| async move {
            let existing = self.child_named(&folder, &name).await?;
            if existing.as_ref().is_some_and(RemoteNode::is_folder) {
                return Err(Error::Conflict(format!(
                    "a folder named {name:?} is in the way"
                )));
            }
            Ok(PutTarget {
                parent: folder,
                name,
                existing,
            })
        };
        match self.resolve(remote).await {
            Ok(Resolved::Node(n)) if n.is_folder() => into(*n, local_name()?).await,
            Ok(Resolved::Node(_)) | Err(Error::NotFound(_)) => {
                let (pp, name) = remote
                    .split_last()
                    .ok_or_else(|| Error::Usage("bad remote path".into()))?;
                into(self.resolve_folder(&pp).await?, name.to_owned()).await
            }
            Ok(_) => Err(Error::Usage(format!(
                "{remote} is a virtual folder of shares; put into a folder below it"
            ))),
            Err(e) => Err(e),
        }
    }

    /// After parts failed with a broken connection: asks the server about the upload once,
    /// with a request that has no body. A server refuses a part whose session has ended (`401`)
    /// before reading its body, and closes the connection (spec §11.4.1 step 4), so that
    /// answer can only be seen this way. Returns the error the answer explains, if any.
    async fn why_parts_failed(&self, upload_id: &UploadId, bearer: &Bearer) -> Option<Error> {
        let probe: Result<api::UploadStatus> = self
            .http()
            .get(&format!("/v1/uploads/{upload_id}"), Some(bearer))
            .await;
        match probe {
            Err(e @ Error::Problem(_)) => Some(part_problem(e)),
            _ => None,
        }
    }

    /// Creates an upload for a new attempt, whose file key no part was sent under yet
    /// (§11.9.2). Only an upload this request created (`201`) is used: the server answers an
    /// identical creation with a matching live upload (`200`), which may be an earlier
    /// attempt's whose state is lost, or another attempt's running at the same moment, with
    /// parts under another file key; finishing it with this attempt's would make the file
    /// undecryptable. Such an upload is aborted (§11.9.6) and created anew (when it was this
    /// attempt's own, its creation retried after a lost response, that costs nothing).
    async fn create_fresh_upload(
        &self,
        bearer: &Bearer,
        create: &api::UploadCreateRequest,
        remote: &RemotePath,
    ) -> Result<api::UploadStatus> {
        for _ in 0..2 {
            let resp = self
                .http()
                .send(
                    Method::POST,
                    "/v1/uploads",
                    Some(bearer),
                    Payload::Cbor(api::Body::to_bytes(create)),
                    HeaderMap::new(),
                    Retry::Idempotent,
                )
                .await
                .map_err(|e| write_problem(e, remote))?;
            let created = resp.status() == reqwest::StatusCode::CREATED;
            let status: api::UploadStatus = decode_body(resp).await?;
            if created {
                if status.present.iter().any(|&b| b != 0) {
                    return Err(Error::integrity("a new upload with parts present"));
                }
                return Ok(status);
            }
            match self
                .http()
                .no_content(
                    Method::DELETE,
                    &format!("/v1/uploads/{}", status.upload_id.to_b64()),
                    Some(bearer),
                    Payload::Empty,
                    Retry::Idempotent,
                )
                .await
            {
                Ok(()) | Err(Error::Problem(_) | Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "another upload to {remote} is in progress; wait for it to finish or lapse"
        )))
    }

    /// Uploads the local file `local` to `remote` (a folder: into it under the local name; an
    /// existing file: its content is replaced). Parts are encrypted in parallel; the upload
    /// state is persisted, so calling `put` again after an interruption resumes.
    ///
    /// # Errors
    /// [`Error::Io`] for the local file; [`Error::Conflict`] when a folder is in the way or the
    /// file changed since an interrupted upload of it.
    pub async fn put(
        &self,
        local: &Path,
        remote: &RemotePath,
        progress: &dyn Progress,
    ) -> Result<PutOutcome> {
        let meta = std::fs::metadata(local)
            .map_err(|e| Error::io(format!("reading {}", local.display()), e))?;
        if !meta.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a regular file",
                local.display()
            )));
        }
        let size = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        let target = self.put_target(local, remote).await?;
        let canonical = std::fs::canonicalize(local)
            .map_err(|e| Error::io(format!("resolving {}", local.display()), e))?;
        let key = UploadKey {
            local_path: canonical.to_string_lossy().into_owned(),
            size,
            mtime_ns: mtime.as_nanos(),
            parent: target.parent.id.to_b64(),
            name: target.name.clone(),
        };
        let bearer = self.bearer()?.clone();
        let total = content::ciphertext_len(size)?;
        // Resume, or start.
        let mut resumed = false;
        let mut state = None;
        // State older than any upload the server keeps (best effort: a failure here must not
        // stop this upload).
        if let Some(cut) = std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(
            api::UPLOAD_MAX_TTL_SECS + 86_400,
        )) {
            let _ = self.config().prune_uploads(cut);
        }
        if let Some(st) = self.config().load_upload(&key)? {
            let status: Result<api::UploadStatus> = self
                .http()
                .get(&format!("/v1/uploads/{}", st.upload_id()?), Some(&bearer))
                .await;
            if st.format != UPLOAD_STATE_FORMAT {
                // State of an older client, whose part checks this one cannot compare: never
                // resumed (that could send changed plaintext under used nonces). The upload
                // is aborted and a new one, under a new file key, starts below.
                if status.is_ok() {
                    let _ = self
                        .http()
                        .no_content(
                            Method::DELETE,
                            &format!("/v1/uploads/{}", st.upload_id()?),
                            Some(&bearer),
                            Payload::Empty,
                            Retry::Idempotent,
                        )
                        .await;
                }
                self.config().delete_upload(&key)?;
            } else {
                match status {
                    Ok(s) if s.total_length == st.total_length && s.part_size == st.part_size => {
                        resumed = true;
                        state = Some((st, s));
                    }
                    Ok(_) | Err(Error::Problem(_)) => self.config().delete_upload(&key)?,
                    Err(e) => return Err(e),
                }
            }
        }
        let (state, status) = match state {
            Some(x) => x,
            None => {
                let file_key = SecretKey::generate(&mut OsRng);
                let salt = content::ContentSealer::new_salt(&mut OsRng);
                let (node_id, node_key, content_revision) = match &target.existing {
                    Some(n) => {
                        let rev = n
                            .record
                            .file
                            .as_ref()
                            .map(|f| f.content_revision)
                            .unwrap_or(0);
                        (n.id, n.key.clone(), rev + 1)
                    }
                    None => {
                        let n = NewNode::generate(&mut OsRng);
                        (n.node_id, n.node_key, 1)
                    }
                };
                let part_size = part_size_for(total);
                let st = UploadState {
                    format: UPLOAD_STATE_FORMAT,
                    key: key.clone(),
                    upload_id: String::new(),
                    node_id: node_id.to_b64(),
                    node_key: hex::encode(node_key.expose()),
                    file_key: hex::encode(file_key.expose()),
                    salt: hex::encode(salt),
                    part_size,
                    total_length: total,
                    content_revision,
                    replaces_existing: target.existing.is_some(),
                    sent: BTreeMap::new(),
                };
                let create = api::UploadCreateRequest {
                    node_id,
                    parent_id: target.parent.id,
                    content_revision,
                    total_length: total,
                    part_size,
                };
                let status = self.create_fresh_upload(&bearer, &create, remote).await?;
                let mut st = st;
                st.upload_id = status.upload_id.to_b64();
                self.config().save_upload(&st)?;
                (st, status)
            }
        };
        let upload_id = state.upload_id()?;
        let file_key = UploadState::secret(&state.file_key)?;
        let salt: [u8; content::SALT_LEN] = hex::decode(&state.salt)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::State("upload salt".into()))?;
        let sealer = Arc::new(content::ContentSealer::new(&file_key, &salt, size)?);
        let part_count = api::upload::part_count(total, state.part_size)?;
        let present = api::upload::PartBitmap::from_bytes(&status.present, part_count)
            .map_err(|_| Error::integrity("malformed upload status"))?;
        let missing: Vec<u64> = present.missing();
        // Progress in ciphertext bytes (the plaintext plus 0.02 %), counting stored parts as done.
        progress.set_total(total);
        for i in 0..part_count {
            if present.is_set(i) {
                progress.advance(api::upload::part_span(total, state.part_size, i)?.1);
            }
        }

        // Reader: every part in order (hashing the whole file for its metadata), handing the
        // missing ones to the workers.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<PartJob>>(1);
        let path = local.to_path_buf();
        let part_size = state.part_size;
        let missing_set: std::collections::BTreeSet<u64> = missing.iter().copied().collect();
        // Parts stored by an earlier run whose check was recorded: checked again, so a file
        // edited in place (same size and time) is never finished with mixed content.
        let check: BTreeMap<u64, String> = state
            .sent
            .iter()
            .filter(|(i, _)| !missing_set.contains(i))
            .map(|(i, d)| (*i, d.clone()))
            .collect();
        let pool = BufferPool::default();
        let reader_pool = pool.clone();
        let reader_sealer = Arc::clone(&sealer);
        let reader = tokio::task::spawn_blocking(move || -> Result<[u8; 32]> {
            read_parts(
                &path,
                ReadPlan {
                    size,
                    total,
                    part_size,
                    part_count,
                    missing: &missing_set,
                    check: &check,
                    sealer: &reader_sealer,
                    pool: &reader_pool,
                },
                &tx,
            )
        });
        let journal = self.config().sent_journal(&state)?;
        let state = Arc::new(tokio::sync::Mutex::new(state));
        let sent_now = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|job| (job, rx))
        });
        let work = stream
            .map(|job| {
                let journal = &journal;
                let sealer = Arc::clone(&sealer);
                let state = Arc::clone(&state);
                let bearer = bearer.clone();
                let sent_now = Arc::clone(&sent_now);
                let pool = pool.clone();
                async move {
                    let job = job?;
                    let index = job.index;
                    let expected_len = job.span.1;
                    let (part, check) =
                        tokio::task::spawn_blocking(move || seal_part(&sealer, job, &pool))
                            .await
                            .map_err(|e| Error::State(format!("encryption task: {e}")))??;
                    {
                        // Never send changed plaintext under the same nonces (§11.9.1): the
                        // check is recorded durably before the part is first sent and compared
                        // before it is sent again.
                        let mut st = state.lock().await;
                        match st.sent.get(&index) {
                            Some(d) if *d != check => {
                                return Err(Error::Conflict(
                                    "the local file changed since the interrupted upload".into(),
                                ))
                            }
                            Some(_) => {}
                            None => {
                                let journal = journal.clone();
                                let line = check.clone();
                                tokio::task::spawn_blocking(move || journal.record(index, &line))
                                    .await
                                    .map_err(|e| {
                                        Error::State(format!("upload state task: {e}"))
                                    })??;
                                st.sent.insert(index, check);
                            }
                        }
                    }
                    if part.len() as u64 != expected_len {
                        return Err(Error::Internal("part length"));
                    }
                    let stored: api::PartStored = self
                        .http()
                        .put_octets(
                            &format!("/v1/uploads/{upload_id}/parts/{index}"),
                            Some(&bearer),
                            part,
                        )
                        .await
                        .map_err(part_problem)?;
                    if stored.part_index != index || stored.length != expected_len {
                        return Err(Error::integrity("the server stored another part"));
                    }
                    sent_now.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    progress.advance(expected_len);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(upload_concurrency())
            .try_for_each(|()| async { Ok(()) })
            .await;
        let digest = reader
            .await
            .map_err(|e| Error::State(format!("reader task: {e}")))?;
        let failed = match (&work, &digest) {
            (Err(e @ Error::Conflict(_)), _) | (_, Err(e @ Error::Conflict(_))) => Some(e),
            (Err(e), _) => Some(e),
            (Ok(()), Err(e)) => Some(e),
            (Ok(()), Ok(_)) => None,
        };
        if let Some(e) = failed {
            if matches!(e, Error::Conflict(_)) {
                // The file changed: this upload can never finish safely.
                let _ = self
                    .http()
                    .no_content(
                        Method::DELETE,
                        &format!("/v1/uploads/{upload_id}"),
                        Some(&bearer),
                        Payload::Empty,
                        Retry::Idempotent,
                    )
                    .await;
                self.config().delete_upload(&key)?;
                return Err(Error::Conflict(
                    "the local file changed during an interrupted upload; the old upload was \
                     discarded, run `coffer put` again"
                        .into(),
                ));
            }
            return Err(match (work, digest) {
                (Err(Error::Transport(e)), _) => self
                    .why_parts_failed(&upload_id, &bearer)
                    .await
                    .unwrap_or(Error::Transport(e)),
                (Err(e), _) | (Ok(()), Err(e)) => e,
                (Ok(()), Ok(_)) => Error::State("upload failed".into()),
            });
        }
        let digest = digest?;

        // Finalize: the record names the content and carries the metadata.
        let state = Arc::try_unwrap(state)
            .map_err(|_| Error::State("upload state still shared".into()))?
            .into_inner();
        let node_id = state.node_id()?;
        let node_key = UploadState::secret(&state.node_key)?;
        let mtime_s = mtime.as_secs();
        let fc = FileContent {
            file_key: file_key.clone(),
            content_revision: state.content_revision,
            ciphertext_length: total,
        };
        let (expected_revision, signed) = match &target.existing {
            Some(existing) if state.replaces_existing => {
                let current = self.refresh(existing, Some(&target.parent)).await?;
                let (rec, _) = tree::update_content(
                    self.signing()?,
                    &current.record,
                    &node_key,
                    &fc,
                    now(),
                    &mut OsRng,
                )?;
                let meta = Metadata::new(target.name.clone(), size, mtime_s, None, Some(digest))?;
                let rev = rec.metadata_revision + 1;
                let sealed = SealedMetadata {
                    revision: rev,
                    sealed: metadata::seal_metadata(&node_key, &node_id, rev, &meta, &mut OsRng),
                };
                let (_, signed) = tree::update_metadata(self.signing()?, &rec, sealed, now())?;
                (Some(current.revision), signed)
            }
            _ => {
                let meta = Metadata::new(target.name.clone(), size, mtime_s, None, Some(digest))?;
                let sealed = SealedMetadata {
                    revision: 1,
                    sealed: metadata::seal_metadata(&node_key, &node_id, 1, &meta, &mut OsRng),
                };
                let node = NewNode { node_id, node_key };
                let (_, signed) = tree::create_file(
                    self.signing()?,
                    &target.parent.folder_key(),
                    &node,
                    sealed,
                    &fc,
                    now(),
                    &mut OsRng,
                )?;
                (None, signed)
            }
        };
        let w: api::NodeWritten = self
            .http()
            .post(
                &format!("/v1/uploads/{upload_id}/finalize"),
                Some(&bearer),
                &api::UploadFinalizeRequest {
                    expected_revision,
                    signed_node: ByteBuf::from(encode(&signed)),
                },
                Retry::Idempotent,
            )
            .await
            .map_err(|e| write_problem(e, remote))?;
        if w.node_id != node_id {
            return Err(Error::integrity("the server finalized another node"));
        }
        self.config().delete_upload(&key)?;
        let shown = match remote.split_last() {
            Some((_, last)) if last == target.name => remote.to_string(),
            _ => remote.join(&target.name)?.to_string(),
        };
        Ok(PutOutcome {
            path: shown,
            size,
            parts_sent: sent_now.load(std::sync::atomic::Ordering::Relaxed),
            parts_total: part_count,
            resumed,
        })
    }

    /// Downloads `remote` to `local` (a directory: into it under the remote name; `-`: standard
    /// output), the plaintext bytes `range` (`first..end`, `None` end: to the end of the file)
    /// only when given. Verified as it streams; written to a temporary file renamed into place
    /// only on success. Returns the bytes written and the local path.
    ///
    /// # Errors
    /// [`Error::Integrity`] when the content fails to authenticate (nothing is written).
    pub async fn get(
        &self,
        remote: &RemotePath,
        local: &Path,
        range: Option<(u64, Option<u64>)>,
        progress: &dyn Progress,
    ) -> Result<(u64, PathBuf)> {
        let node = self.resolve_node(remote).await?;
        if node.is_folder() {
            return Err(Error::Usage(format!("{remote} is a folder")));
        }
        let dest = if local.is_dir() {
            local.join(node.name())
        } else {
            local.to_path_buf()
        };
        let file_key = node.record.open_file_key(&node.key)?;
        let file = node
            .record
            .file
            .as_ref()
            .ok_or_else(|| Error::integrity("file record without content"))?;
        let source = ContentSource {
            http: self.http(),
            path: format!("/v1/nodes/{}/content", node.id),
            bearer: Some(self.bearer()?),
            file_key: &file_key,
            ciphertext_length: file.ciphertext_length,
            content_revision: Some(file.content_revision),
            content_digest: node.metadata.content_digest().copied(),
        };
        let written = download_to(&source, &dest, range, progress).await?;
        Ok((written, dest))
    }
}

/// Where a download reads ciphertext from: a node's content, or a link's.
#[derive(Debug)]
pub struct ContentSource<'a> {
    /// The transport.
    pub http: &'a Http,
    /// The content endpoint's path (e.g. `/v1/nodes/{id}/content`).
    pub path: String,
    /// The bearer credential, if any.
    pub bearer: Option<&'a Bearer>,
    /// The file key (from the verified record or link).
    pub file_key: &'a SecretKey,
    /// The ciphertext length the verified record names.
    pub ciphertext_length: u64,
    /// The content revision the verified record names (checked against the `ETag`), if known.
    pub content_revision: Option<u64>,
    /// The content digest of the whole plaintext (spec §2.3), from the verified metadata
    /// (§5.6): checked after a whole-file download (a range cannot be checked), before the file
    /// is renamed into place.
    pub content_digest: Option<[u8; 32]>,
}

/// Downloads and decrypts `source` into `dest` (`-`: standard output): the whole file, or the
/// plaintext bytes `range`. Every chunk authenticates before its plaintext is written; a file is
/// written to a temporary file in `dest`'s directory and renamed into place only on success.
/// Returns the plaintext bytes written.
///
/// # Errors
/// [`Error::Integrity`] for content that does not authenticate or does not match the record;
/// [`Error::Usage`] for a range outside the file; [`Error::Io`].
pub async fn download_to(
    source: &ContentSource<'_>,
    dest: &Path,
    range: Option<(u64, Option<u64>)>,
    progress: &dyn Progress,
) -> Result<u64> {
    let size = content::plaintext_len(source.ciphertext_length)
        .map_err(|_| Error::integrity("impossible ciphertext length in the record"))?;
    let span = match range {
        None => None,
        Some((first, end)) => {
            let end = end.unwrap_or(size).min(size);
            if first >= end {
                return Err(Error::Usage(format!(
                    "range starts at {first} but the file has {size} bytes"
                )));
            }
            Some(first..end)
        }
    };
    let to_stdout = dest.as_os_str() == "-";
    let mut sink = if to_stdout {
        Sink {
            out: Some(Out::Stdout(std::io::stdout())),
            tmp: None,
        }
    } else {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".coffer-download-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(format!("creating a temporary file in {}", dir.display()), e))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("opening the temporary file", e))?;
        Sink {
            out: Some(Out::File(file)),
            tmp: Some(tmp),
        }
    };
    progress.set_total(span.as_ref().map_or(size, |r| r.end - r.start));
    let written = match &span {
        None => stream_whole(source, &mut sink, progress).await?,
        Some(r) => stream_range(source, r.clone(), &mut sink, progress).await?,
    };
    sink.commit(dest).await?;
    Ok(written)
}

/// The writer plaintext goes to, used on blocking threads (one write per batch of chunks).
enum Out {
    Stdout(std::io::Stdout),
    File(std::fs::File),
}

impl Out {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write as _;
        match self {
            Out::Stdout(s) => s.lock().write_all(bytes),
            Out::File(f) => f.write_all(bytes),
        }
        .map_err(|e| Error::io("writing the download", e))
    }

    /// Writes the plaintext of decrypted chunks left in their ciphertext layout (see
    /// [`content::ContentOpener::open_chunks_in_layout`]), skipping the tags: one vectored
    /// write per [`DOWNLOAD_WRITE_CHUNKS`] chunks.
    fn write_layout(&mut self, chunks: &[u8]) -> Result<()> {
        use std::io::{IoSlice, Write as _};
        for group in chunks.chunks(DOWNLOAD_WRITE_CHUNKS * content::ENCRYPTED_CHUNK_LEN) {
            let mut slices: Vec<IoSlice<'_>> = layout_bodies(group)
                .filter(|b| !b.is_empty())
                .map(IoSlice::new)
                .collect();
            let mut left = &mut slices[..];
            while !left.is_empty() {
                let n = match self {
                    Out::Stdout(s) => s.lock().write_vectored(left),
                    Out::File(f) => f.write_vectored(left),
                };
                match n {
                    Ok(0) => {
                        return Err(Error::io(
                            "writing the download",
                            std::io::ErrorKind::WriteZero.into(),
                        ))
                    }
                    Ok(n) => IoSlice::advance_slices(&mut left, n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("writing the download", e)),
                }
            }
        }
        Ok(())
    }
}

/// Where plaintext goes: standard output, or a temporary file renamed into place on success.
struct Sink {
    /// The writer; `None` only while a blocking write holds it (or after a failed one).
    out: Option<Out>,
    /// The temporary file of a file download.
    tmp: Option<tempfile::NamedTempFile>,
}

impl Sink {
    /// The writer, for a blocking write.
    fn take(&mut self) -> Result<Out> {
        self.out
            .take()
            .ok_or(Error::Internal("the download's writer was lost"))
    }

    /// Writes `bytes` (on a blocking thread).
    async fn write(&mut self, bytes: Vec<u8>) -> Result<()> {
        let mut out = self.take()?;
        let bytes = zeroize::Zeroizing::new(bytes);
        let out = tokio::task::spawn_blocking(move || out.write_all(&bytes).map(|()| out))
            .await
            .map_err(|e| Error::State(format!("writing task: {e}")))??;
        self.out = Some(out);
        Ok(())
    }

    /// Flushes; for a file: fsync, rename into place, fsync the directory.
    async fn commit(mut self, dest: &Path) -> Result<()> {
        let out = self.take()?;
        let tmp = self.tmp.take();
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<()> {
            use std::io::Write as _;
            match (out, tmp) {
                (Out::File(f), Some(tmp)) => {
                    f.sync_all()
                        .map_err(|e| Error::io("syncing the download", e))?;
                    drop(f);
                    tmp.persist(&dest).map_err(|e| {
                        Error::io(
                            format!("renaming the download to {}", dest.display()),
                            e.error,
                        )
                    })?;
                    if let Some(dir) = dest.parent() {
                        crate::state::sync_dir(if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir
                        });
                    }
                    Ok(())
                }
                (Out::Stdout(s), _) => s.lock().flush().map_err(|e| Error::io("writing stdout", e)),
                (Out::File(_), None) => Err(Error::Internal("download without its temporary file")),
            }
        })
        .await
        .map_err(|e| Error::State(format!("writing task: {e}")))?
    }
}

/// Checks a content response: status, length, and the content revision of its `ETag`.
fn check_content_response(
    resp: &reqwest::Response,
    source: &ContentSource<'_>,
    expect_status: u16,
    expect_len: u64,
) -> Result<Option<String>> {
    if resp.status().as_u16() != expect_status {
        return Err(Error::integrity(format!(
            "content answered with HTTP {} instead of {expect_status}",
            resp.status().as_u16()
        )));
    }
    if let Some(len) = resp.content_length() {
        if len != expect_len {
            return Err(Error::integrity(
                "the content length differs from the signed record's",
            ));
        }
    }
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let (Some(rev), Some(tag)) = (source.content_revision, etag.as_deref()) {
        if tag != format!("\"c{rev}\"") {
            return Err(Error::Conflict(
                "the file changed while reading it; try again".into(),
            ));
        }
    }
    Ok(etag)
}

/// Encrypted chunks per batch of a whole-file download (2 MiB): each batch is authenticated and
/// decrypted in place on a blocking thread, then hashed and written by the download's writer
/// thread. Each batch costs thread hand-offs: against batches of 8 chunks, 32 cut a 1 GiB get's
/// context switches from about 16 900 to 12 800 and its client CPU by 8-19% (three alternating
/// pairs on tmpfs); 64 changed nothing more.
const DOWNLOAD_BATCH_CHUNKS: usize = 32;

/// Chunks per write of a download (512 KiB of plaintext, one vectored `write`). Not more: on
/// ext4 in a VM, 1 MiB writes measured 1.7 times the kernel CPU of 512 KiB or 256 KiB ones
/// (`dd bs=1M` vs `bs=512K`, 1 GiB, `conv=fsync`), 2 MiB writes 4 times.
const DOWNLOAD_WRITE_CHUNKS: usize = 8;

/// Decrypted batches queued for the writer thread.
const WRITER_QUEUE: usize = 2;

/// Batches of a whole-file download decrypted at once, each on its own blocking thread.
fn decrypt_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(1, 4)
}

/// A download buffer: ciphertext in, plaintext after decryption in place.
type DownloadBuf = zeroize::Zeroizing<Vec<u8>>;

/// A batch being authenticated and decrypted.
type Decrypting = tokio::task::JoinHandle<Result<DownloadBuf>>;

/// Authenticates and decrypts the chunks `first_chunk..` in `buf` where they lie, on a
/// blocking thread (the plaintext stays in the ciphertext layout, for
/// [`Out::write_layout`]). A batch reaches the writer only if all of it authenticates.
fn decrypt_batch(
    opener: &Arc<content::ContentOpener>,
    mut buf: DownloadBuf,
    first_chunk: u64,
) -> Decrypting {
    let opener = Arc::clone(opener);
    tokio::task::spawn_blocking(move || {
        opener
            .open_chunks_in_layout(first_chunk, &mut buf)
            .map_err(|e| Error::integrity(format!("content does not authenticate: {e}")))?;
        Ok(buf)
    })
}

/// The writer thread of a whole-file download: hashes and writes decrypted batches in order,
/// and hands each buffer back for reuse. Hashing here, not with decryption, keeps the content
/// digest in parallel with the decryption of later batches.
struct OrderedWriter {
    queue: tokio::sync::mpsc::Sender<DownloadBuf>,
    spare: std::sync::mpsc::Receiver<DownloadBuf>,
    task: tokio::task::JoinHandle<Result<(Out, ContentDigest, u64)>>,
}

impl OrderedWriter {
    /// Starts the writer thread over `out`.
    fn start(mut out: Out) -> Self {
        let (queue, mut batches) = tokio::sync::mpsc::channel::<DownloadBuf>(WRITER_QUEUE);
        let (give_back, spare) = std::sync::mpsc::channel();
        let task = tokio::task::spawn_blocking(move || {
            let mut hash = ContentDigest::new();
            let mut written = 0u64;
            while let Some(mut buf) = batches.blocking_recv() {
                for body in layout_bodies(&buf) {
                    hash.update(body);
                    written += body.len() as u64;
                }
                out.write_layout(&buf)?;
                buf.clear();
                // The receiver is gone once the download has stopped reading: nothing to reuse.
                let _ = give_back.send(buf);
            }
            Ok((out, hash, written))
        });
        Self { queue, spare, task }
    }

    /// A buffer the writer is done with, if any.
    fn spare(&self) -> Option<DownloadBuf> {
        self.spare.try_recv().ok()
    }

    /// Queues a decrypted batch. If the writer has stopped, its error.
    async fn write(&mut self, buf: DownloadBuf) -> Result<()> {
        if self.queue.send(buf).await.is_ok() {
            return Ok(());
        }
        // The writer only stops early on an error (the caller stops at the one returned here,
        // so the task is awaited once): take it.
        match (&mut self.task).await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) => Err(Error::Internal("the download's writer stopped")),
            Err(e) => Err(Error::State(format!("writing task: {e}"))),
        }
    }

    /// Waits for every queued batch to be written; the writer, the plaintext's hash and the
    /// number of bytes written.
    async fn finish(self) -> Result<(Out, ContentDigest, u64)> {
        drop(self.queue);
        self.task
            .await
            .map_err(|e| Error::State(format!("writing task: {e}")))?
    }
}

/// The whole file: one request, decrypted as it streams. The ciphertext is gathered into batches
/// of whole chunks; up to [`decrypt_concurrency`] batches are authenticated and decrypted in
/// place at once on blocking threads while the next ones arrive, and an [`OrderedWriter`] hashes
/// and writes them in order (buffers are reused). The final chunk is the one the signed length
/// names, the length received must be exactly that, and the plaintext's digest (§2.3) must be the
/// metadata's `content_digest` (§5.6) when it names one.
async fn stream_whole(
    source: &ContentSource<'_>,
    sink: &mut Sink,
    progress: &dyn Progress,
) -> Result<u64> {
    const H: usize = content::HEADER_LEN;
    let batch_len = DOWNLOAD_BATCH_CHUNKS * content::ENCRYPTED_CHUNK_LEN;
    let mut resp = source
        .http
        .get_octets(&source.path, source.bearer, None, None)
        .await?;
    check_content_response(&resp, source, 200, source.ciphertext_length)?;
    let mut header = Vec::with_capacity(H);
    let mut opener: Option<Arc<content::ContentOpener>> = None;
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(batch_len));
    let mut decrypting = std::collections::VecDeque::<Decrypting>::new();
    let concurrency = decrypt_concurrency();
    let mut writer = OrderedWriter::start(sink.take()?);
    let mut next_chunk = 0u64;
    let mut received = 0u64;
    while let Some(piece) = resp.chunk().await? {
        received += piece.len() as u64;
        if received > source.ciphertext_length {
            return Err(Error::integrity(
                "more content than the signed record names",
            ));
        }
        let mut rest = &piece[..];
        if opener.is_none() {
            let take = (H - header.len()).min(rest.len());
            header.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if header.len() < H {
                continue;
            }
            opener = Some(Arc::new(
                content::ContentOpener::new(source.file_key, &header, source.ciphertext_length)
                    .map_err(|e| Error::integrity(format!("content does not authenticate: {e}")))?,
            ));
        }
        let Some(op) = &opener else { continue };
        while !rest.is_empty() {
            let take = (batch_len - buf.len()).min(rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buf.len() == batch_len {
                if decrypting.len() >= concurrency {
                    if let Some(oldest) = decrypting.pop_front() {
                        hand_to_writer(oldest, &mut writer, progress).await?;
                    }
                }
                let spare = writer
                    .spare()
                    .unwrap_or_else(|| zeroize::Zeroizing::new(Vec::with_capacity(batch_len)));
                let full = std::mem::replace(&mut buf, spare);
                decrypting.push_back(decrypt_batch(op, full, next_chunk));
                next_chunk += DOWNLOAD_BATCH_CHUNKS as u64;
            }
        }
    }
    if received != source.ciphertext_length {
        return Err(Error::integrity(
            "content shorter than the signed record names",
        ));
    }
    let op = opener.ok_or_else(|| Error::integrity("content without a header"))?;
    if !buf.is_empty() {
        decrypting.push_back(decrypt_batch(&op, buf, next_chunk));
    }
    while let Some(oldest) = decrypting.pop_front() {
        hand_to_writer(oldest, &mut writer, progress).await?;
    }
    let (out, hash, written) = writer.finish().await?;
    sink.out = Some(out);
    if written != op.plaintext_len() {
        return Err(Error::integrity(
            "content shorter than the signed record names",
        ));
    }
    let digest = hash.finalize();
    if source.content_digest.is_some_and(|d| d != digest) {
        return Err(Error::integrity(
            "the content does not match its authenticated metadata (content digest)",
        ));
    }
    Ok(written)
}

/// Waits for the oldest batch being decrypted and queues it for the writer.
async fn hand_to_writer(
    batch: Decrypting,
    writer: &mut OrderedWriter,
    progress: &dyn Progress,
) -> Result<()> {
    let buf = batch
        .await
        .map_err(|e| Error::State(format!("decryption task: {e}")))??;
    let n: u64 = layout_bodies(&buf).map(|b| b.len() as u64).sum();
    writer.write(buf).await?;
    progress.advance(n);
    Ok(())
}

/// Reads a whole (small) response body of exactly `len` bytes.
async fn read_exact_body(mut resp: reqwest::Response, len: u64) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(c) = resp.chunk().await? {
        if v.len() as u64 + c.len() as u64 > len {
            return Err(Error::integrity("range response longer than asked"));
        }
        v.extend_from_slice(&c);
    }
    if v.len() as u64 != len {
        return Err(Error::integrity("range response shorter than asked"));
    }
    Ok(v)
}

/// A plaintext range: the header, then windows of whole chunks, each verified before use, all
/// pinned to one content revision with `If-Range`.
async fn stream_range(
    source: &ContentSource<'_>,
    range: std::ops::Range<u64>,
    sink: &mut Sink,
    progress: &dyn Progress,
) -> Result<u64> {
    const WINDOW: u64 = 128 * content::CHUNK_LEN as u64;
    let h = content::HEADER_LEN as u64;
    let resp = source
        .http
        .get_octets(&source.path, source.bearer, Some((0, Some(h - 1))), None)
        .await?;
    let etag = check_content_response(&resp, source, 206, h)?;
    let header = read_exact_body(resp, h).await?;
    let mut pos = range.start;
    let mut written = 0u64;
    while pos < range.end {
        let window_end = ((pos / WINDOW) + 1) * WINDOW;
        let end = window_end.min(range.end);
        let ct = content::ciphertext_range(source.ciphertext_length, pos..end)?;
        let resp = source
            .http
            .get_octets(
                &source.path,
                source.bearer,
                Some((ct.start, Some(ct.end - 1))),
                etag.as_deref(),
            )
            .await?;
        check_content_response(&resp, source, 206, ct.end - ct.start)?;
        let chunks = read_exact_body(resp, ct.end - ct.start).await?;
        let plain = content::decrypt_range(
            source.file_key,
            &header,
            source.ciphertext_length,
            pos..end,
            &chunks,
        )
        .map_err(|e| Error::integrity(format!("content does not authenticate: {e}")))?;
        let n = plain.len() as u64;
        sink.write(plain).await?;
        written += n;
        progress.advance(n);
        pos = end;
    }
    Ok(written)
}

/// The shape of a `put` and what its reader must do.
struct ReadPlan<'a> {
    size: u64,
    total: u64,
    part_size: u64,
    part_count: u64,
    /// Parts to send.
    missing: &'a std::collections::BTreeSet<u64>,
    /// Parts already stored whose resume check ([`part_check`]) must still match.
    check: &'a BTreeMap<u64, String>,
    /// The upload's sealer (to recompute the checks of stored parts).
    sealer: &'a content::ContentSealer,
    /// Where part buffers come from.
    pool: &'a BufferPool,
}

/// The plaintext of each chunk in a buffer laid out as ciphertext (each chunk followed by room
/// for its tag).
fn layout_bodies(chunks: &[u8]) -> impl Iterator<Item = &[u8]> {
    let tag = coffer_core::primitives::TAG_LEN;
    chunks
        .chunks(content::ENCRYPTED_CHUNK_LEN)
        .map(move |c| &c[..c.len().saturating_sub(tag)])
}

/// Fills `chunks`, whose length is that of whole encrypted chunks, with plaintext read from
/// `file`, laid out as the ciphertext will be: each chunk at its ciphertext position, followed
/// by room for its tag. [`content::ContentSealer::seal_chunks_in_layout`] then encrypts it
/// where it lies, so the plaintext is never moved (one vectored read per part).
fn read_into_layout(file: &mut impl std::io::Read, chunks: &mut [u8]) -> std::io::Result<()> {
    use std::io::IoSliceMut;
    let tag = coffer_core::primitives::TAG_LEN;
    let mut slices: Vec<IoSliceMut<'_>> = chunks
        .chunks_mut(content::ENCRYPTED_CHUNK_LEN)
        .filter(|c| c.len() > tag)
        .map(|c| {
            let n = c.len() - tag;
            IoSliceMut::new(&mut c[..n])
        })
        .collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        match file.read_vectored(left) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => IoSliceMut::advance_slices(&mut left, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The reader of `put`: reads the file once, in order, hashing all of it, checks the parts an
/// earlier run stored (re-encrypting them locally), and sends the plaintext covering every
/// missing part to the workers.
/// Returns the file's content digest (spec §2.3).
fn read_parts(
    path: &Path,
    plan: ReadPlan<'_>,
    tx: &tokio::sync::mpsc::Sender<Result<PartJob>>,
) -> Result<[u8; 32]> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut hasher = ContentDigest::new();
    let mut hashed = 0u64;
    let mut buf = Vec::new();
    for index in 0..plan.part_count {
        let (a, len) = api::upload::part_span(plan.total, plan.part_size, index)?;
        let (first_chunk, p0, p1) = chunks_for_span(a, a + len, plan.size);
        let send = plan.missing.contains(&index);
        let recorded = plan.check.get(&index);
        if !send && recorded.is_none() {
            // Only hash what has not been hashed yet.
            if p1 > hashed {
                file.seek(SeekFrom::Start(hashed))
                    .map_err(|e| Error::io("reading the file", e))?;
                let mut rest = p1 - hashed;
                buf.resize(1 << 20, 0);
                while rest > 0 {
                    let n = usize::try_from(rest.min(1 << 20)).unwrap_or(1 << 20);
                    file.read_exact(&mut buf[..n])
                        .map_err(|e| Error::io("reading the file (did it shrink?)", e))?;
                    hasher.update(&buf[..n]);
                    rest -= n as u64;
                }
                hashed = p1;
            }
            continue;
        }
        let n = usize::try_from(p1 - p0).map_err(|_| Error::Usage("part too large".into()))?;
        // The chunks with room for their tags: the part is encrypted where it is read.
        let tags = n.div_ceil(content::CHUNK_LEN).max(1) * coffer_core::primitives::TAG_LEN;
        let mut chunks = plan.pool.take(n + tags);
        file.seek(SeekFrom::Start(p0))
            .map_err(|e| Error::io("reading the file", e))?;
        read_into_layout(&mut file, &mut chunks).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::io("reading the file (did it shrink?)", e),
            _ => Error::io("reading the file", e),
        })?;
        if p1 > hashed {
            let mut skip = usize::try_from(hashed.saturating_sub(p0)).unwrap_or(0);
            for body in layout_bodies(&chunks) {
                let from = skip.min(body.len());
                hasher.update(&body[from..]);
                skip -= from;
            }
            hashed = p1;
        }
        if !send {
            // Stored by an earlier run: its plaintext must be unchanged (same check as the
            // one recorded, computed from the part re-encrypted here and never sent).
            if let Some(d) = recorded {
                plan.sealer
                    .seal_chunks_in_layout(first_chunk, &mut chunks)?;
                if part_check(&chunks) != *d {
                    return Err(Error::Conflict(
                        "the local file changed since the interrupted upload".into(),
                    ));
                }
            }
            plan.pool.put(chunks);
            continue;
        }
        let job = PartJob {
            index,
            span: (a, len),
            first_chunk,
            chunks,
        };
        if tx.blocking_send(Ok(job)).is_err() {
            // The workers stopped (an error): they report it.
            return Err(Error::State("upload stopped".into()));
        }
    }
    if hashed != plan.size {
        return Err(Error::State("the file was not read whole".into()));
    }
    Ok(hasher.finalize())
}

/// Maps the problems of a part upload to clear errors.
fn part_problem(e: Error) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::NotFound) => Error::NotFound(
            "the upload ended on the server (aborted by another upload of this file, lapsed, or \
             your write access was removed); run `coffer put` again"
                .into(),
        ),
        _ => session_problem(e),
    }
}

/// Maps a `404` to a clear not-found for `what`.
fn not_found(e: Error, what: &str) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::NotFound) => Error::NotFound(format!(
            "{what}: no such file or folder (or it was just removed)"
        )),
        _ => session_problem(e),
    }
}

/// Maps the problems of a write to clear errors about `path`.
fn write_problem(e: Error, path: &RemotePath) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::NotFound) => Error::NotFound(format!(
            "{path}: no such file or folder (or it was just removed)"
        )),
        Some(api::ProblemKind::Forbidden) => Error::Auth(format!(
            "{path}: you may not change this (read-only share?)"
        )),
        Some(api::ProblemKind::RevisionMismatch) => Error::Conflict(format!(
            "{path} changed on the server meanwhile; run the command again"
        )),
        Some(api::ProblemKind::QuotaExceeded) => {
            Error::Conflict("storage quota exceeded; remove something first".into())
        }
        _ => session_problem(e),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    use coffer_core::primitives::content_digest;
    use coffer_core::primitives::TAG_LEN;

    /// Serves `body` at `/c` on an ephemeral port; returns the base URL.
    async fn serve_bytes(body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route(
            "/c",
            axum::routing::get(move || {
                let body = body.clone();
                async move { body }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A whole-file download checks the plaintext against the metadata's content digest
    /// (§5.6): content that authenticates under the file key but is not the content the
    /// metadata names (a writer that reused a file key) is refused, and nothing is left.
    #[tokio::test]
    async fn whole_downloads_check_the_content_digest() {
        let key = SecretKey::generate(&mut OsRng);
        let plain: Vec<u8> = (0..5 * content::CHUNK_LEN + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let ct = content::encrypt(&key, &plain, &mut OsRng);
        let http = Http::new(&serve_bytes(ct.clone()).await).expect("http");
        let dir = tempfile::tempdir().expect("dir");
        let dest = dir.path().join("out.bin");
        let source = |digest: Option<[u8; 32]>| ContentSource {
            http: &http,
            path: "/c".into(),
            bearer: None,
            file_key: &key,
            ciphertext_length: ct.len() as u64,
            content_revision: None,
            content_digest: digest,
        };
        for digest in [Some(content_digest(&plain)), None] {
            let n = download_to(&source(digest), &dest, None, &NoProgress)
                .await
                .expect("download");
            assert_eq!(n, plain.len() as u64);
            assert!(std::fs::read(&dest).expect("read") == plain);
            std::fs::remove_file(&dest).expect("remove");
        }
        let mut other = plain.clone();
        other[7] ^= 1;
        let e = download_to(
            &source(Some(content_digest(&other))),
            &dest,
            None,
            &NoProgress,
        )
        .await
        .expect_err("digest mismatch");
        assert!(matches!(e, Error::Integrity(_)), "{e:?}");
        assert!(
            !dest.exists(),
            "unverified plaintext left at the destination"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn paths_parse_from_the_root() {
        let p = RemotePath::parse("/a/b/./c/").expect("parse");
        assert_eq!(p.names(), ["a", "b", "c"]);
        assert_eq!(p.to_string(), "/a/b/c");
        assert_eq!(
            RemotePath::parse("a//b").expect("parse").to_string(),
            "/a/b"
        );
        assert!(RemotePath::parse("/").expect("root").is_root());
        assert!(matches!(RemotePath::parse("/a/../b"), Err(Error::Usage(_))));
        let (parent, last) = p.split_last().expect("not root");
        assert_eq!(parent.to_string(), "/a/b");
        assert_eq!(last, "c");
        assert_eq!(p.join("d").expect("join").to_string(), "/a/b/c/d");
        assert!(RemotePath::parse("/a\u{0}b").is_err());
    }

    #[test]
    fn part_sizes_follow_the_spec() {
        assert_eq!(part_size_for(1), api::DEFAULT_PART_SIZE);
        // A file too large for 10 000 default parts gets larger parts, in whole strides.
        let total = api::DEFAULT_PART_SIZE * api::MAX_PARTS + 1;
        let size = part_size_for(total);
        assert_eq!(size % api::CONTENT_CHUNK_STRIDE, 0);
        assert!(total.div_ceil(size) <= api::MAX_PARTS);
        assert!(api::upload::part_count(total, size).is_ok());
    }

    #[test]
    fn every_part_is_covered_by_whole_chunks() {
        let h = content::HEADER_LEN as u64;
        let stride = content::ENCRYPTED_CHUNK_LEN as u64;
        let chunk = content::CHUNK_LEN as u64;
        for size in [0u64, 1, chunk, 300 * chunk + 17] {
            let total = content::ciphertext_len(size).expect("len");
            let part = api::MIN_PART_SIZE;
            let count = api::upload::part_count(total, part).expect("count");
            let mut covered_to = 0u64;
            for i in 0..count {
                let (a, len) = api::upload::part_span(total, part, i).expect("span");
                let (first, p0, p1) = chunks_for_span(a, a + len, size);
                // The chunks start at or before the part and end at or after it.
                assert!(h + first * stride <= a.max(h));
                assert_eq!(p0, first * chunk);
                let last_chunk = if p1 == 0 { 0 } else { (p1 - 1) / chunk };
                let end = (h + (last_chunk + 1) * stride).min(total);
                assert!(end >= a + len, "size {size} part {i}");
                assert!(p0 <= covered_to, "a gap in the plaintext");
                covered_to = covered_to.max(p1);
            }
            assert_eq!(covered_to, size);
        }
    }

    /// A patterned plaintext of `size` bytes, a fresh file key and a sealer for them.
    fn sealed_setup(size: u64) -> (Vec<u8>, SecretKey, content::ContentSealer) {
        let plain: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let key = SecretKey::generate(&mut OsRng);
        let salt = content::ContentSealer::new_salt(&mut OsRng);
        let sealer = content::ContentSealer::new(&key, &salt, size).expect("sealer");
        (plain, key, sealer)
    }

    /// `plain` (whole chunks) laid out as ciphertext by [`read_into_layout`].
    fn laid_out(plain: &[u8]) -> Vec<u8> {
        let tags = plain.len().div_ceil(content::CHUNK_LEN).max(1) * TAG_LEN;
        let mut chunks = vec![0u8; plain.len() + tags];
        read_into_layout(&mut &plain[..], &mut chunks).expect("layout");
        chunks
    }

    /// A reader that returns at most `step` bytes per call, from one buffer at a time.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn plaintext_is_read_into_the_ciphertext_layout() {
        let chunk = content::CHUNK_LEN;
        for len in [0usize, 1, chunk, 3 * chunk + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let tags = len.div_ceil(chunk).max(1) * TAG_LEN;
            for step in [7usize, 4096, usize::MAX] {
                let mut chunks = vec![0xeeu8; len + tags];
                let mut src = Trickle { data: &plain, step };
                read_into_layout(&mut src, &mut chunks).expect("reads");
                let bodies: Vec<u8> = layout_bodies(&chunks).flatten().copied().collect();
                assert_eq!(bodies, plain, "len {len}, step {step}");
                for (i, c) in chunks.chunks(content::ENCRYPTED_CHUNK_LEN).enumerate() {
                    let at = i * content::ENCRYPTED_CHUNK_LEN + c.len() - TAG_LEN;
                    assert_eq!(c.len() - TAG_LEN, chunk.min(len - i * chunk), "chunk {i}");
                    assert!(chunks[at..at + TAG_LEN].iter().all(|&b| b == 0xee));
                }
            }
            if len > 0 {
                // A file shorter than the chunks: an error, not a partly filled part.
                let mut chunks = vec![0u8; len + tags];
                let err =
                    read_into_layout(&mut &plain[..len - 1], &mut chunks).expect_err("short file");
                assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
            }
        }
    }

    #[test]
    fn part_check_changes_with_any_plaintext_change() {
        let size = 3 * content::CHUNK_LEN as u64 + 5;
        let (plain, _, sealer) = sealed_setup(size);
        let total = sealer.ciphertext_len();
        let pool = BufferPool::default();
        let check = |p: &[u8]| {
            let (first_chunk, p0, p1) = chunks_for_span(0, total, size);
            assert_eq!((first_chunk, p0, p1), (0, 0, size));
            let job = PartJob {
                index: 0,
                span: (0, total),
                first_chunk,
                chunks: laid_out(p),
            };
            seal_part(&sealer, job, &pool).expect("seal").1
        };
        let before = check(&plain);
        assert_eq!(check(&plain), before, "the check is deterministic");
        for at in [0, content::CHUNK_LEN + 7, size as usize - 1] {
            let mut edited = plain.clone();
            edited[at] ^= 0x01;
            assert_ne!(
                check(&edited),
                before,
                "a change at byte {at} went unnoticed"
            );
        }
    }

    #[test]
    fn parts_sealed_separately_form_the_one_shot_ciphertext() {
        let size = 40 * content::CHUNK_LEN as u64 + 5;
        let (plain, key, sealer) = sealed_setup(size);
        let total = sealer.ciphertext_len();
        let part = api::MIN_PART_SIZE;
        let count = api::upload::part_count(total, part).expect("count");
        let mut ct = Vec::new();
        for i in 0..count {
            let (a, len) = api::upload::part_span(total, part, i).expect("span");
            let (first_chunk, p0, p1) = chunks_for_span(a, a + len, size);
            let job = PartJob {
                index: i,
                span: (a, len),
                first_chunk,
                chunks: laid_out(&plain[p0 as usize..p1 as usize]),
            };
            let bytes = seal_part(&sealer, job, &BufferPool::default())
                .expect("seal")
                .0;
            assert_eq!(bytes.len() as u64, len);
            ct.extend_from_slice(&bytes);
        }
        assert_eq!(content::decrypt(&key, &ct).expect("decrypts"), plain);
    }
}
