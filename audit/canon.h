/* canon.h: CPS 1.0 canonical JSON (the bytes a capsule hash covers), built on jansson trees. */
#ifndef CONDUIT_AUDIT_CANON_H
#define CONDUIT_AUDIT_CANON_H

#include <stddef.h>

#include <jansson.h>

/* Flag for audit_canon: the value is a capsule dict, so reasoning.confidence and
 * reasoning.options[].feasibility are float-typed and get a decimal point even when the tree
 * holds them as integers (1 -> 1.0). */
#define AUDIT_CANON_CAPSULE 0x1u

/* Flag for audit_canon: keep each object's own member order (jansson keeps insertion order)
 * instead of sorting keys. For text that is not hashed, such as the lines of audit.log. */
#define AUDIT_CANON_ORDER 0x2u

/* Flag for audit_canon: escape every non-ASCII code point as \uXXXX the way jansson's
 * JSON_ENSURE_ASCII does (uppercase hex, surrogate pairs above U+FFFF; C0 controls likewise, with
 * the short forms \b \f \n \r \t), so the text is plain ASCII. */
#define AUDIT_CANON_ASCII 0x4u

/* Longest text audit_canon_real writes, with its NUL ("-2.2250738585072014e-308"). */
#define AUDIT_CANON_REAL_MAX 32

/* Serialize v the way Python's json.dumps(v, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False) does: object keys sorted bytewise (= by code point), no whitespace,
 * literal UTF-8, reals in Python repr form (the shortest digits that read back as the same
 * double: 4.35, never 4.3499999999999996). AUDIT_CANON_ORDER and AUDIT_CANON_ASCII change the
 * key order and the escapes as they say, never the reals. On success *out is a malloc'd
 * NUL-terminated buffer the caller frees and *len (may be NULL) its length without the NUL.
 * 0, -EINVAL (NaN/Inf, nesting deeper than 2048, unknown node, a string that is not UTF-8)
 * or -ENOMEM; on error *out is NULL. */
int audit_canon(const json_t *v, unsigned flags, char **out, size_t *len);

/* Write d as Python's repr(float) does (shortest round-trip digits, "1.0", "1e-05", "1e+16")
 * into buf. Returns the length, or -EINVAL for NaN/Inf, -ENOSPC when buf is too small
 * (AUDIT_CANON_REAL_MAX is always enough). */
int audit_canon_real(double d, char *buf, size_t buflen);

#endif
