#!/usr/bin/env bash
# test_monitor.sh: the monitor/ tree end to end: local server.json and gpu.json, the single-flight
# cache, alert audit lines, targets (mkdir, target.json, rmdir, persistence, audit), GPU and
# server probes over a real loopback sshd (pooling, host key pinning), containers.json against
# podman's Docker API, service-derived directories, metrics.prom, and unreachable targets; a
# first CPU reading covers a recent window (not the time since boot); the monitor's options
# (--alert-*, --docker-socket, --probe-ttl and their -o spellings) with the design's default
# thresholds on nvidia-smi output recorded on a real H200.
# The only fake is nvidia-smi: a script printing recorded nvidia-smi CSV.
source "$(dirname "$0")/lib.sh"
M=$MNT/monitor
TTL_WAIT=2.2
GOLDEN=$(cd "$(dirname "$0")/../unit/golden/nvidia-smi" && pwd)
ME=$(id -un)

echo "NOTE: nvidia-smi is a FAKE here (a script printing recorded nvidia-smi CSV output);"
echo "      /proc, sshd, podman's Docker API and everything in conduitfs are real."

SSHD_PID_FILE=$T/sshd/sshd.pid
PODMAN_PID=
SILENT_PID=
CTRS=()
mon_cleanup() {
    cfs_unmount
    [[ -f $SSHD_PID_FILE ]] && kill "$(cat "$SSHD_PID_FILE")" 2>/dev/null
    [[ -n $SILENT_PID ]] && kill "$SILENT_PID" 2>/dev/null
    ((${#CTRS[@]})) && podman rm -f -t 0 "${CTRS[@]}" >/dev/null 2>&1
    [[ -n $PODMAN_PID ]] && kill "$PODMAN_PID" 2>/dev/null && wait "$PODMAN_PID" 2>/dev/null
    rm -rf "$T"
}
trap mon_cleanup EXIT

# ---- the fake nvidia-smi: exact arguments or exit 2; every run logged; temperature settable --
FAKE=$T/fakebin
mkdir -p "$FAKE"
UUID0=GPU-5e3a1f2b-8c4d-4e6f-9a1b-2c3d4e5f6a7b
UUID1=GPU-0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e
cat > "$FAKE/nvidia-smi" <<EOF
#!/bin/sh
# FAKE nvidia-smi (conduitfs tests): prints recorded nvidia-smi CSV.
echo "\$1" >> $T/nvsmi.runs
[ "\$2" = "--format=csv,noheader,nounits" ] && [ \$# -eq 2 ] || exit 2
sleep 0.2
# replay a recording of tests/unit/golden/nvidia-smi/ (its name prefix in nvsmi.replay)
if [ -f $T/nvsmi.replay ]; then
    case "\$1" in
    --query-gpu=*) cat "\$(cat $T/nvsmi.replay)-gpus.csv" ;;
    *) cat "\$(cat $T/nvsmi.replay)-apps.csv" ;;
    esac
    exit 0
fi
temp=\$(cat $T/nvsmi.temp 2>/dev/null || echo 87)
case "\$1" in
--query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used,memory.total,power.draw)
    echo "0, $UUID0, NVIDIA H100 80GB HBM3, \$temp, 45, 1024, 81559, 312.45"
    echo "1, $UUID1, NVIDIA H100 80GB HBM3, [N/A], [Not Supported], 78000, 81559, [N/A]" ;;
--query-compute-apps=gpu_uuid,pid,process_name,used_memory)
    echo "$UUID0, 4242, /usr/bin/python3, 1000" ;;
*) exit 2 ;;
esac
EOF
chmod 755 "$FAKE/nvidia-smi"
runs() { wc -l < "$T/nvsmi.runs" 2>/dev/null || echo 0; }

# ---- a real sshd on a loopback port, its own host key, a generated client key ----
# HOME points away from the login user's dotfiles (a slow .bashrc would slow every probe)
SSH_OK=0
start_sshd() { sshd_start; }
if sshd_setup "PATH=$FAKE:/usr/local/bin:/usr/bin:/bin HOME=$T/sshd"; then
    start_sshd && SSH_OK=1
fi
((SSH_OK)) || echo "SKIP: no sshd could be started (not root, or openssh-server missing)"

# ---- podman's Docker-compatible API, and containers from a local busybox image ----
PODMAN_OK=0
CTR_OK=0
SOCK=$T/podman.sock
IMAGE=localhost/conduit-test-busybox
RUN=conduit-mon-$$-run
SICK=conduit-mon-$$-sick
STOPPED=conduit-mon-$$-stopped
run_ctr() {   # NAME DETACH ARGS...: try the default OCI runtime, then runc
    local name=$1 detach=$2; shift 2
    for rt in "" "--runtime runc"; do
        # shellcheck disable=SC2086
        if timeout 60 podman $rt run $detach --name "$name" --network none \
            --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@" >/dev/null 2>>"$T/podman.err"
        then
            return 0
        fi
        podman rm -f -t 0 "$name" >/dev/null 2>&1
    done
    return 1
}
if command -v podman >/dev/null && [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1
then
    if ! podman image exists "$IMAGE" 2>/dev/null; then
        mkdir -p "$T/rootfs/bin"
        cp /bin/busybox "$T/rootfs/bin/"
        for a in sh sleep true false; do ln -s busybox "$T/rootfs/bin/$a"; done
        tar -C "$T/rootfs" -cf "$T/rootfs.tar" . && podman import "$T/rootfs.tar" "$IMAGE" \
            >/dev/null 2>>"$T/podman.err"
    fi
    podman system service --time=0 "unix://$SOCK" 2>>"$T/podman.err" &
    PODMAN_PID=$!
    if wait_for 20 curl -sf --unix-socket "$SOCK" http://d/_ping; then
        PODMAN_OK=1
        CTRS=("$RUN" "$SICK" "$STOPPED")
        if run_ctr "$RUN" -d --health-cmd true --health-interval 0 "$IMAGE" sleep 1000 &&
            run_ctr "$SICK" -d --health-cmd false --health-retries 1 --health-interval 0 \
                "$IMAGE" sleep 1000 &&
            run_ctr "$STOPPED" "" "$IMAGE" true; then
            podman healthcheck run "$RUN" >/dev/null 2>&1
            podman healthcheck run "$SICK" >/dev/null 2>&1
            CTR_OK=1
        else
            echo "SKIP: podman cannot run containers here; only the API path is tested." \
                 "podman said: $(tail -3 "$T/podman.err" | tr '\n' ' ')"
        fi
    fi
fi
((PODMAN_OK)) || echo "SKIP: podman's API service is unavailable; containers.json is checked" \
                      "against a missing socket only"

export PATH="$FAKE:$PATH"
export CONDUIT_DOCKER_SOCKET=$SOCK
cfs_mount

# ---- layout ----
check_eq "monitor/ holds" "$(ls "$M" | tr '\n' ' ')" "health.json local metrics.prom "
check_eq "local/ holds" "$(ls "$M/local" | tr '\n' ' ')" "containers.json gpu.json server.json "
check_eq "probe files are read-only" "$(stat -c %a "$M/local/gpu.json")" "444"
check_eq "live files report size 0" "$(stat -c %s "$M/local/server.json")" "0"
check_fails "no writes to a probe file" "Permission denied" sh -c "echo x > '$M/local/gpu.json'"
check_fails "no new files" "not permitted" touch "$M/local/notes"
check_fails "no rmdir of local" "not permitted" rmdir "$M/local"
check_fails "no mkdir of local" "File exists" mkdir "$M/local"

# ---- health.json ----
mkdir "$S/web"
cat "$M/health.json" > "$T/health.json"
check_jq "health.json lists services" '.services | map(.name) | index("web") != null' \
    "$T/health.json"

# ---- local server.json ----
cat "$M/local/server.json" > "$T/server.json"
# the first reading after a mount has no earlier sample: it must still cover a recent window
# (two samples at least 100 ms apart), never the average since boot (usage_window_s = uptime)
check_jq "first CPU reading after the mount covers a recent window, not the time since boot" \
    '.metrics.cpu.usage_window_s | type == "number" and . >= 0.1 and . < 10' "$T/server.json"
check_jq "...shorter than the uptime" '.metrics.cpu.usage_window_s < .metrics.uptime_s' \
    "$T/server.json"
check_jq "server.json shape" '.target == "local" and .type == "server" and .error == null and
    (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")) and
    (.alerts | type == "array")' "$T/server.json"
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
check_jq "memory total from /proc/meminfo" ".metrics.memory.total_bytes == $((mem_kb * 1024))" \
    "$T/server.json"
check_jq "cpu count from /proc/stat" \
    ".metrics.cpu.count == $(grep -c '^cpu[0-9]' /proc/stat)" "$T/server.json"
check_jq "disk total from statvfs(/)" \
    ".metrics.disk.total_bytes == $(($(stat -f -c %b /) * $(stat -f -c %S /)))" "$T/server.json"
check_jq "load and uptime" '(.metrics.load["1m"] | type == "number") and .metrics.uptime_s > 0
    and .metrics.cpu.usage_pct >= 0 and .metrics.cpu.usage_pct <= 100' "$T/server.json"
cp "$M/local/server.json" "$T/server.copy"
check "cp copies a live file" jq -e '.type == "server"' "$T/server.copy"

# ---- local gpu.json with the fake nvidia-smi ----
cat "$M/local/gpu.json" > "$T/gpu.json"
check_jq "gpu.json parsed" '.error == null and .type == "gpu" and (.metrics.gpus | length) == 2'\
    "$T/gpu.json"
check_jq "gpu 0 fields" ".metrics.gpus[0] | .index == 0 and .uuid == \"$UUID0\" and
    .name == \"NVIDIA H100 80GB HBM3\" and .temperature_c == 87 and .utilization_pct == 45 and
    .vram_used_mb == 1024 and .vram_total_mb == 81559 and .power_w == 312.45" "$T/gpu.json"
check_jq "[N/A] and [Not Supported] are null" '.metrics.gpus[1] | .temperature_c == null and
    .utilization_pct == null and .power_w == null and .vram_used_mb == 78000' "$T/gpu.json"
check_jq "processes" '.metrics.gpus[0].processes == [{"pid":4242,"name":"/usr/bin/python3",
    "vram_mb":1000}] and .metrics.gpus[1].processes == []' "$T/gpu.json"
check_jq "alerts: hot gpu0, full gpu1" '[.alerts[] | [.name, .subject, .severity]] ==
    [["gpu_temperature_high","gpu0","critical"],["gpu_memory_high","gpu1","warning"]]' \
    "$T/gpu.json"

# single flight: ten concurrent readers share one probe (two nvidia-smi runs), then the TTL
sleep "$TTL_WAIT"
before=$(runs)
pids=()
for i in $(seq 10); do cat "$M/local/gpu.json" > "$T/par.$i" & pids+=($!); done
wait "${pids[@]}"
check_eq "10 concurrent reads run nvidia-smi once (2 queries)" "$(($(runs) - before))" "2"
check_eq "they all got the same document" "$(cat "$T"/par.* | sort -u | wc -l)" "1"
cat "$M/local/gpu.json" > /dev/null
check_eq "a read within the TTL is served from cache" "$(($(runs) - before))" "2"
sleep "$TTL_WAIT"
cat "$M/local/gpu.json" > /dev/null
check_eq "after the TTL it probes again" "$(($(runs) - before))" "4"
check_eq "one audit line for an alert, however many reads" "$(jq -c 'select(.action ==
    "monitor_alert" and .details.target == "local" and .details.alert.subject == "gpu0")' \
    "$STATE/audit.log" | wc -l)" "1"
check_eq "alert lines are the daemon's" "$(jq -r 'select(.action == "monitor_alert") | .user' \
    "$STATE/audit.log" | sort -u)" "system"
echo 60 > "$T/nvsmi.temp"
sleep "$TTL_WAIT"
cat "$M/local/gpu.json" > "$T/gpu.json"
check_jq "cooled down: only the memory alert" '[.alerts[].name] == ["gpu_memory_high"]' \
    "$T/gpu.json"
check "a cleared alert is audited" grep -q '"action":"monitor_alert_cleared"' "$STATE/audit.log"

# no nvidia-smi on the host
mv "$FAKE/nvidia-smi" "$FAKE/nvidia-smi.off"
sleep "$TTL_WAIT"
check "read succeeds without nvidia-smi" sh -c "cat '$M/local/gpu.json' > '$T/gpu.json'"
check_jq "error field says so" '.error == "nvidia-smi not found" and .metrics == null and
    .alerts == []' "$T/gpu.json"
mv "$FAKE/nvidia-smi.off" "$FAKE/nvidia-smi"

# ---- targets ----
G=$M/gpu-server-01
check "mkdir creates a target" mkdir "$G"
check_eq "a new target has only target.json" "$(ls "$G" | tr '\n' ' ')" "target.json "
check_eq "target.json is read-write" "$(stat -c %a "$G/target.json")" "644"
check_eq "unconfigured target.json" "$(cat "$G/target.json")" "{}"
check_fails "probe files absent until configured" "No such file" cat "$G/gpu.json"
check_fails "mkdir twice" "File exists" mkdir "$G"
check_fails "bad target name" "Invalid argument" mkdir "$M/GPU_01"
check_fails "target named like a file" "Invalid argument" mkdir "$M/x.json"
KEY=$T/sshd/client_key
good='{"ssh_host":"127.0.0.1","ssh_port":'$SSH_PORT',"ssh_user":"'$ME'","ssh_key":"'$KEY'"'
bad_values=(
    '{"ssh_host":"127.0.0.1;reboot","ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"$(id)","ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"a\nb","ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"/tmp/../etc/shadow"}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"relative/key"}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$T'"}'
    '{"ssh_host":"h","ssh_user":"Root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_user":"root;id","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_port":0,"ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_port":65536,"ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_port":"22","ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'","types":[]}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'","types":["gpu","gpu"]}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'","types":["disk"]}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'","docker_socket":"run/docker.sock"}'
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'","extra":true}'
    '{"ssh_host":"h","ssh_host":"h","ssh_user":"root","ssh_key":"'$KEY'"}'
    '{"ssh_host":"h","ssh_user":"root"}'
    'not json'
)
for v in "${bad_values[@]}"; do
    check_fails "target.json refuses $v" "Invalid argument" put "$G/target.json" "$v"
done
{ printf '%s,"types":["server"]' "$good"; head -c 5000 /dev/zero | tr '\0' ' '; echo '}'; } \
    > "$T/big"
# a missing key is refused like a forbidden one (no probing which files exist; see
# test_ssh_keys.sh for the rules)
check_fails "target.json refuses a missing key" "Permission denied" put "$G/target.json" \
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$T'/no-such-key"}'
check_fails "target.json refuses the CA's key" "Permission denied" put "$G/target.json" \
    '{"ssh_host":"h","ssh_user":"root","ssh_key":"'$STATE'/tls/ca.key"}'
check_fails "target.json over 4 KiB" "too large" put_file "$T/big" "$G/target.json"
check_eq "refused writes change nothing" "$(cat "$G/target.json")" "{}"
check "configure the target" put "$G/target.json" "$good"',"types":["gpu","server"]}'
check_eq "target.json normalized" "$(cat "$G/target.json")" \
    "${good}"',"docker_socket":null,"types":["server","gpu"]}'
check_eq "its probe files appear by types" "$(ls "$G" | tr '\n' ' ')" \
    "gpu.json server.json target.json "
lines=$(wc -l < "$STATE/audit.log")
check "the same value again" put "$G/target.json" "$good"',"types":["server","gpu"]}'
check_eq "no audit line for no change" "$(wc -l < "$STATE/audit.log")" "$lines"
check_eq "targets.json is 0600" "$(stat -c %a "$STATE/monitoring/targets.json")" "600"
check_jq "targets.json holds the target" ".targets[0].name == \"gpu-server-01\" and
    .targets[0].config.ssh_port == $SSH_PORT" "$STATE/monitoring/targets.json"
check_eq "audit: add and update by the caller" "$(jq -r 'select(.action | startswith(
    "monitor_target")) | "\(.action) \(.user) \(.details.target)"' "$STATE/audit.log" |
    sort -u | tr '\n' ',')" "monitor_target_add $ME gpu-server-01,monitor_target_update $ME \
gpu-server-01,"
check_jq "update carries old and new" 'select(.action == "monitor_target_update") |
    .details.old == null and .details.new.types == ["server","gpu"]' "$STATE/audit.log"

# ---- over SSH: a real sshd on loopback ----
if ((SSH_OK)); then
    cat "$G/gpu.json" > "$T/rgpu.json"
    check_jq "ssh gpu.json" ".error == null and .target == \"gpu-server-01\" and
        (.metrics.gpus | length) == 2 and .metrics.gpus[0].uuid == \"$UUID0\"" "$T/rgpu.json"
    cat "$G/server.json" > "$T/rserver.json"
    check_jq "ssh server.json" ".error == null and
        .metrics.memory.total_bytes == $((mem_kb * 1024)) and
        (.metrics.disk.total_bytes | type) == \"number\" and .metrics.cpu.count > 0" \
        "$T/rserver.json"
    check_jq "first CPU reading over ssh covers a recent window, not the time since boot" \
        '.metrics.cpu.usage_window_s | type == "number" and . > 0 and . < 10' \
        "$T/rserver.json"
    check "host key pinned on first use" grep -q "^\[127.0.0.1\]:$SSH_PORT ssh-ed25519 " \
        "$STATE/monitoring/known_hosts"
    check "pinning audited" grep -q '"action":"monitor_host_key_added"' "$STATE/audit.log"
    sleep "$TTL_WAIT"
    cat "$G/gpu.json" "$G/server.json" > /dev/null
    check_eq "one pooled session serves every probe" \
        "$(grep -c 'Accepted publickey' "$T/sshd/log")" "1"
fi

# ---- persistence across a remount ----
cfs_unmount
cfs_mount
check_eq "target kept across remount" "$(cat "$G/target.json")" \
    "${good}"',"docker_socket":null,"types":["server","gpu"]}'
if ((SSH_OK)); then
    check_jq "probes work after remount" '.error == null' <(cat "$G/server.json")
    # a restarted sshd with another host key: the pooled session dies, the new key is refused
    master=$(cat "$SSHD_PID_FILE")
    kill "$master" $(pgrep -P "$master")
    wait_for 5 sh -c "! kill -0 $master 2>/dev/null"
    rm -f "$T/sshd/host_key" "$T/sshd/host_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C other -f "$T/sshd/host_key"
    start_sshd
    sleep "$TTL_WAIT"
    cat "$G/gpu.json" > "$T/rgpu.json"
    check_jq "changed host key refused" \
        '.metrics == null and (.error | test("host key .*changed"))' \
        "$T/rgpu.json"
    check "the refusal is audited" grep -q '"action":"monitor_host_key_mismatch"' \
        "$STATE/audit.log"
    # the operator accepts the change by removing the host's line
    sed -i "/^\[127.0.0.1\]:$SSH_PORT /d" "$STATE/monitoring/known_hosts"
    sleep "$TTL_WAIT"
    check_jq "the new key is pinned after the line is removed" '.error == null' \
        <(cat "$G/gpu.json")
fi
check "rmdir removes the target" rmdir "$G"
check_fails "gone" "No such file" ls "$G"
check_jq "gone from targets.json" '.targets == []' "$STATE/monitoring/targets.json"
check "remove audited" grep -q '"action":"monitor_target_remove"' "$STATE/audit.log"

# ---- unreachable targets answer within the timeout, with an error field ----
check "closed-port target" mkdir "$M/down-closed"
check "configure it" put "$M/down-closed/target.json" '{"ssh_host":"127.0.0.1","ssh_port":'$(
    free_port)',"ssh_user":"root","ssh_key":"'$KEY'","types":["gpu"]}'
start=$SECONDS
check "read of a closed port succeeds" sh -c "cat '$M/down-closed/gpu.json' > '$T/down.json'"
check "...quickly" test $((SECONDS - start)) -le 3
check_jq "...with an error" '.metrics == null and (.error | test("refused"))' "$T/down.json"
SILENT_PORT=$(free_port)
"$PY3" -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(16); time.sleep(120)" &
SILENT_PID=$!
wait_for 5 py3 -c "import socket; socket.create_connection(('127.0.0.1', $SILENT_PORT))"
check "silent-listener target" mkdir "$M/down-silent"
silent='{"ssh_host":"127.0.0.1","ssh_port":'$SILENT_PORT',"ssh_user":"root",'
silent+='"ssh_key":"'$KEY'","types":["server"]}'
check "configure it" put "$M/down-silent/target.json" "$silent"
start=$SECONDS
check "read of a silent listener succeeds" sh -c "cat '$M/down-silent/server.json' > \
    '$T/silent.json'"
check "...within the timeout" test $((SECONDS - start)) -le 8
check_jq "...with a timeout error" '.metrics == null and (.error | test("timed out"))' \
    "$T/silent.json"
check "rmdir it (metrics.prom below would wait for it again)" rmdir "$M/down-silent"

# ---- containers: podman's Docker API ----
SCHEMA_DIR=$(cd "$(dirname "$0")/../../docs/schema" && pwd)
SCHEMA_CHECK=$(cd "$(dirname "$0")" && pwd)/check_schema.py
cat "$M/local/containers.json" > "$T/ctr.json"
if ((PODMAN_OK)); then
    check_jq "containers.json from the API" '.error == null and .type == "containers" and
        (.metrics.containers | type == "array")' "$T/ctr.json"
else
    check_jq "containers.json without an engine" '.metrics == null and
        (.error | test("cannot connect to the Docker API"))' "$T/ctr.json"
fi
if ((CTR_OK)); then
    check_jq "a running container" ".metrics.containers[] | select(.name == \"$RUN\") |
        .state == \"running\" and .health == \"healthy\" and (.id | test(\"^[0-9a-f]{64}$\"))
        and .image == \"$IMAGE:latest\" and (.mem_used_bytes | type == \"number\") and
        .restart_count == 0" "$T/ctr.json"
    check_jq "a stopped container" ".metrics.containers[] | select(.name == \"$STOPPED\") |
        .state == \"exited\" and .cpu_pct == null" "$T/ctr.json"
    check_jq "alerts: not running, unhealthy" "[.alerts[] | select(.subject | startswith(
        \"conduit-mon-$$\")) | [.name, .subject]] | sort == [[\"container_not_running\",
        \"$STOPPED\"], [\"container_unhealthy\", \"$SICK\"]]" "$T/ctr.json"
    sleep "$TTL_WAIT"
    cat "$M/local/containers.json" > "$T/ctr.json"
    check_jq "cpu usage from the second sample on" ".metrics.containers[] | select(.name ==
        \"$RUN\") | (.cpu_pct | type) == \"number\"" "$T/ctr.json"
    # the published JSON Schemas (docs/schema/) hold for real Docker API output
    check "containers.json (podman's API) matches its schema" py3 "$SCHEMA_CHECK" \
        "$SCHEMA_DIR" containers.json "$T/ctr.json"

    # a service naming a container gets monitor/<service>/container.json
    check "service monitoring names a container" put "$S/web/monitoring" \
        '{"type":"container","container_name":"'$RUN'"}'
    check_eq "service directory listed" "$(ls "$M" | tr '\n' ' ')" \
        "down-closed health.json local metrics.prom web "
    check_eq "it holds container.json" "$(ls "$M/web")" "container.json"
    cat "$M/web/container.json" > "$T/web.json"
    check_jq "container.json" ".error == null and .type == \"container\" and .target == \"web\"
        and .metrics.name == \"$RUN\" and .metrics.state == \"running\"" "$T/web.json"
    check "container.json matches its schema" py3 "$SCHEMA_CHECK" "$SCHEMA_DIR" container.json \
        "$T/web.json"
    check_fails "a target may not take a service's name" "File exists" mkdir "$M/web"
    check_fails "nor be removed as one" "not permitted" rmdir "$M/web"
    check "service monitoring names a missing container" put "$S/web/monitoring" \
        '{"type":"container","container_name":"conduit-mon-nonexistent"}'
    sleep "$TTL_WAIT"
    check_jq "missing container: error" \
        '.error == "container conduit-mon-nonexistent not found"' <(cat "$M/web/container.json")
    if ((SSH_OK)); then
        check "containers target over ssh" mkdir "$M/ctr-remote"
        check "configure it" put "$M/ctr-remote/target.json" \
            "$good"',"docker_socket":"'$SOCK'","types":["containers"]}'
        cat "$M/ctr-remote/containers.json" > "$T/rctr.json"
        check_jq "remote containers.json (curl over ssh)" ".error == null and
            (.metrics.containers[] | select(.name == \"$RUN\") | .state == \"running\")" \
            "$T/rctr.json"
    fi
fi

# ---- a service naming a GPU host over SSH ----
if ((SSH_OK)); then
    mkdir "$S/gpubox"
    check "service monitoring names a gpu host" put "$S/gpubox/monitoring" \
        '{"type":"gpu","ssh_host":"127.0.0.1","ssh_user":"'$ME'","ssh_port":'$SSH_PORT'}'
    check_eq "gpu host directory" "$(ls "$M/gpubox" | tr '\n' ' ')" "gpu.json server.json "
    cat "$M/gpubox/gpu.json" > "$T/gpubox.json"
    check_jq "without state/monitoring/ssh_key: an error naming it" \
        "(.error | contains(\"$STATE/monitoring/ssh_key\"))" "$T/gpubox.json"
    cp "$KEY" "$STATE/monitoring/ssh_key"
    sleep "$TTL_WAIT"
    check_jq "its gpu.json over ssh" '.error == null and (.metrics.gpus | length) == 2' \
        <(cat "$M/gpubox/gpu.json")
fi

# ---- metrics.prom ----
cat "$M/metrics.prom" > "$T/metrics.prom"
check "metrics.prom is not empty" test -s "$T/metrics.prom"
SAMPLE_RE='^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\} '
SAMPLE_RE+='-?[0-9.]+(e[+-]?[0-9]+)?$'
check_eq "every sample line is name{labels} value" \
    "$(grep -v '^#' "$T/metrics.prom" | grep -cvE "$SAMPLE_RE")" "0"
check_eq "HELP and TYPE once per family, before its samples" "$(awk '
    /^# HELP / { help[$3]++; next }
    /^# TYPE / { if (!($3 in help) || typed[$3]++) bad++; fam = $3; type[$3] = $4; next }
    { n = $0; sub(/\{.*/, "", n); if (n != fam) bad++ }
    END { for (f in help) if (help[f] != 1) bad++; print bad + 0 }' "$T/metrics.prom")" "0"
check_eq "counters end in _total" "$(awk '/^# TYPE / && $4 == "counter" && $3 !~ /_total$/' \
    "$T/metrics.prom" | wc -l)" "0"
L0="{target=\"local\",gpu=\"0\",uuid=\"$UUID0\"}"
check "gpu memory in bytes" grep -qxF "conduit_gpu_memory_used_bytes$L0 1073741824" \
    "$T/metrics.prom"
check "gpu temperature" grep -qxF "conduit_gpu_temperature_celsius$L0 60" "$T/metrics.prom"
check "utilization as a ratio" grep -qxF "conduit_gpu_utilization_ratio$L0 0.45" \
    "$T/metrics.prom"
check "a failed probe is 0" grep -qx \
    'conduit_probe_success{target="down-closed",type="gpu"} 0' "$T/metrics.prom"
check "server memory" grep -qx \
    "conduit_server_memory_total_bytes{target=\"local\"} $((mem_kb * 1024))" "$T/metrics.prom"
if ((CTR_OK)); then
    check "container restarts counter" grep -q \
        "^conduit_container_restarts_total{target=\"local\",container=\"$RUN\"} 0$" \
        "$T/metrics.prom"
fi
if py3 -c 'import prometheus_client' 2>/dev/null; then
    check "prometheus_client parses it" py3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
n = sum(len(f.samples) for f in text_string_to_metric_families(open(sys.argv[1]).read()))
sys.exit(0 if n > 10 else 1)' "$T/metrics.prom"
else
    echo "SKIP: python3-prometheus-client not installed"
fi
if command -v promtool >/dev/null; then
    check "promtool check metrics" sh -c "promtool check metrics < '$T/metrics.prom'"
fi

check "rm -r removes a target" rm -r "$M/down-closed"
check_fails "...all of it" "No such file" ls "$M/down-closed"
check_fails "rm of local's files" "not permitted" rm "$M/local/gpu.json"

check_eq "state files are 0600" "$(find "$STATE" -type f ! -perm 600 | wc -l)" "0"
check_eq "state dirs are 0700" "$(find "$STATE" -type d ! -perm 700 | wc -l)" "0"
cfs_unmount

# ---- the monitor's options: bad values refused before anything is mounted ----
for bad in "--alert-gpu-temp hot" "--alert-gpu-temp=0" "--alert-gpu-vram 101" "--alert-mem 0.5" \
    "--alert-disk 9e1" "--probe-ttl -1" "--probe-ttl 3601" "--docker-socket rel.sock" \
    "-o alert_gpu_vram=95%" "-o alert_disk=9e1" "-o probe_ttl=2s" "-o docker_socket=x"; do
    # (an empty value, -o alert_disk=, clears a recorded option: see mount.json)
    # shellcheck disable=SC2086
    out=$(timeout 20 "$CONDUITFS" -f --no-manage --state "$STATE" $bad "$MNT" 2>&1)
    rc=$?
    check_eq "refused: $bad (exit 2)" "$rc" "2"
    # one line: "conduitfs: --alert-gpu-temp: "hot" is not ... (see --help)"
    if [[ $out == "conduitfs: --"*": "* && $out != *$'\n'* ]]; then ok; else
        bad "$bad: not one 'conduitfs: --OPTION: reason' line: $out"; fi
done
check "nothing was mounted" sh -c "! mountpoint -q '$MNT'"

# ---- the design's thresholds (GPU 85 C, VRAM 90 %) on output recorded on a real H200 ----
echo "$GOLDEN/h200-vramfull" > "$T/nvsmi.replay"
cfs_mount
cat "$M/local/gpu.json" > "$T/h200.json"
check_jq "recorded H200 at 92 % VRAM, 57 C: gpu_memory_high at the default 90 %" \
    '.error == null and [.alerts[] | [.name, .subject, .value, .threshold]] ==
    [["gpu_memory_high", "gpu0", 92.02, 90]]' "$T/h200.json"
cat "$M/local/server.json" > "$T/server.json"
check_jq "first CPU reading after a remount: a recent window" \
    '.metrics.cpu.usage_window_s | type == "number" and . < 10' "$T/server.json"
echo "$GOLDEN/h200-busy" > "$T/nvsmi.replay"
sleep "$TTL_WAIT"
check_jq "recorded H200 at 79 % VRAM, 60 C: no alert" \
    '.error == null and .metrics.gpus[0].temperature_c == 60 and .alerts == []' \
    <(cat "$M/local/gpu.json")
cfs_unmount

# ---- each threshold is an option; -o spellings as fstab gives them; the option's socket wins
# over CONDUIT_DOCKER_SOCKET; --probe-ttl 0 shares a result with no later reader ----
cfs_mount --alert-gpu-vram 95 -o alert_gpu_temp=50,alert_mem=1,probe_ttl=0 \
    --alert-disk=1 --docker-socket "$T/option.sock"
cat "$M/local/gpu.json" > "$T/h200.json"
check_jq "busy H200 (60 C) with -o alert_gpu_temp=50: gpu_temperature_high" \
    '[.alerts[] | [.name, .subject, .value, .threshold]] ==
    [["gpu_temperature_high", "gpu0", 60, 50]]' "$T/h200.json"
echo "$GOLDEN/h200-vramfull" > "$T/nvsmi.replay"
before=$(runs)
cat "$M/local/gpu.json" > "$T/h200.json"
check_jq "92 % VRAM with --alert-gpu-vram 95: no memory alert (57 C still over 50)" \
    '[.alerts[].name] == ["gpu_temperature_high"]' "$T/h200.json"
cat "$M/local/gpu.json" > /dev/null
check_eq "--probe-ttl 0: the next read probes again" "$(($(runs) - before))" "4"
cat "$M/local/server.json" > "$T/server.json"
check_jq "-o alert_mem=1: memory_high at 1 %" \
    'any(.alerts[]; .name == "memory_high" and .threshold == 1)' "$T/server.json"
check_jq "--alert-disk=1: disk_high at 1 % (when / is 1 % used)" \
    '(.metrics.disk.used_pct < 1) or any(.alerts[]; .name == "disk_high" and .threshold == 1)' \
    "$T/server.json"
check_jq "--docker-socket wins over CONDUIT_DOCKER_SOCKET" \
    ".error == \"cannot connect to the Docker API at $T/option.sock\"" \
    <(cat "$M/local/containers.json")
check "the alert audit line carries the option's threshold" sh -c "jq -c 'select(.action ==
    \"monitor_alert\" and .details.alert.name == \"gpu_temperature_high\" and
    .details.alert.threshold == 50)' '$STATE/audit.log' | grep -q ."
cfs_unmount
finish
