/* casvc.h: the CA as a service of the daemon: opened at mount, leaves kept in step with the
 * registry, and the renewal thread. */
#ifndef CONDUIT_CASVC_H
#define CONDUIT_CASVC_H

#include <stddef.h>

#include "core/registry.h"

/* Open (or create) the CA under cfg->state_dir with cfg->key_type. 0 or -errno with a one-line
 * reason in err (a key that does not match its certificate, ...). Call before reg_open. */
int ca_service_open(const struct reg_config *cfg, char *err, size_t errlen);

/* Start the renewal thread (after the daemon has forked). 0 or -errno. */
int ca_service_start(void);

/* Stop the renewal thread and close the CA. */
void ca_service_close(void);

#endif
