/* chain.c: verifying the capsule chain in one read snapshot: sequence, linkage, columns
 * against data, hash and Ed25519 signature, row by row, with the verify hooks. */
#include "audit/storeint.h"

#include <errno.h>
#include <string.h>

#include "util/util.h"

/* Check one row of the chain at position expected; then hand it to the row hook. 0 or -EBADMSG
 * with why filled (or the hook's value). */
static int check_row(struct audit_store *st, sqlite3_stmt *s, long long expected,
                     const char *prev, const struct audit_verify_hooks *h, char *why,
                     size_t whylen)
{
    const char *col_prev = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : audit_sq_text(s, 3);
    const char *data = audit_sq_text(s, 4);
    const json_t *v;
    json_t *cap = NULL;
    json_error_t jerr;
    long long seq;
    int rc;

    if (sqlite3_column_type(s, 0) != SQLITE_INTEGER) {
        rc = cu_errf(-EBADMSG, why, whylen, "sequence column is not an integer");
        goto out;
    }
    seq = sqlite3_column_int64(s, 0);
    if (seq != expected) {
        rc = cu_errf(-EBADMSG, why, whylen, "sequence gap: expected %lld, found %lld", expected,
                     seq);
        goto out;
    }
    cap = json_loadb(data, (size_t)sqlite3_column_bytes(s, 4), JSON_ALLOW_NUL, &jerr);
    if (!cap) {
        rc = cu_errf(-EBADMSG, why, whylen, "data is not JSON: %s", jerr.text);
        goto out;
    }
    rc = audit_capsule_check(cap, why, whylen);
    if (rc < 0)
        goto out;
    seq = json_integer_value(json_object_get(cap, "sequence"));
    if (seq != expected) {
        rc = cu_errf(-EBADMSG, why, whylen,
                     "data holds sequence %lld in the row of sequence %lld", seq, expected);
        goto out;
    }
    v = json_object_get(cap, "previous_hash");
    if (expected > 0 && strcmp(json_string_value(v), prev) != 0) {
        rc = cu_errf(-EBADMSG, why, whylen,
                     "chain broken: previous_hash %.16s... is not the hash %.16s... of sequence "
                     "%lld", json_string_value(v), prev, expected - 1);
        goto out;
    }
    if (json_is_null(v) ? col_prev != NULL
                        : (!col_prev || strcmp(col_prev, json_string_value(v)) != 0)) {
        rc = cu_errf(-EBADMSG, why, whylen, "previous_hash column disagrees with the data");
        goto out;
    }
    if (strcmp(audit_sq_text(s, 1), json_string_value(json_object_get(cap, "id"))) != 0 ||
        strcmp(audit_sq_text(s, 2), json_string_value(json_object_get(cap, "type"))) != 0) {
        rc = cu_errf(-EBADMSG, why, whylen, "id or type column disagrees with the data");
        goto out;
    }
    if (strcmp(audit_sq_text(s, 7), audit_key_id(st->key)) != 0) {
        rc = cu_errf(-EBADMSG, why, whylen, "signed by key %.16s, not by this store's key %s",
                     audit_sq_text(s, 7), audit_key_id(st->key));
        goto out;
    }
    rc = audit_capsule_verify(st->key, cap, audit_sq_text(s, 5), audit_sq_text(s, 6), why, whylen);
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

    rc = audit_sq_exec(db, "BEGIN");
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_prepare_v2(db, SQL_COUNT, -1, &s, NULL));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            r->entries = sqlite3_column_int64(s, 0);
        rc = rc == SQLITE_ROW ? 0 : audit_sq_errno(db, rc);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_prepare_v2(db, SQL_HEAD, -1, &s, NULL));
    if (rc == 0) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            r->head_seq = sqlite3_column_int64(s, 0);
            audit_sq_copy(s, 1, r->head_hash, sizeof(r->head_hash));
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : audit_sq_errno(db, rc);
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
        return cu_errf(-EINVAL, r->reason, sizeof(r->reason), "bad starting point for verify");
    if (from > 0)
        memcpy(prev, prev_hash, AUDIT_HASH_HEX);
    rc = audit_store_reader(st, &db, r->reason, sizeof(r->reason));
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&st->order);
    rc = fix_snapshot(db, r);
    if (rc == 0 && h && h->snapshot)
        h->snapshot(h->arg, r);
    pthread_mutex_unlock(&st->order);
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_prepare_v2(db, SQL_ALL, -1, &s, NULL));
    if (rc == 0)
        rc = audit_sq_errno(db, sqlite3_bind_int64(s, 1, from));
    if (rc < 0) {
        cu_errf(rc, r->reason, sizeof(r->reason), "%s: %s", st->path, sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = check_row(st, s, i, prev, h, r->reason, sizeof(r->reason));
        if (rc < 0) {
            r->failed_seq = i;
            goto out;
        }
        audit_sq_copy(s, 5, prev, sizeof(prev));
        r->checked = ++i;
    }
    rc = audit_sq_errno(db, rc);
    if (rc < 0)
        cu_errf(rc, r->reason, sizeof(r->reason), "%s: %s", st->path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(s);
    if (db && !sqlite3_get_autocommit(db))
        audit_sq_exec(db, "COMMIT");
    sqlite3_close(db);
    return rc;
}

int audit_store_verify(struct audit_store *st, struct audit_verify_report *r)
{
    return audit_store_verify_from(st, 0, NULL, NULL, r);
}

