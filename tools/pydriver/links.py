"""Spec §10: links, link URLs, drops, owner entries, re-seal and rotation."""

import re

import cbor_strict as C
from errors import CofferError
from primitives import (hkdf, derive_key, sha256, seal, seal_open, open_key, b64url_encode, b64url_decode_exact,
                        argon2_check, argon2id, x25519_public_check, x25519_public_of, hpke_seal, hpke_open)

RECORD_MAX = 1024
ENVELOPE_MAX = 66048
DROP_METADATA_MAX = 65536
OWNER_ENTRY_SEALED_MAX = 512 + 72

ENUM01 = C.UInt(allowed={0, 1})
LINK_PASSWORD = C.Struct([C.UInt(), C.UInt(), C.UInt(), C.Bstr(16)])
LINK_DROP = C.Struct([C.UInt(), C.Bstr(104)])
RECORD_SHAPE = C.Struct([C.Bstr(16), C.Bstr(16), ENUM01, C.Opt(C.UInt()), C.Opt(C.UInt()),
                         C.Opt(LINK_PASSWORD), C.Opt(LINK_DROP), C.Bstr()], type_code=70)
CAPABILITY_SHAPE = C.Struct([ENUM01, C.UInt(), C.Opt(C.Bstr(32)), C.Opt(C.Bstr(32))], type_code=71)
OWNER_PASSWORD = C.Struct([C.UInt(), C.UInt(), C.UInt(), C.Bstr(16), C.Bstr(32)])
OWNER_ENTRY_SHAPE = C.Struct([C.Bstr(32), C.Bstr(16), ENUM01, ENUM01, C.Opt(C.UInt()), C.Opt(C.UInt()),
                              C.Opt(OWNER_PASSWORD), C.Opt(C.Bstr(32)), C.UInt()], type_code=73)
ENVELOPE_SHAPE = C.Struct([C.Bstr(16), C.Bstr(16), C.Bstr(16), C.Bstr(32), C.Bstr(48), C.Bstr()], type_code=72)


# ---------------------------------------------------------------------------------------------
# §10.2 keys

def link_id_of(secret):
    return hkdf(secret, b"", "coffer/v1/link/id", b"", 16)


def link_key_of(secret):
    return hkdf(secret, b"", "coffer/v1/link/key", b"", 32)


def capability_key(link_key, pw_key, link_id):
    ikm = link_key + (pw_key if pw_key is not None else b"")
    return hkdf(ikm, b"", "coffer/v1/link/capability-key", link_id, 32)


def verifier_of(link_key, pw_key, link_id):
    return hkdf(link_key + pw_key, b"", "coffer/v1/link/password-verifier", link_id, 32)


# ---------------------------------------------------------------------------------------------
# §10.3 URLs

_ORIGIN = re.compile(r"(https|http)://([A-Za-z0-9\-._~:@/%\[\]!$&'()*+,;=]+)\Z")
_VERSION_NUM = re.compile(r"(0|[1-9][0-9]*)\Z")


def parse_url(text):
    if len(text.encode("utf-8")) > 1097:
        raise CofferError("invalid-text", "URL too long")
    if "#" not in text:
        raise CofferError("invalid-text", "no fragment")
    before, fragment = text.split("#", 1)
    if len(before) < 25:
        raise CofferError("invalid-text", "no /l/<id> path")
    origin, sep, id_text = before[:-25], before[-25:-22], before[-22:]
    if sep != "/l/":
        raise CofferError("invalid-text", "path is not /l/<id>")
    m = _ORIGIN.match(origin)
    if not m or len(origin.encode("utf-8")) > 1024 or not origin.isascii():
        raise CofferError("invalid-text", "bad origin")
    host = m.group(2)
    if host.startswith("/") or host.endswith("/"):
        raise CofferError("invalid-text", "host part starts or ends with /")
    path_id = b64url_decode_exact(id_text, 16)
    parts = fragment.split(".")
    if len(parts) not in (2, 3):
        raise CofferError("invalid-text", "fragment must have 2 or 3 components")
    if parts[0] != "1":
        if _VERSION_NUM.match(parts[0]):
            raise CofferError("unknown-version", f"link version {parts[0]}")
        raise CofferError("invalid-text", "bad version")
    secret = b64url_decode_exact(parts[1], 32)
    flag = False
    if len(parts) == 3:
        if parts[2] != "p":
            raise CofferError("invalid-text", "bad flag")
        flag = True
    link_id = link_id_of(secret)
    if link_id != path_id:
        raise CofferError("binding-mismatch", "path id does not match the secret")
    return origin, secret, link_id, flag


def format_url(origin, link_id, secret, flag):
    return f"{origin}/l/{b64url_encode(link_id)}#1.{b64url_encode(secret)}" + (".p" if flag else "")


# ---------------------------------------------------------------------------------------------
# Records

def _record_rules(perm, maxdl, drop):
    if (drop is not None) != (perm == 1):
        raise CofferError("invalid-value", "drop present exactly for upload-only links")
    if drop is not None and len(drop[1]) != 104:
        raise CofferError("invalid-value", "sealed drop secret not 104 bytes")
    if maxdl == 0:
        raise CofferError("invalid-value", "max-downloads is 0")


def capability_aad(link_id, node_id, perm, expires, maxdl, password, drop):
    return C.encode([75, 1, link_id, node_id, perm, expires, maxdl, password, drop])


def drop_secret_aad(folder_id, link_id, generation):
    return C.encode([74, 1, folder_id, link_id, generation])


def build_record(rng, secret, node_id, node_kind, generation, node_key, perm, expires, maxdl,
                 password_params, pw_key, drop_secret):
    """§10.5 steps 3-5 (the secret, salt and pw_key already drawn/derived)."""
    link_id, link_key = link_id_of(secret), link_key_of(secret)
    drop = drop_public = None
    if perm == 1:
        drop_public = x25519_public_of(drop_secret)
        sealed_ds = seal(node_key, "coffer/v1/link/drop-secret", drop_secret_aad(node_id, link_id, generation),
                         drop_secret, rng)
        drop = [generation, sealed_ds]
        cap = [71, 1, 0, generation, None, drop_public]
    else:
        cap = [71, 1, node_kind, generation, node_key, None]
    cap_plain = C.encode(cap)
    aad = capability_aad(link_id, node_id, perm, expires, maxdl, password_params, drop)
    ck = capability_key(link_key, pw_key, link_id)
    capability = seal(ck, "coffer/v1/link/capability", aad, cap_plain, rng)
    record = C.encode([70, 1, link_id, node_id, perm, expires, maxdl, password_params, drop, capability])
    verifier = verifier_of(link_key, pw_key, link_id) if pw_key is not None else None
    return {
        "linkId": link_id, "linkKey": link_key, "capabilityKey": ck, "capability": cap_plain,
        "record": record, "verifier": verifier, "verifierHash": sha256(verifier) if verifier else None,
        "dropPublic": drop_public,
    }


def create_link(rng, origin, node_id, node_kind, generation, node_key, password, argon2, expires, maxdl,
                upload_only, now):
    if upload_only and node_kind != 0:
        raise CofferError("invalid-argument", "upload-only links point to folders")
    if maxdl == 0:
        raise CofferError("invalid-argument", "max-downloads must be at least 1")
    secret = rng.random(32)
    salt = pw_key = params = None
    if password is not None:
        m, t, p = argon2
        argon2_check(m, t, p)
        salt = rng.random(16)
        pw_key = argon2id(password, salt, m, t, p)
        params = [m, t, p, salt]
    drop_secret = rng.random(32) if upload_only else None
    perm = 1 if upload_only else 0
    out = build_record(rng, secret, node_id, node_kind, generation, node_key, perm, expires, maxdl,
                       params, pw_key, drop_secret)
    entry = [73, 1, secret, node_id, node_kind, perm, expires, maxdl,
             (params + [pw_key]) if params else None, drop_secret, now]
    out.update({
        "secret": secret, "salt": salt, "pwKey": pw_key, "dropSecret": drop_secret,
        "ownerEntry": C.encode(entry),
        "url": format_url(origin, out["linkId"], secret, password is not None),
    })
    return out


def open_link(url, record_bytes, now, password=None, pw_key=None):
    """§10.6 steps 1 and 5-13."""
    _origin, secret, link_id, flag = parse_url(url)
    rec = C.decode(record_bytes, RECORD_SHAPE, max_len=RECORD_MAX)
    r_link_id, node_id, perm, expires, maxdl, pw, drop, capability = rec
    _record_rules(perm, maxdl, drop)
    if r_link_id != link_id:
        raise CofferError("binding-mismatch", "record of another link id")
    if (pw is not None) != flag:
        raise CofferError("binding-mismatch", "password flag and record disagree")
    if expires is not None and now >= expires:
        raise CofferError("link-expired")
    key = None
    if pw is not None:
        if password is None and pw_key is None:
            raise CofferError("invalid-argument", "the link needs a password")
        m, t, p, salt = pw
        argon2_check(m, t, p)
        key = argon2id(password, salt, m, t, p) if password is not None else pw_key
    ck = capability_key(link_key_of(secret), key, link_id)
    aad = capability_aad(link_id, node_id, perm, expires, maxdl, pw, drop)
    plain = seal_open(ck, "coffer/v1/link/capability", aad, capability)
    node_kind, generation, read_key, drop_public = C.decode(plain, CAPABILITY_SHAPE)
    if perm == 0:
        if read_key is None or drop_public is not None:
            raise CofferError("invalid-value", "read capability must carry exactly a read key")
    else:
        if node_kind != 0 or read_key is not None or drop_public is None:
            raise CofferError("invalid-value", "upload-only capability must be a folder with a drop key only")
        if generation != drop[0]:
            raise CofferError("binding-mismatch", "capability generation differs from the drop generation")
        x25519_public_check(drop_public)
    return {
        "linkId": link_id, "nodeId": node_id, "nodeKind": node_kind, "generation": generation,
        "permission": perm, "expiresAt": expires, "maxDownloads": maxdl, "nodeKey": read_key,
        "dropPublic": drop_public,
    }


# ---------------------------------------------------------------------------------------------
# Drops (§10.9)

def drop_context(link_id, folder_id, node_id):
    return C.encode([76, 1, link_id, folder_id, node_id])


def drop_file_key(node_key, node_id):
    """§10.9.2 step 5: the dropped file's file key, derived from its node key."""
    return derive_key(node_key, b"", "coffer/v1/link/drop-file-key", node_id)


def drop_info(link_id, folder_id):
    return b"coffer/v1/link/drop-node-key\x00" + link_id + folder_id


def create_drop(rng, opened, metadata):
    if opened["permission"] != 1:
        raise CofferError("invalid-argument", "not an upload-only link")
    if len(metadata) > DROP_METADATA_MAX:
        raise CofferError("limit-exceeded", "drop metadata longer than 65536 bytes")
    link_id, folder_id = opened["linkId"], opened["nodeId"]
    node_id = rng.random(16)
    node_key = rng.random(32)
    aad = drop_context(link_id, folder_id, node_id)
    enc, sealed_nk = hpke_seal(opened["dropPublic"], drop_info(link_id, folder_id), aad, node_key, rng)
    sealed_md = seal(node_key, "coffer/v1/link/drop-metadata", aad, metadata, rng)
    env = C.encode([72, 1, link_id, folder_id, node_id, enc, sealed_nk, sealed_md])
    return node_id, node_key, env


def open_drop_secret(record_bytes, folder_key, link_id, folder_id):
    rec = C.decode(record_bytes, RECORD_SHAPE, max_len=RECORD_MAX)
    _record_rules(rec[2], rec[4], rec[6])
    drop = rec[6]
    if drop is None:
        raise CofferError("invalid-argument", "not an upload-only link")
    generation, sealed_ds = drop
    return open_key(folder_key, "coffer/v1/link/drop-secret", drop_secret_aad(folder_id, link_id, generation),
                    sealed_ds)


def decode_envelope(envelope, link_id, folder_id):
    """§10.9.3 steps 1-2."""
    env = C.decode(envelope, ENVELOPE_SHAPE, max_len=ENVELOPE_MAX)
    if env[0] != link_id or env[1] != folder_id:
        raise CofferError("binding-mismatch", "envelope for another link or folder")
    return env


def open_drop(drop_secret, link_id, folder_id, env):
    """§10.9.3 steps 3 (after the drop secret) and 4; `env` from decode_envelope."""
    _l, _f, node_id, enc, sealed_nk, sealed_md = env
    aad = drop_context(link_id, folder_id, node_id)
    node_key = hpke_open(drop_secret, enc, drop_info(link_id, folder_id), aad, sealed_nk)
    metadata = seal_open(node_key, "coffer/v1/link/drop-metadata", aad, sealed_md)
    return node_id, node_key, metadata


# ---------------------------------------------------------------------------------------------
# Owner entries (§10.10), re-seal and rotation (§10.11)

def decode_owner_entry(entry_bytes):
    e = C.decode(entry_bytes, OWNER_ENTRY_SHAPE)
    secret, node_id, node_kind, perm, expires, maxdl, pw, drop_secret, created = e
    if (drop_secret is not None) != (perm == 1):
        raise CofferError("invalid-value", "drop secret present exactly for upload-only links")
    if perm == 1 and node_kind != 0:
        raise CofferError("invalid-value", "upload-only links point to folders")
    if maxdl == 0:
        raise CofferError("invalid-value", "max-downloads is 0")
    return e


def owner_entry_aad(link_id):
    return C.encode([77, 1, link_id])


def seal_owner_entry(rng, owner_key, entry_bytes):
    e = decode_owner_entry(entry_bytes)
    link_id = link_id_of(e[0])
    return link_id, seal(owner_key, "coffer/v1/link/owner-entry", owner_entry_aad(link_id), entry_bytes, rng)


def open_owner_entry(owner_key, link_id, sealed):
    if len(sealed) > OWNER_ENTRY_SEALED_MAX:
        raise CofferError("decryption-failed", "sealed owner entry too long")
    plain = seal_open(owner_key, "coffer/v1/link/owner-entry", owner_entry_aad(link_id), sealed)
    e = decode_owner_entry(plain)
    if link_id_of(e[0]) != link_id:
        raise CofferError("binding-mismatch", "entry secret derives another link id")
    return plain


def reseal_link(rng, entry_bytes, node_id, node_kind, generation, node_key):
    secret, e_node, e_kind, perm, expires, maxdl, pw, drop_secret, created = decode_owner_entry(entry_bytes)
    params = pw[:4] if pw else None
    pw_key = pw[4] if pw else None
    return build_record(rng, secret, node_id, node_kind, generation, node_key, perm, expires, maxdl,
                        params, pw_key, drop_secret)


def rotate_link(rng, entry_bytes, origin, node_id, node_kind, generation, node_key, now):
    _old, e_node, e_kind, perm, expires, maxdl, pw, _old_drop, created = decode_owner_entry(entry_bytes)
    secret = rng.random(32)
    drop_secret = rng.random(32) if perm == 1 else None
    params = pw[:4] if pw else None
    pw_key = pw[4] if pw else None
    out = build_record(rng, secret, node_id, node_kind, generation, node_key, perm, expires, maxdl,
                       params, pw_key, drop_secret)
    entry = [73, 1, secret, e_node, e_kind, perm, expires, maxdl, pw, drop_secret, now]
    out["newOwnerEntry"] = C.encode(entry)
    out["url"] = format_url(origin, out["linkId"], secret, pw is not None)
    return out
