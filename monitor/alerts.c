/* alerts.c: the alert rules over a probe's metrics, with their thresholds (struct mon_options;
 * defaults in probe.h): hot or full GPUs, full memory and disk, containers not running or
 * unhealthy. Pure. */
#include "monitor/probe.h"

#include <stdio.h>
#include <string.h>

/* v as an alert's value or threshold. Alerts are sealed in monitor_alert audit entries, so the
 * number stays inside the portable subset of audit details (docs/filesystem.md): rounded to two
 * decimals, an integer when integral (never 2.0 or -0.0), otherwise a real of at least 0.01
 * that both CPS references write alike; null for a magnitude of 2^53 or more, which neither an
 * integer nor a real holds portably (the message keeps the number). */
static json_t *alert_num(double v)
{
    v = mon_round2(v);
    if (!(v < 9007199254740992.0 && v > -9007199254740992.0))
        return json_null();
    if (v == (double)(long long)v)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* Append {"name","severity","subject","message","value","threshold"}; value is stolen. */
static void add(json_t *arr, const char *name, const char *severity, const char *subject,
                const char *message, json_t *value, double threshold)
{
    json_t *a = json_object();

    if (!a) {
        json_decref(value);
        return;
    }
    json_object_set_new(a, "name", json_string(name));
    json_object_set_new(a, "severity", json_string(severity));
    json_object_set_new(a, "subject", json_string(subject));
    json_object_set_new(a, "message", json_string(message));
    json_object_set_new(a, "value", value ? value : json_null());
    json_object_set_new(a, "threshold", threshold >= 0 ? alert_num(threshold) : json_null());
    json_array_append_new(arr, a);
}

static double num(const json_t *obj, const char *key)
{
    const json_t *j = json_object_get(obj, key);

    return json_is_number(j) ? json_number_value(j) : -1;
}

static void gpu_alerts(json_t *arr, const json_t *gpus, double max_temp, double max_vram)
{
    size_t i;
    json_t *g;
    char subject[48], msg[160];

    json_array_foreach(gpus, i, g) {
        double temp = num(g, "temperature_c"), used = num(g, "vram_used_mb");
        double total = num(g, "vram_total_mb");

        if (json_is_integer(json_object_get(g, "index")))
            snprintf(subject, sizeof(subject), "gpu%lld",
                     (long long)json_integer_value(json_object_get(g, "index")));
        else
            snprintf(subject, sizeof(subject), "gpu#%zu", i);
        if (temp >= 0 && temp >= max_temp) {
            snprintf(msg, sizeof(msg), "%s temperature %.0f C >= %g C", subject, temp,
                     max_temp);
            add(arr, "gpu_temperature_high", "critical", subject, msg, alert_num(temp),
                max_temp);
        }
        if (used >= 0 && total > 0 && 100.0 * used / total >= max_vram) {
            double pct = mon_round2(100.0 * used / total);

            snprintf(msg, sizeof(msg), "%s memory %.1f %% used >= %g %%", subject, pct,
                     max_vram);
            add(arr, "gpu_memory_high", "warning", subject, msg, alert_num(pct), max_vram);
        }
    }
}

/* One threshold on metrics.<section>.used_pct. */
static void pct_alert(json_t *arr, const json_t *metrics, const char *section,
                      const char *name, double threshold)
{
    double pct = num(json_object_get(metrics, section), "used_pct");
    char msg[160];

    if (pct < threshold)
        return;
    snprintf(msg, sizeof(msg), "%s %.1f %% used >= %g %%", section, pct, threshold);
    add(arr, name, "warning", section, msg, alert_num(pct), threshold);
}

static void container_alerts(json_t *arr, const json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *state = json_string_value(json_object_get(c, "state"));
    const char *health = json_string_value(json_object_get(c, "health"));
    char subject[160], msg[256];

    snprintf(subject, sizeof(subject), "%s", name ? name : "?");
    if (state && strcmp(state, "running") != 0) {
        snprintf(msg, sizeof(msg), "container %s is %s, not running", subject, state);
        add(arr, "container_not_running", "critical", subject, msg, json_string(state), -1);
    }
    if (health && strcmp(health, "unhealthy") == 0) {
        snprintf(msg, sizeof(msg), "container %s is unhealthy", subject);
        add(arr, "container_unhealthy", "critical", subject, msg, json_string(health), -1);
    }
}

/* The alerts of type's metrics by o's thresholds (NULL: the defaults); an empty array when
 * none. */
json_t *mon_alerts_at(const char *type, const json_t *metrics, const struct mon_options *o)
{
    struct mon_options dflt;
    json_t *arr = json_array(), *c;
    size_t i;

    if (!arr || !type || !json_is_object(metrics))
        return arr;
    if (!o) {
        mon_options_default(&dflt);
        o = &dflt;
    }
    if (strcmp(type, "gpu") == 0) {
        gpu_alerts(arr, json_object_get(metrics, "gpus"), o->alert_gpu_temp_c,
                   o->alert_gpu_vram_pct);
    } else if (strcmp(type, "server") == 0) {
        pct_alert(arr, metrics, "memory", "memory_high", o->alert_mem_pct);
        pct_alert(arr, metrics, "disk", "disk_high", o->alert_disk_pct);
    } else if (strcmp(type, "containers") == 0) {
        json_array_foreach(json_object_get(metrics, "containers"), i, c)
            container_alerts(arr, c);
    } else if (strcmp(type, "container") == 0) {
        container_alerts(arr, metrics);
    }
    return arr;
}

/* The alerts of type's metrics by the default thresholds. */
json_t *mon_alerts(const char *type, const json_t *metrics)
{
    return mon_alerts_at(type, metrics, NULL);
}
