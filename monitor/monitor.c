/* monitor.c: the monitor module's face: start and stop, the directory model below monitor/
 * (local, targets, directories derived from services' monitoring attributes), live reads
 * through the cache, metrics.prom, and the target operations with their name rules. */
#include "monitor/monitor.h"
#include "monitor/probe.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>

#include "core/statefile.h"

/* metrics.prom runs at most this many probes at once. */
#define METRICS_THREADS 16

static const char *const file_names[MON_NFILES] = {
    "server.json", "gpu.json", "containers.json", "container.json", "target.json",
};
static const char *const file_types[MON_NFILES] = {
    "server", "gpu", "containers", "container", NULL,
};

static char docker_socket[MON_SOCK_MAX];    /* this host's engine */
static char service_key[MON_KEY_MAX];          /* the key service-derived SSH probes use */
static char service_user[MON_USER_MAX];     /* their default user: this daemon's */
static bool opened;

/* "server.json", ... for f; NULL past the end. */
const char *mon_file_name(enum mon_file f)
{
    return f < MON_NFILES ? file_names[f] : NULL;
}

/* The enum mon_file of a file name, -1 when unknown. */
int mon_file_from_name(const char *name)
{
    for (int f = 0; f < MON_NFILES; f++)
        if (strcmp(file_names[f], name) == 0)
            return f;
    return -1;
}

/* The document "type" of a probe file, NULL for target.json. */
const char *mon_file_type(enum mon_file f)
{
    return f < MON_NFILES ? file_types[f] : NULL;
}

/* A service's monitoring attribute as a probe source: a container here, or a host over SSH
 * (gpu: gpu.json and server.json; server: server.json). false when it names nothing. */
static bool service_src(const struct reg_service *s, struct mon_src *src)
{
    json_t *m = json_loads(s->monitoring, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *v;
    bool ok = true;

    memset(src, 0, sizeof(*src));
    snprintf(src->name, sizeof(src->name), "%s", s->name);
    if (type && strcmp(type, "container") == 0) {
        src->files = MON_BIT(MON_FILE_CONTAINER);
        snprintf(src->docker_socket, sizeof(src->docker_socket), "%s", docker_socket);
        v = json_string_value(json_object_get(m, "container_name"));
        snprintf(src->container, sizeof(src->container), "%s", v ? v : "");
    } else if (type && (strcmp(type, "gpu") == 0 || strcmp(type, "server") == 0)) {
        src->files = MON_BIT(MON_FILE_SERVER);
        if (strcmp(type, "gpu") == 0)
            src->files |= MON_BIT(MON_FILE_GPU);
        src->remote = true;
        v = json_string_value(json_object_get(m, "ssh_host"));
        snprintf(src->host, sizeof(src->host), "%s", v ? v : "");
        v = json_string_value(json_object_get(m, "ssh_user"));
        snprintf(src->user, sizeof(src->user), "%s", v ? v : service_user);
        src->port = json_is_integer(json_object_get(m, "ssh_port")) ?
                    (unsigned)json_integer_value(json_object_get(m, "ssh_port")) : 22;
        snprintf(src->key, sizeof(src->key), "%s", service_key);
    } else {
        ok = false;
    }
    json_decref(m);
    return ok;
}

/* Whether a live service gives name a directory (into *src when non-NULL). */
static bool service_dir(const char *name, struct mon_src *src)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    const struct reg_service *s = snap ? reg_snapshot_find(snap, name) : NULL;
    struct mon_src tmp;
    bool ok = s && service_src(s, src ? src : &tmp);

    if (snap)
        reg_snapshot_put(snap);
    return ok;
}

/* Where directory dir's probes run, and which files it shows. 0 or -ENOENT. */
static int resolve(const char *dir, struct mon_src *src)
{
    struct mon_target_cfg cfg;
    bool configured = false;

    memset(src, 0, sizeof(*src));
    if (strlen(dir) >= sizeof(src->name))
        return -ENOENT;
    snprintf(src->name, sizeof(src->name), "%s", dir);
    if (strcmp(dir, "local") == 0) {
        src->files = MON_BIT(MON_FILE_SERVER) | MON_BIT(MON_FILE_GPU) |
                     MON_BIT(MON_FILE_CONTAINERS);
        snprintf(src->docker_socket, sizeof(src->docker_socket), "%s", docker_socket);
        return 0;
    }
    if (mon_tgt_lookup(dir, &cfg, &configured) == 0) {
        src->files = MON_BIT(MON_FILE_TARGET) | (configured ? cfg.types : 0);
        src->remote = true;
        snprintf(src->host, sizeof(src->host), "%s", cfg.host);
        src->port = cfg.port;
        snprintf(src->user, sizeof(src->user), "%s", cfg.user);
        snprintf(src->key, sizeof(src->key), "%s", cfg.key);
        snprintf(src->docker_socket, sizeof(src->docker_socket), "%s", cfg.docker_socket);
        return 0;
    }
    return service_dir(dir, src) ? 0 : -ENOENT;
}

/* fn once per directory below monitor/: local, targets, then service-derived ones. */
void mon_dirs(void (*fn)(const char *name, void *ctx), void *ctx)
{
    struct reg_snapshot *snap;
    struct mon_src src;

    fn("local", ctx);
    mon_tgt_each(fn, ctx);
    snap = reg_snapshot_get();
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = &snap->svcs[i];

        if (s->status == REG_INACTIVE || strcmp(s->name, "local") == 0 ||
            mon_tgt_lookup(s->name, NULL, NULL) == 0 || !service_src(s, &src))
            continue;
        fn(s->name, ctx);
    }
    if (snap)
        reg_snapshot_put(snap);
}

/* The files of dir as a mask into *mask. 0 or -ENOENT. */
int mon_dir_files(const char *dir, unsigned *mask)
{
    struct mon_src src;
    int rc = resolve(dir, &src);

    *mask = rc == 0 ? src.files : 0;
    return rc;
}

/* target.json's text: the settings with a newline, or "{}\n" before the first write. */
static int target_text(const char *dir, char **out, size_t *len)
{
    struct mon_target_cfg cfg;
    bool configured = false;
    char *json = NULL;

    if (mon_tgt_lookup(dir, &cfg, &configured) < 0)
        return -ENOENT;
    json = configured ? mon_target_json(&cfg) : strdup("{}");
    if (!json)
        return -ENOMEM;
    *len = strlen(json) + 1;
    *out = malloc(*len + 1);
    if (*out) {
        memcpy(*out, json, *len - 1);
        (*out)[*len - 1] = '\n';
        (*out)[*len] = '\0';
    }
    free(json);
    return *out ? 0 : -ENOMEM;
}

/* dir/f's content, malloc'd: target.json's text or a probe document. 0, -ENOENT, -ENOMEM. */
int mon_read(const char *dir, enum mon_file f, char **out, size_t *len)
{
    struct mon_src src;

    *out = NULL;
    *len = 0;
    if (f >= MON_NFILES || resolve(dir, &src) < 0 || !(src.files & MON_BIT(f)))
        return -ENOENT;
    if (f == MON_FILE_TARGET)
        return target_text(dir, out, len);
    return mon_cache_get(&src, f, out, len);
}

/* ---- metrics.prom ---- */

struct job {
    struct mon_src src;
    enum mon_file f;
    char *doc;
    size_t len;
};

struct jobs {
    struct job *v;
    size_t n, cap;
};

static void add_jobs(const char *name, void *ctx)
{
    struct jobs *js = ctx;
    struct mon_src src;

    if (resolve(name, &src) < 0)
        return;
    for (int f = 0; f < MON_NFILES; f++) {
        if (!(src.files & MON_BIT(f) & MON_PROBE_BITS))
            continue;
        if (js->n == js->cap) {
            size_t cap = js->cap ? 2 * js->cap : 16;
            struct job *v = realloc(js->v, cap * sizeof(*v));

            if (!v)
                return;
            js->v = v;
            js->cap = cap;
        }
        memset(&js->v[js->n], 0, sizeof(js->v[0]));
        js->v[js->n].src = src;
        js->v[js->n].f = (enum mon_file)f;
        js->n++;
    }
}

static void *run_job(void *arg)
{
    struct job *j = arg;

    mon_cache_get(&j->src, j->f, &j->doc, &j->len);
    return NULL;
}

/* metrics.prom: every probe of every directory (in parallel, METRICS_THREADS at a time) as
 * Prometheus text. 0 or -ENOMEM. */
int mon_metrics(char **out, size_t *len)
{
    struct jobs js = {0};
    pthread_t tid[METRICS_THREADS];
    bool started[METRICS_THREADS];
    json_t *docs = json_array();
    int rc = -ENOMEM;

    *out = NULL;
    *len = 0;
    if (!docs)
        return -ENOMEM;
    mon_dirs(add_jobs, &js);
    for (size_t i = 0; i < js.n; i += METRICS_THREADS) {
        size_t batch = js.n - i < METRICS_THREADS ? js.n - i : METRICS_THREADS;

        for (size_t k = 0; k < batch; k++) {
            started[k] = pthread_create(&tid[k], NULL, run_job, &js.v[i + k]) == 0;
            if (!started[k])
                run_job(&js.v[i + k]);
        }
        for (size_t k = 0; k < batch; k++)
            if (started[k])
                pthread_join(tid[k], NULL);
    }
    for (size_t i = 0; i < js.n; i++) {
        json_t *d = js.v[i].doc ? json_loadb(js.v[i].doc, js.v[i].len, 0, NULL) : NULL;

        if (d)
            json_array_append_new(docs, d);
        free(js.v[i].doc);
    }
    *out = mon_prom_render(docs);
    if (*out) {
        *len = strlen(*out);
        rc = 0;
    }
    free(js.v);
    json_decref(docs);
    return rc;
}

/* ---- targets ---- */

/* A new, unconfigured target. 0, -EINVAL, -EEXIST (also a service's directory), -ENOSPC
 * or -errno. */
int mon_target_add(const char *name, const char *who)
{
    if (val_name(name) < 0)
        return -EINVAL;
    if (service_dir(name, NULL))
        return -EEXIST;
    return mon_tgt_add(name, who);
}

/* Remove a target. 0, -ENOENT, -EPERM (local or a service's directory) or -errno. */
int mon_target_remove(const char *name, const char *who)
{
    if (mon_tgt_lookup(name, NULL, NULL) < 0)
        return strcmp(name, "local") == 0 || service_dir(name, NULL) ? -EPERM : -ENOENT;
    return mon_tgt_remove(name, who);
}

/* Set (buf) or clear (NULL) a target's settings. 0, -EINVAL, -EFBIG, -ENOENT or -errno. */
int mon_target_set(const char *name, const char *buf, size_t len, const char *who)
{
    return mon_tgt_set(name, buf, len, who);
}

/* ---- start and stop ---- */

/* Create state/monitoring and load its targets.json. 0 or -errno with the reason in err. The
 * docker socket of this host comes from CONDUIT_DOCKER_SOCKET (default
 * /var/run/docker.sock); service-derived SSH probes log in with <state>/monitoring/ssh_key as
 * this daemon's user unless the attribute names one. */
int mon_open(const struct reg_config *cfg, char *err, size_t errlen)
{
    char dir[PATH_MAX], file[PATH_MAX];
    const char *env = getenv("CONDUIT_DOCKER_SOCKET");
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int rc;

    rc = state_path(dir, sizeof(dir), cfg->state_dir, "monitoring");
    if (rc == 0)
        rc = state_mkdir(dir, 0700);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s/monitoring: %s", cfg->state_dir, strerror(-rc));
        return rc;
    }
    state_clean_temps(dir);
    rc = state_path(file, sizeof(file), dir, "targets.json");
    if (rc == 0)
        rc = mon_tgt_load(file, err, errlen);
    else
        snprintf(err, errlen, "state directory path too long");
    if (rc < 0)
        return rc;
    if (env && *env && (env[0] != '/' || strlen(env) >= sizeof(docker_socket))) {
        snprintf(err, errlen, "CONDUIT_DOCKER_SOCKET must be an absolute path");
        rc = -EINVAL;
        goto fail;
    }
    snprintf(docker_socket, sizeof(docker_socket), "%s",
             env && *env ? env : MON_DEFAULT_DOCKER_SOCKET);
    if (state_path(service_key, sizeof(service_key), dir, "ssh_key") < 0 ||
        state_path(file, sizeof(file), dir, "known_hosts") < 0) {
        snprintf(err, errlen, "state directory path too long");
        rc = -ENAMETOOLONG;
        goto fail;
    }
    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
        snprintf(service_user, sizeof(service_user), "%s", res->pw_name);
    else
        snprintf(service_user, sizeof(service_user), "root");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialize libcurl");
        rc = -EIO;
        goto fail;
    }
    rc = mon_ssh_init(file);
    if (rc < 0) {
        curl_global_cleanup();
        snprintf(err, errlen, "cannot initialize libssh2");
        goto fail;
    }
    opened = true;
    return 0;
fail:
    mon_tgt_unload();
    return rc;
}

/* Close SSH sessions, drop cached results and targets; mon_open may be called again. */
void mon_close(void)
{
    if (!opened)
        return;
    mon_ssh_fini();
    mon_cache_forget(NULL);
    mon_tgt_unload();
    curl_global_cleanup();
    opened = false;
}
