/* rendproxy.c: the proxy's config, Caddy JSON of a constant shape, from resolved records
 * (pure; docs/architecture.md, "The proxy's shape"). */
#include "core/rendproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* How long Caddy remembers a failed request to an upstream (passive health checks). */
#define RENDER_FAIL_WINDOW "5s"
/* A request that failed on one upstream is retried at once on the next, up to K x (the passive
 * max_fails, at most RENDER_RETRY_FAILS, + 1) times for K upstreams: enough to pass every dead
 * upstream until passive health skips it. Retries, not try_duration: Caddy 2.6.2 waits
 * try_interval between tries on the config's context, and a reload cancels that context, which
 * failed a request that was between tries on a dead upstream when the prober's change landed. */
#define RENDER_RETRY_FAILS 4u
/* The environment variable Caddy's admin listen address reads (set by the supervisor). */
#define RENDER_ADMIN_ENV "CONDUITFS_CADDY_ADMIN"

/* The document's shape (docs/architecture.md, "The proxy's shape").
 * One HTTPS server with one route per pool key in use, whatever the number of services:
 * "K-POLICY-SCHEME" (K upstreams in the rotation; "-name" when a host is a name) matches the
 * domains of its services (a host list), maps the host to the hosts and ports of its upstreams
 * and proxies to them; "down" maps the host to the service's name {cfs_svc} and answers 503.
 * Each service is thus one name in one host list and one entry in one map, a data table;
 * nothing else grows with the number of services. Certificates come from one folder the CA
 * service keeps. */

/* A JSON builder whose first failure sticks: later calls do nothing and return NULL.
 * The arrays that grow with the services (map entries, host lists) are written as text into
 * lists[], not built as jansson values: at 1000 services building and dumping them was a third
 * of a commit. Such an array is a marker string in the document, which rproxy_render replaces
 * with its text after the dump. Every value in them passed safe_value, so none needs
 * escaping. */
struct jb {
    int err;
    struct rnd_buf *lists;                 /* the items of list i, "," between (malloc'd) */
    size_t nlists, caplists;
};

/* The marker of list i in the dumped document: LIST_MARK, i, '@', in quotes. */
#define LIST_MARK "\"@cfs-list-"

/* Set key to v (consumed) in o. */
static void jset(struct jb *j, json_t *o, const char *key, json_t *v)
{
    if (j->err || !o || !v) {
        if (!j->err)
            j->err = -ENOMEM;
        json_decref(v);
        return;
    }
    if (json_object_set_new(o, key, v) != 0)
        j->err = -ENOMEM;     /* jansson has dropped v */
}

/* Append v (consumed) to array a. */
static void jpush(struct jb *j, json_t *a, json_t *v)
{
    if (j->err || !a || !v) {
        if (!j->err)
            j->err = -ENOMEM;
        json_decref(v);
        return;
    }
    if (json_array_append_new(a, v) != 0)
        j->err = -ENOMEM;     /* jansson has dropped v */
}

/* A new object or array, or NULL (and err set) when out of memory. */
static json_t *jobj(struct jb *j)
{
    json_t *o = j->err ? NULL : json_object();

    if (!o)
        j->err = -ENOMEM;
    return o;
}

static json_t *jarr(struct jb *j)
{
    json_t *a = j->err ? NULL : json_array();

    if (!a)
        j->err = -ENOMEM;
    return a;
}

/* A string printed with fmt; NULL and err set on failure. */
static json_t *jstrf(struct jb *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *jstrf(struct jb *j, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;
    int n;

    if (j->err)
        return NULL;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        j->err = -EINVAL;
        return NULL;
    }
    return json_string(buf);
}

/* ["s"] */
static json_t *jlist1(struct jb *j, json_t *v)
{
    json_t *a = jarr(j);

    jpush(j, a, v);
    return a;
}

/* A route matching requests whose {cfs_pool} is key, terminal. Nothing sets {cfs_pool}: such
 * a route never matches (the keeper's, see keeper_route). */
static json_t *pool_route(struct jb *j, const char *key, json_t *handle)
{
    json_t *r = jobj(j), *vars = jobj(j), *m = jobj(j);

    jset(j, vars, "{cfs_pool}", jlist1(j, json_string(key)));
    jset(j, m, "vars", vars);
    jset(j, r, "match", jlist1(j, m));
    jset(j, r, "handle", handle);
    jset(j, r, "terminal", json_true());
    return r;
}

/* A static_response handler: status and a one-line plain-text body (may hold placeholders). */
static json_t *respond(struct jb *j, int status, const char *body)
{
    json_t *h = jobj(j), *hdr = jobj(j);

    jset(j, h, "handler", json_string("static_response"));
    jset(j, h, "status_code", json_integer(status));
    jset(j, hdr, "Content-Type", jlist1(j, json_string("text/plain; charset=utf-8")));
    jset(j, h, "headers", hdr);
    jset(j, h, "body", json_string(body));
    return h;
}

/* A new text list; its marker (a JSON string) into *marker, its index into *idx. */
static json_t *list_new(struct jb *j, size_t *idx)
{
    *idx = j->nlists;
    if (!j->err && j->nlists == j->caplists) {
        size_t cap = j->caplists ? 2 * j->caplists : 8;
        struct rnd_buf *l = realloc(j->lists, cap * sizeof(*l));

        if (l) {
            memset(l + j->caplists, 0, (cap - j->caplists) * sizeof(*l));
            j->lists = l;
            j->caplists = cap;
        } else {
            j->err = -ENOMEM;
        }
    }
    if (j->err)
        return NULL;
    j->nlists++;
    return jstrf(j, "@cfs-list-%zu@", *idx);
}

/* Append open, v and close to b (a list of j). v must pass safe_value (it needs no JSON
 * escaping); -EINVAL in j->err otherwise, and the first failure of b is j's too. */
static void put_value(struct jb *j, struct rnd_buf *b, const char *open, const char *v,
                      const char *close)
{
    if (j->err)
        return;
    if (!rnd_safe_value(v)) {
        j->err = -EINVAL;
        return;
    }
    rnd_cat(b, open, v, close, (const char *)NULL);
    if (b->err)
        j->err = b->err;
}

/* Append the string v to list i (see put_value). */
static void list_str(struct jb *j, size_t i, const char *v)
{
    struct rnd_buf *b = &j->lists[i];

    put_value(j, b, b->len ? ",\"" : "\"", v, "\"");
}

/* A route matching requests for the domains of grp[0..n) (a host list: Caddy sorts one of more
 * than 100 names and finds a host by binary search), terminal, named "cfs-pool-KEY" by its
 * "@id" (KEY: the pool key of grp[0]), so that it can be read back. */
static json_t *hosts_route(struct jb *j, struct rnd_item *const *grp, size_t n, json_t *handle)
{
    json_t *r = jobj(j), *m = jobj(j);
    size_t li = 0;

    jset(j, r, "@id", jstrf(j, "cfs-pool-%s", grp[0]->pool));
    jset(j, m, "host", list_new(j, &li));
    for (size_t g = 0; g < n && !j->err; g++)
        list_str(j, li, grp[g]->svc->domain);
    jset(j, r, "match", jlist1(j, m));
    jset(j, r, "handle", handle);
    jset(j, r, "terminal", json_true());
    return r;
}

/* A map handler from the request's host to ndest placeholders; its mappings are added by the
 * caller with map_entry(j, *map, ...). */
static json_t *map_handler(struct jb *j, const char *const *dest, size_t ndest, size_t *map)
{
    json_t *h = jobj(j), *d = jarr(j);

    for (size_t i = 0; i < ndest; i++)
        jpush(j, d, json_string(dest[i]));
    jset(j, h, "handler", json_string("map"));
    jset(j, h, "source", json_string("{http.request.host}"));
    jset(j, h, "destinations", d);
    jset(j, h, "mappings", list_new(j, map));
    return h;
}

/* Append the mapping input -> outs[0..nouts) to map (each value as put_value takes it). */
static void map_entry(struct jb *j, size_t map, const char *input, const char *const *outs,
                      size_t nouts)
{
    struct rnd_buf *b = &j->lists[map];

    put_value(j, b, b->len ? ",{\"input\":\"" : "{\"input\":\"", input, "\",\"outputs\":[");
    for (size_t i = 0; i < nouts; i++)
        put_value(j, b, i ? ",\"" : "\"", outs[i], "\"");
    if (j->err)
        return;
    rnd_cat(b, "]}", (const char *)NULL);
    if (b->err)
        j->err = b->err;
}

/* The dumped document text with each list's marker replaced by "[items]", and a newline at its
 * end, into *dst (malloc'd). Each list appears once. 0 or -errno. */
static int splice_lists(struct jb *j, const char *text, char **dst)
{
    struct rnd_buf out = {0};
    const char *p = text, *at;
    size_t seen = 0;

    while ((at = strstr(p, LIST_MARK)) != NULL) {
        char *end;
        unsigned long i = strtoul(at + strlen(LIST_MARK), &end, 10);

        if (end[0] != '@' || end[1] != '"' || i >= j->nlists) {
            free(out.s);
            return -EINVAL;
        }
        rnd_addf(&out, "%.*s[%s]", (int)(at - p), p, j->lists[i].len ? j->lists[i].s : "");
        p = end + 2;
        seen++;
    }
    if (seen != j->nlists) {
        free(out.s);
        return -EINVAL;
    }
    rnd_addf(&out, "%s\n", p);
    return rnd_take(&out, dst);
}

/* The address of an upstream as its pool's map gives it, into buf: a name or IPv4 address as
 * is; an IPv6 address bare for an "a" source, in brackets for a dial address. */
static void up_host(const struct val_upstream *up, bool bracket, char *buf, size_t len)
{
    if (up->kind == VAL_HOST_IPV6 && bracket)
        snprintf(buf, len, "[%s]", up->host);
    else
        snprintf(buf, len, "%s", up->host);
}

/* The reverse_proxy handler of a pool of k in-rotation upstreams. Address pools use dynamic
 * "a" sources, one per slot, so that Caddy keeps passive health per real address (see
 * keeper_route); name pools dial "{cfs_hI}:{cfs_pI}", which keeps the name for TLS
 * verification, without passive health (its counts would be shared by every service of the
 * pool). */
static json_t *proxy_handler(struct jb *j, const struct cfs_config *cfg, unsigned k,
                             const char *policy, bool tls, bool names)
{
    json_t *h = jobj(j), *lb = jobj(j), *sel = jobj(j), *hdrs = jobj(j), *req = jobj(j);
    json_t *set = jobj(j), *ups = jarr(j);

    jset(j, h, "handler", json_string("reverse_proxy"));
    for (unsigned i = 0; i < k; i++) {
        json_t *u = jobj(j);

        if (names) {
            jset(j, u, "dial", jstrf(j, "{cfs_h%u}:{cfs_p%u}", i, i));
        } else {
            jset(j, u, "source", json_string("a"));
            jset(j, u, "name", jstrf(j, "{cfs_h%u}", i));
            jset(j, u, "port", jstrf(j, "{cfs_p%u}", i));
        }
        jpush(j, ups, u);
    }
    if (names) {
        jset(j, h, "upstreams", ups);
    } else {
        json_t *dyn = jobj(j);

        jset(j, dyn, "source", json_string("multi"));
        jset(j, dyn, "sources", ups);
        jset(j, h, "dynamic_upstreams", dyn);
    }
    jset(j, sel, "policy", json_string(policy));
    jset(j, lb, "selection_policy", sel);
    /* A failed request is retried on another upstream at once (see RENDER_RETRY_FAILS): no
     * request fails because one upstream died while another answers. */
    {
        unsigned fails = cfg->health_threshold > 0 ? (unsigned)cfg->health_threshold : 2u;

        if (fails > RENDER_RETRY_FAILS)
            fails = RENDER_RETRY_FAILS;
        jset(j, lb, "retries", json_integer((json_int_t)k * (fails + 1)));
    }
    jset(j, h, "load_balancing", lb);
    if (!names) {
        /* Passive health checks: an upstream that failed --health-threshold requests within
         * RENDER_FAIL_WINDOW is skipped at once. Not active ones: Caddy 2.6 counts the checks a
         * reload cancels as failures (docs/architecture.md, "Reloads"); the prober takes an
         * upstream out of the rotation instead. */
        json_t *hc = jobj(j), *pas = jobj(j);

        jset(j, pas, "fail_duration", json_string(RENDER_FAIL_WINDOW));
        jset(j, pas, "max_fails",
             json_integer(cfg->health_threshold > 0 ? cfg->health_threshold : 2));
        jset(j, hc, "passive", pas);
        jset(j, h, "health_checks", hc);
    }
    jset(j, set, "X-Forwarded-Proto", jlist1(j, json_string("https")));
    jset(j, req, "set", set);
    jset(j, hdrs, "request", req);
    jset(j, h, "headers", hdrs);
    if (tls) {
        json_t *tr = jobj(j);

        jset(j, tr, "protocol", json_string("http"));
        jset(j, tr, "tls", jobj(j));
        jset(j, h, "transport", tr);
    }
    return h;
}

/* Order of items by pool key, then name: each pool's services are consecutive. */
static int cmp_item_pool(const void *a, const void *b)
{
    const struct rnd_item *x = *(const struct rnd_item *const *)a;
    const struct rnd_item *y = *(const struct rnd_item *const *)b;
    int c = strcmp(x->pool, y->pool);

    return c ? c : strcmp(x->svc->name, y->svc->name);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pool route for the items grp[0..n) (one pool key, sorted by name). ups: scratch. */
static json_t *render_pool(struct jb *j, const struct cfs_config *cfg, struct rnd_item *const *grp,
                           size_t n, struct val_upstream *ups)
{
    const struct rnd_item *first = grp[0];
    const char *dest[2 * VAL_UPSTREAMS_MAX];
    char ph[2 * VAL_UPSTREAMS_MAX][24];
    char hosts[VAL_UPSTREAMS_MAX][INET6_ADDRSTRLEN + 2], ports[VAL_UPSTREAMS_MAX][8];
    const char *outs[2 * VAL_UPSTREAMS_MAX];
    json_t *handle = jarr(j), *map;
    unsigned k = first->nrot;
    size_t nups, mi = 0;

    if (strcmp(first->pool, RENDER_POOL_DOWN) == 0) {
        static const char *const name_dest[] = { "{cfs_svc}" };

        jpush(j, handle, map_handler(j, name_dest, 1, &mi));
        for (size_t g = 0; g < n && !j->err; g++) {
            const char *name = grp[g]->svc->name;

            map_entry(j, mi, grp[g]->svc->domain, &name, 1);
        }
        jpush(j, handle, respond(j, 503, "service {cfs_svc} has no healthy upstream\n"));
        return hosts_route(j, grp, n, handle);
    }
    for (unsigned i = 0; i < k; i++) {
        snprintf(ph[2 * i], sizeof(ph[0]), "{cfs_h%u}", i);
        snprintf(ph[2 * i + 1], sizeof(ph[0]), "{cfs_p%u}", i);
        dest[2 * i] = ph[2 * i];
        dest[2 * i + 1] = ph[2 * i + 1];
    }
    map = map_handler(j, dest, 2 * (size_t)k, &mi);
    for (size_t g = 0; g < n && !j->err; g++) {
        const struct rnd_item *it = grp[g];
        size_t no = 0;

        if (val_upstreams(it->svc->upstream, ups, &nups) != 0 || nups != it->nups) {
            j->err = -EINVAL;
            break;
        }
        for (size_t i = 0; i < nups; i++) {
            if (!(it->inrot & ((uint64_t)1 << i)))
                continue;
            up_host(&ups[i], first->names, hosts[no / 2], sizeof(hosts[0]));
            snprintf(ports[no / 2], sizeof(ports[0]), "%u", ups[i].port);
            outs[no] = hosts[no / 2];
            outs[no + 1] = ports[no / 2];
            no += 2;
        }
        map_entry(j, mi, it->svc->domain, outs, no);
    }
    jpush(j, handle, map);
    jpush(j, handle, proxy_handler(j, cfg, k, first->policy, first->tls, first->names));
    return hosts_route(j, grp, n, handle);
}

/* Caddy forgets a dynamic upstream's passive health counts as soon as no request uses it, so a
 * dead upstream would be dialed again by every request (under "first", every request would
 * fail). A route that never matches lists every in-rotation address of the address pools as a
 * static upstream: Caddy then keeps each address's counts across requests and reloads. Its
 * size grows with the upstreams as a list of addresses, never as routes or handlers. NULL (err
 * untouched) when there is no such address. */
static json_t *keeper_route(struct jb *j, struct rnd_item *const *sorted, size_t n,
                            struct val_upstream *ups)
{
    char **dials = NULL, buf[INET6_ADDRSTRLEN + 2];
    size_t nd = 0, cap = 0, nups;
    unsigned char a[sizeof(struct in6_addr)];
    json_t *list, *h, *handle, *r = NULL;

    for (size_t g = 0; g < n && !j->err; g++) {
        const struct rnd_item *it = sorted[g];

        if (it->names || it->nrot == 0)
            continue;
        if (val_upstreams(it->svc->upstream, ups, &nups) != 0 || nups != it->nups) {
            j->err = -EINVAL;
            break;
        }
        for (size_t i = 0; i < nups && !j->err; i++) {
            char addr[INET6_ADDRSTRLEN];
            bool v6 = ups[i].kind == VAL_HOST_IPV6;

            if (!(it->inrot & ((uint64_t)1 << i)))
                continue;
            /* Caddy's "a" source names an address the way Go prints it: canonical form */
            if (inet_pton(v6 ? AF_INET6 : AF_INET, ups[i].host, a) != 1 ||
                !inet_ntop(v6 ? AF_INET6 : AF_INET, a, addr, sizeof(addr))) {
                j->err = -EINVAL;
                break;
            }
            snprintf(buf, sizeof(buf), v6 ? "[%s]" : "%s", addr);
            if (nd == cap) {
                size_t ncap = cap ? 2 * cap : 64;
                char **nds = realloc(dials, ncap * sizeof(*dials));

                if (!nds) {
                    j->err = -ENOMEM;
                    break;
                }
                dials = nds;
                cap = ncap;
            }
            dials[nd] = malloc(strlen(buf) + 8);
            if (!dials[nd]) {
                j->err = -ENOMEM;
                break;
            }
            snprintf(dials[nd], strlen(buf) + 8, "%s:%u", buf, ups[i].port);
            nd++;
        }
    }
    if (j->err || nd == 0)
        goto out;
    qsort(dials, nd, sizeof(*dials), cmp_str_ptr);
    list = jarr(j);
    for (size_t i = 0; i < nd; i++) {
        json_t *u;

        if (i > 0 && strcmp(dials[i - 1], dials[i]) == 0)
            continue;
        u = jobj(j);
        jset(j, u, "dial", json_string(dials[i]));
        jpush(j, list, u);
    }
    h = jobj(j);
    jset(j, h, "handler", json_string("reverse_proxy"));
    jset(j, h, "upstreams", list);
    handle = jarr(j);
    jpush(j, handle, h);
    r = pool_route(j, RENDER_POOL_KEEP, handle);
out:
    for (size_t i = 0; i < nd; i++)
        free(dials[i]);
    free(dials);
    return r;
}

/* The routes: the host map, one route per pool key in use, the keeper, and a 404 for a name no
 * service has. items[0..n) sorted by name. */
static json_t *render_routes(struct jb *j, const struct cfs_config *cfg, struct rnd_item *items,
                             size_t n, struct val_upstream *ups)
{
    struct rnd_item **sorted = NULL;
    json_t *routes = jarr(j), *route, *handle, *keep;
    size_t ns = 0;

    sorted = calloc(n ? n : 1, sizeof(*sorted));
    if (!sorted) {
        j->err = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!items[i].pending && !items[i].dns)
            sorted[ns++] = &items[i];
    qsort(sorted, ns, sizeof(*sorted), cmp_item_pool);
    for (size_t g = 0; g < ns && !j->err;) {
        size_t e = g + 1;

        while (e < ns && strcmp(sorted[e]->pool, sorted[g]->pool) == 0)
            e++;
        jpush(j, routes, render_pool(j, cfg, sorted + g, e - g, ups));
        g = e;
    }
    keep = keeper_route(j, sorted, ns, ups);
    if (keep)
        jpush(j, routes, keep);
    handle = jarr(j);
    jpush(j, handle, respond(j, 404, "no service is registered under this name\n"));
    route = jobj(j);
    jset(j, route, "handle", handle);
    jpush(j, routes, route);
out:
    free(sorted);
    return routes;
}

/* The "listen" address of the HTTPS server: IPv6 in brackets. */
static json_t *listen_addr(struct jb *j, const struct cfs_config *cfg)
{
    if (strchr(cfg->https_addr, ':'))
        return jstrf(j, "[%s]:%u", cfg->https_addr, cfg->https_port);
    return jstrf(j, "%s:%u", cfg->https_addr, cfg->https_port);
}

/* The certificate loaders: the serving folder, state/tls/serving, where the CA service keeps
 * every leaf the proxy serves. */
static json_t *render_certs(struct jb *j, const struct cfs_config *cfg)
{
    char dir[PATH_MAX];
    json_t *c = jobj(j);

    if (rnd_serving_dir(cfg, dir, sizeof(dir)) != 0) {
        j->err = -EINVAL;
        return c;
    }
    jset(j, c, "load_folders", jlist1(j, json_string(dir)));
    return c;
}

/* The whole Caddy JSON document into *dst (malloc'd): compact, keys in a fixed order, ending in a
 * newline (at 1000 services half the size of an indented one, for each write and /load). 0 or
 * -errno. */
int rproxy_render(const struct cfs_config *cfg, struct rnd_item *items, size_t n, char **dst)
{
    struct jb j = { 0 };
    struct val_upstream *ups = calloc(VAL_UPSTREAMS_MAX, sizeof(*ups));
    json_t *doc = jobj(&j), *admin = jobj(&j), *storage = jobj(&j), *apps = jobj(&j);
    json_t *http = jobj(&j), *servers = jobj(&j), *srv = jobj(&j), *tls = jobj(&j);
    json_t *cp = jobj(&j), *ah = jobj(&j), *auto_ = jobj(&j), *pol = jobj(&j);
    char path[PATH_MAX + 16];
    char *text = NULL;
    int sl = rnd_state_len(cfg);
    int rc;

    if (!ups)
        j.err = -ENOMEM;
    /* Managed mode: Caddy's admin endpoint is a unix socket under the state directory (no TCP
     * port). Its name is the running Caddy's own: the supervisor gives each mount a unique one
     * (caddy/admin-PID-RND.sock) in CONDUITFS_CADDY_ADMIN, which Caddy expands at each load. So
     * an orphaned Caddy of an earlier mount, when it exits, removes its own socket and never the
     * live one, and the rendering stays a pure function of the registry. */
    if (cfg->manage) {
        json_t *conf = jobj(&j);

        jset(&j, admin, "listen", json_string("unix/{env." RENDER_ADMIN_ENV "}"));
        /* Caddy would save every loaded config to its autosave.json: a second full encode and
         * a file write per load (about a fifth of a load at 1000 services). conduitfs posts
         * its config at each start, so nothing reads that copy. */
        jset(&j, conf, "persist", json_false());
        jset(&j, admin, "config", conf);
    } else
        jset(&j, admin, "disabled", json_true());
    jset(&j, doc, "admin", admin);
    snprintf(path, sizeof(path), "%.*s/caddy", sl, cfg->state_dir);
    jset(&j, storage, "module", json_string("file_system"));
    jset(&j, storage, "root", json_string(path));
    jset(&j, doc, "storage", storage);

    jset(&j, srv, "listen", jlist1(&j, listen_addr(&j, cfg)));
    jset(&j, srv, "routes", render_routes(&j, cfg, items, n, ups));
    /* TLS 1.3 only; the certificate is picked by SNI among the loaded ones */
    jset(&j, cp, "protocol_min", json_string("tls1.3"));
    jset(&j, srv, "tls_connection_policies", jlist1(&j, cp));
    jset(&j, ah, "disable", json_true());
    jset(&j, srv, "automatic_https", ah);
    jset(&j, servers, "conduitfs", srv);
    jset(&j, http, "servers", servers);
    jset(&j, apps, "http", http);

    jset(&j, tls, "certificates", render_certs(&j, cfg));
    /* our leaves name no OCSP responder: stapling would only log a warning per load */
    jset(&j, pol, "disable_ocsp_stapling", json_true());
    jset(&j, auto_, "policies", jlist1(&j, pol));
    jset(&j, tls, "automation", auto_);
    jset(&j, tls, "disable_ocsp_stapling", json_true());
    jset(&j, apps, "tls", tls);
    jset(&j, doc, "apps", apps);

    if (!j.err) {
        text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
            j.err = -ENOMEM;
    }
    rc = j.err;
    if (rc == 0)
        rc = splice_lists(&j, text, dst);
    free(text);
    for (size_t i = 0; i < j.nlists; i++)
        free(j.lists[i].s);
    free(j.lists);
    json_decref(doc);
    free(ups);
    return rc;
}
