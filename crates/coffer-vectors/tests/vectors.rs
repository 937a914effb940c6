//! The published vectors reproduce byte for byte from the generator, and every one passes.

use coffer_vectors::{default_dir, format::VectorFile, suites::SUITES, verify_file};

#[test]
fn regeneration_is_byte_identical() {
    for suite in SUITES {
        let path = default_dir().join(format!("{}.json", suite.name));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p coffer-vectors -- generate`",
                path.display()
            )
        });
        let fresh = (suite.generate)().to_json();
        assert!(
            on_disk == fresh,
            "{} differs from the generator's output; regenerate and review",
            path.display()
        );
    }
}

#[test]
fn every_vector_passes() {
    let mut total = 0;
    for suite in SUITES {
        let path = default_dir().join(format!("{}.json", suite.name));
        let file: VectorFile =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
        let report = verify_file(suite, &file);
        assert!(
            report.failed.is_empty(),
            "{}: {:?}",
            suite.name,
            report.failed
        );
        total += report.passed;
    }
    assert!(total > 0);
}

#[test]
fn every_file_has_a_schema() {
    for suite in SUITES {
        let schema = default_dir()
            .join("schemas")
            .join(format!("{}.schema.json", suite.name));
        let text = std::fs::read_to_string(&schema)
            .unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
        let _: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    }
}
