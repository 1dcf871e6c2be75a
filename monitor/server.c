/* server.c: the server probe: /proc (load, memory, uptime, CPU counters) and the root file
 * system, read here or with `cat` and `df` over SSH, through the same parsers. CPU usage is
 * the change since the previous probe of the directory (since boot for the first one). */
#include "monitor/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define PROC_CMD "cat /proc/loadavg /proc/meminfo /proc/uptime /proc/stat"
#define DF_CMD "df -Pk /"

static const char *const proc_files[] = {
    "/proc/loadavg", "/proc/meminfo", "/proc/uptime", "/proc/stat",
};

/* Append one /proc file (whose stat size is 0: read to EOF) to b. 0 or -errno. */
static int slurp(const char *path, struct mon_buf *b)
{
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    ssize_t n;

    if (fd < 0)
        return -errno;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || b->len + (size_t)n > MON_OUTPUT_MAX) {
            rc = n < 0 ? -errno : -EFBIG;
            break;
        }
        mon_buf_add(b, chunk, (size_t)n);
    }
    close(fd);
    return rc;
}

static int read_local(struct mon_proc *p, struct mon_disk *d, char *err, size_t errlen)
{
    struct mon_buf b = {0};
    struct statvfs vfs;
    int rc = 0;

    mon_buf_add(&b, "", 0);
    for (size_t i = 0; i < sizeof(proc_files) / sizeof(proc_files[0]) && rc == 0; i++) {
        rc = slurp(proc_files[i], &b);
        if (rc < 0)
            snprintf(err, errlen, "cannot read %s: %s", proc_files[i], strerror(-rc));
    }
    if (rc == 0 && b.failed) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0)
        mon_proc_parse(b.data, b.len, p);
    free(b.data);
    memset(d, 0, sizeof(*d));
    if (rc == 0 && statvfs("/", &vfs) == 0) {
        d->ok = true;
        d->total = (unsigned long long)vfs.f_blocks * vfs.f_frsize;
        d->free = (unsigned long long)vfs.f_bfree * vfs.f_frsize;
        d->avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    }
    return rc;
}

static int read_remote(const struct mon_src *src, struct mon_proc *p, struct mon_disk *d,
                       char *err, size_t errlen)
{
    char *out = NULL;
    size_t len = 0;
    int st, rc;

    rc = mon_ssh_run(src, PROC_CMD, MON_COMMAND_MS, MON_OUTPUT_MAX, &out, &len, &st, err,
                     errlen);
    if (rc == 0 && st != 0) {
        snprintf(err, errlen, "reading /proc on %s failed (exit %d)", src->host, st);
        rc = -EIO;
    }
    if (rc == 0)
        mon_proc_parse(out, len, p);
    free(out);
    out = NULL;
    memset(d, 0, sizeof(*d));
    if (rc == 0) {
        char ignored[256];

        /* the disk is optional: a host without df still reports the rest */
        if (mon_ssh_run(src, DF_CMD, MON_COMMAND_MS, 65536, &out, &len, &st, ignored,
                        sizeof(ignored)) == 0 && st == 0)
            mon_df_parse(out, len, d);
        free(out);
    }
    return rc;
}

/* CPU usage since the sample in *state (or since boot), and the window it covers; *state
 * becomes this sample. */
static double cpu_usage(const struct mon_proc *p, json_t **state, double *window)
{
    struct timespec ts;
    int64_t now;
    const json_t *s = *state;
    double pct = -1;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (!p->has_cpu)
        return -1;
    if (json_is_object(s)) {
        json_int_t busy = json_integer_value(json_object_get(s, "busy"));
        json_int_t idle = json_integer_value(json_object_get(s, "idle"));
        json_int_t t = json_integer_value(json_object_get(s, "t"));

        if ((unsigned long long)busy <= p->cpu_busy && (unsigned long long)idle <= p->cpu_idle &&
            p->cpu_busy + p->cpu_idle > (unsigned long long)(busy + idle)) {
            double db = (double)(p->cpu_busy - (unsigned long long)busy);
            double di = (double)(p->cpu_idle - (unsigned long long)idle);

            pct = 100.0 * db / (db + di);
            *window = (double)(now - t) / 1000.0;
        }
    }
    if (pct < 0 && p->cpu_busy + p->cpu_idle > 0) {
        pct = 100.0 * (double)p->cpu_busy / (double)(p->cpu_busy + p->cpu_idle);
        *window = p->has_uptime ? p->uptime_s : 0;
    }
    json_decref(*state);
    *state = json_pack("{s:I,s:I,s:I}", "busy", (json_int_t)p->cpu_busy, "idle",
                       (json_int_t)p->cpu_idle, "t", (json_int_t)now);
    return pct;
}

/* Server metrics of src (local /proc, or cat and df over SSH), or NULL with err. */
json_t *mon_probe_server(const struct mon_src *src, json_t **state, char *err, size_t errlen)
{
    struct mon_proc p;
    struct mon_disk d;
    double pct, window = 0;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = src->remote ? read_remote(src, &p, &d, err, errlen) : read_local(&p, &d, err, errlen);
    if (rc < 0)
        return NULL;
    if (!p.has_cpu && p.mem_total < 0 && !p.has_load) {
        snprintf(err, errlen, "no /proc data in the output of %s", src->remote ? src->host :
                 "this host");
        return NULL;
    }
    pct = cpu_usage(&p, state, &window);
    return mon_server_json(&p, &d, pct, window);
}
