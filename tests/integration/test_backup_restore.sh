#!/usr/bin/env bash
# test_backup_restore.sh: cp -r out of the mount and back in gives the same services, for one
# service after rm -r, and for a whole services/ tree into a fresh state directory.
source "$(dirname "$0")/lib.sh"
cfs_mount --domains internal,test

mkdir "$S/core" "$S/db" "$S/idle"
put "$S/core/upstream" "https://10.0.1.10:8443"
put "$S/core/domain" "api.test"
put "$S/core/health_check" "/status?deep=1"
put "$S/core/monitoring" '{"type":"container","container_name":"core-1"}'
put "$S/db/upstream" "[fd00::5]:5432"
put "$S/db/mode" "dns"
put "$S/db/monitoring" '{"type":"server","ssh_host":"10.0.2.2","ssh_user":"ops"}'

mkdir "$T/backup"
check "cp -r one service out" cp -r "$S/core" "$T/backup/"
check_eq "backup holds the values" "$(cat "$T/backup/core/domain")" "api.test"
check "rm -r deregisters" rm -r "$S/core"
check_fails "gone" "No such file" stat "$S/core"
check "cp -r restores" cp -r "$T/backup/core" "$S/"
check "restored values equal the backup" diff -r "$T/backup/core" "$S/core"
check_eq "restored service is active" "$(jq -r '[.services[] | select(.name=="core")][-1].status' \
    "$STATE/services.json")" "active"
check_jq "route restored" '.apps.http.servers.conduitfs.routes[] | select(."@id" ==
    "cfs-pool-1-round_robin-https") | .handle[0].mappings[] | select(.input ==
    "api.test") | select(.outputs == ["10.0.1.10", "8443"])' "$STATE/routing/caddy.json"

check "cp -r the whole tree out" cp -r "$S" "$T/all"
rendered() { (cd "$STATE" && cat dns/hosts.d/* routing/caddy.json | sed "s#$STATE#STATE#g"); }
configs=$(rendered)
cfs_unmount

# restore into a brand new state directory
STATE=$T/state2
cfs_mount --domains internal,test
check "cp -r the tree into a fresh mount" cp -r "$T/all/." "$S/"
check "fresh mount equals the backup" diff -r "$T/all" "$S"
check_eq "same rendered configs" "$(rendered)" "$configs"
check "a fresh process sees the files" cat "$S/db/upstream"
finish
