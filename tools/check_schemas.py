#!/usr/bin/env python3
"""Validate every published vector file against its JSON Schema (Draft 7).

Usage: python3 tools/check_schemas.py [VECTOR_DIR]   (default: test-vectors/)
Exits non-zero, naming the file and the failing path, if any file does not match.
"""
import json
import pathlib
import sys

import jsonschema


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent / "test-vectors")
    files = sorted(p for p in root.glob("*.json"))
    if not files:
        print(f"no vector files in {root}", file=sys.stderr)
        return 1
    failed = 0
    for f in files:
        schema_path = root / "schemas" / f"{f.stem}.schema.json"
        schema = json.loads(schema_path.read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(json.loads(f.read_text())), key=lambda e: list(e.path))
        for e in errors[:5]:
            print(f"{f.name}: {'/'.join(map(str, e.path))}: {e.message[:300]}", file=sys.stderr)
        failed += bool(errors)
        print(f"{f.name}: {'ok' if not errors else f'{len(errors)} errors'}")
    print(f"{len(files) - failed} files match their schema, {failed} do not")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
