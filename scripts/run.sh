#!/usr/bin/env bash
# run.sh: installs what is missing, builds, and mounts conduitfs at ./mnt with state in ./state,
# in the foreground. Ctrl-C unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
# A mount left dead by a crash ("Transport endpoint is not connected") is detached first.
if ! stat mnt >/dev/null 2>&1 && [[ -n $(stat mnt 2>&1 | grep -i "not connected") ]]; then
    echo "run: ./mnt is a dead mount (the daemon is gone); detaching it" >&2
    fusermount3 -uz mnt
fi
mkdir -p mnt
if mountpoint -q mnt; then
    echo "run: ./mnt is already mounted; unmount it with: fusermount3 -u mnt" >&2
    exit 1
fi
echo "run: mounting at ./mnt (state in ./state); Ctrl-C to unmount"
exec build/conduitfs -f --state ./state "$@" ./mnt
