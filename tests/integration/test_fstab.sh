#!/usr/bin/env bash
# test_fstab.sh: system integration. `cmake --install` into a temp prefix; the installed mount
# helper, the systemd unit (systemd-analyze verify) and commands; an fstab line mounted with
# `mount -T FSTAB MOUNTPOINT` both through our helper (found as /sbin/mount.fuse.conduitfs) and
# through the generic mount.fuse3 (which runs conduitfs from sh's default PATH); the -o
# options reaching conduitfs, SIGHUP re-rendering, SIGTERM and umount unmounting.
#
# mount(8) only looks for helpers in /sbin and runs them with PATH and HOME cleared, so a temp
# prefix is invisible to it. The mount(8) cases therefore run in a private mount namespace
# (unshare -m) in which /usr/sbin (or /usr/local/bin) is replaced by a directory holding the
# installed files; nothing outside the namespace changes. The FUSE mount lives in that
# namespace too; the checks enter it with nsenter.
# shellcheck disable=SC2016,SC2012  # file-wide: single-quoted jq and $VARS; ls of our names

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
BUILD=$(dirname "$CONDUITFS")
PREFIX=$T/prefix
FSTAB=$T/fstab
HOLD_PID=

fstab_cleanup() {
    if [[ -n $HOLD_PID ]]; then
        nsenter -t "$HOLD_PID" -m -- umount "$MNT" 2>/dev/null
        kill "$HOLD_PID" 2>/dev/null
    fi
    cfs_cleanup
}
trap fstab_cleanup EXIT

if ! "$CONDUITFS" --help | grep -q 'state='; then
    echo "SKIP: this conduitfs takes no -o state= (fs/main.c predates fstab options)"
    finish
    exit
fi

# ---- cmake --install into a temp prefix ----
check "cmake --install into a temp prefix" cmake --install "$BUILD" --prefix "$PREFIX"
for f in bin/conduitfs sbin/mount.fuse.conduitfs bin/conduit-register bin/conduit-status \
    bin/conduit-verify; do
    check "installed $f, executable" test -x "$PREFIX/$f"
done
for f in lib/conduitfs/conduit-lib.sh lib/systemd/system/conduitfs.service \
    share/bash-completion/completions/conduit-status share/doc/conduitfs/operations.md \
    share/doc/conduitfs/security.md; do
    check "installed $f" test -f "$PREFIX/$f"
done
check_eq "the helper names the installed conduitfs" \
    "$(grep '^CONDUITFS=' "$PREFIX/sbin/mount.fuse.conduitfs")" "CONDUITFS=$PREFIX/bin/conduitfs"
UNIT=$PREFIX/lib/systemd/system/conduitfs.service
check_eq "the unit runs the installed conduitfs" "$(grep '^ExecStart=' "$UNIT")" \
    "ExecStart=$PREFIX/bin/conduitfs -f --state /var/lib/qp-conduit \$CONDUITFS_OPTS /run/conduit"
check "the unit reloads with SIGHUP" grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT"
check "the unit releases the mount after stop" grep -qx \
    'ExecStopPost=-/bin/fusermount3 -uz /run/conduit' "$UNIT"
check_fails "the unit makes no mount namespace (the mount would be invisible)" "" grep -qE \
    '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|TemporaryFileSystem|ProtectKernelTunables|ProtectControlGroups|BindPaths)=' \
    "$UNIT"
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts the unit" systemd-analyze verify "$UNIT"
else
    echo "SKIP: systemd-analyze not installed"
fi
check "the completion loads" bash -c "source '$PREFIX/share/bash-completion/completions/conduit-status'
    complete -p conduit-status"

if [[ $(id -u) -ne 0 ]] || ! unshare -m --propagation private true 2>/dev/null; then
    echo "SKIP: mount(8) cases need root and unshare -m"
    finish
    exit
fi
mkdir -p "$MNT"

# mount(8) makes SOURCE an absolute path when a file of that name is in the current directory
# (ctest runs in the build directory, which holds one named conduitfs): mount from /.

# the daemon of this test's mount, by its -o state= option
daemon_pid() { pgrep -f -- "-o rw,state=$STATE," | head -1; }
ns() { nsenter -t "$HOLD_PID" -m -- "$@"; }

# ---- 1. fstab, mount(8) finds our helper as /sbin/mount.fuse.conduitfs ----
SBIN=$(readlink -f /sbin)                  # /usr/sbin on a merged-/usr system
mkdir -p "$T/orig-sbin" "$T/sbin"
# the real directory stays reachable (bound elsewhere inside the namespace) for the links
cat > "$T/mk-sbin.sh" <<EOF
mount --bind "$SBIN" "$T/orig-sbin"
for f in "$T"/orig-sbin/*; do ln -sf "\$f" "$T/sbin/\${f##*/}"; done
ln -sf "$PREFIX/sbin/mount.fuse.conduitfs" "$T/sbin/mount.fuse.conduitfs"
EOF
echo "conduitfs $MNT fuse.conduitfs state=$STATE,no_manage,allow_other,admin_group=root,nofail,x-systemd.device-timeout=5 0 0" \
    > "$FSTAB"
rm -f "$T/hold"
unshare -m --propagation private bash -c '
    sleep 600 & echo $! > "$1/hold"
    bash "$1/mk-sbin.sh" && mount --bind "$1/sbin" "$2" && cd / && exec mount -T "$3" "$4"' \
    _ "$T" "$SBIN" "$FSTAB" "$MNT" 2>"$T/mount.err"
rc=$?
HOLD_PID=$(cat "$T/hold")
check_eq "mount -T fstab via /sbin/mount.fuse.conduitfs (stderr: $(head -c 300 "$T/mount.err"))" \
    "$rc" "0"
check "mounted" ns mountpoint -q "$MNT"
check_eq "source and type as fstab says" "$(ns findmnt -no SOURCE,FSTYPE "$MNT" | tr -s ' ')" \
    "conduitfs fuse.conduitfs"
opts=$(ns findmnt -no OPTIONS "$MNT")
check "nosuid,nodev kept, allow_other passed" grep -qE 'nosuid,nodev.*allow_other' <<<"$opts"
DPID=$(daemon_pid)
check "the daemon runs in the background" test -n "$DPID"
check_eq "conduitfs got the options, less the mount(8)-only ones" \
    "$(tr '\0' ' ' < "/proc/$DPID/cmdline")" \
    "$PREFIX/bin/conduitfs conduitfs $MNT -o rw,state=$STATE,no_manage,allow_other,admin_group=root,fsname=conduitfs,subtype=conduitfs "
check "state= is the state directory" test -f "$STATE/services.json"
check "mkdir registers" ns mkdir "$MNT/services/core"
check_eq "the registry has it" "$(jq -r '.services[].name' "$STATE/services.json")" "core"
check "an installed command works" ns env CONDUIT_MOUNT="$MNT" "$PREFIX/bin/conduit-register" \
    --name web --upstream 127.0.0.1:9
check_fails "no_manage: no dnsmasq or Caddy" "" pgrep -f "$STATE/(routing|dns)"
# SIGHUP: every config is rendered again from the registry
rm -f "$STATE/routing/caddy.json" "$STATE/dns/hosts.d/web"
kill -HUP "$DPID"
check "SIGHUP re-renders caddy.json" wait_for 5 grep -q web.internal "$STATE/routing/caddy.json"
check "SIGHUP re-renders hosts.d" wait_for 5 test -f "$STATE/dns/hosts.d/web"
check "config_reload in the audit log" wait_for 5 grep -q '"action":"config_reload","status":"success"' \
    "$STATE/audit.log"
check "umount unmounts" ns umount "$MNT"
check "the daemon exits after umount" wait_for 5 bash -c "! kill -0 $DPID 2>/dev/null"
kill "$HOLD_PID" 2>/dev/null
HOLD_PID=

# ---- 2. fstab, no helper of ours: mount.fuse3 runs `conduitfs` from sh's default PATH ----
echo "conduitfs $MNT fuse.conduitfs state=$STATE,no_manage,_netdev 0 0" > "$FSTAB"
rm -f "$T/hold"
unshare -m --propagation private bash -c '
    sleep 600 & echo $! > "$1/hold"
    mount --bind "$2" /usr/local/bin && cd / && exec mount -T "$3" "$4"' \
    _ "$T" "$PREFIX/bin" "$FSTAB" "$MNT" 2>"$T/mount.err"
rc=$?
HOLD_PID=$(cat "$T/hold")
check_eq "mount -T fstab via mount.fuse3 (stderr: $(head -c 300 "$T/mount.err"))" "$rc" "0"
check "mounted" ns mountpoint -q "$MNT"
DPID=$(daemon_pid)
check_eq "mount.fuse3 ran conduitfs SOURCE MOUNTPOINT -o OPTIONS" \
    "$(tr '\0' ' ' < "/proc/$DPID/cmdline")" "conduitfs conduitfs $MNT -o rw,state=$STATE,no_manage,dev,suid "
check_eq "the registry came back" "$(ns ls "$MNT/services" | tr '\n' ' ')" "core web "
# SIGTERM: unmounts and exits (what systemctl stop sends)
kill -TERM "$DPID"
check "the daemon exits on SIGTERM" wait_for 5 bash -c "! kill -0 $DPID 2>/dev/null"
check_fails "SIGTERM unmounted it" "" ns mountpoint -q "$MNT"
kill "$HOLD_PID" 2>/dev/null
HOLD_PID=

# ---- 3. the helper itself, called as mount(8) calls it (empty environment) ----
H=$PREFIX/sbin/mount.fuse.conduitfs
check "helper -f (fake) mounts nothing" env -i "$H" conduitfs "$MNT" -f -o "state=$STATE,no_manage"
check_fails "nothing mounted after -f" "" mountpoint -q "$MNT"
check_fails "a bad FUSE option fails the mount" "" env -i "$H" conduitfs "$MNT" \
    -o "state=$STATE,no_manage,no_such_option"
check_fails "nothing mounted after the failure" "" mountpoint -q "$MNT"
check_fails "helper usage error" "usage: mount.fuse.conduitfs" env -i "$H" conduitfs
check "helper mounts directly" env -i "$H" conduitfs "$MNT" -n -o "rw,state=$STATE,no_manage,nofail,noauto"
check "mounted" mountpoint -q "$MNT"
check_eq "fuse.conduitfs in /proc/mounts" "$(awk -v m="$MNT" '$2 == m {print $1, $3}' /proc/mounts)" \
    "conduitfs fuse.conduitfs"
check "fusermount3 -u unmounts" fusermount3 -u "$MNT"
check_fails "unmounted" "" mountpoint -q "$MNT"
finish
