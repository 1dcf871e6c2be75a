#!/usr/bin/env bash
# test_recover.sh: the registry against the audit chain. (1) A deleted services.json refuses the
# mount (exit 2, one line naming `conduitfs recover`) while the chain shows registered services,
# and changes nothing. (2) `conduitfs recover --state DIR` rebuilds it from the chain byte for
# byte, refuses to replace an existing one, and the mount then serves the same services.
# (3) --empty-registry (and -o empty_registry) starts empty on purpose, recorded in the chain.
# (4) `conduitfs verify` reports a hand-edited services.json (exit 1, one line); the next mount
# records it with a registry_adopt entry and verify passes again.
source "$(dirname "$0")/lib.sh"

cfs_mount --domains internal,test
mkdir "$S/web" "$S/db" "$S/gone" "$S/idle"
put "$S/web/upstream" "http://127.0.0.1:8080"
put "$S/web/domain" "shop.test"
put "$S/web/health_check" "/status?deep=1"
put "$S/web/monitoring" '{"type":"container","container_name":"web-1"}'
put "$S/db/upstream" "10.0.2.5:5432"
put "$S/db/mode" "dns"
rmdir "$S/gone"
mkdir "$S/gone"
put "$S/gone/upstream" "10.0.9.9:80"
put "$S/web/health_check" "/health"  # back to the default
# whole services in one write each (issue 13 item 6): a new one and a replaced one
printf '%s\n' '{"name":"api","upstream":"10.0.3.3:443","domain":"api.test","mode":"dns","monitoring":{"type":"gpu","ssh_host":"gpu1"}}' \
    > "$S/.apply"
printf '%s\n' '{"name":"db","upstream":"10.0.2.6:5432","mode":"dns","health_check":"/ready"}' \
    > "$S/.apply"
# a name whose default domain is taken is registered without one (issue 13 item 5)
put "$S/idle/domain" "late.internal"
mkdir "$S/late"
# refused changes seal failure entries, which recover must not replay
put "$S/db/upstream" "nope" 2>/dev/null
printf '%s\n' '{"name":"new","upstream":"nope"}' > "$S/.apply" 2>/dev/null
cfs_unmount
cp "$STATE/services.json" "$T/before.json"
check_eq "the chain explains the registry: verify passes" \
    "$("$CONDUITFS" verify --state "$STATE" >/dev/null 2>&1; echo $?)" "0"

# ---- (1) a missing registry refuses the mount ----
rm "$STATE/services.json"
# the registry, the configs, the CA and the chain (not SQLite's side files or the audit module's
# verified-checkpoint cache)
sums() { (cd "$STATE" && find . -type f ! -name 'capsules.db-*' ! -name 'audit.checkpoint*' \
    -print0 | sort -z | xargs -0 sha256sum); }
before=$(sums)
rc=0
timeout 20 "$CONDUITFS" -f --no-manage --state "$STATE" --domains internal,test "$MNT" \
    2>"$T/refuse.err" || rc=$?
mountpoint -q "$MNT" && fusermount3 -u "$MNT"
check_eq "missing services.json: mount refused with exit 2" "$rc" "2"
check_eq "missing services.json: one line on stderr" \
    "$(grep -vc "^conduitfs\[" "$T/refuse.err")" "1"
check "missing services.json: the line names recover ($(head -c 120 "$T/refuse.err"))" \
    grep -q "conduitfs recover" "$T/refuse.err"
check_eq "missing services.json: no file written, no DNS record or route removed" \
    "$(sums)" "$before"
check_fails "verify reports the missing registry" "services.json is missing" \
    "$CONDUITFS" verify --state "$STATE"

# ---- (2) recover ----
check "recover rebuilds services.json" "$CONDUITFS" recover --state "$STATE"
check "recovered registry is byte-identical to the one deleted" \
    cmp "$T/before.json" "$STATE/services.json"
check_fails "recover refuses to replace an existing registry" "exists" \
    "$CONDUITFS" recover --state "$STATE"
check "verify passes after recover" "$CONDUITFS" verify --state "$STATE"
cfs_mount --domains internal,test
check_eq "the mount serves the recovered services" "$(ls "$S" | tr '\n' ' ')" \
    "api db gone idle late web "
check_eq "recovered attributes" "$(cat "$S/web/upstream" "$S/web/domain" "$S/web/health_check" \
    "$S/db/mode" "$S/gone/upstream" "$S/api/monitoring" "$S/db/health_check" | tr '\n' ' ')" \
    "http://127.0.0.1:8080 shop.test /health dns 10.0.9.9:80 {\"type\":\"gpu\",\"ssh_host\":\"gpu1\"} /ready "
check_jq "recovered routes" '.apps.http.servers.conduitfs.routes[].handle[] | select(.handler ==
    "map") | .mappings[] | select(.input == "shop.test") | select(.outputs == ["127.0.0.1",
    "8080"])' "$STATE/routing/caddy.json"
cfs_unmount
check "a recovered registry loads unchanged" cmp "$T/before.json" "$STATE/services.json"

# ---- (3) an empty gateway on purpose ----
rm "$STATE/services.json"
cfs_mount --domains internal,test --empty-registry
check_eq "--empty-registry: no services" "$(ls "$S" | wc -l)" "0"
cfs_unmount
check "--empty-registry: recorded in the chain" jq -e -s 'map(select(.action == "registry_adopt"))
    | last | .status == "success"' "$STATE/audit.log"
check "--empty-registry: verify passes" "$CONDUITFS" verify --state "$STATE"
rm "$STATE/services.json"
cfs_mount --domains internal,test -o empty_registry
check_eq "-o empty_registry: no services" "$(ls "$S" | wc -l)" "0"
mkdir "$S/fresh"
cfs_unmount
rm "$STATE/services.json"
check "recover after an empty start" "$CONDUITFS" recover --state "$STATE"
check_eq "recover replays from the empty start" \
    "$(jq -r '[.services[] | select(.status != "inactive") | .name] | join(" ")' \
    "$STATE/services.json")" "fresh"

# ---- (4) a hand-edited registry ----
jq '.services[0].upstream = "10.6.6.6:80" | .services[0].status = "active"' \
    "$STATE/services.json" > "$T/edited.json"
cp "$T/edited.json" "$STATE/services.json"
rc=0
"$CONDUITFS" verify --state "$STATE" >/dev/null 2>"$T/verify.err" || rc=$?
check_eq "verify reports a hand-edited services.json: exit 1" "$rc" "1"
check_eq "verify: one line" "$(wc -l < "$T/verify.err")" "1"
check "verify: the line says so ($(head -c 120 "$T/verify.err"))" \
    grep -q "changed outside conduitfs" "$T/verify.err"
cfs_mount --domains internal,test
cfs_unmount
check "the mount records the edit" jq -e -s 'any(.action == "registry_adopt" and
    .status == "failure")' "$STATE/audit.log"
check "verify passes once the edit is recorded" "$CONDUITFS" verify --state "$STATE"
finish
