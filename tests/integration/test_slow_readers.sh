#!/usr/bin/env bash
# test_slow_readers.sh: slow readers cannot stall the mount (issue 12, item 3). A monitoring
# target whose host accepts TCP and never says a word makes every metrics.prom read wait for
# the probe deadline; 40 such readers are started at once, and a read of services/x/upstream
# made while they all wait must answer before any of them does (no timing is asserted: only the
# order). libfuse's default of 10 worker threads let the slow readers hold every thread. The
# readers must also share one run: the silent host is dialled once, not once per reader or
# per probe.
source "$(dirname "$0")/lib.sh"
M=$MNT/monitor
S=$MNT/services
N=40
SILENT_PID=
slow_cleanup() {
    cfs_unmount
    [[ -n $SILENT_PID ]] && kill "$SILENT_PID" 2>/dev/null
    rm -rf "$T"
}
trap slow_cleanup EXIT

# a loopback listener that accepts every connection, counts it, and never sends a byte
SILENT_PORT=$(free_port)
"$PY3" -c "import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(128); held = []
open(sys.argv[1], 'w').close()
while True:
    held.append(s.accept()[0])
    open(sys.argv[1], 'a').write('x\n')" "$T/dials" &
SILENT_PID=$!
wait_for 5 test -f "$T/dials"

cfs_mount
check "a service" mkdir "$S/x"
check "its upstream" put "$S/x/upstream" "127.0.0.1:9000"
echo "not a key" > "$T/key"
check "a silent target" mkdir "$M/silent"
check "configured" put "$M/silent/target.json" \
    '{"ssh_host":"127.0.0.1","ssh_port":'$SILENT_PORT',"ssh_user":"root","ssh_key":"'$T/key'"}'

mkdir "$T/done"
for i in $(seq "$N"); do
    (cat "$M/metrics.prom" > "$T/m.$i" 2>&1; touch "$T/done/$i") &
done
# not an assertion: time for the readers to reach the daemon and start waiting
sleep 1
up=$(cat "$S/x/upstream" 2>&1)
finished=$(ls "$T/done" | wc -l)
check_eq "services/x/upstream answers while $N metrics.prom readers wait" "$up" "127.0.0.1:9000"
check_eq "...before any of them is answered" "$finished" "0"
health=$(cat "$M/health.json" >/dev/null 2>&1 && echo ok)
check_eq "so does monitor/health.json" "$health" "ok"
check_eq "...still before any metrics.prom reader" "$(ls "$T/done" | wc -l)" "0"
wait_for 60 sh -c "test \$(ls '$T/done' | wc -l) -eq $N"
check_eq "every reader is answered" "$(ls "$T/done" | wc -l)" "$N"
bad_out=0
for i in $(seq "$N"); do
    grep -qx 'conduit_probe_success{target="silent",type="server"} 0' "$T/m.$i" &&
        grep -qx 'conduit_probe_success{target="local",type="server"} 1' "$T/m.$i" ||
        bad_out=$((bad_out + 1))
done
check_eq "each got the metrics, the silent target as failed" "$bad_out" "0"
check_eq "one run for all readers: the silent host was dialled once" \
    "$(wc -l < "$T/dials")" "1"
cfs_unmount
finish
