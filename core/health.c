/* health.c: the health prober. One thread owns the probing: each round it takes a registry
 * snapshot, probes every active proxy-mode service in parallel (libcurl multi, each with the
 * --health-timeout), and moves each service through unknown -> healthy / unhealthy, writing
 * health_check_fail and health_check_recover audit lines on transitions. The state table is
 * guarded by state_lock; health_json reads it from any thread. */
#include "core/health.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/statefile.h"
#include "core/validate.h"

enum hstate { H_UNKNOWN, H_HEALTHY, H_UNHEALTHY };
static const char *const state_names[] = { "unknown", "healthy", "unhealthy" };

/* What we know of one service, keyed by name and upstream (a new upstream starts unknown). */
struct hrec {
    char name[64];
    char upstream[REG_UPSTREAM_MAX];
    enum hstate state;
    char since[32];
    int fails;
    long last_status;           /* HTTP status, 0 when none */
    long last_latency_ms;       /* -1 when none */
    char last_error[256];
    bool seen;                  /* still live in the latest round */
};

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hrec *recs;
static size_t nrecs;

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cond = PTHREAD_COND_INITIALIZER;
static bool running, stopping;
static pthread_t thread;
static const struct reg_config *g_cfg;

/* One probe in flight. */
struct probe {
    char name[64];
    char upstream[REG_UPSTREAM_MAX];
    char url[600];
    CURL *h;
    CURLcode result;
    long status;
    long latency_ms;
};

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Build the probe URL from a validated upstream and health path. 0 or -EINVAL. */
static int probe_url(const struct reg_service *s, char *url, size_t len)
{
    struct val_upstream ups[VAL_UPSTREAMS_MAX], up;
    size_t nups = 0;
    int n;

    if (val_upstreams(s->upstream, ups, &nups) < 0 || nups == 0)
        return -EINVAL;
    up = ups[0];
    n = snprintf(url, len, "%s://%s%s%s:%u%s", up.tls ? "https" : "http",
                 up.kind == VAL_HOST_IPV6 ? "[" : "", up.host,
                 up.kind == VAL_HOST_IPV6 ? "]" : "", up.port, s->health_check);
    return (n < 0 || (size_t)n >= len) ? -EINVAL : 0;
}

static struct hrec *find_rec(const char *name)
{
    for (size_t i = 0; i < nrecs; i++)
        if (strcmp(recs[i].name, name) == 0)
            return &recs[i];
    return NULL;
}

/* Record one probe's outcome and write the audit line of a transition. Called without locks. */
static void record(const struct probe *p)
{
    bool ok = p->result == CURLE_OK && p->status >= 200 && p->status < 400;
    enum hstate before, after;
    char err[256] = "", msg[384];
    struct hrec *r;

    if (p->result != CURLE_OK)
        snprintf(err, sizeof(err), "%s", curl_easy_strerror(p->result));
    else if (!ok)
        snprintf(err, sizeof(err), "HTTP %ld", p->status);
    pthread_mutex_lock(&state_lock);
    r = find_rec(p->name);
    if (!r || strcmp(r->upstream, p->upstream) != 0) {
        pthread_mutex_unlock(&state_lock);
        return;     /* changed under us: the next round probes the new upstream */
    }
    before = r->state;
    r->last_status = p->result == CURLE_OK ? p->status : 0;
    r->last_latency_ms = p->latency_ms;
    snprintf(r->last_error, sizeof(r->last_error), "%s", err);
    if (ok) {
        r->fails = 0;
        r->state = H_HEALTHY;
    } else {
        r->fails++;
        if (r->fails >= g_cfg->health_threshold)
            r->state = H_UNHEALTHY;
    }
    after = r->state;
    if (after != before)
        state_now_iso(r->since, sizeof(r->since));
    pthread_mutex_unlock(&state_lock);

    if (after == before || (before == H_UNKNOWN && after == H_HEALTHY))
        return;
    {
        json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:I}", "service", p->name,
                              "upstream", p->upstream, "previous", state_names[before],
                              "current", state_names[after], "http_status",
                              (int)p->status, "error", err, "latency_ms",
                              (json_int_t)p->latency_ms);
        bool fail = after == H_UNHEALTHY;

        snprintf(msg, sizeof(msg), "Service %s is %s%s%s", p->name, state_names[after],
                 fail ? ": " : "", fail ? err : "");
        audit_log_event(fail ? "health_check_fail" : "health_check_recover",
                        fail ? "failure" : "success", msg, d);
        json_decref(d);
    }
}

/* Sync the state table with the live services; return the probes to run (malloc'd). */
static struct probe *plan_round(size_t *np)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    struct probe *probes = NULL;
    size_t n = 0;

    *np = 0;
    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; i < nrecs; i++)
        recs[i].seen = false;
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = &snap->svcs[i];
        struct hrec *r;

        if (s->status == REG_INACTIVE)
            continue;
        r = find_rec(s->name);
        if (!r) {
            struct hrec *grown = realloc(recs, (nrecs + 1) * sizeof(*recs));

            if (!grown)
                continue;
            recs = grown;
            r = &recs[nrecs++];
            memset(r, 0, sizeof(*r));
            snprintf(r->name, sizeof(r->name), "%s", s->name);
        }
        if (strcmp(r->upstream, s->upstream) != 0) {
            snprintf(r->upstream, sizeof(r->upstream), "%s", s->upstream);
            r->state = H_UNKNOWN;
            r->fails = 0;
            r->last_status = 0;
            r->last_latency_ms = -1;
            r->last_error[0] = '\0';
            state_now_iso(r->since, sizeof(r->since));
        }
        r->seen = true;
    }
    /* forget services that are gone */
    for (size_t i = 0; i < nrecs;) {
        if (!recs[i].seen)
            recs[i] = recs[--nrecs];
        else
            i++;
    }
    pthread_mutex_unlock(&state_lock);

    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = &snap->svcs[i];
        struct probe *grown;

        if (s->status != REG_ACTIVE || strcmp(s->mode, "proxy") != 0)
            continue;
        grown = realloc(probes, (n + 1) * sizeof(*probes));
        if (!grown)
            break;
        probes = grown;
        memset(&probes[n], 0, sizeof(probes[n]));
        snprintf(probes[n].name, sizeof(probes[n].name), "%s", s->name);
        snprintf(probes[n].upstream, sizeof(probes[n].upstream), "%s", s->upstream);
        if (probe_url(s, probes[n].url, sizeof(probes[n].url)) == 0)
            n++;
    }
    reg_snapshot_put(snap);
    *np = n;
    return probes;
}

/* Run every probe of the round in parallel; each has its own timeout. */
static void run_round(struct probe *p, size_t n)
{
    CURLM *m = curl_multi_init();
    int still = 0;
    CURLMsg *msg;
    bool stop;
    int left;

    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        p[i].h = curl_easy_init();
        p[i].result = CURLE_FAILED_INIT;
        if (!p[i].h)
            continue;
        curl_easy_setopt(p[i].h, CURLOPT_URL, p[i].url);
        curl_easy_setopt(p[i].h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(p[i].h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(p[i].h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(p[i].h, CURLOPT_TIMEOUT_MS, (long)g_cfg->health_timeout_s * 1000L);
        curl_easy_setopt(p[i].h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(p[i].h, CURLOPT_PRIVATE, &p[i]);
        curl_easy_setopt(p[i].h, CURLOPT_USERAGENT, "conduitfs-health/1");
        curl_multi_add_handle(m, p[i].h);
    }
    do {
        if (curl_multi_perform(m, &still) != CURLM_OK)
            break;
        if (still)
            curl_multi_poll(m, NULL, 0, 200, NULL);
        pthread_mutex_lock(&run_lock);
        if (stopping)
            still = 0;
        pthread_mutex_unlock(&run_lock);
    } while (still);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        struct probe *pr = NULL;
        curl_off_t us = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&pr);
        pr->result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &pr->status);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &us);
        pr->latency_ms = (long)(us / 1000);
    }
    pthread_mutex_lock(&run_lock);
    stop = stopping;
    pthread_mutex_unlock(&run_lock);
    for (size_t i = 0; i < n; i++) {
        if (!p[i].h)
            continue;
        curl_multi_remove_handle(m, p[i].h);
        curl_easy_cleanup(p[i].h);
        if (!stop)
            record(&p[i]);
    }
    curl_multi_cleanup(m);
}

static void *health_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts;
        size_t n = 0;
        struct probe *p = plan_round(&n);

        run_round(p, n);
        free(p);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += g_cfg->health_interval_s;
        pthread_mutex_lock(&run_lock);
        while (!stopping)
            if (pthread_cond_timedwait(&run_cond, &run_lock, &ts) == ETIMEDOUT)
                break;
        if (stopping) {
            pthread_mutex_unlock(&run_lock);
            break;
        }
        pthread_mutex_unlock(&run_lock);
    }
    return NULL;
}

int health_start(const struct reg_config *cfg)
{
    int rc;

    g_cfg = cfg;
    rc = pthread_create(&thread, NULL, health_main, NULL);
    if (rc != 0)
        return -rc;
    running = true;
    return 0;
}

void health_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&run_lock);
    stopping = true;
    pthread_cond_broadcast(&run_cond);
    pthread_mutex_unlock(&run_lock);
    pthread_join(thread, NULL);
    running = false;
}

/* A JSON string, or null for an empty one. */
static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

int health_json(char **out)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    json_t *root = json_object(), *arr = json_array();
    char ts[32];
    int rc = -ENOMEM;

    *out = NULL;
    state_now_iso(ts, sizeof(ts));
    if (!root || !arr)
        goto out;
    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = &snap->svcs[i];
        const struct hrec *r;
        bool same;
        json_t *o;

        if (s->status == REG_INACTIVE)
            continue;
        r = find_rec(s->name);
        same = r && strcmp(r->upstream, s->upstream) == 0;
        o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:o,s:o,s:o}",
                      "name", s->name, "domain", s->domain, "upstream", s->upstream,
                      "state", same ? state_names[r->state] : "unknown",
                      "since", same && r->since[0] ? json_string(r->since) : json_null(),
                      "consecutive_failures", same ? r->fails : 0,
                      "last_status", same && r->last_status ? json_integer(r->last_status)
                                                            : json_null(),
                      "last_latency_ms", same && r->last_latency_ms >= 0 &&
                                         (r->last_status || r->last_error[0])
                                         ? json_integer(r->last_latency_ms) : json_null(),
                      "last_error", same ? str_or_null(r->last_error) : json_null());
        if (!o || json_array_append_new(arr, o)) {
            pthread_mutex_unlock(&state_lock);
            goto out;
        }
    }
    pthread_mutex_unlock(&state_lock);
    if (json_object_set_new(root, "timestamp", json_string(ts)) ||
        json_object_set(root, "services", arr))
        goto out;
    *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = *out ? 0 : -ENOMEM;
out:
    reg_snapshot_put(snap);
    json_decref(arr);
    json_decref(root);
    return rc;
}

/* See health.h. Every upstream is in the rotation until per-upstream probing lands. */
bool health_in_rotation(const char *service, const char *upstream, void *arg)
{
    (void)service;
    (void)upstream;
    (void)arg;
    return true;
}

static void (*g_on_rotation)(void);

/* See health.h. */
void health_on_rotation(void (*fn)(void))
{
    g_on_rotation = fn;
    (void)g_on_rotation;
}
