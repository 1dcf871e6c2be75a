/* files.h: the files a directory below monitor/ may hold, their names and the "type" of their
 * probe documents (files.c). A leaf of the monitor module: types and tables, no state. */
#ifndef CONDUIT_MONITOR_FILES_H
#define CONDUIT_MONITOR_FILES_H

/* The files a directory below monitor/ may hold. */
enum mon_file {
    MON_FILE_SERVER,        /* server.json: /proc, load, memory, disk */
    MON_FILE_GPU,           /* gpu.json: nvidia-smi */
    MON_FILE_CONTAINERS,    /* containers.json: every container of a Docker Engine */
    MON_FILE_CONTAINER,     /* container.json: the one container a service names */
    MON_FILE_TARGET,        /* target.json: a remote target's settings (read-write) */
    MON_NFILES
};

/* "server.json", ... for f; mon_file_from_name returns -1 for an unknown name. */
const char *mon_file_name(enum mon_file f);
int mon_file_from_name(const char *name);

/* The "type" of a probe file ("server", "gpu", "containers", "container"), NULL otherwise. */
const char *mon_file_type(enum mon_file f);

#endif
