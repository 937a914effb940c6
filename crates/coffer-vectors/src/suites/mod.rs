//! One module per vector file. Each exposes `generate() -> VectorFile` (deterministic: fixed
//! seeds only) and `verify_test(group, test) -> anyhow::Result<()>`, which runs one test through
//! coffer-core and checks the expected output or failure class.

use crate::format::{Test, TestGroup, VectorFile};

/// A vector file and the functions that make and check it.
pub struct Suite {
    /// File stem: the file is `test-vectors/<name>.json`, its schema `schemas/<name>.schema.json`.
    pub name: &'static str,
    /// Builds the file from fixed seeds.
    pub generate: fn() -> VectorFile,
    /// Checks one test against coffer-core.
    pub verify_test: fn(&TestGroup, &Test) -> anyhow::Result<()>,
}

macro_rules! suites {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every suite, in file-name order.
        pub const SUITES: &[Suite] = &[
            $(Suite { name: stringify!($name), generate: $name::generate, verify_test: $name::verify_test },)*
        ];
    };
}

suites!(
    account, api, content, encoding, identity, link, link_url, metadata, primitives, rotation,
    seal, share, tree,
);

/// Checks an operation's outcome against a test's expectation: `valid` tests must succeed and
/// `check` their output; `invalid` tests must fail with the stated failure class.
pub fn expect<T>(
    test: &Test,
    outcome: Result<T, coffer_core::Error>,
    check: impl FnOnce(T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match (test.is_valid(), outcome) {
        (true, Ok(v)) => check(v),
        (true, Err(e)) => anyhow::bail!("expected success, got {e}"),
        (false, Ok(_)) => anyhow::bail!("expected failure {:?}, got success", test.failure),
        (false, Err(e)) => {
            let want = test.failure.as_deref().unwrap_or("");
            anyhow::ensure!(
                e.class() == want,
                "expected failure {want}, got {} ({e})",
                e.class()
            );
            Ok(())
        }
    }
}
