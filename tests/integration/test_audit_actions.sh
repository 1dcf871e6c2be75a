#!/usr/bin/env bash
# test_audit_actions.sh: the "Audit actions" table of docs/filesystem.md lists exactly the actions
# the daemon's code can emit (audit_actions.py reads the sources; no mount). $1 (the binary) is
# not used.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY3=/usr/bin/python3
[[ -x $PY3 ]] || PY3=python3
"$PY3" "$HERE/audit_actions.py" "$HERE/../.."
