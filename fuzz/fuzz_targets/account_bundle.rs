//! Key bundles (spec §6.4) on arbitrary input.
//!
//! Properties: `parse_key_bundle` never panics and accepts only canonical encodings; `unlock`
//! under a fixed export key never opens arbitrary bytes (a success would be a forgery);
//! `check_password_change` over two arbitrary bundles never panics.
#![no_main]

use coffer_core::account::{check_password_change, parse_key_bundle, unlock, ExportKey, KeyBundle};
use coffer_core::encoding::{decode, encode, Bytes};
use coffer_core::ids::AccountId;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = parse_key_bundle(data) {
        assert_eq!(encode(&b), data, "accepted a non-canonical KeyBundle");
        let account_id = b.account_id;
        assert!(unlock(&ExportKey::from_bytes([0x44; 64]), &account_id, data).is_err());
    }
    if let Ok(b) = decode::<KeyBundle>(data) {
        assert_eq!(encode(&b), data);
    }
    let fixed = AccountId(Bytes([0x55; 16]));
    assert!(unlock(&ExportKey::from_bytes([0x44; 64]), &fixed, data).is_err());

    let mut u = Unstructured::new(data);
    if let (Ok(a), Ok(b)) = (u.arbitrary::<&[u8]>(), u.arbitrary::<&[u8]>()) {
        let _ = check_password_change(a, b);
    }
});
