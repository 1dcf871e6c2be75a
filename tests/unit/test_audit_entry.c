/* test_audit_entry.c: the lines users append to audit/audit.log (every accepted and refused
 * shape), the daemon's own entries, and the exact audit.log text of an entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/entry.h"
#include "testlib.h"

/* Parse buf (NUL-terminated) as one write; return the rc and keep the entries in *out. */
static int parse(const char *buf, json_t ***out, size_t *n)
{
    char why[256] = "";

    return audit_entry_parse_lines(buf, strlen(buf), "alice", out, n, why, sizeof(why));
}

static int parse_rc(const char *buf)
{
    json_t **v = NULL;
    size_t n = 0;
    int rc = parse(buf, &v, &n);

    audit_entry_free_all(v, n);
    return rc;
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "", "\n", "  \n", "\n\n", "{\"action\":\"a\",\"status\":\"success\"}",
        "{\"action\":\"a\",\"status\":\"success\"}\n\n",
        "{\"action\":\"a\",\"status\":\"success\"}\n{}\n",
        "hello\n", "[]\n", "\"x\"\n", "null\n", "{}\n",
        "{\"action\":\"a\"}\n", "{\"status\":\"success\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"extra\":1}\n",
        "{\"action\":\"A\",\"status\":\"success\"}\n",
        "{\"action\":\"1a\",\"status\":\"success\"}\n",
        "{\"action\":\"_a\",\"status\":\"success\"}\n",
        "{\"action\":\"\",\"status\":\"success\"}\n",
        "{\"action\":\"a b\",\"status\":\"success\"}\n",
        "{\"action\":\"a.b\",\"status\":\"success\"}\n",
        "{\"action\":5,\"status\":\"success\"}\n",
        "{\"action\":\"a\",\"status\":\"ok\"}\n",
        "{\"action\":\"a\",\"status\":true}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"message\":7}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"message\":null}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"details\":[]}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"details\":null}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"details\":\"x\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"timestamp\":\"2026-01-01 00:00:00\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"timestamp\":\"2026-01-01T00:00:00.5Z\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"timestamp\":\"2026-01-01T00:00:00+00:00\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"timestamp\":\"26-01-01T00:00:00Z\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"timestamp\":1}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"user\":\"\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"user\":7}\n",
        "{\"action\":\"a\",\"action\":\"b\",\"status\":\"success\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"details\":{\"k\":1,\"k\":2}}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"message\":\"x\\u0000y\"}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"message\":\"\xff\"}\n",
        "{\"action\":\"a\",\"status\":\"success\"} {}\n",
        "{\"action\":\"a\",\"status\":\"success\",\"details\":{\"n\":1e999}}\n",
        /* the registry's own actions and marks: recover and verify replay them */
        "{\"action\":\"service_register\",\"status\":\"success\"}\n",
        "{\"action\":\"service_deregister\",\"status\":\"success\"}\n",
        "{\"action\":\"service_update\",\"status\":\"failure\"}\n",
        "{\"action\":\"registry_abort\",\"status\":\"failure\"}\n",
        "{\"action\":\"registry_adopt\",\"status\":\"success\"}\n",
        "{\"action\":\"note\",\"status\":\"success\",\"details\":{\"registry\":{}}}\n",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_rc(bad[i]);

        CHECKF(rc == -EINVAL, "case %zu [%s]: rc %d", i, bad[i], rc);
    }
}

/* A line of exactly len bytes (without its newline) with a long message. */
static char *long_line(size_t len)
{
    static const char head[] = "{\"action\":\"big\",\"status\":\"success\",\"message\":\"";
    char *buf = malloc(len + 2);
    size_t hl = sizeof(head) - 1;

    if (!buf)
        return NULL;
    memcpy(buf, head, hl);
    memset(buf + hl, 'x', len - hl - 2);
    memcpy(buf + len - 2, "\"}\n", 4);
    return buf;
}

static void test_limits(void)
{
    char *ok = long_line(AUDIT_LINE_MAX), *big = long_line(AUDIT_LINE_MAX + 1);
    char action[160];

    CHECK(ok && big);
    if (ok && big) {
        CHECK_INT(parse_rc(ok), 0);
        CHECK_INT(parse_rc(big), -EINVAL);
    }
    free(ok);
    free(big);
    snprintf(action, sizeof(action), "{\"action\":\"a%s\",\"status\":\"failure\"}\n",
             "123456789012345678901234567890123456789012345678901234567890123");
    CHECK_INT(parse_rc(action), 0);
    snprintf(action, sizeof(action), "{\"action\":\"a%s\",\"status\":\"failure\"}\n",
             "1234567890123456789012345678901234567890123456789012345678901234");
    CHECK_INT(parse_rc(action), -EINVAL);
}

static void test_accepted(void)
{
    const char *buf =
        "{\"action\":\"backup_taken\",\"status\":\"success\",\"message\":\"nightly\"}\n"
        "{\"user\":\"mallory\",\"timestamp\":\"2000-01-01T00:00:00Z\",\"status\":\"failure\","
        "\"details\":{\"z\":1,\"a\":[0.5,\"\xc3\xa9\"]},\"action\":\"re-store_2\"}\r\n"
        "  {\"action\":\"a\",\"status\":\"success\"}  \n";
    json_t **v = NULL;
    size_t n = 0, len = 0;
    char *line;

    CHECK_INT(parse(buf, &v, &n), 0);
    CHECK_INT(n, 3);
    if (n != 3)
        goto out;
    CHECK_STR(json_string_value(json_object_get(v[0], "message")), "nightly");
    CHECK_STR(json_string_value(json_object_get(v[0], "user")), "alice");
    CHECK(json_object_size(json_object_get(v[0], "details")) == 0);
    CHECK_STR(json_string_value(json_object_get(v[1], "user")), "alice");
    CHECK(strcmp(json_string_value(json_object_get(v[1], "timestamp")), "2000-01-01T00:00:00Z"));
    CHECK_STR(json_string_value(json_object_get(v[1], "message")), "");
    CHECK_STR(json_string_value(json_object_get(v[1], "action")), "re-store_2");
    line = audit_entry_line(v[1], &len);
    CHECK(line != NULL);
    if (line) {
        /* six keys in log order, details in the writer's order, ASCII only, one newline */
        CHECK(strncmp(line, "{\"timestamp\":\"", 14) == 0);
        CHECK(strstr(line, "\",\"action\":\"re-store_2\",\"status\":\"failure\",\"message\":"
                     "\"\",\"user\":\"alice\",\"details\":{\"z\":1,\"a\":[0.5,\"\\u00E9\"]}}\n")
              != NULL);
        CHECK_INT(len, strlen(line));
        CHECK(strchr(line, '\n') == line + len - 1);
    }
    free(line);
out:
    audit_entry_free_all(v, n);
}

static void test_own_entries(void)
{
    json_t *d = json_pack("{s:s}", "name", "core");
    json_t *e = audit_entry_new("service_register", "success", NULL, NULL, d);
    json_t *sorted = NULL;
    size_t len = 0;
    char *line = e ? audit_entry_line(e, &len) : NULL;

    CHECK(line != NULL);
    if (line) {
        CHECK(strstr(line, "\"message\":\"\",\"user\":\"system\","
                     "\"details\":{\"name\":\"core\"}}\n") != NULL);
        CHECK(strlen(line) == 20 + strlen("{\"timestamp\":\"\",\"action\":\"service_register\","
              "\"status\":\"success\",\"message\":\"\",\"user\":\"system\","
              "\"details\":{\"name\":\"core\"}}\n"));
    }
    free(line);
    /* The same entry with its keys in another order (as a capsule holds it) gives the same
     * line. */
    if (e) {
        const char *keys[] = { "details", "user", "timestamp", "status", "message", "action" };
        char *a = audit_entry_line(e, &len), *b;
        size_t i;

        sorted = json_object();
        for (i = 0; i < 6; i++)
            json_object_set(sorted, keys[i], json_object_get(e, keys[i]));
        b = audit_entry_line(sorted, &len);
        CHECK(a && b && strcmp(a, b) == 0);
        free(a);
        free(b);
        json_object_del(sorted, "user");
        CHECK(audit_entry_line(sorted, &len) == NULL);
    }
    json_decref(sorted);
    json_decref(e);
    json_decref(d);
}

int main(void)
{
    test_refused();
    test_limits();
    test_accepted();
    test_own_entries();
    return tl_finish();
}
