#!/usr/bin/env python3
"""layers.py: the include arrows of the tree point one way (issue 14, issue 16). Usage:
layers.py REPO_ROOT. Prints each problem and exits 1 on any.

- Layers: util <- audit <- core <- monitor <- fs. A file includes headers of its own layer or
  of a lower one, never of a higher one.
- The registry is the model: core/registry.c includes none of the CA service, the gateway, the
  renderer, the prober or the commit pipeline (core/pipeline.c sits above them all).
- Between the .c files of the tree, taking "a.c includes b.h" as an arrow a.c -> b.c (b.h's own
  implementation file), no two files reach each other (no circle)."""
import pathlib
import re
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
    def reach(a):
        seen, todo = set(), [a]
        while todo:
            for b in arrows.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen
    reached = {a: reach(a) for a in arrows}
    for a in sorted(arrows):
        for b in sorted(reached[a]):
            if a < b and a in reached[b]:
                problems.append(f"{a} and {b} reach each other through their headers")
    for p in problems:
        print("FAIL:", p)
    n = sum(len(v) for v in arrows.values())
    print(f"{len(files)} files, {n} arrows between .c files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
