//! Node metadata (spec §5) on arbitrary input.
//!
//! Properties: the `Metadata` decoder never panics and accepts only canonical encodings;
//! `open_metadata` never opens arbitrary bytes; when the bytes are sealed under the right key,
//! node id and revision (so that fuzzing reaches the decoder behind the seal), `open_metadata`
//! accepts exactly what the decoder accepts, within the size limit; the name and media-type
//! validators never panic.
#![no_main]

use coffer_core::encoding::{decode, encode, Bytes};
use coffer_core::ids::NodeId;
use coffer_core::metadata::{
    metadata_aad, metadata_key, open_metadata, validate_media_type, validate_name, Metadata,
    MAX_SEALED_METADATA_LEN, METADATA_SEAL_LABEL,
};
use coffer_core::primitives::SecretKey;
use coffer_core::seal::seal;
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let node_key = SecretKey::from_bytes([0x22; 32]);
    let node_id = NodeId(Bytes([0x33; 16]));
    let decoded = decode::<Metadata>(data);
    if let Ok(m) = &decoded {
        assert_eq!(encode(m), data, "accepted a non-canonical Metadata");
        assert!(validate_name(m.name()).is_ok());
        if let Some(t) = m.media_type() {
            assert!(validate_media_type(t).is_ok());
        }
    }
    assert!(open_metadata(&node_key, &node_id, 7, data).is_err());

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
    let sealed = seal(
        &metadata_key(&node_key),
        METADATA_SEAL_LABEL,
        &metadata_aad(&node_id, 7),
        data,
        &mut rng,
    );
    let opened = open_metadata(&node_key, &node_id, 7, &sealed);
    if sealed.len() <= MAX_SEALED_METADATA_LEN {
        assert_eq!(opened.is_ok(), decoded.is_ok());
        if let (Ok(a), Ok(b)) = (&opened, &decoded) {
            assert_eq!(encode(a), encode(b));
        }
        assert!(open_metadata(&node_key, &node_id, 8, &sealed).is_err());
    } else {
        assert!(opened.is_err());
    }

    if let Ok(text) = core::str::from_utf8(data) {
        let _ = validate_name(text);
        let _ = validate_media_type(text);
    }
});
