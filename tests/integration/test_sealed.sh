#!/usr/bin/env bash
# test_sealed.sh: acknowledged means audited. (1) With the chain database locked by another
# process, a write and a mkdir fail with EIO after the store's busy timeout and change nothing:
# services.json, the configs and the mount as they were, no capsule. (2) kill -9 storm: after
# each kill and remount every change in services.json is explained by the chain: `conduitfs
# verify` passes, and replaying the chain (`conduitfs recover` on a copy without services.json)
# gives services.json back byte for byte, a change sealed but never committed included.
source "$(dirname "$0")/lib.sh"
ROUNDS=${SEALED_ROUNDS:-6}

# ---- (1) a chain that cannot seal refuses the change ----
cfs_mount
mkdir "$S/locked"
put "$S/locked/upstream" "10.0.0.1:80"
before=$(configs_digest)
lines=$(wc -l < "$STATE/audit.log")
py3 -c 'import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.time() + 40
while not os.path.exists(sys.argv[3]) and time.time() < end:
    time.sleep(0.1)
db.execute("ROLLBACK")' "$STATE/capsules.db" "$T/locked" "$T/release" &
locker=$!
wait_for 10 test -e "$T/locked"
rc_put=0; rc_mk=0
( printf '10.0.0.2:80\n' > "$S/locked/upstream" ) 2>"$T/put.err" & put_pid=$!
mkdir "$S/newone" 2>"$T/mk.err" || rc_mk=$?
wait "$put_pid" || rc_put=$?
touch "$T/release"
wait "$locker"
check_eq "locked chain: the write fails" "$rc_put" "1"
check "locked chain: with EIO ($(head -c 80 "$T/put.err"))" grep -q "Input/output error" \
    "$T/put.err"
check_eq "locked chain: the mkdir fails" "$rc_mk" "1"
check "locked chain: mkdir with EIO ($(head -c 80 "$T/mk.err"))" grep -q "Input/output error" \
    "$T/mk.err"
check_eq "locked chain: services.json and the configs unchanged" "$(configs_digest)" "$before"
check_eq "locked chain: the mount shows the old state" \
    "$(cat "$S/locked/upstream"; ls "$S" | tr '\n' ' ')" "$(printf '10.0.0.1:80\nlocked ')"
check_eq "locked chain: no capsule sealed" "$(wc -l < "$STATE/audit.log")" "$lines"
check "unlocked: the write works" put "$S/locked/upstream" "10.0.0.2:80"
check "unlocked: the change is audited" grep -q '"new":"10.0.0.2:80"' "$STATE/audit.log"
check "unlocked: verify passes" "$CONDUITFS" verify --state "$STATE"

# ---- (2) kill -9 storm ----
# worker K: registers, writes and deregisters its own names w<K>-<i> until the mount dies.
worker() {
    local k=$1 end=$((SECONDS + 10)) i n
    while ((SECONDS < end)) && [[ ! -e $T/killed ]]; do
        i=$((RANDOM % 5 + 1)); n=w$k-$i
        case $((RANDOM % 6)) in
        0|1) mkdir "$S/$n" ;;
        2|3) printf '10.%d.%d.%d:%d\n' "$k" "$i" $((RANDOM % 250 + 1)) $((RANDOM % 9000 + 1)) \
                 > "$S/$n/upstream" ;;
        4) printf '%s-v%d.internal\n' "$n" "$RANDOM" > "$S/$n/domain" ;;
        5) rmdir "$S/$n" ;;
        esac
    done 2>/dev/null
}
explained=0
for round in $(seq 1 "$ROUNDS"); do
    rm -f "$T/killed"
    pids=()
    for k in 1 2 3 4; do worker "$k" & pids+=($!); done
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.3 + (r % 900) / 1000 }')"
    touch "$T/killed"
    kill -9 "$CFS_PID"
    wait "${pids[@]}" 2>/dev/null
    wait "$CFS_PID" 2>/dev/null; CFS_PID=
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
    if ! cfs_mount; then
        bad "round $round: remount after kill -9 failed"
        break
    fi
    cfs_unmount
    if ! "$CONDUITFS" verify --state "$STATE" >/dev/null 2>"$T/verify.err"; then
        bad "round $round: verify: $(head -c 200 "$T/verify.err")"
        cfs_mount
        continue
    fi
    rm -rf "$T/copy"
    cp -a "$STATE" "$T/copy"
    rm "$T/copy/services.json"
    if "$CONDUITFS" recover --state "$T/copy" >/dev/null 2>"$T/recover.err" &&
       cmp -s "$STATE/services.json" "$T/copy/services.json"; then
        explained=$((explained + 1))
    else
        bad "round $round: the chain does not rebuild services.json: $(head -c 200 \
            "$T/recover.err")"
    fi
    cfs_mount
done
check_eq "kill -9 storm: every round's services.json is explained by the chain" \
    "$explained" "$ROUNDS"
echo "kill -9 storm: $ROUNDS kills, $(grep -c '"registry_abort"' "$STATE/audit.log")" \
    "sealed changes marked not committed, $(jq '[.services[] | select(.status != "inactive")]
    | length' "$STATE/services.json") live services at the end"
check "storm: some changes were made" test "$(grep -c '"registry":' "$STATE/audit.log")" -gt 10
finish
