/* store.c: the capsule chain in SQLite: schema checks, leader/follower group commit, chain
 * verification, and the single SQLite-to-errno mapping of the audit module. */
#include "audit/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/canon.h"
#include "audit/util.h"

#define DB_NAME "capsules.db"
#define KEY_NAME "key"
#define BUSY_TIMEOUT_MS 10000

/* The CPS storage schema of the reference implementation. */
#define SQL_CREATE \
    "CREATE TABLE IF NOT EXISTS capsules (id TEXT PRIMARY KEY, type TEXT, " \
    "sequence INTEGER UNIQUE, previous_hash TEXT, data TEXT, hash TEXT, signature TEXT, " \
    "signature_pq TEXT DEFAULT '', signed_at TEXT, signed_by TEXT, session_id TEXT)"
#define SQL_HEAD "SELECT sequence, hash FROM capsules ORDER BY sequence DESC LIMIT 1"
#define SQL_HEAD_FULL \
    "SELECT sequence, hash, signed_by, signed_at FROM capsules ORDER BY sequence DESC LIMIT 1"
#define SQL_INSERT \
    "INSERT INTO capsules (id, type, sequence, previous_hash, data, hash, signature, " \
    "signature_pq, signed_at, signed_by, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)"
#define SQL_ALL \
    "SELECT sequence, id, type, previous_hash, data, hash, signature, signed_by " \
    "FROM capsules WHERE sequence >= ? ORDER BY sequence"
#define SQL_HASH_AT "SELECT hash FROM capsules WHERE sequence = ?"
#define SQL_RESULTS \
    "SELECT sequence, data FROM capsules WHERE sequence >= ? ORDER BY sequence"
#define SQL_COUNT "SELECT count(*) FROM capsules"
#define SQL_ANY "SELECT 1 FROM capsules LIMIT 1"
#define SMALL_BATCH 64
#define WAL_CHECKPOINT_PAGES "256"      /* 1 MiB of 4 KiB pages */
#define WAL_LIMIT_BYTES "1048576"
#define WAL_TRIM_BATCH 256              /* capsules in a batch that make the leader cut the WAL */

static const char *const schema_columns[] = {
    "id", "type", "sequence", "previous_hash", "data", "hash", "signature", "signature_pq",
    "signed_at", "signed_by", "session_id",
};

/* One append (one or more capsules) waiting for its batch; lives on the appender's stack. */
struct waiter {
    json_t **caps;              /* n unsealed capsules, linked and sealed by the batch leader */
    size_t n;
    void *tag;                  /* handed to the commit hook */
    int rc;
    int done;
    long long seq;              /* sequence of caps[0] */
    char hash[AUDIT_HASH_HEX];  /* hash of caps[n - 1] */
    struct waiter *next;
};

struct audit_store {
    sqlite3 *db;                /* the writer; used by one batch leader at a time */
    sqlite3_stmt *head, *insert;
    sqlite3 *rdb;               /* a reader for audit_store_head, under rlock */
    pthread_mutex_t rlock;
    pthread_mutex_t order;      /* a leader's COMMIT and hook; verify fixing its snapshot */
    audit_store_hook hook;
    void *hook_arg;
    pthread_mutex_t lock;       /* the queue, leading, stopping, the stats */
    pthread_cond_t done;        /* followers wait here for their batch or their turn to lead */
    struct waiter *qhead, *qtail;
    int leading;                /* a batch is being committed (by its leader, unlocked) */
    int stopping;
    long long appends, batches;
    struct audit_key *key;
    int readonly;               /* AUDIT_STORE_READONLY: no writer, appends refused */
    int immutable;              /* read-only with no WAL file: open readers immutable */
    int fresh_key;              /* the key file was created by this open */
    char hostname[256];
    char path[PATH_MAX];
};

/* The one place SQLite result codes become -errno. */
static int sq_errno(sqlite3 *db, int rc)
{
    int sys;

    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return -EUCLEAN;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_TOOBIG:
    case SQLITE_NOLFS:
        return -EFBIG;
    case SQLITE_INTERRUPT:
        return -EINTR;
    case SQLITE_CANTOPEN:
        sys = db ? sqlite3_system_errno(db) : 0;
        return sys > 0 ? -sys : -EACCES;
    case SQLITE_IOERR:
    default:
        return -EIO;
    }
}

/* Run one SQL statement without results. 0 or -errno. */
static int exec_sql(sqlite3 *db, const char *sql)
{
    return sq_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* A text column as a string ("" for NULL). */
static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t ? (const char *)t : "";
}

/* Copy a text column into dst (dstlen >= 1), truncating. */
static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s", col_text(s, i));
}

/* Write "file:PATH?immutable=1" into buf, PATH percent-encoded. 0 or -ENAMETOOLONG. */
static int immutable_uri(const char *path, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char tail[] = "?immutable=1";
    size_t o = 0;
    const unsigned char *p;

    if (len < 6)
        return -ENAMETOOLONG;
    memcpy(buf, "file:", 5);
    o = 5;
    for (p = (const unsigned char *)path; *p; p++) {
        if (o + 4 > len)
            return -ENAMETOOLONG;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~", *p)) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 0xf];
        }
    }
    if (o + sizeof(tail) > len)
        return -ENAMETOOLONG;
    memcpy(buf + o, tail, sizeof(tail));
    return 0;
}

/* Open the database read-only for a reader; immutable (no lock, no side files) when the store
 * was opened read-only on a database without a WAL file. 0 or -errno with err filled. */
static int open_reader(struct audit_store *st, sqlite3 **out, char *err, size_t errlen)
{
    char uri[3 * PATH_MAX + 32];
    const char *name = st->path;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    int rc;

    if (st->immutable) {
        if (immutable_uri(st->path, uri, sizeof(uri)) < 0)
            return audit_say(-ENAMETOOLONG, err, errlen, "%s: path too long", st->path);
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    rc = sqlite3_open_v2(name, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = audit_say(sq_errno(db, rc), err, errlen, "cannot open %s: %s", st->path,
                       db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    *out = db;
    return 0;
}

/* Describe a failure to read the schema. */
static int schema_error(sqlite3 *db, const char *path, int rc, char *err, size_t errlen)
{
    if ((rc & 0xff) == SQLITE_NOTADB)
        return audit_say(sq_errno(db, rc), err, errlen, "%s is not an SQLite database", path);
    return audit_say(sq_errno(db, rc), err, errlen, "%s: %s", path, sqlite3_errmsg(db));
}

/* Make sure the database db (at path) is ours: an SQLite file with a capsules table of the CPS
 * shape, or an empty one (which gets the table when create is set, and is refused otherwise).
 * 0 or -errno with err filled. */
static int check_schema(sqlite3 *db, const char *path, int create, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int have[sizeof(schema_columns) / sizeof(schema_columns[0])] = { 0 };
    int rc, ncols = 0;
    size_t i;

    rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('capsules')", -1, &s,
                            NULL);
    if (rc != SQLITE_OK) {
        rc = schema_error(db, path, rc, err, errlen);
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ncols++;
        for (i = 0; i < sizeof(schema_columns) / sizeof(schema_columns[0]); i++)
            if (strcmp(col_text(s, 0), schema_columns[i]) == 0)
                have[i] = 1;
    }
    if (rc != SQLITE_DONE) {
        rc = schema_error(db, path, rc, err, errlen);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (ncols > 0) {
        for (i = 0; i < sizeof(schema_columns) / sizeof(schema_columns[0]); i++) {
            if (!have[i]) {
                rc = audit_say(-EUCLEAN, err, errlen,
                               "%s: table capsules has no column %s; not a CPS capsule store",
                               path, schema_columns[i]);
                goto out;
            }
        }
        rc = 0;
        goto out;
    }
    rc = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type IN "
                            "('table', 'view') AND name NOT LIKE 'sqlite_%' LIMIT 1", -1, &s,
                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rc = audit_say(-EUCLEAN, err, errlen,
                       "%s holds table %s but no capsules table; not a CPS capsule store", path,
                       col_text(s, 0));
        goto out;
    }
    if (rc != SQLITE_DONE) {
        rc = audit_say(sq_errno(db, rc), err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (!create) {
        rc = audit_say(-EUCLEAN, err, errlen, "%s holds no capsules table; not a CPS capsule store",
                       path);
        goto out;
    }
    rc = exec_sql(db, SQL_CREATE);
    if (rc < 0)
        audit_say(rc, err, errlen, "%s: cannot create the capsules table: %s", path,
                  sqlite3_errmsg(db));
out:
    sqlite3_finalize(s);
    return rc;
}

/* Create path with mode 0600 when it is missing (SQLite would use 0644), so the WAL and shm
 * files SQLite derives from it get 0600 too. Refuse anything but a regular file. */
static int precreate(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    int fd;

    if (lstat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            return audit_say(-EUCLEAN, err, errlen, "%s is not a regular file", path);
        return 0;
    }
    if (errno != ENOENT)
        return audit_say(-errno, err, errlen, "cannot stat %s: %s", path, strerror(errno));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
        return audit_say(-errno, err, errlen, "cannot create %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return 0;
}

/* Open the writer connection: WAL, synchronous=FULL, schema, statements. */
static int open_writer(struct audit_store *st, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = audit_say(sq_errno(st->db, rc), err, errlen, "cannot open %s: %s", st->path,
                       st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        rc = audit_say(-EROFS, err, errlen, "%s is not writable", st->path);
        goto out;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    rc = check_schema(st->db, st->path, 1, err, errlen);
    if (rc < 0)
        goto out;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || strcmp(col_text(s, 0), "wal") != 0) {
        rc = audit_say(rc == SQLITE_ROW ? -EIO : sq_errno(st->db, rc), err, errlen,
                       "%s: cannot switch to WAL mode: %s", st->path,
                       rc == SQLITE_ROW ? col_text(s, 0) : sqlite3_errmsg(st->db));
        goto out;
    }
    rc = exec_sql(st->db, "PRAGMA synchronous=FULL");
    /* Bound the WAL: a checkpoint runs once it holds WAL_CHECKPOINT_PAGES pages, and a WAL
     * that a batch made larger is cut back to WAL_LIMIT_BYTES when it is next reset. */
    if (rc == 0)
        rc = exec_sql(st->db, "PRAGMA wal_autocheckpoint=" WAL_CHECKPOINT_PAGES);
    if (rc == 0)
        rc = exec_sql(st->db, "PRAGMA journal_size_limit=" WAL_LIMIT_BYTES);
    if (rc == 0)
        rc = sq_errno(st->db, sqlite3_prepare_v2(st->db, SQL_HEAD, -1, &st->head, NULL));
    if (rc == 0)
        rc = sq_errno(st->db, sqlite3_prepare_v2(st->db, SQL_INSERT, -1, &st->insert, NULL));
    if (rc < 0)
        audit_say(rc, err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
out:
    sqlite3_finalize(s);
    return rc;
}

/* Insert one sealed capsule with the insert statement. 0 or -errno. */
static int insert_capsule(struct audit_store *st, const json_t *cap, long long seq,
                          const char *prev, const struct audit_seal *seal)
{
    sqlite3_stmt *s = st->insert;
    char *data = NULL;
    size_t len;
    int rc;

    rc = audit_canon(cap, AUDIT_CANON_CAPSULE, &data, &len);
    if (rc < 0)
        return rc;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    rc = sqlite3_bind_text(s, 1, json_string_value(json_object_get(cap, "id")), -1,
                           SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, json_string_value(json_object_get(cap, "type")), -1,
                               SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, seq);
    if (rc == SQLITE_OK)
        rc = prev ? sqlite3_bind_text(s, 4, prev, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, 4);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 5, data, (int)len, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 6, seal->hash, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 7, seal->signature, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 8, seal->signed_at, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 9, seal->signed_by, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_null(s, 10);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    free(data);
    rc = sq_errno(st->db, rc);
    sqlite3_reset(s);
    return rc;
}

/* Read the chain head with the writer inside its transaction: *seq (-1 when empty) and prev. */
static int read_head(struct audit_store *st, long long *seq, char prev[AUDIT_HASH_HEX])
{
    int rc = sqlite3_step(st->head);

    *seq = -1;
    prev[0] = '\0';
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st->head, 0);
        col_copy(st->head, 1, prev, AUDIT_HASH_HEX);
        rc = 0;
    } else {
        rc = sq_errno(st->db, rc);
    }
    sqlite3_reset(st->head);
    return rc;
}

/* Link, seal and insert one capsule after (*seq, prev), which move on to it. 0 or -errno. */
static int add_capsule(struct audit_store *st, json_t *cap, long long *seq,
                       char prev[AUDIT_HASH_HEX])
{
    struct audit_seal seal;
    long long next = *seq + 1;
    int rc;

    rc = audit_capsule_link(cap, next, next ? prev : NULL);
    if (rc == -EINVAL) {
        syslog(LOG_ERR, "audit: the chain head of %s has a malformed hash", st->path);
        rc = -EUCLEAN;
    }
    if (rc == 0)
        rc = audit_capsule_seal(st->key, cap, &seal);
    if (rc == 0)
        rc = insert_capsule(st, cap, next, next ? prev : NULL, &seal);
    if (rc < 0)
        return rc;
    *seq = next;
    memcpy(prev, seal.hash, AUDIT_HASH_HEX);
    return 0;
}

/* COMMIT the open transaction and, when that worked, run the commit hook with the batch's tags;
 * both under the order lock, so that a verifier never sees capsules whose hook has not run.
 * 0, or the COMMIT's -errno, or (commit done) the hook's value in *hook_rc. */
static int commit_ordered(struct audit_store *st, long long first_seq, void *const *tags,
                          size_t ntags, int *hook_rc)
{
    int rc;

    *hook_rc = 0;
    pthread_mutex_lock(&st->order);
    rc = exec_sql(st->db, "COMMIT");
    if (rc == 0 && st->hook && ntags)
        *hook_rc = st->hook(st->hook_arg, first_seq, tags, ntags);
    pthread_mutex_unlock(&st->order);
    return rc;
}

/* After a batch of at least WAL_TRIM_BATCH capsules: cut the WAL to nothing now, unless a
 * reader still uses it (no waiting: it is then cut to WAL_LIMIT_BYTES at its next reset). */
static void wal_trim(struct audit_store *st, long long n)
{
    if (n < WAL_TRIM_BATCH)
        return;
    sqlite3_busy_timeout(st->db, 0);
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
}

/* Log a failed transaction and roll it back. Returns rc. */
static int abort_txn(struct audit_store *st, int rc, long long n)
{
    syslog(LOG_ERR, "audit: appending %lld capsule(s) to %s failed: %s (%s)", n, st->path,
           strerror(-rc), sqlite3_errmsg(st->db));
    if (!sqlite3_get_autocommit(st->db))
        exec_sql(st->db, "ROLLBACK");
    return rc;
}

/* Append a whole batch in one transaction: read the head, link, seal and insert each capsule,
 * commit (one fsync), run the hook. On failure nothing of the batch is kept. 0 or -errno; a
 * hook failure after the commit is in *hook_rc. */
static int commit_batch(struct audit_store *st, struct waiter *batch, void *const *tags,
                        size_t ntags, int *hook_rc)
{
    char prev[AUDIT_HASH_HEX];
    struct waiter *w;
    long long seq = -1, n = 0;
    size_t i;
    int rc;

    *hook_rc = 0;
    for (w = batch; w; w = w->next)
        n += (long long)w->n;
    rc = exec_sql(st->db, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = read_head(st, &seq, prev);
    if (rc < 0)
        goto out;
    for (w = batch; w; w = w->next) {
        w->seq = seq + 1;
        for (i = 0; i < w->n; i++) {
            rc = add_capsule(st, w->caps[i], &seq, prev);
            if (rc < 0)
                goto out;
        }
        memcpy(w->hash, prev, sizeof(w->hash));
    }
    rc = commit_ordered(st, batch->seq, tags, ntags, hook_rc);
    if (rc == 0)
        wal_trim(st, n);
out:
    if (rc < 0)
        abort_txn(st, rc, n);
    return rc;
}

/* Lead one batch: take every append waiting now (the caller's among them), commit them in one
 * transaction, and wake their writers. Called and returns with st->lock held. */
static void lead_batch(struct audit_store *st)
{
    struct waiter *batch = st->qhead, *w, *next;
    void *small[SMALL_BATCH], **tags = small;
    size_t ntags = 0, i;
    long long n;
    int rc, hook_rc = 0;

    st->leading = 1;
    st->qhead = st->qtail = NULL;
    pthread_mutex_unlock(&st->lock);

    for (w = batch; w; w = w->next)
        ntags++;
    if (ntags > SMALL_BATCH)
        tags = calloc(ntags, sizeof(*tags));
    if (!tags) {
        rc = -ENOMEM;
    } else {
        for (i = 0, w = batch; w; w = w->next)
            tags[i++] = w->tag;
        rc = commit_batch(st, batch, tags, ntags, &hook_rc);
    }
    if (tags != small)
        free(tags);

    pthread_mutex_lock(&st->lock);
    for (n = 0, w = batch; w; w = next) {
        next = w->next;
        n += (long long)w->n;
        w->rc = rc;             /* a hook failure is logged there; the entries are durable */
        w->done = 1;
    }
    if (rc == 0) {
        st->appends += n;
        st->batches++;
    }
    st->leading = 0;
    pthread_cond_broadcast(&st->done);
}

/* Whether the chain holds any capsule, read by the writer. 1, 0 or -errno. */
static int chain_has_rows(struct audit_store *st)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v2(st->db, SQL_ANY, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_errno(st->db, rc);
    sqlite3_finalize(s);
    return rc;
}

/* The signing key at keypath: loaded here, or its public half from signer, which keeps the
 * private half in its own process. Created when missing either way. 0 or -errno. */
static int load_key(struct audit_store *st, const char *keypath,
                    const struct audit_signer *signer, char *err, size_t errlen)
{
    char pubhex[AUDIT_PUB_HEX];
    int rc;

    if (!signer)
        return audit_key_load(keypath, &st->key, err, errlen);
    rc = signer->load(signer->arg, keypath, pubhex, err, errlen);
    if (rc == 0 && audit_key_from_signer(pubhex, signer->sign, signer->arg, &st->key) < 0)
        rc = audit_say(-EIO, err, errlen, "the signer gave no usable public key for %s", keypath);
    return rc;
}

/* Open the writer and the signing key (created only as flags allow). 0 or -errno. */
static int open_rw(struct audit_store *st, const char *keypath, unsigned flags,
                   const struct audit_signer *signer, char *err, size_t errlen)
{
    struct stat sb;
    int rc;

    rc = precreate(st->path, err, errlen);
    if (rc < 0)
        return rc;
    rc = open_writer(st, err, errlen);
    if (rc < 0)
        return rc;
    if (lstat(keypath, &sb) < 0) {
        if (errno != ENOENT)
            return audit_say(-errno, err, errlen, "cannot stat key %s: %s", keypath,
                             strerror(errno));
        if (flags & AUDIT_STORE_KEEP_KEY) {
            rc = chain_has_rows(st);
            if (rc < 0)
                return audit_say(rc, err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
            if (rc > 0)
                return audit_say(-ENOENT, err, errlen,
                                 "signing key %s is missing, but %s holds "
                                 "" "capsules; they cannot be verified or extended", keypath,
                                 st->path);
        }
        st->fresh_key = 1;
    }
    rc = load_key(st, keypath, signer, err, errlen);
    if (rc < 0)
        return rc;
    return open_reader(st, &st->rdb, err, errlen);
}

/* Open an existing database and key without creating or changing anything; with pubhex, that
 * public key instead of the key file's. 0 or -errno. */
static int open_ro(struct audit_store *st, const char *keypath, const char *pubhex, char *err,
                   size_t errlen)
{
    char wal[PATH_MAX + 8];
    struct stat sb;
    int rc;

    if (stat(st->path, &sb) < 0)
        return audit_say(-errno, err, errlen, "%s: %s", st->path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return audit_say(-EUCLEAN, err, errlen, "%s is not a regular file", st->path);
    snprintf(wal, sizeof(wal), "%s-wal", st->path);
    st->immutable = stat(wal, &sb) < 0 && errno == ENOENT;
    rc = open_reader(st, &st->rdb, err, errlen);
    if (rc == 0)
        rc = check_schema(st->rdb, st->path, 0, err, errlen);
    if (rc == 0 && pubhex && audit_key_from_public(pubhex, &st->key) < 0)
        rc = audit_say(-EINVAL, err, errlen, "not an Ed25519 public key: %.80s", pubhex);
    else if (rc == 0 && !pubhex)
        rc = audit_key_load_public(keypath, &st->key, err, errlen);
    return rc;
}

/* The opens below: a writer (key here or behind signer), or a reader (pubhex or the key file). */
static int open_store(const char *state_dir, const char *hostname, unsigned flags,
                      const struct audit_signer *signer, const char *pubhex,
                      struct audit_store **out, char *err, size_t errlen)
{
    struct audit_store *st;
    char keypath[PATH_MAX];
    struct stat sb;
    int rc, n;

    *out = NULL;
    if (stat(state_dir, &sb) < 0)
        return audit_say(-errno, err, errlen, "state dir %s: %s", state_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return audit_say(-ENOTDIR, err, errlen, "state dir %s is not a directory", state_dir);
    st = calloc(1, sizeof(*st));
    if (!st)
        return audit_say(-ENOMEM, err, errlen, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->rlock, NULL);
    pthread_mutex_init(&st->order, NULL);
    pthread_cond_init(&st->done, NULL);
    st->readonly = (flags & AUDIT_STORE_READONLY) != 0;
    n = snprintf(st->path, sizeof(st->path), "%s/%s", state_dir, DB_NAME);
    if (n < 0 || (size_t)n >= sizeof(st->path)) {
        rc = audit_say(-ENAMETOOLONG, err, errlen, "state dir %s: path too long", state_dir);
        goto fail;
    }
    n = snprintf(keypath, sizeof(keypath), "%s/%s", state_dir, KEY_NAME);
    if (n < 0 || (size_t)n >= sizeof(keypath)) {
        rc = audit_say(-ENAMETOOLONG, err, errlen, "state dir %s: path too long", state_dir);
        goto fail;
    }
    if (hostname) {
        n = snprintf(st->hostname, sizeof(st->hostname), "%s", hostname);
        if (n < 0 || (size_t)n >= sizeof(st->hostname)) {
            rc = audit_say(-EINVAL, err, errlen, "hostname too long");
            goto fail;
        }
    } else if (gethostname(st->hostname, sizeof(st->hostname) - 1) < 0) {
        rc = audit_say(-errno, err, errlen, "gethostname: %s", strerror(errno));
        goto fail;
    }
    if (st->readonly)
        rc = open_ro(st, keypath, pubhex, err, errlen);
    else
        rc = open_rw(st, keypath, flags, signer, err, errlen);
    if (rc < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    audit_store_close(st);
    return rc;
}

int audit_store_open_signer(const char *state_dir, const char *hostname, unsigned flags,
                            const struct audit_signer *signer, struct audit_store **out,
                            char *err, size_t errlen)
{
    return open_store(state_dir, hostname, flags, signer, NULL, out, err, errlen);
}

int audit_store_open_pub(const char *state_dir, const char *pubhex, struct audit_store **out,
                         char *err, size_t errlen)
{
    return open_store(state_dir, "verify", AUDIT_STORE_READONLY, NULL, pubhex, out, err,
                      errlen);
}

int audit_store_open_ex(const char *state_dir, const char *hostname, unsigned flags,
                        struct audit_store **out, char *err, size_t errlen)
{
    return audit_store_open_signer(state_dir, hostname, flags, NULL, out, err, errlen);
}

int audit_store_open(const char *state_dir, const char *hostname, struct audit_store **out,
                     char *err, size_t errlen)
{
    return audit_store_open_ex(state_dir, hostname, 0, out, err, errlen);
}

int audit_store_fresh_key(const struct audit_store *st)
{
    return st->fresh_key;
}

void audit_store_set_hook(struct audit_store *st, audit_store_hook fn, void *arg)
{
    pthread_mutex_lock(&st->order);
    st->hook = fn;
    st->hook_arg = arg;
    pthread_mutex_unlock(&st->order);
}

/* Queue w and wait until its batch is done. 0 or w's -errno. */
static int queue_and_wait(struct audit_store *st, struct waiter *w)
{
    pthread_mutex_lock(&st->lock);
    if (st->stopping) {
        pthread_mutex_unlock(&st->lock);
        return -ESHUTDOWN;
    }
    if (st->qtail)
        st->qtail->next = w;
    else
        st->qhead = w;
    st->qtail = w;
    /* Leader/follower: with no batch in flight this writer commits everything queued (its own
     * entry first); otherwise it waits, and leads the next batch if its entry is still queued
     * when the current one finishes. */
    while (!w->done) {
        if (!st->leading)
            lead_batch(st);
        else
            pthread_cond_wait(&st->done, &st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return w->rc;
}

/* Map n entries to capsules in caps. 0 or -errno (caps freed by the caller). */
static int make_capsules(struct audit_store *st, const json_t *const *entries, size_t n,
                         int system_event, long long duration_ms, json_t **caps)
{
    char err[256];
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        rc = audit_capsule_from_entry(entries[i], system_event, st->hostname, duration_ms,
                                      &caps[i], err, sizeof(err));
        if (rc < 0) {
            syslog(LOG_ERR, "audit: entry refused: %s", err);
            return rc;
        }
    }
    return 0;
}

int audit_store_append_many(struct audit_store *st, const json_t *const *entries, size_t n,
                            int system_event, long long duration_ms, void *tag,
                            long long *first_seq)
{
    struct waiter w = { 0 };
    json_t *one[1] = { NULL };
    size_t i;
    int rc;

    if (n == 0)
        return -EINVAL;
    if (st->readonly)
        return -EROFS;
    w.caps = n == 1 ? one : calloc(n, sizeof(*w.caps));
    if (!w.caps)
        return -ENOMEM;
    w.n = n;
    w.tag = tag;
    rc = make_capsules(st, entries, n, system_event, duration_ms, w.caps);
    if (rc == 0)
        rc = queue_and_wait(st, &w);
    if (first_seq && rc == 0)
        *first_seq = w.seq;
    for (i = 0; i < n; i++)
        json_decref(w.caps[i]);
    if (w.caps != one)
        free(w.caps);
    return rc;
}

int audit_store_append(struct audit_store *st, const json_t *entry, int system_event,
                       long long duration_ms, char *hash_out, long long *seq_out)
{
    struct waiter w = { 0 };
    json_t *cap = NULL;
    int rc;

    if (st->readonly)
        return -EROFS;
    w.caps = &cap;
    w.n = 1;
    rc = make_capsules(st, &entry, 1, system_event, duration_ms, w.caps);
    if (rc == 0)
        rc = queue_and_wait(st, &w);
    if (rc == 0) {
        if (hash_out)
            memcpy(hash_out, w.hash, AUDIT_HASH_HEX);
        if (seq_out)
            *seq_out = w.seq;
    }
    json_decref(cap);
    return rc;
}

/* Seal what next yields inside the writer's transaction. 0 or -errno. */
static int import_txn(struct audit_store *st, audit_store_next next, void *arg,
                      long long *count)
{
    char prev[AUDIT_HASH_HEX], err[256];
    long long seq = -1;
    json_t *entry, *cap;
    int rc, sys, hook_rc;

    rc = exec_sql(st->db, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = read_head(st, &seq, prev);
    while (rc == 0) {
        entry = NULL;
        sys = 0;
        rc = next(arg, &entry, &sys);
        if (rc <= 0)
            break;
        rc = audit_capsule_from_entry(entry, sys, st->hostname, 0, &cap, err, sizeof(err));
        json_decref(entry);
        if (rc < 0) {
            syslog(LOG_ERR, "audit: entry refused: %s", err);
            break;
        }
        rc = add_capsule(st, cap, &seq, prev);
        json_decref(cap);
        if (rc == 0)
            ++*count;
    }
    if (rc == 0)
        rc = commit_ordered(st, 0, NULL, 0, &hook_rc);
    if (rc == 0)
        wal_trim(st, *count);
    if (rc < 0) {
        abort_txn(st, rc, *count);
        *count = 0;
    }
    return rc;
}

int audit_store_import(struct audit_store *st, audit_store_next next, void *arg,
                       long long *count)
{
    long long n = 0;
    int rc;

    if (st->readonly)
        return -EROFS;
    pthread_mutex_lock(&st->lock);
    while (st->leading && !st->stopping)
        pthread_cond_wait(&st->done, &st->lock);
    if (st->stopping) {
        pthread_mutex_unlock(&st->lock);
        return -ESHUTDOWN;
    }
    st->leading = 1;
    pthread_mutex_unlock(&st->lock);

    rc = import_txn(st, next, arg, &n);

    pthread_mutex_lock(&st->lock);
    if (rc == 0 && n > 0) {
        st->appends += n;
        st->batches++;
    }
    st->leading = 0;
    pthread_cond_broadcast(&st->done);
    pthread_mutex_unlock(&st->lock);
    if (count)
        *count = n;
    return rc;
}

/* Check one row of the chain at position expected; then hand it to the row hook. 0 or -EBADMSG
 * with why filled (or the hook's value). */
static int check_row(struct audit_store *st, sqlite3_stmt *s, long long expected,
                     const char *prev, const struct audit_verify_hooks *h, char *why,
                     size_t whylen)
{
    const char *col_prev = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : col_text(s, 3);
    const char *data = col_text(s, 4);
    const json_t *v;
    json_t *cap = NULL;
    json_error_t jerr;
    long long seq;
    int rc;

    if (sqlite3_column_type(s, 0) != SQLITE_INTEGER) {
        rc = audit_say(-EBADMSG, why, whylen, "sequence column is not an integer");
        goto out;
    }
    seq = sqlite3_column_int64(s, 0);
    if (seq != expected) {
        rc = audit_say(-EBADMSG, why, whylen, "sequence gap: expected %lld, found %lld", expected,
                       seq);
        goto out;
    }
    cap = json_loadb(data, (size_t)sqlite3_column_bytes(s, 4), JSON_ALLOW_NUL, &jerr);
    if (!cap) {
        rc = audit_say(-EBADMSG, why, whylen, "data is not JSON: %s", jerr.text);
        goto out;
    }
    rc = audit_capsule_check(cap, why, whylen);
    if (rc < 0)
        goto out;
    seq = json_integer_value(json_object_get(cap, "sequence"));
    if (seq != expected) {
        rc = audit_say(-EBADMSG, why, whylen,
                       "data holds sequence %lld in the row of sequence %lld", seq, expected);
        goto out;
    }
    v = json_object_get(cap, "previous_hash");
    if (expected > 0 && strcmp(json_string_value(v), prev) != 0) {
        rc = audit_say(-EBADMSG, why, whylen,
                       "chain broken: previous_hash %.16s... is not the hash %.16s... of sequence "
                       "%lld", json_string_value(v), prev, expected - 1);
        goto out;
    }
    if (json_is_null(v) ? col_prev != NULL
                        : (!col_prev || strcmp(col_prev, json_string_value(v)) != 0)) {
        rc = audit_say(-EBADMSG, why, whylen, "previous_hash column disagrees with the data");
        goto out;
    }
    if (strcmp(col_text(s, 1), json_string_value(json_object_get(cap, "id"))) != 0 ||
        strcmp(col_text(s, 2), json_string_value(json_object_get(cap, "type"))) != 0) {
        rc = audit_say(-EBADMSG, why, whylen, "id or type column disagrees with the data");
        goto out;
    }
    if (strcmp(col_text(s, 7), audit_key_id(st->key)) != 0) {
        rc = audit_say(-EBADMSG, why, whylen, "signed by key %.16s, not by this store's key %s",
                       col_text(s, 7), audit_key_id(st->key));
        goto out;
    }
    rc = audit_capsule_verify(st->key, cap, col_text(s, 5), col_text(s, 6), why, whylen);
    if (rc == 0 && h && h->row)
        rc = h->row(h->arg, expected, cap, why, whylen);
out:
    json_decref(cap);
    return rc;
}

/* Fix the read snapshot of db (BEGIN and read inside it): count the rows and read the head into
 * r. Called with the order lock held. 0 or -errno. */
static int fix_snapshot(sqlite3 *db, struct audit_verify_report *r)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = exec_sql(db, "BEGIN");
    if (rc == 0)
        rc = sq_errno(db, sqlite3_prepare_v2(db, SQL_COUNT, -1, &s, NULL));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            r->entries = sqlite3_column_int64(s, 0);
        rc = rc == SQLITE_ROW ? 0 : sq_errno(db, rc);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == 0)
        rc = sq_errno(db, sqlite3_prepare_v2(db, SQL_HEAD, -1, &s, NULL));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            r->head_seq = sqlite3_column_int64(s, 0);
            col_copy(s, 1, r->head_hash, sizeof(r->head_hash));
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(db, rc);
    }
    sqlite3_finalize(s);
    return rc;
}

int audit_store_verify_from(struct audit_store *st, long long from, const char *prev_hash,
                            const struct audit_verify_hooks *h, struct audit_verify_report *r)
{
    char prev[AUDIT_HASH_HEX] = "";
    sqlite3_stmt *s = NULL;
    sqlite3 *db = NULL;
    long long i = from;
    int rc;

    memset(r, 0, sizeof(*r));
    r->failed_seq = -1;
    r->head_seq = -1;
    r->checked = from;
    if (from < 0 || (from > 0 && (!prev_hash || strlen(prev_hash) != AUDIT_HASH_HEX - 1)))
        return audit_say(-EINVAL, r->reason, sizeof(r->reason), "bad starting point for verify");
    if (from > 0)
        memcpy(prev, prev_hash, AUDIT_HASH_HEX);
    rc = open_reader(st, &db, r->reason, sizeof(r->reason));
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&st->order);
    rc = fix_snapshot(db, r);
    if (rc == 0 && h && h->snapshot)
        h->snapshot(h->arg, r);
    pthread_mutex_unlock(&st->order);
    if (rc == 0)
        rc = sq_errno(db, sqlite3_prepare_v2(db, SQL_ALL, -1, &s, NULL));
    if (rc == 0)
        rc = sq_errno(db, sqlite3_bind_int64(s, 1, from));
    if (rc < 0) {
        audit_say(rc, r->reason, sizeof(r->reason), "%s: %s", st->path, sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = check_row(st, s, i, prev, h, r->reason, sizeof(r->reason));
        if (rc < 0) {
            r->failed_seq = i;
            goto out;
        }
        col_copy(s, 5, prev, sizeof(prev));
        r->checked = ++i;
    }
    rc = sq_errno(db, rc);
    if (rc < 0)
        audit_say(rc, r->reason, sizeof(r->reason), "%s: %s", st->path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(s);
    if (db && !sqlite3_get_autocommit(db))
        exec_sql(db, "COMMIT");
    sqlite3_close(db);
    return rc;
}

int audit_store_verify_ex(struct audit_store *st, const struct audit_verify_hooks *h,
                          struct audit_verify_report *r)
{
    return audit_store_verify_from(st, 0, NULL, h, r);
}

int audit_store_verify(struct audit_store *st, struct audit_verify_report *r)
{
    return audit_store_verify_ex(st, NULL, r);
}

int audit_store_hash_at(struct audit_store *st, long long seq, char hash[AUDIT_HASH_HEX])
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->rlock);
    rc = sq_errno(st->rdb, sqlite3_prepare_v2(st->rdb, SQL_HASH_AT, -1, &s, NULL));
    if (rc == 0)
        rc = sq_errno(st->rdb, sqlite3_bind_int64(s, 1, seq));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            col_copy(s, 0, hash, AUDIT_HASH_HEX);
        rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_errno(st->rdb, rc);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rlock);
    return rc;
}

int audit_store_sign(struct audit_store *st, const unsigned char *msg, size_t len,
                     unsigned char sig[AUDIT_SIG_LEN])
{
    if (st->readonly)
        return -EROFS;
    return audit_key_sign(st->key, msg, len, sig);
}

int audit_store_head(struct audit_store *st, long long *seq, char hash[AUDIT_HASH_HEX],
                     char signed_by[AUDIT_KEYID_HEX], char signed_at[AUDIT_TIME_MAX])
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->rlock);
    rc = sq_errno(st->rdb, sqlite3_prepare_v2(st->rdb, SQL_HEAD_FULL, -1, &s, NULL));
    if (rc < 0)
        goto out;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (seq)
            *seq = sqlite3_column_int64(s, 0);
        if (hash)
            col_copy(s, 1, hash, AUDIT_HASH_HEX);
        if (signed_by)
            col_copy(s, 2, signed_by, AUDIT_KEYID_HEX);
        if (signed_at)
            col_copy(s, 3, signed_at, AUDIT_TIME_MAX);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        if (seq)
            *seq = -1;
        if (hash)
            hash[0] = '\0';
        if (signed_by)
            signed_by[0] = '\0';
        if (signed_at)
            signed_at[0] = '\0';
        rc = 0;
    } else {
        rc = sq_errno(st->rdb, rc);
    }
out:
    if (rc < 0)
        syslog(LOG_ERR, "audit: reading the head of %s: %s", st->path, sqlite3_errmsg(st->rdb));
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rlock);
    return rc;
}

int audit_store_foreach_result_from(struct audit_store *st, long long from,
                                    int (*cb)(long long seq, const json_t *result, void *arg),
                                    void *arg)
{
    char err[256] = "";
    sqlite3_stmt *s = NULL;
    sqlite3 *db = NULL;
    int rc;

    rc = open_reader(st, &db, err, sizeof(err));
    if (rc < 0)
        goto out;
    rc = exec_sql(db, "BEGIN");
    if (rc == 0)
        rc = sq_errno(db, sqlite3_prepare_v2(db, SQL_RESULTS, -1, &s, NULL));
    if (rc == 0)
        rc = sq_errno(db, sqlite3_bind_int64(s, 1, from));
    if (rc < 0) {
        snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *cap = json_loadb(col_text(s, 1), (size_t)sqlite3_column_bytes(s, 1),
                                 JSON_ALLOW_NUL, NULL);
        const json_t *result = NULL;

        if (cap) {
            result = json_object_get(json_object_get(cap, "outcome"), "result");
            if (!result)
                result = json_null();
        }
        rc = cb(sqlite3_column_int64(s, 0), result, arg);
        json_decref(cap);
        if (rc)
            goto out;
    }
    rc = sq_errno(db, rc);
    if (rc < 0)
        snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
out:
    if (rc < 0)
        syslog(LOG_ERR, "audit: reading %s: %s", st->path, err);
    sqlite3_finalize(s);
    if (db && !sqlite3_get_autocommit(db))
        exec_sql(db, "COMMIT");
    sqlite3_close(db);
    return rc;
}

int audit_store_foreach_result(struct audit_store *st,
                               int (*cb)(long long seq, const json_t *result, void *arg),
                               void *arg)
{
    return audit_store_foreach_result_from(st, 0, cb, arg);
}

const char *audit_store_pubkey_hex(struct audit_store *st)
{
    return audit_key_public_hex(st->key);
}

void audit_store_stats(struct audit_store *st, long long *appends, long long *batches)
{
    pthread_mutex_lock(&st->lock);
    if (appends)
        *appends = st->appends;
    if (batches)
        *batches = st->batches;
    pthread_mutex_unlock(&st->lock);
}

void audit_store_close(struct audit_store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    while (st->leading || st->qhead)
        pthread_cond_wait(&st->done, &st->lock);
    pthread_mutex_unlock(&st->lock);
    sqlite3_finalize(st->head);
    sqlite3_finalize(st->insert);
    sqlite3_close(st->rdb);
    sqlite3_close(st->db);
    audit_key_free(st->key);
    pthread_cond_destroy(&st->done);
    pthread_mutex_destroy(&st->order);
    pthread_mutex_destroy(&st->rlock);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
