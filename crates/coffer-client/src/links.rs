//! Links (spec §10, §11.11): create (password, expiry, download limit, upload-only), list,
//! revoke, rotate, and open without an account (password unlock, drop upload); and filing the
//! drops that strangers left through upload-only links (§10.9.3).
//!
//! A link URL is `<server>/l/<link id>#1.<secret>[.p]`: the secret never reaches the server.
//! Everything a link holder reads is checked with the link's keys: the link record's capability
//! is authenticated under a key derived from the secret (and the password), the node record's
//! signature is checked, node keys, metadata and content are authenticated encryption under keys
//! the capability carries, and downloaded plaintext is compared with the digest in the
//! authenticated metadata before it is renamed into place. A link holder has no pinned identity
//! of the owner, so a record's author is checked for a valid signature, not pinned.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use coffer_core::account::link_entries_key;
use coffer_core::api::{self, LinkKind};
use coffer_core::content::{self, Decryptor, Encryptor};
use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::{LinkId, NodeId};
use coffer_core::link::{
    self, CreatedLink, LinkAccess, LinkOptions, LinkRecord, LinkTarget, LinkUrl, NewLinkPassword,
    NodeKind, OpenedLink, OwnerLinkEntry,
};
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::primitives::{Argon2Params, ContentDigest, SecretKey};
use coffer_core::tree::{self, FileContent, NewNode, NodeExpectation, NodeRecord, SealedMetadata};
use rand_core::OsRng;
use reqwest::Method;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::files::{Progress, RemotePath, Resolved};
use crate::http::{Bearer, Http, Payload, Retry};
use crate::shares::{list_children, node_metadata};
use crate::{now, Client};

/// Options of a new link.
#[derive(Debug, Default)]
pub struct NewLink {
    /// A password the link asks for.
    pub password: Option<Zeroizing<String>>,
    /// Seconds from now until the link expires.
    pub expires_in: Option<u64>,
    /// At most this many downloads (upload-only links: uploads).
    pub max_downloads: Option<u64>,
    /// An upload-only ("drop box") link to a folder.
    pub upload_only: bool,
}

/// A link of this account, as listed, created or rotated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkInfo {
    /// The link id.
    pub link_id: String,
    /// The URL (with the secret), from the owner's sealed entry.
    pub url: String,
    /// `"file"`, `"folder"` or `"upload-only"`.
    pub kind: &'static str,
    /// The remote path of the node (empty when it is gone).
    pub path: String,
    /// Creation (or rotation) time.
    pub created_at: u64,
    /// Expiry, if any.
    pub expires_at: Option<u64>,
    /// Download limit, if any.
    pub max_downloads: Option<u64>,
    /// Downloads counted so far.
    pub downloads: u64,
    /// Whether the link asks for a password.
    pub password: bool,
    /// `"live"`, `"expired"` or `"used up"`.
    pub state: &'static str,
}

/// A drop filed into its folder by [`Client::file_drops`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct FiledDrop {
    /// The folder's path.
    pub folder: String,
    /// The file's name.
    pub name: String,
    /// Its plaintext size.
    pub size: u64,
}

fn kind_name(k: LinkKind) -> &'static str {
    match k {
        LinkKind::File => "file",
        LinkKind::Folder => "folder",
        _ => "upload-only",
    }
}

/// The link id named by `text`: a link URL or a bare link id.
///
/// # Errors
/// [`Error::Usage`] for anything else.
pub fn parse_link_ref(text: &str) -> Result<LinkId> {
    if text.contains('#') {
        return Ok(LinkUrl::parse(text)
            .map_err(|e| Error::Usage(format!("not a valid link URL: {e}")))?
            .link_id());
    }
    LinkId::from_b64(text)
        .map_err(|_| Error::Usage(format!("{text:?} is neither a link id nor a link URL")))
}

fn link_problem(e: Error) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::NotFound) => {
            Error::NotFound("the link does not exist (revoked, rotated or mistyped)".into())
        }
        Some(api::ProblemKind::LinkExpired) => Error::Conflict("the link has expired".into()),
        Some(api::ProblemKind::LinkExhausted) => {
            Error::Conflict("the link has reached its download limit".into())
        }
        Some(api::ProblemKind::LinkUnlockFailed) => Error::Auth("wrong link password".into()),
        _ => e,
    }
}

/// The `LinkParams` of a new or rotated link.
fn params_of(created: &CreatedLink, owner_key: &SecretKey, kind: LinkKind) -> api::LinkParams {
    let e = &created.owner_entry;
    api::LinkParams {
        link_id: created.url.link_id(),
        node_id: e.node_id,
        kind,
        link_record: ByteBuf::from(created.record.clone()),
        owner_entry: ByteBuf::from(link::seal_owner_entry(owner_key, e, &mut OsRng)),
        verifier_hash: created.verifier_hash.map(Bytes),
        expires_at: e.expires_at,
        max_downloads: e.max_downloads,
    }
}

fn link_kind(entry: &OwnerLinkEntry) -> LinkKind {
    match (entry.permission, entry.node_kind) {
        (link::Permission::UploadOnly, _) => LinkKind::Drop,
        (_, NodeKind::File) => LinkKind::File,
        _ => LinkKind::Folder,
    }
}

impl Client {
    fn owner_key(&self) -> Result<SecretKey> {
        let s = self.session()?;
        Ok(link_entries_key(&s.account.master_key, &s.account_id()))
    }

    /// Creates a link to `path` (a file, or a folder; upload-only links need a folder).
    ///
    /// # Errors
    /// [`Error::Usage`] for an upload-only link to a file or a path in a folder shared with this
    /// account (only a tree's owner makes links).
    pub async fn link_create(&self, path: &RemotePath, opts: &NewLink) -> Result<LinkInfo> {
        let s = self.session()?;
        let node = match self.resolve(path).await? {
            Resolved::Node(n) => *n,
            _ => return Err(Error::Usage(format!("{path} is not a file or folder"))),
        };
        if node.scope.shared_by.is_some() {
            return Err(Error::Usage(format!(
                "{path} is in a folder shared with you: only its owner can make links to it"
            )));
        }
        if opts.upload_only && !node.is_folder() {
            return Err(Error::Usage(
                "an upload-only link needs a folder to drop files into".into(),
            ));
        }
        if opts.max_downloads == Some(0) {
            return Err(Error::Usage("--max-downloads must be at least 1".into()));
        }
        let target = LinkTarget {
            node_id: node.id,
            node_kind: if node.is_folder() {
                NodeKind::Folder
            } else {
                NodeKind::File
            },
            generation: node.record.key_generation,
            node_key: node.key.clone(),
        };
        let created_at = now();
        let options = LinkOptions {
            password: opts.password.as_ref().map(|p| NewLinkPassword {
                password: p.as_bytes(),
                params: Argon2Params::DEFAULT,
            }),
            expires_at: opts.expires_in.map(|d| created_at.saturating_add(d)),
            max_downloads: opts.max_downloads,
            upload_only: opts.upload_only,
        };
        let created = link::create_link(
            &mut OsRng,
            self.http().base(),
            &target,
            &options,
            created_at,
        )
        .map_err(|e| Error::Usage(format!("cannot make the link: {e}")))?;
        let kind = link_kind(&created.owner_entry);
        let params = params_of(&created, &self.owner_key()?, kind);
        let done: api::LinkCreated = self
            .http()
            .post(
                "/v1/links",
                Some(&s.token),
                &api::LinkCreateRequest { link: params },
                Retry::Idempotent,
            )
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::NotFound) => Error::NotFound(format!(
                    "{path}: only the owner of a folder makes links to it"
                )),
                _ => e,
            })?;
        Ok(LinkInfo {
            link_id: done.link_id.to_b64(),
            url: created.url.to_string(),
            kind: kind_name(kind),
            path: path.to_string(),
            created_at: done.created_at,
            expires_at: options.expires_at,
            max_downloads: options.max_downloads,
            downloads: 0,
            password: options.password.is_some(),
            state: "live",
        })
    }

    /// This account's links (revoked ones excepted), each with its URL from the sealed owner
    /// entry.
    ///
    /// # Errors
    /// [`Error::Integrity`] for an owner entry that does not open.
    pub async fn links(&self) -> Result<Vec<LinkInfo>> {
        let s = self.session()?;
        let list: api::LinkList = self
            .http()
            .get("/v1/links", Some(&s.token))
            .await
            .map_err(crate::account::session_problem)?;
        let key = self.owner_key()?;
        let t = now();
        let mut out = Vec::with_capacity(list.links.len());
        for l in list.links {
            let entry = link::open_owner_entry(&key, l.link_id, &l.owner_entry)?;
            if entry.node_id != l.node_id || link_kind(&entry) != l.kind {
                return Err(Error::integrity(
                    "a link's listing disagrees with its owner entry",
                ));
            }
            let path = match self.folder_name_by_id(entry.node_id).await {
                Ok(p) => p,
                Err(Error::NotFound(_)) => String::new(),
                Err(e) => return Err(e),
            };
            let state = if entry.expires_at.is_some_and(|e| t >= e) {
                "expired"
            } else if entry.max_downloads.is_some_and(|m| l.downloads >= m) {
                "used up"
            } else {
                "live"
            };
            out.push(LinkInfo {
                link_id: l.link_id.to_b64(),
                url: entry.url(self.http().base())?.to_string(),
                kind: kind_name(l.kind),
                path,
                created_at: l.created_at,
                expires_at: entry.expires_at,
                max_downloads: entry.max_downloads,
                downloads: l.downloads,
                password: entry.password.is_some(),
                state,
            });
        }
        Ok(out)
    }

    /// Revokes the link named by `link` (an id or URL): from then on it is not found.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a link this account does not have.
    pub async fn link_revoke(&self, link: &str) -> Result<LinkId> {
        let s = self.session()?;
        let id = parse_link_ref(link)?;
        self.http()
            .no_content(
                Method::DELETE,
                &format!("/v1/links/{id}"),
                Some(&s.token),
                Payload::Empty,
                Retry::Once,
            )
            .await
            .map_err(link_problem)?;
        Ok(id)
    }

    /// Rotates the link named by `link`: a new secret (new URL) for the same node, options and
    /// password; the old URL stops working at the same instant.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a link this account does not have.
    pub async fn link_rotate(&self, link: &str) -> Result<LinkInfo> {
        let s = self.session()?;
        let id = parse_link_ref(link)?;
        let list: api::LinkList = self.http().get("/v1/links", Some(&s.token)).await?;
        let l = list
            .links
            .into_iter()
            .find(|l| l.link_id == id)
            .ok_or_else(|| Error::NotFound(format!("no link {id} of yours")))?;
        let key = self.owner_key()?;
        let entry = link::open_owner_entry(&key, id, &l.owner_entry)?;
        let ancestry = self.own_ancestry(entry.node_id).await?;
        let (record, node_key, _) = ancestry
            .first()
            .ok_or_else(|| Error::NotFound("the link's node".into()))?;
        let path = self.folder_name_by_id(entry.node_id).await?;
        let target = LinkTarget {
            node_id: entry.node_id,
            node_kind: entry.node_kind,
            generation: record.key_generation,
            node_key: node_key.clone(),
        };
        let created = link::rotate_link(&mut OsRng, &entry, self.http().base(), &target, now())?;
        let kind = link_kind(&created.owner_entry);
        let params = params_of(&created, &key, kind);
        let done: api::LinkCreated = self
            .http()
            .post(
                &format!("/v1/links/{id}/rotate"),
                Some(&s.token),
                &api::LinkRotateRequest { link: params },
                Retry::Idempotent,
            )
            .await
            .map_err(link_problem)?;
        let e = &created.owner_entry;
        Ok(LinkInfo {
            link_id: done.link_id.to_b64(),
            url: created.url.to_string(),
            kind: kind_name(kind),
            path,
            created_at: done.created_at,
            expires_at: e.expires_at,
            max_downloads: e.max_downloads,
            downloads: 0,
            password: e.password.is_some(),
            state: "live",
        })
    }

    /// Files every finished drop (uploads through upload-only links into this account's
    /// folders) as a normal file of its folder (§10.9.3): opens the envelope with the drop
    /// secret, checks the metadata, downloads the content and checks that it decrypts and
    /// matches the metadata's digest, uploads it as a new file record signed by this account,
    /// and deletes the drop. A drop whose node is already filed is deleted. Drops into folders
    /// of other accounts (listed to write members of their shares) are left to the folder's
    /// owner.
    ///
    /// # Errors
    /// [`Error::Integrity`] for a drop that does not open or verify (it is left on the server).
    pub async fn file_drops(&self) -> Result<Vec<FiledDrop>> {
        let s = self.session()?;
        let list: api::DropList = self
            .http()
            .get("/v1/drops", Some(&s.token))
            .await
            .map_err(crate::account::session_problem)?;
        let mut out = Vec::new();
        for d in list.drops {
            if let Some(f) = self.file_drop(&d).await? {
                out.push(f);
            }
        }
        Ok(out)
    }

    async fn file_drop(&self, d: &api::DropInfo) -> Result<Option<FiledDrop>> {
        let s = self.session()?;
        let token = s.token.clone();
        let record = LinkRecord::parse(&d.link_record)?;
        if record.link_id != d.link_id {
            return Err(Error::integrity("a drop listed with another link's record"));
        }
        let drop = record
            .drop
            .as_ref()
            .ok_or_else(|| Error::integrity("a drop through a link that is not upload-only"))?;
        // A write member of a share also sees the drops into the share's folders (§11.11.2),
        // but the folder's owner files them (§10.9.3): a folder outside this account's own tree
        // is left alone rather than failing the whole listing.
        let ancestry = match self.own_ancestry(record.node_id).await {
            Ok(a) => a,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (folder, folder_node_key, _) = ancestry
            .first()
            .ok_or_else(|| Error::integrity("drop folder"))?;
        if !folder.is_folder() {
            return Err(Error::integrity("a drop into a file"));
        }
        let current = folder.folder_key(folder_node_key.clone());
        let at = folder.folder_key_at(&current, drop.generation)?;
        let drop_secret = link::open_drop_secret(&record, &at)?;
        let opened = link::open_drop(
            &drop_secret,
            record.link_id,
            record.node_id,
            &d.drop_envelope,
        )?;
        let metadata: Metadata = decode(&opened.metadata)
            .map_err(|e| Error::integrity(format!("a drop's metadata is malformed: {e}")))?;
        let digest = metadata
            .content_digest()
            .copied()
            .ok_or_else(|| Error::integrity("a drop's metadata names a folder"))?;
        let folder_path = self.folder_name_by_id(folder.node_id).await?;
        let delete = |c: &Client| {
            let token = token.clone();
            let http = c.http().clone();
            let id = d.drop_id;
            async move {
                http.no_content(
                    Method::DELETE,
                    &format!("/v1/drops/{id}"),
                    Some(&token),
                    Payload::Empty,
                    Retry::Idempotent,
                )
                .await
            }
        };
        // A node already filed (a replayed envelope): nothing to do but delete the drop.
        match self
            .http()
            .get::<api::NodeResponse>(&format!("/v1/nodes/{}", opened.node_id), Some(&token))
            .await
        {
            Ok(_) => {
                delete(self).await?;
                return Ok(None);
            }
            Err(e) if e.problem_kind() == Some(api::ProblemKind::NotFound) => {}
            Err(e) => return Err(e),
        }
        // Download the ciphertext to a private temporary file and check it.
        let file_key = link::drop_file_key(&opened.node_key, opened.node_id);
        let dir = self.config().ensure(Some("drops"))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".drop-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("creating a temporary file", e))?;
        let mut resp = self
            .http()
            .get_octets(
                &format!("/v1/drops/{}/content", d.drop_id),
                Some(&token),
                None,
                None,
            )
            .await?;
        let mut dec = Decryptor::new(&file_key);
        let mut hasher = ContentDigest::new();
        let mut plain = Vec::new();
        let mut total = 0u64;
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            total += chunk.len() as u64;
            if total > d.total_length {
                return Err(Error::integrity("a drop's content is longer than listed"));
            }
            tmp.write_all(&chunk)
                .map_err(|e| Error::io("writing a drop", e))?;
            dec.update(&chunk, &mut plain)?;
            hasher.update(&plain);
            size += plain.len() as u64;
            plain.clear();
        }
        dec.finish(&mut plain)?;
        hasher.update(&plain);
        size += plain.len() as u64;
        if total != d.total_length || size != metadata.size() || hasher.finalize() != digest {
            return Err(Error::integrity(
                "a drop's content does not match its metadata",
            ));
        }
        // File it: a new file record under the folder's current key, signed by this account.
        let node = NewNode {
            node_id: opened.node_id,
            node_key: opened.node_key.clone(),
        };
        let secrets = &s.account.secrets;
        let sealed = SealedMetadata {
            revision: 1,
            sealed: seal_metadata(&node.node_key, &node.node_id, 1, &metadata, &mut OsRng),
        };
        let (_, signed) = tree::create_file(
            &secrets.identity.signing,
            &current,
            &node,
            sealed,
            &FileContent {
                file_key,
                content_revision: 1,
                ciphertext_length: total,
            },
            now(),
            &mut OsRng,
        )?;
        let part_size = api::DEFAULT_PART_SIZE;
        let status: api::UploadStatus = self
            .http()
            .post(
                "/v1/uploads",
                Some(&token),
                &api::UploadCreateRequest {
                    node_id: node.node_id,
                    parent_id: folder.node_id,
                    content_revision: 1,
                    total_length: total,
                    part_size,
                },
                Retry::Idempotent,
            )
            .await?;
        let mut file = tmp.reopen().map_err(|e| Error::io("reopening a drop", e))?;
        send_parts(
            self.http(),
            &format!("/v1/uploads/{}", status.upload_id),
            Some(&token),
            &mut file,
            total,
            part_size,
            &crate::files::NoProgress,
        )
        .await?;
        let _: api::NodeWritten = self
            .http()
            .post(
                &format!("/v1/uploads/{}/finalize", status.upload_id),
                Some(&token),
                &api::UploadFinalizeRequest {
                    expected_revision: None,
                    signed_node: ByteBuf::from(encode(&signed)),
                },
                Retry::Idempotent,
            )
            .await?;
        delete(self).await?;
        Ok(Some(FiledDrop {
            folder: folder_path,
            name: metadata.name().to_owned(),
            size,
        }))
    }
}

/// Sends `total` bytes of ciphertext from `src` as parts of `part_size` to `{base}/parts/{i}`.
async fn send_parts(
    http: &Http,
    base: &str,
    bearer: Option<&Bearer>,
    src: &mut std::fs::File,
    total: u64,
    part_size: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let mut index = 0u64;
    let mut sent = 0u64;
    while sent < total {
        let n = part_size.min(total - sent);
        let mut buf = vec![0u8; usize::try_from(n).map_err(|_| Error::Usage("part size".into()))?];
        src.read_exact(&mut buf)
            .map_err(|e| Error::io("reading upload data", e))?;
        let stored: api::PartStored = http
            .put_octets(&format!("{base}/parts/{index}"), bearer, buf.into())
            .await?;
        if stored.length != n || stored.part_index != index {
            return Err(Error::integrity("the server stored another part"));
        }
        progress.advance(n);
        sent += n;
        index += 1;
    }
    Ok(())
}

/// A link opened without an account: the URL, the link access token of a password link, the
/// resolved record and the opened capability.
#[derive(Debug)]
pub struct OpenLink {
    http: Http,
    url: LinkUrl,
    token: Option<Bearer>,
    resolved: api::LinkResolved,
    opened: OpenedLink,
}

/// What the CLI shows about an opened link.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenedInfo {
    /// `"file"`, `"folder"` or `"upload-only"`.
    pub kind: &'static str,
    /// Expiry, as the owner authenticated it.
    pub expires_at: Option<u64>,
    /// Download limit, as the owner authenticated it.
    pub max_downloads: Option<u64>,
    /// Downloads left, as the server says.
    pub downloads_remaining: Option<u64>,
}

/// What downloading through a link wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Downloaded {
    /// The local path written (the top directory for a folder).
    pub path: String,
    /// Files written.
    pub files: u64,
    /// Plaintext bytes written.
    pub bytes: u64,
}

impl OpenLink {
    /// Opens `url` (no account): resolves the link at the URL's server, unlocks a password link
    /// with the password `password` returns (asked only when the link has one), checks the
    /// record against the URL and opens its capability.
    ///
    /// # Errors
    /// [`Error::Usage`] for a malformed URL; [`Error::NotFound`] for a revoked, rotated or
    /// unknown link; [`Error::Conflict`] for an expired or used-up link; [`Error::Auth`] for a
    /// wrong password; [`Error::Integrity`] for a record that does not open with the URL's
    /// secret (a changed fragment, or tampering).
    pub async fn open(
        url: &str,
        password: impl FnOnce() -> Result<Zeroizing<String>>,
    ) -> Result<OpenLink> {
        let url = LinkUrl::parse(url.trim())
            .map_err(|e| Error::Usage(format!("not a valid link URL: {e}")))?;
        let http = Http::new(url.origin())?;
        let path = format!("/v1/l/{}", url.link_id());
        let first: api::LinkResolved = http.get(&path, None).await.map_err(link_problem)?;
        if first.link_id != url.link_id() {
            return Err(Error::integrity("the server resolved another link"));
        }
        let (resolved, token, pw_key) = match &first.password {
            None => (first, None, None),
            Some(params) => {
                if !url.password_required() {
                    return Err(Error::integrity(
                        "the server asks for a password the link URL does not have",
                    ));
                }
                let pw = password()?;
                let pw_key = params.derive_key(pw.as_bytes()).map_err(|e| {
                    Error::integrity(format!("unacceptable password parameters: {e}"))
                })?;
                let verifier = link::password_verifier(url.secret(), &pw_key);
                let unlocked: api::LinkUnlocked = http
                    .post(
                        &format!("{path}/unlock"),
                        None,
                        &api::LinkUnlockRequest {
                            verifier: api::LinkVerifier::from_bytes(*verifier),
                        },
                        Retry::Once,
                    )
                    .await
                    .map_err(link_problem)?;
                let token = Bearer::from_b64(unlocked.access_token.to_b64());
                let again: api::LinkResolved =
                    http.get(&path, Some(&token)).await.map_err(link_problem)?;
                (again, Some(token), Some(pw_key))
            }
        };
        let record = resolved
            .link_record
            .as_ref()
            .ok_or_else(|| Error::integrity("the server withheld the link record"))?;
        let opened = link::open_link_with_key(&url, record, pw_key.as_ref(), now()).map_err(
            |e| match e {
                coffer_core::Error::LinkExpired => Error::Conflict("the link has expired".into()),
                coffer_core::Error::DecryptionFailed => Error::integrity(
                    "the link does not open with this URL's secret: the URL was changed, or the server tampered with the link",
                ),
                other => Error::integrity(format!("the link record does not verify: {other}")),
            },
        )?;
        let kind_ok = matches!(
            (&opened.access, resolved.kind, opened.node_kind),
            (
                LinkAccess::UploadOnly { .. },
                LinkKind::Drop,
                NodeKind::Folder
            ) | (LinkAccess::Read { .. }, LinkKind::File, NodeKind::File)
                | (LinkAccess::Read { .. }, LinkKind::Folder, NodeKind::Folder)
        );
        if !kind_ok {
            return Err(Error::integrity(
                "the link's kind disagrees with its record",
            ));
        }
        Ok(OpenLink {
            http,
            url,
            token,
            resolved,
            opened,
        })
    }

    /// What the link is, with the owner-authenticated expiry and limit.
    #[must_use]
    pub fn info(&self) -> OpenedInfo {
        OpenedInfo {
            kind: kind_name(self.resolved.kind),
            expires_at: self.opened.expires_at,
            max_downloads: self.opened.max_downloads,
            downloads_remaining: self.resolved.downloads_remaining,
        }
    }

    /// Whether this is an upload-only link.
    #[must_use]
    pub fn is_upload_only(&self) -> bool {
        matches!(self.opened.access, LinkAccess::UploadOnly { .. })
    }

    fn base(&self) -> String {
        format!("/v1/l/{}", self.url.link_id())
    }

    fn node_key(&self) -> Result<&SecretKey> {
        match &self.opened.access {
            LinkAccess::Read { node_key } => Ok(node_key),
            LinkAccess::UploadOnly { .. } => Err(Error::Usage(
                "this link is upload-only: it reads nothing; use --upload FILE".into(),
            )),
        }
    }

    /// The link's node record, verified: signed, the link's node, the generation the link's key
    /// is for.
    fn target_record(&self) -> Result<NodeRecord> {
        let signed = self
            .resolved
            .node
            .as_ref()
            .ok_or_else(|| Error::integrity("the server sent no node for a reading link"))?;
        let peek = tree::verify_node_signature(signed)?;
        let record = tree::verify_node(
            signed,
            &NodeExpectation {
                node_id: self.opened.node_id,
                parent: peek.parent_id.map(|p| (p, u64::MAX)),
                key_generation: (self.opened.node_kind == NodeKind::Folder)
                    .then_some(self.opened.generation),
            },
            &[peek.author_key()?],
        )
        .map_err(|e| Error::integrity(format!("the link's node does not verify: {e}")))?;
        Ok(record)
    }

    /// Downloads what the link gives: a file to `out` (a file path, an existing directory, or
    /// `-` for standard output; default: its name in the current directory), or a folder's
    /// whole tree into the directory `out` (default: its name in the current directory).
    ///
    /// # Errors
    /// [`Error::Integrity`] when anything fails to verify (nothing unverified is left at the
    /// destination); [`Error::Conflict`] for an expired or used-up link.
    pub async fn download(
        &self,
        out: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<Downloaded> {
        let key = self.node_key()?.clone();
        let record = self.target_record()?;
        let metadata = node_metadata(&record, &key)?;
        if !record.is_folder() {
            let dest = match out {
                Some(p) if p == Path::new("-") => p.to_path_buf(),
                Some(p) if p.is_dir() => p.join(metadata.name()),
                Some(p) => p.to_path_buf(),
                None => PathBuf::from(metadata.name()),
            };
            progress.set_total(metadata.size());
            let n = self
                .fetch_file(
                    &format!("{}/content", self.base()),
                    &record,
                    &key,
                    &metadata,
                    &dest,
                    progress,
                )
                .await?;
            return Ok(Downloaded {
                path: dest.display().to_string(),
                files: 1,
                bytes: n,
            });
        }
        let top = out.map_or_else(|| PathBuf::from(metadata.name()), Path::to_path_buf);
        std::fs::create_dir_all(&top)
            .map_err(|e| Error::io(format!("creating {}", top.display()), e))?;
        let mut done = Downloaded {
            path: top.display().to_string(),
            files: 0,
            bytes: 0,
        };
        let mut stack = vec![(record, key, top.clone())];
        while let Some((folder, fkey, dir)) = stack.pop() {
            let fk = folder.folder_key(fkey);
            let kids = list_children_link(self, folder.node_id).await?;
            for signed in kids {
                let peek = tree::verify_node_signature(&signed)?;
                let (rec, k) =
                    crate::shares::open_child(&signed, &folder, &fk, &[peek.author_key()?])?;
                let m = node_metadata(&rec, &k)?;
                let dest = dir.join(m.name());
                if rec.is_folder() {
                    std::fs::create_dir_all(&dest)
                        .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
                    stack.push((rec, k, dest));
                } else {
                    progress.set_total(m.size());
                    done.bytes += self
                        .fetch_file(
                            &format!("{}/nodes/{}/content", self.base(), rec.node_id),
                            &rec,
                            &k,
                            &m,
                            &dest,
                            progress,
                        )
                        .await?;
                    done.files += 1;
                }
            }
        }
        Ok(done)
    }

    async fn fetch_file(
        &self,
        path: &str,
        record: &NodeRecord,
        node_key: &SecretKey,
        metadata: &Metadata,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let file_key = record.open_file_key(node_key)?;
        let file = record
            .file
            .as_ref()
            .ok_or_else(|| Error::integrity("a file without content"))?;
        // The metadata's size names the same length as the record's ciphertext (checked before
        // anything is fetched; the download then checks the bytes against both).
        if content::ciphertext_len(metadata.size()).ok() != Some(file.ciphertext_length) {
            return Err(Error::integrity(
                "the content does not match its authenticated metadata",
            ));
        }
        let source = crate::files::ContentSource {
            http: &self.http,
            path: path.to_owned(),
            bearer: self.token.as_ref(),
            file_key: &file_key,
            ciphertext_length: file.ciphertext_length,
            content_revision: Some(file.content_revision),
            content_digest: metadata.content_digest().copied(),
        };
        crate::files::download_to(&source, dest, None, progress)
            .await
            .map_err(link_problem)
    }

    /// Uploads the local file `file` through an upload-only link (§10.9.2): the node key is
    /// encrypted to the link's drop public key, the metadata sealed under it, the content
    /// encrypted under the drop file key; the owner files it later.
    ///
    /// # Errors
    /// [`Error::Usage`] for a reading link; [`Error::Io`] for the local file; [`Error::Conflict`]
    /// for an expired or used-up link.
    pub async fn upload(&self, file: &Path, progress: &dyn Progress) -> Result<FiledDrop> {
        if !self.is_upload_only() {
            return Err(Error::Usage(
                "this link is for reading: open it without --upload".into(),
            ));
        }
        let ctx = |what: &str| format!("{what} {}", file.display());
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Usage(format!("{} has no usable file name", file.display())))?
            .to_owned();
        let meta = std::fs::metadata(file).map_err(|e| Error::io(ctx("reading"), e))?;
        if !meta.is_file() {
            return Err(Error::Usage(format!("{} is not a file", file.display())));
        }
        let size = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        // First pass: the digest the metadata carries.
        let mut hasher = ContentDigest::new();
        let mut f = std::fs::File::open(file).map_err(|e| Error::io(ctx("opening"), e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(ctx("reading"), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let metadata = Metadata::new(name.clone(), size, mtime, None, Some(hasher.finalize()))
            .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
        let drop = link::create_drop(&mut OsRng, &self.opened, &encode(&metadata))?;
        let file_key = link::drop_file_key(&drop.node_key, drop.node_id);
        let total = content::ciphertext_len(size)?;
        let part_size = api::DEFAULT_PART_SIZE;
        let status: api::UploadStatus = self
            .http
            .post(
                &format!("{}/drops", self.base()),
                self.token.as_ref(),
                &api::DropCreateRequest {
                    drop_envelope: ByteBuf::from(drop.envelope),
                    total_length: total,
                    part_size,
                },
                Retry::Once,
            )
            .await
            .map_err(link_problem)?;
        progress.set_total(size);
        // Second pass: encrypt as a stream and send part by part.
        let mut f = std::fs::File::open(file).map_err(|e| Error::io(ctx("opening"), e))?;
        let mut enc = Some(Encryptor::new(&file_key, &mut OsRng));
        let mut pending: Vec<u8> = Vec::new();
        let mut index = 0u64;
        let mut read = 0u64;
        let upload_base = format!("{}/uploads/{}", self.base(), status.upload_id);
        let part = usize::try_from(part_size).map_err(|_| Error::Usage("part size".into()))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(ctx("reading"), e))?;
            read += n as u64;
            if n == 0 {
                if read != size {
                    return Err(Error::Usage(format!(
                        "{} changed while uploading",
                        file.display()
                    )));
                }
                if let Some(e) = enc.take() {
                    e.finish(&mut pending);
                }
            } else if let Some(e) = enc.as_mut() {
                e.update(&buf[..n], &mut pending);
                progress.advance(n as u64);
            }
            while pending.len() >= part || (n == 0 && !pending.is_empty()) {
                let take = pending.len().min(part);
                let chunk: Vec<u8> = pending.drain(..take).collect();
                let len = chunk.len() as u64;
                let stored: api::PartStored = self
                    .http
                    .put_octets(
                        &format!("{upload_base}/parts/{index}"),
                        self.token.as_ref(),
                        chunk.into(),
                    )
                    .await
                    .map_err(link_problem)?;
                if stored.length != len || stored.part_index != index {
                    return Err(Error::integrity("the server stored another part"));
                }
                index += 1;
            }
            if n == 0 {
                break;
            }
        }
        self.http
            .no_content(
                Method::POST,
                &format!("{upload_base}/finalize"),
                self.token.as_ref(),
                Payload::Empty,
                Retry::Idempotent,
            )
            .await
            .map_err(link_problem)?;
        Ok(FiledDrop {
            folder: String::new(),
            name,
            size,
        })
    }
}

async fn list_children_link(link: &OpenLink, folder: NodeId) -> Result<Vec<Vec<u8>>> {
    list_children(
        &link.http,
        &format!("{}/nodes/{folder}/children", link.base()),
        link.token.as_ref(),
        folder,
    )
    .await
    .map_err(link_problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_references_are_ids_or_urls() {
        let secret = link::LinkSecret::generate(&mut OsRng);
        let id = secret.link_id();
        let url = LinkUrl::new("http://127.0.0.1:8080", secret, true)
            .expect("url")
            .to_string();
        assert_eq!(parse_link_ref(&url).expect("url"), id);
        assert_eq!(parse_link_ref(&id.to_b64()).expect("id"), id);
        // A URL whose fragment does not derive its path's id, and garbage, are usage errors.
        let other = LinkUrl::new(
            "http://127.0.0.1:8080",
            link::LinkSecret::generate(&mut OsRng),
            true,
        )
        .expect("url")
        .to_string();
        let (head, _) = url.split_once('#').expect("fragment");
        let (_, frag) = other.split_once('#').expect("fragment");
        for bad in [format!("{head}#{frag}"), "nope".to_owned(), String::new()] {
            assert!(
                matches!(parse_link_ref(&bad), Err(Error::Usage(_))),
                "{bad}"
            );
        }
    }
}
