//! `seal.json`: the committed seal of spec §3.

use serde_json::json;

use coffer_core::primitives::SecretKey;
use coffer_core::seal;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

const LABEL: &str = "coffer/v1/test-vector";

/// Builds `seal.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-seal",
        "seal",
        &[
            "The committed seal (spec §3): nonce || commitment || XChaCha20-Poly1305 ciphertext.",
            "SealEncrypt tests: seal `msg` under `key` with `label` and `aad`, drawing `randomness` (the nonce) from the RNG; the output must equal `sealed`.",
            "SealOpen tests: open `sealed`; valid tests yield `msg`, invalid tests fail with `failure`.",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed seal.");
    f.note("EmptyMessage", "EDGE_CASE", "The empty plaintext.");
    f.note(
        "ModifiedNonce",
        "MODIFIED_CIPHERTEXT",
        "A bit of the nonce is flipped.",
    );
    f.note(
        "ModifiedCommitment",
        "MODIFIED_CIPHERTEXT",
        "A bit of the commitment is flipped: rejected before decryption.",
    );
    f.note(
        "ModifiedCiphertext",
        "MODIFIED_CIPHERTEXT",
        "A bit of the ciphertext is flipped.",
    );
    f.note(
        "ModifiedTag",
        "MODIFIED_CIPHERTEXT",
        "A bit of the tag is flipped.",
    );
    f.note("WrongKey", "WRONG_KEY", "Opened with another key.");
    f.note("WrongLabel", "WRONG_CONTEXT", "Opened with another label.");
    f.note(
        "WrongAad",
        "WRONG_CONTEXT",
        "Opened with other associated data.",
    );
    f.note("Truncated", "TRUNCATION", "Shorter than the seal overhead.");

    let mut rng = RecordingRng::new("coffer/v1/vectors/seal");
    let g = f.group("SealEncrypt", json!({ "label": LABEL }));
    let mut cases = Vec::new();
    for (i, len) in [0usize, 1, 32, 100].into_iter().enumerate() {
        let key = SecretKey::generate(&mut rng);
        let msg: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
        let aad = format!("aad-{i}").into_bytes();
        rng.take();
        let sealed = seal::seal(&key, LABEL, &aad, &msg, &mut rng);
        let randomness = rng.take();
        let flags: &[&str] = if len == 0 {
            &["EmptyMessage"]
        } else {
            &["Valid"]
        };
        g.valid(
            &format!("{len}-byte message"),
            flags,
            json!({ "key": hex::encode(key.expose()), "aad": hex::encode(&aad), "msg": hex::encode(&msg),
                    "randomness": hex::encode(&randomness), "sealed": hex::encode(&sealed) }),
        );
        cases.push((key, aad, msg, sealed));
    }

    let g = f.group("SealOpen", json!({ "label": LABEL }));
    let other = SecretKey::generate(&mut rng);
    for (key, aad, msg, sealed) in &cases {
        let base = |sealed: &[u8]| json!({ "key": hex::encode(key.expose()), "aad": hex::encode(aad), "sealed": hex::encode(sealed), "label": LABEL });
        g.valid(
            "opens",
            &["Valid"],
            with(base(sealed), "msg", hex::encode(msg)),
        );
        let n = seal::SEAL_NONCE_LEN;
        let c = n + seal::COMMITMENT_LEN;
        let t = sealed.len() - 16;
        for (what, flag, pos) in [
            ("nonce", "ModifiedNonce", 0),
            ("commitment", "ModifiedCommitment", n),
            ("tag", "ModifiedTag", t),
        ] {
            let mut bad = sealed.clone();
            bad[pos] ^= 0x01;
            g.invalid(
                &format!("bit flip in {what}"),
                &[flag],
                "decryption-failed",
                base(&bad),
            );
        }
        if t > c {
            let mut bad = sealed.clone();
            bad[c] ^= 0x80;
            g.invalid(
                "bit flip in ciphertext",
                &["ModifiedCiphertext"],
                "decryption-failed",
                base(&bad),
            );
        }
        g.invalid(
            "wrong key",
            &["WrongKey"],
            "decryption-failed",
            with(base(sealed), "key", hex::encode(other.expose())),
        );
        g.invalid(
            "wrong label",
            &["WrongLabel"],
            "decryption-failed",
            with(base(sealed), "label", "coffer/v1/other".into()),
        );
        g.invalid(
            "wrong aad",
            &["WrongAad"],
            "decryption-failed",
            with(base(sealed), "aad", hex::encode(b"other")),
        );
        g.invalid(
            "truncated below overhead",
            &["Truncated"],
            "decryption-failed",
            base(&sealed[..seal::SEAL_OVERHEAD - 1]),
        );
    }
    f.finish()
}

fn with(mut v: serde_json::Value, k: &str, val: String) -> serde_json::Value {
    v[k] = serde_json::Value::String(val);
    v
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    let key = SecretKey::from_bytes(test.hex_array("key")?);
    let aad = test.hex("aad")?;
    match group.kind.as_str() {
        "SealEncrypt" => {
            let label = group
                .params
                .get("label")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let sealed = seal::seal(&key, label, &aad, &test.hex("msg")?, &mut rng);
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(sealed == test.hex("sealed")?, "sealed bytes differ");
            Ok(())
        }
        "SealOpen" => {
            let out = seal::open(&key, test.str("label")?, &aad, &test.hex("sealed")?);
            expect(test, out, |pt| {
                anyhow::ensure!(
                    pt.as_slice() == test.hex("msg")?.as_slice(),
                    "plaintext differs"
                );
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
