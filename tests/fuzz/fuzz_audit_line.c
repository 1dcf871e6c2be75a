/* fuzz_audit_line.c: libFuzzer target for audit_entry_parse_lines, the validator of what users
 * append to audit/audit.log. Refused input returns nothing and a one-line reason. Accepted input
 * gives one entry per line, each with the six log keys, the caller as user, and an audit.log
 * line (audit_entry_line) that is one line of ASCII, parses as the same entry, and has a
 * canonical form (audit_canon), since every entry is sealed into a capsule. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/canon.h"
#include "audit/entry.h"

#define USER "fuzzer"

static int noted;

static void check_entry(const json_t *e)
{
    static const char *const keys[] = {
        "timestamp", "action", "status", "message", "user", "details",
    };
    json_t *back;
    char *line, *canon = NULL;
    size_t len = 0, clen = 0;

    if (json_object_size(e) != 6)
        abort();
    for (size_t i = 0; i < 6; i++)
        if (!json_object_get(e, keys[i]))
            abort();
    if (strcmp(json_string_value(json_object_get(e, "user")), USER) != 0)
        abort();
    if (!json_is_object(json_object_get(e, "details")))
        abort();
    line = audit_entry_line(e, &len);
    if (!line || len == 0 || line[len - 1] != '\n' || strlen(line) != len)
        abort();
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c > 0x7f)
            abort();        /* one line, ASCII only (DEL is ASCII, and no line break) */
    }
    back = json_loadb(line, len - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!back || !json_equal(back, (json_t *)e))
        abort();
    json_decref(back);
    if (audit_canon(e, 0, &canon, &clen) != 0 || !canon)
        abort();
    free(canon);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t **entries = NULL;
    size_t n = 0, lines = 0;
    char why[256];
    int rc;

    why[0] = '\0';
    rc = audit_entry_parse_lines((const char *)data, size, USER, &entries, &n, why, sizeof(why));
    if (rc != 0) {
        if (entries || n || why[0] == '\0')
            abort();
        /* The reason is logged (syslog) and quotes the refused key: it should be one line.
         * Reported to audit/entry.c's owner; a note, not a crash, until it is fixed. */
        if (strchr(why, '\n') && !noted) {
            fprintf(stderr, "NOTE fuzz_audit_line: refusal reason spans lines: %s\n", why);
            noted = 1;
        }
        return 0;
    }
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (n != lines || !entries)
        abort();
    for (size_t i = 0; i < n; i++)
        check_entry(entries[i]);
    audit_entry_free_all(entries, n);
    return 0;
}
