//! Spec §1, "Encoding": deterministic CBOR and base64url.
//!
//! Every Coffer structure is a definite-length CBOR array. A top-level structure starts with two
//! unsigned integers, its *type* and its *version*, followed by its fields in the order the spec
//! lists them. Coffer v1 uses no maps, no tags and no floating-point numbers; the only simple values
//! are `null` (an absent optional field), `false` and `true`.
//!
//! Decoding is strict. [`decode`] first walks the item with a low-level CBOR reader and rejects
//! anything outside that profile (indefinite lengths, maps, tags, floats, other simple values,
//! nesting deeper than [`MAX_DEPTH`], lengths that overrun the input); it then deserializes into
//! the typed structure; it rejects trailing bytes; finally it re-encodes the value and requires the
//! result to equal the input byte for byte, which rejects every non-shortest head. ciborium
//! alone is not canonical and is never trusted to be.

use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use ciborium_ll::{Decoder, Header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DecodeError;

/// Maximum nesting depth of arrays in any Coffer structure.
pub const MAX_DEPTH: usize = 8;

/// Marker in a serde error message: the structure type did not match.
pub(crate) const ERR_WRONG_TYPE: &str = "coffer:wrong-type";
/// Marker in a serde error message: the structure version is not supported.
pub(crate) const ERR_UNKNOWN_VERSION: &str = "coffer:unknown-version";
/// Marker in a serde error message: a field value is out of its permitted set.
pub(crate) const ERR_INVALID_VALUE: &str = "coffer:invalid-value";

/// Encodes `value` in the deterministic encoding of spec §1.2.
///
/// Coffer structures always encode: they contain no maps with unordered keys and no types that
/// serde cannot represent.
#[must_use]
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every Coffer type is representable in CBOR.
    if ciborium::ser::into_writer(value, &mut out).is_err() {
        unreachable_encoding();
    }
    out
}

#[cold]
fn unreachable_encoding() -> ! {
    // Only reachable through a bug in a Serialize impl of this crate.
    panic!("coffer-core: a structure failed to encode")
}

/// Decodes a structure from exactly `bytes`, enforcing every rule of spec §1.3.
///
/// # Errors
/// [`DecodeError::Malformed`] for anything that is not CBOR of the expected shape,
/// [`DecodeError::NonCanonical`] for a valid value in a non-deterministic encoding,
/// [`DecodeError::TrailingBytes`], [`DecodeError::WrongType`], [`DecodeError::UnknownVersion`] and
/// [`DecodeError::InvalidValue`] as their names say.
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let consumed = prescan(bytes)?;
    if consumed != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    let value: T = ciborium::de::from_reader_with_recursion_limit(bytes, MAX_DEPTH + 1).map_err(
        |e| match e {
            ciborium::de::Error::Semantic(_, msg) => classify(&msg),
            _ => DecodeError::Malformed,
        },
    )?;
    let reencoded = encode(&value);
    if reencoded != bytes {
        return Err(mismatch_class(bytes, &reencoded));
    }
    Ok(value)
}

/// Classifies an input whose re-encoding differs (spec §1.4.1): if both encode the same sequence
/// of data items (same major types, values and contents) the input only used longer heads than
/// needed and is [`DecodeError::NonCanonical`]; if the items themselves differ (for example a
/// byte string where an array belongs, which serde would otherwise read element by element), the
/// input is not the structure at all and is [`DecodeError::Malformed`].
fn mismatch_class(input: &[u8], reencoded: &[u8]) -> DecodeError {
    use ciborium_io::Read as _;
    let mut a = Decoder::from(input);
    let mut b = Decoder::from(reencoded);
    loop {
        let (ha, hb) = match (a.pull(), b.pull()) {
            (Ok(ha), Ok(hb)) => (ha, hb),
            (Err(_), Err(_)) => return DecodeError::NonCanonical,
            _ => return DecodeError::Malformed,
        };
        if ha != hb {
            return DecodeError::Malformed;
        }
        if let Header::Bytes(Some(len)) | Header::Text(Some(len)) = ha {
            let (mut ca, mut cb) = (alloc::vec![0u8; len], alloc::vec![0u8; len]);
            if a.read_exact(&mut ca).is_err() || b.read_exact(&mut cb).is_err() || ca != cb {
                return DecodeError::Malformed;
            }
        }
    }
}

fn classify(msg: &str) -> DecodeError {
    if msg.contains(ERR_WRONG_TYPE) {
        DecodeError::WrongType
    } else if msg.contains(ERR_UNKNOWN_VERSION) {
        DecodeError::UnknownVersion
    } else if msg.contains(ERR_INVALID_VALUE) || msg.starts_with("invalid value:") {
        // The second form is serde's `Error::invalid_value`, raised for an integer that does not
        // fit its field (a `u32` given 2^32, spec §1.3.2).
        DecodeError::InvalidValue
    } else {
        DecodeError::Malformed
    }
}

/// Walks one CBOR data item at the start of `bytes` and returns its encoded length.
///
/// Rejects indefinite lengths (non-canonical), and maps, tags, floats and simple values other
/// than false/true/null (outside the Coffer profile), and any length that overruns the input.
fn prescan(bytes: &[u8]) -> Result<usize, DecodeError> {
    let total = bytes.len();
    let mut dec = Decoder::from(bytes);
    // Number of items still expected at each open nesting level.
    let mut pending: Vec<usize> = Vec::new();
    let mut remaining_items = 1usize;
    loop {
        if remaining_items == 0 {
            match pending.pop() {
                Some(outer) => {
                    remaining_items = outer;
                    continue;
                }
                None => return Ok(dec.offset()),
            }
        }
        remaining_items -= 1;
        let header = dec.pull().map_err(|_| DecodeError::Malformed)?;
        let left = total - dec.offset();
        match header {
            Header::Positive(_) | Header::Negative(_) => {}
            Header::Simple(20..=22) => {}
            Header::Bytes(Some(len)) | Header::Text(Some(len)) => {
                if len > left {
                    return Err(DecodeError::Malformed);
                }
                skip(&mut dec, len)?;
            }
            Header::Array(Some(len)) => {
                if len > left {
                    return Err(DecodeError::Malformed);
                }
                if pending.len() >= MAX_DEPTH {
                    return Err(DecodeError::Malformed);
                }
                pending.push(remaining_items);
                remaining_items = len;
            }
            Header::Bytes(None) | Header::Text(None) | Header::Array(None) | Header::Map(None) => {
                return Err(DecodeError::NonCanonical)
            }
            Header::Map(Some(_))
            | Header::Tag(_)
            | Header::Float(_)
            | Header::Simple(_)
            | Header::Break => return Err(DecodeError::Malformed),
        }
    }
}

fn skip(dec: &mut Decoder<&[u8]>, mut len: usize) -> Result<(), DecodeError> {
    use ciborium_io::Read as _;
    let mut scratch = [0u8; 256];
    while len > 0 {
        let n = len.min(scratch.len());
        dec.read_exact(&mut scratch[..n])
            .map_err(|_| DecodeError::Malformed)?;
        len -= n;
    }
    Ok(())
}

/// Encodes bytes as base64url without padding (RFC 4648 §5), as used in URLs and text.
#[must_use]
pub fn b64url_encode(bytes: &[u8]) -> alloc::string::String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical unpadded base64url. Padding, characters outside the URL-safe alphabet and
/// non-zero trailing bits are rejected.
///
/// # Errors
/// [`DecodeError::InvalidText`] on any of the above.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| DecodeError::InvalidText)
}

/// A fixed-length byte string: encoded as a CBOR byte string of exactly `N` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Bytes<N> {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> From<[u8; N]> for Bytes<N> {
    fn from(value: [u8; N]) -> Self {
        Bytes(value)
    }
}

impl<const N: usize> AsRef<[u8]> for Bytes<N> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Accepts a CBOR byte string only: an array of integers is not a byte string (spec §1.3).
        struct ByteStringVisitor<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for ByteStringVisitor<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a byte string of {N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes<N>, E> {
                let arr: [u8; N] = v.try_into().map_err(|_| E::custom(ERR_INVALID_VALUE))?;
                Ok(Bytes(arr))
            }
        }
        d.deserialize_bytes(ByteStringVisitor::<N>)
    }
}

/// A variable-length byte string, encoded as a CBOR byte string (major type 2).
///
/// Decoding accepts a CBOR byte string only: an array of integers, a text string or anything else
/// is `malformed` (spec §1.3), never converted. Dereferences to `Vec<u8>`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteBuf(Vec<u8>);

impl ByteBuf {
    /// An empty byte string.
    #[must_use]
    pub fn new() -> Self {
        ByteBuf(Vec::new())
    }

    /// The bytes, by value.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for ByteBuf {
    fn from(value: Vec<u8>) -> Self {
        ByteBuf(value)
    }
}

impl From<&[u8]> for ByteBuf {
    fn from(value: &[u8]) -> Self {
        ByteBuf(value.to_vec())
    }
}

impl From<ByteBuf> for Vec<u8> {
    fn from(value: ByteBuf) -> Self {
        value.0
    }
}

impl core::ops::Deref for ByteBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl core::ops::DerefMut for ByteBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for ByteBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl core::borrow::Borrow<[u8]> for ByteBuf {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ByteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("h'")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str("'")
    }
}

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Accepts a CBOR byte string only (spec §1.3).
        struct ByteBufVisitor;
        impl serde::de::Visitor<'_> for ByteBufVisitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(ByteBufVisitor)
    }
}

/// Defines a Coffer wire structure encoded as a positional CBOR array.
///
/// With `(type = T, version = V)` the array starts with the two unsigned integers `T` and `V`,
/// and decoding fails with [`DecodeError::WrongType`] / [`DecodeError::UnknownVersion`] when they
/// differ. Without it, the structure is a plain array of its fields (for nested structures).
/// Arrays of the wrong length are rejected.
#[macro_export]
#[doc(hidden)]
macro_rules! cbor_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident (type = $ty:expr, version = $ver:expr) {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name { $( $(#[$fmeta])* $fvis $field: $fty ),* }

        // A private structure may not use its constants; they are `pub` for public ones.
        #[allow(dead_code, unreachable_pub)]
        impl $name {
            /// The structure type code of this structure (spec §1.4).
            pub const TYPE: u64 = $ty;
            /// The structure version of this structure.
            pub const VERSION: u64 = $ver;
        }

        $crate::cbor_struct!(@impls $name, [Some(($ty, $ver))], $( $field : $fty ),*);
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name { $( $(#[$fmeta])* $fvis $field: $fty ),* }
        $crate::cbor_struct!(@impls $name, [None::<(u64, u64)>], $( $field : $fty ),*);
    };
    (@impls $name:ident, [$head:expr], $( $field:ident : $fty:ty ),*) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeTuple as _;
                let head: Option<(u64, u64)> = $head;
                let n = [$( stringify!($field) ),*].len() + if head.is_some() { 2 } else { 0 };
                let mut t = s.serialize_tuple(n)?;
                if let Some((ty, ver)) = head {
                    t.serialize_element(&ty)?;
                    t.serialize_element(&ver)?;
                }
                $( t.serialize_element(&self.$field)?; )*
                t.end()
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(concat!("the array ", stringify!($name)))
                    }
                    #[allow(unused_mut)]
                    fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, mut seq: A) -> ::core::result::Result<$name, A::Error> {
                        use ::serde::de::Error as _;
                        let head: Option<(u64, u64)> = $head;
                        if let Some((ty, ver)) = head {
                            let got: u64 = seq.next_element()?.ok_or_else(|| A::Error::custom("short array"))?;
                            if got != ty {
                                return Err(A::Error::custom($crate::encoding::__ERR_WRONG_TYPE));
                            }
                            let got: u64 = seq.next_element()?.ok_or_else(|| A::Error::custom("short array"))?;
                            if got != ver {
                                return Err(A::Error::custom($crate::encoding::__ERR_UNKNOWN_VERSION));
                            }
                        }
                        $(
                            let $field: $fty = seq.next_element()?.ok_or_else(|| A::Error::custom("short array"))?;
                        )*
                        if seq.next_element::<::serde::de::IgnoredAny>()?.is_some() {
                            return Err(A::Error::custom("long array"));
                        }
                        Ok($name { $( $field ),* })
                    }
                }
                // `deserialize_any`, not `deserialize_tuple`: ciborium reads a byte string as a
                // sequence of integers when asked for a tuple, which would let a byte string stand
                // in for a structure (spec §1.4.2 requires `malformed`).
                d.deserialize_any(V)
            }
        }
    };
}

#[doc(hidden)]
pub const __ERR_WRONG_TYPE: &str = ERR_WRONG_TYPE;
#[doc(hidden)]
pub const __ERR_UNKNOWN_VERSION: &str = ERR_UNKNOWN_VERSION;

/// Decodes a fixed-size structure, checking its encoded length first (spec §1.3): lengths are
/// checked before any parsing or cryptography.
///
/// # Errors
/// As [`decode`], plus [`DecodeError::Malformed`] when `bytes.len() > max_len`.
pub fn decode_bounded<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::Malformed);
    }
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    crate::cbor_struct! {
        /// A test structure.
        #[derive(Debug, PartialEq, Eq)]
        struct Demo (type = 250, version = 1) {
            a: u64,
            b: Bytes<4>,
            c: Option<String>,
            d: ByteBuf,
        }
    }

    fn demo() -> Demo {
        Demo {
            a: 500,
            b: Bytes([1, 2, 3, 4]),
            c: Some("hi".into()),
            d: ByteBuf::from(alloc::vec![9u8; 30]),
        }
    }

    #[test]
    fn round_trip_and_exact_bytes() {
        let enc = encode(&demo());
        // [250, 1, 500, h'01020304', "hi", h'09'*30]; 250 is a test-only type code (§0.6.3)
        assert_eq!(&enc[..7], &[0x86, 0x18, 0xfa, 0x01, 0x19, 0x01, 0xf4]);
        assert_eq!(decode::<Demo>(&enc), Ok(demo()));
    }

    #[test]
    fn rejects_profile_violations() {
        let enc = encode(&demo());
        let mut trailing = enc.clone();
        trailing.push(0);
        assert_eq!(decode::<Demo>(&trailing), Err(DecodeError::TrailingBytes));
        // Non-shortest integer for `a`: 500 as a 4-byte head.
        let mut long = alloc::vec![0x86, 0x18, 0xfa, 0x01, 0x1a, 0, 0, 0x01, 0xf4];
        long.extend_from_slice(&enc[7..]);
        assert_eq!(decode::<Demo>(&long), Err(DecodeError::NonCanonical));
        // Indefinite-length outer array.
        let mut indef = alloc::vec![0x9f];
        indef.extend_from_slice(&enc[1..]);
        indef.push(0xff);
        assert_eq!(decode::<Demo>(&indef), Err(DecodeError::NonCanonical));
        let mut wrong_type = enc.clone();
        wrong_type[2] = 0xfb;
        assert_eq!(decode::<Demo>(&wrong_type), Err(DecodeError::WrongType));
        let mut wrong_ver = enc.clone();
        wrong_ver[3] = 2;
        assert_eq!(decode::<Demo>(&wrong_ver), Err(DecodeError::UnknownVersion));
        let mut short_b = enc.clone();
        short_b[7] = 0x43; // bstr of 3 where 4 is required; the rest no longer lines up
        assert!(decode::<Demo>(&short_b).is_err());
        assert_eq!(decode::<Demo>(&[0xa0]), Err(DecodeError::Malformed));
        assert_eq!(decode::<Demo>(&[0xc1, 0x00]), Err(DecodeError::Malformed));
        assert_eq!(decode::<Demo>(&[]), Err(DecodeError::Malformed));
        // A length that claims more than the input holds.
        assert_eq!(
            decode::<Demo>(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            decode::<Demo>(&[0x5b, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Malformed)
        );
    }

    #[test]
    fn byte_buf_accepts_only_a_byte_string() {
        assert_eq!(
            decode::<ByteBuf>(&[0x43, 1, 2, 3]),
            Ok(ByteBuf::from(alloc::vec![1, 2, 3]))
        );
        // [1, 2, 3] as an array of integers: not a byte string.
        assert_eq!(
            decode::<ByteBuf>(&[0x83, 1, 2, 3]),
            Err(DecodeError::Malformed)
        );
        // A text string is not a byte string either.
        assert_eq!(
            decode::<ByteBuf>(&[0x61, 0x61]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(decode::<ByteBuf>(&[0x40]), Ok(ByteBuf::new()));
        let mut d = encode(&demo());
        // Replace `d` (h'09'*30, the last 32 bytes) by an array of 30 nines.
        let n = d.len();
        d.truncate(n - 32);
        d.extend_from_slice(&[0x98, 30]);
        d.extend_from_slice(&[9u8; 30]);
        assert_eq!(decode::<Demo>(&d), Err(DecodeError::Malformed));
    }

    #[test]
    fn rejects_wrong_arity_and_depth() {
        let mut enc = encode(&demo());
        enc[0] = 0x87;
        enc.push(0x00);
        assert_eq!(decode::<Demo>(&enc), Err(DecodeError::Malformed));
        let deep = [0x81u8; 20];
        assert_eq!(decode::<Demo>(&deep), Err(DecodeError::Malformed));
    }

    crate::cbor_struct! {
        /// A structure with narrow integer fields.
        #[derive(Debug, PartialEq, Eq)]
        struct Narrow (type = 251, version = 1) {
            a: u32,
            b: u8,
        }
    }

    #[test]
    fn integers_out_of_field_range_are_invalid_values() {
        // [251, 1, 2^32, 0]: too large for a u32 field.
        let big = [0x84, 0x18, 0xfb, 0x01, 0x1b, 0, 0, 0, 1, 0, 0, 0, 0, 0x00];
        assert_eq!(decode::<Narrow>(&big), Err(DecodeError::InvalidValue));
        // [251, 1, 0, 256]: too large for a u8 field.
        let big = [0x84, 0x18, 0xfb, 0x01, 0x00, 0x19, 0x01, 0x00];
        assert_eq!(decode::<Narrow>(&big), Err(DecodeError::InvalidValue));
        // A negative integer is a wrong major type, not a value out of range.
        let neg = [0x84, 0x18, 0xfb, 0x01, 0x20, 0x00];
        assert_eq!(decode::<Narrow>(&neg), Err(DecodeError::Malformed));
        let ok = [
            0x84, 0x18, 0xfb, 0x01, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x18, 0xff,
        ];
        assert_eq!(
            decode::<Narrow>(&ok),
            Ok(Narrow {
                a: u32::MAX,
                b: 255
            })
        );
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("-_8").as_deref(), Ok(&[0xfb, 0xff][..]));
        assert_eq!(b64url_decode("-_8="), Err(DecodeError::InvalidText));
        assert_eq!(b64url_decode("-_9"), Err(DecodeError::InvalidText));
        assert_eq!(b64url_decode("+/8"), Err(DecodeError::InvalidText));
    }
}
