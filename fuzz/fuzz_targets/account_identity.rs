//! Identity records and chains (spec §6.5) on arbitrary input.
//!
//! Properties: `parse_signed_identity` and the `IdentityRecord` / `SignedIdentity` decoders never
//! panic and accept only canonical encodings; `verify_chain` over an arbitrary chain never panics
//! and agrees with `verify_chain_generations`. To get past the signatures, a fuzzer-chosen
//! record is also rebound to fixed keys and signed (generation 0 self-signed; generation 1
//! signed by both generations) so that the record checks behind the signatures are exercised.
//! `Fingerprint::parse` never panics and accepted text is canonical.
#![no_main]

use coffer_core::account::identity::{
    parse_signed_identity, verify_chain, verify_chain_generations, Fingerprint, IdentityRecord,
    SignedIdentity, LABEL_IDENTITY, LABEL_IDENTITY_SUCCESSION,
};
use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::primitives::{AgreementSecret, SigningKey};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fn check<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    let v = decode::<T>(data).ok()?;
    assert_eq!(encode(&v), data, "accepted a non-canonical encoding");
    Some(v)
}

fn signed(record: &IdentityRecord, key: &SigningKey, prev: Option<&SigningKey>) -> Vec<u8> {
    let bytes = encode(record);
    encode(&SignedIdentity {
        self_signature: Bytes(key.sign(LABEL_IDENTITY, &bytes)),
        predecessor_signature: prev.map(|p| Bytes(p.sign(LABEL_IDENTITY_SUCCESSION, &bytes))),
        record: ByteBuf::from(bytes),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_signed_identity(data) {
        let _ = encode(&r);
    }
    check::<SignedIdentity>(data);
    let record = check::<IdentityRecord>(data);

    let mut u = Unstructured::new(data);
    let chain: Vec<&[u8]> = u.arbitrary().unwrap_or_default();
    let head = verify_chain(&chain);
    let all = verify_chain_generations(&chain);
    assert_eq!(head.is_ok(), all.is_ok());
    if let Ok(all) = &all {
        assert_eq!(all.len(), chain.len());
    }

    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(fp) = Fingerprint::parse(text) {
            assert!(Fingerprint::from_groups(*fp.groups()).is_ok());
            assert_eq!(Fingerprint::parse(&fp.to_string()).ok(), Some(fp));
        }
    }

    // A fuzzer-chosen record, rebound to fixed keys and correctly signed.
    if let Some(mut r) = record {
        let k0 = SigningKey::from_seed(&[1; 32]);
        let k1 = SigningKey::from_seed(&[2; 32]);
        let a0 = AgreementSecret::from_bytes([3; 32]).public_key();
        let a1 = AgreementSecret::from_bytes([4; 32]).public_key();
        r.signing_key = Bytes(k0.verifying_key().to_bytes());
        r.agreement_key = Bytes(a0.to_bytes());
        let g0 = signed(&r, &k0, None);
        let _ = verify_chain(&[&g0]);
        let mut r1 = r.clone();
        r1.signing_key = Bytes(k1.verifying_key().to_bytes());
        r1.agreement_key = Bytes(a1.to_bytes());
        let g1 = signed(&r1, &k1, Some(&k0));
        let two = verify_chain(&[&g0, &g1]);
        if two.is_ok() {
            assert!(
                verify_chain(&[&g0]).is_ok(),
                "a chain verified without its root"
            );
        }
    }
});
