//! `link_url.json`: parsing and formatting link URLs (spec §10.3).

use serde_json::{json, Value};

use coffer_core::encoding::b64url_encode;
use coffer_core::link::{LinkSecret, LinkUrl, MAX_ORIGIN_LEN};

use super::expect;
use crate::format::{Test, TestGroup, VectorFile};
use crate::rng::RecordingRng;

/// Builds `link_url.json`.
pub fn generate() -> VectorFile {
    let mut f = VectorFile::new(
        "coffer-v1-link-url",
        "link_url",
        &[
            "Link URLs (spec §10.3): <origin>/l/<link id>#1.<secret>[.p].",
            "LinkUrlParse tests: parse `url`. Valid tests yield `origin`, `linkId` (hex), `secret` (hex) and `passwordRequired`, and formatting them again yields `url` exactly. Invalid tests fail with `failure`.",
            "The link id is HKDF-SHA-256(ikm = secret, salt = \"\", info = \"coffer/v1/link/id\" || 0x00, L = 16); a URL whose path id is not the one derived from its secret is rejected (binding-mismatch).",
        ],
    );
    f.note("Valid", "BASIC", "A canonical link URL.");
    f.note(
        "PasswordFlag",
        "BASIC",
        "The `.p` flag: the link needs a password.",
    );
    f.note(
        "OriginForms",
        "EDGE_CASE",
        "Origins with http, a port, a path prefix or an IP literal.",
    );
    f.note(
        "MissingPart",
        "MALFORMED",
        "A required part of the URL is missing or empty.",
    );
    f.note(
        "UnknownVersion",
        "MALFORMED",
        "The fragment's version is a number other than 1.",
    );
    f.note(
        "NonCanonicalBase64",
        "MALFORMED",
        "Base64url that is padded, of the wrong length, with non-zero trailing bits or outside the URL-safe alphabet.",
    );
    f.note(
        "WrongLinkId",
        "WRONG_KEY",
        "The path's link id is not derived from the fragment's secret.",
    );
    f.note(
        "BadFlag",
        "MALFORMED",
        "An unknown, empty, repeated or upper-case fragment component.",
    );
    f.note(
        "BadPath",
        "MALFORMED",
        "A path other than `/l/<22 characters>`, a query string, or extra characters.",
    );
    f.note(
        "BadOrigin",
        "MALFORMED",
        "An origin with a wrong or upper-case scheme, no host, a trailing slash, a forbidden character or over 1024 bytes.",
    );

    let mut rng = RecordingRng::new("coffer/v1/vectors/link_url");
    let g = f.group("LinkUrlParse", json!({}));
    let mut secrets = Vec::new();
    for (origin, pw, flags) in [
        ("https://coffer.example", false, &["Valid"][..]),
        (
            "https://coffer.example",
            true,
            &["Valid", "PasswordFlag"][..],
        ),
        (
            "http://localhost:8080",
            false,
            &["Valid", "OriginForms"][..],
        ),
        (
            "https://files.example.org/coffer/v1",
            true,
            &["Valid", "OriginForms", "PasswordFlag"][..],
        ),
        (
            "https://[2001:db8::1]:443",
            false,
            &["Valid", "OriginForms"][..],
        ),
        ("http://192.0.2.7", false, &["Valid", "OriginForms"][..]),
    ] {
        let secret = LinkSecret::from_bytes(rng.array());
        let url = LinkUrl::new(origin, secret.clone(), pw).expect("valid origin");
        g.valid(
            &format!("{origin}, password flag {pw}"),
            flags,
            json!({ "url": url.to_string(), "origin": origin,
                    "linkId": hex::encode(secret.link_id().as_bytes()),
                    "secret": hex::encode(secret.expose()), "passwordRequired": pw }),
        );
        secrets.push(secret);
    }
    // Edge secrets: all-zero and all-ones bytes.
    for b in [0u8, 0xff] {
        let secret = LinkSecret::from_bytes([b; 32]);
        let url = LinkUrl::new("https://coffer.example", secret.clone(), false).expect("url");
        g.valid(
            &format!("secret of 32 bytes 0x{b:02x}"),
            &["Valid"],
            json!({ "url": url.to_string(), "origin": "https://coffer.example",
                    "linkId": hex::encode(secret.link_id().as_bytes()),
                    "secret": hex::encode(secret.expose()), "passwordRequired": false }),
        );
    }

    let url = LinkUrl::new("https://coffer.example", secrets[0].clone(), false).expect("url");
    let good = url.to_string();
    let (before, frag) = good.split_once('#').expect("fragment");
    let (origin, id) = before.split_once("/l/").expect("path");
    let secret = frag.strip_prefix("1.").expect("version");
    let other = b64url_encode(secrets[1].expose());
    let mut flipped = secret.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    // The last of 43 characters encodes 4 bits followed by 2 zero bits; set one of those.
    let last = secret.as_bytes()[42];
    let idx = b64_index(last);
    let noncanon = format!("{}{}", &secret[..42], b64_char(idx | 1));
    let mut id_noncanon = id.to_owned();
    // The last of 22 characters (16 bytes) encodes 2 bits followed by 4 zero bits.
    let id_last = b64_index(id.as_bytes()[21]);
    id_noncanon.replace_range(21.., &b64_char(id_last | 1).to_string());
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            before.to_owned(),
            "no fragment",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#"),
            "empty fragment",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#1"),
            "version only",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#1."),
            "empty secret",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#.{secret}"),
            "empty version",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#{secret}"),
            "no version component",
            "MissingPart",
            "invalid-text",
        ),
        (
            format!("{before}#2.{secret}"),
            "version 2",
            "UnknownVersion",
            "unknown-version",
        ),
        (
            format!("{before}#0.{secret}"),
            "version 0",
            "UnknownVersion",
            "unknown-version",
        ),
        (
            format!("{before}#10.{secret}"),
            "version 10",
            "UnknownVersion",
            "unknown-version",
        ),
        (
            format!("{before}#01.{secret}"),
            "version with a leading zero",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#v1.{secret}"),
            "non-numeric version",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}="),
            "padded secret",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}", &secret[..42]),
            "secret one character short",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}A"),
            "secret one character long",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{noncanon}"),
            "non-zero trailing bits in the secret",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}+{}", &secret[..20], &secret[21..]),
            "'+' (standard alphabet) in the secret",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}/{}", &secret[..20], &secret[21..]),
            "'/' (standard alphabet) in the secret",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{before}#1.{}%41{}", &secret[..20], &secret[21..]),
            "percent-encoded character in the secret",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}=#1.{secret}"),
            "padded link id",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id_noncanon}#1.{secret}"),
            "non-zero trailing bits in the link id",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{}#1.{secret}", &id[..21]),
            "link id one character short",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}A#1.{secret}"),
            "link id one character long",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{before}#1.{flipped}"),
            "secret changed, path id unchanged",
            "WrongLinkId",
            "binding-mismatch",
        ),
        (
            format!("{origin}/l/{id}#1.{other}"),
            "secret of another link",
            "WrongLinkId",
            "binding-mismatch",
        ),
        (
            format!("{before}#1.{secret}.P"),
            "upper-case password flag",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}.x"),
            "unknown flag",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}."),
            "empty flag",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}.p.p"),
            "repeated flag",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}.p."),
            "empty component after the flag",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}#"),
            "second '#'",
            "BadFlag",
            "invalid-text",
        ),
        (
            format!("{before}#1.{secret}&p"),
            "query-like fragment",
            "NonCanonicalBase64",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}/#1.{secret}"),
            "trailing slash after the link id",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}/l/{id}?x=1#1.{secret}"),
            "query string",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}/L/{id}#1.{secret}"),
            "upper-case path segment",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}/x/{id}#1.{secret}"),
            "wrong path segment",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}/l{id}#1.{secret}"),
            "missing slash",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("{origin}//l/{id}#1.{secret}"),
            "origin with a trailing slash",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("ftp://coffer.example/l/{id}#1.{secret}"),
            "ftp scheme",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("HTTPS://coffer.example/l/{id}#1.{secret}"),
            "upper-case scheme",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("https:/coffer.example/l/{id}#1.{secret}"),
            "one slash after the scheme",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("https:///l/{id}#1.{secret}"),
            "empty host",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("https://co ffer.example/l/{id}#1.{secret}"),
            "space in the origin",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("https://coffer.exämple/l/{id}#1.{secret}"),
            "non-ASCII origin",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("coffer.example/l/{id}#1.{secret}"),
            "no scheme",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("/l/{id}#1.{secret}"),
            "no origin",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!(" {good}"),
            "leading space",
            "BadOrigin",
            "invalid-text",
        ),
        (
            format!("{good}\n"),
            "trailing newline",
            "BadPath",
            "invalid-text",
        ),
        (
            format!("https://{}/l/{id}#1.{secret}", "a".repeat(MAX_ORIGIN_LEN)),
            "origin over 1024 bytes",
            "BadOrigin",
            "invalid-text",
        ),
        (String::new(), "empty string", "MissingPart", "invalid-text"),
    ];
    for (bad, comment, flag, class) in cases {
        g.invalid(comment, &[flag], class, json!({ "url": bad }));
    }
    f.finish()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_index(c: u8) -> usize {
    ALPHABET.iter().position(|&a| a == c).unwrap_or(0)
}

fn b64_char(i: usize) -> char {
    char::from(ALPHABET[i % 64])
}

/// Checks one test.
pub fn verify_test(group: &TestGroup, test: &Test) -> anyhow::Result<()> {
    anyhow::ensure!(
        group.kind == "LinkUrlParse",
        "unknown group type {}",
        group.kind
    );
    let text = test.str("url")?;
    expect(test, LinkUrl::parse(text), |url| {
        anyhow::ensure!(url.origin() == test.str("origin")?, "origin differs");
        anyhow::ensure!(
            url.link_id().as_bytes().as_slice() == test.hex("linkId")?.as_slice(),
            "link id differs"
        );
        anyhow::ensure!(
            url.secret().expose().as_slice() == test.hex("secret")?.as_slice(),
            "secret differs"
        );
        anyhow::ensure!(
            Some(url.password_required())
                == test.fields.get("passwordRequired").and_then(Value::as_bool),
            "password flag differs"
        );
        anyhow::ensure!(url.to_string() == text, "formatting differs");
        Ok(())
    })
}
