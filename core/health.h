/* health.h: the health prober: one thread that probes every active proxy-mode service and
 * keeps its state (unknown, healthy, unhealthy). */
#ifndef CONDUIT_HEALTH_H
#define CONDUIT_HEALTH_H

/* The state of every live service as monitor/health.json shows it, malloc'd and NUL-terminated:
 * {"timestamp","services":[{"name","domain","upstream","state","since","consecutive_failures",
 * "last_status","last_latency_ms","last_error"}]}. 0 or -ENOMEM. */
int health_json(char **out);

#endif
