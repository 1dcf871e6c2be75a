#!/usr/bin/env bash
# test_parallel.sh: 4 shells each register and deregister 50 services at once, and race for
# shared names; the registry ends up matching exactly what the shells saw succeed.
source "$(dirname "$0")/lib.sh"
cfs_mount

worker() {
    local k=$1 out=$T/seen.$1
    : > "$out"
    for i in $(seq 1 50); do
        local n=w$k-s$i
        if mkdir "$S/$n" 2>/dev/null; then
            echo "$n active" >> "$out"
            printf '10.%d.0.%d:80\n' "$k" "$i" > "$S/$n/upstream" || echo "$n upstream-fail" >> "$out"
        else
            echo "$n mkdir-failed" >> "$out"
        fi
        # every worker races for the same shared name; exactly one may win each round
        if mkdir "$S/shared-$i" 2>/dev/null; then echo "shared-$i won" >> "$out"; fi
        if (( i % 2 == 0 )); then
            if rmdir "$S/$n" 2>/dev/null; then echo "$n inactive" >> "$out"; fi
        fi
    done
}
pids=()
for k in 1 2 3 4; do worker "$k" & pids+=($!); done
wait "${pids[@]}"

expected=$(cat "$T"/seen.* | awk '$2=="active"{s[$1]="active"} $2=="inactive"{s[$1]="inactive"}
    END {for (n in s) print n, s[n]}' | sort)
registry=$(jq -r '.services[] | select(.name | startswith("w")) | "\(.name) \(.status)"' \
    "$STATE/services.json" | sort)
check_eq "registry matches what the shells saw" "$registry" "$expected"
check_eq "no failures seen" "$(grep -c 'fail' "$T"/seen.* | awk -F: '{s+=$2} END {print s}')" "0"
check_eq "100 live per-shell services" "$(ls "$S" | grep -c '^w')" "100"
check_eq "each shared name won exactly once" "$(cat "$T"/seen.* | grep -c won)" "50"
check_eq "shared names registered once" "$(jq '[.services[] | select(.name |
    startswith("shared"))] | length' "$STATE/services.json")" "50"
check_eq "mount shows the registry" "$(ls "$S" | sort)" "$(jq -r '.services[] |
    select(.status != "inactive") | .name' "$STATE/services.json" | sort)"
# a pending service (the shared-* ones) has no DNS record and no route (issue 16)
active=$(jq -r '.services[] | select(.status == "active") | .name' "$STATE/services.json" | sort)
check_eq "one hosts file per active service" "$(ls "$STATE/dns/hosts.d" | sort)" "$active"
check_eq "one host list name per active service" "$(jq -r '.apps.http.servers.conduitfs
    .routes[].match[0].host // [] | .[] | rtrimstr(".internal")' "$STATE/routing/caddy.json" |
    sort)" "$active"
check_eq "upstreams as written" "$(cat "$S/w3-s7/upstream")" "10.3.0.7:80"
check_eq "audit lines: one per success" "$(grep -c service_register "$STATE/audit.log")" "250"
finish
