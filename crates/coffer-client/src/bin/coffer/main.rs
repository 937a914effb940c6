//! `coffer`: the Coffer command-line client.
//!
//! Global options: `--server URL` (env `COFFER_SERVER`), `--json` (machine-readable output on
//! every command), `--password-stdin` (read passwords from standard input, one per line).
//! Passwords are otherwise taken from `COFFER_PASSWORD` (`COFFER_NEW_PASSWORD` for the new
//! password of `passwd`, `COFFER_LINK_PASSWORD` for links) or prompted for without echo on a
//! terminal. The session lives in `COFFER_CONFIG_DIR` (default: the OS config directory).
//!
//! Exit codes: 0 ok, 1 other error, 2 usage, 3 authentication (log in again / wrong password),
//! 4 not found, 5 integrity failure (the server or link served data that does not verify),
//! 6 conflict (exists, changed concurrently, link expired or used up), 7 server unavailable.

mod account;
mod cli;
mod files;
mod keys;
mod links;
mod shares;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Mutex;

use anyhow::Context as _;
use clap::Parser as _;
use coffer_client::error::exit;
use coffer_client::{Client, ConfigDir, Error};
use zeroize::Zeroizing;

use crate::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coffer: cannot start the runtime: {e}");
            std::process::exit(exit::GENERIC);
        }
    };
    let result = rt.block_on(run(cli));
    if let Err(e) = result {
        let (code, line, hint) = describe(&e);
        if json {
            let v = serde_json::json!({ "error": line, "exit_code": code, "hint": hint });
            eprintln!("{v}");
        } else {
            eprintln!("coffer: {line}");
            if let Some(h) = hint {
                eprintln!("hint: {h}");
            }
        }
        std::process::exit(code);
    }
}

/// The exit code, the one-line message and the hint of an error.
fn describe(e: &anyhow::Error) -> (i32, String, Option<&'static str>) {
    // Each cause once: an error whose message already ends with its source's (as
    // `Error::Io`'s does) does not repeat it.
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    let msg = msg.replace('\n', " ");
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(ce) => (ce.exit_code(), msg, ce.hint()),
        None => (exit::GENERIC, msg, None),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx::new(&cli)?;
    match cli.command {
        Command::Register { user } => account::register(&ctx, &user).await,
        Command::Login { user } => account::login(&ctx, &user).await,
        Command::Logout => account::logout(&ctx).await,
        Command::Whoami => account::whoami(&ctx).await,
        Command::Put { local, remote } => files::put(&ctx, &local, remote.as_deref()).await,
        Command::Get {
            remote,
            local,
            range,
        } => files::get(&ctx, &remote, local.as_deref(), range.as_deref()).await,
        Command::Ls { path } => files::ls(&ctx, path.as_deref().unwrap_or("/")).await,
        Command::Mkdir { path } => files::mkdir(&ctx, &path).await,
        Command::Mv { src, dst } => files::mv(&ctx, &src, &dst).await,
        Command::Rm { path } => files::rm(&ctx, &path).await,
        Command::Passwd => account::passwd(&ctx).await,
        Command::Sessions { command } => account::sessions(&ctx, command).await,
        Command::Account { command } => account::account(&ctx, command).await,
        Command::Link { command } => links::run(&ctx, command).await,
        Command::Open(args) => links::open(&ctx, args).await,
        Command::Share { command } => shares::run(&ctx, command).await,
        Command::Fingerprint { user } => keys::fingerprint(&ctx, user.as_deref()).await,
        Command::Keys { command } => keys::run(&ctx, command).await,
    }
}

/// Which password a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordKind {
    /// The account password (`COFFER_PASSWORD`).
    Account,
    /// A new account password (`COFFER_NEW_PASSWORD`), asked twice on a terminal.
    NewAccount,
    /// A link password (`COFFER_LINK_PASSWORD`).
    #[allow(dead_code)] // used by the link commands
    Link,
    /// A new link password (`COFFER_LINK_PASSWORD`), asked twice on a terminal.
    #[allow(dead_code)] // used by the link commands
    NewLink,
}

impl PasswordKind {
    fn env(self) -> &'static str {
        match self {
            PasswordKind::Account => "COFFER_PASSWORD",
            PasswordKind::NewAccount => "COFFER_NEW_PASSWORD",
            PasswordKind::Link | PasswordKind::NewLink => "COFFER_LINK_PASSWORD",
        }
    }

    fn prompt(self) -> &'static str {
        match self {
            PasswordKind::Account => "Password: ",
            PasswordKind::NewAccount => "New password: ",
            PasswordKind::Link => "Link password: ",
            PasswordKind::NewLink => "New link password: ",
        }
    }

    fn confirm(self) -> bool {
        matches!(self, PasswordKind::NewAccount | PasswordKind::NewLink)
    }
}

/// What every command gets: global options, the config directory, output helpers.
pub(crate) struct Ctx {
    /// The server URL.
    pub(crate) server: String,
    /// The OPAQUE server identity.
    pub(crate) server_identity: String,
    /// `--json`.
    pub(crate) json: bool,
    /// `--password-stdin`.
    pub(crate) password_stdin: bool,
    /// The config directory.
    pub(crate) config: ConfigDir,
    stdin_lines: Mutex<Option<std::io::Lines<std::io::StdinLock<'static>>>>,
}

impl Ctx {
    fn new(cli: &Cli) -> anyhow::Result<Self> {
        Ok(Ctx {
            server: cli.server.clone(),
            server_identity: cli.server_identity.clone(),
            json: cli.json,
            password_stdin: cli.password_stdin,
            config: ConfigDir::from_env()?,
            stdin_lines: Mutex::new(None),
        })
    }

    /// A client of the server, with the saved session if there is one.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.server, self.config.clone())?
            .with_server_identity(&self.server_identity))
    }

    /// A client that must be logged in.
    pub(crate) fn logged_in(&self) -> anyhow::Result<Client> {
        let c = self.client()?;
        c.session()?;
        Ok(c)
    }

    /// Reads a password: `--password-stdin` (next line), else the kind's environment
    /// variable, else a prompt without echo on a terminal.
    pub(crate) fn password(&self, kind: PasswordKind) -> anyhow::Result<Zeroizing<String>> {
        if self.password_stdin {
            let mut guard = self
                .stdin_lines
                .lock()
                .map_err(|_| anyhow::anyhow!("stdin lock poisoned"))?;
            let lines = guard.get_or_insert_with(|| std::io::stdin().lock().lines());
            let line = lines
                .next()
                .ok_or_else(|| {
                    Error::Usage("--password-stdin: standard input ended before a password".into())
                })?
                .context("reading a password from standard input")?;
            let pw = Zeroizing::new(line.trim_end_matches('\r').to_owned());
            return non_empty(pw);
        }
        if let Ok(v) = std::env::var(kind.env()) {
            return non_empty(Zeroizing::new(v));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(format!(
                "a password is needed: set {} or pass --password-stdin",
                kind.env()
            ))
            .into());
        }
        let pw = Zeroizing::new(
            rpassword::prompt_password(kind.prompt()).context("reading the password")?,
        );
        if kind.confirm() {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat it: ").context("reading the password")?,
            );
            if *again != *pw {
                return Err(Error::Usage("the two passwords differ".into()).into());
            }
        }
        non_empty(pw)
    }

    /// Asks a yes/no question on the terminal; `false` when not on a terminal.
    pub(crate) fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Ok(false);
        }
        eprint!("{question} [y/N] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer")?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    /// Prints a result: `value` as one JSON line with `--json`, else `human` (if not empty).
    pub(crate) fn emit(&self, value: &serde_json::Value, human: &str) {
        let mut out = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(out, "{value}");
        } else if !human.is_empty() {
            let _ = writeln!(out, "{}", human.trim_end_matches('\n'));
        }
    }

    /// A progress bar for `total` bytes on a terminal (quiet when piped or with `--json`).
    pub(crate) fn progress(&self, what: &str) -> Bar {
        if self.json || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Bar(Some(bar))
    }
}

fn non_empty(pw: Zeroizing<String>) -> anyhow::Result<Zeroizing<String>> {
    if pw.is_empty() {
        return Err(Error::Usage("the password is empty".into()).into());
    }
    Ok(pw)
}

/// A progress bar (or nothing), as a library [`coffer_client::files::Progress`].
pub(crate) struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl coffer_client::files::Progress for Bar {
    fn set_total(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}
