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
    assert_eq!(who["identity_generation"], 0);
    assert_eq!(
        who["fingerprint"]
            .as_str()
            .expect("fingerprint")
            .split(' ')
            .count(),
        12
    );
    // Registering a taken name is a conflict; a wrong password is an authentication error.
    let other = server.user(&name);
    other.fails(&["register", &name], 6);
    let out = other.run_env(&["login", &name], &[("COFFER_PASSWORD", "not it")]);
    assert_fails(&out, &["login"], 3);
    other.ok(&["login", &name]);
    assert_eq!(other.json(&["sessions"]).as_array().expect("list").len(), 2);
    // Logout ends the session on the server and deletes the file.
    a.ok(&["logout"]);
    assert!(!a.config_dir().join("session.json").exists());
    a.fails(&["whoami"], 3);
    assert_eq!(other.json(&["sessions"]).as_array().expect("list").len(), 1);
    a.ok(&["logout"]);
}

const NEW_PASSWORD: &str = "a much better passphrase, finally";

#[test]
fn password_change_sessions_and_account_deletion() {
    let server = Server::start();
    let name = unique("dave");
    let a = server.register(&name);
    let local = tempfile::tempdir().expect("dir");
    let data = random_bytes(3 * 1024 * 1024 + 5);
    let src = local.path().join("data.bin");
    std::fs::write(&src, &data).expect("write");
    a.ok(&["put", src.to_str().expect("utf-8"), "/data.bin"]);

    // A second device.
    let a2 = server.user(&name);
    a2.ok(&["login", &name]);
    let list = a.json(&["sessions", "list"]);
    let list = list.as_array().expect("sessions");
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);

    // Wrong current password: refused, nothing changes.
    let out = a.run_env(
        &["passwd"],
        &[
            ("COFFER_PASSWORD", "wrong"),
            ("COFFER_NEW_PASSWORD", NEW_PASSWORD),
        ],
    );
    assert_fails(&out, &["passwd"], 3);
    a2.ok(&["ls"]);

    // Change the password: the other session dies, this one lives, the old password fails.
    let out = a.run_env(
        &["--json", "passwd"],
        &[("COFFER_NEW_PASSWORD", NEW_PASSWORD)],
    );
    let v: serde_json::Value =
        serde_json::from_str(assert_ok(&out, &["passwd"]).trim()).expect("json");
    assert_eq!(v["sessions_revoked"], 1);
    let e = a2.fails(&["ls"], 3);
    assert!(e.contains("coffer login"), "{e}");
    a2.fails(&["login", &name], 3);
    let out = a2.run_env(&["login", &name], &[("COFFER_PASSWORD", NEW_PASSWORD)]);
    assert_ok(&out, &["login"]);
    // Every file intact, from both sessions.
    for u in [&a, &a2] {
        let dest = local.path().join("back.bin");
        u.ok(&["get", "/data.bin", dest.to_str().expect("utf-8")]);
        assert!(std::fs::read(&dest).expect("read") == data);
    }
    // --password-stdin: current then new, one per line.
    let out = a.run_stdin(
        &["--password-stdin", "passwd"],
        format!("{NEW_PASSWORD}\n{PASSWORD}\n").as_bytes(),
    );
    assert_ok(&out, &["passwd"]);
    a2.fails(&["ls"], 3);
    a2.ok(&["login", &name]);

    // Revoke the others; then revoke this very session by id.
    let v = a.json(&["sessions", "revoke-others"]);
    assert_eq!(v["revoked"], 1);
    a2.fails(&["ls"], 3);
    a2.ok(&["login", &name]);
    let list = a2.json(&["sessions"]);
    let mine = list
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == true)
        .expect("current")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    a2.ok(&["sessions", "revoke", &mine]);
    a2.fails(&["ls"], 3);
    a.fails(
        &["sessions", "revoke", "00112233445566778899aabbccddeeff"],
        4,
    );

    // Account deletion: refused without a terminal or --yes; then gone for good.
    let e = a.fails(&["account", "delete"], 2);
    assert!(e.contains("--yes"), "{e}");
    let session: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.config_dir().join("session.json")).expect("session file"),
    )
    .expect("json");
    let bundle = hex::decode(session["key_bundle"].as_str().expect("bundle")).expect("hex");
    let master = hex::decode(session["master_key"].as_str().expect("master")).expect("hex");
    a.ok(&["account", "delete", "--yes"]);
    assert!(!a.config_dir().join("session.json").exists());
    a.fails(&["login", &name], 3);
    a.fails(&["ls"], 3);
    // The server holds nothing of A's: no blob, no key bundle, no key, no plaintext.
    let data_dir = server.data_dir();
    let leftovers: Vec<_> = files_below(&data_dir)
        .into_iter()
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !(n.starts_with("metadata.sqlite")
                || n.ends_with(".toml")
                || n == "opaque-server-setup")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "files left after deletion: {leftovers:?}"
    );
    assert_absent(
        &data_dir,
        &[
            ("key bundle", &bundle[..]),
            ("sealed account secrets", &bundle[bundle.len() - 40..]),
            ("master key", &master[..]),
            ("file plaintext", &data[..64]),
        ],
    );
}
