//! The operation table of spec/conformance.md, generated from [`OPS`] and the vector files so
//! that the document cannot drift from the runner.

use std::collections::BTreeSet;

use coffer_vectors::format::VectorFile;

use crate::ops::{OpSpec, OPS};

/// The spec chapter an operation exercises (the number before the first dot of its section).
pub fn chapter(op: &OpSpec) -> u32 {
    op.section
        .trim_start_matches('§')
        .split('.')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Conformance profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every operation.
    Full,
    /// What a client that only opens links needs: the operations of §1–§5 and §10.
    LinkOpener,
}

impl Profile {
    /// Whether `op` belongs to the profile.
    pub fn includes(self, op: &OpSpec) -> bool {
        match self {
            Profile::Full => true,
            Profile::LinkOpener => matches!(chapter(op), 1..=5 | 10),
        }
    }
}

fn codes(names: &[&str]) -> String {
    if names.is_empty() {
        "—".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The markdown table of every operation: name, spec section, files, group parameters,
/// inputs, outputs and the failure classes its invalid vectors name.
pub fn ops_markdown(files: &[(String, VectorFile)]) -> String {
    let mut s = String::from(
        "| op | spec | file | params | input | output (valid tests) | failure classes | link opener |\n|---|---|---|---|---|---|---|---|\n",
    );
    for op in OPS {
        let mut params = BTreeSet::new();
        let mut classes = BTreeSet::new();
        for (_, f) in files {
            for g in f.test_groups.iter().filter(|g| g.kind == op.name) {
                params.extend(g.params.keys().cloned());
                for t in &g.tests {
                    if let Some(c) = &t.failure {
                        classes.insert(c.clone());
                    }
                }
            }
        }
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
        let file_list: Vec<String> = op.files.split(' ').map(|f| format!("{f}.json")).collect();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            op.name,
            op.section,
            codes(&file_list.iter().map(String::as_str).collect::<Vec<_>>()),
            codes(&params),
            codes(op.inputs),
            codes(op.outputs),
            codes(&classes),
            if Profile::LinkOpener.includes(op) {
                "yes"
            } else {
                ""
            },
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec/conformance.md carries exactly the generated table.
    #[test]
    fn spec_table_is_current() {
        let files: Vec<(String, VectorFile)> = coffer_vectors::suites::SUITES
            .iter()
            .map(|s| {
                let p = coffer_vectors::default_dir().join(format!("{}.json", s.name));
                let text = std::fs::read_to_string(&p).expect("vector file");
                (
                    s.name.to_owned(),
                    serde_json::from_str(&text).expect("json"),
                )
            })
            .collect();
        let want = ops_markdown(&files);
        let spec =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/conformance.md");
        let text = std::fs::read_to_string(spec).expect("spec/conformance.md");
        let begin = "<!-- ops-table:begin (generated: coffer-conformance ops) -->\n";
        let end = "<!-- ops-table:end -->";
        let a = text.find(begin).expect("begin marker") + begin.len();
        let b = text.find(end).expect("end marker");
        assert_eq!(
            &text[a..b],
            want,
            "regenerate the table with `cargo run -p coffer-conformance -- ops`"
        );
    }
}
