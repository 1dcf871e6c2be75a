/* fuzz_canon.c: libFuzzer target for audit_canon (CPS canonical JSON) on jansson trees parsed
 * from the input. The first byte picks the flags; the rest is JSON. A tree that canonicalizes
 * must give output that parses again and canonicalizes to the same bytes (a fixed point), has
 * no whitespace outside strings, and holds no raw control byte. audit_canon_real is checked on
 * the input's first eight bytes read as a double: its text must read back as the same double. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/canon.h"

/* Outside strings, canonical JSON has no whitespace; inside, no raw control byte. */
static void check_shape(const char *s, size_t len)
{
    int in_str = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20)
            abort();
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ') {
            abort();
        }
    }
    if (in_str)
        abort();
}

static void check_real(const uint8_t *data, size_t size)
{
    char buf[AUDIT_CANON_REAL_MAX];
    double d;
    int n;

    if (size < sizeof(d))
        return;
    memcpy(&d, data, sizeof(d));
    n = audit_canon_real(d, buf, sizeof(buf));
    if (!isfinite(d)) {
        if (n != -EINVAL)
            abort();
        return;
    }
    if (n <= 0 || (size_t)n >= sizeof(buf) || strlen(buf) != (size_t)n)
        abort();
    if (strtod(buf, NULL) != d || (signbit(strtod(buf, NULL)) != signbit(d)))
        abort();
    /* a buffer one byte short is refused, never overrun */
    if (audit_canon_real(d, buf, (size_t)n) >= 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root, *back;
    json_error_t jerr;
    char *out = NULL, *out2 = NULL;
    size_t len = 0, len2 = 0;
    unsigned flags;

    if (size < 1)
        return 0;
    check_real(data + 1, size - 1);
    flags = data[0] & 1 ? AUDIT_CANON_CAPSULE : 0;
    root = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL |
                      (data[0] & 2 ? JSON_DECODE_INT_AS_REAL : 0), &jerr);
    if (!root)
        return 0;
    if (audit_canon(root, flags, &out, &len) != 0) {
        if (out)
            abort();
        json_decref(root);
        return 0;
    }
    if (!out || strlen(out) > len || out[len] != '\0')
        abort();
    check_shape(out, len);
    back = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!back)
        abort();
    if (audit_canon(back, flags, &out2, &len2) != 0 || len2 != len || memcmp(out, out2, len))
        abort();
    free(out);
    free(out2);
    json_decref(back);
    json_decref(root);
    return 0;
}
