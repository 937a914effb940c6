//! The server suite against our own server: cofferd runs in-process on an ephemeral port with a
//! temporary data directory and the suite's settings (`cofferd-suite.toml`); every check must
//! pass.

use coffer_conformance::server::{self, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cofferd_passes_the_server_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = coffer_server::config::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().to_path_buf(),
    );
    config.file = coffer_server::config::FileConfig::parse(include_str!("../cofferd-suite.toml"))
        .expect("suite config");
    let identity = config.file.server.identity.clone();
    let handle = coffer_server::serve(config).await.expect("serve");
    let opts = server::Options {
        url: format!("http://{}", handle.local_addr()),
        server_identity: identity,
        only: None,
        max_wait: std::time::Duration::from_secs(30),
    };
    let result = server::run(&opts, None).await;
    handle.shutdown().await.expect("shutdown");

    let failures: Vec<String> = result
        .checks
        .iter()
        .filter(|c| c.outcome != Outcome::Pass)
        .map(server::line)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every area ran and reported.
    for area in server::AREAS {
        assert!(
            result.checks.iter().any(|c| c.area == *area),
            "area {area} reported nothing"
        );
    }
    assert!(result.success());
}
