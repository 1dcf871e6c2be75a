#!/usr/bin/env bash
# test_hostile.sh: a table of hostile values fed through every writable path: the five service
# attributes, a monitor target's target.json, audit appends, and mkdir names (services and
# targets). Shell metacharacters, newlines, NULs, proxy config and dnsmasq directive injection,
# overlong values, invalid UTF-8, duplicate JSON keys, 10,000-deep nesting, huge numbers, path
# traversal, option injection. Each is refused with its documented errno (EINVAL, EFBIG over
# 4 KiB, EPERM for forbidden operations) and the registry, every config, the target table and the
# audit trail stay byte-identical. Config-only mount: nothing here connects anywhere.
# Then the stance on values that look hostile but are valid (an upstream of 169.254.169.254, a
# health path "/@evil.com"): accepted as documented, and rendered as what they are.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cfs_mount --domains internal,test
A=$MNT/audit/audit.log
M=$MNT/monitor

EINVAL="Invalid argument"; EFBIG="File too large"; EPERM="Operation not permitted"

# ---- fixtures: a configured victim service, a target, a readable dummy key ----
mkdir "$S/victim"
put "$S/victim/upstream" "10.0.1.10:8000"
put "$S/victim/monitoring" '{"type":"container","container_name":"victim"}'
printf 'not a real key\n' > "$T/key"; chmod 600 "$T/key"
TGT_OK='{"ssh_host":"127.0.0.1","ssh_user":"root","ssh_key":"'$T/key'"}'
HAVE_TARGETS=0
if mkdir "$M/tgt" 2>"$T/err"; then
    if put "$M/tgt/target.json" "$TGT_OK" 2>"$T/err"; then HAVE_TARGETS=1; fi
fi
((HAVE_TARGETS)) || echo "SKIP: monitor targets not implemented ($(head -c 80 "$T/err")):" \
    "no target.json rows"
HAVE_APPEND=0
echo '{"action":"hostile_probe","status":"success"}' >> "$A" 2>"$T/err" && HAVE_APPEND=1
((HAVE_APPEND)) || echo "SKIP: audit appends not implemented ($(head -c 80 "$T/err"))"

# ---- generated values ----
LONG5K=$(head -c 5000 /dev/zero | tr '\0' a)
DEEP10K=$(printf '%*s' 10000 '' | tr ' ' '[')$(printf '%*s' 10000 '' | tr ' ' ']')
DEEPOBJ=$(for _ in $(seq 10000); do printf '{"a":'; done; printf 1;
          for _ in $(seq 10000); do printf '}'; done)
DEEP4K=$(printf '%*s' 2000 '' | tr ' ' '[')$(printf '%*s' 2000 '' | tr ' ' ']')
D300=$(printf 'abcdefghi.%.0s' {1..30})internal
H257=/$(head -c 256 /dev/zero | tr '\0' h)
L70K=$(head -c 70000 /dev/zero | tr '\0' m)
N64=$(head -c 64 /dev/zero | tr '\0' n)
BIGNUM=123456789012345678901234567890123456789012345678901234567890
K=$T/key

# ---- the table: KIND|ERRNO|VALUE ----
# KIND: attr:NAME (write to services/victim/NAME, with the newline echo adds), target (write to
# monitor/tgt/target.json), append (the exact bytes, appended to audit/audit.log), mkdir
# (services/VALUE), tmkdir (monitor/VALUE). "<NUL>" in a value stands for a NUL byte.
ROWS=(
# upstream: injection into the proxy config (once a Caddyfile), shell metacharacters, ambiguity
"attr:upstream|$EINVAL|10.0.0.1:80"$'\n'"local=/evil/"
"attr:upstream|$EINVAL|10.0.0.1:80 {"
"attr:upstream|$EINVAL|10.0.0.1:80}"$'\n'"evil.internal {"$'\n'"reverse_proxy 6.6.6.6:80"
"attr:upstream|$EINVAL|\$(reboot):80"
"attr:upstream|$EINVAL|\`id\`:80"
"attr:upstream|$EINVAL|10.0.0.1:80;rm -rf /"
"attr:upstream|$EINVAL|10.0.0.1:80|nc evil 1"
# upstream and lb_policy: JSON and Caddy placeholder injection into caddy.json
"attr:upstream|$EINVAL|{env.HOME}:80"
"attr:upstream|$EINVAL|10.0.0.1:80\",\"dial\":\"6.6.6.6:80"
"attr:upstream|$EINVAL|10.0.0.1:80"$'\n'"10.0.0.1:80"
"attr:lb_policy|$EINVAL|first\"}"
"attr:lb_policy|$EINVAL|{http.request.host}"
"attr:upstream|$EINVAL|http://user:pass@10.0.0.1:80"
"attr:upstream|$EINVAL|http://10.0.0.1:80/admin"
"attr:upstream|$EINVAL|10.0.0.1:80#x"
"attr:upstream|$EINVAL|[::1%25eth0]:80"
"attr:upstream|$EINVAL|10.0.0.1:$BIGNUM"
"attr:upstream|$EINVAL|10.0.0.1:-1"
"attr:upstream|$EINVAL|unix//var/run/docker.sock"
"attr:upstream|$EINVAL|10.0.0.1:80 10.0.0.2:80"
"attr:upstream|$EINVAL|10.0.0.1:80<NUL>evil"
"attr:upstream|$EINVAL|"$'\xff\xfe'":80"
"attr:upstream|$EFBIG|$LONG5K"
"attr:upstream|$EINVAL|file:///etc/passwd"
"attr:upstream|$EINVAL|{env.HOME}:80"
"attr:upstream|$EINVAL|0x7f.1:80"
"attr:upstream|$EINVAL|2130706433:80"
# domain: dnsmasq and hosts-file injection, wildcards, traversal into state/tls/<domain>/
"attr:domain|$EINVAL|evil.internal"$'\n'"address=/#/6.6.6.6"
"attr:domain|$EINVAL|*.internal"
"attr:domain|$EINVAL|a.internal {"
"attr:domain|$EINVAL|victim.internal."
"attr:domain|$EINVAL|google.com"
"attr:domain|$EINVAL|"$'\xc3\xaf'"nternal.internal"
"attr:domain|$EINVAL|a..internal"
"attr:domain|$EINVAL|../../etc.internal"
"attr:domain|$EINVAL|$D300"
"attr:domain|$EINVAL|a.internal<NUL>.evil"
"attr:domain|$EINVAL|A.INTERNAL"
"attr:domain|$EINVAL|a b.internal"
"attr:domain|$EINVAL|a.internal 6.6.6.6 b.internal"
"attr:domain|$EFBIG|$LONG5K"
# health_check: another host, header and proxy config injection, placeholders
"attr:health_check|$EINVAL|/health"$'\n'"}"$'\n'"evil.internal {"
"attr:health_check|$EINVAL|//evil.com/x"
"attr:health_check|$EINVAL|http://evil.com/"
"attr:health_check|$EINVAL|/a b"
"attr:health_check|$EINVAL|/%zz"
"attr:health_check|$EINVAL|/\`id\`"
"attr:health_check|$EINVAL|/{http.request.host}"
"attr:health_check|$EINVAL|$H257"
"attr:health_check|$EINVAL|/h"$'\r\n'"Host: evil"
"attr:health_check|$EINVAL|/x#frag"
"attr:health_check|$EINVAL|/\"quoted\""
"attr:health_check|$EINVAL|/a\\b"
# mode
"attr:mode|$EINVAL|proxy"$'\n'"dns"
"attr:mode|$EINVAL|PROXY"
"attr:mode|$EINVAL|proxy "
"attr:mode|$EINVAL|dns<NUL>"
"attr:mode|$EINVAL|tcp"
# monitoring: JSON corner cases and values that reach ssh and docker
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\"a\",\"container_name\":\"b\"}"
"attr:monitoring|$EFBIG|$DEEP10K"
"attr:monitoring|$EFBIG|$DEEPOBJ"
"attr:monitoring|$EINVAL|$DEEP4K"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":1e400}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":$BIGNUM}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":22.0}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":-22}"
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\"a\\u0000b\"}"
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\"\$(id)\"}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h; rm -rf /\"}"
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\"\\u00e9\"}"
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\""$'\xff'"\"}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"-oProxyCommand=id\"}"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"-oProxyCommand=id\"}"
"attr:monitoring|$EINVAL|{\"type\":\"container\",\"container_name\":\"../../etc\"}"
"attr:monitoring|$EINVAL|"$'\xef\xbb\xbf'"{}"
"attr:monitoring|$EINVAL|{}<NUL>"
"attr:monitoring|$EINVAL|{\"type\":\"gpu\",\"ssh_host\":\"h\"} {}"
# target.json: traversal and non-files as the key, ssh option injection, JSON corner cases
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"/etc/../etc/shadow\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"../../etc/shadow\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"/dev/zero\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"/proc/self/fd/0\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"$K/\"}"
"target|$EINVAL|{\"ssh_host\":\"-oProxyCommand=sh\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\\nevil\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\","\
"\"docker_socket\":\"/run/../etc/passwd\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\","\
"\"types\":[\"server;id\"]}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_port\":1e999,\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\"h\",\"ssh_port\":$BIGNUM,\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\"h<NUL>\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EINVAL|{\"ssh_host\":\""$'\xff'"\",\"ssh_user\":\"root\",\"ssh_key\":\"$K\"}"
"target|$EFBIG|$DEEP10K"
"target|$EINVAL|$DEEP4K"
# audit appends: the exact bytes of one write
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\"}"
"append|$EINVAL|{\"action\":\"a"$'\n'"b\",\"status\":\"success\"}"$'\n'
"append|$EINVAL|{\"action\":\"service_register\\\",\\\"user\\\":\\\"root\","\
"\"status\":\"success\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"sequence\":5}"$'\n'
"append|$EINVAL|{\"action\":\"service_register\",\"status\":\"success\",\"details\":{\"name\":\"x\",\"domain\":\"x.internal\"}}"$'\n'
"append|$EINVAL|{\"action\":\"note\",\"status\":\"success\",\"details\":{\"registry\":{\"sha256\":\"00\"}}}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"details\":$DEEPOBJ}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"details\":{\"n\":1e999}}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"message\":\"a\\u0000b\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"message\":\"a<NUL>b\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"message\":\""$'\xff\xfe'"\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"status\":\"failure\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\",\"message\":\"$L70K\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"success\"}"$'\n'"{\"action\":\"b\"}"$'\n'
"append|$EINVAL|{\"action\":\"a\",\"status\":\"ok\"}"$'\n'
"append|$EINVAL|"$'\n'
"append|$EINVAL|[\"action\",\"a\"]"$'\n'
"append|$EINVAL|{\"action\":\"\$(reboot)\",\"status\":\"success\"}"$'\n'
# mkdir names
"mkdir|$EINVAL|a;b"
"mkdir|$EINVAL|a b"
"mkdir|$EINVAL|\$(id)"
"mkdir|$EINVAL|a"$'\n'"b"
"mkdir|$EINVAL|..."
"mkdir|$EINVAL|-rf"
"mkdir|$EINVAL|Victim2"
"mkdir|$EINVAL|a_b"
"mkdir|$EINVAL|"$'\xc3\xa9'
"mkdir|$EINVAL|"$'\xff'
"mkdir|$EINVAL|$N64"
"mkdir|$EINVAL|a{b}"
"mkdir|$EINVAL|a#b"
"mkdir|$EPERM|../escape"
"tmkdir|$EINVAL|a;b"
"tmkdir|$EINVAL|T1"
"tmkdir|$EINVAL|"$'\n'
"tmkdir|$EINVAL|x.json"
)

# Write a table value to a file, "<NUL>" as a NUL byte.
mkval() {
    local v=$1
    while [[ $v == *"<NUL>"* ]]; do
        printf '%s\0' "${v%%<NUL>*}"
        v=${v#*<NUL>}
    done
    printf '%s' "$v"
}
append_file() { dd if="$1" of="$A" bs=1M oflag=append conv=notrunc status=none; }

before=$(configs_digest)
targets_before=$(cat "$STATE/monitoring/targets.json" 2>/dev/null | sha256sum)
log_before=$(sha256sum < "$STATE/audit.log")
log_lines=$(wc -l < "$STATE/audit.log")
attr_before=$(for a in upstream domain health_check mode monitoring; do cat "$S/victim/$a"; done)
tgt_before=$(cat "$M/tgt/target.json" 2>/dev/null)
rows=0; skipped=0
for row in "${ROWS[@]}"; do
    kind=${row%%|*}; rest=${row#*|}; want=${rest%%|*}; value=${rest#*|}
    what="$kind <- $(printf '%q' "${value:0:60}")"
    case $kind in
    attr:*)
        { mkval "$value"; echo; } > "$T/v"
        check_fails "$what" "$want" put_file "$T/v" "$S/victim/${kind#attr:}" ;;
    target)
        if ((!HAVE_TARGETS)); then skipped=$((skipped + 1)); continue; fi
        { mkval "$value"; echo; } > "$T/v"
        check_fails "$what" "$want" put_file "$T/v" "$M/tgt/target.json" ;;
    append)
        if ((!HAVE_APPEND)); then skipped=$((skipped + 1)); continue; fi
        mkval "$value" > "$T/v"
        check_fails "$what" "$want" append_file "$T/v" ;;
    mkdir)
        check_fails "$what" "$want" mkdir "$S/$value" ;;
    tmkdir)
        if ((!HAVE_TARGETS)); then skipped=$((skipped + 1)); continue; fi
        check_fails "$what" "$want" mkdir "$M/$value" ;;
    esac
    rows=$((rows + 1))
done
echo "hostile table: $rows values fed, $skipped skipped"
check "at least 60 hostile values fed" test "$rows" -ge 60

# forbidden operations on the same paths: EPERM
check_fails "truncate audit.log" "$EPERM" truncate -s 0 "$A"
check_fails "rm audit.log" "$EPERM" rm -f "$A"
check_fails "write audit/verify" "$EPERM" sh -c "echo x > '$MNT/audit/verify'"
check_fails "write ca/ca.crt" "$EPERM" sh -c "echo x > '$MNT/ca/ca.crt'"
check_fails "symlink into services" "$EPERM" ln -s /etc/passwd "$S/victim/evil"
check_fails "rename an attribute" "$EPERM" mv "$S/victim/upstream" "$S/victim/x"
check_fails "mknod" "$EPERM" mkfifo "$S/victim/fifo"
check_fails "create a file in services/" "$EPERM" touch "$S/.hidden"

check_eq "registry and configs byte-identical" "$(configs_digest)" "$before"
check_eq "attribute values unchanged" \
    "$(for a in upstream domain health_check mode monitoring; do cat "$S/victim/$a"; done)" \
    "$attr_before"
check_eq "target table unchanged" "$(cat "$STATE/monitoring/targets.json" 2>/dev/null |
    sha256sum)" "$targets_before"
check_eq "target.json unchanged" "$(cat "$M/tgt/target.json" 2>/dev/null)" "$tgt_before"
# a refused change is audited (issue 13 item 3): only change_refused failure lines are added
check_eq "audit.log: the earlier lines are unchanged" \
    "$(head -n "$log_lines" "$STATE/audit.log" | sha256sum)" "$log_before"
check_jq "only change_refused failures were added" \
    'all(.action == "change_refused" and .status == "failure")' \
    <(tail -n +$((log_lines + 1)) "$STATE/audit.log" | jq -s .)
check_eq "no service was created" "$(ls "$S" | tr '\n' ' ')" "victim "

# ---- stance: valid values that only look hostile are accepted and rendered as what they are ----
# An operator may proxy to, or monitor, any address: nothing here is an SSRF filter. What the
# validators guarantee is that a value stays one token of the config it lands in: the health
# path is only ever a path on the service's own upstream, never another host.
mkdir "$S/stance"
check "upstream 169.254.169.254:80 is a valid upstream" put "$S/stance/upstream" \
    "169.254.169.254:80"
check_jq "rendered as that upstream" '.apps.http.servers.conduitfs.routes[].handle[]
    | select(.handler == "map") | .mappings[] | select(.input == "stance.internal")
    | select(.outputs == ["169.254.169.254", "80"])' "$STATE/routing/caddy.json"
check "health_check /@evil.com is a path ('@' is a path character)" \
    put "$S/stance/health_check" "/@evil.com"
check_eq "stored as a path of the upstream" \
    "$(jq -r '.services[] | select(.name=="stance") | .health_check' "$STATE/services.json")" \
    "/@evil.com"
check "health_check /\$(reboot) is a path, never run" put "$S/stance/health_check" '/$(reboot)'
check_eq "stored literally" \
    "$(jq -r '.services[] | select(.name=="stance") | .health_check' "$STATE/services.json")" \
    '/$(reboot)'
check_fails "the prober's path never reaches the proxy config" "" \
    grep -qF 'reboot' "$STATE/routing/caddy.json"
check "upstream localhost:6379 is valid" put "$S/stance/upstream" "localhost:6379"
check "monitoring over ssh to any address" put "$S/stance/monitoring" \
    '{"type":"gpu","ssh_host":"169.254.169.254"}'
if ((HAVE_APPEND)); then
    forged='{"action":"forged","status":"success","user":"root",'
    forged+='"timestamp":"1970-01-01T00:00:00Z"}'
    check "a forged user and timestamp are accepted" sh -c "printf '%s\n' '$forged' >> '$A'"
    check_eq "... and replaced by the caller and the time" "$(grep '"action":"forged"' \
        "$STATE/audit.log" | jq -r '[.user, (.timestamp > "2000")] | join(" ")')" \
        "$(id -un) true"
fi
check "configs match an independent rendering" py3 "$HERE/render_check.py" "$STATE"
if command -v caddy >/dev/null; then
    check "caddy accepts caddy.json" caddy validate --config "$STATE/routing/caddy.json"
fi
if command -v dnsmasq >/dev/null; then
    check "dnsmasq accepts its config" dnsmasq --test -C "$STATE/dns/dnsmasq.conf"
fi
finish
