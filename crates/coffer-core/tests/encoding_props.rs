//! Property tests of spec §1 against a test-only structure (the shape of `encoding.json`):
//!
//! ```cddl
//! test-structure = [255, 1, a: uint, b: bstr .size 4, c: tstr / null, d: [* uint]]
//! ```
//!
//! - `decode(encode(x)) == x`, and an independent encoder written from §1.2 produces the same bytes;
//! - every non-shortest head (of the type code, the version, an integer or a length) is rejected
//!   as `non-canonical`;
//! - arbitrary bytes and single-byte mutations never panic, and anything accepted re-encodes to
//!   exactly the input;
//! - base64url round-trips and accepts only canonical text.

use coffer_core::encoding::{b64url_decode, b64url_encode, decode, encode, Bytes};
use coffer_core::DecodeError;
use proptest::prelude::*;

coffer_core::cbor_struct! {
    /// The test-only structure.
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

/// How to write one head: in its shortest form, or widened to 1, 2, 4 or 8 following bytes.
#[derive(Debug, Clone, Copy)]
enum Width {
    Shortest,
    Follow(u8),
}

/// The number of bytes following the initial byte in the shortest head for `v` (§1.2.2).
fn shortest_follow(v: u64) -> u8 {
    match v {
        0..=23 => 0,
        24..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// Writes a head of `major` for `v`; returns whether the head is longer than the shortest.
fn head(out: &mut Vec<u8>, major: u8, v: u64, w: Width) -> bool {
    let shortest = shortest_follow(v);
    let follow = match w {
        Width::Follow(n) if n > shortest => n,
        _ => shortest,
    };
    let m = major << 5;
    match follow {
        0 => out.push(m | v as u8),
        1 => out.extend_from_slice(&[m | 24, v as u8]),
        2 => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        4 => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    follow != shortest
}

/// An encoder written from spec §1.2 alone, with a width chosen for each head in document order.
/// Returns the bytes and whether any head was widened.
fn reference_encode(x: &TestStructure, widths: &[Width]) -> (Vec<u8>, bool) {
    let mut w = widths
        .iter()
        .copied()
        .chain(std::iter::repeat(Width::Shortest));
    let mut out = Vec::new();
    let mut widened = false;
    widened |= head(&mut out, 4, 6, w.next().unwrap_or(Width::Shortest));
    widened |= head(&mut out, 0, 255, w.next().unwrap_or(Width::Shortest));
    widened |= head(&mut out, 0, 1, w.next().unwrap_or(Width::Shortest));
    widened |= head(&mut out, 0, x.a, w.next().unwrap_or(Width::Shortest));
    widened |= head(&mut out, 2, 4, w.next().unwrap_or(Width::Shortest));
    out.extend_from_slice(&x.b.0);
    match &x.c {
        None => out.push(0xf6),
        Some(text) => {
            let n = text.len() as u64;
            widened |= head(&mut out, 3, n, w.next().unwrap_or(Width::Shortest));
            out.extend_from_slice(text.as_bytes());
        }
    }
    widened |= head(
        &mut out,
        4,
        x.d.len() as u64,
        w.next().unwrap_or(Width::Shortest),
    );
    for v in &x.d {
        widened |= head(&mut out, 0, *v, w.next().unwrap_or(Width::Shortest));
    }
    (out, widened)
}

fn any_u64() -> impl Strategy<Value = u64> {
    // Every head size, and its boundaries, with good probability.
    prop_oneof![
        0u64..=30,
        prop::sample::select(vec![
            23,
            24,
            255,
            256,
            65535,
            65536,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX
        ]),
        any::<u64>(),
    ]
}

fn any_structure() -> impl Strategy<Value = TestStructure> {
    (
        any_u64(),
        any::<[u8; 4]>(),
        prop::option::of(prop_oneof![".{0,30}", "[a-z]{20,40}"]),
        prop::collection::vec(any_u64(), 0..30),
    )
        .prop_map(|(a, b, c, d)| TestStructure {
            a,
            b: Bytes(b),
            c,
            d,
        })
}

fn any_width() -> impl Strategy<Value = Width> {
    prop_oneof![
        3 => Just(Width::Shortest),
        1 => prop::sample::select(vec![1u8, 2, 4, 8]).prop_map(Width::Follow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_matches_reference_encoder(x in any_structure()) {
        let enc = encode(&x);
        let (reference, widened) = reference_encode(&x, &[]);
        prop_assert!(!widened);
        prop_assert_eq!(&enc, &reference);
        prop_assert_eq!(decode::<TestStructure>(&enc), Ok(x));
    }

    #[test]
    fn every_widened_head_is_non_canonical(
        x in any_structure(),
        widths in prop::collection::vec(any_width(), 0..40),
    ) {
        let (bytes, widened) = reference_encode(&x, &widths);
        if widened {
            prop_assert_eq!(decode::<TestStructure>(&bytes), Err(DecodeError::NonCanonical));
        } else {
            prop_assert_eq!(decode::<TestStructure>(&bytes), Ok(x));
        }
    }

    #[test]
    fn exactly_one_widened_head_is_non_canonical(x in any_structure(), at in 0usize..40, follow in prop::sample::select(vec![1u8, 2, 4, 8])) {
        let mut widths = vec![Width::Shortest; 40];
        widths[at] = Width::Follow(follow);
        let (bytes, widened) = reference_encode(&x, &widths);
        if widened {
            prop_assert_eq!(decode::<TestStructure>(&bytes), Err(DecodeError::NonCanonical));
        }
    }

    #[test]
    fn random_bytes_never_panic_and_accepted_input_is_canonical(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(x) = decode::<TestStructure>(&bytes) {
            prop_assert_eq!(encode(&x), bytes);
        }
    }

    #[test]
    fn random_bytes_with_a_valid_prefix_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Start like a real structure so that the decoder gets past the first heads.
        let mut bytes = vec![0x86, 0x18, 0xff, 0x01];
        bytes.extend_from_slice(&tail);
        if let Ok(x) = decode::<TestStructure>(&bytes) {
            prop_assert_eq!(encode(&x), bytes);
        }
    }

    #[test]
    fn single_byte_changes_are_rejected_or_canonical(
        x in any_structure(),
        pos in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let mut bytes = encode(&x);
        let i = pos.index(bytes.len());
        bytes[i] = bytes[i].wrapping_add(delta);
        if let Ok(y) = decode::<TestStructure>(&bytes) {
            // A change can land on another valid value (a field's value byte), but then the
            // input is that value's one canonical encoding.
            prop_assert_ne!(&y, &x);
            prop_assert_eq!(encode(&y), bytes);
        }
    }

    #[test]
    fn trailing_and_truncated_input_is_rejected(x in any_structure(), extra in prop::collection::vec(any::<u8>(), 1..8), cut in any::<prop::sample::Index>()) {
        let enc = encode(&x);
        let mut long = enc.clone();
        long.extend_from_slice(&extra);
        prop_assert_eq!(decode::<TestStructure>(&long), Err(DecodeError::TrailingBytes));
        let n = cut.index(enc.len());
        prop_assert_eq!(decode::<TestStructure>(&enc[..n]), Err(DecodeError::Malformed));
    }

    #[test]
    fn base64url_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let text = b64url_encode(&bytes);
        prop_assert!(!text.contains('='));
        prop_assert!(!text.contains('+') && !text.contains('/'));
        prop_assert_eq!(b64url_decode(&text), Ok(bytes));
    }

    #[test]
    fn base64url_accepts_only_canonical_text(text in "[A-Za-z0-9_=+/ -]{0,12}") {
        match b64url_decode(&text) {
            Ok(bytes) => prop_assert_eq!(b64url_encode(&bytes), text),
            Err(e) => prop_assert_eq!(e, DecodeError::InvalidText),
        }
    }
}

#[test]
fn nesting_deeper_than_eight_is_malformed() {
    // [[[...[]...]]] as `Vec` nesting: depth 8 decodes, depth 9 does not.
    type D8 = Vec<Vec<Vec<Vec<Vec<Vec<Vec<Vec<u64>>>>>>>>;
    type D9 = Vec<D8>;
    let mut d8 = vec![0x81u8; 7];
    d8.push(0x80);
    assert!(decode::<D8>(&d8).is_ok());
    let mut d9 = vec![0x81u8; 8];
    d9.push(0x80);
    assert_eq!(decode::<D9>(&d9), Err(DecodeError::Malformed));
}
