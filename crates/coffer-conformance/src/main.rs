//! `coffer-conformance`: runs the Coffer v1 vectors against coffer-core or an external driver,
//! and serves coffer-core as a driver (spec/conformance.md).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use coffer_conformance::doc::{self, Profile};
use coffer_conformance::protocol::{Request, Response, DRIVER_ERROR};
use coffer_conformance::{junit, ops, runner, server};

#[derive(Parser)]
#[command(
    name = "coffer-conformance",
    version,
    about = "Coffer v1 conformance runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every published vector against coffer-core, or against a driver with --driver.
    Vectors {
        /// Driver command, started with `sh -c`; without it, coffer-core runs in-process.
        #[arg(long)]
        driver: Option<String>,
        /// Directory of the vector files (default: ./test-vectors, else this source tree's).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only these files (e.g. `--file seal --file content.json`).
        #[arg(long = "file")]
        files: Vec<String>,
        /// Write a JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Seconds a driver has to answer one request.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        /// Report unsupported operations as skipped instead of failed.
        #[arg(long)]
        allow_unsupported: bool,
        /// Run only the operations of a profile.
        #[arg(long, value_enum, default_value_t = ProfileArg::Full)]
        profile: ProfileArg,
    },
    /// Run the black-box server suite against a server implementing spec §11.
    Server {
        /// The server's base URL, e.g. http://127.0.0.1:8080 (without /v1).
        #[arg(long)]
        url: String,
        /// Write a JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Run only the areas whose name contains PATTERN; AREA/TEXT runs AREA and reports only
        /// its checks whose name contains TEXT.
        #[arg(long, value_name = "PATTERN")]
        only: Option<String>,
        /// The OPAQUE server identity the server is configured with (spec §6.2).
        #[arg(long, default_value = "coffer")]
        server_identity: String,
        /// Longest total wait, in seconds, for one request answered 429/503 with Retry-After.
        #[arg(long, default_value_t = 60)]
        max_wait: u64,
        /// Print only the summary, not one line per check.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the operation table of spec/conformance.md (markdown).
    Ops {
        /// Directory of the vector files.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Serve coffer-core over the driver protocol on stdin/stdout.
    Driver {
        /// Deliberate misbehaviour, to test runners.
        #[arg(long, value_enum, hide = true)]
        fault: Option<Fault>,
        /// When the fault starts (request count).
        #[arg(long, hide = true, default_value_t = 0)]
        fault_after: u64,
    },
}

/// Conformance profiles (spec/conformance.md).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    /// Every operation.
    Full,
    /// The operations of §1–§5 and §10.
    LinkOpener,
}

/// Ways the test driver misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// Flip one hex digit of the first hex output.
    Corrupt,
    /// Answer success (with no outputs) to everything that fails.
    AcceptInvalid,
    /// Exit without answering.
    Exit,
    /// Print a line that is not JSON.
    Garbage,
    /// Answer with the wrong id.
    WrongId,
    /// Never answer.
    Hang,
    /// Answer `unsupported`.
    Unsupported,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coffer-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn default_dir() -> PathBuf {
    let here = PathBuf::from("test-vectors");
    if here.is_dir() {
        here
    } else {
        coffer_vectors::default_dir()
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Cmd::Vectors {
            driver,
            dir,
            files,
            junit: junit_path,
            timeout,
            allow_unsupported,
            profile,
        } => {
            let profile = match profile {
                ProfileArg::Full => Profile::Full,
                ProfileArg::LinkOpener => Profile::LinkOpener,
            };
            let dir = dir.unwrap_or_else(default_dir);
            let paths = runner::vector_files(&dir, &files)?;
            anyhow::ensure!(
                timeout.is_finite() && timeout > 0.0,
                "--timeout must be positive"
            );
            let result = match driver {
                Some(cmd) => {
                    let mut d = runner::Driver::new(&cmd, Duration::from_secs_f64(timeout));
                    runner::run(&paths, &mut d, profile)?
                }
                None => runner::run(&paths, &mut runner::InProcess, profile)?,
            };
            let stdout = std::io::stdout();
            runner::report(&result, allow_unsupported, &mut stdout.lock())?;
            if let Some(p) = junit_path {
                std::fs::write(&p, junit::to_xml(&result, allow_unsupported))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(if result.success(allow_unsupported) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Server {
            url,
            junit: junit_path,
            only,
            server_identity,
            max_wait,
            quiet,
        } => {
            let opts = server::Options {
                url,
                server_identity,
                only,
                max_wait: Duration::from_secs(max_wait),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let live: Option<Box<dyn Write + Send>> = if quiet {
                None
            } else {
                Some(Box::new(std::io::stdout()))
            };
            let result = rt.block_on(server::run(&opts, live));
            let stdout = std::io::stdout();
            server::report(&result, &mut stdout.lock())?;
            if let Some(p) = junit_path {
                std::fs::write(&p, server::junit(&result))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(if result.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Ops { dir } => {
            let dir = dir.unwrap_or_else(default_dir);
            let mut files = Vec::new();
            for p in runner::vector_files(&dir, &[])? {
                let text = std::fs::read_to_string(&p)?;
                let name = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                files.push((
                    name,
                    serde_json::from_str(&text)
                        .with_context(|| format!("parsing {}", p.display()))?,
                ));
            }
            print!("{}", doc::ops_markdown(&files));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Driver { fault, fault_after } => {
            serve(fault, fault_after)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn corrupt(resp: Response) -> Response {
    match resp {
        Response::Ok(mut m) => {
            for v in m.values_mut() {
                if let Some(s) = v.as_str() {
                    if !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()) {
                        let mut b = s.as_bytes().to_vec();
                        b[0] = if b[0] == b'0' { b'1' } else { b'0' };
                        *v = serde_json::Value::String(String::from_utf8_lossy(&b).into_owned());
                        break;
                    }
                }
            }
            Response::Ok(m)
        }
        other => other,
    }
}

fn serve(fault: Option<Fault>, after: u64) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut n = 0u64;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let fault = fault.filter(|_| n > after);
        let (id, resp) = match Request::parse(&line) {
            Ok(req) => (req.id, ops::handle(&req.op, &req.params, &req.input)),
            Err(e) => (
                0,
                Response::Error {
                    class: DRIVER_ERROR.into(),
                    message: Some(format!("bad request: {e}")),
                },
            ),
        };
        let text = match fault {
            None => resp.to_line(id),
            Some(Fault::Corrupt) => corrupt(resp).to_line(id),
            Some(Fault::AcceptInvalid) => match resp {
                Response::Error { .. } => Response::Ok(Default::default()).to_line(id),
                other => other.to_line(id),
            },
            Some(Fault::Exit) => return Ok(()),
            Some(Fault::Garbage) => "this is not json".to_owned(),
            Some(Fault::WrongId) => resp.to_line(id + 1),
            Some(Fault::Hang) => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Some(Fault::Unsupported) => Response::Unsupported.to_line(id),
        };
        writeln!(out, "{text}")?;
        out.flush()?;
    }
    Ok(())
}
