#!/usr/bin/env bash
# test_apply.sh: a whole service in one write (issue 13 item 6) and names whose default domain
# is taken (item 5). services/.apply takes one JSON document and makes or replaces the service
# as one validated change: one audit batch, one commit; a refused one leaves nothing behind (no
# success line, no certificate) and says why. mkdir succeeds whatever the default domain's
# state: a service whose default domain is taken has none, and no DNS name, route or leaf,
# until one is written.
source "$(dirname "$0")/lib.sh"
cfs_mount --domains internal,test
apply() { printf '%s\n' "$1" > "$S/.apply"; }
lines() { wc -l < "$STATE/audit.log"; }

# ---- item 6: make a service whole ----
n0=$(lines)
check "apply a new dns-mode service at a custom domain" apply \
    '{"name":"db","upstream":"10.0.2.5:5432","domain":"data.test","mode":"dns","health_check":"/ready","monitoring":{"type":"server","ssh_host":"db1"}}'
check_eq "its attributes" "$(cat "$S/db/upstream" "$S/db/domain" "$S/db/mode" \
    "$S/db/health_check" "$S/db/monitoring" | tr '\n' ' ')" \
    '10.0.2.5:5432 data.test dns /ready {"type":"server","ssh_host":"db1"} '
tail -n +"$((n0 + 1))" "$STATE/audit.log" > "$T/new.log"
check_jq "one batch: register, then one update per attribute, one timestamp, one mark" \
    '[.[] | select(.action | startswith("service_"))] |
     (map(.action) == ["service_register"] + [range(4) | "service_update"]) and
     (map(.timestamp) | unique | length == 1) and
     ([.[] | select(.details.registry)] | length == 1) and (last.details.registry != null) and
     (.[0].details.domain == "data.test") and all(.status == "success")' <(jq -s . "$T/new.log")
check_fails "the default domain was never live: no certificate for it" "" \
    test -e "$STATE/tls/db.internal"
check "no DNS record ever pointed db.internal anywhere" \
    bash -c "! grep -rq 'db.internal' '$STATE/dns'"
check "db.internal never passed through the audit log" bash -c "! grep -q 'db.internal' '$T/new.log'"
check "the DNS record answers the upstream" \
    grep -rqE '10\.0\.2\.5.*data\.test|data\.test.*10\.0\.2\.5' "$STATE/dns"

# ---- item 6: a refused document leaves nothing behind and says why ----
n0=$(lines)
before=$(configs_digest)
check_fails "a bad upstream in a new service" "Invalid argument" apply \
    '{"name":"broken","upstream":"10.0.0.1:99999","domain":"broken.test"}'
check_fails "an unknown key" "Invalid argument" apply '{"name":"broken","port":80}'
check_fails "not JSON" "Invalid argument" apply 'name=broken'
check_fails "a taken domain" "File exists" apply '{"name":"broken","domain":"data.test"}'
check_fails "a hostname upstream in dns mode" "Invalid argument" apply \
    '{"name":"broken","upstream":"db.example:1","mode":"dns"}'
check_fails "broken is not there" "" test -e "$S/broken"
check_eq "registry and configs unchanged" "$(configs_digest)" "$before"
tail -n +"$((n0 + 1))" "$STATE/audit.log" > "$T/new.log"
check_eq "five refusals, five lines" "$(wc -l < "$T/new.log")" "5"
check_jq "all failures naming services/broken (services/.apply without a name), the caller and a reason" \
    'all(.action == "change_refused" and .status == "failure" and .user == "root" and
         (.details.reason | length > 0)) and
     (map(.details.path) == ["services/broken", "services/broken", "services/.apply",
                             "services/broken", "services/broken"])' <(jq -s . "$T/new.log")
check "the port reason" grep -q '"reason":"upstream: the port is not 1-65535' "$T/new.log"
check "the taken domain names its owner" \
    grep -q '"reason":"domain: data.test is the domain of service db"' "$T/new.log"
check_fails "no certificate for broken" "" test -e "$STATE/tls/broken.test"

# ---- item 6: replace a service whole; what the document leaves out is reset ----
n0=$(lines)
check "replace db" apply '{"name":"db","upstream":"10.0.2.6:5432","mode":"dns","domain":"data.test"}'
check_eq "replaced attributes" "$(cat "$S/db/upstream" "$S/db/health_check" "$S/db/monitoring" \
    | tr '\n' ' ')" '10.0.2.6:5432 /health {} '
check_eq "the replacement sealed three updates" \
    "$(tail -n +"$((n0 + 1))" "$STATE/audit.log" | grep -c '"action":"service_update"')" "3"
n0=$(lines)
check "the same document again" apply \
    '{"name":"db","upstream":"10.0.2.6:5432","mode":"dns","domain":"data.test"}'
check_eq "changes nothing and seals nothing" "$(lines)" "$n0"
check_fails "a write at an offset is refused" "Invalid argument" \
    dd if=/dev/zero of="$S/.apply" bs=1 count=1 seek=3 conv=notrunc status=none
check_fails ".apply cannot be removed" "Operation not permitted" rm "$S/.apply"
check_eq ".apply is not listed" "$(ls -A "$S" | tr '\n' ' ')" "db "

# ---- item 5: mkdir whatever the default domain's state ----
mkdir "$S/other"
put "$S/other/domain" "api.internal"
check "mkdir api while another service has api.internal" mkdir "$S/api"
check_eq "api has no domain yet" "$(cat "$S/api/domain")" ""
check_eq "no certificate for it" "$(cat "$MNT"/ca/certs/*.json 2>/dev/null |
    jq -r 'select(.service == "api") | .domain')" ""
check_fails "an upstream needs a domain first" "Invalid argument" \
    put "$S/api/upstream" "10.0.0.7:80"
check "and says so" grep -q '"reason":"the service has no domain yet' "$STATE/audit.log"
check "write its domain" put "$S/api/domain" "api-v2.internal"
check "then its upstream" put "$S/api/upstream" "10.0.0.7:80"
check "api-v2.internal is routed" grep -q '"api-v2.internal"' "$STATE/routing/caddy.json"
check "a certificate for api-v2.internal" test -e "$MNT/ca/certs/api-v2.internal.pem"
check "apply a service whose default domain is taken, with its own" apply \
    '{"name":"other2","upstream":"10.0.0.8:80","domain":"o2.internal"}'
put "$S/other2/domain" "web.internal"
check "apply web without a domain while other2 has web.internal" apply '{"name":"web"}'
check_eq "web has no domain" "$(cat "$S/web/domain")" ""
check "the registry (with its domainless service) survives a remount" true
cfs_unmount
check "verify passes" "$CONDUITFS" verify --state "$STATE"
cp "$STATE/services.json" "$T/before.json"
rm "$STATE/services.json"
check "recover rebuilds it" "$CONDUITFS" recover --state "$STATE"
check "byte for byte" cmp "$T/before.json" "$STATE/services.json"
cfs_mount --domains internal,test
check_eq "the remount serves them" "$(ls "$S" | tr '\n' ' ')" "api db other other2 web "
finish
