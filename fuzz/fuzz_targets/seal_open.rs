//! The committed seal (spec §3) on arbitrary input.
//!
//! Properties: opening arbitrary bytes never panics and fails unless they are a real seal; a
//! seal of arbitrary plaintext under an arbitrary key opens to that plaintext, and to nothing
//! under any other key, label or associated data.
#![no_main]

use coffer_core::primitives::SecretKey;
use coffer_core::seal::{open, open_key, seal, SEALED_KEY_LEN};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

const LABEL: &str = "coffer/v1/fuzz/seal";

fuzz_target!(|data: &[u8]| {
    let fixed = SecretKey::from_bytes([0x42; 32]);
    // Arbitrary bytes as a sealed value: must fail (a forgery would be a bug) and never panic.
    assert!(open(&fixed, LABEL, b"aad", data).is_err());
    assert!(open_key(&fixed, LABEL, b"aad", data).is_err());

    // Arbitrary key and plaintext: round trip, and every wrong opening fails.
    if data.len() < 33 {
        return;
    }
    let (key_bytes, rest) = data.split_at(32);
    let (seed, pt) = rest.split_at(1);
    let key = SecretKey::from_slice(key_bytes).expect("32 bytes");
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed[0]; 32]);
    let sealed = seal(&key, LABEL, b"aad", pt, &mut rng);
    assert_eq!(sealed.len(), pt.len() + 72);
    assert_eq!(&open(&key, LABEL, b"aad", &sealed).expect("opens")[..], pt);
    assert!(open(&fixed, LABEL, b"aad", &sealed).is_err() || key == fixed);
    assert!(open(&key, "coffer/v1/fuzz/other", b"aad", &sealed).is_err());
    assert!(open(&key, LABEL, b"aaD", &sealed).is_err());
    assert_eq!(
        open_key(&key, LABEL, b"aad", &sealed).is_ok(),
        sealed.len() == SEALED_KEY_LEN
    );
});
