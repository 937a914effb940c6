"""Spec §4 (content) and §5 (metadata)."""

import re

import cbor_strict as C
from errors import CofferError
from primitives import hkdf, chacha_encrypt, ChaCha20Poly1305, InvalidTag, seal, seal_open
import hmac

CHUNK_LEN = 65536
TAG_LEN = 16
ENC_CHUNK = CHUNK_LEN + TAG_LEN
HEADER_LEN = 71

HEADER_SHAPE = C.Struct([C.Bstr(32), C.Bstr(32)], type_code=1)


def _keys(file_key, salt):
    okm = hkdf(file_key, salt, "coffer/v1/content/payload", b"", 64)
    return okm[:32], okm[32:]


def _nonce(i, last):
    return i.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def n_chunks(n):
    return max(1, -(-n // CHUNK_LEN))


def ciphertext_len(n):
    return HEADER_LEN + n + TAG_LEN * n_chunks(n)


def plaintext_len(c):
    if c < HEADER_LEN:
        return None
    body = c - HEADER_LEN
    full, rem = divmod(body, ENC_CHUNK)
    if rem == 0 and full >= 1:
        return full * CHUNK_LEN
    if rem > TAG_LEN or (full == 0 and rem == TAG_LEN):
        return full * CHUNK_LEN + rem - TAG_LEN
    return None


def encrypt(file_key, pt, rng):
    salt = rng.random(32)
    payload_key, commitment = _keys(file_key, salt)
    header = C.encode([1, 1, salt, commitment])
    aead = ChaCha20Poly1305(payload_key)
    m = n_chunks(len(pt))
    out = [header]
    for i in range(m):
        out.append(aead.encrypt(_nonce(i, i == m - 1), pt[i * CHUNK_LEN:(i + 1) * CHUNK_LEN], header))
    return payload_key, commitment, header, b"".join(out)


def _open_header(file_key, header):
    salt, commitment = C.decode(header, HEADER_SHAPE)
    return salt, commitment


def _check_commitment(file_key, salt, commitment):
    payload_key, expect = _keys(file_key, salt)
    if not hmac.compare_digest(expect, commitment):
        raise CofferError("decryption-failed", "commitment mismatch")
    return payload_key


def _decrypt_chunk(aead, i, last, chunk, header):
    try:
        return aead.decrypt(_nonce(i, last), chunk, header)
    except InvalidTag:
        pass
    try:
        aead.decrypt(_nonce(i, not last), chunk, header)
    except InvalidTag:
        raise CofferError("decryption-failed", f"chunk {i}")
    raise CofferError("truncated", f"chunk {i} authenticates only with the opposite last flag")


def decrypt(file_key, ct):
    if len(ct) < HEADER_LEN:
        raise CofferError("truncated", "no complete header")
    header = ct[:HEADER_LEN]
    salt, commitment = _open_header(file_key, header)
    n = plaintext_len(len(ct))
    if n is None:
        raise CofferError("truncated", "impossible length")
    payload_key = _check_commitment(file_key, salt, commitment)
    aead = ChaCha20Poly1305(payload_key)
    m = n_chunks(n)
    out = []
    for i in range(m):
        start = HEADER_LEN + i * ENC_CHUNK
        out.append(_decrypt_chunk(aead, i, i == m - 1, ct[start:start + ENC_CHUNK], header))
    return b"".join(out)


def range_decrypt(file_key, header, c, a, b, chunks):
    n = plaintext_len(c)
    if n is None:
        raise CofferError("truncated", "impossible length")
    if not (0 <= a < b <= n):
        raise CofferError("invalid-argument", "empty, inverted or out-of-bounds range")
    m = n_chunks(n)
    first, last = a // CHUNK_LEN, (b - 1) // CHUNK_LEN
    rs = HEADER_LEN + first * ENC_CHUNK
    re_ = min(HEADER_LEN + (last + 1) * ENC_CHUNK, c)
    if len(header) != HEADER_LEN:
        raise CofferError("truncated", "header not 71 bytes")
    salt, commitment = _open_header(file_key, header)
    payload_key = _check_commitment(file_key, salt, commitment)
    if len(chunks) != re_ - rs:
        raise CofferError("truncated", "fetched range has the wrong length")
    aead = ChaCha20Poly1305(payload_key)
    pt = []
    for i in range(first, last + 1):
        off = (i - first) * ENC_CHUNK
        pt.append(_decrypt_chunk(aead, i, i == m - 1, chunks[off:off + ENC_CHUNK], header))
    pt = b"".join(pt)
    return rs, re_, pt[a - first * CHUNK_LEN:b - first * CHUNK_LEN]


# ---------------------------------------------------------------------------------------------
# Metadata (§5)

METADATA_SHAPE = C.Struct([C.Tstr(), C.UInt(), C.UInt(), C.Opt(C.Tstr()), C.Opt(C.Bstr(32))], type_code=10)
_RN = re.compile(r"[a-z0-9][a-z0-9!#$&\-^_.+]{0,126}\Z")


def metadata_key(node_key):
    return hkdf(node_key, b"", "coffer/v1/metadata/key", b"", 32)


def metadata_aad(node_id, revision):
    return C.encode([11, 1, node_id, revision])


def metadata_validate(name, size, mtime, media_type, digest):
    nb = name.encode("utf-8")
    if not (1 <= len(nb) <= 255):
        raise CofferError("invalid-value", "name length")
    if "/" in name or "\x00" in name:
        raise CofferError("invalid-value", "name contains / or NUL")
    if name in (".", ".."):
        raise CofferError("invalid-value", "name is . or ..")
    if media_type is not None:
        mb = media_type.encode("utf-8")
        if len(mb) > 127:
            raise CofferError("invalid-value", "media type too long")
        parts = media_type.split("/")
        if len(parts) != 2 or not all(_RN.match(p) for p in parts):
            raise CofferError("invalid-value", "media type not a lower-case type/subtype")
    if digest is None and size != 0:
        raise CofferError("invalid-value", "null digest with non-zero size")


def metadata_encode(name, size, mtime, media_type, digest):
    return C.encode([10, 1, name, size, mtime, media_type, digest])


def metadata_seal(node_key, node_id, revision, fields, rng):
    metadata_validate(*fields)
    key = metadata_key(node_key)
    aad = metadata_aad(node_id, revision)
    pt = metadata_encode(*fields)
    return key, aad, pt, seal(key, "coffer/v1/metadata/seal", aad, pt, rng)


def metadata_open(node_key, node_id, revision, sealed):
    if len(sealed) > 1024:
        raise CofferError("limit-exceeded", "sealed metadata longer than 1024 bytes")
    pt = seal_open(metadata_key(node_key), "coffer/v1/metadata/seal", metadata_aad(node_id, revision), sealed)
    fields = C.decode(pt, METADATA_SHAPE)
    metadata_validate(*fields)
    return fields, pt
