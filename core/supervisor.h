/* supervisor.h: dnsmasq and Caddy as supervised child processes (managed mode). */
#ifndef CONDUIT_SUPERVISOR_H
#define CONDUIT_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

/* Check that the daemons managed mode needs are installed. 0, or -ENOENT with a one-line reason
 * in err. */
int sup_check(const struct cfs_config *cfg, char *err, size_t errlen);

/* Start the supervisor thread, which starts both children and restarts either one that dies:
 * the first time at once (at most once a second) with an audit line supervisor_restart/success;
 * if it dies again within 10 s of that restart, one line supervisor_restart/failure, then
 * restarts after 2, 4, 8 ... up to 60 s, logged to syslog only, and a line supervisor_recovered
 * once it has run 10 s. It first turns on net.ipv4.tcp_migrate_req in this network namespace
 * (logged), which Caddy's reloads need to keep every new connection (see supervisor.c), stops
 * the dnsmasq and Caddy an earlier mount of this state directory left running (found by
 * state/run/NAME.pid or their command line; audit line supervisor_orphan), and picks this
 * mount's own admin socket name. Children run under watchdogs that hold PR_SET_PDEATHSIG, so
 * none outlives the daemon, even after kill -9, unless the watchdogs die too.
 * 0 or -errno (-ENAMETOOLONG: the admin socket path does not fit a unix socket). */
int sup_start(const struct cfs_config *cfg);

/* This mount's Caddy admin socket, state/caddy/admin-PID-RANDOM.sock, into buf (Caddy learns it
 * from CONDUITFS_CADDY_ADMIN, which the proxy config's admin listen address reads). 0, -ENOENT
 * before sup_start, or -ENAMETOOLONG (buf too small); buf is then "". */
int sup_admin_socket(char *buf, size_t len);

/* Wait up to timeout_ms until Caddy's admin socket answers. true when it does. */
bool sup_caddy_wait_ready(int timeout_ms);

/* Stop both children (SIGTERM, then SIGKILL after 3 s) and the thread. */
void sup_stop(void);

#endif
