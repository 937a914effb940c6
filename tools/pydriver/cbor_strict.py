"""Strict deterministic CBOR of spec §1 (written from spec/01-encoding.md only).

Decoding follows the procedure of §1.4.1: bounds, walk one item, trailing bytes, shape,
re-encode-and-compare.  Values: int, bytes, Text (undecoded UTF-8 bytes), bool, None, list.
"""

from errors import CofferError

MAX_DEPTH = 8


class NegInt:
    """A CBOR negative integer (major type 1): well-formed, so walked in step 2, but never a valid
    field, so rejected at the shape step (§1.4.1 step 4: wrong major type, `malformed`)."""

    def __init__(self, n):
        self.n = n


class Text(bytes):
    """A CBOR text string whose UTF-8 validity is checked at the shape step (§1.4.1 step 4)."""


def _fail(cls, msg=""):
    raise CofferError(cls, msg)


# ---------------------------------------------------------------------------------------------
# Encoding (§1.2)

def _head(major, n):
    if n < 24:
        return bytes([(major << 5) | n])
    if n < 0x100:
        return bytes([(major << 5) | 24, n])
    if n < 0x10000:
        return bytes([(major << 5) | 25]) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes([(major << 5) | 26]) + n.to_bytes(4, "big")
    if n < 0x10000000000000000:
        return bytes([(major << 5) | 27]) + n.to_bytes(8, "big")
    raise ValueError("integer too large for CBOR")


def encode(v):
    out = bytearray()
    _enc(v, out)
    return bytes(out)


def _enc(v, out):
    if isinstance(v, NegInt):
        out += _head(1, v.n)
    elif v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if v < 0:
            raise ValueError("negative integers are outside the profile")
        out += _head(0, v)
    elif isinstance(v, Text):
        out += _head(3, len(v))
        out += bytes(v)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        out += _head(3, len(b))
        out += b
    elif isinstance(v, (bytes, bytearray)):
        out += _head(2, len(v))
        out += bytes(v)
    elif isinstance(v, (list, tuple)):
        out += _head(4, len(v))
        for x in v:
            _enc(x, out)
    else:
        raise TypeError(f"cannot encode {type(v)}")


# ---------------------------------------------------------------------------------------------
# Walking one item (§1.4.1 step 2)

def _walk(x, pos, depth):
    if pos >= len(x):
        _fail("malformed", "input ends before an item")
    ib = x[pos]
    major, ai = ib >> 5, ib & 31
    pos += 1
    if major == 7:
        if ai == 20:
            return False, pos
        if ai == 21:
            return True, pos
        if ai == 22:
            return None, pos
        # undefined, other simple values, two-byte simple, floats, reserved, break
        _fail("malformed", f"forbidden simple/float item 0x{ib:02x}")
    if 28 <= ai <= 30:
        _fail("malformed", "reserved additional information")
    if ai == 31:
        if major in (2, 3, 4, 5):
            _fail("non-canonical", "indefinite length")
        _fail("malformed", "additional information 31 on a major type without indefinite form")
    if ai < 24:
        n = ai
    else:
        size = 1 << (ai - 24)
        if pos + size > len(x):
            _fail("malformed", "input ends inside a head")
        n = int.from_bytes(x[pos:pos + size], "big")
        pos += size
    remaining = len(x) - pos
    if major == 0:
        return n, pos
    if major == 1:
        return NegInt(n), pos
    if major in (2, 3):
        if n > remaining:
            _fail("malformed", "string length beyond the input")
        s = x[pos:pos + n]
        return (bytes(s) if major == 2 else Text(s)), pos + n
    if major == 4:
        if depth + 1 > MAX_DEPTH:
            _fail("malformed", "nesting deeper than 8")
        if n > remaining:
            _fail("malformed", "array length beyond the input")
        items = []
        for _ in range(n):
            v, pos = _walk(x, pos, depth + 1)
            items.append(v)
        return items, pos
    if major == 5:
        _fail("malformed", "map")
    _fail("malformed", "tag")


def decode_generic(x, max_len=None):
    """Steps 1-3: returns the generic value."""
    x = bytes(x)
    if max_len is not None and len(x) > max_len:
        _fail("malformed", "longer than the maximum encoded length")
    v, pos = _walk(x, 0, 0)
    if pos != len(x):
        _fail("trailing-bytes")
    return v


# ---------------------------------------------------------------------------------------------
# Shapes (§1.3.2, §1.4.1 step 4)
#
# A shape is a small object with .check(value) -> python value (raising CofferError).

U64 = (1 << 64) - 1


class UInt:
    def __init__(self, maximum=U64, allowed=None):
        self.maximum, self.allowed = maximum, allowed

    def check(self, v):
        if isinstance(v, bool) or not isinstance(v, int):
            _fail("malformed", "expected an unsigned integer")
        if v > self.maximum or (self.allowed is not None and v not in self.allowed):
            _fail("invalid-value", f"integer {v} out of range")
        return v


class Bstr:
    def __init__(self, size=None, min_size=None, max_size=None):
        self.size, self.min_size, self.max_size = size, min_size, max_size

    def check(self, v):
        if not isinstance(v, bytes) or isinstance(v, Text):
            _fail("malformed", "expected a byte string")
        if self.size is not None and len(v) != self.size:
            _fail("invalid-value", f"byte string of {len(v)} bytes, expected {self.size}")
        if self.min_size is not None and len(v) < self.min_size:
            _fail("invalid-value", "byte string too short")
        if self.max_size is not None and len(v) > self.max_size:
            _fail("invalid-value", "byte string too long")
        return v


class Tstr:
    def check(self, v):
        if not isinstance(v, Text):
            _fail("malformed", "expected a text string")
        try:
            return bytes(v).decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            _fail("malformed", "invalid UTF-8")


class Bool:
    def check(self, v):
        if v is not True and v is not False:
            _fail("malformed", "expected a boolean")
        return v


class Opt:
    def __init__(self, inner):
        self.inner = inner

    def check(self, v):
        if v is None:
            return None
        return self.inner.check(v)


class ArrayOf:
    def __init__(self, inner):
        self.inner = inner

    def check(self, v):
        if not isinstance(v, list):
            _fail("malformed", "expected an array")
        return [self.inner.check(e) for e in v]


class Struct:
    """A nested (no type code) or top-level (type_code given) structure; returns a list of fields."""

    def __init__(self, fields, type_code=None, version=1):
        self.fields, self.type_code, self.version = fields, type_code, version

    def check(self, v):
        if not isinstance(v, list):
            _fail("malformed", "expected an array")
        i = 0
        if self.type_code is not None:
            if len(v) < 1 or isinstance(v[0], bool) or not isinstance(v[0], int):
                _fail("malformed", "type code missing or not an unsigned integer")
            if v[0] != self.type_code:
                _fail("wrong-type", f"type code {v[0]}, expected {self.type_code}")
            if len(v) < 2 or isinstance(v[1], bool) or not isinstance(v[1], int):
                _fail("malformed", "version missing or not an unsigned integer")
            if v[1] != self.version:
                _fail("unknown-version", f"version {v[1]}")
            i = 2
        out = []
        for f in self.fields:
            if i >= len(v):
                _fail("malformed", "too few elements")
            out.append(f.check(v[i]))
            i += 1
        if i != len(v):
            _fail("malformed", "too many elements")
        return out


def decode(x, shape, max_len=None):
    """The whole procedure of §1.4.1; returns the shaped value (list of fields)."""
    x = bytes(x)
    g = decode_generic(x, max_len)
    val = shape.check(g)
    if encode(g) != x:
        _fail("non-canonical", "re-encoding differs")
    return val
