#!/usr/bin/env bash
# test_crash.sh: crash safety. (1) kill -9 storm: 10 times, 4 shells register, write and
# deregister while conduitfs is killed at a random moment; after `fusermount3 -u` and a remount,
# every state file parses, the audit chain verifies, every acknowledged change is there (the one
# change in flight per shell may or may not be), the configs match an independent rendering, and
# no temp file is left. (2) Temp files planted where atomic writes happen are gone after a mount.
# (3) Disk full: on a full tmpfs a change fails with ENOSPC and leaves the registry and the
# configs byte-identical; after space is freed the same mount works; with a few pages left, each
# registration is all or nothing. (4) A truncated or unreadable services.json, a foreign
# capsules.db and a CA key without its certificate refuse the mount with one precise line and
# exit 2, and leave the files as they were.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${CRASH_ROUNDS:-10}
NAMES=8

# Every state file parses: the registry and every audit line as JSON, the capsule store as an
# intact SQLite database, every certificate and key with openssl. Prints what does not.
state_files_parse() {
    jq -e '.version == 1' "$STATE/services.json" >/dev/null || echo "services.json"
    jq -c . "$STATE/audit.log" >/dev/null 2>&1 || echo "audit.log"
    if [[ -f $STATE/capsules.db ]]; then
        py3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
sys.exit(db.execute("pragma integrity_check").fetchone()[0] != "ok")' "$STATE/capsules.db" ||
            echo "capsules.db"
    fi
    # the CA and the live leaves: one openssl run parses every certificate; each key must be
    # one PEM block whose DER is exactly one complete SEQUENCE
    local certs=() keys=() f
    for f in "$STATE"/tls/ca.crt "$STATE"/tls/*/cert.pem; do
        [[ -f $f ]] && certs+=(-certfile "$f")
    done
    for f in "$STATE"/tls/ca.key "$STATE"/tls/*/key.pem; do
        [[ -f $f ]] && keys+=("$f")
    done
    openssl crl2pkcs7 -nocrl "${certs[@]}" >/dev/null 2>&1 || echo "a certificate under tls/"
    py3 - "${keys[@]}" <<'EOF'
import base64, sys
for path in sys.argv[1:]:
    try:
        text = open(path).read().split("\n")
        b64 = "".join(l for l in text if l and not l.startswith("-----"))
        der = base64.b64decode(b64, validate=True)
        n = der[1]
        hdr, length = (2, n) if n < 0x80 else (2 + (n & 0x7f),
                                                 int.from_bytes(der[2:2 + (n & 0x7f)], "big"))
        ok = text[0].startswith("-----BEGIN ") and der[0] == 0x30 and hdr + length == len(der)
    except (OSError, ValueError, IndexError):
        ok = False
    if not ok:
        print(path)
EOF
    for f in $(find "$STATE" -name '*.json' ! -name 'services.json*'); do
        jq . "$f" >/dev/null 2>&1 || echo "${f#$STATE/}"
    done
}

# ---- (1) kill -9 storm ----
# cworker K: registers, writes and deregisters its own names c<K>-<i> until the mount dies.
# Logs "try OP" before and "ok OP" after each operation; "err OP" for a failure while the
# daemon was alive (none should happen).
cworker() {
    local k=$1 log=$T/cops.$1 end=$((SECONDS + 10)) i n op v
    local -A alive=()
    for n in $(ls "$S" | grep "^c$k-"); do alive[$n]=1; done
    : > "$log"
    while ((SECONDS < end)); do
        i=$((RANDOM % NAMES + 1)); n=c$k-$i; op=$((RANDOM % 10))
        if [[ -z ${alive[$n]:-} ]]; then
            op="mk $n"
        elif ((op < 6)); then
            op="set $n upstream 10.$k.$i.$((RANDOM % 250 + 1)):$((RANDOM % 60000 + 1))"
        elif ((op < 8)); then
            op="set $n domain $n-v$RANDOM.internal"
        else
            op="rm $n"
        fi
        echo "try $op" >> "$log"
        set -- $op
        case $1 in
        mk)  mkdir "$S/$n" 2>/dev/null ;;
        rm)  rmdir "$S/$n" 2>/dev/null ;;
        set) printf '%s\n' "$4" 2>/dev/null > "$S/$n/$3" ;;
        esac
        if (($? == 0)); then
            echo "ok $op" >> "$log"
            case $1 in mk) alive[$n]=1 ;; rm) alive[$n]= ;; esac
        elif [[ -e $T/killed ]]; then
            break
        else
            echo "err $op" >> "$log"
        fi
    done
}

# Compare services.json with base.json plus the logs: acknowledged operations must be there;
# each shell's last operation, if unacknowledged, may or may not be. Prints the differences.
replay_check() {
    py3 - "$T/base.json" "$STATE/services.json" "$T"/cops.* <<'EOF'
import copy, json, sys
base, final, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
def live(path):
    return {s["name"]: {"upstream": s["upstream"], "domain": s["domain"]}
            for s in json.load(open(path))["services"] if s["status"] != "inactive"}
def apply(state, op):
    w = op.split(" ")
    if w[0] == "mk":
        state[w[1]] = {"upstream": "", "domain": w[1] + ".internal"}
    elif w[0] == "rm":
        state.pop(w[1], None)
    elif w[0] == "set":
        state[w[1]][w[2]] = w[3]
want = live(base)
inflight = []
for path in logs:
    lines = [l.rstrip("\n") for l in open(path)]
    for i, l in enumerate(lines):
        kind, op = l.split(" ", 1)
        if kind == "ok":
            apply(want, op)
        elif kind == "err":
            print("failed while the daemon was alive: " + op)
        elif kind == "try" and i == len(lines) - 1:
            inflight.append(op)
alt = copy.deepcopy(want)
for op in inflight:
    apply(alt, op)
got = live(final)
for n in sorted(set(want) | set(alt) | set(got)):
    if got.get(n) != want.get(n) and got.get(n) != alt.get(n):
        print("%s: registry %s, acknowledged %s, with the change in flight %s"
              % (n, got.get(n), want.get(n), alt.get(n)))
EOF
}

cfs_mount
acked=0; inflight_seen=0
for round in $(seq 1 "$ROUNDS"); do
    cp "$STATE/services.json" "$T/base.json"
    rm -f "$T/killed" "$T"/cops.*
    pids=()
    for k in 1 2 3 4; do cworker "$k" & pids+=($!); done
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.2 + (r % 1300) / 1000 }')"
    touch "$T/killed"
    kill -9 "$CFS_PID"
    wait "${pids[@]}"
    wait "$CFS_PID" 2>/dev/null; CFS_PID=
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
    acked=$((acked + $(cat "$T"/cops.* | grep -c '^ok ')))
    check_eq "round $round: services.json parses after kill -9" \
        "$(jq -e '.version == 1' "$STATE/services.json" >/dev/null 2>&1 && echo yes)" "yes"
    if ! cfs_mount; then
        bad "round $round: remount after kill -9 failed"
        break
    fi
    check_eq "round $round: no temp file after the remount" \
        "$(find "$STATE" -name '.*.tmp.*' | head -3)" ""
    check_eq "round $round: every state file parses" "$(state_files_parse)" ""
    check_eq "round $round: acknowledged changes survived" "$(replay_check)" ""
    check "round $round: configs match an independent rendering" \
        py3 "$HERE/render_check.py" "$STATE"
    check_verify "round $round"
done
echo "kill -9 storm: $ROUNDS kills, $acked acknowledged operations," \
    "$(jq '[.services[] | select(.status != "inactive")] | length' "$STATE/services.json")" \
    "live services at the end"
check "some operations were acknowledged" test "$acked" -gt 20

# ---- (2) temp files of an interrupted write are removed at the next mount ----
domain=$(cat "$S/$(ls "$S" | head -1)/domain")
cfs_unmount
for d in "$STATE" "$STATE/dns" "$STATE/dns/hosts.d" "$STATE/routing" "$STATE/tls" \
         "$STATE/tls/$domain"; do
    [[ -d $d ]] && printf 'partial' > "$d/.planted.tmp.4242"
done
cfs_mount
check_eq "planted temp files are gone after the mount" \
    "$(find "$STATE" -name '.*.tmp.*' | sed "s|$STATE/||" | tr '\n' ' ')" ""
cfs_unmount

# ---- (3) disk full ----
if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: disk full needs root (mount -t tmpfs)"
elif ! mkdir -p "$T/small" || ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$T/small"; then
    echo "SKIP: cannot mount a tmpfs"
else
    small_cleanup() { cfs_unmount; umount "$T/small" 2>/dev/null; rm -rf "$T"; }
    trap small_cleanup EXIT
    STATE_BIG=$STATE
    STATE=$T/small/state
    cfs_mount
    mkdir "$S/full"
    put "$S/full/upstream" "10.0.0.1:80"
    mkdir "$S/other"
    dd if=/dev/zero of="$T/small/filler" bs=4k 2>/dev/null || true
    before=$(configs_digest)
    check_fails "full: mkdir gives ENOSPC" "No space left on device" mkdir "$S/new"
    check_fails "full: upstream write gives ENOSPC" "No space left on device" \
        put "$S/full/upstream" "10.0.0.2:80"
    check_fails "full: domain write gives ENOSPC" "No space left on device" \
        put "$S/full/domain" "moved.internal"
    check_fails "full: monitoring write gives ENOSPC" "No space left on device" \
        put "$S/full/monitoring" '{"type":"container","container_name":"c"}'
    check_eq "full: registry and configs byte-identical" "$(configs_digest)" "$before"
    check_eq "full: the mount still shows the old values" \
        "$(cat "$S/full/upstream" "$S/full/domain"; ls "$S" | tr '\n' ' ')" \
        "$(printf '10.0.0.1:80\nfull.internal\nfull other ')"
    check_eq "full: no temp file left" "$(find "$STATE" -name '.*.tmp.*' | head -3)" ""
    rm -f "$T/small/filler"
    check "freed: mkdir works again without a remount" mkdir "$S/new"
    check "freed: upstream write works" put "$S/full/upstream" "10.0.0.2:80"
    check "freed: domain write works" put "$S/full/domain" "moved.internal"
    check "freed: rmdir works" rmdir "$S/other"
    check_eq "freed: services.json has the changes" "$(jq -r '.services[] |
        select(.status != "inactive") | "\(.name) \(.upstream) \(.domain)"' \
        "$STATE/services.json" | sort | tr '\n' ' ')" \
        "full 10.0.0.2:80 moved.internal new  new.internal "
    check "freed: configs match an independent rendering" py3 "$HERE/render_check.py" "$STATE"
    check_verify "after disk full"

    # Nearly full: with 0..12 pages left, a registration either fails with ENOSPC and changes
    # nothing, or succeeds completely with its audit line (the space reserve pays for a line
    # that the full disk refuses after the commit); the audit chain verifies either way.
    sweep_bad=0; sweep_ok=0; unaudited=0; paid=0
    for k in 0 1 2 3 4 5 6 7 8 10 12; do
        avail=$(df --output=avail -B4096 "$T/small" | tail -1)
        dd if=/dev/zero of="$T/small/filler" bs=4096 count=$((avail - k)) status=none \
            2>/dev/null || true
        before=$(configs_digest)
        if mkdir "$S/near$k" 2>"$T/err"; then
            sweep_ok=$((sweep_ok + 1))
            if ! py3 "$HERE/render_check.py" "$STATE" >/dev/null ||
               [[ "$(jq -r '.services[] | select(.name == "near'$k'") | .status' \
                     "$STATE/services.json")" != pending ]]; then
                sweep_bad=$((sweep_bad + 1)); echo "near-full $k: inconsistent success" >&2
            fi
            grep -q '"Registered service near'$k'"' "$STATE/audit.log" ||
                unaudited=$((unaudited + 1))
            [[ -e "$STATE/space.reserve" ]] || paid=$((paid + 1))
        elif ! grep -q "No space left on device" "$T/err" ||
             [[ "$(configs_digest)" != "$before" ]]; then
            sweep_bad=$((sweep_bad + 1))
            echo "near-full $k: failed with $(cat "$T/err"), configs changed?" >&2
        fi
        rm -f "$T/small/filler"
        mkdir "$S/again$k" && rmdir "$S/again$k"    # with space again: the reserve is remade
    done
    echo "near-full sweep: $sweep_ok of 11 registrations succeeded ($paid sealed with the" \
        "space reserve)"
    check "the reserve is back once space is free" test -e "$STATE/space.reserve"
    check_eq "near-full: each registration all or nothing" "$sweep_bad" "0"
    check_eq "near-full: every acknowledged registration has its audit line" "$unaudited" "0"
    check_verify "after the near-full sweep"
    check_eq "near-full: no temp file left" "$(find "$STATE" -name '.*.tmp.*' | head -3)" ""
    cfs_unmount
    check "freed: remount works" cfs_mount
    check_eq "freed: every state file parses" "$(state_files_parse)" ""
    cfs_unmount
    umount "$T/small"
    STATE=$STATE_BIG
fi

# ---- (4) unreadable or corrupt inputs refuse the mount ----
# refuse DESCRIPTION PATTERN: the mount must fail with exit 2, one line on stderr matching
# PATTERN, nothing mounted, and every file of the state directory as it was (a copy
# services.json.corrupt-* may be added, and SQLite's empty capsules.db-wal/-shm companions may
# appear: the daemon exits without closing the audit store on this path).
state_sums() {
    (cd "$STATE" && find . -type f ! -name 'services.json.corrupt-*' ! -name 'capsules.db-wal' \
        ! -name 'capsules.db-shm' -print0 | sort -z | xargs -0 sha256sum)
}
refuse() {
    local what=$1 pattern=$2 rc=0 before after
    before=$(state_sums)
    timeout 20 "$CONDUITFS" -f --no-manage --state "$STATE" "$MNT" 2>"$T/refuse.err" || rc=$?
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; fi
    check_eq "$what: exit 2" "$rc" "2"
    check_eq "$what: one line on stderr" "$(wc -l < "$T/refuse.err")" "1"
    check "$what: the line says why ($(head -c 150 "$T/refuse.err"))" \
        grep -qE "$pattern" "$T/refuse.err"
    after=$(state_sums)
    check_eq "$what: the state files are untouched" "$after" "$before"
    if [[ -s $STATE/capsules.db-wal ]]; then bad "$what: capsules.db-wal is not empty"; fi
}

cp -a "$STATE" "$T/good"
full=$(stat -c %s "$STATE/services.json")
head -c $((full / 2)) "$T/good/services.json" > "$STATE/services.json"
refuse "truncated services.json" "services.json.*corrupt"
check "truncated services.json: a copy is kept" \
    sh -c "cmp '$STATE/services.json' '$STATE'/services.json.corrupt-*"

rm -rf "$STATE"; cp -a "$T/good" "$STATE"
jq '.services[0].name = "evil\nconduitfs: all is well"' "$T/good/services.json" \
    > "$STATE/services.json"
refuse "a service name with a newline" "services\.json.*invalid name"

rm -rf "$STATE"; cp -a "$T/good" "$STATE"
rm -f "$STATE/services.json"; mkdir "$STATE/services.json"
refuse "unreadable services.json (a directory)" "cannot read .*services\.json"

rm -rf "$STATE"; cp -a "$T/good" "$STATE"
rm -f "$STATE/capsules.db"*
py3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("create table inventory (id integer primary key, item text)")
db.execute("insert into inventory (item) values (?)", ("widget",))
db.commit()' "$STATE/capsules.db"
refuse "foreign capsules.db" "capsules\.db"
check "foreign capsules.db: its table is still there" py3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("select item from inventory").fetchone()[0] == "widget"' "$STATE/capsules.db"

rm -rf "$STATE"; cp -a "$T/good" "$STATE"
rm -f "$STATE/tls/ca.crt"
refuse "CA key without its certificate" "ca\.(key|crt)"
check "CA key without certificate: ca.crt not regenerated" test ! -e "$STATE/tls/ca.crt"
check "CA key without certificate: the key kept" cmp "$STATE/tls/ca.key" "$T/good/tls/ca.key"

rm -rf "$STATE"; cp -a "$T/good" "$STATE"
check "the good state still mounts" cfs_mount
cfs_unmount
finish
