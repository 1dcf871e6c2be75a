/* test_validate.c: table-driven good/bad/boundary/injection cases for core/validate.c. */
#include "core/validate.h"
#include "testlib.h"

#include <errno.h>
#include <stdlib.h>

#define OK 0
#define BAD (-EINVAL)

struct scase {
    const char *in;
    int want;
};

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

/* Fill buf with n copies of c and terminate it; buf must hold n + 1 bytes. */
static char *fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* "a{63}.a{63}.a{63}." then x{nx} then tail: 192 + nx + strlen(tail) chars. */
static void long_name(char *buf, size_t len, size_t nx, const char *tail)
{
    char lab[64], xs[128];

    fill(lab, 'a', 63);
    fill(xs, 'x', nx);
    if (snprintf(buf, len, "%s.%s.%s.%s%s", lab, lab, lab, xs, tail) >= (int)len)
        buf[0] = '\0';   /* too long for buf: the caller's case then fails loudly */
}

static void test_name(void)
{
    static const struct scase t[] = {
        { "a", OK }, { "0", OK }, { "web", OK }, { "web-1", OK }, { "a-b-c", OK },
        { "1abc", OK }, { "a--b", OK }, { "x9", OK },
        { "", BAD }, { "-a", BAD }, { "a-", BAD }, { "-", BAD }, { "Web", BAD },
        { "WEB", BAD }, { "a_b", BAD }, { "a.b", BAD }, { "a/b", BAD }, { "..", BAD },
        { "a\n", BAD }, { "a\nb", BAD }, { "a{b", BAD }, { "a}b", BAD }, { "a#b", BAD },
        { "a b", BAD }, { " a", BAD }, { "a`id`", BAD }, { "a;b", BAD }, { "a$(id)", BAD },
        { "a\"b", BAD }, { "a'b", BAD }, { "a\rb", BAD }, { "a\tb", BAD }, { "a\x7f", BAD },
        { "caf\xc3\xa9", BAD }, { "a\xff", BAD },
    };
    char buf[80];

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_name(t[i].in) == t[i].want, "val_name(\"%s\")", t[i].in);
    CHECK_INT(val_name(fill(buf, 'a', 63)), OK);
    CHECK_INT(val_name(fill(buf, 'a', 64)), BAD);
    buf[0] = '-';
    buf[62] = 'a';
    buf[63] = '\0';
    CHECK_INT(val_name(buf), BAD);
    CHECK_INT(val_name(NULL), BAD);
}

static void test_ipv4(void)
{
    static const char *const good[] = {
        "0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.1.254", "1.2.3.4", "100.64.0.10",
    };
    static const char *const bad[] = {
        "", "256.0.0.1", "1.2.3.256", "010.0.0.1", "1.2.3.04", "00.0.0.0", "1..2.3", "1.2.3",
        "1.2.3.4.5", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n", "+1.2.3.4",
        "1.2.3.-4", "0x7f.0.0.1", "1.2.3.a", "1000.1.1.1", "1.2.3.4:80", "1.2.3.4#", "1.2.3.{4}",
        "1.2.3.`4`", "99999999999.1.1.1",
    };

    for (size_t i = 0; i < NCASES(good); i++)
        CHECKF(val_is_ipv4(good[i]), "val_is_ipv4(\"%s\")", good[i]);
    for (size_t i = 0; i < NCASES(bad); i++)
        CHECKF(!val_is_ipv4(bad[i]), "!val_is_ipv4(\"%s\")", bad[i]);
    CHECK(!val_is_ipv4(NULL));
}

/* The checks a name predicate (fn, called name in messages) shares: every good one is
 * accepted, every bad one and NULL refused; a label of 63 copies of c is a name, one of 64 'a's
 * not; a name of 253 chars is one, of 254 not. */
static void check_names(bool (*fn)(const char *), const char *name, const char *const *good,
                        size_t ngood, const char *const *bad, size_t nbad, char c)
{
    char buf[300], lab[80];

    for (size_t i = 0; i < ngood; i++)
        CHECKF(fn(good[i]), "%s(\"%s\")", name, good[i]);
    for (size_t i = 0; i < nbad; i++)
        CHECKF(!fn(bad[i]), "!%s(\"%s\")", name, bad[i]);
    CHECKF(!fn(NULL), "!%s(NULL)", name);
    CHECKF(fn(fill(lab, c, 63)), "%s: a 63-char label", name);
    CHECKF(!fn(fill(lab, 'a', 64)), "!%s: a 64-char label", name);
    long_name(buf, sizeof(buf), 52, ".internal");
    CHECK_INT(strlen(buf), 253);
    CHECKF(fn(buf), "%s: 253 chars", name);
    long_name(buf, sizeof(buf), 53, ".internal");
    CHECK_INT(strlen(buf), 254);
    CHECKF(!fn(buf), "!%s: 254 chars", name);
}

static void test_hostname(void)
{
    static const char *const good[] = {
        "a", "gpu1", "Gpu1", "WEB.Example.COM", "a-b.c-d", "db.internal", "1a.2b", "x.y.z",
        "0abc", "a.1b", "localhost",
    };
    static const char *const bad[] = {
        "", "-a", "a-", "a.-b", "a..b", ".a", "a.", "a_b", "a b", "a\n", "a\tb", "a\rb",
        "a{b", "a}b", "a#b", "a`id`", "a;b", "a$(x)", "a\"b", "a:80", "a/b", "caf\xc3\xa9",
        "10.0.0.1", "1.2.3", "1", "256.1.1.1", "010.0.0.1", "a.123", "0x7f.1", "0x7f000001",
        "[::1]", "::1",
    };

    check_names(val_is_hostname, "val_is_hostname", good, NCASES(good), bad, NCASES(bad), 'A');
}

static void test_dns_name(void)
{
    static const char *const good[] = {
        "a", "gpu1", "a-b.c-d", "db.internal", "1a.2b", "x.y.z", "10.0.0.1", "1.2.3", "1",
        "a.123", "0x7f.1", "web.example.com", "archive", "ca.key",
    };
    static const char *const bad[] = {
        "", "-a", "a-", "a.-b", "a-.b", "a..b", ".a", "a.", "A", "Gpu1", "web.Example.com",
        "a_b", "a b", "a\n", "a/b", "../a", "a:80", "[::1]", "::1", "caf\xc3\xa9",
    };

    check_names(val_is_dns_name, "val_is_dns_name", good, NCASES(good), bad, NCASES(bad), 'a');
}

struct ucase {
    const char *in;
    int want;
    const char *host;
    enum val_host_kind kind;
    unsigned port;
    bool tls;
};

static void test_upstream(void)
{
    static const struct ucase t[] = {
        { "10.0.0.1:80", OK, "10.0.0.1", VAL_HOST_IPV4, 80, false },
        { "http://10.0.0.1:8080", OK, "10.0.0.1", VAL_HOST_IPV4, 8080, false },
        { "https://h:1", OK, "h", VAL_HOST_NAME, 1, true },
        { "web.internal:65535", OK, "web.internal", VAL_HOST_NAME, 65535, false },
        { "Web.Internal:443", OK, "Web.Internal", VAL_HOST_NAME, 443, false },
        { "[::1]:8080", OK, "::1", VAL_HOST_IPV6, 8080, false },
        { "https://[2001:db8::1]:443", OK, "2001:db8::1", VAL_HOST_IPV6, 443, true },
        { "[::ffff:10.0.0.1]:80", OK, "::ffff:10.0.0.1", VAL_HOST_IPV6, 80, false },
        { "255.255.255.255:1", OK, "255.255.255.255", VAL_HOST_IPV4, 1, false },
        { "0.0.0.0:9", OK, "0.0.0.0", VAL_HOST_IPV4, 9, false },
    };
    static const struct scase bad[] = {
        { "", BAD }, { "http://", BAD }, { "https://", BAD }, { "h", BAD }, { "h:", BAD },
        { ":80", BAD }, { "h:0", BAD }, { "h:65536", BAD }, { "h:99999", BAD },
        { "h:123456", BAD }, { "h:080", BAD }, { "h:+80", BAD }, { "h:-1", BAD },
        { "h:1/", BAD }, { "h:1/path", BAD }, { "h:80 ", BAD }, { " h:80", BAD },
        { "h:80\n", BAD }, { "10.0.0.1:80\n", BAD }, { "h:80\r", BAD }, { "h:80\t", BAD },
        { "h :80", BAD }, { "h:8 0", BAD }, { "h:80:81", BAD }, { "h:80#x", BAD },
        { "h{a}:80", BAD }, { "h:80}", BAD }, { "a`id`:80", BAD }, { "h;id:80", BAD },
        { "$(id):80", BAD }, { "\"h\":80", BAD }, { "h'x:80", BAD }, { "h\x7f:80", BAD },
        { "caf\xc3\xa9:80", BAD }, { "h:8\xff", BAD },
        { "256.0.0.1:80", BAD }, { "010.0.0.1:80", BAD }, { "1.2.3:80", BAD },
        { "1..2.3:80", BAD }, { "0x7f.1:80", BAD }, { "-h:80", BAD }, { "h-:80", BAD },
        { "h.:80", BAD }, { "a_b:80", BAD },
        { "[fe80::1%eth0]:80", BAD }, { "[fe80::1%25eth0]:80", BAD }, { "[::1]", BAD },
        { "[::1]80", BAD }, { "[::1]:", BAD }, { "[::1]:0", BAD }, { "[]:80", BAD },
        { "[::1:80", BAD }, { "::1:80", BAD }, { "[10.0.0.1]:80", BAD }, { "[::g]:80", BAD },
        { "[h]:80", BAD }, { "[::1]:80/", BAD }, { "[::1] :80", BAD },
        { "ftp://h:80", BAD }, { "HTTP://h:80", BAD }, { "http:/h:80", BAD },
        { "http://http://h:80", BAD }, { "https//h:80", BAD }, { "user@h:80", BAD },
    };
    struct val_upstream u;
    char buf[300];

    for (size_t i = 0; i < NCASES(t); i++) {
        memset(&u, 0xa5, sizeof(u));
        int rc = val_upstream(t[i].in, &u);
        CHECKF(rc == t[i].want, "val_upstream(\"%s\") = %d", t[i].in, rc);
        if (rc != 0)
            continue;
        CHECK_STR(u.host, t[i].host);
        CHECKF(u.kind == t[i].kind, "%s kind %d", t[i].in, (int)u.kind);
        CHECKF(u.port == t[i].port, "%s port %u", t[i].in, u.port);
        CHECKF(u.tls == t[i].tls, "%s tls", t[i].in);
        CHECK_INT(val_upstream(t[i].in, NULL), OK);
    }
    for (size_t i = 0; i < NCASES(bad); i++) {
        memset(&u, 0, sizeof(u));
        u.port = 4242;
        CHECKF(val_upstream(bad[i].in, &u) == BAD, "val_upstream(\"%s\")", bad[i].in);
        CHECKF(u.port == 4242, "out untouched for \"%s\"", bad[i].in);
    }
    CHECK_INT(val_upstream(NULL, &u), BAD);

    long_name(buf, sizeof(buf), 52, ".internal:80");
    CHECK_INT(val_upstream(buf, &u), OK);
    CHECK_INT(strlen(u.host), 253);
    long_name(buf, sizeof(buf), 53, ".internal:80");
    CHECK_INT(val_upstream(buf, &u), BAD);
}

static void test_domain(void)
{
    static const char *const suf[] = { "internal", "local", "test", "corp.internal" };
    static const char *const corp[] = { "corp.internal" };
    static const struct scase t[] = {
        { "a.internal", OK }, { "core.internal", OK }, { "web-1.local", OK },
        { "a.b.c.test", OK }, { "x.corp.internal", OK }, { "1.internal", OK },
        { "", BAD }, { "internal", BAD }, { ".internal", BAD }, { "a.internal.", BAD },
        { "A.internal", BAD }, { "Core.Internal", BAD }, { "a.INTERNAL", BAD },
        { "xinternal", BAD }, { "a.xinternal", BAD }, { "a-internal", BAD },
        { "a.internal.com", BAD }, { "a.example.com", BAD }, { "a..internal", BAD },
        { "-a.internal", BAD }, { "a-.internal", BAD }, { "a_b.internal", BAD },
        { "a.local.x", BAD }, { "a.internalx", BAD },
        { "core.internal\nlocal=/x/", BAD }, { "a.internal\n", BAD }, { "a\n.internal", BAD },
        { "a{b}.internal", BAD }, { "a}.internal", BAD }, { "a#.internal", BAD },
        { "a b.internal", BAD }, { "a.internal ", BAD }, { "a`id`.internal", BAD },
        { "a;b.internal", BAD }, { "$(id).internal", BAD }, { "a\".internal", BAD },
        { "a\r.internal", BAD }, { "a\t.internal", BAD }, { "caf\xc3\xa9.internal", BAD },
        { "a/b.internal", BAD }, { "*.internal", BAD }, { "a:1.internal", BAD },
    };
    char buf[300], lab[80];

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_domain(t[i].in, suf, NCASES(suf)) == t[i].want, "val_domain(\"%s\")",
               t[i].in);

    CHECK_INT(val_domain("x.corp.internal", corp, 1), OK);
    CHECK_INT(val_domain("corp.internal", corp, 1), BAD);
    CHECK_INT(val_domain("x.internal", corp, 1), BAD);
    CHECK_INT(val_domain("x.xcorp.internal", corp, 1), BAD);
    CHECK_INT(val_domain("a.internal", suf, 0), BAD);
    CHECK_INT(val_domain("a.internal", NULL, 0), BAD);
    CHECK_INT(val_domain(NULL, suf, NCASES(suf)), BAD);

    static const char *const odd[] = { NULL, "", ".internal", "test" };
    CHECK_INT(val_domain("a.test", odd, NCASES(odd)), OK);
    CHECK_INT(val_domain("a.internal", odd, NCASES(odd)), BAD);

    snprintf(buf, sizeof(buf), "%s.internal", fill(lab, 'a', 63));
    CHECK_INT(val_domain(buf, suf, NCASES(suf)), OK);
    snprintf(buf, sizeof(buf), "%s.internal", fill(lab, 'a', 64));
    CHECK_INT(val_domain(buf, suf, NCASES(suf)), BAD);
    long_name(buf, sizeof(buf), 52, ".internal");
    CHECK_INT(strlen(buf), 253);
    CHECK_INT(val_domain(buf, suf, NCASES(suf)), OK);
    long_name(buf, sizeof(buf), 53, ".internal");
    CHECK_INT(strlen(buf), 254);
    CHECK_INT(val_domain(buf, suf, NCASES(suf)), BAD);
}

static void test_health(void)
{
    static const struct scase t[] = {
        { "/", OK }, { "/health", OK }, { "/healthz?full=1&x=y", OK }, { "/a/b/c", OK },
        { "/a%20b", OK }, { "/%7e%7E", OK }, { "/-._~", OK }, { "/!$&'()*+,;=", OK },
        { "/a:b@c", OK }, { "/?", OK }, { "/a/", OK }, { "/a//b", OK }, { "/v1/status?q=a/b", OK },
        { "", BAD }, { "health", BAD }, { "//evil.example/x", BAD }, { "//", BAD },
        { "http://x/h", BAD }, { " /h", BAD }, { "/h x", BAD }, { "/h\n", BAD },
        { "/h\nHost: x", BAD }, { "/h\r", BAD }, { "/h\tx", BAD }, { "/h#x", BAD },
        { "/health }", BAD }, { "/h{x", BAD }, { "/h}", BAD }, { "/h`id`", BAD },
        { "/h\"x", BAD }, { "/h<x>", BAD }, { "/h\\x", BAD }, { "/h^x", BAD }, { "/h|x", BAD },
        { "/h[x]", BAD }, { "/h\x7f", BAD }, { "/h\x01", BAD }, { "/caf\xc3\xa9", BAD },
        { "/h\xff", BAD }, { "/%", BAD }, { "/%2", BAD }, { "/%zz", BAD }, { "/%2g", BAD },
        { "/a%", BAD }, { "/%%41", BAD },
    };
    char buf[300];

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_health_check(t[i].in) == t[i].want, "val_health_check(\"%s\")", t[i].in);
    CHECK_INT(val_health_check(NULL), BAD);
    fill(buf, 'a', 256);
    buf[0] = '/';
    CHECK_INT(val_health_check(buf), OK);
    fill(buf, 'a', 257);
    buf[0] = '/';
    CHECK_INT(val_health_check(buf), BAD);
    fill(buf, 'a', 256);
    buf[0] = '/';
    buf[253] = '%';
    buf[254] = '4';
    buf[255] = '1';
    CHECK_INT(val_health_check(buf), OK);
    buf[254] = '\0';
    buf[253] = '%';
    CHECK_INT(val_health_check(buf), BAD);
}

/* Several upstreams (issue 16): one to 64 lines, order kept, no duplicate, one scheme. */
static void test_upstreams(void)
{
    static const struct scase t[] = {
        { "", OK }, { "10.0.0.1:80", OK }, { "10.0.0.1:80\n10.0.0.2:80", OK },
        { "http://a.lan:80\nhttp://b.lan:80", OK }, { "https://a.lan:443\nhttps://b.lan:443", OK },
        { "[::1]:80\n127.0.0.1:80", OK }, { "10.0.0.1:80\n10.0.0.1:81", OK },
        { "10.0.0.1:80\n10.0.0.1:80", BAD }, { "a.lan:80\nA.LAN:80", BAD },
        { "10.0.0.1:80\nhttp://10.0.0.1:80", BAD }, { "10.0.0.1:80\nhttps://10.0.0.2:80", BAD },
        { "10.0.0.1:80\n", BAD }, { "\n10.0.0.1:80", BAD }, { "10.0.0.1:80\n\n10.0.0.2:80", BAD },
        { "10.0.0.1:80\nnope", BAD }, { "10.0.0.1:80\r\n10.0.0.2:80", BAD },
    };
    struct val_upstream out[VAL_UPSTREAMS_MAX];
    char list[VAL_UPSTREAMS_MAX * 24 + 32];
    size_t n = 0, len = 0;

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_upstreams(t[i].in, NULL, NULL) == t[i].want, "val_upstreams(\"%s\")", t[i].in);
    CHECK_INT(val_upstreams("10.0.0.2:80\n10.0.0.1:80", out, &n), OK);
    CHECK_INT(n, 2);
    CHECK_STR(out[0].host, "10.0.0.2");         /* the order is kept */
    CHECK_STR(out[1].host, "10.0.0.1");
    CHECK_INT(val_upstreams("", out, &n), OK);
    CHECK_INT(n, 0);
    for (int i = 1; i <= VAL_UPSTREAMS_MAX + 1; i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s10.0.%d.%d:80", len ? "\n" : "",
                         i / 256, i % 256);

        CHECK(w > 0 && (size_t)w < sizeof(list) - len);
        len += (size_t)w;
        if (i == VAL_UPSTREAMS_MAX) {
            CHECK_INT(val_upstreams(list, out, &n), OK);
            CHECK_INT(n, VAL_UPSTREAMS_MAX);
        }
    }
    CHECK_INT(val_upstreams(list, NULL, NULL), BAD);      /* 65 lines */
    CHECK_INT(val_upstreams("10.0.0.1:80\n10.0.0.1:80", NULL, NULL), BAD);
    CHECK_STR(val_reason(), "upstream line 2 repeats line 1");
}

static void test_lb_policy(void)
{
    static const struct scase t[] = {
        { "round_robin", OK }, { "least_conn", OK }, { "random", OK }, { "ip_hash", OK },
        { "first", OK }, { "", BAD }, { "fastest", BAD }, { "Round_Robin", BAD },
        { "first\n", BAD }, { " first", BAD }, { "round-robin", BAD },
    };

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_lb_policy(t[i].in) == t[i].want, "val_lb_policy(\"%s\")", t[i].in);
}

static void test_mode(void)
{
    static const struct scase t[] = {
        { "proxy", OK }, { "dns", OK },
        { "", BAD }, { "Proxy", BAD }, { "DNS", BAD }, { "proxy\n", BAD }, { "dns\n", BAD },
        { " proxy", BAD }, { "proxy ", BAD }, { "proxyx", BAD }, { "prox", BAD },
        { "dns{", BAD }, { "dns}", BAD }, { "dns#", BAD }, { "d ns", BAD }, { "`dns`", BAD },
        { "dns;", BAD }, { "$(dns)", BAD }, { "\"dns\"", BAD }, { "dns\r", BAD },
        { "dns\t", BAD }, { "dn\xc3\xa9", BAD }, { "proxy,dns", BAD },
    };

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(val_mode(t[i].in) == t[i].want, "val_mode(\"%s\")", t[i].in);
    CHECK_INT(val_mode(NULL), BAD);
}

struct mcase {
    const char *in;
    const char *canon;    /* NULL: must be rejected */
};

static void test_monitoring(void)
{
    static const struct mcase t[] = {
        { "{}", "{}" },
        { " { } ", "{}" },
        { "{\"type\":\"container\",\"container_name\":\"web-1\"}",
          "{\"type\":\"container\",\"container_name\":\"web-1\"}" },
        { "{ \"container_name\" : \"My_app.v2-x\", \"type\" : \"container\" }",
          "{\"type\":\"container\",\"container_name\":\"My_app.v2-x\"}" },
        { "{\"type\":\"gpu\",\"ssh_host\":\"gpu1\",\"ssh_user\":\"ops\",\"ssh_port\":22}",
          "{\"type\":\"gpu\",\"ssh_host\":\"gpu1\",\"ssh_user\":\"ops\",\"ssh_port\":22}" },
        { "{\"ssh_port\":2222,\"ssh_host\":\"10.0.0.5\",\"type\":\"server\"}",
          "{\"type\":\"server\",\"ssh_host\":\"10.0.0.5\",\"ssh_port\":2222}" },
        { "{\"type\":\"server\",\"ssh_host\":\"Node-7.Corp.internal\"}",
          "{\"type\":\"server\",\"ssh_host\":\"Node-7.Corp.internal\"}" },
        { "{\"type\":\"gpu\",\"ssh_host\":\"2001:db8::7\",\"ssh_user\":\"_svc-1\"}",
          "{\"type\":\"gpu\",\"ssh_host\":\"2001:db8::7\",\"ssh_user\":\"_svc-1\"}" },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":1}",
          "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":1}" },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":65535}",
          "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":65535}" },
        { "{\"type\":\"gpu\",\"ssh_host\":\"gpu\\u0031\"}",
          "{\"type\":\"gpu\",\"ssh_host\":\"gpu1\"}" },

        /* Not an object, or not JSON. */
        { "", NULL }, { "[]", NULL }, { "\"x\"", NULL }, { "1", NULL }, { "null", NULL },
        { "true", NULL }, { "{", NULL }, { "}", NULL }, { "{}{}", NULL }, { "{} x", NULL },
        { "{'type':'gpu'}", NULL }, { "{\"type\":\"gpu\",}", NULL }, { "1e999", NULL },
        /* Shapes. */
        { "{\"type\":\"container\"}", NULL },
        { "{\"container_name\":\"web\"}", NULL },
        { "{\"type\":\"gpu\"}", NULL },
        { "{\"type\":\"vm\",\"ssh_host\":\"h\"}", NULL },
        { "{\"type\":\"GPU\",\"ssh_host\":\"h\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"web\",\"x\":1}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"web\",\"ssh_host\":\"h\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"container_name\":\"web\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"extra\":null}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_host\":\"i\"}", NULL },
        { "{\"type\":\"gpu\",\"type\":\"gpu\",\"ssh_host\":\"h\"}", NULL },
        /* Wrong JSON types. */
        { "{\"type\":1,\"ssh_host\":\"h\"}", NULL },
        { "{\"type\":[\"gpu\"],\"ssh_host\":\"h\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":5}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":null}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":7}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":\"22\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":22.0}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":true}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":0}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":-22}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":65536}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":4294967318}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":1e999}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":99999999999999999999999}", NULL },
        /* Bad values. */
        { "{\"type\":\"container\",\"container_name\":\"\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"-web\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"_web\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"a/b\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"[::1]\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"fe80::1%eth0\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"010.0.0.1\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h:22\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"-h\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"Ops\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"1ops\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"-ops\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"o.ps\"}", NULL },
        /* Injection inside values, raw and JSON-escaped. */
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\\n\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\n\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h{x}\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h}\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h#x\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h x\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h`id`\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h;id\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"$(id)\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\\\"x\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\\u0000x\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\\r\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\\t\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"caf\\u00e9\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"caf\xc3\xa9\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\xff\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"ops\\nroot\"}", NULL },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"o ps\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"a b\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"a`id`\"}", NULL },
        { "{\"type\":\"container\",\"container_name\":\"a\\\"}\"}", NULL },
        { "{\"type\":\"gpu\\n\",\"ssh_host\":\"h\"}", NULL },
        /* JSON whitespace between tokens (what jq prints) is fine; other control bytes not. */
        { "{}\n", "{}" }, { "{\n}", "{}" }, { "{\t}", "{}" }, { "{\r}", "{}" },
        { "{\n  \"type\": \"gpu\",\n  \"ssh_host\": \"h\"\n}",
          "{\"type\":\"gpu\",\"ssh_host\":\"h\"}" },
        { "{\x0b}", NULL }, { "{\x01}", NULL },
        { "\xef\xbb\xbf{}", NULL },
    };
    char canon[VAL_MONITORING_MAX], again[VAL_MONITORING_MAX];
    char small[16];

    for (size_t i = 0; i < NCASES(t); i++) {
        memcpy(canon, "junk", 5);
        int rc = val_monitoring(t[i].in, canon, sizeof(canon));
        CHECKF(rc == (t[i].canon ? OK : BAD), "val_monitoring(%s) = %d", t[i].in, rc);
        if (t[i].canon) {
            CHECK_STR(canon, t[i].canon);
            CHECK_INT(val_monitoring(t[i].in, NULL, 0), OK);
            CHECKF(val_monitoring(canon, again, sizeof(again)) == OK, "round trip %s", canon);
            CHECK_STR(again, canon);
        } else {
            CHECK_STR(canon, "");
        }
    }
    CHECK_INT(val_monitoring(NULL, canon, sizeof(canon)), BAD);

    /* canon_len boundaries: exact fit, one byte short, zero. */
    const char *in = "{\"type\":\"gpu\",\"ssh_host\":\"g\",\"ssh_port\":22}";
    const char *want = "{\"type\":\"gpu\",\"ssh_host\":\"g\",\"ssh_port\":22}";
    size_t wl = strlen(want);
    CHECK_INT(val_monitoring(in, canon, wl + 1), OK);
    CHECK_STR(canon, want);
    CHECK_INT(val_monitoring(in, canon, wl), BAD);
    CHECK_STR(canon, "");
    CHECK_INT(val_monitoring("{}", canon, 3), OK);
    CHECK_INT(val_monitoring("{}", canon, 2), BAD);
    CHECK_INT(val_monitoring("{}", canon, 0), BAD);
    CHECK_INT(val_monitoring("{}", small, sizeof(small)), OK);

    /* Name and user length limits. */
    static const struct {
        const char *fmt;
        char fill;
        size_t n;
        int want;
    } limits[] = {
        { "{\"type\":\"container\",\"container_name\":\"%s\"}", 'c', 128, OK },
        { "{\"type\":\"container\",\"container_name\":\"%s\"}", 'c', 129, BAD },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"%s\"}", 'u', 32, OK },
        { "{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_user\":\"%s\"}", 'u', 33, BAD },
    };
    char name[200], json[400];
    for (size_t i = 0; i < NCASES(limits); i++) {
        snprintf(json, sizeof(json), limits[i].fmt, fill(name, limits[i].fill, limits[i].n));
        CHECKF(val_monitoring(json, canon, sizeof(canon)) == limits[i].want, "limit %zu", i);
    }

    /* Deep nesting: beyond the input limit, and within it but beyond jansson's depth limit;
     * balanced arrays within both limits parse but are not objects. */
    static const size_t depths[] = { 10000, 4000, 2049, 2047, 1000 };
    for (size_t d = 0; d < NCASES(depths); d++) {
        size_t n = depths[d];
        char *deep = malloc(2 * n + 1);
        CHECK(deep != NULL);
        if (!deep)
            continue;
        fill(deep, '[', n);
        CHECKF(val_monitoring(deep, canon, sizeof(canon)) == BAD, "%zu x [", n);
        fill(deep, '{', n);
        CHECKF(val_monitoring(deep, canon, sizeof(canon)) == BAD, "%zu x {", n);
        fill(deep + n, ']', n);
        CHECKF(val_monitoring(deep, canon, sizeof(canon)) == BAD, "%zu x {]", n);
        memset(deep, '[', n);
        CHECKF(val_monitoring(deep, canon, sizeof(canon)) == BAD, "%zu x []", n);
        free(deep);
    }

    /* Over VAL_VALUE_MAX of padding around a valid object. */
    char *pad = malloc(VAL_VALUE_MAX + 2);
    CHECK(pad != NULL);
    if (pad) {
        fill(pad, ' ', VAL_VALUE_MAX);
        memcpy(pad, "{}", 2);
        CHECK_INT(val_monitoring(pad, canon, sizeof(canon)), OK);
        fill(pad + 2, ' ', VAL_VALUE_MAX - 1);
        CHECK_INT(val_monitoring(pad, canon, sizeof(canon)), BAD);
        free(pad);
    }
}

/* Every refusal says why, in one line that names the rule the value broke (issue 13 item 3). */
static void test_reasons(void)
{
    static const char *const sfx[] = { "internal" };
    char canon[VAL_MONITORING_MAX];

    CHECK_INT(val_upstream("127.0.0.1:99999", NULL), -EINVAL);
    CHECK(strstr(val_reason(), "port is not 1-65535") != NULL);
    CHECK_INT(val_upstream("nope", NULL), -EINVAL);
    CHECK(strstr(val_reason(), "no :PORT") != NULL);
    CHECK_INT(val_upstream("10.0.0.1.2:80", NULL), -EINVAL);
    CHECK(strstr(val_reason(), "host is not") != NULL);
    CHECK_INT(val_domain("a.example", sfx, 1), -EINVAL);
    CHECK(strstr(val_reason(), "suffix that --domains allows") != NULL);
    CHECK_INT(val_domain("A.internal", sfx, 1), -EINVAL);
    CHECK(strstr(val_reason(), "lowercase domain") != NULL);
    CHECK_INT(val_health_check("health"), -EINVAL);
    CHECK(strstr(val_reason(), "starts with one") != NULL);
    CHECK_INT(val_health_check("/a b"), -EINVAL);
    CHECK(strstr(val_reason(), "RFC 3986") != NULL);
    CHECK_INT(val_mode("tcp"), -EINVAL);
    CHECK_STR(val_reason(), "the mode is proxy or dns");
    CHECK_INT(val_name("-x"), -EINVAL);
    CHECK(strstr(val_reason(), "1-63 of a-z") != NULL);
    CHECK_INT(val_monitoring("{\"type\":\"vm\"}", canon, sizeof(canon)), -EINVAL);
    CHECK(strstr(val_reason(), "\"type\" must be") != NULL);
    CHECK_INT(val_monitoring("{\"type\":\"gpu\",\"ssh_host\":\"h\",\"ssh_port\":0}", canon,
                             sizeof(canon)), -EINVAL);
    CHECK(strstr(val_reason(), "ssh_port") != NULL);
    CHECK_INT(val_monitoring("[1]", canon, sizeof(canon)), -EINVAL);
    CHECK(strstr(val_reason(), "not a JSON object") != NULL);
    /* one line, no value echoed */
    CHECK(strchr(val_reason(), '\n') == NULL);
}

/* The validators exported once for every caller (monitor targets, monitoring attributes). */
static void test_ssh_user_ipv6(void)
{
    char name[64];

    CHECK(val_is_ssh_user("root"));
    CHECK(val_is_ssh_user("_svc-1"));
    CHECK(val_is_ssh_user(fill(name, 'u', VAL_SSH_USER_MAX)));
    CHECK(!val_is_ssh_user(fill(name, 'u', VAL_SSH_USER_MAX + 1)));
    CHECK(!val_is_ssh_user(""));
    CHECK(!val_is_ssh_user("1root"));
    CHECK(!val_is_ssh_user("Root"));
    CHECK(!val_is_ssh_user("a b"));
    CHECK(!val_is_ssh_user("a;b"));
    CHECK(val_is_ipv6("::1"));
    CHECK(val_is_ipv6("fd00::1:2"));
    CHECK(val_is_ipv6("::ffff:10.0.0.1"));
    CHECK(!val_is_ipv6("fe80::1%eth0"));
    CHECK(!val_is_ipv6("[::1]"));
    CHECK(!val_is_ipv6("10.0.0.1"));
    CHECK(!val_is_ipv6("gpu1"));
    CHECK(!val_is_ipv6(""));
}

int main(void)
{
    test_reasons();
    test_ssh_user_ipv6();
    test_name();
    test_ipv4();
    test_hostname();
    test_dns_name();
    test_upstream();
    test_upstreams();
    test_lb_policy();
    test_domain();
    test_health();
    test_mode();
    test_monitoring();
    return tl_finish();
}
