/* test_gateway.c: gw_open and gw_apply over a private state directory, without a running Caddy:
 * the config directories and their temp files, a rendering written at mount (stray hosts.d
 * files and the old Caddyfile removed), only changed files rewritten after that (nothing at all
 * when nothing changed), hosts.d files pruned, I/O errors as -errno, and in live mode a proxy
 * config that cannot be loaded (no admin socket) refused with -EIO and an audit line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/gateway.h"
#include "core/registry.h"
#include "core/render.h"
#include "core/statefile.h"
#include "testlib.h"

static char tmpdir[] = "/tmp/test_gateway.XXXXXX";

/* Hand-made renderings: r1 at mount; r2 drops a, changes b, adds c and a new proxy config; r3
 * changes b only (same proxy as r1). Hosts are sorted by name, as render_all sorts them. */
static char conf1[] = "# dnsmasq 1\n", proxy1[] = "{\"proxy\":1}\n", proxy2[] = "{\"proxy\":2}\n";
static char host_a[] = "127.0.0.1 a.internal\n", host_b[] = "127.0.0.1 b.internal\n";
static char host_b2[] = "127.0.0.2 b.internal\n", host_c[] = "127.0.0.1 c.internal\n";

static struct render_file hosts1[] = { { "a", host_a }, { "b", host_b } };
static struct render_file hosts2[] = { { "b", host_b2 }, { "c", host_c } };
static struct render_file hosts3[] = { { "a", host_a }, { "b", host_b2 } };

static const struct render_out r1 = { conf1, proxy1, hosts1, 2 };
static const struct render_out r2 = { conf1, proxy2, hosts2, 2 };
static const struct render_out r3 = { conf1, proxy1, hosts3, 2 };

/* A fresh state directory tmpdir/name and a configuration over it. */
static void new_state(struct cfs_config *cfg, char *dir, size_t len, const char *name)
{
    tl_path(dir, len, tmpdir, name, NULL);
    CHECK(mkdir(dir, 0700) == 0);
    tl_make_cfg(cfg, dir, NULL);
}

/* The file dir/rel as a malloc'd string, NULL when it cannot be read. */
static char *slurp(const char *dir, const char *rel)
{
    char path[512], *data = NULL;
    size_t len;

    tl_path(path, sizeof(path), dir, rel, NULL);
    if (state_read_file(path, &data, &len) < 0)
        return NULL;
    return data;
}

/* Whether dir/rel holds exactly want. */
static int holds(const char *dir, const char *rel, const char *want)
{
    char *got = slurp(dir, rel);
    int same = got && strcmp(got, want) == 0;

    if (!same)
        fprintf(stderr, "%s/%s: \"%s\", want \"%s\"\n", dir, rel, got ? got : "(none)", want);
    free(got);
    return same;
}

/* The inode of dir/rel (an atomic rewrite gives a new one), 0 when missing. */
static ino_t ino_of(const char *dir, const char *rel)
{
    char path[512];
    struct stat st;

    tl_path(path, sizeof(path), dir, rel, NULL);
    return lstat(path, &st) == 0 ? st.st_ino : 0;
}

/* Whether dir/rel exists (as anything). */
static int exists(const char *dir, const char *rel)
{
    return ino_of(dir, rel) != 0;
}

/* Create dir/rel holding data. */
static void put(const char *dir, const char *rel, const char *data)
{
    char path[512];
    FILE *f;

    tl_path(path, sizeof(path), dir, rel, NULL);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        CHECK(fputs(data, f) >= 0);
        fclose(f);
    }
}

/* How often needle occurs in dir/rel. */
static int count_in(const char *dir, const char *rel, const char *needle)
{
    char *s = slurp(dir, rel), *p = s;
    int n = 0;

    while (p && (p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    free(s);
    return n;
}

/* gw_open makes the config directories and removes temp files of interrupted writes, but
 * nothing else; a missing state directory is -ENOENT. */
static void test_open(void)
{
    static const char *const dirs[] = { "dns", "dns/hosts.d", "routing", "tls", "tls/serving" };
    struct cfs_config cfg;
    char dir[256], sub[512];
    struct stat st;

    new_state(&cfg, dir, sizeof(dir), "open");
    tl_path(sub, sizeof(sub), dir, "dns", NULL);
    CHECK(mkdir(sub, 0700) == 0);
    tl_path(sub, sizeof(sub), dir, "dns", "hosts.d", NULL);
    CHECK(mkdir(sub, 0700) == 0);
    put(dir, "dns/hosts.d/.web.tmp.99", "partial");
    put(dir, "dns/hosts.d/keep", "127.0.0.1 keep.internal\n");
    put(dir, ".services.json.tmp.5", "partial");
    CHECK_INT(gw_open(&cfg), 0);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        tl_path(sub, sizeof(sub), dir, dirs[i], NULL);
        CHECKF(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "%s", dirs[i]);
    }
    tl_path(sub, sizeof(sub), dir, "routing", NULL);
    CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(!exists(dir, "dns/hosts.d/.web.tmp.99"));
    CHECK(!exists(dir, ".services.json.tmp.5"));
    CHECK(holds(dir, "dns/hosts.d/keep", "127.0.0.1 keep.internal\n"));
    CHECK_INT(gw_open(&cfg), 0);                 /* again: the directories exist */

    tl_path(dir, sizeof(dir), tmpdir, "open-missing", NULL);
    tl_make_cfg(&cfg, dir, NULL);
    CHECK_INT(gw_open(&cfg), -ENOENT);
}

/* At mount (prev NULL) everything is written, every stray hosts.d file and the Caddyfile of an
 * earlier version removed; after that only what differs from prev is rewritten. */
static void test_apply(void)
{
    struct cfs_config cfg;
    char dir[256], path[512];
    ino_t conf, a, b, proxy;
    struct stat st;

    new_state(&cfg, dir, sizeof(dir), "apply");
    CHECK_INT(gw_open(&cfg), 0);
    put(dir, "dns/hosts.d/stray", "127.0.0.1 stray.internal\n");
    put(dir, "dns/hosts.d/a", "stale\n");
    put(dir, "routing/Caddyfile", "old\n");

    CHECK_INT(gw_apply(&cfg, &r1, NULL), 0);
    CHECK(holds(dir, "dns/dnsmasq.conf", conf1));
    CHECK(holds(dir, "dns/hosts.d/a", host_a));
    CHECK(holds(dir, "dns/hosts.d/b", host_b));
    CHECK(holds(dir, "routing/caddy.json", proxy1));
    CHECK(!exists(dir, "dns/hosts.d/stray"));
    CHECK(!exists(dir, "routing/Caddyfile"));
    tl_path(path, sizeof(path), dir, "dns/hosts.d/a", NULL);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* no change: not one file is rewritten */
    conf = ino_of(dir, "dns/dnsmasq.conf");
    a = ino_of(dir, "dns/hosts.d/a");
    b = ino_of(dir, "dns/hosts.d/b");
    proxy = ino_of(dir, "routing/caddy.json");
    CHECK_INT(gw_apply(&cfg, &r1, &r1), 0);
    CHECK(ino_of(dir, "dns/dnsmasq.conf") == conf);
    CHECK(ino_of(dir, "dns/hosts.d/a") == a);
    CHECK(ino_of(dir, "dns/hosts.d/b") == b);
    CHECK(ino_of(dir, "routing/caddy.json") == proxy);

    /* at mount again: everything is rewritten, with the same content */
    CHECK_INT(gw_apply(&cfg, &r1, NULL), 0);
    CHECK(ino_of(dir, "dns/dnsmasq.conf") != conf);
    CHECK(ino_of(dir, "dns/hosts.d/a") != a);
    CHECK(ino_of(dir, "routing/caddy.json") != proxy);
    CHECK(holds(dir, "dns/hosts.d/a", host_a));

    /* r1 -> r2: a pruned, b rewritten, c added, the proxy rewritten, dnsmasq.conf untouched */
    conf = ino_of(dir, "dns/dnsmasq.conf");
    b = ino_of(dir, "dns/hosts.d/b");
    proxy = ino_of(dir, "routing/caddy.json");
    CHECK_INT(gw_apply(&cfg, &r2, &r1), 0);
    CHECK(ino_of(dir, "dns/dnsmasq.conf") == conf);
    CHECK(!exists(dir, "dns/hosts.d/a"));
    CHECK(holds(dir, "dns/hosts.d/b", host_b2));
    CHECK(ino_of(dir, "dns/hosts.d/b") != b);
    CHECK(holds(dir, "dns/hosts.d/c", host_c));
    CHECK(holds(dir, "routing/caddy.json", proxy2));
    CHECK(ino_of(dir, "routing/caddy.json") != proxy);

    /* only prev's leftovers are pruned after mount: a file prev did not have stays */
    put(dir, "dns/hosts.d/stray", "127.0.0.1 stray.internal\n");
    CHECK_INT(gw_apply(&cfg, &r1, &r2), 0);
    CHECK(exists(dir, "dns/hosts.d/stray"));
    CHECK(!exists(dir, "dns/hosts.d/c"));
    CHECK(holds(dir, "dns/hosts.d/a", host_a));
    CHECK(holds(dir, "dns/hosts.d/b", host_b));
    CHECK(holds(dir, "routing/caddy.json", proxy1));
}

/* Failures come back as -errno, never -1. */
static void test_errors(void)
{
    struct cfs_config cfg;
    char dir[256], path[512];

    tl_path(dir, sizeof(dir), tmpdir, "missing", NULL);
    tl_make_cfg(&cfg, dir, NULL);
    CHECK_INT(gw_apply(&cfg, &r1, NULL), -ENOENT);

    /* dns is a file, not a directory */
    new_state(&cfg, dir, sizeof(dir), "notdir");
    put(dir, "dns", "not a directory\n");
    CHECK_INT(gw_apply(&cfg, &r1, NULL), -ENOTDIR);
    CHECK_INT(gw_open(&cfg), -ENOTDIR);

    /* hosts.d missing: dnsmasq.conf is written, then the first hosts.d file fails */
    new_state(&cfg, dir, sizeof(dir), "nohosts");
    tl_path(path, sizeof(path), dir, "dns", NULL);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_INT(gw_apply(&cfg, &r1, NULL), -ENOENT);
    CHECK(holds(dir, "dns/dnsmasq.conf", conf1));
}

/* Live mode without a running Caddy (the supervisor never started, so there is no admin
 * socket): a changed proxy config is refused with -EIO before it is written, with an audit
 * line proxy_reload/failure; an unchanged one is never loaded; reloads map to -errno. */
static void test_live(void)
{
    struct cfs_config cfg;
    char dir[256], err[256], path[512];

    new_state(&cfg, dir, sizeof(dir), "live");
    err[0] = '\0';
    CHECKF(audit_open(dir, err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(gw_open(&cfg), 0);
    CHECK_INT(gw_apply(&cfg, &r1, NULL), 0);
    CHECK_INT(gw_reload(false), 0);              /* not live: a no-op */
    CHECK_INT(gw_reload(true), 0);

    gw_set_live(&cfg);
    CHECK_INT(gw_apply(&cfg, &r3, &r1), 0);      /* same proxy config: nothing to load */
    CHECK(holds(dir, "dns/hosts.d/b", host_b2));
    CHECK_INT(count_in(dir, "audit.log", "proxy_reload"), 0);

    CHECK_INT(gw_apply(&cfg, &r2, &r3), -EIO);
    CHECK(holds(dir, "routing/caddy.json", proxy1));
    CHECK_INT(count_in(dir, "audit.log", "\"proxy_reload\""), 1);
    CHECK_INT(count_in(dir, "audit.log", "caddy has no admin socket"), 2);  /* message, details */
    CHECK_INT(count_in(dir, "audit.log", "\"failure\""), 1);

    CHECK_INT(gw_reload(false), -EIO);
    CHECK_INT(gw_reload(true), -EIO);
    CHECK_INT(count_in(dir, "audit.log", "\"proxy_reload\""), 3);

    tl_path(path, sizeof(path), dir, "routing", "caddy.json", NULL);
    CHECK(unlink(path) == 0);
    CHECK_INT(gw_reload(false), -ENOENT);
    CHECK_INT(count_in(dir, "audit.log", "cannot read routing/caddy.json"), 2);

    gw_set_live(NULL);
    CHECK_INT(gw_reload(true), 0);
    audit_close();
}

int main(void)
{
    static const tl_test_fn tests[] = { test_open, test_apply, test_errors, test_live, NULL };

    return tl_main_in_dir(tmpdir, tests);
}
