#!/usr/bin/env bash
# test_signer.sh: the signer process (docs/security.md, "Where the signing keys live"). While
# mounted it runs as a separate process with only its socket open; the daemon's memory, read
# through /proc/<pid>/mem, holds neither private key (the 32-byte Ed25519 seeds, the P-256
# scalar in either byte order) while its public audit key is found (the scan works), and the
# signer's memory holds them (as root); the signer is gone after a clean unmount, after kill -9 of
# the daemon, in the foreground and daemonized; a signer killed once is replaced with the same
# keys, killed twice makes signing fail with EIO at once; a refused mount leaves no signer and no
# SQLite side files.
source "$(dirname "$0")/lib.sh"

# scan PID HEX...: one 0/1 per needle: whether its bytes are anywhere in PID's readable memory
# (read in chunks; mappings over 1 GiB, such as a sanitizer's shadow and reserves, are skipped:
# the daemon's own heap and arenas are far smaller).
scan() {
    py3 - "$@" <<'EOF'
import sys
pid = int(sys.argv[1])
needles = [bytes.fromhex(h) for h in sys.argv[2:]]
found = [False] * len(needles)
CHUNK, HUGE = 64 << 20, 1 << 30
with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
    for line in maps:
        f = line.split()
        if "r" not in f[1] or (len(f) > 5 and f[5] in ("[vvar]", "[vsyscall]")):
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        if hi - lo > HUGE:
            continue
        tail = b""
        for at in range(lo, hi, CHUNK):
            try:
                mem.seek(at)
                data = tail + mem.read(min(CHUNK, hi - at))
            except (OSError, ValueError, OverflowError):
                break
            for i, n in enumerate(needles):
                found[i] = found[i] or n in data
            tail = data[-64:]
print(" ".join("1" if x else "0" for x in found))
EOF
}

# The private bytes of the state's keys: the audit seed, the CA key's private scalar (Ed25519:
# the seed; P-256: big-endian) and that scalar reversed (how a BIGNUM holds it on x86).
key_needles() {
    local seed ca
    seed=$(od -An -v -tx1 "$STATE/key" | tr -d ' \n')
    ca=$(openssl pkey -in "$STATE/tls/ca.key" -outform DER | py3 -c 'import sys
d = sys.stdin.buffer.read()
i = d.find(b"\x02\x01\x01\x04\x20")        # ECPrivateKey: version 1, 32-byte key
print((d[i + 5:i + 37] if i >= 0 else d[-32:]).hex())')
    echo "$seed $ca $(py3 -c "print(bytes.fromhex('$ca')[::-1].hex())")"
}

# gone PID: the process has ended (a zombie waiting for init counts as ended).
gone() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ $st == Z* ]]
}

# The memory and process checks on a mounted daemon DPID with signer SPID, key type $1.
check_isolation() {
    local what=$1 needles pub
    check "$what: signer is a separate process" test -n "$SPID"
    [[ -n $SPID ]] || return
    check_eq "$what: signer command line" "$(tr '\0' ' ' < "/proc/$SPID/cmdline")" \
        "conduit-signer --internal-signer $STATE "
    check_eq "$what: signer name" "$(cat "/proc/$SPID/comm")" "conduit-signer"
    needles=$(key_needles)
    pub=$(cat "$MNT/audit/pubkey")
    # shellcheck disable=SC2086
    check_eq "$what: daemon memory holds no private key (audit seed, CA key, CA key reversed)" \
        "$(scan "$DPID" $needles)" "0 0 0"
    check_eq "$what: daemon memory holds the audit public key (the scan works)" \
        "$(scan "$DPID" "$pub")" "1"
    if [[ $(id -u) -eq 0 ]]; then
        check_eq "$what: signer has four fds open" "$(find "/proc/$SPID/fd" -mindepth 1 | wc -l)" 4
        check "$what: fd 3 is its socket" sh -c "readlink /proc/$SPID/fd/3 | grep -q '^socket:'"
        # shellcheck disable=SC2086
        set -- $(scan "$SPID" $needles) 0 0 0
        check_eq "$what: signer memory holds the audit seed and the CA key" \
            "$1 $(( $2 | $3 ))" "1 1"
    else
        echo "SKIP: not root: the signer is not dumpable, its memory is not readable"
    fi
}

# ---- 1. foreground, ed25519: a separate process, no keys in the daemon, gone at unmount ----
cfs_mount
DPID=$CFS_PID
SPID=$(pgrep -P "$DPID" -x conduit-signer)
check "register" mkdir "$S/core"
put "$S/core/upstream" 10.0.1.10:8000
check "leaf issued through the signer" openssl verify -CAfile "$MNT/ca/ca.crt" \
    "$MNT/ca/certs/core.internal.pem"
check "rotation through the signer" rm "$MNT/ca/certs/core.internal.pem"
check "audit append sealed through the signer" \
    sh -c "echo '{\"action\":\"t\",\"status\":\"success\"}' >> '$MNT/audit/audit.log'"
check_jq "the chain verifies" '.ok == true' "$MNT/audit/verify"
check_isolation ed25519
cfs_unmount
check "signer gone after unmount" wait_for 5 gone "$SPID"
check "conduitfs verify offline" "$CONDUITFS" verify --state "$STATE"

# ---- 2. foreground, ecdsa-p256 in a new state; kill -9 of the daemon ----
STATE=$T/state-ecdsa
cfs_mount --key-type ecdsa-p256
DPID=$CFS_PID
SPID=$(pgrep -P "$DPID" -x conduit-signer)
check "register (ecdsa)" mkdir "$S/web"
put "$S/web/upstream" 10.0.1.11:8000
check_jq "ecdsa CA" '.key_type == "ecdsa-p256"' "$MNT/ca/ca.json"
check "ecdsa leaf issued through the signer" openssl verify -CAfile "$MNT/ca/ca.crt" \
    "$MNT/ca/certs/web.internal.pem"
check_isolation ecdsa-p256
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
CFS_PID=
check "no orphan signer after kill -9 of the daemon" wait_for 5 gone "$SPID"
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
check "the chain still verifies after kill -9" "$CONDUITFS" verify --state "$STATE"

# ---- 3. daemonized: the signer is the daemon's sibling, and still dies with it ----
"$CONDUITFS" --no-manage --state "$STATE" "$MNT" 2>>"$T/conduitfs.log" &&
    ok || bad "daemonized mount"
DPID=$(pgrep -f -- "--state $STATE $MNT" | head -1)
SPID=$(pgrep -f -- "--internal-signer $STATE\$" | head -1)
check_eq "one daemon process" "$(pgrep -f -- "--state $STATE $MNT" | wc -l)" "1"
check "daemonized: signer running" test -n "$SPID"
check "daemonized: register" mkdir "$S/api"
put "$S/api/upstream" 10.0.1.12:8000
check "daemonized: leaf issued" test -s "$MNT/ca/certs/api.internal.pem"
check_jq "daemonized: the chain verifies" '.ok == true' "$MNT/audit/verify"
if [[ -n $DPID ]]; then
    # shellcheck disable=SC2046
    check_eq "daemonized: daemon memory holds no private key" \
        "$(scan "$DPID" $(key_needles))" "0 0 0"
    kill -9 "$DPID"
fi
check "daemonized: no orphan signer after kill -9" wait_for 5 gone "$SPID"
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
"$CONDUITFS" --no-manage --state "$STATE" "$MNT" 2>>"$T/conduitfs.log" &&
    ok || bad "daemonized mount again"
SPID=$(pgrep -f -- "--internal-signer $STATE\$" | head -1)
check "clean unmount (daemonized)" fusermount3 -u "$MNT"
check "daemonized: signer gone after unmount" wait_for 5 gone "$SPID"

# ---- 4. a dead signer is replaced once, with the same keys; a second death is EIO at once ----
cfs_mount
SPID=$(pgrep -P "$CFS_PID" -x conduit-signer)
DPID=$CFS_PID
pub=$(cat "$MNT/audit/pubkey")
kill -9 "$SPID"
check "signer killed" wait_for 5 gone "$SPID"
check "rotation works after kill -9 of the signer" timeout 10 rm "$MNT/ca/certs/web.internal.pem"
SPID2=$(pgrep -P "$CFS_PID" -x conduit-signer)
check "a new signer took over" test -n "$SPID2" -a "$SPID2" != "$SPID"
check "the restart is logged" grep -q "starting a new signer" "$T/conduitfs.log"
check "appends seal again" \
    sh -c "echo '{\"action\":\"t\",\"status\":\"success\"}' >> '$MNT/audit/audit.log'"
check_eq "the same audit key" "$(cat "$MNT/audit/pubkey")" "$pub"
check "the leaf is under the same root" openssl verify -CAfile "$MNT/ca/ca.crt" \
    "$MNT/ca/certs/web.internal.pem"
# shellcheck disable=SC2046
check_eq "daemon memory still holds no private key" "$(scan "$DPID" $(key_needles))" "0 0 0"
kill -9 "$SPID2"
check "second signer killed" wait_for 5 gone "$SPID2"
check_fails "then rotation fails with EIO" "Input/output error" \
    timeout 10 rm "$MNT/ca/certs/web.internal.pem"
check_fails "and an audit append fails with EIO" "I/O error" \
    timeout 10 sh -c "echo '{\"action\":\"t\",\"status\":\"success\"}' >> '$MNT/audit/audit.log'"
check_fails "no third signer" "" pgrep -P "$CFS_PID" -x conduit-signer
check "still mounted" mountpoint -q "$MNT"
check "certificates still readable" test -s "$MNT/ca/certs/web.internal.pem"
check_jq "verify needs no signer" '.ok == true' "$MNT/audit/verify"
check "the death is logged" grep -q "every signature fails with EIO" "$T/conduitfs.log"
cfs_unmount

# ---- 5. a refused mount: exit 2, no signer left, no SQLite side files ----
echo '{broken' > "$STATE/services.json"
rc=0
"$CONDUITFS" -f --no-manage --state "$STATE" "$MNT" 2>"$T/refused.err" || rc=$?
check_eq "corrupt services.json refuses the mount" "$rc" "2"
check_eq "no -wal or -shm left" "$(find "$STATE" -name 'capsules.db-*' | wc -l)" "0"
check_fails "no signer left" "" pgrep -f -- "--internal-signer $STATE\$"
finish
