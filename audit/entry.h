/* entry.h: six-field audit entries inside the audit module: the daemon's own, the lines users
 * append to audit/audit.log, and the exact text of an entry's audit.log line. */
#ifndef CONDUIT_AUDIT_ENTRY_H
#define CONDUIT_AUDIT_ENTRY_H

#include <stddef.h>

#include <jansson.h>

/* Longest appended line, without its newline. */
#define AUDIT_LINE_MAX 65536

/* A new entry {"timestamp","action","status","message","user","details"} in log key order with
 * the current time (YYYY-MM-DDTHH:MM:SSZ); message NULL is "", user NULL is "system", details is
 * borrowed (NULL: {}). NULL when out of memory. */
json_t *audit_entry_new(const char *action, const char *status, const char *message,
                        const char *user, json_t *details);

/* Parse the buffer of one write to audit.log: one or more complete lines, each ending in '\n',
 * each a JSON object with "action" (^[a-z][a-z0-9_-]{0,63}$) and "status" (success|failure),
 * and optionally "message" (a string), "details" (an object), "timestamp"
 * (^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$) and "user" (a non-empty string), no other key and no
 * key twice, at most AUDIT_LINE_MAX bytes. The registry's own actions (service_register,
 * service_deregister, service_update, registry_abort, registry_adopt) and a "registry" member of
 * details are refused: only the daemon writes those. Each becomes a new entry with the current
 * time and user as its user. On success *out is a malloc'd array of *n entries (free with
 * audit_entry_free_all). 0, -EINVAL with why filled (nothing returned), or -ENOMEM. */
int audit_entry_parse_lines(const char *buf, size_t len, const char *user, json_t ***out,
                            size_t *n, char *why, size_t whylen);

/* Free an array of n entries from audit_entry_parse_lines (NULL is fine). */
void audit_entry_free_all(json_t **entries, size_t n);

/* The audit.log line of an entry: its six keys in log order, compact, ASCII-only, with the
 * newline. Returns a malloc'd NUL-terminated string and its length in *len (newline included);
 * NULL when a key is missing or out of memory. */
char *audit_entry_line(const json_t *entry, size_t *len);

#endif
