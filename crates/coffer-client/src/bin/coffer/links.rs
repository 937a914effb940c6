//! `coffer link ...` and `coffer open` (owned by the "share" helper).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use coffer_client::links::{LinkInfo, NewLink, OpenLink};
use coffer_client::{Error, RemotePath};
use serde_json::json;

use crate::{Ctx, PasswordKind};

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

/// Parses a duration: `N` (seconds) or `N` followed by `s`, `m`, `h`, `d` or `w`.
fn parse_duration(text: &str) -> Result<u64, Error> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => 0,
    };
    let n: u64 = num.parse().unwrap_or(0);
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(Error::Usage(format!(
            "--expires {text:?}: give a positive duration such as 90s, 30m, 12h or 7d"
        ))),
    }
}

fn describe(l: &LinkInfo) -> String {
    let mut extra = Vec::new();
    if l.password {
        extra.push("password".to_owned());
    }
    if let Some(e) = l.expires_at {
        extra.push(format!("expires {e}"));
    }
    if let Some(m) = l.max_downloads {
        extra.push(format!("{}/{m} downloads", l.downloads));
    }
    format!(
        "{}  {}  {} {}  [{}]{}\n  {}",
        l.link_id,
        l.state,
        l.kind,
        if l.path.is_empty() {
            "(deleted)"
        } else {
            &l.path
        },
        l.created_at,
        if extra.is_empty() {
            String::new()
        } else {
            format!("  {}", extra.join(", "))
        },
        l.url
    )
}

/// Runs `coffer link ...`.
pub(crate) async fn run(ctx: &Ctx, command: LinkCommand) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    match command {
        LinkCommand::Create {
            path,
            password,
            expires,
            max_downloads,
            upload_only,
        } => {
            let expires_in = expires.as_deref().map(parse_duration).transpose()?;
            let password = if password {
                Some(ctx.password(PasswordKind::NewLink)?)
            } else {
                None
            };
            let opts = NewLink {
                password,
                expires_in,
                max_downloads,
                upload_only,
            };
            let info = c.link_create(&RemotePath::parse(&path)?, &opts).await?;
            ctx.emit(&serde_json::to_value(&info)?, &info.url);
        }
        LinkCommand::List => {
            let filed = c.file_drops().await?;
            for f in &filed {
                if !ctx.json {
                    eprintln!(
                        "filed an upload: {}/{} ({} bytes)",
                        f.folder.trim_end_matches('/'),
                        f.name,
                        f.size
                    );
                }
            }
            let links = c.links().await?;
            let human = links.iter().map(describe).collect::<Vec<_>>().join("\n");
            ctx.emit(
                &json!({ "links": links, "filed_uploads": filed }),
                if links.is_empty() { "no links" } else { &human },
            );
        }
        LinkCommand::Revoke { link } => {
            let id = c.link_revoke(&link).await?;
            ctx.emit(
                &json!({ "revoked": id.to_b64() }),
                &format!("revoked link {id}"),
            );
        }
        LinkCommand::Rotate { link } => {
            let info = c.link_rotate(&link).await?;
            ctx.emit(&serde_json::to_value(&info)?, &info.url);
        }
    }
    Ok(())
}

/// Runs `coffer open`.
pub(crate) async fn open(ctx: &Ctx, args: OpenArgs) -> anyhow::Result<()> {
    let link = OpenLink::open(&args.url, || {
        ctx.password(PasswordKind::Link)
            .map_err(|e| Error::Usage(format!("{e:#}")))
    })
    .await?;
    match (&args.upload, link.is_upload_only()) {
        (Some(file), true) => {
            let bar = ctx.progress("upload");
            let r = link.upload(file, &bar).await;
            bar.finish();
            let up = r?;
            ctx.emit(
                &json!({ "uploaded": up.name, "size": up.size }),
                &format!("uploaded {} ({} bytes)", up.name, up.size),
            );
        }
        (None, true) => {
            return Err(Error::Usage(
                "this link is upload-only: give the file with --upload FILE".into(),
            )
            .into())
        }
        (Some(_), false) => {
            return Err(
                Error::Usage("this link is for reading: open it without --upload".into()).into(),
            )
        }
        (None, false) => {
            let bar = ctx.progress("download");
            let r = link.download(args.output.as_deref(), &bar).await;
            bar.finish();
            let d = r?;
            if d.path != "-" {
                ctx.emit(
                    &json!({ "path": d.path, "files": d.files, "bytes": d.bytes, "link": link.info() }),
                    &format!("wrote {} ({} files, {} bytes)", d.path, d.files, d.bytes),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").ok(), Some(90));
        assert_eq!(parse_duration("2s").ok(), Some(2));
        assert_eq!(parse_duration("30m").ok(), Some(1800));
        assert_eq!(parse_duration("12h").ok(), Some(43_200));
        assert_eq!(parse_duration("7d").ok(), Some(604_800));
        for bad in ["", "0", "-5m", "5x", "m", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
