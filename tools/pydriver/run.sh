#!/bin/sh
# Install the driver's requirements and run the conformance runner's link-opener profile
# against the independent Python driver. Exits non-zero on any failure.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install --quiet -r "$HERE/requirements.txt"
if [ -n "${COFFER_CONFORMANCE:-}" ]; then
    RUNNER=$COFFER_CONFORMANCE
else
    cargo build -q -p coffer-conformance
    RUNNER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/coffer-conformance"
fi
exec "$RUNNER" vectors --dir "$ROOT/test-vectors" --profile link-opener \
    --driver "$PYTHON $HERE/coffer_driver.py" "$@"
