#!/usr/bin/env bash
# test_layers.sh: the arrows point one way, util <- audit <- core <- monitor <- fs; the registry
# includes none of the steps the commit pipeline runs; no two .c files reach each other, through
# their headers (layers.py reads the sources) or through their calls (layers.py reads, with nm,
# the object files of the build that made $1, the binary). No mount.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY3=/usr/bin/python3
[[ -x $PY3 ]] || PY3=python3
"$PY3" "$HERE/layers.py" "$HERE/../.." "$(dirname "$1")"
