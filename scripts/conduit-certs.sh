#!/usr/bin/env bash
# conduit-certs: list, rotate and inspect the leaf certificates under ca/certs/.
set -euo pipefail
PROG=conduit-certs
USAGE="usage: $PROG [--rotate N | --inspect N]

Works on ca/certs/ of the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit).
N is a service name (its domain is read from services/N/domain) or a domain.

  (no option)    list the leaves: DOMAIN SERVICE SERIAL NOT_AFTER DAYS_LEFT
  --rotate N     rotate N's certificate: rm ca/certs/DOMAIN.pem issues a new key and
                 certificate and reloads the proxy; prints the old and new serial
  --inspect N    print ca/certs/DOMAIN.json, then openssl x509 -text of the PEM
                 (when openssl is installed)

Exit status: 0 done, 1 the mount refused or a file is missing, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

action='' arg=''
set_action() {
    [[ -z $action ]] || cl_bad "give one of --rotate, --inspect"
    action=$1 arg=$2
    cl_name "--$1" "$2"
}
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --rotate=*) set_action rotate "${1#*=}" ;;
    --rotate) cl_val "$1" $# "${2-}"; set_action rotate "$2"; shift ;;
    --inspect=*) set_action inspect "${1#*=}" ;;
    --inspect) cl_val "$1" $# "${2-}"; set_action inspect "$2"; shift ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
cl_need_mount

if [[ -z $action ]]; then
    [[ -d $M/ca/certs ]] || { cl_try ca/certs ls -- "$M/ca/certs" || cl_die "$CL_ERR"; }
    {
        printf 'DOMAIN\tSERVICE\tSERIAL\tNOT_AFTER\tDAYS_LEFT\n'
        for f in "$M"/ca/certs/*.json; do
            [[ -e $f ]] || continue
            printf '%s\t%s\t%s\t%s\t%s\n' "$(cl_field "$f" domain)" "$(cl_field "$f" service)" \
                "$(cl_field "$f" serial)" "$(cl_field "$f" not_after)" \
                "$(cl_field "$f" days_left)"
        done
    } | cl_table
    exit 0
fi

cl_domain_of "$arg" || cl_die "$CL_ERR"
domain=$CL_OUT
pem=ca/certs/$domain.pem

if [[ $action == inspect ]]; then
    cl_read "ca/certs/$domain.json" || cl_die "$CL_ERR"
    printf '%s\n' "$CL_OUT"
    cl_read "$pem" || cl_die "$CL_ERR"
    if cl_has openssl; then
        out=$(openssl x509 -text -noout <<<"$CL_OUT" 2>&1) ||
            cl_die "$pem: openssl cannot read it: ${out%%$'\n'*}"
        printf '%s\n' "$out"
    else
        printf '(openssl is not installed: the PEM follows)\n%s\n' "$CL_OUT"
    fi
    exit 0
fi

old=$(cl_field "$M/ca/certs/$domain.json" serial)
if ! cl_try "$pem" unlink -- "$M/$pem"; then
    case $CL_ERR in
    *"Input/output error")
        cl_die "$CL_ERR (the new certificate is in place, but the proxy did not reload)" ;;
    esac
    cl_die "$CL_ERR"
fi
new=$(cl_field "$M/ca/certs/$domain.json" serial)
[[ -n $new ]] || cl_die "ca/certs/$domain.json: no certificate after the rotation"
printf 'rotated %s: serial %s -> %s, not after %s\n' "$domain" "${old:-?}" "$new" \
    "$(cl_field "$M/ca/certs/$domain.json" not_after)"
