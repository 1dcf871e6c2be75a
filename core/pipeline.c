/* pipeline.c: the commit pipeline. The registry builds each change and calls the commit step
 * here with its mutation lock held: render the next registry (only in-rotation upstreams, as
 * the prober says), seal the change (the registry's, before anything goes live), issue the
 * leaves of newly live domains, apply the configs to the proxy and DNS, save services.json (the
 * registry's), and retire the leaves of domains no longer live. A failure after the seal puts
 * the previous configs back, archives what the change issued, and seals the abort mark. The
 * rendering that is live is kept here, so that only what changed is rewritten and reloaded. */
#include "core/pipeline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core/casvc.h"
#include "core/gateway.h"
#include "core/health.h"
#include "core/render.h"

static const struct reg_config *g_cfg;
static struct render_out g_rendered;    /* what is live; guarded by the registry's mutation lock */

/* The records that render and the CA see: a live record without a domain is left out, as if
 * inactive (it has no route, DNS name or leaf until a domain is written). Returns svcs itself
 * when every live record has a domain, else a malloc'd copy into *own (free it); NULL when out
 * of memory. */
static const struct reg_service *routed(const struct reg_service *svcs, size_t n,
                                        struct reg_service **own)
{
    size_t k;

    *own = NULL;
    for (k = 0; k < n; k++)
        if (svcs[k].status != REG_INACTIVE && svcs[k].domain[0] == '\0')
            break;
    if (k == n)
        return svcs;
    *own = malloc(n * sizeof(**own));
    if (!*own)
        return NULL;
    memcpy(*own, svcs, n * sizeof(**own));
    for (; k < n; k++)
        if ((*own)[k].domain[0] == '\0')
            (*own)[k].status = REG_INACTIVE;
    return *own;
}

/* The registry's commit step (reg_pipeline.commit), with its mutation lock held. Certificates
 * follow the live domains (see casvc.h); their audit lines are written by flush. */
static int commit(struct reg_txn *t)
{
    struct render_out out = {0};
    struct reg_service *own_cur = NULL, *own_next = NULL;
    const struct reg_service *cur = routed(t->cur, t->ncur, &own_cur);
    const struct reg_service *next = routed(t->next, t->nnext, &own_next);
    int rc;

    if ((!cur && t->ncur) || (!next && t->nnext)) {
        rc = -ENOMEM;
        goto out;
    }
    rc = render_all(g_cfg, next, t->nnext, health_in_rotation, NULL, &out);
    if (rc < 0) {
        syslog(LOG_ERR, "registry: render refused the next registry: %s", strerror(-rc));
        goto out;
    }
    /* Sealed before anything goes live. */
    rc = reg_txn_seal(t);
    if (rc < 0)
        goto out;
    /* Leaves first: in managed mode the proxy loads them while the configs are applied. */
    ca_service_sync(cur, t->ncur, next, t->nnext, t->who);
    rc = gw_apply(g_cfg, &out, &g_rendered);
    if (rc < 0) {
        syslog(LOG_ERR, "registry: applying configs failed: %s", strerror(-rc));
        goto rollback;
    }
    rc = reg_txn_save(t);
    if (rc < 0)
        goto rollback;
    render_free(&g_rendered);
    g_rendered = out;
    memset(&out, 0, sizeof(out));
    /* Archive the pairs of domains that are no longer live (deregistered, domain changed). */
    ca_service_retire(cur, t->ncur, next, t->nnext, t->who);
    goto out;
rollback:
    if (gw_apply(g_cfg, &g_rendered, &out) < 0)
        syslog(LOG_ERR, "registry: configs could not be restored; remount re-renders them");
    /* Undo this commit's issuances: archive the pairs of domains only next made live. */
    ca_service_retire(next, t->nnext, cur, t->ncur, t->who);
    reg_txn_abort(t, rc);
out:
    free(own_cur);
    free(own_next);
    render_free(&out);
    return rc;
}

/* Render the current registry and apply it, with the mutation lock held (reg_with_lock). *all:
 * check every live domain's leaf first and write every file (mount, SIGHUP); else apply only
 * what differs from the live rendering (a change of the rotation). */
static int rerender_locked(void *arg)
{
    bool all = *(const bool *)arg;
    struct reg_snapshot *snap = reg_snapshot_get();
    struct render_out out = {0};
    struct reg_service *own = NULL;
    const struct reg_service *svcs = routed(snap->svcs, snap->n, &own);
    int rc;

    rc = svcs || !snap->n ? render_all(g_cfg, svcs, snap->n, health_in_rotation, NULL, &out)
                          : -ENOMEM;
    if (rc == 0 && all) {
        /* Every live domain must have a valid leaf before the proxy loads the configs. */
        ca_service_check(svcs, snap->n);
        rc = gw_apply(g_cfg, &out, NULL);
    } else if (rc == 0) {
        rc = gw_apply(g_cfg, &out, &g_rendered);
    }
    if (rc == 0) {
        render_free(&g_rendered);
        g_rendered = out;
        memset(&out, 0, sizeof(out));
    }
    free(own);
    render_free(&out);
    reg_snapshot_put(snap);
    return rc;
}

int pipe_rerender(void)
{
    bool all = true;
    int rc = reg_with_lock(rerender_locked, &all);

    ca_service_flush();
    return rc;
}

/* The prober's rotation changed: re-render, and apply what changed. */
static void rotation_changed(void)
{
    bool all = false;
    int rc = reg_with_lock(rerender_locked, &all);

    if (rc < 0)
        syslog(LOG_ERR, "pipeline: applying a change of the health rotation failed: %s",
               strerror(-rc));
}

static const struct reg_pipeline steps = {
    .open = gw_open,
    .rerender = pipe_rerender,
    .commit = commit,
    .flush = ca_service_flush,
};

int pipe_open(const struct reg_config *cfg, char *err, size_t errlen)
{
    int rc;

    g_cfg = cfg;
    reg_set_pipeline(&steps);
    rc = reg_open(cfg, err, errlen);
    if (rc < 0) {
        reg_set_pipeline(NULL);
        render_free(&g_rendered);
        return rc;
    }
    health_on_rotation(rotation_changed);
    return 0;
}

void pipe_close(void)
{
    health_on_rotation(NULL);
    reg_close();
    reg_set_pipeline(NULL);
    render_free(&g_rendered);
}
