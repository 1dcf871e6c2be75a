/* store.c: the capsule chain in SQLite: opening it (schema checks, WAL, the signing key),
 * reading its head and results, and the single SQLite-to-errno mapping of the audit module.
 * Appending by group commit is in commit.c, chain verification in chain.c (storeint.h). */
#include "audit/storeint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "util/util.h"

static const char *const schema_columns[] = {
    "id", "type", "sequence", "previous_hash", "data", "hash", "signature", "signature_pq",
    "signed_at", "signed_by", "session_id",
};

int audit_sq_errno(sqlite3 *db, int rc)
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

int audit_sq_exec(sqlite3 *db, const char *sql)
{
    return audit_sq_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

const char *audit_sq_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t ? (const char *)t : "";
}

void audit_sq_copy(sqlite3_stmt *s, int i, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s", audit_sq_text(s, i));
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

int audit_store_reader(struct audit_store *st, sqlite3 **out, char *err, size_t errlen)
{
    char uri[3 * PATH_MAX + 32];
    const char *name = st->path;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    int rc;

    if (st->immutable) {
        if (immutable_uri(st->path, uri, sizeof(uri)) < 0)
            return cu_errf(-ENAMETOOLONG, err, errlen, "%s: path too long", st->path);
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    rc = sqlite3_open_v2(name, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = cu_errf(audit_sq_errno(db, rc), err, errlen, "cannot open %s: %s", st->path,
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
        return cu_errf(audit_sq_errno(db, rc), err, errlen, "%s is not an SQLite database", path);
    return cu_errf(audit_sq_errno(db, rc), err, errlen, "%s: %s", path, sqlite3_errmsg(db));
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
            if (strcmp(audit_sq_text(s, 0), schema_columns[i]) == 0)
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
                rc = cu_errf(-EUCLEAN, err, errlen,
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
        rc = cu_errf(-EUCLEAN, err, errlen,
                     "%s holds table %s but no capsules table; not a CPS capsule store", path,
                     audit_sq_text(s, 0));
        goto out;
    }
    if (rc != SQLITE_DONE) {
        rc = cu_errf(audit_sq_errno(db, rc), err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (!create) {
        rc = cu_errf(-EUCLEAN, err, errlen, "%s holds no capsules table; not a CPS capsule store",
                     path);
        goto out;
    }
    rc = audit_sq_exec(db, SQL_CREATE);
    if (rc < 0)
        cu_errf(rc, err, errlen, "%s: cannot create the capsules table: %s", path,
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
            return cu_errf(-EUCLEAN, err, errlen, "%s is not a regular file", path);
        return 0;
    }
    if (errno != ENOENT)
        return cu_errf(-errno, err, errlen, "cannot stat %s: %s", path, strerror(errno));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
        return cu_errf(-errno, err, errlen, "cannot create %s: %s", path, strerror(errno));
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
        rc = cu_errf(audit_sq_errno(st->db, rc), err, errlen, "cannot open %s: %s", st->path,
                     st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        rc = cu_errf(-EROFS, err, errlen, "%s is not writable", st->path);
        goto out;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    rc = check_schema(st->db, st->path, 1, err, errlen);
    if (rc < 0)
        goto out;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || strcmp(audit_sq_text(s, 0), "wal") != 0) {
        rc = cu_errf(rc == SQLITE_ROW ? -EIO : audit_sq_errno(st->db, rc), err, errlen,
                     "%s: cannot switch to WAL mode: %s", st->path,
                     rc == SQLITE_ROW ? audit_sq_text(s, 0) : sqlite3_errmsg(st->db));
        goto out;
    }
    rc = audit_sq_exec(st->db, "PRAGMA synchronous=FULL");
    /* Bound the WAL: a checkpoint runs once it holds WAL_CHECKPOINT_PAGES pages, and a WAL
     * that a batch made larger is cut back to WAL_LIMIT_BYTES when it is next reset. */
    if (rc == 0)
        rc = audit_sq_exec(st->db, "PRAGMA wal_autocheckpoint=" WAL_CHECKPOINT_PAGES);
    if (rc == 0)
        rc = audit_sq_exec(st->db, "PRAGMA journal_size_limit=" WAL_LIMIT_BYTES);
    if (rc == 0)
        rc = audit_sq_errno(st->db, sqlite3_prepare_v2(st->db, SQL_HEAD, -1, &st->head, NULL));
    if (rc == 0)
        rc = audit_sq_errno(st->db, sqlite3_prepare_v2(st->db, SQL_INSERT, -1, &st->insert, NULL));
    if (rc < 0)
        cu_errf(rc, err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
out:
    sqlite3_finalize(s);
    return rc;
}

/* Whether the chain holds any capsule, read by the writer. 1, 0 or -errno. */
static int chain_has_rows(struct audit_store *st)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v2(st->db, SQL_ANY, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : audit_sq_errno(st->db, rc);
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
        rc = cu_errf(-EIO, err, errlen, "the signer gave no usable public key for %s", keypath);
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
            return cu_errf(-errno, err, errlen, "cannot stat key %s: %s", keypath,
                           strerror(errno));
        if (flags & AUDIT_STORE_KEEP_KEY) {
            rc = chain_has_rows(st);
            if (rc < 0)
                return cu_errf(rc, err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
            if (rc > 0)
                return cu_errf(-ENOENT, err, errlen,
                               "signing key %s is missing, but %s holds "
                               "" "capsules; they cannot be verified or extended", keypath,
                               st->path);
        }
        st->fresh_key = 1;
    }
    rc = load_key(st, keypath, signer, err, errlen);
    if (rc < 0)
        return rc;
    return audit_store_reader(st, &st->rdb, err, errlen);
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
        return cu_errf(-errno, err, errlen, "%s: %s", st->path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cu_errf(-EUCLEAN, err, errlen, "%s is not a regular file", st->path);
    snprintf(wal, sizeof(wal), "%s-wal", st->path);
    st->immutable = stat(wal, &sb) < 0 && errno == ENOENT;
    rc = audit_store_reader(st, &st->rdb, err, errlen);
    if (rc == 0)
        rc = check_schema(st->rdb, st->path, 0, err, errlen);
    if (rc == 0 && pubhex && audit_key_from_public(pubhex, &st->key) < 0)
        rc = cu_errf(-EINVAL, err, errlen, "not an Ed25519 public key: %.80s", pubhex);
    else if (rc == 0 && !pubhex)
        rc = audit_key_load_public(keypath, &st->key, err, errlen);
    return rc;
}

int audit_store_open(const char *state_dir, const struct audit_store_opts *o,
                     struct audit_store **out, char *err, size_t errlen)
{
    static const struct audit_store_opts none;
    const char *hostname;
    struct audit_store *st;
    char keypath[PATH_MAX];
    struct stat sb;
    unsigned flags;
    int rc, n;

    *out = NULL;
    if (!o)
        o = &none;
    flags = o->pubhex ? AUDIT_STORE_READONLY : o->flags;
    hostname = o->pubhex && !o->hostname ? "verify" : o->hostname;
    if (stat(state_dir, &sb) < 0)
        return cu_errf(-errno, err, errlen, "state dir %s: %s", state_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cu_errf(-ENOTDIR, err, errlen, "state dir %s is not a directory", state_dir);
    st = calloc(1, sizeof(*st));
    if (!st)
        return cu_errf(-ENOMEM, err, errlen, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->rlock, NULL);
    pthread_mutex_init(&st->order, NULL);
    pthread_cond_init(&st->done, NULL);
    st->readonly = (flags & AUDIT_STORE_READONLY) != 0;
    n = snprintf(st->path, sizeof(st->path), "%s/%s", state_dir, DB_NAME);
    if (n < 0 || (size_t)n >= sizeof(st->path)) {
        rc = cu_errf(-ENAMETOOLONG, err, errlen, "state dir %s: path too long", state_dir);
        goto fail;
    }
    n = snprintf(keypath, sizeof(keypath), "%s/%s", state_dir, KEY_NAME);
    if (n < 0 || (size_t)n >= sizeof(keypath)) {
        rc = cu_errf(-ENAMETOOLONG, err, errlen, "state dir %s: path too long", state_dir);
        goto fail;
    }
    if (hostname) {
        n = snprintf(st->hostname, sizeof(st->hostname), "%s", hostname);
        if (n < 0 || (size_t)n >= sizeof(st->hostname)) {
            rc = cu_errf(-EINVAL, err, errlen, "hostname too long");
            goto fail;
        }
    } else if (gethostname(st->hostname, sizeof(st->hostname) - 1) < 0) {
        rc = cu_errf(-errno, err, errlen, "gethostname: %s", strerror(errno));
        goto fail;
    }
    if (st->readonly)
        rc = open_ro(st, keypath, o->pubhex, err, errlen);
    else
        rc = open_rw(st, keypath, flags, o->signer, err, errlen);
    if (rc < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    audit_store_close(st);
    return rc;
}

int audit_store_fresh_key(const struct audit_store *st)
{
    return st->fresh_key;
}

int audit_store_hash_at(struct audit_store *st, long long seq, char hash[AUDIT_HASH_HEX])
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->rlock);
    rc = audit_sq_errno(st->rdb, sqlite3_prepare_v2(st->rdb, SQL_HASH_AT, -1, &s, NULL));
    if (rc == 0)
        rc = audit_sq_errno(st->rdb, sqlite3_bind_int64(s, 1, seq));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            audit_sq_copy(s, 0, hash, AUDIT_HASH_HEX);
        rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : audit_sq_errno(st->rdb, rc);
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
    rc = audit_sq_errno(st->rdb, sqlite3_prepare_v2(st->rdb, SQL_HEAD_FULL, -1, &s, NULL));
    if (rc < 0)
        goto out;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (seq)
            *seq = sqlite3_column_int64(s, 0);
        if (hash)
            audit_sq_copy(s, 1, hash, AUDIT_HASH_HEX);
        if (signed_by)
            audit_sq_copy(s, 2, signed_by, AUDIT_KEYID_HEX);
        if (signed_at)
            audit_sq_copy(s, 3, signed_at, AUDIT_TIME_MAX);
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
        rc = audit_sq_errno(st->rdb, rc);
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

    rc = audit_store_reader(st, &db, err, sizeof(err));
    if (rc < 0)
        goto out;
    rc = audit_sq_exec(db, "BEGIN");
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_prepare_v2(db, SQL_RESULTS, -1, &s, NULL));
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_bind_int64(s, 1, from));
    if (rc < 0) {
        snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *cap = json_loadb(audit_sq_text(s, 1), (size_t)sqlite3_column_bytes(s, 1),
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
    rc = audit_sq_errno(db, rc);
    if (rc < 0)
        snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
out:
    if (rc < 0)
        syslog(LOG_ERR, "audit: reading %s: %s", st->path, err);
    sqlite3_finalize(s);
    if (db && !sqlite3_get_autocommit(db))
        audit_sq_exec(db, "COMMIT");
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
