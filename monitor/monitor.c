/* monitor.c: the monitor module's face: start and stop, the directory model below monitor/
 * (local, targets, directories derived from services' monitoring attributes), live reads
 * through the cache, metrics.prom, and the target operations with their name rules. It is
 * the one file that calls both the target table (targets.c) and the cache and SSH pool: after
 * a successful change of a target it makes them forget that target. */
#include "monitor/monitor.h"
#include "monitor/probe.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/registry.h"
#include "core/statefile.h"
#include "util/util.h"

/* metrics.prom runs at most this many probes at once, and waits for them at most this long:
 * one SSH login and one command (probes of one target share a session, and a target that did
 * not answer is not dialled again by its other probes; see ssh.c). */
#define METRICS_THREADS 16
#define METRICS_DEADLINE_MS (MON_CONNECT_MS + MON_COMMAND_MS)

static char docker_socket[MON_SOCK_MAX];    /* this host's engine */
static char service_key[MON_KEY_MAX];          /* the key service-derived SSH probes use */
static char service_user[MON_USER_MAX];     /* their default user: this daemon's */
static bool opened;

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
        src->key_owner = MON_KEY_DAEMON;
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
    if (mon_target_lookup(dir, &cfg, &configured) == 0) {
        src->files = MON_BIT(MON_FILE_TARGET) | (configured ? cfg.types : 0);
        src->remote = true;
        snprintf(src->host, sizeof(src->host), "%s", cfg.host);
        src->port = cfg.port;
        snprintf(src->user, sizeof(src->user), "%s", cfg.user);
        snprintf(src->key, sizeof(src->key), "%s", cfg.key);
        src->key_owner = cfg.key_owner;
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
    mon_target_each(fn, ctx);
    snap = reg_snapshot_get();
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = snap->svcs[i];

        if (s->status == REG_INACTIVE || strcmp(s->name, "local") == 0 ||
            mon_target_lookup(s->name, NULL, NULL) == 0 || !service_src(s, &src))
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

    if (mon_target_lookup(dir, &cfg, &configured) < 0)
        return -ENOENT;
    json = configured ? mon_target_json(&cfg) : strdup("{}");
    *out = json ? cu_text_line(json, len) : NULL;
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

/* One probe of a metrics.prom run. */
struct job {
    struct mon_src src;
    enum mon_file f;
    bool finished;          /* run->lock */
    char *doc;              /* run->lock */
    size_t len;
};

/* One metrics.prom run: its jobs and the detached workers that take them in turn. The reader
 * waits at most METRICS_DEADLINE_MS; workers still probing then finish on their own (their
 * results reach the probe cache) and the last of the reader and the workers frees the run. */
struct run {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *v;
    size_t n, cap, next, done;
    int refs;
    bool abandoned;         /* the reader left: take no new job */
};

/* Workers of every run still alive, so that mon_close can wait for them. */
static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t workers_cond = PTHREAD_COND_INITIALIZER;
static int workers;

/* The single flight of metrics.prom: one run at a time, its text shared with every reader
 * that came while it ran and with every reader for the probe TTL after it. */
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t metrics_cond = PTHREAD_COND_INITIALIZER;
static bool metrics_busy;
static char *metrics_text;
static size_t metrics_len;
static int64_t metrics_done;       /* cu_mono_ms() */

static void add_jobs(const char *name, void *ctx)
{
    struct run *r = ctx;
    struct mon_src src;

    if (resolve(name, &src) < 0)
        return;
    for (int f = 0; f < MON_NFILES; f++) {
        if (!(src.files & MON_BIT(f) & MON_PROBE_BITS))
            continue;
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 16;
            struct job *v = realloc(r->v, cap * sizeof(*v));

            if (!v)
                return;
            r->v = v;
            r->cap = cap;
        }
        memset(&r->v[r->n], 0, sizeof(r->v[0]));
        r->v[r->n].src = src;
        r->v[r->n].f = (enum mon_file)f;
        r->n++;
    }
}

/* Drop one reference to r, with r->lock held (released here); the last one frees it. */
static void run_put(struct run *r)
{
    bool last = --r->refs == 0;

    pthread_mutex_unlock(&r->lock);
    if (!last)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].doc);
    free(r->v);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void *worker(void *arg)
{
    struct run *r = arg;

    pthread_mutex_lock(&r->lock);
    while (!r->abandoned && r->next < r->n) {
        struct job *j = &r->v[r->next++];
        char *doc = NULL;
        size_t len = 0;

        pthread_mutex_unlock(&r->lock);
        mon_cache_get(&j->src, j->f, &doc, &len);
        pthread_mutex_lock(&r->lock);
        j->doc = doc;
        j->len = len;
        j->finished = true;
        r->done++;
        pthread_cond_broadcast(&r->cond);
    }
    run_put(r);
    pthread_mutex_lock(&workers_lock);
    if (--workers == 0)
        pthread_cond_broadcast(&workers_cond);
    pthread_mutex_unlock(&workers_lock);
    return NULL;
}

/* The document of a probe that did not finish within the run's deadline. */
static json_t *late_doc(const struct job *j)
{
    char ts[32], msg[96];

    cu_iso_now(ts, sizeof(ts));
    snprintf(msg, sizeof(msg), "probe still running after %d ms", METRICS_DEADLINE_MS);
    return json_pack("{s:s,s:s,s:s,s:s,s:n,s:[]}", "timestamp", ts, "target", j->src.name,
                     "type", mon_file_type(j->f), "error", msg, "metrics", "alerts");
}

/* Start workers on r (at most METRICS_THREADS); r->refs counts them. false when none. */
static bool start_workers(struct run *r)
{
    size_t want = r->n < METRICS_THREADS ? r->n : METRICS_THREADS;
    pthread_attr_t attr;
    size_t started = 0;

    if (pthread_attr_init(&attr) != 0)
        return false;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t k = 0; k < want; k++) {
        pthread_t tid;

        pthread_mutex_lock(&workers_lock);
        workers++;
        pthread_mutex_unlock(&workers_lock);
        pthread_mutex_lock(&r->lock);
        r->refs++;
        pthread_mutex_unlock(&r->lock);
        if (pthread_create(&tid, &attr, worker, r) == 0) {
            started++;
            continue;
        }
        pthread_mutex_lock(&r->lock);
        r->refs--;
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_lock(&workers_lock);
        workers--;
        pthread_mutex_unlock(&workers_lock);
        break;
    }
    pthread_attr_destroy(&attr);
    return started > 0;
}

/* One metrics.prom run: every probe of every directory, in parallel, for at most
 * METRICS_DEADLINE_MS; a probe still running then counts as failed. 0 or -ENOMEM. */
static int metrics_run(char **out, size_t *len)
{
    struct run *r = calloc(1, sizeof(*r));
    json_t *docs = json_array();
    struct timespec deadline;
    int rc = -ENOMEM;

    if (!r || !docs) {
        free(r);
        json_decref(docs);
        return -ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    r->refs = 1;
    mon_dirs(add_jobs, r);
    if (r->n > 0 && !start_workers(r)) {
        /* no thread: probe here, one after the other */
        for (size_t i = 0; i < r->n; i++) {
            mon_cache_get(&r->v[i].src, r->v[i].f, &r->v[i].doc, &r->v[i].len);
            r->v[i].finished = true;
        }
        r->done = r->next = r->n;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += METRICS_DEADLINE_MS / 1000;
    deadline.tv_nsec += (long)(METRICS_DEADLINE_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (r->done < r->n)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
            break;
    r->abandoned = true;
    for (size_t i = 0; i < r->n; i++) {
        struct job *j = &r->v[i];
        json_t *d = j->finished ? (j->doc ? json_loadb(j->doc, j->len, 0, NULL) : NULL) :
                    late_doc(j);

        if (d)
            json_array_append_new(docs, d);
    }
    run_put(r);
    *out = mon_prom_render(docs);
    if (*out) {
        *len = strlen(*out);
        rc = 0;
    }
    json_decref(docs);
    return rc;
}

/* A copy of the shared text, with metrics_lock held. 0 or -ENOMEM. */
static int metrics_copy(char **out, size_t *len)
{
    *out = malloc(metrics_len + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, metrics_text, metrics_len + 1);
    *len = metrics_len;
    return 0;
}

/* metrics.prom: every probe of every directory as Prometheus text, from one run shared by
 * concurrent readers (single flight) and by every reader for the probe TTL after it. A run takes
 * at most METRICS_DEADLINE_MS. 0 or -ENOMEM. */
int mon_metrics(char **out, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *len = 0;
    pthread_mutex_lock(&metrics_lock);
    for (;;) {
        if (metrics_text && cu_mono_ms() - metrics_done < mon_cache_ttl_ms()) {
            rc = metrics_copy(out, len);
            pthread_mutex_unlock(&metrics_lock);
            return rc;
        }
        if (!metrics_busy)
            break;
        pthread_cond_wait(&metrics_cond, &metrics_lock);
    }
    metrics_busy = true;
    pthread_mutex_unlock(&metrics_lock);

    rc = metrics_run(&text, &n);

    pthread_mutex_lock(&metrics_lock);
    metrics_busy = false;
    if (rc == 0) {
        free(metrics_text);
        metrics_text = text;
        metrics_len = n;
        metrics_done = cu_mono_ms();
        rc = metrics_copy(out, len);
    }
    pthread_cond_broadcast(&metrics_cond);
    pthread_mutex_unlock(&metrics_lock);
    return rc;
}

/* ---- targets ---- */

/* A new, unconfigured target. 0, -EINVAL, -EEXIST (also a service's directory), -ENOSPC
 * or -errno. A refusal says why (mon_target_table_add, or here for a service's directory). */
int mon_target_add(const char *name, const char *who)
{
    if (val_name(name) == 0 && service_dir(name, NULL)) {
        reg_refuse_path("monitor_target_add", who, -EEXIST, "a service's monitor directory has "
                        "the name (its monitoring attribute names something to probe)",
                        "monitor/%s", name);
        return -EEXIST;
    }
    return mon_target_table_add(name, who);
}

/* After a successful change of target name: its cached results and its SSH session belong to
 * the old settings. */
static void forget(const char *name)
{
    mon_cache_forget(name);
    mon_ssh_forget(name);
}

/* Remove a target. 0, -ENOENT, -EPERM (local or a service's directory, said why) or -errno. */
int mon_target_remove(const char *name, const char *who)
{
    int rc;

    if (mon_target_lookup(name, NULL, NULL) == 0) {
        rc = mon_target_table_remove(name, who);
        if (rc == 0)
            forget(name);
        return rc;
    }
    if (strcmp(name, "local") == 0) {
        reg_refuse_path("monitor_target_remove", who, -EPERM, "local is this host's own "
                        "directory, not a target", "monitor/local");
        return -EPERM;
    }
    if (service_dir(name, NULL)) {
        reg_refuse_path("monitor_target_remove", who, -EPERM, "a service's monitor directory "
                        "is not a target: it follows the service's monitoring attribute",
                        "monitor/%s", name);
        return -EPERM;
    }
    return -ENOENT;
}

/* Set (buf) or clear (NULL) a target's settings. 0, -EINVAL, -EFBIG, -EACCES, -ENOENT or
 * -errno. */
int mon_target_set(const char *name, const char *buf, size_t len, const char *who)
{
    int rc = mon_target_table_set(name, buf, len, who);

    if (rc == 0)
        forget(name);
    return rc > 0 ? 0 : rc;     /* > 0: unchanged, nothing to forget */
}

int mon_target_write(const char *name, const char *buf, size_t size, long long off,
                     const char *who)
{
    if (size > VAL_VALUE_MAX + 1) {
        reg_refuse_path("monitor_target_update", who, -EFBIG, "target.json is longer than 4096 "
                        "bytes", "monitor/%.200s/target.json", name);
        return -EFBIG;
    }
    if (off != 0) {
        /* sysfs semantics: the whole value in one write at offset 0 */
        reg_refuse_path("monitor_target_update", who, -EINVAL, "a value is written whole, in "
                        "one write at offset 0", "monitor/%.200s/target.json", name);
        return -EINVAL;
    }
    return mon_target_set(name, buf, size, who);
}

/* ---- start and stop ---- */

/* Create state/monitoring and load its targets.json; take opts (NULL: the defaults). 0 or
 * -errno with the reason in err. The docker socket of this host is opts->docker_socket, else
 * CONDUIT_DOCKER_SOCKET, else /var/run/docker.sock; service-derived SSH probes log in with
 * <state>/monitoring/ssh_key as this daemon's user unless the attribute names one. */
int mon_open(const char *state_dir, const struct mon_options *opts, char *err, size_t errlen)
{
    char dir[PATH_MAX], file[PATH_MAX];
    const char *env = getenv("CONDUIT_DOCKER_SOCKET");
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    int rc;

    rc = state_path(dir, sizeof(dir), state_dir, "monitoring");
    if (rc == 0)
        rc = state_mkdir(dir, 0700);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s/monitoring: %s", state_dir, strerror(-rc));
        return rc;
    }
    state_clean_temps(dir);
    rc = state_path(file, sizeof(file), dir, "targets.json");
    if (rc == 0)
        rc = mon_target_load(file, err, errlen);
    else
        snprintf(err, errlen, "state directory path too long");
    if (rc < 0)
        return rc;
    rc = mon_keys_init(state_dir);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s/monitoring/keys: %s", state_dir,
                 strerror(-rc));
        goto fail;
    }
    if (opts && *opts->docker_socket)
        env = opts->docker_socket;          /* the option wins over the environment */
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
    /* libcurl's global state is the process's: fs/main.c initializes it once, before any
     * thread */
    rc = mon_ssh_init(file);
    if (rc < 0) {
        snprintf(err, errlen, "cannot initialize libssh2");
        goto fail;
    }
    mon_cache_set_options(opts);
    opened = true;
    return 0;
fail:
    mon_target_unload();
    return rc;
}

/* Close SSH sessions, drop cached results and targets; mon_open may be called again. */
void mon_close(void)
{
    if (!opened)
        return;
    /* workers of a metrics run that outlived its reader end within their probe deadlines */
    pthread_mutex_lock(&workers_lock);
    while (workers > 0)
        pthread_cond_wait(&workers_cond, &workers_lock);
    pthread_mutex_unlock(&workers_lock);
    pthread_mutex_lock(&metrics_lock);
    free(metrics_text);
    metrics_text = NULL;
    metrics_len = 0;
    pthread_mutex_unlock(&metrics_lock);
    mon_ssh_fini();
    mon_cache_forget(NULL);
    mon_target_unload();
    opened = false;
}
