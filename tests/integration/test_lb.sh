#!/usr/bin/env bash
# test_lb.sh: several upstreams behind one service, through real Caddy, dnsmasq and curl on
# loopback (issue 16). Three python upstreams that answer their own name: round_robin uses every
# one, first sends everything to the first; one killed while a client loops costs no request
# (Caddy's retries and passive health route around it); brought back, it is used again; all
# dead, the answer is a one-line 503. The proxy config is Caddy JSON whose routes do not grow
# with the services. dns mode with two upstreams answers both addresses, then the healthy one.
# It runs in a network namespace of its own (unshare -n, loopback only), like test_gateway.sh,
# so that the tcp_migrate_req setting conduitfs turns on for Caddy's reloads stays inside it.
CFS_NETNS=own
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
need_tools caddy dnsmasq dig curl jq

declare -A PORT PID
start_up() {  # NAME: an upstream on PORT[NAME] that answers "hello from NAME"
    "$PY3" "$HERE/upstream.py" "${PORT[$1]}" "$1" >/dev/null 2>&1 &
    PID[$1]=$!
    wait_for 10 curl -sf "127.0.0.1:${PORT[$1]}/health"
}
for u in u1 u2 u3; do PORT[$u]=$(free_port); start_up "$u"; done
cleanup_lb() {
    for u in u1 u2 u3; do kill "${PID[$u]}" 2>/dev/null; done
    kill "${WWW:-}" 2>/dev/null
    cfs_cleanup
}
trap cleanup_lb EXIT

cfs_mount_managed --health-interval 1 --health-timeout 1 --health-threshold 2

get() {  # one request to llm.internal: the upstream that answered, or HTTP-CODE on a failure
    local out
    out=$(curl -sS --http1.1 --max-time 10 --cacert "$MNT/ca/ca.crt" \
        --resolve "llm.internal:$HTTPS_PORT:127.0.0.1" -w ' %{http_code}' \
        "https://llm.internal:$HTTPS_PORT/" 2>/dev/null)
    set -- $out     # "hello from NAME CODE"
    if [[ $# -eq 4 && "$1 $2 $4" == "hello from 200" ]]; then echo "$3"; else echo "HTTP-${!#}"; fi
}
counts() { sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' '; }
tally() { for _ in $(seq "$1"); do get; done | counts; }  # N requests: "u1=4 u2=4 ..."

# three upstreams, one write, the order kept
check "register llm" mkdir "$S/llm"
printf '127.0.0.1:%s\n127.0.0.1:%s\n127.0.0.1:%s\n' "${PORT[u1]}" "${PORT[u2]}" \
    "${PORT[u3]}" > "$T/ups"
check "three upstreams in one write" put_file "$T/ups" "$S/llm/upstream"
check_eq "the list reads back in order" "$(cat "$S/llm/upstream")" "$(cat "$T/ups")"
printf '127.0.0.1:%s\n127.0.0.1:%s\n' "${PORT[u1]}" "${PORT[u1]}" > "$T/dup"
check_fails "a duplicate line is EINVAL" "Invalid argument" put_file "$T/dup" "$S/llm/upstream"
check "and says which line" grep -q '"path":"services/llm/upstream".*"reason":"upstream line 2' \
    "$STATE/audit.log"
printf 'https://127.0.0.1:%s\nhttp://127.0.0.1:%s\n' "${PORT[u1]}" "${PORT[u2]}" > "$T/mixed"
check_fails "two schemes are EINVAL" "Invalid argument" put_file "$T/mixed" "$S/llm/upstream"
for i in $(seq 1 65); do echo "127.0.1.$i:80"; done > "$T/65"
check_fails "65 upstreams are EINVAL" "Invalid argument" put_file "$T/65" "$S/llm/upstream"
check_eq "each refusal left the list as it was" "$(cat "$S/llm/upstream")" "$(cat "$T/ups")"
check_eq "lb_policy defaults to round_robin" "$(cat "$S/llm/lb_policy")" "round_robin"

# the proxy's config is Caddy JSON: the service is one name in its pool's host list
CONF=$STATE/routing/caddy.json
pool_of() {  # DOMAIN: the jq expression of the pool key whose route lists DOMAIN
    echo "[.apps.http.servers.conduitfs.routes[] | select(.match[0].host // [] | index(\"$1\"))
        | .\"@id\"] == [\"cfs-pool-$2\"]"
}
check "caddy runs on caddy.json" pgrep -f "caddy run --config $CONF"
check_jq "the service's pool lists its domain" "$(pool_of llm.internal 3-round_robin-http)" \
    "$CONF"
check "wait until served" wait_for 10 sh -c "curl -sf --cacert '$MNT/ca/ca.crt' --resolve \
    llm.internal:$HTTPS_PORT:127.0.0.1 https://llm.internal:$HTTPS_PORT/"

# round_robin: every upstream gets requests
t=$(tally 12)
echo "round_robin, 12 requests:" $t
check_eq "round_robin uses all three" "$t" "u1=4 u2=4 u3=4 "

# a change that alters nothing the proxy serves loads nothing into Caddy
loads() { grep -c '"uri":"/load"' "$STATE/log/caddy.log"; }
n0=$(loads)
check "a health_check write" put "$S/llm/health_check" "/healthz"
check "a monitoring write" put "$S/llm/monitoring" '{"type":"container","container_name":"llm"}'
check "a no-op upstream write" put_file "$T/ups" "$S/llm/upstream"
check "a pending registration" mkdir "$S/later"
check "and its removal" rmdir "$S/later"
check_eq "none of them reloaded the proxy" "$(loads)" "$n0"
check "a real change" put "$S/llm/lb_policy" "least_conn"
check_eq "reloads it once" "$(loads)" "$((n0 + 1))"
check "back to round_robin" put "$S/llm/lb_policy" "round_robin"

# more services of one shape do not add routes or handlers: only map entries
nroutes() { jq '.apps.http.servers.conduitfs.routes | length' "$CONF"; }
nhandlers() { jq '[.apps.http.servers.conduitfs.routes | .. | objects | select(has("handler"))]
    | length' "$CONF"; }
r1=$(nroutes); h1=$(nhandlers)
for i in 1 2 3 4 5 6; do
    mkdir "$S/m$i" && put_file "$T/ups" "$S/m$i/upstream"
done
check_eq "six more services: same routes" "$(nroutes)" "$r1"
check_eq "six more services: same handlers" "$(nhandlers)" "$h1"
check_jq "six more services: six more names in the host lists" \
    '[.apps.http.servers.conduitfs.routes[].match[0].host // [] | .[]] | length == 7' "$CONF"
for i in 1 2 3 4 5 6; do rmdir "$S/m$i"; done

# a pending service has no route and no DNS record
check "register a pending service" mkdir "$S/idle"
check_fails "pending: no route" "" grep -q idle.internal "$CONF"
check "pending: NXDOMAIN" sh -c "dig @127.0.0.1 -p $DNS_PORT idle.internal |
    grep -q 'status: NXDOMAIN'"

# first: everything goes to the first upstream
check "lb_policy first" put "$S/llm/lb_policy" "first"
check_fails "an unknown policy is EINVAL" "Invalid argument" put "$S/llm/lb_policy" "fastest"
check_eq "the policy reads back" "$(cat "$S/llm/lb_policy")" "first"
t=$(tally 9)
echo "first, 9 requests:" $t
check_eq "first sends everything to u1" "$t" "u1=9 "

# first with u1 killed: the next one takes every request, none fails
kill "${PID[u1]}"; wait "${PID[u1]}" 2>/dev/null
t=$(tally 9)
echo "first, u1 killed, 9 requests:" $t
check_eq "first fails over to u2 without a failed request" "$t" "u2=9 "
start_up u1

# round_robin, u2 killed while a client loops: no failed request from that moment on
check "back to round_robin" put "$S/llm/lb_policy" "round_robin"
check "u1 is used again" wait_for 15 sh -c "for i in 1 2 3 4 5 6; do curl -s --cacert \
    '$MNT/ca/ca.crt' --resolve llm.internal:$HTTPS_PORT:127.0.0.1 \
    https://llm.internal:$HTTPS_PORT/; done | grep -q 'from u1'"
( for _ in $(seq 60); do get; done > "$T/loop" ) &
LOOP=$!
wait_for 10 sh -c "[ \$(wc -l < '$T/loop') -ge 10 ]"
kill "${PID[u2]}"; wait "${PID[u2]}" 2>/dev/null
KILLED_AT=$(wc -l < "$T/loop")
wait "$LOOP"
after=$(tail -n +"$((KILLED_AT + 2))" "$T/loop")
echo "round_robin loop: u2 killed after $KILLED_AT of 60 requests; answers from then on:" \
    "$(counts <<< "$after")"
check_eq "no failed request after the kill" "$(grep -c '^HTTP' <<< "$after")" "0"
check_eq "u2 answers nothing after the kill" "$(grep -c '^u2$' <<< "$after")" "0"
check "u1 and u3 share the load" sh -c "grep -q '^u1$' '$T/loop' && grep -q '^u3$' '$T/loop'"

# bring u2 back: it is used again (once Caddy's passive window and the prober let it in)
start_up u2
check "u2 is used again" wait_for 20 sh -c "for i in 1 2 3 4 5 6; do curl -s --cacert \
    '$MNT/ca/ca.crt' --resolve llm.internal:$HTTPS_PORT:127.0.0.1 \
    https://llm.internal:$HTTPS_PORT/; done | grep -q 'from u2'"

# every upstream dead: once the prober takes them out of the rotation, the service's pool is
# "down" and the answer is 503 with one line naming the service (until then Caddy's passive
# checks may answer its own 503 or a 502)
for u in u1 u2 u3; do kill "${PID[$u]}"; wait "${PID[$u]}" 2>/dev/null; done
check "all dead: 503" wait_for 20 sh -c "[ \"\$(curl -s -w '%{http_code}' \
    --cacert '$MNT/ca/ca.crt' --resolve llm.internal:$HTTPS_PORT:127.0.0.1 \
    https://llm.internal:$HTTPS_PORT/ | tr '\\n' ' ')\" = \
    'service llm has no healthy upstream 503' ]"
check_eq "the 503 says why in one line" "$(curl -s --cacert "$MNT/ca/ca.crt" --resolve \
    "llm.internal:$HTTPS_PORT:127.0.0.1" "https://llm.internal:$HTTPS_PORT/")" \
    "service llm has no healthy upstream"
check_jq "the down pool lists llm" "$(pool_of llm.internal down)" "$CONF"
start_up u1
check "one back: served again" wait_for 20 sh -c "curl -sf --cacert '$MNT/ca/ca.crt' \
    --resolve llm.internal:$HTTPS_PORT:127.0.0.1 https://llm.internal:$HTTPS_PORT/ |
    grep -q 'from u1'"

# dns mode with two upstreams: DNS answers both addresses (ports are not in DNS), then only the
# healthy one; with none healthy, both again (DNS cannot answer 503)
DB_PORT=$(free_port)
mkdir -p "$T/www"
(cd "$T/www" && exec "$PY3" -m http.server -b 127.0.0.21 "$DB_PORT" >/dev/null 2>&1) &
WWW=$!
check "register db" mkdir "$S/db"
printf '127.0.0.21:%s\n127.0.0.22:%s\n' "$DB_PORT" "$DB_PORT" > "$T/dbups"
check "two upstreams" put_file "$T/dbups" "$S/db/upstream"
check "dns mode" put "$S/db/mode" "dns"
dbdig() { dig @127.0.0.1 -p "$DNS_PORT" +short db.internal | sort | tr '\n' ' '; }
check_eq "dig answers both upstreams" "$(dbdig)" "127.0.0.21 127.0.0.22 "
check_fails "dns mode: no route" "" grep -q db.internal "$CONF"
check "health_check / (the directory listing answers 200)" put "$S/db/health_check" "/"
check "then only the healthy one" wait_for 20 sh -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT \
    +short db.internal)\" = 127.0.0.21 ]"
kill "$WWW"; wait "$WWW" 2>/dev/null
check "none healthy: both again" wait_for 20 sh -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT \
    +short db.internal | sort | tr '\n' ' ')\" = '127.0.0.21 127.0.0.22 ' ]"
finish
