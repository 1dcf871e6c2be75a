/* targets.c: monitoring targets: the table of targets and its persistence in
 * state/monitoring/targets.json (atomic writes, one audit line per change); target.json's
 * validator is targetcfg.c.
 * A key file must pass the key rules (keys.c) for its writer, whose uid the table keeps. A
 * table and its file only: it calls neither the probe cache nor the SSH pool (monitor.c makes
 * them forget a changed target). */
#include "monitor/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/registry.h"
#include "core/statefile.h"
#include "core/validate.h"

struct target {
    char name[MON_NAME_MAX];
    bool configured;
    struct mon_target_cfg cfg;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct target *targets;
static size_t ntargets;
static char path[PATH_MAX];

/* ---- the table ---- */

static ssize_t find(const char *name)
{
    for (size_t i = 0; i < ntargets; i++)
        if (strcmp(targets[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Take the lock and set *i to the index of target name: 0, or -ENOENT (still locked). */
static int lock_find(const char *name, ssize_t *i)
{
    pthread_mutex_lock(&lock);
    *i = find(name);
    return *i < 0 ? -ENOENT : 0;
}

/* Write the table to targets.json. 0 or -errno. Called with the lock held. */
static int persist(void)
{
    json_t *root = json_object(), *arr = json_array();
    char *doc = NULL;
    int rc = -ENOMEM;

    if (!root || !arr)
        goto out;
    for (size_t i = 0; i < ntargets; i++) {
        const struct target *x = &targets[i];
        json_t *t = json_pack("{s:s,s:o}", "name", x->name, "config",
                              x->configured ? mon_target_cfg_json(&x->cfg) : json_null());

        /* whose key it is: the key rules are applied again at every login */
        if (t && x->configured && x->cfg.key_owner >= 0)
            json_object_set_new(t, "key_owner", json_integer(x->cfg.key_owner));
        if (!t || json_array_append_new(arr, t))
            goto out;
    }
    json_object_set_new(root, "version", json_integer(1));
    json_object_set(root, "targets", arr);
    doc = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!doc)
        goto out;
    rc = state_write_atomic(path, doc, strlen(doc), 0600);
out:
    free(doc);
    json_decref(arr);
    json_decref(root);
    return rc;
}

static void audit(const char *action, const char *msg_fmt, const char *name, const char *who,
                  json_t *details)
{
    char msg[160];

    snprintf(msg, sizeof(msg), msg_fmt, name);
    audit_log(action, "success", msg, who, details);
    json_decref(details);
}

/* Append an unconfigured target and persist. 0, -EINVAL, -EEXIST, -ENOSPC or -errno. */
int mon_target_table_add(const char *name, const char *who)
{
    struct target *grown;
    int rc;

    if (val_name(name) < 0) {
        reg_refuse_path("monitor_target_add", who, -EINVAL, val_reason(), "monitor/%.200s",
                        name);
        return -EINVAL;
    }
    if (strcmp(name, "local") == 0) {
        rc = -EEXIST;
        goto refused;
    }
    pthread_mutex_lock(&lock);
    if (find(name) >= 0) {
        rc = -EEXIST;
        goto out;
    }
    if (ntargets >= MON_TARGETS_MAX) {
        rc = -ENOSPC;
        goto out;
    }
    grown = realloc(targets, (ntargets + 1) * sizeof(*targets));
    if (!grown) {
        rc = -ENOMEM;
        goto out;
    }
    targets = grown;
    memset(&targets[ntargets], 0, sizeof(targets[0]));
    snprintf(targets[ntargets].name, sizeof(targets[0].name), "%s", name);
    ntargets++;
    rc = persist();
    if (rc < 0)
        ntargets--;
out:
    pthread_mutex_unlock(&lock);
    if (rc == 0)
        audit("monitor_target_add", "Added monitoring target %s", name, who,
              json_pack("{s:s}", "target", name));
refused:
    if (rc == -EEXIST)
        reg_refuse_path("monitor_target_add", who, rc, "local or another target has the name",
                        "monitor/%s", name);
    else if (rc == -ENOSPC) {
        char why[64];

        snprintf(why, sizeof(why), "a mount keeps at most %d targets", MON_TARGETS_MAX);
        reg_refuse_path("monitor_target_add", who, rc, why, "monitor/%s", name);
    }
    return rc;
}

/* Remove a target, persist, audit. 0, -ENOENT or -errno. */
int mon_target_table_remove(const char *name, const char *who)
{
    struct target old;
    ssize_t i;
    int rc;

    rc = lock_find(name, &i);
    if (rc < 0)
        goto out;
    old = targets[i];
    memmove(&targets[i], &targets[i + 1], (ntargets - (size_t)i - 1) * sizeof(*targets));
    ntargets--;
    rc = persist();
    if (rc < 0) {
        memmove(&targets[i + 1], &targets[i], (ntargets - (size_t)i) * sizeof(*targets));
        targets[i] = old;
        ntargets++;
    }
out:
    pthread_mutex_unlock(&lock);
    if (rc == 0) {
        audit("monitor_target_remove", "Removed monitoring target %s", name, who,
              json_pack("{s:s,s:o}", "target", name, "config",
                        old.configured ? mon_target_cfg_json(&old.cfg) : json_null()));
    }
    return rc;
}

/* Validate (the key file against the key rules for writer who included), persist and audit
 * new settings, or clear them (buf NULL). 0, 1 (unchanged), -EINVAL, -EFBIG, -EACCES (a key
 * in no allowed place, see mon_keys_load), -ENOENT or -errno. */
int mon_target_table_set(const char *name, const char *buf, size_t len, const char *who)
{
    struct mon_target_cfg cfg, oldcfg;
    bool oldconf = false;
    ssize_t i;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.key_owner = -1;
    if (buf) {
        const char *why = "";

        rc = mon_target_parse_why(buf, len, &cfg, &why);
        if (rc == 0) {
            cfg.key_owner = mon_keys_owner(who);
            rc = mon_keys_load(cfg.key, cfg.key_owner, NULL, NULL);
            why = mon_keys_reason();
        }
        /* a refused value or key says why (also for a target that is gone: the value is
         * judged first, whatever the target) */
        if (rc == -EINVAL || rc == -EFBIG || rc == -EACCES)
            reg_refuse_path("monitor_target_update", who, rc, why,
                            "monitor/%.200s/target.json", name);
        if (rc < 0)
            return rc;
    }
    rc = lock_find(name, &i);
    if (rc < 0)
        goto out;
    oldconf = targets[i].configured;
    oldcfg = targets[i].cfg;
    if (oldconf == (buf != NULL) && (!buf || mon_target_cfg_equal(&oldcfg, &cfg))) {
        rc = 1;     /* unchanged: no write, no audit line */
        goto out;
    }
    targets[i].configured = buf != NULL;
    targets[i].cfg = cfg;
    rc = persist();
    if (rc < 0) {
        targets[i].configured = oldconf;
        targets[i].cfg = oldcfg;
    }
out:
    pthread_mutex_unlock(&lock);
    if (rc == 0) {
        audit("monitor_target_update", "Updated monitoring target %s", name, who,
              json_pack("{s:s,s:o,s:o}", "target", name,
                        "old", oldconf ? mon_target_cfg_json(&oldcfg) : json_null(),
                        "new", buf ? mon_target_cfg_json(&cfg) : json_null()));
    }
    return rc;
}

/* 0 when name is a target (copying its settings into the non-NULL outputs), else -ENOENT. */
int mon_target_lookup(const char *name, struct mon_target_cfg *cfg, bool *configured)
{
    ssize_t i;

    pthread_mutex_lock(&lock);
    i = find(name);
    if (i >= 0 && cfg)
        *cfg = targets[i].cfg;
    if (i >= 0 && configured)
        *configured = targets[i].configured;
    pthread_mutex_unlock(&lock);
    return i >= 0 ? 0 : -ENOENT;
}

/* fn for every target name in creation order (without the lock, over a copy). */
void mon_target_each(void (*fn)(const char *name, void *ctx), void *ctx)
{
    char (*names)[MON_NAME_MAX] = NULL;
    size_t n;

    pthread_mutex_lock(&lock);
    n = ntargets;
    if (n)
        names = malloc(n * sizeof(*names));
    for (size_t i = 0; names && i < n; i++)
        memcpy(names[i], targets[i].name, MON_NAME_MAX);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; names && i < n; i++)
        fn(names[i], ctx);
    free(names);
}

/* Parse targets.json into the table. 0 or -EINVAL with the reason in why. */
static int parse_file(const char *doc, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr), *arr, *t;
    size_t i;
    int rc = -EINVAL;

    arr = json_object_get(root, "targets");
    if (!json_is_array(arr) || json_integer_value(json_object_get(root, "version")) != 1) {
        snprintf(why, whylen, "%s", root ? "no version 1 \"targets\" list" : jerr.text);
        goto out;
    }
    if (json_array_size(arr) > MON_TARGETS_MAX) {
        snprintf(why, whylen, "more than %d targets", MON_TARGETS_MAX);
        goto out;
    }
    targets = calloc(json_array_size(arr) + 1, sizeof(*targets));
    if (!targets) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach(arr, i, t) {
        const char *name = mon_json_plain(json_object_get(t, "name"));
        json_t *cfg = json_object_get(t, "config");
        json_t *owner = json_object_get(t, "key_owner");
        struct target *x = &targets[ntargets];
        char *text;

        if (!name || val_name(name) < 0 || strcmp(name, "local") == 0 || find(name) >= 0 ||
            !cfg) {
            snprintf(why, whylen, "bad or duplicate target at index %zu", i);
            goto out;
        }
        snprintf(x->name, sizeof(x->name), "%s", name);
        if (json_is_object(cfg)) {
            text = json_dumps(cfg, JSON_COMPACT);
            if (!text || mon_target_parse(text, strlen(text), &x->cfg) < 0) {
                free(text);
                snprintf(why, whylen, "invalid config of target %s", name);
                goto out;
            }
            free(text);
            x->configured = true;
            /* without it (written before the key rules), only the keys directory counts */
            if (json_is_integer(owner) && json_integer_value(owner) >= 0 &&
                json_integer_value(owner) < 0x7fffffff)
                x->cfg.key_owner = (long)json_integer_value(owner);
        } else if (!json_is_null(cfg)) {
            snprintf(why, whylen, "invalid config of target %s", name);
            goto out;
        }
        ntargets++;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Load file (missing: no targets). 0 or -errno with the reason in err; a corrupt file is left
 * in place with a copy as targets.json.corrupt-<time>, as services.json is. */
int mon_target_load(const char *file, char *err, size_t errlen)
{
    char *doc = NULL, why[200] = "", aside[PATH_MAX + 64];
    size_t len = 0;
    int rc;

    if (snprintf(path, sizeof(path), "%s", file) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    mon_target_unload();
    rc = state_read_file(path, &doc, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = parse_file(doc, len, why, sizeof(why));
    if (rc == -EINVAL) {
        state_keep_corrupt(path, doc, len, aside, sizeof(aside));
        snprintf(err, errlen, "%s is corrupt (%s); refusing to mount. Copy kept at %s",
                 path, why, aside[0] ? aside : "(none: copy failed)");
    } else if (rc < 0) {
        snprintf(err, errlen, "cannot load %s: %s", path, strerror(-rc));
    }
    if (rc < 0)
        mon_target_unload();
    free(doc);
    return rc;
}

/* Forget every target (the file is untouched). */
void mon_target_unload(void)
{
    pthread_mutex_lock(&lock);
    free(targets);
    targets = NULL;
    ntargets = 0;
    pthread_mutex_unlock(&lock);
}
