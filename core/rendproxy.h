/* rendproxy.h: the proxy's config (Caddy JSON) from the resolved records of render.c.
 * Internal to the renderers; everything else uses render.h. */
#ifndef CONDUIT_RENDPROXY_H
#define CONDUIT_RENDPROXY_H

#include <stddef.h>

#include "core/config.h"
#include "core/rendutil.h"

/* The whole Caddy JSON document for items[0..n) (sorted by name; pending and dns-mode ones are
 * left out) into *dst (malloc'd): compact, keys in a fixed order, ending in a newline. One route
 * per pool key in use, whatever n (docs/architecture.md, "The proxy's shape"). 0, -EINVAL (a
 * value the byte filter refuses) or -ENOMEM. */
int rproxy_render(const struct cfs_config *cfg, struct rnd_item *items, size_t n, char **dst);

#endif
