#!/usr/bin/env python3
"""ts_canon.py: a second CPS 1.0 canonicalizer that follows the TypeScript reference's rules, to
check that what conduitfs seals verifies under it too, byte for byte.

The TypeScript reference reads a capsule with JSON.parse (every number becomes a double) and
writes it with JSON.stringify's number form (Number::toString: the shortest digits that read
back the same, positional from 1e-6 up to below 1e21, else "1e-7" / "1e+21"; an integral value
without ".0"; -0 as "0"), keys sorted by UTF-16 code unit, no whitespace, literal UTF-8 (only '"',
'\\' and C0 controls escaped). The float-typed fields reasoning.confidence and
reasoning.options[].feasibility get ".0" when integral, as the golden vectors require. Nothing
here is shared with audit/canon.c (which follows the Python reference).

Usage:
  ts_canon.py golden VECTORS.json   every golden vector's canonical_json and sha3_256_hash
  ts_canon.py chain capsules.db     every sealed capsule: the canonical bytes of its parsed data
                                    equal data, and SHA3-256 of them equals the hash column
  ts_canon.py value JSON            the canonical form of one JSON text (for the table tests)
Prints what it checked and each mismatch; exits 1 on any."""
import hashlib
import json
import re
import sqlite3
import sys

REPR = re.compile(r"(\d+)(?:\.(\d+))?(?:e([+-]\d+))?")


def js_number(x, float_field=False):
    """x (a float) as JavaScript's Number::toString writes it."""
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "0.0" if float_field else "0"
    sign = "-" if x < 0 else ""
    m = REPR.fullmatch(repr(abs(x)))        # repr: the shortest round-trip digits
    ip, fp, e = m.group(1), m.group(2) or "", int(m.group(3) or 0)
    digits = (ip + fp).lstrip("0")
    exp10 = e - len(fp)                     # value = int(digits) * 10^exp10
    stripped = digits.rstrip("0")
    exp10 += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + exp10                           # value = 0.DIGITS * 10^n
    if k <= n <= 21:
        out = digits + "0" * (n - k) + (".0" if float_field else "")
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        ex = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("-" if ex < 0 else "+") \
            + str(abs(ex))
    return sign + out


def js_string(s):
    """s as JSON.stringify writes it."""
    out = ['"']
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}
    for ch in s:
        c = ord(ch)
        if ch in short:
            out.append(short[ch])
        elif c < 0x20 or 0xD800 <= c <= 0xDFFF:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def utf16_key(s):
    """Sort key: the UTF-16 code units of s (big-endian bytes compare as the units do)."""
    return s.encode("utf-16-be", "surrogatepass")


def canon(v, role="plain"):
    """The canonical JSON text of v (parsed as JSON.parse would) under the TypeScript rules.
    role tracks the capsule's float-typed fields."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return js_number(v, role == "float")
    if isinstance(v, str):
        return js_string(v)
    if isinstance(v, list):
        sub = "option" if role == "options" else "plain"
        return "[" + ",".join(canon(x, sub) for x in v) + "]"
    if isinstance(v, dict):
        parts = []
        for key in sorted(v, key=utf16_key):
            child = "plain"
            if role == "root" and key == "reasoning":
                child = "reasoning"
            elif role == "reasoning" and key == "confidence":
                child = "float"
            elif role == "reasoning" and key == "options":
                child = "options"
            elif role == "option" and key == "feasibility":
                child = "float"
            parts.append(js_string(key) + ":" + canon(v[key], child))
        return "{" + ",".join(parts) + "}"
    raise TypeError(type(v))


def js_parse(text):
    """JSON.parse: every number a double."""
    return json.loads(text, parse_int=lambda s: float(int(s)), parse_float=float)


def js_value(v):
    """A Python value as JSON.parse would give it (ints become doubles)."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, float)):
        return v
    if isinstance(v, int):
        return float(v)
    if isinstance(v, list):
        return [js_value(x) for x in v]
    return {k: js_value(x) for k, x in v.items()}


def sha3(b):
    return hashlib.sha3_256(b).hexdigest()


def golden(path):
    with open(path, encoding="utf-8") as f:
        fixtures = json.load(f)["fixtures"]
    bad = 0
    for fx in fixtures:
        got = canon(js_value(fx["capsule_dict"]), "root").encode("utf-8")
        if got != fx["canonical_json"].encode("utf-8") or sha3(got) != fx["sha3_256_hash"]:
            bad += 1
            print(f"golden {fx['name']}: differs\n got  {got[:300]!r}\n want "
                  f"{fx['canonical_json'][:300]!r}")
    print(f"golden vectors: {len(fixtures) - bad} of {len(fixtures)} reproduced")
    return bad == 0


def chain(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = db.execute("SELECT sequence, data, hash FROM capsules ORDER BY sequence").fetchall()
    bad, actions = 0, {}
    for seq, data, want_hash in rows:
        got = canon(js_parse(data), "root").encode("utf-8")
        raw = data.encode("utf-8")
        tool = json.loads(data)["execution"]["tool_calls"][0]["tool"]
        actions[tool] = actions.get(tool, 0) + 1
        if got != raw or sha3(got) != want_hash:
            bad += 1
            i = next((j for j in range(min(len(got), len(raw))) if got[j] != raw[j]),
                     min(len(got), len(raw)))
            print(f"capsule {seq} ({tool}): the TypeScript rules give other bytes at {i}:\n"
                  f" ts  ...{got[max(0, i - 60):i + 60]!r}\n c   ...{raw[max(0, i - 60):i + 60]!r}")
    print(f"chain: {len(rows) - bad} of {len(rows)} capsules canonicalize alike; actions: "
          + ", ".join(f"{a} x{n}" for a, n in sorted(actions.items())))
    return bad == 0 and len(rows) > 0


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "golden":
        return 0 if golden(arg) else 1
    if mode == "chain":
        return 0 if chain(arg) else 1
    if mode == "value":
        sys.stdout.write(canon(js_parse(arg)) + "\n")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
