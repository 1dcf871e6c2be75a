/* testlib.h: a tiny assertion harness shared by the unit-test binaries, and their shared
 * fixtures: a private state directory (tl_state_dir, tl_rm_rf, tl_path, tl_pathf), numbered
 * state directories below it (tl_new_state) and, for tests that include core/registry.h first,
 * a daemon configuration over it (tl_base_cfg, tl_make_cfg). */
#ifndef CONDUIT_TESTLIB_H
#define CONDUIT_TESTLIB_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int tl_passed, tl_failed;

/* Record one check; print the failing expression with its location. */
#define CHECK(cond) do { \
        if (cond) { tl_passed++; } \
        else { tl_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

/* Like CHECK, with a printf-style note on failure. */
#define CHECKF(cond, ...) do { \
        if (cond) { tl_passed++; } \
        else { tl_failed++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
               fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
    } while (0)

#define CHECK_INT(got, want) CHECKF((got) == (want), "got %ld want %ld", \
                                    (long)(got), (long)(want))
#define CHECK_STR(got, want) CHECKF(strcmp((got), (want)) == 0, "got \"%s\" want \"%s\"", \
                                    (got), (want))

/* Print the closing line ctest logs and return the exit status for main. */
static inline int tl_finish(void)
{
    printf("%d passed, %d failed\n", tl_passed, tl_failed);
    return tl_failed ? 1 : 0;
}

/* Create a fresh private directory from tmpl ("/tmp/NAME.XXXXXX", rewritten in place). 0, or
 * -1 after printing why (the test then cannot run). */
static inline int tl_state_dir(char *tmpl)
{
    if (mkdtemp(tmpl))
        return 0;
    perror("mkdtemp");
    return -1;
}

static inline int tl_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove dir and everything below it (symlinks are removed, not followed). 0 or -1. */
static inline int tl_rm_rf(const char *dir)
{
    return nftw(dir, tl_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The path of the components after dir, joined by '/', into buf (NULL ends the list). */
static inline void tl_path(char *buf, size_t len, const char *dir, ...)
{
    const char *c;
    size_t n = (size_t)snprintf(buf, len, "%s", dir);
    va_list ap;

    va_start(ap, dir);
    while ((c = va_arg(ap, const char *)) != NULL && n < len)
        n += (size_t)snprintf(buf + n, len - n, "/%s", c);
    va_end(ap);
}

/* Create the next fresh empty state directory below root, root/state<N> (N = 1, 2, ... over the
 * calls of one test binary), mode 0700, into buf; exits 2 after printing why when it cannot (the
 * test then cannot run). */
static inline void tl_new_state(char *buf, size_t len, const char *root)
{
    static int count;
    int n = snprintf(buf, len, "%s/state%d", root, ++count);

    if (n < 0 || (size_t)n >= len || mkdir(buf, 0700) < 0) {
        perror(buf);
        exit(2);
    }
}

/* A path printed by fmt into buf, which it must fit: exits 2 ("path too long") otherwise. */
static inline void tl_pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void tl_pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "path too long\n");
        exit(2);
    }
}

/* Make the private directory of a test binary, $TMPDIR/<name>.XXXXXX (/tmp without TMPDIR),
 * into buf (see tl_state_dir). 0, or -1 after printing why. */
static inline int tl_tmp_root(char *buf, size_t len, const char *name)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(buf, len, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    return tl_state_dir(buf);
}

typedef void (*tl_test_fn)(void);

/* A whole test binary's main: create the private directory tmpl (see tl_state_dir), run the
 * NULL-terminated tests in order, remove the directory, and return tl_finish's status. */
static inline int tl_main_in_dir(char *tmpl, const tl_test_fn *tests)
{
    if (tl_state_dir(tmpl) < 0)
        return 1;
    for (; *tests; tests++)
        (*tests)();
    tl_rm_rf(tmpl);
    return tl_finish();
}

#ifdef CONDUIT_REGISTRY_H
/* A configuration over state directory dir with the suffixes (comma-separated, "internal" when
 * NULL), the gateway address gw, DNS on 127.0.0.1:dns_port and HTTPS on https:8443; every other
 * field zero. Shared with the fuzz targets (tests/fuzz/fuzzlib.h). */
static inline void tl_base_cfg(struct cfs_config *cfg, const char *dir, const char *suffixes,
                               const char *gw, unsigned dns_port, const char *https)
{
    const char *p = suffixes ? suffixes : "internal";

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", dir);
    while (*p && cfg->nsuffixes < sizeof(cfg->suffixes) / sizeof(cfg->suffixes[0])) {
        size_t n = strcspn(p, ",");

        snprintf(cfg->suffixes[cfg->nsuffixes], sizeof(cfg->suffixes[0]), "%.*s", (int)n, p);
        cfg->suffixes_ptr[cfg->nsuffixes] = cfg->suffixes[cfg->nsuffixes];
        cfg->nsuffixes++;
        p += n + (p[n] == ',');
    }
    snprintf(cfg->gateway_ip, sizeof(cfg->gateway_ip), "%s", gw);
    snprintf(cfg->dns_addr, sizeof(cfg->dns_addr), "127.0.0.1");
    cfg->dns_port = dns_port;
    snprintf(cfg->https_addr, sizeof(cfg->https_addr), "%s", https);
    cfg->https_port = 8443;
}

/* A daemon configuration for tests over state directory dir: the suffixes (comma-separated,
 * "internal" when NULL), loopback addresses, DNS on 5353, HTTPS on 8443, ed25519 leaves valid
 * 365 days and renewed 120 days before expiry. */
static inline void tl_make_cfg(struct cfs_config *cfg, const char *dir, const char *suffixes)
{
    tl_base_cfg(cfg, dir, suffixes, "127.0.0.1", 5353, "127.0.0.1");
    snprintf(cfg->key_type, sizeof(cfg->key_type), "ed25519");
    cfg->leaf_days = 365;
    cfg->renew_before_days = 120;
}
#endif

#endif
