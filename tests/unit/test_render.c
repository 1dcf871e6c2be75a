/* test_render.c: render_all against golden files, determinism, refusal of injected values, the
 * proxy config's shape (routes independent of the number of services, rotation, pending), and
 * (when the tools are installed) caddy validate and dnsmasq --test on the rendered configs.
 * RENDER_UPDATE_GOLDEN=1 rewrites tests/unit/golden/ from the current output; review the diff. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/render.h"
#include "testlib.h"

#define GOLDEN_DIR TEST_SRC_DIR "/golden"
#define GOLDEN_STATE "/var/lib/qp-conduit"

static bool g_update;

/* render_all over the records s[0..n) of an array, as a snapshot holds them: by pointer. */
static int render_flat(const struct cfs_config *cfg, const struct reg_service *s, size_t n,
                       render_rotation_fn rot, void *arg, struct render_out *out)
{
    const struct reg_service **p = calloc(n ? n : 1, sizeof(*p));
    int rc;

    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        p[i] = &s[i];
    rc = render_all(cfg, s ? p : NULL, n, rot, arg, out);
    free(p);
    return rc;
}

/* Settings of the golden rendering. Gateway, DNS and HTTPS addresses differ on purpose, so that a
 * mix-up between them shows in the goldens. */
static void base_cfg(struct cfs_config *cfg, const char *state)
{
    tl_base_cfg(cfg, state, "internal,qp.test", "10.77.0.1", 5354, "10.77.0.2");
    cfg->manage = false;
    snprintf(cfg->hostname, sizeof(cfg->hostname), "gw1");
}

static struct reg_service mk(const char *name, const char *upstream, const char *domain,
                             const char *health, const char *mode, enum reg_status st)
{
    struct reg_service s;

    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.upstream, sizeof(s.upstream), "%s", upstream);
    snprintf(s.domain, sizeof(s.domain), "%s", domain);
    snprintf(s.health_check, sizeof(s.health_check), "%s", health);
    snprintf(s.mode, sizeof(s.mode), "%s", mode);
    snprintf(s.monitoring, sizeof(s.monitoring), "{}");
    snprintf(s.lb_policy, sizeof(s.lb_policy), "round_robin");
    s.status = st;
    snprintf(s.registered_at, sizeof(s.registered_at), "2024-05-01T12:00:00Z");
    if (st == REG_INACTIVE)
        snprintf(s.deregistered_at, sizeof(s.deregistered_at), "2024-05-02T12:00:00Z");
    return s;
}

/* The fixed registry, in (unsorted) file order. */
enum { FIX_CORE, FIX_N = 11 };
static void fixture(struct reg_service *s)
{
    s[FIX_CORE] = mk("core", "10.0.1.10:8000", "core.internal", "/health", "proxy", REG_ACTIVE);
    s[1] = mk("web", "", "web.internal", "/health", "proxy", REG_PENDING);
    s[2] = mk("secure", "https://backend-1.corp.example:8443", "secure.qp.test",
              "/healthz?full=1&fmt=json", "proxy", REG_ACTIVE);
    s[3] = mk("old", "10.0.9.9:80", "old.internal", "/health", "proxy", REG_INACTIVE);
    s[4] = mk("v6", "http://[fd00::10]:8080", "v6.internal", "/status", "proxy", REG_ACTIVE);
    s[5] = mk("nas", "10.0.2.5:5000", "nas.internal", "/health", "dns", REG_ACTIVE);
    s[6] = mk("printer", "[fd00::20]:631", "printer.qp.test", "/health", "dns", REG_ACTIVE);
    s[7] = mk("lab", "", "lab.internal", "/health", "dns", REG_PENDING);
    s[8] = mk("api", "10.0.1.11:9000", "api.internal", "/v1/health", "proxy", REG_ACTIVE);
    s[9] = mk("llm", "10.0.4.1:8000\n10.0.4.2:8000\n[fd00::41]:8000", "llm.internal", "/health",
              "proxy", REG_ACTIVE);
    snprintf(s[9].lb_policy, sizeof(s[9].lb_policy), "first");
    s[10] = mk("vllm", "10.0.5.1:8000\n10.0.5.2:8001", "vllm.qp.test", "/health", "dns",
               REG_ACTIVE);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)len + 1);
    if (!buf)
        goto out;
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    return buf;
}

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (!f)
        return -errno;
    if (fwrite(data, 1, strlen(data), f) != strlen(data))
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Compare data with the golden file rel (or rewrite it in update mode). */
static void check_golden(const char *rel, const char *data)
{
    char path[1024];
    char *want;

    snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, rel);
    if (g_update) {
        CHECKF(write_file(path, data) == 0, "cannot write %s", path);
        return;
    }
    want = read_file(path);
    CHECKF(want != NULL, "missing golden %s (run with RENDER_UPDATE_GOLDEN=1)", path);
    if (want) {
        CHECKF(strcmp(want, data) == 0, "%s differs:\n--- want\n%s--- got\n%s", rel, want, data);
        free(want);
    }
}

static bool same_output(const struct render_out *a, const struct render_out *b)
{
    if (strcmp(a->dnsmasq_conf, b->dnsmasq_conf) != 0 || strcmp(a->proxy, b->proxy) != 0 ||
        a->nhosts != b->nhosts)
        return false;
    for (size_t i = 0; i < a->nhosts; i++) {
        if (strcmp(a->hosts[i].name, b->hosts[i].name) != 0 ||
            strcmp(a->hosts[i].data, b->hosts[i].data) != 0)
            return false;
    }
    return true;
}

static bool is_zero(const struct render_out *o)
{
    return !o->dnsmasq_conf && !o->proxy && !o->hosts && o->nhosts == 0;
}

static const struct render_file *find_host(const struct render_out *o, const char *name)
{
    for (size_t i = 0; i < o->nhosts; i++)
        if (strcmp(o->hosts[i].name, name) == 0)
            return &o->hosts[i];
    return NULL;
}

static size_t count_golden_hosts(void)
{
    DIR *d = opendir(GOLDEN_DIR "/hosts");
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The proxy config parsed, or NULL (a failed check). */
static json_t *parse_proxy(const struct render_out *o)
{
    json_error_t e;
    json_t *j = o->proxy ? json_loads(o->proxy, 0, &e) : NULL;

    CHECKF(j != NULL, "the proxy config is not JSON: %s", o->proxy ? e.text : "(none)");
    return j;
}

/* The server's routes array. */
static json_t *routes_of(json_t *doc)
{
    json_t *http = json_object_get(json_object_get(doc, "apps"), "http");

    return json_object_get(json_object_get(json_object_get(http, "servers"), "conduitfs"),
                           "routes");
}

/* How many objects under v carry a "handler" key (handlers, at any depth). */
static size_t count_handlers(json_t *v)
{
    size_t n = 0, i;
    const char *k;
    json_t *x;

    if (json_is_object(v)) {
        if (json_object_get(v, "handler"))
            n++;
        json_object_foreach(v, k, x)
            n += count_handlers(x);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            n += count_handlers(x);
    }
    return n;
}

/* The route of pool key: "@id" cfs-pool-KEY, or the keeper's vars matcher; NULL if none. */
static json_t *pool_route(json_t *routes, const char *key)
{
    size_t i;
    json_t *r;
    char id[96];

    snprintf(id, sizeof(id), "cfs-pool-%s", key);
    json_array_foreach(routes, i, r) {
        json_t *v = json_object_get(json_object_get(json_array_get(json_object_get(r, "match"),
                                                                   0), "vars"), "{cfs_pool}");
        const char *rid = json_string_value(json_object_get(r, "@id"));

        if ((v && strcmp(json_string_value(json_array_get(v, 0)), key) == 0) ||
            (rid && strcmp(rid, id) == 0))
            return r;
    }
    return NULL;
}

/* The pool key of the route whose host list holds domain (its "@id" without "cfs-pool-"), or
 * "" when no route does. */
static const char *host_pool(json_t *routes, const char *domain)
{
    size_t i, k;
    json_t *r, *h;

    json_array_foreach(routes, i, r) {
        json_t *hosts = json_object_get(json_array_get(json_object_get(r, "match"), 0), "host");
        const char *rid = json_string_value(json_object_get(r, "@id"));

        json_array_foreach(hosts, k, h)
            if (rid && strncmp(rid, "cfs-pool-", 9) == 0 &&
                strcmp(json_string_value(h), domain) == 0)
                return rid + 9;
    }
    return "";
}

/* The outputs of the mapping for input in a map handler, or NULL. */
static json_t *map_outputs(json_t *map, const char *input)
{
    size_t i;
    json_t *m;

    json_array_foreach(json_object_get(map, "mappings"), i, m)
        if (strcmp(json_string_value(json_object_get(m, "input")), input) == 0)
            return json_object_get(m, "outputs");
    return NULL;
}

/* The outputs as one space-separated string, into buf. */
static const char *joined(json_t *outs, char *buf, size_t len)
{
    size_t i, n = 0;
    json_t *o;

    buf[0] = '\0';
    json_array_foreach(outs, i, o) {
        int w = snprintf(buf + n, len - n, "%s%s", i ? " " : "", json_string_value(o));

        if (w < 0 || (size_t)w >= len - n)
            break;
        n += (size_t)w;
    }
    return buf;
}

static void test_golden(void)
{
    struct cfs_config cfg;
    struct reg_service s[FIX_N];
    struct render_out out = {0};
    char rel[128], buf[512];
    json_t *doc, *routes, *r;

    base_cfg(&cfg, GOLDEN_STATE);
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (!out.proxy)
        return;
    if (g_update) {
        mkdir(GOLDEN_DIR, 0755);
        mkdir(GOLDEN_DIR "/hosts", 0755);
    }
    check_golden("dnsmasq.conf", out.dnsmasq_conf);
    check_golden("caddy.json", out.proxy);
    CHECK_INT(out.nhosts, 8);
    for (size_t i = 0; i < out.nhosts; i++) {
        snprintf(rel, sizeof(rel), "hosts/%s", out.hosts[i].name);
        check_golden(rel, out.hosts[i].data);
        if (i > 0)
            CHECK(strcmp(out.hosts[i - 1].name, out.hosts[i].name) < 0);
    }
    if (!g_update)
        CHECK_INT(count_golden_hosts(), out.nhosts);

    /* Spot checks that do not depend on the goldens being reviewed right. */
    CHECK(find_host(&out, "old") == NULL);
    CHECK(find_host(&out, "web") == NULL);                   /* pending: no DNS record */
    CHECK(find_host(&out, "lab") == NULL);
    CHECK(strstr(out.proxy, "old.internal") == NULL);
    CHECK(strstr(out.proxy, "nas.internal") == NULL);      /* dns mode: no route */
    CHECK(strstr(out.proxy, "printer.qp.test") == NULL);
    CHECK(strstr(out.proxy, "vllm.qp.test") == NULL);
    CHECK(strstr(out.proxy, "web.internal") == NULL);      /* pending: no route, no leaf */
    CHECK(strstr(out.proxy, "lab.internal") == NULL);
    CHECK(strstr(out.proxy, "pending") == NULL);
    CHECK(out.proxy[strlen(out.proxy) - 1] == '\n');
    if (find_host(&out, "nas"))
        CHECK_STR(find_host(&out, "nas")->data, "10.0.2.5 nas.internal\n");
    if (find_host(&out, "printer"))
        CHECK_STR(find_host(&out, "printer")->data, "fd00::20 printer.qp.test\n");
    if (find_host(&out, "vllm"))
        CHECK_STR(find_host(&out, "vllm")->data,
                  "10.0.5.1 vllm.qp.test\n10.0.5.2 vllm.qp.test\n");
    if (find_host(&out, "v6"))
        CHECK_STR(find_host(&out, "v6")->data, "10.77.0.1 v6.internal\n");
    if (find_host(&out, "llm"))
        CHECK_STR(find_host(&out, "llm")->data, "10.77.0.1 llm.internal\n");

    doc = parse_proxy(&out);
    routes = routes_of(doc);
    CHECK(json_is_true(json_object_get(json_object_get(doc, "admin"), "disabled")));
    /* pools 1-round_robin-http (api, core, v6), 1-round_robin-https-name (secure),
     * 3-first-http (llm), keeper, 404 */
    CHECK_INT(json_array_size(routes), 5);
    r = pool_route(routes, "1-round_robin-http");
    CHECK_INT(json_array_size(json_object_get(json_array_get(json_object_get(r, "match"), 0),
                                              "host")), 3);
    CHECK_STR(host_pool(routes, "llm.internal"), "3-first-http");
    CHECK_STR(host_pool(routes, "secure.qp.test"), "1-round_robin-https-name");
    r = pool_route(routes, "3-first-http");
    CHECK(r != NULL);
    if (r) {
        json_t *h = json_object_get(r, "handle"), *rp = json_array_get(h, 1);

        CHECK_STR(joined(map_outputs(json_array_get(h, 0), "llm.internal"), buf, sizeof(buf)),
                  "10.0.4.1 8000 10.0.4.2 8000 fd00::41 8000");
        CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(rp,
                  "load_balancing"), "selection_policy"), "policy")), "first");
        CHECK_INT(json_array_size(json_object_get(json_object_get(rp, "dynamic_upstreams"),
                                                  "sources")), 3);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(json_object_get(rp,
                  "health_checks"), "passive"), "max_fails")), 2);
    }
    r = pool_route(routes, "1-round_robin-https-name");
    CHECK(r != NULL);
    if (r) {
        json_t *rp = json_array_get(json_object_get(r, "handle"), 1);

        CHECK(json_object_get(json_object_get(rp, "transport"), "tls") != NULL);
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(rp,
                  "upstreams"), 0), "dial")), "{cfs_h0}:{cfs_p0}");
    }
    r = pool_route(routes, "keep");
    CHECK(r != NULL);
    if (r) {
        json_t *ups = json_object_get(json_array_get(json_object_get(r, "handle"), 0),
                                      "upstreams");

        /* every in-rotation address of the address pools, sorted */
        CHECK_INT(json_array_size(ups), 6);
        CHECK_STR(json_string_value(json_object_get(json_array_get(ups, 0), "dial")),
                  "10.0.1.10:8000");
        CHECK_STR(json_string_value(json_object_get(json_array_get(ups, 5), "dial")),
                  "[fd00::41]:8000");
    }
    json_decref(doc);
    render_free(&out);
    CHECK(is_zero(&out));
}

/* A rotation callback: every upstream but those listed in arg (NULL-terminated "svc upstream"
 * strings). */
static bool rot_except(const char *service, const char *upstream, void *arg)
{
    char key[600];

    snprintf(key, sizeof(key), "%s %s", service, upstream);
    for (const char *const *x = arg; *x; x++)
        if (strcmp(*x, key) == 0)
            return false;
    return true;
}

/* rot takes an upstream out of the pool's map and out of a dns-mode answer; with every one out,
 * a proxy-mode service goes to the "down" pool (503) and a dns-mode one answers all of them. */
static void test_rotation(void)
{
    static const char *const one[] = { "llm 10.0.4.2:8000", "vllm 10.0.5.2:8001", NULL };
    static const char *const all[] = { "llm 10.0.4.1:8000", "llm 10.0.4.2:8000",
                                       "llm [fd00::41]:8000", "vllm 10.0.5.1:8000",
                                       "vllm 10.0.5.2:8001", NULL };
    struct cfs_config cfg;
    struct reg_service s[FIX_N];
    struct render_out out = {0};
    char buf[512];
    json_t *doc, *routes, *r;

    base_cfg(&cfg, GOLDEN_STATE);
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, rot_except, (void *)one, &out), 0);
    doc = parse_proxy(&out);
    routes = routes_of(doc);
    CHECK_STR(host_pool(routes, "llm.internal"), "2-first-http");
    CHECK(pool_route(routes, "3-first-http") == NULL);
    r = pool_route(routes, "2-first-http");
    CHECK(r != NULL);
    if (r)
        CHECK_STR(joined(map_outputs(json_array_get(json_object_get(r, "handle"), 0),
                                     "llm.internal"), buf, sizeof(buf)),
                  "10.0.4.1 8000 fd00::41 8000");
    CHECK(strstr(out.proxy, "10.0.4.2") == NULL);
    if (find_host(&out, "vllm"))
        CHECK_STR(find_host(&out, "vllm")->data, "10.0.5.1 vllm.qp.test\n");
    json_decref(doc);
    render_free(&out);

    CHECK_INT(render_flat(&cfg, s, FIX_N, rot_except, (void *)all, &out), 0);
    doc = parse_proxy(&out);
    routes = routes_of(doc);
    CHECK_STR(host_pool(routes, "llm.internal"), "down");
    r = pool_route(routes, "down");
    CHECK(r != NULL);
    if (r) {
        json_t *h = json_array_get(json_object_get(r, "handle"), 1);

        CHECK_STR(joined(map_outputs(json_array_get(json_object_get(r, "handle"), 0),
                                     "llm.internal"), buf, sizeof(buf)), "llm");

        CHECK_STR(json_string_value(json_object_get(h, "handler")), "static_response");
        CHECK_INT(json_integer_value(json_object_get(h, "status_code")), 503);
        CHECK_STR(json_string_value(json_object_get(h, "body")),
                  "service {cfs_svc} has no healthy upstream\n");
    }
    CHECK(strstr(out.proxy, "10.0.4.") == NULL);
    if (find_host(&out, "vllm"))                /* DNS cannot answer 503: fail open */
        CHECK_STR(find_host(&out, "vllm")->data,
                  "10.0.5.1 vllm.qp.test\n10.0.5.2 vllm.qp.test\n");
    json_decref(doc);
    render_free(&out);
}

/* n proxy-mode services spread over three pools: the routes and handlers do not depend on n,
 * only the map entries do. */
static void pools_shape(size_t n, size_t *nroutes, size_t *nhandlers, size_t *nmap)
{
    static const char *const ups[] = { "10.1.%zu.%zu:80", "10.1.%zu.%zu:80\n10.2.%zu.%zu:80",
                                       "https://10.1.%zu.%zu:443" };
    struct cfs_config cfg;
    struct reg_service *s = calloc(n, sizeof(*s));
    struct render_out out = {0};
    char name[32], dom[64], up[128];
    json_t *doc;

    *nroutes = *nhandlers = *nmap = 0;
    base_cfg(&cfg, GOLDEN_STATE);
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "s%zu", i);
        snprintf(dom, sizeof(dom), "s%zu.internal", i);
        snprintf(up, sizeof(up), ups[i % 3], i / 250, i % 250, i / 250, i % 250);
        s[i] = mk(name, up, dom, "/health", "proxy", REG_ACTIVE);
    }
    CHECK_INT(render_flat(&cfg, s, n, NULL, NULL, &out), 0);
    doc = parse_proxy(&out);
    if (doc) {
        json_t *routes = routes_of(doc);

        *nroutes = json_array_size(routes);
        *nhandlers = count_handlers(routes);
        /* the names in the pools' host lists */
        for (size_t i = 0; i < json_array_size(routes); i++)
            *nmap += json_array_size(json_object_get(json_array_get(json_object_get(
                json_array_get(routes, i), "match"), 0), "host"));
    }
    json_decref(doc);
    render_free(&out);
    free(s);
}

static void test_constant_shape(void)
{
    size_t r10, h10, m10, r1000, h1000, m1000;

    pools_shape(10, &r10, &h10, &m10);
    pools_shape(1000, &r1000, &h1000, &m1000);
    printf("routes %zu/%zu, handlers %zu/%zu, host names %zu/%zu at 10/1000 services\n",
           r10, r1000, h10, h1000, m10, m1000);
    CHECK_INT(r10, 5);          /* 3 pools, keeper, 404 */
    CHECK_INT(r1000, r10);
    CHECK_INT(h1000, h10);
    CHECK_INT(m10, 10);
    CHECK_INT(m1000, 1000);
}

static void test_determinism(void)
{
    struct cfs_config cfg;
    struct reg_service s[FIX_N], p[FIX_N];
    struct render_out a = {0}, b = {0};
    unsigned seed = 12345;

    base_cfg(&cfg, GOLDEN_STATE);
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &a), 0);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &b), 0);
    if (a.proxy && b.proxy)
        CHECK(same_output(&a, &b));
    render_free(&b);

    for (int round = 0; round < 20; round++) {
        memcpy(p, s, sizeof(p));
        for (size_t i = FIX_N - 1; i > 0; i--) {        /* Fisher-Yates with a fixed LCG */
            seed = seed * 1103515245u + 12345u;
            size_t j = (seed >> 16) % (i + 1);
            struct reg_service t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        CHECK_INT(render_flat(&cfg, p, FIX_N, NULL, NULL, &b), 0);
        if (a.proxy && b.proxy)
            CHECKF(same_output(&a, &b), "round %d", round);
        render_free(&b);
    }
    render_free(&a);
}

/* Expect -EINVAL and an untouched (zeroed) result. */
static void expect_einval(const struct cfs_config *cfg, const struct reg_service *s, size_t n,
                          const char *what)
{
    struct render_out out;

    memset(&out, 0xa5, sizeof(out));
    int rc = render_flat(cfg, s, n, NULL, NULL, &out);

    CHECKF(rc == -EINVAL, "%s: got %d", what, rc);
    CHECKF(is_zero(&out), "%s: output not zeroed", what);
    if (rc == 0)
        render_free(&out);
}

/* Insert inj into val at pos (clamped), into buf. */
static void splice_in(char *buf, size_t len, const char *val, size_t pos, const char *inj)
{
    size_t vlen = strlen(val);

    if (pos > vlen)
        pos = vlen;
    snprintf(buf, len, "%.*s%s%s", (int)pos, val, inj, val + pos);
}

static void test_injection(void)
{
    static const char *const inj[] = {
        "\n", "\r", "\t", " ", "{", "}", "#", "`", "\"", "\\", "\x7f", "\xc3\xa9", "\n}\nx {",
    };
    struct cfs_config cfg;
    struct reg_service s[FIX_N];
    char what[160];

    base_cfg(&cfg, GOLDEN_STATE);
    for (size_t i = 0; i < sizeof(inj) / sizeof(inj[0]); i++) {
        for (size_t pos = 0; pos < 3; pos++) {
            size_t at = pos == 0 ? 0 : pos == 1 ? 2 : 9999;

#define INJECT_SVC(idx, field) do { \
                fixture(s); \
                char tmp[sizeof(s[0].field)]; \
                splice_in(tmp, sizeof(tmp), s[idx].field, at, inj[i]); \
                memcpy(s[idx].field, tmp, sizeof(tmp)); \
                snprintf(what, sizeof(what), "svc %d %s inj %zu at %zu", idx, #field, i, at); \
                expect_einval(&cfg, s, FIX_N, what); \
            } while (0)
            INJECT_SVC(FIX_CORE, name);
            INJECT_SVC(FIX_CORE, upstream);
            INJECT_SVC(FIX_CORE, domain);
            INJECT_SVC(FIX_CORE, health_check);
            INJECT_SVC(FIX_CORE, mode);
            INJECT_SVC(1, upstream);      /* pending: an injected upstream is not "empty" */
            INJECT_SVC(5, upstream);      /* dns mode */
            INJECT_SVC(7, domain);        /* pending dns */
            INJECT_SVC(9, upstream);      /* several upstreams */
            INJECT_SVC(9, lb_policy);
            INJECT_SVC(10, upstream);     /* several upstreams, dns mode */
#undef INJECT_SVC

#define INJECT_CFG(field) do { \
                struct cfs_config c = cfg; \
                splice_in(c.field, sizeof(c.field), cfg.field, at, inj[i]); \
                fixture(s); \
                snprintf(what, sizeof(what), "cfg %s inj %zu at %zu", #field, i, at); \
                expect_einval(&c, s, FIX_N, what); \
            } while (0)
            INJECT_CFG(state_dir);
            INJECT_CFG(suffixes[0]);
            INJECT_CFG(suffixes[1]);
            INJECT_CFG(gateway_ip);
            INJECT_CFG(dns_addr);
            INJECT_CFG(https_addr);
#undef INJECT_CFG
        }
    }

    /* An inactive record is never rendered, so it is not checked either. */
    struct render_out out = {0};
    fixture(s);
    snprintf(s[3].domain, sizeof(s[3].domain), "old.internal\n}\nevil {");
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (out.proxy)
        CHECK(strstr(out.proxy, "evil") == NULL);
    render_free(&out);
}

static void test_refusals(void)
{
    struct cfs_config cfg, c;
    struct reg_service s[FIX_N];

    base_cfg(&cfg, GOLDEN_STATE);

#define FIELD(f) offsetof(struct reg_service, f), sizeof(((struct reg_service *)0)->f)
    static const struct {
        size_t i, off, size;
        const char *val, *what;
    } bad[] = {
        { 5, FIELD(upstream), "nas-box.lan:5000", "dns mode with a host name upstream" },
        { FIX_CORE, FIELD(upstream), "", "active without upstream" },
        { FIX_CORE, FIELD(mode), "tcp", "unknown mode" },
        { FIX_CORE, FIELD(domain), "core.example.com", "domain outside the suffixes" },
        { FIX_CORE, FIELD(domain), "internal", "bare suffix" },
        { FIX_CORE, FIELD(name), "Core", "upper-case name" },
        { FIX_CORE, FIELD(health_check), "health", "relative health path" },
        { FIX_CORE, FIELD(upstream), "10.0.1.10", "upstream without port" },
        { 8, FIELD(name), "core", "duplicate name" },
        { 8, FIELD(domain), "core.internal", "duplicate domain" },
    };
#undef FIELD
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        fixture(s);
        snprintf((char *)&s[bad[k].i] + bad[k].off, bad[k].size, "%s", bad[k].val);
        expect_einval(&cfg, s, FIX_N, bad[k].what);
    }
    fixture(s);
    s[FIX_CORE].status = (enum reg_status)7;
    expect_einval(&cfg, s, FIX_N, "unknown status");
    fixture(s);
    memset(s[FIX_CORE].name, 'a', sizeof(s[FIX_CORE].name));
    expect_einval(&cfg, s, FIX_N, "unterminated name");

    fixture(s);
    c = cfg;
    c.https_port = 0;
    expect_einval(&c, s, FIX_N, "https port 0");
    c = cfg;
    c.dns_port = 70000;
    expect_einval(&c, s, FIX_N, "dns port 70000");
    c = cfg;
    snprintf(c.state_dir, sizeof(c.state_dir), "var/lib/qp-conduit");
    expect_einval(&c, s, FIX_N, "relative state dir");
    c = cfg;
    snprintf(c.gateway_ip, sizeof(c.gateway_ip), "gateway.lan");
    expect_einval(&c, s, FIX_N, "gateway not an address");
    c = cfg;
    c.nsuffixes = CFG_MAX_SUFFIXES + 1;
    expect_einval(&c, s, FIX_N, "too many suffixes");
    expect_einval(NULL, s, FIX_N, "NULL cfg");
    expect_einval(&cfg, NULL, 1, "NULL records");
}

static void test_variants(void)
{
    struct cfs_config cfg;
    struct reg_service s[FIX_N];
    struct render_out out = {0};

    /* Managed mode: the admin API moves to a unix socket under the state directory. */
    base_cfg(&cfg, GOLDEN_STATE);
    cfg.manage = true;
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (out.proxy) {
        json_t *doc = parse_proxy(&out);

        /* the supervisor puts this mount's socket in the environment; Caddy expands it */
        CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "admin"), "listen")),
                  "unix/{env.CONDUITFS_CADDY_ADMIN}");
        CHECK(json_object_get(json_object_get(doc, "admin"), "disabled") == NULL);
        json_decref(doc);
    }
    render_free(&out);

    /* Reverse DNS: the gateway address answers the host's name (IPv4 and IPv6), or no name
     * when the host name is not a DNS name; never a service's (hosts.d cannot outrank it). */
    base_cfg(&cfg, GOLDEN_STATE);
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (out.dnsmasq_conf)
        CHECK(strstr(out.dnsmasq_conf, "\nptr-record=1.0.77.10.in-addr.arpa,gw1\n") != NULL);
    render_free(&out);
    snprintf(cfg.gateway_ip, sizeof(cfg.gateway_ip), "2001:db8::1");
    snprintf(cfg.hostname, sizeof(cfg.hostname), "gw1.example.org");
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (out.dnsmasq_conf)
        CHECK(strstr(out.dnsmasq_conf, "\nptr-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
                      ".0.0.8.b.d.0.1.0.0.2.ip6.arpa,gw1.example.org\n") != NULL);
    render_free(&out);
    static const char *const bad_hosts[] = { "", "bad host", "x\nport=53", "a{b}", "-x", "x_y" };
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        base_cfg(&cfg, GOLDEN_STATE);
        snprintf(cfg.hostname, sizeof(cfg.hostname), "%s", bad_hosts[i]);
        CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
        if (out.dnsmasq_conf)
            CHECKF(strstr(out.dnsmasq_conf, "\nptr-record=1.0.77.10.in-addr.arpa\nhostsdir=")
                   != NULL, "host name [%s]:\n%s", bad_hosts[i], out.dnsmasq_conf);
        render_free(&out);
    }

    /* An empty registry and a trailing slash on the state directory. */
    base_cfg(&cfg, GOLDEN_STATE "/");
    CHECK_INT(render_flat(&cfg, NULL, 0, NULL, NULL, &out), 0);
    CHECK_INT(out.nhosts, 0);
    if (out.proxy) {
        json_t *doc = parse_proxy(&out);

        CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "storage"), "root")),
                  "/var/lib/qp-conduit/caddy");
        CHECK(strstr(out.proxy, "\"/var/lib/qp-conduit/tls/serving\"") != NULL);
        CHECK(strstr(out.proxy, "load_files") == NULL);
        CHECK_INT(json_array_size(routes_of(doc)), 1);   /* the 404 */
        CHECK(strstr(out.dnsmasq_conf, "hostsdir=/var/lib/qp-conduit/dns/hosts.d\n"));
        json_decref(doc);
    }
    render_free(&out);

    /* IPv6 everywhere in the settings. */
    base_cfg(&cfg, GOLDEN_STATE);
    snprintf(cfg.gateway_ip, sizeof(cfg.gateway_ip), "fd00::1");
    snprintf(cfg.dns_addr, sizeof(cfg.dns_addr), "::1");
    snprintf(cfg.https_addr, sizeof(cfg.https_addr), "fd00::1");
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (out.proxy) {
        CHECK(strstr(out.dnsmasq_conf, "listen-address=::1\n"));
        CHECK(strstr(out.proxy, "\"[fd00::1]:8443\""));
        CHECK_STR(find_host(&out, "core") ? find_host(&out, "core")->data : "",
                  "fd00::1 core.internal\n");
    }
    render_free(&out);
}

/* The serving folder under the state directory (trailing slashes dropped), and a buffer too
 * small for it. */
static void test_serving_dir(void)
{
    struct cfs_config cfg;
    char dir[128];

    base_cfg(&cfg, "/s");
    CHECK_INT(render_serving_dir(&cfg, dir, sizeof(dir)), 0);
    CHECK_STR(dir, "/s/tls/serving");
    base_cfg(&cfg, "/s//");
    CHECK_INT(render_serving_dir(&cfg, dir, sizeof(dir)), 0);
    CHECK_STR(dir, "/s/tls/serving");
    /* The exact fit: strlen("/s/tls/serving") == 14. */
    CHECK_INT(render_serving_dir(&cfg, dir, 15), 0);
    CHECK_INT(render_serving_dir(&cfg, dir, 14), -ENAMETOOLONG);
    CHECK_STR(dir, "");
}

/* True when an executable called name is on PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[1024];

    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);

        if (len > 0 && snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, name) <
            (int)sizeof(buf) && access(buf, X_OK) == 0)
            return true;
        path = end ? end + 1 : NULL;
    }
    return false;
}

/* Run argv with stdout and stderr into log; the exit status, or -1. */
static int run_tool(char *const argv[], const char *log)
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The certificate files the fixture's proxy config loads, under the state directory dir: one
 * self-signed leaf (openssl) as each routed domain's own pair and as a bundle in tls/serving.
 * true on success. */
static bool make_leaves(const char *dir, const char *log)
{
    static const char *const routed[] = { "api.internal", "core.internal", "llm.internal",
                                          "secure.qp.test", "v6.internal" };
    char key[512], crt[512], path[600];
    char *k, *c;
    bool ok;

    snprintf(key, sizeof(key), "%s/leaf.key", dir);
    snprintf(crt, sizeof(crt), "%s/leaf.crt", dir);
    char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=core.internal",
                     "-days", "2", "-keyout", key, "-out", crt, NULL };
    if (run_tool(argv, log) != 0)
        return false;
    k = read_file(key);
    c = read_file(crt);
    ok = k && c;
    snprintf(path, sizeof(path), "%s/tls", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/tls/serving", dir);
    mkdir(path, 0700);
    for (size_t i = 0; ok && i < sizeof(routed) / sizeof(routed[0]); i++) {
        snprintf(path, sizeof(path), "%s/tls/%s", dir, routed[i]);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/tls/%s/cert.pem", dir, routed[i]);
        ok = write_file(path, c) == 0;
        snprintf(path, sizeof(path), "%s/tls/%s/key.pem", dir, routed[i]);
        ok = ok && write_file(path, k) == 0;
    }
    if (ok) {
        size_t lc = strlen(c), lk = strlen(k);
        char *both = malloc(lc + lk + 1);

        ok = both != NULL;
        if (ok) {
            memcpy(both, c, lc);
            memcpy(both + lc, k, lk + 1);
            snprintf(path, sizeof(path), "%s/tls/serving/leaf.pem", dir);
            ok = write_file(path, both) == 0;
        }
        free(both);
    }
    free(k);
    free(c);
    return ok;
}

/* Feed a rendering to caddy validate (which provisions every module, loading the certificates)
 * and dnsmasq --test, with the state directory in a temp dir. */
static void check_with_tools(bool manage)
{
    char dir[] = "/tmp/test_render.XXXXXX";
    char path[512], hostsd[128], log[128];
    struct cfs_config cfg;
    struct reg_service s[FIX_N];
    struct render_out out = {0};
    bool caddy = on_path("caddy"), dnsmasq = on_path("dnsmasq");

    if (!caddy)
        printf("SKIP caddy validate: caddy is not on PATH\n");
    if (!dnsmasq)
        printf("SKIP dnsmasq --test: dnsmasq is not on PATH\n");
    if (!caddy && !dnsmasq)
        return;
    CHECK(mkdtemp(dir) != NULL);
    base_cfg(&cfg, dir);
    cfg.manage = manage;
    fixture(s);
    CHECK_INT(render_flat(&cfg, s, FIX_N, NULL, NULL, &out), 0);
    if (!out.proxy)
        goto out;
    snprintf(log, sizeof(log), "%s/tool.log", dir);

    if (caddy) {
        snprintf(path, sizeof(path), "%s/caddy.json", dir);
        CHECK_INT(write_file(path, out.proxy), 0);
        CHECK(make_leaves(dir, log));
        char *argv[] = { "caddy", "validate", "--config", path, NULL };
        int rc = run_tool(argv, log);
        char *msg = read_file(log);

        CHECKF(rc == 0, "caddy validate exited %d:\n%s", rc, msg ? msg : "");
        free(msg);
    }
    if (dnsmasq) {
        snprintf(path, sizeof(path), "%s/dns", dir);
        mkdir(path, 0700);
        snprintf(hostsd, sizeof(hostsd), "%s/dns/hosts.d", dir);
        CHECK_INT(mkdir(hostsd, 0700), 0);
        for (size_t i = 0; i < out.nhosts; i++) {
            snprintf(path, sizeof(path), "%s/%s", hostsd, out.hosts[i].name);
            CHECK_INT(write_file(path, out.hosts[i].data), 0);
        }
        snprintf(path, sizeof(path), "%s/dns/dnsmasq.conf", dir);
        CHECK_INT(write_file(path, out.dnsmasq_conf), 0);
        char *argv[] = { "dnsmasq", "--test", "-C", path, NULL };
        int rc = run_tool(argv, log);
        char *msg = read_file(log);

        CHECKF(rc == 0, "dnsmasq --test exited %d:\n%s", rc, msg ? msg : "");
        free(msg);
    }
out:
    render_free(&out);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const char *upd = getenv("RENDER_UPDATE_GOLDEN");

    g_update = upd && strcmp(upd, "1") == 0;
    test_golden();
    test_determinism();
    test_injection();
    test_refusals();
    test_variants();
    test_serving_dir();
    test_rotation();
    test_constant_shape();
    check_with_tools(false);
    check_with_tools(true);
    if (g_update)
        printf("golden files rewritten under %s: review them before committing\n", GOLDEN_DIR);
    return tl_finish();
}
