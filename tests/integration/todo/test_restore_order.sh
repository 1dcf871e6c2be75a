#!/usr/bin/env bash
# test_restore_order.sh: a cp -r restore never routes a service under a domain or mode its
# backup does not have (issue 13 item 6). The backup directories' files are created in the
# order cp replays them (directory order: upstream first, then mode, then domain), so a restore
# that commits file by file would route the service at NAME.internal, or as proxy, on the way.
source "$(dirname "$0")/../lib.sh"
cfs_mount --domains internal,test
lines() { wc -l < "$STATE/audit.log"; }

# backups in an adversarial order: upstream, then mode, then domain
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
echo "cp order of db: $(ls -U "$T/backup/db" | tr '\n' ' ')"

# a poller records every hosts.d file and Caddyfile it sees during the copies
( while [ ! -e "$T/stop" ]; do
      cat "$STATE"/dns/hosts.d/* "$STATE/routing/Caddyfile" 2>/dev/null
  done > "$T/seen" ) &
poller=$!
n0=$(lines)
check "cp -r restores db" cp -r "$T/backup/db" "$S/"
check "cp -r restores web" cp -r "$T/backup/web" "$S/"
touch "$T/stop"; wait "$poller"
tail -n +"$((n0 + 1))" "$STATE/audit.log" > "$T/new.log"

check "restored db equals its backup" diff -r "$T/backup/db" "$S/db"
check "restored web equals its backup" diff -r "$T/backup/web" "$S/web"
for n in db web; do
    check "$n.internal never passed through the audit log" \
        bash -c "! grep -q '$n\.internal' '$T/new.log'"
    check "no leaf for $n.internal" bash -c "! ls '$STATE'/ca/certs 2>/dev/null | grep -q '$n\.internal'"
    check "the poller never saw $n.internal" bash -c "! grep -q '$n\.internal' '$T/seen'"
done
check "db was never proxied (no route to its upstream)" \
    bash -c "! grep -q '10.0.2.5' '$T/seen' '$STATE/routing/Caddyfile'"
check "db never held mode proxy in the audit log" \
    bash -c "! grep '\"name\":\"db\"' '$T/new.log' | grep -q '\"mode\":\"proxy\"'"
check "db's DNS name is data.test" grep -q 'data.test' "$STATE/dns/hosts.d/db"
check "web is routed at www.test" grep -q 'www.test' "$STATE/routing/Caddyfile"
finish
