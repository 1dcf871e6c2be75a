#!/usr/bin/env python3
"""check_schema.py: validate JSON documents read from a conduitfs mount against the JSON Schemas
(2020-12) in docs/schema/. Usage: check_schema.py SCHEMA_DIR SCHEMA_NAME FILE [FILE...]
Prints one line per file ("ok FILE" or "FAIL FILE: reason") and exits 1 when any fails.
Needs Debian's python3-jsonschema (scripts/setup.sh --test installs it)."""
import json
import sys

import jsonschema


def main():
    if len(sys.argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    schema_dir, name, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(f"{schema_dir}/{name}", encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    bad = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"FAIL {path}: not readable JSON: {e}")
            bad += 1
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path) or "(top)"
            print(f"FAIL {path} against {name}: at {where}: {e.message[:300]}")
            bad += 1
        else:
            print(f"ok {path} ({name})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
