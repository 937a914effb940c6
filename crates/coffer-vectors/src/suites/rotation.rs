//! `rotation.json`: member removal of spec §9.2.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use coffer_core::encoding::{decode, encode, ByteBuf};
use coffer_core::ids::{NodeId, ShareId};
use coffer_core::primitives::{SecretKey, SigningKey, VerifyingKey};
use coffer_core::rotation::{
    rekey_share_for_recovery, remove_member_eager, remove_member_lazy, RecoverShare, Rekeyed,
    RekeyedFileUpdate, RemoveMember, RotationBundle, RotationOutput, ShareState,
};
use coffer_core::share::{
    create_share, GranterKeys, ShareRecord, PERMISSION_READ, PERMISSION_WRITE,
};
use coffer_core::tree::{
    create_file, create_folder, create_root, FileContent, FolderKey, NewNode, NodeRecord,
    SealedMetadata,
};

use super::expect;
use super::share::User;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

fn h(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn with(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

fn hex_list<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Value {
    Value::Array(items.into_iter().map(|b| json!(h(b))).collect())
}

struct World {
    alice: User,
    bob: User,
    carol: User,
    root: FolderKey,
    share: ShareRecord,
    share_key: FolderKey,
    /// S, f1, D, f2 (parents first).
    subtree: Vec<NodeRecord>,
    keys: BTreeMap<NodeId, SecretKey>,
}

fn meta(rng: &mut RecordingRng) -> SealedMetadata {
    SealedMetadata {
        revision: 1,
        sealed: rng.array::<24>().to_vec(),
    }
}

fn world(rng: &mut RecordingRng) -> World {
    let alice = User::new("alice", 0, rng);
    let bob = User::new("bob", 1, rng);
    let carol = User::new("carol", 0, rng);
    let r = NewNode::generate(rng);
    let m = meta(rng);
    let (root_rec, _) = create_root(&alice.sign, &r, m, 1_700_000_000).expect("root");
    let root = root_rec.folder_key(r.node_key.clone());
    let mut keys = BTreeMap::new();
    let s = NewNode::generate(rng);
    let m = meta(rng);
    let (s_rec, _) = create_folder(&alice.sign, &root, &s, m, 1_700_000_001, rng).expect("s");
    let share_key = s_rec.folder_key(s.node_key.clone());
    keys.insert(s.node_id, s.node_key.clone());
    let f1 = NewNode::generate(rng);
    let c = FileContent {
        file_key: SecretKey::from_bytes(rng.array()),
        content_revision: 1,
        ciphertext_length: 100,
    };
    let m = meta(rng);
    let (f1_rec, _) =
        create_file(&alice.sign, &share_key, &f1, m, &c, 1_700_000_002, rng).expect("f1");
    keys.insert(f1.node_id, f1.node_key.clone());
    let d = NewNode::generate(rng);
    let m = meta(rng);
    let (d_rec, _) = create_folder(&bob.sign, &share_key, &d, m, 1_700_000_003, rng).expect("d");
    keys.insert(d.node_id, d.node_key.clone());
    let d_key = d_rec.folder_key(d.node_key.clone());
    let f2 = NewNode::generate(rng);
    let c = FileContent {
        file_key: SecretKey::from_bytes(rng.array()),
        content_revision: 3,
        ciphertext_length: 200,
    };
    let m = meta(rng);
    let (f2_rec, _) = create_file(&bob.sign, &d_key, &f2, m, &c, 1_700_000_004, rng).expect("f2");
    keys.insert(f2.node_id, f2.node_key.clone());
    let (share, _, _) = create_share(
        &alice.granter(),
        ShareId::from_bytes(rng.array()),
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
        share,
        share_key,
        subtree: vec![s_rec, f1_rec, d_rec, f2_rec],
        keys,
    }
}

fn updates_for(rng: &mut RecordingRng, n: usize) -> Vec<RekeyedFileUpdate> {
    (0..n)
        .map(|_| RekeyedFileUpdate {
            metadata: SealedMetadata {
                revision: 2,
                sealed: rng.array::<24>().to_vec(),
            },
            ciphertext_length: 0,
        })
        .collect()
}

fn run(
    params: &RemoveMember<'_>,
    eager: Option<&[RekeyedFileUpdate]>,
    rng: &mut impl rand_core::CryptoRngCore,
) -> coffer_core::Result<RotationOutput> {
    match eager {
        None => remove_member_lazy(params, rng),
        Some(updates) => {
            let mut i = 0;
            let mut f = |_: &Rekeyed, old: &NodeRecord| {
                let mut u = updates
                    .get(i)
                    .cloned()
                    .ok_or(coffer_core::Error::InvalidArgument("too few updates"))?;
                i += 1;
                u.ciphertext_length = old.file.as_ref().map_or(0, |f| f.ciphertext_length);
                Ok(u)
            };
            remove_member_eager(params, &mut f, rng)
        }
    }
}

fn output_json(out: &RotationOutput) -> Value {
    let node_key_aads = out.records.iter().filter_map(|r| {
        r.parent_id
            .map(|p| coffer_core::tree::node_key_aad(p, r.node_id, r.parent_generation))
    });
    let back_chain_aads = out
        .records
        .iter()
        .filter(|r| r.is_folder())
        .map(|r| coffer_core::tree::back_chain_aad(r.node_id, r.key_generation));
    json!({
        "nodeKeyAads": hex_list(node_key_aads),
        "backChainAads": hex_list(back_chain_aads),
        "bundle": h(encode(&out.bundle)),
        "newShareRecord": h(encode(&out.share)),
        "newRecords": hex_list(out.records.iter().map(encode)),
        "newFolderKeys": out.folder_keys.iter().map(|k| json!({
            "folderId": h(k.folder_id.as_bytes()), "generation": k.generation, "key": h(k.key.expose()),
        })).collect::<Vec<_>>(),
        "rekeyed": out.rekeyed.iter().map(|r| json!({
            "nodeId": h(r.node_id.as_bytes()), "nodeKey": h(r.node_key.expose()),
            "fileKey": h(r.file_key.expose()), "contentRevision": r.content_revision,
        })).collect::<Vec<_>>(),
    })
}

/// Builds `rotation.json`.
pub fn generate() -> VectorFile {
    let mut file = VectorFile::new(
        "coffer-v1-rotation",
        "rotation",
        &[
            "Member removal: a new share generation (spec §9.2). The tree is root -> S (shared) -> {f1, D -> {f2}}; the share has members bob (write) and carol (read).",
            "MemberRemoval: the owner removes `removed` from `shareRecord`, replaying `randomness`; in eager mode the i-th re-keyed file (parents first) receives metadata `eagerMetadata[i]` (revision 2) and keeps its ciphertext length. `nodeKeyAads` (per new record), `backChainAads` (per folder, for the new entry), `bundle`, `newShareRecord`, `newRecords`, `newFolderKeys` and `rekeyed` must match byte for byte.",
            "RotationApply: a member's client with state (`stateShare`, `stateNodes`) applies `bundle` against the pinned `ownerPublic`; valid tests yield `newShareRecord`, `newNodes` (in bundle order) and `grants`; invalid tests leave the state unchanged.",
            "GrantOpen: open `signedGrant` of the new generation as `recipientName` with `recipientSecret`, expecting `shareId`, `generation` and the owner as granter.",
            "OpenPath: starting from `folderKey` as the current key of the first record of `records`, open the node key of each next record with its parent; valid tests yield `nodeKey` of the last. A removed member holding old keys fails.",
            "FileKeyOpen: open the file key of `fileRecord` with `nodeKey`.",
            "RecoveryRotation: compromise recovery (§9.4 step 3): the owner's new identity (`ownerSeed`, generation `ownerIdentityGeneration`) re-keys the share for a new generation with nobody current removed (members in `departed` left out), under the new key of the re-keyed parent (`parentGeneration`, `parentKey`), replaying `randomness`; outputs as MemberRemoval. The bundle's `removed` is the empty string and its mode lazy.",
            "RecoveryApply: as RotationApply, for a recovery bundle, against the owner's *new* identity key `ownerPublic` (which the member has verified as the successor of the pinned one, §6.6).",
        ],
    );
    file.note("Valid", "BASIC", "A well-formed input.");
    file.note(
        "Lazy",
        "BASIC",
        "Lazy mode: file node keys and file keys are kept and re-sealed.",
    );
    file.note(
        "Eager",
        "BASIC",
        "Eager mode: files get fresh node keys and file keys.",
    );
    file.note("RemovedMember", "WRONG_KEY", "The removed member, holding every key it had, tries to open what is new after the removal.");
    file.note("NotRevoked", "EDGE_CASE", "Documented non-guarantee: in lazy mode a removed member's old file node key still opens the file key of content it could read before.");
    file.note(
        "NewAfterRemoval",
        "EDGE_CASE",
        "A node created after the removal, under the new generation.",
    );
    file.note(
        "TamperedBundle",
        "MODIFIED_CIPHERTEXT",
        "A part of the bundle is dropped, reordered, replaced or modified.",
    );
    file.note(
        "WrongOwner",
        "WRONG_KEY",
        "Applied against another owner key than the pinned one.",
    );
    file.note(
        "WrongGeneration",
        "WRONG_CONTEXT",
        "A generation does not follow the state's.",
    );
    file.note(
        "TrailingBytes",
        "MALFORMED",
        "Bytes after the encoded item.",
    );
    file.note("WrongType", "MALFORMED", "The type code is wrong.");
    file.note(
        "Recovery",
        "BASIC",
        "A recovery rotation (§9.4): the owner's new identity re-keys the share, nobody current removed.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/rotation");
    let w = world(&mut rng);
    let granter = w.alice.granter();
    let params = |removed: &'static str| RemoveMember {
        owner: &granter,
        share: &w.share,
        removed,
        parent_key: &w.root,
        folder_key: &w.share_key,
        subtree: &w.subtree,
        time: 1_700_001_000,
    };
    let input_json = |removed: &str, mode: &str| {
        json!({
            "ownerSeed": h(*w.alice.sign.seed()),
            "ownerName": w.alice.name,
            "ownerIdentityGeneration": w.alice.generation,
            "shareRecord": h(encode(&w.share)),
            "removed": removed,
            "mode": mode,
            "parentId": h(w.root.folder_id.as_bytes()),
            "parentGeneration": w.root.generation,
            "parentKey": h(w.root.key.expose()),
            "folderKey": h(w.share_key.key.expose()),
            "subtree": hex_list(w.subtree.iter().map(encode)),
            "time": 1_700_001_000u64,
        })
    };

    // ---- MemberRemoval ---------------------------------------------------------------------
    let g = file.group("MemberRemoval", json!({}));
    rng.take();
    let lazy = run(&params("carol"), None, &mut rng).expect("lazy");
    let randomness = rng.take();
    let mut v = input_json("carol", "lazy");
    v["randomness"] = json!(h(&randomness));
    for (k, val) in output_json(&lazy).as_object().cloned().unwrap_or_default() {
        v[k.as_str()] = val;
    }
    g.valid("lazy removal of carol", &["Lazy"], v);
    let updates = updates_for(&mut rng, 2);
    rng.take();
    let eager = run(&params("bob"), Some(&updates), &mut rng).expect("eager");
    let randomness = rng.take();
    let mut v = input_json("bob", "eager");
    v["randomness"] = json!(h(&randomness));
    v["eagerMetadata"] = hex_list(updates.iter().map(|u| u.metadata.sealed.clone()));
    for (k, val) in output_json(&eager).as_object().cloned().unwrap_or_default() {
        v[k.as_str()] = val;
    }
    g.valid("eager removal of bob", &["Eager"], v);

    // ---- RotationApply ---------------------------------------------------------------------
    let g = file.group("RotationApply", json!({}));
    let owner_pub = h(w.alice.sign.verifying_key().to_bytes());
    let apply = |bundle: &[u8]| {
        json!({
            "stateShare": h(encode(&w.share)),
            "stateNodes": hex_list(w.subtree.iter().map(encode)),
            "ownerPublic": owner_pub,
            "bundle": h(bundle),
        })
    };
    for (out, flag, what) in [(&lazy, "Lazy", "lazy"), (&eager, "Eager", "eager")] {
        let b = encode(&out.bundle);
        let mut v = apply(&b);
        v["newShareRecord"] = json!(h(encode(&out.share)));
        v["newNodes"] = hex_list(out.records.iter().map(encode));
        v["grants"] = hex_list(out.bundle.grants.iter());
        g.valid(&format!("{what} bundle applies"), &[flag], v);
    }
    let b0 = lazy.bundle.clone();
    let mut tampered: Vec<(&str, RotationBundle, &str, &str)> = Vec::new();
    let mut b = b0.clone();
    b.nodes.pop();
    tampered.push((
        "a node record dropped",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.nodes.swap(2, 3);
    tampered.push((
        "child before its parent",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.nodes[1] = ByteBuf::from(encode(&w.subtree[1].sign(&w.alice.sign).expect("sign")));
    tampered.push((
        "a node record not rotated (old record re-signed)",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.nodes[0] = b0.nodes[1].clone();
    tampered.push((
        "a node record duplicated",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    let mut n = b.nodes[1].to_vec();
    let last = n.len() - 1;
    n[last] ^= 1;
    b.nodes[1] = ByteBuf::from(n);
    tampered.push((
        "bit flip in a node signature",
        b,
        "bad-signature",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.grants.clear();
    tampered.push(("grants dropped", b, "binding-mismatch", "TamperedBundle"));
    let mut b = b0.clone();
    b.grants = eager.bundle.grants.clone();
    tampered.push((
        "grants of another rotation",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.removed = "bob".into();
    tampered.push((
        "removed member renamed",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.share = eager.bundle.share.clone();
    tampered.push((
        "share record of another rotation",
        b,
        "binding-mismatch",
        "TamperedBundle",
    ));
    let mut b = b0.clone();
    b.share = ByteBuf::from(encode(&w.share.sign(&w.alice.sign).expect("sign")));
    tampered.push((
        "stale share record (old generation)",
        b,
        "binding-mismatch",
        "WrongGeneration",
    ));
    let mut b = b0.clone();
    b.to_generation = 2;
    tampered.push(("to generation 2", b, "binding-mismatch", "WrongGeneration"));
    let mut b = b0.clone();
    b.from_generation = 1;
    b.to_generation = 2;
    tampered.push((
        "from generation 1",
        b,
        "binding-mismatch",
        "WrongGeneration",
    ));
    let mut b = b0.clone();
    b.share_id = ShareId::from_bytes([0x66; 16]);
    tampered.push(("another share id", b, "binding-mismatch", "TamperedBundle"));
    let mut b = b0.clone();
    b.mode = 2;
    tampered.push(("mode 2", b, "invalid-value", "TamperedBundle"));
    for (what, b, failure, flag) in tampered {
        g.invalid(what, &[flag], failure, apply(&encode(&b)));
    }
    g.invalid(
        "applied against another owner",
        &["WrongOwner"],
        "binding-mismatch",
        with(
            apply(&encode(&b0)),
            "ownerPublic",
            json!(h(w.bob.sign.verifying_key().to_bytes())),
        ),
    );
    let mut t = encode(&b0);
    t.push(0);
    g.invalid(
        "trailing byte",
        &["TrailingBytes"],
        "trailing-bytes",
        apply(&t),
    );
    let mut t = encode(&b0);
    t[2] = 64;
    g.invalid("type code 64", &["WrongType"], "wrong-type", apply(&t));

    // ---- GrantOpen -------------------------------------------------------------------------
    let g = file.group("GrantOpen", json!({}));
    let go = |grant: &[u8], who: &User, generation: u64| {
        json!({
            "signedGrant": h(grant),
            "shareId": h(w.share.share_id.as_bytes()),
            "generation": generation,
            "granterName": w.alice.name,
            "granterIdentityGeneration": w.alice.generation,
            "granterPublic": h(w.alice.sign.verifying_key().to_bytes()),
            "recipientName": who.name,
            "recipientIdentityGeneration": who.generation,
            "recipientSecret": h(who.agree.expose()),
        })
    };
    let new_s_key = |out: &RotationOutput| json!(h(out.folder_keys[0].key.expose()));
    g.valid(
        "bob opens his generation-1 grant (lazy)",
        &["Lazy"],
        with(
            go(&lazy.bundle.grants[0], &w.bob, 1),
            "folderKey",
            new_s_key(&lazy),
        ),
    );
    g.valid(
        "carol opens her generation-1 grant (eager)",
        &["Eager"],
        with(
            go(&eager.bundle.grants[0], &w.carol, 1),
            "folderKey",
            new_s_key(&eager),
        ),
    );
    g.invalid(
        "removed carol tries bob's new grant",
        &["RemovedMember"],
        "binding-mismatch",
        go(&lazy.bundle.grants[0], &w.carol, 1),
    );
    g.invalid(
        "a new grant presented as generation 0",
        &["WrongGeneration"],
        "binding-mismatch",
        go(&lazy.bundle.grants[0], &w.bob, 0),
    );

    // ---- OpenPath --------------------------------------------------------------------------
    let g = file.group("OpenPath", json!({}));
    let s_old = w.share_key.key.clone();
    let d_id = w.subtree[2].node_id;
    let path = |records: &[&NodeRecord], key: &SecretKey| {
        json!({
            "records": hex_list(records.iter().map(|r| encode(*r))),
            "folderKey": h(key.expose()),
        })
    };
    let (ls, lf1, ld, lf2) = (
        &lazy.records[0],
        &lazy.records[1],
        &lazy.records[2],
        &lazy.records[3],
    );
    let s_new = &lazy.folder_keys[0].key;
    let d_new = &lazy.folder_keys[1].key;
    g.valid(
        "bob: S(1) -> D(1) -> f2, lazy",
        &["Lazy"],
        with(
            path(&[ls, ld, lf2], s_new),
            "nodeKey",
            json!(h(w.keys[&lf2.node_id].expose())),
        ),
    );
    g.valid(
        "bob: S(1) -> f1, lazy",
        &["Lazy"],
        with(
            path(&[ls, lf1], s_new),
            "nodeKey",
            json!(h(w.keys[&lf1.node_id].expose())),
        ),
    );
    g.valid(
        "bob: S(1) -> D, new key of D",
        &["Lazy"],
        with(path(&[ls, ld], s_new), "nodeKey", json!(h(d_new.expose()))),
    );
    // A file created after the removal, under D generation 1.
    let later_node = NewNode::generate(&mut rng);
    let content = FileContent {
        file_key: SecretKey::from_bytes(rng.array()),
        content_revision: 1,
        ciphertext_length: 5,
    };
    let m = meta(&mut rng);
    let d_fk = ld.folder_key(d_new.clone());
    let (later, _) = create_file(
        &w.bob.sign,
        &d_fk,
        &later_node,
        m,
        &content,
        1_700_002_000,
        &mut rng,
    )
    .expect("later");
    g.valid(
        "bob: a file created after the removal",
        &["NewAfterRemoval"],
        with(
            path(&[ls, ld, &later], s_new),
            "nodeKey",
            json!(h(later_node.node_key.expose())),
        ),
    );
    g.invalid(
        "carol with the old S key: S(1) -> f1",
        &["RemovedMember"],
        "decryption-failed",
        path(&[ls, lf1], &s_old),
    );
    g.invalid(
        "carol with the old S key: S(1) -> D",
        &["RemovedMember"],
        "decryption-failed",
        path(&[ls, ld], &s_old),
    );
    g.invalid(
        "carol with the old D key: D(1) -> f2",
        &["RemovedMember"],
        "decryption-failed",
        path(&[ld, lf2], &w.keys[&d_id]),
    );
    g.invalid(
        "carol with the old D key: the file created after the removal",
        &["RemovedMember", "NewAfterRemoval"],
        "decryption-failed",
        path(&[ld, &later], &w.keys[&d_id]),
    );
    let (es, ef1) = (&eager.records[0], &eager.records[1]);
    g.valid(
        "carol: S(1) -> f1 re-keyed, eager",
        &["Eager"],
        with(
            path(&[es, ef1], &eager.folder_keys[0].key),
            "nodeKey",
            json!(h(eager.rekeyed[0].node_key.expose())),
        ),
    );
    g.invalid(
        "bob with the old S key: S(1) -> f1, eager",
        &["RemovedMember"],
        "decryption-failed",
        path(&[es, ef1], &s_old),
    );

    // ---- FileKeyOpen -----------------------------------------------------------------------
    let g = file.group("FileKeyOpen", json!({}));
    let fko = |rec: &NodeRecord, key: &SecretKey| json!({ "fileRecord": h(encode(rec)), "nodeKey": h(key.expose()) });
    let f1_old_key = &w.keys[&lf1.node_id];
    let lazy_fk = lf1.open_file_key(f1_old_key).expect("lazy file key");
    g.valid(
        "carol's old f1 node key still opens f1's (unchanged) file key in lazy mode",
        &["NotRevoked", "Lazy"],
        with(fko(lf1, f1_old_key), "fileKey", json!(h(lazy_fk.expose()))),
    );
    g.valid(
        "eager: the new node key opens the new file key",
        &["Eager"],
        with(
            fko(ef1, &eager.rekeyed[0].node_key),
            "fileKey",
            json!(h(eager.rekeyed[0].file_key.expose())),
        ),
    );
    g.invalid(
        "eager: bob's old f1 node key fails on the re-keyed file",
        &["RemovedMember", "Eager"],
        "decryption-failed",
        fko(ef1, f1_old_key),
    );
    g.invalid(
        "carol's old D key as node key of the file created after the removal",
        &["RemovedMember", "NewAfterRemoval"],
        "decryption-failed",
        fko(&later, &w.keys[&d_id]),
    );

    recovery_groups(&mut file, &w, &lazy, &mut rng);
    file.finish()
}

/// `RecoveryRotation` and `RecoveryApply` (§9.4 step 3): alice recovers her account, so her
/// share moves to a new generation signed by her *new* identity (generation 1), nobody current
/// removed, under the new key of its (re-keyed) parent; the members accept it against that key.
fn recovery_groups(
    file: &mut VectorFile,
    w: &World,
    removal: &RotationOutput,
    rng: &mut RecordingRng,
) {
    let alice2 = User::new(&w.alice.name, w.alice.generation + 1, rng);
    let granter = alice2.granter();
    let new_root = FolderKey {
        folder_id: w.root.folder_id,
        generation: w.root.generation + 1,
        key: SecretKey::from_bytes(rng.array()),
    };
    let time = 1_700_002_000u64;
    let g = file.group("RecoveryRotation", json!({}));
    let mut outs = Vec::new();
    for (departed, what) in [
        (Vec::<String>::new(), "every member kept"),
        (vec![w.carol.name.clone()], "carol departed (deleted account), rotated out"),
    ] {
        rng.take();
        let out = rekey_share_for_recovery(
            &RecoverShare {
                owner: &granter,
                share: &w.share,
                departed: &departed,
                parent_key: &new_root,
                folder_key: &w.share_key,
                subtree: &w.subtree,
                time,
            },
            rng,
        )
        .expect("recovery rotation");
        let mut v = json!({
            "ownerSeed": h(*alice2.sign.seed()),
            "ownerName": alice2.name,
            "ownerIdentityGeneration": alice2.generation,
            "shareRecord": h(encode(&w.share)),
            "departed": departed,
            "parentId": h(new_root.folder_id.as_bytes()),
            "parentGeneration": new_root.generation,
            "parentKey": h(new_root.key.expose()),
            "folderKey": h(w.share_key.key.expose()),
            "subtree": hex_list(w.subtree.iter().map(encode)),
            "time": time,
            "randomness": h(rng.take()),
        });
        for (k, val) in output_json(&out).as_object().cloned().unwrap_or_default() {
            v[k.as_str()] = val;
        }
        g.valid(what, &["Recovery"], v);
        outs.push(out);
    }

    let g = file.group("RecoveryApply", json!({}));
    let new_owner = h(alice2.sign.verifying_key().to_bytes());
    let apply = |bundle: &[u8]| {
        json!({
            "stateShare": h(encode(&w.share)),
            "stateNodes": hex_list(w.subtree.iter().map(encode)),
            "ownerPublic": new_owner,
            "bundle": h(bundle),
        })
    };
    for (out, what) in outs.iter().zip(["every member kept", "carol rotated out"]) {
        let mut v = apply(&encode(&out.bundle));
        v["newShareRecord"] = json!(h(encode(&out.share)));
        v["newNodes"] = hex_list(out.records.iter().map(encode));
        v["grants"] = hex_list(out.bundle.grants.iter());
        g.valid(&format!("recovery bundle applies ({what})"), &["Recovery"], v);
    }
    let b0 = outs[0].bundle.clone();
    let mut b = b0.clone();
    b.removed = w.bob.name.clone();
    g.invalid("a member named as removed", &["Recovery", "TamperedBundle"], "binding-mismatch", apply(&encode(&b)));
    let mut b = b0.clone();
    b.mode = 1;
    g.invalid("eager mode", &["Recovery", "TamperedBundle"], "binding-mismatch", apply(&encode(&b)));
    let mut b = b0.clone();
    let mut n = b.nodes[1].to_vec();
    let last = n.len() - 1;
    n[last] ^= 1;
    b.nodes[1] = ByteBuf::from(n);
    g.invalid("bit flip in a node signature", &["Recovery", "TamperedBundle"], "bad-signature", apply(&encode(&b)));
    g.invalid(
        "applied against the owner's old identity key",
        &["Recovery", "WrongOwner"],
        "binding-mismatch",
        with(
            apply(&encode(&b0)),
            "ownerPublic",
            json!(h(w.alice.sign.verifying_key().to_bytes())),
        ),
    );
    g.invalid(
        "a member-removal bundle (removed carol, old identity) applied as a recovery",
        &["Recovery", "TamperedBundle"],
        "binding-mismatch",
        with(
            apply(&encode(&removal.bundle)),
            "ownerPublic",
            json!(h(w.alice.sign.verifying_key().to_bytes())),
        ),
    );
}

fn hex_array_field(t: &Test, name: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    t.fields
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("missing array {name}"))?
        .iter()
        .map(|v| Ok(hex::decode(v.as_str().unwrap_or_default())?))
        .collect()
}

fn records(t: &Test, name: &str) -> anyhow::Result<Vec<NodeRecord>> {
    hex_array_field(t, name)?
        .iter()
        .map(|b| Ok(decode(b)?))
        .collect()
}

/// The outputs of a `MemberRemoval` or `RecoveryRotation` test against what `out` computed.
fn outputs_match(t: &Test, out: &RotationOutput) -> anyhow::Result<()> {
    let got = output_json(out);
    for k in [
        "nodeKeyAads",
        "backChainAads",
        "bundle",
        "newShareRecord",
        "newRecords",
        "newFolderKeys",
        "rekeyed",
    ] {
        anyhow::ensure!(t.fields.get(k) == got.get(k), "{k} differs");
    }
    Ok(())
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, t: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "MemberRemoval" | "RecoveryRotation" => {
            let owner = SigningKey::from_seed(&t.hex_array("ownerSeed")?);
            let name = t.str("ownerName")?.to_owned();
            let granter = GranterKeys {
                signing_key: &owner,
                user_name: &name,
                identity_generation: t.u64("ownerIdentityGeneration")?,
            };
            let share: ShareRecord = decode(&t.hex("shareRecord")?)?;
            let parent_key = FolderKey {
                folder_id: NodeId::from_bytes(t.hex_array("parentId")?),
                generation: t.u64("parentGeneration")?,
                key: SecretKey::from_bytes(t.hex_array("parentKey")?),
            };
            let folder_key = FolderKey {
                folder_id: share.folder_id,
                generation: share.generation,
                key: SecretKey::from_bytes(t.hex_array("folderKey")?),
            };
            let subtree = records(t, "subtree")?;
            let mut rng = ReplayRng::new(t.hex("randomness")?);
            if group.kind == "RecoveryRotation" {
                let departed: Vec<String> = serde_json::from_value(
                    t.fields.get("departed").cloned().unwrap_or_default(),
                )?;
                let out = rekey_share_for_recovery(
                    &RecoverShare {
                        owner: &granter,
                        share: &share,
                        departed: &departed,
                        parent_key: &parent_key,
                        folder_key: &folder_key,
                        subtree: &subtree,
                        time: t.u64("time")?,
                    },
                    &mut rng,
                )?;
                anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
                return outputs_match(t, &out);
            }
            let removed = t.str("removed")?.to_owned();
            let params = RemoveMember {
                owner: &granter,
                share: &share,
                removed: &removed,
                parent_key: &parent_key,
                folder_key: &folder_key,
                subtree: &subtree,
                time: t.u64("time")?,
            };
            let updates = if t.str("mode")? == "eager" {
                Some(
                    hex_array_field(t, "eagerMetadata")?
                        .into_iter()
                        .map(|sealed| RekeyedFileUpdate {
                            metadata: SealedMetadata {
                                revision: 2,
                                sealed,
                            },
                            ciphertext_length: 0,
                        })
                        .collect::<Vec<_>>(),
                )
            } else {
                None
            };
            let out = run(&params, updates.as_deref(), &mut rng)?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            outputs_match(t, &out)
        }
        "RotationApply" | "RecoveryApply" => {
            let share: ShareRecord = decode(&t.hex("stateShare")?)?;
            let nodes = records(t, "stateNodes")?;
            let mut state = ShareState {
                share,
                nodes: nodes.into_iter().map(|r| (r.node_id, r)).collect(),
            };
            let before = state.clone();
            let owner = VerifyingKey::from_bytes(&t.hex_array("ownerPublic")?)?;
            let out = if group.kind == "RecoveryApply" {
                state.apply_recovery_rotation(&t.hex("bundle")?, &owner)
            } else {
                state.apply_rotation(&t.hex("bundle")?, &owner)
            };
            if out.is_err() {
                anyhow::ensure!(state == before, "state changed by a rejected bundle");
            }
            expect(t, out, |grants| {
                anyhow::ensure!(encode(&state.share) == t.hex("newShareRecord")?, "share");
                let want = records(t, "newNodes")?;
                anyhow::ensure!(want.len() == state.nodes.len(), "node count");
                for r in want {
                    anyhow::ensure!(state.nodes.get(&r.node_id) == Some(&r), "node differs");
                }
                anyhow::ensure!(grants == hex_array_field(t, "grants")?, "grants");
                Ok(())
            })
        }
        "GrantOpen" => super::share::verify_grant_open(t),
        "OpenPath" => {
            let recs = records(t, "records")?;
            let mut key = SecretKey::from_bytes(t.hex_array("folderKey")?);
            let mut out = Ok(());
            for pair in recs.windows(2) {
                match pair[1].open_node_key(&pair[0], &pair[0].folder_key(key.clone())) {
                    Ok(k) => key = k,
                    Err(e) => {
                        out = Err(e);
                        break;
                    }
                }
            }
            expect(t, out.map(|()| key), |k| {
                anyhow::ensure!(k.expose()[..] == t.hex("nodeKey")?[..], "node key");
                Ok(())
            })
        }
        "FileKeyOpen" => {
            let rec: NodeRecord = decode(&t.hex("fileRecord")?)?;
            let out = rec.open_file_key(&SecretKey::from_bytes(t.hex_array("nodeKey")?));
            expect(t, out, |k| {
                anyhow::ensure!(k.expose()[..] == t.hex("fileKey")?[..], "file key");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
