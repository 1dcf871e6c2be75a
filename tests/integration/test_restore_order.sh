#!/usr/bin/env bash
# test_restore_order.sh: a cp -r restore never routes a service under a domain or mode its
# backup does not have (issue 13 item 6). cp replays a backup's files in its own order (here:
# upstream first, then mode, then domain), so a restore committed file by file would serve the
# service at NAME.internal, or as proxy, on the way. The files a restoring cp creates are
# committed as one change when upstream, domain and mode are in (core/restore.h). db's backup is
# one made before lb_policy existed (five files); web's has all six.
source "$(dirname "$0")/lib.sh"
cfs_mount --domains internal,test
lines() { wc -l < "$STATE/audit.log"; }

mkdir -p "$T/backup/db" "$T/backup/web"
put "$T/backup/db/upstream" "10.0.2.5:5432"
put "$T/backup/db/mode" "dns"
put "$T/backup/db/domain" "data.test"
put "$T/backup/db/health_check" "/ready"
put "$T/backup/db/monitoring" '{}'
put "$T/backup/web/upstream" "http://10.0.3.3:8080"
put "$T/backup/web/mode" "proxy"
put "$T/backup/web/domain" "www.test"
put "$T/backup/web/health_check" "/"
put "$T/backup/web/monitoring" '{}'
put "$T/backup/web/lb_policy" "first"
echo "backup order of db: $(ls -U "$T/backup/db" | tr '\n' ' ')"

# a poller records every hosts.d file and proxy config it sees during the copies
( while [ ! -e "$T/stop" ]; do
      cat "$STATE"/dns/hosts.d/* 2>/dev/null >> "$T/seen-dns"
      cat "$STATE"/routing/* 2>/dev/null >> "$T/seen-proxy"
  done ) &
poller=$!
n0=$(lines)
check "cp -r restores db" cp -r "$T/backup/db" "$S/"
check "cp -r restores web" cp -r "$T/backup/web" "$S/"
touch "$T/stop"; wait "$poller"
tail -n +"$((n0 + 1))" "$STATE/audit.log" > "$T/new.log"

for n in db web; do
    for f in "$T/backup/$n"/*; do
        check_eq "restored $n/$(basename "$f")" "$(cat "$S/$n/$(basename "$f")")" "$(cat "$f")"
    done
    check "no leaf was ever issued for $n.internal" \
        bash -c "! grep '\"action\":\"tls_issue\"' '$T/new.log' | grep -q '$n\.internal'"
    check "no leaf for $n.internal" bash -c "! ls '$STATE'/ca/certs 2>/dev/null | grep -q '$n\.internal'"
    check "DNS never answered $n.internal" bash -c "! grep -q '$n\.internal' '$T/seen-dns'"
    check "the proxy never routed $n.internal" bash -c "! grep -q '$n\.internal' '$T/seen-proxy'"
done
check_eq "db's lb_policy (not in its backup) is the default" "$(cat "$S/db/lb_policy")" round_robin
check "db (dns mode) was never proxied" bash -c "! grep -q '10\.0\.2\.5' '$T/seen-proxy'"
# upstream, mode and domain of db went in as one change: one group commit, whose last entry
# alone carries the registry mark
grep '"name":"db"' "$T/new.log" | grep '"action":"service_update"' \
    | grep -E '"attribute":"(upstream|mode|domain)"' > "$T/db3"
check_eq "db's upstream, mode and domain: three updates" "$(wc -l < "$T/db3")" 3
check_eq "... sealed as one batch (one registry mark, on the last)" \
    "$(grep -c '"registry":' "$T/db3"), $(tail -1 "$T/db3" | grep -c '"registry":')" "1, 1"
check "db's DNS name is data.test" grep -q 'data.test' "$STATE/dns/hosts.d/db"
check "web is routed at www.test" grep -q 'www.test' "$STATE"/routing/*

# a backup that lacks mode and domain is committed RST_SECONDS after its last file
mkdir -p "$T/backup/half"
put "$T/backup/half/upstream" "10.0.4.4:80"
start=$(date +%s.%N)
check "cp -r of a backup without mode and domain" cp -r "$T/backup/half" "$S/"
# the sweeper commits it once the window (whole seconds) has ended, checking every 250 ms: 2 to
# about 3.3 s after the last file; a fixed sleep of 3 s raced it on a loaded machine
wait_for 15 grep -qx "10.0.4.4:80" "$S/half/upstream"
waited=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "the sweeper committed half after $waited s"
check "... not before the window ended ($waited s >= 1.9 s)" \
    awk -v w="$waited" 'BEGIN { exit !(w >= 1.9) }'
check_eq "... committed after the window" "$(cat "$S/half/upstream")" "10.0.4.4:80"
check_eq "... at its default domain" "$(cat "$S/half/domain")" "half.internal"

# a refused value in a restore: close(2) of the file that completes it reports it, and nothing
# of that restore is committed
mkdir -p "$T/backup/bad"
put "$T/backup/bad/upstream" "10.0.5.5:99999"
put "$T/backup/bad/mode" "proxy"
put "$T/backup/bad/domain" "bad.test"
check "cp -r of a backup with a bad port fails" bash -c "! cp -r '$T/backup/bad' '$S/' 2>'$T/cp.err'"
echo "cp said: $(head -2 "$T/cp.err")"
check_eq "... and bad's upstream stays unset" "$(cat "$S/bad/upstream")" ""
check "... and the refusal is audited with its reason" \
    grep -q '"action":"change_refused".*"reason":"upstream: the port is not 1-65535' \
    "$STATE/audit.log"

# plain writes by the process that made the directory are not collected
check "mkdir and write from one process" python3 -c "
import os
os.mkdir('$S/solo')
with open('$S/solo/upstream', 'w') as f:
    f.write('10.0.6.6:80\n')
assert open('$S/solo/upstream').read() == '10.0.6.6:80\n'
"
finish
