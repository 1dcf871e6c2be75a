#!/usr/bin/env bash
# test_persistence.sh: remount shows the same services; a corrupt registry refuses the mount;
# bad options and unusable state directories exit 2 with one line; daemon mode and unmount.
source "$(dirname "$0")/lib.sh"

cfs_mount --domains internal,test
mkdir "$S/core" "$S/web" "$S/gone"
put "$S/core/upstream" "10.0.1.10:8000"
put "$S/core/mode" "dns"
put "$S/web/domain" "www.test"
put "$S/web/monitoring" '{"type":"gpu","ssh_host":"gpu1","ssh_port":2222}'
rmdir "$S/gone"
snapshot() { for d in "$S"/*/; do for f in "$d"*; do echo "$f=$(cat "$f")"; done; done; }
before=$(snapshot)
configs=$(configs_digest)
cfs_unmount

cfs_mount --domains internal,test
check_eq "same services after remount" "$(snapshot)" "$before"
check_eq "same configs after remount" "$(configs_digest)" "$configs"
check_eq "inactive record kept" "$(jq -r '.services[] | select(.name=="gone") | .status' \
    "$STATE/services.json")" "inactive"
check_eq "one setup line only" "$(grep -c conduit_setup "$STATE/audit.log")" "1"
cfs_unmount

# stray temp files of an interrupted write are cleaned at mount
touch "$STATE/.services.json.tmp.123" "$STATE/dns/hosts.d/.web.tmp.9" "$STATE/dns/hosts.d/junk"
cfs_mount --domains internal,test
check_eq "temp files removed" "$(find "$STATE" -name '*.tmp.*' | wc -l)" "0"
check_fails "stray hosts file removed" "" test -e "$STATE/dns/hosts.d/junk"
cfs_unmount

# a corrupt registry refuses the mount and is never overwritten
cp "$STATE/services.json" "$T/good.json"
head -c 100 "$T/good.json" > "$STATE/services.json"
cp "$STATE/services.json" "$T/corrupt.json"
"$CONDUITFS" -f --state "$STATE" "$MNT" 2>"$T/out"
check_eq "corrupt registry: exit 2" "$?" "2"
check_eq "corrupt registry: one line" "$(wc -l < "$T/out")" "1"
check "corrupt registry: says why" grep -q "services.json is corrupt" "$T/out"
check "corrupt registry: not mounted" sh -c "! mountpoint -q '$MNT'"
check "corrupt registry: untouched" cmp "$STATE/services.json" "$T/corrupt.json"
check "corrupt registry: copy kept aside" sh -c "ls '$STATE'/services.json.corrupt-* >/dev/null"
echo '{"version":1,"services":[{"name":"x"}]}' > "$STATE/services.json"
"$CONDUITFS" -f --state "$STATE" "$MNT" 2>"$T/out"
check_eq "incomplete record: exit 2" "$?" "2"
cp "$T/good.json" "$STATE/services.json"
# the mount options are recorded (mount.json, issue 13 item 4): one that would invalidate a
# registered service is refused with one line naming the option and the service, and nothing
# is quarantined; without options the recorded ones apply again
rm -f "$STATE"/services.json.corrupt-*
check_jq "the options are recorded" '.options.domains == "internal,test"' "$STATE/mount.json"
timeout 20 "$CONDUITFS" -f --state "$STATE" --domains internal "$MNT" 2>"$T/out"
check_eq "suffix no longer allowed: exit 2" "$?" "2"
check_eq "suffix no longer allowed: one line" "$(wc -l < "$T/out")" "1"
check "suffix no longer allowed: names the option and the service" \
    grep -q -- "--domains internal does not cover 1 registered service: web (www.test)" "$T/out"
check_eq "suffix no longer allowed: no quarantine copy" \
    "$(find "$STATE" -name 'services.json.corrupt-*' | wc -l)" "0"
check "suffix no longer allowed: the registry is untouched" cmp "$STATE/services.json" \
    "$T/good.json"
cfs_mount
check_eq "a remount without options keeps the recorded domains" "$(cat "$S/web/domain")" \
    "www.test"
check_jq "the mount is audited with its options" 'select(.action == "conduit_mount") |
    .details.options.domains == "internal,test"' <(tail -n 1 "$STATE/audit.log")
cfs_unmount
check_jq "the unmount is audited" '.action == "conduit_unmount" and .status == "success"' \
    <(tail -n 1 "$STATE/audit.log")

# options
expect_usage() {
    local what=$1; shift
    "$CONDUITFS" "$@" 2>"$T/out" >/dev/null
    local rc=$?
    check_eq "$what: exit 2" "$rc" "2"
    check_eq "$what: one line" "$(wc -l < "$T/out")" "1"
}
expect_usage "unknown option" --bogus "$MNT"
expect_usage "no mountpoint" --state "$STATE"
expect_usage "missing value" "$MNT" --state
expect_usage "bad suffix" --state "$T/s2" --domains "in_ternal" "$MNT"
expect_usage "bad gateway ip" --state "$T/s2" --gateway-ip "gw.local" "$MNT"
touch "$T/afile"
expect_usage "state is a file" --state "$T/afile" "$MNT"
expect_usage "state under a file" --state "$T/afile/x" "$MNT"
check "--help" sh -c "'$CONDUITFS' --help | grep -q MOUNTPOINT"
check "--version" sh -c "'$CONDUITFS' --version | grep -q conduitfs"

# default state dir follows CONDUIT_APP_NAME under HOME
mkdir -p "$T/home"
HOME="$T/home" CONDUIT_APP_NAME=lab-conduit "$CONDUITFS" --no-manage "$MNT"
check_eq "daemonizes and mounts" "$?" "0"
check "mounted" mountpoint -q "$MNT"
check "default state dir" test -f "$T/home/.config/lab-conduit/services.json"
check_eq "default state dir mode" "$(stat -c %a "$T/home/.config/lab-conduit")" "700"
check "pass-through -o" sh -c "grep -q '$MNT' /proc/mounts"
check "fusermount3 -u unmounts" fusermount3 -u "$MNT"
check "not mounted" sh -c "! mountpoint -q '$MNT'"

# the default suffixes are the design's: internal, local and test (issue 13 item 9)
STATE=$T/s9 cfs_mount
mkdir "$S/dflt"
check_eq "a new service is NAME.internal" "$(cat "$S/dflt/domain")" "dflt.internal"
check "NAME.local is allowed by default" put "$S/dflt/domain" "dflt.local"
check "NAME.test is allowed by default" put "$S/dflt/domain" "dflt.test"
check_fails "another suffix is not" "Invalid argument" put "$S/dflt/domain" "dflt.lab"
cfs_unmount
check_jq "defaults are not recorded as options" '.options.domains == null' "$T/s9/mount.json"
finish
