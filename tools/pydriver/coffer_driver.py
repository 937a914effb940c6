#!/usr/bin/env python3
"""Coffer v1 conformance driver (spec/conformance.md §C.2) for the link-opener profile (§C.5).

Written from spec/*.md, spec/coffer.cddl and test-vectors/*.json only.  Reads one JSON request per
line on stdin, answers one JSON line on stdout.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cbor_strict as C  # noqa: E402
import content  # noqa: E402
import links  # noqa: E402
import primitives as P  # noqa: E402
from errors import CofferError, DriverError  # noqa: E402


def hx(b):
    return None if b is None else bytes(b).hex()


def need(inp, name):
    if inp.get(name) is None:
        raise DriverError(f"missing input {name!r}")
    return inp[name]


def b(inp, name):
    return bytes.fromhex(need(inp, name))


def ob(inp, name):
    v = inp.get(name)
    return None if v is None else bytes.fromhex(v)


def num(inp, name):
    return int(need(inp, name))


def onum(inp, name):
    v = inp.get(name)
    return None if v is None else int(v)


class Rng:
    """Context manager that replays `randomness` and checks it was consumed exactly."""

    def __init__(self, inp):
        self.rng = P.ReplayRng(b(inp, "randomness"))

    def __enter__(self):
        return self.rng

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.rng.finish()
        return False


def msg_rule(n, start=0):
    return bytes(i % 251 for i in range(start, n))


# ---------------------------------------------------------------------------------------------
# §1 encoding

def op_base64url(params, inp):
    text = need(inp, "text")
    out = P.b64url_decode(text)
    if P.b64url_encode(out) != text:
        raise DriverError("re-encoding does not give the text back")
    return {"bytes": out.hex()}


TEST_SHAPE = C.Struct([C.UInt(), C.Bstr(4), C.Opt(C.Tstr()), C.ArrayOf(C.UInt())], type_code=255)


def op_cbor_decode(params, inp):
    a, bb, c, d = C.decode(b(inp, "encoded"), TEST_SHAPE)
    return {"decoded": {"a": str(a), "b": bb.hex(), "c": c, "d": d}}


class Nest:
    def check(self, v):
        if not isinstance(v, list):
            raise CofferError("malformed", "expected an array")
        return 1 + max((self.check(e) for e in v), default=0)


def op_cbor_nest(params, inp):
    return {"depth": C.decode(b(inp, "encoded"), Nest())}


def op_cbor_bytes(params, inp):
    return {"bytes": C.decode(b(inp, "encoded"), C.Bstr()).hex()}


# ---------------------------------------------------------------------------------------------
# §2 primitives

def op_hkdf(params, inp):
    label, ctx = need(inp, "label"), b(inp, "context")
    return {"info": P.hkdf_info(label, ctx).hex(),
            "okm": P.hkdf(b(inp, "ikm"), b(inp, "salt"), label, ctx, num(inp, "length")).hex()}


def op_ed_sign(params, inp):
    seed = b(inp, "seed")
    sig, m = P.ed25519_sign(seed, need(inp, "label"), b(inp, "msg"))
    return {"publicKey": P.ed25519_public(seed).hex(), "sig": sig.hex(), "signedMessage": m.hex()}


def op_ed_verify(params, inp):
    P.ed25519_verify(b(inp, "publicKey"), need(inp, "label"), b(inp, "msg"), b(inp, "sig"))
    return {}


def op_x25519_pub(params, inp):
    P.x25519_public_check(b(inp, "publicKey"))
    out = {}
    if inp.get("secretKey") is not None:
        out["publicKeyOfSecret"] = P.x25519_public_of(b(inp, "secretKey")).hex()
    return out


def op_hpke_seal(params, inp):
    info = bytes.fromhex(need(params, "info"))
    with Rng(inp) as rng:
        enc, ct = P.hpke_seal(b(inp, "publicKey"), info, b(inp, "aad"), b(inp, "msg"), rng)
    return {"enc": enc.hex(), "ct": ct.hex()}


def op_hpke_open(params, inp):
    return {"msg": P.hpke_open(b(inp, "secretKey"), b(inp, "enc"), b(inp, "info"), b(inp, "aad"),
                               b(inp, "ct")).hex()}


def _params(inp):
    p = need(inp, "params")
    return int(p["mKib"]), int(p["t"]), int(p["p"])


def op_argon2_check(params, inp):
    P.argon2_check(*_params(inp))
    return {}


def op_argon2_derive(params, inp):
    m, t, p = _params(inp)
    return {"key": P.argon2id(b(inp, "password"), b(inp, "salt"), m, t, p).hex()}


# ---------------------------------------------------------------------------------------------
# §3 seal

def op_seal_encrypt(params, inp):
    with Rng(inp) as rng:
        return {"sealed": P.seal(b(inp, "key"), need(params, "label"), b(inp, "aad"), b(inp, "msg"), rng).hex()}


def op_seal_open(params, inp):
    return {"msg": P.seal_open(b(inp, "key"), need(inp, "label"), b(inp, "aad"), b(inp, "sealed")).hex()}


# ---------------------------------------------------------------------------------------------
# §4 content

def op_content_encrypt(params, inp):
    with Rng(inp) as rng:
        pk, cm, hd, ct = content.encrypt(b(inp, "key"), msg_rule(num(inp, "msgLen")), rng)
    return {"payloadKey": pk.hex(), "commitment": cm.hex(), "header": hd.hex(), "ciphertext": ct.hex()}


def op_content_decrypt(params, inp):
    return {"msg": content.decrypt(b(inp, "key"), b(inp, "ciphertext")).hex()}


def op_content_range(params, inp):
    rs, re_, msg = content.range_decrypt(b(inp, "key"), b(inp, "header"), num(inp, "ciphertextLen"),
                                         num(inp, "rangeStart"), num(inp, "rangeEnd"), b(inp, "chunks"))
    return {"ctRangeStart": rs, "ctRangeEnd": re_, "msg": msg.hex()}


# ---------------------------------------------------------------------------------------------
# §5 metadata

def op_metadata_seal(params, inp):
    fields = (need(inp, "name"), num(inp, "size"), num(inp, "mtime"), inp.get("mediaType"), ob(inp, "contentDigest"))
    with Rng(inp) as rng:
        key, aad, pt, sealed = content.metadata_seal(b(inp, "nodeKey"), b(inp, "nodeId"), num(inp, "revision"),
                                                     fields, rng)
    return {"metadataKey": key.hex(), "aad": aad.hex(), "plaintext": pt.hex(), "sealed": sealed.hex()}


def op_metadata_open(params, inp):
    (name, size, mtime, mt, dg), pt = content.metadata_open(b(inp, "nodeKey"), b(inp, "nodeId"),
                                                            num(inp, "revision"), b(inp, "sealed"))
    return {"name": name, "size": size, "mtime": mtime, "mediaType": mt, "contentDigest": hx(dg),
            "plaintext": pt.hex()}


# ---------------------------------------------------------------------------------------------
# §10 links

def op_link_url_parse(params, inp):
    url = need(inp, "url")
    origin, secret, link_id, flag = links.parse_url(url)
    if links.format_url(origin, link_id, secret, flag) != url:
        raise DriverError("formatting the parsed URL does not give it back")
    return {"origin": origin, "linkId": link_id.hex(), "secret": secret.hex(), "passwordRequired": flag}


def _hexmap(d, keys):
    return {k: (hx(d[k]) if isinstance(d[k], (bytes, bytearray)) or d[k] is None else d[k]) for k in keys}


def op_link_create(params, inp):
    argon2 = inp.get("argon2")
    a = (int(argon2["mKib"]), int(argon2["t"]), int(argon2["p"])) if argon2 is not None else None
    password = ob(inp, "password")
    if password is not None and a is None:
        raise DriverError("password without argon2 parameters")
    with Rng(inp) as rng:
        out = links.create_link(rng, need(inp, "origin"), b(inp, "nodeId"), num(inp, "nodeKind"),
                                num(inp, "generation"), b(inp, "nodeKey"), password, a,
                                onum(inp, "expiresAt"), onum(inp, "maxDownloads"), bool(inp.get("uploadOnly")),
                                num(inp, "now"))
    return _hexmap(out, ["url", "record", "ownerEntry", "verifierHash", "secret", "linkId", "linkKey", "pwKey",
                         "salt", "capabilityKey", "verifier", "capability", "dropSecret", "dropPublic"])


def _open(inp):
    return links.open_link(need(inp, "url"), b(inp, "record"), num(inp, "now"), ob(inp, "password"), ob(inp, "pwKey"))


def op_link_open(params, inp):
    out = _open(inp)
    return _hexmap(out, ["nodeId", "nodeKind", "generation", "permission", "expiresAt", "maxDownloads",
                         "nodeKey", "dropPublic"])


def op_drop_create(params, inp):
    opened = _open(inp)
    with Rng(inp) as rng:
        node_id, node_key, env = links.create_drop(rng, opened, b(inp, "metadata"))
    return {"nodeId": node_id.hex(), "nodeKey": node_key.hex(),
            "fileKey": links.drop_file_key(node_key, node_id).hex(), "envelope": env.hex()}


def op_drop_open(params, inp):
    link_id, folder_id = b(inp, "linkId"), b(inp, "folderId")
    # §10.9.3: step 1 decodes the envelope and step 2 checks its binding before step 3 opens
    # the drop secret (§10.9.1), then HPKE and the metadata seal.
    env = links.decode_envelope(b(inp, "envelope"), link_id, folder_id)
    ds = links.open_drop_secret(b(inp, "record"), b(inp, "folderKey"), link_id, folder_id)
    node_id, node_key, md = links.open_drop(ds, link_id, folder_id, env)
    return {"dropSecret": ds.hex(), "nodeId": node_id.hex(), "nodeKey": node_key.hex(),
            "fileKey": links.drop_file_key(node_key, node_id).hex(), "metadata": md.hex()}


def op_owner_seal(params, inp):
    with Rng(inp) as rng:
        link_id, sealed = links.seal_owner_entry(rng, b(inp, "ownerKey"), b(inp, "entry"))
    return {"linkId": link_id.hex(), "sealed": sealed.hex()}


def op_owner_open(params, inp):
    return {"entry": links.open_owner_entry(b(inp, "ownerKey"), b(inp, "linkId"), b(inp, "sealed")).hex()}


def op_link_reseal(params, inp):
    with Rng(inp) as rng:
        out = links.reseal_link(rng, b(inp, "ownerEntry"), b(inp, "nodeId"), num(inp, "nodeKind"),
                                num(inp, "generation"), b(inp, "nodeKey"))
    return _hexmap(out, ["record", "verifierHash"])


def op_link_rotate(params, inp):
    with Rng(inp) as rng:
        out = links.rotate_link(rng, b(inp, "ownerEntry"), need(inp, "origin"), b(inp, "nodeId"),
                                num(inp, "nodeKind"), num(inp, "generation"), b(inp, "nodeKey"), num(inp, "now"))
    return _hexmap(out, ["url", "record", "verifierHash", "newOwnerEntry"])


OPS = {
    "Base64url": op_base64url,
    "CborDecode": op_cbor_decode,
    "CborDecodeNest": op_cbor_nest,
    "CborDecodeBytes": op_cbor_bytes,
    "Hkdf": op_hkdf,
    "Ed25519Sign": op_ed_sign,
    "Ed25519Verify": op_ed_verify,
    "X25519PublicKey": op_x25519_pub,
    "HpkeSeal": op_hpke_seal,
    "HpkeOpen": op_hpke_open,
    "Argon2ParamsCheck": op_argon2_check,
    "Argon2idDerive": op_argon2_derive,
    "SealEncrypt": op_seal_encrypt,
    "SealOpen": op_seal_open,
    "ContentEncrypt": op_content_encrypt,
    "ContentDecrypt": op_content_decrypt,
    "ContentRangeDecrypt": op_content_range,
    "MetadataSeal": op_metadata_seal,
    "MetadataOpen": op_metadata_open,
    "LinkUrlParse": op_link_url_parse,
    "LinkCreate": op_link_create,
    "LinkOpen": op_link_open,
    "DropCreate": op_drop_create,
    "DropOpen": op_drop_open,
    "OwnerEntrySeal": op_owner_seal,
    "OwnerEntryOpen": op_owner_open,
    "LinkReseal": op_link_reseal,
    "LinkRotate": op_link_rotate,
}


def handle(req):
    rid = req.get("id")
    fn = OPS.get(req.get("op"))
    if fn is None:
        return {"id": rid, "unsupported": True}
    try:
        return {"id": rid, "ok": fn(req.get("params") or {}, req.get("input") or {})}
    except CofferError as e:
        ans = {"id": rid, "error": e.failure_class}
        if e.message:
            ans["message"] = e.message
        return ans
    except Exception as e:  # a bug in the driver, or a request it cannot process
        return {"id": rid, "error": "driver-error", "message": f"{type(e).__name__}: {e}"}


def main():
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        out.write(json.dumps(handle(req), separators=(",", ":")) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
