/* trail.h: inside the audit module: reading audit.log line by line, and checking the log against
 * the capsule chain (line N is capsule N's outcome.result), for verify and for repair at mount. */
#ifndef CONDUIT_AUDIT_TRAIL_H
#define CONDUIT_AUDIT_TRAIL_H

#include <stddef.h>
#include <sys/types.h>

#include "audit/store.h"

/* A reader of the complete lines in the first end bytes of a file. */
struct audit_lines {
    int fd;
    off_t end;          /* bytes to read */
    off_t pos;          /* file offset of buf[len] */
    char *buf;
    size_t cap, start, len; /* buffered bytes are buf[start..len) */
    long long n;        /* complete lines returned so far */
    off_t good;         /* offset just after the last line returned */
};

/* Start reading the first end bytes of fd (fd < 0: an empty file). */
void audit_lines_init(struct audit_lines *r, int fd, off_t end);

/* The next complete line without its newline, valid until the next call. 1, 0 when no complete
 * line is left, or -errno
 * (-EFBIG for a line over 64 MiB). */
int audit_lines_next(struct audit_lines *r, const char **line, size_t *len);

void audit_lines_free(struct audit_lines *r);

/* audit_check_run flag: a log that stops before the chain does (with or without a torn last
 * line) is no failure; the result says where it stops so the rest can be rebuilt. */
#define AUDIT_CHECK_REPAIR 0x1u

/* What a check found. */
struct audit_check {
    struct audit_verify_report r;  /* the chain: entries, head, first failure and its reason */
    long long log_lines;           /* lines of the log that matched their capsules */
    off_t log_good;                /* the byte offset just after them */
    int log_short;                 /* (REPAIR) the log stops at log_lines < r.entries */
    int log_length;                /* the failure is only that the log ends too soon or late */
};

/* Verify the chain of st (structure, sequence, linkage, hash, signature) and tie each capsule N
 * to line N of the log open at log_fd (-1: no log): the canonical JSON of the line must equal
 * that of the capsule's outcome.result, and the line counts must be equal. The log is read up to
 * its size when the chain's read snapshot was fixed (under the store's order lock, so in the
 * daemon the two always agree). 0 when intact, -EBADMSG with c->r.failed_seq (-1 when no
 * sequence is to blame) and c->r.reason, or -errno when it could not run (c->r.reason). */
int audit_check_run(struct audit_store *st, int log_fd, unsigned flags, struct audit_check *c);

/* audit_check_run from capsule from on, for a chain whose capsules before from (and the lines
 * of the log before offset log_off, which hold exactly from lines) are taken as checked, as a
 * verified checkpoint says: capsule from must link to prev_hash, and line from + 1 starts at
 * log_off. from and log_off are both 0 or both > 0 (else -EINVAL). A log shorter than log_off
 * fails with -ESTALE. c->log_lines and c->log_good count the skipped lines too. */
int audit_check_run_from(struct audit_store *st, int log_fd, unsigned flags, long long from,
                         const char *prev_hash, off_t log_off, struct audit_check *c);

/* The one-line text of a failed check: "sequence N: reason" or the reason. */
void audit_check_reason(const struct audit_check *c, char *buf, size_t len);

/* The JSON report of a check that returned rc: {"ok","entries","head_sequence","head_hash",
 * "checked","first_error"}, compact with a newline, malloc'd. NULL when out of memory. */
char *audit_check_json(const struct audit_check *c, int rc, size_t *len);

#endif
