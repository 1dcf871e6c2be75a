/* gateway.h: applies a rendering to disk (and, in managed mode, to the running daemons). */
#ifndef CONDUIT_GATEWAY_H
#define CONDUIT_GATEWAY_H

#include <stdbool.h>

#include "core/registry.h"
#include "core/render.h"

/* Prepare the config directories under cfg->state_dir. 0 or -errno. */
int gw_open(const struct reg_config *cfg);

/* Write out, replacing the previous rendering prev (NULL at mount: write everything and remove
 * stray hosts.d files). Only files that differ from prev are rewritten, each atomically. When
 * live, a changed Caddyfile is loaded into Caddy before it is written; if Caddy refuses it, an
 * audit line proxy_reload/failure carries Caddy's message and -EIO is returned.
 * 0 or -errno. */
int gw_apply(const struct reg_config *cfg, const struct render_out *next,
             const struct render_out *prev);

/* From now on, apply loads each new Caddyfile into the running Caddy (managed mode, once the
 * supervisor runs it). */
void gw_set_live(const struct reg_config *cfg);

/* Ask the proxy to reload the current configuration, re-reading certificate files (renewal,
 * rotation). In --no-manage mode a no-op. 0 or -errno (-EIO when the proxy refused). */
int gw_reload(bool force);

#endif
