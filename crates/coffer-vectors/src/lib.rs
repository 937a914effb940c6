//! Generator and verifier of the Coffer v1 test vectors in `test-vectors/`.
//!
//! `cargo run -p coffer-vectors -- generate` rewrites every file from fixed seeds;
//! `cargo run -p coffer-vectors -- verify` runs every vector through coffer-core. The test suite
//! does both and fails on any byte difference.

pub mod format;
pub mod rng;
pub mod suites;

use std::path::{Path, PathBuf};

/// The `test-vectors/` directory of this repository.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

/// The outcome of verifying one file.
#[derive(Debug, Default)]
pub struct Report {
    /// Tests that passed.
    pub passed: u64,
    /// `(tcId, reason)` of each failed test.
    pub failed: Vec<(u64, String)>,
}

/// Verifies every test of `file` with `suite`.
pub fn verify_file(suite: &suites::Suite, file: &format::VectorFile) -> Report {
    let mut report = Report::default();
    let mut count = 0;
    for (group, test) in file.tests() {
        count += 1;
        match (suite.verify_test)(group, test) {
            Ok(()) => report.passed += 1,
            Err(e) => report.failed.push((test.tc_id, format!("{e:#}"))),
        }
    }
    if count != file.number_of_tests {
        report.failed.push((
            0,
            format!(
                "numberOfTests is {} but the file has {count}",
                file.number_of_tests
            ),
        ));
    }
    report
}
