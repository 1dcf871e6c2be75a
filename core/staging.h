/* staging.h: scratch files beside a service's attributes. A tool that replaces a file writes
 * a temporary file in the same directory and renames it over the target (rsync, sed -i, editors'
 * swap and backup files). services/NAME/ holds such files in memory, per service: never in
 * services.json, never audited, gone when the service is deregistered or the mount ends. Renaming
 * one over an attribute is one validated set of that attribute (stg_commit). */
#ifndef CONDUIT_STAGING_H
#define CONDUIT_STAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/registry.h"

#define STG_NAME_MAX 255               /* bytes in a staging file's name */
#define STG_FILE_MAX (256 * 1024)      /* bytes in one file: EFBIG beyond */
#define STG_PER_SERVICE 16             /* files per service: ENOSPC beyond */
#define STG_TOTAL_MAX (8 * 1024 * 1024) /* bytes in all files together: ENOSPC beyond */

/* Create the empty file svc/name, or do nothing when it exists. 0, -ENOSPC (too many files),
 * -ENAMETOOLONG, -EINVAL (an empty name, or one with '/'), -ENOMEM. The caller has checked that
 * svc is a live service and that name is not an attribute. */
int stg_create(const char *svc, const char *name);

/* The size of svc/name into *size. 0 or -ENOENT. */
int stg_size(const char *svc, const char *name, size_t *size);

/* Copy up to size bytes of svc/name from off into buf. The count (0 at or past the end), or
 * -ENOENT, -EINVAL (off < 0). */
int stg_read(const char *svc, const char *name, char *buf, size_t size, off_t off);

/* Write size bytes at off, growing the file (a gap reads as zeros). The count, or -ENOENT,
 * -EINVAL (off < 0), -EFBIG (past STG_FILE_MAX), -ENOSPC (past STG_TOTAL_MAX), -ENOMEM. */
int stg_write(const char *svc, const char *name, const char *buf, size_t size, off_t off);

/* Cut or extend (with zeros) svc/name to size. 0, -ENOENT, -EINVAL, -EFBIG, -ENOSPC, -ENOMEM. */
int stg_truncate(const char *svc, const char *name, off_t size);

/* Remove svc/name. 0 or -ENOENT. */
int stg_remove(const char *svc, const char *name);

/* Rename svc/from to svc/to, replacing a file called to (-EEXIST instead when noreplace).
 * 0, -ENOENT, -EEXIST, -ENAMETOOLONG, -EINVAL. */
int stg_rename(const char *svc, const char *from, const char *to, bool noreplace);

/* Call fn(name, arg) for each file of svc, in creation order. */
void stg_list(const char *svc, void (*fn)(const char *name, void *arg), void *arg);

/* Set attr of svc to the content of svc/name, as one write of that content at offset 0 would
 * (reg_set: one trailing newline stripped, validated, audited), then remove svc/name. On any
 * error nothing changes and svc/name stays. 0, -ENOENT (no such file), -EFBIG (content over
 * VAL_VALUE_MAX + 1 bytes), or what reg_set returns (-EINVAL, -EEXIST, ...). */
int stg_commit(const char *svc, const char *name, enum reg_attr attr, const char *who);

/* Forget every file of svc (deregistration). */
void stg_drop(const char *svc);

/* Forget every file of every service (unmount). */
void stg_clear(void);

#endif
