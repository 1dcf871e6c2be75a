#!/usr/bin/env bash
# conduit-dns: resolve service domains through the running dnsmasq ($CONDUIT_DNS).
set -euo pipefail
PROG=conduit-dns
USAGE="usage: $PROG [--resolve N]

Asks the dnsmasq the gateway runs, at \$CONDUIT_DNS (default 127.0.0.1:5353, as
--dns-listen), with dig. N is a service name (its domain is read from services/N/domain on
the mount at \$CONDUIT_MOUNT, default /run/conduit) or a domain.

  --resolve N    print N's domain and the addresses dnsmasq answers (A, else AAAA)
  (no option)    the same for every service on the mount

Exit status: 0 every name resolved, 1 a name did not resolve (NXDOMAIN, no record) or
dnsmasq did not answer, 2 bad arguments (or a bad CONDUIT_DNS)."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

cl_only_name --resolve "$@"
name=$CL_NAME
cl_dns_server
cl_has dig || cl_die "dig is not installed (apt-get install dnsutils)"

domains=()
if [[ -n $name ]]; then
    if [[ $name != *.* ]]; then
        cl_need_mount
    fi
    cl_domain_of "$name" || cl_die "$CL_ERR"
    domains=("$CL_OUT")
else
    cl_need_mount
    for d in "$M"/services/*; do
        [[ -d $d ]] || continue
        if cl_read "services/${d##*/}/domain"; then
            domains+=("$CL_OUT")
        elif [[ -d $d ]]; then
            cl_die "$CL_ERR"
        fi
    done
fi

status=0
for d in "${domains[@]}"; do
    rc=0
    cl_resolve "$d" || rc=$?
    case $rc in
    0) printf '%s %s\n' "$d" "${CL_OUT//$'\n'/ }" ;;
    1) printf '%s: %s\n' "$PROG" "$CL_ERR" >&2; status=1 ;;
    *) cl_die "$CL_ERR" ;;
    esac
done
exit "$status"
