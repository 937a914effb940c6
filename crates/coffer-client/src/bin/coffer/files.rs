//! `coffer put | get | ls | mkdir | mv | rm`.

use std::path::Path;

use coffer_client::files::RemotePath;
use coffer_client::Error;
use serde_json::json;

use crate::Ctx;

/// `coffer put LOCAL [REMOTE]`.
pub(crate) async fn put(ctx: &Ctx, local: &Path, remote: Option<&str>) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let remote = RemotePath::parse(remote.unwrap_or("/"))?;
    let bar = ctx.progress("put");
    let out = c.put(local, &remote, &bar).await;
    bar.finish();
    let out = out?;
    ctx.emit(
        &serde_json::to_value(&out)?,
        &format!(
            "{} -> {} ({} bytes{})",
            local.display(),
            out.path,
            out.size,
            if out.resumed {
                format!(
                    ", resumed: {} of {} parts sent now",
                    out.parts_sent, out.parts_total
                )
            } else {
                String::new()
            }
        ),
    );
    Ok(())
}

/// Parses `FIRST-LAST` (inclusive) or `FIRST-` into a half-open range (`None` end: to EOF).
fn parse_range(text: &str) -> Result<(u64, Option<u64>), Error> {
    let bad = || Error::Usage(format!("--range {text:?}: expected FIRST-LAST or FIRST-"));
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.parse().map_err(|_| bad())?;
    if b.is_empty() {
        return Ok((first, None));
    }
    let last: u64 = b.parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok((first, Some(last.checked_add(1).ok_or_else(bad)?)))
}

/// `coffer get REMOTE [LOCAL] [--range A-B]`.
pub(crate) async fn get(
    ctx: &Ctx,
    remote: &str,
    local: Option<&Path>,
    range: Option<&str>,
) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let remote = RemotePath::parse(remote)?;
    let range = range.map(parse_range).transpose()?;
    let local = local.unwrap_or_else(|| Path::new("."));
    let bar = ctx.progress("get");
    let out = c.get(&remote, local, range, &bar).await;
    bar.finish();
    let (written, path) = out?;
    if path.as_os_str() != "-" {
        ctx.emit(
            &json!({ "remote": remote.to_string(), "local": path.display().to_string(), "bytes": written }),
            &format!("{remote} -> {} ({written} bytes)", path.display()),
        );
    }
    Ok(())
}

/// `coffer ls [PATH]`.
pub(crate) async fn ls(ctx: &Ctx, path: &str) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let path = RemotePath::parse(path)?;
    let entries = c.ls(&path).await?;
    let mut human = String::new();
    for e in &entries {
        if e.kind == "folder" {
            human.push_str(&format!("{:>14}  {}/\n", "-", e.name));
        } else {
            human.push_str(&format!("{:>14}  {}\n", e.size, e.name));
        }
    }
    ctx.emit(&serde_json::to_value(&entries)?, &human);
    Ok(())
}

/// `coffer mkdir PATH`.
pub(crate) async fn mkdir(ctx: &Ctx, path: &str) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let path = RemotePath::parse(path)?;
    c.mkdir(&path).await?;
    ctx.emit(&json!({ "created": path.to_string() }), "");
    Ok(())
}

/// `coffer mv SRC DST`.
pub(crate) async fn mv(ctx: &Ctx, src: &str, dst: &str) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let src = RemotePath::parse(src)?;
    let dst = RemotePath::parse(dst)?;
    let to = c.mv(&src, &dst).await?;
    ctx.emit(
        &json!({ "moved": src.to_string(), "to": to.to_string() }),
        "",
    );
    Ok(())
}

/// `coffer rm PATH`.
pub(crate) async fn rm(ctx: &Ctx, path: &str) -> anyhow::Result<()> {
    let c = ctx.logged_in()?;
    let path = RemotePath::parse(path)?;
    c.rm(&path).await?;
    ctx.emit(&json!({ "removed": path.to_string() }), "");
    Ok(())
}
