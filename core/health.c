/* health.c: the health prober. One thread owns the probing: each round it takes a registry
 * snapshot and probes every upstream of every active service, in proxy and dns mode alike, at
 * scheme://host:port + health_check (libcurl multi, at most PROBE_WINDOW at once, each with the
 * --health-timeout). Each upstream moves through unknown -> healthy / unhealthy on its own; after
 * --health-threshold failures in a row it leaves the rotation (health_check_fail) and it rejoins
 * at its next answer (health_check_recover). After a round that changed the rotation the prober
 * calls the health_on_rotation hook. The state table is guarded by state_lock, a leaf lock: it is
 * taken under the registry lock (health_in_rotation, from render) and never held while calling
 * anything that locks. */
#include "core/health.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/registry.h"
#include "core/statefile.h"
#include "core/validate.h"
#include "util/util.h"

/* Probes in flight at once: a fleet of thousands of upstreams must not run out of descriptors. */
#define PROBE_WINDOW 256
/* Longest upstream line ("https://" + a 253-byte name + ":65535") and its NUL, rounded up. */
#define LINE_MAX_LEN 272

enum hstate { H_UNKNOWN, H_HEALTHY, H_UNHEALTHY };
static const char *const state_names[] = { "unknown", "healthy", "unhealthy" };

/* What we know of one upstream of one service, keyed by its line as written. */
struct hup {
    char line[LINE_MAX_LEN];
    enum hstate state;          /* in the rotation unless H_UNHEALTHY */
    char since[32];             /* last change of state (or first seen) */
    int fails;                  /* failed probes in a row */
    long last_status;           /* HTTP status, 0 when none */
    long last_latency_ms;       /* -1 before the first probe */
    char last_error[128];       /* curl's message or "HTTP 503" */
};

/* One live service: its upstreams in list order and the state they add up to. */
struct hsvc {
    char name[64];
    struct hup *ups;
    size_t nups;
    enum hstate state;
    char since[32];
    bool seen;                  /* still live in the latest round */
};

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hsvc *svcs;       /* state_lock */
static size_t nsvcs, svcs_cap;
static size_t *slots;           /* open-addressed index of svcs by name: index + 1, 0 = empty */
static size_t nslots;           /* a power of two, at least twice nsvcs; 0 before the first */
static void (*g_on_rotation)(void);     /* state_lock */

/* The prober sleeps between rounds on tick, which health_stop stops to end it at once. */
static struct cu_ticker tick;
static bool running;
static pthread_t thread;
static const struct cfs_config *g_cfg;

/* One probe of one upstream. */
struct probe {
    char name[64];
    char line[LINE_MAX_LEN];
    char url[LINE_MAX_LEN + 300];
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

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;        /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The record of service name, with state_lock held; NULL when none. */
static struct hsvc *find_svc(const char *name)
{
    if (nslots == 0)
        return NULL;
    for (size_t i = name_hash(name) & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        if (slots[i] == 0)
            return NULL;
        if (strcmp(svcs[slots[i] - 1].name, name) == 0)
            return &svcs[slots[i] - 1];
    }
}

static struct hup *find_up(struct hsvc *s, const char *line)
{
    for (size_t i = 0; s && i < s->nups; i++)
        if (strcmp(s->ups[i].line, line) == 0)
            return &s->ups[i];
    return NULL;
}

/* Rebuild the index over svcs[0..nsvcs), with state_lock held. 0 or -ENOMEM (the old index is
 * then kept, and the caller must not have moved records). */
static int reindex(void)
{
    size_t want = 16, *v;

    while (want < 2 * nsvcs)
        want *= 2;
    v = calloc(want, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t k = 0; k < nsvcs; k++) {
        size_t i = name_hash(svcs[k].name) & (want - 1);

        while (v[i] != 0)
            i = (i + 1) & (want - 1);
        v[i] = k + 1;
    }
    free(slots);
    slots = v;
    nslots = want;
    return 0;
}

/* The state a service's upstreams add up to: healthy when one is, unhealthy when none is in the
 * rotation, unknown otherwise (not probed yet, or failing under the threshold). */
static enum hstate svc_state(const struct hsvc *s)
{
    size_t out = 0;

    for (size_t i = 0; i < s->nups; i++) {
        if (s->ups[i].state == H_HEALTHY)
            return H_HEALTHY;
        out += s->ups[i].state == H_UNHEALTHY;
    }
    return s->nups > 0 && out == s->nups ? H_UNHEALTHY : H_UNKNOWN;
}

/* Upstreams of s in the rotation (not unhealthy). */
static size_t in_rotation_count(const struct hsvc *s)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nups; i++)
        n += s->ups[i].state != H_UNHEALTHY;
    return n;
}

/* Recompute s's state and stamp its since when it changed. */
static void svc_refresh(struct hsvc *s)
{
    enum hstate st = svc_state(s);

    if (st != s->state || !s->since[0]) {
        s->state = st;
        state_now_iso(s->since, sizeof(s->since));
    }
}

/* Split a validated upstream list into lines: up to VAL_UPSTREAMS_MAX pointers into buf. */
static size_t split_lines(const char *list, char *buf, size_t len, char **lines)
{
    size_t n = 0;
    char *p;

    snprintf(buf, len, "%s", list);
    for (p = buf; *p && n < VAL_UPSTREAMS_MAX;) {
        char *nl = strchr(p, '\n');

        if (nl)
            *nl = '\0';
        if (*p)
            lines[n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* Bring s's upstream records in line with the list: kept lines keep their state, new ones
 * start unknown, dropped ones go. With state_lock held. */
static void sync_ups(struct hsvc *s, const char *list)
{
    char buf[REG_UPSTREAM_MAX + 1], *lines[VAL_UPSTREAMS_MAX];
    size_t n = split_lines(list, buf, sizeof(buf), lines);
    bool same = n == s->nups;
    struct hup *v;

    for (size_t i = 0; same && i < n; i++)
        same = strcmp(s->ups[i].line, lines[i]) == 0;
    if (same)
        return;
    v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return;             /* keep the old records; the next round tries again */
    for (size_t i = 0; i < n; i++) {
        const struct hup *old = find_up(s, lines[i]);

        if (old) {
            v[i] = *old;
            continue;
        }
        snprintf(v[i].line, sizeof(v[i].line), "%s", lines[i]);
        v[i].state = H_UNKNOWN;
        v[i].last_latency_ms = -1;
        state_now_iso(v[i].since, sizeof(v[i].since));
    }
    free(s->ups);
    s->ups = v;
    s->nups = n;
    svc_refresh(s);
}

/* Add the probes of s (one per upstream) to *probes. false without memory. */
static bool plan_service(const struct reg_service *s, struct probe **probes, size_t *n,
                         size_t *cap)
{
    char buf[REG_UPSTREAM_MAX + 1], *lines[VAL_UPSTREAMS_MAX];
    size_t k = split_lines(s->upstream, buf, sizeof(buf), lines);

    for (size_t i = 0; i < k; i++) {
        struct val_upstream up;
        struct probe *p;
        int len;

        if (val_upstream(lines[i], &up) < 0 || strlen(lines[i]) >= LINE_MAX_LEN)
            continue;
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 64;
            struct probe *g = realloc(*probes, c * sizeof(*g));

            if (!g)
                return false;
            *probes = g;
            *cap = c;
        }
        p = &(*probes)[*n];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", s->name);
        snprintf(p->line, sizeof(p->line), "%s", lines[i]);
        len = snprintf(p->url, sizeof(p->url), "%s://%s%s%s:%u%s", up.tls ? "https" : "http",
                       up.kind == VAL_HOST_IPV6 ? "[" : "", up.host,
                       up.kind == VAL_HOST_IPV6 ? "]" : "", up.port, s->health_check);
        if (len > 0 && (size_t)len < sizeof(p->url))
            (*n)++;
    }
    return true;
}

/* Sync the state table with the live services; return the probes to run (malloc'd). */
static struct probe *plan_round(size_t *np)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    struct probe *probes = NULL;
    size_t n = 0, cap = 0, kept = 0;
    bool grew = false;

    *np = 0;
    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; i < nsvcs; i++)
        svcs[i].seen = false;
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = snap->svcs[i];
        struct hsvc *r;

        if (s->status != REG_ACTIVE)
            continue;           /* pending (no upstream) or deregistered: nothing to probe */
        r = find_svc(s->name);      /* names in a snapshot are unique: new ones need no index */
        if (!r) {
            if (nsvcs == svcs_cap) {
                size_t c = svcs_cap ? 2 * svcs_cap : 64;
                struct hsvc *g = realloc(svcs, c * sizeof(*svcs));

                if (!g)
                    continue;
                svcs = g;
                svcs_cap = c;
            }
            r = &svcs[nsvcs++];
            memset(r, 0, sizeof(*r));
            snprintf(r->name, sizeof(r->name), "%s", s->name);
            svc_refresh(r);
            grew = true;
        }
        sync_ups(r, s->upstream);
        r->seen = true;
    }
    /* forget services that are gone (keeping the order of the others) */
    for (size_t i = 0; i < nsvcs; i++) {
        if (svcs[i].seen)
            svcs[kept++] = svcs[i];
        else
            free(svcs[i].ups);
    }
    if (kept != nsvcs || grew) {
        nsvcs = kept;
        if (reindex() < 0) {
            /* the old index points at moved records: drop them all, the next round rebuilds */
            for (size_t i = 0; i < nsvcs; i++)
                free(svcs[i].ups);
            nsvcs = 0;
            if (slots)
                memset(slots, 0, nslots * sizeof(*slots));
        }
    }
    pthread_mutex_unlock(&state_lock);

    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = snap->svcs[i];

        if (s->status == REG_ACTIVE && !plan_service(s, &probes, &n, &cap))
            break;
    }
    reg_snapshot_put(snap);
    *np = n;
    return probes;
}

/* Record one probe's outcome and write the audit line of a transition. Called without locks;
 * true when the upstream left or rejoined the rotation. */
static bool record(const struct probe *p)
{
    bool ok = p->result == CURLE_OK && p->status >= 200 && p->status < 400;
    enum hstate before, after;
    char err[128] = "", msg[640];
    size_t left = 0, total = 0;
    struct hsvc *s;
    struct hup *u;

    if (p->result != CURLE_OK)
        snprintf(err, sizeof(err), "%s", curl_easy_strerror(p->result));
    else if (!ok)
        snprintf(err, sizeof(err), "HTTP %ld", p->status);
    pthread_mutex_lock(&state_lock);
    s = find_svc(p->name);
    u = find_up(s, p->line);
    if (!u) {
        pthread_mutex_unlock(&state_lock);
        return false;   /* removed under us: the next round probes what is listed now */
    }
    before = u->state;
    u->last_status = p->result == CURLE_OK ? p->status : 0;
    u->last_latency_ms = p->latency_ms;
    snprintf(u->last_error, sizeof(u->last_error), "%s", err);
    if (ok) {
        u->fails = 0;
        u->state = H_HEALTHY;
    } else {
        if (u->fails < INT32_MAX)
            u->fails++;
        if (u->fails >= g_cfg->health_threshold)
            u->state = H_UNHEALTHY;
    }
    after = u->state;
    if (after != before)
        state_now_iso(u->since, sizeof(u->since));
    svc_refresh(s);
    left = in_rotation_count(s);
    total = s->nups;
    pthread_mutex_unlock(&state_lock);

    if (after == before || (before == H_UNKNOWN && after == H_HEALTHY))
        return false;
    {
        json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:b,s:I,s:I}", "service", p->name,
                              "upstream", p->line, "previous", state_names[before],
                              "current", state_names[after], "http_status",
                              (json_int_t)(p->result == CURLE_OK ? p->status : 0), "error", err,
                              "latency_ms", (json_int_t)p->latency_ms,
                              "in_rotation", after != H_UNHEALTHY,
                              "upstreams_in_rotation", (json_int_t)left,
                              "upstreams_total", (json_int_t)total);
        bool fail = after == H_UNHEALTHY;

        if (fail)
            snprintf(msg, sizeof(msg), "Upstream %s of service %s is unhealthy: %s; "
                     "%zu of %zu upstreams in the rotation", p->line, p->name, err, left,
                     total);
        else
            snprintf(msg, sizeof(msg), "Upstream %s of service %s is healthy again; "
                     "%zu of %zu upstreams in the rotation", p->line, p->name, left, total);
        audit_log_event(fail ? "health_check_fail" : "health_check_recover",
                        fail ? "failure" : "success", msg, d);
        json_decref(d);
    }
    /* unknown -> unhealthy leaves the rotation; unhealthy -> healthy rejoins it */
    return true;
}

static bool stop_asked(void)
{
    return cu_ticker_stopped(&tick);
}

static bool add_probe(CURLM *m, struct probe *p)
{
    p->h = curl_easy_init();
    p->result = CURLE_FAILED_INIT;
    p->latency_ms = 0;
    if (!p->h)
        return false;
    curl_easy_setopt(p->h, CURLOPT_URL, p->url);
    curl_easy_setopt(p->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(p->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->h, CURLOPT_TIMEOUT_MS, (long)g_cfg->health_timeout_s * 1000L);
    curl_easy_setopt(p->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(p->h, CURLOPT_PRIVATE, p);
    curl_easy_setopt(p->h, CURLOPT_USERAGENT, "conduitfs-health/1");
    if (curl_multi_add_handle(m, p->h) != CURLM_OK) {
        curl_easy_cleanup(p->h);
        p->h = NULL;
        return false;
    }
    return true;
}

/* Run every probe of the round, at most PROBE_WINDOW at once, each with its own timeout, and
 * record each outcome as it comes. true when the rotation changed. */
static bool run_round(struct probe *p, size_t n)
{
    CURLM *m = curl_multi_init();
    size_t next = 0, active = 0;
    bool changed = false;
    int still = 0, left;        /* still: curl's count, unused (active is ours) */
    CURLMsg *msg;

    if (!m)
        return false;
    for (;;) {
        while (active < PROBE_WINDOW && next < n) {
            struct probe *pr = &p[next++];

            if (add_probe(m, pr))
                active++;
            else if (!stop_asked())
                changed |= record(pr);      /* counts as a failed probe */
        }
        if (active == 0 || stop_asked())
            break;
        if (curl_multi_perform(m, &still) != CURLM_OK)
            break;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct probe *pr = NULL;
            curl_off_t us = 0;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&pr);
            pr->result = msg->data.result;
            curl_easy_getinfo(pr->h, CURLINFO_RESPONSE_CODE, &pr->status);
            curl_easy_getinfo(pr->h, CURLINFO_TOTAL_TIME_T, &us);
            pr->latency_ms = (long)(us / 1000);
            curl_multi_remove_handle(m, pr->h);
            curl_easy_cleanup(pr->h);
            pr->h = NULL;
            active--;
            changed |= record(pr);
        }
        if (active > 0)
            curl_multi_poll(m, NULL, 0, 200, NULL);     /* wakes at once on activity */
    }
    for (size_t i = 0; i < next; i++) {
        if (!p[i].h)
            continue;
        curl_multi_remove_handle(m, p[i].h);
        curl_easy_cleanup(p[i].h);
    }
    curl_multi_cleanup(m);
    return changed;
}

static void *health_main(void *arg)
{
    (void)arg;
    for (;;) {
        size_t n = 0;
        struct probe *p = plan_round(&n);
        bool changed = run_round(p, n);
        void (*fn)(void);

        free(p);
        pthread_mutex_lock(&state_lock);
        fn = g_on_rotation;
        pthread_mutex_unlock(&state_lock);
        if (changed && fn && !stop_asked())
            fn();
        if (!cu_ticker_wait(&tick, (int64_t)g_cfg->health_interval_s * 1000))
            break;
    }
    return NULL;
}

int health_start(const struct cfs_config *cfg)
{
    int rc;

    g_cfg = cfg;
    rc = cu_ticker_init(&tick);
    if (rc < 0)
        return rc;
    rc = pthread_create(&thread, NULL, health_main, NULL);
    if (rc != 0) {
        cu_ticker_destroy(&tick);
        return -rc;
    }
    running = true;
    return 0;
}

void health_stop(void)
{
    if (!running)
        return;
    cu_ticker_stop(&tick);
    pthread_join(thread, NULL);
    cu_ticker_destroy(&tick);
    running = false;
    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; i < nsvcs; i++)
        free(svcs[i].ups);
    free(svcs);
    free(slots);
    svcs = NULL;
    slots = NULL;
    nsvcs = nslots = svcs_cap = 0;
    pthread_mutex_unlock(&state_lock);
}

/* A JSON string, or null for an empty one. */
static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

/* The last-probe fields of u (or of nothing: nulls) into o. 0 or -1. */
static int last_fields(json_t *o, const struct hup *u)
{
    bool probed = u && (u->last_status || u->last_error[0]);

    return json_object_set_new(o, "last_status", u && u->last_status ?
                               json_integer(u->last_status) : json_null()) ||
           json_object_set_new(o, "last_latency_ms", probed && u->last_latency_ms >= 0 ?
                               json_integer(u->last_latency_ms) : json_null()) ||
           json_object_set_new(o, "last_error", u ? str_or_null(u->last_error) : json_null());
}

/* The upstreams[] entry of u. */
static json_t *up_json(const struct hup *u)
{
    json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:i}", "upstream", u->line,
                          "state", state_names[u->state], "in_rotation",
                          u->state != H_UNHEALTHY, "since", str_or_null(u->since),
                          "consecutive_failures", u->fails);

    if (o && last_fields(o, u) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* An upstream listed but not in the table yet (registered since the last round). */
static json_t *new_up_json(const char *line)
{
    struct hup u;

    memset(&u, 0, sizeof(u));
    snprintf(u.line, sizeof(u.line), "%s", line);
    u.last_latency_ms = -1;
    return up_json(&u);
}

/* The health.json entry of one live service, with state_lock held. */
static json_t *svc_json(const struct reg_service *s)
{
    char buf[REG_UPSTREAM_MAX + 1], *lines[VAL_UPSTREAMS_MAX];
    size_t k = split_lines(s->upstream, buf, sizeof(buf), lines);
    struct hsvc *r = s->status == REG_ACTIVE ? find_svc(s->name) : NULL;
    json_t *o, *ups = json_array();
    int fewest = -1;
    size_t in = 0, known = 0;
    const char *state;

    if (!ups)
        return NULL;
    for (size_t i = 0; i < k; i++) {
        struct hup *u = find_up(r, lines[i]);
        json_t *e = u ? up_json(u) : new_up_json(lines[i]);
        int f = u ? u->fails : 0;

        if (!e || json_array_append_new(ups, e)) {
            json_decref(ups);
            return NULL;
        }
        fewest = fewest < 0 || f < fewest ? f : fewest;
        in += !u || u->state != H_UNHEALTHY;
        known += u != NULL;
    }
    if (s->status == REG_PENDING)
        state = "pending";
    else if (r && r->nups == k && known == k)
        state = state_names[r->state];
    else
        state = "unknown";      /* its list changed since the last round */
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:i,s:I,s:I}", "name", s->name,
                  "domain", s->domain, "mode", s->mode, "upstream", k ? lines[0] : "",
                  "state", state, "since", r ? str_or_null(r->since) : json_null(),
                  "consecutive_failures", fewest < 0 ? 0 : fewest,
                  "upstreams_in_rotation", (json_int_t)in, "upstreams_total", (json_int_t)k);
    if (!o || last_fields(o, k == 1 ? find_up(r, lines[0]) : NULL) < 0 ||
        json_object_set_new(o, "upstreams", ups)) {
        json_decref(o);
        return NULL;
    }
    return o;
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
        const struct reg_service *s = snap->svcs[i];
        json_t *o;

        if (s->status == REG_INACTIVE)
            continue;
        o = svc_json(s);
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

/* See health.h. One lookup by name and a scan of the service's own upstreams, under state_lock
 * only (a leaf lock: render calls this under the registry lock). */
bool health_in_rotation(const char *service, const char *upstream, void *arg)
{
    const struct hup *u;
    bool in;

    (void)arg;
    if (!service || !upstream)
        return true;
    pthread_mutex_lock(&state_lock);
    u = find_up(find_svc(service), upstream);
    in = !u || u->state != H_UNHEALTHY;
    pthread_mutex_unlock(&state_lock);
    return in;
}

/* See health.h. */
void health_on_rotation(void (*fn)(void))
{
    pthread_mutex_lock(&state_lock);
    g_on_rotation = fn;
    pthread_mutex_unlock(&state_lock);
}
