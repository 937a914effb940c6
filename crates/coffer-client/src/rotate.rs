//! Compromise recovery (spec §9.4, §11.6.8): new master key and identity generation,
//! everything re-wrapped, other sessions revoked.
//!
//! [`Client::rotate_keys`] reads and verifies the whole tree with the current keys, then, after
//! a fresh proof of the password: runs a new OPAQUE registration (with a new password, or the
//! same one again: the export key and every key derived from it are fresh either way), draws a
//! new master key, identity generation (signed by the old one) and root key
//! (`coffer_core::account::recover`), re-keys every node of the tree under them
//! (`coffer_core::rotation::rekey_tree`: new folder keys and file node keys, everything
//! re-sealed and re-signed by the new identity; content keys are kept, so content is not
//! re-uploaded), replaces every live link by a rotated one (new URL, owner entry sealed under
//! the new master key), and sends it all in one request that the server applies atomically,
//! ending every other session and every unfinished upload. The session file then holds the new
//! keys. Peers see the new identity generation through a valid chain (their pins advance).

use coffer_core::account::{self, link_entries_key, OpaqueIdentities};
use coffer_core::api::{self, ReauthPurpose};
use coffer_core::encoding::encode;
use coffer_core::encoding::ByteBuf;
use coffer_core::ids::NodeId;
use coffer_core::link::{self, LinkTarget, NodeKind};
use coffer_core::primitives::SecretKey;
use coffer_core::rotation::{rekey_share_for_recovery, rekey_tree, RecoverShare, RekeyTree};
use coffer_core::share::GranterKeys;
use coffer_core::tree::{self, NodeExpectation, NodeRecord};
use rand_core::OsRng;
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::http::Retry;
use crate::{now, Client};

/// What `keys rotate` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotated {
    /// The new identity generation.
    pub identity_generation: u64,
    /// Its fingerprint (peers see it change).
    pub fingerprint: String,
    /// Node records re-keyed.
    pub nodes: usize,
    /// Other sessions ended.
    pub sessions_revoked: u64,
    /// Links kept, each with its new URL (the old URLs stopped working).
    pub links: Vec<RotatedLink>,
}

/// A link replaced during recovery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotatedLink {
    /// The old link id.
    pub old_link_id: String,
    /// The new URL.
    pub url: String,
}

impl Client {
    /// Compromise recovery (spec §9.4): see the module documentation. `password` is the current
    /// password; `new_password` the password from now on (it may be the same).
    ///
    /// # Errors
    /// [`Error::Auth`] for a wrong password; [`Error::Integrity`] when the tree or the own
    /// identity does not verify (nothing is sent then); [`Error::Conflict`] when the account
    /// changed meanwhile.
    pub async fn rotate_keys(&mut self, password: &[u8], new_password: &[u8]) -> Result<Rotated> {
        let s = self.session()?.clone();
        let token = s.token.clone();
        let secrets = &s.account.secrets;
        let me = secrets.identity.signing.verifying_key();

        // Everything is read and verified with the current keys before anything changes.
        let shares: api::ShareList = self
            .http()
            .get("/v1/shares", Some(&token))
            .await
            .map_err(crate::account::session_problem)?;
        // Every owned share moves to a new generation signed by the new identity (§9.4): its
        // current record, verified under the current identity, and the subtree below it.
        let mut owned = Vec::with_capacity(shares.owned.len());
        let mut authors = vec![me];
        for e in &shares.owned {
            let rec = coffer_core::share::verify_share(&e.signed_share, e.share_id, &me, 0)?;
            authors.extend(rec.writers()?);
            owned.push(rec);
        }
        let chain = self.identity_chain(s.account_id()).await?;
        let current = account::verify_chain(&chain)?;
        if current.user_name != s.username {
            return Err(Error::integrity("identity chain names another user"));
        }
        s.account.check_identity(&current)?;
        let current_signed = chain
            .last()
            .ok_or_else(|| Error::integrity("empty identity chain"))?
            .clone();
        let root: api::NodeResponse = self.http().get("/v1/root", Some(&token)).await?;
        let root_record = tree::verify_node(
            &root.signed_node,
            &NodeExpectation {
                node_id: secrets.root_node_id,
                parent: None,
                key_generation: None,
            },
            &[me],
        )?;
        let nodes =
            crate::shares::subtree(self, &root_record, &secrets.root_node_key, &authors).await?;
        // Which owned share (if any) each node lies in: shares do not nest (§11.5).
        let parents: BTreeMap<NodeId, Option<NodeId>> = nodes
            .iter()
            .map(|(r, _)| (r.node_id, r.parent_id))
            .collect();
        let share_of = |id: NodeId| -> Option<NodeId> {
            let mut cur = Some(id);
            while let Some(c) = cur {
                if owned.iter().any(|o| o.folder_id == c) {
                    return Some(c);
                }
                cur = parents.get(&c).copied().flatten();
            }
            None
        };
        let mut records = Vec::new();
        let mut shared: BTreeMap<NodeId, Vec<(NodeRecord, SecretKey)>> = BTreeMap::new();
        for (r, k) in nodes {
            match share_of(r.node_id) {
                Some(root) => shared.entry(root).or_default().push((r, k)),
                None => records.push(r),
            }
        }
        let links: api::LinkList = self.http().get("/v1/links", Some(&token)).await?;
        let old_owner_key = link_entries_key(&s.account.master_key, &s.account_id());
        let t = now();
        let mut keep = Vec::new();
        for l in &links.links {
            let entry = link::open_owner_entry(&old_owner_key, l.link_id, &l.owner_entry)?;
            let live = entry.expires_at.is_none_or(|e| t + 60 < e)
                && entry.max_downloads.is_none_or(|m| l.downloads < m);
            if live {
                keep.push((l.link_id, l.kind, entry));
            }
        }
        let info: api::AccountInfo = self.http().get("/v1/account", Some(&token)).await?;

        // The fresh proof, the new registration, the new keys.
        let re = self
            .reauth(ReauthPurpose::Recovery, password, Some(new_password))
            .await?;
        let registration = re
            .registration
            .ok_or_else(|| Error::State("registration state missing".into()))?;
        let reg_response = re
            .response
            .registration_response
            .as_ref()
            .ok_or_else(|| Error::integrity("no registration response for a recovery"))?;
        let sid = self.server_identity().to_owned();
        let ids = OpaqueIdentities {
            user_name: &s.username,
            server_identity: &sid,
        };
        let recovery = account::recover(
            registration,
            new_password,
            reg_response,
            &ids,
            &s.account,
            &current_signed,
            t,
            &mut OsRng,
        )?;
        let new_secrets = &recovery.account.secrets;
        let rekeyed = rekey_tree(
            &RekeyTree {
                author: &new_secrets.identity.signing,
                old_root_key: &secrets.root_node_key,
                new_root_key: &new_secrets.root_node_key,
                tree: &records,
                time: t,
            },
            &mut OsRng,
        )?;
        // Each owned share: a recovery rotation under the new identity, its folder sealed under
        // its parent's new key. Files in shares keep their node keys (lazy mode).
        let new_granter = GranterKeys {
            signing_key: &new_secrets.identity.signing,
            user_name: &s.username,
            identity_generation: new_secrets.identity_generation,
        };
        let mut folder_keys = rekeyed.folder_keys.clone();
        let mut file_keys = rekeyed.file_node_keys.clone();
        let mut rotations = Vec::with_capacity(owned.len());
        for share in &owned {
            let Some(sub) = shared.get(&share.folder_id) else {
                return Err(Error::integrity("a shared folder is missing from the tree"));
            };
            let Some((root_rec, root_key)) = sub.iter().find(|(r, _)| r.node_id == share.folder_id)
            else {
                return Err(Error::integrity("a shared folder is missing from the tree"));
            };
            let parent = root_rec
                .parent_id
                .and_then(|p| rekeyed.folder_keys.iter().find(|k| k.folder_id == p))
                .ok_or_else(|| Error::integrity("a shared folder's parent is not in the tree"))?;
            let subtree: Vec<NodeRecord> = sub.iter().map(|(r, _)| r.clone()).collect();
            let out = rekey_share_for_recovery(
                &RecoverShare {
                    owner: &new_granter,
                    share,
                    // Every listed member is kept (§9.4 lets departed ones be left out). The
                    // server's `departed` list is an unsigned claim: acting on it would let a
                    // server drop members from the owner's share during a recovery. A member
                    // who left gets a grant the server does not serve it.
                    departed: &[],
                    parent_key: parent,
                    folder_key: &root_rec.folder_key(root_key.clone()),
                    subtree: &subtree,
                    time: t,
                },
                &mut OsRng,
            )?;
            folder_keys.extend(out.folder_keys.iter().cloned());
            for (r, k) in sub {
                if !r.is_folder() {
                    file_keys.insert(r.node_id, k.clone());
                }
            }
            rotations.push(ByteBuf::from(encode(&out.bundle)));
        }
        let new_owner_key = link_entries_key(&recovery.account.master_key, &s.account_id());
        let mut replacements = Vec::with_capacity(keep.len());
        let mut rotated_links = Vec::with_capacity(keep.len());
        for (old_id, kind, entry) in &keep {
            let target = match entry.node_kind {
                NodeKind::Folder => folder_keys
                    .iter()
                    .find(|k| k.folder_id == entry.node_id)
                    .map(|k| LinkTarget {
                        node_id: entry.node_id,
                        node_kind: NodeKind::Folder,
                        generation: k.generation,
                        node_key: k.key.clone(),
                    }),
                NodeKind::File => rekeyed
                    .file_node_keys
                    .get(&entry.node_id)
                    .map(|k| LinkTarget {
                        node_id: entry.node_id,
                        node_kind: NodeKind::File,
                        generation: 0,
                        node_key: k.clone(),
                    }),
            };
            // A link whose node is gone is not kept (the server revokes it).
            let Some(target) = target else { continue };
            let created = link::rotate_link(&mut OsRng, entry, self.http().base(), &target, t)?;
            let sealed = link::seal_owner_entry(&new_owner_key, &created.owner_entry, &mut OsRng);
            let e = &created.owner_entry;
            replacements.push(api::LinkReplacement {
                old_link_id: *old_id,
                link: api::LinkParams {
                    link_id: created.url.link_id(),
                    node_id: e.node_id,
                    kind: *kind,
                    link_record: ByteBuf::from(created.record.clone()),
                    owner_entry: ByteBuf::from(sealed),
                    verifier_hash: created.verifier_hash.map(coffer_core::encoding::Bytes),
                    expires_at: e.expires_at,
                    max_downloads: e.max_downloads,
                },
            });
            rotated_links.push(RotatedLink {
                old_link_id: old_id.to_b64(),
                url: created.url.to_string(),
            });
        }
        let body = api::RecoveryFinishRequest {
            reauth_id: re.response.reauth_id,
            credential_finalization: ByteBuf::from(re.login.finalization.clone()),
            expected_account_revision: info.account_revision,
            registration_upload: ByteBuf::from(recovery.registration_upload.clone()),
            key_bundle: ByteBuf::from(recovery.key_bundle.clone()),
            signed_identity: ByteBuf::from(recovery.signed_identity.clone()),
            signed_nodes: rekeyed.signed.iter().cloned().map(ByteBuf::from).collect(),
            rotations,
            links: replacements,
        };
        let done: api::AccountUpdated = self
            .http()
            .post(
                "/v1/account/recover/finish",
                Some(&token),
                &body,
                Retry::Once,
            )
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::RevisionMismatch) => Error::Conflict(
                    "the account changed meanwhile (another session?): run `coffer keys rotate` again"
                        .into(),
                ),
                Some(api::ProblemKind::ReauthFailed) => Error::Auth("wrong password".into()),
                _ => e,
            })?;
        if done.identity_generation != new_secrets.identity_generation {
            return Err(Error::integrity(
                "the server reports another identity generation after the recovery",
            ));
        }
        let mut next = s.clone();
        next.account = recovery.account.clone();
        next.key_bundle = recovery.key_bundle.clone();
        next.account_revision = done.account_revision;
        self.set_session(Some(next))?;
        let verified = self.own_identity().await?;
        Ok(Rotated {
            identity_generation: verified.generation,
            fingerprint: verified.fingerprint.to_string(),
            nodes: rekeyed.signed.len() + shared.values().map(Vec::len).sum::<usize>(),
            sessions_revoked: done.sessions_revoked,
            links: rotated_links,
        })
    }
}
