//! Runs vector files against an implementation and reports the outcome.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use coffer_vectors::format::{Test, VectorFile};
use serde_json::{Map, Value};

use crate::doc::Profile;
use crate::ops;
use crate::protocol::{Request, Response};

/// A transport failure: the current test fails, or the run stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// This request failed (the driver crashed, hung or answered garbage); the driver is
    /// restarted for the next request.
    Test(String),
    /// The implementation cannot go on (it cannot be started, or failed too often).
    Fatal(String),
}

/// Something that answers requests: coffer-core in-process, or a driver process.
pub trait Implementation {
    /// Sends one request and returns the answer.
    fn call(&mut self, request: &Request) -> Result<Response, CallError>;
}

/// coffer-core, in-process, through [`ops::handle`].
#[derive(Debug, Default)]
pub struct InProcess;

impl Implementation for InProcess {
    fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        Ok(ops::handle(&request.op, &request.params, &request.input))
    }
}

/// The longest answer line the runner reads (the largest vector output is a few MB of hex).
pub const MAX_LINE_LEN: u64 = 256 << 20;

/// After this many consecutive transport failures the run stops.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 5;

struct Running {
    child: Child,
    to_child: Option<Sender<String>>,
    /// A line, a line the runner refuses (with the reason), or `None` at end of output.
    from_child: Receiver<Option<Result<String, String>>>,
}

impl Running {
    fn stop(mut self, kill: bool) {
        self.to_child = None; // closes the driver's stdin
        if !kill {
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        // The driver runs in its own process group (see `Driver::start`): end the whole group,
        // so that a command `sh -c` did not `exec` goes too.
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An external driver, started with `sh -c <command>`, spoken to over its stdin and stdout.
/// Its stderr is passed through.
pub struct Driver {
    command: String,
    timeout: Duration,
    running: Option<Running>,
    consecutive_failures: u32,
    next_id: u64,
}

impl Driver {
    /// A driver for `command`; each request must be answered within `timeout`.
    pub fn new(command: &str, timeout: Duration) -> Self {
        Driver {
            command: command.to_owned(),
            timeout,
            running: None,
            consecutive_failures: 0,
            next_id: 1,
        }
    }

    fn start(&mut self) -> Result<(), CallError> {
        let mut command = Command::new("sh");
        command.arg("-c").arg(&self.command);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                CallError::Fatal(format!("cannot start driver {:?}: {e}", self.command))
            })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CallError::Fatal("driver pipes unavailable".into()));
        };
        let (to_child, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in rx {
                if stdin.write_all(line.as_bytes()).is_err()
                    || stdin.write_all(b"\n").is_err()
                    || stdin.flush().is_err()
                {
                    break;
                }
            }
        });
        let (tx, from_child) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                let msg = match (&mut reader)
                    .take(MAX_LINE_LEN)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => None,
                    Ok(_) if !line.ends_with(b"\n") && line.len() as u64 == MAX_LINE_LEN => {
                        Some(Err(format!("a line longer than {MAX_LINE_LEN} bytes")))
                    }
                    Ok(_) => {
                        Some(String::from_utf8(line).map_err(|_| "a line that is not UTF-8".into()))
                    }
                };
                let end = !matches!(msg, Some(Ok(_)));
                if tx.send(msg).is_err() || end {
                    break;
                }
            }
        });
        self.running = Some(Running {
            child,
            to_child: Some(to_child),
            from_child,
        });
        Ok(())
    }

    fn fail(&mut self, why: String) -> CallError {
        if let Some(r) = self.running.take() {
            r.stop(true);
        }
        self.consecutive_failures += 1;
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
            CallError::Fatal(format!(
                "driver failed {} requests in a row; stopping (last: {why})",
                self.consecutive_failures
            ))
        } else {
            CallError::Test(format!("{why}; driver restarted"))
        }
    }
}

fn preview(s: &str) -> String {
    let s = s.trim_end();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(120).collect::<String>())
    } else {
        s.to_owned()
    }
}

impl Implementation for Driver {
    fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        if self.running.is_none() {
            self.start()?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut req = request.clone();
        req.id = id;
        let answer = {
            let Some(r) = self.running.as_mut() else {
                return Err(CallError::Fatal("driver not running".into()));
            };
            let sent = r
                .to_child
                .as_ref()
                .map(|s| s.send(req.to_line()).is_ok())
                .unwrap_or(false);
            if sent {
                r.from_child.recv_timeout(self.timeout)
            } else {
                Err(RecvTimeoutError::Disconnected)
            }
        };
        let line = match answer {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(why))) => {
                return Err(self.fail(format!("driver answered request {id} with {why}")))
            }
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                let status = self
                    .running
                    .as_mut()
                    .and_then(|r| {
                        for _ in 0..50 {
                            if let Ok(Some(s)) = r.child.try_wait() {
                                return Some(s);
                            }
                            thread::sleep(Duration::from_millis(10));
                        }
                        None
                    })
                    .map_or_else(|| "still running".to_owned(), |s| s.to_string());
                return Err(self.fail(format!(
                    "driver closed its stdout before answering request {id} ({status})"
                )));
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(self.fail(format!(
                    "driver did not answer request {id} within {} s",
                    self.timeout.as_secs_f64()
                )))
            }
        };
        match Response::parse(line.trim_end_matches(['\n', '\r'])) {
            Ok((got, resp)) if got == id => {
                self.consecutive_failures = 0;
                Ok(resp)
            }
            Ok((got, _)) => Err(self.fail(format!(
                "driver answered id {got} to request {id} (answers must come in order, one per request)"
            ))),
            Err(e) => Err(self.fail(format!(
                "malformed response to request {id}: {e}: {:?}",
                preview(&line)
            ))),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop(false);
        }
    }
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The answer matched.
    Pass,
    /// The answer did not match, or the transport failed; the reason.
    Fail(String),
    /// The implementation answered `unsupported`.
    Unsupported,
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The group type (the operation).
    pub op: String,
    /// The test's id in its file.
    pub tc_id: u64,
    /// The test's comment.
    pub comment: String,
    /// What happened.
    pub outcome: Outcome,
}

/// One file's results.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The file name, e.g. `seal.json`.
    pub name: String,
    /// Every test run, in file order.
    pub tests: Vec<TestResult>,
    /// Tests not run because their operation is outside the selected profile.
    pub outside_profile: usize,
}

impl FileResult {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.tests.iter().filter(|t| f(&t.outcome)).count()
    }
}

/// The results of a run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Per file, in name order.
    pub files: Vec<FileResult>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

impl RunResult {
    /// `(passed, failed, unsupported)` over all files; unsupported tests are not in `failed`.
    pub fn totals(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for f in &self.files {
            t.0 += f.count(|o| *o == Outcome::Pass);
            t.1 += f.count(|o| matches!(o, Outcome::Fail(_)));
            t.2 += f.count(|o| *o == Outcome::Unsupported);
        }
        t
    }

    /// Whether the run counts as a success.
    pub fn success(&self, allow_unsupported: bool) -> bool {
        let (_, failed, unsupported) = self.totals();
        self.aborted.is_none() && failed == 0 && (allow_unsupported || unsupported == 0)
    }
}

/// The vector files of `dir` (every `*.json` directly in it), sorted by name, optionally only
/// those named in `only` (with or without `.json`).
pub fn vector_files(dir: &Path, only: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if !only.is_empty() {
        let want: Vec<String> = only
            .iter()
            .map(|n| n.trim_end_matches(".json").to_owned())
            .collect();
        files.retain(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| want.iter().any(|w| w == s))
        });
        anyhow::ensure!(
            files.len() == want.len(),
            "some of {only:?} are not in {}",
            dir.display()
        );
    }
    anyhow::ensure!(!files.is_empty(), "no vector files in {}", dir.display());
    Ok(files)
}

fn describe(v: &Value) -> String {
    preview(&v.to_string())
}

/// Compares an answer with a test's expectation.
pub fn judge(test: &Test, expected: &Map<String, Value>, response: Response) -> Outcome {
    match (test.is_valid(), response) {
        (_, Response::Unsupported) => Outcome::Unsupported,
        (true, Response::Ok(got)) => {
            let mut diffs = Vec::new();
            for (k, want) in expected {
                match got.get(k) {
                    None => diffs.push(format!("output {k} missing")),
                    Some(g) if g == want => {}
                    Some(Value::String(g))
                        if want.as_str().is_some_and(|w| w.eq_ignore_ascii_case(g)) =>
                    {
                        diffs.push(format!("output {k}: hex must be lower-case"));
                    }
                    Some(g) => diffs.push(format!(
                        "output {k} differs: expected {}, got {}",
                        describe(want),
                        describe(g)
                    )),
                }
            }
            if diffs.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(diffs.join("; "))
            }
        }
        (true, Response::Error { class, message }) => Outcome::Fail(format!(
            "expected success, got failure {class}{}",
            message.map(|m| format!(" ({m})")).unwrap_or_default()
        )),
        (false, Response::Ok(_)) => Outcome::Fail(format!(
            "expected failure {}, got success",
            test.failure.as_deref().unwrap_or("?")
        )),
        (false, Response::Error { class, message }) => {
            let want = test.failure.as_deref().unwrap_or("");
            if class == want {
                Outcome::Pass
            } else {
                Outcome::Fail(format!(
                    "expected failure {want}, got failure {class}{}",
                    message.map(|m| format!(" ({m})")).unwrap_or_default()
                ))
            }
        }
    }
}

/// Runs every test of `files` whose operation is in `profile` through `imp`.
pub fn run(
    files: &[PathBuf],
    imp: &mut dyn Implementation,
    profile: Profile,
) -> anyhow::Result<RunResult> {
    let mut result = RunResult::default();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: VectorFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut fr = FileResult {
            name,
            tests: Vec::new(),
            outside_profile: 0,
        };
        for group in &file.test_groups {
            if ops::find(&group.kind).is_some_and(|op| !profile.includes(op)) {
                fr.outside_profile += group.tests.len();
                continue;
            }
            for test in &group.tests {
                let outcome = if result.aborted.is_some() {
                    Outcome::Fail("not run: the run stopped".into())
                } else {
                    match ops::split(&group.kind, test) {
                        Err(e) => Outcome::Fail(format!("runner: {e}")),
                        Ok((input, expected)) => {
                            let request = Request {
                                id: 0,
                                op: group.kind.clone(),
                                params: group.params.clone(),
                                input,
                            };
                            match imp.call(&request) {
                                Ok(resp) => judge(test, &expected, resp),
                                Err(CallError::Test(why)) => Outcome::Fail(why),
                                Err(CallError::Fatal(why)) => {
                                    result.aborted = Some(why.clone());
                                    Outcome::Fail(why)
                                }
                            }
                        }
                    }
                };
                fr.tests.push(TestResult {
                    op: group.kind.clone(),
                    tc_id: test.tc_id,
                    comment: test.comment.clone(),
                    outcome,
                });
            }
        }
        let counted: usize = file.test_groups.iter().map(|g| g.tests.len()).sum();
        if counted as u64 != file.number_of_tests {
            fr.tests.push(TestResult {
                op: "(file)".into(),
                tc_id: 0,
                comment: "numberOfTests".into(),
                outcome: Outcome::Fail(format!(
                    "numberOfTests is {} but the file has {counted} tests",
                    file.number_of_tests
                )),
            });
        }
        result.files.push(fr);
    }
    Ok(result)
}

/// Writes the human-readable report; its last line is `N passed, M failed`.
pub fn report(r: &RunResult, allow_unsupported: bool, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &r.files {
        writeln!(
            out,
            "{}: {} tests, {} passed, {} failed, {} unsupported{}",
            f.name,
            f.tests.len(),
            f.count(|o| *o == Outcome::Pass),
            f.count(|o| matches!(o, Outcome::Fail(_))),
            f.count(|o| *o == Outcome::Unsupported),
            if f.outside_profile > 0 {
                format!(" ({} outside the profile, not run)", f.outside_profile)
            } else {
                String::new()
            },
        )?;
    }
    for f in &r.files {
        let mut unsupported: Vec<(&str, usize)> = Vec::new();
        for t in &f.tests {
            match &t.outcome {
                Outcome::Fail(why) => writeln!(
                    out,
                    "FAIL {} tcId {} [{}] {}: {why}",
                    f.name, t.tc_id, t.op, t.comment
                )?,
                Outcome::Unsupported => match unsupported.iter_mut().find(|(op, _)| *op == t.op) {
                    Some((_, n)) => *n += 1,
                    None => unsupported.push((&t.op, 1)),
                },
                Outcome::Pass => {}
            }
        }
        for (op, n) in unsupported {
            writeln!(
                out,
                "{} {}: {op} unsupported ({n} tests)",
                if allow_unsupported { "SKIP" } else { "FAIL" },
                f.name
            )?;
        }
    }
    if let Some(why) = &r.aborted {
        writeln!(out, "STOPPED: {why}")?;
    }
    let (passed, failed, unsupported) = r.totals();
    if unsupported > 0 {
        writeln!(
            out,
            "{unsupported} unsupported{}",
            if allow_unsupported {
                " (allowed)"
            } else {
                " (counted as failed)"
            }
        )?;
    }
    let failed = failed + if allow_unsupported { 0 } else { unsupported };
    writeln!(out, "{passed} passed, {failed} failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn test(valid: bool, failure: Option<&str>) -> Test {
        Test {
            tc_id: 1,
            comment: String::new(),
            flags: Vec::new(),
            fields: Map::new(),
            result: if valid { "valid" } else { "invalid" }.into(),
            failure: failure.map(Into::into),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn judges_outputs_field_by_field() {
        let t = test(true, None);
        let want = obj(json!({ "a": "ab", "n": 3 }));
        assert_eq!(
            judge(
                &t,
                &want,
                Response::Ok(obj(json!({ "a": "ab", "n": 3, "extra": 1 })))
            ),
            Outcome::Pass
        );
        let Outcome::Fail(why) = judge(&t, &want, Response::Ok(obj(json!({ "a": "AB" })))) else {
            panic!("upper-case hex accepted");
        };
        assert!(why.contains("output a: hex must be lower-case"), "{why}");
        assert!(why.contains("output n missing"), "{why}");
        let Outcome::Fail(why) = judge(
            &t,
            &want,
            Response::Error {
                class: "malformed".into(),
                message: Some("detail".into()),
            },
        ) else {
            panic!("error accepted for a valid test");
        };
        assert_eq!(why, "expected success, got failure malformed (detail)");
    }

    #[test]
    fn judges_failure_classes_exactly() {
        let t = test(false, Some("decryption-failed"));
        let err = |c: &str| Response::Error {
            class: c.into(),
            message: None,
        };
        assert_eq!(
            judge(&t, &Map::new(), err("decryption-failed")),
            Outcome::Pass
        );
        assert!(matches!(
            judge(&t, &Map::new(), err("malformed")),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            judge(&t, &Map::new(), err(crate::protocol::DRIVER_ERROR)),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            judge(&t, &Map::new(), Response::Ok(Map::new())),
            Outcome::Fail(_)
        ));
        assert_eq!(
            judge(&t, &Map::new(), Response::Unsupported),
            Outcome::Unsupported
        );
    }
}
