/* entry.c: six-field audit entries: build the daemon's own, validate the lines users append,
 * and write an entry as its audit.log line. */
#include "audit/entry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/canon.h"
#include "util/util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ACTION_MAX 64

/* The six keys of an entry, in audit.log order. */
static const char *const log_keys[] = {
    "timestamp", "action", "status", "message", "user", "details",
};

json_t *audit_entry_new(const char *action, const char *status, const char *message,
                        const char *user, json_t *details)
{
    char ts[32];
    json_t *e = json_object();

    if (!e)
        return NULL;
    cu_iso_now(ts, sizeof(ts));
    if (json_object_set_new(e, "timestamp", json_string(ts)) ||
        json_object_set_new(e, "action", json_string(action)) ||
        json_object_set_new(e, "status", json_string(status)) ||
        json_object_set_new(e, "message", json_string(message ? message : "")) ||
        json_object_set_new(e, "user", json_string(user ? user : "system")) ||
        json_object_set_new(e, "details", details ? json_incref(details) : json_object())) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ^[a-z][a-z0-9_-]{0,63}$ */
static int action_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > ACTION_MAX || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$ */
static int timestamp_ok(const char *s, size_t len)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    size_t i;

    if (len != sizeof(shape) - 1)
        return 0;
    for (i = 0; i < len; i++)
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
            return 0;
    return 1;
}

/* Actions only the daemon writes: the registry's changes and marks, which `conduitfs recover`
 * and `conduitfs verify` replay. An appended line may not pose as one. */
static const char *const reserved_actions[] = {
    "service_register", "service_deregister", "service_update", "registry_abort",
    "registry_adopt",
};

int audit_action_reserved(const char *s)
{
    for (size_t i = 0; i < sizeof(reserved_actions) / sizeof(reserved_actions[0]); i++)
        if (strcmp(s, reserved_actions[i]) == 0)
            return 1;
    return 0;
}

/* Check one parsed line against the append rules. 0 or -EINVAL with why filled. */
static int line_check(const json_t *obj, long long lineno, char *why, size_t whylen)
{
    const char *key, *st;
    json_t *v;

    if (!json_is_object(obj))
        return cu_errf(-EINVAL, why, whylen, "line %lld is not a JSON object", lineno);
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "action") == 0) {
            if (!json_is_string(v) || !action_ok(json_string_value(v), json_string_length(v)))
                return cu_errf(-EINVAL, why, whylen, "line %lld: action must match "
                               "^[a-z][a-z0-9_-]{0,63}$", lineno);
            if (audit_action_reserved(json_string_value(v)))
                return cu_errf(-EINVAL, why, whylen, "line %lld: action %s is the daemon's own",
                               lineno, json_string_value(v));
        } else if (strcmp(key, "status") == 0) {
            st = json_string_value(v);
            if (!st || (strcmp(st, "success") != 0 && strcmp(st, "failure") != 0))
                return cu_errf(-EINVAL, why, whylen, "line %lld: status must be success or "
                               "failure", lineno);
        } else if (strcmp(key, "message") == 0) {
            if (!json_is_string(v))
                return cu_errf(-EINVAL, why, whylen, "line %lld: message must be a string",
                               lineno);
        } else if (strcmp(key, "details") == 0) {
            if (!json_is_object(v))
                return cu_errf(-EINVAL, why, whylen, "line %lld: details must be an object",
                               lineno);
            if (json_object_get(v, "registry"))
                return cu_errf(-EINVAL, why, whylen,
                               "line %lld: details.registry is the daemon's "
                               "" "own (a registry mark)", lineno);
        } else if (strcmp(key, "timestamp") == 0) {
            if (!json_is_string(v) || !timestamp_ok(json_string_value(v), json_string_length(v)))
                return cu_errf(-EINVAL, why, whylen, "line %lld: timestamp must look like "
                               "2026-01-31T12:00:00Z", lineno);
        } else if (strcmp(key, "user") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0)
                return cu_errf(-EINVAL, why, whylen, "line %lld: user must be a non-empty string",
                               lineno);
        } else {
            char shown[65];
            size_t k;

            /* the reason goes to syslog: show the key as one printable line */
            for (k = 0; key[k] && k < sizeof(shown) - 1; k++)
                shown[k] = (key[k] < 0x20 || key[k] >= 0x7f) ? '?' : key[k];
            shown[k] = '\0';
            return cu_errf(-EINVAL, why, whylen, "line %lld: unknown key \"%s\"", lineno, shown);
        }
    }
    if (!json_object_get(obj, "action") || !json_object_get(obj, "status"))
        return cu_errf(-EINVAL, why, whylen, "line %lld: action and status are required", lineno);
    return 0;
}

/* Parse and check one line (without its newline) into a new entry for user. 0 or -errno. */
static int parse_line(const char *line, size_t len, long long lineno, const char *user,
                      json_t **out, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *obj;
    int rc;

    *out = NULL;
    if (len == 0)
        return cu_errf(-EINVAL, why, whylen, "line %lld is empty", lineno);
    if (len > AUDIT_LINE_MAX)
        return cu_errf(-EINVAL, why, whylen, "line %lld is longer than %d bytes", lineno,
                       AUDIT_LINE_MAX);
    obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return cu_errf(-EINVAL, why, whylen, "line %lld is not JSON: %s", lineno, jerr.text);
    rc = line_check(obj, lineno, why, whylen);
    if (rc == 0) {
        *out = audit_entry_new(json_string_value(json_object_get(obj, "action")),
                               json_string_value(json_object_get(obj, "status")),
                               json_string_value(json_object_get(obj, "message")), user,
                               json_object_get(obj, "details"));
        if (!*out)
            rc = cu_errf(-ENOMEM, why, whylen, "out of memory");
    }
    json_decref(obj);
    return rc;
}

void audit_entry_free_all(json_t **entries, size_t n)
{
    size_t i;

    if (!entries)
        return;
    for (i = 0; i < n; i++)
        json_decref(entries[i]);
    free(entries);
}

int audit_entry_parse_lines(const char *buf, size_t len, const char *user, json_t ***out,
                            size_t *n, char *why, size_t whylen)
{
    json_t **v = NULL;
    const char *p = buf, *end = buf + len, *nl;
    size_t count = 0, i = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (len == 0 || buf[len - 1] != '\n')
        return cu_errf(-EINVAL, why, whylen, "a write must hold complete lines, each ending in a "
                       "newline");
    for (nl = buf; nl < end; nl++)
        count += *nl == '\n';
    v = calloc(count, sizeof(*v));
    if (!v)
        return cu_errf(-ENOMEM, why, whylen, "out of memory");
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        rc = parse_line(p, (size_t)(nl - p), (long long)i + 1, user, &v[i], why, whylen);
        if (rc < 0)
            goto out;
        i++;
        p = nl + 1;
    }
    *out = v;
    *n = count;
    v = NULL;
out:
    audit_entry_free_all(v, i);
    return rc;
}

char *audit_entry_line(const json_t *entry, size_t *len)
{
    json_t *o = json_object();
    char *text = NULL, *line = NULL;
    size_t i, n;

    if (!o)
        return NULL;
    for (i = 0; i < NELEM(log_keys); i++) {
        json_t *v = json_object_get(entry, log_keys[i]);

        if (!v || json_object_set(o, log_keys[i], v) < 0)
            goto out;
    }
    /* not json_dumps: jansson writes reals as %.17g (4.35 -> 4.3499999999999996); the log
     * keeps the shortest form that reads back the same, as the capsule does */
    if (audit_canon(o, AUDIT_CANON_ORDER | AUDIT_CANON_ASCII, &text, &n) < 0)
        goto out;
    line = malloc(n + 2);
    if (!line)
        goto out;
    memcpy(line, text, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
out:
    free(text);
    json_decref(o);
    return line;
}
