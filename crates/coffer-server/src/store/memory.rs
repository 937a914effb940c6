//! In-memory implementation of both storage traits.
//!
//! A second backend that proves the traits carry no SQLite-ism, and a fast one for unit tests.
//! Every mutation runs against a copy of the state that replaces the original only if the whole
//! operation succeeds, so operations are atomic exactly as the traits require. Nothing is
//! persisted; the cost of each mutation is linear in the state's size: not for production.

use super::{
    check_finalize_over, check_finalize_quota, check_member_add, check_rotation, expect_revision,
    finalize_target,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use super::*;

#[derive(Debug, Clone, Default)]
struct State {
    handshakes: HashMap<HandshakeId, Handshake>,
    accounts: HashMap<AccountId, Account>,
    retained: HashSet<Digest>,
    identities: HashMap<AccountId, IdentityChain>,
    sessions: HashMap<SessionId, (Session, Digest)>,
    nodes: BTreeMap<NodeId, Node>,
    uploads: HashMap<UploadId, Upload>,
    shares: HashMap<ShareId, Share>,
    grants: BTreeMap<(ShareId, AccountId, u64), Vec<u8>>,
    links: HashMap<LinkId, Link>,
    link_tokens: HashMap<Digest, (LinkId, u64)>,
    drops: HashMap<UploadId, DropRecord>,
    server_secrets: HashMap<String, ServerSecret>,
}

/// The SHA-256 of a retained username (usernames of deleted accounts are kept only as hashes).
pub(crate) fn username_hash(username: &str) -> Digest {
    Sha256::digest(username.as_bytes()).into()
}

impl State {
    fn live_upload(&self, id: &UploadId, now: u64) -> Option<&Upload> {
        self.uploads.get(id).filter(|u| u.upload.expires_at > now)
    }

    fn storage_used(&self, owner: &AccountId, now: u64) -> u64 {
        let nodes: u64 = self
            .nodes
            .values()
            .filter(|n| &n.node.owner == owner)
            .map(|n| n.content_length)
            .sum();
        let uploads: u64 = self
            .uploads
            .values()
            .filter(|u| &u.upload.owner == owner && u.upload.expires_at > now)
            .map(|u| u.upload.total_length)
            .sum();
        let drops: u64 = self
            .drops
            .values()
            .filter(|d| &d.owner == owner)
            .map(|d| d.total_length)
            .sum();
        nodes.saturating_add(uploads).saturating_add(drops)
    }

    fn subtree(&self, root: &NodeId) -> Vec<NodeId> {
        if !self.nodes.contains_key(root) {
            return Vec::new();
        }
        let mut by_parent: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for n in self.nodes.values() {
            if let Some(p) = n.node.parent_id {
                by_parent.entry(p).or_default().push(n.node.node_id);
            }
        }
        let mut out = vec![*root];
        let mut seen: HashSet<NodeId> = out.iter().copied().collect();
        let mut i = 0;
        while i < out.len() {
            if let Some(children) = by_parent.get(&out[i]) {
                for c in children {
                    if seen.insert(*c) {
                        out.push(*c);
                    }
                }
            }
            i += 1;
        }
        out
    }

    fn update_node(&mut self, update: NodeUpdate) -> StoreResult<Node> {
        let stored = self
            .nodes
            .get(&update.node.node_id)
            .ok_or(StoreError::NotFound)?;
        expect_revision(stored.node.revision, update.expected_revision)?;
        if let Some(p) = update.node.parent_id {
            if !self.nodes.contains_key(&p) {
                return Err(StoreError::NotFound);
            }
        }
        let node = Node {
            node: update.node,
            ..stored.clone()
        };
        self.nodes.insert(node.node.node_id, node.clone());
        Ok(node)
    }

    fn revoke_link(&mut self, link_id: &LinkId) -> Removed {
        let mut removed = Removed::default();
        if let Some(l) = self.links.remove(link_id) {
            removed.links.push(*link_id);
            // Finished drops outlive the link: they keep its last record, which opens them.
            for d in self.drops.values_mut() {
                if d.link_id == *link_id && d.link_record.is_none() {
                    d.link_record = Some(l.link.link_record.clone());
                }
            }
        }
        self.link_tokens.retain(|_, (l, _)| l != link_id);
        let drops: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|u| matches!(&u.upload.target, UploadTarget::Drop { link_id: l, .. } if l == link_id))
            .map(|u| u.upload.upload_id)
            .collect();
        for id in drops {
            if let Some(u) = self.uploads.remove(&id) {
                removed.uploads.push(u);
            }
        }
        removed
    }

    fn delete_share(&mut self, share_id: &ShareId) -> Removed {
        let mut removed = Removed::default();
        if self.shares.remove(share_id).is_some() {
            removed.shares.push(*share_id);
        }
        self.grants.retain(|(s, _, _), _| s != share_id);
        removed
    }

    /// Aborts the unfinished uploads of `creators` into the node set.
    fn abort_uploads_into(
        &mut self,
        creators: &[AccountId],
        nodes: &HashSet<NodeId>,
    ) -> Vec<Upload> {
        let ids: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|u| {
                u.upload.creator.is_some_and(|c| creators.contains(&c))
                    && matches!(&u.upload.target, UploadTarget::Node { node_id, parent_id, .. }
                        if nodes.contains(node_id) || nodes.contains(parent_id))
            })
            .map(|u| u.upload.upload_id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.uploads.remove(&id))
            .collect()
    }

    fn remove_nodes(&mut self, ids: &[NodeId]) -> Removed {
        let set: HashSet<NodeId> = ids.iter().copied().collect();
        let mut removed = Removed::default();
        for id in ids {
            if let Some(n) = self.nodes.remove(id) {
                removed.nodes += 1;
                removed.blob_keys.extend(n.blob_key);
            }
        }
        let uploads: Vec<UploadId> = self
            .uploads
            .values()
            .filter(|u| {
                matches!(&u.upload.target, UploadTarget::Node { node_id, parent_id, .. }
                if set.contains(node_id) || set.contains(parent_id))
            })
            .map(|u| u.upload.upload_id)
            .collect();
        for id in uploads {
            removed.uploads.extend(self.uploads.remove(&id));
        }
        let links: Vec<LinkId> = self
            .links
            .values()
            .filter(|l| set.contains(&l.link.node_id))
            .map(|l| l.link.link_id)
            .collect();
        for l in links {
            removed.extend(self.revoke_link(&l));
        }
        let shares: Vec<ShareId> = self
            .shares
            .values()
            .filter(|s| set.contains(&s.share.root_node_id))
            .map(|s| s.share.share_id)
            .collect();
        for s in shares {
            removed.extend(self.delete_share(&s));
        }
        removed
    }

    fn revoke_other_sessions(&mut self, account: &AccountId, keep: Option<&SessionId>) -> u64 {
        let before = self.sessions.len();
        self.sessions
            .retain(|id, (s, _)| &s.account_id != account || Some(id) == keep);
        (before - self.sessions.len()) as u64
    }

    fn session_live(s: &Session, now: u64, idle_ttl: u64) -> bool {
        now < s.expires_at && now < s.last_used_at.saturating_add(idle_ttl)
    }

    fn insert_link(&mut self, link: LinkWrite) -> StoreResult<Link> {
        if self.links.contains_key(&link.link_id) {
            return Err(StoreError::AlreadyExists);
        }
        let link = Link { link, downloads: 0 };
        self.links.insert(link.link.link_id, link.clone());
        Ok(link)
    }

    fn link_access(&self, link_id: &LinkId, now: u64) -> LinkAccess {
        LinkAccess::of(self.links.get(link_id).cloned(), now)
    }
}

/// The in-memory metadata store.
#[derive(Debug, Default)]
pub struct MemoryMetadataStore {
    state: Mutex<State>,
}

impl MemoryMetadataStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (see `tx`).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on a copy of the state and commits it only on success.
    fn tx<R>(&self, f: impl FnOnce(&mut State) -> StoreResult<R>) -> StoreResult<R> {
        let mut guard = self.lock();
        let mut copy = guard.clone();
        let out = f(&mut copy)?;
        *guard = copy;
        Ok(out)
    }

    /// Every stored value mentioning an account, rendered as bytes, by table (for the deletion
    /// scan of the test suite): ids, usernames, records.
    pub fn dump_values(&self) -> Vec<(String, Vec<u8>)> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut push = |t: &str, v: &[u8]| out.push((t.to_owned(), v.to_vec()));
        for h in s.handshakes.values() {
            push("handshakes", &h.id);
            push("handshakes", h.username.as_deref().unwrap_or("").as_bytes());
            push(
                "handshakes",
                h.account_id.as_ref().map_or(&[][..], |a| a.as_bytes()),
            );
            push("handshakes", &h.state);
        }
        for a in s.accounts.values() {
            push("accounts", a.account_id.as_bytes());
            push("accounts", a.username.as_bytes());
            push("accounts", &a.password_file);
            push("accounts", &a.key_bundle);
        }
        for r in &s.retained {
            push("retained_usernames", r);
        }
        for (s2, _) in s.sessions.values() {
            push("sessions", s2.account_id.as_bytes());
            push("sessions", s2.label.as_bytes());
        }
        for n in s.nodes.values() {
            push("nodes", n.node.node_id.as_bytes());
            push("nodes", n.node.owner.as_bytes());
            push("nodes", &n.node.record);
        }
        for u in s.uploads.values() {
            push("uploads", u.upload.upload_id.as_bytes());
            push("uploads", u.upload.owner.as_bytes());
            push(
                "uploads",
                u.upload.creator.as_ref().map_or(&[][..], |a| a.as_bytes()),
            );
        }
        for sh in s.shares.values() {
            push("shares", sh.share.owner.as_bytes());
            push("shares", &sh.share.record);
            for (m, _) in &sh.share.members {
                push("share_members", m.as_bytes());
            }
            for d in &sh.departed {
                push("share_departed", d.as_bytes());
            }
        }
        for ((_, m, _), g) in &s.grants {
            push("grants", m.as_bytes());
            push("grants", g);
        }
        for l in s.links.values() {
            push("links", l.link.owner.as_bytes());
            push("links", &l.link.link_record);
            push("links", &l.link.owner_entry);
        }
        for d in s.drops.values() {
            push("drops", d.owner.as_bytes());
            push("drops", &d.envelope);
        }
        out
    }
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    async fn put_handshake(&self, handshake: Handshake, now: u64) -> StoreResult<()> {
        self.tx(|s| {
            s.handshakes.retain(|_, h| h.expires_at > now);
            if s.handshakes.contains_key(&handshake.id) {
                return Err(StoreError::AlreadyExists);
            }
            if handshake.kind == HandshakeKind::Registration {
                let (Some(name), Some(account)) = (&handshake.username, &handshake.account_id)
                else {
                    return Err(StoreError::Invalid(
                        "registration needs a username and an account id",
                    ));
                };
                let taken = s.accounts.values().any(|a| &a.username == name)
                    || s.retained.contains(&username_hash(name))
                    || s.handshakes.values().any(|h| {
                        h.kind == HandshakeKind::Registration && h.username.as_ref() == Some(name)
                    });
                if taken {
                    return Err(StoreError::UsernameTaken);
                }
                let id_used = s.accounts.contains_key(account)
                    || s.identities.contains_key(account)
                    || s.handshakes.values().any(|h| {
                        h.kind == HandshakeKind::Registration
                            && h.account_id.as_ref() == Some(account)
                    });
                if id_used {
                    return Err(StoreError::AlreadyExists);
                }
            }
            s.handshakes.insert(handshake.id, handshake);
            Ok(())
        })
    }

    async fn take_handshake(
        &self,
        id: HandshakeId,
        kind: HandshakeKind,
        now: u64,
    ) -> StoreResult<Option<Handshake>> {
        self.tx(|s| match s.handshakes.get(&id) {
            Some(h) if h.expires_at <= now => {
                s.handshakes.remove(&id);
                Ok(None)
            }
            Some(h) if h.kind == kind => Ok(s.handshakes.remove(&id)),
            _ => Ok(None),
        })
    }

    async fn create_account(&self, new: NewAccount, now: u64) -> StoreResult<Account> {
        self.tx(|s| {
            if s.accounts.contains_key(&new.account_id)
                || s.identities.contains_key(&new.account_id)
            {
                return Err(StoreError::AlreadyExists);
            }
            let reservation = s
                .handshakes
                .values()
                .find(|h| {
                    h.kind == HandshakeKind::Registration
                        && h.expires_at > now
                        && h.account_id == Some(new.account_id)
                        && h.username.as_deref() == Some(new.username.as_str())
                })
                .map(|h| h.id)
                .ok_or(StoreError::NotFound)?;
            if s.accounts.values().any(|a| a.username == new.username)
                || s.retained.contains(&username_hash(&new.username))
            {
                return Err(StoreError::UsernameTaken);
            }
            new.check_root()?;
            if s.nodes.contains_key(&new.root.node_id) {
                return Err(StoreError::AlreadyExists);
            }
            s.handshakes.remove(&reservation);
            let account = new.to_account();
            s.identities.insert(
                new.account_id,
                IdentityChain {
                    account_id: new.account_id,
                    generations: vec![new.identity],
                    deleted: false,
                },
            );
            s.nodes.insert(
                new.root.node_id,
                Node {
                    node: new.root,
                    content_revision: 0,
                    content_length: 0,
                    blob_key: None,
                },
            );
            s.accounts.insert(account.account_id, account.clone());
            Ok(account)
        })
    }

    async fn account(&self, account_id: AccountId) -> StoreResult<Option<Account>> {
        Ok(self.lock().accounts.get(&account_id).cloned())
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>> {
        Ok(self
            .lock()
            .accounts
            .values()
            .find(|a| a.username == username)
            .cloned())
    }

    async fn storage_used(&self, account_id: AccountId, now: u64) -> StoreResult<u64> {
        Ok(self.lock().storage_used(&account_id, now))
    }

    async fn change_password(&self, c: PasswordChange) -> StoreResult<AccountUpdated> {
        self.tx(|s| {
            let a = s
                .accounts
                .get_mut(&c.account_id)
                .ok_or(StoreError::NotFound)?;
            expect_revision(a.revision, c.expected_revision)?;
            a.revision += 1;
            a.password_file = c.password_file;
            a.key_bundle = c.key_bundle;
            let (revision, identity_generation) = (a.revision, a.identity_generation);
            s.handshakes
                .retain(|_, h| h.account_id != Some(c.account_id));
            let sessions_revoked = s.revoke_other_sessions(&c.account_id, Some(&c.keep_session));
            Ok(AccountUpdated {
                revision,
                identity_generation,
                sessions_revoked,
                removed: Removed::default(),
            })
        })
    }

    async fn recover_account(&self, r: Recovery) -> StoreResult<AccountUpdated> {
        self.tx(|s| {
            let a = s
                .accounts
                .get_mut(&r.account_id)
                .ok_or(StoreError::NotFound)?;
            expect_revision(a.revision, r.expected_revision)?;
            expect_revision(a.identity_generation, r.expected_generation)?;
            a.revision += 1;
            a.identity_generation += 1;
            a.password_file = r.password_file;
            a.key_bundle = r.key_bundle;
            let (revision, identity_generation) = (a.revision, a.identity_generation);
            s.identities
                .get_mut(&r.account_id)
                .ok_or(StoreError::NotFound)?
                .generations
                .push(r.identity);
            for n in r.nodes {
                if n.node.owner != r.account_id {
                    return Err(StoreError::Invalid(
                        "recovery re-keys only the account's nodes",
                    ));
                }
                s.update_node(n)?;
            }
            for rk in r.shares {
                let sh = s
                    .shares
                    .get_mut(&rk.share.share_id)
                    .ok_or(StoreError::NotFound)?;
                if sh.share.owner != r.account_id {
                    return Err(StoreError::Invalid(
                        "recovery re-keys only the account's shares",
                    ));
                }
                check_rotation(&sh.share, &rk.share)?;
                sh.departed = sh.departed_after(&rk.share, &[]);
                sh.share = rk.share;
                sh.revision += 1;
                let (share_id, generation) = (sh.share.share_id, sh.share.generation);
                s.grants
                    .retain(|(sid, _, g), _| sid != &share_id || *g >= generation);
                for g in rk.grants {
                    if g.share_id != share_id {
                        return Err(StoreError::Invalid("grant for another share"));
                    }
                    s.grants
                        .insert((g.share_id, g.member, g.generation), g.grant);
                }
            }
            let mut removed = Removed::default();
            let mut kept = HashSet::new();
            for (old, new) in r.links {
                match s.links.get(&old) {
                    Some(l) if l.link.owner == r.account_id => {}
                    _ => return Err(StoreError::NotFound),
                }
                if new.owner != r.account_id {
                    return Err(StoreError::Invalid("replacement link of another owner"));
                }
                removed.extend(s.revoke_link(&old));
                kept.insert(new.link_id);
                s.insert_link(new)?;
            }
            let others: Vec<LinkId> = s
                .links
                .values()
                .filter(|l| l.link.owner == r.account_id && !kept.contains(&l.link.link_id))
                .map(|l| l.link.link_id)
                .collect();
            for l in others {
                removed.extend(s.revoke_link(&l));
            }
            let account_links: HashSet<LinkId> = s
                .links
                .values()
                .filter(|l| l.link.owner == r.account_id)
                .map(|l| l.link.link_id)
                .collect();
            s.link_tokens.retain(|_, (l, _)| !account_links.contains(l));
            let uploads: Vec<UploadId> = s
                .uploads
                .values()
                .filter(|u| u.upload.creator == Some(r.account_id))
                .map(|u| u.upload.upload_id)
                .collect();
            for u in uploads {
                removed.uploads.extend(s.uploads.remove(&u));
            }
            s.handshakes
                .retain(|_, h| h.account_id != Some(r.account_id));
            let sessions_revoked = s.revoke_other_sessions(&r.account_id, Some(&r.keep_session));
            Ok(AccountUpdated {
                revision,
                identity_generation,
                sessions_revoked,
                removed,
            })
        })
    }

    async fn delete_account(&self, account_id: AccountId) -> StoreResult<Removed> {
        self.tx(|s| {
            let account = s.accounts.remove(&account_id).ok_or(StoreError::NotFound)?;
            s.retained.insert(username_hash(&account.username));
            if let Some(chain) = s.identities.get_mut(&account_id) {
                chain.deleted = true;
            }
            let mut removed = Removed::default();
            let owned: Vec<NodeId> = s
                .nodes
                .values()
                .filter(|n| n.node.owner == account_id)
                .map(|n| n.node.node_id)
                .collect();
            removed.extend(s.remove_nodes(&owned));
            let shares: Vec<ShareId> = s
                .shares
                .values()
                .filter(|sh| sh.share.owner == account_id)
                .map(|sh| sh.share.share_id)
                .collect();
            for sh in shares {
                removed.extend(s.delete_share(&sh));
            }
            let links: Vec<LinkId> = s
                .links
                .values()
                .filter(|l| l.link.owner == account_id)
                .map(|l| l.link.link_id)
                .collect();
            for l in links {
                removed.extend(s.revoke_link(&l));
            }
            let uploads: Vec<UploadId> = s
                .uploads
                .values()
                .filter(|u| u.upload.owner == account_id || u.upload.creator == Some(account_id))
                .map(|u| u.upload.upload_id)
                .collect();
            for u in uploads {
                removed.uploads.extend(s.uploads.remove(&u));
            }
            let drops: Vec<UploadId> = s
                .drops
                .values()
                .filter(|d| d.owner == account_id)
                .map(|d| d.drop_id)
                .collect();
            for d in drops {
                if let Some(d) = s.drops.remove(&d) {
                    removed.blob_keys.push(d.blob_key);
                }
            }
            // Its grants in other accounts' shares; it is recorded as departed there.
            s.grants.retain(|(_, m, _), _| m != &account_id);
            for sh in s.shares.values_mut() {
                if sh.share.members.iter().any(|(m, _)| m == &account_id)
                    && !sh.departed.contains(&account_id)
                {
                    sh.departed.push(account_id);
                    sh.revision += 1;
                }
            }
            s.handshakes.retain(|_, h| {
                h.account_id != Some(account_id)
                    && h.username.as_deref() != Some(account.username.as_str())
            });
            removed.sessions = s.revoke_other_sessions(&account_id, None);
            Ok(removed)
        })
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<Account> {
        self.tx(|s| {
            let Some(account) = s.accounts.get(&session.account_id).cloned() else {
                return Err(StoreError::NotFound);
            };
            if s.sessions.contains_key(&session.session_id)
                || s.sessions.values().any(|(_, h)| h == &session.token_hash)
            {
                return Err(StoreError::AlreadyExists);
            }
            let stored = Session {
                session_id: session.session_id,
                account_id: session.account_id,
                label: session.label,
                created_at: session.created_at,
                last_used_at: session.created_at,
                expires_at: session.expires_at,
            };
            s.sessions
                .insert(session.session_id, (stored, session.token_hash));
            Ok(account)
        })
    }

    async fn authenticate_session(
        &self,
        token_hash: &Digest,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Option<Session>> {
        let mut s = self.lock();
        let Some(id) = s
            .sessions
            .iter()
            .find(|(_, (_, h))| h == token_hash)
            .map(|(id, _)| *id)
        else {
            return Ok(None);
        };
        let live = s
            .sessions
            .get(&id)
            .is_some_and(|(x, _)| State::session_live(x, now, idle_ttl));
        if !live {
            s.sessions.remove(&id);
            return Ok(None);
        }
        Ok(s.sessions.get_mut(&id).map(|(x, _)| {
            x.last_used_at = x.last_used_at.max(now);
            x.clone()
        }))
    }

    async fn list_sessions(
        &self,
        account_id: AccountId,
        now: u64,
        idle_ttl: u64,
    ) -> StoreResult<Vec<Session>> {
        let s = self.lock();
        let mut out: Vec<Session> = s
            .sessions
            .values()
            .map(|(x, _)| x)
            .filter(|x| x.account_id == account_id && State::session_live(x, now, idle_ttl))
            .cloned()
            .collect();
        out.sort_by_key(|a| (a.created_at, a.session_id));
        Ok(out)
    }

    async fn revoke_session(
        &self,
        account_id: AccountId,
        session_id: SessionId,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        if s.sessions
            .get(&session_id)
            .is_some_and(|(x, _)| x.account_id == account_id)
        {
            s.sessions.remove(&session_id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn revoke_other_sessions(
        &self,
        account_id: AccountId,
        keep: SessionId,
    ) -> StoreResult<u64> {
        Ok(self.lock().revoke_other_sessions(&account_id, Some(&keep)))
    }

    async fn revoke_all_sessions(&self, account_id: AccountId) -> StoreResult<u64> {
        Ok(self.lock().revoke_other_sessions(&account_id, None))
    }

    async fn identity_chain(&self, account_id: AccountId) -> StoreResult<Option<IdentityChain>> {
        Ok(self.lock().identities.get(&account_id).cloned())
    }

    async fn append_identity(
        &self,
        account_id: AccountId,
        expected_generation: u64,
        identity: Vec<u8>,
    ) -> StoreResult<IdentityChain> {
        self.tx(|s| {
            let a = s
                .accounts
                .get_mut(&account_id)
                .ok_or(StoreError::NotFound)?;
            expect_revision(a.identity_generation, expected_generation)?;
            a.identity_generation += 1;
            let chain = s
                .identities
                .get_mut(&account_id)
                .ok_or(StoreError::NotFound)?;
            chain.generations.push(identity);
            Ok(chain.clone())
        })
    }

    async fn create_node(&self, node: NodeWrite, max_nodes: Option<u64>) -> StoreResult<Node> {
        self.tx(|s| {
            if s.nodes.contains_key(&node.node_id) {
                return Err(StoreError::AlreadyExists);
            }
            match node.parent_id {
                Some(p) if s.nodes.contains_key(&p) => {}
                _ => return Err(StoreError::NotFound),
            }
            if let Some(max) = max_nodes {
                if s.nodes
                    .values()
                    .filter(|n| n.node.owner == node.owner)
                    .count() as u64
                    >= max
                {
                    return Err(StoreError::LimitReached);
                }
            }
            let node = Node {
                node,
                content_revision: 0,
                content_length: 0,
                blob_key: None,
            };
            s.nodes.insert(node.node.node_id, node.clone());
            Ok(node)
        })
    }

    async fn node(&self, node_id: NodeId) -> StoreResult<Option<Node>> {
        Ok(self.lock().nodes.get(&node_id).cloned())
    }

    async fn children(
        &self,
        parent_id: NodeId,
        after: Option<NodeId>,
        limit: u32,
    ) -> StoreResult<Vec<Node>> {
        let s = self.lock();
        Ok(s.nodes
            .values()
            .filter(|n| {
                n.node.parent_id == Some(parent_id) && after.is_none_or(|a| n.node.node_id > a)
            })
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn node_path(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut cur = s.nodes.get(&node_id);
        while let Some(n) = cur {
            if out.contains(&n.node.node_id) || out.len() > MAX_DEPTH {
                return Err(StoreError::backend("node path does not end at a root"));
            }
            out.push(n.node.node_id);
            cur = n.node.parent_id.and_then(|p| s.nodes.get(&p));
        }
        Ok(out)
    }

    async fn subtree(&self, node_id: NodeId) -> StoreResult<Vec<NodeId>> {
        Ok(self.lock().subtree(&node_id))
    }

    async fn node_count(&self, owner: AccountId) -> StoreResult<u64> {
        Ok(self
            .lock()
            .nodes
            .values()
            .filter(|n| n.node.owner == owner)
            .count() as u64)
    }

    async fn update_node(&self, update: NodeUpdate) -> StoreResult<Node> {
        self.tx(|s| s.update_node(update))
    }

    async fn delete_subtree(
        &self,
        node_id: NodeId,
        expected_revision: u64,
    ) -> StoreResult<Removed> {
        self.tx(|s| {
            let n = s.nodes.get(&node_id).ok_or(StoreError::NotFound)?;
            expect_revision(n.node.revision, expected_revision)?;
            if n.node.parent_id.is_none() {
                return Err(StoreError::Invalid("a root cannot be deleted"));
            }
            let ids = s.subtree(&node_id);
            Ok(s.remove_nodes(&ids))
        })
    }

    async fn create_upload(
        &self,
        upload: NewUpload,
        limits: UploadLimits,
        now: u64,
    ) -> StoreResult<UploadCreated> {
        self.tx(|s| {
            if matches!(upload.target, UploadTarget::Node { .. }) {
                let existing = s.uploads.values().find(|u| u.resumed_by(&upload, now));
                if let Some(u) = existing {
                    return Ok(UploadCreated::Existing(u.clone()));
                }
            }
            if s.uploads.contains_key(&upload.upload_id) || s.drops.contains_key(&upload.upload_id) {
                return Err(StoreError::AlreadyExists);
            }
            check_shape(&upload)?;
            if let Some(q) = limits.quota_bytes {
                if s.storage_used(&upload.owner, now).saturating_add(upload.total_length) > q {
                    return Err(StoreError::QuotaExceeded);
                }
            }
            let live = || s.uploads.values().filter(|u| u.upload.expires_at > now);
            if let (Some(max), Some(creator)) = (limits.max_account_uploads, upload.creator) {
                if live().filter(|u| u.upload.creator == Some(creator)).count() as u64 >= max {
                    return Err(StoreError::LimitReached);
                }
            }
            if let UploadTarget::Drop { link_id, .. } = &upload.target {
                if let Some(max) = limits.max_link_uploads {
                    let n = live().filter(|u| matches!(&u.upload.target, UploadTarget::Drop { link_id: l, .. } if l == link_id)).count();
                    if n as u64 >= max {
                        return Err(StoreError::LimitReached);
                    }
                }
                if let Some(max) = limits.max_link_drops {
                    if s.drops.values().filter(|d| &d.link_id == link_id).count() as u64 >= max {
                        return Err(StoreError::LimitReached);
                    }
                }
            }
            let stored = Upload { blob_key: blob_key_for_upload(&upload.upload_id), upload, parts: Vec::new() };
            s.uploads.insert(stored.upload.upload_id, stored.clone());
            Ok(UploadCreated::Created(stored))
        })
    }

    async fn upload(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<Upload>> {
        Ok(self.lock().live_upload(&upload_id, now).cloned())
    }

    async fn upload_head(&self, upload_id: UploadId, now: u64) -> StoreResult<Option<NewUpload>> {
        Ok(self
            .lock()
            .live_upload(&upload_id, now)
            .map(|u| u.upload.clone()))
    }

    async fn record_part(
        &self,
        upload_id: UploadId,
        index: u64,
        length: u64,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<()> {
        self.tx(|s| {
            let u = s.live_upload(&upload_id, now).ok_or(StoreError::NotFound)?;
            if u.part_length(index) != Some(length) {
                return Err(StoreError::Invalid(
                    "part index or length outside the upload's shape",
                ));
            }
            let u = s.uploads.get_mut(&upload_id).ok_or(StoreError::NotFound)?;
            match u.parts.binary_search_by_key(&index, |p| p.0) {
                Ok(i) => u.parts[i].1 = length,
                Err(i) => u.parts.insert(i, (index, length)),
            }
            u.upload.expires_at = expires_at.min(u.upload.max_expires_at);
            Ok(())
        })
    }

    async fn finalize_upload(
        &self,
        upload_id: UploadId,
        f: FinalizeNode,
        now: u64,
    ) -> StoreResult<Finalized> {
        self.tx(|s| {
            let u = s
                .live_upload(&upload_id, now)
                .ok_or(StoreError::NotFound)?
                .clone();
            let (node_id, parent_id, content_revision) = finalize_target(&u, &f)?;
            let old = s.nodes.get(&node_id).cloned();
            check_finalize_over(old.as_ref(), f.expected_revision, content_revision)?;
            if !s.nodes.contains_key(&parent_id) {
                return Err(StoreError::NotFound);
            }
            if f.quota_bytes.is_some() {
                let used = s.storage_used(&f.node.owner, now);
                check_finalize_quota(f.quota_bytes, used, &u, &f.node.owner, old.as_ref())?;
            }
            let node = Node {
                node: f.node,
                content_revision,
                content_length: u.upload.total_length,
                blob_key: Some(u.blob_key.clone()),
            };
            s.nodes.insert(node_id, node.clone());
            s.uploads.remove(&upload_id);
            Ok(Finalized {
                node,
                created: old.is_none(),
                replaced_blob: old.and_then(|n| n.blob_key),
            })
        })
    }

    async fn finalize_drop(
        &self,
        upload_id: UploadId,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<DropRecord> {
        self.tx(|s| {
            let u = s
                .live_upload(&upload_id, now)
                .ok_or(StoreError::NotFound)?
                .clone();
            let UploadTarget::Drop {
                link_id: l,
                envelope,
            } = &u.upload.target
            else {
                return Err(StoreError::NotFound);
            };
            if l != &link_id || !s.links.contains_key(&link_id) {
                return Err(StoreError::NotFound);
            }
            if !u.is_complete() {
                return Err(StoreError::UploadIncomplete);
            }
            let d = DropRecord {
                drop_id: upload_id,
                link_id,
                owner: u.upload.owner,
                created_at: now,
                total_length: u.upload.total_length,
                envelope: envelope.clone(),
                blob_key: u.blob_key.clone(),
                link_record: None,
            };
            s.uploads.remove(&upload_id);
            s.drops.insert(upload_id, d.clone());
            Ok(d)
        })
    }

    async fn delete_upload(&self, upload_id: UploadId) -> StoreResult<Option<Upload>> {
        Ok(self.lock().uploads.remove(&upload_id))
    }

    async fn expired_uploads(&self, now: u64, limit: u32) -> StoreResult<Vec<Upload>> {
        let s = self.lock();
        let mut out: Vec<Upload> = s
            .uploads
            .values()
            .filter(|u| u.upload.expires_at <= now)
            .cloned()
            .collect();
        out.sort_by_key(|u| (u.upload.expires_at, u.upload.upload_id));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn blob_key_in_use(&self, blob_key: &str) -> StoreResult<bool> {
        let s = self.lock();
        Ok(s.nodes
            .values()
            .any(|n| n.blob_key.as_deref() == Some(blob_key))
            || s.drops.values().any(|d| d.blob_key == blob_key)
            || s.uploads.values().any(|u| u.blob_key == blob_key))
    }

    async fn upload_exists(&self, upload_id: UploadId) -> StoreResult<bool> {
        Ok(self.lock().uploads.contains_key(&upload_id))
    }

    async fn create_share(
        &self,
        share: ShareWrite,
        grants: Vec<GrantWrite>,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<ShareUpdated> {
        self.tx(|s| {
            if s.shares.contains_key(&share.share_id)
                || s.shares
                    .values()
                    .any(|x| x.share.root_node_id == share.root_node_id)
            {
                return Err(StoreError::AlreadyExists);
            }
            if !s.nodes.contains_key(&share.root_node_id) {
                return Err(StoreError::NotFound);
            }
            for n in nodes {
                s.update_node(n)?;
            }
            for g in grants {
                if g.share_id != share.share_id {
                    return Err(StoreError::Invalid("grant for another share"));
                }
                s.grants
                    .insert((g.share_id, g.member, g.generation), g.grant);
            }
            let generation = share.generation;
            s.shares.insert(
                share.share_id,
                Share {
                    share,
                    revision: 0,
                    departed: Vec::new(),
                },
            );
            Ok(ShareUpdated {
                revision: 0,
                generation,
                removed: Removed::default(),
            })
        })
    }

    async fn share(&self, share_id: ShareId) -> StoreResult<Option<Share>> {
        Ok(self.lock().shares.get(&share_id).cloned())
    }

    async fn share_by_root(&self, node_id: NodeId) -> StoreResult<Option<Share>> {
        Ok(self
            .lock()
            .shares
            .values()
            .find(|s| s.share.root_node_id == node_id)
            .cloned())
    }

    async fn shares_owned(&self, owner: AccountId) -> StoreResult<Vec<Share>> {
        let mut out: Vec<Share> = self
            .lock()
            .shares
            .values()
            .filter(|s| s.share.owner == owner)
            .cloned()
            .collect();
        out.sort_by_key(|s| s.share.share_id);
        Ok(out)
    }

    async fn shares_member_of(&self, member: AccountId) -> StoreResult<Vec<Share>> {
        let mut out: Vec<Share> = self
            .lock()
            .shares
            .values()
            .filter(|s| s.permission_of(&member).is_some())
            .cloned()
            .collect();
        out.sort_by_key(|s| s.share.share_id);
        Ok(out)
    }

    async fn add_member(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        share: ShareWrite,
        grant: GrantWrite,
    ) -> StoreResult<ShareUpdated> {
        self.tx(|s| {
            let sh = s.shares.get_mut(&share_id).ok_or(StoreError::NotFound)?;
            expect_revision(sh.revision, expected_revision)?;
            check_member_add(sh, share_id, &share, &grant)?;
            sh.departed = sh.departed_after(&share, &[grant.member]);
            sh.share = share;
            sh.revision += 1;
            let out = ShareUpdated {
                revision: sh.revision,
                generation: sh.share.generation,
                removed: Removed::default(),
            };
            s.grants.insert(
                (grant.share_id, grant.member, grant.generation),
                grant.grant,
            );
            Ok(out)
        })
    }

    async fn remove_members(&self, r: MemberRemoval) -> StoreResult<ShareUpdated> {
        self.tx(|s| {
            let sh = s.shares.get(&r.share_id).ok_or(StoreError::NotFound)?;
            expect_revision(sh.revision, r.expected_revision)?;
            check_rotation(&sh.share, &r.share)?;
            let root = sh.share.root_node_id;
            for n in r.nodes {
                s.update_node(n)?;
            }
            // Every grant of the old generation or older goes, the removed members' with them
            // (§9.2.2); remaining members read older seals through the back-chains.
            let generation = r.share.generation;
            s.grants.retain(|(sid, m, g), _| {
                sid != &r.share_id || (*g >= generation && !r.removed.contains(m))
            });
            for g in r.grants {
                if g.share_id != r.share_id {
                    return Err(StoreError::Invalid("grant for another share"));
                }
                s.grants
                    .insert((g.share_id, g.member, g.generation), g.grant);
            }
            let subtree: HashSet<NodeId> = s.subtree(&root).into_iter().collect();
            let uploads = s.abort_uploads_into(&r.removed, &subtree);
            let sh = s.shares.get_mut(&r.share_id).ok_or(StoreError::NotFound)?;
            sh.departed = sh.departed_after(&r.share, &r.removed);
            sh.share = r.share;
            sh.revision += 1;
            Ok(ShareUpdated {
                revision: sh.revision,
                generation: sh.share.generation,
                removed: Removed {
                    uploads,
                    ..Removed::default()
                },
            })
        })
    }

    async fn leave_share(&self, share_id: ShareId, member: AccountId) -> StoreResult<ShareUpdated> {
        self.tx(|s| {
            let sh = s.shares.get(&share_id).ok_or(StoreError::NotFound)?;
            if sh.permission_of(&member).is_none() {
                return Err(StoreError::NotFound);
            }
            let root = sh.share.root_node_id;
            s.grants
                .retain(|(sid, m, _), _| sid != &share_id || m != &member);
            let subtree: HashSet<NodeId> = s.subtree(&root).into_iter().collect();
            let uploads = s.abort_uploads_into(&[member], &subtree);
            let sh = s.shares.get_mut(&share_id).ok_or(StoreError::NotFound)?;
            sh.departed.push(member);
            sh.revision += 1;
            Ok(ShareUpdated {
                revision: sh.revision,
                generation: sh.share.generation,
                removed: Removed {
                    uploads,
                    ..Removed::default()
                },
            })
        })
    }

    async fn delete_share(
        &self,
        share_id: ShareId,
        expected_revision: u64,
        nodes: Vec<NodeUpdate>,
    ) -> StoreResult<Removed> {
        self.tx(|s| {
            let sh = s.shares.get(&share_id).ok_or(StoreError::NotFound)?.clone();
            expect_revision(sh.revision, expected_revision)?;
            for n in nodes {
                s.update_node(n)?;
            }
            let members: Vec<AccountId> = sh.share.members.iter().map(|m| m.0).collect();
            let subtree: HashSet<NodeId> = s.subtree(&sh.share.root_node_id).into_iter().collect();
            let uploads = s.abort_uploads_into(&members, &subtree);
            let mut removed = s.delete_share(&share_id);
            removed.uploads.extend(uploads);
            Ok(removed)
        })
    }

    async fn grants(&self, share_id: ShareId, member: AccountId) -> StoreResult<Vec<GrantWrite>> {
        let s = self.lock();
        Ok(s.grants
            .range((share_id, member, 0)..=(share_id, member, u64::MAX))
            .map(|((sid, m, g), grant)| GrantWrite {
                share_id: *sid,
                member: *m,
                generation: *g,
                grant: grant.clone(),
            })
            .collect())
    }

    async fn create_link(&self, link: LinkWrite, max_links: Option<u64>) -> StoreResult<Link> {
        self.tx(|s| {
            if s.links.contains_key(&link.link_id) {
                return Err(StoreError::AlreadyExists);
            }
            if let Some(max) = max_links {
                if s.links
                    .values()
                    .filter(|l| l.link.owner == link.owner)
                    .count() as u64
                    >= max
                {
                    return Err(StoreError::LimitReached);
                }
            }
            s.insert_link(link)
        })
    }

    async fn link(&self, link_id: LinkId) -> StoreResult<Option<Link>> {
        Ok(self.lock().links.get(&link_id).cloned())
    }

    async fn link_access(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess> {
        Ok(self.lock().link_access(&link_id, now))
    }

    async fn consume_download(&self, link_id: LinkId, now: u64) -> StoreResult<LinkAccess> {
        let mut s = self.lock();
        let access = s.link_access(&link_id, now);
        if let LinkAccess::Live(_) = access {
            let l = s.links.get_mut(&link_id).ok_or(StoreError::NotFound)?;
            l.downloads += 1;
            return Ok(LinkAccess::Live(Box::new(l.clone())));
        }
        Ok(access)
    }

    async fn links_of(&self, owner: AccountId) -> StoreResult<Vec<Link>> {
        let mut out: Vec<Link> = self
            .lock()
            .links
            .values()
            .filter(|l| l.link.owner == owner)
            .cloned()
            .collect();
        out.sort_by_key(|l| (l.link.created_at, l.link.link_id));
        Ok(out)
    }

    async fn revoke_link(&self, owner: AccountId, link_id: LinkId) -> StoreResult<Removed> {
        self.tx(|s| {
            match s.links.get(&link_id) {
                Some(l) if l.link.owner == owner => {}
                _ => return Err(StoreError::NotFound),
            }
            Ok(s.revoke_link(&link_id))
        })
    }

    async fn reseal_link(
        &self,
        owner: AccountId,
        link_id: LinkId,
        link_record: Vec<u8>,
    ) -> StoreResult<Link> {
        self.tx(|s| match s.links.get_mut(&link_id) {
            Some(l) if l.link.owner == owner => {
                l.link.link_record = link_record;
                Ok(l.clone())
            }
            _ => Err(StoreError::NotFound),
        })
    }

    async fn rotate_link(
        &self,
        owner: AccountId,
        old: LinkId,
        new: LinkWrite,
    ) -> StoreResult<(Link, Removed)> {
        self.tx(|s| {
            match s.links.get(&old) {
                Some(l) if l.link.owner == owner => {}
                _ => return Err(StoreError::NotFound),
            }
            if new.link_id == old || new.owner != owner {
                return Err(StoreError::Invalid(
                    "rotation needs a new link id of the same owner",
                ));
            }
            if s.links.contains_key(&new.link_id) {
                return Err(StoreError::AlreadyExists);
            }
            let removed = s.revoke_link(&old);
            Ok((s.insert_link(new)?, removed))
        })
    }

    async fn create_link_token(
        &self,
        token_hash: Digest,
        link_id: LinkId,
        expires_at: u64,
    ) -> StoreResult<()> {
        self.tx(|s| {
            if !s.links.contains_key(&link_id) {
                return Err(StoreError::NotFound);
            }
            if s.link_tokens.contains_key(&token_hash) {
                return Err(StoreError::AlreadyExists);
            }
            s.link_tokens.insert(token_hash, (link_id, expires_at));
            Ok(())
        })
    }

    async fn link_token_valid(
        &self,
        token_hash: &Digest,
        link_id: LinkId,
        now: u64,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .link_tokens
            .get(token_hash)
            .is_some_and(|(l, e)| l == &link_id && now < *e))
    }

    async fn drops_of(&self, owner: AccountId) -> StoreResult<Vec<DropRecord>> {
        let mut out: Vec<DropRecord> = self
            .lock()
            .drops
            .values()
            .filter(|d| d.owner == owner)
            .cloned()
            .collect();
        out.sort_by_key(|d| (d.created_at, d.drop_id));
        Ok(out)
    }

    async fn drop_info(&self, drop_id: UploadId) -> StoreResult<Option<DropRecord>> {
        Ok(self.lock().drops.get(&drop_id).cloned())
    }

    async fn delete_drop(&self, owner: AccountId, drop_id: UploadId) -> StoreResult<String> {
        let mut s = self.lock();
        match s.drops.get(&drop_id) {
            Some(d) if d.owner == owner => Ok(s
                .drops
                .remove(&drop_id)
                .map(|d| d.blob_key)
                .unwrap_or_default()),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn purge_expired(&self, now: u64, idle_ttl: u64) -> StoreResult<Purged> {
        let mut s = self.lock();
        let (a, b, c) = (s.sessions.len(), s.handshakes.len(), s.link_tokens.len());
        s.sessions
            .retain(|_, (x, _)| State::session_live(x, now, idle_ttl));
        s.handshakes.retain(|_, h| h.expires_at > now);
        s.link_tokens.retain(|_, (_, e)| *e > now);
        Ok(Purged {
            sessions: (a - s.sessions.len()) as u64,
            handshakes: (b - s.handshakes.len()) as u64,
            link_tokens: (c - s.link_tokens.len()) as u64,
        })
    }

    async fn server_secret(&self, name: &str, fresh: ServerSecret) -> StoreResult<ServerSecret> {
        self.tx(|s| {
            Ok(s.server_secrets
                .entry(name.to_owned())
                .or_insert(fresh)
                .clone())
        })
    }

    async fn health(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// Deepest tree the stores walk before declaring the data corrupt.
pub(crate) const MAX_DEPTH: usize = 100_000;

/// Checks an upload's shape against the store's own invariants (the HTTP layer checks §11.9.1).
pub(crate) fn check_shape(u: &NewUpload) -> StoreResult<()> {
    if u.total_length == 0 || u.part_size == 0 || u.expires_at > u.max_expires_at {
        return Err(StoreError::Invalid("upload shape"));
    }
    if let UploadTarget::Node {
        content_revision: 0,
        ..
    } = u.target
    {
        return Err(StoreError::Invalid("content revisions start at 1"));
    }
    Ok(())
}

/// The in-memory blob store.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    state: Mutex<BlobState>,
}

#[derive(Debug, Default)]
struct BlobState {
    parts: HashMap<UploadId, BTreeMap<u64, Bytes>>,
    blobs: HashMap<String, Bytes>,
}

impl MemoryBlobStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BlobState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn check_key(key: &str) -> StoreResult<()> {
    if valid_blob_key(key) {
        Ok(())
    } else {
        Err(StoreError::Invalid("blob key"))
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put_part(
        &self,
        upload_id: UploadId,
        index: u64,
        mut body: ByteStream,
        max_len: u64,
    ) -> StoreResult<PartStored> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::backend)?;
            if (buf.len() + chunk.len()) as u64 > max_len {
                return Err(StoreError::Invalid("part longer than allowed"));
            }
            buf.extend_from_slice(&chunk);
        }
        let data = buf.freeze();
        let stored = PartStored {
            length: data.len() as u64,
        };
        self.lock()
            .parts
            .entry(upload_id)
            .or_default()
            .insert(index, data);
        Ok(stored)
    }

    async fn list_parts(&self, upload_id: UploadId) -> StoreResult<Vec<(u64, u64)>> {
        Ok(self
            .lock()
            .parts
            .get(&upload_id)
            .map(|p| p.iter().map(|(i, b)| (*i, b.len() as u64)).collect())
            .unwrap_or_default())
    }

    async fn assemble(&self, upload_id: UploadId, part_count: u64, key: &str) -> StoreResult<u64> {
        check_key(key)?;
        let mut s = self.lock();
        let parts = s
            .parts
            .get(&upload_id)
            .ok_or(StoreError::UploadIncomplete)?;
        let mut buf = BytesMut::new();
        for i in 0..part_count {
            buf.extend_from_slice(parts.get(&i).ok_or(StoreError::UploadIncomplete)?);
        }
        let len = buf.len() as u64;
        s.blobs.insert(key.to_owned(), buf.freeze());
        Ok(len)
    }

    async fn blob_length(&self, key: &str) -> StoreResult<Option<u64>> {
        check_key(key)?;
        Ok(self.lock().blobs.get(key).map(|b| b.len() as u64))
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobRead> {
        check_key(key)?;
        let blob = self
            .lock()
            .blobs
            .get(key)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let length = blob.len() as u64;
        let range = range.unwrap_or(0..length);
        if range.start >= range.end || range.end > length {
            return Err(StoreError::Invalid("range"));
        }
        // Bounded above by `length`, which came from a `usize`.
        let slice = blob.slice(range.start as usize..range.end as usize);
        Ok(BlobRead {
            length,
            stream: bytes_stream(slice),
        })
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<bool> {
        check_key(key)?;
        Ok(self.lock().blobs.remove(key).is_some())
    }

    async fn delete_parts(&self, upload_id: UploadId) -> StoreResult<()> {
        self.lock().parts.remove(&upload_id);
        Ok(())
    }

    async fn list_blobs(&self) -> StoreResult<Vec<String>> {
        let mut out: Vec<String> = self.lock().blobs.keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    async fn list_uploads(&self) -> StoreResult<Vec<UploadId>> {
        let mut out: Vec<UploadId> = self
            .lock()
            .parts
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(k, _)| *k)
            .collect();
        out.sort();
        Ok(out)
    }
}
