/* fuzz_proc.c: libFuzzer target for the /proc and df parsers: the input is read as the `cat` of
 * /proc/loadavg, meminfo, uptime and stat, and as `df -Pk /`; the server metrics built from them
 * go through the alert rules and the Prometheus renderer. */
#include <stdint.h>
#include <stdlib.h>

#include "monitor/probe.h"

#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct mon_proc p;
    struct mon_disk d;
    json_t *metrics;

    mon_proc_parse(text, size, &p);
    mon_df_parse(text, size, &d);
    metrics = mon_server_json(&p, &d, p.has_cpu ? 50.0 : -1, 1.0);
    if (!metrics)
        return 0;
    fz_alerts_prom("server", metrics);
    return 0;
}
