//! A small metrics registry rendered in the Prometheus text exposition format (spec §11.12).
//!
//! Labels are only route templates (axum's `MatchedPath`, e.g. `/v1/nodes/{node-id}`), methods,
//! status codes and limit names: never ids, addresses or tokens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Requests of one method on one route.
#[derive(Default)]
struct MethodStats {
    /// Responses by status.
    statuses: Vec<(u16, u64)>,
    latency: Histogram,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    /// By route template, then method (looked up by `&str`: no allocation once a route and
    /// method have been seen).
    requests: Mutex<BTreeMap<String, BTreeMap<String, MethodStats>>>,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    shed: AtomicU64,
    timeouts: AtomicU64,
    parts_stored: AtomicU64,
    uploads_created: AtomicU64,
    uploads_finalized: AtomicU64,
    logins: AtomicU64,
    login_failures: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock cannot leave the maps inconsistent in a way that
    // matters; keep counting.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Records one finished request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut requests = lock(&self.requests);
        let by_method = match requests.get_mut(route) {
            Some(m) => m,
            None => requests.entry(route.to_owned()).or_default(),
        };
        let stats = match by_method.get_mut(method) {
            Some(s) => s,
            None => by_method.entry(method.to_owned()).or_default(),
        };
        match stats.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => stats.statuses.push((status, 1)),
        }
        let h = &mut stats.latency;
        h.count += 1;
        h.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// Counts request body bytes received.
    pub fn bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts response body bytes sent.
    pub fn bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a request shed by the concurrency limit.
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request that timed out.
    pub fn timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rate-limit rejection by the limit's name.
    pub fn rate_limited(&self, limit: &'static str) {
        *lock(&self.rate_limited).entry(limit).or_default() += 1;
    }

    /// Counts a stored upload part.
    pub fn part_stored(&self) {
        self.parts_stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a created upload (or drop).
    pub fn upload_created(&self) {
        self.uploads_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finalized upload (or drop).
    pub fn upload_finalized(&self) {
        self.uploads_finalized.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a login: `ok` false for a failed finish.
    pub fn login(&self, ok: bool) {
        if ok {
            self.logins.fetch_add(1, Ordering::Relaxed);
        } else {
            self.login_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders everything in the Prometheus text format (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP cofferd_http_requests_total HTTP requests by method, route template and status."
        );
        let _ = writeln!(out, "# TYPE cofferd_http_requests_total counter");
        let requests = lock(&self.requests);
        let mut counts: Vec<(&str, &str, u16, u64)> = requests
            .iter()
            .flat_map(|(route, by_method)| {
                by_method.iter().flat_map(move |(method, st)| {
                    st.statuses
                        .iter()
                        .map(move |(status, n)| (method.as_str(), route.as_str(), *status, *n))
                })
            })
            .collect();
        counts.sort_unstable();
        for (method, route, status, n) in counts {
            let _ = writeln!(
                out,
                "cofferd_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP cofferd_http_request_duration_seconds Time to the response head, by method and route template."
        );
        let _ = writeln!(
            out,
            "# TYPE cofferd_http_request_duration_seconds histogram"
        );
        let mut hists: Vec<(&str, &str, &Histogram)> = requests
            .iter()
            .flat_map(|(route, by_method)| {
                by_method
                    .iter()
                    .map(move |(method, st)| (method.as_str(), route.as_str(), &st.latency))
            })
            .collect();
        hists.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (method, route, h) in hists {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "cofferd_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "cofferd_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "cofferd_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cofferd_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(requests);
        let _ = writeln!(
            out,
            "# HELP cofferd_rate_limited_total Requests refused by a rate limit, by limit."
        );
        let _ = writeln!(out, "# TYPE cofferd_rate_limited_total counter");
        for (limit, n) in lock(&self.rate_limited).iter() {
            let _ = writeln!(out, "cofferd_rate_limited_total{{limit=\"{limit}\"}} {n}");
        }
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "cofferd_http_request_bytes_total",
                "Request body bytes received.",
                &self.bytes_in,
            ),
            (
                "cofferd_http_response_bytes_total",
                "Response body bytes sent.",
                &self.bytes_out,
            ),
            (
                "cofferd_shed_requests_total",
                "Requests shed by the concurrency limit (503).",
                &self.shed,
            ),
            (
                "cofferd_request_timeouts_total",
                "Requests that exceeded the request timeout.",
                &self.timeouts,
            ),
            (
                "cofferd_upload_parts_stored_total",
                "Upload parts stored.",
                &self.parts_stored,
            ),
            (
                "cofferd_uploads_created_total",
                "Uploads and drops created.",
                &self.uploads_created,
            ),
            (
                "cofferd_uploads_finalized_total",
                "Uploads and drops finalized.",
                &self.uploads_finalized,
            ),
            ("cofferd_logins_total", "Successful logins.", &self.logins),
            (
                "cofferd_login_failures_total",
                "Failed login finishes.",
                &self.login_failures,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("GET", "/v1/nodes/{node-id}", 200, Duration::from_millis(3));
        m.request("GET", "/v1/nodes/{node-id}", 404, Duration::from_secs(2));
        m.shed();
        m.rate_limited("login-per-user");
        let text = m.render();
        assert!(text.contains(
            "cofferd_http_requests_total{method=\"GET\",route=\"/v1/nodes/{node-id}\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "cofferd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/nodes/{node-id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "cofferd_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/nodes/{node-id}\"} 2"
        ));
        assert!(text.contains("cofferd_shed_requests_total 1"));
        assert!(text.contains("cofferd_rate_limited_total{limit=\"login-per-user\"} 1"));
    }
}
