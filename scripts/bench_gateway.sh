#!/usr/bin/env bash
# bench_gateway.sh: prints one table of gateway latencies and costs, in the style of bench.sh:
#   - register-to-routable: mkdir + upstream write until the first HTTPS 200 through Caddy, with
#     10, 100 (and 1000, when registering them takes under 60 s) services already registered
#   - deregister-to-NXDOMAIN: rmdir until dnsmasq answers NXDOMAIN for the domain
#   - stat and ls -l of services/ with 100 and 1000 services, next to the same tree on tmpfs
#   - conduitfs resident memory (VmRSS) with 1000 services (config-only mount)
# Managed rows run real dnsmasq and Caddy on free loopback ports, and a local upstream.
#
# usage: scripts/bench_gateway.sh [path/to/conduitfs]   (default build/conduitfs, built if missing)
# env:   ROUNDS (default 15) samples per latency row, BENCH_DIR (default /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-build/conduitfs}
ROUNDS=${ROUNDS:-15}
for tool in caddy dnsmasq python3; do
    command -v "$tool" >/dev/null || { echo "bench_gateway: needs $tool" >&2; exit 1; }
done
if [[ ! -x "$BIN" ]]; then
    cmake -S . -B build >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    BIN=build/conduitfs
fi
BIN=$(readlink -f "$BIN")
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
W=$(mktemp -d "${BENCH_DIR:-/tmp}/conduit-benchgw.XXXXXX")
MNT=$W/mnt
PID=
UP_PID=
SHM=

cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" || true
    fi
    if [[ -n "$PID" ]]; then
        kill -0 "$PID" 2>/dev/null && sleep 1 && kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null || true
    fi
    if [[ -n "$UP_PID" ]]; then kill "$UP_PID" 2>/dev/null || true; fi
    [[ -n "$SHM" ]] && rm -rf "$SHM"
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); u = socket.socket(type=socket.SOCK_DGRAM)
p = s.getsockname()[1]; u.bind(("127.0.0.1", p)); print(p)'
}

# mount_cfs STATE [options]: mount in the background, wait until it is up.
mount_cfs() {
    local state=$1; shift
    mkdir -p "$MNT"
    "$BIN" -f --state "$state" "$@" "$MNT" 2>>"$W/conduitfs.log" &
    PID=$!
    for _ in $(seq 200); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
    echo "bench_gateway: mount failed:" >&2
    cat "$W/conduitfs.log" >&2
    exit 1
}
umount_cfs() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        fusermount3 -u "$MNT" 2>/dev/null && break
        ((i < 10)) || fusermount3 -uz "$MNT"
        sleep 0.5
    done
    wait "$PID" 2>/dev/null || true
    PID=
}

# populate COUNT PREFIX UPSTREAM [LIMIT]: register COUNT services PREFIX1..PREFIXn, 16 at a
# time, with UPSTREAM (none when empty); after LIMIT seconds no new one starts, the ones under
# way finish, and it fails (nothing is killed, so the mount is never left busy).
populate() {
    local deadline=$(( $(date +%s) + ${4:-600} ))
    seq 1 "$1" | xargs -P 16 -I{} sh -c '[ "$(date +%s)" -lt "$3" ] || exit 255
        mkdir "$0/services/$1{}" &&
        { [ -z "$2" ] || printf "%s\n" "$2" > "$0/services/$1{}/upstream"; }' \
        "$MNT" "$2" "$3" "$deadline" 2>/dev/null
}

# The measurement driver. Commands:
#   routable MNT PORT CAFILE UPSTREAM ROUNDS NAME SUFFIX DNSPORT OUT
#     each round: mkdir + upstream write, poll HTTPS until 200 (sample 1), then rmdir and poll
#     DNS until NXDOMAIN (sample 2); writes "reg SECONDS" and "dereg SECONDS" lines to OUT
#   fsops DIR ROUNDS: prints "stat SECONDS" and "ls SECONDS" lines (stat(2) of DIR; ls -l DIR)
cat > "$W/drive.py" <<'EOF'
import os, socket, ssl, struct, subprocess, sys, time

def https_status(port, host, ctx):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
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

def poll(fn, limit=30):
    t_end = time.monotonic() + limit
    while time.monotonic() < t_end:
        if fn():
            return True
        time.sleep(0.002)
    return False

cmd = sys.argv[1]
if cmd == "routable":
    mnt, port, ca, up, rounds, name, suffix, dport, out = sys.argv[2:11]
    port, rounds, dport = int(port), int(rounds), int(dport)
    ctx = ssl.create_default_context(cafile=ca)
    with open(out, "a") as o:
        for i in range(rounds):
            svc = "%s%d" % (name, i)
            dom = "%s.%s" % (svc, suffix)
            t0 = time.monotonic()
            os.mkdir(os.path.join(mnt, "services", svc))
            with open(os.path.join(mnt, "services", svc, "upstream"), "w") as f:
                f.write(up + "\n")
            if not poll(lambda: https_status(port, dom, ctx) == 200):
                sys.exit("routable: %s never answered 200" % dom)
            o.write("reg %.6f\n" % (time.monotonic() - t0))
            t0 = time.monotonic()
            os.rmdir(os.path.join(mnt, "services", svc))
            if not poll(lambda: dns_rcode(dport, dom) == 3):
                sys.exit("routable: %s never became NXDOMAIN" % dom)
            o.write("dereg %.6f\n" % (time.monotonic() - t0))
elif cmd == "fsops":
    d, rounds = sys.argv[2], int(sys.argv[3])
    for _ in range(rounds):
        t0 = time.perf_counter(); os.stat(d); t1 = time.perf_counter()
        print("stat %.9f" % (t1 - t0))
        t0 = time.perf_counter()
        subprocess.run(["ls", "-l", d], stdout=subprocess.DEVNULL, check=True)
        print("ls %.9f" % (time.perf_counter() - t0))
EOF
drive() { "$PY" "$W/drive.py" "$@"; }

# stats FILE KEY: "runs median p99" (nearest rank) of the samples tagged KEY, in seconds.
stats() {
    awk -v k="$2" '$1 == k { print $2 }' "$1" | sort -g | awk '{ t[NR] = $1 } END {
        if (NR == 0) { print "0 0 0"; exit }
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        k = int(0.99 * NR); if (k < 0.99 * NR) k++
        printf "%d %.9f %.9f\n", NR, m, t[k] }'
}
# fmt SECONDS: a latency with a unit that suits it.
fmt() {
    awk -v s="$1" 'BEGIN { if (s >= 1) printf "%.2f s", s; else if (s >= 0.001)
        printf "%.1f ms", s * 1000; else printf "%.1f us", s * 1e6 }'
}
ROWS_OUT=()
NOTES=()
row() {   # row LABEL FILE KEY
    local runs med p99
    read -r runs med p99 < <(stats "$2" "$3")
    ROWS_OUT+=("$(printf '%-52s %5d %12s %12s' "$1" "$runs" "$(fmt "$med")" "$(fmt "$p99")")")
}
row_value() {   # row_value LABEL VALUE
    ROWS_OUT+=("$(printf '%-52s %5d %12s %12s' "$1" 1 "$2" "$2")")
}
note() { printf '\rbench_gateway: %-60s' "$1" >&2; }

# ---- managed: register-to-routable and deregister-to-NXDOMAIN at 10, 100, 1000 services ----
UP_PORT=$(free_port)
"$PY" tests/integration/upstream.py "$UP_PORT" bench >/dev/null 2>&1 &
UP_PID=$!
DNS_PORT=$(free_port)
HTTPS_PORT=$(free_port)
mount_cfs "$W/managed" --manage --dns-listen "127.0.0.1:$DNS_PORT" \
    --https-listen "127.0.0.1:$HTTPS_PORT"
have=0
for n in 10 100 1000; do
    note "registering $n services (managed)"
    t0=$SECONDS
    if ! populate $((n - have)) "svc$have-" "127.0.0.1:$UP_PORT" 60; then
        ROWS_OUT+=("(managed rows at $n services skipped: registering them took over 60 s;\
 $(ls "$MNT/services" | wc -l) were registered by then)")
        break
    fi
    have=$n
    NOTES+=("registering up to $n services took $((SECONDS - t0)) s")
    note "measuring at $n services"
    drive routable "$MNT" "$HTTPS_PORT" "$MNT/ca/ca.crt" "127.0.0.1:$UP_PORT" "$ROUNDS" \
        "probe$n-" internal "$DNS_PORT" "$W/lat.$n"
    row "register-to-routable (HTTPS 200), $n services" "$W/lat.$n" reg
    row "deregister-to-NXDOMAIN, $n services" "$W/lat.$n" dereg
done
umount_cfs

# ---- stat and ls -l of services/ vs the same tree on tmpfs; VmRSS at 1000 (config-only) ----
SHM=$(mktemp -d /dev/shm/conduit-benchgw.XXXXXX 2>/dev/null || true)
mount_cfs "$W/plain" --no-manage
rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
have=0
for n in 100 1000; do
    note "registering $n services (config-only)"
    populate $((n - have)) "svc$have-" ""
    have=$n
    note "stat and ls -l at $n services"
    drive fsops "$MNT/services" "$ROUNDS" > "$W/fs.$n"
    row "stat services/, $n services" "$W/fs.$n" stat
    row "ls -l services/, $n services" "$W/fs.$n" ls
    if [[ -n "$SHM" ]]; then
        (cd "$MNT/services" && ls) | while read -r s; do
            mkdir -p "$SHM/$n/$s"
            for a in upstream domain health_check mode monitoring; do
                cat "$MNT/services/$s/$a" > "$SHM/$n/$s/$a"
            done
        done
        drive fsops "$SHM/$n" "$ROUNDS" > "$W/shm.$n"
        row "  same tree on tmpfs: stat, $n entries" "$W/shm.$n" stat
        row "  same tree on tmpfs: ls -l, $n entries" "$W/shm.$n" ls
    fi
done
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
row_value "conduitfs VmRSS, 0 services (config-only)" "$((rss0 / 1024)) MiB"
row_value "conduitfs VmRSS, 1000 services (config-only)" "$((rss / 1024)) MiB"
umount_cfs
printf '\r%*s\r' 80 '' >&2

fs=$(df -PT "$W" | awk 'NR == 2 { print $1 " (" $2 ")" }')
printf 'conduitfs %s, state on %s, %s rounds per latency row, %s cores\n\n' \
    "$("$BIN" --version | awk '{ print $2 }')" "$fs" "$ROUNDS" "$(nproc)"
printf '%-52s %5s %12s %12s\n' "row" "runs" "median" "p99"
printf '%-52s %5s %12s %12s\n' "$(printf '%.0s-' {1..52})" "-----" "------------" \
    "------------"
printf '%s\n' "${ROWS_OUT[@]}"
printf '\nmanaged: %s\n' "$(IFS=';'; echo "${NOTES[*]}" | sed 's/;/; /g')"
