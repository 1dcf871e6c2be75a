/* test_monitor.c: the monitor module: nvidia-smi, Docker and /proc parsers, alerts, Prometheus
 * output, target.json validation (good and hostile), the local command runner, and the module
 * over a temporary state directory (targets, persistence, service directories, single flight,
 * where a target's SSH key may come from, metrics.prom against a host that never answers). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/registry.h"
#include "core/statefile.h"
#include "monitor/monitor.h"
#include "monitor/probe.h"
#include "testlib.h"

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

static json_t *gpu_at(json_t *gpus, size_t i)
{
    return json_array_get(gpus, i);
}

static bool is_null(json_t *obj, const char *key)
{
    return json_is_null(json_object_get(obj, key));
}

static double num(json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

static const char *str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "(null)";
}

/* ---- nvidia-smi ---- */

static json_t *nvsmi(const char *gpus, const char *apps)
{
    return mon_nvsmi_parse(gpus, strlen(gpus), apps, apps ? strlen(apps) : 0);
}

/* One parsed GPU against what nvidia-smi said (power within 0.01 W). */
static void check_gpu(json_t *g, const char *uuid, const char *name, double temp, double util,
                      double used, double total, double power, size_t nproc)
{
    CHECK_STR(str(g, "uuid"), uuid);
    CHECK_STR(str(g, "name"), name);
    CHECK(num(g, "temperature_c") == temp);
    CHECK(num(g, "utilization_pct") == util);
    CHECK(num(g, "vram_used_mb") == used);
    CHECK(num(g, "vram_total_mb") == total);
    CHECK(num(g, "power_w") > power - 0.01 && num(g, "power_w") < power + 0.01);
    CHECK_INT(json_array_size(json_object_get(g, "processes")), nproc);
}

/* A recorded file under golden/nvidia-smi/ (see its README), NUL-terminated; "" when empty. */
static char *recorded(const char *name)
{
    char path[512], *buf = NULL;
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/golden/nvidia-smi/%s", TEST_SRC_DIR, name);
    f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open %s", path);
    buf = calloc(1, 4096);
    if (f && buf)
        n = fread(buf, 1, 4095, f);
    if (buf)
        buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

/* Output recorded on a real H100, idle and busy. */
static void test_nvsmi_recorded(void)
{
    char *gi = recorded("h100-idle-gpus.csv"), *ai = recorded("h100-idle-apps.csv");
    char *gb = recorded("h100-busy-gpus.csv"), *ab = recorded("h100-busy-apps.csv");
    json_t *a = NULL, *g, *p;

    if (!gi || !ai || !gb || !ab)
        goto out;
    a = nvsmi(gi, ai);
    CHECK_INT(json_array_size(a), 1);
    g = gpu_at(a, 0);
    CHECK_INT(num(g, "index"), 0);
    check_gpu(g, "GPU-72f4eb6b-8e7f-9ae4-d082-d5e1e24f2196", "NVIDIA H100 80GB HBM3", 38, 0, 0,
              81559, 94.59, 0);
    json_decref(a);

    a = nvsmi(gb, ab);
    CHECK_INT(json_array_size(a), 1);
    g = gpu_at(a, 0);
    check_gpu(g, "GPU-72f4eb6b-8e7f-9ae4-d082-d5e1e24f2196", "NVIDIA H100 80GB HBM3", 58, 100,
              1651, 81559, 672.06, 1);
    p = json_array_get(json_object_get(g, "processes"), 0);
    CHECK(num(p, "pid") == 499);
    CHECK_STR(str(p, "name"), "python3");
    CHECK(num(p, "vram_mb") == 1642);
out:
    json_decref(a);
    free(gi);
    free(ai);
    free(gb);
    free(ab);
}

/* The alerts of a gpu.json's metrics for recorded gpus/apps CSV, as "name subject value"
 * lines, by o's thresholds (NULL: the defaults). */
static void alert_lines(const char *gpus, const char *apps, const struct mon_options *o,
                        char *out, size_t outlen)
{
    json_t *arr = nvsmi(gpus, apps), *m = json_pack("{s:o}", "gpus", arr), *a, *x;
    size_t i, used = 0;

    out[0] = '\0';
    a = mon_alerts_at("gpu", m, o);
    json_array_foreach(a, i, x) {
        int n = snprintf(out + used, outlen - used, "%s %s %g;", str(x, "name"),
                         str(x, "subject"), num(x, "value"));

        if (n > 0 && (size_t)n < outlen - used)
            used += (size_t)n;
    }
    json_decref(a);
    json_decref(m);
}

/* Output recorded on a real H200 (idle; busy at 79 % VRAM; 92 % VRAM), and the design's alert
 * thresholds on it: 90 % VRAM, 85 C; then lower and higher thresholds as the options set them. */
static void test_nvsmi_h200(void)
{
    static const char *const files[] = {
        "h200-idle-gpus.csv", "h200-idle-apps.csv", "h200-busy-gpus.csv", "h200-busy-apps.csv",
        "h200-vramfull-gpus.csv", "h200-vramfull-apps.csv",
    };
    char *t[6], lines[512], err[256];
    struct mon_options o;
    json_t *a = NULL, *g, *p;
    bool ok = true;

    for (size_t i = 0; i < 6; i++)
        ok &= (t[i] = recorded(files[i])) != NULL;
    if (!ok)
        goto out;
    a = nvsmi(t[0], t[1]);
    CHECK_INT(json_array_size(a), 1);
    g = gpu_at(a, 0);
    CHECK_INT(num(g, "index"), 0);
    check_gpu(g, "GPU-b904d654-d2dd-7722-f2dd-b98af9d2c8d7", "NVIDIA H200", 38, 0, 0, 143771,
              110.33, 0);
    json_decref(a);
    a = nvsmi(t[2], t[3]);
    g = gpu_at(a, 0);
    check_gpu(g, "GPU-b904d654-d2dd-7722-f2dd-b98af9d2c8d7", "NVIDIA H200", 60, 100, 114185,
              143771, 692.84, 1);
    p = json_array_get(json_object_get(g, "processes"), 0);
    CHECK(num(p, "pid") == 488);
    CHECK_STR(str(p, "name"), "python3");
    CHECK(num(p, "vram_mb") == 114176);
    json_decref(a);
    a = nvsmi(t[4], t[5]);
    g = gpu_at(a, 0);
    check_gpu(g, "GPU-64c8aa8a-0e61-bf37-53b0-b21137a83b77", "NVIDIA H200", 57, 100, 132305,
              143771, 671.62, 1);
    CHECK(num(json_array_get(json_object_get(g, "processes"), 0), "vram_mb") == 132296);

    /* the defaults: 92 % VRAM alerts, 79 % does not; 38..60 C is not hot */
    alert_lines(t[0], t[1], NULL, lines, sizeof(lines));
    CHECK_STR(lines, "");
    alert_lines(t[2], t[3], NULL, lines, sizeof(lines));
    CHECK_STR(lines, "");
    alert_lines(t[4], t[5], NULL, lines, sizeof(lines));
    CHECK_STR(lines, "gpu_memory_high gpu0 92.02;");
    mon_options_default(&o);
    alert_lines(t[4], t[5], &o, lines, sizeof(lines));
    CHECK_STR(lines, "gpu_memory_high gpu0 92.02;");
    CHECK(o.alert_gpu_temp_c == 85 && o.alert_gpu_vram_pct == 90 && o.alert_mem_pct == 90 &&
          o.alert_disk_pct == 90 && o.probe_ttl_ms == 2000 && o.docker_socket[0] == '\0');

    /* --alert-gpu-temp 50: the busy GPU (60 C) and the full one (57 C) are hot */
    CHECK_INT(mon_options_set(&o, "alert_gpu_temp", "50", err, sizeof(err)), 0);
    alert_lines(t[0], t[1], &o, lines, sizeof(lines));
    CHECK_STR(lines, "");
    alert_lines(t[2], t[3], &o, lines, sizeof(lines));
    CHECK_STR(lines, "gpu_temperature_high gpu0 60;");
    alert_lines(t[4], t[5], &o, lines, sizeof(lines));
    CHECK_STR(lines, "gpu_temperature_high gpu0 57;gpu_memory_high gpu0 92.02;");
    /* --alert-gpu-vram 95 (the old value): 92 % is quiet; 79.5 alerts the busy one */
    CHECK_INT(mon_options_set(&o, "alert_gpu_temp", "85", err, sizeof(err)), 0);
    CHECK_INT(mon_options_set(&o, "alert_gpu_vram", "95", err, sizeof(err)), 0);
    alert_lines(t[4], t[5], &o, lines, sizeof(lines));
    CHECK_STR(lines, "");
    CHECK_INT(mon_options_set(&o, "alert_gpu_vram", "79.5", err, sizeof(err)), 0);
    alert_lines(t[2], t[3], &o, lines, sizeof(lines));
    CHECK_STR(lines, "");                       /* 114185 / 143771 = 79.42 % */
    CHECK_INT(mon_options_set(&o, "alert_gpu_vram", "79.4", err, sizeof(err)), 0);
    alert_lines(t[2], t[3], &o, lines, sizeof(lines));
    CHECK_STR(lines, "gpu_memory_high gpu0 79.42;");
out:
    json_decref(a);
    for (size_t i = 0; i < 6; i++)
        free(t[i]);
}

/* mon_options_set: every key, good and bad values. */
static void test_options(void)
{
    static const struct { const char *key, *value; int rc; } cases[] = {
        { "alert_gpu_temp", "85", 0 }, { "alert_gpu_temp", "92.5", 0 },
        { "alert_gpu_temp", "1", 0 }, { "alert_gpu_temp", "200", 0 },
        { "alert_gpu_temp", "0", -EINVAL }, { "alert_gpu_temp", "201", -EINVAL },
        { "alert_gpu_temp", "", -EINVAL }, { "alert_gpu_temp", "-5", -EINVAL },
        { "alert_gpu_temp", "hot", -EINVAL }, { "alert_gpu_temp", "8e1", -EINVAL },
        { "alert_gpu_temp", " 85", -EINVAL }, { "alert_gpu_temp", "85 ", -EINVAL },
        { "alert_gpu_temp", "0x55", -EINVAL }, { "alert_gpu_temp", "nan", -EINVAL },
        { "alert_gpu_temp", ".5", -EINVAL }, { "alert_gpu_temp", "85.", -EINVAL },
        { "alert_gpu_temp", "8.5.1", -EINVAL },
        { "alert_gpu_vram", "90", 0 }, { "alert_gpu_vram", "100", 0 },
        { "alert_gpu_vram", "100.01", -EINVAL }, { "alert_gpu_vram", "0.5", -EINVAL },
        { "alert_mem", "75", 0 }, { "alert_mem", "101", -EINVAL },
        { "alert_disk", "99.9", 0 }, { "alert_disk", "95%", -EINVAL },
        { "docker_socket", "/run/podman/podman.sock", 0 },
        { "docker_socket", "run/docker.sock", -EINVAL }, { "docker_socket", "", -EINVAL },
        { "docker_socket", "/a\nb", -EINVAL },
        { "probe_ttl", "0", 0 }, { "probe_ttl", "0.5", 0 }, { "probe_ttl", "3600", 0 },
        { "probe_ttl", "3601", -EINVAL }, { "probe_ttl", "2s", -EINVAL },
        { "probe_ttl", "-1", -EINVAL },
        { "alert_cpu", "90", -ENOENT }, { "ttl", "2", -ENOENT },
    };
    struct mon_options o;
    char err[256], longsock[300];

    for (size_t i = 0; i < NCASES(cases); i++) {
        mon_options_default(&o);
        err[0] = '\0';
        CHECKF(mon_options_set(&o, cases[i].key, cases[i].value, err, sizeof(err)) ==
               cases[i].rc, "%s=%s", cases[i].key, cases[i].value);
        CHECKF(cases[i].rc == 0 ? err[0] == '\0' : err[0] != '\0' && !strchr(err, '\n'),
               "%s=%s: err \"%s\"", cases[i].key, cases[i].value, err);
    }
    mon_options_default(&o);
    CHECK_INT(mon_options_set(&o, "alert_gpu_temp", "92.5", err, sizeof(err)), 0);
    CHECK(o.alert_gpu_temp_c == 92.5);
    CHECK_INT(mon_options_set(&o, "alert_gpu_vram", "abc", err, sizeof(err)), -EINVAL);
    CHECK(o.alert_gpu_vram_pct == 90);          /* a refused value changes nothing */
    CHECK_INT(mon_options_set(&o, "alert_mem", "75", err, sizeof(err)), 0);
    CHECK_INT(mon_options_set(&o, "alert_disk", "99.9", err, sizeof(err)), 0);
    CHECK(o.alert_mem_pct == 75 && o.alert_disk_pct == 99.9);
    CHECK_INT(mon_options_set(&o, "probe_ttl", "0.25", err, sizeof(err)), 0);
    CHECK_INT(o.probe_ttl_ms, 250);
    CHECK_INT(mon_options_set(&o, "docker_socket", "/run/d.sock", err, sizeof(err)), 0);
    CHECK_STR(o.docker_socket, "/run/d.sock");
    longsock[0] = '/';
    memset(longsock + 1, 'a', sizeof(longsock) - 2);
    longsock[sizeof(longsock) - 1] = '\0';
    CHECK_INT(mon_options_set(&o, "docker_socket", longsock, err, sizeof(err)), -EINVAL);
    CHECK_STR(o.docker_socket, "/run/d.sock");
    /* the server thresholds reach the rules */
    {
        json_t *m = json_pack("{s:{s:f},s:{s:f}}", "memory", "used_pct", 80.0, "disk",
                              "used_pct", 99.95);
        json_t *a = mon_alerts_at("server", m, &o), *d = mon_alerts("server", m);

        CHECK_INT(json_array_size(a), 2);       /* memory >= 75, disk >= 99.9 */
        CHECK_INT(json_array_size(d), 1);       /* the defaults: disk only */
        CHECK_STR(str(json_array_get(d, 0), "name"), "disk_high");
        CHECK(num(json_array_get(a, 0), "threshold") == 75);
        json_decref(a);
        json_decref(d);
        json_decref(m);
    }
}

/* ---- CPU usage over a recent window ---- */

/* A sequence of /proc readings for mon_server_proc_source: reading i gets texts[i] (the last
 * one again past the end). */
struct proc_seq {
    const char *const *texts;
    size_t n;
    int reads;
};

static char *proc_seq_next(void *ctx, size_t *len)
{
    struct proc_seq *q = ctx;
    const char *t = q->texts[(size_t)q->reads < q->n ? (size_t)q->reads : q->n - 1];

    q->reads++;
    *len = strlen(t);
    return strdup(t);
}

#define PROC_REST "0.50 0.40 0.30 2/345 6789\nMemTotal: 1000 kB\nMemAvailable: 500 kB\n" \
                  "4055.00 8000.00\n"

static void test_cpu_window(void)
{
    /* since boot: 1 % busy (1000 of 100000 jiffies); then 80 % over the next 100 jiffies */
    static const char *const texts[] = {
        PROC_REST "cpu  1000 0 0 99000 0 0 0 0 0 0\ncpu0 500 0 0 49500\ncpu1 500 0 0 49500\n",
        PROC_REST "cpu  1080 0 0 99020 0 0 0 0 0 0\ncpu0 540 0 0 49510\ncpu1 540 0 0 49510\n",
        PROC_REST "cpu  1090 0 0 99110 0 0 0 0 0 0\ncpu0 545 0 0 49555\ncpu1 545 0 0 49555\n",
        PROC_REST "cpu  1090 0 0 99110 0 0 0 0 0 0\ncpu0 545 0 0 49555\ncpu1 545 0 0 49555\n",
        PROC_REST "cpu  2090 0 0 99110 0 0 0 0 0 0\ncpu0 545 0 0 49555\ncpu1 545 0 0 49555\n",
        PROC_REST "cpu  2150 0 0 99160 0 0 0 0 0 0\ncpu0 545 0 0 49555\ncpu1 545 0 0 49555\n",
    };
    struct proc_seq q = { texts, NCASES(texts), 0 };
    struct mon_src src;
    json_t *state = NULL, *m, *cpu;
    char err[256] = "";
    struct timespec t0, t1;

    memset(&src, 0, sizeof(src));
    snprintf(src.name, sizeof(src.name), "local");
    mon_server_proc_source(proc_seq_next, &q);

    /* no previous sample: two readings at least MON_CPU_MIN_MS apart, not the boot average */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    m = mon_probe_server(&src, &state, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cpu = json_object_get(m, "cpu");
    CHECK_INT(q.reads, 2);
    CHECKF(num(cpu, "usage_pct") == 80, "usage_pct %g (1 would be the average since boot)",
           num(cpu, "usage_pct"));
    CHECKF(num(cpu, "usage_window_s") >= MON_CPU_MIN_MS / 1000.0 &&
           num(cpu, "usage_window_s") < 5, "usage_window_s %g (4055 would be since boot)",
           num(cpu, "usage_window_s"));
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >=
          MON_CPU_MIN_MS);
    CHECK_INT(num(cpu, "count"), 2);
    json_decref(m);

    /* a recent sample: one reading, the window since it (waiting for MON_CPU_MIN_MS) */
    m = mon_probe_server(&src, &state, err, sizeof(err));
    cpu = json_object_get(m, "cpu");
    CHECK_INT(q.reads, 3);
    CHECK(num(cpu, "usage_pct") == 10);         /* 10 busy of 100 */
    CHECK(num(cpu, "usage_window_s") >= MON_CPU_MIN_MS / 1000.0 &&
          num(cpu, "usage_window_s") < 5);
    json_decref(m);

    /* counters that did not move: unknown, never a figure since boot */
    m = mon_probe_server(&src, &state, err, sizeof(err));
    cpu = json_object_get(m, "cpu");
    CHECK_INT(q.reads, 4);
    CHECK(is_null(cpu, "usage_pct") && is_null(cpu, "usage_window_s"));
    CHECK(num(cpu, "busy_seconds") == 10.9);
    json_decref(m);

    /* a sample older than MON_CPU_RECENT_MS: two new readings, not the old window */
    json_object_set_new(state, "t", json_integer(json_integer_value(json_object_get(state,
                        "t")) - MON_CPU_RECENT_MS - 1000));
    m = mon_probe_server(&src, &state, err, sizeof(err));
    cpu = json_object_get(m, "cpu");
    CHECK_INT(q.reads, 6);
    CHECKF(num(cpu, "usage_pct") == 54.55, "usage_pct %g (95.5 would be the old window)",
           num(cpu, "usage_pct"));                  /* 60 busy of 110 */
    CHECK(num(cpu, "usage_window_s") >= MON_CPU_MIN_MS / 1000.0 &&
          num(cpu, "usage_window_s") < 5);
    json_decref(m);

    /* the real /proc: a first reading covers a recent window too */
    mon_server_proc_source(NULL, NULL);
    json_decref(state);
    state = NULL;
    m = mon_probe_server(&src, &state, err, sizeof(err));
    cpu = json_object_get(m, "cpu");
    CHECKF(json_is_number(json_object_get(cpu, "usage_window_s")) &&
           num(cpu, "usage_window_s") < 5, "real /proc: usage_window_s %g",
           num(cpu, "usage_window_s"));
    CHECK(num(cpu, "usage_pct") >= 0 && num(cpu, "usage_pct") <= 100);
    json_decref(m);
    json_decref(state);
}

static void test_nvsmi(void)
{
    json_t *g, *a, *p;

    /* real output of two GPUs, one with a process */
    a = nvsmi("0, GPU-3b3e5c1a-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 34, 0, 1, "
              "81559, 69.88\n"
              "1, GPU-7f00aa00-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 41, 97, "
              "40000, 81559, 350.12\n",
              "GPU-7f00aa00-0000-1111-2222-333344445555, 4242, /usr/bin/python3, 39990\n");
    CHECK_INT(json_array_size(a), 2);
    g = gpu_at(a, 0);
    CHECK_INT(num(g, "index"), 0);
    check_gpu(g, "GPU-3b3e5c1a-0000-1111-2222-333344445555", "NVIDIA H100 80GB HBM3", 34, 0, 1,
              81559, 69.88, 0);
    g = gpu_at(a, 1);
    p = json_array_get(json_object_get(g, "processes"), 0);
    CHECK_INT(json_array_size(json_object_get(g, "processes")), 1);
    CHECK(num(p, "pid") == 4242);
    CHECK_STR(str(p, "name"), "/usr/bin/python3");
    CHECK(num(p, "vram_mb") == 39990);
    json_decref(a);

    /* [N/A], [Not Supported], N/A, blanks and a short line give nulls, not a failure */
    a = nvsmi("0, GPU-a, Tesla T4, [N/A], [Not Supported],   15  ,15360, N/A\n"
              "1, GPU-b\n"
              "   \n"
              "2,,, ,,,,\r\n",
              "GPU-a, [N/A], [Insufficient Permissions], [N/A]\n"
              "GPU-nobody, 1, x, 1\n"
              "garbage\n");
    CHECK_INT(json_array_size(a), 3);
    g = gpu_at(a, 0);
    CHECK(is_null(g, "temperature_c"));
    CHECK(is_null(g, "utilization_pct"));
    CHECK(num(g, "vram_used_mb") == 15);
    CHECK(num(g, "vram_total_mb") == 15360);
    CHECK(is_null(g, "power_w"));
    p = json_array_get(json_object_get(g, "processes"), 0);
    CHECK(is_null(p, "pid"));
    CHECK(is_null(p, "name"));
    CHECK(is_null(p, "vram_mb"));
    g = gpu_at(a, 1);
    CHECK_STR(str(g, "uuid"), "GPU-b");
    CHECK(is_null(g, "name"));
    CHECK(is_null(g, "temperature_c"));
    CHECK(is_null(g, "power_w"));
    g = gpu_at(a, 2);
    CHECK(num(g, "index") == 2);
    CHECK(is_null(g, "uuid"));
    CHECK(is_null(g, "vram_total_mb"));
    json_decref(a);

    /* a name with a comma; apps unavailable: processes null */
    a = nvsmi("0, GPU-c, Quadro RTX 8000, Rev 2, 50, 10, 100, 200, 30.5\n", NULL);
    g = gpu_at(a, 0);
    CHECK_STR(str(g, "name"), "Quadro RTX 8000, Rev 2");
    CHECK(num(g, "temperature_c") == 50);
    CHECK(num(g, "power_w") == 30.5);
    CHECK(json_is_null(json_object_get(g, "processes")));
    json_decref(a);

    /* error texts, nothing at all, hostile values */
    a = nvsmi("No devices were found\n", "");
    CHECK_INT(json_array_size(a), 0);
    json_decref(a);
    a = nvsmi("", "");
    CHECK_INT(json_array_size(a), 0);
    json_decref(a);
    a = mon_nvsmi_parse(NULL, 0, NULL, 0);
    CHECK(a && json_array_size(a) == 0);
    json_decref(a);
    a = nvsmi("x, GPU-\x01\x02, \xff\xfe, nan, inf, 0x10, -1e999, 1e5\n", NULL);
    g = gpu_at(a, 0);
    CHECK(is_null(g, "index"));
    CHECK(is_null(g, "uuid"));
    CHECK(is_null(g, "name"));
    CHECK(is_null(g, "temperature_c"));
    CHECK(is_null(g, "utilization_pct"));
    CHECK(is_null(g, "vram_used_mb"));
    CHECK(is_null(g, "vram_total_mb"));
    CHECK(num(g, "power_w") == 100000);
    json_decref(a);
}

/* ---- /proc and df ---- */

static const char proc_sample[] =
    "0.52 0.58 0.59 3/612 123456\n"
    "MemTotal:       16318540 kB\n"
    "MemFree:         1180228 kB\n"
    "MemAvailable:    8159270 kB\n"
    "Buffers:          373800 kB\n"
    "Cached:          6582240 kB\n"
    "SwapCached:            0 kB\n"
    "SwapTotal:       2097148 kB\n"
    "SwapFree:        1048574 kB\n"
    "HugePages_Total:       0\n"
    "12345.67 45678.90\n"
    "cpu  1000 20 300 8000 100 5 7 0 0 0\n"
    "cpu0 500 10 150 4000 50 2 3 0 0 0\n"
    "cpu1 500 10 150 4000 50 3 4 0 0 0\n"
    "intr 1 2 3 4 5 6\n"
    "ctxt 999\n"
    "btime 1700000000\n"
    "processes 4242\n"
    "procs_running 2\n"
    "procs_blocked 0\n";

static void test_proc(void)
{
    struct mon_proc p;
    struct mon_disk d;
    json_t *m;

    mon_proc_parse(proc_sample, strlen(proc_sample), &p);
    CHECK(p.has_load);
    CHECK(p.load1 == 0.52 && p.load5 == 0.58 && p.load15 == 0.59);
    CHECK_INT(p.procs_running, 2);
    CHECK_INT(p.procs_total, 612);
    CHECK(p.has_uptime && p.uptime_s == 12345.67);
    CHECK_INT(p.mem_total, 16318540LL * 1024);
    CHECK_INT(p.mem_available, 8159270LL * 1024);
    CHECK_INT(p.swap_free, 1048574LL * 1024);
    CHECK(p.has_cpu);
    CHECK_INT(p.cpu_busy, 1000 + 20 + 300 + 5 + 7);
    CHECK_INT(p.cpu_idle, 8100);
    CHECK_INT(p.ncpu, 2);

    memset(&d, 0, sizeof(d));
    d.ok = true;
    d.total = 1000ULL * 1024;
    d.free = 50ULL * 1024;
    d.avail = 40ULL * 1024;
    m = mon_server_json(&p, &d, 12.345, 2.5);
    CHECK(num(json_object_get(m, "memory"), "used_pct") == 50.0);
    CHECK(num(json_object_get(m, "memory"), "swap_used_bytes") == 1048574.0 * 1024);
    CHECK(num(json_object_get(m, "disk"), "used_bytes") == 950.0 * 1024);
    CHECK(num(json_object_get(m, "disk"), "used_pct") == 95.96);
    CHECK(num(json_object_get(m, "cpu"), "usage_pct") == 12.35);
    CHECK(num(json_object_get(m, "cpu"), "count") == 2);
    CHECK(num(json_object_get(m, "cpu"), "busy_seconds") == 13.32);
    CHECK(num(json_object_get(m, "load"), "15m") == 0.59);
    CHECK(num(m, "uptime_s") == 12345.67);
    json_decref(m);

    /* an old kernel without MemAvailable: free + buffers + cached */
    {
        const char old[] = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\n"
                           "Cached: 300 kB\n";

        mon_proc_parse(old, strlen(old), &p);
        CHECK_INT(p.mem_available, -1);
        m = mon_server_json(&p, NULL, -1, 0);
        CHECK(num(json_object_get(m, "memory"), "available_bytes") == 500.0 * 1024);
        CHECK(json_is_null(json_object_get(m, "disk")));
        CHECK(json_is_null(json_object_get(json_object_get(m, "cpu"), "usage_pct")));
        CHECK(json_is_null(json_object_get(m, "load")));
        json_decref(m);
    }

    /* garbage and hostile numbers are ignored */
    {
        const char bad[] = "nan inf nan 1/2 3\nMemTotal: -5 kB\nMemFree: 99999999999999999999 kB\n"
                           "cpu  a b c d\ncpu 1 2\n1e999 1\n\x01\x02\n";

        mon_proc_parse(bad, sizeof(bad) - 1, &p);
        CHECK(!p.has_load);
        CHECK(!p.has_cpu);
        CHECK(!p.has_uptime);
        CHECK_INT(p.mem_total, -1);
        CHECK_INT(p.mem_free, -1);
        mon_proc_parse(NULL, 0, &p);
        CHECK(!p.has_cpu && p.mem_total == -1);
    }

    CHECK_INT(mon_df_parse("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
                           "/dev/my disk     1000 200 700 23% /\n", 200, &d), 0);
    CHECK(d.ok && d.total == 1000ULL * 1024 && d.free == 800ULL * 1024 &&
          d.avail == 700ULL * 1024);
    CHECK_INT(mon_df_parse("df: /: No such file\n", 20, &d), -EINVAL);
    CHECK(!d.ok);
    CHECK_INT(mon_df_parse("x 10 20 5 1% /\n", 15, &d), -EINVAL);   /* used > total */
}

/* ---- Docker ---- */

static const char docker_list[] =
    "[{\"Id\":\"abc123\",\"Names\":[\"/web\"],\"Image\":\"nginx:1\",\"State\":\"running\","
    "\"Status\":\"Up 5 minutes (healthy)\"},"
    "{\"Id\":\"def456\",\"Names\":[\"/job\"],\"Image\":\"busybox\",\"State\":\"exited\","
    "\"Status\":\"Exited (1) 2 hours ago\"},"
    "{\"Names\":[\"/noid\"]}, 42]";

static const char docker_inspect[] =
    "{\"Id\":\"abc123\",\"Name\":\"/web\",\"RestartCount\":3,\"Config\":{\"Image\":\"nginx:1\"},"
    "\"State\":{\"Status\":\"running\",\"Running\":true,\"ExitCode\":0,"
    "\"StartedAt\":\"2026-04-04T11:00:00Z\",\"Health\":{\"Status\":\"healthy\"}}}";

static const char docker_stats[] =
    "{\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":2000000000},\"system_cpu_usage\":"
    "20000000000,\"online_cpus\":4},\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":"
    "1000000000},\"system_cpu_usage\":10000000000},\"memory_stats\":{\"usage\":300000000,"
    "\"limit\":1000000000,\"stats\":{\"inactive_file\":100000000}},\"pids_stats\":"
    "{\"current\":7},\"networks\":{\"eth0\":{\"rx_bytes\":10,\"tx_bytes\":20},"
    "\"eth1\":{\"rx_bytes\":1,\"tx_bytes\":2}}}";

/* podman: no previous sample in the stats */
static const char podman_stats[] =
    "{\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":3000000000,\"percpu_usage\":[1,2]},"
    "\"system_cpu_usage\":30000000000},\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":0}},"
    "\"memory_stats\":{\"usage\":794624,\"limit\":25276026880}}";

static void test_docker(void)
{
    json_t *list = mon_docker_list(docker_list, strlen(docker_list)), *c, *prev, *next;

    CHECK_INT(json_array_size(list), 2);
    CHECK_STR(str(json_array_get(list, 0), "name"), "web");
    CHECK_STR(str(json_array_get(list, 1), "state"), "exited");
    CHECK(mon_docker_list("{}", 2) == NULL);
    CHECK(mon_docker_list("[", 1) == NULL);
    CHECK(mon_docker_list(NULL, 0) == NULL);

    next = json_object();
    c = mon_docker_container(json_array_get(list, 0), docker_inspect, strlen(docker_inspect),
                             docker_stats, strlen(docker_stats), NULL, next);
    CHECK_STR(str(c, "name"), "web");
    CHECK_STR(str(c, "id"), "abc123");
    CHECK_STR(str(c, "image"), "nginx:1");
    CHECK_STR(str(c, "state"), "running");
    CHECK_STR(str(c, "status"), "Up 5 minutes (healthy)");
    CHECK_STR(str(c, "health"), "healthy");
    CHECK(num(c, "restart_count") == 3);
    CHECK_STR(str(c, "started_at"), "2026-04-04T11:00:00Z");
    CHECK(num(c, "cpu_pct") == 40.0);       /* 1e9 / 1e10 * 4 CPUs * 100 */
    CHECK(num(c, "cpu_seconds") == 2.0);
    CHECK(num(c, "mem_used_bytes") == 200000000);
    CHECK(num(c, "mem_limit_bytes") == 1000000000);
    CHECK(num(c, "mem_pct") == 20.0);
    CHECK(num(c, "pids") == 7);
    CHECK(num(c, "net_rx_bytes") == 11 && num(c, "net_tx_bytes") == 22);
    CHECK(json_is_array(json_object_get(next, "abc123")));
    json_decref(c);

    /* a stopped container: no stats, nulls; from inspect alone (a service's container.json) */
    c = mon_docker_container(json_array_get(list, 1), NULL, 0, NULL, 0, NULL, NULL);
    CHECK_STR(str(c, "state"), "exited");
    CHECK(is_null(c, "cpu_pct") && is_null(c, "mem_used_bytes") && is_null(c, "health"));
    json_decref(c);
    c = mon_docker_container(NULL, docker_inspect, strlen(docker_inspect), NULL, 0, NULL, NULL);
    CHECK_STR(str(c, "name"), "web");
    CHECK(is_null(c, "status"));
    json_decref(c);
    CHECK(mon_docker_container(NULL, "{}", 2, NULL, 0, NULL, NULL) == NULL);
    CHECK(mon_docker_container(NULL, "nope", 4, "[]", 2, NULL, NULL) == NULL);

    /* podman: the first read has no CPU figure, the second one uses our own sample */
    json_decref(next);
    next = json_object();
    c = mon_docker_container(json_array_get(list, 0), NULL, 0, podman_stats,
                             strlen(podman_stats), NULL, next);
    CHECK(is_null(c, "cpu_pct"));
    CHECK(num(c, "mem_used_bytes") == 794624);
    json_decref(c);
    prev = json_pack("{s:[f,f]}", "abc123", 2000000000.0, 28000000000.0);
    c = mon_docker_container(json_array_get(list, 0), NULL, 0, podman_stats,
                             strlen(podman_stats), prev, NULL);
    CHECK(num(c, "cpu_pct") == 100.0);      /* 1e9 / 2e9 * 2 CPUs (percpu) * 100 */
    json_decref(c);
    json_decref(prev);
    json_decref(next);
    json_decref(list);
}

/* ---- alerts ---- */

static size_t count_alerts(const char *type, const char *metrics_json, const char *name)
{
    json_t *m = json_loads(metrics_json, 0, NULL), *a = mon_alerts(type, m), *x;
    size_t i, n = 0;

    json_array_foreach(a, i, x)
        if (!name || strcmp(str(x, "name"), name) == 0)
            n++;
    json_decref(a);
    json_decref(m);
    return n;
}

static void test_alerts(void)
{
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"index\":0,\"temperature_c\":85}]}",
                           "gpu_temperature_high"), 1);
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"index\":0,\"temperature_c\":84.9}]}", NULL), 0);
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"index\":0,\"temperature_c\":null,"
                           "\"vram_used_mb\":95,\"vram_total_mb\":100}]}", "gpu_memory_high"), 1);
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"vram_used_mb\":90,\"vram_total_mb\":100}]}",
                           "gpu_memory_high"), 1);
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"vram_used_mb\":89.99,"
                           "\"vram_total_mb\":100}]}", NULL), 0);
    CHECK_INT(count_alerts("gpu", "{\"gpus\":[{\"vram_used_mb\":99,\"vram_total_mb\":0}]}",
                           NULL), 0);
    CHECK_INT(count_alerts("server", "{\"memory\":{\"used_pct\":90},\"disk\":{\"used_pct\":89.99}}",
                           "memory_high"), 1);
    CHECK_INT(count_alerts("server", "{\"memory\":{\"used_pct\":90},\"disk\":{\"used_pct\":89.99}}",
                           "disk_high"), 0);
    CHECK_INT(count_alerts("server", "{\"memory\":null,\"disk\":{\"used_pct\":95}}", NULL), 1);
    CHECK_INT(count_alerts("containers", "{\"containers\":[{\"name\":\"a\",\"state\":\"running\","
                           "\"health\":\"unhealthy\"},{\"name\":\"b\",\"state\":\"exited\"},"
                           "{\"name\":\"c\",\"state\":\"running\",\"health\":\"healthy\"}]}",
                           NULL), 2);
    CHECK_INT(count_alerts("container", "{\"name\":\"a\",\"state\":\"paused\"}",
                           "container_not_running"), 1);
    CHECK_INT(count_alerts("container", "null", NULL), 0);
    CHECK_INT(count_alerts("bogus", "{}", NULL), 0);
}

/* ---- Prometheus ---- */

/* Every sample line "name{labels} value" belongs to the family of the last TYPE line, and every
 * family appears once. */
static bool prom_well_formed(const char *text)
{
    char family[128] = "", seen[4096] = " ";
    const char *p = text, *end = text + strlen(text);
    char line[1024];

    while (mon_next_line(&p, end, line, sizeof(line))) {
        char name[128], type[32];

        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            char key[140];

            snprintf(key, sizeof(key), " %s ", name);
            if (strstr(seen, key))
                return false;
            if (strlen(seen) + strlen(key) < sizeof(seen))
                snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s", key + 1);
            snprintf(family, sizeof(family), "%s", name);
            if (strcmp(type, "counter") == 0 && !strstr(name, "_total"))
                return false;
            continue;
        }
        if (line[0] == '#')
            continue;
        if (strncmp(line, family, strlen(family)) != 0 || line[strlen(family)] != '{' ||
            !strstr(line, "} "))
            return false;
    }
    return true;
}

static void test_prom(void)
{
    const char *docs_json =
        "[{\"target\":\"gpu-01\",\"type\":\"gpu\",\"error\":null,\"metrics\":{\"gpus\":["
        "{\"index\":0,\"uuid\":\"GPU-x\",\"temperature_c\":40,\"utilization_pct\":50,"
        "\"vram_used_mb\":1024,\"vram_total_mb\":2048,\"power_w\":70.5,\"processes\":[{}]},"
        "{\"index\":1,\"uuid\":null,\"temperature_c\":null,\"processes\":null}]},\"alerts\":[]},"
        "{\"target\":\"local\",\"type\":\"containers\",\"error\":null,\"metrics\":{"
        "\"containers\":[{\"name\":\"we\\\"b\\\\x\\n\",\"state\":\"running\",\"restart_count\":2,"
        "\"cpu_seconds\":1.5,\"health\":\"unhealthy\"}]},\"alerts\":[{}]},"
        "{\"target\":\"svc\",\"type\":\"container\",\"error\":null,\"metrics\":{\"name\":\"c\","
        "\"state\":\"exited\"},\"alerts\":[]},"
        "{\"target\":\"down\",\"type\":\"server\",\"error\":\"timed out\",\"metrics\":null,"
        "\"alerts\":[]},"
        "{\"target\":\"local\",\"type\":\"server\",\"error\":null,\"metrics\":{\"cpu\":{"
        "\"usage_pct\":25,\"busy_seconds\":10,\"idle_seconds\":30},\"memory\":{\"total_bytes\":"
        "1000}},\"alerts\":[]}]";
    json_t *docs = json_loads(docs_json, 0, NULL);
    char *out = mon_prom_render(docs);

    CHECK(out != NULL);
    if (!out)
        return;
    CHECK(prom_well_formed(out));
    CHECK(strstr(out, "# HELP conduit_gpu_memory_used_bytes ") != NULL);
    CHECK(strstr(out, "# TYPE conduit_gpu_memory_used_bytes gauge\n") != NULL);
    CHECK(strstr(out, "conduit_gpu_memory_used_bytes{target=\"gpu-01\",gpu=\"0\","
                      "uuid=\"GPU-x\"} 1073741824\n") != NULL);
    CHECK(strstr(out, "conduit_gpu_utilization_ratio{target=\"gpu-01\",gpu=\"0\","
                      "uuid=\"GPU-x\"} 0.5\n") != NULL);
    CHECK(strstr(out, "conduit_gpu_power_watts{target=\"gpu-01\",gpu=\"0\",uuid=\"GPU-x\"} "
                      "70.5\n") != NULL);
    CHECK(strstr(out, "conduit_gpu_processes{target=\"gpu-01\",gpu=\"0\",uuid=\"GPU-x\"} 1\n")
          != NULL);
    CHECK(strstr(out, "gpu=\"1\",uuid=\"\"} ") == NULL);      /* nulls are left out */
    CHECK(strstr(out, "# TYPE conduit_container_restarts_total counter\n") != NULL);
    CHECK(strstr(out, "conduit_container_restarts_total{target=\"local\","
                      "container=\"we\\\"b\\\\x\\n\"} 2\n") != NULL);
    CHECK(strstr(out, "conduit_container_up{target=\"svc\",container=\"c\"} 0\n") != NULL);
    CHECK(strstr(out, "conduit_container_healthy{target=\"local\"") != NULL);
    CHECK(strstr(out, "conduit_probe_success{target=\"down\",type=\"server\"} 0\n") != NULL);
    CHECK(strstr(out, "conduit_probe_success{target=\"gpu-01\",type=\"gpu\"} 1\n") != NULL);
    CHECK(strstr(out, "conduit_alerts_active{target=\"local\",type=\"containers\"} 1\n") != NULL);
    CHECK(strstr(out, "conduit_server_cpu_seconds_total{target=\"local\",mode=\"busy\"} 10\n"
                      "conduit_server_cpu_seconds_total{target=\"local\",mode=\"idle\"} 30\n")
          != NULL);
    CHECK(strstr(out, "conduit_server_cpu_utilization_ratio{target=\"local\"} 0.25\n") != NULL);
    CHECK(strstr(out, "conduit_server_load1") == NULL);     /* no samples: no family */
    free(out);
    json_decref(docs);

    docs = json_array();
    out = mon_prom_render(docs);
    CHECK(out && *out == '\0');
    free(out);
    json_decref(docs);
}

/* ---- target.json ---- */

struct tcase {
    const char *in;
    int want;
};

/* Target document in parses, and mon_target_json writes it as want. */
static void check_normalized(const char *in, const char *want)
{
    struct mon_target_cfg cfg;
    char *json;

    CHECK_INT(mon_target_parse(in, strlen(in), &cfg), 0);
    json = mon_target_json(&cfg);
    CHECK_STR(json, want);
    free(json);
}

static void test_target_parse(void)
{
    static const struct tcase t[] = {
        { "{\"ssh_host\":\"gpu-01.lab\",\"ssh_user\":\"ops\",\"ssh_key\":\"/k/id\"}", 0 },
        { "{\"ssh_host\":\"10.0.0.5\",\"ssh_port\":2222,\"ssh_user\":\"_svc-1\","
          "\"ssh_key\":\"/home/ops/.ssh/id_ed25519\",\"docker_socket\":\"/run/docker.sock\","
          "\"types\":[\"gpu\"]}\n", 0 },
        { "{\"ssh_host\":\"fd00::1\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\","
          "\"docker_socket\":null,\"types\":[\"containers\",\"server\"]}", 0 },
        { "{\n  \"ssh_host\": \"::1\",\n\t\"ssh_user\": \"a\",\r\n \"ssh_key\": \"/a/b+c@d\"\n}\n",
          0 },
        /* hostile hosts */
        { "{\"ssh_host\":\"a;reboot\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"$(id)\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"a`id`\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"a\\nb\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"a b\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"-oProxyCommand=x\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"fe80::1%eth0\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"1.2.3\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"256.1.1.1\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":7,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"a\\u0000b\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        /* ports */
        { "{\"ssh_host\":\"h\",\"ssh_port\":0,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_port\":65536,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}",
          -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_port\":65535,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", 0 },
        { "{\"ssh_host\":\"h\",\"ssh_port\":\"22\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}",
          -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_port\":22.0,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}",
          -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_port\":-22,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_port\":null,\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}",
          -EINVAL },
        /* users */
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"Root\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"1abc\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"-oops\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a;b\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\\nb\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"abcdefghijklmnopqrstuvwxyz012345\","
          "\"ssh_key\":\"/a\"}", 0 },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"abcdefghijklmnopqrstuvwxyz0123456\","
          "\"ssh_key\":\"/a\"}", -EINVAL },
        /* keys: traversal, relative, metacharacters, control bytes */
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/../etc/shadow\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/..\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/../k\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/./k\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp//k\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/k/\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"id_rsa\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"~/.ssh/id\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/k;rm -rf /\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/$(id)\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/k\\nx\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/k\\u0000/x\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/tmp/k\\u00e9\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":null}", -EINVAL },
        /* docker_socket */
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"docker_socket\":"
          "\"run/docker.sock\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"docker_socket\":"
          "\"/run/../docker.sock\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"docker_socket\":"
          "\"/run/d'ock\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"docker_socket\":"
          "\"/run/d ock\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"docker_socket\":false}",
          -EINVAL },
        /* types */
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":[]}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":[\"gpu\",\"gpu\"]}",
          -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":[\"disk\"]}",
          -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":\"gpu\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":[1]}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"types\":null}", -EINVAL },
        /* structure */
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\",\"extra\":1}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}",
          -EINVAL },
        { "{\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_key\":\"/a\"}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\"}", -EINVAL },
        { "{}", -EINVAL },
        { "[]", -EINVAL },
        { "", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"} {}", -EINVAL },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}\n\n", 0 },
        { "{\"ssh_host\":\"h\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"\x01}", -EINVAL },
        { "{\"ssh_host\":\"h\xc3\xa9\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}", -EINVAL },
    };
    struct mon_target_cfg cfg;
    char big[VAL_VALUE_MAX + 64];
    size_t n;

    for (size_t i = 0; i < NCASES(t); i++)
        CHECKF(mon_target_parse(t[i].in, strlen(t[i].in), &cfg) == t[i].want, "case %zu: %s",
               i, t[i].in);

    /* embedded NUL in the written bytes */
    CHECK_INT(mon_target_parse("{\"ssh_host\":\"h\"}\0x", 18, &cfg), -EINVAL);

    /* normalized form: every key, defaults filled, types in canonical order */
    check_normalized(t[2].in, "{\"ssh_host\":\"fd00::1\",\"ssh_port\":22,\"ssh_user\":\"a\","
                     "\"ssh_key\":\"/a\",\"docker_socket\":null,\"types\":[\"server\","
                     "\"containers\"]}");
    check_normalized(t[0].in, "{\"ssh_host\":\"gpu-01.lab\",\"ssh_port\":22,"
                     "\"ssh_user\":\"ops\",\"ssh_key\":\"/k/id\",\"docker_socket\":null,"
                     "\"types\":[\"server\",\"gpu\",\"containers\"]}");

    /* size: 4096 bytes (+ newline) is the limit */
    n = (size_t)snprintf(big, sizeof(big), "{\"ssh_host\":\"h\",\"ssh_user\":\"a\","
                         "\"ssh_key\":\"/a\"}");
    memset(big + n, ' ', VAL_VALUE_MAX - n);
    big[VAL_VALUE_MAX] = '\n';
    CHECK_INT(mon_target_parse(big, VAL_VALUE_MAX + 1, &cfg), 0);
    big[VAL_VALUE_MAX] = ' ';
    CHECK_INT(mon_target_parse(big, VAL_VALUE_MAX + 1, &cfg), -EFBIG);
    memset(big, 'a', sizeof(big));
    n = (size_t)snprintf(big, sizeof(big), "{\"ssh_host\":\"");
    memset(big + n, 'a', 300);
    snprintf(big + n + 300, sizeof(big) - n - 300, "\",\"ssh_user\":\"a\",\"ssh_key\":\"/a\"}");
    CHECK_INT(mon_target_parse(big, strlen(big), &cfg), -EINVAL);    /* host over 253 */
}

/* ---- local commands ---- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile int reaping;

/* What a supervisor thread elsewhere in the daemon may do: reap any child. */
static void *reaper(void *arg)
{
    (void)arg;
    while (reaping) {
        waitpid(-1, NULL, WNOHANG);
        usleep(1000);
    }
    return NULL;
}

static void test_exec(void)
{
    const char *echo[] = { "echo", "hello", "world", NULL };
    const char *fail[] = { "false", NULL };
    const char *none[] = { "conduit-no-such-program", NULL };
    const char *sleepy[] = { "sh", "-c", "sleep 30 & sleep 30", NULL };
    const char *yes[] = { "yes", NULL };
    char *out = NULL;
    size_t len = 0;
    int st = 0;
    double t0;

    CHECK_INT(mon_exec(echo, 2000, 1024, &out, &len, &st), 0);
    CHECK_STR(out ? out : "", "hello world\n");
    CHECK_INT(st, 0);
    free(out);
    CHECK_INT(mon_exec(fail, 2000, 1024, &out, &len, &st), 0);
    CHECK_INT(st, 1);
    free(out);
    CHECK_INT(mon_exec(none, 2000, 1024, &out, &len, &st), -ENOENT);
    CHECK(out == NULL);
    t0 = now_s();
    CHECK_INT(mon_exec(sleepy, 300, 1024, &out, &len, &st), -ETIMEDOUT);
    CHECK(now_s() - t0 < 2.0);
    CHECK_INT(mon_exec(yes, 2000, 4096, &out, &len, &st), -EFBIG);
    CHECK(out == NULL);

    /* another thread's waitpid(-1) takes the child: the output still counts, quickly */
    {
        const char *slow_echo[] = { "sh", "-c", "sleep 0.05; echo late", NULL };
        pthread_t tid;

        reaping = 1;
        pthread_create(&tid, NULL, reaper, NULL);
        for (int i = 0; i < 5; i++) {
            t0 = now_s();
            CHECK_INT(mon_exec(slow_echo, 3000, 1024, &out, &len, &st), 0);
            CHECK_STR(out ? out : "", "late\n");
            CHECK(st == 0 || st == -1);
            CHECK(now_s() - t0 < 1.0);
            free(out);
        }
        reaping = 0;
        pthread_join(tid, NULL);
    }
}

/* ---- the module over a state directory ---- */

static struct cfs_config cfg;

static void collect(const char *name, void *ctx)
{
    char *buf = ctx;
    size_t n = strlen(buf);

    snprintf(buf + n, 256 - n, "%s ", name);
}

static char *read_text(const char *dir, enum mon_file f)
{
    char *out = NULL;
    size_t len;

    return mon_read(dir, f, &out, &len) == 0 ? out : NULL;
}

/* How many readers run_readers starts at once. */
#define READERS 8

/* Run READERS threads of fn at once and collect what each returned into out. */
static void run_readers(void *(*fn)(void *), void *out[READERS])
{
    pthread_t tid[READERS];

    for (int i = 0; i < READERS; i++)
        pthread_create(&tid[i], NULL, fn, NULL);
    for (int i = 0; i < READERS; i++) {
        out[i] = NULL;
        pthread_join(tid[i], &out[i]);
    }
}

static void *read_gpu(void *arg)
{
    char *out = NULL;
    size_t len;

    (void)arg;
    mon_read("local", MON_FILE_GPU, &out, &len);
    return out;
}

/* Lines in path, -1 when it cannot be read. */
static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;

    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* A file with text at dir/name (mode 0600); the path into path. */
static void put_file(char *path, size_t len, const char *dir, const char *name)
{
    FILE *f;

    snprintf(path, len, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs("-----BEGIN OPENSSH PRIVATE KEY-----\n", f);
        fclose(f);
    }
    chmod(path, 0600);
}

/* Where a target's key may come from (state is the module's open state directory). */
static void test_key_rules(const char *state)
{
    char out_dir[] = "/tmp/conduit-mon-keys.XXXXXX", p[512], q[512], t[600], name[64];
    struct passwd *pw = getpwuid(getuid());
    long me = (long)getuid(), other = me + 4242;
    char *pem = NULL;
    size_t len = 0;

    if (tl_state_dir(out_dir) < 0) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(name, sizeof(name), "%s", pw ? pw->pw_name : "root");
    CHECK_INT(mon_keys_owner(name), me);
    CHECK_INT(mon_keys_owner("4242"), 4242);
    CHECK_INT(mon_keys_owner("no-such-user-here"), -1);
    CHECK_INT(mon_keys_owner(""), -1);

    /* the keys directory: any writer, even an unknown one; the content is read */
    put_file(p, sizeof(p), state, "monitoring/keys/k1");
    CHECK_INT(mon_keys_load(p, -1, &pem, &len), 0);
    CHECK(pem && len == 36 && strncmp(pem, "-----BEGIN", 10) == 0);
    free(pem);
    chmod(p, 0620);                                         /* group-writable: refused */
    CHECK_INT(mon_keys_load(p, -1, NULL, NULL), -EACCES);
    chmod(p, 0600);
    snprintf(q, sizeof(q), "%s/monitoring/keys/sub", state);
    mkdir(q, 0700);
    put_file(q, sizeof(q), state, "monitoring/keys/sub/k2"); /* not directly in it */
    CHECK_INT(mon_keys_load(q, -1, NULL, NULL), -EACCES);

    /* the state's own keys and anything else in the state directory: never */
    snprintf(q, sizeof(q), "%s/tls", state);
    mkdir(q, 0700);
    put_file(q, sizeof(q), state, "tls/ca.key");
    CHECK_INT(mon_keys_load(q, me, NULL, NULL), -EACCES);
    snprintf(t, sizeof(t), "%s/link", out_dir);             /* a symlink into tls/ */
    CHECK_INT(symlink(q, t), 0);
    CHECK_INT(mon_keys_load(t, me, NULL, NULL), -EACCES);
    snprintf(t, sizeof(t), "%s/hard", out_dir);             /* ca.key under another name */
    if (link(q, t) == 0)
        CHECK_INT(mon_keys_load(t, me, NULL, NULL), -EACCES);
    put_file(q, sizeof(q), state, "monitoring/ssh_key");
    CHECK_INT(mon_keys_load(q, me, NULL, NULL), -EACCES);
    snprintf(q, sizeof(q), "%s/audit.log", state);
    CHECK_INT(mon_keys_load(q, me, NULL, NULL), -EACCES);

    /* a file of the writer's own, outside the state directory */
    put_file(q, sizeof(q), out_dir, "mine");
    CHECK_INT(mon_keys_load(q, me, NULL, NULL), 0);
    CHECK_INT(mon_keys_load(q, other, NULL, NULL), -EACCES);   /* someone else's */
    CHECK_INT(mon_keys_load(q, -1, NULL, NULL), -EACCES);      /* an unknown writer */
    snprintf(t, sizeof(t), "%s/mine-link", out_dir);        /* a symlink to it: the file counts */
    CHECK_INT(symlink(q, t), 0);
    CHECK_INT(mon_keys_load(t, me, NULL, NULL), 0);
    snprintf(t, sizeof(t), "%s/missing", out_dir);          /* missing: as refused as forbidden */
    CHECK_INT(mon_keys_load(t, me, NULL, NULL), -EACCES);
    CHECK_INT(mon_keys_load("/dev/null", 0, NULL, NULL), -EINVAL);  /* owned, not a file */
    CHECK_INT(mon_keys_load(out_dir, me, NULL, NULL), -EINVAL);
    if (me != 0)
        CHECK_INT(mon_keys_load("/etc/shadow", me, NULL, NULL), -EACCES);

    /* through target.json: the writer's name decides */
    CHECK_INT(mon_target_add("keyed", "tester"), 0);
    snprintf(t, sizeof(t), "{\"ssh_host\":\"127.0.0.1\",\"ssh_user\":\"root\","
             "\"ssh_key\":\"%s\"}", q);
    CHECK_INT(mon_target_set("keyed", t, strlen(t), name), 0);
    CHECK_INT(mon_target_set("keyed", t, strlen(t), "no-such-user-here"), -EACCES);
    CHECK_INT(mon_target_set("keyed", t, strlen(t), "4242"), me == 4242 ? 0 : -EACCES);
    snprintf(t, sizeof(t), "{\"ssh_host\":\"127.0.0.1\",\"ssh_user\":\"root\","
             "\"ssh_key\":\"%s/tls/ca.key\"}", state);
    CHECK_INT(mon_target_set("keyed", t, strlen(t), name), -EACCES);
    CHECK_INT(mon_target_remove("keyed", "tester"), 0);
    CHECK_INT(tl_rm_rf(out_dir), 0);
}

static void *read_metrics(void *arg)
{
    char *out = NULL;
    size_t len;

    (void)arg;
    mon_metrics(&out, &len);
    return out;
}

/* metrics.prom with a target that accepts TCP and never says a word: concurrent readers share
 * one run, the target's three probes dial it once, and the run reports it failed. */
static void test_metrics_blackhole(const char *key)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    void *outs[READERS];
    char t[700];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n = 0, c;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        CHECK(!"listen");
        return;
    }
    CHECK_INT(mon_target_add("silent", "tester"), 0);
    snprintf(t, sizeof(t), "{\"ssh_host\":\"127.0.0.1\",\"ssh_port\":%u,\"ssh_user\":\"root\","
             "\"ssh_key\":\"%s\"}", (unsigned)ntohs(sa.sin_port), key);
    CHECK_INT(mon_target_set("silent", t, strlen(t), "tester"), 0);
    run_readers(read_metrics, outs);
    for (int i = 0; i < READERS; i++) {
        void *out = outs[i];

        CHECK(out && strstr(out, "conduit_probe_success{target=\"silent\",type=\"server\"} 0"));
        CHECK(out && strstr(out, "conduit_probe_success{target=\"silent\",type=\"gpu\"} 0"));
        CHECK(out && strstr(out, "conduit_probe_success{target=\"local\",type=\"server\"} 1"));
        free(out);
    }
    /* one login attempt for all readers and all three probes (queued connections count) */
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    while ((c = accept(lfd, NULL, NULL)) >= 0) {
        n++;
        close(c);
    }
    CHECK_INT(n, 1);
    close(lfd);
    CHECK_INT(mon_target_remove("silent", "tester"), 0);
}

static void test_module(void)
{
    char dir[] = "/tmp/conduit-mon-unit.XXXXXX", err[512], path[512], key[256];
    char names[256] = "", bin[256], count[256], oldpath[4096], *text;
    const char *envpath = getenv("PATH"), *mon;
    unsigned mask = 0;
    bool created;
    void *outs[READERS];
    FILE *f;
    json_t *doc;

    if (tl_state_dir(dir) < 0) {
        CHECK(!"mkdtemp");
        return;
    }
    tl_make_cfg(&cfg, dir, NULL);
    CHECK_INT(state_dir_init(dir, &created), 0);
    CHECK_INT(audit_open(dir, err, sizeof(err)), 0);
    CHECK_INT(reg_open(&cfg, err, sizeof(err)), 0);
    CHECK_INT(mon_open(cfg.state_dir, NULL, err, sizeof(err)), 0);

    /* a fake nvidia-smi that counts its runs and is slow enough for readers to pile up */
    snprintf(bin, sizeof(bin), "%s/bin", dir);
    snprintf(count, sizeof(count), "%s/runs", dir);
    mkdir(bin, 0700);
    snprintf(path, sizeof(path), "%s/nvidia-smi", bin);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "#!/bin/sh\necho \"$1\" >> %s\nsleep 0.3\n"
                   "case \"$1\" in --query-gpu=*) echo '0, GPU-u, Fake, 90, 1, 2, 3, 4';; esac\n",
                count);
        fclose(f);
    }
    chmod(path, 0700);
    snprintf(oldpath, sizeof(oldpath), "%s", envpath ? envpath : "/usr/bin:/bin");
    {
        char newpath[4400];

        snprintf(newpath, sizeof(newpath), "%s:%s", bin, oldpath);
        setenv("PATH", newpath, 1);
    }
    run_readers(read_gpu, outs);
    for (int i = 0; i < READERS; i++) {
        void *out = outs[i];

        CHECK(out && strstr(out, "\"temperature_c\":90"));
        free(out);
    }
    CHECK_INT(count_lines(count), 2);           /* one query-gpu, one query-compute-apps */
    text = read_text("local", MON_FILE_GPU);    /* within the TTL: shared */
    free(text);
    CHECK_INT(count_lines(count), 2);
    setenv("PATH", oldpath, 1);
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    text = NULL;
    {
        size_t len;

        CHECK_INT(state_read_file(path, &text, &len), 0);
        CHECK(text && strstr(text, "\"action\":\"monitor_alert\""));
        CHECK(text && strstr(strstr(text, "monitor_alert") + 1, "\"monitor_alert\"") == NULL);
        free(text);
    }

    /* local server.json */
    text = read_text("local", MON_FILE_SERVER);
    doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(json_is_null(json_object_get(doc, "error")));
    CHECK_STR(str(doc, "type"), "server");
    CHECK(num(json_object_get(json_object_get(doc, "metrics"), "memory"), "total_bytes") > 0);
    json_decref(doc);
    free(text);

    /* targets: the key lies in the keys directory, so any writer may name it */
    snprintf(key, sizeof(key), "%s/monitoring/keys/id_test", dir);
    f = fopen(key, "w");
    if (f) {
        fputs("not really a key\n", f);
        fclose(f);
    }
    chmod(key, 0600);
    test_key_rules(dir);
    test_metrics_blackhole(key);
    CHECK_INT(mon_target_add("gpu-server-01", "tester"), 0);
    CHECK_INT(mon_target_add("gpu-server-01", "tester"), -EEXIST);
    CHECK_INT(mon_target_add("local", "tester"), -EEXIST);
    CHECK_INT(mon_target_add("Bad_Name", "tester"), -EINVAL);
    CHECK_INT(mon_target_add("health.json", "tester"), -EINVAL);
    CHECK_INT(mon_dir_files("gpu-server-01", &mask), 0);
    CHECK_INT(mask, 1u << MON_FILE_TARGET);
    text = read_text("gpu-server-01", MON_FILE_TARGET);
    CHECK_STR(text ? text : "", "{}\n");
    free(text);
    CHECK(read_text("gpu-server-01", MON_FILE_GPU) == NULL);      /* absent until configured */
    {
        char good[600], missing[600];

        snprintf(good, sizeof(good), "{\"ssh_host\":\"127.0.0.1\",\"ssh_port\":1,"
                 "\"ssh_user\":\"root\",\"ssh_key\":\"%s\",\"types\":[\"gpu\"]}\n", key);
        snprintf(missing, sizeof(missing), "{\"ssh_host\":\"127.0.0.1\",\"ssh_user\":\"root\","
                 "\"ssh_key\":\"%s/nope\"}", dir);
        CHECK_INT(mon_target_set("gpu-server-01", missing, strlen(missing), "tester"), -EACCES);
        CHECK_INT(mon_target_set("gpu-server-01", dir, strlen(dir), "tester"), -EINVAL);
        CHECK_INT(mon_target_set("nope", good, strlen(good), "tester"), -ENOENT);
        CHECK_INT(mon_target_set("gpu-server-01", good, strlen(good), "tester"), 0);
        CHECK_INT(mon_target_set("gpu-server-01", good, strlen(good), "tester"), 0);
    }
    CHECK_INT(mon_dir_files("gpu-server-01", &mask), 0);
    CHECK_INT(mask, (1u << MON_FILE_TARGET) | (1u << MON_FILE_GPU));
    text = read_text("gpu-server-01", MON_FILE_GPU);        /* closed port: an error document */
    doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(strstr(str(doc, "error"), "refused") != NULL);
    CHECK(json_is_null(json_object_get(doc, "metrics")));
    json_decref(doc);
    free(text);

    /* persistence */
    mon_close();
    CHECK_INT(mon_open(cfg.state_dir, NULL, err, sizeof(err)), 0);
    text = read_text("gpu-server-01", MON_FILE_TARGET);
    CHECK(text && strstr(text, "\"ssh_port\":1,") && strstr(text, "\"types\":[\"gpu\"]"));
    free(text);
    mon_dirs(collect, names);
    CHECK_STR(names, "local gpu-server-01 ");

    /* a service with a monitoring attribute gets a directory; names may not collide */
    CHECK_INT(reg_register("web", "tester"), 0);
    mon = "{\"type\":\"container\",\"container_name\":\"w1\"}";
    CHECK_INT(reg_set("web", REG_MONITORING, mon, strlen(mon), "tester"), 0);
    CHECK_INT(reg_register("gpubox", "tester"), 0);
    mon = "{\"type\":\"gpu\",\"ssh_host\":\"10.0.0.9\"}";
    CHECK_INT(reg_set("gpubox", REG_MONITORING, mon, strlen(mon), "tester"), 0);
    CHECK_INT(reg_register("plain", "tester"), 0);
    names[0] = '\0';
    mon_dirs(collect, names);
    CHECK_STR(names, "local gpu-server-01 web gpubox ");
    CHECK_INT(mon_dir_files("web", &mask), 0);
    CHECK_INT(mask, 1u << MON_FILE_CONTAINER);
    CHECK_INT(mon_dir_files("gpubox", &mask), 0);
    CHECK_INT(mask, (1u << MON_FILE_GPU) | (1u << MON_FILE_SERVER));
    CHECK_INT(mon_dir_files("plain", &mask), -ENOENT);
    CHECK_INT(mon_target_add("web", "tester"), -EEXIST);
    CHECK_INT(mon_target_add("plain", "tester"), 0);
    CHECK_INT(mon_target_remove("web", "tester"), -EPERM);
    CHECK_INT(mon_target_remove("local", "tester"), -EPERM);
    CHECK_INT(mon_target_remove("nope", "tester"), -ENOENT);
    CHECK_INT(mon_target_remove("plain", "tester"), 0);
    CHECK_INT(mon_target_remove("gpu-server-01", "tester"), 0);
    CHECK_INT(mon_dir_files("gpu-server-01", &mask), -ENOENT);
    CHECK(read_text("gpu-server-01", MON_FILE_TARGET) == NULL);

    /* a corrupt targets.json refuses the load and stays, with a copy aside */
    mon_close();
    snprintf(path, sizeof(path), "%s/monitoring/targets.json", dir);
    CHECK_INT(state_write_atomic(path, "{\"version\":1,\"targets\":[{\"name\":\"A\"}]}", 38,
                                 0600), 0);
    CHECK_INT(mon_open(cfg.state_dir, NULL, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "corrupt") != NULL);
    CHECK_INT(access(path, F_OK), 0);
    {
        /* the copy is checked: when it cannot be written the reason says so and names no copy
         * (a directory holds every name it could take in the next 30 s) */
        char aside[PATH_MAX + 64], when[32];
        time_t now = time(NULL);
        struct tm tm;

        for (time_t t = now; t < now + 30; t++) {
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            snprintf(aside, sizeof(aside), "%s.corrupt-%s", path, when);
            rmdir(aside);
            unlink(aside);
            mkdir(aside, 0700);
        }
        CHECK_INT(mon_open(cfg.state_dir, NULL, err, sizeof(err)), -EINVAL);
        CHECKF(strstr(err, "Copy kept at (none: copy failed)") != NULL, "%s", err);
    }

    reg_close();
    audit_close();
    CHECK_INT(tl_rm_rf(dir), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);      /* as fs/main.c does for the daemon */
    test_nvsmi();
    test_nvsmi_recorded();
    test_nvsmi_h200();
    test_options();
    test_cpu_window();
    test_proc();
    test_docker();
    test_alerts();
    test_prom();
    test_target_parse();
    test_exec();
    test_module();
    return tl_finish();
}
