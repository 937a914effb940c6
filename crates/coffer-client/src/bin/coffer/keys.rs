//! `coffer keys ...` and `coffer fingerprint` (owned by the "share" helper).

use std::io::IsTerminal as _;

use clap::Subcommand;
use coffer_client::identity::PinOutcome;
use serde_json::json;

use crate::{Ctx, PasswordKind};

/// `coffer keys ...`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Compromise recovery: new master key and identity generation, everything re-wrapped,
    /// every other session ended.
    Rotate,
}

/// Runs `coffer keys ...`.
pub(crate) async fn run(ctx: &Ctx, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let mut c = ctx.logged_in()?;
            let pw = ctx.password(PasswordKind::Account)?;
            // A new password when one is given (COFFER_NEW_PASSWORD, a second line on stdin, or
            // a prompt); otherwise the current one is registered again (its keys are new anyway).
            let new = if ctx.password_stdin
                || std::env::var_os("COFFER_NEW_PASSWORD").is_some()
                || std::io::stdin().is_terminal()
            {
                ctx.password(PasswordKind::NewAccount)?
            } else {
                pw.clone()
            };
            let r = c.rotate_keys(pw.as_bytes(), new.as_bytes()).await?;
            let mut human = format!(
                "new identity generation {}: {}\nre-keyed {} nodes; ended {} other sessions",
                r.identity_generation, r.fingerprint, r.nodes, r.sessions_revoked
            );
            for l in &r.links {
                human.push_str(&format!("\nlink {} is now {}", l.old_link_id, l.url));
            }
            ctx.emit(&serde_json::to_value(&r)?, &human);
        }
    }
    Ok(())
}

/// Runs `coffer fingerprint [USER]`.
pub(crate) async fn fingerprint(ctx: &Ctx, user: Option<&str>) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    match user {
        None => {
            let v = c.own_identity().await?;
            ctx.emit(
                &json!({ "user": v.user_name, "generation": v.generation, "fingerprint": v.fingerprint.to_string() }),
                &format!("{} generation {}: {}", v.user_name, v.generation, v.fingerprint),
            );
        }
        Some(u) => {
            let id = c.lookup_identity(u).await?;
            let (pin, note) = match id.outcome {
                PinOutcome::FirstUse => (
                    "first-use",
                    "pinned on first use: compare it with them out of band".to_owned(),
                ),
                PinOutcome::Unchanged => ("pinned", "matches the pinned identity".to_owned()),
                PinOutcome::Rotated { from } => (
                    "rotated",
                    format!(
                        "CHANGED since generation {from}, through a valid rotation chain; the pin now follows generation {}",
                        id.current.generation
                    ),
                ),
            };
            ctx.emit(
                &json!({ "user": u, "account_id": id.account_id.to_b64(), "generation": id.current.generation,
                         "fingerprint": id.current.fingerprint.to_string(), "pin": pin }),
                &format!(
                    "{u} generation {}: {}\n({note})",
                    id.current.generation, id.current.fingerprint
                ),
            );
        }
    }
    Ok(())
}
