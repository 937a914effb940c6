//! Base64url (spec §1.7) on arbitrary input.
//!
//! Properties: decoding never panics; accepted text is the one canonical encoding of its bytes;
//! every byte string round-trips.
#![no_main]

use coffer_core::encoding::{b64url_decode, b64url_encode};
use coffer_core::ids::NodeId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(bytes) = b64url_decode(text) {
            assert_eq!(
                b64url_encode(&bytes),
                text,
                "accepted non-canonical base64url"
            );
        }
        if let Ok(id) = NodeId::from_b64(text) {
            assert_eq!(id.to_b64(), text);
        }
    }
    let text = b64url_encode(data);
    assert_eq!(b64url_decode(&text).as_deref(), Ok(data));
});
