//! End-to-end: accounts and sessions with real `cofferd` and `coffer` processes.

mod support;

use support::*;

#[test]
fn register_whoami_logout() {
    let server = Server::start();
    let name = unique("alice");
    let a = server.register(&name);
    let who = a.json(&["whoami"]);
    assert_eq!(who["username"], name.as_str());
    a.ok(&["logout"]);
    a.fails(&["whoami"], 3);
}
