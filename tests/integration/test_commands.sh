#!/usr/bin/env bash
# test_commands.sh: the conduit-* command wrappers in scripts/ against a live mount (dnsmasq and
# Caddy supervised on loopback ports, a python upstream): every command's --help, both option
# spellings, exit status 0/1/2, the one-line error texts with the errno, all-or-nothing register,
# nothing printed as success after a failure, status/dns against the running dnsmasq, rotation,
# the audit log filters and follow, online and offline verification, and the bash completion.
# shellcheck disable=SC2016,SC2012  # file-wide: single-quoted jq and $VARS; ls of our names

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SC=$(cd "$HERE/../../scripts" && pwd)
need_tools caddy dnsmasq dig curl python3 jq openssl
ALL=(register deregister status monitor certs ca dns logs verify)

echo "NOTE: nvidia-smi is a FAKE here (a script printing one GPU in nvidia-smi's CSV form)"
FAKE=$T/fakebin
mkdir -p "$FAKE"
cat > "$FAKE/nvidia-smi" <<'EOF'
#!/bin/sh
# FAKE nvidia-smi for test_commands.sh
case "$1" in
--query-gpu=*) echo "0, GPU-00000000-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, 41, 7, 2048, 81559, 120.5" ;;
--query-compute-apps=*) ;;
*) exit 2 ;;
esac
EOF
chmod 755 "$FAKE/nvidia-smi"

UP_PORT=$(free_port)
PY=/usr/bin/python3             # as py3 in lib.sh, but a binary: $! must be python itself
[[ -x $PY ]] || PY=python3
"$PY" "$HERE/upstream.py" "$UP_PORT" core >/dev/null 2>&1 &
UP_PID=$!
FOLLOW_PID=
cmd_cleanup() {
    [[ -n $FOLLOW_PID ]] && kill -- -"$FOLLOW_PID" 2>/dev/null
    kill "$UP_PID" 2>/dev/null
    cfs_cleanup
}
trap cmd_cleanup EXIT

PATH="$FAKE:$PATH" cfs_mount_managed --health-interval 1 --health-timeout 1
export CONDUIT_MOUNT=$MNT CONDUIT_DNS=127.0.0.1:$DNS_PORT
export CONDUITFS

# c NAME ARGS...: run scripts/conduit-NAME.sh; stdout in $T/c.out, stderr in $T/c.err, status in RC.
c() {
    local name=$1; shift
    RC=0
    "$SC/conduit-$name.sh" "$@" >"$T/c.out" 2>"$T/c.err" || RC=$?
}
# rc DESCRIPTION WANT: the last command's exit status.
rc() { check_eq "$1: exit status (stderr: $(head -c 200 "$T/c.err"))" "$RC" "$2"; }
# err DESCRIPTION TEXT: stderr is exactly the one line TEXT.
err() { check_eq "$1: stderr" "$(cat "$T/c.err")" "$2"; }
# quiet DESCRIPTION: nothing on stdout (no success printed after a failure).
quiet() { check_eq "$1: nothing on stdout" "$(cat "$T/c.out")" ""; }
# fails DESCRIPTION WANT-STATUS STDERR NAME ARGS...: a failing command, fully checked.
fails() {
    local what=$1 want=$2 text=$3; shift 3
    c "$@"
    rc "$what" "$want"
    err "$what" "$text"
    quiet "$what"
}
out() { cat "$T/c.out"; }
get() {
    curl -sS --max-time 5 --cacert "$MNT/ca/ca.crt" \
        --resolve "$1:$HTTPS_PORT:127.0.0.1" "https://$1:$HTTPS_PORT${2:-/}"
}

# ---- every command: --help, an unknown option, an unexpected argument ----
for n in "${ALL[@]}"; do
    c "$n" --help
    rc "$n --help" 0
    check "$n --help prints its usage" grep -q "^usage: conduit-$n" "$T/c.out"
    check_eq "$n --help: stderr empty" "$(cat "$T/c.err")" ""
    fails "$n --bogus" 2 "conduit-$n: unknown option --bogus (see --help)" "$n" --bogus
done
for n in register deregister status monitor certs dns logs verify; do
    fails "$n with a stray word" 2 "conduit-$n: unexpected argument stray (see --help)" "$n" stray
done

# ---- register: arguments ----
fails "register without --name" 2 "conduit-register: missing --name (see --help)" \
    register --upstream 127.0.0.1:1
fails "register without --upstream" 2 "conduit-register: missing --upstream (see --help)" \
    register --name x
fails "register --name without a value" 2 \
    "conduit-register: option --name needs a value (see --help)" register --name
fails "register --name followed by an option" 2 \
    "conduit-register: option --name needs a value (see --help)" register --name --upstream 1.2.3.4:5
fails "register --name= empty" 2 "conduit-register: option --name needs a value (see --help)" \
    register --name= --upstream 1.2.3.4:5
fails "register --mode bogus" 2 \
    "conduit-register: --mode: \"bogus\" is not proxy or dns (see --help)" \
    register --name x --upstream 1.2.3.4:5 --mode bogus
fails "register a path as name" 2 \
    "conduit-register: --name: \"../ca\" is not a service name (see --help)" \
    register --name ../ca --upstream 1.2.3.4:5
check_eq "bad arguments registered nothing" "$(ls "$S" | wc -l)" "0"

# ---- register: success, both spellings ----
c register --name core --upstream "127.0.0.1:$UP_PORT"
rc "register core" 0
check_eq "register core says so" "$(out)" \
    "registered core: core.internal -> 127.0.0.1:$UP_PORT (proxy)"
check_eq "core's upstream" "$(cat "$S/core/upstream")" "127.0.0.1:$UP_PORT"
c register --name=api "--upstream=127.0.0.1:$UP_PORT" --domain=gw.internal --health=/health \
    --mode=proxy
rc "register api, --opt=value" 0
check_eq "register api says so" "$(out)" \
    "registered api: gw.internal -> 127.0.0.1:$UP_PORT (proxy)"
check_eq "api's domain" "$(cat "$S/api/domain")" "gw.internal"
c register --name db --upstream 127.0.0.2:5432 --mode dns --health /ready
rc "register db in dns mode" 0
check_eq "db's mode" "$(cat "$S/db/mode")" "dns"
check_eq "db's health_check" "$(cat "$S/db/health_check")" "/ready"
check_eq "HTTPS through Caddy reaches core" "$(get core.internal)" "hello from core"

# ---- register: failures are all or nothing, with the errno text and the reason ----
# (issue 13 items 3 and 6: one write of the whole service to services/.apply; a refusal leaves
# no register/issue/deregister/archive line and no certificate, and says why)
fails "register a bad upstream" 1 \
    "conduit-register: services/broken: Invalid argument (upstream: no :PORT: the form is [http://|https://]HOST:PORT); nothing registered" \
    register --name broken --upstream nope
check_fails "broken was never registered" "" test -e "$S/broken"
check "the refusal is one failure entry naming the path, the caller and the reason" jq -e -s \
    'map(select(.details.name == "broken" or .details.path == "services/broken")) | length == 1 and
     .[0].status == "failure" and
     .[0].action == "change_refused" and .[0].details.operation == "service_register" and
     .[0].details.path == "services/broken" and
     .[0].user == "root" and (.[0].details.reason | startswith("upstream: no :PORT"))' \
    "$STATE/audit.log"
fails "register a bad domain" 1 \
    "conduit-register: services/broken: Invalid argument (domain: the domain does not end, after a label, in a suffix that --domains allows); nothing registered" \
    register --name broken --upstream 127.0.0.1:1 --domain broken.example
fails "register a hostname upstream in dns mode" 1 \
    "conduit-register: services/broken: Invalid argument (upstream: a dns-mode service needs an IP address, not a hostname); nothing registered" \
    register --name broken --upstream db.example:5432 --mode dns
fails "register a taken domain" 1 \
    "conduit-register: services/broken: File exists (domain: gw.internal is the domain of service api); nothing registered" \
    register --name broken --upstream 127.0.0.1:1 --domain gw.internal
fails "register a bad health path" 1 \
    "conduit-register: services/broken: Invalid argument (health_check: a health check path starts with one '/'); nothing registered" \
    register --name broken --upstream 127.0.0.1:1 --health nope
check "failed registrations sealed only failure entries" jq -e -s \
    '[.[] | select(.details.name == "broken" or .details.path == "services/broken" or
      .details.domain == "broken.internal" or
      .details.domain == "broken.example")] | length == 5 and all(.status == "failure")' \
    "$STATE/audit.log"
check_fails "failed registrations left no certificate" "" test -e "$STATE/tls/broken.internal"
check_fails "nor an archived one" "" \
    bash -c "ls '$STATE/tls/archive' 2>/dev/null | grep -q broken"
check_eq "no broken service left" "$(ls "$S" | tr '\n' ' ')" "api core db "
# issue 13 item 5: a name whose default domain another service has (api has gw.internal)
c register --name gw --domain gw2.internal --upstream "127.0.0.1:$UP_PORT"
rc "register gw at gw2.internal while api has gw.internal" 0
check_eq "register gw says so" "$(out)" "registered gw: gw2.internal -> 127.0.0.1:$UP_PORT (proxy)"
c deregister --name gw
rc "deregister gw" 0
fails "register an existing name" 1 "conduit-register: services/core: File exists" \
    register --name core --upstream 127.0.0.9:9
check_eq "the existing service is untouched" "$(cat "$S/core/upstream")" "127.0.0.1:$UP_PORT"
fails "register an invalid name" 1 \
    "conduit-register: services/Bad_Name: Invalid argument (a name is 1-63 of a-z, 0-9 and '-', not starting or ending with '-'); nothing registered" \
    register --name Bad_Name --upstream 127.0.0.1:1
CONDUIT_MOUNT=$T/nowhere fails "register without a mount" 1 \
    "conduit-register: $T/nowhere is not a conduitfs mount (no services/ there); set CONDUIT_MOUNT" \
    register --name x --upstream 127.0.0.1:1

# ---- status ----
core_healthy() {
    [[ $(jq -r '.services[] | select(.name=="core") | .state' "$MNT/monitor/health.json") == healthy ]]
}
check "core turns healthy" wait_for 15 core_healthy
c status
rc "status" 0
check_eq "status header" "$(out | head -1 | tr -s ' ')" "NAME DOMAIN UPSTREAM MODE HEALTH TLS_DAYS DNS"
check "status row for core" grep -qE \
    "^core +core\.internal +127\.0\.0\.1:$UP_PORT +proxy +healthy +36[45] +127\.0\.0\.1$" "$T/c.out"
check "status row for db" grep -qE "^db +db\.internal +127\.0\.0\.2:5432 +dns +[a-z]+ +36[45] +127\.0\.0\.2$" \
    "$T/c.out"
c status --json
rc "status --json" 0
check "status --json is a JSON array of 3" jq -e 'type == "array" and length == 3' "$T/c.out"
check "status --json core" jq -e '.[] | select(.name == "core") | .domain == "core.internal" and
    .status == "active" and .mode == "proxy" and .health == "healthy" and
    .tls_days_left >= 364 and .dns == "127.0.0.1" and .dns_ok == true' "$T/c.out"
check "status --json db answers the upstream" jq -e '.[] | select(.name == "db") |
    .dns == "127.0.0.2" and .dns_ok == true' "$T/c.out"
check "status --json keys" jq -e '.[0] | keys_unsorted == ["name","domain","upstream","mode",
    "status","health","tls_days_left","dns","dns_ok"]' "$T/c.out"
mkdir "$S/idle"
c status --json
check "a pending service" jq -e '.[] | select(.name == "idle") | .status == "pending" and
    .upstream == "" and .dns == null and .dns_ok == true' "$T/c.out"
c status
check "pending in the table" grep -qE "^idle +idle\.internal +\(pending\) " "$T/c.out"
rmdir "$S/idle"
dead=$(free_port)
start=$SECONDS
CONDUIT_DNS=127.0.0.1:$dead c status --json
rc "status with dnsmasq unreachable" 0
check "DNS check fails without a server" jq -e 'all(.dns == null and .dns_ok == false)' "$T/c.out"
check "an unreachable server is asked once, not per service" test $((SECONDS - start)) -lt 10
CONDUIT_DNS=localhost:x fails "status with a bad CONDUIT_DNS" 2 \
    "conduit-status: CONDUIT_DNS: \"localhost:x\" is not ADDR:PORT (see --help)" status

# ---- dns ----
c dns --resolve core
rc "dns --resolve a service" 0
check_eq "dns --resolve core" "$(out)" "core.internal 127.0.0.1"
c dns --resolve=db.internal
check_eq "dns --resolve=domain, dns mode" "$(out)" "db.internal 127.0.0.2"
c dns
rc "dns for every service" 0
check_eq "dns for every service" "$(out | sort | tr '\n' ' ')" \
    "core.internal 127.0.0.1 db.internal 127.0.0.2 gw.internal 127.0.0.1 "
fails "dns --resolve an unknown domain" 1 "conduit-dns: nope.internal: NXDOMAIN" \
    dns --resolve nope.internal
fails "dns --resolve an unknown service" 1 \
    "conduit-dns: services/nope/domain: No such file or directory" dns --resolve nope
CONDUIT_DNS=127.0.0.1:$dead c dns --resolve core
rc "dns with dnsmasq unreachable" 1
check "dns says it got no answer" grep -q "^conduit-dns: no answer from 127.0.0.1:$dead" "$T/c.err"
quiet "dns with dnsmasq unreachable"
fails "dns --resolve without a value" 2 "conduit-dns: option --resolve needs a value (see --help)" \
    dns --resolve

# ---- certs ----
c certs
rc "certs" 0
check_eq "certs header" "$(out | head -1 | tr -s ' ')" "DOMAIN SERVICE SERIAL NOT_AFTER DAYS_LEFT"
old=$(jq -r .serial "$MNT/ca/certs/core.internal.json")
check "certs lists core" grep -qE "^core\.internal +core +$old +[0-9T:-]+Z +36[45]$" "$T/c.out"
check_eq "certs lists every leaf" "$(out | tail -n +2 | awk '{print $1}' | sort | tr '\n' ' ')" \
    "core.internal db.internal gw.internal "
c certs --inspect core
rc "certs --inspect" 0
check "inspect shows the JSON" grep -q '"serial": "'"$old"'"' "$T/c.out"
check "inspect shows openssl's text" grep -q "DNS:core.internal" "$T/c.out"
c certs --rotate core
rc "certs --rotate" 0
new=$(jq -r .serial "$MNT/ca/certs/core.internal.json")
check "a new serial" test -n "$new" -a "$new" != "$old"
check "rotate says old and new" grep -q "^rotated core.internal: serial $old -> $new, not after " \
    "$T/c.out"
check "cert_rotate in the audit log" jq -e -s --arg s "$new" \
    'any(.action == "cert_rotate" and .details.serial == $s)' "$STATE/audit.log"
check_eq "still served after the rotation" "$(get core.internal)" "hello from core"
c certs --rotate=gw.internal
rc "certs --rotate=domain" 0
fails "certs --rotate an unknown service" 1 \
    "conduit-certs: services/nope/domain: No such file or directory" certs --rotate nope
fails "certs --rotate an unknown domain" 1 \
    "conduit-certs: ca/certs/nope.internal.pem: No such file or directory" \
    certs --rotate nope.internal
fails "certs --rotate and --inspect" 2 "conduit-certs: give one of --rotate, --inspect (see --help)" \
    certs --rotate core --inspect core

# ---- ca ----
c ca export
rc "ca export" 0
check "ca export is ca.crt" cmp "$T/c.out" "$STATE/tls/ca.crt"
c ca trust --os debian
rc "ca trust --os debian" 0
check "trust debian is trust/debian.sh" cmp "$T/c.out" "$MNT/ca/trust/debian.sh"
c ca trust --os=windows
check "trust windows is trust/windows.ps1" cmp "$T/c.out" "$MNT/ca/trust/windows.ps1"
if grep -qiE '^(ID|ID_LIKE)=.*debian' /etc/os-release 2>/dev/null; then
    c ca trust
    check "trust without --os on Debian" cmp "$T/c.out" "$MNT/ca/trust/debian.sh"
fi
fails "ca without a command" 2 "conduit-ca: missing command: export or trust (see --help)" ca
fails "ca frob" 2 "conduit-ca: unknown command frob (export or trust) (see --help)" ca frob
fails "ca trust --os plan9" 2 \
    "conduit-ca: --os: \"plan9\" is not debian, rhel, macos, windows, firefox or docker (see --help)" \
    ca trust --os plan9
fails "ca export --os" 2 "conduit-ca: --os goes with trust (see --help)" ca export --os debian

# ---- monitor ----
# No Docker Engine socket here: the containers probe reports an error, which is shown and makes
# the exit status 1 (issue 13); the probes that answer exit 0.
c monitor
rc "monitor with a failed probe" 1
check "the failed probe is still shown" grep -q "^== local containers at " "$T/c.out"
check "with its error" grep -q "^error" "$T/c.out"
c monitor --server
rc "monitor --server: the probe answered" 0
c monitor --containers --json
rc "monitor --containers --json: the probe failed" 1
check "its document is printed" jq -e '.type == "containers" and .error != null' "$T/c.out"
c monitor
check "monitor shows the server" grep -q "^== local server at " "$T/c.out"
check "monitor shows memory" grep -qE "^memory +[0-9.]+ of [0-9.]+ GiB used" "$T/c.out"
check "monitor shows the GPU table" grep -qE "^0 +NVIDIA H100 80GB HBM3 +41 +7 +2048 +81559 +120.5 +0$" \
    "$T/c.out"
check "monitor shows the containers probe" grep -q "^== local containers at " "$T/c.out"
c monitor --gpu
check_eq "monitor --gpu: a heading and two rows" "$(out | wc -l)" "3"
c monitor --target=local --server --json
rc "monitor --server --json" 0
check "raw server.json" jq -e '.type == "server" and .target == "local" and .metrics.memory.total_bytes > 0' \
    "$T/c.out"
c monitor --json
check_eq "monitor --json: one document per probe" "$(jq -r .type "$T/c.out" | tr '\n' ' ')" \
    "server gpu containers "
fails "monitor --target unknown" 1 "conduit-monitor: monitor/nope: No such file or directory" \
    monitor --target nope
fails "monitor two files" 2 "conduit-monitor: give one of --server, --gpu, --containers (see --help)" \
    monitor --gpu --server
fails "monitor --target without a value" 2 \
    "conduit-monitor: option --target needs a value (see --help)" monitor --target

# ---- logs ----
c logs
rc "logs" 0
check "logs is the whole audit.log" cmp "$T/c.out" "$STATE/audit.log"
c logs --action service_register
check_eq "logs --action" "$(jq -r .action "$T/c.out" | sort -u)" "service_register"
check_eq "logs --action finds every one" "$(out | wc -l)" \
    "$(jq -c 'select(.action == "service_register")' "$STATE/audit.log" | wc -l)"
since=$(jq -r .timestamp "$STATE/audit.log" | sort -u | tail -2 | head -1)
c logs "--since=$since"
check_eq "logs --since" "$(out | wc -l)" \
    "$(jq -c --arg t "$since" 'select(.timestamp >= $t)' "$STATE/audit.log" | wc -l)"
c logs --since 2999-01-01 --action service_register
rc "logs --since in the future" 0
check_eq "logs --since in the future" "$(out)" ""
fails "logs --since bad" 2 "conduit-logs: --since: \"yesterday\" is not YYYY-MM-DDTHH:MM:SSZ (see --help)" \
    logs --since yesterday
fails "logs --action bad" 2 'conduit-logs: --action: "a"b" is not an action name (see --help)' \
    logs --action 'a"b'
mkdir -p "$T/fake/services"
CONDUIT_MOUNT=$T/fake fails "logs without audit/" 1 \
    "conduit-logs: audit/audit.log: No such file or directory" logs
setsid "$SC/conduit-logs.sh" --follow --action service_register >"$T/follow" 2>&1 &
FOLLOW_PID=$!
sleep 1
"$SC/conduit-register.sh" --name late --upstream "127.0.0.1:$UP_PORT" >/dev/null
check "logs --follow sees a new line" wait_for 10 grep -q '"name":"late"' "$T/follow"
check_eq "logs --follow filters" "$(jq -r .action "$T/follow" | sort -u)" "service_register"
kill -- -"$FOLLOW_PID" 2>/dev/null
wait "$FOLLOW_PID" 2>/dev/null
FOLLOW_PID=

# ---- deregister ----
c deregister --name late
rc "deregister" 0
check_eq "deregister says so" "$(out)" "deregistered late"
check_fails "late is gone" "" test -e "$S/late"
c deregister --name=api
rc "deregister --name=" 0
fails "deregister twice" 1 "conduit-deregister: services/api: No such file or directory" \
    deregister --name api
fails "deregister without --name" 2 "conduit-deregister: missing --name (see --help)" deregister
fails "deregister a path" 2 "conduit-deregister: --name: \"..\" is not a service name (see --help)" \
    deregister --name=..

# ---- verify: online ----
c verify
rc "verify" 0
check "verify says ok" grep -qE "^ok: [0-9]+ entries, head sequence [0-9]+, hash [0-9a-f]{64}$" \
    "$T/c.out"
fails "verify --pubkey without --state" 2 "conduit-verify: --pubkey goes with --state (see --help)" \
    verify --pubkey "$(printf '0%.0s' {1..64})"
fails "verify --pubkey malformed" 2 \
    "conduit-verify: --pubkey: expected 64 lowercase hex characters (see --help)" \
    verify --state "$STATE" --pubkey xyz
pub=$(cat "$MNT/audit/pubkey")

# ---- completion ----
complete_words() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _conduit; printf "%s " "${COMPREPLY[@]}"' _ "$SC/conduit-completion.bash" "$@"
}
check_eq "completes options" "$(complete_words conduit-register --)" \
    "--name --upstream --domain --health --mode --help "
check_eq "completes service names" "$(complete_words conduit-deregister --name '')" "core db "
check_eq "completes --opt=value" "$(complete_words conduit-certs.sh --rotate = c)" "core "
check_eq "completes modes" "$(complete_words conduit-register --mode '')" "proxy dns "
check_eq "completes targets" "$(complete_words conduit-monitor --target '')" "local "
check_eq "completes ca commands" "$(complete_words conduit-ca '')" "export trust --help "
check "completion file is loadable by complete" bash -c \
    "source '$SC/conduit-completion.bash' && complete -p conduit-status | grep -q _conduit"

# ---- verify offline, on the unmounted state ----
cfs_unmount
c verify --state "$STATE"
rc "verify --state" 0
check "offline ok line" grep -qE "^ok: [0-9]+ entries, head sequence [0-9]+, hash [0-9a-f]{64}, key $pub$" \
    "$T/c.out"
c verify --state "$STATE" --pubkey "$pub"
rc "verify --state --pubkey, the right key" 0
c verify --state "$STATE" --pubkey "$(printf 'a%.0s' {1..64})"
rc "verify --state --pubkey, another key" 1
quiet "verify --state --pubkey, another key"
fails "verify --state nowhere" 1 "conduit-verify: $T/nope: No such directory" verify --state "$T/nope"
# conduit-verify finds conduitfs by itself: no $CONDUITFS, and none on PATH, from a checkout
# it uses build/conduitfs (issue 13)
RC=0
env -u CONDUITFS PATH=/usr/bin:/bin "$SC/conduit-verify.sh" --state "$STATE" >"$T/c.out" \
    2>"$T/c.err" || RC=$?
rc "verify --state without CONDUITFS" 0
check "verify --state without CONDUITFS: the ok line" grep -q "^ok: " "$T/c.out"

# ---- a new CA, as docs/operations.md says: unmount, move the pair aside, mount again ----
old_fp=$(openssl x509 -in "$STATE/tls/ca.crt" -noout -fingerprint -sha256)
mkdir "$T/old-ca"
mv "$STATE/tls/ca.key" "$STATE/tls/ca.crt" "$T/old-ca/"
cfs_mount_managed
export CONDUIT_DNS=127.0.0.1:$DNS_PORT
check "a new root" test "$(openssl x509 -in "$STATE/tls/ca.crt" -noout -fingerprint -sha256)" != \
    "$old_fp"
c ca export
check "ca export gives the new root" cmp "$T/c.out" "$STATE/tls/ca.crt"
for f in "$MNT"/ca/certs/*.pem; do
    check "${f##*/} reissued under the new root" openssl verify -CAfile "$MNT/ca/ca.crt" "$f"
done
# the two live names share one serving leaf: it is reissued once, under the new root
at_mount='select(.action == "tls_issue" and .details.reason == "leaf missing or invalid at mount")'
check_eq "one tls_issue at mount for the serving leaf of both live names" \
    "$(jq -r "$at_mount"' | "\(.details.leaf) \(.details.name_count)"' "$STATE/audit.log")" \
    "leaf-0001.pem 2"
prev=$(jq -r "$at_mount | .details.previous_serial" "$STATE/audit.log")
check "the old leaf is archived" test -s "$STATE/tls/archive/leaf-0001.$prev.pem"
check_eq "Caddy serves the new leaf" "$(get core.internal)" "hello from core"
c status --json
check "status after the new CA" jq -e '.[] | select(.name == "core") | .tls_days_left >= 364 and
    .dns == "127.0.0.1"' "$T/c.out"
c verify
rc "the chain still verifies after the remount" 0

# ---- a broken chain, online then offline ----
py3 - "$STATE/audit.log" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    i = data.index(b'"Registered service core"')
    f.seek(i + 20)
    f.write(b"C")               # "core" -> "Core": same length, in place
EOF
c verify
rc "verify a tampered log" 1
check "verify names the first error" grep -qE \
    "^conduit-verify: audit chain broken: sequence [0-9]+: audit.log line [0-9]+ differs" "$T/c.err"
quiet "verify a tampered log"
cfs_unmount
c verify --state="$STATE"
rc "verify --state on the tampered state" 1
quiet "verify --state on the tampered state"
finish
