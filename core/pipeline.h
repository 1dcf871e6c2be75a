/* pipeline.h: the commit pipeline: what a registry change makes live. It sits above the
 * registry, the CA service, the gateway and the health prober, and plugs its steps into the
 * registry: render (with the prober's rotation), seal (the registry's), issue certificates,
 * apply to the proxy and DNS, save (the registry's), retire. */
#ifndef CONDUIT_PIPELINE_H
#define CONDUIT_PIPELINE_H

#include "core/config.h"

/* Plug the pipeline into the registry and open the registry (reg_open, which makes every config
 * live); from then on a change of the prober's rotation re-renders and applies what changed.
 * Call after ca_service_open; cfg must outlive the pipeline. 0 or -errno with a one-line reason
 * in err, as reg_open. */
int pipe_open(const struct cfs_config *cfg, char *err, size_t errlen);

/* Close the registry (reg_close) and unplug the pipeline. No operation may be running, and the
 * prober must be stopped. */
void pipe_close(void);

/* Re-render every config from the registry and apply all of it, checking every live domain's
 * leaf first (SIGHUP). 0 or -errno. */
int pipe_rerender(void);

#endif
