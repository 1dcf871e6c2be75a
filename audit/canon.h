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

/* The largest integer both CPS references write exactly, 2^53 - 1 (JavaScript's
 * Number.MAX_SAFE_INTEGER): the TypeScript reference holds every number as a double. */
#define AUDIT_CANON_SAFE_INT 9007199254740991LL

/* Write d as the TypeScript reference does: JSON.stringify's Number::toString (the same shortest
 * digits as audit_canon_real; positional from 1e-6 up to below 1e21, else "1e-7", "1e+21"; an
 * integral value without ".0"; -0 as "0"). With float_field (reasoning.confidence,
 * options[].feasibility, which the reference writes as floats) an integral value below 1e21
 * gets ".0" ("1.0", "0.0" for -0). Returns the length, or -EINVAL for NaN/Inf, -ENOSPC when buf
 * is too small (AUDIT_CANON_REAL_MAX is always enough). */
int audit_canon_real_js(double d, int float_field, char *buf, size_t buflen);

/* Whether v lies in the portable subset: the canonical JSON of every part of it is the same
 * under both CPS references (Python: repr reals, keys by code point; TypeScript:
 * JSON.stringify numbers, keys by UTF-16 code unit), at every depth. A real is portable when
 * audit_canon_real and audit_canon_real_js write the same text (so 2.0, -0.0, 1e-05, 1e+16 are
 * not; 0.1, 4.35, 1e+22 are), an integer when |n| <= AUDIT_CANON_SAFE_INT, an object when its
 * keys sort alike by code point and by UTF-16 code unit (not so when keys differ first at a
 * code point >= U+10000 against one in U+E000..U+FFFF). flags: AUDIT_CANON_CAPSULE when v is a
 * capsule dict (its float-typed fields, as audit_canon). 0 when portable; -EINVAL for the first
 * value that is not, with why filled with "PATH: reason" (PATH starts with root, "$" when
 * NULL; keys shown as printable ASCII, '?' for other bytes; the reason names the kind and the
 * forms both references write, never a key's text); -ENOMEM. */
int audit_canon_portable(const json_t *v, unsigned flags, const char *root, char *why,
                         size_t whylen);

/* Bring v (a details object the daemon built; not a capsule) into the portable subset in place:
 * an integral real within AUDIT_CANON_SAFE_INT (-0.0 included) becomes that integer, any other
 * real that is not portable and any integer beyond AUDIT_CANON_SAFE_INT becomes a string of its
 * Python form ("1e-05", "9007199254740993"). Keys are left as they are. Returns how many values
 * changed, or -ENOMEM. */
int audit_canon_portable_fix(json_t *v);

#endif
