//! `coffer keys ...` and `coffer fingerprint` (owned by the "share" helper).

use clap::Subcommand;
use coffer_client::Error;

use crate::Ctx;

/// `coffer keys ...`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Compromise recovery: new master key and identity generation, everything re-wrapped,
    /// every other session ended.
    Rotate,
}

/// Runs `coffer keys ...`.
pub(crate) async fn run(ctx: &Ctx, command: KeysCommand) -> anyhow::Result<()> {
    let _ = (ctx, command);
    Err(Error::Unimplemented("coffer keys").into())
}

/// Runs `coffer fingerprint [USER]`.
pub(crate) async fn fingerprint(ctx: &Ctx, user: Option<&str>) -> anyhow::Result<()> {
    let _ = (ctx, user);
    Err(Error::Unimplemented("coffer fingerprint").into())
}
