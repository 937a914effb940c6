//! Rate limits of spec §11.13.
//!
//! Event limits (requests, starts) are GCRA buckets from `governor`, keyed per address, username,
//! session or link. Failure limits ("10 failed login finishes per 15 minutes, then starts are
//! refused") need a check that does not itself count, which `governor` does not offer, so they
//! are fixed windows of counters ([`FailureWindow`]). Both forget idle keys in
//! [`RateLimiters::retain_recent`], which a periodic task calls.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coffer_core::ids::{AccountId, LinkId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, RateLimits};

use super::error::ApiError;
use super::metrics::Metrics;

/// A keyed GCRA limiter with a name (used in metrics).
pub struct Limiter<K: Hash + Eq + Clone> {
    name: &'static str,
    inner: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

fn quota(rate: Rate) -> Quota {
    let count = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let period = rate.window() / count.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter of `rate` per key.
    #[must_use]
    pub fn new(name: &'static str, rate: Rate) -> Self {
        Limiter {
            name,
            inner: RateLimiter::dashmap(quota(rate)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one event for `key`.
    ///
    /// # Errors
    /// `429 rate-limited` with the seconds until the bucket allows one more.
    pub fn check(&self, key: &K, metrics: &Metrics) -> Result<(), ApiError> {
        match self.inner.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metrics.rate_limited(self.name);
                let wait = not_until.wait_time_from(self.clock.now());
                Err(ApiError::rate_limited(ceil_secs(wait)))
            }
        }
    }

    fn retain_recent(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s.max(1)
    }
}

/// Fixed-window failure counters: `record` counts a failure; `check` refuses (without counting)
/// once `count` failures happened in the current window.
pub struct FailureWindow<K: Hash + Eq> {
    name: &'static str,
    rate: Rate,
    max_keys: usize,
    map: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> FailureWindow<K> {
    /// A window of `rate.count` failures per `rate.per_secs`.
    #[must_use]
    pub fn new(name: &'static str, rate: Rate) -> Self {
        FailureWindow {
            name,
            rate,
            max_keys: 1_000_000,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, u32)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses when the key's failures in the current window reached the limit.
    ///
    /// # Errors
    /// `429 rate-limited` with the seconds until the window ends.
    pub fn check(&self, key: &K, metrics: &Metrics) -> Result<(), ApiError> {
        let now = Instant::now();
        let map = self.lock();
        if let Some((start, n)) = map.get(key) {
            let end = *start + self.rate.window();
            if now < end && *n >= self.rate.count {
                metrics.rate_limited(self.name);
                return Err(ApiError::rate_limited(ceil_secs(end - now)));
            }
        }
        Ok(())
    }

    /// Counts one failure for `key`.
    pub fn record(&self, key: K) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.max_keys && !map.contains_key(&key) {
            let window = self.rate.window();
            map.retain(|_, (start, _)| now < *start + window);
        }
        let e = map.entry(key).or_insert((now, 0));
        if now >= e.0 + self.rate.window() {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    fn retain_recent(&self) {
        let now = Instant::now();
        let window = self.rate.window();
        self.lock().retain(|_, (start, _)| now < *start + window);
    }
}

/// Every limit of spec §11.13.
pub struct RateLimiters {
    /// Registration starts per address.
    pub register_per_address: Limiter<IpAddr>,
    /// Login starts per (username, address).
    pub login_per_user_address: Limiter<(String, IpAddr)>,
    /// Login starts per username.
    pub login_per_user: Limiter<String>,
    /// Login starts per address.
    pub login_per_address: Limiter<IpAddr>,
    /// Failed login finishes per username.
    pub login_failures_per_user: FailureWindow<String>,
    /// Failed re-authentications per account.
    pub reauth_failures_per_account: FailureWindow<AccountId>,
    /// User lookups per session (keyed by session id).
    pub lookups_per_session: Limiter<[u8; 16]>,
    /// Identity chain reads without a session per address.
    pub identity_reads_per_address: Limiter<IpAddr>,
    /// Failed unlocks and drop-secret checks per link.
    pub unlock_failures_per_link: FailureWindow<LinkId>,
    /// Failed unlocks and drop-secret checks per address.
    pub unlock_failures_per_address: FailureWindow<IpAddr>,
    /// Anonymous link requests per address.
    pub link_requests_per_address: Limiter<IpAddr>,
    /// Anonymous link requests per link.
    pub link_requests_per_link: Limiter<LinkId>,
    /// Drop creations per link.
    pub drops_per_link: Limiter<LinkId>,
    /// Drop creations per address.
    pub drops_per_address: Limiter<IpAddr>,
    /// Authenticated requests per session (keyed by session id).
    pub requests_per_session: Limiter<[u8; 16]>,
}

impl RateLimiters {
    /// Limiters for the configured rates.
    #[must_use]
    pub fn new(r: &RateLimits) -> Self {
        RateLimiters {
            register_per_address: Limiter::new("register-per-address", r.register_per_address),
            login_per_user_address: Limiter::new(
                "login-per-user-address",
                r.login_per_user_address,
            ),
            login_per_user: Limiter::new("login-per-user", r.login_per_user),
            login_per_address: Limiter::new("login-per-address", r.login_per_address),
            login_failures_per_user: FailureWindow::new(
                "login-failures-per-user",
                r.login_failures_per_user,
            ),
            reauth_failures_per_account: FailureWindow::new(
                "reauth-failures-per-account",
                r.reauth_failures_per_account,
            ),
            lookups_per_session: Limiter::new("lookups-per-session", r.lookups_per_session),
            identity_reads_per_address: Limiter::new(
                "identity-reads-per-address",
                r.identity_reads_per_address,
            ),
            unlock_failures_per_link: FailureWindow::new(
                "unlock-failures-per-link",
                r.unlock_failures_per_link,
            ),
            unlock_failures_per_address: FailureWindow::new(
                "unlock-failures-per-address",
                r.unlock_failures_per_address,
            ),
            link_requests_per_address: Limiter::new(
                "link-requests-per-address",
                r.link_requests_per_address,
            ),
            link_requests_per_link: Limiter::new(
                "link-requests-per-link",
                r.link_requests_per_link,
            ),
            drops_per_link: Limiter::new("drops-per-link", r.drops_per_link),
            drops_per_address: Limiter::new("drops-per-address", r.drops_per_address),
            requests_per_session: Limiter::new("requests-per-session", r.requests_per_session),
        }
    }

    /// Checks both unlock failure limits (link and address) without counting.
    ///
    /// # Errors
    /// `429` when either is exhausted.
    pub fn check_unlock(&self, link: &LinkId, ip: &IpAddr, m: &Metrics) -> Result<(), ApiError> {
        self.unlock_failures_per_link.check(link, m)?;
        self.unlock_failures_per_address.check(ip, m)
    }

    /// Counts a failed unlock or drop-secret check against the link and the address.
    pub fn record_unlock_failure(&self, link: LinkId, ip: IpAddr) {
        self.unlock_failures_per_link.record(link);
        self.unlock_failures_per_address.record(ip);
    }

    /// Forgets keys whose limits are back to full (called periodically).
    pub fn retain_recent(&self) {
        self.register_per_address.retain_recent();
        self.login_per_user_address.retain_recent();
        self.login_per_user.retain_recent();
        self.login_per_address.retain_recent();
        self.login_failures_per_user.retain_recent();
        self.reauth_failures_per_account.retain_recent();
        self.lookups_per_session.retain_recent();
        self.identity_reads_per_address.retain_recent();
        self.unlock_failures_per_link.retain_recent();
        self.unlock_failures_per_address.retain_recent();
        self.link_requests_per_address.retain_recent();
        self.link_requests_per_link.retain_recent();
        self.drops_per_link.retain_recent();
        self.drops_per_address.retain_recent();
        self.requests_per_session.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_burst_then_refuses_with_retry_after() {
        let m = Metrics::default();
        let l: Limiter<u8> = Limiter::new(
            "t",
            Rate {
                count: 3,
                per_secs: 3600,
            },
        );
        for _ in 0..3 {
            l.check(&1, &m).expect("within the burst");
        }
        let e = l.check(&1, &m).expect_err("over");
        let p = e.problem();
        assert_eq!(p.status, 429);
        let ra = p.retry_after.expect("retry-after");
        assert!((1..=1200).contains(&ra), "{ra}");
        l.check(&2, &m).expect("other key unaffected");
    }

    #[test]
    fn failure_window_counts_only_failures() {
        let m = Metrics::default();
        let w: FailureWindow<u8> = FailureWindow::new(
            "f",
            Rate {
                count: 2,
                per_secs: 60,
            },
        );
        w.check(&1, &m).expect("fresh");
        w.check(&1, &m).expect("checks do not count");
        w.record(1);
        w.check(&1, &m).expect("one failure");
        w.record(1);
        assert_eq!(w.check(&1, &m).expect_err("two").problem().status, 429);
        w.check(&2, &m).expect("other key");
    }
}
