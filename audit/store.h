/* store.h: the sealed audit chain in state/capsules.db (SQLite, WAL, group commit), and its
 * verification (store.c opens and reads, commit.c appends, chain.c verifies). */
#ifndef CONDUIT_AUDIT_STORE_H
#define CONDUIT_AUDIT_STORE_H

#include <stddef.h>

#include <jansson.h>

#include "audit/capsule.h"

/* An open chain store: the database connections, the signing key, the append queue. Opaque. */
struct audit_store;

/* The first break verify found, if any. */
struct audit_verify_report {
    long long checked;    /* capsules that passed every check before the first failure */
    long long failed_seq; /* sequence of the first capsule that failed; -1 when intact */
    char reason[256];     /* why it failed, or why verification could not run */
    long long entries;    /* rows in the verified snapshot */
    long long head_seq;   /* the snapshot's highest sequence; -1 when empty */
    char head_hash[AUDIT_HASH_HEX]; /* and its hash ("" when empty) */
};

/* audit_store_opts flags. READONLY: open an existing database and key without creating or
 * changing anything (a missing one is an error); appends get -EROFS; a database without a WAL
 * file is read as immutable, so not even SQLite's side files appear. KEEP_KEY: create a missing
 * signing key only while the chain is empty. */
#define AUDIT_STORE_READONLY 0x1u
#define AUDIT_STORE_KEEP_KEY 0x2u

/* What a batch leader calls after its transaction committed and before any later batch starts:
 * the tags of the batch's appends in sequence order; first_seq is the sequence of the batch's
 * first capsule. It runs under the order lock verify takes to fix its snapshot. A nonzero return
 * (-errno) becomes the result of every append of the batch, whose capsules stay committed. */
typedef int (*audit_store_hook)(void *arg, long long first_seq, void *const *tags, size_t ntags);

/* What audit_store_import pulls: 1 with *entry (a new reference the store takes) and
 * *system_event set, 0 at the end, or -errno to abort. */
typedef int (*audit_store_next)(void *arg, json_t **entry, int *system_event);

/* Hooks into a verify run. snapshot: the read snapshot is fixed (r->entries, r->head_seq and
 * r->head_hash are set), called under the order lock, so no commit hook runs meanwhile. row: a
 * capsule passed every chain check (capsule is the parsed row, borrowed); a nonzero return
 * (-EBADMSG with why filled) makes it the failing capsule. Either may be NULL. */
struct audit_verify_hooks {
    void (*snapshot)(void *arg, const struct audit_verify_report *r);
    int (*row)(void *arg, long long seq, const json_t *capsule, char *why, size_t whylen);
    void *arg;
};

/* A signing key kept in another process (the daemon's signer). load: the public key (64 hex
 * chars) of the Ed25519 seed file keypath, which the signer creates when missing and checks as
 * audit_key_load does, or -errno with err filled; sign: see audit_sign_fn. arg goes to both. */
struct audit_signer {
    int (*load)(void *arg, const char *keypath, char pubhex[AUDIT_PUB_HEX], char *err,
                size_t errlen);
    audit_sign_fn sign;
    void *arg;
};

/* How to open a store (a zeroed struct, or NULL, is the default: read-write, the key loaded
 * into this process, created when missing). */
struct audit_store_opts {
    const char *hostname;               /* into every capsule's context.environment; NULL:
                                         * gethostname() (with pubhex: "verify") */
    unsigned flags;                     /* AUDIT_STORE_* */
    const struct audit_signer *signer;  /* the signing key behind another process (NULL: loaded
                                         * here); the store never reads the key file then, and
                                         * a missing key is refused or left to the signer to
                                         * create as flags say. A read-only open ignores it. */
    const char *pubhex;                 /* non-NULL: a read-only store that checks seals against
                                         * this public key (64 hex characters) and never reads
                                         * the key file, so that a copy of capsules.db and
                                         * audit.log can be verified without any key */
};

/* Open state_dir/capsules.db (created 0600 with the capsules table if missing) and the signing
 * key state_dir/key (a raw 32-byte Ed25519 seed, created 0600 if missing) as o says. A
 * read-only store (AUDIT_STORE_READONLY, or pubhex) loads only the public half of the key and
 * skips the key file's owner and mode checks. A file that is not an SQLite database, or a
 * database whose capsules table lacks a column of the CPS storage schema, or that holds other
 * tables but no capsules table, is refused. On failure err says why. 0 or -errno (-EUCLEAN for
 * a foreign or corrupt database, -EINVAL for a pubhex that is no Ed25519 public key). */
int audit_store_open(const char *state_dir, const struct audit_store_opts *o,
                     struct audit_store **out, char *err, size_t errlen);

/* 1 when this open created the signing key (there was none), else 0. */
int audit_store_fresh_key(const struct audit_store *st);

/* Set the commit hook (NULL for none). */
void audit_store_set_hook(struct audit_store *st, audit_store_hook fn, void *arg);

/* Seal a six-field audit entry (see audit_capsule_from_entry) as the next capsule of the chain
 * and return once it is durable. Concurrent callers are batched (leader/follower): a caller that
 * finds no batch in flight commits every entry waiting at that moment, its own included, in one
 * BEGIN IMMEDIATE transaction (the chain head is read inside it) with one fsync, while later
 * callers wait for the next batch. system_event: the daemon's own event rather than a user's
 * request. duration_ms: how long the operation took (>= 0). hash_out (AUDIT_HASH_HEX bytes) and
 * seq_out may be NULL. Thread-safe. 0, -EINVAL (bad entry), -ESHUTDOWN (store closing) or the
 * errno the database error maps to (-ENOSPC, -EIO, -EBUSY, -EROFS, ...); on error nothing was
 * appended. */
int audit_store_append(struct audit_store *st, const json_t *entry, int system_event,
                       long long duration_ms, char *hash_out, long long *seq_out);

/* Like audit_store_append for n >= 1 entries that take consecutive sequences in the same
 * transaction (all or none), with tag handed to the commit hook. *first_seq (may be NULL) gets
 * the first one's sequence. 0 (sealed and durable, even if the commit hook then failed: the hook
 * logs that, and audit/audit.c writes the missing lines at the next commit), or -EINVAL, -EROFS,
 * -ESHUTDOWN, or the database's -errno: then nothing was appended, and a retry cannot duplicate. */
int audit_store_append_many(struct audit_store *st, const json_t *const *entries, size_t n,
                            int system_event, long long duration_ms, void *tag,
                            long long *first_seq);

/* Seal every entry next yields, in order, as the next capsules, in one transaction (all or
 * none), without the commit hook; for adopting an existing log. *count (may be NULL) gets how
 * many. 0, -EROFS, -ESHUTDOWN, next's -errno, or the database's. */
int audit_store_import(struct audit_store *st, audit_store_next next, void *arg,
                       long long *count);

/* Verify the whole chain in sequence order, in one read snapshot: each row's data parses and
 * has the capsule structure; its sequence is the next one (0, 1, 2, ... with no gap) in both the
 * column and the data; previous_hash is null at 0 and the previous row's hash after; id and type
 * match their columns; the recomputed hash matches; signed_by is this store's key id and the
 * Ed25519 signature verifies. Thread-safe and concurrent with appends. 0 when intact,
 * -EBADMSG when a capsule failed (r->failed_seq, r->reason), or -errno when the database could
 * not be read (r->reason says why). */
int audit_store_verify(struct audit_store *st, struct audit_verify_report *r);

/* audit_store_verify with hooks (NULL: none), for the capsules with sequence >= from only, the
 * first of which must link to prev_hash (the hash of capsule from - 1; ignored when from is 0):
 * the capsules before from are taken as verified (r->checked starts at from). r->entries still
 * counts every row. -EINVAL for a negative from or a malformed prev_hash; else as
 * audit_store_verify. */
int audit_store_verify_from(struct audit_store *st, long long from, const char *prev_hash,
                            const struct audit_verify_hooks *h, struct audit_verify_report *r);

/* The hash column of the capsule with sequence seq. 0, -ENOENT (no such row) or -errno. */
int audit_store_hash_at(struct audit_store *st, long long seq, char hash[AUDIT_HASH_HEX]);

/* Sign len bytes of msg with the store's signing key (here or behind its signer). 0, -EROFS
 * for a read-only store, or audit_key_sign's -errno. */
int audit_store_sign(struct audit_store *st, const unsigned char *msg, size_t len,
                     unsigned char sig[AUDIT_SIG_LEN]);

/* The chain head: its sequence (-1 for an empty chain, with the strings set to ""), hash,
 * signed_by and signed_at. Any output may be NULL. 0 or -errno. */
int audit_store_head(struct audit_store *st, long long *seq, char hash[AUDIT_HASH_HEX],
                     char signed_by[AUDIT_KEYID_HEX], char signed_at[AUDIT_TIME_MAX]);

/* Call cb for every capsule in sequence order with its outcome.result (the audit entry it
 * sealed; borrowed, valid during the call; JSON null when a row lacks it) in one read snapshot.
 * A nonzero return from cb stops the walk and is returned. Rows whose data does not parse are
 * passed with result NULL. 0, cb's value, or -errno. */
int audit_store_foreach_result(struct audit_store *st,
                               int (*cb)(long long seq, const json_t *result, void *arg),
                               void *arg);

/* audit_store_foreach_result for the capsules with sequence >= from only. */
int audit_store_foreach_result_from(struct audit_store *st, long long from,
                                    int (*cb)(long long seq, const json_t *result, void *arg),
                                    void *arg);

/* The store's public key as 64 hex chars (its first 16 are the signed_by of every capsule). */
const char *audit_store_pubkey_hex(struct audit_store *st);

/* Appends and batches (one transaction each) committed since open. Either may be NULL. */
void audit_store_stats(struct audit_store *st, long long *appends, long long *batches);

/* Wait for the appends already queued, close the database and free the key. NULL is fine.
 * Appends that start after close began get -ESHUTDOWN; no call may start after it returned. */
void audit_store_close(struct audit_store *st);

#endif
