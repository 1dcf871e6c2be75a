#!/usr/bin/env bash
# test_reverse_dns.sh: reverse lookups against the real dnsmasq. The gateway address, which every
# proxy-mode and pending service shares, answers the gateway host's own name (never a service's,
# which used to be whichever dnsmasq loaded first); a dns-mode address answers the domain that
# points at it; any other private address is NXDOMAIN from dnsmasq itself, nothing is forwarded.
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || { echo "missing dig"; exit 1; }
cfs_mount_managed
q() { dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 "$@"; }
ptr() { q -x "$1" +short; }

for n in web api pend; do check "register $n" mkdir "$S/$n"; done
check "web upstream" put "$S/web/upstream" "127.0.0.1:8080"
check "api upstream" put "$S/api/upstream" "127.0.0.1:8081"
check "db" mkdir "$S/db"
check "db upstream" put "$S/db/upstream" "127.0.0.2:5432"
check "db in dns mode" put "$S/db/mode" "dns"
check_eq "forward: proxy mode" "$(q web.internal +short)" "127.0.0.1"
check_eq "forward: dns mode" "$(q db.internal +short)" "127.0.0.2"

# the host name the daemon gives dnsmasq: gethostname(), when it is a DNS name
host=$(hostname)
label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
if [[ "$host" =~ ^$label(\.$label)*$ ]]; then want="$host."; else want="."; fi
check_eq "gateway address: the host's name, not a service" "$(ptr 127.0.0.1)" "$want"
check "gateway address: authoritative" sh -c "dig @127.0.0.1 -p $DNS_PORT -x 127.0.0.1 |
    grep -q 'flags: qr aa'"
check "the pin is in dnsmasq.conf" grep -qx "ptr-record=1.0.0.127.in-addr.arpa,\?.*" \
    "$STATE/dns/dnsmasq.conf"
# more services on the gateway address change nothing
check "register more" mkdir "$S/zzz" "$S/aaa"
check_eq "still the host's name" "$(ptr 127.0.0.1)" "$want"
check_eq "dns mode: the domain pointing at it" "$(ptr 127.0.0.2)" "db.internal."
check "other private address: NXDOMAIN" sh -c "dig @127.0.0.1 -p $DNS_PORT -x 10.9.8.7 |
    grep -q 'status: NXDOMAIN'"
check_eq "public address: no answer (nothing is forwarded)" "$(ptr 192.0.2.1)" ""
check "ipv6 loopback: NXDOMAIN" sh -c "dig @127.0.0.1 -p $DNS_PORT -x ::1 |
    grep -q 'status: NXDOMAIN'"
# a dns-mode service that moves away takes its reverse answer along
check "db back to proxy mode" put "$S/db/mode" "proxy"
check "127.0.0.2 no longer answers" wait_for 5 sh -c "dig @127.0.0.1 -p $DNS_PORT \
    -x 127.0.0.2 | grep -q 'status: NXDOMAIN'"
check_eq "and the gateway is still the host" "$(ptr 127.0.0.1)" "$want"
finish
