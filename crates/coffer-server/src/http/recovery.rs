//! Compromise recovery (spec §11.6.8, §9.4): `POST /v1/account/recover/finish`.
//!
//! After the fresh proof (§11.6.6) the server checks the expected account revision, the new
//! OPAQUE registration upload, the next key bundle and identity generation
//! (`account::check_recovery`), one re-keyed node record for every node of the account's tree
//! (signed under the *new* identity key, same node, parent and kind, no metadata or content
//! rollback), and every link replacement (an existing link of the account, replaced by a link
//! that passes the create checks for the same node and kind). All of it is applied in one store
//! transaction, which also ends every other session, handshake, unfinished upload, unreplaced
//! link and link token of the account.
//!
//! Every share the account owns is re-keyed by its own `RotationBundle` (§9.2 shape, §9.4 rules:
//! signed by the new identity, nobody current removed, lazy), checked with the protocol's rules
//! (`rotation::ShareState::apply_recovery_rotation`) against the stored share and subtree; the
//! nodes of an owned share are re-keyed by its bundle, every other node by `signed-nodes`.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use coffer_core::account::{self, server_registration_finish};
use coffer_core::api::{AccountUpdated, ReauthPurpose, RecoveryFinishRequest};
use coffer_core::encoding::decode_bounded;
use coffer_core::ids::{NodeId, ShareId};
use coffer_core::rotation::{self, RotationBundle, ShareState};
use coffer_core::tree::{self, NodeRecord};

use super::accounts::reauth_finish;
use super::auth::Session;
use super::body::{Cbor, CborResponse};
use super::error::{record_error, ApiError, ApiResult};
use super::links::check_link_params;
use super::nodes::{peek_record, stored_record};
use super::shares::stored_share;
use super::{delete_removed_blobs, AppState};
use crate::store::{self, GrantWrite, NodeUpdate, NodeWrite, ShareRekey, ShareWrite};

/// `POST /v1/account/recover/finish`.
pub(crate) async fn recover_finish(
    State(state): State<AppState>,
    session: Session,
    Cbor(req): Cbor<RecoveryFinishRequest>,
) -> ApiResult<CborResponse<AccountUpdated>> {
    let acc = reauth_finish(
        &state,
        &session,
        ReauthPurpose::Recovery,
        req.reauth_id.0,
        &req.credential_finalization,
    )
    .await?;
    if req.expected_account_revision != acc.revision {
        return Err(ApiError::revision_mismatch(acc.revision));
    }
    let password_file = server_registration_finish(&req.registration_upload)
        .map_err(|e| record_error("registration upload", &e))?;
    let chain = state
        .meta
        .identity_chain(acc.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("recovery", "account without identity chain"))?;
    let head = account::check_recovery(
        &chain.generations,
        &acc.key_bundle,
        &req.key_bundle,
        &req.signed_identity,
    )
    .map_err(|e| record_error("key bundle or identity", &e))?;
    let new_key = head.signing_key.to_bytes();

    // The account's tree, and which of its nodes lie in a share it owns (shares are disjoint
    // subtrees, §11.10): those are re-keyed by the share's rotation bundle, every other node by
    // exactly one record of `signed-nodes`.
    let owned = state.meta.shares_owned(acc.account_id).await?;
    let tree_ids = state.meta.subtree(acc.root_node_id).await?;
    let mut current: HashMap<NodeId, store::Node> = HashMap::with_capacity(tree_ids.len());
    for id in &tree_ids {
        let node = state
            .meta
            .node(*id)
            .await?
            .ok_or_else(|| ApiError::internal("recovery", "tree changed while reading it"))?;
        current.insert(*id, node);
    }
    let mut share_nodes: HashMap<ShareId, Vec<NodeId>> = HashMap::with_capacity(owned.len());
    let mut in_share = HashSet::new();
    for s in &owned {
        let ids = state.meta.subtree(s.share.root_node_id).await?;
        in_share.extend(ids.iter().copied());
        share_nodes.insert(s.share.share_id, ids);
    }
    if req.signed_nodes.len() + in_share.len() != current.len() {
        return Err(ApiError::invalid_record(
            "the re-keyed tree must hold exactly one record per node outside the owned shares",
        ));
    }
    let mut new_records: HashMap<NodeId, NodeRecord> = HashMap::with_capacity(current.len());
    let mut nodes = Vec::with_capacity(current.len());
    for signed in &req.signed_nodes {
        let rec = tree::verify_node_signature(signed).map_err(|e| record_error("node", &e))?;
        let Some(stored) = current.get(&rec.node_id) else {
            return Err(ApiError::invalid_record("a node record outside the tree"));
        };
        if in_share.contains(&rec.node_id) {
            return Err(ApiError::invalid_record(
                "a node of an owned share is re-keyed by the share's rotation bundle",
            ));
        }
        if rec.author.0 != new_key {
            return Err(ApiError::invalid_record(
                "a re-keyed node must be signed by the new identity",
            ));
        }
        nodes.push(rekeyed(stored, &rec, signed)?);
        if new_records.insert(rec.node_id, rec).is_some() {
            return Err(ApiError::invalid_record("two records for one node"));
        }
    }

    // One rotation bundle per owned share, each checked as member removal checks it (§11.10),
    // with the recovery rules of §9.4: signed by the new identity, nobody current removed,
    // content kept.
    if req.rotations.len() != owned.len() {
        return Err(ApiError::invalid_record(
            "recovery needs exactly one rotation bundle per share the account owns",
        ));
    }
    let mut shares = Vec::with_capacity(owned.len());
    let mut rotated = HashSet::with_capacity(owned.len());
    for bytes in &req.rotations {
        let bundle: RotationBundle = decode_bounded(bytes, rotation::MAX_BUNDLE_LEN)
            .map_err(|_| ApiError::invalid_record("not a RotationBundle"))?;
        let Some(s) = owned.iter().find(|s| s.share.share_id == bundle.share_id) else {
            return Err(ApiError::invalid_record(
                "a rotation bundle for a share the account does not own",
            ));
        };
        if !rotated.insert(bundle.share_id) {
            return Err(ApiError::invalid_record(
                "two rotation bundles for one share",
            ));
        }
        let old_share = stored_share(s)?;
        let mut records = BTreeMap::new();
        for id in share_nodes.get(&s.share.share_id).into_iter().flatten() {
            let n = current
                .get(id)
                .ok_or_else(|| ApiError::internal("recovery", "share outside the tree"))?;
            records.insert(*id, stored_record(n)?);
        }
        let mut st = ShareState {
            share: old_share.clone(),
            nodes: records,
        };
        st.apply_recovery_rotation(bytes, &head.signing_key)
            .map_err(|_| {
                ApiError::invalid_record("a rotation bundle does not verify against its share")
            })?;
        // Members may be left out only if they departed; the stored member list is in record
        // order.
        let mut members = Vec::with_capacity(s.share.members.len());
        for (&(account, permission), m) in s.share.members.iter().zip(&old_share.members) {
            if st.share.member(&m.user_name).is_some() {
                members.push((account, permission));
            } else if !s.departed.contains(&account) {
                return Err(ApiError::invalid_record(
                    "a recovery removes no current member (use member removal)",
                ));
            }
        }
        // The shared folder is sealed under its parent's new generation.
        let folder = st
            .nodes
            .get(&s.share.root_node_id)
            .ok_or_else(|| ApiError::internal("recovery", "share folder missing"))?;
        let parent_ok = folder
            .parent_id
            .and_then(|p| new_records.get(&p))
            .is_some_and(|p| p.key_generation == folder.parent_generation);
        if !parent_ok {
            return Err(ApiError::invalid_record(
                "a shared folder must be sealed under its parent's new generation",
            ));
        }
        for signed in &bundle.nodes {
            let rec = peek_record(signed)?;
            let stored = current
                .get(&rec.node_id)
                .ok_or_else(|| ApiError::internal("recovery", "bundle node outside the tree"))?;
            nodes.push(rekeyed(stored, &rec, signed)?);
        }
        shares.push(ShareRekey {
            grants: bundle
                .grants
                .iter()
                .zip(&members)
                .map(|(g, (member, _))| GrantWrite {
                    share_id: bundle.share_id,
                    member: *member,
                    generation: bundle.to_generation,
                    grant: g.to_vec(),
                })
                .collect(),
            share: ShareWrite {
                share_id: bundle.share_id,
                root_node_id: s.share.root_node_id,
                owner: acc.account_id,
                generation: bundle.to_generation,
                members,
                record: bundle.share.to_vec(),
            },
        });
    }

    // Link replacements.
    let now = state.now();
    let mut links = Vec::with_capacity(req.links.len());
    let mut replaced = HashSet::new();
    for r in &req.links {
        let old = state
            .meta
            .link(r.old_link_id)
            .await?
            .filter(|l| l.link.owner == acc.account_id)
            .ok_or_else(|| {
                ApiError::invalid_record("a replaced link is not a link of the account")
            })?;
        if !replaced.insert(r.old_link_id) {
            return Err(ApiError::invalid_record("a link replaced twice"));
        }
        let write = check_link_params(&state, acc.account_id, &r.link, now).await?;
        if write.node_id != old.link.node_id || write.kind != old.link.kind {
            return Err(ApiError::invalid_record(
                "a replacement link keeps its node and kind",
            ));
        }
        links.push((r.old_link_id, write));
    }

    let updated = state
        .meta
        .recover_account(store::Recovery {
            account_id: acc.account_id,
            keep_session: session.session_id,
            expected_revision: req.expected_account_revision,
            password_file,
            // The store keeps the whole §6.4 KeyBundle in this column (see accounts.rs).
            key_bundle: req.key_bundle.to_vec(),
            expected_generation: head.generation - 1,
            identity: req.signed_identity.to_vec(),
            nodes,
            shares,
            links,
        })
        .await?;
    delete_removed_blobs(&state, &updated.removed).await;
    Ok(CborResponse::ok(AccountUpdated {
        account_revision: updated.revision,
        identity_generation: updated.identity_generation,
        sessions_revoked: updated.sessions_revoked,
    }))
}

/// The update of one stored node to its re-keyed record: same node, parent and kind, no metadata
/// rollback, the same content (a recovery does not re-encrypt; §11.6.8).
fn rekeyed(stored: &store::Node, rec: &NodeRecord, signed: &[u8]) -> ApiResult<NodeUpdate> {
    let old = stored_record(stored)?;
    let same_place = rec.parent_id == stored.node.parent_id && rec.kind == old.kind;
    let no_rollback = rec.metadata_revision >= old.metadata_revision;
    let same_content = match (&rec.file, &old.file) {
        (Some(a), Some(b)) => {
            a.content_revision == b.content_revision && a.ciphertext_length == b.ciphertext_length
        }
        (None, None) => true,
        _ => false,
    };
    if !same_place || !no_rollback || !same_content {
        return Err(ApiError::invalid_record(
            "a re-keyed node must keep its place, kind and content",
        ));
    }
    Ok(NodeUpdate {
        expected_revision: stored.node.revision,
        node: NodeWrite {
            revision: stored.node.revision + 1,
            record: signed.to_vec(),
            ..stored.node.clone()
        },
    })
}
