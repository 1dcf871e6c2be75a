#!/usr/bin/env bash
# test_stop.sh: stopping a mount made from a relative mount point (as scripts/run.sh does:
# `conduitfs -f ... ./mnt`) unmounts that directory and nothing else, with SIGINT and SIGTERM.
# The daemon's working directory becomes /, so an unresolved "./mnt" would name /mnt: a decoy
# tmpfs is mounted there, in a private mount namespace this test makes (unshare -m), and must
# survive. The log's "unmounted" line must name the directory that was really unmounted.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v unshare >/dev/null || { echo "missing unshare (util-linux)"; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root for a private mount namespace and a decoy mount on /mnt"
    exit 0
fi

# In the namespace: a decoy tmpfs on /mnt with a marker, a mount at ./mnt from $T, a signal,
# then a report of what is mounted where. Prints key=value lines.
run_case() {
    local sig=$1
    unshare -m --propagation private bash -s "$CONDUITFS" "$T" "$sig" <<'EOF2'
set -u
CONDUITFS=$1 T=$2 SIG=$3
set -m   # job control: a background job keeps SIGINT (else bash starts it ignored)
mkdir -p /mnt && mount -t tmpfs decoy /mnt && touch /mnt/decoy-marker
cd "$T" && rm -rf mnt "state-$SIG" && mkdir mnt
"$CONDUITFS" -f --no-manage --state "./state-$SIG" ./mnt 2>"$T/log-$SIG" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$T/mnt" && break; sleep 0.05; done
mountpoint -q "$T/mnt" && echo "mounted=yes" || echo "mounted=no"
mkdir "$T/mnt/services/core" && echo "works=yes" || echo "works=no"
kill "-$SIG" "$pid"
wait "$pid"; echo "status=$?"
[[ -e /mnt/decoy-marker ]] && echo "decoy=intact" || echo "decoy=gone"
mountpoint -q /mnt && echo "decoy_mounted=yes" || echo "decoy_mounted=no"
if mountpoint -q "$T/mnt" 2>/dev/null; then echo "left=mounted"
elif ! stat "$T/mnt" >/dev/null 2>&1; then echo "left=dead"
else echo "left=clean"; fi
umount /mnt 2>/dev/null
EOF2
}

for sig in INT TERM; do
    out=$(run_case "$sig")
    echo "SIG$sig: $(tr '\n' ' ' <<<"$out")"
    check_eq "SIG$sig: mounted from ./mnt" "$(grep -c '^mounted=yes' <<<"$out")" 1
    check_eq "SIG$sig: the mount works" "$(grep -c '^works=yes' <<<"$out")" 1
    check_eq "SIG$sig: exit status" "$(sed -n 's/^status=//p' <<<"$out")" 0
    check_eq "SIG$sig: the decoy on /mnt is still mounted" \
        "$(sed -n 's/^decoy_mounted=//p' <<<"$out")" yes
    check_eq "SIG$sig: the decoy's files are there" "$(sed -n 's/^decoy=//p' <<<"$out")" intact
    check_eq "SIG$sig: ./mnt is unmounted, not left dead" "$(sed -n 's/^left=//p' <<<"$out")" \
        clean
    check "SIG$sig: the log names the real directory" grep -q "unmounted $T/mnt\$" "$T/log-$sig"
    if grep -q "unmounted \./mnt" "$T/log-$sig"; then bad "SIG$sig: the log says ./mnt"; else ok; fi
    check "SIG$sig: the registration survived the stop" grep -q '"name": "core"' \
        "$T/state-$sig/services.json"
done
finish
