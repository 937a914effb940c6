//! End-to-end: links with real `cofferd` and `coffer` processes. A file link and a folder link
//! open with an empty config directory and return identical bytes; a changed fragment, a revoked
//! link and a rotated-away link give clear errors; a password link refuses a wrong password;
//! download limits and expiry are enforced; an upload-only link lets a stranger add a file the
//! owner can read, and reads nothing.

mod support;

use support::*;

/// The URL with one character of the secret in its fragment changed.
fn changed_fragment(url: &str) -> String {
    let hash = url.find('#').expect("fragment");
    let mut chars: Vec<char> = url.chars().collect();
    let i = hash + 6;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn read_links_open_revoke_rotate_password_limits() {
    let server = Server::start();
    let a = server.register(&unique("alice"));
    let local = tempfile::tempdir().expect("dir");
    let report = random_bytes(300_000);
    let note = b"folder link note".repeat(50);
    let deep = random_bytes(70_000);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "report.bin", &report)),
    ]);
    a.ok(&["mkdir", "/pub"]);
    a.ok(&["mkdir", "/pub/sub"]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "note.txt", &note)),
        "/pub",
    ]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "deep.bin", &deep)),
        "/pub/sub",
    ]);

    // A stranger: no account, an empty config directory.
    let stranger = server.user("stranger");
    let out = tempfile::tempdir().expect("out");

    // File link: identical bytes.
    let url = a.ok(&["link", "create", "/report.bin"]).trim().to_owned();
    assert!(url.starts_with(&format!("{}/l/", server.url)), "{url}");
    let got = out.path().join("report.copy");
    stranger.ok(&["open", &url, "-o", path_str(&got)]);
    assert_eq!(std::fs::read(&got).expect("read"), report);

    // A changed fragment: a clear error, nothing written.
    let bad_out = out.path().join("bad.copy");
    let err = stranger.fails(
        &["open", &changed_fragment(&url), "-o", path_str(&bad_out)],
        2,
    );
    assert!(err.contains("link URL"), "{err}");
    assert!(!bad_out.exists());

    // Folder link: the whole tree.
    let furl = a.ok(&["link", "create", "/pub"]).trim().to_owned();
    let tree = out.path().join("pub-copy");
    let r = stranger.json(&["open", &furl, "-o", path_str(&tree)]);
    assert_eq!(r["files"], 2);
    assert_eq!(std::fs::read(tree.join("note.txt")).expect("note"), note);
    assert_eq!(
        std::fs::read(tree.join("sub").join("deep.bin")).expect("deep"),
        deep
    );

    // The owner's list shows both, with their URLs.
    let list = a.json(&["link", "list"]);
    let links = list["links"].as_array().expect("links");
    assert_eq!(links.len(), 2);
    let urls: Vec<&str> = links
        .iter()
        .map(|l| l["url"].as_str().expect("url"))
        .collect();
    assert!(urls.contains(&url.as_str()) && urls.contains(&furl.as_str()));

    // Revoke: the link is gone.
    a.ok(&["link", "revoke", &url]);
    let err = stranger.fails(&["open", &url, "-o", path_str(&bad_out)], 4);
    assert!(err.contains("revoked"), "{err}");

    // Rotate: the old URL fails, the new one works.
    let rotated = a.ok(&["link", "rotate", &furl]).trim().to_owned();
    assert_ne!(rotated, furl);
    stranger.fails(&["open", &furl, "-o", path_str(&bad_out)], 4);
    let tree2 = out.path().join("pub-rotated");
    stranger.ok(&["open", &rotated, "-o", path_str(&tree2)]);
    assert_eq!(std::fs::read(tree2.join("note.txt")).expect("note"), note);

    // Password link: a wrong password is refused, the right one opens.
    let pw = [("COFFER_LINK_PASSWORD", "open sesame, link")];
    let out_pw = a.run_env(&["link", "create", "/report.bin", "--password"], &pw);
    let purl = assert_ok(&out_pw, &["link", "create", "--password"])
        .trim()
        .to_owned();
    assert!(purl.ends_with(".p"), "{purl}");
    let wrong = stranger.run_env(
        &["open", &purl, "-o", path_str(&bad_out)],
        &[("COFFER_LINK_PASSWORD", "not the password")],
    );
    let err = assert_fails(&wrong, &["open", "wrong password"], 3);
    assert!(err.contains("wrong link password"), "{err}");
    assert!(!bad_out.exists());
    // Without any password and no terminal: a usage error that says how to give one.
    let err = stranger.fails(&["open", &purl, "-o", path_str(&bad_out)], 2);
    assert!(err.contains("COFFER_LINK_PASSWORD"), "{err}");
    let got_pw = out.path().join("pw.copy");
    let ok = stranger.run_env(&["open", &purl, "-o", path_str(&got_pw)], &pw);
    assert_ok(&ok, &["open", "right password"]);
    assert_eq!(std::fs::read(&got_pw).expect("read"), report);

    // Download limit: one download, then the link is used up.
    let lurl = a
        .ok(&["link", "create", "/report.bin", "--max-downloads", "1"])
        .trim()
        .to_owned();
    let once = out.path().join("once.copy");
    stranger.ok(&["open", &lurl, "-o", path_str(&once)]);
    assert_eq!(std::fs::read(&once).expect("read"), report);
    let err = stranger.fails(&["open", &lurl, "-o", path_str(&bad_out)], 6);
    assert!(err.contains("download limit"), "{err}");

    // Expiry: works before, refused after.
    let eurl = a
        .ok(&["link", "create", "/report.bin", "--expires", "3s"])
        .trim()
        .to_owned();
    let before = out.path().join("before.copy");
    stranger.ok(&["open", &eurl, "-o", path_str(&before)]);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let err = stranger.fails(&["open", &eurl, "-o", path_str(&bad_out)], 6);
    assert!(err.contains("expired"), "{err}");
    assert!(!bad_out.exists());

    // The server's storage holds no plaintext, no link secret and no link password.
    let mut needles: Vec<(&str, Vec<u8>)> = vec![
        ("report plaintext", report[5000..5064].to_vec()),
        ("deep plaintext", deep[100..164].to_vec()),
        ("note plaintext", note[..48].to_vec()),
        ("link password", b"open sesame, link".to_vec()),
    ];
    for u in [&url, &furl, &rotated, &purl, &lurl, &eurl] {
        needles.push(("link secret", secret_of(u)));
    }
    let refs: Vec<(&str, &[u8])> = needles.iter().map(|(w, n)| (*w, n.as_slice())).collect();
    assert_absent(&server.data_dir(), &refs);
}

/// The 32-byte link secret in a URL's fragment (`#1.<secret>[.p]`).
fn secret_of(url: &str) -> Vec<u8> {
    let frag = url.split_once('#').expect("fragment").1;
    let b64 = frag.split('.').nth(1).expect("secret");
    let secret = coffer_core::encoding::b64url_decode(b64).expect("base64url");
    assert_eq!(secret.len(), 32);
    secret
}

#[test]
fn upload_only_link_adds_files_and_reads_nothing() {
    let server = Server::start();
    let a = server.register(&unique("alice"));
    let local = tempfile::tempdir().expect("dir");
    let secret = b"the inbox's existing secret".repeat(30);
    a.ok(&["mkdir", "/inbox"]);
    a.ok(&[
        "put",
        path_str(&write_local(local.path(), "secret.txt", &secret)),
        "/inbox",
    ]);
    // A write member of the folder's share sees its drops (spec §11.11.2) but leaves them to
    // the owner: listing its links must not fail on a folder outside its own tree.
    let b_name = unique("bob");
    let b = server.register(&b_name);
    a.ok(&["share", "add", "/inbox", &b_name, "--write"]);
    let url = a
        .ok(&["link", "create", "/inbox", "--upload-only"])
        .trim()
        .to_owned();

    let stranger = server.user("stranger");
    let dropped = random_bytes(200_000);
    let theirs = tempfile::tempdir().expect("stranger dir");
    let file = write_local(theirs.path(), "dropped.bin", &dropped);
    let up = stranger.json(&["open", &url, "--upload", path_str(&file)]);
    assert_eq!(up["uploaded"], "dropped.bin");

    // The stranger cannot read the folder through the link.
    let err = stranger.fails(&["open", &url, "-o", path_str(&theirs.path().join("x"))], 2);
    assert!(err.contains("upload-only"), "{err}");
    assert!(!theirs.path().join("x").exists());

    // The write member lists, files nothing, and leaves the drop in place.
    let b_list = b.json(&["link", "list"]);
    assert!(
        b_list["filed_uploads"]
            .as_array()
            .expect("filed")
            .is_empty(),
        "{b_list}"
    );

    // The owner files the upload and reads it.
    let list = a.json(&["link", "list"]);
    let filed = list["filed_uploads"].as_array().expect("filed");
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0]["name"], "dropped.bin");
    let got = local.path().join("dropped.copy");
    a.ok(&["get", "/inbox/dropped.bin", path_str(&got)]);
    assert_eq!(std::fs::read(&got).expect("read"), dropped);
    let names: Vec<String> = a
        .json(&["ls", "/inbox"])
        .as_array()
        .expect("ls")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"dropped.bin".to_owned()) && names.contains(&"secret.txt".to_owned()));
    // Filed once: a second listing files nothing more.
    let again = a.json(&["link", "list"]);
    assert!(again["filed_uploads"].as_array().expect("filed").is_empty());
    // The server's storage holds neither plaintext.
    assert_absent(
        &server.data_dir(),
        &[
            ("dropped plaintext", &dropped[1000..1064]),
            ("secret", &secret[..64]),
        ],
    );
}
