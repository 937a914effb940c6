//! Share records and grants (spec §8) on arbitrary input.
//!
//! Properties: the `SignedShare` / `ShareRecord` / `SignedGrant` / `Grant` decoders never panic
//! and accept only canonical encodings; `verify_share`, `verify_grant_signature` and
//! `open_grant` never panic. To reach the checks behind the signatures, fuzzer-chosen records
//! are rebound to a fixed owner / granter key and signed: `verify_share` then accepts a record
//! exactly when its `check_structure` does, and `open_grant` never yields a key (the ciphertext
//! is the fuzzer's, not an HPKE encryption to the fixed recipient).
#![no_main]

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::ShareId;
use coffer_core::primitives::{AgreementSecret, SigningKey};
use coffer_core::share::{
    open_grant, verify_grant_signature, verify_share, Grant, GrantExpectation, PinnedIdentity,
    RecipientKeys, ShareRecord, SignedGrant, SignedShare, LABEL_GRANT,
};
use libfuzzer_sys::fuzz_target;

fn check<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    let v = decode::<T>(data).ok()?;
    assert_eq!(encode(&v), data, "accepted a non-canonical encoding");
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    let owner = SigningKey::from_seed(&[11; 32]);
    let me = AgreementSecret::from_bytes([12; 32]);
    let share_id = ShareId(Bytes([13; 16]));
    check::<SignedShare>(data);
    check::<SignedGrant>(data);
    assert!(verify_share(data, share_id, &owner.verifying_key(), 0).is_err());
    let _ = verify_grant_signature(data);

    let pinned = |name: &str, generation: u64| PinnedIdentity {
        user_name: name.to_string(),
        identity_generation: generation,
        ed25519: owner.verifying_key(),
        x25519: me.public_key(),
    };
    let recipient = |name: &'static str, generation: u64| RecipientKeys {
        user_name: name,
        identity_generation: generation,
        secret: &me,
    };

    if let Some(mut record) = check::<ShareRecord>(data) {
        record.owner.ed25519 = Bytes(owner.verifying_key().to_bytes());
        let structure_ok = record.check_structure().is_ok();
        if let Ok(signed) = record.sign(&owner) {
            let bytes = encode(&signed);
            let v = verify_share(&bytes, record.share_id, &owner.verifying_key(), 0);
            assert_eq!(v.is_ok(), structure_ok);
            if let Ok(v) = v {
                assert_eq!(v, record);
            }
        } else {
            assert!(!structure_ok);
        }
    }

    if let Some(mut grant) = check::<Grant>(data) {
        grant.granter.ed25519 = Bytes(owner.verifying_key().to_bytes());
        let bytes = encode(&grant);
        let signed = encode(&SignedGrant {
            signature: Bytes(owner.sign(LABEL_GRANT, &bytes)),
            grant: ByteBuf::from(bytes),
        });
        let _ = verify_grant_signature(&signed);
        let expected = GrantExpectation {
            share_id: grant.share_id,
            generation: grant.generation,
            granter: pinned(&grant.granter.user_name, grant.granter.identity_generation),
        };
        assert!(open_grant(&signed, &expected, &recipient("bob", 0)).is_err());
        let name: &'static str = Box::leak(grant.recipient.user_name.clone().into_boxed_str());
        assert!(open_grant(
            &signed,
            &expected,
            &recipient(name, grant.recipient.identity_generation)
        )
        .is_err());
    }
});
