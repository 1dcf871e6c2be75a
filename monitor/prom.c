/* prom.c: probe documents as Prometheus text exposition (format 0.0.4): one family per metric
 * with HELP and TYPE, base units (bytes, seconds, celsius, watts, ratios 0-1), _total counters,
 * labels target, type, gpu, uuid, container; and the health gauges of monitor/health.json,
 * labelled service (domain, mode) and upstream. Pure. */
#include "monitor/monitor.h"
#include "monitor/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum scope { SC_DOC, SC_SERVER, SC_GPU, SC_CONTAINER };
enum source { SRC_NUM, SRC_SUCCESS, SRC_ALERTS, SRC_UP, SRC_HEALTHY, SRC_NPROCS };

/* One row: a family (rows with the same name in a row form one family), where its samples come
 * from (a number at metrics[k1][k2], scaled), and one optional fixed label. */
struct family {
    const char *name, *type, *help;
    enum scope scope;
    enum source src;
    const char *k1, *k2;
    double scale;
    const char *label;
};

static const struct family families[] = {
    { "conduit_probe_success", "gauge", "1 when the last probe of this target and type worked",
      SC_DOC, SRC_SUCCESS, NULL, NULL, 1, NULL },
    { "conduit_alerts_active", "gauge", "Alerts the last probe raised",
      SC_DOC, SRC_ALERTS, NULL, NULL, 1, NULL },
    { "conduit_server_uptime_seconds", "gauge", "Time since boot",
      SC_SERVER, SRC_NUM, "uptime_s", NULL, 1, NULL },
    { "conduit_server_load1", "gauge", "Load average over 1 minute",
      SC_SERVER, SRC_NUM, "load", "1m", 1, NULL },
    { "conduit_server_load5", "gauge", "Load average over 5 minutes",
      SC_SERVER, SRC_NUM, "load", "5m", 1, NULL },
    { "conduit_server_load15", "gauge", "Load average over 15 minutes",
      SC_SERVER, SRC_NUM, "load", "15m", 1, NULL },
    { "conduit_server_cpus", "gauge", "Online CPUs",
      SC_SERVER, SRC_NUM, "cpu", "count", 1, NULL },
    { "conduit_server_cpu_utilization_ratio", "gauge",
      "Busy share of all CPUs since the previous probe (0-1)",
      SC_SERVER, SRC_NUM, "cpu", "usage_pct", 0.01, NULL },
    { "conduit_server_cpu_seconds_total", "counter", "CPU time since boot, by mode",
      SC_SERVER, SRC_NUM, "cpu", "busy_seconds", 1, "mode=\"busy\"" },
    { "conduit_server_cpu_seconds_total", "counter", "CPU time since boot, by mode",
      SC_SERVER, SRC_NUM, "cpu", "idle_seconds", 1, "mode=\"idle\"" },
    { "conduit_server_memory_total_bytes", "gauge", "Physical memory",
      SC_SERVER, SRC_NUM, "memory", "total_bytes", 1, NULL },
    { "conduit_server_memory_available_bytes", "gauge", "Memory available to new work",
      SC_SERVER, SRC_NUM, "memory", "available_bytes", 1, NULL },
    { "conduit_server_memory_used_bytes", "gauge", "Memory in use (total less available)",
      SC_SERVER, SRC_NUM, "memory", "used_bytes", 1, NULL },
    { "conduit_server_swap_total_bytes", "gauge", "Swap space",
      SC_SERVER, SRC_NUM, "memory", "swap_total_bytes", 1, NULL },
    { "conduit_server_swap_used_bytes", "gauge", "Swap space in use",
      SC_SERVER, SRC_NUM, "memory", "swap_used_bytes", 1, NULL },
    { "conduit_server_disk_total_bytes", "gauge", "Size of the root file system",
      SC_SERVER, SRC_NUM, "disk", "total_bytes", 1, "mountpoint=\"/\"" },
    { "conduit_server_disk_available_bytes", "gauge", "Root file system space for users",
      SC_SERVER, SRC_NUM, "disk", "available_bytes", 1, "mountpoint=\"/\"" },
    { "conduit_server_disk_used_bytes", "gauge", "Root file system space in use",
      SC_SERVER, SRC_NUM, "disk", "used_bytes", 1, "mountpoint=\"/\"" },
    { "conduit_gpu_temperature_celsius", "gauge", "GPU core temperature",
      SC_GPU, SRC_NUM, "temperature_c", NULL, 1, NULL },
    { "conduit_gpu_utilization_ratio", "gauge", "GPU busy share (0-1)",
      SC_GPU, SRC_NUM, "utilization_pct", NULL, 0.01, NULL },
    { "conduit_gpu_memory_used_bytes", "gauge", "GPU memory in use",
      SC_GPU, SRC_NUM, "vram_used_mb", NULL, 1048576, NULL },
    { "conduit_gpu_memory_total_bytes", "gauge", "GPU memory",
      SC_GPU, SRC_NUM, "vram_total_mb", NULL, 1048576, NULL },
    { "conduit_gpu_power_watts", "gauge", "GPU power draw",
      SC_GPU, SRC_NUM, "power_w", NULL, 1, NULL },
    { "conduit_gpu_processes", "gauge", "Compute processes on the GPU",
      SC_GPU, SRC_NPROCS, NULL, NULL, 1, NULL },
    { "conduit_container_up", "gauge", "1 when the container is running",
      SC_CONTAINER, SRC_UP, NULL, NULL, 1, NULL },
    { "conduit_container_healthy", "gauge", "1 healthy, 0 unhealthy (containers with a check)",
      SC_CONTAINER, SRC_HEALTHY, NULL, NULL, 1, NULL },
    { "conduit_container_restarts_total", "counter", "Restarts of the container",
      SC_CONTAINER, SRC_NUM, "restart_count", NULL, 1, NULL },
    { "conduit_container_cpu_seconds_total", "counter", "CPU time the container used",
      SC_CONTAINER, SRC_NUM, "cpu_seconds", NULL, 1, NULL },
    { "conduit_container_cpu_utilization_ratio", "gauge",
      "CPU use in CPUs (1 = one CPU busy), over the last sample",
      SC_CONTAINER, SRC_NUM, "cpu_pct", NULL, 0.01, NULL },
    { "conduit_container_memory_used_bytes", "gauge", "Memory in use, less inactive cache",
      SC_CONTAINER, SRC_NUM, "mem_used_bytes", NULL, 1, NULL },
    { "conduit_container_memory_limit_bytes", "gauge", "Memory limit of the container",
      SC_CONTAINER, SRC_NUM, "mem_limit_bytes", NULL, 1, NULL },
    { "conduit_container_network_receive_bytes_total", "counter", "Bytes received",
      SC_CONTAINER, SRC_NUM, "net_rx_bytes", NULL, 1, NULL },
    { "conduit_container_network_transmit_bytes_total", "counter", "Bytes sent",
      SC_CONTAINER, SRC_NUM, "net_tx_bytes", NULL, 1, NULL },
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

/* A label value with \, " and newline escaped. */
static void label(struct mon_buf *b, const char *key, const char *val, bool comma)
{
    mon_buf_printf(b, "%s%s=\"", comma ? "," : "", key);
    for (const char *c = val ? val : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            mon_buf_printf(b, "\\%c", *c);
        else if (*c == '\n')
            mon_buf_add(b, "\\n", 2);
        else
            mon_buf_add(b, c, 1);
    }
    mon_buf_add(b, "\"", 1);
}

static void value(struct mon_buf *b, double v)
{
    if (v > -9.0e15 && v < 9.0e15 && (double)(long long)v == v)
        mon_buf_printf(b, " %lld\n", (long long)v);
    else
        mon_buf_printf(b, " %.15g\n", v);
}

/* The sample value of row f for one subject (a doc, its metrics, a GPU or a container);
 * false when it has none. */
static bool sample(const struct family *f, const json_t *doc, const json_t *subj, double *v)
{
    const json_t *j;
    const char *s;

    switch (f->src) {
    case SRC_SUCCESS:
        *v = json_is_null(json_object_get(doc, "error")) ? 1 : 0;
        return true;
    case SRC_ALERTS:
        *v = (double)json_array_size(json_object_get(doc, "alerts"));
        return true;
    case SRC_UP:
        s = json_string_value(json_object_get(subj, "state"));
        *v = s && strcmp(s, "running") == 0 ? 1 : 0;
        return true;
    case SRC_HEALTHY:
        s = json_string_value(json_object_get(subj, "health"));
        if (!s || (strcmp(s, "healthy") != 0 && strcmp(s, "unhealthy") != 0))
            return false;
        *v = strcmp(s, "healthy") == 0 ? 1 : 0;
        return true;
    case SRC_NPROCS:
        j = json_object_get(subj, "processes");
        if (!json_is_array(j))
            return false;
        *v = (double)json_array_size(j);
        return true;
    case SRC_NUM:
        j = json_object_get(subj, f->k1);
        if (f->k2)
            j = json_object_get(j, f->k2);
        if (!json_is_number(j))
            return false;
        *v = json_number_value(j) * f->scale;
        return true;
    }
    return false;
}

/* The labels after target for a GPU or container subject. */
static void subject_labels(struct mon_buf *b, enum scope sc, const json_t *subj)
{
    char idx[24];
    const json_t *i = json_object_get(subj, "index");

    if (sc == SC_GPU) {
        if (json_is_integer(i))
            snprintf(idx, sizeof(idx), "%lld", (long long)json_integer_value(i));
        else
            snprintf(idx, sizeof(idx), "unknown");
        label(b, "gpu", idx, true);
        label(b, "uuid", json_string_value(json_object_get(subj, "uuid")), true);
    } else if (sc == SC_CONTAINER) {
        label(b, "container", json_string_value(json_object_get(subj, "name")), true);
    }
}

static void emit(struct mon_buf *b, const struct family *f, const json_t *doc,
                 const json_t *subj, enum scope sc)
{
    double v;

    if (!sample(f, doc, subj, &v))
        return;
    mon_buf_printf(b, "%s{", f->name);
    label(b, "target", json_string_value(json_object_get(doc, "target")), false);
    if (sc == SC_DOC)
        label(b, "type", json_string_value(json_object_get(doc, "type")), true);
    subject_labels(b, sc, subj);
    if (f->label)
        mon_buf_printf(b, ",%s", f->label);
    mon_buf_add(b, "}", 1);
    value(b, v);
}

/* The samples of row f over every document. */
static void rows(struct mon_buf *b, const struct family *f, const json_t *docs)
{
    size_t i, k;
    const json_t *doc, *m, *sub;

    json_array_foreach(docs, i, doc) {
        const char *type = json_string_value(json_object_get(doc, "type"));

        m = json_object_get(doc, "metrics");
        if (!type)
            continue;
        if (f->scope == SC_DOC) {
            emit(b, f, doc, NULL, SC_DOC);
        } else if (f->scope == SC_SERVER && strcmp(type, "server") == 0) {
            if (json_is_object(m))
                emit(b, f, doc, m, SC_SERVER);
        } else if (f->scope == SC_GPU && strcmp(type, "gpu") == 0) {
            json_array_foreach(json_object_get(m, "gpus"), k, sub)
                emit(b, f, doc, sub, SC_GPU);
        } else if (f->scope == SC_CONTAINER && strcmp(type, "containers") == 0) {
            json_array_foreach(json_object_get(m, "containers"), k, sub)
                emit(b, f, doc, sub, SC_CONTAINER);
        } else if (f->scope == SC_CONTAINER && strcmp(type, "container") == 0) {
            if (json_is_object(m))
                emit(b, f, doc, m, SC_CONTAINER);
        }
    }
}

/* The Prometheus text of the documents, malloc'd (NULL without memory); a family without
 * samples is left out. */
char *mon_prom_render(const json_t *docs)
{
    struct mon_buf out = {0}, samples = {0};

    mon_buf_add(&out, "", 0);
    for (size_t i = 0; i < NFAMILIES; i++) {
        const struct family *f = &families[i];

        if (i > 0 && strcmp(families[i - 1].name, f->name) == 0)
            continue;
        samples.len = 0;
        for (size_t j = i; j < NFAMILIES && strcmp(families[j].name, f->name) == 0; j++)
            rows(&samples, &families[j], docs);
        if (samples.len == 0 || samples.failed)
            continue;
        mon_buf_printf(&out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                       f->type);
        mon_buf_add(&out, samples.data, samples.len);
    }
    free(samples.data);
    if (out.failed || samples.failed) {
        free(out.data);
        return NULL;
    }
    return out.data;
}

/* ---- health gauges (monitor/health.json, core/health.h) ---- */

enum hsrc { HS_HEALTHY, HS_IN_ROTATION, HS_FAILURES, HS_LATENCY, HS_STATUS, HS_IN_COUNT };

/* One health family: per service (upstream false) or per upstream of a service. */
struct hfamily {
    const char *name, *help;
    bool upstream;
    enum hsrc src;
};

static const struct hfamily hfamilies[] = {
    { "conduit_service_healthy", "1 when an upstream of the service answers its health check, "
      "0 when none is in the rotation (no sample before the first verdict)", false, HS_HEALTHY },
    { "conduit_service_upstreams_in_rotation", "Upstreams of the service in the rotation",
      false, HS_IN_COUNT },
    { "conduit_upstream_healthy", "1 when the upstream answered its last health check, 0 when "
      "it failed --health-threshold in a row (no sample before the first verdict)", true,
      HS_HEALTHY },
    { "conduit_upstream_in_rotation", "1 when the upstream takes traffic (not unhealthy)", true,
      HS_IN_ROTATION },
    { "conduit_upstream_consecutive_failures", "Failed health checks in a row", true,
      HS_FAILURES },
    { "conduit_upstream_health_latency_seconds", "Duration of the last health check", true,
      HS_LATENCY },
    { "conduit_upstream_health_status", "HTTP status of the last health check", true,
      HS_STATUS },
};
#define NHFAMILIES (sizeof(hfamilies) / sizeof(hfamilies[0]))

/* The value of family f for one health.json service or upstream entry; false for none. */
static bool hsample(const struct hfamily *f, const json_t *e, double *v)
{
    const char *s = json_string_value(json_object_get(e, "state"));
    const json_t *j;

    switch (f->src) {
    case HS_HEALTHY:
        if (!s || (strcmp(s, "healthy") != 0 && strcmp(s, "unhealthy") != 0))
            return false;
        *v = strcmp(s, "healthy") == 0 ? 1 : 0;
        return true;
    case HS_IN_ROTATION:
        j = json_object_get(e, "in_rotation");
        *v = json_is_true(j) ? 1 : 0;
        return json_is_boolean(j);
    case HS_FAILURES:
        j = json_object_get(e, "consecutive_failures");
        break;
    case HS_LATENCY:
        j = json_object_get(e, "last_latency_ms");
        if (!json_is_number(j))
            return false;
        *v = json_number_value(j) / 1000.0;
        return true;
    case HS_STATUS:
        j = json_object_get(e, "last_status");
        break;
    case HS_IN_COUNT:
        j = json_object_get(e, "upstreams_in_rotation");
        break;
    default:
        return false;
    }
    if (!json_is_number(j))
        return false;
    *v = json_number_value(j);
    return true;
}

/* The samples of f over every service of the health document. */
static void hrows(struct mon_buf *b, const struct hfamily *f, const json_t *health)
{
    size_t i, k;
    const json_t *svc, *up;
    double v;

    json_array_foreach(json_object_get(health, "services"), i, svc) {
        const char *name = json_string_value(json_object_get(svc, "name"));

        if (!name)
            continue;
        if (!f->upstream) {
            if (!hsample(f, svc, &v))
                continue;
            mon_buf_printf(b, "%s{", f->name);
            label(b, "service", name, false);
            label(b, "domain", json_string_value(json_object_get(svc, "domain")), true);
            label(b, "mode", json_string_value(json_object_get(svc, "mode")), true);
            mon_buf_add(b, "}", 1);
            value(b, v);
            continue;
        }
        json_array_foreach(json_object_get(svc, "upstreams"), k, up) {
            if (!hsample(f, up, &v))
                continue;
            mon_buf_printf(b, "%s{", f->name);
            label(b, "service", name, false);
            label(b, "upstream", json_string_value(json_object_get(up, "upstream")), true);
            mon_buf_add(b, "}", 1);
            value(b, v);
        }
    }
}

/* See monitor.h. */
int mon_metrics_health(char **text, size_t *len, const char *health)
{
    struct mon_buf out = {0}, samples = {0};
    json_t *doc = health ? json_loads(health, 0, NULL) : NULL;
    int rc = -ENOMEM;

    mon_buf_add(&out, *text ? *text : "", *text ? *len : 0);
    for (size_t i = 0; doc && i < NHFAMILIES; i++) {
        const struct hfamily *f = &hfamilies[i];

        samples.len = 0;
        hrows(&samples, f, doc);
        if (samples.len == 0 || samples.failed)
            continue;
        mon_buf_printf(&out, "# HELP %s %s\n# TYPE %s gauge\n", f->name, f->help, f->name);
        mon_buf_add(&out, samples.data, samples.len);
    }
    json_decref(doc);
    if (!out.failed && !samples.failed) {
        free(*text);
        *text = out.data;
        *len = out.len;
        out.data = NULL;
        rc = 0;
    }
    free(out.data);
    free(samples.data);
    return rc;
}
