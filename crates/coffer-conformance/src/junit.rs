//! JUnit XML report: one `<testsuite>` per vector file, one `<testcase>` per test.

use std::fmt::Write as _;

use crate::runner::{Outcome, RunResult};

/// Escapes text for an XML attribute or element; characters XML 1.0 cannot carry are replaced
/// by U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML text of a run. Unsupported tests are `<skipped/>` when `allow_unsupported`,
/// failures otherwise.
pub fn to_xml(r: &RunResult, allow_unsupported: bool) -> String {
    let (passed, failed, unsupported) = r.totals();
    let total = passed + failed + unsupported;
    let (all_fail, all_skip) = if allow_unsupported {
        (failed, unsupported)
    } else {
        (failed + unsupported, 0)
    };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"coffer-conformance\" tests=\"{total}\" failures=\"{all_fail}\" skipped=\"{all_skip}\" errors=\"0\">"
    );
    for f in &r.files {
        let fails = f
            .tests
            .iter()
            .filter(|t| match t.outcome {
                Outcome::Fail(_) => true,
                Outcome::Unsupported => !allow_unsupported,
                Outcome::Pass => false,
            })
            .count();
        let skips = f
            .tests
            .iter()
            .filter(|t| allow_unsupported && t.outcome == Outcome::Unsupported)
            .count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skips}\" errors=\"0\">",
            escape(&f.name),
            f.tests.len()
        );
        for t in &f.tests {
            let _ = write!(
                x,
                "    <testcase classname=\"{}.{}\" name=\"tcId {}: {}\"",
                escape(f.name.trim_end_matches(".json")),
                escape(&t.op),
                t.tc_id,
                escape(&t.comment)
            );
            match &t.outcome {
                Outcome::Pass => x.push_str("/>\n"),
                Outcome::Fail(why) => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"mismatch\"/>\n    </testcase>",
                        escape(why)
                    );
                }
                Outcome::Unsupported if allow_unsupported => {
                    x.push_str(">\n      <skipped message=\"unsupported\"/>\n    </testcase>\n");
                }
                Outcome::Unsupported => {
                    x.push_str(
                        ">\n      <failure message=\"operation unsupported\" type=\"unsupported\"/>\n    </testcase>\n",
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    if let Some(why) = &r.aborted {
        let _ = writeln!(
            x,
            "  <!-- stopped: {} -->",
            escape(why).replace("--", "- -")
        );
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("a<b>&\"'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#10;\u{FFFD}"
        );
    }
}
