#!/usr/bin/env bash
# conduit-setup: checks that this machine can run a conduit gateway (FUSE, the packages, free
# listen ports, the state directory's modes) and prints how to start it: an fstab line, the
# systemd commands and the commands that trust its CA. It changes nothing.
set -euo pipefail
PROG=conduit-setup
USAGE="usage: $PROG [--state DIR] [--dns-listen A:P] [--https-listen A:P] [--mount DIR]

Checks what a conduit gateway needs on this machine, as the user that will run conduitfs,
and changes nothing:

  FUSE       /dev/fuse readable and writable, fusermount3 on PATH, the fuse filesystem
             known to the kernel (module loaded or built in)
  packages   caddy, dnsmasq, openssl and jq on PATH; conduitfs runs (--version), so its
             libraries are there (conduitfs from \$CONDUITFS, beside this command, PATH,
             a checkout's build/, or /usr/local/bin)
  ports      nothing listens on the DNS address (UDP and TCP) or the HTTPS address (TCP)
  state      the state directory, if it exists, is a directory owned by this user with mode
             0700, and nothing in it is owned by another user or open to group or others

  --state DIR         state directory, as conduitfs's --state (default
                      ~/.config/\$CONDUIT_APP_NAME, CONDUIT_APP_NAME defaulting to qp-conduit)
  --dns-listen A:P    dnsmasq's listen address, as conduitfs's (default 127.0.0.1:5353)
  --https-listen A:P  Caddy's listen address, as conduitfs's (default 127.0.0.1:8443)
  --mount DIR         the mount point for the printed lines (default \$CONDUIT_MOUNT, else
                      /run/conduit)

Prints one line for each thing missing, or, when nothing is, the fstab line, the systemd
commands and the commands that make clients trust the gateway's CA.
Options take --opt VALUE or --opt=VALUE.
Exit status: 0 ready, 1 something is missing (one line each), 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

state='' dns=127.0.0.1:5353 https=127.0.0.1:8443
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --state | --state=*) cl_opt state "$1" "${2-}" $# && shift ;;
    --dns-listen | --dns-listen=*) cl_opt dns "$1" "${2-}" $# && shift ;;
    --https-listen | --https-listen=*) cl_opt https "$1" "${2-}" $# && shift ;;
    --mount | --mount=*) cl_opt M "$1" "${2-}" $# && shift ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done

# split_listen OPTION A:P: ADDR and PORT of "A:P" or "[V6]:P", as conduitfs takes them.
split_listen() {
    local s=$2
    case $s in
    \[*\]:*) ADDR=${s%%]*}; ADDR=${ADDR#[}; PORT=${s##*]:} ;;
    *:*:*) cl_bad "$1: \"$s\" is not ADDR:PORT (IPv6 as [ADDR]:PORT)" ;;
    *:*) ADDR=${s%:*}; PORT=${s##*:} ;;
    *) cl_bad "$1: \"$s\" is not ADDR:PORT" ;;
    esac
    if [[ -z $ADDR || ! $ADDR =~ ^[0-9a-fA-F.:]+$ || ! $PORT =~ ^[0-9]{1,5}$ ]] ||
        ((10#$PORT < 1 || 10#$PORT > 65535)); then
        cl_bad "$1: \"$s\" is not ADDR:PORT"
    fi
    PORT=$((10#$PORT))
}
split_listen --dns-listen "$dns"
DNS_A=$ADDR DNS_P=$PORT
split_listen --https-listen "$https"
HTTPS_A=$ADDR HTTPS_P=$PORT
[[ $M == /* ]] || cl_bad "--mount: \"$M\" is not an absolute path"

if [[ -z $state ]]; then
    app=${CONDUIT_APP_NAME:-qp-conduit}
    [[ -n ${HOME:-} ]] || cl_bad "HOME is not set; give --state DIR"
    state=$HOME/.config/$app
fi

MISSING=0
# missing TEXT: one line for one thing this machine lacks.
missing() { printf '%s: missing: %s\n' "$PROG" "$*"; MISSING=$((MISSING + 1)); }

# ---- FUSE ----
if [[ ! -c /dev/fuse ]]; then
    missing "FUSE: /dev/fuse is not there (modprobe fuse; in a container: --device /dev/fuse)"
elif [[ ! -r /dev/fuse || ! -w /dev/fuse ]]; then
    missing "FUSE: /dev/fuse is not readable and writable by $(id -un)"
fi
cl_has fusermount3 || missing "FUSE: fusermount3 is not on PATH (apt-get install fuse3)"
grep -qw fuse /proc/filesystems 2>/dev/null ||
    missing "FUSE: the kernel has no fuse filesystem (modprobe fuse)"

# ---- packages ----
for p in caddy:caddy dnsmasq:dnsmasq-base openssl:openssl jq:jq; do
    cl_has "${p%%:*}" || missing "${p%%:*} is not on PATH (apt-get install ${p#*:})"
done
cl_conduitfs
bin=$CL_BIN
if [[ ! -x $bin ]]; then
    missing "conduitfs is not installed (cmake --install build, or set CONDUITFS to its path)"
elif ! out=$("$bin" --version 2>&1); then
    missing "conduitfs: $bin --version failed: $(printf '%s' "$out" | head -n 1)"
fi

# ---- ports ----
# listeners PROTO PORT: "ADDR PROCESS" of every socket bound to PORT (ss: TCP listening, UDP
# bound), ADDR without brackets or %interface.
listeners() {
    ss -H -n -l -p "--$1" "sport = :$2" 2>/dev/null | awk '{
        a = $4; sub(/:[0-9]+$/, "", a); sub(/%.*/, "", a); gsub(/[][]/, "", a)
        p = "-"; if (match($0, /users:\(\("[^"]*"/)) p = substr($0, RSTART + 9, RLENGTH - 10)
        print a, p }'
}
# wildcard ADDR: whether ADDR is every address.
wildcard() { [[ $1 == 0.0.0.0 || $1 == :: || $1 == '*' ]]; }
# port_free OPTION ADDR PORT PROTO...: one line for each protocol whose port is taken.
port_free() {
    local opt=$1 addr=$2 port=$3 proto a p
    shift 3
    for proto; do
        while read -r a p; do
            [[ -n $a ]] || continue
            if [[ $a == "$addr" ]] || wildcard "$a" || wildcard "$addr"; then
                missing "port: $addr:$port/$proto ($opt) is in use by ${p/#-/another process}" \
                    "on $a:$port"
                break
            fi
        done < <(listeners "$proto" "$port")
    done
}
if ! cl_has ss; then
    missing "ss is not on PATH, so the ports cannot be checked (apt-get install iproute2)"
else
    port_free --dns-listen "$DNS_A" "$DNS_P" udp tcp
    port_free --https-listen "$HTTPS_A" "$HTTPS_P" tcp
fi

# ---- the state directory ----
uid=$(id -u)
if [[ -L $state || (-e $state && ! -d $state) ]]; then
    missing "state: $state is not a directory"
elif [[ -d $state ]]; then
    read -r mode owner < <(stat -c '%a %u' -- "$state")
    [[ $owner == "$uid" ]] ||
        missing "state: $state is owned by uid $owner, not $(id -un) (run as that user)"
    [[ $mode == 700 ]] || missing "state: $state has mode 0$mode, not 0700 (chmod 700 $state)"
    n=0
    while IFS= read -r -d '' f; do
        if ((++n > 5)); then
            missing "state: more files under $state open to group or others, or not yours"
            break
        fi
        read -r mode owner < <(stat -c '%a %u' -- "$f")
        missing "state: $f has mode 0$mode and owner uid $owner (want 0600/0700, uid $uid)"
    done < <(find "$state" -mindepth 1 \( -perm /077 -o ! -uid "$uid" \) ! -type l \
        -print0 2>/dev/null)
elif [[ -e $(dirname -- "$state") && ! -d $(dirname -- "$state") ]]; then
    missing "state: $(dirname -- "$state") is not a directory"
fi

if ((MISSING)); then
    printf '%s: %d thing(s) missing; fix them and run %s again\n' "$PROG" "$MISSING" "$PROG" >&2
    exit 1
fi

# ---- ready: how to start it ----
opts="--dns-listen $dns --https-listen $https"
fstab_opts="state=$state,dns_listen=$dns,https_listen=$https"
fstab_opts+=",allow_other,default_permissions,nofail"
unit_opts=$opts
[[ $state == /var/lib/qp-conduit ]] || unit_opts="--state $state $opts"
printf 'ready: FUSE, caddy, dnsmasq, openssl, jq, conduitfs (%s); %s and %s free; state %s\n' \
    "$bin" "$dns" "$https" "$state"
cat <<EOF

Mount it from /etc/fstab (then: mount $M; see docs/operations.md):
  conduitfs  $M  fuse.conduitfs  $fstab_opts  0 0

or run it under systemd (the unit mounts /run/conduit):
  echo 'CONDUITFS_OPTS="$unit_opts"' > /etc/default/conduitfs
  systemctl daemon-reload && systemctl enable --now conduitfs

or by hand:
  conduitfs --state $state $opts $M

Then trust its CA, on this machine and on every client:
  CONDUIT_MOUNT=$M conduit-ca trust > trust.sh && sudo sh trust.sh
  CONDUIT_MOUNT=$M conduit-ca trust --os windows > trust.ps1    # or macos, rhel, firefox, docker
  CONDUIT_MOUNT=$M conduit-ca export > conduit-ca.crt            # the root certificate itself
EOF
