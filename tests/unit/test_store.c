/* test_store.c: the SQLite capsule chain: append, linkage, group commit under 8 threads, reopen,
 * foreign databases, and tampering with copies of the database. */
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

#include "audit/canon.h"
#include "audit/capsule.h"
#include "audit/store.h"
#include "testlib.h"

#define THREADS 8
#define PER_THREAD 200
#define FIRST 10

static char tmpdir[] = "/tmp/test_store.XXXXXX";

static json_t *make_entry(const char *action, const char *status, const char *user, int n)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "%s number %d", action, n);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:f}}",
                     "timestamp", "2026-04-04T10:15:00.25Z", "action", action, "status", status,
                     "message", msg, "user", user, "details", "n", n, "ratio", 0.5);
}

static struct audit_store *open_store(const char *sub)
{
    struct audit_store *st = NULL;
    char dir[512], err[512] = "";
    int rc;

    tl_path(dir, sizeof(dir), tmpdir, sub, NULL);
    mkdir(dir, 0700);
    rc = audit_store_open(dir, &(const struct audit_store_opts){ .hostname = "gw-test" }, &st, err,
                          sizeof(err));
    CHECKF(rc == 0, "open %s: %d %s", dir, rc, err);
    return st;
}

static sqlite3 *raw_open(const char *sub)
{
    char path[512];
    sqlite3 *db = NULL;

    tl_path(path, sizeof(path), tmpdir, sub, "capsules.db", NULL);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    CHECKF(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out;
    ssize_t n;

    if (in < 0)
        return;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(out >= 0);
    while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    if (out >= 0)
        close(out);
}

/* Copy the closed store in sub to a new directory to. */
static void copy_store(const char *sub, const char *to)
{
    static const char *const names[] = { "capsules.db", "capsules.db-wal", "key" };
    char a[512], b[512];
    size_t i;

    tl_path(b, sizeof(b), tmpdir, to, NULL);
    mkdir(b, 0700);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        tl_path(a, sizeof(a), tmpdir, sub, names[i], NULL);
        tl_path(b, sizeof(b), tmpdir, to, names[i], NULL);
        copy_file(a, b);
    }
}

static void test_open_empty(void)
{
    struct audit_store *st = open_store("main");
    char hash[AUDIT_HASH_HEX] = "x", by[AUDIT_KEYID_HEX] = "x", at[AUDIT_TIME_MAX] = "x";
    struct audit_verify_report r;
    char path[512];
    struct stat sb;
    long long seq = 7;

    if (!st)
        return;
    CHECK_INT(audit_store_head(st, &seq, hash, by, at), 0);
    CHECK_INT(seq, -1);
    CHECK_STR(hash, "");
    CHECK_STR(by, "");
    CHECK_INT(audit_store_verify(st, &r), 0);
    CHECK_INT(r.failed_seq, -1);
    CHECK_INT(r.checked, 0);
    CHECK_INT(strlen(audit_store_pubkey_hex(st)), 64);
    tl_path(path, sizeof(path), tmpdir, "main", "capsules.db", NULL);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    tl_path(path, sizeof(path), tmpdir, "main", "key", NULL);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600 && sb.st_size == 32);
    audit_store_close(st);
}

static void test_append_and_links(void)
{
    struct audit_store *st = open_store("main");
    char hashes[FIRST][AUDIT_HASH_HEX], head[AUDIT_HASH_HEX], by[AUDIT_KEYID_HEX];
    char at[AUDIT_TIME_MAX];
    struct audit_verify_report r;
    sqlite3_stmt *s = NULL;
    sqlite3 *db;
    long long seq;
    int i;

    if (!st)
        return;
    for (i = 0; i < FIRST; i++) {
        json_t *e = make_entry("service_register", i % 3 ? "success" : "failure", "operator", i);

        seq = -2;
        CHECK_INT(audit_store_append(st, e, i == 0, i, hashes[i], &seq), 0);
        CHECK_INT(seq, i);
        json_decref(e);
    }
    CHECK_INT(audit_store_head(st, &seq, head, by, at), 0);
    CHECK_INT(seq, FIRST - 1);
    CHECK_STR(head, hashes[FIRST - 1]);
    CHECK(strncmp(by, audit_store_pubkey_hex(st), 16) == 0 && strlen(by) == 16);
    CHECK(strstr(at, "+00:00") != NULL);
    CHECK_INT(audit_store_verify(st, &r), 0);
    CHECKF(r.failed_seq == -1 && r.checked == FIRST, "failed %lld: %s", r.failed_seq, r.reason);

    /* The rows as another reader sees them: linkage, columns, canonical data. */
    db = raw_open("main");
    CHECK(sqlite3_prepare_v2(db, "SELECT sequence, previous_hash, hash, data, signature_pq, "
                             "signed_by, type, session_id FROM capsules ORDER BY sequence", -1,
                             &s, NULL) == SQLITE_OK);
    for (i = 0; s && sqlite3_step(s) == SQLITE_ROW; i++) {
        const char *prev = (const char *)sqlite3_column_text(s, 1);
        const char *data = (const char *)sqlite3_column_text(s, 3);
        json_t *cap = json_loads(data, 0, NULL);
        char *canon = NULL;

        CHECK_INT(sqlite3_column_int64(s, 0), i);
        if (i == 0)
            CHECK(prev == NULL);
        else
            CHECK(prev && strcmp(prev, hashes[i - 1]) == 0);
        CHECK_STR((const char *)sqlite3_column_text(s, 2), hashes[i]);
        CHECK_STR((const char *)sqlite3_column_text(s, 4), "");
        CHECK_STR((const char *)sqlite3_column_text(s, 5), by);
        CHECK_STR((const char *)sqlite3_column_text(s, 6), "system");
        CHECK(sqlite3_column_type(s, 7) == SQLITE_NULL);
        CHECK(cap != NULL);
        audit_canon(cap, AUDIT_CANON_CAPSULE, &canon, NULL);
        CHECK(canon && strcmp(canon, data) == 0);
        CHECK_STR(json_string_value(json_object_get(json_object_get(cap, "trigger"), "type")),
                  i == 0 ? "system" : "user_request");
        free(canon);
        json_decref(cap);
    }
    CHECK_INT(i, FIRST);
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* A bad entry is refused and appends nothing. */
    {
        json_t *bad = json_pack("{s:s}", "action", "x");

        CHECK_INT(audit_store_append(st, bad, 0, 0, NULL, NULL), -EINVAL);
        CHECK_INT(audit_store_head(st, &seq, NULL, NULL, NULL), 0);
        CHECK_INT(seq, FIRST - 1);
        json_decref(bad);
    }
    audit_store_close(st);
}

struct worker {
    struct audit_store *st;
    int id;
    int failures;
    long long seqs[PER_THREAD];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char action[32];
    int i;

    snprintf(action, sizeof(action), "thread_%d", w->id);
    for (i = 0; i < PER_THREAD; i++) {
        json_t *e = make_entry(action, "success", "operator", i);

        if (audit_store_append(w->st, e, 0, 1, NULL, &w->seqs[i]) != 0)
            w->failures++;
        json_decref(e);
    }
    return NULL;
}

struct tally {
    long long next;
    int bad_order;
    int per_thread[THREADS];
    int first;
};

static int tally_cb(long long seq, const json_t *result, void *arg)
{
    struct tally *t = arg;
    const char *action = json_string_value(json_object_get(result, "action"));
    int id;

    if (seq != t->next++)
        t->bad_order++;
    if (action && sscanf(action, "thread_%d", &id) == 1 && id >= 0 && id < THREADS)
        t->per_thread[id]++;
    else if (action && strcmp(action, "service_register") == 0)
        t->first++;
    return 0;
}

static int stop_cb(long long seq, const json_t *result, void *arg)
{
    (void)result;
    (void)arg;
    return seq == 3 ? 42 : 0;
}

static void test_concurrency(void)
{
    static struct worker w[THREADS];
    static char seen[FIRST + THREADS * PER_THREAD];
    pthread_t th[THREADS];
    struct audit_store *st = open_store("main");
    struct audit_verify_report r;
    struct tally t = { 0 };
    long long appends = 0, batches = 0, seq = -2;
    int i, j, bad = 0, fails = 0;

    if (!st)
        return;
    for (i = 0; i < THREADS; i++) {
        w[i].st = st;
        w[i].id = i;
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < THREADS; i++) {
        fails += w[i].failures;
        for (j = 0; j < PER_THREAD; j++) {
            long long q = w[i].seqs[j];

            if (q < FIRST || q >= FIRST + THREADS * PER_THREAD || seen[q])
                bad++;
            else
                seen[q] = 1;
            /* One thread's appends come back in its own order. */
            if (j > 0 && q <= w[i].seqs[j - 1])
                bad++;
        }
    }
    CHECK_INT(fails, 0);
    CHECK_INT(bad, 0);
    CHECK_INT(audit_store_head(st, &seq, NULL, NULL, NULL), 0);
    CHECK_INT(seq, FIRST + THREADS * PER_THREAD - 1);
    audit_store_stats(st, &appends, &batches);
    CHECK_INT(appends, THREADS * PER_THREAD);
    CHECKF(batches > 0 && batches < appends, "batches %lld for %lld appends", batches, appends);
    printf("group commit: %lld appends in %lld transactions\n", appends, batches);
    CHECK_INT(audit_store_verify(st, &r), 0);
    CHECKF(r.failed_seq == -1 && r.checked == FIRST + THREADS * PER_THREAD, "failed %lld: %s",
           r.failed_seq, r.reason);

    CHECK_INT(audit_store_foreach_result(st, tally_cb, &t), 0);
    CHECK_INT(t.next, FIRST + THREADS * PER_THREAD);
    CHECK_INT(t.bad_order, 0);
    CHECK_INT(t.first, FIRST);
    for (i = 0; i < THREADS; i++)
        CHECK_INT(t.per_thread[i], PER_THREAD);
    CHECK_INT(audit_store_foreach_result(st, stop_cb, NULL), 42);
    audit_store_close(st);
}

static void test_reopen(void)
{
    struct audit_store *st = open_store("main");
    struct audit_verify_report r;
    char head[AUDIT_HASH_HEX], h[AUDIT_HASH_HEX];
    long long seq = -2, seq2 = -2;
    json_t *e = make_entry("service_deregister", "success", "operator", 0);

    if (!st)
        goto out;
    CHECK_INT(audit_store_head(st, &seq, head, NULL, NULL), 0);
    CHECK_INT(seq, FIRST + THREADS * PER_THREAD - 1);
    CHECK_INT(audit_store_append(st, e, 0, 5, h, &seq2), 0);
    CHECK_INT(seq2, seq + 1);
    CHECK_INT(audit_store_verify(st, &r), 0);
    CHECKF(r.failed_seq == -1 && r.checked == seq2 + 1, "failed %lld: %s", r.failed_seq,
           r.reason);
    /* from a verified point: the capsule there must link to the hash given for the one before */
    CHECK_INT(audit_store_hash_at(st, 4, head), 0);
    CHECK_INT(audit_store_verify_from(st, 5, head, NULL, &r), 0);
    CHECKF(r.failed_seq == -1 && r.checked == seq2 + 1 && r.entries == seq2 + 1,
           "failed %lld: %s", r.failed_seq, r.reason);
    CHECK_INT(audit_store_hash_at(st, 3, head), 0);
    CHECK_INT(audit_store_verify_from(st, 5, head, NULL, &r), -EBADMSG);
    CHECK_INT(r.failed_seq, 5);
    CHECK_INT(audit_store_verify_from(st, 5, "short", NULL, &r), -EINVAL);
    CHECK_INT(audit_store_hash_at(st, seq2 + 1, head), -ENOENT);
    audit_store_close(st);
out:
    json_decref(e);
}

/* Tamper with a copy of the main store with sql (or fn), then expect verify to fail at want. */
static void tamper(const char *name, const char *sql, void (*fn)(sqlite3 *), long long want,
                   const char *reason)
{
    struct audit_verify_report r;
    struct audit_store *st;
    sqlite3 *db;
    int rc;

    copy_store("main", name);
    db = raw_open(name);
    if (sql)
        raw_exec(db, sql);
    if (fn)
        fn(db);
    sqlite3_close(db);
    st = open_store(name);
    if (!st)
        return;
    rc = audit_store_verify(st, &r);
    CHECKF(rc == -EBADMSG && r.failed_seq == want && strstr(r.reason, reason) != NULL,
           "%s: rc %d at %lld (want %lld): %s", name, rc, r.failed_seq, want, r.reason);
    CHECK_INT(r.checked, want);
    audit_store_close(st);
}

/* Edit the data of sequence 5 and store the matching hash, as a forger without the key would. */
static void rehash_row5(sqlite3 *db)
{
    sqlite3_stmt *s = NULL, *u = NULL;
    char hash[AUDIT_HASH_HEX], *canon = NULL;
    json_t *cap = NULL;

    CHECK(sqlite3_prepare_v2(db, "SELECT data FROM capsules WHERE sequence = 5", -1, &s,
                             NULL) == SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        cap = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
    sqlite3_finalize(s);
    CHECK(cap != NULL);
    if (!cap)
        return;
    json_object_set_new(json_object_get(cap, "outcome"), "summary", json_string("nothing"));
    CHECK_INT(audit_capsule_hash(cap, hash), 0);
    CHECK_INT(audit_canon(cap, AUDIT_CANON_CAPSULE, &canon, NULL), 0);
    CHECK(sqlite3_prepare_v2(db, "UPDATE capsules SET data = ?, hash = ? WHERE sequence = 5",
                             -1, &u, NULL) == SQLITE_OK);
    sqlite3_bind_text(u, 1, canon, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(u, 2, hash, -1, SQLITE_TRANSIENT);
    CHECK(sqlite3_step(u) == SQLITE_DONE);
    sqlite3_finalize(u);
    free(canon);
    json_decref(cap);
}

/* Delete the key of a copied store, so opening it makes a new key. */
static void drop_key(sqlite3 *db)
{
    char path[512];

    (void)db;
    tl_path(path, sizeof(path), tmpdir, "t_key", "key", NULL);
    CHECK(unlink(path) == 0);
}

static void test_tamper(void)
{
    tamper("t_data", "UPDATE capsules SET data = replace(data, 'number 5', 'number 6') "
           "WHERE sequence = 5", NULL, 5, "hash mismatch");
    tamper("t_rehash", NULL, rehash_row5, 5, "signature");
    tamper("t_delete", "DELETE FROM capsules WHERE sequence = 5", NULL, 5, "sequence gap");
    tamper("t_swap", "UPDATE capsules SET sequence = -1 WHERE sequence = 5;"
           "UPDATE capsules SET sequence = 5 WHERE sequence = 6;"
           "UPDATE capsules SET sequence = 6 WHERE sequence = -1", NULL, 5, "sequence");
    tamper("t_swap_content",
           "CREATE TEMP TABLE x AS SELECT * FROM capsules WHERE sequence IN (5, 6);"
           "DELETE FROM capsules WHERE sequence IN (5, 6);"
           "INSERT INTO capsules SELECT id, type, 11 - sequence, previous_hash, data, hash, "
           "signature, signature_pq, signed_at, signed_by, session_id FROM x", NULL, 5,
           "sequence");
    tamper("t_sig", "UPDATE capsules SET signature = CASE substr(signature, 1, 1) "
           "WHEN '0' THEN '1' ELSE '0' END || substr(signature, 2) WHERE sequence = 7", NULL, 7,
           "signature");
    tamper("t_prev", "UPDATE capsules SET previous_hash = hash WHERE sequence = 9", NULL, 9,
           "previous_hash");
    tamper("t_genesis", "DELETE FROM capsules WHERE sequence = 0", NULL, 0, "sequence gap");
    tamper("t_key", NULL, drop_key, 0, "signed by key");
    tamper("t_json", "UPDATE capsules SET data = '{\"id\":' WHERE sequence = 2", NULL, 2,
           "not JSON");
}

/* Databases that are not ours are refused with a message that says so. */
static void foreign(const char *name, const char *sql, const char *text, const char *want)
{
    struct audit_store *st = NULL;
    char dir[512], path[512], err[512] = "";
    int rc;

    tl_path(dir, sizeof(dir), tmpdir, name, NULL);
    mkdir(dir, 0700);
    tl_path(path, sizeof(path), tmpdir, name, "capsules.db", NULL);
    if (sql) {
        sqlite3 *db = raw_open(name);

        raw_exec(db, sql);
        sqlite3_close(db);
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        if (fd >= 0)
            close(fd);
    }
    rc = audit_store_open(dir, &(const struct audit_store_opts){ .hostname = "h" }, &st, err,
                          sizeof(err));
    CHECKF(rc < 0 && st == NULL && strstr(err, want) != NULL, "%s: rc %d: %s", name, rc, err);
    if (rc == 0)
        audit_store_close(st);
}

static void test_foreign(void)
{
    struct audit_store *st;
    struct audit_verify_report r;
    json_t *e = make_entry("service_register", "success", "operator", 1);
    sqlite3 *db;

    foreign("f_text", NULL, "this is certainly not a database, but it is long enough to look "
            "like a header of something else entirely, so SQLite must refuse to read it",
            "is not an SQLite database");
    {
        char key[512];
        struct stat sb;

        /* A refused database leaves no key behind. */
        tl_path(key, sizeof(key), tmpdir, "f_text", "key", NULL);
        CHECK(stat(key, &sb) < 0 && errno == ENOENT);
    }
    foreign("f_other", "CREATE TABLE services (name TEXT)", NULL, "services");
    foreign("f_shape", "CREATE TABLE capsules (id TEXT, body TEXT)", NULL, "no column type");

    /* The reference implementation's own DDL (SQLAlchemy types, no UNIQUE) is accepted. */
    {
        char dir[512];

        tl_path(dir, sizeof(dir), tmpdir, "f_ref", NULL);
        mkdir(dir, 0700);
    }
    db = raw_open("f_ref");
    raw_exec(db, "CREATE TABLE capsules (id VARCHAR(36) NOT NULL, type VARCHAR(20) NOT NULL, "
             "sequence INTEGER NOT NULL, previous_hash VARCHAR(64), data TEXT NOT NULL, "
             "hash VARCHAR(64) NOT NULL, signature TEXT NOT NULL, signature_pq TEXT NOT NULL, "
             "signed_at VARCHAR(30), signed_by VARCHAR(16), session_id VARCHAR(36), "
             "PRIMARY KEY (id)); CREATE INDEX ix_capsules_sequence ON capsules (sequence)");
    sqlite3_close(db);
    st = open_store("f_ref");
    if (st) {
        CHECK_INT(audit_store_append(st, e, 0, 0, NULL, NULL), 0);
        CHECK_INT(audit_store_append(st, e, 0, 0, NULL, NULL), 0);
        CHECK_INT(audit_store_verify(st, &r), 0);
        CHECK_INT(r.checked, 2);
        audit_store_close(st);
    }
    json_decref(e);
}

/* The size of a file in the store sub, 0 when missing. */
static long long file_size(const char *sub, const char *name)
{
    char path[512];
    struct stat sb;

    tl_path(path, sizeof(path), tmpdir, sub, name, NULL);
    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* The WAL stays bounded (issue 12, item 6): single appends, and a batch far larger than the
 * bound, leave capsules.db-wal within about 1 MiB once the next append has run. */
static void test_wal_bounded(void)
{
    struct audit_store *st = open_store("wal");
    enum { BIG = 3000, BOUND = 1536 * 1024 };
    json_t **many;
    long long max = 0, sz;
    int i;

    if (!st)
        return;
    for (i = 0; i < 600; i++) {
        json_t *e = make_entry("wal_one", "success", "alice", i);

        CHECK_INT(audit_store_append(st, e, 0, 0, NULL, NULL), 0);
        json_decref(e);
        sz = file_size("wal", "capsules.db-wal");
        if (sz > max)
            max = sz;
    }
    CHECKF(max <= BOUND, "WAL reached %lld bytes over 600 single appends", max);
    many = calloc(BIG, sizeof(*many));
    CHECK(many != NULL);
    for (i = 0; many && i < BIG; i++)
        many[i] = make_entry("wal_batch", "success", "alice", i);
    if (many)
        CHECK_INT(audit_store_append_many(st, (const json_t *const *)many, BIG, 0, 0, NULL,
                                          NULL), 0);
    for (i = 0; many && i < BIG; i++)
        json_decref(many[i]);
    free(many);
    sz = file_size("wal", "capsules.db-wal");
    CHECKF(sz <= BOUND, "WAL is %lld bytes right after a batch of %d", sz, BIG);
    for (i = 0; i < 3; i++) {
        json_t *e = make_entry("wal_after", "success", "alice", i);

        CHECK_INT(audit_store_append(st, e, 0, 0, NULL, NULL), 0);
        json_decref(e);
    }
    sz = file_size("wal", "capsules.db-wal");
    CHECKF(sz <= BOUND, "WAL is %lld bytes after a batch of %d", sz, BIG);
    audit_store_close(st);
}

int main(void)
{
    static const tl_test_fn tests[] = {
        test_open_empty, test_append_and_links, test_concurrency, test_reopen, test_tamper,
        test_foreign, test_wal_bounded, NULL,
    };

    return tl_main_in_dir(tmpdir, tests);
}
