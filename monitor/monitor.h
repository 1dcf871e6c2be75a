/* monitor.h: observed state: live probes behind the monitor/ tree. The daemon-facing API:
 * the directory model (local, targets, service-derived directories), live reads, targets. */
#ifndef CONDUIT_MONITOR_H
#define CONDUIT_MONITOR_H

#include <stddef.h>

#include "core/registry.h"

/* The files a directory below monitor/ may hold. */
enum mon_file {
    MON_FILE_SERVER,        /* server.json: /proc, load, memory, disk */
    MON_FILE_GPU,           /* gpu.json: nvidia-smi */
    MON_FILE_CONTAINERS,    /* containers.json: every container of a Docker Engine */
    MON_FILE_CONTAINER,     /* container.json: the one container a service names */
    MON_FILE_TARGET,        /* target.json: a remote target's settings (read-write) */
    MON_NFILES
};

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

/* Load monitoring targets from cfg->state_dir and take the settings of opts (NULL: the
 * defaults; copied). The docker socket is opts->docker_socket, else CONDUIT_DOCKER_SOCKET, else
 * /var/run/docker.sock. 0 or -errno with a one-line reason in err. Starts no thread (the daemon
 * forks after this). cfg must outlive the module. */
int mon_open(const struct reg_config *cfg, const struct mon_options *opts, char *err,
             size_t errlen);

/* Drop cached probes and close SSH sessions. */
void mon_close(void);

/* "server.json", ... for f; mon_file_from_name returns -1 for an unknown name. */
const char *mon_file_name(enum mon_file f);
int mon_file_from_name(const char *name);

/* Call fn once per directory below monitor/: "local", every target, then every service whose
 * monitoring attribute names something to probe (and whose name no target or "local" holds). */
void mon_dirs(void (*fn)(const char *name, void *ctx), void *ctx);

/* The files directory dir holds, as a mask of (1u << enum mon_file). A target shows its probe
 * files only once target.json has been written. 0, or -ENOENT when there is no such directory. */
int mon_dir_files(const char *dir, unsigned *mask);

/* The current content of dir/f into a malloc'd buffer (NUL-terminated, *len without the NUL):
 * target.json's settings, or a probe's JSON document (run now, or shared from a probe less than
 * the probe TTL old). A failed probe is still a document, with "error" set. 0, -ENOENT (no such
 * directory or file), or -ENOMEM. */
int mon_read(const char *dir, enum mon_file f, char **out, size_t *len);

/* Every probe's metrics in the Prometheus text format 0.0.4, malloc'd. Probes run in parallel
 * and a probe still running after MON_CONNECT_MS + MON_COMMAND_MS counts as failed; readers
 * that come while a run is under way share it, and so does every reader for the probe TTL after
 * it. 0 or -ENOMEM. */
int mon_metrics(char **out, size_t *len);

/* Create target name (not yet configured). 0, -EINVAL (bad name), -EEXIST (a target, "local",
 * or a service-derived directory has the name), -ENOSPC (too many targets) or an I/O -errno.
 * who is the caller, for the audit line. */
int mon_target_add(const char *name, const char *who);

/* Remove target name. 0, -ENOENT, -EPERM (a directory that is not a target) or -errno. */
int mon_target_remove(const char *name, const char *who);

/* Set target name's settings from a raw target.json write (one trailing newline allowed), or
 * clear them when buf is NULL. who is the writer (a user name or a decimal uid): its ssh_key
 * must be a file directly in <state>/monitoring/keys/ or one who owns outside the state
 * directory, never state/key or state/tls/ *.key. 0 (also when unchanged), -EINVAL, -EFBIG,
 * -EACCES (a key in no allowed place, or missing), -ENOENT or -errno. */
int mon_target_set(const char *name, const char *buf, size_t len, const char *who);

/* A write(2) of size bytes at offset off to target name's target.json: mon_target_set, after
 * refusing a write at an offset (EINVAL) or over VAL_VALUE_MAX + 1 bytes (EFBIG). Every refused
 * change of monitor/ (these, a bad name or a taken one at mon_target_add, an EPERM at
 * mon_target_remove, a value or key mon_target_set refuses) says why: one syslog line and a
 * sealed change_refused failure entry naming the path (monitor/NAME or monitor/NAME/
 * target.json), the caller and the reason (reg_refuse_path). Returns what mon_target_set does. */
int mon_target_write(const char *name, const char *buf, size_t size, long long off,
                     const char *who);

#endif
