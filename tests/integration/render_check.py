#!/usr/bin/env python3
"""render_check.py: re-derive, independently of core/render.c, what the rendered configs must say
for the registry in STATE/services.json, and compare with STATE/routing/Caddyfile and
STATE/dns/hosts.d/. Checks the set of site addresses, each site's reverse_proxy target, its passive
health checks (and no active ones) and TLS files (or its 503 for a pending service), and every hosts.d file's "<ip> <domain>" line.

usage: render_check.py STATE [--gateway-ip IP] [--https-port PORT] [--https-addr ADDR]
Prints "render_check: ok (...)" and exits 0, or prints each difference and exits 1."""
import argparse
import json
import os
import re
import sys


def expected(svcs, gateway_ip, https_port):
    """sites: {"domain:port": ("proxy", target, health) | ("pending",)}; hosts: {name: line}."""
    sites, hosts = {}, {}
    for s in svcs:
        if s["status"] == "inactive":
            continue
        up = s["upstream"]
        pending = s["status"] == "pending"
        dns = s["mode"] == "dns"
        if pending or not dns:
            ip = gateway_ip
        else:
            host = up.split("://", 1)[-1].rsplit(":", 1)[0]
            ip = host[1:-1] if host.startswith("[") else host
        hosts[s["name"]] = "%s %s\n" % (ip, s["domain"])
        if dns and not pending:
            continue
        addr = "%s:%d" % (s["domain"], https_port)
        if pending:
            sites[addr] = ("pending", s["name"])
        else:
            target = up[len("http://"):] if up.startswith("http://") else up
            sites[addr] = ("proxy", target, s["health_check"])
    return sites, hosts


def parse_caddyfile(text):
    """Site blocks of a Caddyfile: {address: {first word of each line: the line}}, e.g.
    "reverse_proxy", "fail_duration", "respond", "tls", "bind"; also the global https_port."""
    sites, cur, depth, glob = {}, None, 0, {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if depth == 0:
            if line == "{":
                cur, depth = "<global>", 1
                continue
            m = re.fullmatch(r"(\S+) \{", line)
            if not m:
                raise ValueError("unexpected top-level line: %r" % raw)
            cur, depth = m.group(1), 1
            if cur in sites:
                raise ValueError("site %s twice" % cur)
            sites[cur] = {}
            continue
        if line == "}":
            depth -= 1
            continue
        words = line.split()
        if line.endswith("{"):
            depth += 1
        if cur == "<global>":
            glob[words[0]] = words[1:]
            continue
        site = sites[cur]
        key = words[0]
        if key in site and key not in ("protocols",):
            raise ValueError("%s: %s twice" % (cur, key))
        site[key] = line
    if depth != 0:
        raise ValueError("unbalanced braces")
    return sites, glob


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("state")
    ap.add_argument("--gateway-ip", default="127.0.0.1")
    ap.add_argument("--https-port", type=int, default=8443)
    args = ap.parse_args()
    state = os.path.realpath(args.state)
    errs = []

    with open(os.path.join(state, "services.json")) as f:
        reg = json.load(f)
    want_sites, want_hosts = expected(reg["services"], args.gateway_ip, args.https_port)

    with open(os.path.join(state, "routing", "Caddyfile")) as f:
        caddy = f.read()
    try:
        got_sites, glob = parse_caddyfile(caddy)
    except ValueError as e:
        print("render_check: Caddyfile does not parse: %s" % e)
        return 1
    if glob.get("https_port") != [str(args.https_port)]:
        errs.append("global https_port is %s" % glob.get("https_port"))
    for addr in sorted(set(want_sites) | set(got_sites)):
        if addr not in got_sites:
            errs.append("Caddyfile lacks site %s" % addr)
            continue
        if addr not in want_sites:
            errs.append("Caddyfile has a site the registry does not imply: %s" % addr)
            continue
        w, g = want_sites[addr], got_sites[addr]
        domain = addr.rsplit(":", 1)[0]
        tls = "tls %s/tls/%s/cert.pem %s/tls/%s/key.pem {" % (state, domain, state, domain)
        if g.get("tls") != tls:
            errs.append("%s: tls line %r, want %r" % (addr, g.get("tls"), tls))
        if w[0] == "pending":
            if "reverse_proxy" in g or not re.fullmatch(
                    r'respond "service %s is pending: [^"]*" 503' % re.escape(w[1]),
                    g.get("respond", "")):
                errs.append("%s: want a 503 for pending %s, got %s" % (addr, w[1], g))
        else:
            if g.get("reverse_proxy") != "reverse_proxy %s {" % w[1]:
                errs.append("%s: reverse_proxy %r, want target %s" %
                            (addr, g.get("reverse_proxy"), w[1]))
            if "health_uri" in g:
                errs.append("%s: active health checks (%r): reloads would cancel them" %
                            (addr, g["health_uri"]))
            if not g.get("fail_duration") or not g.get("max_fails"):
                errs.append("%s: no passive health checks (fail_duration, max_fails)" % addr)
            if "respond" in g:
                errs.append("%s: active site answers %r" % (addr, g["respond"]))

    hdir = os.path.join(state, "dns", "hosts.d")
    got_hosts = {}
    for name in os.listdir(hdir):
        if name.startswith("."):
            errs.append("hosts.d holds a temp file: %s" % name)
            continue
        with open(os.path.join(hdir, name)) as f:
            got_hosts[name] = f.read()
    for name in sorted(set(want_hosts) | set(got_hosts)):
        if got_hosts.get(name) != want_hosts.get(name):
            errs.append("hosts.d/%s: %r, want %r" % (name, got_hosts.get(name),
                                                      want_hosts.get(name)))
    for e in errs:
        print("render_check: " + e)
    if errs:
        return 1
    print("render_check: ok (%d sites, %d hosts files)" % (len(want_sites), len(want_hosts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
