//! The registries of spec §0.6 against coffer-core's sources, read as text.
//!
//! (a) every `"coffer/v1/..."` string literal in coffer-core's non-test code is in the label
//! table; (b) every type code declared with `cbor_struct!` / `body!` (`type = N`) is in the
//! type-code table, and no two structures share a code; (c) every label and type code in the
//! tables exists in the code. Test code (files named `tests.rs`, and everything from the first
//! `#[cfg(test)]` of a file on) is ignored; comment lines are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read source dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The non-test, non-comment lines of every coffer-core source file.
fn core_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("crates/coffer-core/src"), &mut files);
    assert!(files.len() > 10, "found coffer-core sources");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read source");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let lines: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            (p, lines.join("\n"))
        })
        .collect()
}

/// Every `"coffer/v1/..."` literal in `text`.
fn labels_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\"coffer/v1/") {
        let after = &rest[i + 1..];
        match after.find('"') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// Every `struct Name (type = N` in `text`, as (name, N).
fn type_codes_in(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let Some(pos) = t.find(" (type = ") else {
            continue;
        };
        let Some(name) = t[..pos].split_whitespace().last() else {
            continue;
        };
        // Macro definitions (`struct $name:ident (type = $ty:expr, ...)`) declare nothing.
        if name.starts_with('$') || !t[..pos].split_whitespace().any(|w| w == "struct") {
            continue;
        }
        let digits: String = t[pos + " (type = ".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let code = digits.parse().expect("numeric type code");
        out.push((name.to_string(), code));
    }
    out
}

/// The rows of the markdown table under the heading `heading` of spec/00-conventions.md: the
/// first cell of each body row.
fn table_first_cells(heading: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("spec/00-conventions.md")).expect("read §0");
    let start = text.find(heading).expect("registry heading present");
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n### ").unwrap_or(section.len())];
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.split('|')
                .nth(1)
                .unwrap_or("")
                .trim()
                .trim_matches('`')
                .to_string()
        })
        .collect()
}

#[test]
fn labels_match_the_registry() {
    let table: Vec<String> = table_first_cells("### 0.6.2 Labels");
    let listed: BTreeSet<String> = table.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        table.len(),
        "a label is listed twice in §0.6.2"
    );
    let mut in_code = BTreeSet::new();
    for (path, text) in core_sources() {
        for label in labels_in(&text) {
            assert!(
                listed.contains(&label),
                "{}: label {label} is missing from spec §0.6.2",
                path.display()
            );
            in_code.insert(label);
        }
    }
    for label in &listed {
        assert!(
            in_code.contains(label),
            "spec §0.6.2 lists {label}, which coffer-core does not use"
        );
    }
}

#[test]
fn type_codes_match_the_registry() {
    let table = table_first_cells("### 0.6.1 Type codes");
    let mut listed = BTreeSet::new();
    for cell in &table {
        let code: u64 = cell.parse().expect("numeric code in §0.6.1");
        assert!(listed.insert(code), "code {code} listed twice in §0.6.1");
    }
    let mut in_code: BTreeMap<u64, String> = BTreeMap::new();
    for (path, text) in core_sources() {
        for (name, code) in type_codes_in(&text) {
            assert!(
                listed.contains(&code),
                "{}: {name} (type {code}) is missing from spec §0.6.1",
                path.display()
            );
            if let Some(other) = in_code.insert(code, name.clone()) {
                panic!("type code {code} is used by both {other} and {name}");
            }
        }
    }
    for code in &listed {
        assert!(
            in_code.contains_key(code),
            "spec §0.6.1 lists type code {code}, which no coffer-core structure declares"
        );
    }
}

#[test]
fn the_parsers_see_what_they_should() {
    assert_eq!(
        labels_in(r#"const A: &str = "coffer/v1/x/y"; f("coffer/v1/z")"#),
        vec!["coffer/v1/x/y".to_string(), "coffer/v1/z".to_string()]
    );
    assert_eq!(
        type_codes_in("    pub struct LinkRecord (type = 70, version = 1) {\n  struct X (type = 160, max = M) {"),
        vec![("LinkRecord".to_string(), 70), ("X".to_string(), 160)]
    );
    assert!(table_first_cells("### 0.6.1 Type codes").len() > 50);
    assert!(table_first_cells("### 0.6.2 Labels").len() > 20);
}
