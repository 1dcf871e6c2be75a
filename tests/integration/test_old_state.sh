#!/usr/bin/env bash
# test_old_state.sh: a state directory made by the version before several upstreams (issue 16)
# still mounts and serves. It holds what that version wrote: a services.json of one upstream
# per service and no lb_policy, a Caddyfile in routing/, and a per-domain leaf pair in
# tls/<domain>/ signed by its CA (made here with the openssl CLI, as that version's layout
# has it). The mount must load every service as it was (a single upstream is a single line),
# leave services.json as it was (lb_policy stays out while it is the default), route and
# resolve with real Caddy, dnsmasq, curl and dig, drop the old Caddyfile, keep the CA, and
# archive the per-domain pair now that the serving leaves replace it.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY3=/usr/bin/python3
[[ -x $PY3 ]] || PY3=python3
UP_PORT=$(free_port)
"$PY3" "$HERE/upstream.py" "$UP_PORT" old >/dev/null 2>&1 &
UP_PID=$!
trap 'kill $UP_PID 2>/dev/null; cfs_cleanup' EXIT
wait_for 10 curl -sf "127.0.0.1:$UP_PORT/health"

# ---- the old state directory ----
mkdir -m 700 "$STATE"
mkdir -p -m 700 "$STATE/tls/web.internal" "$STATE/routing"
cat > "$STATE/services.json" <<EOF
{
  "version": 1,
  "services": [
    {
      "name": "web",
      "upstream": "127.0.0.1:$UP_PORT",
      "domain": "web.internal",
      "status": "active",
      "registered_at": "2026-11-01T10:00:00Z",
      "health_check": "/health",
      "mode": "proxy",
      "monitoring": {}
    },
    {
      "name": "db",
      "upstream": "127.0.0.9:5432",
      "domain": "data.internal",
      "status": "active",
      "registered_at": "2026-11-01T10:00:01Z",
      "health_check": "/health",
      "mode": "dns",
      "monitoring": {}
    },
    {
      "name": "idle",
      "upstream": "",
      "domain": "idle.internal",
      "status": "pending",
      "registered_at": "2026-11-01T10:00:02Z",
      "health_check": "/health",
      "mode": "proxy",
      "monitoring": {}
    },
    {
      "name": "gone",
      "upstream": "127.0.0.1:9",
      "domain": "gone.internal",
      "status": "inactive",
      "registered_at": "2026-11-01T10:00:03Z",
      "health_check": "/health",
      "mode": "proxy",
      "monitoring": {},
      "deregistered_at": "2026-11-02T10:00:00Z"
    }
  ]
}
EOF
chmod 600 "$STATE/services.json"
cp "$STATE/services.json" "$T/old.json"
printf '{\n\tadmin off\n}\nweb.internal {\n\treverse_proxy 127.0.0.1:%s\n}\n' "$UP_PORT" \
    > "$STATE/routing/Caddyfile"
# the old CA (ECDSA P-256) and web's per-domain pair, as that version laid them out
(
    cd "$STATE/tls" || exit 1
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -out ca.crt \
        -subj "/CN=QP Conduit Internal CA (old)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out web.internal/key.pem 2>/dev/null
    openssl req -new -key web.internal/key.pem -subj "/CN=web.internal" -out "$T/web.csr" \
        2>/dev/null
    printf 'subjectAltName=DNS:web.internal\nextendedKeyUsage=serverAuth\n' > "$T/ext"
    openssl x509 -req -in "$T/web.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -CAserial "$T/serial" -days 365 -sha256 -extfile "$T/ext" \
        -out web.internal/cert.pem 2>/dev/null
)
check "the old CA and pair are made" openssl verify -CAfile "$STATE/tls/ca.crt" \
    "$STATE/tls/web.internal/cert.pem"
old_ca=$(sha256sum < "$STATE/tls/ca.crt")

# ---- mount it ----
check "the old state directory mounts" cfs_mount_managed --domains internal
check_eq "services as they were" "$(ls "$S" | tr '\n' ' ')" "db idle web "
check_eq "web's single upstream is a single line" "$(cat "$S/web/upstream")" \
    "127.0.0.1:$UP_PORT"
check_eq "web's lb_policy is the default" "$(cat "$S/web/lb_policy")" "round_robin"
check_eq "db keeps dns mode and its domain" "$(cat "$S/db/mode") $(cat "$S/db/domain")" \
    "dns data.internal"
check_eq "idle is pending" "$(cat "$S/idle/upstream")" ""
check "services.json is what it was (lb_policy stays out while default)" "$PY3" -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(a != b or any("lb_policy" in s for s in b["services"]))' "$T/old.json" \
    "$STATE/services.json"
check "the CA is kept" test "$(sha256sum < "$STATE/tls/ca.crt")" = "$old_ca"
check "the old Caddyfile is gone" test ! -e "$STATE/routing/Caddyfile"
check "the proxy config is caddy.json" test -s "$STATE/routing/caddy.json"

https_get() {   # DOMAIN: the body through Caddy, verified against the CA
    curl -s --max-time 5 --cacert "$MNT/ca/ca.crt" \
        --resolve "$1:$HTTPS_PORT:127.0.0.1" "https://$1:$HTTPS_PORT/"
}
check "web is routed through Caddy" wait_for 15 sh -c \
    "curl -s --max-time 5 --cacert '$MNT/ca/ca.crt' --resolve web.internal:$HTTPS_PORT:127.0.0.1 \
    https://web.internal:$HTTPS_PORT/ | grep -q 'hello from old'"
check_eq "web answers" "$(https_get web.internal)" "hello from old"
check_eq "web resolves to the gateway" \
    "$(dig @127.0.0.1 -p "$DNS_PORT" +short +time=2 +tries=2 web.internal)" "127.0.0.1"
check_eq "db (dns mode) resolves to its upstream" \
    "$(dig @127.0.0.1 -p "$DNS_PORT" +short +time=2 +tries=2 data.internal)" "127.0.0.9"
check "idle (pending) has no record" sh -c "dig @127.0.0.1 -p $DNS_PORT +time=2 +tries=2 \
    idle.internal | grep -q 'status: NXDOMAIN'"
check "gone (inactive) has no record" sh -c "dig @127.0.0.1 -p $DNS_PORT +time=2 +tries=2 \
    gone.internal | grep -q 'status: NXDOMAIN'"
check "web is served by a serving leaf" test -n "$(ls "$STATE/tls/serving"/leaf-*.pem)"
check_eq "ca/certs shows the live domains" "$(ls "$MNT/ca/certs" | grep '\.pem$' | tr '\n' ' ')" \
    "data.internal.pem web.internal.pem "
check "the old per-domain pair is archived" sh -c \
    "ls '$STATE/tls/archive' | grep -q '^web\.internal\.'"
check "and gone from tls/" test ! -e "$STATE/tls/web.internal"

# ---- and it takes the new attributes from here on ----
printf '127.0.0.1:%s\n127.0.0.2:%s\n' "$UP_PORT" "$UP_PORT" > "$T/ups"
check "two upstreams for web" put_file "$T/ups" "$S/web/upstream"
check "lb_policy first" put "$S/web/lb_policy" "first"
check "services.json now holds the list and the policy" jq -e '.services[] |
    select(.name == "web") | .lb_policy == "first" and (.upstream | split("\n") | length) == 2' \
    "$STATE/services.json"
check_eq "web still answers" "$(https_get web.internal)" "hello from old"
cfs_unmount
finish
