//! The HTTP application (spec §11): state, router, framing middleware.
//!
//! # Layout
//!
//! - [`error`]: `ApiError` → RFC 9457 problem details.
//! - [`body`]: the CBOR body extractor (`415`/`413`/`400`), "no body", CBOR responses.
//! - [`auth`]: the session extractor (`Authorization: Bearer` → SHA-256 → store → `401`), the
//!   client address, path-id parsing.
//! - [`ratelimit`], [`metrics`], [`sojourn`]: rate limits, the metrics registry, shedding by
//!   sojourn time.
//! - Control plane (this helper): [`accounts`] (registration, login, sessions, re-authentication,
//!   password change, recovery, deletion, user lookup), [`identities`], [`links`] (owner link
//!   endpoints, resolve, unlock), [`ops`] (`/healthz`, `/metrics`).
//! - Data plane, mounted by [`data_routes`]: [`nodes`], [`uploads`], [`content`], [`shares`],
//!   [`drops`].
//!
//! # Request framing
//!
//! Every request passes [`frame`] first (spec §11.4.1 step 1): it draws a request id and opens a
//! tracing span with the route *template* (never the path: paths hold link ids), sheds load when
//! `limits.max-in-flight` requests are in flight or ready tasks wait longer than
//! `limits.max-queue-delay-ms` for a worker (`503` + `Retry-After`; new work first, see
//! [`Priority`]), applies the request
//! timeout, turns routing failures into problem documents (`404`, `405` with `Allow`), rejects
//! query parameters on endpoints that define none, sets `Cache-Control: no-store` and records
//! metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use coffer_core::account::ServerSetup;
use coffer_core::api::{ProblemKind, PROBLEM_CONTENT_TYPE};
use rand_core::RngCore;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::config::Config;
use crate::store::{BlobStore, MetadataStore};

pub mod accounts;
pub mod auth;
pub mod body;
pub mod cursor;
pub mod error;
pub mod identities;
pub mod links;
pub mod metrics;
pub mod ops;
pub mod ratelimit;
pub mod recovery;
pub mod sojourn;

pub mod content;
pub mod drops;
pub mod nodes;
pub mod shares;
pub mod uploads;

pub use auth::{ClientIp, Session};
pub use body::{Cbor, CborResponse, NoBody};
pub use error::{ApiError, ApiResult};
pub use links::LinkAuth;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct AppInner {
    /// The metadata store.
    pub meta: Arc<dyn MetadataStore>,
    /// The blob store (ciphertext).
    pub blobs: Arc<dyn BlobStore>,
    /// The configuration.
    pub config: Config,
    /// Rate limiters (spec §11.13).
    pub limits: ratelimit::RateLimiters,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// The OPAQUE server setup (keys and OPRF seed).
    pub opaque: ServerSetup,
    /// The key that authenticates pagination cursors (§11.4.5).
    pub cursor_key: cursor::CursorKey,
    in_flight: Arc<Semaphore>,
    clock_offset: AtomicI64,
    request_ids: AtomicU64,
    /// Latest scheduling delay measured by [`AppState::watch_queue_delay`], in microseconds.
    queue_delay_us: AtomicU64,
    /// Sojourn times of admitted requests (`limits.max-queue-delay-ms`).
    sojourn: sojourn::Sojourn,
}

impl AppState {
    /// Builds the state.
    #[must_use]
    pub fn new(
        config: Config,
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        opaque: ServerSetup,
        cursor_key: cursor::CursorKey,
    ) -> Self {
        let limits = ratelimit::RateLimiters::new(&config.file.rate_limits);
        let in_flight = Arc::new(Semaphore::new(config.file.limits.max_in_flight));
        let sojourn =
            sojourn::Sojourn::new(Duration::from_millis(config.file.limits.max_queue_delay_ms));
        AppState(Arc::new(AppInner {
            meta,
            blobs,
            config,
            limits,
            metrics: metrics::Metrics::default(),
            opaque,
            cursor_key,
            in_flight,
            clock_offset: AtomicI64::new(0),
            // Random start: request ids of two runs do not collide in aggregated logs.
            request_ids: AtomicU64::new(rand_core::OsRng.next_u64()),
            queue_delay_us: AtomicU64::new(0),
            sojourn,
        }))
    }

    /// The server's time: seconds since the Unix epoch (plus the test offset, normally 0).
    #[must_use]
    pub fn now(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        real.saturating_add_signed(self.clock_offset.load(Ordering::Relaxed))
    }

    /// A fresh request id for logs (a counter from a random start: no system call per
    /// request).
    pub fn next_request_id(&self) -> u64 {
        self.request_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Moves the server's clock forward (used by tests of expiry; never by the server itself).
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Whether the server is shedding load (no in-flight slot left, or ready tasks waiting
    /// longer than `limits.max-queue-delay-ms` for a worker).
    #[must_use]
    pub fn is_saturated(&self) -> bool {
        self.in_flight.available_permits() == 0 || self.queue_too_long()
    }

    /// Whether requests queue longer than `limits.max-queue-delay-ms`: ready tasks wait that
    /// long for a worker, or every admitted request of the last interval took that long
    /// ([`sojourn`]: the queue is elsewhere, e.g. the database).
    fn queue_too_long(&self) -> bool {
        self.queue(Priority::New) != Queue::Short
    }

    /// The queue as a request of `priority` sees it.
    fn queue(&self, priority: Priority) -> Queue {
        let target_us = self
            .config
            .file
            .limits
            .max_queue_delay_ms
            .saturating_mul(1000);
        if target_us == 0 {
            return Queue::Short;
        }
        let delay_us = self.queue_delay_us.load(Ordering::Relaxed);
        let over = match priority {
            Priority::New => delay_us > target_us || self.sojourn.over(),
            Priority::FollowUp => delay_us > target_us.saturating_mul(FOLLOW_UP_QUEUE_FACTOR),
        };
        if over {
            Queue::TooLong
        } else {
            Queue::Short
        }
    }

    /// An in-flight slot for a request of `priority`, or `None` to shed it (§11.13): new work
    /// is shed while the queue is too long or only the reserve of slots is left; follow-ups
    /// take any slot, and are shed by queue delay only when it is [`FOLLOW_UP_QUEUE_FACTOR`]
    /// times the bound.
    fn admit(&self, priority: Priority) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let admits = admits(
            priority,
            self.queue(priority),
            self.in_flight.available_permits(),
            self.config.file.limits.max_in_flight,
        );
        admits
            .then(|| self.in_flight.clone().try_acquire_owned().ok())
            .flatten()
    }

    /// Measures, until `stop` turns true, how late the runtime wakes a task that sleeps a few
    /// milliseconds: how long a ready task (a connection with a request to read) waits for a
    /// worker. Used by `limits.max-queue-delay-ms`; does nothing when that is 0.
    pub async fn watch_queue_delay(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        const PROBE: Duration = Duration::from_millis(5);
        if self.config.file.limits.max_queue_delay_ms == 0 {
            return;
        }
        loop {
            let t = Instant::now();
            tokio::select! {
                () = tokio::time::sleep(PROBE) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let late = t.elapsed().saturating_sub(PROBE);
            let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            self.queue_delay_us.store(us, Ordering::Relaxed);
        }
    }

    /// A `Retry-After` for shedding: random within the configured range (spreads retries).
    #[must_use]
    pub fn shed_retry_after(&self) -> u64 {
        let l = &self.config.file.limits;
        let span = l.retry_after_max_secs - l.retry_after_min_secs + 1;
        l.retry_after_min_secs + rand_core::OsRng.next_u64() % span
    }
}

/// The complete router with its framing middleware.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(accounts::routes())
        .merge(identities::routes())
        .merge(links::routes())
        .merge(data_routes())
        .merge(ops::routes())
        .fallback(not_found);
    api.layer(axum::middleware::from_fn_with_state(state.clone(), frame))
        .with_state(state)
}

/// ===== Data-plane routes (helper "data") =====
///
/// Mounted here; each module returns its own `Router<AppState>` with full `/v1/...` paths
/// (spec §11.8–§11.11.6: nodes, uploads, content downloads, shares, drops, and the link-scoped
/// content, node and drop endpoints). Handlers take `Session` (or `links::LinkAccess`) first,
/// then path/query, then `Cbor<T>` / `NoBody` last, to keep the order of checks of §11.4.1.
pub fn data_routes() -> Router<AppState> {
    Router::new()
        .merge(nodes::routes())
        .merge(uploads::routes())
        .merge(content::routes())
        .merge(shares::routes())
        .merge(drops::routes())
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Route templates that define query parameters (spec §11.4.5); every other endpoint rejects
/// any query with `400 invalid-parameter`.
const QUERY_ROUTES: [&str; 2] = [
    "/v1/nodes/{node-id}/children",
    "/v1/l/{link_id}/nodes/{node_id}/children",
];

/// The error for the first path segment that the route template names an identifier
/// (`{...id}`) and that is not the canonical base64url of 16 bytes (spec §11.1).
fn malformed_path_id(route: &str, path: &str) -> Option<ApiError> {
    route.split('/').zip(path.split('/')).find_map(|(t, seg)| {
        if t.starts_with('{') && t.ends_with("id}") {
            auth::path_id16(seg).err()
        } else {
            None
        }
    })
}

/// Which requests are shed first (spec §11.13): new work before the work of those already
/// admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// New work, shed first: registration and login starts, anonymous link requests (link
    /// resolves, unlocks, drops), new uploads, and every request without a session token.
    New,
    /// The rest of admitted work: requests of existing sessions (a session token is presented)
    /// and the finishes of registrations and logins whose start was admitted.
    FollowUp,
}

impl Priority {
    /// The priority of a request to the route template `route`, with or without an
    /// `Authorization` header.
    #[must_use]
    pub fn of(method: &axum::http::Method, route: &str, has_session_token: bool) -> Self {
        let handshake_finish = matches!(
            route,
            "/v1/accounts/register/finish" | "/v1/sessions/login/finish"
        );
        let new_upload = method == axum::http::Method::POST && route == "/v1/uploads";
        if handshake_finish || (has_session_token && !new_upload && !route.starts_with("/v1/l/")) {
            Priority::FollowUp
        } else {
            Priority::New
        }
    }
}

/// How far the queue bound is stretched for [`Priority::FollowUp`] requests: they are shed by
/// queue delay only when ready tasks wait this many times `limits.max-queue-delay-ms` (the
/// slots of `max-in-flight` bound them otherwise).
pub const FOLLOW_UP_QUEUE_FACTOR: u64 = 8;

/// The queue as [`AppState::admit`] judges it for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Short,
    TooLong,
}

/// Whether a request of `priority` is admitted when `available` of `max` in-flight slots are
/// free: never when its queue is too long; new work only while more than a quarter of the
/// slots are free (the rest is kept for follow-ups: a login whose start was admitted can
/// finish).
fn admits(priority: Priority, queue: Queue, available: usize, max: usize) -> bool {
    let reserve = match priority {
        Priority::New => max / 4,
        Priority::FollowUp => 0,
    };
    queue == Queue::Short && available > reserve
}

/// Largest request body (bytes) whose request counts in the sojourn times.
const SOJOURN_MAX_BODY: u64 = 64 * 1024;

/// The framing middleware (see the module documentation).
pub async fn frame(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The template is shared (`MatchedPath` is reference-counted): no copy per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let request_id = state.next_request_id();
    let span = tracing::info_span!(
        "request",
        id = %format_args!("{request_id:016x}"),
        method = %method,
        route = %route
    );
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        state.metrics.bytes_in(len);
    }

    // Requests with a large body take as long as the client needs to send it: they say nothing
    // about queueing and are left out of the sojourn times.
    let small_body = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_none_or(|len| len <= SOJOURN_MAX_BODY);
    let mut admitted = false;
    let mut resp = async {
        // Step 1 of §11.4.1: load shedding. The permit is held until the response head is
        // produced (and with it every change the handler applies).
        let priority = Priority::of(
            &method,
            route,
            req.headers()
                .contains_key(axum::http::header::AUTHORIZATION),
        );
        let Some(_permit) = state.admit(priority) else {
            state.metrics.shed();
            tracing::warn!("shedding load");
            return ApiError::retry_later(ProblemKind::Unavailable, state.shed_retry_after())
                .into_response();
        };
        admitted = true;
        if !QUERY_ROUTES.contains(&route) && req.uri().query().is_some_and(|q| !q.is_empty()) {
            return ApiError::invalid_parameter("this endpoint takes no query parameters")
                .into_response();
        }
        // Also step 2: a malformed identifier in the path is `400` before the request is
        // authenticated or its body read (handlers parse their ids after their extractors).
        if let Some(e) = malformed_path_id(route, req.uri().path()) {
            return e.into_response();
        }
        let timeout = state.config.file.limits.request_timeout();
        match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(resp) => resp,
            Err(_) => {
                state.metrics.timeout();
                tracing::warn!("request timed out");
                ApiError::retry_later(ProblemKind::Unavailable, state.shed_retry_after())
                    .into_response()
            }
        }
    }
    .instrument(span.clone())
    .await;

    // Routing failures of axum itself (wrong method) become problem documents.
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && !is_problem(&resp) {
        let allow = resp.headers().get(ALLOW).cloned();
        let mut e = ApiError::new(
            ProblemKind::MethodNotAllowed,
            "the method is not allowed on this path",
        );
        if let Some(allow) = allow {
            e = e.with_header(ALLOW, allow);
        }
        resp = e.into_response();
    }
    if route.starts_with("/v1/") || matched.is_none() {
        resp.headers_mut()
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    if let Some(len) = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| http_body::Body::size_hint(resp.body()).exact())
    {
        state.metrics.bytes_out(len);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    if admitted && small_body {
        state.sojourn.record(elapsed);
    }
    state
        .metrics
        .request(method.as_str(), route, status, elapsed);
    // One line per request at `debug` (per-route counts and latencies are in `/metrics`);
    // server errors at `info`.
    span.in_scope(|| {
        if status >= 500 {
            tracing::info!(status, elapsed_ms = elapsed.as_millis() as u64, "request");
        } else {
            tracing::debug!(status, elapsed_ms = elapsed.as_millis() as u64, "request");
        }
    });
    resp
}

fn is_problem(resp: &Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes())
}

/// One round of maintenance (called periodically): purge expired sessions, handshakes and
/// link tokens; delete lapsed uploads with their parts.
pub async fn collect_garbage(state: &AppState, now: u64) {
    if let Err(e) = state
        .meta
        .purge_expired(now, coffer_core::api::SESSION_IDLE_TTL_SECS)
        .await
    {
        tracing::warn!(error = %e, "purging expired state failed");
    }
    loop {
        let lapsed = match state.meta.expired_uploads(now, 100).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing lapsed uploads failed");
                return;
            }
        };
        let n = lapsed.len();
        for upload in lapsed {
            let id = upload.upload.upload_id;
            match state.meta.delete_upload(id).await {
                Ok(Some(u)) => delete_upload_blobs(state, &u).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "deleting a lapsed upload failed");
                    return;
                }
            }
        }
        if n < 100 {
            return;
        }
    }
}

/// The orphan scan ([`crate::store::collect_orphans`], run by the server's maintenance): removes
/// the blobs and upload parts that no metadata references, the debris of a crash or of a
/// request dropped between a metadata change and the blob deletions it called for. What it
/// removed is logged; a failure is logged and left to the next scan.
pub async fn collect_orphans(state: &AppState) {
    match crate::store::collect_orphans(&*state.meta, &*state.blobs).await {
        Ok(o) if o.blobs > 0 || o.uploads > 0 => {
            tracing::info!(blobs = o.blobs, uploads = o.uploads, "orphans removed");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "orphan scan failed"),
    }
}

/// Deletes the parts and the (possibly assembled) blob of a deleted upload; failures are
/// logged and left to the orphan scan.
pub async fn delete_upload_blobs(state: &AppState, upload: &crate::store::Upload) {
    let id = upload.upload.upload_id;
    if let Err(e) = state.blobs.delete_parts(id).await {
        tracing::warn!(error = %e, "deleting upload parts failed");
    }
    if let Err(e) = state.blobs.delete_blob(&upload.blob_key).await {
        tracing::warn!(error = %e, "deleting an upload blob failed");
    }
}

/// Deletes what a store removal returned: content blobs and the parts of unfinished uploads.
/// The deletions run to their end even if the request is dropped meanwhile (`to_completion`).
pub async fn delete_removed_blobs(state: &AppState, removed: &crate::store::Removed) {
    let (state, removed) = (state.clone(), removed.clone());
    to_completion(async move {
        for key in &removed.blob_keys {
            if let Err(e) = state.blobs.delete_blob(key).await {
                tracing::warn!(error = %e, "deleting a blob failed");
            }
        }
        for upload in &removed.uploads {
            delete_upload_blobs(&state, upload).await;
        }
    })
    .await;
}

/// Runs `work` to its end on a task of its own and waits for it. A request's future is dropped
/// when its client goes away; the blob deletions that follow a committed metadata change must
/// not stop half-way then (what they would leave is only found by the next orphan scan).
pub(crate) async fn to_completion(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Err(e) = tokio::spawn(work).await {
        tracing::warn!(error = %e, "clean-up task failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn new_work_is_shed_before_follow_ups() {
        use Priority::{FollowUp, New};
        use Queue::{Short, TooLong};
        // Slots free and a short queue: both admitted.
        assert!(admits(New, Short, 64, 64));
        assert!(admits(FollowUp, Short, 64, 64));
        // Down to the reserve: new work shed, follow-ups still admitted.
        assert!(admits(New, Short, 17, 64));
        assert!(!admits(New, Short, 16, 64));
        assert!(admits(FollowUp, Short, 1, 64));
        // No slot at all, or a queue too long: both shed.
        assert!(!admits(FollowUp, Short, 0, 64));
        assert!(!admits(FollowUp, TooLong, 64, 64));
        assert!(!admits(New, TooLong, 64, 64));
        // A single slot is not reserved away from new work.
        assert!(admits(New, Short, 1, 1));
    }

    #[test]
    fn priorities_of_routes() {
        use Priority::{FollowUp, New};
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
        // (method, route template, session token presented, priority)
        let table = [
            (&post, "/v1/accounts/register/start", false, New),
            (&post, "/v1/sessions/login/start", false, New),
            (&post, "/v1/accounts/register/finish", false, FollowUp),
            (&post, "/v1/sessions/login/finish", false, FollowUp),
            (&get, "/v1/l/{link_id}", false, New),
            // A token does not lift anonymous link traffic or new uploads out of new work.
            (&get, "/v1/l/{link_id}", true, New),
            (&post, "/v1/uploads", true, New),
            (
                &put,
                "/v1/uploads/{upload-id}/parts/{index}",
                true,
                FollowUp,
            ),
            (&get, "/v1/account", true, FollowUp),
            (&get, "/v1/account", false, New),
            (&get, "/healthz", false, New),
        ];
        for (method, route, token, priority) in table {
            assert_eq!(
                Priority::of(method, route, token),
                priority,
                "{method} {route}"
            );
        }
    }
}
