#!/usr/bin/env bash
# test_setup.sh: conduit-setup (scripts/conduit-setup.sh). Everything there -> exit 0 and the
# fstab line, the systemd commands and the trust commands; a busy DNS or HTTPS port (a python
# listener on loopback), a state directory or state file open to others, a program missing
# from PATH (caddy, dnsmasq, fusermount3: a PATH of symlinks to everything else) or a conduitfs
# that does not run -> exit 1 with one line naming it; bad arguments -> exit 2; its bash
# completion. The state directory checked in the good case is a real one, made by a mount.
# shellcheck disable=SC2016  # single-quoted python

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
SETUP=$(cd "$(dirname "$0")/../.." && pwd)/scripts/conduit-setup.sh
LISTENER_PIDS=()

setup_cleanup() {
    local p
    for p in "${LISTENER_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    cfs_cleanup
}
trap setup_cleanup EXIT

if [[ ! -x $SETUP ]]; then
    bad "scripts/conduit-setup.sh is missing"
    finish
    exit
fi

# run_setup ARGS...: conduit-setup with this build's conduitfs; stdout+stderr in $T/out, $RC.
run_setup() {
    RC=0
    CONDUITFS=$CONDUITFS "$SETUP" "$@" >"$T/out" 2>&1 || RC=$?
}
# expect RC TEXT DESCRIPTION: the last run exited RC and its output has TEXT (fixed string).
expect() {
    if [[ $RC -ne $1 ]]; then
        bad "$3: exit $RC, want $1: $(head -c 600 "$T/out")"
    elif ! grep -qF -- "$2" "$T/out"; then
        bad "$3: no '$2' in: $(head -c 600 "$T/out")"
    else
        ok
    fi
}

# A real state directory: mount once, unmount.
cfs_mount || { bad "mount"; finish; exit; }
cfs_unmount
DNS_P=$(free_port)
HTTPS_P=$(free_port)
ARGS=(--state "$STATE" --dns-listen "127.0.0.1:$DNS_P" --https-listen="127.0.0.1:$HTTPS_P"
    --mount /srv/gw)

# ---- all there ----
run_setup "${ARGS[@]}"
expect 0 "conduitfs  /srv/gw  fuse.conduitfs  state=$STATE,dns_listen=127.0.0.1:$DNS_P" \
    "ready: the fstab line"
expect 0 "https_listen=127.0.0.1:$HTTPS_P,allow_other,default_permissions" \
    "ready: the fstab line has every option"
expect 0 "systemctl daemon-reload && systemctl enable --now conduitfs" "ready: systemd"
expect 0 "CONDUITFS_OPTS=\"--state $STATE --dns-listen 127.0.0.1:$DNS_P" "ready: systemd options"
expect 0 "CONDUIT_MOUNT=/srv/gw conduit-ca trust > trust.sh" "ready: the trust command"
check_fails "ready: nothing reported missing" "" grep -q missing "$T/out"
# the default state directory, as conduitfs's: ~/.config/$CONDUIT_APP_NAME
mkdir -p "$T/home"
RC=0
HOME=$T/home CONDUIT_APP_NAME=gw7 CONDUITFS=$CONDUITFS "$SETUP" >"$T/out" 2>&1 || RC=$?
expect 0 "state=$T/home/.config/gw7," "default state directory, not yet there"
RC=0
CONDUIT_MOUNT=/mnt/x HOME=$T/home CONDUITFS=$CONDUITFS "$SETUP" >"$T/out" 2>&1 || RC=$?
expect 0 "conduitfs  /mnt/x  fuse.conduitfs  state=$T/home/.config/qp-conduit," \
    "CONDUIT_MOUNT and qp-conduit by default"

# ---- busy ports ----
# listen PROTO ADDR PORT: a python socket bound there (listening, for tcp) until the test ends.
listen() {
    rm -f "$T/ready"
    "$PY3" -c 'import socket, sys, time
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.bind((sys.argv[2], int(sys.argv[3])))
if kind == socket.SOCK_STREAM:
    s.listen(1)
open(sys.argv[4], "w").close()
time.sleep(120)' "$1" "$2" "$3" "$T/ready" &
    LISTENER_PIDS+=($!)
    wait_for 10 test -e "$T/ready" || bad "listener on $2:$3/$1 did not start"
}
stop_listeners() {
    local p
    for p in "${LISTENER_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    LISTENER_PIDS=()
}
listen tcp 127.0.0.1 "$HTTPS_P"
run_setup "${ARGS[@]}"
expect 1 "127.0.0.1:$HTTPS_P/tcp (--https-listen) is in use" "busy HTTPS port"
check_fails "busy HTTPS port: no fstab line" "" grep -q fuse.conduitfs "$T/out"
check_fails "busy HTTPS port: the DNS port is not named" "" grep -q ":$DNS_P/" "$T/out"
stop_listeners
listen udp 127.0.0.1 "$DNS_P"
run_setup "${ARGS[@]}"
expect 1 "127.0.0.1:$DNS_P/udp (--dns-listen) is in use" "busy DNS port (UDP)"
stop_listeners
# a wildcard listener takes the port on loopback too; a listener on another loopback
# address does not
listen tcp 0.0.0.0 "$DNS_P"
run_setup "${ARGS[@]}"
expect 1 "127.0.0.1:$DNS_P/tcp (--dns-listen) is in use" "busy DNS port (TCP, wildcard)"
stop_listeners
listen tcp 127.0.0.2 "$HTTPS_P"
run_setup "${ARGS[@]}"
expect 0 "fuse.conduitfs" "a listener on 127.0.0.2 leaves 127.0.0.1 free"
stop_listeners

# ---- the state directory's modes ----
chmod 755 "$STATE"
run_setup "${ARGS[@]}"
expect 1 "state: $STATE has mode 0755, not 0700" "state directory 0755"
chmod 700 "$STATE"
chmod 644 "$STATE/key"
run_setup "${ARGS[@]}"
expect 1 "state: $STATE/key has mode 0644" "state file 0644"
chmod 600 "$STATE/key"
touch "$T/plain"
run_setup --state "$T/plain" --dns-listen "127.0.0.1:$DNS_P" --https-listen "127.0.0.1:$HTTPS_P"
expect 1 "state: $T/plain is not a directory" "state that is a file"
run_setup "${ARGS[@]}"
expect 0 "fuse.conduitfs" "modes restored: ready again"

# ---- missing programs ----
# without_prog NAME: a directory of symlinks to every program on PATH except NAME.
without_prog() {
    local d=$T/path-$1 dir f
    mkdir -p "$d"
    local IFS=:
    for dir in $PATH; do
        for f in "$dir"/*; do
            [[ -x $f && ! -d $f && ${f##*/} != "$1" && ! -e $d/${f##*/} ]] || continue
            ln -s "$f" "$d/${f##*/}"
        done
    done
    echo "$d"
}
for prog in caddy dnsmasq fusermount3; do
    dir=$(without_prog "$prog")
    RC=0
    PATH=$dir CONDUITFS=$CONDUITFS "$SETUP" "${ARGS[@]}" >"$T/out" 2>&1 || RC=$?
    expect 1 "$prog is not on PATH" "PATH without $prog"
    n=$(grep -c 'missing:' "$T/out")
    check_eq "PATH without $prog: one line" "$n" 1
done
printf '#!/bin/sh\necho "error while loading shared libraries: libfuse3.so.3" >&2\nexit 127\n' \
    > "$T/broken"
chmod +x "$T/broken"
RC=0
CONDUITFS=$T/broken "$SETUP" "${ARGS[@]}" >"$T/out" 2>&1 || RC=$?
expect 1 "conduitfs: $T/broken --version failed: error while loading shared libraries" \
    "a conduitfs that does not run"

# ---- bad arguments: exit 2, nothing checked ----
for a in "--bogus" "--dns-listen" "--dns-listen=" "--dns-listen localhost" \
    "--https-listen 127.0.0.1:0" "--https-listen 127.0.0.1:70000" "--https-listen ::1:443" \
    "--state" "--mount relative/dir" "extra"; do
    # shellcheck disable=SC2086  # split on purpose
    run_setup $a
    expect 2 "(see --help)" "bad arguments: $a"
done
run_setup --help
expect 0 "usage: conduit-setup" "--help"

# ---- completion ----
COMPL=$(dirname "$SETUP")/conduit-completion.bash
complete_words() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _conduit; printf "%s " "${COMPREPLY[@]}"' _ "$COMPL" "$@"
}
check_eq "completion: conduit-setup's options" "$(complete_words conduit-setup --)" \
    "--state --dns-listen --https-listen --mount --help "
check "completion: registered for conduit-setup" bash -c \
    "source '$COMPL' && complete -p conduit-setup conduit-setup.sh"
run_setup --https-listen "[::1]:$HTTPS_P" --dns-listen "127.0.0.1:$DNS_P" --state "$STATE"
expect 0 "https_listen=[::1]:$HTTPS_P" "IPv6 listen address"

finish
