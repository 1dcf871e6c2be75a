#!/usr/bin/env bash
# bench.sh: prints one table: sealed audit appends per second through a fresh mount (1 and 8
# writers) next to raw fsync'd appends on the same disk. The rows take turns in every round, so
# they see the same disk; each row shows the median and the p99 over the rounds.
#
# usage: scripts/bench.sh [path/to/conduitfs]     (default build/conduitfs, built if missing)
# env:   ROUNDS (default 15), N appends per writer per run (default 200), BENCH_DIR (default
#        /tmp: where the state, the mount and the raw file live)
#
# To add a row: write a function row_NAME that runs one measurement and prints "OPS SECONDS",
# then add NAME and its label to ROWS and LABELS below.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-build/conduitfs}
ROUNDS=${ROUNDS:-15}
N=${N:-200}

if [[ ! -x "$BIN" ]]; then
    cmake -S . -B build >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    BIN=build/conduitfs
fi
BIN=$(readlink -f "$BIN")
W=$(mktemp -d "${BENCH_DIR:-/tmp}/conduit-bench.XXXXXX")
MNT=$W/mnt
PID=

cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" || true; fi
    if [[ -n "$PID" ]]; then wait "$PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT

# The load driver: WRITERS processes, each with its file open once, append N lines with one
# write(2) each (mode fsync: and fsync after each); released together, timed until all are done.
cat > "$W/drive.py" <<'EOF'
import os, sys, time
mode, path, writers, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
line = '{"action":"bench","status":"success","message":"w%d-%d"}\n'
r, w = os.pipe()
ready_r, ready_w = os.pipe()
pids = []
for k in range(writers):
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(ready_w, b"r")
        os.read(r, 1)
        for i in range(n):
            os.write(fd, (line % (k, i)).encode())
            if mode == "fsync":
                os.fsync(fd)
        os._exit(0)
    pids.append(pid)
for _ in range(writers):
    os.read(ready_r, 1)
t0 = time.perf_counter()
os.write(w, b"g" * writers)
bad = 0
for p in pids:
    bad += os.waitpid(p, 0)[1] != 0
dt = time.perf_counter() - t0
if bad:
    sys.exit("%d writer(s) failed" % bad)
print(writers * n, "%.6f" % dt)
EOF
drive() { python3 "$W/drive.py" "$@"; }

# ---- rows: each prints "OPS SECONDS" for one run ----
row_sealed_1() { drive write "$MNT/audit/audit.log" 1 "$N"; }
row_sealed_8() { drive write "$MNT/audit/audit.log" 8 "$N"; }
row_raw_1()    { drive fsync "$W/raw.log" 1 "$N"; }
row_raw_8()    { drive fsync "$W/raw.log" 8 "$N"; }

ROWS=(sealed_1 sealed_8 raw_1 raw_8)
declare -A LABELS=(
    [sealed_1]="sealed append via audit/audit.log, 1 writer"
    [sealed_8]="sealed append via audit/audit.log, 8 writers"
    [raw_1]="raw append + fsync, same disk, 1 writer"
    [raw_8]="raw append + fsync, same disk, 8 writers"
)

# ---- run ----
mkdir -p "$MNT"
"$BIN" -f --state "$W/state" "$MNT" 2>"$W/conduitfs.log" &
PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
if ! mountpoint -q "$MNT"; then
    echo "bench: mount failed:" >&2
    cat "$W/conduitfs.log" >&2
    exit 1
fi

for row in "${ROWS[@]}"; do "row_$row" > /dev/null; done   # warm-up, not counted
for round in $(seq "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
        "row_$row" >> "$W/$row.samples"
    done
    printf '\rbench: round %d/%d' "$round" "$ROUNDS" >&2
done
printf '\r%*s\r' 40 '' >&2

# Median and p99 (nearest rank) of the run times, as appends per second: the p99 column is the
# slow tail, the rate of the run that only 1% of runs were slower than.
stats() {
    sort -g -k2 "$1" | awk '{ ops = $1; t[NR] = $2 } END {
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        k = int(0.99 * NR); if (k < 0.99 * NR) k++
        printf "%d %d %.0f %.0f\n", NR, ops, ops / m, ops / t[k] }'
}

fs=$(df -PT "$W" | awk 'NR == 2 { print $1 " (" $2 ")" }')
printf 'conduitfs %s, state and raw file on %s, %s rounds\n\n' \
    "$("$BIN" --version | awk '{ print $2 }')" "$fs" "$ROUNDS"
printf '%-48s %5s %8s %12s %12s\n' "row" "runs" "ops/run" "median/s" "p99/s"
printf '%-48s %5s %8s %12s %12s\n' "$(printf '%.0s-' {1..48})" "-----" "--------" \
    "------------" "------------"
for row in "${ROWS[@]}"; do
    read -r runs ops med p99 < <(stats "$W/$row.samples")
    printf '%-48s %5d %8d %12d %12d\n' "${LABELS[$row]}" "$runs" "$ops" "$med" "$p99"
done
check=$("$BIN" verify --state "$W/state" 2>&1 || true)
printf '\nafter the run: %s\n' "${check%%, hash*}"
