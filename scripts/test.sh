#!/usr/bin/env bash
# test.sh: installs what is missing, builds with -Werror, and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test
cmake -S . -B build -DCONDUIT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure "$@"
../scripts/fuzz.sh    # libFuzzer targets, FUZZ_SECONDS each (SKIP line without clang)
