//! Rotation bundles (spec §9) on arbitrary input.
//!
//! Properties: the `RotationBundle` decoder never panics and accepts only canonical encodings;
//! `bundle_share` and `ShareState::apply_rotation` never panic, and a failed `apply_rotation`
//! leaves the state unchanged. To reach the checks behind the signatures, the share record,
//! grants and node records inside a fuzzer-chosen bundle are rebound to a fixed owner key and
//! re-signed, and the state is built to match the bundle's share, folder and generation (old
//! members = the new members plus the removed one).
#![no_main]

use std::collections::BTreeMap;

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::primitives::SigningKey;
use coffer_core::rotation::{bundle_share, RotationBundle, ShareState};
use coffer_core::share::{Grant, Member, ShareRecord, SignedGrant, SignedShare, LABEL_GRANT};
use coffer_core::tree::{NodeRecord, SignedNode};
use libfuzzer_sys::fuzz_target;

fn resign(bundle: &mut RotationBundle, owner: &SigningKey) -> Option<ShareRecord> {
    let pk = Bytes(owner.verifying_key().to_bytes());
    let outer: SignedShare = decode(&bundle.share).ok()?;
    let mut record: ShareRecord = decode(&outer.record).ok()?;
    record.owner.ed25519 = pk;
    bundle.share = ByteBuf::from(encode(&record.sign(owner).ok()?));
    for g in &mut bundle.grants {
        let Ok(outer) = decode::<SignedGrant>(g) else {
            continue;
        };
        let Ok(mut grant) = decode::<Grant>(&outer.grant) else {
            continue;
        };
        grant.granter.ed25519 = pk;
        let bytes = encode(&grant);
        *g = ByteBuf::from(encode(&SignedGrant {
            signature: Bytes(owner.sign(LABEL_GRANT, &bytes)),
            grant: ByteBuf::from(bytes),
        }));
    }
    for n in &mut bundle.nodes {
        let Ok(outer) = decode::<SignedNode>(n) else {
            continue;
        };
        let Ok(mut node) = decode::<NodeRecord>(&outer.record) else {
            continue;
        };
        node.author = pk;
        if let Ok(s) = node.sign(owner) {
            *n = ByteBuf::from(encode(&s));
        }
    }
    Some(record)
}

fuzz_target!(|data: &[u8]| {
    let owner = SigningKey::from_seed(&[14; 32]);
    let Ok(mut bundle) = decode::<RotationBundle>(data) else {
        return;
    };
    assert_eq!(
        encode(&bundle),
        data,
        "accepted a non-canonical RotationBundle"
    );
    let _ = bundle_share(&bundle);

    let Some(new_share) = resign(&mut bundle, &owner) else {
        return;
    };
    let mut old = new_share.clone();
    old.share_id = bundle.share_id;
    old.folder_id = bundle.folder_id;
    old.generation = bundle.from_generation;
    let removed = Member {
        user_name: bundle.removed.clone(),
        ed25519: Bytes([15; 32]),
        x25519: Bytes([16; 32]),
        identity_generation: 0,
        permission: 0,
    };
    old.members.push(removed);
    let mut nodes = BTreeMap::new();
    for n in &bundle.nodes {
        if let Ok(outer) = decode::<SignedNode>(n) {
            if let Ok(mut node) = decode::<NodeRecord>(&outer.record) {
                node.key_generation = node.key_generation.saturating_sub(1);
                nodes.insert(node.node_id, node);
            }
        }
    }
    let mut state = ShareState { share: old, nodes };
    let before = state.clone();
    let bytes = encode(&bundle);
    if state
        .apply_rotation(&bytes, &owner.verifying_key())
        .is_err()
    {
        assert_eq!(state, before, "a failed rotation changed the state");
    }
});
