#!/bin/sh
# Seeds fuzz/corpus/<target>/ from the published vectors (test-vectors/*.json): every hex string
# field of a vector file becomes one corpus entry of the targets that parse that kind of value
# (text fields too, for the URL and base64url targets). Entries are named by their SHA-1, so
# re-running is idempotent. Inputs larger than MAX_SEED bytes (default 262144) are skipped.
# Needs python3. Usage: fuzz/seed_corpus.sh [corpus-dir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 - "$here/../test-vectors" "${1:-$here/corpus}" "${MAX_SEED:-262144}" <<'PY'
import hashlib, json, os, re, sys

vectors, corpus, max_seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
# vector file -> (targets fed its hex fields, targets fed its text fields)
MAP = {
    "encoding.json": (["decode_any", "api"], ["b64url"]),
    "primitives.json": (["seal_open"], []),
    "seal.json": (["seal_open"], []),
    "content.json": (["content_decrypt", "content_tamper"], []),
    "metadata.json": (["metadata"], ["metadata"]),
    "identity.json": (["account_identity"], ["account_identity"]),
    "account.json": (["account_bundle", "opaque_server", "account_identity"], []),
    "tree.json": (["tree", "rotation"], []),
    "share.json": (["share", "rotation"], []),
    "rotation.json": (["rotation", "share", "tree"], []),
    "link.json": (["link"], ["link"]),
    "link_url.json": (["link"], ["link", "b64url"]),
    "api.json": (["api"], ["api"]),
}
HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
META = {"comment", "result", "type", "flags", "schema", "algorithm", "bugType", "description"}

def strings(v, key=None):
    if isinstance(v, str):
        yield key, v
    elif isinstance(v, list):
        for x in v:
            yield from strings(x, key)
    elif isinstance(v, dict):
        for k, x in v.items():
            if k not in META:
                yield from strings(x, k)

count = {}
for name, (hex_targets, text_targets) in sorted(MAP.items()):
    path = os.path.join(vectors, name)
    if not os.path.exists(path):
        continue
    with open(path) as f:
        doc = json.load(f)
    for group in doc.get("testGroups", []):
        for key, s in strings(group):
            if HEX.match(s):
                data, targets = bytes.fromhex(s), hex_targets
            else:
                data, targets = s.encode(), text_targets
            if not data or len(data) > max_seed:
                continue
            digest = hashlib.sha1(data).hexdigest()
            for t in targets:
                d = os.path.join(corpus, t)
                os.makedirs(d, exist_ok=True)
                p = os.path.join(d, digest)
                if not os.path.exists(p):
                    with open(p, "wb") as out:
                        out.write(data)
                    count[t] = count.get(t, 0) + 1
for t in sorted(count):
    print(f"{t}: {count[t]} new seeds")
PY
