#!/usr/bin/env bash
# test_supervisor.sh: the supervisor with real dnsmasq and Caddy.
# 1. Orphans: the watchdogs die with the daemon (as with pkill -9 -f conduitfs), so Caddy and
#    dnsmasq outlive it; a remount of the same state stops them (pid files in state/run/), the
#    new mount's admin socket has a name of its own, and changes work, also after the old Caddy
#    is gone (its exit used to remove the new Caddy's admin socket: EIO until a remount).
# 2. A dnsmasq that cannot bind its port is restarted with an exponential backoff: the first
#    failure and the recovery are audited, not every retry.
# Runs in a network namespace of its own when it can, like test_gateway.sh.
CFS_NETNS=own
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
need_tools caddy dnsmasq dig curl python3

UP1=$(free_port)
UP2=$(free_port)
"$PY3" "$HERE/upstream.py" "$UP1" one >/dev/null 2>&1 &
UP1_PID=$!
"$PY3" "$HERE/upstream.py" "$UP2" two >/dev/null 2>&1 &
UP2_PID=$!
HOLD_PID=
OLD=()
cleanup_all() {
    kill "$UP1_PID" "$UP2_PID" ${HOLD_PID:+"$HOLD_PID"} 2>/dev/null
    # the orphans of part 1, if a daemon under test left them (by pid, started by this test)
    for p in "${OLD[@]}"; do kill -9 "$p" 2>/dev/null; done
    fusermount3 -uz "$MNT" 2>/dev/null
    cfs_cleanup
}
trap cleanup_all EXIT
wait_for 10 curl -s "127.0.0.1:$UP1/health"
wait_for 10 curl -s "127.0.0.1:$UP2/health"

DNS_PORT=$(free_port)
HTTPS_PORT=$(free_port)
mount_it() { CFS_MANAGED=1 cfs_mount --dns-listen "127.0.0.1:$DNS_PORT" \
    --https-listen "127.0.0.1:$HTTPS_PORT"; }
get() {
    curl -sS --max-time 5 --cacert "$MNT/ca/ca.crt" \
        --resolve "web.internal:$HTTPS_PORT:127.0.0.1" "https://web.internal:$HTTPS_PORT/"
}
dns_up() { dig @127.0.0.1 -p "$DNS_PORT" +time=1 +tries=1 nope.internal | grep -q 'status:'; }
caddy_pid() { pgrep -f "caddy run --config $STATE/routing/caddy.json"; }
dnsmasq_pid() { pgrep -f "dnsmasq --keep-in-foreground --conf-file=$STATE/dns"; }
# whether pid $1 runs (a zombie, which has an empty cmdline, does not)
alive() { [[ -n "$1" && -n "$(tr -d '\0' < "/proc/$1/cmdline" 2>/dev/null)" ]]; }
gone() { ! alive "$1"; }
count() { grep -c "$1" "$STATE/audit.log"; }

# --- 1. orphans after the watchdogs die with the daemon ---------------------------------------
mount_it
check "register web" mkdir "$S/web"
check "upstream one" put "$S/web/upstream" "127.0.0.1:$UP1"
check_eq "served through the gateway" "$(get)" "hello from one"
check "dnsmasq answers" wait_for 10 dns_up
old_caddy=$(caddy_pid)
old_dnsmasq=$(dnsmasq_pid)
OLD=($old_caddy $old_dnsmasq)
old_sock=$(cd "$STATE/caddy" && ls -- *.sock 2>/dev/null)
check "pid file of caddy" test "$(cat "$STATE/run/caddy.pid" 2>/dev/null)" = "$old_caddy"
check "pid file of dnsmasq" test "$(cat "$STATE/run/dnsmasq.pid" 2>/dev/null)" = "$old_dnsmasq"
# what pkill -9 -f conduitfs does, done by pid: stop the daemon (so that it restarts nothing),
# kill the watchdogs (so that none can stop its daemon), then the daemon and the signer
kill_all() {
    kill -STOP "$CFS_PID"
    kill -9 "$(ps -o ppid= -p "$1" | tr -d ' ')" "$(ps -o ppid= -p "$2" | tr -d ' ')"
    kill -9 $(pgrep -P "$CFS_PID") "$CFS_PID"
    wait "$CFS_PID" 2>/dev/null; CFS_PID=
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
    sleep 0.5
}
kill_all "$old_caddy" "$old_dnsmasq"
check "caddy is orphaned (the situation under test)" alive "$old_caddy"
check "dnsmasq is orphaned (the situation under test)" alive "$old_dnsmasq"

mount_it
check "the remount stopped the orphaned caddy" gone "$old_caddy"
check "the remount stopped the orphaned dnsmasq" gone "$old_dnsmasq"
check_eq "one supervisor_orphan line each" "$(count '"action":"supervisor_orphan"')" "2"
check "one new caddy" wait_for 10 test "$(caddy_pid | wc -l)" = 1
check "one new dnsmasq" wait_for 10 test "$(dnsmasq_pid | wc -l)" = 1
new_sock=$(cd "$STATE/caddy" && ls -- *.sock 2>/dev/null)
check "the new admin socket exists" test -S "$STATE/caddy/$new_sock"
check "it has a name of its own (was $old_sock)" test "$new_sock" != "$old_sock"
# the old Caddy's exit, if it were still running, could only remove its own socket
for p in "${OLD[@]}"; do kill "$p" 2>/dev/null; done
for p in "${OLD[@]}"; do wait_for 10 gone "$p"; done
check "a change works after the remount" put "$S/web/upstream" "127.0.0.1:$UP2"
check_eq "and is served" "$(get)" "hello from two"
check "dnsmasq answers after the remount" wait_for 10 dns_up
check "the admin socket is still there" test -S "$STATE/caddy/$new_sock"
check "another change works" put "$S/web/upstream" "127.0.0.1:$UP1"
check_eq "and is served" "$(get)" "hello from one"

# the same without pid files (lost, or left by a version that wrote none): found by command line
old_caddy=$(caddy_pid)
old_dnsmasq=$(dnsmasq_pid)
OLD+=($old_caddy $old_dnsmasq)
kill_all "$old_caddy" "$old_dnsmasq"
rm -f "$STATE"/run/*.pid
check "orphaned again" alive "$old_caddy"
mount_it
check "no pid file: caddy stopped" gone "$old_caddy"
check "no pid file: dnsmasq stopped" gone "$old_dnsmasq"
check_eq "found by their command line" "$(grep '"action":"supervisor_orphan"' \
    "$STATE/audit.log" | grep -c '"found_by":"command line"')" "2"
check "a change works" put "$S/web/upstream" "127.0.0.1:$UP2"
check_eq "and is served" "$(get)" "hello from two"
cfs_unmount
check "a clean unmount removes the pid files" sh -c "! ls '$STATE'/run/*.pid 2>/dev/null"
check_eq "a clean unmount leaves no daemon" "$(caddy_pid; dnsmasq_pid)" ""

# a Caddy an earlier version left running on routing/Caddyfile is found by its command line too
printf '{\n\tadmin off\n}\n' > "$STATE/routing/Caddyfile"
caddy run --config "$STATE/routing/Caddyfile" --adapter caddyfile >/dev/null 2>&1 &
OLDV=$!
OLD+=($OLDV)
check "an earlier version's caddy runs" wait_for 10 alive "$OLDV"
mount_it
check "the mount stopped the earlier version's caddy" wait_for 10 gone "$OLDV"
check_eq "found by its command line" "$(grep '"action":"supervisor_orphan"' \
    "$STATE/audit.log" | grep -c '"found_by":"command line"')" "3"
check "the earlier version's Caddyfile is gone" test ! -e "$STATE/routing/Caddyfile"
cfs_unmount

# --- 2. dnsmasq cannot bind its port: backoff, one failure line, one recovery line -------------
restarts_before=$(count '"action":"supervisor_restart"')
"$PY3" -c 'import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
time.sleep(300)' "$DNS_PORT" "$T/held" &
HOLD_PID=$!
wait_for 10 test -e "$T/held"
mount_it
sleep 10        # dnsmasq fails to start all along (counted, not timed)
restarts=$(( $(count '"action":"supervisor_restart"') - restarts_before ))
echo "supervisor_restart lines in 10 s of a dnsmasq that cannot bind: $restarts"
check "the failure is audited" test "$restarts" -ge 1
check "not every retry is audited (at most 3 lines, got $restarts)" test "$restarts" -le 3
check "one failure line" test "$(count '"action":"supervisor_restart","status":"failure"')" = 1
check "retries are logged to the daemon's log" grep -q "restarting in" "$T/conduitfs.log"
kill "$HOLD_PID"; wait "$HOLD_PID" 2>/dev/null; HOLD_PID=
check "dnsmasq comes back once the port is free" wait_for 70 dns_up
check "one recovery line" wait_for 30 grep -q '"action":"supervisor_recovered"' \
    "$STATE/audit.log"
check_eq "exactly one" "$(count '"action":"supervisor_recovered"')" "1"
restarts=$(( $(count '"action":"supervisor_restart"') - restarts_before ))
check "no more restart lines meanwhile (got $restarts)" test "$restarts" -le 3
cfs_unmount
check "the chain verifies" "$CONDUITFS" verify --state "$STATE"
finish
