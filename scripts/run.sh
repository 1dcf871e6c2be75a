#!/usr/bin/env bash
# run.sh: installs what is missing, builds, and mounts conduitfs at ./mnt with state in ./state,
# in the foreground. Ctrl-C unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p mnt
if mountpoint -q mnt; then
    echo "run: ./mnt is already mounted; unmount it with: fusermount3 -u mnt" >&2
    exit 1
fi
echo "run: mounting at ./mnt (state in ./state); Ctrl-C to unmount"
exec build/conduitfs -f --state ./state "$@" ./mnt
