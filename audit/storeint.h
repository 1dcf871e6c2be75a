/* storeint.h: inside the chain store only (store.c opens and reads, commit.c appends by group
 * commit, chain.c verifies): the store's struct, its SQL and its limits, and the SQLite helpers
 * the three files share. Not for use outside audit/store.c, commit.c and chain.c. */
#ifndef CONDUIT_AUDIT_STOREINT_H
#define CONDUIT_AUDIT_STOREINT_H

#include <limits.h>
#include <pthread.h>

#include <sqlite3.h>

#include "audit/store.h"

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

/* The one place SQLite result codes become -errno (store.c). */
int audit_sq_errno(sqlite3 *db, int rc);

/* Run one SQL statement without results. 0 or -errno. */
int audit_sq_exec(sqlite3 *db, const char *sql);

/* A text column as a string ("" for NULL). */
const char *audit_sq_text(sqlite3_stmt *s, int i);

/* Copy a text column into dst (dstlen >= 1), truncating. */
void audit_sq_copy(sqlite3_stmt *s, int i, char *dst, size_t dstlen);

/* Open the database read-only for a reader; immutable (no lock, no side files) when the store
 * was opened read-only on a database without a WAL file. 0 or -errno with err filled. */
int audit_store_reader(struct audit_store *st, sqlite3 **out, char *err, size_t errlen);

#endif
