/* test_alerts_portable.c: a monitor alert's value and threshold, which monitor_alert audit
 * entries seal, stay inside the portable subset of audit details (issue 15) whatever a probe
 * measured: rounded to two decimals, integers when whole, null for a magnitude past 2^53. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/canon.h"
#include "monitor/probe.h"
#include "testlib.h"

/* Every alert of type for metrics (JSON text) is portable; returns the alerts (caller frees). */
static json_t *alerts_of(const char *type, const char *metrics)
{
    json_t *m = json_loads(metrics, 0, NULL), *a = mon_alerts(type, m), *x;
    char why[400];
    size_t i;

    CHECKF(m != NULL, "parse %s", metrics);
    json_array_foreach(a, i, x)
        CHECKF(audit_canon_portable(x, 0, "alert", why, sizeof(why)) == 0, "%s: %s", metrics,
               why);
    json_decref(m);
    return a;
}

static void test_values(void)
{
    static const char *const gpus[] = {
        "{\"gpus\":[{\"index\":0,\"temperature_c\":90.0}]}",
        "{\"gpus\":[{\"index\":0,\"temperature_c\":86.125}]}",
        "{\"gpus\":[{\"index\":0,\"temperature_c\":9005000000000000.0}]}",
        "{\"gpus\":[{\"index\":0,\"temperature_c\":1e16}]}",
        "{\"gpus\":[{\"index\":0,\"temperature_c\":1e300}]}",
        "{\"gpus\":[{\"index\":0,\"vram_used_mb\":1e16,\"vram_total_mb\":1e-300}]}",
        "{\"gpus\":[{\"index\":0,\"vram_used_mb\":3,\"vram_total_mb\":3}]}",
        "{\"gpus\":[{\"index\":0,\"vram_used_mb\":99999,\"vram_total_mb\":100000}]}",
    };
    static const char *const servers[] = {
        "{\"memory\":{\"used_pct\":95.0},\"disk\":{\"used_pct\":99.999}}",
        "{\"memory\":{\"used_pct\":1e20},\"disk\":{\"used_pct\":91.00001}}",
    };
    json_t *a;

    for (size_t i = 0; i < sizeof(gpus) / sizeof(gpus[0]); i++)
        json_decref(alerts_of("gpu", gpus[i]));
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        json_decref(alerts_of("server", servers[i]));

    a = alerts_of("gpu", gpus[0]);
    CHECK(json_is_integer(json_object_get(json_array_get(a, 0), "value")));
    CHECK_INT(json_integer_value(json_object_get(json_array_get(a, 0), "value")), 90);
    CHECK(json_is_integer(json_object_get(json_array_get(a, 0), "threshold")));
    json_decref(a);
    a = alerts_of("gpu", gpus[1]);
    CHECK(json_real_value(json_object_get(json_array_get(a, 0), "value")) == 86.13);
    json_decref(a);
    a = alerts_of("gpu", gpus[3]);
    CHECK(json_is_null(json_object_get(json_array_get(a, 0), "value")));
    json_decref(a);
    a = alerts_of("server", servers[0]);
    CHECK_INT(json_array_size(a), 2);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(a, 0), "value")), 95);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(a, 1), "value")), 100);
    json_decref(a);
}

int main(void)
{
    test_values();
    return tl_finish();
}
