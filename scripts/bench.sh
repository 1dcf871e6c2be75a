#!/usr/bin/env bash
# bench.sh: the benchmark table. One command, one table: every row is measured in the same run,
# the rows take turns in every round (in an order rotated each round), so their ratios hold on
# a noisy machine; each row shows the median and the p99 over its runs. Rows (docs/benchmarks.md
# says what each one measures):
#   - register-to-routable (mkdir + upstream write until the first HTTPS 200 through Caddy) and
#     deregister-to-NXDOMAIN (rmdir until our dnsmasq says NXDOMAIN), at 10, 100, 1000 services,
#     with when the syscalls returned: one managed mount per size (real dnsmasq and Caddy on free
#     loopback ports), side by side; and how many proxy reloads each registration and
#     deregistration caused (Caddy's log: one "admin endpoint started" line per real reload)
#   - the proxy reload itself at each size: one forced POST /load of that mount's current
#     config (routing/caddy.json, or the Caddyfile before it) through Caddy's admin socket
#   - building BUILD (default 1000) services through a fresh managed mount with BUILD_WRITERS
#     (default 16) parallel writers, once, before the rounds
#   - reads of monitor/local/server.json and gpu.json (a fake nvidia-smi printing recorded CSV),
#     uncached (the first read after the 2 s probe cache expired) and cached; the fake's two runs
#     spawned directly, for what the probe adds
#   - remote gpu.json over the pooled SSH session to an sshd started here (loopback, throwaway
#     keys), next to a fresh `ssh` CLI run of the same two nvidia-smi queries
#   - sealed audit appends per second, 1 and 8 writers, next to raw fsync'd appends on the disk
#   - stat and ls -l of services/ at the largest size, next to the same tree on tmpfs
#   - resident memory (VmRSS) of conduitfs at every size
#   - reads of services/x/upstream while HOSTILE readers of monitor/metrics.prom wait on a
#     target that accepts TCP and never answers, next to the same reads without them
#
# usage: scripts/bench.sh [path/to/conduitfs]     (default build/conduitfs, built if missing)
# env:   ROUNDS (default 10) measured rounds, after one warm-up round
#        SIZES (default "10 100 1000") registered services of the managed mounts
#        APPENDS (default 200) audit appends per run, over all its writers
#        REGISTER_MAX (default 100): sizes up to this are registered through the mount; larger
#            ones are written to services.json before the mount (registering 1000 services
#            through the mount takes tens of minutes: every commit reloads Caddy with all sites)
#        QUICK=1: ROUNDS 3, SIZES "10 100", APPENDS 100, BUILD 0, unless set
#        BUILD (default 1000; 0: skip) services of the build row, BUILD_WRITERS (default 16)
#            writers; BUILD_LIMIT (default 900) seconds after which the build is stopped and
#            the row says how far it got
#        BENCH_DIR (default /tmp): where states, mounts and the raw append file live
#        HOSTILE (default 50): the slow metrics.prom readers of the hostile-readers row
#        ONLY: measure only these units (space-separated names from UNITS, e.g.
#            ONLY="svc_hostile svc_quiet" SIZES=10 ROUNDS=3); the setup still runs
# Needs caddy, dnsmasq, python3, fusermount3; dig confirms NXDOMAIN when present; the SSH rows
# need root, sshd and ssh-keygen (skipped otherwise, and the table says so).
#
# To add a row: add a unit_NAME function that runs one measurement and prints "ROW VALUE" lines
# (seconds, per-second rates or KiB), add NAME to UNITS, and the row to ROW_ORDER and ROW_INFO.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/harness-lib.sh
source scripts/harness-lib.sh

T_START=$SECONDS
BIN=${1:-build/conduitfs}
if [[ ${QUICK:-0} == 1 ]]; then
    ROUNDS=${ROUNDS:-3}
    SIZES=${SIZES:-10 100}
    APPENDS=${APPENDS:-100}
    BUILD=${BUILD:-0}
fi
ROUNDS=${ROUNDS:-10}
SIZES=${SIZES:-10 100 1000}
APPENDS=${APPENDS:-200}
REGISTER_MAX=${REGISTER_MAX:-100}
HOSTILE=${HOSTILE:-50}
BUILD=${BUILD:-1000}
BUILD_WRITERS=${BUILD_WRITERS:-16}
BUILD_LIMIT=${BUILD_LIMIT:-900}
read -r -a SIZE_LIST <<< "$SIZES"
SMALL=${SIZE_LIST[0]}
BIG=${SIZE_LIST[${#SIZE_LIST[@]} - 1]}

PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3    # pyenv shims may hide system modules
for tool in caddy dnsmasq fusermount3 "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done
if [[ ! -x "$BIN" ]]; then
    cmake -S . -B build >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    BIN=build/conduitfs
fi
BIN=$(readlink -f "$BIN")
W=$(mktemp -d "${BENCH_DIR:-/tmp}/conduit-bench.XXXXXX")
SHM=
UP_PID=
SILENT_PID=
SSHD_PID_FILE=$W/sshd/sshd.pid
MOUNTS=()       # mount points we made, and the daemon of each
PIDS=()

unmount_one() { cfs_unmount_at "$1" "$2" 10; }   # MOUNTPOINT PID
cleanup() {
    local i
    printf '\r%*s\r' 70 '' >&2
    for i in "${!MOUNTS[@]}"; do unmount_one "${MOUNTS[$i]}" "${PIDS[$i]}"; done
    if [[ -f $SSHD_PID_FILE ]]; then kill "$(cat "$SSHD_PID_FILE")" 2>/dev/null || true; fi
    if [[ -n "$UP_PID" ]]; then kill "$UP_PID" 2>/dev/null || true; fi
    if [[ -n "$SILENT_PID" ]]; then kill "$SILENT_PID" 2>/dev/null || true; fi
    [[ -n "$SHM" ]] && rm -rf "$SHM"
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { printf '\rbench: %-62s' "$1" >&2; }
die() { printf '\rbench: %s\n' "$1" >&2; exit 1; }

free_port() {
    "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); u = socket.socket(type=socket.SOCK_DGRAM)
p = s.getsockname()[1]; u.bind(("127.0.0.1", p)); print(p)'
}

# mount_cfs MOUNTPOINT STATE [options]: mount in the background and wait until it is up (the
# CA issues every seeded leaf before that, so allow minutes); sets MOUNT_PID.
mount_cfs() {
    local mnt=$1 state=$2; shift 2
    mkdir -p "$mnt"
    "$BIN" -f --state "$state" "$@" "$mnt" 2>>"$W/conduitfs.log" &
    MOUNT_PID=$!
    MOUNTS+=("$mnt")
    PIDS+=("$MOUNT_PID")
    cfs_wait_mounted "$mnt" "$MOUNT_PID" 6000 && return 0
    cat "$W/conduitfs.log" >&2
    die "mount of $mnt failed"
}

# populate MNT COUNT PREFIX UPSTREAM [WRITERS]: register COUNT services PREFIX1..PREFIXn,
# WRITERS (default 16) at a time.
populate() {
    seq 1 "$2" | xargs -P "${5:-16}" -I{} sh -c 'mkdir "$0/services/$1{}" &&
        printf "%s\n" "$2" > "$0/services/$1{}/upstream"' "$1" "$3" "$4"
}

# ---- the measurement driver: each command prints "ROW VALUE" lines ----
cat > "$W/drive.py" <<'EOF'
import json, os, shutil, socket, ssl, struct, subprocess, sys, threading, time

def fail(msg):
    sys.exit("bench: " + msg)

def https_status(port, host, ctx):
    # TCP_NODELAY as curl sets it: without it the request waits behind the unacknowledged TLS
    # Finished for the server's delayed ACK (40 ms on Linux), which the register rows measured
    # until 2026-12-05 as about 45 ms of every "routable" time.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % host).encode())
                line = s.recv(64).split(b"\r\n")[0].split()
                return int(line[1]) if len(line) > 1 else 0
    except (OSError, ssl.SSLError, ValueError):
        return 0

def dns_rcode(port, name):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(q, ("127.0.0.1", port))
        try:
            r = s.recv(512)
        except socket.timeout:
            return -1
    return r[3] & 0xF

# Poll fn until true: every 2 ms at first, then every 1/20 of the time so far (at most 50 ms),
# so the answer is within about 5% of the truth and the polling does not load the machine.
def poll(fn, limit):
    t0 = time.monotonic()
    while not fn():
        waited = time.monotonic() - t0
        if waited > limit:
            return False
        time.sleep(min(0.05, max(0.002, waited / 20)))
    return True

def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)

def check_doc(data, path, gpus):
    try:
        doc = json.loads(data)
    except ValueError:
        fail("%s: not JSON: %r" % (path, data[:200]))
    if doc.get("error") is not None:
        fail("%s: the probe failed: %s" % (path, doc["error"]))
    if gpus and len(doc["metrics"]["gpus"]) != gpus:
        fail("%s: expected %d GPUs" % (path, gpus))
    return doc

# Real proxy reloads in Caddy's log from byte offset off on: Caddy 2.6.2 starts its admin
# endpoint again at every load that changes the config, and at nothing else (an identical one
# is skipped). Returns (count, the new offset).
def reloads(log, off):
    try:
        with open(log, "rb") as f:
            f.seek(off)
            data = f.read()
    except OSError:
        return 0, off
    end = data.rfind(b"\n") + 1
    return data[:end].count(b'"msg":"admin endpoint started"'), off + end

def log_end(log):
    try:
        return os.path.getsize(log)
    except OSError:
        return 0

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "reg":
    # reg MNT HTTPS_PORT DNS_PORT CAFILE UPSTREAM NAME SUFFIX TAG CADDY_LOG
    mnt, port, dport, ca, up, svc, suffix, tag, clog = a
    off = log_end(clog)
    port, dport = int(port), int(dport)
    ctx = ssl.create_default_context(cafile=ca)
    dom = "%s.%s" % (svc, suffix)
    d = os.path.join(mnt, "services", svc)
    t0 = time.monotonic()
    os.mkdir(d)
    with open(os.path.join(d, "upstream"), "w") as f:
        f.write(up + "\n")
    t_ack = time.monotonic() - t0
    if not poll(lambda: https_status(port, dom, ctx) == 200, 180):
        fail("%s never answered 200" % dom)
    t_reg = time.monotonic() - t0
    n_reg, off = reloads(clog, off)
    t0 = time.monotonic()
    os.rmdir(d)
    t_dack = time.monotonic() - t0
    if not poll(lambda: dns_rcode(dport, dom) == 3, 60):
        fail("%s never became NXDOMAIN" % dom)
    t_dereg = time.monotonic() - t0
    if shutil.which("dig"):
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(dport), "+tries=1", "+time=2",
                              dom, "A"], capture_output=True, text=True).stdout
        if "status: NXDOMAIN" not in out:
            fail("dig does not see NXDOMAIN for %s: %s" % (dom, out[-300:]))
    n_dereg, off = reloads(clog, off)
    print("reg_%s %.6f" % (tag, t_reg))
    print("regack_%s %.6f" % (tag, t_ack))
    print("dereg_%s %.6f" % (tag, t_dereg))
    print("deregack_%s %.6f" % (tag, t_dack))
    print("reloadsreg_%s %d" % (tag, n_reg))
    print("reloadsdereg_%s %d" % (tag, n_dereg))
elif cmd == "load":
    # load ROW SOCKET CONFIG: one POST /load of CONFIG (JSON, or a Caddyfile when its name does
    # not end in .json) on Caddy's admin socket, forced (Cache-Control: must-revalidate: Caddy
    # loads it although it is the config it runs), timed until Caddy's answer.
    row, sock, conf = a
    with open(conf, "rb") as f:
        body = f.read()
    ctype = "application/json" if conf.endswith(".json") else "text/caddyfile"
    head = ("POST /load HTTP/1.1\r\nHost: \r\nContent-Type: %s\r\n"
            "Cache-Control: must-revalidate\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (ctype, len(body))).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(600)
        s.connect(sock)
        t0 = time.perf_counter()
        s.sendall(head + body)
        resp = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            resp += b
        dt = time.perf_counter() - t0
    status = resp.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        fail("POST /load of %s: %r" % (conf, resp[:300]))
    print("%s %.9f" % (row, dt))
elif cmd == "appends":
    # appends ROW MODE PATH WRITERS TOTAL: WRITERS processes, each with its file open once,
    # append TOTAL/WRITERS lines with one write(2) each (MODE fsync: and fsync after each);
    # released together, timed until all are done. Prints the rate.
    row, mode, path, writers, total = a[0], a[1], a[2], int(a[3]), int(a[4])
    n = max(1, total // writers)
    line = '{"action":"bench","status":"success","message":"w%d-%d"}\n'
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()
    pids = []
    for k in range(writers):
        pid = os.fork()
        if pid == 0:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(ready_w, b"r")
            os.read(r, 1)
            for i in range(n):
                os.write(fd, (line % (k, i)).encode())
                if mode == "fsync":
                    os.fsync(fd)
            os._exit(0)
        pids.append(pid)
    for _ in range(writers):
        os.read(ready_r, 1)
    t0 = time.perf_counter()
    os.write(w, b"g" * writers)
    bad = 0
    for p in pids:
        bad += os.waitpid(p, 0)[1] != 0
    dt = time.perf_counter() - t0
    if bad:
        fail("%d writer(s) failed" % bad)
    print("%s %.3f" % (row, writers * n / dt))
elif cmd == "monread":
    # monread PATH STAMP GPUS ROW_UNCACHED [ROW_CACHED]: wait until the 2 s probe cache of
    # PATH has expired (STAMP holds when it was last read), time open + read to EOF + close,
    # then, with ROW_CACHED, time a second read at once (the cache's copy: same document).
    path, stamp, gpus, row_u = a[0], a[1], int(a[2]), a[3]
    try:
        with open(stamp) as f:
            last = float(f.read())
    except (OSError, ValueError):
        last = 0.0
    wait = last + 2.1 - time.time()
    if wait > 0:
        time.sleep(wait)
    t0 = time.perf_counter()
    data = read_all(path)
    t_u = time.perf_counter() - t0
    doc = check_doc(data, path, gpus)
    print("%s %.9f" % (row_u, t_u))
    if len(a) > 4:
        t0 = time.perf_counter()
        data2 = read_all(path)
        t_c = time.perf_counter() - t0
        if check_doc(data2, path, gpus)["timestamp"] != doc["timestamp"]:
            fail("%s: the second read was not served from the cache" % path)
        print("%s %.9f" % (a[4], t_c))
    with open(stamp, "w") as f:
        f.write("%.6f" % time.time())
elif cmd == "svcread":
    # svcread ROW PATH K [SLOW N STAMP]: K timed reads of PATH (open + read to EOF + close).
    # With SLOW, N threads first each start one read of SLOW (metrics.prom behind a target that
    # never answers), once its 2 s cache has expired (STAMP: when they last finished); the K
    # reads are timed while those wait. The rows use K = 1, the first read of the process on
    # both sides: a mount whose workers the slow readers hold answers that read only after the
    # first of them, and later reads at once, which a median over K would hide.
    row, path, k = a[0], a[1], int(a[2])
    threads, done = [], []
    if len(a) > 3:
        slow, n, stamp = a[3], int(a[4]), a[5]
        try:
            with open(stamp) as f:
                wait = float(f.read()) + 2.1 - time.time()
        except (OSError, ValueError):
            wait = 0
        if wait > 0:
            time.sleep(wait)
        def hostile():
            read_all(slow)
            done.append(time.monotonic())
        threads = [threading.Thread(target=hostile, daemon=True) for _ in range(n)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.5)      # let every one of them reach the daemon
    samples = []
    for _ in range(k):
        t0 = time.perf_counter()
        data = read_all(path)
        samples.append(time.perf_counter() - t0)
        if not data.strip():
            fail("%s: empty" % path)
    if threads:
        for t in threads:
            t.join()
        if min(done) - t_start < 1:
            fail("%s was not slow: does the silent target answer?" % slow)
        with open(stamp, "w") as f:
            f.write("%.6f" % time.time())
    for v in samples:
        print("%s %.9f" % (row, v))
elif cmd == "sshcli":
    # sshcli ROW KEY PORT KNOWN_HOSTS USER COMMAND: one fresh ssh CLI run, timed.
    row, key, port, known, user, remote = a
    argv = ["ssh", "-F", "/dev/null", "-i", key, "-p", port, "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + known,
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
            "%s@127.0.0.1" % user, remote]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0 or r.stdout.count(b"\n") != 3:
        fail("ssh CLI: exit %d: %r %r" % (r.returncode, r.stdout[:200], r.stderr[:200]))
    print("%s %.9f" % (row, dt))
elif cmd == "spawn":
    # spawn ROW PROGRAM ARG1 ARG2 ARG3 ARG4: PROGRAM ARG1 ARG2, then PROGRAM ARG3 ARG4, each
    # its own process with its output read, as the local GPU probe runs them; timed together.
    t0 = time.perf_counter()
    for args in (a[2:4], a[4:6]):
        r = subprocess.run([a[1]] + args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            fail("%s exited %d" % (a[1], r.returncode))
    print("%s %.9f" % (a[0], time.perf_counter() - t0))
elif cmd == "fsops":
    # fsops DIR TAG K: K timed stat(2) of DIR, then one timed `ls -l DIR`.
    d, tag, k = a[0], a[1], int(a[2])
    for _ in range(k):
        t0 = time.perf_counter()
        os.stat(d)
        print("stat_%s %.9f" % (tag, time.perf_counter() - t0))
    t0 = time.perf_counter()
    subprocess.run(["ls", "-l", d], stdout=subprocess.DEVNULL, check=True)
    print("ls_%s %.9f" % (tag, time.perf_counter() - t0))
elif cmd == "copytree":
    # copytree SRC DST: the services/ tree, file by file, with the same modes.
    src, dst = a
    os.mkdir(dst)
    for name in sorted(os.listdir(src)):
        os.mkdir(os.path.join(dst, name))
        for attr in sorted(os.listdir(os.path.join(src, name))):
            p = os.path.join(src, name, attr)
            with open(os.path.join(dst, name, attr), "wb") as f:
                f.write(read_all(p))
            os.chmod(os.path.join(dst, name, attr), os.stat(p).st_mode & 0o7777)
        os.chmod(os.path.join(dst, name), os.stat(os.path.join(src, name)).st_mode & 0o7777)
elif cmd == "seed":
    # seed COUNT PREFIX UPSTREAM SUFFIX: a services.json of COUNT active services.
    n, prefix, up, suffix = int(a[0]), a[1], a[2], a[3]
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps({"version": 1, "services": [
        {"name": "%s%d" % (prefix, i), "upstream": up,
         "domain": "%s%d.%s" % (prefix, i, suffix), "status": "active", "registered_at": ts,
         "health_check": "/health", "mode": "proxy", "monitoring": {}}
        for i in range(1, n + 1)]}, indent=2))
elif cmd == "routable":
    # routable PORT CAFILE DOMAIN LIMIT: wait until DOMAIN answers 200; 1 on timeout.
    ctx = ssl.create_default_context(cafile=a[1])
    sys.exit(0 if poll(lambda: https_status(int(a[0]), a[2], ctx) == 200, float(a[3])) else 1)
else:
    fail("drive: unknown command " + cmd)
EOF
drive() { "$PY" "$W/drive.py" "$@"; }
# reloads_in STATE: real proxy reloads in that mount's Caddy log so far (see drive.py reloads)
reloads_in() { grep -c '"msg":"admin endpoint started"' "$1/log/caddy.log" 2>/dev/null || true; }

SETUP_NOTES=()
UP_PORT=$(free_port)
"$PY" tests/integration/upstream.py "$UP_PORT" bench >/dev/null 2>&1 &
UP_PID=$!
UPSTREAM=127.0.0.1:$UP_PORT

# ---- the fake nvidia-smi: the probe's exact arguments or exit 2; output recorded from an H100
# host (two GPUs, one compute process); it returns at once, so the rows measure conduitfs's own
# cost (fork, exec, parse), not the tens to hundreds of ms a real nvidia-smi takes ----
FAKE=$W/fakebin
mkdir -p "$FAKE"
Q_GPU=--query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used,memory.total
Q_GPU+=,power.draw
Q_APPS=--query-compute-apps=gpu_uuid,pid,process_name,used_memory
FMT=--format=csv,noheader,nounits
UUID0=GPU-5e3a1f2b-8c4d-4e6f-9a1b-2c3d4e5f6a7b
UUID1=GPU-0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e
cat > "$FAKE/nvidia-smi" <<EOF
#!/bin/sh
# FAKE nvidia-smi (conduitfs bench): prints recorded nvidia-smi CSV for the probe's two queries.
[ "\$2" = "$FMT" ] && [ \$# -eq 2 ] || exit 2
case "\$1" in
$Q_GPU)
    echo "0, $UUID0, NVIDIA H100 80GB HBM3, 87, 45, 1024, 81559, 312.45"
    echo "1, $UUID1, NVIDIA H100 80GB HBM3, [N/A], [Not Supported], 78000, 81559, [N/A]" ;;
$Q_APPS)
    echo "$UUID0, 4242, /usr/bin/python3, 1000" ;;
*) exit 2 ;;
esac
EOF
chmod 755 "$FAKE/nvidia-smi"

# ---- a real sshd on a loopback port with throwaway keys (as tests/integration/test_monitor.sh)
SSH_OK=0
SSH_WHY=
SSH_PORT=$(free_port)
ME=$(id -un)
if [[ $(id -u) -ne 0 ]]; then
    SSH_WHY="not root"
elif [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh-keygen >/dev/null ||
    ! command -v ssh >/dev/null; then
    SSH_WHY="no sshd, ssh or ssh-keygen (openssh-server, openssh-client)"
else
    note "starting sshd on 127.0.0.1:$SSH_PORT"
    cfs_sshd_config "$W/sshd" "$SSH_PORT" "PATH=$FAKE:/usr/local/bin:/usr/bin:/bin HOME=$W/sshd"
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$W/sshd/host_key.pub")" \
        > "$W/sshd/known_hosts"
    if /usr/sbin/sshd -f "$W/sshd/sshd_config" -E "$W/sshd/log"; then
        for _ in $(seq 100); do
            "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $SSH_PORT))" \
                2>/dev/null && SSH_OK=1 && break
            sleep 0.05
        done
    fi
    ((SSH_OK)) || SSH_WHY="sshd did not start: $(tail -1 "$W/sshd/log" 2>/dev/null)"
fi

# ---- the managed mounts, one per size, each with its own dnsmasq and Caddy ----
declare -A MNT_OF DNS_OF HTTPS_OF PID_OF STATE_OF
for n in "${SIZE_LIST[@]}"; do
    MNT_OF[$n]=$W/m$n/mnt
    STATE_OF[$n]=$W/m$n/state
    DNS_OF[$n]=$(free_port)
    HTTPS_OF[$n]=$(free_port)
    mkdir -p "$W/m$n"
    t0=$(date +%s.%N)
    if ((n > REGISTER_MAX)); then
        note "writing $n services to services.json, mounting (managed)"
        mkdir -m 700 "${STATE_OF[$n]}"
        (umask 077; drive seed "$n" svc "$UPSTREAM" internal > "${STATE_OF[$n]}/services.json")
        how="written to services.json, then mounted"
    else
        how="registered through the mount, 16 at a time"
    fi
    mount_cfs "${MNT_OF[$n]}" "${STATE_OF[$n]}" --manage --dns-listen "127.0.0.1:${DNS_OF[$n]}" \
        --https-listen "127.0.0.1:${HTTPS_OF[$n]}"
    PID_OF[$n]=$MOUNT_PID
    if ((n <= REGISTER_MAX)); then
        note "registering $n services through the mount (managed)"
        populate "${MNT_OF[$n]}" "$n" svc "$UPSTREAM" || die "registering $n services failed"
    fi
    drive routable "${HTTPS_OF[$n]}" "${MNT_OF[$n]}/ca/ca.crt" "svc$n.internal" 600 ||
        die "svc$n.internal never became routable"
    got=$(ls "${MNT_OF[$n]}/services" | wc -l)
    ((got == n)) || die "$got services instead of $n"
    SETUP_NOTES+=("$n services $how, all routable: $(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f s", b - a }')")
done

# ---- the build row: BUILD services through a fresh managed mount, BUILD_WRITERS at a time ----
BUILD_NOTE=
if ((BUILD > 0)); then
    note "building $BUILD services through a fresh mount, $BUILD_WRITERS writers"
    BM=$W/build/mnt
    mkdir -p "$W/build"
    mount_cfs "$BM" "$W/build/state" --manage --dns-listen "127.0.0.1:$(free_port)" \
        --https-listen "127.0.0.1:$(free_port)"
    BUILD_PID=$MOUNT_PID
    t0=$(date +%s.%N)
    populate "$BM" "$BUILD" bld "$UPSTREAM" "$BUILD_WRITERS" > /dev/null 2>&1 &
    pop=$!
    while kill -0 "$pop" 2>/dev/null; do
        if awk -v a="$t0" -v b="$(date +%s.%N)" -v l="$BUILD_LIMIT" 'BEGIN { exit !(b - a > l) }'
        then
            pkill -P "$pop" 2>/dev/null || true
            kill "$pop" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$pop" 2>/dev/null || true
    t_build=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    built=$("$PY" -c 'import json, sys
print(sum(s["status"] == "active" for s in json.load(open(sys.argv[1]))["services"]))' \
        "$W/build/state/services.json" 2>/dev/null || echo "?")
    if [[ $built == "$BUILD" ]]; then
        echo "build_$BUILD $t_build" >> "$W/build.sample"
        BUILD_NOTE="build: $BUILD services registered through a fresh managed mount (mkdir +"
        BUILD_NOTE+=" upstream write each), $BUILD_WRITERS writers: $t_build s"
    else
        BUILD_NOTE="build: stopped after $t_build s (BUILD_LIMIT): $built of $BUILD services"
        BUILD_NOTE+=" active, $BUILD_WRITERS writers"
    fi
    BUILD_NOTE+="; $(reloads_in "$W/build/state") proxy reloads"
    for i in "${!MOUNTS[@]}"; do
        if [[ ${MOUNTS[$i]} == "$BM" ]]; then unmount_one "$BM" "$BUILD_PID"; PIDS[$i]=; fi
    done
fi

# ---- the mount of the audit and monitor rows: config-only, the fake nvidia-smi on its PATH --
AUX=$W/aux/mnt
note "mounting the audit and monitor mount (config-only)"
PATH="$FAKE:$PATH" mount_cfs "$AUX" "$W/aux/state" --no-manage
AUX_PID=$MOUNT_PID
# the hostile-readers row: a service to read, and a target whose host accepts TCP and never
# says a word (each probe waits for its deadline); the key is a file of the bench's user
mkdir "$AUX/services/x"
printf '%s\n' "$UPSTREAM" > "$AUX/services/x/upstream"
SILENT_PORT=$(free_port)
"$PY" -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(1024); held = []
while True: held.append(s.accept()[0])" &
SILENT_PID=$!
echo "not a key" > "$W/silent_key"
mkdir "$AUX/monitor/bench-silent"
printf '{"ssh_host":"127.0.0.1","ssh_port":%d,"ssh_user":"%s","ssh_key":"%s"}\n' \
    "$SILENT_PORT" "$ME" "$W/silent_key" > "$AUX/monitor/bench-silent/target.json"
if ((SSH_OK)); then
    mkdir "$AUX/monitor/bench-gpu"
    printf '{"ssh_host":"127.0.0.1","ssh_port":%d,"ssh_user":"%s","ssh_key":"%s",%s}\n' \
        "$SSH_PORT" "$ME" "$W/sshd/client_key" '"types":["gpu"]' \
        > "$AUX/monitor/bench-gpu/target.json"
fi

# ---- the tmpfs copy of the largest services/ tree ----
SHM=$(mktemp -d /dev/shm/conduit-bench.XXXXXX 2>/dev/null || true)
if [[ -n "$SHM" ]]; then
    note "copying services/ ($BIG services) to tmpfs"
    drive copytree "${MNT_OF[$BIG]}/services" "$SHM/services"
fi

# ---- units: each runs one measurement of one or more rows ----
unit_reg() {   # SIZE ROUND
    drive reg "${MNT_OF[$1]}" "${HTTPS_OF[$1]}" "${DNS_OF[$1]}" "${MNT_OF[$1]}/ca/ca.crt" \
        "$UPSTREAM" "probe-r$2" internal "$1" "${STATE_OF[$1]}/log/caddy.log"
}
# proxy_conf SIZE: the config that mount's Caddy runs (JSON once the proxy shape moved to it)
proxy_conf() {
    local r=${STATE_OF[$1]}/routing
    if [[ -f $r/caddy.json ]]; then echo "$r/caddy.json"; else echo "$r/Caddyfile"; fi
}
unit_load() {   # SIZE
    local sock
    sock=$(ls -t "${STATE_OF[$1]}"/caddy/admin-*.sock 2>/dev/null | head -1)
    [[ -S $sock ]] || die "no admin socket of the $1-service Caddy"
    drive load "load_$1" "$sock" "$(proxy_conf "$1")"
}
unit_sealed_1() { drive appends sealed_1 write "$AUX/audit/audit.log" 1 "$APPENDS"; }
unit_sealed_8() { drive appends sealed_8 write "$AUX/audit/audit.log" 8 "$APPENDS"; }
unit_raw_1()    { drive appends raw_1 fsync "$W/raw.log" 1 "$APPENDS"; }
unit_raw_8()    { drive appends raw_8 fsync "$W/raw.log" 8 "$APPENDS"; }
unit_server()   { drive monread "$AUX/monitor/local/server.json" "$W/stamp.server" 0 \
                      server_u server_c; }
unit_gpu()      { drive monread "$AUX/monitor/local/gpu.json" "$W/stamp.gpu" 2 gpu_u gpu_c; }
unit_spawn()    { drive spawn gpu_direct "$FAKE/nvidia-smi" "$Q_GPU" "$FMT" "$Q_APPS" "$FMT"; }
unit_rgpu()     { drive monread "$AUX/monitor/bench-gpu/gpu.json" "$W/stamp.rgpu" 2 rgpu_u; }
unit_sshcli()   { drive sshcli sshcli "$W/sshd/client_key" "$SSH_PORT" "$W/sshd/known_hosts" \
                      "$ME" "nvidia-smi $Q_GPU $FMT; nvidia-smi $Q_APPS $FMT"; }
unit_fs_cfs()   { drive fsops "${MNT_OF[$BIG]}/services" cfs 20; }
unit_fs_tmpfs() { drive fsops "$SHM/services" tmpfs 20; }
unit_svc_quiet()   { drive svcread svc_quiet "$AUX/services/x/upstream" 1; }
unit_svc_hostile() { drive svcread svc_hostile "$AUX/services/x/upstream" 1 \
                         "$AUX/monitor/metrics.prom" "$HOSTILE" "$W/stamp.hostile"; }

UNITS=()
for n in "${SIZE_LIST[@]}"; do UNITS+=("reg $n" "load $n"); done
UNITS+=(sealed_1 sealed_8 raw_1 raw_8 server gpu spawn)
((SSH_OK)) && UNITS+=(rgpu sshcli)
UNITS+=(fs_cfs)
[[ -n "$SHM" ]] && UNITS+=(fs_tmpfs)
UNITS+=(svc_hostile svc_quiet)
if [[ -n "${ONLY:-}" ]]; then
    kept=()
    for u in "${UNITS[@]}"; do
        [[ " $ONLY " == *" ${u%% *} "* ]] && kept+=("$u")
    done
    ((${#kept[@]})) || die "ONLY=\"$ONLY\" names no unit of: ${UNITS[*]}"
    UNITS=("${kept[@]}")
fi

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# The daemon, its signer and the watchdogs of its children: every process of the conduitfs
# binary in its tree (dnsmasq and Caddy are counted apart).
rss_tree() {
    local sum=0 p
    sum=$(rss_of "$1")
    for p in $(ps --ppid "$1" -o pid=,comm= | awk '$2 == "conduitfs" || $2 == "conduit-signer" {
            print $1 }'); do
        sum=$((sum + $(rss_of "$p")))
    done
    echo "$sum"
}
caddy_pid() { pgrep -f -- "--config ${STATE_OF[$1]}/routing/" | head -1; }
unit_rss() {
    local n p
    for n in $(printf '%s\n' "${SIZE_LIST[@]}" | sort -un); do
        echo "rss_$n $(rss_of "${PID_OF[$n]}")"
        echo "rsstree_$n $(rss_tree "${PID_OF[$n]}")"
        p=$(caddy_pid "$n")
        if [[ -n "$p" ]]; then echo "rsscaddy_$n $(rss_of "$p")"; fi
    done
}

# ---- the rounds: round 0 warms up and is not counted ----
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_ROUNDS=$SECONDS
: > "$W/samples"
[[ -f $W/build.sample ]] && cat "$W/build.sample" >> "$W/samples"
nu=${#UNITS[@]}
for ((r = 0; r <= ROUNDS; r++)); do
    for ((i = 0; i < nu; i++)); do
        u=${UNITS[(i + r) % nu]}
        if ((r == 0)); then note "warm-up round: ${u/ /_}"; else
            note "round $r/$ROUNDS: ${u/ /_}"; fi
        # shellcheck disable=SC2086
        unit_$u $r > "$W/out" || die "unit $u failed in round $r"
        ((r == 0)) || cat "$W/out" >> "$W/samples"
    done
    ((r == 0)) || unit_rss >> "$W/samples"
done
T_ROUNDS=$((SECONDS - T_ROUNDS))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
VMHWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/${PID_OF[$BIG]}/status")

# ---- after the rounds: the audit chain of the appends, the SSH sessions ----
note "verifying the audit chain"
for i in "${!MOUNTS[@]}"; do
    if [[ ${MOUNTS[$i]} == "$AUX" ]]; then unmount_one "$AUX" "$AUX_PID"; PIDS[$i]=; fi
done
CHAIN=$("$BIN" verify --state "$W/aux/state" 2>&1 || true)
SSH_NOTE="SSH rows not measured (ONLY)"
if ((SSH_OK)) && [[ " ${UNITS[*]} " == *" rgpu "* ]]; then
    accepted=$(grep -c 'Accepted publickey' "$W/sshd/log" || true)
    # every CLI run is one session; the rest are the pool's
    SSH_NOTE="sshd accepted $((accepted - ROUNDS - 1)) session(s) for the $((ROUNDS + 1)) pooled"
    SSH_NOTE+=" remote probes and $((ROUNDS + 1)) for the $((ROUNDS + 1)) ssh CLI runs"
fi

# ---- the table ----
# ROW_INFO[row]="KIND|LABEL|BASE": KIND lat (seconds), rate (per second) or mem (KiB); BASE the
# row the median is compared with (its median divided by BASE's), or empty.
declare -A ROW_INFO
ROW_ORDER=()
add_row() {   # ROW KIND LABEL [BASE]; a row already added (SIZES of one size) is kept
    [[ -z "${ROW_INFO[$1]:-}" ]] || return 0
    ROW_ORDER+=("$1")
    ROW_INFO[$1]="$2|$3|${4:-}"
}
# One row per size for each of these: KEY KIND LABEL ({n}: the size) and, for a timed row, the
# row of the smallest size it is compared against.
while IFS='|' read -r key kind text; do
    for n in "${SIZE_LIST[@]}"; do
        base=
        [[ $kind == lat ]] && base=${key}_$SMALL
        add_row "${key}_$n" "$kind" "${text//\{n\}/$n}" ${base:+"$base"}
    done
done <<'ROWS'
reg|lat|register-to-routable (HTTPS 200), {n} services
regack|lat|  of which mkdir + write returned, {n} services
dereg|lat|deregister-to-NXDOMAIN, {n} services
deregack|lat|  of which rmdir returned, {n} services
load|lat|proxy reload (forced POST /load), {n} services
reloadsreg|count|proxy reloads per registration, {n} services
reloadsdereg|count|proxy reloads per deregistration, {n} services
ROWS
add_row "build_$BUILD" lat "build $BUILD services, $BUILD_WRITERS writers"
add_row server_u lat "read local/server.json, uncached" server_c
add_row server_c lat "  cached (within the 2 s TTL)"
add_row gpu_u lat "read local/gpu.json, uncached (fake nvidia-smi)" gpu_direct
add_row gpu_c lat "  cached (within the 2 s TTL)"
add_row gpu_direct lat "  the same 2 nvidia-smi runs, spawned directly"
if ((SSH_OK)); then
    add_row rgpu_u lat "read remote gpu.json, uncached, pooled SSH" sshcli
    add_row sshcli lat "  fresh ssh CLI run, same 2 queries"
fi
add_row sealed_1 rate "sealed audit appends/s, 1 writer" raw_1
add_row sealed_8 rate "sealed audit appends/s, 8 writers" raw_8
add_row raw_1 rate "  raw append + fsync/s, same disk, 1 writer"
add_row raw_8 rate "  raw append + fsync/s, same disk, 8 writers"
add_row stat_cfs lat "stat services/, $BIG services" stat_tmpfs
[[ -n "$SHM" ]] && add_row stat_tmpfs lat "  same tree on tmpfs"
add_row ls_cfs lat "ls -l services/, $BIG services" ls_tmpfs
[[ -n "$SHM" ]] && add_row ls_tmpfs lat "  same tree on tmpfs"
add_row svc_hostile lat "read services/x/upstream, $HOSTILE slow readers wait" svc_quiet
add_row svc_quiet lat "  the same, without them"
for n in $(printf '%s\n' "${SIZE_LIST[@]}" | sort -urn); do
    add_row "rss_$n" mem "conduitfs VmRSS, $n services (managed)" "rss_$SMALL"
done
for n in $(printf '%s\n' "${SIZE_LIST[@]}" | sort -urn); do
    add_row "rsstree_$n" mem "  with signer + watchdogs, $n services" "rsstree_$SMALL"
done
for n in $(printf '%s\n' "${SIZE_LIST[@]}" | sort -urn); do
    add_row "rsscaddy_$n" mem "  caddy VmRSS, $n services" "rsscaddy_$SMALL"
done

# The goals of issue 16, a column of the table: GOAL[row]="ratio X" (the median at most X times
# its base row's) and/or "abs V" (the median at most V, in the row's unit: s, KiB), ";" between.
declare -A GOAL
for r in reg dereg; do
    GOAL[${r}_1000]="ratio 1.5;abs 0.040 quiet"
    GOAL[${r}_10000]="ratio 3"
done
GOAL[build_1000]="abs 60"
GOAL[rss_1000]="abs 30720"

# stats ROW KIND: "runs median p99" (p99 by nearest rank: the slow end, so the low end of a rate)
stats() {
    local order=-g
    [[ $2 == rate ]] && order=-gr
    awk -v k="$1" '$1 == k { print $2 }' "$W/samples" | sort "$order" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "0 0 0"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        k = int(0.99 * NR); if (k < 0.99 * NR) k++
        printf "%d %.9g %.9g\n", NR, m, v[k] }'
}
fmt() {   # KIND VALUE
    awk -v kind="$1" -v s="$2" 'BEGIN {
        if (kind == "rate") printf "%.0f/s", s
        else if (kind == "mem") printf "%.1f MiB", s / 1024
        else if (kind == "count") printf "%.1f", s
        else if (s >= 1) printf "%.2f s", s
        else if (s >= 0.001) printf "%.1f ms", s * 1000
        else printf "%.1f us", s * 1e6 }'
}
short() {   # the label of a base row, for the ratio column
    case $1 in
    reg_*|dereg_*|regack_*|deregack_*) echo "${1#*_} svc" ;;
    server_c) echo "cached" ;;
    gpu_direct) echo "direct" ;;
    sshcli) echo "ssh CLI" ;;
    raw_*) echo "raw" ;;
    *_tmpfs) echo "tmpfs" ;;
    svc_quiet) echo "without" ;;
    rss*_*|load_*) echo "${1##*_} svc" ;;
    esac
}

# goal_text ROW KIND MEDIAN RATIO: the row's goal, and whether this run met it ("" without one).
goal_text() {
    local g out= kind val extra met
    [[ -n "${GOAL[$1]:-}" ]] || return 0
    IFS=';' read -r -a gs <<< "${GOAL[$1]}"
    for g in "${gs[@]}"; do
        read -r kind val extra <<< "$g"
        if [[ $kind == ratio ]]; then
            met=$(awk -v r="$4" -v v="$val" 'BEGIN { if (r == "") print "?"; else
                print (r + 0 <= v) ? "met" : "missed" }')
            out+="${out:+; }<= ${val}x: $met"
        else
            met=$(awk -v m="$3" -v v="$val" 'BEGIN { print (m + 0 <= v) ? "met" : "missed" }')
            out+="${out:+; }<= $(fmt "$2" "$val")${extra:+ ($extra)}: $met"
        fi
    done
    printf '%s' "$out"
}

table() {
    local row kind label base runs med p99 bruns bmed ratio rnum
    printf '%-50s %4s %10s %10s  %-16s %s\n' "row" "runs" "median" "p99" "median vs" "goal"
    printf '%-50s %4s %10s %10s  %-16s %s\n' "$(printf '%.0s-' {1..50})" "----" "----------" \
        "----------" "----------------" "----"
    for row in "${ROW_ORDER[@]}"; do
        IFS='|' read -r kind label base <<< "${ROW_INFO[$row]}"
        read -r runs med p99 < <(stats "$row" "$kind")
        ((runs > 0)) || continue
        ratio=
        rnum=
        if [[ -n "$base" && $base != "$row" && -n "${ROW_INFO[$base]:-}" ]]; then
            read -r bruns bmed _ < <(stats "$base" "$(cut -d'|' -f1 <<< "${ROW_INFO[$base]}")")
            if ((bruns > 0)); then
                ratio=$(awk -v a="$med" -v b="$bmed" -v n="$(short "$base")" \
                    'BEGIN { if (b > 0) printf "%.2fx %s", a / b, n }')
                rnum=${ratio%%x*}
            fi
        fi
        printf '%-50s %4d %10s %10s  %-16s %s\n' "$label" "$runs" "$(fmt "$kind" "$med")" \
            "$(fmt "$kind" "$p99")" "$ratio" "$(goal_text "$row" "$kind" "$med" "$rnum")"
    done
}

disk_of() {   # the block device under a path, and what lsblk says of it
    local src fstype dev rota
    read -r src fstype < <(df -PT "$1" | awk 'NR == 2 { print $1, $2 }')
    dev=$(lsblk -ndo PKNAME "$src" 2>/dev/null || true)
    [[ -n "$dev" ]] || dev=$(basename "$src")
    rota=$(lsblk -ndo ROTA "/dev/$dev" 2>/dev/null | tr -d ' ' || true)
    case "$rota" in
    0) rota="non-rotational" ;;
    1) rota="rotational" ;;
    *) rota="" ;;
    esac
    [[ $dev == vd* && -n "$rota" ]] && rota="virtio, reported $rota"
    printf '%s (%s%s)' "$src" "$fstype" "${rota:+, $rota}"
}

printf '\r%*s\r' 70 '' >&2
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
printf 'conduitfs benchmark table, %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] ||
    commit+=" with uncommitted changes"
printf 'version:   %s, commit %s\n' "$("$BIN" --version)" "$commit"
printf 'machine:   %s, %s cores, %s, kernel %s\n' "$cpu" "$(nproc)" "$mem" "$(uname -r)"
printf 'BENCH_DIR: %s on %s\n' "$(dirname "$W")" "$(disk_of "$W")"
printf 'peers:     %s, dnsmasq %s%s\n' "$(caddy version | awk '{ print "Caddy " $1 }')" \
    "$(dnsmasq --version | awk 'NR == 1 { print $3 }')" \
    "$( ((SSH_OK)) && ssh -V 2>&1 | awk -F, '{ print ", " $1 }')"
printf 'load avg:  %s at the start of the rounds, %s at the end\n' "$LOAD0" "$LOAD1"
printf '%d rounds (after 1 warm-up), every row once per round, in an order rotated each round\n' \
    "$ROUNDS"
printf 'p99 is by nearest rank: with fewer than 100 runs it is the slowest run\n\n'
table
printf '\nsetup:\n'
for s in "${SETUP_NOTES[@]}"; do printf '  %s\n' "$s"; done
[[ -n "$BUILD_NOTE" ]] && printf '  %s\n' "$BUILD_NOTE"
printf '  reloads: real proxy reloads in Caddy'"'"'s log (one "admin endpoint started" line each)\n'
printf '    from the mkdir until HTTPS 200, and from the rmdir until NXDOMAIN\n'
printf '  proxy reload: one forced POST /load of the mount'"'"'s current config (%s)\n' \
    "$(basename "$(proxy_conf "$SMALL")")"
printf '    on its admin socket, timed until Caddy answered\n'
printf '  register rows: mkdir + upstream write on a mount already holding N services, until\n'
printf '    HTTPS 200 through its Caddy; deregister: rmdir until its dnsmasq answers NXDOMAIN\n'
printf '    (polled with a raw DNS query, then confirmed with dig when installed)\n'
printf '  uncached = the first read after the 2 s probe cache expired (the probe runs in that\n'
printf '    read); cached = a second read at once; open + read to EOF + close, in process\n'
[[ -z "$SHM" ]] && printf '  no tmpfs at /dev/shm: the tmpfs rows are missing\n'
if ((SSH_OK)); then
    printf '  %s\n' "$SSH_NOTE"
else
    printf '  SSH rows skipped: %s\n' "$SSH_WHY"
fi
printf '  hostile readers: %d threads each open monitor/metrics.prom (a target that accepts TCP\n' \
    "$HOSTILE"
printf '    and never answers makes each wait for the probe deadline); one timed read of\n'
printf '    services/x/upstream on the same mount while they all wait, and one without them\n'
printf '  conduitfs VmHWM (peak RSS), %s services: %.1f MiB\n' "$BIG" \
    "$(awk -v k="$VMHWM" 'BEGIN { print k / 1024 }')"
printf '  audit chain after the appends: %s\n' "${CHAIN%%, hash*}"
printf '  time: %d s in all, %d s of it the rounds\n' "$((SECONDS - T_START))" "$T_ROUNDS"
