//! Spec §9, "Key rotation". This module implements §9.2, member removal: a new generation of the
//! shared folder and of every folder below it, re-sealed children, new grants for the remaining
//! members and a new share record, all in one [`RotationBundle`] that the server applies
//! atomically.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use rand_core::CryptoRngCore;

use crate::encoding::{decode, decode_bounded, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error, Result};
use crate::ids::{NodeId, ShareId};
use crate::primitives::{SecretKey, VerifyingKey};
use crate::share::{
    issue_grant, verify_share, Grant, GranterKeys, ShareOwner, ShareRecord, SignedGrant,
    SignedShare, LABEL_GRANT,
};
use crate::tree::{
    seal_back_chain, seal_file_key, seal_node_key, verify_node, FileRef, FolderKey,
    NodeExpectation, NodeRecord, SealedMetadata, SignedNode,
};

/// Maximum encoded length of a [`RotationBundle`].
pub const MAX_BUNDLE_LEN: usize = 64 << 20;

/// `mode` of a lazy rotation: file node keys and file keys are kept and re-sealed.
pub const MODE_LAZY: u64 = 0;
/// `mode` of an eager rotation: files get fresh node keys and file keys; content is re-encrypted.
pub const MODE_EAGER: u64 = 1;

crate::cbor_struct! {
    /// Everything a member removal changes (type 65), applied by the server atomically.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RotationBundle (type = 65, version = 1) {
        /// The share.
        pub share_id: ShareId,
        /// The shared folder.
        pub folder_id: NodeId,
        /// The generation before the rotation.
        pub from_generation: u64,
        /// `from_generation + 1`.
        pub to_generation: u64,
        /// The user name of the removed member.
        pub removed: String,
        /// [`MODE_LAZY`] or [`MODE_EAGER`].
        pub mode: u64,
        /// The new [`SignedShare`] (generation `to_generation`, without the removed member).
        pub share: ByteBuf,
        /// One [`SignedGrant`] of generation `to_generation` per remaining member, in member order.
        pub grants: Vec<ByteBuf>,
        /// The new [`SignedNode`] of every node in the shared subtree, parents before children.
        pub nodes: Vec<ByteBuf>,
    }
}

/// A file that an eager rotation re-keys: the caller re-encrypts its content (§4) under
/// `file_key` as `content_revision`, and seals its metadata (§5) under `node_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// The file.
    pub node_id: NodeId,
    /// Its new node key.
    pub node_key: SecretKey,
    /// Its new file key.
    pub file_key: SecretKey,
    /// The new content revision (the old one plus one).
    pub content_revision: u64,
}

/// What the caller supplies for a re-keyed file in an eager rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedFileUpdate {
    /// The metadata sealed under the new node key, with a revision above the old one.
    pub metadata: SealedMetadata,
    /// The length of the re-encrypted content ciphertext.
    pub ciphertext_length: u64,
}

/// The inputs of a member removal.
#[derive(Debug)]
pub struct RemoveMember<'a> {
    /// The owner's identity (the owner signs everything in the bundle).
    pub owner: &'a GranterKeys<'a>,
    /// The current, verified share record.
    pub share: &'a ShareRecord,
    /// The user name of the member to remove.
    pub removed: &'a str,
    /// The current key of the shared folder's parent (the shared folder is re-sealed under it).
    pub parent_key: &'a FolderKey,
    /// The current key of the shared folder.
    pub folder_key: &'a FolderKey,
    /// The current, verified records of the shared folder and every node below it.
    pub subtree: &'a [NodeRecord],
    /// The time of the new records.
    pub time: u64,
}

/// The result of a member removal, for the owner's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationOutput {
    /// The bundle to send to the server.
    pub bundle: RotationBundle,
    /// The new share record.
    pub share: ShareRecord,
    /// The new node records, in bundle order.
    pub records: Vec<NodeRecord>,
    /// The new key of every folder of the subtree.
    pub folder_keys: Vec<FolderKey>,
    /// Eager mode: the files whose content the caller must re-encrypt. Empty in lazy mode.
    pub rekeyed: Vec<Rekeyed>,
}

/// Orders `subtree` parents-first from `root`, checking that it is one tree rooted at `root`.
fn order_subtree(subtree: &[NodeRecord], root: NodeId) -> Result<Vec<usize>> {
    let mut index: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut children: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (i, r) in subtree.iter().enumerate() {
        if index.insert(r.node_id, i).is_some() {
            return Err(Error::InvalidArgument("duplicate node in subtree"));
        }
        if r.node_id != root {
            let p = r
                .parent_id
                .ok_or(Error::InvalidArgument("subtree contains a root"))?;
            children.entry(p).or_default().push(i);
        }
    }
    let start = *index
        .get(&root)
        .ok_or(Error::InvalidArgument("subtree lacks the shared folder"))?;
    let mut order = Vec::with_capacity(subtree.len());
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        if let Some(kids) = children.get(&subtree[i].node_id) {
            if !subtree[i].is_folder() {
                return Err(Error::InvalidArgument("a file has children"));
            }
            queue.extend(kids.iter().copied());
        }
    }
    if order.len() != subtree.len() {
        return Err(Error::InvalidArgument("subtree is not connected"));
    }
    Ok(order)
}

/// The state of a parents-first walk over a subtree being re-keyed, shared by [`rotate`] and
/// [`rekey_tree`]: every visited record and every folder's old and new key, so that each child's
/// node key opens under its parent's old key and is re-sealed under the parent's new one.
struct RekeyWalk<'a> {
    records: BTreeMap<NodeId, &'a NodeRecord>,
    old_keys: BTreeMap<NodeId, FolderKey>,
    new_keys: BTreeMap<NodeId, FolderKey>,
}

impl<'a> RekeyWalk<'a> {
    fn new() -> Self {
        RekeyWalk {
            records: BTreeMap::new(),
            old_keys: BTreeMap::new(),
            new_keys: BTreeMap::new(),
        }
    }

    /// Records `old`, the next node in parents-first order, so that its children can open.
    fn visit(&mut self, old: &'a NodeRecord) {
        self.records.insert(old.node_id, old);
    }

    /// Opens the old node key of `old`, a visited non-root node whose parent folder was re-keyed
    /// already ([`RekeyWalk::add_folder`]), and returns it with the parent's new folder key.
    fn open_child(&self, old: &NodeRecord) -> Result<(SecretKey, &FolderKey)> {
        let parent_id = old
            .parent_id
            .ok_or(Error::InvalidArgument("subtree contains a root"))?;
        let parent = self
            .records
            .get(&parent_id)
            .ok_or(Error::Internal("parent ordered after child"))?;
        let parent_old_key = self
            .old_keys
            .get(&parent_id)
            .ok_or(Error::Internal("parent key missing"))?;
        let key = old.open_node_key(parent, parent_old_key)?;
        let new_parent = self
            .new_keys
            .get(&parent_id)
            .ok_or(Error::Internal("new parent key missing"))?;
        Ok((key, new_parent))
    }

    /// Records a folder's old and new key (both for `new.folder_id`).
    fn add_folder(&mut self, old: FolderKey, new: FolderKey) {
        self.old_keys.insert(new.folder_id, old);
        self.new_keys.insert(new.folder_id, new);
    }

    /// The new key of folder `id`, once re-keyed.
    fn new_key(&self, id: &NodeId) -> Option<&FolderKey> {
        self.new_keys.get(id)
    }
}

/// Removes a member in lazy mode: new folder keys and back-chains for every folder of the shared
/// subtree, every child re-sealed, file node keys and file keys unchanged.
///
/// # Errors
/// As [`remove_member_eager`].
pub fn remove_member_lazy(
    params: &RemoveMember<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<RotationOutput> {
    rotate(&Plan::removal(params), None, rng)
}

/// Removes a member in eager mode: as [`remove_member_lazy`], and every file also gets a fresh
/// node key and file key. `update` is called once per file, parents first, with the new keys; it
/// returns the metadata sealed under the new node key and the length of the re-encrypted content.
///
/// # Errors
/// [`Error::InvalidArgument`] if the inputs are inconsistent (removed user not a member, keys or
/// subtree not matching the share); [`Error::DecryptionFailed`] if a node key in the subtree does
/// not open; whatever `update` returns.
pub fn remove_member_eager(
    params: &RemoveMember<'_>,
    update: &mut dyn FnMut(&Rekeyed, &NodeRecord) -> Result<RekeyedFileUpdate>,
    rng: &mut impl CryptoRngCore,
) -> Result<RotationOutput> {
    rotate(&Plan::removal(params), Some(update), rng)
}

/// The inputs of re-keying a share during compromise recovery (§9.4): the owner's identity key
/// changes, nobody current is removed, and the share moves to a new generation signed under the
/// owner's *new* identity.
#[derive(Debug)]
pub struct RecoverShare<'a> {
    /// The owner's *new* identity (generation `n + 1`), which signs everything in the bundle.
    pub owner: &'a GranterKeys<'a>,
    /// The current, verified share record (signed by the owner's previous identity).
    pub share: &'a ShareRecord,
    /// User names of listed members who left or were deleted (§11.10 `departed`), rotated out.
    pub departed: &'a [String],
    /// The *new* key of the shared folder's parent (the parent was re-keyed by the recovery).
    pub parent_key: &'a FolderKey,
    /// The current key of the shared folder.
    pub folder_key: &'a FolderKey,
    /// The current, verified records of the shared folder and every node below it.
    pub subtree: &'a [NodeRecord],
    /// The time of the new records.
    pub time: u64,
}

/// Re-keys a share for compromise recovery (§9.4 step 3, §11.6.8), in lazy mode: the same
/// computation as [`remove_member_lazy`], except that nobody current is removed (`removed` is
/// the empty string; members named in `departed` are left out), the new share record names the
/// owner's new identity key, and every record and grant is signed by that key. Content is not
/// re-encrypted (a recovery keeps every file's content revision).
///
/// # Errors
/// [`Error::InvalidArgument`] if the inputs are inconsistent (a `departed` name not a member,
/// keys or subtree not matching the share, the signing key unchanged);
/// [`Error::DecryptionFailed`] if a node key in the subtree does not open.
pub fn rekey_share_for_recovery(
    params: &RecoverShare<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<RotationOutput> {
    rotate(
        &Plan {
            owner: params.owner,
            share: params.share,
            removed: None,
            departed: params.departed,
            parent_key: params.parent_key,
            folder_key: params.folder_key,
            subtree: params.subtree,
            time: params.time,
        },
        None,
        rng,
    )
}

/// What [`rotate`] computes: a member removal (`removed` set) or a recovery re-keying.
struct Plan<'a> {
    owner: &'a GranterKeys<'a>,
    share: &'a ShareRecord,
    removed: Option<&'a str>,
    departed: &'a [String],
    parent_key: &'a FolderKey,
    folder_key: &'a FolderKey,
    subtree: &'a [NodeRecord],
    time: u64,
}

impl<'a> Plan<'a> {
    fn removal(p: &RemoveMember<'a>) -> Self {
        Plan {
            owner: p.owner,
            share: p.share,
            removed: Some(p.removed),
            departed: &[],
            parent_key: p.parent_key,
            folder_key: p.folder_key,
            subtree: p.subtree,
            time: p.time,
        }
    }

    /// Whether `user_name` is left out of the new share record.
    fn drops(&self, user_name: &str) -> bool {
        self.removed == Some(user_name) || self.departed.iter().any(|d| d == user_name)
    }
}

#[allow(clippy::type_complexity)]
fn rotate(
    p: &Plan<'_>,
    mut eager: Option<&mut dyn FnMut(&Rekeyed, &NodeRecord) -> Result<RekeyedFileUpdate>>,
    rng: &mut impl CryptoRngCore,
) -> Result<RotationOutput> {
    let share = p.share;
    for name in p
        .removed
        .iter()
        .copied()
        .chain(p.departed.iter().map(String::as_str))
    {
        if share.member(name).is_none() {
            return Err(Error::InvalidArgument("removed user is not a member"));
        }
    }
    if p.folder_key.folder_id != share.folder_id || p.folder_key.generation != share.generation {
        return Err(Error::InvalidArgument(
            "folder key is not the share's current key",
        ));
    }
    let signer = p.owner.signing_key.verifying_key().to_bytes();
    let same_owner = signer == share.owner.ed25519.0;
    if p.removed.is_some() && !same_owner {
        return Err(Error::InvalidArgument("only the owner rotates a share"));
    }
    if p.removed.is_none() && same_owner {
        return Err(Error::InvalidArgument(
            "a recovery re-keys under a new identity key",
        ));
    }
    let to_generation = share
        .generation
        .checked_add(1)
        .ok_or(Error::InvalidArgument("generation overflow"))?;
    let order = order_subtree(p.subtree, share.folder_id)?;
    let root = &p.subtree[order[0]];
    share.check_folder(root)?;
    if root.parent_id != Some(p.parent_key.folder_id) {
        return Err(Error::InvalidArgument(
            "parent key is not the shared folder's parent",
        ));
    }
    let author = Bytes(p.owner.signing_key.verifying_key().to_bytes());

    // Old and new keys of every folder, by id.
    let mut walk = RekeyWalk::new();
    let mut records = Vec::with_capacity(order.len());
    let mut nodes = Vec::with_capacity(order.len());
    let mut folder_keys = Vec::new();
    let mut rekeyed = Vec::new();

    for (pos, &i) in order.iter().enumerate() {
        let old = &p.subtree[i];
        walk.visit(old);
        let (old_key, new_parent) = if pos == 0 {
            (p.folder_key.key.clone(), p.parent_key)
        } else {
            walk.open_child(old)?
        };
        let mut rec = old.clone();
        rec.parent_generation = new_parent.generation;
        rec.author = author;
        rec.time = p.time;
        if old.is_folder() {
            let old_fk = old.folder_key(old_key);
            let generation = old
                .key_generation
                .checked_add(1)
                .ok_or(Error::InvalidArgument("generation overflow"))?;
            let new_fk = FolderKey {
                folder_id: old.node_id,
                generation,
                key: SecretKey::generate(rng),
            };
            rec.sealed_node_key = Some(ByteBuf::from(seal_node_key(
                new_parent,
                old.node_id,
                &new_fk.key,
                rng,
            )));
            rec.back_chain
                .push(ByteBuf::from(seal_back_chain(&new_fk, &old_fk, rng)?));
            rec.key_generation = generation;
            folder_keys.push(new_fk.clone());
            walk.add_folder(old_fk, new_fk);
        } else if let Some(update) = eager.as_mut() {
            let old_file = old
                .file
                .as_ref()
                .ok_or(Error::Decode(DecodeError::InvalidValue))?;
            let content_revision = old_file
                .content_revision
                .checked_add(1)
                .ok_or(Error::InvalidArgument("content revision overflow"))?;
            let node_key = SecretKey::generate(rng);
            let file_key = SecretKey::generate(rng);
            rec.sealed_node_key = Some(ByteBuf::from(seal_node_key(
                new_parent,
                old.node_id,
                &node_key,
                rng,
            )));
            let sealed_file_key =
                seal_file_key(&node_key, old.node_id, content_revision, &file_key, rng);
            let r = Rekeyed {
                node_id: old.node_id,
                node_key,
                file_key,
                content_revision,
            };
            let u = update(&r, old)?;
            if u.metadata.revision <= old.metadata_revision {
                return Err(Error::InvalidArgument("metadata revision must increase"));
            }
            rec.metadata_revision = u.metadata.revision;
            rec.sealed_metadata = ByteBuf::from(u.metadata.sealed);
            rec.file = Some(FileRef {
                content_revision,
                ciphertext_length: u.ciphertext_length,
                sealed_file_key: ByteBuf::from(sealed_file_key),
            });
            rekeyed.push(r);
        } else {
            rec.sealed_node_key = Some(ByteBuf::from(seal_node_key(
                new_parent,
                old.node_id,
                &old_key,
                rng,
            )));
        }
        rec.check_structure()?;
        nodes.push(ByteBuf::from(encode(&rec.sign(p.owner.signing_key)?)));
        records.push(rec);
    }

    let new_share = ShareRecord {
        share_id: share.share_id,
        folder_id: share.folder_id,
        owner: ShareOwner {
            user_name: share.owner.user_name.clone(),
            ed25519: Bytes(signer),
        },
        generation: to_generation,
        members: share
            .members
            .iter()
            .filter(|m| !p.drops(&m.user_name))
            .cloned()
            .collect(),
    };
    let signed_share = new_share.sign(p.owner.signing_key)?;
    let share_folder_key = walk
        .new_key(&share.folder_id)
        .ok_or(Error::Internal("share folder key missing"))?;
    let grants = new_share
        .members
        .iter()
        .map(|m| {
            issue_grant(p.owner, &new_share, m, share_folder_key, rng)
                .map(|g| ByteBuf::from(encode(&g)))
        })
        .collect::<Result<Vec<_>>>()?;
    let bundle = RotationBundle {
        share_id: share.share_id,
        folder_id: share.folder_id,
        from_generation: share.generation,
        to_generation,
        removed: p.removed.unwrap_or_default().into(),
        mode: if eager.is_some() {
            MODE_EAGER
        } else {
            MODE_LAZY
        },
        share: ByteBuf::from(encode(&signed_share)),
        grants,
        nodes,
    };
    Ok(RotationOutput {
        bundle,
        share: new_share,
        records,
        folder_keys,
        rekeyed,
    })
}

/// A client's view of one share: the verified share record and the verified current records of
/// the shared folder and every node below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareState {
    /// The current share record.
    pub share: ShareRecord,
    /// The current records, by node id.
    pub nodes: BTreeMap<NodeId, NodeRecord>,
}

impl ShareState {
    /// Verifies a rotation bundle against this state and the pinned `owner`, and applies it:
    /// either every part verifies and the state moves to the new generation, or nothing changes.
    /// Returns the new grants (encoded [`SignedGrant`]s); a member opens its own with
    /// [`crate::share::open_grant`].
    ///
    /// Checks: the bundle names this share, folder and generation `g -> g + 1`; the share record
    /// is signed by `owner`, at `g + 1`, for the same folder and owner, and lists exactly the old
    /// members minus the removed one; there is one grant per remaining member, signed by the
    /// owner, of generation `g + 1`, for that member; every node of the state has exactly one new
    /// record, signed by the owner, at the same place, of the same kind, folders one generation
    /// newer with the old back-chain as prefix, children sealed under their parent's new
    /// generation.
    ///
    /// # Errors
    /// [`Error::Decode`], [`Error::BadSignature`], [`Error::InvalidPublicKey`], [`Error::Binding`].
    pub fn apply_rotation(&mut self, bundle: &[u8], owner: &VerifyingKey) -> Result<Vec<Vec<u8>>> {
        self.apply(bundle, owner, false)
    }

    /// Verifies and applies a recovery rotation (§9.4 step 3, made by
    /// [`rekey_share_for_recovery`]) signed by the owner's *new* identity key `new_owner`, which
    /// the caller has verified as the successor of the pinned owner identity (§6.6). Either every
    /// part verifies and the state moves to the new generation, or nothing changes. Returns the
    /// new grants.
    ///
    /// Checks as [`ShareState::apply_rotation`], except: `removed` is the empty string and
    /// `mode` is [`MODE_LAZY`]; the new share record names the same owner user name with the new
    /// key (different from the old one), and lists the old members in order, possibly without
    /// some of them (departed members rotated out; which ones may be left out is the server's
    /// and the members' business: the server allows only departed ones); everything is signed
    /// by `new_owner`.
    ///
    /// # Errors
    /// As [`ShareState::apply_rotation`].
    pub fn apply_recovery_rotation(
        &mut self,
        bundle: &[u8],
        new_owner: &VerifyingKey,
    ) -> Result<Vec<Vec<u8>>> {
        self.apply(bundle, new_owner, true)
    }

    fn apply(
        &mut self,
        bundle: &[u8],
        owner: &VerifyingKey,
        recovery: bool,
    ) -> Result<Vec<Vec<u8>>> {
        let b: RotationBundle = decode_bounded(bundle, MAX_BUNDLE_LEN)?;
        if b.mode > MODE_EAGER {
            return Err(Error::Decode(DecodeError::InvalidValue));
        }
        if recovery && (b.mode != MODE_LAZY || !b.removed.is_empty()) {
            return Err(Error::Binding("recovery bundle"));
        }
        let old = &self.share;
        if b.share_id != old.share_id || b.folder_id != old.folder_id {
            return Err(Error::Binding("bundle share"));
        }
        if b.from_generation != old.generation
            || b.to_generation != old.generation.wrapping_add(1)
            || b.to_generation == 0
        {
            return Err(Error::Binding("bundle generation"));
        }
        let share = verify_share(&b.share, old.share_id, owner, b.to_generation)?;
        let owner_ok = if recovery {
            share.owner.user_name == old.owner.user_name && share.owner.ed25519 != old.owner.ed25519
        } else {
            share.owner == old.owner
        };
        if share.generation != b.to_generation || share.folder_id != old.folder_id || !owner_ok {
            return Err(Error::Binding("bundle share record"));
        }
        let members_ok = if recovery {
            // The old members in order, some possibly left out.
            let mut rest = old.members.iter();
            share.members.iter().all(|m| rest.by_ref().any(|o| o == m))
        } else {
            let expected_members: Vec<_> = old
                .members
                .iter()
                .filter(|m| m.user_name != b.removed)
                .cloned()
                .collect();
            expected_members.len() + 1 == old.members.len() && share.members == expected_members
        };
        if !members_ok {
            return Err(Error::Binding("bundle members"));
        }
        // Grants: one per member, in order, signed by the owner, for this share and generation.
        if b.grants.len() != share.members.len() {
            return Err(Error::Binding("bundle grants"));
        }
        for (g, m) in b.grants.iter().zip(&share.members) {
            let outer: SignedGrant = decode(g)?;
            let grant: Grant = decode(&outer.grant)?;
            if grant.granter.ed25519.0 != owner.to_bytes() {
                return Err(Error::Binding("granter"));
            }
            owner.verify(LABEL_GRANT, &outer.grant, &outer.signature.0)?;
            if grant.share_id != share.share_id
                || grant.generation != share.generation
                || grant.recipient.user_name != m.user_name
                || grant.recipient.x25519 != m.x25519
                || grant.recipient.identity_generation != m.identity_generation
                || grant.permission != m.permission
            {
                return Err(Error::Binding("grant"));
            }
        }
        // Nodes: exactly the state's nodes, parents first.
        if b.nodes.len() != self.nodes.len() {
            return Err(Error::Binding("bundle nodes"));
        }
        let authors = [*owner];
        let mut new_nodes: BTreeMap<NodeId, NodeRecord> = BTreeMap::new();
        for n in &b.nodes {
            let outer: SignedNode = decode_bounded(n, crate::tree::MAX_SIGNED_NODE_LEN)?;
            let peek: NodeRecord = decode(&outer.record)?;
            let prev = self
                .nodes
                .get(&peek.node_id)
                .ok_or(Error::Binding("bundle node not in share"))?;
            let parent_id = prev.parent_id.ok_or(Error::Binding("root in share"))?;
            let parent_generation = if peek.node_id == old.folder_id {
                // The shared folder's parent lies outside the share.
                u64::MAX
            } else {
                new_nodes
                    .get(&parent_id)
                    .ok_or(Error::Binding("bundle order"))?
                    .key_generation
            };
            let expectation = NodeExpectation {
                node_id: prev.node_id,
                parent: Some((parent_id, parent_generation)),
                key_generation: prev
                    .is_folder()
                    .then(|| prev.key_generation.wrapping_add(1)),
            };
            let rec = verify_node(n, &expectation, &authors)?;
            if rec.kind != prev.kind {
                return Err(Error::Binding("node kind"));
            }
            if peek.node_id != old.folder_id && rec.parent_generation != parent_generation {
                return Err(Error::Binding("parent generation"));
            }
            if rec.is_folder() && !rec.back_chain.starts_with(&prev.back_chain) {
                return Err(Error::Binding("back-chain"));
            }
            if new_nodes.insert(rec.node_id, rec).is_some() {
                return Err(Error::Binding("duplicate node"));
            }
        }
        match new_nodes.get(&old.folder_id) {
            Some(f) => share.check_folder(f)?,
            None => return Err(Error::Binding("bundle lacks the shared folder")),
        }
        self.share = share;
        self.nodes = new_nodes;
        Ok(b.grants.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// Decodes a bundle's signed share record without verifying it (for servers that index it).
///
/// # Errors
/// [`Error::Decode`].
pub fn bundle_share(bundle: &RotationBundle) -> Result<SignedShare> {
    Ok(decode(&bundle.share)?)
}

// ---------------------------------------------------------------------------------------------
// Compromise recovery: re-keying the account's tree (§9.4 step 3)

/// The inputs of re-keying an account's whole tree after a compromise recovery (spec §9.4 step
/// 3), with the old and new root keys of [`crate::account::recover`].
#[derive(Debug)]
pub struct RekeyTree<'a> {
    /// The *new* identity generation's signing key: it signs every new record.
    pub author: &'a crate::primitives::SigningKey,
    /// The root's node key before the recovery.
    pub old_root_key: &'a SecretKey,
    /// The root's node key after the recovery (`Recovery::account.secrets.root_node_key`).
    pub new_root_key: &'a SecretKey,
    /// The current, verified records of the root and every node below it (any order).
    pub tree: &'a [NodeRecord],
    /// The time of the new records.
    pub time: u64,
}

/// The re-keyed tree: one new record per node, parents first (the root first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyedTree {
    /// The new records, parents first.
    pub records: Vec<NodeRecord>,
    /// The encoded [`SignedNode`] of each record, in the same order.
    pub signed: Vec<Vec<u8>>,
    /// The new current key of every folder (the root's is `new_root_key`).
    pub folder_keys: Vec<FolderKey>,
    /// The new node key of every file, by node id.
    pub file_node_keys: BTreeMap<NodeId, SecretKey>,
}

/// Re-keys an account's tree for compromise recovery (spec §9.4 step 3): every folder moves to a
/// new key generation (the root's new key is `new_root_key`; every other folder draws a fresh
/// one) whose back-chain seals the previous generation; every file draws a fresh node key, under
/// which its file key (unchanged, so the content stays as it is) is re-sealed for the same content
/// revision; every node key is re-sealed under its parent's new generation; every node's metadata
/// is re-sealed under its new key at the next metadata revision; every record is signed by
/// `author`. Node ids, places, kinds and content references are unchanged.
///
/// Randomness, per node in parents-first order: folders draw the new folder key (32, not for the
/// root), the node key seal nonce (24, not for the root), the back-chain seal nonce (24) and the
/// metadata seal nonce (24); files draw the new node key (32), the node key seal nonce (24), the
/// file key seal nonce (24) and the metadata seal nonce (24).
///
/// # Errors
/// [`Error::InvalidArgument`] if `tree` is not one tree with a single root;
/// [`Error::DecryptionFailed`] if a node key, file key or metadata does not open with the old
/// keys; [`Error::Decode`] for metadata that is not §5 metadata; [`Error::InvalidArgument`] on a
/// generation or revision overflow.
pub fn rekey_tree(p: &RekeyTree<'_>, rng: &mut impl CryptoRngCore) -> Result<RekeyedTree> {
    use crate::metadata::{open_metadata, seal_metadata};
    let mut roots = p.tree.iter().filter(|r| r.parent_id.is_none());
    let root = roots
        .next()
        .ok_or(Error::InvalidArgument("tree lacks a root"))?;
    if roots.next().is_some() {
        return Err(Error::InvalidArgument("tree has two roots"));
    }
    let order = order_subtree(p.tree, root.node_id)?;
    let author = Bytes(p.author.verifying_key().to_bytes());
    let overflow = || Error::InvalidArgument("generation or revision overflow");
    let mut walk = RekeyWalk::new();
    let mut out = RekeyedTree {
        records: Vec::with_capacity(order.len()),
        signed: Vec::with_capacity(order.len()),
        folder_keys: Vec::new(),
        file_node_keys: BTreeMap::new(),
    };
    for (pos, &i) in order.iter().enumerate() {
        let old = &p.tree[i];
        walk.visit(old);
        let (old_key, new_parent) = if pos == 0 {
            (p.old_root_key.clone(), None)
        } else {
            let (k, np) = walk.open_child(old)?;
            (k, Some(np))
        };
        let metadata_revision = old.metadata_revision.checked_add(1).ok_or_else(overflow)?;
        let metadata = open_metadata(
            &old.metadata_key(&old_key)?,
            &old.node_id,
            old.metadata_revision,
            &old.sealed_metadata,
        )?;
        let mut rec = old.clone();
        rec.author = author;
        rec.time = p.time;
        rec.metadata_revision = metadata_revision;
        if old.is_folder() {
            let old_fk = old.folder_key(old_key);
            let generation = old.key_generation.checked_add(1).ok_or_else(overflow)?;
            let new_fk = FolderKey {
                folder_id: old.node_id,
                generation,
                key: match new_parent {
                    None => p.new_root_key.clone(),
                    Some(_) => SecretKey::generate(rng),
                },
            };
            if let Some(np) = new_parent {
                rec.parent_generation = np.generation;
                rec.sealed_node_key = Some(ByteBuf::from(seal_node_key(
                    np,
                    old.node_id,
                    &new_fk.key,
                    rng,
                )));
            }
            rec.back_chain
                .push(ByteBuf::from(seal_back_chain(&new_fk, &old_fk, rng)?));
            rec.key_generation = generation;
            rec.metadata_generation = generation;
            rec.sealed_metadata = ByteBuf::from(seal_metadata(
                &new_fk.key,
                &old.node_id,
                metadata_revision,
                &metadata,
                rng,
            ));
            out.folder_keys.push(new_fk.clone());
            walk.add_folder(old_fk, new_fk);
        } else {
            let np = new_parent.ok_or(Error::InvalidArgument("the root is a file"))?;
            let file = old
                .file
                .as_ref()
                .ok_or(Error::Decode(DecodeError::InvalidValue))?;
            let file_key = old.open_file_key(&old_key)?;
            let node_key = SecretKey::generate(rng);
            rec.parent_generation = np.generation;
            rec.sealed_node_key = Some(ByteBuf::from(seal_node_key(
                np,
                old.node_id,
                &node_key,
                rng,
            )));
            rec.file = Some(FileRef {
                content_revision: file.content_revision,
                ciphertext_length: file.ciphertext_length,
                sealed_file_key: ByteBuf::from(seal_file_key(
                    &node_key,
                    old.node_id,
                    file.content_revision,
                    &file_key,
                    rng,
                )),
            });
            rec.sealed_metadata = ByteBuf::from(seal_metadata(
                &node_key,
                &old.node_id,
                metadata_revision,
                &metadata,
                rng,
            ));
            out.file_node_keys.insert(old.node_id, node_key);
        }
        out.signed.push(encode(&rec.sign(p.author)?));
        out.records.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{AgreementSecret, SigningKey};
    use crate::share::{
        create_share, open_grant, GrantExpectation, PinnedIdentity, RecipientKeys, PERMISSION_READ,
        PERMISSION_WRITE,
    };
    use crate::tree::{create_file, create_folder, create_root, FileContent, NewNode};
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng as _;

    struct User {
        name: String,
        sign: SigningKey,
        agree: AgreementSecret,
    }

    impl User {
        fn new(name: &str, rng: &mut impl CryptoRngCore) -> Self {
            User {
                name: name.into(),
                sign: SigningKey::generate(rng),
                agree: AgreementSecret::generate(rng),
            }
        }
        fn pinned(&self) -> PinnedIdentity {
            PinnedIdentity {
                user_name: self.name.clone(),
                identity_generation: 0,
                ed25519: self.sign.verifying_key(),
                x25519: self.agree.public_key(),
            }
        }
        fn granter(&self) -> GranterKeys<'_> {
            GranterKeys {
                signing_key: &self.sign,
                user_name: &self.name,
                identity_generation: 0,
            }
        }
        fn recipient(&self) -> RecipientKeys<'_> {
            RecipientKeys {
                user_name: &self.name,
                identity_generation: 0,
                secret: &self.agree,
            }
        }
    }

    fn meta(rev: u64) -> SealedMetadata {
        SealedMetadata {
            revision: rev,
            sealed: vec![rev as u8; 20],
        }
    }

    struct World {
        alice: User,
        bob: User,
        carol: User,
        root: FolderKey,
        root_rec: NodeRecord,
        share: ShareRecord,
        share_key: FolderKey,
        subtree: Vec<NodeRecord>,
        node_keys: BTreeMap<NodeId, SecretKey>,
        file_keys: BTreeMap<NodeId, SecretKey>,
        grants: Vec<Vec<u8>>,
    }

    /// root -> S (shared) -> {f1, D -> {f2, E -> {f3}}}
    fn world(rng: &mut rand_chacha::ChaCha20Rng) -> World {
        let alice = User::new("alice", rng);
        let bob = User::new("bob", rng);
        let carol = User::new("carol", rng);
        let r = NewNode::generate(rng);
        let (root_rec, _) = create_root(&alice.sign, &r, meta(1), 1).expect("root");
        let root = root_rec.folder_key(r.node_key.clone());
        let mut subtree = Vec::new();
        let mut node_keys = BTreeMap::new();
        let mut file_keys = BTreeMap::new();
        let mut folders: Vec<FolderKey> = vec![root.clone()];
        // (parent index into folders, folder?)
        for (parent, folder) in [
            (0usize, true),
            (1, false),
            (1, true),
            (2, false),
            (2, true),
            (3, false),
        ] {
            let node = NewNode::generate(rng);
            let pk = folders[parent].clone();
            let rec = if folder {
                let (rec, _) = create_folder(&alice.sign, &pk, &node, meta(1), 2, rng).expect("d");
                folders.push(rec.folder_key(node.node_key.clone()));
                rec
            } else {
                let c = FileContent {
                    file_key: SecretKey::generate(rng),
                    content_revision: 1,
                    ciphertext_length: 77,
                };
                file_keys.insert(node.node_id, c.file_key.clone());
                create_file(&alice.sign, &pk, &node, meta(1), &c, 2, rng)
                    .expect("f")
                    .0
            };
            node_keys.insert(node.node_id, node.node_key.clone());
            subtree.push(rec);
        }
        let share_key = folders[1].clone();
        let (share, _, grants) = create_share(
            &alice.granter(),
            ShareId::generate(rng),
            &share_key,
            vec![
                bob.pinned().as_member(PERMISSION_WRITE),
                carol.pinned().as_member(PERMISSION_READ),
            ],
            rng,
        )
        .expect("share");
        World {
            alice,
            bob,
            carol,
            root,
            root_rec,
            share,
            share_key,
            subtree,
            node_keys,
            file_keys,
            grants: grants.iter().map(encode).collect(),
        }
    }

    fn state(w: &World) -> ShareState {
        ShareState {
            share: w.share.clone(),
            nodes: w.subtree.iter().map(|r| (r.node_id, r.clone())).collect(),
        }
    }

    /// Opens every node of `st` from the share folder key; returns node keys by id.
    fn open_all(st: &ShareState, share_key: &SecretKey) -> Result<BTreeMap<NodeId, SecretKey>> {
        let mut keys = BTreeMap::new();
        keys.insert(st.share.folder_id, share_key.clone());
        let mut progress = true;
        while progress {
            progress = false;
            for r in st.nodes.values() {
                if keys.contains_key(&r.node_id) {
                    continue;
                }
                let Some(pid) = r.parent_id else { continue };
                if let Some(pk) = keys.get(&pid).cloned() {
                    let parent = &st.nodes[&pid];
                    let k = r.open_node_key(parent, &parent.folder_key(pk))?;
                    keys.insert(r.node_id, k);
                    progress = true;
                }
            }
        }
        Ok(keys)
    }

    fn params<'a>(w: &'a World, g: &'a GranterKeys<'a>, removed: &'a str) -> RemoveMember<'a> {
        RemoveMember {
            owner: g,
            share: &w.share,
            removed,
            parent_key: &w.root,
            folder_key: &w.share_key,
            subtree: &w.subtree,
            time: 10,
        }
    }

    #[test]
    fn lazy_removal() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([21; 32]);
        let w = world(&mut rng);
        let g = w.alice.granter();
        let out = remove_member_lazy(&params(&w, &g, "carol"), &mut rng).expect("rotate");
        assert!(out.rekeyed.is_empty());
        assert_eq!(out.share.generation, 1);
        assert_eq!(out.folder_keys.len(), 3);

        // Bob applies the bundle and opens his new grant.
        let mut st = state(&w);
        let bundle = encode(&out.bundle);
        let grants = st
            .apply_rotation(&bundle, &w.alice.sign.verifying_key())
            .expect("apply");
        assert_eq!(grants.len(), 1);
        let exp = GrantExpectation {
            share_id: w.share.share_id,
            generation: 1,
            granter: w.alice.pinned(),
        };
        let (_, new_key) = open_grant(&grants[0], &exp, &w.bob.recipient()).expect("bob opens");
        assert_eq!(new_key, out.folder_keys[0].key);
        // Bob opens every node (same node keys for files in lazy mode) and every file key.
        let keys = open_all(&st, &new_key).expect("open all");
        for r in st.nodes.values() {
            if let Some(fk) = w.file_keys.get(&r.node_id) {
                assert_eq!(&keys[&r.node_id], &w.node_keys[&r.node_id]);
                assert_eq!(&r.open_file_key(&keys[&r.node_id]).expect("fk"), fk);
            } else {
                // Folder metadata stays sealed under generation 0: reachable through the chain.
                assert_eq!(r.metadata_generation, 0);
                let mk = r.metadata_key(&keys[&r.node_id]).expect("metadata key");
                let old = if r.node_id == w.share.folder_id {
                    w.share_key.key.clone()
                } else {
                    w.node_keys[&r.node_id].clone()
                };
                assert_eq!(mk, old);
            }
        }
        // Applying twice fails (generation moved on); state unchanged by the failure.
        let before = st.clone();
        assert!(st
            .apply_rotation(&bundle, &w.alice.sign.verifying_key())
            .is_err());
        assert_eq!(st, before);

        // A file created after the rotation under the new generation.
        let d_new = out
            .records
            .iter()
            .find(|r| r.is_folder() && r.node_id != w.share.folder_id)
            .expect("D");
        let d_key = d_new.folder_key(keys[&d_new.node_id].clone());
        let node = NewNode::generate(&mut rng);
        let c = FileContent {
            file_key: SecretKey::generate(&mut rng),
            content_revision: 1,
            ciphertext_length: 3,
        };
        let (later, _) =
            create_file(&w.bob.sign, &d_key, &node, meta(1), &c, 11, &mut rng).expect("new");
        assert_eq!(later.parent_generation, d_new.key_generation);

        // Carol kept every old key: none opens any new key or the new file.
        let mut carol_keys: Vec<SecretKey> = w.node_keys.values().cloned().collect();
        carol_keys.push(w.share_key.key.clone());
        for r in out.records.iter().chain(core::iter::once(&later)) {
            let parent_id = r.parent_id.expect("parent");
            for k in &carol_keys {
                for gen in 0..=2u64 {
                    let aad = crate::tree::node_key_aad(parent_id, r.node_id, gen);
                    let sealed = r.sealed_node_key.as_ref().expect("sealed");
                    let opened =
                        crate::seal::open_key(k, crate::tree::LABEL_NODE_KEY, &aad, sealed);
                    if let Ok(key) = opened {
                        // Only lazily re-sealed files still carry an old key (which she had).
                        assert!(!r.is_folder() && r.node_id != later.node_id);
                        assert!(carol_keys.contains(&key));
                    }
                }
            }
        }
        for fk in &out.folder_keys {
            assert!(!carol_keys.contains(&fk.key));
        }
        // And no grant is for her.
        let exp = GrantExpectation {
            share_id: w.share.share_id,
            generation: 1,
            granter: w.alice.pinned(),
        };
        assert!(open_grant(&grants[0], &exp, &w.carol.recipient()).is_err());
        let _ = (&w.grants, &w.root_rec);
    }

    #[test]
    fn recovery_rekeys_a_share_under_the_new_identity() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([23; 32]);
        let w = world(&mut rng);
        let new_sign = SigningKey::generate(&mut rng);
        let new_granter = GranterKeys {
            signing_key: &new_sign,
            user_name: "alice",
            identity_generation: 1,
        };
        // The recovery gave the root a fresh key; the share folder is re-sealed under it.
        let new_root = FolderKey {
            folder_id: w.root.folder_id,
            generation: w.root.generation,
            key: SecretKey::generate(&mut rng),
        };
        let recover = |departed: &[String], signer: &GranterKeys<'_>, rng: &mut _| {
            rekey_share_for_recovery(
                &RecoverShare {
                    owner: signer,
                    share: &w.share,
                    departed,
                    parent_key: &new_root,
                    folder_key: &w.share_key,
                    subtree: &w.subtree,
                    time: 10,
                },
                rng,
            )
        };
        // The old key cannot make a recovery bundle.
        assert!(recover(&[], &w.alice.granter(), &mut rng).is_err());
        let out = recover(&[], &new_granter, &mut rng).expect("rekey");
        assert_eq!(out.bundle.removed, "");
        assert_eq!(out.bundle.mode, MODE_LAZY);
        assert_eq!(out.share.members, w.share.members);
        assert_eq!(
            out.share.owner.ed25519.0,
            new_sign.verifying_key().to_bytes()
        );
        let bundle = encode(&out.bundle);

        // Neither the removal rules nor the old key accept it; failures change nothing.
        let mut st = state(&w);
        assert!(st
            .apply_rotation(&bundle, &w.alice.sign.verifying_key())
            .is_err());
        assert!(st
            .apply_recovery_rotation(&bundle, &w.alice.sign.verifying_key())
            .is_err());
        // A removal bundle is not a recovery bundle.
        let g = w.alice.granter();
        let removal = remove_member_lazy(&params(&w, &g, "carol"), &mut rng).expect("removal");
        assert!(st
            .apply_recovery_rotation(&encode(&removal.bundle), &w.alice.sign.verifying_key())
            .is_err());
        // Members may be left out (the server allows only departed ones), never reordered.
        let mut reordered = out.clone();
        let mut rec = out.share.clone();
        rec.members.reverse();
        reordered.bundle.share = ByteBuf::from(encode(&rec.sign(&new_sign).expect("sign")));
        assert!(st
            .apply_recovery_rotation(&encode(&reordered.bundle), &new_sign.verifying_key())
            .is_err());
        assert_eq!(st, state(&w));

        let grants = st
            .apply_recovery_rotation(&bundle, &new_sign.verifying_key())
            .expect("apply");
        assert_eq!(grants.len(), 2);
        assert_eq!(st.share.generation, 1);
        let exp = GrantExpectation {
            share_id: w.share.share_id,
            generation: 1,
            granter: PinnedIdentity {
                user_name: "alice".into(),
                identity_generation: 1,
                ed25519: new_sign.verifying_key(),
                x25519: w.alice.agree.public_key(),
            },
        };
        let (_, new_key) = open_grant(&grants[0], &exp, &w.bob.recipient()).expect("bob opens");
        assert_eq!(new_key, out.folder_keys[0].key);
        assert_ne!(new_key, w.share_key.key);
        // Bob still reaches every old node key and file key through the new generation.
        let keys = open_all(&st, &new_key).expect("open all");
        for (id, fk) in &w.file_keys {
            assert_eq!(&keys[id], &w.node_keys[id]);
            assert_eq!(&st.nodes[id].open_file_key(&keys[id]).expect("fk"), fk);
        }
        // The share folder is sealed under the root's new key.
        let folder = &st.nodes[&w.share.folder_id];
        assert_eq!(folder.parent_generation, new_root.generation);
        assert_eq!(
            folder
                .open_node_key(&w.root_rec, &new_root)
                .expect("opens under the new root key"),
            new_key
        );

        // Departed members are rotated out.
        let out = recover(&["carol".into()], &new_granter, &mut rng).expect("rekey");
        assert_eq!(out.share.members.len(), 1);
        let mut st = state(&w);
        let grants = st
            .apply_recovery_rotation(&encode(&out.bundle), &new_sign.verifying_key())
            .expect("apply");
        assert_eq!(grants.len(), 1);
        assert!(recover(&["dave".into()], &new_granter, &mut rng).is_err());
    }

    #[test]
    fn eager_removal_rekeys_files() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([22; 32]);
        let w = world(&mut rng);
        let g = w.alice.granter();
        let mut calls = 0;
        let mut update = |r: &Rekeyed, old: &NodeRecord| {
            calls += 1;
            Ok(RekeyedFileUpdate {
                metadata: SealedMetadata {
                    revision: old.metadata_revision + 1,
                    sealed: r.node_key.expose().to_vec(),
                },
                ciphertext_length: 78,
            })
        };
        let out =
            remove_member_eager(&params(&w, &g, "bob"), &mut update, &mut rng).expect("eager");
        assert_eq!(calls, 3);
        assert_eq!(out.rekeyed.len(), 3);
        let mut st = state(&w);
        let grants = st
            .apply_rotation(&encode(&out.bundle), &w.alice.sign.verifying_key())
            .expect("apply");
        let exp = GrantExpectation {
            share_id: w.share.share_id,
            generation: 1,
            granter: w.alice.pinned(),
        };
        let (_, k) = open_grant(&grants[0], &exp, &w.carol.recipient()).expect("carol opens");
        let keys = open_all(&st, &k).expect("open");
        for r in &out.rekeyed {
            assert_eq!(keys[&r.node_id], r.node_key);
            assert_ne!(r.node_key, w.node_keys[&r.node_id]);
            let rec = &st.nodes[&r.node_id];
            assert_eq!(rec.open_file_key(&r.node_key), Ok(r.file_key.clone()));
            assert_ne!(&r.file_key, &w.file_keys[&r.node_id]);
            assert_eq!(rec.file.as_ref().expect("file").content_revision, 2);
        }
        let bob_keys: Vec<SecretKey> = w.node_keys.values().cloned().collect();
        for r in &out.rekeyed {
            assert!(!bob_keys.contains(&r.node_key) && !bob_keys.contains(&r.file_key));
        }
    }

    #[test]
    fn tampered_bundles_rejected() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([23; 32]);
        let w = world(&mut rng);
        let g = w.alice.granter();
        let out = remove_member_lazy(&params(&w, &g, "carol"), &mut rng).expect("rotate");
        let owner = w.alice.sign.verifying_key();
        let check = |b: &RotationBundle| {
            let mut st = state(&w);
            let before = st.clone();
            let r = st.apply_rotation(&encode(b), &owner);
            if r.is_err() {
                assert_eq!(st, before);
            }
            r.map(|_| ())
        };
        assert_eq!(check(&out.bundle), Ok(()));
        let mut b = out.bundle.clone();
        b.nodes.pop();
        assert!(check(&b).is_err());
        let mut b = out.bundle.clone();
        b.nodes.swap(0, 1);
        assert!(check(&b).is_err());
        let mut b = out.bundle.clone();
        b.grants.clear();
        assert!(check(&b).is_err());
        let mut b = out.bundle.clone();
        b.removed = "bob".into();
        assert!(check(&b).is_err());
        let mut b = out.bundle.clone();
        b.to_generation = 2;
        assert!(check(&b).is_err());
        // Another owner's bundle.
        let mut st = state(&w);
        assert!(st
            .apply_rotation(&encode(&out.bundle), &w.bob.sign.verifying_key())
            .is_err());
        // A node record replaced by the old one (not rotated).
        let mut b = out.bundle.clone();
        let old_signed = w.subtree[1].sign(&w.alice.sign).expect("sign");
        b.nodes[1] = ByteBuf::from(encode(&old_signed));
        assert!(check(&b).is_err());
        // Inconsistent inputs.
        assert!(remove_member_lazy(&params(&w, &g, "dave"), &mut rng).is_err());
        let bg = w.bob.granter();
        assert!(remove_member_lazy(&params(&w, &bg, "carol"), &mut rng).is_err());
        let mut p = params(&w, &g, "carol");
        let partial = &w.subtree[1..];
        p.subtree = partial;
        assert!(remove_member_lazy(&p, &mut rng).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_single_byte_change_in_a_bundle_is_rejected(idx in any::<prop::sample::Index>(), delta in 1u8..=255) {
            let mut rng = rand_chacha::ChaCha20Rng::from_seed([24; 32]);
            let w = world(&mut rng);
            let g = w.alice.granter();
            let out = remove_member_lazy(&params(&w, &g, "carol"), &mut rng).expect("rotate");
            let mut bad = encode(&out.bundle);
            let i = idx.index(bad.len());
            bad[i] = bad[i].wrapping_add(delta);
            let mut st = state(&w);
            let before = st.clone();
            prop_assert!(st.apply_rotation(&bad, &w.alice.sign.verifying_key()).is_err());
            prop_assert_eq!(st, before);
        }
    }

    /// Recovery re-keying: root -> a -> f; root -> g. Every record is signed by the new identity,
    /// every key is new (content keys excepted), metadata and content keys survive, and the old
    /// root key opens none of the new node keys.
    #[test]
    fn rekey_tree_for_recovery() {
        use crate::metadata::{open_metadata, seal_metadata, Metadata};
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([42; 32]);
        let old_author = SigningKey::generate(&mut rng);
        let new_author = SigningKey::generate(&mut rng);
        let meta = |n: &NewNode, m: Metadata, rng: &mut rand_chacha::ChaCha20Rng| SealedMetadata {
            revision: 1,
            sealed: seal_metadata(&n.node_key, &n.node_id, 1, &m, rng),
        };
        let root = NewNode::generate(&mut rng);
        let folder = |name: &str| Metadata::folder(name.into(), 5).expect("metadata");
        let (root_rec, _) =
            create_root(&old_author, &root, meta(&root, folder("root"), &mut rng), 1)
                .expect("root");
        let root_fk = root_rec.folder_key(root.node_key.clone());
        let a = NewNode::generate(&mut rng);
        let (a_rec, _) = create_folder(
            &old_author,
            &root_fk,
            &a,
            meta(&a, folder("a"), &mut rng),
            1,
            &mut rng,
        )
        .expect("a");
        let a_fk = a_rec.folder_key(a.node_key.clone());
        let mut files = Vec::new();
        let mut records = vec![a_rec.clone(), root_rec.clone()];
        for (parent, name) in [(&a_fk, "f"), (&root_fk, "g")] {
            let n = NewNode::generate(&mut rng);
            let fk = SecretKey::generate(&mut rng);
            let m = Metadata::file(name.into(), name.as_bytes(), 3, None).expect("metadata");
            let (r, _) = create_file(
                &old_author,
                parent,
                &n,
                meta(&n, m, &mut rng),
                &FileContent {
                    file_key: fk.clone(),
                    content_revision: 1,
                    ciphertext_length: 80,
                },
                1,
                &mut rng,
            )
            .expect("file");
            files.push((n, fk, name));
            records.push(r);
        }
        let new_root_key = SecretKey::generate(&mut rng);
        let out = rekey_tree(
            &RekeyTree {
                author: &new_author,
                old_root_key: &root.node_key,
                new_root_key: &new_root_key,
                tree: &records,
                time: 9,
            },
            &mut rng,
        )
        .expect("rekey");
        assert_eq!(out.records.len(), 4);
        assert_eq!(out.records[0].node_id, root.node_id);
        let authors = [new_author.verifying_key()];
        let by_id: BTreeMap<NodeId, &NodeRecord> =
            out.records.iter().map(|r| (r.node_id, r)).collect();
        for (rec, signed) in out.records.iter().zip(&out.signed) {
            let parent = rec.parent_id.map(|p| (p, by_id[&p].key_generation));
            let v = verify_node(
                signed,
                &NodeExpectation {
                    node_id: rec.node_id,
                    parent,
                    key_generation: None,
                },
                &authors,
            )
            .expect("signed by the new identity");
            assert_eq!(&v, rec);
            assert!(verify_node(
                signed,
                &NodeExpectation {
                    node_id: rec.node_id,
                    parent,
                    key_generation: None
                },
                &[old_author.verifying_key()]
            )
            .is_err());
            assert_eq!(v.metadata_revision, 2);
        }
        // Walk down from the new root key.
        let new_root = by_id[&root.node_id];
        assert_eq!(new_root.key_generation, 1);
        let nroot_fk = new_root.folder_key(new_root_key.clone());
        assert_eq!(
            new_root.folder_key_at(&nroot_fk, 0).expect("back-chain"),
            root.node_key
        );
        let name = |r: &NodeRecord, k: &SecretKey| {
            open_metadata(
                &r.metadata_key(k).expect("key"),
                &r.node_id,
                r.metadata_revision,
                &r.sealed_metadata,
            )
            .expect("metadata")
            .name()
            .to_owned()
        };
        assert_eq!(name(new_root, &new_root_key), "root");
        let new_a = by_id[&a.node_id];
        let a_key = new_a.open_node_key(new_root, &nroot_fk).expect("a key");
        assert_ne!(a_key, a.node_key);
        assert_eq!(name(new_a, &a_key), "a");
        let na_fk = new_a.folder_key(a_key);
        for (n, fk, fname) in &files {
            let r = by_id[&n.node_id];
            let parent = by_id[&r.parent_id.expect("parent")];
            let pk = if parent.node_id == a.node_id {
                &na_fk
            } else {
                &nroot_fk
            };
            let k = r.open_node_key(parent, pk).expect("file node key");
            assert_ne!(&k, &n.node_key);
            assert_eq!(&k, &out.file_node_keys[&n.node_id]);
            assert_eq!(&r.open_file_key(&k).expect("file key"), fk);
            assert_eq!(&name(r, &k), fname);
            // The old keys open none of it.
            assert!(r.open_file_key(&n.node_key).is_err());
        }
        let old_root_fk = FolderKey {
            folder_id: root.node_id,
            generation: 1,
            key: root.node_key.clone(),
        };
        assert!(new_a.open_node_key(new_root, &old_root_fk).is_err());
        // A tree without its root, or with a node key that does not open, is refused.
        assert!(rekey_tree(
            &RekeyTree {
                tree: &records[2..],
                ..RekeyTree {
                    author: &new_author,
                    old_root_key: &root.node_key,
                    new_root_key: &new_root_key,
                    tree: &records,
                    time: 9
                }
            },
            &mut rng
        )
        .is_err());
        let wrong = SecretKey::generate(&mut rng);
        assert_eq!(
            rekey_tree(
                &RekeyTree {
                    author: &new_author,
                    old_root_key: &wrong,
                    new_root_key: &new_root_key,
                    tree: &records,
                    time: 9
                },
                &mut rng
            ),
            Err(Error::DecryptionFailed)
        );
    }
}
