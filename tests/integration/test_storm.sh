#!/usr/bin/env bash
# test_storm.sh: 8 shells for STORM_SECONDS (default 16) mix registrations, deregistrations,
# writes of every attribute, resets, certificate rotations, audit appends and monitor reads on
# one mount. Each shell owns its service names and logs every operation that succeeded, so the
# end state is known: services.json must equal the replay of those logs (last write wins), the
# mount must show exactly services.json, the audit chain must verify, every active domain must
# have its leaf (a pending one has none), and the proxy config and hosts.d must be what an
# independent re-rendering (render_check.py) derives from services.json. Then a short managed
# storm with real dnsmasq and Caddy: every active domain answers DNS, no pending one does, and
# Caddy serves every active one. Last, traffic during a registration storm: Debian's own curl
# against a service that stays, over HTTP/1.1 and HTTP/2, while one shell registers and
# deregisters services (section 3).
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
STORM_SECONDS=${STORM_SECONDS:-16}
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

# ---- one shell ----
# logged LINE COMMAND...: run COMMAND, its output and errors unseen; append LINE to the calling
# worker's $log when it succeeds, "FAIL LINE" when it does not.
logged() {
    local line=$1
    shift
    if "$@" >/dev/null 2>&1; then echo "$line" >> "$log"; else echo "FAIL $line" >> "$log"; fi
}

# append_line FILE TEXT: TEXT and a newline appended to FILE with one write.
append_line() { printf '%s\n' "$2" >> "$1"; }

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
            logged "set $n $attr $v" put "$S/$n/$attr" "$v" ;;
        14|15)
            attr=$(printf '%s\n' upstream domain health_check mode monitoring |
                   sed -n "$((RANDOM % 5 + 1))p")
            # a reset is a write of the default (rm of an attribute changes nothing)
            case $attr in
            upstream) v= ;; domain) v=$n.internal ;; health_check) v=/health ;;
            mode) v=proxy ;; monitoring) v={} ;;
            esac
            logged "reset $n $attr" put "$S/$n/$attr" "$v" ;;
        16|17)
            d=$(cat "$S/$n/domain" 2>/dev/null)
            if rm "$MNT/ca/certs/$d.pem" 2>/dev/null; then
                echo "rot $n" >> "$log"
            elif [[ -z $(cat "$S/$n/upstream" 2>/dev/null) ]]; then
                :                               # pending: it has no leaf to rotate
            else
                echo "FAIL rot $n $d" >> "$log"
            fi ;;
        18|19)
            ((AUDIT_APPEND)) || continue
            logged append append_line "$MNT/audit/audit.log" \
                '{"action":"storm","status":"success","message":"'"$n"'"}' ;;
        *)
            ((${#MON_FILES[@]})) || continue
            v=${MON_FILES[$((RANDOM % ${#MON_FILES[@]}))]}
            logged "read $v" cat "$MNT/monitor/$v" ;;
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
    check_eq "$v: every active domain has its leaf, and only those (a pending one has none)" \
        "$(ls "$MNT/ca/certs" | grep '\.pem$' | sed 's/\.pem$//' | sort | tr '\n' ' ')" \
        "$(jq -r '.services[] | select(.status == "active") | .domain' "$STATE/services.json" |
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

# Every active domain answers DNS (proxy: the gateway; dns mode: the upstream) and a pending one
# does not (it has no record, route or leaf until it has an upstream), and Caddy serves every
# active proxy-mode route: 200 from the upstream.
dns_bad=0; https_bad=0; served=0
while IFS=$'\t' read -r name domain status mode upstream; do
    want_ip=127.0.0.1
    if [[ $status == active && $mode == dns ]]; then
        want_ip=${upstream#*://}; want_ip=${want_ip%:*}
    fi
    [[ $status == pending ]] && want_ip=
    if ! wait_for 5 sh -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short +time=1 +tries=1 \
            $domain)\" = \"$want_ip\" ]"; then
        dns_bad=$((dns_bad + 1)); echo "DNS: $domain does not answer '$want_ip'" >&2
    fi
    [[ $status == pending || $mode == dns ]] && continue
    want_code=200
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
check_eq "managed: every active domain answers DNS, no pending one does" "$dns_bad" "0"
check_eq "managed: Caddy serves every active route (200)" "$https_bad" "0"
check_eq "managed: no proxy_reload failure" \
    "$(grep -c '"action":"proxy_reload","status":"failure"' "$STATE/audit.log")" "0"

# ---- 3. traffic during a registration storm ----
echo "time: $SECONDS s before the traffic storm"
# One shell registers a service (mkdir + upstream), and deregisters it, over and over (at least
# TRAFFIC_CYCLES times), while two clients run Debian 12's own curl (7.88) against steady, a
# service that stays, until each has made TRAFFIC_REQUESTS: one request per curl run, each on a
# new connection, as a script's curl does (TRAFFIC_BATCH=N: N per run, on one connection). Over
# HTTP/1.1 no request may fail. Over HTTP/2 the only failures allowed are refusals by GOAWAY with
# last_stream=0: the proxy processed none of that connection's streams, so RFC 9113 (6.8) lets a
# client retry them, but curl 7.88 does not. They are counted from curl's own trace ("GOAWAY,
# error=0, last_stream=0"), printed, and must stay below the number of proxy reloads during the
# storm (Caddy's log: one "admin endpoint started" line per real reload). And a cycle reloads
# the proxy at most twice: registering a service that is still pending changes nothing it serves.
TRAFFIC_CYCLES=${TRAFFIC_CYCLES:-30}
TRAFFIC_REQUESTS=${TRAFFIC_REQUESTS:-300}
TRAFFIC_BATCH=${TRAFFIC_BATCH:-1}
CURL=/usr/bin/curl

# client NAME CURL-OPTION: curl runs against steady until TRAFFIC_REQUESTS are made and the storm
# has done its cycles. $T/traffic.NAME: one line per request, "HTTP_CODE EXIT_CODE ERROR";
# $T/traffic.NAME.K: the trace (-v) of run K; its failures in $T/traffic.NAME.fails.K.
client() {
    local name=$1 opt=$2 k=0 urls=() i
    for ((i = 0; i < TRAFFIC_BATCH; i++)); do
        urls+=(-o /dev/null "https://steady.internal:$HTTPS_PORT/")
    done
    : > "$T/traffic.$name"
    while :; do
        k=$((k + 1))
        "$CURL" -sv "$opt" --max-time 10 --cacert "$MNT/ca/ca.crt" \
            --resolve "steady.internal:$HTTPS_PORT:127.0.0.1" \
            -w '%{http_code} %{exitcode} %{errormsg}\n' "${urls[@]}" \
            > "$T/traffic.$name.out" 2> "$T/traffic.$name.$k" || true
        cat "$T/traffic.$name.out" >> "$T/traffic.$name"
        grep -cv '^200 0 ' "$T/traffic.$name.out" > "$T/traffic.$name.fails.$k" || true
        if (($(wc -l < "$T/traffic.$name") >= TRAFFIC_REQUESTS)) &&
           (($(wc -l < "$T/traffic.cycles") >= TRAFFIC_CYCLES)); then
            break
        fi
    done
    touch "$T/traffic.$name.done"
}

# burst: register and deregister burst-K until the cycles are done and both clients are.
burst() {
    local k=0 n
    while :; do
        k=$((k + 1))
        n=burst-$k
        mkdir "$S/$n" && put "$S/$n/upstream" "127.0.0.1:$UP_PORT" && rmdir "$S/$n" ||
            echo "FAIL cycle $k" >> "$T/traffic.cycles"
        echo "cycle $k" >> "$T/traffic.cycles"
        ((k >= TRAFFIC_CYCLES)) && [[ -f $T/traffic.h1.done && -f $T/traffic.h2.done ]] && break
    done
}

steady_answers() {
    [[ "$("$CURL" -s --max-time 2 --cacert "$MNT/ca/ca.crt" \
        --resolve "steady.internal:$HTTPS_PORT:127.0.0.1" \
        "https://steady.internal:$HTTPS_PORT/")" == "hello from storm" ]]
}
mkdir "$S/steady" && put "$S/steady/upstream" "127.0.0.1:$UP_PORT"
check "traffic: steady answers before the storm" wait_for 10 steady_answers
CADDY_LOG=$STATE/log/caddy.log
log_off=$(stat -c %s "$CADDY_LOG" 2>/dev/null || echo 0)
: > "$T/traffic.cycles"
rm -f "$T"/traffic.h?.*
burst & burst_pid=$!
client h1 --http1.1 & h1_pid=$!
client h2 --http2 & h2_pid=$!
wait "$burst_pid" "$h1_pid" "$h2_pid"
echo "time: $SECONDS s after the traffic storm"
reloads=$(tail -c +"$((log_off + 1))" "$CADDY_LOG" | grep -c '"msg":"admin endpoint started"' ||
    true)
cycles=$(grep -c '^cycle' "$T/traffic.cycles")
h1_total=$(wc -l < "$T/traffic.h1")
h1_failed=$(grep -cv '^200 0 ' "$T/traffic.h1" || true)
# HTTP/2: a run's failures are refusals by GOAWAY last_stream=0 up to the number of such GOAWAYs
# in its trace; any beyond are failures
h2_total=$(wc -l < "$T/traffic.h2")
h2_goaway=0; h2_failed=0
for f in "$T"/traffic.h2.fails.*; do
    k=${f##*.}
    nf=$(cat "$f")
    ng=$(grep -c 'GOAWAY, error=0, last_stream=0$' "$T/traffic.h2.$k" || true)
    ((ng > nf)) && ng=$nf
    h2_goaway=$((h2_goaway + ng))
    h2_failed=$((h2_failed + nf - ng))
    if ((nf > ng)) && [[ -z ${h2_shown:-} ]]; then    # what curl saw, for the log
        h2_shown=1
        echo "traffic: HTTP/2 run $k, $nf failed; its trace says:" >&2
        grep -E 'GOAWAY|REFUSED|framing|not closed|HTTP/2 stream|Connection died|Connected to' \
            "$T/traffic.h2.$k" | sort | uniq -c | head -12 >&2
    fi
done
echo "traffic: $cycles registrations and deregistrations, $reloads proxy reloads during the storm"
echo "traffic: HTTP/1.1: $h1_total requests, $h1_failed failed" \
    "$(grep -v '^200 0 ' "$T/traffic.h1" | sort | uniq -c | head -3 | tr -s ' \n' ' ')"
echo "traffic: HTTP/2: $h2_total requests, $h2_goaway refused by GOAWAY last_stream=0," \
    "$h2_failed other failures $(grep -v '^200 0 ' "$T/traffic.h2" | sort | uniq -c | head -3 |
    tr -s ' \n' ' ')"
check_eq "traffic: every cycle of the storm succeeded" \
    "$(grep '^FAIL' "$T/traffic.cycles" | head -3)" ""
check "traffic: at least $TRAFFIC_CYCLES registrations and deregistrations" \
    test "$cycles" -ge "$TRAFFIC_CYCLES"
check "traffic: HTTP/1.1: at least $TRAFFIC_REQUESTS requests" \
    test "$h1_total" -ge "$TRAFFIC_REQUESTS"
check_eq "traffic: HTTP/1.1: no request failed" "$h1_failed" "0"
check "traffic: HTTP/2: at least $TRAFFIC_REQUESTS requests" \
    test "$h2_total" -ge "$TRAFFIC_REQUESTS"
check_eq "traffic: HTTP/2: no request failed but GOAWAY last_stream=0 refusals" "$h2_failed" "0"
check "traffic: HTTP/2: GOAWAY refusals ($h2_goaway) fewer than the reloads ($reloads)" \
    test "$h2_goaway" -lt "$((reloads > 0 ? reloads : 1))"
# a cycle changes what the proxy serves twice (the upstream write routes the name, the rmdir
# drops it); the mkdir of a still pending service has no route, and reloads nothing
check "traffic: at most 2 proxy reloads per cycle ($reloads for $cycles)" \
    test "$reloads" -le "$((2 * cycles))"
cfs_unmount
finish
