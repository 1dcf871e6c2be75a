/* supervisor.h: dnsmasq and Caddy as supervised child processes (managed mode). */
#ifndef CONDUIT_SUPERVISOR_H
#define CONDUIT_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/registry.h"

/* Check that the daemons managed mode needs are installed. 0, or -ENOENT with a one-line reason
 * in err. */
int sup_check(const struct reg_config *cfg, char *err, size_t errlen);

/* Start the supervisor thread, which starts both children and restarts either one that dies
 * (at most once a second, an audit line supervisor_restart each time). It first turns on
 * net.ipv4.tcp_migrate_req in this network namespace (logged), which Caddy's reloads need to
 * keep every new connection (see supervisor.c). Children get
 * PR_SET_PDEATHSIG, so none outlives the daemon, even after kill -9. 0 or -errno. */
int sup_start(const struct reg_config *cfg);

/* Wait up to timeout_ms until Caddy's admin socket answers. true when it does. */
bool sup_caddy_wait_ready(int timeout_ms);

/* Stop both children (SIGTERM, then SIGKILL after 3 s) and the thread. */
void sup_stop(void);

/* The pid of the named child ("caddy" or "dnsmasq"), 0 when not running. */
int sup_child_pid(const char *name);

#endif
