//! API bodies and header parsers (spec §11) on arbitrary input.
//!
//! Properties: every body decoder of the catalogue `api::BODIES` never panics and accepts only
//! canonical encodings (re-encoding gives the input back); `ByteRange::parse` never panics and
//! accepts only satisfiable ranges; the bearer-header parsers accept only canonical tokens;
//! `Endpoint::route`, `PartBitmap::from_bytes`, `part_count` / `part_span` and
//! `ProblemKind::from_type_uri` never panic.
#![no_main]

use coffer_core::api::upload::{part_count, part_span, PartBitmap};
use coffer_core::api::{ByteRange, Endpoint, LinkAccessToken, ProblemKind, SessionToken, BODIES};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every body decoder sees every input.
    for info in BODIES {
        if let Ok(re) = (info.decode)(data) {
            assert_eq!(re, data, "{} accepted a non-canonical encoding", info.name);
            assert!(data.len() <= info.max_len);
        }
    }

    let mut u = Unstructured::new(data);
    let length: u64 = u.arbitrary().unwrap_or(0);
    let count: u64 = u.arbitrary().unwrap_or(0);
    let index: u64 = u.arbitrary().unwrap_or(0);
    let text = core::str::from_utf8(u.take_rest()).unwrap_or("");

    if let Ok(r) = ByteRange::parse(text, length) {
        assert!(r.first <= r.last && r.last < length);
        assert_eq!(r.len(), r.last - r.first + 1);
        let _ = r.content_range(length);
    }
    let small_length = length % 100_000;
    if let Ok(r) = ByteRange::parse(text, small_length) {
        assert!(r.first <= r.last && r.last < small_length);
    }
    if let Ok(t) = SessionToken::from_header(text) {
        let h = t.to_header().expect("bearer scheme");
        assert!(
            h.eq_ignore_ascii_case(text),
            "non-canonical bearer header accepted"
        );
    }
    if let Ok(t) = LinkAccessToken::from_header(text) {
        assert!(t.to_header().expect("bearer").eq_ignore_ascii_case(text));
    }
    if let Ok(t) = SessionToken::from_b64(text) {
        assert_eq!(t.to_b64(), text);
    }
    for method in ["GET", "PUT", "POST", "DELETE"] {
        let _ = Endpoint::route(method, text);
    }
    if let Some((m, p)) = text.split_once(' ') {
        let _ = Endpoint::route(m, p);
    }
    let _ = ProblemKind::from_type_uri(text);

    if let Ok(n) = part_count(length, count) {
        let _ = part_span(length, count, index % n.max(1));
        let _ = part_span(length, count, index);
        if let Ok(b) = PartBitmap::from_bytes(text.as_bytes(), n) {
            assert_eq!(b.as_bytes(), text.as_bytes());
            let _ = b.missing();
        }
    }
    if let Ok(b) = PartBitmap::from_bytes(text.as_bytes(), count % 100_000) {
        assert_eq!(b.as_bytes(), text.as_bytes());
    }
});
