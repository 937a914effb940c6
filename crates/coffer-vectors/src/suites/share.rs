//! `share.json`: share records and grants of spec §8.

use serde_json::{json, Value};

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::{NodeId, ShareId};
use coffer_core::primitives::{
    AgreementPublic, AgreementSecret, SecretKey, SigningKey, VerifyingKey,
};
use coffer_core::share::{
    self, issue_grant, open_grant, verify_share, Grant, GrantExpectation, GranterKeys,
    PinnedIdentity, RecipientKeys, ShareOwner, ShareRecord, SignedGrant, SignedShare,
    PERMISSION_READ, PERMISSION_WRITE,
};
use coffer_core::tree::FolderKey;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

fn h(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn with(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

/// A user of the vectors: name, identity generation, Ed25519 seed, X25519 secret.
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) sign: SigningKey,
    pub(crate) agree: AgreementSecret,
}

impl User {
    pub(crate) fn new(name: &str, generation: u64, rng: &mut RecordingRng) -> Self {
        User {
            name: name.into(),
            generation,
            sign: SigningKey::from_seed(&rng.array()),
            agree: AgreementSecret::from_bytes(rng.array()),
        }
    }
    pub(crate) fn pinned(&self) -> PinnedIdentity {
        PinnedIdentity {
            user_name: self.name.clone(),
            identity_generation: self.generation,
            ed25519: self.sign.verifying_key(),
            x25519: self.agree.public_key(),
        }
    }
    pub(crate) fn granter(&self) -> GranterKeys<'_> {
        GranterKeys {
            signing_key: &self.sign,
            user_name: &self.name,
            identity_generation: self.generation,
        }
    }
}

/// Builds `share.json`.
pub fn generate() -> VectorFile {
    let mut file = VectorFile::new(
        "coffer-v1-share",
        "share",
        &[
            "Share records and grants (spec §8).",
            "ShareSign: sign the encoded `record` with the owner's Ed25519 seed; `signature` and `signedShare` must match (Ed25519 is deterministic).",
            "ShareVerify: verify `signedShare` for `shareId` against the pinned `ownerPublic`, rejecting generations below `minGeneration`; valid tests yield `record`.",
            "GrantIssue: issue a grant of `folderKey` (of `folderId`, at the share's generation) to member `memberIndex` of `shareRecord`, drawing the 32-byte HPKE ikmE from `randomness`; every output must match.",
            "GrantOpen: the recipient (`recipientName`, `recipientIdentityGeneration`, `recipientSecret`) opens `signedGrant` expecting `shareId`, `generation` and the pinned granter; valid tests yield `folderKey`.",
        ],
    );
    file.note("Valid", "BASIC", "A well-formed input.");
    file.note(
        "ModifiedField",
        "MODIFIED_SIGNATURE",
        "One field is changed without re-signing.",
    );
    file.note(
        "ModifiedSignature",
        "MODIFIED_SIGNATURE",
        "A bit of the signature is flipped or another key signed.",
    );
    file.note(
        "StructureViolation",
        "MALFORMED",
        "A signed structure violates a rule of §8.",
    );
    file.note(
        "WrongOwner",
        "WRONG_KEY",
        "Verified against another owner or granter than the one pinned.",
    );
    file.note(
        "WrongRecipient",
        "WRONG_KEY",
        "A grant opened by someone it is not for.",
    );
    file.note(
        "WrongGeneration",
        "WRONG_CONTEXT",
        "Another generation than expected, or a rollback.",
    );
    file.note(
        "WrongShare",
        "WRONG_CONTEXT",
        "Another share than expected.",
    );
    file.note("AlteredInfo", "MODIFIED_CIPHERTEXT", "A field bound in the HPKE info is changed and the grant re-signed by the granter: the signature holds, decryption must fail.");
    file.note(
        "ModifiedCiphertext",
        "MODIFIED_CIPHERTEXT",
        "The HPKE enc or ciphertext is modified and the grant re-signed.",
    );
    file.note_encoding_faults();
    file.note(
        "InvalidKey",
        "INVALID_PUBLIC_KEY",
        "A member key is not a valid public key.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/share");
    let alice = User::new("alice", 0, &mut rng);
    let bob = User::new("bob", 3, &mut rng);
    let carol = User::new("carol", 0, &mut rng);
    let folder_key = FolderKey {
        folder_id: NodeId::from_bytes(rng.array()),
        generation: 1,
        key: SecretKey::from_bytes(rng.array()),
    };
    let share_id = ShareId::from_bytes(rng.array());
    let record = ShareRecord {
        share_id,
        folder_id: folder_key.folder_id,
        owner: ShareOwner {
            user_name: alice.name.clone(),
            ed25519: Bytes(alice.sign.verifying_key().to_bytes()),
        },
        generation: 1,
        members: vec![
            bob.pinned().as_member(PERMISSION_WRITE),
            carol.pinned().as_member(PERMISSION_READ),
        ],
    };

    // ---- ShareSign -------------------------------------------------------------------------
    let g = file.group("ShareSign", json!({}));
    let signed = record.sign(&alice.sign).expect("sign");
    let signed_bytes = encode(&signed);
    g.valid(
        "two members",
        &["Valid"],
        json!({
            "ownerSeed": h(*alice.sign.seed()),
            "record": h(encode(&record)),
            "signature": h(signed.signature.0),
            "signedShare": h(&signed_bytes),
        }),
    );
    let mut empty = record.clone();
    empty.members.clear();
    let s = empty.sign(&alice.sign).expect("sign");
    g.valid(
        "no members",
        &["Valid"],
        json!({
            "ownerSeed": h(*alice.sign.seed()),
            "record": h(encode(&empty)),
            "signature": h(s.signature.0),
            "signedShare": h(encode(&s)),
        }),
    );

    // ---- ShareVerify -----------------------------------------------------------------------
    let g = file.group("ShareVerify", json!({}));
    let sv = |signed: &[u8], min: u64| {
        json!({
            "signedShare": h(signed),
            "shareId": h(share_id.as_bytes()),
            "ownerPublic": h(alice.sign.verifying_key().to_bytes()),
            "minGeneration": min,
        })
    };
    g.valid(
        "current generation",
        &["Valid"],
        with(sv(&signed_bytes, 1), "record", json!(h(encode(&record)))),
    );
    g.valid(
        "newer than the last seen generation",
        &["Valid"],
        with(sv(&signed_bytes, 0), "record", json!(h(encode(&record)))),
    );
    let unsigned = |r: &ShareRecord| {
        let mut o = signed.clone();
        o.record = ByteBuf::from(encode(r));
        encode(&o)
    };
    let mut mods: Vec<(&str, ShareRecord)> = Vec::new();
    let mut r = record.clone();
    r.share_id = ShareId::from_bytes([0x11; 16]);
    mods.push(("share id", r));
    let mut r = record.clone();
    r.folder_id = NodeId::from_bytes([0x22; 16]);
    mods.push(("folder id", r));
    let mut r = record.clone();
    r.generation = 2;
    mods.push(("generation", r));
    let mut r = record.clone();
    r.members[1].permission = PERMISSION_WRITE;
    mods.push(("member permission", r));
    let mut r = record.clone();
    r.members[0].x25519 = Bytes(carol.agree.public_key().to_bytes());
    mods.push(("member X25519 key", r));
    let mut r = record.clone();
    r.members[0].identity_generation = 4;
    mods.push(("member identity generation", r));
    let mut r = record.clone();
    r.members.pop();
    mods.push(("members (one dropped)", r));
    let mut r = record.clone();
    r.owner.user_name = "alicia".into();
    mods.push(("owner user name", r));
    for (what, r) in mods {
        g.invalid(
            &format!("modified {what}, not re-signed"),
            &["ModifiedField"],
            "bad-signature",
            sv(&unsigned(&r), 0),
        );
    }
    let mut r = record.clone();
    r.owner.ed25519 = Bytes(bob.sign.verifying_key().to_bytes());
    g.invalid(
        "owner key replaced",
        &["WrongOwner"],
        "binding-mismatch",
        sv(&unsigned(&r), 0),
    );
    let mut o = signed.clone();
    o.signature.0[63] ^= 0x01;
    g.invalid(
        "bit flip in signature",
        &["ModifiedSignature"],
        "bad-signature",
        sv(&encode(&o), 0),
    );
    g.invalid(
        "verified against another owner",
        &["WrongOwner"],
        "binding-mismatch",
        with(
            sv(&signed_bytes, 0),
            "ownerPublic",
            json!(h(bob.sign.verifying_key().to_bytes())),
        ),
    );
    g.invalid(
        "another share id expected",
        &["WrongShare"],
        "binding-mismatch",
        with(sv(&signed_bytes, 0), "shareId", json!(h([0x33u8; 16]))),
    );
    g.invalid(
        "generation rollback",
        &["WrongGeneration"],
        "binding-mismatch",
        sv(&signed_bytes, 2),
    );
    let sign_raw = |bytes: Vec<u8>| {
        let sig = Bytes(alice.sign.sign(share::LABEL_SHARE_RECORD, &bytes));
        encode(&SignedShare {
            record: ByteBuf::from(bytes),
            signature: sig,
        })
    };
    let mut structural: Vec<(&str, ShareRecord, &str, &str)> = Vec::new();
    let mut r = record.clone();
    r.members.push(r.members[0].clone());
    structural.push(("duplicate member", r, "invalid-value", "StructureViolation"));
    let mut r = record.clone();
    r.members[0].user_name = "alice".into();
    structural.push((
        "owner listed as member",
        r,
        "invalid-value",
        "StructureViolation",
    ));
    let mut r = record.clone();
    r.members[0].permission = 2;
    structural.push(("permission 2", r, "invalid-value", "StructureViolation"));
    let mut r = record.clone();
    r.members[0].user_name = String::new();
    structural.push(("empty user name", r, "invalid-value", "StructureViolation"));
    let mut r = record.clone();
    r.members[0].user_name = "b".repeat(256);
    structural.push((
        "256-byte user name",
        r,
        "invalid-value",
        "StructureViolation",
    ));
    let mut r = record.clone();
    r.members[0].x25519 = Bytes([0; 32]);
    structural.push((
        "small-order X25519 key",
        r,
        "invalid-public-key",
        "InvalidKey",
    ));
    for (what, r, failure, flag) in structural {
        g.invalid(
            &format!("{what} (signed)"),
            &[flag],
            failure,
            sv(&sign_raw(encode(&r)), 0),
        );
    }
    let mut r = record.clone();
    r.members[0].user_name = "b".repeat(255);
    let s = sign_raw(encode(&r));
    g.valid(
        "255-byte user name",
        &["Valid"],
        with(sv(&s, 0), "record", json!(h(encode(&r)))),
    );
    let mut t = signed_bytes.clone();
    t.push(0);
    g.invalid(
        "trailing byte",
        &["TrailingBytes"],
        "trailing-bytes",
        sv(&t, 0),
    );
    let mut rb = encode(&record);
    rb.push(0);
    g.invalid(
        "trailing byte in the record (signed)",
        &["TrailingBytes"],
        "trailing-bytes",
        sv(&sign_raw(rb), 0),
    );
    // generation 1 encoded as 0x18 0x01 inside the record (re-signed).
    let rb = encode(&record);
    let gen_pos = 1 + 2 + 1 + 17 + 17;
    let mut nc = rb.clone();
    let owner_len = encode(&record.owner).len();
    let pos = gen_pos + owner_len;
    assert_eq!(nc[pos], 0x01, "generation position");
    nc.splice(pos..=pos, [0x18, 0x01]);
    g.invalid(
        "generation in a non-shortest head (signed)",
        &["NonCanonical"],
        "non-canonical",
        sv(&sign_raw(nc), 0),
    );
    let mut t = signed_bytes.clone();
    t[2] = 52;
    g.invalid(
        "signed share with type code 52",
        &["WrongType"],
        "wrong-type",
        sv(&t, 0),
    );

    // ---- GrantIssue ------------------------------------------------------------------------
    let g = file.group("GrantIssue", json!({}));
    let mut grants = Vec::new();
    for (i, member) in [&bob, &carol].into_iter().enumerate() {
        rng.take();
        let sg = issue_grant(
            &alice.granter(),
            &record,
            &record.members[i],
            &folder_key,
            &mut rng,
        )
        .expect("grant");
        let randomness = rng.take();
        let grant: Grant = decode(&sg.grant).expect("grant");
        g.valid(
            &format!("grant to {}", member.name),
            &["Valid"],
            json!({
                "granterSeed": h(*alice.sign.seed()),
                "granterName": alice.name,
                "granterIdentityGeneration": alice.generation,
                "shareRecord": h(encode(&record)),
                "memberIndex": i,
                "folderId": h(folder_key.folder_id.as_bytes()),
                "folderKey": h(folder_key.key.expose()),
                "randomness": h(&randomness),
                "grantInfo": h(grant.info()),
                "enc": h(grant.enc.0),
                "ciphertext": h(&grant.ciphertext),
                "grant": h(&sg.grant),
                "signature": h(sg.signature.0),
                "signedGrant": h(encode(&sg)),
            }),
        );
        grants.push(sg);
    }

    // ---- GrantOpen -------------------------------------------------------------------------
    let g = file.group("GrantOpen", json!({}));
    let go = |sg: &[u8], who: &User| {
        json!({
            "signedGrant": h(sg),
            "shareId": h(share_id.as_bytes()),
            "generation": 1,
            "granterName": alice.name,
            "granterIdentityGeneration": alice.generation,
            "granterPublic": h(alice.sign.verifying_key().to_bytes()),
            "recipientName": who.name,
            "recipientIdentityGeneration": who.generation,
            "recipientSecret": h(who.agree.expose()),
        })
    };
    let gb = encode(&grants[0]);
    let gc = encode(&grants[1]);
    let fk = json!(h(folder_key.key.expose()));
    g.valid(
        "bob opens his grant",
        &["Valid"],
        with(go(&gb, &bob), "folderKey", fk.clone()),
    );
    g.valid(
        "carol opens her grant",
        &["Valid"],
        with(go(&gc, &carol), "folderKey", fk.clone()),
    );
    g.invalid(
        "carol opens bob's grant",
        &["WrongRecipient"],
        "binding-mismatch",
        go(&gb, &carol),
    );
    let mut v = go(&gb, &carol);
    v["recipientName"] = json!("bob");
    v["recipientIdentityGeneration"] = json!(3);
    g.invalid(
        "carol claims bob's name and generation",
        &["WrongRecipient"],
        "binding-mismatch",
        v,
    );
    g.invalid(
        "bob with another identity generation",
        &["WrongRecipient"],
        "binding-mismatch",
        with(go(&gb, &bob), "recipientIdentityGeneration", json!(2)),
    );
    g.invalid(
        "another generation expected",
        &["WrongGeneration"],
        "binding-mismatch",
        with(go(&gb, &bob), "generation", json!(2)),
    );
    g.invalid(
        "another share expected",
        &["WrongShare"],
        "binding-mismatch",
        with(go(&gb, &bob), "shareId", json!(h([0x44u8; 16]))),
    );
    g.invalid(
        "another granter pinned",
        &["WrongOwner"],
        "binding-mismatch",
        with(
            go(&gb, &bob),
            "granterPublic",
            json!(h(carol.sign.verifying_key().to_bytes())),
        ),
    );
    g.invalid(
        "granter pinned at another identity generation",
        &["WrongOwner"],
        "binding-mismatch",
        with(go(&gb, &bob), "granterIdentityGeneration", json!(1)),
    );
    let base_grant: Grant = decode(&grants[0].grant).expect("grant");
    let resign = |gr: &Grant| {
        let bytes = encode(gr);
        let sig = Bytes(alice.sign.sign(share::LABEL_GRANT, &bytes));
        encode(&SignedGrant {
            grant: ByteBuf::from(bytes),
            signature: sig,
        })
    };
    let unsigned = |gr: &Grant| {
        let mut o = grants[0].clone();
        o.grant = ByteBuf::from(encode(gr));
        encode(&o)
    };
    // Fields changed without re-signing.
    let mut m: Vec<(&str, Grant)> = Vec::new();
    let mut gr = base_grant.clone();
    gr.enc.0[5] ^= 1;
    m.push(("enc", gr));
    let mut gr = base_grant.clone();
    gr.ciphertext = {
        let mut c = gr.ciphertext.to_vec();
        c[0] ^= 1;
        ByteBuf::from(c)
    };
    m.push(("ciphertext", gr));
    let mut gr = base_grant.clone();
    gr.permission = PERMISSION_READ;
    m.push(("permission", gr));
    for (what, gr) in m {
        g.invalid(
            &format!("modified {what}, not re-signed"),
            &["ModifiedField"],
            "bad-signature",
            go(&unsigned(&gr), &bob),
        );
    }
    let mut o = grants[0].clone();
    o.signature.0[0] ^= 0x80;
    g.invalid(
        "bit flip in signature",
        &["ModifiedSignature"],
        "bad-signature",
        go(&encode(&o), &bob),
    );
    let mut o = grants[0].clone();
    o.signature = Bytes(carol.sign.sign(share::LABEL_GRANT, &o.grant));
    g.invalid(
        "signed by another key",
        &["ModifiedSignature"],
        "bad-signature",
        go(&encode(&o), &bob),
    );
    // Info fields altered and re-signed: HPKE must fail.
    let mut gr = base_grant.clone();
    gr.permission = PERMISSION_READ;
    g.invalid(
        "permission altered (re-signed)",
        &["AlteredInfo"],
        "decryption-failed",
        go(&resign(&gr), &bob),
    );
    let mut gr = base_grant.clone();
    gr.generation = 2;
    g.invalid(
        "generation altered (re-signed)",
        &["AlteredInfo"],
        "decryption-failed",
        with(go(&resign(&gr), &bob), "generation", json!(2)),
    );
    let mut gr = base_grant.clone();
    gr.share_id = ShareId::from_bytes([0x55; 16]);
    g.invalid(
        "share id altered (re-signed)",
        &["AlteredInfo"],
        "decryption-failed",
        with(go(&resign(&gr), &bob), "shareId", json!(h([0x55u8; 16]))),
    );
    let mut gr = base_grant.clone();
    gr.recipient.identity_generation = 4;
    g.invalid(
        "recipient identity generation altered (re-signed)",
        &["AlteredInfo"],
        "decryption-failed",
        with(
            go(&resign(&gr), &bob),
            "recipientIdentityGeneration",
            json!(4),
        ),
    );
    let mut gr = base_grant.clone();
    gr.granter.identity_generation = 1;
    g.invalid(
        "granter identity generation altered (re-signed)",
        &["AlteredInfo"],
        "decryption-failed",
        with(
            go(&resign(&gr), &bob),
            "granterIdentityGeneration",
            json!(1),
        ),
    );
    let mut gr = base_grant.clone();
    gr.enc.0[5] ^= 1;
    g.invalid(
        "enc modified (re-signed)",
        &["ModifiedCiphertext"],
        "decryption-failed",
        go(&resign(&gr), &bob),
    );
    let mut gr = base_grant.clone();
    gr.ciphertext = {
        let mut c = gr.ciphertext.to_vec();
        c[47] ^= 1;
        ByteBuf::from(c)
    };
    g.invalid(
        "tag modified (re-signed)",
        &["ModifiedCiphertext"],
        "decryption-failed",
        go(&resign(&gr), &bob),
    );
    let carol_grant: Grant = decode(&grants[1].grant).expect("grant");
    let mut gr = base_grant.clone();
    gr.enc = carol_grant.enc;
    gr.ciphertext = carol_grant.ciphertext.clone();
    g.invalid(
        "carol's ciphertext in bob's grant (re-signed)",
        &["ModifiedCiphertext"],
        "decryption-failed",
        go(&resign(&gr), &bob),
    );
    let mut gr = base_grant.clone();
    gr.ciphertext = ByteBuf::from(gr.ciphertext[..47].to_vec());
    g.invalid(
        "ciphertext of 47 bytes (re-signed)",
        &["StructureViolation"],
        "invalid-value",
        go(&resign(&gr), &bob),
    );
    let mut gr = base_grant.clone();
    gr.permission = 2;
    g.invalid(
        "permission 2 (re-signed)",
        &["StructureViolation"],
        "invalid-value",
        go(&resign(&gr), &bob),
    );
    let mut t = gb.clone();
    t.push(0);
    g.invalid(
        "trailing byte",
        &["TrailingBytes"],
        "trailing-bytes",
        go(&t, &bob),
    );
    let mut t = gb.clone();
    t[2] = 51;
    g.invalid(
        "signed grant with type code 51",
        &["WrongType"],
        "wrong-type",
        go(&t, &bob),
    );
    let mut nc = vec![0x84, 0x18, 53, 0x01, 0x59];
    nc.extend_from_slice(
        &u16::try_from(grants[0].grant.len())
            .expect("len")
            .to_be_bytes(),
    );
    nc.extend_from_slice(&grants[0].grant);
    nc.extend_from_slice(&[0x58, 0x40]);
    nc.extend_from_slice(&grants[0].signature.0);
    assert!(
        grants[0].grant.len() < 256,
        "the grant's shortest length head is 0x58"
    );
    g.invalid(
        "grant length in a non-shortest head",
        &["NonCanonical"],
        "non-canonical",
        go(&nc, &bob),
    );

    file.finish()
}

fn user_from(t: &Test) -> anyhow::Result<AgreementSecret> {
    Ok(AgreementSecret::from_bytes(t.hex_array("recipientSecret")?))
}

/// Checks a `GrantOpen` test (used by `share.json` and `rotation.json`): opens the signed grant
/// as the recipient and compares the folder key.
pub(crate) fn verify_grant_open(t: &Test) -> anyhow::Result<()> {
    let secret = user_from(t)?;
    let granter = PinnedIdentity {
        user_name: t.str("granterName")?.to_owned(),
        identity_generation: t.u64("granterIdentityGeneration")?,
        ed25519: VerifyingKey::from_bytes(&t.hex_array("granterPublic")?)?,
        // The granter's X25519 key plays no part in opening a grant.
        x25519: AgreementPublic::from_bytes(&secret.public_key().to_bytes())?,
    };
    let expected = GrantExpectation {
        share_id: ShareId::from_bytes(t.hex_array("shareId")?),
        generation: t.u64("generation")?,
        granter,
    };
    let name = t.str("recipientName")?.to_owned();
    let me = RecipientKeys {
        user_name: &name,
        identity_generation: t.u64("recipientIdentityGeneration")?,
        secret: &secret,
    };
    let out = open_grant(&t.hex("signedGrant")?, &expected, &me);
    expect(t, out, |(_, k)| {
        anyhow::ensure!(
            k.expose()[..] == t.hex("folderKey")?[..],
            "folder key differs"
        );
        Ok(())
    })
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, t: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "ShareSign" => {
            let owner = SigningKey::from_seed(&t.hex_array("ownerSeed")?);
            let record: ShareRecord = decode(&t.hex("record")?)?;
            let signed = record.sign(&owner)?;
            anyhow::ensure!(
                signed.signature.0[..] == t.hex("signature")?[..],
                "signature"
            );
            anyhow::ensure!(encode(&signed) == t.hex("signedShare")?, "signed share");
            Ok(())
        }
        "ShareVerify" => {
            let owner = VerifyingKey::from_bytes(&t.hex_array("ownerPublic")?)?;
            let out = verify_share(
                &t.hex("signedShare")?,
                ShareId::from_bytes(t.hex_array("shareId")?),
                &owner,
                t.u64("minGeneration")?,
            );
            expect(t, out, |r| {
                anyhow::ensure!(encode(&r) == t.hex("record")?, "record differs");
                Ok(())
            })
        }
        "GrantIssue" => {
            let granter_key = SigningKey::from_seed(&t.hex_array("granterSeed")?);
            let name = t.str("granterName")?.to_owned();
            let granter = GranterKeys {
                signing_key: &granter_key,
                user_name: &name,
                identity_generation: t.u64("granterIdentityGeneration")?,
            };
            let record: ShareRecord = decode(&t.hex("shareRecord")?)?;
            let idx = usize::try_from(t.u64("memberIndex")?)?;
            let member = record
                .members
                .get(idx)
                .ok_or_else(|| anyhow::anyhow!("member index"))?;
            let fk = FolderKey {
                folder_id: NodeId::from_bytes(t.hex_array("folderId")?),
                generation: record.generation,
                key: SecretKey::from_bytes(t.hex_array("folderKey")?),
            };
            let mut rng = ReplayRng::new(t.hex("randomness")?);
            let sg = issue_grant(&granter, &record, member, &fk, &mut rng)?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            let grant: Grant = decode(&sg.grant)?;
            anyhow::ensure!(grant.info() == t.hex("grantInfo")?, "grant info");
            anyhow::ensure!(grant.enc.0[..] == t.hex("enc")?[..], "enc");
            anyhow::ensure!(
                grant.ciphertext.to_vec() == t.hex("ciphertext")?,
                "ciphertext"
            );
            anyhow::ensure!(sg.grant.to_vec() == t.hex("grant")?, "grant");
            anyhow::ensure!(sg.signature.0[..] == t.hex("signature")?[..], "signature");
            anyhow::ensure!(encode(&sg) == t.hex("signedGrant")?, "signed grant");
            Ok(())
        }
        "GrantOpen" => verify_grant_open(t),
        other => anyhow::bail!("unknown group type {other}"),
    }
}
