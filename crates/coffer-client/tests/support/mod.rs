//! End-to-end harness: a real `cofferd` process on an ephemeral port with a temporary data
//! directory, and real `coffer` processes, each user with its own temporary `COFFER_CONFIG_DIR`.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub mod proxy;

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery staple";

/// Rate limits a test run cannot trip (one address registers and logs in many users).
pub const TEST_CONFIG_TOML: &str = r#"
# Queue-delay shedding (on by default) off: a loaded test machine stalls the server, and a
# shed request would fail a functional test.
[limits]
max-queue-delay-ms = 0

[rate-limits]
register-per-address = { count = 1000000, per-secs = 1 }
login-per-user-address = { count = 1000000, per-secs = 1 }
login-per-user = { count = 1000000, per-secs = 1 }
login-per-address = { count = 1000000, per-secs = 1 }
login-failures-per-user = { count = 1000000, per-secs = 1 }
reauth-failures-per-account = { count = 1000000, per-secs = 1 }
lookups-per-session = { count = 1000000, per-secs = 1 }
identity-reads-per-address = { count = 1000000, per-secs = 1 }
unlock-failures-per-link = { count = 1000000, per-secs = 1 }
unlock-failures-per-address = { count = 1000000, per-secs = 1 }
link-requests-per-address = { count = 1000000, per-secs = 1 }
link-requests-per-link = { count = 1000000, per-secs = 1 }
drops-per-link = { count = 1000000, per-secs = 1 }
drops-per-address = { count = 1000000, per-secs = 1 }
requests-per-session = { count = 1000000, per-secs = 1 }
"#;

/// The `coffer` binary under test.
pub fn coffer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coffer"))
}

/// The `cofferd` binary next to `coffer`, brought up to date once per test process with
/// `cargo build -p coffer-server --bin cofferd` (a quick no-op when it is fresh: `cargo test -p
/// coffer-client` alone would otherwise run a stale server). `COFFER_TEST_CARGO_BUILD=0` skips
/// the build when the binary exists.
pub fn cofferd_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let coffer = coffer_bin();
        let dir = coffer.parent().expect("bin dir").to_path_buf();
        let bin = dir.join(format!("cofferd{}", std::env::consts::EXE_SUFFIX));
        let skip = std::env::var("COFFER_TEST_CARGO_BUILD").is_ok_and(|v| v == "0");
        if !(skip && bin.exists()) {
            // target/<profile>/coffer: build into the same target directory.
            let target = dir.parent().expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "coffer-server", "--bin", "cofferd"]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd
                .env("CARGO_TARGET_DIR", target)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building cofferd failed");
        }
        assert!(bin.exists(), "cofferd not found at {}", bin.display());
        bin
    })
    .clone()
}

/// A running `cofferd`.
pub struct Server {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    /// Starts `cofferd` on 127.0.0.1 with an ephemeral port and a fresh data directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("cofferd.toml");
        std::fs::write(&config, TEST_CONFIG_TOML).expect("config");
        let data = dir.path().join("data");
        // The server's warnings and errors, printed if the test fails (see `Drop`).
        let log = std::fs::File::create(dir.path().join(SERVER_LOG)).expect("server log");
        let mut child = Command::new(cofferd_bin())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn cofferd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("cofferd output");
        let url = line
            .trim()
            .strip_prefix("cofferd listening on ")
            .unwrap_or_else(|| panic!("unexpected cofferd output {line:?}"))
            .to_owned();
        Server { url, dir, child }
    }

    /// The server's data directory (database and blobs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A new user of this server, with its own empty config directory (not registered).
    pub fn user(&self, name: &str) -> User {
        User {
            name: name.to_owned(),
            server: self.url.clone(),
            config: tempfile::tempdir().expect("config dir"),
        }
    }

    /// Registers `name` (which also logs in).
    pub fn register(&self, name: &str) -> User {
        let u = self.user(name);
        u.ok(&["register", name]);
        u
    }
}

/// The file in the server's directory that holds its standard error (`RUST_LOG=warn`).
const SERVER_LOG: &str = "cofferd.log";

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A failing test shows what the server logged (the cause of a `500`, say).
            let log = std::fs::read_to_string(self.dir.path().join(SERVER_LOG)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("cofferd's log (last 60 lines):");
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("  {l}");
            }
        }
    }
}

/// A user: a config directory and a password; runs `coffer` processes.
pub struct User {
    pub name: String,
    pub server: String,
    pub config: tempfile::TempDir,
}

impl User {
    /// A `coffer` command for this user (server, config dir, password in the environment).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(coffer_bin());
        c.args(args)
            .env("COFFER_SERVER", &self.server)
            .env("COFFER_CONFIG_DIR", self.config.path())
            .env("COFFER_PASSWORD", PASSWORD)
            .env_remove("COFFER_NEW_PASSWORD")
            .env_remove("COFFER_LINK_PASSWORD")
            .stdin(Stdio::null());
        c
    }

    /// Runs `coffer ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run coffer")
    }

    /// Runs `coffer ARGS` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run coffer")
    }

    /// Runs `coffer ARGS` with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coffer");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait coffer")
    }

    /// Runs `coffer ARGS`, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ok(&out, args)
    }

    /// Runs `coffer --json ARGS`, asserts success, returns the JSON value printed.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{args:?}: bad JSON {out:?}: {e}"))
    }

    /// Runs `coffer ARGS`, asserts failure with exit `code`, returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_fails(&out, args, code)
    }

    /// The config directory.
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }
}

/// Asserts that `out` succeeded; returns its stdout.
#[track_caller]
pub fn assert_ok(out: &Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "coffer {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// Asserts that `out` failed with exit `code` and a one-line error; returns stderr.
#[track_caller]
pub fn assert_fails(out: &Output, args: &[&str], code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "coffer {args:?}: expected exit {code}; stderr: {err}; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.starts_with("coffer: "), "not a one-line error: {err:?}");
    err
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut v);
    v
}

/// A unique user name for this test process.
pub fn unique(prefix: &str) -> String {
    let r = random_bytes(4);
    format!("{prefix}{}", hex::encode(r))
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no file below `dir` contains any of `needles` (plaintext samples or key bytes).
#[track_caller]
pub fn assert_absent(dir: &Path, needles: &[(&str, &[u8])]) {
    for f in files_below(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for (what, n) in needles {
            assert!(
                !contains(&bytes, n),
                "{what} found in server file {}",
                f.display()
            );
        }
    }
}

/// Writes `bytes` to `dir/name` (a local file for a test to upload) and returns its path.
pub fn write_local(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write local file");
    p
}

/// `p` as a command-line argument.
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
