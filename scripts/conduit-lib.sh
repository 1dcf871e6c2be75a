# conduit-lib.sh: shared by the conduit-* command wrappers (bash; sourced, not run).
# The wrappers only translate their arguments into operations on the mount, found through
# $CONDUIT_MOUNT (default /run/conduit). Exit status: 0 done, 1 a filesystem operation or a
# check failed (the message ends with the errno text), 2 a bad or missing argument.
# Each wrapper sets PROG (its name without .sh) and USAGE before sourcing this file.
# shellcheck shell=bash
# shellcheck disable=SC2034  # CL_*, DNS_* are read by the command that sources this

# Error messages are parsed for their errno text; keep them in one language.
export LC_ALL=C

M=${CONDUIT_MOUNT:-/run/conduit}
CL_ERR=

# Print the usage text (on --help).
cl_usage() { printf '%s\n' "$USAGE"; exit 0; }

# A bad or missing argument: one line, exit 2.
cl_bad() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }

# A failed operation: one line, exit 1.
cl_die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

# cl_val OPTION ARGC NEXT: check that the option given as "--opt VALUE" has its value.
# A following word that is itself an option ("--x") is not taken as the value.
cl_val() {
    if [[ $2 -lt 2 || $3 == --* ]]; then
        cl_bad "option $1 needs a value"
    fi
}

# cl_nonempty OPTION VALUE: the value of --opt=VALUE must not be empty.
cl_nonempty() { [[ -n $2 ]] || cl_bad "option $1 needs a value"; }

# cl_opt VAR ARG NEXT ARGC: the value of an option into VAR, given as "--opt=V" in ARG (cl_nonempty
# checks V) or as "--opt" in ARG and V in NEXT (cl_val checks it; ARGC is the loop's $#).
# Status 0 when it took NEXT as well (the caller shifts it), 1 when not.
cl_opt() {
    if [[ $2 == *=* ]]; then
        cl_nonempty "${2%%=*}" "${2#*=}"
        printf -v "$1" '%s' "${2#*=}"
        return 1
    fi
    cl_val "$2" "$4" "$3"
    printf -v "$1" '%s' "$3"
}

# cl_unexpected ARG: refuse an argument the command does not take, an option or an operand.
cl_unexpected() {
    [[ $1 != -* ]] || cl_bad "unknown option $1"
    cl_bad "unexpected argument $1"
}

# cl_only_name OPTION ARG...: the arguments of a command whose one option (besides --help) is
# OPTION, a service name (cl_name): the name into CL_NAME, empty when OPTION is not given.
cl_only_name() {
    local opt=$1

    shift
    CL_NAME=
    while (($#)); do
        case $1 in
        -h | --help) cl_usage ;;
        "$opt" | "$opt"=*) cl_opt CL_NAME "$1" "${2-}" $# && shift; cl_name "$opt" "$CL_NAME" ;;
        *) cl_unexpected "$1" ;;
        esac
        shift
    done
}

# cl_name OPTION VALUE: a service name must be one path component (the mount validates the rest).
cl_name() {
    cl_nonempty "$1" "$2"
    case $2 in
    */* | . | ..) cl_bad "$1: \"$2\" is not a service name" ;;
    esac
}

# The mount must be there before anything is done on it.
cl_need_mount() {
    [[ -d $M/services ]] ||
        cl_die "$M is not a conduitfs mount (no services/ there); set CONDUIT_MOUNT"
}

# The errno text at the end of a tool's error message ("...: Invalid argument").
cl_errtext() {
    local last=${1%$'\n'}
    last=${last##*$'\n'}
    printf '%s' "${last##*: }"
}

# cl_reason PATH ERRTEXT: why the mount refused this user's last change of PATH
# ("services/NAME", "services/NAME/ATTR", "monitor/NAME", "monitor/NAME/target.json"), from the
# newest change_refused entry for it in audit/audit.log whose error is ERRTEXT ("Invalid
# argument"); nothing when there is none or jq is missing.
cl_reason() {
    local me
    me=$(id -un 2>/dev/null || id -u)
    cl_has jq || return 0
    tail -n 64 -- "$M/audit/audit.log" 2>/dev/null |
        jq -r --arg p "$1" --arg u "$me" --arg e "$2" 'select(.action == "change_refused" and
            .details.path == $p and .details.error == $e and .user == $u) | .details.reason' \
            2>/dev/null | tail -n 1
}

# cl_fail PATH RAW: set CL_ERR to "PATH: <errno text>", plus " (<reason>)" when the mount
# audited why it refused the change (see cl_reason).
cl_fail() {
    local errtext reason
    errtext=$(cl_errtext "$2")
    case $errtext in
    'Invalid argument' | 'File exists' | 'File too large') reason=$(cl_reason "$1" "$errtext") ;;
    *) reason= ;;
    esac
    CL_ERR="$1: $errtext${reason:+ ($reason)}"
}

# cl_try REL COMMAND...: run COMMAND (stdout discarded); on failure set CL_ERR to
# "REL: <errno text>[ (<reason>)]" and return 1.
cl_try() {
    local rel=$1 err
    shift
    if err=$("$@" 2>&1 >/dev/null); then
        return 0
    fi
    cl_fail "$rel" "${err:-failed}"
    return 1
}

# cl_write_as WHAT REL VALUE: write VALUE and a newline to $M/REL in one write(2); on failure
# set CL_ERR, naming WHAT, and return 1.
cl_write_as() {
    local err
    if err=$({ printf '%s\n' "$3" > "$M/$2"; } 2>&1); then
        return 0
    fi
    cl_fail "$1" "${err:-write failed}"
    return 1
}

# cl_write REL VALUE: write VALUE and a newline to $M/REL in one write(2), sysfs style.
cl_write() { cl_write_as "$1" "$1" "$2"; }

# cl_apply NAME DOC: make or replace service NAME with the JSON document DOC in one write to
# services/.apply (one validated change, see docs/filesystem.md); CL_ERR names services/NAME.
cl_apply() { cl_write_as "services/$1" services/.apply "$2"; }

# cl_read REL: the content of $M/REL without its trailing newline into CL_OUT; on failure set
# CL_ERR and return 1. (cat prints nothing on stderr when it succeeds.)
cl_read() {
    if CL_OUT=$(cat -- "$M/$1" 2>&1); then
        return 0
    fi
    CL_ERR="$1: $(cl_errtext "${CL_OUT:-read failed}")"
    CL_OUT=
    return 1
}

# cl_has TOOL: whether TOOL is on PATH.
cl_has() { command -v "$1" >/dev/null 2>&1; }

# cl_json FILE FILTER: jq -r FILTER FILE, or nothing when jq is missing or fails.
cl_json() { cl_has jq && jq -r "$2" "$1" 2>/dev/null; }

# cl_jstr STRING: STRING as a JSON string literal (escapes \, ", and control characters).
cl_jstr() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        '"') out+='\"' ;;
        "\\") out+="\\\\" ;;
        $'\n') out+='\n' ;;
        $'\t') out+='\t' ;;
        $'\r') out+='\r' ;;
        [[:cntrl:]]) out+=$(printf '\\u%04x' "'$c") ;;
        *) out+=$c ;;
        esac
    done
    printf '"%s"' "$out"
}

# ---- DNS: the running dnsmasq, at $CONDUIT_DNS (default 127.0.0.1:5353) ----

# Split CONDUIT_DNS into DNS_ADDR and DNS_PORT: "A:P", "[V6]:P", "A" (port 53) or "V6".
cl_dns_server() {
    local s=${CONDUIT_DNS:-127.0.0.1:5353}
    case $s in
    \[*\]:*) DNS_ADDR=${s%%]*}; DNS_ADDR=${DNS_ADDR#[}; DNS_PORT=${s##*]:} ;;
    *:*:*) DNS_ADDR=$s; DNS_PORT=53 ;;
    *:*) DNS_ADDR=${s%:*}; DNS_PORT=${s##*:} ;;
    *) DNS_ADDR=$s; DNS_PORT=53 ;;
    esac
    if [[ -z $DNS_ADDR || ! $DNS_PORT =~ ^[0-9]{1,5}$ ]] || ((DNS_PORT < 1 || DNS_PORT > 65535))
    then
        cl_bad "CONDUIT_DNS: \"$s\" is not ADDR:PORT"
    fi
}

# cl_resolve DOMAIN: ask the running dnsmasq for DOMAIN's A records (AAAA when there are none).
# Sets CL_OUT to the addresses, one a line. Returns 0 with an answer, 1 for NXDOMAIN or no
# record, 2 when the server did not answer or dig is missing; CL_ERR says why.
cl_resolve() {
    local d=$1 type out status answers
    CL_OUT=''
    cl_has dig || { CL_ERR="dig is not installed (apt-get install dnsutils)"; return 2; }
    for type in A AAAA; do
        if ! out=$(dig "@$DNS_ADDR" -p "$DNS_PORT" +time=2 +tries=1 +noall +comments +answer \
            "$d" "$type" 2>&1); then
            CL_ERR="no answer from $DNS_ADDR:$DNS_PORT ($(printf '%s\n' "$out" |
                sed -n '/^;; */{s///p;q}'))"
            return 2
        fi
        status=$(printf '%s\n' "$out" | sed -n '/.*status: \([A-Z]*\).*/{s//\1/p;q}')
        if [[ -z $status ]]; then
            CL_ERR="no answer from $DNS_ADDR:$DNS_PORT"
            return 2
        fi
        if [[ $status != NOERROR ]]; then
            CL_ERR="$d: $status"
            return 1
        fi
        answers=$(printf '%s\n' "$out" | awk -v t="$type" '$0 !~ /^;/ && $4 == t { print $5 }')
        if [[ -n $answers ]]; then
            CL_OUT=$answers
            return 0
        fi
    done
    CL_ERR="$d: no address record"
    return 1
}

# cl_domain_of N: the domain a service name or a domain stands for, into CL_OUT. A name with a
# dot is a domain (service names have none); otherwise services/N/domain is read.
cl_domain_of() {
    if [[ $1 == *.* ]]; then
        CL_OUT=$1
        return 0
    fi
    cl_read "services/$1/domain"
}

# cl_table: align tab-separated lines on stdin into columns two spaces apart.
cl_table() {
    awk -F'\t' '
        { n = NR; nf[NR] = NF
          for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
        END { for (r = 1; r <= n; r++) { line = ""
                  for (i = 1; i <= nf[r]; i++)
                      line = line (i < nf[r] ? sprintf("%-" (w[i] + 2) "s", cell[r, i]) : cell[r, i])
                  print line } }'
}

# cl_field FILE KEY: a top-level string or number of the JSON object in FILE (nothing when
# absent or null). jq when installed; else a sed match of "KEY": VALUE, enough for the flat
# objects the mount writes.
cl_field() {
    if cl_has jq; then
        jq -r --arg k "$2" '.[$k] | select(. != null)' "$1" 2>/dev/null || true
    else
        sed -n "/.*\"$2\": *\"\\{0,1\\}\\([^\",}]*\\).*/{s//\\1/p;q}" "$1" 2>/dev/null || true
    fi
}

# cl_conduitfs: set CL_BIN to the conduitfs binary: $CONDUITFS; the one installed beside this
# command; PATH; a checkout's build/ (scripts/../build/conduitfs); else /usr/local/bin/conduitfs
# (which may not exist: check with -x).
cl_conduitfs() {
    local here
    here=$(dirname "$(readlink -f "$0")")
    CL_BIN=${CONDUITFS:-}
    [[ -n $CL_BIN || ! -x $here/conduitfs ]] || CL_BIN=$here/conduitfs
    [[ -n $CL_BIN ]] || CL_BIN=$(command -v conduitfs || true)
    [[ -n $CL_BIN || ! -x $here/../build/conduitfs ]] || CL_BIN=$here/../build/conduitfs
    [[ -n $CL_BIN ]] || CL_BIN=/usr/local/bin/conduitfs
}
