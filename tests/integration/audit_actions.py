#!/usr/bin/env python3
"""audit_actions.py: every audit action the daemon's code can emit is listed in the "Audit
actions" table of docs/filesystem.md, and every action listed there can still be emitted.
Usage: audit_actions.py REPO_ROOT. Prints the actions found and each mismatch; exits 1 on any.

Calls are read in core/, monitor/ and fs/ (audit/ only seals what they give it). An action is
the first argument of audit_log(), audit_log_event(), or of any function whose first parameter is
`const char *action` (a wrapper), or a literal assigned to a member called `action` (an entry
built for a batch: `it->action = "..."`). Every string literal there is an action the code can
emit (`fail ? "a" : "b"` gives both). A first argument without a literal must be an `action`
passed on (`action`, `e->action`); anything else fails the check, so that an action can always be
traced to a literal here."""
import pathlib
import re
import sys

MODULES = ("core", "monitor", "fs")
WRAPPER_DEF = re.compile(r"\b([A-Za-z_]\w*)\s*\(\s*const\s+char\s*\*\s*action\s*[,)]")
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
ASSIGNED = re.compile(r"(?:->|\.)\s*action\s*=(?!=)\s*([^;,}]*)[;,}]")
PASS_ON = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*(?:->|\.)\s*)?action\s*$")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def first_arg(text, start):
    """The text of the first argument of the call whose '(' is at start."""
    depth, i, in_str = 0, start, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        elif c == "," and depth == 1:
            return text[start + 1:i]
        i += 1
    return text[start + 1:]


def main():
    root = pathlib.Path(sys.argv[1])
    sources = {p: strip_comments(p.read_text()) for m in MODULES for p in (root / m).glob("*.c")}
    wrappers = {"audit_log", "audit_log_event"}
    for p in (root / "audit").glob("*.c"):
        if p.name == "audit.c":
            wrappers.update(WRAPPER_DEF.findall(strip_comments(p.read_text())))
    for text in sources.values():
        wrappers.update(WRAPPER_DEF.findall(text))
    call = re.compile(r"\b(" + "|".join(sorted(wrappers)) + r")\s*\(")
    found, problems = {}, []
    for path, text in sources.items():
        for m in call.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[max(0, m.start() - 40):m.start()]
            arg = first_arg(text, m.end() - 1)
            if re.search(r"\b(?:int|void|static|char)\s*\**\s*$", before) or \
                    re.match(r"\s*const\s+char\s*\*", arg):
                continue        # a definition or declaration, not a call
            lits = LITERAL.findall(arg)
            if not lits:
                if not PASS_ON.match(arg):
                    problems.append(f"{path.relative_to(root)}:{line}: {m.group(1)}() with an "
                                    f"action that is no literal: {arg.strip()[:60]}")
                continue
            for lit in lits:
                found.setdefault(lit, f"{path.relative_to(root)}:{line}")
        for m in ASSIGNED.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            for lit in LITERAL.findall(m.group(1)):
                found.setdefault(lit, f"{path.relative_to(root)}:{line}")
    doc = (root / "docs" / "filesystem.md").read_text()
    table = doc.split("## Audit actions", 1)[1] if "## Audit actions" in doc else ""
    listed = set(re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|", table, flags=re.M))
    for action in sorted(found):
        print(f"action {action} ({found[action]})")
        if action not in listed:
            problems.append(f"{found[action]}: action {action} is not in the table of "
                            "docs/filesystem.md (## Audit actions)")
    for action in sorted(listed - set(found)):
        problems.append(f"docs/filesystem.md lists action {action}, which no code emits")
    for p in problems:
        print("FAIL: " + p)
    print(f"{len(found)} actions in the code, {len(listed)} in the table, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
