# lib.sh: shared helpers for the integration tests: a fresh mount, checks, and cleanup.
# Usage: source it, then `cfs_mount [extra conduitfs options]`. $1 of the test is the binary.

set -u
# A test that sets CFS_NETNS=own before sourcing this runs in a network namespace of its own
# (unshare -n, loopback only) where unshare is there: it runs itself again inside one, so that
# what the mount changes there (net.ipv4.tcp_migrate_req for Caddy's reloads) stays inside it.
if [[ ${CFS_NETNS:-} == own && -z "${CONDUIT_NETNS:-}" ]] && command -v unshare >/dev/null; then
    exec unshare -n env CONDUIT_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' \
        "$0" "$@"
fi
# shellcheck source=../../scripts/harness-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/harness-lib.sh"
CONDUITFS=${CONDUITFS:-${1:?usage: test.sh path/to/conduitfs}}
CONDUITFS=$(readlink -f "$CONDUITFS")
T=$(mktemp -d /tmp/conduit-test.XXXXXX)
MNT=$T/mnt
STATE=$T/state
S=$MNT/services
PASS=0
FAIL=0
CFS_PID=

cfs_cleanup() {
    cfs_unmount
    if [[ ${CFS_KEEP:-0} == 1 ]]; then echo "kept $T (CFS_KEEP=1)" >&2; else rm -rf "$T"; fi
}
trap cfs_cleanup EXIT

ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }

# check DESCRIPTION COMMAND...: the command must succeed.
check() {
    local what=$1; shift
    if "$@" >/dev/null 2>"$T/err"; then ok; else bad "$what: $(head -c 300 "$T/err")"; fi
}

# check_fails DESCRIPTION ERRNO-TEXT COMMAND...: the command must fail and say ERRNO-TEXT.
check_fails() {
    local what=$1 text=$2; shift 2
    if "$@" >/dev/null 2>"$T/err"; then
        bad "$what: succeeded, expected '$text'"
    elif [[ -z "$text" ]] || grep -q -- "$text" "$T/err"; then
        ok
    else
        bad "$what: expected '$text', got: $(head -c 300 "$T/err")"
    fi
}

# Write the contents of file SRC to DST with one write(2) of up to 64 KiB.
put_file() { dd if="$1" of="$2" bs=64k status=none; }

# check_eq DESCRIPTION GOT WANT
check_eq() {
    if [[ "$2" == "$3" ]]; then ok; else bad "$1: got [$2] want [$3]"; fi
}

# Mount a filesystem in the foreground, in the background of this shell; wait until it is up.
cfs_mount() {
    mkdir -p "$MNT"
    # config-only unless the test asked for the live gateway (cfs_mount_managed)
    local mode=--no-manage
    [[ -n "${CFS_MANAGED:-}" ]] && mode=--manage
    "$CONDUITFS" -f "$mode" --state "$STATE" "$@" "$MNT" 2>>"$T/conduitfs.log" &
    CFS_PID=$!
    cfs_wait_mounted "$MNT" "$CFS_PID" 100 && return 0
    echo "mount failed:" >&2
    cat "$T/conduitfs.log" >&2
    return 1
}

# check_verify DESCRIPTION: `conduitfs verify --state STATE` passes, or SKIP when the binary
# has no verify command.
check_verify() {
    local out rc=0
    out=$("$CONDUITFS" verify --state "$STATE" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] && grep -qiE "unknown|not available|not implemented|usage" <<<"$out"; then
        echo "SKIP: conduitfs verify not available: ${out:0:100}"
    else
        check_eq "$1: conduitfs verify passes (${out:0:70})" "$rc" "0"
    fi
}

# need_tools TOOL...: every TOOL must be on PATH, or the test stops with "missing TOOL".
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool"; exit 1; }
    done
}

# A free TCP (and UDP) port on 127.0.0.1.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); u = socket.socket(type=socket.SOCK_DGRAM)
p = s.getsockname()[1]; u.bind(("127.0.0.1", p)); print(p)'
}

# Mount with dnsmasq and Caddy supervised on free loopback ports: sets DNS_PORT and HTTPS_PORT.
cfs_mount_managed() {
    DNS_PORT=$(free_port)
    HTTPS_PORT=$(free_port)
    CFS_MANAGED=1 cfs_mount --dns-listen "127.0.0.1:$DNS_PORT" \
        --https-listen "127.0.0.1:$HTTPS_PORT" "$@"
}

cfs_unmount() {
    cfs_unmount_at "$MNT" "$CFS_PID" 1
    CFS_PID=
}

# Write VALUE into FILE with one write(2), as `echo` does.
put() { printf '%s\n' "$2" > "$1"; }

# A fingerprint of every generated config and the registry.
configs_digest() {
    (cd "$STATE" && find services.json dns routing -type f -print0 | sort -z |
        xargs -0 sha256sum)
}

# Print the closing line and exit with the right status.
finish() {
    echo "$PASS passed, $FAIL failed"
    [[ $FAIL -eq 0 ]]
}

# A python3 that has the system's modules (pyenv shims may hide them). Start background
# servers with "$PY3" itself, so that $! is the server's pid.
PY3=/usr/bin/python3
[[ -x $PY3 ]] || PY3=python3
py3() { "$PY3" "$@"; }

# wait_for SECONDS COMMAND...: retry the command every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# check_jq DESCRIPTION FILTER FILE: jq -e FILTER FILE must hold.
check_jq() {
    if jq -e "$2" "$3" >/dev/null 2>"$T/err"; then ok; else
        bad "$1: $2 is false for: $(head -c 600 "$3")"; fi
}

# make_users GROUP MEMBER OTHER: as root (else the test stops), a new group and two new users
# without homes, nogroup their primary group: MEMBER in GROUP, OTHER not. Sets G, U1 (MEMBER)
# and U2 (OTHER); remove_users deletes them again.
make_users() {
    [[ $(id -u) -eq 0 ]] || { echo "needs root (creates users)"; exit 1; }
    G=$1 U1=$2 U2=$3
    groupadd "$G"
    useradd -M -N -g nogroup -G "$G" -s /bin/sh "$U1"
    useradd -M -N -g nogroup -s /bin/sh "$U2"
}
remove_users() { userdel "$U1" 2>/dev/null; userdel "$U2" 2>/dev/null; groupdel "$G" 2>/dev/null; }

# sshd_setup SETENV: a real sshd for the test on a free loopback port (SSH_PORT), with its own
# host key and a client key ($T/sshd/client_key) that root may log in with; SETENV is the
# sessions' environment (sshd's SetEnv line). Its pid file is $T/sshd/sshd.pid. Needs root and
# openssh-server: returns 1 without them. Start it with sshd_start.
sshd_setup() {
    SSH_PORT=$(free_port)
    [[ -x /usr/sbin/sshd && $(id -u) -eq 0 ]] && command -v ssh-keygen >/dev/null || return 1
    cfs_sshd_config "$T/sshd" "$SSH_PORT" "$1"
}

# sshd_start: start the sshd of sshd_setup (again) and wait until its port answers.
sshd_start() {
    /usr/sbin/sshd -f "$T/sshd/sshd_config" -E "$T/sshd/log" &&
        wait_for 5 py3 -c "import socket; socket.create_connection(('127.0.0.1', $SSH_PORT))"
}
