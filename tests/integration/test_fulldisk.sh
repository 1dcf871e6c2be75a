#!/usr/bin/env bash
# test_fulldisk.sh: a full disk never wedges the state directory. On a small tmpfs: the space
# reserve exists from the first mount; with the disk filled, an audit append and a mkdir fail
# and change nothing; a remount on the still full disk comes up (the reserve pays for the
# configs it renders) and refuses changes with ENOSPC; once space is freed, the next mount works
# with no manual step, changes and appends work, the reserve is back, and the chain verifies.
source "$(dirname "$0")/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root (mount -t tmpfs)"
    finish
    exit
fi
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=4m,mode=0700 tmpfs "$T/small"; then
    echo "SKIP: cannot mount a tmpfs"
    finish
    exit
fi
small_cleanup() { cfs_unmount; umount "$T/small" 2>/dev/null; rm -rf "$T"; }
trap small_cleanup EXIT
STATE=$T/small/state

cfs_mount
check "first mount: space.reserve exists before any change" test -s "$STATE/space.reserve"
for i in $(seq 12); do
    mkdir "$S/s$i"
    put "$S/s$i/upstream" "10.0.0.$i:80"
done
dd if=/dev/zero of="$T/small/filler" bs=4k 2>/dev/null || true
before=$(configs_digest)
check_fails "full: an audit append fails" "" \
    sh -c "printf '%s\n' '{\"action\":\"x\",\"status\":\"success\"}' >> '$MNT/audit/audit.log'"
check_fails "full: mkdir gives ENOSPC" "No space left on device" mkdir "$S/new"
check_eq "full: registry and configs unchanged" "$(configs_digest)" "$before"
cfs_unmount

# a remount while the disk is still full
if cfs_mount; then
    ok
    check_eq "full remount: every service is there" "$(ls "$S" | wc -l)" "12"
    check_fails "full remount: changes fail with ENOSPC" "No space left on device" \
        mkdir "$S/new"
    cfs_unmount
else
    bad "full remount: refused: $(tail -1 "$T/conduitfs.log")"
fi

# space returns: no manual step
rm -f "$T/small/filler"
if cfs_mount; then
    ok
    check "freed: mkdir works" mkdir "$S/new"
    check "freed: upstream write works" put "$S/new/upstream" "10.0.1.1:80"
    check "freed: an audit append works" sh -c \
        "printf '%s\n' '{\"action\":\"x\",\"status\":\"success\"}' >> '$MNT/audit/audit.log'"
    check "freed: the reserve is back" test -s "$STATE/space.reserve"
    check_eq "freed: every service is there" "$(ls "$S" | wc -l)" "13"
    cfs_unmount
    check "freed: verify passes" "$CONDUITFS" verify --state "$STATE"
else
    bad "freed: the mount is still refused: $(tail -1 "$T/conduitfs.log")"
fi
finish
