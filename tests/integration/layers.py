#!/usr/bin/env python3
"""layers.py: the include arrows of the tree point one way (issue 14, issue 16). Usage:
layers.py REPO_ROOT. Prints each problem and exits 1 on any.

- Layers: util <- audit <- core <- monitor <- fs. A file includes headers of its own layer or
  of a lower one, never of a higher one.
- The registry is the model: core/registry.c includes none of the CA service, the gateway, the
  renderer, the prober or the commit pipeline (core/pipeline.c sits above them all).
- Between the .c files of the tree, taking "a.c includes b.h" as an arrow a.c -> b.c (b.h's own
  implementation file), no two files reach each other (no circle).
- The same two rules for calls, read from the object files the build made (BUILD_DIR, given as
  the second argument, or skipped with a line saying so when it has none): an arrow a.c -> b.c
  is a name a.c's object uses and b.c's object alone defines (nm), whatever header declares it.
  A name reached through a header of another file (ca.h declaring what catypes.c defines) is
  seen here, and an include-only reading misses it."""
import pathlib
import re
import subprocess
import sys

LAYERS = ["util", "audit", "core", "monitor", "fs"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
MODEL_MUST_NOT = {"core/casvc.h", "core/gateway.h", "core/render.h", "core/health.h",
                  "core/pipeline.h", "core/supervisor.h"}


def main():
    root = pathlib.Path(sys.argv[1])
    files = {}
    for layer in LAYERS:
        for p in sorted((root / layer).glob("*.[ch]")):
            files[f"{layer}/{p.name}"] = INCLUDE.findall(p.read_text())
    problems = []
    for f, incs in files.items():
        lf = LAYERS.index(f.split("/")[0])
        for inc in incs:
            top = inc.split("/")[0]
            if top in LAYERS and LAYERS.index(top) > lf:
                problems.append(f"{f} includes {inc}: an arrow from {LAYERS[lf]}/ up to {top}/")
    for inc in files.get("core/registry.c", []):
        if inc in MODEL_MUST_NOT:
            problems.append(f"core/registry.c includes {inc}: the registry is the model")
    # arrows between .c files through their headers
    arrows = {}
    for f, incs in files.items():
        if not f.endswith(".c"):
            continue
        own = f[:-2] + ".h"
        arrows[f] = {i[:-2] + ".c" for i in incs
                     if i.endswith(".h") and i != own and i[:-2] + ".c" in files}
    problems += circles(arrows, "through their headers")
    ncalls = None
    if len(sys.argv) > 2:
        calls = call_arrows(root, pathlib.Path(sys.argv[2]))
        if calls is None:
            print(f"SKIP calls: no object files of util/, audit/, core/, monitor/, fs/ under "
                  f"{sys.argv[2]}/CMakeFiles")
        else:
            ncalls = sum(len(v) for v in calls.values())
            for a in sorted(calls):
                la = LAYERS.index(a.split("/")[0])
                for b in sorted(calls[a]):
                    lb = LAYERS.index(b.split("/")[0])
                    if lb > la:
                        problems.append(f"{a} calls {b} ({', '.join(sorted(calls[a][b])[:4])}):"
                                        f" an arrow from {LAYERS[la]}/ up to {LAYERS[lb]}/")
            problems += circles({a: set(v) for a, v in calls.items()}, "through calls")
    for p in problems:
        print("FAIL:", p)
    n = sum(len(v) for v in arrows.values())
    calls_text = f", {ncalls} call arrows" if ncalls is not None else ""
    print(f"{len(files)} files, {n} arrows between .c files{calls_text}, "
          f"{len(problems)} problems")
    return 1 if problems else 0


def circles(arrows, how):
    """Each pair of files that reach each other along arrows (a dict file -> set of files)."""
    def reach(a):
        seen, todo = set(), [a]
        while todo:
            for b in arrows.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen
    reached = {a: reach(a) for a in arrows}
    return [f"{a} and {b} reach each other {how}"
            for a in sorted(arrows) for b in sorted(reached[a]) if a < b and a in reached.get(b, ())]


def call_arrows(root, build):
    """{a.c: {b.c: {names}}} from the objects of the tree's .c files under build/CMakeFiles (one
    object per source; the libraries' and the daemon's), or None when there are none."""
    objs = {}
    for o in sorted(build.glob("CMakeFiles/*.dir/*/*.c.o")):
        rel = f"{o.parent.name}/{o.name[:-2]}"
        if rel.split("/")[0] in LAYERS and (root / rel).is_file() and rel not in objs:
            objs[rel] = o
    if not objs:
        return None
    defined, used = {}, {}
    for rel, o in objs.items():
        out = subprocess.run(["nm", "-g", str(o)], capture_output=True, text=True,
                             check=True).stdout
        used[rel] = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                used[rel].add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDBRVWCG":
                defined.setdefault(parts[2], set()).add(rel)
    calls = {}
    for a, names in used.items():
        calls[a] = {}
        for name in names:
            owners = defined.get(name, set())
            if len(owners) == 1 and a not in owners:
                calls[a].setdefault(next(iter(owners)), set()).add(name)
    return calls


if __name__ == "__main__":
    sys.exit(main())
