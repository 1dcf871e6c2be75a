/* cache.c: the single-flight probe cache, keyed by (directory, file). One probe runs at a time
 * per key; readers that come while it runs wait and share its result, and so does every reader
 * for the probe TTL (mon_cache_ttl_ms) after it. It takes its settings (TTL, alert thresholds)
 * from mon_cache_set_options and calls nothing of monitor.c or targets.c. It also keeps each
 * key's probe state (CPU samples) and its active alerts, so that an alert writes one audit line
 * when it appears and one when it clears. */
#include "monitor/probe.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "util/util.h"

/* Entries of directories not read for this long are dropped (services that went away). */
#define STALE_MS (15 * 60 * 1000)

struct entry {
    struct entry *next;
    char name[MON_NAME_MAX];
    enum mon_file file;
    char settings[sizeof(struct mon_src)];   /* what the result was probed with */
    bool busy;
    bool has_result;
    int64_t done_ms;
    int64_t used_ms;
    char *doc;
    size_t len;
    json_t *state;          /* the probe's own memory */
    json_t *alerts;         /* alert keys ("name|subject") active after the last good probe */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct entry *entries;

/* The settings mon_cache_set_options took (have_opts), else the defaults (mon_options_default's
 * TTL; mon_alerts_at's thresholds for NULL). Written at mon_open, before any reader thread. */
static struct mon_options opts;
static bool have_opts;

void mon_cache_set_options(const struct mon_options *o)
{
    if (o)
        opts = *o;
    have_opts = o != NULL;
}

int mon_cache_ttl_ms(void)
{
    return have_opts ? opts.probe_ttl_ms : MON_TTL_MS;
}

/* What identifies the settings of a probe: every field of src that reaches the probe. */
static void settings_of(const struct mon_src *src, char *buf, size_t len)
{
    snprintf(buf, len, "%d|%s|%u|%s|%s|%ld|%s|%s", src->remote, src->host, src->port,
             src->user, src->key, src->key_owner, src->docker_socket, src->container);
}

static void entry_free(struct entry *e)
{
    free(e->doc);
    json_decref(e->state);
    json_decref(e->alerts);
    free(e);
}

/* Drop idle entries (not busy) of name, or stale ones when name is NULL and all is false. */
static void prune(const char *name, bool all)
{
    struct entry **pp = &entries, *e;
    int64_t now = cu_mono_ms();

    while ((e = *pp) != NULL) {
        bool drop = !e->busy && (all || (name ? strcmp(e->name, name) == 0 :
                                         now - e->used_ms > STALE_MS));

        if (drop) {
            *pp = e->next;
            entry_free(e);
        } else {
            pp = &e->next;
        }
    }
}

static struct entry *find_or_add(const char *name, enum mon_file f)
{
    struct entry *e;

    for (e = entries; e; e = e->next)
        if (e->file == f && strcmp(e->name, name) == 0)
            return e;
    prune(NULL, false);
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->file = f;
    e->next = entries;
    entries = e;
    return e;
}

static mon_probe_fn probe_of(enum mon_file f)
{
    switch (f) {
    case MON_FILE_SERVER:
        return mon_probe_server;
    case MON_FILE_GPU:
        return mon_probe_gpu;
    case MON_FILE_CONTAINERS:
        return mon_probe_containers;
    case MON_FILE_CONTAINER:
        return mon_probe_container;
    default:
        return NULL;
    }
}

/* {"timestamp","target","type","error","metrics","alerts"} as compact text with a newline. */
static char *build_doc(const struct mon_src *src, enum mon_file f, json_t *metrics,
                       json_t *alerts, const char *error)
{
    char ts[32], clean[512];
    json_t *doc;
    char *text;

    /* a reason may quote what a host printed: keep it printable ASCII */
    snprintf(clean, sizeof(clean), "%s", error ? error : "");
    for (char *c = clean; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    cu_iso_now(ts, sizeof(ts));
    doc = json_pack("{s:s,s:s,s:s,s:o,s:o,s:O}", "timestamp", ts, "target", src->name,
                    "type", mon_file_type(f), "error", error ? json_string(clean) : json_null(),
                    "metrics", metrics ? metrics : json_null(), "alerts", alerts);
    text = cu_json_line(doc, JSON_COMPACT | JSON_PRESERVE_ORDER, NULL);
    json_decref(doc);
    return text;
}

/* Keys of alerts ("name|subject"), as a JSON object used as a set. */
static json_t *alert_keys(const json_t *alerts)
{
    json_t *set = json_object(), *a;
    size_t i;
    char key[256];

    json_array_foreach(alerts, i, a) {
        snprintf(key, sizeof(key), "%s|%s", json_string_value(json_object_get(a, "name")),
                 json_string_value(json_object_get(a, "subject")));
        json_object_set(set, key, a);
    }
    return set;
}

/* One audit line (action, status) per alert of set that other lacks; its message is the
 * alert's after "<target>: <prefix>". */
static void audit_missing(const char *action, const char *status, const char *target,
                          const char *type, json_t *set, json_t *other, const char *prefix)
{
    const char *key;
    json_t *a;
    char msg[300];

    json_object_foreach(set, key, a) {
        json_t *d;

        if (other && json_object_get(other, key))
            continue;
        snprintf(msg, sizeof(msg), "%s: %s%s", target, prefix,
                 json_string_value(json_object_get(a, "message")));
        d = json_pack("{s:s,s:s,s:O}", "target", target, "type", type, "alert", a);
        audit_log_event(action, status, msg, d);
        json_decref(d);
    }
}

/* One audit line per alert that appeared (in now, not in before) or cleared (the reverse). */
static void audit_transitions(const char *target, const char *type, json_t *before,
                              json_t *now)
{
    audit_missing("monitor_alert", "failure", target, type, now, before, "");
    audit_missing("monitor_alert_cleared", "success", target, type, before, now, "cleared: ");
}

static int copy_out(const struct entry *e, char **out, size_t *len)
{
    *out = malloc(e->len + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, e->doc, e->len + 1);
    *len = e->len;
    return 0;
}

/* A copy of the (dir, f) document: shared while fresh (the probe TTL), else probed once for
 * all waiters; its alerts by the thresholds of mon_cache_set_options. 0 or -ENOMEM. */
int mon_cache_get(const struct mon_src *src, enum mon_file f, char **out, size_t *len)
{
    char settings[sizeof(((struct entry *)0)->settings)], err[512] = "";
    mon_probe_fn probe = probe_of(f);
    json_t *state, *metrics, *alerts, *keys = NULL, *before = NULL;
    struct entry *e;
    char *doc;
    int rc;

    *out = NULL;
    *len = 0;
    if (!probe)
        return -ENOENT;
    settings_of(src, settings, sizeof(settings));
    pthread_mutex_lock(&lock);
    e = find_or_add(src->name, f);
    if (!e) {
        pthread_mutex_unlock(&lock);
        return -ENOMEM;
    }
    e->used_ms = cu_mono_ms();
    for (;;) {
        if (e->has_result && strcmp(e->settings, settings) == 0 &&
            cu_mono_ms() - e->done_ms < mon_cache_ttl_ms()) {
            rc = copy_out(e, out, len);
            pthread_mutex_unlock(&lock);
            return rc;
        }
        if (!e->busy)
            break;
        pthread_cond_wait(&cond, &lock);
    }
    e->busy = true;
    if (strcmp(e->settings, settings) != 0) {
        /* other settings: the old samples are not comparable */
        json_decref(e->state);
        e->state = NULL;
    }
    state = e->state;
    e->state = NULL;
    pthread_mutex_unlock(&lock);

    metrics = probe(src, &state, err, sizeof(err));
    alerts = metrics ? mon_alerts_at(mon_file_type(f), metrics, have_opts ? &opts : NULL) :
             json_array();
    doc = alerts ? build_doc(src, f, metrics, alerts, metrics ? NULL : err) : NULL;
    if (metrics && alerts)
        keys = alert_keys(alerts);

    pthread_mutex_lock(&lock);
    e->busy = false;
    e->state = state;
    snprintf(e->settings, sizeof(e->settings), "%s", settings);
    if (doc) {
        free(e->doc);
        e->doc = doc;
        e->len = strlen(doc);
        e->has_result = true;
        e->done_ms = cu_mono_ms();
    }
    if (keys) {
        /* a failed probe says nothing about the alerts: only a good one changes them */
        before = e->alerts;
        e->alerts = json_incref(keys);
    }
    rc = doc ? copy_out(e, out, len) : -ENOMEM;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);

    if (keys)
        audit_transitions(src->name, mon_file_type(f), before, keys);
    json_decref(before);
    json_decref(keys);
    json_decref(alerts);
    return rc;
}

/* Drop the results and alert state of directory name (NULL: all); entries in use stay. */
void mon_cache_forget(const char *name)
{
    pthread_mutex_lock(&lock);
    prune(name, name == NULL);
    pthread_mutex_unlock(&lock);
}
