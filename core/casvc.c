/* casvc.c: the CA as a daemon service: opened at mount; the serving leaves of state/tls/serving
 * kept in step with the active domains (each leaf carries up to LEAFSET_NAMES_MAX names, and a
 * change reissues only the leaves whose names it changes, before the configs that use them are
 * applied); rotation; the content of the ca/ tree; and the renewal thread. Work that must be
 * ordered with registry mutations runs under the registry's lock (from its commit, or through
 * reg_with_lock); the audit lines it produces are queued and written once that lock is released.
 *
 * The proxy loads only the serving leaves. The per-domain pairs an older version left in
 * state/tls/<domain>/ serve nothing: the first check after a mount archives them.
 *
 * Over 800 lines, and one concern: the state of the CA service (the open CA, the leaf
 * assignment and its lock, the queued audit lines), which every part here reads or changes
 * under that lock. The X.509 and file work lives in ca.c and the files beside it, the
 * assignment's logic in leafset.c, and the trust texts in trust.c. */
#include "core/casvc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/ca.h"
#include "core/gateway.h"
#include "core/leafset.h"
#include "core/signer.h"
#include "core/statefile.h"
#include "core/trust.h"
#include "util/util.h"

#define RENEW_INTERVAL_SECS 3600

static const struct cfs_config *g_cfg;
static struct ca *g_ca;

/* The serving leaves: g_set says which names each carries; set_lock guards it (writers also
 * hold the registry lock; the ca/ tree's readers take only set_lock). */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leafset *g_set;
static char g_serving[PATH_MAX];    /* state/tls/serving */

/* An audit line queued under the registry lock, written by ca_service_flush. */
struct event {
    struct event *next;
    char action[16];
    char status[8];
    char user[64];                  /* "" for the daemon's own events */
    char message[768];
    json_t *details;
};

/* q_lock guards the queue of audit lines. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event *q_head;
static struct event **q_tail = &q_head;

/* The renewal thread: it sleeps on thr_tick, which ca_service_close stops to end it at once. */
static struct cu_ticker thr_tick;
static pthread_t thr;
static bool thr_running;

/* ---- audit lines ---- */

/* Queue one audit line (details is consumed). who NULL or "": the daemon's own event. */
static void queue_event(const char *action, const char *status, const char *message,
                        const char *who, json_t *details)
{
    struct event *e = calloc(1, sizeof(*e));

    if (!e) {
        syslog(LOG_ERR, "ca: out of memory: audit line %s dropped: %s", action, message);
        json_decref(details);
        return;
    }
    snprintf(e->action, sizeof(e->action), "%s", action);
    snprintf(e->status, sizeof(e->status), "%s", status);
    snprintf(e->user, sizeof(e->user), "%s", who ? who : "");
    snprintf(e->message, sizeof(e->message), "%s", message);
    e->details = details;
    pthread_mutex_lock(&q_lock);
    *q_tail = e;
    q_tail = &e->next;
    pthread_mutex_unlock(&q_lock);
}

void ca_service_flush(void)
{
    struct event *e, *next;
    int rc;

    pthread_mutex_lock(&q_lock);
    e = q_head;
    q_head = NULL;
    q_tail = &q_head;
    pthread_mutex_unlock(&q_lock);
    for (; e; e = next) {
        next = e->next;
        if (e->user[0])
            rc = audit_log(e->action, e->status, e->message, e->user, e->details);
        else
            rc = audit_log_event(e->action, e->status, e->message, e->details);
        if (rc < 0)
            syslog(LOG_ERR, "ca: audit line %s not written: %s", e->action, strerror(-rc));
        json_decref(e->details);
        free(e);
    }
}

/* Set key to the string val in obj when val is non-empty (a failed set is only a lost field). */
static void add_str(json_t *obj, const char *key, const char *val)
{
    if (obj && val && *val)
        json_object_set_new(obj, key, json_string(val));
}

/* ---- leaves ---- */

/* Whether s gets a leaf: an active service (a pending one costs none). */
static bool has_leaf(const struct reg_service *s)
{
    return s->status == REG_ACTIVE && s->domain[0] && s->upstream[0];
}

/* The record in svcs[0..n) that has a leaf for domain, or NULL. */
static const struct reg_service *leaf_domain(const struct reg_service *const *svcs, size_t n,
                                             const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (has_leaf(svcs[i]) && strcmp(svcs[i]->domain, domain) == 0)
            return svcs[i];
    return NULL;
}

/* The active service that owns domain in the current registry into name. 0 or -ENOENT. */
static int owner_of(const char *domain, char *name, size_t len)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *s = snap ? leaf_domain(snap->svcs, snap->n, domain) : NULL;
    int rc = s ? 0 : -ENOENT;

    if (s)
        snprintf(name, len, "%s", s->name);
    reg_snapshot_put(snap);
    return rc;
}

/* ---- serving leaves ---- */

/* What one pass over the dirty leaves is for, for its audit lines. */
struct pass {
    const char *action;             /* tls_issue, tls_renew, cert_rotate */
    const char *verb;               /* "Issued", "Renewed", "Rotated" */
    const char *reason;
    const char *domain;             /* the domain a rotation was asked for, or NULL */
    const char *who;
    size_t issued;                  /* out: leaves written */
    int rc;                         /* out: the first failure, or 0 */
};

/* state/tls/serving/leaf-<id>.pem into buf (PATH_MAX). 0 or -ENAMETOOLONG. */
static int leaf_file(unsigned id, char *buf)
{
    char name[32];

    snprintf(name, sizeof(name), "leaf-%04u.pem", id);
    return state_path(buf, PATH_MAX, g_serving, name);
}

/* The id in a leaf file name "leaf-<digits>.pem", or 0. */
static unsigned leaf_file_id(const char *name)
{
    unsigned long id;
    char *end;

    if (strncmp(name, "leaf-", 5) != 0 || name[5] < '0' || name[5] > '9')
        return 0;
    id = strtoul(name + 5, &end, 10);
    if (strcmp(end, ".pem") != 0 || id == 0 || id > 999999)
        return 0;
    return (unsigned)id;
}

/* A JSON array of names[0..n), or NULL. */
static json_t *name_array(const char *const *names, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* s (NULL: "") into buf. */
static void copy_str(char *buf, size_t len, const char *s)
{
    snprintf(buf, len, "%s", s ? s : "");
}

/* Up to three names of list[0..n) after prefix into buf ("" when n is 0). */
static void some_names(char *buf, size_t len, const char *prefix, const char *const *list,
                       size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 3 && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, " %s%s", prefix, list[i]);
    if (n > 3 && used < len)
        snprintf(buf + used, len - used, " (+%zu more)", n - 3);
}

/* Reissue (or, once empty, archive and drop) every dirty leaf, with set_lock held; one audit
 * line per leaf. A failed issuance leaves its leaf dirty: the next change or renewal pass
 * retries it. */
static void apply_dirty(struct pass *p)
{
    char path[PATH_MAX], prev[CA_SERIAL_HEX_MAX], serial[CA_SERIAL_HEX_MAX], err[256];
    char plus[320], minus[320], msg[1536], file[32];
    const char *const *names, *const *added, *const *removed;
    size_t n, nadd, nrem;
    json_t *d, *info;
    int rc;

    for (size_t i = 0; i < leafset_count(g_set);) {
        if (!leafset_dirty(g_set, i)) {
            i++;
            continue;
        }
        names = leafset_names(g_set, i, &n);
        leafset_changes(g_set, i, &added, &nadd, &removed, &nrem);
        snprintf(file, sizeof(file), "leaf-%04u.pem", leafset_id(g_set, i));
        some_names(plus, sizeof(plus), "+", added, nadd);
        some_names(minus, sizeof(minus), "-", removed, nrem);
        prev[0] = serial[0] = err[0] = '\0';
        info = NULL;
        rc = leaf_file(leafset_id(g_set, i), path);
        if (rc == 0 && ca_bundle_json(g_ca, path, names && n ? names[0] : "x", &info) == 0)
            copy_str(prev, sizeof(prev), json_string_value(json_object_get(info, "serial")));
        json_decref(info);
        d = json_object();
        add_str(d, "leaf", file);
        add_str(d, "domain", p->domain);
        if (n == 0) {
            /* No name left: archive the leaf and forget it. */
            rc = rc < 0 ? rc : ca_bundle_archive(g_ca, path);
            if (rc == -ENOENT)
                rc = 0;
            add_str(d, "serial", prev);
            json_object_set_new(d, "removed", name_array(removed, nrem));
            add_str(d, "error", rc < 0 ? strerror(-rc) : NULL);
            snprintf(msg, sizeof(msg), "%s serving leaf %s (no name left:%s)",
                     rc < 0 ? "Could not archive the" : "Archived the", file, minus);
            queue_event("tls_archive", rc < 0 ? "failure" : "success", msg, p->who, d);
            if (rc < 0) {
                syslog(LOG_ERR, "ca: archiving %s failed: %s", path, strerror(-rc));
                p->rc = p->rc ? p->rc : rc;
                i++;
                continue;
            }
            leafset_drop(g_set, i);
            continue;
        }
        if (rc == 0)
            rc = ca_issue_bundle(g_ca, path, names, n, g_cfg->leaf_days, serial, err,
                                 sizeof(err));
        if (rc < 0 && !err[0])
            snprintf(err, sizeof(err), "%s", strerror(-rc));
        add_str(d, "serial", serial);
        add_str(d, "previous_serial", prev);
        json_object_set_new(d, "name_count", json_integer((json_int_t)n));
        if (nadd)
            json_object_set_new(d, "added", name_array(added, nadd));
        if (nrem)
            json_object_set_new(d, "removed", name_array(removed, nrem));
        add_str(d, "reason", p->reason);
        add_str(d, "error", rc < 0 ? err : NULL);
        if (rc < 0) {
            syslog(LOG_ERR, "ca: serving leaf %s not issued: %s", file, err);
            snprintf(msg, sizeof(msg), "Serving leaf %s (%zu names:%s%s) not issued: %s", file,
                     n, plus, minus, err);
            p->rc = p->rc ? p->rc : rc;
            i++;
        } else {
            snprintf(msg, sizeof(msg), "%s serving leaf %s (%zu names%s%s%s)", p->verb, file,
                     n, nadd + nrem ? ":" : "", plus, minus);
            leafset_clean(g_set, i);
            p->issued++;
            i++;
        }
        queue_event(p->action, rc < 0 ? "failure" : "success", msg, p->who, d);
    }
}

/* The wanted names: the domains of the active services of svcs[0..n) (a pending service has
 * no leaf). *out is malloc'd (pointers into svcs); NULL with *nout 0 when there is none. 0 or
 * -ENOMEM. */
static int active_domains(const struct reg_service *const *svcs, size_t n, const char ***out,
                          size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    *out = malloc(n * sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (has_leaf(svcs[i]))
            (*out)[(*nout)++] = svcs[i]->domain;
    return 0;
}

/* Make the serving leaves carry exactly the active domains of svcs[0..n), reissuing only the
 * leaves that change; with check, also every leaf that is missing, invalid or expired. */
static void reconcile(const struct reg_service *const *svcs, size_t n, bool check,
                      const char *reason, const char *who)
{
    struct pass p = { .action = "tls_issue", .verb = "Issued", .reason = reason, .who = who };
    const char **want = NULL;
    char path[PATH_MAX];
    size_t nwant = 0, nn;
    int rc;

    rc = active_domains(svcs, n, &want, &nwant);
    pthread_mutex_lock(&set_lock);
    if (rc == 0)
        rc = leafset_plan(g_set, want, nwant);
    if (rc < 0)
        syslog(LOG_ERR, "ca: planning the serving leaves: %s", strerror(-rc));
    for (size_t i = 0; check && i < leafset_count(g_set); i++) {
        const char *const *names = leafset_names(g_set, i, &nn);

        if (!leafset_dirty(g_set, i) && nn && (leaf_file(leafset_id(g_set, i), path) < 0 ||
            ca_bundle_needs_renewal(g_ca, path, names, nn, 0) != 0))
            leafset_touch(g_set, i);
    }
    apply_dirty(&p);
    pthread_mutex_unlock(&set_lock);
    free(want);
}

/* Read the serving leaves back from state/tls/serving (when it exists): each file
 * leaf-<id>.pem carries the names of its certificate. An unreadable one is kept as an empty,
 * dirty leaf, so that the next reconcile archives it. 0 or -errno with a reason in err. */
static int serving_load(char *err, size_t errlen)
{
    char tls[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    char **names;
    size_t n;
    unsigned id;
    DIR *d;
    int rc;

    if (state_path(tls, sizeof(tls), g_cfg->state_dir, "tls") < 0 ||
        state_path(g_serving, sizeof(g_serving), tls, "serving") < 0) {
        snprintf(err, errlen, "internal CA: state directory path too long");
        return -ENAMETOOLONG;
    }
    g_set = leafset_new();
    if (!g_set) {
        snprintf(err, errlen, "internal CA: out of memory");
        return -ENOMEM;
    }
    rc = state_clean_temps(g_serving);
    d = rc == 0 ? opendir(g_serving) : NULL;
    if (!d && (rc < 0 ? rc : -errno) == -ENOENT)
        return 0;           /* created by the first check (serving_dir) */
    if (!d) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "internal CA: %s: %s", g_serving, strerror(-rc));
        return rc;
    }
    while ((de = readdir(d)) != NULL) {
        id = leaf_file_id(de->d_name);
        if (!id) {
            if (de->d_name[0] != '.')
                syslog(LOG_WARNING, "ca: %s/%s is not a serving leaf of conduitfs (the proxy "
                       "loads every .pem file there)", g_serving, de->d_name);
            continue;
        }
        names = NULL;
        n = 0;
        if (state_path(path, sizeof(path), g_serving, de->d_name) < 0 ||
            ca_bundle_names(g_ca, path, &names, &n) < 0)
            syslog(LOG_WARNING, "ca: %s is unreadable: it will be archived", de->d_name);
        rc = leafset_load(g_set, id, (const char *const *)names, n);
        if (rc == 0 && n == 0)
            leafset_touch(g_set, (size_t)leafset_index(g_set, id));
        ca_names_free(names, n);
        if (rc == -ENOMEM) {
            closedir(d);
            snprintf(err, errlen, "internal CA: out of memory");
            return rc;
        }
    }
    closedir(d);
    return 0;
}

/* Archive the per-domain pairs an older version left in state/tls/<domain>/: the proxy loads
 * only the serving folder, so nothing uses them any more. */
static void legacy_migrate(void)
{
    char tls[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (state_path(tls, sizeof(tls), g_cfg->state_dir, "tls") < 0 || !(d = opendir(tls)))
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "archive") ||
            !strcmp(de->d_name, "serving") || state_path(path, sizeof(path), tls, de->d_name) ||
            lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (ca_archive(g_ca, de->d_name) == 0)
            syslog(LOG_INFO, "ca: archived the per-domain pair of %s (the proxy loads the "
                   "serving leaves)", de->d_name);
    }
    closedir(d);
}

void ca_service_sync(const struct reg_service *const *prev, size_t nprev,
                     const struct reg_service *const *next, size_t nnext, const char *who)
{
    (void)prev;
    (void)nprev;
    if (g_ca)
        reconcile(next, nnext, false, "registry change", who);
}

/* Create state/tls/serving (0700) if missing: the proxy config loads it even when empty. It is
 * made at the first check, after the registry has opened, since the registry reads a directory
 * in state/tls as a sign of registered services. */
static void serving_dir(void)
{
    int rc = state_mkdir(g_serving, 0700);

    if (rc == 0 && chmod(g_serving, 0700) < 0)
        rc = -errno;
    if (rc < 0)
        syslog(LOG_ERR, "ca: %s: %s", g_serving, strerror(-rc));
}

void ca_service_check(const struct reg_service *const *svcs, size_t n)
{
    if (!g_ca)
        return;
    serving_dir();
    legacy_migrate();
    reconcile(svcs, n, true, "leaf missing or invalid at mount", NULL);
}

void ca_service_retire(const struct reg_service *const *prev, size_t nprev,
                       const struct reg_service *const *next, size_t nnext, const char *who)
{
    /* The leaves follow next, as after sync: after a failed commit that puts the names of the
     * kept registry back. */
    ca_service_sync(prev, nprev, next, nnext, who);
}

/* ---- rotation ---- */

struct rotate_ctx {
    const char *domain;
    const char *who;
};

/* Rotate the serving leaf that carries domain, with set_lock held. 0, -ENOENT (no leaf
 * carries it) or -errno. */
static int rotate_serving(const char *domain, const char *who)
{
    struct pass p = { .action = "cert_rotate", .verb = "Rotated", .reason = "rotation requested",
                      .domain = domain, .who = who };
    long i = leafset_find(g_set, domain);

    if (i < 0)
        return -ENOENT;
    leafset_touch(g_set, (size_t)i);
    apply_dirty(&p);
    return p.rc;
}

/* Rotate under the registry lock: the domain must be live now (active, for its serving leaf).
 * 0 or -errno. */
static int rotate_locked(void *arg)
{
    struct rotate_ctx *c = arg;
    char service[64];
    int rc;

    rc = owner_of(c->domain, service, sizeof(service));
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&set_lock);
    rc = rotate_serving(c->domain, c->who);
    pthread_mutex_unlock(&set_lock);
    if (rc == 0 && (rc = gw_reload(true)) < 0) {
        syslog(LOG_ERR, "ca: rotated the leaf of %s but the proxy did not reload: %s",
               c->domain, strerror(-rc));
        rc = -EIO;
    }
    return rc;
}

int ca_service_rotate(const char *domain, const char *who)
{
    struct rotate_ctx c = { .domain = domain, .who = who };
    int rc;

    if (!g_ca)
        return -ENOENT;
    rc = reg_with_lock(rotate_locked, &c);
    ca_service_flush();
    return rc;
}

/* ---- renewal ---- */

/* Check one serving leaf (id in *arg) under the registry lock and reissue it when it is due or
 * dirty (an earlier issuance failed). Sets *arg to 1 when it was renewed, else 0. Returns 0. */
static int renew_leaf_locked(void *arg)
{
    struct pass p = { .action = "tls_renew", .verb = "Renewed" };
    unsigned *id = arg;
    char path[PATH_MAX], reason[128] = "";
    const char *const *names;
    json_t *info = NULL;
    size_t n;
    long i;
    int need;

    pthread_mutex_lock(&set_lock);
    i = leafset_index(g_set, *id);
    *id = 0;
    if (i < 0 || leaf_file(leafset_id(g_set, (size_t)i), path) < 0)
        goto out;
    names = leafset_names(g_set, (size_t)i, &n);
    need = n ? ca_bundle_needs_renewal(g_ca, path, names, n, g_cfg->renew_before_days) : 1;
    if (leafset_dirty(g_set, (size_t)i))
        snprintf(reason, sizeof(reason), "%s", "retrying a failed issuance");
    else if (need == 0)
        goto out;
    else if (need < 0)
        snprintf(reason, sizeof(reason), "check failed: %s", strerror(-need));
    else if (n && ca_bundle_json(g_ca, path, names[0], &info) == 0 &&
             json_integer_value(json_object_get(info, "days_left")) < g_cfg->renew_before_days)
        snprintf(reason, sizeof(reason), "%lld days left, renewing below %d",
                 (long long)json_integer_value(json_object_get(info, "days_left")),
                 g_cfg->renew_before_days);
    else
        snprintf(reason, sizeof(reason), "%s", "no valid certificate or key");
    p.reason = reason;
    leafset_touch(g_set, (size_t)i);
    apply_dirty(&p);
    *id = p.issued > 0;
out:
    pthread_mutex_unlock(&set_lock);
    json_decref(info);
    return 0;
}

/* Reload the proxy under the registry lock. 0 or -errno. */
static int reload_locked(void *arg)
{
    (void)arg;
    return gw_reload(true);
}

/* True once ca_service_close asked the thread to stop. */
static bool stopping(void)
{
    return cu_ticker_stopped(&thr_tick);
}

/* One pass over the serving leaves; each check takes the registry lock on its own, so that
 * mutations interleave with a long pass. */
static void renew_pass(void)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    size_t renewed = 0, nids;
    unsigned *ids;
    int rc;

    if (!snap)
        return;                 /* no registry open: nothing to renew for */
    reg_snapshot_put(snap);
    pthread_mutex_lock(&set_lock);
    nids = leafset_count(g_set);
    ids = nids ? calloc(nids, sizeof(*ids)) : NULL;
    for (size_t i = 0; ids && i < nids; i++)
        ids[i] = leafset_id(g_set, i);
    pthread_mutex_unlock(&set_lock);
    for (size_t i = 0; ids && i < nids && !stopping(); i++) {
        unsigned id = ids[i];

        reg_with_lock(renew_leaf_locked, &id);
        ca_service_flush();
        renewed += id;
    }
    free(ids);
    if (renewed) {
        rc = reg_with_lock(reload_locked, NULL);
        if (rc < 0)
            syslog(LOG_ERR, "ca: renewed %zu certificate(s) but the proxy did not reload: %s",
                   renewed, strerror(-rc));
    }
}

/* The renewal thread: a pass at start (mount), then one per RENEW_INTERVAL_SECS, whatever the
 * passes find; it sleeps on thr_tick so that close wakes it at once. */
static void *renew_main(void *arg)
{
    (void)arg;
    while (!stopping()) {
        renew_pass();
        if (!cu_ticker_wait(&thr_tick, (int64_t)RENEW_INTERVAL_SECS * 1000))
            break;
    }
    return NULL;
}

/* ---- lifecycle ---- */

int ca_service_open(const struct cfs_config *cfg, char *err, size_t errlen)
{
    enum ca_key_type type;
    char why[512];
    bool created = false;
    int rc;

    if (ca_key_type_parse(cfg->key_type, &type) < 0) {
        snprintf(err, errlen, "internal CA: unknown key type \"%s\"", cfg->key_type);
        return -EINVAL;
    }
    if (cfg->leaf_days < 1 || cfg->leaf_days > CA_LEAF_DAYS_MAX) {
        snprintf(err, errlen, "internal CA: --leaf-days %d is outside 1..%d", cfg->leaf_days,
                 CA_LEAF_DAYS_MAX);
        return -EINVAL;
    }
    if (cfg->renew_before_days < 0) {
        snprintf(err, errlen, "internal CA: --renew-before-days must not be negative");
        return -EINVAL;
    }
    /* With a signer process (the daemon) the CA key stays there; without one (unit tests) it
     * is loaded here. */
    if (signer_running())
        rc = signer_ca_open(cfg->state_dir, type, cfg->hostname, &g_ca, &created, why,
                            sizeof(why));
    else
        rc = ca_open(cfg->state_dir, type, cfg->hostname, &g_ca, &created, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "internal CA: %s", why);
        return rc;
    }
    g_cfg = cfg;
    rc = serving_load(err, errlen);
    if (rc < 0) {
        ca_close(g_ca);
        g_ca = NULL;
        leafset_free(g_set);
        g_set = NULL;
        return rc;
    }
    if (why[0])
        syslog(LOG_WARNING, "ca: %s", why);
    if (created)
        syslog(LOG_INFO, "ca: created a new %s root CA in %s/tls", ca_key_type_name(type),
               cfg->state_dir);
    if (cfg->renew_before_days >= cfg->leaf_days)
        syslog(LOG_WARNING, "ca: --renew-before-days %d is not below --leaf-days %d: every "
               "check (at mount and hourly) renews every leaf", cfg->renew_before_days,
               cfg->leaf_days);
    return 0;
}

int ca_service_start(void)
{
    sigset_t all, old;
    int rc;

    if (!g_ca || thr_running)
        return 0;
    rc = cu_ticker_init(&thr_tick);
    if (rc < 0)
        goto out;
    /* Signals stay with the FUSE loop's threads: the renewal thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&thr, NULL, renew_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        cu_ticker_destroy(&thr_tick);
        goto out;
    }
    thr_running = true;
out:
    if (rc < 0)
        syslog(LOG_ERR, "ca: cannot start the renewal thread: %s", strerror(-rc));
    return rc;
}

void ca_service_close(void)
{
    if (thr_running) {
        cu_ticker_stop(&thr_tick);
        pthread_join(thr, NULL);
        cu_ticker_destroy(&thr_tick);
        thr_running = false;
    }
    ca_service_flush();
    ca_close(g_ca);
    g_ca = NULL;
    pthread_mutex_lock(&set_lock);
    leafset_free(g_set);
    g_set = NULL;
    pthread_mutex_unlock(&set_lock);
}

/* ---- the ca/ tree ---- */

/* How the ca/ tree's files print their JSON (cu_json_line adds the final newline). */
#define CA_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

/* Map a library error to what the tree answers: -ENOMEM stays, anything else is -ENOENT. */
static int not_found(int rc)
{
    return rc == -ENOMEM ? -ENOMEM : -ENOENT;
}

int ca_service_root_pem(char **out, size_t *len)
{
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca)
        return -ENOENT;
    rc = ca_cert_pem(g_ca, out);
    if (rc == 0)
        *len = strlen(*out);
    return rc;
}

/* A new object with the members keys[0..n) of from, in that order (absent ones skipped), or
 * NULL. */
static json_t *pick(json_t *from, const char *const *keys, size_t n)
{
    json_t *obj = json_object();

    for (size_t i = 0; obj && i < n; i++) {
        json_t *v = json_object_get(from, keys[i]);

        if (v && json_object_set(obj, keys[i], v)) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

int ca_service_root_json(char **out, size_t *len)
{
    static const char *const keys[] = {
        "subject", "key_type", "not_before", "not_after", "serial", "sha256_fingerprint",
    };
    json_t *info = NULL, *obj = NULL;
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca)
        return -ENOENT;
    rc = ca_info_json(g_ca, &info);
    if (rc == 0) {
        obj = pick(info, keys, sizeof(keys) / sizeof(keys[0]));
        *out = cu_json_line(obj, CA_JSON_FLAGS, len);
        rc = *out ? 0 : -ENOMEM;
    }
    json_decref(info);
    json_decref(obj);
    return rc;
}

/* The file of the serving leaf that carries domain into path (PATH_MAX), or -ENOENT: not
 * active, or its leaf not yet issued with it (a failed issuance). */
static int served_by(const char *domain, char *path)
{
    const char *const *added, *const *removed;
    size_t nadd, nrem;
    long i;
    int rc = -ENOENT;

    pthread_mutex_lock(&set_lock);
    i = g_set ? leafset_find(g_set, domain) : -1;
    if (i >= 0) {
        leafset_changes(g_set, (size_t)i, &added, &nadd, &removed, &nrem);
        rc = leaf_file(leafset_id(g_set, (size_t)i), path) < 0 ? -ENOENT : 0;
        for (size_t k = 0; rc == 0 && k < nadd; k++)
            if (strcmp(added[k], domain) == 0)
                rc = -ENOENT;
    }
    pthread_mutex_unlock(&set_lock);
    return rc;
}

int ca_service_leaf_pem(const char *domain, char **out, size_t *len)
{
    char service[64], path[PATH_MAX];
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca || owner_of(domain, service, sizeof(service)) < 0)
        return -ENOENT;
    rc = served_by(domain, path);
    if (rc == 0)
        rc = ca_bundle_pem(g_ca, path, out);
    if (rc < 0)
        return not_found(rc);
    *len = strlen(*out);
    return 0;
}

int ca_service_leaf_json(const char *domain, char **out, size_t *len)
{
    static const char *const keys[] = {
        "domain", "service", "serial", "not_before", "not_after", "days_left",
        "sha256_fingerprint", "key_type", "leaf", "names",
    };
    char service[64], path[PATH_MAX];
    json_t *info = NULL, *obj = NULL;
    const char *base;
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca || owner_of(domain, service, sizeof(service)) < 0)
        return -ENOENT;
    rc = served_by(domain, path);
    if (rc == 0)
        rc = ca_bundle_json(g_ca, path, domain, &info);
    if (rc < 0) {
        rc = not_found(rc);
        goto out;
    }
    rc = -ENOMEM;
    if (json_object_set_new(info, "service", json_string(service)))
        goto out;
    base = strrchr(path, '/');
    if (json_object_set_new(info, "leaf", json_string(base ? base + 1 : path)))
        goto out;
    obj = pick(info, keys, sizeof(keys) / sizeof(keys[0]));
    *out = cu_json_line(obj, CA_JSON_FLAGS, len);
    if (*out)
        rc = 0;
out:
    json_decref(info);
    json_decref(obj);
    return rc;
}

void ca_service_foreach_leaf(void (*fn)(const char *domain, void *arg), void *arg)
{
    struct reg_snapshot *snap;
    char path[PATH_MAX];

    if (!g_ca)
        return;
    snap = reg_snapshot_get();
    for (size_t i = 0; snap && i < snap->n; i++) {
        /* Inactive or pending: no leaf. */
        if (has_leaf(snap->svcs[i]) && served_by(snap->svcs[i]->domain, path) == 0)
            fn(snap->svcs[i]->domain, arg);
    }
    reg_snapshot_put(snap);
}

const char *ca_service_trust_name(size_t i)
{
    return ca_trust_name(i);
}

int ca_service_trust(const char *name, char **out, size_t *len)
{
    char tls[PATH_MAX], path[PATH_MAX];
    const char *fp;
    json_t *info = NULL;
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca || state_path(tls, sizeof(tls), g_cfg->state_dir, "tls") < 0 ||
        state_path(path, sizeof(path), tls, "ca.crt") < 0)
        return -ENOENT;
    rc = ca_info_json(g_ca, &info);
    fp = rc == 0 ? json_string_value(json_object_get(info, "sha256_fingerprint")) : NULL;
    if (fp)
        rc = ca_trust_text(name, path, g_cfg->hostname, fp, out, len);
    else if (rc == 0)
        rc = -ENOMEM;
    json_decref(info);
    return rc;
}
