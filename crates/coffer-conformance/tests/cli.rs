//! End-to-end tests of the `coffer-conformance` binary: the in-process run, the driver
//! protocol with our own driver, and misbehaving drivers.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coffer-conformance");

fn dir() -> String {
    coffer_vectors::default_dir().display().to_string()
}

fn run(args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .arg("vectors")
        .args(["--dir", &dir()])
        .args(args)
        .output()
        .expect("run coffer-conformance");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// `(passed, failed)` from the last line.
fn totals(text: &str) -> (u64, u64) {
    let last = text.lines().last().expect("a last line");
    let parts: Vec<&str> = last.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    assert_eq!(parts.len(), 4, "last line {last:?}");
    assert_eq!(
        (parts[1], parts[3]),
        ("passed", "failed"),
        "last line {last:?}"
    );
    (parts[0].parse().expect("n"), parts[2].parse().expect("m"))
}

fn driver(extra: &str) -> String {
    format!("'{BIN}' driver {extra}")
}

#[test]
fn in_process_every_vector_passes() {
    let (out, text) = run(&[]);
    assert!(out.status.success(), "{text}");
    let (passed, failed) = totals(&text);
    assert_eq!(failed, 0);
    assert!(passed > 1000, "{text}");
    for f in ["seal.json", "content.json", "link.json", "api.json"] {
        assert!(text.contains(&format!("{f}: ")), "no line for {f}");
    }
}

#[test]
fn our_driver_passes_every_vector_over_the_protocol() {
    let junit = std::env::temp_dir().join(format!("coffer-conformance-{}.xml", std::process::id()));
    let (out, text) = run(&[
        "--driver",
        &driver(""),
        "--junit",
        junit.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{text}");
    let (passed, failed) = totals(&text);
    assert_eq!(failed, 0);
    let (in_process, _) = totals(&run(&[]).1);
    assert_eq!(passed, in_process);

    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let _ = std::fs::remove_file(&junit);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some(passed.to_string().as_str()));
    assert_eq!(root.attribute("failures"), Some("0"));
    let cases = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases as u64, passed);
}

#[test]
fn a_corrupting_driver_fails_with_file_and_tc_id() {
    let junit =
        std::env::temp_dir().join(format!("coffer-conformance-bad-{}.xml", std::process::id()));
    let (out, text) = run(&[
        "--driver",
        &driver("--fault corrupt"),
        "--file",
        "seal",
        "--file",
        "tree.json",
        "--junit",
        junit.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("FAIL seal.json tcId 1 [SealEncrypt]"),
        "{text}"
    );
    assert!(text.contains("output sealed differs: expected"), "{text}");
    assert!(text.contains("FAIL tree.json tcId "), "{text}");
    let (_, failed) = totals(&text);
    assert!(failed > 0);

    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let _ = std::fs::remove_file(&junit);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures as u64, failed);
    assert!(doc.descendants().any(|n| n.has_tag_name("testcase")
        && n.attribute("name")
            .is_some_and(|a| a.starts_with("tcId 1: "))));
}

#[test]
fn a_driver_accepting_invalid_input_fails_every_invalid_test() {
    let (out, text) = run(&[
        "--driver",
        &driver("--fault accept-invalid"),
        "--file",
        "seal",
    ]);
    assert!(!out.status.success());
    assert!(
        text.contains(
            "[SealOpen] bit flip in nonce: expected failure decryption-failed, got success"
        ),
        "{text}"
    );
    let (passed, failed) = totals(&text);
    assert_eq!(passed + failed, 39);
    assert_eq!(failed, 31);
}

#[test]
fn a_driver_that_exits_is_restarted() {
    let (out, text) = run(&[
        "--driver",
        &driver("--fault exit --fault-after 3"),
        "--file",
        "seal",
    ]);
    assert!(!out.status.success());
    assert!(
        text.contains("driver closed its stdout before answering"),
        "{text}"
    );
    let (passed, failed) = totals(&text);
    // Every fourth request kills the driver; the others pass after a restart.
    assert_eq!((passed, failed), (30, 9), "{text}");
}

#[test]
fn garbage_and_wrong_ids_are_reported() {
    let (out, text) = run(&[
        "--driver",
        &driver("--fault garbage --fault-after 3"),
        "--file",
        "seal",
    ]);
    assert!(!out.status.success());
    assert!(
        text.contains("malformed response to request 4: not JSON"),
        "{text}"
    );
    let (out, text) = run(&[
        "--driver",
        &driver("--fault wrong-id --fault-after 3"),
        "--file",
        "seal",
    ]);
    assert!(!out.status.success());
    assert!(text.contains("driver answered id 5 to request 4"), "{text}");
}

#[test]
fn a_hanging_driver_times_out_and_the_run_stops() {
    let start = Instant::now();
    let (out, text) = run(&[
        "--driver",
        &driver("--fault hang"),
        "--file",
        "seal",
        "--timeout",
        "0.3",
    ]);
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(
        text.contains("did not answer request 1 within 0.3 s"),
        "{text}"
    );
    assert!(
        text.contains("STOPPED: driver failed 5 requests in a row"),
        "{text}"
    );
    assert_eq!(totals(&text), (0, 39));
}

#[test]
fn a_driver_that_cannot_start_stops_the_run() {
    let (out, text) = run(&["--driver", "/nonexistent/coffer-driver", "--file", "seal"]);
    assert!(!out.status.success());
    assert!(text.contains("STOPPED"), "{text}");
}

#[test]
fn unsupported_fails_unless_allowed() {
    let (out, text) = run(&["--driver", &driver("--fault unsupported"), "--file", "seal"]);
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL seal.json: SealOpen unsupported (35 tests)"),
        "{text}"
    );
    assert_eq!(totals(&text), (0, 39));
    let (out, text) = run(&[
        "--driver",
        &driver("--fault unsupported"),
        "--file",
        "seal",
        "--allow-unsupported",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("SKIP seal.json: SealEncrypt unsupported (4 tests)"),
        "{text}"
    );
    assert_eq!(totals(&text), (0, 0));
}

#[test]
fn a_driver_writing_bytes_that_are_not_utf8_is_reported() {
    let (out, text) = run(&[
        "--driver",
        r"printf '\377\n'; cat >/dev/null",
        "--file",
        "seal",
    ]);
    assert!(!out.status.success());
    assert!(
        text.contains("driver answered request 1 with a line that is not UTF-8"),
        "{text}"
    );
    assert!(text.contains("STOPPED"), "{text}");
}

/// `server` against an address where nothing listens: the setup check fails with the reason,
/// the totals line says so, and the exit status is 1; `--junit` still writes the report.
#[test]
fn server_suite_against_no_server_fails_cleanly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let out = Command::new(BIN)
        .args(["server", "--url", &format!("http://127.0.0.1:{port}")])
        .args(["--max-wait", "0", "--junit"])
        .arg(report.path())
        .output()
        .expect("run coffer-conformance server");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(totals(&text), (0, 1), "{text}");
    assert!(
        text.contains("FAIL setup: GET /healthz answers 200 (§11.12): GET /healthz"),
        "{text}"
    );
    let xml = std::fs::read_to_string(report.path()).expect("report");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, 1);
}
