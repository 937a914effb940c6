//! `tree.json`: node records, node keys, file keys and back-chains of spec §7.

use serde_json::{json, Value};

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::NodeId;
use coffer_core::primitives::{SecretKey, SigningKey, VerifyingKey};
use coffer_core::tree::{
    self, back_chain_aad, create_file, create_folder, create_root, file_key_aad, node_key_aad,
    FileContent, FolderKey, NewNode, NodeExpectation, NodeRecord, SealedMetadata, SignedNode,
};

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

fn h(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn with(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

fn flip(b: &ByteBuf, i: usize) -> ByteBuf {
    let mut v = b.to_vec();
    v[i] ^= 0x01;
    ByteBuf::from(v)
}

fn flip_id(id: NodeId) -> NodeId {
    let mut b = *id.as_bytes();
    b[0] ^= 0x01;
    NodeId::from_bytes(b)
}

/// The fixture the whole file is built from.
pub(crate) struct Fixture {
    pub(crate) owner: SigningKey,
    pub(crate) writer: SigningKey,
    pub(crate) root: NodeRecord,
    pub(crate) root_key: SecretKey,
    /// Folder A at generation 0 and at generation 2.
    pub(crate) a0: NodeRecord,
    pub(crate) a2: NodeRecord,
    pub(crate) a_keys: Vec<SecretKey>,
    /// File G sealed under A generation 0; file F and folder B (by the writer) under generation 2.
    pub(crate) g: NodeRecord,
    pub(crate) f: NodeRecord,
    pub(crate) b: NodeRecord,
    pub(crate) g_key: SecretKey,
    pub(crate) f_key: SecretKey,
    pub(crate) b_key: SecretKey,
    pub(crate) f_file_key: SecretKey,
    pub(crate) g_file_key: SecretKey,
    /// Creation cases: (comment, inputs/outputs JSON).
    pub(crate) creations: Vec<(String, Value)>,
}

fn meta(rng: &mut RecordingRng, len: usize) -> SealedMetadata {
    let mut sealed = vec![0u8; len];
    rand_core::RngCore::fill_bytes(rng, &mut sealed);
    SealedMetadata {
        revision: 1,
        sealed,
    }
}

#[allow(clippy::too_many_arguments)]
fn creation_json(
    author: &SigningKey,
    parent: &FolderKey,
    node: &NewNode,
    m: &SealedMetadata,
    content: Option<&FileContent>,
    time: u64,
    randomness: &[u8],
    rec: &NodeRecord,
    signed: &SignedNode,
) -> Value {
    let mut v = json!({
        "authorSeed": h(*author.seed()),
        "parentId": h(parent.folder_id.as_bytes()),
        "parentGeneration": parent.generation,
        "parentKey": h(parent.key.expose()),
        "kind": rec.kind,
        "metadataRevision": m.revision,
        "sealedMetadata": h(&m.sealed),
        "time": time,
        "randomness": h(randomness),
        "nodeId": h(node.node_id.as_bytes()),
        "nodeKey": h(node.node_key.expose()),
        "nodeKeyAad": h(node_key_aad(parent.folder_id, node.node_id, parent.generation)),
        "sealedNodeKey": h(rec.sealed_node_key.as_ref().map(|b| b.to_vec()).unwrap_or_default()),
        "record": h(&signed.record),
        "signature": h(signed.signature.0),
        "signedNode": h(encode(signed)),
    });
    if let (Some(c), Some(file)) = (content, rec.file.as_ref()) {
        v["fileKey"] = json!(h(c.file_key.expose()));
        v["contentRevision"] = json!(c.content_revision);
        v["ciphertextLength"] = json!(c.ciphertext_length);
        v["fileKeyAad"] = json!(h(file_key_aad(node.node_id, c.content_revision)));
        v["sealedFileKey"] = json!(h(&file.sealed_file_key));
    }
    v
}

/// Builds the fixture deterministically from `label`.
pub(crate) fn fixture(label: &str) -> Fixture {
    let mut rng = RecordingRng::new(label);
    let owner = SigningKey::from_seed(&rng.array());
    let writer = SigningKey::from_seed(&rng.array());
    let root_node = NewNode::generate(&mut rng);
    let m = meta(&mut rng, 40);
    let (root, _) = create_root(&owner, &root_node, m, 1_700_000_000).expect("root");
    let root_fk = root.folder_key(root_node.node_key.clone());
    let mut creations = Vec::new();

    // Folder A under the root.
    let m = meta(&mut rng, 48);
    rng.take();
    let a_node = NewNode::generate(&mut rng);
    let (a0, signed) = create_folder(
        &owner,
        &root_fk,
        &a_node,
        m.clone(),
        1_700_000_100,
        &mut rng,
    )
    .expect("a");
    let r = rng.take();
    creations.push((
        "folder under the root".to_owned(),
        creation_json(
            &owner,
            &root_fk,
            &a_node,
            &m,
            None,
            1_700_000_100,
            &r,
            &a0,
            &signed,
        ),
    ));

    // File G under A generation 0.
    let a0_fk = a0.folder_key(a_node.node_key.clone());
    let g_file_key = SecretKey::from_bytes(rng.array());
    let content = FileContent {
        file_key: g_file_key.clone(),
        content_revision: 1,
        ciphertext_length: 4133,
    };
    let m = meta(&mut rng, 60);
    rng.take();
    let g_node = NewNode::generate(&mut rng);
    let (g, signed) = create_file(
        &owner,
        &a0_fk,
        &g_node,
        m.clone(),
        &content,
        1_700_000_200,
        &mut rng,
    )
    .expect("g");
    let r = rng.take();
    creations.push((
        "file under a generation-0 folder".to_owned(),
        creation_json(
            &owner,
            &a0_fk,
            &g_node,
            &m,
            Some(&content),
            1_700_000_200,
            &r,
            &g,
            &signed,
        ),
    ));

    // A rotated twice: generation 2 with a two-entry back-chain.
    let mut a_keys = vec![a_node.node_key.clone()];
    let mut a2 = a0.clone();
    for gen in 1..=2u64 {
        let new = FolderKey {
            folder_id: a0.node_id,
            generation: gen,
            key: SecretKey::from_bytes(rng.array()),
        };
        let prev = FolderKey {
            folder_id: a0.node_id,
            generation: gen - 1,
            key: a_keys[a_keys.len() - 1].clone(),
        };
        a2.back_chain.push(ByteBuf::from(
            tree::seal_back_chain(&new, &prev, &mut rng).expect("chain"),
        ));
        a_keys.push(new.key);
    }
    a2.key_generation = 2;
    a2.sealed_node_key = Some(ByteBuf::from(tree::seal_node_key(
        &root_fk, a0.node_id, &a_keys[2], &mut rng,
    )));
    a2.time = 1_700_000_300;
    let a2_fk = a2.folder_key(a_keys[2].clone());

    // File F under A generation 2.
    let f_file_key = SecretKey::from_bytes(rng.array());
    let content = FileContent {
        file_key: f_file_key.clone(),
        content_revision: 7,
        ciphertext_length: 0x0001_0000_0000,
    };
    let m = meta(&mut rng, 0);
    rng.take();
    let f_node = NewNode::generate(&mut rng);
    let (f, signed) = create_file(
        &owner,
        &a2_fk,
        &f_node,
        m.clone(),
        &content,
        1_700_000_400,
        &mut rng,
    )
    .expect("f");
    let r = rng.take();
    creations.push((
        "file under a generation-2 folder, empty sealed metadata, 2^32-byte content".to_owned(),
        creation_json(
            &owner,
            &a2_fk,
            &f_node,
            &m,
            Some(&content),
            1_700_000_400,
            &r,
            &f,
            &signed,
        ),
    ));

    // Folder B under A generation 2, written by a share member with write permission.
    let m = meta(&mut rng, 33);
    rng.take();
    let b_node = NewNode::generate(&mut rng);
    let (b, signed) =
        create_folder(&writer, &a2_fk, &b_node, m.clone(), 1_700_000_500, &mut rng).expect("b");
    let r = rng.take();
    creations.push((
        "folder under a generation-2 folder, written by another author".to_owned(),
        creation_json(
            &writer,
            &a2_fk,
            &b_node,
            &m,
            None,
            1_700_000_500,
            &r,
            &b,
            &signed,
        ),
    ));

    Fixture {
        owner,
        writer,
        root,
        root_key: root_node.node_key,
        a0,
        a2,
        a_keys,
        g,
        f,
        b,
        g_key: g_node.node_key,
        f_key: f_node.node_key,
        b_key: b_node.node_key,
        f_file_key,
        g_file_key,
        creations,
    }
}

fn signed_bytes(rec: &NodeRecord, author: &SigningKey) -> Vec<u8> {
    encode(&rec.sign(author).expect("sign"))
}

/// Signs arbitrary record bytes with `author` (for non-canonical and trailing-byte records).
fn sign_raw(record: Vec<u8>, author: &SigningKey) -> Vec<u8> {
    let signature = Bytes(author.sign(tree::LABEL_NODE_SIGNATURE, &record));
    encode(&SignedNode {
        record: ByteBuf::from(record),
        signature,
    })
}

/// A signed node whose record is `rec` but whose signature is over `orig` (not re-signed).
fn unsigned_change(signed: &[u8], rec: &NodeRecord) -> Vec<u8> {
    let mut outer: SignedNode = decode(signed).expect("outer");
    outer.record = ByteBuf::from(encode(rec));
    encode(&outer)
}

fn keys_json(keys: &[&SigningKey]) -> Value {
    Value::Array(
        keys.iter()
            .map(|k| json!(h(k.verifying_key().to_bytes())))
            .collect(),
    )
}

fn expectation_json(
    rec: &NodeRecord,
    parent_generation: u64,
    key_generation: Option<u64>,
) -> Value {
    json!({
        "expectedNodeId": h(rec.node_id.as_bytes()),
        "expectedParentId": rec.parent_id.map(|p| h(p.as_bytes())),
        "expectedParentGeneration": parent_generation,
        "expectedKeyGeneration": key_generation,
    })
}

/// Builds `tree.json`.
pub fn generate() -> VectorFile {
    let mut file = VectorFile::new(
        "coffer-v1-tree",
        "tree",
        &[
            "Node records, node keys, file keys and back-chains (spec §7).",
            "NodeCreate: replay `randomness` (node id 16 bytes, node key 32 bytes, then the seal nonces) to create the node under the parent key; every output must match byte for byte. Ed25519 signatures are deterministic.",
            "NodeVerify: verify `signedNode` as found at the expected place (node id, parent id or null for the root, the parent's current generation, and for folders optionally the expected key generation), with `authors` the acceptable author keys; valid tests yield `record`.",
            "FolderKeyAt: decode `folderRecord`, check its structure, and walk its back-chain from `currentKey` down to `generation`; valid tests yield `key`.",
            "NodeKeyOpen: decode `parentRecord` and `childRecord`, open the child's node key with the parent's current key (walking the back-chain when the child is sealed under an older generation).",
            "FileKeyOpen: decode `fileRecord` and open its file key with `nodeKey`.",
        ],
    );
    file.note("Valid", "BASIC", "A well-formed input.");
    file.note("OlderGeneration", "EDGE_CASE", "The child is sealed under an older generation of its parent: opening walks the back-chain.");
    file.note(
        "OtherAuthor",
        "EDGE_CASE",
        "The record is written by an acceptable author other than the owner.",
    );
    file.note(
        "ModifiedField",
        "MODIFIED_SIGNATURE",
        "One field of the signed record is changed without re-signing.",
    );
    file.note(
        "ModifiedSignature",
        "MODIFIED_SIGNATURE",
        "A bit of the signature is flipped, or the signature is by another key.",
    );
    file.note(
        "StructureViolation",
        "MALFORMED",
        "A record signed by its author violates a structural rule of §7.3.",
    );
    file.note(
        "WrongAuthor",
        "WRONG_KEY",
        "The author is not acceptable where the record was found.",
    );
    file.note(
        "WrongParent",
        "WRONG_CONTEXT",
        "The record is found under another parent (moved by the server) or as the root.",
    );
    file.note(
        "WrongNode",
        "WRONG_CONTEXT",
        "The record is served under another node id (swapped by the server).",
    );
    file.note(
        "WrongGeneration",
        "WRONG_CONTEXT",
        "A generation does not match.",
    );
    file.note_encoding_faults();
    file.note("Truncated", "TRUNCATION", "The input is cut short.");
    file.note(
        "SwappedKey",
        "MODIFIED_CIPHERTEXT",
        "A sealed key is taken from another node.",
    );
    file.note(
        "ModifiedCiphertext",
        "MODIFIED_CIPHERTEXT",
        "A bit of a sealed key is flipped.",
    );
    file.note(
        "TamperedBackChain",
        "MODIFIED_CIPHERTEXT",
        "A back-chain entry is modified or entries are swapped.",
    );
    file.note("WrongKey", "WRONG_KEY", "Opened with another key.");

    let fx = fixture("coffer/v1/vectors/tree");
    let owner = &fx.owner;

    // ---- NodeCreate ------------------------------------------------------------------------
    let g = file.group("NodeCreate", json!({}));
    for (comment, v) in &fx.creations {
        g.valid(comment, &["Valid"], v.clone());
    }

    // ---- NodeVerify ------------------------------------------------------------------------
    let g = file.group("NodeVerify", json!({}));
    let f_signed = signed_bytes(&fx.f, owner);
    let a2_signed = signed_bytes(&fx.a2, owner);
    let b_signed = signed_bytes(&fx.b, &fx.writer);
    let root_signed = signed_bytes(&fx.root, owner);
    let owner_only = keys_json(&[owner]);
    let both = keys_json(&[owner, &fx.writer]);
    let base = |signed: &[u8], rec: &NodeRecord, pg: u64, kg: Option<u64>, authors: &Value| {
        let mut v = expectation_json(rec, pg, kg);
        v["signedNode"] = json!(h(signed));
        v["authors"] = authors.clone();
        v
    };
    let f_base = |signed: &[u8]| base(signed, &fx.f, 2, None, &owner_only);
    g.valid(
        "file record",
        &["Valid"],
        with(f_base(&f_signed), "record", json!(h(encode(&fx.f)))),
    );
    g.valid(
        "root folder record",
        &["Valid"],
        with(
            base(&root_signed, &fx.root, 0, Some(0), &owner_only),
            "record",
            json!(h(encode(&fx.root))),
        ),
    );
    g.valid(
        "folder at generation 2 with its back-chain",
        &["Valid"],
        with(
            base(&a2_signed, &fx.a2, 0, Some(2), &owner_only),
            "record",
            json!(h(encode(&fx.a2))),
        ),
    );
    g.valid(
        "folder written by a member with write permission",
        &["OtherAuthor"],
        with(
            base(&b_signed, &fx.b, 2, None, &both),
            "record",
            json!(h(encode(&fx.b))),
        ),
    );
    g.valid(
        "file sealed under an older generation of its parent",
        &["OlderGeneration"],
        with(
            base(&signed_bytes(&fx.g, owner), &fx.g, 2, None, &owner_only),
            "record",
            json!(h(encode(&fx.g))),
        ),
    );

    // Fields changed without re-signing.
    let mut changes: Vec<(&str, &str, NodeRecord)> = Vec::new();
    let mut r = fx.f.clone();
    r.node_id = flip_id(r.node_id);
    changes.push(("node id", "bad-signature", r));
    let mut r = fx.f.clone();
    r.parent_id = r.parent_id.map(flip_id);
    changes.push(("parent id", "bad-signature", r));
    let mut r = fx.f.clone();
    r.parent_generation = 1;
    changes.push(("parent generation", "bad-signature", r));
    let mut r = fx.f.clone();
    r.sealed_node_key = r.sealed_node_key.as_ref().map(|b| flip(b, 50));
    changes.push(("sealed node key", "bad-signature", r));
    let mut r = fx.f.clone();
    r.metadata_revision = 2;
    changes.push(("metadata revision", "bad-signature", r));
    let mut r = fx.f.clone();
    r.sealed_metadata = ByteBuf::from(vec![0u8]);
    changes.push(("sealed metadata", "bad-signature", r));
    let mut r = fx.f.clone();
    if let Some(file) = r.file.as_mut() {
        file.content_revision = 6;
    }
    changes.push(("content revision", "bad-signature", r));
    let mut r = fx.f.clone();
    if let Some(file) = r.file.as_mut() {
        file.ciphertext_length ^= 1;
    }
    changes.push(("ciphertext length", "bad-signature", r));
    let mut r = fx.f.clone();
    if let Some(file) = r.file.as_mut() {
        file.sealed_file_key = flip(&file.sealed_file_key, 90);
    }
    changes.push(("sealed file key", "bad-signature", r));
    let mut r = fx.f.clone();
    r.time ^= 1;
    changes.push(("time", "bad-signature", r));
    let mut r = fx.f.clone();
    r.author = Bytes(fx.writer.verifying_key().to_bytes());
    changes.push((
        "author replaced by an unacceptable key",
        "binding-mismatch",
        r,
    ));
    let mut r = fx.f.clone();
    r.kind = tree::KIND_FOLDER;
    changes.push(("kind (file record claims folder)", "invalid-value", r));
    for (what, failure, rec) in changes {
        let flags: &[&str] = if failure == "invalid-value" {
            &["StructureViolation"]
        } else if failure == "binding-mismatch" {
            &["WrongAuthor"]
        } else {
            &["ModifiedField"]
        };
        g.invalid(
            &format!("modified {what}, not re-signed"),
            flags,
            failure,
            f_base(&unsigned_change(&f_signed, &rec)),
        );
    }
    let mut r = fx.a2.clone();
    r.back_chain[0] = flip(&r.back_chain[0], 60);
    g.invalid(
        "modified back-chain entry, not re-signed",
        &["ModifiedField"],
        "bad-signature",
        base(
            &unsigned_change(&a2_signed, &r),
            &fx.a2,
            0,
            Some(2),
            &owner_only,
        ),
    );
    let mut r = fx.f.clone();
    r.author = Bytes(fx.writer.verifying_key().to_bytes());
    g.invalid(
        "author replaced by another acceptable key, not re-signed",
        &["ModifiedSignature"],
        "bad-signature",
        base(&unsigned_change(&f_signed, &r), &fx.f, 2, None, &both),
    );

    // Signature faults.
    let mut outer: SignedNode = decode(&f_signed).expect("outer");
    outer.signature.0[10] ^= 0x01;
    g.invalid(
        "bit flip in signature",
        &["ModifiedSignature"],
        "bad-signature",
        f_base(&encode(&outer)),
    );
    let mut outer: SignedNode = decode(&f_signed).expect("outer");
    outer.signature = Bytes(fx.writer.sign(tree::LABEL_NODE_SIGNATURE, &outer.record));
    g.invalid(
        "signed by another key than the author",
        &["ModifiedSignature"],
        "bad-signature",
        base(&encode(&outer), &fx.f, 2, None, &both),
    );
    let mut outer: SignedNode = decode(&f_signed).expect("outer");
    outer.signature = Bytes(owner.sign("coffer/v1/share/record", &outer.record));
    g.invalid(
        "signed with another label",
        &["ModifiedSignature"],
        "bad-signature",
        f_base(&encode(&outer)),
    );

    // Structure violations signed by the author.
    let mut structural: Vec<(&str, NodeRecord, &NodeRecord, u64, Option<u64>)> = Vec::new();
    let mut r = fx.f.clone();
    r.key_generation = 1;
    structural.push(("file with a key generation", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.metadata_generation = 1;
    structural.push(("file with a metadata generation", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.file = None;
    structural.push(("file without content reference", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.kind = 2;
    structural.push(("kind out of range", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.sealed_node_key = r
        .sealed_node_key
        .as_ref()
        .map(|b| ByteBuf::from(b[..103].to_vec()));
    structural.push(("sealed node key of 103 bytes", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.sealed_node_key = None;
    structural.push(("non-root without sealed node key", r, &fx.f, 2, None));
    let mut r = fx.f.clone();
    r.parent_id = Some(r.node_id);
    structural.push(("node is its own parent", r, &fx.f, 2, None));
    let mut r = fx.a2.clone();
    r.back_chain.pop();
    structural.push((
        "folder at generation 2 with one back-chain entry",
        r,
        &fx.a2,
        0,
        Some(2),
    ));
    let mut r = fx.a2.clone();
    r.metadata_generation = 3;
    structural.push((
        "metadata generation above the key generation",
        r,
        &fx.a2,
        0,
        Some(2),
    ));
    let mut r = fx.root.clone();
    r.parent_generation = 1;
    structural.push(("root with a parent generation", r, &fx.root, 0, Some(0)));
    for (what, rec, orig, pg, kg) in structural {
        g.invalid(
            &format!("{what} (signed)"),
            &["StructureViolation"],
            "invalid-value",
            base(&sign_raw(encode(&rec), owner), orig, pg, kg, &owner_only),
        );
    }

    // Place faults.
    g.invalid(
        "unacceptable author",
        &["WrongAuthor"],
        "binding-mismatch",
        base(&b_signed, &fx.b, 2, None, &owner_only),
    );
    g.invalid(
        "found under another parent (moved by the server)",
        &["WrongParent"],
        "binding-mismatch",
        with(
            f_base(&f_signed),
            "expectedParentId",
            json!(h(fx.root.node_id.as_bytes())),
        ),
    );
    g.invalid(
        "served as the root",
        &["WrongParent"],
        "binding-mismatch",
        with(f_base(&f_signed), "expectedParentId", Value::Null),
    );
    g.invalid(
        "root record served under a parent",
        &["WrongParent"],
        "binding-mismatch",
        with(
            base(&root_signed, &fx.root, 0, None, &owner_only),
            "expectedParentId",
            json!(h(fx.a0.node_id.as_bytes())),
        ),
    );
    g.invalid(
        "served under another node id (swapped)",
        &["WrongNode"],
        "binding-mismatch",
        with(
            f_base(&f_signed),
            "expectedNodeId",
            json!(h(fx.g.node_id.as_bytes())),
        ),
    );
    g.invalid(
        "claims a parent generation newer than the parent's",
        &["WrongGeneration"],
        "binding-mismatch",
        with(f_base(&f_signed), "expectedParentGeneration", json!(1)),
    );
    g.invalid(
        "folder generation differs from the known one",
        &["WrongGeneration"],
        "binding-mismatch",
        base(&a2_signed, &fx.a2, 0, Some(1), &owner_only),
    );
    g.invalid(
        "file where a folder generation is expected",
        &["WrongGeneration"],
        "binding-mismatch",
        base(&f_signed, &fx.f, 2, Some(0), &owner_only),
    );

    // Encoding faults.
    let outer: SignedNode = decode(&f_signed).expect("outer");
    let rec_len = outer.record.len();
    let mut nc = vec![0x84, 0x18, 41, 0x01, 0x5a];
    nc.extend_from_slice(&u32::try_from(rec_len).expect("len").to_be_bytes());
    nc.extend_from_slice(&outer.record);
    nc.extend_from_slice(&[0x58, 0x40]);
    nc.extend_from_slice(&outer.signature.0);
    g.invalid(
        "record length in a non-shortest head",
        &["NonCanonical"],
        "non-canonical",
        f_base(&nc),
    );
    let mut rb = encode(&fx.f);
    let n = rb.len();
    // time is the last field; re-encode it with a 9-byte head.
    let time = fx.f.time;
    // 1_700_000_400 takes a 5-byte head (0x1a and four bytes) in the shortest form.
    rb.truncate(n - 5);
    rb.push(0x1b);
    rb.extend_from_slice(&time.to_be_bytes());
    g.invalid(
        "record time in a non-shortest head (signed)",
        &["NonCanonical"],
        "non-canonical",
        f_base(&sign_raw(rb, owner)),
    );
    let mut t = f_signed.clone();
    t.push(0x00);
    g.invalid(
        "trailing byte after the signed node",
        &["TrailingBytes"],
        "trailing-bytes",
        f_base(&t),
    );
    let mut rb = encode(&fx.f);
    rb.push(0x00);
    g.invalid(
        "trailing byte after the record (signed)",
        &["TrailingBytes"],
        "trailing-bytes",
        f_base(&sign_raw(rb, owner)),
    );
    let mut t = f_signed.clone();
    t[2] = 40;
    g.invalid(
        "signed node with type code 40",
        &["WrongType"],
        "wrong-type",
        f_base(&t),
    );
    let mut t = f_signed.clone();
    t[3] = 0x02;
    g.invalid(
        "signed node with version 2",
        &["WrongType"],
        "unknown-version",
        f_base(&t),
    );
    let mut rb = encode(&fx.f);
    rb[2] = 42;
    g.invalid(
        "record with type code 42 (signed)",
        &["WrongType"],
        "wrong-type",
        f_base(&sign_raw(rb, owner)),
    );
    g.invalid(
        "signed node truncated by one byte",
        &["Truncated"],
        "malformed",
        f_base(&f_signed[..f_signed.len() - 1]),
    );

    // ---- FolderKeyAt -----------------------------------------------------------------------
    let g = file.group("FolderKeyAt", json!({}));
    let a_id = fx.a2.node_id;
    let chain_json = json!({
        "backChainAad": [h(back_chain_aad(a_id, 1)), h(back_chain_aad(a_id, 2))],
        "keysByGeneration": fx.a_keys.iter().map(|k| h(k.expose())).collect::<Vec<_>>(),
    });
    let fk_base = |rec: &NodeRecord, target: u64| {
        let mut v = chain_json.clone();
        v["folderRecord"] = json!(h(encode(rec)));
        v["currentKey"] = json!(h(fx.a_keys[2].expose()));
        v["generation"] = json!(target);
        v
    };
    for target in 0..=2u64 {
        let idx = usize::try_from(target).expect("small");
        g.valid(
            &format!("generation 2 to {target}"),
            &["Valid"],
            with(
                fk_base(&fx.a2, target),
                "key",
                json!(h(fx.a_keys[idx].expose())),
            ),
        );
    }
    g.invalid(
        "generation newer than the folder's",
        &["WrongGeneration"],
        "binding-mismatch",
        fk_base(&fx.a2, 3),
    );
    let mut r = fx.a2.clone();
    r.back_chain[0] = flip(&r.back_chain[0], 70);
    g.invalid(
        "bit flip in the generation-1 entry",
        &["TamperedBackChain"],
        "decryption-failed",
        fk_base(&r, 0),
    );
    g.valid(
        "tampered older entry does not affect a newer walk",
        &["TamperedBackChain"],
        with(fk_base(&r, 1), "key", json!(h(fx.a_keys[1].expose()))),
    );
    let mut r = fx.a2.clone();
    r.back_chain.swap(0, 1);
    g.invalid(
        "entries swapped",
        &["TamperedBackChain"],
        "decryption-failed",
        fk_base(&r, 1),
    );
    let mut r = fx.a2.clone();
    r.node_id = fx.b.node_id;
    g.invalid(
        "chain relabelled with another folder id",
        &["TamperedBackChain"],
        "decryption-failed",
        fk_base(&r, 1),
    );
    let mut r = fx.a2.clone();
    r.back_chain.pop();
    g.invalid(
        "chain shorter than the generation",
        &["StructureViolation"],
        "invalid-value",
        fk_base(&r, 0),
    );
    g.invalid(
        "walk with another key",
        &["WrongKey"],
        "decryption-failed",
        with(
            fk_base(&fx.a2, 0),
            "currentKey",
            json!(h(fx.a_keys[1].expose())),
        ),
    );

    // ---- NodeKeyOpen -----------------------------------------------------------------------
    let g = file.group("NodeKeyOpen", json!({}));
    let nk = |parent: &NodeRecord, pkey: &SecretKey, child: &NodeRecord| {
        json!({
            "parentRecord": h(encode(parent)),
            "parentKey": h(pkey.expose()),
            "childRecord": h(encode(child)),
            "nodeKeyAad": h(node_key_aad(parent.node_id, child.node_id, child.parent_generation)),
        })
    };
    let a2_key = &fx.a_keys[2];
    g.valid(
        "folder under the root",
        &["Valid"],
        with(
            nk(&fx.root, &fx.root_key, &fx.a2),
            "nodeKey",
            json!(h(a2_key.expose())),
        ),
    );
    g.valid(
        "file under generation 2",
        &["Valid"],
        with(
            nk(&fx.a2, a2_key, &fx.f),
            "nodeKey",
            json!(h(fx.f_key.expose())),
        ),
    );
    g.valid(
        "folder under generation 2",
        &["Valid"],
        with(
            nk(&fx.a2, a2_key, &fx.b),
            "nodeKey",
            json!(h(fx.b_key.expose())),
        ),
    );
    g.valid(
        "file sealed under generation 0, opened through the back-chain",
        &["OlderGeneration"],
        with(
            nk(&fx.a2, a2_key, &fx.g),
            "nodeKey",
            json!(h(fx.g_key.expose())),
        ),
    );
    g.valid(
        "file under the same folder at generation 0",
        &["Valid"],
        with(
            nk(&fx.a0, &fx.a_keys[0], &fx.g),
            "nodeKey",
            json!(h(fx.g_key.expose())),
        ),
    );
    let mut r = fx.f.clone();
    r.sealed_node_key = fx.b.sealed_node_key.clone();
    g.invalid(
        "sibling's sealed node key swapped in",
        &["SwappedKey"],
        "decryption-failed",
        nk(&fx.a2, a2_key, &r),
    );
    let mut r = fx.g.clone();
    r.parent_generation = 1;
    g.invalid(
        "claims generation 1 instead of 0",
        &["WrongGeneration"],
        "decryption-failed",
        nk(&fx.a2, a2_key, &r),
    );
    let mut r = fx.f.clone();
    r.parent_generation = 3;
    g.invalid(
        "claims a generation newer than the parent's",
        &["WrongGeneration"],
        "binding-mismatch",
        nk(&fx.a2, a2_key, &r),
    );
    let mut r = fx.f.clone();
    r.parent_id = Some(fx.root.node_id);
    r.parent_generation = 0;
    g.invalid(
        "moved under the root without re-sealing",
        &["WrongParent"],
        "decryption-failed",
        nk(&fx.root, &fx.root_key, &r),
    );
    g.invalid(
        "opened with a record that is not its parent",
        &["WrongParent"],
        "binding-mismatch",
        nk(&fx.root, &fx.root_key, &fx.f),
    );
    let mut r = fx.f.clone();
    r.sealed_node_key = r.sealed_node_key.as_ref().map(|b| flip(b, 30));
    g.invalid(
        "bit flip in the sealed node key (commitment)",
        &["ModifiedCiphertext"],
        "decryption-failed",
        nk(&fx.a2, a2_key, &r),
    );
    let mut r = fx.f.clone();
    r.sealed_node_key = r.sealed_node_key.as_ref().map(|b| flip(b, 103));
    g.invalid(
        "bit flip in the sealed node key (tag)",
        &["ModifiedCiphertext"],
        "decryption-failed",
        nk(&fx.a2, a2_key, &r),
    );
    g.invalid(
        "parent key of an older generation given as current",
        &["WrongKey"],
        "decryption-failed",
        nk(&fx.a2, &fx.a_keys[1], &fx.f),
    );
    let mut r = fx.a2.clone();
    r.back_chain[1] = flip(&r.back_chain[1], 80);
    g.invalid(
        "tampered back-chain on the way to generation 0",
        &["TamperedBackChain"],
        "decryption-failed",
        nk(&r, a2_key, &fx.g),
    );
    g.invalid(
        "root's key is not sealed in the tree",
        &["WrongParent"],
        "binding-mismatch",
        nk(&fx.a2, a2_key, &fx.root),
    );

    // ---- FileKeyOpen -----------------------------------------------------------------------
    let g = file.group("FileKeyOpen", json!({}));
    let fko = |rec: &NodeRecord, key: &SecretKey| {
        let rev = rec.file.as_ref().map_or(0, |f| f.content_revision);
        json!({ "fileRecord": h(encode(rec)), "nodeKey": h(key.expose()), "fileKeyAad": h(file_key_aad(rec.node_id, rev)) })
    };
    g.valid(
        "file key of F",
        &["Valid"],
        with(
            fko(&fx.f, &fx.f_key),
            "fileKey",
            json!(h(fx.f_file_key.expose())),
        ),
    );
    g.valid(
        "file key of G",
        &["Valid"],
        with(
            fko(&fx.g, &fx.g_key),
            "fileKey",
            json!(h(fx.g_file_key.expose())),
        ),
    );
    let mut r = fx.f.clone();
    if let Some(file) = r.file.as_mut() {
        file.content_revision = 8;
    }
    g.invalid(
        "content revision changed",
        &["WrongGeneration"],
        "decryption-failed",
        fko(&r, &fx.f_key),
    );
    let mut r = fx.f.clone();
    if let Some(file) = r.file.as_mut() {
        file.sealed_file_key = flip(&file.sealed_file_key, 60);
    }
    g.invalid(
        "bit flip in the sealed file key",
        &["ModifiedCiphertext"],
        "decryption-failed",
        fko(&r, &fx.f_key),
    );
    let mut r = fx.f.clone();
    r.file = fx.g.file.clone();
    g.invalid(
        "file key of another file swapped in",
        &["SwappedKey"],
        "decryption-failed",
        fko(&r, &fx.f_key),
    );
    g.invalid(
        "opened with another node key",
        &["WrongKey"],
        "decryption-failed",
        fko(&fx.f, &fx.g_key),
    );
    g.invalid(
        "folder has no file key",
        &["WrongNode"],
        "binding-mismatch",
        fko(&fx.b, &fx.b_key),
    );

    file.finish()
}

fn key(t: &Test, name: &str) -> anyhow::Result<SecretKey> {
    Ok(SecretKey::from_bytes(t.hex_array(name)?))
}

fn node_id(t: &Test, name: &str) -> anyhow::Result<NodeId> {
    Ok(NodeId::from_bytes(t.hex_array(name)?))
}

fn record(t: &Test, name: &str) -> Result<NodeRecord, coffer_core::Error> {
    let bytes = t
        .hex(name)
        .map_err(|_| coffer_core::Error::Internal("vector field"))?;
    let r: NodeRecord = decode(&bytes)?;
    r.check_structure()?;
    Ok(r)
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, t: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "NodeCreate" => {
            let author = SigningKey::from_seed(&t.hex_array("authorSeed")?);
            let parent = FolderKey {
                folder_id: node_id(t, "parentId")?,
                generation: t.u64("parentGeneration")?,
                key: key(t, "parentKey")?,
            };
            let m = SealedMetadata {
                revision: t.u64("metadataRevision")?,
                sealed: t.hex("sealedMetadata")?,
            };
            let mut rng = ReplayRng::new(t.hex("randomness")?);
            let node = NewNode::generate(&mut rng);
            let time = t.u64("time")?;
            let (rec, signed) = if t.u64("kind")? == tree::KIND_FILE {
                let c = FileContent {
                    file_key: key(t, "fileKey")?,
                    content_revision: t.u64("contentRevision")?,
                    ciphertext_length: t.u64("ciphertextLength")?,
                };
                let out = create_file(&author, &parent, &node, m, &c, time, &mut rng)?;
                anyhow::ensure!(
                    t.hex("fileKeyAad")? == file_key_aad(node.node_id, c.content_revision),
                    "file key aad"
                );
                let sealed = out.0.file.as_ref().map(|f| f.sealed_file_key.to_vec());
                anyhow::ensure!(sealed == Some(t.hex("sealedFileKey")?), "sealed file key");
                out
            } else {
                create_folder(&author, &parent, &node, m, time, &mut rng)?
            };
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(
                node.node_id.as_bytes()[..] == t.hex("nodeId")?[..],
                "node id"
            );
            anyhow::ensure!(
                node.node_key.expose()[..] == t.hex("nodeKey")?[..],
                "node key"
            );
            anyhow::ensure!(
                node_key_aad(parent.folder_id, node.node_id, parent.generation)
                    == t.hex("nodeKeyAad")?,
                "node key aad"
            );
            anyhow::ensure!(
                rec.sealed_node_key.as_ref().map(|b| b.to_vec()) == Some(t.hex("sealedNodeKey")?),
                "sealed node key"
            );
            anyhow::ensure!(signed.record.to_vec() == t.hex("record")?, "record");
            anyhow::ensure!(
                signed.signature.0[..] == t.hex("signature")?[..],
                "signature"
            );
            anyhow::ensure!(encode(&signed) == t.hex("signedNode")?, "signed node");
            Ok(())
        }
        "NodeVerify" => {
            let authors = t
                .fields
                .get("authors")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow::anyhow!("authors"))?
                .iter()
                .map(|v| -> anyhow::Result<VerifyingKey> {
                    let b: [u8; 32] = hex::decode(v.as_str().unwrap_or_default())?
                        .as_slice()
                        .try_into()?;
                    Ok(VerifyingKey::from_bytes(&b)?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let parent = match t.fields.get("expectedParentId") {
                Some(Value::String(_)) => Some((
                    node_id(t, "expectedParentId")?,
                    t.u64("expectedParentGeneration")?,
                )),
                _ => None,
            };
            let expected = NodeExpectation {
                node_id: node_id(t, "expectedNodeId")?,
                parent,
                key_generation: t
                    .fields
                    .get("expectedKeyGeneration")
                    .and_then(Value::as_u64),
            };
            let out = tree::verify_node(&t.hex("signedNode")?, &expected, &authors);
            expect(t, out, |rec| {
                anyhow::ensure!(encode(&rec) == t.hex("record")?, "record differs");
                Ok(())
            })
        }
        "FolderKeyAt" => {
            let current = key(t, "currentKey")?;
            let target = t.u64("generation")?;
            let out = record(t, "folderRecord").and_then(|rec| {
                let fk = rec.folder_key(current);
                rec.folder_key_at(&fk, target)
            });
            expect(t, out, |k| {
                anyhow::ensure!(k.expose()[..] == t.hex("key")?[..], "key differs");
                Ok(())
            })
        }
        "NodeKeyOpen" => {
            let pkey = key(t, "parentKey")?;
            let out = record(t, "parentRecord").and_then(|parent| {
                let child = record(t, "childRecord")?;
                child.open_node_key(&parent, &parent.folder_key(pkey))
            });
            expect(t, out, |k| {
                anyhow::ensure!(k.expose()[..] == t.hex("nodeKey")?[..], "node key differs");
                Ok(())
            })
        }
        "FileKeyOpen" => {
            let nkey = key(t, "nodeKey")?;
            let out = record(t, "fileRecord").and_then(|rec| rec.open_file_key(&nkey));
            expect(t, out, |k| {
                anyhow::ensure!(k.expose()[..] == t.hex("fileKey")?[..], "file key differs");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
