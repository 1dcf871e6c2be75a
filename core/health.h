/* health.h: the health prober: one thread that probes every upstream of every active service
 * (proxy and dns mode) at scheme://host:port + health_check, keeps each upstream's state
 * (unknown, healthy, unhealthy) and whether it is in the rotation, and says when that changed. */
#ifndef CONDUIT_HEALTH_H
#define CONDUIT_HEALTH_H

#include <stdbool.h>

#include "core/config.h"

/* Start the prober thread (after daemonizing). It probes at once, then every
 * cfg->health_interval_s seconds. 0 or -errno. */
int health_start(const struct cfs_config *cfg);

/* Stop the prober thread; it wakes at once. */
void health_stop(void);

/* The state of every live service and of each of its upstreams as monitor/health.json shows it
 * (docs/schema/health.json), malloc'd and NUL-terminated, without a trailing newline:
 * {"timestamp","services":[{"name","domain","mode","upstream","state","since",
 * "consecutive_failures","last_status","last_latency_ms","last_error","upstreams_in_rotation",
 * "upstreams_total","upstreams":[{"upstream","state","in_rotation","since",
 * "consecutive_failures","last_status","last_latency_ms","last_error"}]}]}. 0 or -ENOMEM. */
int health_json(char **out);

/* Whether upstream (one line of service's upstream list, as written) is in the rotation: true
 * unless the prober saw it fail --health-threshold probes in a row and not answer since (an
 * upstream not probed yet is in it). A render_rotation_fn (render.h); arg is unused. Thread-safe
 * and cheap: it takes only the prober's leaf lock (callers may hold the registry's). */
bool health_in_rotation(const char *service, const char *upstream, void *arg);

/* Have fn() called, from the prober thread and without locks held, after each round in which an
 * upstream left or rejoined the rotation. NULL: no call. */
void health_on_rotation(void (*fn)(void));

#endif
