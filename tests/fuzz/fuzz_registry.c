/* fuzz_registry.c: libFuzzer target for reg_parse on arbitrary services.json bytes. A document
 * that loads must (1) render, since the mount renders every config from it, (2) serialize and
 * load again to the same records, and (3) serialize to the same bytes the second time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "core/regjson.h"
#include "core/render.h"

#include "fuzzlib.h"

/* The same records, field by field (the structs may differ in padding and unused bytes). */
static int same(const struct reg_service *a, const struct reg_service *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->upstream, b->upstream) == 0 &&
           strcmp(a->domain, b->domain) == 0 && strcmp(a->health_check, b->health_check) == 0 &&
           strcmp(a->mode, b->mode) == 0 && strcmp(a->monitoring, b->monitoring) == 0 &&
           a->status == b->status && strcmp(a->registered_at, b->registered_at) == 0 &&
           strcmp(a->deregistered_at, b->deregistered_at) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cfs_config cfg;
    static int ready;
    struct reg_service *svcs = NULL, *again = NULL;
    struct render_out out;
    size_t n = 0, n2 = 0;
    char err[256], err2[256];
    char *doc = NULL, *doc2 = NULL;

    if (!ready) {
        fz_base_cfg(&cfg);
        ready = 1;
    }
    err[0] = '\0';
    if (reg_parse((const char *)data, size, &cfg, &svcs, &n, err, sizeof(err)) != 0) {
        /* refused: a one-line reason, nothing returned */
        if (svcs || n || err[0] == '\0' || strchr(err, '\n'))
            abort();
        return 0;
    }
    /* a registry that loads can be mounted: it renders */
    if (fz_render(&cfg, svcs, n, &out) != 0)
        abort();
    render_free(&out);

    doc = reg_serialize(svcs, n);
    if (!doc)
        abort();
    if (reg_parse(doc, strlen(doc), &cfg, &again, &n2, err2, sizeof(err2)) != 0 || n2 != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!same(&svcs[i], &again[i]))
            abort();
    doc2 = reg_serialize(again, n2);
    if (!doc2 || strcmp(doc, doc2) != 0)
        abort();
    free(doc);
    free(doc2);
    free(svcs);
    free(again);
    return 0;
}
