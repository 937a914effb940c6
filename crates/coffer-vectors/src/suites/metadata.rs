//! `metadata.json`: sealed node metadata (spec §5).

use serde_json::{json, Value};

use coffer_core::encoding;
use coffer_core::ids::NodeId;
use coffer_core::metadata::{self, Metadata, METADATA_SEAL_LABEL};
use coffer_core::primitives::SecretKey;
use coffer_core::seal;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

/// A hand-built CBOR encoding of a Metadata-shaped array, to make invalid plaintexts.
struct RawMeta<'a> {
    ty: u8,
    version: u8,
    name: &'a [u8],
    size: u64,
    mtime: u64,
    media_type: Option<&'a str>,
    digest: Option<[u8; 32]>,
}

fn cbor_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n < 0x100 {
        out.extend([m | 24, n as u8]);
    } else if n < 0x1_0000 {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n < 0x1_0000_0000 {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(n.to_be_bytes());
    }
}

impl RawMeta<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![0x87, self.ty, self.version];
        cbor_head(3, self.name.len() as u64, &mut out);
        out.extend_from_slice(self.name);
        cbor_head(0, self.size, &mut out);
        cbor_head(0, self.mtime, &mut out);
        match self.media_type {
            Some(t) => {
                cbor_head(3, t.len() as u64, &mut out);
                out.extend_from_slice(t.as_bytes());
            }
            None => out.push(0xf6),
        }
        match self.digest {
            Some(d) => {
                out.extend([0x58, 0x20]);
                out.extend_from_slice(&d);
            }
            None => out.push(0xf6),
        }
        out
    }
}

fn meta_fields(m: &Metadata) -> Value {
    json!({
        "name": m.name(), "size": m.size(), "mtime": m.mtime(),
        "mediaType": m.media_type(),
        "contentDigest": m.content_digest().map(hex::encode),
    })
}

/// Builds `metadata.json`.
#[allow(clippy::too_many_lines)]
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-metadata",
        "metadata",
        &[
            "Sealed node metadata (spec §5): metadataKey = HKDF-SHA-256(nodeKey, salt = \"\", info = \"coffer/v1/metadata/key\" || 0x00); sealed = seal(metadataKey, \"coffer/v1/metadata/seal\", aad = encode(MetadataAad{nodeId, revision}), encode(Metadata)).",
            "MetadataSeal tests: seal the metadata (name, size, mtime, mediaType, contentDigest; null when absent) for `nodeId` at `revision` under `nodeKey`, drawing `randomness` (the 24-byte seal nonce) from the RNG; `metadataKey`, `aad` and `plaintext` are the intermediates, the output must equal `sealed`.",
            "MetadataOpen tests: open `sealed` for `nodeId` at `revision` under `nodeKey`; valid tests yield the metadata fields, invalid tests fail with `failure`. Where given, `plaintext` is what was sealed (for invalid plaintexts, sealed correctly so that opening reaches the decoding step).",
        ],
    );
    f.note("Valid", "BASIC", "Well-formed metadata.");
    f.note(
        "Folder",
        "BASIC",
        "Folder metadata: size 0, no media type, no digest.",
    );
    f.note(
        "EdgeName",
        "EDGE_CASE",
        "A name at the edge of the rules (255 bytes, multibyte UTF-8, leading dots).",
    );
    f.note(
        "ModifiedSealed",
        "MODIFIED_CIPHERTEXT",
        "A bit of the sealed value is flipped.",
    );
    f.note("WrongKey", "WRONG_KEY", "Opened with another node key.");
    f.note(
        "WrongNodeId",
        "WRONG_CONTEXT",
        "Opened for another node id (a server moving metadata between nodes).",
    );
    f.note(
        "WrongRevision",
        "WRONG_CONTEXT",
        "Opened at another revision (a server replaying older metadata).",
    );
    f.note(
        "Oversize",
        "RESOURCE",
        "Sealed value longer than 1024 bytes: rejected before any cryptography.",
    );
    f.note("Truncated", "TRUNCATION", "Shorter than the seal overhead.");
    f.note(
        "InvalidName",
        "MALFORMED",
        "The authenticated plaintext has a name that breaks a rule of spec §5.3.",
    );
    f.note(
        "InvalidField",
        "MALFORMED",
        "The authenticated plaintext has an invalid media type or size/digest combination.",
    );
    f.note(
        "NonCanonical",
        "MALFORMED",
        "The authenticated plaintext is a non-canonical encoding.",
    );
    f.note(
        "TrailingBytes",
        "MALFORMED",
        "The authenticated plaintext has bytes after the structure.",
    );
    f.note(
        "WrongType",
        "MALFORMED",
        "The authenticated plaintext has the wrong type code or version.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/metadata");
    let samples: Vec<(&str, &[&str], Metadata)> = vec![
        (
            "file with media type",
            &["Valid"],
            Metadata::file(
                "report.pdf".into(),
                b"%PDF-1.7 ...",
                1_700_000_000,
                Some("application/pdf".into()),
            )
            .expect("valid"),
        ),
        (
            "empty file without media type",
            &["Valid"],
            Metadata::file("empty".into(), b"", 0, None).expect("valid"),
        ),
        (
            "folder",
            &["Folder"],
            Metadata::folder("Photos 2026".into(), 1_790_000_000).expect("valid"),
        ),
        (
            "255-byte multibyte name",
            &["EdgeName"],
            Metadata::file(
                "é".repeat(127) + "z",
                b"x",
                u64::MAX,
                Some("text/plain".into()),
            )
            .expect("valid"),
        ),
        (
            "name starting with dots",
            &["EdgeName"],
            Metadata::file("..hidden".into(), b"...", 1, None).expect("valid"),
        ),
    ];

    // ---- MetadataSeal
    let g = f.group("MetadataSeal", json!({}));
    let mut sealed_cases = Vec::new();
    for (i, (what, flags, m)) in samples.into_iter().enumerate() {
        let node_key = SecretKey::generate(&mut rng);
        let node_id = NodeId::generate(&mut rng);
        let revision = [3u64, 0, 1, 1 << 40, u64::MAX][i];
        rng.take();
        let sealed = metadata::seal_metadata(&node_key, &node_id, revision, &m, &mut rng);
        let randomness = rng.take();
        let mut v = meta_fields(&m);
        v["nodeKey"] = json!(hex::encode(node_key.expose()));
        v["nodeId"] = json!(hex::encode(node_id.as_bytes()));
        v["revision"] = json!(revision);
        v["metadataKey"] = json!(hex::encode(metadata::metadata_key(&node_key).expose()));
        v["aad"] = json!(hex::encode(metadata::metadata_aad(&node_id, revision)));
        v["plaintext"] = json!(hex::encode(encoding::encode(&m)));
        v["randomness"] = json!(hex::encode(&randomness));
        v["sealed"] = json!(hex::encode(&sealed));
        g.valid(what, flags, v);
        sealed_cases.push((node_key, node_id, revision, m, sealed));
    }

    // ---- MetadataOpen
    let g = f.group("MetadataOpen", json!({}));
    let base = |k: &SecretKey, id: &NodeId, rev: u64, sealed: &[u8]| {
        json!({ "nodeKey": hex::encode(k.expose()), "nodeId": hex::encode(id.as_bytes()),
                "revision": rev, "sealed": hex::encode(sealed) })
    };
    for (k, id, rev, m, sealed) in &sealed_cases {
        let mut v = base(k, id, *rev, sealed);
        for (key, val) in meta_fields(m).as_object().expect("object") {
            v[key] = val.clone();
        }
        g.valid("opens", &["Valid"], v);
    }
    let (k, id, rev, _, sealed) = &sealed_cases[0];
    let (k, id, rev) = (k.clone(), *id, *rev);
    let df = "decryption-failed";
    let n = seal::SEAL_NONCE_LEN;
    let c = n + seal::COMMITMENT_LEN;
    for (what, pos) in [
        ("bit flip in the nonce", 0),
        ("bit flip in the commitment", n),
        ("bit flip in the ciphertext", c),
        ("bit flip in the tag", sealed.len() - 1),
    ] {
        let mut bad = sealed.clone();
        bad[pos] ^= 0x01;
        g.invalid(what, &["ModifiedSealed"], df, base(&k, &id, rev, &bad));
    }
    let other_key = SecretKey::generate(&mut rng);
    let other_id = NodeId::generate(&mut rng);
    g.invalid(
        "wrong node key",
        &["WrongKey"],
        df,
        base(&other_key, &id, rev, sealed),
    );
    g.invalid(
        "wrong node id",
        &["WrongNodeId"],
        df,
        base(&k, &other_id, rev, sealed),
    );
    g.invalid(
        "older revision",
        &["WrongRevision"],
        df,
        base(&k, &id, rev - 1, sealed),
    );
    g.invalid(
        "newer revision",
        &["WrongRevision"],
        df,
        base(&k, &id, rev + 1, sealed),
    );
    g.invalid(
        "truncated below the seal overhead",
        &["Truncated"],
        df,
        base(&k, &id, rev, &sealed[..seal::SEAL_OVERHEAD - 1]),
    );
    let mut big = sealed.clone();
    big.resize(metadata::MAX_SEALED_METADATA_LEN + 1, 0);
    g.invalid(
        "1025 bytes",
        &["Oversize"],
        "limit-exceeded",
        base(&k, &id, rev, &big),
    );

    // Invalid plaintexts, sealed correctly.
    let digest = Some(coffer_core::primitives::content_digest(b"x"));
    let good = RawMeta {
        ty: 10,
        version: 1,
        name: b"a.txt",
        size: 1,
        mtime: 5,
        media_type: Some("text/plain"),
        digest,
    };
    assert_eq!(
        encoding::decode::<Metadata>(&good.encode()).map(|m| m.name().to_owned()),
        Ok("a.txt".to_owned()),
        "RawMeta encodes like Metadata"
    );
    let long_name = vec![b'n'; 256];
    let long_media = format!("text/{}", "x".repeat(123));
    let mut non_canonical_size = good.encode();
    // size 1 as a one-byte-argument integer (0x18 0x01) instead of 0x01.
    let pos = 3 + 1 + 5;
    assert_eq!(non_canonical_size[pos], 0x01);
    non_canonical_size.splice(pos..=pos, [0x18, 0x01]);
    let mut trailing = good.encode();
    trailing.push(0x00);
    let bad_plaintexts: Vec<(&str, &[&str], &str, Vec<u8>)> = vec![
        (
            "empty name",
            &["InvalidName"],
            "invalid-value",
            RawMeta { name: b"", ..good }.encode(),
        ),
        (
            "name \".\"",
            &["InvalidName"],
            "invalid-value",
            RawMeta { name: b".", ..good }.encode(),
        ),
        (
            "name \"..\"",
            &["InvalidName"],
            "invalid-value",
            RawMeta {
                name: b"..",
                ..good
            }
            .encode(),
        ),
        (
            "name with '/'",
            &["InvalidName"],
            "invalid-value",
            RawMeta {
                name: b"a/b",
                ..good
            }
            .encode(),
        ),
        (
            "name \"/\"",
            &["InvalidName"],
            "invalid-value",
            RawMeta { name: b"/", ..good }.encode(),
        ),
        (
            "name with NUL",
            &["InvalidName"],
            "invalid-value",
            RawMeta {
                name: b"a\0b",
                ..good
            }
            .encode(),
        ),
        (
            "256-byte name",
            &["InvalidName"],
            "invalid-value",
            RawMeta {
                name: &long_name,
                ..good
            }
            .encode(),
        ),
        (
            "name not UTF-8",
            &["InvalidName"],
            "malformed",
            RawMeta {
                name: b"a\xffb",
                ..good
            }
            .encode(),
        ),
        (
            "128-byte media type",
            &["InvalidField"],
            "invalid-value",
            RawMeta {
                media_type: Some(&long_media),
                ..good
            }
            .encode(),
        ),
        (
            "media type with a parameter",
            &["InvalidField"],
            "invalid-value",
            RawMeta {
                media_type: Some("text/plain;charset=utf-8"),
                ..good
            }
            .encode(),
        ),
        (
            "media type in upper case",
            &["InvalidField"],
            "invalid-value",
            RawMeta {
                media_type: Some("Text/Plain"),
                ..good
            }
            .encode(),
        ),
        (
            "media type without subtype",
            &["InvalidField"],
            "invalid-value",
            RawMeta {
                media_type: Some("text"),
                ..good
            }
            .encode(),
        ),
        (
            "no digest but size 1 (a folder with a size)",
            &["InvalidField"],
            "invalid-value",
            RawMeta {
                digest: None,
                ..good
            }
            .encode(),
        ),
        (
            "size as a non-shortest integer",
            &["NonCanonical"],
            "non-canonical",
            non_canonical_size,
        ),
        (
            "trailing byte after the structure",
            &["TrailingBytes"],
            "trailing-bytes",
            trailing,
        ),
        (
            "type code 11 (MetadataAad's)",
            &["WrongType"],
            "wrong-type",
            RawMeta { ty: 11, ..good }.encode(),
        ),
        (
            "version 2",
            &["WrongType"],
            "unknown-version",
            RawMeta { version: 2, ..good }.encode(),
        ),
    ];
    let key = metadata::metadata_key(&k);
    let aad = metadata::metadata_aad(&id, rev);
    for (what, flags, failure, pt) in bad_plaintexts {
        let sealed = seal::seal(&key, METADATA_SEAL_LABEL, &aad, &pt, &mut rng);
        let mut v = base(&k, &id, rev, &sealed);
        v["plaintext"] = json!(hex::encode(&pt));
        g.invalid(what, flags, failure, v);
    }
    f.finish()
}

fn expected_metadata(test: &Test) -> anyhow::Result<Metadata> {
    let media = test
        .fields
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let digest = match test.fields.get("contentDigest").and_then(Value::as_str) {
        Some(h) => Some(<[u8; 32]>::try_from(hex::decode(h)?.as_slice())?),
        None => None,
    };
    Metadata::new(
        test.str("name")?.to_owned(),
        test.u64("size")?,
        test.u64("mtime")?,
        media,
        digest,
    )
    .map_err(|e| anyhow::anyhow!("expected metadata is invalid: {e}"))
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    let node_key = SecretKey::from_bytes(test.hex_array("nodeKey")?);
    let node_id = NodeId::from_bytes(test.hex_array("nodeId")?);
    let revision = test.u64("revision")?;
    match group.kind.as_str() {
        "MetadataSeal" => {
            let m = expected_metadata(test)?;
            anyhow::ensure!(
                metadata::metadata_key(&node_key).expose()[..] == test.hex("metadataKey")?[..],
                "metadata key differs"
            );
            anyhow::ensure!(
                metadata::metadata_aad(&node_id, revision) == test.hex("aad")?,
                "aad differs"
            );
            anyhow::ensure!(
                encoding::encode(&m) == test.hex("plaintext")?,
                "plaintext differs"
            );
            let mut rng = ReplayRng::new(test.hex("randomness")?);
            let sealed = metadata::seal_metadata(&node_key, &node_id, revision, &m, &mut rng);
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(sealed == test.hex("sealed")?, "sealed bytes differ");
            let opened = metadata::open_metadata(&node_key, &node_id, revision, &sealed)
                .map_err(|e| anyhow::anyhow!("open failed: {e}"))?;
            anyhow::ensure!(opened == m, "round trip differs");
            Ok(())
        }
        "MetadataOpen" => {
            let out = metadata::open_metadata(&node_key, &node_id, revision, &test.hex("sealed")?);
            expect(test, out, |m| {
                anyhow::ensure!(m == expected_metadata(test)?, "metadata differs");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
