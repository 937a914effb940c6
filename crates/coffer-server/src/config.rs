//! Configuration: command line (`clap`), environment (`COFFER_LISTEN`, `COFFER_DATA`) and an
//! optional TOML file (`--config FILE`) holding limits, quotas and rate limits.
//!
//! Every table of the file is optional and every key in it has a default; unknown keys are
//! rejected so that a misspelt limit is an error rather than a silently ignored line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Command-line arguments of `cofferd`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cofferd",
    version,
    about = "The Coffer server: stores only ciphertext"
)]
pub struct Cli {
    /// Address and port to listen on.
    #[arg(long, env = "COFFER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data directory (SQLite metadata database and blob directory).
    #[arg(long, env = "COFFER_DATA", default_value = "./coffer-data")]
    pub data: PathBuf,
    /// Optional TOML file with limits, quotas and rate limits.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A configuration error, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this configuration.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the offending key and line).
        message: String,
    },
    /// A value is out of its permitted range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The complete server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks an ephemeral port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Everything the TOML file may set.
    pub file: FileConfig,
}

impl Config {
    /// Builds the configuration from parsed command-line arguments, reading `--config` if given.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, has unknown keys or out-of-range values.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        file.validate()?;
        Ok(Config {
            listen: cli.listen,
            data_dir: cli.data,
            file,
        })
    }

    /// A configuration with every default, for the given address and data directory.
    #[must_use]
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            listen,
            data_dir,
            file: FileConfig::default(),
        }
    }
}

/// The contents of the `--config` TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Server settings.
    pub server: ServerSettings,
    /// Request and resource limits.
    pub limits: Limits,
    /// Per-account quotas.
    pub quotas: Quotas,
    /// Rate limits (spec §11.13); every default is the spec's.
    pub rate_limits: RateLimits,
    /// The embedded metadata store.
    pub storage: Storage,
}

/// `[storage]`: settings of the embedded SQLite metadata store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Storage {
    /// How commits become durable: `"group"` (default) or `"each"`. Both answer a write only
    /// once it is on disk; `"group"` shares one `fsync` among the commits made while the
    /// previous one ran (see the README, "Durability").
    pub commit_sync: CommitSyncSetting,
}

/// Values of `[storage] commit-sync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitSyncSetting {
    /// Group commit: one `fsync` of the write-ahead log covers every commit before it.
    #[default]
    Group,
    /// One `fsync` per commit, inside SQLite (`synchronous=FULL`).
    Each,
}

impl FileConfig {
    /// Reads and parses a TOML configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text (the path in errors is empty).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let id = &self.server.identity;
        if id.is_empty() || id.len() > 255 {
            return Err(ConfigError::Invalid(
                "server.identity must be 1 to 255 bytes".into(),
            ));
        }
        let l = &self.limits;
        if l.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "limits.max-in-flight must be at least 1".into(),
            ));
        }
        if l.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.request-timeout-secs must be at least 1".into(),
            ));
        }
        if l.retry_after_min_secs == 0 || l.retry_after_min_secs > l.retry_after_max_secs {
            return Err(ConfigError::Invalid(
                "limits.retry-after-min-secs must be at least 1 and at most retry-after-max-secs"
                    .into(),
            ));
        }
        if l.max_content_length == 0 || l.max_content_length > coffer_core::api::MAX_CONTENT_LENGTH
        {
            return Err(ConfigError::Invalid(format!(
                "limits.max-content-length must be 1 to {}",
                coffer_core::api::MAX_CONTENT_LENGTH
            )));
        }
        for (name, rate) in self.rate_limits.all() {
            rate.check(name)?;
        }
        Ok(())
    }
}

/// `[server]`: identity of the service and operator access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct ServerSettings {
    /// The OPAQUE server identity (spec §6.2), RECOMMENDED to be the public origin. Changing it
    /// invalidates every password file.
    pub identity: String,
    /// Bearer token that `GET /metrics` requires; without one, `/metrics` is not served (spec
    /// §11.12: metrics must not be reachable on the public listener without operator access).
    pub metrics_token: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            identity: "coffer".into(),
            metrics_token: None,
        }
    }
}

/// `[limits]`: request handling limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Limits {
    /// Requests served concurrently; further requests are shed with `503` (spec §11.13).
    /// Default [`Limits::DEFAULT_MAX_IN_FLIGHT`]. New work (see
    /// [`Priority`](crate::http::Priority)) is admitted only while more than a quarter of them
    /// are free: the rest is kept for follow-ups.
    pub max_in_flight: usize,
    /// Time a request may take until its response starts.
    pub request_timeout_secs: u64,
    /// Smallest `Retry-After` sent when shedding load.
    pub retry_after_min_secs: u64,
    /// Largest `Retry-After` sent when shedding load.
    pub retry_after_max_secs: u64,
    /// Largest accepted ciphertext length of one file or drop (spec §11.9.1).
    pub max_content_length: u64,
    /// Shed new work (`503`) while ready tasks wait longer than this for a worker thread, and
    /// follow-ups at [`FOLLOW_UP_QUEUE_FACTOR`](crate::http::FOLLOW_UP_QUEUE_FACTOR) times it
    /// (milliseconds; default [`Limits::DEFAULT_MAX_QUEUE_DELAY_MS`]; 0 turns it off). This is
    /// the queue bound of spec §11.13: `max-in-flight` bounds requests inside handlers, but when
    /// the CPU is the bottleneck (OPAQUE logins and registrations, or many cheap link resolves)
    /// the queue forms in the runtime, and this bounds it, so that admitted requests keep a
    /// bounded latency under overload. On a machine shared with other busy processes, leave
    /// room for their scheduling stalls.
    pub max_queue_delay_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: Limits::DEFAULT_MAX_IN_FLIGHT,
            request_timeout_secs: 300,
            retry_after_min_secs: 1,
            retry_after_max_secs: 30,
            max_content_length: coffer_core::api::MAX_CONTENT_LENGTH,
            max_queue_delay_ms: Limits::DEFAULT_MAX_QUEUE_DELAY_MS,
        }
    }
}

impl Limits {
    /// The default of `max-in-flight`: far more requests than a few cores run at once (a cached
    /// link resolve holds its slot for microseconds: 256 connections of them never reach it), few
    /// enough that under a CPU-bound overload the excess is answered `503` at once instead of
    /// queueing. Measured with `coffer-load --scenario overload` (its header): at 512, 5x the
    /// sustainable logins queued with no `503` and admitted p99 440 ms; at 64, the excess got
    /// `503` + `Retry-After` and admitted p99 was about 200 ms.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

    /// The default of `max-queue-delay-ms`: well above the scheduling stalls of a busy but not
    /// overloaded machine, well below a latency users notice.
    pub const DEFAULT_MAX_QUEUE_DELAY_MS: u64 = 50;

    /// The request timeout as a duration.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// `[quotas]`: per-account quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Quotas {
    /// Ciphertext bytes an account may store; absent: unlimited.
    pub storage_bytes: Option<u64>,
    /// Nodes an account's tree may hold.
    pub max_nodes: u64,
    /// Unfinished uploads per account (spec §11.9.2: 100).
    pub max_unfinished_uploads: u64,
    /// Live links per account (spec §11.11.2: 1000).
    pub max_links: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            storage_bytes: None,
            max_nodes: 1_000_000,
            max_unfinished_uploads: 100,
            max_links: 1000,
        }
    }
}

/// One rate: at most `count` events per `per-secs` seconds (a GCRA bucket that refills evenly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rate {
    /// Events permitted per window.
    pub count: u32,
    /// Window length in seconds.
    pub per_secs: u64,
}

impl Rate {
    const fn new(count: u32, per_secs: u64) -> Self {
        Rate { count, per_secs }
    }

    fn check(&self, name: &str) -> Result<(), ConfigError> {
        if self.count == 0 || self.per_secs == 0 {
            return Err(ConfigError::Invalid(format!(
                "rate-limits.{name}: count and per-secs must be at least 1"
            )));
        }
        Ok(())
    }

    /// The window as a duration.
    #[must_use]
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.per_secs)
    }
}

/// `[rate-limits]`: spec §11.13; each entry is `{ count = N, per-secs = S }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct RateLimits {
    /// Registration starts per client address.
    pub register_per_address: Rate,
    /// Login starts per (username, address).
    pub login_per_user_address: Rate,
    /// Login starts per username.
    pub login_per_user: Rate,
    /// Login starts per address.
    pub login_per_address: Rate,
    /// Failed login finishes per username (then login starts for it are refused).
    pub login_failures_per_user: Rate,
    /// Failed re-authentications per account.
    pub reauth_failures_per_account: Rate,
    /// User lookups per session.
    pub lookups_per_session: Rate,
    /// Identity chain reads without a session, per address.
    pub identity_reads_per_address: Rate,
    /// Failed link unlocks and drop-secret checks per link.
    pub unlock_failures_per_link: Rate,
    /// Failed link unlocks and drop-secret checks per address.
    pub unlock_failures_per_address: Rate,
    /// Anonymous link requests per address.
    pub link_requests_per_address: Rate,
    /// Anonymous link requests per link.
    pub link_requests_per_link: Rate,
    /// Drop creations per link.
    pub drops_per_link: Rate,
    /// Drop creations per address.
    pub drops_per_address: Rate,
    /// Authenticated requests per session.
    pub requests_per_session: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            register_per_address: Rate::new(5, 3600),
            login_per_user_address: Rate::new(20, 900),
            login_per_user: Rate::new(100, 3600),
            login_per_address: Rate::new(300, 3600),
            login_failures_per_user: Rate::new(10, 900),
            reauth_failures_per_account: Rate::new(5, 3600),
            lookups_per_session: Rate::new(60, 60),
            identity_reads_per_address: Rate::new(600, 3600),
            unlock_failures_per_link: Rate::new(10, 3600),
            unlock_failures_per_address: Rate::new(30, 3600),
            link_requests_per_address: Rate::new(600, 60),
            link_requests_per_link: Rate::new(6000, 3600),
            drops_per_link: Rate::new(100, 3600),
            drops_per_address: Rate::new(20, 3600),
            requests_per_session: Rate::new(6000, 60),
        }
    }
}

impl RateLimits {
    fn all(&self) -> [(&'static str, &Rate); 15] {
        [
            ("register-per-address", &self.register_per_address),
            ("login-per-user-address", &self.login_per_user_address),
            ("login-per-user", &self.login_per_user),
            ("login-per-address", &self.login_per_address),
            ("login-failures-per-user", &self.login_failures_per_user),
            (
                "reauth-failures-per-account",
                &self.reauth_failures_per_account,
            ),
            ("lookups-per-session", &self.lookups_per_session),
            (
                "identity-reads-per-address",
                &self.identity_reads_per_address,
            ),
            ("unlock-failures-per-link", &self.unlock_failures_per_link),
            (
                "unlock-failures-per-address",
                &self.unlock_failures_per_address,
            ),
            ("link-requests-per-address", &self.link_requests_per_address),
            ("link-requests-per-link", &self.link_requests_per_link),
            ("drops-per-link", &self.drops_per_link),
            ("drops-per-address", &self.drops_per_address),
            ("requests-per-session", &self.requests_per_session),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_arguments() {
        let cli = Cli::try_parse_from(["cofferd"]).expect("parse");
        let cfg = Config::from_cli(cli).expect("config");
        assert_eq!(cfg.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(cfg.data_dir, PathBuf::from("./coffer-data"));
        assert_eq!(
            cfg.file.rate_limits.login_failures_per_user,
            Rate::new(10, 900)
        );
        assert_eq!(cfg.file.quotas.max_unfinished_uploads, 100);
    }

    #[test]
    fn arguments_override_defaults() {
        let cli = Cli::try_parse_from(["cofferd", "--listen", "127.0.0.1:0", "--data", "/tmp/x"])
            .expect("parse");
        assert_eq!(cli.listen.port(), 0);
        assert_eq!(cli.data, PathBuf::from("/tmp/x"));
        assert!(Cli::try_parse_from(["cofferd", "--listen", "nowhere"]).is_err());
    }

    #[test]
    fn storage_commit_sync() {
        assert_eq!(
            FileConfig::default().storage.commit_sync,
            CommitSyncSetting::Group
        );
        let cfg = FileConfig::parse("[storage]\ncommit-sync = \"each\"\n").expect("parse");
        assert_eq!(cfg.storage.commit_sync, CommitSyncSetting::Each);
        assert!(FileConfig::parse("[storage]\ncommit-sync = \"never\"\n").is_err());
    }

    #[test]
    fn file_sets_limits_and_rates() {
        let cfg = FileConfig::parse(
            r#"
            [server]
            identity = "https://coffer.example"
            metrics-token = "operator"
            [limits]
            max-in-flight = 4
            [quotas]
            storage-bytes = 1000
            [rate-limits]
            login-per-user = { count = 3, per-secs = 60 }
            "#,
        )
        .expect("parse");
        assert_eq!(cfg.server.identity, "https://coffer.example");
        assert_eq!(cfg.server.metrics_token.as_deref(), Some("operator"));
        assert_eq!(cfg.limits.max_in_flight, 4);
        assert_eq!(cfg.limits.request_timeout_secs, 300);
        assert_eq!(cfg.quotas.storage_bytes, Some(1000));
        assert_eq!(cfg.rate_limits.login_per_user, Rate::new(3, 60));
        assert_eq!(cfg.rate_limits.login_per_address, Rate::new(300, 3600));
    }

    #[test]
    fn file_rejects_unknown_keys_and_bad_values() {
        let err = FileConfig::parse("[limits]\nmax-inflight = 4\n").expect_err("unknown key");
        assert!(err.to_string().contains("max-inflight"), "{err}");
        assert!(FileConfig::parse("[nonsense]\n").is_err());
        assert!(FileConfig::parse("[limits]\nmax-in-flight = 0\n").is_err());
        assert!(FileConfig::parse("[limits]\nmax-in-flight = \"many\"\n").is_err());
        assert!(
            FileConfig::parse("[rate-limits]\nlogin-per-user = { count = 0, per-secs = 1 }\n")
                .is_err()
        );
        assert!(FileConfig::parse(
            "[rate-limits]\nlogin-per-user = { count = 1, per-secs = 1, extra = 2 }\n"
        )
        .is_err());
        assert!(FileConfig::parse("[server]\nidentity = \"\"\n").is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = FileConfig::load(Path::new("/nonexistent/cofferd.toml")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/cofferd.toml"));
    }
}
