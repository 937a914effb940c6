//! `coffer-vectors generate [DIR]` writes the vectors; `coffer-vectors verify [DIR]` checks them.

use anyhow::Context as _;
use coffer_vectors::{default_dir, format::VectorFile, suites::SUITES, verify_file};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir: std::path::PathBuf = args.get(1).map_or_else(default_dir, Into::into);
    let dir = dir.canonicalize().unwrap_or(dir);
    match args.first().map(String::as_str) {
        Some("generate") => {
            std::fs::create_dir_all(&dir)?;
            for suite in SUITES {
                let file = (suite.generate)();
                let path = dir.join(format!("{}.json", suite.name));
                std::fs::write(&path, file.to_json())
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}: {} tests", path.display(), file.number_of_tests);
            }
            Ok(())
        }
        Some("verify") => {
            let (mut passed, mut failed) = (0, 0);
            for suite in SUITES {
                let path = dir.join(format!("{}.json", suite.name));
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let file: VectorFile = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                let report = verify_file(suite, &file);
                println!(
                    "{}.json: {} passed, {} failed",
                    suite.name,
                    report.passed,
                    report.failed.len()
                );
                for (tc, why) in &report.failed {
                    println!("  {}.json tcId {tc}: {why}", suite.name);
                }
                passed += report.passed;
                failed += report.failed.len();
            }
            println!("{passed} passed, {failed} failed");
            if failed > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        _ => {
            eprintln!("usage: coffer-vectors generate|verify [DIR]");
            std::process::exit(2);
        }
    }
}
