#!/usr/bin/env python3
"""model_fuzz.py: a model-based fuzz of the mount's operation table from several processes.

usage: model_fuzz.py MNT STATE --phase model|churn [--seed N] [--seconds S] [--workers W]

Forked workers make random mkdir, rmdir, open, pread, pwrite, ftruncate, fstat, unlink (which
changes no value) and close calls on services/NAME/ATTR and monitor/NAME/target.json, keeping handles open across
the removal of their file or directory (from the same or another process).

- model: each worker owns its names (w<k>-0..2, t<k>), so it predicts every result: the errno of
  each call (ESTALE exactly for a handle whose file or directory was removed after it was
  opened), the bytes each pread returns (the snapshot taken at open, also once stale), and at the
  end the registry (services.json), what the mount shows and the target table must equal the
  union of the models. Other workers read its names through their own handles meanwhile.
- churn: all workers share five service names and two targets; every call must end with one of
  the errnos documented for it, preads never fail and never change, and at the end the mount,
  the files and services.json agree.

The seed (printed; random unless given) makes each worker's choices reproducible. The rendered
configs are checked against services.json by the caller (render_check.py). Prints one line per
difference and "model_fuzz: ok ..." or "model_fuzz: FAILED ..."; exit status 0 or 1."""
import argparse
import errno
import json
import os
import random
import shutil
import sys
import tempfile
import time

ATTRS = ["upstream", "domain", "health_check", "mode", "monitoring"]
WATTRS = ["upstream", "domain", "health_check", "mode"]   # the ones the fuzz writes
MON_FIXED = {"health.json", "metrics.prom", "local"}
MAX_FDS = 6


def defaults(name):
    return {"upstream": "", "domain": name + ".internal", "health_check": "/health",
            "mode": "proxy", "monitoring": "{}"}


def value_for(rng, name, attr, k):
    """A valid value for attr of service name (domains carry the name: never taken by another)."""
    if attr == "upstream":
        if rng.random() < 0.15:
            return ""
        return "10.%d.%d.%d:%d" % (k % 250, rng.randrange(250), rng.randrange(1, 250),
                                   rng.randrange(1, 65536))
    if attr == "domain":
        return "%s-d%d.internal" % (name, rng.randrange(1000))
    if attr == "health_check":
        return "/h%d" % rng.randrange(10000)
    return rng.choice(["proxy", "dns"])


def ename(e):
    return errno.errorcode.get(e, str(e)) if e else "ok"


class Worker:
    def __init__(self, mnt, k, rng, phase):
        self.svc = os.path.join(mnt, "services")
        self.mon = os.path.join(mnt, "monitor")
        self.k, self.rng, self.phase = k, rng, phase
        self.errors, self.counts = [], {}
        self.fds = []          # {fd, tree, name, attr, snap, stale, own, writable}
        if phase == "model":
            self.names = ["w%d-%d" % (k, i) for i in range(3)]
            self.targets = ["t%d" % k]
        else:
            self.names = ["s%d" % i for i in range(5)]
            self.targets = ["c0", "c1"]
        self.model = {n: None for n in self.names}
        self.tmodel = {t: False for t in self.targets}

    # ---- bookkeeping ----
    def call(self, what, fn):
        """Run fn; (result, 0) or (None, errno)."""
        self.counts[what] = self.counts.get(what, 0) + 1
        try:
            return fn(), 0
        except OSError as e:
            key = "%s:%s" % (what, ename(e.errno))
            self.counts[key] = self.counts.get(key, 0) + 1
            return None, e.errno or -1

    def expect(self, what, path, got, allowed):
        if got not in allowed:
            self.errors.append("worker %d: %s %s: got %s, expected %s" % (
                self.k, what, path, ename(got), "/".join(ename(a) for a in sorted(allowed))))
            return False
        return True

    def predict(self, model_set, churn_set):
        return model_set if self.phase == "model" else churn_set

    def mark_stale(self, tree, name, attr=None):
        for h in self.fds:
            if h["own"] and h["tree"] == tree and h["name"] == name and \
                    (attr is None or h["attr"] == attr):
                h["stale"] = True

    def close_one(self, h):
        self.fds.remove(h)
        _, e = self.call("close", lambda: os.close(h["fd"]))
        self.expect("close", h["path"], e, {0})

    # ---- operations ----
    def op_mkdir(self):
        n = self.rng.choice(self.names)
        p = os.path.join(self.svc, n)
        _, e = self.call("mkdir", lambda: os.mkdir(p))
        ok = {0} if self.model[n] is None else {errno.EEXIST}
        if self.expect("mkdir", p, e, self.predict(ok, {0, errno.EEXIST})) and e == 0:
            self.model[n] = defaults(n)

    def op_rmdir(self):
        n = self.rng.choice(self.names)
        p = os.path.join(self.svc, n)
        _, e = self.call("rmdir", lambda: os.rmdir(p))
        ok = {0} if self.model[n] is not None else {errno.ENOENT}
        if self.expect("rmdir", p, e, self.predict(ok, {0, errno.ENOENT})) and e == 0:
            self.model[n] = None
            self.mark_stale("svc", n)

    def op_open(self):
        if len(self.fds) >= MAX_FDS:
            self.close_one(self.rng.choice(self.fds))
        if self.phase == "model" and self.rng.random() < 0.25:
            return self.op_open_peer()
        n, a = self.rng.choice(self.names), self.rng.choice(ATTRS)
        p = os.path.join(self.svc, n, a)
        writable = self.rng.random() < 0.7
        # O_CREAT: within 2 s of its own mkdir, a process sees only the attribute files it has
        # created (the cp -r restore idiom, docs/filesystem.md); O_CREAT opens them all.
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CREAT
        fd, e = self.call("open", lambda: os.open(p, flags, 0o644))
        if self.phase == "model":
            ok = {0} if self.model[n] is not None else {errno.ENOENT}
        else:
            ok = {0, errno.ENOENT, errno.ESTALE}
        if not self.expect("open", p, e, ok) or e:
            if fd is not None:
                os.close(fd)
            return
        snap = None
        if self.phase == "model":
            snap = (self.model[n][a] + "\n").encode()
        self.fds.append({"fd": fd, "tree": "svc", "name": n, "attr": a, "path": p, "snap": snap,
                         "stale": False, "own": True, "writable": writable})

    def op_open_peer(self):
        """Open, read-only, a file of another worker's service: it may come and go."""
        if self.nworkers < 2:
            return
        peer = (self.k + 1 + self.rng.randrange(self.nworkers - 1)) % self.nworkers
        n = "w%d-%d" % (peer, self.rng.randrange(3))
        p = os.path.join(self.svc, n, self.rng.choice(ATTRS))
        fd, e = self.call("open-peer", lambda: os.open(p, os.O_RDONLY))
        if not self.expect("open-peer", p, e, {0, errno.ENOENT, errno.ESTALE}) or e:
            return
        self.fds.append({"fd": fd, "tree": "svc", "name": n, "attr": None, "path": p,
                         "snap": None, "stale": False, "own": False,
                         "writable": False})

    def op_read(self, h):
        data, e = self.call("pread", lambda: os.pread(h["fd"], 8192, 0))
        if not self.expect("pread", h["path"], e, {0}):
            return
        if h["snap"] is None:
            h["snap"] = data
            if not data.endswith(b"\n") or b"\n" in data[:-1]:
                self.errors.append("worker %d: pread %s: %r is not one line" % (
                    self.k, h["path"], data))
        elif data != h["snap"]:
            self.errors.append("worker %d: pread %s%s: %r, snapshot at open %r" % (
                self.k, h["path"], " (stale)" if h["stale"] else "", data, h["snap"]))

    def op_write(self, h):
        if h["tree"] == "mon":
            _, e = self.call("pwrite", lambda: os.pwrite(h["fd"], b"{}\n", 0))
            # "{}" lacks ssh_host: EINVAL unless the handle is stale
            ok = {errno.ESTALE} if h["stale"] else {errno.EINVAL}
            self.expect("pwrite", h["path"], e,
                        self.predict(ok, {errno.EINVAL, errno.ESTALE, errno.ENOENT}))
            return
        n, a = h["name"], h["attr"]
        # monitoring is only ever written its default, {}: no value names a probe
        v = "{}" if a == "monitoring" else value_for(self.rng, n, a, self.k)
        _, e = self.call("pwrite", lambda: os.pwrite(h["fd"], (v + "\n").encode(), 0))
        ok = {errno.ESTALE} if h["stale"] else {0}
        if self.expect("pwrite", h["path"], e,
                       self.predict(ok, {0, errno.ESTALE, errno.ENOENT})) and e == 0 \
                and self.phase == "model":
            self.model[n][a] = v

    def op_truncate(self, h):
        _, e = self.call("ftruncate", lambda: os.ftruncate(h["fd"], 0))
        ok = {errno.ESTALE} if h["stale"] else {0}
        self.expect("ftruncate", h["path"], e, self.predict(ok, {0, errno.ESTALE, errno.ENOENT}))

    def op_fstat(self, h):
        _, e = self.call("fstat", lambda: os.fstat(h["fd"]))
        if not h["own"]:
            ok = {0, errno.ESTALE}
        else:
            ok = {errno.ESTALE} if h["stale"] else {0}
        self.expect("fstat", h["path"], e, self.predict(ok, {0, errno.ESTALE, errno.ENOENT}))

    def op_unlink(self):
        n, a = self.rng.choice(self.names), self.rng.choice(ATTRS)
        p = os.path.join(self.svc, n, a)
        if self.phase == "model" and self.model[n] is not None:
            # a file this process has not created is hidden from it for 2 s after its mkdir
            # (the cp -r idiom): create it first, so that the result does not depend on time
            _, e = self.call("create", lambda: os.close(os.open(p, os.O_RDONLY | os.O_CREAT)))
            self.expect("create", p, e, {0})
        _, e = self.call("unlink", lambda: os.unlink(p))
        ok = {0} if self.model[n] is not None else {errno.ENOENT}
        if self.expect("unlink", p, e, self.predict(ok, {0, errno.ENOENT, errno.ESTALE})) \
                and e == 0:
            # the value stays; the handles open on the file are stale, and the file looks
            # absent to this process until it creates it again: do so
            self.mark_stale("svc", n, a)
            _, e = self.call("create", lambda: os.close(os.open(p, os.O_RDONLY | os.O_CREAT)))
            self.expect("create", p, e, self.predict({0}, {0, errno.ENOENT, errno.ESTALE}))

    def op_put(self):
        """echo VALUE > services/NAME/ATTR: open, one write, close."""
        n, a = self.rng.choice(self.names), self.rng.choice(WATTRS)
        p = os.path.join(self.svc, n, a)
        v = value_for(self.rng, n, a, self.k)

        def put():
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, (v + "\n").encode())
            finally:
                os.close(fd)
        _, e = self.call("put", put)
        ok = {0} if self.model[n] is not None else {errno.ENOENT}
        if self.expect("put", p, e, self.predict(ok, {0, errno.ENOENT, errno.ESTALE})) \
                and e == 0 and self.phase == "model":
            self.model[n][a] = v

    def op_mon(self):
        t = self.rng.choice(self.targets)
        d = os.path.join(self.mon, t)
        p = os.path.join(d, "target.json")
        r = self.rng.random()
        if r < 0.3:
            _, e = self.call("mkdir-target", lambda: os.mkdir(d))
            ok = {errno.EEXIST} if self.tmodel[t] else {0}
            if self.expect("mkdir", d, e, self.predict(ok, {0, errno.EEXIST})) and e == 0:
                self.tmodel[t] = True
        elif r < 0.55:
            _, e = self.call("rmdir-target", lambda: os.rmdir(d))
            ok = {0} if self.tmodel[t] else {errno.ENOENT}
            if self.expect("rmdir", d, e, self.predict(ok, {0, errno.ENOENT})) and e == 0:
                self.tmodel[t] = False
                self.mark_stale("mon", t)
        elif r < 0.65:
            _, e = self.call("unlink-target", lambda: os.unlink(p))
            ok = {0} if self.tmodel[t] else {errno.ENOENT}
            if self.expect("unlink", p, e, self.predict(ok, {0, errno.ENOENT, errno.ESTALE})) \
                    and e == 0:
                self.mark_stale("mon", t)
        else:
            if len(self.fds) >= MAX_FDS:
                self.close_one(self.rng.choice(self.fds))
            fd, e = self.call("open-target", lambda: os.open(p, os.O_RDWR))
            ok = {0} if self.tmodel[t] else {errno.ENOENT}
            if not self.expect("open", p, e,
                               self.predict(ok, {0, errno.ENOENT, errno.ESTALE})) or e:
                if fd is not None:
                    os.close(fd)
                return
            self.fds.append({"fd": fd, "tree": "mon", "name": t, "attr": "target.json",
                             "path": p, "snap": None, "stale": False, "own": True,
                             "writable": True})

    # The operations on names: each is chosen while a random r in [0, 1) is below its bound
    # (and above the one before); from 0.58 up, an operation on an open handle.
    NAME_OPS = ((0.10, op_mkdir), (0.17, op_rmdir), (0.32, op_open), (0.40, op_unlink),
                (0.48, op_put), (0.58, op_mon))

    def step(self):
        r = self.rng.random()
        for bound, op in self.NAME_OPS:
            if r < bound:
                op(self)
                return
        if self.fds:
            h = self.rng.choice(self.fds)
            r = self.rng.random()
            if r < 0.35:
                self.op_read(h)
            elif r < 0.6 and h["writable"]:
                self.op_write(h)
            elif r < 0.75 and h["writable"]:
                self.op_truncate(h)
            elif r < 0.85:
                self.op_fstat(h)
            else:
                self.close_one(h)

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(self.errors) < 40:
            self.step()
        for h in list(self.fds):
            self.op_read(h)
            self.close_one(h)


def worker_main(args, k, out):
    rng = random.Random("%d/%s/%d" % (args.seed, args.phase, k))
    w = Worker(args.mnt, k, rng, args.phase)
    w.nworkers = args.workers
    try:
        w.run(args.seconds)
    except Exception as e:     # a bug here must show, not hang the parent
        w.errors.append("worker %d: exception %r" % (k, e))
    with open(out, "w") as f:
        json.dump({"errors": w.errors, "counts": w.counts,
                   "model": w.model if args.phase == "model" else None,
                   "tmodel": w.tmodel if args.phase == "model" else None}, f)


def read_file(path):
    with open(path, "rb") as f:
        return f.read().decode()


def final_checks(args, results):
    """Differences between the models (model phase), services.json and the mount."""
    diffs = []
    with open(os.path.join(args.state, "services.json")) as f:
        reg = json.load(f)
    live = {}
    for s in reg["services"]:
        if s["status"] == "inactive":
            continue
        if s["name"] in live:
            diffs.append("services.json: %s live twice" % s["name"])
        rec = {a: s[a] for a in ("upstream", "domain", "health_check", "mode")}
        rec["monitoring"] = json.dumps(s["monitoring"], separators=(",", ":"))
        live[s["name"]] = rec
        want = "active" if s["upstream"] else "pending"
        if s["status"] != want:
            diffs.append("services.json: %s is %s with upstream %r" % (s["name"], s["status"],
                                                                         s["upstream"]))
    shown = sorted(os.listdir(os.path.join(args.mnt, "services")))
    if shown != sorted(live):
        diffs.append("ls services/ shows %s, services.json has %s live" % (shown, sorted(live)))
    for n, rec in live.items():
        for a, v in rec.items():
            try:
                text = read_file(os.path.join(args.mnt, "services", n, a))
            except OSError as e:
                diffs.append("services/%s/%s: %s" % (n, a, e))
                continue
            if text != v + "\n":
                diffs.append("services/%s/%s reads %r, services.json %r" % (n, a, text, v))
    with open(os.path.join(args.state, "monitoring", "targets.json")) as f:
        targets = sorted(t["name"] for t in json.load(f)["targets"])
    mon = sorted(set(os.listdir(os.path.join(args.mnt, "monitor"))) - MON_FIXED)
    if mon != targets:
        diffs.append("ls monitor/ shows %s, targets.json has %s" % (mon, targets))
    if args.phase == "model":
        want = {}
        twant = []
        for r in results:
            want.update({n: m for n, m in r["model"].items() if m is not None})
            twant += [t for t, on in r["tmodel"].items() if on]
        for n in sorted(set(want) | set(live)):
            if n not in live:
                diffs.append("model has %s live, services.json does not" % n)
            elif n not in want:
                diffs.append("services.json has %s live, the model does not" % n)
            elif want[n] != live[n]:
                diffs.append("%s: services.json %s, model %s" % (n, live[n], want[n]))
        if sorted(twant) != targets:
            diffs.append("targets.json has %s, the model %s" % (targets, sorted(twant)))
    return diffs, len(live), len(targets)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnt")
    ap.add_argument("state")
    ap.add_argument("--phase", choices=["model", "churn"], required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=6)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    print("model_fuzz: phase %s, seed %d (rerun with --seed %d), %d workers, %g s" % (
        args.phase, args.seed, args.seed, args.workers, args.seconds), flush=True)
    tmp = tempfile.mkdtemp(prefix="model_fuzz.")
    pids = []
    for k in range(args.workers):
        out = os.path.join(tmp, "w%d.json" % k)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                worker_main(args, k, out)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append((pid, out))
    results, problems = [], []
    for pid, out in pids:
        os.waitpid(pid, 0)
        try:
            with open(out) as f:
                results.append(json.load(f))
        except (OSError, ValueError) as e:
            problems.append("worker %s left no result: %s" % (out, e))
        else:
            os.unlink(out)
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for r in results:
        problems += r["errors"]
        for what, c in r["counts"].items():
            counts[what] = counts.get(what, 0) + c
    calls = {w: c for w, c in counts.items() if ":" not in w}
    fails = {w: c for w, c in counts.items() if ":" in w}
    print("model_fuzz: calls: " + ", ".join("%s %d" % kv for kv in sorted(calls.items())))
    print("model_fuzz: errnos: " + ", ".join("%s %d" % kv for kv in sorted(fails.items())))
    try:
        diffs, nlive, ntargets = final_checks(args, results)
    except (OSError, ValueError, KeyError) as e:
        diffs, nlive, ntargets = ["final check failed: %r" % e], 0, 0
    for line in (problems + diffs)[:30]:
        print(line)
    bad = len(problems) + len(diffs)
    print("model_fuzz: %s (phase %s, seed %d, %d calls, %d live services, %d targets%s)" % (
        "ok" if not bad else "FAILED", args.phase, args.seed, sum(calls.values()), nlive,
        ntargets, ", %d problems" % bad if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
