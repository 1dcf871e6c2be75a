#!/usr/bin/env bash
# test_audit_limits.sh: issue 12. An append to audit/audit.log is all-or-nothing: a write(2)
# over the limit of 1 MiB - 4 KiB fails with EFBIG in its first FUSE piece, whatever the buffer's
# alignment, and seals nothing; one up to the limit is never split. Concurrent readers of
# audit/verify share one verification, kept until the trail changes. A remount verifies only what
# came after the signed checkpoint, and a checkpoint that does not fit is ignored.
source "$(dirname "$0")/lib.sh"
cfs_mount
A=$MNT/audit
LOG=$A/audit.log
LIMIT=$((1048576 - 4096))
W="$PY3 $(dirname "$0")/append_write.py"

head_seq() { jq -r .sequence "$A/head"; }
lines() { wc -l < "$STATE/audit.log"; }

# ---- the append limit ----
printf '%s\n' '{"action":"start","status":"success"}' >> "$LOG"
for off in 0 1 2048 4095; do
    n=$(lines)
    check_eq "exactly the limit from page offset $off: written" "$($W "$LOG" $LIMIT $off)" \
        "ok $LIMIT"
    check_eq "exactly the limit from page offset $off: 1020 lines" "$(($(lines) - n))" "1020"
done
# check_refused WHAT ERRNO WRITER-ARGS...: the write ($W on $LOG) fails with ERRNO and leaves
# the head and the log as they were.
check_refused() {
    local what=$1 want=$2 h n
    shift 2
    h=$(head_seq); n=$(lines)
    check_eq "$what: $want" "$($W "$LOG" "$@")" "$want"
    check_eq "$what: head unchanged" "$(head_seq)" "$h"
    check_eq "$what: no line" "$(lines)" "$n"
}
# the largest write that is certain to arrive in one piece, with a bad last line: nothing sealed
for off in 0 4095; do
    check_refused "the limit with a bad last line (offset $off)" EINVAL $LIMIT $off badlast
done
for spec in "$((LIMIT + 1)) 0" "$((LIMIT + 1)) 1" "$((LIMIT + 1)) 4095" "$((LIMIT + 4095)) 4095" \
            "1048576 0" "1048577 0" "1048577 4095" "2097152 0" "2097152 4095" "3145728 17"; do
    set -- $spec
    check_refused "$1 bytes from page offset $2" EFBIG "$1" "$2"
done
for off in 0 4095; do
    check_refused "1024 good lines then a bad one (offset $off)" EFBIG 0 $off issue
done
check_eq "lines match capsules" "$(head_seq)" "$(($(lines) - 1))"

# ---- audit/verify: one run for concurrent readers, kept until the trail changes ----
runs() { grep -c "audit: verify run" "$T/conduitfs.log"; }
r0=$(runs)
pids=()
for k in $(seq 12); do cat "$A/verify" > "$T/v.$k" & pids+=($!); done
wait "${pids[@]}"
check_eq "12 parallel readers: one verification" "$(($(runs) - r0))" "1"
check_jq "12 parallel readers: the report is ok" '.ok == true and .first_error == null' "$T/v.1"
check_eq "12 parallel readers: the same report" "$(cat "$T"/v.* | sort -u | wc -l)" "1"
check_eq "the report counts every line" "$(jq .entries "$T/v.1")" "$(lines)"
check "a later reader gets the kept report" cmp "$T/v.1" "$A/verify"
check_eq "still one verification" "$(($(runs) - r0))" "1"
printf '%s\n' '{"action":"after","status":"success"}' >> "$LOG"
check_eq "after an append: a new report" "$(jq .entries "$A/verify")" "$(lines)"
check_eq "after an append: a second verification" "$(($(runs) - r0))" "2"
check "verify wrote a checkpoint" test -s "$STATE/audit.checkpoint"
check_eq "the checkpoint is at the head" "$(jq .sequence "$STATE/audit.checkpoint")" \
    "$(head_seq)"
check_eq "checkpoint is 0600" "$(stat -c %a "$STATE/audit.checkpoint")" "600"

# ---- a remount verifies only what came after the checkpoint: the capsules before it are tied to
# it, not verified again (below: an edit there is found by audit/verify, not at mount) ----
cp_seq=$(jq .sequence "$STATE/audit.checkpoint")
for i in 1 2 3; do printf '%s\n' '{"action":"tail","status":"success"}' >> "$LOG"; done
last=$(head_seq)
cfs_unmount
cp -a "$STATE" "$T/base"
cfs_mount
# the head at the remount is the unmount's own conduit_unmount entry, one after $last
check_eq "remount: a new checkpoint at the head" "$(jq .sequence "$STATE/audit.checkpoint")" \
    "$((last + 1))"
check_jq "remount: verify passes" '.ok == true' "$A/verify"
cfs_unmount

refuse() {   # refuse NAME TEXT: mounting $T/t must exit 2 with one line saying TEXT
    timeout 60 "$CONDUITFS" -f --no-manage --state "$T/t" "$MNT" >"$T/out" 2>&1
    check_eq "refused ($1): exit 2" "$?" "2"
    check "refused ($1): says '$2'" grep -q -- "$2" "$T/out"
    check_eq "refused ($1): one line" "$(wc -l < "$T/out")" "1"
    mountpoint -q "$MNT" && fusermount3 -u "$MNT"
}
fresh() { rm -rf "$T/t"; cp -a "$T/base" "$T/t"; }
sqlt() { "$PY3" -c "import sqlite3, sys
db = sqlite3.connect('$T/t/capsules.db'); db.execute(sys.argv[1]); db.commit()" "$1"; }
# tampering after the checkpoint is found at mount
fresh
sqlt "UPDATE capsules SET data = replace(data, '\"tail\"', '\"evil\"') WHERE sequence = $last"
refuse "a capsule after the checkpoint edited" "sequence $last:"
fresh; sed -i "\$s/\"success\"/\"failure\"/" "$T/t/audit.log"
refuse "the last log line edited" "sequence $((last + 1)):"
# the log before the checkpoint is covered by its SHA-256: the full check names the line
fresh; sed -i '3s/"status":"success"/"status":"failure"/' "$T/t/audit.log"
refuse "a log line before the checkpoint edited" "sequence 2:"
fresh; sqlt "DELETE FROM capsules WHERE sequence = 5"
refuse "a row before the checkpoint deleted" "sequence 5:"
# a checkpoint that does not fit is ignored, and the whole chain is verified
mount_t() { STATE=$T/t cfs_mount; }
fresh; jq -c ".sequence = 3" "$T/base/audit.checkpoint" > "$T/t/audit.checkpoint"
check "a forged checkpoint: the mount works" mount_t
check "a forged checkpoint: ignored" grep -q "checkpoint did not apply: .*signature" \
    "$T/conduitfs.log"
check_jq "a forged checkpoint: verify passes" '.ok == true' "$A/verify"
cfs_unmount
fresh; sqlt "DELETE FROM capsules WHERE sequence > $cp_seq - 2"
head -n "$((cp_seq - 1))" "$T/base/audit.log" > "$T/t/audit.log"
check "a chain shorter than its checkpoint: the mount works" mount_t
# what is left, and this mount's own conduit_mount entry after it
check_eq "a chain shorter than its checkpoint: its head" "$(head_seq)" "$((cp_seq - 1))"
cfs_unmount
# documented: a capsule before the checkpoint is verified by audit/verify and conduitfs verify,
# not at mount
fresh; sqlt "UPDATE capsules SET data = replace(data, '\"conduit\"', '\"evil\"') WHERE sequence = 5"
check "a capsule before the checkpoint edited: the mount works" mount_t
check_jq "a capsule before the checkpoint edited: audit/verify finds it" \
    '.ok == false and .first_error.sequence == 5' "$A/verify"
cfs_unmount
check_fails "a capsule before the checkpoint edited: conduitfs verify finds it" "sequence 5:" \
    "$CONDUITFS" verify --state "$T/t"
finish
