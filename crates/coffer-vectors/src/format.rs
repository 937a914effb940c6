//! The vector file format (spec §13): Wycheproof-style JSON.
//!
//! ```json
//! { "algorithm": "...", "schema": "....schema.json", "numberOfTests": N,
//!   "header": ["..."], "notes": { "Flag": { "bugType": "...", "description": "..." } },
//!   "testGroups": [ { "type": "...", <group parameters>, "tests": [
//!       { "tcId": 1, "comment": "...", "flags": ["..."], <inputs and outputs as hex>,
//!         "result": "valid" | "invalid", "failure": "<failure class>" } ] } ] }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A note explaining a flag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Note {
    /// `BASIC`, `EDGE_CASE`, `MODIFIED_CIPHERTEXT`, `MALFORMED`, `WRONG_KEY`, ...
    pub bug_type: String,
    /// What the flag means.
    pub description: String,
}

/// One test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    /// Unique id within the file, from 1.
    pub tc_id: u64,
    /// What the test checks.
    pub comment: String,
    /// Flags, each explained in the file's `notes`.
    pub flags: Vec<String>,
    /// Inputs, injected randomness, intermediate values and outputs (hex strings, numbers, text).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// `valid` or `invalid`.
    pub result: String,
    /// For invalid tests, the failure class (coffer-core's `Error::class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Test {
    /// A field as a string.
    pub fn str(&self, name: &str) -> anyhow::Result<&str> {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("tcId {}: missing string field {name}", self.tc_id))
    }

    /// A hex field, decoded.
    pub fn hex(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        Ok(hex::decode(self.str(name)?)?)
    }

    /// A hex field of exactly `N` bytes.
    pub fn hex_array<const N: usize>(&self, name: &str) -> anyhow::Result<[u8; N]> {
        let v = self.hex(name)?;
        v.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!("tcId {}: {name} is {} bytes, not {N}", self.tc_id, v.len())
        })
    }

    /// An unsigned integer field.
    pub fn u64(&self, name: &str) -> anyhow::Result<u64> {
        self.fields
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("tcId {}: missing integer field {name}", self.tc_id))
    }

    /// Whether the test expects success.
    pub fn is_valid(&self) -> bool {
        self.result == "valid"
    }
}

/// A group of tests sharing parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TestGroup {
    /// The operation the tests exercise (e.g. `ContentDecrypt`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Group parameters.
    #[serde(flatten)]
    pub params: Map<String, Value>,
    /// The tests.
    pub tests: Vec<Test>,
}

/// A vector file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorFile {
    /// The construction, e.g. `coffer-v1-content`.
    pub algorithm: String,
    /// The JSON Schema file that describes this file, in `test-vectors/schemas/`.
    pub schema: String,
    /// Total number of tests.
    pub number_of_tests: u64,
    /// Free text: what the file covers and how to apply it.
    pub header: Vec<String>,
    /// Flag explanations.
    pub notes: BTreeMap<String, Note>,
    /// The groups.
    pub test_groups: Vec<TestGroup>,
}

impl VectorFile {
    /// Starts a file for `algorithm`, whose schema is `<name>.schema.json`.
    pub fn new(algorithm: &str, name: &str, header: &[&str]) -> Self {
        VectorFile {
            algorithm: algorithm.into(),
            schema: format!("{name}.schema.json"),
            number_of_tests: 0,
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            notes: BTreeMap::new(),
            test_groups: Vec::new(),
        }
    }

    /// Declares a flag.
    pub fn note(&mut self, flag: &str, bug_type: &str, description: &str) {
        self.notes.insert(
            flag.into(),
            Note {
                bug_type: bug_type.into(),
                description: description.into(),
            },
        );
    }

    /// Adds the notes of the encoding faults of a signed CBOR structure: `NonCanonical`,
    /// `TrailingBytes` and `WrongType` (type code or version).
    pub fn note_encoding_faults(&mut self) {
        self.note(
            "NonCanonical",
            "MALFORMED",
            "A non-canonical CBOR encoding.",
        );
        self.note(
            "TrailingBytes",
            "MALFORMED",
            "Bytes after the encoded item.",
        );
        self.note(
            "WrongType",
            "MALFORMED",
            "The type code or version is wrong.",
        );
    }

    /// Starts a group of `kind` with parameters `params` (a JSON object, may be empty).
    pub fn group(&mut self, kind: &str, params: Value) -> &mut TestGroup {
        let params = match params {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.test_groups.push(TestGroup {
            kind: kind.into(),
            params,
            tests: Vec::new(),
        });
        let last = self.test_groups.len() - 1;
        &mut self.test_groups[last]
    }

    /// Numbers the tests and counts them. Panics (generator bug) on an undeclared flag.
    pub fn finish(mut self) -> Self {
        let mut n = 0;
        for g in &mut self.test_groups {
            for t in &mut g.tests {
                n += 1;
                t.tc_id = n;
                for f in &t.flags {
                    assert!(self.notes.contains_key(f), "flag {f} has no note");
                }
            }
        }
        self.number_of_tests = n;
        self
    }

    /// The file's canonical JSON text (two-space indent, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("vector files serialize");
        s.push('\n');
        s
    }

    /// Every test with its group.
    pub fn tests(&self) -> impl Iterator<Item = (&TestGroup, &Test)> {
        self.test_groups
            .iter()
            .flat_map(|g| g.tests.iter().map(move |t| (g, t)))
    }
}

impl TestGroup {
    fn push(
        &mut self,
        comment: &str,
        flags: &[&str],
        fields: Value,
        result: &str,
        failure: Option<&str>,
    ) {
        let fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.tests.push(Test {
            tc_id: 0,
            comment: comment.into(),
            flags: flags.iter().map(|s| (*s).to_owned()).collect(),
            fields,
            result: result.into(),
            failure: failure.map(Into::into),
        });
    }

    /// Adds a test that must succeed.
    pub fn valid(&mut self, comment: &str, flags: &[&str], fields: Value) {
        self.push(comment, flags, fields, "valid", None);
    }

    /// Adds a test that must fail with `failure` (a coffer-core failure class).
    pub fn invalid(&mut self, comment: &str, flags: &[&str], failure: &str, fields: Value) {
        self.push(comment, flags, fields, "invalid", Some(failure));
    }

    /// A group parameter as hex bytes.
    pub fn hex(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let s = self
            .params
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("group {}: missing {name}", self.kind))?;
        Ok(hex::decode(s)?)
    }
}
