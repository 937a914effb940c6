//! End-to-end: folders shared with you appear as `/shared/OWNER/NAME` in `ls`, `get` and `put`,
//! and what a write member puts there, the owner reads in its own tree.

mod support;

use support::*;

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn shared_folders_under_shared_owner_name() {
    let server = Server::start();
    let an = unique("ann");
    let bn = unique("ben");
    let a = server.register(&an);
    let b = server.register(&bn);
    let local = tempfile::tempdir().expect("dir");
    let one = local.path().join("one.txt");
    std::fs::write(&one, b"first file, from the owner").expect("write");
    let two = local.path().join("two.txt");
    std::fs::write(&two, b"second file, from the member").expect("write");

    a.ok(&["mkdir", "/team"]);
    a.ok(&["put", one.to_str().expect("utf-8"), "/team"]);
    assert!(!names(&b.json(&["ls"])).contains(&"shared".to_owned()));
    a.ok(&["share", "add", "/team", &bn, "--write"]);

    // The member sees the folder under /shared/OWNER/NAME.
    assert!(names(&b.json(&["ls"])).contains(&"shared".to_owned()));
    assert_eq!(
        names(&b.json(&["ls", "/shared"])),
        std::slice::from_ref(&an)
    );
    assert_eq!(names(&b.json(&["ls", &format!("/shared/{an}")])), ["team"]);
    let team = format!("/shared/{an}/team");
    assert_eq!(names(&b.json(&["ls", &team])), ["one.txt"]);
    let got = local.path().join("got");
    b.ok(&[
        "get",
        &format!("{team}/one.txt"),
        got.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        std::fs::read(&got).expect("read"),
        b"first file, from the owner"
    );

    // The member writes; the owner reads it in its own tree.
    b.ok(&["put", two.to_str().expect("utf-8"), &team]);
    b.ok(&[
        "mv",
        &format!("{team}/two.txt"),
        &format!("{team}/renamed.txt"),
    ]);
    assert_eq!(names(&a.json(&["ls", "/team"])), ["one.txt", "renamed.txt"]);
    a.ok(&["get", "/team/renamed.txt", got.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read(&got).expect("read"),
        b"second file, from the member"
    );

    // The virtual folders are not real ones.
    b.fails(&["mkdir", "/shared"], 2);
    b.fails(&["ls", "/shared/nobody"], 4);
    b.fails(
        &[
            "get",
            &format!("/shared/{an}/nothing/x"),
            got.to_str().expect("utf-8"),
        ],
        4,
    );
}
