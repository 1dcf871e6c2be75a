#!/usr/bin/env bash
# test_portable.sh: what conduitfs seals verifies under both CPS references (issue 15). A second
# canonicalizer, ts_canon.py, follows the TypeScript reference's rules (JSON.stringify numbers,
# keys by UTF-16 code unit) and shares nothing with audit/canon.c (the Python reference's rules):
# over a chain of varied entries (setup, mount, registrations and updates with their
# certificates, a rotation, refusals of services/, monitor/ and audit/ changes, monitor targets
# and alerts with their measured values, a reload, deregistration, appends with every agreed
# kind of value, unmount) it must give every sealed capsule's bytes and hash, and it must still
# reproduce the 16 golden vectors. Then a chain sealed before the subset was enforced (an
# audit.log written before the chain existed, adopted as it stands; or, with
# CONDUIT_OLD_BINARY, one sealed by an older conduitfs): `conduitfs verify` names each capsule
# outside the subset in a warning and still exits 0, and ts_canon.py disagrees on exactly those.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${TEST_SHARED_DIR:-$HERE/../../../shared}
VECTORS=$SHARED/fixtures/cps-golden-vectors.json
LOG=$MNT/audit/audit.log

check "ts_canon.py reproduces the golden vectors" py3 "$HERE/ts_canon.py" golden "$VECTORS"

# ---- a chain of varied entries, the daemon's own among them ----
cfs_mount --alert-mem 1.5 --alert-disk 1.5 --domains internal,test
check "register web" mkdir "$S/web"
check "register api" mkdir "$S/api"
check "upstream" put "$S/web/upstream" "127.0.0.1:8080"
printf '127.0.0.1:8081\n127.0.0.1:8082\n' > "$T/ups"
check "two upstreams" put_file "$T/ups" "$S/api/upstream"
check "health path" put "$S/web/health_check" "/healthz"
check "domain change" put "$S/api/domain" "api2.test"
check_fails "a refused upstream" "Invalid argument" put "$S/web/upstream" "no port"
check_fails "a refused name" "Invalid argument" mkdir "$S/Bad_Name"
check "rotate a leaf" rm "$MNT/ca/certs/api2.test.pem"
check "add a target" mkdir "$MNT/monitor/box"
check_fails "a refused target.json" "Invalid argument" put "$MNT/monitor/box/target.json" \
    '{"ssh_host":"127.0.0.1","ssh_port":0}'
check "remove the target" rmdir "$MNT/monitor/box"
# the local server is over the 1.5 % disk threshold (its root file system holds at least the
# system): disk_high with its values (memory_high too where memory is over 1.5 % used)
check "read the local server" cat "$MNT/monitor/local/server.json"
check "appends with agreed values" py3 - "$LOG" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, ('{"action":"nums","status":"success","details":{"a":0.1,"b":4.35,"c":1e+22,'
              '"d":-17,"e":9007199254740991,"f":[0.0001,123456.789,-2.5e300],"g":null}}\n'
              '{"action":"texts","status":"failure","message":"caf\\u00e9 \\u2028",'
              '"details":{"\\ue000":"a\\tb","a":true,"\\uffff":false,'
              '"n":{"\\ud83d\\ude00":"\\ud83d\\ude00","\\ud800\\udc00":"x"}}}\n').encode())
os.close(fd)
EOF
check_fails "a refused append" "Invalid argument" bash -c "printf '%s\n' \
    '{\"action\":\"nope\",\"status\":\"success\",\"details\":{\"v\":1e-05}}' >> '$LOG'"
check "reload" kill -HUP "$CFS_PID"
check "deregister api" rmdir "$S/api"
check "deregister web (its leaf is left with no name: archived)" rmdir "$S/web"
for _ in $(seq 50); do grep -q '"config_reload"' "$STATE/audit.log" && break; sleep 0.1; done
cfs_unmount

want="cert_rotate change_refused conduit_mount conduit_setup conduit_unmount config_reload
monitor_alert monitor_target_add monitor_target_remove nums service_deregister
service_register service_update texts tls_archive tls_issue"
check_eq "the chain holds the varied entries" "$(jq -r .action "$STATE/audit.log" |
    LC_ALL=C sort -u | tr '\n' ' ')" "$(echo $want) "
check_eq "the disk alert carries its value" "$(jq -c 'select(.action == "monitor_alert") |
    .details.alert | select(.name == "disk_high") | [(.value | type), .threshold]' \
    "$STATE/audit.log")" '["number",1.5]'
check "every capsule canonicalizes alike under the TypeScript rules" \
    py3 "$HERE/ts_canon.py" chain "$STATE/capsules.db"
py3 "$HERE/ts_canon.py" chain "$STATE/capsules.db" | tail -1
check "the chain verifies" "$CONDUITFS" verify --state "$STATE"
check_eq "without a portability warning" \
    "$("$CONDUITFS" verify --state "$STATE" 2>&1 >/dev/null)" ""

# ---- a chain sealed before the subset: verify warns, exit status unchanged ----
OLD=$T/old
mkdir -m 700 "$OLD"
py3 - "$OLD/audit.log" <<'EOF'
import sys
lines = [
    ('conduit_setup', '{"state_dir":"/x"}'),
    ('legacy_int_real', '{"latency_s":2.0}'),
    ('legacy_fine', '{"v":4.35,"n":3}'),
    ('legacy_tiny', '{"a":[{"b":1e-05}]}'),
    ('legacy_keys', '{"k":{"\\ud83d\\ude00":1,"\\ue000":2}}'),
    ('legacy_big', '{"id":9007199254740993}'),
]
with open(sys.argv[1], "w") as f:
    for i, (a, d) in enumerate(lines):
        f.write('{"timestamp":"2025-01-0%dT00:00:00Z","action":"%s","status":"success",'
                '"message":"","user":"root","details":%s}\n' % (i + 1, a, d))
EOF
STATE=$OLD cfs_mount
cfs_unmount
if [[ -x ${CONDUIT_OLD_BINARY:-} ]]; then
    # the same kinds sealed by an older conduitfs, which accepted them
    mkdir -p "$T/oldbin"
    "$CONDUIT_OLD_BINARY" -f --no-manage --state "$T/oldbin" "$MNT" 2>>"$T/conduitfs.log" &
    CFS_PID=$!
    for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
    printf '%s\n' '{"action":"old_real","status":"success","details":{"v":2.0}}' >> "$LOG"
    cfs_unmount
    check "the older binary's chain verifies" "$CONDUITFS" verify --state "$T/oldbin"
    check "...with a warning for its 2.0" grep -q "warning: sequence 2 is outside the \
portable subset: capsule.execution.tool_calls\[0\].arguments.v: an integral real" \
        <("$CONDUITFS" verify --state "$T/oldbin" 2>&1)
fi
"$CONDUITFS" verify --state "$OLD" > "$T/v.out" 2> "$T/v.err"
check_eq "verify exits 0 on the old chain" "$?" 0
n=$(wc -l < "$OLD/audit.log")   # the 6 adopted lines, conduit_mount, conduit_unmount
check "...and says ok" grep -q "^ok: $n entries" "$T/v.out"
check_eq "one warning for each capsule outside the subset" "$(grep -c 'warning: sequence' \
    "$T/v.err")" 4
W="conduitfs verify: warning: sequence"
A="capsule.execution.tool_calls[0].arguments"
check "warning: 2.0" grep -qF "$W 1 is outside the portable subset: $A.latency_s: an integral \
real (Python writes 2.0, JavaScript 2)" "$T/v.err"
check "warning: 1e-05" grep -qF "$W 3 is outside the portable subset: $A.a[0].b: a real in \
exponent form for one reference only (Python writes 1e-05, JavaScript 0.00001)" "$T/v.err"
check "warning: keys" grep -qF "$W 4 is outside the portable subset: $A.k: keys that mix" \
    "$T/v.err"
check "warning: big integer" grep -qF "$W 5 is outside the portable subset: $A.id: an integer \
beyond +-(2^53-1)" "$T/v.err"
check "a summary line" grep -qF "warning: 4 of $n capsules hold values outside the portable \
subset" "$T/v.err"
py3 "$HERE/ts_canon.py" chain "$OLD/capsules.db" > "$T/ts.out"
check_eq "ts_canon.py disagrees on exactly those capsules" \
    "$(grep -o '^capsule [0-9]*' "$T/ts.out" | tr '\n' ' ')" \
    "capsule 1 capsule 3 capsule 4 capsule 5 "
finish
