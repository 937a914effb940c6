//! `content.json`: file bodies in 64 KiB committed STREAM chunks (spec §4).

use serde_json::json;

use coffer_core::content::{self, ContentHeader, CHUNK_LEN, ENCRYPTED_CHUNK_LEN, HEADER_LEN};
use coffer_core::encoding::{self, Bytes};
use coffer_core::primitives::{self, SecretKey};

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::{RecordingRng, ReplayRng};

/// The plaintext rule of this file: byte `i` of a message is `i mod 251`.
fn pattern(range: core::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| (i % 251) as u8).collect()
}

fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Builds a content ciphertext chunk by chunk from the spec's formulas (independently of
/// `content::encrypt`), so that faulty ciphertexts can be made: `(index, last, plaintext)`.
fn forge(key: &SecretKey, salt: [u8; 32], chunks: &[(u64, bool, &[u8])]) -> Vec<u8> {
    let (pk, commitment) = content::payload_key(key, &salt);
    let header = encoding::encode(&ContentHeader {
        salt: Bytes(salt),
        commitment: Bytes(commitment),
    });
    let mut out = header.clone();
    for (i, last, pt) in chunks {
        out.extend(primitives::chacha20poly1305_seal(
            pk.expose(),
            &nonce(*i, *last),
            &header,
            pt,
        ));
    }
    out
}

/// The chunks of `pt` as a correct encoder numbers and flags them.
fn chunks_of(pt: &[u8]) -> Vec<(u64, bool, &[u8])> {
    if pt.is_empty() {
        return vec![(0, true, &[][..])];
    }
    let n = pt.len().div_ceil(CHUNK_LEN);
    pt.chunks(CHUNK_LEN)
        .enumerate()
        .map(|(i, c)| (i as u64, i + 1 == n, c))
        .collect()
}

/// Ciphertext chunk `i` of `ct`.
fn chunk(ct: &[u8], i: usize) -> &[u8] {
    let s = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
    &ct[s..(s + ENCRYPTED_CHUNK_LEN).min(ct.len())]
}

fn flip(mut v: Vec<u8>, pos: usize, mask: u8) -> Vec<u8> {
    v[pos] ^= mask;
    v
}

/// An invalid decryption case: comment, flags, failure class, key, ciphertext.
type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a SecretKey, Vec<u8>);

/// Builds `content.json`.
#[allow(clippy::too_many_lines)]
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-content",
        "content",
        &[
            "Content encryption (spec §4): header = encode(ContentHeader{salt, commitment}) (71 bytes), then 64 KiB ChaCha20-Poly1305 chunks with nonce uint88be(i) || last-flag and aad = header.",
            "Plaintext rule: a message of `msgLen` bytes has byte i = i mod 251 (so plaintexts need no hex); a range [rangeStart, rangeEnd) of it has byte i = i mod 251 for i in the range, given as `msg`.",
            "ContentEncrypt tests: encrypt the msgLen-byte message under `key`, drawing `randomness` (the 32-byte salt) from the RNG; `payloadKey`, `commitment` and `header` are the intermediates, the output must equal `ciphertext`. Every ContentEncrypt test is also a valid ContentDecrypt test.",
            "ContentDecrypt tests: decrypt `ciphertext` under `key`; valid tests yield the msgLen-byte message, invalid tests fail with `failure`. One-shot, in-place and streaming decryption must give the same outcome.",
            "ContentRangeDecrypt tests: for a content ciphertext of `ciphertextLen` bytes with header `header`, compute the ciphertext byte range covering plaintext bytes [rangeStart, rangeEnd) (when given, it must equal [ctRangeStart, ctRangeEnd)), decrypt `chunks` (those ciphertext bytes) and output exactly `msg`.",
            "Failure classes: `truncated` for impossible lengths, a missing final chunk and data after the final chunk; decoding classes (`malformed`, `non-canonical`, `wrong-type`, `unknown-version`) for the header; `decryption-failed` for a failed commitment or chunk; `invalid-argument` for a bad range.",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed content ciphertext.");
    f.note(
        "EmptyContent",
        "EDGE_CASE",
        "Empty plaintext: one empty final chunk (16 bytes of tag).",
    );
    f.note(
        "ChunkBoundary",
        "EDGE_CASE",
        "Plaintext length at or next to a multiple of 64 KiB.",
    );
    f.note("MultiChunk", "EDGE_CASE", "More than one chunk.");
    f.note(
        "ModifiedHeader",
        "MODIFIED_CIPHERTEXT",
        "A bit of the header is flipped.",
    );
    f.note("ModifiedCommitment", "MODIFIED_CIPHERTEXT", "A bit of the salt or of the commitment is flipped: the commitment check fails before any chunk is decrypted.");
    f.note(
        "ModifiedChunk",
        "MODIFIED_CIPHERTEXT",
        "A bit of a chunk body or tag is flipped.",
    );
    f.note("WrongKey", "WRONG_KEY", "Decrypted with another file key.");
    f.note("NonCanonicalHeader", "MALFORMED", "The header is a non-canonical encoding of the same values; the first 71 bytes are decoded as the header and rejected.");
    f.note("Truncated", "TRUNCATION", "The ciphertext is cut short.");
    f.note("TruncatedAtChunkBoundary", "TRUNCATION", "Cut at a chunk boundary before the final chunk: the last remaining chunk authenticates only as non-final.");
    f.note("Extended", "TRUNCATION", "Data follows the final chunk.");
    f.note(
        "ChunkReordered",
        "MODIFIED_CIPHERTEXT",
        "Chunks swapped, dropped, duplicated or at the wrong index.",
    );
    f.note(
        "MissingFinalFlag",
        "TRUNCATION",
        "The last chunk was encrypted with flag 0x00.",
    );
    f.note(
        "EmptyFinalChunk",
        "TRUNCATION",
        "An empty final chunk follows a full chunk (an impossible length).",
    );
    f.note(
        "WrongAad",
        "WRONG_CONTEXT",
        "A chunk bound to other associated data (another header).",
    );
    f.note(
        "RangeEdge",
        "EDGE_CASE",
        "A range at a chunk boundary or at the end of the content.",
    );
    f.note(
        "InvalidRange",
        "EDGE_CASE",
        "A range that is empty, inverted or past the end.",
    );
    f.note("WrongLength", "TRUNCATION", "The total ciphertext length given for random access is impossible or wrong, or the chunk slice has the wrong length.");

    let mut rng = RecordingRng::new("coffer/v1/vectors/content");

    // ---- ContentEncrypt
    let g = f.group("ContentEncrypt", json!({}));
    let mut encrypted = Vec::new();
    for len in [0usize, 1, 40, 65_535, 65_536, 65_537, 2 * 65_536 + 5] {
        let key = SecretKey::generate(&mut rng);
        let pt = pattern(0..len);
        rng.take();
        let ct = content::encrypt(&key, &pt, &mut rng);
        let salt: [u8; 32] = rng.take().try_into().expect("32-byte salt");
        assert_eq!(
            ct,
            forge(&key, salt, &chunks_of(&pt)),
            "independent construction"
        );
        let (pk, commitment) = content::payload_key(&key, &salt);
        let flags: &[&str] = match len {
            0 => &["EmptyContent"],
            1 | 40 => &["Valid"],
            65_535 | 65_536 => &["ChunkBoundary"],
            _ => &["ChunkBoundary", "MultiChunk"],
        };
        g.valid(
            &format!("{len}-byte message"),
            flags,
            json!({ "key": hex::encode(key.expose()), "msgLen": len, "randomness": hex::encode(salt),
                    "payloadKey": hex::encode(pk.expose()), "commitment": hex::encode(commitment),
                    "header": hex::encode(&ct[..HEADER_LEN]), "ciphertext": hex::encode(&ct) }),
        );
        encrypted.push((len, key, ct));
    }

    // ---- ContentDecrypt
    let g = f.group("ContentDecrypt", json!({}));
    let other = SecretKey::generate(&mut rng);
    let base = |key: &SecretKey, ct: &[u8]| json!({ "key": hex::encode(key.expose()), "ciphertext": hex::encode(ct) });
    let valid = |key: &SecretKey, ct: &[u8], len: usize| {
        let mut v = base(key, ct);
        v["msgLen"] = json!(len);
        v
    };
    let find = |n: usize| {
        encrypted
            .iter()
            .find(|(l, _, _)| *l == n)
            .map(|(_, k, c)| (k.clone(), c.clone()))
            .expect("encrypted size")
    };
    let (k0, ct0) = find(0);
    let (k1, ct1) = find(1);
    let (k40, ct40) = find(40);
    g.valid("empty message", &["EmptyContent"], valid(&k0, &ct0, 0));
    g.valid("1-byte message", &["Valid"], valid(&k1, &ct1, 1));
    g.valid("40-byte message", &["Valid"], valid(&k40, &ct40, 40));

    // Header faults on the 40-byte ciphertext.
    let df = "decryption-failed";
    let cases: Vec<Case> = vec![
        (
            "bit flip in the array head (4 -> 5 items)",
            &["ModifiedHeader"],
            "malformed",
            &k40,
            flip(ct40.clone(), 0, 0x01),
        ),
        (
            "bit flip in the header type (1 -> 0)",
            &["ModifiedHeader"],
            "wrong-type",
            &k40,
            flip(ct40.clone(), 1, 0x01),
        ),
        (
            "header type 2",
            &["ModifiedHeader"],
            "wrong-type",
            &k40,
            flip(ct40.clone(), 1, 0x03),
        ),
        (
            "bit flip in the header version (1 -> 0)",
            &["ModifiedHeader"],
            "unknown-version",
            &k40,
            flip(ct40.clone(), 2, 0x01),
        ),
        (
            "header version 2",
            &["ModifiedHeader"],
            "unknown-version",
            &k40,
            flip(ct40.clone(), 2, 0x03),
        ),
        (
            "bit flip in the salt's byte-string head",
            &["ModifiedHeader"],
            "malformed",
            &k40,
            flip(ct40.clone(), 3, 0x01),
        ),
        (
            "bit flip in the first salt byte",
            &["ModifiedCommitment"],
            df,
            &k40,
            flip(ct40.clone(), 5, 0x01),
        ),
        (
            "bit flip in the last salt byte",
            &["ModifiedCommitment"],
            df,
            &k40,
            flip(ct40.clone(), 36, 0x80),
        ),
        (
            "bit flip in the first commitment byte",
            &["ModifiedCommitment"],
            df,
            &k40,
            flip(ct40.clone(), 39, 0x01),
        ),
        (
            "bit flip in the last commitment byte",
            &["ModifiedCommitment"],
            df,
            &k40,
            flip(ct40.clone(), 70, 0x80),
        ),
        (
            "bit flip in the chunk body",
            &["ModifiedChunk"],
            df,
            &k40,
            flip(ct40.clone(), HEADER_LEN, 0x01),
        ),
        (
            "bit flip in the last chunk-body byte",
            &["ModifiedChunk"],
            df,
            &k40,
            flip(ct40.clone(), HEADER_LEN + 39, 0x10),
        ),
        (
            "bit flip in the tag",
            &["ModifiedChunk"],
            df,
            &k40,
            flip(ct40.clone(), ct40.len() - 1, 0x80),
        ),
        (
            "bit flip in the tag of the empty chunk",
            &["ModifiedChunk", "EmptyContent"],
            df,
            &k0,
            flip(ct0.clone(), HEADER_LEN, 0x01),
        ),
        (
            "shorter than the header",
            &["Truncated"],
            "truncated",
            &k40,
            ct40[..HEADER_LEN - 1].to_vec(),
        ),
        (
            "header only, no chunk",
            &["Truncated"],
            "truncated",
            &k40,
            ct40[..HEADER_LEN].to_vec(),
        ),
        (
            "header and 15 bytes",
            &["Truncated"],
            "truncated",
            &k40,
            ct40[..HEADER_LEN + 15].to_vec(),
        ),
        (
            "empty message without its tag's last byte",
            &["Truncated", "EmptyContent"],
            "truncated",
            &k0,
            ct0[..ct0.len() - 1].to_vec(),
        ),
        (
            "last byte of the tag missing",
            &["Truncated"],
            df,
            &k40,
            ct40[..ct40.len() - 1].to_vec(),
        ),
        (
            "trailing zero byte after a short final chunk",
            &["Extended"],
            df,
            &k40,
            [&ct40[..], &[0]].concat(),
        ),
        (
            "empty message followed by a byte",
            &["Extended", "EmptyContent"],
            df,
            &k0,
            [&ct0[..], &[0]].concat(),
        ),
    ];
    for (what, flags, failure, key, ct) in cases {
        g.invalid(what, flags, failure, base(key, &ct));
    }
    g.invalid("wrong key", &["WrongKey"], df, base(&other, &ct40));

    // Non-canonical headers: same values, longer encodings.
    let mut indefinite = vec![0x9f];
    indefinite.extend_from_slice(&ct40[1..HEADER_LEN]);
    indefinite.push(0xff);
    indefinite.extend_from_slice(&ct40[HEADER_LEN..]);
    g.invalid(
        "header as an indefinite-length array",
        &["NonCanonicalHeader"],
        "non-canonical",
        base(&k40, &indefinite),
    );
    let mut long_type = vec![0x84, 0x18, 0x01];
    long_type.extend_from_slice(&ct40[2..]);
    g.invalid(
        "header type as a two-byte integer (the 71-byte prefix is cut mid-commitment)",
        &["NonCanonicalHeader"],
        "malformed",
        base(&k40, &long_type),
    );

    // Encoder faults, built chunk by chunk.
    let salt: [u8; 32] = rng.array();
    let msg40 = pattern(0..40);
    g.invalid(
        "single chunk with flag 0 (missing final flag)",
        &["MissingFinalFlag"],
        "truncated",
        base(&k40, &forge(&k40, salt, &[(0, false, &msg40)])),
    );
    g.invalid(
        "empty message with flag 0",
        &["MissingFinalFlag", "EmptyContent"],
        "truncated",
        base(&k40, &forge(&k40, salt, &[(0, false, &[])])),
    );
    g.invalid(
        "single final chunk with index 1",
        &["ChunkReordered"],
        df,
        base(&k40, &forge(&k40, salt, &[(1, true, &msg40)])),
    );
    let swapped = {
        // Header of one encryption, chunk of another under the same key.
        let a = forge(&k40, salt, &chunks_of(&msg40));
        let b = forge(&k40, rng.array(), &chunks_of(&msg40));
        [&a[..HEADER_LEN], &b[HEADER_LEN..]].concat()
    };
    g.invalid(
        "chunk from another encryption under the same key (other header as aad)",
        &["WrongAad"],
        df,
        base(&k40, &swapped),
    );

    // Multi-chunk faults.
    let (k2, ct2) = find(65_537); // chunks: 0 (full), 1 (1 byte)
    let (k3, ct3) = find(2 * 65_536 + 5); // chunks: 0, 1 (full), 2 (5 bytes)
    let (kf, ctf) = find(65_536); // one full final chunk
    let h2 = &ct2[..HEADER_LEN];
    let h3 = &ct3[..HEADER_LEN];
    let e = ENCRYPTED_CHUNK_LEN;
    let multi: Vec<Case> = vec![
        (
            "2 chunks: cut after chunk 0",
            &["TruncatedAtChunkBoundary", "MultiChunk"],
            "truncated",
            &k2,
            ct2[..HEADER_LEN + e].to_vec(),
        ),
        (
            "2 chunks: cut inside chunk 0",
            &["Truncated", "MultiChunk"],
            df,
            &k2,
            ct2[..HEADER_LEN + 1000].to_vec(),
        ),
        (
            "2 chunks: final chunk cut to 10 bytes",
            &["Truncated", "MultiChunk"],
            "truncated",
            &k2,
            ct2[..HEADER_LEN + e + 10].to_vec(),
        ),
        (
            "2 chunks: chunk 0 dropped",
            &["ChunkReordered", "MultiChunk"],
            df,
            &k2,
            [h2, chunk(&ct2, 1)].concat(),
        ),
        (
            "2 chunks: chunk 0 duplicated",
            &["ChunkReordered", "MultiChunk"],
            df,
            &k2,
            [h2, chunk(&ct2, 0), chunk(&ct2, 0), chunk(&ct2, 1)].concat(),
        ),
        (
            "2 chunks: bit flip in the final chunk",
            &["ModifiedChunk", "MultiChunk"],
            df,
            &k2,
            flip(ct2.clone(), HEADER_LEN + e, 0x01),
        ),
        (
            "2 chunks: bit flip in the tag of chunk 0",
            &["ModifiedChunk", "MultiChunk"],
            df,
            &k2,
            flip(ct2.clone(), HEADER_LEN + e - 1, 0x01),
        ),
        (
            "3 chunks: chunks 0 and 1 swapped",
            &["ChunkReordered", "MultiChunk"],
            df,
            &k3,
            [h3, chunk(&ct3, 1), chunk(&ct3, 0), chunk(&ct3, 2)].concat(),
        ),
        (
            "3 chunks: chunk 1 dropped",
            &["ChunkReordered", "MultiChunk"],
            df,
            &k3,
            [h3, chunk(&ct3, 0), chunk(&ct3, 2)].concat(),
        ),
        (
            "full final chunk followed by a byte",
            &["Extended"],
            "truncated",
            &kf,
            [&ctf[..], &[0]].concat(),
        ),
    ];
    for (what, flags, failure, key, ct) in multi {
        g.invalid(what, flags, failure, base(key, &ct));
    }
    let full = pattern(0..CHUNK_LEN);
    let salt: [u8; 32] = rng.array();
    let forged: Vec<(&str, &[&str], &str, Vec<u8>)> = vec![
        (
            "genuine chunk 1 (final) appended after a full final chunk",
            &["Extended", "MultiChunk"],
            "truncated",
            forge(&kf, salt, &[(0, true, &full), (1, true, b"x")]),
        ),
        (
            "empty final chunk after a full chunk",
            &["EmptyFinalChunk", "MultiChunk"],
            "truncated",
            forge(&kf, salt, &[(0, false, &full), (1, true, b"")]),
        ),
        (
            "full chunk then final chunk with flag 0",
            &["MissingFinalFlag", "MultiChunk"],
            "truncated",
            forge(&kf, salt, &[(0, false, &full), (1, false, b"x")]),
        ),
        (
            "final chunk at index 2 after chunk 0 (index skipped)",
            &["ChunkReordered", "MultiChunk"],
            df,
            forge(&kf, salt, &[(0, false, &full), (2, true, b"x")]),
        ),
    ];
    for (what, flags, failure, ct) in forged {
        g.invalid(what, flags, failure, base(&kf, &ct));
    }

    // ---- ContentRangeDecrypt
    let g = f.group("ContentRangeDecrypt", json!({}));
    let range = |key: &SecretKey,
                 ct: &[u8],
                 ct_len: u64,
                 r: core::ops::Range<usize>,
                 slice: &[u8]| {
        json!({ "key": hex::encode(key.expose()), "header": hex::encode(&ct[..HEADER_LEN]),
                "ciphertextLen": ct_len, "rangeStart": r.start, "rangeEnd": r.end, "chunks": hex::encode(slice) })
    };
    let n3 = ct3.len() as u64;
    let len3 = 2 * 65_536 + 5;
    for (what, flags, r, k, ct) in [
        ("first byte", &["Valid"][..], 0..1, &k3, &ct3),
        (
            "two bytes across the chunk 0/1 boundary",
            &["RangeEdge"][..],
            65_535..65_537,
            &k3,
            &ct3,
        ),
        (
            "the whole short final chunk",
            &["RangeEdge"][..],
            131_072..len3,
            &k3,
            &ct3,
        ),
        (
            "the last byte",
            &["RangeEdge"][..],
            len3 - 1..len3,
            &k3,
            &ct3,
        ),
        (
            "middle of the final chunk",
            &["Valid"][..],
            131_073..131_075,
            &k3,
            &ct3,
        ),
        (
            "last byte of a full final chunk",
            &["RangeEdge"][..],
            65_535..65_536,
            &kf,
            &ctf,
        ),
    ] {
        let n = ct.len() as u64;
        let cr = content::ciphertext_range(n, r.start as u64..r.end as u64).expect("range");
        let mut v = range(k, ct, n, r.clone(), &ct[cr.start as usize..cr.end as usize]);
        v["ctRangeStart"] = json!(cr.start);
        v["ctRangeEnd"] = json!(cr.end);
        v["msg"] = json!(hex::encode(pattern(r)));
        g.valid(what, flags, v);
    }
    let tail = content::ciphertext_range(n3, 131_072..131_073).expect("range");
    let tail_slice = &ct3[tail.start as usize..];
    let ia = "invalid-argument";
    g.invalid(
        "range ends past the plaintext",
        &["InvalidRange"],
        ia,
        range(&k3, &ct3, n3, 131_072..len3 + 1, &[]),
    );
    g.invalid(
        "empty range",
        &["InvalidRange"],
        ia,
        range(&k3, &ct3, n3, 5..5, &[]),
    );
    g.invalid(
        "inverted range",
        &["InvalidRange"],
        ia,
        range(&k3, &ct3, n3, core::ops::Range { start: 6, end: 5 }, &[]),
    );
    g.invalid(
        "range starting at the end",
        &["InvalidRange"],
        ia,
        range(&k3, &ct3, n3, len3..len3 + 1, &[]),
    );
    g.invalid(
        "impossible ciphertext length",
        &["WrongLength"],
        "truncated",
        range(&k3, &ct3, n3 - 21 + 10, 131_072..131_073, &tail_slice[..10]),
    );
    g.invalid(
        "chunk slice one byte short",
        &["WrongLength"],
        "truncated",
        range(
            &k3,
            &ct3,
            n3,
            131_072..131_073,
            &tail_slice[..tail_slice.len() - 1],
        ),
    );
    g.invalid(
        "bit flip in the chunk",
        &["ModifiedChunk"],
        df,
        range(
            &k3,
            &ct3,
            n3,
            131_072..131_073,
            &flip(tail_slice.to_vec(), 2, 0x04),
        ),
    );
    g.invalid("bit flip in the commitment", &["ModifiedCommitment"], df, {
        let h = flip(ct3[..HEADER_LEN].to_vec(), 50, 0x01);
        let mut v = range(&k3, &ct3, n3, 131_072..131_073, tail_slice);
        v["header"] = json!(hex::encode(h));
        v
    });
    g.invalid(
        "wrong key",
        &["WrongKey"],
        df,
        range(&other, &ct3, n3, 131_072..131_073, tail_slice),
    );
    g.invalid(
        "server claims a 2-chunk file and serves the real final chunk 2 as chunk 1",
        &["WrongLength", "ChunkReordered"],
        df,
        range(
            &k3,
            &ct3,
            (HEADER_LEN + e + 21) as u64,
            65_536..65_537,
            tail_slice,
        ),
    );
    let short = (HEADER_LEN + 2 * e) as u64;
    g.invalid(
        "server claims the file ends after chunk 1: chunk 1 is not final",
        &["WrongLength", "TruncatedAtChunkBoundary"],
        "truncated",
        range(&k3, &ct3, short, 65_536..65_537, chunk(&ct3, 1)),
    );
    f.finish()
}

/// Runs one-shot, sequential-into and streaming decryption and requires the same outcome.
fn decrypt_every_way(
    key: &SecretKey,
    ct: &[u8],
) -> anyhow::Result<Result<Vec<u8>, coffer_core::Error>> {
    let one = content::decrypt(key, ct);
    let n = content::plaintext_len(ct.len() as u64).map_or(0, |n| n as usize);
    let mut buf = vec![0u8; n];
    let seq =
        content::decrypt_into(key, ct, &mut buf, content::Parallelism::Sequential).map(|()| buf);
    let mut d = content::Decryptor::new(key);
    let mut out = Vec::new();
    let mut streamed = Ok(());
    for piece in ct.chunks(4099) {
        streamed = d.update(piece, &mut out);
        if streamed.is_err() {
            break;
        }
    }
    let streamed = streamed.and_then(|()| d.finish(&mut out)).map(|()| out);
    let mut inplace = ct.to_vec();
    let inplace = content::decrypt_in_place(key, &mut inplace, content::Parallelism::Sequential)
        .map(|()| inplace);
    anyhow::ensure!(one == inplace, "one-shot and in-place decryption disagree");
    anyhow::ensure!(one == seq, "one-shot and sequential decryption disagree");
    anyhow::ensure!(
        one == streamed,
        "one-shot and streaming decryption disagree"
    );
    Ok(one)
}

fn field_usize(test: &Test, name: &str) -> anyhow::Result<usize> {
    Ok(usize::try_from(test.u64(name)?)?)
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    let key = SecretKey::from_bytes(test.hex_array("key")?);
    match group.kind.as_str() {
        "ContentEncrypt" => {
            let pt = pattern(0..field_usize(test, "msgLen")?);
            let salt: [u8; 32] = test.hex_array("randomness")?;
            let (pk, commitment) = content::payload_key(&key, &salt);
            anyhow::ensure!(
                pk.expose()[..] == test.hex("payloadKey")?[..],
                "payload key differs"
            );
            anyhow::ensure!(
                commitment[..] == test.hex("commitment")?[..],
                "commitment differs"
            );
            let want = test.hex("ciphertext")?;
            let mut rng = ReplayRng::new(salt.to_vec());
            let ct = content::encrypt(&key, &pt, &mut rng);
            anyhow::ensure!(rng.fully_used(), "randomness not used exactly");
            anyhow::ensure!(
                ct[..HEADER_LEN] == test.hex("header")?[..],
                "header differs"
            );
            anyhow::ensure!(ct == want, "ciphertext differs");
            let mut rng = ReplayRng::new(salt.to_vec());
            let mut e = content::Encryptor::new(&key, &mut rng);
            let mut streamed = Vec::new();
            for piece in pt.chunks(10_007) {
                e.update(piece, &mut streamed);
            }
            e.finish(&mut streamed);
            anyhow::ensure!(streamed == want, "streaming ciphertext differs");
            let mut rng = ReplayRng::new(salt.to_vec());
            let mut inplace = pt.clone();
            content::encrypt_in_place(
                &key,
                &mut inplace,
                content::Parallelism::Sequential,
                &mut rng,
            )
            .map_err(|e| anyhow::anyhow!("encrypt_in_place failed: {e}"))?;
            anyhow::ensure!(inplace == want, "in-place ciphertext differs");
            let out = decrypt_every_way(&key, &want)?
                .map_err(|e| anyhow::anyhow!("decryption failed: {e}"))?;
            anyhow::ensure!(out == pt, "round trip differs");
            Ok(())
        }
        "ContentDecrypt" => {
            let out = decrypt_every_way(&key, &test.hex("ciphertext")?)?;
            expect(test, out, |pt| {
                anyhow::ensure!(
                    pt == pattern(0..field_usize(test, "msgLen")?),
                    "plaintext differs"
                );
                Ok(())
            })
        }
        "ContentRangeDecrypt" => {
            let ct_len = test.u64("ciphertextLen")?;
            let range = test.u64("rangeStart")?..test.u64("rangeEnd")?;
            if let (Some(s), Some(e)) = (
                test.fields.get("ctRangeStart"),
                test.fields.get("ctRangeEnd"),
            ) {
                let got = content::ciphertext_range(ct_len, range.clone())
                    .map_err(|e| anyhow::anyhow!("ciphertext_range failed: {e}"))?;
                anyhow::ensure!(
                    Some(got.start) == s.as_u64() && Some(got.end) == e.as_u64(),
                    "ciphertext range differs"
                );
            }
            let out = content::decrypt_range(
                &key,
                &test.hex("header")?,
                ct_len,
                range,
                &test.hex("chunks")?,
            );
            expect(test, out, |pt| {
                anyhow::ensure!(pt == test.hex("msg")?, "plaintext differs");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
