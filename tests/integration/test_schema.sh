#!/usr/bin/env bash
# test_schema.sh: every JSON document the mount serves validates against its published JSON
# Schema (2020-12) in docs/schema/, read from a live managed mount: monitor/T/server.json,
# gpu.json, containers.json, container.json, target.json, monitor/health.json, ca/ca.json, a
# leaf's ca/certs/DOMAIN.json, audit/verify and audit/head; and a document that breaks its schema
# is caught (the check can fail). containers.json against a real Docker API is validated in
# test_monitor.sh. Needs python3-jsonschema (scripts/setup.sh --test).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMA=$(cd "$HERE/../../docs/schema" && pwd)
py3 -c 'import jsonschema' 2>/dev/null || { echo "missing python3-jsonschema"; exit 1; }
need_tools caddy dnsmasq curl ssh-keygen jq

echo "NOTE: nvidia-smi is a FAKE here (a script printing two GPUs in nvidia-smi's CSV form)"
FAKE=$T/fakebin
mkdir -p "$FAKE"
cat > "$FAKE/nvidia-smi" <<'EOF2'
#!/bin/sh
# FAKE nvidia-smi for test_schema.sh
case "$1" in
--query-gpu=*)
    echo "0, GPU-00000000-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, 91, 7, 80000, 81559, 120.5"
    echo "1, GPU-00000000-1111-2222-3333-555555555555, NVIDIA H100 80GB HBM3, [N/A], [Not Supported], 10, 81559, [N/A]" ;;
--query-compute-apps=*) echo "GPU-00000000-1111-2222-3333-444444444444, 4242, /usr/bin/python3, 1000" ;;
*) exit 2 ;;
esac
EOF2
chmod 755 "$FAKE/nvidia-smi"

UP_PORT=$(free_port)
"$PY3" "$HERE/upstream.py" "$UP_PORT" core >/dev/null 2>&1 &
UP_PID=$!
schema_cleanup() { kill "$UP_PID" 2>/dev/null; cfs_cleanup; }
trap schema_cleanup EXIT

PATH="$FAKE:$PATH" CONDUIT_DOCKER_SOCKET=$T/no-docker.sock cfs_mount_managed \
    --health-interval 1 --health-timeout 1

# valid SCHEMA FILE...: each file (read once into $T, as a reader sees it) validates.
valid() {
    local schema=$1; shift
    local i=0 copies=()
    for f in "$@"; do
        i=$((i + 1))
        cat "$f" > "$T/doc.$i.json" 2>"$T/err" || { bad "read $f: $(cat "$T/err")"; return; }
        copies+=("$T/doc.$i.json")
    done
    if py3 "$HERE/check_schema.py" "$SCHEMA" "$schema" "${copies[@]}" >"$T/schema.out"; then
        ok
    else
        bad "$schema: $* : $(grep FAIL "$T/schema.out" | head -3)"
    fi
}

mkdir "$S/core" "$S/db"
put "$S/core/upstream" "127.0.0.1:$UP_PORT"
put "$S/db/upstream" "127.0.0.1:9"                 # nothing listens: unhealthy
put "$S/db/monitoring" '{"type":"container","container_name":"db"}'
# a target that is configured but never probed here (its key is the writer's own file)
ssh-keygen -q -t ed25519 -N '' -C schema -f "$T/client_key"
mkdir "$MNT/monitor/remote"
put "$MNT/monitor/remote/target.json" "{\"ssh_host\":\"127.0.0.1\",\"ssh_port\":9,\
\"ssh_user\":\"root\",\"ssh_key\":\"$T/client_key\",\"types\":[\"server\"]}"
wait_for 10 grep -q '"state":"unhealthy"' "$MNT/monitor/health.json" ||
    bad "db never became unhealthy"
wait_for 10 grep -q '"state":"healthy"' "$MNT/monitor/health.json" ||
    bad "core never became healthy"

M=$MNT/monitor
valid server.json "$M/local/server.json"
valid gpu.json "$M/local/gpu.json"
check "gpu.json has an alert to validate" grep -q '"alerts":\[{' "$M/local/gpu.json"
valid containers.json "$M/local/containers.json"      # no Docker API here: the error form
valid container.json "$M/db/container.json"
valid target.json "$M/remote/target.json"
valid health.json "$M/health.json"
valid ca.json "$MNT/ca/ca.json"
valid leaf.json "$MNT"/ca/certs/*.json
valid verify.json "$MNT/audit/verify"
valid head.json "$MNT/audit/head"

# The checks can fail: a document that breaks its schema is reported.
cat "$M/local/server.json" | sed 's/"type":"server"/"type":"gpu"/' > "$T/broken.json"
if py3 "$HERE/check_schema.py" "$SCHEMA" server.json "$T/broken.json" >/dev/null; then
    bad "a server.json with the wrong type passed its schema"
else
    ok
fi
jq '.entries = "many"' "$MNT/audit/verify" > "$T/broken.json"
if py3 "$HERE/check_schema.py" "$SCHEMA" verify.json "$T/broken.json" >/dev/null; then
    bad "an audit/verify report with a string count passed its schema"
else
    ok
fi
finish
