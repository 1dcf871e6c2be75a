/* health.h: the health prober: one thread that probes every active proxy-mode service at
 * upstream + health_check and keeps its state (unknown, healthy, unhealthy). */
#ifndef CONDUIT_HEALTH_H
#define CONDUIT_HEALTH_H

#include <stdbool.h>

#include "core/registry.h"

/* Start the prober thread (after daemonizing). It probes at once, then every
 * cfg->health_interval_s seconds. 0 or -errno. */
int health_start(const struct reg_config *cfg);

/* Stop the prober thread; it wakes at once. */
void health_stop(void);

/* The state of every live service as monitor/health.json shows it, malloc'd and NUL-terminated:
 * {"timestamp","services":[{"name","domain","upstream","state","since","consecutive_failures",
 * "last_status","last_latency_ms","last_error"}]}. 0 or -ENOMEM. */
int health_json(char **out);

/* Whether upstream (one line of service's upstream list, as written) is in the rotation: true
 * unless the prober saw it fail --health-threshold probes in a row and not answer since (an
 * upstream not probed yet is in it). A render_rotation_fn (render.h); arg is unused. */
bool health_in_rotation(const char *service, const char *upstream, void *arg);

/* Have fn() called, from the prober thread and without locks held, after each round in which an
 * upstream left or rejoined the rotation. NULL: no call. */
void health_on_rotation(void (*fn)(void));

#endif
