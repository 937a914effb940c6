//! `primitives.json`: the primitives of spec §2 as Coffer uses them: HKDF with Coffer's label
//! encoding, labelled Ed25519 signatures under the strict verification rule, X25519 public-key
//! validation, HPKE base mode with injected ephemeral randomness, and Argon2id with its bounds.

use serde_json::{json, Value};

use coffer_core::primitives::{
    hkdf, hpke_open, hpke_seal, AgreementPublic, AgreementSecret, Argon2Params, SigningKey,
    VerifyingKey,
};
use coffer_core::Error;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

const SIGN_LABEL: &str = "coffer/v1/test-vector/signature";
const HPKE_INFO: &str = "coffer/v1/test-vector/hpke";

/// The group order L of Ed25519, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn h(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

/// 32 bytes from hex (generator constants only).
fn b32(s: &str) -> [u8; 32] {
    let v = hex::decode(s).expect("constant hex");
    v.as_slice().try_into().expect("32-byte constant")
}

/// The Ed25519 identity point (0, 1): small order.
const ED_IDENTITY: &str = "0100000000000000000000000000000000000000000000000000000000000000";
/// A point of order 8 on edwards25519 (y = 0x...c7176a70, the canonical encoding).
const ED_ORDER_8: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
/// y = p + 3: a non-canonical encoding of a valid point of large order (y = 3).
const ED_NONCANONICAL: &str = "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

/// Builds `primitives.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-primitives",
        "primitives",
        &[
            "The primitives of spec §2 as Coffer uses them.",
            "Hkdf: okm = HKDF-SHA-256(ikm, salt, info = label || 0x00 || context, length); `info` is given as an intermediate value.",
            "Ed25519Sign: the RFC 8032 key of `seed` signs `signedMessage` = label || 0x00 || msg; the output must equal `publicKey` and `sig`.",
            "Ed25519Verify: parse `publicKey` (canonical, not small order), then verify `sig` over label || 0x00 || msg with the strict rule of spec §2.4. Invalid tests fail with `invalid-public-key` (the key) or `bad-signature` (the signature).",
            "X25519PublicKey: validate `publicKey` (canonical u < p, on the curve not the twist, not of small order); invalid tests fail with `invalid-public-key`.",
            "HpkeSeal: RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, single-shot; the 32 bytes of `randomness` are ikmE, the ephemeral key pair is DeriveKeyPair(ikmE); the outputs must equal `enc` and `ct`.",
            "HpkeOpen: single-shot open of (`enc`, `ct`) with `secretKey`; valid tests yield `msg`, invalid tests fail with `decryption-failed`.",
            "Argon2ParamsCheck: check (m_kib, t, p) against the floor and ceiling of spec §2.7 without computing anything.",
            "Argon2idDerive: Argon2id v1.3, 32-byte output; parameters are checked first, so the out-of-range tests must fail at once with `limit-exceeded` (one of them asks for 1 GiB + 1 KiB).",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed input.");
    f.note(
        "EmptyInput",
        "EDGE_CASE",
        "An empty message, context or plaintext.",
    );
    f.note(
        "OutputLength",
        "EDGE_CASE",
        "An HKDF output length other than 32.",
    );
    f.note(
        "NonCanonicalS",
        "SIGNATURE_MALLEABILITY",
        "S is replaced by S + L: the same scalar, non-canonically encoded. Strict verification rejects S >= L.",
    );
    f.note(
        "SmallOrderR",
        "SIGNATURE_MALLEABILITY",
        "R encodes a point of small order. Strict verification rejects it.",
    );
    f.note(
        "NonCanonicalR",
        "SIGNATURE_MALLEABILITY",
        "R is a non-canonical encoding (y >= p) of a point. Strict verification compares R as bytes and rejects it.",
    );
    f.note(
        "SmallOrderPublicKey",
        "WEAK_PUBLIC_KEY",
        "The public key is a point of small order; with R = identity and S = 0 a cofactorless non-strict verifier accepts any message (weak-key forgery).",
    );
    f.note(
        "NonCanonicalPublicKey",
        "WEAK_PUBLIC_KEY",
        "The public key is a non-canonical encoding (coordinate >= p) of a valid point.",
    );
    f.note(
        "WrongLabel",
        "WRONG_CONTEXT",
        "Verified under another label: the signature does not transfer between contexts.",
    );
    f.note(
        "ModifiedMessage",
        "MODIFIED_INPUT",
        "A bit of the message is flipped.",
    );
    f.note(
        "ModifiedSignature",
        "MODIFIED_SIGNATURE",
        "A bit of the signature is flipped.",
    );
    f.note(
        "LowOrderPublic",
        "WEAK_PUBLIC_KEY",
        "An X25519 u-coordinate of small order: the shared secret would be all-zero or fixed.",
    );
    f.note(
        "Twist",
        "WEAK_PUBLIC_KEY",
        "An X25519 u-coordinate on the quadratic twist, not on Curve25519.",
    );
    f.note(
        "NonCanonicalU",
        "WEAK_PUBLIC_KEY",
        "An X25519 u-coordinate >= p, or with the top bit set.",
    );
    f.note(
        "ModifiedCiphertext",
        "MODIFIED_CIPHERTEXT",
        "A bit of the HPKE ciphertext or tag is flipped.",
    );
    f.note(
        "ModifiedEnc",
        "MODIFIED_CIPHERTEXT",
        "The encapsulated key is changed.",
    );
    f.note(
        "WrongKey",
        "WRONG_KEY",
        "Opened with another recipient key.",
    );
    f.note(
        "WrongInfo",
        "WRONG_CONTEXT",
        "Opened with another info string.",
    );
    f.note(
        "WrongAad",
        "WRONG_CONTEXT",
        "Opened with other associated data.",
    );
    f.note(
        "Floor",
        "EDGE_CASE",
        "An Argon2id parameter exactly at its floor or ceiling (accepted).",
    );
    f.note(
        "OutOfRange",
        "RESOURCE_LIMIT",
        "An Argon2id parameter just below its floor or just above its ceiling.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/primitives");
    hkdf_group(&mut f, &mut rng);
    ed25519_groups(&mut f, &mut rng);
    x25519_group(&mut f, &mut rng);
    hpke_groups(&mut f, &mut rng);
    argon2_groups(&mut f, &mut rng);
    f.finish()
}

fn hkdf_group(f: &mut VectorFile, rng: &mut RecordingRng) {
    let g = f.group("Hkdf", json!({}));
    /// (label, context, output length, ikm length, salt length, flags)
    type HkdfCase = (
        &'static str,
        &'static [u8],
        usize,
        usize,
        usize,
        &'static [&'static str],
    );
    let cases: [HkdfCase; 6] = [
        (
            "coffer/v1/test-vector/hkdf",
            b"",
            32,
            32,
            24,
            &["EmptyInput"],
        ),
        (
            "coffer/v1/test-vector/hkdf",
            b"context",
            32,
            32,
            24,
            &["Valid"],
        ),
        (
            "coffer/v1/test-vector/hkdf",
            b"context",
            64,
            32,
            24,
            &["OutputLength"],
        ),
        (
            "coffer/v1/test-vector/other",
            b"context",
            32,
            32,
            24,
            &["Valid"],
        ),
        (
            "coffer/v1/test-vector/hkdf",
            b"\x00\x01\x02",
            1,
            16,
            0,
            &["OutputLength"],
        ),
        (
            "coffer/v1/test-vector/hkdf",
            b"a longer context",
            100,
            64,
            32,
            &["OutputLength"],
        ),
    ];
    for (label, context, len, ikm_len, salt_len, flags) in cases {
        let mut ikm = vec![0u8; ikm_len];
        rand_core::RngCore::fill_bytes(rng, &mut ikm);
        let mut salt = vec![0u8; salt_len];
        rand_core::RngCore::fill_bytes(rng, &mut salt);
        rng.take();
        let mut okm = vec![0u8; len];
        hkdf(&ikm, &salt, label, context, &mut okm);
        let mut info = label.as_bytes().to_vec();
        info.push(0);
        info.extend_from_slice(context);
        g.valid(
            &format!("{len}-byte output"),
            flags,
            json!({ "ikm": h(&ikm), "salt": h(&salt), "label": label, "context": h(context),
                    "info": h(&info), "length": len, "okm": h(&okm) }),
        );
    }
}

/// `s + L` over 32 little-endian bytes (S < L < 2^253, so no carry out).
fn add_l(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(ED25519_L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

fn ed25519_groups(f: &mut VectorFile, rng: &mut RecordingRng) {
    let mut keys = Vec::new();
    {
        let g = f.group("Ed25519Sign", json!({}));
        for (i, msg) in [&b""[..], b"abc", &[0x5a; 200]].into_iter().enumerate() {
            let seed: [u8; 32] = rng.array();
            rng.take();
            let sk = SigningKey::from_seed(&seed);
            let label = if i == 1 {
                "coffer/v1/test-vector/other"
            } else {
                SIGN_LABEL
            };
            let sig = sk.sign(label, msg);
            let mut signed = label.as_bytes().to_vec();
            signed.push(0);
            signed.extend_from_slice(msg);
            let flags: &[&str] = if msg.is_empty() {
                &["EmptyInput"]
            } else {
                &["Valid"]
            };
            g.valid(
                &format!("{}-byte message", msg.len()),
                flags,
                json!({ "seed": h(seed), "label": label, "msg": h(msg), "signedMessage": h(&signed),
                        "publicKey": h(sk.verifying_key().to_bytes()), "sig": h(sig) }),
            );
            keys.push((sk, label, msg.to_vec(), sig));
        }
    }

    let g = f.group("Ed25519Verify", json!({}));
    let (sk, label, msg, sig) = &keys[1];
    let pk = sk.verifying_key().to_bytes();
    let base = |pk: &[u8], label: &str, msg: &[u8], sig: &[u8]| json!({ "publicKey": h(pk), "label": label, "msg": h(msg), "sig": h(sig) });
    for (sk, label, msg, sig) in &keys {
        g.valid(
            "valid signature",
            &["Valid"],
            base(&sk.verifying_key().to_bytes(), label, msg, sig),
        );
    }
    let mut s_plus_l = *sig;
    s_plus_l[32..].copy_from_slice(&add_l(&sig[32..]));
    g.invalid(
        "S + L",
        &["NonCanonicalS"],
        "bad-signature",
        base(&pk, label, msg, &s_plus_l),
    );
    for (what, r) in [("R = identity", ED_IDENTITY), ("R of order 8", ED_ORDER_8)] {
        let mut bad = *sig;
        bad[..32].copy_from_slice(&b32(r));
        g.invalid(
            what,
            &["SmallOrderR"],
            "bad-signature",
            base(&pk, label, msg, &bad),
        );
    }
    let mut bad = *sig;
    bad[..32].copy_from_slice(&b32(ED_NONCANONICAL));
    g.invalid(
        "R with y = p + 3",
        &["NonCanonicalR"],
        "bad-signature",
        base(&pk, label, msg, &bad),
    );
    // R = identity, S = 0: satisfies [S]B = R + [k]A for any small-order A and any message.
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&b32(ED_IDENTITY));
    for (what, a) in [
        ("A = identity, R = identity, S = 0", ED_IDENTITY),
        ("A of order 8, R = identity, S = 0", ED_ORDER_8),
    ] {
        g.invalid(
            what,
            &["SmallOrderPublicKey"],
            "invalid-public-key",
            base(&b32(a), label, msg, &forged),
        );
    }
    g.invalid(
        "A with y = p + 3",
        &["NonCanonicalPublicKey"],
        "invalid-public-key",
        base(&b32(ED_NONCANONICAL), label, msg, sig),
    );
    g.invalid(
        "wrong label",
        &["WrongLabel"],
        "bad-signature",
        base(&pk, SIGN_LABEL, msg, sig),
    );
    g.invalid(
        "label boundary moved into the message (label minus its last character; message = that character || 0x00 || msg)",
        &["WrongLabel"],
        "bad-signature",
        base(
            &pk,
            "coffer/v1/test-vector/othe",
            &[b"r\x00", &msg[..]].concat(),
            sig,
        ),
    );
    let mut bad_msg = msg.clone();
    bad_msg[0] ^= 0x01;
    g.invalid(
        "bit flip in message",
        &["ModifiedMessage"],
        "bad-signature",
        base(&pk, label, &bad_msg, sig),
    );
    for (what, pos) in [("R", 0), ("S", 32), ("last byte of S", 63)] {
        let mut bad = *sig;
        bad[pos] ^= 0x01;
        g.invalid(
            &format!("bit flip in {what}"),
            &["ModifiedSignature"],
            "bad-signature",
            base(&pk, label, msg, &bad),
        );
    }
}

fn x25519_group(f: &mut VectorFile, rng: &mut RecordingRng) {
    let g = f.group("X25519PublicKey", json!({}));
    let mut base_point = [0u8; 32];
    base_point[0] = 9;
    g.valid(
        "the base point u = 9",
        &["Valid"],
        json!({ "publicKey": h(base_point) }),
    );
    for _ in 0..2 {
        let sk = AgreementSecret::generate(rng);
        rng.take();
        g.valid(
            "a generated public key",
            &["Valid"],
            json!({ "secretKey": h(sk.expose()), "publicKey": h(sk.public_key().to_bytes()) }),
        );
    }
    let mut high_bit = base_point;
    high_bit[31] |= 0x80;
    let cases: [(&str, [u8; 32], &str); 9] = [
        (
            "u = 0, the point of order 2: all-zero shared secret",
            [0u8; 32],
            "LowOrderPublic",
        ),
        (
            "u = 1 (order 4)",
            {
                let mut u = [0u8; 32];
                u[0] = 1;
                u
            },
            "LowOrderPublic",
        ),
        (
            "u = p - 1, a point of order 4 on the twist",
            b32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            "LowOrderPublic",
        ),
        (
            "a point of order 8",
            b32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            "LowOrderPublic",
        ),
        (
            "another point of order 8",
            b32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
            "LowOrderPublic",
        ),
        (
            "u = 2, on the twist",
            {
                let mut u = [0u8; 32];
                u[0] = 2;
                u
            },
            "Twist",
        ),
        (
            "u = p (non-canonical 0)",
            b32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            "NonCanonicalU",
        ),
        (
            "u = p + 9 (non-canonical encoding of the base point)",
            b32("f6ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            "NonCanonicalU",
        ),
        ("u = 9 with bit 255 set", high_bit, "NonCanonicalU"),
    ];
    for (what, u, flag) in cases {
        g.invalid(
            what,
            &[flag],
            "invalid-public-key",
            json!({ "publicKey": h(u) }),
        );
    }
}

fn hpke_groups(f: &mut VectorFile, rng: &mut RecordingRng) {
    let mut sealed = Vec::new();
    {
        let g = f.group("HpkeSeal", json!({ "info": h(HPKE_INFO) }));
        for (i, msg) in [&b""[..], b"a 32-byte key goes in here.....!"]
            .into_iter()
            .enumerate()
        {
            let sk = AgreementSecret::generate(rng);
            rng.take();
            let pk = sk.public_key();
            let aad = format!("aad-{i}").into_bytes();
            let (enc, ct) =
                hpke_seal(&pk, HPKE_INFO.as_bytes(), &aad, msg, rng).expect("valid recipient");
            let randomness = rng.take();
            let flags: &[&str] = if msg.is_empty() {
                &["EmptyInput"]
            } else {
                &["Valid"]
            };
            g.valid(
                &format!("{}-byte message", msg.len()),
                flags,
                json!({ "secretKey": h(sk.expose()), "publicKey": h(pk.to_bytes()), "aad": h(&aad),
                        "msg": h(msg), "randomness": h(&randomness), "enc": h(enc), "ct": h(&ct) }),
            );
            sealed.push((sk, aad, msg.to_vec(), enc, ct));
        }
    }
    let other = AgreementSecret::generate(rng);
    rng.take();
    let g = f.group("HpkeOpen", json!({}));
    let open_case = |sk: &AgreementSecret, enc: &[u8], info: &str, aad: &[u8], ct: &[u8]| json!({ "secretKey": h(sk.expose()), "enc": h(enc), "info": h(info), "aad": h(aad), "ct": h(ct) });
    for (sk, aad, msg, enc, ct) in &sealed {
        let mut v = open_case(sk, enc, HPKE_INFO, aad, ct);
        v["msg"] = Value::String(h(msg));
        g.valid("opens", &["Valid"], v);
    }
    let (sk, aad, _, enc, ct) = &sealed[1];
    let mut bad = ct.clone();
    bad[0] ^= 0x01;
    g.invalid(
        "bit flip in ciphertext",
        &["ModifiedCiphertext"],
        "decryption-failed",
        open_case(sk, enc, HPKE_INFO, aad, &bad),
    );
    let mut bad = ct.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    g.invalid(
        "bit flip in tag",
        &["ModifiedCiphertext"],
        "decryption-failed",
        open_case(sk, enc, HPKE_INFO, aad, &bad),
    );
    let mut bad_enc = *enc;
    bad_enc[5] ^= 0x01;
    g.invalid(
        "bit flip in enc",
        &["ModifiedEnc"],
        "decryption-failed",
        open_case(sk, &bad_enc, HPKE_INFO, aad, ct),
    );
    g.invalid(
        "enc = 0 (low order): all-zero shared secret",
        &["ModifiedEnc", "LowOrderPublic"],
        "decryption-failed",
        open_case(sk, &[0u8; 32], HPKE_INFO, aad, ct),
    );
    g.invalid(
        "wrong recipient key",
        &["WrongKey"],
        "decryption-failed",
        open_case(&other, enc, HPKE_INFO, aad, ct),
    );
    g.invalid(
        "wrong info",
        &["WrongInfo"],
        "decryption-failed",
        open_case(sk, enc, "coffer/v1/test-vector/other", aad, ct),
    );
    g.invalid(
        "wrong aad",
        &["WrongAad"],
        "decryption-failed",
        open_case(sk, enc, HPKE_INFO, b"other", ct),
    );
    g.invalid(
        "truncated below the tag",
        &["ModifiedCiphertext"],
        "decryption-failed",
        open_case(sk, enc, HPKE_INFO, aad, &ct[..15]),
    );
}

fn params_json(p: Argon2Params) -> Value {
    json!({ "mKib": p.m_kib, "t": p.t, "p": p.p })
}

fn argon2_groups(f: &mut VectorFile, rng: &mut RecordingRng) {
    let (min, max) = (Argon2Params::MIN, Argon2Params::MAX);
    let out_of_range = [
        (
            "memory just below the floor",
            Argon2Params {
                m_kib: min.m_kib - 1,
                ..min
            },
        ),
        (
            "memory just above the ceiling",
            Argon2Params {
                m_kib: max.m_kib + 1,
                ..min
            },
        ),
        (
            "passes just below the floor",
            Argon2Params {
                t: min.t - 1,
                ..min
            },
        ),
        (
            "passes just above the ceiling",
            Argon2Params {
                t: max.t + 1,
                ..min
            },
        ),
        (
            "lanes just below the floor",
            Argon2Params {
                p: min.p - 1,
                ..min
            },
        ),
        (
            "lanes just above the ceiling",
            Argon2Params {
                p: max.p + 1,
                ..min
            },
        ),
    ];
    {
        let g = f.group("Argon2ParamsCheck", json!({}));
        for (what, p) in [
            ("the floor", min),
            ("the ceiling", max),
            ("the default", Argon2Params::DEFAULT),
        ] {
            g.valid(what, &["Floor"], json!({ "params": params_json(p) }));
        }
        for (what, p) in out_of_range {
            g.invalid(
                what,
                &["OutOfRange"],
                "limit-exceeded",
                json!({ "params": params_json(p) }),
            );
        }
    }
    let g = f.group("Argon2idDerive", json!({}));
    for password in [&b"correct horse battery staple"[..], b""] {
        let salt: [u8; 16] = rng.array();
        rng.take();
        let key = min.derive(password, &salt).expect("valid parameters");
        let flags: &[&str] = if password.is_empty() {
            &["EmptyInput"]
        } else {
            &["Valid"]
        };
        g.valid(
            "at the floor",
            flags,
            json!({ "params": params_json(min), "password": h(password), "salt": h(salt), "key": h(key.expose()) }),
        );
    }
    for (what, p) in out_of_range {
        g.invalid(
            what,
            &["OutOfRange"],
            "limit-exceeded",
            json!({ "params": params_json(p), "password": h(b"pw"), "salt": h([7u8; 16]) }),
        );
    }
}

fn params_of(test: &Test) -> anyhow::Result<Argon2Params> {
    let p = test
        .fields
        .get("params")
        .ok_or_else(|| anyhow::anyhow!("tcId {}: missing params", test.tc_id))?;
    let get = |k: &str| -> anyhow::Result<u32> {
        let v = p
            .get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("params.{k}"))?;
        Ok(u32::try_from(v)?)
    };
    Ok(Argon2Params {
        m_kib: get("mKib")?,
        t: get("t")?,
        p: get("p")?,
    })
}

fn verifying_key(test: &Test) -> anyhow::Result<Result<VerifyingKey, Error>> {
    Ok(VerifyingKey::from_bytes(&test.hex_array("publicKey")?))
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "Hkdf" => {
            let len = usize::try_from(test.u64("length")?)?;
            let (label, context) = (test.str("label")?, test.hex("context")?);
            let mut info = label.as_bytes().to_vec();
            info.push(0);
            info.extend_from_slice(&context);
            anyhow::ensure!(info == test.hex("info")?, "info differs");
            let mut okm = vec![0u8; len];
            hkdf(
                &test.hex("ikm")?,
                &test.hex("salt")?,
                label,
                &context,
                &mut okm,
            );
            anyhow::ensure!(okm == test.hex("okm")?, "okm differs");
            Ok(())
        }
        "Ed25519Sign" => {
            let sk = SigningKey::from_seed(&test.hex_array("seed")?);
            anyhow::ensure!(
                sk.verifying_key().to_bytes().to_vec() == test.hex("publicKey")?,
                "public key differs"
            );
            let sig = sk.sign(test.str("label")?, &test.hex("msg")?);
            anyhow::ensure!(sig.to_vec() == test.hex("sig")?, "signature differs");
            let vk = VerifyingKey::from_bytes(&test.hex_array("publicKey")?)?;
            let mut signed = test.str("label")?.as_bytes().to_vec();
            signed.push(0);
            signed.extend_from_slice(&test.hex("msg")?);
            anyhow::ensure!(
                signed == test.hex("signedMessage")?,
                "signedMessage differs"
            );
            vk.verify_message(&signed, &sig)?;
            Ok(())
        }
        "Ed25519Verify" => {
            let sig: [u8; 64] = test.hex_array("sig")?;
            let (label, msg) = (test.str("label")?, test.hex("msg")?);
            let outcome = verifying_key(test)?.and_then(|vk| vk.verify(label, &msg, &sig));
            expect(test, outcome, |()| Ok(()))
        }
        "X25519PublicKey" => {
            let outcome = AgreementPublic::from_bytes(&test.hex_array("publicKey")?);
            expect(test, outcome, |pk| {
                if test.fields.contains_key("secretKey") {
                    let sk = AgreementSecret::from_bytes(test.hex_array("secretKey")?);
                    anyhow::ensure!(sk.public_key() == pk, "public key of secretKey differs");
                }
                Ok(())
            })
        }
        "HpkeSeal" => {
            let info = group.hex("info")?;
            let sk = AgreementSecret::from_bytes(test.hex_array("secretKey")?);
            let pk = AgreementPublic::from_bytes(&test.hex_array("publicKey")?)?;
            anyhow::ensure!(sk.public_key() == pk, "public key of secretKey differs");
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let (enc, ct) = hpke_seal(&pk, &info, &test.hex("aad")?, &test.hex("msg")?, &mut rng)?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(enc.to_vec() == test.hex("enc")?, "enc differs");
            anyhow::ensure!(ct == test.hex("ct")?, "ct differs");
            let pt = hpke_open(&sk, &enc, &info, &test.hex("aad")?, &ct)?;
            anyhow::ensure!(pt == test.hex("msg")?, "round trip differs");
            Ok(())
        }
        "HpkeOpen" => {
            let sk = AgreementSecret::from_bytes(test.hex_array("secretKey")?);
            let outcome = hpke_open(
                &sk,
                &test.hex_array("enc")?,
                &test.hex("info")?,
                &test.hex("aad")?,
                &test.hex("ct")?,
            );
            expect(test, outcome, |pt| {
                anyhow::ensure!(pt == test.hex("msg")?, "plaintext differs");
                Ok(())
            })
        }
        "Argon2ParamsCheck" => expect(test, params_of(test)?.check(), |()| Ok(())),
        "Argon2idDerive" => {
            let outcome = params_of(test)?.derive(&test.hex("password")?, &test.hex("salt")?);
            expect(test, outcome, |key| {
                anyhow::ensure!(key.expose().to_vec() == test.hex("key")?, "key differs");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
