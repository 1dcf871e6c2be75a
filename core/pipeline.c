/* pipeline.c: the commit pipeline. The registry builds each change and calls the commit step
 * here with its mutation lock held: render the next registry (only in-rotation upstreams, as
 * the prober says), seal the change (the registry's, before anything goes live), make the
 * serving leaves carry the live domains (issue, and archive a leaf left with no name), apply
 * the configs to the proxy and DNS, and save services.json (the registry's). A failure after
 * the seal puts the previous configs back, archives what the change issued, and seals the abort
 * mark. The rendering that is live is kept here, so that only what changed is rewritten and
 * reloaded. */
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

static const struct cfs_config *g_cfg;
static struct render_out g_rendered;    /* what is live; guarded by the registry's mutation lock */

/* A view of records for render and the CA. */
struct view {
    const struct reg_service *const *svcs;
    const struct reg_service **own;     /* malloc'd pointer array, or NULL when svcs is t's */
    size_t n;
};

/* The live records that render and the CA see: a live record without a domain is left out, as
 * if inactive (it has no route, DNS name or leaf until a domain is written). The view is svcs
 * itself when every live record has a domain, else a malloc'd array of pointers without those
 * records. 0 or -ENOMEM. Free with view_free. */
static int routed(const struct reg_service *const *svcs, size_t n, struct view *v)
{
    size_t k, m = 0;

    v->svcs = svcs;
    v->own = NULL;
    v->n = n;
    for (k = 0; k < n; k++)
        if (svcs[k]->status != REG_INACTIVE && svcs[k]->domain[0] == '\0')
            break;
    if (k == n)
        return 0;
    v->own = malloc(n * sizeof(*v->own));
    if (!v->own)
        return -ENOMEM;
    for (k = 0; k < n; k++)
        if (svcs[k]->status == REG_INACTIVE || svcs[k]->domain[0] != '\0')
            v->own[m++] = svcs[k];
    v->svcs = v->own;
    v->n = m;
    return 0;
}

static void view_free(struct view *v)
{
    free(v->own);
    v->own = NULL;
}

/* Whether t's next registry renders as its current one does: no active record of either
 * differs. A pending or inactive record renders nothing (no route, DNS record or leaf), and a
 * snapshot shares every record a change did not write, so an unchanged record is the same
 * pointer in both (registry.h). Records are appended, never removed or moved. */
static bool same_rendering(const struct reg_txn *t)
{
    if (t->nnext < t->ncur)
        return false;
    for (size_t i = 0; i < t->nnext; i++) {
        const struct reg_service *a = i < t->ncur ? t->cur[i] : NULL, *b = t->next[i];

        if (a != b && ((a && a->status == REG_ACTIVE) || b->status == REG_ACTIVE))
            return false;
    }
    return true;
}

/* The registry's commit step (reg_pipeline.commit), with its mutation lock held. Certificates
 * follow the live domains (see casvc.h); their audit lines are written by flush. */
static int commit(struct reg_txn *t)
{
    struct render_out out = {0};
    struct view cur = {0}, next = {0};
    int rc;

    /* A registration while pending, a write to a pending service, the deregistration of one:
     * nothing the proxy, DNS or the CA serve changes, so only the seal and the save are left
     * (a commit of O(N) pointer comparisons instead of a render of every service). */
    if (same_rendering(t)) {
        rc = reg_txn_seal(t);
        if (rc == 0 && (rc = reg_txn_save(t)) < 0)
            reg_txn_abort(t, rc);
        return rc;
    }
    if (routed(t->cur, t->ncur, &cur) < 0 || routed(t->next, t->nnext, &next) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    rc = render_all(g_cfg, next.svcs, next.n, health_in_rotation, NULL, &out);
    if (rc < 0) {
        syslog(LOG_ERR, "registry: render refused the next registry: %s", strerror(-rc));
        goto out;
    }
    /* Sealed before anything goes live. */
    rc = reg_txn_seal(t);
    if (rc < 0)
        goto out;
    /* Leaves first: in managed mode the proxy loads them while the configs are applied. */
    ca_service_sync(cur.svcs, cur.n, next.svcs, next.n, t->who);
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
    /* Nothing to retire: sync already made the leaves carry next's names, and archived a leaf
     * left with none. */
    goto out;
rollback:
    if (gw_apply(g_cfg, &g_rendered, &out) < 0)
        syslog(LOG_ERR, "registry: configs could not be restored; remount re-renders them");
    /* Undo this commit's issuances: archive the pairs of domains only next made live. */
    ca_service_retire(next.svcs, next.n, cur.svcs, cur.n, t->who);
    reg_txn_abort(t, rc);
out:
    view_free(&cur);
    view_free(&next);
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
    struct view v = {0};
    int rc;

    rc = routed(snap->svcs, snap->n, &v);
    if (rc == 0)
        rc = render_all(g_cfg, v.svcs, v.n, health_in_rotation, NULL, &out);
    if (rc == 0 && all) {
        /* Every live domain must have a valid leaf before the proxy loads the configs. */
        ca_service_check(v.svcs, v.n);
        rc = gw_apply(g_cfg, &out, NULL);
    } else if (rc == 0) {
        rc = gw_apply(g_cfg, &out, &g_rendered);
    }
    if (rc == 0) {
        render_free(&g_rendered);
        g_rendered = out;
        memset(&out, 0, sizeof(out));
    }
    view_free(&v);
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

int pipe_open(const struct cfs_config *cfg, char *err, size_t errlen)
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
