//! Load shedding by queue delay (spec §11.13, `limits.max-queue-delay-ms`, on by default): while
//! the server's workers are saturated, new requests are answered `503` with `Retry-After`, and
//! requests of existing sessions are still served; once the saturation ends the server answers
//! normally again and stays healthy.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_server::config::{FileConfig, Limits};
use common::TestServer;

/// Saturates the (current-thread) runtime the server runs on, the way CPU-bound handlers do:
/// it holds the worker for `busy` at a time, yielding in between, until `stop` is set.
fn hog(stop: Arc<AtomicBool>, busy: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(busy);
            tokio::task::yield_now().await;
        }
    })
}

#[tokio::test]
async fn saturated_workers_shed_with_retry_after_and_recover() {
    let cfg = FileConfig::default();
    assert!(
        cfg.limits.max_queue_delay_ms > 0,
        "queue-delay shedding is on by default"
    );
    let busy = Duration::from_millis(cfg.limits.max_queue_delay_ms * 3);
    let srv = TestServer::start_exactly(cfg).await;
    common::accounts::register(&srv, "alice", "pw").await;
    srv.settle().await;
    let session = common::accounts::login(&srv, "alice", "pw").await;
    srv.settle().await;
    // Unauthenticated: 401 when admitted, 503 when shed.
    assert_eq!(srv.get("/v1/account", None).await.status, 401);

    let stop = Arc::new(AtomicBool::new(false));
    let task = hog(stop.clone(), busy);
    let mut shed = None;
    for _ in 0..50 {
        let r = srv.get("/v1/account", None).await;
        if r.status == 503 {
            shed = Some(r);
            break;
        }
        assert_eq!(r.status, 401);
    }
    let r = shed.expect("a request is shed while the workers are saturated");
    let limits = Limits::default();
    r.expect_shed(limits.retry_after_min_secs..=limits.retry_after_max_secs);
    // New work is shed before the requests of existing sessions: while the new request is shed,
    // the session's is served.
    assert_eq!(
        srv.get("/v1/account", Some(&session.token)).await.status,
        200
    );
    assert_eq!(srv.get("/v1/account", None).await.status, 503);

    stop.store(true, Ordering::Relaxed);
    task.await.expect("hog");
    // Recovery: the next probe of the runtime (every few milliseconds) clears the shedding.
    let stopped = Instant::now();
    loop {
        let r = srv.get("/v1/account", None).await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "still shedding 5 s after the saturation ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.assert_healthy().await;
}
