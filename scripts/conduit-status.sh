#!/usr/bin/env bash
# conduit-status: one line per service: its attributes from services/, health from
# monitor/health.json, days of TLS left from ca/certs/<domain>.json, and a DNS check against
# the running dnsmasq ($CONDUIT_DNS).
set -euo pipefail
PROG=conduit-status
USAGE="usage: $PROG [--json]

Shows every service on the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit):

  NAME DOMAIN UPSTREAM MODE    from services/NAME/* (UPSTREAM (pending) when it has none;
                               several upstreams are joined by commas, in their order)
  HEALTH                       state in monitor/health.json: healthy, unhealthy, unknown,
                               pending, or -
  TLS_DAYS                     days_left of ca/certs/DOMAIN.json, or - without a certificate
  DNS                          the address the running dnsmasq at \$CONDUIT_DNS (default
                               127.0.0.1:5353) answers for DOMAIN; fail when it answers
                               nothing, or (dns mode) none of the upstreams' addresses, or
                               anything for a pending service (it has no record); - without
                               dig, and for a pending service that has no record

  --json   a JSON array instead: [{\"name\",\"domain\",\"upstream\",\"mode\",\"status\",
           \"health\",\"tls_days_left\",\"dns\",\"dns_ok\"}], null where the table shows -

Exit status: 0 shown, 1 the mount could not be read, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

json=0
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --json) json=1 ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
cl_dns_server
cl_need_mount

# health state by service name, from one read of health.json
declare -A health=()
if cl_has jq && [[ -r $M/monitor/health.json ]]; then
    while IFS=$'\t' read -r n s; do
        [[ -n $n ]] && health[$n]=$s
    done < <(jq -r '.services[]? | [.name, .state] | @tsv' "$M/monitor/health.json" 2>/dev/null ||
        true)
fi

# days_left of a domain's leaf, or nothing
tls_days() {
    local f=$M/ca/certs/$1.json
    [[ -r $f ]] || return 0
    if cl_has jq; then
        jq -r '.days_left // empty' "$f" 2>/dev/null || true
    else
        sed -n 's/.*"days_left": *\(-\{0,1\}[0-9]*\).*/\1/p' "$f" 2>/dev/null || true
    fi
}

rows=()
US=$'\x1f'
dns_down=0
for d in "$M"/services/*; do
    [[ -d $d ]] || continue
    name=${d##*/}
    vals=()
    for attr in domain upstream mode; do
        if ! cl_read "services/$name/$attr"; then
            [[ -d $d ]] || continue 2   # deregistered while we read: skip it
            cl_die "$CL_ERR"
        fi
        vals+=("$CL_OUT")
    done
    domain=${vals[0]} upstream=${vals[1]} mode=${vals[2]}
    upstream=${upstream//$'\n'/,}      # one line per upstream: joined by commas
    status=active
    [[ -n $upstream ]] || status=pending
    days=$(tls_days "$domain")
    # DNS: the first address the running dnsmasq gives for the domain
    dns=- dns_ok=
    if cl_has dig && ((!dns_down)); then
        rc=0
        cl_resolve "$domain" || rc=$?
        addr=${CL_OUT%%$'\n'*}
        if [[ $status == pending ]] && ((rc != 2)); then
            # a pending service has no record: NXDOMAIN is right, an answer is stale
            if ((rc == 0)) && [[ -n $addr ]]; then dns=$addr dns_ok=false; else dns_ok=true; fi
        elif ((rc == 0)) && [[ -n $addr ]]; then
            dns=$addr dns_ok=true
            if [[ $mode == dns ]]; then
                # dns mode answers the addresses of the upstreams (the healthy ones)
                dns_ok=false
                IFS=, read -r -a ups <<< "$upstream"
                for host in "${ups[@]}"; do
                    host=${host#*://}
                    host=${host%:*}
                    host=${host#[}
                    host=${host%]}
                    [[ $addr == "$host" ]] && dns_ok=true
                done
            fi
        else
            dns_ok=false
            ((rc == 2)) && dns_down=1     # no server: do not wait for it once per service
        fi
        [[ $dns_ok == false ]] && dns=fail
    elif ((dns_down)); then
        dns=fail dns_ok=false
    fi
    # fields joined by the unit separator: a non-blank IFS keeps empty fields
    rows+=("$name$US$domain$US$upstream$US$mode$US$status$US${health[$name]:-}$US$days$US$dns$US$dns_ok")
done

if ((json)); then
    jnum() { if [[ $1 =~ ^-?[0-9]+$ ]]; then printf '%s' "$1"; else printf null; fi; }
    jopt() { if [[ -n $1 && $1 != - && $1 != fail ]]; then cl_jstr "$1"; else printf null; fi; }
    printf '['
    sep=
    for r in "${rows[@]}"; do
        IFS=$US read -r name domain upstream mode status h days dns dns_ok <<<"$r"
        printf '%s\n{"name":%s,"domain":%s,"upstream":%s,"mode":%s,"status":%s,"health":%s,' \
            "$sep" "$(cl_jstr "$name")" "$(cl_jstr "$domain")" "$(cl_jstr "$upstream")" \
            "$(cl_jstr "$mode")" "$(cl_jstr "$status")" "$(jopt "$h")"
        printf '"tls_days_left":%s,"dns":%s,"dns_ok":%s}' "$(jnum "$days")" "$(jopt "$dns")" \
            "${dns_ok:-null}"
        sep=,
    done
    ((${#rows[@]})) && printf '\n'
    printf ']\n'
    exit 0
fi

{
    printf 'NAME\tDOMAIN\tUPSTREAM\tMODE\tHEALTH\tTLS_DAYS\tDNS\n'
    for r in "${rows[@]}"; do
        IFS=$US read -r name domain upstream mode status h days dns _ <<<"$r"
        [[ $status == pending ]] && upstream="(pending)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$domain" "$upstream" "$mode" "${h:--}" \
            "${days:--}" "$dns"
    done
} | cl_table
