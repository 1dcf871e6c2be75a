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

/* Load monitoring targets from cfg->state_dir. 0 or -errno with a one-line reason in err.
 * Starts no thread (the daemon forks after this). cfg must outlive the module. */
int mon_open(const struct reg_config *cfg, char *err, size_t errlen);

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
 * MON_TTL_MS old). A failed probe is still a document, with "error" set. 0, -ENOENT (no such
 * directory or file), or -ENOMEM. */
int mon_read(const char *dir, enum mon_file f, char **out, size_t *len);

/* Every probe's metrics in the Prometheus text format 0.0.4, malloc'd. Probes run in parallel
 * and a probe still running after MON_CONNECT_MS + MON_COMMAND_MS counts as failed; readers
 * that come while a run is under way share it, and so does every reader for MON_TTL_MS after
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

#endif
