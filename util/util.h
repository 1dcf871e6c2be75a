/* util.h: the bottom layer (cu_), below audit/, core/, monitor/ and fs/: error text, file
 * utilities, time, JSON output and the monotonic clock, each written once for every module.
 *
 * Rules of this layer:
 *   - no module state: nothing here keeps a static or global between calls;
 *   - no I/O policy: the caller chooses every path, mode and name, and what an error means
 *     (these functions return 0 or -errno and never log, exit or retry on their own);
 *   - it includes no header of another module and links nothing but libc, pthreads and jansson;
 *   - a primitive with state (cu_ticker) is a struct its caller owns, inits and destroys. */
#ifndef CONDUIT_UTIL_H
#define CONDUIT_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* Read from fd into buf until end of file or cap bytes, retrying on EINTR. The bytes read (at
 * most cap; cap means there may be more), or -errno of a failed read. */
ssize_t cu_read_fd(int fd, char *buf, size_t cap);

/* Write all len bytes of buf to fd, retrying on EINTR and after short writes. 0 or -errno of a
 * failed write (some bytes may have been written). */
int cu_write_fd(int fd, const void *buf, size_t len);

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

/* ---- periodic threads ---- */

/* The sleep of a periodic thread that another thread stops (or wakes early): a condition
 * variable on CLOCK_MONOTONIC, so that a change of the wall clock neither shortens nor
 * lengthens a period. The caller owns the struct; its fields are private to tick.c. */
struct cu_ticker {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC */
    bool stop;                  /* set once by cu_ticker_stop, never cleared */
    bool woken;                 /* a cu_ticker_wake that no wait has taken yet */
};

/* Make t ready, not stopped and not woken. 0 or -errno (t is then not initialised). */
int cu_ticker_init(struct cu_ticker *t);

/* Sleep up to ms milliseconds (ms <= 0: not at all), returning early when t is stopped or
 * woken; a wake that came while nobody waited ends the next wait at once, and every wait takes
 * the pending wake. true: carry on (the time passed or a wake came); false: t is stopped (at
 * once, without sleeping, once cu_ticker_stop has been called). */
bool cu_ticker_wait(struct cu_ticker *t, int64_t ms);

/* End the current wait on t early, or the next one when nobody waits (one pending wake, however
 * many calls; made for one waiting thread). */
void cu_ticker_wake(struct cu_ticker *t);

/* Stop t for good: every wait now and later returns false at once. */
void cu_ticker_stop(struct cu_ticker *t);

/* Whether cu_ticker_stop was called on t (for a long pass to check between steps). */
bool cu_ticker_stopped(struct cu_ticker *t);

/* ---- a per-second burst limit (for log lines) ---- */

/* At most max events a wall-clock second pass; the rest are counted. The caller owns the
 * struct: CU_BURST_INIT(max) initialises a static one. */
struct cu_burst {
    pthread_mutex_t lock;
    unsigned max;
    time_t sec;                 /* the second counted */
    unsigned passed, held;      /* in that second */
};
#define CU_BURST_INIT(max) { PTHREAD_MUTEX_INITIALIZER, (max), 0, 0, 0 }

/* Count one event now: true when it may pass (one of the first max this second), false when it
 * is held. *held_before is how many were held in the previous second counted, once, by the first
 * event of a new second (else 0): say those in one summary line. */
bool cu_burst_take(struct cu_burst *b, unsigned *held_before);

/* Release t; no thread may be waiting on it (stop it and join the thread first). */
void cu_ticker_destroy(struct cu_ticker *t);

/* ---- growable buffers ---- */

/* Make the malloc'd buffer *p (capacity *cap; NULL and 0 at first) hold at least need bytes:
 * its capacity doubles from 1024 until it does. 0, or -ENOMEM with *p and *cap unchanged. */
int cu_grow(char **p, size_t *cap, size_t need);

/* ---- JSON output ---- */

/* json_dumps(j, flags) followed by one newline, malloc'd and NUL-terminated; *len (may be NULL)
 * gets its length without the NUL. NULL without memory (or when j cannot be encoded). */
char *cu_json_line(const json_t *j, size_t flags, size_t *len);

/* A malloc'd copy of text with one newline appended; *len (may be NULL) as cu_json_line. NULL
 * without memory. */
char *cu_text_line(const char *text, size_t *len);

#endif
