#!/usr/bin/env bash
# test.sh: installs what is missing, builds with -Werror, and runs every test through ctest, then
# the fuzz targets (FUZZ_SECONDS each, 15 here), then every test again built with ASan and UBSan
# (build-san/, where any sanitizer report fails the run; the storm there is shorter: 8 s and 100
# requests per protocol). ctest runs two tests at a time, but those CMakeLists.txt marks
# RUN_SERIAL alone. Arguments go to both ctest runs; SANITIZE=0 skips the second.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test
cmake -S . -B build -DCONDUIT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j2 "$@"
# libFuzzer targets, FUZZ_SECONDS each (SKIP line without clang)
FUZZ_SECONDS=${FUZZ_SECONDS:-15} ../scripts/fuzz.sh
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
STORM_SECONDS=${STORM_SECONDS:-8} TRAFFIC_REQUESTS=${TRAFFIC_REQUESTS:-100} \
    ctest --output-on-failure -j2 "$@"
echo "sanitizer suite (ASan, UBSan): build and ctest in $((SECONDS - start)) s"
