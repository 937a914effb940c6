//! Tests of spec §11's bodies, problems, tokens and upload arithmetic.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng as _;

use super::upload::{part_count, part_span, PartBitmap};
use super::*;
use crate::encoding::{decode, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error};
use crate::ids::{AccountId, NodeId, UploadId};

/// The head of a top-level body: array header (one byte, fewer than 24 elements), type code
/// (0x18 + one byte, since every code is 100..=199), version (0x01).
fn split_head(bytes: &[u8]) -> (u8, u8) {
    assert!((0x80..0x98).contains(&bytes[0]), "short array head");
    assert_eq!(bytes[1], 0x18, "one-byte type code");
    assert_eq!(bytes[3], 0x01, "version 1");
    (bytes[0] & 0x1f, bytes[2])
}

#[test]
fn catalogue_is_complete_and_consistent() {
    assert_eq!(BODIES.len(), 49);
    let mut codes: Vec<u64> = BODIES.iter().map(|b| b.type_code).collect();
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    codes.dedup();
    assert!(codes.iter().all(|c| (100..=199).contains(c)));
    let mut names: Vec<&str> = BODIES.iter().map(|b| b.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), BODIES.len());
    for body in BODIES {
        let ex = (body.example)();
        let (n, code) = split_head(&ex);
        assert_eq!(usize::from(n), body.fields.len() + 2, "{}", body.name);
        assert_eq!(u64::from(code), body.type_code);
        assert!(ex.len() <= body.max_len);
        assert_eq!((body.decode)(&ex), Ok(ex.clone()), "{}", body.name);
    }
}

#[test]
fn every_body_rejects_single_faults() {
    for body in BODIES {
        let ex = (body.example)();
        let name = body.name;
        let check = |bytes: &[u8], want: DecodeError, what: &str| {
            assert_eq!((body.decode)(bytes), Err(want), "{name}: {what}");
        };
        let mut t = ex.clone();
        t.push(0x00);
        check(&t, DecodeError::TrailingBytes, "trailing byte");
        let mut t = ex.clone();
        t.extend_from_slice(&ex);
        check(&t, DecodeError::TrailingBytes, "duplicated body");
        check(&ex[..ex.len() - 1], DecodeError::Malformed, "truncated");
        check(&[], DecodeError::Malformed, "empty");
        // Non-shortest array head: 0x98 n.
        let mut t = vec![0x98, ex[0] & 0x1f];
        t.extend_from_slice(&ex[1..]);
        check(&t, DecodeError::NonCanonical, "long array head");
        // Non-shortest type code: 0x19 0x00 code.
        let mut t = vec![ex[0], 0x19, 0x00];
        t.extend_from_slice(&ex[2..]);
        check(&t, DecodeError::NonCanonical, "long type code");
        // Indefinite-length array.
        let mut t = vec![0x9f];
        t.extend_from_slice(&ex[1..]);
        t.push(0xff);
        check(&t, DecodeError::NonCanonical, "indefinite array");
        let mut t = ex.clone();
        t[2] = if t[2] == 199 { 100 } else { t[2] + 1 };
        check(&t, DecodeError::WrongType, "other type code");
        let mut t = ex.clone();
        t[3] = 0x02;
        check(&t, DecodeError::UnknownVersion, "version 2");
        let mut t = ex.clone();
        t[3] = 0x00;
        check(&t, DecodeError::UnknownVersion, "version 0");
        // One element too many, one too few.
        let mut t = ex.clone();
        t[0] += 1;
        t.push(0xf6);
        check(&t, DecodeError::Malformed, "extra element");
        // One element fewer in the head: the last field becomes trailing bytes.
        let mut t = ex.clone();
        t[0] -= 1;
        check(&t, DecodeError::TrailingBytes, "short array head");
        // A map in place of the array: outside the profile.
        let mut t = ex.clone();
        t[0] = 0xa0 | (t[0] & 0x1f);
        assert!((body.decode)(&t).is_err(), "{name}: map");
        // A tag wrapping the body.
        let mut t = vec![0xd8, 0x18];
        t.extend_from_slice(&ex);
        check(&t, DecodeError::Malformed, "tagged");
    }
}

#[test]
fn missing_fields_are_rejected() {
    let enc = NodeDeleteRequest {
        expected_revision: 8,
    }
    .to_bytes();
    assert_eq!(enc, [0x83, 0x18, 129, 0x01, 0x08]);
    assert_eq!(
        NodeDeleteRequest::from_bytes(&[0x82, 0x18, 129, 0x01]),
        Err(DecodeError::Malformed)
    );
    assert_eq!(
        NodeDeleteRequest::from_bytes(&[0x81, 0x18, 129]),
        Err(DecodeError::Malformed)
    );
    assert_eq!(
        NodeDeleteRequest::from_bytes(&[0x80]),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn bodies_over_their_limit_are_refused_unread() {
    let big = NodeDeleteRequest {
        expected_revision: 1,
    };
    let mut bytes = big.to_bytes();
    bytes.resize(MAX_SMALL_BODY + 1, 0);
    assert_eq!(
        NodeDeleteRequest::from_bytes(&bytes),
        Err(DecodeError::Malformed)
    );
    let huge = LoginStartRequest {
        username: Username::new("alice").expect("valid"),
        credential_request: ByteBuf::from(vec![0u8; MAX_SMALL_BODY]),
    };
    assert_eq!(
        LoginStartRequest::from_bytes(&huge.to_bytes()),
        Err(DecodeError::Malformed)
    );
    let fits = NodeCreateRequest {
        signed_node: ByteBuf::from(vec![0u8; MAX_RECORD_BODY - 16]),
    };
    let enc = fits.to_bytes();
    assert!(enc.len() <= MAX_RECORD_BODY);
    assert_eq!(NodeCreateRequest::from_bytes(&enc), Ok(fits));
}

#[test]
fn wrong_field_types_are_rejected() {
    // Username as a byte string instead of text.
    let ok = RegisterStartRequest {
        username: Username::new("alice").expect("valid"),
        registration_request: ByteBuf::from(vec![1, 2, 3]),
    }
    .to_bytes();
    let mut bad = ok.clone();
    assert_eq!(bad[4], 0x65); // tstr(5)
    bad[4] = 0x45;
    assert_eq!(
        RegisterStartRequest::from_bytes(&bad),
        Err(DecodeError::Malformed)
    );
    // Upper case, too short, bad edge characters.
    for name in ["Alice", "al", "-alice", "alice.", "al ice", "ålice"] {
        assert_eq!(
            Username::new(name),
            Err(DecodeError::InvalidValue),
            "{name}"
        );
    }
    for name in ["abc", "a-b.c_d", "0day", &"x".repeat(64)] {
        assert!(Username::new(name).is_ok(), "{name}");
    }
    assert!(Username::new(&"x".repeat(65)).is_err());
    let mut bad = ok.clone();
    bad[5] = b'A';
    assert_eq!(
        RegisterStartRequest::from_bytes(&bad),
        Err(DecodeError::InvalidValue)
    );

    // Enumerations out of range.
    let req = ReauthStartRequest {
        purpose: ReauthPurpose::AccountDeletion,
        credential_request: ByteBuf::from(vec![7]),
        registration_request: None,
    };
    let mut bad = req.to_bytes();
    assert_eq!(bad[4], 0x02);
    bad[4] = 0x03;
    assert_eq!(
        ReauthStartRequest::from_bytes(&bad),
        Err(DecodeError::InvalidValue)
    );
    let mut neg = req.to_bytes();
    neg[4] = 0x20; // -1
    assert!(ReauthStartRequest::from_bytes(&neg).is_err());
    for (i, p) in ReauthPurpose::ALL.iter().enumerate() {
        assert_eq!(p.code(), i as u64);
        assert_eq!(ReauthPurpose::from_code(p.code()), Some(*p));
    }
    assert_eq!(LinkKind::from_code(3), None);

    // A 31-byte token, a 33-byte id.
    let unlock = LinkUnlockRequest {
        verifier: LinkVerifier::from_bytes([9; 32]),
    }
    .to_bytes();
    let mut short = unlock.clone();
    short[4] = 0x58;
    short[5] = 31;
    short.pop();
    assert_eq!(
        LinkUnlockRequest::from_bytes(&short),
        Err(DecodeError::InvalidValue)
    );
    let del = NodeDeleted {
        node_id: NodeId::from_bytes([1; 16]),
        deleted_nodes: 1,
    }
    .to_bytes();
    let mut long = del.clone();
    long[4] = 0x51;
    long.insert(5, 0);
    assert_eq!(
        NodeDeleted::from_bytes(&long),
        Err(DecodeError::InvalidValue)
    );

    // An integer where an optional is null-or-uint is fine; a text string is not.
    let fin = UploadFinalizeRequest {
        expected_revision: None,
        signed_node: ByteBuf::from(vec![1]),
    }
    .to_bytes();
    assert_eq!(fin[4], 0xf6);
    let mut some = fin.clone();
    some[4] = 0x05;
    assert_eq!(
        UploadFinalizeRequest::from_bytes(&some).map(|r| r.expected_revision),
        Ok(Some(5))
    );
    let mut txt = fin.clone();
    txt[4] = 0x60;
    assert_eq!(
        UploadFinalizeRequest::from_bytes(&txt),
        Err(DecodeError::Malformed)
    );
    // `undefined` is not `null`.
    let mut undef = fin.clone();
    undef[4] = 0xf7;
    assert_eq!(
        UploadFinalizeRequest::from_bytes(&undef),
        Err(DecodeError::Malformed)
    );
    // A bool must be a bool.
    let list = SessionList {
        sessions: vec![SessionInfo {
            session_id: Bytes([3; 16]),
            label: String::new(),
            created_at: 1,
            last_used_at: 2,
            expires_at: 3,
            current: true,
        }],
    }
    .to_bytes();
    let mut b = list.clone();
    let last = b.len() - 1;
    assert_eq!(b[last], 0xf5);
    b[last] = 0x01;
    assert_eq!(SessionList::from_bytes(&b), Err(DecodeError::Malformed));
}

#[test]
fn nested_structures_are_checked() {
    let body = ShareCreateRequest {
        share_id: crate::ids::ShareId::from_bytes([6; 16]),
        root_node_id: NodeId::from_bytes([4; 16]),
        signed_share: ByteBuf::from(vec![1, 2]),
        grants: vec![GrantEntry {
            member: AccountId::from_bytes([0xa; 16]),
            grant: ByteBuf::from(vec![3]),
        }],
        node_records: vec![],
    };
    let enc = body.to_bytes();
    assert_eq!(ShareCreateRequest::from_bytes(&enc), Ok(body.clone()));
    // The grant entry [member, grant] with an extra element.
    let pos = enc.len() - (1 + 17 + 2) - 1;
    assert_eq!(enc[pos], 0x82);
    let mut bad = enc.clone();
    bad[pos] = 0x83;
    bad.push(0x00);
    assert_eq!(
        ShareCreateRequest::from_bytes(&bad),
        Err(DecodeError::Malformed)
    );
    let decoded: ShareCreateRequest = decode(&enc).expect("decodes");
    assert_eq!(encode(&decoded), enc);
}

#[test]
fn problem_kinds_are_total_and_fixed() {
    let names = [
        ("malformed-body", 400),
        ("invalid-parameter", 400),
        ("wrong-length", 400),
        ("unauthenticated", 401),
        ("authentication-failed", 401),
        ("link-locked", 401),
        ("forbidden", 403),
        ("reauth-failed", 403),
        ("link-unlock-failed", 403),
        ("not-found", 404),
        ("method-not-allowed", 405),
        ("revision-mismatch", 409),
        ("already-exists", 409),
        ("username-taken", 409),
        ("upload-incomplete", 409),
        ("link-expired", 410),
        ("link-exhausted", 410),
        ("length-required", 411),
        ("payload-too-large", 413),
        ("unsupported-media-type", 415),
        ("range-not-satisfiable", 416),
        ("invalid-record", 422),
        ("rate-limited", 429),
        ("internal", 500),
        ("unavailable", 503),
        ("quota-exceeded", 507),
    ];
    assert_eq!(ProblemKind::ALL.len(), names.len());
    for (kind, (name, status)) in ProblemKind::ALL.iter().zip(names) {
        assert_eq!(kind.name(), name);
        assert_eq!(kind.status(), status);
        assert_eq!(kind.type_uri(), alloc::format!("{PROBLEM_TYPE_BASE}{name}"));
        assert!(!kind.title().is_empty());
        assert_eq!(ProblemKind::from_type_uri(kind.type_uri()), Some(*kind));
        assert_eq!(kind.is_retryable(), matches!(status, 429 | 503), "{name}");
        let p = Problem::new(*kind, "x");
        assert_eq!(p.kind(), Some(*kind));
    }
    assert_eq!(ProblemKind::from_type_uri("about:blank"), None);
    assert_eq!(
        ProblemKind::from_type_uri("https://coffer.invalid/problems/nope"),
        None
    );
}

#[test]
fn problem_json_round_trips_and_ignores_unknown_members() {
    let p = Problem::revision_mismatch(9);
    let json = serde_json::to_string(&p).expect("serializes");
    assert_eq!(
        json,
        r#"{"type":"https://coffer.invalid/problems/revision-mismatch","title":"Revision mismatch","status":409,"detail":"the expected revision is not the current one","current-revision":9}"#
    );
    assert_eq!(serde_json::from_str::<Problem>(&json).expect("parses"), p);
    let r = Problem::retry_later(ProblemKind::RateLimited, 30);
    let json = serde_json::to_value(&r).expect("serializes");
    assert_eq!(json["retry-after"], 30);
    assert_eq!(json["status"], 429);
    let extra = r#"{"type":"https://coffer.invalid/problems/not-found","title":"Not found","status":404,"detail":"","instance":"/v1/nodes/x","zz":[1]}"#;
    let parsed: Problem = serde_json::from_str(extra).expect("parses");
    assert_eq!(parsed.kind(), Some(ProblemKind::NotFound));
    // A status that contradicts the type is not trusted.
    let liar = r#"{"type":"https://coffer.invalid/problems/not-found","title":"Not found","status":200,"detail":""}"#;
    let parsed: Problem = serde_json::from_str(liar).expect("parses");
    assert_eq!(parsed.kind(), None);
}

#[test]
fn tokens_are_secret_and_strict() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let a = SessionToken::generate(&mut rng);
    let b = SessionToken::generate(&mut rng);
    assert_ne!(a, b);
    let text = a.to_b64();
    assert_eq!(text.len(), 43);
    assert_eq!(SessionToken::from_b64(&text), Ok(a.clone()));
    assert_eq!(
        SessionToken::from_header(&alloc::format!("Bearer {text}")),
        Ok(a.clone())
    );
    assert_eq!(
        SessionToken::from_header(&alloc::format!("bearer {text}")),
        Ok(a.clone())
    );
    assert_eq!(a.to_header(), Some(alloc::format!("Bearer {text}")));
    for bad in [
        alloc::format!("Bearer  {text}"),
        alloc::format!("Basic {text}"),
        alloc::format!("Bearer {text}="),
        alloc::format!("Bearer {}", &text[..42]),
        alloc::format!("Bearer{text}"),
        text.clone(),
    ] {
        assert_eq!(
            SessionToken::from_header(&bad),
            Err(DecodeError::InvalidText),
            "{bad}"
        );
    }
    // Non-canonical trailing bits in the last character.
    let zero = SessionToken::from_bytes([0; 32]);
    assert_eq!(zero.to_b64(), "A".repeat(43));
    let mut nc = "A".repeat(42);
    nc.push('B');
    assert_eq!(SessionToken::from_b64(&nc), Err(DecodeError::InvalidText));
    assert_eq!(
        hex::encode(zero.hash().as_bytes()),
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    );
    assert!(zero.matches_hash(&zero.hash()));
    assert!(!a.matches_hash(&zero.hash()));
    assert_eq!(alloc::format!("{a:?}"), "SessionToken(<redacted>)");
    let resp = LoginFinishResponse::from_bytes(&(BODIES[7].example)()).expect("example");
    assert!(!alloc::format!("{resp:?}").contains("5a5a"));
    let v = LinkVerifier::from_bytes([1; 32]);
    assert_eq!(v.to_header(), None);
    assert_eq!(
        LinkVerifier::from_header(&alloc::format!("Bearer {}", v.to_b64())),
        Err(DecodeError::InvalidText)
    );
    assert_eq!(alloc::format!("{v:?}"), "LinkVerifier(<redacted>)");
    let t = LinkAccessToken::generate(&mut rng);
    assert_eq!(
        LinkAccessToken::from_header(&t.to_header().expect("header")),
        Ok(t)
    );
}

#[test]
fn register_finish_request_carries_the_registration_and_its_root() {
    use crate::account::{check_new_account, new_account, ExportKey};
    use crate::tree::verify_node_signature;

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
    let account_id = AccountId::generate(&mut rng);
    let export_key = ExportKey::from_bytes([5; 64]);
    let mut reg =
        new_account(&export_key, "carol", account_id, 1_700_000_000, &mut rng).expect("account");
    reg.registration_upload = vec![0x5a; 192];
    let mut same = rng.clone();
    let req = RegisterFinishRequest::new(&reg, 1_700_000_007, &mut rng).expect("request");

    assert_eq!(req.account_id, account_id);
    assert_eq!(
        req.registration_upload.as_slice(),
        &reg.registration_upload[..]
    );
    assert_eq!(req.key_bundle.as_slice(), &reg.key_bundle[..]);
    assert_eq!(req.signed_identity.as_slice(), &reg.signed_identity[..]);
    // The root is the registration's own, made at the given time from the same randomness.
    let (root, signed_root) = reg.create_root(1_700_000_007, &mut same).expect("root");
    assert_eq!(req.root_node.as_slice(), &encode(&signed_root)[..]);
    // The checks the server runs on a registration finish (§11.6.2) pass.
    let identity = check_new_account(&account_id, "carol", &req.key_bundle, &req.signed_identity)
        .expect("records check");
    let record = verify_node_signature(&req.root_node).expect("root verifies");
    assert_eq!(record, root);
    assert_eq!(record.author_key().expect("author"), identity.signing_key);
    assert!(record.parent_id.is_none() && record.is_folder());
    assert_eq!(
        RegisterFinishRequest::from_bytes(&req.to_bytes()).expect("round trip"),
        req
    );
}

#[test]
fn part_size_constants_are_chunk_aligned() {
    assert_eq!(CONTENT_CHUNK_STRIDE, 65_552);
    assert_eq!(DEFAULT_PART_SIZE, 8_390_656);
    for size in [MIN_PART_SIZE, DEFAULT_PART_SIZE, MAX_PART_SIZE] {
        assert_eq!(size % CONTENT_CHUNK_STRIDE, 0);
    }
    assert_eq!(MAX_CONTENT_LENGTH, MAX_PARTS * MAX_PART_SIZE);
}

#[test]
fn part_arithmetic_boundaries() {
    let p = DEFAULT_PART_SIZE;
    assert_eq!(part_count(1, p), Ok(1));
    assert_eq!(part_count(p, p), Ok(1));
    assert_eq!(part_count(p + 1, p), Ok(2));
    assert!(matches!(part_count(0, p), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        part_count(1, MIN_PART_SIZE - CONTENT_CHUNK_STRIDE),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        part_count(1, MAX_PART_SIZE + CONTENT_CHUNK_STRIDE),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        part_count(1, p + 1),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        part_count(MAX_PARTS * MIN_PART_SIZE, MIN_PART_SIZE),
        Ok(MAX_PARTS)
    );
    assert!(matches!(
        part_count(MAX_PARTS * MIN_PART_SIZE + 1, MIN_PART_SIZE),
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(part_count(MAX_CONTENT_LENGTH, MAX_PART_SIZE), Ok(MAX_PARTS));
    assert!(part_count(MAX_CONTENT_LENGTH + 1, MAX_PART_SIZE).is_err());
    assert_eq!(part_span(2 * p + 5, p, 0), Ok((0, p)));
    assert_eq!(part_span(2 * p + 5, p, 2), Ok((2 * p, 5)));
    assert!(part_span(2 * p + 5, p, 3).is_err());
    assert_eq!(part_span(2 * p, p, 1), Ok((p, p)));
}

#[test]
fn part_bitmap_is_exact() {
    let mut m = PartBitmap::new(10).expect("small");
    assert_eq!(m.as_bytes(), &[0, 0]);
    m.set(0).expect("in range");
    m.set(9).expect("in range");
    assert!(m.set(10).is_err());
    assert_eq!(m.as_bytes(), &[0x01, 0x02]);
    assert!(m.is_set(9) && !m.is_set(8) && !m.is_set(10));
    assert_eq!(m.missing(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(!m.is_complete());
    assert_eq!(PartBitmap::from_bytes(&[0x01, 0x02], 10), Ok(m.clone()));
    assert!(PartBitmap::from_bytes(&[0x01, 0x04], 10).is_err());
    assert!(PartBitmap::from_bytes(&[0x01], 10).is_err());
    assert!(PartBitmap::from_bytes(&[0x01, 0x02, 0x00], 10).is_err());
    let full = PartBitmap::from_bytes(&[0xff], 8).expect("full");
    assert!(full.is_complete());
    assert!(PartBitmap::new(MAX_PARTS + 1).is_err());
    let example = UploadStatus::from_bytes(&(BODIES[28].example)()).expect("example");
    let map = PartBitmap::from_bytes(&example.present, example.part_count).expect("valid");
    assert_eq!(map.missing(), vec![1]);
    assert_eq!(
        part_count(example.total_length, example.part_size),
        Ok(example.part_count)
    );
}

#[test]
fn byte_ranges() {
    let r = |s: &str, n: u64| ByteRange::parse(s, n).map(|r| (r.first, r.last));
    assert_eq!(r("bytes=0-0", 10), Ok((0, 0)));
    assert_eq!(r("bytes=0-", 10), Ok((0, 9)));
    assert_eq!(r("bytes=3-100", 10), Ok((3, 9)));
    assert_eq!(r("bytes=-4", 10), Ok((6, 9)));
    assert_eq!(r("bytes=-40", 10), Ok((0, 9)));
    assert_eq!(r("bytes=9-9", 10), Ok((9, 9)));
    for bad in [
        "bytes=10-",
        "bytes=10-12",
        "bytes=5-4",
        "bytes=-0",
        "bytes=-",
        "bytes=0-1,3-4",
        "bytes= 0-1",
        "bytes=+1-2",
        "bytes=0x1-2",
        "items=0-1",
        "Bytes=0-1",
        "bytes=99999999999999999999-",
        "",
    ] {
        assert!(ByteRange::parse(bad, 10).is_err(), "{bad}");
    }
    assert!(ByteRange::parse("bytes=0-", 0).is_err());
    let x = ByteRange::parse("bytes=2-5", 10).expect("valid");
    assert_eq!(x.len(), 4);
    assert!(!x.includes_start());
    assert_eq!(x.content_range(10), "bytes 2-5/10");
    assert_eq!(ByteRange::unsatisfied_content_range(10), "bytes */10");
}

fn arb_bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn upload_create_round_trips(n in any::<[u8; 16]>(), p in any::<[u8; 16]>(), rev in any::<u64>(), total in any::<u64>(), part in any::<u64>()) {
        let v = UploadCreateRequest { node_id: NodeId::from_bytes(n), parent_id: NodeId::from_bytes(p), content_revision: rev, total_length: total, part_size: part };
        let enc = v.to_bytes();
        prop_assert_eq!(UploadCreateRequest::from_bytes(&enc), Ok(v));
    }

    #[test]
    fn node_list_round_trips(records in proptest::collection::vec(arb_bytes(300), 0..8), cursor in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=MAX_CURSOR_LEN).prop_map(ByteBuf::from))) {
        let v = NodeList { parent_id: NodeId::from_bytes([9; 16]), records, next_cursor: cursor };
        let enc = v.to_bytes();
        prop_assert_eq!(NodeList::from_bytes(&enc), Ok(v));
    }

    #[test]
    fn link_params_round_trip_iff_structurally_valid(kind in 0u64..3, exp in proptest::option::of(any::<u64>()), max in proptest::option::of(0u64..4), vh in proptest::option::of(any::<[u8; 32]>()), rec in arb_bytes(200)) {
        let kind = LinkKind::from_code(kind).expect("in range");
        let v = LinkCreateRequest { link: LinkParams {
            link_id: crate::ids::LinkId::from_bytes([1; 16]), node_id: NodeId::from_bytes([2; 16]),
            kind, link_record: rec.clone(), owner_entry: rec,
            verifier_hash: vh.map(Bytes), expires_at: exp, max_downloads: max,
        } };
        let valid = max != Some(0);
        prop_assert_eq!(v.link.check().is_ok(), valid);
        let enc = v.to_bytes();
        let want = if valid { Ok(v) } else { Err(DecodeError::InvalidValue) };
        prop_assert_eq!(LinkCreateRequest::from_bytes(&enc), want);
    }

    /// Any single-byte change to any example either fails to decode or decodes to a value whose
    /// encoding is exactly the changed bytes: no second encoding of a value is ever accepted.
    #[test]
    fn single_byte_changes_never_alias(which in 0..BODIES.len(), pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let body = &BODIES[which];
        let mut bytes = (body.example)();
        let i = pos.index(bytes.len());
        bytes[i] = bytes[i].wrapping_add(delta);
        if let Ok(re) = (body.decode)(&bytes) {
            prop_assert_eq!(re, bytes);
        }
    }

    #[test]
    fn ranges_stay_in_bounds(len in 1u64..1_000_000, a in 0u64..1_100_000, b in 0u64..1_100_000) {
        if let Ok(r) = ByteRange::parse(&alloc::format!("bytes={a}-{b}"), len) {
            prop_assert!(r.first <= r.last && r.last < len && r.first == a);
        }
        if let Ok(r) = ByteRange::parse(&alloc::format!("bytes=-{b}"), len) {
            prop_assert!(r.last == len - 1 && r.len() == b.min(len));
        }
    }

    #[test]
    fn part_spans_tile_the_content(total in 1u64..(40 * DEFAULT_PART_SIZE), k in 16u64..200) {
        let size = k * CONTENT_CHUNK_STRIDE;
        let count = part_count(total, size).expect("valid");
        let mut next = 0;
        for i in 0..count {
            let (off, len) = part_span(total, size, i).expect("in range");
            prop_assert_eq!(off, next);
            prop_assert!(len > 0 && len <= size);
            next = off + len;
        }
        prop_assert_eq!(next, total);
    }
}

#[test]
fn structural_rules_are_enforced() {
    fn rejects<T: Body + core::fmt::Debug>(v: &T) {
        assert_eq!(
            T::from_bytes(&v.to_bytes()).map(|_| ()),
            Err(DecodeError::InvalidValue),
            "{v:?}"
        );
    }
    fn example<T: Body>() -> T {
        let info = BODIES
            .iter()
            .find(|b| b.name == T::NAME)
            .expect("catalogued");
        T::from_bytes(&(info.example)()).expect("example is valid")
    }
    let mut v: LoginFinishRequest = example();
    v.session_label = "x".repeat(MAX_SESSION_LABEL_LEN);
    assert!(LoginFinishRequest::from_bytes(&v.to_bytes()).is_ok());
    v.session_label.push('x');
    rejects(&v);

    let mut v: SessionList = example();
    v.sessions[1].current = true;
    rejects(&v);
    v.sessions[0].current = false;
    v.sessions[1].current = false;
    rejects(&v);

    let mut v: ReauthStartRequest = example();
    v.registration_request = None;
    rejects(&v);
    v.purpose = ReauthPurpose::AccountDeletion;
    assert!(ReauthStartRequest::from_bytes(&v.to_bytes()).is_ok());
    v.registration_request = Some(ByteBuf::from(vec![1]));
    rejects(&v);
    let mut v: ReauthStartResponse = example();
    v.purpose = ReauthPurpose::AccountDeletion;
    rejects(&v);

    let mut v: IdentityChain = example();
    v.generations.clear();
    rejects(&v);

    let mut v: NodeList = example();
    v.next_cursor = Some(ByteBuf::new());
    rejects(&v);
    v.next_cursor = Some(ByteBuf::from(vec![0; MAX_CURSOR_LEN]));
    assert!(NodeList::from_bytes(&v.to_bytes()).is_ok());
    v.next_cursor = Some(ByteBuf::from(vec![0; MAX_CURSOR_LEN + 1]));
    rejects(&v);

    let base: UploadStatus = example();
    let mut v = base.clone();
    v.part_count = 4;
    rejects(&v);
    let mut v = base.clone();
    v.present = ByteBuf::from(vec![0b1000_0101]);
    rejects(&v);
    let mut v = base.clone();
    v.present = ByteBuf::from(vec![0b101, 0]);
    rejects(&v);
    let mut v = base.clone();
    v.part_size += 1;
    rejects(&v);
    let mut v = base.clone();
    v.node_id = None;
    rejects(&v);
    let mut v = base.clone();
    v.content_revision = 0;
    rejects(&v);

    let mut v: ShareCreateRequest = example();
    let dup = v.grants[0].clone();
    v.grants.push(dup);
    rejects(&v);

    let mut v: LinkRotateRequest = example();
    v.link.max_downloads = Some(0);
    rejects(&v);
    let mut v: LinkList = example();
    v.links[0].max_downloads = Some(0);
    rejects(&v);
    v.links[0].kind = LinkKind::Drop;
    v.links[0].max_downloads = Some(3);
    assert!(LinkList::from_bytes(&v.to_bytes()).is_ok());
    let mut v: LinkResolved = example();
    v.node = None;
    rejects(&v);
    v.kind = LinkKind::Drop;
    assert!(LinkResolved::from_bytes(&v.to_bytes()).is_ok());
    // A locked password link: password part, no record, no node.
    let mut v: LinkResolved = example();
    v.link_record = None;
    rejects(&v); // no password part, and a node
    v.node = None;
    rejects(&v); // no password part
    v.password = Some(crate::link::LinkPassword {
        m_kib: 19_456,
        t: 2,
        p: 1,
        salt: Bytes([7; 16]),
    });
    assert!(LinkResolved::from_bytes(&v.to_bytes()).is_ok());
    v.node = Some(ByteBuf::from(alloc::vec![1u8; 8]));
    rejects(&v); // a node without the record
}

#[test]
fn upload_ids_in_bodies() {
    // `UploadStatus` for a drop has no node.
    let s = UploadStatus {
        upload_id: UploadId::from_bytes([5; 16]),
        node_id: None,
        content_revision: 0,
        total_length: 1,
        part_size: MIN_PART_SIZE,
        part_count: 1,
        present: ByteBuf::from(vec![0]),
        expires_at: 0,
    };
    assert_eq!(UploadStatus::from_bytes(&s.to_bytes()), Ok(s));
}

#[test]
fn endpoint_table_matches_the_spec_and_the_catalogue() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/11-http-api.md"
    ))
    .expect("spec chapter");
    let index = &spec[spec.find("## 11.20 Endpoint index").expect("index")..];
    let rows: Vec<Vec<String>> = index
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), ENDPOINTS.len());
    let payload_text = |p: Payload| match p {
        Payload::Empty => String::new(),
        Payload::Body(n) => n.to_owned(),
        Payload::Octets => "octets".into(),
        Payload::Text => "text".into(),
    };
    for (row, e) in rows.iter().zip(ENDPOINTS) {
        assert_eq!(row[0], alloc::format!("`{} {}`", e.method, e.path));
        assert_eq!(row[1], e.auth.spec_text(), "{}", e.path);
        let req = match e.request {
            Payload::Empty => "—".to_owned(),
            Payload::Body(n) => alloc::format!("`{n}`"),
            p => payload_text(p),
        };
        assert_eq!(row[2], req, "{}", e.path);
        let statuses: Vec<u16> = row[3]
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| s.len() == 3)
            .map(|s| s.parse().expect("status"))
            .collect();
        assert_eq!(statuses, e.success, "{}", e.path);
        let resp = row[3]
            .rsplit([' ', '`'])
            .find(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()) && !s.contains('/'))
            .unwrap_or("")
            .to_owned();
        assert_eq!(resp, payload_text(e.response), "{}", e.path);
    }
    // Every body is used, and every named body exists.
    for b in BODIES {
        assert!(
            ENDPOINTS
                .iter()
                .any(|e| e.request == Payload::Body(b.name) || e.response == Payload::Body(b.name)),
            "{} unused",
            b.name
        );
    }
    for e in ENDPOINTS {
        for p in [e.request, e.response] {
            if let Payload::Body(n) = p {
                assert!(BODIES.iter().any(|b| b.name == n), "{n}");
            }
        }
    }
}

#[test]
fn routing() {
    let (e, params) = Endpoint::route("DELETE", "/v1/shares/AAAA/members/BBBB").expect("routes");
    assert_eq!(e.path, "/v1/shares/{share-id}/members/{account-id}");
    assert_eq!(params, vec!["AAAA", "BBBB"]);
    assert!(Endpoint::route("GET", "/v1/shares/AAAA/members/BBBB").is_none());
    assert!(Endpoint::route("GET", "/v1/nodes//content").is_none());
    assert!(Endpoint::route("GET", "/v1/nodes/x/content/").is_none());
    let (e, _) = Endpoint::route("GET", "/v1/root").expect("routes");
    assert_eq!(e.response, Payload::Body("NodeResponse"));
    // Templates are unambiguous: no concrete path matches two endpoints.
    for a in ENDPOINTS {
        let concrete: String = a
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "p" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let n = ENDPOINTS
            .iter()
            .filter(|b| {
                b.method == a.method
                    && Endpoint::route(b.method, &concrete).map(|(e, _)| e) == Some(*b)
            })
            .count();
        assert_eq!(n, 1, "{} {}", a.method, a.path);
    }
}
