/* replay.c: services.json rebuilt from the audit chain, and checked against it. Every committed
 * registry change is a batch of service_* entries whose last one carries a registry mark (the
 * SHA-256 of the services.json it committed, see regmark.h); replaying the successful entries
 * in sequence order, undoing a batch a registry_abort mark cancels, gives that file back byte
 * for byte: records in file order, registered_at and deregistered_at from the entries'
 * timestamps, defaults as a registration sets them. */
#include "core/replay.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/store.h"
#include "core/registry.h"
#include "core/regjson.h"
#include "core/regmark.h"
#include "core/statefile.h"

#define UNDO_MAX 4096           /* records one batch may touch and still be undone */

/* One record as it was before the open batch changed it. */
struct undo {
    size_t idx;
    bool appended;              /* the batch added it: undo removes it */
    struct reg_service old;
};

struct replay {
    struct reg_service *svcs;
    size_t n, cap;
    struct undo *undo;          /* the changes of the newest batch, in order */
    size_t nundo;
    bool undo_lost;             /* more than UNDO_MAX: that batch cannot be undone */
    bool closed;                /* the newest batch has its mark: the next entry starts one */
    bool have_mark;
    char sha[RMARK_SHA_HEX];    /* the newest mark's services.json */
    char empty_sha[RMARK_SHA_HEX];
    long long bad_seq;          /* the first entry the replay could not follow, or -1 */
    char why[256];
};

static void fail_at(struct replay *r, long long seq, const char *fmt, const char *arg)
{
    char msg[200];

    if (r->bad_seq >= 0)
        return;
    r->bad_seq = seq;
    snprintf(msg, sizeof(msg), fmt, arg);
    snprintf(r->why, sizeof(r->why), "sequence %lld: %s", seq, msg);
}

static ssize_t live_index(const struct replay *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->svcs[i].status != REG_INACTIVE && strcmp(r->svcs[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Copy src into a fixed field; false when it does not fit. */
static bool put(char *dst, size_t len, const char *src)
{
    return src && snprintf(dst, len, "%s", src) < (int)len;
}

/* Remember record idx before the open batch changes it. -ENOMEM or 0. */
static int remember(struct replay *r, size_t idx, bool appended)
{
    struct undo *u;

    if (r->nundo == UNDO_MAX) {
        r->undo_lost = true;
        return 0;
    }
    if (!r->undo && !(r->undo = calloc(UNDO_MAX, sizeof(*r->undo))))
        return -ENOMEM;
    u = &r->undo[r->nundo++];
    u->idx = idx;
    u->appended = appended;
    if (!appended)
        u->old = r->svcs[idx];
    return 0;
}

/* Apply one successful service_* entry. 0, or -ENOMEM; an entry that cannot apply is noted. */
static int apply(struct replay *r, long long seq, const char *action, const char *ts,
                 const json_t *d)
{
    const char *name = json_string_value(json_object_get(d, "name"));
    ssize_t i = name ? live_index(r, name) : -1;
    struct reg_service *s;

    if (!name) {
        fail_at(r, seq, "%s without a service name", action);
        return 0;
    }
    if (strcmp(action, "service_register") == 0) {
        if (i >= 0) {
            fail_at(r, seq, "%s registered again while live", name);
            return 0;
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 64;
            struct reg_service *ns = realloc(r->svcs, cap * sizeof(*ns));

            if (!ns)
                return -ENOMEM;
            r->svcs = ns;
            r->cap = cap;
        }
        if (remember(r, r->n, true) < 0)
            return -ENOMEM;
        s = &r->svcs[r->n++];
        memset(s, 0, sizeof(*s));
        if (!put(s->name, sizeof(s->name), name) ||
            !put(s->domain, sizeof(s->domain), json_string_value(json_object_get(d, "domain"))) ||
            !put(s->registered_at, sizeof(s->registered_at), ts))
            fail_at(r, seq, "registration of %s without a valid domain or time", name);
        /* the defaults of a new record; only the domain's depends on the mount's options */
        reg_attr_default(NULL, name, REG_HEALTH_CHECK, s->health_check, sizeof(s->health_check));
        reg_attr_default(NULL, name, REG_MODE, s->mode, sizeof(s->mode));
        reg_attr_default(NULL, name, REG_MONITORING, s->monitoring, sizeof(s->monitoring));
        reg_attr_default(NULL, name, REG_LB_POLICY, s->lb_policy, sizeof(s->lb_policy));
        s->status = REG_PENDING;
        return 0;
    }
    if (i < 0) {
        fail_at(r, seq, "%s changes a service that is not registered", name);
        return 0;
    }
    if (remember(r, (size_t)i, false) < 0)
        return -ENOMEM;
    s = &r->svcs[i];
    if (strcmp(action, "service_deregister") == 0) {
        s->status = REG_INACTIVE;
        if (!put(s->deregistered_at, sizeof(s->deregistered_at), ts))
            fail_at(r, seq, "deregistration of %s without a valid time", name);
        return 0;
    }
    {
        const char *attr = json_string_value(json_object_get(d, "attribute"));
        const char *val = json_string_value(json_object_get(d, "new"));
        int a = attr ? reg_attr_from_name(attr) : -1;
        size_t len = 0;
        char *dst = regrec_attr_field(s, a, &len);

        if (!dst || !put(dst, len, val)) {
            fail_at(r, seq, "an update of %s without a valid attribute and value", name);
            return 0;
        }
        s->status = s->upstream[0] ? REG_ACTIVE : REG_PENDING;
    }
    return 0;
}

/* Undo the newest batch. false when it cannot be undone. */
static bool undo_batch(struct replay *r)
{
    if (r->undo_lost)
        return false;
    for (size_t k = r->nundo; k-- > 0;) {
        const struct undo *u = &r->undo[k];

        if (u->appended)
            r->n = u->idx;
        else
            r->svcs[u->idx] = u->old;
    }
    r->nundo = 0;
    return true;
}

/* The SHA-256 of the services.json the model serializes to, into sha. 0 or -ENOMEM. */
static int model_sha(const struct replay *r, char sha[RMARK_SHA_HEX])
{
    char *doc = reg_serialize(r->svcs, r->n);

    if (!doc)
        return -ENOMEM;
    rmark_sha256(doc, strlen(doc), sha);
    free(doc);
    return 0;
}

/* Start a new mark: the newest batch is closed. */
static void set_mark(struct replay *r, long long seq, const char *sha, const char *prev)
{
    if (r->have_mark && strcmp(prev, r->sha) != 0)
        fail_at(r, seq, "a registry mark that does not follow the previous one (%s)", prev);
    memcpy(r->sha, sha, RMARK_SHA_HEX);
    r->have_mark = true;
    r->closed = true;
}

static int on_entry(long long seq, const json_t *e, void *arg)
{
    struct replay *r = arg;
    const char *action = json_string_value(json_object_get(e, "action"));
    const char *status = json_string_value(json_object_get(e, "status"));
    const char *ts = json_string_value(json_object_get(e, "timestamp"));
    const json_t *d = json_object_get(e, "details");
    char sha[RMARK_SHA_HEX], prev[RMARK_SHA_HEX], now[RMARK_SHA_HEX];
    bool mark = rmark_of_details(d, sha, prev);
    int rc;

    if (!action || !status)
        return 0;
    if (strncmp(action, "service_", 8) == 0 && strcmp(status, "success") == 0 &&
        (strcmp(action, "service_register") == 0 || strcmp(action, "service_deregister") == 0 ||
         strcmp(action, "service_update") == 0)) {
        if (r->closed) {
            r->nundo = 0;
            r->undo_lost = false;
            r->closed = false;
        }
        rc = apply(r, seq, action, ts, d);
        if (rc < 0)
            return rc;
        if (mark)
            set_mark(r, seq, sha, prev);
    } else if (mark && strcmp(action, "registry_abort") == 0) {
        /* the newest batch never went live */
        if (!r->have_mark || strcmp(prev, r->sha) != 0 || !r->closed || !undo_batch(r))
            fail_at(r, seq, "%s that the replay cannot undo", action);
        r->have_mark = false;
        set_mark(r, seq, sha, prev);
    } else if (mark && strcmp(action, "registry_adopt") == 0) {
        /* services.json as a mount found it: empty (--empty-registry), or what the replay has */
        if (strcmp(sha, r->empty_sha) == 0) {
            r->n = 0;
        } else {
            rc = model_sha(r, now);
            if (rc < 0)
                return rc;
            if (strcmp(now, sha) != 0)
                fail_at(r, seq, "%s: services.json was changed outside conduitfs and adopted "
                        "as found; the chain cannot rebuild it", action);
        }
        r->have_mark = false;
        set_mark(r, seq, sha, prev);
        r->nundo = 0;
        r->undo_lost = true;    /* an adoption is never undone */
    }
    return 0;
}

int replay_chain(const char *state_dir, char **doc, size_t *nrec, size_t *nlive,
                 int *unverified, char *why, size_t whylen)
{
    struct replay r = { .bad_seq = -1 };
    struct audit_store *st = NULL;
    struct audit_verify_report rep;
    char err[512], sha[RMARK_SHA_HEX], *empty = reg_serialize(NULL, 0);
    int rc;

    *doc = NULL;
    *unverified = 0;
    if (!empty)
        return -ENOMEM;
    rmark_sha256(empty, strlen(empty), r.empty_sha);
    free(empty);
    rc = audit_store_open(state_dir, &(const struct audit_store_opts){
                              .hostname = "recover", .flags = AUDIT_STORE_READONLY },
                          &st, err, sizeof(err));
    if (rc < 0) {
        snprintf(why, whylen, "cannot open the audit chain: %s", err);
        goto out;
    }
    rc = audit_store_verify(st, &rep);
    if (rc < 0) {
        snprintf(why, whylen, "the audit chain does not verify: sequence %lld: %s",
                 rep.failed_seq, rep.reason);
        goto out;
    }
    rc = audit_store_foreach_result(st, on_entry, &r);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read the audit chain: %s", strerror(-rc));
        goto out;
    }
    if (r.bad_seq >= 0) {
        snprintf(why, whylen, "the audit chain does not explain the registry: %s", r.why);
        rc = -EBADMSG;
        goto out;
    }
    *doc = reg_serialize(r.svcs, r.n);
    if (!*doc) {
        rc = -ENOMEM;
        goto out;
    }
    rmark_sha256(*doc, strlen(*doc), sha);
    if (!r.have_mark) {
        *unverified = 1;
    } else if (strcmp(sha, r.sha) != 0) {
        snprintf(why, whylen, "the replayed registry (sha256 %.16s...) is not the one the "
                 "chain's newest registry mark records (%.16s...)", sha, r.sha);
        rc = -EBADMSG;
        free(*doc);
        *doc = NULL;
        goto out;
    }
    if (nrec)
        *nrec = r.n;
    if (nlive) {
        *nlive = 0;
        for (size_t i = 0; i < r.n; i++)
            *nlive += r.svcs[i].status != REG_INACTIVE;
    }
out:
    audit_store_close(st);
    free(r.svcs);
    free(r.undo);
    return rc;
}

int replay_check_registry(const char *state_dir, char *why, size_t whylen)
{
    char path[PATH_MAX], sha[RMARK_SHA_HEX];
    struct rmark m;
    char *doc = NULL;
    size_t len = 0;
    int rc;

    rc = rmark_last(state_dir, &m);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read %s/audit.log: %s", state_dir, strerror(-rc));
        return rc;
    }
    if (!m.found)
        return 0;               /* a chain from before registry marks: nothing to compare */
    rc = state_path(path, sizeof(path), state_dir, "services.json");
    if (rc == 0)
        rc = state_read_file(path, &doc, &len);
    if (rc == -ENOENT) {
        if (reg_empty_sha(sha) < 0)
            return -ENOMEM;
        if (strcmp(sha, m.sha256) == 0)
            return 0;
        snprintf(why, whylen, "services.json is missing, but the audit chain's last registry "
                 "change (%s at %s) left registered services; `conduitfs recover` rebuilds it",
                 m.action, m.timestamp);
        return -EBADMSG;
    }
    if (rc < 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    rmark_sha256(doc, len, sha);
    free(doc);
    if (strcmp(sha, m.sha256) == 0)
        return 0;
    /* sealed, not committed yet (a running daemon) or never (a crash): the mount settles it */
    if (strcmp(sha, m.previous) == 0 && strncmp(m.action, "service_", 8) == 0)
        return 0;
    snprintf(why, whylen, "services.json (sha256 %.16s...) is not the registry the audit "
             "chain's last registry change (%s at %s) left (sha256 %.16s...): it was changed "
             "outside conduitfs", sha, m.action, m.timestamp, m.sha256);
    return -EBADMSG;
}

/* ---- the commands ---- */

static int usage_error(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "conduitfs %s: %s%s (see conduitfs %s --help)\n", cmd, what, arg, cmd);
    return 2;
}

int replay_recover_main(int argc, char **argv)
{
    const char *state = NULL;
    char path[PATH_MAX], why[512], dir[PATH_MAX];
    char *doc = NULL;
    size_t nrec = 0, nlive = 0;
    int unverified = 0, rc, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: conduitfs recover --state DIR\n\n"
                   "Rebuilds a missing DIR/services.json from the audit chain by replaying its\n"
                   "service_register, service_deregister and service_update entries, and checks\n"
                   "the result against the chain's newest registry mark. Run it with the state\n"
                   "directory unmounted. Exits 0 when written, 1 when refused, 2 on usage "
                   "errors.\n");
            return 0;
        } else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            state = argv[++i];
        } else if (strncmp(argv[i], "--state=", 8) == 0) {
            state = argv[i] + 8;
        } else {
            return usage_error("recover", "unexpected argument ", argv[i]);
        }
    }
    if (!state || !*state)
        return usage_error("recover", "--state DIR is required", "");
    if (!realpath(state, dir)) {
        fprintf(stderr, "conduitfs recover: %s: %s\n", state, strerror(errno));
        return 1;
    }
    if (state_path(path, sizeof(path), dir, "services.json") < 0)
        return usage_error("recover", "state directory path too long", "");
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        fprintf(stderr, "conduitfs recover: %s exists; move it away first (recover never "
                "replaces a registry)\n", path);
        return 1;
    }
    rc = replay_chain(dir, &doc, &nrec, &nlive, &unverified, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "conduitfs recover: %s; nothing written\n", why);
        return 1;
    }
    rc = state_write_atomic(path, doc, strlen(doc), 0600);
    free(doc);
    if (rc < 0) {
        fprintf(stderr, "conduitfs recover: cannot write %s: %s\n", path, strerror(-rc));
        return 1;
    }
    printf("recovered %s: %zu services (%zu live)%s\n", path, nrec, nlive,
           unverified ? "; unverified: the chain holds no registry mark" :
                        ", as the chain's newest registry mark records it");
    return 0;
}

int replay_verify_main(int argc, char **argv)
{
    const char *state = NULL, *app = getenv("CONDUIT_APP_NAME"), *home = getenv("HOME");
    char dflt[PATH_MAX], why[512], path[PATH_MAX];
    bool pinned = false;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
            state = argv[++i];
        else if (strncmp(argv[i], "--state=", 8) == 0)
            state = argv[i] + 8;
        else if (strcmp(argv[i], "--pubkey") == 0)
            pinned = ++i < argc;
        else if (strncmp(argv[i], "--pubkey=", 9) == 0)
            pinned = true;
        else
            return audit_verify_main(argc, argv);   /* help and usage errors are its own */
    }
    if (!state) {
        if (!app || !*app)
            app = "qp-conduit";
        if (!home || !*home || snprintf(dflt, sizeof(dflt), "%s/.config/%s", home, app) >=
            (int)sizeof(dflt))
            return audit_verify_main(argc, argv);
        state = dflt;
    }
    /* An auditor's copy (--pubkey) may hold only capsules.db and audit.log: no registry to
     * check then. Without --pubkey a missing services.json is checked like any other. */
    if (pinned && (state_path(path, sizeof(path), state, "services.json") < 0 ||
                   access(path, F_OK) != 0))
        return audit_verify_main(argc, argv);
    rc = replay_check_registry(state, why, sizeof(why));
    if (rc == -EBADMSG) {
        fprintf(stderr, "conduitfs verify: %s\n", why);
        return 1;
    }
    return audit_verify_main(argc, argv);
}
