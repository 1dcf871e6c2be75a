/* gateway.c: writes a rendering to the state directory, file by file and atomically, touching
 * only what changed, and in managed mode loads the new Caddy JSON config into the running Caddy
 * through its admin unix socket (libcurl), only when it changed. curl and Caddy errors map to
 * errno here, in caddy_errno. */
#include "core/gateway.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <jansson.h>

#include "audit/audit.h"
#include "core/curlerr.h"
#include "core/statefile.h"
#include "core/supervisor.h"

/* The proxy's config under the state directory, and the file an earlier version wrote. */
#define GW_PROXY_CONF "routing/caddy.json"
#define GW_OLD_PROXY_CONF "routing/Caddyfile"

/* Set once the supervisor runs Caddy; before that (at mount) Caddy reads the file itself. */
static const struct cfs_config *live_cfg;
/* Serializes admin requests (renewal reloads race with registry commits otherwise). */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;

void gw_set_live(const struct cfs_config *cfg)
{
    live_cfg = cfg;
}

/* Response body collected from the admin API, bounded. */
struct body {
    char buf[1024];
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb, room = sizeof(b->buf) - 1 - b->len;

    memcpy(b->buf + b->len, ptr, n < room ? n : room);
    b->len += n < room ? n : room;
    b->buf[b->len] = '\0';
    return n;
}

/* The one place where curl and Caddy outcomes become errno: 0 when Caddy took the config,
 * -EIO when it refused it or could not be reached (the operation fails, the old config stays),
 * -ENOMEM when curl could not even start. Of curlerr_errno's map only -ENOMEM passes through:
 * a write under services/ or ca/ documents EIO for every proxy failure. CURLE_FAILED_INIT is
 * caddy_load's own mark for a handle or header list it could not allocate (the shared map
 * gives it -EIO). why gets a one-line reason. */
static int caddy_errno(CURLcode cc, long http, const struct body *b, char *why, size_t whylen)
{
    json_t *j;

    if (curlerr_errno(cc) == -ENOMEM || cc == CURLE_FAILED_INIT) {
        snprintf(why, whylen, "curl: %s", curl_easy_strerror(cc));
        return -ENOMEM;
    }
    if (cc != CURLE_OK) {
        snprintf(why, whylen, "caddy admin socket: %s", curl_easy_strerror(cc));
        return -EIO;
    }
    if (http == 200)
        return 0;
    j = json_loads(b->buf, 0, NULL);
    snprintf(why, whylen, "caddy refused the config (HTTP %ld): %s", http,
             json_is_string(json_object_get(j, "error")) ?
             json_string_value(json_object_get(j, "error")) : b->buf);
    json_decref(j);
    return -EIO;
}

/* POST the JSON config to /load on this mount's admin socket (sup_admin_socket). force adds
 * Cache-Control: must-revalidate, so Caddy reloads even an identical config (new certificate
 * files behind the same paths). 0 or -errno. */
static int caddy_load(const char *config, bool force, char *why, size_t whylen)
{
    char sock[PATH_MAX];
    struct curl_slist *hdr = NULL;
    struct body b = { .len = 0 };
    CURL *h = NULL;
    CURLcode cc = CURLE_FAILED_INIT;
    long http = 0;
    int rc;

    why[0] = '\0';
    if (sup_admin_socket(sock, sizeof(sock)) < 0) {
        snprintf(why, whylen, "caddy has no admin socket");
        return -EIO;
    }
    if (!sup_caddy_wait_ready(10000)) {
        snprintf(why, whylen, "caddy is not answering on its admin socket");
        return -EIO;
    }
    pthread_mutex_lock(&admin_lock);
    h = curl_easy_init();
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Host;");   /* Caddy 2.6 refuses any non-empty Host */
    if (force)
        hdr = curl_slist_append(hdr, "Cache-Control: must-revalidate");
    if (h && hdr) {
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
        curl_easy_setopt(h, CURLOPT_URL, "http://localhost/load");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, config);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(config));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    }
    rc = caddy_errno(cc, http, &b, why, whylen);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    pthread_mutex_unlock(&admin_lock);
    return rc;
}

/* Audit a failed reload with Caddy's own message. */
static void audit_reload_failure(const char *why)
{
    json_t *d = json_pack("{s:s}", "error", why);

    syslog(LOG_ERR, "gateway: %s", why);
    audit_log_event("proxy_reload", "failure", why, d);
    json_decref(d);
}

int gw_open(const struct cfs_config *cfg)
{
    static const char *const dirs[] = { "dns", "dns/hosts.d", "routing", "tls", "tls/serving" };
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
static int put_file(const struct cfs_config *cfg, const char *rel, const char *data,
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

/* The hosts.d file called name in r, or NULL: a binary search (render_all sorts them by name
 * with strcmp), so that a commit at 10,000 services does not compare every pair of names. */
static const struct render_file *find_host(const struct render_out *r, const char *name)
{
    size_t lo = 0, hi = r ? r->nhosts : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->hosts[mid].name, name);

        if (c == 0)
            return &r->hosts[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Remove hosts.d entries that next does not have: all of prev's leftovers, or, at mount, every
 * stray file (temp files of an interrupted write included). */
static int prune_hosts(const struct cfs_config *cfg, const struct render_out *next,
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

int gw_apply(const struct cfs_config *cfg, const struct render_out *next,
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
    if (live_cfg && (!prev || strcmp(prev->proxy, next->proxy) != 0)) {
        char why[1200];

        /* Caddy first: if it refuses, the file on disk still holds what it runs. */
        rc = caddy_load(next->proxy, false, why, sizeof(why));
        if (rc < 0) {
            audit_reload_failure(why);
            return rc;
        }
    }
    rc = put_file(cfg, GW_PROXY_CONF, next->proxy, prev ? prev->proxy : NULL);
    if (rc == 0 && !prev) {
        char old[PATH_MAX];

        /* the Caddyfile an earlier version wrote: nothing reads it any more */
        rc = state_path(old, sizeof(old), cfg->state_dir, GW_OLD_PROXY_CONF);
        if (rc == 0)
            rc = state_unlink(old);
    }
    return rc;
}

int gw_reload(bool force)
{
    char path[PATH_MAX], why[1200];
    char *doc = NULL;
    size_t len;
    int rc;

    if (!live_cfg)
        return 0;
    rc = state_path(path, sizeof(path), live_cfg->state_dir, GW_PROXY_CONF);
    if (rc == 0)
        rc = state_read_file(path, &doc, &len);
    if (rc == 0)
        rc = caddy_load(doc, force, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "cannot read %s: %s", GW_PROXY_CONF, strerror(-rc));
    if (rc < 0) {
        audit_reload_failure(why);
    } else if (force) {
        json_t *d = json_pack("{s:b}", "forced", 1);

        audit_log_event("proxy_reload", "success", "Reloaded the proxy (certificates changed)",
                        d);
        json_decref(d);
    }
    free(doc);
    return rc;
}
