//! `link.json`: creating and opening links, link passwords, upload-only links, owner entries,
//! re-sealing and rotation (spec §10, §9.3).

use serde_json::{json, Value};

use coffer_core::encoding::{decode, encode, Bytes};
use coffer_core::ids::{LinkId, NodeId};
use coffer_core::link::{
    self, capability_key, create_drop, create_link, drop_file_key, open_drop, open_drop_secret, open_link,
    open_link_with_key, open_owner_entry, password_verifier, reseal_link, rotate_link,
    seal_owner_entry, verifier_hash, CreatedLink, DropEnvelope, LinkAccess, LinkCapability,
    LinkOptions, LinkRecord, LinkSecret, LinkTarget, LinkUrl, NewLinkPassword, NodeKind,
    OwnerLinkEntry, Permission, LABEL_CAPABILITY,
};
use coffer_core::primitives::{AgreementSecret, Argon2Params, SecretKey};
use coffer_core::seal;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

const ORIGIN: &str = "https://coffer.example";
const NOW: u64 = 1_800_000_000;
const PASSWORD: &[u8] = b"correct horse battery staple";

fn h(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

fn opt_hex(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, h)
}

fn opt_u64(v: Option<u64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

fn with(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove(k);
    }
    v
}

/// One change to a link record, for a fault vector.
type RecordEdit = fn(&mut LinkRecord);

fn mutate(record: &[u8], f: impl FnOnce(&mut LinkRecord)) -> Vec<u8> {
    let mut r = LinkRecord::parse(record).expect("generator: record parses");
    f(&mut r);
    r.to_bytes()
}

fn target_json(t: &LinkTarget) -> Value {
    json!({ "nodeId": h(t.node_id.as_bytes()), "nodeKind": t.node_kind.to_u64(),
            "generation": t.generation, "nodeKey": h(t.node_key.expose()) })
}

struct Case {
    name: &'static str,
    target: LinkTarget,
    password: bool,
    expires_at: Option<u64>,
    max_downloads: Option<u64>,
    upload_only: bool,
}

struct Made {
    link: CreatedLink,
    pw_key: Option<SecretKey>,
    target: LinkTarget,
}

/// Builds `link.json`.
#[allow(clippy::too_many_lines)]
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-link",
        "link",
        &[
            "Links (spec §10) and their rotation (spec §9.3). All byte strings are hex; absent optional values are null.",
            "LinkCreate: create a link to the target (nodeId, nodeKind 0 = folder / 1 = file (§7), generation, nodeKey) under `origin` with the options (password, argon2, expiresAt, maxDownloads, uploadOnly) at time `now`, drawing `randomness` in the order of spec §10.5 (secret 32; salt 16 if password; drop secret 32 and its seal nonce 24 if upload-only; capability seal nonce 24). Outputs: url, record, verifierHash, ownerEntry (the encoded OwnerLinkEntry plaintext). Intermediate values: secret, linkId, linkKey, salt, pwKey, capabilityKey, verifier, dropSecret, dropPublic, capability (the LinkCapability plaintext).",
            "LinkOpen: open `record` with `url` at time `now` following spec §10.6, with `password` (run Argon2id) or `pwKey` (already derived) or neither. Valid tests yield nodeId, nodeKind, generation, permission (0 = read, 1 = upload-only), nodeKey or dropPublic, expiresAt, maxDownloads.",
            "DropCreate: with the opened upload-only link (url, record), seal `metadata` for a new node drawing `randomness` (node id 16, node key 32, HPKE ikmE 32, metadata seal nonce 24); outputs nodeId, nodeKey, fileKey (§10.9.2 step 5), envelope. DropOpen: open the record's drop secret with `folderKey` (intermediate dropSecret), then open `envelope` expected for linkId and folderId.",
            "OwnerEntrySeal / OwnerEntryOpen: an OwnerLinkEntry sealed under `ownerKey` for `linkId`. LinkReseal: re-seal `ownerEntry`'s link for the target (a new generation) drawing `randomness`. LinkRotate: rotate `ownerEntry`'s link to a new secret.",
            "Password links use Argon2Params::MIN (m = 19456 KiB, t = 2, p = 1); only five tests run Argon2id.",
        ],
    );
    for (flag, bug, desc) in [
        ("Valid", "BASIC", "A well-formed link operation."),
        ("Password", "BASIC", "A password-protected link."),
        ("UploadOnly", "BASIC", "An upload-only (drop box) link."),
        ("Limits", "BASIC", "A link with an expiry and a download limit."),
        ("WrongLinkId", "WRONG_KEY", "The record is for another link id than the URL's secret derives, or the URL's secret is another link's."),
        ("TamperedPublicField", "MODIFIED_CIPHERTEXT", "The server altered a plaintext field of the record (expiry, download limit, node, password parameters, drop part); the sealed capability's associated data no longer matches."),
        ("ModifiedCapability", "MODIFIED_CIPHERTEXT", "A bit of the sealed capability is flipped."),
        ("WrongPassword", "WRONG_KEY", "Opened with a wrong password (or password key)."),
        ("MissingPassword", "MISSING", "The link needs a password and none is given."),
        ("PasswordFlagMismatch", "WRONG_CONTEXT", "The URL's password flag and the record's password field disagree."),
        ("KdfParamsOutOfRange", "RESOURCE", "Argon2id parameters outside [MIN, MAX]: rejected before any work."),
        ("Expired", "EXPIRED", "The link's expiry is at or before `now`."),
        ("NonCanonical", "MALFORMED", "The record is not in the deterministic encoding."),
        ("Malformed", "MALFORMED", "The record is truncated, too long, of another type or version, has trailing bytes, or breaks a structural rule."),
        ("BadCapability", "MALFORMED", "The capability decrypts but breaks a rule of spec §10.4 (a record the owner's software should never produce)."),
        ("ModifiedEnvelope", "MODIFIED_CIPHERTEXT", "A bit of a drop envelope is flipped."),
        ("WrongBinding", "WRONG_CONTEXT", "An envelope or entry presented for another link or folder."),
        ("WrongKey", "WRONG_KEY", "Opened with another key."),
        ("Reseal", "BASIC", "A link re-sealed for a new key generation keeps its URL."),
        ("Rotate", "BASIC", "A rotated link has a new secret, link id and URL."),
    ] {
        f.note(flag, bug, desc);
    }

    let mut rng = RecordingRng::new("coffer/v1/vectors/link");
    let file = LinkTarget {
        node_id: NodeId::from_bytes(rng.array()),
        node_kind: NodeKind::File,
        generation: 0,
        node_key: SecretKey::from_bytes(rng.array()),
    };
    let folder = LinkTarget {
        node_id: NodeId::from_bytes(rng.array()),
        node_kind: NodeKind::Folder,
        generation: 7,
        node_key: SecretKey::from_bytes(rng.array()),
    };
    let cases = [
        Case {
            name: "read link to a file",
            target: file.clone(),
            password: false,
            expires_at: None,
            max_downloads: None,
            upload_only: false,
        },
        Case {
            name: "read link to a folder, expiry and download limit",
            target: folder.clone(),
            password: false,
            expires_at: Some(NOW + 86_400),
            max_downloads: Some(10),
            upload_only: false,
        },
        Case {
            name: "read link to a folder with a password and expiry",
            target: folder.clone(),
            password: true,
            expires_at: Some(NOW + 3_600),
            max_downloads: None,
            upload_only: false,
        },
        Case {
            name: "upload-only link to a folder",
            target: folder.clone(),
            password: false,
            expires_at: None,
            max_downloads: None,
            upload_only: true,
        },
        Case {
            name: "upload-only link with a password and a limit",
            target: folder.clone(),
            password: true,
            expires_at: None,
            max_downloads: Some(100),
            upload_only: true,
        },
    ];

    // ---- LinkCreate
    let g = f.group("LinkCreate", json!({}));
    let mut made = Vec::new();
    for c in &cases {
        rng.take();
        let options = LinkOptions {
            password: c.password.then_some(NewLinkPassword {
                password: PASSWORD,
                params: Argon2Params::MIN,
            }),
            expires_at: c.expires_at,
            max_downloads: c.max_downloads,
            upload_only: c.upload_only,
        };
        let link = create_link(&mut rng, ORIGIN, &c.target, &options, NOW).expect("create");
        let randomness = rng.take();
        let secret = link.url.secret();
        let entry = &link.owner_entry;
        let pw_key = entry
            .password
            .as_ref()
            .map(|p| SecretKey::from_bytes(p.password_key.0));
        let record = LinkRecord::parse(&link.record).expect("parse");
        let cap_key = capability_key(secret, pw_key.as_ref());
        let cap = seal::open(
            &cap_key,
            LABEL_CAPABILITY,
            &record.capability_aad(),
            &record.capability,
        )
        .expect("cap");
        let verifier = pw_key.as_ref().map(|k| password_verifier(secret, k));
        let drop_secret = entry.drop_secret.map(|d| AgreementSecret::from_bytes(d.0));
        let mut flags = vec!["Valid"];
        if c.password {
            flags.push("Password");
        }
        if c.upload_only {
            flags.push("UploadOnly");
        }
        if c.expires_at.is_some() || c.max_downloads.is_some() {
            flags.push("Limits");
        }
        let mut fields = target_json(&c.target);
        for (k, v) in [
            ("origin", Value::from(ORIGIN)),
            (
                "password",
                if c.password { h(PASSWORD) } else { Value::Null },
            ),
            (
                "argon2",
                if c.password {
                    json!({ "mKib": Argon2Params::MIN.m_kib, "t": Argon2Params::MIN.t, "p": Argon2Params::MIN.p })
                } else {
                    Value::Null
                },
            ),
            ("expiresAt", opt_u64(c.expires_at)),
            ("maxDownloads", opt_u64(c.max_downloads)),
            ("uploadOnly", Value::from(c.upload_only)),
            ("now", Value::from(NOW)),
            ("randomness", h(&randomness)),
            ("secret", h(secret.expose())),
            ("linkId", h(secret.link_id().as_bytes())),
            ("linkKey", h(secret.link_key().expose())),
            (
                "salt",
                opt_hex(record.password.as_ref().map(|p| p.salt.0.as_slice())),
            ),
            (
                "pwKey",
                opt_hex(pw_key.as_ref().map(|k| k.expose().as_slice())),
            ),
            ("capabilityKey", h(cap_key.expose())),
            ("verifier", opt_hex(verifier.as_ref().map(|v| v.as_slice()))),
            (
                "verifierHash",
                opt_hex(link.verifier_hash.as_ref().map(|v| v.as_slice())),
            ),
            (
                "dropSecret",
                opt_hex(drop_secret.as_ref().map(|d| d.expose().as_slice())),
            ),
            (
                "dropPublic",
                opt_hex(
                    drop_secret
                        .as_ref()
                        .map(|d| d.public_key().to_bytes())
                        .as_ref()
                        .map(|b| b.as_slice()),
                ),
            ),
            ("capability", h(&cap)),
            ("url", Value::from(link.url.to_string())),
            ("record", h(&link.record)),
            ("ownerEntry", h(&encode(entry))),
        ] {
            fields[k] = v;
        }
        g.valid(c.name, &flags, fields);
        made.push(Made {
            pw_key,
            target: c.target.clone(),
            link,
        });
    }

    // ---- LinkOpen
    let g = f.group("LinkOpen", json!({}));
    let base = |m: &Made, record: &[u8]| json!({ "url": m.link.url.to_string(), "record": h(record), "now": NOW });
    let with_key = |m: &Made, record: &[u8]| {
        with(
            base(m, record),
            "pwKey",
            h(m.pw_key.as_ref().expect("pw").expose()),
        )
    };
    for (i, (m, c)) in made.iter().zip(&cases).enumerate() {
        let mut fields = if c.password {
            with(base(m, &m.link.record), "password", h(PASSWORD))
        } else {
            base(m, &m.link.record)
        };
        let opened =
            open_link_with_key(&m.link.url, &m.link.record, m.pw_key.as_ref(), NOW).expect("open");
        let (node_key, drop_public) = match &opened.access {
            LinkAccess::Read { node_key } => (Some(node_key.expose().to_vec()), None),
            LinkAccess::UploadOnly { drop_public } => (None, Some(drop_public.to_bytes().to_vec())),
        };
        for (k, v) in [
            ("nodeId", h(opened.node_id.as_bytes())),
            ("nodeKind", Value::from(opened.node_kind.to_u64())),
            ("generation", Value::from(opened.generation)),
            ("permission", Value::from(opened.permission().to_u64())),
            ("nodeKey", opt_hex(node_key.as_deref())),
            ("dropPublic", opt_hex(drop_public.as_deref())),
            ("expiresAt", opt_u64(opened.expires_at)),
            ("maxDownloads", opt_u64(opened.max_downloads)),
        ] {
            fields[k] = v;
        }
        let mut flags = vec!["Valid"];
        if c.password {
            flags.push("Password");
        }
        if c.upload_only {
            flags.push("UploadOnly");
        }
        g.valid(&format!("opens: {}", c.name), &flags, fields.clone());
        if i == 2 {
            // The same with the password key already derived (no Argon2id).
            let f2 = with(
                without(fields, "password"),
                "pwKey",
                h(m.pw_key.as_ref().expect("pw").expose()),
            );
            g.valid(
                "opens with the derived password key",
                &["Valid", "Password"],
                f2,
            );
        }
    }

    // Faults on the read link with limits (no password).
    let b = &made[1];
    let r = &b.link.record;
    let other_secret = LinkSecret::from_bytes(rng.array());
    let other_url = LinkUrl::new(ORIGIN, other_secret.clone(), false).expect("url");
    g.invalid(
        "URL of another link",
        &["WrongLinkId"],
        "binding-mismatch",
        with(base(b, r), "url", Value::from(other_url.to_string())),
    );
    g.invalid(
        "bit flip in the record's link id",
        &["WrongLinkId"],
        "binding-mismatch",
        base(
            b,
            &mutate(r, |x| {
                let mut id = *x.link_id.as_bytes();
                id[0] ^= 1;
                x.link_id = LinkId::from_bytes(id);
            }),
        ),
    );
    g.invalid(
        "record relabelled with another link's id, opened with that link's URL",
        &["WrongLinkId"],
        "decryption-failed",
        with(
            base(b, &mutate(r, |x| x.link_id = other_secret.link_id())),
            "url",
            Value::from(other_url.to_string()),
        ),
    );
    // Public fields changed after sealing (the capability's associated data no longer matches)
    // and structural rules broken, each by one change to the record.
    let record_faults: [(&str, &str, &str, RecordEdit); 7] = [
        (
            "bit flip in the node id",
            "TamperedPublicField",
            "decryption-failed",
            |x| {
                let mut id = *x.node_id.as_bytes();
                id[15] ^= 0x80;
                x.node_id = NodeId::from_bytes(id);
            },
        ),
        (
            "expiry extended by one second",
            "TamperedPublicField",
            "decryption-failed",
            |x| x.expires_at = x.expires_at.map(|e| e + 1),
        ),
        (
            "expiry removed",
            "TamperedPublicField",
            "decryption-failed",
            |x| x.expires_at = None,
        ),
        (
            "download limit raised",
            "TamperedPublicField",
            "decryption-failed",
            |x| x.max_downloads = Some(11),
        ),
        (
            "download limit removed",
            "TamperedPublicField",
            "decryption-failed",
            |x| x.max_downloads = None,
        ),
        (
            "download limit of 0",
            "Malformed",
            "invalid-value",
            |x| x.max_downloads = Some(0),
        ),
        (
            "permission changed to upload-only without a drop part",
            "Malformed",
            "invalid-value",
            |x| x.permission = Permission::UploadOnly,
        ),
    ];
    for (comment, flag, failure, fault) in record_faults {
        g.invalid(comment, &[flag], failure, base(b, &mutate(r, fault)));
    }
    let cap_len = LinkRecord::parse(r).expect("parse").capability.len();
    for (what, pos) in [
        ("nonce", 0),
        ("commitment", 24),
        ("ciphertext", 56),
        ("tag", cap_len - 1),
    ] {
        g.invalid(
            &format!("bit flip in the capability's {what}"),
            &["ModifiedCapability"],
            "decryption-failed",
            base(b, &mutate(r, |x| x.capability[pos] ^= 0x01)),
        );
    }
    g.invalid(
        "capability truncated below the seal overhead",
        &["ModifiedCapability"],
        "decryption-failed",
        base(b, &mutate(r, |x| x.capability.truncate(71))),
    );
    g.invalid(
        "expired: now equals expiresAt",
        &["Expired"],
        "link-expired",
        with(base(b, r), "now", Value::from(NOW + 86_400)),
    );
    g.invalid(
        "expired: now after expiresAt",
        &["Expired"],
        "link-expired",
        with(base(b, r), "now", Value::from(u64::MAX)),
    );
    let mut t = r.clone();
    t.push(0x00);
    g.invalid(
        "trailing byte after the record",
        &["Malformed"],
        "trailing-bytes",
        base(b, &t),
    );
    g.invalid(
        "record truncated by one byte",
        &["Malformed"],
        "malformed",
        base(b, &r[..r.len() - 1]),
    );
    let mut nc = vec![0x98, r[0] & 0x1f];
    nc.extend_from_slice(&r[1..]);
    g.invalid(
        "array length in a non-shortest head",
        &["NonCanonical"],
        "non-canonical",
        base(b, &nc),
    );
    let mut indef = vec![0x9f];
    indef.extend_from_slice(&r[1..]);
    indef.push(0xff);
    g.invalid(
        "indefinite-length array",
        &["NonCanonical"],
        "non-canonical",
        base(b, &indef),
    );
    let mut wt = r.clone();
    wt[2] = 71;
    g.invalid(
        "type code 71 instead of 70",
        &["Malformed"],
        "wrong-type",
        base(b, &wt),
    );
    let mut wv = r.clone();
    wv[3] = 2;
    g.invalid("version 2", &["Malformed"], "unknown-version", base(b, &wv));
    let mut long = r.clone();
    long.resize(link::MAX_LINK_RECORD_LEN + 1, 0);
    g.invalid(
        "longer than 1024 bytes",
        &["Malformed"],
        "malformed",
        base(b, &long),
    );

    // Faults on the password link.
    let c = &made[2];
    let r = &c.link.record;
    g.invalid(
        "wrong password",
        &["Password", "WrongPassword"],
        "decryption-failed",
        with(base(c, r), "password", h(b"correct horse battery stapler")),
    );
    let mut wrong_key = *c.pw_key.as_ref().expect("pw").expose();
    wrong_key[0] ^= 1;
    g.invalid(
        "wrong password key",
        &["Password", "WrongPassword"],
        "decryption-failed",
        with(base(c, r), "pwKey", h(&wrong_key)),
    );
    g.invalid(
        "no password given",
        &["Password", "MissingPassword"],
        "invalid-argument",
        base(c, r),
    );
    let no_flag = LinkUrl::new(ORIGIN, c.link.url.secret().clone(), false).expect("url");
    g.invalid(
        "URL without the password flag",
        &["PasswordFlagMismatch"],
        "binding-mismatch",
        with(with_key(c, r), "url", Value::from(no_flag.to_string())),
    );
    let stripped = mutate(r, |x| x.password = None);
    g.invalid(
        "password removed by the server (URL has the flag)",
        &["PasswordFlagMismatch"],
        "binding-mismatch",
        base(c, &stripped),
    );
    g.invalid(
        "password removed by the server and the flag removed from the URL",
        &["TamperedPublicField"],
        "decryption-failed",
        with(base(c, &stripped), "url", Value::from(no_flag.to_string())),
    );
    g.invalid(
        "bit flip in the salt",
        &["Password", "TamperedPublicField"],
        "decryption-failed",
        with_key(
            c,
            &mutate(r, |x| {
                if let Some(p) = x.password.as_mut() {
                    p.salt.0[0] ^= 1;
                }
            }),
        ),
    );
    g.invalid(
        "memory parameter raised within range",
        &["Password", "TamperedPublicField"],
        "decryption-failed",
        with_key(
            c,
            &mutate(r, |x| {
                if let Some(p) = x.password.as_mut() {
                    p.m_kib += 1;
                }
            }),
        ),
    );
    for (what, m, tt, p) in [
        ("memory 1 TiB (2^30 KiB)", 1u64 << 30, 2, 1),
        ("memory above 2^32-1 KiB", 1u64 << 32, 2, 1),
        ("memory below the floor", 8 * 1024, 2, 1),
        ("one pass", 19 * 1024, 1, 1),
        ("a million passes", 19 * 1024, 1_000_000, 1),
        ("zero lanes", 19 * 1024, 2, 0),
        ("17 lanes", 64 * 1024, 2, 17),
        ("every parameter 2^64-1", u64::MAX, u64::MAX, u64::MAX),
    ] {
        g.invalid(
            &format!("Argon2id {what}"),
            &["Password", "KdfParamsOutOfRange"],
            "limit-exceeded",
            with(
                base(
                    c,
                    &mutate(r, |x| {
                        if let Some(pw) = x.password.as_mut() {
                            pw.m_kib = m;
                            pw.t = tt;
                            pw.p = p;
                        }
                    }),
                ),
                "password",
                h(PASSWORD),
            ),
        );
    }
    g.invalid(
        "expired password link: expiry is checked before Argon2id",
        &["Password", "Expired"],
        "link-expired",
        with(
            with(base(c, r), "password", h(PASSWORD)),
            "now",
            Value::from(NOW + 3_600),
        ),
    );

    // Faults on the upload-only link.
    let d = &made[3];
    let r = &d.link.record;
    g.invalid(
        "bit flip in the sealed drop secret",
        &["UploadOnly", "TamperedPublicField"],
        "decryption-failed",
        base(
            d,
            &mutate(r, |x| {
                if let Some(dr) = x.drop.as_mut() {
                    dr.sealed_drop_secret[30] ^= 1;
                }
            }),
        ),
    );
    g.invalid(
        "drop generation changed",
        &["UploadOnly", "TamperedPublicField"],
        "decryption-failed",
        base(
            d,
            &mutate(r, |x| {
                if let Some(dr) = x.drop.as_mut() {
                    dr.generation += 1;
                }
            }),
        ),
    );
    g.invalid(
        "drop part removed",
        &["UploadOnly", "Malformed"],
        "invalid-value",
        base(d, &mutate(r, |x| x.drop = None)),
    );
    g.invalid(
        "sealed drop secret of 103 bytes",
        &["UploadOnly", "Malformed"],
        "invalid-value",
        base(
            d,
            &mutate(r, |x| {
                if let Some(dr) = x.drop.as_mut() {
                    dr.sealed_drop_secret.truncate(103);
                }
            }),
        ),
    );

    // Records that decrypt but carry a capability that breaks §10.4 (sealed by a broken owner).
    let reseal_cap = |m: &Made,
                      rec: &[u8],
                      cap: &[u8],
                      tweak: &dyn Fn(&mut LinkRecord),
                      rng: &mut RecordingRng| {
        let secret = m.link.url.secret();
        let key = capability_key(secret, m.pw_key.as_ref());
        mutate(rec, |x| {
            tweak(x);
            x.capability = seal::seal(&key, LABEL_CAPABILITY, &x.capability_aad(), cap, rng).into();
        })
    };
    let read_key = Some(Bytes(*b.target.node_key.expose()));
    let drop_pub = Some(Bytes([9u8; 32]));
    let bad_caps: Vec<(&str, &Made, Vec<u8>, &str, bool)> = vec![
        (
            "read link whose capability has no read key",
            b,
            encode(&LinkCapability {
                node_kind: NodeKind::Folder,
                generation: 7,
                read_key: None,
                drop_public: None,
            }),
            "invalid-value",
            false,
        ),
        (
            "read link whose capability has a drop public key too",
            b,
            encode(&LinkCapability {
                node_kind: NodeKind::Folder,
                generation: 7,
                read_key,
                drop_public: drop_pub,
            }),
            "invalid-value",
            false,
        ),
        (
            "upload-only link whose capability has a read key",
            d,
            encode(&LinkCapability {
                node_kind: NodeKind::Folder,
                generation: 7,
                read_key,
                drop_public: None,
            }),
            "invalid-value",
            false,
        ),
        (
            "upload-only link to a file",
            d,
            encode(&LinkCapability {
                node_kind: NodeKind::File,
                generation: 7,
                read_key: None,
                drop_public: Some(Bytes(d_public(d))),
            }),
            "invalid-value",
            false,
        ),
        (
            "upload-only link with a small-order drop public key",
            d,
            encode(&LinkCapability {
                node_kind: NodeKind::Folder,
                generation: 7,
                read_key: None,
                drop_public: Some(Bytes([0u8; 32])),
            }),
            "invalid-public-key",
            false,
        ),
        (
            "upload-only link whose drop generation differs from the capability's",
            d,
            encode(&LinkCapability {
                node_kind: NodeKind::Folder,
                generation: 7,
                read_key: None,
                drop_public: Some(Bytes(d_public(d))),
            }),
            "binding-mismatch",
            true,
        ),
        (
            "capability with a trailing byte",
            b,
            {
                let mut v = encode(&LinkCapability {
                    node_kind: NodeKind::Folder,
                    generation: 7,
                    read_key,
                    drop_public: None,
                });
                v.push(0);
                v
            },
            "trailing-bytes",
            false,
        ),
        (
            "capability of node kind 2",
            b,
            {
                let mut v = encode(&LinkCapability {
                    node_kind: NodeKind::Folder,
                    generation: 7,
                    read_key,
                    drop_public: None,
                });
                v[4] = 2;
                v
            },
            "invalid-value",
            false,
        ),
    ];
    for (what, m, cap, class, bump_generation) in bad_caps {
        let tweak = |x: &mut LinkRecord| {
            if bump_generation {
                if let Some(dr) = x.drop.as_mut() {
                    dr.generation = 8;
                }
            }
        };
        let rec = reseal_cap(m, &m.link.record, &cap, &tweak, &mut rng);
        g.invalid(what, &["BadCapability"], class, base(m, &rec));
    }
    rng.take();

    // ---- DropCreate and DropOpen
    let g = f.group("DropCreate", json!({}));
    let mut drops = Vec::new();
    for (m, metadata) in [
        (&made[3], b"\x84\x0a\x01\x64a.txt\x18\x2a".to_vec()),
        (&made[3], Vec::new()),
        (&made[4], vec![0xa5; 300]),
    ] {
        let opened =
            open_link_with_key(&m.link.url, &m.link.record, m.pw_key.as_ref(), NOW).expect("open");
        rng.take();
        let up = create_drop(&mut rng, &opened, &metadata).expect("drop");
        let randomness = rng.take();
        let mut fields = base(m, &m.link.record);
        if let Some(k) = &m.pw_key {
            fields["pwKey"] = h(k.expose());
        }
        for (k, v) in [
            ("metadata", h(&metadata)),
            ("randomness", h(&randomness)),
            ("nodeId", h(up.node_id.as_bytes())),
            ("nodeKey", h(up.node_key.expose())),
            (
                "fileKey",
                h(drop_file_key(&up.node_key, up.node_id).expose()),
            ),
            ("envelope", h(&up.envelope)),
        ] {
            fields[k] = v;
        }
        g.valid(
            &format!("{}-byte metadata", metadata.len()),
            &["Valid", "UploadOnly"],
            fields,
        );
        drops.push((m, metadata, up));
    }
    let g = f.group("DropOpen", json!({}));
    let mut faults_done = false;
    for (m, metadata, up) in &drops {
        let rec = LinkRecord::parse(&m.link.record).expect("parse");
        let ds = open_drop_secret(&rec, &m.target.node_key).expect("drop secret");
        let dbase = json!({ "folderKey": h(m.target.node_key.expose()), "record": h(&m.link.record),
                            "linkId": h(rec.link_id.as_bytes()), "folderId": h(rec.node_id.as_bytes()),
                            "envelope": h(&up.envelope) });
        let mut fields = with(dbase.clone(), "dropSecret", h(ds.expose()));
        for (k, v) in [
            ("nodeId", h(up.node_id.as_bytes())),
            ("nodeKey", h(up.node_key.expose())),
            (
                "fileKey",
                h(drop_file_key(&up.node_key, up.node_id).expose()),
            ),
            ("metadata", h(metadata)),
        ] {
            fields[k] = v;
        }
        g.valid("opens", &["Valid", "UploadOnly"], fields);
        // The single faults, once, on the first drop with non-empty metadata.
        if metadata.is_empty() || faults_done {
            continue;
        }
        faults_done = true;
        let env: DropEnvelope = decode(&up.envelope).expect("envelope");
        let remake = |f: &dyn Fn(&mut DropEnvelope)| {
            let mut e = env.clone();
            f(&mut e);
            encode(&e)
        };
        let envelope = |bytes: Vec<u8>| with(dbase.clone(), "envelope", h(&bytes));
        g.invalid(
            "bit flip in the link id",
            &["WrongBinding"],
            "binding-mismatch",
            envelope(remake(&|e| {
                let mut id = *e.link_id.as_bytes();
                id[3] ^= 4;
                e.link_id = LinkId::from_bytes(id);
            })),
        );
        g.invalid(
            "bit flip in the folder id",
            &["WrongBinding"],
            "binding-mismatch",
            envelope(remake(&|e| {
                let mut id = *e.folder_id.as_bytes();
                id[3] ^= 4;
                e.folder_id = NodeId::from_bytes(id);
            })),
        );
        g.invalid(
            "expected for another folder",
            &["WrongBinding"],
            "binding-mismatch",
            with(
                dbase.clone(),
                "folderId",
                h(made[0].target.node_id.as_bytes()),
            ),
        );
        g.invalid(
            "bit flip in the node id",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| {
                let mut id = *e.node_id.as_bytes();
                id[0] ^= 1;
                e.node_id = NodeId::from_bytes(id);
            })),
        );
        g.invalid(
            "bit flip in enc",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| e.enc.0[5] ^= 1)),
        );
        g.invalid(
            "bit flip in the encrypted node key",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| e.sealed_node_key.0[0] ^= 1)),
        );
        g.invalid(
            "bit flip in the encrypted node key's tag",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| e.sealed_node_key.0[47] ^= 0x80)),
        );
        g.invalid(
            "bit flip in the sealed metadata's commitment",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| e.sealed_metadata[30] ^= 1)),
        );
        g.invalid(
            "bit flip in the sealed metadata's ciphertext",
            &["ModifiedEnvelope"],
            "decryption-failed",
            envelope(remake(&|e| e.sealed_metadata[60] ^= 1)),
        );
        let mut t = up.envelope.clone();
        t.push(0);
        g.invalid(
            "trailing byte",
            &["Malformed"],
            "trailing-bytes",
            envelope(t),
        );
        let mut wt = up.envelope.clone();
        wt[2] = 70;
        g.invalid(
            "type code 70 instead of 72",
            &["Malformed"],
            "wrong-type",
            envelope(wt),
        );
        g.invalid(
            "wrong folder key: the drop secret does not open",
            &["WrongKey"],
            "decryption-failed",
            with(
                dbase.clone(),
                "folderKey",
                h(made[0].target.node_key.expose()),
            ),
        );
    }

    // ---- Owner entries
    let owner_key = SecretKey::from_bytes(rng.array());
    let g = f.group("OwnerEntrySeal", json!({}));
    let mut sealed_entries = Vec::new();
    for m in [&made[1], &made[4]] {
        rng.take();
        let sealed = seal_owner_entry(&owner_key, &m.link.owner_entry, &mut rng);
        let randomness = rng.take();
        g.valid("seals", &["Valid"], json!({ "ownerKey": h(owner_key.expose()), "linkId": h(m.link.url.link_id().as_bytes()),
            "entry": h(&encode(&m.link.owner_entry)), "randomness": h(&randomness), "sealed": h(&sealed) }));
        sealed_entries.push((m, sealed));
    }
    let g = f.group("OwnerEntryOpen", json!({}));
    for (i, (m, sealed)) in sealed_entries.iter().enumerate() {
        let obase = json!({ "ownerKey": h(owner_key.expose()), "linkId": h(m.link.url.link_id().as_bytes()), "sealed": h(sealed) });
        g.valid(
            "opens",
            &["Valid"],
            with(obase.clone(), "entry", h(&encode(&m.link.owner_entry))),
        );
        if i > 0 {
            continue;
        }
        g.invalid(
            "another link's id",
            &["WrongBinding"],
            "decryption-failed",
            with(
                obase.clone(),
                "linkId",
                h(made[0].link.url.link_id().as_bytes()),
            ),
        );
        g.invalid(
            "another owner key",
            &["WrongKey"],
            "decryption-failed",
            with(obase.clone(), "ownerKey", h(m.target.node_key.expose())),
        );
        let mut flip = sealed.clone();
        flip[40] ^= 1;
        g.invalid(
            "bit flip in the commitment",
            &["ModifiedCapability"],
            "decryption-failed",
            with(obase.clone(), "sealed", h(&flip)),
        );
        let mut flip = sealed.clone();
        flip[70] ^= 1;
        g.invalid(
            "bit flip in the ciphertext",
            &["ModifiedCapability"],
            "decryption-failed",
            with(obase.clone(), "sealed", h(&flip)),
        );
        // An entry for link A sealed under A's id but holding link B's secret.
        let mut swapped: OwnerLinkEntry = m.link.owner_entry.clone();
        swapped.secret = made[0].link.owner_entry.secret;
        rng.take();
        let aad = encode(&link::OwnerEntryContext {
            link_id: m.link.url.link_id(),
        });
        let bad = seal::seal(
            &owner_key,
            link::LABEL_OWNER_ENTRY,
            &aad,
            &encode(&swapped),
            &mut rng,
        );
        rng.take();
        g.invalid(
            "entry holding another link's secret",
            &["WrongBinding"],
            "binding-mismatch",
            with(obase, "sealed", h(&bad)),
        );
    }

    // ---- Reseal and rotate
    let g = f.group("LinkReseal", json!({}));
    for m in [&made[1], &made[2], &made[4]] {
        let t2 = LinkTarget {
            generation: 8,
            node_key: SecretKey::from_bytes(rng.array()),
            ..m.target.clone()
        };
        rng.take();
        let resealed = reseal_link(&mut rng, &m.link.owner_entry, &t2).expect("reseal");
        let randomness = rng.take();
        let mut fields = target_json(&t2);
        for (k, v) in [
            ("ownerEntry", h(&encode(&m.link.owner_entry))),
            ("randomness", h(&randomness)),
            ("url", Value::from(m.link.url.to_string())),
            ("record", h(&resealed.record)),
            (
                "verifierHash",
                opt_hex(resealed.verifier_hash.as_ref().map(|v| v.as_slice())),
            ),
        ] {
            fields[k] = v;
        }
        g.valid("re-sealed for generation 8", &["Valid", "Reseal"], fields);
    }
    let g = f.group("LinkRotate", json!({}));
    for m in [&made[0], &made[2], &made[3]] {
        rng.take();
        let rotated = rotate_link(&mut rng, &m.link.owner_entry, ORIGIN, &m.target, NOW + 60)
            .expect("rotate");
        let randomness = rng.take();
        let mut fields = target_json(&m.target);
        for (k, v) in [
            ("ownerEntry", h(&encode(&m.link.owner_entry))),
            ("origin", Value::from(ORIGIN)),
            ("now", Value::from(NOW + 60)),
            ("randomness", h(&randomness)),
            ("oldUrl", Value::from(m.link.url.to_string())),
            ("url", Value::from(rotated.url.to_string())),
            ("record", h(&rotated.record)),
            (
                "verifierHash",
                opt_hex(rotated.verifier_hash.as_ref().map(|v| v.as_slice())),
            ),
            ("newOwnerEntry", h(&encode(&rotated.owner_entry))),
        ] {
            fields[k] = v;
        }
        g.valid("rotated", &["Valid", "Rotate"], fields);
    }
    f.finish()
}

fn d_public(m: &Made) -> [u8; 32] {
    let ds = m.link.owner_entry.drop_secret.expect("upload-only");
    AgreementSecret::from_bytes(ds.0).public_key().to_bytes()
}

// ---------------------------------------------------------------------------------------------
// Verification

fn opt_field(test: &Test, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match test.fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => Ok(Some(test.hex(name)?)),
    }
}

fn opt_u64_field(test: &Test, name: &str) -> Option<u64> {
    test.fields.get(name).and_then(Value::as_u64)
}

fn target_of(test: &Test) -> anyhow::Result<LinkTarget> {
    Ok(LinkTarget {
        node_id: NodeId::from_bytes(test.hex_array("nodeId")?),
        node_kind: NodeKind::from_u64(test.u64("nodeKind")?)?,
        generation: test.u64("generation")?,
        node_key: SecretKey::from_bytes(test.hex_array("nodeKey")?),
    })
}

fn entry_of(test: &Test, name: &str) -> anyhow::Result<OwnerLinkEntry> {
    Ok(decode::<OwnerLinkEntry>(&test.hex(name)?)?)
}

fn eq_opt(got: Option<&[u8]>, test: &Test, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        got.map(<[u8]>::to_vec) == opt_field(test, name)?,
        "{name} differs"
    );
    Ok(())
}

fn open_from(test: &Test) -> coffer_core::Result<link::OpenedLink> {
    let url = LinkUrl::parse(test.str("url").unwrap_or_default())?;
    let record = test.hex("record").unwrap_or_default();
    let now = test.u64("now").unwrap_or_default();
    if let Ok(Some(pw)) = opt_field(test, "password") {
        open_link(&url, &record, Some(&pw), now)
    } else if let Ok(Some(k)) = opt_field(test, "pwKey") {
        let key = SecretKey::from_slice(&k)?;
        open_link_with_key(&url, &record, Some(&key), now)
    } else {
        open_link(&url, &record, None, now)
    }
}

fn check_opened(test: &Test, o: &link::OpenedLink) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.node_id.as_bytes().as_slice() == test.hex("nodeId")?.as_slice(),
        "node id differs"
    );
    anyhow::ensure!(
        o.node_kind.to_u64() == test.u64("nodeKind")?,
        "node kind differs"
    );
    anyhow::ensure!(
        o.generation == test.u64("generation")?,
        "generation differs"
    );
    anyhow::ensure!(
        o.permission().to_u64() == test.u64("permission")?,
        "permission differs"
    );
    anyhow::ensure!(
        o.expires_at == opt_u64_field(test, "expiresAt"),
        "expiry differs"
    );
    anyhow::ensure!(
        o.max_downloads == opt_u64_field(test, "maxDownloads"),
        "limit differs"
    );
    match &o.access {
        LinkAccess::Read { node_key } => {
            eq_opt(Some(node_key.expose()), test, "nodeKey")?;
            eq_opt(None, test, "dropPublic")
        }
        LinkAccess::UploadOnly { drop_public } => {
            eq_opt(None, test, "nodeKey")?;
            eq_opt(Some(&drop_public.to_bytes()), test, "dropPublic")
        }
    }
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "LinkCreate" => verify_create(test),
        "LinkOpen" => expect(test, open_from(test), |o| check_opened(test, &o)),
        "DropCreate" => {
            let opened = open_from(test)?;
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let up = create_drop(&mut rng, &opened, &test.hex("metadata")?)?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(
                up.node_id.as_bytes().as_slice() == test.hex("nodeId")?.as_slice(),
                "node id differs"
            );
            anyhow::ensure!(
                up.node_key.expose().as_slice() == test.hex("nodeKey")?.as_slice(),
                "node key differs"
            );
            anyhow::ensure!(
                drop_file_key(&up.node_key, up.node_id).expose().as_slice()
                    == test.hex("fileKey")?.as_slice(),
                "file key differs"
            );
            anyhow::ensure!(up.envelope == test.hex("envelope")?, "envelope differs");
            Ok(())
        }
        "DropOpen" => {
            let outcome = (|| {
                let record = LinkRecord::parse(&test.hex("record").unwrap_or_default())?;
                let folder_key = SecretKey::from_slice(&test.hex("folderKey").unwrap_or_default())?;
                let ds = open_drop_secret(&record, &folder_key)?;
                let link_id = LinkId::from_bytes(test.hex_array("linkId").unwrap_or_default());
                let folder_id = NodeId::from_bytes(test.hex_array("folderId").unwrap_or_default());
                let opened = open_drop(
                    &ds,
                    link_id,
                    folder_id,
                    &test.hex("envelope").unwrap_or_default(),
                )?;
                Ok((ds, opened))
            })();
            expect(test, outcome, |(ds, o)| {
                eq_opt(Some(ds.expose()), test, "dropSecret")?;
                anyhow::ensure!(
                    o.node_id.as_bytes().as_slice() == test.hex("nodeId")?.as_slice(),
                    "node id differs"
                );
                anyhow::ensure!(
                    o.node_key.expose().as_slice() == test.hex("nodeKey")?.as_slice(),
                    "node key differs"
                );
                anyhow::ensure!(
                    o.metadata.as_slice() == test.hex("metadata")?.as_slice(),
                    "metadata differs"
                );
                anyhow::ensure!(
                    drop_file_key(&o.node_key, o.node_id).expose().as_slice()
                        == test.hex("fileKey")?.as_slice(),
                    "file key differs"
                );
                Ok(())
            })
        }
        "OwnerEntrySeal" => {
            let key = SecretKey::from_bytes(test.hex_array("ownerKey")?);
            let entry = entry_of(test, "entry")?;
            anyhow::ensure!(
                entry.link_id().as_bytes().as_slice() == test.hex("linkId")?.as_slice(),
                "link id differs"
            );
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let sealed = seal_owner_entry(&key, &entry, &mut rng);
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(sealed == test.hex("sealed")?, "sealed entry differs");
            Ok(())
        }
        "OwnerEntryOpen" => {
            let key = SecretKey::from_bytes(test.hex_array("ownerKey")?);
            let link_id = LinkId::from_bytes(test.hex_array("linkId")?);
            expect(
                test,
                open_owner_entry(&key, link_id, &test.hex("sealed")?),
                |e| {
                    anyhow::ensure!(encode(&e) == test.hex("entry")?, "entry differs");
                    Ok(())
                },
            )
        }
        "LinkReseal" => {
            let entry = entry_of(test, "ownerEntry")?;
            let target = target_of(test)?;
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let out = reseal_link(&mut rng, &entry, &target)?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(out.record == test.hex("record")?, "record differs");
            eq_opt(
                out.verifier_hash.as_ref().map(|v| v.as_slice()),
                test,
                "verifierHash",
            )?;
            anyhow::ensure!(
                entry.url(ORIGIN)?.to_string() == test.str("url")?,
                "url differs"
            );
            // The old URL opens the new record at the new generation.
            let url = LinkUrl::parse(test.str("url")?)?;
            let pw = entry
                .password
                .as_ref()
                .map(|p| SecretKey::from_bytes(p.password_key.0));
            let o = open_link_with_key(&url, &out.record, pw.as_ref(), 0)?;
            anyhow::ensure!(o.generation == target.generation, "generation differs");
            Ok(())
        }
        "LinkRotate" => {
            let entry = entry_of(test, "ownerEntry")?;
            let target = target_of(test)?;
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let out = rotate_link(
                &mut rng,
                &entry,
                test.str("origin")?,
                &target,
                test.u64("now")?,
            )?;
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(out.url.to_string() == test.str("url")?, "url differs");
            anyhow::ensure!(out.record == test.hex("record")?, "record differs");
            eq_opt(
                out.verifier_hash.as_ref().map(|v| v.as_slice()),
                test,
                "verifierHash",
            )?;
            anyhow::ensure!(
                encode(&out.owner_entry) == test.hex("newOwnerEntry")?,
                "entry differs"
            );
            // The old URL no longer matches.
            let old = LinkUrl::parse(test.str("oldUrl")?)?;
            anyhow::ensure!(
                open_link(&old, &out.record, None, 0)
                    .map_err(|e| e.class())
                    .err()
                    == Some("binding-mismatch"),
                "old URL not rejected"
            );
            Ok(())
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}

fn verify_create(test: &Test) -> anyhow::Result<()> {
    let target = target_of(test)?;
    let password = opt_field(test, "password")?;
    let params = match test.fields.get("argon2") {
        Some(Value::Object(m)) => {
            let get = |k: &str| {
                m.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
            };
            Some(Argon2Params {
                m_kib: get("mKib").ok_or_else(|| anyhow::anyhow!("mKib"))?,
                t: get("t").ok_or_else(|| anyhow::anyhow!("t"))?,
                p: get("p").ok_or_else(|| anyhow::anyhow!("p"))?,
            })
        }
        _ => None,
    };
    let pw = match (&password, params) {
        (Some(p), Some(params)) => Some(NewLinkPassword {
            password: p,
            params,
        }),
        (None, None) => None,
        _ => anyhow::bail!("password and argon2 must both be present or both null"),
    };
    let options = LinkOptions {
        password: pw,
        expires_at: opt_u64_field(test, "expiresAt"),
        max_downloads: opt_u64_field(test, "maxDownloads"),
        upload_only: test
            .fields
            .get("uploadOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let mut rng = ReplayRng::new(test.hex("randomness")?);
    let link = create_link(
        &mut rng,
        test.str("origin")?,
        &target,
        &options,
        test.u64("now")?,
    )?;
    anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
    anyhow::ensure!(link.url.to_string() == test.str("url")?, "url differs");
    anyhow::ensure!(link.record == test.hex("record")?, "record differs");
    anyhow::ensure!(
        encode(&link.owner_entry) == test.hex("ownerEntry")?,
        "owner entry differs"
    );
    eq_opt(
        link.verifier_hash.as_ref().map(|v| v.as_slice()),
        test,
        "verifierHash",
    )?;
    // Intermediate values, recomputed from the secret.
    let secret = LinkSecret::from_bytes(test.hex_array("secret")?);
    anyhow::ensure!(&secret == link.url.secret(), "secret differs");
    anyhow::ensure!(
        secret.link_id().as_bytes().as_slice() == test.hex("linkId")?.as_slice(),
        "link id differs"
    );
    anyhow::ensure!(
        secret.link_key().expose().as_slice() == test.hex("linkKey")?.as_slice(),
        "link key differs"
    );
    let pw_key = opt_field(test, "pwKey")?
        .map(|k| SecretKey::from_slice(&k))
        .transpose()?;
    eq_opt(
        link.owner_entry
            .password
            .as_ref()
            .map(|p| p.password_key.0.as_slice()),
        test,
        "pwKey",
    )?;
    let record = LinkRecord::parse(&link.record)?;
    eq_opt(
        record.password.as_ref().map(|p| p.salt.0.as_slice()),
        test,
        "salt",
    )?;
    let cap_key = capability_key(&secret, pw_key.as_ref());
    anyhow::ensure!(
        cap_key.expose().as_slice() == test.hex("capabilityKey")?.as_slice(),
        "capability key differs"
    );
    let verifier = pw_key.as_ref().map(|k| password_verifier(&secret, k));
    eq_opt(verifier.as_ref().map(|v| v.as_slice()), test, "verifier")?;
    if let Some(v) = &verifier {
        eq_opt(Some(&verifier_hash(v)), test, "verifierHash")?;
    }
    let cap = seal::open(
        &cap_key,
        LABEL_CAPABILITY,
        &record.capability_aad(),
        &record.capability,
    )?;
    anyhow::ensure!(
        cap.as_slice() == test.hex("capability")?.as_slice(),
        "capability differs"
    );
    let ds = link
        .owner_entry
        .drop_secret
        .map(|d| AgreementSecret::from_bytes(d.0));
    eq_opt(
        ds.as_ref().map(|d| d.expose().as_slice()),
        test,
        "dropSecret",
    )?;
    eq_opt(
        ds.as_ref()
            .map(|d| d.public_key().to_bytes())
            .as_ref()
            .map(|b| b.as_slice()),
        test,
        "dropPublic",
    )?;
    Ok(())
}
