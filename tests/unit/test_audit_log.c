/* test_audit_log.c: the audit trail as the daemon runs it: seal then append in sequence order
 * under 8 threads, a failed log append caught up later, repair and refusal at open, adopting a
 * log older than the chain, the audit/ reports, and `conduitfs verify`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "testlib.h"

#define THREADS 8
#define PER_THREAD 100

static char tmpdir[] = "/tmp/test_audit_log.XXXXXX";

/* tmpdir/sub/name, or tmpdir/sub when name is NULL, into buf. */
static void path_in(char *buf, size_t len, const char *sub, const char *name)
{
    tl_path(buf, len, tmpdir, sub, name, NULL);
}

/* The whole file sub/name, NUL-terminated (NULL when missing). */
static char *slurp(const char *sub, const char *name, size_t *len)
{
    char path[512], *buf = NULL;
    FILE *f;
    long n;

    path_in(path, sizeof(path), sub, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void spill(const char *sub, const char *name, const char *data, size_t len)
{
    char path[512];
    FILE *f;

    path_in(path, sizeof(path), sub, name);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
        chmod(path, 0600);
    }
}

static int count_lines(const char *sub)
{
    char *s = slurp(sub, "audit.log", NULL), *p;
    int n = 0;

    for (p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* Copy a closed trail from one directory to a new one. */
static void copy_trail(const char *from, const char *to)
{
    static const char *const names[] = { "audit.log", "capsules.db", "capsules.db-wal", "key" };
    char dir[512];
    size_t i, len;

    path_in(dir, sizeof(dir), to, NULL);
    mkdir(dir, 0700);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *d = slurp(from, names[i], &len);

        if (d)
            spill(to, names[i], d, len);
        free(d);
    }
}

static int open_sub(const char *sub, char *err, size_t errlen)
{
    char dir[512];

    path_in(dir, sizeof(dir), sub, NULL);
    mkdir(dir, 0700);
    err[0] = '\0';
    return audit_open(dir, err, errlen);
}

static int verify_sub(const char *sub)
{
    char dir[512];
    char *argv[] = { "verify", "--state", dir, NULL };

    path_in(dir, sizeof(dir), sub, NULL);
    return audit_verify_main(3, argv);
}

/* The live audit/verify report. */
static json_t *report(void)
{
    char *text = NULL;
    size_t len = 0;
    json_t *v = NULL;

    CHECK_INT(audit_verify_json(&text, &len), 0);
    if (text) {
        CHECK_INT(len, strlen(text));
        CHECK(text[len - 1] == '\n');
        v = json_loads(text, 0, NULL);
    }
    free(text);
    return v;
}

static void check_intact(long long entries)
{
    json_t *v = report();

    CHECKF(json_is_true(json_object_get(v, "ok")) && json_is_null(json_object_get(v,
           "first_error")), "report: %s",
           json_string_value(json_object_get(json_object_get(v, "first_error"), "reason")));
    CHECK_INT(json_integer_value(json_object_get(v, "entries")), entries);
    CHECK_INT(json_integer_value(json_object_get(v, "head_sequence")), entries - 1);
    CHECK_STR(json_string_value(json_object_get(v, "checked")), "cryptographic");
    json_decref(v);
}

/* trigger.type and trigger.user_id of capsule seq in sub. */
static void trigger_of(const char *sub, long long seq, char *type, char *user, size_t len)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;

    type[0] = user[0] = '\0';
    path_in(path, sizeof(path), sub, "capsules.db");
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "SELECT data FROM capsules WHERE sequence = ?", -1, &s,
                             NULL) == SQLITE_OK);
    sqlite3_bind_int64(s, 1, seq);
    if (sqlite3_step(s) == SQLITE_ROW) {
        json_t *c = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
        json_t *t = json_object_get(c, "trigger");

        snprintf(type, len, "%s", json_string_value(json_object_get(t, "type")));
        snprintf(user, len, "%s", json_is_null(json_object_get(t, "user_id")) ? "null" :
                 json_string_value(json_object_get(t, "user_id")));
        json_decref(c);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_basic(void)
{
    char err[512], type[64], user[64], buf[128];
    const char *two = "{\"action\":\"backup_taken\",\"status\":\"success\"}\n"
                      "{\"action\":\"restore\",\"status\":\"failure\",\"user\":\"x\"}\n";
    json_t *d = json_pack("{s:s}", "name", "core"), *h;
    char *text = NULL;
    size_t len = 0;
    off_t size = 0;
    struct stat sb;

    CHECKF(open_sub("main", err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(audit_open("/nonexistent", err, sizeof(err)), -EBUSY);
    CHECK_INT(audit_log("service_register", "success", "Registered core", "op", d), 0);
    CHECK_INT(audit_log("service_update", "failure", NULL, "op", NULL), 0);
    CHECK_INT(audit_log_event("health_check_fail", "failure", "core is down", d), 0);
    CHECK_INT(audit_append_lines(two, strlen(two), "alice"), 0);
    CHECK_INT(audit_append_lines("{}\n", 3, "alice"), -EINVAL);
    CHECK_INT(count_lines("main"), 5);
    check_intact(5);
    CHECK_INT(audit_head_json(&text, &len), 0);
    h = text ? json_loads(text, 0, NULL) : NULL;
    CHECK_INT(json_integer_value(json_object_get(h, "sequence")), 4);
    CHECK_INT(json_string_length(json_object_get(h, "hash")), 64);
    json_decref(h);
    free(text);
    CHECK_INT(audit_pubkey_text(buf, sizeof(buf)), 65);
    CHECK(buf[64] == '\n');
    CHECK_INT(audit_log_size(&size), 0);
    path_in(err, sizeof(err), "main", "audit.log");
    CHECK(stat(err, &sb) == 0 && sb.st_size == size && (sb.st_mode & 0777) == 0600);
    CHECK_INT(audit_log_read(buf, 13, 0), 13);
    CHECK(memcmp(buf, "{\"timestamp\":", 13) == 0);
    CHECK_INT(audit_log_read(buf, sizeof(buf), size), 0);
    trigger_of("main", 0, type, user, sizeof(type));
    CHECK_STR(type, "user_request");
    CHECK_STR(user, "op");
    trigger_of("main", 2, type, user, sizeof(type));
    CHECK_STR(type, "system");
    CHECK_STR(user, "null");
    trigger_of("main", 4, type, user, sizeof(type));
    CHECK_STR(type, "user_request");
    CHECK_STR(user, "alice");
    json_decref(d);
}

struct worker {
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char action[32], msg[32], lines[256];
    int i, n;

    snprintf(action, sizeof(action), "thread_%d", w->id);
    for (i = 0; i < PER_THREAD; i++) {
        snprintf(msg, sizeof(msg), "%d", 2 * i);
        if (i % 3 == 0) {
            n = snprintf(lines, sizeof(lines),
                         "{\"action\":\"%s\",\"status\":\"success\",\"message\":\"%d\"}\n"
                         "{\"action\":\"%s\",\"status\":\"success\",\"message\":\"%d\"}\n",
                         action, 2 * i, action, 2 * i + 1);
            w->failures += audit_append_lines(lines, (size_t)n, "alice") != 0;
        } else {
            w->failures += audit_log(action, "success", msg, "op", NULL) != 0;
        }
    }
    return NULL;
}

/* Every thread's lines come in the order it wrote them, and none is missing. */
static void check_thread_order(void)
{
    char *s = slurp("main", "audit.log", NULL), *line, *save = NULL;
    int last[THREADS], count[THREADS], bad = 0, i;

    for (i = 0; i < THREADS; i++)
        last[i] = -1, count[i] = 0;
    for (line = s ? strtok_r(s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        json_t *e = json_loads(line, 0, NULL);
        const char *a = json_string_value(json_object_get(e, "action"));
        int id, m;

        if (a && sscanf(a, "thread_%d", &id) == 1 && id >= 0 && id < THREADS) {
            m = atoi(json_string_value(json_object_get(e, "message")));
            if (m <= last[id])
                bad++;
            last[id] = m;
            count[id]++;
        }
        json_decref(e);
    }
    CHECK_INT(bad, 0);
    for (i = 0; i < THREADS; i++)
        CHECK_INT(count[i], PER_THREAD + (PER_THREAD + 2) / 3);
    free(s);
}

static void test_concurrent(void)
{
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    int i, fails = 0, before = count_lines("main");

    for (i = 0; i < THREADS; i++) {
        w[i].id = i;
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        fails += w[i].failures;
    }
    CHECK_INT(fails, 0);
    CHECK_INT(count_lines("main") - before, THREADS * (PER_THREAD + (PER_THREAD + 2) / 3));
    check_intact(count_lines("main"));
    check_thread_order();
}

/* The descriptor this process holds on sub/audit.log, -1 if none. */
static int find_log_fd(const char *sub)
{
    char want[512], link[512], got[512];
    struct dirent *de;
    DIR *d = opendir("/proc/self/fd");
    int fd = -1;
    ssize_t n;

    path_in(want, sizeof(want), sub, "audit.log");
    while (d && (de = readdir(d)) != NULL) {
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        n = readlink(link, got, sizeof(got) - 1);
        if (n > 0) {
            got[n] = '\0';
            if (strcmp(got, want) == 0)
                fd = atoi(de->d_name);
        }
    }
    if (d)
        closedir(d);
    return fd;
}

/* A log append that fails after the seal: the capsule is durable, so the writer is told it
 * worked (and syslog of the failed line); the next append first rebuilds the missing line. */
static void test_log_failure(void)
{
    char path[512];
    int fd = find_log_fd("main"), ro, rw, before = count_lines("main");

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    path_in(path, sizeof(path), "main", "audit.log");
    ro = open(path, O_RDONLY);
    rw = open(path, O_RDWR | O_APPEND);
    CHECK(ro >= 0 && rw >= 0 && dup2(ro, fd) == fd);
    CHECK_INT(audit_log("lost_line", "success", "sealed, not appended", "op", NULL), 0);
    CHECK_INT(count_lines("main"), before);
    CHECK(dup2(rw, fd) == fd);
    close(ro);
    close(rw);
    CHECK_INT(audit_log("after", "success", NULL, "op", NULL), 0);
    CHECK_INT(count_lines("main"), before + 2);
    check_intact(before + 2);
}

static void cut_tail(const char *sub, int drop, const char *fragment)
{
    size_t len;
    char *s = slurp(sub, "audit.log", &len);
    int n = 0;

    while (s && len > 0 && n < drop) {
        len--;
        if (len == 0 || s[len - 1] == '\n')
            n++;
    }
    if (!s)
        return;
    spill(sub, "audit.log", s, len);
    free(s);
    if (fragment) {
        char path[512];
        FILE *f;

        path_in(path, sizeof(path), sub, "audit.log");
        f = fopen(path, "ab");
        if (f) {
            fputs(fragment, f);
            fclose(f);
        }
    }
}

static void test_repair(void)
{
    char err[512], *before, *after;
    int n = count_lines("main");

    audit_close();
    CHECK_INT(verify_sub("main"), 0);
    before = slurp("main", "audit.log", NULL);
    cut_tail("main", 3, "{\"timestamp\":\"2026-");
    CHECK_INT(count_lines("main"), n - 3);
    CHECK_INT(verify_sub("main"), 1);
    CHECKF(open_sub("main", err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(count_lines("main"), n);
    check_intact(n);
    audit_close();
    after = slurp("main", "audit.log", NULL);
    CHECK(before && after && strlen(before) == strlen(after));
    free(before);
    free(after);

    /* a deleted log is rebuilt whole */
    path_in(err, sizeof(err), "main", "audit.log");
    CHECK(unlink(err) == 0);
    CHECKF(open_sub("main", err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(count_lines("main"), n);
    audit_close();
    CHECK_INT(verify_sub("main"), 0);
}

static void expect_refused(const char *sub, const char *want)
{
    char err[512];
    int rc = open_sub(sub, err, sizeof(err));

    CHECKF(rc < 0 && strstr(err, want) != NULL && !strchr(err, '\n'), "%s: rc %d: %s", sub, rc,
           err);
    if (rc == 0)
        audit_close();
    CHECK_INT(verify_sub(sub), 1);
}

static void test_refuse(void)
{
    char path[512], *s, *p;
    size_t len;
    struct stat sb;

    copy_trail("main", "edited");
    s = slurp("edited", "audit.log", &len);
    p = s ? strstr(s, "\"service_update\"") : NULL;
    CHECK(p != NULL);
    if (p) {
        memcpy(p, "\"service_updata\"", 16);
        spill("edited", "audit.log", s, len);
    }
    free(s);
    expect_refused("edited", "sequence 1: audit.log line 2 differs");

    copy_trail("main", "extra");
    s = slurp("extra", "audit.log", &len);
    if (s) {
        p = strchr(s, '\n');
        spill("extra", "audit.log", s, len);
        path_in(path, sizeof(path), "extra", "audit.log");
        FILE *f = fopen(path, "ab");

        if (f && p) {
            fwrite(s, 1, (size_t)(p - s) + 1, f);
            fclose(f);
        }
    }
    free(s);
    expect_refused("extra", "has no capsule");

    copy_trail("main", "nokey");
    path_in(path, sizeof(path), "nokey", "key");
    CHECK(unlink(path) == 0);
    expect_refused("nokey", "signing key");
    CHECK(stat(path, &sb) < 0 && errno == ENOENT);

    copy_trail("main", "nodb");
    path_in(path, sizeof(path), "nodb", "capsules.db");
    CHECK(unlink(path) == 0);
    expect_refused("nodb", "sequence 0: audit.log line 1 has no capsule");
}

static void test_legacy(void)
{
    const char *old =
        "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"action\":\"conduit_setup\",\"status\":"
        "\"success\",\"message\":\"Initialized\",\"user\":\"root\",\"details\":{}}\n"
        "{\"timestamp\":\"2025-01-02T00:00:00Z\",\"action\":\"health_check_fail\",\"status\":"
        "\"failure\",\"message\":\"down\",\"user\":\"system\",\"details\":{\"n\":1}}\n"
        "{\"timestamp\":\"2025-01-03T00:00:00Z\",\"action\":\"service_register\",\"status\":"
        "\"success\",\"message\":\"\",\"user\":\"op\",\"details\":{\"name\":\"core\"}}\n";
    const char *bad = "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"action\":\"x\",\"status\":"
        "\"success\",\"message\":\"\",\"user\":\"root\",\"details\":{}}\nnot json\n";
    char err[512], type[64], user[64], dir[512], *now;

    path_in(dir, sizeof(dir), "legacy", NULL);
    mkdir(dir, 0700);
    spill("legacy", "audit.log", old, strlen(old));
    {
        FILE *f;

        path_in(err, sizeof(err), "legacy", "audit.log");
        f = fopen(err, "ab");
        if (f) {
            fputs("{\"timestamp\":", f);
            fclose(f);
        }
    }
    CHECKF(open_sub("legacy", err, sizeof(err)) == 0, "%s", err);
    check_intact(3);
    now = slurp("legacy", "audit.log", NULL);
    CHECK(now && strcmp(now, old) == 0);
    free(now);
    CHECK_INT(audit_log("after", "success", NULL, "op", NULL), 0);
    check_intact(4);
    audit_close();
    trigger_of("legacy", 1, type, user, sizeof(type));
    CHECK_STR(type, "system");
    trigger_of("legacy", 2, type, user, sizeof(type));
    CHECK_STR(user, "op");
    CHECK_INT(verify_sub("legacy"), 0);

    path_in(dir, sizeof(dir), "legacy_bad", NULL);
    mkdir(dir, 0700);
    spill("legacy_bad", "audit.log", bad, strlen(bad));
    expect_refused("legacy_bad", "line 2");
}

static void test_verify_main(void)
{
    char home[512], cfg[512];
    char *bogus[] = { "verify", "--bogus", NULL };
    char *extra[] = { "verify", "x", NULL };
    char *nostate[] = { "verify", "--state", NULL };
    char *plain[] = { "verify", NULL };
    char *missing[] = { "verify", "--state", "/nonexistent/state", NULL };
    char *pin[] = { "verify", "--state", cfg, "--pubkey", "00", NULL };

    CHECK_INT(audit_verify_main(2, bogus), 2);
    CHECK_INT(audit_verify_main(2, extra), 2);
    CHECK_INT(audit_verify_main(2, nostate), 2);
    CHECK_INT(audit_verify_main(3, missing), 1);
    path_in(home, sizeof(home), "home", NULL);
    mkdir(home, 0700);
    path_in(cfg, sizeof(cfg), "home", ".config");
    mkdir(cfg, 0700);
    copy_trail("main", "home/.config/lab");
    setenv("HOME", home, 1);
    setenv("CONDUIT_APP_NAME", "lab", 1);
    CHECK_INT(audit_verify_main(1, plain), 0);
    setenv("CONDUIT_APP_NAME", "other", 1);
    CHECK_INT(audit_verify_main(1, plain), 1);
    CHECK_INT(audit_verify_main(5, pin), 2);
}

/* The last line of sub's audit.log, parsed (NULL when none). */
static json_t *last_line(const char *sub)
{
    size_t len = 0;
    char *s = slurp(sub, "audit.log", &len), *p;
    json_t *v = NULL;

    if (s && len > 1) {
        s[len - 1] = '\0';
        p = strrchr(s, '\n');
        v = json_loads(p ? p + 1 : s, 0, NULL);
    }
    free(s);
    return v;
}

/* The portable subset (issue 15): an append whose details the two CPS references canonicalize
 * differently is EINVAL, seals none of its lines but one change_refused failure entry naming
 * the path, the caller and the reason; the daemon's own details are made portable; a chain
 * that holds such a capsule from before still verifies (with a warning). */
static void test_portable(void)
{
    const char *bad = "{\"action\":\"x\",\"status\":\"success\",\"details\":"
                      "{\"a\":[{\"b\":2.0}]}}\n";
    const char *two = "{\"action\":\"good\",\"status\":\"success\",\"details\":{\"v\":0.1}}\n"
                      "{\"action\":\"big\",\"status\":\"success\",\"details\":{\"v\":1e16}}\n";
    const char *fine = "{\"action\":\"fine\",\"status\":\"success\",\"details\":{\"v\":4.35,"
                       "\"w\":1e22,\"n\":9007199254740991}}\n";
    const char *legacy = "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"action\":\"old\",\"status\":"
        "\"success\",\"message\":\"\",\"user\":\"root\",\"details\":{\"v\":2.0}}\n";
    struct audit_item items[2] = {
        { .action = "batch_one", .status = "success", .user = "op" },
        { .action = "batch_two", .status = "success", .user = "op" },
    };
    json_t *own = json_loads("{\"a\":2.0,\"b\":-0.0,\"c\":1e-05,\"d\":9007199254740993,"
                             "\"e\":[3.0,0.5]}", 0, NULL);
    json_t *keys = json_loads("{\"\\ud83d\\ude00\":1,\"\\ue000\":2}", 0, NULL), *v, *d;
    char err[512], *text;
    long long n;

    CHECKF(open_sub("portable", err, sizeof(err)) == 0, "%s", err);
    CHECK_INT(audit_append_lines(bad, strlen(bad), "alice"), -EINVAL);
    CHECK_INT(count_lines("portable"), 1);
    v = last_line("portable");
    d = json_object_get(v, "details");
    CHECK_STR(json_string_value(json_object_get(v, "action")), "change_refused");
    CHECK_STR(json_string_value(json_object_get(v, "status")), "failure");
    CHECK_STR(json_string_value(json_object_get(v, "user")), "alice");
    CHECK_STR(json_string_value(json_object_get(d, "path")), "audit/audit.log");
    CHECK_STR(json_string_value(json_object_get(d, "operation")), "x");
    CHECK_STR(json_string_value(json_object_get(d, "reason")), "line 1: not portable, "
              "details.a[0].b: an integral real (Python writes 2.0, JavaScript 2)");
    CHECK_STR(json_string_value(json_object_get(d, "error")), "Invalid argument");
    json_decref(v);
    CHECK_INT(audit_append_lines(two, strlen(two), "alice"), -EINVAL);
    CHECK_INT(count_lines("portable"), 2);
    v = last_line("portable");
    d = json_object_get(v, "details");
    CHECK_STR(json_string_value(json_object_get(d, "operation")), "big");
    CHECK(strstr(json_string_value(json_object_get(d, "reason")), "line 2: not portable, "
                 "details.v: a real in exponent form") != NULL);
    json_decref(v);
    CHECK_INT(audit_append_lines(fine, strlen(fine), "alice"), 0);
    CHECK_INT(count_lines("portable"), 3);

    /* the daemon's own: numbers made portable, keys that are not refused */
    CHECK_INT(audit_log("own", "success", NULL, "op", own), 0);
    v = last_line("portable");
    text = json_dumps(json_object_get(v, "details"), JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(text ? text : "", "{\"a\":2,\"b\":0,\"c\":\"1e-05\",\"d\":\"9007199254740993\","
              "\"e\":[3,0.5]}");
    free(text);
    json_decref(v);
    CHECK(json_is_real(json_object_get(own, "a")));   /* the caller's stays as it was */
    CHECK_INT(audit_log_event("own_keys", "success", NULL, keys), -EINVAL);
    CHECK_INT(count_lines("portable"), 4);
    items[1].details = own;
    CHECK_INT(audit_log_batch(items, 2, NULL), 0);
    v = last_line("portable");
    CHECK(json_is_integer(json_object_get(json_object_get(v, "details"), "a")));
    json_decref(v);
    check_intact(6);
    audit_close();
    CHECK_INT(verify_sub("portable"), 0);

    /* a chain sealed before: adopted as it stands, and it verifies (a warning on stderr) */
    path_in(err, sizeof(err), "portable_old", NULL);
    mkdir(err, 0700);
    spill("portable_old", "audit.log", legacy, strlen(legacy));
    CHECKF(open_sub("portable_old", err, sizeof(err)) == 0, "%s", err);
    n = count_lines("portable_old");
    CHECK_INT(n, 1);
    audit_close();
    CHECK_INT(verify_sub("portable_old"), 0);
    json_decref(own);
    json_decref(keys);
}

/* Fill buf with len bytes of valid lines of about 1 KiB (the last takes the rest). */
static void fill_lines(char *buf, size_t len)
{
    static const char head[] = "{\"action\":\"fill\",\"status\":\"success\",\"message\":\"";
    size_t off = 0, n;

    while (off < len) {
        n = len - off >= 2048 ? 1024 : len - off;
        memcpy(buf + off, head, sizeof(head) - 1);
        memset(buf + off + sizeof(head) - 1, 'x', n - (sizeof(head) - 1) - 3);
        memcpy(buf + off + n - 3, "\"}\n", 3);
        off += n;
    }
}

/* One append holds at most AUDIT_APPEND_MAX bytes (issue 12, item 5): exactly that many is
 * sealed whole; one byte more is EFBIG, whatever it holds, and seals nothing. A verified
 * checkpoint is kept in audit.checkpoint at the head. */
static void test_append_limit(void)
{
    char err[512], *buf = malloc(1048576 + 2048);
    json_t *v;
    int n;

    CHECK(buf != NULL);
    if (!buf)
        return;
    CHECKF(open_sub("limit", err, sizeof(err)) == 0, "%s", err);
    fill_lines(buf, AUDIT_APPEND_MAX);
    CHECK_INT(audit_append_lines(buf, AUDIT_APPEND_MAX, "alice"), 0);
    n = count_lines("limit");
    CHECK_INT(n, AUDIT_APPEND_MAX / 1024);
    fill_lines(buf, AUDIT_APPEND_MAX + 1);
    CHECK_INT(audit_append_lines(buf, AUDIT_APPEND_MAX + 1, "alice"), -EFBIG);
    fill_lines(buf, 1048576 + 1024);
    memcpy(buf + 1048576 + 10, "FILL", 4);
    CHECK_INT(audit_append_lines(buf, 1048576 + 1024, "alice"), -EFBIG);
    CHECK_INT(count_lines("limit"), n);
    check_intact(n);
    audit_close();
    free(buf);
    buf = slurp("limit", "audit.checkpoint", NULL);
    v = buf ? json_loads(buf, 0, NULL) : NULL;
    CHECKF(json_integer_value(json_object_get(v, "sequence")) == n - 1, "checkpoint: %s",
           buf ? buf : "(none)");
    json_decref(v);
    free(buf);
    CHECKF(open_sub("limit", err, sizeof(err)) == 0, "%s", err);
    check_intact(n);
    audit_close();
}

int main(void)
{
    static const tl_test_fn tests[] = {
        test_basic, test_concurrent, test_log_failure, test_repair, test_refuse, test_legacy,
        test_verify_main, test_append_limit, test_portable, NULL
    };

    return tl_main_in_dir(tmpdir, tests);
}
