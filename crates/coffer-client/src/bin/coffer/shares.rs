//! `coffer share ...` (owned by the "share" helper).

use clap::Subcommand;
use coffer_client::Error;

use crate::Ctx;

/// `coffer share ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ShareCommand {
    /// Share a folder with a user (verifies and pins their identity).
    Add {
        /// The folder.
        path: String,
        /// The user.
        user: String,
        /// Let the member write (default: read-only).
        #[arg(long)]
        write: bool,
    },
    /// Remove a member (rotates the folder's keys).
    Remove {
        /// The folder.
        path: String,
        /// The user.
        user: String,
    },
    /// List your shares and the folders shared with you.
    List,
    /// Leave a folder shared with you.
    Leave {
        /// The folder (`/shared/OWNER/NAME`).
        path: String,
    },
}

/// Runs `coffer share ...`.
pub(crate) async fn run(ctx: &Ctx, command: ShareCommand) -> anyhow::Result<()> {
    let _ = (ctx, command);
    Err(Error::Unimplemented("coffer share").into())
}
