/* fuzz_docker.c: libFuzzer target for the Docker Engine API parsers. The input is up to three
 * NUL-separated bodies: GET /containers/json, GET /containers/{id}/json and
 * GET /containers/{id}/stats; every container goes through the report, alert and Prometheus
 * code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/probe.h"

#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next NUL-separated part of [*p, end): its start and length; NULL when none is left. */
static const char *part(const char **p, const char *end, size_t *len)
{
    const char *s = *p, *nul;

    if (!s || s > end)
        return NULL;
    nul = memchr(s, '\0', (size_t)(end - s));
    *len = nul ? (size_t)(nul - s) : (size_t)(end - s);
    *p = nul ? nul + 1 : end + 1;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    size_t llen = 0, ilen = 0, slen = 0, i;
    const char *list = part(&p, end, &llen);
    const char *inspect = part(&p, end, &ilen);
    const char *stats = part(&p, end, &slen);
    json_t *items = list ? mon_docker_list(list, llen) : NULL;
    json_t *out = json_array(), *prev = json_object(), *next = json_object(), *item, *c;
    json_t *metrics;

    json_object_set_new(prev, "abc", json_pack("[f,f]", 1.0, 2.0));
    json_array_foreach(items, i, item) {
        c = mon_docker_container(item, inspect, ilen, stats, slen, prev, next);
        if (c)
            json_array_append_new(out, c);
    }
    c = mon_docker_container(NULL, inspect, ilen, stats, slen, prev, next);
    if (c)
        json_array_append_new(out, c);
    metrics = json_pack("{s:O}", "containers", out);
    fz_alerts_prom("containers", metrics);
    json_decref(out);
    json_decref(prev);
    json_decref(next);
    json_decref(items);
    return 0;
}
