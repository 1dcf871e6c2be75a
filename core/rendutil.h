/* rendutil.h: what the renderers share (render.c, rendproxy.c): a growable string, the byte
 * filter of rendered values, the resolved form of a record, and the pool keys. Internal to the
 * renderers; everything else uses render.h. */
#ifndef CONDUIT_RENDUTIL_H
#define CONDUIT_RENDUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/registry.h"

/* Pool keys that are not "K-POLICY-SCHEME[-name]": every upstream out of the rotation, and the
 * route that keeps passive health counts (never matched). */
#define RENDER_POOL_DOWN "down"
#define RENDER_POOL_KEEP "keep"
#define RENDER_POOL_KEY_MAX 48

/* A growable NUL-terminated string; the first failure sticks in err, later appends do nothing. */
struct rnd_buf {
    char *s;
    size_t len;
    size_t cap;
    int err;
};

/* Append printf-style text to b; on failure b->err is set and later appends do nothing. */
void rnd_addf(struct rnd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append the strings of a NULL-terminated list to b: rnd_addf without the formatting. */
void rnd_cat(struct rnd_buf *b, ...);

/* Hand b's string over to *dst (never NULL on success: "" when nothing was appended), or free
 * it on error. 0 or b->err (-ENOMEM, -EINVAL). */
int rnd_take(struct rnd_buf *b, char **dst);

/* True when s is a NUL-terminated string within a field of size cap. */
bool rnd_fits(const char *s, size_t cap);

/* True when no byte of s is refused in a rendered value: control characters, space, DEL,
 * non-ASCII, {}#"\` (placeholders, JSON quotes and escapes, comments). */
bool rnd_safe_value(const char *s);

/* Length of cfg->state_dir without trailing slashes, so that joins give single slashes. */
int rnd_state_len(const struct cfs_config *cfg);

/* state/tls/serving into buf. 0 or -ENAMETOOLONG (buf is then ""). */
int rnd_serving_dir(const struct cfs_config *cfg, char *buf, size_t len);

/* One active or pending record, checked and resolved for rendering. */
struct rnd_item {
    const struct reg_service *svc;
    bool pending;                       /* status pending: renders nothing */
    bool dns;                           /* mode "dns" */
    bool tls;                           /* the upstreams are https:// */
    bool names;                         /* an upstream host is a name, not an address */
    const char *policy;                 /* lb_policy, "round_robin" when unset */
    size_t nups;                        /* upstream lines */
    uint64_t inrot;                     /* bit i: line i is in the rotation */
    unsigned nrot;                      /* bits set in inrot */
    char pool[RENDER_POOL_KEY_MAX];     /* proxy mode, active: the pool key */
};

#endif
