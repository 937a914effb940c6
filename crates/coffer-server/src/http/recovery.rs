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
//! Shares the account owns are re-keyed by `RotationBundle`s (§9.2); this server does not yet
//! check and apply those, so an account that owns shares is refused with `422` rather than left
//! with shares keyed under a compromised generation (a known gap, reported to the lead).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use coffer_core::account::{self, server_registration_finish};
use coffer_core::api::{AccountUpdated, ReauthPurpose, RecoveryFinishRequest};
use coffer_core::tree;

use super::accounts::reauth_finish;
use super::auth::Session;
use super::body::{Cbor, CborResponse};
use super::error::{record_error, ApiError, ApiResult};
use super::links::check_link_params;
use super::{delete_removed_blobs, AppState};
use crate::store::{self, NodeUpdate, NodeWrite};

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
        &acc.wrapped_master_key,
        &req.key_bundle,
        &req.signed_identity,
    )
    .map_err(|e| record_error("key bundle or identity", &e))?;
    let new_key = head.signing_key.to_bytes();

    if !state.meta.shares_owned(acc.account_id).await?.is_empty() || !req.rotations.is_empty() {
        return Err(ApiError::invalid_record(
            "recovery of an account that owns shares is not supported by this server",
        ));
    }

    // Exactly one re-keyed record per node of the account's tree.
    let tree_ids = state.meta.subtree(acc.root_node_id).await?;
    let mut current: HashMap<_, store::Node> = HashMap::with_capacity(tree_ids.len());
    for id in &tree_ids {
        let node = state
            .meta
            .node(*id)
            .await?
            .ok_or_else(|| ApiError::internal("recovery", "tree changed while reading it"))?;
        current.insert(*id, node);
    }
    if req.signed_nodes.len() != current.len() {
        return Err(ApiError::invalid_record(
            "the re-keyed tree must hold exactly one record per node",
        ));
    }
    let mut seen = HashSet::with_capacity(req.signed_nodes.len());
    let mut nodes = Vec::with_capacity(req.signed_nodes.len());
    for signed in &req.signed_nodes {
        let rec = tree::verify_node_signature(signed).map_err(|e| record_error("node", &e))?;
        let Some(stored) = current.get(&rec.node_id) else {
            return Err(ApiError::invalid_record("a node record outside the tree"));
        };
        if !seen.insert(rec.node_id) {
            return Err(ApiError::invalid_record("two records for one node"));
        }
        let old = tree::verify_node_signature(&stored.node.record)
            .map_err(|e| ApiError::internal("stored node record", e.class()))?;
        let same_place = rec.parent_id == stored.node.parent_id && rec.kind == old.kind;
        let no_rollback = rec.metadata_revision >= old.metadata_revision;
        let same_content = match (&rec.file, &old.file) {
            (Some(a), Some(b)) => {
                a.content_revision == b.content_revision
                    && a.ciphertext_length == b.ciphertext_length
            }
            (None, None) => true,
            _ => false,
        };
        if rec.author.0 != new_key || !same_place || !no_rollback || !same_content {
            return Err(ApiError::invalid_record(
                "a re-keyed node must keep its place, kind and content and be signed by the new identity",
            ));
        }
        nodes.push(NodeUpdate {
            expected_revision: stored.node.revision,
            node: NodeWrite {
                revision: stored.node.revision + 1,
                record: signed.to_vec(),
                ..stored.node.clone()
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
            wrapped_master_key: req.key_bundle.to_vec(),
            sealed_account_secrets: Vec::new(),
            expected_generation: head.generation - 1,
            identity: req.signed_identity.to_vec(),
            nodes,
            shares: Vec::new(),
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
