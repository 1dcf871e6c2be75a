/* procfs.c: parsers for /proc/loadavg, /proc/meminfo, /proc/uptime, /proc/stat (one text, as
 * `cat` of the four prints it) and `df -Pk`, and the server metrics object built from them. */
#include "monitor/probe.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define LINE_BYTES 512
#define TOKENS_MAX 16
/* /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space. */
#define USER_HZ 100.0
#define NCPU_MAX 65536

/* Split line at blanks into at most TOKENS_MAX tokens. */
static size_t tokens(char *line, char **t)
{
    char *save = NULL, *tok;
    size_t n = 0;

    for (tok = strtok_r(line, " \t", &save); tok && n < TOKENS_MAX;
         tok = strtok_r(NULL, " \t", &save))
        t[n++] = tok;
    return n;
}

/* The aggregate "cpu" line: user nice system idle iowait irq softirq steal (guest time is
 * already inside user). */
static void cpu_line(char **t, size_t n, struct mon_proc *out)
{
    unsigned long long v[8] = {0}, busy, idle;

    if (n < 5)
        return;
    for (size_t i = 1; i < n && i <= 8; i++)
        if (!mon_parse_ull(t[i], &v[i - 1]) || v[i - 1] > (1ULL << 60))
            return;
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    idle = v[3] + v[4];
    out->has_cpu = true;
    out->cpu_busy = busy;
    out->cpu_idle = idle;
}

/* "Key:   123 kB" of /proc/meminfo. */
static void mem_line(char *line, struct mon_proc *out)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        { "MemTotal", offsetof(struct mon_proc, mem_total) },
        { "MemFree", offsetof(struct mon_proc, mem_free) },
        { "MemAvailable", offsetof(struct mon_proc, mem_available) },
        { "Buffers", offsetof(struct mon_proc, buffers) },
        { "Cached", offsetof(struct mon_proc, cached) },
        { "SwapTotal", offsetof(struct mon_proc, swap_total) },
        { "SwapFree", offsetof(struct mon_proc, swap_free) },
    };
    char *colon = strchr(line, ':'), *val;
    unsigned long long v;
    size_t n;

    if (!colon)
        return;
    *colon = '\0';
    val = mon_trim(colon + 1);
    n = strlen(val);
    if (n > 3 && strcmp(val + n - 3, " kB") == 0)
        val[n - 3] = '\0';
    else
        return;
    if (!mon_parse_ull(mon_trim(val), &v) || v > (1ULL << 50))
        return;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(line, keys[i].key) == 0)
            *(long long *)((char *)out + keys[i].off) = (long long)(v * 1024);
}

/* "0.50 0.40 0.30 2/345 6789" of /proc/loadavg. */
static bool load_line(char **t, size_t n, struct mon_proc *out)
{
    unsigned long long run, total;
    char *slash;

    if (n != 5 || !(slash = strchr(t[3], '/')))
        return false;
    *slash = '\0';
    if (!mon_parse_double(t[0], &out->load1) || !mon_parse_double(t[1], &out->load5) ||
        !mon_parse_double(t[2], &out->load15) || !mon_parse_ull(t[3], &run) ||
        !mon_parse_ull(slash + 1, &total) || run > (1ULL << 40) || total > (1ULL << 40))
        return false;
    out->procs_running = (long long)run;
    out->procs_total = (long long)total;
    out->has_load = out->load1 >= 0 && out->load5 >= 0 && out->load15 >= 0;
    return true;
}

/* Fill *out from the text of the four /proc files; unknown lines are ignored, the last
 * valid line of a kind wins. */
void mon_proc_parse(const char *text, size_t len, struct mon_proc *out)
{
    char line[LINE_BYTES];
    char *t[TOKENS_MAX];
    const char *p = text, *end = text ? text + len : NULL;
    size_t n;
    double up, idle;

    memset(out, 0, sizeof(*out));
    out->procs_running = out->procs_total = -1;
    out->mem_total = out->mem_free = out->mem_available = out->buffers = out->cached = -1;
    out->swap_total = out->swap_free = -1;
    while (mon_next_line(&p, end, line, sizeof(line))) {
        if (strncmp(line, "cpu", 3) == 0) {
            n = tokens(line, t);
            if (n > 0 && strcmp(t[0], "cpu") == 0)
                cpu_line(t, n, out);
            else if (isdigit((unsigned char)line[3]) && out->ncpu < NCPU_MAX)
                out->ncpu++;
        } else if (strchr(line, ':')) {
            mem_line(line, out);
        } else {
            n = tokens(line, t);
            if (n == 2 && mon_parse_double(t[0], &up) && mon_parse_double(t[1], &idle) &&
                up >= 0) {
                out->has_uptime = true;
                out->uptime_s = up;
            } else if (n == 2 && strcmp(t[0], "procs_running") == 0) {
                unsigned long long v;

                if (mon_parse_ull(t[1], &v) && v < (1ULL << 40))
                    out->procs_running = (long long)v;
            } else if (n == 5) {
                /* procs_running from /proc/stat is newer than loadavg's count */
                long long running = out->procs_running;

                if (load_line(t, n, out) && running >= 0)
                    out->procs_running = running;
            }
        }
    }
}

/* Fill *out from `df -Pk` output (columns read from the right, so a file system name with
 * blanks does not matter). 0 or -EINVAL. */
int mon_df_parse(const char *text, size_t len, struct mon_disk *out)
{
    char line[LINE_BYTES];
    char *t[TOKENS_MAX];
    const char *p = text, *end = text ? text + len : NULL;
    unsigned long long total, used, avail;
    size_t n;

    memset(out, 0, sizeof(*out));
    while (mon_next_line(&p, end, line, sizeof(line))) {
        n = tokens(line, t);
        if (n < 6 || !mon_parse_ull(t[n - 5], &total) || !mon_parse_ull(t[n - 4], &used) ||
            !mon_parse_ull(t[n - 3], &avail))
            continue;
        if (total > (1ULL << 52) || used > total || avail > total)
            continue;
        out->ok = true;
        out->total = total * 1024;
        out->free = (total - used) * 1024;
        out->avail = avail * 1024;
        return 0;
    }
    return -EINVAL;
}

static json_t *num_if(bool known, double v)
{
    return known ? mon_json_num(v) : json_null();
}

static json_t *memory_json(const struct mon_proc *p)
{
    long long avail = p->mem_available;
    json_t *m;

    if (p->mem_total <= 0)
        return json_null();
    if (avail < 0 && p->mem_free >= 0)
        avail = p->mem_free + (p->buffers > 0 ? p->buffers : 0) +
                (p->cached > 0 ? p->cached : 0);
    if (avail > p->mem_total)
        avail = p->mem_total;
    m = json_object();
    if (!m)
        return NULL;
    json_object_set_new(m, "total_bytes", json_integer(p->mem_total));
    json_object_set_new(m, "available_bytes", num_if(avail >= 0, (double)avail));
    json_object_set_new(m, "used_bytes", num_if(avail >= 0, (double)(p->mem_total - avail)));
    json_object_set_new(m, "used_pct", num_if(avail >= 0,
        mon_round2(100.0 * (double)(p->mem_total - avail) / (double)p->mem_total)));
    json_object_set_new(m, "swap_total_bytes", num_if(p->swap_total >= 0,
                                                      (double)p->swap_total));
    json_object_set_new(m, "swap_used_bytes",
        num_if(p->swap_total >= 0 && p->swap_free >= 0 && p->swap_free <= p->swap_total,
               (double)(p->swap_total - p->swap_free)));
    return m;
}

static json_t *disk_json(const struct mon_disk *d)
{
    unsigned long long used;
    json_t *o;

    if (!d || !d->ok || d->total == 0)
        return json_null();
    used = d->total - d->free;
    o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "path", json_string("/"));
    json_object_set_new(o, "total_bytes", mon_json_num((double)d->total));
    json_object_set_new(o, "available_bytes", mon_json_num((double)d->avail));
    json_object_set_new(o, "used_bytes", mon_json_num((double)used));
    /* as df computes Use%: of the space an unprivileged user can have */
    json_object_set_new(o, "used_pct", used + d->avail ?
        mon_json_num(mon_round2(100.0 * (double)used / (double)(used + d->avail))) :
        json_null());
    return o;
}

/* The server metrics object from p, d (may be NULL) and a CPU usage (< 0: unknown). */
json_t *mon_server_json(const struct mon_proc *p, const struct mon_disk *d, double usage_pct,
                        double window_s)
{
    json_t *o = json_object(), *load = NULL, *procs, *cpu;

    if (!o)
        return NULL;
    json_object_set_new(o, "uptime_s", num_if(p->has_uptime, mon_round2(p->uptime_s)));
    if (p->has_load) {
        load = json_object();
        json_object_set_new(load, "1m", mon_json_num(p->load1));
        json_object_set_new(load, "5m", mon_json_num(p->load5));
        json_object_set_new(load, "15m", mon_json_num(p->load15));
    }
    json_object_set_new(o, "load", load ? load : json_null());
    procs = json_object();
    json_object_set_new(procs, "running", num_if(p->procs_running >= 0,
                                                 (double)p->procs_running));
    json_object_set_new(procs, "total", num_if(p->procs_total >= 0, (double)p->procs_total));
    json_object_set_new(o, "processes", procs);
    cpu = json_object();
    json_object_set_new(cpu, "count", num_if(p->ncpu > 0, p->ncpu));
    json_object_set_new(cpu, "usage_pct", num_if(usage_pct >= 0, mon_round2(usage_pct)));
    json_object_set_new(cpu, "usage_window_s", num_if(usage_pct >= 0, mon_round2(window_s)));
    json_object_set_new(cpu, "busy_seconds", num_if(p->has_cpu,
                                                    mon_round2((double)p->cpu_busy / USER_HZ)));
    json_object_set_new(cpu, "idle_seconds", num_if(p->has_cpu,
                                                    mon_round2((double)p->cpu_idle / USER_HZ)));
    json_object_set_new(o, "cpu", cpu);
    json_object_set_new(o, "memory", memory_json(p));
    json_object_set_new(o, "disk", disk_json(d));
    return o;
}
