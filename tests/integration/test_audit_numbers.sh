#!/usr/bin/env bash
# test_audit_numbers.sh: the portable subset of audit details, as a table (issue 15). Every kind
# of number or keys that the two CPS references canonicalize differently (2.0, 1e-05 and
# 0.00001, 1e16, 1e+20, -0.0, 9007199254740993, keys mixing U+10000 and up with U+E000..U+FFFF,
# nested in arrays and objects) is refused with EINVAL and its reason, sealing none of the append
# but one change_refused failure entry (path, caller, reason) and one log line; every value both
# agree on (0.1, 4.35, 1e+22, small integers, 2^53-1, strings with escapes, non-ASCII, U+2028,
# booleans, null, all-BMP or all-astral keys) is sealed, in its shortest form (4.35, never
# 4.3499999999999996), in the log line and in the capsule. A loop of refused appends logs a
# bounded number of lines. The chain still verifies.
source "$(dirname "$0")/lib.sh"
cfs_mount
LOG=$MNT/audit/audit.log
me=$(id -un)

py3 - "$LOG" "$STATE/audit.log" "$STATE/capsules.db" "$me" > "$T/table" <<'EOF'
import errno, json, os, sqlite3, sys
log, state_log, db, me = sys.argv[1:5]
# (details as written, the reason the refusal must give)
REFUSED = [
    ('{"v":2.0}', 'details.v: an integral real (Python writes 2.0, JavaScript 2)'),
    ('{"v":-3.0}', 'details.v: an integral real (Python writes -3.0, JavaScript -3)'),
    ('{"v":1e-05}', 'details.v: a real in exponent form for one reference only (Python writes '
                    '1e-05, JavaScript 0.00001)'),
    ('{"v":0.00001}', '(Python writes 1e-05, JavaScript 0.00001)'),
    ('{"v":0.000001}', '(Python writes 1e-06, JavaScript 0.000001)'),
    ('{"v":1.5e-7}', '(Python writes 1.5e-07, JavaScript 1.5e-7)'),
    ('{"v":1e16}', '(Python writes 1e+16, JavaScript 10000000000000000)'),
    ('{"v":1e+20}', '(Python writes 1e+20, JavaScript 100000000000000000000)'),
    ('{"v":123456789012345678901.0}',
     '(Python writes 1.2345678901234568e+20, JavaScript 123456789012345680000)'),
    ('{"v":-0.0}', 'details.v: -0.0 (Python writes -0.0, JavaScript 0)'),
    ('{"v":9007199254740993}', 'details.v: an integer beyond +-(2^53-1) (Python writes '
                               '9007199254740993, JavaScript 9007199254740992)'),
    ('{"v":-9007199254740992}', 'details.v: an integer beyond +-(2^53-1)'),
    ('{"k":{"\\ud800\\udc00":1,"\\ue000":2}}',
     'details.k: keys that mix code points from U+10000 up with U+E000..U+FFFF (JavaScript '
     'sorts them by UTF-16 code unit, Python by code point)'),
    ('{"\\ud83d\\ude00":1,"\\uffff":2}', 'details: keys that mix code points'),
    ('{"a":[1,{"b":[0.5,2.0]}]}', 'details.a[1].b[1]: an integral real'),
    ('{"a":[[[-0.0]]]}', 'details.a[0][0][0]: -0.0'),
    ('{"a":{"b":{"c":1e-7}}}', 'details.a.b.c: a real in exponent form'),
    ('{"a":[{"\\ud83d\\ude00":1,"\\uf8ff":1}]}', 'details.a[0]: keys that mix code points'),
]
# (details as written, the details text the log line must hold)
ACCEPTED = [
    ('{"v":0.1}', '{"v":0.1}'),
    ('{"v":4.35}', '{"v":4.35}'),
    ('{"v":0.30000000000000004}', '{"v":0.30000000000000004}'),
    ('{"v":1e+22}', '{"v":1e+22}'),
    ('{"v":1e21}', '{"v":1e+21}'),
    ('{"v":-2.5e300}', '{"v":-2.5e+300}'),
    ('{"v":0.0001}', '{"v":0.0001}'),
    ('{"v":123456.789}', '{"v":123456.789}'),
    ('{"v":0,"w":-0,"x":42,"y":-17}', '{"v":0,"w":0,"x":42,"y":-17}'),
    ('{"v":9007199254740991,"w":-9007199254740991}',
     '{"v":9007199254740991,"w":-9007199254740991}'),
    ('{"v":"tab\\t quote\\" backslash\\\\ ctl\\u001f"}',
     '{"v":"tab\\t quote\\" backslash\\\\ ctl\\u001F"}'),
    ('{"v":"caf\\u00e9 \\u65e5 \\ud83d\\ude00 \\u2028"}',
     '{"v":"caf\\u00E9 \\u65E5 \\uD83D\\uDE00 \\u2028"}'),
    ('{"v":true,"w":false,"x":null}', '{"v":true,"w":false,"x":null}'),
    ('{"\\ue000":1,"a":2,"\\uffff":3}', '{"\\uE000":1,"a":2,"\\uFFFF":3}'),
    ('{"\\ud83d\\ude00":1,"\\ud800\\udc00":2}', '{"\\uD83D\\uDE00":1,"\\uD800\\uDC00":2}'),
    ('{"a":[1,{"b":[0.5,{"c":4.35}]}],"d":{}}', '{"a":[1,{"b":[0.5,{"c":4.35}]}],"d":{}}'),
]


def append(text):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def lines():
    with open(state_log, encoding="utf-8") as f:
        return f.read().splitlines()


def result(ok, what):
    print(("PASS " if ok else "FAIL ") + what)


for i, (det, why) in enumerate(REFUSED):
    before = lines()
    rc = append('{"action":"bad_%d","status":"success","details":%s}\n' % (i, det))
    new = lines()[len(before):]
    result(rc == errno.EINVAL, f"refused {det}: errno {rc}")
    e = json.loads(new[-1]) if len(new) == 1 else {}
    d = e.get("details", {})
    result(e.get("action") == "change_refused" and e.get("status") == "failure"
           and e.get("user") == me and d.get("path") == "audit/audit.log"
           and d.get("operation") == f"bad_{i}" and d.get("error") == "Invalid argument",
           f"refused {det}: one change_refused entry: {new}")
    result(d.get("reason", "").startswith("line 1: not portable, ") and why in d["reason"]
           and e.get("message", "").startswith("Refused audit/audit.log: line 1"),
           f"refused {det}: reason [{d.get('reason')}] holds [{why}]")

# two lines, the second refused: neither is sealed
before = lines()
rc = append('{"action":"first_ok","status":"success","details":{"v":1}}\n'
            '{"action":"second_bad","status":"success","details":{"v":2.0}}\n')
new = lines()[len(before):]
result(rc == errno.EINVAL and len(new) == 1 and "first_ok" not in new[0]
       and json.loads(new[0])["details"]["reason"].startswith("line 2: not portable, details.v"),
       f"a write whose second line is refused seals only the refusal: {new}")

for i, (det, want) in enumerate(ACCEPTED):
    rc = append('{"action":"ok_%d","status":"success","details":%s}\n' % (i, det))
    last = lines()[-1]
    got = last[last.index('"details":') + 10:-1] if '"details":' in last else last
    result(rc == 0 and f'"action":"ok_{i}"' in last and got == want,
           f"accepted {det}: errno {rc}, log details {got} want {want}")

# nothing refused reached the chain; the accepted values are sealed as the log shows them
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
sealed = {}
for (data,) in con.execute("SELECT data FROM capsules ORDER BY sequence"):
    r = json.loads(data)["outcome"]["result"]
    sealed[r["action"]] = data
result(not any(a.startswith("bad_") or a in ("first_ok", "second_bad") for a in sealed),
       "no refused line is sealed")
for i, (det, want) in enumerate(ACCEPTED):
    data = sealed.get(f"ok_{i}", "")
    canon = json.dumps(json.loads(want), sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False)
    result(f'"details":{canon}' in data, f"capsule of {det} holds {canon}")
EOF
while read -r verdict what; do
    if [[ $verdict == PASS ]]; then ok; else bad "$what"; fi
done < "$T/table"
check_eq "table rows checked" "$(wc -l < "$T/table")" "$((18 * 3 + 1 + 16 + 1 + 16))"

# the reason reaches the daemon's log, one line per refusal
check "log line of a refusal" grep -q "audit: refused an append to audit/audit.log by $me: \
line 1: not portable, details.v: an integral real (Python writes 2.0, JavaScript 2)" \
    "$T/conduitfs.log"

# a loop of refused appends: each is sealed as a refusal, the log stays bounded
lines0=$(wc -l < "$STATE/audit.log")
log0=$(wc -l < "$T/conduitfs.log")
py3 - "$LOG" <<'EOF'
import os, sys
for i in range(300):
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b'{"action":"loop","status":"success","details":{"v":2.0}}\n')
    except OSError:
        pass
    os.close(fd)
EOF
check_eq "300 refusals sealed" "$(($(wc -l < "$STATE/audit.log") - lines0))" 300
logged=$(($(wc -l < "$T/conduitfs.log") - log0))
check "refusals log at most 10 lines a second ($logged)" test "$logged" -lt 150

cfs_unmount
check "verify after the appends" "$CONDUITFS" verify --state "$STATE"
check "no portability warning on a chain conduitfs sealed" \
    test -z "$("$CONDUITFS" verify --state "$STATE" 2>&1 >/dev/null)"
finish
