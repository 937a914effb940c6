//! `cofferd`: serves the Coffer HTTP API.
//!
//! `cofferd` with no arguments serves on 127.0.0.1:8080 with data in `./coffer-data`. On SIGINT
//! or SIGTERM it stops accepting connections, finishes the requests in flight and exits 0.

use anyhow::Context as _;
use clap::Parser as _;
use coffer_server::config::{Cli, Config};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of the system allocator: receiving uploads hands each network read's buffer
/// on to a blocking writer and frees it there, and glibc's malloc returned those pages to the
/// kernel and faulted them back in again and again (about 59 000 page faults and 136 `madvise`
/// calls per GiB uploaded); jemalloc keeps freed pages for reuse and returns them gradually.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();

    let config = Config::from_cli(Cli::parse())?;
    let data = config.data_dir.clone();
    let handle = coffer_server::serve(config)
        .await
        .with_context(|| format!("starting cofferd with data in {}", data.display()))?;
    println!("cofferd listening on http://{}", handle.local_addr());
    tracing::info!(addr = %handle.local_addr(), data = %data.display(), "serving");

    shutdown_signal().await?;
    tracing::info!("shutting down: finishing requests in flight");
    handle.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
