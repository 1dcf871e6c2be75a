/* gateway.c: writes a rendering to the state directory, file by file and atomically, touching
 * only what changed. (Managed mode adds the Caddy admin reload here.) */
#include "core/gateway.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/statefile.h"

int gw_open(const struct reg_config *cfg)
{
    static const char *const dirs[] = { "dns", "dns/hosts.d", "routing", "tls" };
    char path[PATH_MAX];
    int rc = state_clean_temps(cfg->state_dir);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        rc = state_path(path, sizeof(path), cfg->state_dir, dirs[i]);
        if (rc == 0)
            rc = state_mkdir(path, 0700);
        if (rc == 0)
            rc = state_clean_temps(path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Write data to state_dir/rel when it differs from old (NULL: always). */
static int put_file(const struct reg_config *cfg, const char *rel, const char *data,
                    const char *old)
{
    char path[PATH_MAX];
    int rc;

    if (old && strcmp(old, data) == 0)
        return 0;
    rc = state_path(path, sizeof(path), cfg->state_dir, rel);
    if (rc == 0)
        rc = state_write_atomic(path, data, strlen(data), 0600);
    return rc;
}

static const struct render_file *find_host(const struct render_out *r, const char *name)
{
    for (size_t i = 0; r && i < r->nhosts; i++)
        if (strcmp(r->hosts[i].name, name) == 0)
            return &r->hosts[i];
    return NULL;
}

/* Remove hosts.d entries that next does not have: all of prev's leftovers, or, at mount, every
 * stray file (temp files of an interrupted write included). */
static int prune_hosts(const struct reg_config *cfg, const struct render_out *next,
                       const struct render_out *prev)
{
    char dir[PATH_MAX], path[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (prev) {
        for (size_t i = 0; i < prev->nhosts && rc == 0; i++) {
            if (find_host(next, prev->hosts[i].name))
                continue;
            rc = state_path(dir, sizeof(dir), cfg->state_dir, "dns/hosts.d");
            if (rc == 0)
                rc = state_path(path, sizeof(path), dir, prev->hosts[i].name);
            if (rc == 0)
                rc = state_unlink(path);
        }
        return rc;
    }
    rc = state_path(dir, sizeof(dir), cfg->state_dir, "dns/hosts.d");
    if (rc < 0)
        return rc;
    d = opendir(dir);
    if (!d)
        return -errno;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || find_host(next, de->d_name))
            continue;
        rc = state_path(path, sizeof(path), dir, de->d_name);
        if (rc == 0)
            rc = state_unlink(path);
    }
    closedir(d);
    return rc;
}

int gw_apply(const struct reg_config *cfg, const struct render_out *next,
             const struct render_out *prev)
{
    char rel[128];
    int rc;

    rc = put_file(cfg, "dns/dnsmasq.conf", next->dnsmasq_conf,
                  prev ? prev->dnsmasq_conf : NULL);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < next->nhosts; i++) {
        const struct render_file *old = prev ? find_host(prev, next->hosts[i].name) : NULL;

        if (snprintf(rel, sizeof(rel), "dns/hosts.d/%s", next->hosts[i].name) >=
            (int)sizeof(rel))
            return -ENAMETOOLONG;
        rc = put_file(cfg, rel, next->hosts[i].data, old ? old->data : (prev ? "" : NULL));
        if (rc < 0)
            return rc;
    }
    rc = prune_hosts(cfg, next, prev);
    if (rc < 0)
        return rc;
    return put_file(cfg, "routing/Caddyfile", next->caddyfile, prev ? prev->caddyfile : NULL);
}

int gw_reload(bool force)
{
    (void)force;
    return 0;
}
