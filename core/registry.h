/* registry.h: the services.json model, the single source of truth for services/. The record
 * type and its attribute functions are regrec.h's (included here); the services.json text
 * (reg_parse, reg_serialize, reg_empty_sha) is regjson.h's. */
#ifndef CONDUIT_REGISTRY_H
#define CONDUIT_REGISTRY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/regrec.h"
#include "core/validate.h"

/* An immutable, reference-counted view of the registry. Readers never wait on a mutation.
 * Records are held by reference: a record no change touched is shared by every snapshot that
 * holds it (a change copies only the records it writes), so a commit copies n pointers, not n
 * records. */
struct reg_snapshot {
    int refs;                          /* guarded by the registry's snapshot lock */
    size_t n;
    const struct reg_service **svcs;   /* all records, inactive ones included, in file order */
};

/* Load (or create) services.json under cfg->state_dir and have the pipeline (reg_set_pipeline)
 * make its configs live.
 * cfg must outlive the registry. On failure returns -errno and writes a one-line reason to err.
 * A corrupt services.json is moved aside to services.json.corrupt-<time> and refused. A missing
 * one is refused (-ENOENT) while the audit trail or state/tls shows registered services, unless
 * cfg->empty_registry. The file is checked against the audit chain's newest registry mark (see
 * regmark.h): a change sealed but never committed gets its registry_abort mark, a file the chain
 * does not explain a registry_adopt mark (and a syslog error). space.reserve is made. Needs the
 * audit trail open. */
int reg_open(const struct cfs_config *cfg, char *err, size_t errlen);

/* Release the registry. No operation may be running. */
void reg_close(void);

/* Register NAME with default attributes (status pending). 0, -EINVAL, -EEXIST, or an I/O -errno.
 * who is the caller's user name, for the audit line. */
int reg_register(const char *name, const char *who);

/* Make or replace service NAME with all its attributes as one change (one validation, one
 * audit batch, one commit): values[attr] is the written value of each attribute (one trailing
 * newline not included), NULL for its default; the domain's default is NAME.<first suffix>, or
 * none when another service has it. A refusal seals a failure entry saying why (as every
 * refusal here does). 0 (also when nothing changed), -EINVAL, -EEXIST (domain taken), or
 * -errno. */
int reg_apply(const char *name, const char *const values[REG_NATTR], const char *who);

/* Longest document reg_apply_json takes, in bytes. */
#define REG_APPLY_MAX (16 * 1024)

/* services/.apply: reg_apply with the JSON object in buf[0..len) (one trailing newline
 * stripped): {"name":NAME[,"upstream":S][,"domain":S][,"health_check":S][,"mode":S]
 * [,"monitoring":OBJECT or S]}. Unknown keys, duplicate keys, other types: -EINVAL, audited
 * like every refusal; over REG_APPLY_MAX: -EFBIG. Otherwise what reg_apply returns. */
int reg_apply_json(const char *buf, size_t len, const char *who);

/* Say why a change of service name's attr (-1: the service itself) was refused with rc before
 * it reached the registry (a write at an offset): one syslog line and a sealed failure entry,
 * as every refusal by the registry itself gets. */
void reg_refuse(const char *name, int attr, const char *who, int rc, const char *reason);

/* Say why a change of a path below the mount (fmt and its arguments, printf-style, e.g.
 * "monitor/%s/target.json") was refused with rc, by who: one syslog line ("registry: refused a
 * change of PATH by WHO: REASON", "monitor:" for monitor/ paths; at most ten a second, shared
 * by every caller, the rest counted in one line) and a sealed change_refused failure entry
 * {path, operation: action, reason, error: rc's text}. reason NULL or "": rc's text. Bytes of
 * the path outside printable ASCII become '?'. Nothing else is kept. */
void reg_refuse_path(const char *action, const char *who, int rc, const char *reason,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Deregister NAME: it stays in services.json as inactive. 0, -ENOENT or -errno. */
int reg_deregister(const char *name, const char *who);

/* Set one attribute from a raw written buffer (one trailing newline is stripped).
 * 0 (also when unchanged), -EINVAL, -EEXIST (domain taken), -EFBIG, -ENOENT, or -errno. */
int reg_set(const char *name, enum reg_attr attr, const char *buf, size_t len, const char *who);

/* Reset one attribute to its default. Same returns as reg_set. */
int reg_reset(const char *name, enum reg_attr attr, const char *who);

/* ---- the commit pipeline ----
 * The registry is the model: it loads, validates, mutates and saves services.json under its
 * lock, and seals every change in the audit chain. What a change makes live (configs,
 * certificates, the proxy) belongs to the commit pipeline (pipeline.h), a module above this one
 * that plugs its steps in here. Without one (unit tests of the model) a commit seals and saves,
 * and nothing else is done. */

/* One commit in flight, handed to the pipeline's commit step with the mutation lock held. */
struct reg_txn {
    const struct reg_service *const *cur;    /* the registry as committed, cur[0..ncur) */
    size_t ncur;
    const struct reg_service *const *next;   /* as the batch makes it, next[0..nnext) */
    size_t nnext;
    const char *who;                   /* the batch's first caller, for audit lines */
    struct reg_txn_state *state;       /* the registry's own */
};

/* The pipeline's steps. Each may be NULL. */
struct reg_pipeline {
    /* At reg_open, once services.json is read: prepare what the configs need. 0 or -errno
     * (the mount is refused). */
    int (*open)(const struct cfs_config *cfg);
    /* At reg_open, after open: make every config live from the registry. Called without the
     * mutation lock (take it with reg_with_lock). 0 or -errno (the mount is refused). */
    int (*rerender)(void);
    /* Commit t: whatever it prepares first, then reg_txn_seal (nothing may go live before),
     * then whatever goes live, then reg_txn_save; on a failure after the seal it undoes what
     * went live and calls reg_txn_abort. 0 only once reg_txn_save succeeded, else -errno. */
    int (*commit)(struct reg_txn *t);
    /* After each mutation, with the mutation lock released. */
    void (*flush)(void);
};

/* Plug in the pipeline p (NULL: none), which must outlive the registry. Call before reg_open. */
void reg_set_pipeline(const struct reg_pipeline *p);

/* Seal t's audit entries in one transaction, the last carrying the registry mark of the
 * services.json that t commits (and first the abort mark an earlier failed commit still owes).
 * Once it returns 0, a crash before reg_txn_save is completed as an abort by the next mount.
 * 0, -ENOSPC (the disk is full), -EIO (the chain could not seal them), or -errno (nothing
 * sealed: the document could not be made). */
int reg_txn_seal(struct reg_txn *t);

/* Write the services.json of a sealed t atomically: after this the commit stands, and the
 * registry publishes t->next when the commit step returns 0. 0 or -errno. */
int reg_txn_save(struct reg_txn *t);

/* Seal the registry_abort mark of a sealed t that will not be saved; rc says why. When that
 * mark cannot be sealed, the next commit or mount seals it. */
void reg_txn_abort(struct reg_txn *t, int rc);

/* Run fn(arg) with the mutation lock held, ordered with every mutation (certificate rotation and
 * renewal, the pipeline's re-renders). fn must not call the registry's mutators. Returns what fn
 * returns. */
int reg_with_lock(int (*fn)(void *arg), void *arg);

/* Take a reference to the current snapshot. Never NULL after reg_open. */
struct reg_snapshot *reg_snapshot_get(void);

/* Drop a reference taken with reg_snapshot_get. */
void reg_snapshot_put(struct reg_snapshot *snap);

/* The active or pending record called name in snap, or NULL. */
const struct reg_service *reg_snapshot_find(const struct reg_snapshot *snap, const char *name);

#endif
