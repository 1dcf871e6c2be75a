/* nvsmi.c: the nvidia-smi CSV parser (--format=csv,noheader,nounits). Defensive: an unreadable
 * field ([N/A], [Not Supported], blanks, a short line) becomes null, never a failed parse. */
#include "monitor/probe.h"

#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 1024
#define FIELDS_MAX 32
#define GPUS_MAX 256
#define PROCS_MAX 1024
#define GPU_FIELDS 8
#define APP_FIELDS 4

/* Split line at commas into at most FIELDS_MAX trimmed fields; the last one keeps the rest. */
static size_t split(char *line, char **f)
{
    size_t n = 0;
    char *s = line;

    for (;;) {
        char *comma = n + 1 < FIELDS_MAX ? strchr(s, ',') : NULL;

        if (comma)
            *comma = '\0';
        f[n++] = mon_trim(s);
        if (!comma)
            return n;
        s = comma + 1;
    }
}

/* Whether a field says "no value": empty, N/A, or a bracketed note like [Not Supported]. */
static bool absent(const char *s)
{
    return !*s || s[0] == '[' || strcmp(s, "N/A") == 0;
}

static json_t *num_or_null(const char *s)
{
    double v;

    if (absent(s) || !mon_parse_double(s, &v))
        return json_null();
    return mon_json_num(v);
}

/* A printable string, or null (control bytes, invalid UTF-8, a note). */
static json_t *str_or_null(const char *s)
{
    json_t *j;

    if (absent(s))
        return json_null();
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return json_null();
    j = json_string(s);
    return j ? j : json_null();
}

/* Field i of n, or "" past the end. */
static const char *field(char **f, size_t n, size_t i)
{
    return i < n ? f[i] : "";
}

/* Join fields [from, to] with ", " (nvidia-smi's separator) into buf: a name that held
 * commas. */
static const char *join(char **f, size_t from, size_t to, char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = from; i <= to && pos < len; i++) {
        int n = snprintf(buf + pos, len - pos, "%s%s", i > from ? ", " : "", f[i]);

        if (n < 0)
            break;
        pos += (size_t)n;
    }
    return buf;
}

static json_t *gpu_entry(char **f, size_t n, bool with_procs)
{
    char name[LINE_MAX_BYTES];
    unsigned long long idx;
    size_t extra = n > GPU_FIELDS ? n - GPU_FIELDS : 0;
    const char *nm = extra ? join(f, 2, 2 + extra, name, sizeof(name)) : field(f, n, 2);
    json_t *g = json_object();

    if (!g)
        return NULL;
    if (mon_parse_ull(field(f, n, 0), &idx) && idx < 1000000)
        json_object_set_new(g, "index", json_integer((json_int_t)idx));
    else
        json_object_set_new(g, "index", json_null());
    json_object_set_new(g, "uuid", str_or_null(field(f, n, 1)));
    json_object_set_new(g, "name", str_or_null(nm));
    json_object_set_new(g, "temperature_c", num_or_null(field(f, n, 3 + extra)));
    json_object_set_new(g, "utilization_pct", num_or_null(field(f, n, 4 + extra)));
    json_object_set_new(g, "vram_used_mb", num_or_null(field(f, n, 5 + extra)));
    json_object_set_new(g, "vram_total_mb", num_or_null(field(f, n, 6 + extra)));
    json_object_set_new(g, "power_w", num_or_null(field(f, n, 7 + extra)));
    json_object_set_new(g, "processes", with_procs ? json_array() : json_null());
    return g;
}

/* Attach one compute-apps line to the GPU with its uuid (dropped when none matches). */
static void add_process(json_t *gpus, char **f, size_t n)
{
    char name[LINE_MAX_BYTES];
    size_t extra = n > APP_FIELDS ? n - APP_FIELDS : 0;
    const char *nm = extra ? join(f, 2, 2 + extra, name, sizeof(name)) : field(f, n, 2);
    const char *uuid = field(f, n, 0);
    unsigned long long pid;
    size_t i;
    json_t *g, *procs, *p;

    if (absent(uuid))
        return;
    json_array_foreach(gpus, i, g) {
        const char *u = json_string_value(json_object_get(g, "uuid"));

        procs = json_object_get(g, "processes");
        if (!u || strcmp(u, uuid) != 0 || !json_is_array(procs) ||
            json_array_size(procs) >= PROCS_MAX)
            continue;
        p = json_object();
        if (!p)
            return;
        if (mon_parse_ull(field(f, n, 1), &pid) && pid <= 0x7fffffffULL)
            json_object_set_new(p, "pid", json_integer((json_int_t)pid));
        else
            json_object_set_new(p, "pid", json_null());
        json_object_set_new(p, "name", str_or_null(nm));
        json_object_set_new(p, "vram_mb", num_or_null(field(f, n, 3 + extra)));
        json_array_append_new(procs, p);
        return;
    }
}

/* The "gpus" array of the two CSV outputs (apps may be NULL); unreadable fields are null and
 * lines with fewer than two fields ("No devices were found") are skipped. */
json_t *mon_nvsmi_parse(const char *gpus, size_t glen, const char *apps, size_t alen)
{
    char line[LINE_MAX_BYTES];
    char *f[FIELDS_MAX];
    const char *p = gpus, *end = gpus ? gpus + glen : NULL;
    json_t *arr = json_array();
    size_t n;

    if (!arr)
        return NULL;
    while (mon_next_line(&p, end, line, sizeof(line)) && json_array_size(arr) < GPUS_MAX) {
        json_t *g;

        n = split(line, f);
        if (n < 2)
            continue;
        g = gpu_entry(f, n, apps != NULL);
        if (!g || json_array_append_new(arr, g)) {
            json_decref(arr);
            return NULL;
        }
    }
    p = apps;
    end = apps ? apps + alen : NULL;
    while (mon_next_line(&p, end, line, sizeof(line))) {
        n = split(line, f);
        if (n >= 2)
            add_process(arr, f, n);
    }
    return arr;
}
