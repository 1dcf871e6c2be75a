/* statefile.h: the state directory, file modes, and atomic writes (the state directory's
 * names for the util layer's file utilities, util/util.h, plus its own policy). */
#ifndef CONDUIT_STATEFILE_H
#define CONDUIT_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Create dir (and parents) with mode 0700 if missing; check that it is a writable directory.
 * *created is set when the directory was new or empty. 0 or -errno. */
int state_dir_init(const char *dir, bool *created);

/* Create a directory with mode if missing. 0 or -errno (-ENOTDIR when a non-directory is there). */
int state_mkdir(const char *path, mode_t mode);

/* Atomically replace path with data: temp file in the same directory, fsync, rename, fsync of the
 * directory. The file gets mode. 0 or -errno; on failure path is untouched and no temp is left. */
int state_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Remove the temp files an interrupted state_write_atomic left in dir. 0 or -errno. */
int state_clean_temps(const char *dir);

/* Remove path and fsync its directory. Missing is success. 0 or -errno. */
int state_unlink(const char *path);

/* Read a whole file into a malloc'd NUL-terminated buffer. 0 or -errno. */
int state_read_file(const char *path, char **data, size_t *len);

/* Join dir and name into buf. 0 or -ENAMETOOLONG. */
int state_path(char *buf, size_t len, const char *dir, const char *name);

/* Current UTC time as YYYY-MM-DDTHH:MM:SSZ into buf (>= 21 bytes). */
void state_now_iso(char *buf, size_t len);

/* Keep a copy of the corrupt file path (its len bytes of doc) beside it, as
 * <path>.corrupt-<UTC time>, for the operator; path itself is not touched. The copy's path goes
 * into aside, or "" when it could not be written (a name too long for aside or path, or a
 * failed write). 0, -ENAMETOOLONG or the -errno of the write. */
int state_keep_corrupt(const char *path, const char *doc, size_t len, char *aside,
                       size_t asidelen);

/* Write a one-line reason into err when the caller gave a buffer (err may be NULL). */
void state_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
