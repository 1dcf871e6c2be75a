/* monitor.h: observed state: live probes behind the monitor/ tree. */
#ifndef CONDUIT_MONITOR_H
#define CONDUIT_MONITOR_H

#include <stddef.h>

#include "core/registry.h"

/* Load monitoring targets from cfg->state_dir. 0 or -errno with a one-line reason in err. */
int mon_open(const struct reg_config *cfg, char *err, size_t errlen);

/* Drop cached probes and close SSH sessions. */
void mon_close(void);

#endif
