//! Signed node records (spec §7) on arbitrary input.
//!
//! Properties: the `SignedNode` / `NodeRecord` decoders never panic and accept only canonical
//! encodings; `verify_node_signature` and `verify_node` never panic and never accept arbitrary
//! bytes signed by nobody. To reach the checks behind the signature, a fuzzer-chosen record is
//! rebound to a fixed author key and signed: `verify_node_signature` then accepts it exactly
//! when `check_structure` does. The key-opening methods never panic on such records.
#![no_main]

use coffer_core::encoding::{decode, encode, Bytes};
use coffer_core::ids::NodeId;
use coffer_core::primitives::{SecretKey, SigningKey};
use coffer_core::tree::{
    verify_node, verify_node_signature, NodeExpectation, NodeRecord, SignedNode,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let author = SigningKey::from_seed(&[8; 32]);
    let expectation = NodeExpectation {
        node_id: NodeId(Bytes([9; 16])),
        parent: None,
        key_generation: None,
    };
    if let Ok(s) = decode::<SignedNode>(data) {
        assert_eq!(encode(&s), data, "accepted a non-canonical SignedNode");
    }
    if let Ok(r) = verify_node_signature(data) {
        // Only possible for a record signed by the key it names (e.g. a seed from the vectors).
        let _ = encode(&r);
    }
    assert!(verify_node(data, &expectation, &[author.verifying_key()]).is_err());

    let Ok(mut record) = decode::<NodeRecord>(data) else {
        return;
    };
    assert_eq!(encode(&record), data, "accepted a non-canonical NodeRecord");
    record.author = Bytes(author.verifying_key().to_bytes());
    let structure_ok = record.check_structure().is_ok();
    let Ok(signed) = record.sign(&author) else {
        assert!(!structure_ok);
        return;
    };
    let bytes = encode(&signed);
    let verified = verify_node_signature(&bytes);
    assert_eq!(verified.as_ref().ok(), Some(&record));
    assert!(structure_ok);
    let expected = NodeExpectation {
        node_id: record.node_id,
        parent: record.parent_id.map(|p| (p, record.parent_generation)),
        key_generation: Some(record.key_generation),
    };
    let _ = verify_node(&bytes, &expected, &[author.verifying_key()]);
    let key = SecretKey::from_bytes([10; 32]);
    let _ = record.open_file_key(&key);
    let _ = record.metadata_key(&key);
    let _ = record.node_kind();
    let folder = record.folder_key(key);
    let _ = record.folder_key_at(&folder, record.key_generation.wrapping_sub(1));
    let _ = record.open_node_key(&record, &folder);
});
