#!/usr/bin/env bash
# test.sh: installs what is missing, builds with -Werror, and runs every test through ctest, then
# the fuzz targets, then every test again built with ASan and UBSan (build-san/, where any
# sanitizer report fails the run). Arguments go to both ctest runs; SANITIZE=0 skips the second.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test
cmake -S . -B build -DCONDUIT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure "$@"
../scripts/fuzz.sh    # libFuzzer targets, FUZZ_SECONDS each (SKIP line without clang)
cd ..

if [[ ${SANITIZE:-1} == 0 ]]; then
    echo "SKIP sanitizer suite: SANITIZE=0"
    exit 0
fi
start=$SECONDS
cmake -S . -B build-san -DCONDUIT_SANITIZE=ON -DCONDUIT_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-san -j"$(nproc)"
cd build-san
ctest --output-on-failure "$@"
echo "sanitizer suite (ASan, UBSan): build and ctest in $((SECONDS - start)) s"
