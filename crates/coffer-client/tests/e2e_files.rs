//! End-to-end: files with real `cofferd` and `coffer` processes: a 100 MiB file and a folder
//! tree round-trip byte for byte, ranges, moves, removal, clear errors, and the server's storage
//! holds no plaintext and no key material.

mod support;

use support::*;

#[test]
fn big_file_and_tree_round_trip_and_server_holds_no_plaintext() {
    let server = Server::start();
    let a = server.register(&unique("alice"));
    let local = tempfile::tempdir().expect("dir");

    // A 100 MiB random file (not a multiple of the chunk or part size).
    let big = random_bytes(100 * 1024 * 1024 + 12_345);
    let big_path = write_local(local.path(), "big.bin", &big);
    let put = a.json(&["put", path_str(&big_path)]);
    assert_eq!(put["path"], "/big.bin");
    assert_eq!(put["size"], big.len() as u64);
    assert_eq!(put["resumed"], false);
    assert_eq!(put["parts_sent"], put["parts_total"]);

    // A folder tree.
    a.ok(&["mkdir", "/docs"]);
    a.ok(&["mkdir", "/docs/deep"]);
    let note = b"the quick brown fox jumps over the lazy dog, secretly".repeat(40);
    let empty: &[u8] = b"";
    let note_path = write_local(local.path(), "note.txt", &note);
    let empty_path = write_local(local.path(), "empty.txt", empty);
    a.ok(&["put", path_str(&note_path), "/docs"]);
    a.ok(&["put", path_str(&empty_path), "/docs/deep/nothing.txt"]);

    let root = a.json(&["ls"]);
    let names: Vec<&str> = root
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["big.bin", "docs"]);
    assert_eq!(root[0]["size"], big.len() as u64);
    // The content digest of the signed metadata (§2.3), as `b3sum` would print it.
    let digest = |b: &[u8]| hex::encode(coffer_core::primitives::content_digest(b));
    assert_eq!(root[0]["digest"], digest(&big));
    assert_eq!(root[1]["kind"], "folder");
    assert!(root[1].get("digest").is_none(), "a folder has no digest");
    let deep = a.json(&["ls", "/docs/deep"]);
    assert_eq!(deep[0]["name"], "nothing.txt");
    assert_eq!(deep[0]["size"], 0);
    assert_eq!(deep[0]["digest"], digest(b""));

    // get returns identical bytes.
    let out = tempfile::tempdir().expect("out");
    let got = out.path().join("big.copy");
    a.ok(&["get", "/big.bin", path_str(&got)]);
    assert!(
        std::fs::read(&got).expect("read") == big,
        "100 MiB file differs"
    );
    a.ok(&["get", "/docs/note.txt", path_str(out.path())]);
    assert_eq!(
        std::fs::read(out.path().join("note.txt")).expect("read"),
        note
    );
    a.ok(&[
        "get",
        "/docs/deep/nothing.txt",
        path_str(&out.path().join("e")),
    ]);
    assert_eq!(std::fs::read(out.path().join("e")).expect("read"), empty);

    // Byte ranges: inside one chunk, across chunk and part boundaries, to the end.
    for (first, last) in [
        (0u64, 0u64),
        (65_530, 65_545),
        (8 * 1024 * 1024 - 7, 9 * 1024 * 1024 + 3),
        (big.len() as u64 - 10, big.len() as u64 + 100),
    ] {
        let dest = out.path().join(format!("r{first}"));
        a.ok(&[
            "get",
            "/big.bin",
            path_str(&dest),
            "--range",
            &format!("{first}-{last}"),
        ]);
        let end = (last as usize + 1).min(big.len());
        assert!(
            std::fs::read(&dest).expect("read") == big[first as usize..end],
            "range {first}-{last}"
        );
    }
    // To stdout.
    let r = a.run(&["get", "/docs/note.txt", "-"]);
    assert_eq!(assert_ok(&r, &["get", "-"]).into_bytes(), note);

    // Move, rename, remove.
    a.ok(&["mv", "/docs/note.txt", "/docs/deep"]);
    a.ok(&["mv", "/docs/deep/note.txt", "/docs/deep/renamed.txt"]);
    let deep = a.json(&["ls", "/docs/deep"]);
    let names: Vec<&str> = deep
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["nothing.txt", "renamed.txt"]);
    let back = out.path().join("renamed");
    a.ok(&["get", "/docs/deep/renamed.txt", path_str(&back)]);
    assert_eq!(std::fs::read(&back).expect("read"), note);

    // Overwrite: a second put to the same name replaces the content.
    let note2 = b"second version".to_vec();
    let note2_path = write_local(local.path(), "v2.txt", &note2);
    a.ok(&["put", path_str(&note2_path), "/docs/deep/renamed.txt"]);
    a.ok(&["get", "/docs/deep/renamed.txt", path_str(&back)]);
    assert_eq!(std::fs::read(&back).expect("read"), note2);

    // Clear errors with documented exit codes.
    let e = a.fails(&["get", "/nope.bin", path_str(&out.path().join("x"))], 4);
    assert!(e.contains("no such file"), "{e}");
    assert!(!out.path().join("x").exists());
    a.fails(&["mkdir", "/docs"], 6);
    a.fails(&["mkdir", "/missing/child"], 4);
    a.fails(&["ls", "/docs/../etc"], 2);
    a.fails(
        &[
            "get",
            "/big.bin",
            path_str(&out.path().join("y")),
            "--range",
            "200000000-",
        ],
        2,
    );

    a.ok(&["rm", "/docs/deep"]);
    let docs = a.json(&["ls", "/docs"]);
    assert!(docs.as_array().expect("list").is_empty());
    a.fails(
        &[
            "get",
            "/docs/deep/nothing.txt",
            path_str(&out.path().join("z")),
        ],
        4,
    );

    // No download left temporary files behind.
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".coffer"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // No upload state left behind either.
    let uploads = a.config_dir().join("uploads");
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).expect("dir").next().is_none(),
        "upload state left behind"
    );

    // The server's storage: no plaintext of any uploaded file, no key material.
    let session: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.config_dir().join("session.json")).expect("session file"),
    )
    .expect("session json");
    let master = hex::decode(session["master_key"].as_str().expect("master key")).expect("hex");
    let samples: Vec<&[u8]> = (0..16)
        .map(|i| {
            let at = i * (big.len() / 16);
            &big[at..at + 32]
        })
        .collect();
    let mut needles: Vec<(&str, &[u8])> = vec![
        ("master key", &master),
        ("note plaintext", &note[..48]),
        ("second version plaintext", &note2),
        ("file name", b"renamed.txt"),
        ("password", PASSWORD.as_bytes()),
    ];
    for smp in &samples {
        needles.push(("big file plaintext", smp));
    }
    assert_absent(&server.data_dir(), &needles);
}

#[test]
fn session_file_is_private_and_holds_no_password() {
    let server = Server::start();
    let a = server.register(&unique("carol"));
    let path = a.config_dir().join("session.json");
    let bytes = std::fs::read(&path).expect("session file");
    assert!(!contains(&bytes, PASSWORD.as_bytes()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Another process uses the saved session without a password.
    let out = a.run_env(&["ls"], &[("COFFER_PASSWORD", "")]);
    assert_ok(&out, &["ls"]);
    // Not logged in at all: exit 3 with what to do.
    let stranger = server.user("nobody");
    let e = stranger.fails(&["ls"], 3);
    assert!(e.contains("coffer login"), "{e}");
    // An unreachable server: exit 7.
    let out = a.run_env(
        &["login", "carol"],
        &[("COFFER_SERVER", "http://127.0.0.1:9")],
    );
    assert_fails(&out, &["login"], 7);
}

/// A download whose output fails mid-way (standard output on a full device) stops with a clear
/// one-line error and exit 1: the writer thread's error reaches the command while later batches
/// are still being decrypted, and nothing hangs or panics.
#[cfg(target_os = "linux")]
#[test]
fn a_download_whose_output_fails_stops_with_a_clear_error() {
    let server = Server::start();
    let a = server.register(&unique("dora"));
    let local = tempfile::tempdir().expect("dir");
    // Several 512 KiB batches, so that decryption is ahead of the failing writer.
    let data = random_bytes(5 * 1024 * 1024 + 7);
    let src = write_local(local.path(), "f.bin", &data);
    a.ok(&["put", path_str(&src), "/f.bin"]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let args = ["get", "/f.bin", "-"];
    let out = a.cmd(&args).stdout(full).output().expect("run coffer");
    let err = assert_fails(&out, &args, 1);
    assert!(err.contains("writing the download"), "{err}");
    // The cause once, not repeated by the error chain.
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
    // The same download to a file still works.
    let dest = local.path().join("back.bin");
    a.ok(&["get", "/f.bin", path_str(&dest)]);
    assert!(std::fs::read(&dest).expect("read") == data);
}
