//! The server suite: a black-box test of any server implementing spec §11 (the HTTP API),
//! run by `coffer-conformance server --url URL` (spec/conformance.md §C.7).
//!
//! Start at [`run`]. The suite registers accounts with random names, drives them through every
//! area of the HTTP chapter with messages built by coffer-core ([`client`]), checks each answer
//! against the spec ([`http::Resp`]), and deletes the accounts at the end. Each check is one
//! [`Check`]: an area, a name, the spec section it tests, and pass or fail with the reason.
//! Checks inside an area build on each other (a link needs a folder), so a failed prerequisite
//! ends its area with that failure.

pub mod accounts;
pub mod authz;
pub mod bad_input;
pub mod client;
pub mod content;
pub mod http;
pub mod links;
pub mod shares;

use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use coffer_core::share::{PERMISSION_READ, PERMISSION_WRITE};

use self::client::User;
use self::http::{Failure, Http, R};

/// The areas, in the order they run.
pub const AREAS: &[&str] = &[
    "setup",
    "accounts",
    "content",
    "links",
    "shares",
    "authz",
    "bad-input",
    "cleanup",
];

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's base URL (`http://127.0.0.1:8080`), without `/v1`.
    pub url: String,
    /// The OPAQUE server identity the server is configured with (spec §6.2).
    pub server_identity: String,
    /// Run only the areas whose name contains this (`AREA/TEXT`: that area, reporting only the
    /// checks whose name contains TEXT).
    pub only: Option<String>,
    /// How long one request may wait in total for `429`/`503` answers' `Retry-After`.
    pub max_wait: Duration,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server did what the spec says.
    Pass,
    /// It did not; the reason.
    Fail(String),
}

/// One check.
#[derive(Debug, Clone)]
pub struct Check {
    /// The area (`links`).
    pub area: &'static str,
    /// What is checked.
    pub name: String,
    /// The spec section (`§11.11.4`).
    pub section: &'static str,
    /// Pass or fail.
    pub outcome: Outcome,
}

/// Every check of a run.
#[derive(Debug, Default)]
pub struct SuiteResult {
    /// In the order they ran.
    pub checks: Vec<Check>,
}

impl SuiteResult {
    /// (passed, failed).
    pub fn totals(&self) -> (usize, usize) {
        let passed = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Pass)
            .count();
        (passed, self.checks.len() - passed)
    }

    /// True when something ran and nothing failed.
    pub fn success(&self) -> bool {
        let (p, f) = self.totals();
        f == 0 && p > 0
    }
}

/// An area's early end: a prerequisite failed (and was recorded).
#[derive(Debug)]
pub struct Abort;

/// Where checks go: the result, and optionally a writer that prints each as it completes.
struct Sink {
    result: SuiteResult,
    live: Option<Box<dyn Write + Send>>,
}

/// Records the checks of one area.
pub struct Ctx<'a> {
    area: &'static str,
    filter: Option<&'a str>,
    sink: &'a mut Sink,
}

impl Ctx<'_> {
    /// Records a check (unless the `AREA/TEXT` filter hides it); returns whether it passed.
    pub fn record<T>(&mut self, name: &str, section: &'static str, r: R<T>) -> Option<T> {
        let (outcome, value) = match r {
            Ok(v) => (Outcome::Pass, Some(v)),
            Err(Failure(why)) => (Outcome::Fail(why), None),
        };
        let shown = self.filter.is_none_or(|f| name.contains(f));
        if shown {
            let c = Check {
                area: self.area,
                name: name.to_owned(),
                section,
                outcome,
            };
            if let Some(w) = self.sink.live.as_mut() {
                let _ = writeln!(w, "{}", line(&c));
                let _ = w.flush();
            }
            self.sink.result.checks.push(c);
        }
        value
    }

    /// Records a check that later ones need; its failure ends the area.
    pub fn need<T>(&mut self, name: &str, section: &'static str, r: R<T>) -> Result<T, Abort> {
        self.record(name, section, r).ok_or(Abort)
    }

    /// Records a check and continues whatever it says.
    pub fn check(&mut self, name: &str, section: &'static str, r: R<()>) {
        let _ = self.record(name, section, r);
    }
}

/// One report line.
pub fn line(c: &Check) -> String {
    match &c.outcome {
        Outcome::Pass => format!("PASS {}: {} ({})", c.area, c.name, c.section),
        Outcome::Fail(why) => format!("FAIL {}: {} ({}): {why}", c.area, c.name, c.section),
    }
}

/// The accounts every area shares: alice owns, bob and carol are members or strangers.
pub struct Fixture {
    /// The client.
    pub http: Http,
    /// The OPAQUE server identity.
    pub sid: String,
    /// The owner of most resources.
    pub alice: User,
    /// Another account (a `write` member in the shares area).
    pub bob: User,
    /// A third account (a `read` member, removed with a rotation).
    pub carol: User,
}

/// Which areas run, and the check filter of an `AREA/TEXT` pattern.
fn selection(only: Option<&str>) -> (Vec<&'static str>, Option<&str>) {
    match only {
        None => (AREAS.to_vec(), None),
        Some(p) => {
            let (area, text) = match p.split_once('/') {
                Some((a, t)) => (a, Some(t)),
                None => (p, None),
            };
            let mut areas: Vec<&'static str> =
                AREAS.iter().copied().filter(|a| a.contains(area)).collect();
            // The shared accounts are always set up and removed.
            for a in ["setup", "cleanup"] {
                if !areas.contains(&a) {
                    areas.push(a);
                }
            }
            areas.sort_by_key(|a| AREAS.iter().position(|x| x == a));
            (areas, text)
        }
    }
}

/// Runs the suite against `opts.url`; `live` receives each check line as it completes.
pub async fn run(opts: &Options, live: Option<Box<dyn Write + Send>>) -> SuiteResult {
    let mut sink = Sink {
        result: SuiteResult::default(),
        live,
    };
    let (areas, filter) = selection(opts.only.as_deref());
    macro_rules! ctx {
        ($area:expr, $filter:expr) => {
            Ctx {
                area: $area,
                filter: $filter,
                sink: &mut sink,
            }
        };
    }

    let http = match Http::new(&opts.url, opts.max_wait) {
        Ok(h) => h,
        Err(e) => {
            ctx!("setup", None).check("HTTP client", "§11.1", Err(e));
            return sink.result;
        }
    };
    let sid = opts.server_identity.clone();
    let fixture = {
        let mut c = ctx!("setup", None);
        setup(&mut c, &http, &sid).await.ok()
    };
    let Some(fx) = fixture else {
        return sink.result;
    };
    let area_filter = |a: &str| {
        if areas.contains(&a) {
            Some(filter)
        } else {
            None
        }
    };

    if let Some(f) = area_filter("accounts") {
        let _ = accounts::run(&mut ctx!("accounts", f), &fx).await;
    }
    if let Some(f) = area_filter("content") {
        let _ = content::run(&mut ctx!("content", f), &fx).await;
    }
    if let Some(f) = area_filter("links") {
        let _ = links::run(&mut ctx!("links", f), &fx).await;
    }
    if let Some(f) = area_filter("shares") {
        let _ = shares::run(&mut ctx!("shares", f), &fx).await;
    }
    if let Some(f) = area_filter("authz") {
        let _ = authz::run(&mut ctx!("authz", f), &fx).await;
    }
    if let Some(f) = area_filter("bad-input") {
        let _ = bad_input::run(&mut ctx!("bad-input", f), &fx).await;
    }
    cleanup(&mut ctx!("cleanup", None), &fx).await;
    sink.result
}

async fn setup(c: &mut Ctx<'_>, http: &Http, sid: &str) -> Result<Fixture, Abort> {
    let r = async {
        let r = http.get("/healthz", None).await?;
        r.status_is(200)
    }
    .await;
    c.need("GET /healthz answers 200", "§11.12", r)?;
    let mut users = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let name = client::random_name(who);
        let pw = client::random_password();
        let r = async {
            client::register(http, sid, &name, &pw).await?;
            client::login(http, sid, &name, &pw).await
        }
        .await;
        users.push(c.need(
            &format!("register and log in {who} (a random account)"),
            "§11.6.2, §11.6.3",
            r,
        )?);
    }
    let mut it = users.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(alice), Some(bob), Some(carol)) => Ok(Fixture {
            http: http.clone(),
            sid: sid.to_owned(),
            alice,
            bob,
            carol,
        }),
        _ => Err(Abort),
    }
}

async fn cleanup(c: &mut Ctx<'_>, fx: &Fixture) {
    for (who, u) in [("alice", &fx.alice), ("bob", &fx.bob), ("carol", &fx.carol)] {
        // An earlier area may have changed a password or ended the session: log in again.
        let r = async {
            let fresh = client::login(&fx.http, &fx.sid, &u.name, &u.password).await?;
            client::delete_account(&fx.http, &fx.sid, &fresh)
                .await?
                .status_is(204)
        }
        .await;
        c.check(&format!("delete {who}'s account"), "§11.6.9", r);
    }
}

/// Permissions, re-exported for the areas.
pub(crate) const READ: u64 = PERMISSION_READ;
/// Write permission.
pub(crate) const WRITE: u64 = PERMISSION_WRITE;

/// Prints the report: per-area counts, then one line per failure, then `N passed, M failed`.
pub fn report(r: &SuiteResult, out: &mut impl Write) -> std::io::Result<()> {
    for area in AREAS {
        let checks: Vec<&Check> = r.checks.iter().filter(|c| c.area == *area).collect();
        if checks.is_empty() {
            continue;
        }
        let failed = checks.iter().filter(|c| c.outcome != Outcome::Pass).count();
        writeln!(
            out,
            "{area}: {} checks, {} passed, {failed} failed",
            checks.len(),
            checks.len() - failed
        )?;
    }
    for c in &r.checks {
        if c.outcome != Outcome::Pass {
            writeln!(out, "{}", line(c))?;
        }
    }
    let (p, f) = r.totals();
    writeln!(out, "{p} passed, {f} failed")
}

/// The JUnit XML of a run: one `testsuite` per area, one `testcase` per check.
pub fn junit(r: &SuiteResult) -> String {
    use crate::junit::escape;
    let (p, f) = r.totals();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"coffer-conformance server\" tests=\"{}\" failures=\"{f}\" skipped=\"0\" errors=\"0\">",
        p + f
    );
    for area in AREAS {
        let checks: Vec<&Check> = r.checks.iter().filter(|c| c.area == *area).collect();
        if checks.is_empty() {
            continue;
        }
        let failed = checks.iter().filter(|c| c.outcome != Outcome::Pass).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"server.{area}\" tests=\"{}\" failures=\"{failed}\" skipped=\"0\" errors=\"0\">",
            checks.len()
        );
        for c in checks {
            let _ = write!(
                x,
                "    <testcase classname=\"server.{}\" name=\"{} ({})\"",
                escape(area),
                escape(&c.name),
                escape(c.section)
            );
            match &c.outcome {
                Outcome::Pass => x.push_str("/>\n"),
                Outcome::Fail(why) => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"nonconformance\"/>\n    </testcase>",
                        escape(why)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_keeps_setup_and_cleanup() {
        let (a, f) = selection(Some("links/password"));
        assert_eq!(a, vec!["setup", "links", "cleanup"]);
        assert_eq!(f, Some("password"));
        let (a, f) = selection(None);
        assert_eq!(a.len(), AREAS.len());
        assert_eq!(f, None);
    }

    #[test]
    fn report_ends_with_the_totals() {
        let r = SuiteResult {
            checks: vec![
                Check {
                    area: "links",
                    name: "resolve".into(),
                    section: "§11.11.3",
                    outcome: Outcome::Pass,
                },
                Check {
                    area: "links",
                    name: "unlock <x>".into(),
                    section: "§11.11.4",
                    outcome: Outcome::Fail("expected 403, got 200".into()),
                },
            ],
        };
        let mut out = Vec::new();
        report(&r, &mut out).expect("report");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "links: 2 checks, 1 passed, 1 failed");
        assert_eq!(
            lines[1],
            "FAIL links: unlock <x> (§11.11.4): expected 403, got 200"
        );
        assert_eq!(lines.last(), Some(&"1 passed, 1 failed"));
        assert!(!r.success());
        let x = junit(&r);
        assert!(x.contains("name=\"unlock &lt;x&gt; (§11.11.4)\""));
        assert!(x.contains("failures=\"1\""));
    }
}
