//! End-to-end: shared folders with real `cofferd` and `coffer` processes. A shares a folder with
//! B and C (identities verified and pinned on first use); they read it under
//! `/shared/A/NAME`; A removes B: B cannot read what is added afterwards (nor anything else),
//! while A and C read everything, old and new; a pinned identity that changes without a valid
//! chain is refused loudly; C leaves.

mod support;

use support::*;

#[test]
fn share_read_remove_leave_and_pins() {
    let server = Server::start();
    let an = unique("alice");
    let bn = unique("bob");
    let cn = unique("carol");
    let a = server.register(&an);
    let b = server.register(&bn);
    let c = server.register(&cn);
    let local = tempfile::tempdir().expect("dir");
    let old = random_bytes(150_000);
    a.ok(&["mkdir", "/team"]);
    a.ok(&["mkdir", "/team/inner"]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "old.bin", &old)),
        "/team/inner",
    ]);

    // Share with B and C: their identities are verified and pinned on first use.
    let added = a.json(&["share", "add", "/team", &bn]);
    assert_eq!(added["share"]["created"], true);
    assert_eq!(added["share"]["first_use"], true);
    let added_c = a.json(&["share", "add", "/team", &cn]);
    assert_eq!(added_c["share"]["created"], false);
    // The fingerprint A pinned is the one B sees for itself.
    let b_own = b.json(&["fingerprint"]);
    assert_eq!(added["share"]["fingerprint"], b_own["fingerprint"]);
    // Adding again is a conflict.
    a.fails(&["share", "add", "/team", &bn], 6);

    // B reads it under /shared/A/team.
    let shared = format!("/shared/{an}/team");
    let listed = b.json(&["share", "list"]);
    assert_eq!(listed["incoming"][0]["path"], shared.as_str());
    let got = local.path().join("b-old");
    b.ok(&["get", &format!("{shared}/inner/old.bin"), path_str(&got)]);
    assert_eq!(std::fs::read(&got).expect("read"), old);
    // B pinned A on the way.
    let b_sees_a = b.json(&["fingerprint", &an]);
    assert_eq!(b_sees_a["pin"], "pinned");
    assert_eq!(
        b_sees_a["fingerprint"],
        a.json(&["fingerprint"])["fingerprint"]
    );

    // A folder link to the shared folder, made before the removal.
    let old_url = a.ok(&["link", "create", "/team"]).trim().to_owned();

    // A removes B: a new share generation.
    let removed = a.json(&["share", "remove", "/team", &bn]);
    assert_eq!(removed["generation"], 1);
    let new = random_bytes(120_000);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "new.bin", &new)),
        "/team/inner",
    ]);
    // The folder link was re-sealed for the new generation: the same URL reads old files and
    // those added after the removal.
    assert_eq!(
        removed["resealed"].as_array().map(Vec::len),
        Some(1),
        "{removed}"
    );
    let stranger = server.user("stranger");
    let via = local.path().join("via-link");
    stranger.ok(&["open", &old_url, "-o", path_str(&via)]);
    assert_eq!(
        std::fs::read(via.join("inner").join("new.bin")).expect("new"),
        new
    );
    assert_eq!(
        std::fs::read(via.join("inner").join("old.bin")).expect("old"),
        old
    );
    // B reads nothing any more, least of all what was added afterwards.
    b.fails(
        &[
            "get",
            &format!("{shared}/inner/new.bin"),
            path_str(&local.path().join("b-new")),
        ],
        4,
    );
    b.fails(
        &[
            "get",
            &format!("{shared}/inner/old.bin"),
            path_str(&local.path().join("b-old2")),
        ],
        4,
    );
    assert!(!local.path().join("b-new").exists());
    // A and C read everything, old and new.
    for (u, tag) in [(&a, "a"), (&c, "c")] {
        let base = if tag == "a" {
            "/team".to_owned()
        } else {
            shared.clone()
        };
        for (name, bytes) in [("old.bin", &old), ("new.bin", &new)] {
            let p = local.path().join(format!("{tag}-{name}"));
            u.ok(&["get", &format!("{base}/inner/{name}"), path_str(&p)]);
            assert_eq!(&std::fs::read(&p).expect("read"), bytes, "{tag} {name}");
        }
    }
    let owned = a.json(&["share", "list"]);
    let members = owned["owned"][0]["members"].as_array().expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["user"], cn.as_str());
    assert_eq!(owned["owned"][0]["generation"], 1);

    // A pinned identity that changes without a valid chain is refused loudly: simulate the
    // server serving another identity by damaging the pin C holds for A.
    let pins_path = c.config_dir().join("pins.json");
    let mut pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pins_path).expect("pins")).expect("json");
    let fp = pins["pins"][&an]["fingerprint"]
        .as_str()
        .expect("fp")
        .to_owned();
    let first = fp.chars().next().expect("digit");
    let forged = format!("{}{}", if first == '1' { '2' } else { '1' }, &fp[1..]);
    pins["pins"][&an]["fingerprint"] = serde_json::Value::String(forged);
    std::fs::write(&pins_path, serde_json::to_vec(&pins).expect("json")).expect("write pins");
    let err = c.fails(&["fingerprint", &an], 5);
    assert!(
        err.contains("CHANGED WITHOUT A VALID ROTATION CHAIN"),
        "{err}"
    );
    let err = c.fails(&["ls", "/shared"], 5);
    assert!(
        err.contains("CHANGED WITHOUT A VALID ROTATION CHAIN"),
        "{err}"
    );
    // Restore the true pin; C leaves.
    pins["pins"][&an]["fingerprint"] = serde_json::Value::String(fp);
    std::fs::write(&pins_path, serde_json::to_vec(&pins).expect("json")).expect("write pins");
    c.ok(&["share", "leave", &shared]);
    c.fails(
        &[
            "get",
            &format!("{shared}/inner/old.bin"),
            path_str(&local.path().join("c-gone")),
        ],
        4,
    );
    assert!(c.json(&["share", "list"])["incoming"]
        .as_array()
        .expect("incoming")
        .is_empty());
    // A still has everything.
    let p = local.path().join("a-final");
    a.ok(&["get", "/team/inner/new.bin", path_str(&p)]);
    assert_eq!(std::fs::read(&p).expect("read"), new);
}

/// `share remove --rotate-links`: the links to the folder get new URLs in the same command (a
/// removed member may have seen the old ones, spec §9.3). The old URL stops working; the new
/// one reads what was there and what is added after the removal.
#[test]
fn removing_a_member_can_rotate_the_links_they_may_have_seen() {
    let server = Server::start();
    let a = server.register(&unique("alice"));
    let bn = unique("bob");
    let _b = server.register(&bn);
    let local = tempfile::tempdir().expect("dir");
    let old = random_bytes(70_000);
    a.ok(&["mkdir", "/team"]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "old.bin", &old)),
        "/team",
    ]);
    a.json(&["share", "add", "/team", &bn]);
    let old_url = a.ok(&["link", "create", "/team"]).trim().to_owned();

    let removed = a.json(&["share", "remove", "/team", &bn, "--rotate-links"]);
    assert_eq!(
        removed["resealed"].as_array().map(Vec::len),
        Some(1),
        "{removed}"
    );
    let new_url = removed["rotated"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no rotated URL: {removed}"))
        .to_owned();
    assert_ne!(new_url, old_url);
    let new = random_bytes(50_000);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "new.bin", &new)),
        "/team",
    ]);

    let stranger = server.user("stranger");
    stranger.fails(
        &[
            "open",
            &old_url,
            "-o",
            path_str(&local.path().join("via-old")),
        ],
        4,
    );
    let via = local.path().join("via-new");
    stranger.ok(&["open", &new_url, "-o", path_str(&via)]);
    assert!(std::fs::read(via.join("old.bin")).expect("old") == old);
    assert!(std::fs::read(via.join("new.bin")).expect("new") == new);
}
