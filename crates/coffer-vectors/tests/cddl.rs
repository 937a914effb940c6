//! `spec/coffer.cddl` checked by an independent CDDL implementation (the `cddl-cat` crate).
//!
//! (a) The whole file parses and every rule it references is defined. (b) The encoded structures
//! the vectors publish as valid match the CDDL rule the spec names for them: every valid
//! `BodyDecode` vector (§11 bodies, rule = `params.structure`), and the records and envelopes
//! produced by the positive link, tree, share and identity vectors. (c) Some single-fault
//! vectors that break the shape (wrong type code, wrong field count) fail the rule too, so the
//! check is not vacuous.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cddl_cat::context::BasicContext;
use cddl_cat::flatten::flatten_from_str;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn context() -> BasicContext {
    let text = std::fs::read_to_string(root().join("spec/coffer.cddl")).expect("read coffer.cddl");
    let rules = flatten_from_str(&text).unwrap_or_else(|e| panic!("coffer.cddl: {e}"));
    BasicContext::new(rules)
}

fn validate(ctx: &BasicContext, rule: &str, cbor: &[u8]) -> Result<(), String> {
    let def = ctx
        .rules
        .get(rule)
        .ok_or_else(|| format!("no rule `{rule}` in coffer.cddl"))?;
    let value: ciborium::Value =
        ciborium::from_reader(cbor).map_err(|e| format!("not CBOR: {e}"))?;
    cddl_cat::validate_cbor(def, &value, ctx).map_err(|e| e.to_string())
}

fn vectors(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("test-vectors").join(format!("{file}.json")))
        .expect("read vector file");
    serde_json::from_str(&text).expect("vector JSON")
}

/// Every `(group, test)` of `file` whose group type is `kind`.
fn tests_of<'a>(file: &'a Value, kind: &str) -> Vec<(&'a Value, &'a Value)> {
    let mut out = Vec::new();
    for g in file["testGroups"].as_array().expect("testGroups") {
        if g["type"] == kind {
            for t in g["tests"].as_array().expect("tests") {
                out.push((g, t));
            }
        }
    }
    out
}

fn hex_of(t: &Value, field: &str) -> Option<Vec<u8>> {
    t.get(field)?
        .as_str()
        .map(|s| hex::decode(s).expect("hex field"))
}

#[test]
fn every_rule_parses_and_resolves() {
    let ctx = context();
    assert!(ctx.rules.len() > 100, "{} rules", ctx.rules.len());
    // Resolving happens during validation; validate a value against every rule so that a
    // reference to an undefined rule anywhere in the file shows up as an error naming it.
    let probe = ciborium::Value::Null;
    let mut unresolved = Vec::new();
    for (name, def) in &ctx.rules {
        if let Err(e) = cddl_cat::validate_cbor(def, &probe, &ctx) {
            let e = e.to_string();
            if e.contains("MissingRule") || e.contains("missing rule") {
                unresolved.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(unresolved.is_empty(), "unresolved: {unresolved:#?}");
}

#[test]
fn valid_http_bodies_match_their_rules() {
    let ctx = context();
    let file = vectors("api");
    let mut checked = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for (g, t) in tests_of(&file, "BodyDecode") {
        if t["result"] != "valid" {
            continue;
        }
        let rule = g["structure"].as_str().expect("structure");
        let mut bytes = hex_of(t, "encoded").expect("encoded");
        if let Some(pad) = t.get("padTo").and_then(Value::as_u64) {
            bytes.resize(usize::try_from(pad).expect("pad"), 0);
        }
        match validate(&ctx, rule, &bytes) {
            Ok(()) => *checked.entry(rule.to_owned()).or_default() += 1,
            Err(e) => failures.push(format!("api.json tcId {} ({rule}): {e}", t["tcId"])),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked.len() > 40, "bodies checked: {checked:?}");
}

#[test]
fn shape_faults_fail_their_rules() {
    let ctx = context();
    let file = vectors("api");
    let mut rejected = 0;
    for (g, t) in tests_of(&file, "BodyDecode") {
        let class = t["failure"].as_str();
        if t["result"] != "invalid" || !matches!(class, Some("wrong-type" | "unknown-version")) {
            continue;
        }
        let rule = g["structure"].as_str().expect("structure");
        let bytes = hex_of(t, "encoded").expect("encoded");
        assert!(
            validate(&ctx, rule, &bytes).is_err(),
            "api.json tcId {} ({rule}, {class:?}) matched the rule",
            t["tcId"]
        );
        rejected += 1;
    }
    assert!(rejected > 20, "only {rejected} shape faults found");
}

/// Outputs of the positive record-producing vectors, with the rule each must match.
const RECORDS: &[(&str, &str, &str, &str)] = &[
    // (file, group type, output field, rule)
    ("link", "LinkCreate", "record", "link-record"),
    ("link", "LinkReseal", "record", "link-record"),
    ("link", "LinkRotate", "record", "link-record"),
    ("link", "DropCreate", "envelope", "drop-envelope"),
    ("tree", "NodeCreate", "record", "NodeRecord"),
    ("tree", "NodeCreate", "signedNode", "SignedNode"),
    ("share", "ShareSign", "record", "ShareRecord"),
    ("share", "ShareSign", "signedShare", "SignedShare"),
    ("share", "GrantIssue", "grant", "Grant"),
    ("share", "GrantIssue", "signedGrant", "SignedGrant"),
    ("share", "GrantIssue", "grantInfo", "GrantInfo"),
];

/// Every identity generation the `IdentityCreate` vectors build: its record and signed record.
fn identity_records() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let v = vectors("identity");
    let mut out = Vec::new();
    for (_, t) in tests_of(&v, "IdentityCreate") {
        for g in t["generations"].as_array().expect("generations") {
            out.push((
                format!("identity.json IdentityCreate tcId {}", t["tcId"]),
                hex_of(g, "record").expect("record"),
                hex_of(g, "signed").expect("signed"),
            ));
        }
    }
    out
}

#[test]
fn produced_records_match_their_rules() {
    let ctx = context();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, kind, field, rule) in RECORDS {
        let v = vectors(file);
        let tests = tests_of(&v, kind);
        assert!(!tests.is_empty(), "{file}.json has no {kind} group");
        for (_, t) in tests {
            if t["result"] != "valid" {
                continue;
            }
            let Some(bytes) = hex_of(t, field) else {
                failures.push(format!(
                    "{file}.json {kind} tcId {}: no `{field}`",
                    t["tcId"]
                ));
                continue;
            };
            match validate(&ctx, rule, &bytes) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!(
                    "{file}.json {kind} tcId {} ({rule}): {e}",
                    t["tcId"]
                )),
            }
        }
    }
    for (at, record, signed) in identity_records() {
        for (rule, bytes) in [("IdentityRecord", &record), ("SignedIdentity", &signed)] {
            match validate(&ctx, rule, bytes) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!("{at} ({rule}): {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= RECORDS.len() + 2, "checked {checked}");
}
