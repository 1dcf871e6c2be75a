/* commit.c: appending to the capsule chain: leader/follower group commit (one transaction and
 * one fsync for every append waiting when a batch starts), the commit hook, and import. */
#include "audit/storeint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "audit/canon.h"

/* Insert one sealed capsule, given with its canonical text data, with the insert statement.
 * 0 or -errno. */
static int insert_capsule(struct audit_store *st, const json_t *cap, const char *data,
                          size_t len, long long seq, const char *prev,
                          const struct audit_seal *seal)
{
    sqlite3_stmt *s = st->insert;
    int rc;

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
    rc = audit_sq_errno(st->db, rc);
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
        audit_sq_copy(st->head, 1, prev, AUDIT_HASH_HEX);
        rc = 0;
    } else {
        rc = audit_sq_errno(st->db, rc);
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
    char *data = NULL;
    size_t len;
    int rc;

    rc = audit_capsule_link(cap, next, next ? prev : NULL);
    if (rc == -EINVAL) {
        syslog(LOG_ERR, "audit: the chain head of %s has a malformed hash", st->path);
        rc = -EUCLEAN;
    }
    /* One canonical text, both hashed and stored. */
    if (rc == 0)
        rc = audit_canon(cap, AUDIT_CANON_CAPSULE, &data, &len);
    if (rc == 0)
        rc = audit_capsule_seal_canon(st->key, data, len, &seal);
    if (rc == 0)
        rc = insert_capsule(st, cap, data, len, next, next ? prev : NULL, &seal);
    free(data);
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
    rc = audit_sq_exec(st->db, "COMMIT");
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
        audit_sq_exec(st->db, "ROLLBACK");
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
    rc = audit_sq_exec(st->db, "BEGIN IMMEDIATE");
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

    rc = audit_sq_exec(st->db, "BEGIN IMMEDIATE");
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

void audit_store_stats(struct audit_store *st, long long *appends, long long *batches)
{
    pthread_mutex_lock(&st->lock);
    if (appends)
        *appends = st->appends;
    if (batches)
        *batches = st->batches;
    pthread_mutex_unlock(&st->lock);
}

