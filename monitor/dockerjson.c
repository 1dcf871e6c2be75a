/* dockerjson.c: parsers for the Docker Engine API answers the container probes read
 * (/containers/json, /containers/{id}/json, /containers/{id}/stats): one flat report per
 * container. Fields the engine leaves out are null. */
#include "monitor/probe.h"

#include <stdarg.h>
#include <string.h>

/* The string at obj.key, or NULL. */
static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* s without a leading '/', as a JSON string, or null. */
static json_t *name_json(const char *s)
{
    json_t *j;

    if (!s)
        return json_null();
    if (*s == '/')
        s++;
    j = *s ? json_string(s) : NULL;
    return j ? j : json_null();
}

static json_t *str_or_null(const char *s)
{
    json_t *j = s && *s ? json_string(s) : NULL;

    return j ? j : json_null();
}

/* The non-negative number at a path of keys (NULL-terminated), or -1. */
static double num_path(const json_t *j, ...)
{
    va_list ap;
    const char *key;
    double v;

    va_start(ap, j);
    while (j && (key = va_arg(ap, const char *)) != NULL)
        j = json_object_get(j, key);
    va_end(ap);
    if (!json_is_number(j))
        return -1;
    v = json_number_value(j);
    return v >= 0 ? v : -1;
}

static json_t *num_or_null(double v)
{
    return v >= 0 ? mon_json_num(v) : json_null();
}

/* The container list as [{"id","name","image","state","status"}] (entries without an Id
 * skipped), or NULL when body is not a JSON array. */
json_t *mon_docker_list(const char *body, size_t len)
{
    json_t *root, *out, *c;
    size_t i;

    if (!body)
        return NULL;
    root = json_loadb(body, len, 0, NULL);
    if (!json_is_array(root)) {
        json_decref(root);
        return NULL;
    }
    out = json_array();
    json_array_foreach(root, i, c) {
        json_t *e;
        const char *id = str_at(c, "Id");

        if (!out || json_array_size(out) >= MON_CONTAINERS_MAX)
            break;
        if (!id || !*id)
            continue;
        e = json_object();
        if (!e)
            break;
        json_object_set_new(e, "id", json_string(id));
        json_object_set_new(e, "name",
                            name_json(json_string_value(json_array_get(
                                json_object_get(c, "Names"), 0))));
        json_object_set_new(e, "image", str_or_null(str_at(c, "Image")));
        json_object_set_new(e, "state", str_or_null(str_at(c, "State")));
        json_object_set_new(e, "status", str_or_null(str_at(c, "Status")));
        json_array_append_new(out, e);
    }
    json_decref(root);
    return out;
}

/* The CPU usage in percent of one CPU (Docker's formula), from the stats' own previous sample
 * or from ours; records this sample in next. -1 when unknown. */
static double cpu_pct(const json_t *st, const char *id, const json_t *prev, json_t *next)
{
    double total = num_path(st, "cpu_stats", "cpu_usage", "total_usage", NULL);
    double sys = num_path(st, "cpu_stats", "system_cpu_usage", NULL);
    double ptotal = num_path(st, "precpu_stats", "cpu_usage", "total_usage", NULL);
    double psys = num_path(st, "precpu_stats", "system_cpu_usage", NULL);
    double ncpu = num_path(st, "cpu_stats", "online_cpus", NULL);
    const json_t *mine = prev && id ? json_object_get(prev, id) : NULL;

    if (ncpu <= 0)
        ncpu = (double)json_array_size(json_object_get(json_object_get(
            json_object_get(st, "cpu_stats"), "cpu_usage"), "percpu_usage"));
    if (ncpu <= 0)
        ncpu = 1;
    if (total < 0 || sys < 0)
        return -1;
    if (next && id) {
        json_t *pair = json_pack("[f,f]", total, sys);

        if (pair)
            json_object_set_new(next, id, pair);
    }
    if (!(psys > 0 && ptotal >= 0 && sys > psys) && json_is_array(mine)) {
        ptotal = json_number_value(json_array_get(mine, 0));
        psys = json_number_value(json_array_get(mine, 1));
    }
    if (!(psys > 0 && sys > psys && total >= ptotal && ptotal >= 0))
        return -1;
    return (total - ptotal) / (sys - psys) * ncpu * 100.0;
}

/* Memory in use as `docker stats` shows it: usage less the inactive page cache. */
static double mem_used(const json_t *st)
{
    double usage = num_path(st, "memory_stats", "usage", NULL);
    double cache = num_path(st, "memory_stats", "stats", "inactive_file", NULL);

    if (cache < 0)
        cache = num_path(st, "memory_stats", "stats", "total_inactive_file", NULL);
    if (cache < 0)
        cache = num_path(st, "memory_stats", "stats", "cache", NULL);
    if (usage < 0)
        return -1;
    return cache >= 0 && cache <= usage ? usage - cache : usage;
}

/* Sum of key over every network of the stats, or -1 without networks. */
static double net_sum(const json_t *st, const char *key)
{
    const json_t *nets = json_object_get(st, "networks");
    const char *name;
    json_t *n;
    double sum = -1;

    if (!json_is_object(nets))
        return -1;
    json_object_foreach((json_t *)nets, name, n) {
        double v = num_path(n, key, NULL);

        (void)name;
        if (v >= 0)
            sum = (sum < 0 ? 0 : sum) + v;
    }
    return sum;
}

static void set_stats(json_t *c, const json_t *st, const char *id, const json_t *prev,
                      json_t *next)
{
    double pct = st ? cpu_pct(st, id, prev, next) : -1;
    double total = num_path(st, "cpu_stats", "cpu_usage", "total_usage", NULL);
    double used = st ? mem_used(st) : -1;
    double limit = num_path(st, "memory_stats", "limit", NULL);

    json_object_set_new(c, "cpu_pct", num_or_null(pct >= 0 ? mon_round2(pct) : -1));
    json_object_set_new(c, "cpu_seconds", num_or_null(total >= 0 ? total / 1e9 : -1));
    json_object_set_new(c, "mem_used_bytes", num_or_null(used));
    json_object_set_new(c, "mem_limit_bytes", num_or_null(limit > 0 ? limit : -1));
    json_object_set_new(c, "mem_pct", num_or_null(used >= 0 && limit > 0 ?
                                                  mon_round2(100.0 * used / limit) : -1));
    json_object_set_new(c, "pids", num_or_null(num_path(st, "pids_stats", "current", NULL)));
    json_object_set_new(c, "net_rx_bytes", num_or_null(st ? net_sum(st, "rx_bytes") : -1));
    json_object_set_new(c, "net_tx_bytes", num_or_null(st ? net_sum(st, "tx_bytes") : -1));
}

/* One flat container report from whichever answers are given; NULL when none names a
 * container. */
json_t *mon_docker_container(const json_t *item, const char *inspect, size_t ilen,
                             const char *stats, size_t slen, const json_t *prev, json_t *next)
{
    json_t *in = inspect ? json_loadb(inspect, ilen, 0, NULL) : NULL;
    json_t *st = stats ? json_loadb(stats, slen, 0, NULL) : NULL;
    const json_t *state, *health;
    const char *id, *name, *image, *status;
    json_t *c = NULL;
    double restarts, exit_code;

    if (!json_is_object(in)) {
        json_decref(in);
        in = NULL;
    }
    if (!json_is_object(st)) {
        json_decref(st);
        st = NULL;
    }
    state = json_object_get(in, "State");
    health = json_object_get(state, "Health");
    id = item ? str_at(item, "id") : NULL;
    if (!id)
        id = str_at(in, "Id");
    name = item ? str_at(item, "name") : NULL;
    if (!name)
        name = str_at(in, "Name");
    image = item ? str_at(item, "image") : NULL;
    if (!image)
        image = str_at(json_object_get(in, "Config"), "Image");
    status = str_at(state, "Status");
    if (!status && item)
        status = str_at(item, "state");
    if ((!id || !*id) && (!name || !*name))
        goto out;
    c = json_object();
    if (!c)
        goto out;
    json_object_set_new(c, "name", name_json(name));
    json_object_set_new(c, "id", str_or_null(id));
    json_object_set_new(c, "image", str_or_null(image));
    json_object_set_new(c, "state", str_or_null(status));
    json_object_set_new(c, "status", str_or_null(item ? str_at(item, "status") : NULL));
    json_object_set_new(c, "health", str_or_null(str_at(health, "Status")));
    restarts = num_path(in, "RestartCount", NULL);
    json_object_set_new(c, "restart_count", num_or_null(restarts));
    json_object_set_new(c, "started_at", str_or_null(str_at(state, "StartedAt")));
    exit_code = num_path(state, "ExitCode", NULL);
    json_object_set_new(c, "exit_code", num_or_null(exit_code));
    set_stats(c, st, id, prev, next);
out:
    json_decref(in);
    json_decref(st);
    return c;
}
