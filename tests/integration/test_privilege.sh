#!/usr/bin/env bash
# test_privilege.sh: who may write (--admin-group with allow_other,default_permissions, checked
# with two unprivileged users the test creates), state file modes, fstab-style -o options with a
# SOURCE argument, and SIGHUP re-rendering every config.
source "$(dirname "$0")/lib.sh"

make_users "cfsadm$$" "cfsop$$" "cfsro$$"
cleanup_users() { remove_users; cfs_cleanup; }
trap cleanup_users EXIT
chmod 755 "$T"
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }

cfs_mount --admin-group "$G" -o allow_other,default_permissions
check "root registers" mkdir "$S/core"
check "a member may register" as "$U1" mkdir "$S/opsvc"
check "a member may write" as "$U1" sh -c "echo 127.0.0.1:9000 > '$S/opsvc/upstream'"
check_fails "a non-member may not register" "Permission denied" as "$U2" mkdir "$S/rosvc"
check_fails "a non-member may not write" "Permission denied" as "$U2" sh -c \
    "echo 127.0.0.1:1 > '$S/core/upstream'"
check_fails "a non-member may not deregister" "Permission denied" as "$U2" rmdir "$S/core"
check_fails "a non-member may not reset" "Permission denied" as "$U2" rm -f "$S/core/mode"
check_eq "a non-member may read" "$(as "$U2" cat "$S/core/domain")" "core.internal"
check_eq "the audit line records the real caller" "$(jq -r 'select(.action=="service_register"
    and .details.name=="opsvc") | .user' "$STATE/audit.log")" "$U1"
check_eq "the update line too" "$(jq -r 'select(.action=="service_update" and
    .details.name=="opsvc") | .user' "$STATE/audit.log")" "$U1"
check_eq "group owns the tree" "$(stat -c %G "$S")" "$G"
cfs_unmount

# a remount without options keeps the recorded --admin-group (mount.json)
cfs_mount -o allow_other
check_eq "the recorded admin group applies again" "$(stat -c %G "$S")" "$G"
cfs_unmount
# without --admin-group (cleared with an empty value), only root (the daemon's user) may write,
# even with allow_other
cfs_mount -o allow_other,admin_group=
check_fails "others may not write without --admin-group" "Permission denied" as "$U1" \
    mkdir "$S/nope"
check_eq "others may read" "$(as "$U1" cat "$S/core/domain")" "core.internal"
cfs_unmount

# modes of every state file after a full lifecycle
check_eq "state dir 0700" "$(stat -c %a "$STATE")" "700"
check_eq "every state file 0600" "$(find "$STATE" -type f ! -perm 600 | wc -l)" "0"
check_eq "every state dir 0700" "$(find "$STATE" -type d ! -perm 700 | wc -l)" "0"
check_fails "unknown admin group refused" "" "$CONDUITFS" --admin-group "no-such-$$" \
    --state "$STATE" "$MNT"

# fstab spelling: SOURCE MOUNTPOINT -o state=...,no_manage
"$CONDUITFS" conduitfs "$MNT" -o "state=$STATE,no_manage,domains=internal,fsname=conduitfs" &&
    ok || bad "mount with -o state="
check "mounted from -o options" mountpoint -q "$MNT"
check_eq "state from -o state=" "$(cat "$S/core/domain" 2>&1)" "core.internal"
PID=$(pgrep -f "conduitfs conduitfs $MNT" | head -1)

# SIGHUP re-renders every config from the registry
# (opsvc is active; core is pending and has no hosts file)
rm -f "$STATE/routing/caddy.json" "$STATE/dns/hosts.d/opsvc" "$STATE/dns/dnsmasq.conf"
kill -HUP "$PID"
for _ in $(seq 50); do [[ -f "$STATE/routing/caddy.json" ]] && break; sleep 0.1; done
check "SIGHUP wrote caddy.json back" test -f "$STATE/routing/caddy.json"
check "SIGHUP wrote the hosts file back" test -f "$STATE/dns/hosts.d/opsvc"
check "SIGHUP wrote dnsmasq.conf back" test -f "$STATE/dns/dnsmasq.conf"
check "still mounted after SIGHUP" mountpoint -q "$MNT"
check "config_reload line" grep -q '"action":"config_reload"' "$STATE/audit.log"
kill -TERM "$PID"
for _ in $(seq 50); do mountpoint -q "$MNT" || break; sleep 0.1; done
check "SIGTERM unmounts" sh -c "! mountpoint -q '$MNT'"
finish
