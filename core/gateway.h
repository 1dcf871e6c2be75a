/* gateway.h: applies a rendering to disk (and, in managed mode, to the running daemons). */
#ifndef CONDUIT_GATEWAY_H
#define CONDUIT_GATEWAY_H

#include <stdbool.h>

#include "core/config.h"
#include "core/render.h"

/* Prepare the config directories under cfg->state_dir. 0 or -errno. */
int gw_open(const struct cfs_config *cfg);

/* Write out, replacing the previous rendering prev (NULL at mount: write everything, remove
 * stray hosts.d files and the routing/Caddyfile of an earlier version). Only files that differ
 * from prev are rewritten, each atomically. The proxy's config is routing/caddy.json. When live,
 * a proxy config that differs from prev's (any, when prev is NULL) is POSTed to Caddy's /load
 * before it is written, and one that does not is not loaded at all; if Caddy refuses it, an
 * audit line proxy_reload/failure carries Caddy's message and -EIO is returned.
 * 0 or -errno. */
int gw_apply(const struct cfs_config *cfg, const struct render_out *next,
             const struct render_out *prev);

/* From now on, apply loads each new proxy config into the running Caddy (managed mode, once the
 * supervisor runs it). */
void gw_set_live(const struct cfs_config *cfg);

/* Ask the proxy to reload the current configuration (routing/caddy.json); force re-reads
 * certificate files even when the config is the one Caddy runs (renewal, rotation). In
 * --no-manage mode a no-op. 0 or -errno (-EIO when the proxy refused). */
int gw_reload(bool force);

#endif
