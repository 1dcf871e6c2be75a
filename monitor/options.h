/* options.h: the monitor's settings and their validation (options.c). A leaf of the monitor
 * module: pure, no state. */
#ifndef CONDUIT_MONITOR_OPTIONS_H
#define CONDUIT_MONITOR_OPTIONS_H

#include <stddef.h>

/* The monitor's settings, from the daemon's options (--alert-*, --docker-socket, --probe-ttl).
 * An alert fires when a value is at or above its threshold. */
struct mon_options {
    double alert_gpu_temp_c;        /* GPU temperature, degrees C (default 85) */
    double alert_gpu_vram_pct;      /* GPU memory used, % (default 90) */
    double alert_mem_pct;           /* host memory used, % (default 90) */
    double alert_disk_pct;          /* root file system used, % (default 90) */
    char docker_socket[256];        /* this host's Docker Engine socket; "" for the default */
    int probe_ttl_ms;               /* a probe's result is shared this long (default 2000) */
};

/* Fill *o with the defaults. */
void mon_options_default(struct mon_options *o);

/* Set the option named key ("alert_gpu_temp", "alert_gpu_vram", "alert_mem", "alert_disk",
 * "docker_socket", "probe_ttl": the -o spelling) from its text value. Temperatures are 1..200
 * degrees C, percentages 1..100 (decimals allowed), the socket an absolute path, the TTL 0..3600
 * seconds (decimals allowed, millisecond resolution). 0; -EINVAL with a one-line reason in err
 * (a bad value); -ENOENT (no such key). */
int mon_options_set(struct mon_options *o, const char *key, const char *value, char *err,
                    size_t errlen);

#endif
