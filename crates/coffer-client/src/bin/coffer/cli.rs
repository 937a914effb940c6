//! The command line (clap derive): every command of the tool.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Remote paths start at your root (/); folders shared with you are under /shared/OWNER/NAME.

Passwords: prompted without echo on a terminal; for scripts COFFER_PASSWORD,
COFFER_NEW_PASSWORD (passwd), COFFER_LINK_PASSWORD (links) or --password-stdin.
The session is kept in COFFER_CONFIG_DIR (default: the OS config directory), mode 0600.

Exit codes: 0 ok, 1 other error, 2 usage, 3 authentication (log in / wrong password),
4 not found, 5 integrity failure (the server sent data that does not verify),
6 conflict (exists, changed meanwhile, link expired or used up), 7 server unavailable.";

/// Coffer: end-to-end encrypted file locker and sharing.
#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: an end-to-end encrypted file locker. The server sees only ciphertext.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// The server URL.
    #[arg(long, global = true, env = "COFFER_SERVER", default_value = coffer_client::DEFAULT_SERVER)]
    pub(crate) server: String,
    /// The server's OPAQUE identity (its configured `server.identity`).
    #[arg(long, global = true, env = "COFFER_SERVER_IDENTITY", default_value = coffer_client::DEFAULT_SERVER_IDENTITY, hide = true)]
    pub(crate) server_identity: String,
    /// Machine-readable output: one JSON value per result on stdout, errors as JSON on stderr.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Read passwords from standard input, one per line (current first, then new).
    #[arg(long, global = true)]
    pub(crate) password_stdin: bool,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an account and log in.
    Register {
        /// The user name.
        user: String,
    },
    /// Log in (the session is saved in the config directory).
    Login {
        /// The user name.
        user: String,
    },
    /// End the session on the server and delete it locally.
    Logout,
    /// Show the logged-in user and their identity fingerprint.
    Whoami,
    /// Upload a local file (resumes an interrupted upload of the same file).
    Put {
        /// The local file.
        local: PathBuf,
        /// The remote path or folder (default: `/`).
        remote: Option<String>,
    },
    /// Download a remote file.
    Get {
        /// The remote path.
        remote: String,
        /// The local file or directory (default: the current directory); `-` for stdout.
        local: Option<PathBuf>,
        /// Only the plaintext bytes FIRST-LAST (inclusive) or FIRST- (to the end).
        #[arg(long)]
        range: Option<String>,
    },
    /// List a folder (default `/`).
    Ls {
        /// The remote path.
        path: Option<String>,
    },
    /// Create a folder.
    Mkdir {
        /// The remote path.
        path: String,
    },
    /// Move or rename.
    Mv {
        /// The remote source.
        src: String,
        /// The remote destination (a folder: move into it).
        dst: String,
    },
    /// Remove a file or a folder with its contents.
    Rm {
        /// The remote path.
        path: String,
    },
    /// Links: create, list, revoke, rotate.
    Link {
        /// The link command.
        #[command(subcommand)]
        command: crate::links::LinkCommand,
    },
    /// Open a link (no account needed).
    Open(crate::links::OpenArgs),
    /// Shared folders: add, remove, list, leave.
    Share {
        /// The share command.
        #[command(subcommand)]
        command: crate::shares::ShareCommand,
    },
    /// Show the identity fingerprint of a user (default: yourself).
    Fingerprint {
        /// The user.
        user: Option<String>,
    },
    /// Change the password (ends your other sessions).
    Passwd,
    /// List or revoke sessions.
    Sessions {
        /// The sessions command (default: list).
        #[command(subcommand)]
        command: Option<SessionsCommand>,
    },
    /// Keys: compromise recovery.
    Keys {
        /// The keys command.
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// The account: delete.
    Account {
        /// The account command.
        #[command(subcommand)]
        command: AccountCommand,
    },
}

/// `coffer sessions ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List the account's sessions.
    List,
    /// End one session.
    Revoke {
        /// The session id (from `sessions list`).
        id: String,
    },
    /// End every session but this one.
    RevokeOthers,
}

/// `coffer account ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Delete the account and everything in it (asks for confirmation on a terminal).
    Delete {
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
}
