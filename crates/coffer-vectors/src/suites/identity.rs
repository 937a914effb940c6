//! `identity.json`: signed identity records, their rotation chain, pinning and fingerprints
//! (spec §6.5–§6.7).

use serde_json::{json, Value};

use coffer_core::account::identity::{
    create_identity, rotate_identity, verify_chain, verify_pinned, Fingerprint, IdentityKeys,
    IdentityPin, IdentityRecord, SignedIdentity, LABEL_IDENTITY, LABEL_IDENTITY_SUCCESSION,
};
use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::primitives::{sha256, AgreementSecret, SigningKey};

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::RecordingRng;

const USER: &str = "alice@example.org";

struct Gen {
    keys: IdentityKeys,
    signed: Vec<u8>,
}

fn chain(rng: &mut RecordingRng, len: usize, user: &str, t0: u64) -> Vec<Gen> {
    let mut out: Vec<Gen> = Vec::new();
    for i in 0..len {
        let keys = IdentityKeys::generate(rng);
        let signed = match out.last() {
            None => create_identity(&keys, user, t0).expect("gen 0"),
            Some(prev) => rotate_identity(
                &prev.signed,
                &prev.keys.signing,
                &keys,
                t0 + 86_400 * i as u64,
            )
            .expect("rotate"),
        };
        out.push(Gen { keys, signed });
    }
    out
}

fn signed_of(bytes: &[u8]) -> SignedIdentity {
    decode(bytes).expect("signed identity")
}

fn record_of(bytes: &[u8]) -> IdentityRecord {
    decode(&signed_of(bytes).record).expect("record")
}

/// Signs `record` with `keys` and, if given, `pred` (so a field fault survives the signatures).
fn resign(record: &IdentityRecord, keys: &IdentityKeys, pred: Option<&SigningKey>) -> Vec<u8> {
    resign_bytes(&encode(record), keys, pred)
}

fn resign_bytes(bytes: &[u8], keys: &IdentityKeys, pred: Option<&SigningKey>) -> Vec<u8> {
    encode(&SignedIdentity {
        record: ByteBuf::from(bytes.to_vec()),
        self_signature: Bytes(keys.signing.sign(LABEL_IDENTITY, bytes)),
        predecessor_signature: pred.map(|k| Bytes(k.sign(LABEL_IDENTITY_SUCCESSION, bytes))),
    })
}

fn hexes(chain: &[Vec<u8>]) -> Value {
    Value::Array(
        chain
            .iter()
            .map(|c| Value::String(hex::encode(c)))
            .collect(),
    )
}

/// Builds `identity.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-identity",
        "identity",
        &[
            "Signed identity records and rotation chains (spec §6.5-§6.7).",
            "IdentityCreate tests: from each generation's `signingSeed` (RFC 8032 seed) and `agreementSecret` (X25519), the user name and `created`, build generation 0 with create_identity and each next generation with rotate_identity; every `record`, signature and `signed` must be reproduced byte for byte (Ed25519 is deterministic), `previous` is SHA-256 of the previous `signed`, and the chain must verify with the head's `fingerprint`.",
            "IdentityChainVerify tests: verify `chain` (generation 0 first); valid tests yield `generation` and `fingerprint` of the head, invalid tests fail with `failure`.",
            "IdentityPin tests: verify `chain` against the pin (`pinUserName`, `pinGeneration`, `pinFingerprint`).",
            "FingerprintParse tests: parse `text`; valid tests yield `fingerprint` in canonical form.",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed chain.");
    f.note(
        "ModifiedSignature",
        "MODIFIED_SIGNATURE",
        "A bit of a signature is flipped.",
    );
    f.note(
        "ModifiedRecord",
        "MODIFIED_SIGNATURE",
        "A bit of the signed record is flipped; the signatures no longer cover it.",
    );
    f.note(
        "WrongSigner",
        "WRONG_KEY",
        "A signature by a key other than the one required.",
    );
    f.note(
        "WrongLabel",
        "WRONG_CONTEXT",
        "A signature made with the other identity label.",
    );
    f.note("BrokenChain", "WRONG_BINDING", "Properly signed generations that do not form a chain: skipped, reordered, duplicated, renamed, bad previous hash, time going backwards, reused keys.");
    f.note(
        "WeakKey",
        "INVALID_PUBLIC_KEY",
        "A small-order or non-canonical public key.",
    );
    f.note(
        "InvalidField",
        "MALFORMED",
        "A field value outside its permitted set (null-ness against the generation, user name).",
    );
    f.note(
        "NonCanonical",
        "MALFORMED",
        "A non-deterministic CBOR encoding.",
    );
    f.note(
        "TrailingBytes",
        "MALFORMED",
        "Bytes after the encoded item.",
    );
    f.note(
        "WrongType",
        "MALFORMED",
        "Another structure type code or version.",
    );
    f.note("Truncated", "TRUNCATION", "The encoding ends early.");
    f.note("EmptyChain", "EDGE_CASE", "No generation at all.");
    f.note(
        "Rollback",
        "WRONG_BINDING",
        "The chain stops before the pinned generation.",
    );
    f.note(
        "Fork",
        "WRONG_BINDING",
        "The chain differs from the pinned identity at or before the pinned generation.",
    );
    f.note(
        "Whitespace",
        "EDGE_CASE",
        "A fingerprint copied with other whitespace.",
    );
    f.note(
        "BadText",
        "MALFORMED",
        "A fingerprint text that is not 60 ASCII digits.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/identity");

    // ---- IdentityCreate -------------------------------------------------------------------
    let g = f.group("IdentityCreate", json!({}));
    let mut chains = Vec::new();
    for (len, user, t0) in [
        (1usize, "bob", 1_700_000_000u64),
        (2, "zoë@example.org", 1_700_000_100),
        (3, USER, 1_700_000_200),
    ] {
        let c = chain(&mut rng, len, user, t0);
        let signed: Vec<Vec<u8>> = c.iter().map(|g| g.signed.clone()).collect();
        let head = verify_chain(&signed).expect("chain verifies");
        let gens: Vec<Value> = c
            .iter()
            .enumerate()
            .map(|(i, gen)| {
                let s = signed_of(&gen.signed);
                let r = record_of(&gen.signed);
                let fp = verify_chain(&signed[..=i]).expect("prefix").fingerprint;
                json!({
                    "generation": r.generation,
                    "created": r.created,
                    "signingSeed": hex::encode(*gen.keys.signing.seed()),
                    "agreementSecret": hex::encode(gen.keys.agreement.expose()),
                    "signingKey": hex::encode(r.signing_key.0),
                    "agreementKey": hex::encode(r.agreement_key.0),
                    "previous": r.previous.map(|p| hex::encode(p.0)),
                    "record": hex::encode(&s.record),
                    "selfSignature": hex::encode(s.self_signature.0),
                    "predecessorSignature": s.predecessor_signature.map(|p| hex::encode(p.0)),
                    "signed": hex::encode(&gen.signed),
                    "fingerprint": fp.to_string(),
                })
            })
            .collect();
        g.valid(
            &format!("chain of {len} generation(s)"),
            &["Valid"],
            json!({ "userName": user, "generations": gens, "headFingerprint": head.fingerprint.to_string() }),
        );
        chains.push(c);
    }
    rng.take();

    // ---- IdentityChainVerify --------------------------------------------------------------
    let c = &chains[2];
    let s: Vec<Vec<u8>> = c.iter().map(|g| g.signed.clone()).collect();
    let g = f.group("IdentityChainVerify", json!({}));
    for n in 1..=3 {
        let head = verify_chain(&s[..n]).expect("valid");
        g.valid(
            &format!("valid chain of {n}"),
            &["Valid"],
            json!({ "chain": hexes(&s[..n]), "generation": head.generation, "fingerprint": head.fingerprint.to_string() }),
        );
    }
    let inv = |g: &mut TestGroup, comment: &str, flag: &str, failure: &str, chain: Vec<Vec<u8>>| {
        let got = verify_chain(&chain).expect_err(comment);
        assert_eq!(got.class(), failure, "generator: {comment}: {got}");
        g.invalid(comment, &[flag], failure, json!({ "chain": hexes(&chain) }));
    };
    let stranger = IdentityKeys::generate(&mut rng);
    let sig_tail = 2 + 64 + 2 + 64; // self and predecessor signatures with their heads
                                    // Signature bit flips.
    let mut b = s.clone();
    let l = b[0].len();
    b[0][l - 2] ^= 0x01; // gen 0: the last item is null, the self signature ends just before
    inv(
        g,
        "bit flip in the self signature of generation 0",
        "ModifiedSignature",
        "bad-signature",
        b,
    );
    let mut b = s.clone();
    let l = b[1].len();
    b[1][l - 1] ^= 0x01;
    inv(
        g,
        "bit flip in the predecessor signature of generation 1",
        "ModifiedSignature",
        "bad-signature",
        b[..2].to_vec(),
    );
    let mut b = s.clone();
    let l = b[1].len();
    b[1][l - sig_tail + 5] ^= 0x01;
    inv(
        g,
        "bit flip in the self signature of generation 1",
        "ModifiedSignature",
        "bad-signature",
        b[..2].to_vec(),
    );
    // Record bit flips, not re-signed.
    let r1 = record_of(&s[1]);
    let rec_start = 3 + 2; // outer head, type, version, record bstr head (2 bytes)
    let name_at = rec_start + 3 + 1; // record head, type, version, text head
    for (what, off) in [
        ("user name", name_at),
        ("generation", name_at + r1.user_name.len()),
        ("signing key", name_at + r1.user_name.len() + 1 + 2 + 7),
        (
            "agreement key",
            name_at + r1.user_name.len() + 1 + 34 + 2 + 7,
        ),
        ("created", name_at + r1.user_name.len() + 1 + 68 + 3),
        (
            "previous hash",
            name_at + r1.user_name.len() + 1 + 68 + 5 + 2 + 9,
        ),
    ] {
        let mut b = s.clone();
        b[1][off] ^= if what == "generation" { 0x02 } else { 0x01 };
        let got = verify_chain(&b[..2]).expect_err(what);
        let failure = got.class();
        g.invalid(
            &format!("bit flip in the {what} of generation 1, not re-signed"),
            &["ModifiedRecord"],
            failure,
            json!({ "chain": hexes(&b[..2]) }),
        );
    }
    // Wrong signers and labels.
    let mut b = s.clone();
    b[1] = resign(&r1, &c[1].keys, Some(&stranger.signing));
    inv(
        g,
        "generation 1 countersigned by a stranger, not generation 0",
        "WrongSigner",
        "bad-signature",
        b[..2].to_vec(),
    );
    let mut b = s.clone();
    b[1] = resign(&r1, &stranger, Some(&c[0].keys.signing));
    inv(
        g,
        "generation 1 self-signed by a key other than its own",
        "WrongSigner",
        "bad-signature",
        b[..2].to_vec(),
    );
    let mut sb = signed_of(&s[1]);
    sb.predecessor_signature = Some(Bytes(c[0].keys.signing.sign(LABEL_IDENTITY, &sb.record)));
    inv(
        g,
        "predecessor signature made with the self label",
        "WrongLabel",
        "bad-signature",
        vec![s[0].clone(), encode(&sb)],
    );
    let mut sb = signed_of(&s[0]);
    sb.self_signature = Bytes(
        c[0].keys
            .signing
            .sign(LABEL_IDENTITY_SUCCESSION, &sb.record),
    );
    inv(
        g,
        "self signature made with the succession label",
        "WrongLabel",
        "bad-signature",
        vec![encode(&sb)],
    );
    // Broken chains.
    let other = &chains[1];
    for (comment, chain) in [
        ("skipped generation (0, 2)", [&s[0], &s[2]]),
        ("reordered (1, 0)", [&s[1], &s[0]]),
        ("starts at generation 1", [&s[1], &s[2]]),
        ("generation 0 twice", [&s[0], &s[0]]),
        ("generation 1 of another identity", [&s[0], &other[1].signed]),
    ] {
        let chain = chain.map(|b| b.clone()).to_vec();
        inv(g, comment, "BrokenChain", "binding-mismatch", chain);
    }
    // Generation 1 with one field changed, signed with the listed keys and by its predecessor.
    let r0 = record_of(&s[0]);
    let edited = |f: &dyn Fn(&mut IdentityRecord)| {
        let mut r = r1.clone();
        f(&mut r);
        r
    };
    for (comment, r, keys) in [
        (
            "user name changed, properly signed",
            edited(&|r| r.user_name = "mallory@example.org".into()),
            &c[1].keys,
        ),
        (
            "previous hash zero, properly signed",
            edited(&|r| r.previous = Some(Bytes([0u8; 32]))),
            &c[1].keys,
        ),
        (
            "previous hash over the record instead of the signed identity",
            edited(&|r| r.previous = Some(Bytes(sha256(&signed_of(&s[0]).record)))),
            &c[1].keys,
        ),
        (
            "created before its predecessor",
            edited(&|r| r.created = r0.created - 1),
            &c[1].keys,
        ),
        (
            "signing key reused from generation 0",
            edited(&|r| r.signing_key = r0.signing_key),
            &c[0].keys,
        ),
        (
            "agreement key reused from generation 0",
            edited(&|r| r.agreement_key = r0.agreement_key),
            &c[1].keys,
        ),
    ] {
        let chain = vec![s[0].clone(), resign(&r, keys, Some(&c[0].keys.signing))];
        inv(g, comment, "BrokenChain", "binding-mismatch", chain);
    }
    // Weak and non-canonical keys.
    let mut ident = [0u8; 32];
    ident[0] = 1;
    let mut p_plus_1 = [0xffu8; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    for (what, key) in [
        ("Ed25519 identity point (small order)", ident),
        ("Ed25519 non-canonical encoding of y = 1", p_plus_1),
    ] {
        let mut r = r0.clone();
        r.signing_key = Bytes(key);
        inv(
            g,
            &format!("signing key is the {what}"),
            "WeakKey",
            "invalid-public-key",
            vec![resign(&r, &c[0].keys, None)],
        );
    }
    for (what, key) in [("zero", [0u8; 32]), ("one (small order)", ident)] {
        let mut r = r0.clone();
        r.agreement_key = Bytes(key);
        inv(
            g,
            &format!("X25519 key {what}"),
            "WeakKey",
            "invalid-public-key",
            vec![resign(&r, &c[0].keys, None)],
        );
    }
    // Invalid fields.
    let mut sb = signed_of(&s[0]);
    sb.predecessor_signature = Some(sb.self_signature);
    inv(
        g,
        "generation 0 with a predecessor signature",
        "InvalidField",
        "invalid-value",
        vec![encode(&sb)],
    );
    let mut sb = signed_of(&s[1]);
    sb.predecessor_signature = None;
    inv(
        g,
        "generation 1 without a predecessor signature",
        "InvalidField",
        "invalid-value",
        vec![s[0].clone(), encode(&sb)],
    );
    let mut r = r0.clone();
    r.previous = Some(Bytes([1u8; 32]));
    inv(
        g,
        "generation 0 with a previous hash",
        "InvalidField",
        "invalid-value",
        vec![resign(&r, &c[0].keys, None)],
    );
    let mut r = r1.clone();
    r.previous = None;
    inv(
        g,
        "generation 1 without a previous hash",
        "InvalidField",
        "invalid-value",
        vec![
            s[0].clone(),
            resign(&r, &c[1].keys, Some(&c[0].keys.signing)),
        ],
    );
    let mut r = r0.clone();
    r.user_name = String::new();
    inv(
        g,
        "empty user name",
        "InvalidField",
        "invalid-value",
        vec![resign(&r, &c[0].keys, None)],
    );
    let mut r = r0.clone();
    r.user_name = "alice\u{7}".into();
    inv(
        g,
        "control character in the user name",
        "InvalidField",
        "invalid-value",
        vec![resign(&r, &c[0].keys, None)],
    );
    let sb = signed_of(&s[0]);
    let mut short = sb.self_signature.0.to_vec();
    short.pop();
    let mut enc = encode(&sb);
    // Replace the 64-byte signature (head 0x58 0x40) with a 63-byte one.
    let pos = enc.len() - 1 - 64 - 2;
    assert_eq!(enc[pos..pos + 2], [0x58, 0x40]);
    enc.splice(
        pos..pos + 66,
        [[0x58u8, 0x3f].as_slice(), short.as_slice()].concat(),
    );
    inv(
        g,
        "self signature of 63 bytes",
        "InvalidField",
        "invalid-value",
        vec![enc],
    );
    // Encoding faults.
    let mut b = s[0].clone();
    b.push(0x00);
    inv(
        g,
        "trailing byte after the signed identity",
        "TrailingBytes",
        "trailing-bytes",
        vec![b],
    );
    let mut rb = signed_of(&s[0]).record.to_vec();
    rb.push(0x00);
    inv(
        g,
        "trailing byte inside the record, properly signed",
        "TrailingBytes",
        "trailing-bytes",
        vec![resign_bytes(&rb, &c[0].keys, None)],
    );
    let rb = encode(&r0);
    let gen_pos = 4 + r0.user_name.len() + if r0.user_name.len() > 23 { 1 } else { 0 };
    assert_eq!(rb[gen_pos], 0x00);
    let nc = [&rb[..gen_pos], &[0x18, 0x00], &rb[gen_pos + 1..]].concat();
    inv(
        g,
        "generation 0 as a two-byte integer in the record, properly signed",
        "NonCanonical",
        "non-canonical",
        vec![resign_bytes(&nc, &c[0].keys, None)],
    );
    let enc = s[0].clone();
    // The record bstr head is 0x58 LEN; write it as 0x59 0x00 LEN.
    assert_eq!(enc[3], 0x58);
    let nc = [&enc[..3], &[0x59, 0x00], &enc[4..]].concat();
    inv(
        g,
        "record length with a non-shortest head",
        "NonCanonical",
        "non-canonical",
        vec![nc],
    );
    let mut b = s[0].clone();
    b[1] = 20;
    inv(
        g,
        "outer type code 20 (an IdentityRecord)",
        "WrongType",
        "wrong-type",
        vec![b],
    );
    let mut b = s[0].clone();
    b[2] = 2;
    inv(
        g,
        "outer version 2",
        "WrongType",
        "unknown-version",
        vec![b],
    );
    let mut rb = encode(&r0);
    rb[1] = 21;
    inv(
        g,
        "record type code 21, properly signed",
        "WrongType",
        "wrong-type",
        vec![resign_bytes(&rb, &c[0].keys, None)],
    );
    inv(
        g,
        "truncated by one byte",
        "Truncated",
        "malformed",
        vec![s[0][..s[0].len() - 1].to_vec()],
    );
    let empty: Vec<Vec<u8>> = Vec::new();
    let got = verify_chain(&empty).expect_err("empty");
    g.invalid(
        "empty chain",
        &["EmptyChain"],
        got.class(),
        json!({ "chain": [] }),
    );

    // ---- IdentityPin ---------------------------------------------------------------------
    let g = f.group("IdentityPin", json!({}));
    let pin1 = verify_chain(&s[..2]).expect("pin").pin();
    let pin_fields = |pin: &IdentityPin, chain: &[Vec<u8>]| {
        json!({ "pinUserName": pin.user_name, "pinGeneration": pin.generation,
                "pinFingerprint": pin.fingerprint.to_string(), "chain": hexes(chain) })
    };
    for (n, comment) in [
        (2usize, "the pinned chain itself"),
        (3, "an extension of the pinned chain"),
    ] {
        let head = verify_pinned(&pin1, &s[..n]).expect("pinned");
        let mut v = pin_fields(&pin1, &s[..n]);
        v["generation"] = json!(head.generation);
        v["fingerprint"] = json!(head.fingerprint.to_string());
        g.valid(comment, &["Valid"], v);
    }
    let fork_keys = IdentityKeys::generate(&mut rng);
    let fork = rotate_identity(&s[0], &c[0].keys.signing, &fork_keys, 1_800_000_000).expect("fork");
    let mut renamed = pin1.clone();
    renamed.user_name = "bob".into();
    let other_chain: Vec<Vec<u8>> = chains[1].iter().map(|g| g.signed.clone()).collect();
    for (comment, flag, pin, chain) in [
        (
            "rollback to generation 0",
            "Rollback",
            &pin1,
            s[..1].to_vec(),
        ),
        (
            "fork: another generation 1 after the same generation 0",
            "Fork",
            &pin1,
            vec![s[0].clone(), fork],
        ),
        ("another identity", "Fork", &pin1, other_chain),
        ("pin of another user name", "Fork", &renamed, s.clone()),
    ] {
        let got = verify_pinned(pin, &chain).expect_err(comment);
        assert_eq!(got.class(), "binding-mismatch");
        g.invalid(
            comment,
            &[flag],
            "binding-mismatch",
            pin_fields(pin, &chain),
        );
    }

    // ---- FingerprintParse ----------------------------------------------------------------
    let g = f.group("FingerprintParse", json!({}));
    let fp = verify_chain(&s).expect("v").fingerprint;
    let text = fp.to_string();
    g.valid(
        "canonical form",
        &["Valid"],
        json!({ "text": text, "fingerprint": text }),
    );
    let spread = text.replacen(' ', "\n", 3).replace(' ', "\t");
    g.valid(
        "line breaks and tabs",
        &["Whitespace"],
        json!({ "text": spread, "fingerprint": text }),
    );
    g.valid(
        "no separators",
        &["Whitespace"],
        json!({ "text": text.replace(' ', ""), "fingerprint": text }),
    );
    for (comment, bad) in [
        ("59 digits", text[..text.len() - 1].to_string()),
        ("61 digits", format!("{text}7")),
        (
            "a letter",
            text.replacen(|c: char| c.is_ascii_digit(), "O", 1),
        ),
        (
            "a non-ASCII digit",
            text.replacen(|c: char| c.is_ascii_digit(), "\u{0661}", 1),
        ),
        ("a hyphen separator", text.replace(' ', "-")),
    ] {
        g.invalid(
            comment,
            &["BadText"],
            "invalid-text",
            json!({ "text": bad }),
        );
    }
    f.finish()
}

fn chain_field(test: &Test) -> anyhow::Result<Vec<Vec<u8>>> {
    let arr = test
        .fields
        .get("chain")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("missing chain"))?;
    arr.iter()
        .map(|v| {
            Ok(hex::decode(
                v.as_str().ok_or_else(|| anyhow::anyhow!("chain item"))?,
            )?)
        })
        .collect()
}

fn hex32(v: &Value, name: &str) -> anyhow::Result<[u8; 32]> {
    let b = hex::decode(
        v.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("missing {name}"))?,
    )?;
    b.as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{name}: not 32 bytes"))
}

fn verify_create(test: &Test) -> anyhow::Result<()> {
    let user = test.str("userName")?;
    let gens = test
        .fields
        .get("generations")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("missing generations"))?;
    let mut prev: Option<(Vec<u8>, IdentityKeys)> = None;
    let mut chain = Vec::new();
    for (i, gv) in gens.iter().enumerate() {
        let keys = IdentityKeys {
            signing: SigningKey::from_seed(&hex32(gv, "signingSeed")?),
            agreement: AgreementSecret::from_bytes(hex32(gv, "agreementSecret")?),
        };
        anyhow::ensure!(
            keys.signing.verifying_key().to_bytes() == hex32(gv, "signingKey")?,
            "gen {i}: signing key"
        );
        anyhow::ensure!(
            keys.agreement.public_key().to_bytes() == hex32(gv, "agreementKey")?,
            "gen {i}: agreement key"
        );
        let created = gv
            .get("created")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("created"))?;
        let signed = match &prev {
            None => create_identity(&keys, user, created)?,
            Some((p, pk)) => {
                anyhow::ensure!(hex32(gv, "previous")? == sha256(p), "gen {i}: previous");
                rotate_identity(p, &pk.signing, &keys, created)?
            }
        };
        let want = hex::decode(gv.get("signed").and_then(Value::as_str).unwrap_or_default())?;
        anyhow::ensure!(signed == want, "gen {i}: signed identity differs");
        let s: SignedIdentity = decode(&signed)?;
        let rec = hex::decode(gv.get("record").and_then(Value::as_str).unwrap_or_default())?;
        anyhow::ensure!(
            s.record.as_slice() == rec.as_slice(),
            "gen {i}: record differs"
        );
        let ss = hex::decode(
            gv.get("selfSignature")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )?;
        anyhow::ensure!(
            s.self_signature.0.as_slice() == ss.as_slice(),
            "gen {i}: self signature"
        );
        let ps = gv
            .get("predecessorSignature")
            .and_then(Value::as_str)
            .map(hex::decode)
            .transpose()?;
        anyhow::ensure!(
            s.predecessor_signature.map(|p| p.0.to_vec()) == ps,
            "gen {i}: predecessor signature"
        );
        chain.push(signed.clone());
        let head = verify_chain(&chain)?;
        anyhow::ensure!(
            Some(head.fingerprint.to_string().as_str())
                == gv.get("fingerprint").and_then(Value::as_str),
            "gen {i}: fingerprint"
        );
        prev = Some((signed, keys));
    }
    let head = verify_chain(&chain)?;
    anyhow::ensure!(
        head.fingerprint.to_string() == test.str("headFingerprint")?,
        "head fingerprint"
    );
    Ok(())
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "IdentityCreate" => verify_create(test),
        "IdentityChainVerify" => {
            let chain = chain_field(test)?;
            expect(test, verify_chain(&chain), |head| {
                anyhow::ensure!(head.generation == test.u64("generation")?, "generation");
                anyhow::ensure!(
                    head.fingerprint.to_string() == test.str("fingerprint")?,
                    "fingerprint"
                );
                Ok(())
            })
        }
        "IdentityPin" => {
            let chain = chain_field(test)?;
            let pin = IdentityPin {
                user_name: test.str("pinUserName")?.into(),
                generation: test.u64("pinGeneration")?,
                fingerprint: Fingerprint::parse(test.str("pinFingerprint")?)?,
            };
            expect(test, verify_pinned(&pin, &chain), |head| {
                anyhow::ensure!(head.generation == test.u64("generation")?, "generation");
                anyhow::ensure!(
                    head.fingerprint.to_string() == test.str("fingerprint")?,
                    "fingerprint"
                );
                Ok(())
            })
        }
        "FingerprintParse" => {
            let out = Fingerprint::parse(test.str("text")?).map_err(coffer_core::Error::from);
            expect(test, out, |fp| {
                anyhow::ensure!(fp.to_string() == test.str("fingerprint")?, "fingerprint");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
