#!/usr/bin/env bash
# test_audit.sh: the audit/ tree and the sealed chain behind it: appends and their capsules, every
# refused operation, tail -f, 8 concurrent appenders, offline verify and tampering with copies,
# repair and refusal at mount, and kill -9 during appends.
source "$(dirname "$0")/lib.sh"
cfs_mount
A=$MNT/audit
LOG=$A/audit.log
ME=$(id -un)

lines() { wc -l < "$STATE/audit.log"; }
head_seq() { jq -r .sequence "$A/head"; }
append() { printf '%s\n' "$1" >> "$LOG"; }
# Append printf FORMAT's output to audit.log with a single write(2).
append_raw() {
    printf "$1" > "$T/raw"
    dd if="$T/raw" of="$LOG" bs=1M oflag=append conv=notrunc status=none
}
# Run python on the capsule database of a state directory: db(DIR) and canon(dict) are defined.
pydb() {
    local dir=$1; shift
    python3 - "$dir" "$@" <<EOF
import hashlib, json, sqlite3, sys
def canon(v): return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
db = sqlite3.connect(sys.argv[1] + "/capsules.db")
$(cat)
db.commit()
EOF
}

# ---- the tree ----
check_eq "audit/ holds four files" "$(ls "$A" | tr '\n' ' ')" "audit.log head pubkey verify "
check_eq "audit.log is 0644" "$(stat -c %a "$LOG")" "644"
check_eq "verify head pubkey are 0444" "$(stat -c %a "$A/verify" "$A/head" "$A/pubkey" | sort -u)" \
    "444"
check_eq "size is the real size" "$(stat -c %s "$LOG")" "$(stat -c %s "$STATE/audit.log")"
check "reads the log" cmp "$LOG" "$STATE/audit.log"
check_eq "state audit.log stays 0600" "$(stat -c %a "$STATE/audit.log")" "600"
der=$({ printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'
        cat "$STATE/key"; } | openssl pkey -inform DER -pubout -outform DER | tail -c 32 |
      od -An -tx1 | tr -d ' \n')
check_eq "pubkey is the key's public half" "$(cat "$A/pubkey")" "$der"
check_eq "pubkey ends in a newline" "$(tail -c 1 "$A/pubkey" | od -An -c | tr -d ' ')" '\n'
check_eq "key is 0600, 32 bytes" "$(stat -c '%a %s' "$STATE/key")" "600 32"

# ---- appends ----
n0=$(lines)
check "append a line" append '{"action":"backup_taken","status":"success","message":"nightly"}'
check_eq "one more line" "$(lines)" "$((n0 + 1))"
check_eq "defaults and the caller" "$(tail -1 "$STATE/audit.log" | jq -c '[.action,.status,
    .message,.user,.details]')" "[\"backup_taken\",\"success\",\"nightly\",\"$ME\",{}]"
check_eq "six keys in log order" "$(tail -1 "$STATE/audit.log" | jq -c keys_unsorted)" \
    '["timestamp","action","status","message","user","details"]'
check "timestamp and user replaced" append '{"timestamp":"2000-01-01T00:00:00Z","user":"mallory",'\
'"action":"restore","status":"failure","details":{"n":1,"ratio":0.1,"tags":["a","é"]}}'
check_eq "user is the caller" "$(tail -1 "$STATE/audit.log" | jq -r .user)" "$ME"
check "timestamp is the daemon's clock" test "$(tail -1 "$STATE/audit.log" | jq -r .timestamp |
    cut -c1-4)" -ge 2025
check_eq "details kept" "$(tail -1 "$STATE/audit.log" | jq -c .details)" \
    '{"n":1,"ratio":0.1,"tags":["a","é"]}'
check "two lines in one write" append_raw \
    '{"action":"two-a","status":"success"}\n{"action":"two-b","status":"success"}\n'
check_eq "both, in order" "$(tail -2 "$STATE/audit.log" | jq -r .action | tr '\n' ' ')" \
    "two-a two-b "
at_zero() { printf '%s\n' '{"action":"at-zero","status":"success"}' |
            dd of="$LOG" conv=notrunc status=none; }
check "a write at offset 0 appends" at_zero
check_eq "appended at the end" "$(tail -1 "$STATE/audit.log" | jq -r .action)" "at-zero"
check_eq "head follows" "$(head_seq)" "$(($(lines) - 1))"
check_eq "signed_by is the key id" "$(jq -r .signed_by "$A/head")" "$(cut -c1-16 "$A/pubkey")"
check_eq "size grows" "$(stat -c %s "$LOG")" "$(stat -c %s "$STATE/audit.log")"
check "line of exactly 64 KiB" python3 -c "
import os; fd = os.open('$LOG', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'{\"action\":\"big\",\"status\":\"success\",\"message\":\"'
         + b'x' * 65488 + b'\"}\n')"

# the capsule of the last user append, and of the daemon's own entry
check_eq "capsule of a user append" "$(pydb "$STATE" <<'PY'
row = db.execute("SELECT data FROM capsules ORDER BY sequence DESC LIMIT 1 OFFSET 1").fetchone()
c = json.loads(row[0]); t = c["execution"]["tool_calls"][0]
print(c["type"], c["domain"], c["trigger"]["type"], c["trigger"]["source"], c["trigger"]["user_id"],
      c["context"]["agent_id"], t["tool"], t["success"], t["result"], c["outcome"]["status"],
      c["context"]["environment"]["hostname"] != "")
PY
)" "system conduit user_request $ME $ME qp-conduit at-zero True None success True"
check_eq "outcome.result is the line" "$(pydb "$STATE" <<'PY'
row = db.execute("SELECT data FROM capsules ORDER BY sequence DESC LIMIT 1 OFFSET 2").fetchone()
print(canon(json.loads(row[0])["outcome"]["result"]))
PY
)" "$(tail -3 "$STATE/audit.log" | head -1 | jq -cS .)"

# ---- refused writes: EINVAL, nothing sealed ----
n1=$(lines); h1=$(head_seq)
good='{"action":"ok","status":"success"}'
long=$(printf 'x%.0s' {1..65489})
bad=('{"action":"a","status":"success","extra":1}' '{"action":"Backup","status":"success"}'
     '{"action":"1a","status":"success"}' '{"action":"","status":"success"}'
     "{\"action\":\"a$(printf 'b%.0s' {1..64})\",\"status\":\"success\"}"
     '{"action":5,"status":"success"}' '{"action":"a","status":"ok"}' '{"action":"a"}'
     '{"status":"success"}' '{"action":"a","status":"success","message":7}'
     '{"action":"a","status":"success","details":[]}'
     '{"action":"a","status":"success","details":null}'
     '{"action":"a","status":"success","timestamp":"2026-01-01 00:00:00"}'
     '{"action":"a","status":"success","timestamp":"2026-01-01T00:00:00.5Z"}'
     '{"action":"a","status":"success","user":""}' '{"action":"a","status":"success","user":7}'
     'hello' '[]' '"x"' '{"action":"a","action":"b","status":"success"}'
     '{"action":"a","status":"success","details":{"k":1,"k":2}}'
     '{"action":"a","status":"success","message":"x\u0000y"}' "$good $good"
     "{\"action\":\"big\",\"status\":\"success\",\"message\":\"$long\"}")
for b in "${bad[@]}"; do
    check_fails "EINVAL: ${b:0:70}" "Invalid argument" append "$b"
done
check_fails "EINVAL: empty line" "Invalid argument" append_raw '\n'
check_fails "EINVAL: blank line" "Invalid argument" append_raw '  \n'
check_fails "EINVAL: good then empty" "Invalid argument" append_raw "$good\n\n"
check_fails "EINVAL: good then bad" "Invalid argument" append_raw "$good\n{}\n"
check_fails "EINVAL: no newline" "Invalid argument" append_raw "$good"
check_fails "EINVAL: bad UTF-8" "Invalid argument" append_raw \
    '{"action":"a","status":"success","message":"\377"}\n'
check_eq "refused writes add no line" "$(lines)" "$n1"
check_eq "refused writes seal nothing" "$(head_seq)" "$h1"

# ---- refused operations: EPERM ----
check_fails "O_TRUNC" "not permitted" sh -c "echo '$good' > '$LOG'"
check_fails "truncate" "not permitted" truncate -s 0 "$LOG"
check_fails "truncate up" "not permitted" truncate -s 1M "$LOG"
check_fails "unlink" "not permitted" rm -f "$LOG"
check_fails "rename" "not permitted" mv "$LOG" "$A/old.log"
check_fails "chmod" "not permitted" chmod 600 "$LOG"
check_fails "hard link" "not permitted" ln "$LOG" "$A/copy"
check_fails "create a file" "not permitted" touch "$A/notes"
check_fails "mkdir" "not permitted" mkdir "$A/x"
check_fails "rmdir audit" "not permitted" rmdir "$A"
for f in verify head pubkey; do
    check_fails "append to $f" "not permitted" sh -c "echo '$good' >> '$A/$f'"
    check_fails "O_TRUNC $f" "not permitted" sh -c "echo x > '$A/$f'"
    check_fails "truncate $f" "not permitted" truncate -s 0 "$A/$f"
    check_fails "unlink $f" "not permitted" rm -f "$A/$f"
done
check_eq "refused operations add no line" "$(lines)" "$n1"
check_eq "log still readable" "$(stat -c %s "$LOG")" "$(stat -c %s "$STATE/audit.log")"

# ---- tail -f sees appends ----
tail -s 0.1 -n 0 -f "$LOG" > "$T/tail" 2>/dev/null &
tail_pid=$!
sleep 0.3
append '{"action":"tailed","status":"success"}'
for _ in $(seq 30); do grep -q tailed "$T/tail" && break; sleep 0.1; done
kill "$tail_pid" 2>/dev/null; wait "$tail_pid" 2>/dev/null
check "tail -f sees the new line" grep -q '"action":"tailed"' "$T/tail"

# ---- 8 concurrent appenders x 200 lines ----
n2=$(lines)
writer() {
    local k=$1
    for i in $(seq 1 200); do
        printf '{"action":"load","status":"success","message":"w%d","details":{"i":%d}}\n' \
            "$k" "$i" >> "$LOG" || echo "fail $k $i" >> "$T/load.err"
    done
}
pids=()
for k in 1 2 3 4 5 6 7 8; do writer "$k" & pids+=($!); done
wait "${pids[@]}"
check_fails "no appender failed" "" test -s "$T/load.err"
check_eq "1600 new lines" "$(($(lines) - n2))" "1600"
check_eq "1600 sealed" "$(head_seq)" "$(($(lines) - 1))"
check_eq "each writer's lines in its order" "$(jq -r 'select(.action=="load") |
    "\(.message) \(.details.i)"' "$STATE/audit.log" | awk '{ if ($2 != last[$1] + 1) bad++;
    last[$1] = $2 } END { print bad + 0, length(last) }')" "0 8"
v=$(cat "$A/verify")
check_eq "verify passes" "$(jq -c '[.ok,.checked,.first_error]' <<<"$v")" \
    '[true,"cryptographic",null]'
check_eq "verify counts every entry" "$(jq .entries <<<"$v")" "$(lines)"
check_eq "verify head" "$(jq -c '[.head_sequence,.head_hash]' <<<"$v")" \
    "$(jq -c '[.sequence,.hash]' "$A/head")"

# ---- offline verify on copies ----
cp -a "$STATE" "$T/copy"
check "verify a copy of a live state" "$CONDUITFS" verify --state "$T/copy"
check "verify with the pinned key" "$CONDUITFS" verify --state "$T/copy" \
    --pubkey "$(cat "$A/pubkey")"
check_fails "verify with another key" "not by this store.s key" "$CONDUITFS" verify --state "$T/copy" \
    --pubkey "$(printf '0%.0s' {1..64})"
# an auditor's copy: the chain and the log, no key file; the pinned public key is enough
mkdir -p "$T/auditor"
cp "$T/copy/capsules.db" "$T/copy/audit.log" "$T/auditor/"
[[ -e "$T/copy/capsules.db-wal" ]] && cp "$T/copy/capsules.db-wal" "$T/auditor/"
check "verify a copy without the key, with the pinned key" "$CONDUITFS" verify \
    --state "$T/auditor" --pubkey "$(cat "$A/pubkey")"
check_fails "without the key and without a pin it cannot" "key" "$CONDUITFS" verify \
    --state "$T/auditor"
cfs_unmount
cp -a "$STATE" "$T/base"
check "verify after unmount" "$CONDUITFS" verify --state "$T/base"
check_eq "verify leaves no files behind" "$(ls "$T/base" | grep -c capsules)" "1"
mkdir -p "$T/home/.config/lab-conduit"
cp -a "$T/base/." "$T/home/.config/lab-conduit/"
check "default state dir" env HOME="$T/home" CONDUIT_APP_NAME=lab-conduit "$CONDUITFS" verify
expect_exit() {   # expect_exit DESCRIPTION CODE TEXT COMMAND...
    local what=$1 code=$2 text=$3; shift 3
    "$@" >"$T/out" 2>&1
    local rc=$?
    check_eq "$what: exit $code" "$rc" "$code"
    check "$what: says '$text'" grep -q -- "$text" "$T/out"
    check_eq "$what: one line" "$(wc -l < "$T/out")" "1"
}
expect_exit "usage: unknown option" 2 "unknown option" "$CONDUITFS" verify --bogus
expect_exit "usage: missing value" 2 "needs a value" "$CONDUITFS" verify --state
expect_exit "usage: extra argument" 2 "unexpected" "$CONDUITFS" verify --state "$T/base" x
mkdir "$T/empty"
expect_exit "no database" 1 "capsules.db" "$CONDUITFS" verify --state "$T/empty"
check_eq "no database: nothing created" "$(ls -A "$T/empty" | wc -l)" "0"
cp -a "$T/base" "$T/nokey"; rm "$T/nokey/key"
expect_exit "no key" 1 "key" "$CONDUITFS" verify --state "$T/nokey"
check_fails "no key: none created" "" test -e "$T/nokey/key"

# tamper with copies: each must fail naming the sequence
tamper() {   # tamper NAME SEQ PYTHON-OR-SHELL...
    local name=$1 seq=$2; shift 2
    rm -rf "$T/t"; cp -a "$T/base" "$T/t"
    "$@"
    expect_exit "tamper $name" 1 "sequence $seq:" "$CONDUITFS" verify --state "$T/t"
}
edit_data() { pydb "$T/t" <<'PY'
d = db.execute("SELECT data FROM capsules WHERE sequence = 5").fetchone()[0]
d = d.replace('"conduit"', '"evil"', 1)
db.execute("UPDATE capsules SET data = ? WHERE sequence = 5", (d,))
PY
}
edit_rehash() { pydb "$T/t" <<'PY'
c = json.loads(db.execute("SELECT data FROM capsules WHERE sequence = 5").fetchone()[0])
c["outcome"]["summary"] = "nothing happened"
d = canon(c)
db.execute("UPDATE capsules SET data = ?, hash = ? WHERE sequence = 5",
           (d, hashlib.sha3_256(d.encode()).hexdigest()))
PY
}
delete_row() { pydb "$T/t" <<<'db.execute("DELETE FROM capsules WHERE sequence = 5")'; }
swap_rows() { pydb "$T/t" <<'PY'
db.execute("UPDATE capsules SET sequence = -1 WHERE sequence = 5")
db.execute("UPDATE capsules SET sequence = 5 WHERE sequence = 6")
db.execute("UPDATE capsules SET sequence = 6 WHERE sequence = -1")
PY
}
last=$(($(wc -l < "$T/base/audit.log") - 1))
tamper "data field edited" 5 edit_data
tamper "hash edited with its data" 5 edit_rehash
tamper "middle row deleted" 5 delete_row
tamper "two rows swapped" 5 swap_rows
tamper "log line edited" 5 sed -i '6s/"status":"success"/"status":"failure"/' "$T/t/audit.log"
cut_log() { head -n -3 "$T/t/audit.log" > "$T/cut"; cat "$T/cut" > "$T/t/audit.log"; }
tamper "log truncated" $((last - 2)) cut_log
tamper "log line added" $((last + 1)) sh -c "tail -1 '$T/t/audit.log' >> '$T/t/audit.log'"
tamper "log lines swapped" 7 sed -i '8{h;d};9G' "$T/t/audit.log"
tamper "key replaced" 0 sh -c "head -c 32 /dev/urandom > '$T/t/key'"

# ---- at mount: repair of trailing lines, refusal of anything else ----
head -n -3 "$T/base/audit.log" > "$STATE/audit.log"
tail -1 "$T/base/audit.log" | head -c 40 >> "$STATE/audit.log"
cfs_mount
# the rebuilt lines, then this mount's own conduit_mount entry
n=$(wc -l < "$T/base/audit.log")
check_eq "missing trailing lines rebuilt" "$(lines)" "$((n + 1))"
check_eq "rebuilt lines equal the lost ones" "$(head -n "$n" "$STATE/audit.log" | tail -3 |
    jq -cS .)" "$(tail -3 "$T/base/audit.log" | jq -cS .)"
check_eq "then the mount's own entry" "$(tail -1 "$STATE/audit.log" | jq -r .action)" \
    "conduit_mount"
check_eq "verify passes after repair" "$(jq .ok "$A/verify")" "true"
cfs_unmount
check "offline verify passes after repair" "$CONDUITFS" verify --state "$STATE"

refuse() {   # refuse NAME TEXT: mounting $T/t must exit 2 with one line saying TEXT
    "$CONDUITFS" -f --state "$T/t" "$MNT" >"$T/out" 2>&1
    check_eq "refused ($1): exit 2" "$?" "2"
    check "refused ($1): says '$2'" grep -q -- "$2" "$T/out"
    check_eq "refused ($1): one line" "$(wc -l < "$T/out")" "1"
    check "refused ($1): not mounted" sh -c "! mountpoint -q '$MNT'"
}
rm -rf "$T/t"; cp -a "$T/base" "$T/t"
sed -i '6s/"status":"success"/"status":"failure"/' "$T/t/audit.log"
refuse "log line edited" "sequence 5:"
rm -rf "$T/t"; cp -a "$T/base" "$T/t"; delete_row
refuse "row deleted" "sequence 5:"
rm -rf "$T/t"; cp -a "$T/base" "$T/t"; rm "$T/t/key"
refuse "key missing" "signing key"
check_fails "key missing: none created" "" test -e "$T/t/key"
rm -rf "$T/t"; mkdir "$T/t"; python3 -c "import sqlite3
sqlite3.connect('$T/t/capsules.db').execute('CREATE TABLE services (name TEXT)')"
refuse "foreign database" "holds table services but no capsules table; not a CPS capsule store"
rm -rf "$T/t"; mkdir "$T/t"; head -c 4096 /dev/urandom > "$T/t/capsules.db"
refuse "not a database" "is not an SQLite database"

# an audit.log written before the chain existed is sealed as it stands
rm -rf "$T/t"; mkdir -m 700 "$T/t"; head -5 "$T/base/audit.log" > "$T/t/audit.log"
cp "$T/t/audit.log" "$T/legacy"
STATE=$T/t cfs_mount
check_eq "legacy log: sealed" "$(jq -c '[.ok,.entries]' "$A/verify")" \
    "[true,$(wc -l < "$T/t/audit.log")]"
check "legacy log: lines unchanged" cmp "$T/legacy" <(head -5 "$T/t/audit.log")
cfs_unmount

# ---- kill -9 during appends ----
cfs_mount
crasher() {
    local k=$1
    for i in $(seq 1 2000); do
        printf '{"action":"crash","status":"success","message":"c%d-%d"}\n' "$k" "$i" \
            >> "$LOG" 2>/dev/null || return
        echo "c$k-$i" >> "$T/acked.$k"
    done
}
pids=()
for k in 1 2 3 4; do crasher "$k" 2>/dev/null & pids+=($!); done
sleep 0.7
kill -9 "$CFS_PID"
wait "${pids[@]}" 2>/dev/null
wait "$CFS_PID" 2>/dev/null
CFS_PID=
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
check "some appends were acknowledged" test -s "$T/acked.1"
cfs_mount
check_eq "verify passes after kill -9" "$(jq -c '[.ok,.first_error]' "$A/verify")" '[true,null]'
jq -r 'select(.action=="crash") | .message' "$STATE/audit.log" | sort > "$T/present"
cat "$T"/acked.* | sort > "$T/acked"
check_eq "every acknowledged append is there" "$(comm -23 "$T/acked" "$T/present" | wc -l)" "0"
check_eq "none twice" "$(uniq -d "$T/present" | wc -l)" "0"
check_eq "lines match capsules" "$(head_seq)" "$(($(lines) - 1))"
cfs_unmount
check "offline verify after kill -9" "$CONDUITFS" verify --state "$STATE"
finish
