//! Feeds arbitrary bytes to the strict decoder (spec §1.4) as several structure shapes.
//!
//! Properties: no input panics, and any input that decodes is the canonical encoding of the
//! decoded value (re-encoding gives the input back byte for byte).
#![no_main]

use coffer_core::encoding::{decode, encode, ByteBuf, Bytes};
use coffer_core::ids::NodeId;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

coffer_core::cbor_struct! {
    /// The test-only structure of `encoding.json` (type code 255).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TestStructure (type = 255, version = 1) {
        pub a: u64,
        pub b: Bytes<4>,
        pub c: Option<String>,
        pub d: Vec<u64>,
    }
}

coffer_core::cbor_struct! {
    /// A nested structure.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Inner {
        pub id: NodeId,
        pub key: Option<Bytes<32>>,
        pub flag: bool,
    }
}

coffer_core::cbor_struct! {
    /// A structure with a nested structure, a list of them, and narrow integers.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Outer (type = 254, version = 1) {
        pub inner: Inner,
        pub list: Vec<Inner>,
        pub small: u32,
        pub blob: ByteBuf,
    }
}

fn check<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        assert_eq!(encode(&value), data, "accepted a non-canonical encoding");
    }
}

fuzz_target!(|data: &[u8]| {
    check::<TestStructure>(data);
    check::<Outer>(data);
    check::<Inner>(data);
    check::<NodeId>(data);
    check::<Bytes<32>>(data);
    check::<Vec<u64>>(data);
    check::<Option<ByteBuf>>(data);
    check::<(u64, String, Vec<ByteBuf>)>(data);
});
