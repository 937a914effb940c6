//! Shedding by sojourn time (spec §11.13, "bounds ... its queue"), in the manner of CoDel: when
//! even the fastest admitted request of an interval took longer than the target, requests are
//! queueing somewhere (the CPU, the database, a lock), and new ones are shed for the next
//! interval. One fast request in an interval (a cached resolve, `/healthz`) shows that nothing
//! queues, so slow handlers alone (large bodies, heavy work) never trigger it. With nothing
//! completing (everything shed, nothing in flight) the verdict lapses after one interval, so the
//! server never sheds for longer than its queue lasts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The interval over which the fastest admitted request is taken.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Fewest admitted requests an interval needs to be judged: a queue means many requests, and a
/// lone slow request (a durable write on a quiet server) must not shed the next interval.
pub const MIN_REQUESTS: u64 = 8;

/// The sojourn-time monitor: lock-free, shared by every request.
#[derive(Debug)]
pub struct Sojourn {
    epoch: Instant,
    target_us: u64,
    /// End of the current interval (microseconds since `epoch`).
    window_end_us: AtomicU64,
    /// Fastest admitted request of the current interval (`u64::MAX`: none yet).
    window_min_us: AtomicU64,
    /// Admitted requests recorded in the current interval.
    window_count: AtomicU64,
    /// Shed new requests until this time (microseconds since `epoch`; 0: not shedding).
    shed_until_us: AtomicU64,
}

impl Sojourn {
    /// A monitor with the given target (0 turns it off).
    #[must_use]
    pub fn new(target: Duration) -> Self {
        let interval_us = micros(INTERVAL);
        Sojourn {
            epoch: Instant::now(),
            target_us: micros(target),
            window_end_us: AtomicU64::new(interval_us),
            window_min_us: AtomicU64::new(u64::MAX),
            window_count: AtomicU64::new(0),
            shed_until_us: AtomicU64::new(0),
        }
    }

    /// Records an admitted request that took `took` until its response head.
    pub fn record(&self, took: Duration) {
        self.record_at(micros(self.epoch.elapsed()), micros(took));
    }

    /// Whether new requests are to be shed now.
    #[must_use]
    pub fn over(&self) -> bool {
        self.over_at(micros(self.epoch.elapsed()))
    }

    fn record_at(&self, now_us: u64, took_us: u64) {
        if self.target_us == 0 {
            return;
        }
        self.window_min_us.fetch_min(took_us, Ordering::Relaxed);
        self.window_count.fetch_add(1, Ordering::Relaxed);
        let end = self.window_end_us.load(Ordering::Relaxed);
        if now_us < end {
            return;
        }
        // The interval is over: one request (the one that moves the end) judges it.
        let next = now_us + micros(INTERVAL);
        if self
            .window_end_us
            .compare_exchange(end, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let min = self.window_min_us.swap(u64::MAX, Ordering::Relaxed);
            let count = self.window_count.swap(0, Ordering::Relaxed);
            let until = if count >= MIN_REQUESTS && min > self.target_us {
                next
            } else {
                0
            };
            self.shed_until_us.store(until, Ordering::Relaxed);
        }
    }

    fn over_at(&self, now_us: u64) -> bool {
        now_us < self.shed_until_us.load(Ordering::Relaxed)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn sheds_after_an_interval_without_a_fast_request_and_lapses() {
        let s = Sojourn::new(Duration::from_millis(50));
        // Interval 1 (0-100 ms): every request slow, but one fast: no shedding.
        s.record_at(10 * MS, 80 * MS);
        s.record_at(20 * MS, 2 * MS);
        s.record_at(101 * MS, 90 * MS);
        assert!(!s.over_at(102 * MS));
        // Interval 2 (101-201 ms): all slow: shed until the end of interval 3.
        for _ in 0..MIN_REQUESTS {
            s.record_at(150 * MS, 70 * MS);
        }
        s.record_at(202 * MS, 60 * MS);
        assert!(s.over_at(203 * MS));
        assert!(s.over_at(301 * MS));
        // Nothing completes: the verdict lapses.
        assert!(!s.over_at(302 * MS));
        // Interval 3 judged at 310 ms: fast again.
        s.record_at(250 * MS, MS);
        s.record_at(310 * MS, MS);
        assert!(!s.over_at(311 * MS));
    }

    #[test]
    fn a_lone_slow_request_does_not_shed() {
        let s = Sojourn::new(Duration::from_millis(50));
        s.record_at(10 * MS, 500 * MS);
        s.record_at(101 * MS, 500 * MS);
        assert!(!s.over_at(102 * MS));
    }

    #[test]
    fn target_zero_never_sheds() {
        let s = Sojourn::new(Duration::ZERO);
        for t in 0..10 {
            s.record_at(t * 100 * MS, 10_000 * MS);
        }
        assert!(!s.over_at(950 * MS));
    }
}
