#!/usr/bin/env python3
"""render_check.py: re-derive, independently of core/render.c, what the rendered configs must say
for the registry in STATE/services.json, and compare with STATE/routing/caddy.json (Caddy JSON)
and STATE/dns/hosts.d/.

The proxy config: route 0 maps every active proxy-mode domain, and nothing else, to its service
and pool key; one route per pool key in use ("K-POLICY-SCHEME[-name]" or "down"), each mapping
exactly its services to the hosts and ports of K of their upstreams (in the registry's order:
the health prober may have taken the others out of the rotation) and proxying with that policy
(passive health checks for address pools, never active ones; TLS to https upstreams); "down"
answers 503; a "keep" route lists the address pools' dial addresses; the last route is a 404.
hosts.d: a proxy-mode service resolves to the gateway, a dns-mode one to some of its upstream
addresses (all when none is in the rotation), a pending one to nothing.

usage: render_check.py STATE [--gateway-ip IP] [--https-port PORT] [--https-addr ADDR]
Prints "render_check: ok (...)" and exits 0, or prints each difference and exits 1."""
import argparse
import ipaddress
import json
import os
import sys


def parse_upstream(line):
    """(scheme, host without brackets, port, is_name) of one upstream line."""
    scheme = "https" if line.startswith("https://") else "http"
    rest = line.split("://", 1)[1] if "://" in line else line
    host, port = rest.rsplit(":", 1)
    host = host[1:-1] if host.startswith("[") else host
    try:
        ipaddress.ip_address(host)
        name = False
    except ValueError:
        name = True
    return scheme, host, port, name


def subsequence(got, full):
    """True when got lists items of full in full's order."""
    it = iter(full)
    return all(any(g == f for f in it) for g in got)


def route_key(r):
    """The pool key of a route: its "@id" after "cfs-pool-", or the keeper's vars key."""
    rid = r.get("@id", "")
    if rid.startswith("cfs-pool-"):
        return rid[len("cfs-pool-"):]
    return r.get("match", [{}])[0].get("vars", {}).get("{cfs_pool}", [None])[0]


def find_route(routes, key):
    found = [r for r in routes if route_key(r) == key]
    return found[0] if len(found) == 1 else None


def check_pool(key, route, svcs, policy_of, ups_of, errs):
    """One pool route against its services svcs (name -> domain); returns its dial addresses."""
    dials = set()
    handle = route.get("handle", [])
    hosts = route.get("match", [{}])[0].get("host", [])
    if sorted(hosts) != sorted(svcs.values()) or len(set(hosts)) != len(hosts):
        errs.append("pool %s lists %s, want %s" % (key, sorted(hosts), sorted(svcs.values())))
    if key == "down":
        names = {x["input"]: x["outputs"] for x in
                 (handle[0].get("mappings", []) if handle else [])}
        if len(handle) != 2 or handle[0].get("handler") != "map" or \
                handle[0].get("destinations") != ["{cfs_svc}"] or \
                names != {d: [n] for n, d in svcs.items()} or \
                handle[1].get("handler") != "static_response" or \
                handle[1].get("status_code") != 503 or "{cfs_svc}" not in handle[1].get("body", ""):
            errs.append("pool down: want a 503 naming the service, got %s" % handle)
        return dials
    k_str, rest = key.split("-", 1)
    k = int(k_str)
    names = rest.endswith("-name")
    policy, scheme = (rest[:-5] if names else rest).rsplit("-", 1)
    if len(handle) != 2 or handle[0].get("handler") != "map" or \
            handle[1].get("handler") != "reverse_proxy":
        errs.append("pool %s: want a map and a reverse_proxy, got %s" % (key, handle))
        return dials
    m, rp = handle
    want_dest = [p for i in range(k) for p in ("{cfs_h%d}" % i, "{cfs_p%d}" % i)]
    if m.get("source") != "{http.request.host}" or m.get("destinations") != want_dest:
        errs.append("pool %s: map %s -> %s" % (key, m.get("source"), m.get("destinations")))
    got = {x["input"]: x["outputs"] for x in m.get("mappings", [])}
    if sorted(got) != sorted(svcs.values()):
        errs.append("pool %s maps %s, want %s" % (key, sorted(got), sorted(svcs.values())))
    for name, domain in svcs.items():
        outs = got.get(domain, [])
        pairs = [(outs[i], outs[i + 1]) for i in range(0, len(outs), 2)]
        full = []
        for line in ups_of[name]:
            sch, host, port, _ = parse_upstream(line)
            if sch != scheme:
                errs.append("pool %s: %s has a %s upstream" % (key, name, sch))
            if names and ":" in host:
                host = "[%s]" % host
            full.append((host, port))
        if len(pairs) != k or not subsequence(pairs, full):
            errs.append("pool %s: %s maps to %s, not %d of %s" % (key, name, pairs, k, full))
        if policy_of[name] != policy:
            errs.append("pool %s holds %s whose policy is %s" % (key, name, policy_of[name]))
        if not names:
            for host, port in pairs:
                dials.add("[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port))
    lb = rp.get("load_balancing", {})
    if lb.get("selection_policy", {}).get("policy") != policy or not lb.get("retries", 0) >= k \
            or "try_duration" in lb:
        errs.append("pool %s: load_balancing %s" % (key, lb))
    if names:
        n_ups = len(rp.get("upstreams", []))
        if [u.get("dial") for u in rp.get("upstreams", [])] != \
                ["{cfs_h%d}:{cfs_p%d}" % (i, i) for i in range(k)]:
            errs.append("pool %s: upstreams %s" % (key, rp.get("upstreams")))
    else:
        dyn = rp.get("dynamic_upstreams", {})
        n_ups = len(dyn.get("sources", []))
        want = [{"source": "a", "name": "{cfs_h%d}" % i, "port": "{cfs_p%d}" % i}
                for i in range(k)]
        if dyn.get("source") != "multi" or dyn.get("sources") != want:
            errs.append("pool %s: dynamic_upstreams %s" % (key, dyn))
        passive = rp.get("health_checks", {}).get("passive", {})
        if not passive.get("fail_duration") or not passive.get("max_fails"):
            errs.append("pool %s: no passive health checks" % key)
    if n_ups != k:
        errs.append("pool %s: %d upstreams" % (key, n_ups))
    if "active" in rp.get("health_checks", {}):
        errs.append("pool %s: active health checks: reloads would cancel them" % key)
    if (scheme == "https") != ("tls" in rp.get("transport", {})):
        errs.append("pool %s: transport %s" % (key, rp.get("transport")))
    hdr = rp.get("headers", {}).get("request", {}).get("set", {})
    if hdr.get("X-Forwarded-Proto") != ["https"]:
        errs.append("pool %s: no X-Forwarded-Proto https" % key)
    return dials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("state")
    ap.add_argument("--gateway-ip", default="127.0.0.1")
    ap.add_argument("--https-port", type=int, default=8443)
    ap.add_argument("--https-addr", default=None)
    args = ap.parse_args()
    state = os.path.realpath(args.state)
    errs = []

    with open(os.path.join(state, "services.json")) as f:
        reg = json.load(f)
    live = [s for s in reg["services"] if s["status"] != "inactive"]
    routed = {s["name"]: s["domain"] for s in live
              if s["status"] == "active" and s.get("mode", "proxy") == "proxy"}
    ups_of = {s["name"]: s["upstream"].split("\n") for s in live if s["upstream"]}
    policy_of = {s["name"]: s.get("lb_policy", "round_robin") for s in live}

    try:
        with open(os.path.join(state, "routing", "caddy.json")) as f:
            doc = json.load(f)
        srv = doc["apps"]["http"]["servers"]["conduitfs"]
        routes = srv["routes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("render_check: routing/caddy.json is not the proxy's config: %r" % e)
        return 1
    if os.path.exists(os.path.join(state, "routing", "Caddyfile")):
        errs.append("routing/Caddyfile is still there")
    admin = doc.get("admin")
    if admin not in ({"disabled": True}, {"listen": "unix/{env.CONDUITFS_CADDY_ADMIN}",
                                          "config": {"persist": False}}):
        errs.append("admin %s" % admin)
    listen = srv.get("listen", [""])[0]
    if not listen.endswith(":%d" % args.https_port) or \
            (args.https_addr and listen.rsplit(":", 1)[0].strip("[]") != args.https_addr):
        errs.append("listen %s" % srv.get("listen"))
    if srv.get("tls_connection_policies") != [{"protocol_min": "tls1.3"}]:
        errs.append("tls_connection_policies %s" % srv.get("tls_connection_policies"))
    if srv.get("automatic_https") != {"disable": True}:
        errs.append("automatic_https %s" % srv.get("automatic_https"))
    certs = doc["apps"].get("tls", {}).get("certificates", {})
    if certs.get("load_folders") != [os.path.join(state, "tls", "serving")]:
        errs.append("load_folders %s" % certs.get("load_folders"))
    allowed = {os.path.join(state, "tls", d, "cert.pem") for d in routed.values()}
    for pair in certs.get("load_files", []):
        if pair.get("certificate") not in allowed:
            errs.append("load_files names a leaf no routed domain uses: %s" % pair)

    # the pool routes' host lists: each routed domain in exactly one
    listed = [(route_key(r), h) for r in routes for h in r.get("match", [{}])[0].get("host", [])]
    by_domain = {d: n for n, d in routed.items()}
    if sorted(h for _, h in listed) != sorted(by_domain):
        errs.append("host lists have %s, want %s" % (sorted(h for _, h in listed),
                                                      sorted(by_domain)))
    pools = {}
    for key, domain in listed:
        name = by_domain.get(domain)
        if not name or not key:
            errs.append("host list: %s in %s" % (domain, key))
            continue
        pools.setdefault(key, {})[name] = domain

    # one route per pool key in use, the keeper, the 404
    dials = set()
    for key, svcs in sorted(pools.items()):
        route = find_route(routes, key)
        if not route or not route.get("terminal"):
            errs.append("no single terminal route for pool %s" % key)
            continue
        dials |= check_pool(key, route, svcs, policy_of, ups_of, errs)
    keys = [route_key(r) for r in routes[:-1]]
    extra = [k for k in keys if k not in pools and k != "keep"]
    if extra:
        errs.append("routes for pools no service uses: %s" % extra)
    keep = find_route(routes, "keep")
    got_dials = set(u["dial"] for u in keep["handle"][0]["upstreams"]) if keep else set()
    if got_dials != dials:
        errs.append("keep route dials %s, want %s" % (sorted(got_dials), sorted(dials)))
    last = routes[-1] if routes else {}
    if "match" in last or last.get("handle", [{}])[0].get("status_code") != 404:
        errs.append("the last route is not the 404: %s" % last)

    # hosts.d
    hdir = os.path.join(state, "dns", "hosts.d")
    got_hosts = {}
    for name in os.listdir(hdir):
        if name.startswith("."):
            errs.append("hosts.d holds a temp file: %s" % name)
            continue
        with open(os.path.join(hdir, name)) as f:
            got_hosts[name] = f.read()
    active = {s["name"]: s for s in live if s["status"] == "active"}
    for name in sorted(set(active) | set(got_hosts)):
        s, got = active.get(name), got_hosts.get(name)
        if not s:
            errs.append("hosts.d/%s: %r for no active service" % (name, got))
            continue
        if s.get("mode", "proxy") == "proxy":
            if got != "%s %s\n" % (args.gateway_ip, s["domain"]):
                errs.append("hosts.d/%s: %r, want the gateway" % (name, got))
            continue
        full = []
        for line in ups_of[name]:
            line = "%s %s\n" % (parse_upstream(line)[1], s["domain"])
            if line not in full:
                full.append(line)
        lines = (got or "").splitlines(keepends=True)
        if not lines or not subsequence(lines, full):
            errs.append("hosts.d/%s: %r, want some of %r" % (name, got, full))
    for e in errs:
        print("render_check: " + e)
    if errs:
        return 1
    print("render_check: ok (%d routed, %d pools, %d hosts files)" %
          (len(routed), len(pools), len(got_hosts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
