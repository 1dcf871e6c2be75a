/* util.h: inside the audit module: the small text helpers its files share (a formatted reason,
 * hex in and out). No state, no I/O. */
#ifndef CONDUIT_AUDIT_UTIL_H
#define CONDUIT_AUDIT_UTIL_H

#include <stddef.h>

/* Fill buf (when it is non-NULL and len > 0) with the formatted reason, and return rc: for
 * `return audit_say(-EINVAL, why, whylen, "line %lld: ...", n);`. */
__attribute__((format(printf, 4, 5)))
int audit_say(int rc, char *buf, size_t len, const char *fmt, ...);

/* n bytes of in as 2n lowercase hex chars and a NUL, into out (2n + 1 bytes). */
void audit_hex(const unsigned char *in, size_t n, char *out);

/* The value of one hex digit (either case), or -1. */
int audit_hex_digit(char c);

/* Decode s, which must be exactly 2n hex chars (either case), into n bytes of out.
 * 0 or -EINVAL (out may be partly written). */
int audit_unhex(const char *s, unsigned char *out, size_t n);

#endif
