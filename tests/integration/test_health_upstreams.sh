#!/usr/bin/env bash
# test_health_upstreams.sh: health per upstream. A proxy-mode service with three real upstreams
# and a dns-mode service with a live and a dead one, probed by the mount's prober (real dnsmasq
# and Caddy supervised on loopback): every upstream has its own record in monitor/health.json and
# its own gauges in metrics.prom; a killed upstream leaves the rotation after --health-threshold
# failures with a health_check_fail line naming the service and the upstream, and rejoins with
# health_check_recover; a dns-mode service is probed too. Where the routing side of the rotation
# is wired (state/routing/caddy.json), the checks marked "routing:" test it; otherwise they are
# reported as skipped.
# It runs in a network namespace of its own (unshare -n, loopback only), as test_gateway.sh does.
CFS_NETNS=own
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMAS=$(cd "$HERE/../../docs/schema" && pwd)
need_tools caddy dnsmasq curl jq

declare -A UP_PID=()
P1=$(free_port); P2=$(free_port); P3=$(free_port); DEAD=$(free_port)
start_up() { "$PY3" "$HERE/upstream.py" "$1" "u$1" >/dev/null 2>&1 & UP_PID[$1]=$!; }
up_answers() { curl -s -o /dev/null "127.0.0.1:$1/health"; }
for p in "$P1" "$P2" "$P3"; do start_up "$p"; done
for p in "$P1" "$P2" "$P3"; do wait_for 10 up_answers "$p" || bad "upstream $p did not start"; done
cleanup_ups() { for p in "${UP_PID[@]}"; do kill "$p" 2>/dev/null; done; cfs_cleanup; }
trap cleanup_ups EXIT

cfs_mount_managed --health-interval 1 --health-timeout 1 --health-threshold 2 || exit 1
H=$MNT/monitor/health.json
# putl FILE LINE...: the lines into FILE with one write(2)
putl() { local f=$1; shift; printf '%s\n' "$@" > "$T/lines" && put_file "$T/lines" "$f"; }
mkdir "$S/web" && putl "$S/web/upstream" "127.0.0.1:$P1" "127.0.0.1:$P2" "127.0.0.1:$P3" ||
    bad "registering web with 3 upstreams"
mkdir "$S/db" && put "$S/db/mode" dns && putl "$S/db/upstream" "127.0.0.1:$P1" \
    "127.0.0.1:$DEAD" || bad "registering db (dns mode) with 2 upstreams"
mkdir "$S/idle" || bad "registering a pending service"

# hq NAME FILTER: service NAME of the current health.json satisfies FILTER
hq() { jq -e --arg n "$1" '.services[] | select(.name == $n) | '"$2" "$H"; }
# up NAME LINE FILTER: the upstreams[] entry of LINE of service NAME satisfies FILTER
up() { jq -e --arg n "$1" --arg u "$2" '.services[] | select(.name == $n) | .upstreams[] |
    select(.upstream == $u) | '"$3" "$H" >/dev/null 2>&1; }
snap() { cat "$H" > "$T/h.json"; }

# ---- all healthy ----
echo "== web (proxy, 3 upstreams), db (dns, a live and a dead one), idle (pending)"
all_healthy() { up web "127.0.0.1:$P1" '.state == "healthy"' && up web "127.0.0.1:$P2" \
    '.state == "healthy"' && up web "127.0.0.1:$P3" '.state == "healthy"'; }
check "web: all three upstreams turn healthy" wait_for 20 all_healthy
snap
check_jq "web lists its three upstreams in order" '.services[] | select(.name == "web") |
    [.upstreams[].upstream] == ["127.0.0.1:'"$P1"'", "127.0.0.1:'"$P2"'", "127.0.0.1:'"$P3"'"]' \
    "$T/h.json"
check_jq "web: service healthy, mode proxy, 3 of 3 in the rotation" '.services[] |
    select(.name == "web") | .state == "healthy" and .mode == "proxy" and
    .upstreams_in_rotation == 3 and .upstreams_total == 3 and .upstream == "127.0.0.1:'"$P1"'"' \
    "$T/h.json"
check_jq "web: each upstream in the rotation, 200, a latency, no error" '[.services[] |
    select(.name == "web") | .upstreams[] | .in_rotation == true and .last_status == 200 and
    (.last_latency_ms | type == "number" and . >= 0 and floor == .) and .last_error == null and
    .consecutive_failures == 0 and (.since | test("^[0-9-]{10}T[0-9:]{8}Z$"))] |
    length == 3 and all' "$T/h.json"
check_jq "idle: pending, no upstream" '.services[] | select(.name == "idle") |
    .state == "pending" and .upstreams == [] and .upstream == ""' "$T/h.json"
check "health.json matches docs/schema/health.json" py3 "$HERE/check_schema.py" "$SCHEMAS" \
    health.json "$T/h.json"

# ---- a dns-mode service is probed ----
echo "== a dns-mode service is probed"
db_probed() { up db "127.0.0.1:$P1" '.state == "healthy"' &&
    up db "127.0.0.1:$DEAD" '.state == "unhealthy"'; }
check "db (dns mode): its live upstream turns healthy, its dead one unhealthy" wait_for 20 db_probed
snap
check_jq "db: the service is healthy, mode dns, 1 of 2 in the rotation" '.services[] |
    select(.name == "db") | .state == "healthy" and .mode == "dns" and
    .upstreams_in_rotation == 1 and .upstreams_total == 2' "$T/h.json"
check_jq "db: the dead upstream says why, out of the rotation" '.services[] |
    select(.name == "db") | .upstreams[1] | .in_rotation == false and .last_status == null and
    (.last_error | type == "string" and length > 0) and .consecutive_failures >= 2' "$T/h.json"

# ---- metrics.prom: per service and per upstream gauges ----
echo "== metrics.prom: per-service and per-upstream health gauges"
cat "$MNT/monitor/metrics.prom" > "$T/m.prom"
check "metrics: conduit_service_healthy of web is 1" grep -qE \
    '^conduit_service_healthy\{service="web",domain="web\.internal",mode="proxy"\} 1$' "$T/m.prom"
check "metrics: conduit_upstream_healthy of each web upstream is 1" test "$(grep -cE \
    "^conduit_upstream_healthy\{service=\"web\",upstream=\"127\.0\.0\.1:($P1|$P2|$P3)\"\} 1\$" \
    "$T/m.prom")" = 3
check "metrics: the dead db upstream is out of the rotation" grep -qE \
    "^conduit_upstream_in_rotation\{service=\"db\",upstream=\"127\.0\.0\.1:$DEAD\"\} 0\$" \
    "$T/m.prom"
check "metrics: db has 1 upstream in the rotation" grep -qE \
    '^conduit_service_upstreams_in_rotation\{service="db",domain="db\.internal",mode="dns"\} 1$' \
    "$T/m.prom"
check "metrics: one TYPE line per health family" test "$(grep -c \
    '^# TYPE conduit_upstream_healthy gauge$' "$T/m.prom")" = 1

# ---- kill one: it leaves the rotation after the threshold, audited ----
echo "== kill one of web's upstreams: it leaves the rotation (health_check_fail)"
audit_has() {   # ACTION SERVICE UPSTREAM
    jq -e --arg a "$1" --arg s "$2" --arg u "$3" 'select(.action == $a and
        .details.service == $s and .details.upstream == $u)' "$STATE/audit.log" 2>/dev/null |
        grep -q .
}
kill "${UP_PID[$P2]}"; wait "${UP_PID[$P2]}" 2>/dev/null
u2_out() { up web "127.0.0.1:$P2" '.state == "unhealthy" and .in_rotation == false'; }
check "web: the killed upstream turns unhealthy, out of the rotation" wait_for 20 u2_out
snap
check_jq "web: the service stays healthy with 2 of 3 in the rotation" '.services[] |
    select(.name == "web") | .state == "healthy" and .upstreams_in_rotation == 2' "$T/h.json"
check_jq "web: the others stay in the rotation" '[.services[] | select(.name == "web") |
    .upstreams[] | select(.upstream != "127.0.0.1:'"$P2"'") | .in_rotation] == [true, true]' \
    "$T/h.json"
check_jq "web: the killed one counts its failures and says why" '.services[] |
    select(.name == "web") | .upstreams[1] | .consecutive_failures >= 2 and
    (.last_error | type == "string" and length > 0) and .last_status == null' "$T/h.json"
check "audit: health_check_fail names web and the killed upstream" wait_for 5 audit_has \
    health_check_fail web "127.0.0.1:$P2"
check "audit: health_check_fail names db and its dead upstream" audit_has \
    health_check_fail db "127.0.0.1:$DEAD"
check "audit: no health_check_fail for a live web upstream" test "$(jq -c --arg p1 \
    "127.0.0.1:$P1" --arg p3 "127.0.0.1:$P3" 'select(.action == "health_check_fail" and
    .details.service == "web" and (.details.upstream == $p1 or .details.upstream == $p3))' \
    "$STATE/audit.log" | wc -l)" = 0
check "audit: the fail line's numbers are integers" jq -e --arg u "127.0.0.1:$P2" 'select(
    .action == "health_check_fail" and .details.upstream == $u) | .details |
    (.latency_ms | floor == .) and (.http_status == 0) and .in_rotation == false and
    .upstreams_in_rotation == 2 and .upstreams_total == 3' "$STATE/audit.log"
cat "$MNT/monitor/metrics.prom" > "$T/m.prom"
check "metrics: the killed upstream's gauges are 0" grep -qE \
    "^conduit_upstream_in_rotation\{service=\"web\",upstream=\"127\.0\.0\.1:$P2\"\} 0\$" "$T/m.prom"

# routing: wired by the commit pipeline (health_on_rotation), checked where it is there
CJ=$STATE/routing/caddy.json
if [[ -f $CJ ]]; then
    check "routing: the proxy config leaves out the killed upstream" wait_for 10 sh -c \
        "! grep -qw '$P2' '$CJ'"
else
    echo "SKIP routing: no state/routing/caddy.json (the pipeline's rotation is not wired here)"
fi

# ---- bring it back: it rejoins the rotation ----
echo "== bring it back: it rejoins the rotation (health_check_recover)"
start_up "$P2"
u2_back() { up web "127.0.0.1:$P2" '.state == "healthy" and .in_rotation == true'; }
check "web: the restarted upstream is healthy and in the rotation again" wait_for 20 u2_back
check "audit: health_check_recover names web and the upstream" wait_for 5 audit_has \
    health_check_recover web "127.0.0.1:$P2"
snap
check_jq "web: 3 of 3 in the rotation again" '.services[] | select(.name == "web") |
    .upstreams_in_rotation == 3 and .state == "healthy"' "$T/h.json"
if [[ -f $CJ ]]; then
    check "routing: the proxy config has the upstream back" wait_for 10 grep -qw "$P2" "$CJ"
fi

# ---- a new list keeps what is known of the lines it keeps ----
echo "== a rewritten list keeps the state of the lines it keeps"
putl "$S/web/upstream" "127.0.0.1:$P3" "127.0.0.1:$P1" || bad "rewriting web's list"
snap
check_jq "web: a rewritten list keeps the state of kept upstreams" '.services[] |
    select(.name == "web") | [.upstreams[] | .upstream, .state] ==
    ["127.0.0.1:'"$P3"'", "healthy", "127.0.0.1:'"$P1"'", "healthy"]' "$T/h.json"
check "health.json still matches the schema" py3 "$HERE/check_schema.py" "$SCHEMAS" \
    health.json "$T/h.json"

# ---- every upstream down: the service is unhealthy ----
echo "== every upstream down: the service is unhealthy"
put "$S/web/upstream" "127.0.0.1:$DEAD"
web_down() { hq web '.state == "unhealthy" and .upstreams_in_rotation == 0' >/dev/null 2>&1; }
check "web: with its only upstream dead the service is unhealthy" wait_for 20 web_down
cat "$MNT/monitor/metrics.prom" > "$T/m.prom"
check "metrics: conduit_service_healthy of web is 0" grep -qE \
    '^conduit_service_healthy\{service="web",domain="web\.internal",mode="proxy"\} 0$' "$T/m.prom"

finish
