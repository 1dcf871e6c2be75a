/* targets.c: monitoring targets: the strict target.json validator, the table of targets, and
 * its persistence in state/monitoring/targets.json (atomic writes, one audit line per change).
 * A key file must pass the key rules (keys.c) for its writer, whose uid the table keeps. */
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

/* ---- validation ---- */

static const char *const type_names[] = { "server", "gpu", "containers" };
static const enum mon_file type_files[] = { MON_FILE_SERVER, MON_FILE_GPU, MON_FILE_CONTAINERS };
#define NTYPES 3

/* The string value of j when it is a string without NUL bytes, else NULL. */
static const char *plain_string(const json_t *j)
{
    const char *s = json_string_value(j);

    return s && strlen(s) == json_string_length(j) ? s : NULL;
}

static bool host_ok(const char *s)
{
    char probe[MON_HOST_MAX + 8];

    if (strlen(s) >= MON_HOST_MAX)
        return false;
    if (val_is_ipv4(s) || val_is_hostname(s))
        return true;
    /* IPv6: what an upstream accepts in brackets (no zone id) */
    snprintf(probe, sizeof(probe), "[%s]:1", s);
    return strchr(s, ':') && val_upstream(probe, NULL) == 0;
}

/* ^[a-z_][a-z0-9_-]{0,31}$ */
static bool user_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= MON_USER_MAX || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* An absolute path shorter than max, of [A-Za-z0-9._-] and the extra characters, without
 * empty, "." or ".." components. */
static bool path_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    const char *comp;

    if (n < 2 || n >= max || s[0] != '/' || s[n - 1] == '/')
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-' || *c == '/' || (*c && strchr(extra, *c))))
            return false;
    for (comp = s + 1; comp; ) {
        const char *slash = strchr(comp, '/');
        size_t len = slash ? (size_t)(slash - comp) : strlen(comp);

        if (len == 0 || (len == 1 && comp[0] == '.') ||
            (len == 2 && comp[0] == '.' && comp[1] == '.'))
            return false;
        comp = slash ? slash + 1 : NULL;
    }
    return true;
}

static int types_of(const json_t *j, unsigned *types)
{
    size_t i;
    json_t *t;

    *types = 0;
    if (!json_is_array(j) || json_array_size(j) == 0)
        return -EINVAL;
    json_array_foreach(j, i, t) {
        const char *s = plain_string(t);
        size_t k;

        for (k = 0; s && k < NTYPES; k++)
            if (strcmp(s, type_names[k]) == 0)
                break;
        if (!s || k == NTYPES || (*types & MON_BIT(type_files[k])))
            return -EINVAL;
        *types |= MON_BIT(type_files[k]);
    }
    return 0;
}

/* mon_target_parse, with why set to the reason of a refusal (a constant text). */
static int parse_cfg(const char *buf, size_t len, struct mon_target_cfg *out, const char **why)
{
    static const char *const keys[] = { "ssh_host", "ssh_port", "ssh_user", "ssh_key",
                                        "docker_socket", "types" };
    json_t *root = NULL, *j;
    const char *key, *s;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    out->key_owner = -1;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    *why = "target.json is longer than 4096 bytes";
    if (len > VAL_VALUE_MAX)
        return -EFBIG;
    *why = "target.json holds a control byte, a NUL byte or a byte outside ASCII";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c >= 0x7f)
            return -EINVAL;
    }
    *why = "target.json is not one JSON document without repeated keys";
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        goto out;
    *why = "target.json is not a JSON object";
    if (!json_is_object(root))
        goto out;
    *why = "target.json has an unknown key (the keys are ssh_host, ssh_port, ssh_user, ssh_key, "
           "docker_socket and types)";
    json_object_foreach(root, key, j) {
        size_t k;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (strcmp(key, keys[k]) == 0)
                break;
        if (k == sizeof(keys) / sizeof(keys[0]))
            goto out;
    }
    s = plain_string(json_object_get(root, "ssh_host"));
    *why = "ssh_host is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_host is not an IPv4 address, an IPv6 address or a host name of at most 253 "
           "bytes";
    if (!host_ok(s))
        goto out;
    snprintf(out->host, sizeof(out->host), "%s", s);
    j = json_object_get(root, "ssh_port");
    out->port = 22;
    *why = "ssh_port is not an integer 1-65535";
    if (j) {
        if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 65535)
            goto out;
        out->port = (unsigned)json_integer_value(j);
    }
    s = plain_string(json_object_get(root, "ssh_user"));
    *why = "ssh_user is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_user is not a user name: [a-z_] then [a-z0-9_-], at most 32 bytes";
    if (!user_ok(s))
        goto out;
    snprintf(out->user, sizeof(out->user), "%s", s);
    s = plain_string(json_object_get(root, "ssh_key"));
    *why = "ssh_key is missing or not a string";
    if (!s)
        goto out;
    *why = "ssh_key is not an absolute path of [A-Za-z0-9._+@=,:~-] components, none . or ..";
    if (!path_ok(s, MON_KEY_MAX, "+@=,:~"))
        goto out;
    snprintf(out->key, sizeof(out->key), "%s", s);
    j = json_object_get(root, "docker_socket");
    *why = "docker_socket is not null or an absolute path of [A-Za-z0-9._-] components, none . "
           "or ..";
    if (j && !json_is_null(j)) {
        s = plain_string(j);
        if (!s || !path_ok(s, MON_SOCK_MAX, ""))
            goto out;
        snprintf(out->docker_socket, sizeof(out->docker_socket), "%s", s);
    }
    j = json_object_get(root, "types");
    *why = "types is not a non-empty list of distinct \"server\", \"gpu\" and \"containers\"";
    if (!j)
        out->types = MON_BIT(MON_FILE_SERVER) | MON_BIT(MON_FILE_GPU) |
                     MON_BIT(MON_FILE_CONTAINERS);
    else if (types_of(j, &out->types) < 0)
        goto out;
    *why = "";
    rc = 0;
out:
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        out->key_owner = -1;
    }
    json_decref(root);
    return rc;
}

/* Strictly validate a target.json write into *out. 0, -EINVAL or -EFBIG. Required: ssh_host,
 * ssh_user, ssh_key; ssh_port defaults to 22, docker_socket to null, types to all three. */
int mon_target_parse(const char *buf, size_t len, struct mon_target_cfg *out)
{
    const char *why;

    return parse_cfg(buf, len, out, &why);
}

static json_t *cfg_json(const struct mon_target_cfg *c)
{
    json_t *o, *types;

    types = json_array();
    for (size_t k = 0; types && k < NTYPES; k++)
        if (c->types & MON_BIT(type_files[k]))
            json_array_append_new(types, json_string(type_names[k]));
    o = json_pack("{s:s,s:i,s:s,s:s,s:o,s:o}", "ssh_host", c->host, "ssh_port", (int)c->port,
                  "ssh_user", c->user, "ssh_key", c->key, "docker_socket",
                  *c->docker_socket ? json_string(c->docker_socket) : json_null(),
                  "types", types);
    return o;
}

/* The settings as compact JSON, keys in target.json's order, malloc'd (NULL without memory). */
char *mon_target_json(const struct mon_target_cfg *cfg)
{
    json_t *o = cfg_json(cfg);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(o);
    return s;
}

/* ---- the table ---- */

static ssize_t find(const char *name)
{
    for (size_t i = 0; i < ntargets; i++)
        if (strcmp(targets[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
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
        json_t *t = json_pack("{s:s,s:o}", "name", targets[i].name, "config",
                              targets[i].configured ? cfg_json(&targets[i].cfg) : json_null());

        /* whose key it is: the key rules are applied again at every login */
        if (t && targets[i].configured && targets[i].cfg.key_owner >= 0)
            json_object_set_new(t, "key_owner", json_integer(targets[i].cfg.key_owner));
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
int mon_tgt_add(const char *name, const char *who)
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

/* Remove a target, persist, forget its cache and session. 0, -ENOENT or -errno. */
int mon_tgt_remove(const char *name, const char *who)
{
    struct target old;
    ssize_t i;
    int rc;

    pthread_mutex_lock(&lock);
    i = find(name);
    if (i < 0) {
        rc = -ENOENT;
        goto out;
    }
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
        mon_cache_forget(name);
        mon_ssh_forget(name);
        audit("monitor_target_remove", "Removed monitoring target %s", name, who,
              json_pack("{s:s,s:o}", "target", name, "config",
                        old.configured ? cfg_json(&old.cfg) : json_null()));
    }
    return rc;
}

static bool cfg_equal(const struct mon_target_cfg *a, const struct mon_target_cfg *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->user, b->user) == 0 && strcmp(a->key, b->key) == 0 &&
           strcmp(a->docker_socket, b->docker_socket) == 0 && a->types == b->types &&
           a->key_owner == b->key_owner;
}

/* Validate (the key file against the key rules for writer who included), persist and audit
 * new settings, or clear them (buf NULL). 0 (also unchanged), -EINVAL, -EFBIG, -EACCES (a key
 * in no allowed place, see mon_keys_load), -ENOENT or -errno. */
int mon_tgt_set(const char *name, const char *buf, size_t len, const char *who)
{
    struct mon_target_cfg cfg, oldcfg;
    bool oldconf = false;
    ssize_t i;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.key_owner = -1;
    if (buf) {
        const char *why = "";

        rc = parse_cfg(buf, len, &cfg, &why);
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
    pthread_mutex_lock(&lock);
    i = find(name);
    if (i < 0) {
        rc = -ENOENT;
        goto out;
    }
    oldconf = targets[i].configured;
    oldcfg = targets[i].cfg;
    if (oldconf == (buf != NULL) && (!buf || cfg_equal(&oldcfg, &cfg))) {
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
        mon_cache_forget(name);
        mon_ssh_forget(name);
        audit("monitor_target_update", "Updated monitoring target %s", name, who,
              json_pack("{s:s,s:o,s:o}", "target", name,
                        "old", oldconf ? cfg_json(&oldcfg) : json_null(),
                        "new", buf ? cfg_json(&cfg) : json_null()));
    }
    return rc > 0 ? 0 : rc;
}

/* 0 when name is a target (copying its settings into the non-NULL outputs), else -ENOENT. */
int mon_tgt_lookup(const char *name, struct mon_target_cfg *cfg, bool *configured)
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
void mon_tgt_each(void (*fn)(const char *name, void *ctx), void *ctx)
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

/* Keep a copy of a corrupt targets.json beside it, for the operator (the file stays). */
static void keep_aside(const char *doc, size_t len, char *aside, size_t asidelen)
{
    char ts[32];

    state_now_iso(ts, sizeof(ts));
    snprintf(aside, asidelen, "%s.corrupt-%s", path, ts);
    state_write_atomic(aside, doc, len, 0600);
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
        const char *name = plain_string(json_object_get(t, "name"));
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
int mon_tgt_load(const char *file, char *err, size_t errlen)
{
    char *doc = NULL, why[200] = "", aside[PATH_MAX + 64];
    size_t len = 0;
    int rc;

    if (snprintf(path, sizeof(path), "%s", file) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    mon_tgt_unload();
    rc = state_read_file(path, &doc, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = parse_file(doc, len, why, sizeof(why));
    if (rc == -EINVAL) {
        keep_aside(doc, len, aside, sizeof(aside));
        snprintf(err, errlen, "%s is corrupt (%s); refusing to mount. Copy kept at %s",
                 path, why, aside);
    } else if (rc < 0) {
        snprintf(err, errlen, "cannot load %s: %s", path, strerror(-rc));
    }
    if (rc < 0)
        mon_tgt_unload();
    free(doc);
    return rc;
}

/* Forget every target (the file is untouched). */
void mon_tgt_unload(void)
{
    pthread_mutex_lock(&lock);
    free(targets);
    targets = NULL;
    ntargets = 0;
    pthread_mutex_unlock(&lock);
}
