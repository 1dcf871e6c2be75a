#!/usr/bin/env bash
# conduit-verify: verify the audit chain: audit/verify on the mount, or `conduitfs verify`
# offline on a state directory.
set -euo pipefail
PROG=conduit-verify
USAGE="usage: $PROG
       $PROG --state DIR [--pubkey HEX]

Without options: reads audit/verify of the conduitfs mount at \$CONDUIT_MOUNT (default
/run/conduit), which checks every sealed entry (structure, sequence, hash links, Ed25519
signatures) and that audit.log matches them.

  --state DIR    verify a state directory offline, without a mount and without changing it:
                 runs conduitfs verify --state DIR (conduitfs from \$CONDUITFS, else the
                 one installed beside this command, else PATH, else the build tree of a
                 checkout this command runs from (build/), else /usr/local/bin).
  --pubkey HEX   with --state: the signing key must be this one (audit/pubkey of the mount,
                 recorded somewhere safe)

Exit status: 0 intact, 1 broken or could not be checked (the first error is printed),
2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

state='' pubkey='' have_state=0
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --state | --state=*) have_state=1; cl_opt state "$1" "${2-}" $# && shift ;;
    --pubkey | --pubkey=*) cl_opt pubkey "$1" "${2-}" $# && shift ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
[[ -z $pubkey ]] || ((have_state)) || cl_bad "--pubkey goes with --state"
[[ -z $pubkey || $pubkey =~ ^[0-9a-f]{64}$ ]] ||
    cl_bad "--pubkey: expected 64 lowercase hex characters"

if ((have_state)); then
    [[ -d $state ]] || cl_die "$state: No such directory"
    cl_conduitfs
    bin=$CL_BIN
    [[ -x $bin ]] || cl_die "conduitfs not found (install it, or set CONDUITFS to its path)"
    args=(verify --state "$state")
    [[ -z $pubkey ]] || args+=(--pubkey "$pubkey")
    # its own messages ("ok: ...", or why not) and its exit status: 0 intact, 1 not
    rc=0
    "$bin" "${args[@]}" || rc=$?
    ((rc == 0 || rc == 1)) || rc=1   # a usage error of conduitfs is a failed check here
    exit "$rc"
fi

cl_need_mount
cl_read audit/verify || cl_die "$CL_ERR"
report=$CL_OUT
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$report" > "$tmp"
ok=$(cl_field "$tmp" ok)
case $ok in
true)
    printf 'ok: %s entries, head sequence %s, hash %s\n' "$(cl_field "$tmp" entries)" \
        "$(cl_field "$tmp" head_sequence)" "$(cl_field "$tmp" head_hash)"
    ;;
false)
    if cl_has jq; then
        why=$(jq -r '.first_error | if . == null then "no reason given"
            elif .sequence == null then .reason else "sequence \(.sequence): \(.reason)" end' \
            "$tmp" 2>/dev/null) || why="no reason given"
    else
        why=$(sed -n '/.*"reason":"\(\([^"\\]\|\\.\)*\)".*/{s//\1/p;q}' "$tmp")
    fi
    cl_die "audit chain broken: ${why:-no reason given}"
    ;;
*) cl_die "audit/verify: not a verification report" ;;
esac
