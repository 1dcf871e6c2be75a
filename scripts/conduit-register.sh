#!/usr/bin/env bash
# conduit-register: register a service through the mount: mkdir services/NAME, then write its
# attribute files. All or nothing: when a write fails, the directory this command made is
# removed again (rmdir), so no half-configured service is left behind.
set -euo pipefail
PROG=conduit-register
USAGE="usage: $PROG --name NAME --upstream HOST:PORT [--domain DOMAIN] [--health PATH]
                        [--mode proxy|dns]

Registers service NAME on the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit):
mkdir services/NAME, then writes domain, health_check, mode and, last, upstream (which makes
the service active). Options take --opt VALUE or --opt=VALUE.

  --name NAME          service name (lowercase letters, digits, hyphens)
  --upstream HOST:PORT where the service listens; http:// or https:// prefix allowed
  --domain DOMAIN      its DNS name (default NAME.<first allowed suffix>)
  --health PATH        health check path (default /health)
  --mode proxy|dns     proxy: DNS answers the gateway and Caddy routes (default);
                       dns: DNS answers the upstream's address

If any write fails, services/NAME is removed again and nothing stays registered.
Exit status: 0 registered, 1 the mount refused an operation, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

name='' upstream='' domain='' health='' mode=''
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --name=*) name=${1#*=}; cl_name --name "$name" ;;
    --name) cl_val "$1" $# "${2-}"; name=$2; shift; cl_name --name "$name" ;;
    --upstream=*) upstream=${1#*=} ;;
    --upstream) cl_val "$1" $# "${2-}"; upstream=$2; shift ;;
    --domain=*) domain=${1#*=}; cl_nonempty --domain "$domain" ;;
    --domain) cl_val "$1" $# "${2-}"; domain=$2; shift ;;
    --health=*) health=${1#*=}; cl_nonempty --health "$health" ;;
    --health) cl_val "$1" $# "${2-}"; health=$2; shift ;;
    --mode=*) mode=${1#*=} ;;
    --mode) cl_val "$1" $# "${2-}"; mode=$2; shift ;;
    -*) cl_bad "unknown option $1" ;;
    *) cl_bad "unexpected argument $1" ;;
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
cl_try "$dir" mkdir -- "$M/$dir" || cl_die "$CL_ERR"

# Undo the mkdir after a failed write, and say what happened.
rollback() {
    local why=$CL_ERR
    if cl_try "$dir" rmdir -- "$M/$dir"; then
        cl_die "$why (nothing registered: $dir removed again)"
    fi
    cl_die "$why; removing $dir again failed too ($CL_ERR): remove it by hand"
}

# mode before upstream: the service only becomes active once everything else is set.
[[ -z $domain ]] || cl_write "$dir/domain" "$domain" || rollback
[[ -z $health ]] || cl_write "$dir/health_check" "$health" || rollback
[[ -z $mode ]] || cl_write "$dir/mode" "$mode" || rollback
cl_write "$dir/upstream" "$upstream" || rollback

cl_read "$dir/domain" || cl_die "registered $name, but $CL_ERR"
printf 'registered %s: %s -> %s (%s)\n' "$name" "$CL_OUT" "$upstream" "${mode:-proxy}"
