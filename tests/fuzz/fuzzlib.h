/* fuzzlib.h: what several libFuzzer targets share: the fixed registry configuration the
 * registry and validator targets load documents under, and the alert-rules-and-Prometheus tail
 * every monitor parser target puts its metrics through. Header only: each target is one
 * translation unit (tests/fuzz/fuzz_*.c, globbed by CMakeLists.txt). */
#ifndef CONDUIT_FUZZLIB_H
#define CONDUIT_FUZZLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "core/render.h"
#include "monitor/probe.h"
#include "tests/unit/testlib.h"


/* A configuration with state in /var/lib/qp-conduit, suffixes internal and qp.test, gateway
 * 10.77.0.1, DNS on 127.0.0.1:5354 and HTTPS on 127.0.0.1:8443; everything else zero. */
static inline void fz_base_cfg(struct cfs_config *cfg)
{
    tl_base_cfg(cfg, "/var/lib/qp-conduit", "internal,qp.test", "10.77.0.1", 5354, "127.0.0.1");
}


/* render_all over the records svcs[0..n) of an array, by pointer as a snapshot holds them. */
static inline int fz_render(const struct cfs_config *cfg, const struct reg_service *svcs,
                            size_t n, struct render_out *out)
{
    const struct reg_service **p = calloc(n ? n : 1, sizeof(*p));
    int rc;

    if (!p)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = &svcs[i];
    rc = render_all(cfg, svcs ? p : NULL, n, NULL, NULL, out);
    free(p);
    return rc;
}

/* Put metrics (a probe of type, owned: released here) through the alert rules and, as the one
 * document of a probe named "fuzz", through the Prometheus renderer. */
static inline void fz_alerts_prom(const char *type, json_t *metrics)
{
    json_t *alerts = mon_alerts(type, metrics);
    json_t *docs = json_pack("[{s:s,s:s,s:n,s:O,s:O}]", "target", "fuzz", "type", type,
                             "error", "metrics", metrics, "alerts", alerts);
    char *prom = mon_prom_render(docs);

    free(prom);
    json_decref(docs);
    json_decref(alerts);
    json_decref(metrics);
}

#endif
