"""Spec §1.7 (base64url), §2 (primitives) and §3 (the committed seal)."""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag

from errors import CofferError, DriverError


# ---------------------------------------------------------------------------------------------
# Injected randomness (§13.3)

class ReplayRng:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def random(self, n):
        if self.pos + n > len(self.data):
            raise DriverError(f"operation asked for more randomness than given ({self.pos}+{n} > {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def finish(self):
        if self.pos != len(self.data):
            raise DriverError(f"operation left {len(self.data) - self.pos} random bytes unused")


# ---------------------------------------------------------------------------------------------
# Base64url (§1.7)

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64IDX = {c: i for i, c in enumerate(_B64)}


def b64url_encode(b: bytes) -> str:
    out = []
    for i in range(0, len(b), 3):
        chunk = b[i:i + 3]
        n = int.from_bytes(chunk + b"\0" * (3 - len(chunk)), "big")
        chars = [_B64[(n >> s) & 63] for s in (18, 12, 6, 0)]
        out.append("".join(chars[:len(chunk) + 1]))
    return "".join(out)


def b64url_decode(s: str) -> bytes:
    if len(s) % 4 == 1:
        raise CofferError("invalid-text", "length 1 mod 4")
    vals = []
    for c in s:
        if c not in _B64IDX:
            raise CofferError("invalid-text", f"character {c!r} outside the URL-safe alphabet")
        vals.append(_B64IDX[c])
    out = bytearray()
    for i in range(0, len(vals), 4):
        g = vals[i:i + 4]
        n = 0
        for v in g:
            n = (n << 6) | v
        if len(g) == 4:
            out += n.to_bytes(3, "big")
        elif len(g) == 3:
            if n & 3:
                raise CofferError("invalid-text", "non-zero unused bits")
            out += (n >> 2).to_bytes(2, "big")
        elif len(g) == 2:
            if n & 15:
                raise CofferError("invalid-text", "non-zero unused bits")
            out += (n >> 4).to_bytes(1, "big")
    return bytes(out)


def b64url_decode_exact(s: str, n: int) -> bytes:
    b = b64url_decode(s)
    if len(b) != n:
        raise CofferError("invalid-text", f"decodes to {len(b)} bytes, expected {n}")
    return b


# ---------------------------------------------------------------------------------------------
# HKDF-SHA-256 (§2.2)

def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    if length > 255 * 32:
        raise CofferError("invalid-argument", "HKDF length too large")
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def hkdf_info(label: str, context: bytes) -> bytes:
    return label.encode("ascii") + b"\x00" + context


def hkdf(ikm: bytes, salt: bytes, label: str, context: bytes, length: int) -> bytes:
    return hkdf_expand(hkdf_extract(salt, ikm), hkdf_info(label, context), length)


def derive_key(ikm, salt, label, context=b""):
    return hkdf(ikm, salt, label, context, 32)


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# ---------------------------------------------------------------------------------------------
# AEADs (§2.3): ChaCha20-Poly1305 and XChaCha20-Poly1305 (HChaCha20, draft-irtf-cfrg-xchacha-03 §2.2)

def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key))
    s += list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def chacha_encrypt(key, nonce12, aad, pt):
    return ChaCha20Poly1305(key).encrypt(nonce12, pt, aad)


def chacha_decrypt(key, nonce12, aad, ct):
    try:
        return ChaCha20Poly1305(key).decrypt(nonce12, ct, aad)
    except InvalidTag:
        raise CofferError("decryption-failed")


def xchacha_encrypt(key, nonce24, aad, pt):
    sub = hchacha20(key, nonce24[:16])
    return chacha_encrypt(sub, b"\0\0\0\0" + nonce24[16:24], aad, pt)


def xchacha_decrypt(key, nonce24, aad, ct):
    sub = hchacha20(key, nonce24[:16])
    return chacha_decrypt(sub, b"\0\0\0\0" + nonce24[16:24], aad, ct)


# ---------------------------------------------------------------------------------------------
# The committed seal (§3)

SEAL_OVERHEAD = 72
SEALED_KEY_LEN = 104


def seal(key, label, aad, pt, rng):
    nonce = rng.random(24)
    okm = hkdf(key, nonce, label, b"", 64)
    ct = xchacha_encrypt(okm[:32], nonce, aad, pt)
    return nonce + okm[32:64] + ct


def seal_open(key, label, aad, sealed):
    if len(sealed) < SEAL_OVERHEAD:
        raise CofferError("decryption-failed", "shorter than the seal overhead")
    nonce, commitment, ct = sealed[:24], sealed[24:56], sealed[56:]
    okm = hkdf(key, nonce, label, b"", 64)
    if not hmac.compare_digest(okm[32:64], commitment):
        raise CofferError("decryption-failed")
    return xchacha_decrypt(okm[:32], nonce, aad, ct)


def open_key(key, label, aad, sealed):
    if len(sealed) != SEALED_KEY_LEN:
        raise CofferError("decryption-failed", "sealed key not 104 bytes")
    return seal_open(key, label, aad, sealed)


# ---------------------------------------------------------------------------------------------
# Ed25519 (§2.4), strict verification written out over edwards25519

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
_GY = 4 * pow(5, P - 2, P) % P


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GX = _recover_x(_GY, 0)
_B = (_GX, _GY, 1, _GX * _GY % P)
_IDENT = (0, 1, 1, 0)


def _padd(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _pmul(s, p):
    q = _IDENT
    while s > 0:
        if s & 1:
            q = _padd(q, p)
        p = _padd(p, p)
        s >>= 1
    return q


def _pneg(p):
    x, y, z, t = p
    return ((-x) % P, y, z, (-t) % P)


def _pencode(p):
    x, y, z, _ = p
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _pdecode(b):
    """RFC 8032 §5.1.3 decoding; None if not a point (or non-canonical y / x = 0 with sign)."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _is_identity(p):
    x, y, z, _ = p
    return x % P == 0 and (y - z) % P == 0


def _small_order(p):
    return _is_identity(_pmul(8, p))


def ed25519_public_check(a_bytes):
    """§2.4.2: returns the point or raises invalid-public-key."""
    A = _pdecode(a_bytes)
    if A is None or _pencode(A) != bytes(a_bytes):
        raise CofferError("invalid-public-key", "not a canonical point")
    if _small_order(A):
        raise CofferError("invalid-public-key", "small order")
    return A


def ed25519_public(seed):
    from cryptography.hazmat.primitives import serialization
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    return sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(seed, label, msg):
    m = label.encode("ascii") + b"\x00" + msg
    return Ed25519PrivateKey.from_private_bytes(seed).sign(m), m


def ed25519_verify(a_bytes, label, msg, sig):
    A = ed25519_public_check(a_bytes)
    if len(sig) != 64:
        raise CofferError("bad-signature", "signature length")
    r_bytes, s = sig[:32], int.from_bytes(sig[32:], "little")
    if s >= L:
        raise CofferError("bad-signature", "S >= L")
    R = _pdecode(r_bytes)
    if R is None or _small_order(R):
        raise CofferError("bad-signature", "R not a point or of small order")
    m = label.encode("ascii") + b"\x00" + msg
    k = int.from_bytes(hashlib.sha512(r_bytes + bytes(a_bytes) + m).digest(), "little") % L
    chk = _padd(_pmul(s, _B), _pneg(_pmul(k, A)))
    if _pencode(chk) != bytes(r_bytes):
        raise CofferError("bad-signature")


# ---------------------------------------------------------------------------------------------
# X25519 (§2.5)

A24 = 121665
MONT_A = 486662


def _x_small_order(u):
    # [8]P via x-only doubling in projective coordinates; infinity iff Z = 0
    x, z = u % P, 1
    for _ in range(3):
        xx = (x + z) ** 2 % P
        zz = (x - z) ** 2 % P
        e = (xx - zz) % P
        x, z = xx * zz % P, e * (xx + A24 * e) % P
    return z % P == 0


def x25519_public_check(u_bytes):
    if len(u_bytes) != 32:
        raise CofferError("invalid-public-key", "length")
    n = int.from_bytes(u_bytes, "little")
    if n >> 255:
        raise CofferError("invalid-public-key", "top bit set")
    if n >= P:
        raise CofferError("invalid-public-key", "u >= p")
    rhs = (n * n * n + MONT_A * n * n + n) % P
    if rhs != 0 and pow(rhs, (P - 1) // 2, P) != 1:
        raise CofferError("invalid-public-key", "on the twist")
    if _x_small_order(n):
        raise CofferError("invalid-public-key", "small order")
    return bytes(u_bytes)


def x25519_public_of(secret):
    from cryptography.hazmat.primitives import serialization
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519(secret, u):
    try:
        out = X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(u))
    except Exception:
        raise CofferError("non-contributory")
    if out == bytes(32):
        raise CofferError("non-contributory")
    return out


# ---------------------------------------------------------------------------------------------
# HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305 (§2.6, RFC 9180)

_KEM_SUITE = b"KEM" + (0x0020).to_bytes(2, "big")
_HPKE_SUITE = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0003).to_bytes(2, "big")


def _lextract(suite, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def _lexpand(suite, prk, label, info, n):
    return hkdf_expand(prk, n.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, n)


def hpke_derive_keypair(ikm):
    prk = _lextract(_KEM_SUITE, b"", b"dkp_prk", ikm)
    sk = _lexpand(_KEM_SUITE, prk, b"sk", b"", 32)
    return sk, x25519_public_of(sk)


def _shared_secret(dh, enc, pkr):
    prk = _lextract(_KEM_SUITE, b"", b"eae_prk", dh)
    return _lexpand(_KEM_SUITE, prk, b"shared_secret", enc + pkr, 32)


def _key_schedule(shared, info):
    psk_id_hash = _lextract(_HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = _lextract(_HPKE_SUITE, b"", b"info_hash", info)
    ctx = b"\x00" + psk_id_hash + info_hash
    secret = _lextract(_HPKE_SUITE, shared, b"secret", b"")
    key = _lexpand(_HPKE_SUITE, secret, b"key", ctx, 32)
    nonce = _lexpand(_HPKE_SUITE, secret, b"base_nonce", ctx, 12)
    return key, nonce


def hpke_seal(pkr, info, aad, pt, rng):
    x25519_public_check(pkr)
    ske, pke = hpke_derive_keypair(rng.random(32))
    dh = x25519(ske, pkr)
    shared = _shared_secret(dh, pke, pkr)
    key, nonce = _key_schedule(shared, info)
    return pke, chacha_encrypt(key, nonce, aad, pt)


def hpke_open(skr, enc, info, aad, ct):
    try:
        if len(enc) != 32:
            raise CofferError("decryption-failed")
        dh = x25519(skr, enc)
        pkr = x25519_public_of(skr)
        shared = _shared_secret(dh, enc, pkr)
        key, nonce = _key_schedule(shared, info)
        return chacha_decrypt(key, nonce, aad, ct)
    except CofferError:
        raise CofferError("decryption-failed")


# ---------------------------------------------------------------------------------------------
# Argon2id (§2.7)

ARGON2_MIN = (19456, 2, 1)
ARGON2_MAX = (1048576, 16, 16)


def argon2_check(m, t, p):
    if not (ARGON2_MIN[0] <= m <= ARGON2_MAX[0] and ARGON2_MIN[1] <= t <= ARGON2_MAX[1]
            and ARGON2_MIN[2] <= p <= ARGON2_MAX[2] and m >= 8 * p):
        raise CofferError("limit-exceeded", f"Argon2id parameters ({m}, {t}, {p}) out of range")


def argon2id(password, salt, m, t, p):
    argon2_check(m, t, p)
    if len(salt) < 8:
        raise CofferError("invalid-argument", "salt shorter than 8 bytes")
    from argon2.low_level import hash_secret_raw, Type
    return hash_secret_raw(secret=password, salt=salt, time_cost=t, memory_cost=m, parallelism=p,
                           hash_len=32, type=Type.ID, version=19)
