//! `coffer link ...` and `coffer open` (owned by the "share" helper).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use coffer_client::Error;

use crate::Ctx;

/// `coffer link ...`
#[derive(Debug, Subcommand)]
pub(crate) enum LinkCommand {
    /// Create a link to a file or folder; prints its URL.
    Create {
        /// The remote path.
        path: String,
        /// Protect the link with a password (COFFER_LINK_PASSWORD, --password-stdin or a prompt).
        #[arg(long)]
        password: bool,
        /// Expire after DURATION (e.g. 30m, 12h, 7d).
        #[arg(long)]
        expires: Option<String>,
        /// Allow at most N downloads (for an upload-only link: N uploads).
        #[arg(long)]
        max_downloads: Option<u64>,
        /// Upload-only: link holders can add files to the folder but read nothing.
        #[arg(long)]
        upload_only: bool,
    },
    /// List your links.
    List,
    /// Revoke a link.
    Revoke {
        /// The link id or URL.
        link: String,
    },
    /// Replace a link with a new URL (the old one stops working); prints the new URL.
    Rotate {
        /// The link id or URL.
        link: String,
    },
}

/// `coffer open URL [-o OUT] [--upload FILE]`
#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// The link URL.
    pub(crate) url: String,
    /// Where to write (a file, or a directory for a folder link); `-` for stdout.
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<PathBuf>,
    /// For an upload-only link: the file to upload.
    #[arg(long)]
    pub(crate) upload: Option<PathBuf>,
}

/// Runs `coffer link ...`.
pub(crate) async fn run(ctx: &Ctx, command: LinkCommand) -> anyhow::Result<()> {
    let _ = (ctx, command);
    Err(Error::Unimplemented("coffer link").into())
}

/// Runs `coffer open`.
pub(crate) async fn open(ctx: &Ctx, args: OpenArgs) -> anyhow::Result<()> {
    let _ = (ctx, args);
    Err(Error::Unimplemented("coffer open").into())
}
