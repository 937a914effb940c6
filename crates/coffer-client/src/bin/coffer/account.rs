//! `coffer register | login | logout | whoami | passwd | sessions | account delete`.

use coffer_client::Error;
use serde_json::json;

use crate::cli::{AccountCommand, SessionsCommand};
use crate::{Ctx, PasswordKind};

/// `coffer register USER`: creates the account and logs in.
pub(crate) async fn register(ctx: &Ctx, user: &str) -> anyhow::Result<()> {
    let mut c = ctx.client()?;
    let pw = ctx.password(
        if ctx.password_stdin || std::env::var_os("COFFER_PASSWORD").is_some() {
            PasswordKind::Account
        } else {
            PasswordKind::NewAccount
        },
    )?;
    c.register(user, pw.as_bytes()).await?;
    let s = c.session()?;
    ctx.emit(
        &json!({ "username": s.username, "account_id": s.account_id().to_b64(), "server": s.server }),
        &format!("registered and logged in as {} on {}", s.username, s.server),
    );
    Ok(())
}

/// `coffer login USER`.
pub(crate) async fn login(ctx: &Ctx, user: &str) -> anyhow::Result<()> {
    let mut c = ctx.client()?;
    let pw = ctx.password(PasswordKind::Account)?;
    c.login(user, pw.as_bytes()).await?;
    let s = c.session()?;
    ctx.emit(
        &json!({ "username": s.username, "account_id": s.account_id().to_b64(), "server": s.server }),
        &format!("logged in as {} on {}", s.username, s.server),
    );
    Ok(())
}

/// `coffer logout`.
pub(crate) async fn logout(ctx: &Ctx) -> anyhow::Result<()> {
    let mut c = ctx.client()?;
    let was = c.session_opt().map(|s| s.username.clone());
    c.logout().await?;
    ctx.emit(
        &json!({ "logged_out": was }),
        &match was {
            Some(u) => format!("logged out {u}"),
            None => "not logged in".into(),
        },
    );
    Ok(())
}

/// `coffer whoami`.
pub(crate) async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let w = c.whoami().await?;
    let human = format!(
        "{} on {}\naccount {}\nidentity generation {}, fingerprint {}\nstorage used {} bytes{}",
        w.username,
        w.server,
        w.account_id,
        w.identity_generation,
        w.fingerprint,
        w.storage_used,
        w.storage_quota
            .map(|q| format!(" of {q}"))
            .unwrap_or_default()
    );
    ctx.emit(&serde_json::to_value(&w)?, &human);
    Ok(())
}

/// `coffer passwd`.
pub(crate) async fn passwd(ctx: &Ctx) -> anyhow::Result<()> {
    let mut c = ctx.logged_in()?;
    let old = ctx.password(PasswordKind::Account)?;
    let new = ctx.password(PasswordKind::NewAccount)?;
    let revoked = c.change_password(old.as_bytes(), new.as_bytes()).await?;
    ctx.emit(
        &json!({ "password_changed": true, "sessions_revoked": revoked }),
        &format!("password changed; {revoked} other session(s) ended"),
    );
    Ok(())
}

/// `coffer sessions [list | revoke ID | revoke-others]`.
pub(crate) async fn sessions(ctx: &Ctx, command: Option<SessionsCommand>) -> anyhow::Result<()> {
    let mut c = ctx.logged_in()?;
    match command.unwrap_or(SessionsCommand::List) {
        SessionsCommand::List => {
            let list = c.sessions().await?;
            let mut human = String::new();
            for s in &list {
                human.push_str(&format!(
                    "{}{}  {}  created {}  last used {}\n",
                    if s.current { "* " } else { "  " },
                    s.id,
                    s.label,
                    s.created_at,
                    s.last_used_at
                ));
            }
            ctx.emit(&serde_json::to_value(&list)?, &human);
        }
        SessionsCommand::Revoke { id } => {
            c.revoke_session(&id).await?;
            ctx.emit(&json!({ "revoked": id }), &format!("session {id} ended"));
        }
        SessionsCommand::RevokeOthers => {
            let n = c.revoke_other_sessions().await?;
            ctx.emit(
                &json!({ "revoked": n }),
                &format!("{n} other session(s) ended"),
            );
        }
    }
    Ok(())
}

/// `coffer account delete [--yes]`.
pub(crate) async fn account(ctx: &Ctx, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Delete { yes } => {
            let mut c = ctx.logged_in()?;
            let name = c.session()?.username.clone();
            if !yes
                && !ctx.confirm(&format!(
                    "Delete the account {name} and everything in it, for good?"
                ))?
            {
                return Err(Error::Usage(
                    "not deleted: confirm on a terminal, or pass --yes".into(),
                )
                .into());
            }
            let pw = ctx.password(PasswordKind::Account)?;
            c.delete_account(pw.as_bytes()).await?;
            ctx.emit(
                &json!({ "deleted": name }),
                &format!("account {name} deleted"),
            );
        }
    }
    Ok(())
}
