//! `coffer share ...` (owned by the "share" helper).

use anyhow::Context as _;
use clap::Subcommand;
use coffer_client::RemotePath;
use serde_json::json;

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
    /// Remove a member (rotates the folder's keys; your links to the folder are re-sealed).
    Remove {
        /// The folder.
        path: String,
        /// The user.
        user: String,
        /// Also rotate every re-sealed link (new URLs; the old ones stop working): for links
        /// whose URL the removed member may have seen (spec §9.3).
        #[arg(long)]
        rotate_links: bool,
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
    let c = ctx.logged_in()?;
    match command {
        ShareCommand::Add { path, user, write } => {
            let p = RemotePath::parse(&path)?;
            let a = c.share_add(&p, &user, write).await?;
            let pin = if a.first_use {
                "pinned on first use: compare it with them"
            } else {
                "matches the pinned identity"
            };
            ctx.emit(
                &json!({ "path": p.to_string(), "user": user, "write": write, "share": a }),
                &format!(
                    "shared {p} with {user} ({})\n{user} generation {}: {}\n({pin})",
                    if write { "read and write" } else { "read only" },
                    a.identity_generation,
                    a.fingerprint
                ),
            );
        }
        ShareCommand::Remove {
            path,
            user,
            rotate_links,
        } => {
            let p = RemotePath::parse(&path)?;
            let (generation, links) = c.share_remove(&p, &user).await?;
            let mut human =
                format!("removed {user} from {p}; its keys moved to generation {generation}");
            let mut rotated = Vec::new();
            for id in &links {
                if rotate_links {
                    // The removal is done; a failed rotation says what is left to do.
                    let info = c.link_rotate(id).await.with_context(|| {
                        format!(
                            "removed {user} from {p} (generation {generation}), but rotating \
                             link {id} failed; rotate it with `coffer link rotate {id}`"
                        )
                    })?;
                    human.push_str(&format!("\nlink {id} rotated: {}", info.url));
                    rotated.push(
                        json!({ "old_link_id": id, "link_id": info.link_id, "url": info.url }),
                    );
                } else {
                    human.push_str(&format!(
                        "\nlink {id} re-sealed (same URL); if {user} may have seen it, rotate \
                         it: coffer link rotate {id}"
                    ));
                }
            }
            ctx.emit(
                &json!({
                    "path": p.to_string(),
                    "removed": user,
                    "generation": generation,
                    "resealed": links,
                    "rotated": rotated,
                }),
                &human,
            );
        }
        ShareCommand::List => {
            let owned = c.shares_owned().await?;
            let incoming = c.incoming().await?;
            let mut human = Vec::new();
            for s in &owned {
                let members = s
                    .members
                    .iter()
                    .map(|m| format!("{} ({})", m.user, m.permission))
                    .collect::<Vec<_>>()
                    .join(", ");
                human.push(format!(
                    "{}  shared with {}{}",
                    s.folder,
                    if members.is_empty() {
                        "nobody"
                    } else {
                        &members
                    },
                    if s.departed > 0 {
                        format!("; {} left (remove them to rotate the keys)", s.departed)
                    } else {
                        String::new()
                    }
                ));
            }
            let inc: Vec<_> = incoming
                .iter()
                .map(|i| {
                    human.push(format!(
                        "/shared/{}/{}  from {} ({})",
                        i.owner,
                        i.name,
                        i.owner,
                        if i.permission == coffer_core::share::PERMISSION_WRITE {
                            "write"
                        } else {
                            "read"
                        }
                    ));
                    json!({ "owner": i.owner, "name": i.name, "path": format!("/shared/{}/{}", i.owner, i.name),
                            "write": i.permission == coffer_core::share::PERMISSION_WRITE })
                })
                .collect();
            let human = if human.is_empty() {
                "no shares".to_owned()
            } else {
                human.join("\n")
            };
            ctx.emit(&json!({ "owned": owned, "incoming": inc }), &human);
        }
        ShareCommand::Leave { path } => {
            let p = RemotePath::parse(&path)?;
            c.share_leave(&p).await?;
            ctx.emit(&json!({ "left": p.to_string() }), &format!("left {p}"));
        }
    }
    Ok(())
}
