//! Links, drops and owner entries (spec §10) on arbitrary input.
//!
//! Properties: `LinkUrl::parse` never panics and accepted URLs print back to the same text;
//! `LinkRecord::parse` / `validate_for_storage` never panic and accept only canonical encodings;
//! `open_link_with_key` (with a fixed URL and password key, so no Argon2id runs) never opens
//! arbitrary records; `DropEnvelope::parse_for_link` and `open_drop` never panic and never open
//! arbitrary envelopes; `open_owner_entry` never opens arbitrary bytes, and for bytes sealed
//! under the right key and link id (to reach the decoder behind the seal) accepts only canonical
//! `OwnerLinkEntry` encodings.
#![no_main]

use coffer_core::encoding::{decode, encode, Bytes};
use coffer_core::ids::NodeId;
use coffer_core::link::{
    open_drop, open_link_with_key, open_owner_entry, DropEnvelope, LinkRecord, LinkSecret, LinkUrl,
    OwnerEntryContext, OwnerLinkEntry, LABEL_OWNER_ENTRY,
};
use coffer_core::primitives::{AgreementSecret, SecretKey};
use coffer_core::seal::seal;
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(url) = LinkUrl::parse(text) {
            assert_eq!(url.to_string(), text, "accepted a non-canonical link URL");
            assert_eq!(url.link_id(), url.secret().link_id());
        }
    }

    let secret = LinkSecret::from_bytes([17; 32]);
    let link_id = secret.link_id();
    let folder_id = NodeId(Bytes([18; 16]));
    let pw_key = SecretKey::from_bytes([19; 32]);
    if let Ok(r) = LinkRecord::parse(data) {
        assert_eq!(r.to_bytes(), data, "accepted a non-canonical LinkRecord");
        let _ = r.capability_aad();
    }
    let _ = LinkRecord::validate_for_storage(data, link_id);
    for password in [false, true] {
        let url = LinkUrl::new(
            "https://coffer.example",
            LinkSecret::from_bytes([17; 32]),
            password,
        )
        .expect("valid origin");
        assert!(open_link_with_key(&url, data, Some(&pw_key), 0).is_err());
        assert!(open_link_with_key(&url, data, None, 0).is_err());
    }

    if let Ok(env) = DropEnvelope::parse_for_link(data, link_id, folder_id) {
        assert_eq!(encode(&env), data);
    }
    let drop_secret = AgreementSecret::from_bytes([20; 32]);
    assert!(open_drop(&drop_secret, link_id, folder_id, data).is_err());

    let owner_key = SecretKey::from_bytes([21; 32]);
    assert!(open_owner_entry(&owner_key, link_id, data).is_err());
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([22; 32]);
    let sealed = seal(
        &owner_key,
        LABEL_OWNER_ENTRY,
        &encode(&OwnerEntryContext { link_id }),
        data,
        &mut rng,
    );
    if let Ok(entry) = open_owner_entry(&owner_key, link_id, &sealed) {
        assert_eq!(encode(&entry), data);
        let _ = entry.url("https://coffer.example");
    }
    if let Ok(e) = decode::<OwnerLinkEntry>(data) {
        assert_eq!(encode(&e), data);
    }
});
