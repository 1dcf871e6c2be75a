#!/usr/bin/env bash
# fuzz.sh: builds every libFuzzer target (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan into
# build-fuzz/, and runs each for FUZZ_SECONDS (default 30), FUZZ_JOBS at a time (default: the
# number of cores), on a temp copy of its seed corpus (tests/fuzz/corpus/<target>/, never grown
# in place) with its dictionary (tests/fuzz/<target>.dict) when there is one. Any crash, leak,
# sanitizer report or timeout fails the run; the reproducer is kept in build-fuzz/crashes/.
# Without clang (and not root, or the install fails) it prints a SKIP line and exits 0.
#
# usage: scripts/fuzz.sh [TARGET...]        (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc)}
BUILD=build-fuzz

# A compiler that can link a libFuzzer binary with both sanitizers.
fuzz_toolchain_ok() {
    command -v clang >/dev/null || return 1
    local d
    d=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        > "$d/t.c"
    clang -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" 2>/dev/null
    local rc=$?
    rm -rf "$d"
    return $rc
}

if ! fuzz_toolchain_ok; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "fuzz: installing clang and its sanitizer runtimes"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends clang \
            libclang-rt-14-dev; } >/dev/null 2>&1 || true
    fi
    if ! fuzz_toolchain_ok; then
        echo "SKIP fuzz: clang not available"
        exit 0
    fi
fi

if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for src in tests/fuzz/fuzz_*.c; do
        [[ -e $src ]] && targets+=("$(basename "$src" .c)")
    done
fi
if ((${#targets[@]} == 0)); then
    echo "fuzz: no targets in tests/fuzz/"
    exit 0
fi

cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCONDUIT_FUZZ=ON -DCONDUIT_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" >/dev/null

W=$(mktemp -d /tmp/conduit-fuzz.XXXXXX)
trap 'rm -rf "$W"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Run one target; its log goes to $W/<target>.log, its status to $W/<target>.rc.
run_one() {
    local t=$1 dict=()
    mkdir -p "$W/corpus/$t" "$W/art/$t"
    if [[ -d tests/fuzz/corpus/$t ]]; then
        cp -r "tests/fuzz/corpus/$t/." "$W/corpus/$t/"
    fi
    [[ -f tests/fuzz/$t.dict ]] && dict=("-dict=tests/fuzz/$t.dict")
    set +e
    "$BUILD/$t" -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$W/art/$t/" "${dict[@]}" "$W/corpus/$t" \
        >"$W/$t.log" 2>&1
    echo $? > "$W/$t.rc"
    set -e
}

running=0
for t in "${targets[@]}"; do
    if [[ ! -x $BUILD/$t ]]; then
        echo "fuzz: $t was not built" >&2
        exit 1
    fi
    run_one "$t" &
    running=$((running + 1))
    if ((running >= FUZZ_JOBS)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
mkdir -p "$BUILD/crashes"
for t in "${targets[@]}"; do
    rc=$(cat "$W/$t.rc" 2>/dev/null || echo 99)
    runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$W/$t.log")
    if [[ $rc -eq 0 ]]; then
        echo "fuzz: $t: ok, ${runs:-?} runs in ${FUZZ_SECONDS}s"
        grep '^NOTE fuzz' "$W/$t.log" | head -3 || true
        continue
    fi
    failed=$((failed + 1))
    echo "fuzz: $t: FAILED (exit $rc)"
    grep -E '^(==[0-9]+==|SUMMARY|    #[0-9]+ .* in [^_])' "$W/$t.log" | head -25 || true
    for a in "$W/art/$t"/*; do
        [[ -e $a ]] || continue
        cp "$a" "$BUILD/crashes/$t-$(basename "$a")"
        echo "fuzz: reproduce with: $BUILD/$t $BUILD/crashes/$t-$(basename "$a")"
    done
done
echo "fuzz: ${#targets[@]} targets, $failed failed"
((failed == 0))
