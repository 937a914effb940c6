//! `api.json`: the request and response bodies of spec §11, the problem types, the upload shape
//! and the byte-range rules.

use serde_json::{json, Map, Value};

use coffer_core::api::upload::{part_count, part_span};
use coffer_core::api::{
    Body, BodyInfo, ByteRange, IdentityChain, LinkKind, LinkResolved, LinkRotateRequest, LoginFinishRequest,
    NodeDeleteRequest, NodeList, ProblemKind, ReauthPurpose, ReauthStartRequest, SessionToken,
    ShareCreateRequest, UploadStatus, BODIES, CONTENT_CHUNK_STRIDE, DEFAULT_PART_SIZE,
    MAX_CONTENT_LENGTH, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE,
};
use coffer_core::encoding::ByteBuf;
use coffer_core::Error;

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};

/// Builds `api.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-api",
        "api",
        &[
            "Bodies of the HTTP API (spec §11.17): deterministic CBOR arrays [type, 1, fields...].",
            "BodyDecode tests: decode `encoded` as the group's `structure` with the rules of spec §1.3 and the body limit `maxLength`; valid tests re-encode to `encoded` byte for byte and have the field values `decoded` (byte strings as hex, text as strings, nested structures as arrays, absent optionals as null); invalid tests fail with `failure`. When `padTo` is present, `encoded` is first extended with zero bytes to that length.",
            "ProblemTypes tests: the fixed type URI, status and title of every problem type (spec §11.3).",
            "SessionToken tests: the `Authorization` header value `header` carries the 32-byte `token`, whose server-side `tokenHash` is SHA-256(token) (spec §11.2.1); invalid headers are treated as no token.",
            "UploadShape tests: part count and last part length of an upload of `totalLength` ciphertext bytes in parts of `partSize` (spec §11.9.1), or the failure.",
            "ByteRange tests: the `Range` header `header` against content of `length` bytes (spec §11.9.7): the inclusive `first` and `last` bytes and the `Content-Range` value, or invalid (answered with 416).",
        ],
    );
    f.note("Valid", "BASIC", "A well-formed body.");
    f.note(
        "TrailingBytes",
        "MALFORMED",
        "A byte follows the encoded body.",
    );
    f.note("Truncated", "TRUNCATION", "The last byte is missing.");
    f.note(
        "NonCanonical",
        "MALFORMED",
        "A valid value in a non-deterministic encoding (non-shortest head, indefinite length).",
    );
    f.note(
        "WrongType",
        "WRONG_CONTEXT",
        "The type code of another structure.",
    );
    f.note(
        "UnknownVersion",
        "MALFORMED",
        "A structure version other than 1.",
    );
    f.note(
        "InvalidField",
        "MALFORMED",
        "A field value outside its permitted set: username rules, enumeration range, fixed length.",
    );
    f.note(
        "WrongFieldType",
        "MALFORMED",
        "A field of the wrong CBOR type, undefined, a map or a tag: outside the profile.",
    );
    f.note(
        "TooLong",
        "EDGE_CASE",
        "The body exceeds its limit and is refused before parsing.",
    );
    f.note("Boundary", "EDGE_CASE", "A value at a limit.");
    f.note(
        "StructuralRule",
        "MALFORMED",
        "Each field is well-formed, but the body breaks a rule relating its fields (spec §11.17, parser rules).",
    );

    for body in BODIES {
        let ex = (body.example)();
        let g = body_group(&mut f, body);
        let decoded = fields_json(&ex, body.fields).expect("examples decode");
        g.valid(
            "example",
            &["Valid"],
            json!({ "encoded": hex::encode(&ex), "decoded": decoded }),
        );
        let mut t = ex.clone();
        t.push(0);
        g.invalid(
            "trailing zero byte",
            &["TrailingBytes"],
            "trailing-bytes",
            enc(&t),
        );
        g.invalid(
            "last byte missing",
            &["Truncated"],
            "malformed",
            enc(&ex[..ex.len() - 1]),
        );
        let mut t = vec![ex[0], 0x19, 0x00];
        t.extend_from_slice(&ex[2..]);
        g.invalid(
            "type code with a 2-byte head",
            &["NonCanonical"],
            "non-canonical",
            enc(&t),
        );
        let mut t = ex.clone();
        t[2] = if t[2] == 199 { 100 } else { t[2] + 1 };
        g.invalid(
            "type code of another structure",
            &["WrongType"],
            "wrong-type",
            enc(&t),
        );
        let mut t = ex.clone();
        t[3] = 0x02;
        g.invalid("version 2", &["UnknownVersion"], "unknown-version", enc(&t));
    }

    field_faults(&mut f);
    structural_rules(&mut f);
    problems(&mut f);
    tokens(&mut f);
    upload_shapes(&mut f);
    ranges(&mut f);
    f.finish()
}

fn enc(bytes: &[u8]) -> Value {
    json!({ "encoded": hex::encode(bytes) })
}

fn field_faults(f: &mut VectorFile) {
    let by_name = |name: &str| BODIES.iter().find(|b| b.name == name).expect("known body");
    let cases: Vec<(&str, &str, &str, &str, Vec<u8>)> = vec![
        (
            "RegisterStartRequest",
            "username with an upper-case letter",
            "InvalidField",
            "invalid-value",
            hexv("8418640165416c6963654100"),
        ),
        (
            "RegisterStartRequest",
            "username of 2 characters",
            "InvalidField",
            "invalid-value",
            hexv("8418640162616c4100"),
        ),
        (
            "RegisterStartRequest",
            "username as a byte string",
            "WrongFieldType",
            "malformed",
            hexv("8418640145616c6963654100"),
        ),
        (
            "ReauthStartRequest",
            "purpose 3 is not a reauth-purpose",
            "InvalidField",
            "invalid-value",
            hexv("85186e01034107f6"),
        ),
        (
            "ReauthStartRequest",
            "purpose -1",
            "WrongFieldType",
            "malformed",
            hexv("85186e01204107f6"),
        ),
        (
            "ReauthStartRequest",
            "registration-request undefined instead of null",
            "WrongFieldType",
            "malformed",
            hexv("85186e01024107f7"),
        ),
        (
            "NodeDeleted",
            "node-id of 15 bytes",
            "InvalidField",
            "invalid-value",
            [&[0x84, 0x18, 131, 0x01, 0x4f][..], &[1u8; 15], &[0x01]].concat(),
        ),
        (
            "NodeDeleted",
            "node-id of 17 bytes",
            "InvalidField",
            "invalid-value",
            [&[0x84, 0x18, 131, 0x01, 0x51][..], &[1u8; 17], &[0x01]].concat(),
        ),
        (
            "NodeDeleteRequest",
            "expected-revision as a negative integer",
            "WrongFieldType",
            "malformed",
            hexv("8318810120"),
        ),
        (
            "NodeDeleteRequest",
            "expected-revision 5 with a 1-byte argument",
            "NonCanonical",
            "non-canonical",
            hexv("831881011805"),
        ),
        (
            "NodeDeleteRequest",
            "expected-revision missing",
            "WrongFieldType",
            "malformed",
            hexv("82188101"),
        ),
        (
            "NodeDeleteRequest",
            "a map instead of an array",
            "WrongFieldType",
            "malformed",
            hexv("a318810108"),
        ),
        (
            "NodeDeleteRequest",
            "the body wrapped in a tag",
            "WrongFieldType",
            "malformed",
            hexv("d8188318810108"),
        ),
        (
            "NodeDeleteRequest",
            "the body twice",
            "TrailingBytes",
            "trailing-bytes",
            hexv("83188101088318810108"),
        ),
        (
            "NodeResponse",
            "signed-node as an indefinite-length byte string",
            "NonCanonical",
            "non-canonical",
            hexv("83187e015f4101ff"),
        ),
        (
            "NodeResponse",
            "signed-node as a text string",
            "WrongFieldType",
            "malformed",
            hexv("83187e016161"),
        ),
        (
            "NodeResponse",
            "indefinite-length outer array",
            "NonCanonical",
            "non-canonical",
            hexv("9f187e014101ff"),
        ),
        (
            "UploadFinalizeRequest",
            "expected-revision as a float",
            "WrongFieldType",
            "malformed",
            hexv("84188a01f93c004101"),
        ),
        (
            "SessionList",
            "current as the integer 1",
            "WrongFieldType",
            "malformed",
            [
                &[0x83, 0x18, 108, 0x01, 0x81, 0x86, 0x50][..],
                &[3u8; 16],
                &[0x60, 0x01, 0x02, 0x03, 0x01],
            ]
            .concat(),
        ),
        (
            "LinkUnlockRequest",
            "verifier of 31 bytes",
            "InvalidField",
            "invalid-value",
            [&[0x83, 0x18, 165, 0x01, 0x58, 31][..], &[9u8; 31]].concat(),
        ),
    ];
    for (name, comment, flag, failure, bytes) in cases {
        let body = by_name(name);
        let g = body_group(f, body);
        g.invalid(comment, &[flag], failure, enc(&bytes));
    }

    // Link kind out of range inside the nested LinkParams.
    let link = by_name("LinkCreateRequest");
    let mut ex = (link.example)();
    // [160, 1, [link-id(17), node-id(17), kind, ...]]: kind follows the nested head and two ids.
    let kind_at = 4 + 1 + 17 + 17;
    assert_eq!(u64::from(ex[kind_at]), LinkKind::File.code());
    ex[kind_at] = 0x03;
    let g = body_group(f, link);
    g.invalid(
        "link kind 3 inside LinkParams",
        &["InvalidField"],
        "invalid-value",
        enc(&ex),
    );

    // Size limits: exactly at the limit is parsed, one byte over is refused unread.
    let del = by_name("NodeDeleteRequest");
    let g = body_group(f, del);
    let small = NodeDeleteRequest {
        expected_revision: 1,
    }
    .to_bytes();
    g.invalid(
        "one byte over the limit: refused before parsing",
        &["TooLong"],
        "malformed",
        json!({ "encoded": hex::encode(&small), "padTo": NodeDeleteRequest::MAX_LEN + 1 }),
    );
    g.invalid(
        "at the limit: parsed, then the padding is trailing bytes",
        &["TooLong", "Boundary"],
        "trailing-bytes",
        json!({ "encoded": hex::encode(&small), "padTo": NodeDeleteRequest::MAX_LEN }),
    );
}

/// The catalogue entry of body `T`.
fn info_of<T: Body>() -> &'static BodyInfo {
    BODIES
        .iter()
        .find(|b| b.name == T::NAME)
        .expect("catalogued")
}

/// A `BodyDecode` group for `body`, its parameters taken from the catalogue.
fn body_group<'a>(f: &'a mut VectorFile, body: &BodyInfo) -> &'a mut TestGroup {
    f.group(
        "BodyDecode",
        json!({ "structure": body.name, "typeCode": body.type_code, "maxLength": body.max_len,
                "fields": body.fields.iter().map(|s| s.replace('_', "-")).collect::<Vec<_>>() }),
    )
}

fn example<T: Body>() -> T {
    let info = info_of::<T>();
    T::from_bytes(&(info.example)()).expect("examples are valid")
}

fn rule_case<T: Body>(f: &mut VectorFile, comment: &str, value: &T) {
    let info = info_of::<T>();
    let g = body_group(f, info);
    g.invalid(
        comment,
        &["StructuralRule"],
        "invalid-value",
        enc(&value.to_bytes()),
    );
}

fn structural_rules(f: &mut VectorFile) {
    let mut v: LoginFinishRequest = example();
    v.session_label = "x".repeat(129);
    rule_case(f, "session-label of 129 bytes", &v);

    let mut v: ReauthStartRequest = example();
    v.registration_request = None;
    rule_case(f, "password change without a registration request", &v);
    v.purpose = ReauthPurpose::AccountDeletion;
    v.registration_request = Some(ByteBuf::from(vec![1u8; 32]));
    rule_case(f, "account deletion with a registration request", &v);

    let mut v: IdentityChain = example();
    v.generations.clear();
    rule_case(f, "empty identity chain", &v);

    let mut v: NodeList = example();
    v.next_cursor = Some(ByteBuf::new());
    rule_case(f, "empty cursor", &v);
    v.next_cursor = Some(ByteBuf::from(vec![7u8; 65]));
    rule_case(f, "cursor of 65 bytes", &v);

    let base: UploadStatus = example();
    let mut v = base.clone();
    v.part_count += 1;
    rule_case(f, "part-count does not follow from the shape", &v);
    let mut v = base.clone();
    v.present = ByteBuf::from(vec![0b0000_1101]);
    rule_case(f, "bitmap bit set past the last part", &v);
    let mut v = base.clone();
    v.present = ByteBuf::from(vec![0b0000_0101, 0]);
    rule_case(f, "bitmap one byte too long", &v);
    let mut v = base.clone();
    v.part_size = DEFAULT_PART_SIZE + 1;
    rule_case(f, "part size not a multiple of the chunk stride", &v);
    let mut v = base;
    v.node_id = None;
    rule_case(f, "drop upload with a content revision", &v);

    let mut v: ShareCreateRequest = example();
    let dup = v.grants[0].clone();
    v.grants.push(dup);
    rule_case(f, "two grants for one member", &v);

    let mut v: LinkRotateRequest = example();
    v.link.kind = LinkKind::File;
    v.link.max_downloads = Some(0);
    rule_case(f, "download limit 0", &v);

    let mut v: LinkResolved = example();
    v.node = None;
    rule_case(f, "file link resolved without its node", &v);
    // A password link resolved without a link access token (spec §11.11.3).
    let mut locked: LinkResolved = example();
    locked.link_record = None;
    locked.node = None;
    locked.password = Some(coffer_core::link::LinkPassword {
        m_kib: 19_456,
        t: 2,
        p: 1,
        salt: coffer_core::encoding::Bytes([0x79; 16]),
    });
    valid_case(f, "locked password link: parameters only", &locked);
    let mut v = locked.clone();
    v.password = None;
    rule_case(f, "locked link without its password parameters", &v);
    let mut v = locked;
    v.node = Some(coffer_core::encoding::ByteBuf::from(vec![0x41; 300]));
    rule_case(f, "locked link with a node", &v);
}

fn valid_case<T: Body>(f: &mut VectorFile, comment: &str, value: &T) {
    let info = info_of::<T>();
    let g = body_group(f, info);
    let bytes = value.to_bytes();
    let decoded = fields_json(&bytes, info.fields).expect("valid body");
    g.valid(
        comment,
        &["Valid"],
        json!({ "encoded": hex::encode(&bytes), "decoded": decoded }),
    );
}

fn hexv(s: &str) -> Vec<u8> {
    hex::decode(s).expect("generator hex")
}

fn problems(f: &mut VectorFile) {
    let g = f.group("ProblemTypes", json!({}));
    for kind in ProblemKind::ALL {
        g.valid(
            kind.name(),
            &["Valid"],
            json!({ "name": kind.name(), "type": kind.type_uri(), "status": kind.status(), "title": kind.title() }),
        );
    }
}

fn tokens(f: &mut VectorFile) {
    let mut rng = crate::rng::RecordingRng::new("coffer/v1/vectors/api/tokens");
    let g = f.group("SessionToken", json!({}));
    let mut samples = vec![
        SessionToken::from_bytes([0; 32]),
        SessionToken::from_bytes([0xff; 32]),
    ];
    samples.push(SessionToken::generate(&mut rng));
    for t in &samples {
        let header = t.to_header().expect("header form");
        g.valid(
            "bearer token",
            &["Valid"],
            json!({ "header": header, "token": hex::encode(t.expose()), "tokenHash": hex::encode(t.hash().as_bytes()) }),
        );
    }
    let t = &samples[2];
    let b64 = t.to_b64();
    g.valid(
        "scheme in lower case",
        &["Valid"],
        json!({ "header": format!("bearer {b64}"), "token": hex::encode(t.expose()), "tokenHash": hex::encode(t.hash().as_bytes()) }),
    );
    let mut nc = "A".repeat(42);
    nc.push('B');
    for (comment, header) in [
        ("padding", format!("Bearer {b64}=")),
        ("two spaces", format!("Bearer  {b64}")),
        ("no scheme", b64.clone()),
        ("another scheme", format!("Basic {b64}")),
        (
            "standard base64 alphabet",
            format!(
                "Bearer {}",
                SessionToken::from_bytes([0xfb; 32])
                    .to_b64()
                    .replace('-', "+")
                    .replace('_', "/")
            ),
        ),
        ("31 bytes", format!("Bearer {}", &b64[..42])),
        ("non-zero trailing bits", format!("Bearer {nc}")),
        ("trailing space", format!("Bearer {b64} ")),
    ] {
        g.invalid(
            comment,
            &["WrongFieldType"],
            "invalid-text",
            json!({ "header": header }),
        );
    }
}

fn upload_shapes(f: &mut VectorFile) {
    let g = f.group(
        "UploadShape",
        json!({ "chunkStride": CONTENT_CHUNK_STRIDE, "minPartSize": MIN_PART_SIZE,
                "defaultPartSize": DEFAULT_PART_SIZE, "maxPartSize": MAX_PART_SIZE,
                "maxParts": MAX_PARTS, "maxContentLength": MAX_CONTENT_LENGTH }),
    );
    let d = DEFAULT_PART_SIZE;
    let valid: &[(u64, u64, &str, &[&str])] = &[
        (1, d, "one byte", &["Boundary"]),
        (d, d, "exactly one part", &["Boundary"]),
        (d + 1, d, "one byte into the second part", &["Boundary"]),
        (
            20_004_896,
            d,
            "the worked example of spec §11.16.1",
            &["Valid"],
        ),
        (
            MAX_PARTS * MIN_PART_SIZE,
            MIN_PART_SIZE,
            "the part-count limit",
            &["Boundary"],
        ),
        (
            MAX_CONTENT_LENGTH,
            MAX_PART_SIZE,
            "the largest content",
            &["Boundary"],
        ),
    ];
    for &(total, size, comment, flags) in valid {
        let count = part_count(total, size).expect("valid");
        let (_, last) = part_span(total, size, count - 1).expect("valid");
        g.valid(
            comment,
            flags,
            json!({ "totalLength": total, "partSize": size, "partCount": count, "lastPartLength": last }),
        );
    }
    let invalid: &[(u64, u64, &str)] = &[
        (0, d, "empty upload"),
        (1, d + 1, "part size not a multiple of the stride"),
        (
            1,
            MIN_PART_SIZE - CONTENT_CHUNK_STRIDE,
            "part size below the minimum",
        ),
        (
            1,
            MAX_PART_SIZE + CONTENT_CHUNK_STRIDE,
            "part size above the maximum",
        ),
        (
            MAX_PARTS * MIN_PART_SIZE + 1,
            MIN_PART_SIZE,
            "one part too many",
        ),
        (MAX_CONTENT_LENGTH + 1, MAX_PART_SIZE, "content too long"),
    ];
    for &(total, size, comment) in invalid {
        let class = part_count(total, size).expect_err("invalid").class();
        g.invalid(
            comment,
            &["Boundary"],
            class,
            json!({ "totalLength": total, "partSize": size }),
        );
    }
}

fn ranges(f: &mut VectorFile) {
    let g = f.group("ByteRange", json!({}));
    let len = 20_004_896u64;
    for h in [
        "bytes=0-0",
        "bytes=0-",
        "bytes=16781312-",
        "bytes=20004895-20004895",
        "bytes=500-99999999",
        "bytes=-1",
        "bytes=-99999999",
    ] {
        let r = ByteRange::parse(h, len).expect("valid");
        g.valid(
            h,
            &["Valid"],
            json!({ "header": h, "length": len, "first": r.first, "last": r.last, "contentRange": r.content_range(len) }),
        );
    }
    for h in [
        "bytes=20004896-",
        "bytes=5-4",
        "bytes=-0",
        "bytes=0-1,5-6",
        "bytes= 0-1",
        "Bytes=0-1",
        "items=0-1",
        "bytes=+1-2",
        "bytes=-",
        "bytes=18446744073709551616-",
    ] {
        g.invalid(
            h,
            &["Boundary"],
            "invalid-argument",
            json!({ "header": h, "length": len }),
        );
    }
    g.invalid(
        "any range of empty content",
        &["Boundary"],
        "invalid-argument",
        json!({ "header": "bytes=0-", "length": 0 }),
    );
}

/// The field values of an encoded body, by name (the generic view of spec §11.17).
fn fields_json(bytes: &[u8], fields: &[&str]) -> anyhow::Result<Value> {
    let v: ciborium::Value = ciborium::de::from_reader(bytes)?;
    let items = match v {
        ciborium::Value::Array(items) => items,
        _ => anyhow::bail!("not an array"),
    };
    anyhow::ensure!(items.len() == fields.len() + 2, "arity");
    let mut out = Map::new();
    for (name, item) in fields.iter().zip(items.iter().skip(2)) {
        out.insert(name.replace('_', "-"), to_json(item)?);
    }
    Ok(Value::Object(out))
}

fn to_json(v: &ciborium::Value) -> anyhow::Result<Value> {
    use ciborium::Value as C;
    Ok(match v {
        C::Integer(i) => {
            let n: i128 = (*i).into();
            json!(u64::try_from(n)?)
        }
        C::Bytes(b) => json!(hex::encode(b)),
        C::Text(t) => json!(t),
        C::Bool(b) => json!(b),
        C::Null => Value::Null,
        C::Array(a) => Value::Array(a.iter().map(to_json).collect::<anyhow::Result<_>>()?),
        other => anyhow::bail!("outside the profile: {other:?}"),
    })
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    match group.kind.as_str() {
        "BodyDecode" => {
            let name = group
                .params
                .get("structure")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let body = BODIES
                .iter()
                .find(|b| b.name == name)
                .ok_or_else(|| anyhow::anyhow!("unknown structure {name}"))?;
            anyhow::ensure!(
                group.params.get("typeCode").and_then(Value::as_u64) == Some(body.type_code),
                "type code"
            );
            anyhow::ensure!(
                group.params.get("maxLength").and_then(Value::as_u64) == Some(body.max_len as u64),
                "max length"
            );
            let mut bytes = test.hex("encoded")?;
            if let Some(pad) = test.fields.get("padTo").and_then(Value::as_u64) {
                bytes.resize(usize::try_from(pad)?, 0);
            }
            let out = (body.decode)(&bytes).map_err(Error::from);
            expect(test, out, |re| {
                anyhow::ensure!(re == bytes, "re-encoding differs");
                let want = test
                    .fields
                    .get("decoded")
                    .ok_or_else(|| anyhow::anyhow!("no decoded"))?;
                anyhow::ensure!(
                    &fields_json(&re, body.fields)? == want,
                    "decoded fields differ"
                );
                Ok(())
            })
        }
        "SessionToken" => {
            let out = SessionToken::from_header(test.str("header")?).map_err(Error::from);
            expect(test, out, |t| {
                anyhow::ensure!(t.expose()[..] == test.hex("token")?[..], "token");
                anyhow::ensure!(
                    t.hash().as_bytes()[..] == test.hex("tokenHash")?[..],
                    "hash"
                );
                anyhow::ensure!(
                    coffer_core::primitives::sha256(t.expose())[..] == test.hex("tokenHash")?[..],
                    "hash is SHA-256"
                );
                Ok(())
            })
        }
        "ProblemTypes" => {
            let kind = ProblemKind::from_type_uri(test.str("type")?)
                .ok_or_else(|| anyhow::anyhow!("unknown type"))?;
            anyhow::ensure!(kind.name() == test.str("name")?, "name");
            anyhow::ensure!(u64::from(kind.status()) == test.u64("status")?, "status");
            anyhow::ensure!(kind.title() == test.str("title")?, "title");
            Ok(())
        }
        "UploadShape" => {
            let (total, size) = (test.u64("totalLength")?, test.u64("partSize")?);
            let out = part_count(total, size)
                .and_then(|n| part_span(total, size, n - 1).map(|(_, last)| (n, last)));
            expect(test, out, |(n, last)| {
                anyhow::ensure!(n == test.u64("partCount")?, "part count");
                anyhow::ensure!(last == test.u64("lastPartLength")?, "last part length");
                Ok(())
            })
        }
        "ByteRange" => {
            let len = test.u64("length")?;
            let out = ByteRange::parse(test.str("header")?, len);
            expect(test, out, |r| {
                anyhow::ensure!(r.first == test.u64("first")?, "first");
                anyhow::ensure!(r.last == test.u64("last")?, "last");
                anyhow::ensure!(r.content_range(len) == test.str("contentRange")?, "range");
                Ok(())
            })
        }
        other => anyhow::bail!("unknown group type {other}"),
    }
}
