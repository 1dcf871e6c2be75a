/* canon.h: CPS 1.0 canonical JSON (the bytes a capsule hash covers), built on jansson trees. */
#ifndef CONDUIT_AUDIT_CANON_H
#define CONDUIT_AUDIT_CANON_H

#include <stddef.h>

#include <jansson.h>

/* Flag for audit_canon: the value is a capsule dict, so reasoning.confidence and
 * reasoning.options[].feasibility are float-typed and get a decimal point even when the tree
 * holds them as integers (1 -> 1.0). */
#define AUDIT_CANON_CAPSULE 0x1u

/* Longest text audit_canon_real writes, with its NUL ("-2.2250738585072014e-308"). */
#define AUDIT_CANON_REAL_MAX 32

/* Serialize v the way Python's json.dumps(v, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False) does: object keys sorted bytewise (= by code point), no whitespace,
 * literal UTF-8, reals in Python repr form. On success *out is a malloc'd NUL-terminated buffer
 * the caller frees and *len its length without the NUL. 0, -EINVAL (NaN/Inf, nesting deeper than
 * 2048, unknown node) or -ENOMEM; on error *out is NULL. */
int audit_canon(const json_t *v, unsigned flags, char **out, size_t *len);

/* Write d as Python's repr(float) does (shortest round-trip digits, "1.0", "1e-05", "1e+16")
 * into buf. Returns the length, or -EINVAL for NaN/Inf, -ENOSPC when buf is too small
 * (AUDIT_CANON_REAL_MAX is always enough). */
int audit_canon_real(double d, char *buf, size_t buflen);

#endif
