/* mountopts.c: state/mount.json, the options a state directory was mounted with, and the check
 * that a mount's --domains keeps every registered service valid (see mountopts.h). */
#include "core/mountopts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/statefile.h"
#include "core/validate.h"
#include "util/util.h"

#define MOPT_FILE "mount.json"
#define MOPT_VERSION 1

int mopt_load(const char *state_dir, json_t **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    char *doc = NULL;
    size_t len = 0;
    json_t *root = NULL, *opts, *v;
    const char *key;
    int rc;

    *out = NULL;
    rc = state_path(path, sizeof(path), state_dir, MOPT_FILE);
    if (rc < 0) {
        snprintf(err, errlen, "state directory path too long");
        return rc;
    }
    rc = state_read_file(path, &doc, &len);
    if (rc == -ENOENT) {
        *out = json_object();
        return *out ? 0 : -ENOMEM;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = -EINVAL;
    root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
    opts = json_object_get(root, "options");
    if (!json_is_integer(json_object_get(root, "version")) ||
        json_integer_value(json_object_get(root, "version")) != MOPT_VERSION ||
        !json_is_object(opts))
        goto bad;
    json_object_foreach(opts, key, v)
        if (!json_is_string(v))
            goto bad;
    *out = json_incref(opts);
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "%s is not a mount options record ({\"version\":1,\"options\":{...}} "
             "of strings); move it away to mount with the options given", path);
out:
    json_decref(root);
    free(doc);
    return rc;
}

int mopt_save(const char *state_dir, const json_t *opts)
{
    char path[PATH_MAX];
    char *text = NULL, *old = NULL;
    size_t oldlen = 0, len = 0;
    json_t *root;
    int rc;

    rc = state_path(path, sizeof(path), state_dir, MOPT_FILE);
    if (rc < 0)
        return rc;
    root = json_pack("{s:i,s:O}", "version", MOPT_VERSION, "options", (json_t *)opts);
    text = root ? cu_json_line(root, JSON_INDENT(2) | JSON_SORT_KEYS, &len) : NULL;
    json_decref(root);
    if (!text)
        return -ENOMEM;
    if (state_read_file(path, &old, &oldlen) == 0 && oldlen == len &&
        memcmp(old, text, len) == 0) {
        rc = 0;                 /* the same options again */
        goto out;
    }
    rc = state_write_atomic(path, text, len, 0600);
out:
    free(old);
    free(text);
    return rc;
}

int mopt_check_domains(const struct cfs_config *cfg, char *err, size_t errlen)
{
    char path[PATH_MAX], names[384] = "", list[256] = "";
    char *doc = NULL;
    size_t len = 0, i, bad = 0, used = 0;
    json_t *root, *svcs, *s;
    int rc;

    rc = state_path(path, sizeof(path), cfg->state_dir, "services.json");
    if (rc < 0 || state_read_file(path, &doc, &len) < 0)
        return 0;
    root = json_loadb(doc, len, 0, NULL);
    free(doc);
    svcs = json_object_get(root, "services");
    json_array_foreach(svcs, i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *domain = json_string_value(json_object_get(s, "domain"));
        const char *status = json_string_value(json_object_get(s, "status"));
        int n;

        if (!name || !domain || !status || strcmp(status, "inactive") == 0 || !*domain ||
            val_domain(domain, cfg->suffixes_ptr, cfg->nsuffixes) == 0)
            continue;
        if (bad++ < 8 && used < sizeof(names)) {
            n = snprintf(names + used, sizeof(names) - used, "%s%s (%s)", used ? ", " : "",
                         name, domain);
            used = n < 0 ? sizeof(names) : used + (size_t)n;
        }
    }
    json_decref(root);
    if (bad == 0)
        return 0;
    used = 0;
    for (i = 0; i < cfg->nsuffixes && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? "," : "",
                         cfg->suffixes[i]);

        used = n < 0 ? sizeof(list) : used + (size_t)n;
    }
    snprintf(err, errlen, "--domains %s does not cover %zu registered service%s: %s%s; mount "
             "with a --domains (-o domains=) that lists their suffixes", list, bad,
             bad == 1 ? "" : "s", names, bad > 8 ? ", ..." : "");
    return -EINVAL;
}
