use super::*;
use alloc::string::ToString as _;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng as _;

const ORIGIN: &str = "https://coffer.example";
const NOW: u64 = 1_800_000_000;

fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::from_seed([seed; 32])
}

fn target(kind: NodeKind, generation: u64, seed: u8) -> LinkTarget {
    let mut r = rng(seed);
    LinkTarget {
        node_id: NodeId::generate(&mut r),
        node_kind: kind,
        generation,
        node_key: SecretKey::generate(&mut r),
    }
}

fn read_link(options: &LinkOptions<'_>) -> (LinkTarget, CreatedLink) {
    let t = target(NodeKind::Folder, 3, 1);
    let link = create_link(&mut rng(2), ORIGIN, &t, options, NOW).expect("create");
    (t, link)
}

fn err<T: fmt::Debug>(r: Result<T>) -> Error {
    r.expect_err("expected an error")
}

fn node_key(o: &OpenedLink) -> &SecretKey {
    match &o.access {
        LinkAccess::Read { node_key } => node_key,
        LinkAccess::UploadOnly { .. } => panic!("not a read link"),
    }
}

fn reencode(record: &[u8], f: impl FnOnce(&mut LinkRecord)) -> Vec<u8> {
    let mut r = LinkRecord::parse(record).expect("parse");
    f(&mut r);
    r.to_bytes()
}

#[test]
fn derivations_are_domain_separated() {
    let s = LinkSecret::from_bytes([7; 32]);
    let id = s.link_id();
    let k = s.link_key();
    assert_ne!(&k.expose()[..16], id.as_bytes());
    let cap = capability_key(&s, None);
    let pw = SecretKey::from_bytes([9; 32]);
    let cap_pw = capability_key(&s, Some(&pw));
    assert_ne!(cap, cap_pw);
    assert_ne!(cap, k);
    let v = password_verifier(&s, &pw);
    assert_ne!(&v[..], cap_pw.expose());
    let h = verifier_hash(&v);
    assert!(check_verifier(&h, &v[..]));
    let mut bad = *v;
    bad[0] ^= 1;
    assert!(!check_verifier(&h, &bad));
    assert!(!check_verifier(&h, &v[..31]));
    assert!(!format!("{s:?}").contains("07"));
}

#[test]
fn url_format_is_exact() {
    let s = LinkSecret::from_bytes([0; 32]);
    let url = LinkUrl::new("https://c.example:8443/base", s.clone(), true).expect("url");
    let text = url.to_string();
    assert_eq!(
        text,
        format!(
            "https://c.example:8443/base/l/{}#1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.p",
            s.link_id().to_b64()
        )
    );
    let parsed = LinkUrl::parse(&text).expect("parse");
    assert_eq!(parsed, url);
    assert_eq!(parsed.origin(), "https://c.example:8443/base");
    assert!(parsed.password_required());
    assert!(!format!("{parsed:?}").contains("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}

/// Every malformed URL, with the failure class it must produce.
pub(super) fn malformed_urls(
    good: &str,
    good_pw: &str,
) -> Vec<(String, &'static str, &'static str)> {
    let (before, frag) = good.split_once('#').expect("fragment");
    let (origin, id) = before.split_once("/l/").expect("path");
    let secret = frag.strip_prefix("1.").expect("version");
    let other = LinkSecret::from_bytes([0x55; 32]);
    let other_secret = b64url_encode(other.expose());
    let mut flipped_secret = secret.to_owned().into_bytes();
    // 'A' <-> 'B' in the first character changes the secret, not its canonicity.
    flipped_secret[0] = if flipped_secret[0] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let flipped_secret = String::from_utf8(flipped_secret).expect("ascii");
    let last = secret.as_bytes()[42];
    // The last character of a 32-byte base64url string carries 4 bits and 2 zero bits.
    let noncanon_last = match last {
        b'A' => 'B',
        b'E' => 'F',
        _ => (last + 1) as char,
    };
    let noncanon = format!("{}{}", &secret[..42], noncanon_last);
    let v = vec![
        (before.to_string(), "no fragment", "invalid-text"),
        (format!("{before}#"), "empty fragment", "invalid-text"),
        (format!("{before}#1"), "version only", "invalid-text"),
        (format!("{before}#1."), "empty secret", "invalid-text"),
        (
            format!("{before}#2.{secret}"),
            "unknown version 2",
            "unknown-version",
        ),
        (
            format!("{before}#0.{secret}"),
            "unknown version 0",
            "unknown-version",
        ),
        (
            format!("{before}#01.{secret}"),
            "version with a leading zero",
            "invalid-text",
        ),
        (
            format!("{before}#v1.{secret}"),
            "non-numeric version",
            "invalid-text",
        ),
        (
            format!("{before}#{secret}"),
            "missing version",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}="),
            "padded secret",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}", &secret[..42]),
            "secret one character short",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}A"),
            "secret one character long",
            "invalid-text",
        ),
        (
            format!("{before}#1.{noncanon}"),
            "non-canonical trailing bits in the secret",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}+{}", &secret[..20], &secret[21..]),
            "standard-alphabet character in the secret",
            "invalid-text",
        ),
        (
            format!("{before}#1.{flipped_secret}"),
            "secret changed: path id no longer matches",
            "binding-mismatch",
        ),
        (
            format!("{origin}/l/{}#1.{other_secret}", id),
            "secret of another link",
            "binding-mismatch",
        ),
        (
            format!("{before}#1.{secret}.P"),
            "upper-case password flag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}.x"),
            "unknown flag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}."),
            "empty flag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}.p.p"),
            "extra component",
            "invalid-text",
        ),
        (
            format!("{}.q", good_pw),
            "component after the password flag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}#"),
            "second '#'",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}=#1.{secret}"),
            "padded link id",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{}#1.{secret}", &id[..21]),
            "link id one character short",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}/#1.{secret}"),
            "trailing slash after the link id",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}?x=1#1.{secret}"),
            "query string",
            "invalid-text",
        ),
        (
            format!("{origin}/L/{id}#1.{secret}"),
            "upper-case path segment",
            "invalid-text",
        ),
        (
            format!("{origin}/x/{id}#1.{secret}"),
            "wrong path segment",
            "invalid-text",
        ),
        (
            format!("{origin}//l/{id}#1.{secret}"),
            "origin with a trailing slash",
            "invalid-text",
        ),
        (
            format!("ftp://coffer.example/l/{id}#1.{secret}"),
            "ftp scheme",
            "invalid-text",
        ),
        (
            format!("HTTPS://coffer.example/l/{id}#1.{secret}"),
            "upper-case scheme",
            "invalid-text",
        ),
        (
            format!("https:///l/{id}#1.{secret}"),
            "empty host",
            "invalid-text",
        ),
        (
            format!("https://co ffer.example/l/{id}#1.{secret}"),
            "space in the origin",
            "invalid-text",
        ),
        (
            format!("coffer.example/l/{id}#1.{secret}"),
            "no scheme",
            "invalid-text",
        ),
        (format!("/l/{id}#1.{secret}"), "no origin", "invalid-text"),
        (format!(" {good}"), "leading space", "invalid-text"),
        (format!("{good}\n"), "trailing newline", "invalid-text"),
        (
            format!("https://{}/l/{id}#1.{secret}", "a".repeat(MAX_ORIGIN_LEN)),
            "origin over the length limit",
            "invalid-text",
        ),
        (String::new(), "empty string", "invalid-text"),
    ];
    v
}

#[test]
fn every_malformed_url_is_rejected() {
    let (_, link) = read_link(&LinkOptions::default());
    let good = link.url.to_string();
    let pw_url = LinkUrl::new(ORIGIN, link.url.secret().clone(), true).expect("url");
    for (bad, what, class) in malformed_urls(&good, &pw_url.to_string()) {
        let e = err(LinkUrl::parse(&bad));
        assert_eq!(e.class(), class, "{what}: {bad:?} gave {e}");
    }
    assert!(LinkUrl::parse(&good).is_ok());
    assert!(LinkUrl::parse(&good.replacen("https", "http", 1)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn url_round_trips(secret in any::<[u8; 32]>(), pw in any::<bool>(),
                       origin in "https?://[a-z0-9]{1,12}(\\.[a-z]{2,5})?(:[0-9]{1,5})?(/[a-zA-Z0-9_~-]{1,8}){0,2}") {
        let url = LinkUrl::new(&origin, LinkSecret::from_bytes(secret), pw).expect("url");
        let text = url.to_string();
        let parsed = LinkUrl::parse(&text).expect("parse");
        prop_assert_eq!(&parsed, &url);
        prop_assert_eq!(parsed.to_string(), text);
    }

    /// Any single-character change after the origin is rejected.
    #[test]
    fn url_single_character_changes_are_rejected(secret in any::<[u8; 32]>(), pw in any::<bool>(),
                                                 pos in any::<prop::sample::Index>(),
                                                 c in prop::char::range(' ', '~')) {
        let url = LinkUrl::new(ORIGIN, LinkSecret::from_bytes(secret), pw).expect("url");
        let text = url.to_string();
        let i = ORIGIN.len() + pos.index(text.len() - ORIGIN.len());
        prop_assume!(text.as_bytes()[i] != c as u8);
        let mut bad = text.into_bytes();
        bad[i] = c as u8;
        let bad = String::from_utf8(bad).expect("ascii");
        prop_assert!(LinkUrl::parse(&bad).is_err(), "{} accepted", bad);
    }

    /// Any single-bit change in a record is rejected.
    #[test]
    fn record_bit_flips_are_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (_, link) = read_link(&LinkOptions { expires_at: Some(NOW + 10), max_downloads: Some(5), ..LinkOptions::default() });
        let mut bad = link.record.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        prop_assert!(open_link(&link.url, &bad, None, NOW).is_err());
    }
}

#[test]
fn read_link_opens_with_the_node_key() {
    let (t, link) = read_link(&LinkOptions::default());
    assert!(!link.url.password_required());
    assert!(link.verifier_hash.is_none());
    let url = LinkUrl::parse(&link.url.to_string()).expect("parse");
    let opened = open_link(&url, &link.record, None, NOW).expect("open");
    assert_eq!(opened.node_id, t.node_id);
    assert_eq!(opened.node_kind, NodeKind::Folder);
    assert_eq!(opened.generation, 3);
    assert_eq!(opened.permission(), Permission::Read);
    assert_eq!(node_key(&opened), &t.node_key);
    // A password given for a link without one is not used.
    assert!(open_link(&url, &link.record, Some(b"x"), NOW).is_ok());
    let rec = LinkRecord::parse(&link.record).expect("parse");
    assert_eq!(rec.link_id, url.link_id());
    assert_eq!(rec.to_bytes(), link.record);
}

#[test]
fn wrong_secret_is_a_binding_error() {
    let (_, link) = read_link(&LinkOptions::default());
    let other = LinkUrl::new(ORIGIN, LinkSecret::from_bytes([1; 32]), false).expect("url");
    assert_eq!(
        err(open_link(&other, &link.record, None, NOW)).class(),
        "binding-mismatch"
    );
    // A server that relabels the record with the other link's id is caught by the seal.
    let relabelled = reencode(&link.record, |r| r.link_id = other.link_id());
    assert_eq!(
        err(open_link(&other, &relabelled, None, NOW)),
        Error::DecryptionFailed
    );
}

#[test]
fn tampered_public_fields_fail_decryption() {
    let (_, link) = read_link(&LinkOptions {
        expires_at: Some(NOW + 100),
        max_downloads: Some(3),
        ..LinkOptions::default()
    });
    let open = |rec: &[u8]| open_link(&link.url, rec, None, NOW);
    assert!(open(&link.record).is_ok());
    for (what, rec) in [
        (
            "extended expiry",
            reencode(&link.record, |r| r.expires_at = Some(NOW + 1_000_000)),
        ),
        (
            "removed expiry",
            reencode(&link.record, |r| r.expires_at = None),
        ),
        (
            "raised limit",
            reencode(&link.record, |r| r.max_downloads = Some(4)),
        ),
        (
            "removed limit",
            reencode(&link.record, |r| r.max_downloads = None),
        ),
        (
            "other node",
            reencode(&link.record, |r| r.node_id = NodeId::from_bytes([0; 16])),
        ),
    ] {
        assert_eq!(err(open(&rec)), Error::DecryptionFailed, "{what}");
    }
    // Structural faults.
    let mut trailing = link.record.clone();
    trailing.push(0);
    assert_eq!(err(open(&trailing)).class(), "trailing-bytes");
    let zero = reencode(&link.record, |r| r.max_downloads = Some(0));
    assert_eq!(err(open(&zero)).class(), "invalid-value");
    let upload = reencode(&link.record, |r| r.permission = Permission::UploadOnly);
    assert_eq!(err(open(&upload)).class(), "invalid-value");
    let mut wrong_type = link.record.clone();
    wrong_type[2] = 71;
    assert_eq!(err(open(&wrong_type)).class(), "wrong-type");
    assert_eq!(
        err(open(&vec![0x40; MAX_LINK_RECORD_LEN + 1])).class(),
        "malformed"
    );
}

#[test]
fn expiry_is_checked_against_now() {
    let (_, link) = read_link(&LinkOptions {
        expires_at: Some(NOW),
        ..LinkOptions::default()
    });
    assert!(open_link(&link.url, &link.record, None, NOW - 1).is_ok());
    assert_eq!(
        err(open_link(&link.url, &link.record, None, NOW)),
        Error::LinkExpired
    );
    assert_eq!(
        err(open_link(&link.url, &link.record, None, u64::MAX)),
        Error::LinkExpired
    );
}

#[test]
fn password_links() {
    // Argon2id runs in this test: create 1, right password 1, wrong password 1.
    let opts = LinkOptions {
        password: Some(NewLinkPassword {
            password: b"correct horse",
            params: Argon2Params::MIN,
        }),
        ..LinkOptions::default()
    };
    let (t, link) = read_link(&opts);
    assert!(link.url.password_required());
    let rec = LinkRecord::parse(&link.record).expect("parse");
    let pw = rec.password.clone().expect("password params");
    assert_eq!((pw.m_kib, pw.t, pw.p), (19 * 1024, 2, 1));
    let opened = open_link(&link.url, &link.record, Some(b"correct horse"), NOW).expect("open");
    assert_eq!(node_key(&opened), &t.node_key);
    assert_eq!(
        err(open_link(
            &link.url,
            &link.record,
            Some(b"correct horsf"),
            NOW
        )),
        Error::DecryptionFailed
    );
    assert_eq!(
        err(open_link(&link.url, &link.record, None, NOW)).class(),
        "invalid-argument"
    );

    // The verifier: from the owner entry's pw_key (no Argon2id).
    let pw_key = SecretKey::from_bytes(
        link.owner_entry
            .password
            .as_ref()
            .expect("pw")
            .password_key
            .0,
    );
    let v = password_verifier(link.url.secret(), &pw_key);
    assert!(check_verifier(&link.verifier_hash.expect("hash"), &v[..]));
    let opened = open_link_with_key(&link.url, &link.record, Some(&pw_key), NOW).expect("open");
    assert_eq!(node_key(&opened), &t.node_key);
    assert_eq!(
        err(open_link_with_key(&link.url, &link.record, None, NOW)).class(),
        "invalid-argument"
    );

    // The URL flag and the record must agree.
    let no_flag = LinkUrl::new(ORIGIN, link.url.secret().clone(), false).expect("url");
    assert_eq!(
        err(open_link(&no_flag, &link.record, Some(b"x"), NOW)).class(),
        "binding-mismatch"
    );
    // A server that strips the password is caught by the flag, and by the seal.
    let stripped = reencode(&link.record, |r| r.password = None);
    assert_eq!(
        err(open_link(&link.url, &stripped, None, NOW)).class(),
        "binding-mismatch"
    );
    assert_eq!(
        err(open_link(&no_flag, &stripped, None, NOW)),
        Error::DecryptionFailed
    );

    // Out-of-range parameters: rejected before any work (these would take hours or TiBs).
    for (m, tt, p) in [
        (u64::from(u32::MAX) + 1, 2, 1),
        (1024 * 1024 * 1024, 2, 1),
        (19 * 1024, 1_000_000, 1),
        (19 * 1024, 2, 64),
        (1024, 2, 1),
        (19 * 1024, 1, 1),
        (u64::MAX, u64::MAX, u64::MAX),
    ] {
        let huge = reencode(&link.record, |r| {
            let pw = r.password.as_mut().expect("pw");
            pw.m_kib = m;
            pw.t = tt;
            pw.p = p;
        });
        assert_eq!(
            err(open_link(&link.url, &huge, Some(b"x"), NOW)).class(),
            "limit-exceeded"
        );
        assert_eq!(
            err(open_link_with_key(&link.url, &huge, Some(&pw_key), NOW)).class(),
            "limit-exceeded"
        );
    }
    assert!(LinkRecord::validate_for_storage(&link.record, link.url.link_id()).is_ok());
    assert_eq!(
        err(LinkRecord::validate_for_storage(
            &link.record,
            LinkId::from_bytes([0; 16])
        ))
        .class(),
        "binding-mismatch"
    );
    let huge = reencode(&link.record, |r| {
        r.password.as_mut().expect("pw").m_kib = 1 << 40
    });
    assert_eq!(
        err(LinkRecord::validate_for_storage(&huge, link.url.link_id())).class(),
        "limit-exceeded"
    );
    let bad_params = NewLinkPassword {
        password: b"x",
        params: Argon2Params {
            m_kib: 8,
            t: 1,
            p: 1,
        },
    };
    let opts = LinkOptions {
        password: Some(bad_params),
        ..LinkOptions::default()
    };
    assert_eq!(
        err(create_link(&mut rng(0), ORIGIN, &t, &opts, NOW)).class(),
        "limit-exceeded"
    );

    // Rotation keeps the password without running Argon2id.
    let rotated = rotate_link(&mut rng(9), &link.owner_entry, ORIGIN, &t, NOW + 1).expect("rotate");
    assert!(rotated.url.password_required());
    assert_ne!(rotated.url.link_id(), link.url.link_id());
    assert_ne!(rotated.verifier_hash, link.verifier_hash);
    let opened =
        open_link_with_key(&rotated.url, &rotated.record, Some(&pw_key), NOW).expect("open");
    assert_eq!(node_key(&opened), &t.node_key);
}

#[test]
fn create_rejects_bad_arguments() {
    let file = target(NodeKind::File, 0, 4);
    let up = LinkOptions {
        upload_only: true,
        ..LinkOptions::default()
    };
    assert_eq!(
        err(create_link(&mut rng(0), ORIGIN, &file, &up, NOW)).class(),
        "invalid-argument"
    );
    let zero = LinkOptions {
        max_downloads: Some(0),
        ..LinkOptions::default()
    };
    assert_eq!(
        err(create_link(&mut rng(0), ORIGIN, &file, &zero, NOW)).class(),
        "invalid-argument"
    );
    for origin in ["https://x/", "ftp://x", "https://x?y", "https://x#", ""] {
        assert_eq!(
            err(create_link(
                &mut rng(0),
                origin,
                &file,
                &LinkOptions::default(),
                NOW
            ))
            .class(),
            "invalid-argument"
        );
    }
    // A file link opens to the file's node key.
    let link = create_link(&mut rng(0), ORIGIN, &file, &LinkOptions::default(), NOW).expect("link");
    let opened = open_link(&link.url, &link.record, None, NOW).expect("open");
    assert_eq!(opened.node_kind, NodeKind::File);
    assert_eq!(node_key(&opened), &file.node_key);
}

#[test]
fn upload_only_links_and_drops() {
    let folder = target(NodeKind::Folder, 5, 6);
    let link = create_link(
        &mut rng(7),
        ORIGIN,
        &folder,
        &LinkOptions {
            upload_only: true,
            ..LinkOptions::default()
        },
        NOW,
    )
    .expect("create");
    let opened = open_link(&link.url, &link.record, None, NOW).expect("open");
    assert_eq!(opened.permission(), Permission::UploadOnly);
    let LinkAccess::UploadOnly { drop_public } = &opened.access else {
        panic!("read key in an upload-only link");
    };
    // The capability plaintext holds no read key.
    let rec = LinkRecord::parse(&link.record).expect("parse");
    let cap_key = capability_key(link.url.secret(), None);
    let pt = seal::open(
        &cap_key,
        LABEL_CAPABILITY,
        &rec.capability_aad(),
        &rec.capability,
    )
    .expect("open capability");
    let cap: LinkCapability = crate::encoding::decode(&pt).expect("decode");
    assert!(cap.read_key.is_none());
    assert_eq!(cap.drop_public, Some(Bytes(drop_public.to_bytes())));
    assert!(!pt.windows(32).any(|w| w == folder.node_key.expose()));

    let upload = create_drop(&mut rng(8), &opened, b"metadata bytes").expect("drop");
    let drop_secret = open_drop_secret(&rec, &folder.node_key).expect("drop secret");
    assert_eq!(drop_secret.public_key(), *drop_public);
    let got =
        open_drop(&drop_secret, rec.link_id, rec.node_id, &upload.envelope).expect("open drop");
    assert_eq!(got.node_id, upload.node_id);
    assert_eq!(got.node_key, upload.node_key);
    assert_eq!(got.metadata.as_slice(), b"metadata bytes");
    // The content key: the uploader's and the filer's derivations agree, bound to the node id and
    // the node key, and distinct from the node key itself.
    let content_key = drop_file_key(&upload.node_key, upload.node_id);
    let ct = crate::content::encrypt(&content_key, b"dropped bytes", &mut rng(9));
    let filed_key = drop_file_key(&got.node_key, got.node_id);
    assert_eq!(
        crate::content::decrypt(&filed_key, &ct).expect("content"),
        b"dropped bytes"
    );
    assert_ne!(&filed_key, &got.node_key);
    assert_ne!(filed_key, drop_file_key(&got.node_key, rec.node_id));
    assert_ne!(
        filed_key,
        drop_file_key(&SecretKey::from_bytes([7; 32]), got.node_id)
    );
    // Server side: the envelope is well-formed and names this link and folder.
    let env = DropEnvelope::parse_for_link(&upload.envelope, rec.link_id, rec.node_id)
        .expect("server parse");
    assert_eq!(env.node_id, upload.node_id);
    assert_eq!(
        err(DropEnvelope::parse_for_link(
            &upload.envelope,
            rec.link_id,
            upload.node_id
        ))
        .class(),
        "binding-mismatch"
    );
    let mut trailing = upload.envelope.clone();
    trailing.push(0);
    assert_eq!(
        err(DropEnvelope::parse_for_link(
            &trailing,
            rec.link_id,
            rec.node_id
        ))
        .class(),
        "trailing-bytes"
    );

    // Wrong folder key, wrong binding, every single-byte change.
    assert_eq!(
        err(open_drop_secret(&rec, &SecretKey::from_bytes([0; 32]))),
        Error::DecryptionFailed
    );
    assert_eq!(
        err(open_drop(
            &drop_secret,
            LinkId::from_bytes([0; 16]),
            rec.node_id,
            &upload.envelope
        ))
        .class(),
        "binding-mismatch"
    );
    assert_eq!(
        err(open_drop(
            &drop_secret,
            rec.link_id,
            NodeId::from_bytes([0; 16]),
            &upload.envelope
        ))
        .class(),
        "binding-mismatch"
    );
    assert_eq!(
        err(open_drop(
            &AgreementSecret::from_bytes([3; 32]),
            rec.link_id,
            rec.node_id,
            &upload.envelope
        )),
        Error::DecryptionFailed
    );
    for i in 0..upload.envelope.len() {
        let mut bad = upload.envelope.clone();
        bad[i] ^= 0x01;
        assert!(
            open_drop(&drop_secret, rec.link_id, rec.node_id, &bad).is_err(),
            "byte {i}"
        );
    }
    let mut trailing = upload.envelope.clone();
    trailing.push(0);
    assert_eq!(
        err(open_drop(&drop_secret, rec.link_id, rec.node_id, &trailing)).class(),
        "trailing-bytes"
    );
    // A read link cannot drop; metadata is bounded.
    let (_, read) = read_link(&LinkOptions::default());
    let read_opened = open_link(&read.url, &read.record, None, NOW).expect("open");
    assert_eq!(
        err(create_drop(&mut rng(0), &read_opened, b"")).class(),
        "invalid-argument"
    );
    let big = vec![0u8; MAX_DROP_METADATA_LEN + 1];
    assert_eq!(
        err(create_drop(&mut rng(0), &opened, &big)).class(),
        "limit-exceeded"
    );
    assert!(create_drop(&mut rng(0), &opened, &big[1..]).is_ok());
}

#[test]
fn reseal_rotate_and_owner_entries() {
    let folder = target(NodeKind::Folder, 1, 10);
    let up = create_link(
        &mut rng(11),
        ORIGIN,
        &folder,
        &LinkOptions {
            upload_only: true,
            expires_at: Some(NOW + 50),
            ..LinkOptions::default()
        },
        NOW,
    )
    .expect("create");
    let owner_key = SecretKey::from_bytes([42; 32]);
    let sealed = seal_owner_entry(&owner_key, &up.owner_entry, &mut rng(12));
    let entry = open_owner_entry(&owner_key, up.url.link_id(), &sealed).expect("entry");
    assert_eq!(entry, up.owner_entry);
    assert_eq!(entry.created_at, NOW);
    assert!(!format!("{entry:?}").contains(&format!("{:?}", entry.secret)));
    assert_eq!(
        err(open_owner_entry(
            &owner_key,
            LinkId::from_bytes([0; 16]),
            &sealed
        )),
        Error::DecryptionFailed
    );
    assert_eq!(
        err(open_owner_entry(
            &SecretKey::from_bytes([0; 32]),
            up.url.link_id(),
            &sealed
        )),
        Error::DecryptionFailed
    );

    // Member removal: generation 2 with a new folder key. The same URL now yields generation 2.
    let gen2 = LinkTarget {
        generation: 2,
        node_key: SecretKey::from_bytes([77; 32]),
        ..folder.clone()
    };
    let resealed = reseal_link(&mut rng(13), &entry, &gen2).expect("reseal");
    let opened = open_link(&up.url, &resealed.record, None, NOW).expect("open");
    assert_eq!(opened.generation, 2);
    let rec = LinkRecord::parse(&resealed.record).expect("parse");
    assert_eq!(rec.expires_at, Some(NOW + 50));
    assert_eq!(rec.drop.as_ref().map(|d| d.generation), Some(2));
    assert!(open_drop_secret(&rec, &gen2.node_key).is_ok());
    assert_eq!(
        err(open_drop_secret(&rec, &folder.node_key)),
        Error::DecryptionFailed
    );
    // The server's re-seal check (§11.11.7): a re-sealed record is a re-seal of the original,
    // not the other way round (the drop generation would go down), and a changed policy is not.
    let original = LinkRecord::parse(&up.record).expect("parse original");
    assert!(rec.is_reseal_of(&original));
    assert!(original.is_reseal_of(&original));
    assert!(!original.is_reseal_of(&rec));
    let mut changed = rec.clone();
    changed.expires_at = Some(NOW + 51);
    assert!(!changed.is_reseal_of(&original));
    let mut changed = rec.clone();
    changed.max_downloads = Some(3);
    assert!(!changed.is_reseal_of(&original));
    let mut changed = rec.clone();
    changed.node_id = NodeId::from_bytes([9; 16]);
    assert!(!changed.is_reseal_of(&original));
    let mut changed = rec.clone();
    changed.link_id = LinkId::from_bytes([9; 16]);
    assert!(!changed.is_reseal_of(&original));
    let mut changed = rec.clone();
    changed.drop = None;
    assert!(!changed.is_reseal_of(&original));
    let other_node = target(NodeKind::Folder, 2, 99);
    assert_eq!(
        err(reseal_link(&mut rng(0), &entry, &other_node)).class(),
        "invalid-argument"
    );

    // Rotation: new secret, new id; the old URL does not match the new record.
    let rotated = rotate_link(&mut rng(14), &entry, ORIGIN, &gen2, NOW + 5).expect("rotate");
    assert_ne!(rotated.url.link_id(), up.url.link_id());
    assert_eq!(rotated.owner_entry.created_at, NOW + 5);
    assert_ne!(rotated.owner_entry.drop_secret, entry.drop_secret);
    assert_eq!(
        err(open_link(&up.url, &rotated.record, None, NOW)).class(),
        "binding-mismatch"
    );
    let opened = open_link(&rotated.url, &rotated.record, None, NOW).expect("open");
    assert_eq!(opened.generation, 2);
    assert_eq!(opened.expires_at, Some(NOW + 50));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any single-bit change in a sealed owner entry is rejected.
    #[test]
    fn owner_entry_bit_flips_are_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (_, link) = read_link(&LinkOptions { max_downloads: Some(2), ..LinkOptions::default() });
        let key = SecretKey::from_bytes([5; 32]);
        let sealed = seal_owner_entry(&key, &link.owner_entry, &mut rng(3));
        prop_assert!(open_owner_entry(&key, link.url.link_id(), &sealed).is_ok());
        let mut bad = sealed.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        prop_assert_eq!(open_owner_entry(&key, link.url.link_id(), &bad).map(|_| ()), Err(Error::DecryptionFailed));
    }

    /// Re-sealing for any generation keeps the URL working and carries that generation's key.
    #[test]
    fn reseal_carries_any_generation(generation in any::<u64>(), key in any::<[u8; 32]>()) {
        let (t, link) = read_link(&LinkOptions::default());
        let t2 = LinkTarget { generation, node_key: SecretKey::from_bytes(key), ..t };
        let resealed = reseal_link(&mut rng(4), &link.owner_entry, &t2).expect("reseal");
        let opened = open_link(&link.url, &resealed.record, None, NOW).expect("open");
        prop_assert_eq!(opened.generation, generation);
        prop_assert_eq!(node_key(&opened), &t2.node_key);
    }
}
