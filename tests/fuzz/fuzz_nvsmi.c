/* fuzz_nvsmi.c: libFuzzer target for the nvidia-smi CSV parser. The input is the --query-gpu
 * output, then a NUL byte and the --query-compute-apps output (absent without a NUL); the result
 * also goes through the alert rules and the Prometheus renderer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/probe.h"

#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t glen = nul ? (size_t)(nul - text) : size;
    json_t *gpus = mon_nvsmi_parse(text, glen, nul ? nul + 1 : NULL,
                                   nul ? size - glen - 1 : 0);
    json_t *metrics;

    if (!gpus)
        return 0;
    metrics = json_pack("{s:o}", "gpus", gpus);
    fz_alerts_prom("gpu", metrics);
    return 0;
}
