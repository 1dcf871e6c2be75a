/* probe.h: the monitor module's inside: where a probe runs (struct mon_src), the command
 * runners (local fork/exec, pooled SSH), the probes, their pure parsers, alerts, the Prometheus
 * renderer, the single-flight cache and the target table. Not for use outside monitor/ (tests and
 * fuzz targets excepted). */
#ifndef CONDUIT_MONITOR_PROBE_H
#define CONDUIT_MONITOR_PROBE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "core/validate.h"
#include "monitor/files.h"
#include "monitor/options.h"

/* A probe result is shared with every reader for this long (single flight, then cached) unless
 * --probe-ttl says otherwise (see mon_cache_ttl_ms). */
#define MON_TTL_MS 2000
#define MON_TTL_MAX_MS (3600 * 1000)
/* CPU usage is the change of /proc/stat's counters over a window of at least MON_CPU_MIN_MS:
 * since the directory's previous probe when that is at most MON_CPU_RECENT_MS old, else
 * between two samples MON_CPU_MIN_MS apart taken by this probe. Never since boot. */
#define MON_CPU_MIN_MS 100
#define MON_CPU_RECENT_MS 30000
/* Limits of one remote or local command: connect (SSH), run, output size. */
#define MON_CONNECT_MS 5000
#define MON_COMMAND_MS 5000
#define MON_OUTPUT_MAX (4u << 20)
/* A request to the Docker Engine API. */
#define MON_DOCKER_MS 5000
#define MON_CONTAINERS_MAX 256

/* Default alert thresholds (inclusive), the design's values; struct mon_options overrides. */
#define MON_GPU_TEMP_C 85.0
#define MON_GPU_VRAM_PCT 90.0
#define MON_MEM_PCT 90.0
#define MON_DISK_PCT 90.0

#define MON_HOST_MAX 254
#define MON_USER_MAX (VAL_SSH_USER_MAX + 1)
#define MON_KEY_MAX 1024
#define MON_SOCK_MAX 256
#define MON_NAME_MAX 64
#define MON_TARGETS_MAX 256
#define MON_DEFAULT_DOCKER_SOCKET "/var/run/docker.sock"
/* key_owner of the daemon's own key (<state>/monitoring/ssh_key): no writer chose it. */
#define MON_KEY_DAEMON (-2L)

/* Which probe files, as (1u << enum mon_file). */
#define MON_BIT(f) (1u << (f))
#define MON_PROBE_BITS (MON_BIT(MON_FILE_SERVER) | MON_BIT(MON_FILE_GPU) | \
                        MON_BIT(MON_FILE_CONTAINERS) | MON_BIT(MON_FILE_CONTAINER))

/* A target's settings, as target.json holds them once validated. */
struct mon_target_cfg {
    char host[MON_HOST_MAX];
    unsigned port;
    char user[MON_USER_MAX];
    char key[MON_KEY_MAX];
    char docker_socket[MON_SOCK_MAX];   /* "" for null (the default socket) */
    unsigned types;                     /* MON_BIT of SERVER, GPU, CONTAINERS */
    long key_owner;                     /* uid of the writer (not in target.json); -1 unknown */
};

/* Where and how a directory's probes run. */
struct mon_src {
    char name[MON_NAME_MAX];            /* directory: "local", a target or a service */
    unsigned files;                     /* the files it shows */
    bool remote;                        /* over SSH (host, port, user, key) */
    char host[MON_HOST_MAX];
    unsigned port;
    char user[MON_USER_MAX];
    char key[MON_KEY_MAX];
    long key_owner;                     /* whose key: a uid, -1 unknown, MON_KEY_DAEMON */
    char docker_socket[MON_SOCK_MAX];   /* local path, or the path on the remote host */
    char container[160];                /* MON_FILE_CONTAINER: the container's name */
};

/* ---- SSH keys a target may name (keys.c) ---- */

/* Create <state>/monitoring/keys (0700) and remember where the state directory really is.
 * 0 or -errno. */
int mon_keys_init(const char *state_dir);

/* The uid of a writer as fs/ names it (a user name, or a uid in decimal); -1 when unknown. */
long mon_keys_owner(const char *who);

/* Apply the key rules to key for a target written by uid owner (-1: unknown writer): a file
 * directly in <state>/monitoring/keys/ (root's directory and file, writable by no one else),
 * or a file the writer owns outside the state directory; never state/key nor state/tls/ *.key
 * under any name. Symlinks are resolved once and the resolved file is judged and read. With
 * out, also read it into *out (malloc'd, NUL-terminated, *len bytes; wipe and free it).
 * 0; -EACCES (missing, unreadable, or not an allowed place); -EINVAL (an allowed name that is
 * not a regular file); -EFBIG (over 64 KiB); -ENOMEM. */
int mon_keys_load(const char *key, long owner, char **out, size_t *len);

/* Why the calling thread's last failed mon_keys_load refused the key: a constant one-line text
 * (for the change_refused entry of a target.json write). */
const char *mon_keys_reason(void);

/* ---- runners ---- */

/* Run argv (argv[0] looked up on PATH unless it holds a '/') with fork/exec, no shell; stdin
 * and stderr on /dev/null. Collects stdout (at most max bytes) into *out (malloc'd,
 * NUL-terminated); kills the process group after timeout_ms. *status is the exit status,
 * 128 + signal, or -1 when unknown (another thread's waitpid(-1) reaped it: the output is still
 * complete). 0, -ENOENT (no such program), -ETIMEDOUT, -EFBIG (output over max) or -errno. */
int mon_exec(const char *const argv[], int timeout_ms, size_t max, char **out, size_t *len,
             int *status);

/* Start the SSH layer: host keys are pinned in known_hosts (trust on first use). 0 or -errno. */
int mon_ssh_init(const char *known_hosts);
void mon_ssh_fini(void);

/* Run cmd on the pooled session of src->name (one per directory, reused, locked while in use;
 * connected on demand within MON_CONNECT_MS). Output and status as mon_exec. On failure a
 * one-line reason is in err. 0 or -errno (-ETIMEDOUT, -ECONNREFUSED, -EACCES, -EPERM for a
 * changed host key, ...). */
int mon_ssh_run(const struct mon_src *src, const char *cmd, int timeout_ms, size_t max,
                char **out, size_t *len, int *status, char *err, size_t errlen);

/* Close the pooled session of directory name, if any. */
void mon_ssh_forget(const char *name);

/* ---- probes: each returns the "metrics" object, or NULL with a reason in err. *state is the
 * probe's private memory between runs of the same directory (may be NULL; replace it freely). */

typedef json_t *(*mon_probe_fn)(const struct mon_src *src, json_t **state, char *err,
                                size_t errlen);
json_t *mon_probe_server(const struct mon_src *src, json_t **state, char *err, size_t errlen);
json_t *mon_probe_gpu(const struct mon_src *src, json_t **state, char *err, size_t errlen);
json_t *mon_probe_containers(const struct mon_src *src, json_t **state, char *err,
                             size_t errlen);
json_t *mon_probe_container(const struct mon_src *src, json_t **state, char *err,
                            size_t errlen);

/* ---- pure parsers (no I/O; any bytes in, never a crash) ---- */

/* Copy the next line of [*p, end) (without its CR LF) into buf, cut to buflen - 1 bytes; advance
 * *p past it. false at the end of the text. */
bool mon_next_line(const char **p, const char *end, char *buf, size_t buflen);

/* s without leading and trailing blanks (in place). */
char *mon_trim(char *s);

/* The whole of s as a finite number / an unsigned decimal integer. false otherwise. */
bool mon_parse_double(const char *s, double *out);
bool mon_parse_ull(const char *s, unsigned long long *out);

/* The string value of j when it is a string without NUL bytes, else NULL. */
const char *mon_json_plain(const json_t *j);

/* v as a JSON integer when it is integral and fits, a real otherwise; NULL without memory. */
json_t *mon_json_num(double v);

/* x rounded to two decimals (no libm). */
double mon_round2(double x);

/* A growable text buffer. After a failed allocation failed is set and appends do nothing. */
struct mon_buf {
    char *data;
    size_t len, cap;
    bool failed;
};
void mon_buf_add(struct mon_buf *b, const char *s, size_t n);
void mon_buf_printf(struct mon_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* nvidia-smi --query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used,
 * memory.total,power.draw and --query-compute-apps=gpu_uuid,pid,process_name,used_memory, both
 * --format=csv,noheader,nounits. apps may be NULL (processes then null). Unreadable fields
 * ([N/A], [Not Supported], missing) are null. Returns the "gpus" array; NULL only without
 * memory. */
json_t *mon_nvsmi_parse(const char *gpus, size_t glen, const char *apps, size_t alen);

/* What /proc/loadavg, /proc/meminfo, /proc/uptime and /proc/stat say, concatenated in any
 * order. Byte counts are bytes; -1 (or has_* false) when absent. */
struct mon_proc {
    bool has_load;
    double load1, load5, load15;
    long long procs_running, procs_total;
    bool has_uptime;
    double uptime_s;
    long long mem_total, mem_free, mem_available, buffers, cached, swap_total, swap_free;
    bool has_cpu;
    unsigned long long cpu_busy, cpu_idle;  /* jiffies since boot */
    int ncpu;
};
void mon_proc_parse(const char *text, size_t len, struct mon_proc *out);

/* A file system's size, in bytes. */
struct mon_disk {
    bool ok;
    unsigned long long total, free, avail;
};

/* The data line of `df -Pk /`. 0 or -EINVAL. */
int mon_df_parse(const char *text, size_t len, struct mon_disk *out);

/* The server metrics object from parsed /proc, the disk (may be NULL or !ok) and the CPU usage
 * over a window (usage_pct < 0: unknown). NULL without memory. */
json_t *mon_server_json(const struct mon_proc *p, const struct mon_disk *d, double usage_pct,
                        double window_s);

/* GET /containers/json?all=1: the array of {"id","name","image","state","status"}, or NULL when
 * body is not a JSON array. */
json_t *mon_docker_list(const char *body, size_t len);

/* One container's report from its list entry (may be NULL), GET /containers/{id}/json (may be
 * NULL) and GET /containers/{id}/stats?stream=false (may be NULL). prev maps an id to its last
 * [cpu_total_ns, system_ns] sample (may be NULL); next (may be NULL) receives this sample.
 * NULL without memory or when neither item nor inspect names a container. */
json_t *mon_docker_container(const json_t *item, const char *inspect, size_t ilen,
                             const char *stats, size_t slen, const json_t *prev, json_t *next);

/* The alerts of a probe's metrics ({"name","severity","subject","message","value",
 * "threshold"}), for type "server", "gpu", "containers" or "container", by the thresholds of
 * o (NULL: the defaults). Never NULL unless out of memory. */
json_t *mon_alerts_at(const char *type, const json_t *metrics, const struct mon_options *o);

/* mon_alerts_at with the default thresholds. */
json_t *mon_alerts(const char *type, const json_t *metrics);

/* Tests only: the local server probe takes the text of /proc/loadavg, meminfo, uptime and stat
 * (concatenated) from fn, called once per reading, instead of /proc (fn NULL: /proc again). fn
 * returns a malloc'd text and its length in *len, or NULL for a failed read. */
typedef char *(*mon_proc_source_fn)(void *ctx, size_t *len);
void mon_server_proc_source(mon_proc_source_fn fn, void *ctx);

/* The Prometheus text exposition (format 0.0.4) of an array of probe documents. malloc'd, or
 * NULL without memory. */
char *mon_prom_render(const json_t *docs);

/* ---- target.json (targetcfg.c) ---- */

/* Validate a target.json write (len bytes, no NUL; one trailing newline allowed) into *out,
 * without touching the file system. 0, -EINVAL or -EFBIG (over VAL_VALUE_MAX). */
int mon_target_parse(const char *buf, size_t len, struct mon_target_cfg *out);

/* The normalized JSON of a target's settings, malloc'd and compact, or NULL without memory. */
char *mon_target_json(const struct mon_target_cfg *cfg);

/* mon_target_parse, with *why set to the reason of a refusal (a constant one-line text; "" on
 * success). */
int mon_target_parse_why(const char *buf, size_t len, struct mon_target_cfg *out,
                         const char **why);

/* The settings as a JSON object in target.json's key order (a new reference; NULL without
 * memory). */
json_t *mon_target_cfg_json(const struct mon_target_cfg *cfg);

/* Whether a and b are the same settings (key_owner included). */
bool mon_target_cfg_equal(const struct mon_target_cfg *a, const struct mon_target_cfg *b);

/* The target table (targets.c): a table and its persistence, nothing else (it calls neither
 * the cache nor the SSH pool: monitor.c makes them forget a target it changed). */

/* Load the table from path (state/monitoring/targets.json; missing: no targets), which later
 * changes rewrite atomically. A corrupt file refuses the load and stays, with a copy beside it
 * (state_keep_corrupt). 0 or -errno with a one-line reason in err. */
int mon_target_load(const char *path, char *err, size_t errlen);

/* Forget every target (the file is untouched). */
void mon_target_unload(void);

/* Append an unconfigured target, persist, audit. 0, -EINVAL, -EEXIST, -ENOSPC or -errno; a
 * refusal says why (reg_refuse_path). */
int mon_target_table_add(const char *name, const char *who);

/* Remove a target, persist, audit. 0, -ENOENT or -errno. */
int mon_target_table_remove(const char *name, const char *who);

/* Validate (the key rules, mon_keys_load, apply to the uid who names; a key outside them is
 * -EACCES), persist and audit new settings, or clear them (buf NULL). 0 (changed), 1
 * (unchanged: no write, no audit line), -EINVAL, -EFBIG, -EACCES, -ENOENT or -errno. */
int mon_target_table_set(const char *name, const char *buf, size_t len, const char *who);

/* Whether name is a target (0 or -ENOENT); *cfg and *configured filled when non-NULL. */
int mon_target_lookup(const char *name, struct mon_target_cfg *cfg, bool *configured);

/* Call fn for every target name, in creation order (over a copy, without the table's lock). */
void mon_target_each(void (*fn)(const char *name, void *ctx), void *ctx);

/* ---- the single-flight cache (cache.c) ---- */

/* Take the settings of o (NULL: the defaults; copied): the probe TTL and the alert thresholds.
 * Called by mon_open before any reader. */
void mon_cache_set_options(const struct mon_options *o);

/* How long a probe's result is shared, in ms (the TTL mon_cache_set_options took). */
int mon_cache_ttl_ms(void);

/* The document of probe f for src: shared from a run less than mon_cache_ttl_ms() old with the
 * same settings, or run now (concurrent callers wait for the one run). Alerts that newly appear or
 * clear write an audit line. 0 or -ENOMEM. */
int mon_cache_get(const struct mon_src *src, enum mon_file f, char **out, size_t *len);

/* Forget every result and alert of directory name (NULL: everything). */
void mon_cache_forget(const char *name);

#endif
