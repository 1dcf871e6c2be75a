#!/usr/bin/env bash
# test_audit_numbers.sh: numbers in audit details keep their value and their shortest form: an
# appended 4.35 reads 4.35 in the audit.log line and in the sealed capsule (the form Python's
# repr gives, which CPS canonical JSON requires), never 4.3499999999999996.
source "$(dirname "$0")/lib.sh"
cfs_mount
LOG=$MNT/audit/audit.log

printf '%s\n' '{"action":"x","status":"success","details":{"v":4.35}}' >> "$LOG"
IN='"a":0.1,"b":1e-05,"c":1e16,"d":2.0,"e":-0.0,"f":0.30000000000000004,"g":123456789012345678'
printf '%s\n' '{"action":"y","status":"success","details":{'"$IN"',"h":1.5e-7}}' >> "$LOG"
# what Python's json.dumps writes for them
OUT='"a":0.1,"b":1e-05,"c":1e+16,"d":2.0,"e":-0.0,"f":0.30000000000000004,"g":123456789012345678'
OUT="{$OUT,\"h\":1.5e-07}"

# the log line as the mount shows it and as the state directory holds it
for src in "$LOG" "$STATE/audit.log"; do
    check_eq "log line of 4.35 ($src)" "$(grep '"action":"x"' "$src" | grep -o '"details":.*')" \
        '"details":{"v":4.35}}'
    check_eq "log line of other reals ($src)" \
        "$(grep '"action":"y"' "$src" | grep -o '"details":.*')" \
        "\"details\":$OUT}"
done

# the sealed capsules: the details as stored, text and value
py3 - "$STATE/capsules.db" > "$T/caps" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (data,) in db.execute("SELECT data FROM capsules ORDER BY sequence"):
    c = json.loads(data)
    r = c["outcome"]["result"]
    if r.get("action") in ("x", "y"):
        i = data.index('"details":', data.index('"outcome"'))
        print(r["action"], repr(r["details"]), data[i:data.index("}", i) + 1])
EOF
check_eq "capsule of 4.35" "$(grep '^x ' "$T/caps")" "x {'v': 4.35} \"details\":{\"v\":4.35}"
check_eq "capsule of other reals" "$(grep '^y ' "$T/caps")" \
    "y {'a': 0.1, 'b': 1e-05, 'c': 1e+16, 'd': 2.0, 'e': -0.0, 'f': 0.30000000000000004, \
'g': 123456789012345678, 'h': 1.5e-07} \"details\":$OUT"

# the log and the chain still agree (offline verify reads both)
cfs_unmount
check "verify after the appends" "$CONDUITFS" verify --state "$STATE"
finish
