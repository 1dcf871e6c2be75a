/* test_registry.c: services.json load/save, corrupt-file handling, the mutation rules, the
 * registry's marks in the audit chain (mount checks, replay), and the steps a commit pipeline
 * plugs in (reg_set_pipeline). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glob.h>

#include "audit/audit.h"
#include "core/registry.h"
#include "core/regjson.h"
#include "core/regmark.h"
#include "core/replay.h"
#include "core/statefile.h"
#include "testlib.h"

static struct cfs_config cfg;

static void test_parse(void)
{
    char err[256];
    struct reg_service *svcs = NULL;
    size_t n = 0;
    const char *good =
        "{\"version\":1,\"services\":[{\"name\":\"core\",\"upstream\":\"10.0.0.1:80\","
        "\"domain\":\"core.internal\",\"status\":\"active\","
        "\"registered_at\":\"2026-01-01T00:00:00Z\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}},"
        "{\"name\":\"core\",\"upstream\":\"\",\"domain\":\"core.internal\",\"status\":\"inactive\","
        "\"registered_at\":\"2025-01-01T00:00:00Z\",\"deregistered_at\":\"2025-02-01T00:00:00Z\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}";
    static const char *const bad[] = {
        "", "{", "[]", "{\"version\":2,\"services\":[]}", "{\"version\":1}",
        "{\"version\":1,\"services\":[1]}",
        "{\"version\":1,\"services\":[{\"name\":\"x\"}]}",
        /* a value that would not validate through the mount */
        "{\"version\":1,\"services\":[{\"name\":\"core\",\"upstream\":\"10.0.0.1:80\\n\","
        "\"domain\":\"core.internal\",\"status\":\"active\",\"registered_at\":\"t\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}",
        /* status that does not match the upstream */
        "{\"version\":1,\"services\":[{\"name\":\"core\",\"upstream\":\"\","
        "\"domain\":\"core.internal\",\"status\":\"active\",\"registered_at\":\"t\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}",
        /* domain outside the allowed suffixes */
        "{\"version\":1,\"services\":[{\"name\":\"core\",\"upstream\":\"\","
        "\"domain\":\"core.example\",\"status\":\"pending\",\"registered_at\":\"t\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}",
        /* duplicate keys */
        "{\"version\":1,\"version\":1,\"services\":[]}",
        /* only a pending service may lack a domain (issue 13 item 5) */
        "{\"version\":1,\"services\":[{\"name\":\"core\",\"upstream\":\"10.0.0.1:80\","
        "\"domain\":\"\",\"status\":\"active\",\"registered_at\":\"t\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}",
    };
    /* two pending services without a domain: "" is nobody's domain */
    const char *nodomain =
        "{\"version\":1,\"services\":[{\"name\":\"a\",\"upstream\":\"\",\"domain\":\"\","
        "\"status\":\"pending\",\"registered_at\":\"t\",\"health_check\":\"/health\","
        "\"mode\":\"proxy\",\"monitoring\":{}},{\"name\":\"b\",\"upstream\":\"\","
        "\"domain\":\"\",\"status\":\"pending\",\"registered_at\":\"t\","
        "\"health_check\":\"/health\",\"mode\":\"proxy\",\"monitoring\":{}}]}";
    char *doc;

    CHECK_INT(reg_parse(nodomain, strlen(nodomain), &cfg, &svcs, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 2);
    free(svcs);
    svcs = NULL;
    CHECK_INT(reg_parse(good, strlen(good), &cfg, &svcs, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(svcs[0].upstream, "10.0.0.1:80");
        CHECK_INT(svcs[0].status, REG_ACTIVE);
        CHECK_INT(svcs[1].status, REG_INACTIVE);
        CHECK_STR(svcs[1].deregistered_at, "2025-02-01T00:00:00Z");
        doc = reg_serialize(svcs, n);
        CHECK(doc != NULL);
        free(svcs);
        svcs = NULL;
        /* round trip: what we write we read back identically */
        CHECK_INT(reg_parse(doc, strlen(doc), &cfg, &svcs, &n, err, sizeof(err)), 0);
        if (svcs) {
            char *again = reg_serialize(svcs, n);
            CHECK(again && strcmp(again, doc) == 0);
            free(again);
        }
        free(doc);
    }
    free(svcs);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        svcs = NULL;
        err[0] = '\0';
        CHECKF(reg_parse(bad[i], strlen(bad[i]), &cfg, &svcs, &n, err, sizeof(err)) == -EINVAL,
               "bad[%zu] accepted", i);
        CHECKF(err[0] != '\0', "bad[%zu] without a reason", i);
        free(svcs);
    }
}

static int count_glob(const char *pattern)
{
    glob_t g;
    int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;

    globfree(&g);
    return n;
}

static void test_corrupt(const char *dir)
{
    char path[4096], pat[4096], err[512];
    char *doc = NULL;
    size_t len = 0;
    const char *junk = "{\"version\":1,\"servi";

    tl_make_cfg(&cfg, dir, "internal,test");
    snprintf(path, sizeof(path), "%s/services.json", dir);
    CHECK_INT(state_write_atomic(path, junk, strlen(junk), 0600), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "corrupt") != NULL);
    CHECK_INT(state_read_file(path, &doc, &len), 0);
    CHECK(doc && strcmp(doc, junk) == 0);   /* never overwritten */
    free(doc);
    snprintf(pat, sizeof(pat), "%s/services.json.corrupt-*", dir);
    CHECK_INT(count_glob(pat), 1);
}

static void test_mutations(const char *dir)
{
    char err[512], path[4096];
    struct reg_snapshot *snap, *old;
    const struct reg_service *s;
    char *doc = NULL;
    size_t len;

    tl_make_cfg(&cfg, dir, "internal,test");
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(reg_register("core", "tester"), 0);
    CHECK_INT(reg_register("core", "tester"), -EEXIST);
    CHECK_INT(reg_register("Core", "tester"), -EINVAL);
    old = reg_snapshot_get();
    CHECK_INT(reg_set("core", REG_UPSTREAM, "10.0.0.1:80\n", 12, "tester"), 0);
    /* the old snapshot is immutable */
    s = reg_snapshot_find(old, "core");
    CHECK(s && s->upstream[0] == '\0' && s->status == REG_PENDING);
    reg_snapshot_put(old);
    snap = reg_snapshot_get();
    s = reg_snapshot_find(snap, "core");
    CHECK(s && strcmp(s->upstream, "10.0.0.1:80") == 0 && s->status == REG_ACTIVE);
    reg_snapshot_put(snap);
    CHECK_INT(reg_set("core", REG_UPSTREAM, "bad", 3, "tester"), -EINVAL);
    CHECK_INT(reg_set("nope", REG_UPSTREAM, "10.0.0.1:80", 11, "tester"), -ENOENT);
    CHECK_INT(reg_set("core", REG_UPSTREAM, "1\0:2", 4, "tester"), -EINVAL);
    {
        char big[5000];
        memset(big, 'a', sizeof(big));
        CHECK_INT(reg_set("core", REG_DOMAIN, big, sizeof(big), "tester"), -EFBIG);
    }
    CHECK_INT(reg_register("web", "tester"), 0);
    CHECK_INT(reg_set("web", REG_DOMAIN, "core.internal", 13, "tester"), -EEXIST);
    CHECK_INT(reg_set("core", REG_MODE, "dns", 3, "tester"), 0);
    CHECK_INT(reg_set("core", REG_UPSTREAM, "host.example:80", 15, "tester"), -EINVAL);
    CHECK_INT(reg_reset("core", REG_MODE, "tester"), 0);
    CHECK_INT(reg_set("core", REG_UPSTREAM, "host.example:80", 15, "tester"), 0);
    CHECK_INT(reg_set("core", REG_MODE, "dns", 3, "tester"), -EINVAL);
    CHECK_INT(reg_deregister("web", "tester"), 0);
    CHECK_INT(reg_deregister("web", "tester"), -ENOENT);
    CHECK_INT(reg_register("web", "tester"), 0);
    snprintf(path, sizeof(path), "%s/services.json", dir);
    CHECK_INT(state_read_file(path, &doc, &len), 0);
    CHECK(doc && strstr(doc, "\"deregistered_at\"") != NULL);
    free(doc);
    reg_close();

    /* reopen: the same registry comes back */
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    snap = reg_snapshot_get();
    CHECK_INT(snap->n, 3);
    s = reg_snapshot_find(snap, "core");
    CHECK(s && strcmp(s->upstream, "host.example:80") == 0);
    CHECK(reg_snapshot_find(snap, "web") != NULL);
    reg_snapshot_put(snap);
    /* a change copies only the record it writes: the others stay the same records */
    old = reg_snapshot_get();
    CHECK_INT(reg_set("core", REG_HEALTH_CHECK, "/ready", 6, "tester"), 0);
    snap = reg_snapshot_get();
    CHECK(reg_snapshot_find(old, "web") == reg_snapshot_find(snap, "web"));
    CHECK(reg_snapshot_find(old, "core") != reg_snapshot_find(snap, "core"));
    s = reg_snapshot_find(old, "core");
    CHECK(s && strcmp(s->health_check, "/ready") != 0);
    reg_snapshot_put(old);
    reg_snapshot_put(snap);
    reg_close();
    audit_close();
}

/* The SHA-256 of dir/services.json into sha; 0 or -errno. */
static int file_sha(const char *dir, char sha[RMARK_SHA_HEX])
{
    char path[4096], *doc = NULL;
    size_t len = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/services.json", dir);
    rc = state_read_file(path, &doc, &len);
    if (rc == 0)
        rmark_sha256(doc, len, sha);
    free(doc);
    return rc;
}

/* Every commit leaves a mark; a crash between seal and commit is marked at mount; a missing
 * registry refuses the mount; replaying the chain gives services.json back. */
static void test_marks(const char *dir)
{
    char err[512], path[4096], sha[RMARK_SHA_HEX], why[512];
    char *prev = NULL, *doc = NULL;
    size_t plen = 0, n = 0, live = 0;
    struct rmark m;
    struct reg_snapshot *snap;
    int unverified = 1;

    tl_make_cfg(&cfg, dir, "internal,test");
    snprintf(path, sizeof(path), "%s/services.json", dir);
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(reg_register("a", "tester"), 0);
    CHECK_INT(reg_set("a", REG_UPSTREAM, "10.0.0.1:80", 11, "tester"), 0);
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK_INT(file_sha(dir, sha), 0);
    CHECK(m.found && strcmp(m.sha256, sha) == 0 && strcmp(m.action, "service_update") == 0);
    /* the daemon stops between sealing a change and committing it */
    CHECK_INT(state_read_file(path, &prev, &plen), 0);
    CHECK_INT(reg_register("b", "tester"), 0);
    reg_close();
    CHECK_INT(state_write_atomic(path, prev, plen, 0600), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK_INT(file_sha(dir, sha), 0);
    CHECK(m.found && strcmp(m.action, "registry_abort") == 0 && strcmp(m.sha256, sha) == 0);
    snap = reg_snapshot_get();
    CHECK(snap && reg_snapshot_find(snap, "b") == NULL);
    reg_snapshot_put(snap);
    CHECK_INT(reg_register("c", "tester"), 0);
    CHECK_INT(reg_deregister("a", "tester"), 0);
    CHECK_INT(reg_set("c", REG_MONITORING, "{\"type\":\"container\",\"container_name\":\"c1\"}",
                      42, "tester"), 0);
    CHECK_INT(reg_register("a", "tester"), 0);
    CHECK_INT(reg_deregister("a", "tester"), 0);
    CHECK_INT(reg_register("a", "tester"), 0);
    /* services.json, written with the cached text of each record, is reg_serialize's */
    snap = reg_snapshot_get();
    if (snap) {
        struct reg_service *flat = calloc(snap->n ? snap->n : 1, sizeof(*flat));

        for (size_t i = 0; flat && i < snap->n; i++)
            flat[i] = *snap->svcs[i];
        doc = flat ? reg_serialize(flat, snap->n) : NULL;
        free(flat);
    }
    reg_snapshot_put(snap);
    free(prev);
    CHECK_INT(state_read_file(path, &prev, &plen), 0);
    CHECK(doc && prev && strcmp(doc, prev) == 0);
    free(doc);
    free(prev);
    prev = NULL;
    doc = NULL;
    reg_close();
    audit_close();
    CHECK_INT(replay_check_registry(dir, why, sizeof(why)), 0);
    /* replaying the chain gives the file back byte for byte, the aborted change undone */
    free(prev);
    prev = NULL;
    CHECK_INT(state_read_file(path, &prev, &plen), 0);
    CHECKF(replay_chain(dir, &doc, &n, &live, &unverified, why, sizeof(why)) == 0, "%s", why);
    CHECK(doc && prev && strcmp(doc, prev) == 0);
    CHECK_INT(n, 4);
    CHECK_INT(live, 2);
    CHECK_INT(unverified, 0);
    free(doc);
    /* a missing registry refuses the mount unless an empty one is asked for */
    CHECK_INT(unlink(path), 0);
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "conduitfs recover") != NULL);
    cfg.empty_registry = true;
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    snap = reg_snapshot_get();
    CHECK(snap && snap->n == 0);
    reg_snapshot_put(snap);
    reg_close();
    audit_close();
    /* a hand edit is not explained */
    CHECK_INT(state_write_atomic(path, prev, plen, 0600), 0);
    CHECK_INT(replay_check_registry(dir, why, sizeof(why)), -EBADMSG);
    free(prev);
}

/* ---- a fake commit pipeline ---- */
enum fake_mode { FAKE_OK, FAKE_FAIL_BEFORE_SEAL, FAKE_FAIL_AFTER_SEAL };
static enum fake_mode fake_mode;
static int fake_opens, fake_rerenders, fake_commits, fake_flushes;
static char fake_dir[256];
static bool fake_sealed_first;      /* the seal's mark was in the chain before the save */
static size_t fake_ncur, fake_nnext;

static int fake_open(const struct cfs_config *c)
{
    (void)c;
    fake_opens++;
    return 0;
}

static int fake_rerender(void)
{
    fake_rerenders++;
    return 0;
}

static int fake_commit(struct reg_txn *t)
{
    char before[RMARK_SHA_HEX] = "", after[RMARK_SHA_HEX] = "";
    struct rmark m;
    int rc;

    fake_commits++;
    fake_ncur = t->ncur;
    fake_nnext = t->nnext;
    if (fake_mode == FAKE_FAIL_BEFORE_SEAL)
        return -EIO;                    /* as a render that refuses: nothing sealed */
    file_sha(fake_dir, before);
    rc = reg_txn_seal(t);
    if (rc < 0)
        return rc;
    /* sealed, and nothing saved yet */
    file_sha(fake_dir, after);
    fake_sealed_first = rmark_last(fake_dir, &m) == 0 && m.found &&
                        strcmp(m.previous, before) == 0 && strcmp(after, before) == 0 &&
                        strcmp(m.sha256, before) != 0;
    if (fake_mode == FAKE_FAIL_AFTER_SEAL) {
        reg_txn_abort(t, -EIO);         /* as a proxy that refuses the configs */
        return -EIO;
    }
    return reg_txn_save(t);
}

static void fake_flush(void)
{
    fake_flushes++;
}

static const struct reg_pipeline fake_pipeline = {
    .open = fake_open, .rerender = fake_rerender, .commit = fake_commit, .flush = fake_flush,
};

/* The registry calls the pipeline's steps where they belong: open and rerender at mount, commit
 * for every change (with the current and next records), flush after each; a commit step that
 * fails before the seal leaves the chain and services.json alone; one that fails after it gets
 * its registry_abort mark; neither publishes the change. */
static void test_pipeline(const char *dir)
{
    char err[512], sha[RMARK_SHA_HEX], sha0[RMARK_SHA_HEX];
    struct reg_snapshot *snap;
    struct rmark m, m0;

    tl_make_cfg(&cfg, dir, "internal,test");
    snprintf(fake_dir, sizeof(fake_dir), "%s", dir);
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    reg_set_pipeline(&fake_pipeline);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(fake_opens, 1);
    CHECK_INT(fake_rerenders, 1);

    fake_mode = FAKE_OK;
    CHECK_INT(reg_register("a", "tester"), 0);
    CHECK_INT(fake_commits, 1);
    CHECK_INT(fake_flushes, 1);
    CHECK(fake_ncur == 0 && fake_nnext == 1);
    CHECK(fake_sealed_first);
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK_INT(file_sha(dir, sha), 0);
    CHECK(m.found && strcmp(m.sha256, sha) == 0);
    /* a no-op reaches no commit, but still the flush */
    CHECK_INT(reg_set("a", REG_MODE, "proxy\n", 6, "tester"), 0);
    CHECK_INT(fake_commits, 1);
    CHECK_INT(fake_flushes, 2);

    fake_mode = FAKE_FAIL_BEFORE_SEAL;
    CHECK_INT(rmark_last(dir, &m0), 0);
    CHECK_INT(file_sha(dir, sha0), 0);
    CHECK_INT(reg_register("b", "tester"), -EIO);
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK(strcmp(m.sha256, m0.sha256) == 0 && strcmp(m.action, m0.action) == 0);
    CHECK_INT(file_sha(dir, sha), 0);
    CHECK(strcmp(sha, sha0) == 0);

    fake_mode = FAKE_FAIL_AFTER_SEAL;
    CHECK_INT(reg_register("b", "tester"), -EIO);
    CHECK(fake_sealed_first);
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK(m.found && strcmp(m.action, "registry_abort") == 0 && strcmp(m.sha256, sha0) == 0);
    CHECK_INT(file_sha(dir, sha), 0);
    CHECK(strcmp(sha, sha0) == 0);
    snap = reg_snapshot_get();
    CHECK(snap && snap->n == 1 && reg_snapshot_find(snap, "b") == NULL);
    reg_snapshot_put(snap);

    fake_mode = FAKE_OK;
    CHECK_INT(reg_register("b", "tester"), 0);
    CHECK(fake_ncur == 1 && fake_nnext == 2);
    reg_close();
    reg_set_pipeline(NULL);
    audit_close();
    CHECK_INT(replay_check_registry(dir, err, sizeof(err)), 0);
}

/* rmark_last reads the log backwards across chunk boundaries and ignores a torn last line. */
static void test_rmark_last(const char *dir)
{
    char path[4096];
    const char *mark = "{\"action\":\"service_register\",\"status\":\"success\","
        "\"details\":{\"registry\":{\"sha256\":\"" "0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\",\"previous\":\"\"}}}\n";
    const char *torn = "{\"action\":\"service_update\",\"status\":\"success\","
        "\"details\":{\"registry\":{\"sha256\":\"" "ffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffffffffffffffff\"}}}";
    struct rmark m;
    size_t big = 200000, off = 0;
    char *buf = malloc(strlen(mark) + big + 64 + strlen(torn));
    FILE *f;

    if (!buf)
        return;
    memcpy(buf + off, mark, strlen(mark));
    off += strlen(mark);
    off += (size_t)snprintf(buf + off, 64, "{\"action\":\"x\",\"message\":\"");
    memset(buf + off, 'm', big);
    off += big;
    memcpy(buf + off, "\"}\n", 3);
    off += 3;
    memcpy(buf + off, torn, strlen(torn));
    off += strlen(torn);
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fwrite(buf, 1, off, f);
        fclose(f);
    }
    CHECK_INT(rmark_last(dir, &m), 0);
    CHECK(m.found && strncmp(m.sha256, "0123456789abcdef", 16) == 0 && m.previous[0] == '\0');
    CHECK_STR(m.action, "service_register");
    free(buf);
}

int main(void)
{
    char a[] = "/tmp/test_registry.XXXXXX", b[] = "/tmp/test_registry.XXXXXX";
    char c[] = "/tmp/test_registry.XXXXXX", d[] = "/tmp/test_registry.XXXXXX";
    char e[] = "/tmp/test_registry.XXXXXX";
    char *const dirs[] = { a, b, c, d, e };

    tl_make_cfg(&cfg, "/nonexistent", "internal,test");
    test_parse();
    if (tl_state_dir(a) < 0 || tl_state_dir(b) < 0 || tl_state_dir(c) < 0 ||
        tl_state_dir(d) < 0 || tl_state_dir(e) < 0)
        return 1;
    test_corrupt(a);
    test_mutations(b);
    test_marks(c);
    test_rmark_last(d);
    test_pipeline(e);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (tl_rm_rf(dirs[i]) != 0)
            fprintf(stderr, "cleanup of %s failed\n", dirs[i]);
    return tl_finish();
}
