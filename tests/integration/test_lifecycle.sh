#!/usr/bin/env bash
# test_lifecycle.sh: the services/ tree end to end: mkdir, echo, cat, ls, unlink, rmdir, rm -r,
# the registry and audit lines they leave, and the configs they render (checked by real caddy
# and dnsmasq).
source "$(dirname "$0")/lib.sh"
cfs_mount --domains internal,test

check_eq "root holds exactly four trees" "$(ls "$MNT" | tr '\n' ' ')" "audit ca monitor services "
check_eq "state dir mode" "$(stat -c %a "$STATE")" "700"

# registration and defaults
check "mkdir registers" mkdir "$S/core"
check_eq "attribute files" "$(ls "$S/core" | tr '\n' ' ')" \
    "domain health_check lb_policy mode monitoring upstream "
check_eq "default upstream" "$(cat "$S/core/upstream")" ""
check_eq "default domain" "$(cat "$S/core/domain")" "core.internal"
check_eq "default health_check" "$(cat "$S/core/health_check")" "/health"
check_eq "default mode" "$(cat "$S/core/mode")" "proxy"
check_eq "default monitoring" "$(cat "$S/core/monitoring")" "{}"
check_eq "size is the real size" "$(stat -c %s "$S/core/domain")" "14"
check_eq "pending in registry" "$(jq -r '.services[0].status' "$STATE/services.json")" "pending"
# a pending service has nowhere to go: no DNS record, no route, no leaf (issue 16)
check "pending gets no DNS record" test ! -e "$STATE/dns/hosts.d/core"
check_fails "pending gets no route" "" grep -q 'core.internal' "$STATE/routing/caddy.json"
check_fails "mkdir twice" "File exists" mkdir "$S/core"
check_fails "bad name" "Invalid argument" mkdir "$S/Core_1"
check_fails "name with hyphen at end" "Invalid argument" mkdir "$S/core-"

# writes
check "set upstream" put "$S/core/upstream" "10.0.1.10:8000"
check_eq "read back upstream" "$(cat "$S/core/upstream")" "10.0.1.10:8000"
check_eq "active in registry" "$(jq -r '.services[0].status' "$STATE/services.json")" "active"
# the route: one name in its pool's host list and one entry in its map (routing/caddy.json)
pool_map() {  # POOL: the host -> upstream mappings of that pool's route
    echo ".apps.http.servers.conduitfs.routes[] | select(.\"@id\" == \"cfs-pool-$1\")
        | .handle[0].mappings[]"
}
check_jq "its pool's route lists core" '.apps.http.servers.conduitfs.routes[]
    | select(."@id" == "cfs-pool-1-round_robin-http") | .match[0].host | index("core.internal")
    != null' "$STATE/routing/caddy.json"
check_jq "route rendered" "$(pool_map 1-round_robin-http) | select(.input == \"core.internal\")
    | .outputs == [\"10.0.1.10\", \"8000\"]" "$STATE/routing/caddy.json"
check_jq "passive health checks rendered" '[.. | objects | .passive? // empty
    | select(.max_fails == 2 and .fail_duration == "5s")] | length == 1' "$STATE/routing/caddy.json"
check_fails "no active health checks (reloads cancel them)" "" \
    grep -q '"active"' "$STATE/routing/caddy.json"
lines=$(wc -l < "$STATE/audit.log")
check "same value again" put "$S/core/upstream" "10.0.1.10:8000"
check_eq "no-op writes no audit line" "$(wc -l < "$STATE/audit.log")" "$lines"
check "truncate to 0 accepted" truncate -s 0 "$S/core/upstream"
check_eq "truncate leaves the value" "$(cat "$S/core/upstream")" "10.0.1.10:8000"
{ printf /; head -c 5000 /dev/zero | tr '\0' a; echo; } > "$T/big"
check_fails "value over 4 KiB" "too large" put_file "$T/big" "$S/core/health_check"
check "https upstream" put "$S/core/upstream" "https://[::1]:8443"
check_jq "route uses TLS upstream" "$(pool_map 1-round_robin-https) | select(.input ==
    \"core.internal\") | .outputs == [\"::1\", \"8443\"]" "$STATE/routing/caddy.json"
check_jq "the https pool dials with TLS" '.apps.http.servers.conduitfs.routes[]
    | select(."@id" == "cfs-pool-1-round_robin-https") | .handle[1].transport.tls
    == {}' "$STATE/routing/caddy.json"
check "set domain" put "$S/core/domain" "api.core.test"
check "hosts file follows the domain" grep -qx "127.0.0.1 api.core.test" \
    "$STATE/dns/hosts.d/core"
check "set health_check" put "$S/core/health_check" "/healthz?full=1"
check "set monitoring" put "$S/core/monitoring" '{ "type": "container", "container_name": "core" }'
check_eq "monitoring normalized" "$(cat "$S/core/monitoring")" \
    '{"type":"container","container_name":"core"}'

# dns mode
check "second service" mkdir "$S/db"
check "dns upstream" put "$S/db/upstream" "10.0.2.20:5432"
check "dns mode" put "$S/db/mode" "dns"
check "dns record is the upstream" grep -qx "10.0.2.20 db.internal" "$STATE/dns/hosts.d/db"
check_fails "no route for dns mode" "" grep -q 'db.internal' "$STATE/routing/caddy.json"
check_fails "hostname upstream in dns mode" "Invalid argument" put "$S/db/upstream" "db.example:5432"
check_fails "duplicate domain" "File exists" put "$S/db/domain" "api.core.test"

# the rendered configs are accepted by the real daemons
if command -v caddy >/dev/null; then
    check "caddy accepts caddy.json" caddy validate --config "$STATE/routing/caddy.json"
else
    echo "SKIP: caddy not installed"
fi
if command -v dnsmasq >/dev/null; then
    check "dnsmasq accepts its config" dnsmasq --test -C "$STATE/dns/dnsmasq.conf"
else
    echo "SKIP: dnsmasq not installed"
fi

# rm of an attribute changes nothing (issue 13 item 2); writing the default resets
hc=$(cat "$S/core/health_check")
check "rm of an attribute succeeds" rm "$S/core/health_check"
check_eq "and changes nothing" "$(cat "$S/core/health_check")" "$hc"
check "writing the default resets" put "$S/core/health_check" "/health"
check_eq "reset to default" "$(cat "$S/core/health_check")" "/health"
check "an empty upstream" put "$S/core/upstream" ""
check_eq "pending again" "$(jq -r '.services[] | select(.name=="core") | .status' \
    "$STATE/services.json")" "pending"

# forbidden operations
check_fails "rename" "not permitted" mv "$S/core/mode" "$S/core/mode2"
check_fails "rename service" "not permitted" mv "$S/core" "$S/core2"
check_fails "hard link" "not permitted" ln "$S/core/mode" "$S/core/mode2"
check_fails "symlink" "not permitted" ln -s x "$S/core/l"
check "chmod of an attribute changes nothing" chmod 600 "$S/core/mode"
check_eq "its mode stays 0644" "$(stat -c %a "$S/core/mode")" "644"
check_fails "chmod of a service" "not permitted" chmod 700 "$S/core"
check_fails "chown" "not permitted" chown 1:1 "$S/core/mode"
check "another name is a staging file" touch "$S/core/notes"
check "which rm removes" rm "$S/core/notes"
check_fails "create file in services/" "not permitted" touch "$S/readme"
check_fails "mkdir at the root" "not permitted" mkdir "$MNT/extra"
check_fails "rmdir a tree" "not permitted" rmdir "$MNT/ca"
check_fails "mkdir in ca/" "not permitted" mkdir "$MNT/ca/x"

# deregistration
check "rmdir deregisters" rmdir "$S/core"
check_fails "gone from the mount" "No such file" ls "$S/core"
check_eq "kept as inactive" "$(jq -r '.services[] | select(.name=="core") | .status' \
    "$STATE/services.json")" "inactive"
check "deregistered_at set" test "$(jq -r '.services[] | select(.name=="core") |
    .deregistered_at' "$STATE/services.json")" != null
check_fails "hosts file removed" "" test -e "$STATE/dns/hosts.d/core"
check "register the name again" mkdir "$S/core"
check_eq "new record appended" "$(jq '[.services[] | select(.name=="core")] | length' \
    "$STATE/services.json")" "2"
check "rm -r deregisters" rm -r "$S/db"
check_eq "db inactive" "$(jq -r '[.services[] | select(.name=="db")][-1].status' \
    "$STATE/services.json")" "inactive"

# audit lines
check_eq "setup line" "$(head -1 "$STATE/audit.log" | jq -r .action)" "conduit_setup"
check_eq "every line has six fields" "$(jq -c 'keys' "$STATE/audit.log" | sort -u)" \
    '["action","details","message","status","timestamp","user"]'
check_eq "user is the caller" "$(jq -r .user "$STATE/audit.log" | sort -u)" "$(id -un)"
check "register lines" grep -q '"action":"service_register"' "$STATE/audit.log"
check "deregister lines" grep -q '"action":"service_deregister"' "$STATE/audit.log"
check_eq "update carries old and new" "$(jq -c 'select(.action=="service_update" and
    .details.attribute=="domain") | [.details.old,.details.new]' "$STATE/audit.log")" \
    '["core.internal","api.core.test"]'

# modes of the state files
check_eq "state files are 0600" "$(find "$STATE" -type f ! -perm 600 | wc -l)" "0"
check_eq "state dirs are 0700" "$(find "$STATE" -type d ! -perm 700 | wc -l)" "0"

cfs_unmount
check "unmounted cleanly" sh -c "! mountpoint -q '$MNT'"
finish
