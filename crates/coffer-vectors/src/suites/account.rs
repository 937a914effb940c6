//! `account.json`: the master key wrap, the sealed account secrets, the key bundle, the deletion
//! proof and a complete OPAQUE sign-up and login transcript (spec §6, §9.5).

use serde_json::{json, Value};

use coffer_core::account::{
    self, derive_kek, login_finish, login_start, open_secrets, registration_start, seal_secrets,
    server_login_finish, server_login_start, server_registration_finish, server_registration_start,
    unlock, unwrap_master_key, wrap_master_key, AccountSecrets, AccountSecretsRecord, ExportKey,
    IdentityKeys, KeyBundle, MasterKey, MasterKeyContext, OpaqueIdentities, SecretsContext,
    ServerLoginState, ServerSetup, SessionKey, LABEL_SECRETS,
};
use coffer_core::encoding::{encode, ByteBuf, Bytes};
use coffer_core::ids::{AccountId, NodeId};
use coffer_core::primitives::{AgreementSecret, SecretKey, SigningKey};
use coffer_core::seal;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

const USER: &str = "alice@example.org";
const SERVER: &str = "https://coffer.example";

fn with(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

fn flip(b: &[u8], i: usize) -> Vec<u8> {
    let mut b = b.to_vec();
    b[i] ^= 0x01;
    b
}

/// Builds `account.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-account",
        "account",
        &[
            "Account keys (spec §6): KEK = HKDF-SHA-256(export_key, \"\", \"coffer/v1/account/kek\" || 0x00 || account_id); wrapped_master_key = seal_key(KEK, \"coffer/v1/account/master-key\", encode([24, 1, account_id, generation]), master_key); sealed_secrets = seal(master_key, \"coffer/v1/account/secrets\", encode([25, 1, account_id, master_key_generation, identity_generation]), encode(AccountSecrets)).",
            "MasterKeyWrap / SecretsSeal tests: drawing `randomness` (the 24-byte seal nonce) must reproduce `wrapped` / `sealed`; `kek`, `aad` and `plaintext` are intermediate values.",
            "MasterKeyUnwrap / SecretsOpen / Unlock tests: valid tests yield the listed keys, invalid tests fail with `failure`.",
            "DeletionProof tests: proof = HKDF-SHA-256(session_key, \"\", \"coffer/v1/account/delete\" || 0x00 || encode([27, 1, account_id, user_name])).",
            "OpaqueTranscript tests: a complete sign-up (register) and login with OPAQUE (RFC 9807; ristretto255-SHA512, 3DH, Argon2id m=19456 t=2 p=1). opaque-ke draws every random value from the RNG it is given, so each step's recorded `...Randomness` reproduces every message byte for byte; an independent RFC 9807 implementation that takes the same random scalars and nonces in the same order can check interoperability message by message.",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed value.");
    f.note(
        "WrongKey",
        "WRONG_KEY",
        "Another export key or master key (for example a wrong password's).",
    );
    f.note(
        "WrongBinding",
        "WRONG_BINDING",
        "Another account id or generation than the one sealed.",
    );
    f.note(
        "ModifiedCiphertext",
        "MODIFIED_CIPHERTEXT",
        "A bit of the sealed value is flipped.",
    );
    f.note(
        "WrongLength",
        "TRUNCATION",
        "A sealed value of the wrong length.",
    );
    f.note(
        "InnerBinding",
        "WRONG_BINDING",
        "A correctly sealed plaintext that names another account or generation.",
    );
    f.note(
        "Malformed",
        "MALFORMED",
        "A structure that does not decode under the strict rules of spec §1.",
    );
    f.note(
        "WrongPassword",
        "WRONG_KEY",
        "A login with another password.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/account");

    // ---- Master key wrap -------------------------------------------------------------------
    let g = f.group("MasterKeyWrap", json!({}));
    let mut wraps = Vec::new();
    for generation in [0u64, 1, 300] {
        let export = ExportKey::from_bytes(rng.array());
        let id = AccountId::from_bytes(rng.array());
        let mk = MasterKey {
            key: SecretKey::from_bytes(rng.array()),
            generation,
        };
        rng.take();
        let wrapped = wrap_master_key(&export, &id, &mk, &mut rng);
        let randomness = rng.take();
        let aad = encode(&MasterKeyContext {
            account_id: id,
            master_key_generation: generation,
        });
        g.valid(
            &format!("master key generation {generation}"),
            &["Valid"],
            json!({ "exportKey": hex::encode(export.expose()), "accountId": hex::encode(id.as_bytes()),
                    "masterKey": hex::encode(mk.key.expose()), "masterKeyGeneration": generation,
                    "kek": hex::encode(derive_kek(&export, &id).expose()), "aad": hex::encode(aad),
                    "randomness": hex::encode(randomness), "wrapped": hex::encode(&wrapped) }),
        );
        wraps.push((export, id, mk, wrapped));
    }
    let g = f.group("MasterKeyUnwrap", json!({}));
    let (export, id, mk, wrapped) = &wraps[1];
    let base = |export: &ExportKey, id: &AccountId, generation: u64, wrapped: &[u8]| {
        json!({ "exportKey": hex::encode(export.expose()), "accountId": hex::encode(id.as_bytes()),
                "masterKeyGeneration": generation, "wrapped": hex::encode(wrapped) })
    };
    for (e, i, m, w) in &wraps {
        g.valid(
            "unwraps",
            &["Valid"],
            with(
                base(e, i, m.generation, w),
                "masterKey",
                json!(hex::encode(m.key.expose())),
            ),
        );
    }
    let other_export = ExportKey::from_bytes(rng.array());
    let other_id = AccountId::from_bytes(rng.array());
    g.invalid(
        "wrong export key (another password)",
        &["WrongKey"],
        "decryption-failed",
        base(&other_export, id, 1, wrapped),
    );
    g.invalid(
        "wrong account id",
        &["WrongBinding"],
        "decryption-failed",
        base(export, &other_id, 1, wrapped),
    );
    g.invalid(
        "generation 0 instead of 1",
        &["WrongBinding"],
        "decryption-failed",
        base(export, id, 0, wrapped),
    );
    g.invalid(
        "generation 2 instead of 1",
        &["WrongBinding"],
        "decryption-failed",
        base(export, id, 2, wrapped),
    );
    for (what, pos) in [
        ("nonce", 0),
        ("commitment", 24),
        ("ciphertext", 56),
        ("tag", 103),
    ] {
        g.invalid(
            &format!("bit flip in the {what}"),
            &["ModifiedCiphertext"],
            "decryption-failed",
            base(export, id, 1, &flip(wrapped, pos)),
        );
    }
    g.invalid(
        "103 bytes",
        &["WrongLength"],
        "decryption-failed",
        base(export, id, 1, &wrapped[..103]),
    );
    g.invalid(
        "105 bytes",
        &["WrongLength"],
        "decryption-failed",
        base(export, id, 1, &[wrapped.as_slice(), &[0]].concat()),
    );
    g.invalid(
        "empty",
        &["WrongLength"],
        "decryption-failed",
        base(export, id, 1, &[]),
    );
    let _ = mk;

    // ---- Account secrets -----------------------------------------------------------------
    let g = f.group("SecretsSeal", json!({}));
    let mut seals = Vec::new();
    for (mkg, ig) in [(0u64, 0u64), (1, 1), (7, 5)] {
        let mk = MasterKey {
            key: SecretKey::from_bytes(rng.array()),
            generation: mkg,
        };
        let id = AccountId::from_bytes(rng.array());
        let secrets = AccountSecrets {
            identity_generation: ig,
            identity: IdentityKeys::generate(&mut rng),
            root_node_id: NodeId::generate(&mut rng),
            root_node_key: SecretKey::generate(&mut rng),
        };
        rng.take();
        let sealed = seal_secrets(&mk, &id, &secrets, &mut rng);
        let randomness = rng.take();
        let plaintext = encode(&AccountSecretsRecord {
            account_id: id,
            identity_generation: ig,
            signing_seed: Bytes(*secrets.identity.signing.seed()),
            agreement_secret: Bytes(*secrets.identity.agreement.expose()),
            root_node_id: secrets.root_node_id,
            root_node_key: Bytes(*secrets.root_node_key.expose()),
        });
        let aad = encode(&SecretsContext {
            account_id: id,
            master_key_generation: mkg,
            identity_generation: ig,
        });
        g.valid(
            &format!("master key generation {mkg}, identity generation {ig}"),
            &["Valid"],
            json!({ "masterKey": hex::encode(mk.key.expose()), "masterKeyGeneration": mkg,
                    "accountId": hex::encode(id.as_bytes()), "identityGeneration": ig,
                    "signingSeed": hex::encode(*secrets.identity.signing.seed()),
                    "agreementSecret": hex::encode(secrets.identity.agreement.expose()),
                    "rootNodeId": hex::encode(secrets.root_node_id.as_bytes()),
                    "rootNodeKey": hex::encode(secrets.root_node_key.expose()),
                    "plaintext": hex::encode(&plaintext), "aad": hex::encode(&aad),
                    "randomness": hex::encode(randomness), "sealed": hex::encode(&sealed) }),
        );
        seals.push((mk, id, secrets, sealed, plaintext, aad));
    }
    let g = f.group("SecretsOpen", json!({}));
    let base = |mk: &MasterKey, id: &AccountId, ig: u64, sealed: &[u8]| {
        json!({ "masterKey": hex::encode(mk.key.expose()), "masterKeyGeneration": mk.generation,
                "accountId": hex::encode(id.as_bytes()), "identityGeneration": ig, "sealed": hex::encode(sealed) })
    };
    for (mk, id, s, sealed, _, _) in &seals {
        let mut v = base(mk, id, s.identity_generation, sealed);
        v["signingSeed"] = json!(hex::encode(*s.identity.signing.seed()));
        v["agreementSecret"] = json!(hex::encode(s.identity.agreement.expose()));
        v["rootNodeId"] = json!(hex::encode(s.root_node_id.as_bytes()));
        v["rootNodeKey"] = json!(hex::encode(s.root_node_key.expose()));
        g.valid("opens", &["Valid"], v);
    }
    let (mk, id, s, sealed, plaintext, aad) = &seals[1];
    let ig = s.identity_generation;
    let other_mk = MasterKey {
        key: SecretKey::from_bytes(rng.array()),
        generation: 1,
    };
    let mk_gen2 = MasterKey {
        key: mk.key.clone(),
        generation: 2,
    };
    g.invalid(
        "wrong master key",
        &["WrongKey"],
        "decryption-failed",
        base(&other_mk, id, ig, sealed),
    );
    g.invalid(
        "wrong master key generation",
        &["WrongBinding"],
        "decryption-failed",
        base(&mk_gen2, id, ig, sealed),
    );
    g.invalid(
        "wrong identity generation",
        &["WrongBinding"],
        "decryption-failed",
        base(mk, id, ig + 1, sealed),
    );
    g.invalid(
        "wrong account id",
        &["WrongBinding"],
        "decryption-failed",
        base(mk, &other_id, ig, sealed),
    );
    for (what, pos) in [
        ("nonce", 0),
        ("commitment", 30),
        ("ciphertext", 60),
        ("tag", sealed.len() - 1),
    ] {
        g.invalid(
            &format!("bit flip in the {what}"),
            &["ModifiedCiphertext"],
            "decryption-failed",
            base(mk, id, ig, &flip(sealed, pos)),
        );
    }
    g.invalid(
        "truncated below the seal overhead",
        &["WrongLength"],
        "decryption-failed",
        base(mk, id, ig, &sealed[..71]),
    );
    // Correctly sealed plaintexts with a fault inside.
    let mut reseal = |pt: &[u8]| seal::seal(&mk.key, LABEL_SECRETS, aad, pt, &mut rng);
    let mut other_account = plaintext.clone();
    other_account[4..20].copy_from_slice(other_id.as_bytes());
    assert_eq!(&plaintext[4..20], id.as_bytes());
    g.invalid(
        "the sealed record names another account",
        &["InnerBinding"],
        "binding-mismatch",
        base(mk, id, ig, &reseal(&other_account)),
    );
    let mut other_gen = plaintext.clone();
    other_gen[20] = 0x02;
    assert_eq!(plaintext[20], 0x01);
    g.invalid(
        "the sealed record names another identity generation",
        &["InnerBinding"],
        "binding-mismatch",
        base(mk, id, ig, &reseal(&other_gen)),
    );
    let trailing = [plaintext.as_slice(), &[0]].concat();
    g.invalid(
        "the sealed record has a trailing byte",
        &["Malformed"],
        "trailing-bytes",
        base(mk, id, ig, &reseal(&trailing)),
    );
    let nc = [&plaintext[..20], &[0x18, 0x01], &plaintext[21..]].concat();
    g.invalid(
        "the sealed record has a non-shortest integer",
        &["Malformed"],
        "non-canonical",
        base(mk, id, ig, &reseal(&nc)),
    );
    let mut wrong_type = plaintext.clone();
    wrong_type[1] = 22;
    g.invalid(
        "the sealed record has another type code",
        &["Malformed"],
        "wrong-type",
        base(mk, id, ig, &reseal(&wrong_type)),
    );
    g.invalid(
        "the sealed record is empty",
        &["Malformed"],
        "malformed",
        base(mk, id, ig, &reseal(&[])),
    );
    rng.take();

    // ---- Unlock ---------------------------------------------------------------------------
    let g = f.group("Unlock", json!({}));
    let export = ExportKey::from_bytes(rng.array());
    let (mk, id, s, sealed, _, _) = &seals[2];
    let wrapped = wrap_master_key(&export, id, mk, &mut rng);
    let bundle = KeyBundle {
        account_id: *id,
        master_key_generation: mk.generation,
        wrapped_master_key: Bytes(wrapped.as_slice().try_into().expect("104")),
        identity_generation: s.identity_generation,
        sealed_secrets: ByteBuf::from(sealed.clone()),
    };
    let enc = encode(&bundle);
    let base = |export: &ExportKey, id: &AccountId, bundle: &[u8]| json!({ "exportKey": hex::encode(export.expose()), "accountId": hex::encode(id.as_bytes()), "keyBundle": hex::encode(bundle) });
    let mut v = base(&export, id, &enc);
    v["masterKey"] = json!(hex::encode(mk.key.expose()));
    v["masterKeyGeneration"] = json!(mk.generation);
    v["identityGeneration"] = json!(s.identity_generation);
    v["rootNodeKey"] = json!(hex::encode(s.root_node_key.expose()));
    g.valid("unlocks", &["Valid"], v);
    g.invalid(
        "wrong export key",
        &["WrongKey"],
        "decryption-failed",
        base(&other_export, id, &enc),
    );
    g.invalid(
        "bundle of another account",
        &["WrongBinding"],
        "binding-mismatch",
        base(&export, &other_id, &enc),
    );
    let lie = encode(&KeyBundle {
        master_key_generation: mk.generation + 1,
        ..bundle.clone()
    });
    g.invalid(
        "master key generation changed in the clear",
        &["WrongBinding"],
        "decryption-failed",
        base(&export, id, &lie),
    );
    let lie = encode(&KeyBundle {
        identity_generation: s.identity_generation + 1,
        ..bundle.clone()
    });
    g.invalid(
        "identity generation changed in the clear",
        &["WrongBinding"],
        "decryption-failed",
        base(&export, id, &lie),
    );
    let short = encode(&KeyBundle {
        sealed_secrets: ByteBuf::from(vec![0u8; 71]),
        ..bundle.clone()
    });
    g.invalid(
        "sealed secrets shorter than the seal overhead",
        &["Malformed"],
        "invalid-value",
        base(&export, id, &short),
    );
    g.invalid(
        "trailing byte",
        &["Malformed"],
        "trailing-bytes",
        base(&export, id, &[enc.as_slice(), &[0]].concat()),
    );
    let mut wt = enc.clone();
    wt[2] = 25;
    g.invalid(
        "type code 25 instead of 26",
        &["Malformed"],
        "wrong-type",
        base(&export, id, &wt),
    );
    let _ = account::MAX_KEY_BUNDLE_LEN;

    // ---- Deletion proof ---------------------------------------------------------------------
    let g = f.group("DeletionProof", json!({}));
    let sk = SessionKey::from_bytes(rng.array());
    let id = AccountId::from_bytes(rng.array());
    let proof = account::deletion_proof(&sk, &id, USER);
    let base = |id: &AccountId, user: &str, proof: &[u8]| json!({ "sessionKey": hex::encode(sk.expose()), "accountId": hex::encode(id.as_bytes()), "userName": user, "proof": hex::encode(proof) });
    g.valid(
        "proof of a fresh login",
        &["Valid"],
        base(&id, USER, &proof),
    );
    g.invalid(
        "proof for another account",
        &["WrongBinding"],
        "authentication-failed",
        base(&other_id, USER, &proof),
    );
    g.invalid(
        "proof for another user name",
        &["WrongBinding"],
        "authentication-failed",
        base(&id, "bob", &proof),
    );
    g.invalid(
        "modified proof",
        &["ModifiedCiphertext"],
        "authentication-failed",
        base(&id, USER, &flip(&proof, 31)),
    );
    g.invalid(
        "truncated proof",
        &["WrongLength"],
        "authentication-failed",
        base(&id, USER, &proof[..31]),
    );
    rng.take();

    // ---- OPAQUE transcript -----------------------------------------------------------------
    let g = f.group(
        "OpaqueTranscript",
        json!({ "userName": USER, "serverIdentity": SERVER }),
    );
    let ids = OpaqueIdentities {
        user_name: USER,
        server_identity: SERVER,
    };
    let password = b"correct horse battery staple";
    let setup = ServerSetup::generate(&mut rng);
    let setup_randomness = rng.take();
    let account_id = AccountId::from_bytes(rng.array());
    rng.take();
    let (state, request) = registration_start(password, &mut rng).expect("start");
    let reg_start_randomness = rng.take();
    let response = server_registration_start(&setup, &request, &ids).expect("server start");
    let created = 1_700_000_000;
    let reg = account::register(
        state, password, &response, &ids, account_id, created, &mut rng,
    )
    .expect("register");
    let register_randomness = rng.take();
    let file = server_registration_finish(&reg.registration_upload).expect("file");
    let transcript = |rng: &mut RecordingRng, pw: &[u8]| {
        let (state, request) = login_start(pw, rng).expect("login start");
        let login_start_randomness = rng.take();
        let (server_state, response) =
            server_login_start(&setup, Some(&file), &request, &ids, rng).expect("server login");
        let server_login_randomness = rng.take();
        let fin = login_finish(state, pw, &response, &ids, rng);
        let login_finish_randomness = rng.take();
        json!({
            "serverSetup": hex::encode(setup.to_bytes().as_slice()),
            "passwordFile": hex::encode(&file),
            "loginPassword": hex::encode(pw),
            "loginStartRandomness": hex::encode(login_start_randomness),
            "credentialRequest": hex::encode(request),
            "serverLoginRandomness": hex::encode(server_login_randomness),
            "serverLoginState": hex::encode(server_state.as_bytes()),
            "credentialResponse": hex::encode(response),
            "loginFinishRandomness": hex::encode(login_finish_randomness),
            "credentialFinalization": fin.as_ref().map(|f| hex::encode(&f.finalization)).ok(),
            "sessionKey": fin.as_ref().map(|f| hex::encode(f.session_key.expose())).ok(),
            "exportKey": fin.as_ref().map(|f| hex::encode(f.export_key.expose())).ok(),
        })
    };
    let mut v = transcript(&mut rng, password);
    for (k, val) in [
        ("password", hex::encode(password)),
        ("accountId", hex::encode(account_id.as_bytes())),
        ("setupRandomness", hex::encode(&setup_randomness)),
        (
            "registrationStartRandomness",
            hex::encode(&reg_start_randomness),
        ),
        ("registrationRequest", hex::encode(&request)),
        ("registrationResponse", hex::encode(&response)),
        ("registerRandomness", hex::encode(&register_randomness)),
        ("registrationUpload", hex::encode(&reg.registration_upload)),
        ("keyBundle", hex::encode(&reg.key_bundle)),
        ("signedIdentity", hex::encode(&reg.signed_identity)),
        (
            "masterKey",
            hex::encode(reg.account.master_key.key.expose()),
        ),
    ] {
        v[k] = json!(val);
    }
    v["created"] = json!(created);
    g.valid("sign-up, login and unlock", &["Valid"], v);
    let v = transcript(&mut rng, b"correct horse battery stapler");
    g.invalid(
        "login with another password",
        &["WrongPassword"],
        "authentication-failed",
        v,
    );
    rng.take();
    f.finish()
}

fn key<const N: usize>(test: &Test, name: &str) -> anyhow::Result<[u8; N]> {
    test.hex_array::<N>(name)
}

fn verify_transcript(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    let user = group
        .params
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let server = group
        .params
        .get("serverIdentity")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ids = OpaqueIdentities {
        user_name: user,
        server_identity: server,
    };
    let setup = ServerSetup::from_bytes(&test.hex("serverSetup")?)?;
    if test.is_valid() {
        // Sign-up, replayed.
        let mut r = ReplayRng::new(test.hex("setupRandomness")?);
        let regenerated = ServerSetup::generate(&mut r);
        anyhow::ensure!(
            r.fully_used() && regenerated.to_bytes() == setup.to_bytes(),
            "server setup"
        );
        let password = test.hex("password")?;
        let mut r = ReplayRng::new(test.hex("registrationStartRandomness")?);
        let (state, request) = registration_start(&password, &mut r)?;
        anyhow::ensure!(
            r.fully_used() && request == test.hex("registrationRequest")?,
            "registration request"
        );
        let response = server_registration_start(&setup, &request, &ids)?;
        anyhow::ensure!(
            response == test.hex("registrationResponse")?,
            "registration response"
        );
        let account_id = AccountId::from_bytes(key(test, "accountId")?);
        let mut r = ReplayRng::new(test.hex("registerRandomness")?);
        let reg = account::register(
            state,
            &password,
            &response,
            &ids,
            account_id,
            test.u64("created")?,
            &mut r,
        )?;
        anyhow::ensure!(r.fully_used(), "register randomness");
        anyhow::ensure!(
            reg.registration_upload == test.hex("registrationUpload")?,
            "registration upload"
        );
        anyhow::ensure!(reg.key_bundle == test.hex("keyBundle")?, "key bundle");
        anyhow::ensure!(
            reg.signed_identity == test.hex("signedIdentity")?,
            "signed identity"
        );
        let file = server_registration_finish(&reg.registration_upload)?;
        anyhow::ensure!(file == test.hex("passwordFile")?, "password file");
    }
    // Login, replayed.
    let file = test.hex("passwordFile")?;
    let pw = test.hex("loginPassword")?;
    let mut r = ReplayRng::new(test.hex("loginStartRandomness")?);
    let (state, request) = login_start(&pw, &mut r)?;
    anyhow::ensure!(
        r.fully_used() && request == test.hex("credentialRequest")?,
        "credential request"
    );
    let mut r = ReplayRng::new(test.hex("serverLoginRandomness")?);
    let (server_state, response) = server_login_start(&setup, Some(&file), &request, &ids, &mut r)?;
    anyhow::ensure!(r.fully_used(), "server login randomness");
    anyhow::ensure!(
        server_state.as_bytes() == test.hex("serverLoginState")?.as_slice(),
        "server login state"
    );
    anyhow::ensure!(
        response == test.hex("credentialResponse")?,
        "credential response"
    );
    let mut r = ReplayRng::new(test.hex("loginFinishRandomness")?);
    let fin = login_finish(state, &pw, &response, &ids, &mut r);
    expect(test, fin, |fin| {
        anyhow::ensure!(r.fully_used(), "login finish randomness");
        anyhow::ensure!(
            fin.finalization == test.hex("credentialFinalization")?,
            "finalization"
        );
        anyhow::ensure!(
            fin.session_key.expose()[..] == test.hex("sessionKey")?[..],
            "session key"
        );
        anyhow::ensure!(
            fin.export_key.expose()[..] == test.hex("exportKey")?[..],
            "export key"
        );
        let server_key = server_login_finish(
            &ServerLoginState::from_bytes(server_state.as_bytes()),
            &fin.finalization,
        )?;
        anyhow::ensure!(server_key == fin.session_key, "server session key");
        let account_id = AccountId::from_bytes(key(test, "accountId")?);
        let unlocked = unlock(&fin.export_key, &account_id, &test.hex("keyBundle")?)?;
        anyhow::ensure!(
            unlocked.master_key.key.expose()[..] == test.hex("masterKey")?[..],
            "master key"
        );
        Ok(())
    })
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "MasterKeyWrap" => {
            let export = ExportKey::from_bytes(key(test, "exportKey")?);
            let id = AccountId::from_bytes(key(test, "accountId")?);
            let mk = MasterKey {
                key: SecretKey::from_bytes(key(test, "masterKey")?),
                generation: test.u64("masterKeyGeneration")?,
            };
            anyhow::ensure!(
                derive_kek(&export, &id).expose()[..] == test.hex("kek")?[..],
                "kek"
            );
            let aad = encode(&MasterKeyContext {
                account_id: id,
                master_key_generation: mk.generation,
            });
            anyhow::ensure!(aad == test.hex("aad")?, "aad");
            let mut r = ReplayRng::new(test.hex("randomness")?);
            let wrapped = wrap_master_key(&export, &id, &mk, &mut r);
            anyhow::ensure!(
                r.fully_used() && wrapped == test.hex("wrapped")?,
                "wrapped differs"
            );
            Ok(())
        }
        "MasterKeyUnwrap" => {
            let export = ExportKey::from_bytes(key(test, "exportKey")?);
            let id = AccountId::from_bytes(key(test, "accountId")?);
            let out = unwrap_master_key(
                &export,
                &id,
                test.u64("masterKeyGeneration")?,
                &test.hex("wrapped")?,
            );
            expect(test, out, |mk| {
                anyhow::ensure!(
                    mk.key.expose()[..] == test.hex("masterKey")?[..],
                    "master key"
                );
                Ok(())
            })
        }
        "SecretsSeal" => {
            let mk = MasterKey {
                key: SecretKey::from_bytes(key(test, "masterKey")?),
                generation: test.u64("masterKeyGeneration")?,
            };
            let id = AccountId::from_bytes(key(test, "accountId")?);
            let ig = test.u64("identityGeneration")?;
            let secrets = AccountSecrets {
                identity_generation: ig,
                identity: IdentityKeys {
                    signing: SigningKey::from_seed(&key(test, "signingSeed")?),
                    agreement: AgreementSecret::from_bytes(key(test, "agreementSecret")?),
                },
                root_node_id: NodeId::from_bytes(key(test, "rootNodeId")?),
                root_node_key: SecretKey::from_bytes(key(test, "rootNodeKey")?),
            };
            let aad = encode(&SecretsContext {
                account_id: id,
                master_key_generation: mk.generation,
                identity_generation: ig,
            });
            anyhow::ensure!(aad == test.hex("aad")?, "aad");
            let mut r = ReplayRng::new(test.hex("randomness")?);
            let sealed = seal_secrets(&mk, &id, &secrets, &mut r);
            anyhow::ensure!(
                r.fully_used() && sealed == test.hex("sealed")?,
                "sealed differs"
            );
            let pt = seal::open(&mk.key, LABEL_SECRETS, &aad, &sealed)?;
            anyhow::ensure!(
                pt.as_slice() == test.hex("plaintext")?.as_slice(),
                "plaintext"
            );
            Ok(())
        }
        "SecretsOpen" => {
            let mk = MasterKey {
                key: SecretKey::from_bytes(key(test, "masterKey")?),
                generation: test.u64("masterKeyGeneration")?,
            };
            let id = AccountId::from_bytes(key(test, "accountId")?);
            let out = open_secrets(
                &mk,
                &id,
                test.u64("identityGeneration")?,
                &test.hex("sealed")?,
            );
            expect(test, out, |s| {
                anyhow::ensure!(
                    *s.identity.signing.seed() == key::<32>(test, "signingSeed")?,
                    "signing seed"
                );
                anyhow::ensure!(
                    *s.identity.agreement.expose() == key::<32>(test, "agreementSecret")?,
                    "agreement secret"
                );
                anyhow::ensure!(
                    *s.root_node_id.as_bytes() == key::<16>(test, "rootNodeId")?,
                    "root node id"
                );
                anyhow::ensure!(
                    *s.root_node_key.expose() == key::<32>(test, "rootNodeKey")?,
                    "root node key"
                );
                Ok(())
            })
        }
        "Unlock" => {
            let export = ExportKey::from_bytes(key(test, "exportKey")?);
            let id = AccountId::from_bytes(key(test, "accountId")?);
            expect(test, unlock(&export, &id, &test.hex("keyBundle")?), |a| {
                anyhow::ensure!(
                    *a.master_key.key.expose() == key::<32>(test, "masterKey")?,
                    "master key"
                );
                anyhow::ensure!(
                    a.master_key.generation == test.u64("masterKeyGeneration")?,
                    "generation"
                );
                anyhow::ensure!(
                    a.secrets.identity_generation == test.u64("identityGeneration")?,
                    "identity generation"
                );
                anyhow::ensure!(
                    *a.secrets.root_node_key.expose() == key::<32>(test, "rootNodeKey")?,
                    "root node key"
                );
                Ok(())
            })
        }
        "DeletionProof" => {
            let sk = SessionKey::from_bytes(key(test, "sessionKey")?);
            let id = AccountId::from_bytes(key(test, "accountId")?);
            let user = test.str("userName")?;
            let proof = test.hex("proof")?;
            expect(
                test,
                account::verify_deletion_proof(&sk, &id, user, &proof),
                |()| {
                    anyhow::ensure!(
                        account::deletion_proof(&sk, &id, user)[..] == proof[..],
                        "proof"
                    );
                    Ok(())
                },
            )
        }
        "OpaqueTranscript" => verify_transcript(group, test),
        other => anyhow::bail!("unknown group type {other}"),
    }
}
