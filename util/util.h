/* util.h: the bottom layer (cu_), below audit/, core/, monitor/ and fs/: error text, file
 * utilities, time, JSON output and the monotonic clock, each written once for every module.
 *
 * Rules of this layer:
 *   - no module state: nothing here keeps a static or global between calls;
 *   - no I/O policy: the caller chooses every path, mode and name, and what an error means
 *     (these functions return 0 or -errno and never log, exit or retry on their own);
 *   - it includes no header of another module and links nothing but libc and jansson. */
#ifndef CONDUIT_UTIL_H
#define CONDUIT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>

/* ---- error text ---- */

/* Write a one-line reason into err when the caller gave a buffer (err may be NULL, errlen 0). */
void cu_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cu_err with a va_list. */
void cu_verr(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* cu_err, then return rc (for `return cu_errf(-EIO, err, errlen, "...")`). */
int cu_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- files ---- */

/* fsync directory dir. 0 or -errno. */
int cu_fsync_dir(const char *dir);

/* fsync the directory that holds path ("." without a slash, "/" for a top-level name).
 * 0, -ENAMETOOLONG or -errno. */
int cu_fsync_parent(const char *path);

/* Create directory path with mode when missing and fsync its parent; an existing directory is
 * success. 0, -ENOTDIR (a non-directory is there) or -errno. */
int cu_mkdir(const char *path, mode_t mode);

/* Read the whole of path, to end of file (also /proc files, whose size says 0), into a malloc'd
 * NUL-terminated buffer; *len excludes the NUL. With max > 0, a file longer than max bytes is
 * -EFBIG. 0 or -errno (-ENOMEM); on failure *data is NULL. */
int cu_read_all(const char *path, size_t max, char **data, size_t *len);

/* Atomically replace path with len bytes of data, mode mode: a temp file in the same directory
 * (named ".<base>.tmp.<thread id>", see cu_is_temp_name), written, fsync'd, renamed over path,
 * then an fsync of the directory. 0 or -errno; on failure path is untouched and no temp file is
 * left (-ENAMETOOLONG, -ENOSPC, -EIO, ...). */
int cu_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Whether name (a file name, no directory) is one of cu_write_atomic's temp files. */
int cu_is_temp_name(const char *name);

/* Join dir and name into buf. 0 or -ENAMETOOLONG. */
int cu_path(char *buf, size_t len, const char *dir, const char *name);

/* ---- time ---- */

/* t as UTC YYYY-MM-DDTHH:MM:SSZ into buf (>= 21 bytes). */
void cu_iso_time(time_t t, char *buf, size_t len);

/* The current UTC time as cu_iso_time writes it. */
void cu_iso_now(char *buf, size_t len);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t cu_mono_ms(void);

/* ---- JSON output ---- */

/* json_dumps(j, flags) followed by one newline, malloc'd and NUL-terminated; *len (may be NULL)
 * gets its length without the NUL. NULL without memory (or when j cannot be encoded). */
char *cu_json_line(const json_t *j, size_t flags, size_t *len);

/* A malloc'd copy of text with one newline appended; *len (may be NULL) as cu_json_line. NULL
 * without memory. */
char *cu_text_line(const char *text, size_t *len);

#endif
