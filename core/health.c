/* health.c: the health prober. (Until the live-gateway issue lands: every service "unknown".) */
#include "core/health.h"

#include <errno.h>
#include <jansson.h>

#include "core/registry.h"
#include "core/statefile.h"

int health_json(char **out)
{
    struct reg_snapshot *snap = reg_snapshot_get();
    json_t *root = json_object(), *arr = json_array();
    char ts[32];
    int rc = -ENOMEM;

    *out = NULL;
    state_now_iso(ts, sizeof(ts));
    if (!root || !arr)
        goto out;
    for (size_t i = 0; snap && i < snap->n; i++) {
        const struct reg_service *s = &snap->svcs[i];

        if (s->status == REG_INACTIVE)
            continue;
        if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:n,s:i,s:n,s:n,s:n}",
                "name", s->name, "domain", s->domain, "upstream", s->upstream,
                "state", "unknown", "since", "consecutive_failures", 0, "last_status",
                "last_latency_ms", "last_error")))
            goto out;
    }
    if (json_object_set_new(root, "timestamp", json_string(ts)) ||
        json_object_set(root, "services", arr))
        goto out;
    *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = *out ? 0 : -ENOMEM;
out:
    reg_snapshot_put(snap);
    json_decref(arr);
    json_decref(root);
    return rc;
}
