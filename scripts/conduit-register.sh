#!/usr/bin/env bash
# conduit-register: register a service through the mount with one write of the whole service
# (all its attributes) to services/.apply: all or nothing, validated and committed as one.
set -euo pipefail
PROG=conduit-register
USAGE="usage: $PROG --name NAME --upstream HOST:PORT [--domain DOMAIN] [--health PATH]
                        [--mode proxy|dns]

Registers service NAME on the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit) with
one write of a JSON document holding all its attributes to services/.apply, which the mount
validates and commits as one change. Options take --opt VALUE or --opt=VALUE.

  --name NAME          service name (lowercase letters, digits, hyphens)
  --upstream HOST:PORT where the service listens; http:// or https:// prefix allowed
  --domain DOMAIN      its DNS name (default NAME.<first allowed suffix>)
  --health PATH        health check path (default /health)
  --mode proxy|dns     proxy: DNS answers the gateway and Caddy routes (default);
                       dns: DNS answers the upstream's address

If the mount refuses it, nothing is registered, and the error says why.
Exit status: 0 registered, 1 the mount refused an operation, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

name='' upstream='' domain='' health='' mode=''
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --name | --name=*) cl_opt name "$1" "${2-}" $# && shift; cl_name --name "$name" ;;
    --upstream=*) upstream=${1#*=} ;;
    --upstream) cl_val "$1" $# "${2-}"; upstream=$2; shift ;;
    --domain | --domain=*) cl_opt domain "$1" "${2-}" $# && shift ;;
    --health | --health=*) cl_opt health "$1" "${2-}" $# && shift ;;
    --mode=*) mode=${1#*=} ;;
    --mode) cl_val "$1" $# "${2-}"; mode=$2; shift ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
[[ -n $name ]] || cl_bad "missing --name"
[[ -n $upstream ]] || cl_bad "missing --upstream"
case $mode in
'' | proxy | dns) ;;
*) cl_bad "--mode: \"$mode\" is not proxy or dns" ;;
esac
cl_need_mount

dir=services/$name
# One write of the whole service to services/.apply: validated and committed as one change, so
# a refusal leaves nothing behind (no registration, no certificate). It would replace a service
# that exists, so that is refused first.
if [[ -e $M/$dir ]]; then
    cl_die "$dir: File exists"
fi
doc="{\"name\":$(cl_jstr "$name"),\"upstream\":$(cl_jstr "$upstream")"
[[ -z $domain ]] || doc+=",\"domain\":$(cl_jstr "$domain")"
[[ -z $health ]] || doc+=",\"health_check\":$(cl_jstr "$health")"
[[ -z $mode ]] || doc+=",\"mode\":$(cl_jstr "$mode")"
doc+="}"
cl_apply "$name" "$doc" || cl_die "$CL_ERR; nothing registered"

cl_read "$dir/domain" || cl_die "registered $name, but $CL_ERR"
printf 'registered %s: %s -> %s (%s)\n' "$name" "$CL_OUT" "$upstream" "${mode:-proxy}"
