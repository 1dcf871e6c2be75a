/* server.c: the server probe: /proc (load, memory, uptime, CPU counters) and the root file
 * system, read here or with `cat` and `df` over SSH, through the same parsers. CPU usage is the
 * change of the counters since the directory's previous probe when that is recent
 * (MON_CPU_RECENT_MS), else between two samples MON_CPU_MIN_MS apart taken now: never the
 * average since boot. */
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
#include "util/util.h"

#define PROC_CMD "cat /proc/loadavg /proc/meminfo /proc/uptime /proc/stat"
/* Two CPU samples in one command: the first line of /proc/stat (the "cpu" line), a pause of
 * MON_CPU_MIN_MS (a whole second where sleep takes no fraction), then PROC_CMD, whose "cpu"
 * line is the later one (the parser keeps the last). Only ";" and "||", which every login shell
 * takes; stderr is dropped and the status is cat's. */
#define PROC_PAIR_CMD "head -n 1 /proc/stat; sleep 0.1 || sleep 1; " PROC_CMD
#define DF_CMD "df -Pk /"
/* /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space. */
#define USER_HZ 100.0

static const char *const proc_files[] = {
    "/proc/loadavg", "/proc/meminfo", "/proc/uptime", "/proc/stat",
};
/* Tests only (mon_server_proc_source): where local readings come from instead. */
static mon_proc_source_fn proc_source;
static void *proc_source_ctx;

/* One reading of the aggregate CPU counters, and when it was taken (CLOCK_MONOTONIC, ms). */
struct cpu_sample {
    bool ok;
    unsigned long long busy, idle;
    int64_t t_ms;
};

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Tests only: take local readings from fn (NULL: from /proc). */
void mon_server_proc_source(mon_proc_source_fn fn, void *ctx)
{
    proc_source = fn;
    proc_source_ctx = ctx;
}

/* Append one /proc file (whose stat size is 0: read to EOF) to b, keeping b within
 * MON_OUTPUT_MAX. 0 or -errno (-EFBIG past the limit). */
static int slurp(const char *path, struct mon_buf *b)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (b->len >= MON_OUTPUT_MAX)
        return -EFBIG;
    rc = cu_read_all(path, MON_OUTPUT_MAX - b->len, &text, &len);
    if (rc == 0)
        mon_buf_add(b, text, len);
    free(text);
    return rc;
}

/* The text of the four /proc files into b. 0 or -errno with err. */
static int read_proc_text(struct mon_buf *b, char *err, size_t errlen)
{
    int rc = 0;

    if (proc_source) {
        size_t len = 0;
        char *text = proc_source(proc_source_ctx, &len);

        if (!text) {
            snprintf(err, errlen, "cannot read /proc: test source failed");
            return -EIO;
        }
        mon_buf_add(b, text, len);
        free(text);
        return 0;
    }
    for (size_t i = 0; i < sizeof(proc_files) / sizeof(proc_files[0]) && rc == 0; i++) {
        rc = slurp(proc_files[i], b);
        if (rc < 0)
            snprintf(err, errlen, "cannot read %s: %s", proc_files[i], strerror(-rc));
    }
    return rc;
}

static int read_local(struct mon_proc *p, struct mon_disk *d, char *err, size_t errlen)
{
    struct mon_buf b = {0};
    struct statvfs vfs;
    int rc = 0;

    mon_buf_add(&b, "", 0);
    rc = read_proc_text(&b, err, errlen);
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

/* /proc and df over SSH. With first (a pair of CPU samples), *first gets the earlier
 * sample's counters. 0 or -errno with err. */
static int read_remote(const struct mon_src *src, struct mon_proc *p, struct mon_proc *first,
                       struct mon_disk *d, char *err, size_t errlen)
{
    char *out = NULL;
    size_t len = 0;
    int st, rc;

    rc = mon_ssh_run(src, first ? PROC_PAIR_CMD : PROC_CMD, MON_COMMAND_MS, MON_OUTPUT_MAX,
                     &out, &len, &st, err, errlen);
    if (rc == 0 && st != 0) {
        snprintf(err, errlen, "reading /proc on %s failed (exit %d)", src->host, st);
        rc = -EIO;
    }
    if (rc == 0) {
        mon_proc_parse(out, len, p);
        if (first) {
            char line[512];
            const char *q = out;

            memset(first, 0, sizeof(*first));
            if (mon_next_line(&q, out + len, line, sizeof(line)))
                mon_proc_parse(line, strlen(line), first);
        }
    }
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

/* The sample the probe state holds (ok false when none). */
static struct cpu_sample state_sample(const json_t *s)
{
    struct cpu_sample c = { .ok = false };
    json_t *busy = json_object_get(s, "busy"), *idle = json_object_get(s, "idle");
    json_t *t = json_object_get(s, "t");

    if (json_is_integer(busy) && json_is_integer(idle) && json_is_integer(t) &&
        json_integer_value(busy) >= 0 && json_integer_value(idle) >= 0) {
        c.ok = true;
        c.busy = (unsigned long long)json_integer_value(busy);
        c.idle = (unsigned long long)json_integer_value(idle);
        c.t_ms = (int64_t)json_integer_value(t);
    }
    return c;
}

static struct cpu_sample sample_of(const struct mon_proc *p, int64_t t_ms)
{
    struct cpu_sample c = { .ok = p->has_cpu, .busy = p->cpu_busy, .idle = p->cpu_idle,
                            .t_ms = t_ms };

    return c;
}

/* CPU usage (%) from sample a to the later sample b, -1 when the counters did not advance
 * (or went back: a reboot, another host). */
static double usage_between(const struct cpu_sample *a, const struct cpu_sample *b)
{
    double db, di;

    if (!a->ok || !b->ok || b->busy < a->busy || b->idle < a->idle ||
        b->busy + b->idle == a->busy + a->idle)
        return -1;
    db = (double)(b->busy - a->busy);
    di = (double)(b->idle - a->idle);
    return 100.0 * db / (db + di);
}

/* Server metrics of src (local /proc, or cat and df over SSH), or NULL with err. CPU usage
 * covers the window since the previous sample in *state when that is at most
 * MON_CPU_RECENT_MS old (waiting until it is MON_CPU_MIN_MS old), else two samples taken here
 * MON_CPU_MIN_MS apart; *state becomes this probe's last sample. */
json_t *mon_probe_server(const struct mon_src *src, json_t **state, char *err, size_t errlen)
{
    struct mon_proc p, first;
    struct mon_disk d;
    struct cpu_sample prev = state_sample(*state), base, cur;
    int64_t age = cu_mono_ms() - prev.t_ms;
    bool pair = !prev.ok || age < 0 || age > MON_CPU_RECENT_MS;
    double pct, window = 0;
    int rc;

    memset(&p, 0, sizeof(p));
    memset(&first, 0, sizeof(first));
    if (!pair && age < MON_CPU_MIN_MS)
        sleep_ms(MON_CPU_MIN_MS - age);
    if (src->remote) {
        rc = read_remote(src, &p, pair ? &first : NULL, &d, err, errlen);
    } else {
        rc = pair ? read_local(&first, &d, err, errlen) : 0;
        base = sample_of(&first, cu_mono_ms());
        if (rc == 0 && pair)
            sleep_ms(MON_CPU_MIN_MS);
        if (rc == 0)
            rc = read_local(&p, &d, err, errlen);
    }
    if (rc < 0)
        return NULL;
    if (!p.has_cpu && p.mem_total < 0 && !p.has_load) {
        snprintf(err, errlen, "no /proc data in the output of %s", src->remote ? src->host :
                 "this host");
        return NULL;
    }
    cur = sample_of(&p, cu_mono_ms());
    if (!pair)
        base = prev;
    else if (src->remote)
        base = sample_of(&first, cur.t_ms);
    pct = usage_between(&base, &cur);
    if (pct >= 0 && pair && src->remote)
        /* the remote host's own clock: its counters advance by ncpu * USER_HZ a second */
        window = p.ncpu > 0 ? (double)(cur.busy + cur.idle - base.busy - base.idle) /
                              (USER_HZ * p.ncpu) : MON_CPU_MIN_MS / 1000.0;
    else if (pct >= 0)
        window = (double)(cur.t_ms - base.t_ms) / 1000.0;
    if (cur.ok) {
        json_decref(*state);
        *state = json_pack("{s:I,s:I,s:I}", "busy", (json_int_t)cur.busy, "idle",
                           (json_int_t)cur.idle, "t", (json_int_t)cur.t_ms);
    }
    return mon_server_json(&p, &d, pct, window);
}
