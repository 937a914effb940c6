//! A lying server for link holders: a proxy in front of a real `cofferd` (the link URL's origin
//! points at it) that alters the link record's capability, the owner-authenticated expiry, the
//! node record, or the content a link serves. `coffer open` must fail with exit 5 (integrity)
//! and write nothing; through the honest path the same link opens.

mod support;

use axum::http::StatusCode;
use coffer_core::api::{Body as _, LinkResolved};
use coffer_core::encoding::ByteBuf;
use support::proxy::{Liar, Proxy, Relayed};
use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    None,
    /// Flip a bit in the sealed capability of the link record.
    Capability,
    /// Move the record's expiry (a plaintext field the capability authenticates).
    Expiry,
    /// Flip a bit in the node record's signature.
    NodeSignature,
    /// Flip a bit in the middle of the content.
    Content,
}

/// Lies in link resolutions and link content.
struct LinkLiar;

impl Liar for LinkLiar {
    type Lie = Lie;

    fn after(&self, lie: Lie, req: &Relayed, status: StatusCode, bytes: &mut Vec<u8>) {
        let path = &req.path;
        let resolve = path.starts_with("/v1/l/") && path.matches('/').count() == 3;
        if resolve && status == 200 {
            let mut r = LinkResolved::from_bytes(bytes).expect("resolved");
            match lie {
                Lie::Capability | Lie::Expiry => {
                    if let Some(rec) = r.link_record.take() {
                        let mut rec: coffer_core::link::LinkRecord =
                            coffer_core::encoding::decode(&rec).expect("record");
                        if lie == Lie::Capability {
                            let i = rec.capability.len() / 2;
                            rec.capability[i] ^= 0x01;
                        } else {
                            rec.expires_at = Some(u64::MAX / 2);
                        }
                        r.link_record = Some(ByteBuf::from(rec.to_bytes()));
                    }
                }
                Lie::NodeSignature => {
                    if let Some(n) = r.node.take() {
                        let mut n = n.into_vec();
                        let last = n.len() - 1;
                        n[last] ^= 0x01;
                        r.node = Some(ByteBuf::from(n));
                    }
                }
                _ => {}
            }
            *bytes = r.to_bytes();
        }
        if lie == Lie::Content && path.ends_with("/content") && status == 200 {
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
        }
    }
}

#[test]
fn a_lying_server_cannot_make_a_link_show_wrong_bytes() {
    let server = Server::start();
    let a = server.register(&unique("alice"));
    let local = tempfile::tempdir().expect("dir");
    let data = random_bytes(150_000);
    let file = local.path().join("data.bin");
    std::fs::write(&file, &data).expect("write");
    a.ok(&["put", file.to_str().expect("path")]);
    let url = a.ok(&["link", "create", "/data.bin"]).trim().to_owned();
    let proxy = Proxy::start(&server.url, LinkLiar, Lie::None);
    // The same link, reached through the proxy.
    let lying_url = url.replacen(&server.url, &proxy.url, 1);
    let stranger = server.user("stranger");
    let out = local.path().join("out.bin");
    let o = out.to_str().expect("path");
    for lie in [
        Lie::Capability,
        Lie::Expiry,
        Lie::NodeSignature,
        Lie::Content,
    ] {
        proxy.set(lie);
        let err = stranger.fails(&["open", &lying_url, "-o", o], 5);
        assert!(err.contains("integrity"), "{lie:?}: {err}");
        assert!(!out.exists(), "{lie:?}: something was written");
    }
    proxy.set(Lie::None);
    stranger.ok(&["open", &lying_url, "-o", o]);
    assert_eq!(std::fs::read(&out).expect("read"), data);
}
