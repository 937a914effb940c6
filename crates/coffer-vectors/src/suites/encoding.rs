//! `encoding.json`: the encoding rules of spec §1, base64url and the CBOR profile, checked
//! against two test-only shapes (never used by the protocol):
//!
//! ```cddl
//! test-structure = [255, 1, a: uint, b: bstr .size 4, c: tstr / null, d: [* uint]]
//! nest = [* nest]
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use coffer_core::encoding::{b64url_decode, b64url_encode, decode, encode, ByteBuf, Bytes};
use coffer_core::{DecodeError, Error};

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};

coffer_core::cbor_struct! {
    /// The test-only structure of `encoding.json` (type code 255, version 1).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TestStructure (type = 255, version = 1) {
        /// An unsigned integer.
        pub a: u64,
        /// A fixed-length byte string.
        pub b: Bytes<4>,
        /// An optional text string.
        pub c: Option<String>,
        /// A list of unsigned integers.
        pub d: Vec<u64>,
    }
}

/// The test-only nesting shape `nest = [* nest]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nest(pub Vec<Nest>);

fn nest(depth: usize) -> Nest {
    let mut n = Nest(Vec::new());
    for _ in 1..depth {
        n = Nest(vec![n]);
    }
    n
}

fn ts(a: u64, c: Option<&str>, d: &[u64]) -> TestStructure {
    TestStructure {
        a,
        b: Bytes([0xde, 0xad, 0xbe, 0xef]),
        c: c.map(Into::into),
        d: d.to_vec(),
    }
}

fn to_json(t: &TestStructure) -> Value {
    json!({ "a": t.a.to_string(), "b": hex::encode(t.b.0), "c": t.c, "d": t.d })
}

fn class(e: DecodeError) -> &'static str {
    Error::from(e).class()
}

/// The canonical encoding of `ts(a, None, [])` with the head of `a` replaced by `head`.
fn with_a_head(head: &[u8]) -> Vec<u8> {
    let mut v = vec![0x86, 0x18, 0xff, 0x01];
    v.extend_from_slice(head);
    v.extend_from_slice(&[0x44, 0xde, 0xad, 0xbe, 0xef, 0xf6, 0x80]);
    v
}

/// Builds `encoding.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-encoding",
        "encoding",
        &[
            "The encoding rules of spec §1.",
            "Base64url: decode `text` as canonical unpadded base64url (RFC 4648 §5); valid tests yield `bytes` and encoding `bytes` must give `text` back; invalid tests fail with `invalid-text`.",
            "CborDecode: decode `encoded` as the test-only structure [255, 1, a: uint, b: bstr .size 4, c: tstr / null, d: [* uint]] (type code 255 is reserved for tests and never used by the protocol); valid tests yield `decoded` (`a` as a decimal string) and re-encoding gives `encoded` back; invalid tests fail with `failure`.",
            "CborDecodeNest: decode `encoded` as the test-only shape nest = [* nest]; valid tests give `depth` (the number of nested arrays); deeper than 8 is `malformed`.",
        ],
    );
    f.note("Valid", "BASIC", "A canonical input.");
    f.note("EdgeCase", "EDGE_CASE", "A boundary value: an integer or length at the edge of a head size, an empty string, the deepest permitted nesting.");
    f.note(
        "Padding",
        "MALFORMED",
        "Base64 padding characters, which Coffer's text forms never carry.",
    );
    f.note("NonCanonicalBits", "MALFORMED", "Non-zero unused bits in the last base64url character: a second spelling of the same bytes.");
    f.note(
        "WrongAlphabet",
        "MALFORMED",
        "A character of the standard base64 alphabet ('+', '/') or outside both alphabets.",
    );
    f.note(
        "Whitespace",
        "MALFORMED",
        "Whitespace or a line break inside base64url text.",
    );
    f.note(
        "BadLength",
        "MALFORMED",
        "A base64url length of 1 modulo 4, which encodes no byte string.",
    );
    f.note(
        "NonShortestHead",
        "NON_CANONICAL",
        "An integer, length or type code in a longer head than needed (RFC 8949 §4.2.1).",
    );
    f.note(
        "Indefinite",
        "NON_CANONICAL",
        "An indefinite-length array, byte string or text string.",
    );
    f.note("ForbiddenItem", "MALFORMED", "A map, tag, floating-point number, `undefined` or other simple value: outside the Coffer profile.");
    f.note("WrongMajorType", "MALFORMED", "A well-formed item of another major type than the field requires (e.g. an array of integers for a byte string).");
    f.note(
        "WrongType",
        "WRONG_TYPE",
        "The structure's type code is not the expected one.",
    );
    f.note(
        "UnknownVersion",
        "VERSION",
        "The structure's version is not supported.",
    );
    f.note(
        "TrailingBytes",
        "MALFORMED",
        "Bytes after the single encoded item.",
    );
    f.note(
        "WrongArity",
        "MALFORMED",
        "An array with fewer or more elements than the structure has.",
    );
    f.note(
        "WrongLength",
        "MALFORMED",
        "A fixed-length byte string of another length.",
    );
    f.note(
        "Truncated",
        "TRUNCATION",
        "The input ends inside an item, or a length exceeds the input.",
    );
    f.note(
        "InvalidUtf8",
        "MALFORMED",
        "A text string that is not valid UTF-8.",
    );
    f.note("TooDeep", "RESOURCE_LIMIT", "Arrays nested deeper than 8.");
    f.note(
        "Reserved",
        "MALFORMED",
        "A reserved additional-information value (28-30) or a stray break code.",
    );

    base64url_group(&mut f);
    cbor_group(&mut f);
    nest_group(&mut f);
    byte_buf_group(&mut f);
    f.finish()
}

fn base64url_group(f: &mut VectorFile) {
    let g = f.group("Base64url", json!({}));
    let valid: [(&str, &[u8], &str); 7] = [
        ("empty", b"", "EdgeCase"),
        ("one byte", b"\x00", "EdgeCase"),
        ("two bytes", b"\x00\x01", "EdgeCase"),
        ("three bytes, no partial group", b"abc", "Valid"),
        ("the URL-safe characters", b"\xfb\xff", "Valid"),
        (
            "a 16-byte identifier",
            b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
            "Valid",
        ),
        ("a 32-byte key", &[0xfc; 32], "Valid"),
    ];
    for (what, bytes, flag) in valid {
        let text = b64url_encode(bytes);
        assert_eq!(b64url_decode(&text).as_deref(), Ok(bytes), "generator");
        g.valid(
            what,
            &[flag],
            json!({ "text": text, "bytes": hex::encode(bytes) }),
        );
    }
    let invalid: [(&str, &str, &str); 14] = [
        ("padding after one byte", "AA==", "Padding"),
        ("single padding character", "AAE=", "Padding"),
        ("padding only", "====", "Padding"),
        (
            "non-zero trailing bits after one byte",
            "AB",
            "NonCanonicalBits",
        ),
        (
            "non-zero trailing bits after two bytes",
            "AAF",
            "NonCanonicalBits",
        ),
        ("'+' of the standard alphabet", "+_8", "WrongAlphabet"),
        ("'/' of the standard alphabet", "-/8", "WrongAlphabet"),
        ("a character in neither alphabet", "AA*A", "WrongAlphabet"),
        ("leading space", " AAA", "Whitespace"),
        ("trailing line feed", "AAA\n", "Whitespace"),
        ("space inside", "AA AA", "Whitespace"),
        ("one character", "A", "BadLength"),
        ("five characters", "AAAAA", "BadLength"),
        ("a NUL character", "AA\u{0}A", "WrongAlphabet"),
    ];
    for (what, text, flag) in invalid {
        assert_eq!(
            b64url_decode(text),
            Err(DecodeError::InvalidText),
            "generator: {what}"
        );
        g.invalid(what, &[flag], "invalid-text", json!({ "text": text }));
    }
}

fn cbor_group(f: &mut VectorFile) {
    let g = f.group(
        "CborDecode",
        json!({ "shape": "[255, 1, a: uint, b: bstr .size 4, c: tstr / null, d: [* uint]]" }),
    );
    let valid: [(&str, TestStructure, &str); 14] = [
        ("a = 0", ts(0, None, &[]), "EdgeCase"),
        (
            "a = 23, the largest one-byte head",
            ts(23, None, &[]),
            "EdgeCase",
        ),
        (
            "a = 24, the smallest two-byte head",
            ts(24, None, &[]),
            "EdgeCase",
        ),
        ("a = 255", ts(255, None, &[]), "EdgeCase"),
        (
            "a = 256, the smallest three-byte head",
            ts(256, None, &[]),
            "EdgeCase",
        ),
        ("a = 65535", ts(65535, None, &[]), "EdgeCase"),
        (
            "a = 65536, the smallest five-byte head",
            ts(65536, None, &[]),
            "EdgeCase",
        ),
        (
            "a = 2^32 - 1",
            ts(u64::from(u32::MAX), None, &[]),
            "EdgeCase",
        ),
        (
            "a = 2^32, the smallest nine-byte head",
            ts(1 << 32, None, &[]),
            "EdgeCase",
        ),
        ("a = 2^64 - 1", ts(u64::MAX, None, &[]), "EdgeCase"),
        ("empty text", ts(1, Some(""), &[]), "EdgeCase"),
        (
            "multi-byte UTF-8 text",
            ts(1, Some("h\u{e9}llo \u{1f512}"), &[1, 2, 3]),
            "Valid",
        ),
        (
            "24-byte text: two-byte length head",
            ts(7, Some("abcdefghijklmnopqrstuvwx"), &[]),
            "EdgeCase",
        ),
        ("24-element list", ts(7, None, &[0; 24]), "EdgeCase"),
    ];
    let reference = encode(&ts(1, Some("hi"), &[5]));
    for (what, t, flag) in valid {
        let enc = encode(&t);
        assert_eq!(decode::<TestStructure>(&enc), Ok(t.clone()), "generator");
        g.valid(
            what,
            &[flag],
            json!({ "encoded": hex::encode(&enc), "decoded": to_json(&t) }),
        );
    }
    assert_eq!(hex::encode(&reference), "8618ff010144deadbeef6268698105");

    let mut invalid: Vec<(String, Vec<u8>, &str, &str)> = Vec::new();
    let mut add = |what: &str, bytes: Vec<u8>, flag: &'static str, failure: &'static str| {
        invalid.push((what.to_owned(), bytes, flag, failure));
    };
    let hx = |s: &str| hex::decode(s.replace(' ', "")).expect("constant hex");
    // Non-shortest integer heads.
    add(
        "a = 0 in a two-byte head",
        with_a_head(&hx("1800")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 0 in a three-byte head",
        with_a_head(&hx("190000")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 0 in a five-byte head",
        with_a_head(&hx("1a00000000")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 0 in a nine-byte head",
        with_a_head(&hx("1b0000000000000000")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 23 in a two-byte head",
        with_a_head(&hx("1817")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 255 in a three-byte head",
        with_a_head(&hx("1900ff")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 65535 in a five-byte head",
        with_a_head(&hx("1a0000ffff")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "a = 2^32 - 1 in a nine-byte head",
        with_a_head(&hx("1b00000000ffffffff")),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "type code 255 in a three-byte head",
        hx("86 1900ff 01 01 44deadbeef f6 80"),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "array length in a two-byte head",
        hx("98 06 18ff 01 01 44deadbeef f6 80"),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "byte-string length in a two-byte head",
        hx("86 18ff 01 01 5804deadbeef f6 80"),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "text length in a two-byte head",
        hx("86 18ff 01 01 44deadbeef 7802 6869 80"),
        "NonShortestHead",
        "non-canonical",
    );
    add(
        "list length in a three-byte head",
        hx("86 18ff 01 01 44deadbeef f6 990000"),
        "NonShortestHead",
        "non-canonical",
    );
    // Indefinite lengths.
    add(
        "indefinite-length outer array",
        hx("9f 18ff 01 01 44deadbeef f6 80 ff"),
        "Indefinite",
        "non-canonical",
    );
    add(
        "indefinite-length byte string",
        hx("86 18ff 01 01 5f 42dead 42beef ff f6 80"),
        "Indefinite",
        "non-canonical",
    );
    add(
        "indefinite-length text string",
        hx("86 18ff 01 01 44deadbeef 7f 626869 ff 80"),
        "Indefinite",
        "non-canonical",
    );
    add(
        "indefinite-length list",
        hx("86 18ff 01 01 44deadbeef f6 9f 05 ff"),
        "Indefinite",
        "non-canonical",
    );
    // Items outside the profile.
    add(
        "a map instead of the structure",
        hx("a0"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a map in place of c",
        hx("86 18ff 01 01 44deadbeef a0 80"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a tag around the structure",
        hx("d818 86 18ff 01 01 44deadbeef f6 80"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a tag around a",
        hx("86 18ff 01 c1 01 44deadbeef f6 80"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a half-precision float for a",
        with_a_head(&hx("f93c00")),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a single-precision float for a",
        with_a_head(&hx("fa3f800000")),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "a double-precision float for a",
        with_a_head(&hx("fb3ff0000000000000")),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "undefined in place of null",
        hx("86 18ff 01 01 44deadbeef f7 80"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "simple value 16 in place of c",
        hx("86 18ff 01 01 44deadbeef f0 80"),
        "ForbiddenItem",
        "malformed",
    );
    add(
        "two-byte simple value in place of c",
        hx("86 18ff 01 01 44deadbeef f820 80"),
        "ForbiddenItem",
        "malformed",
    );
    // Wrong major types.
    add(
        "false in place of c",
        hx("86 18ff 01 01 44deadbeef f4 80"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "null in place of a",
        with_a_head(&hx("f6")),
        "WrongMajorType",
        "malformed",
    );
    add(
        "a negative integer for a",
        with_a_head(&hx("20")),
        "WrongMajorType",
        "malformed",
    );
    add(
        "a text string for b",
        hx("86 18ff 01 01 64deadbeef f6 80"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "an array of four integers for b",
        hx("86 18ff 01 01 84 18de 18ad 18be 18ef f6 80"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "a byte string for c",
        hx("86 18ff 01 01 44deadbeef 426869 80"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "an integer for the list d",
        hx("86 18ff 01 01 44deadbeef f6 05"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "a byte string for the list d (its bytes must not be read as the elements)",
        hx("86 18ff 01 01 44deadbeef f6 43010203"),
        "WrongMajorType",
        "malformed",
    );
    add(
        "the whole structure wrapped in a byte string",
        hx("4c 86 18ff 01 01 44deadbeef f6 80"),
        "WrongMajorType",
        "malformed",
    );
    // Structure type and version.
    add(
        "type code 254",
        hx("86 18fe 01 01 44deadbeef f6 80"),
        "WrongType",
        "wrong-type",
    );
    add(
        "type code 0",
        hx("86 00 01 01 44deadbeef f6 80"),
        "WrongType",
        "wrong-type",
    );
    add(
        "version 2",
        hx("86 18ff 02 01 44deadbeef f6 80"),
        "UnknownVersion",
        "unknown-version",
    );
    add(
        "version 0",
        hx("86 18ff 00 01 44deadbeef f6 80"),
        "UnknownVersion",
        "unknown-version",
    );
    // Trailing bytes, arity, lengths, truncation.
    let mut trailing = reference.clone();
    trailing.push(0x00);
    add(
        "one trailing zero byte",
        trailing,
        "TrailingBytes",
        "trailing-bytes",
    );
    add(
        "the structure twice",
        [&reference[..], &reference[..]].concat(),
        "TrailingBytes",
        "trailing-bytes",
    );
    add(
        "five elements",
        hx("85 18ff 01 01 44deadbeef f6"),
        "WrongArity",
        "malformed",
    );
    add(
        "seven elements",
        hx("87 18ff 01 01 44deadbeef f6 80 00"),
        "WrongArity",
        "malformed",
    );
    add("an empty array", hx("80"), "WrongArity", "malformed");
    add(
        "b of 3 bytes",
        hx("86 18ff 01 01 43deadbe f6 80"),
        "WrongLength",
        "invalid-value",
    );
    add(
        "b of 5 bytes",
        hx("86 18ff 01 01 45deadbeef00 f6 80"),
        "WrongLength",
        "invalid-value",
    );
    add("empty input", Vec::new(), "Truncated", "malformed");
    add(
        "the first byte only",
        reference[..1].to_vec(),
        "Truncated",
        "malformed",
    );
    add(
        "the last byte missing",
        reference[..reference.len() - 1].to_vec(),
        "Truncated",
        "malformed",
    );
    add(
        "an integer head cut short",
        hx("86 18ff 01 1a0000"),
        "Truncated",
        "malformed",
    );
    add(
        "a byte-string length beyond the input",
        hx("86 18ff 01 01 5b00ffffffffffffff deadbeef f6 80"),
        "Truncated",
        "malformed",
    );
    add(
        "an array length beyond the input",
        hx("9b 00ffffffffffffff 18ff"),
        "Truncated",
        "malformed",
    );
    // Text.
    add(
        "invalid UTF-8: a lone continuation byte",
        hx("86 18ff 01 01 44deadbeef 62 68 80 80"),
        "InvalidUtf8",
        "malformed",
    );
    add(
        "invalid UTF-8: an overlong encoding of '/'",
        hx("86 18ff 01 01 44deadbeef 62 c0af 80"),
        "InvalidUtf8",
        "malformed",
    );
    add(
        "invalid UTF-8: a UTF-16 surrogate",
        hx("86 18ff 01 01 44deadbeef 63 eda080 80"),
        "InvalidUtf8",
        "malformed",
    );
    // Reserved encodings.
    add(
        "reserved additional information 28",
        with_a_head(&hx("1c")),
        "Reserved",
        "malformed",
    );
    add("a stray break code", hx("ff"), "Reserved", "malformed");

    for (what, bytes, flag, failure) in invalid {
        let got = decode::<TestStructure>(&bytes).map_err(class);
        assert_eq!(got, Err(failure), "generator: {what}");
        g.invalid(
            &what,
            &[flag],
            failure,
            json!({ "encoded": hex::encode(&bytes) }),
        );
    }
}

fn nest_group(f: &mut VectorFile) {
    let g = f.group("CborDecodeNest", json!({ "shape": "nest = [* nest]" }));
    for depth in [1usize, 2, 8] {
        let enc = encode(&nest(depth));
        assert_eq!(decode::<Nest>(&enc), Ok(nest(depth)), "generator");
        let flag = if depth == 8 { "EdgeCase" } else { "Valid" };
        g.valid(
            &format!("depth {depth}"),
            &[flag],
            json!({ "encoded": hex::encode(&enc), "depth": depth }),
        );
    }
    for depth in [9usize, 64] {
        let enc = vec![0x81; depth - 1]
            .into_iter()
            .chain([0x80])
            .collect::<Vec<u8>>();
        assert_eq!(
            decode::<Nest>(&enc).map_err(class),
            Err("malformed"),
            "generator"
        );
        g.invalid(
            &format!("depth {depth}"),
            &["TooDeep"],
            "malformed",
            json!({ "encoded": hex::encode(&enc) }),
        );
    }
}

/// `bstr` (the variable-length byte string of every record, `ByteBuf`): only major type 2.
fn byte_buf_group(f: &mut VectorFile) {
    let g = f.group("CborDecodeBytes", json!({ "shape": "bstr" }));
    for (comment, bytes) in [
        ("empty byte string", vec![]),
        ("three bytes", vec![1u8, 2, 3]),
        ("24 bytes, the smallest two-byte length head", vec![0xab; 24]),
    ] {
        let enc = encode(&ByteBuf::from(bytes.clone()));
        assert_eq!(decode::<ByteBuf>(&enc).map(ByteBuf::into_vec), Ok(bytes.clone()), "generator");
        g.valid(
            comment,
            &["Valid"],
            json!({ "encoded": hex::encode(&enc), "bytes": hex::encode(&bytes) }),
        );
    }
    for (comment, enc, flag, failure) in [
        ("an array of integers [1, 2, 3]", vec![0x83u8, 1, 2, 3], "WrongMajorType", "malformed"),
        ("a text string \"abc\"", vec![0x63, 0x61, 0x62, 0x63], "WrongMajorType", "malformed"),
        ("an unsigned integer", vec![0x01], "WrongMajorType", "malformed"),
        ("null", vec![0xf6], "WrongMajorType", "malformed"),
        ("length 3 with a one-byte head", vec![0x58, 0x03, 1, 2, 3], "NonShortestHead", "non-canonical"),
        ("indefinite-length byte string", vec![0x5f, 0x43, 1, 2, 3, 0xff], "Indefinite", "non-canonical"),
    ] {
        assert_eq!(decode::<ByteBuf>(&enc).map_err(class), Err(failure), "generator: {comment}");
        g.invalid(comment, &[flag], failure, json!({ "encoded": hex::encode(&enc) }));
    }
}

fn nest_depth(n: &Nest) -> usize {
    1 + n.0.iter().map(nest_depth).max().unwrap_or(0)
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "Base64url" => {
            let text = test.str("text")?;
            let outcome = b64url_decode(text).map_err(Error::from);
            expect(test, outcome, |bytes| {
                anyhow::ensure!(bytes == test.hex("bytes")?, "bytes differ");
                anyhow::ensure!(b64url_encode(&bytes) == text, "encoding differs");
                Ok(())
            })
        }
        "CborDecode" => {
            let enc = test.hex("encoded")?;
            let outcome = decode::<TestStructure>(&enc).map_err(Error::from);
            expect(test, outcome, |t| {
                let want = test
                    .fields
                    .get("decoded")
                    .ok_or_else(|| anyhow::anyhow!("missing decoded"))?;
                anyhow::ensure!(&to_json(&t) == want, "decoded value differs");
                anyhow::ensure!(encode(&t) == enc, "re-encoding differs");
                Ok(())
            })
        }
        "CborDecodeNest" => {
            let enc = test.hex("encoded")?;
            let outcome = decode::<Nest>(&enc).map_err(Error::from);
            expect(test, outcome, |n| {
                anyhow::ensure!(nest_depth(&n) as u64 == test.u64("depth")?, "depth differs");
                anyhow::ensure!(encode(&n) == enc, "re-encoding differs");
                Ok(())
            })
        }
        "CborDecodeBytes" => {
            let enc = test.hex("encoded")?;
            let outcome = decode::<ByteBuf>(&enc).map_err(Error::from);
            expect(test, outcome, |b| {
                anyhow::ensure!(b.as_slice() == test.hex("bytes")?.as_slice(), "bytes differ");
                anyhow::ensure!(encode(&b) == enc, "re-encoding differs");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
