//! End-to-end: `coffer keys rotate` (compromise recovery, spec §9.4) with real `cofferd` and
//! `coffer` processes: everything stays readable, other sessions are dead, links move to new
//! URLs, the new password is the only one, and another user sees the new identity generation
//! through a valid chain (the pin advances, the fingerprint changes) and keeps reading the folder
//! A shares with it.

mod support;

use support::*;

#[test]
fn keys_rotate_rekeys_everything() {
    let server = Server::start();
    let an = unique("alice");
    let bn = unique("bob");
    let a = server.register(&an);
    let b = server.register(&bn);
    let local = tempfile::tempdir().expect("dir");
    let top = random_bytes(250_000);
    let deep = b"a deep file, still readable after the rotation".repeat(20);
    a.ok(&["put", path_str(&write_local(local.path(), "top.bin", &top))]);
    a.ok(&["mkdir", "/d"]);
    a.ok(&["mkdir", "/d/e"]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "deep.txt", &deep)),
        "/d/e",
    ]);
    let old_url = a.ok(&["link", "create", "/top.bin"]).trim().to_owned();

    // B pins A's generation 0; A has a second session.
    let before = b.json(&["fingerprint", &an]);
    assert_eq!(before["pin"], "first-use");
    assert_eq!(before["generation"], 0);
    // A shares /d with B, who reads it.
    a.ok(&["share", "add", "/d", &bn]);
    let shared_deep = format!("/shared/{an}/d/e/deep.txt");
    let p = local.path().join("b-before");
    b.ok(&["get", &shared_deep, path_str(&p)]);
    assert_eq!(std::fs::read(&p).expect("read"), deep);
    let a2 = server.user(&an);
    a2.ok(&["login", &an]);
    a2.ok(&["ls"]);

    let new_pw = "a brand new password after the phishing";
    let out = a.run_env(
        &["--json", "keys", "rotate"],
        &[("COFFER_NEW_PASSWORD", new_pw)],
    );
    let rotated: serde_json::Value =
        serde_json::from_str(assert_ok(&out, &["keys", "rotate"]).trim()).expect("json");
    assert_eq!(rotated["identity_generation"], 1);
    assert_eq!(rotated["nodes"], 5);
    assert_eq!(rotated["sessions_revoked"], 1);
    assert_ne!(rotated["fingerprint"], before["fingerprint"]);

    // Everything is still readable with the session that rotated.
    for (remote, bytes) in [("/top.bin", &top[..]), ("/d/e/deep.txt", &deep[..])] {
        let p = local.path().join(remote.replace('/', "_"));
        a.ok(&["get", remote, path_str(&p)]);
        assert_eq!(std::fs::read(&p).expect("read"), bytes, "{remote}");
    }
    assert_eq!(a.json(&["fingerprint"])["generation"], 1);

    // The other session is dead.
    a2.fails(&["ls"], 3);
    // The old password fails, the new one works, and the new login reads everything.
    a2.fails(&["login", &an], 3);
    let relog = a2.run_env(&["login", &an], &[("COFFER_PASSWORD", new_pw)]);
    assert_ok(&relog, &["login", "new password"]);
    let p = local.path().join("relog-deep");
    let got = a2.run_env(
        &["get", "/d/e/deep.txt", path_str(&p)],
        &[("COFFER_PASSWORD", new_pw)],
    );
    assert_ok(&got, &["get", "after relogin"]);
    assert_eq!(std::fs::read(&p).expect("read"), deep);

    // The link moved to a new URL; the old one is gone.
    let new_url = rotated["links"][0]["url"]
        .as_str()
        .expect("new url")
        .to_owned();
    assert_ne!(new_url, old_url);
    let stranger = server.user("stranger");
    stranger.fails(
        &["open", &old_url, "-o", path_str(&local.path().join("x"))],
        4,
    );
    let via = local.path().join("via-link");
    stranger.ok(&["open", &new_url, "-o", path_str(&via)]);
    assert_eq!(std::fs::read(&via).expect("read"), top);

    // B sees A's new identity through a valid chain: the pin advances.
    let after = b.json(&["fingerprint", &an]);
    assert_eq!(after["pin"], "rotated");
    assert_eq!(after["generation"], 1);
    assert_eq!(after["fingerprint"], rotated["fingerprint"]);
    assert_eq!(b.json(&["fingerprint", &an])["pin"], "pinned");
    // B still reads the folder A shares, now under A's new share generation and identity.
    let p = local.path().join("b-after");
    b.ok(&["get", &shared_deep, path_str(&p)]);
    assert_eq!(std::fs::read(&p).expect("read"), deep);
    let owned = a.json(&["share", "list"]);
    assert_eq!(owned["owned"][0]["generation"], 1);
}
