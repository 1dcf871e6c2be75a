/* casvc.c: the CA as a daemon service: opened at mount; a leaf issued for each domain as it
 * becomes live (before the configs that use it are applied) and archived once it is not;
 * rotation; the content of the ca/ tree; and the renewal thread. Work that must be ordered with
 * registry mutations runs under the registry's lock (from its commit, or through reg_with_lock);
 * the audit lines it produces are queued and written once that lock is released. */
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
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/ca.h"
#include "core/gateway.h"
#include "core/signer.h"
#include "core/statefile.h"
#include "core/trust.h"

#define RENEW_INTERVAL_SECS 3600

static const struct reg_config *g_cfg;
static struct ca *g_ca;

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

/* The renewal thread: thr_lock guards thr_stop, thr_cond wakes the thread when it is set. */
static pthread_mutex_t thr_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t thr_cond;
static pthread_t thr;
static bool thr_running, thr_stop;

/* The outcome of one issuance, for its audit line. */
struct issued {
    char domain[254];
    char service[64];
    char prev[CA_SERIAL_HEX_MAX];   /* serial of the pair it replaced, "" if none */
    char serial[CA_SERIAL_HEX_MAX];
    char not_after[32];
    char err[256];
    int rc;
};

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

/* Queue the audit line of an issuance: action (tls_issue, tls_renew, cert_rotate), verb for its
 * message ("Issued", ...), why it was issued, and reload_err when the proxy did not reload. */
static void queue_issued(const char *action, const char *verb, const struct issued *r,
                         const char *reason, const char *reload_err, const char *who)
{
    json_t *d = json_object();
    char msg[768];
    bool ok = r->rc == 0 && !reload_err;

    add_str(d, "domain", r->domain);
    add_str(d, "service", r->service);
    add_str(d, "serial", r->serial);
    add_str(d, "previous_serial", r->prev);
    add_str(d, "not_after", r->not_after);
    add_str(d, "reason", reason);
    add_str(d, "error", r->rc < 0 ? r->err : reload_err);
    if (r->rc < 0)
        snprintf(msg, sizeof(msg), "Certificate for %s (service %s) not issued: %s", r->domain,
                 r->service, r->err);
    else if (reload_err)
        snprintf(msg, sizeof(msg), "%s certificate for %s (service %s), but the proxy did not "
                 "reload", verb, r->domain, r->service);
    else
        snprintf(msg, sizeof(msg), "%s certificate for %s (service %s)", verb, r->domain,
                 r->service);
    queue_event(action, ok ? "success" : "failure", msg, who, d);
}

/* ---- leaves ---- */

/* The live record that uses domain in svcs[0..n), or NULL. */
static const struct reg_service *live_domain(const struct reg_service *svcs, size_t n,
                                             const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (svcs[i].status != REG_INACTIVE && strcmp(svcs[i].domain, domain) == 0)
            return &svcs[i];
    return NULL;
}

/* True when a live record is called name in svcs[0..n). */
static bool live_name(const struct reg_service *svcs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (svcs[i].status != REG_INACTIVE && strcmp(svcs[i].name, name) == 0)
            return true;
    return false;
}

/* The service that owns the live domain in the current registry into name. 0 or -ENOENT. */
static int owner_of(const char *domain, char *name, size_t len)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *s = snap ? live_domain(snap->svcs, snap->n, domain) : NULL;
    int rc = s ? 0 : -ENOENT;

    if (s)
        snprintf(name, len, "%s", s->name);
    reg_snapshot_put(snap);
    return rc;
}

/* A string field of the current leaf of domain into buf ("" when there is none). */
static void leaf_field(const char *domain, const char *key, char *buf, size_t len)
{
    json_t *info = NULL;
    const char *v;

    buf[0] = '\0';
    if (ca_leaf_json(g_ca, domain, &info) == 0) {
        v = json_string_value(json_object_get(info, key));
        snprintf(buf, len, "%s", v ? v : "");
    }
    json_decref(info);
}

/* Issue a fresh pair for domain (of service); the outcome goes into r. */
static void issue(struct issued *r, const char *domain, const char *service)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->domain, sizeof(r->domain), "%s", domain);
    snprintf(r->service, sizeof(r->service), "%s", service);
    leaf_field(domain, "serial", r->prev, sizeof(r->prev));
    r->rc = ca_issue(g_ca, domain, g_cfg->leaf_days, r->serial, r->err, sizeof(r->err));
    if (r->rc < 0) {
        if (!r->err[0])
            snprintf(r->err, sizeof(r->err), "%s", strerror(-r->rc));
        syslog(LOG_ERR, "ca: certificate for %s not issued: %s", domain, r->err);
        return;
    }
    leaf_field(domain, "not_after", r->not_after, sizeof(r->not_after));
}

void ca_service_sync(const struct reg_service *prev, size_t nprev,
                     const struct reg_service *next, size_t nnext, const char *who)
{
    struct issued r;

    if (!g_ca)
        return;
    for (size_t i = 0; i < nnext; i++) {
        const struct reg_service *s = &next[i];

        /* A domain that just became live always gets a fresh pair. */
        if (s->status == REG_INACTIVE || live_domain(prev, nprev, s->domain))
            continue;
        issue(&r, s->domain, s->name);
        queue_issued("tls_issue", "Issued", &r,
                     live_name(prev, nprev, s->name) ? "domain change" : "registration", NULL,
                     who);
    }
}

void ca_service_check(const struct reg_service *svcs, size_t n)
{
    struct issued r;

    if (!g_ca)
        return;
    for (size_t i = 0; i < n; i++) {
        if (svcs[i].status == REG_INACTIVE || ca_needs_renewal(g_ca, svcs[i].domain, 0) == 0)
            continue;
        issue(&r, svcs[i].domain, svcs[i].name);
        queue_issued("tls_issue", "Issued", &r, "missing or invalid at mount", NULL, NULL);
    }
}

void ca_service_retire(const struct reg_service *prev, size_t nprev,
                       const struct reg_service *next, size_t nnext, const char *who)
{
    char serial[CA_SERIAL_HEX_MAX], msg[768];
    json_t *d;
    int rc;

    if (!g_ca)
        return;
    for (size_t i = 0; i < nprev; i++) {
        const struct reg_service *s = &prev[i];

        if (s->status == REG_INACTIVE || live_domain(next, nnext, s->domain))
            continue;
        leaf_field(s->domain, "serial", serial, sizeof(serial));
        rc = ca_archive(g_ca, s->domain);
        if (rc == -ENOENT || rc == -ENOTDIR)
            continue;           /* no pair there (never issued, or not a directory) */
        if (rc < 0)
            syslog(LOG_ERR, "ca: archiving the pair of %s failed: %s", s->domain,
                   strerror(-rc));
        d = json_object();
        add_str(d, "domain", s->domain);
        add_str(d, "service", s->name);
        add_str(d, "serial", serial);
        add_str(d, "error", rc < 0 ? strerror(-rc) : NULL);
        snprintf(msg, sizeof(msg), "%s certificate of %s (service %s)",
                 rc < 0 ? "Could not archive the" : "Archived the", s->domain, s->name);
        queue_event("tls_archive", rc < 0 ? "failure" : "success", msg, who, d);
    }
}

/* ---- rotation ---- */

struct rotate_ctx {
    const char *domain;
    const char *who;
};

/* Rotate under the registry lock: the domain must be live now. 0 or -errno. */
static int rotate_locked(void *arg)
{
    struct rotate_ctx *c = arg;
    char service[64], reload_err[128] = "";
    struct issued r;
    int rc;

    rc = owner_of(c->domain, service, sizeof(service));
    if (rc < 0)
        goto out;
    issue(&r, c->domain, service);
    rc = r.rc;
    if (rc == 0 && (rc = gw_reload(true)) < 0) {
        snprintf(reload_err, sizeof(reload_err), "proxy reload: %s", strerror(-rc));
        syslog(LOG_ERR, "ca: rotated %s but %s", c->domain, reload_err);
        rc = -EIO;
    }
    queue_issued("cert_rotate", "Rotated", &r, "rotation requested",
                 reload_err[0] ? reload_err : NULL, c->who);
out:
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

struct renew_ctx {
    const char *domain;
    bool renewed;
};

/* Check one domain under the registry lock and reissue its leaf when it is due. Returns 0. */
static int renew_locked(void *arg)
{
    struct renew_ctx *c = arg;
    char service[64], reason[128];
    json_t *info = NULL;
    json_int_t left = 0;
    bool have_left = false;
    struct issued r;
    int need;

    if (owner_of(c->domain, service, sizeof(service)) < 0)
        goto out;               /* no longer live */
    need = ca_needs_renewal(g_ca, c->domain, g_cfg->renew_before_days);
    if (need == 0)
        goto out;
    if (ca_leaf_json(g_ca, c->domain, &info) == 0) {
        left = json_integer_value(json_object_get(info, "days_left"));
        have_left = true;
    }
    if (need < 0)
        snprintf(reason, sizeof(reason), "check failed: %s", strerror(-need));
    else if (have_left && left < g_cfg->renew_before_days)
        snprintf(reason, sizeof(reason), "%lld days left, renewing below %d", (long long)left,
                 g_cfg->renew_before_days);
    else
        snprintf(reason, sizeof(reason), "%s", "no valid certificate or key");
    issue(&r, c->domain, service);
    queue_issued("tls_renew", "Renewed", &r, reason, NULL, NULL);
    c->renewed = r.rc == 0;
out:
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
    bool stop;

    pthread_mutex_lock(&thr_lock);
    stop = thr_stop;
    pthread_mutex_unlock(&thr_lock);
    return stop;
}

/* One pass over the live domains; each check takes the registry lock on its own, so that
 * mutations interleave with a long pass. */
static void renew_pass(void)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    char (*domains)[254] = NULL;
    size_t n = 0, renewed = 0;
    int rc;

    if (!snap)
        return;
    if (snap->n)
        domains = calloc(snap->n, sizeof(*domains));
    for (size_t i = 0; domains && i < snap->n; i++)
        if (snap->svcs[i].status != REG_INACTIVE && snap->svcs[i].domain[0])
            snprintf(domains[n++], sizeof(domains[0]), "%s", snap->svcs[i].domain);
    reg_snapshot_put(snap);
    for (size_t i = 0; i < n && !stopping(); i++) {
        struct renew_ctx c = { .domain = domains[i] };

        reg_with_lock(renew_locked, &c);
        ca_service_flush();
        renewed += c.renewed;
    }
    if (renewed) {
        rc = reg_with_lock(reload_locked, NULL);
        if (rc < 0)
            syslog(LOG_ERR, "ca: renewed %zu certificate(s) but the proxy did not reload: %s",
                   renewed, strerror(-rc));
    }
    free(domains);
}

/* The renewal thread: a pass at start (mount), then one per RENEW_INTERVAL_SECS, whatever the
 * passes find; it waits on thr_cond so that close wakes it at once. */
static void *renew_main(void *arg)
{
    struct timespec deadline;

    (void)arg;
    pthread_mutex_lock(&thr_lock);
    while (!thr_stop) {
        pthread_mutex_unlock(&thr_lock);
        renew_pass();
        pthread_mutex_lock(&thr_lock);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += RENEW_INTERVAL_SECS;
        while (!thr_stop && pthread_cond_timedwait(&thr_cond, &thr_lock, &deadline) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&thr_lock);
    return NULL;
}

/* ---- lifecycle ---- */

int ca_service_open(const struct reg_config *cfg, char *err, size_t errlen)
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
    pthread_condattr_t attr;
    sigset_t all, old;
    int rc;

    if (!g_ca || thr_running)
        return 0;
    rc = -pthread_condattr_init(&attr);
    if (rc < 0)
        goto out;
    rc = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = -pthread_cond_init(&thr_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc < 0)
        goto out;
    thr_stop = false;
    /* Signals stay with the FUSE loop's threads: the renewal thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&thr, NULL, renew_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        pthread_cond_destroy(&thr_cond);
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
        pthread_mutex_lock(&thr_lock);
        thr_stop = true;
        pthread_cond_signal(&thr_cond);
        pthread_mutex_unlock(&thr_lock);
        pthread_join(thr, NULL);
        pthread_cond_destroy(&thr_cond);
        thr_running = false;
    }
    ca_service_flush();
    ca_close(g_ca);
    g_ca = NULL;
}

/* ---- the ca/ tree ---- */

/* obj as indented JSON with a final newline, into *out and *len. 0 or -ENOMEM. */
static int dump_json(json_t *obj, char **out, size_t *len)
{
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t n;

    *out = NULL;
    *len = 0;
    if (!text)
        return -ENOMEM;
    n = strlen(text);
    *out = malloc(n + 2);
    if (*out) {
        memcpy(*out, text, n);
        (*out)[n] = '\n';
        (*out)[n + 1] = '\0';
        *len = n + 1;
    }
    free(text);
    return *out ? 0 : -ENOMEM;
}

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
        rc = obj ? dump_json(obj, out, len) : -ENOMEM;
    }
    json_decref(info);
    json_decref(obj);
    return rc;
}

int ca_service_leaf_pem(const char *domain, char **out, size_t *len)
{
    char service[64];
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca || owner_of(domain, service, sizeof(service)) < 0)
        return -ENOENT;
    rc = ca_leaf_pem(g_ca, domain, out);
    if (rc < 0)
        return not_found(rc);
    *len = strlen(*out);
    return 0;
}

int ca_service_leaf_json(const char *domain, char **out, size_t *len)
{
    static const char *const keys[] = {
        "domain", "service", "serial", "not_before", "not_after", "days_left",
        "sha256_fingerprint", "key_type",
    };
    char service[64];
    json_t *info = NULL, *obj = NULL;
    int rc;

    *out = NULL;
    *len = 0;
    if (!g_ca || owner_of(domain, service, sizeof(service)) < 0)
        return -ENOENT;
    rc = ca_leaf_json(g_ca, domain, &info);
    if (rc < 0) {
        rc = not_found(rc);
        goto out;
    }
    rc = -ENOMEM;
    if (json_object_set_new(info, "service", json_string(service)))
        goto out;
    obj = pick(info, keys, sizeof(keys) / sizeof(keys[0]));
    if (obj)
        rc = dump_json(obj, out, len);
out:
    json_decref(info);
    json_decref(obj);
    return rc;
}

void ca_service_foreach_leaf(void (*fn)(const char *domain, void *arg), void *arg)
{
    struct reg_snapshot *snap;
    char *pem;

    if (!g_ca)
        return;
    snap = reg_snapshot_get();
    for (size_t i = 0; snap && i < snap->n; i++) {
        if (snap->svcs[i].status == REG_INACTIVE || !snap->svcs[i].domain[0])
            continue;           /* no domain yet: no leaf */
        pem = NULL;
        if (ca_leaf_pem(g_ca, snap->svcs[i].domain, &pem) == 0)
            fn(snap->svcs[i].domain, arg);
        free(pem);
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
