#!/usr/bin/env bash
# conduit-logs: read (and follow) audit/audit.log, filtered by action and time.
set -euo pipefail
PROG=conduit-logs
USAGE="usage: $PROG [--follow] [--action A] [--since T]

Prints the audit log of the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit),
audit/audit.log: one JSON object a line, {\"timestamp\",\"action\",\"status\",\"message\",
\"user\",\"details\"}.

  --action A   only lines whose action is A (e.g. service_register, cert_rotate)
  --since T    only lines at or after T: YYYY-MM-DDTHH:MM:SSZ (UTC), or a prefix of it
               such as YYYY-MM-DD or YYYY-MM-DDTHH:MM
  --follow     keep printing lines as they are appended (tail -f): the last 10 lines
               first, or every line since T with --since

Exit status: 0 printed, 1 the log could not be read, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

follow=0 action='' since=''
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    -f | --follow) follow=1 ;;
    --action | --action=*) cl_opt action "$1" "${2-}" $# && shift ;;
    --since | --since=*) cl_opt since "$1" "${2-}" $# && shift ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
[[ -z $action || $action =~ ^[a-z0-9][a-z0-9_.-]*$ ]] ||
    cl_bad "--action: \"$action\" is not an action name"
# the timestamp or a prefix of it that ends at a field boundary
ts='^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}Z?)?)?)?)?)?$'
[[ -z $since || $since =~ $ts ]] || cl_bad "--since: \"$since\" is not YYYY-MM-DDTHH:MM:SSZ"
cl_need_mount

log=audit/audit.log
[[ -f $M/$log ]] || { cl_try "$log" ls -- "$M/$log" || cl_die "$CL_ERR"; cl_die "$log: not a file"; }

# Every line starts {"timestamp":"...","action":"...", (the daemon writes the keys in that
# order), so both filters are exact string tests on that prefix; with a filter, a line without
# it is left out. awk for a whole log; a bash loop for --follow, since awk may read its input
# in blocks and hold a new line back until more arrive.
filter() {
    awk -v action="$action" -v since="$since" '
        action == "" && since == "" { print; next }
        match($0, /^\{"timestamp":"[^"]*","action":"[^"]*"/) {
            head = substr($0, 15, RLENGTH - 15)            # TS","action":"ACTION
            ts = substr(head, 1, index(head, "\"") - 1)
            act = substr(head, length(ts) + 13)
            if ((since == "" || ts >= since) && (action == "" || act == action)) print
        }'
}
filter_lines() {
    local line re='^\{"timestamp":"([^"]*)","action":"([^"]*)"'
    while IFS= read -r line; do
        if [[ -n $action || -n $since ]]; then
            [[ $line =~ $re ]] || continue
            [[ -z $since || ! ${BASH_REMATCH[1]} < $since ]] || continue
            [[ -z $action || ${BASH_REMATCH[2]} == "$action" ]] || continue
        fi
        printf '%s\n' "$line"
    done
}

if ((follow)); then
    start=10
    [[ -z $since ]] || start=+1
    # runs until interrupted; tail says so itself when the log goes away
    tail -n "$start" -f -- "$M/$log" | filter_lines
    exit
fi
# the filtered log on stdout; cat's error message, if any, captured
exec 3>&1
if ! err=$({ cat -- "$M/$log" | filter >&3; } 2>&1); then
    [[ -z $err ]] || cl_die "$log: $(cl_errtext "$err")"
    exit 1    # our reader went away (e.g. | head): nothing to say
fi
