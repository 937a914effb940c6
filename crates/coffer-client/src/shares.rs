//! Shared folders (spec §8, §11.10): add a member after verifying their identity, remove a
//! member (rotation), list, leave, and [`Client::incoming`]: the folders shared with this
//! account, which the path resolver shows as `/shared/OWNER/NAME`.
//!
//! Every share record is verified against its owner's pinned identity
//! ([`Client::lookup_identity`]), every grant against the share record and this account's keys,
//! and every node record against the share's writers; a member is added only after their
//! identity chain verified and was pinned (or matched the pin).

use std::sync::Arc;

use coffer_core::api;
use coffer_core::encoding::{decode, encode, ByteBuf};
use coffer_core::ids::{NodeId, ShareId};
use coffer_core::metadata::{open_metadata, Metadata};
use coffer_core::primitives::{SecretKey, VerifyingKey};
use coffer_core::rotation::{self, RemoveMember};
use coffer_core::share::{
    self, GrantExpectation, GranterKeys, RecipientKeys, ShareRecord, SignedShare, PERMISSION_READ,
    PERMISSION_WRITE,
};
use coffer_core::tree::{self, FolderKey, NodeExpectation, NodeRecord};
use rand_core::OsRng;
use reqwest::Method;

use crate::error::{Error, Result};
use crate::files::{RemoteNode, RemotePath, Resolved, TreeScope};
use crate::http::{Bearer, Payload, Retry};
use crate::identity::pinned_identity;
use crate::{now, Client};

/// A folder another account shares with this one.
#[derive(Debug, Clone)]
pub struct IncomingShare {
    /// The owner's user name.
    pub owner: String,
    /// The folder's name (from its metadata).
    pub name: String,
    /// The share.
    pub share_id: ShareId,
    /// This account's permission ([`PERMISSION_READ`] or [`PERMISSION_WRITE`]).
    pub permission: u64,
    /// The shared folder's root, verified, with its key from this account's grant and a
    /// [`TreeScope`] naming who may write in it.
    pub root: RemoteNode,
}

/// One member of a share, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberInfo {
    /// The member's user name.
    pub user: String,
    /// `"read"` or `"write"`.
    pub permission: &'static str,
    /// The member identity generation the share names.
    pub identity_generation: u64,
}

/// A share this account owns, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OwnedShare {
    /// The share id.
    pub share_id: String,
    /// The shared folder's name.
    pub folder: String,
    /// The share generation (one more per removal).
    pub generation: u64,
    /// The members.
    pub members: Vec<MemberInfo>,
    /// Members who left and are still named (remove them to rotate the keys).
    pub departed: usize,
}

/// What `share add` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Added {
    /// The share id.
    pub share_id: String,
    /// Whether the share was created by this call.
    pub created: bool,
    /// The member's verified fingerprint.
    pub fingerprint: String,
    /// The member's identity generation.
    pub identity_generation: u64,
    /// Whether the member's identity was pinned by this call (first use).
    pub first_use: bool,
}

fn permission_name(p: u64) -> &'static str {
    if p == PERMISSION_WRITE {
        "write"
    } else {
        "read"
    }
}

/// Decodes a signed share record without verifying it, to learn whom to verify it against.
fn peek_share(signed: &[u8]) -> Result<ShareRecord> {
    let outer: SignedShare = decode(signed)?;
    Ok(decode(&outer.record)?)
}

/// Pages through `GET {path}` (a children listing) and returns every signed record.
pub(crate) async fn list_children(
    http: &crate::http::Http,
    path: &str,
    bearer: Option<&Bearer>,
    parent: NodeId,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = match &cursor {
            Some(c) => format!("{path}?cursor={c}"),
            None => path.to_owned(),
        };
        let page: api::NodeList = http.get(&p, bearer).await?;
        if page.parent_id != parent {
            return Err(Error::integrity("children listing of another folder"));
        }
        out.extend(page.records.into_iter().map(ByteBuf::into_vec));
        match page.next_cursor {
            Some(c) => cursor = Some(coffer_core::encoding::b64url_encode(&c)),
            None => return Ok(out),
        }
    }
}

/// Verifies a child record listed under `parent` (written by one of `authors`) and opens its
/// node key with the parent's current folder key.
pub(crate) fn open_child(
    signed: &[u8],
    parent: &NodeRecord,
    parent_key: &FolderKey,
    authors: &[VerifyingKey],
) -> Result<(NodeRecord, SecretKey)> {
    let peek = tree::verify_node_signature(signed)?;
    let record = tree::verify_node(
        signed,
        &NodeExpectation {
            node_id: peek.node_id,
            parent: Some((parent.node_id, parent.key_generation)),
            key_generation: None,
        },
        authors,
    )?;
    let key = record.open_node_key(parent, parent_key)?;
    Ok((record, key))
}

/// Opens a node's metadata with its node key.
pub(crate) fn node_metadata(record: &NodeRecord, key: &SecretKey) -> Result<Metadata> {
    Ok(open_metadata(
        &record.metadata_key(key)?,
        &record.node_id,
        record.metadata_revision,
        &record.sealed_metadata,
    )?)
}

/// The verified subtree of `folder` (the folder first, then every node below it), as records
/// with their keys, reading with the session (`/v1/nodes/...`).
pub(crate) async fn subtree(
    client: &Client,
    folder: &NodeRecord,
    folder_key: &SecretKey,
    authors: &[VerifyingKey],
) -> Result<Vec<(NodeRecord, SecretKey)>> {
    let bearer = client.bearer()?.clone();
    let mut out = vec![(folder.clone(), folder_key.clone())];
    let mut i = 0;
    while i < out.len() {
        let (rec, key) = out[i].clone();
        i += 1;
        if !rec.is_folder() {
            continue;
        }
        let fk = rec.folder_key(key);
        let kids = list_children(
            client.http(),
            &format!("/v1/nodes/{}/children", rec.node_id),
            Some(&bearer),
            rec.node_id,
        )
        .await?;
        for signed in kids {
            out.push(open_child(&signed, &rec, &fk, authors)?);
        }
    }
    Ok(out)
}

impl Client {
    /// The folders shared with this account, each verified: the share record against the
    /// owner's pinned identity, this account's grant of the current generation, and the shared
    /// folder's record.
    ///
    /// # Errors
    /// [`Error::Integrity`] when a share record, grant or node does not verify;
    /// [`Error::IdentityChanged`] when an owner's identity changed without a valid chain.
    pub async fn incoming(&self) -> Result<Vec<IncomingShare>> {
        let s = self.session()?;
        let list: api::ShareList = self
            .http()
            .get("/v1/shares", Some(&s.token))
            .await
            .map_err(crate::account::session_problem)?;
        let mut out = Vec::with_capacity(list.member_of.len());
        for entry in &list.member_of {
            out.push(self.open_incoming(entry).await?);
        }
        out.sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
        Ok(out)
    }

    async fn open_incoming(&self, entry: &api::ShareEntry) -> Result<IncomingShare> {
        let s = self.session()?;
        let peek = peek_share(&entry.signed_share)?;
        let owner = self.lookup_identity(&peek.owner.user_name).await?;
        let owner_key = owner.current.signing_key;
        let record = share::verify_share(&entry.signed_share, entry.share_id, &owner_key, 0)
            .map_err(|e| {
                Error::integrity(format!(
                    "share record of {} does not verify under their current identity: {e}",
                    peek.owner.user_name
                ))
            })?;
        let me = record
            .member(&s.username)
            .ok_or_else(|| Error::integrity("a share listed for this account does not name it"))?;
        let permission = me.permission;
        let grants: api::MyGrants = self
            .http()
            .get(
                &format!("/v1/shares/{}/grants/mine", entry.share_id),
                Some(&s.token),
            )
            .await?;
        if grants.share_id != entry.share_id {
            return Err(Error::integrity("grants of another share"));
        }
        let grant = grants
            .grants
            .iter()
            .find(|g| g.generation == record.generation)
            .ok_or_else(|| Error::integrity("no grant of the share's current generation"))?;
        let secrets = &s.account.secrets;
        let (_, folder_key) = share::open_grant(
            &grant.grant,
            &GrantExpectation {
                share_id: entry.share_id,
                generation: record.generation,
                granter: pinned_identity(&owner.current),
            },
            &RecipientKeys {
                user_name: &s.username,
                identity_generation: secrets.identity_generation,
                secret: &secrets.identity.agreement,
            },
        )?;
        let node: api::NodeResponse = self
            .http()
            .get(&format!("/v1/nodes/{}", record.folder_id), Some(&s.token))
            .await?;
        let peek_node = tree::verify_node_signature(&node.signed_node)?;
        let parent = peek_node
            .parent_id
            .ok_or_else(|| Error::integrity("a shared folder is a root"))?;
        let folder = tree::verify_node(
            &node.signed_node,
            &NodeExpectation {
                node_id: record.folder_id,
                parent: Some((parent, u64::MAX)),
                key_generation: Some(record.generation),
            },
            &[owner_key],
        )?;
        record.check_folder(&folder)?;
        let metadata = node_metadata(&folder, &folder_key)?;
        let scope = TreeScope {
            authors: record.writers()?,
            shared_by: Some(record.owner.user_name.clone()),
        };
        Ok(IncomingShare {
            owner: record.owner.user_name.clone(),
            name: metadata.name().to_owned(),
            share_id: entry.share_id,
            permission,
            root: RemoteNode {
                id: folder.node_id,
                record: folder,
                signed: node.signed_node.into_vec(),
                key: folder_key,
                revision: 0,
                metadata,
                scope: Arc::new(scope),
            },
        })
    }

    /// The shares this account owns, each verified under its own identity, with their revision
    /// and departed count.
    async fn owned_shares(&self) -> Result<Vec<(api::ShareEntry, ShareRecord)>> {
        let s = self.session()?;
        let list: api::ShareList = self
            .http()
            .get("/v1/shares", Some(&s.token))
            .await
            .map_err(crate::account::session_problem)?;
        let mine = s.account.secrets.identity.signing.verifying_key();
        let mut out = Vec::with_capacity(list.owned.len());
        for e in list.owned {
            let rec = share::verify_share(&e.signed_share, e.share_id, &mine, 0)?;
            out.push((e, rec));
        }
        Ok(out)
    }

    /// Resolves `path` to a folder of this account's own tree (not `/`, not under `/shared`).
    async fn own_folder(&self, path: &RemotePath) -> Result<RemoteNode> {
        match self.resolve(path).await? {
            Resolved::Node(n) if n.scope.shared_by.is_some() => Err(Error::Usage(format!(
                "{path} is in a folder shared with you: only its owner manages the share"
            ))),
            Resolved::Node(n) if !n.is_folder() => {
                Err(Error::Usage(format!("{path} is a file: share a folder")))
            }
            Resolved::Node(n) if n.record.parent_id.is_none() => Err(Error::Usage(
                "the root folder cannot be shared: share a folder in it".into(),
            )),
            Resolved::Node(n) => Ok(*n),
            _ => Err(Error::Usage(format!("{path} is not a folder of yours"))),
        }
    }

    /// Shares the folder `path` with `user` (`write`: may also write), after fetching their
    /// identity from the directory, verifying its chain and checking it against the pin store
    /// (pinned on first use). Creates the share, or adds the member to the existing one.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user or path; [`Error::IdentityChanged`];
    /// [`Error::Conflict`] when `user` is already a member.
    pub async fn share_add(&self, path: &RemotePath, user: &str, write: bool) -> Result<Added> {
        let s = self.session()?;
        if user == s.username {
            return Err(Error::Usage(
                "you cannot share a folder with yourself".into(),
            ));
        }
        let folder = self.own_folder(path).await?;
        let member_id = self.lookup_identity(user).await?;
        let permission = if write {
            PERMISSION_WRITE
        } else {
            PERMISSION_READ
        };
        let member = member_id.pinned().as_member(permission);
        let secrets = &s.account.secrets;
        let granter = GranterKeys {
            signing_key: &secrets.identity.signing,
            user_name: &s.username,
            identity_generation: secrets.identity_generation,
        };
        let folder_key = folder.record.folder_key(folder.key.clone());
        let existing = self
            .owned_shares()
            .await?
            .into_iter()
            .find(|(_, r)| r.folder_id == folder.id);
        let (share_id, created) = match existing {
            None => {
                let share_id = ShareId::generate(&mut OsRng);
                let (_, signed, grants) =
                    share::create_share(&granter, share_id, &folder_key, vec![member], &mut OsRng)?;
                let body = api::ShareCreateRequest {
                    share_id,
                    root_node_id: folder.id,
                    signed_share: ByteBuf::from(encode(&signed)),
                    grants: grants
                        .iter()
                        .map(|g| api::GrantEntry {
                            member: member_id.account_id,
                            grant: ByteBuf::from(encode(g)),
                        })
                        .collect(),
                    node_records: Vec::new(),
                };
                let up: api::ShareUpdated = self
                    .http()
                    .post("/v1/shares", Some(&s.token), &body, Retry::Idempotent)
                    .await
                    .map_err(|e| share_problem(e, path))?;
                if up.share_id != share_id {
                    return Err(Error::integrity("share created under another id"));
                }
                (share_id, true)
            }
            Some((entry, record)) => {
                if record.member(user).is_some() {
                    return Err(Error::Conflict(format!(
                        "{user} is already a member of {path}"
                    )));
                }
                let mut next = record.clone();
                next.members.push(member.clone());
                let signed = next.sign(&secrets.identity.signing)?;
                let grant = share::issue_grant(&granter, &next, &member, &folder_key, &mut OsRng)?;
                let body = api::MemberAddRequest {
                    expected_revision: entry.revision,
                    signed_share: ByteBuf::from(encode(&signed)),
                    grant: api::GrantEntry {
                        member: member_id.account_id,
                        grant: ByteBuf::from(encode(&grant)),
                    },
                };
                let _: api::ShareUpdated = self
                    .http()
                    .post(
                        &format!("/v1/shares/{}/members", entry.share_id),
                        Some(&s.token),
                        &body,
                        Retry::Idempotent,
                    )
                    .await
                    .map_err(|e| share_problem(e, path))?;
                (entry.share_id, false)
            }
        };
        Ok(Added {
            share_id: share_id.to_b64(),
            created,
            fingerprint: member_id.current.fingerprint.to_string(),
            identity_generation: member_id.current.generation,
            first_use: member_id.outcome == crate::identity::PinOutcome::FirstUse,
        })
    }

    /// Removes `user` from the share of the folder `path`: a new share generation (spec §9.2,
    /// lazy mode): every folder of the shared subtree gets a new key, every child is re-sealed,
    /// the remaining members get grants of the new generation; the server applies it atomically
    /// and the removed member loses access at once. Returns the new generation and the ids
    /// (base64url) of the links that were re-sealed.
    ///
    /// Links to folders of the subtree carry the old generation's folder key and would not read
    /// what is created afterwards; they are re-sealed (spec §9.3, §11.11.7) for the new
    /// generation under the same URL, which from then on reads files added after the removal
    /// too. Links to files keep working unchanged (a lazy rotation keeps file node keys). A link
    /// whose URL the removed member may have seen should also be rotated (`link_rotate`, §9.3).
    ///
    /// # Errors
    /// [`Error::NotFound`] when `user` is not a member; [`Error::Conflict`] for a concurrent
    /// change.
    pub async fn share_remove(&self, path: &RemotePath, user: &str) -> Result<(u64, Vec<String>)> {
        let s = self.session()?;
        let folder = self.own_folder(path).await?;
        let (parent_path, _) = path
            .split_last()
            .ok_or_else(|| Error::Usage("the root folder is not shared".into()))?;
        let parent = match self.resolve(&parent_path).await? {
            Resolved::Node(n) => *n,
            _ => return Err(Error::Usage(format!("{parent_path} is not a folder"))),
        };
        let (entry, record) = self
            .owned_shares()
            .await?
            .into_iter()
            .find(|(_, r)| r.folder_id == folder.id)
            .ok_or_else(|| Error::NotFound(format!("{path} is not shared")))?;
        if record.member(user).is_none() {
            return Err(Error::NotFound(format!("{user} is not a member of {path}")));
        }
        // The member's account id, for the endpoint: from the directory (no pin needed: the
        // record names the identity that is removed).
        let found: api::UserLookupResponse = self
            .http()
            .get(&format!("/v1/users/{user}"), Some(&s.token))
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::NotFound) => {
                    Error::NotFound(format!("no user named {user}"))
                }
                _ => e,
            })?;
        let mut authors = record.writers()?;
        authors.push(s.account.secrets.identity.signing.verifying_key());
        let nodes = subtree(self, &folder.record, &folder.key, &authors).await?;
        let records: Vec<NodeRecord> = nodes.into_iter().map(|(r, _)| r).collect();
        let secrets = &s.account.secrets;
        let granter = GranterKeys {
            signing_key: &secrets.identity.signing,
            user_name: &s.username,
            identity_generation: secrets.identity_generation,
        };
        let out = rotation::remove_member_lazy(
            &RemoveMember {
                owner: &granter,
                share: &record,
                removed: user,
                parent_key: &parent.record.folder_key(parent.key.clone()),
                folder_key: &folder.record.folder_key(folder.key.clone()),
                subtree: &records,
                time: now(),
            },
            &mut OsRng,
        )?;
        let body = api::MemberRemoveRequest {
            expected_revision: entry.revision,
            rotation_bundle: ByteBuf::from(encode(&out.bundle)),
        };
        let up: api::ShareUpdated = self
            .http()
            .call(
                Method::DELETE,
                &format!("/v1/shares/{}/members/{}", entry.share_id, found.account_id),
                Some(&s.token),
                &body,
                Retry::Idempotent,
            )
            .await
            .map_err(|e| share_problem(e, path))?;
        let resealed = self.reseal_links_to(&out.folder_keys).await?;
        Ok((up.generation, resealed))
    }

    /// Re-seals every link of this account to one of `folders` for that folder's new key
    /// generation (spec §9.3, §10.11): same secret, URL and options; the server replaces the
    /// record under the same link id (`PUT /v1/links/{link-id}`, §11.11.7). Returns the ids
    /// (base64url) of the re-sealed links.
    async fn reseal_links_to(&self, folders: &[FolderKey]) -> Result<Vec<String>> {
        let s = self.session()?;
        let list: api::LinkList = self.http().get("/v1/links", Some(&s.token)).await?;
        let owner_key =
            coffer_core::account::link_entries_key(&s.account.master_key, &s.account_id());
        let mut resealed = Vec::new();
        for l in list.links {
            let Some(fk) = folders.iter().find(|k| k.folder_id == l.node_id) else {
                continue;
            };
            let entry = coffer_core::link::open_owner_entry(&owner_key, l.link_id, &l.owner_entry)?;
            let target = coffer_core::link::LinkTarget {
                node_id: fk.folder_id,
                node_kind: coffer_core::link::NodeKind::Folder,
                generation: fk.generation,
                node_key: fk.key.clone(),
            };
            let new = coffer_core::link::reseal_link(&mut OsRng, &entry, &target)?;
            let body = api::LinkResealRequest {
                link_record: ByteBuf::from(new.record),
            };
            self.http()
                .no_content(
                    Method::PUT,
                    &format!("/v1/links/{}", l.link_id),
                    Some(&s.token),
                    crate::http::Payload::Cbor(api::Body::to_bytes(&body)),
                    Retry::Idempotent,
                )
                .await?;
            resealed.push(l.link_id.to_b64());
        }
        Ok(resealed)
    }

    /// The shares this account owns (verified), with their members.
    ///
    /// # Errors
    /// [`Error::Integrity`] for a share record that does not verify.
    pub async fn shares_owned(&self) -> Result<Vec<OwnedShare>> {
        let s = self.session()?;
        let mut out = Vec::new();
        for (entry, record) in self.owned_shares().await? {
            let info: api::ShareResponse = self
                .http()
                .get(&format!("/v1/shares/{}", entry.share_id), Some(&s.token))
                .await?;
            let folder = self.folder_name_by_id(record.folder_id).await?;
            out.push(OwnedShare {
                share_id: entry.share_id.to_b64(),
                folder,
                generation: record.generation,
                members: record
                    .members
                    .iter()
                    .map(|m| MemberInfo {
                        user: m.user_name.clone(),
                        permission: permission_name(m.permission),
                        identity_generation: m.identity_generation,
                    })
                    .collect(),
                departed: info.departed.len(),
            });
        }
        Ok(out)
    }

    /// The path of a node of this account's tree, by id, walking up to the root.
    pub(crate) async fn folder_name_by_id(&self, id: NodeId) -> Result<String> {
        let chain = self.own_ancestry(id).await?;
        let mut p = String::new();
        for (_, _, m) in chain.iter().rev().skip(1) {
            p.push('/');
            p.push_str(m.name());
        }
        if p.is_empty() {
            p.push('/');
        }
        Ok(p)
    }

    /// The records from `id` up to the root of this account's tree (`id` first), verified from
    /// the root down with the account's keys, each with its node key and metadata.
    pub(crate) async fn own_ancestry(
        &self,
        id: NodeId,
    ) -> Result<Vec<(NodeRecord, SecretKey, Metadata)>> {
        let s = self.session()?;
        let mut signed = Vec::new();
        let mut next = Some(id);
        while let Some(n) = next {
            if signed.len() > 4096 {
                return Err(Error::integrity("a node's ancestry does not end"));
            }
            let r: api::NodeResponse = self
                .http()
                .get(&format!("/v1/nodes/{n}"), Some(&s.token))
                .await
                .map_err(|e| match e.problem_kind() {
                    Some(api::ProblemKind::NotFound) => Error::NotFound(format!("node {n}")),
                    _ => e,
                })?;
            let peek = tree::verify_node_signature(&r.signed_node)?;
            if peek.node_id != n {
                return Err(Error::integrity("the server answered with another node"));
            }
            next = peek.parent_id;
            signed.push(r.signed_node.into_vec());
        }
        // Verify from the root down.
        let secrets = &s.account.secrets;
        let me = [secrets.identity.signing.verifying_key()];
        let mut out: Vec<(NodeRecord, SecretKey, Metadata)> = Vec::with_capacity(signed.len());
        for (i, bytes) in signed.iter().rev().enumerate() {
            let (rec, key) = if i == 0 {
                let rec = tree::verify_node(
                    bytes,
                    &NodeExpectation {
                        node_id: secrets.root_node_id,
                        parent: None,
                        key_generation: None,
                    },
                    &me,
                )?;
                (rec, secrets.root_node_key.clone())
            } else {
                let (prec, pkey, _) = out
                    .last()
                    .ok_or_else(|| Error::integrity("ancestry order"))?;
                open_child(bytes, prec, &prec.folder_key(pkey.clone()), &me)?
            };
            let m = node_metadata(&rec, &key)?;
            out.push((rec, key, m));
        }
        out.reverse();
        Ok(out)
    }

    /// Leaves the folder shared with this account at `path` (`/shared/OWNER/NAME`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when nothing is shared under that path.
    pub async fn share_leave(&self, path: &RemotePath) -> Result<()> {
        let s = self.session()?;
        let names = path.names();
        if names.len() != 3 || names[0] != crate::files::SHARED_DIR {
            return Err(Error::Usage(format!(
                "{path}: give the shared folder as /shared/OWNER/NAME"
            )));
        }
        let inc = self
            .incoming()
            .await?
            .into_iter()
            .find(|i| i.owner == names[1] && i.name == names[2])
            .ok_or_else(|| Error::NotFound(format!("{path} is not shared with you")))?;
        self.http()
            .no_content(
                Method::POST,
                &format!("/v1/shares/{}/leave", inc.share_id),
                Some(&s.token),
                Payload::Empty,
                Retry::Idempotent,
            )
            .await?;
        Ok(())
    }
}

/// Gives share errors a clear message.
fn share_problem(e: Error, path: &RemotePath) -> Error {
    match e.problem_kind() {
        Some(api::ProblemKind::AlreadyExists) => Error::Conflict(format!(
            "{path} cannot be shared: it is inside or above another shared folder, or already a member"
        )),
        Some(api::ProblemKind::RevisionMismatch) => Error::Conflict(format!(
            "the share of {path} changed meanwhile: run the command again"
        )),
        Some(api::ProblemKind::NotFound) => Error::NotFound(path.to_string()),
        _ => e,
    }
}
