#!/usr/bin/env bash
# test_monitor_refusals.sh: every refused change of monitor/ says why (issue 13 item 3): a mkdir
# of a bad target name, an rmdir of local or of a service's directory, and each kind of bad
# target.json write (bad JSON, an unknown key, a bad host, user, port or types, a refused
# ssh_key, too large, a write at an offset) is one sealed change_refused failure entry naming
# the path, the caller and the reason, plus one "monitor: refused a change of PATH by USER:
# REASON" log line; the target stays as it was. The conduit-* commands' cl_try prints the
# reason. A loop of 200 bad writes grows the audit log by 200 entries and nothing else: no state
# file, no descriptor, at most ten log lines a second.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cfs_mount --domains internal,test
M=$MNT/monitor
EINVAL="Invalid argument"; EFBIG="File too large"; EPERM="Operation not permitted"
EACCES="Permission denied"

printf 'not a real key\n' > "$T/key"; chmod 600 "$T/key"
tj() { printf '{"ssh_host":"%s","ssh_user":"%s","ssh_key":"%s"%s}' "$@"; }
mkdir "$M/tgt" "$S/web"
put "$S/web/monitoring" '{"type":"container","container_name":"web"}'
put "$M/tgt/target.json" "$(tj 127.0.0.1 root "$T/key" '')"
targets_before=$(sha256sum < "$STATE/monitoring/targets.json")
tgt_before=$(cat "$M/tgt/target.json")
TJ=monitor/tgt/target.json

# refused DESCRIPTION ERRNO-TEXT PATH OPERATION REASON-REGEX COMMAND...: the command fails with
# ERRNO-TEXT and adds exactly one audit line: a change_refused failure by root for PATH whose
# reason matches, and the daemon's log says the same.
refused() {
    local what=$1 errtext=$2 path=$3 op=$4 re=$5 lines
    shift 5
    lines=$(wc -l < "$STATE/audit.log")
    check_fails "$what" "$errtext" "$@"
    tail -n +$((lines + 1)) "$STATE/audit.log" > "$T/new.log"
    check_eq "$what: one audit line" "$(wc -l < "$T/new.log")" 1
    check_jq "$what: change_refused of $path by root, saying why" \
        --arg p "$path" --arg o "$op" --arg r "$re" --arg e "$errtext" \
        '.action == "change_refused" and .status == "failure" and .user == "root" and
         .details.path == $p and .details.operation == $o and .details.error == $e and
         (.details.reason | test($r)) and (.message | startswith("Refused " + $p + ": "))' \
        "$T/new.log"
    local reason
    reason=$(jq -r .details.reason "$T/new.log" 2>/dev/null)
    check "$what: the log line says why" \
        grep -qF "monitor: refused a change of $path by root: $reason" "$T/conduitfs.log"
}
# check_jq with jq arguments before the filter
check_jq() {
    local what=$1; shift
    local file=${*: -1}
    if jq -e "${@:1:$#-1}" "$file" >/dev/null 2>"$T/err"; then ok; else
        bad "$what: false for: $(head -c 600 "$file")"; fi
}

refused "mkdir of a bad name" "$EINVAL" monitor/Bad_Name monitor_target_add . \
    mkdir "$M/Bad_Name"
refused "mkdir of a name with a newline" "$EINVAL" "monitor/a?b" monitor_target_add . \
    mkdir "$M/a"$'\n'"b"
refused "rmdir of local" "$EPERM" monitor/local monitor_target_remove "this host's own" \
    rmdir "$M/local"
refused "rmdir of a service's directory" "$EPERM" monitor/web monitor_target_remove \
    "is not a target" rmdir "$M/web"
refused "bad JSON" "$EINVAL" $TJ monitor_target_update "not one JSON document" \
    put "$M/tgt/target.json" '{"ssh_host":'
refused "not an object" "$EINVAL" $TJ monitor_target_update "not a JSON object" \
    put "$M/tgt/target.json" '[1]'
refused "an unknown key" "$EINVAL" $TJ monitor_target_update "unknown key" \
    put "$M/tgt/target.json" "$(tj h root "$T/key" ',"evil":1')"
refused "a bad host" "$EINVAL" $TJ monitor_target_update "^ssh_host is not" \
    put "$M/tgt/target.json" "$(tj -oProxyCommand=id root "$T/key" '')"
refused "a bad user" "$EINVAL" $TJ monitor_target_update "^ssh_user is not a user name" \
    put "$M/tgt/target.json" "$(tj h Root "$T/key" '')"
# the log says ten refusals a second and counts the rest: the first batch stays under that
sleep 1.1
refused "a bad port" "$EINVAL" $TJ monitor_target_update "^ssh_port is not an integer 1-65535" \
    put "$M/tgt/target.json" "$(tj h root "$T/key" ',"ssh_port":70000')"
refused "bad types" "$EINVAL" $TJ monitor_target_update "^types is not" \
    put "$M/tgt/target.json" "$(tj h root "$T/key" ',"types":["disk"]')"
refused "a missing key file" "$EACCES" $TJ monitor_target_update "^ssh_key names no file" \
    put "$M/tgt/target.json" "$(tj h root "$T/missing" '')"
refused "a key inside the state directory" "$EACCES" $TJ monitor_target_update \
    "^ssh_key is in no allowed place" \
    put "$M/tgt/target.json" "$(tj h root "$STATE/services.json" '')"
refused "a key that is not a regular file" "$EINVAL" $TJ monitor_target_update \
    "^ssh_key is not a regular file" put "$M/tgt/target.json" "$(tj h root /dev/null '')"
head -c 5000 /dev/zero | tr '\0' ' ' > "$T/big"
refused "too large" "$EFBIG" $TJ monitor_target_update "longer than 4096 bytes" \
    put_file "$T/big" "$M/tgt/target.json"
tj h root "$T/key" '' > "$T/v"
refused "a write at an offset" "$EINVAL" $TJ monitor_target_update "at offset 0" \
    dd if="$T/v" of="$M/tgt/target.json" oflag=seek_bytes seek=3 conv=notrunc status=none

check_eq "target table unchanged" "$(sha256sum < "$STATE/monitoring/targets.json")" \
    "$targets_before"
check_eq "target.json unchanged" "$(cat "$M/tgt/target.json")" "$tgt_before"
check_eq "no target was made" "$(ls "$M" | tr '\n' ' ')" "health.json local metrics.prom tgt web "

# the conduit-* commands' error path (cl_try) prints the reason of a refused mkdir
out=$(CONDUIT_MOUNT=$MNT bash -c '. "$1/conduit-lib.sh"
    cl_try monitor/Bad_Name mkdir "$M/monitor/Bad_Name" || printf "%s\n" "$CL_ERR"' \
    _ "$HERE/../../scripts" 2>&1)
why=$(tail -n 1 "$STATE/audit.log" | jq -r .details.reason)
check_eq "cl_try prints the reason" "$out" "monitor/Bad_Name: $EINVAL ($why)"

# a loop of 200 bad writes: 200 audit entries, nothing else grows (audit.log and its sealed
# store, capsules.db, are the audit log)
listing() {
    (cd "$STATE" && find . -path ./audit.log -prune -o -path './capsules.db*' -prune -o \
        -printf '%p %s\n' | sort)
}
files_before=$(listing)
fds_before=$(ls /proc/"$CFS_PID"/fd | wc -l)
loglines=$(wc -l < "$T/conduitfs.log")
lines=$(wc -l < "$STATE/audit.log")
for _ in $(seq 200); do put "$M/tgt/target.json" '{"ssh_host":"h","ssh_port":0}' 2>/dev/null; done
check_eq "200 bad writes, 200 change_refused entries" \
    "$(tail -n +$((lines + 1)) "$STATE/audit.log" | jq -c 'select(.action == "change_refused"
        and .details.path == "monitor/tgt/target.json")' | wc -l)" 200
check_eq "and no other audit line" "$(($(wc -l < "$STATE/audit.log") - lines))" 200
check "fewer than 200 log lines (ten a second at most)" \
    test "$(($(wc -l < "$T/conduitfs.log") - loglines))" -lt 200
check_eq "no state file changed or appeared" "$(listing)" "$files_before"
check_eq "no descriptor kept" "$(ls /proc/"$CFS_PID"/fd | wc -l)" "$fds_before"
check_eq "target.json still unchanged" "$(cat "$M/tgt/target.json")" "$tgt_before"
finish
