#!/usr/bin/env bash
# test_storm.sh: 8 shells for STORM_SECONDS (default 20) mix registrations, deregistrations,
# writes of every attribute, resets, certificate rotations, audit appends and monitor reads on
# one mount. Each shell owns its service names and logs every operation that succeeded, so the
# end state is known: services.json must equal the replay of those logs (last write wins), the
# mount must show exactly services.json, the audit chain must verify, every live domain must have
# its leaf, and the Caddyfile and hosts.d must be what an independent re-rendering
# (render_check.py) derives from services.json. Then a short managed storm with real dnsmasq and
# Caddy: every live domain answers DNS, and Caddy serves every active one.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
STORM_SECONDS=${STORM_SECONDS:-20}
NAMES=6                     # service names per shell: s<k>-1 .. s<k>-6
DEAD_PORT=$(free_port)      # monitoring over SSH points here: connections are refused at once

UP_PID=
storm_cleanup() { [[ -n $UP_PID ]] && kill "$UP_PID" 2>/dev/null; cfs_cleanup; }
trap storm_cleanup EXIT

# ---- feature probes: audit appends and offline verify may not exist yet ----
probe_features() {
    AUDIT_APPEND=1
    if ! echo '{"action":"storm","status":"success"}' >> "$MNT/audit/audit.log" 2>"$T/err"; then
        AUDIT_APPEND=0
        echo "SKIP: audit appends not implemented ($(head -c 100 "$T/err")): none in the storm"
    fi
    MON_FILES=()
    for f in health.json metrics.prom local/server.json; do
        [[ -e $MNT/monitor/$f ]] && MON_FILES+=("$f")
    done
    ((${#MON_FILES[@]})) || echo "SKIP: no monitor files to read"
}

# check_verify: `conduitfs verify --state STATE` passes, or SKIP when it does not exist yet.
check_verify() {
    local out rc=0
    out=$("$CONDUITFS" verify --state "$STATE" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] && grep -qiE "unknown|not available|not implemented|usage" <<<"$out"; then
        echo "SKIP: conduitfs verify not available: ${out:0:100}"
    else
        check_eq "$1: conduitfs verify passes (${out:0:60})" "$rc" "0"
    fi
}

# ---- one shell ----
# worker K SECONDS UPSTREAM_MODE: random operations on its own names s<K>-<i>. Appends one line per
# successful operation to $T/ops.K ("mk N", "rm N", "set N ATTR VALUE", "reset N ATTR", "rot N",
# "append", "read F") and "FAIL ..." for an operation that should have succeeded. UPSTREAM_MODE
# "random" writes 10.x addresses; "local:PORT" writes this host's upstream on PORT.
worker() {
    local k=$1 end=$((SECONDS + $2)) upmode=$3 log=$T/ops.$1 i n op v attr d
    local -A alive=()
    : > "$log"
    while ((SECONDS < end)); do
        i=$((RANDOM % NAMES + 1))
        n=s$k-$i
        op=$((RANDOM % 24))
        if [[ -z ${alive[$n]:-} ]] && ((op > 2)); then
            op=0                                # mostly act on live names
        fi
        case $op in
        0|1)
            if mkdir "$S/$n" 2>/dev/null; then
                echo "mk $n" >> "$log"; alive[$n]=1
            elif [[ -z ${alive[$n]:-} ]]; then
                echo "FAIL mkdir $n" >> "$log"
            fi ;;
        2)
            if rmdir "$S/$n" 2>/dev/null; then
                echo "rm $n" >> "$log"; alive[$n]=
            elif [[ -n ${alive[$n]:-} ]]; then
                echo "FAIL rmdir $n" >> "$log"
            fi ;;
        3|4|5|6|7|8|9|10|11|12|13)
            case $((op % 6)) in
            0|1)
                attr=upstream
                if [[ $upmode == random ]]; then
                    v=10.$k.$i.$((RANDOM % 250 + 1)):$((RANDOM % 60000 + 1))
                    ((RANDOM % 4 == 0)) && v=https://$v
                else
                    v=127.0.0.1:${upmode#local:}
                    ((RANDOM % 3 == 0)) && v=http://$v
                fi
                ((RANDOM % 8 == 0)) && v= ;;
            2)  attr=domain
                if ((RANDOM % 2)); then v=$n-v$RANDOM.internal; else v=$n.test; fi ;;
            3)  attr=health_check; v=/h$RANDOM?k=$k ;;
            4)  attr=mode; if ((RANDOM % 3 == 0)); then v=dns; else v=proxy; fi ;;
            5)  attr=monitoring
                case $((RANDOM % 3)) in
                0) v='{}' ;;
                1) v='{"type":"container","container_name":"c'$k'-'$i'"}' ;;
                2) # reading metrics.prom probes it: loopback, a port nothing listens on
                   v='{"type":"gpu","ssh_host":"127.9.'$k'.'$i'","ssh_user":"u'$RANDOM'",'
                   v+='"ssh_port":'$DEAD_PORT'}' ;;
                esac ;;
            esac
            if printf '%s\n' "$v" 2>/dev/null > "$S/$n/$attr"; then
                echo "set $n $attr $v" >> "$log"
            else
                echo "FAIL set $n $attr $v" >> "$log"
            fi ;;
        14|15)
            attr=$(printf '%s\n' upstream domain health_check mode monitoring |
                   sed -n "$((RANDOM % 5 + 1))p")
            # a reset is a write of the default (rm of an attribute changes nothing)
            case $attr in
            upstream) v= ;; domain) v=$n.internal ;; health_check) v=/health ;;
            mode) v=proxy ;; monitoring) v={} ;;
            esac
            if printf '%s\n' "$v" 2>/dev/null > "$S/$n/$attr"; then
                echo "reset $n $attr" >> "$log"
            else
                echo "FAIL reset $n $attr" >> "$log"
            fi ;;
        16|17)
            d=$(cat "$S/$n/domain" 2>/dev/null)
            if rm "$MNT/ca/certs/$d.pem" 2>/dev/null; then
                echo "rot $n" >> "$log"
            else
                echo "FAIL rot $n $d" >> "$log"
            fi ;;
        18|19)
            ((AUDIT_APPEND)) || continue
            if echo '{"action":"storm","status":"success","message":"'"$n"'"}' \
                    >> "$MNT/audit/audit.log" 2>/dev/null; then
                echo "append" >> "$log"
            else
                echo "FAIL append" >> "$log"
            fi ;;
        *)
            ((${#MON_FILES[@]})) || continue
            v=${MON_FILES[$((RANDOM % ${#MON_FILES[@]}))]}
            if cat "$MNT/monitor/$v" > /dev/null 2>&1; then
                echo "read $v" >> "$log"
            else
                echo "FAIL read $v" >> "$log"
            fi ;;
        esac
    done
}

# storm SHELLS SECONDS UPSTREAM_MODE: run the shells in parallel and wait for all of them.
storm() {
    local pids=() k
    rm -f "$T"/ops.*
    for k in $(seq 1 "$1"); do worker "$k" "$2" "$3" & pids+=($!); done
    wait "${pids[@]}"
}

# Replay the logs into the expected live registry and compare it with services.json and with
# the mount. Prints one line per difference; nothing when they agree.
compare_state() {
    py3 - "$T" "$STATE/services.json" "$S" <<'EOF'
import glob, json, os, sys
t, reg_path, mnt = sys.argv[1:4]
defaults = lambda n: {"upstream": "", "domain": n + ".internal", "health_check": "/health",
                      "mode": "proxy", "monitoring": "{}"}
want = {}
for path in sorted(glob.glob(os.path.join(t, "ops.*"))):
    for line in open(path):
        w = line.rstrip("\n").split(" ", 3)
        if w[0] == "mk":
            want[w[1]] = defaults(w[1])
        elif w[0] == "rm":
            want.pop(w[1], None)
        elif w[0] == "set":
            want[w[1]][w[2]] = w[3] if len(w) > 3 else ""
        elif w[0] == "reset":
            want[w[1]][w[2]] = defaults(w[1])[w[2]]
reg = json.load(open(reg_path))
got = {}
for s in reg["services"]:
    if s["status"] == "inactive":
        continue
    if s["name"] in got:
        print("services.json: %s live twice" % s["name"])
    rec = {a: s[a] for a in ("upstream", "domain", "health_check", "mode")}
    rec["monitoring"] = json.dumps(s["monitoring"], separators=(",", ":"))
    got[s["name"]] = rec
    st = "active" if s["upstream"] else "pending"
    if s["status"] != st:
        print("services.json: %s is %s with upstream %r" % (s["name"], s["status"], s["upstream"]))
for n in sorted(set(want) | set(got)):
    if n not in got:
        print("registry lost %s (its mkdir succeeded)" % n)
    elif n not in want:
        print("registry has %s live, but its rmdir succeeded or no mkdir did" % n)
    elif want[n] != got[n]:
        for a in want[n]:
            if want[n][a] != got[n][a]:
                print("%s/%s: registry %r, last successful write %r" % (n, a, got[n][a],
                                                                        want[n][a]))
shown = sorted(os.listdir(mnt))
if shown != sorted(got):
    print("mount shows %s, registry %s" % (shown, sorted(got)))
for n in got:
    for a, v in got[n].items():
        try:
            text = open(os.path.join(mnt, n, a)).read()
        except OSError as e:
            print("mount: %s/%s: %s" % (n, a, e))
            continue
        if text != v + "\n":
            print("mount: %s/%s reads %r, registry %r" % (n, a, text, v))
EOF
}

# The post-storm checks shared by both variants; $1 names the variant.
check_after_storm() {
    local v=$1 ops diff
    ops=$(cat "$T"/ops.* | wc -l)
    echo "$v: $ops successful operations ($(cat "$T"/ops.* | cut -d' ' -f1 | sort | uniq -c |
        awk '{printf "%s %s, ", $2, $1}'))"
    check "$v: every shell did something" test "$ops" -gt 50
    check_eq "$v: no operation failed that should have succeeded" \
        "$(cat "$T"/ops.* | grep '^FAIL' | head -5)" ""
    check "$v: services.json parses" jq -e '.version == 1' "$STATE/services.json"
    diff=$(compare_state)
    check_eq "$v: registry = replay of the successes = the mount" "$diff" ""
    check "$v: rendered configs match an independent rendering" \
        py3 "$HERE/render_check.py" "$STATE" --https-port "${HTTPS_PORT:-8443}"
    py3 "$HERE/render_check.py" "$STATE" --https-port "${HTTPS_PORT:-8443}" | tail -1
    check_eq "$v: every live domain has its leaf, and only those" \
        "$(ls "$MNT/ca/certs" | grep '\.pem$' | sed 's/\.pem$//' | sort | tr '\n' ' ')" \
        "$(jq -r '.services[] | select(.status != "inactive") | .domain' "$STATE/services.json" |
           sort | tr '\n' ' ')"
    check_eq "$v: one service_register line per successful mkdir" \
        "$(grep -c '"action":"service_register"' "$STATE/audit.log")" \
        "$(cat "$T"/ops.* | grep -c '^mk ')"
    check_eq "$v: one service_deregister line per successful rmdir" \
        "$(grep -c '"action":"service_deregister"' "$STATE/audit.log")" \
        "$(cat "$T"/ops.* | grep -c '^rm ')"
    if ((AUDIT_APPEND)); then
        check_eq "$v: one audit line per successful append" \
            "$(grep -c '"action":"storm"' "$STATE/audit.log")" \
            "$(( $(cat "$T"/ops.* | grep -c '^append') + 1 ))"
    fi
    check_eq "$v: no temp file left" "$(find "$STATE" -name '.*.tmp.*' | head -3)" ""
    check_verify "$v"
}

# ---- 1. config-only storm: 8 shells ----
cfs_mount --domains internal,test
probe_features
storm 8 "$STORM_SECONDS" random
check_after_storm "config-only"
cfs_unmount
check "config-only: remount after the storm" cfs_mount --domains internal,test
check_eq "config-only: the remount shows the same registry" "$(compare_state)" ""
cfs_unmount

# ---- 2. managed storm: 4 shells with real dnsmasq and Caddy, upstreams on a local server ----
if ! command -v caddy >/dev/null || ! command -v dnsmasq >/dev/null || ! command -v dig >/dev/null
then
    echo "SKIP: managed storm needs caddy, dnsmasq and dig"
    finish
    exit
fi
STATE=$T/state-managed
UP_PORT=$(free_port)
"$PY3" "$HERE/upstream.py" "$UP_PORT" storm >/dev/null 2>&1 &    # not py3: $! must be python
UP_PID=$!
cfs_mount_managed --domains internal,test
probe_features
storm 4 "${MANAGED_STORM_SECONDS:-6}" "local:$UP_PORT"
check_after_storm "managed"

# Every live domain answers DNS (proxy or pending: the gateway; dns mode: the upstream), and
# Caddy serves every route: 200 from the upstream when active, 503 while pending.
dns_bad=0; https_bad=0; served=0
while IFS=$'\t' read -r name domain status mode upstream; do
    want_ip=127.0.0.1
    if [[ $status == active && $mode == dns ]]; then
        want_ip=${upstream#*://}; want_ip=${want_ip%:*}
    fi
    if ! wait_for 5 sh -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short +time=1 +tries=1 \
            $domain)\" = $want_ip ]"; then
        dns_bad=$((dns_bad + 1)); echo "DNS: $domain does not answer $want_ip" >&2
    fi
    [[ $status == active && $mode == dns ]] && continue
    want_code=503; [[ $status == active ]] && want_code=200
    code=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 5 --cacert "$MNT/ca/ca.crt" \
        --resolve "$domain:$HTTPS_PORT:127.0.0.1" "https://$domain:$HTTPS_PORT/" || true)
    if [[ $code != "$want_code" ]] ||
       { [[ $status == active ]] && [[ "$(cat "$T/body")" != "hello from storm" ]]; }; then
        https_bad=$((https_bad + 1)); echo "HTTPS: $domain ($status) gave $code" >&2
    else
        served=$((served + 1))
    fi
done < <(jq -r '.services[] | select(.status != "inactive") |
    [.name, .domain, .status, .mode, .upstream] | @tsv' "$STATE/services.json")
echo "managed: Caddy served $served routes"
check_eq "managed: every live domain answers DNS" "$dns_bad" "0"
check_eq "managed: Caddy serves every route (200 active, 503 pending)" "$https_bad" "0"
check_eq "managed: no proxy_reload failure" \
    "$(grep -c '"action":"proxy_reload","status":"failure"' "$STATE/audit.log")" "0"
cfs_unmount
finish
