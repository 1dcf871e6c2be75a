/* monitor.h: observed state: live probes behind the monitor/ tree. The daemon-facing API:
 * the directory model (local, targets, service-derived directories), live reads, targets. */
#ifndef CONDUIT_MONITOR_H
#define CONDUIT_MONITOR_H

#include <stddef.h>

#include "monitor/files.h"
#include "monitor/options.h"

/* Load monitoring targets from state_dir/monitoring and take the settings of opts (NULL: the
 * defaults; copied). The docker socket is opts->docker_socket, else CONDUIT_DOCKER_SOCKET, else
 * /var/run/docker.sock. 0 or -errno with a one-line reason in err. Starts no thread (the daemon
 * forks after this). */
int mon_open(const char *state_dir, const struct mon_options *opts, char *err, size_t errlen);

/* Drop cached probes and close SSH sessions. */
void mon_close(void);

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

/* Append the health gauges of health (monitor/health.json's text, core/health.h: per service
 * and per upstream) to the Prometheus text *text of *len bytes, malloc'd and replaced here.
 * Text that does not parse adds nothing. Pure. 0 or -ENOMEM (*text is then unchanged). */
int mon_metrics_health(char **text, size_t *len, const char *health);

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
