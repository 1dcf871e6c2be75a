/* registry.c: services.json, the single source of truth. Mutations are serialized by one lock,
 * build the next registry beside the current one, and hand it to the commit pipeline
 * (reg_set_pipeline), which seals its audit entries here (with the SHA-256 of the next
 * services.json, see regmark.h) before anything goes live, and has it saved atomically; only
 * then is it published as the new snapshot that readers see. At mount, services.json is checked
 * against the chain's newest registry mark.
 * Over 800 lines, as one concern: the model's state (the records and snapshots, the current
 * hash, the queue of ops) and every step that changes it under its locks, from validating a
 * change against the records before it through group commit to publishing. What needs none of
 * that state lives beside it: the records' attributes (regrec.c), the services.json text
 * (regjson.c), refusals (refuse.c), and the abort/adopt marks with the space reserve
 * (regseal.c). */
#include "core/registry.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/regjson.h"
#include "core/regmark.h"
#include "core/regrec.h"
#include "core/regseal.h"
#include "core/statefile.h"
#include "util/util.h"

/* Ownership: mut_lock orders every mutation (and the pipeline's steps); snap_lock guards g_cur
 * and every snapshot's refcount. A mutator takes mut_lock, then snap_lock only to publish. */
static pthread_mutex_t mut_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct cfs_config *g_cfg;
static const struct reg_pipeline *g_pipe;   /* set before reg_open; NULL: none */
static struct reg_snapshot *g_cur;
static char g_sha[RMARK_SHA_HEX];       /* SHA-256 of services.json as committed (mut_lock) */
static char g_unaborted[RMARK_SHA_HEX]; /* a sealed batch whose abort mark is still unsealed */

/* Copy a validated string into a fixed field. -EINVAL when it does not fit. */
static int set_field(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstlen)
        return -EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

/* ---- records and snapshots ----
 * A record is allocated alone, with a reference count of the snapshots that hold it. Once a
 * snapshot holding it is published, a record never changes: a change copies the snapshot's
 * pointers (rec_ref on each) and then copies only the records it writes (rec_mut), so a commit
 * costs n pointers, not n records of several KiB. */
struct rec {
    atomic_int refs;                   /* beside the name, which every lookup reads anyway */
    struct reg_service svc;
};

static struct rec *rec_of(const struct reg_service *s)
{
    return (struct rec *)(void *)((uintptr_t)s - offsetof(struct rec, svc));
}

/* A new zeroed record, referenced once; NULL when out of memory. */
static struct reg_service *rec_new(void)
{
    struct rec *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    return &r->svc;
}

static const struct reg_service *rec_ref(const struct reg_service *s)
{
    atomic_fetch_add(&rec_of(s)->refs, 1);
    return s;
}

static void rec_put(const struct reg_service *s)
{
    if (s && atomic_fetch_sub(&rec_of(s)->refs, 1) == 1)
        free(rec_of(s));
}

/* A snapshot with room for cap records, holding none; NULL when out of memory. */
static struct reg_snapshot *snap_new(size_t cap)
{
    struct reg_snapshot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->refs = 1;
    s->svcs = cap ? calloc(cap, sizeof(*s->svcs)) : NULL;
    if (cap && !s->svcs) {
        free(s);
        return NULL;
    }
    return s;
}

static void snap_free(struct reg_snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        rec_put(s->svcs[i]);
    free(s->svcs);
    free(s);
}

/* Record i of next (a snapshot not yet published), writable: copied first when another
 * snapshot holds it too. NULL when out of memory. */
static struct reg_service *rec_mut(struct reg_snapshot *next, size_t i)
{
    const struct reg_service *s = next->svcs[i];
    struct reg_service *copy;

    if (atomic_load(&rec_of(s)->refs) == 1)
        return (struct reg_service *)(uintptr_t)s;
    copy = rec_new();
    if (!copy)
        return NULL;
    *copy = *s;
    next->svcs[i] = copy;
    rec_put(s);
    return copy;
}

/* Append a new zeroed record to next (which has room for it). NULL when out of memory. */
static struct reg_service *rec_append(struct reg_snapshot *next)
{
    struct reg_service *s = rec_new();

    if (s)
        next->svcs[next->n++] = s;
    return s;
}

/* Drop the last record of next (one rec_append made). */
static void rec_pop(struct reg_snapshot *next)
{
    rec_put(next->svcs[--next->n]);
    next->svcs[next->n] = NULL;
}

struct reg_snapshot *reg_snapshot_get(void)
{
    struct reg_snapshot *s;

    pthread_mutex_lock(&snap_lock);
    s = g_cur;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&snap_lock);
    return s;
}

void reg_snapshot_put(struct reg_snapshot *snap)
{
    int left;

    if (!snap)
        return;
    pthread_mutex_lock(&snap_lock);
    left = --snap->refs;
    pthread_mutex_unlock(&snap_lock);
    if (left == 0)
        snap_free(snap);
}

/* Publish next as the current registry; the registry's own reference moves to it. */
static void snap_publish(struct reg_snapshot *next)
{
    struct reg_snapshot *old;

    pthread_mutex_lock(&snap_lock);
    old = g_cur;
    g_cur = next;
    pthread_mutex_unlock(&snap_lock);
    reg_snapshot_put(old);
}

const struct reg_service *reg_snapshot_find(const struct reg_snapshot *snap, const char *name)
{
    ssize_t i = snap ? regrec_find_live(snap->svcs, snap->n, name) : -1;

    return i < 0 ? NULL : snap->svcs[i];
}

/* True when another live record than skip already uses domain (regrec_domain_user: a live
 * record may have no domain yet, see apply_op's OP_REGISTER, and "" is never taken). */
static bool domain_taken(const struct reg_service *const *svcs, size_t n, const char *domain,
                         ssize_t skip)
{
    return regrec_domain_user(svcs, n, domain, skip) >= 0;
}

/* ---- refusals ----
 * The syslog line and the sealed entry are refuse.c's (reg_refuse_path); this maps a service
 * change to its path. */

/* Say why a change of service name (attr, or -1 for the service itself) was refused with rc:
 * the syslog line and a change_refused failure entry, whose details name the operation (the
 * action the change would have had). A distinct action, so that whoever reads service_* entries
 * as changes (replay.c, conduit-logs --action, dashboards) never mistakes a refusal for one. */
static void refuse(const char *action, const char *name, int attr, const char *who, int rc,
                   const char *reason)
{
    if (attr >= 0)
        reg_refuse_path(action, who, rc, reason, "services/%.63s/%s", name,
                        reg_attr_name(attr));
    else
        reg_refuse_path(action, who, rc, reason, "services/%.200s", name);
}

/* ---- serializing with a cache of record texts ----
 * A record never changes once published (a change copies the records it writes), so the text
 * of each record at the indentation of services.json is kept by index with a reference to the
 * record it was made from, and reused while the snapshot holds that same record. A commit then
 * serializes only the records it wrote; the document is byte for byte reg_serialize's. Guarded
 * by mut_lock. */
struct rec_text {
    char *text;                         /* NULL: not cached */
    size_t len;
    const struct reg_service *rec;      /* the record it was made from (a reference held) */
};
static struct rec_text *g_texts;
static size_t g_ntexts;

static void texts_reset(void)
{
    for (size_t i = 0; i < g_ntexts; i++) {
        free(g_texts[i].text);
        rec_put(g_texts[i].rec);
    }
    free(g_texts);
    g_texts = NULL;
    g_ntexts = 0;
}

/* The cached text of record i of svcs, made now when missing; NULL: out of memory. */
static const char *cached_text(const struct reg_service *const *svcs, size_t i, size_t *len)
{
    const struct reg_service *s = svcs[i];
    struct rec_text *c;
    char *text;

    if (i >= g_ntexts) {
        size_t n = i + 1 > 2 * g_ntexts ? i + 1 + 64 : 2 * g_ntexts;
        struct rec_text *nt = realloc(g_texts, n * sizeof(*nt));

        if (!nt)
            return NULL;
        memset(nt + g_ntexts, 0, (n - g_ntexts) * sizeof(*nt));
        g_texts = nt;
        g_ntexts = n;
    }
    c = &g_texts[i];
    if (c->text && c->rec == s) {
        *len = c->len;
        return c->text;
    }
    text = regjson_record_text(s, len);
    if (!text)
        return NULL;
    free(c->text);
    rec_put(c->rec);
    c->text = text;
    c->len = *len;
    c->rec = rec_ref(s);
    return c->text;
}

/* reg_serialize of svcs[0..n), reusing the cached text of each record. Called with mut_lock
 * held. */
static char *serialize_cached(const struct reg_service *const *svcs, size_t n)
{
    static const char head[] = "{\n  \"version\": 1,\n  \"services\": [";
    char *out = NULL;
    const char **texts = NULL;
    size_t *lens = NULL, total = sizeof(head) + 16, k;

    if (n == 0)
        return reg_serialize(NULL, 0);
    texts = calloc(n, sizeof(*texts));
    lens = calloc(n, sizeof(*lens));
    if (!texts || !lens)
        goto out;
    for (size_t i = 0; i < n; i++) {
        texts[i] = cached_text(svcs, i, &lens[i]);
        if (!texts[i])
            goto out;
        total += lens[i] + 6;
    }
    out = malloc(total);
    if (!out)
        goto out;
    memcpy(out, head, sizeof(head) - 1);
    k = sizeof(head) - 1;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + k, i ? ",\n    " : "\n    ", i ? 6 : 5);
        k += i ? 6 : 5;
        memcpy(out + k, texts[i], lens[i]);
        k += lens[i];
    }
    memcpy(out + k, "\n  ]\n}", 6);
    out[k + 6] = '\0';
out:
    free(texts);
    free(lens);
    return out;
}

/* ---- committing ----
 * The registry's own marks (registry_abort, registry_adopt) and the space reserve that pays for
 * them on a full disk are regseal.c's. */

static int services_path(char *buf, size_t len)
{
    return state_path(buf, len, g_cfg->state_dir, "services.json");
}

enum op_kind { OP_REGISTER, OP_DEREGISTER, OP_SET, OP_APPLY };

struct op {
    enum op_kind kind;
    const char *name;
    enum reg_attr attr;
    const char *value;          /* OP_SET */
    const char *who;
    char domain[254];           /* for the audit entry */
    char old[REG_VALUE_MAX], now[REG_VALUE_MAX];
    char why[256];              /* why it was refused ("" when not, or no reason) */
    const char *const *values;  /* OP_APPLY: each attribute's value, NULL for its default */
    bool existed;               /* OP_APPLY: the service was live before */
    unsigned changed;           /* OP_APPLY: bit per attribute whose value changed */
    char olds[REG_NATTR][REG_VALUE_MAX], nows[REG_NATTR][REG_VALUE_MAX];
    int rc;                     /* 0, 1 (changed something) or -errno */
    bool done;
    struct op *next;
};

/* How many audit entries a changing op seals. */
static size_t op_nitems(const struct op *o)
{
    size_t k = 0;

    if (o->kind != OP_APPLY)
        return 1;
    for (int a = 0; a < REG_NATTR; a++)
        k += (o->changed >> a) & 1u;
    return k + !o->existed;
}

/* The audit entries of a changing OP_APPLY into it[0..op_nitems): service_register when it
 * made the service (with its final domain), then one service_update per changed attribute, so
 * that replay.c rebuilds it from the entries it already knows. */
static int apply_items(const struct op *o, struct audit_item *it, char (*msg)[128])
{
    size_t k = 0;

    if (!o->existed) {
        it[k].status = "success";
        it[k].user = o->who;
        it[k].action = "service_register";
        it[k].message = msg[k];
        snprintf(msg[k], sizeof(msg[k]), "Registered service %s", o->name);
        it[k].details = json_pack("{s:s,s:s}", "name", o->name, "domain", o->domain);
        if (!it[k++].details)
            return -ENOMEM;
    }
    for (int a = 0; a < REG_NATTR; a++) {
        if (!((o->changed >> a) & 1u))
            continue;
        it[k].status = "success";
        it[k].user = o->who;
        it[k].action = "service_update";
        it[k].message = msg[k];
        snprintf(msg[k], sizeof(msg[k]), "Updated %s of service %s", reg_attr_name(a),
                 o->name);
        it[k].details = json_pack("{s:s,s:s,s:s,s:s}", "name", o->name, "attribute",
                                  reg_attr_name(a), "old", o->olds[a], "new", o->nows[a]);
        if (!it[k++].details)
            return -ENOMEM;
    }
    return 0;
}

/* The audit entry of a changing op into it (details and message are the caller's to free). */
static int op_item(const struct op *o, struct audit_item *it, char *msg, size_t msglen)
{
    it->status = "success";
    it->message = msg;
    it->user = o->who;
    switch (o->kind) {
    case OP_REGISTER:
        it->action = "service_register";
        snprintf(msg, msglen, "Registered service %s", o->name);
        it->details = json_pack("{s:s,s:s}", "name", o->name, "domain", o->domain);
        break;
    case OP_DEREGISTER:
        it->action = "service_deregister";
        snprintf(msg, msglen, "Deregistered service %s", o->name);
        it->details = json_pack("{s:s,s:s}", "name", o->name, "domain", o->domain);
        break;
    default:
        it->action = "service_update";
        snprintf(msg, msglen, "Updated %s of service %s", reg_attr_name(o->attr), o->name);
        it->details = json_pack("{s:s,s:s,s:s,s:s}", "name", o->name, "attribute",
                                reg_attr_name(o->attr), "old", o->old, "new", o->now);
        break;
    }
    return it->details ? 0 : -ENOMEM;
}

/* Seal the entries of the changing ops of ops[0..n) in one transaction, all stamped ts, the
 * last one carrying the mark of the commit from g_sha to sha. 0, -ENOSPC (the disk is full) or
 * -EIO (any other reason the chain could not seal them); nothing is sealed then. */
static int seal_batch(struct op **ops, size_t n, const char *ts, const char *sha)
{
    struct audit_item *items = NULL;
    char (*msgs)[128] = NULL;
    size_t k = 0, total = 0;
    int rc = -ENOMEM;

    for (size_t i = 0; i < n; i++)
        total += ops[i]->rc == 1 ? op_nitems(ops[i]) : 0;
    items = calloc(total ? total : 1, sizeof(*items));
    msgs = calloc(total ? total : 1, sizeof(*msgs));
    if (!items || !msgs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->rc != 1)
            continue;
        if (ops[i]->kind == OP_APPLY) {
            size_t m = op_nitems(ops[i]);

            rc = apply_items(ops[i], &items[k], &msgs[k]);
            k += m;
            if (rc < 0) {
                rc = -ENOMEM;
                goto out;
            }
            rc = -ENOMEM;
            continue;
        }
        if (op_item(ops[i], &items[k], msgs[k], sizeof(msgs[k])) < 0) {
            k++;
            goto out;
        }
        k++;
    }
    if (k == 0 || regseal_add_mark(items[k - 1].details, sha, g_sha) < 0)
        goto out;
    rc = audit_log_batch(items, k, ts);
out:
    for (size_t i = 0; items && i < k; i++)
        json_decref(items[i].details);
    free(items);
    free(msgs);
    if (rc < 0 && rc != -ENOSPC) {
        syslog(LOG_ERR, "registry: the change's audit capsule could not be sealed (%s); the "
               "change is refused with EIO", strerror(-rc));
        rc = -EIO;
    }
    return rc;
}

/* ---- committing: the registry's steps, which the pipeline's commit runs ---- */

struct reg_txn_state {
    struct op **ops;            /* the batch */
    size_t nops;
    const char *ts;             /* its entries' timestamp */
    char *doc;                  /* the services.json of next (reg_txn_seal) */
    char path[PATH_MAX];
    char sha[RMARK_SHA_HEX];
    bool sealfail;              /* sealing failed: the batch fails whole */
};

void reg_set_pipeline(const struct reg_pipeline *p)
{
    g_pipe = p;
}

int reg_txn_seal(struct reg_txn *t)
{
    struct reg_txn_state *st = t->state;
    int rc;

    st->doc = serialize_cached(t->next, t->nnext);
    if (!st->doc)
        return -ENOMEM;
    rc = services_path(st->path, sizeof(st->path));
    if (rc < 0)
        return rc;
    rmark_sha256(st->doc, strlen(st->doc), st->sha);
    /* A batch sealed earlier whose abort mark could not be sealed comes first. */
    if (g_unaborted[0]) {
        rc = regseal_abort(g_cfg->state_dir, g_unaborted, g_sha, "applying the change failed",
                           t->who);
        if (rc < 0) {
            st->sealfail = true;
            return rc == -ENOSPC ? rc : -EIO;
        }
        g_unaborted[0] = '\0';
    }
    /* Sealed before anything goes live: acknowledged means audited, and a crash after this
     * point is completed as an abort by the next mount. */
    rc = seal_batch(st->ops, st->nops, st->ts, st->sha);
    if (rc < 0)
        st->sealfail = true;
    return rc;
}

int reg_txn_save(struct reg_txn *t)
{
    struct reg_txn_state *st = t->state;
    int rc = state_write_atomic(st->path, st->doc, strlen(st->doc), 0600);

    if (rc < 0) {
        syslog(LOG_ERR, "registry: writing services.json failed: %s", strerror(-rc));
        return rc;
    }
    memcpy(g_sha, st->sha, sizeof(g_sha));
    return 0;
}

void reg_txn_abort(struct reg_txn *t, int rc)
{
    char why[128];

    snprintf(why, sizeof(why), "applying the change failed: %s", strerror(-rc));
    if (regseal_abort(g_cfg->state_dir, t->state->sha, g_sha, why, t->who) < 0) {
        syslog(LOG_ERR, "registry: the abort mark of a failed change could not be sealed; "
               "the next change or mount seals it");
        memcpy(g_unaborted, t->state->sha, sizeof(g_unaborted));
    }
}

/* Commit next (ops[0..n) applied to the current registry, stamped ts) with the pipeline's
 * commit step, or without a pipeline by sealing and saving it; publish it when that succeeds.
 * Called with mut_lock held. *sealfail is set when sealing failed. 0 or -errno. */
static int commit(struct reg_snapshot *next, struct op **ops, size_t n, const char *ts,
                  const char *who, bool *sealfail)
{
    struct reg_txn_state st = { .ops = ops, .nops = n, .ts = ts };
    struct reg_txn t = { .cur = g_cur->svcs, .ncur = g_cur->n, .next = next->svcs,
                         .nnext = next->n, .who = who, .state = &st };
    int rc;

    if (g_pipe && g_pipe->commit) {
        rc = g_pipe->commit(&t);
    } else {
        rc = reg_txn_seal(&t);
        if (rc == 0 && (rc = reg_txn_save(&t)) < 0)
            reg_txn_abort(&t, rc);
    }
    *sealfail = st.sealfail;
    free(st.doc);
    if (rc == 0)
        snap_publish(next);
    return rc;
}

/* After a mutation, with mut_lock released: the pipeline's flush (the audit lines it queued). */
static void after_mutation(void)
{
    if (g_pipe && g_pipe->flush)
        g_pipe->flush();
}

/* A private copy of the current registry with room for extra more records: its pointers,
 * each record shared until rec_mut copies it. */
static struct reg_snapshot *snap_copy(size_t extra)
{
    struct reg_snapshot *next = snap_new(g_cur->n + extra);

    if (!next)
        return NULL;
    for (size_t i = 0; i < g_cur->n; i++)
        next->svcs[i] = rec_ref(g_cur->svcs[i]);
    next->n = g_cur->n;
    return next;
}

/* -EINVAL with the validator's reason in why when bad (a validator's nonzero result), else 0. */
static int by_validator(int bad, char *why, size_t whylen)
{
    if (!bad)
        return 0;
    snprintf(why, whylen, "%s", val_reason());
    return -EINVAL;
}

/* Validate value for attr of record idx of next (a snapshot not yet published) and write it
 * into that record (copied first when shared). 0, -EINVAL, -EEXIST, -EFBIG or -ENOMEM. */
static int apply_attr(struct reg_snapshot *next, ssize_t idx, enum reg_attr attr,
                      const char *value, char *why, size_t whylen)
{
    const struct reg_service *const *svcs = next->svcs;
    struct reg_service *s = rec_mut(next, (size_t)idx);
    struct val_upstream ups[VAL_UPSTREAMS_MAX];
    size_t nups = 0, size = 0;
    char canon[VAL_MONITORING_MAX];
    const char *store = value;
    char *field;
    ssize_t other;
    int rc = 0;

    if (!s)
        return -ENOMEM;
    /* Each attribute's checks; the value (or its canonical form) is stored below. */
    switch (attr) {
    case REG_UPSTREAM:
        if (value[0] == '\0')
            break;
        if (strlen(value) >= sizeof(s->upstream)) {
            snprintf(why, whylen, "the upstream list is longer than %d bytes",
                     REG_UPSTREAM_MAX - 1);
            return -EFBIG;
        }
        if ((rc = by_validator(val_upstreams(value, ups, &nups), why, whylen)) < 0)
            return rc;
        if (strcmp(s->mode, "dns") == 0 && regrec_any_hostname(ups, nups))
            return cu_errf(-EINVAL, why, whylen,
                           "a dns-mode service needs an IP address, not a hostname");
        if (s->domain[0] == '\0')
            return cu_errf(-EINVAL, why, whylen, "the service has no domain yet, as its "
                           "default domain is taken: write its domain first");
        break;
    case REG_DOMAIN:
        rc = by_validator(val_domain(value, g_cfg->suffixes_ptr, g_cfg->nsuffixes), why, whylen);
        if (rc < 0)
            return rc;
        other = strcmp(value, s->domain) ? regrec_domain_user(svcs, next->n, value, idx) : -1;
        if (other >= 0)
            return cu_errf(-EEXIST, why, whylen, "%s is the domain of service %s", value,
                           svcs[other]->name);
        break;
    case REG_HEALTH_CHECK:
        rc = by_validator(val_health_check(value), why, whylen);
        break;
    case REG_MODE:
        if ((rc = by_validator(val_mode(value), why, whylen)) < 0)
            return rc;
        if (strcmp(value, "dns") == 0 &&
            (val_upstreams(s->upstream, ups, &nups) || regrec_any_hostname(ups, nups)))
            return cu_errf(-EINVAL, why, whylen,
                           "dns mode needs an upstream at an IP address, not a hostname");
        break;
    case REG_MONITORING:
        rc = by_validator(val_monitoring(value, canon, sizeof(canon)), why, whylen);
        store = canon;
        break;
    case REG_LB_POLICY:
        rc = by_validator(val_lb_policy(value), why, whylen);
        break;
    default:
        return -EINVAL;
    }
    if (rc < 0)
        return rc;
    field = regrec_attr_field(s, attr, &size);
    if (set_field(field, size, store) < 0)
        return cu_errf(-EINVAL, why, whylen, "the value is too long");
    return 0;
}

/* ---- group commit ----
 * A mutation is queued as an op. The first caller that finds no batch in flight becomes the
 * leader: it takes the registry lock, applies every queued op in order to one next registry
 * (each op validated against the ops before it), and commits them with one render, one proxy
 * reload and one services.json write, after sealing the batch's audit entries in one
 * transaction. Callers that queue while a batch commits form the next batch. Each caller returns
 * once the commit that covers its op is sealed and durable. If a batch of several ops fails to
 * commit, its ops are retried one by one, so only the op that breaks the commit fails (a batch
 * whose entries cannot be sealed fails whole). */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct op *q_head, **q_tail = &q_head;
static bool q_leader;

/* The domain a service called name gets when none is given: its default, or "" when that is
 * taken by another live record of svcs[0..n) than skip (or invalid). */
static void default_domain(const struct reg_service *const *svcs, size_t n, ssize_t skip,
                           const char *name, char *buf, size_t len)
{
    if (reg_attr_default(g_cfg, name, REG_DOMAIN, buf, len) < 0 ||
        val_domain(buf, g_cfg->suffixes_ptr, g_cfg->nsuffixes) ||
        domain_taken(svcs, n, buf, skip))
        buf[0] = '\0';
}

/* OP_APPLY: make or replace service o->name with every attribute of o->values as one change,
 * validated as one (each value as a write of it would be, then against each other: a dns-mode
 * service's upstream is an address; upstream needs a domain). 1, 0 (nothing changed), -errno
 * with o->why filled (next unchanged). */
static int apply_whole(struct reg_snapshot *next, struct op *o, ssize_t i, const char *ts)
{
    static const enum reg_attr order[] = { REG_DOMAIN, REG_HEALTH_CHECK, REG_MODE,
                                           REG_MONITORING, REG_LB_POLICY, REG_UPSTREAM };
    struct reg_service before, *s;
    char value[REG_VALUE_MAX], why[200];
    int rc = 0;

    o->existed = i >= 0;
    o->changed = 0;
    if (i < 0) {
        s = rec_append(next);
        if (!s) {
            snprintf(o->why, sizeof(o->why), "%s", strerror(ENOMEM));
            return -ENOMEM;
        }
        i = (ssize_t)next->n - 1;
        set_field(s->name, sizeof(s->name), o->name);
        set_field(s->registered_at, sizeof(s->registered_at), ts);
    }
    s = rec_mut(next, (size_t)i);
    if (!s) {
        snprintf(o->why, sizeof(o->why), "%s", strerror(ENOMEM));
        return -ENOMEM;
    }
    before = *s;
    /* start from the defaults: what the document leaves out is reset */
    s->upstream[0] = '\0';
    s->domain[0] = '\0';
    reg_attr_default(g_cfg, o->name, REG_HEALTH_CHECK, s->health_check,
                     sizeof(s->health_check));
    reg_attr_default(g_cfg, o->name, REG_MODE, s->mode, sizeof(s->mode));
    reg_attr_default(g_cfg, o->name, REG_MONITORING, s->monitoring, sizeof(s->monitoring));
    reg_attr_default(g_cfg, o->name, REG_LB_POLICY, s->lb_policy, sizeof(s->lb_policy));
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]) && rc == 0; k++) {
        enum reg_attr a = order[k];

        why[0] = '\0';
        if (o->values[a]) {
            rc = apply_attr(next, i, a, o->values[a], why, sizeof(why));
        } else if (a == REG_DOMAIN) {
            default_domain(next->svcs, next->n, i, o->name, s->domain, sizeof(s->domain));
        }
        if (rc < 0)
            snprintf(o->why, sizeof(o->why), "%s: %s", reg_attr_name(a),
                     why[0] ? why : strerror(-rc));
    }
    if (rc < 0) {
        if (o->existed)
            *s = before;
        else
            rec_pop(next);
        return rc;
    }
    s->status = s->upstream[0] ? REG_ACTIVE : REG_PENDING;
    if (!o->existed) {
        /* the registration carries the final domain; the rest differ from the defaults */
        set_field(o->domain, sizeof(o->domain), s->domain);
        set_field(before.domain, sizeof(before.domain), s->domain);
        reg_attr_default(g_cfg, o->name, REG_HEALTH_CHECK, before.health_check,
                         sizeof(before.health_check));
        reg_attr_default(g_cfg, o->name, REG_MODE, before.mode, sizeof(before.mode));
        reg_attr_default(g_cfg, o->name, REG_MONITORING, before.monitoring,
                         sizeof(before.monitoring));
        reg_attr_default(g_cfg, o->name, REG_LB_POLICY, before.lb_policy,
                         sizeof(before.lb_policy));
    }
    for (int a = 0; a < REG_NATTR; a++) {
        snprintf(value, sizeof(value), "%s", reg_attr_value(&before, a));
        if (strcmp(value, reg_attr_value(s, a)) == 0)
            continue;
        o->changed |= 1u << a;
        snprintf(o->olds[a], sizeof(o->olds[a]), "%s", value);
        snprintf(o->nows[a], sizeof(o->nows[a]), "%s", reg_attr_value(s, a));
    }
    return o->existed && o->changed == 0 ? 0 : 1;
}

/* Apply op to next (which has room for one more record) at time ts. 1 when it changed next, 0
 * for a no-op, or -errno (next unchanged). */
static int apply_op(struct reg_snapshot *next, struct op *o, const char *ts)
{
    ssize_t i = regrec_find_live(next->svcs, next->n, o->name);
    struct reg_service *s;

    switch (o->kind) {
    case OP_APPLY:
        return apply_whole(next, o, i, ts);
    case OP_REGISTER:
        if (i >= 0) {
            snprintf(o->why, sizeof(o->why), "a service called %s is registered", o->name);
            return -EEXIST;
        }
        /* A default domain that is taken (or invalid) is no reason to refuse the name: the
         * service then has no domain, and no route, DNS name or leaf, until one is written. */
        default_domain(next->svcs, next->n, -1, o->name, o->domain, sizeof(o->domain));
        s = rec_append(next);
        if (!s)
            return -ENOMEM;
        set_field(s->name, sizeof(s->name), o->name);
        set_field(s->domain, sizeof(s->domain), o->domain);
        reg_attr_default(g_cfg, o->name, REG_HEALTH_CHECK, s->health_check,
                         sizeof(s->health_check));
        reg_attr_default(g_cfg, o->name, REG_MODE, s->mode, sizeof(s->mode));
        reg_attr_default(g_cfg, o->name, REG_MONITORING, s->monitoring, sizeof(s->monitoring));
        reg_attr_default(g_cfg, o->name, REG_LB_POLICY, s->lb_policy, sizeof(s->lb_policy));
        s->status = REG_PENDING;
        set_field(s->registered_at, sizeof(s->registered_at), ts);
        return 1;
    case OP_DEREGISTER:
        if (i < 0)
            return -ENOENT;
        s = rec_mut(next, (size_t)i);
        if (!s)
            return -ENOMEM;
        s->status = REG_INACTIVE;
        set_field(s->deregistered_at, sizeof(s->deregistered_at), ts);
        set_field(o->domain, sizeof(o->domain), s->domain);
        return 1;
    case OP_SET: {
        int rc;

        if (i < 0)
            return -ENOENT;
        snprintf(o->old, sizeof(o->old), "%s", reg_attr_value(next->svcs[i], o->attr));
        rc = apply_attr(next, i, o->attr, o->value, o->why, sizeof(o->why));
        if (rc < 0)
            return rc;
        s = rec_mut(next, (size_t)i);       /* apply_attr made it private */
        snprintf(o->now, sizeof(o->now), "%s", reg_attr_value(s, o->attr));
        if (strcmp(o->old, o->now) == 0)
            return 0;           /* writing the current value again is a no-op */
        s->status = s->upstream[0] ? REG_ACTIVE : REG_PENDING;
        return 1;
    }
    }
    return -EINVAL;
}

/* Apply ops[0..n) to a copy of the current registry and commit the ones that changed it.
 * Sets each op's rc. Called with mut_lock held. */
static void commit_batch(struct op **ops, size_t n)
{
    struct reg_snapshot *next = snap_copy(n);
    const char *who = NULL;
    size_t changed = 0;
    bool sealfail;
    char ts[32];
    int rc;

    if (!next) {
        for (size_t i = 0; i < n; i++)
            ops[i]->rc = -ENOMEM;
        return;
    }
    /* one time for the batch: registered_at and deregistered_at are its entries' timestamp */
    state_now_iso(ts, sizeof(ts));
    for (size_t i = 0; i < n; i++) {
        ops[i]->rc = apply_op(next, ops[i], ts);
        if (ops[i]->rc == 1) {
            changed++;
            who = who ? who : ops[i]->who;
        }
    }
    if (changed == 0) {
        snap_free(next);
        return;
    }
    rc = regseal_reserve_ensure(g_cfg->state_dir);
    if (rc < 0) {
        snap_free(next);
        for (size_t i = 0; i < n; i++)
            if (ops[i]->rc == 1)
                ops[i]->rc = rc;
        return;
    }
    rc = commit(next, ops, n, ts, who, &sealfail);
    if (rc == 0)
        return;                 /* next is published */
    snap_free(next);
    if (changed == 1 || sealfail) {
        for (size_t i = 0; i < n; i++)
            if (ops[i]->rc == 1)
                ops[i]->rc = rc;
        return;
    }
    /* find the culprit: commit the changing ops one at a time */
    for (size_t i = 0; i < n; i++)
        if (ops[i]->rc == 1)
            commit_batch(&ops[i], 1);
}

/* Queue op, and return once a commit has settled it. */
static int run_op(struct op *o)
{
    struct op *batch[64];
    size_t n;

    o->done = false;
    o->next = NULL;
    pthread_mutex_lock(&q_lock);
    *q_tail = o;
    q_tail = &o->next;
    while (!o->done && q_leader)
        pthread_cond_wait(&q_cond, &q_lock);
    while (!o->done) {
        /* lead: take up to 64 queued ops as one batch */
        q_leader = true;
        for (n = 0; q_head && n < sizeof(batch) / sizeof(batch[0]); n++) {
            batch[n] = q_head;
            q_head = q_head->next;
        }
        if (!q_head)
            q_tail = &q_head;
        pthread_mutex_unlock(&q_lock);
        pthread_mutex_lock(&mut_lock);
        commit_batch(batch, n);
        pthread_mutex_unlock(&mut_lock);
        pthread_mutex_lock(&q_lock);
        for (size_t i = 0; i < n; i++)
            batch[i]->done = true;
        q_leader = false;
        pthread_cond_broadcast(&q_cond);
        /* our op may still be queued behind a full batch: lead again, or wait for a leader */
        while (!o->done && q_leader)
            pthread_cond_wait(&q_cond, &q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    return o->rc;
}

/* Whether rc refuses a change for what it asked (rather than failing to make it). */
static bool is_refusal(int rc)
{
    return rc == -EINVAL || rc == -EEXIST || rc == -EFBIG;
}

int reg_register(const char *name, const char *who)
{
    struct op o = { .kind = OP_REGISTER, .name = name, .who = who };
    int rc;

    if (val_name(name)) {
        refuse("service_register", name, -1, who, -EINVAL, val_reason());
        return -EINVAL;
    }
    rc = run_op(&o);
    if (rc == 1)
        rc = 0;                 /* committed, its entry sealed by the batch */
    after_mutation();
    if (is_refusal(rc))
        refuse("service_register", name, -1, who, rc, o.why);
    return rc;
}

void reg_refuse(const char *name, int attr, const char *who, int rc, const char *reason)
{
    refuse(attr >= 0 ? "service_update" : "service_register", name, attr, who, rc, reason);
}

int reg_apply(const char *name, const char *const values[REG_NATTR], const char *who)
{
    struct op *o = calloc(1, sizeof(*o));
    int rc;

    if (!o)
        return -ENOMEM;
    o->kind = OP_APPLY;
    o->name = name;
    o->values = values;
    o->who = who;
    if (val_name(name)) {
        refuse("service_register", name, -1, who, -EINVAL, val_reason());
        rc = -EINVAL;
        goto out;
    }
    o->existed = true;
    rc = run_op(o);
    if (rc == 1)
        rc = 0;
    after_mutation();
    if (is_refusal(rc))
        refuse(o->existed ? "service_update" : "service_register", name, -1, who, rc, o->why);
out:
    free(o);
    return rc;
}

int reg_apply_json(const char *buf, size_t len, const char *who)
{
    const char *values[REG_NATTR] = {0}, *name = NULL, *key, *why = NULL;
    char *mon = NULL, label[80];
    json_error_t jerr;
    json_t *root = NULL, *v;
    int rc = -EINVAL;

    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > REG_APPLY_MAX) {
        refuse("service_register", ".apply", -1, who, -EFBIG, "the document is longer than "
               "16 KiB");
        return -EFBIG;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        why = "not a JSON object, or one with a key twice";
        goto out;
    }
    name = json_string_value(json_object_get(root, "name"));
    if (!name) {
        why = "no \"name\"";
        goto out;
    }
    json_object_foreach(root, key, v) {
        int a = reg_attr_from_name(key);

        if (strcmp(key, "name") == 0)
            continue;
        if (a < 0) {
            snprintf(label, sizeof(label), "unknown key \"%.40s\"", key);
            why = label;
            goto out;
        }
        if (a == REG_MONITORING && json_is_object(v)) {
            mon = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            values[a] = mon;
        } else {
            values[a] = json_string_value(v);
        }
        if (!values[a] || strlen(values[a]) > VAL_VALUE_MAX) {
            snprintf(label, sizeof(label), "%s: not a string of at most 4096 bytes%s", key,
                     a == REG_MONITORING ? " or an object" : "");
            why = label;
            goto out;
        }
    }
    rc = reg_apply(name, values, who);
out:
    if (why) {
        struct reg_snapshot *snap = reg_snapshot_get();
        bool ok = name && val_name(name) == 0;
        bool live = ok && reg_snapshot_find(snap, name);

        reg_snapshot_put(snap);
        refuse(live ? "service_update" : "service_register", name ? name : ".apply", -1, who,
               rc, why);
    }
    free(mon);
    json_decref(root);
    return rc;
}

int reg_deregister(const char *name, const char *who)
{
    struct op o = { .kind = OP_DEREGISTER, .name = name, .who = who };
    int rc = run_op(&o);

    if (rc == 1)
        rc = 0;
    after_mutation();
    return rc;
}

/* Set attr of name to the NUL-free, newline-stripped value. */
static int set_value(const char *name, enum reg_attr attr, const char *value, const char *who)
{
    struct op o = { .kind = OP_SET, .name = name, .attr = attr, .value = value, .who = who };
    int rc = run_op(&o);

    if (rc == 1)
        rc = 0;
    after_mutation();
    if (is_refusal(rc))
        refuse("service_update", name, (int)attr, who, rc, o.why);
    return rc;
}

int reg_set(const char *name, enum reg_attr attr, const char *buf, size_t len, const char *who)
{
    char value[VAL_VALUE_MAX + 1];

    if ((unsigned)attr >= REG_NATTR)
        return -EINVAL;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > VAL_VALUE_MAX) {
        refuse("service_update", name, (int)attr, who, -EFBIG, "the value is longer than 4096 "
               "bytes");
        return -EFBIG;
    }
    if (memchr(buf, '\0', len)) {
        refuse("service_update", name, (int)attr, who, -EINVAL, "the value holds a NUL byte");
        return -EINVAL;
    }
    memcpy(value, buf, len);
    value[len] = '\0';
    return set_value(name, attr, value, who);
}

int reg_reset(const char *name, enum reg_attr attr, const char *who)
{
    char value[VAL_MONITORING_MAX];

    if ((unsigned)attr >= REG_NATTR || reg_attr_default(g_cfg, name, attr, value, sizeof(value)))
        return -EINVAL;
    return set_value(name, attr, value, who);
}

int reg_with_lock(int (*fn)(void *arg), void *arg)
{
    int rc;

    pthread_mutex_lock(&mut_lock);
    rc = fn(arg);
    pthread_mutex_unlock(&mut_lock);
    return rc;
}

int reg_open(const struct cfs_config *cfg, char *err, size_t errlen)
{
    char path[PATH_MAX], aside[PATH_MAX], why[256];
    char *doc = NULL;
    size_t len = 0;
    struct reg_service *svcs = NULL;
    size_t n = 0;
    struct rmark mark;
    bool fresh = false, reset = false;
    int rc;

    g_cfg = cfg;
    g_unaborted[0] = '\0';
    rc = services_path(path, sizeof(path));
    if (rc < 0) {
        snprintf(err, errlen, "state directory path too long");
        return rc;
    }
    rc = rmark_last(cfg->state_dir, &mark);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s/audit.log: %s", cfg->state_dir, strerror(-rc));
        return rc;
    }
    rc = state_read_file(path, &doc, &len);
    if (rc == -ENOENT) {
        char esha[RMARK_SHA_HEX];
        bool live;

        if (reg_empty_sha(esha) < 0)
            return -ENOMEM;
        /* A missing registry is a fresh start only when nothing says services were live. */
        live = mark.found ? strcmp(mark.sha256, esha) != 0
                          : mark.legacy_services || regseal_tls_has_leaves(cfg);
        if (live && !cfg->empty_registry) {
            snprintf(err, errlen, "%s is missing but the audit trail shows registered services; "
                     "refusing to mount. Rebuild it with `conduitfs recover --state %s`, or mount "
                     "with --empty-registry to start with none", path, cfg->state_dir);
            return -ENOENT;
        }
        fresh = true;
        reset = live || (mark.found && cfg->empty_registry && strcmp(mark.sha256, esha) != 0);
    } else if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    } else {
        rc = reg_parse(doc, len, cfg, &svcs, &n, why, sizeof(why));
        if (rc < 0) {
            /* a failed copy leaves aside "", which the message below says */
            (void)state_keep_corrupt(path, doc, len, aside, sizeof(aside));
            snprintf(err, errlen, "%s is corrupt (%s); refusing to mount. Copy kept at %s; "
                     "restore a backup or move the file away", path, why,
                     aside[0] ? aside : "(none: copy failed)");
            goto out;
        }
        rmark_sha256(doc, len, g_sha);
    }
    g_cur = snap_new(n);
    if (!g_cur) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct reg_service *r = rec_append(g_cur);

        if (!r) {
            rc = -ENOMEM;
            goto out;
        }
        *r = svcs[i];
    }
    rc = g_pipe && g_pipe->open ? g_pipe->open(cfg) : 0;
    if (rc < 0) {
        snprintf(err, errlen, "cannot create config directories: %s", strerror(-rc));
        goto out;
    }
    rc = g_pipe && g_pipe->rerender ? g_pipe->rerender() : 0;
    /* A full disk: the reserve is what it is kept for. The next change makes it again. */
    if (rc == -ENOSPC && regseal_reserve_release(cfg->state_dir, "render the configs at mount"))
        rc = g_pipe->rerender();
    if (rc < 0) {
        snprintf(err, errlen, "cannot render configs from %s: %s", path, strerror(-rc));
        goto out;
    }
    if (fresh) {
        char *empty = reg_serialize(NULL, 0);

        rc = empty ? state_write_atomic(path, empty, strlen(empty), 0600) : -ENOMEM;
        if (rc == 0)
            rmark_sha256(empty, strlen(empty), g_sha);
        free(empty);
        if (rc < 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
            goto out;
        }
    }
    rc = regseal_settle(cfg->state_dir, &mark, g_sha, path, n, reset, err, errlen);
    if (rc < 0)
        goto out;
    /* The reserve exists from the first mount on; without space it is made by a later change. */
    if (regseal_reserve_ensure(cfg->state_dir) < 0)
        syslog(LOG_WARNING, "registry: cannot make the space reserve in %s (%s); changes fail "
               "with ENOSPC until there is space", cfg->state_dir, strerror(ENOSPC));
out:
    free(doc);
    free(svcs);
    if (rc < 0 && g_cur) {
        snap_free(g_cur);
        g_cur = NULL;
    }
    return rc;
}

void reg_close(void)
{
    pthread_mutex_lock(&mut_lock);
    texts_reset();
    pthread_mutex_unlock(&mut_lock);
    snap_publish(NULL);
}
