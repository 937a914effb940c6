//! Tests of spec §6 and the account rotations of §9. Argon2id runs once per OPAQUE registration
//! finish and once per login finish (about 50 ms each, optimised): the OPAQUE tests share one
//! registration and keep the number of logins small.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::sync::OnceLock;

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng as _;

use super::identity::*;
use super::opaque::*;
use super::*;
use crate::primitives::{AgreementPublic, VerifyingKey};

fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::from_seed([seed; 32])
}

const USER: &str = "alice@example.org";
const SERVER: &str = "https://coffer.example";
const PASSWORD: &[u8] = b"correct horse battery staple";

fn ids() -> OpaqueIdentities<'static> {
    OpaqueIdentities {
        user_name: USER,
        server_identity: SERVER,
    }
}

struct Fixture {
    setup: ServerSetup,
    account_id: AccountId,
    password_file: Vec<u8>,
    key_bundle: Vec<u8>,
    signed_identity: Vec<u8>,
    account: UnlockedAccount,
}

/// One sign-up shared by the OPAQUE tests (one Argon2id run).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut r = rng(1);
        let setup = ServerSetup::generate(&mut r);
        let account_id = AccountId::generate(&mut r);
        let (state, request) = registration_start(PASSWORD, &mut r).expect("start");
        assert_eq!(request.len(), REGISTRATION_REQUEST_LEN);
        let response = server_registration_start(&setup, &request, &ids()).expect("server start");
        assert_eq!(response.len(), REGISTRATION_RESPONSE_LEN);
        let reg = register(
            state,
            PASSWORD,
            &response,
            &ids(),
            account_id,
            1_700_000_000,
            &mut r,
        )
        .expect("register");
        let password_file = server_registration_finish(&reg.registration_upload).expect("finish");
        assert_eq!(password_file, reg.registration_upload);
        Fixture {
            setup,
            account_id,
            password_file,
            key_bundle: reg.key_bundle,
            signed_identity: reg.signed_identity,
            account: reg.account,
        }
    })
}

/// Runs a login; returns the client's outcome and, if the client succeeded, the server's.
fn login(
    setup: &ServerSetup,
    file: Option<&[u8]>,
    password: &[u8],
    client_ids: &OpaqueIdentities<'_>,
    seed: u8,
) -> (Result<LoginFinish>, Option<Result<SessionKey>>) {
    let mut r = rng(seed);
    let (state, request) = login_start(password, &mut r).expect("login start");
    assert_eq!(request.len(), CREDENTIAL_REQUEST_LEN);
    let (server_state, response) =
        server_login_start(setup, file, &request, &ids(), &mut r).expect("server login start");
    assert_eq!(response.len(), CREDENTIAL_RESPONSE_LEN);
    let client = login_finish(state, password, &response, client_ids, &mut r);
    let server = client.as_ref().ok().map(|c| {
        assert_eq!(c.finalization.len(), CREDENTIAL_FINALIZATION_LEN);
        server_login_finish(&server_state, &c.finalization)
    });
    (client, server)
}

#[test]
fn register_login_unlock_round_trip() {
    let f = fixture();
    let (client, server) = login(&f.setup, Some(&f.password_file), PASSWORD, &ids(), 2);
    let client = client.expect("client login");
    let server_key = server.expect("server ran").expect("server login");
    assert_eq!(client.session_key, server_key);
    let unlocked = unlock(&client.export_key, &f.account_id, &f.key_bundle).expect("unlock");
    assert_eq!(unlocked.master_key, f.account.master_key);
    assert_eq!(unlocked.master_key.generation, 0);
    assert_eq!(
        unlocked.secrets.root_node_key,
        f.account.secrets.root_node_key
    );
    assert_eq!(
        unlocked.secrets.root_node_id,
        f.account.secrets.root_node_id
    );
    let identity = verify_chain(&[&f.signed_identity]).expect("identity");
    assert_eq!(identity.user_name, USER);
    assert_eq!(identity.generation, 0);
    unlocked
        .check_identity(&identity)
        .expect("identity matches");
    // The setup survives serialization.
    let restored = ServerSetup::from_bytes(&f.setup.to_bytes()).expect("setup");
    assert_eq!(restored.to_bytes(), f.setup.to_bytes());
    assert_eq!(f.setup.to_bytes().len(), SERVER_SETUP_LEN);
    // The bundle is bound to its account.
    assert!(matches!(
        unlock(
            &client.export_key,
            &AccountId::from_bytes([9; 16]),
            &f.key_bundle
        ),
        Err(Error::Binding(_))
    ));
}

#[test]
fn wrong_password_fails() {
    let f = fixture();
    let (client, _) = login(&f.setup, Some(&f.password_file), b"wrong", &ids(), 3);
    assert_eq!(client.err(), Some(Error::AuthenticationFailed));
}

#[test]
fn wrong_server_identity_fails() {
    let f = fixture();
    let other = OpaqueIdentities {
        user_name: USER,
        server_identity: "https://evil.example",
    };
    let (client, _) = login(&f.setup, Some(&f.password_file), PASSWORD, &other, 4);
    assert_eq!(client.err(), Some(Error::AuthenticationFailed));
}

#[test]
fn unknown_user_is_indistinguishable_in_shape() {
    let f = fixture();
    let mut r = rng(5);
    let (_, request) = login_start(PASSWORD, &mut r).expect("start");
    let (known_state, known) =
        server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
            .expect("known");
    let (unknown_state, unknown) =
        server_login_start(&f.setup, None, &request, &ids(), &mut r).expect("unknown");
    assert_eq!(known.len(), unknown.len());
    assert_eq!(known_state.as_bytes().len(), unknown_state.as_bytes().len());
    // The OPRF evaluation is the same (same user name, same seed): nothing reveals the record.
    assert_eq!(known[..32], unknown[..32]);
    let (client, _) = login(&f.setup, None, PASSWORD, &ids(), 6);
    assert_eq!(client.err(), Some(Error::AuthenticationFailed));
}

#[test]
fn tampered_messages_are_rejected() {
    let f = fixture();
    let mut r = rng(7);
    let (state, request) = login_start(PASSWORD, &mut r).expect("start");
    let (server_state, response) =
        server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
            .expect("server start");
    // A flip in the evaluated element, the masking nonce, the masked response, the server's
    // KE2 nonce and its MAC: each fails the login at the client.
    for pos in [0, 40, 100, 200, CREDENTIAL_RESPONSE_LEN - 1] {
        let (state, request) = login_start(PASSWORD, &mut r).expect("start");
        let (_, response) =
            server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
                .expect("server start");
        let mut bad = response.clone();
        bad[pos] ^= 1;
        assert_eq!(
            login_finish(state, PASSWORD, &bad, &ids(), &mut r).err(),
            Some(Error::AuthenticationFailed),
            "byte {pos}"
        );
    }
    let _ = state;
    // Wrong lengths are rejected before any work.
    let (state, _) = login_start(PASSWORD, &mut r).expect("start");
    assert_eq!(
        login_finish(state, PASSWORD, &response[1..], &ids(), &mut r).err(),
        Some(Error::Decode(DecodeError::Malformed))
    );
    assert_eq!(
        server_login_start(
            &f.setup,
            Some(&f.password_file),
            &request[1..],
            &ids(),
            &mut r
        )
        .err(),
        Some(Error::Decode(DecodeError::Malformed))
    );
    // A request that is not a group element.
    assert_eq!(
        server_login_start(
            &f.setup,
            None,
            &[0xffu8; CREDENTIAL_REQUEST_LEN],
            &ids(),
            &mut r
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    // A tampered or forged finalization.
    assert_eq!(
        server_login_finish(&server_state, &[0u8; CREDENTIAL_FINALIZATION_LEN]).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        server_login_finish(&server_state, &[0u8; 63]).err(),
        Some(Error::Decode(DecodeError::Malformed))
    );
    assert_eq!(
        server_registration_finish(&[0u8; 10]).err(),
        Some(Error::Decode(DecodeError::Malformed))
    );
    assert!(ServerSetup::from_bytes(&[0u8; SERVER_SETUP_LEN]).is_err());
}

#[test]
fn tampered_finalization_is_rejected_by_the_server() {
    let f = fixture();
    let mut r = rng(9);
    let (state, request) = login_start(PASSWORD, &mut r).expect("start");
    let (server_state, response) =
        server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
            .expect("server start");
    let fin = login_finish(state, PASSWORD, &response, &ids(), &mut r).expect("finish");
    for pos in [0, 31, 63] {
        let mut bad = fin.finalization.clone();
        bad[pos] ^= 0x40;
        assert_eq!(
            server_login_finish(&server_state, &bad).err(),
            Some(Error::AuthenticationFailed)
        );
    }
    assert_eq!(server_state.as_bytes().len(), SERVER_LOGIN_STATE_LEN);
    let mut bad_state = server_state.as_bytes().to_vec();
    bad_state[SERVER_LOGIN_STATE_LEN - 1] ^= 1;
    assert_eq!(
        server_login_finish(&ServerLoginState::from_bytes(&bad_state), &fin.finalization).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        server_login_finish(
            &ServerLoginState::from_bytes(&bad_state[1..]),
            &fin.finalization
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        server_login_finish(&server_state, &fin.finalization).expect("finish"),
        fin.session_key
    );
}

#[test]
fn password_change_keeps_the_master_key() {
    let f = fixture();
    let mut r = rng(10);
    let new_password = b"a new and longer passphrase";
    let (state, request) = registration_start(new_password, &mut r).expect("start");
    let response = server_registration_start(&f.setup, &request, &ids()).expect("server");
    let change = change_password(
        state,
        new_password,
        &response,
        &ids(),
        &f.account,
        &f.key_bundle,
        &mut r,
    )
    .expect("change");
    let new_file = server_registration_finish(&change.registration_upload).expect("file");
    let old = parse_key_bundle(&f.key_bundle).expect("old");
    let new = parse_key_bundle(&change.key_bundle).expect("new");
    assert_eq!(old.sealed_secrets, new.sealed_secrets);
    assert_eq!(old.master_key_generation, new.master_key_generation);
    assert_ne!(old.wrapped_master_key, new.wrapped_master_key);
    check_password_change(&f.key_bundle, &change.key_bundle).expect("server accepts");
    let mut swapped = new.clone();
    swapped.sealed_secrets = ByteBuf::from(vec![0u8; 100]);
    assert!(matches!(
        check_password_change(&f.key_bundle, &encode(&swapped)),
        Err(Error::Binding(_))
    ));
    // The new password logs in and unlocks the same master key.
    let (client, server) = login(&f.setup, Some(&new_file), new_password, &ids(), 11);
    let client = client.expect("login");
    assert!(server.expect("ran").is_ok());
    let unlocked = unlock(&client.export_key, &f.account_id, &change.key_bundle).expect("unlock");
    assert_eq!(unlocked.master_key, f.account.master_key);
    // The old password no longer logs in against the new file...
    let (client, _) = login(&f.setup, Some(&new_file), PASSWORD, &ids(), 12);
    assert_eq!(client.err(), Some(Error::AuthenticationFailed));
    // ... and the old export key does not unwrap the new wrap.
    let (old_login, _) = login(&f.setup, Some(&f.password_file), PASSWORD, &ids(), 13);
    let old_export = old_login.expect("old login").export_key;
    assert_eq!(
        unlock(&old_export, &f.account_id, &change.key_bundle).err(),
        Some(Error::DecryptionFailed)
    );
    // A bundle of another account is refused.
    let mut other = f.account.clone();
    other.account_id = AccountId::from_bytes([3; 16]);
    let (state, request) = registration_start(new_password, &mut r).expect("start");
    let response = server_registration_start(&f.setup, &request, &ids()).expect("server");
    assert!(matches!(
        change_password(
            state,
            new_password,
            &response,
            &ids(),
            &other,
            &f.key_bundle,
            &mut r
        ),
        Err(Error::Binding(_))
    ));
}

#[test]
fn recovery_rotates_everything() {
    let f = fixture();
    let mut r = rng(14);
    let new_password = b"recovered passphrase";
    let (state, request) = registration_start(new_password, &mut r).expect("start");
    let response = server_registration_start(&f.setup, &request, &ids()).expect("server");
    let rec = recover(
        state,
        new_password,
        &response,
        &ids(),
        &f.account,
        &f.signed_identity,
        1_800_000_000,
        &mut r,
    )
    .expect("recover");
    assert_eq!(rec.account.master_key.generation, 1);
    assert_ne!(rec.account.master_key.key, f.account.master_key.key);
    assert_eq!(rec.account.secrets.identity_generation, 1);
    assert_ne!(
        rec.account.secrets.root_node_key,
        f.account.secrets.root_node_key
    );
    assert_eq!(
        rec.account.secrets.root_node_id,
        f.account.secrets.root_node_id
    );
    let head = verify_chain(&[&f.signed_identity, &rec.signed_identity]).expect("chain");
    assert_eq!(head.generation, 1);
    rec.account.check_identity(&head).expect("matches");
    assert!(f.account.check_identity(&head).is_err());
    // The pin of generation 0 accepts the extended chain.
    let pin0 = verify_chain(&[&f.signed_identity]).expect("gen 0").pin();
    assert_eq!(
        verify_pinned(&pin0, &[&f.signed_identity, &rec.signed_identity]).expect("pinned"),
        head
    );
    // The new bundle opens only with the new master key generation.
    let bundle = parse_key_bundle(&rec.key_bundle).expect("bundle");
    assert_eq!(bundle.master_key_generation, 1);
    assert_eq!(bundle.identity_generation, 1);
    assert_eq!(
        check_recovery(
            &[&f.signed_identity],
            &f.key_bundle,
            &rec.key_bundle,
            &rec.signed_identity
        ),
        Ok(head.clone())
    );
    // The server refuses a bundle that does not advance, and an identity that does not extend.
    assert!(matches!(
        check_recovery(
            &[&f.signed_identity],
            &f.key_bundle,
            &f.key_bundle,
            &rec.signed_identity
        ),
        Err(Error::Binding(_))
    ));
    assert!(check_recovery(
        &[&f.signed_identity],
        &f.key_bundle,
        &rec.key_bundle,
        &f.signed_identity
    )
    .is_err());
    assert_eq!(
        open_secrets(
            &f.account.master_key,
            &f.account_id,
            1,
            &bundle.sealed_secrets
        )
        .err(),
        Some(Error::DecryptionFailed)
    );
    let opened = open_secrets(
        &rec.account.master_key,
        &f.account_id,
        1,
        &bundle.sealed_secrets,
    )
    .expect("open");
    assert_eq!(opened.root_node_key, rec.account.secrets.root_node_key);
    // Recovering with an identity that is not the account's is refused.
    let (state, request) = registration_start(new_password, &mut r).expect("start");
    let response = server_registration_start(&f.setup, &request, &ids()).expect("server");
    assert!(matches!(
        recover(
            state,
            new_password,
            &response,
            &ids(),
            &f.account,
            &rec.signed_identity,
            1_800_000_000,
            &mut r
        ),
        Err(Error::Binding(_))
    ));
}

#[test]
fn deletion_proof_binds_session_and_account() {
    let s1 = SessionKey::from_bytes([1; 64]);
    let s2 = SessionKey::from_bytes([2; 64]);
    let a = AccountId::from_bytes([5; 16]);
    let b = AccountId::from_bytes([6; 16]);
    let proof = deletion_proof(&s1, &a, USER);
    assert!(verify_deletion_proof(&s1, &a, USER, &proof).is_ok());
    assert_eq!(
        verify_deletion_proof(&s2, &a, USER, &proof),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(
        verify_deletion_proof(&s1, &b, USER, &proof),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(
        verify_deletion_proof(&s1, &a, "bob", &proof),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(
        verify_deletion_proof(&s1, &a, USER, &proof[..31]),
        Err(Error::AuthenticationFailed)
    );
}

// ---------------------------------------------------------------------------------------------
// Master key and secrets (no Argon2id)

fn secrets(r: &mut rand_chacha::ChaCha20Rng, generation: u64) -> AccountSecrets {
    AccountSecrets {
        identity_generation: generation,
        identity: IdentityKeys::generate(r),
        root_node_id: NodeId::generate(r),
        root_node_key: SecretKey::generate(r),
    }
}

#[test]
fn master_key_wrap_and_every_fault() {
    let mut r = rng(20);
    let export = ExportKey::from_bytes([7; 64]);
    let other_export = ExportKey::from_bytes([8; 64]);
    let id = AccountId::generate(&mut r);
    let mk = MasterKey::generate(3, &mut r);
    let wrapped = wrap_master_key(&export, &id, &mk, &mut r);
    assert_eq!(wrapped.len(), SEALED_KEY_LEN);
    assert_eq!(unwrap_master_key(&export, &id, 3, &wrapped), Ok(mk.clone()));
    assert_eq!(
        unwrap_master_key(&other_export, &id, 3, &wrapped),
        Err(Error::DecryptionFailed)
    );
    assert_eq!(
        unwrap_master_key(&export, &AccountId::from_bytes([0; 16]), 3, &wrapped),
        Err(Error::DecryptionFailed)
    );
    assert_eq!(
        unwrap_master_key(&export, &id, 2, &wrapped),
        Err(Error::DecryptionFailed)
    );
    for i in 0..wrapped.len() {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            unwrap_master_key(&export, &id, 3, &bad),
            Err(Error::DecryptionFailed),
            "byte {i}"
        );
    }
    assert_eq!(
        unwrap_master_key(&export, &id, 3, &wrapped[..SEALED_KEY_LEN - 1]),
        Err(Error::DecryptionFailed)
    );
    let mut long = wrapped.clone();
    long.push(0);
    assert_eq!(
        unwrap_master_key(&export, &id, 3, &long),
        Err(Error::DecryptionFailed)
    );
}

#[test]
fn secrets_seal_open_and_faults() {
    let mut r = rng(21);
    let id = AccountId::generate(&mut r);
    let mk = MasterKey::generate(0, &mut r);
    let s = secrets(&mut r, 0);
    let sealed = seal_secrets(&mk, &id, &s, &mut r);
    let opened = open_secrets(&mk, &id, 0, &sealed).expect("open");
    assert_eq!(opened.root_node_key, s.root_node_key);
    assert_eq!(opened.root_node_id, s.root_node_id);
    assert_eq!(
        opened.identity.signing.verifying_key(),
        s.identity.signing.verifying_key()
    );
    assert_eq!(
        opened.identity.agreement.expose(),
        s.identity.agreement.expose()
    );
    assert_eq!(
        open_secrets(&mk, &id, 1, &sealed).err(),
        Some(Error::DecryptionFailed)
    );
    let mk1 = MasterKey {
        key: mk.key.clone(),
        generation: 1,
    };
    assert_eq!(
        open_secrets(&mk1, &id, 0, &sealed).err(),
        Some(Error::DecryptionFailed)
    );
    assert_eq!(
        open_secrets(&mk, &AccountId::from_bytes([1; 16]), 0, &sealed).err(),
        Some(Error::DecryptionFailed)
    );
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert_eq!(
            open_secrets(&mk, &id, 0, &bad).err(),
            Some(Error::DecryptionFailed)
        );
    }
    // Debug output never shows a secret.
    let dbg = alloc::format!("{opened:?} {mk:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&alloc::format!("{:?}", s.root_node_key.expose())));
}

#[test]
fn key_bundle_unlock_faults() {
    let mut r = rng(22);
    let export = ExportKey::from_bytes([1; 64]);
    let id = AccountId::generate(&mut r);
    let account = UnlockedAccount {
        account_id: id,
        master_key: MasterKey::generate(0, &mut r),
        secrets: secrets(&mut r, 0),
    };
    let bundle = account.key_bundle(&export, &mut r).expect("bundle");
    assert!(unlock(&export, &id, &bundle).is_ok());
    let mut trailing = bundle.clone();
    trailing.push(0);
    assert_eq!(
        unlock(&export, &id, &trailing).err(),
        Some(Error::Decode(DecodeError::TrailingBytes))
    );
    let mut wrong_type = bundle.clone();
    assert_eq!(wrong_type[1..3], [0x18, 26]);
    wrong_type[2] = 25;
    assert_eq!(
        unlock(&export, &id, &wrong_type).err(),
        Some(Error::Decode(DecodeError::WrongType))
    );
    // Lying about the generation in the clear fails the AAD.
    let mut b = parse_key_bundle(&bundle).expect("parse");
    b.master_key_generation = 1;
    assert_eq!(
        unlock(&export, &id, &encode(&b)).err(),
        Some(Error::DecryptionFailed)
    );
    let mut b = parse_key_bundle(&bundle).expect("parse");
    b.identity_generation = 1;
    assert_eq!(
        unlock(&export, &id, &encode(&b)).err(),
        Some(Error::DecryptionFailed)
    );
    let mut b = parse_key_bundle(&bundle).expect("parse");
    b.sealed_secrets = ByteBuf::from(vec![0u8; SEAL_OVERHEAD - 1]);
    assert_eq!(
        unlock(&export, &id, &encode(&b)).err(),
        Some(Error::Decode(DecodeError::InvalidValue))
    );
}

// ---------------------------------------------------------------------------------------------
// Identity chains

struct Chain {
    keys: Vec<IdentityKeys>,
    signed: Vec<Vec<u8>>,
}

fn chain(len: usize, seed: u8) -> Chain {
    let mut r = rng(seed);
    let mut keys = vec![IdentityKeys::generate(&mut r)];
    let mut signed = vec![create_identity(&keys[0], USER, 1000).expect("gen 0")];
    for i in 1..len {
        let k = IdentityKeys::generate(&mut r);
        let next = rotate_identity(&signed[i - 1], &keys[i - 1].signing, &k, 1000 + i as u64)
            .expect("rotate");
        keys.push(k);
        signed.push(next);
    }
    Chain { keys, signed }
}

/// Re-signs `record` as generation `record.generation` with `keys`, the predecessor signature by
/// `pred` (so that a fault in a field is not caught by the signatures alone).
fn resign(record: &IdentityRecord, keys: &IdentityKeys, pred: Option<&SigningKey>) -> Vec<u8> {
    let bytes = encode(record);
    encode(&SignedIdentity {
        record: ByteBuf::from(bytes.clone()),
        self_signature: Bytes(keys.signing.sign(LABEL_IDENTITY, &bytes)),
        predecessor_signature: pred.map(|k| Bytes(k.sign(LABEL_IDENTITY_SUCCESSION, &bytes))),
    })
}

fn signed(bytes: &[u8]) -> SignedIdentity {
    decode(bytes).expect("signed")
}

fn record(bytes: &[u8]) -> IdentityRecord {
    decode(&signed(bytes).record).expect("record")
}

#[test]
fn valid_chains_verify() {
    let c = chain(3, 30);
    for n in 1..=3 {
        let head = verify_chain(&c.signed[..n]).expect("verifies");
        assert_eq!(head.generation, n as u64 - 1);
        assert_eq!(head.signing_key, c.keys[n - 1].signing.verifying_key());
        assert_eq!(head.agreement_key, c.keys[n - 1].agreement.public_key());
        assert_eq!(head.head_hash, primitives::sha256(&c.signed[n - 1]));
    }
    let all = verify_chain_generations(&c.signed).expect("generations");
    assert_eq!(all.len(), 3);
    for (i, g) in all.iter().enumerate() {
        assert_eq!(g.generation, i as u64);
        assert_eq!(g.signing_key, c.keys[i].signing.verifying_key());
        assert_eq!(g, &verify_chain(&c.signed[..=i]).expect("prefix"));
    }
    assert_eq!(
        record(&c.signed[2]).previous,
        Some(Bytes(primitives::sha256(&c.signed[1])))
    );
}

#[test]
fn chain_rejects_every_single_fault() {
    let c = chain(3, 31);
    let check = |chain: &[Vec<u8>], want: fn(&Error) -> bool, what: &str| {
        let got = verify_chain(chain).expect_err(what);
        assert!(want(&got), "{what}: {got:?}");
    };
    let binding = |e: &Error| matches!(e, Error::Binding(_));
    let bad_sig = |e: &Error| *e == Error::BadSignature;
    // A bit flip in every byte of the last element is rejected (by decoding, the key checks or a
    // signature).
    for i in 0..c.signed[2].len() {
        let mut bad = c.signed.clone();
        bad[2][i] ^= 0x01;
        assert!(verify_chain(&bad).is_err(), "byte {i}");
    }
    // A bit flip inside each field of the record, self signature fixed: bad self signature.
    let sig_len = 2 + 64 + 2 + 64;
    let rec_end = c.signed[1].len() - sig_len;
    for i in 4..rec_end {
        let mut bad = c.signed.clone();
        bad[1][i] ^= 0x01;
        assert!(verify_chain(&bad).is_err(), "record byte {i}");
    }
    // Wrong predecessor signature: generation 1 re-signed by a stranger.
    let stranger = IdentityKeys::generate(&mut rng(99));
    let mut bad = c.signed.clone();
    bad[1] = resign(&record(&c.signed[1]), &c.keys[1], Some(&stranger.signing));
    check(&bad[..2], bad_sig, "wrong predecessor");
    // Predecessor signature with the self label.
    let mut s = signed(&c.signed[1]);
    s.predecessor_signature = Some(Bytes(c.keys[0].signing.sign(LABEL_IDENTITY, &s.record)));
    check(&[c.signed[0].clone(), encode(&s)], bad_sig, "label swap");
    // Skipped generation.
    check(
        &[c.signed[0].clone(), c.signed[2].clone()],
        binding,
        "skipped",
    );
    // Reordered.
    check(
        &[c.signed[1].clone(), c.signed[0].clone()],
        binding,
        "reordered",
    );
    // Renamed user, properly signed.
    let mut rec = record(&c.signed[1]);
    rec.user_name = "mallory".to_string();
    let mut bad = c.signed.clone();
    bad[1] = resign(&rec, &c.keys[1], Some(&c.keys[0].signing));
    check(&bad[..2], binding, "renamed");
    // Bad previous hash, properly signed.
    let mut rec = record(&c.signed[1]);
    rec.previous = Some(Bytes([0; 32]));
    let mut bad = c.signed.clone();
    bad[1] = resign(&rec, &c.keys[1], Some(&c.keys[0].signing));
    check(&bad[..2], binding, "previous");
    // Time going backwards.
    let mut rec = record(&c.signed[1]);
    rec.created = 999;
    bad[1] = resign(&rec, &c.keys[1], Some(&c.keys[0].signing));
    check(&bad[..2], binding, "time");
    // Keys reused.
    let mut rec = record(&c.signed[1]);
    rec.signing_key = record(&c.signed[0]).signing_key;
    bad[1] = resign(&rec, &c.keys[0], Some(&c.keys[0].signing));
    check(&bad[..2], binding, "reused");
    // Weak key (the identity point), otherwise well-formed.
    let mut rec = record(&c.signed[0]);
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    rec.signing_key = Bytes(identity_point);
    check(
        &[resign(&rec, &c.keys[0], None)],
        |e| *e == Error::InvalidPublicKey,
        "weak ed25519",
    );
    let mut rec = record(&c.signed[0]);
    rec.agreement_key = Bytes([0; 32]);
    check(
        &[resign(&rec, &c.keys[0], None)],
        |e| *e == Error::InvalidPublicKey,
        "weak x25519",
    );
    // Generation 0 with a predecessor signature, generation 1 without one.
    let mut s = signed(&c.signed[0]);
    s.predecessor_signature = Some(s.self_signature);
    check(
        &[encode(&s)],
        |e| *e == Error::Decode(DecodeError::InvalidValue),
        "gen 0 predecessor",
    );
    let mut s = signed(&c.signed[1]);
    s.predecessor_signature = None;
    check(
        &[c.signed[0].clone(), encode(&s)],
        |e| *e == Error::Decode(DecodeError::InvalidValue),
        "gen 1 without predecessor",
    );
    // Trailing bytes, outer and inner; non-canonical encoding.
    let mut bad = c.signed[0].clone();
    bad.push(0);
    check(
        &[bad],
        |e| *e == Error::Decode(DecodeError::TrailingBytes),
        "trailing",
    );
    let mut s = signed(&c.signed[0]);
    let mut inner = s.record.to_vec();
    inner.push(0);
    s.record = ByteBuf::from(inner);
    check(
        &[encode(&s)],
        |e| *e == Error::Decode(DecodeError::TrailingBytes),
        "inner trailing",
    );
    // Generation 0 encoded with a non-shortest head (0x18 0x00) inside the record.
    let rec0 = encode(&record(&c.signed[0]));
    let name_len = USER.len();
    let gen_pos = 3 + 1 + name_len;
    assert_eq!(rec0[gen_pos], 0x00);
    let mut nc = rec0[..gen_pos].to_vec();
    nc.extend_from_slice(&[0x18, 0x00]);
    nc.extend_from_slice(&rec0[gen_pos + 1..]);
    let s = SignedIdentity {
        record: ByteBuf::from(nc.clone()),
        self_signature: Bytes(c.keys[0].signing.sign(LABEL_IDENTITY, &nc)),
        predecessor_signature: None,
    };
    check(
        &[encode(&s)],
        |e| *e == Error::Decode(DecodeError::NonCanonical),
        "non-canonical",
    );
    // Empty chain.
    assert!(matches!(
        verify_chain::<Vec<u8>>(&[]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn rotation_refuses_a_foreign_key() {
    let c = chain(1, 32);
    let k = IdentityKeys::generate(&mut rng(33));
    assert!(matches!(
        rotate_identity(&c.signed[0], &k.signing, &k, 2000),
        Err(Error::Binding(_))
    ));
    assert!(matches!(
        rotate_identity(&c.signed[0], &c.keys[0].signing, &c.keys[0], 2000),
        Err(Error::Binding(_))
    ));
    assert!(matches!(
        rotate_identity(&c.signed[0], &c.keys[0].signing, &k, 10),
        Err(Error::Binding(_))
    ));
}

#[test]
fn pinning_accepts_extensions_only() {
    let c = chain(3, 34);
    let pin1 = verify_chain(&c.signed[..2]).expect("v").pin();
    assert_eq!(pin1.generation, 1);
    // Same or extended chain: accepted, returns the head.
    assert_eq!(
        verify_pinned(&pin1, &c.signed[..2])
            .expect("same")
            .generation,
        1
    );
    assert_eq!(verify_pinned(&pin1, &c.signed).expect("ext").generation, 2);
    let refused = Error::Binding("identity changed without a valid rotation chain");
    // Rollback to generation 0.
    assert_eq!(
        verify_pinned(&pin1, &c.signed[..1]).err(),
        Some(refused.clone())
    );
    // A different identity for the same user name.
    let other = chain(3, 35);
    assert_eq!(
        verify_pinned(&pin1, &other.signed).err(),
        Some(refused.clone())
    );
    // A fork: same generation 0, another generation 1.
    let k = IdentityKeys::generate(&mut rng(36));
    let fork = rotate_identity(&c.signed[0], &c.keys[0].signing, &k, 5000).expect("fork");
    assert_eq!(
        verify_pinned(&pin1, &[c.signed[0].clone(), fork]).err(),
        Some(refused.clone())
    );
    // Another user name.
    let mut pin = pin1.clone();
    pin.user_name = "bob".into();
    assert_eq!(verify_pinned(&pin, &c.signed).err(), Some(refused));
    // A broken chain is reported as such, not as a pin mismatch.
    let mut broken = c.signed.clone();
    broken.swap(1, 2);
    assert!(matches!(
        verify_pinned(&pin1, &broken),
        Err(Error::Binding(_))
    ));
}

#[test]
fn fingerprint_text_round_trip() {
    let c = chain(1, 37);
    let head = verify_chain(&c.signed).expect("v");
    let text = head.fingerprint.to_string();
    assert_eq!(text.len(), 12 * 5 + 11);
    assert_eq!(Fingerprint::parse(&text), Ok(head.fingerprint));
    let spread = text.replace(' ', "\n  ");
    assert_eq!(Fingerprint::parse(&spread), Ok(head.fingerprint));
    assert_eq!(
        Fingerprint::parse(&text[..text.len() - 1]),
        Err(DecodeError::InvalidText)
    );
    assert_eq!(
        Fingerprint::parse(&alloc::format!("{text}0")),
        Err(DecodeError::InvalidText)
    );
    assert_eq!(
        Fingerprint::parse(&text.replacen('0', "O", 1).replacen('1', "l", 1)),
        Err(DecodeError::InvalidText)
    );
    assert_eq!(Fingerprint::parse("١٢٣"), Err(DecodeError::InvalidText));
    // Per generation: the next generation has another fingerprint.
    let c2 = chain(2, 37);
    let head2 = verify_chain(&c2.signed).expect("v");
    assert_ne!(head2.fingerprint, head.fingerprint);
    // Changing either key or the name changes it.
    let vk = c.keys[0].signing.verifying_key();
    let ak = c.keys[0].agreement.public_key();
    let other_ak =
        AgreementPublic::from_bytes(&c2.keys[1].agreement.public_key().to_bytes()).expect("key");
    assert_eq!(Fingerprint::compute(USER, 0, &vk, &ak), head.fingerprint);
    assert_ne!(Fingerprint::compute("bob", 0, &vk, &ak), head.fingerprint);
    assert_ne!(
        Fingerprint::compute(USER, 0, &vk, &other_ak),
        head.fingerprint
    );
    assert_ne!(Fingerprint::compute(USER, 1, &vk, &ak), head.fingerprint);
    let _: VerifyingKey = vk;
}

#[test]
fn user_names_are_checked() {
    let k = IdentityKeys::generate(&mut rng(38));
    assert!(create_identity(&k, "", 0).is_err());
    assert!(create_identity(&k, "a\nb", 0).is_err());
    assert!(create_identity(&k, &"x".repeat(256), 0).is_err());
    assert!(create_identity(&k, &"x".repeat(255), 0).is_ok());
    assert!(create_identity(&k, "zoë", 0).is_ok());
    // A record carrying an invalid name is rejected at parse time even if signed.
    let rec = IdentityRecord {
        user_name: String::new(),
        generation: 0,
        signing_key: Bytes(k.signing.verifying_key().to_bytes()),
        agreement_key: Bytes(k.agreement.public_key().to_bytes()),
        created: 0,
        previous: None,
    };
    assert_eq!(
        verify_chain(&[resign(&rec, &k, None)]).err(),
        Some(Error::Decode(DecodeError::InvalidValue))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn identity_record_round_trips(
        name in "[a-z0-9@.]{1,40}",
        generation in any::<u64>(),
        sk in any::<[u8; 32]>(),
        ak in any::<[u8; 32]>(),
        created in any::<u64>(),
        prev in proptest::option::of(any::<[u8; 32]>()),
    ) {
        let rec = IdentityRecord {
            user_name: name,
            generation,
            signing_key: Bytes(sk),
            agreement_key: Bytes(ak),
            created,
            previous: prev.map(Bytes),
        };
        let enc = encode(&rec);
        prop_assert_eq!(decode::<IdentityRecord>(&enc), Ok(rec));
    }

    #[test]
    fn key_bundle_round_trips(
        id in any::<[u8; 16]>(),
        mkg in any::<u64>(),
        ig in any::<u64>(),
        sealed in proptest::collection::vec(any::<u8>(), SEAL_OVERHEAD..300),
    ) {
        let b = KeyBundle {
            account_id: AccountId::from_bytes(id),
            master_key_generation: mkg,
            wrapped_master_key: Bytes([7; SEALED_KEY_LEN]),
            identity_generation: ig,
            sealed_secrets: ByteBuf::from(sealed),
        };
        prop_assert_eq!(parse_key_bundle(&encode(&b)), Ok(b));
    }

    #[test]
    fn account_secrets_round_trip(seed in any::<[u8; 32]>(), g in any::<u64>()) {
        let mut r = rand_chacha::ChaCha20Rng::from_seed(seed);
        let mk = MasterKey::generate(g, &mut r);
        let id = AccountId::generate(&mut r);
        let s = secrets(&mut r, g);
        let sealed = seal_secrets(&mk, &id, &s, &mut r);
        let o = open_secrets(&mk, &id, g, &sealed).expect("open");
        prop_assert_eq!(o.root_node_key, s.root_node_key);
        prop_assert_eq!(o.identity.signing.seed(), s.identity.signing.seed());
    }

    #[test]
    fn fingerprint_text_round_trips(groups in any::<[u32; 12]>()) {
        let fp = Fingerprint::from_groups(groups.map(|g| g % 100_000)).expect("groups");
        prop_assert_eq!(Fingerprint::parse(&fp.to_string()), Ok(fp));
    }

    #[test]
    fn any_single_byte_change_of_a_signed_identity_is_rejected(
        idx in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let c = C.get_or_init(|| chain(2, 40).signed);
        let i = idx.index(c[1].len());
        let mut bad = c.clone();
        bad[1][i] ^= delta;
        prop_assert!(verify_chain(&bad).is_err());
    }
}

#[test]
fn identity_elements_and_reflections_are_rejected() {
    let f = fixture();
    let mut r = rng(50);
    assert_eq!(
        server_registration_start(&f.setup, &[0u8; REGISTRATION_REQUEST_LEN], &ids()).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        server_login_start(
            &f.setup,
            None,
            &[0u8; CREDENTIAL_REQUEST_LEN],
            &ids(),
            &mut r
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    let (state, _) = registration_start(PASSWORD, &mut r).expect("start");
    assert_eq!(
        registration_finish(
            state,
            PASSWORD,
            &[0u8; REGISTRATION_RESPONSE_LEN],
            &ids(),
            &mut r
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    // A server that reflects the client's blinded element back (with its real public key).
    let (state, request) = registration_start(PASSWORD, &mut r).expect("start");
    let response = server_registration_start(&f.setup, &request, &ids()).expect("server");
    let mut reflected = request.clone();
    reflected.extend_from_slice(&response[32..]);
    assert_eq!(
        registration_finish(state, PASSWORD, &reflected, &ids(), &mut r).err(),
        Some(Error::AuthenticationFailed)
    );
    // Invalid identities are refused before any work.
    let bad = OpaqueIdentities {
        user_name: "",
        server_identity: SERVER,
    };
    assert!(matches!(
        server_registration_start(&f.setup, &[0u8; 32], &bad),
        Err(Error::InvalidArgument(_))
    ));
    let bad = OpaqueIdentities {
        user_name: USER,
        server_identity: "",
    };
    assert!(matches!(
        server_registration_start(&f.setup, &[0u8; 32], &bad),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        registration_start(b"", &mut r),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn link_entries_key_is_bound_to_master_key_and_account() {
    let mk = MasterKey {
        key: crate::primitives::SecretKey::from_bytes([7; 32]),
        generation: 0,
    };
    let a = AccountId::from_bytes([1; 16]);
    let k = link_entries_key(&mk, &a);
    let want =
        crate::primitives::derive_key(&[7; 32], &[], "coffer/v1/account/link-entries", &[1; 16]);
    assert_eq!(k.expose(), want.expose());
    assert_ne!(
        k.expose(),
        link_entries_key(&mk, &AccountId::from_bytes([2; 16])).expose()
    );
    let mk2 = MasterKey {
        key: crate::primitives::SecretKey::from_bytes([8; 32]),
        generation: 1,
    };
    assert_ne!(k.expose(), link_entries_key(&mk2, &a).expose());
    // Domain-separated from the KEK derivation of the same input.
    let kek = crate::primitives::derive_key(&[7; 32], &[], LABEL_KEK, &[1; 16]);
    assert_ne!(k.expose(), kek.expose());
}

#[test]
fn memoized_logins_match_plain_ones_and_stretch_once() {
    let f = fixture();
    let memo = KsfMemo::new();
    assert!(memo.is_empty());
    let mut keys = Vec::new();
    for seed in [40u8, 41] {
        let mut r = rng(seed);
        let (state, request) = login_start(PASSWORD, &mut r).expect("login start");
        let (server_state, response) =
            server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
                .expect("server login start");
        let client = login_finish_memo(state, PASSWORD, &response, &ids(), &memo, &mut r)
            .expect("memoized login");
        let server = server_login_finish(&server_state, &client.finalization).expect("server");
        assert_eq!(client.session_key, server);
        keys.push(client.export_key);
    }
    // One user and password: Argon2id ran once.
    assert_eq!(memo.len(), 1);
    // The same export key as a plain login, which opens the account.
    let (plain, _) = login(&f.setup, Some(&f.password_file), PASSWORD, &ids(), 42);
    let plain = plain.expect("plain login");
    assert_eq!(plain.export_key, keys[0]);
    assert_eq!(plain.export_key, keys[1]);
    unlock(&keys[1], &f.account_id, &f.key_bundle).expect("unlock");
    // A wrong password stretches a different input and fails, as without a memo.
    let mut r = rng(43);
    let (state, request) = login_start(b"wrong", &mut r).expect("login start");
    let (_, response) =
        server_login_start(&f.setup, Some(&f.password_file), &request, &ids(), &mut r)
            .expect("server login start");
    assert!(login_finish_memo(state, b"wrong", &response, &ids(), &memo, &mut r).is_err());
    assert_eq!(memo.len(), 2);
}

#[test]
fn new_account_records_open_under_the_export_key() {
    let f = fixture();
    let (client, _) = login(&f.setup, Some(&f.password_file), PASSWORD, &ids(), 44);
    let export_key = client.expect("login").export_key;
    let mut r = rng(45);
    let other = AccountId::generate(&mut r);
    let reg = new_account(&export_key, "bob@example.org", other, 1_700_000_000, &mut r)
        .expect("new account");
    assert!(reg.registration_upload.is_empty());
    let identity = check_new_account(
        &other,
        "bob@example.org",
        &reg.key_bundle,
        &reg.signed_identity,
    )
    .expect("records check");
    assert_eq!(identity.user_name, "bob@example.org");
    let unlocked = unlock(&export_key, &other, &reg.key_bundle).expect("unlock");
    assert_eq!(unlocked.master_key, reg.account.master_key);
}

#[test]
fn registration_root_is_the_accounts_root_folder() {
    use crate::metadata::open_metadata;
    use crate::tree::{verify_node, verify_node_signature, NodeExpectation};

    let mut r = rng(46);
    let account_id = AccountId::generate(&mut r);
    let export_key = ExportKey::from_bytes([3; 64]);
    let reg = new_account(&export_key, USER, account_id, 1_700_000_000, &mut r).expect("account");
    let (record, signed) = reg.create_root(1_700_000_042, &mut r).expect("root");
    let bytes = encode(&signed);
    let secrets = &reg.account.secrets;

    // It verifies as the root (no parent, generation 0) under the identity the server publishes.
    let identity = check_new_account(&account_id, USER, &reg.key_bundle, &reg.signed_identity)
        .expect("records check");
    let at_root = NodeExpectation {
        node_id: secrets.root_node_id,
        parent: None,
        key_generation: Some(0),
    };
    let verified = verify_node(&bytes, &at_root, &[identity.signing_key]).expect("verifies");
    assert_eq!(verified, record);
    assert_eq!(verify_node_signature(&bytes).expect("server check"), record);
    assert!(record.parent_id.is_none() && record.sealed_node_key.is_none());
    assert!(record.is_folder() && record.file.is_none() && record.back_chain.is_empty());
    assert_eq!((record.key_generation, record.parent_generation), (0, 0));
    assert_eq!(
        (record.metadata_revision, record.metadata_generation),
        (1, 0)
    );
    assert_eq!(record.time, 1_700_000_042);

    // Nobody else's root: another author, another node id or a parent are refused.
    let stranger = IdentityKeys::generate(&mut r).signing.verifying_key();
    assert!(matches!(
        verify_node(&bytes, &at_root, &[stranger]),
        Err(Error::Binding(_))
    ));
    let elsewhere = NodeExpectation {
        node_id: NodeId::generate(&mut r),
        ..at_root
    };
    assert!(verify_node(&bytes, &elsewhere, &[identity.signing_key]).is_err());
    let below = NodeExpectation {
        parent: Some((NodeId::generate(&mut r), 0)),
        ..at_root
    };
    assert!(verify_node(&bytes, &below, &[identity.signing_key]).is_err());

    // The metadata opens under the root key (and nothing else): a folder named "root" (§7.6).
    let metadata = open_metadata(
        &secrets.root_node_key,
        &secrets.root_node_id,
        record.metadata_revision,
        &record.sealed_metadata,
    )
    .expect("metadata opens");
    assert_eq!(metadata.name(), "root");
    assert_eq!(metadata.size(), 0);
    assert_eq!(metadata.mtime(), 1_700_000_042);
    assert_eq!(metadata.media_type(), None);
    assert_eq!(metadata.content_digest(), None);
    let other = new_account(&export_key, USER, account_id, 1_700_000_000, &mut r).expect("other");
    assert!(matches!(
        open_metadata(
            &other.account.secrets.root_node_key,
            &secrets.root_node_id,
            record.metadata_revision,
            &record.sealed_metadata,
        ),
        Err(Error::DecryptionFailed)
    ));
}
