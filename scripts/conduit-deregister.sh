#!/usr/bin/env bash
# conduit-deregister: deregister a service through the mount (rmdir services/NAME).
set -euo pipefail
PROG=conduit-deregister
USAGE="usage: $PROG --name NAME

Deregisters service NAME on the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit):
rmdir services/NAME. Its DNS record and route go, its certificate is archived, and the
registry keeps it as inactive. Options take --opt VALUE or --opt=VALUE.

Exit status: 0 deregistered, 1 the mount refused (e.g. no such service), 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

cl_only_name --name "$@"
name=$CL_NAME
[[ -n $name ]] || cl_bad "missing --name"
cl_need_mount

cl_try "services/$name" rmdir -- "$M/services/$name" || cl_die "$CL_ERR"
printf 'deregistered %s\n' "$name"
